"""`carbonledger ingest` end to end: an nvidia-smi log and a sacct dump,
as the tools write them, to a ledger through the CLI; the day-partitioned
writer on its own (partitions, order, replacement, all-or-nothing)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from carbonledger.ingest import POWER_W_SCHEMA, write_power

UTC = dt.timezone.utc
START = dt.datetime(2026, 12, 2, 23, 30, tzinfo=UTC)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carbonledger.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def nvidia_smi_log(path: Path) -> None:
    """One hour across a UTC midnight, every 60 s: GPU-a at 200 W and 90%,
    GPU-b at 100 W and 2% (execution-idle), as ``nvidia-smi --query-gpu=
    timestamp,uuid,power.draw,utilization.gpu --format=csv -l 60`` writes it."""
    lines = ["timestamp, uuid, power.draw [W], utilization.gpu [%]"]
    for k in range(61):
        t = (START + dt.timedelta(seconds=60 * k)).strftime("%Y/%m/%d %H:%M:%S.000")
        lines.append(f"{t}, GPU-a, 200.00 W, 90 %")
        lines.append(f"{t}, GPU-b, 100.00 W, 2 %")
    path.write_text("\n".join(lines) + "\n")


def inputs(folder: Path) -> None:
    nvidia_smi_log(folder / "gpu.csv")
    (folder / "sacct.txt").write_text(
        "JobID|JobIDRaw|JobName|User|Account|Partition|Start|End|State|NodeList|AllocTRES\n"
        "77|77|train|alice|ml|gpu|2026-12-02T23:40:00|2026-12-03T00:20:00|COMPLETED|node01|"
        "billing=8,cpu=8,gres/gpu=2,mem=64G,node=1\n"
        "77.batch|77.batch|batch||ml||2026-12-02T23:40:00|2026-12-03T00:20:00|COMPLETED|"
        "node01|cpu=8,gres/gpu=2,mem=64G,node=1\n"
    )
    (folder / "map.csv").write_text("host,gpu,uuid\nnode01,0,GPU-a\nnode01,1,GPU-b\n")
    (folder / "devices.csv").write_text(
        "device_id,site_id,embodied_kgco2e,installed_at,lifetime_years\n"
        "GPU-a,s1,150,2025-01-01T00:00:00Z,4\nGPU-b,s1,150,2025-01-01T00:00:00Z,4\n"
    )
    (folder / "sites.csv").write_text("site_id,region,pue\ns1,R,1.2\n")
    (folder / "intensity.csv").write_text(
        "region,start,gco2e_per_kwh\nR,2026-12-01T00:00:00Z,300\n"
    )


def test_from_dumps_to_a_ledger(tmp_path: Path) -> None:
    inputs(tmp_path)
    ing = tmp_path / "ingested"
    r = cli("ingest", "nvidia-smi", str(tmp_path / "gpu.csv"), "--tz", "UTC", "--out", str(ing))
    assert r.returncode == 0, r.stderr
    assert "122 power samples of 2 device(s)" in r.stdout
    days = sorted(p.name for p in (ing / "power").iterdir())
    assert days == ["day=2026-12-02", "day=2026-12-03"]
    r = cli(
        "ingest", "slurm", str(tmp_path / "sacct.txt"), "--tz", "UTC",
        "--device-map", str(tmp_path / "map.csv"), "--device-id", "{uuid}", "--out", str(ing),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "2 allocation rows on 2 device(s)" in r.stdout
    ledger = tmp_path / "ledger"
    r = cli(
        "run", "--power", str(ing / "power" / "*" / "*.parquet"),
        "--devices", str(tmp_path / "devices.csv"), "--sites", str(tmp_path / "sites.csv"),
        "--intensity", str(tmp_path / "intensity.csv"),
        "--allocations", str(ing / "allocations.parquet"),
        "--period", "2026-12-02T23:30:00Z", "2026-12-03T00:30:00Z",
        "--out", str(ledger), "--quiet",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    alloc = pq.read_table(ledger / "allocations.parquet").to_pylist()
    assert sorted(a["device_id"] for a in alloc) == ["GPU-a", "GPU-b"]
    by_dev = {a["device_id"]: a for a in alloc}
    # 40 minutes of job 77 on each GPU, share 1 (2 GPUs of a 2-GPU node).
    assert by_dev["GPU-a"]["energy_kwh"] == pytest.approx(200 * 2400 / 3.6e6, rel=1e-12)
    assert by_dev["GPU-b"]["energy_kwh"] == pytest.approx(100 * 2400 / 3.6e6, rel=1e-12)
    assert by_dev["GPU-a"]["operational_kgco2e"] == pytest.approx(
        200 * 2400 * 1.2 * 300 / 3.6e9, rel=1e-12
    )
    # GPU-b sat at 2% utilization: all its time in the job is execution-idle.
    assert (by_dev["GPU-b"]["busy_s"], by_dev["GPU-b"]["execution_idle_s"]) == (0.0, 2400.0)
    assert by_dev["GPU-b"]["execution_idle_kwh"] == pytest.approx(100 * 2400 / 3.6e6, rel=1e-12)
    assert (by_dev["GPU-a"]["busy_s"], by_dev["GPU-a"]["execution_idle_kwh"]) == (2400.0, 0.0)
    assert all(a["job_id"] == "77" and a["user"] == "alice" for a in alloc)


def test_missing_zone_is_a_clear_cli_error(tmp_path: Path) -> None:
    nvidia_smi_log(tmp_path / "gpu.csv")
    r = cli("ingest", "nvidia-smi", str(tmp_path / "gpu.csv"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert "--tz" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o" / "power").exists()


def batch(rows: list[tuple[str, dt.datetime, float]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "device_id": [r[0] for r in rows],
            "ts": [r[1] for r in rows],
            "power_w": [r[2] for r in rows],
            "utilization": [None] * len(rows),
        },
        schema=POWER_W_SCHEMA,
    )


def test_write_power_partitions_by_utc_day_and_keeps_order(tmp_path: Path) -> None:
    t = dt.datetime(2026, 12, 2, 23, 59, 58, tzinfo=UTC)
    rows = [("g0", t + dt.timedelta(seconds=k), float(k)) for k in range(5)]
    rows += [("g1", t + dt.timedelta(seconds=k), 10.0 + k) for k in range(5)]
    reader = pa.RecordBatchReader.from_batches(POWER_W_SCHEMA, [batch(rows[:3]), batch(rows[3:])])
    s = write_power(reader, tmp_path)
    assert (s.rows, s.devices, len(s.files)) == (10, 2, 2)
    first = pq.read_table(tmp_path / "power" / "day=2026-12-02" / "part-0.parquet")
    second = pq.read_table(tmp_path / "power" / "day=2026-12-03" / "part-0.parquet")
    assert first.column("power_w").to_pylist() == [0.0, 1.0, 10.0, 11.0]
    assert second.column("power_w").to_pylist() == [2.0, 3.0, 4.0, 12.0, 13.0, 14.0]


def test_write_power_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    t = dt.datetime(2026, 12, 2, 12, tzinfo=UTC)
    good = [("g0", t, 1.0)]
    write_power(pa.RecordBatchReader.from_batches(POWER_W_SCHEMA, [batch(good)]), tmp_path)

    def failing() -> object:
        yield batch([("g0", t + dt.timedelta(days=3), 2.0)])
        raise RuntimeError("the dump ended badly")

    with pytest.raises(RuntimeError, match="ended badly"):
        write_power(pa.RecordBatchReader.from_batches(POWER_W_SCHEMA, failing()), tmp_path)
    # The earlier output stands, untouched; no temporary is left behind.
    assert [p.name for p in (tmp_path / "power").iterdir()] == ["day=2026-12-02"]
    assert [p.name for p in tmp_path.iterdir()] == ["power"]
    later = [("g0", t + dt.timedelta(days=1), 3.0)]
    write_power(pa.RecordBatchReader.from_batches(POWER_W_SCHEMA, [batch(later)]), tmp_path)
    assert [p.name for p in (tmp_path / "power").iterdir()] == ["day=2026-12-03"]
