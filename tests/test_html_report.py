"""``report.html`` (``carbonledger.html_report``): a well-formed,
self-contained page with every chart, real numbers, escaped text, the grid
chart from the report's ``grid`` table (or a note without one), and a size
that does not grow with the fleet."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from htmlcheck import network_refs, parse_page

import carbonledger as cl
from carbonledger.html_report import (
    MAX_BINS,
    SECTION_IDS,
    bin_grid,
    fmt,
    nice_ticks,
    render_html,
    tick_text,
)
from carbonledger.report import METRIC_COLUMNS, Report

UTC = dt.timezone.utc
H0 = dt.datetime(2025, 1, 1, tzinfo=UTC)
MANIFEST: dict[str, Any] = {
    "carbonledger": cl.__version__,
    "options": {"period": ["2025-01-01T00:00:00Z", "2025-01-01T00:00:40Z"], "max_gap": 15.0},
    "inputs": {"power": [{"path": "power.parquet", "bytes": 123, "sha256": "ab" * 32}]},
    "started_at": "2025-01-02T00:00:00+00:00",
    "seconds": 0.5,
}


def spec12_report(spec12: dict[str, Any]) -> Report:
    return cl.account(**spec12)


def grid_df(rows: list[tuple[str, float, float, float, float]]) -> pl.DataFrame:
    """(region, start hour, end hour, gCO2e/kWh, energy kWh) -> the documented
    ``report.grid`` schema (PUE 1.5, cfe 0.25, embodied 0.01 kg/h)."""
    ts = [H0 + dt.timedelta(hours=r[1]) for r in rows]
    te = [H0 + dt.timedelta(hours=r[2]) for r in rows]
    energy = [r[4] for r in rows]
    g = [r[3] for r in rows]
    op = [e * 1.5 * c / 1000 for e, c in zip(energy, g, strict=True)]
    emb = [0.01 * (r[2] - r[1]) for r in rows]
    return pl.DataFrame(
        {
            "region": [r[0] for r in rows],
            "start": pl.Series(ts, dtype=pl.Datetime("ns", "UTC")),
            "end": pl.Series(te, dtype=pl.Datetime("ns", "UTC")),
            "gco2e_per_kwh": g,
            "cfe": [0.25] * len(rows),
            "residual_gco2e_per_kwh": g,
            "duration_s": [3600.0 * (r[2] - r[1]) for r in rows],
            "uncovered_s": [0.0] * len(rows),
            "energy_kwh": energy,
            "facility_energy_kwh": [1.5 * e for e in energy],
            "operational_kgco2e": op,
            "operational_market_kgco2e": [0.75 * o for o in op],
            "embodied_kgco2e": emb,
            "total_kgco2e": [o + m for o, m in zip(op, emb, strict=True)],
        }
    )


def with_grid(report: Report, grid: pl.DataFrame | None) -> Report:
    t = report.tables
    return Report(
        t["allocations"],
        t["unallocated"],
        t["devices"],
        grid=None if grid is None else grid.to_arrow(),
    )


def section(page: str, sid: str) -> str:
    start = page.index(f'<section id="{sid}">')
    return page[start : page.index("</section>", start)]


def test_spec12_page_is_well_formed_self_contained_and_holds_the_numbers(
    spec12: dict[str, Any],
) -> None:
    report = spec12_report(spec12)
    assert "grid" in report.tables
    text = render_html(report, MANIFEST, ["phase"])
    page = parse_page(text)
    for sid in (*SECTION_IDS, "chart-by-phase"):
        assert sid in page.ids
    assert page.refs == [] and network_refs(page) == []
    assert "http" not in text and "<script" not in text
    assert page.tags["svg"] >= 7
    t = report.totals()
    total = 1 / 1920 + 1 / 8000 + 2 * 3000 / 126_230_400
    assert t["total_kgco2e"] == pytest.approx(total, rel=1e-12)
    head = section(text, "headline")
    assert fmt(total) == "0.000693" and "0.000693 kgCO2e" in head
    assert "0.000521" in head  # operational of A, 1/1920
    assert "0.0000" not in fmt(1 / 8000) and fmt(1 / 8000) == "0.000125"
    labels = section(text, "chart-labels")
    assert "training" in labels and "unallocated" in labels
    # training's share of the fleet total
    share = 100 * (1 / 1920 + 3000 / 126_230_400) / total
    assert f"{share:.1f}%" in labels
    # the two grid intervals of region R: [0, 15) at 400 and [15, 40) at 100 g/kWh
    grid = section(text, "chart-grid")
    assert "region R" in grid and "100" in grid and "400" in grid
    jobs = section(text, "chart-top-jobs")
    assert ">A<" in jobs and ">g0<" in jobs
    cov = section(text, "chart-coverage")
    assert ">4<" in cov  # 4 samples
    assert "power.parquet" in section(text, "provenance")


def test_no_grid_table_gives_a_note_not_a_chart(spec12: dict[str, Any]) -> None:
    report = with_grid(spec12_report(spec12), None)
    assert "grid" not in report.tables
    text = render_html(report, MANIFEST, ["phase"])
    page = parse_page(text)
    assert set(SECTION_IDS) <= set(page.ids)
    grid = section(text, "chart-grid")
    assert "Not available" in grid and "<svg" not in grid
    # location- vs market-based still shown, fleet only
    market = section(text, "chart-market")
    assert "fleet" in market and "region" not in market


def test_hand_made_grid_is_charted_per_region(spec12: dict[str, Any]) -> None:
    grid = grid_df(
        [
            ("DE", 0, 1, 300, 2.0),
            ("DE", 1, 2, 200, 4.0),
            ("DE", 2, 3, 100, 6.0),
            ("SG", 0, 1, 500, 1.0),
            ("SG", 1, 2, 500, 1.0),
        ]
    )
    report = with_grid(spec12_report(spec12), grid)
    text = render_html(report, MANIFEST, ["phase"])
    parse_page(text)
    sec = section(text, "chart-grid")
    assert "region DE" in sec and "region SG" in sec
    assert sec.count("<polygon") == 4  # power and carbon panels, stacked by region
    assert sec.count("<path") == 2  # one intensity line per region
    assert "binned to 1 h" in sec
    for unit in ("kW", "gCO2e/kWh", "kgCO2e per hour", "time (UTC)"):
        assert unit in sec
    # DE: 12 kWh IT; energy-weighted intensity = (2*300 + 4*200 + 6*100) / 12 = 166.7
    assert ">12.00<" in sec and ">166.7<" in sec and ">100\N{EN DASH}300<" in sec
    assert ">500<" in sec  # SG: one intensity
    market = section(text, "chart-market")
    de_loc = 1.5 * (2 * 300 + 4 * 200 + 6 * 100) / 1000
    assert f"{fmt(de_loc)} / {fmt(0.75 * de_loc)} kg -25%" in market


def test_bin_grid_conserves_energy_and_keeps_hourly_intensity() -> None:
    grid = grid_df(
        [
            ("A", 0, 1, 100, 1.0),
            ("A", 1, 2, 200, 2.0),
            ("A", 2, 3, 300, 3.0),
            ("B", 0.5, 1.5, 50, 4.0),  # half-hour offset zone: split over two bins
            ("B", 1.5, 2.0, 70, 1.0),
        ]
    )
    b = bin_grid(grid)
    assert b.regions == ["A", "B"]
    assert len(b.edges) == 4 and int(b.edges[1] - b.edges[0]) == 3_600_000_000_000
    np.testing.assert_allclose(b.energy_kwh[0], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(b.energy_kwh[1], [2.0, 3.0, 0.0])
    np.testing.assert_allclose(b.intensity[0], [100, 200, 300])
    assert b.intensity[1][0] == 50 and b.intensity[1][1] == pytest.approx(60)
    assert math.isnan(b.intensity[1][2])
    np.testing.assert_allclose(b.bin_hours, [1.0, 1.0, 1.0])
    assert b.operational_kg.sum() == pytest.approx(grid["operational_kgco2e"].sum(), rel=1e-12)


def test_bin_grid_caps_the_columns_of_a_long_period() -> None:
    hours = 2 * 8760
    rows = [("X", float(h), float(h + 1), 100.0 + h % 24, 1.0 + h % 7) for h in range(hours)]
    grid = grid_df(rows)
    b = bin_grid(grid)
    assert b.energy_kwh.shape[1] <= MAX_BINS
    assert b.energy_kwh.sum() == pytest.approx(grid["energy_kwh"].sum(), rel=1e-12)
    assert b.bin_hours.sum() == pytest.approx(hours)


def _big_fleet(n_dev: int, n_jobs: int, regions: int, hours: int) -> Report:
    rng = np.random.default_rng(0)
    dev = [f"node{i // 8:04d}-gpu{i % 8}" for i in range(n_dev)]

    def metrics(n: int) -> dict[str, Any]:
        e = rng.uniform(0.1, 50.0, n)
        op = e * 0.3
        emb = rng.uniform(0.01, 1.0, n)
        return {
            "energy_kwh": e,
            "facility_energy_kwh": 1.2 * e,
            "operational_kgco2e": op,
            "operational_market_kgco2e": 0.8 * op,
            "embodied_kgco2e": emb,
            "total_kgco2e": op + emb,
        }

    t0 = np.datetime64("2025-01-01T00:00:00", "ns")
    starts = t0 + rng.integers(0, hours * 3600, n_jobs).astype("timedelta64[s]")
    ts = pa.timestamp("ns", tz="UTC")
    alloc = pa.table(
        {
            "job_id": [f"job-{i:06d}" for i in range(n_jobs)],
            "device_id": [dev[i % n_dev] for i in range(n_jobs)],
            "start": pa.array(starts, pa.timestamp("ns")).cast(ts),
            "end": pa.array(starts + np.timedelta64(3600, "s"), pa.timestamp("ns")).cast(ts),
            "phase": [
                ("training", "inference", "data", "experimentation")[i % 4] for i in range(n_jobs)
            ],
            "team": [f"team-{i % 40:02d}" for i in range(n_jobs)],
            "duration_s": np.full(n_jobs, 3600.0),
            "uncovered_s": np.zeros(n_jobs),
            **metrics(n_jobs),
        }
    )
    unalloc = pa.table(
        {
            "device_id": dev,
            "duration_s": rng.uniform(0, hours * 3600, n_dev),
            "uncovered_s": np.zeros(n_dev),
            **metrics(n_dev),
        }
    )
    dev_metrics = {c: np.zeros(n_dev) for c in METRIC_COLUMNS}
    a_pl = pl.from_arrow(alloc)
    u_pl = pl.from_arrow(unalloc)
    assert isinstance(a_pl, pl.DataFrame) and isinstance(u_pl, pl.DataFrame)
    per = a_pl.group_by("device_id").agg([pl.col(c).sum() for c in METRIC_COLUMNS])
    lookup = {r["device_id"]: r for r in per.iter_rows(named=True)}
    for i, d in enumerate(dev):
        for c in METRIC_COLUMNS:
            dev_metrics[c][i] = u_pl[c][i] + (lookup[d][c] if d in lookup else 0.0)
    n_samples = rng.integers(1000, 5000, n_dev)
    devices = pa.table(
        {
            "device_id": dev,
            "samples": pa.array(n_samples, pa.uint64()),
            "invalid_samples": pa.array(rng.integers(0, 5, n_dev), pa.uint64()),
            "duplicate_samples": pa.array(rng.integers(0, 5, n_dev), pa.uint64()),
            "first_ts": pa.array(np.full(n_dev, t0), pa.timestamp("ns")).cast(ts),
            "last_ts": pa.array(
                np.full(n_dev, t0 + np.timedelta64(hours * 3600, "s")), pa.timestamp("ns")
            ).cast(ts),
            "gaps": pa.array(rng.integers(0, 9, n_dev), pa.uint64()),
            "counter_wraps": pa.array(np.zeros(n_dev, np.int64), pa.uint64()),
            "counter_resets": pa.array(np.zeros(n_dev, np.int64), pa.uint64()),
            "uncovered_s": rng.uniform(0, 7200, n_dev),
            **dev_metrics,
        }
    )
    grid = grid_df(
        [
            (f"zone-{r}", float(h), float(h + 1), 100.0 + 10 * r + h % 24, 5.0 + r)
            for r in range(regions)
            for h in range(hours)
        ]
    )
    return Report(alloc, unalloc, devices, grid=grid.to_arrow())


def test_page_size_does_not_grow_with_the_fleet() -> None:
    report = _big_fleet(n_dev=4000, n_jobs=30_000, regions=4, hours=31 * 24)
    manifest = {"carbonledger": cl.__version__, "options": {"period": None}, "inputs": {}}
    text = render_html(report, manifest, ["phase", "team"])
    page = parse_page(text)
    assert {"chart-by-phase", "chart-by-team", *SECTION_IDS} <= set(page.ids)
    assert len(text) < 400_000
    assert "others (25 values)" in section(text, "chart-labels")  # 40 teams: 15 + others
    assert "others (29,985 jobs)" in section(text, "chart-top-jobs")
    assert "others (3,980 devices)" in section(text, "chart-utilization")
    assert "others (3,980 devices)" in section(text, "chart-coverage")
    # 4,000 devices on the time histogram
    util = section(text, "chart-utilization")
    assert "of 4,000)" in util
    assert "744.0 h" in section(text, "headline")  # period from first_ts/last_ts


def test_text_is_escaped(spec12: dict[str, Any]) -> None:
    spec12["allocations"] = spec12["allocations"].set_column(
        0, "job_id", [['<script>alert("x")</script>']]
    )
    spec12["allocations"] = spec12["allocations"].set_column(5, "phase", [["R&D <b>"]])
    text = render_html(spec12_report(spec12), MANIFEST, ["phase"])
    parse_page(text)
    assert "<script" not in text and "<b>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert "R&amp;D &lt;b&gt;" in text


def test_without_labels_shows_allocated_and_unallocated(spec12: dict[str, Any]) -> None:
    spec12["allocations"] = spec12["allocations"].drop_columns(["phase"])
    text = render_html(spec12_report(spec12), MANIFEST, ["phase"])
    page = parse_page(text)
    assert set(SECTION_IDS) <= set(page.ids) and "chart-by-phase" not in page.ids
    assert "Allocated and unallocated capacity" in section(text, "chart-labels")


def test_number_and_tick_formatting() -> None:
    assert [fmt(x) for x in (0, 1234567.8, 123.45, 12.345, 1.2345, 0.012345, 1.5e-7)] == [
        "0",
        "1,234,568",
        "123.5",
        "12.35",
        "1.234",
        "0.0123",
        "1.5e-07",
    ]
    assert fmt(float("nan")) == "\N{EN DASH}"
    ticks = nice_ticks(103)
    assert ticks == [0, 25, 50, 75, 100, 125]
    assert [tick_text(t, ticks) for t in ticks] == ["0", "25", "50", "75", "100", "125"]
    ticks = nice_ticks(7.3)
    assert [tick_text(t, ticks) for t in ticks] == ["0", "2", "4", "6", "8"]
    ticks = nice_ticks(0.0031)
    assert [tick_text(t, ticks) for t in ticks] == ["0", "0.001", "0.002", "0.003", "0.004"]
    ticks = nice_ticks(9.0, 4)
    assert [tick_text(t, ticks) for t in ticks] == ["0", "2.5", "5", "7.5", "10"]
    assert [tick_text(t, nice_ticks(3e5)) for t in nice_ticks(3e5)][-1] == "300,000"
