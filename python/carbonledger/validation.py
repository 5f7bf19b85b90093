"""``carbonledger.validate``: check the inputs without reading a sample and
report every problem found, not just the first."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from . import _native
from ._io import (
    POWER_COLUMNS,
    Columns,
    _is_pathlike,
    applicable,
    check_source_files,
    open_dataset,
    power_sources,
    table_columns,
    to_table,
)
from ._time import to_ns, utc_datetime
from .accounting import Attribution, Overlap
from .catalog import fill_embodied
from .diagnostics import MAX_EXAMPLES, LedgerWarning
from .exceptions import CarbonLedgerError
from .intensity import implausible_hours


@dataclass(frozen=True)
class Problem:
    """One problem: the exception class a run would raise, and its message."""

    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass(frozen=True)
class Validation:
    """Every problem found (``problems``; ``more`` beyond the first 1000)
    and the period coverage and over-allocation were checked over, with
    where it came from (``"argument"``, ``"power statistics"`` or ``None``:
    not checked, as no period could be known without reading samples).
    ``warnings`` are inputs that are valid but almost certainly wrong
    (``implausible_intensity``: grid-intensity hours far below their
    region's usual floor); they do not make ``ok`` false."""

    problems: list[Problem]
    more: int
    period: tuple[dt.datetime, dt.datetime] | None
    period_source: str | None
    warnings: list[LedgerWarning] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems


# Nanoseconds per unit of a Parquet TIMESTAMP logical type.
_NS_PER_UNIT = {"milliseconds": 1_000_000, "microseconds": 1_000, "nanoseconds": 1}


def _ts_leaf(schema: pq.ParquetSchema, ts_name: str = "ts") -> int | None:
    """Index of the top-level ``ts`` leaf column (named ``ts_name`` in the
    file) in a Parquet schema."""
    for i in range(len(schema)):
        if schema.column(i).path == ts_name:
            return i
    return None


def _ts_span(dataset: ds.FileSystemDataset, ts_name: str = "ts") -> tuple[int, int] | None:
    """``[min, max]`` of ``ts``, in epoch nanoseconds, over every row group's
    Parquet statistics; ``None`` unless every non-empty row group has them.

    The raw integer statistics are scaled by the unit of the column's
    Parquet logical type, never converted through ``datetime`` (which holds
    microseconds only and refuses nanosecond values that are not whole
    microseconds). The unit is the one the file stores, not the Arrow type
    it reads back as (a ``timestamp[s]`` column is stored in milliseconds).
    An INT64 timestamp counts units since the epoch in UTC whatever its
    time zone (instant) or none (wall clock, which carbonledger reads as
    UTC), so no zone conversion is needed. Legacy INT96 timestamps have no
    defined sort order, so their statistics (which writers omit and readers
    ignore) cannot bound the span: ``None``.
    """
    if not isinstance(dataset.format, ds.ParquetFileFormat) or ts_name not in dataset.schema.names:
        return None
    lows: list[int] = []
    highs: list[int] = []
    for frag in dataset.get_fragments():
        md = frag.metadata
        col = _ts_leaf(md.schema, ts_name)
        if col is None:
            return None
        column = md.schema.column(col)
        if column.physical_type != "INT64" or column.logical_type.type != "TIMESTAMP":
            return None  # INT96, or not a timestamp: the schema check reports the latter
        unit = json.loads(column.logical_type.to_json()).get("timeUnit")
        scale = _NS_PER_UNIT.get(unit)
        if scale is None:
            return None
        for g in range(md.num_row_groups):
            group = md.row_group(g)
            if group.num_rows == 0:
                continue
            stats = group.column(col).statistics
            if stats is None or not stats.has_min_max:
                if stats is not None and stats.null_count == group.num_rows:
                    continue  # every ts null: no sample in this row group
                return None
            low, high = stats.min_raw, stats.max_raw
            if not isinstance(low, int) or not isinstance(high, int):
                return None
            lows.append(low * scale)
            highs.append(high * scale)
    if not lows or max(highs) <= min(lows):
        return None
    if min(lows) < -(2**63) or max(highs) >= 2**63:
        return None  # beyond i64 ns: no period to check over (reading reports the times)
    return min(lows), max(highs)


def _renamed(schema: pa.Schema, mapping: Mapping[str, str]) -> pa.Schema:
    use = applicable(mapping, schema.names)
    back = {u: c for c, u in use.items()}
    return pa.schema([f.with_name(back.get(f.name, f.name)) for f in schema])


def _source_schema_and_span(
    power: Any, mapping: Mapping[str, str]
) -> tuple[pa.Schema | None, tuple[int, int] | None]:
    """One opened power source's schema (carbonledger's column names) and,
    for Parquet, the span of its ``ts`` column from the row-group
    statistics (no sample is read)."""
    if isinstance(power, ds.FileSystemDataset):
        return _renamed(power.schema, mapping), _ts_span(power, mapping.get("ts", "ts"))
    if isinstance(power, ds.Dataset | pa.Table | pa.RecordBatch | pa.RecordBatchReader):
        return _renamed(power.schema, mapping), None
    if hasattr(power, "__arrow_c_schema__"):
        return _renamed(pa.schema(power), mapping), None
    if hasattr(power, "collect_schema"):  # polars LazyFrame / DataFrame
        names = power.collect_schema().names()
        keep = [n for n in names if n in POWER_COLUMNS or n in mapping.values()]
        return _renamed(pa.table(power.select(keep).head(0).collect()).schema, mapping), None
    if hasattr(power, "__arrow_c_stream__"):  # the schema only, no batch pulled
        return _renamed(pa.RecordBatchReader.from_stream(power).schema, mapping), None
    return None, None


def _power_schemas_and_span(
    power: Any, columns: Columns | None, problems: list[Problem]
) -> tuple[list[pa.Schema], tuple[int, int] | None]:
    """Every power source's schema, and the span of ``ts`` over all of them
    when every source is Parquet files with statistics."""
    if power is None:
        return [], None
    mapping = table_columns(columns, "power")
    schemas: list[pa.Schema] = []
    spans: list[tuple[int, int] | None] = []
    try:
        sources = power_sources(power)
    except CarbonLedgerError as e:
        problems.append(Problem(type(e).__name__, str(e)))
        return [], None
    for i, src in enumerate(sources):
        try:
            if _is_pathlike(src):
                src = open_dataset(src, "power", mapping)
            if isinstance(src, ds.FileSystemDataset):
                check_source_files(src, mapping, f"source {i}")
            schema, span = _source_schema_and_span(src, mapping)
        except CarbonLedgerError as e:
            problems.append(Problem(type(e).__name__, str(e)))
            spans.append(None)
            continue
        if schema is not None:
            schemas.append(schema)
        spans.append(span)
    known = [sp for sp in spans if sp is not None]
    if not known or len(known) != len(spans):
        return schemas, None
    return schemas, (min(a for a, _ in known), max(b for _, b in known))


def validate(
    devices: Any,
    sites: Any,
    intensity: Any,
    allocations: Any = None,
    *,
    power: Any = None,
    period: tuple[Any, Any] | None = None,
    overlap: Overlap = "error",
    columns: Columns | None = None,
    attribution: Attribution = "share",
) -> Validation:
    """Check inputs as ``account`` would, without reading a sample, and
    collect every problem: schemas, ids and references, values, and, over
    ``period`` (or, for Parquet power files, the span of their ``ts``
    statistics), intensity coverage and allocation overlaps. ``power`` is
    only looked at for its schema (and Parquet statistics); it may be a
    list of sources, as in ``account``. ``columns`` maps column names as in
    ``account``."""
    problems: list[Problem] = []

    def load(obj: Any, name: str) -> pa.Table | None:
        try:
            return to_table(obj, name, columns)
        except CarbonLedgerError as e:
            problems.append(Problem(type(e).__name__, str(e)))
            return None

    devices_t = load(devices, "devices")
    if devices_t is not None:
        try:
            devices_t = fill_embodied(devices_t)
        except CarbonLedgerError as e:
            problems.append(Problem(type(e).__name__, str(e)))
    sites_t = load(sites, "sites")
    intensity_t = load(intensity, "intensity")
    alloc_t = None if allocations is None else load(allocations, "allocations")

    schemas, span = _power_schemas_and_span(power, columns, problems)

    period_ns: tuple[int, int] | None = None
    source: str | None = None
    if period is not None:
        period_ns = (to_ns(period[0], "period"), to_ns(period[1], "period"))
        source = "argument"
    elif span is not None:
        # [first, last) of the samples' timestamps, as the default period.
        period_ns, source = span, "power statistics"

    more = 0
    if devices_t is not None and sites_t is not None and intensity_t is not None:
        found, more = _native.validate(
            devices_t,
            sites_t,
            intensity_t,
            alloc_t,
            power_schemas=schemas,
            period=period_ns,
            overlap=overlap,
            attribution=attribution,
        )
        problems += [Problem(kind, message) for kind, message in found]
    shown = (utc_datetime(period_ns[0]), utc_datetime(period_ns[1])) if period_ns else None
    # Plausibility is judged on accepted inputs only: a table with problems
    # (times outside the era, bad strings) is reported by those, not guessed at.
    clean = intensity_t is not None and not problems and not more
    flagged = _implausible_intensity(intensity_t, sites_t, period_ns) if clean else []
    return Validation(problems, more, shown, source, flagged)


def _implausible_intensity(
    intensity: pa.Table, sites: pa.Table | None, period: tuple[int, int] | None
) -> list[LedgerWarning]:
    """One ``implausible_intensity`` warning per region with hours far below
    its usual floor (:func:`carbonledger.intensity.implausible_hours`),
    among the regions the sites use and the hours that meet the period (all
    of them when unknown)."""
    try:
        hits = implausible_hours(intensity)
    except CarbonLedgerError:
        return []  # a missing or mistyped column: the schema checks report it
    if sites is not None and "region" in sites.column_names:
        used = set(sites.column("region").cast(pa.string()).to_pylist())
        hits = hits.filter(
            pa.array([r in used for r in hits.column("region").to_pylist()], pa.bool_())
        )
    # Epoch nanoseconds: exact, whatever the precision of the table's times.
    rows = [
        {"region": g, "start": a, "end": b, "value": v, "floor": f}
        for g, a, b, v, f in zip(
            hits.column("region").to_pylist(),
            hits.column("start").cast(pa.int64()).to_pylist(),
            hits.column("end").cast(pa.int64()).to_pylist(),
            hits.column("gco2e_per_kwh").to_pylist(),
            hits.column("floor_gco2e_per_kwh").to_pylist(),
            strict=True,
        )
    ]
    if period is not None:
        rows = [r for r in rows if r["end"] > period[0] and r["start"] < period[1]]
    by_region: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_region.setdefault(r["region"], []).append(r)
    return [_implausible_warning(region, hours) for region, hours in by_region.items()]


def _implausible_warning(region: str, hours: list[dict[str, Any]]) -> LedgerWarning:
    # Consecutive hours as one run: "[2022-10-01 05:00, 09:00) UTC 44.8-46.9 g/kWh".
    runs: list[list[dict[str, Any]]] = []
    for h in hours:
        if runs and runs[-1][-1]["end"] == h["start"]:
            runs[-1].append(h)
        else:
            runs.append([h])
    texts = []
    for run in runs[:MAX_EXAMPLES]:
        a, b = utc_datetime(run[0]["start"]), utc_datetime(run[-1]["end"])
        end = b.strftime("%H:%M" if b.date() == a.date() else "%Y-%m-%d %H:%M")
        lo = f"{min(h['value'] for h in run):.1f}"
        hi = f"{max(h['value'] for h in run):.1f}"
        value = lo if lo == hi else f"{lo}-{hi}"
        texts.append(
            f"[{a:%Y-%m-%d %H:%M}, {end}) UTC at {value} g/kWh (usual floor {run[0]['floor']:.1f})"
        )
    more = f" and {len(runs) - MAX_EXAMPLES} more run(s)" if len(runs) > MAX_EXAMPLES else ""
    return LedgerWarning(
        "implausible_intensity",
        f"region {region!r}: {len(hours)} grid-intensity hour(s) below a quarter of the "
        f"region's usual floor (the 5th percentile of its hours within 7 days): "
        f"{'; '.join(texts)}{more}; such hours are usually partial reports or glitches "
        "of the source: check them, or replace them (e.g. from another dataset)",
        len(hours),
        tuple(f"{region} {utc_datetime(h['start']):%Y-%m-%dT%H:%M}Z" for h in hours[:MAX_EXAMPLES]),
    )
