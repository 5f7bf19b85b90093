"""Benchmark fleet: Parquet inputs for ``carbonledger.account`` whose
boundaries all fall on sample timestamps.

``python benches/gen.py --samples 1e7 --out benches/data/fleet-1e7`` writes
the layout of ``carbonledger.synth``::

    DIR/power/by_device/part-00000.parquet ...   device_id, ts, power_w; by (device_id, ts)
    DIR/power/by_time/part-00000.parquet ...     the same rows, by (ts, device_id)
    DIR/devices.parquet DIR/sites.parquet DIR/intensity.parquet DIR/allocations.parquet
    DIR/bench.json                               parameters, period and row counts

with the same Parquet options (zstd, dictionary ``device_id`` read back as
plain strings, delta-encoded ``ts``, row groups of about 2**20 rows).

Why not ``carbonledger.synth`` itself: its data is realistic on purpose, and
so it breaks the property the hand-written baselines in ``baselines.py`` rely
on (every node samples at its own millisecond offset, missed scrapes and
invalid samples fall anywhere, allocation and intensity boundaries cut
segments). This generator keeps the same schema and the same kinds of
defects, but places them so that:

**Alignment property.** All devices sample on one grid, ``ts = t0 + k s``
(1 Hz, ``k = 0 .. K-1``), with ``t0`` on a whole hour. Allocation edges are
whole minutes, intensity rows are whole hours, the period is
``[t0, t0 + (K-1) s)``. Every such boundary inside the period falls either on
a valid sample of every device, or inside one of its gaps longer than
``max_gap`` (5 min), where nothing is integrated. Hence every integrated
segment ``[t_i, t_{i+1})`` lies in a single intensity row and a single set of
active allocations, both read at ``t_i``. Short missed scrapes (20-150 s,
interpolated over) and invalid samples (NaN, +inf, -1 W) are only placed
where no boundary of their device falls; long outages (6-45 min, uncovered)
and duplicate timestamps (a re-read, or an extra NaN row beside a valid one)
fall anywhere.

Every sample is a pure function of (seed, device, sample index) and small
per-device tables, so both orders hold identical rows, and generation works
one rectangle (devices x sample range, about 2**20 samples) at a time.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
U64 = npt.NDArray[np.uint64]
Bool = npt.NDArray[np.bool_]

NS = 1_000_000_000
MINUTE = 60 * NS
HOUR = 3600 * NS
TS = pa.timestamp("ns", tz="UTC")
T0 = 1_685_577_600 * NS  # 2023-06-01T00:00:00Z
RECT = 1 << 20
MAX_GAP_NS = 300 * NS  # the engine's default max_gap; long outages exceed it
FORMAT_VERSION = 1

# (site_id, region, PUE)
SITES = (
    ("fra1", "DE", 1.22),
    ("fra2", "DE", 1.35),
    ("sin1", "SG", 1.38),
    ("sin2", "SG", 1.31),
    ("sjc1", "US-CAL-CISO", 1.12),
    ("sjc2", "US-CAL-CISO", 1.28),
)
# region: (mean gCO2e/kWh, diurnal amplitude, carbon-free fraction mean)
REGIONS = {
    "DE": (380.0, 120.0, 0.45),
    "SG": (470.0, 25.0, 0.05),
    "US-CAL-CISO": (230.0, 110.0, 0.6),
}
# (model, TDP W, idle W, embodied kgCO2e, lifetime years)
MODELS = (
    ("A100-SXM4-80GB", 400.0, 62.0, 150.0, 6.0),
    ("H100-SXM5-80GB", 700.0, 80.0, 150.0, 5.0),
    ("V100-SXM2-32GB", 300.0, 58.0, 150.0, 6.0),
)

_NAN, _INF, _NEG = 1, 2, 3  # invalid codes (replace the sample)
_DUP, _EXTRA_NAN = 1, 2  # extra rows after a sample


@dataclass
class Fleet:
    n_dev: int
    k: int  # samples per device
    seed: int
    ids: list[str]
    idle: F64
    dyn: F64
    piece_key: I64  # sorted: device * k + first sample of a power level
    piece_u: F64
    out_dev: I64  # outages: device, [start, end) sample indices
    out_a: I64
    out_b: I64
    inv_key: I64  # sorted invalid samples and their codes
    inv_code: npt.NDArray[np.int8]
    ex_key: I64  # sorted extra rows and their kinds
    ex_kind: npt.NDArray[np.int8]
    tables: dict[str, pa.Table]

    @property
    def period(self) -> tuple[int, int]:
        return T0, T0 + (self.k - 1) * NS


def _boundaries(k: int, edges_ns: list[int]) -> I64:
    """Sample indices of one device's boundaries inside the period: period
    edges, whole hours, its allocation edges."""
    hours = np.arange(0, k, 3600, dtype=np.int64)
    own = [(e - T0) // NS for e in edges_ns if T0 <= e <= T0 + (k - 1) * NS]
    return np.unique(np.concatenate([hours, np.array([0, k - 1, *own], np.int64)]))


def _schedule(
    rng: np.random.Generator, n_dev: int, k: int
) -> tuple[list[list[tuple[int, int, float, float]]], pa.Table]:
    """Jobs per device as (start_ns, end_ns, share, level) on whole minutes,
    and the allocations table. Nodes of 8 GPUs alternate gang-scheduled
    training blocks and blocks of per-GPU jobs (15 % shared at 0.5)."""
    end = T0 + k * NS + 30 * MINUTE
    jobs: list[list[tuple[int, int, float, float]]] = [[] for _ in range(n_dev)]
    rows: list[tuple[str, int, int, int, float, str]] = []
    number = 0

    def mins(lo: int, hi: int) -> int:
        return int(rng.integers(lo, hi + 1)) * MINUTE

    for node in range(0, n_dev, 8):
        gpus = range(node, min(n_dev, node + 8))
        t = T0 - mins(0, 90)
        while t < end:
            if rng.random() < 0.35:
                e = t + mins(30, 240)
                number += 1
                level = float(rng.uniform(0.6, 0.95))
                for g in gpus:
                    jobs[g].append((t, e, 1.0, level))
                    rows.append((f"job-{number:07d}", g, t, e, 1.0, "training"))
                t = e
            else:
                block_end = t + mins(30, 180)
                for g in gpus:
                    tt = t + mins(0, 10)
                    while tt < block_end:
                        e = min(block_end, tt + mins(5, 60))
                        if e - tt < 5 * MINUTE:
                            break
                        number += 1
                        phase = ("data", "experimentation", "inference")[int(rng.integers(3))]
                        level = float(rng.uniform(0.1, 0.8))
                        share = 1.0
                        if phase != "data" and rng.random() < 0.15:
                            span = (e - tt) // MINUTE
                            bs = tt + int(rng.integers(0, max(1, span // 2))) * MINUTE
                            be = min(e, bs + max(1, int(span * rng.uniform(0.2, 0.6))) * MINUTE)
                            share = 0.5
                            number += 1
                            jobs[g].append((bs, be, 0.5, float(rng.uniform(0.1, 0.4))))
                            rows.append((f"job-{number:07d}", g, bs, be, 0.5, phase))
                        jobs[g].append((tt, e, share, level))
                        rows.append((f"job-{number - (share < 1):07d}", g, tt, e, share, phase))
                        tt = e + mins(0, 15)
                t = block_end
            t += mins(0, 30)
    rows.sort(key=lambda r: (r[2], r[0], r[1]))
    alloc = pa.table(
        {
            "job_id": pa.array([r[0] for r in rows], pa.string()),
            "device_id": pa.array([r[1] for r in rows], pa.int64()),
            "start": pa.array([r[2] for r in rows], pa.int64()).cast(TS),
            "end": pa.array([r[3] for r in rows], pa.int64()).cast(TS),
            "share": pa.array([r[4] for r in rows], pa.float64()),
            "phase": pa.array([r[5] for r in rows], pa.string()),
        }
    )
    return jobs, alloc


def _pieces(
    jobs: list[list[tuple[int, int, float, float]]], k: int
) -> tuple[list[int], list[float]]:
    """Power level (fraction of the dynamic range) between the job edges of
    each device, in key space (device * k + first sample)."""
    keys: list[int] = []
    levels: list[float] = []
    for d, js in enumerate(jobs):
        edges = sorted({T0, *(s for s, _, _, _ in js), *(e for _, e, _, _ in js)})
        last = -1
        for t in edges:
            u = min(1.0, sum(lv for s, e, _, lv in js if s <= t < e))
            ks = min(k, max(0, (t - T0) // NS))
            if ks >= k:
                break
            if ks == last:
                keys.pop()
                levels.pop()
            keys.append(d * k + ks)
            levels.append(u)
            last = ks
    return keys, levels


def _place(
    rng: np.random.Generator, k: int, n: int, bounds: I64, taken: list[tuple[int, int]]
) -> tuple[int, int] | None:
    """A run of ``n`` samples holding no boundary and not touching ``taken``."""
    for _ in range(20):
        a = int(rng.integers(1, max(2, k - n - 1)))
        b = a + n
        if b >= k - 1:
            continue
        i = int(np.searchsorted(bounds, a))
        if i < len(bounds) and bounds[i] < b:
            continue
        if any(a <= tb + 1 and ta <= b + 1 for ta, tb in taken):
            continue
        return a, b
    return None


def build(n_dev: int, k: int, seed: int = 0) -> Fleet:
    """The fleet's small tables and everything samples are computed from."""
    if n_dev < 1 or k < 60:
        raise ValueError(f"devices={n_dev}, samples per device={k}: need >= 1 and >= 60")
    rng = np.random.default_rng(seed)
    # nodes of 8 GPUs in blocks per site, so that ids sort in device order
    n_nodes = -(-n_dev // 8)
    width = max(4, len(str(n_nodes)))
    ids: list[str] = []
    site_of: list[int] = []
    for d in range(n_dev):
        node = d // 8
        site = node * len(SITES) // n_nodes
        first = -(-site * n_nodes // len(SITES))
        ids.append(f"{SITES[site][0]}-n{node - first:0{width}d}-g{d % 8}")
        site_of.append(site)
    assert ids == sorted(ids)
    model = rng.choice(len(MODELS), n_dev, p=[0.6, 0.25, 0.15])
    model = np.repeat(model[::8], 8)[:n_dev]  # one model per node
    tdp = np.array([MODELS[m][1] for m in model])
    idle = np.round(np.array([MODELS[m][2] for m in model]) + rng.uniform(-4, 4, n_dev), 1)
    cap = np.where(rng.random(n_dev) < 0.2, 0.75, 1.0)
    dyn = tdp * cap - idle

    jobs, alloc = _schedule(rng, n_dev, k)
    keys, levels = _pieces(jobs, k)

    # telemetry defects
    hours = k / 3600
    out: list[tuple[int, int, int]] = []
    inv: dict[int, int] = {}
    ex: dict[int, int] = {}
    flaky = rng.random(n_dev) < 0.1
    for d in range(n_dev):
        edges = [t for s, e, _, _ in jobs[d] for t in (s, e)]
        bounds = _boundaries(k, edges)
        taken: list[tuple[int, int]] = []
        for _ in range(int(rng.poisson(0.3 + hours / 12))):  # long: anywhere
            n = int(rng.integers(360, 2700))
            a = int(rng.integers(0, max(1, k - n)))
            taken.append((a, min(k, a + n)))
        for _ in range(int(rng.poisson(hours / 3))):  # short: never over a boundary
            spot = _place(rng, k, int(rng.integers(20, 151)), bounds, taken)
            if spot is not None:
                taken.append(spot)
        taken.sort()
        merged: list[list[int]] = []
        for a, b in taken:
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        out.extend((d, a, b) for a, b in merged)
        rate = 20.0 if flaky[d] else 1.0
        n_bad = int(rng.poisson(4e-5 * rate * k))
        for _ in range(n_bad):  # invalid: never on a boundary
            spot = _place(rng, k, 1, bounds, [(a, b - 1) for a, b in merged])
            if spot is not None:
                inv[d * k + spot[0]] = int(rng.choice([_NAN, _NEG, _INF], p=[0.6, 0.3, 0.1]))
        for _ in range(int(rng.poisson(6e-5 * rate * k))):  # duplicates: anywhere
            c = int(rng.integers(0, k))
            if d * k + c not in inv and not any(a <= c < b for a, b in merged):
                ex[d * k + c] = _DUP if rng.random() < 0.8 else _EXTRA_NAN

    installed = (T0 // (86400 * NS) - rng.integers(90, 900, n_dev)) * 86400 * NS
    retired: list[int | None] = [None] * n_dev
    life = np.array([MODELS[m][4] for m in model])
    for d in rng.choice(n_dev, max(1, n_dev // 50), replace=False).tolist():
        # new hardware: installed inside the period, at any second
        installed[d] = T0 + int(rng.integers(0, k)) * NS
    for d in rng.choice(n_dev, max(1, n_dev // 50), replace=False).tolist():
        # decommissioned inside the period (retired_at wins over lifetime_years)
        retired[d] = max(int(installed[d]) + MINUTE, T0 + int(rng.integers(1, k // 60)) * MINUTE)
    str_ids = pa.array(ids, pa.string())
    devices = pa.table(
        {
            "device_id": str_ids,
            "site_id": pa.array([SITES[s][0] for s in site_of], pa.string()),
            "model": pa.array([MODELS[m][0] for m in model], pa.string()),
            "embodied_kgco2e": pa.array([MODELS[m][3] for m in model], pa.float64()),
            "installed_at": pa.array(installed, pa.int64()).cast(TS),
            "lifetime_years": pa.array(life, pa.float64()),
            "retired_at": pa.array(retired, pa.int64()).cast(TS),
            "idle_power_w": pa.array(idle, pa.float64()),
        }
    )
    sites = pa.table(
        {
            "site_id": [s[0] for s in SITES],
            "region": [s[1] for s in SITES],
            "pue": pa.array([s[2] for s in SITES], pa.float64()),
        }
    )
    n_h = math.ceil(k / 3600) + 4
    starts = T0 - 2 * HOUR + np.arange(n_h, dtype=np.int64) * HOUR
    parts = []
    for region, (mean, amp, cfe) in REGIONS.items():
        hod = ((starts // HOUR) % 24).astype(np.float64)
        g = np.round(mean + amp * np.sin(2 * np.pi * (hod - 7) / 24) + rng.normal(0, 8, n_h), 2)
        f = np.clip(
            cfe + 0.15 * np.sin(2 * np.pi * (hod - 13) / 24) + rng.normal(0, 0.03, n_h), 0, 1
        )
        parts.append(
            pa.table(
                {
                    "region": pa.array([region] * n_h, pa.string()),
                    "start": pa.array(starts, pa.int64()).cast(TS),
                    "end": pa.array(starts + HOUR, pa.int64()).cast(TS),
                    "gco2e_per_kwh": pa.array(np.maximum(g, 5.0)),
                    "cfe": pa.array(np.round(f, 4)),
                    "residual_gco2e_per_kwh": pa.array(np.round(np.maximum(g, 5.0) * 1.12, 2)),
                }
            )
        )
    alloc_ids = str_ids.take(alloc.column("device_id"))
    alloc = alloc.set_column(1, "device_id", alloc_ids)
    ikeys = np.array(sorted(inv), np.int64)
    xkeys = np.array(sorted(ex), np.int64)
    return Fleet(
        n_dev=n_dev,
        k=k,
        seed=seed,
        ids=ids,
        idle=idle,
        dyn=dyn,
        piece_key=np.array(keys, np.int64),
        piece_u=np.array(levels, np.float64),
        out_dev=np.array([o[0] for o in out], np.int64),
        out_a=np.array([o[1] for o in out], np.int64),
        out_b=np.array([o[2] for o in out], np.int64),
        inv_key=ikeys,
        inv_code=np.array([inv[x] for x in ikeys.tolist()], np.int8),
        ex_key=xkeys,
        ex_kind=np.array([ex[x] for x in xkeys.tolist()], np.int8),
        tables={
            "devices": devices,
            "sites": sites,
            "intensity": pa.concat_tables(parts),
            "allocations": alloc,
        },
    )


def _mix(x: U64) -> U64:
    """splitmix64 finalizer."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _unit(keys: I64, seed: int, salt: int) -> F64:
    """A uniform [0, 1) per key, the same whatever the array layout."""
    x = keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    x = _mix(x ^ np.uint64(((seed & 0xFFFF) << 48) | (salt << 40)))
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53


def rect(f: Fleet, d0: int, d1: int, k0: int, k1: int, time_major: bool) -> pa.Table:
    """Rows of devices ``[d0, d1)`` x samples ``[k0, k1)`` in one order."""
    g, w = d1 - d0, k1 - k0
    dev = np.arange(d0, d1, dtype=np.int64)
    kk = np.arange(k0, k1, dtype=np.int64)
    key = dev[:, None] * f.k + kk[None, :]
    piece = np.searchsorted(f.piece_key, key, side="right") - 1
    u = f.piece_u[piece]
    wave = 0.9 + 0.1 * np.sin(kk * (2 * np.pi / 97.0))[None, :]
    noise = _unit(key, f.seed, 1) - 0.5
    p = f.idle[d0:d1, None] + f.dyn[d0:d1, None] * u * wave + 3.0 * noise
    p = np.round(np.maximum(p, 0.0) * 1000.0) / 1000.0  # whole milliwatts

    lo, hi = np.searchsorted(f.inv_key, [d0 * f.k + k0, (d1 - 1) * f.k + k1])
    for x, code in zip(f.inv_key[lo:hi].tolist(), f.inv_code[lo:hi].tolist(), strict=True):
        d, c = divmod(x, f.k)
        if k0 <= c < k1:
            p[d - d0, c - k0] = {_NAN: np.nan, _NEG: -1.0, _INF: np.inf}[code]
    missing = np.zeros((g, w), np.bool_)
    sel = (f.out_dev >= d0) & (f.out_dev < d1) & (f.out_a < k1) & (f.out_b > k0)
    for d, a, b in zip(f.out_dev[sel], f.out_a[sel], f.out_b[sel], strict=True):
        missing[d - d0, max(a, k0) - k0 : min(b, k1) - k0] = True

    if time_major:
        fdev = np.tile(dev, w)
        fts = np.repeat(T0 + kk * NS, g)
        fp, fmiss = p.T.ravel(), missing.T.ravel()
    else:
        fdev = np.repeat(dev, w)
        fts = np.tile(T0 + kk * NS, g)
        fp, fmiss = p.ravel(), missing.ravel()
    lo, hi = np.searchsorted(f.ex_key, [d0 * f.k + k0, (d1 - 1) * f.k + k1])
    xk = f.ex_key[lo:hi]
    xd, xc = np.divmod(xk, f.k)
    ok = (xc >= k0) & (xc < k1)
    xk, xd, xc, xkind = xk[ok], xd[ok], xc[ok], f.ex_kind[lo:hi][ok]
    ok = ~missing[xd - d0, xc - k0]
    xk, xd, xc, xkind = xk[ok], xd[ok], xc[ok], xkind[ok]
    pos = (xc - k0) * g + (xd - d0) if time_major else (xd - d0) * w + (xc - k0)
    jitter = np.round((_unit(xk, f.seed, 2) - 0.5) * 2000.0) / 1000.0
    xval = np.where(xkind == _DUP, p[xd - d0, xc - k0] + jitter, np.nan)
    removed = np.flatnonzero(fmiss)
    keep = ~fmiss
    fdev, fts, fp = fdev[keep], fts[keep], fp[keep]
    if len(pos):
        order = np.argsort(pos, kind="stable")
        pos, xval = pos[order], xval[order]
        at = pos - np.searchsorted(removed, pos) + 1
        fdev = np.insert(fdev, at, fdev[at - 1])
        fts = np.insert(fts, at, fts[at - 1])
        fp = np.insert(fp, at, xval)
    n = len(fts)
    ids = pa.array(f.ids, pa.string())
    return pa.Table.from_arrays(
        [
            pa.DictionaryArray.from_arrays(pa.array(fdev.astype(np.int32)), ids),
            pa.Array.from_buffers(TS, n, [None, pa.py_buffer(np.ascontiguousarray(fts))]),
            pa.array(fp, pa.float64()),
        ],
        schema=SCHEMA,
    )


SCHEMA = pa.schema(
    [("device_id", pa.dictionary(pa.int32(), pa.string())), ("ts", TS), ("power_w", pa.float64())]
)


def _write(f: Fleet, folder: Path, time_major: bool, file_rows: int) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("part-*.parquet"):
        old.unlink()
    writer: pq.ParquetWriter | None = None
    in_file = files = rows = 0

    def tables() -> list[tuple[int, int, int, int]]:
        if time_major:
            wk = max(1, RECT // f.n_dev)
            return [(0, f.n_dev, k0, min(f.k, k0 + wk)) for k0 in range(0, f.k, wk)]
        per = max(1, RECT // f.k)
        return [(d0, min(f.n_dev, d0 + per), 0, f.k) for d0 in range(0, f.n_dev, per)]

    for d0, d1, k0, k1 in tables():
        t = rect(f, d0, d1, k0, k1, time_major)
        while t.num_rows:
            n = min(t.num_rows, file_rows - in_file)
            head, t = t.slice(0, n), t.slice(n)
            if writer is None:
                writer = pq.ParquetWriter(
                    folder / f"part-{files:05d}.parquet",
                    SCHEMA,
                    compression="zstd",
                    use_dictionary=["device_id"],
                    column_encoding={"ts": "DELTA_BINARY_PACKED"},
                    store_schema=False,
                    write_statistics=True,
                )
                files += 1
            writer.write_table(head, row_group_size=max(n, 1))
            in_file += n
            rows += n
            if in_file >= file_rows:
                writer.close()
                writer, in_file = None, 0
    if writer is not None:
        writer.close()
    return rows


def params(samples: float, devices: int | None) -> tuple[int, int]:
    """(devices, samples per device) for a nominal sample count: by default
    about 20,000 samples (5.6 h at 1 Hz) per device."""
    n = int(samples)
    d = devices if devices is not None else max(1, round(n / 20_000))
    return d, max(60, round(n / d))


def generate(
    out: Path, samples: float, devices: int | None = None, seed: int = 0, file_rows: int = 2_000_000
) -> dict[str, Any]:
    """Write the fleet under ``out`` (both orders) unless ``out/bench.json``
    already describes the same parameters; returns that description."""
    n_dev, k = params(samples, devices)
    want = {"version": FORMAT_VERSION, "devices": n_dev, "k": k, "seed": seed}
    meta_path = out / "bench.json"
    if meta_path.exists():
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        if all(meta.get(a) == b for a, b in want.items()) and meta.get("file_rows") == file_rows:
            return meta
        meta_path.unlink()
    t = time.perf_counter()
    f = build(n_dev, k, seed)
    out.mkdir(parents=True, exist_ok=True)
    for name, table in f.tables.items():
        pq.write_table(table, out / f"{name}.parquet", compression="zstd")
    rows = {
        order: _write(f, out / "power" / f"by_{order}", order == "time", file_rows)
        for order in ("device", "time")
    }
    assert rows["device"] == rows["time"]
    meta = {
        **want,
        "file_rows": file_rows,
        "rows": rows["time"],
        "period_ns": list(f.period),
        "max_gap_ns": MAX_GAP_NS,
        "allocations": f.tables["allocations"].num_rows,
        "elapsed_s": round(time.perf_counter() - t, 2),
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")  # last: marks the data complete
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--samples", type=float, default=1e7)
    ap.add_argument("--devices", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--file-rows", type=int, default=2_000_000)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    meta = generate(a.out, a.samples, a.devices, a.seed, a.file_rows)
    json.dump(meta, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
