"""Embodied carbon of common AI hardware, from published sources.

``data/catalog/embodied.csv`` lists accelerators and servers with a published
embodied-carbon figure, its unit (per GPU, per baseboard, per server), the
life-cycle boundary, the source (title, URL, year) and, for figures computed
from published data rather than quoted, ``derived = true`` with the
computation in ``notes``. ``data/catalog/README.md`` discusses each source.

``account`` uses the catalog when a ``devices`` table gives a ``model`` and no
``embodied_kgco2e`` (the column absent or null in that row)::

    >>> from carbonledger import catalog
    >>> catalog.lookup("H100-SXM5-80GB").embodied_kgco2e
    164.0
    >>> catalog.embodied_catalog().num_rows > 10
    True

Model keys match exactly, ignoring case and surrounding blanks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import pyarrow as pa
import pyarrow.csv as pacsv

from .exceptions import SchemaError, UnknownIdError

__all__ = ["CatalogEntry", "embodied_catalog", "fill_embodied", "lookup", "models"]

_COLUMNS = {
    "model": pa.string(),
    "description": pa.string(),
    "embodied_kgco2e": pa.float64(),
    "unit": pa.string(),
    "boundary": pa.string(),
    "source": pa.string(),
    "source_url": pa.string(),
    "year": pa.int64(),
    "derived": pa.bool_(),
    "notes": pa.string(),
}


@dataclass(frozen=True)
class CatalogEntry:
    """One catalog row: ``embodied_kgco2e`` per ``unit`` of ``model``."""

    model: str
    description: str
    embodied_kgco2e: float
    unit: str
    boundary: str
    source: str
    source_url: str
    year: int
    derived: bool
    notes: str


@cache
def embodied_catalog() -> pa.Table:
    """The whole catalog as a pyarrow Table (columns as in ``CatalogEntry``)."""
    resource = resources.files("carbonledger").joinpath("data", "catalog", "embodied.csv")
    # Read from a file system path, on this thread. Handed a Python file
    # object, pyarrow's threaded CSV reader wraps it in a PyReadableFile and
    # may drop the last reference to that wrapper on one of its pool threads
    # after read_csv has returned; the wrapper's destructor takes the GIL,
    # and if the interpreter is finalizing by then, CPython ends that thread
    # with pthread_exit, whose unwinding through the noexcept destructor
    # aborts the process ("terminate called without an active exception",
    # exit 134). With polars loaded its long teardown lets the thread in:
    # measured 23 aborts in 200 interpreters (pyarrow and polars alone),
    # 0 in 200 with a path, with use_threads=False, or with both. A path is
    # read through a native file, and one thread suffices for a dozen rows.
    with resources.as_file(resource) as path:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False),
            convert_options=pacsv.ConvertOptions(column_types=_COLUMNS, strings_can_be_null=False),
        )
    return table.select(list(_COLUMNS))


@cache
def _index() -> dict[str, CatalogEntry]:
    return {
        str(row["model"]).strip().casefold(): CatalogEntry(**row)
        for row in embodied_catalog().to_pylist()
    }


def models() -> list[str]:
    """The catalog's model keys, in catalog order."""
    return [e.model for e in _index().values()]


def lookup(model: str) -> CatalogEntry:
    """The catalog entry of ``model`` (case-insensitive); an
    ``UnknownIdError`` naming the known models if there is none."""
    entry = _index().get(str(model).strip().casefold())
    if entry is None:
        raise UnknownIdError(
            f"embodied-carbon catalog: unknown model {model!r}; known models: {models()}"
        )
    return entry


def fill_embodied(devices: pa.Table) -> pa.Table:
    """``devices`` with ``embodied_kgco2e`` filled from the catalog by ``model``
    where it is absent or null; rows with an explicit value keep it.

    Without a ``model`` column the table is returned unchanged (the engine
    then reports a missing ``embodied_kgco2e``). A row that needs the
    catalog but whose ``model`` is null or unknown is an ``UnknownIdError``
    naming the table, column, value and the known models.
    """
    names = devices.column_names
    if "model" not in names:
        return devices
    model_col = devices.column("model")
    typ = model_col.type
    stringy = "string" in str(typ) or "utf8" in str(typ)  # string, large_string, string_view
    if pa.types.is_dictionary(typ):
        stringy = "string" in str(typ.value_type) or "utf8" in str(typ.value_type)
    if stringy or pa.types.is_null(typ):
        model_col = model_col.cast(pa.string())
    else:
        raise SchemaError(
            f"table 'devices': column 'model' has type {typ}; expected string "
            "(a hardware model key of carbonledger.catalog)"
        )
    if "embodied_kgco2e" in names:
        given = devices.column("embodied_kgco2e")
        if given.null_count == 0:
            return devices
        if not (pa.types.is_integer(given.type) or pa.types.is_floating(given.type)):
            if given.null_count != len(given):
                return devices  # mistyped: the engine names it
            given = given.cast(pa.float64())
        given_values = given.cast(pa.float64()).to_pylist()
    else:
        given_values = [None] * devices.num_rows
    ids = devices.column("device_id").to_pylist() if "device_id" in names else None
    filled: list[float] = []
    for i, (value, model) in enumerate(zip(given_values, model_col.to_pylist(), strict=True)):
        if value is not None:
            filled.append(value)
            continue
        where = f" (device_id {ids[i]!r})" if ids is not None else f" (row {i})"
        if model is None:
            raise UnknownIdError(
                f"table 'devices': row {i}{where} has neither 'embodied_kgco2e' nor 'model'; "
                f"expected an embodied_kgco2e value or a catalog model, one of {models()}"
            )
        entry = _index().get(str(model).strip().casefold())
        if entry is None:
            raise UnknownIdError(
                f"table 'devices': column 'model' value {model!r}{where} is not in the "
                f"embodied-carbon catalog and the row has no 'embodied_kgco2e'; known models: "
                f"{models()}; give embodied_kgco2e for it"
            )
        filled.append(entry.embodied_kgco2e)
    column = pa.array(filled, pa.float64())
    if "embodied_kgco2e" in names:
        return devices.set_column(names.index("embodied_kgco2e"), "embodied_kgco2e", column)
    return devices.append_column("embodied_kgco2e", column)
