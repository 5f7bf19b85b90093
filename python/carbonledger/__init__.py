"""carbonledger: exact carbon accounting for AI compute fleets.

An AI job's footprint is operational carbon (energy x PUE x grid carbon
intensity) plus embodied carbon (manufacturing, amortized over the hardware's
life), attributed to the jobs that used the hardware and to the idle capacity
they left (Wu et al., *Sustainable AI*, MLSys 2022). See ``SPEC.md`` and
``docs/methodology.md``.
"""

from __future__ import annotations

from . import polars_ns as polars_ns  # registers df.carbon / lf.carbon
from ._native import __version__ as __version__  # the workspace's version (Cargo.toml)
from .accounting import account
from .diagnostics import LedgerWarning
from .exceptions import (
    CarbonLedgerError,
    CoverageError,
    InputError,
    InternalError,
    InvalidSampleError,
    OrderError,
    OverlapError,
    SchemaError,
    SuspiciousResultError,
    UnknownIdError,
)
from .report import METRIC_COLUMNS, Report
from .validation import Problem, Validation, validate

__all__ = [
    "METRIC_COLUMNS",
    "CarbonLedgerError",
    "CoverageError",
    "InputError",
    "InternalError",
    "InvalidSampleError",
    "LedgerWarning",
    "OrderError",
    "OverlapError",
    "Problem",
    "Report",
    "SchemaError",
    "SuspiciousResultError",
    "UnknownIdError",
    "Validation",
    "account",
    "validate",
]
