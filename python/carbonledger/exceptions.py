"""The exceptions carbonledger raises.

Every message names the table, the column, the offending value or id, and what
was expected. All input problems derive from :class:`InputError` (itself a
``ValueError``), so ``except ValueError`` keeps working for callers that do not
care which rule was broken.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

# The tree is created once by the native module (its errors are raised as
# these very classes); it is defined there and only re-exported here.
from ._native import (
    CarbonLedgerError,
    CoverageError,
    InputError,
    InternalError,
    InvalidSampleError,
    OrderError,
    OverlapError,
    SchemaError,
    UnknownIdError,
)

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
