"""Turning whatever the caller passes into Arrow: tables for the small inputs,
a stream of record batches for the samples. Nothing is copied that Arrow's
PyCapsule interface can hand over as it is."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from . import _native
from .exceptions import InputError, SchemaError
from .progress import Progress, ProgressCallback

# What the engine reads of a power source: ids, times, the value column and
# the optional utilization (a fraction, or percent as utilization_pct).
POWER_COLUMNS = ("device_id", "ts", "power_w", "energy_j", "utilization", "utilization_pct")
VALUE_COLUMNS = ("power_w", "energy_j")

# ``columns=``: {canonical: the user's name}, flat (every table that has the
# user's column and lacks the canonical one) or per table ({table: {...}}).
Columns = Mapping[str, "str | Mapping[str, str]"]
# Rows per scanned batch: large enough that per-batch work is amortized,
# small enough that a few batches read ahead stay well under 100 MB.
SCAN_BATCH_ROWS = 1 << 20
# Rows per batch of the native Parquet reader: its batches are decoded on
# one thread and integrated on another. At 2^18 rows (about 5 MB) the
# allocator still reuses their memory (at 2^20 fresh pages faulted in cost
# a fifth of the CPU), and per-batch costs stay small (2^16-row batches
# were the slowest of 2^16-2^18 at 10^8: benches/RESULTS.md, "Parquet read:
# system calls").
NATIVE_SCAN_BATCH_ROWS = 1 << 18


def scan_batch_rows(default: int = SCAN_BATCH_ROWS) -> int:
    """Rows per scanned batch: ``CARBONLEDGER_SCAN_BATCH_ROWS`` or ``default``."""
    raw = os.environ.get("CARBONLEDGER_SCAN_BATCH_ROWS")
    if not raw:
        return default
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


def table_columns(columns: Columns | None, table: str) -> dict[str, str]:
    """The ``columns=`` mapping for one table, ``{canonical: user's name}``:
    the table's own entries over the flat ones."""
    if not columns:
        return {}
    if not isinstance(columns, Mapping):
        raise InputError(
            f"argument 'columns': got {type(columns).__name__}; expected a mapping such as "
            '{"ts": "timestamp"} or {"power": {"ts": "timestamp"}}'
        )
    out: dict[str, str] = {}
    own: dict[str, str] = {}
    for key, value in columns.items():
        if isinstance(value, str):
            out[str(key)] = value
        elif isinstance(value, Mapping):
            if key == table:
                for k, v in value.items():
                    if not isinstance(v, str):
                        raise InputError(
                            f"argument 'columns': {key}.{k} maps to {v!r}; expected a column name"
                        )
                    own[str(k)] = v
        else:
            raise InputError(
                f"argument 'columns': {key!r} maps to {value!r}; expected a column name or, "
                "for a table name, a mapping of its columns"
            )
    out.update(own)
    return out


def applicable(mapping: Mapping[str, str], names: Sequence[str]) -> dict[str, str]:
    """The entries of ``mapping`` that apply to columns ``names``: the user's
    column is there and the canonical one is not."""
    return {c: u for c, u in mapping.items() if u in names and c not in names}


def rename_table(t: pa.Table, mapping: Mapping[str, str]) -> pa.Table:
    """``t`` with the user's column names mapped to carbonledger's (no copy)."""
    use = applicable(mapping, t.column_names)
    if not use:
        return t
    back = {u: c for c, u in use.items()}
    return t.rename_columns([back.get(n, n) for n in t.column_names])


def _renamed_reader(reader: pa.RecordBatchReader, mapping: Mapping[str, str]) -> Any:
    """A reader whose batches carry carbonledger's column names (no copy)."""
    use = applicable(mapping, reader.schema.names)
    if not use:
        return reader
    back = {u: c for c, u in use.items()}
    names = [back.get(n, n) for n in reader.schema.names]
    schema = pa.schema([f.with_name(n) for f, n in zip(reader.schema, names, strict=True)])

    def batches() -> Iterator[pa.RecordBatch]:
        for b in reader:
            yield pa.RecordBatch.from_arrays(b.columns, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def source_files(obj: PathLike | Sequence[PathLike], table: str) -> tuple[list[str], str]:
    """The files a path, glob or list names, and their one format."""
    files = expand_paths(obj, table)
    formats = {_format_of(f) for f in files}
    if None in formats or len(formats) != 1:
        raise InputError(
            f"table '{table}': cannot tell the format of {files[:3]!r}; "
            "expected files ending in .parquet or .csv (one format per table)"
        )
    fmt = formats.pop()
    assert fmt is not None
    return files, fmt


def open_dataset(
    obj: PathLike | Sequence[PathLike], table: str, mapping: Mapping[str, str] | None = None
) -> ds.Dataset:
    files, fmt = source_files(obj, table)
    file_format: str | ds.FileFormat = fmt
    if fmt == "parquet":
        # Ids arrive dictionary-encoded: the engine then resolves each
        # distinct id once per batch instead of once per row.
        ids = (mapping or {}).get("device_id", "device_id")
        file_format = ds.ParquetFileFormat(
            read_options=ds.ParquetReadOptions(dictionary_columns=sorted({ids, "device_id"}))
        )
    try:
        return ds.dataset(files, format=file_format)
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"table '{table}': cannot open {files[:3]!r}: {e}") from e


def _is_polars_lazy(obj: object) -> bool:
    return type(obj).__module__.startswith("polars") and type(obj).__name__ == "LazyFrame"


def _is_pandas(obj: object) -> bool:
    return type(obj).__module__.startswith("pandas") and type(obj).__name__ == "DataFrame"


def to_table(obj: Any, table: str, columns: Columns | None = None) -> pa.Table:
    """Read a small input table whole, the user's column names mapped to
    carbonledger's (``columns=``)."""
    return rename_table(_read_table(obj, table), table_columns(columns, table))


def _read_table(obj: Any, table: str) -> pa.Table:
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


def _polars_batches(lf: Any, mapping: Mapping[str, str] | None = None) -> pa.RecordBatchReader:
    """Stream a polars LazyFrame batch by batch (the streaming engine)."""
    use = applicable(mapping or {}, lf.collect_schema().names())
    if use:
        lf = lf.rename({u: c for c, u in use.items()})
    names = _projection(lf.collect_schema().names())
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


def _file_batches(
    dataset: ds.Dataset, mapping: Mapping[str, str] | None = None
) -> tuple[pa.Schema, Iterator[tuple[int, pa.RecordBatch]]]:
    """The projected schema, and (file index, batch) for the power columns of
    a file dataset, one file after the other.

    A whole-dataset scanner reads ahead without a real bound when its
    consumer is slower than the disk (measured: it buffers a large part of
    the data), so files are scanned one at a time: memory stays bounded by
    one file's read-ahead plus the engine's few batches, whatever the number
    of files. Each file's scan still decodes on pyarrow's threads while the
    engine integrates the previous batches on its own.
    """
    use = applicable(mapping or {}, dataset.schema.names)
    back = {u: c for c, u in use.items()}
    canonical = [back.get(n, n) for n in dataset.schema.names]
    names = _projection(canonical)
    actual = {c: use.get(c, c) for c in names}
    schema = pa.schema([dataset.schema.field(actual[n]).with_name(n) for n in names])
    # Renaming is a projection expression; without a mapping plain names.
    columns: list[str] | dict[str, Any] = {n: ds.field(actual[n]) for n in names} if use else names
    rows = scan_batch_rows()

    def batches() -> Iterator[tuple[int, pa.RecordBatch]]:
        for i, frag in enumerate(dataset.get_fragments()):
            for batch in frag.to_batches(columns=columns, batch_size=rows, schema=dataset.schema):
                if batch.num_rows:
                    yield i, batch

    return schema, batches()


def _projection(names: Sequence[str]) -> list[str]:
    """The columns the engine reads: the power columns present or, when a
    required one is missing, every column, so the schema error names what
    the input really has (the run fails before any batch is read)."""
    have = [c for c in POWER_COLUMNS if c in names]
    complete = {"device_id", "ts"} <= set(have) and any(v in have for v in VALUE_COLUMNS)
    return have if complete else list(names)


def check_source_files(
    dataset: ds.FileSystemDataset, mapping: Mapping[str, str], label: str
) -> None:
    """Every file of one power source has the same power columns (SPEC 2):
    a dataset takes its schema from the first file, so a file with another
    value column would read as nulls, i.e. invalid samples, not an error."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for frag in dataset.get_fragments():
        names = frag.physical_schema.names
        use = applicable(mapping, names)
        back = {u: c for c, u in use.items()}
        have = tuple(c for c in POWER_COLUMNS if c in {back.get(n, n) for n in names})
        groups.setdefault(have, []).append(frag.path)
    if len(groups) <= 1:
        return
    parts = "; ".join(
        f"{len(files)} file(s) with {list(cols)} (e.g. {files[0]!r})"
        for cols, files in sorted(groups.items(), key=lambda kv: -len(kv[1]))
    )
    raise SchemaError(
        f"table 'power' ({label}): the files of one source disagree on their columns: {parts}; "
        "expected one schema per source: give each kind as its own source, e.g. "
        "power=['fleet/power', 'fleet/power_counters'] (CLI: --power DIR1 --power DIR2)"
    )


def power_sources(obj: Any) -> list[Any]:
    """``power`` as a list of sources (SPEC 2): a list or tuple is one
    source per item (a path, glob, table or stream), anything else one."""
    if isinstance(obj, list | tuple):
        if not obj:
            raise InputError("argument 'power': an empty list; expected at least one source")
        return list(obj)
    return [obj]


def _source_label(obj: Any, index: int) -> str:
    if isinstance(obj, str | os.PathLike):
        return f"source {index}: {os.fspath(obj)!r}"
    return f"source {index}: {type(obj).__name__}"


def open_power(obj: Any, columns: Columns | None) -> list[Any]:
    """Each power source opened: Parquet paths become a native
    ``ParquetScan`` (read and decoded in Rust, footers checked to agree),
    CSV paths datasets whose files were checked to agree; other objects are
    returned as they are."""
    mapping = table_columns(columns, "power")
    out = []
    for i, src in enumerate(power_sources(obj)):
        label = _source_label(src, i)
        if _is_pathlike(src):
            files, fmt = source_files(src, "power")
            if fmt == "parquet":
                out.append(
                    _native.ParquetScan(
                        files, dict(mapping), label, scan_batch_rows(NATIVE_SCAN_BATCH_ROWS)
                    )
                )
                continue
            src = open_dataset(src, "power", mapping)
        if isinstance(src, ds.FileSystemDataset):
            check_source_files(src, mapping, label)
        out.append(src)
    return out


def to_stream(obj: Any, table: str = "power", mapping: Mapping[str, str] | None = None) -> Any:
    """Make the sample input an object with ``__arrow_c_stream__``, reading
    only the columns the engine needs where the source can project, with
    the user's column names mapped to carbonledger's (``mapping``)."""
    mapping = mapping or {}
    if isinstance(obj, _native.ParquetScan):
        return obj
    if _is_pathlike(obj):
        obj = open_dataset(obj, table, mapping)
    if isinstance(obj, ds.FileSystemDataset):
        schema, tagged = _file_batches(obj, mapping)
        return pa.RecordBatchReader.from_batches(schema, (b for _, b in tagged))
    if isinstance(obj, ds.Dataset):
        use = applicable(mapping, obj.schema.names)
        back = {u: c for c, u in use.items()}
        names = _projection([back.get(n, n) for n in obj.schema.names])
        cols = {n: ds.field(use.get(n, n)) for n in names}
        return obj.scanner(columns=cols, batch_size=scan_batch_rows()).to_reader()
    if isinstance(obj, ds.Scanner):
        return _renamed_reader(obj.to_reader(), mapping)
    if _is_polars_lazy(obj):
        return _polars_batches(obj, mapping)
    if _is_pandas(obj):
        return rename_table(pa.Table.from_pandas(obj, preserve_index=False), mapping)
    if isinstance(obj, pa.RecordBatch):
        return rename_table(pa.Table.from_batches([obj]), mapping)
    if isinstance(obj, pa.Table):
        return rename_table(obj, mapping)
    if isinstance(obj, pa.RecordBatchReader):
        return _renamed_reader(obj, mapping)
    if hasattr(obj, "__arrow_c_stream__"):
        if mapping and hasattr(obj, "__arrow_c_schema__"):
            if applicable(mapping, pa.schema(obj).names):
                return _renamed_reader(pa.RecordBatchReader.from_stream(obj), mapping)
        elif mapping:
            return _renamed_reader(pa.RecordBatchReader.from_stream(obj), mapping)
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


class _Tally:
    """Rows and files pulled so far over every source, told to ``progress``.

    Sources are read one after the other: ``batch(k, file, rows)`` after
    each batch of source ``k`` (``file`` is the index of the batch's file in
    the source, -1 when the source has no files), ``end(k)`` once it is
    exhausted. The first call reports a start at zero; the end of the last
    source reports ``done=True``.
    """

    def __init__(
        self,
        files_per_source: list[int],
        rows_total: int | None,
        files_total: int | None,
        progress: ProgressCallback,
    ) -> None:
        self.files_per_source = files_per_source
        self.files_before = [sum(files_per_source[:k]) for k in range(len(files_per_source))]
        self.rows_total, self.files_total = rows_total, files_total
        self.progress = progress
        self.rows = self.files = 0
        self.started = False

    def _report(self, done: bool = False) -> None:
        self.progress(Progress(self.rows, self.rows_total, self.files, self.files_total, done))

    def _start(self) -> None:
        if not self.started:
            self.started = True
            self._report()

    def batch(self, k: int, file: int, rows: int) -> None:
        self._start()
        self.rows += rows
        if file >= 0:
            self.files = self.files_before[k] + file
        self._report()

    def end(self, k: int) -> None:
        self._start()
        self.files = self.files_before[k] + self.files_per_source[k]
        if k == len(self.files_per_source) - 1:
            self._report(done=True)

    def hook(self, k: int) -> Callable[[int, int, bool], None]:
        """The native engine's hook for source ``k``: ``(file, rows, False)``
        after each batch, ``(-1, 0, True)`` at the end."""

        def tell(file: int, rows: int, end: bool) -> None:
            if end:
                self.end(k)
            else:
                self.batch(k, file, rows)

        return tell


def progress_streams(
    sources: Sequence[Any], mapping: Mapping[str, str], progress: ProgressCallback
) -> tuple[list[Any], list[Callable[[int, int, bool], None] | None]]:
    """``to_stream`` of each opened power source, and the hooks by which the
    engine reports to ``progress`` as it pulls them (counts summed over the
    sources; totals from Parquet footers and in-memory sizes).

    Native Parquet scans and plain streams report through the engine's hook
    (``None`` here: the stream reports itself); CSV datasets are scanned as
    ``to_stream`` scans them, by a generator that also knows each batch's
    file. The callback runs once before the first batch, once per batch
    (about 2**20 rows, so its cost is negligible) and once with
    ``done=True`` at the end, on the engine's read-ahead thread.
    """
    files_per_source: list[int] = []
    rows_total: int | None = 0
    files_total: int | None = 0
    for src in sources:
        n: int | None = None
        if isinstance(src, _native.ParquetScan):
            n, files = src.num_rows, src.num_files
        elif isinstance(src, ds.FileSystemDataset):
            fragments = list(src.get_fragments())
            n, files = _parquet_rows(fragments), len(fragments)
        else:
            files = 0
            files_total = None
            if isinstance(src, pa.Table | pa.RecordBatch):
                n = src.num_rows
            elif (
                type(src).__module__.startswith(("polars", "pandas"))
                and type(src).__name__ == "DataFrame"
            ):
                n = len(src)
        rows_total = None if rows_total is None or n is None else rows_total + n
        files_total = None if files_total is None else files_total + files
        files_per_source.append(files)
    tally = _Tally(files_per_source, rows_total, files_total, progress)

    streams: list[Any] = []
    hooks: list[Callable[[int, int, bool], None] | None] = []
    for k, src in enumerate(sources):
        if isinstance(src, ds.FileSystemDataset):
            schema, tagged = _file_batches(src, mapping)
            streams.append(pa.RecordBatchReader.from_batches(schema, _tallied(tally, k, tagged)))
            hooks.append(None)
        else:
            streams.append(to_stream(src, "power", mapping))
            hooks.append(tally.hook(k))
    return streams, hooks


def _tallied(
    tally: _Tally, k: int, tagged: Iterator[tuple[int, pa.RecordBatch]]
) -> Iterator[pa.RecordBatch]:
    for file, batch in tagged:
        tally.batch(k, file, batch.num_rows)
        yield batch
    tally.end(k)


def power_schema(stream: Any) -> pa.Schema | None:
    """The Arrow schema of a sample stream made by ``to_stream`` or
    ``progress_stream``, without pulling a batch; ``None`` for a producer
    whose schema only its stream tells (exporting that stream may run a
    query), so callers skip what needs it."""
    if isinstance(stream, pa.RecordBatchReader | pa.Table | pa.RecordBatch):
        return stream.schema
    if isinstance(stream, _native.ParquetScan):
        return pa.schema(stream)
    try:
        if hasattr(stream, "__arrow_c_schema__"):
            return pa.schema(stream)
        module, name = type(stream).__module__, type(stream).__name__
        if module.startswith("polars") and name == "DataFrame":
            return stream.head(0).to_arrow().schema
        if module.startswith("duckdb") and hasattr(stream, "limit"):
            return stream.limit(0).to_arrow_table().schema
    except Exception:  # a schema is only a nicety here: never fail the run for it
        return None
    return None
