"""The synthetic in-memory fleet of the quick benchmarks: ``n_dev`` devices
sampled every second for ``n_per`` seconds, in time order (every device's
sample at one tick, then the next tick), one site and hourly intensity."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

T0_NS = 1_700_000_000 * 10**9
HOUR_NS = 3600 * 10**9


@dataclass(frozen=True)
class Fleet:
    """The power columns as arrays, and the small tables."""

    ids: pa.Array  # device_id per sample (plain strings)
    ts: np.ndarray  # epoch ns per sample
    power_w: np.ndarray
    devices: pa.Table
    sites: pa.Table
    intensity: pa.Table

    def power(self, ids: pa.Array | None = None, batch_rows: int = 1 << 20) -> pa.Table:
        """The samples as a table of ``batch_rows``-row batches, with
        ``ids`` (any layout) in place of the plain-string ids."""
        t = pa.table(
            {
                "device_id": self.ids if ids is None else ids,
                "ts": pa.array(self.ts, pa.timestamp("ns", "UTC")),
                "power_w": pa.array(self.power_w),
            }
        )
        return pa.Table.from_batches(t.to_batches(max_chunksize=batch_rows))


def build(n_dev: int, n_per: int, seed: int = 1) -> Fleet:
    rng = np.random.default_rng(seed)
    names = np.array([f"gpu-{i:05d}" for i in range(n_dev)])
    ts = np.repeat(T0_NS + np.arange(n_per, dtype=np.int64) * 10**9, n_dev)
    power_w = rng.uniform(60, 400, n_dev * n_per)
    devices = pa.table(
        {
            "device_id": names,
            "site_id": ["s"] * n_dev,
            "embodied_kgco2e": [150.0] * n_dev,
            "installed_at": pa.array([dt.datetime(2023, 1, 1)] * n_dev, pa.timestamp("ns")),
            "lifetime_years": [5.0] * n_dev,
        }
    )
    sites = pa.table({"site_id": ["s"], "region": ["R"], "pue": [1.2]})
    hours = np.arange(T0_NS - HOUR_NS, T0_NS + n_per * 10**9 + 2 * HOUR_NS, HOUR_NS)
    intensity = pa.table(
        {
            "region": ["R"] * len(hours),
            "start": pa.array(hours, pa.timestamp("ns", "UTC")),
            "gco2e_per_kwh": rng.uniform(50, 500, len(hours)),
        }
    )
    return Fleet(pa.array(np.tile(names, n_per)), ts, power_w, devices, sites, intensity)
