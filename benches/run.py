"""carbonledger against hand-written baselines and hardware-ish limits.

``python benches/run.py --samples 1e7 [--data-dir DIR] [--threads N]``

generates the benchmark fleet if missing (``gen.py``; cached under
``benches/data/``), then runs every contender in its own subprocess,
``--repeat`` times (best wall time; peak RSS is the largest of the runs, read
per child with ``os.wait4``), and prints a Markdown report on stdout
(progress goes to stderr):

- carbonledger end to end from Parquet, both dump orders;
- the Polars (streaming engine, plus the in-memory engine for reference) and
  DuckDB baselines of ``baselines.py`` on the time-ordered files;
- limits: pyarrow reading the same three columns and nothing else (device
  ids decoded to strings, as a plain scan gives them, and kept
  dictionary-encoded in 1M-row batches, file by file: the fastest pyarrow
  read, and the scan carbonledger itself gives CSV and pyarrow datasets), a numpy
  trapezoid pass over the same in-memory buffers, and carbonledger on the
  same data as an in-memory Arrow table, with its device ids as plain
  strings (what ``pq.read_table`` gives), large strings, string views (what
  Polars hands over) and dictionary-encoded;
- ratios (throughput of carbonledger / throughput of the other), and the
  agreement of every result with carbonledger's (max relative difference).

Timed sections exclude interpreter start, imports and, for the in-memory
contenders, loading the table; "RSS before" is the resident set just before
the timed section. Samples/s counts every row of the power files (invalid
and duplicate rows included).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Contender:
    name: str
    label: str
    order: str  # which dump it reads
    kind: str  # "engine", "baseline", "limit"
    has_result: bool


CONTENDERS = (
    Contender("cl_time", "carbonledger, Parquet", "time", "engine", True),
    Contender("cl_device", "carbonledger, Parquet", "device", "engine", True),
    Contender("polars", "Polars baseline (streaming engine)", "time", "baseline", True),
    Contender("polars_mem", "Polars baseline (in-memory engine)", "time", "baseline", True),
    Contender("duckdb", "DuckDB baseline (SQL)", "time", "baseline", True),
    Contender("pa_read", "limit: pyarrow read, ids as strings", "time", "limit", False),
    Contender("pa_read_dict", "limit: pyarrow read, ids as dictionary", "time", "limit", False),
    Contender("cl_mem", "carbonledger, in-memory Arrow table", "time", "limit", True),
    Contender("cl_mem_large", "carbonledger, in memory, large-string ids", "time", "limit", True),
    Contender("cl_mem_view", "carbonledger, in memory, string-view ids", "time", "limit", True),
    Contender("cl_mem_dict", "carbonledger, in memory, dictionary ids", "time", "limit", True),
    Contender("numpy", "limit: numpy trapezoid pass, in memory", "time", "limit", False),
)
BY_NAME = {c.name: c for c in CONTENDERS}


# ---------------------------------------------------------------------------
# Child side: one contender, one run


def _rss_mib() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _import_carbonledger() -> Any:
    """carbonledger, waiting while someone rebuilds the extension."""
    for attempt in range(8):
        try:
            import carbonledger

            return carbonledger
        except Exception as e:  # a half-written .so fails in several ways
            if attempt == 7:
                raise
            print(f"import carbonledger failed ({e!r}); retrying in 30 s", file=sys.stderr)
            time.sleep(30)
    raise AssertionError("unreachable")


def _child(name: str, data_dir: Path, threads: int, out_json: Path, save: Path | None) -> None:
    import pyarrow as pa

    pa.set_cpu_count(threads)
    from baselines import Inputs, Result, duckdb_account, polars_account

    c = BY_NAME[name]
    inp = Inputs.from_dir(str(data_dir), c.order)
    work: Callable[[], Any]
    in_memory = c.name.startswith("cl_mem")
    if c.name in ("cl_time", "cl_device") or in_memory:
        cl = _import_carbonledger()
        power: Any = inp.power
        small: list[Any] = [inp.devices, inp.sites, inp.intensity, inp.allocations]
        if in_memory:
            import pyarrow.compute as pc
            import pyarrow.parquet as pq

            power = pq.read_table(inp.power, columns=["device_id", "ts", "power_w"])
            id_layout = {
                "cl_mem_large": pa.large_string(),
                "cl_mem_view": pa.string_view(),
            }
            ids = power.column("device_id")
            if c.name in id_layout:
                ids = ids.cast(id_layout[c.name])
            elif c.name == "cl_mem_dict":
                ids = pc.dictionary_encode(ids)
            power = power.set_column(0, "device_id", ids)
            small = [pq.read_table(p) for p in small]

        def work() -> Any:
            return cl.account(power, *small, period=inp.period, max_gap=inp.max_gap_ns / 1e9)

    elif c.name == "polars":

        def work() -> Any:
            return polars_account(inp, "streaming")

    elif c.name == "polars_mem":

        def work() -> Any:
            return polars_account(inp, "in-memory")

    elif c.name == "duckdb":

        def work() -> Any:
            return duckdb_account(inp, threads)

    elif c.name in ("pa_read", "pa_read_dict"):
        import pyarrow.dataset as ds

        fmt: Any = "parquet"
        kw: dict[str, Any] = {}
        if c.name == "pa_read_dict":  # carbonledger's pyarrow scan (_io.py)
            opts = ds.ParquetReadOptions(dictionary_columns=["device_id"])
            fmt = ds.ParquetFileFormat(read_options=opts)
            kw["batch_size"] = 1 << 20

        def work() -> Any:
            cols = ["device_id", "ts", "power_w"]
            dataset = ds.dataset(inp.power, format=fmt)
            n = 0
            if c.name == "pa_read_dict":
                # File by file, as carbonledger's pyarrow scan (_io.py) reads.
                for frag in dataset.get_fragments():
                    for batch in frag.to_batches(columns=cols, **kw):
                        n += batch.num_rows
                return n
            for batch in dataset.scanner(columns=cols, **kw).to_batches():
                n += batch.num_rows
            return n

    elif c.name == "numpy":
        import numpy as np
        import pyarrow.parquet as pq

        t = pq.read_table(inp.power, columns=["ts", "power_w"])
        ts = t.column("ts").cast(pa.int64()).to_numpy()
        pw = t.column("power_w").to_numpy()
        del t

        def work() -> Any:
            return float(np.sum(np.diff(ts) * (pw[1:] + pw[:-1]))) * 0.5e-9

    else:
        raise ValueError(name)

    rss_before = _rss_mib()
    t0, c0 = time.perf_counter(), time.process_time()
    result = work()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if save is not None and c.has_result:
        if not isinstance(result, Result):
            from check import from_report

            result = from_report(result)
        save.mkdir(parents=True, exist_ok=True)
        for table in ("allocations", "devices", "unallocated"):
            getattr(result, table).write_parquet(save / f"{table}.parquet")
    out_json.write_text(json.dumps({"wall": wall, "cpu": cpu, "rss_before": rss_before}))


# ---------------------------------------------------------------------------
# Parent side


@dataclass
class Timing:
    wall: float
    cpu: float
    rss_before: float
    peak_rss: float


def _run_child(
    name: str, data_dir: Path, threads: int, tmp: Path, save: Path | None, timeout: float
) -> Timing:
    env = dict(os.environ)
    for var in ("POLARS_MAX_THREADS", "CARBONLEDGER_MAX_THREADS", "RAYON_NUM_THREADS"):
        env[var] = str(threads)
    env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = "1"
    out = tmp / f"{name}.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name]
    cmd += ["--data-dir", str(data_dir), "--threads", str(threads), "--child-out", str(out)]
    if save is not None:
        cmd += ["--child-save", str(save)]
    with open(tmp / f"{name}.err", "w+") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=err, stderr=err, cwd=HERE)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0 or not out.exists():
            err.seek(0)
            raise RuntimeError(f"{name} failed (exit {proc.returncode}):\n{err.read()[-3000:]}")
    r = json.loads(out.read_text())
    return Timing(r["wall"], r["cpu"], r["rss_before"], usage.ru_maxrss / 1024)


def _versions() -> str:
    parts = [f"Python {platform.python_version()}"]
    for mod in ("polars", "duckdb", "pyarrow", "numpy"):
        try:
            parts.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            parts.append(f"{mod} missing")
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        parts.insert(0, f"carbonledger {rev}{'+dirty' if dirty else ''}")
    except OSError:
        pass
    return ", ".join(parts)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _fmt_rel(x: float) -> str:
    return "0" if x == 0 else f"{x:.1e}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="carbonledger benchmark (Markdown on stdout)")
    ap.add_argument("--samples", type=float, default=1e7, help="nominal samples (default 1e7)")
    ap.add_argument("--devices", type=int, default=None, help="default: samples / 20000")
    ap.add_argument("--data-dir", type=Path, default=None, help="default: benches/data/...")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=3, help="runs per contender (best wall)")
    ap.add_argument(
        "--repeat-baselines",
        type=int,
        default=None,
        help="runs of the Polars and DuckDB baselines (default: --repeat); their "
        "long runs average out load spikes that a sub-second run takes whole",
    )
    ap.add_argument("--only", default=None, help="comma-separated: " + ",".join(BY_NAME))
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-save", type=Path, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a.child is not None:
        assert a.data_dir is not None and a.child_out is not None
        _child(a.child, a.data_dir, a.threads, a.child_out, a.child_save)
        return 0

    sys.path.insert(0, str(HERE))
    import gen
    from baselines import Result
    from check import max_rel_diff

    data_dir: Path = a.data_dir or HERE / "data" / f"fleet-{int(a.samples)}"
    print(f"data: {data_dir}", file=sys.stderr)
    meta = gen.generate(data_dir, a.samples, a.devices)
    rows = int(meta["rows"])
    names = a.only.split(",") if a.only else [c.name for c in CONTENDERS]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        ap.error(f"unknown contender(s) {unknown}; expected some of {list(BY_NAME)}")

    tmp = Path(tempfile.mkdtemp(prefix="clbench-"))
    timings: dict[str, list[Timing]] = {}
    slow = {"polars", "polars_mem", "duckdb"}
    slow_runs = a.repeat if a.repeat_baselines is None else a.repeat_baselines
    try:
        for r in range(a.repeat):
            for name in names:  # interleaved, so that load spikes hit everyone
                if name in slow and r >= slow_runs:
                    continue
                save = tmp / "out" / name if r == 0 else None
                t = _run_child(name, data_dir, a.threads, tmp, save, a.timeout)
                timings.setdefault(name, []).append(t)
                print(
                    f"run {r + 1}/{a.repeat} {name:12s} {t.wall:7.2f} s wall "
                    f"{t.cpu:7.2f} s cpu {t.peak_rss:7.0f} MiB",
                    file=sys.stderr,
                )
        results: dict[str, Result] = {}
        import polars as pl

        for name in names:
            folder = tmp / "out" / name
            if (folder / "allocations.parquet").exists():
                results[name] = Result(
                    allocations=pl.read_parquet(folder / "allocations.parquet"),
                    devices=pl.read_parquet(folder / "devices.parquet"),
                    unallocated=pl.read_parquet(folder / "unallocated.parquet"),
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    best = {n: min(ts, key=lambda t: t.wall) for n, ts in timings.items()}
    peak = {n: max(t.peak_rss for t in ts) for n, ts in timings.items()}

    def rate(n: str) -> float:
        return rows / best[n].wall

    out: list[str] = []
    w = out.append
    n_dev, k = int(meta["devices"]), int(meta["k"])
    w(
        f"### {rows:,} samples: {n_dev} devices x {k:,} s at 1 Hz, "
        f"{int(meta['allocations']):,} allocations"
    )
    w("")
    w(
        f"- {dt.date.today().isoformat()}, {_cpu_model()}, {os.cpu_count()} cores, "
        f"{a.threads} threads per contender, best wall time of {a.repeat} runs"
        + (
            f" ({slow_runs} for the Polars and DuckDB baselines)"
            if slow_runs < a.repeat and slow & set(names)
            else ""
        )
        + ", peak RSS the largest of the runs"
    )
    w(f"- {_versions()}")
    w(f"- data: `{data_dir}` (`benches/gen.py`), period {k - 1:,} s, max_gap 300 s")
    w("")
    w("| contender | reads | wall s | CPU s | M samples/s | peak RSS MiB | RSS before MiB |")
    w("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        c, t = BY_NAME[name], best[name]
        in_memory = name.startswith("cl_mem") or name == "numpy"
        reads = "in memory" if in_memory else f"Parquet, {c.order} order"
        w(
            f"| {c.label} | {reads} | {t.wall:.2f} | {t.cpu:.2f} | {rate(name) / 1e6:.1f} "
            f"| {peak[name]:.0f} | {t.rss_before:.0f} |"
        )
    w("")
    ratios: list[tuple[str, str, str]] = []
    for read in ("pa_read_dict", "pa_read"):
        if "cl_time" in best and read in best:
            ratios.append((f"carbonledger / {BY_NAME[read].label[7:]}", "cl_time", read))
    base = [n for n in ("polars", "polars_mem", "duckdb") if n in best]
    if "cl_time" in best and base:
        fastest = min(base, key=lambda n: best[n].wall)
        ratios.append(
            (f"carbonledger / fastest baseline ({BY_NAME[fastest].label})", "cl_time", fastest)
        )
        if "polars" in best and fastest != "polars":
            ratios.append(("carbonledger / Polars streaming baseline", "cl_time", "polars"))
    if "cl_mem" in best and "numpy" in best:
        ratios.append(("in-memory carbonledger / numpy pass", "cl_mem", "numpy"))
    for name, ids in (
        ("cl_mem", "string"),
        ("cl_mem_large", "large-string"),
        ("cl_mem_view", "string-view"),
    ):
        if name in best and "cl_mem_dict" in best:
            ratios.append((f"in memory, {ids} ids / dictionary ids", name, "cl_mem_dict"))
    if ratios:
        w("| ratio (throughput, > 1: carbonledger faster) | value |")
        w("| --- | ---: |")
        for label, x, y in ratios:
            w(f"| {label} | {rate(x) / rate(y):.2f} |")
        w("")
    if "cl_time" in results and len(results) > 1:
        ref = results["cl_time"]
        w(
            "| max relative difference vs carbonledger (Parquet, time order) "
            "| allocations | devices | unallocated | fleet totals |"
        )
        w("| --- | ---: | ---: | ---: | ---: |")
        for name, res in results.items():
            if name == "cl_time":
                continue
            d = max_rel_diff(res, ref)
            cells = " | ".join(
                _fmt_rel(d[t][0]) for t in ("allocations", "devices", "unallocated", "fleet totals")
            )
            c = BY_NAME[name]
            suffix = f", {c.order} order" if name in ("cl_time", "cl_device") else ""
            w(f"| {c.label}{suffix} | {cells} |")
        w("")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
