"""``report.html``: the ledger as one self-contained page for people who
read charts, not Parquet.

Everything is inline: CSS, and SVG charts drawn here in Python. The page
loads nothing from anywhere (no scripts, fonts, stylesheets or images), so it
can be mailed, archived or opened offline, and it stays small for fleets of
thousands of devices: long tables are cut to the top rows plus one "others"
row, and the grid time series is binned to at most a few hundred columns.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from ._time import to_ns
from .diagnostics import LedgerWarning, warnings_from_manifest
from .exceptions import InputError
from .report import METRIC_COLUMNS, Report

# Colors (color-blind safe pairs: blue / orange, teal, grey for idle capacity).
OPERATIONAL = "#1f5a8c"
MARKET = "#3fa39b"
EMBODIED = "#d9822b"
ALLOCATED = "#1f5a8c"
UNALLOCATED = "#a3a9b0"
COVERED = "#4c9a5b"
UNCOVERED = "#c8553d"
PALETTE = (
    "#1f5a8c",
    "#d9822b",
    "#3fa39b",
    "#8c4b9e",
    "#c8553d",
    "#6a8f2a",
    "#b8860b",
    "#5d6d7e",
)

DASH = "\N{EN DASH}"  # ranges, and "no value"
TOP_CATEGORIES = 15  # bars per label chart, then one "others" bar
TOP_JOBS = 15
TOP_DEVICES = 20
MAX_BINS = 480  # columns of the grid time series
LABEL_COLUMNS = ("phase", "team")  # shown whenever present, besides ``by``

SECTION_IDS = (
    "headline",
    "warnings",
    "chart-labels",
    "chart-market",
    "chart-grid",
    "chart-top-jobs",
    "chart-utilization",
    "chart-coverage",
    "provenance",
)

_NOT_LABELS = {
    "job_id",
    "device_id",
    "start",
    "end",
    "share",
    "duration_s",
    "uncovered_s",
    *METRIC_COLUMNS,
}

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
  sans-serif; color: #1d232a; background: #f5f6f8; margin: 0; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 0 0 6px; }
h3 { font-size: 15px; margin: 18px 0 4px; }
section { background: #fff; border: 1px solid #dde1e6; border-radius: 8px;
  padding: 18px 20px; margin: 18px 0; }
p.sub, p.note, figcaption { color: #56606b; margin: 4px 0 10px; }
p.note { font-size: 13px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr));
  gap: 10px; margin: 12px 0; }
.card { border: 1px solid #dde1e6; border-radius: 6px; padding: 10px 12px; }
.card .k { color: #56606b; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
.card .v { font-size: 22px; font-weight: 600; }
.card .u { color: #56606b; font-size: 12px; }
figure { margin: 10px 0 16px; }
svg { width: 100%; height: auto; display: block; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
  sans-serif; fill: #1d232a; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 8px 0; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e6e9ed; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.others td { color: #56606b; font-style: italic; }
code { font-size: 12px; }
section.warn { border: 2px solid #c8553d; background: #fff7f5; }
section.warn h2 { color: #a23b26; }
"""


# ----------------------------------------------------------------- formatting


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def fmt(x: float | None) -> str:
    """A number for people: thousands separators, about 3-4 significant digits."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return DASH
    a = abs(x)
    if a == 0:
        return "0"
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.1f}"
    if a >= 10:
        return f"{x:.2f}"
    if a >= 1:
        return f"{x:.3f}"
    return f"{x:.3g}"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole > 0 else DASH


def _hours(seconds: float) -> str:
    return fmt(seconds / 3600)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def tick_text(v: float, ticks: Sequence[float]) -> str:
    """A tick label with as many decimals as the tick step needs."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0
    text = f"{v:,.{decimals + 1}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def nice_ticks(hi: float, n: int = 5) -> list[float]:
    """Ticks 0, s, 2s, ... covering [0, hi] with s = 1, 2 or 5 x 10^k."""
    if not hi > 0 or not math.isfinite(hi):
        return [0.0, 1.0]
    raw = hi / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    count = math.ceil(hi / step - 1e-9)
    return [round(i * step, 12) for i in range(count + 1)]


# --------------------------------------------------------------- bar charts


@dataclass
class Bar:
    """One bar of a horizontal bar chart."""

    label: str
    values: list[float]
    note: str = ""
    muted: bool = False


@dataclass
class Chart:
    """A horizontal bar chart: its title, series (name, colour), bars and axis."""

    title: str
    series: list[tuple[str, str]]  # (name, color)
    bars: list[Bar]
    axis: str  # axis label with unit
    stacked: bool = True
    caption: str = ""
    unit: str = ""
    percent: bool = False  # values are fractions, axis 0-100 %


def _legend(series: Sequence[tuple[str, str]], x: float, y: float) -> str:
    out = []
    for name, color in series:
        out.append(
            f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{color}"/>'
            f'<text x="{x + 16:.1f}" y="{y:.1f}" font-size="12">{_e(name)}</text>'
        )
        x += 16 + 7.0 * len(name) + 18
    return "".join(out)


def hbar_svg(chart: Chart, width: int = 960) -> str:
    """Horizontal bars, stacked or grouped, with a legend, value notes, a
    gridded x axis with its label and a tooltip (``<title>``) on every bar."""
    n_series = len(chart.series)
    label_w = min(250, 12 + 6.6 * max([len(b.label) for b in chart.bars] or [4]))
    note_w = min(230, 12 + 6.4 * max([len(b.note) for b in chart.bars] or [0]))
    x0 = label_w + 6
    plot_w = width - x0 - note_w - 10
    row_h = 24 if chart.stacked else 8 + 11 * n_series
    top = 34
    height = top + row_h * len(chart.bars) + 44
    if chart.percent:
        hi = 1.0
        ticks = [0.0, 0.25, 0.5, 0.75, 1.0]
    else:
        per_bar = [sum(b.values) if chart.stacked else max(b.values) for b in chart.bars]
        ticks = nice_ticks(max(per_bar or [0.0]))
        hi = ticks[-1]
    scale = plot_w / hi
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{_e(chart.title)}">',
        f"<title>{_e(chart.title)}</title>",
        _legend(chart.series, x0, 16),
    ]
    axis_y = top + row_h * len(chart.bars) + 4
    for t in ticks:
        x = x0 + t * scale
        text = f"{100 * t:.0f}%" if chart.percent else tick_text(t, ticks)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{axis_y}" stroke="#e3e6ea"/>'
            f'<text x="{x:.1f}" y="{axis_y + 14}" font-size="11" text-anchor="middle">'
            f"{_e(text)}</text>"
        )
    parts.append(
        f'<line x1="{x0}" y1="{axis_y}" x2="{x0 + plot_w:.1f}" y2="{axis_y}" stroke="#8a939c"/>'
        f'<text x="{x0 + plot_w / 2:.1f}" y="{axis_y + 34}" font-size="12" '
        f'text-anchor="middle">{_e(chart.axis)}</text>'
    )
    for i, bar in enumerate(chart.bars):
        y = top + i * row_h
        style = ' font-style="italic"' if bar.muted else ""
        parts.append(
            f'<text x="{label_w:.1f}" y="{y + row_h / 2 + 4:.1f}" font-size="12" '
            f'text-anchor="end"{style}><title>{_e(bar.label)}</title>'
            f"{_e(_clip(bar.label, 36))}</text>"
        )
        opacity = ' fill-opacity="0.6"' if bar.muted else ""
        x = float(x0)
        end = x
        for j, ((name, color), v) in enumerate(zip(chart.series, bar.values, strict=True)):
            w = max(0.0, v) * scale
            shown = f"{100 * v:.1f}%" if chart.percent else f"{fmt(v)} {chart.unit}".strip()
            tip = f"{bar.label}: {name} {shown}"
            if chart.stacked:
                parts.append(
                    f'<rect x="{x:.2f}" y="{y + 4}" width="{w:.2f}" height="{row_h - 8}" '
                    f'fill="{color}"{opacity}><title>{_e(tip)}</title></rect>'
                )
                x += w
                end = x
            else:
                yy = y + 4 + 11 * j
                parts.append(
                    f'<rect x="{x0}" y="{yy}" width="{w:.2f}" height="9" fill="{color}"'
                    f"{opacity}><title>{_e(tip)}</title></rect>"
                )
                end = max(end, x0 + w)
        if bar.note:
            parts.append(
                f'<text x="{end + 6:.1f}" y="{y + row_h / 2 + 4:.1f}" font-size="11">'
                f"{_e(bar.note)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _figure(chart: Chart, fig_id: str | None = None) -> str:
    ident = f' id="{_e(fig_id)}"' if fig_id else ""
    caption = f"<figcaption>{_e(chart.caption)}</figcaption>" if chart.caption else ""
    return f"<figure{ident}><h3>{_e(chart.title)}</h3>{caption}{hbar_svg(chart)}</figure>"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: set[int]) -> str:
    def cells(row: Sequence[str], tag: str) -> str:
        return "".join(
            f'<{tag} class="n">{_e(c)}</{tag}>' if i in numeric else f"<{tag}>{_e(c)}</{tag}>"
            for i, c in enumerate(row)
        )

    body = []
    for row in rows:
        others = row and str(row[0]).startswith("others")
        cls = ' class="others"' if others else ""
        body.append(f"<tr{cls}>{cells(row, 'td')}</tr>")
    return (
        f"<table><thead><tr>{cells(header, 'th')}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


# ----------------------------------------------------------------- context


@dataclass
class _Ctx:
    manifest: dict[str, Any]
    labels: list[str]
    alloc: pl.DataFrame
    unalloc: pl.DataFrame
    devices: pl.DataFrame
    grid: pl.DataFrame | None
    totals: dict[str, float]
    period: tuple[int, int] | None  # ns
    warnings: list[LedgerWarning] = field(default_factory=list)

    @property
    def period_s(self) -> float:
        return (self.period[1] - self.period[0]) / 1e9 if self.period else 0.0


def _period(
    report: Report, manifest: dict[str, Any], devices: pl.DataFrame
) -> tuple[int, int] | None:
    """The accounting period: the one the engine settled on (the report's,
    or a ledger's manifest), else, for ledgers written before the engine
    returned it, the one asked for or the first to last valid sample."""
    if report.period_ns is not None:
        return report.period_ns
    settled = manifest.get("period_ns")
    if isinstance(settled, list) and len(settled) == 2:
        return int(settled[0]), int(settled[1])
    given = manifest.get("options", {}).get("period")
    if given:
        try:
            return to_ns(given[0], "period"), to_ns(given[1], "period")
        except (InputError, IndexError, TypeError):
            pass
    if "first_ts" in devices.columns and "last_ts" in devices.columns:
        first = devices["first_ts"].drop_nulls()
        last = devices["last_ts"].drop_nulls()
        if len(first) and len(last):
            lo = first.dt.epoch("ns").min()
            hi = last.dt.epoch("ns").max()
            if isinstance(lo, int) and isinstance(hi, int) and hi > lo:
                return lo, hi
    return None


def _labels(alloc: pl.DataFrame, by: Sequence[str]) -> list[str]:
    out = [k for k in by if k in alloc.columns and k not in _NOT_LABELS]
    out += [k for k in LABEL_COLUMNS if k in alloc.columns and k not in out]
    return out


def _ts_text(ns: int) -> str:
    t = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=ns // 1000)
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def _sum(df: pl.DataFrame, col: str) -> float:
    if col not in df.columns or df.height == 0:
        return 0.0
    v = df[col].sum()
    return float(v) if v is not None else 0.0


def _top_rows(
    df: pl.DataFrame, n: int, by: list[str], descending: list[bool]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The first ``n`` rows of ``df`` sorted by ``by``, and the other rows (in
    no particular order), without sorting all of ``df``: a report of a
    million devices or jobs shows a few dozen. ``by`` must end in a unique
    column, so that the first ``n`` are well defined."""
    if df.height <= n or any(df[c].null_count() for c in by):
        # Few rows, or nulls (which a sort and a top-k place differently).
        ordered = df.sort(by, descending=descending)
        return ordered.head(n), ordered.slice(n)
    rows = df.with_row_index("_row")
    top = rows.top_k(n, by=by, reverse=[not d for d in descending]).sort(by, descending=descending)
    rest = rows.filter(~pl.col("_row").is_in(top["_row"].implode()))
    return top.drop("_row"), rest.drop("_row")


# ----------------------------------------------------------------- sections


def _section(sid: str, title: str, body: str, sub: str = "") -> str:
    subtitle = f'<p class="sub">{_e(sub)}</p>' if sub else ""
    return f'<section id="{sid}"><h2>{_e(title)}</h2>{subtitle}{body}</section>'


def _card(key: str, value: str, unit: str = "") -> str:
    u = f'<div class="u">{_e(unit)}</div>' if unit else ""
    return (
        f'<div class="card"><div class="k">{_e(key)}</div><div class="v">{_e(value)}</div>{u}</div>'
    )


def _kg(x: float) -> str:
    return f"= {fmt(x / 1000)} tCO2e" if abs(x) >= 1000 else "operational + embodied"


def _headline(c: _Ctx) -> str:
    t = c.totals
    total = t["total_kgco2e"]
    idle = _sum(c.unalloc, "total_kgco2e")
    idle_energy = _sum(c.unalloc, "energy_kwh")
    pue = t["facility_energy_kwh"] / t["energy_kwh"] if t["energy_kwh"] > 0 else float("nan")
    cards = [
        _card("Total footprint", f"{fmt(total)} kgCO2e", _kg(total)),
        _card(
            "Operational, location-based",
            f"{fmt(t['operational_kgco2e'])} kgCO2e",
            f"{_pct(t['operational_kgco2e'], total)} of total",
        ),
        _card(
            "Operational, market-based",
            f"{fmt(t['operational_market_kgco2e'])} kgCO2e",
            "Scope 2 market method (CFE, residual mix)",
        ),
        _card(
            "Embodied (amortized)",
            f"{fmt(t['embodied_kgco2e'])} kgCO2e",
            f"{_pct(t['embodied_kgco2e'], total)} of total",
        ),
        _card("IT energy", f"{fmt(t['energy_kwh'])} kWh", "measured at the devices"),
        _card(
            "Facility energy",
            f"{fmt(t['facility_energy_kwh'])} kWh",
            f"x PUE (fleet average {fmt(pue)})",
        ),
        _card(
            "Unallocated (idle capacity)",
            _pct(idle, total),
            f"of carbon: {fmt(idle)} kgCO2e; {_pct(idle_energy, t['energy_kwh'])} of energy",
        ),
    ]
    if "execution_idle_kwh" in c.alloc.columns:
        idle_s = _sum(c.alloc, "execution_idle_s")
        known_s = idle_s + _sum(c.alloc, "busy_s")
        cards.append(
            _card(
                "Execution-idle (allocated, utilization below the threshold)",
                _pct(idle_s, known_s),
                f"of allocated time with known utilization; "
                f"{fmt(_sum(c.alloc, 'execution_idle_kwh'))} kWh, "
                f"{_pct(_sum(c.alloc, 'execution_idle_kwh'), _sum(c.alloc, 'energy_kwh'))} "
                "of the jobs' energy",
            )
        )
    chart = Chart(
        title="Where the carbon comes from",
        series=[("operational (location-based)", OPERATIONAL), ("embodied", EMBODIED)],
        bars=[
            Bar(
                "all jobs",
                [
                    _sum(c.alloc, "operational_kgco2e"),
                    _sum(c.alloc, "embodied_kgco2e"),
                ],
                note=f"{fmt(_sum(c.alloc, 'total_kgco2e'))} kgCO2e ({_pct(total - idle, total)})",
            ),
            Bar(
                "unallocated (idle capacity)",
                [_sum(c.unalloc, "operational_kgco2e"), _sum(c.unalloc, "embodied_kgco2e")],
                note=f"{fmt(idle)} kgCO2e ({_pct(idle, total)})",
                muted=True,
            ),
        ],
        axis="kgCO2e",
        unit="kgCO2e",
        caption="Total = operational (location-based) + embodied. Allocations and the "
        "unallocated bucket add up to the fleet totals.",
    )
    n_jobs = c.alloc["job_id"].n_unique() if "job_id" in c.alloc.columns else c.alloc.height
    period = (
        f"{_ts_text(c.period[0])} to {_ts_text(c.period[1])} ({_hours(c.period_s)} h)"
        if c.period
        else "period unknown"
    )
    sub = (
        f"{c.devices.height:,} devices, {c.alloc.height:,} allocations of {n_jobs:,} jobs; {period}"
    )
    body = f'<div class="cards">{"".join(cards)}</div>{_figure(chart)}'
    return _section("headline", "Headline", body, sub)


def _others(bars: list[Bar], n: int, label: str) -> list[Bar]:
    """The first ``n`` bars, then one summing the rest."""
    if len(bars) <= n + 1:
        return bars
    rest = bars[n:]
    values = [sum(b.values[i] for b in rest) for i in range(len(rest[0].values))]
    return [*bars[:n], Bar(f"others ({len(rest):,} {label})", values, muted=True)]


def _label_chart(c: _Ctx, key: str) -> Chart:
    total = c.totals["total_kgco2e"]
    g = (
        c.alloc.with_columns(pl.col(key).cast(pl.String).fill_null("(none)"))
        .group_by(key)
        .agg(
            pl.len().alias("n"),
            pl.col("operational_kgco2e").sum(),
            pl.col("embodied_kgco2e").sum(),
            pl.col("total_kgco2e").sum(),
            pl.col("energy_kwh").sum(),
        )
        .sort(["total_kgco2e", key], descending=[True, False])
    )
    bars = [
        Bar(
            str(r[key]),
            [r["operational_kgco2e"], r["embodied_kgco2e"]],
            note=f"{fmt(r['total_kgco2e'])} kg, {_pct(r['total_kgco2e'], total)}",
        )
        for r in g.iter_rows(named=True)
    ]
    bars = _others(bars, TOP_CATEGORIES, "values")
    for b in bars:
        if b.label.startswith("others ("):
            s = sum(b.values)
            b.note = f"{fmt(s)} kg, {_pct(s, total)}"
    u = c.unalloc
    idle = _sum(u, "total_kgco2e")
    bars.append(
        Bar(
            "unallocated",
            [_sum(u, "operational_kgco2e"), _sum(u, "embodied_kgco2e")],
            note=f"{fmt(idle)} kg, {_pct(idle, total)}",
            muted=True,
        )
    )
    return Chart(
        title=f"Footprint by {key}",
        series=[("operational (location-based)", OPERATIONAL), ("embodied", EMBODIED)],
        bars=bars,
        axis="kgCO2e (operational + embodied)",
        unit="kgCO2e",
        caption=f"Carbon of the allocations per {key} value, largest first, and the idle "
        "capacity no job used (unallocated).",
    )


def _labels_section(c: _Ctx) -> str:
    figures = [_figure(_label_chart(c, k), f"chart-by-{k}") for k in c.labels]
    if not figures:
        body = (
            '<p class="note">The allocations carry no label column (such as '
            "<code>phase</code> or <code>team</code>); allocated and unallocated "
            "capacity only.</p>"
        )
        u, a = c.unalloc, c.alloc
        chart = Chart(
            title="Allocated and unallocated capacity",
            series=[("operational (location-based)", OPERATIONAL), ("embodied", EMBODIED)],
            bars=[
                Bar("allocated", [_sum(a, "operational_kgco2e"), _sum(a, "embodied_kgco2e")]),
                Bar(
                    "unallocated",
                    [_sum(u, "operational_kgco2e"), _sum(u, "embodied_kgco2e")],
                    muted=True,
                ),
            ],
            axis="kgCO2e",
            unit="kgCO2e",
        )
        figures = [body + _figure(chart)]
    return _section(
        "chart-labels",
        "Footprint by " + (" and by ".join(c.labels) if c.labels else "allocation"),
        "".join(figures),
        "Stacked bars: operational (location-based) and embodied carbon.",
    )


def _market_section(c: _Ctx) -> str:
    series = [("location-based", OPERATIONAL), ("market-based", MARKET)]
    t = c.totals

    def bar(label: str, loc: float, mkt: float, muted: bool = False) -> Bar:
        diff = f"{(mkt - loc) / loc * 100:+.0f}%" if loc > 0 else ""
        return Bar(label, [loc, mkt], note=f"{fmt(loc)} / {fmt(mkt)} kg {diff}", muted=muted)

    bars = [bar("fleet", t["operational_kgco2e"], t["operational_market_kgco2e"])]
    if c.grid is not None and c.grid.height:
        per_region = (
            c.grid.group_by("region")
            .agg(pl.col("operational_kgco2e").sum(), pl.col("operational_market_kgco2e").sum())
            .sort("operational_kgco2e", descending=True)
        )
        region_bars = [
            bar(f"region {r['region']}", r["operational_kgco2e"], r["operational_market_kgco2e"])
            for r in per_region.iter_rows(named=True)
        ]
        bars += _others(region_bars, TOP_CATEGORIES, "regions")
    charts = [
        Chart(
            title="Operational carbon: location-based vs market-based",
            series=series,
            bars=bars,
            stacked=False,
            axis="operational kgCO2e",
            unit="kgCO2e",
            caption="Location-based: the grid's average intensity. Market-based: the "
            "residual mix on the part of the energy not covered by carbon-free supply "
            "(cfe). Bar notes: location / market kgCO2e and how much the market figure differs.",
        )
    ]
    if c.labels:
        key = c.labels[0]
        g = (
            c.alloc.with_columns(pl.col(key).cast(pl.String).fill_null("(none)"))
            .group_by(key)
            .agg(pl.col("operational_kgco2e").sum(), pl.col("operational_market_kgco2e").sum())
            .sort(["operational_kgco2e", key], descending=[True, False])
        )
        lbars = [
            bar(str(r[key]), r["operational_kgco2e"], r["operational_market_kgco2e"])
            for r in g.iter_rows(named=True)
        ]
        lbars = _others(lbars, TOP_CATEGORIES, "values")
        lbars.append(
            bar(
                "unallocated",
                _sum(c.unalloc, "operational_kgco2e"),
                _sum(c.unalloc, "operational_market_kgco2e"),
                muted=True,
            )
        )
        for b in lbars:
            if b.label.startswith("others ("):
                b.note = f"{fmt(b.values[0])} / {fmt(b.values[1])} kg"
        charts.append(
            Chart(
                title=f"Location-based vs market-based by {key}",
                series=series,
                bars=lbars,
                stacked=False,
                axis="operational kgCO2e",
                unit="kgCO2e",
            )
        )
    return _section(
        "chart-market",
        "Location-based vs market-based operational carbon",
        "".join(_figure(ch) for ch in charts),
    )


# ------------------------------------------------------ grid time series

_STEPS_S = (
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    2 * 86400,
    7 * 86400,
    14 * 86400,
    30 * 86400,
    91 * 86400,
    365 * 86400,
)


def _nice_step(seconds: float) -> int:
    return next((s for s in _STEPS_S if s >= seconds), _STEPS_S[-1])


@dataclass
class Binned:
    """The grid table binned on one time axis: per region, per bin."""

    edges: np.ndarray[Any, np.dtype[np.int64]]  # ns, len = bins + 1
    regions: list[str]
    energy_kwh: np.ndarray[Any, np.dtype[np.float64]]  # (regions, bins)
    operational_kg: np.ndarray[Any, np.dtype[np.float64]]
    intensity: np.ndarray[Any, np.dtype[np.float64]]  # time-weighted g/kWh, NaN = no data
    bin_hours: np.ndarray[Any, np.dtype[np.float64]]  # covered hours per bin


def bin_grid(grid: pl.DataFrame, max_bins: int = MAX_BINS) -> Binned:
    """Spread each (region, interval) row over fixed bins in proportion to the
    time they share; bins are at least the typical interval long, so hourly
    intensity stays hourly when it fits in ``max_bins`` columns."""
    g = grid.sort("region", "start")
    s = g["start"].dt.epoch("ns").to_numpy().astype(np.int64)
    e = g["end"].dt.epoch("ns").to_numpy().astype(np.int64)
    t0, t1 = int(s.min()), int(e.max())
    typical = float(np.median(e - s)) / 1e9
    step_s = _nice_step(max(typical, (t1 - t0) / 1e9 / max_bins, 1.0))
    w = step_s * 1_000_000_000
    base = (t0 // w) * w
    nb = max(1, -(-(t1 - base) // w))
    edges = base + w * np.arange(nb + 1, dtype=np.int64)
    b0 = (s - base) // w
    b1 = (np.maximum(e, s + 1) - 1 - base) // w
    counts = (b1 - b0 + 1).astype(np.int64)
    row = np.repeat(np.arange(len(s)), counts)
    offsets = np.repeat(np.cumsum(counts) - counts, counts)
    b = b0[row] + (np.arange(len(row)) - offsets)
    lo = np.maximum(s[row], edges[b])
    hi = np.minimum(e[row], edges[b + 1])
    overlap = np.maximum(hi - lo, 0).astype(np.float64)
    length = np.maximum(e - s, 1).astype(np.float64)[row]
    frac = overlap / length
    regions = g["region"].cast(pl.String).fill_null("(none)").to_list()
    names = sorted(set(regions))
    rix = np.array([names.index(r) for r in regions], dtype=np.int64)[row]
    shape = (len(names), nb)
    energy = np.zeros(shape)
    op = np.zeros(shape)
    g_time = np.zeros(shape)
    t_time = np.zeros(shape)
    np.add.at(energy, (rix, b), g["energy_kwh"].to_numpy()[row] * frac)
    np.add.at(op, (rix, b), g["operational_kgco2e"].to_numpy()[row] * frac)
    np.add.at(g_time, (rix, b), g["gco2e_per_kwh"].to_numpy()[row] * overlap)
    np.add.at(t_time, (rix, b), overlap)
    with np.errstate(invalid="ignore", divide="ignore"):
        intensity = np.where(t_time > 0, g_time / t_time, np.nan)
    covered = np.minimum(edges[1:], t1) - np.maximum(edges[:-1], t0)
    hours = np.maximum(covered, 0).astype(np.float64) / 3.6e12
    return Binned(edges, names, energy, op, intensity, hours)


def _time_ticks(t0: int, t1: int) -> tuple[list[int], str]:
    span = (t1 - t0) / 1e9
    step = _nice_step(span / 7)
    w = step * 1_000_000_000
    first = -(-t0 // w) * w
    ticks = list(range(first, t1 + 1, w))
    fmt_ = "%Y-%m-%d" if step >= 86400 else "%m-%d %H:%M" if span > 86400 else "%H:%M"
    if step < 60:
        fmt_ = "%H:%M:%S"
    return ticks, fmt_


def _grid_svg(binned: Binned, width: int = 960) -> str:
    regions = binned.regions
    colors = {r: PALETTE[i % len(PALETTE)] for i, r in enumerate(regions)}
    edges = binned.edges
    t0, t1 = int(edges[0]), int(edges[-1])
    x0, x1 = 70.0, width - 20.0
    panel_h, gap = 130.0, 44.0
    top = 40.0

    def x_of(t: float) -> float:
        return x0 + (t - t0) / (t1 - t0) * (x1 - x0)

    with np.errstate(invalid="ignore", divide="ignore"):
        hours = np.where(binned.bin_hours > 0, binned.bin_hours, np.nan)
        power_kw = np.nan_to_num(binned.energy_kwh / hours)
        carbon_h = np.nan_to_num(binned.operational_kg / hours)
    panels: list[tuple[str, np.ndarray[Any, np.dtype[np.float64]], bool]] = [
        ("Fleet IT power, kW (average per interval)", power_kw, True),
        ("Grid carbon intensity, gCO2e/kWh (location-based)", binned.intensity, False),
        ("Operational carbon, kgCO2e per hour (location-based)", carbon_h, True),
    ]
    height = top + len(panels) * (panel_h + gap) + 10
    parts = [
        f'<svg viewBox="0 0 {width} {height:.0f}" role="img" '
        'aria-label="Fleet power and carbon against grid intensity">',
        "<title>Fleet power and carbon per interval against grid intensity</title>",
        _legend([(f"region {r}", colors[r]) for r in regions], x0, 16),
    ]
    xs = [x_of(float(t)) for t in edges]
    ticks, tfmt = _time_ticks(t0, t1)
    for k, (title, values, stacked) in enumerate(panels):
        py = top + k * (panel_h + gap) + 16
        finite = values[np.isfinite(values)]
        hi = float((values.sum(axis=0) if stacked else finite).max()) if finite.size else 0.0
        yt = nice_ticks(hi, 4)
        ymax = yt[-1]

        def y_of(v: float, py: float = py, ymax: float = ymax) -> float:
            return py + panel_h - v / ymax * panel_h

        parts.append(
            f'<text x="{x0}" y="{py - 6:.1f}" font-size="12" font-weight="600">{_e(title)}</text>'
        )
        for v in yt:
            y = y_of(v)
            parts.append(
                f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#e3e6ea"/>'
                f'<text x="{x0 - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
                f"{_e(tick_text(v, yt))}</text>"
            )
        base = np.zeros(values.shape[1])
        for i, r in enumerate(regions):
            row = values[i]
            if stacked:
                top_v = base + row
                upper = " ".join(
                    f"{xs[j]:.1f},{y_of(top_v[j]):.1f} {xs[j + 1]:.1f},{y_of(top_v[j]):.1f}"
                    for j in range(len(row))
                )
                lower = " ".join(
                    f"{xs[j + 1]:.1f},{y_of(base[j]):.1f} {xs[j]:.1f},{y_of(base[j]):.1f}"
                    for j in reversed(range(len(row)))
                )
                parts.append(
                    f'<polygon points="{upper} {lower}" fill="{colors[r]}" fill-opacity="0.8">'
                    f"<title>{_e(f'region {r}')}</title></polygon>"
                )
                base = top_v
            else:
                d = []
                pen = False
                for j, v in enumerate(row):
                    if not math.isfinite(v):
                        pen = False
                        continue
                    y = y_of(float(v))
                    d.append(f"{'L' if pen else 'M'}{xs[j]:.1f},{y:.1f}L{xs[j + 1]:.1f},{y:.1f}")
                    pen = True
                if d:
                    parts.append(
                        f'<path d="{"".join(d)}" fill="none" stroke="{colors[r]}" '
                        f'stroke-width="1.6"><title>{_e(f"region {r}")}</title></path>'
                    )
        axis_y = py + panel_h
        parts.append(
            f'<line x1="{x0}" y1="{axis_y:.1f}" x2="{x1}" y2="{axis_y:.1f}" stroke="#8a939c"/>'
        )
        for t in ticks:
            x = x_of(t)
            label = (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=t // 1000)).strftime(tfmt)
            anchor = "end" if x > x1 - 40 else "start" if x < x0 + 40 else "middle"
            parts.append(
                f'<line x1="{x:.1f}" y1="{axis_y:.1f}" x2="{x:.1f}" y2="{axis_y + 4:.1f}" '
                f'stroke="#8a939c"/><text x="{x:.1f}" y="{axis_y + 16:.1f}" font-size="11" '
                f'text-anchor="{anchor}">{_e(label)}</text>'
            )
    parts.append(
        f'<text x="{(x0 + x1) / 2:.1f}" y="{height - 4:.0f}" font-size="12" '
        'text-anchor="middle">time (UTC)</text></svg>'
    )
    return "".join(parts)


def _range(lo: float | None, hi: float | None) -> str:
    def g(x: float | None) -> str:
        return fmt(x) if x is None or abs(x) < 10 else f"{x:,.0f}"

    return g(lo) if lo == hi else f"{g(lo)}{DASH}{g(hi)}"


def _grid_section(c: _Ctx) -> str:
    title = "Fleet power and carbon against grid intensity"
    if c.grid is None or c.grid.height == 0:
        note = (
            '<p class="note">Not available: this ledger has no <code>grid</code> table '
            "(written by an older carbonledger, or no device booked any grid interval).</p>"
        )
        return _section("chart-grid", title, note)
    binned = bin_grid(c.grid)
    step_s = int((binned.edges[1] - binned.edges[0]) // 1_000_000_000)
    step = (
        f"{step_s // 3600} h"
        if step_s % 3600 == 0
        else f"{step_s // 60} min"
        if step_s % 60 == 0
        else f"{step_s} s"
    )
    per_region = (
        c.grid.group_by("region")
        .agg(
            pl.col("energy_kwh").sum(),
            pl.col("facility_energy_kwh").sum(),
            pl.col("operational_kgco2e").sum(),
            pl.col("operational_market_kgco2e").sum(),
            (pl.col("cfe") * pl.col("facility_energy_kwh")).sum().alias("cfe_kwh"),
            pl.col("gco2e_per_kwh").min().alias("gmin"),
            pl.col("gco2e_per_kwh").max().alias("gmax"),
        )
        .sort("energy_kwh", descending=True)
    )
    rows = []
    for r in per_region.iter_rows(named=True):
        fac = r["facility_energy_kwh"]
        rows.append(
            [
                str(r["region"]),
                fmt(r["energy_kwh"]),
                fmt(r["operational_kgco2e"] * 1000 / fac) if fac > 0 else DASH,
                _range(r["gmin"], r["gmax"]),
                _pct(r["cfe_kwh"], fac),
                fmt(r["operational_kgco2e"]),
                fmt(r["operational_market_kgco2e"]),
            ]
        )
    table = _table(
        [
            "region",
            "IT energy kWh",
            "energy-weighted gCO2e/kWh",
            "interval range gCO2e/kWh",
            "CFE share",
            "location kgCO2e",
            "market kgCO2e",
        ],
        rows,
        {1, 2, 3, 4, 5, 6},
    )
    sub = (
        f"Per region, binned to {step} (the grid's own intervals where they fit). "
        "Power is IT energy / hours; carbon per hour is facility energy (x PUE) x "
        "intensity, so the same power costs less carbon in a region's clean hours."
    )
    return _section("chart-grid", title, f"<figure>{_grid_svg(binned)}</figure>{table}", sub)


# ----------------------------------------------------------------- top jobs


def _job_totals(a: pl.DataFrame, name: str) -> pl.DataFrame:
    """Per job: its rows, longest and summed time and metric sums (the cheap
    aggregates; ``_job_details`` adds the rest for the jobs shown)."""
    return a.group_by(name).agg(
        pl.len().alias("rows"),
        pl.col("duration_s").max().alias("hours_s"),
        pl.col("duration_s").sum().alias("dev_s"),
        *[
            pl.col(c).sum()
            for c in ("energy_kwh", "operational_kgco2e", "embodied_kgco2e", "total_kgco2e")
        ],
    )


def _job_details(a: pl.DataFrame, name: str, jobs: pl.DataFrame, labels: list[str]) -> pl.DataFrame:
    """``jobs`` with each job's devices and first labels, read from its rows."""
    rows = a.filter(pl.col(name).is_in(jobs[name].implode()))
    details = rows.group_by(name).agg(
        pl.col("device_id").cast(pl.String).n_unique().alias("n_dev"),
        pl.col("device_id").cast(pl.String).first().alias("device"),
        *[pl.col(k).cast(pl.String).first() for k in labels],
    )
    return jobs.join(details, on=name, how="left", maintain_order="left")


def _top_jobs_section(c: _Ctx) -> str:
    a = c.alloc
    total = c.totals["total_kgco2e"]
    if a.height == 0:
        return _section("chart-top-jobs", "Top jobs", '<p class="note">No allocations.</p>')
    labels = c.labels
    if "job_id" in a.columns:
        name = "job_id"
        a = a.with_columns(pl.col(name).cast(pl.String))
    else:
        name = "job"
        a = a.with_row_index(name).with_columns(pl.col(name).cast(pl.String))
    jobs = _job_totals(a, name)
    top, rest = _top_rows(jobs, TOP_JOBS, ["total_kgco2e", name], [True, False])
    top = _job_details(a, name, top, labels)

    def lab(r: dict[str, Any]) -> str:
        bits = [str(r[k]) for k in labels if r[k] is not None]
        return f"{r[name]} ({', '.join(bits)})" if bits else str(r[name])

    bars = [
        Bar(
            lab(r),
            [r["operational_kgco2e"], r["embodied_kgco2e"]],
            note=f"{fmt(r['total_kgco2e'])} kg",
        )
        for r in top.iter_rows(named=True)
    ]
    chart = Chart(
        title=f"Top {top.height} jobs by total carbon",
        series=[("operational (location-based)", OPERATIONAL), ("embodied", EMBODIED)],
        bars=bars,
        axis="kgCO2e",
        unit="kgCO2e",
    )
    rows = []
    for r in top.iter_rows(named=True):
        device = r["device"] if r["n_dev"] == 1 else f"{r['n_dev']} devices"
        rows.append(
            [
                str(r[name]),
                *[str(r[k]) if r[k] is not None else "" for k in labels],
                str(device),
                _hours(r["hours_s"]),
                _hours(r["dev_s"]),
                fmt(r["energy_kwh"]),
                fmt(r["operational_kgco2e"]),
                fmt(r["embodied_kgco2e"]),
                fmt(r["total_kgco2e"]),
                _pct(r["total_kgco2e"], total),
            ]
        )
    if rest.height:
        rows.append(
            [
                f"others ({rest.height:,} jobs)",
                *["" for _ in labels],
                "",
                "",
                _hours(_sum(rest, "dev_s")),
                fmt(_sum(rest, "energy_kwh")),
                fmt(_sum(rest, "operational_kgco2e")),
                fmt(_sum(rest, "embodied_kgco2e")),
                fmt(_sum(rest, "total_kgco2e")),
                _pct(_sum(rest, "total_kgco2e"), total),
            ]
        )
    nl = len(labels)
    table = _table(
        [
            "job",
            *labels,
            "device",
            "hours",
            "device-hours",
            "kWh",
            "operational kgCO2e",
            "embodied kgCO2e",
            "total kgCO2e",
            "of fleet",
        ],
        rows,
        set(range(nl + 2, nl + 10)),
    )
    share = _pct(_sum(top, "total_kgco2e"), total)
    sub = (
        f"Allocations summed per job (a job on several devices is one job); the top "
        f"{top.height} of {jobs.height:,} jobs hold {share} of the fleet's carbon. Hours: "
        "the job's time inside the period."
    )
    return _section("chart-top-jobs", "Top jobs", _figure(chart) + table, sub)


# ------------------------------------------------------------ utilization


def _joined(c: _Ctx) -> pl.DataFrame:
    u = c.unalloc.select(
        pl.col("device_id").cast(pl.String),
        pl.col("duration_s").alias("idle_s"),
        pl.col("total_kgco2e").alias("idle_kg"),
        pl.col("energy_kwh").alias("idle_kwh"),
    )
    d = c.devices.with_columns(pl.col("device_id").cast(pl.String))
    if d["device_id"].equals(u["device_id"]):
        # One row per device in the same order (SPEC 9): side by side.
        return d.hstack(u.drop("device_id"))
    return d.join(u, on="device_id", how="left", maintain_order="left")


def _utilization_section(c: _Ctx) -> str:
    t = c.totals
    u, a = c.unalloc, c.alloc
    n_dev = c.devices.height
    fleet_s = n_dev * c.period_s
    idle_s = _sum(u, "duration_s")
    shares = []
    for label, col in (
        ("IT energy", "energy_kwh"),
        ("operational carbon", "operational_kgco2e"),
        ("embodied carbon", "embodied_kgco2e"),
        ("total carbon", "total_kgco2e"),
    ):
        whole = t[col]
        idle = _sum(u, col)
        frac = idle / whole if whole > 0 else 0.0
        shares.append(Bar(label, [1 - frac, frac], note=f"{100 * frac:.1f}% unallocated"))
    if fleet_s > 0:
        frac = idle_s / fleet_s
        shares.append(Bar("device time", [1 - frac, frac], note=f"{100 * frac:.1f}% unallocated"))
    fleet = Chart(
        title="Fleet: allocated vs unallocated share",
        series=[("allocated to jobs", ALLOCATED), ("unallocated (idle capacity)", UNALLOCATED)],
        bars=shares,
        axis="share of the fleet total, %",
        percent=True,
        caption="Unallocated: the capacity no job held (idle and unscheduled time, and the "
        "part of a device that shares below 1 leave free). Its carbon is real and is "
        "booked here, not spread over the jobs.",
    )
    j = _joined(c).with_columns((pl.col("total_kgco2e") - pl.col("idle_kg")).alias("alloc_kg"))
    top, rest = _top_rows(j, TOP_DEVICES, ["idle_kg", "device_id"], [True, False])
    bars = [
        Bar(
            str(r["device_id"]),
            [r["alloc_kg"] or 0.0, r["idle_kg"] or 0.0],
            note=f"{_pct(r['idle_kg'] or 0.0, r['total_kgco2e'])} idle, "
            f"{_hours(r['idle_s'] or 0.0)} h unallocated",
        )
        for r in top.iter_rows(named=True)
    ]
    if rest.height:
        bars.append(
            Bar(
                f"others ({rest.height:,} devices)",
                [_sum(rest, "alloc_kg"), _sum(rest, "idle_kg")],
                note=f"{_pct(_sum(rest, 'idle_kg'), _sum(rest, 'total_kgco2e'))} idle",
                muted=True,
            )
        )
    per_device = Chart(
        title="Devices with the most unallocated carbon "
        f"(top {min(TOP_DEVICES, j.height)} of {j.height:,})",
        series=[("allocated to jobs", ALLOCATED), ("unallocated (idle capacity)", UNALLOCATED)],
        bars=bars,
        axis="kgCO2e per device",
        unit="kgCO2e",
    )
    figures = [_figure(fleet), _figure(per_device)]
    if fleet_s > 0 and n_dev > 1:
        idle_frac = (j["idle_s"].fill_null(0.0) / c.period_s).clip(0.0, 1.0).to_numpy()
        counts, _ = np.histogram(idle_frac, bins=10, range=(0.0, 1.0))
        hist = Chart(
            title="Devices by unallocated share of their time",
            series=[("devices", UNALLOCATED)],
            bars=[
                Bar(f"{10 * i}{DASH}{10 * (i + 1)}% unallocated", [float(n)], note=f"{n:,}")
                for i, n in enumerate(counts.tolist())
            ],
            axis="number of devices",
        )
        figures.append(_figure(hist))
    sub = (
        f"{fmt(_sum(a, 'total_kgco2e'))} kgCO2e allocated to jobs, "
        f"{fmt(_sum(u, 'total_kgco2e'))} kgCO2e unallocated; "
        f"{_hours(idle_s)} unallocated device-hours"
        + (f" of {_hours(fleet_s)}" if fleet_s > 0 else "")
        + "."
    )
    return _section(
        "chart-utilization", "Utilization and unallocated overhead", "".join(figures), sub
    )


# ---------------------------------------------------------------- coverage


def _coverage_section(c: _Ctx) -> str:
    d = c.devices.with_columns(pl.col("device_id").cast(pl.String))
    period_s = c.period_s
    counts = {
        "samples": int(_sum(d, "samples")),
        "invalid": int(_sum(d, "invalid_samples")),
        "duplicates": int(_sum(d, "duplicate_samples")),
        "gaps": int(_sum(d, "gaps")),
        "counter wraps": int(_sum(d, "counter_wraps")),
        "counter resets": int(_sum(d, "counter_resets")),
    }
    uncovered = _sum(d, "uncovered_s")
    fleet_s = d.height * period_s
    cards = [_card(k, f"{v:,}") for k, v in counts.items()]
    cards.append(
        _card(
            "uncovered",
            _pct(uncovered, fleet_s) if fleet_s > 0 else f"{_hours(uncovered)} h",
            f"{_hours(uncovered)} device-hours without measurements",
        )
    )
    top, rest = _top_rows(
        d,
        TOP_DEVICES,
        ["uncovered_s", "invalid_samples", "gaps", "device_id"],
        [True, True, True, False],
    )
    figures = []
    if period_s > 0:
        bars = [
            Bar(
                str(r["device_id"]),
                [
                    max(0.0, 1 - r["uncovered_s"] / period_s),
                    min(1.0, r["uncovered_s"] / period_s),
                ],
                note=f"{_hours(r['uncovered_s'])} h uncovered, {r['gaps']:,} gaps",
            )
            for r in top.iter_rows(named=True)
        ]
        if rest.height:
            frac = _sum(rest, "uncovered_s") / (rest.height * period_s)
            bars.append(
                Bar(
                    f"others ({rest.height:,} devices)",
                    [1 - frac, frac],
                    note=f"{100 * frac:.1f}% uncovered",
                    muted=True,
                )
            )
        figures.append(
            _figure(
                Chart(
                    title="Devices with the least measured time "
                    f"(top {top.height} of {d.height:,})",
                    series=[("measured (covered)", COVERED), ("uncovered", UNCOVERED)],
                    bars=bars,
                    axis="share of the accounting period, %",
                    percent=True,
                    caption="Uncovered: before the first sample, after the last, and in gaps "
                    "longer than max_gap (or counter resets). No energy is guessed there "
                    "unless gap_fill=idle.",
                )
            )
        )
    rows = [
        [
            str(r["device_id"]),
            f"{r['samples']:,}",
            f"{r['invalid_samples']:,}",
            f"{r['duplicate_samples']:,}",
            f"{r['gaps']:,}",
            f"{r['counter_wraps']:,}",
            f"{r['counter_resets']:,}",
            _hours(r["uncovered_s"]),
            _pct(r["uncovered_s"], period_s) if period_s > 0 else DASH,
        ]
        for r in top.iter_rows(named=True)
    ]
    table = _table(
        [
            "device",
            "samples",
            "invalid",
            "duplicates",
            "gaps",
            "wraps",
            "resets",
            "uncovered h",
            "of period",
        ],
        rows,
        set(range(1, 9)),
    )
    body = f'<div class="cards">{"".join(cards)}</div>{"".join(figures)}{table}'
    return _section(
        "chart-coverage",
        "Data coverage",
        body,
        "Telemetry quality per device: samples read, dropped and averaged, and time "
        "without measurements.",
    )


# ---------------------------------------------------------------- warnings


def _warnings_section(c: _Ctx) -> str:
    """Right under the headline, so a probably wrong ledger says so first."""
    title = "Warnings"
    if not c.warnings:
        body = (
            '<p class="note">None: no check found a result that is probably a mistake '
            "(devices or allocations without measurements, sample and allocation times "
            "that do not meet, timestamps without a zone; docs/methodology.md, "
            "Warnings).</p>"
        )
        return _section("warnings", title, body)
    rows = [
        [w.code, f"{w.count:,}", w.message, ", ".join(w.examples) if w.examples else DASH]
        for w in c.warnings
    ]
    table = _table(["check", "count", "what was found", "examples"], rows, {1})
    sub = (
        f"{len(c.warnings)} result(s) that are almost certainly a mistake; "
        "rerun with --strict to fail on them. See docs/methodology.md, Warnings."
    )
    return (
        f'<section id="warnings" class="warn"><h2>{_e(title)}</h2><p class="sub">{_e(sub)}</p>'
        f"{table}</section>"
    )


# -------------------------------------------------------------- provenance


def _provenance_section(c: _Ctx) -> str:
    m = c.manifest
    facts = [
        ["carbonledger", str(m.get("carbonledger", ""))],
        ["started", str(m.get("started_at", ""))],
        ["finished", str(m.get("finished_at", ""))],
        ["seconds", fmt(float(m["seconds"])) if "seconds" in m else ""],
    ]
    for k, v in sorted(m.get("options", {}).items()):
        if k in ("power", "devices", "sites", "intensity", "allocations", "out"):
            continue
        shown = "first to last valid sample" if k == "period" and not v else _text(v)
        facts.append([f"option {k}", shown])
    files = []
    for table, entries in m.get("inputs", {}).items():
        for i, f in enumerate(entries):
            if i == 10:
                files.append([table, f"and {len(entries) - 10:,} more files", "", ""])
                break
            files.append(
                [
                    table,
                    str(f.get("path", "")),
                    f"{f.get('bytes', 0):,}",
                    str(f.get("sha256", ""))[:16],
                ]
            )
    body = _table(["", ""], facts, set())
    if files:
        body += "<h3>Inputs</h3>" + _table(
            ["table", "file", "bytes", "sha256 (first 16)"], files, {2}
        )
    return _section("provenance", "Provenance", body, "From manifest.json.")


def _text(v: object) -> str:
    if isinstance(v, list | tuple):
        return " ".join(str(x) for x in v)
    return "" if v is None else str(v)


# -------------------------------------------------------------------- page


def render_html(report: Report, manifest: dict[str, Any], by: list[str]) -> str:
    """The ledger as one self-contained HTML page (inline CSS and SVG, no
    network references): headline totals, footprint per label (``by``, plus
    ``phase``/``team`` when present), location- vs market-based carbon,
    fleet power and carbon against grid intensity (when the report has a
    ``grid`` table), top jobs, unallocated overhead and data coverage."""
    alloc = report.allocations
    devices = report.devices
    grid = report.grid if "grid" in report.tables else None
    ctx = _Ctx(
        manifest=manifest,
        labels=_labels(alloc, by),
        alloc=alloc,
        unalloc=report.unallocated,
        devices=devices,
        grid=grid,
        totals=report.totals(),
        period=_period(report, manifest, devices),
        warnings=report.warnings or warnings_from_manifest(manifest),
    )
    sections = [
        _headline(ctx),
        _warnings_section(ctx),
        _labels_section(ctx),
        _market_section(ctx),
        _grid_section(ctx),
        _top_jobs_section(ctx),
        _utilization_section(ctx),
        _coverage_section(ctx),
        _provenance_section(ctx),
    ]
    version = manifest.get("carbonledger", "")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Carbon ledger: {fmt(ctx.totals['total_kgco2e'])} kgCO2e</title>"
        f"<style>{CSS}</style></head><body><main>"
        "<h1>Carbon ledger</h1>"
        f'<p class="sub">Operational (energy x PUE x grid intensity) and embodied '
        f"(manufacturing, amortized) carbon of the fleet, attributed to jobs. "
        f"carbonledger {_e(version)}.</p>" + "\n".join(sections) + "</main></body></html>\n"
    )
