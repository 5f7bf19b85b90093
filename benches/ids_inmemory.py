"""In-memory throughput by device-id layout: plain, large and view strings
against dictionary ids, on one table, interleaved, best of several runs.

python benches/ids_inmemory.py [devices] [samples_per_device] [runs] [batch_rows]
"""

from __future__ import annotations

import sys
import time

import pyarrow as pa
import pyarrow.compute as pc
from inmemory_fleet import build

import carbonledger as cl


def main() -> None:
    args = [int(a) for a in sys.argv[1:]]
    n_dev, n_per, runs, batch_rows = args + [1000, 20_000, 5, 131_072][len(args) :]
    n = n_dev * n_per
    f = build(n_dev, n_per)
    layouts = {
        "dictionary": f.power(pc.dictionary_encode(f.ids), batch_rows),
        "string": f.power(f.ids, batch_rows),
        "large_string": f.power(f.ids.cast(pa.large_string()), batch_rows),
        "string_view": f.power(f.ids.cast(pa.string_view()), batch_rows),
    }
    best = dict.fromkeys(layouts, float("inf"))
    for _ in range(runs):
        for name, power in layouts.items():  # interleaved: load spikes hit every layout
            s = time.perf_counter()
            cl.account(power, f.devices, f.sites, f.intensity)
            best[name] = min(best[name], time.perf_counter() - s)
    print(f"{n:,} samples, {n_dev} devices, {batch_rows}-row batches, best of {runs}")
    for name, t in best.items():
        ratio = t / best["dictionary"]
        print(f"{name:14s} {n / t / 1e6:8.1f} M samples/s  time / dictionary ids' {ratio:.2f}")


if __name__ == "__main__":
    main()
