"""Exact conversions of user-facing times and durations to epoch nanoseconds."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .exceptions import InputError

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def to_ns(value: Any, what: str) -> int:
    """A datetime (naive = UTC), date, ISO string, numpy/pandas timestamp or
    integer nanoseconds, as integer nanoseconds since the epoch."""
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
    return int(ns)
