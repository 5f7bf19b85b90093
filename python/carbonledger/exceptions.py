"""The exceptions carbonledger raises.

Every message names the table, the column, the offending value or id, and what
was expected. All input problems derive from :class:`InputError` (itself a
``ValueError``), so ``except ValueError`` keeps working for callers that do not
care which rule was broken.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .diagnostics import LedgerWarning

__all__ = [
    "CarbonLedgerError",
    "CoverageError",
    "InputError",
    "InternalError",
    "InvalidSampleError",
    "OrderError",
    "OverlapError",
    "SchemaError",
    "SuspiciousResultError",
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


class SuspiciousResultError(InputError):
    """``strict=True`` (``--strict``) and the run gave warnings: results
    that are almost certainly a mistake (see ``carbonledger.diagnostics``).
    The message lists every warning; ``warnings`` holds them."""

    def __init__(self, warnings: Sequence[LedgerWarning]) -> None:
        self.warnings: list[LedgerWarning] = list(warnings)
        lines = "".join(f"\n  - {w}" for w in self.warnings)
        super().__init__(
            f"strict: {len(self.warnings)} warning(s), so no result is returned or written:{lines}"
        )


class InternalError(CarbonLedgerError):
    """A bug in carbonledger itself; please report it with the message."""
