"""A ledger folder: account inputs and write the result, all or nothing.

What ``carbonledger run`` and ``carbonledger demo`` share: ``run`` accounts
the inputs and writes ``allocations``, ``unallocated``, ``devices``,
``grid`` and ``summary`` Parquet tables, ``manifest.json`` and
``report.html`` into a new folder; ``write`` writes a ``Report`` already in
hand; ``guarded`` turns errors into the command line's exit codes.

    from carbonledger import ledger
    ledger.run("ledger/", power="dumps/", devices="devices.parquet",
               sites="sites.csv", intensity="intensity.parquet",
               allocations="jobs.parquet", by=["phase", "team"])
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from ._atomic import remove_stale, temp_path
from ._io import expand_paths
from ._native import __version__
from .accounting import account
from .diagnostics import format_warnings
from .exceptions import InputError
from .html_report import render_html
from .progress import ProgressBar
from .report import METRIC_COLUMNS, Report, write_parquet

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2

__all__ = [
    "EXIT_INPUT",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "file_entry",
    "guarded",
    "run",
    "summary_text",
    "write",
]


def file_entry(path: str) -> dict[str, Any]:
    """A manifest entry for an input file: its path, size and SHA-256."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"path": path, "bytes": os.path.getsize(path), "sha256": h.hexdigest()}


def write(report: Report, out: Path, by: Sequence[str], manifest: dict[str, Any]) -> None:
    """Write a report's ledger into the new folder ``out``.

    Everything goes into a temporary sibling folder first, which is then
    renamed into place: an interrupted or failed run leaves no partial
    output. The folder's name identifies this process, so that if it is
    killed outright (SIGKILL), the next run can tell the folder is stale
    and remove it.
    """
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(parent / out.name, folder=True)
    try:
        for name, table in report.tables.items():
            write_parquet(table, tmp / f"{name}.parquet")
        keys = [k for k in by if k in report.allocations.columns]
        report.summary(by=keys).write_parquet(tmp / "summary.parquet")
        if report.period is not None and report.period_ns is not None:
            manifest["period"] = [t.isoformat() for t in report.period]
            manifest["period_ns"] = list(report.period_ns)
        manifest["rows"] = {name: t.num_rows for name, t in report.tables.items()}
        manifest["totals"] = report.totals()
        # The read window's pruning (explicit period): what was not read.
        manifest["unread"] = report.unread._asdict()
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        (tmp / "report.html").write_text(render_html(report, manifest, list(by)), encoding="utf-8")
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def execution_idle_lines(report: Report) -> list[str]:
    """When the samples carried utilization: the jobs' execution-idle time
    (of their time with known utilization) and energy."""
    a = report.allocations
    if "execution_idle_kwh" not in a.columns:
        return []
    idle_s = float(a["execution_idle_s"].sum())
    known_s = idle_s + float(a["busy_s"].sum())
    idle_kwh = float(a["execution_idle_kwh"].sum())
    energy = float(a["energy_kwh"].sum())
    time_pct = f"{100 * idle_s / known_s:.1f}%" if known_s > 0 else "n/a"
    energy_pct = f"{100 * idle_kwh / energy:.1f}%" if energy > 0 else "n/a"
    return [
        f"{'execution-idle time (jobs)':28s} {time_pct:>16s} of allocated time with "
        "known utilization",
        f"{'execution-idle energy (jobs)':28s} {idle_kwh:16.6f} kWh ({energy_pct} of the "
        "jobs' energy)",
    ]


def summary_text(report: Report, by: Sequence[str]) -> str:
    """Totals, the operational / embodied and idle-capacity shares, the split
    by each label in ``by``, and data-quality counts."""
    t = report.totals()
    lines = [f"{c:28s} {t[c]:16.6f}" for c in METRIC_COLUMNS]
    total = t["total_kgco2e"]
    if total > 0:
        unalloc = float(report.unallocated["total_kgco2e"].sum())
        lines += [
            f"{'operational share':28s} {100 * t['operational_kgco2e'] / total:15.1f}%",
            f"{'embodied share':28s} {100 * t['embodied_kgco2e'] / total:15.1f}%",
            f"{'unallocated (idle) share':28s} {100 * unalloc / total:15.1f}%",
        ]
    lines += execution_idle_lines(report)
    cols = ["energy_kwh", "operational_kgco2e", "embodied_kgco2e", "total_kgco2e"]
    with pl.Config(
        tbl_rows=50,
        tbl_width_chars=160,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
    ):
        for key in by:
            if key in report.allocations.columns:
                lines += [
                    "",
                    f"by {key}:",
                    str(report.summary(by=[key]).select("bucket", key, *cols)),
                ]
    d = report.devices
    lines += [
        "",
        f"data quality: {int(d['samples'].sum())} samples, "
        f"{int(d['invalid_samples'].sum())} invalid dropped, "
        f"{int(d['duplicate_samples'].sum())} duplicates, {int(d['gaps'].sum())} gaps, "
        f"{int(d['counter_wraps'].sum())} counter wraps, "
        f"{int(d['counter_resets'].sum())} counter resets, "
        f"{float(d['uncovered_s'].sum()):.0f} device-seconds uncovered",
    ]
    return "\n".join(lines)


def _flat_paths(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    return [p for item in v for p in _flat_paths(item)]


def _account_defaults() -> dict[str, Any]:
    """``account``'s options and their defaults (what a run records as its
    options when the caller gives no explicit list)."""
    return {
        name: p.default
        for name, p in inspect.signature(account).parameters.items()
        if p.kind is p.KEYWORD_ONLY and name != "progress"
    }


def run(
    out: str | Path,
    *,
    power: Any,
    devices: str,
    sites: str,
    intensity: str,
    allocations: str | None = None,
    by: Sequence[str] = (),
    quiet: bool = False,
    options: dict[str, Any] | None = None,
    **account_options: Any,
) -> Report:
    """Account the input files and write their ledger into the new folder ``out``.

    ``power`` is one path / glob / folder, or a list of sources (each a
    path or a list of paths), as in ``account``; the other tables are paths.
    ``account_options`` go to ``account`` (``period``, ``max_gap``,
    ``strict``, ``columns``, ...). ``options`` is what the manifest records
    as the run's options (default: every option of ``account``, as given
    or defaulted, and ``by``). Unless
    ``quiet``, a progress line is shown on a terminal and the summary is
    printed; warnings are printed to stderr in any case. Raises
    ``InputError`` when ``out`` exists.
    """
    out = Path(out)
    # What earlier runs killed before their rename left in the folder.
    remove_stale(out.resolve().parent)
    if out.exists():
        raise InputError(f"argument '--out': {str(out)!r} exists; expected a new folder")
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    inputs: dict[str, Any] = {
        "power": power,
        "devices": devices,
        "sites": sites,
        "intensity": intensity,
        "allocations": allocations,
    }
    # A progress line on a terminal only: never in logs, pipes or quiet runs.
    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() and not quiet else None
    finished = False
    try:
        report = account(**inputs, progress=bar, **account_options)
        finished = True
    finally:
        if bar is not None:
            bar.close(keep=finished)
    files = {
        name: [file_entry(f) for f in expand_paths(_flat_paths(v), name)]
        for name, v in inputs.items()
        if v is not None
    }
    manifest = {
        "carbonledger": __version__,
        "options": options
        if options is not None
        else {**_account_defaults(), **account_options, "by": ",".join(by)},
        "inputs": files,
        "started_at": started.isoformat(),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "seconds": time.perf_counter() - t0,
        "warnings": [w.to_dict() for w in report.warnings],
    }
    write(report, out, by, manifest)
    if report.warnings:  # even when quiet: they say the ledger is probably wrong
        print(format_warnings(report.warnings), file=sys.stderr)
    if not quiet:
        print(summary_text(report, by))
        print(f"ledger written to {out}")
    return report


def guarded(command: Callable[[], int], *, debug: bool = False) -> int:
    """Run a command-line action; map its errors to exit codes with a
    one-line message on stderr (tracebacks only with ``debug``)."""
    try:
        return command()
    except InputError as e:
        if debug:
            raise
        print(f"carbonledger: error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("carbonledger: interrupted; nothing written", file=sys.stderr)
        return 130
    except Exception as e:
        if debug:
            raise
        print(f"carbonledger: internal error ({type(e).__name__}): {e}", file=sys.stderr)
        return EXIT_INTERNAL
