"""Turning whatever the caller passes into Arrow: tables for the small inputs,
a stream of record batches for the samples. Nothing is copied that Arrow's
PyCapsule interface can hand over as it is."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from .exceptions import InputError, SchemaError
from .progress import Progress, ProgressCallback

POWER_COLUMNS = ("device_id", "ts", "power_w", "energy_j")
# Rows per scanned batch: large enough that per-batch work is amortized,
# small enough that a few batches read ahead stay well under 100 MB.
SCAN_BATCH_ROWS = 1 << 20


def scan_batch_rows() -> int:
    """Rows per scanned batch: ``CARBONLEDGER_SCAN_BATCH_ROWS`` or 2^20."""
    raw = os.environ.get("CARBONLEDGER_SCAN_BATCH_ROWS")
    if not raw:
        return SCAN_BATCH_ROWS
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise InputError(
            f"environment CARBONLEDGER_SCAN_BATCH_ROWS={raw!r}: expected a positive integer"
        )
    return n


PathLike = str | os.PathLike[str]


def _is_pathlike(obj: object) -> bool:
    if isinstance(obj, str | os.PathLike):
        return True
    return (
        isinstance(obj, Sequence)
        and not isinstance(obj, str | bytes)
        and len(obj) > 0
        and all(isinstance(p, str | os.PathLike) for p in obj)
    )


def expand_paths(obj: PathLike | Sequence[PathLike], table: str) -> list[str]:
    """Expand a path, a glob (``**`` recurses) or a list of them into files."""
    items = [obj] if isinstance(obj, str | os.PathLike) else list(obj)
    files: list[str] = []
    for item in items:
        text = os.fspath(item)
        if any(ch in text for ch in "*?["):
            matches = sorted(glob.glob(text, recursive=True))
            files.extend(m for m in matches if os.path.isfile(m))
        elif os.path.isdir(text):
            files.extend(
                sorted(
                    str(p)
                    for p in Path(text).rglob("*")
                    if p.is_file() and _format_of(str(p)) is not None
                )
            )
        elif os.path.isfile(text):
            files.append(text)
        else:
            raise InputError(f"table '{table}': no such file or directory: {text!r}")
    if not files:
        raise InputError(f"table '{table}': the path {obj!r} matches no file")
    return files


def _format_of(path: str) -> str | None:
    low = path.lower()
    if low.endswith((".parquet", ".pq", ".parq")):
        return "parquet"
    if low.endswith((".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".tsv")):
        return "csv"
    return None


def open_dataset(obj: PathLike | Sequence[PathLike], table: str) -> ds.Dataset:
    files = expand_paths(obj, table)
    formats = {_format_of(f) for f in files}
    if None in formats or len(formats) != 1:
        raise InputError(
            f"table '{table}': cannot tell the format of {files[:3]!r}; "
            "expected files ending in .parquet or .csv (one format per table)"
        )
    fmt = formats.pop()
    assert fmt is not None
    file_format: str | ds.FileFormat = fmt
    if fmt == "parquet":
        # Ids arrive dictionary-encoded: the engine then resolves each
        # distinct id once per batch instead of once per row.
        file_format = ds.ParquetFileFormat(
            read_options=ds.ParquetReadOptions(dictionary_columns=["device_id"])
        )
    try:
        return ds.dataset(files, format=file_format)
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"table '{table}': cannot open {files[:3]!r}: {e}") from e


def _is_polars_lazy(obj: object) -> bool:
    return type(obj).__module__.startswith("polars") and type(obj).__name__ == "LazyFrame"


def _is_pandas(obj: object) -> bool:
    return type(obj).__module__.startswith("pandas") and type(obj).__name__ == "DataFrame"


def to_table(obj: Any, table: str) -> pa.Table:
    """Read a small input table whole."""
    if isinstance(obj, pa.Table):
        return obj
    if isinstance(obj, pa.RecordBatch):
        return pa.Table.from_batches([obj])
    if isinstance(obj, pa.RecordBatchReader):
        return obj.read_all()
    if _is_pathlike(obj):
        return open_dataset(obj, table).to_table()
    if isinstance(obj, ds.Dataset):
        return obj.to_table()
    if isinstance(obj, ds.Scanner):
        return obj.to_table()
    if _is_polars_lazy(obj):
        return pa.table(obj.collect())
    if _is_pandas(obj):
        return pa.Table.from_pandas(obj, preserve_index=False)
    if hasattr(obj, "__arrow_c_stream__"):
        return pa.table(obj)
    if hasattr(obj, "__arrow_c_array__"):
        return pa.Table.from_batches([pa.record_batch(obj)])
    raise SchemaError(
        f"table '{table}': cannot read an object of type {type(obj).__name__}; expected a "
        "pyarrow/polars/duckdb table, an Arrow PyCapsule producer, or a Parquet/CSV path"
    )


def _polars_batches(lf: Any) -> pa.RecordBatchReader:
    """Stream a polars LazyFrame batch by batch (the streaming engine)."""
    names = [c for c in POWER_COLUMNS if c in lf.collect_schema().names()]
    chunks: Iterator[Any] = iter(lf.select(names).collect_batches(lazy=True))
    first = next(chunks, None)
    if first is None:
        empty = pa.table(lf.select(names).head(0).collect())
        return pa.RecordBatchReader.from_batches(empty.schema, [])
    head = pa.table(first)
    schema = head.schema

    def batches() -> Iterator[pa.RecordBatch]:
        yield from head.to_batches()
        for df in chunks:
            yield from pa.table(df).cast(schema).to_batches()

    return pa.RecordBatchReader.from_batches(schema, batches())


def _file_batches(dataset: ds.Dataset) -> tuple[pa.Schema, Iterator[tuple[int, pa.RecordBatch]]]:
    """The projected schema, and (file index, batch) for the power columns of
    a file dataset, one file after the other.

    A whole-dataset scanner reads ahead without a real bound when its
    consumer is slower than the disk (measured: it buffers a large part of
    the data), so files are scanned one at a time: memory stays bounded by
    one file's read-ahead plus the engine's few batches, whatever the number
    of files. Each file's scan still decodes on pyarrow's threads while the
    engine integrates the previous batches on its own.
    """
    names = [c for c in POWER_COLUMNS if c in dataset.schema.names]
    schema = pa.schema([dataset.schema.field(n) for n in names])
    rows = scan_batch_rows()

    def batches() -> Iterator[tuple[int, pa.RecordBatch]]:
        for i, frag in enumerate(dataset.get_fragments()):
            for batch in frag.to_batches(columns=names, batch_size=rows, schema=dataset.schema):
                if batch.num_rows:
                    yield i, batch

    return schema, batches()


def to_stream(obj: Any, table: str = "power") -> Any:
    """Make the sample input an object with ``__arrow_c_stream__``, reading
    only the columns the engine needs where the source can project."""
    if _is_pathlike(obj):
        obj = open_dataset(obj, table)
    if isinstance(obj, ds.FileSystemDataset):
        schema, tagged = _file_batches(obj)
        return pa.RecordBatchReader.from_batches(schema, (b for _, b in tagged))
    if isinstance(obj, ds.Dataset):
        names = [c for c in POWER_COLUMNS if c in obj.schema.names]
        return obj.scanner(columns=names, batch_size=scan_batch_rows()).to_reader()
    if isinstance(obj, ds.Scanner):
        return obj.to_reader()
    if _is_polars_lazy(obj):
        return _polars_batches(obj)
    if _is_pandas(obj):
        return pa.Table.from_pandas(obj, preserve_index=False)
    if isinstance(obj, pa.RecordBatch):
        return pa.Table.from_batches([obj])
    if hasattr(obj, "__arrow_c_stream__"):
        return obj
    if hasattr(obj, "__arrow_c_array__"):
        return pa.Table.from_batches([pa.record_batch(obj)])
    raise SchemaError(
        f"table '{table}': cannot read an object of type {type(obj).__name__}; expected a "
        "pyarrow/polars/duckdb table or stream, an Arrow PyCapsule producer, or a Parquet/CSV path"
    )


def _parquet_rows(fragments: Sequence[Any]) -> int | None:
    """Total rows of Parquet fragments, from their footers (no data read);
    ``None`` when any fragment is not Parquet (CSV has no row count)."""
    total = 0
    for frag in fragments:
        if not isinstance(frag, ds.ParquetFileFragment):
            return None
        total += frag.metadata.num_rows
    return total


def progress_stream(obj: Any, progress: ProgressCallback, table: str = "power") -> Any:
    """``to_stream(obj)``, reporting to ``progress`` as the engine pulls it.

    Path inputs are scanned exactly as ``to_stream`` scans them (same
    read-ahead) and also report files done and, for Parquet, the total row
    count from the footers. The callback runs once before the first batch,
    once per batch (about 2**20 rows, so its cost is negligible) and once
    with ``done=True`` at the end. It runs on the engine's read-ahead thread.
    """
    if _is_pathlike(obj):
        obj = open_dataset(obj, table)
    if isinstance(obj, ds.FileSystemDataset):
        fragments = list(obj.get_fragments())
        schema, tagged = _file_batches(obj)

        def scanned() -> Iterator[pa.RecordBatch]:
            rows_total = _parquet_rows(fragments)
            n_files = len(fragments)
            rows = 0
            progress(Progress(0, rows_total, 0, n_files))
            for files_done, batch in tagged:
                rows += batch.num_rows
                progress(Progress(rows, rows_total, files_done, n_files))
                yield batch
            progress(Progress(rows, rows_total, n_files, n_files, done=True))

        return pa.RecordBatchReader.from_batches(schema, scanned())

    total: int | None = None
    if isinstance(obj, pa.Table | pa.RecordBatch):
        total = obj.num_rows
    elif (
        type(obj).__module__.startswith(("polars", "pandas")) and type(obj).__name__ == "DataFrame"
    ):
        total = len(obj)
    reader = pa.RecordBatchReader.from_stream(to_stream(obj, table))

    def pulled() -> Iterator[pa.RecordBatch]:
        rows = 0
        progress(Progress(0, total))
        for batch in reader:
            rows += batch.num_rows
            progress(Progress(rows, total))
            yield batch
        progress(Progress(rows, total, done=True))

    return pa.RecordBatchReader.from_batches(reader.schema, pulled())
