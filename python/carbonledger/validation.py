"""``carbonledger.validate``: check the inputs without reading a sample and
report every problem found, not just the first."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from . import _native
from ._io import POWER_COLUMNS, _is_pathlike, open_dataset, to_table
from ._time import to_ns
from .accounting import Overlap, _choice
from .catalog import fill_embodied
from .exceptions import CarbonLedgerError


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
    not checked, as no period could be known without reading samples)."""

    problems: list[Problem]
    more: int
    period: tuple[dt.datetime, dt.datetime] | None
    period_source: str | None

    @property
    def ok(self) -> bool:
        return not self.problems


def _ts_span(dataset: ds.FileSystemDataset) -> tuple[int, int] | None:
    """``[min, max]`` of ``ts`` over every row group's Parquet statistics;
    ``None`` unless every row group has them."""
    if not isinstance(dataset.format, ds.ParquetFileFormat) or "ts" not in dataset.schema.names:
        return None
    lows: list[int] = []
    highs: list[int] = []
    for frag in dataset.get_fragments():
        md = frag.metadata
        col = md.schema.to_arrow_schema().get_field_index("ts")
        for g in range(md.num_row_groups):
            stats = md.row_group(g).column(col).statistics
            if stats is None or not stats.has_min_max:
                return None
            lows.append(to_ns(stats.min, "power.ts"))
            highs.append(to_ns(stats.max, "power.ts"))
    if not lows or max(highs) <= min(lows):
        return None
    return min(lows), max(highs)


def _power_schema_and_span(power: Any) -> tuple[pa.Schema | None, tuple[int, int] | None]:
    """The power table's schema and, for Parquet, the span of its ``ts``
    column from the row-group statistics (no sample is read)."""
    if power is None:
        return None, None
    if _is_pathlike(power):
        power = open_dataset(power, "power")
    if isinstance(power, ds.FileSystemDataset):
        return power.schema, _ts_span(power)
    if isinstance(power, ds.Dataset | pa.Table | pa.RecordBatch | pa.RecordBatchReader):
        return power.schema, None
    if hasattr(power, "__arrow_c_schema__"):
        return pa.schema(power), None
    if hasattr(power, "collect_schema"):  # polars LazyFrame / DataFrame
        names = [c for c in POWER_COLUMNS if c in power.collect_schema().names()]
        return pa.table(power.select(names).head(0).collect()).schema, None
    if hasattr(power, "__arrow_c_stream__"):  # the schema only, no batch pulled
        return pa.RecordBatchReader.from_stream(power).schema, None
    return None, None


def _utc(ns: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=ns // 1000)


def validate(
    devices: Any,
    sites: Any,
    intensity: Any,
    allocations: Any = None,
    *,
    power: Any = None,
    period: tuple[Any, Any] | None = None,
    overlap: Overlap = "error",
) -> Validation:
    """Check inputs as ``account`` would, without reading a sample, and
    collect every problem: schemas, ids and references, values, and, over
    ``period`` (or, for Parquet power files, the span of their ``ts``
    statistics), intensity coverage and allocation overlaps. ``power`` is
    only looked at for its schema (and Parquet statistics)."""
    _choice("overlap", overlap, ("error", "normalize"))
    problems: list[Problem] = []

    def load(obj: Any, name: str) -> pa.Table | None:
        try:
            return to_table(obj, name)
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

    schema: pa.Schema | None = None
    span: tuple[int, int] | None = None
    try:
        schema, span = _power_schema_and_span(power)
    except CarbonLedgerError as e:
        problems.append(Problem(type(e).__name__, str(e)))

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
            power_schema=schema,
            period=period_ns,
            overlap=overlap,
        )
        problems += [Problem(kind, message) for kind, message in found]
    shown = (_utc(period_ns[0]), _utc(period_ns[1])) if period_ns else None
    return Validation(problems, more, shown, source)
