"""What every ingest adapter shares: the canonical output schemas, a batch
builder that keeps memory bounded, zone-aware timestamp parsing, and the
day-partitioned Parquet writer behind ``carbonledger ingest``.

An adapter turns one source tool's files into carbonledger's canonical
tables (SPEC 2):

- power adapters yield ``pa.RecordBatch`` es of ``POWER_W_SCHEMA`` (``device_id,
  ts, power_w, utilization``) or ``ENERGY_J_SCHEMA`` (``device_id, ts, energy_j,
  utilization``), and are exposed as a ``pa.RecordBatchReader``: an Arrow
  producer that ``carbonledger.account(power=...)`` takes as it is, and that is
  read batch by batch (never the whole dump in memory);
- scheduler adapters return an ``allocations`` table (``job_id, device_id,
  start, end, share`` and label columns).

Every row of one device comes out in time order (the order the engine needs
without ``sort=True``); an adapter that cannot promise it says so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import itertools
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow as pa
import pyarrow.parquet as pq

from .._atomic import remove_stale, temp_path
from ..exceptions import InputError, SchemaError

__all__ = [
    "ALLOCATIONS_SCHEMA",
    "BATCH_ROWS",
    "ENERGY_J_SCHEMA",
    "POWER_W_SCHEMA",
    "Format",
    "PowerBatches",
    "WriteSummary",
    "open_text",
    "parse_zone",
    "power_reader",
    "write_allocations",
    "write_power",
]

TS = pa.timestamp("ns", tz="UTC")
POWER_W_SCHEMA = pa.schema(
    [
        ("device_id", pa.string()),
        ("ts", TS),
        ("power_w", pa.float64()),
        ("utilization", pa.float64()),
    ]
)
ENERGY_J_SCHEMA = pa.schema(
    [
        ("device_id", pa.string()),
        ("ts", TS),
        ("energy_j", pa.float64()),
        ("utilization", pa.float64()),
    ]
)
ALLOCATIONS_SCHEMA = pa.schema(
    [
        ("job_id", pa.string()),
        ("device_id", pa.string()),
        ("start", TS),
        ("end", TS),
        ("share", pa.float64()),
    ]
)
# Rows per output batch: large enough that per-batch costs vanish, small
# enough (a few MB) that an adapter's memory does not grow with the dump.
BATCH_ROWS = 1 << 16

ValueColumn = Literal["power_w", "energy_j"]


def schema_for(value: ValueColumn) -> pa.Schema:
    return POWER_W_SCHEMA if value == "power_w" else ENERGY_J_SCHEMA


class PowerBatches:
    """Collects canonical power rows and hands them out as record batches of
    at most ``BATCH_ROWS`` rows: ``add`` returns a full batch when there is
    one, ``flush`` the rest. Utilization is a fraction in [0, 1] or ``None``."""

    def __init__(self, value: ValueColumn, batch_rows: int = BATCH_ROWS) -> None:
        self.schema = schema_for(value)
        self.batch_rows = batch_rows
        self._ids: list[str] = []
        self._ts: list[int] = []
        self._values: list[float | None] = []
        self._util: list[float | None] = []

    def __len__(self) -> int:
        return len(self._ids)

    def add(
        self, device_id: str, ts_ns: int, value: float | None, utilization: float | None = None
    ) -> pa.RecordBatch | None:
        self._ids.append(device_id)
        self._ts.append(ts_ns)
        self._values.append(value)
        self._util.append(utilization)
        if len(self._ids) >= self.batch_rows:
            return self.flush()
        return None

    def flush(self) -> pa.RecordBatch | None:
        if not self._ids:
            return None
        batch = pa.RecordBatch.from_arrays(
            [
                pa.array(self._ids, pa.string()),
                pa.array(self._ts, pa.int64()).cast(TS),
                pa.array(self._values, pa.float64()),
                pa.array(self._util, pa.float64()),
            ],
            schema=self.schema,
        )
        self._ids, self._ts, self._values, self._util = [], [], [], []
        return batch


def power_reader(value: ValueColumn, batches: Iterable[pa.RecordBatch]) -> pa.RecordBatchReader:
    """A lazy Arrow stream of canonical power batches: nothing is read
    before the consumer asks for the first batch."""
    return pa.RecordBatchReader.from_batches(schema_for(value), iter(batches))


def open_text(path: str | os.PathLike[str]) -> IO[str]:
    """A text file, read as UTF-8 (gzip-compressed when it ends in ``.gz``);
    undecodable bytes become U+FFFD rather than stopping a 10 GB read."""
    p = os.fspath(path)
    if p.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(p, "rb"), encoding="utf-8", errors="replace")
    return open(p, encoding="utf-8", errors="replace", newline="")


def parse_zone(tz: str | None, *, source: str, what: str) -> dt.tzinfo:
    """The zone of a source's wall-clock timestamps (``--tz``). Required:
    guessing the machine's zone would shift every sample by hours."""
    if tz is None:
        raise SchemaError(
            f"{source}: {what} has no time zone; pass tz='Area/City' (--tz Area/City, e.g. "
            "--tz Europe/Berlin, or --tz UTC) to say which zone the logging host's clock was in"
        )
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise InputError(
            f"{source}: tz={tz!r} is not a time zone name; expected an IANA name such as "
            "'Europe/Berlin', 'America/New_York' or 'UTC'"
        ) from e


def to_ns(t: dt.datetime) -> int:
    """An aware datetime as integer nanoseconds since the epoch (exact for
    microseconds; ``timestamp()`` would round through a float)."""
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


@dataclass(frozen=True)
class Format:
    """One ``carbonledger ingest FORMAT``: which table it makes, its own
    options, and how to open its inputs from parsed arguments."""

    name: str
    table: Literal["power", "allocations"]
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    open: Callable[[argparse.Namespace], pa.RecordBatchReader | pa.Table]
    sample: str = ""  # a few lines of the input, shown in --help and the docs


@dataclass
class WriteSummary:
    """What ``write_power`` / ``write_allocations`` wrote."""

    path: Path
    rows: int = 0
    files: list[Path] = field(default_factory=list)
    devices: int = 0
    first_ts: int | None = None
    last_ts: int | None = None


_DAY_NS = 86_400 * 1_000_000_000
# Rows buffered per open day before they are written as one row group.
_ROW_GROUP_ROWS = 1 << 20


def _day_name(day: int) -> str:
    date = dt.date(1970, 1, 1) + dt.timedelta(days=day)
    return f"day={date.isoformat()}"


def _swap_into_place(tmp: Path, final: Path) -> None:
    """Replace ``final`` (a folder, when there is one) by ``tmp``: the old
    one is renamed aside first, so a reader sees the old or the new, never a
    mix, and a crash leaves a temporary that the next run removes."""
    if final.exists():
        old = temp_path(final, folder=False)
        os.replace(final, old)
        os.replace(tmp, final)
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    else:
        os.replace(tmp, final)


def write_power(reader: pa.RecordBatchReader, out: str | os.PathLike[str]) -> WriteSummary:
    """Write a canonical power stream as Parquet partitioned by UTC day:
    ``OUT/power/day=YYYY-MM-DD/part-0.parquet``. Memory stays bounded (one
    buffered row group per day being written); the ``power`` folder appears
    whole or not at all and replaces an earlier one. Rows keep their order
    within each day, so a device's samples stay in time order across the
    partitions read in name order (``OUT/power/*/*.parquet``)."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale(out_dir)
    final = out_dir / "power"
    tmp = temp_path(final, folder=True)
    summary = WriteSummary(path=final)
    writers: dict[int, pq.ParquetWriter] = {}
    pending: dict[int, list[pa.RecordBatch]] = {}
    pending_rows: dict[int, int] = {}
    devices: set[str] = set()
    schema = reader.schema
    try:
        for batch in reader:
            if batch.num_rows == 0:
                continue
            ts = batch.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False)
            days = ts // _DAY_NS
            devices.update(batch.column("device_id").unique().to_pylist())
            lo, hi = int(ts.min()), int(ts.max())
            summary.first_ts = lo if summary.first_ts is None else min(summary.first_ts, lo)
            summary.last_ts = hi if summary.last_ts is None else max(summary.last_ts, hi)
            summary.rows += batch.num_rows
            # Runs of one day (a dump is mostly in time order): slice, no copy.
            cuts = [0, *((days[1:] != days[:-1]).nonzero()[0] + 1).tolist(), batch.num_rows]
            for a, b in itertools.pairwise(cuts):
                day = int(days[a])
                part = batch.slice(a, b - a)
                pending.setdefault(day, []).append(part)
                pending_rows[day] = pending_rows.get(day, 0) + part.num_rows
                if pending_rows[day] >= _ROW_GROUP_ROWS:
                    _write_day(day, tmp, schema, writers, pending, pending_rows)
        for day in list(pending):
            _write_day(day, tmp, schema, writers, pending, pending_rows)
        for w in writers.values():
            w.close()
        writers.clear()
        summary.devices = len(devices)
        summary.files = sorted(final / p.relative_to(tmp) for p in tmp.rglob("*.parquet"))
        _swap_into_place(tmp, final)
    except BaseException:
        for w in writers.values():
            try:
                w.close()
            except Exception:  # the first error is the one to report
                pass
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def _write_day(
    day: int,
    tmp: Path,
    schema: pa.Schema,
    writers: dict[int, pq.ParquetWriter],
    pending: dict[int, list[pa.RecordBatch]],
    pending_rows: dict[int, int],
) -> None:
    parts = pending.pop(day, [])
    pending_rows.pop(day, None)
    if not parts:
        return
    w = writers.get(day)
    if w is None:
        folder = tmp / _day_name(day)
        folder.mkdir()
        w = pq.ParquetWriter(folder / "part-0.parquet", schema, compression="zstd")
        writers[day] = w
    w.write_table(pa.Table.from_batches(parts, schema=schema))


def write_allocations(table: pa.Table, out: str | os.PathLike[str]) -> WriteSummary:
    """Write an allocations table as ``OUT/allocations.parquet`` (whole or
    not at all, replacing an earlier one)."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale(out_dir)
    final = out_dir / "allocations.parquet"
    tmp = temp_path(final, folder=False)
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    summary = WriteSummary(path=final, rows=table.num_rows, files=[final])
    if table.num_rows:
        summary.devices = len(table.column("device_id").unique())
    return summary


def batches_of(
    rows: Iterator[tuple[str, int, float | None, float | None]], value: ValueColumn
) -> Iterator[pa.RecordBatch]:
    """Canonical batches from ``(device_id, ts_ns, value, utilization)`` rows."""
    builder = PowerBatches(value)
    for device_id, ts_ns, v, u in rows:
        full = builder.add(device_id, ts_ns, v, u)
        if full is not None:
            yield full
    last = builder.flush()
    if last is not None:
        yield last
