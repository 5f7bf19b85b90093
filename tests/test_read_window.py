"""The read window (SPEC 8, v1.1) over a multi-day archive of many Parquet
files: a run given only the files that meet the window equals a run over
the whole archive, every column of every table; row groups outside it are
skipped unread; days add up to the whole period."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import carbonledger as cl

UTC = dt.timezone.utc
D0 = dt.datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 5
STEP_S = 60
TS = pa.timestamp("ns", tz="UTC")
DAY = dt.timedelta(days=1)
MAX_GAP = dt.timedelta(minutes=5)
DEVICES = ["g0", "g1", "g2", "g3"]


def ns(t: dt.datetime) -> int:
    return int(t.timestamp()) * 1_000_000_000


def write_archive(folder: Path) -> list[Path]:
    """One file per day, 6-hour row groups, devices interleaved in time
    order; g3 reports an energy counter (its own source)."""
    rng = np.random.default_rng(7)
    power_files = []
    (folder / "power").mkdir()
    (folder / "counters").mkdir()
    counter = 0.0
    for d in range(DAYS):
        t0 = ns(D0 + d * DAY)
        times = t0 + np.arange(0, 86_400, STEP_S, dtype=np.int64) * 1_000_000_000
        n = len(times)
        ids = np.repeat(np.array(DEVICES[:3]), n).reshape(3, n).T.ravel()
        ts = np.repeat(times, 3)
        watts = rng.uniform(80, 400, size=3 * n)
        t = pa.table({"device_id": ids, "ts": pa.array(ts, pa.int64()).cast(TS), "power_w": watts})
        path = folder / "power" / f"day-{d}.parquet"
        pq.write_table(t, path, row_group_size=3 * n // 4)
        power_files.append(path)
        rises = rng.uniform(50 * STEP_S, 300 * STEP_S, size=n)
        energy = counter + np.cumsum(rises)
        counter = float(energy[-1])
        c = pa.table(
            {
                "device_id": ["g3"] * n,
                "ts": pa.array(times, pa.int64()).cast(TS),
                "energy_j": energy,
            }
        )
        pq.write_table(c, folder / "counters" / f"day-{d}.parquet", row_group_size=n // 4)
    return power_files


def small_tables() -> dict[str, Any]:
    hours = [D0 + dt.timedelta(hours=h) for h in range(24 * DAYS + 1)]
    jobs = []
    for k in range(12):
        start = D0 + dt.timedelta(hours=7 * k + 3)
        jobs.append((f"j{k}", DEVICES[k % 4], start, start + dt.timedelta(hours=13), 0.5))
    return {
        "devices": pa.table(
            {
                "device_id": DEVICES,
                "site_id": ["s1", "s1", "s2", "s2"],
                "embodied_kgco2e": [150.0, 150.0, 300.0, 1000.0],
                "installed_at": pa.array([D0 - 400 * DAY] * 4, TS),
                "lifetime_years": [4.0] * 4,
            }
        ),
        "sites": pa.table({"site_id": ["s1", "s2"], "region": ["A", "B"], "pue": [1.2, 1.4]}),
        "intensity": pa.table(
            {
                "region": ["A"] * len(hours) + ["B"] * len(hours),
                "start": pa.array(hours + hours, TS),
                "gco2e_per_kwh": [300 + 100 * math.sin(i / 5) for i in range(len(hours))]
                + [500 - 50 * math.cos(i / 7) for i in range(len(hours))],
            }
        ),
        "allocations": pa.table(
            {
                "job_id": [j[0] for j in jobs],
                "device_id": [j[1] for j in jobs],
                "start": pa.array([j[2] for j in jobs], TS),
                "end": pa.array([j[3] for j in jobs], TS),
                "share": [j[4] for j in jobs],
            }
        ),
    }


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("archive")
    write_archive(folder)
    return folder


def run(power: list[Any], period: tuple[dt.datetime, dt.datetime]) -> cl.Report:
    return cl.account(power, **small_tables(), period=period, max_gap=MAX_GAP)


def files_meeting(folder: Path, lo: dt.datetime, hi: dt.datetime) -> tuple[list[str], list[str]]:
    """The power and counter day files whose day meets [lo, hi]."""
    days = [d for d in range(DAYS) if D0 + (d + 1) * DAY > lo and D0 + d * DAY <= hi]
    return (
        [str(folder / "power" / f"day-{d}.parquet") for d in days],
        [str(folder / "counters" / f"day-{d}.parquet") for d in days],
    )


def test_only_the_window_files_equal_the_whole_archive(archive: Path) -> None:
    period = (D0 + 2 * DAY, D0 + 3 * DAY)
    whole = run([str(archive / "power" / "*.parquet"), str(archive / "counters")], period)
    power_files, counter_files = files_meeting(archive, period[0] - MAX_GAP, period[1] + MAX_GAP)
    assert len(power_files) == 3  # the day before and after hold the window's edges
    part = run([power_files, counter_files], period)
    for name in ("allocations", "unallocated", "devices", "grid"):
        assert whole.tables[name].equals(part.tables[name]), name
    # Whole days outside the window were not read: of 5 days x 4 row groups
    # (two sources), the row groups of days 0 and 4 and the parts of days 1
    # and 3 that end before, or start after, the window.
    assert whole.unread.row_groups > 0
    assert whole.unread.row_groups > part.unread.row_groups
    assert whole.unread.bytes > 0


def test_row_groups_outside_the_window_are_not_read(archive: Path, tmp_path: Path) -> None:
    # A file far outside the window whose `ts` has a null: reading it would
    # be an input error; with an explicit period it is skipped unread.
    bad = pa.table(
        {
            "device_id": ["g0", "g0"],
            "ts": pa.array([D0 + 40 * DAY, None], TS),
            "power_w": [100.0, 100.0],
        }
    )
    pq.write_table(bad, tmp_path / "zz-later.parquet")
    files = [*sorted(str(p) for p in (archive / "power").glob("*.parquet"))]
    files.append(str(tmp_path / "zz-later.parquet"))
    period = (D0 + DAY, D0 + 2 * DAY)
    r = run([files], period)
    assert r.unread.rows >= 2
    with pytest.raises(cl.InputError, match="null"):
        cl.account([files], **small_tables())


def test_days_add_up_to_the_whole_period(archive: Path) -> None:
    sources = [str(archive / "power" / "*.parquet"), str(archive / "counters")]
    whole = run(sources, (D0 + DAY, D0 + 4 * DAY))
    days = [run(sources, (D0 + d * DAY, D0 + (d + 1) * DAY)) for d in (1, 2, 3)]
    for name, key in (("allocations", "job_id"), ("devices", "device_id")):
        for col in cl.METRIC_COLUMNS:
            summed = sum(np.array(day.tables[name].column(col).to_pylist()) for day in days)
            expected = np.array(whole.tables[name].column(col).to_pylist())
            scale = max(float(np.abs(expected).max()), 1e-300)
            assert np.allclose(summed, expected, rtol=1e-9, atol=1e-12 * scale), (name, col)
        assert whole.tables[name].column(key).equals(days[0].tables[name].column(key))


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_statistics_in_every_time_unit(tmp_path: Path, unit: str) -> None:
    times = [D0, D0 + dt.timedelta(minutes=1), D0 + 9 * DAY, D0 + 9 * DAY + dt.timedelta(minutes=1)]
    t = pa.table(
        {
            "device_id": ["g0"] * 4,
            "ts": pa.array(times, pa.timestamp(unit, tz="UTC")),
            "power_w": [100.0] * 4,
        }
    )
    pq.write_table(t, tmp_path / "p.parquet", row_group_size=2)
    r = run([str(tmp_path / "p.parquet")], (D0, D0 + dt.timedelta(minutes=1)))
    assert tuple(r.unread)[:2] == (1, 2)
    assert r.devices.filter(cl_id("g0"))["energy_kwh"][0] == pytest.approx(100 * 60 / 3.6e6)


def cl_id(device: str) -> Any:
    import polars as pl

    return pl.col("device_id") == device
