"""The demo fleet (``carbonledger.demo``) and ``carbonledger demo``: real
regions, the four ML phases, inference power shaped by the Azure trace,
catalog embodied carbon, conservation; a short run of the command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import carbonledger as cl
from carbonledger import catalog, demo
from carbonledger.report import METRIC_COLUMNS

YEAR_S = 31_557_600.0
DAYS = 0.5


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    paths = demo.build_inputs(tmp_path_factory.mktemp("demo") / "inputs", DAYS)
    report = cl.account(
        power=paths["power"],
        devices=paths["devices"],
        sites=paths["sites"],
        intensity=paths["intensity"],
        allocations=paths["allocations"],
        period=(paths["start"], paths["end"]),
    )
    return {"paths": paths, "report": report}


def _read(built: dict[str, Any], name: str) -> pl.DataFrame:
    df = pl.from_arrow(pq.read_table(built["paths"][name]))
    assert isinstance(df, pl.DataFrame)
    return df.with_columns(pl.col(pl.Categorical).cast(pl.String))


def test_fleet_layout_regions_models(built: dict[str, Any]) -> None:
    devices = _read(built, "devices")
    sites = _read(built, "sites")
    assert "embodied_kgco2e" not in devices.columns  # the catalog supplies it
    regions = devices.join(sites, on="site_id")["region"].unique().sort().to_list()
    assert regions == ["DE", "SG", "US-CAL-CISO"]
    models = set(devices["model"])
    assert {"A100-SXM4-80GB", "H100-SXM5-80GB"} <= models
    hosts = devices.filter(pl.col("kind") == "host")
    assert hosts.height == 6 and set(hosts["model"]) <= set(demo.HOST_MODELS.values())
    assert devices.filter(pl.col("kind") == "gpu").height == 48


def test_four_phases_and_several_teams(built: dict[str, Any]) -> None:
    a = built["report"].allocations
    assert set(a["phase"]) == {"data", "experimentation", "training", "inference"}
    assert a["team"].n_unique() >= 3
    by_phase = built["report"].summary(by=["phase"]).drop_nulls("phase")
    assert (by_phase["energy_kwh"] > 0).all()


def test_host_shares_mirror_the_gpus(built: dict[str, Any]) -> None:
    a = _read(built, "allocations")
    devices = _read(built, "devices").select("device_id", "host_id", "kind")
    a = a.join(devices, on="device_id")
    gpu = a.filter(pl.col("kind") == "gpu").group_by("job_id", "host_id").agg(pl.col("share").sum())
    host = a.filter(pl.col("kind") == "host").select("job_id", "host_id", "share")
    both = gpu.join(host, on=["job_id", "host_id"], suffix="_host")
    assert both.height == gpu.height == host.height
    assert np.allclose(both["share_host"].to_numpy(), both["share"].to_numpy() / 8)


def _azure_load() -> np.ndarray[Any, np.dtype[np.float64]]:
    """Tokens per 10 s of the real Azure trace, code then conv, as the
    generator loops it (1024 buckets)."""
    path = Path(demo.__file__).parent / "data" / "azure-llm-inference" / "tokens_per_10s.csv"
    t = pacsv.read_csv(path)
    parts = []
    for name in ("code", "conv"):
        sub = t.filter(pc.equal(t.column("trace"), name))
        tok = sub.column("context_tokens").to_numpy() + sub.column("generated_tokens").to_numpy()
        tok = tok.astype(np.float64)
        parts.append(np.minimum(tok / np.percentile(tok, 99), 1.0))
    return np.resize(np.concatenate(parts), 1024)


def test_inference_power_follows_the_azure_trace(built: dict[str, Any]) -> None:
    load = _azure_load()
    a = built["report"].allocations.with_columns(pl.col("device_id").cast(pl.String))
    a = a.filter(
        (pl.col("phase") == "inference")
        & (pl.col("share") == 1.0)
        & ~pl.col("device_id").str.ends_with("-host")
        & (pl.col("duration_s") >= 3600)
    )
    assert a.height >= 3
    power = pl.read_parquet(built["paths"]["power"] + "/gpus-*.parquet").filter(
        pl.col("power_w").is_finite() & (pl.col("power_w") >= 0)
    )
    power = power.with_columns(pl.col("device_id").cast(pl.String))
    t0 = pl.from_arrow(pa.array([built["paths"]["start"]]).cast(pa.timestamp("ns", "UTC")))
    assert isinstance(t0, pl.Series)
    corrs = []
    for job in a.iter_rows(named=True):
        p = power.filter(
            (pl.col("device_id") == job["device_id"])
            & (pl.col("ts") >= job["start"])
            & (pl.col("ts") < job["end"])
        )
        bucket = ((p["ts"] - t0[0]).dt.total_seconds() // 10).to_numpy().astype(np.int64)
        b0 = bucket.min()
        sums = np.bincount(bucket - b0, weights=p["power_w"].to_numpy())
        counts = np.bincount(bucket - b0)
        inner = slice(1, len(sums) - 1)  # edge buckets are partial
        mean_w = sums[inner] / np.maximum(counts[inner], 1)
        ok = counts[inner] >= 8
        m = (mean_w[ok] - mean_w[ok].mean()) / mean_w[ok].std()
        idx = np.flatnonzero(ok) + 1 + b0
        # Pearson correlation with the trace at every alignment (the job's
        # offset into the looped trace is not an output): the best one.
        window = load[(idx[None, :] + np.arange(1024)[:, None]) % 1024]
        window = (window - window.mean(axis=1, keepdims=True)) / window.std(axis=1, keepdims=True)
        best = float((window @ m).max() / len(m))
        corrs.append(best)
    assert min(corrs) > 0.95, corrs


def test_embodied_is_the_catalog_figure_amortized(built: dict[str, Any]) -> None:
    devices = _read(built, "devices")
    period_s = DAYS * 86400
    got = (
        built["report"]
        .devices.with_columns(pl.col("device_id").cast(pl.String))
        .join(devices, on="device_id")
    )
    for row in got.iter_rows(named=True):
        entry = catalog.lookup(row["model"])
        expected = entry.embodied_kgco2e * period_s / (row["lifetime_years"] * YEAR_S)
        assert row["embodied_kgco2e"] == pytest.approx(expected, rel=1e-9), row["device_id"]


def test_conservation(built: dict[str, Any]) -> None:
    r = built["report"]
    alloc = r.allocations.group_by("device_id").agg(pl.col(METRIC_COLUMNS).sum())
    both = (
        r.devices.select("device_id", *METRIC_COLUMNS)
        .join(alloc, on="device_id", how="left", suffix="_a")
        .join(r.unallocated.select("device_id", *METRIC_COLUMNS), on="device_id", suffix="_u")
        .fill_null(0.0)
    )
    for c in METRIC_COLUMNS:
        total = both[c].to_numpy()
        parts = both[f"{c}_a"].to_numpy() + both[f"{c}_u"].to_numpy()
        assert np.allclose(parts, total, rtol=1e-9, atol=1e-12 * np.abs(total).max()), c


def test_the_demo_fleet_has_no_warning(built: dict[str, Any]) -> None:
    # Its telemetry gaps and glitches are data coverage, not mistakes.
    assert built["report"].warnings == []


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carbonledger.cli", "demo", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_demo_command_writes_inputs_and_ledger(tmp_path: Path) -> None:
    r = _cli("--days", "0.05", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / demo.DEFAULT_OUT
    assert "embodied carbon from the catalog" in r.stdout
    assert "ledger written to" in r.stdout
    ledger = out / "ledger"
    assert {"allocations.parquet", "devices.parquet", "manifest.json"} <= {
        p.name for p in ledger.iterdir()
    }
    manifest = json.loads((ledger / "manifest.json").read_text())
    assert manifest["rows"]["devices"] == 54
    assert manifest["warnings"] == [] and r.stderr == ""
    assert {Path(f["path"]).name for f in manifest["inputs"]["power"]} == {
        "gpus-00000.parquet",
        "hosts.parquet",
    }
    assert (out / "inputs" / "devices.parquet").is_file()
    again = _cli("--days", "0.05", "--quiet", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr
    forced = _cli("--days", "0.05", "--quiet", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout == ""


def test_force_never_removes_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep me")
    r = _cli("--out", "mine", "--force", "--days", "0.05", cwd=tmp_path)
    assert r.returncode == 2 and "does not look like a demo folder" in r.stderr
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "keep me"
