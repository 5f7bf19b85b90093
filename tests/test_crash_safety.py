"""A run killed outright (``kill -9``) leaves a whole ledger or none, and the
temporary it was writing is removed by the next run (issue 9)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from carbonledger import _atomic, cli, synth

TABLES = ("allocations", "unallocated", "devices", "grid", "summary")
LEDGER_FILES = {*(f"{t}.parquet" for t in TABLES), "manifest.json", "report.html"}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """256 devices for 4 weeks, a sample every 2000 s (310,000 samples) and
    80,000 jobs: a run takes about 1.3 s, of which writing the ledger (mostly
    the allocations table) about 0.2 s, so kills land in the write too."""
    folder = tmp_path_factory.mktemp("crash_fleet")
    return synth.generate(
        folder, devices=256, hours=672.0, hz=0.0005, order="time", counters_fraction=0.0,
        workers=1,
    )  # fmt: skip


def _argv(fleet: dict[str, Any], out: Path) -> list[str]:
    argv = [sys.executable, "-m", "carbonledger.cli", "run", "--power", *fleet["power"]]
    for name in ("devices", "sites", "intensity", "allocations"):
        argv += [f"--{name}", str(fleet[name])]
    return [*argv, "--max-gap", "7200", "--out", str(out), "--quiet"]


def _start(fleet: dict[str, Any], out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(_argv(fleet, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _temps(parent: Path) -> set[str]:
    return {n for n in os.listdir(parent) if n.startswith(_atomic.MARKER)}


def _wait_for_temp(parent: Path, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> str:
    """The name of the first temporary that appears in ``parent`` (polled
    every millisecond, so a write phase of ~0.1 s is not missed)."""
    before = _temps(parent)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = _temps(parent) - before
        if new:
            return new.pop()
        assert proc.poll() is None, "the run ended without writing a temporary"
        time.sleep(0.001)
    raise AssertionError("no temporary appeared")


def _table_bytes(ledger: Path) -> dict[str, bytes]:
    return {t: (ledger / f"{t}.parquet").read_bytes() for t in TABLES}


def _assert_whole(ledger: Path, reference: dict[str, bytes]) -> None:
    """Every file of a ledger, readable, and the same tables as the reference."""
    assert {p.name for p in ledger.iterdir()} == LEDGER_FILES
    for t in TABLES:
        assert pq.read_table(ledger / f"{t}.parquet").num_rows > 0
    manifest = json.loads((ledger / "manifest.json").read_text())
    assert set(manifest["rows"]) >= {"allocations", "unallocated", "devices", "grid"}
    assert (ledger / "report.html").read_text(encoding="utf-8").rstrip().endswith("</html>")
    assert _table_bytes(ledger) == reference


def test_kill_9_leaves_a_whole_ledger_or_none(fleet: dict[str, Any], tmp_path: Path) -> None:
    parent = tmp_path / "ledgers"
    parent.mkdir()
    # The reference run, timed: when its temporary appears and is renamed.
    t0 = time.monotonic()
    ref = _start(fleet, parent / "reference")
    _wait_for_temp(parent, ref)
    t_temp = time.monotonic() - t0
    while not (parent / "reference").exists() and ref.poll() is None:
        time.sleep(0.001)
    write_s = time.monotonic() - t0 - t_temp
    assert ref.wait(timeout=60) == 0
    total_s = time.monotonic() - t0
    reference = _table_bytes(parent / "reference")
    _assert_whole(parent / "reference", reference)

    # Kills at random moments of a whole run (start-up, accounting, writing,
    # exit), and in the write (timed from the temporary's appearance). The
    # last one comes as the write starts, so a stale temporary is sure to be
    # there for the final run to remove.
    rng = random.Random(9)
    moments = [("any", rng.uniform(0.1, total_s)) for _ in range(5)]
    moments += [("write", rng.uniform(0.0, write_s)) for _ in range(4)] + [("write", 0.0)]
    stale_seen: set[str] = set()
    killed: set[int] = set()
    for i, (phase, delay) in enumerate(moments):
        out = parent / f"killed-{i}"
        proc = _start(fleet, out)
        if phase == "write":
            _wait_for_temp(parent, proc)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        killed.add(proc.pid)
        if out.exists():
            _assert_whole(out, reference)  # renamed before the kill: whole
        # Whatever the kill left is a temporary named for its dead owner.
        stale_seen |= _temps(parent)
    left = _temps(parent)
    assert left, "the kill at the start of the write left no temporary"
    # ".carbonledger-tmp.<pid>.<start>...": each names a killed run.
    assert {int(n.split(".")[2]) for n in stale_seen} <= killed

    # The next run removes every stale temporary, and writes the same tables.
    final = subprocess.run(_argv(fleet, parent / "final"), capture_output=True, timeout=120)
    assert final.returncode == 0, final.stderr
    assert _temps(parent) == set()
    _assert_whole(parent / "final", reference)
    assert {p.name for p in parent.iterdir()} <= {
        "reference",
        "final",
        *(f"killed-{i}" for i in range(len(moments))),
    }


def test_a_live_runs_temporary_is_never_removed(fleet: dict[str, Any], tmp_path: Path) -> None:
    """A run stopped (SIGSTOP) in the middle of its write is alive: a second
    run into the same folder must leave its temporary alone."""
    for _ in range(3):  # the stop must land before the write ends (~0.2 s)
        first = _start(fleet, tmp_path / "first")
        name = _wait_for_temp(tmp_path, first)
        first.send_signal(signal.SIGSTOP)
        if (tmp_path / name).exists():
            break
        first.send_signal(signal.SIGCONT)
        assert first.wait(timeout=60) == 0
        (tmp_path / "first").rename(tmp_path / f"done-{time.monotonic_ns()}")
    else:
        pytest.fail("could not stop a run during its write")
    try:
        second = subprocess.run(_argv(fleet, tmp_path / "second"), capture_output=True, timeout=120)
        assert second.returncode == 0, second.stderr
        assert (tmp_path / name).is_dir(), "a live run's temporary was removed"
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=60) == 0
    assert _temps(tmp_path) == set()
    reference = _table_bytes(tmp_path / "second")
    _assert_whole(tmp_path / "first", reference)


def _fake_temp(parent: Path, pid: int, start: int, host: str | None = None) -> Path:
    host = host if host is not None else _atomic._host()
    path = parent / f"{_atomic.MARKER}.{pid}.{start}.{host}.abc123_x.ledger"
    path.mkdir()
    (path / "allocations.parquet").write_bytes(b"partial")
    return path


def test_remove_stale_judges_owners(tmp_path: Path) -> None:
    me = os.getpid()
    my_start = _atomic._start_time(me)
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    zombie = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    zombie.kill()
    time.sleep(0.2)  # killed but not reaped: a zombie until wait()
    try:
        live = _atomic.temp_path(tmp_path / "mine", folder=True)
        live_file = _atomic.temp_path(tmp_path / "intensity.parquet", folder=False)
        live_file.write_bytes(b"being written")
        dead = _fake_temp(tmp_path, done.pid, 1)
        killed = _fake_temp(tmp_path, zombie.pid, _atomic._start_time(zombie.pid))
        reused = _fake_temp(tmp_path, me, my_start + 1)  # same pid, another process
        foreign = _fake_temp(tmp_path, done.pid, 1, host="0badc0de")
        other = tmp_path / ".ledger.abcdef"  # not ours: never touched
        other.mkdir()
        dead_file = tmp_path / f"{_atomic.MARKER}.{done.pid}.1.{_atomic._host()}.q_1.i.parquet"
        dead_file.write_bytes(b"partial")
        removed = _atomic.remove_stale(tmp_path)
    finally:
        zombie.wait()
    assert sorted(removed) == sorted([dead, killed, reused, dead_file])
    assert {p.name for p in tmp_path.iterdir()} == {
        live.name,
        live_file.name,
        foreign.name,
        other.name,
    }
    assert live.name.startswith(f"{_atomic.MARKER}.{me}.{my_start}.") and live.name.endswith(
        ".mine"
    )
    assert _atomic.remove_stale(tmp_path / "missing") == []


def test_intensity_writer_removes_stale_temporaries(tmp_path: Path) -> None:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    stale = tmp_path / f"{_atomic.MARKER}.{done.pid}.1.{_atomic._host()}.q_1.grid.parquet"
    stale.write_bytes(b"partial")
    em = Path(synth.__file__).parent / "data" / "electricitymaps" / "SG_2023_hourly.csv"
    out = tmp_path / "grid.parquet"
    args = ["intensity", "from-electricitymaps", str(em), "--basis", "direct", "--out", str(out)]
    assert cli.main(args) == 0
    assert {p.name for p in tmp_path.iterdir()} == {"grid.parquet"}
    assert pq.read_table(out).num_rows > 8000
    plain = tmp_path / "plain"
    plain.touch()  # the umask's permissions, as the file had before
    assert out.stat().st_mode == plain.stat().st_mode


def test_demo_force_removes_a_killed_runs_temporary(tmp_path: Path) -> None:
    """``demo --force`` replaces a demo folder in which a killed demo left its
    ledger temporary (it refused it as foreign before)."""
    root = tmp_path / "demo"
    (root / "inputs").mkdir(parents=True)
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    stale = _fake_temp(root, done.pid, 1)
    argv = ["demo", "--out", str(root), "--days", "0.02", "--force", "--quiet"]
    r = subprocess.run(
        [sys.executable, "-m", "carbonledger.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert not stale.exists()
    assert {p.name for p in root.iterdir()} == {"inputs", "ledger"}
