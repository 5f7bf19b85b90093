"""The command line, run as a user would: a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest


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
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "allocations.parquet",
        "devices.parquet",
        "manifest.json",
        "summary.parquet",
        "unallocated.parquet",
    ]
    alloc = pq.read_table(out / "allocations.parquet").to_pylist()
    assert alloc[0]["operational_kgco2e"] == pytest.approx(1 / 1920, rel=1e-12)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"] == {"allocations": 1, "unallocated": 1, "devices": 1}
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
