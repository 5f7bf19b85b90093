"""Warnings about results that are almost certainly a mistake
(``carbonledger.diagnostics``): for each check a small fleet that triggers it
and one that does not, ``strict=True``, and the warnings in the CLI output,
manifest.json and report.html."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
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
from htmlcheck import network_refs, parse_page

import carbonledger as cl
from carbonledger._io import power_schema
from carbonledger.diagnostics import (
    WARNING_CODES,
    LedgerWarning,
    collect_warnings,
    format_warnings,
    warnings_from_manifest,
)
from carbonledger.html_report import render_html

HOUR = 3600


def codes(report: cl.Report) -> list[str]:
    return [w.code for w in report.warnings]


def only(report: cl.Report, code: str) -> LedgerWarning:
    found = [w for w in report.warnings if w.code == code]
    assert len(found) == 1, report.warnings
    return found[0]


def naive(t: pa.Table, *cols: str) -> pa.Table:
    """The same instants as naive timestamps (wall clock in UTC)."""
    for c in cols:
        i = t.schema.get_field_index(c)
        t = t.set_column(i, c, t.column(c).cast(pa.timestamp("ns")))
    return t


def two_devices(**over: Any) -> pa.Table:
    """g0 (the SPEC 12 device) and g1 at the same site, both in service."""
    cols: dict[str, Any] = {
        "device_id": ["g0", "g1"],
        "site_id": ["s1", "s1"],
        "embodied_kgco2e": [150.0, 150.0],
        "installed_at": pa.array([dt.datetime(2024, 1, 1, tzinfo=UTC)] * 2, TS),
        "lifetime_years": [4.0, 4.0],
    }
    cols.update(over)
    return pa.table(cols)


def hourly_fleet(shift_h: float, jobs: list[tuple[float, float]] | None = None) -> dict[str, Any]:
    """g0 sampled every minute over [0, 6 h]; jobs (hours) shifted by
    ``shift_h`` hours, as a job table in local time read as UTC would be."""
    samples = [("g0", float(s), 200.0) for s in range(0, 6 * HOUR + 1, 60)]
    spans = jobs if jobs is not None else [(0.0, 3.0), (3.0, 6.0)]
    rows = [
        (f"J{i}", "g0", (a + shift_h) * HOUR, (b + shift_h) * HOUR, 1.0)
        for i, (a, b) in enumerate(spans)
    ]
    return {
        "power": power_table(samples),
        "devices": devices_table(),
        "sites": sites_table(),
        "intensity": intensity_table([(-48 * HOUR, None, 300.0)]),
        "allocations": allocations_table(rows),
        "max_gap": 120,
    }


# --------------------------------------------------------------------- clean


def test_the_spec12_fleet_has_no_warning(spec12: dict[str, Any]) -> None:
    r = cl.account(**spec12)
    assert r.warnings == []
    assert cl.account(**spec12, strict=True).warnings == []
    kw = dict(spec12)
    del kw["period"]  # the default period
    assert cl.account(**kw).warnings == []


def test_a_zone_other_than_utc_is_not_naive(spec12: dict[str, Any]) -> None:
    kw = dict(spec12)
    berlin = pa.timestamp("us", tz="Europe/Berlin")
    kw["power"] = spec12["power"].set_column(1, "ts", spec12["power"].column("ts").cast(berlin))
    assert cl.account(**kw).warnings == []


def test_a_report_built_without_warnings_has_none(spec12: dict[str, Any]) -> None:
    t = cl.account(**spec12).tables
    assert cl.Report(t["allocations"], t["unallocated"], t["devices"]).warnings == []


# ---------------------------------------------------------- naive_timestamps


def test_naive_timestamp_columns_are_named_once(spec12: dict[str, Any]) -> None:
    kw = dict(spec12)
    kw["power"] = naive(spec12["power"], "ts")
    kw["allocations"] = naive(spec12["allocations"], "start", "end")
    r = cl.account(**kw)
    assert codes(r) == ["naive_timestamps"]
    w = r.warnings[0]
    assert w.count == 3
    assert w.examples == ("power.ts", "allocations.start", "allocations.end")
    assert "power.ts" in w.message and "UTC" in w.message
    # the results are those of the same instants given with a zone (SPEC 1)
    assert r.totals() == cl.account(**spec12).totals()


def _producers(t: pa.Table, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    yield "table", t
    yield "reader", pa.RecordBatchReader.from_batches(t.schema, t.to_batches())
    df = pl.from_arrow(t)
    assert isinstance(df, pl.DataFrame)
    yield "polars", df
    yield "lazy", df.lazy()
    con = duckdb.connect()
    con.register("samples", t)
    yield "duckdb", con.sql("select * from samples")
    pq.write_table(t, tmp_path / "power.parquet")
    yield "parquet", str(tmp_path / "power.parquet")


def test_a_naive_power_stream_is_seen_without_reading_it(
    spec12: dict[str, Any], tmp_path: Path
) -> None:
    for name, power in _producers(naive(spec12["power"], "ts"), tmp_path):
        r = cl.account(**{**spec12, "power": power})
        assert codes(r) == ["naive_timestamps"], name
        assert r.warnings[0].examples == ("power.ts",), name
    (tmp_path / "zoned").mkdir()
    for name, power in _producers(spec12["power"], tmp_path / "zoned"):
        assert cl.account(**{**spec12, "power": power}).warnings == [], name


class _Once:
    """A bare Arrow stream producer: its schema is only in its stream."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.exports = 0

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        self.exports += 1
        return self.table.__arrow_c_stream__(requested_schema)


def test_power_schema_never_pulls_a_stream(spec12: dict[str, Any]) -> None:
    t = naive(spec12["power"], "ts")
    bare = _Once(t)
    assert power_schema(bare) is None
    assert bare.exports == 0
    reader = pa.RecordBatchReader.from_batches(t.schema, t.to_batches())
    assert power_schema(reader) == t.schema
    assert reader.read_all().num_rows == 4  # nothing was consumed
    # an unknown producer skips the power check, the run still works
    r = cl.account(**{**spec12, "power": bare})
    assert bare.exports == 1 and r.warnings == []


def test_string_times_without_a_zone_in_a_small_table(spec12: dict[str, Any]) -> None:
    a = spec12["allocations"]
    text = pc.strftime(a.column("start"), "%Y-%m-%dT%H:%M:%S")
    plain = a.set_column(2, "start", text)
    r = cl.account(**{**spec12, "allocations": plain})
    assert codes(r) == ["naive_timestamps"]
    assert r.warnings[0].examples == ("allocations.start",)
    zoned = a.set_column(2, "start", pc.binary_join_element_wise(text, "Z", ""))
    assert cl.account(**{**spec12, "allocations": zoned}).warnings == []


# --------------------------------------------------------- device_no_samples


def test_a_device_without_samples(spec12: dict[str, Any]) -> None:
    r = cl.account(**{**spec12, "devices": two_devices()})
    assert codes(r) == ["device_no_samples"]
    w = r.warnings[0]
    assert (w.count, w.examples) == (1, ("g1",))
    assert "1 without any valid sample" in w.message


def test_a_device_sampled_only_before_the_period(spec12: dict[str, Any]) -> None:
    p = power_table(
        [("g0", 0, 100), ("g0", 10, 300), ("g0", 20, 300), ("g0", 40, 100), ("g1", -60, 50)]
    )
    r = cl.account(**{**spec12, "power": p, "devices": two_devices()})
    w = only(r, "device_no_samples")
    # -60 s lies outside the read window [-15 s, 55 s] (SPEC 8): not read.
    assert w.examples == ("g1",) and "1 without any valid sample" in w.message
    default = {k: v for k, v in spec12.items() if k != "period"}
    intensity = intensity_table([(-60, 15, 400), (15, 60, 100)])
    r = cl.account(**{**default, "power": p, "devices": two_devices(), "intensity": intensity})
    w = only(r, "device_no_samples")
    assert w.examples == ("g1",) and "0 without any valid sample" in w.message


@pytest.mark.parametrize(
    "window",
    [
        {"retired_at": pa.array([None, at(-3600)], TS)},  # retired before the period
        {"installed_at": pa.array([dt.datetime(2024, 1, 1, tzinfo=UTC), at(3600)], TS)},
        {"lifetime_years": [4.0, 0.5]},  # amortized before 2025 (installed 2024-01-01)
    ],
    ids=["retired", "installed_later", "lifetime_over"],
)
def test_a_device_out_of_service_needs_no_samples(
    spec12: dict[str, Any], window: dict[str, Any]
) -> None:
    r = cl.account(**{**spec12, "devices": two_devices(**window)})
    assert r.warnings == []


def test_samples_too_sparse_for_max_gap(spec12: dict[str, Any]) -> None:
    p = power_table([("g0", 0, 100), ("g0", 40, 100)])
    r = cl.account(**{**spec12, "power": p})
    assert "device_no_samples" in codes(r)


# ------------------------------------------------------ allocation_uncovered


def test_an_allocation_after_its_devices_last_sample(spec12: dict[str, Any]) -> None:
    a = allocations_table([("A", "g0", 5, 25, 1.0), ("B", "g0", 45, 55, 1.0)])
    r = cl.account(**{**spec12, "allocations": a, "period": (at(0), at(60))})
    assert codes(r) == ["allocation_uncovered"]
    w = r.warnings[0]
    assert (w.count, w.examples) == (1, ("B",))


def test_an_allocation_on_a_device_without_samples(spec12: dict[str, Any]) -> None:
    a = allocations_table([("A", "g0", 5, 25, 1.0), ("B", "g1", 5, 25, 0.5)])
    r = cl.account(**{**spec12, "devices": two_devices(), "allocations": a})
    assert codes(r) == ["device_no_samples", "allocation_uncovered"]
    assert r.warnings[1].examples == ("B",)


def test_an_allocation_inside_a_telemetry_gap_is_data_coverage_not_a_warning(
    spec12: dict[str, Any],
) -> None:
    # SPEC 12 samples: 20 -> 40 is a gap longer than max_gap 15, inside the span
    a = allocations_table([("A", "g0", 5, 25, 1.0), ("C", "g0", 25, 35, 1.0)])
    r = cl.account(**{**spec12, "allocations": a})
    c = r.allocations.row(1, named=True)
    assert c["uncovered_s"] == c["duration_s"] == 10
    assert r.warnings == []


def test_an_allocation_outside_the_period_is_not_uncovered(spec12: dict[str, Any]) -> None:
    a = allocations_table([("A", "g0", 5, 25, 1.0), ("D", "g0", 40, 50, 1.0)])
    assert cl.account(**{**spec12, "allocations": a}).warnings == []


# --------------------------------------------------------- fleet_unallocated


def test_no_allocation_overlaps_the_period(spec12: dict[str, Any]) -> None:
    a = allocations_table([("A", "g0", 25, 35, 1.0)])
    r = cl.account(**{**spec12, "allocations": a, "period": (at(0), at(20))})
    # Only samples in the read window [-15 s, 35 s] are read (SPEC 8), the
    # last at 20 s: the job meets none of them either.
    assert codes(r) == ["time_mismatch", "fleet_unallocated"]
    w = r.warnings[1]
    assert (w.count, w.examples) == (1, ("A",)) and "overlaps the period" in w.message


def test_allocations_that_get_no_energy(spec12: dict[str, Any]) -> None:
    a = allocations_table([("C", "g0", 25, 35, 1.0)])  # inside the gap 20 -> 40
    r = cl.account(**{**spec12, "allocations": a})
    assert codes(r) == ["fleet_unallocated"]
    assert "receive no energy" in r.warnings[0].message


def test_an_empty_allocations_table(spec12: dict[str, Any]) -> None:
    empty = spec12["allocations"].slice(0, 0)
    r = cl.account(**{**spec12, "allocations": empty})
    assert codes(r) == ["fleet_unallocated"] and r.warnings[0].count == 0


def test_no_allocations_given_is_no_warning(spec12: dict[str, Any]) -> None:
    assert cl.account(**{**spec12, "allocations": None}).warnings == []


# ------------------------------------------------------------- time_mismatch


def test_allocations_that_never_meet_the_samples(spec12: dict[str, Any]) -> None:
    a = allocations_table([("A", "g0", 2 * HOUR + 5, 2 * HOUR + 25, 1.0)])
    r = cl.account(**{**spec12, "allocations": a})
    assert codes(r) == ["time_mismatch", "fleet_unallocated"]
    w = r.warnings[0]
    assert (w.count, w.examples) == (1, ("A",))
    assert "no allocation meets" in w.message and "local times read as UTC" in w.message
    shifted = cl.account(**hourly_fleet(14))  # disjoint, and a whole-hour shift
    assert codes(shifted) == ["time_mismatch", "fleet_unallocated"]
    assert "no allocation meets" in shifted.warnings[0].message
    assert "shifted by +14 h" in shifted.warnings[0].message


@pytest.mark.parametrize("shift", [2, -3, 5])
def test_allocations_shifted_by_whole_hours(shift: int) -> None:
    r = cl.account(**hourly_fleet(shift))
    w = only(r, "time_mismatch")
    assert f"shifted by {shift:+d} h" in w.message
    # the allocations reaching past the samples are the examples
    assert w.examples == {2: ("J1",), -3: ("J0",), 5: ("J0", "J1")}[shift]


@pytest.mark.parametrize(
    ("shift", "jobs"),
    [
        (0, None),  # the same range
        (2 + 20 / 60, None),  # not a whole number of hours
        (0.05, None),  # 3 min: within the tolerance of no shift at all
        (2, [(0.0, 4.0)]),  # whole hours at the start only
        (0, [(-1.0, 1.0), (5.0, 7.0)]),  # wider than the samples, by whole hours
        (15, [(0.0, 3.0), (3.0, 6.0)]),  # beyond any UTC offset: disjoint is checked apart
    ],
    ids=["same", "not_whole", "tolerance", "one_end", "wider", "beyond_offsets"],
)
def test_ranges_that_are_not_a_whole_hour_shift(
    shift: float, jobs: list[tuple[float, float]] | None
) -> None:
    r = cl.account(**hourly_fleet(shift, jobs))
    assert [w for w in r.warnings if w.code == "time_mismatch" and "shifted" in w.message] == []
    if shift in (0, 2 + 20 / 60, 0.05):
        assert "time_mismatch" not in codes(r)


# -------------------------------------------------------------------- strict


def test_strict_raises_with_every_warning(spec12: dict[str, Any]) -> None:
    a = allocations_table([("A", "g0", 5, 25, 1.0), ("B", "g1", 5, 25, 0.5)])
    kw = {**spec12, "devices": two_devices(), "allocations": a}
    with pytest.raises(cl.SuspiciousResultError) as info:
        cl.account(**kw, strict=True)
    e = info.value
    assert isinstance(e, cl.InputError)
    assert [w.code for w in e.warnings] == ["device_no_samples", "allocation_uncovered"]
    for w in e.warnings:
        assert str(w) in str(e)
    assert "2 warning(s)" in str(e)


# --------------------------------------------------------------- the objects


def test_warning_round_trips_through_json() -> None:
    w = LedgerWarning("device_no_samples", "1 of 2 devices ...", 1, ("g1",))
    assert LedgerWarning.from_dict(json.loads(json.dumps(w.to_dict()))) == w
    assert warnings_from_manifest({"warnings": [w.to_dict()]}) == [w]
    assert warnings_from_manifest({}) == []
    assert str(w) == "[device_no_samples] 1 of 2 devices ..."
    assert format_warnings([w]) == "carbonledger: warning [device_no_samples] 1 of 2 devices ..."
    assert cl.LedgerWarning is LedgerWarning
    assert set(WARNING_CODES) == {
        "naive_timestamps",
        "time_mismatch",
        "fleet_unallocated",
        "device_no_samples",
        "allocation_uncovered",
    }


def test_collect_warnings_takes_several_power_schemas(spec12: dict[str, Any]) -> None:
    r = cl.account(**spec12)
    zoned = spec12["power"].schema
    plain = naive(spec12["power"], "ts").schema
    found = collect_warnings(r, schemas={"power": [zoned, plain]}, allocations_given=True)
    assert [w.examples for w in found] == [("power[1].ts",)]
    assert collect_warnings(r, schemas={"power": [zoned, zoned]}, allocations_given=True) == []


# ----------------------------------------------------------- report.html


def test_report_html_shows_the_warnings(spec12: dict[str, Any]) -> None:
    r = cl.account(**{**spec12, "devices": two_devices()})
    text = render_html(r, {"carbonledger": cl.__version__}, ["phase"])
    page = parse_page(text)
    assert "warnings" in page.ids
    assert page.refs == [] and network_refs(page) == [] and "<script" not in text
    start = text.index('<section id="warnings"')
    part = text[start : text.index("</section>", start)]
    assert 'class="warn"' in part and "device_no_samples" in part and ">g1<" in part
    # read back from a manifest when the report has none
    bare = cl.Report(*(r.tables[n] for n in ("allocations", "unallocated", "devices")))
    manifest = {"warnings": [w.to_dict() for w in r.warnings]}
    assert "device_no_samples" in render_html(bare, manifest, ["phase"])
    clean = render_html(cl.account(**spec12), {}, ["phase"])
    start = clean.index('<section id="warnings"')
    assert "None:" in clean[start : clean.index("</section>", start)]


# --------------------------------------------------------------------- CLI


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carbonledger.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_args(spec12: dict[str, Any], folder: Path, out: Path, *extra: str) -> list[str]:
    args = ["run", "--out", str(out), "--max-gap", "15", "--by", "phase"]
    for name in ("power", "devices", "sites", "intensity", "allocations"):
        path = folder / f"{name}.parquet"
        pq.write_table(spec12[name], path)
        args += [f"--{name}", str(path)]
    return [*args, "--period", "2025-01-01T00:00:00Z", "2025-01-01T00:00:40Z", *extra]


def test_cli_strict_exits_2_and_writes_nothing(spec12: dict[str, Any], tmp_path: Path) -> None:
    spec12["devices"] = two_devices()
    out = tmp_path / "ledger"
    r = cli(*run_args(spec12, tmp_path, out, "--strict"))
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("carbonledger: error: strict: 1 warning(s)")
    assert "[device_no_samples]" in r.stderr and "g1" in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ledger")] == []


def test_cli_reports_warnings_everywhere(spec12: dict[str, Any], tmp_path: Path) -> None:
    spec12["devices"] = two_devices()
    out = tmp_path / "ledger"
    r = cli(*run_args(spec12, tmp_path, out, "--quiet"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    # even with --quiet: the ledger is probably wrong
    assert r.stderr.startswith("carbonledger: warning [device_no_samples] 1 of 2 device(s)")
    manifest = json.loads((out / "manifest.json").read_text())
    assert [w["code"] for w in manifest["warnings"]] == ["device_no_samples"]
    assert manifest["warnings"][0]["examples"] == ["g1"]
    assert manifest["options"]["strict"] is False
    text = (out / "report.html").read_text(encoding="utf-8")
    parse_page(text)
    assert 'id="warnings" class="warn"' in text and "device_no_samples" in text
    s = cli("summarize", str(out), "--by", "phase")
    assert s.returncode == 0, s.stderr
    assert "[device_no_samples]" in s.stderr and "training" in s.stdout


def test_cli_clean_run_records_no_warning(spec12: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "ledger"
    r = cli(*run_args(spec12, tmp_path, out, "--strict"))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert json.loads((out / "manifest.json").read_text())["warnings"] == []
