"""Spark's scaling and overhead (issue 12): the same Parquet fleet accounted
by the embedded engine and by ``carbonledger.spark`` on ``local[1]`` and
``local[2]``, each in a fresh process (Spark started and warmed up before
the clock), best of RUNS.

python benches/spark_scaling.py [DEVICES] [SAMPLES_PER_DEVICE] [RUNS]
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
UTC = dt.timezone.utc
T0 = dt.datetime(2026, 1, 1, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")


def generate(folder: Path, n_dev: int, n_per: int) -> None:
    if (folder / "done").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    ids = np.array([f"gpu-{i:05d}" for i in range(n_dev)])
    per_file = max(1, n_per // 10)
    for k in range(0, n_per, per_file):
        steps = np.arange(k, min(n_per, k + per_file), dtype=np.int64)
        times = int(T0.timestamp()) * 10**6 + steps * 10**6
        t = pa.table(
            {
                "device_id": np.tile(ids, len(steps)),
                "ts": pa.array(np.repeat(times, n_dev), pa.int64()).cast(TS),
                "power_w": rng.uniform(80, 700, n_dev * len(steps)),
            }
        )
        pq.write_table(t, folder / f"power-{k:09d}.parquet", row_group_size=1 << 20)
    small = {
        "devices": pa.table(
            {
                "device_id": ids,
                "site_id": ["s"] * n_dev,
                "embodied_kgco2e": [150.0] * n_dev,
                "installed_at": pa.array([T0 - dt.timedelta(days=300)] * n_dev, TS),
                "lifetime_years": [4.0] * n_dev,
            }
        ),
        "sites": pa.table({"site_id": ["s"], "region": ["R"], "pue": [1.2]}),
        "intensity": pa.table(
            {"region": ["R"], "start": pa.array([T0], TS), "gco2e_per_kwh": [400.0]}
        ),
    }
    for name, table in small.items():
        pq.write_table(table, folder / f"{name}.parquet")
    (folder / "done").write_text("")


def one(way: str, folder: str, n: int) -> float:
    import carbonledger as cl

    power = sorted(str(p) for p in Path(folder).glob("power-*.parquet"))
    period = (T0, T0 + dt.timedelta(seconds=n))
    if way == "embedded":
        s = time.perf_counter()
        cl.account(
            power,
            *(f"{folder}/{t}.parquet" for t in ("devices", "sites", "intensity")),
            period=period,
        )
        return time.perf_counter() - s
    from pyspark.sql import SparkSession

    from carbonledger import spark as cls

    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (
        SparkSession.builder.master(way)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "1000000")
        .config("spark.driver.memory", "8g")
        .getOrCreate()
    )
    spark.range(10).count()  # warm up the JVM and the Python workers
    small = [spark.read.parquet(f"{folder}/{t}.parquet") for t in ("devices", "sites", "intensity")]
    workers = int(way.removeprefix("local[").removesuffix("]"))
    s = time.perf_counter()
    r = cls.account(spark.read.parquet(*power), *small, period=period, partitions=4 * workers)
    r.devices.count()
    r.allocations.count()
    r.grid.count()
    secs = time.perf_counter() - s
    spark.stop()
    return secs


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        print(json.dumps(one(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
        return
    n_dev = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    n_per = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    folder = HERE / "data" / f"spark-{n_dev}x{n_per}"
    generate(folder, n_dev, n_per)
    best = {w: float("inf") for w in ("embedded", "local[1]", "local[2]")}
    for _ in range(runs):
        for way in best:
            out = subprocess.run(
                [sys.executable, __file__, "--one", way, str(folder), str(n_per)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            best[way] = min(best[way], json.loads(out.stdout.strip().splitlines()[-1]))
    n = n_dev * n_per
    print(f"samples {n:,}  devices {n_dev}  best of {runs}")
    for way, secs in best.items():
        print(f"{way:9s}: {secs:7.2f} s  {n / secs / 1e6:7.2f} M samples/s")
    print(f"local[2] / local[1] speed-up: {best['local[1]'] / best['local[2]']:.2f}")
    print(
        "Spark local[2] overhead against the embedded engine: "
        f"{best['local[2]'] / best['embedded']:.1f}x"
    )


if __name__ == "__main__":
    main()
