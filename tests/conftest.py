"""Shared builders: the SPEC section 12 fleet and small helpers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 1, 1, tzinfo=UTC)
TS = pa.timestamp("ns", tz="UTC")


def at(s: float) -> dt.datetime:
    """Seconds after 2025-01-01T00:00:00Z."""
    return T0 + dt.timedelta(seconds=s)


def power_table(rows: list[tuple[Any, float, float]], col: str = "power_w") -> pa.Table:
    return pa.table(
        {
            "device_id": [r[0] for r in rows],
            "ts": pa.array([at(r[1]) for r in rows], TS),
            col: pa.array([r[2] for r in rows], pa.float64()),
        }
    )


def devices_table(**over: Any) -> pa.Table:
    cols: dict[str, Any] = {
        "device_id": ["g0"],
        "site_id": ["s1"],
        "embodied_kgco2e": [150.0],
        "installed_at": pa.array([dt.datetime(2024, 1, 1, tzinfo=UTC)], TS),
        "lifetime_years": [4.0],
    }
    cols.update(over)
    return pa.table(cols)


def sites_table(**over: Any) -> pa.Table:
    cols: dict[str, Any] = {"site_id": ["s1"], "region": ["R"], "pue": [1.5]}
    cols.update(over)
    return pa.table(cols)


def intensity_table(rows: list[tuple[float, float | None, float]], **extra: Any) -> pa.Table:
    cols: dict[str, Any] = {
        "region": ["R"] * len(rows),
        "start": pa.array([at(r[0]) for r in rows], TS),
        "end": pa.array([None if r[1] is None else at(r[1]) for r in rows], TS),
        "gco2e_per_kwh": [r[2] for r in rows],
    }
    cols.update(extra)
    return pa.table(cols)


def allocations_table(rows: list[tuple[str, Any, float, float, float]], **extra: Any) -> pa.Table:
    cols: dict[str, Any] = {
        "job_id": [r[0] for r in rows],
        "device_id": [r[1] for r in rows],
        "start": pa.array([at(r[2]) for r in rows], TS),
        "end": pa.array([at(r[3]) for r in rows], TS),
        "share": [r[4] for r in rows],
    }
    cols.update(extra)
    return pa.table(cols)


@pytest.fixture
def spec12() -> dict[str, Any]:
    """The SPEC section 12 worked example, as keyword arguments of account()."""
    return {
        "power": power_table([("g0", 0, 100), ("g0", 10, 300), ("g0", 20, 300), ("g0", 40, 100)]),
        "devices": devices_table(),
        "sites": sites_table(),
        "intensity": intensity_table([(0, 15, 400), (15, 60, 100)], cfe=[0.25, 0.25]),
        "allocations": allocations_table([("A", "g0", 5, 25, 1.0)], phase=["training"]),
        "period": (at(0), at(40)),
        "max_gap": 15,
    }
