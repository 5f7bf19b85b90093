"""carbonledger from Parquet: the Rust read against the pyarrow scan it
replaced and pyarrow's bare read of the same columns, one fresh process per
run, interleaved, best of RUNS (wall and CPU of the timed call alone).

python benches/parquet_read.py [DATA_DIR] [RUNS]

DATA_DIR is a fleet made by ``benches/gen.py`` (default: the 10^8-sample one
``make bench`` generates, ``benches/data/fleet-100000000``).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WAYS = ("rust", "pyarrow_scan", "bare_read")


def _one(way: str, data_dir: str) -> dict[str, float]:
    sys.path.insert(0, str(HERE))
    import pyarrow.dataset as ds
    from baselines import Inputs

    import carbonledger as cl

    inp = Inputs.from_dir(data_dir, "time")
    fmt = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=["device_id"]))
    t0, c0 = time.perf_counter(), time.process_time()
    if way == "bare_read":
        for frag in ds.dataset(inp.power, format=fmt).get_fragments():
            for _ in frag.to_batches(columns=["device_id", "ts", "power_w"], batch_size=1 << 20):
                pass
    else:
        power = inp.power if way == "rust" else ds.dataset(inp.power, format=fmt)
        small = [inp.devices, inp.sites, inp.intensity, inp.allocations]
        cl.account(power, *small, period=inp.period, max_gap=inp.max_gap_ns / 1e9)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"wall": wall, "cpu": cpu, "rss": rss}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(_one(sys.argv[2], sys.argv[3])))
        return
    data_dir = sys.argv[1] if len(sys.argv) > 1 else str(HERE / "data" / "fleet-100000000")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    best: dict[str, dict[str, float]] = {}
    for r in range(runs):
        for way in WAYS:  # interleaved: load spikes hit every way
            out = subprocess.run(
                [sys.executable, __file__, "--child", way, data_dir],
                check=True,
                capture_output=True,
                text=True,
            )
            m = json.loads(out.stdout.strip().splitlines()[-1])
            line = f"run {r + 1}/{runs} {way:13s} {m['wall']:6.2f} s wall {m['cpu']:6.2f} s cpu"
            print(line, file=sys.stderr)
            if way not in best or m["wall"] < best[way]["wall"]:
                best[way] = m
    print("| run | wall s | CPU s | peak RSS MiB |\n| --- | ---: | ---: | ---: |")
    for way in WAYS:
        m = best[way]
        print(f"| {way} | {m['wall']:.2f} | {m['cpu']:.2f} | {m['rss']:.0f} |")
    bare = best["bare_read"]["wall"]
    for way in ("rust", "pyarrow_scan"):
        print(f"{way}: {bare / best[way]['wall']:.2f} of the bare read's throughput")


if __name__ == "__main__":
    main()
