"""The compiled core (``rust/carbonledger-py``); checked against the module by
``mypy.stubtest`` in ``make test``. Use the typed API in ``carbonledger``."""

from collections.abc import Callable
from typing import Protocol, final

__version__: str
METRIC_COLUMNS: list[str]
__all__ = [
    "METRIC_COLUMNS",
    "CarbonLedgerError",
    "CoverageError",
    "InputError",
    "InternalError",
    "InvalidSampleError",
    "OrderError",
    "OverlapError",
    "ParquetScan",
    "SchemaError",
    "UnknownIdError",
    "__version__",
    "account",
    "validate",
]

class _ArrowStream(Protocol):
    """Anything with the Arrow PyCapsule stream interface (pyarrow, polars,
    duckdb, arro3, ...)."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...

class _ArrowSchema(Protocol):
    def __arrow_c_schema__(self) -> object: ...

class CarbonLedgerError(Exception):
    """Base of every carbonledger error."""

class InputError(CarbonLedgerError, ValueError):
    """An input value is outside its domain (e.g. ``end <= start``, ``pue < 1``)."""

class SchemaError(InputError):
    """A required column is missing or has a type that cannot be read."""

class UnknownIdError(InputError):
    """An id refers to nothing: ``device_id`` not in devices, unknown ``site_id``."""

class CoverageError(InputError):
    """Grid intensity rows leave a hole, or overlap, inside the period."""

class OverlapError(InputError):
    """Allocation shares on one device sum above 1 inside the period."""

class OrderError(InputError):
    """A device's samples go back in time in a stream not asked to sort."""

class InvalidSampleError(InputError):
    """A NaN, infinite or negative sample with ``on_invalid="raise"``, or a
    sample above the power ceiling."""

class InternalError(CarbonLedgerError):
    """A bug in carbonledger itself; please report it with the message."""

@final
class ParquetScan:
    """The Parquet files of one power source, read and decoded in Rust:
    footers read and checked to agree on their power columns (SPEC 2);
    ``columns`` maps carbonledger's names to the user's. The schema is the
    first file's power columns (Arrow PyCapsule interface)."""

    def __new__(
        cls, paths: list[str], columns: dict[str, str], label: str, batch_rows: int = 1048576
    ) -> ParquetScan: ...
    @property
    def num_rows(self) -> int:
        """Rows in all files, from their footers."""
    @property
    def num_files(self) -> int: ...
    def __arrow_c_schema__(self) -> object: ...

def account(
    power: list[_ArrowStream | ParquetScan],
    devices: _ArrowStream,
    sites: _ArrowStream,
    intensity: _ArrowStream,
    allocations: _ArrowStream | None = None,
    *,
    period: tuple[int, int] | None = None,
    interpolation: str = "linear",
    max_gap_ns: int = 300_000_000_000,
    gap_fill: str = "none",
    on_invalid: str = "drop",
    overlap: str = "error",
    sort: bool = False,
    threads: int | None = None,
    max_power_w: float = 1e6,
    execution_idle_below: float = 0.05,
    attribution: str = "share",
    progress: list[Callable[[int, int, bool], None] | None] = ...,
) -> tuple[
    _ArrowStream, _ArrowStream, _ArrowStream, _ArrowStream, tuple[int, int], tuple[int, int, int]
]:
    """Account ``power`` (one stream or Parquet scan per source) against the
    small tables. ``progress[k]``, if given, is called ``(file, rows, False)``
    after each batch of source ``k`` (``file`` -1 for a stream) and
    ``(-1, 0, True)`` once it is exhausted.

    Returns the complete SPEC 9 tables (each allocation's input columns and
    each device's id echoed): allocations (input order), unallocated and
    devices (devices order), and the grid, as Arrow tables; and the settled
    period ``(start, end)`` in ns since the epoch.
    """

def validate(
    devices: _ArrowStream,
    sites: _ArrowStream,
    intensity: _ArrowStream,
    allocations: _ArrowStream | None = None,
    *,
    power_schemas: list[_ArrowSchema] = ...,
    period: tuple[int, int] | None = None,
    overlap: str = "error",
    attribution: str = "share",
) -> tuple[list[tuple[str, str]], int]:
    """Every problem of the small tables as ``(exception class name,
    message)``, and how many more were found beyond those listed."""
