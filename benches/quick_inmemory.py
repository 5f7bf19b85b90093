"""In-memory throughput against a numpy trapezoid pass over the same buffers.

python benches/quick_inmemory.py [devices] [samples_per_device]
"""

from __future__ import annotations

import datetime as dt
import sys
import time

import numpy as np
import pyarrow as pa

import carbonledger as cl


def main() -> None:
    n_dev = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    n_per = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    n = n_dev * n_per
    rng = np.random.default_rng(1)
    t0 = 1_700_000_000 * 10**9
    ts_1 = t0 + np.arange(n_per, dtype=np.int64) * 10**9
    ids = np.array([f"gpu-{i:05d}" for i in range(n_dev)])
    # time order: ts then device
    ts = np.repeat(ts_1, n_dev)
    dev = np.tile(ids, n_per)
    p = rng.uniform(60, 400, n)
    power = pa.table(
        {
            "device_id": pa.array(dev),
            "ts": pa.array(ts, pa.timestamp("ns", "UTC")),
            "power_w": pa.array(p),
        }
    )
    power = pa.Table.from_batches(power.to_batches(max_chunksize=1 << 20))
    devices = pa.table(
        {
            "device_id": ids,
            "site_id": ["s"] * n_dev,
            "embodied_kgco2e": [150.0] * n_dev,
            "installed_at": pa.array([dt.datetime(2023, 1, 1)] * n_dev, pa.timestamp("ns")),
            "lifetime_years": [5.0] * n_dev,
        }
    )
    sites = pa.table({"site_id": ["s"], "region": ["R"], "pue": [1.2]})
    hours = np.arange(t0 - 3600 * 10**9, t0 + (n_per + 7200) * 10**9, 3600 * 10**9)
    intensity = pa.table(
        {
            "region": ["R"] * len(hours),
            "start": pa.array(hours, pa.timestamp("ns", "UTC")),
            "gco2e_per_kwh": rng.uniform(50, 500, len(hours)),
        }
    )
    # numpy baseline: one trapezoid pass over the same buffers
    tsf = ts.astype(np.int64)
    best_np = 1e9
    for _ in range(3):
        s = time.perf_counter()
        dtv = np.diff(tsf)
        _ = float(np.sum(dtv * (p[1:] + p[:-1])) * 0.5e-9)
        best_np = min(best_np, time.perf_counter() - s)
    best = 1e9
    for _ in range(3):
        s = time.perf_counter()
        cl.account(power, devices, sites, intensity)
        best = min(best, time.perf_counter() - s)
    print(f"samples {n:,}  devices {n_dev}")
    print(f"numpy trapezoid pass : {n / best_np / 1e6:8.1f} M samples/s")
    print(f"carbonledger account : {n / best / 1e6:8.1f} M samples/s  (ratio {best_np / best:.2f})")


if __name__ == "__main__":
    main()
