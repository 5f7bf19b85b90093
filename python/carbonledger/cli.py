"""The ``carbonledger`` command line: turn a telemetry dump into a ledger.

    carbonledger run --power 'dumps/**/*.parquet' --devices devices.parquet \\
        --sites sites.csv --intensity intensity.parquet \\
        --allocations jobs.parquet --out ledger/

Exit codes: 0 ok, 2 bad input (a message, no traceback unless --debug),
1 internal error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from . import __version__, account
from ._atomic import remove_stale, temp_path
from ._io import expand_paths
from .diagnostics import format_warnings, warnings_from_manifest
from .exceptions import InputError
from .html_report import render_html
from .progress import ProgressBar
from .report import METRIC_COLUMNS, Report, write_parquet

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2


COLUMN_HELP = (
    "map a column name of your files to carbonledger's, e.g. --column ts=timestamp (every "
    "table with 'timestamp' and no 'ts') or --column allocations.start=begin; repeatable"
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="carbonledger",
        description="Exact carbon accounting for AI compute fleets: operational "
        "(energy x PUE x grid intensity) plus embodied carbon, attributed to jobs.",
    )
    p.add_argument("--version", action="version", version=f"carbonledger {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="account a telemetry dump and write the ledger to --out",
        description="Account power samples against devices, sites, grid intensity and job "
        "allocations; write allocations/unallocated/devices/grid/summary Parquet files, a "
        "manifest.json and a self-contained report.html (charts, no network references) "
        "into --out (all or nothing). On a terminal, a progress line on stderr shows the "
        "samples streamed (files, rows, rows/s, ETA).",
    )
    run.add_argument(
        "--power",
        required=True,
        nargs="+",
        action="append",
        metavar="PATH",
        help="power samples: Parquet/CSV files, folders or globs (device_id, ts, "
        "power_w or energy_j), one source per --power; repeat it for sources of "
        "another kind (--power gpu_power/ --power cpu_energy_counters/)",
    )
    run.add_argument(
        "--devices",
        required=True,
        metavar="FILE",
        help="hardware lifecycle table (device_id, site_id, embodied_kgco2e, "
        "installed_at, lifetime_years or retired_at)",
    )
    run.add_argument("--sites", required=True, metavar="FILE", help="site_id, region, pue")
    run.add_argument(
        "--intensity",
        required=True,
        metavar="FILE",
        help="grid intensity: region, start, [end], gco2e_per_kwh, [cfe, residual_gco2e_per_kwh]",
    )
    run.add_argument(
        "--allocations", metavar="FILE", help="jobs: job_id, device_id, start, end, [share], labels"
    )
    run.add_argument(
        "--period",
        nargs=2,
        metavar=("START", "END"),
        help="accounting period, ISO 8601 (naive = UTC); default: first to last valid sample",
    )
    run.add_argument("--interpolation", choices=("linear", "previous"), default="linear")
    run.add_argument(
        "--max-gap",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="longest interval between samples still interpolated (default 300)",
    )
    run.add_argument(
        "--gap-fill",
        choices=("none", "idle"),
        default="none",
        help="fill uncovered time with devices.idle_power_w",
    )
    run.add_argument("--on-invalid", choices=("drop", "raise"), default="drop")
    run.add_argument(
        "--max-power-w",
        type=float,
        default=1e6,
        metavar="WATTS",
        help="highest credible power of one device (default 1e6 W; devices.max_power_w "
        "overrides it per device): a sample above it is an error, a unit or encoding slip",
    )
    run.add_argument("--overlap", choices=("error", "normalize"), default="error")
    run.add_argument(
        "--sort",
        action="store_true",
        help="accept samples out of time order (holds them in memory)",
    )
    run.add_argument(
        "--by",
        default="phase,team",
        help="comma-separated allocation labels for the summary, summary.parquet and "
        "report.html (default phase,team; labels the allocations lack are skipped)",
    )
    run.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 2, nothing written) on any warning: devices without measurements, "
        "uncovered or no allocations, sample and allocation times that do not meet or "
        "differ by whole hours, timestamps without a zone",
    )
    run.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="[TABLE.]NAME=COLUMN",
        help=COLUMN_HELP,
    )
    run.add_argument("--out", required=True, metavar="DIR", help="output folder (must not exist)")
    run.add_argument(
        "--quiet",
        action="store_true",
        help="print nothing on success but warnings (stderr), and no progress line",
    )
    run.add_argument("--debug", action="store_true", help="show tracebacks")
    demo = sub.add_parser(
        "demo",
        help="account a built-in fleet built from real public data and write its ledger",
        description="Build a 48-GPU fleet (A100, H100, V100 nodes and their hosts) in three "
        "real grid regions from real public data (Electricity Maps 2023 hourly intensity, Zeus "
        "power measurements, the Azure LLM inference trace, catalog embodied carbon), write "
        "it under OUT/inputs and account it with 'carbonledger run' into OUT/ledger.",
    )
    demo.add_argument(
        "--out",
        default="carbonledger-demo",
        metavar="DIR",
        help="demo folder to create (default ./carbonledger-demo)",
    )
    demo.add_argument(
        "--days", type=float, default=3.0, metavar="N", help="days at 1 Hz (default 3)"
    )
    demo.add_argument(
        "--force", action="store_true", help="replace --out if it holds an earlier demo"
    )
    demo.add_argument("--quiet", action="store_true", help="print nothing on success")
    demo.add_argument("--debug", action="store_true", help="show tracebacks")
    val = sub.add_parser(
        "validate",
        help="check the inputs without processing samples; list every problem",
        description="Check schemas, ids and references, values, grid-intensity coverage and "
        "allocation overlaps as 'run' would, without reading a sample, and list every "
        "problem found (not just the first). Coverage and overlaps are checked over --period, "
        "or over the span of the power files' timestamp statistics (Parquet). Exit 0 when "
        "the inputs are clean, 2 when there are problems.",
    )
    val.add_argument(
        "--power",
        nargs="+",
        action="append",
        metavar="PATH",
        help="power files (schema and timestamp statistics only), one source per --power",
    )
    val.add_argument("--devices", required=True, metavar="FILE")
    val.add_argument("--sites", required=True, metavar="FILE")
    val.add_argument("--intensity", required=True, metavar="FILE")
    val.add_argument("--allocations", metavar="FILE")
    val.add_argument("--period", nargs=2, metavar=("START", "END"))
    val.add_argument("--overlap", choices=("error", "normalize"), default="error")
    val.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="[TABLE.]NAME=COLUMN",
        help=COLUMN_HELP,
    )
    val.add_argument("--debug", action="store_true", help="show tracebacks")
    summ = sub.add_parser(
        "summarize",
        help="re-roll an existing ledger folder by labels, without recomputing",
    )
    summ.add_argument("ledger", metavar="DIR", help="a folder written by 'carbonledger run'")
    summ.add_argument("--by", default="phase", help="comma-separated allocation labels")
    summ.add_argument("--debug", action="store_true", help="show tracebacks")
    inten = sub.add_parser("intensity", help="convert real grid-intensity exports")
    isub = inten.add_subparsers(dest="source", required=True)
    em = isub.add_parser(
        "from-electricitymaps", help="Electricity Maps hourly CSVs (hours labelled by start)"
    )
    em.add_argument("csv", nargs="+")
    em.add_argument("--basis", required=True, choices=("direct", "lifecycle"))
    em.add_argument("--region", help="override the Zone Id")
    eia = isub.add_parser("from-eia930", help="EIA-930 hourly CSVs (hours labelled by end)")
    eia.add_argument("csv", nargs="+")
    eia.add_argument("--region", help="override the balancing authority from the file name")
    for q in (em, eia):
        q.add_argument("--out", required=True, metavar="FILE", help="Parquet file to write")
        q.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _file_entry(path: str) -> dict[str, Any]:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"path": path, "bytes": os.path.getsize(path), "sha256": h.hexdigest()}


def _write_ledger(report: Report, out: Path, by: list[str], manifest: dict[str, Any]) -> None:
    """Write everything into a temporary sibling folder, then rename it into
    place: an interrupted or failed run leaves no partial output. The
    folder's name identifies this process, so that if it is killed outright
    (SIGKILL), the next run can tell the folder is stale and remove it."""
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(parent / out.name, folder=True)
    try:
        for name, table in report.tables.items():
            write_parquet(table, tmp / f"{name}.parquet")
        keys = [k for k in by if k in report.allocations.columns]
        report.summary(by=keys).write_parquet(tmp / "summary.parquet")
        manifest["rows"] = {name: t.num_rows for name, t in report.tables.items()}
        manifest["totals"] = report.totals()
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        (tmp / "report.html").write_text(render_html(report, manifest, by), encoding="utf-8")
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _summary_text(report: Report, by: list[str]) -> str:
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


def column_mapping(items: Sequence[str]) -> dict[str, Any]:
    """``--column [TABLE.]NAME=COLUMN`` options as ``account``'s ``columns=``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, column = item.partition("=")
        if not sep or not key or not column:
            raise InputError(
                f"argument '--column': got {item!r}; expected NAME=COLUMN or TABLE.NAME=COLUMN, "
                "e.g. --column ts=timestamp"
            )
        table, dot, name = key.rpartition(".")
        if dot:
            out.setdefault(table, {})[name] = column
        else:
            out[name] = column
    return out


def _flat_paths(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    return [p for item in v for p in _flat_paths(item)]


def _run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    # What earlier runs killed before their rename left in the folder.
    remove_stale(out.resolve().parent)
    if out.exists():
        raise InputError(f"argument '--out': {str(out)!r} exists; expected a new folder")
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    inputs: dict[str, Any] = {
        "power": args.power,  # one list of paths per --power: one source each
        "devices": args.devices,
        "sites": args.sites,
        "intensity": args.intensity,
        "allocations": args.allocations,
    }
    # A progress line on a terminal only: never in logs, pipes or --quiet runs.
    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() and not args.quiet else None
    finished = False
    try:
        report = account(
            **inputs,
            period=tuple(args.period) if args.period else None,
            interpolation=args.interpolation,
            max_gap=args.max_gap,
            gap_fill=args.gap_fill,
            on_invalid=args.on_invalid,
            overlap=args.overlap,
            sort=args.sort,
            progress=bar,
            strict=args.strict,
            columns=column_mapping(args.column),
            max_power_w=args.max_power_w,
        )
        finished = True
    finally:
        if bar is not None:
            bar.close(keep=finished)
    files = {
        name: [_file_entry(f) for f in expand_paths(_flat_paths(v), name)]
        for name, v in inputs.items()
        if v is not None
    }
    options = {k: v for k, v in vars(args).items() if k not in ("command", "quiet", "debug")}
    manifest = {
        "carbonledger": __version__,
        "options": options,
        "inputs": files,
        "started_at": started.isoformat(),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "seconds": time.perf_counter() - t0,
        "warnings": [w.to_dict() for w in report.warnings],
    }
    _write_ledger(report, out, [b for b in args.by.split(",") if b], manifest)
    if report.warnings:  # even with --quiet: they say the ledger is probably wrong
        print(format_warnings(report.warnings), file=sys.stderr)
    if not args.quiet:
        print(_summary_text(report, [b for b in args.by.split(",") if b]))
        print(f"ledger written to {out}")
    return EXIT_OK


def _summarize(args: argparse.Namespace) -> int:
    folder = Path(args.ledger)
    tables = {}
    for name in ("allocations", "unallocated", "devices"):
        path = folder / f"{name}.parquet"
        if not path.is_file():
            raise InputError(
                f"ledger {str(folder)!r}: missing {name}.parquet; expected a run's --out"
            )
        tables[name] = pq.read_table(path)
    grid = folder / "grid.parquet"
    manifest = folder / "manifest.json"
    report = Report(
        tables["allocations"],
        tables["unallocated"],
        tables["devices"],
        grid=pq.read_table(grid) if grid.is_file() else None,
        warnings=warnings_from_manifest(json.loads(manifest.read_text()))
        if manifest.is_file()
        else (),
    )
    if report.warnings:
        print(format_warnings(report.warnings), file=sys.stderr)
    with pl.Config(tbl_rows=100, tbl_cols=20, tbl_width_chars=200):
        print(report.summary(by=[b for b in args.by.split(",") if b]))
    return EXIT_OK


def _intensity(args: argparse.Namespace) -> int:
    from .intensity import from_eia930, from_electricitymaps

    if args.source == "from-electricitymaps":
        table = from_electricitymaps(args.csv, basis=args.basis, region=args.region)
    else:
        table = from_eia930(args.csv, region=args.region)
    final = Path(args.out).resolve()
    remove_stale(final.parent)
    tmp = temp_path(final, folder=False)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    print(f"{table.num_rows} intensity rows written to {args.out}")
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from .demo import _cli

    return _cli(args)


def _validate(args: argparse.Namespace) -> int:
    from .validation import validate

    v = validate(
        args.devices,
        args.sites,
        args.intensity,
        args.allocations,
        power=args.power,
        period=tuple(args.period) if args.period else None,
        overlap=args.overlap,
        columns=column_mapping(args.column),
    )
    if v.period is None:
        scope = "coverage and overlaps not checked (no --period, no Parquet ts statistics)"
    else:
        scope = (
            f"coverage and overlaps checked over [{v.period[0].isoformat()}, "
            f"{v.period[1].isoformat()}) ({v.period_source})"
        )
    if v.ok:
        print(f"inputs OK; {scope}")
        return EXIT_OK
    for i, p in enumerate(v.problems, 1):
        print(f"{i:4d}. [{p.kind}] {p.message}")
    more = f" (and {v.more} more not listed)" if v.more else ""
    print(f"{len(v.problems)} problem(s){more}; {scope}", file=sys.stderr)
    return EXIT_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands = {
        "run": _run,
        "summarize": _summarize,
        "intensity": _intensity,
        "demo": _demo,
        "validate": _validate,
    }
    try:
        return commands[args.command](args)
    except InputError as e:
        if args.debug:
            raise
        print(f"carbonledger: error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("carbonledger: interrupted; nothing written", file=sys.stderr)
        return 130
    except Exception as e:
        if args.debug:
            raise
        print(f"carbonledger: internal error ({type(e).__name__}): {e}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
