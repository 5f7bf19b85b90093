"""The exceptions carbonledger raises.

Every message names the table, the column, the offending value or id, and what
was expected. All input problems derive from :class:`InputError` (itself a
``ValueError``), so ``except ValueError`` keeps working for callers that do not
care which rule was broken.
"""

from __future__ import annotations

__all__ = [
    "CarbonLedgerError",
    "CoverageError",
    "InputError",
    "InternalError",
    "InvalidSampleError",
    "OrderError",
    "OverlapError",
    "SchemaError",
    "UnknownIdError",
]


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
    """A NaN, infinite or negative sample with ``on_invalid="raise"``."""


class InternalError(CarbonLedgerError):
    """A bug in carbonledger itself; please report it with the message."""
