"""The result of an accounting run: Arrow tables, shown as polars."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from typing import NamedTuple

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from . import _native
from ._time import to_polars, utc_datetime
from .diagnostics import LedgerWarning

#: The metric columns, in output order (SPEC 9), as the engine writes them.
METRIC_COLUMNS: tuple[str, ...] = tuple(_native.METRIC_COLUMNS)

TABLES = ("allocations", "unallocated", "devices", "grid")


def write_parquet(table: pa.Table, path: str | os.PathLike[str]) -> None:
    """Write a result table as Parquet, dictionary-encoding only the columns
    whose values repeat (ids, labels, times, counts): the float columns are
    nearly all distinct, and building their dictionaries only to give them
    up makes writing a million rows 3 times slower."""
    repeating = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
    pq.write_table(table, path, use_dictionary=repeating)


class Unread(NamedTuple):
    """What a run's read window (SPEC 8, v1.1: ``[start - max_gap, end +
    max_gap]`` of an explicit period) left unread of its Parquet sources:
    row groups whose ``ts`` statistics lie wholly outside it."""

    row_groups: int
    rows: int
    #: Compressed bytes of their column chunks (every column).
    bytes: int


class Report:
    """Allocations, unallocated capacity and per-device totals (SPEC section 9),
    and the fleet by grid region and intensity interval (``grid``).

    The tables are pyarrow Tables underneath (``report.tables``, or
    ``report.to_arrow(name)``), so pyarrow and duckdb read them without polars;
    the properties show them as polars DataFrames without copying.

    ``warnings`` lists the results that are almost certainly a mistake
    (``carbonledger.diagnostics``): set by ``account``, read back from a
    ledger's manifest.json, else empty.
    """

    #: What the read window of an explicit period left unread (Parquet row
    #: groups whose ``ts`` statistics lie wholly outside it): set by
    #: ``account``, zero otherwise.
    unread: Unread

    def __init__(
        self,
        allocations: pa.Table,
        unallocated: pa.Table,
        devices: pa.Table,
        grid: pa.Table | None = None,
        warnings: Sequence[LedgerWarning] = (),
        period: tuple[int, int] | None = None,
    ) -> None:
        self.warnings: list[LedgerWarning] = list(warnings)
        self.unread = Unread(0, 0, 0)
        # The settled period in ns since the epoch (`account` sets it; a
        # ledger's manifest.json keeps it).
        self.period_ns: tuple[int, int] | None = period
        self.tables: dict[str, pa.Table] = {
            "allocations": allocations,
            "unallocated": unallocated,
            "devices": devices,
        }
        # Ledgers written before the grid table existed have none.
        if grid is not None:
            self.tables["grid"] = grid
        # Each table as polars, converted once (strings are copied into
        # polars' own layout: 0.5 s a million rows) and again only if
        # `tables` gets a new table under that name.
        self._frames: dict[str, tuple[pa.Table, pl.DataFrame]] = {}

    @property
    def period(self) -> tuple[dt.datetime, dt.datetime] | None:
        """The accounting period ``[start, end)`` in UTC: the one asked for,
        else the first to the last valid sample of any device (microseconds;
        ``period_ns`` has it to the nanosecond)."""
        if self.period_ns is None:
            return None
        return (utc_datetime(self.period_ns[0]), utc_datetime(self.period_ns[1]))

    def to_arrow(self, name: str = "allocations") -> pa.Table:
        """One result table as a pyarrow Table (an ``__arrow_c_stream__`` producer)."""
        if name not in self.tables:
            raise KeyError(f"no table {name!r}; expected one of {TABLES}")
        return self.tables[name]

    def _df(self, name: str) -> pl.DataFrame:
        table = self.tables[name]
        cached = self._frames.get(name)
        if cached is None or cached[0] is not table:
            # Input columns carried through may have a zone polars cannot
            # parse (a fixed offset such as "+05:30"): shown in UTC.
            df = to_polars(table)
            cached = self._frames[name] = (table, df)
        # A shallow copy (the columns are shared): what a caller changes in
        # place stays out of the cache.
        return cached[1].clone()

    @property
    def allocations(self) -> pl.DataFrame:
        """One row per input allocation, in input order."""
        return self._df("allocations")

    @property
    def unallocated(self) -> pl.DataFrame:
        """One row per device: its idle and unscheduled capacity."""
        return self._df("unallocated")

    @property
    def devices(self) -> pl.DataFrame:
        """One row per device: data quality counts and whole-device totals."""
        return self._df("devices")

    @property
    def grid(self) -> pl.DataFrame:
        """One row per (region, grid-intensity interval) a device booked inside
        the period, by region then start: the interval (clipped to the
        period), its intensity, the device-seconds in it and the metric
        columns. The rows add up to the fleet totals; hourly intensity gives
        the fleet's hourly energy and carbon per region."""
        if "grid" not in self.tables:
            raise KeyError("this report has no grid table (a ledger from an older version)")
        return self._df("grid")

    def totals(self) -> dict[str, float]:
        """Fleet totals of the metric columns (sum over devices)."""
        d = self.devices
        return {c: float(d[c].sum()) for c in METRIC_COLUMNS}

    def summary(self, by: Sequence[str] | str = ("phase",)) -> pl.DataFrame:
        """Metric columns summed per group of allocations, plus one row
        (``bucket == "unallocated"``, group columns null) for the capacity no
        allocation used. The rows add up to the fleet totals."""
        keys = [by] if isinstance(by, str) else list(by)
        alloc = self.allocations
        missing = [k for k in keys if k not in alloc.columns]
        if missing:
            from .exceptions import SchemaError

            raise SchemaError(
                f"summary: allocations have no column {missing[0]!r}; "
                f"available label columns: {alloc.columns}"
            )
        metrics = [pl.col(c).sum() for c in ("duration_s", *METRIC_COLUMNS)]
        jobs = pl.len().alias("allocations")
        if keys:
            grouped = (
                alloc.group_by(keys, maintain_order=True)
                .agg(jobs, *metrics)
                .sort(keys, nulls_last=True)
            )
        else:
            grouped = alloc.select(jobs, *metrics)
        grouped = grouped.with_columns(pl.lit("allocated").alias("bucket"))
        un = self.unallocated.select(
            pl.lit(0, dtype=pl.UInt32).alias("allocations"),
            *[pl.col(c).sum() for c in ("duration_s", *METRIC_COLUMNS)],
        ).with_columns(
            [pl.lit(None, dtype=alloc.schema[k]).alias(k) for k in keys]
            + [pl.lit("unallocated").alias("bucket")]
        )
        order = ["bucket", *keys, "allocations", "duration_s", *METRIC_COLUMNS]
        return pl.concat([grouped.select(order), un.select(order)], how="vertical_relaxed")

    def __repr__(self) -> str:
        t = self.totals()
        return (
            f"<carbonledger.Report: {self.tables['allocations'].num_rows} allocations, "
            f"{self.tables['devices'].num_rows} devices, "
            f"{t['energy_kwh']:.6g} kWh, {t['total_kgco2e']:.6g} kgCO2e"
            + (f", {len(self.warnings)} warning(s)>" if self.warnings else ">")
        )
