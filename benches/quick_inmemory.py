"""In-memory throughput against a numpy trapezoid pass over the same buffers.

python benches/quick_inmemory.py [devices] [samples_per_device]
"""

from __future__ import annotations

import sys
import time

import numpy as np
from inmemory_fleet import build

import carbonledger as cl


def main() -> None:
    n_dev = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    n_per = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    n = n_dev * n_per
    f = build(n_dev, n_per)
    power = f.power()
    # numpy baseline: one trapezoid pass over the same buffers
    best_np = 1e9
    for _ in range(3):
        s = time.perf_counter()
        dtv = np.diff(f.ts)
        _ = float(np.sum(dtv * (f.power_w[1:] + f.power_w[:-1])) * 0.5e-9)
        best_np = min(best_np, time.perf_counter() - s)
    best = 1e9
    for _ in range(3):
        s = time.perf_counter()
        cl.account(power, f.devices, f.sites, f.intensity)
        best = min(best, time.perf_counter() - s)
    print(f"samples {n:,}  devices {n_dev}")
    print(f"numpy trapezoid pass : {n / best_np / 1e6:8.1f} M samples/s")
    print(f"carbonledger account : {n / best / 1e6:8.1f} M samples/s  (ratio {best_np / best:.2f})")


if __name__ == "__main__":
    main()
