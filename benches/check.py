"""Agreement of the hand-written baselines with carbonledger, and a check of
the alignment property the baselines rely on.

``python benches/check.py --data-dir benches/data/fleet-1e7`` runs
carbonledger, the Polars and the DuckDB baselines on the same files and
prints the largest relative difference per table and metric column (1e-9 is
the contract). ``--verify`` also counts, per data set, the integrated
segments that a boundary cuts (0 for ``gen.py`` data; ``--verify-only DIR``
checks any folder with the same layout, e.g. ``carbonledger.synth`` output,
given its period).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
from baselines import METRICS, Inputs, Result, duckdb_account, polars_account

TOL = 1e-9


def from_report(report: object) -> Result:
    """A carbonledger Report as a baseline Result (the same columns)."""
    alloc = report.allocations  # type: ignore[attr-defined]
    dev = report.devices  # type: ignore[attr-defined]
    unalloc = report.unallocated  # type: ignore[attr-defined]
    assert isinstance(alloc, pl.DataFrame) and isinstance(dev, pl.DataFrame)
    assert isinstance(unalloc, pl.DataFrame)
    return Result(
        alloc.select("job_id", "device_id", *METRICS),
        dev.select("device_id", *METRICS),
        unalloc.select("device_id", *METRICS),
    )


def max_rel_diff(got: Result, ref: Result) -> dict[str, tuple[float, str]]:
    """Largest relative difference per table (allocations, devices,
    unallocated, fleet totals) over the metric columns, and where it is. A
    cell is compared relative to ``max(|ref|, 1e-3 x its device's total)``:
    SPEC 10 compares to 1e-9 relative, and a cell that is zero up to rounding
    with an absolute tolerance of 1e-12 of its device's total, which is
    1e-9 relative to 1e-3 of that total. (The baselines compute unallocated
    as device minus allocations, so a nearly fully allocated device's
    unallocated cell carries the subtraction's rounding.)"""
    out: dict[str, tuple[float, str]] = {}
    dev_tot = ref.devices.select(
        "device_id", *(pl.col(c).abs().alias(f"{c}__tot") for c in METRICS)
    )
    for name in ("allocations", "devices", "unallocated"):
        a: pl.DataFrame = getattr(got, name)
        b: pl.DataFrame = getattr(ref, name)
        if a.height != b.height:
            out[name] = (float("inf"), f"{a.height} rows, expected {b.height}")
            continue
        j = b.with_row_index("row").join(dev_tot, on="device_id", how="left")
        j = j.sort("row")
        worst, where = 0.0, ""
        for c in METRICS:
            x = a[c].fill_null(float("nan")).to_numpy()
            y = j[c].to_numpy()
            floor = 1e-3 * j[f"{c}__tot"].fill_null(0.0).to_numpy()
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.abs(x - y) / np.maximum(np.abs(y), floor)
            rel[x == y] = 0.0
            i = int(rel.argmax()) if len(rel) else 0
            if len(rel) and not rel[i] <= worst:
                key = a["job_id"][i] if "job_id" in a.columns else a["device_id"][i]
                worst = float(rel[i])
                where = f"{c} @ {key}: {float(x[i])!r} vs {float(y[i])!r}"
        out[name] = (worst, where)
    worst, where = 0.0, ""
    for c in METRICS:
        sx, sy = float(got.devices[c].sum()), float(ref.devices[c].sum())
        r = abs(sx - sy) / max(abs(sy), 1e-300)
        if not r <= worst:
            worst, where = r, f"{c}: {sx!r} vs {sy!r}"
    out["fleet totals"] = (worst, where)
    return out


def run_carbonledger(inp: Inputs) -> Result:
    import carbonledger as cl

    report = cl.account(
        inp.power,
        inp.devices,
        inp.sites,
        inp.intensity,
        inp.allocations,
        period=inp.period,
        max_gap=inp.max_gap_ns / 1e9,
    )
    return from_report(report)


def cut_segments(inp: Inputs) -> tuple[int, int]:
    """(integrated segments that a boundary falls strictly inside, segments):
    the baselines are exact when the first number is 0."""
    p0, p1 = inp.period
    ns = pl.col("ts").dt.epoch("ns")
    samples = (
        pl.scan_parquet(inp.power)
        .select("device_id", t=ns, p="power_w")
        .filter(pl.col("p").is_finite() & (pl.col("p") >= 0.0))
        .select("device_id", "t")
        .unique()
        .sort("device_id", "t")
        .with_columns(tn=pl.col("t").shift(-1).over("device_id"))
        .filter((pl.col("tn") - pl.col("t")) <= inp.max_gap_ns)
        .filter((pl.col("tn") > p0) & (pl.col("t") < p1))
        .collect(engine="streaming")
    )
    dev = pl.read_parquet(inp.devices).select("device_id", "site_id")
    dev = dev.join(pl.read_parquet(inp.sites).select("site_id", "region"), on="site_id")
    inten = pl.read_parquet(inp.intensity)
    edges = [inten.select("region", b=pl.col("start").dt.epoch("ns"))]
    if "end" in inten.columns:
        edges.append(inten.select("region", b=pl.col("end").dt.epoch("ns")))
    by_region = dev.join(pl.concat(edges).drop_nulls(), on="region").select("device_id", "b")
    alloc = pl.read_parquet(inp.allocations)
    bounds = (
        pl.concat(
            [
                by_region,
                alloc.select("device_id", b=pl.col("start").dt.epoch("ns")),
                alloc.select("device_id", b=pl.col("end").dt.epoch("ns")),
                dev.select("device_id", b=pl.lit(p0)),
                dev.select("device_id", b=pl.lit(p1)),
            ]
        )
        .filter((pl.col("b") > p0) & (pl.col("b") < p1))
        .unique()
        .sort("device_id", "b")
    )
    hit = bounds.join_asof(
        samples,
        left_on="b",
        right_on="t",
        by="device_id",
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    ).filter(pl.col("tn") > pl.col("b"))
    return hit.select("device_id", "t").unique().height, samples.height


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--data-dir", type=Path, help="a gen.py folder")
    ap.add_argument("--order", default="time", choices=("time", "device"))
    ap.add_argument("--verify", action="store_true", help="also count cut segments")
    ap.add_argument(
        "--verify-only",
        type=Path,
        metavar="DIR",
        help="only count cut segments of DIR (power/by_time, devices, sites, "
        "intensity, allocations .parquet), with --period START_NS END_NS",
    )
    ap.add_argument("--period", type=int, nargs=2)
    a = ap.parse_args(argv)
    if a.verify_only is not None:
        if a.period is None:
            ap.error("--verify-only needs --period START_NS END_NS")
        root = a.verify_only
        inp = Inputs(
            power=sorted(str(p) for p in (root / "power" / "by_time").glob("*.parquet")),
            devices=str(root / "devices.parquet"),
            sites=str(root / "sites.parquet"),
            intensity=str(root / "intensity.parquet"),
            allocations=str(root / "allocations.parquet"),
            period=(a.period[0], a.period[1]),
        )
        cut, total = cut_segments(inp)
        print(f"{root}: {cut} of {total} integrated segments are cut by a boundary")
        return 0 if cut == 0 else 1
    if a.data_dir is None:
        ap.error("--data-dir is required")
    inp = Inputs.from_dir(str(a.data_dir), a.order)
    if a.verify:
        cut, total = cut_segments(inp)
        print(f"alignment: {cut} of {total} integrated segments are cut by a boundary")
    t = time.perf_counter()
    ref = run_carbonledger(inp)
    print(f"carbonledger: {time.perf_counter() - t:.2f} s")
    ok = True
    for name, fn in (("polars", polars_account), ("duckdb", duckdb_account)):
        t = time.perf_counter()
        got = fn(inp)
        print(f"{name}: {time.perf_counter() - t:.2f} s")
        for table, (rel, where) in max_rel_diff(got, ref).items():
            ok &= rel <= TOL
            print(f"  {table:13s} max rel diff {rel:.3e}  {where}")
    print("agreement:", "OK" if ok else f"FAILED (tolerance {TOL:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
