"""``carbonledger.account``: the one entry point of the engine."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any, Literal

import pyarrow as pa

from . import _native
from ._io import progress_stream, to_stream, to_table
from ._time import duration_ns, to_ns
from .catalog import fill_embodied
from .exceptions import InputError, SchemaError
from .progress import ProgressCallback
from .report import METRIC_COLUMNS, Report

Interpolation = Literal["linear", "previous"]
GapFill = Literal["none", "idle"]
OnInvalid = Literal["drop", "raise"]
Overlap = Literal["error", "normalize"]

_ALLOCATION_OUTPUTS = ("duration_s", "uncovered_s", *METRIC_COLUMNS)


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


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InputError(f"argument '{name}': got {value!r}; expected one of {choices}")
    return value


def _empty_allocations(devices: pa.Table) -> pa.Table:
    ts = pa.timestamp("ns", tz="UTC")
    return pa.table(
        {
            "job_id": pa.array([], pa.string()),
            "device_id": pa.array([], devices.schema.field("device_id").type),
            "start": pa.array([], ts),
            "end": pa.array([], ts),
        }
    )


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
) -> Report:
    """Attribute the energy, operational and embodied carbon of a fleet to jobs.

    Each table may be a pyarrow Table or RecordBatchReader, a polars DataFrame
    or LazyFrame, a duckdb relation, any Arrow PyCapsule producer, or a
    Parquet/CSV path or glob. ``power`` is streamed batch by batch and never
    held whole (unless ``sort=True``, which holds every sample to sort it).

    Args:
        power: samples ``device_id, ts`` and ``power_w`` (W) or ``energy_j``
            (cumulative J).
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
    _choice("interpolation", interpolation, ("linear", "previous"))
    _choice("gap_fill", gap_fill, ("none", "idle"))
    _choice("on_invalid", on_invalid, ("drop", "raise"))
    _choice("overlap", overlap, ("error", "normalize"))

    devices_t = fill_embodied(to_table(devices, "devices"))  # catalog by `model`
    sites_t = to_table(sites, "sites")
    intensity_t = to_table(intensity, "intensity")
    alloc_t = None if allocations is None else to_table(allocations, "allocations")
    if alloc_t is not None:
        clash = [c for c in _ALLOCATION_OUTPUTS if c in alloc_t.column_names]
        if clash:
            raise SchemaError(
                f"table 'allocations': input column {clash[0]!r} clashes with an output "
                "column; rename it"
            )
    if "device_id" not in devices_t.column_names:
        raise SchemaError(
            "table 'devices': missing required column 'device_id' (expected string or "
            f"integer ids); found columns {devices_t.column_names}"
        )
    if progress is None:
        stream = to_stream(power, "power")
    else:
        stream = progress_stream(power, progress, "power")

    alloc_m, unalloc_m, devices_m, grid_m = _native.account(
        stream,
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
    )
    base = alloc_t if alloc_t is not None else _empty_allocations(devices_t)
    alloc_out = _append(base, pa.table(alloc_m))
    ids = pa.table({"device_id": devices_t.column("device_id")})
    return Report(
        alloc_out,
        _append(ids, pa.table(unalloc_m)),
        _append(ids, pa.table(devices_m)),
        grid=pa.table(grid_m),
    )


def _append(left: pa.Table, right: pa.Table) -> pa.Table:
    out = left.combine_chunks() if left.num_rows == 0 else left
    for name in right.column_names:
        out = out.append_column(name, right.column(name))
    return out
