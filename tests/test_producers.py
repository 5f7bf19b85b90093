"""Every kind of input gives the same report (SPEC sections 1, 2 and 9).

The SPEC 12 example and a three-device fleet are fed as pyarrow Tables (the
reference), RecordBatchReaders, polars DataFrames and LazyFrames, duckdb
relations, Parquet files, Parquet globs and CSV files; with string, integer and
dictionary-encoded ids; with timestamps in every unit, in a non-UTC zone and
naive. The report tables are then read back by duckdb straight from Arrow.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from conftest import at

import carbonledger as cl

REL = 1e-12
TS = pa.timestamp("ns", tz="UTC")
UTC = dt.timezone.utc
TABLES = ("power", "devices", "sites", "intensity", "allocations")
METRICS: tuple[str, ...] = tuple(cl.METRIC_COLUMNS)
ALLOCATION_COLUMNS = (
    "job_id",
    "device_id",
    "start",
    "end",
    "share",
    "phase",
    "team",
    "duration_s",
    "uncovered_s",
    *METRICS,
)
LABELS = ("phase", "team")
# the tables of a fleet whose `device_id` column names a device
ID_TABLES = ("power", "devices", "allocations")


# ---------------------------------------------------------------------------
# Fleets


def _ts(seconds: list[float | None]) -> pa.Array:
    return pa.array([None if s is None else at(s) for s in seconds], TS)


def fleet3() -> dict[str, Any]:
    """Three devices at two sites in two regions, over about an hour: a gap
    longer than max_gap, duplicates, invalid samples, a device retired and
    one installed inside the period, shared and overlapping jobs, labels."""
    rnd = random.Random(20250101)
    rows: list[tuple[str, int, float]] = []
    for dev, step, n in (("g0", 10, 360), ("g1", 15, 240), ("g2", 7, 500)):
        t = 0
        for i in range(n):
            if dev == "g1" and i == 100:
                t += 900  # a gap longer than max_gap (300 s)
            p = round(rnd.uniform(50.0, 700.0), 3)
            if dev == "g2" and i in (17, 230):
                p = -5.0 if i == 17 else math.inf  # invalid, dropped
            rows.append((dev, t, p))
            if dev == "g0" and i in (3, 200):
                rows.append((dev, t, p + 40.0))  # a duplicate
            t += step + (i % 3)
    power = pa.table(
        {
            "device_id": pa.array([r[0] for r in rows], pa.string()),
            "ts": _ts([float(r[1]) for r in rows]),
            "power_w": pa.array([r[2] for r in rows], pa.float64()),
        }
    )
    devices = pa.table(
        {
            "device_id": ["g0", "g1", "g2"],
            "site_id": ["s1", "s1", "s2"],
            "embodied_kgco2e": [150.0, 1200.5, 88.25],
            "installed_at": pa.array(
                [dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 6, 1, tzinfo=UTC), at(600)],
                TS,
            ),
            "lifetime_years": pa.array([4.0, None, 3.0], pa.float64()),
            "retired_at": _ts([None, 2400.0, None]),
            "idle_power_w": [60.0, 45.5, 80.0],
            "model": ["H100", "H100", "A100"],
        }
    )
    sites = pa.table(
        {
            "site_id": ["s1", "s2"],
            "region": ["R", "Q"],
            "pue": [1.5, 1.2],
            "country": ["SE", "DE"],
        }
    )
    r_starts = [-3600.0 + 900.0 * k for k in range(20)]
    q_starts = [-3600.0 + 1200.0 * k for k in range(12)]
    intensity = pa.table(
        {
            "region": ["R"] * len(r_starts) + ["Q"] * len(q_starts),
            "start": _ts([*r_starts, *q_starts]),
            # R: explicit ends; Q: null ends (next row's start; the last row
            # as long as the one before)
            "end": _ts([*(s + 900.0 for s in r_starts), *([None] * len(q_starts))]),
            "gco2e_per_kwh": [
                *(30.0 + 5.5 * k for k in range(len(r_starts))),
                *(350.0 - 7.25 * k for k in range(len(q_starts))),
            ],
            "cfe": [*(0.9 - 0.01 * k for k in range(len(r_starts))), *([0.3] * len(q_starts))],
            "residual_gco2e_per_kwh": [
                *([45.0] * len(r_starts)),
                *(420.0 + k for k in range(len(q_starts))),
            ],
        }
    )
    jobs = [
        ("J1", "g0", 0, 1800, 1.0, "training", "red"),
        ("J2", "g0", 1800, 3000, 0.5, "inference", "blue"),
        ("J3", "g0", 1800, 3600, 0.5, "data", None),
        ("J4", "g1", 300, 2000, 0.75, "experimentation", "red"),
        ("J5", "g2", -600, 1200, 1.0, "training", "blue"),
        ("J6", "g2", 1200, 4000, 0.3, "training", "red"),
        ("J7", "g1", 2000, 2500, 0.25, "inference", None),
    ]
    allocations = pa.table(
        {
            "job_id": [j[0] for j in jobs],
            "device_id": [j[1] for j in jobs],
            "start": _ts([float(j[2]) for j in jobs]),
            "end": _ts([float(j[3]) for j in jobs]),
            "share": pa.array([j[4] for j in jobs], pa.float64()),
            "phase": [j[5] for j in jobs],
            "team": pa.array([j[6] for j in jobs], pa.string()),
        }
    )
    return {
        "power": power,
        "devices": devices,
        "sites": sites,
        "intensity": intensity,
        "allocations": allocations,
        "max_gap": 300,
    }


@pytest.fixture(params=["spec12", "fleet3"])
def fleet(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "spec12":
        kw: dict[str, Any] = dict(request.getfixturevalue("spec12"))
        # labels the producers must carry through, like fleet3's
        kw["allocations"] = kw["allocations"].append_column("team", pa.array(["red"], pa.string()))
        return kw
    return fleet3()


# ---------------------------------------------------------------------------
# Producers


def _slices(tbl: pa.Table, parts: int) -> Iterator[pa.Table]:
    n = tbl.num_rows
    bounds = [n * k // parts for k in range(parts + 1)]
    for lo, hi in itertools.pairwise(bounds):
        yield tbl.slice(lo, hi - lo)


class Producers:
    """Turn one pyarrow Table into each kind of input ``account`` accepts."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.con = duckdb.connect()

    def table(self, tbl: pa.Table, name: str) -> Any:
        return tbl

    def reader(self, tbl: pa.Table, name: str) -> Any:
        return tbl.to_reader(max_chunksize=7)

    def batches(self, tbl: pa.Table, name: str) -> Any:
        return pa.RecordBatchReader.from_batches(
            tbl.schema, [b for part in _slices(tbl, 4) for b in part.to_batches()]
        )

    def polars(self, tbl: pa.Table, name: str) -> Any:
        df = pl.from_arrow(tbl)
        assert isinstance(df, pl.DataFrame)
        return df

    def polars_rechunked(self, tbl: pa.Table, name: str) -> Any:
        dfs = [pl.from_arrow(part) for part in _slices(tbl, 3)]
        df = pl.concat([d for d in dfs if isinstance(d, pl.DataFrame)], rechunk=False)
        return df

    def lazy(self, tbl: pa.Table, name: str) -> Any:
        df = pl.from_arrow(tbl)
        assert isinstance(df, pl.DataFrame)
        return df.lazy()

    def duckdb_arrow(self, tbl: pa.Table, name: str) -> Any:
        return self.con.from_arrow(tbl)

    def duckdb_sql(self, tbl: pa.Table, name: str) -> Any:
        self.con.register(f"in_{name}", tbl)
        return self.con.sql(f"select * from in_{name}")

    def parquet(self, tbl: pa.Table, name: str) -> Any:
        path = self.tmp / f"{name}.parquet"
        pq.write_table(tbl, path)
        return str(path)

    def parquet_path(self, tbl: pa.Table, name: str) -> Any:
        path = self.tmp / f"{name}.parquet"
        pq.write_table(tbl, path, row_group_size=5)
        return path  # a pathlib.Path

    def parquet_glob(self, tbl: pa.Table, name: str) -> Any:
        folder = self.tmp / name
        folder.mkdir()
        # contiguous slices, in name order: every device's samples stay in
        # time order across the files
        for k, part in enumerate(_slices(tbl, 3)):
            pq.write_table(part, folder / f"part-{k:03d}.parquet")
        return str(folder / "part-*.parquet")

    def csv(self, tbl: pa.Table, name: str) -> Any:
        path = self.tmp / f"{name}.csv"
        pcsv.write_csv(tbl, path)
        return str(path)


KINDS = (
    "reader",
    "batches",
    "polars",
    "polars_rechunked",
    "lazy",
    "duckdb_arrow",
    "duckdb_sql",
    "parquet",
    "parquet_path",
    "parquet_glob",
    "csv",
)


def _produce(kind: str, kw: Mapping[str, Any], tmp_path: Path) -> dict[str, Any]:
    producers = Producers(tmp_path)
    make: Callable[[pa.Table, str], Any] = getattr(producers, kind)
    out = dict(kw)
    for name in TABLES:
        out[name] = make(kw[name], name)
    out["_keepalive"] = producers
    return out


def _account(kw: Mapping[str, Any]) -> cl.Report:
    return cl.account(**{k: v for k, v in kw.items() if not k.startswith("_")})


# ---------------------------------------------------------------------------
# Comparison


def _plain(tbl: pa.Table, columns: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """Rows as Python values: timestamps as integer ns since the epoch (so
    any unit and zone compare by instant), dictionaries decoded."""
    names = [c for c in (columns or tbl.column_names) if c in tbl.column_names]
    cols: dict[str, list[Any]] = {}
    for name in names:
        col = tbl.column(name)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.timestamp("ns", tz=col.type.tz)).cast(pa.int64())
        cols[name] = col.to_pylist()
    return [{n: cols[n][i] for n in names} for i in range(tbl.num_rows)]


def assert_same(
    got: cl.Report,
    want: cl.Report,
    ids: Mapping[Any, Any] | None = None,
    *,
    blank_is_null: bool = False,
) -> None:
    """``got`` equals ``want`` to 1e-12 relative (zero cells: 1e-12 of the
    device's total); ``ids`` maps got's device ids onto want's. With
    ``blank_is_null`` (CSV input), an empty label reads as the null written."""
    dev_total = {r["device_id"]: r for r in _plain(want.tables["devices"])}
    problems: list[str] = []
    for name, cols in (
        ("allocations", ALLOCATION_COLUMNS),
        ("unallocated", None),
        ("devices", None),
    ):
        g_rows = _plain(got.tables[name], cols)
        w_rows = _plain(want.tables[name], cols)
        if len(g_rows) != len(w_rows):
            problems.append(f"{name}: {len(g_rows)} rows != {len(w_rows)}")
            continue
        for i, (g, w) in enumerate(zip(g_rows, w_rows, strict=True)):
            if ids is not None:
                g["device_id"] = ids[g["device_id"]]
            if set(g) != set(w):
                problems.append(f"{name} row {i}: columns {sorted(g)} != {sorted(w)}")
                continue
            for c, wv in w.items():
                gv = g[c]
                if isinstance(wv, float) and c in METRICS:
                    scale = abs(dev_total[w["device_id"]][c])
                    ok = abs(gv - wv) <= max(REL * max(abs(gv), abs(wv)), REL * scale)
                elif isinstance(wv, float):
                    ok = gv == pytest.approx(wv, rel=REL, abs=1e-9)
                elif blank_is_null and c in LABELS and wv is None:
                    ok = gv in (None, "")
                else:
                    ok = gv == wv
                if not ok:
                    problems.append(
                        f"{name} row {i} ({w.get('device_id')!r}) {c}: {gv!r} != {wv!r}"
                    )
    assert not problems, "\n".join(problems[:30])


# ---------------------------------------------------------------------------
# Producers give the same report


def test_fleet3_is_meaningful() -> None:
    """The bigger fleet exercises what the producers must carry: gaps,
    duplicates, invalid samples, several jobs with energy on every device."""
    r = _account(fleet3())
    devs = {d["device_id"]: d for d in r.tables["devices"].to_pylist()}
    assert devs["g0"]["duplicate_samples"] == 2
    assert devs["g1"]["gaps"] == 1
    assert devs["g2"]["invalid_samples"] == 2
    alloc = r.tables["allocations"].to_pylist()
    assert all(a["energy_kwh"] > 0 and a["embodied_kgco2e"] > 0 for a in alloc)
    assert all(d["energy_kwh"] > 0 for d in devs.values())


@pytest.mark.parametrize("kind", KINDS)
def test_producer_same_as_table(kind: str, fleet: dict[str, Any], tmp_path: Path) -> None:
    want = _account(fleet)
    got = _account(_produce(kind, fleet, tmp_path))
    assert_same(got, want, blank_is_null=kind == "csv")


@pytest.mark.parametrize("kind", ["lazy", "polars", "duckdb_arrow", "parquet_glob", "csv"])
def test_producer_for_power_only(kind: str, fleet: dict[str, Any], tmp_path: Path) -> None:
    """The sample stream from one producer, the small tables as pyarrow."""
    want = _account(fleet)
    kw = dict(fleet)
    kw["power"] = getattr(Producers(tmp_path), kind)(fleet["power"], "power")
    assert_same(_account(kw), want)


def test_mixed_producers(fleet: dict[str, Any], tmp_path: Path) -> None:
    """Each table from a different producer in one call."""
    p = Producers(tmp_path)
    kw = dict(fleet)
    kw["power"] = p.lazy(fleet["power"], "power")
    kw["devices"] = p.duckdb_sql(fleet["devices"], "devices")
    kw["sites"] = p.csv(fleet["sites"], "sites")
    kw["intensity"] = p.parquet_glob(fleet["intensity"], "intensity")
    kw["allocations"] = p.polars(fleet["allocations"], "allocations")
    assert_same(_account(kw), _account(fleet))


def test_parquet_glob_one_file_per_device(tmp_path: Path) -> None:
    kw = fleet3()
    want = _account(kw)
    power: pa.Table = kw["power"]
    for dev in ("g0", "g1", "g2"):
        part = power.filter(pa.compute.equal(power.column("device_id"), dev))
        pq.write_table(part, tmp_path / f"power-{dev}.parquet")
    kw["power"] = str(tmp_path / "power-*.parquet")
    assert_same(_account(kw), want)


# ---------------------------------------------------------------------------
# Id types


def _map_ids(kw: Mapping[str, Any], make: Callable[[pa.Array], pa.Array]) -> dict[str, Any]:
    out = dict(kw)
    for name in ID_TABLES:
        tbl: pa.Table = kw[name]
        i = tbl.column_names.index("device_id")
        out[name] = tbl.set_column(i, "device_id", make(tbl.column("device_id").combine_chunks()))
    return out


def _int_ids(names: list[str], ty: pa.DataType) -> Callable[[pa.Array], pa.Array]:
    # ids far from 0..n and not in name order
    mapping = {n: 7_000 - 1_000 * k for k, n in enumerate(names)}
    if ty == pa.int64():
        mapping = {n: v * 1_000_000_007 for n, v in mapping.items()}

    def make(arr: pa.Array) -> pa.Array:
        return pa.array([mapping[x] for x in arr.to_pylist()], ty)

    return make


@pytest.mark.parametrize("id_type", ["int32", "int64", "int_mixed", "dict", "dict_power_only"])
def test_device_id_types(id_type: str, fleet: dict[str, Any]) -> None:
    want = _account(fleet)
    names = fleet["devices"].column("device_id").to_pylist()
    if id_type in ("int32", "int64"):
        make = _int_ids(names, pa.int32() if id_type == "int32" else pa.int64())
        kw = _map_ids(fleet, make)
        back = {make(pa.array([n])).to_pylist()[0]: n for n in names}
        got = _account(kw)
        assert pa.types.is_integer(got.tables["devices"].column("device_id").type)
        assert_same(got, want, ids=back)
    elif id_type == "int_mixed":
        # integer ids of different widths in different tables: one kind
        small = _int_ids(names, pa.int32())
        kw = _map_ids(fleet, lambda a: small(a).cast(pa.int64()))
        kw["power"] = _map_ids(fleet, small)["power"]
        kw["allocations"] = kw["allocations"].set_column(
            1, "device_id", small(fleet["allocations"].column("device_id").combine_chunks())
        )
        back = {small(pa.array([n])).to_pylist()[0]: n for n in names}
        assert_same(_account(kw), want, ids=back)
    elif id_type == "dict":
        kw = _map_ids(fleet, lambda a: a.dictionary_encode())
        assert_same(_account(kw), want)
    else:
        kw = dict(fleet)
        kw["power"] = _map_ids(fleet, lambda a: a.dictionary_encode())["power"]
        assert_same(_account(kw), want)


@pytest.mark.parametrize("kind", ["polars", "lazy", "duckdb_arrow", "parquet", "csv"])
def test_int_ids_through_producers(kind: str, tmp_path: Path) -> None:
    kw = fleet3()
    want = _account(kw)
    names = kw["devices"].column("device_id").to_pylist()
    make = _int_ids(names, pa.int64())
    back = {make(pa.array([n])).to_pylist()[0]: n for n in names}
    produced = _produce(kind, _map_ids(kw, make), tmp_path)
    assert_same(_account(produced), want, ids=back, blank_is_null=kind == "csv")


# ---------------------------------------------------------------------------
# Timestamp units and zones


def _retime(kw: Mapping[str, Any], unit: str, tz: str | None) -> dict[str, Any]:
    """Every timestamp column of every table in ``unit`` and zone ``tz``
    (``None``: naive, holding the UTC wall clock); same instants."""
    out = dict(kw)
    for name in TABLES:
        tbl: pa.Table = kw[name]
        for i, field in enumerate(tbl.schema):
            if pa.types.is_timestamp(field.type):
                col = tbl.column(i).cast(pa.timestamp(unit, tz=field.type.tz))
                if tz is None:
                    col = col.cast(pa.int64()).cast(pa.timestamp(unit))
                else:
                    col = col.cast(pa.timestamp(unit, tz=tz))
                tbl = tbl.set_column(i, field.name, col)
        out[name] = tbl
    return out


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "America/St_Johns", None])
def test_timestamp_units_and_zones(unit: str, tz: str | None, fleet: dict[str, Any]) -> None:
    want = _account(fleet)
    kw = _retime(fleet, unit, tz)
    if tz is None and kw.get("period") is not None:
        # a naive period is UTC too
        a, b = kw["period"]
        kw["period"] = (a.replace(tzinfo=None), b.replace(tzinfo=None))
    assert_same(_account(kw), want)


def test_timestamp_units_mixed_across_tables(fleet: dict[str, Any]) -> None:
    kw = dict(fleet)
    kw["power"] = _retime(fleet, "ms", "Europe/Berlin")["power"]
    kw["devices"] = _retime(fleet, "s", None)["devices"]
    kw["intensity"] = _retime(fleet, "us", "Asia/Kolkata")["intensity"]
    kw["allocations"] = _retime(fleet, "s", "America/New_York")["allocations"]
    if kw.get("period") is not None:
        berlin = dt.timezone(dt.timedelta(hours=1))
        a, b = kw["period"]
        kw["period"] = (a.astimezone(berlin), b.astimezone(berlin))
    assert_same(_account(kw), _account(fleet))


@pytest.mark.parametrize("tz", ["Europe/Berlin", None])
def test_timestamp_zones_through_producers(
    tz: str | None, fleet: dict[str, Any], tmp_path: Path
) -> None:
    """A zoned or naive sample stream through polars (LazyFrame), duckdb and Parquet."""
    want = _account(fleet)
    retimed = _retime(fleet, "us", tz)
    if tz is None and retimed.get("period") is not None:
        a, b = retimed["period"]
        retimed["period"] = (a.replace(tzinfo=None), b.replace(tzinfo=None))
    for kind in ("lazy", "duckdb_arrow", "parquet"):
        (tmp_path / kind).mkdir()
        assert_same(_account(_produce(kind, retimed, tmp_path / kind)), want)


# ---------------------------------------------------------------------------
# Reading the report without polars


@pytest.mark.parametrize("source", ["table", "polars", "duckdb_arrow"])
def test_report_tables_read_by_duckdb(source: str, fleet: dict[str, Any], tmp_path: Path) -> None:
    """``report.tables`` are Arrow tables duckdb scans directly (also when the
    allocations came from polars, whose strings are string_view)."""
    r = _account(_produce(source, fleet, tmp_path))
    con = duckdb.connect()
    for name in ("allocations", "unallocated", "devices"):
        t = r.tables[name]
        assert isinstance(t, pa.Table)
        con.register("t", t)
        back = con.sql("select * from t").arrow()
        if isinstance(back, pa.RecordBatchReader):
            back = back.read_all()
        assert back.column_names == t.column_names
        assert back.num_rows == t.num_rows
        want_rows = _plain(t)
        got_rows = _plain(back)
        assert got_rows == want_rows
        # and a query over it, against pyarrow's own sum
        [row] = con.sql("select sum(energy_kwh), sum(total_kgco2e), count(*) from t").fetchall()
        assert row[0] == pytest.approx(pa.compute.sum(t.column("energy_kwh")).as_py(), rel=REL)
        assert row[1] == pytest.approx(pa.compute.sum(t.column("total_kgco2e")).as_py(), rel=REL)
        assert row[2] == t.num_rows
        con.unregister("t")


def test_report_read_by_duckdb_replacement_scan(spec12: dict[str, Any]) -> None:
    """The module-level ``duckdb.sql`` finds a local Arrow table by its name."""
    r = cl.account(**spec12)
    allocations = r.tables["allocations"]  # noqa: F841 - read by duckdb by name
    rel = duckdb.sql("select job_id, phase, energy_kwh, duration_s from allocations")
    assert rel is not None
    row = rel.fetchall()
    assert row == [("A", "training", pytest.approx(4250 / 3.6e6, rel=REL), 20.0)]


def test_polars_namespace_streams_a_lazyframe(spec12: dict[str, Any]) -> None:
    kw = {k: v for k, v in spec12.items() if k != "power"}
    want = cl.account(**spec12).allocations
    df: Any = pl.from_arrow(spec12["power"])
    assert df.lazy().carbon.account(**kw).allocations.equals(want)
    assert df.carbon.account(**kw).allocations.equals(want)
