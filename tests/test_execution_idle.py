"""Execution-idle (issue 11): covered time whose reported utilization is
below a threshold, per allocation, unallocated bucket and device, with the
energy spent in it. Hand-computed cases, the input variants, errors, and
conservation as a property."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import TS, allocations_table, at, devices_table, intensity_table, sites_table
from hypothesis import given, settings
from hypothesis import strategies as st

import carbonledger as cl
from carbonledger.exceptions import InvalidSampleError, SchemaError

REL = 1e-12
IDLE_COLUMNS = ["busy_s", "execution_idle_s", "execution_idle_kwh"]


def power_with_util(
    rows: Sequence[tuple[float, float, float | None]], column: str = "utilization"
) -> pa.Table:
    return pa.table(
        {
            "device_id": ["g0"] * len(rows),
            "ts": pa.array([at(r[0]) for r in rows], TS),
            "power_w": pa.array([r[1] for r in rows], pa.float64()),
            column: pa.array([r[2] for r in rows], pa.float64()),
        }
    )


# Samples every 10 s at 100 W. The utilization of a sample describes the 10 s
# it ends: [0,10) 0.9 busy, [10,20) 0.0 idle, [20,30) 0.02 idle, [30,40) 0.5
# busy, [40,50) unknown, [50,60) 0.05 busy (the threshold is "below 5%").
ROWS: list[tuple[float, float, float | None]] = [
    (0, 100, 0.7),
    (10, 100, 0.9),
    (20, 100, 0.0),
    (30, 100, 0.02),
    (40, 100, 0.5),
    (50, 100, None),
    (60, 100, 0.05),
]


def inputs(power: Any) -> dict[str, Any]:
    return {
        "power": power,
        "devices": devices_table(),
        "sites": sites_table(),
        "intensity": intensity_table([(0, None, 400)]),
        "allocations": allocations_table([("A", "g0", 0, 25, 1.0), ("B", "g0", 25, 60, 0.5)]),
        "period": (at(0), at(60)),
    }


def test_hand_computed_case() -> None:
    r = cl.account(**inputs(power_with_util(ROWS)))
    a, b = r.allocations.select(["job_id", *IDLE_COLUMNS]).rows()
    # A [0, 25), share 1: busy [0,10); idle [10,25) at 100 W.
    assert a == ("A", 10.0, 15.0, pytest.approx(1500 / 3.6e6, rel=REL))
    # B [25, 60), share 0.5: idle [25,30); busy [30,40) and [50,60); its
    # time is not weighted by its share, its energy is.
    assert b == ("B", 20.0, 5.0, pytest.approx(0.5 * 500 / 3.6e6, rel=REL))
    u = r.unallocated.select(IDLE_COLUMNS).row(0)
    # What B's share leaves over on [25, 60): half of B's time and energy.
    assert u == (10.0, 2.5, pytest.approx(0.5 * 500 / 3.6e6, rel=REL))
    d = r.devices.select(IDLE_COLUMNS).row(0)
    assert d == (30.0, 20.0, pytest.approx(2000 / 3.6e6, rel=REL))


def test_conservation_of_idle_energy() -> None:
    r = cl.account(**inputs(power_with_util(ROWS)))
    alloc = float(r.allocations["execution_idle_kwh"].sum())
    unalloc = float(r.unallocated["execution_idle_kwh"].sum())
    assert alloc + unalloc == pytest.approx(r.devices["execution_idle_kwh"][0], rel=REL)


def test_cut_inside_a_segment_uses_interpolated_power() -> None:
    # Power rises 100 -> 300 W over the idle [20, 30); A ends at 25, inside.
    rows = [(0, 100, 0.9), (10, 100, 0.9), (20, 100, 0.9), (30, 300, 0.01)]
    r = cl.account(**{**inputs(power_with_util(rows)), "period": (at(0), at(30))})
    a, b = r.allocations["execution_idle_kwh"].to_list()
    # [20, 25): 100 -> 200 W, 750 J (A, share 1); [25, 30): 200 -> 300 W,
    # 1250 J, half of it to B.
    assert a == pytest.approx(750 / 3.6e6, rel=REL)
    assert b == pytest.approx(0.5 * 1250 / 3.6e6, rel=REL)


def test_percent_column_and_threshold() -> None:
    pct = [(t, p, None if u is None else u * 100) for t, p, u in ROWS]
    r_pct = cl.account(**inputs(power_with_util(pct, "utilization_pct")))
    r = cl.account(**inputs(power_with_util(ROWS)))
    assert r_pct.devices.select(IDLE_COLUMNS).row(0) == r.devices.select(IDLE_COLUMNS).row(0)
    # At 0.6, [30, 40) at 0.5 and [50, 60) at 0.05 become idle too.
    high = cl.account(**inputs(power_with_util(ROWS)), execution_idle_below=0.6)
    assert high.devices.select(["busy_s", "execution_idle_s"]).row(0) == (10.0, 40.0)


def test_without_utilization_the_columns_are_absent() -> None:
    plain = power_with_util(ROWS).drop_columns(["utilization"])
    r = cl.account(**inputs(plain))
    for t in (r.allocations, r.unallocated, r.devices):
        assert not set(IDLE_COLUMNS) & set(t.columns)
    # And utilization changes none of the other numbers.
    with_u = cl.account(**inputs(power_with_util(ROWS)))
    assert with_u.allocations.drop(IDLE_COLUMNS).equals(r.allocations)
    assert with_u.devices.drop(IDLE_COLUMNS).equals(r.devices)


def test_duplicates_average_their_utilization() -> None:
    rows = [(0, 100, 0.9), (10, 100, 0.02), (10, 100, 0.06)]
    r = cl.account(**{**inputs(power_with_util(rows)), "period": (at(0), at(10))})
    # Mean 0.04 < 0.05: [0, 10) is idle.
    assert r.devices.select(["busy_s", "execution_idle_s"]).row(0) == (0.0, 10.0)


def test_percentage_in_the_fraction_column_is_an_error() -> None:
    rows = [(0, 100, 70.0), (10, 100, 90.0)]
    with pytest.raises(
        InvalidSampleError, match=r"'utilization'.*70.*device_id 'g0'.*utilization_pct"
    ):
        cl.account(**inputs(power_with_util(rows)))


def test_both_utilization_columns_is_an_error() -> None:
    t = power_with_util(ROWS).append_column("utilization_pct", pa.array([1.0] * len(ROWS)))
    with pytest.raises(SchemaError, match=r"both 'utilization'.*'utilization_pct'"):
        cl.account(**inputs(t))


def test_threshold_out_of_range() -> None:
    with pytest.raises(cl.InputError, match=r"execution_idle_below.*1\.5"):
        cl.account(**inputs(power_with_util(ROWS)), execution_idle_below=1.5)


def test_parquet_sorted_and_in_memory_agree(tmp_path: Path) -> None:
    t = power_with_util(ROWS)
    pq.write_table(t, tmp_path / "p.parquet")
    mem = cl.account(**inputs(t))
    disk = cl.account(**inputs(str(tmp_path / "p.parquet")))
    shuffled = t.take(pa.array([3, 0, 6, 2, 5, 1, 4]))
    held = cl.account(**inputs(shuffled), sort=True)
    for other in (disk, held):
        assert other.allocations.equals(mem.allocations)
        assert other.devices.drop(["first_ts", "last_ts"]).equals(
            mem.devices.drop(["first_ts", "last_ts"])
        )


@settings(max_examples=60, deadline=None)
@given(
    utils=st.lists(st.one_of(st.none(), st.floats(0, 1)), min_size=12, max_size=12),
    powers=st.lists(st.floats(0, 700), min_size=12, max_size=12),
    cuts=st.lists(st.integers(0, 110), min_size=4, max_size=4),
    shares=st.lists(st.sampled_from([0.25, 0.5, 1.0]), min_size=2, max_size=2),
    split=st.integers(1, 11),
)
def test_conservation_and_batch_split(
    utils: list[float | None],
    powers: list[float],
    cuts: list[int],
    shares: list[float],
    split: int,
) -> None:
    rows = [(10.0 * i, powers[i], utils[i]) for i in range(12)]
    t = power_with_util(rows)
    c = sorted(cuts)
    allocs = allocations_table(
        [("A", "g0", c[0], c[1] + 1, shares[0]), ("B", "g0", c[2], c[3] + 1, shares[1])]
    )
    kw = {**inputs(t), "allocations": allocs, "period": (at(0), at(110)), "overlap": "normalize"}
    r = cl.account(**kw)
    dev = r.devices.row(0, named=True)
    for col in IDLE_COLUMNS[2:]:
        total = float(r.allocations[col].sum()) + float(r.unallocated[col][0])
        assert total == pytest.approx(dev[col], rel=1e-9, abs=1e-15)
    assert dev["busy_s"] + dev["execution_idle_s"] <= 110 + 1e-9
    # Batches of any size give the same numbers.
    split_r = cl.account(
        **{**kw, "power": pa.Table.from_batches(t.to_batches(max_chunksize=split))}
    )
    assert split_r.allocations.equals(r.allocations)
    assert split_r.devices.equals(r.devices)


def test_summary_and_report_show_execution_idle() -> None:
    from carbonledger.html_report import render_html
    from carbonledger.ledger import summary_text

    r = cl.account(**inputs(power_with_util(ROWS)))
    text = summary_text(r, ["phase"])
    # Jobs: idle 15 + 5 s of 10 + 20 + 15 + 5 s known; 1500 J + 250 J of 2500 + 1750 J.
    assert "execution-idle time (jobs)" in text and "40.0%" in text
    assert f"{1750 / 3.6e6:16.6f} kWh (41.2% of the jobs' energy)" in text
    page = render_html(r, {}, ["phase"])
    assert "Execution-idle" in page and "40.0%" in page
    plain = cl.account(**inputs(power_with_util(ROWS).drop_columns(["utilization"])))
    assert "execution-idle" not in summary_text(plain, ["phase"])


@pytest.mark.parametrize("producer", ["polars", "lazy", "reader", "duckdb"])
def test_every_producer_carries_utilization(producer: str) -> None:
    import duckdb
    import polars as pl

    t = power_with_util(ROWS)
    objs: dict[str, Any] = {
        "polars": lambda: pl.from_arrow(t),
        "lazy": lambda: pl.from_arrow(t).lazy(),  # type: ignore[union-attr]
        "reader": lambda: pa.RecordBatchReader.from_batches(t.schema, t.to_batches()),
        "duckdb": lambda: duckdb.from_arrow(t),
    }
    ref = cl.account(**inputs(t)).devices.select(IDLE_COLUMNS).row(0)
    got = cl.account(**inputs(objs[producer]())).devices.select(IDLE_COLUMNS).row(0)
    assert got == ref
