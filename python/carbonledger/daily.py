"""Incremental ledgers: one ledger partition per UTC day, and roll-ups.

``run_daily`` accounts each UTC day of an explicit period on its own and
writes it as ``OUT/day=YYYY-MM-DD/`` (the same files as a single run's
ledger). Each day reads only what its read window needs (SPEC 8, v1.1:
Parquet row groups outside ``[day start - max_gap, day end + max_gap]`` are
skipped unread), and re-running a day replaces that day's folder
atomically, touching no other. ``read_ledger`` rolls a partitioned ledger
(or a plain one) up into one ``Report`` over any range of days: by period
additivity (SPEC 8) the sum of the days equals a run over their union, to
rounding.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ._atomic import remove_stale, temp_path
from ._native import __version__
from ._time import to_ns, utc_datetime
from .accounting import account
from .diagnostics import warnings_from_manifest
from .exceptions import InputError
from .ledger import file_entry, write
from .report import METRIC_COLUMNS, Report

__all__ = ["DAY_FOLDER", "days_of", "read_ledger", "run_daily"]

# The execution-idle columns (when the samples carry utilization).
EXECUTION_IDLE_COLUMNS = ("busy_s", "execution_idle_s", "execution_idle_kwh")
DAY_NS = 86_400 * 1_000_000_000
#: A day partition's folder name: ``day=YYYY-MM-DD`` (Hive style).
DAY_FOLDER = re.compile(r"^day=(\d{4}-\d{2}-\d{2})$")
# The columns a roll-up sums (the rest of a row is the input it echoes).
_SUMMED = {
    "duration_s",
    "uncovered_s",
    *METRIC_COLUMNS,
    *EXECUTION_IDLE_COLUMNS,
    "samples",
    "invalid_samples",
    "duplicate_samples",
    "gaps",
    "counter_wraps",
    "counter_resets",
}


def days_of(start_ns: int, end_ns: int) -> list[tuple[dt.date, int, int]]:
    """The UTC days that meet ``[start, end)``, each with its part of it."""
    out = []
    day = start_ns // DAY_NS
    while day * DAY_NS < end_ns:
        lo, hi = max(start_ns, day * DAY_NS), min(end_ns, (day + 1) * DAY_NS)
        out.append((dt.date(1970, 1, 1) + dt.timedelta(days=day), lo, hi))
        day += 1
    return out


def _power_entries(power: Any) -> list[dict[str, Any]]:
    # The power files are listed with their sizes, not hashed: hashing would
    # read the whole archive for each day, which the read window avoids.
    from ._io import expand_paths

    items = [power] if isinstance(power, str | os.PathLike) else list(power)
    paths: list[str] = []
    for item in items:
        paths += expand_paths(item, "power")
    return [{"path": p, "bytes": os.path.getsize(p)} for p in paths]


def _replace_folder(
    report: Report, final: Path, by: Sequence[str], manifest: dict[str, Any]
) -> None:
    """Write the day's ledger beside ``final`` and swap it in: a reader sees
    the old day or the new one, never a mix, and no other day is touched."""
    staged = temp_path(final, folder=False)
    write(report, staged, by, manifest)
    if final.exists():
        old = temp_path(final, folder=False)
        os.replace(final, old)
        os.replace(staged, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staged, final)


def run_daily(
    out: str | Path,
    *,
    period: tuple[Any, Any],
    power: Any,
    devices: str,
    sites: str,
    intensity: str,
    allocations: str | None = None,
    by: Sequence[str] = (),
    quiet: bool = False,
    **account_options: Any,
) -> list[Path]:
    """Account each UTC day of ``period`` on its own and write it as
    ``out/day=YYYY-MM-DD/`` (allocations, unallocated, devices, grid,
    summary, manifest.json, report.html), replacing that day's folder if
    it exists. Returns the day folders written. ``account_options`` go to
    ``account`` (``max_gap``, ``columns``, ``strict``, ...)."""
    if period is None or len(period) != 2:
        raise InputError(
            "argument 'period': partitioning by day needs an explicit period (start, end) "
            "(--period START END)"
        )
    start, end = to_ns(period[0], "period"), to_ns(period[1], "period")
    if end <= start:
        raise InputError(
            f"argument 'period': end {period[1]!r} <= start {period[0]!r}; expected end > start"
        )
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    remove_stale(root)
    small = {"devices": devices, "sites": sites, "intensity": intensity}
    if allocations is not None:
        small["allocations"] = allocations
    inputs = {name: [file_entry(p) for p in [v]] for name, v in small.items()}
    inputs["power"] = _power_entries(power)
    written = []
    for day, lo, hi in days_of(start, end):
        t0 = dt.datetime.now(dt.timezone.utc)
        report = account(
            power,
            devices,
            sites,
            intensity,
            allocations,
            period=(utc_datetime(lo), utc_datetime(hi)),
            **account_options,
        )
        manifest = {
            "carbonledger": __version__,
            "options": {
                **{k: str(v) for k, v in account_options.items()},
                "by": ",".join(by),
                "partition_by": "day",
            },
            "day": day.isoformat(),
            "inputs": inputs,
            "started_at": t0.isoformat(),
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "warnings": [w.to_dict() for w in report.warnings],
        }
        final = root / f"day={day.isoformat()}"
        _replace_folder(report, final, by, manifest)
        written.append(final)
        if not quiet:
            u = report.unread
            print(
                f"{final}: {report.allocations.height} allocations; read window left "
                f"{u.row_groups} row groups ({u.rows} rows, {u.bytes} bytes) unread",
                file=sys.stderr,
            )
    if not quiet and written:
        print(f"{len(written)} day partition(s) written to {root}")
    return written


def _day_folders(root: Path, first: dt.date | None, last: dt.date | None) -> list[Path]:
    found = []
    for p in sorted(root.iterdir()):
        m = DAY_FOLDER.match(p.name)
        if m is None or not p.is_dir():
            continue
        day = dt.date.fromisoformat(m.group(1))
        if (first is None or day >= first) and (last is None or day <= last):
            found.append(p)
    return found


def _read_one(folder: Path) -> tuple[dict[str, pa.Table], dict[str, Any]]:
    tables = {}
    for name in ("allocations", "unallocated", "devices"):
        path = folder / f"{name}.parquet"
        if not path.is_file():
            raise InputError(
                f"ledger {str(folder)!r}: missing {name}.parquet; expected a run's --out"
            )
        tables[name] = pq.read_table(path)
    grid = folder / "grid.parquet"
    if grid.is_file():
        tables["grid"] = pq.read_table(grid)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    return tables, manifest


def _sum_rows(parts: list[pa.Table], name: str, folders: list[Path]) -> pa.Table:
    """Tables of one row per allocation (or device), in the same order each
    day: the echoed columns of the first, the sum of the summed ones, the
    earliest ``first_ts`` and the latest ``last_ts``."""
    first = parts[0]
    for p, f in zip(parts[1:], folders[1:], strict=True):
        if p.num_rows != first.num_rows or p.column_names != first.column_names:
            raise InputError(
                f"ledger {str(f)!r}: {name}.parquet has {p.num_rows} rows and columns "
                f"{p.column_names}, {str(folders[0])!r} {first.num_rows} and "
                f"{first.column_names}; expected the days of one ledger (the same inputs)"
            )
    columns = []
    for i, col in enumerate(first.column_names):
        if col in _SUMMED:
            acc = first.column(i)
            for p in parts[1:]:
                acc = pc.add(acc, p.column(i))
            columns.append(acc.cast(first.schema.field(i).type))
        elif col in ("first_ts", "last_ts"):
            # On the integers (no element-wise kernel for zoned timestamps);
            # a null (no valid sample that day) gives way to the other day.
            pick = pc.min_element_wise if col == "first_ts" else pc.max_element_wise
            acc = first.column(i).cast(pa.int64())
            for p in parts[1:]:
                acc = pick(acc, p.column(i).cast(pa.int64()), skip_nulls=True)
            columns.append(acc.cast(first.schema.field(i).type))
        else:
            columns.append(first.column(i))
    return pa.table(columns, schema=first.schema)


def read_ledger(
    folder: str | Path, first: dt.date | None = None, last: dt.date | None = None
) -> Report:
    """A ledger as a ``Report``: a single run's folder as it is, or a
    partitioned one (``day=YYYY-MM-DD/`` folders) rolled up over the days
    from ``first`` to ``last`` (both included; default all). Allocations,
    unallocated and devices are summed row by row (``first_ts`` the
    earliest, ``last_ts`` the latest; ``gaps`` counts an interval that
    crosses midnight on both days), grid rows are concatenated, warnings
    are those of every day, and the period runs from the first day's start
    to the last day's end."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(
            f"ledger {str(root)!r}: no such folder; expected a run's --out (a folder with "
            "allocations.parquet, or day=YYYY-MM-DD/ folders of them)"
        )
    if (root / "allocations.parquet").is_file():
        tables, manifest = _read_one(root)
        settled = manifest.get("period_ns")
        return Report(
            tables["allocations"],
            tables["unallocated"],
            tables["devices"],
            grid=tables.get("grid"),
            warnings=warnings_from_manifest(manifest) if manifest else (),
            period=(int(settled[0]), int(settled[1])) if isinstance(settled, list) else None,
        )
    folders = _day_folders(root, first, last)
    if not folders:
        span = f" between {first} and {last}" if first or last else ""
        raise InputError(
            f"ledger {str(root)!r}: no allocations.parquet and no day=YYYY-MM-DD folder{span}; "
            "expected the --out of 'carbonledger run' (with or without --partition-by day)"
        )
    days = [_read_one(f) for f in folders]
    tables = {
        name: _sum_rows([d[0][name] for d in days], name, folders)
        for name in ("allocations", "unallocated", "devices")
    }
    grids = [d[0]["grid"] for d in days if "grid" in d[0]]
    periods = [d[1].get("period_ns") for d in days]
    period = None
    if all(isinstance(p, list) for p in periods):
        period = (min(int(p[0]) for p in periods), max(int(p[1]) for p in periods))  # type: ignore[index]
    warnings = [w for d in days for w in (warnings_from_manifest(d[1]) if d[1] else [])]
    return Report(
        tables["allocations"],
        tables["unallocated"],
        tables["devices"],
        grid=pa.concat_tables(grids) if grids else None,
        warnings=warnings,
        period=period,
    )
