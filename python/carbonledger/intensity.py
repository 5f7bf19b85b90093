"""Adapters from real grid-intensity datasets to the canonical intensity table
(``region, start, end, gco2e_per_kwh``)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .exceptions import InputError, SchemaError

Basis = Literal["direct", "lifecycle"]

_EM_COLUMNS = {
    "direct": "Carbon Intensity gCO₂eq/kWh (direct)",
    "lifecycle": "Carbon Intensity gCO₂eq/kWh (LCA)",
}
_HOUR = dt.timedelta(hours=1)
# On the calling thread: nothing of the read is left on pyarrow's pool to
# finish while the interpreter exits (see catalog.embodied_catalog). A year
# of hours parses in milliseconds on one thread.
_READ = pacsv.ReadOptions(use_threads=False)


def from_electricitymaps(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    basis: Basis,
    region: str | None = None,
) -> pa.Table:
    """Read Electricity Maps hourly CSV exports.

    Electricity Maps labels each hour by its start (UTC), so a row covers
    ``[start, start + 1 h)``. ``basis`` must be chosen explicitly:
    ``"direct"`` (combustion emissions only, the GHG Protocol Scope 2 basis)
    or ``"lifecycle"`` (adds upstream emissions of each source). Hours with a
    blank intensity are left out, so they surface as coverage holes instead
    of being silently priced at zero. ``region`` overrides the file's
    ``Zone Id``.
    """
    if basis not in _EM_COLUMNS:
        raise InputError(f"argument 'basis': got {basis!r}; expected 'direct' or 'lifecycle'")
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    tables = []
    for p in items:
        opts = pacsv.ConvertOptions(
            column_types={"Datetime (UTC)": pa.timestamp("s"), _EM_COLUMNS[basis]: pa.float64()}
        )
        t = pacsv.read_csv(os.fspath(p), read_options=_READ, convert_options=opts)
        for col in ("Datetime (UTC)", "Zone Id", _EM_COLUMNS[basis]):
            if col not in t.column_names:
                raise SchemaError(
                    f"table 'intensity' ({os.fspath(p)}): missing column {col!r}; "
                    "expected an Electricity Maps hourly export"
                )
        start = t.column("Datetime (UTC)").cast(pa.timestamp("ns")).cast(pa.timestamp("ns", "UTC"))
        zone = (
            pa.array([region] * t.num_rows, pa.string())
            if region is not None
            else t.column("Zone Id").cast(pa.string())
        )
        out = pa.table(
            {
                "region": zone,
                "start": start,
                "end": pc.add(start, pa.scalar(_HOUR, pa.duration("ns"))),
                "gco2e_per_kwh": t.column(_EM_COLUMNS[basis]),
            }
        )
        tables.append(out.filter(pc.is_valid(out.column("gco2e_per_kwh"))))
    return pa.concat_tables(tables)


def from_eia930(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    region: str | None = None,
) -> pa.Table:
    """Read EIA-930 derived hourly intensity CSVs (``timestamp, ..., avg_CI``,
    as published by HewlettPackard/dc-rl from the EIA hourly grid monitor).

    EIA-930 labels each hour by its END, so a row stamped ``t`` covers
    ``[t - 1 h, t)``. ``avg_CI`` is a production-based average of the
    balancing authority's generation mix (gCO2/kWh). Blank hours are left out
    so they surface as coverage holes. ``region`` defaults to the file name's
    prefix before the first ``_`` (the balancing authority, e.g. ``CISO``).
    """
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    tables = []
    for p in items:
        path = os.fspath(p)
        t = pacsv.read_csv(
            path,
            read_options=_READ,
            convert_options=pacsv.ConvertOptions(
                column_types={"timestamp": pa.timestamp("ns", "UTC"), "avg_CI": pa.float64()}
            ),
        )
        for col in ("timestamp", "avg_CI"):
            if col not in t.column_names:
                raise SchemaError(
                    f"table 'intensity' ({path}): missing column {col!r}; "
                    "expected an EIA-930 hourly file (timestamp, ..., avg_CI)"
                )
        name = region if region is not None else os.path.basename(path).split("_")[0]
        end = t.column("timestamp")
        out = pa.table(
            {
                "region": pa.array([name] * t.num_rows, pa.string()),
                "start": pc.subtract(end, pa.scalar(_HOUR, pa.duration("ns"))),
                "end": end,
                "gco2e_per_kwh": t.column("avg_CI"),
            }
        )
        tables.append(out.filter(pc.is_valid(out.column("gco2e_per_kwh"))))
    return pa.concat_tables(tables)
