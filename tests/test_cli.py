"""The command line, run as a user would: a subprocess."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from conftest import power_table
from htmlcheck import network_refs, parse_page

from carbonledger import synth
from carbonledger.html_report import SECTION_IDS


def write_inputs(spec12: dict[str, Any], folder: Path) -> dict[str, str]:
    paths = {}
    for name in ("power", "devices", "sites", "intensity", "allocations"):
        path = folder / f"{name}.parquet"
        pq.write_table(spec12[name], path)
        paths[name] = str(path)
    return paths


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carbonledger.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_args(paths: dict[str, str], out: Path, *extra: str) -> list[str]:
    args = ["run", "--out", str(out), "--max-gap", "15"]
    for name, path in paths.items():
        args += [f"--{name}", path]
    return [*args, "--period", "2025-01-01T00:00:00Z", "2025-01-01T00:00:40Z", *extra]


def test_run_writes_the_ledger(spec12: dict[str, Any], tmp_path: Path) -> None:
    paths = write_inputs(spec12, tmp_path)
    out = tmp_path / "ledger"
    r = cli(*run_args(paths, out))
    assert r.returncode == 0, r.stderr
    assert "operational_kgco2e" in r.stdout
    assert r.stderr == ""  # no progress line when stderr is not a terminal
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "allocations.parquet",
        "devices.parquet",
        "grid.parquet",
        "manifest.json",
        "report.html",
        "summary.parquet",
        "unallocated.parquet",
    ]
    alloc = pq.read_table(out / "allocations.parquet").to_pylist()
    assert alloc[0]["operational_kgco2e"] == pytest.approx(1 / 1920, rel=1e-12)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"] == {"allocations": 1, "unallocated": 1, "devices": 1, "grid": 2}
    assert len(manifest["inputs"]["power"][0]["sha256"]) == 64
    summary = pq.read_table(out / "summary.parquet").to_pylist()
    assert [s["bucket"] for s in summary] == ["allocated", "unallocated"]


def test_bad_input_exits_2_with_message_and_writes_nothing(
    spec12: dict[str, Any], tmp_path: Path
) -> None:
    spec12["sites"] = spec12["sites"].set_column(2, "pue", [[0.5]])
    paths = write_inputs(spec12, tmp_path)
    out = tmp_path / "ledger"
    r = cli(*run_args(paths, out))
    assert r.returncode == 2
    assert "'sites'" in r.stderr and "pue" in r.stderr and "0.5" in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ledger")] == []


def test_existing_out_is_refused(spec12: dict[str, Any], tmp_path: Path) -> None:
    paths = write_inputs(spec12, tmp_path)
    out = tmp_path / "ledger"
    out.mkdir()
    r = cli(*run_args(paths, out))
    assert r.returncode == 2 and "exists" in r.stderr


def test_missing_file_exits_2(tmp_path: Path) -> None:
    paths = {n: str(tmp_path / f"{n}.parquet") for n in ("power", "devices", "sites", "intensity")}
    r = cli(*run_args(paths, tmp_path / "ledger"))
    assert r.returncode == 2 and "no such file" in r.stderr


def test_help_explains_the_options() -> None:
    r = cli("run", "--help")
    assert r.returncode == 0
    for flag in ("--power", "--max-gap", "--gap-fill", "--overlap", "--out"):
        assert flag in r.stdout


def test_summarize_rerolls_a_ledger(spec12: dict[str, Any], tmp_path: Path) -> None:
    paths = write_inputs(spec12, tmp_path)
    out = tmp_path / "ledger"
    assert cli(*run_args(paths, out, "--quiet")).returncode == 0
    r = cli("summarize", str(out), "--by", "phase")
    assert r.returncode == 0, r.stderr
    assert "training" in r.stdout and "unallocated" in r.stdout
    bad = cli("summarize", str(tmp_path / "nope"))
    assert bad.returncode == 2 and "allocations.parquet" in bad.stderr


def test_intensity_from_electricitymaps(tmp_path: Path) -> None:
    import carbonledger as cl

    src = Path(cl.__file__).parent / "data" / "electricitymaps" / "SG_2023_hourly.csv"
    out = tmp_path / "sg.parquet"
    r = cli("intensity", "from-electricitymaps", str(src), "--basis", "direct", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert pq.read_table(out).num_rows == 8760


def test_run_writes_a_self_contained_report_html(spec12: dict[str, Any], tmp_path: Path) -> None:
    paths = write_inputs(spec12, tmp_path)
    out = tmp_path / "ledger"
    r = cli(*run_args(paths, out, "--quiet", "--by", "phase"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""
    text = (out / "report.html").read_text(encoding="utf-8")
    page = parse_page(text)
    assert {*SECTION_IDS, "chart-by-phase"} <= set(page.ids)
    assert page.refs == [] and network_refs(page) == []
    assert "http:" not in text and "https:" not in text and "<script" not in text
    assert "training" in text and "region R" in text
    assert "0.000693 kgCO2e" in text  # the fleet total of SPEC section 12
    assert str(paths["power"]) in text  # provenance from the manifest


def test_unknown_device_exits_2_naming_it(spec12: dict[str, Any], tmp_path: Path) -> None:
    spec12["power"] = power_table([("g0", 0, 100), ("gpu-ghost-7", 10, 300)])
    paths = write_inputs(spec12, tmp_path)
    out = tmp_path / "ledger"
    r = cli(*run_args(paths, out))
    assert r.returncode == 2
    assert r.stderr.startswith("carbonledger: error:")
    assert "gpu-ghost-7" in r.stderr and "power" in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ledger")] == []


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """About 1.4 million samples in 6 Parquet files, by time."""
    folder = tmp_path_factory.mktemp("fleet")
    return synth.generate(
        folder,
        devices=64,
        hours=6.0,
        hz=1.0,
        order="time",
        file_rows=250_000,
        counters_fraction=0.0,
    )


def fleet_args(fleet: dict[str, Any], out: Path) -> list[str]:
    args = ["run", "--power", *fleet["power"], "--out", str(out), "--by", "phase,team"]
    for name in ("devices", "sites", "intensity", "allocations"):
        args += [f"--{name}", fleet[name]]
    return args


def run_in_terminal(
    args: list[str], interrupt_on: str | None = None, timeout: float = 60.0
) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal; optionally send SIGINT as
    soon as ``interrupt_on`` appears there. Returns (exit code, stderr)."""
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "carbonledger.cli", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    data = os.read(master, 1 << 16)
                except OSError:  # EIO: the child closed the terminal
                    data = b""
                if not data:
                    break
                seen += data
                if interrupt_on and interrupt_on.encode() in seen:
                    proc.send_signal(signal.SIGINT)
                    interrupt_on = None
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return code, seen.decode(errors="replace")


def test_progress_bar_on_a_terminal_only(fleet: dict[str, Any], tmp_path: Path) -> None:
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in fleet["power"])
    code, err = run_in_terminal(fleet_args(fleet, tmp_path / "ledger"))
    assert code == 0, err
    frames = [f for f in err.replace("\r\n", "\n").split("\r") if f.strip()]
    assert frames[0].startswith("power  [") and "0/6 files" in frames[0]
    last = frames[-1].rstrip()
    assert "100%" in last and "6/6 files" in last and "rows/s" in last and " in " in last
    assert f"{rows / 1e6:.3g}M/{rows / 1e6:.3g}M rows" in last
    assert (tmp_path / "ledger" / "report.html").is_file()

    code, err = run_in_terminal([*fleet_args(fleet, tmp_path / "quiet"), "--quiet"])
    assert code == 0 and err == ""


def test_interrupted_run_leaves_nothing(fleet: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "ledger"
    # SIGINT as soon as the progress line shows the samples streaming.
    code, err = run_in_terminal(fleet_args(fleet, out), interrupt_on="power  [")
    assert code == 130, err
    assert "interrupted; nothing written" in err and "Traceback" not in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_validate_lists_every_problem(spec12: dict[str, Any], tmp_path: Path) -> None:
    paths = write_inputs(spec12, tmp_path)
    r = cli("validate", *[x for n, p in paths.items() for x in (f"--{n}", p)])
    assert r.returncode == 0, r.stderr
    assert "inputs OK" in r.stdout and "power statistics" in r.stdout

    bad_sites = tmp_path / "bad_sites.csv"
    bad_sites.write_text("site_id,region,pue\ns1,R,0.8\n")
    bad_alloc = tmp_path / "bad_alloc.csv"
    bad_alloc.write_text(
        "job_id,device_id,start,end,share\n"
        "A,g0,2025-01-01T00:00:05Z,2025-01-01T00:00:25Z,1\n"
        "B,ghost,2025-01-01T00:00:05Z,2025-01-01T00:00:25Z,1\n"
        "C,g0,2025-01-01T00:00:30Z,2025-01-01T00:00:20Z,1\n"
    )
    paths["sites"], paths["allocations"] = str(bad_sites), str(bad_alloc)
    r = cli("validate", *[x for n, p in paths.items() for x in (f"--{n}", p)])
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 3, r.stdout
    assert "column 'pue': value 0.8" in lines[0]
    assert "unknown id 'ghost' at row 1" in lines[1]
    assert "column 'end'" in lines[2] and "at row 2" in lines[2]
    assert "3 problem(s)" in r.stderr
