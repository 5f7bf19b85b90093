"""Hand-computed cases, one rule of SPEC sections 3-9 each."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pyarrow as pa
import pytest
from conftest import (
    TS,
    UTC,
    allocations_table,
    at,
    devices_table,
    intensity_table,
    power_table,
    sites_table,
)

import carbonledger as cl

REL = 1e-12
U = 1.5  # PUE of the default site
C = 400.0  # intensity used by `flat`


def flat(**over: Any) -> dict[str, Any]:
    """One device g0, PUE 1.5, a single intensity row of 400 g/kWh that never ends."""
    kw: dict[str, Any] = {
        "devices": devices_table(),
        "sites": sites_table(),
        "intensity": intensity_table([(-1000, None, C)]),
    }
    kw.update(over)
    return kw


def dev(r: cl.Report, col: str, i: int = 0) -> Any:
    return r.devices[col][i]


def kwh(j: float) -> float:
    return j / 3.6e6


def approx(x: float) -> Any:
    return pytest.approx(x, rel=REL, abs=1e-18)


# --- SPEC 3: interpolation, gaps, duplicates, invalid samples ----------------


def test_linear_is_trapezoid() -> None:
    r = cl.account(power_table([("g0", 0, 100), ("g0", 10, 300)]), **flat())
    assert dev(r, "energy_kwh") == approx(kwh(2000))
    assert dev(r, "operational_kgco2e") == approx(2000 * U * C / 3.6e9)


def test_previous_holds_value() -> None:
    r = cl.account(
        power_table([("g0", 0, 100), ("g0", 10, 300)]), interpolation="previous", **flat()
    )
    assert dev(r, "energy_kwh") == approx(kwh(1000))


def test_gap_beyond_max_gap_is_uncovered() -> None:
    p = power_table([("g0", 0, 100), ("g0", 10, 100), ("g0", 30, 100)])
    r = cl.account(p, max_gap=15, **flat())
    assert dev(r, "energy_kwh") == approx(kwh(1000))
    assert dev(r, "gaps") == 1
    assert dev(r, "uncovered_s") == approx(20)


def test_gap_equal_to_max_gap_is_interpolated() -> None:
    p = power_table([("g0", 0, 100), ("g0", 15, 100)])
    r = cl.account(p, max_gap=dt.timedelta(seconds=15), **flat())
    assert dev(r, "energy_kwh") == approx(kwh(1500))
    assert dev(r, "gaps") == 0
    assert dev(r, "uncovered_s") == 0


def test_gap_fill_idle_fills_gaps_and_edges_but_stays_uncovered() -> None:
    p = power_table([("g0", 0, 100), ("g0", 10, 100), ("g0", 30, 100)])
    d = devices_table(idle_power_w=[50.0])
    r = cl.account(p, max_gap=15, gap_fill="idle", period=(at(-5), at(35)), **flat(devices=d))
    # measured 1000 J + idle 50 W over 20 s gap + 5 s before + 5 s after
    assert dev(r, "energy_kwh") == approx(kwh(1000 + 50 * 30))
    assert dev(r, "uncovered_s") == approx(30)


def test_duplicates_are_averaged() -> None:
    p = power_table([("g0", 0, 100), ("g0", 0, 300), ("g0", 10, 200)])
    r = cl.account(p, **flat())
    assert dev(r, "energy_kwh") == approx(kwh(2000))
    assert (dev(r, "samples"), dev(r, "duplicate_samples")) == (3, 1)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0])
def test_invalid_samples_are_dropped_and_counted(bad: float) -> None:
    p = power_table([("g0", 0, 100), ("g0", 5, bad), ("g0", 10, 100), ("g0", 0, bad)])
    r = cl.account(p, **flat())
    assert dev(r, "energy_kwh") == approx(kwh(1000))
    assert (dev(r, "samples"), dev(r, "invalid_samples")) == (4, 2)


def test_invalid_dropped_before_duplicates_are_averaged() -> None:
    p = power_table([("g0", 0, 100), ("g0", 0, math.nan), ("g0", 10, 100)])
    r = cl.account(p, **flat())
    assert dev(r, "duplicate_samples") == 0
    assert dev(r, "invalid_samples") == 1
    assert dev(r, "energy_kwh") == approx(kwh(1000))


def test_invalid_raise() -> None:
    p = power_table([("g0", 0, 100), ("g0", 5, -3.0), ("g0", 10, 100)])
    with pytest.raises(cl.InvalidSampleError, match=r"-3.*'g0'"):
        cl.account(p, on_invalid="raise", **flat())


def test_first_and_last_ts() -> None:
    p = power_table([("g0", 0, math.nan), ("g0", 3, 100), ("g0", 10, 100), ("g0", 12, -1)])
    r = cl.account(p, **flat())
    assert r.devices["first_ts"][0] == at(3)
    assert r.devices["last_ts"][0] == at(10)


# --- SPEC 4: counters -------------------------------------------------------


def counters(rows: list[tuple[float, float]]) -> pa.Table:
    return power_table([("g0", t, e) for t, e in rows], col="energy_j")


def test_counter_deltas() -> None:
    r = cl.account(counters([(0, 1000), (10, 3000), (20, 3500)]), **flat())
    assert dev(r, "energy_kwh") == approx(kwh(2500))


def test_counter_wrap_modulo() -> None:
    d = devices_table(counter_wrap_j=[4000.0])
    r = cl.account(counters([(0, 1000), (10, 3000), (20, 500)]), **flat(devices=d))
    assert dev(r, "energy_kwh") == approx(kwh(2000 + 1500))
    assert (dev(r, "counter_wraps"), dev(r, "counter_resets")) == (1, 0)


def test_counter_reset_is_uncovered() -> None:
    r = cl.account(counters([(0, 1000), (10, 3000), (20, 500), (30, 700)]), **flat())
    assert dev(r, "energy_kwh") == approx(kwh(2000 + 200))
    assert (dev(r, "counter_wraps"), dev(r, "counter_resets")) == (0, 1)
    assert dev(r, "uncovered_s") == approx(10)


def test_counter_gap_wins_over_wrap() -> None:
    d = devices_table(counter_wrap_j=[4000.0])
    r = cl.account(counters([(0, 1000), (100, 500)]), max_gap=15, **flat(devices=d))
    assert dev(r, "energy_kwh") == 0
    assert (dev(r, "gaps"), dev(r, "counter_wraps")) == (1, 0)


def test_counter_spread_evenly_when_cut() -> None:
    a = allocations_table([("A", "g0", 5, 15, 1.0)])
    r = cl.account(counters([(0, 0), (10, 2000), (20, 2500)]), **flat(allocations=a))
    assert r.allocations["energy_kwh"][0] == approx(kwh(1000 + 250))


# --- SPEC 2/5: intensity rows, cfe, residual ---------------------------------


def test_intensity_rows_without_end() -> None:
    # ends: 10, 20, and the last lasts as long as the one before: 30
    i = intensity_table([(0, None, 400), (10, None, 100), (20, None, 200)])
    p = power_table([("g0", 0, 360), ("g0", 30, 360)])
    r = cl.account(p, **flat(intensity=i))
    e = 3600.0  # J per 10 s
    assert dev(r, "operational_kgco2e") == approx(e * U * (400 + 100 + 200) / 3.6e9)
    with pytest.raises(cl.CoverageError, match=r"'R'"):
        cl.account(p, period=(at(0), at(31)), **flat(intensity=i))


def test_single_intensity_row_never_ends() -> None:
    p = power_table([("g0", 0, 100), ("g0", 10, 100)])
    i = intensity_table([(5, None, 400)])
    r = cl.account(p, period=(at(5), at(1e6)), **flat(intensity=i))
    assert dev(r, "uncovered_s") == approx(1e6 - 10)


def test_cfe_and_residual() -> None:
    i = intensity_table([(-10, None, 400)], cfe=[0.5], residual_gco2e_per_kwh=[600.0])
    p = power_table([("g0", 0, 100), ("g0", 10, 100)])
    r = cl.account(p, **flat(intensity=i))
    assert dev(r, "operational_kgco2e") == approx(1000 * U * 400 / 3.6e9)
    assert dev(r, "operational_market_kgco2e") == approx(1000 * U * 0.5 * 600 / 3.6e9)


def test_market_defaults_to_location_with_null_cfe_and_residual() -> None:
    i = intensity_table(
        [(-10, None, 400)],
        cfe=pa.array([None], pa.float64()),
        residual_gco2e_per_kwh=pa.array([None], pa.float64()),
    )
    r = cl.account(power_table([("g0", 0, 100), ("g0", 10, 100)]), **flat(intensity=i))
    assert dev(r, "operational_market_kgco2e") == approx(dev(r, "operational_kgco2e"))


# --- SPEC 6: embodied ----------------------------------------------------------


def test_embodied_window_retired_at() -> None:
    d = devices_table(
        installed_at=pa.array([at(10)], TS),
        retired_at=pa.array([at(30)], TS),
        embodied_kgco2e=[20.0],
    )
    a = allocations_table([("A", "g0", 0, 20, 1.0)])
    r = cl.account(
        power_table([("g0", 0, 1), ("g0", 40, 1)]),
        period=(at(0), at(40)),
        **flat(devices=d, allocations=a),
    )
    assert dev(r, "embodied_kgco2e") == approx(20)
    assert r.allocations["embodied_kgco2e"][0] == approx(10)
    assert r.unallocated["embodied_kgco2e"][0] == approx(10)


def test_retired_at_wins_over_lifetime() -> None:
    d = devices_table(
        installed_at=pa.array([at(0)], TS),
        retired_at=pa.array([at(100)], TS),
        lifetime_years=[1.0],
        embodied_kgco2e=[100.0],
    )
    r = cl.account(power_table([("g0", 0, 1), ("g0", 10, 1)]), **flat(devices=d))
    assert dev(r, "embodied_kgco2e") == approx(10)


def test_embodied_window_lifetime_years() -> None:
    years = 40 / 31_557_600
    d = devices_table(installed_at=pa.array([at(0)], TS), lifetime_years=[years])
    r = cl.account(
        power_table([("g0", 0, 1), ("g0", 10, 1)]), period=(at(20), at(60)), **flat(devices=d)
    )
    assert dev(r, "embodied_kgco2e") == approx(150 * 20 / 40)


def test_embodied_accrues_without_samples() -> None:
    p = power_table([("g0", 0, 100), ("g0", 10, 100)])
    r = cl.account(p, period=(at(0), at(1000)), **flat())
    assert dev(r, "embodied_kgco2e") == approx(150 * 1000 / (4 * 31_557_600))
    assert dev(r, "uncovered_s") == approx(990)


# --- SPEC 7: shares, unallocated, overlap ------------------------------------------


def test_shares_and_unallocated() -> None:
    a = allocations_table([("A", "g0", 0, 10, 0.25), ("B", "g0", 5, 10, 0.5)])
    p = power_table([("g0", 0, 100), ("g0", 10, 100)])
    r = cl.account(p, **flat(allocations=a))
    assert r.allocations["energy_kwh"].to_list() == [approx(kwh(250)), approx(kwh(250))]
    assert r.allocations["duration_s"].to_list() == [approx(10), approx(5)]
    assert r.unallocated["energy_kwh"][0] == approx(kwh(375 + 125))
    assert r.unallocated["duration_s"][0] == approx(0.75 * 5 + 0.25 * 5)


def test_null_share_is_one() -> None:
    a = allocations_table([("A", "g0", 0, 10, 1.0)])
    a = a.set_column(4, "share", pa.array([None], pa.float64()))
    r = cl.account(power_table([("g0", 0, 100), ("g0", 10, 100)]), **flat(allocations=a))
    assert r.allocations["energy_kwh"][0] == approx(kwh(1000))
    assert r.unallocated["energy_kwh"][0] == 0


def test_overlap_normalize() -> None:
    a = allocations_table([("A", "g0", 0, 10, 0.8), ("B", "g0", 0, 10, 0.6)])
    p = power_table([("g0", 0, 100), ("g0", 10, 100)])
    with pytest.raises(cl.OverlapError, match=r"'g0'"):
        cl.account(p, **flat(allocations=a))
    r = cl.account(p, overlap="normalize", **flat(allocations=a))
    assert r.allocations["energy_kwh"].to_list() == [
        approx(kwh(1000 * 0.8 / 1.4)),
        approx(kwh(1000 * 0.6 / 1.4)),
    ]
    assert r.unallocated["energy_kwh"][0] == 0


def test_overallocation_within_tolerance_is_scaled_silently() -> None:
    a = allocations_table([("A", "g0", 0, 10, 0.5), ("B", "g0", 0, 10, 0.5 + 5e-10)])
    r = cl.account(power_table([("g0", 0, 100), ("g0", 10, 100)]), **flat(allocations=a))
    assert sum(r.allocations["energy_kwh"]) == approx(kwh(1000))
    assert r.unallocated["energy_kwh"][0] == 0


def test_labels_carried_through_in_input_order() -> None:
    a = allocations_table(
        [("B", "g0", 5, 10, 1.0), ("A", "g0", 0, 5, 1.0)], phase=["inference", "training"]
    )
    r = cl.account(power_table([("g0", 0, 100), ("g0", 10, 100)]), **flat(allocations=a))
    assert r.allocations["job_id"].to_list() == ["B", "A"]
    assert r.allocations["phase"].to_list() == ["inference", "training"]
    assert r.allocations.columns[-8:] == [
        "duration_s",
        "uncovered_s",
        "energy_kwh",
        "facility_energy_kwh",
        "operational_kgco2e",
        "operational_market_kgco2e",
        "embodied_kgco2e",
        "total_kgco2e",
    ]


# --- SPEC 8: period -------------------------------------------------------------


def test_period_clips_with_interpolation_from_outside() -> None:
    p = power_table([("g0", 0, 100), ("g0", 10, 300)])
    r = cl.account(p, period=(at(5), at(10)), **flat())
    assert dev(r, "energy_kwh") == approx(kwh(1250))
    assert dev(r, "uncovered_s") == 0


def test_default_period_is_min_to_max_valid_ts() -> None:
    d = devices_table(
        device_id=["g0", "g1"],
        site_id=["s1", "s1"],
        embodied_kgco2e=[0.0, 0.0],
        installed_at=pa.array([at(-100)] * 2, TS),
        lifetime_years=[1.0, 1.0],
    )
    p = power_table(
        [("g0", 0, 100), ("g0", 10, 100), ("g1", 5, 100), ("g1", 20, 100), ("g1", 25, math.nan)]
    )
    r = cl.account(p, **flat(devices=d))
    assert r.devices["uncovered_s"].to_list() == [approx(10), approx(5)]
    assert r.unallocated["duration_s"].to_list() == [approx(20), approx(20)]


def test_samples_outside_period_count_but_do_not_book() -> None:
    p = power_table([("g0", 0, 100), ("g0", 10, 100), ("g0", 100, 100), ("g0", 110, 100)])
    r = cl.account(p, period=(at(200), at(300)), **flat())
    assert dev(r, "samples") == 4
    assert dev(r, "energy_kwh") == 0
    assert dev(r, "uncovered_s") == approx(100)
    assert dev(r, "gaps") == 0


def test_integer_device_ids() -> None:
    d = devices_table(device_id=pa.array([7], pa.int64()))
    p = pa.table(
        {
            "device_id": pa.array([7, 7], pa.int32()),
            "ts": pa.array([at(0), at(10)], TS),
            "power_w": [100.0, 100.0],
        }
    )
    r = cl.account(p, **flat(devices=d))
    assert r.devices["device_id"][0] == 7
    assert dev(r, "energy_kwh") == approx(kwh(1000))


def test_naive_period_is_utc() -> None:
    p = power_table([("g0", 0, 100), ("g0", 10, 300)])
    naive = (dt.datetime(2025, 1, 1, 0, 0, 5), dt.datetime(2025, 1, 1, 0, 0, 10))
    r = cl.account(p, period=naive, **flat())
    assert dev(r, "energy_kwh") == approx(kwh(1250))
    assert naive[0].replace(tzinfo=UTC) == at(5)


def test_summary_adds_up_to_totals(spec12: dict[str, Any]) -> None:
    r = cl.account(**spec12)
    s = r.summary(by=["phase"])
    assert s["bucket"].to_list() == ["allocated", "unallocated"]
    assert s["phase"].to_list() == ["training", None]
    assert s["total_kgco2e"].sum() == approx(r.totals()["total_kgco2e"])
