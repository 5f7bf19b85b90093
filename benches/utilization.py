"""The cost of utilization (execution-idle): the same in-memory fleet with
and without a ``utilization`` column, interleaved, best of RUNS.

python benches/utilization.py [devices] [samples_per_device] [runs]

Samples with utilization take the engine's general path (one thread, every
segment through the state machine) instead of the hot path.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pyarrow as pa
from inmemory_fleet import build

import carbonledger as cl


def main() -> None:
    n_dev = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    n_per = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    n = n_dev * n_per
    f = build(n_dev, n_per)
    plain = f.power()
    rng = np.random.default_rng(1)
    util = pa.chunked_array(
        [pa.array(rng.random(len(c)), pa.float64()) for c in plain.column("ts").chunks]
    )
    with_util = plain.append_column("utilization", util)
    best = {"plain": 1e9, "utilization": 1e9}
    for _ in range(runs):
        for name, power in (("plain", plain), ("utilization", with_util)):
            s = time.perf_counter()
            cl.account(power, f.devices, f.sites, f.intensity)
            best[name] = min(best[name], time.perf_counter() - s)
    print(f"samples {n:,}  devices {n_dev}  best of {runs}")
    for name, secs in best.items():
        print(f"{name:12s}: {secs:7.3f} s  {n / secs / 1e6:8.1f} M samples/s")
    print(f"utilization / plain throughput: {best['plain'] / best['utilization']:.3f}")


if __name__ == "__main__":
    main()
