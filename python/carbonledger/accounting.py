"""``carbonledger.account``: the one entry point of the engine."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any, Literal

import pyarrow as pa

from . import _native
from ._io import (
    Columns,
    open_power,
    power_schema,
    progress_streams,
    table_columns,
    to_stream,
    to_table,
)
from ._time import duration_ns, to_ns
from .catalog import fill_embodied
from .diagnostics import apply_warnings, collect_warnings
from .exceptions import InputError, SchemaError
from .progress import ProgressCallback
from .report import Report, Unread

Interpolation = Literal["linear", "previous"]
GapFill = Literal["none", "idle"]
OnInvalid = Literal["drop", "raise"]
Overlap = Literal["error", "normalize"]
Attribution = Literal["share", "utilization"]


def _threads() -> int | None:
    raw = os.environ.get("CARBONLEDGER_MAX_THREADS")
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError as e:
        raise InputError(
            f"environment CARBONLEDGER_MAX_THREADS={raw!r}: expected a positive integer"
        ) from e
    if n < 1:
        raise InputError(f"environment CARBONLEDGER_MAX_THREADS={raw!r}: expected >= 1")
    return n


def account(
    power: Any,
    devices: Any,
    sites: Any,
    intensity: Any,
    allocations: Any = None,
    *,
    period: tuple[Any, Any] | None = None,
    interpolation: Interpolation = "linear",
    max_gap: dt.timedelta | float = dt.timedelta(minutes=5),
    gap_fill: GapFill = "none",
    on_invalid: OnInvalid = "drop",
    overlap: Overlap = "error",
    sort: bool = False,
    progress: ProgressCallback | None = None,
    strict: bool = False,
    columns: Columns | None = None,
    max_power_w: float = 1e6,
    execution_idle_below: float = 0.05,
    attribution: Attribution = "share",
) -> Report:
    """Attribute the energy, operational and embodied carbon of a fleet to jobs.

    Each table may be a pyarrow Table or RecordBatchReader, a polars DataFrame
    or LazyFrame, a duckdb relation, any Arrow PyCapsule producer, or a
    Parquet/CSV path or glob. ``power`` is streamed batch by batch and never
    held whole (unless ``sort=True``, which holds every sample to sort it).

    Args:
        power: samples ``device_id, ts`` and ``power_w`` (W) or ``energy_j``
            (cumulative J); or a list of such sources, each with its own
            value column (GPU power beside CPU energy counters). A device's
            samples all come from one kind; the files of one source (path,
            directory or glob) must share one schema.
        devices: ``device_id, site_id, embodied_kgco2e, installed_at`` and
            ``lifetime_years`` or ``retired_at``; a ``model`` column (see
            ``carbonledger.catalog``) fills ``embodied_kgco2e`` where that is
            absent or null.
        sites: ``site_id, region, pue``.
        intensity: ``region, start, gco2e_per_kwh`` [``end, cfe,
            residual_gco2e_per_kwh``].
        allocations: ``job_id, device_id, start, end`` [``share``, labels];
            ``None`` books everything as unallocated.
        period: ``(start, end)``; default ``[min ts, max ts)`` of valid samples.
        interpolation: ``"linear"`` (trapezoid) or ``"previous"`` (hold).
        max_gap: longest interval still interpolated (timedelta or seconds).
        gap_fill: ``"idle"`` fills uncovered time with ``idle_power_w``.
        on_invalid: ``"drop"`` (count) or ``"raise"`` on NaN/inf/negative.
        overlap: ``"error"`` or ``"normalize"`` shares summing above 1.
        sort: accept samples out of time order (holds them in memory).
        progress: called with a ``carbonledger.progress.Progress`` (rows and
            files of ``power`` pulled so far, totals where known) before the
            first batch, after each batch and once at the end; it runs on
            the engine's read-ahead thread. ``None`` (default): no overhead.
        columns: the user's column names, ``{"ts": "timestamp"}`` (every
            table that has ``timestamp`` and lacks ``ts``) or per table,
            ``{"power": {"ts": "timestamp"}, "allocations": {...}}``.
        max_power_w: the highest credible power of one device (W), unless
            ``devices.max_power_w`` sets its own: a sample (or a counter's
            mean power over an interval) above it is an
            ``InvalidSampleError``, as it can only be a unit or encoding
            error (1 MW by default, above a whole rack).
        execution_idle_below: when ``power`` carries ``utilization`` (a
            fraction, 0..1) or ``utilization_pct`` (percent), covered time
            whose utilization is below this threshold is *execution-idle*
            (held, powered, doing nothing); the results then gain
            ``busy_s``, ``execution_idle_s`` and ``execution_idle_kwh``.
            The utilization reported with a sample describes the interval
            that the sample ends (as DCGM and nvidia-smi report it).
        attribution: ``"share"`` (SPEC 7): everything on a device is split
            between its active allocations by ``share``. ``"utilization"``,
            for time-sliced GPUs whose per-job utilization is known
            (``allocations.utilization``, 0..1, required): the energy up to
            the device's ``idle_power_w`` (required) and the embodied carbon
            are split by share, the energy above it (and its operational
            carbon) between the active allocations in proportion to their
            utilization (by share where those sum to 0). Conserved either way.
        strict: raise ``SuspiciousResultError`` (listing them) instead of
            returning a report with ``warnings``: results that are almost
            certainly a mistake (``carbonledger.diagnostics``).
    """
    period_ns = None
    if period is not None:
        if len(period) != 2:
            raise InputError(f"argument 'period': expected (start, end), got {period!r}")
        period_ns = (to_ns(period[0], "period"), to_ns(period[1], "period"))
        if period_ns[1] <= period_ns[0]:
            raise InputError(
                f"argument 'period': end {period[1]!r} <= start {period[0]!r}; expected end > start"
            )
    gap_ns = duration_ns(max_gap, "max_gap")
    # The string options are parsed once, by the native layer (an
    # InputError naming the argument).

    # Its range (> 0, at most 1e9 W) is checked once, by the engine.
    if isinstance(max_power_w, bool) or not isinstance(max_power_w, int | float):
        raise InputError(
            f"argument 'max_power_w': got {max_power_w!r}; expected a power ceiling in W"
        )
    if isinstance(execution_idle_below, bool) or not isinstance(execution_idle_below, int | float):
        raise InputError(
            f"argument 'execution_idle_below': got {execution_idle_below!r}; expected a "
            "utilization threshold between 0 and 1"
        )
    devices_t = fill_embodied(to_table(devices, "devices", columns))  # catalog by `model`
    sites_t = to_table(sites, "sites", columns)
    intensity_t = to_table(intensity, "intensity", columns)
    alloc_t = None if allocations is None else to_table(allocations, "allocations", columns)
    if "device_id" not in devices_t.column_names:
        raise SchemaError(
            "table 'devices': missing required column 'device_id' (expected string or "
            f"integer ids); found columns {devices_t.column_names}"
        )
    sources = open_power(power, columns)
    mapping = table_columns(columns, "power")
    hooks: list[Any] = []
    if progress is None:
        streams = [to_stream(src, "power", mapping) for src in sources]
    else:
        streams, hooks = progress_streams(sources, mapping, progress)

    alloc_m, unalloc_m, devices_m, grid_m, settled, skipped = _native.account(
        streams,
        devices_t,
        sites_t,
        intensity_t,
        alloc_t,
        period=period_ns,
        interpolation=interpolation,
        max_gap_ns=gap_ns,
        gap_fill=gap_fill,
        on_invalid=on_invalid,
        overlap=overlap,
        sort=sort,
        threads=_threads(),
        max_power_w=float(max_power_w),
        execution_idle_below=float(execution_idle_below),
        attribution=attribution,
        progress=hooks,
    )
    # Taken from the stream objects, no batch pulled.
    power_s = [power_schema(stream) for stream in streams]
    # The engine returns the complete SPEC 9 tables (input columns echoed).
    report = Report(
        pa.table(alloc_m),
        pa.table(unalloc_m),
        pa.table(devices_m),
        grid=pa.table(grid_m),
        period=settled,
    )
    report.unread = Unread(*skipped)
    schemas = {
        "power": power_s,
        "devices": devices_t.schema,
        "sites": sites_t.schema,
        "intensity": intensity_t.schema,
        "allocations": None if alloc_t is None else alloc_t.schema,
    }
    found = collect_warnings(
        report,
        schemas=schemas,
        allocations_given=alloc_t is not None,
        period=period_ns,
        tables={"devices": devices_t, "intensity": intensity_t, "allocations": alloc_t},
    )
    return apply_warnings(report, found, strict=strict)
