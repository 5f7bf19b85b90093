"""SPEC section 10 invariants on random small fleets (hypothesis).

Every fleet has 1-4 devices at 1-2 sites in 1-2 regions, hourly-ish grid rows
that cover a generous range, allocations whose shares never sum above 1 on a
device at any instant, and power samples (``power_w`` or ``energy_j``) with
gaps longer than ``max_gap``, duplicates and invalid values.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import carbonledger as cl

REL = 1e-9
ABS = 1e-12
NS = 1_000_000_000
MS = 1_000_000
T0_NS = 1_735_689_600 * NS  # 2025-01-01T00:00:00Z
YEAR_S = 31_557_600
HOUR_S = 3_600
TS = pa.timestamp("ns", tz="UTC")
METRICS: tuple[str, ...] = tuple(cl.METRIC_COLUMNS)
ADDITIVE_METRICS: tuple[str, ...] = (
    "energy_kwh",
    "facility_energy_kwh",
    "operational_kgco2e",
    "operational_market_kgco2e",
)
PHASES = ("data", "experimentation", "training", "inference")
TEAMS = ("red", "blue", None)

Draw = Callable[[st.SearchStrategy[Any]], Any]

PROFILE = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ---------------------------------------------------------------------------
# The fleet model


@dataclass(frozen=True)
class Device:
    device_id: str
    site_id: str
    embodied_kgco2e: float
    installed_ns: int
    lifetime_years: float | None
    retired_ns: int | None
    idle_power_w: float
    counter_wrap_j: float | None


@dataclass(frozen=True)
class Grid:
    region: str
    start_ns: int
    end_ns: int | None
    gco2e_per_kwh: float
    cfe: float
    residual: float


@dataclass(frozen=True)
class Job:
    job_id: str
    device_id: str
    start_ns: int
    end_ns: int
    share: float
    phase: str
    team: str | None


@dataclass(frozen=True)
class Fleet:
    devices: tuple[Device, ...]
    sites: tuple[tuple[str, str, float], ...]
    grid: tuple[Grid, ...]
    has_residual: bool
    # (device_id, ts_ns, value), time-ordered within each device (dumped by device)
    samples: tuple[tuple[str, int, float], ...]
    counter: bool
    jobs: tuple[Job, ...]
    interpolation: str
    max_gap_s: int
    gap_fill: str

    @property
    def value_column(self) -> str:
        return "energy_j" if self.counter else "power_w"

    def valid_ts(self) -> list[int]:
        return [t for _, t, v in self.samples if math.isfinite(v) and v >= 0]

    def default_period(self) -> tuple[int, int]:
        ts = self.valid_ts()
        return min(ts), max(ts)

    # -- tables ------------------------------------------------------------

    def power(self, scale: float = 1.0, order: str = "device") -> pa.Table:
        rows = list(self.samples)
        if order == "ts":
            rows.sort(key=lambda r: (r[1], r[0]))  # stable: duplicates keep their order
        else:
            rows.sort(key=lambda r: (r[0], r[1]))
        return pa.table(
            {
                "device_id": pa.array([r[0] for r in rows], pa.string()),
                "ts": pa.array([r[1] for r in rows], TS),
                self.value_column: pa.array([r[2] * scale for r in rows], pa.float64()),
            }
        )

    def devices_table(
        self, order: Sequence[int] | None = None, wrap_scale: float = 1.0
    ) -> pa.Table:
        devs = [self.devices[i] for i in (order or range(len(self.devices)))]
        cols: dict[str, Any] = {
            "device_id": pa.array([d.device_id for d in devs], pa.string()),
            "site_id": [d.site_id for d in devs],
            "embodied_kgco2e": pa.array([d.embodied_kgco2e for d in devs], pa.float64()),
            "installed_at": pa.array([d.installed_ns for d in devs], TS),
            "lifetime_years": pa.array([d.lifetime_years for d in devs], pa.float64()),
            "retired_at": pa.array([d.retired_ns for d in devs], TS),
            "idle_power_w": pa.array([d.idle_power_w for d in devs], pa.float64()),
        }
        if self.counter:
            cols["counter_wrap_j"] = pa.array(
                [None if d.counter_wrap_j is None else d.counter_wrap_j * wrap_scale for d in devs],
                pa.float64(),
            )
        return pa.table(cols)

    def sites_table(self) -> pa.Table:
        return pa.table(
            {
                "site_id": [s[0] for s in self.sites],
                "region": [s[1] for s in self.sites],
                "pue": pa.array([s[2] for s in self.sites], pa.float64()),
            }
        )

    def intensity_table(self) -> pa.Table:
        cols: dict[str, Any] = {
            "region": [g.region for g in self.grid],
            "start": pa.array([g.start_ns for g in self.grid], TS),
            "end": pa.array([g.end_ns for g in self.grid], TS),
            "gco2e_per_kwh": pa.array([g.gco2e_per_kwh for g in self.grid], pa.float64()),
            "cfe": pa.array([g.cfe for g in self.grid], pa.float64()),
        }
        if self.has_residual:
            cols["residual_gco2e_per_kwh"] = pa.array([g.residual for g in self.grid], pa.float64())
        return pa.table(cols)

    def allocations_table(self) -> pa.Table:
        return pa.table(
            {
                "job_id": pa.array([j.job_id for j in self.jobs], pa.string()),
                "device_id": pa.array([j.device_id for j in self.jobs], pa.string()),
                "start": pa.array([j.start_ns for j in self.jobs], TS),
                "end": pa.array([j.end_ns for j in self.jobs], TS),
                "share": pa.array([j.share for j in self.jobs], pa.float64()),
                "phase": pa.array([j.phase for j in self.jobs], pa.string()),
                "team": pa.array([j.team for j in self.jobs], pa.string()),
            }
        )

    def account(
        self,
        power: Any = None,
        devices: Any = None,
        sites: Any = None,
        **over: Any,
    ) -> cl.Report:
        kwargs: dict[str, Any] = {
            "interpolation": self.interpolation,
            "max_gap": self.max_gap_s,
            "gap_fill": self.gap_fill,
        }
        kwargs.update(over)
        return cl.account(
            self.power() if power is None else power,
            self.devices_table() if devices is None else devices,
            self.sites_table() if sites is None else sites,
            self.intensity_table(),
            self.allocations_table(),
            **kwargs,
        )


# ---------------------------------------------------------------------------
# Strategies
#
# Hypothesis draws the structure of a fleet (how many devices, sites, regions,
# samples, lanes of jobs; which modes); the many values inside come from a
# ``random.Random`` seeded by a drawn integer. Thousands of single draws per
# example would make the file take minutes; this keeps it well under one.


def decimals(lo: float, hi: float, places: int = 3) -> st.SearchStrategy[float]:
    """Floats in [lo, hi] with a few decimals: no subnormal or 1e-300 corner
    values, whose relative error says nothing about the engine."""
    q = 10**places
    return st.integers(round(lo * q), round(hi * q)).map(lambda i: i / q)


class Values:
    """Random values with a bias towards the edges of their ranges."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)

    def dec(self, lo: float, hi: float, places: int = 3, edges: Sequence[float] = ()) -> float:
        if edges and self.rnd.random() < 0.15:
            return float(self.rnd.choice(list(edges)))
        q: int = 10**places
        return self.rnd.randint(round(lo * q), round(hi * q)) / q

    def int(self, lo: int, hi: int) -> int:
        return self.rnd.randint(lo, hi)

    def chance(self, p: float) -> bool:
        return self.rnd.random() < p

    def pick(self, items: Sequence[Any]) -> Any:
        return self.rnd.choice(list(items))


def _samples_for(
    v: Values,
    device_id: str,
    n: int,
    *,
    counter: bool,
    wrap: float | None,
    gap_ms: int,
    unit_ms: int,
    first: bool,
) -> list[tuple[str, int, float]]:
    """``n`` samples of one device, time-ordered, with duplicates, gaps longer
    than ``max_gap`` (and exactly ``max_gap``), invalid values and, for
    counters, wraps (``wrap`` known) or resets (unknown)."""
    t_ms = v.int(0, 600_000 // unit_ms) * unit_ms
    energy = v.dec(0.0, 5e4) if counter else 0.0
    if wrap is not None:
        energy = energy % wrap
    last_ms = t_ms
    out: list[tuple[str, int, float]] = []
    for i in range(n):
        if i > 0:
            kind = v.pick(("dup", "short", "short", "short", "short", "short", "edge", "long"))
            if first and i == 1 and kind == "dup":
                kind = "short"  # the first device has two valid distinct instants
            if kind == "short":
                t_ms += v.int(1, gap_ms // unit_ms) * unit_ms
            elif kind == "edge":
                t_ms += gap_ms
            elif kind == "long":
                t_ms += v.int(gap_ms // unit_ms + 1, 4 * gap_ms // unit_ms) * unit_ms
        invalid = not (first and i < 2) and v.chance(0.06)
        p = v.dec(0.0, 700.0, edges=(0.0, 700.0))
        if invalid:
            value = v.pick((math.nan, math.inf, -1.0))
        elif not counter:
            value = p
        else:
            energy += p * (t_ms - last_ms) / 1000.0
            last_ms = t_ms
            if wrap is not None:
                energy = energy % wrap
            elif v.chance(0.08):
                energy = v.dec(0.0, 1.0) * energy  # a counter reset
            value = energy
        out.append((device_id, T0_NS + t_ms * MS, value))
    return out


@st.composite
def fleets(draw: Draw, counter: bool | None = None, allow_idle_fill: bool = True) -> Fleet:
    v = Values(draw(st.integers(0, 2**32 - 1)))
    is_counter: bool = draw(st.booleans()) if counter is None else counter
    n_regions = draw(st.integers(1, 2))
    regions = [f"R{i}" for i in range(n_regions)]
    n_sites = draw(st.integers(1, 2))
    sites = tuple(
        (f"site-{i}", regions[i % n_regions], v.dec(1.0, 2.0, 4, edges=(1.0, 2.0)))
        for i in range(n_sites)
    )
    n_dev = draw(st.integers(1, 4))
    names = draw(
        st.lists(
            st.sampled_from(("gpu-a", "gpu-b", "z0", "a9", "host1/gpu0", "x")),
            min_size=n_dev,
            max_size=n_dev,
            unique=True,
        )
    )
    max_gap_s = draw(st.sampled_from((20, 60, 120, 300)))
    gap_ms = max_gap_s * 1000
    unit_ms = draw(st.sampled_from((1, 1000)))

    samples: list[tuple[str, int, float]] = []
    wraps: list[float | None] = []
    for i, name in enumerate(names):
        wrap = v.dec(2e4, 2e5) if is_counter and v.chance(0.5) else None
        wraps.append(wrap)
        n = draw(st.integers(2 if i == 0 else 0, 24))
        samples += _samples_for(
            v,
            name,
            n,
            counter=is_counter,
            wrap=wrap,
            gap_ms=gap_ms,
            unit_ms=unit_ms,
            first=i == 0,
        )
    first_s = (min(t for _, t, _ in samples) - T0_NS) // NS
    last_s = (max(t for _, t, _ in samples) - T0_NS) // NS
    span_s = max(last_s - first_s, 1)

    # amortization windows: mostly long ago to years ahead; often with an
    # edge (installed, retired, end of lifetime) among the samples
    devices: list[Device] = []
    for name, wrap in zip(names, wraps, strict=True):
        life = draw(st.sampled_from(("years", "retired", "both")))
        inside = v.chance(0.4)
        if inside:
            installed_s = v.int(first_s - span_s, last_s)
        elif v.chance(0.3):
            installed_s = v.pick((-YEAR_S, 0))
        else:
            installed_s = v.int(-3 * YEAR_S, 0)
        if inside:
            lifetime_years = v.dec(1.0, 3.0 * span_s, 0) / YEAR_S
            retired_s = installed_s + v.int(1, 3 * span_s)
        else:
            lifetime_years = v.dec(1e-4, 6.0, 6)
            retired_s = installed_s + v.int(60, 4 * YEAR_S)
        devices.append(
            Device(
                device_id=name,
                site_id=sites[v.int(0, n_sites - 1)][0],
                embodied_kgco2e=v.dec(0.0, 2000.0, edges=(0.0, 150.0)),
                installed_ns=T0_NS + installed_s * NS,
                lifetime_years=lifetime_years if life in ("years", "both") else None,
                retired_ns=T0_NS + retired_s * NS if life in ("retired", "both") else None,
                idle_power_w=v.dec(0.0, 120.0, edges=(0.0,)),
                counter_wrap_j=wrap,
            )
        )

    # hourly-ish grid rows from 6 h before the first to 6 h after the last
    # sample; `end` explicit or null (then: the next row's start, or for the
    # last row, as long as the row before)
    grid: list[Grid] = []
    has_residual = draw(st.booleans())
    for region in regions:
        starts = [-6 * HOUR_S - v.int(0, HOUR_S)]
        while starts[-1] <= last_s + 6 * HOUR_S:
            starts.append(starts[-1] + v.int(HOUR_S // 2, 2 * HOUR_S))
        for k, s_ in enumerate(starts):
            nxt = starts[k + 1] if k + 1 < len(starts) else None
            explicit = v.chance(0.5)
            if nxt is None:
                end = s_ + (s_ - starts[k - 1]) if explicit else None
            else:
                end = nxt if explicit else None
            grid.append(
                Grid(
                    region=region,
                    start_ns=T0_NS + s_ * NS,
                    end_ns=None if end is None else T0_NS + end * NS,
                    gco2e_per_kwh=v.dec(0.0, 900.0, edges=(0.0,)),
                    cfe=v.dec(0.0, 1.0, 4, edges=(0.0, 1.0)),
                    residual=v.dec(0.0, 1000.0),
                )
            )

    # allocations: per device, lanes of disjoint jobs (adjacent or apart);
    # the lanes' shares sum to <= 1, a job's share is at most its lane's
    jobs: list[Job] = []
    for d in devices:
        n_lanes = draw(st.integers(0, 3))
        lane_shares = [v.dec(0.05, 1.0, 4, edges=(1.0,)) for _ in range(n_lanes)]
        total = sum(lane_shares)
        if total > 1.0:
            lane_shares = [s_ / total for s_ in lane_shares]
        for lane in lane_shares:
            t_ms = v.int((first_s - span_s // 4) * 1000 - gap_ms, last_s * 1000)
            for _ in range(v.int(1, 3)):
                t_ms += v.pick((0, 1)) if v.chance(0.3) else v.int(0, span_s * 400)
                length = v.int(1, span_s * 700)
                share = lane if v.chance(0.4) else lane * v.dec(0.1, 1.0, 4)
                jobs.append(
                    Job(
                        job_id=f"j{len(jobs)}",
                        device_id=d.device_id,
                        start_ns=T0_NS + t_ms * MS,
                        end_ns=T0_NS + (t_ms + length) * MS,
                        share=min(share, 1.0),
                        phase=v.pick(PHASES),
                        team=v.pick(TEAMS),
                    )
                )
                t_ms += length
    v.rnd.shuffle(jobs)

    return Fleet(
        devices=tuple(devices),
        sites=sites,
        grid=tuple(grid),
        has_residual=has_residual,
        samples=tuple(samples),
        counter=is_counter,
        jobs=tuple(jobs),
        interpolation=draw(st.sampled_from(("linear", "previous"))),
        max_gap_s=max_gap_s,
        gap_fill=draw(st.sampled_from(("none", "idle"))) if allow_idle_fill else "none",
    )


# ---------------------------------------------------------------------------
# Comparison helpers


def _close(a: float, b: float, scale: float, rel: float = REL) -> bool:
    return abs(a - b) <= max(rel * max(abs(a), abs(b)), ABS * abs(scale))


def _by_device(tbl: pa.Table) -> dict[Any, dict[str, Any]]:
    return {row["device_id"]: row for row in tbl.to_pylist()}


class Mismatches:
    def __init__(self) -> None:
        self.items: list[str] = []

    def check(self, what: str, a: float, b: float, scale: float) -> None:
        if not _close(a, b, scale):
            self.items.append(f"{what}: {a!r} != {b!r} (scale {scale!r})")

    def equal(self, what: str, a: object, b: object) -> None:
        if a != b:
            self.items.append(f"{what}: {a!r} != {b!r}")

    def done(self) -> None:
        assert not self.items, "\n".join(self.items[:20])


def assert_same_report(base: cl.Report, other: cl.Report, period_s: float) -> None:
    """Same numbers, allocation by allocation (input order) and device by id."""
    m = Mismatches()
    dev = _by_device(base.tables["devices"])
    a_rows = base.tables["allocations"].to_pylist()
    b_rows = other.tables["allocations"].to_pylist()
    m.equal("allocation count", len(a_rows), len(b_rows))
    for a, b in zip(a_rows, b_rows, strict=False):
        m.equal("job_id", a["job_id"], b["job_id"])
        for c in ("duration_s", "uncovered_s"):
            m.check(f"allocation {a['job_id']} {c}", a[c], b[c], period_s)
        for c in METRICS:
            m.check(f"allocation {a['job_id']} {c}", a[c], b[c], dev[a["device_id"]][c])
    for name in ("unallocated", "devices"):
        xs = _by_device(base.tables[name])
        ys = _by_device(other.tables[name])
        m.equal(f"{name} ids", sorted(xs), sorted(ys))
        for d, x in xs.items():
            y = ys.get(d)
            if y is None:
                continue
            for c, v in x.items():
                if c == "device_id":
                    continue
                if c in METRICS:
                    m.check(f"{name} {d} {c}", v, y[c], dev[d][c])
                elif c in ("duration_s", "uncovered_s"):
                    m.check(f"{name} {d} {c}", v, y[c], period_s)
                else:
                    m.equal(f"{name} {d} {c}", v, y[c])
    m.done()


def _period_s(fleet: Fleet) -> float:
    a, b = fleet.default_period()
    return (b - a) / NS


def _random_period(fleet: Fleet, fa: float, fc: float) -> tuple[int, int]:
    """[a, c) within 15 min of the samples' span, at any nanosecond."""
    lo, hi = fleet.default_period()
    lo -= 900 * NS
    hi += 900 * NS
    a = lo + int(fa * (hi - lo) / 2)
    c = hi - int(fc * (hi - lo) / 2)
    return a, max(c, a + 2)


# ---------------------------------------------------------------------------
# 1. Conservation


@PROFILE
@given(fleets(), st.none() | st.tuples(decimals(0.0, 1.0, 6), decimals(0.0, 1.0, 6)))
def test_conservation(fleet: Fleet, cut: tuple[float, float] | None) -> None:
    if cut is None:  # the default period
        r = fleet.account()
        period_s = _period_s(fleet)
    else:  # an explicit period, reaching beyond the samples or inside them
        lo, hi = _random_period(fleet, *cut)
        r = fleet.account(period=(lo, hi))
        period_s = (hi - lo) / NS
    m = Mismatches()
    allocs = r.tables["allocations"].to_pylist()
    unalloc = _by_device(r.tables["unallocated"])
    devs = r.tables["devices"].to_pylist()
    assert [d["device_id"] for d in devs] == [d.device_id for d in fleet.devices]
    assert [u["device_id"] for u in r.tables["unallocated"].to_pylist()] == [
        d.device_id for d in fleet.devices
    ]
    assert [a["job_id"] for a in allocs] == [j.job_id for j in fleet.jobs]
    for d in devs:
        did = d["device_id"]
        mine = [a for a in allocs if a["device_id"] == did]
        u = unalloc[did]
        for c in METRICS:
            total = math.fsum([a[c] for a in mine] + [u[c]])
            m.check(f"{did} {c}: allocations + unallocated vs device", total, d[c], d[c])
        # duration_s / uncovered_s of allocations are not weighted by share;
        # the unallocated ones are: together they make the period and the
        # device's uncovered time.
        dur = math.fsum([a["share"] * a["duration_s"] for a in mine] + [u["duration_s"]])
        m.check(f"{did} share-weighted duration", dur, period_s, period_s)
        unc = math.fsum([a["share"] * a["uncovered_s"] for a in mine] + [u["uncovered_s"]])
        m.check(f"{did} share-weighted uncovered", unc, d["uncovered_s"], period_s)
        for row in [*mine, u, d]:
            m.check(
                f"{did} total = operational + embodied",
                row["total_kgco2e"],
                row["operational_kgco2e"] + row["embodied_kgco2e"],
                d["total_kgco2e"],
            )
            for c in METRICS:
                if not (row[c] >= 0.0):
                    m.items.append(f"{did} {c} negative or NaN: {row[c]!r}")
    # The grid table re-slices the same books by region and interval.
    grid = r.tables["grid"].drop_columns(["start", "end"]).to_pylist()
    for c in METRICS:
        fleet_total = math.fsum(d[c] for d in devs)
        m.check(f"grid {c} vs fleet", math.fsum(g[c] for g in grid), fleet_total, fleet_total)
    fleet_s = period_s * len(devs)
    m.check("grid device-seconds", math.fsum(g["duration_s"] for g in grid), fleet_s, fleet_s)
    unc = math.fsum(d["uncovered_s"] for d in devs)
    m.check("grid uncovered", math.fsum(g["uncovered_s"] for g in grid), unc, fleet_s)
    m.done()


# ---------------------------------------------------------------------------
# 2. Independence from batches, device order, dump order and threads


def _split_reader(tbl: pa.Table, cuts: list[int]) -> pa.RecordBatchReader:
    n = tbl.num_rows
    points = sorted({min(max(c, 0), n) for c in cuts} | {0, n})
    batches: list[pa.RecordBatch] = []
    for lo, hi in itertools.pairwise(points):
        batches.extend(tbl.slice(lo, hi - lo).to_batches())
    if cuts and cuts[0] % 3 == 0:  # an empty batch in the middle
        empty = pa.RecordBatch.from_pylist([], schema=tbl.schema)
        batches.insert(len(batches) // 2, empty)
    return pa.RecordBatchReader.from_batches(tbl.schema, batches)


@PROFILE
@given(
    fleets(),
    st.integers(1, 7),
    st.lists(st.integers(0, 120), max_size=8),
    st.sampled_from(("device", "ts")),
)
def test_independent_of_batches(fleet: Fleet, chunk: int, cuts: list[int], order: str) -> None:
    base = fleet.account()
    period_s = _period_s(fleet)
    tbl = fleet.power(order=order)
    assert_same_report(base, fleet.account(power=tbl.to_reader(max_chunksize=chunk)), period_s)
    assert_same_report(base, fleet.account(power=_split_reader(tbl, cuts)), period_s)


@PROFILE
@given(fleets(), st.randoms(use_true_random=False))
def test_independent_of_device_order(fleet: Fleet, rnd: random.Random) -> None:
    base = fleet.account()
    order = list(range(len(fleet.devices)))
    rnd.shuffle(order)
    site_rows = list(range(len(fleet.sites)))
    rnd.shuffle(site_rows)
    sites = fleet.sites_table().take(site_rows)
    other = fleet.account(devices=fleet.devices_table(order=order), sites=sites)
    assert [r["device_id"] for r in other.tables["devices"].to_pylist()] == [
        fleet.devices[i].device_id for i in order
    ]
    assert_same_report(base, other, _period_s(fleet))


@PROFILE
@given(fleets())
def test_independent_of_dump_order(fleet: Fleet) -> None:
    by_device = fleet.account(power=fleet.power(order="device"))
    by_ts = fleet.account(power=fleet.power(order="ts"))
    assert_same_report(by_device, by_ts, _period_s(fleet))


@PROFILE
@given(fleets(), st.randoms(use_true_random=False))
def test_sort_true_accepts_shuffled_samples(fleet: Fleet, rnd: random.Random) -> None:
    base = fleet.account()
    tbl = fleet.power()
    rows = list(range(tbl.num_rows))
    rnd.shuffle(rows)
    assert_same_report(base, fleet.account(power=tbl.take(rows), sort=True), _period_s(fleet))


@PROFILE
@given(fleets())
def test_independent_of_threads(fleet: Fleet) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CARBONLEDGER_MAX_THREADS", "1")
        one = fleet.account()
        mp.setenv("CARBONLEDGER_MAX_THREADS", "2")
        two = fleet.account()
        mp.setenv("CARBONLEDGER_MAX_THREADS", "4")
        four = fleet.account()
    assert_same_report(one, two, _period_s(fleet))
    assert_same_report(one, four, _period_s(fleet))


# ---------------------------------------------------------------------------
# 3. Period additivity


@PROFILE
@given(fleets(), decimals(0.0, 1.0, 6), decimals(0.0, 1.0, 6), decimals(0.0, 1.0, 6))
def test_period_additivity(fleet: Fleet, fa: float, fc: float, fb: float) -> None:
    a, c = _random_period(fleet, fa, fc)
    b = a + 1 + int(fb * (c - a - 2))
    assert a < b < c
    whole = fleet.account(period=(a, c))
    left = fleet.account(period=(a, b))
    right = fleet.account(period=(b, c))
    period_s = (c - a) / NS
    dev = _by_device(whole.tables["devices"])
    m = Mismatches()
    w_rows = whole.tables["allocations"].to_pylist()
    l_rows = left.tables["allocations"].to_pylist()
    r_rows = right.tables["allocations"].to_pylist()
    for w, x, y in zip(w_rows, l_rows, r_rows, strict=True):
        for col in ("duration_s", "uncovered_s"):
            m.check(f"allocation {w['job_id']} {col}", x[col] + y[col], w[col], period_s)
        for col in METRICS:
            scale = dev[w["device_id"]][col]
            m.check(f"allocation {w['job_id']} {col}", x[col] + y[col], w[col], scale)
    for name, cols in (
        ("unallocated", ("duration_s", "uncovered_s", *METRICS)),
        ("devices", ("uncovered_s", *METRICS)),
    ):
        ws = _by_device(whole.tables[name])
        ls = _by_device(left.tables[name])
        rs = _by_device(right.tables[name])
        for d, w in ws.items():
            for col in cols:
                scale = period_s if col.endswith("_s") else dev[d][col]
                m.check(f"{name} {d} {col}", ls[d][col] + rs[d][col], w[col], scale)
    m.done()


# ---------------------------------------------------------------------------
# 4. Linearity


def _check_linear(fleet: Fleet, k: float, explicit_period: bool) -> None:
    kwargs: dict[str, Any] = {}
    if explicit_period:
        a, b = fleet.default_period()
        kwargs["period"] = (a - 450 * NS, b + 450 * NS)
        period_s = (b - a) / NS + 900
    else:
        period_s = _period_s(fleet)
    base = fleet.account(**kwargs)
    scaled = fleet.account(
        power=fleet.power(scale=k),
        devices=fleet.devices_table(wrap_scale=k),
        **kwargs,
    )
    dev = _by_device(base.tables["devices"])
    m = Mismatches()

    def compare(what: str, x: dict[str, Any], y: dict[str, Any], did: Any) -> None:
        for col in ADDITIVE_METRICS:
            m.check(f"{what} {col}", y[col], k * x[col], k * dev[did][col])
        m.check(
            f"{what} embodied_kgco2e",
            y["embodied_kgco2e"],
            x["embodied_kgco2e"],
            dev[did]["embodied_kgco2e"],
        )
        for col in ("duration_s", "uncovered_s"):
            if col in x:
                m.check(f"{what} {col}", y[col], x[col], period_s)

    for x, y in zip(
        base.tables["allocations"].to_pylist(),
        scaled.tables["allocations"].to_pylist(),
        strict=True,
    ):
        compare(f"allocation {x['job_id']}", x, y, x["device_id"])
    for name in ("unallocated", "devices"):
        xs = _by_device(base.tables[name])
        ys = _by_device(scaled.tables[name])
        for d, x in xs.items():
            compare(f"{name} {d}", x, ys[d], d)
    m.done()


@PROFILE
@given(fleets(counter=False, allow_idle_fill=False), decimals(0.1, 10.0), st.booleans())
def test_linearity_power(fleet: Fleet, k: float, explicit_period: bool) -> None:
    _check_linear(fleet, k, explicit_period)


# Found by test_linearity_counters: three identical counter readings at one
# instant, then the same reading later (the counter stood still). Scaled by
# 1.334 the engine's mean of the three rounds one ulp above the reading, the
# next reading looks smaller, and a whole counter period (counter_wrap_j) is
# booked as a wrap.
FLAT_COUNTER = Fleet(
    devices=(
        Device(
            device_id="gpu-a",
            site_id="site-0",
            embodied_kgco2e=150.0,
            installed_ns=T0_NS - YEAR_S * NS,
            lifetime_years=4.0,
            retired_ns=None,
            idle_power_w=50.0,
            counter_wrap_j=1000.0,
        ),
    ),
    sites=(("site-0", "R0", 1.5),),
    grid=(Grid("R0", T0_NS - HOUR_S * NS, None, 400.0, 0.25, 300.0),),
    has_residual=False,
    samples=(
        ("gpu-a", T0_NS, 0.0),
        ("gpu-a", T0_NS + 10 * NS, 1.0),
        ("gpu-a", T0_NS + 10 * NS, 1.0),
        ("gpu-a", T0_NS + 10 * NS, 1.0),
        ("gpu-a", T0_NS + 20 * NS, 1.0),
    ),
    counter=True,
    jobs=(Job("j0", "gpu-a", T0_NS + 5 * NS, T0_NS + 15 * NS, 1.0, "training", "red"),),
    interpolation="linear",
    max_gap_s=20,
    gap_fill="none",
)


@PROFILE
@example(fleet=FLAT_COUNTER, k=1.334, explicit_period=False)
@given(fleets(counter=True, allow_idle_fill=False), decimals(0.1, 10.0), st.booleans())
def test_linearity_counters(fleet: Fleet, k: float, explicit_period: bool) -> None:
    _check_linear(fleet, k, explicit_period)


@PROFILE
@given(
    fleets(counter=True, allow_idle_fill=False),
    st.sampled_from((0.125, 0.25, 0.5, 2.0, 4.0, 8.0)),
    st.booleans(),
)
def test_linearity_counters_exact_scale(fleet: Fleet, k: float, explicit_period: bool) -> None:
    """Linearity for counters with k a power of two: scaling is exact in
    binary floating point, so the rounding of duplicate means cannot differ."""
    _check_linear(fleet, k, explicit_period)


@pytest.mark.parametrize("wrap", [1000.0, None])
def test_identical_duplicate_counter_readings_are_flat(wrap: float | None) -> None:
    """SPEC 4: duplicates are averaged; three equal readings average to that
    reading, and an equal reading 10 s later means no energy, not a wrap."""
    samples = (
        ("gpu-a", T0_NS, 0.0),
        ("gpu-a", T0_NS + 10 * NS, 1.334),
        ("gpu-a", T0_NS + 10 * NS, 1.334),
        ("gpu-a", T0_NS + 10 * NS, 1.334),
        ("gpu-a", T0_NS + 20 * NS, 1.334),
    )
    dev = replace(FLAT_COUNTER.devices[0], counter_wrap_j=wrap)
    fleet = replace(FLAT_COUNTER, devices=(dev,), samples=samples)
    d = fleet.account().devices.row(0, named=True)
    assert d["duplicate_samples"] == 2
    assert (d["counter_wraps"], d["counter_resets"], d["uncovered_s"]) == (0, 0, 0.0)
    assert d["energy_kwh"] == pytest.approx(1.334 / 3.6e6, rel=REL)


# ---------------------------------------------------------------------------
# 5. Constant power over a fully covered allocation


@PROFILE
@given(
    p=st.sampled_from((0.0, 300.0)) | decimals(0.0, 700.0),
    u=st.sampled_from((1.0, 2.0)) | decimals(1.0, 2.0),
    c=st.sampled_from((0.0, 400.0)) | decimals(0.0, 900.0),
    f=decimals(0.0, 1.0),
    t_ms=st.integers(1, 7_200_000),
    steps=st.lists(st.integers(1, 60_000), min_size=1, max_size=400),
    lead_ms=st.integers(0, 60_000),
    counter=st.booleans(),
    interpolation=st.sampled_from(("linear", "previous")),
    rows=st.integers(1, 4),
    data=st.data(),
)
def test_constant_power(
    p: float,
    u: float,
    c: float,
    f: float,
    t_ms: int,
    steps: list[int],
    lead_ms: int,
    counter: bool,
    interpolation: Literal["linear", "previous"],
    rows: int,
    data: st.DataObject,
) -> None:
    start_ms = 1_000_000 + lead_ms
    end_ms = start_ms + t_ms
    # samples every <= 60 s from 1_000_000 ms until at or after the end
    ts = [1_000_000]
    i = 0
    while ts[-1] < end_ms:
        ts.append(ts[-1] + steps[i % len(steps)])
        i += 1
    values = [p * (t - ts[0]) / 1000.0 + 1234.5 if counter else p for t in ts]
    power = pa.table(
        {
            "device_id": ["g"] * len(ts),
            "ts": pa.array([T0_NS + t * MS for t in ts], TS),
            ("energy_j" if counter else "power_w"): pa.array(values, pa.float64()),
        }
    )
    # grid rows of the same intensity, cut at random instants
    cuts = sorted(
        data.draw(
            st.lists(
                st.integers(1, ts[-1] + 60_000), min_size=rows - 1, max_size=rows - 1, unique=True
            )
        )
    )
    starts = [-HOUR_S * 1000, *cuts]
    ends = [*cuts, ts[-1] + HOUR_S * 1000]
    intensity = pa.table(
        {
            "region": ["R"] * len(starts),
            "start": pa.array([T0_NS + s * MS for s in starts], TS),
            "end": pa.array([T0_NS + e * MS for e in ends], TS),
            "gco2e_per_kwh": [c] * len(starts),
            "cfe": [f] * len(starts),
        }
    )
    devices = pa.table(
        {
            "device_id": ["g"],
            "site_id": ["s"],
            "embodied_kgco2e": [100.0],
            "installed_at": pa.array([T0_NS - YEAR_S * NS], TS),
            "lifetime_years": [3.0],
        }
    )
    sites = pa.table({"site_id": ["s"], "region": ["R"], "pue": [u]})
    allocations = pa.table(
        {
            "job_id": ["A"],
            "device_id": ["g"],
            "start": pa.array([T0_NS + start_ms * MS], TS),
            "end": pa.array([T0_NS + end_ms * MS], TS),
            "share": [1.0],
        }
    )
    r = cl.account(
        power, devices, sites, intensity, allocations, max_gap=60, interpolation=interpolation
    )
    a = r.allocations.row(0, named=True)
    t_s = t_ms / 1000.0
    energy_j = p * t_s
    scale = {
        "energy_kwh": 700 * t_s / 3.6e6,
        "operational_kgco2e": 700 * t_s * 2 * 900 / 3.6e9,
    }
    assert a["duration_s"] == pytest.approx(t_s, rel=REL)
    assert a["uncovered_s"] == 0.0
    assert _close(a["energy_kwh"], energy_j / 3.6e6, scale["energy_kwh"])
    assert _close(a["facility_energy_kwh"], energy_j * u / 3.6e6, 2 * scale["energy_kwh"])
    assert _close(a["operational_kgco2e"], energy_j * u * c / 3.6e9, scale["operational_kgco2e"])
    assert _close(
        a["operational_market_kgco2e"],
        energy_j * u * (1 - f) * c / 3.6e9,
        scale["operational_kgco2e"],
    )
    assert a["embodied_kgco2e"] == pytest.approx(100.0 / (3 * YEAR_S) * t_s, rel=REL)
