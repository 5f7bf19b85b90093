"""From real telemetry to carbonledger's canonical tables.

Fleet operators have DCGM exporter scrapes in Prometheus, ``nvidia-smi`` CSV
logs, RAPL and NVML energy counters, Slurm accounting and Kubernetes pod
records, not tidy ``power`` and ``allocations`` tables. Each adapter here
reads one of those formats as it is written by its tool, streaming (a power
adapter returns a ``pyarrow.RecordBatchReader`` that ``carbonledger.account``
takes directly), and ``carbonledger ingest FORMAT ... --out DIR`` writes the
result as Parquet (``DIR/power/day=YYYY-MM-DD/part-0.parquet`` partitioned by
UTC day, or ``DIR/allocations.parquet``).
"""

from __future__ import annotations

from ._common import (
    ALLOCATIONS_SCHEMA,
    ENERGY_J_SCHEMA,
    POWER_W_SCHEMA,
    Format,
    WriteSummary,
    write_allocations,
    write_power,
)

__all__ = [
    "ALLOCATIONS_SCHEMA",
    "ENERGY_J_SCHEMA",
    "POWER_W_SCHEMA",
    "Format",
    "WriteSummary",
    "formats",
    "write_allocations",
    "write_power",
]


def formats() -> dict[str, Format]:
    """Every ``carbonledger ingest`` format by name. Each adapter module
    lists its own in a ``FORMATS`` tuple; they are imported on first use so
    that ``import carbonledger`` does not pay for them."""
    from . import counters, dcgm_hpc, kubernetes, nvidia_smi, prometheus, slurm

    out: dict[str, Format] = {}
    for module in (prometheus, nvidia_smi, counters, slurm, dcgm_hpc, kubernetes):
        for f in module.FORMATS:
            out[f.name] = f
    return out
