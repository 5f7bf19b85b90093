"""Synthetic GPU fleet generator: Parquet inputs for ``carbonledger.account``.

``python -m carbonledger.synth --devices 200 --hours 6 --hz 1 --out /tmp/fleet``
writes::

    fleet/power/by_device/part-00000.parquet ...           device_id, ts, power_w
    fleet/power/by_time/part-00000.parquet ...             same rows, sorted by (ts, device)
    fleet/power_counters/by_device/part-00000.parquet ...  device_id, ts, energy_j
    fleet/power_counters/by_time/part-00000.parquet ...
    fleet/devices.parquet  fleet/sites.parquet  fleet/intensity.parquet
    fleet/allocations.parquet

``power/by_device`` is sorted by ``(device_id, ts)``, ``power/by_time`` by
``(ts, device_id)``; both hold exactly the same rows, split into files of
``--file-rows`` rows with row groups of about 2**20 rows (zstd,
dictionary-encoded ``device_id``, delta-encoded ``ts``). A power table holds one of
``power_w``/``energy_j``, so the devices that report cumulative energy
counters (``--counters-fraction``) are written to ``power_counters/`` instead
of ``power/``. Pass one order folder of each (never ``power/`` itself, which
holds both orders) to ``account`` as two sources:
``account(power=["fleet/power/by_time", "fleet/power_counters/by_time"], ...)``.

Generation is chunked: every sample is a pure function of (seed, device,
sample index) plus small per-device tables (job pieces, outages, defects), so
each order is produced rectangle by rectangle (a group of devices x a range of
samples) without ever holding the dataset, and both orders give bit-identical
rows. Only ``+ - * /``, integer arithmetic and table look-ups are used per
sample, so results do not depend on array layout or SIMD paths. Counter
values are exact integer millijoule sums, so they too are identical in both
orders. Memory is bounded by one rectangle of about ``2**20`` samples (one
row group) per writer thread, whatever the dataset size; the per-device
tables grow with the number of jobs, not of samples.

The fleet
---------
- Sites (PUE 1.12-1.38, illustrative): ``fra1``/``fra2`` in Electricity Maps
  zone ``DE``, ``sjc1``/``sjc2`` in ``US-CAL-CISO``, ``sin1``/``sin2`` in
  ``SG``. Devices are GPUs in nodes of up to 8 (smaller for tiny fleets so
  that every site gets some), ids ``<site>-n<node>-g<gpu>``. Every node
  samples at its own sub-period offset (whole milliseconds), as independent
  exporters do; 20 % of nodes run power-capped at 75 % of TDP.
- Models (TDP from the ML CO2 Impact ``gpus.csv``): A100-SXM4-80GB 400 W
  (idle 58-70 W), H100-SXM5-80GB 700 W (idle 70-90 W), V100-SXM2-32GB 300 W
  (idle 55-65 W).
- Embodied carbon: 150 kgCO2e per GPU, the per-GPU figure Luccioni, Viguier
  and Ligozat (2022, "Estimating the carbon footprint of BLOOM", JMLR 2023)
  used for A100s, amortized over 6 years as there. H100 (5 years) and V100
  (6 years) reuse 150 kgCO2e for lack of a published per-GPU life-cycle
  assessment: their dies (814 and 815 mm2) and HBM packages are comparable
  to the A100's 826 mm2. These are stated assumptions; edit ``MODELS``.
- Grid intensity: real hourly Electricity Maps 2023 data (``direct`` basis,
  ODbL, see ``data/electricitymaps/README.md``) through
  ``carbonledger.intensity.from_electricitymaps``. The synthetic period
  defaults to 2023-06-01T00:00Z; a period outside 2023 reuses 2023 hour by
  hour (hour-of-year modulo 8760), so the grid rows always cover the period.

Power shapes (W = idle + (limit - idle) x utilization + jitter, in mW steps)
----------------------------------------------------------------------------
- idle: idle power +- 1.5 W.
- training (gang-scheduled on a whole node, 1-36 h): utilization from
  measured Zeus traces (You et al., NSDI 2023, ``data/zeus/``): average
  power / max power limit of heavy workloads (BERT, ResNet-50,
  DeepSpeech2) at the power limit nearest the device's cap, A40 profiles for
  Ampere/Hopper, V100 profiles for V100 -- on an uncapped A100, 225-370 W
  (median 325 W).
  60 s ramp-up, periodic checkpoint dips, synchronized across the job's GPUs.
- experimentation: intermittent: 30 s buckets on or off (duty 30-70 %), any
  Zeus workload when on.
- inference: bursty: 10 s load buckets follow the real request/token rate of
  the Azure LLM inference traces 2023 (``data/azure-llm-inference/``, code
  and conversation services, looped), over a base load of 12 %.
- data preprocessing: low (8-25 % of the dynamic range) with 10 s spikes.
- Jobs are allocated with share 1; 15 % of experimentation/inference jobs
  share their GPU with a second job (two shares of 0.5, never above 1).

Telemetry defects: outages longer than 5 min (uncovered time), short missed
scrapes (interpolated), NaN and negative (-1 W, "not available") samples and
duplicate timestamps (a re-read a little off the first value), more of them on
~10 % "flaky" devices. Counters are NVML-style millijoule totals wrapping at
2**32 mJ (``counter_wrap_j`` = 4294967.296 J), from a random initial value.

The CodeCarbon RAPL load steps were considered and not used: they measure CPU
package power, and their energy and power columns disagree (see the shared
data README).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from statistics import NormalDist
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .intensity import from_electricitymaps

__all__ = [
    "COUNTER_WRAP_J",
    "MODELS",
    "SITES",
    "fleet_tables",
    "generate",
    "main",
]

Order = Literal["device", "time", "both"]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
U64 = npt.NDArray[np.uint64]
Bool = npt.NDArray[np.bool_]

UTC = dt.timezone.utc
NS = 1_000_000_000
HOUR_NS = 3600 * NS
TS = pa.timestamp("ns", tz="UTC")
DEFAULT_START = dt.datetime(2023, 6, 1, tzinfo=UTC)
COUNTER_MODULUS_MJ = 2**32
COUNTER_WRAP_J = COUNTER_MODULUS_MJ / 1000.0  # 4294967.296 J: a 32-bit mJ counter
RECT_SAMPLES = 1 << 20  # one rectangle = one row group
DEFAULT_FILE_ROWS = 10_000_000

IDLE, DATA, EXPERIMENTATION, TRAINING, INFERENCE = 0, 1, 2, 3, 4
PHASE_NAMES = {DATA: "data", EXPERIMENTATION: "experimentation", TRAINING: "training"}
PHASE_NAMES[INFERENCE] = "inference"
TEAMS = ("search", "ads", "assistant", "research", "vision")
HEAVY_WORKLOADS = ("bert_base_uncased", "resnet50", "deepspeech2")


@dataclass(frozen=True)
class Model:
    name: str
    tdp_w: float
    idle_w: tuple[float, float]
    embodied_kgco2e: float
    lifetime_years: float
    weight: float
    zeus_gpu: str  # which Zeus profile stands in for it


MODELS: tuple[Model, ...] = (
    Model("A100-SXM4-80GB", 400.0, (58.0, 70.0), 150.0, 6.0, 0.6, "a40"),
    Model("H100-SXM5-80GB", 700.0, (70.0, 90.0), 150.0, 5.0, 0.25, "a40"),
    Model("V100-SXM2-32GB", 300.0, (55.0, 65.0), 150.0, 6.0, 0.15, "v100"),
)

# (site_id, Electricity Maps zone, PUE, city)
SITES: tuple[tuple[str, str, float, str], ...] = (
    ("fra1", "DE", 1.22, "Frankfurt"),
    ("fra2", "DE", 1.35, "Frankfurt"),
    ("sin1", "SG", 1.38, "Singapore"),
    ("sin2", "SG", 1.31, "Singapore"),
    ("sjc1", "US-CAL-CISO", 1.12, "San Jose"),
    ("sjc2", "US-CAL-CISO", 1.28, "San Jose"),
)
_EM_FILES = {"DE": "DE-LU", "US-CAL-CISO": "US-CAL-CISO", "SG": "SG"}
_Y2023_NS = int(dt.datetime(2023, 1, 1, tzinfo=UTC).timestamp()) * NS
_HOURS_2023 = 8760

# Defect rates per nominal sample (flaky devices get 20x).
_RATE_NAN = 2e-5
_RATE_NEG = 1e-5
_RATE_DUP = 5e-5
_FLAKY_FRACTION = 0.1
_NAN_CODE, _NEG_CODE, _DUP_CODE = 1, 2, 3


# ---------------------------------------------------------------------------
# Real profiles (package data)


def _data_file(*parts: str) -> str:
    return str(resources.files("carbonledger").joinpath("data", *parts))


def _read_csv(path: str) -> pa.Table:
    """A package CSV, read by path on this thread (small files; nothing is
    left on pyarrow's pool at exit, see ``catalog.embodied_catalog``)."""
    return pacsv.read_csv(path, read_options=pacsv.ReadOptions(use_threads=False))


@cache
def _zeus(gpu: str) -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
    """Zeus ``summary_power_<gpu>.csv``: per workload (network, batch size,
    optimizer), the limit fractions measured and average power / max limit."""
    t = _read_csv(_data_file("zeus", f"summary_power_{gpu}.csv")).to_pylist()
    max_limit = max(float(r["power_limit"]) for r in t)
    rows: dict[str, list[tuple[float, float]]] = {}
    for r in t:
        key = f"{r['network']}/{r['batch_size']}/{r['optimizer']}"
        rows.setdefault(key, []).append(
            (float(r["power_limit"]) / max_limit, float(r["average_power"]) / max_limit)
        )
    out = {}
    for key, pts in sorted(rows.items()):
        pts.sort()
        out[key] = (tuple(p[0] for p in pts), tuple(p[1] for p in pts))
    return out


@cache
def _workloads(gpu: str, heavy: bool) -> tuple[str, ...]:
    names = tuple(_zeus(gpu))
    return tuple(w for w in names if w.split("/")[0] in HEAVY_WORKLOADS) if heavy else names


@cache
def _zeus_ratio(gpu: str, workload: str, cap: float) -> float:
    """Average power as a fraction of TDP for a workload at the measured power
    limit nearest ``cap`` (a fraction of the max limit)."""
    fracs, ratios = _zeus(gpu)[workload]
    i = min(range(len(fracs)), key=lambda j: abs(fracs[j] - cap))
    return ratios[i]


@cache
def _inference_load() -> F64:
    """Load per 10 s bucket from the Azure LLM inference traces (tokens
    processed, prompt + generated, normalized by the 99th percentile of each
    trace and clipped to 1), both traces one after the other, looped to 1024
    buckets (a power of two, for cheap wrap-around)."""
    t = _read_csv(_data_file("azure-llm-inference", "tokens_per_10s.csv"))
    parts = []
    for name in ("code", "conv"):
        sub = t.filter(pc.equal(t.column("trace"), name))
        tok = np.asarray(sub.column("context_tokens"), np.float64) + np.asarray(
            sub.column("generated_tokens"), np.float64
        )
        parts.append(np.minimum(tok / float(np.percentile(tok, 99)), 1.0))
    both = np.concatenate(parts)
    return np.resize(both, 1024)


@cache
def _normal_table() -> F64:
    """Standard normal quantiles at 65,536 evenly spaced probabilities: a
    look-up table that turns 16 random bits into a Gaussian deviate."""
    nd = NormalDist()
    return np.array([nd.inv_cdf((i + 0.5) / 65536) for i in range(65536)], np.float64)


@cache
def _uniform_table() -> F64:
    return np.random.default_rng(20230601).random(4096)


# ---------------------------------------------------------------------------
# The fleet: layout, schedule and per-device tables


@dataclass
class _Fleet:
    start_ns: int
    period_ns: int
    k: int  # samples per device
    seed: int
    ids: list[str]
    site: list[str]
    host: list[str]
    model: list[int]
    idle_w: F64
    limit_w: F64
    offset_ns: I64
    installed_ns: I64
    counter: Bool
    e0_mj: I64
    # job pieces, sorted by key = device * k + first sample
    seg_key: I64
    seg_phase: npt.NDArray[np.int8]
    seg_u: F64
    seg_u2: F64
    seg_aux: I64
    seg_jk0: I64
    seg_a1: I64
    seg_a2: I64
    # telemetry outages [start, end) in key space, merged
    out_start: I64
    out_end: I64
    # defects: sorted unique keys and their codes
    def_key: I64
    def_code: npt.NDArray[np.int8]
    allocations: pa.Table = field(repr=False)

    @property
    def end_ns(self) -> int:
        return self.start_ns + self.k * self.period_ns


@dataclass
class _Job:
    job_id: str
    start_ns: int
    end_ns: int
    phase: int
    share: float
    team: str
    workload: str
    u: float  # utilization level, fraction of the dynamic range (TDP-relative for training)
    u2: float  # experimentation duty cycle
    aux: int  # table offset
    ckpt_s: float
    ckpt_len_s: float


class _Draw:
    """Scalar random draws served from blocks of a numpy Generator (one
    Generator call per scalar would cost microseconds each)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._u: list[float] = []
        self._n: list[float] = []

    def random(self) -> float:
        if not self._u:
            self._u = self.rng.random(4096).tolist()
        return self._u.pop()

    def normal(self) -> float:
        if not self._n:
            self._n = self.rng.standard_normal(4096).tolist()
        return self._n.pop()

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.random()

    def integers(self, lo: int, hi: int) -> int:
        """An integer in ``[lo, hi)``."""
        return min(hi - 1, lo + int(self.random() * (hi - lo)))

    def exponential(self, mean: float) -> float:
        return -mean * math.log1p(-self.random())


def _lognormal(rng: _Draw, median_s: float, sigma: float, lo: float, hi: float) -> int:
    return int(min(hi, max(lo, median_s * math.exp(sigma * rng.normal()))))


def _new_job(
    rng: _Draw,
    phase: int,
    start: int,
    end: int,
    number: int,
    zeus_gpu: str,
    cap: float,
) -> _Job:
    u2 = 0.0
    ckpt_s = ckpt_len_s = 0.0
    if phase == TRAINING:
        heavy = _workloads(zeus_gpu, True)
        workload = heavy[rng.integers(0, len(heavy))]
        u = _zeus_ratio(zeus_gpu, workload, cap)
        ckpt_s = float(rng.integers(15, 61) * 60)
        ckpt_len_s = float(rng.integers(20, 121))
    elif phase == EXPERIMENTATION:
        workloads = _workloads(zeus_gpu, False)
        workload = workloads[rng.integers(0, len(workloads))]
        u = _zeus_ratio(zeus_gpu, workload, cap)
        u2 = rng.uniform(0.3, 0.7)
    elif phase == INFERENCE:
        workload = "llm-serving"
        u = rng.uniform(0.45, 0.9)
    else:
        workload = "etl"
        u = rng.uniform(0.08, 0.25)
    return _Job(
        job_id=f"job-{number:07d}",
        start_ns=start,
        end_ns=end,
        phase=phase,
        share=1.0,
        team=TEAMS[rng.integers(0, len(TEAMS))],
        workload=workload,
        u=u,
        u2=u2,
        aux=rng.integers(0, 1 << 20),
        ckpt_s=ckpt_s,
        ckpt_len_s=ckpt_len_s,
    )


def _schedule_node(
    rng: _Draw,
    n_gpus: int,
    start: int,
    end: int,
    next_job: Callable[[], int],
    zeus_gpu: str,
    cap: float,
) -> list[list[_Job]]:
    """Jobs of one node: gang-scheduled training blocks over the whole node,
    or blocks where each GPU runs its own data/experimentation/inference jobs.
    Times are whole seconds; every job ends by ``end``."""
    per_gpu: list[list[_Job]] = [[] for _ in range(n_gpus)]
    sec = NS
    t = start + int(rng.uniform(0, 5400)) * sec
    while t < end:
        if rng.random() < 0.35:
            dur = _lognormal(rng, 5 * 3600, 0.8, 3600, 36 * 3600) * sec
            e = min(end, t + dur)
            job = _new_job(rng, TRAINING, t, e, next_job(), zeus_gpu, cap)
            for g in range(n_gpus):
                per_gpu[g].append(job)
            t = e
        else:
            block_end = min(end, t + int(rng.uniform(2, 8) * 3600) * sec)
            for g in range(n_gpus):
                tt = t + int(rng.exponential(600)) * sec
                while tt < block_end:
                    x = rng.random()  # 20 % data, 45 % experimentation, 35 % inference
                    phase = DATA if x < 0.2 else EXPERIMENTATION if x < 0.65 else INFERENCE
                    if phase == DATA:
                        d = _lognormal(rng, 2400, 0.6, 600, 3 * 3600)
                    elif phase == EXPERIMENTATION:
                        d = _lognormal(rng, 1800, 0.7, 300, 2 * 3600)
                    else:
                        d = _lognormal(rng, 3 * 3600, 0.6, 3600, 8 * 3600)
                    e = min(block_end, tt + d * sec)
                    if e - tt < 60 * sec:
                        break
                    a = _new_job(rng, phase, tt, e, next_job(), zeus_gpu, cap)
                    per_gpu[g].append(a)
                    if phase != DATA and rng.random() < 0.15:
                        # a second job shares the GPU (MPS/MIG): both at 0.5
                        span = (e - tt) // sec
                        bs = tt + int(rng.uniform(0, 0.5) * span) * sec
                        be = min(e, bs + max(60, int(rng.uniform(0.2, 0.6) * span)) * sec)
                        if be > bs:
                            b = _new_job(rng, phase, bs, be, next_job(), zeus_gpu, cap)
                            a.share = b.share = 0.5
                            per_gpu[g].append(b)
                    tt = e + int(rng.exponential(900)) * sec
            t = block_end
        t += int(rng.exponential(2400)) * sec
    return per_gpu


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def _pieces(
    jobs: list[_Job], idle: float, limit: float, tdp: float
) -> list[tuple[int, int, float, float, int, int, float, float]]:
    """Cut one GPU's timeline into pieces (start_ns, phase, u, u2, aux,
    job_start_ns, ckpt_s, ckpt_len_s); a job alone, two sharing jobs or idle.
    Jobs on one GPU never overlap except a shared pair (B inside A)."""
    dyn = max(limit - idle, 1.0)

    def level(j: _Job) -> float:
        if j.phase in (TRAINING, EXPERIMENTATION):  # Zeus ratios are TDP-relative
            return min(1.0, max(0.0, (j.u * tdp - idle) / dyn))
        return j.u

    out: list[tuple[int, int, float, float, int, int, float, float]] = [
        (-(1 << 62), IDLE, 0.0, 0.0, 0, 0, 0.0, 0.0)
    ]
    ordered = sorted(jobs, key=lambda j: (j.start_ns, -j.end_ns))
    i = 0
    while i < len(ordered):
        a = ordered[i]
        rec = (a.phase, level(a), a.u2, a.aux, a.start_ns, a.ckpt_s, a.ckpt_len_s)
        out.append((a.start_ns, *rec))
        if i + 1 < len(ordered) and ordered[i + 1].end_ns <= a.end_ns and a.share < 1.0:
            b = ordered[i + 1]
            both = min(1.0, level(a) + 0.6 * level(b))
            out.append((b.start_ns, a.phase, both, a.u2, a.aux, a.start_ns, 0.0, 0.0))
            out.append((b.end_ns, *rec))
            i += 1
        out.append((a.end_ns, IDLE, 0.0, 0.0, 0, 0, 0.0, 0.0))
        i += 1
    return out


def _build(
    n_devices: int,
    hours: float,
    hz: float,
    seed: int,
    counters_fraction: float,
    start: dt.datetime,
) -> _Fleet:
    if n_devices < 1:
        raise ValueError(f"devices: got {n_devices}; expected >= 1")
    if not hz > 0 or not hours > 0:
        raise ValueError(f"hours and hz must be > 0; got hours={hours}, hz={hz}")
    if not 0.0 <= counters_fraction <= 1.0:
        raise ValueError(f"counters_fraction: got {counters_fraction}; expected 0..1")
    period_ns = round(NS / hz)
    k = round(hours * 3600 * hz)
    if period_ns < 1 or k < 2:
        raise ValueError(f"hours={hours}, hz={hz}: expected at least 2 samples per device")
    if n_devices * k >= 1 << 62:
        raise ValueError("devices x samples too large")
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    start_ns = _to_ns(start)
    end_ns = start_ns + k * period_ns
    ss = np.random.SeedSequence(seed)
    rng_layout, rng_jobs, rng_out, rng_def = (np.random.default_rng(s) for s in ss.spawn(4))

    # Layout: nodes round-robin over the sites, each of one model.
    per_node = max(1, min(8, n_devices // len(SITES)))
    weights = np.array([m.weight for m in MODELS])
    nodes: list[tuple[str, int, int, float, int]] = []  # site, model, size, cap, offset
    remaining = n_devices
    i = 0
    while remaining > 0:
        size = min(per_node, remaining)
        model = int(rng_layout.choice(len(MODELS), p=weights / weights.sum()))
        cap = 0.75 if rng_layout.random() < 0.2 else 1.0
        ms = period_ns // 1_000_000
        off = int(rng_layout.integers(0, ms)) * 1_000_000 if ms >= 1 else 0
        nodes.append((SITES[i % len(SITES)][0], model, size, cap, off))
        remaining -= size
        i += 1
    nodes.sort(key=lambda n: n[0])  # stable: node numbers follow creation within a site
    per_site = max(sum(1 for n in nodes if n[0] == s[0]) for s in SITES)
    width = max(4, len(str(per_site - 1)))  # every id has the same length
    node_no: dict[str, int] = {}
    dev_rows: list[tuple[str, str, str, int, float, int, int]] = []
    for site, model, size, cap, off in nodes:
        n = node_no.get(site, 0)
        node_no[site] = n + 1
        host = f"{site}-n{n:0{width}d}"
        for g in range(size):
            dev_rows.append((f"{host}-g{g}", site, host, model, cap, off, len(dev_rows)))
    ids = [r[0] for r in dev_rows]
    if ids != sorted(ids):
        raise AssertionError("device ids are not generated in sorted order")
    nd = len(ids)
    model_idx = [r[3] for r in dev_rows]
    idle = np.array([rng_layout.uniform(*MODELS[m].idle_w) for m in model_idx], np.float64).round(1)
    tdp = np.array([MODELS[m].tdp_w for m in model_idx], np.float64)
    caps = np.array([r[4] for r in dev_rows], np.float64)
    limit = tdp * caps
    offset = np.array([r[5] for r in dev_rows], np.int64)
    age_days = rng_layout.uniform(90, 900, nd).astype(np.int64)
    installed = (start_ns // (86400 * NS) - age_days) * 86400 * NS
    n_counter = min(nd, round(nd * counters_fraction))
    counter = np.zeros(nd, np.bool_)
    counter[rng_layout.choice(nd, size=n_counter, replace=False)] = True
    e0 = rng_layout.integers(0, COUNTER_MODULUS_MJ, nd, dtype=np.int64)
    e0[~counter] = 0

    # Schedule, node by node.
    counter_box = [0]

    def next_job() -> int:
        counter_box[0] += 1
        return counter_box[0]

    jobs_by_dev: list[list[_Job]] = []
    draw = _Draw(rng_jobs)
    for _site, model, size, cap, _off in nodes:
        jobs_by_dev.extend(
            _schedule_node(draw, size, start_ns, end_ns, next_job, MODELS[model].zeus_gpu, cap)
        )

    # Pieces -> key space.
    keys: list[int] = []
    cols: list[tuple[int, float, float, int, int, int, int]] = []
    for d in range(nd):
        off = int(offset[d])
        for s_ns, ph, u, u2, aux, js, ck, cl in _pieces(
            jobs_by_dev[d], float(idle[d]), float(limit[d]), float(tdp[d])
        ):
            ks = min(k, max(0, _ceil_div(s_ns - start_ns - off, period_ns)))
            if ks >= k:
                continue
            jk0 = _ceil_div(js - start_ns - off, period_ns) if ph != IDLE else 0
            a1 = max(1, round(ck * hz)) if ck > 0 else 0
            a2 = round(cl * hz) if ck > 0 else 0
            keys.append(d * k + ks)
            cols.append((ph, u, u2, aux, jk0, a1, a2))
    key_arr = np.array(keys, np.int64)
    keep = np.ones(len(keys), np.bool_)
    keep[:-1] = key_arr[:-1] != key_arr[1:]  # pieces shorter than a sample: keep the last
    idx = np.flatnonzero(keep)
    colarr = [cols[i] for i in idx]
    seg_key = key_arr[idx]
    if np.any(np.diff(seg_key) <= 0):
        raise AssertionError("job pieces are not sorted")

    out_start, out_end = _outages(rng_out, nd, k, hz)
    def_key, def_code = _defects(rng_def, nd, k, out_start, out_end)
    fleet = _Fleet(
        start_ns=start_ns,
        period_ns=period_ns,
        k=k,
        seed=seed,
        ids=ids,
        site=[r[1] for r in dev_rows],
        host=[r[2] for r in dev_rows],
        model=model_idx,
        idle_w=idle,
        limit_w=limit,
        offset_ns=offset,
        installed_ns=installed.astype(np.int64),
        counter=counter,
        e0_mj=e0,
        seg_key=seg_key,
        seg_phase=np.array([c[0] for c in colarr], np.int8),
        seg_u=np.array([c[1] for c in colarr], np.float64),
        seg_u2=np.array([c[2] for c in colarr], np.float64),
        seg_aux=np.array([c[3] for c in colarr], np.int64),
        seg_jk0=np.array([c[4] for c in colarr], np.int64),
        seg_a1=np.array([c[5] for c in colarr], np.int64),
        seg_a2=np.array([c[6] for c in colarr], np.int64),
        out_start=out_start,
        out_end=out_end,
        def_key=def_key,
        def_code=def_code,
        allocations=_allocations_table(jobs_by_dev, ids),
    )
    return fleet


def _to_ns(t: dt.datetime) -> int:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    delta = t - dt.datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * NS + delta.microseconds * 1000


def _outages(gen: np.random.Generator, nd: int, k: int, hz: float) -> tuple[I64, I64]:
    """Per device: long outages (6-45 min, more than the 5 min max gap) and
    short missed scrapes (20-150 s), in key space, merged."""
    hours = k / hz / 3600
    rng = _Draw(gen)
    n_long = gen.poisson(0.35 + hours / 36, nd).tolist()
    n_short = gen.poisson(hours / 4, nd).tolist()
    starts: list[int] = []
    ends: list[int] = []
    for d in range(nd):
        iv: list[tuple[int, int]] = []
        for _ in range(n_long[d]):
            n = min(k // 3, math.ceil(rng.uniform(360, 2700) * hz) + 1)
            if n > 0:
                a = rng.integers(0, max(1, k - n))
                iv.append((a, a + n))
        for _ in range(n_short[d]):
            n = min(k // 3, math.floor(rng.uniform(20, 150) * hz))
            if n > 0:
                a = rng.integers(0, max(1, k - n))
                iv.append((a, a + n))
        iv.sort()
        merged: list[list[int]] = []
        for a, b in iv:
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        for a, b in merged:
            starts.append(d * k + a)
            ends.append(d * k + b)
    return np.array(starts, np.int64), np.array(ends, np.int64)


def _defects(
    rng: np.random.Generator, nd: int, k: int, out_start: I64, out_end: I64
) -> tuple[I64, npt.NDArray[np.int8]]:
    """NaN, negative and duplicated samples: a few, at least 2-3 of each in
    any fleet (outside outages, so that they show), weighted 20x towards
    ~10 % flaky devices."""
    flaky = rng.random(nd) < _FLAKY_FRACTION
    if not flaky.any():
        flaky[int(rng.integers(nd))] = True
    w = np.where(flaky, 20.0, 1.0)
    w /= w.sum()
    total = nd * k
    keys: list[I64] = []
    codes: list[npt.NDArray[np.int8]] = []
    for kind, rate, least in (
        (_NAN_CODE, _RATE_NAN, 2),
        (_NEG_CODE, _RATE_NEG, 2),
        (_DUP_CODE, _RATE_DUP, 3),
    ):
        n = max(least, round(rate * total))
        m = 2 * n + 16
        cand = rng.choice(nd, size=m, p=w) * k + rng.integers(0, k, m)
        i = np.searchsorted(out_start, cand, side="right") - 1
        lost = (i >= 0) & (out_end[np.maximum(i, 0)] > cand) if len(out_start) else i > 0
        cand = cand[~lost][:n]
        keys.append(cand)
        codes.append(np.full(len(cand), kind, np.int8))
    all_keys = np.concatenate(keys).astype(np.int64)
    all_codes = np.concatenate(codes)
    uniq, first = np.unique(all_keys, return_index=True)
    return uniq.astype(np.int64), all_codes[first]


def _allocations_table(jobs_by_dev: list[list[_Job]], ids: list[str]) -> pa.Table:
    rows = [(j, ids[d]) for d, jobs in enumerate(jobs_by_dev) for j in jobs]
    rows.sort(key=lambda r: (r[0].start_ns, r[0].job_id, r[1]))
    return pa.table(
        {
            "job_id": pa.array([j.job_id for j, _ in rows], pa.string()),
            "device_id": pa.array([d for _, d in rows], pa.string()),
            "start": pa.array([j.start_ns for j, _ in rows], pa.int64()).cast(TS),
            "end": pa.array([j.end_ns for j, _ in rows], pa.int64()).cast(TS),
            "share": pa.array([j.share for j, _ in rows], pa.float64()),
            "phase": pa.array([PHASE_NAMES[j.phase] for j, _ in rows], pa.string()),
            "team": pa.array([j.team for j, _ in rows], pa.string()),
            "workload": pa.array([j.workload for j, _ in rows], pa.string()),
        }
    )


# ---------------------------------------------------------------------------
# Small tables


def _devices_table(f: _Fleet) -> pa.Table:
    nd = len(f.ids)
    return pa.table(
        {
            "device_id": pa.array(f.ids, pa.string()),
            "site_id": pa.array(f.site, pa.string()),
            "host_id": pa.array(f.host, pa.string()),
            "model": pa.array([MODELS[m].name for m in f.model], pa.string()),
            "kind": pa.array(["gpu"] * nd, pa.string()),
            "embodied_kgco2e": pa.array([MODELS[m].embodied_kgco2e for m in f.model]),
            "installed_at": pa.array(f.installed_ns, pa.int64()).cast(TS),
            "lifetime_years": pa.array([MODELS[m].lifetime_years for m in f.model]),
            "idle_power_w": pa.array(f.idle_w, pa.float64()),
            "power_limit_w": pa.array(f.limit_w, pa.float64()),
            "telemetry": pa.array(["energy_j" if c else "power_w" for c in f.counter]),
            "counter_wrap_j": pa.array(
                [COUNTER_WRAP_J if c else None for c in f.counter], pa.float64()
            ),
        }
    )


def _sites_table() -> pa.Table:
    return pa.table(
        {
            "site_id": [s[0] for s in SITES],
            "region": [s[1] for s in SITES],
            "pue": pa.array([s[2] for s in SITES], pa.float64()),
            "city": [s[3] for s in SITES],
        }
    )


def _intensity_table(start_ns: int, end_ns: int) -> pa.Table:
    """Real 2023 Electricity Maps hours covering ``[start, end]``; hours
    outside 2023 reuse the 2023 hour with the same hour-of-year (the last
    day of a leap year reuses 2023-01-01)."""
    files = [_data_file("electricitymaps", f"{_EM_FILES[z]}_2023_hourly.csv") for z in _EM_FILES]
    em = from_electricitymaps(files, basis="direct")
    h0 = start_ns // HOUR_NS * HOUR_NS
    h1 = -(-(end_ns + 1) // HOUR_NS) * HOUR_NS
    hours = np.arange(h0, h1, HOUR_NS, dtype=np.int64)
    year_start = hours.astype("datetime64[ns]").astype("datetime64[Y]").astype("datetime64[ns]")
    src = ((hours - year_start.astype(np.int64)) // HOUR_NS) % _HOURS_2023
    parts = []
    for zone in _EM_FILES:
        sub = em.filter(pc.equal(em.column("region"), zone))
        st = np.asarray(sub.column("start").cast(pa.int64()))
        val = np.asarray(sub.column("gco2e_per_kwh"), np.float64)
        pos = (st - _Y2023_NS) // HOUR_NS
        full = np.full(_HOURS_2023, np.nan)
        full[pos] = val
        if np.isnan(full).any():
            raise ValueError(f"Electricity Maps 2023 data for {zone} has blank hours")
        parts.append(
            pa.table(
                {
                    "region": pa.array([zone] * len(hours), pa.string()),
                    "start": pa.array(hours, pa.int64()).cast(TS),
                    "end": pa.array(hours + HOUR_NS, pa.int64()).cast(TS),
                    "gco2e_per_kwh": pa.array(full[src], pa.float64()),
                }
            )
        )
    return pa.concat_tables(parts)


# ---------------------------------------------------------------------------
# Samples: one rectangle (devices x sample range) at a time


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def _hash(dev: I64, kk: I64, seed: int) -> U64:
    """splitmix64 of (seed, device, sample): a (G, W) array of random bits."""
    base = (dev.astype(np.uint64) + np.uint64((seed & 0xFFFFFFFF) << 32)) * _M2
    z = kk.astype(np.uint64) * _GOLD
    z = z[None, :] ^ base[:, None]
    z ^= z >> np.uint64(30)
    z *= _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return z


def _events(
    keys: I64, lo_keys: I64, hi_keys: I64, lo_side: Literal["left", "right"]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Indices into sorted ``keys`` between per-row bounds, and their rows."""
    lo = np.searchsorted(keys, lo_keys, side=lo_side)
    hi = np.searchsorted(keys, hi_keys, side="left")
    cnt = np.maximum(hi - lo, 0)
    total = int(cnt.sum())
    if total == 0:
        empty = np.zeros(0, np.intp)
        return empty, empty
    rows = np.repeat(np.arange(len(cnt)), cnt)
    starts = np.cumsum(cnt) - cnt
    ev = np.repeat(lo, cnt) + (np.arange(total) - np.repeat(starts, cnt))
    return ev.astype(np.intp), rows.astype(np.intp)


@dataclass
class _Rect:
    dev_idx: npt.NDArray[np.int32]  # row position in ``rows`` for each output row
    ts: I64
    value: F64


def _rect(
    f: _Fleet, rows: I64, k0: int, k1: int, counters: bool, acc: I64 | None, time_major: bool
) -> _Rect:
    """Samples of devices ``rows`` for sample indices ``[k0, k1)``, computed as
    (G, W) arrays and flattened device-major or time-major; ``acc`` carries
    the counters' running sums (mJ) from one rectangle to the next."""
    k = f.k
    g, w = len(rows), k1 - k0
    kk = np.arange(k0, k1, dtype=np.int64)
    base = rows * k
    # job piece of every sample
    s0 = np.searchsorted(f.seg_key, base + k0, side="right") - 1
    ev, er = _events(f.seg_key, base + k0, base + k1, "right")
    if len(ev):
        inc = np.zeros((g, w), np.int32)
        inc[er, f.seg_key[ev] - base[er] - k0] = 1
        seg = np.cumsum(inc, axis=1, dtype=np.int64)
        seg += s0[:, None]
        seg = seg.ravel()
    else:
        seg = np.repeat(s0, w)
    phase = f.seg_phase[seg]
    u = f.seg_u[seg]
    # phase shapes, each on its own samples; time buckets count from the
    # period start (a job's random ``aux`` shifts its tables)
    tb = _uniform_table()
    for code in (TRAINING, EXPERIMENTATION, INFERENCE, DATA):
        at = np.flatnonzero(phase == code)
        if not len(at):
            continue
        ps = seg[at]
        ks = kk[at % w]
        us = u[at]
        if code == TRAINING:  # 60 s ramp-up, checkpoint dips
            krel = ks - f.seg_jk0[ps]
            ramp = np.minimum(1.0, (krel * f.period_ns).astype(np.float64) / (60.0 * NS))
            a1 = f.seg_a1[ps]
            dip = (a1 > 0) & (krel % np.maximum(a1, 1) >= a1 - f.seg_a2[ps])
            u[at] = np.where(dip, 0.15, us * np.maximum(ramp, 0.05))
        elif code == EXPERIMENTATION:  # on or off by 30 s buckets
            b30 = ks * f.period_ns // (30 * NS) + f.seg_aux[ps]
            u[at] = np.where(tb[b30 & 4095] < f.seg_u2[ps], us, 0.02)
        elif code == INFERENCE:  # load by 10 s buckets from the Azure traces
            load = _inference_load()
            b10 = ks * f.period_ns // (10 * NS) + f.seg_aux[ps]
            u[at] = us * (0.12 + 0.88 * load[b10 & (len(load) - 1)])
        else:  # data loading: low, with 10 s spikes
            b10 = ks * f.period_ns // (10 * NS) + f.seg_aux[ps]
            u[at] = np.where(tb[b10 & 4095] < 0.2, np.minimum(1.0, us * 2.5), us)
    u = u.reshape(g, w)
    del seg, phase
    idle = f.idle_w[rows][:, None]
    dyn = (f.limit_w[rows] - f.idle_w[rows])[:, None]
    h = _hash(rows, kk, f.seed)
    noise = _normal_table()[(h & np.uint64(0xFFFF)).astype(np.intp)]
    watts = idle + dyn * u + (1.5 + 0.03 * dyn * u) * noise
    watts = np.clip(watts, 0.85 * idle, 1.02 * (idle + dyn))
    watts = np.round(watts * 1000.0) / 1000.0  # NVML reports whole milliwatts
    del u

    if counters:
        assert acc is not None
        inc_mj = np.round(watts * (f.period_ns / 1e6)).astype(np.int64)  # W x ms = mJ
        cum = np.cumsum(inc_mj, axis=1)
        cum -= inc_mj
        cum += acc[rows][:, None]
        acc[rows] += inc_mj.sum(axis=1)
        value = ((cum + f.e0_mj[rows][:, None]) % COUNTER_MODULUS_MJ).astype(np.float64) / 1000.0
    else:
        value = watts

    # outages
    ostate = np.searchsorted(f.out_start, base + k0, side="right") - 1
    inside = (ostate >= 0) & (f.out_end[np.maximum(ostate, 0)] > base + k0)
    es, rs = _events(f.out_start, base + k0, base + k1, "right")
    ee, re_ = _events(f.out_end, base + k0, base + k1, "right")
    gap: Bool | None = None
    if len(es) or len(ee) or inside.any():
        delta = np.zeros((g, w), np.int8)
        delta[rs, f.out_start[es] - base[rs] - k0] = 1
        delta[re_, f.out_end[ee] - base[re_] - k0] = -1
        gap = (np.cumsum(delta, axis=1, dtype=np.int16) + inside[:, None]) > 0

    # defects
    dv, dr = _events(f.def_key, base + k0, base + k1, "left")
    dcol = f.def_key[dv] - base[dr] - k0
    dcode = f.def_code[dv]
    dup_r = dr[dcode == _DUP_CODE]
    dup_c = dcol[dcode == _DUP_CODE]
    dup_value = value[dup_r, dup_c]
    if not counters and len(dup_r):
        hb = h[dup_r, dup_c] >> np.uint64(16)
        jig = _normal_table()[(hb & np.uint64(0xFFFF)).astype(np.intp)]
        dup_value = np.round((dup_value + 0.5 * jig) * 1000.0) / 1000.0
    for code, bad in ((_NAN_CODE, np.nan), (_NEG_CODE, -1.0)):
        sel = dcode == code
        value[dr[sel], dcol[sel]] = bad

    ts = f.start_ns + f.offset_ns[rows][:, None] + kk[None, :] * f.period_ns
    return _assemble(ts, value, gap, dup_r, dup_c, dup_value, time_major)


def _assemble(
    ts: I64,
    value: F64,
    gap: Bool | None,
    dup_r: npt.NDArray[np.intp],
    dup_c: I64,
    dup_value: F64,
    time_major: bool,
) -> _Rect:
    """Flatten (G, W) arrays device-major or time-major, dropping samples in
    outages and repeating duplicated ones (the copy right after the first)."""
    g, w = ts.shape
    if time_major:
        dev = np.tile(np.arange(g, dtype=np.int32), w)
        fts, fval = ts.T.ravel(), value.T.ravel()
    else:
        dev = np.repeat(np.arange(g, dtype=np.int32), w)
        fts, fval = ts.ravel(), value.ravel()
    if gap is not None:
        ok = ~gap[dup_r, dup_c]
        dup_r, dup_c, dup_value = dup_r[ok], dup_c[ok], dup_value[ok]
    pos = dup_c * g + dup_r if time_major else dup_r * w + dup_c
    if gap is not None:
        fgap = gap.T.ravel() if time_major else gap.ravel()
        removed = np.flatnonzero(fgap)
        keep = ~fgap
        dev, fts, fval = dev[keep], fts[keep], fval[keep]
        pos = pos - np.searchsorted(removed, pos)
    if len(pos):
        order = np.argsort(pos, kind="stable")
        pos, dup_value = pos[order], dup_value[order]
        dev = np.insert(dev, pos + 1, dev[pos])
        fts = np.insert(fts, pos + 1, fts[pos])
        fval = np.insert(fval, pos + 1, dup_value)
    return _Rect(dev, fts, fval)


# ---------------------------------------------------------------------------
# Writing


class _PartWriter:
    """Rows into ``part-NNNNN.parquet`` files of ``file_rows`` rows; every
    table written (one rectangle, about ``RECT_SAMPLES`` rows) is one row
    group, cut where a file fills up."""

    def __init__(self, folder: Path, schema: pa.Schema, file_rows: int):
        self.folder = folder
        self.schema = schema
        self.file_rows = file_rows
        self.files: list[str] = []
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._in_file = 0
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("part-*.parquet"):
            old.unlink()

    def write(self, t: pa.Table) -> None:
        while t.num_rows:
            n = min(t.num_rows, self.file_rows - self._in_file)
            head, t = t.slice(0, n), t.slice(n)
            if self._writer is None:
                path = self.folder / f"part-{len(self.files):05d}.parquet"
                self.files.append(str(path))
                self._writer = pq.ParquetWriter(
                    path,
                    self.schema,
                    compression="zstd",
                    use_dictionary=["device_id"],
                    column_encoding={"ts": "DELTA_BINARY_PACKED"},
                    store_schema=False,  # device_id reads back as plain strings
                    write_statistics=True,
                )
            self._writer.write_table(head, row_group_size=max(n, 1))
            self._in_file += n
            self.rows += n
            if self._in_file >= self.file_rows:
                self._writer.close()
                self._writer = None
                self._in_file = 0

    def close(self) -> list[str]:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return self.files


def _schema(counters: bool, dictionary: bool = True) -> pa.Schema:
    ids = pa.dictionary(pa.int32(), pa.string()) if dictionary else pa.string()
    return pa.schema(
        [
            ("device_id", ids),
            ("ts", TS),
            ("energy_j" if counters else "power_w", pa.float64()),
        ]
    )


def _to_table(rows: I64, r: _Rect, counters: bool, ids: pa.Array) -> pa.Table:
    """Arrow columns straight from the numpy buffers; ``device_id`` is
    dictionary-encoded with this rectangle's devices as the dictionary."""
    n = len(r.ts)
    dev = pa.DictionaryArray.from_arrays(
        pa.Array.from_buffers(pa.int32(), n, [None, pa.py_buffer(r.dev_idx)]),
        ids.take(pa.array(rows)),
    )
    ts = pa.Array.from_buffers(TS, n, [None, pa.py_buffer(np.ascontiguousarray(r.ts))])
    val = pa.Array.from_buffers(
        pa.float64(), n, [None, pa.py_buffer(np.ascontiguousarray(r.value))]
    )
    return pa.Table.from_arrays([dev, ts, val], schema=_schema(counters))


def _batches(
    f: _Fleet, counters: bool, order: Literal["device", "time"], rect_samples: int
) -> Iterator[pa.Table]:
    """The dataset's rows in one order, a rectangle at a time."""
    members = np.flatnonzero(f.counter == counters).astype(np.int64)
    if len(members) == 0:
        return
    ids = pa.array(f.ids, pa.string())
    acc = np.zeros(len(f.ids), np.int64) if counters else None
    k = f.k
    if order == "device":
        per = max(1, round(rect_samples / k))
        wk = min(k, rect_samples)
        for i in range(0, len(members), per):
            rows = members[i : i + per]
            for k0 in range(0, k, wk):
                r = _rect(f, rows, k0, min(k, k0 + wk), counters, acc, False)
                yield _to_table(rows, r, counters, ids)
    else:
        # within one sample index, rows sort by (offset, device)
        rows = members[np.lexsort((members, f.offset_ns[members]))]
        wk = max(1, rect_samples // len(rows))
        for k0 in range(0, k, wk):
            k1 = min(k, k0 + wk)
            r = _rect(f, rows, k0, k1, counters, acc, True)
            yield _to_table(rows, r, counters, ids)


def _write(
    f: _Fleet,
    counters: bool,
    order: Literal["device", "time"],
    folder: Path,
    file_rows: int,
    rect_samples: int,
) -> list[str]:
    w = _PartWriter(folder, _schema(counters), file_rows)
    for t in _batches(f, counters, order, rect_samples):
        w.write(t)
    return w.close()


# ---------------------------------------------------------------------------
# Public API


def fleet_tables(
    devices: int = 8,
    hours: float = 2.0,
    hz: float = 0.2,
    seed: int = 0,
    *,
    counters_fraction: float = 0.1,
    start: dt.datetime = DEFAULT_START,
    order: Literal["device", "time"] = "device",
) -> dict[str, pa.Table]:
    """A small fleet in memory: ``power`` (power_w devices), ``power_counters``
    (energy_j devices), ``devices``, ``sites``, ``intensity``,
    ``allocations``, the same rows ``generate`` writes for these arguments."""
    f = _build(devices, hours, hz, seed, counters_fraction, start)
    out = {}
    for name, counters in (("power", False), ("power_counters", True)):
        parts = [
            t.cast(_schema(counters, dictionary=False))
            for t in _batches(f, counters, order, RECT_SAMPLES)
        ]
        empty = _schema(counters, dictionary=False).empty_table()
        out[name] = pa.concat_tables(parts) if parts else empty
    out.update(_small_tables(f))
    return out


def _small_tables(f: _Fleet) -> dict[str, pa.Table]:
    return {
        "devices": _devices_table(f),
        "sites": _sites_table(),
        "intensity": _intensity_table(f.start_ns, f.end_ns + f.period_ns),
        "allocations": f.allocations,
    }


def generate(
    out_dir: str | os.PathLike[str],
    devices: int = 200,
    hours: float = 6.0,
    hz: float = 1.0,
    order: Order = "both",
    file_rows: int = DEFAULT_FILE_ROWS,
    seed: int = 0,
    counters_fraction: float = 0.1,
    start: dt.datetime = DEFAULT_START,
    *,
    workers: int | None = None,
    rect_samples: int = RECT_SAMPLES,
) -> dict[str, str | list[str]]:
    """Write a synthetic fleet under ``out_dir`` (see the module docstring).

    Returns paths: ``devices``, ``sites``, ``intensity``, ``allocations``
    (files), ``power_by_device``, ``power_by_time``,
    ``power_counters_by_device``, ``power_counters_by_time`` (lists of part
    files, empty where not written) and ``power`` / ``power_counters`` (the
    part files of the first order written). The same arguments always give
    the same files. ``workers`` threads (default: up to 2) write the
    datasets concurrently.
    """
    if order not in ("device", "time", "both"):
        raise ValueError(f"order: got {order!r}; expected 'device', 'time' or 'both'")
    if file_rows < 1:
        raise ValueError(f"file_rows: got {file_rows}; expected >= 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    f = _build(devices, hours, hz, seed, counters_fraction, start)
    paths: dict[str, str | list[str]] = {}
    for name, table in _small_tables(f).items():
        p = out / f"{name}.parquet"
        pq.write_table(table, p, compression="zstd")
        paths[name] = str(p)
    orders: list[Literal["device", "time"]] = (
        ["device", "time"] if order == "both" else ["device" if order == "device" else "time"]
    )
    tasks: list[tuple[str, bool, Literal["device", "time"]]] = []
    for counters, name in ((False, "power"), (True, "power_counters")):
        for o in ("device", "time"):
            key = f"{name}_by_{o}"
            paths[key] = []
            if o in orders and (f.counter == counters).any():
                tasks.append((key, counters, o))
    n_workers = workers if workers is not None else min(2, os.cpu_count() or 1)

    def run(task: tuple[str, bool, Literal["device", "time"]]) -> tuple[str, list[str]]:
        key, counters, o = task
        folder = out / ("power_counters" if counters else "power") / f"by_{o}"
        return key, _write(f, counters, o, folder, file_rows, rect_samples)

    if n_workers <= 1:
        results = [run(t) for t in tasks]
    else:
        with ThreadPoolExecutor(max_workers=n_workers) as ex:
            results = list(ex.map(run, tasks))
    for key, files in results:
        paths[key] = files
    for name in ("power", "power_counters"):
        first = paths[f"{name}_by_{orders[0]}"]
        assert isinstance(first, list)
        paths[name] = first
    return paths


def _parse_start(text: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m carbonledger.synth``: write a synthetic fleet; returns the exit code."""
    p = argparse.ArgumentParser(
        prog="python -m carbonledger.synth",
        description="Write a synthetic GPU fleet (Parquet) for carbonledger.account.",
    )
    p.add_argument("--devices", type=int, required=True)
    p.add_argument("--hours", type=float, required=True)
    p.add_argument("--hz", type=float, required=True, help="samples per second per device")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--order", choices=("device", "time", "both"), default="both")
    p.add_argument("--file-rows", type=int, default=DEFAULT_FILE_ROWS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--counters-fraction", type=float, default=0.1)
    p.add_argument("--start", type=_parse_start, default=DEFAULT_START, help="ISO 8601, UTC")
    p.add_argument("--workers", type=int, default=None, help="writer threads (default 2)")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    paths = generate(
        a.out,
        devices=a.devices,
        hours=a.hours,
        hz=a.hz,
        order=a.order,
        file_rows=a.file_rows,
        seed=a.seed,
        counters_fraction=a.counters_fraction,
        start=a.start,
        workers=a.workers,
    )
    elapsed = time.perf_counter() - t0
    rows = {}
    for key, val in paths.items():
        if key.startswith("power") and "_by_" in key and isinstance(val, list):
            rows[key] = sum(pq.ParquetFile(x).metadata.num_rows for x in val)
    nominal = a.devices * round(a.hours * 3600 * a.hz)
    summary = {
        "out": a.out,
        "elapsed_s": round(elapsed, 3),
        "samples_per_device": round(a.hours * 3600 * a.hz),
        "nominal_samples": nominal,
        "rows": rows,
        "rows_per_s": round(sum(rows.values()) / elapsed),
        "files": {k: (len(v) if isinstance(v, list) else v) for k, v in paths.items()},
    }
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
