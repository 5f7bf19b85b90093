"""The demo: ``carbonledger demo [--out DIR] [--days N] [--quiet]``.

Builds a fleet from real public data, writes it as Parquet under
``<out>/inputs/`` and accounts it with exactly the code path of
``carbonledger run`` into ``<out>/ledger/`` (Parquet tables, manifest and
report). ``python -m carbonledger.demo`` is the same command.

The fleet (all of it deterministic, seed ``SEED``):

- 48 GPUs in six 8-GPU nodes at six sites in three real grid regions
  (Frankfurt ``DE``, California ``US-CAL-CISO``, Singapore ``SG``): three
  A100-SXM4-80GB nodes, two H100-SXM5-80GB nodes, one V100-SXM2-32GB node, and
  each node's host server as a device of its own (54 devices).
- 3 days (June 1-3, 2023 UTC) sampled at 1 Hz: about 14 million samples.
- Grid: real 2023 hourly intensity from Electricity Maps (direct basis,
  ODbL; ``data/electricitymaps/``).
- GPU power and jobs: ``carbonledger.synth`` (see its docstring): training
  and experimentation power from the Zeus measurements (NSDI 2023,
  ``data/zeus/``), inference load following the real Azure LLM inference
  trace 2023 (``data/azure-llm-inference/``), jobs of the four ML phases
  (data, experimentation, training, inference) for five teams, idle gaps,
  telemetry outages, NaN and duplicate samples.
- Host power: linear in the node's mean GPU load between the active-idle and
  full-load wall power SPECpower_ssj2008 measured on a 2-socket AMD EPYC
  7742 server (GIGA-BYTE R282-Z90, submitted Aug 2019: 133 W and 492 W;
  DGX A100-class hosts use two EPYC 7742). A host's allocations mirror its
  GPUs': a job holding k of the node's 8 GPUs reserves k/8 of the host
  (the SCI "resources reserved / total").
- Embodied carbon: devices give only ``model``; ``account`` fills
  ``embodied_kgco2e`` from ``carbonledger.catalog`` (GPU and host figures
  with their sources in ``data/catalog/``). GPUs amortize over the
  generator's lifetimes (A100/V100 6 years, H100 5), hosts over 6 years
  (Azure's 72-month server lifetime, GreenSKU framework).
- Site PUEs (1.12-1.38) and a 60 % contracted carbon-free share in
  California are illustrative assumptions, stated in ``synth.SITES`` and
  here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import ledger, synth
from ._atomic import remove_stale
from .exceptions import InputError

__all__ = ["DEFAULT_OUT", "HOST_MODELS", "SEED", "build_inputs", "main", "run"]

DEFAULT_OUT = "carbonledger-demo"
UTC = dt.timezone.utc
START = dt.datetime(2023, 6, 1, tzinfo=UTC)
GPUS = 48  # six nodes of 8, one per site
SEED = 3  # gives A100, H100 and V100 nodes across the three regions
HZ = 1.0
TS = pa.timestamp("ns", tz="UTC")
# Host server of each GPU model's node: catalog keys (see data/catalog/).
HOST_MODELS = {
    "A100-SXM4-80GB": "HPE-Apollo-6500-Gen10-Plus",
    "H100-SXM5-80GB": "AWS-p4d.24xlarge-host",
    "V100-SXM2-32GB": "AWS-p3dn.24xlarge-host",
}
HOST_LIFETIME_YEARS = 6.0
# SPECpower_ssj2008, GIGA-BYTE R282-Z90, 2 x AMD EPYC 7742 (Aug 2019):
# average wall power at active idle and at 100 % load.
HOST_IDLE_W, HOST_FULL_W = 133.0, 492.0
CFE = {"US-CAL-CISO": 0.6}  # contracted carbon-free share by region (illustrative)


def _host_power(gpu_power: pa.Table, devices: pa.Table, start_ns: int) -> pa.Table:
    """Samples for every node's host: idle + (full - idle) x the mean
    dynamic load of its GPUs at each sample (valid GPU readings only); no
    sample where none of its GPUs reported."""
    dev = devices.to_pylist()
    index = {d["device_id"]: i for i, d in enumerate(dev)}
    hosts = sorted({d["host_id"] for d in dev})
    host_of = np.array([hosts.index(d["host_id"]) for d in dev], np.int64)
    idle = np.array([d["idle_power_w"] for d in dev], np.float64)
    limit = np.array([d["power_limit_w"] for d in dev], np.float64)
    codes = pc.dictionary_encode(gpu_power.column("device_id").cast(pa.string()))
    d = np.concatenate(
        [
            np.array([index[n] for n in c.dictionary.to_pylist()], np.int64)[c.indices.to_numpy()]
            for c in codes.chunks
        ]
    )
    ts = gpu_power.column("ts").cast(pa.int64()).to_numpy()
    w = gpu_power.column("power_w").to_numpy(zero_copy_only=False)
    period = round(1e9 / HZ)
    k = (ts - start_ns) // period  # offsets are below one period
    n_k = int(k.max()) + 1
    ok = np.isfinite(w) & (w >= 0)
    u = np.clip((w - idle[d]) / np.maximum(limit[d] - idle[d], 1.0), 0.0, 1.0)
    key = host_of[d] * n_k + k
    size = len(hosts) * n_k
    total = np.bincount(key[ok], weights=u[ok], minlength=size)
    count = np.bincount(key[ok], minlength=size)
    first_ts = np.full(size, -1, np.int64)
    first_ts[key[::-1]] = ts[::-1]  # the nodes' sample times (shared by their GPUs)
    keep = np.flatnonzero(count > 0)
    load = total[keep] / count[keep]
    watts = np.round((HOST_IDLE_W + (HOST_FULL_W - HOST_IDLE_W) * load) * 1000.0) / 1000.0
    host_idx, kk = np.divmod(keep, n_k)
    order = np.lexsort((host_idx, kk))  # by time, then host: a telemetry dump
    return pa.table(
        {
            "device_id": pa.array(np.array([f"{h}-host" for h in hosts])[host_idx[order]]),
            "ts": pa.array(first_ts[keep][order]).cast(TS),
            "power_w": pa.array(watts[order], pa.float64()),
        }
    )


def _host_allocations(alloc: pa.Table, devices: pa.Table) -> pa.Table:
    """One host allocation per (job, node): share = the job's GPU shares on
    the node / the node's GPU count."""
    dev = pl.from_arrow(devices.select(["device_id", "host_id"]))
    assert isinstance(dev, pl.DataFrame)
    size = dev.group_by("host_id").agg(pl.len().alias("gpus"))
    a = pl.from_arrow(alloc)
    assert isinstance(a, pl.DataFrame)
    labels = [c for c in a.columns if c not in ("job_id", "device_id", "start", "end", "share")]
    out = (
        a.join(dev, on="device_id")
        .group_by(["job_id", "host_id", "start", "end", *labels], maintain_order=True)
        .agg(pl.col("share").sum())
        .join(size, on="host_id")
        .with_columns(
            device_id=pl.col("host_id") + "-host",
            share=pl.col("share") / pl.col("gpus"),
        )
        .select(a.columns)
    )
    return out.to_arrow().cast(alloc.schema)


def build_inputs(
    folder: str | Path, days: float = 3.0, *, seed: int = SEED, gpus: int = GPUS
) -> dict[str, str]:
    """Write the demo's inputs into ``folder`` (created; must be empty or
    absent): ``power/`` (GPU and host samples, time order), ``devices``,
    ``sites``, ``intensity``, ``allocations`` Parquet files. Returns the
    paths and ``start``/``end`` (ISO 8601) of the period."""
    if not days > 0:
        raise ValueError(f"days: got {days}; expected > 0")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise FileExistsError(f"{out}: expected an empty folder")
    power_dir = out / "power"
    with tempfile.TemporaryDirectory(prefix=".synth-", dir=out) as tmp:
        paths = synth.generate(
            tmp, devices=gpus, hours=24 * days, hz=HZ, order="time", seed=seed,
            counters_fraction=0.0, start=START, workers=1,
        )  # fmt: skip
        gpu_devices = pq.read_table(paths["devices"])
        alloc = pq.read_table(paths["allocations"])
        sites = pq.read_table(paths["sites"])
        intensity = pq.read_table(paths["intensity"])
        power_dir.mkdir()
        files = paths["power"]
        assert isinstance(files, list)
        for i, f in enumerate(files):
            shutil.move(f, power_dir / f"gpus-{i:05d}.parquet")
    start_ns = int(START.timestamp()) * 10**9
    gpu_power = pq.read_table(power_dir, columns=["device_id", "ts", "power_w"])
    hosts = _host_power(gpu_power, gpu_devices, start_ns)
    del gpu_power
    schema = pq.read_schema(power_dir / "gpus-00000.parquet")
    pq.write_table(hosts.cast(schema), power_dir / "hosts.parquet", compression="zstd")

    # Devices: the catalog supplies embodied_kgco2e from `model`.
    g = gpu_devices.to_pylist()
    host_rows = []
    for host in sorted({r["host_id"] for r in g}):
        members = [r for r in g if r["host_id"] == host]
        host_rows.append(
            {
                **members[0],
                "device_id": f"{host}-host",
                "model": HOST_MODELS[members[0]["model"]],
                "kind": "host",
                "installed_at": min(r["installed_at"] for r in members),
                "lifetime_years": HOST_LIFETIME_YEARS,
                "idle_power_w": HOST_IDLE_W,
                "power_limit_w": HOST_FULL_W,
            }
        )
    rows = sorted(g + host_rows, key=lambda r: r["device_id"])
    devices = pa.Table.from_pylist(rows, schema=gpu_devices.schema).drop_columns(
        ["embodied_kgco2e", "counter_wrap_j", "telemetry"]
    )
    allocations = pa.concat_tables([alloc, _host_allocations(alloc, gpu_devices)])
    allocations = allocations.sort_by([("start", "ascending"), ("job_id", "ascending")])
    regions = intensity.column("region").to_pylist()
    intensity = intensity.append_column(
        "cfe", pa.array([CFE.get(r, 0.0) for r in regions], pa.float64())
    )
    result = {"power": str(power_dir)}
    for name, table in (
        ("devices", devices),
        ("sites", sites),
        ("intensity", intensity),
        ("allocations", allocations),
    ):
        path = out / f"{name}.parquet"
        pq.write_table(table, path, compression="zstd")
        result[name] = str(path)
    end = START + dt.timedelta(seconds=round(days * 86400 * HZ) / HZ)
    result["start"] = START.isoformat()
    result["end"] = end.isoformat()
    return result


def _looks_like_demo(folder: Path) -> bool:
    names = {p.name for p in folder.iterdir()}
    return names <= {"inputs", "ledger"}


def _cite(source: str) -> str:
    """'A. S. Luccioni, S. Viguier, ...' -> 'Luccioni et al.'; else the
    source's first clause ('NVIDIA', 'Cloud Carbon Footprint')."""
    first = source.split(",")[0].strip()
    words = first.split()
    if len(words) > 1 and all(w.endswith(".") for w in words[:-1]):
        return f"{words[-1]} et al."
    return first


def _describe(devices: pa.Table, sites: pa.Table, samples: int, days: float) -> str:
    from .catalog import lookup

    site_region = dict(zip(sites["site_id"].to_pylist(), sites["region"].to_pylist(), strict=True))
    d = devices.to_pylist()
    models: dict[str, int] = {}
    for r in d:
        models[r["model"]] = models.get(r["model"], 0) + 1
    regions = sorted({site_region[r["site_id"]] for r in d})
    lines = [
        f"carbonledger demo: {len(d)} devices in {len(regions)} grid regions "
        f"({', '.join(regions)}), {days:g} days from {START:%Y-%m-%d} at 1 Hz, "
        f"{samples / 1e6:.1f}M samples",
        "embodied carbon from the catalog (devices give `model` only):",
    ]
    for model, n in models.items():
        e = lookup(model)
        lines.append(
            f"  {n:3d} x {model:28s} {e.embodied_kgco2e:8.1f} kgCO2e per {e.unit}  "
            f"({_cite(e.source)}, {e.year}{', derived' if e.derived else ''})"
        )
    return "\n".join(lines)


def run(out: str | Path = DEFAULT_OUT, days: float = 3.0, *, quiet: bool = False) -> int:
    """Build the inputs under ``out/inputs`` and account them into
    ``out/ledger`` exactly as ``carbonledger run`` would (``ledger.run``);
    returns the exit status (0)."""
    root = Path(out)
    inputs = build_inputs(root / "inputs", days)
    devices = pq.read_table(inputs["devices"])
    sites = pq.read_table(inputs["sites"])
    samples = sum(
        pq.ParquetFile(p).metadata.num_rows for p in sorted(Path(inputs["power"]).iterdir())
    )
    if not quiet:
        print(_describe(devices, sites, samples, days))
        print(f"inputs written to {root / 'inputs'}\n", flush=True)
    period = (inputs["start"], inputs["end"])
    by = ["phase", "team"]
    ledger.run(
        root / "ledger",
        power=[[inputs["power"]]],
        devices=inputs["devices"],
        sites=inputs["sites"],
        intensity=inputs["intensity"],
        allocations=inputs["allocations"],
        by=by,
        quiet=quiet,
        period=period,
    )
    return ledger.EXIT_OK


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``demo`` command's options (``carbonledger demo`` and
    ``python -m carbonledger.demo``)."""
    p.add_argument(
        "--out",
        default="carbonledger-demo",
        metavar="DIR",
        help="demo folder to create (default ./carbonledger-demo)",
    )
    p.add_argument("--days", type=float, default=3.0, metavar="N", help="days at 1 Hz (default 3)")
    p.add_argument("--force", action="store_true", help="replace --out if it holds an earlier demo")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m carbonledger.demo [--out DIR] [--days N] [--quiet] [--force]``."""
    p = argparse.ArgumentParser(prog="python -m carbonledger.demo", description=__doc__)
    add_arguments(p)
    args = p.parse_args(argv)
    return ledger.guarded(lambda: command(args), debug=args.debug)


def command(args: argparse.Namespace) -> int:
    """The ``demo`` command, from parsed ``add_arguments`` options."""
    if not args.days > 0:
        raise InputError(f"argument '--days': got {args.days}; expected > 0")
    root = Path(args.out)
    if root.exists():
        if not args.force:
            raise InputError(
                f"argument '--out': {str(root)!r} exists; pass --force to replace it "
                "or choose a new folder"
            )
        if root.is_dir():
            # The ledger temporary a killed demo left beside 'inputs' and
            # 'ledger' (a live demo's stays, and the check below refuses).
            remove_stale(root)
        if not root.is_dir() or not _looks_like_demo(root):
            raise InputError(
                f"argument '--out': {str(root)!r} does not look like a demo folder (only "
                "'inputs' and 'ledger' inside); not replacing it"
            )
        shutil.rmtree(root)
    t0 = time.perf_counter()
    status = run(root, args.days, quiet=args.quiet)
    if not args.quiet:
        print(f"demo finished in {time.perf_counter() - t0:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
