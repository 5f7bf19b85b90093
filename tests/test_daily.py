"""Incremental daily ledgers (issue 12): one partition per UTC day, days
replaced atomically and alone, roll-ups equal to a run over the range."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from test_read_window import D0, DAY, MAX_GAP, small_tables, write_archive

import carbonledger as cl
from carbonledger.daily import read_ledger, run_daily


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fleet")
    write_archive(folder)
    for name, table in small_tables().items():
        pq.write_table(table, folder / f"{name}.parquet")
    return folder


def inputs(folder: Path) -> dict[str, Any]:
    return {
        "power": [str(folder / "power" / "*.parquet"), str(folder / "counters")],
        "devices": str(folder / "devices.parquet"),
        "sites": str(folder / "sites.parquet"),
        "intensity": str(folder / "intensity.parquet"),
        "allocations": str(folder / "allocations.parquet"),
    }


def test_days_roll_up_to_the_whole_run(fleet: Path, tmp_path: Path) -> None:
    period = (D0 + DAY, D0 + 4 * DAY)
    written = run_daily(
        tmp_path / "ledger", period=period, max_gap=MAX_GAP, quiet=True, **inputs(fleet)
    )
    assert [p.name for p in written] == ["day=2026-03-02", "day=2026-03-03", "day=2026-03-04"]
    whole = cl.account(**inputs(fleet), period=period, max_gap=MAX_GAP)
    rolled = read_ledger(tmp_path / "ledger")
    assert rolled.period_ns == whole.period_ns
    for name in ("allocations", "unallocated", "devices"):
        got, want = rolled.tables[name], whole.tables[name]
        assert got.column_names == want.column_names
        for col in [*cl.METRIC_COLUMNS, "duration_s", "uncovered_s"]:
            if col not in want.column_names:
                continue
            a, b = np.array(got[col].to_pylist()), np.array(want[col].to_pylist())
            assert np.allclose(a, b, rtol=1e-9, atol=1e-12 * max(abs(b).max(), 1e-300)), (name, col)
    # Each day read only its window: most of the archive was left unread.
    one = read_ledger(tmp_path / "ledger", dt.date(2026, 3, 3), dt.date(2026, 3, 3))
    assert one.period_ns == (
        int((D0 + 2 * DAY).timestamp()) * 10**9,
        int((D0 + 3 * DAY).timestamp()) * 10**9,
    )


def test_rerunning_a_day_replaces_it_alone(fleet: Path, tmp_path: Path) -> None:
    out = tmp_path / "ledger"
    run_daily(out, period=(D0 + DAY, D0 + 3 * DAY), max_gap=MAX_GAP, quiet=True, **inputs(fleet))
    other = out / "day=2026-03-02" / "allocations.parquet"
    before = (other.stat().st_mtime_ns, other.read_bytes())
    target = out / "day=2026-03-03" / "allocations.parquet"
    first = target.read_bytes()
    run_daily(
        out, period=(D0 + 2 * DAY, D0 + 3 * DAY), max_gap=MAX_GAP, quiet=True, **inputs(fleet)
    )
    assert (other.stat().st_mtime_ns, other.read_bytes()) == before
    assert target.read_bytes() == first  # the same inputs, the same bytes
    assert sorted(p.name for p in out.iterdir()) == ["day=2026-03-02", "day=2026-03-03"]


def test_cli_partition_by_day_and_summarize(fleet: Path, tmp_path: Path) -> None:
    i = inputs(fleet)
    out = tmp_path / "ledger"
    args = [
        sys.executable, "-m", "carbonledger.cli", "run",
        "--power", *i["power"][:1], "--power", i["power"][1],
        "--devices", str(i["devices"]), "--sites", str(i["sites"]),
        "--intensity", str(i["intensity"]), "--allocations", str(i["allocations"]),
        "--period", "2026-03-02T00:00:00Z", "2026-03-04T00:00:00Z",
        "--partition-by", "day", "--out", str(out),
    ]  # fmt: skip
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "2 day partition(s)" in r.stdout and "unread" in r.stderr
    s = subprocess.run(
        [sys.executable, "-m", "carbonledger.cli", "summarize", str(out), "--by", "job_id",
         "--from", "2026-03-03", "--to", "2026-03-03"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert s.returncode == 0, s.stderr
    assert "j" in s.stdout
    no_period = [a for a in args if a not in ("--period", *args[args.index("--period") + 1 :][:2])]
    missing = subprocess.run(no_period, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "--period" in missing.stderr
    assert os.path.isdir(out / "day=2026-03-03")
