"""The Spark backend (issue 12) against the embedded engine: a generated
fleet with several devices per group, allocations on several devices, a
power source and a counter source, an explicit period; every table to
1e-9 relative. Needs PySpark 4 and Java 17 (CI installs both); skipped
where PySpark is missing, or with ``-m 'not spark'``."""

from __future__ import annotations

import datetime as dt
import math
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import carbonledger as cl

pyspark = pytest.importorskip("pyspark", reason="PySpark is not installed (CI installs it)")
pytestmark = pytest.mark.spark

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 5, 1, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")  # Spark's timestamps are microseconds
N_DEV = 9


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

    # The executors' Python: this one, which has carbonledger installed.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    s = (
        SparkSession.builder.master("local[2]")
        .appName("carbonledger-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    yield s
    s.stop()


def fleet() -> dict[str, Any]:
    rng = np.random.default_rng(11)
    ids = [f"g{i}" for i in range(N_DEV)]
    times = [T0 + dt.timedelta(seconds=30 * k) for k in range(600)]
    power_rows = [(d, t, float(rng.uniform(50, 500))) for t in times for d in ids[:6]]
    energy = dict.fromkeys(ids[6:8], 0.0)
    counter_rows = []
    for t in times:
        for d in ids[6:8]:
            energy[d] += float(rng.uniform(100, 200)) * 30
            counter_rows.append((d, t, energy[d]))
    hours = [T0 + dt.timedelta(hours=h) for h in range(6)]
    jobs = []
    for k in range(14):
        start = T0 + dt.timedelta(minutes=23 * k)
        for d in (ids[k % N_DEV], ids[(k + 4) % N_DEV]):  # a job on two devices
            jobs.append(
                (f"j{k}", d, start, start + dt.timedelta(minutes=50), 0.5, ["a", "b"][k % 2])
            )
    return {
        "power": pa.table(
            {
                "device_id": [r[0] for r in power_rows],
                "ts": pa.array([r[1] for r in power_rows], TS),
                "power_w": [r[2] for r in power_rows],
            }
        ),
        "counters": pa.table(
            {
                "device_id": [r[0] for r in counter_rows],
                "ts": pa.array([r[1] for r in counter_rows], TS),
                "energy_j": [r[2] for r in counter_rows],
            }
        ),
        "devices": pa.table(
            {
                "device_id": ids,
                "site_id": ["s1", "s2", "s3"] * 3,
                "embodied_kgco2e": [150.0 + 10 * i for i in range(N_DEV)],
                "installed_at": pa.array([T0 - dt.timedelta(days=100)] * N_DEV, TS),
                "lifetime_years": [4.0] * N_DEV,
            }
        ),
        "sites": pa.table(
            {"site_id": ["s1", "s2", "s3"], "region": ["A", "B", "A"], "pue": [1.1, 1.3, 1.2]}
        ),
        "intensity": pa.table(
            {
                "region": ["A"] * 6 + ["B"] * 6,
                "start": pa.array(hours + hours, TS),
                "gco2e_per_kwh": [300 + 50 * math.sin(h) for h in range(6)]
                + [450 + 30 * math.cos(h) for h in range(6)],
            }
        ),
        "allocations": pa.table(
            {
                "job_id": [j[0] for j in jobs],
                "device_id": [j[1] for j in jobs],
                "start": pa.array([j[2] for j in jobs], TS),
                "end": pa.array([j[3] for j in jobs], TS),
                "share": [j[4] for j in jobs],
                "team": [j[5] for j in jobs],
            }
        ),
    }


def assert_close(got: pa.Table, want: pa.Table, name: str) -> None:
    assert got.column_names == want.column_names, name
    assert got.num_rows == want.num_rows, name
    for col in want.column_names:
        a, b = got.column(col), want.column(col)
        if pa.types.is_floating(b.type):
            x, y = np.array(a.to_pylist(), float), np.array(b.to_pylist(), float)
            scale = max(float(np.nanmax(np.abs(y))) if len(y) else 0.0, 1e-300)
            assert np.allclose(x, y, rtol=1e-9, atol=1e-12 * scale, equal_nan=True), (name, col)
        elif pa.types.is_timestamp(b.type):
            assert (
                a.cast(pa.int64()).to_pylist()
                == b.cast(pa.timestamp("ns", "UTC")).cast(pa.int64()).to_pylist()
                or a.cast(pa.timestamp("ns", "UTC")).cast(pa.int64()).to_pylist()
                == b.cast(pa.timestamp("ns", "UTC")).cast(pa.int64()).to_pylist()
            ), (name, col)
        else:
            assert a.to_pylist() == b.to_pylist(), (name, col)


@pytest.mark.parametrize(
    "period", [(T0 + dt.timedelta(minutes=7), T0 + dt.timedelta(hours=4)), None]
)
def test_spark_equals_the_embedded_engine(spark: Any, period: Any) -> None:
    from carbonledger import spark as cl_spark

    f = fleet()
    options: dict[str, Any] = {"max_gap": dt.timedelta(minutes=2)}
    want = cl.account(
        [f["power"], f["counters"]], f["devices"], f["sites"], f["intensity"], f["allocations"],
        period=period, **options,
    )  # fmt: skip
    df = {k: spark.createDataFrame(v) for k, v in f.items()}
    got = cl_spark.account(
        [df["power"], df["counters"]], df["devices"], df["sites"], df["intensity"],
        df["allocations"], period=period, partitions=3, **options,
    )  # fmt: skip
    for name in ("allocations", "unallocated", "devices", "grid"):
        table = getattr(got, name).toArrow()
        assert_close(table, want.tables[name], name)


def test_unknown_device_is_an_error(spark: Any) -> None:
    from carbonledger import spark as cl_spark

    f = fleet()
    stray = pa.table({"device_id": ["nope"], "ts": pa.array([T0], TS), "power_w": [100.0]})
    df = {k: spark.createDataFrame(v) for k, v in f.items()}
    power = df["power"].unionByName(spark.createDataFrame(stray))
    with pytest.raises(Exception, match="nope"):
        r = cl_spark.account(
            power, df["devices"], df["sites"], df["intensity"], None,
            period=(T0, T0 + dt.timedelta(hours=1)),
        )  # fmt: skip
        r.devices.collect()


def test_cli_engine_spark_writes_the_same_ledger(tmp_path: Any) -> None:
    import subprocess

    import pyarrow.parquet as pq

    f = fleet()
    paths = {}
    for name, table in f.items():
        paths[name] = str(tmp_path / f"{name}.parquet")
        pq.write_table(table, paths[name])
    period = ["2026-05-01T00:10:00Z", "2026-05-01T04:00:00Z"]
    r = subprocess.run(
        [
            sys.executable, "-m", "carbonledger.cli", "run", "--engine", "spark",
            "--master", "local[2]", "--power", paths["power"], "--power", paths["counters"],
            "--devices", paths["devices"], "--sites", paths["sites"],
            "--intensity", paths["intensity"], "--allocations", paths["allocations"],
            "--period", *period, "--max-gap", "120", "--quiet", "--out", str(tmp_path / "ledger"),
        ],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYSPARK_PYTHON": sys.executable},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    want = cl.account(
        [f["power"], f["counters"]], f["devices"], f["sites"], f["intensity"], f["allocations"],
        period=(period[0], period[1]), max_gap=120,
    )  # fmt: skip
    for name in ("allocations", "unallocated", "devices", "grid"):
        assert_close(
            pq.read_table(tmp_path / "ledger" / f"{name}.parquet"), want.tables[name], name
        )
