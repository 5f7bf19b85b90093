"""``python -m carbonledger.demo``: account a small built-in GPU fleet.

Twelve A100 GPUs in three real grid regions (Frankfurt DE-LU, California
CAISO, Singapore) over two days of June 2023, with real hourly grid intensity
from Electricity Maps (direct emissions, ODbL), sampled every 10 s, running
jobs across the four ML phases of Wu et al. (data, experimentation, training,
inference) for three teams, with idle gaps between jobs.

Embodied carbon: 150 kgCO2e per A100 GPU, the figure used for BLOOM's
footprint (Luccioni, Viguier and Ligozat, 2022), amortized over 6 years as
there. Site PUEs and the California site's 60 % carbon-free energy contract
are illustrative assumptions, stated here so the numbers can be traced.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources

import numpy as np
import polars as pl
import pyarrow as pa

from . import account
from .intensity import from_electricitymaps
from .report import Report

UTC = dt.timezone.utc
START = dt.datetime(2023, 6, 1, tzinfo=UTC)
HOURS = 48
STEP_S = 10
PHASES = ("data", "experimentation", "training", "inference")
TEAMS = ("search", "ads", "assistant")
# (site, Electricity Maps zone id, PUE, carbon-free fraction by contract)
SITES = (("fra", "DE", 1.25, 0.0), ("sjc", "US-CAL-CISO", 1.12, 0.6), ("sin", "SG", 1.35, 0.0))
GPUS_PER_SITE = 4
# Typical A100-SXM4 power by phase (W): mean and spread.
PHASE_POWER = {
    "data": (140, 30),
    "experimentation": (260, 90),
    "training": (370, 25),
    "inference": (210, 70),
}
IDLE_W = 62.0


def _intensity() -> pa.Table:
    folder = resources.files("carbonledger") / "data" / "electricitymaps"
    files = [str(folder / f"{z}_2023_hourly.csv") for z in ("DE-LU", "US-CAL-CISO", "SG")]
    t = from_electricitymaps(files, basis="direct")
    cfe = {zone: f for _, zone, _, f in SITES}
    return t.append_column(
        "cfe", pa.array([cfe[z] for z in t.column("region").to_pylist()], pa.float64())
    )


def build_fleet(seed: int = 7) -> dict[str, pa.Table]:
    """The demo's inputs: power, devices, sites, intensity, allocations."""
    rng = np.random.default_rng(seed)
    n_steps = HOURS * 3600 // STEP_S
    t0_ns = int(START.timestamp()) * 10**9
    ts = t0_ns + np.arange(n_steps, dtype=np.int64) * STEP_S * 10**9
    dev_ids: list[str] = []
    dev_sites: list[str] = []
    power_parts: list[tuple[str, np.ndarray]] = []
    jobs: list[tuple[str, str, int, int, str, str]] = []
    for site, _, _, _ in SITES:
        for g in range(GPUS_PER_SITE):
            did = f"{site}-a100-{g}"
            dev_ids.append(did)
            dev_sites.append(site)
            watts = IDLE_W + rng.normal(0, 2.0, n_steps)
            t = int(rng.integers(0, 3 * 3600 // STEP_S))
            while t < n_steps:
                phase = PHASES[int(rng.integers(0, 4))]
                length = int(rng.integers(1800, 5 * 3600 if phase == "training" else 2 * 3600))
                end = min(n_steps, t + length // STEP_S)
                mean, spread = PHASE_POWER[phase]
                watts[t:end] = np.clip(rng.normal(mean, spread, end - t), IDLE_W, 400)
                jobs.append(
                    (
                        f"job-{len(jobs):04d}",
                        did,
                        int(ts[t]),
                        int(ts[end - 1]),
                        phase,
                        TEAMS[int(rng.integers(0, 3))],
                    )
                )
                t = end + int(rng.integers(60, 3 * 3600) // STEP_S)
            watts[rng.random(n_steps) < 2e-4] = np.nan  # a few telemetry glitches
            power_parts.append((did, watts))
    # Telemetry-dump order: by time, then device.
    n_dev = len(power_parts)
    power = pa.table(
        {
            "device_id": pa.array(np.tile(np.array(dev_ids), n_steps)),
            "ts": pa.array(np.repeat(ts, n_dev), pa.timestamp("ns", "UTC")),
            "power_w": pa.array(np.stack([w for _, w in power_parts], axis=1).ravel()),
        }
    )
    devices = pa.table(
        {
            "device_id": dev_ids,
            "site_id": dev_sites,
            "model": ["A100-SXM4-80GB"] * n_dev,
            "embodied_kgco2e": [150.0] * n_dev,
            "installed_at": pa.array(
                [dt.datetime(2022, 1, 1, tzinfo=UTC)] * n_dev, pa.timestamp("ns", "UTC")
            ),
            "lifetime_years": [6.0] * n_dev,
            "idle_power_w": [IDLE_W] * n_dev,
        }
    )
    sites = pa.table(
        {
            "site_id": [s[0] for s in SITES],
            "region": [s[1] for s in SITES],
            "pue": [s[2] for s in SITES],
        }
    )
    tsn = pa.timestamp("ns", "UTC")
    allocations = pa.table(
        {
            "job_id": [j[0] for j in jobs],
            "device_id": [j[1] for j in jobs],
            "start": pa.array([j[2] for j in jobs], pa.int64()).cast(tsn),
            "end": pa.array([j[3] for j in jobs], pa.int64()).cast(tsn),
            "phase": [j[4] for j in jobs],
            "team": [j[5] for j in jobs],
        }
    )
    return {
        "power": power,
        "devices": devices,
        "sites": sites,
        "intensity": _intensity(),
        "allocations": allocations,
    }


def render(report: Report) -> str:
    t = report.totals()
    lines = [
        "carbonledger demo: 12 A100 GPUs, 3 regions (DE, US-CAL-CISO, SG), 48 h of June 2023",
        "",
        f"energy (IT)              {t['energy_kwh']:12.3f} kWh",
        f"energy (facility, x PUE) {t['facility_energy_kwh']:12.3f} kWh",
        f"operational, location    {t['operational_kgco2e']:12.3f} kgCO2e",
        f"operational, market      {t['operational_market_kgco2e']:12.3f} kgCO2e",
        f"embodied                 {t['embodied_kgco2e']:12.3f} kgCO2e",
        f"total                    {t['total_kgco2e']:12.3f} kgCO2e",
    ]
    un = float(report.unallocated["total_kgco2e"].sum())
    lines.append(f"idle / unallocated share {100 * un / t['total_kgco2e']:11.1f} %")
    with pl.Config(
        tbl_rows=20,
        tbl_cols=10,
        float_precision=3,
        tbl_hide_dataframe_shape=True,
        tbl_width_chars=160,
        tbl_hide_column_data_types=True,
    ):
        cols = [
            "allocations",
            "energy_kwh",
            "operational_kgco2e",
            "embodied_kgco2e",
            "total_kgco2e",
        ]
        for by in ("phase", "team"):
            s = report.summary(by=[by]).select("bucket", by, *cols)
            lines += ["", f"by {by}:", str(s)]
    d = report.devices
    lines += [
        "",
        f"data quality: {int(d['samples'].sum())} samples, "
        f"{int(d['invalid_samples'].sum())} invalid dropped, "
        f"{int(d['gaps'].sum())} gaps, {d['uncovered_s'].sum():.0f} s uncovered",
    ]
    return "\n".join(lines)


def main() -> None:
    inputs = build_fleet()
    report = account(**inputs, period=(START, START + dt.timedelta(hours=HOURS)))
    print(render(report))


if __name__ == "__main__":
    main()
