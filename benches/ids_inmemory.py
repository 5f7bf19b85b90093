"""In-memory throughput by device-id layout: plain, large and view strings
against dictionary ids, on one table, interleaved, best of several runs.

python benches/ids_inmemory.py [devices] [samples_per_device] [runs] [batch_rows]
"""

from __future__ import annotations

import datetime as dt
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import carbonledger as cl


def main() -> None:
    args = [int(a) for a in sys.argv[1:]]
    n_dev, n_per, runs, batch_rows = args + [1000, 20_000, 5, 131_072][len(args) :]
    n = n_dev * n_per
    rng = np.random.default_rng(1)
    t0 = 1_700_000_000 * 10**9
    ids = np.array([f"gpu-{i:05d}" for i in range(n_dev)])
    # Time order: every device's sample at one tick, then the next tick.
    ts = pa.array(
        np.repeat(t0 + np.arange(n_per, dtype=np.int64) * 10**9, n_dev),
        pa.timestamp("ns", "UTC"),
    )
    dev = pa.array(np.tile(ids, n_per))
    power_w = pa.array(rng.uniform(60, 400, n))

    def table(col: pa.Array) -> pa.Table:
        t = pa.table({"device_id": col, "ts": ts, "power_w": power_w})
        return pa.Table.from_batches(t.to_batches(max_chunksize=batch_rows))

    layouts = {
        "dictionary": table(pc.dictionary_encode(dev)),
        "string": table(dev),
        "large_string": table(dev.cast(pa.large_string())),
        "string_view": table(dev.cast(pa.string_view())),
    }
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
    best = dict.fromkeys(layouts, float("inf"))
    for _ in range(runs):
        for name, power in layouts.items():  # interleaved: load spikes hit every layout
            s = time.perf_counter()
            cl.account(power, devices, sites, intensity)
            best[name] = min(best[name], time.perf_counter() - s)
    print(f"{n:,} samples, {n_dev} devices, {batch_rows}-row batches, best of {runs}")
    for name, t in best.items():
        ratio = t / best["dictionary"]
        print(f"{name:14s} {n / t / 1e6:8.1f} M samples/s  time / dictionary ids' {ratio:.2f}")


if __name__ == "__main__":
    main()
