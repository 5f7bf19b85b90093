"""Exact conversions of user-facing times and durations to epoch nanoseconds."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pyarrow as pa

from .exceptions import InputError

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


# What the engine holds: i64 nanoseconds.
_NS_MIN, _NS_MAX = -(2**63), 2**63 - 1


def to_ns(value: Any, what: str) -> int:
    """A datetime (naive = UTC), date, ISO string, numpy/pandas timestamp or
    integer nanoseconds, as integer nanoseconds since the epoch (within the
    i64 range, years 1677-2262)."""
    ns = _to_ns(value, what)
    if not _NS_MIN <= ns <= _NS_MAX:
        raise InputError(
            f"argument '{what}': {value!r} is outside the nanosecond range (years 1677-2262)"
        )
    return ns


def _to_ns(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise InputError(f"argument '{what}': expected a datetime, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as e:
            raise InputError(f"argument '{what}': cannot parse {value!r} as ISO 8601") from e
    if hasattr(value, "value") and type(value).__name__ == "Timestamp":  # pandas
        return int(value.value)
    if type(value).__name__ == "datetime64":  # numpy
        return int(value.astype("datetime64[ns]").astype("int64"))
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
        delta = aware - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    if isinstance(value, dt.date):
        return (value - _EPOCH.date()).days * 86_400 * 1_000_000_000
    raise InputError(f"argument '{what}': expected a datetime, got {type(value).__name__}")


def duration_ns(value: Any, what: str) -> int:
    """A timedelta (exact) or seconds (rounded to the nearest nanosecond)."""
    if isinstance(value, dt.timedelta):
        ns = (value.days * 86_400 + value.seconds) * 1_000_000_000 + value.microseconds * 1_000
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if value != value or value in (float("inf"), float("-inf")):
            raise InputError(f"argument '{what}': expected a finite duration, got {value!r}")
        ns = round(value * 1e9)
    else:
        raise InputError(
            f"argument '{what}': expected a timedelta or seconds, got {type(value).__name__}"
        )
    if ns < 0:
        raise InputError(f"argument '{what}': expected a duration >= 0, got {value!r}")
    if ns > _NS_MAX:
        raise InputError(
            f"argument '{what}': {value!r} is longer than the nanosecond range (292 years)"
        )
    return int(ns)


def zones_as_utc(table: pa.Table) -> pa.Table:
    """``table`` with its fixed-offset timestamp columns ("+05:30", "Z") as
    the same instants in UTC: polars parses only zone names (and whole-hour
    offsets)."""
    for i, field in enumerate(table.schema):
        tz = field.type.tz if pa.types.is_timestamp(field.type) else None
        if tz and tz[0] in "+-Z":
            utc = pa.timestamp(field.type.unit, tz="UTC")
            table = table.set_column(i, field.name, table.column(i).cast(utc))
    return table


def to_polars(table: pa.Table) -> pl.DataFrame:
    """``pl.from_arrow(table)`` with fixed-offset zones as UTC (on such a
    zone polars raises, or panics, depending on the column's layout)."""
    df = pl.from_arrow(zones_as_utc(table))
    assert isinstance(df, pl.DataFrame)
    return df


def utc_datetime(ns: int) -> dt.datetime:
    """An instant in ns since the epoch as an aware UTC datetime (to the
    microsecond: datetime has no finer unit)."""
    return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=ns // 1000)
