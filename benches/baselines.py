"""The attribution of ``carbonledger.account`` written by hand, as an expert
would in Polars (lazy, streaming engine) and in DuckDB SQL, reading the same
Parquet files. Used by ``run.py`` for speed and by ``check.py`` for agreement.

What they compute (SPEC.md, for ``power_w`` samples, linear interpolation,
no gap fill, ``on_invalid="drop"``, shares summing to at most 1):

- drop NaN, infinite and negative samples, then average the samples of one
  device at one timestamp;
- per device, the trapezoid ``(p_i + p_{i+1}) / 2 x (t_{i+1} - t_i)`` for each
  consecutive pair with ``t_{i+1} - t_i <= max_gap`` (else uncovered: 0);
- facility energy = energy x PUE of the device's site; location-based carbon
  = facility energy x ``gco2e_per_kwh``; market-based = facility energy x
  ``(1 - cfe) x residual_gco2e_per_kwh`` (defaults 0 and ``gco2e_per_kwh``);
- per allocation, its ``share`` of what falls in ``[start, end)`` inside the
  period; per device, everything in the period; unallocated = device minus
  its allocations;
- embodied carbon ``embodied_kgco2e x |piece n window| / |window|`` with the
  window ``[installed_at, retired_at)`` or ``[installed_at, installed_at +
  lifetime_years x 365.25 d)``, times ``share`` for allocations.

**Assumption (documented property of the benchmark data, see ``gen.py``).**
Every boundary -- allocation start/end, intensity row start/end, period
edges -- falls on a valid sample timestamp of every device, or inside one of
its gaps longer than ``max_gap``. So no integrated segment ``[t_i, t_{i+1})``
is ever cut: it belongs to one intensity row and one set of allocations, both
read at ``t_i``, and interpolating power at a cut is never needed. Data
without this property (e.g. ``carbonledger.synth``, whose nodes sample at
millisecond offsets) gives different, wrong answers here; ``check.py
--verify`` tests the property.

With it, the per-sample work reduces to one prefix sum: per device, ``C(t)``
= energy of the segments starting before ``t``. The energy of any piece
``[a, b)`` is ``C(b) - C(a)``, looked up with an as-of join (last sample
``< t``). Pieces are the (small) products allocation x intensity row and
device x intensity row, clipped to the period, so carbon intensities are
joined to a few thousand pieces, never to the samples. Both baselines run
the same plan: scan -> filter -> dedupe (group by) -> sort by device, time ->
lead/shift -> trapezoid -> per-device cumulative sum -> as-of lookups.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

YEAR_NS = 31_557_600 * 1_000_000_000
METRICS = (
    "energy_kwh",
    "facility_energy_kwh",
    "operational_kgco2e",
    "operational_market_kgco2e",
    "embodied_kgco2e",
    "total_kgco2e",
)
I64_MAX = (1 << 63) - 1


@dataclass
class Inputs:
    """The Parquet files of one benchmark fleet and the accounting options."""

    power: list[str]
    devices: str
    sites: str
    intensity: str
    allocations: str
    period: tuple[int, int]  # epoch ns, [start, end)
    max_gap_ns: int = 300 * 1_000_000_000

    @classmethod
    def from_dir(cls, root: str, order: str = "time") -> Inputs:
        import glob
        import json

        meta = json.loads(open(os.path.join(root, "bench.json")).read())
        return cls(
            power=sorted(glob.glob(os.path.join(root, "power", f"by_{order}", "*.parquet"))),
            devices=os.path.join(root, "devices.parquet"),
            sites=os.path.join(root, "sites.parquet"),
            intensity=os.path.join(root, "intensity.parquet"),
            allocations=os.path.join(root, "allocations.parquet"),
            period=(int(meta["period_ns"][0]), int(meta["period_ns"][1])),
            max_gap_ns=int(meta["max_gap_ns"]),
        )


@dataclass
class Result:
    """Per allocation (input order), per device (devices order) and the
    unallocated remainder per device: ``job_id``/``device_id`` + METRICS."""

    allocations: pl.DataFrame
    devices: pl.DataFrame
    unallocated: pl.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# Polars


def _ns(name: str) -> pl.Expr:
    return pl.col(name).dt.epoch("ns")


def _devices_pl(inp: Inputs) -> pl.LazyFrame:
    """device_id, region, pue, embodied, amortization window [w0, w1)."""
    lf = pl.scan_parquet(inp.devices)
    cols = lf.collect_schema().names()
    by_life = (
        _ns("installed_at") + (pl.col("lifetime_years") * YEAR_NS).round(0).cast(pl.Int64)
        if "lifetime_years" in cols
        else pl.lit(None, pl.Int64)
    )
    w1 = pl.coalesce(_ns("retired_at"), by_life) if "retired_at" in cols else by_life
    sites = pl.scan_parquet(inp.sites).select("site_id", "region", "pue")
    return (
        lf.with_row_index("dev_pos")
        .select(
            "dev_pos",
            "device_id",
            "site_id",
            emb=pl.col("embodied_kgco2e").cast(pl.Float64),
            w0=_ns("installed_at"),
            w1=w1,
        )
        .join(sites, on="site_id", how="left")
    )


def _intensity_pl(inp: Inputs) -> pl.LazyFrame:
    """region, [i0, i1), c, cfe, residual with SPEC defaults."""
    lf = pl.scan_parquet(inp.intensity)
    cols = lf.collect_schema().names()
    end = _ns("end") if "end" in cols else pl.lit(None, pl.Int64)
    cfe = pl.col("cfe").fill_null(0.0) if "cfe" in cols else pl.lit(0.0)
    resid = (
        pl.coalesce("residual_gco2e_per_kwh", "gco2e_per_kwh")
        if "residual_gco2e_per_kwh" in cols
        else pl.col("gco2e_per_kwh")
    )
    i1 = pl.coalesce(pl.col("i1"), pl.col("i0").shift(-1).over("region"))
    prev_len = (pl.col("i1") - pl.col("i0")).shift(1).over("region")
    return (
        lf.select("region", i0=_ns("start"), i1=end, c="gco2e_per_kwh", cfe=cfe, r=resid)
        .sort("region", "i0")
        .with_columns(i1=i1)
        .with_columns(i1=pl.coalesce(pl.col("i1"), pl.col("i0") + prev_len, pl.lit(I64_MAX)))
    )


def _cumulative_pl(inp: Inputs, ids: pl.Series) -> pl.LazyFrame:
    """Per device and valid timestamp: C = energy (J) of its segments up to
    and including the one starting there.

    Like carbonledger (without ``sort=True``), this requires each device's
    samples in time order in the input, as both dumps are: a stable sort by
    device then gives (device, ts) order, far cheaper than a two-key sort.
    Duplicate timestamps are then adjacent; the few rows that have one are
    averaged by a small group-by and joined back onto the first of each run.
    """
    scan = pl.scan_parquet(inp.power)
    dev = pl.col("device_id")
    if scan.collect_schema()["device_id"] == pl.String:
        dev = dev.cast(pl.Enum(ids))  # u32 codes: cheap to compare and sort

    def same_key(k: int) -> pl.Expr:
        d, t = pl.col("dev"), pl.col("t")
        return ((d == d.shift(k)) & (t == t.shift(k))).fill_null(False)

    rows = (
        scan.select(dev=dev, t=_ns("ts"), p="power_w")
        .filter(pl.col("p").is_finite() & (pl.col("p") >= 0.0))
        .sort("dev", maintain_order=True)
        .with_columns(dup_prev=same_key(1), dup_next=same_key(-1))
    )
    means = (
        rows.filter(pl.col("dup_prev") | pl.col("dup_next"))
        .group_by("dev", "t")
        .agg(p_mean=pl.col("p").mean())
    )
    samples = (
        rows.filter(~pl.col("dup_prev"))
        .join(means, on=["dev", "t"], how="left", maintain_order="left")
        .select("dev", "t", p=pl.coalesce("p_mean", "p"))
    )
    same = pl.col("dev").shift(-1) == pl.col("dev")
    dt = pl.col("t").shift(-1) - pl.col("t")
    seg = (pl.col("p") + pl.col("p").shift(-1)) * 0.5 * dt.cast(pl.Float64) * 1e-9
    e = pl.when(same & (dt <= inp.max_gap_ns)).then(seg).otherwise(0.0)
    return samples.select("dev", "t", c=e.cum_sum().over("dev"))


def polars_account(inp: Inputs, engine: Literal["streaming", "in-memory"] = "streaming") -> Result:
    """The attribution in Polars; the samples go through ``engine``."""
    p0, p1 = inp.period
    dev = _devices_pl(inp).collect().sort("dev_pos")
    ids = dev["device_id"]
    is_str = ids.dtype == pl.String
    dev = dev.with_columns(dev=ids.cast(pl.Enum(ids)) if is_str else ids)
    cum = _cumulative_pl(inp, ids).collect(engine=engine)

    inten = _intensity_pl(inp).collect()
    alloc = (
        pl.scan_parquet(inp.allocations)
        .with_row_index("alloc_pos")
        .select(
            "alloc_pos",
            "job_id",
            "device_id",
            share=pl.col("share").fill_null(1.0) if "share" in _names(inp.allocations) else 1.0,
            a=pl.max_horizontal(_ns("start"), pl.lit(p0)),
            b=pl.min_horizontal(_ns("end"), pl.lit(p1)),
        )
        .collect()
    )
    dev_cols = ["device_id", "dev", "region", "pue", "emb", "w0", "w1"]
    alloc = alloc.join(dev.select(dev_cols), on="device_id", how="left", maintain_order="left")
    whole = dev.select("dev_pos", *dev_cols, a=pl.lit(p0), b=pl.lit(p1), share=pl.lit(1.0))

    def pieces(frame: pl.DataFrame, key: str) -> pl.DataFrame:
        return (
            frame.filter(pl.col("b") > pl.col("a"))
            .join(inten, on="region")
            .with_columns(
                pa=pl.max_horizontal("a", "i0"),
                pb=pl.min_horizontal("b", "i1"),
            )
            .filter(pl.col("pb") > pl.col("pa"))
            .select(key, "dev", "share", "pue", "c", "cfe", "r", "pa", "pb")
        )

    ap = pieces(alloc, "alloc_pos")
    dp = pieces(whole, "dev_pos")
    points = (
        pl.concat([f.select("dev", t=col) for f in (ap, dp) for col in ("pa", "pb")])
        .unique()
        .sort("dev", "t")
    )
    look = points.join_asof(
        cum,
        on="t",
        by="dev",
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,  # both sorted by (dev, t): sorted within each group
    ).with_columns(pl.col("c").fill_null(0.0))

    def energy(frame: pl.DataFrame, key: str) -> pl.DataFrame:
        j = (
            frame.join(look.rename({"t": "pa", "c": "ca"}), on=["dev", "pa"], how="left")
            .join(look.rename({"t": "pb", "c": "cb"}), on=["dev", "pb"], how="left")
            .with_columns(e=(pl.col("cb") - pl.col("ca")) * pl.col("share"))
        )
        return j.group_by(key).agg(
            e=pl.col("e").sum(),
            fe=(pl.col("e") * pl.col("pue")).sum(),
            op=(pl.col("e") * pl.col("pue") * pl.col("c")).sum(),
            mk=(pl.col("e") * pl.col("pue") * (1.0 - pl.col("cfe")) * pl.col("r")).sum(),
        )

    def embodied() -> pl.Expr:
        lo = pl.max_horizontal("a", "w0")
        hi = pl.min_horizontal("b", "w1")
        span = (hi - lo).clip(lower_bound=0).cast(pl.Float64)
        win = (pl.col("w1") - pl.col("w0")).cast(pl.Float64)
        return pl.col("share") * pl.col("emb") * span / win

    def finish(frame: pl.DataFrame, sums: pl.DataFrame, key: str) -> pl.DataFrame:
        out = frame.with_columns(emb_kg=embodied()).join(
            sums, on=key, how="left", maintain_order="left"
        )
        z = [pl.col(c).fill_null(0.0) for c in ("e", "fe", "op", "mk")]
        return out.with_columns(z).select(
            *(c for c in ("job_id", "device_id") if c in out.columns),
            energy_kwh=pl.col("e") / 3.6e6,
            facility_energy_kwh=pl.col("fe") / 3.6e6,
            operational_kgco2e=pl.col("op") / 3.6e9,
            operational_market_kgco2e=pl.col("mk") / 3.6e9,
            embodied_kgco2e=pl.col("emb_kg"),
            total_kgco2e=pl.col("op") / 3.6e9 + pl.col("emb_kg"),
        )

    alloc_out = finish(alloc, energy(ap, "alloc_pos"), "alloc_pos")
    dev_out = finish(whole, energy(dp, "dev_pos"), "dev_pos")
    return Result(alloc_out, dev_out, _unallocated(alloc_out, dev_out), {"segments": cum.height})


def _names(path: str) -> list[str]:
    return pl.scan_parquet(path).collect_schema().names()


def _unallocated(alloc: pl.DataFrame, dev: pl.DataFrame) -> pl.DataFrame:
    used = alloc.group_by("device_id").agg(pl.col(c).sum() for c in METRICS)
    j = dev.join(used, on="device_id", how="left", suffix="_a", maintain_order="left")
    return j.select(
        "device_id", *((pl.col(c) - pl.col(f"{c}_a").fill_null(0.0)).alias(c) for c in METRICS)
    )


# ---------------------------------------------------------------------------
# DuckDB

_DUCKDB_SQL = """
WITH
dev AS (
  SELECT d.file_row_number::INTEGER AS dev, d.device_id, s.region, s.pue,
         d.embodied_kgco2e::DOUBLE AS emb, epoch_ns(d.installed_at) AS w0, {w1} AS w1
  FROM read_parquet($devices, file_row_number = true) d LEFT JOIN read_parquet($sites) s
  USING (site_id)),
inten0 AS (
  SELECT region, epoch_ns(start) AS i0, {end} AS i1, gco2e_per_kwh AS c,
         {cfe} AS cfe, {resid} AS r
  FROM read_parquet($intensity)),
inten1 AS (
  SELECT * REPLACE (coalesce(i1, lead(i0) OVER (PARTITION BY region ORDER BY i0)) AS i1)
  FROM inten0),
inten AS (
  SELECT * REPLACE (coalesce(i1, i0 + lag(i1 - i0) OVER (PARTITION BY region ORDER BY i0),
                             9223372036854775807) AS i1)
  FROM inten1),
alloc AS (
  SELECT x.file_row_number AS pos, x.job_id, x.device_id, d.dev, {share} AS share,
         greatest(epoch_ns(x.start), $p0) AS a, least(epoch_ns(x."end"), $p1) AS b
  FROM read_parquet($allocations, file_row_number = true) x LEFT JOIN dev d USING (device_id)),
samples AS (  -- device ids as integers: cheaper to group, partition and sort
  SELECT d.dev, epoch_ns(s.ts) AS t, avg(s.power_w) AS p
  FROM read_parquet($power) s JOIN dev d USING (device_id)
  WHERE isfinite(s.power_w) AND s.power_w >= 0
  GROUP BY ALL),
seg AS (
  SELECT dev, t,
         CASE WHEN lead(t) OVER w - t <= $gap
              THEN (p + lead(p) OVER w) * 0.5 * (lead(t) OVER w - t)::DOUBLE * 1e-9
              ELSE 0.0 END AS e
  FROM samples WINDOW w AS (PARTITION BY dev ORDER BY t)),
cum AS MATERIALIZED (
  SELECT dev, t, sum(e) OVER (PARTITION BY dev ORDER BY t ROWS UNBOUNDED PRECEDING) AS c
  FROM seg),
apieces AS MATERIALIZED (
  SELECT x.pos AS k, x.dev, x.share, d.pue, i.c, i.cfe, i.r,
         greatest(x.a, i.i0) AS pa, least(x.b, i.i1) AS pb
  FROM alloc x JOIN dev d USING (dev) JOIN inten i ON i.region = d.region
  WHERE x.b > x.a AND i.i0 < x.b AND i.i1 > x.a),
dpieces AS MATERIALIZED (
  SELECT d.dev AS k, d.dev, 1.0::DOUBLE AS share, d.pue, i.c, i.cfe, i.r,
         greatest($p0, i.i0) AS pa, least($p1, i.i1) AS pb
  FROM dev d JOIN inten i ON i.region = d.region
  WHERE i.i0 < $p1 AND i.i1 > $p0),
points AS (
  SELECT DISTINCT dev, t FROM (
    SELECT dev, pa AS t FROM apieces UNION ALL SELECT dev, pb FROM apieces
    UNION ALL SELECT dev, pa FROM dpieces UNION ALL SELECT dev, pb FROM dpieces)),
look AS MATERIALIZED (  -- C(t) = energy of the segments starting before t
  SELECT p.dev, p.t, coalesce(cum.c, 0.0) AS c
  FROM points p ASOF LEFT JOIN cum ON p.dev = cum.dev AND p.t > cum.t),
asums AS (
  SELECT k, sum(e) AS e, sum(e * pue) AS fe, sum(e * pue * c) AS op,
         sum(e * pue * (1 - cfe) * r) AS mk
  FROM (SELECT x.*, (lb.c - la.c) * x.share AS e FROM apieces x
        JOIN look la ON la.dev = x.dev AND la.t = x.pa
        JOIN look lb ON lb.dev = x.dev AND lb.t = x.pb)
  GROUP BY k),
dsums AS (
  SELECT k, sum(e) AS e, sum(e * pue) AS fe, sum(e * pue * c) AS op,
         sum(e * pue * (1 - cfe) * r) AS mk
  FROM (SELECT x.*, (lb.c - la.c) AS e FROM dpieces x
        JOIN look la ON la.dev = x.dev AND la.t = x.pa
        JOIN look lb ON lb.dev = x.dev AND lb.t = x.pb)
  GROUP BY k),
aout AS (
  SELECT x.pos, x.job_id, x.device_id,
         coalesce(s.e, 0) / 3.6e6 AS energy_kwh,
         coalesce(s.fe, 0) / 3.6e6 AS facility_energy_kwh,
         coalesce(s.op, 0) / 3.6e9 AS operational_kgco2e,
         coalesce(s.mk, 0) / 3.6e9 AS operational_market_kgco2e,
         x.share * d.emb * greatest(least(x.b, d.w1) - greatest(x.a, d.w0), 0)::DOUBLE
           / (d.w1 - d.w0)::DOUBLE AS embodied_kgco2e
  FROM alloc x LEFT JOIN dev d USING (dev) LEFT JOIN asums s ON s.k = x.pos),
dout AS (
  SELECT d.dev AS pos, d.device_id,
         coalesce(s.e, 0) / 3.6e6 AS energy_kwh,
         coalesce(s.fe, 0) / 3.6e6 AS facility_energy_kwh,
         coalesce(s.op, 0) / 3.6e9 AS operational_kgco2e,
         coalesce(s.mk, 0) / 3.6e9 AS operational_market_kgco2e,
         d.emb * greatest(least($p1, d.w1) - greatest($p0, d.w0), 0)::DOUBLE
           / (d.w1 - d.w0)::DOUBLE AS embodied_kgco2e
  FROM dev d LEFT JOIN dsums s ON s.k = d.dev)
SELECT 'allocations' AS which, pos, job_id, device_id, energy_kwh, facility_energy_kwh,
       operational_kgco2e, operational_market_kgco2e, embodied_kgco2e
FROM aout
UNION ALL
SELECT 'devices', pos, NULL, device_id, energy_kwh, facility_energy_kwh,
       operational_kgco2e, operational_market_kgco2e, embodied_kgco2e
FROM dout
ORDER BY which, pos
"""


def _duckdb_sql(inp: Inputs) -> str:
    import duckdb

    def cols(path: str) -> list[str]:
        rel = duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}')")
        assert rel is not None
        return [r[0] for r in rel.fetchall()]

    dcols, icols, acols = cols(inp.devices), cols(inp.intensity), cols(inp.allocations)
    by_life = (
        "epoch_ns(d.installed_at) + round(d.lifetime_years * 31557600e9)::BIGINT"
        if "lifetime_years" in dcols
        else "NULL::BIGINT"
    )
    w1 = f"coalesce(epoch_ns(d.retired_at), {by_life})" if "retired_at" in dcols else by_life
    return _DUCKDB_SQL.format(
        w1=w1,
        end='epoch_ns("end")' if "end" in icols else "NULL::BIGINT",
        cfe="coalesce(cfe, 0.0)" if "cfe" in icols else "0.0",
        resid="coalesce(residual_gco2e_per_kwh, gco2e_per_kwh)"
        if "residual_gco2e_per_kwh" in icols
        else "gco2e_per_kwh",
        share="coalesce(share, 1.0)" if "share" in acols else "1.0",
    )


def duckdb_account(inp: Inputs, threads: int | None = None) -> Result:
    """The attribution in DuckDB SQL (one query per output table)."""
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    params = {
        "power": inp.power,
        "devices": inp.devices,
        "sites": inp.sites,
        "intensity": inp.intensity,
        "allocations": inp.allocations,
        "p0": inp.period[0],
        "p1": inp.period[1],
        "gap": inp.max_gap_ns,
    }
    # one statement for both outputs: the samples are scanned once
    df = pl.from_arrow(con.sql(_duckdb_sql(inp), params=params).to_arrow_table())
    assert isinstance(df, pl.DataFrame)
    df = df.with_columns(total_kgco2e=pl.col("operational_kgco2e") + pl.col("embodied_kgco2e"))
    con.close()
    alloc = df.filter(pl.col("which") == "allocations").select("job_id", "device_id", *METRICS)
    dev = df.filter(pl.col("which") == "devices").select("device_id", *METRICS)
    return Result(alloc, dev, _unallocated(alloc, dev))
