"""Differential fuzzing of the Python API on hostile inputs (hypothesis).

Valid fleets (the random fleets of ``test_properties``, counters with wraps and
resets included) are moved onto the ticks of a timestamp unit (s, ms, us, ns),
given allocations whose shares sum to exactly 1 (as decimals: 0.1 + 0.2 + 0.7
is 1 + 2^-52 in binary) and boundaries exactly on sample times and one tick
(1 ns in ns columns) off, and grid rows cut at sample times. Each is rendered
in a hostile layout (unit, zone UTC / +05:30 / naive, ids as string,
large_string, string_view, dictionary<int32|uint32, string> or int64) and must
give the same report as the plain layout (ns, UTC, string ids), in memory and
from Parquet files, and hold SPEC 10's invariants.

Invalid inputs (one thing broken in such a fleet) must raise an
``InputError`` subclass naming the culprit, never ``InternalError``, a Rust
panic (``pyo3_runtime.PanicException``) or a bare pyarrow/polars exception,
from ``account`` and from ``validate``.

Examples are bounded so that the file runs in about a minute on two cores.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
import os
import tempfile
from collections.abc import Callable
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_bad_input import set_col
from test_properties import (
    HOUR_S,
    METRICS,
    NS,
    Draw,
    Fleet,
    Grid,
    Job,
    Mismatches,
    Values,
    _by_device,
    assert_same_report,
    fleets,
)

import carbonledger as cl
from carbonledger.exceptions import InputError, InternalError, SchemaError

UNITS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
ZONES = ("UTC", "+05:30", None)
ID_LAYOUTS = ("string", "large_string", "string_view", "dict_int32", "dict_uint32", "int64")
# Lanes of allocations whose shares sum to exactly 1 as decimals.
SHARE_SETS: tuple[tuple[float, ...], ...] = (
    (1.0,),
    (0.25, 0.75),
    (0.5, 0.5),
    (0.1, 0.2, 0.7),
    (1 / 3, 1 / 3, 1 / 3),
    (0.6, 0.4),
)

VALID = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
INVALID = settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclasses.dataclass(frozen=True)
class Layout:
    unit: str
    zone: str | None
    ids: str

    @property
    def tick(self) -> int:
        return UNITS[self.unit]


PLAIN = Layout("ns", "UTC", "string")


# ---------------------------------------------------------------------------
# Hostile valid fleets


def _on_ticks(fleet: Fleet, tick: int, v: Values) -> Fleet:
    """``fleet`` with every instant on a multiple of ``tick``, allocations in
    lanes of shares summing to 1 with edges on sample times (or one tick
    off), and grid rows cut at sample times."""

    def r(t: int) -> int:
        return t // tick * tick

    samples = tuple((d, r(t), x) for d, t, x in fleet.samples)
    devices = tuple(
        dataclasses.replace(
            d,
            installed_ns=r(d.installed_ns),
            retired_ns=None if d.retired_ns is None else r(d.retired_ns),
        )
        for d in fleet.devices
    )
    devices = tuple(
        d
        if d.retired_ns is None or d.retired_ns > d.installed_ns
        else dataclasses.replace(d, retired_ns=d.installed_ns + tick)
        for d in devices
    )
    times = sorted({t for _, t, _ in samples})
    first, last = times[0], times[-1]

    def near(t: int) -> int:
        return t + int(v.pick((0, 0, tick, -tick)))

    grid: list[Grid] = []
    for region in sorted({s[1] for s in fleet.sites}):
        cuts = {near(v.pick(times)) for _ in range(v.int(0, 3))}
        starts = sorted({r(first - 6 * HOUR_S * NS), *cuts})
        for k, s in enumerate(starts):
            end = r(last + 6 * HOUR_S * NS) if k == len(starts) - 1 else None
            grid.append(
                Grid(
                    region=region,
                    start_ns=s,
                    end_ns=end,
                    gco2e_per_kwh=v.dec(0.0, 900.0, edges=(0.0,)),
                    cfe=v.dec(0.0, 1.0, 4, edges=(0.0, 1.0)),
                    residual=v.dec(0.0, 1000.0),
                )
            )
    jobs: list[Job] = []
    for d in devices:
        mine = sorted({t for dev, t, _ in samples if dev == d.device_id}) or [first, last]
        for share in v.pick(SHARE_SETS) if v.chance(0.8) else ():
            edges = sorted({near(v.pick(mine)) for _ in range(v.int(1, 4))} | {near(mine[0])})
            if len(edges) == 1:
                edges.append(edges[0] + v.int(1, 30) * tick)
            for a, b in itertools.pairwise(edges):
                jobs.append(
                    Job(f"j{len(jobs)}", d.device_id, a, b, share, "training", v.pick(("x", None)))
                )
    v.rnd.shuffle(jobs)
    return dataclasses.replace(
        fleet, samples=samples, devices=devices, grid=tuple(grid), jobs=tuple(jobs)
    )


@st.composite
def hostile_fleets(draw: Draw) -> tuple[Fleet, Layout]:
    fleet: Fleet = draw(fleets())
    layout = Layout(
        draw(st.sampled_from(tuple(UNITS))),
        draw(st.sampled_from(ZONES)),
        draw(st.sampled_from(ID_LAYOUTS)),
    )
    v = Values(draw(st.integers(0, 2**32 - 1)))
    return _on_ticks(fleet, layout.tick, v), layout


# ---------------------------------------------------------------------------
# Rendering a fleet in a layout


def _int_id(name: str) -> int:
    """A stable integer id for a string id (negative ones included)."""
    return int.from_bytes(name.encode(), "little") % 10_007 - 5_000


def _ids(values: list[Any], layout: Layout) -> pa.Array:
    if layout.ids == "int64":
        return pa.array([None if x is None else _int_id(str(x)) for x in values], pa.int64())
    if layout.ids in ("large_string", "string_view"):
        return pa.array(values, getattr(pa, layout.ids)())
    arr = pa.array(values, pa.string())
    if layout.ids == "dict_int32":
        return arr.dictionary_encode()
    if layout.ids == "dict_uint32":
        return arr.dictionary_encode().cast(pa.dictionary(pa.uint32(), pa.string()))
    return arr


def _times(column: pa.ChunkedArray | pa.Array, layout: Layout) -> pa.Array:
    """A ns UTC timestamp column in ``layout``'s unit and zone (same instants)."""
    ns = pa.chunked_array([column]) if isinstance(column, pa.Array) else column
    ints = [None if x is None else x // layout.tick for x in ns.cast(pa.int64()).to_pylist()]
    return pa.array(ints, pa.timestamp(layout.unit, tz=layout.zone))


ID_COLUMNS = ("device_id", "site_id", "region")
TIME_COLUMNS = ("ts", "installed_at", "retired_at", "start", "end")


def render(table: pa.Table, layout: Layout) -> pa.Table:
    for i, name in enumerate(table.column_names):
        col = table.column(i)
        if name in ID_COLUMNS:
            table = table.set_column(i, name, _ids(col.to_pylist(), layout))
        elif name in TIME_COLUMNS and pa.types.is_timestamp(col.type):
            table = table.set_column(i, name, _times(col, layout))
    return table


def tables(fleet: Fleet, layout: Layout) -> dict[str, pa.Table]:
    return {
        "power": render(fleet.power(), layout),
        "devices": render(fleet.devices_table(), layout),
        "sites": render(fleet.sites_table(), layout),
        "intensity": render(fleet.intensity_table(), layout),
        "allocations": render(fleet.allocations_table(), layout),
    }


def options(fleet: Fleet) -> dict[str, Any]:
    return {
        "interpolation": fleet.interpolation,
        "max_gap": fleet.max_gap_s,
        "gap_fill": fleet.gap_fill,
    }


def to_parquet(t: dict[str, pa.Table], root: str) -> dict[str, Any]:
    """The tables as Parquet files; power in two files read by a glob."""
    out: dict[str, Any] = {}
    for name, table in t.items():
        if name == "power":
            os.makedirs(os.path.join(root, "power"))
            half = table.num_rows // 2
            pq.write_table(table.slice(0, half), os.path.join(root, "power", "a.parquet"))
            pq.write_table(table.slice(half), os.path.join(root, "power", "b.parquet"))
            out[name] = os.path.join(root, "power", "*.parquet")
        else:
            path = os.path.join(root, f"{name}.parquet")
            pq.write_table(table, path)
            out[name] = path
    return out


def run(t: dict[str, Any], **kw: Any) -> cl.Report | Exception:
    """``account``, its input error returned; anything else raised."""
    try:
        return cl.account(**t, **kw)
    except InputError as e:  # InternalError is no InputError: it propagates
        return e


def canonical(report: cl.Report, layout: Layout, names: list[str]) -> cl.Report:
    """``report`` with device ids as the fleet's string names again, and
    timestamps as integer ns (``to_pylist`` cannot hold ns datetimes)."""
    back = {(_int_id(n) if layout.ids == "int64" else n): n for n in names}

    def fix(table: pa.Table) -> pa.Table:
        for i, field in enumerate(table.schema):
            if pa.types.is_timestamp(field.type):
                table = table.set_column(i, field.name, table.column(i).cast(pa.int64()))
        if "device_id" in table.column_names:
            i = table.column_names.index("device_id")
            ids = [back[x] for x in table.column(i).to_pylist()]
            table = table.set_column(i, "device_id", pa.array(ids, pa.string()))
        return table

    tb = report.tables
    grid = tb.get("grid")
    return cl.Report(
        fix(tb["allocations"]),
        fix(tb["unallocated"]),
        fix(tb["devices"]),
        None if grid is None else fix(grid),
    )


def canonical_ids(report: cl.Report) -> cl.Report:
    """``report`` with device ids as strings and timestamps as integers."""
    names = [str(x) for x in report.tables["devices"].column("device_id").to_pylist()]

    def fix(table: pa.Table) -> pa.Table:
        for i, field in enumerate(table.schema):
            if pa.types.is_timestamp(field.type):
                table = table.set_column(i, field.name, table.column(i).cast(pa.int64()))
        if "device_id" in table.column_names:
            i = table.column_names.index("device_id")
            ids = [str(x) for x in table.column(i).to_pylist()]
            table = table.set_column(i, "device_id", pa.array(ids, pa.string()))
        return table

    del names
    tb = report.tables
    return cl.Report(fix(tb["allocations"]), fix(tb["unallocated"]), fix(tb["devices"]))


def check_invariants(report: cl.Report) -> None:
    """SPEC 10.1 and finite, non-negative metrics."""
    m = Mismatches()
    allocs = report.tables["allocations"].to_pylist()
    unalloc = _by_device(report.tables["unallocated"])
    for d in report.tables["devices"].to_pylist():
        mine = [a for a in allocs if a["device_id"] == d["device_id"]]
        for c in METRICS:
            total = math.fsum([a[c] for a in mine] + [unalloc[d["device_id"]][c]])
            m.check(f"{d['device_id']} {c} conservation", total, d[c], d[c])
            for row in [*mine, unalloc[d["device_id"]], d]:
                if not (math.isfinite(row[c]) and row[c] >= 0.0):
                    m.items.append(f"{d['device_id']} {c} = {row[c]!r}")
    m.done()


def same_outcome(a: cl.Report | Exception, b: cl.Report | Exception, period_s: float) -> None:
    if isinstance(a, Exception) or isinstance(b, Exception):
        assert type(a) is type(b), f"{a!r} vs {b!r}"
        return
    assert_same_report(a, b, period_s)


def _period_s(report: cl.Report | Exception) -> float:
    if isinstance(report, Exception):
        return 1.0
    devs = report.tables["devices"].to_pylist()
    spans = [(d["last_ts"] - d["first_ts"]) / NS for d in devs if d["first_ts"] is not None]
    return max(spans, default=1.0) or 1.0


@VALID
@given(hostile_fleets())
def test_hostile_layouts_agree(case: tuple[Fleet, Layout]) -> None:
    fleet, layout = case
    names = [d.device_id for d in fleet.devices]
    base = run(tables(fleet, PLAIN), **options(fleet))
    if isinstance(base, cl.Report):
        base = canonical(base, PLAIN, names)
        check_invariants(base)
    period_s = _period_s(base)
    t = tables(fleet, layout)
    hostile = run(t, **options(fleet))
    if isinstance(hostile, cl.Report):
        hostile = canonical(hostile, layout, names)
    same_outcome(base, hostile, period_s)
    with tempfile.TemporaryDirectory() as root:
        files = run(to_parquet(t, root), **options(fleet))
    if isinstance(files, cl.Report):
        files = canonical(files, layout, names)
    same_outcome(base, files, period_s)
    if layout.zone in (None, "UTC") and not layout.ids.startswith("dict"):
        frame = run({**t, "power": pl.from_arrow(t["power"])}, **options(fleet))
        if isinstance(frame, cl.Report):
            frame = canonical(frame, layout, names)
        same_outcome(base, frame, period_s)


@pytest.mark.parametrize("shares", SHARE_SETS, ids=lambda s: "+".join(f"{x:.3g}" for x in s))
def test_shares_summing_to_one_are_accepted(shares: tuple[float, ...]) -> None:
    """Shares that sum to 1 as decimals are one full device whatever their
    binary sum (0.1 + 0.2 + 0.7 is 1 + 2^-52): nothing left unallocated."""
    ts = pa.timestamp("ns", tz="UTC")
    t0 = 1_735_689_600 * NS
    power = pa.table(
        {
            "device_id": ["g"] * 3,
            "ts": pa.array([t0, t0 + 10 * NS, t0 + 20 * NS], ts),
            "power_w": [100.0, 200.0, 300.0],
        }
    )
    r = cl.account(
        power,
        pa.table(
            {
                "device_id": ["g"],
                "site_id": ["s"],
                "embodied_kgco2e": [10.0],
                "installed_at": pa.array([t0], ts),
                "lifetime_years": [1.0],
            }
        ),
        pa.table({"site_id": ["s"], "region": ["R"], "pue": [1.2]}),
        pa.table({"region": ["R"], "start": pa.array([t0], ts), "gco2e_per_kwh": [300.0]}),
        pa.table(
            {
                "job_id": [f"j{i}" for i in range(len(shares))],
                "device_id": ["g"] * len(shares),
                "start": pa.array([t0] * len(shares), ts),
                "end": pa.array([t0 + 20 * NS] * len(shares), ts),
                "share": list(shares),
            }
        ),
    )
    u = r.unallocated.row(0, named=True)
    assert u["energy_kwh"] <= 1e-12 * r.devices.row(0, named=True)["energy_kwh"]
    check_invariants(canonical_ids(r))


# ---------------------------------------------------------------------------
# Hostile invalid input

Tables = dict[str, Any]
Breaker = Callable[[Tables, Values], tuple[Tables, dict[str, Any]]]


def _pick_table(t: Tables, v: Values) -> str:
    return str(v.pick(("power", "devices", "sites", "intensity", "allocations")))


def drop_column(t: Tables, v: Values) -> tuple[Tables, dict[str, Any]]:
    name = _pick_table(t, v)
    col = v.pick(t[name].column_names)
    return {**t, name: t[name].drop_columns([col])}, {}


def null_cell(t: Tables, v: Values) -> tuple[Tables, dict[str, Any]]:
    name = _pick_table(t, v)
    table = t[name]
    if table.num_rows == 0:
        return t, {}
    col = v.pick(table.column_names)
    row = v.int(0, table.num_rows - 1)
    return {**t, name: set_col(table, col, _null_at(table.column(col).combine_chunks(), row))}, {}


def _null_at(arr: pa.Array, row: int) -> pa.Array:
    """``arr`` with row ``row`` null (any type, dictionaries included)."""
    if pa.types.is_dictionary(arr.type):
        plain = _null_at(arr.dictionary_decode(), row)
        return plain.dictionary_encode().cast(arr.type)
    return pa.concat_arrays([arr.slice(0, row), pa.nulls(1, arr.type), arr.slice(row + 1)])


def retype_column(t: Tables, v: Values) -> tuple[Tables, dict[str, Any]]:
    name = _pick_table(t, v)
    table = t[name]
    col = v.pick(table.column_names)
    n = table.num_rows
    new = v.pick(
        (
            pa.array(["x"] * n),
            pa.array([1.5] * n),
            pa.nulls(n),
            pa.array([True] * n),
            pa.array([b"\xff"] * n, pa.binary()),
            pa.array([-(2**63)] * n, pa.int64()),
            pa.array([2**64 - 1] * n, pa.uint64()),
        )
    )
    return {**t, name: set_col(table, col, new)}, {}


def bad_value(t: Tables, v: Values) -> tuple[Tables, dict[str, Any]]:
    name, col, value = v.pick(
        (
            ("sites", "pue", 0.5),
            ("sites", "pue", math.nan),
            ("devices", "embodied_kgco2e", -1.0),
            ("devices", "embodied_kgco2e", math.inf),
            ("devices", "lifetime_years", 0.0),
            ("devices", "idle_power_w", -5.0),
            ("devices", "counter_wrap_j", 0.0),
            ("intensity", "gco2e_per_kwh", -1.0),
            ("intensity", "cfe", 1.5),
            ("allocations", "share", 1.5),
            ("allocations", "share", 0.0),
            ("allocations", "share", math.nan),
            ("power", "power_w", 1e9),
            ("power", "energy_j", 1e300),
        )
    )
    table = t[name]
    if table.num_rows == 0:
        return t, {}
    values = table.column(col).to_pylist() if col in table.column_names else [None] * table.num_rows
    values[v.int(0, table.num_rows - 1)] = value
    try:
        column = pa.array(values, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # An earlier breaker retyped the column (strings, or integers past
        # int64): it is broken already.
        return t, {}
    return {**t, name: set_col(table, col, column)}, {}


def bad_rows(t: Tables, v: Values) -> tuple[Tables, dict[str, Any]]:
    what = v.pick(("dup_device", "dup_site", "empty", "reverse", "unknown", "end_before"))
    if what == "dup_device":
        return {**t, "devices": pa.concat_tables([t["devices"], t["devices"].slice(0, 1)])}, {}
    if what == "dup_site":
        return {**t, "sites": pa.concat_tables([t["sites"], t["sites"].slice(0, 1)])}, {}
    if what == "empty":
        name = _pick_table(t, v)
        return {**t, name: t[name].slice(0, 0)}, {}
    if what == "reverse":
        p = t["power"]
        rows = [p.slice(i, 1) for i in reversed(range(p.num_rows))]
        return {**t, "power": pa.concat_tables(rows) if rows else p}, {}
    if what == "unknown":
        name = v.pick(("power", "allocations", "devices"))
        table = t[name]
        col = "site_id" if name == "devices" else "device_id"
        if table.num_rows == 0 or col not in table.column_names:
            return t, {}
        typ = table.schema.field(col).type
        ids = table.column(col).to_pylist()
        ids[0] = -999_999 if pa.types.is_integer(typ) else v.pick(("nope", "\u0000", "", "é"))
        arr = pa.array(ids, pa.int64() if pa.types.is_integer(typ) else pa.string())
        return {**t, name: set_col(table, col, arr)}, {}
    a = t["allocations"]
    if a.num_rows == 0 or "start" not in a.column_names:
        return t, {}
    return {**t, "allocations": set_col(a, "end", a.column("start"))}, {}


def bad_time(t: Tables, v: Values) -> tuple[Tables, dict[str, Any]]:
    name, col = v.pick(
        (
            ("power", "ts"),
            ("devices", "installed_at"),
            ("intensity", "start"),
            ("allocations", "start"),
            ("allocations", "end"),
        )
    )
    table = t[name]
    if table.num_rows == 0 or col not in table.column_names:
        return t, {}
    typ = table.schema.field(col).type
    if not pa.types.is_timestamp(typ):
        return t, {}
    values = table.column(col).cast(pa.int64()).to_pylist()
    unit_ns = UNITS[typ.unit]
    values[v.int(0, len(values) - 1)] = v.pick(
        (-(10**18) // unit_ns, (2**63 - 1) // unit_ns, -1, 2**62, -(2**63))
    )
    return {**t, name: set_col(table, col, pa.array(values, pa.int64()).cast(typ))}, {}


def bad_argument(t: Tables, v: Values) -> tuple[Tables, dict[str, Any]]:
    p = t["power"]
    stamps = "ts" in p.column_names and pa.types.is_timestamp(p.schema.field("ts").type)
    ts = p.column("ts").cast(pa.int64()).to_pylist() if stamps else []
    ts = [x for x in ts if x is not None] or [1_735_689_600 * NS]
    lo, hi = min(ts), max(ts)
    return t, v.pick(
        (
            {"period": (hi, lo)},
            {"max_gap": -1},
            {"on_invalid": "raise"},
            {"max_power_w": 1.0},
            {"interpolation": "cubic"},
            {"period": (lo, lo)},
        )
    )


def mixed_kinds(t: Tables, v: Values) -> tuple[Tables, dict[str, Any]]:
    name = v.pick(("power", "allocations"))
    table = t[name]
    if "device_id" not in table.column_names:
        return t, {}
    typ = table.schema.field("device_id").type
    ids = [str(x) for x in table.column("device_id").to_pylist()]
    arr = (
        pa.array(ids, pa.string())
        if pa.types.is_integer(typ)
        else pa.array(range(len(ids)), pa.int64())
    )
    return {**t, name: set_col(table, "device_id", arr)}, {}


BREAKERS: tuple[Breaker, ...] = (
    drop_column,
    null_cell,
    retype_column,
    bad_value,
    bad_rows,
    bad_time,
    bad_argument,
    mixed_kinds,
)


def assert_input_error(e: BaseException) -> None:
    """An ``InputError`` subclass that names what it is about."""
    assert isinstance(e, InputError), f"not an InputError: {type(e).__module__}.{e!r}"
    assert not isinstance(e, InternalError), repr(e)
    msg = str(e)
    assert msg and any(w in msg for w in ("table", "argument", "column", "catalog")), msg


def attempt(call: Callable[[], Any]) -> Any:
    """Run ``call``: a result, or its input error checked and returned."""
    try:
        return call()
    except BaseException as e:  # PanicException is a BaseException
        if isinstance(e, KeyboardInterrupt | SystemExit):
            raise
        assert_input_error(e)
        return e


@INVALID
@given(
    hostile_fleets(),
    st.lists(st.sampled_from(BREAKERS), min_size=1, max_size=2),
    st.integers(0, 2**32 - 1),
    st.booleans(),
)
def test_hostile_invalid_input_is_an_input_error(
    case: tuple[Fleet, Layout], breakers: list[Breaker], seed: int, parquet: bool
) -> None:
    fleet, layout = case
    v = Values(seed)
    t: Tables = tables(fleet, layout)
    kw = options(fleet)
    for breaker in breakers:
        t, extra = breaker(t, v)
        kw.update(extra)
    with tempfile.TemporaryDirectory() as root:
        if parquet:
            try:
                t = to_parquet(t, root)
            except (pa.ArrowException, OSError):
                return  # a table Parquet cannot hold: nothing for the engine to see
        out = attempt(lambda: cl.account(**t, **kw))
        if isinstance(out, cl.Report):
            check_invariants(canonical_ids(out))
        small = {k: t[k] for k in ("devices", "sites", "intensity", "allocations")}
        period = kw.get("period")
        checked = attempt(lambda: cl.validate(**small, power=t["power"], period=period))
        if isinstance(checked, cl.Validation):
            kinds = {p.kind for p in checked.problems}
            assert "InternalError" not in kinds, checked.problems
            if isinstance(out, cl.Report) and period is None:
                assert checked.ok, checked.problems


# ---------------------------------------------------------------------------
# Regressions found by the fuzz targets and the random-input pass (issue 9)


def _empty(typ: pa.DataType) -> pa.Array:
    return pa.array([], typ)


@pytest.mark.parametrize("value", ["energy_j", "power_w"])
def test_empty_dictionary_id_tables(value: str) -> None:
    """Empty tables with dictionary<uint32, string> ids: an input error
    (no sample, no period) or, with a period, an empty report."""
    d = pa.dictionary(pa.uint32(), pa.string())
    ts = pa.timestamp("ns", tz="UTC")
    kw: dict[str, Any] = {
        "power": pa.table({"device_id": _empty(d), "ts": _empty(ts), value: _empty(pa.float64())}),
        "devices": pa.table(
            {
                "device_id": _empty(d),
                "site_id": _empty(d),
                "embodied_kgco2e": _empty(pa.float64()),
                "installed_at": _empty(ts),
                "lifetime_years": _empty(pa.float64()),
            }
        ),
        "sites": pa.table({"site_id": _empty(d), "region": _empty(d), "pue": _empty(pa.float64())}),
        "intensity": pa.table(
            {"region": _empty(d), "start": _empty(ts), "gco2e_per_kwh": _empty(pa.float64())}
        ),
    }
    with pytest.raises(InputError) as info:
        cl.account(**kw)
    assert "power" in str(info.value)
    t0 = 1_735_689_600 * NS
    r = cl.account(**kw, period=(t0, t0 + NS))
    assert r.devices.height == 0
    small = {k: kw[k] for k in ("devices", "sites", "intensity")}
    assert cl.validate(**small, power=kw["power"]).ok


@pytest.mark.parametrize("ids", ["string", "dict_int32", "dict_uint32"])
def test_validate_nul_id_unknown_model_empty_sites(ids: str) -> None:
    """The random-input pass: validate with a device id "\\u0000", an unknown
    catalog model and an empty sites table reports problems, never an
    InternalError."""
    layout = Layout("ns", "UTC", ids)
    ts = pa.timestamp("ns", tz="UTC")
    devices = pa.table(
        {
            "device_id": _ids(["\u0000"], layout),
            "site_id": _ids(["s1"], layout),
            "model": ["no-such-gpu"],
            "installed_at": pa.array([0], ts),
            "lifetime_years": [4.0],
        }
    )
    sites = pa.table(
        {
            "site_id": _ids([], layout),
            "region": _ids([], layout),
            "pue": pa.array([], pa.float64()),
        }
    )
    intensity = pa.table({"region": ["R"], "start": pa.array([0], ts), "gco2e_per_kwh": [1.0]})
    v = cl.validate(devices, sites, intensity)
    kinds = {p.kind for p in v.problems}
    assert kinds and "InternalError" not in kinds, v.problems
    assert any("model" in p.message for p in v.problems), v.problems
    assert any("site_id" in p.message for p in v.problems), v.problems


def test_uint64_device_id_above_int64_is_named() -> None:
    """A uint64 id above 2^63 - 1 was read as id 0 (another device's)."""
    ts = pa.timestamp("ns", tz="UTC")
    t0 = 1_735_689_600 * NS
    kw: dict[str, Any] = {
        "power": pa.table(
            {
                "device_id": pa.array([0, 2**64 - 1], pa.uint64()),
                "ts": pa.array([t0, t0 + NS], ts),
                "power_w": [1.0, 2.0],
            }
        ),
        "devices": pa.table(
            {
                "device_id": pa.array([0], pa.uint64()),
                "site_id": ["s"],
                "embodied_kgco2e": [1.0],
                "installed_at": pa.array([t0], ts),
                "lifetime_years": [1.0],
            }
        ),
        "sites": pa.table({"site_id": ["s"], "region": ["R"], "pue": [1.0]}),
        "intensity": pa.table(
            {"region": ["R"], "start": pa.array([t0], ts), "gco2e_per_kwh": [1.0]}
        ),
    }
    with pytest.raises(SchemaError) as info:
        cl.account(**kw)
    msg = str(info.value)
    assert "power" in msg and "device_id" in msg and "18446744073709551615" in msg


def test_null_timestamp_slot_holding_nat_is_not_an_overflow() -> None:
    """pandas' NaT (i64 min) left in the slot of a null second-unit
    timestamp must not read as an overflow: the row is a null."""
    ts_s = pa.timestamp("s", tz="UTC")
    t0 = 1_735_689_600
    raw = pa.array([t0, -(2**63), t0 + 3600], pa.int64())
    valid = pa.array([True, False, True])
    starts = pa.Array.from_buffers(ts_s, 3, [valid.buffers()[1], raw.buffers()[1]], null_count=1)
    intensity = pa.table({"region": ["R"] * 3, "start": starts, "gco2e_per_kwh": [1.0, 2.0, 3.0]})
    devices = pa.table(
        {
            "device_id": ["g"],
            "site_id": ["s"],
            "embodied_kgco2e": [1.0],
            "installed_at": pa.array([t0], ts_s),
            "lifetime_years": [1.0],
        }
    )
    sites = pa.table({"site_id": ["s"], "region": ["R"], "pue": [1.0]})
    v = cl.validate(devices, sites, intensity)
    assert all("overflow" not in p.message for p in v.problems), v.problems
    assert any("start" in p.message and "null" in p.message for p in v.problems), v.problems


def _spec12_like(alloc_ts: pa.DataType, job_id: pa.Array) -> dict[str, Any]:
    ts = pa.timestamp("ns", tz="UTC")
    t0 = 1_735_689_600 * NS
    return {
        "power": pa.table(
            {
                "device_id": ["g"] * 3,
                "ts": pa.array([t0, t0 + 10 * NS, t0 + 20 * NS], ts),
                "power_w": [100.0, 300.0, 100.0],
            }
        ),
        "devices": pa.table(
            {
                "device_id": ["g"],
                "site_id": ["s"],
                "embodied_kgco2e": [150.0],
                "installed_at": pa.array([t0], ts),
                "lifetime_years": [4.0],
            }
        ),
        "sites": pa.table({"site_id": ["s"], "region": ["R"], "pue": [1.5]}),
        "intensity": pa.table(
            {"region": ["R"], "start": pa.array([t0], ts), "gco2e_per_kwh": [400.0]}
        ),
        "allocations": pa.table(
            {
                "job_id": job_id,
                "device_id": ["g"] * len(job_id),
                "start": pa.array([t0 + 5 * NS] * len(job_id), ts).cast(alloc_ts),
                "end": pa.array([t0 + 15 * NS] * len(job_id), ts).cast(alloc_ts),
                "share": [0.5] * len(job_id),
            }
        ),
    }


@pytest.mark.parametrize("zone", ["+05:30", "Z", "-08:00", "Asia/Kolkata"])
def test_allocation_times_in_a_fixed_offset_zone(zone: str) -> None:
    """Found by test_hostile: allocation columns in a zone polars cannot
    parse ("+05:30") made the report's polars frames (and the warnings
    pass) fail with a bare polars error, or a polars panic."""
    r = cl.account(**_spec12_like(pa.timestamp("ns", tz=zone), pa.array(["a", "b"])))
    frame = r.allocations
    assert frame.height == 2
    check_invariants(canonical_ids(r))


@pytest.mark.parametrize(
    "job_id",
    [pa.array([b"\xff", b"ok"], pa.binary()), pa.array(["a", None]), pa.array([[1], [2]])],
    ids=["binary_not_utf8", "null", "list"],
)
def test_free_form_job_ids(job_id: pa.Array) -> None:
    """Found by test_hostile: job ids are free-form; the warnings pass cast
    them to strings and failed on binary that is not UTF-8, a null, a list."""
    r = cl.account(**_spec12_like(pa.timestamp("ns", tz="UTC"), job_id))
    check_invariants(canonical_ids(r))


@pytest.mark.parametrize(
    "over",
    [
        {"period": (2**63, 2**63 + 1)},
        {"period": (dt.datetime(9999, 1, 1), dt.datetime(9999, 1, 2))},
        {"max_gap": 1e30},
        {"max_gap": dt.timedelta(days=999_999_999)},
    ],
    ids=["period_int", "period_year_9999", "max_gap_seconds", "max_gap_timedelta"],
)
def test_arguments_beyond_the_nanosecond_range(over: dict[str, Any]) -> None:
    """Found by test_hostile: a period or max_gap beyond i64 nanoseconds was
    a bare OverflowError from the native call."""
    kw = _spec12_like(pa.timestamp("ns", tz="UTC"), pa.array(["a"]))
    with pytest.raises(InputError) as info:
        cl.account(**kw, **over)
    assert "argument '" in str(info.value)
    if "period" in over:
        small = {k: kw[k] for k in ("devices", "sites", "intensity")}
        with pytest.raises(InputError):
            cl.validate(**small, period=over["period"])
