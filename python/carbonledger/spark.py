"""carbonledger on Apache Spark: the embedded engine run inside Spark tasks.

``account(power, devices, sites, intensity, allocations, **options)``
takes Spark DataFrames and returns Spark DataFrames with the tables and
columns of ``carbonledger.account`` (``allocations``, ``unallocated``,
``devices``, ``grid``). How:

- the small tables are collected to the driver (they are small) and
  checked there, as ``carbonledger.validate`` does;
- every device is assigned to one of ``partitions`` groups (by its row in
  ``devices``), and the samples are grouped by their device's group
  (``groupBy(...).applyInArrow``: no per-row Python, no sample on the
  driver); one marker row per group makes every group run, so devices
  without any sample still accrue their embodied carbon;
- in each task the Rust engine accounts its group's devices over the same
  settled period, with the small tables restricted to them; each device and
  each allocation is accounted in exactly one task, so the partial
  ``allocations``, ``unallocated`` and ``devices`` tables are disjoint and
  only ``grid`` needs summing (a Spark aggregation);
- results come back as Arrow IPC payloads, one per task and table, decoded
  by ``mapInArrow`` into DataFrames and put back in input order.

The period is the one given, or ``[min ts, max ts)`` of the valid samples,
computed by a Spark aggregation first. Results equal the embedded engine's
on the same inputs to rounding (the grid's sums are added in another
order). ``warnings`` are not computed here (run ``carbonledger.validate``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from ._time import to_ns, utc_datetime
from .accounting import account as _account
from .exceptions import InputError, UnknownIdError
from .validation import validate

__all__ = ["SparkResult", "account", "run_cli"]

_GROUP = "_cl_group"
_SOURCE = "_cl_source"
_MARKER = "_cl_marker"
_ROW = "_cl_row"
_TABLES = ("allocations", "unallocated", "devices", "grid")
_GRID_KEYS = ["region", "start", "end", "gco2e_per_kwh", "cfe", "residual_gco2e_per_kwh"]


class SparkResult(NamedTuple):
    """The result tables as Spark DataFrames (SPEC 9, and ``grid``)."""

    allocations: Any
    unallocated: Any
    devices: Any
    grid: Any


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _from_ipc(payload: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(payload)).read_all()


def _settled_period(sources: Sequence[Any], period: tuple[Any, Any] | None) -> tuple[int, int]:
    if period is not None:
        return to_ns(period[0], "period"), to_ns(period[1], "period")
    from pyspark.sql import functions as F

    lo: int | None = None
    hi: int | None = None
    for df in sources:
        value = "power_w" if "power_w" in df.columns else "energy_j"
        v = F.col(value).cast("double")
        valid = df.where(
            F.col("ts").isNotNull() & v.isNotNull() & ~F.isnan(v) & (v >= 0) & (v < float("inf"))
        )
        row = valid.agg(F.min("ts").alias("lo"), F.max("ts").alias("hi")).collect()[0]
        if row["lo"] is not None:
            a, b = to_ns(row["lo"], "power.ts"), to_ns(row["hi"], "power.ts")
            lo, hi = (a, b) if lo is None or hi is None else (min(lo, a), max(hi, b))
    if lo is None or hi is None or hi <= lo:
        raise InputError(
            "table 'power': no two distinct valid sample times and no period; expected samples "
            "or an explicit period=(start, end)"
        )
    return lo, hi


def account(
    power: Any,
    devices: Any,
    sites: Any,
    intensity: Any,
    allocations: Any = None,
    *,
    period: tuple[Any, Any] | None = None,
    partitions: int | None = None,
    **options: Any,
) -> SparkResult:
    """Account Spark DataFrames with the Rust engine inside Spark tasks.

    ``power`` is a DataFrame (``device_id, ts, power_w | energy_j``) or a
    list of them (one per source, as in ``carbonledger.account``); the small
    tables are DataFrames. ``partitions`` (default: the session's default
    parallelism) is the number of device groups, each accounted by one task
    (its samples held in that task's memory). ``options`` are those of
    ``carbonledger.account`` (``max_gap``, ``interpolation``, ...), except
    ``sort`` (samples are sorted in each task) and ``progress``.
    """
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    for bad in ("sort", "progress", "strict"):
        if bad in options:
            raise InputError(f"argument {bad!r}: not available on Spark")
    sources = list(power) if isinstance(power, list | tuple) else [power]
    if not sources:
        raise InputError("table 'power': no source given")
    spark = SparkSession.getActiveSession() or sources[0].sparkSession
    n_groups = max(1, int(partitions or spark.sparkContext.defaultParallelism))

    small = {
        "devices": devices.toArrow(),
        "sites": sites.toArrow(),
        "intensity": intensity.toArrow(),
    }
    alloc_t = None if allocations is None else allocations.toArrow()
    p0, p1 = _settled_period(sources, period)
    checked = validate(
        small["devices"],
        small["sites"],
        small["intensity"],
        alloc_t,
        period=(utc_datetime(p0), utc_datetime(p1)),
        overlap=options.get("overlap", "error"),
        attribution=options.get("attribution", "share"),
    )
    if checked.problems:
        raise InputError(
            "inputs rejected before any sample was read: "
            + "; ".join(p.message for p in checked.problems[:5])
        )
    dev_t = small["devices"]
    ids = dev_t.column("device_id").to_pylist()
    group_of = {d: i % n_groups for i, d in enumerate(ids)}
    if alloc_t is not None:
        alloc_t = alloc_t.append_column(_ROW, pa.array(range(alloc_t.num_rows), pa.int64()))
    values = ["power_w" if "power_w" in s.columns else "energy_j" for s in sources]
    broadcast = spark.sparkContext.broadcast(
        {
            "devices": _ipc(dev_t),
            "sites": _ipc(small["sites"]),
            "intensity": _ipc(small["intensity"]),
            "allocations": None if alloc_t is None else _ipc(alloc_t),
            "period": (p0, p1),
            "options": options,
            "groups": n_groups,
            "values": values,
        }
    )
    key_type = dict(sources[0].dtypes)["device_id"]
    mapping = spark.createDataFrame(
        [(d, g) for d, g in group_of.items()], schema=f"device_id {key_type}, {_GROUP} int"
    )
    tagged = []
    for k, (s, value) in enumerate(zip(sources, values, strict=True)):
        tagged.append(
            s.select(
                "device_id",
                "ts",
                F.col(value).cast("double").alias("value"),
                F.lit(k).alias(_SOURCE),
                F.lit(False).alias(_MARKER),
            )
        )
    samples = tagged[0]
    for t in tagged[1:]:
        samples = samples.unionByName(t)
    # Unknown ids get group -1: that task raises the engine's error for them.
    samples = samples.join(F.broadcast(mapping), on="device_id", how="left").withColumn(
        _GROUP, F.coalesce(F.col(_GROUP), F.lit(-1))
    )
    markers = spark.range(n_groups).select(
        F.lit(None).cast(key_type).alias("device_id"),
        F.lit(None).cast("timestamp").alias("ts"),
        F.lit(None).cast("double").alias("value"),
        F.lit(-1).alias(_SOURCE),
        F.lit(True).alias(_MARKER),
        F.col("id").cast("int").alias(_GROUP),
    )
    # One shuffle partition per group: the grouping below then needs no
    # second shuffle, and no task runs for an empty partition (the default
    # of 200 shuffle partitions made most tasks empty).
    grouped = samples.unionByName(markers).repartition(n_groups, _GROUP)

    def task(table: pa.Table) -> pa.Table:
        return _account_group(table, broadcast.value)

    parts = (
        grouped.groupBy(_GROUP)
        .applyInArrow(task, schema="grp int, name string, payload binary")
        .persist()
    )
    result = {name: _decode(spark, parts, name) for name in _TABLES}
    out_alloc = result["allocations"]
    if _ROW in out_alloc.columns:  # none without an allocations table
        out_alloc = out_alloc.orderBy(_ROW).drop(_ROW)
    order = spark.createDataFrame(
        [(d, i) for i, d in enumerate(ids)], schema=f"device_id {key_type}, _cl_order long"
    )

    def in_device_order(df: Any) -> Any:
        return df.join(F.broadcast(order), on="device_id").orderBy("_cl_order").drop("_cl_order")

    grid = result["grid"]
    summed = [c for c in grid.columns if c not in _GRID_KEYS]
    out_grid = (
        grid.groupBy(*_GRID_KEYS)
        .agg(*[F.sum(c).alias(c) for c in summed])
        .select(*grid.columns)
        .orderBy("region", "start")
    )
    return SparkResult(
        out_alloc,
        in_device_order(result["unallocated"]),
        in_device_order(result["devices"]),
        out_grid,
    )


def _decode(spark: Any, parts: Any, name: str) -> Any:
    """One result table of every task as a DataFrame (its schema from the
    first task's payload: a result table, never samples)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    rows = parts.where(parts.name == name)
    first = rows.select("payload").limit(1).collect()
    schema = _from_ipc(first[0]["payload"]).schema

    def decode(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            for payload in b.column("payload").to_pylist():
                yield from _from_ipc(payload).to_batches()

    return rows.select("payload").mapInArrow(decode, from_arrow_schema(schema))


def _spark_types(table: pa.Table) -> pa.Table:
    """Spark has no unsigned integers and no nanoseconds: the counts
    (``samples``, ``gaps``, ...) become int64, which holds every count a run
    can reach, and times microseconds (Spark's own inputs are microseconds,
    so the period and every echoed time already are)."""

    def spark_type(t: pa.DataType) -> pa.DataType:
        if pa.types.is_unsigned_integer(t):
            return pa.int64()
        if pa.types.is_timestamp(t):
            return pa.timestamp("us", tz=t.tz or "UTC")
        return t

    fields = [f.with_type(spark_type(f.type)) for f in table.schema]
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def _account_group(table: pa.Table, ctx: dict[str, Any]) -> pa.Table:
    """One task: the group's samples (and its marker row) accounted by the
    embedded engine for the group's devices; the four result tables as IPC
    payloads."""
    group = table.column(_GROUP)[0].as_py()
    if group == -1:
        unknown = pc.unique(table.column("device_id")).to_pylist()[:5]
        raise UnknownIdError(
            f"table 'power', column 'device_id': {unknown} not in devices.device_id; expected "
            "ids of devices.device_id"
        )
    devices = _from_ipc(ctx["devices"])
    mine = pa.array([i % ctx["groups"] == group for i in range(devices.num_rows)], pa.bool_())
    devices = devices.filter(mine)
    ids = devices.column("device_id")
    allocations = None
    if ctx["allocations"] is not None:
        allocations = _from_ipc(ctx["allocations"])
        allocations = allocations.filter(pc.is_in(allocations.column("device_id"), ids))
    samples = table.filter(pc.invert(table.column(_MARKER)))
    power: list[pa.Table] = []
    for k, value in enumerate(ctx["values"]):
        src = samples.filter(pc.equal(samples.column(_SOURCE), k))
        src = src.sort_by([("device_id", "ascending"), ("ts", "ascending")])
        power.append(
            pa.table(
                {
                    "device_id": src.column("device_id"),
                    "ts": src.column("ts"),
                    value: src.column("value"),
                }
            )
        )
    p0, p1 = ctx["period"]
    report = _account(
        power,
        devices,
        _from_ipc(ctx["sites"]),
        _from_ipc(ctx["intensity"]),
        allocations,
        period=(utc_datetime(p0), utc_datetime(p1)),
        **ctx["options"],
    )
    names, payloads = [], []
    for name in _TABLES:
        names.append(name)
        payloads.append(_ipc(_spark_types(report.tables[name])))
    return pa.table(
        {
            "grp": pa.array([group] * len(names), pa.int32()),
            "name": names,
            "payload": pa.array(payloads, pa.binary()),
        }
    )


def run_cli(args: Any, options: dict[str, Any], columns: dict[str, Any]) -> None:
    """``carbonledger run --engine spark``: the inputs read by Spark (power
    from Parquet paths; the small tables read as ``run`` reads them), the
    result written as a ledger folder like an embedded run's."""
    import time
    from pathlib import Path

    from pyspark.sql import SparkSession

    from ._atomic import remove_stale
    from ._io import expand_paths, table_columns, to_table
    from ._native import __version__
    from .ledger import file_entry, summary_text, write
    from .report import Report

    out = Path(args.out)
    remove_stale(out.resolve().parent)
    if out.exists():
        raise InputError(f"argument '--out': {str(out)!r} exists; expected a new folder")
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    builder = SparkSession.builder.appName("carbonledger").config(
        "spark.sql.session.timeZone", "UTC"
    )
    if args.master:
        builder = builder.master(args.master)
    session = builder.getOrCreate()
    sources = []
    power_files: list[str] = []
    for paths in args.power:
        files = expand_paths(paths, "power")
        if any(not f.endswith(".parquet") for f in files):
            raise InputError(
                f"table 'power': {[f for f in files if not f.endswith('.parquet')][:3]}: "
                "--engine spark reads power samples from Parquet files only"
            )
        power_files += files
        df = session.read.parquet(*files)
        for name, user in table_columns(columns, "power").items():
            if user in df.columns and name not in df.columns:
                df = df.withColumnRenamed(user, name)
        sources.append(df)
    small = {}
    for name in ("devices", "sites", "intensity", "allocations"):
        path = getattr(args, name)
        if path is not None:
            small[name] = session.createDataFrame(to_table(path, name, columns))
    result = account(
        sources,
        small["devices"],
        small["sites"],
        small["intensity"],
        small.get("allocations"),
        period=tuple(args.period) if args.period else None,
        interpolation=args.interpolation,
        max_gap=args.max_gap,
        gap_fill=args.gap_fill,
        on_invalid=args.on_invalid,
        overlap=args.overlap,
        max_power_w=args.max_power_w,
        execution_idle_below=args.execution_idle_below,
        attribution=args.attribution,
    )
    report = Report(
        result.allocations.toArrow(),
        result.unallocated.toArrow(),
        result.devices.toArrow(),
        grid=result.grid.toArrow(),
    )
    by = [b for b in args.by.split(",") if b]
    inputs = {"power": [file_entry(f) for f in power_files]}
    for name in small:
        inputs[name] = [file_entry(f) for f in expand_paths(getattr(args, name), name)]
    manifest = {
        "carbonledger": __version__,
        "engine": "spark",
        "spark": {"master": session.sparkContext.master, "version": session.version},
        "options": options,
        "inputs": inputs,
        "started_at": started.isoformat(),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "seconds": time.perf_counter() - t0,
        "warnings": [],
    }
    write(report, out, by, manifest)
    if not args.quiet:
        print(summary_text(report, by))
        print(f"ledger written to {out}")
