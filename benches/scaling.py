"""How cost grows with the shapes of issue 9: many allocations, many
allocations in flight on one device, many devices.

``python benches/scaling.py [--only jobs,overlap,devices] [--large]``

Each case runs in its own subprocess (peak RSS read with ``os.wait4``):

- ``jobs``: N allocations (1e5, 1e6; 1e7 with ``--large``) over 1,000
  devices and one week, power every 5 min, hourly intensity; jobs start
  anywhere in the week, last 10 h on average (log-normal, median 6 h),
  take a share of 1/8 to 1 (``overlap="normalize"``): about 6 in flight
  per device at 1e5, 60 at 1e6. Times ``carbonledger.account``.
- ``overlap``: N allocations (1,000 to 64,000; 256,000 with ``--large``)
  on one device, all starting in the first hour of a day and running
  to its end, so about N are in flight at once: inference requests as
  allocations, share 1/N each. Times ``carbonledger.account``.
- ``devices``: N devices (1e5, 1e6), 4 samples and one labelled
  allocation each: ``carbonledger run`` end to end (account, the Parquet
  tables, summary, manifest, report.html) from Parquet files.

For each shape it prints a Markdown table with wall and CPU time (user +
system: on a shared machine the steadier of the two), peak RSS, and the
scaling exponents between consecutive sizes, log(t2/t1) / log(n2/n1) of
the CPU time and of the peak RSS: 1 is linear, 2 quadratic.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

NS = 1_000_000_000
HOUR = 3600 * NS
DAY = 24 * HOUR
TS = pa.timestamp("ns", tz="UTC")
T0 = 1_685_577_600 * NS  # 2023-06-01T00:00:00Z
SAMPLE_EVERY = 300 * NS

SIZES = {
    "jobs": [100_000, 1_000_000],
    "overlap": [1_000, 4_000, 16_000, 64_000],
    "devices": [100_000, 1_000_000],
}
LARGE = {"jobs": [10_000_000], "overlap": [256_000], "devices": []}


def _ids(n: int) -> pa.Array:
    return pa.array([f"gpu-{i:07d}" for i in range(n)])


def _devices(ids: pa.Array) -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "device_id": ids,
            "site_id": pa.array(["s1"] * n),
            "embodied_kgco2e": pa.array(np.full(n, 1500.0)),
            "installed_at": pa.array(np.full(n, T0 - 200 * DAY), TS),
            "lifetime_years": pa.array(np.full(n, 5.0)),
        }
    )


def _sites() -> pa.Table:
    return pa.table({"site_id": ["s1"], "region": ["R"], "pue": [1.2]})


def _intensity(t0: int, t1: int, rng: np.random.Generator) -> pa.Table:
    hours = np.arange(t0 - DAY, t1 + DAY, HOUR, dtype=np.int64)
    return pa.table(
        {
            "region": pa.array(["R"] * len(hours)),
            "start": pa.array(hours, TS),
            "gco2e_per_kwh": rng.uniform(50.0, 500.0, len(hours)),
            "cfe": rng.uniform(0.0, 0.6, len(hours)),
        }
    )


def _power(ids: pa.Array, t0: int, t1: int, every: int, rng: np.random.Generator) -> pa.Table:
    """Samples every ``every`` ns in ``[t0, t1]``, time order (ts, then device)."""
    ticks = np.arange(t0, t1 + 1, every, dtype=np.int64)
    n_dev = len(ids)
    keys = np.tile(np.arange(n_dev, dtype=np.int32), len(ticks))
    return pa.table(
        {
            "device_id": pa.DictionaryArray.from_arrays(pa.array(keys), ids),
            "ts": pa.array(np.repeat(ticks, n_dev), TS),
            "power_w": rng.uniform(80.0, 700.0, len(keys)),
        }
    )


def _allocations(
    ids: pa.Array, dev: np.ndarray, start: np.ndarray, end: np.ndarray, share: np.ndarray
) -> pa.Table:
    n = len(dev)
    return pa.table(
        {
            "job_id": pa.array(np.char.add("job-", np.arange(n).astype(str))),
            "device_id": ids.take(pa.array(dev)),
            "start": pa.array(start, TS),
            "end": pa.array(end, TS),
            "share": share,
            "phase": pa.array(np.array(["training", "inference", "eval"])[dev % 3]),
            "team": pa.array(np.array(["a", "b", "c", "d"])[np.arange(n) % 4]),
        }
    )


def jobs_case(n: int) -> dict[str, Any]:
    """N jobs over 1,000 devices and a week."""
    rng = np.random.default_rng(9)
    n_dev, t0, t1 = 1000, T0, T0 + 7 * DAY
    ids = _ids(n_dev)
    dev = rng.integers(0, n_dev, n)
    start = rng.integers(t0 - HOUR, t1, n) // NS * NS
    length = np.maximum(rng.lognormal(math.log(6 * 3600.0), 1.0, n), 1.0) * NS
    end = start + length.astype(np.int64) // NS * NS
    share = rng.choice([0.125, 0.25, 0.5, 1.0], n)
    return {
        "power": _power(ids, t0, t1, SAMPLE_EVERY, rng),
        "devices": _devices(ids),
        "sites": _sites(),
        "intensity": _intensity(t0, t1, rng),
        "allocations": _allocations(ids, dev, start, end, share),
        "period": (t0, t1),
        "overlap": "normalize",
    }


def overlap_case(n: int) -> dict[str, Any]:
    """N allocations in flight on one device."""
    rng = np.random.default_rng(9)
    t0, t1 = T0, T0 + DAY
    ids = _ids(1)
    start = np.sort(rng.integers(t0, t0 + HOUR, n))
    end = t1 - rng.integers(0, HOUR, n)
    return {
        "power": _power(ids, t0, t1, 10 * NS, rng),
        "devices": _devices(ids),
        "sites": _sites(),
        "intensity": _intensity(t0, t1, rng),
        "allocations": _allocations(ids, np.zeros(n, np.int64), start, end, np.full(n, 1.0 / n)),
        "period": (t0, t1),
        "overlap": "error",
    }


def devices_case(n: int) -> dict[str, Any]:
    """N devices, 4 samples a minute apart and one allocation each."""
    rng = np.random.default_rng(9)
    t0, t1 = T0, T0 + 180 * NS
    ids = _ids(n)
    start = np.full(n, t0 + 30 * NS)
    return {
        "power": _power(ids, t0, t1, 60 * NS, rng),
        "devices": _devices(ids),
        "sites": _sites(),
        "intensity": _intensity(t0, t1, rng),
        "allocations": _allocations(ids, np.arange(n), start, start + 90 * NS, np.full(n, 0.5)),
        "period": (t0, t1),
        "overlap": "error",
    }


CASES = {"jobs": jobs_case, "overlap": overlap_case, "devices": devices_case}


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _child_account(shape: str, n: int, out: Path) -> None:
    """Build the tables, then time ``carbonledger.account`` alone."""
    import carbonledger as cl

    t = CASES[shape](n)
    rss_before = _rss_mib()
    cpu = _cpu_s()
    started = time.perf_counter()
    report = cl.account(
        t["power"],
        t["devices"],
        t["sites"],
        t["intensity"],
        t["allocations"],
        period=t["period"],
        overlap=t["overlap"],
    )
    wall = time.perf_counter() - started
    cpu = _cpu_s() - cpu
    total = float(report.allocations["total_kgco2e"].sum())
    result = {"wall": wall, "cpu": cpu, "rss_before": rss_before, "total": total}
    out.write_text(json.dumps(result))


def _write_inputs(shape: str, n: int, folder: Path) -> tuple[int, int]:
    t = CASES[shape](n)
    for name in ("power", "devices", "sites", "intensity", "allocations"):
        table = t[name]
        if name == "power":
            table = table.cast(table.schema.set(0, pa.field("device_id", pa.string())))
        pq.write_table(table, folder / f"{name}.parquet")
    period: tuple[int, int] = t["period"]
    return period


def _iso(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // NS))


@dataclass(frozen=True)
class Measured:
    shape: str
    n: int
    wall: float
    cpu: float
    peak_mib: float
    rss_before: float


def _wait(cmd: list[str]) -> tuple[float, float, float]:
    """Run ``cmd``; its wall time, CPU time and peak RSS (MiB)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def measure(shape: str, n: int) -> Measured:
    with tempfile.TemporaryDirectory(prefix="cl-scaling-") as tmp:
        folder = Path(tmp)
        if shape == "devices":
            p0, p1 = _write_inputs(shape, n, folder)
            cli = Path(sys.executable).with_name("carbonledger")
            cmd = [str(cli), "run", "--quiet", "--out", str(folder / "ledger")]
            for name in ("power", "devices", "sites", "intensity", "allocations"):
                cmd += [f"--{name}", str(folder / f"{name}.parquet")]
            cmd += ["--period", _iso(p0), _iso(p1)]
            wall, cpu, peak = _wait(cmd)
            return Measured(shape, n, wall, cpu, peak, float("nan"))
        out = folder / "result.json"
        cmd = [sys.executable, __file__, "--child", shape, str(n), str(out)]
        _, _, peak = _wait(cmd)
        r = json.loads(out.read_text())
        return Measured(shape, n, r["wall"], r["cpu"], peak, r["rss_before"])


def exponent(n1: int, n2: int, v1: float, v2: float) -> str:
    if min(v1, v2) <= 0:
        return ""
    return f"{math.log(v2 / v1) / math.log(n2 / n1):.2f}"


def report(shape: str, rows: list[Measured]) -> str:
    timed = "`carbonledger run` (CLI, whole process)" if shape == "devices" else "`account`"
    lines = [
        f"### {shape}: {CASES[shape].__doc__}",
        "",
        f"{timed}; peak RSS of the process, RSS before: after building the tables.",
        "",
        "| N | wall s | CPU s | exponent (CPU) | peak RSS MiB | exponent (RSS) | RSS before MiB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for i, m in enumerate(rows):
        p = rows[i - 1] if i else m
        cells = [
            f"{m.n:,}",
            f"{m.wall:.2f}",
            f"{m.cpu:.2f}",
            exponent(p.n, m.n, p.cpu, m.cpu) if i else "",
            f"{m.peak_mib:.0f}",
            exponent(p.n, m.n, p.peak_mib, m.peak_mib) if i else "",
            f"{m.rss_before:.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="jobs,overlap,devices")
    ap.add_argument("--large", action="store_true", help="add the largest sizes")
    ap.add_argument("--sizes", help="comma-separated N, instead of the defaults (one shape)")
    ap.add_argument("--child", nargs=3, metavar=("SHAPE", "N", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        shape, n, out = args.child
        _child_account(shape, int(n), Path(out))
        return
    sections = []
    for shape in args.only.split(","):
        sizes = SIZES[shape] + (LARGE[shape] if args.large else [])
        if args.sizes:
            sizes = [int(float(x)) for x in args.sizes.split(",")]
        rows = []
        for n in sizes:
            rows.append(measure(shape, n))
            m = rows[-1]
            print(
                f"{shape} {n:,}: {m.wall:.2f} s, {m.cpu:.2f} CPU s, {m.peak_mib:.0f} MiB",
                file=sys.stderr,
            )
        sections.append(report(shape, rows))
    print("\n\n".join(sections))


if __name__ == "__main__":
    main()
