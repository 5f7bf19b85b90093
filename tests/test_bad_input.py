"""SPEC section 11 (bad input) and the input rules of sections 2-8.

Every rejected input must raise the most specific class of
``carbonledger.exceptions`` with a message that names the culprit: the table,
the column, and the offending value or id (or range, for coverage errors).
Messages are compared case-insensitively, by substring, so that the tests do
not pin their exact wording.

The base case is SPEC section 12's worked example (fixture ``spec12``): device
``g0`` at site ``s1`` in region ``R``, samples at 0, 10, 20 and 40 s,
``max_gap`` 15 s, intensity rows [0, 15) and [15, 60), allocation ``A`` on
[5, 25), period [0, 40). Each test breaks one thing in it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import polars as pl
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
from polars.testing import assert_frame_equal

import carbonledger as cl
from carbonledger.exceptions import (
    CoverageError,
    InputError,
    InvalidSampleError,
    OrderError,
    OverlapError,
    SchemaError,
    UnknownIdError,
)

Kwargs = dict[str, Any]
Override = Callable[[Kwargs], Kwargs]
PowerRows = list[tuple[Any, float, float]]
GridRows = list[tuple[float, float | None, float]]
AllocRows = list[tuple[str, Any, float, float, float]]

POWER_SCHEMA = pa.schema([("device_id", pa.string()), ("ts", TS), ("power_w", pa.float64())])
INSTALLED = dt.datetime(2024, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------- helpers


def expect(
    exc: type[Exception], parts: Sequence[str], kwargs: Kwargs, **over: Any
) -> pytest.ExceptionInfo[Exception]:
    """``account(**kwargs, **over)`` raises exactly ``exc`` naming every part."""
    with pytest.raises(exc) as info:
        cl.account(**{**kwargs, **over})
    assert type(info.value) is exc, f"expected {exc.__name__}, got {info.value!r}"
    assert isinstance(info.value, InputError)
    assert isinstance(info.value, ValueError)
    msg = str(info.value).lower()
    missing = [p for p in parts if p.lower() not in msg]
    assert not missing, f"message {str(info.value)!r} does not name {missing}"
    return info


def set_col(table: pa.Table, name: str, values: Any) -> pa.Table:
    """``table`` with column ``name`` replaced (or appended)."""
    arr = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, arr)
    return table.append_column(name, arr)


def two_devices(q_rows: list[tuple[float, float | None, float]]) -> Kwargs:
    """Overrides adding device ``g1`` (no samples) at site ``s2`` in region ``Q``."""
    return {
        "devices": pa.concat_tables(
            [devices_table(), devices_table(device_id=["g1"], site_id=["s2"])]
        ),
        "sites": pa.concat_tables([sites_table(), sites_table(site_id=["s2"], region=["Q"])]),
        "intensity": pa.concat_tables(
            [
                intensity_table([(0, 15, 400), (15, 60, 100)]),
                intensity_table(q_rows, region=["Q"] * len(q_rows)),
            ]
        ),
    }


def unread_power(schema: pa.Schema = POWER_SCHEMA) -> tuple[pa.RecordBatchReader, list[int]]:
    """A power stream that fails if the engine pulls a single batch from it."""
    pulls: list[int] = []

    def gen() -> Iterator[pa.RecordBatch]:
        pulls.append(1)
        raise AssertionError("power samples were read")
        yield pa.RecordBatch.from_pylist([], schema=schema)

    return pa.RecordBatchReader.from_batches(schema, gen()), pulls


def energy_j(frame: pl.DataFrame) -> list[float]:
    return [v * 3.6e6 for v in frame["energy_kwh"].to_list()]


# --------------------------------------------------------------------------- schema


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("power", "device_id"),
        ("power", "ts"),
        ("devices", "device_id"),
        ("devices", "site_id"),
        ("devices", "embodied_kgco2e"),
        ("devices", "installed_at"),
        ("sites", "site_id"),
        ("sites", "region"),
        ("sites", "pue"),
        ("intensity", "region"),
        ("intensity", "start"),
        ("intensity", "gco2e_per_kwh"),
        ("allocations", "job_id"),
        ("allocations", "device_id"),
        ("allocations", "start"),
        ("allocations", "end"),
    ],
)
def test_missing_required_column(spec12: Kwargs, table: str, column: str) -> None:
    expect(SchemaError, [table, column], spec12, **{table: spec12[table].drop_columns([column])})


def test_missing_power_value_column(spec12: Kwargs) -> None:
    power = spec12["power"].drop_columns(["power_w"])
    expect(SchemaError, ["power", "power_w", "energy_j"], spec12, power=power)


def test_missing_lifetime_and_retired_at(spec12: Kwargs) -> None:
    devices = spec12["devices"].drop_columns(["lifetime_years"])
    expect(SchemaError, ["devices", "lifetime_years", "retired_at"], spec12, devices=devices)


def test_both_power_w_and_energy_j(spec12: Kwargs) -> None:
    power = spec12["power"].append_column("energy_j", pa.array([0.0, 1.0, 2.0, 3.0]))
    expect(SchemaError, ["power", "power_w", "energy_j"], spec12, power=power)


def test_energy_j_alone_is_accepted(spec12: Kwargs) -> None:
    power = spec12["power"].rename_columns(["device_id", "ts", "energy_j"])
    cl.account(**{**spec12, "power": power})


@pytest.mark.parametrize(
    ("table", "column", "values"),
    [
        ("power", "ts", [0.0, 10.0, 20.0, 40.0]),
        ("power", "ts", [0, 10, 20, 40]),
        ("power", "power_w", ["100", "300", "300", "100"]),
        ("power", "device_id", [0.0, 0.0, 0.0, 0.0]),
        ("devices", "device_id", [0.0]),
        ("devices", "embodied_kgco2e", ["150"]),
        ("devices", "installed_at", [0]),
        ("devices", "installed_at", [0.0]),
        ("devices", "lifetime_years", ["4"]),
        ("sites", "pue", ["1.5"]),
        ("intensity", "end", [15.0, 60.0]),
        ("intensity", "gco2e_per_kwh", ["400", "100"]),
        ("intensity", "cfe", ["0.25", "0.25"]),
        ("allocations", "start", [5.0]),
        ("allocations", "end", [25.0]),
        ("allocations", "share", ["1"]),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v[0]).__name__,
)
def test_mistyped_column(spec12: Kwargs, table: str, column: str, values: list[Any]) -> None:
    broken = set_col(spec12[table], column, values)
    expect(SchemaError, [table, column], spec12, **{table: broken})


def test_mistyped_energy_j(spec12: Kwargs) -> None:
    power = (
        spec12["power"]
        .drop_columns(["power_w"])
        .append_column("energy_j", pa.array(["0", "1", "2", "3"]))
    )
    expect(SchemaError, ["power", "energy_j"], spec12, power=power)


def test_unparseable_timestamp_names_value(spec12: Kwargs) -> None:
    devices = devices_table(installed_at=["not-a-time"])
    expect(InputError, ["devices", "installed_at", "not-a-time"], spec12, devices=devices)


def _int_ids_in_power(kw: Kwargs) -> Kwargs:
    return {"power": power_table([(0, 0, 100), (0, 10, 300), (0, 20, 300), (0, 40, 100)])}


def _int_ids_in_allocations(kw: Kwargs) -> Kwargs:
    return {"allocations": allocations_table([("A", 0, 5, 25, 1.0)])}


def _int_ids_in_devices(kw: Kwargs) -> Kwargs:
    return {"devices": devices_table(device_id=[0])}


def _int_site_in_devices(kw: Kwargs) -> Kwargs:
    return {"devices": devices_table(site_id=[1])}


def _int_region_in_intensity(kw: Kwargs) -> Kwargs:
    return {"intensity": set_col(kw["intensity"], "region", [1, 1])}


@pytest.mark.parametrize(
    ("override", "table", "column"),
    [
        (_int_ids_in_power, "power", "device_id"),
        (_int_ids_in_allocations, "allocations", "device_id"),
        (_int_ids_in_devices, "devices", "device_id"),
        (_int_site_in_devices, "devices", "site_id"),
        (_int_region_in_intensity, "intensity", "region"),
    ],
    ids=["power", "allocations", "devices", "site_id", "region"],
)
def test_id_kind_differs_between_tables(
    spec12: Kwargs, override: Override, table: str, column: str
) -> None:
    expect(SchemaError, [table, column], spec12, **override(spec12))


def test_integer_ids_everywhere_are_accepted(spec12: Kwargs) -> None:
    cl.account(
        **{
            **spec12,
            "power": power_table([(7, 0, 100), (7, 10, 300), (7, 20, 300), (7, 40, 100)]),
            "devices": devices_table(device_id=pa.array([7], pa.int32())),
            "allocations": allocations_table([("A", 7, 5, 25, 1.0)]),
        }
    )


def test_output_column_clash(spec12: Kwargs) -> None:
    allocations = allocations_table([("A", "g0", 5, 25, 1.0)], energy_kwh=[1.0])
    expect(SchemaError, ["allocations", "energy_kwh"], spec12, allocations=allocations)


# ------------------------------------------------------------------ nulls in required cells


def _null_power_device(kw: Kwargs) -> Kwargs:
    return {"power": set_col(kw["power"], "device_id", ["g0", None, "g0", "g0"])}


def _null_alloc_device(kw: Kwargs) -> Kwargs:
    return {"allocations": set_col(kw["allocations"], "device_id", pa.array([None], pa.string()))}


def _null_alloc_start(kw: Kwargs) -> Kwargs:
    return {"allocations": set_col(kw["allocations"], "start", pa.array([None], TS))}


def _null_devices_site(kw: Kwargs) -> Kwargs:
    return {"devices": devices_table(site_id=pa.array([None], pa.string()))}


def _null_installed_at(kw: Kwargs) -> Kwargs:
    return {"devices": devices_table(installed_at=pa.array([None], TS))}


def _null_intensity_start(kw: Kwargs) -> Kwargs:
    return {"intensity": set_col(kw["intensity"], "start", pa.array([at(0), None], TS))}


def _null_intensity_region(kw: Kwargs) -> Kwargs:
    return {"intensity": set_col(kw["intensity"], "region", ["R", None])}


@pytest.mark.parametrize(
    ("override", "table", "column"),
    [
        (_null_power_device, "power", "device_id"),
        (_null_alloc_device, "allocations", "device_id"),
        (_null_alloc_start, "allocations", "start"),
        (_null_devices_site, "devices", "site_id"),
        (_null_installed_at, "devices", "installed_at"),
        (_null_intensity_start, "intensity", "start"),
        (_null_intensity_region, "intensity", "region"),
    ],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_null_in_required_column(
    spec12: Kwargs, override: Override, table: str, column: str
) -> None:
    expect(InputError, [table, column], spec12, **override(spec12))


# --------------------------------------------------------------------------- end <= start


@pytest.mark.parametrize(("start", "end"), [(25, 5), (5, 5)], ids=["before", "equal"])
def test_allocation_end_not_after_start(spec12: Kwargs, start: float, end: float) -> None:
    allocations = allocations_table([("A", "g0", start, end, 1.0)])
    expect(
        InputError,
        ["allocations", "end", at(end).strftime("%Y-%m-%dT%H:%M:%S")],
        spec12,
        allocations=allocations,
    )


@pytest.mark.parametrize(("start", "end"), [(15, 10), (15, 15)], ids=["before", "equal"])
def test_intensity_explicit_end_not_after_start(spec12: Kwargs, start: float, end: float) -> None:
    intensity = intensity_table([(0, 15, 400), (start, end, 100)])
    expect(
        InputError,
        ["intensity", "end", "'r'", at(end).strftime("%Y-%m-%dT%H:%M:%S")],
        spec12,
        intensity=intensity,
    )


@pytest.mark.parametrize(("start", "end"), [(40, 0), (10, 10)], ids=["before", "equal"])
def test_period_end_not_after_start(spec12: Kwargs, start: float, end: float) -> None:
    expect(InputError, ["period"], spec12, period=(at(start), at(end)))


# --------------------------------------------------------------------------- share


@pytest.mark.parametrize(
    ("share", "text"), [(0.0, "0"), (-0.5, "-0.5"), (1.5, "1.5"), (math.inf, "inf")]
)
def test_share_outside_unit_interval(spec12: Kwargs, share: float, text: str) -> None:
    allocations = allocations_table([("A", "g0", 5, 25, share)])
    expect(InputError, ["allocations", "share", text], spec12, allocations=allocations)


def test_share_nan(spec12: Kwargs) -> None:
    allocations = allocations_table([("A", "g0", 5, 25, math.nan)])
    expect(InputError, ["allocations", "share", "nan"], spec12, allocations=allocations)


def test_share_null_means_one(spec12: Kwargs) -> None:
    nulled = set_col(spec12["allocations"], "share", pa.array([None], pa.float64()))
    got = cl.account(**{**spec12, "allocations": nulled}).allocations
    want = cl.account(**spec12).allocations
    assert_frame_equal(got.drop("share"), want.drop("share"))


# --------------------------------------------------------------------------- unknown ids


@pytest.mark.parametrize("t", [10, -15], ids=["inside_period", "edge_of_read_window"])
def test_unknown_device_in_power(spec12: Kwargs, t: float) -> None:
    power = power_table([("g0", 0, 100), ("gX", t, 300), ("g0", 20, 300), ("g0", 40, 100)])
    expect(UnknownIdError, ["power", "device_id", "gx"], spec12, power=power)


def test_rows_outside_the_read_window_are_ignored(spec12: Kwargs) -> None:
    """SPEC 8 (v1.1): with an explicit period, rows outside [start - max_gap,
    end + max_gap] are neither counted nor validated (max_gap is 15 s here)."""
    want = cl.account(**spec12)
    rows = [("gX", -100, 300), ("g0", -15.000001, float("nan")), ("g0", 0, 100)]
    rows += [("g0", 10, 300), ("g0", 20, 300), ("g0", 40, 100), ("g0", 55.5, -1)]
    got = cl.account(**{**spec12, "power": power_table(rows)})
    for name in ("allocations", "unallocated", "devices", "grid"):
        assert got.to_arrow(name).equals(want.to_arrow(name)), name
    # A row just inside the window is read (and counted as invalid).
    rows[1] = ("g0", -15, float("nan"))
    got = cl.account(**{**spec12, "power": power_table(rows[1:])})
    assert got.devices["samples"].to_list() == [5]
    assert got.devices["invalid_samples"].to_list() == [1]


@pytest.mark.parametrize(
    ("start", "end"), [(5, 25), (100, 125)], ids=["inside_period", "outside_period"]
)
def test_unknown_device_in_allocations(spec12: Kwargs, start: float, end: float) -> None:
    allocations = allocations_table([("A", "g0", 5, 25, 1.0), ("B", "gX", start, end, 1.0)])
    expect(UnknownIdError, ["allocations", "device_id", "gx"], spec12, allocations=allocations)


def test_unknown_site_in_devices(spec12: Kwargs) -> None:
    expect(
        UnknownIdError, ["devices", "site_id", "sx"], spec12, devices=devices_table(site_id=["sX"])
    )


def test_duplicate_device_id(spec12: Kwargs) -> None:
    devices = pa.concat_tables([devices_table(), devices_table(embodied_kgco2e=[1.0])])
    expect(InputError, ["devices", "device_id", "g0"], spec12, devices=devices)


def test_duplicate_site_id(spec12: Kwargs) -> None:
    sites = pa.concat_tables([sites_table(), sites_table(pue=[1.2])])
    expect(InputError, ["sites", "site_id", "s1"], spec12, sites=sites)


# --------------------------------------------------------------------------- intensity coverage

HOLE: GridRows = [(0, 15, 400), (20, 60, 100)]  # nothing in [15, 20), where power has samples


@pytest.mark.parametrize("explicit", [True, False], ids=["explicit_period", "default_period"])
def test_intensity_hole_where_power_has_samples(spec12: Kwargs, explicit: bool) -> None:
    period = spec12["period"] if explicit else None
    expect(
        CoverageError,
        ["intensity", "'r'", "00:00:15", "00:00:20"],
        spec12,
        intensity=intensity_table(HOLE),
        period=period,
    )


@pytest.mark.parametrize(
    ("rows", "lo", "hi"),
    [
        ([(0, 15, 400), (15, 30, 100), (35, 60, 100)], "00:00:30", "00:00:35"),  # uncovered span
        ([(5, 15, 400), (15, 60, 100)], "00:00:00", "00:00:05"),  # starts after the period
        ([(0, 15, 400), (15, 30, 100)], "00:00:30", "00:00:40"),  # ends before the period
        # implicit ends: [0, 15) then the last row lasts as long as the one before: [15, 30)
        ([(0, None, 400), (15, None, 100)], "00:00:30", "00:00:40"),
    ],
    ids=["in_gap", "late_start", "early_end", "implicit_last_end"],
)
def test_intensity_hole_inside_explicit_period(
    spec12: Kwargs, rows: list[tuple[float, float | None, float]], lo: str, hi: str
) -> None:
    expect(CoverageError, ["intensity", "'r'", lo, hi], spec12, intensity=intensity_table(rows))


@pytest.mark.parametrize("explicit", [True, False], ids=["explicit_period", "default_period"])
def test_intensity_hole_for_device_without_samples(spec12: Kwargs, explicit: bool) -> None:
    period = spec12["period"] if explicit else None
    over = two_devices([(0, 10, 1), (30, 60, 1)])
    expect(
        CoverageError, ["intensity", "'q'", "00:00:10", "00:00:30"], spec12, period=period, **over
    )


@pytest.mark.parametrize("explicit", [True, False], ids=["explicit_period", "default_period"])
def test_region_without_intensity_rows(spec12: Kwargs, explicit: bool) -> None:
    period = spec12["period"] if explicit else None
    expect(
        CoverageError, ["intensity", "'q'"], spec12, sites=sites_table(region=["Q"]), period=period
    )


def test_intensity_rows_overlap(spec12: Kwargs) -> None:
    intensity = intensity_table([(0, 25, 400), (15, 60, 100)])
    expect(CoverageError, ["intensity", "'r'", "00:00:15", "00:00:25"], spec12, intensity=intensity)


@pytest.mark.parametrize(
    "over",
    [
        {"intensity": intensity_table([(0, 15, 400), (15, 40, 100), (50, 60, 100)])},
        {"intensity": intensity_table([(0, None, 400)])},  # a region's only row never ends
        {"intensity": intensity_table([(0, None, 400), (20, None, 100)])},  # [20, 40)
        two_devices([(0, 60, 1)])
        | {
            "intensity": pa.concat_tables(
                [
                    intensity_table([(0, 15, 400), (15, 60, 100)]),
                    intensity_table([(0, 60, 1)], region=["Q"]),
                    intensity_table([(0, 1, 1), (50, 60, 1)], region=["unused"] * 2),
                ]
            )
        },
    ],
    ids=["hole_after_period", "only_row", "implicit_ends_cover", "unused_region_hole"],
)
def test_intensity_coverage_accepted(spec12: Kwargs, over: Kwargs) -> None:
    cl.account(**{**spec12, **over})


def test_intensity_hole_outside_default_period_accepted(spec12: Kwargs) -> None:
    intensity = intensity_table([(0, 15, 400), (15, 40, 100), (50, 60, 100)])
    cl.account(**{**spec12, "intensity": intensity, "period": None})


# --------------------------------------------------------------------------- value domains


@pytest.mark.parametrize(("pue", "text"), [(0.9, "0.9"), (0.0, "0"), (-1.0, "-1")])
def test_pue_below_one(spec12: Kwargs, pue: float, text: str) -> None:
    expect(InputError, ["sites", "pue", text, "s1"], spec12, sites=sites_table(pue=[pue]))


def test_pue_exactly_one_accepted(spec12: Kwargs) -> None:
    cl.account(**{**spec12, "sites": sites_table(pue=[1.0])})


@pytest.mark.parametrize(("value", "text"), [(-1.0, "-1"), (math.nan, "nan"), (-math.inf, "inf")])
def test_embodied_negative_or_not_finite(spec12: Kwargs, value: float, text: str) -> None:
    devices = devices_table(embodied_kgco2e=[value])
    expect(InputError, ["devices", "embodied_kgco2e", text, "g0"], spec12, devices=devices)


def test_embodied_zero_accepted(spec12: Kwargs) -> None:
    cl.account(**{**spec12, "devices": devices_table(embodied_kgco2e=[0.0])})


@pytest.mark.parametrize(("value", "text"), [(0.0, "0"), (-1.0, "-1"), (math.nan, "nan")])
def test_lifetime_years_not_positive(spec12: Kwargs, value: float, text: str) -> None:
    devices = devices_table(lifetime_years=[value])
    expect(InputError, ["devices", "lifetime_years", text, "g0"], spec12, devices=devices)


@pytest.mark.parametrize(
    ("retired", "keep_lifetime"),
    [
        (dt.datetime(2023, 1, 1, tzinfo=UTC), False),
        (INSTALLED, False),
        (dt.datetime(2023, 1, 1, tzinfo=UTC), True),  # retired_at wins over lifetime_years
    ],
    ids=["before", "equal", "with_lifetime_years"],
)
def test_retired_at_not_after_installed_at(
    spec12: Kwargs, retired: dt.datetime, keep_lifetime: bool
) -> None:
    devices = devices_table(retired_at=pa.array([retired], TS))
    if not keep_lifetime:
        devices = devices.drop_columns(["lifetime_years"])
    expect(
        InputError,
        ["devices", "retired_at", "g0", retired.strftime("%Y-%m-%dT%H:%M:%S")],
        spec12,
        devices=devices,
    )


@pytest.mark.parametrize(
    ("column", "values", "text"),
    [
        ("gco2e_per_kwh", [-400.0, 100.0], "-400"),
        ("gco2e_per_kwh", [math.nan, 100.0], "nan"),
        ("cfe", [1.5, 0.25], "1.5"),
        ("cfe", [0.25, -0.1], "-0.1"),
        ("residual_gco2e_per_kwh", [-1.0, 100.0], "-1"),
    ],
)
def test_intensity_value_out_of_domain(
    spec12: Kwargs, column: str, values: list[float], text: str
) -> None:
    intensity = set_col(spec12["intensity"], column, values)
    expect(InputError, ["intensity", column, text, "'r'"], spec12, intensity=intensity)


# --------------------------------------------------------------------------- bounds on inputs
# Beyond SPEC 11: ceilings far above anything real that keep every product
# of accepted inputs finite (docs/methodology.md, "Bounds on inputs"). Each
# value below used to give NaN or infinity in the ledger with exit 0.


def test_pue_above_ceiling(spec12: Kwargs) -> None:
    expect(
        InputError,
        ["sites", "pue", "1e300", "s1", "at most 100"],
        spec12,
        sites=sites_table(pue=[1e300]),
    )


def test_pue_at_ceiling_accepted(spec12: Kwargs) -> None:
    cl.account(**{**spec12, "sites": sites_table(pue=[100.0])})


@pytest.mark.parametrize("column", ["gco2e_per_kwh", "residual_gco2e_per_kwh"])
def test_intensity_above_ceiling(spec12: Kwargs, column: str) -> None:
    intensity = set_col(spec12["intensity"], column, [1.7e308, 100.0])
    expect(InputError, ["intensity", column, "1.7e308", "at most 1e5"], spec12, intensity=intensity)


def test_embodied_above_ceiling(spec12: Kwargs) -> None:
    devices = devices_table(embodied_kgco2e=[1.7e308])
    expect(InputError, ["devices", "embodied_kgco2e", "g0", "at most 1e9"], spec12, devices=devices)


def test_idle_power_above_ceiling(spec12: Kwargs) -> None:
    devices = devices_table(idle_power_w=[1e308])
    expect(
        InputError,
        ["devices", "idle_power_w", "g0", "at most 1e9"],
        spec12,
        devices=devices,
        gap_fill="idle",
    )
    # Within the column's bound but above the device's power ceiling: the
    # engine books idle fill as power, so the ceiling applies to it too.
    devices = devices_table(idle_power_w=[5000.0], max_power_w=[1000.0])
    expect(
        InputError,
        ["devices", "idle_power_w", "5000", "g0", "ceiling of 1000"],
        spec12,
        devices=devices,
        gap_fill="idle",
    )


def test_power_ceilings_bounded(spec12: Kwargs) -> None:
    expect(InputError, ["max_power_w", "at most 1e9"], spec12, max_power_w=1e300)
    devices = devices_table(max_power_w=[1e300])
    expect(InputError, ["devices", "max_power_w", "g0", "at most 1e9"], spec12, devices=devices)


def test_lifetime_rounding_to_nothing(spec12: Kwargs) -> None:
    # 1e-18 years is 3e-11 s: no nanosecond of window, so no embodied carbon
    # could ever be booked; an error, not a silent zero.
    devices = devices_table(lifetime_years=[1e-18])
    expect(
        InputError, ["devices", "lifetime_years", "g0", "at least 1 ns"], spec12, devices=devices
    )


# --------------------------------------------------------------------------- over-allocation

OVER: AllocRows = [("A", "g0", 5, 25, 1.0), ("B", "g0", 10, 30, 0.5)]  # 1.5 on [10, 25)


def test_over_allocation(spec12: Kwargs) -> None:
    expect(
        OverlapError,
        ["allocations", "share", "g0", "1.5", "00:00:10"],
        spec12,
        allocations=allocations_table(OVER),
    )


def test_over_allocation_partly_inside_period(spec12: Kwargs) -> None:
    allocations = allocations_table([("A", "g0", 30, 50, 1.0), ("B", "g0", 35, 55, 0.5)])
    expect(OverlapError, ["g0", "00:00:35"], spec12, allocations=allocations)


def test_over_allocation_just_above_tolerance(spec12: Kwargs) -> None:
    allocations = allocations_table([("A", "g0", 5, 25, 0.5), ("B", "g0", 5, 25, 0.5 + 1e-8)])
    expect(OverlapError, ["g0", "00:00:05"], spec12, allocations=allocations)


def test_over_allocation_normalized(spec12: Kwargs) -> None:
    r = cl.account(**{**spec12, "allocations": allocations_table(OVER), "overlap": "normalize"})
    # [5, 10): A alone, 1250 J; [10, 20): 3000 J split 2/3 : 1/3; from 20 s: uncovered.
    a, b = energy_j(r.allocations)
    assert a == pytest.approx(3250, rel=1e-12)
    assert b == pytest.approx(1000, rel=1e-12)
    assert energy_j(r.unallocated) == [pytest.approx(750, rel=1e-12)]
    # unallocated time: [0, 5), half of [25, 30), [30, 40)
    assert r.unallocated["duration_s"][0] == pytest.approx(17.5, rel=1e-12)


@pytest.mark.parametrize("explicit", [True, False], ids=["explicit_period", "default_period"])
def test_over_allocation_outside_period_accepted(spec12: Kwargs, explicit: bool) -> None:
    allocations = allocations_table([("C", "g0", 45, 55, 1.0), ("D", "g0", 45, 55, 0.5)])
    period = spec12["period"] if explicit else None
    r = cl.account(**{**spec12, "allocations": allocations, "period": period})
    assert r.allocations["duration_s"].to_list() == [0.0, 0.0]
    assert energy_j(r.allocations) == [0.0, 0.0]


def test_over_allocation_within_tolerance_scaled_silently(spec12: Kwargs) -> None:
    allocations = allocations_table([("A", "g0", 5, 25, 0.5), ("B", "g0", 5, 25, 0.5 + 5e-10)])
    r = cl.account(**{**spec12, "allocations": allocations})
    assert sum(energy_j(r.allocations)) == pytest.approx(4250, rel=1e-12)
    u = r.unallocated.row(0, named=True)
    assert u["energy_kwh"] * 3.6e6 == pytest.approx(750, rel=1e-12)  # only [0, 5)
    assert u["duration_s"] == pytest.approx(20, rel=1e-12)  # [0, 5) and [25, 40)


def test_adjacent_allocations_do_not_overlap(spec12: Kwargs) -> None:
    allocations = allocations_table([("A", "g0", 0, 20, 1.0), ("B", "g0", 20, 40, 1.0)])
    cl.account(**{**spec12, "allocations": allocations})


# --------------------------------------------------------------------------- sample order

UNSORTED: PowerRows = [("g0", 0, 100), ("g0", 20, 300), ("g0", 10, 300), ("g0", 40, 100)]
SORTED: PowerRows = [("g0", 0, 100), ("g0", 10, 300), ("g0", 20, 300), ("g0", 40, 100)]


def test_samples_out_of_order(spec12: Kwargs) -> None:
    expect(
        OrderError,
        ["power", "ts", "g0", "00:00:10", "00:00:20"],
        spec12,
        power=power_table(UNSORTED),
    )


def test_samples_out_of_order_across_batches(spec12: Kwargs) -> None:
    first, second = power_table(UNSORTED[:2]), power_table(UNSORTED[2:])
    power = pa.RecordBatchReader.from_batches(
        first.schema, first.to_batches() + second.to_batches()
    )
    expect(OrderError, ["power", "g0", "00:00:10"], spec12, power=power)


def test_samples_out_of_order_names_the_device(spec12: Kwargs) -> None:
    over = two_devices([(0, 60, 1)])
    rows: PowerRows = [("g0", 0, 100), ("g1", 30, 5), ("g0", 10, 300), ("g1", 5, 5)]
    power = power_table(rows)
    info = expect(OrderError, ["power", "g1", "00:00:05"], spec12, power=power, **over)
    assert "g0" not in str(info.value)


def test_interleaved_devices_and_duplicate_ts_are_in_order(spec12: Kwargs) -> None:
    over = two_devices([(0, 60, 1)])
    rows: PowerRows = [
        ("g0", 0, 100),
        ("g1", 0, 5),
        ("g0", 10, 300),
        ("g0", 10, 300),  # a duplicate ts is not out of order
        ("g1", 5, 5),
        ("g0", 20, 300),
        ("g1", 40, 1),
        ("g0", 40, 100),
    ]
    power = power_table(rows)
    cl.account(**{**spec12, **over, "power": power})


def test_sort_true_accepts_unsorted_samples(spec12: Kwargs) -> None:
    got = cl.account(**{**spec12, "power": power_table(UNSORTED), "sort": True})
    want = cl.account(**{**spec12, "power": power_table(SORTED)})
    assert_frame_equal(got.allocations, want.allocations)
    assert_frame_equal(got.unallocated, want.unallocated)
    assert_frame_equal(got.devices, want.devices)


# --------------------------------------------------------------------------- invalid samples


@pytest.mark.parametrize(
    ("column", "value", "text"),
    [
        ("power_w", math.nan, "nan"),
        ("power_w", math.inf, "inf"),
        ("power_w", -5.0, "-5"),
        ("energy_j", math.nan, "nan"),
        ("energy_j", -math.inf, "inf"),
        ("energy_j", -5.0, "-5"),
    ],
)
def test_invalid_sample_raises(spec12: Kwargs, column: str, value: float, text: str) -> None:
    rows: PowerRows = [("g0", 0, 100), ("g0", 10, value), ("g0", 20, 300), ("g0", 40, 400)]
    expect(
        InvalidSampleError,
        ["power", column, text, "g0", "00:00:10"],
        spec12,
        power=power_table(rows, col=column),
        on_invalid="raise",
    )


def test_invalid_sample_dropped_by_default(spec12: Kwargs) -> None:
    rows: PowerRows = [("g0", 0, 100), ("g0", 10, math.nan), ("g0", 20, 300), ("g0", 40, 100)]
    r = cl.account(**{**spec12, "power": power_table(rows)})
    assert r.devices["invalid_samples"].to_list() == [1]


# --------------------------------------------------------------------------- gap_fill="idle"


@pytest.mark.parametrize("how", ["no_column", "null"])
def test_idle_fill_without_idle_power(spec12: Kwargs, how: str) -> None:
    devices = devices_table()
    if how == "null":
        devices = devices_table(idle_power_w=pa.array([None], pa.float64()))
    expect(
        InputError,
        ["devices", "idle_power_w", "g0"],
        spec12,
        devices=devices,
        gap_fill="idle",
    )


def test_idle_fill_names_the_device_lacking_idle_power(spec12: Kwargs) -> None:
    over = two_devices([(0, 60, 1)])
    over["devices"] = pa.concat_tables(
        [
            devices_table(idle_power_w=[50.0]),
            devices_table(
                device_id=["g1"], site_id=["s2"], idle_power_w=pa.array([None], pa.float64())
            ),
        ]
    )
    info = expect(InputError, ["idle_power_w", "g1"], spec12, gap_fill="idle", **over)
    assert "'g0'" not in str(info.value)


def test_idle_fill_not_needed_without_uncovered_time(spec12: Kwargs) -> None:
    # max_gap 60 s: g0 is covered over all of [0, 40), nothing to fill
    cl.account(**{**spec12, "gap_fill": "idle", "max_gap": 60})


# --------------------------------------------------------------------------- period and options


def test_no_valid_sample_and_no_period(spec12: Kwargs) -> None:
    power = power_table([("g0", 0, math.nan), ("g0", 10, -1.0)])
    expect(InputError, ["power", "period"], spec12, power=power, period=None)


def test_no_sample_at_all_and_no_period(spec12: Kwargs) -> None:
    power = pa.table({n: pa.array([], POWER_SCHEMA.field(n).type) for n in POWER_SCHEMA.names})
    expect(InputError, ["power", "period"], spec12, power=power, period=None)


def test_no_sample_with_explicit_period_accepted(spec12: Kwargs) -> None:
    cl.account(**{**spec12, "power": spec12["power"].slice(0, 0)})


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("interpolation", "cubic"),
        ("gap_fill", "zero"),
        ("on_invalid", "ignore"),
        ("overlap", "sum"),
    ],
)
def test_bad_option_string(spec12: Kwargs, option: str, value: str) -> None:
    expect(InputError, [option, value], spec12, **{option: value})


@pytest.mark.parametrize("value", [-1, math.nan, "5"], ids=["negative", "nan", "str"])
def test_bad_max_gap(spec12: Kwargs, value: Any) -> None:
    expect(InputError, ["max_gap"], spec12, max_gap=value)


def test_unparseable_period(spec12: Kwargs) -> None:
    expect(InputError, ["period", "yesterday"], spec12, period=("yesterday", at(40)))


# ---------------------------------------------------------------- before any sample is read


def test_unread_power_harness_is_read_when_inputs_are_good(spec12: Kwargs) -> None:
    """Control: with valid small tables the engine does pull the stream."""
    power, pulls = unread_power()
    with pytest.raises(InputError):
        cl.account(**{**spec12, "power": power})
    assert pulls == [1]


@pytest.mark.parametrize(
    ("exc", "over", "parts"),
    [
        (UnknownIdError, {"devices": devices_table(site_id=["sX"])}, ["site_id", "sx"]),
        (
            UnknownIdError,
            {"allocations": allocations_table([("A", "gX", 5, 25, 1.0)])},
            ["allocations", "gx"],
        ),
        (CoverageError, {"intensity": intensity_table(HOLE)}, ["'r'", "00:00:15"]),
        (CoverageError, {"sites": sites_table(region=["Q"])}, ["'q'"]),
        (
            CoverageError,
            {"intensity": intensity_table([(0, 25, 400), (15, 60, 100)])},
            ["'r'", "00:00:15"],
        ),
        (CoverageError, two_devices([(0, 10, 1), (30, 60, 1)]), ["'q'", "00:00:10"]),
        (OverlapError, {"allocations": allocations_table(OVER)}, ["g0", "00:00:10"]),
        (InputError, {"sites": sites_table(pue=[0.5])}, ["pue", "0.5"]),
        (InputError, {"devices": devices_table(embodied_kgco2e=[-1.0])}, ["embodied_kgco2e"]),
        (InputError, {"devices": devices_table(lifetime_years=[0.0])}, ["lifetime_years"]),
        (
            InputError,
            {"allocations": allocations_table([("A", "g0", 5, 25, 1.5)])},
            ["share", "1.5"],
        ),
        (
            InputError,
            {"allocations": allocations_table([("A", "g0", 25, 5, 1.0)])},
            ["allocations", "end"],
        ),
        (
            InputError,
            {"devices": pa.concat_tables([devices_table(), devices_table()])},
            ["device_id", "g0"],
        ),
        (SchemaError, {"sites": sites_table().drop_columns(["pue"])}, ["sites", "pue"]),
        (SchemaError, {"devices": devices_table(device_id=[0])}, ["power", "device_id"]),
    ],
    ids=[
        "unknown_site",
        "unknown_alloc_device",
        "intensity_hole",
        "region_without_rows",
        "intensity_overlap",
        "hole_for_device_without_samples",
        "over_allocation",
        "pue",
        "embodied",
        "lifetime",
        "share",
        "alloc_end",
        "duplicate_device",
        "missing_column",
        "id_kind",
    ],
)
def test_small_table_errors_before_any_sample_is_read(
    spec12: Kwargs, exc: type[Exception], over: Kwargs, parts: list[str]
) -> None:
    power, pulls = unread_power()
    info = expect(exc, parts, {**spec12, "allocations": None} | over, power=power)
    assert pulls == [], "the power stream was pulled before the small-table error"
    assert "were read" not in str(info.value)


def test_power_schema_errors_before_any_sample_is_read(spec12: Kwargs) -> None:
    schema = pa.schema(
        [("device_id", pa.string()), ("ts", pa.float64()), ("power_w", pa.float64())]
    )
    power, pulls = unread_power(schema)
    expect(SchemaError, ["power", "ts"], spec12, power=power)
    assert pulls == []
