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
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from . import demo, ledger
from ._atomic import remove_stale, temp_path
from ._native import __version__
from .diagnostics import format_warnings
from .exceptions import InputError
from .ledger import EXIT_INPUT, EXIT_INTERNAL, EXIT_OK

__all__ = ["EXIT_INPUT", "EXIT_INTERNAL", "EXIT_OK", "column_mapping", "main"]


COLUMN_HELP = (
    "map a column name of your files to carbonledger's, e.g. --column ts=timestamp (every "
    "table with 'timestamp' and no 'ts') or --column allocations.start=begin; repeatable"
)


def _parser(ingest_formats: bool = True) -> argparse.ArgumentParser:
    """The whole command line; ``ingest_formats=False`` leaves out the
    ingest adapters' sub-commands (importing them all costs ~0.1 s, which
    only ``carbonledger ingest`` should pay)."""
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
    run.add_argument(
        "--execution-idle-below",
        type=float,
        default=0.05,
        metavar="FRACTION",
        help="with a utilization (or utilization_pct) column in --power: covered time below "
        "this utilization is execution-idle (default 0.05, i.e. 5%%)",
    )
    run.add_argument(
        "--engine",
        choices=("embedded", "spark"),
        default="embedded",
        help="spark: run the engine inside Apache Spark tasks (PySpark 4; power from Parquet "
        "paths; see docs/spark.md)",
    )
    run.add_argument(
        "--master",
        metavar="URL",
        help="with --engine spark: the Spark master, e.g. local[2] (default: spark-submit's)",
    )
    run.add_argument(
        "--partition-by",
        choices=("none", "day"),
        default="none",
        help="day: account each UTC day of --period on its own and write it as "
        "OUT/day=YYYY-MM-DD/ (re-running a day replaces only that day); "
        "'carbonledger summarize OUT --from DAY --to DAY' rolls days up",
    )
    run.add_argument(
        "--attribution",
        choices=("share", "utilization"),
        default="share",
        help="share (default): split each device by allocations.share; utilization: for "
        "time-sliced GPUs, the power above devices.idle_power_w goes to the active "
        "allocations by allocations.utilization (0..1), the rest by share",
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
    demo_cmd = sub.add_parser(
        "demo",
        help="account a built-in fleet built from real public data and write its ledger",
        description="Build a 48-GPU fleet (A100, H100, V100 nodes and their hosts) in three "
        "real grid regions from real public data (Electricity Maps 2023 hourly intensity, Zeus "
        "power measurements, the Azure LLM inference trace, catalog embodied carbon), write "
        "it under OUT/inputs and account it with 'carbonledger run' into OUT/ledger.",
    )
    demo.add_arguments(demo_cmd)
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
        "--attribution",
        choices=("share", "utilization"),
        default="share",
        help="as for run: utilization also checks allocations.utilization and devices.idle_power_w",
    )
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
    summ.add_argument(
        "--from",
        dest="first",
        metavar="DAY",
        help="a ledger written with --partition-by day: the first day (YYYY-MM-DD) to roll up",
    )
    summ.add_argument(
        "--to", dest="last", metavar="DAY", help="the last day (YYYY-MM-DD, included) to roll up"
    )
    summ.add_argument("--debug", action="store_true", help="show tracebacks")
    _ingest_parsers(sub, ingest_formats)
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
    eia.add_argument(
        "--no-errata",
        dest="errata",
        action="store_false",
        help="read EIA-930 labels as published (skip the shipped errata: CISO and PJM "
        "hour-beginning labels in 2022, see docs/ingest/grid-intensity.md)",
    )
    for q in (em, eia):
        q.add_argument("--out", required=True, metavar="FILE", help="Parquet file to write")
        q.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _ingest_parsers(sub: Any, with_formats: bool) -> None:
    """``carbonledger ingest FORMAT INPUT... --out DIR``: one sub-command per
    adapter of ``carbonledger.ingest``, each with the adapter's own options."""

    ing = sub.add_parser(
        "ingest",
        help="convert telemetry and scheduler dumps (DCGM/Prometheus, nvidia-smi, RAPL, "
        "NVML, Slurm, Kubernetes) into carbonledger's power and allocations tables",
        description="Read a tool's own dump, streaming, and write carbonledger's canonical "
        "table into --out: power samples as DIR/power/day=YYYY-MM-DD/part-0.parquet (UTC "
        "days; pass --power 'DIR/power/*/*.parquet' to 'carbonledger run'), allocations "
        "as DIR/allocations.parquet. Each output appears whole or not at all and replaces "
        "an earlier one. See docs/ingest/.",
    )
    isub = ing.add_subparsers(dest="format", required=True, metavar="FORMAT")
    if not with_formats:
        return
    from .ingest import formats

    for name, fmt in formats().items():
        q = isub.add_parser(
            name,
            help=fmt.help,
            description=fmt.help + (f"\n\nInput sample:\n{fmt.sample}" if fmt.sample else ""),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        fmt.add_arguments(q)
        q.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
        q.add_argument("--debug", action="store_true", help="show tracebacks")


def _ingest(args: argparse.Namespace) -> int:
    from ._time import utc_datetime
    from .ingest import formats, write_allocations, write_power

    fmt = formats()[args.format]
    opened = fmt.open(args)
    if fmt.table == "power":
        if not isinstance(opened, pa.RecordBatchReader):
            opened = pa.RecordBatchReader.from_batches(opened.schema, opened.to_batches())
        summary = write_power(opened, args.out)
        span = ""
        if summary.first_ts is not None and summary.last_ts is not None:
            span = (
                f", {utc_datetime(summary.first_ts).isoformat()} to "
                f"{utc_datetime(summary.last_ts).isoformat()}"
            )
        print(
            f"{summary.rows} power samples of {summary.devices} device(s){span}: "
            f"{len(summary.files)} day partition(s) in {summary.path}"
        )
    else:
        table = opened.read_all() if isinstance(opened, pa.RecordBatchReader) else opened
        summary = write_allocations(table, args.out)
        print(
            f"{summary.rows} allocation rows on {summary.devices} device(s) written to "
            f"{summary.path}"
        )
    return EXIT_OK


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


def _account_options(args: argparse.Namespace) -> dict[str, Any]:
    """``account``'s options from ``run``'s arguments (one place for the
    embedded run and the day-partitioned one)."""
    return {
        "interpolation": args.interpolation,
        "max_gap": args.max_gap,
        "gap_fill": args.gap_fill,
        "on_invalid": args.on_invalid,
        "overlap": args.overlap,
        "sort": args.sort,
        "strict": args.strict,
        "columns": column_mapping(args.column),
        "max_power_w": args.max_power_w,
        "execution_idle_below": args.execution_idle_below,
        "attribution": args.attribution,
    }


def _run(args: argparse.Namespace) -> int:
    options = {k: v for k, v in vars(args).items() if k not in ("command", "quiet", "debug")}
    if args.engine == "spark":
        if args.partition_by != "none":
            raise InputError("argument '--partition-by': not available with --engine spark")
        from .spark import run_cli

        run_cli(args, options, column_mapping(args.column))
        return EXIT_OK
    if args.partition_by == "day":
        from .daily import run_daily

        if not args.period:
            raise InputError(
                "argument '--partition-by day': needs --period START END (each day of it is "
                "accounted and written on its own)"
            )
        run_daily(
            args.out,
            period=tuple(args.period),
            power=args.power,
            devices=args.devices,
            sites=args.sites,
            intensity=args.intensity,
            allocations=args.allocations,
            by=[b for b in args.by.split(",") if b],
            quiet=args.quiet,
            **_account_options(args),
        )
        return EXIT_OK
    ledger.run(
        args.out,
        power=args.power,  # one list of paths per --power: one source each
        devices=args.devices,
        sites=args.sites,
        intensity=args.intensity,
        allocations=args.allocations,
        by=[b for b in args.by.split(",") if b],
        quiet=args.quiet,
        options=options,
        period=tuple(args.period) if args.period else None,
        **_account_options(args),
    )
    return EXIT_OK


def _summarize(args: argparse.Namespace) -> int:
    from .daily import read_ledger

    def day(text: str | None, option: str) -> dt.date | None:
        if text is None:
            return None
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise InputError(
                f"argument '{option}': got {text!r}; expected a day YYYY-MM-DD"
            ) from None

    report = read_ledger(args.ledger, day(args.first, "--from"), day(args.last, "--to"))
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
        table = from_eia930(args.csv, region=args.region, errata=args.errata)
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
    meta = json.loads((table.schema.metadata or {}).get(b"carbonledger.intensity", b"{}"))
    for f in meta.get("files", []):
        for e in f.get("errata", []):
            print(f"{f['file']}: {e['rows']} rows corrected: {e['erratum']}")
        for u in f.get("unreported", []):
            print(f"{f['file']}: [{u['hour'][0]}, {u['hour'][1]}) never reported, left out")
    return EXIT_OK


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
        attribution=args.attribution,
    )
    if v.period is None:
        scope = "coverage and overlaps not checked (no --period, no Parquet ts statistics)"
    else:
        scope = (
            f"coverage and overlaps checked over [{v.period[0].isoformat()}, "
            f"{v.period[1].isoformat()}) ({v.period_source})"
        )
    if v.warnings:
        print(format_warnings(v.warnings), file=sys.stderr)
    if v.ok:
        print(f"inputs OK; {scope}")
        return EXIT_OK
    for i, p in enumerate(v.problems, 1):
        print(f"{i:4d}. [{p.kind}] {p.message}")
    more = f" (and {v.more} more not listed)" if v.more else ""
    print(f"{len(v.problems)} problem(s){more}; {scope}", file=sys.stderr)
    return EXIT_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    """The ``carbonledger`` command; returns its exit code (see the module docstring)."""
    words = sys.argv[1:] if argv is None else list(argv)
    args = _parser(ingest_formats="ingest" in words).parse_args(argv)
    commands = {
        "run": _run,
        "summarize": _summarize,
        "intensity": _intensity,
        "demo": demo.command,
        "validate": _validate,
        "ingest": _ingest,
    }
    return ledger.guarded(lambda: commands[args.command](args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
