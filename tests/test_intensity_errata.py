"""Grid intensity: what the real files get wrong (issue 11).

EIA-930 hour labels that some balancing authorities wrote by the hour's
beginning (the errata table), the basis of each dataset's figures, hours no
real grid had (``validate``'s plausibility warning) and zone-less times.
Everything runs on the real 2022 files shipped in ``data/eia930/`` (EIA-930
via dc-rl, Electricity Maps via green-dcc; see that folder's README).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from conftest import TS, devices_table, sites_table
from hypothesis import given, settings
from hypothesis import strategies as st

import carbonledger as cl
from carbonledger.intensity import (
    EIA930_BASIS,
    ERRATA_PATH,
    METADATA_KEY,
    eia930_errata,
    from_eia930,
    from_electricitymaps,
    implausible_hours,
)

UTC = dt.UTC
DATA = ERRATA_PATH.parent
EM = DATA / "electricitymaps"
CISO = DATA / "CISO_2022_hourly.csv.gz"
PJM = DATA / "PJM_2022_hourly.csv.gz"
EM_CISO = EM / "US-CAL-CISO_2022_hourly.csv.gz"
EM_PJM = EM / "US-MIDA-PJM_2022_hourly.csv.gz"
HOUR = dt.timedelta(hours=1)
HEADER = "timestamp,WND,SUN,WAT,OIL,NG,COL,NUC,OTH,avg_CI\n"


def utc(year: int, month: int, day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=UTC)


def starts(t: pa.Table) -> list[dt.datetime]:
    return list(t.column("start").to_pylist())


# ------------------------------------------------------------ the table


def test_shipped_errata_rows() -> None:
    t = eia930_errata().to_pylist()
    got = [
        (r["balancing_authority"], r["period_start"], r["period_end"], r["shift_hours"]) for r in t
    ]
    assert got == [
        ("CISO", None, utc(2022, 6, 14, 7), 1),
        ("CISO", utc(2022, 6, 15, 7), utc(2022, 6, 16, 7), 1),
        ("PJM", None, None, 1),
    ]
    for r in t:
        assert "open-grid-emissions" in r["source"] and "Measured" in r["source"]
        assert r["erratum"].startswith(r["balancing_authority"])


def test_shipped_data_are_the_cited_files() -> None:
    """The sha256 listed in data/eia930/README.md, of the uncompressed files."""
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    for f in (CISO, PJM, EM_CISO, EM_PJM):
        digest = hashlib.sha256(gzip.decompress(f.read_bytes())).hexdigest()
        assert f"| `{f.relative_to(DATA).as_posix()}` | `{digest}` |" in readme


# ---------------------------------------------- lags against Electricity Maps


def best_lag(eia: pa.Table, em: pa.Table, lo: dt.datetime, hi: dt.datetime) -> int:
    """The shift k (hours) for which EIA's row starting at s correlates best
    with Electricity Maps' row starting at s + k, over EIA rows in [lo, hi)."""

    def frame(t: pa.Table, name: str) -> pl.DataFrame:
        df = pl.from_arrow(t.select(["start", "gco2e_per_kwh"]))
        assert isinstance(df, pl.DataFrame)
        return df.rename({"gco2e_per_kwh": name})

    a = frame(eia, "eia").filter((pl.col("start") >= lo) & (pl.col("start") < hi))
    b = frame(em, "em")
    r = {}
    for k in range(-3, 4):
        j = a.join(
            b.with_columns(pl.col("start") - pl.duration(hours=k, time_unit="ns")), on="start"
        )
        assert j.height > 3000
        r[k] = float(np.corrcoef(j["eia"].to_numpy(), j["em"].to_numpy())[0, 1])
    return max(r, key=lambda k: r[k])


@pytest.mark.parametrize(
    ("eia_file", "em_file", "lo", "hi", "before"),
    [
        # CISO until its fix: one hour late against Electricity Maps.
        (CISO, EM_CISO, utc(2022, 1, 1), utc(2022, 6, 14, 7), 1),
        # PJM: all year.
        (PJM, EM_PJM, utc(2022, 1, 1), utc(2023, 1, 1), 1),
        (PJM, EM_PJM, utc(2022, 1, 1), utc(2022, 7, 1), 1),
        (PJM, EM_PJM, utc(2022, 7, 1), utc(2023, 1, 1), 1),
        # Control: CISO after its fix needs no correction.
        (CISO, EM_CISO, utc(2022, 6, 16, 7), utc(2023, 1, 1), 0),
    ],
)
def test_best_lag_against_electricitymaps(
    eia_file: Path, em_file: Path, lo: dt.datetime, hi: dt.datetime, before: int
) -> None:
    em = from_electricitymaps(em_file, basis="lifecycle")
    assert best_lag(from_eia930(eia_file, errata=False), em, lo, hi) == before
    assert best_lag(from_eia930(eia_file), em, lo, hi) == 0


# ----------------------------------------- where the labelling changes


def test_ciso_boundaries_leave_no_overlap_and_name_the_unreported_hour() -> None:
    t = from_eia930(CISO)
    s = starts(t)
    assert len(s) == len(set(s)) == 8760 - 3 - 2  # 3 blank hours, 2 duplicates dropped
    assert s == sorted(s)
    ends = t.column("end").to_pylist()
    assert all(e - a == HOUR for a, e in zip(s, ends, strict=True))
    gaps = [(e, b) for e, b in zip(ends[:-1], s[1:], strict=True) if e != b]
    assert gaps == [
        (utc(2022, 1, 5, 10), utc(2022, 1, 5, 11)),  # blank, label 10:00 (hour-beginning)
        (utc(2022, 5, 17, 18), utc(2022, 5, 17, 19)),  # blank
        (utc(2022, 6, 13, 18), utc(2022, 6, 13, 19)),  # blank
        (utc(2022, 6, 15, 6), utc(2022, 6, 15, 7)),  # never reported: the conventions meet
    ]
    assert s[0] == utc(2022, 1, 1, 0) and ends[-1] == utc(2022, 12, 31, 23)

    by_start = {r["start"]: r for r in t.to_pylist()}
    ci = {r["start"]: r["gco2e_per_kwh"] for r in from_eia930(CISO, errata=False).to_pylist()}
    # Leaving the correction at label 2022-06-14 07:00: the corrected label
    # 06:00 and the published label 07:00 both give [06:00, 07:00); the
    # published one (279.2) is kept.
    r = by_start[utc(2022, 6, 14, 6)]
    assert r["erratum"] is None and r["gco2e_per_kwh"] == ci[utc(2022, 6, 14, 6)]
    assert r["gco2e_per_kwh"] == pytest.approx(279.22792967528)
    # [05:00, 06:00) is label 05:00 corrected; label 06:00 (280.4) was dropped.
    assert by_start[utc(2022, 6, 14, 5)]["gco2e_per_kwh"] == pytest.approx(287.62389227189465)
    assert by_start[utc(2022, 6, 14, 5)]["erratum"].startswith("CISO hour-beginning labels until")
    # Entering on 2022-06-15 07:00 (Pacific midnight): label 07:00 gives
    # [07:00, 08:00), label 06:00 (published) [05:00, 06:00).
    assert by_start[utc(2022, 6, 15, 5)]["erratum"] is None
    assert by_start[utc(2022, 6, 15, 7)]["erratum"].startswith("CISO hour-beginning labels on")
    assert by_start[utc(2022, 6, 15, 7)]["gco2e_per_kwh"] == pytest.approx(251.7923055162659)
    # Leaving again on 2022-06-16 07:00.
    assert by_start[utc(2022, 6, 16, 6)]["erratum"] is None
    assert by_start[utc(2022, 6, 16, 6)]["gco2e_per_kwh"] == pytest.approx(263.99506522972206)
    assert all(r["erratum"] is None for r in t.to_pylist() if r["start"] >= utc(2022, 6, 16, 6))

    meta = json.loads(t.schema.metadata[METADATA_KEY])
    assert meta["basis"] == EIA930_BASIS
    (f,) = meta["files"]
    assert [e["rows"] for e in f["errata"]] == [3943, 24]
    assert [d["label"] for d in f["dropped"]] == ["2022-06-14T06:00:00Z", "2022-06-16T06:00:00Z"]
    assert [d["kept_label"] for d in f["dropped"]] == [
        "2022-06-14T07:00:00Z",
        "2022-06-16T07:00:00Z",
    ]
    assert [u["hour"] for u in f["unreported"]] == [
        ["2022-06-15T06:00:00Z", "2022-06-15T07:00:00Z"]
    ]


def test_pjm_is_moved_all_year_and_errata_false_keeps_the_published_labels() -> None:
    t = from_eia930(PJM)
    assert t.num_rows == 8760 - 23
    assert set(t.column("erratum").to_pylist()) == {"PJM hour-beginning labels: +1 h"}
    assert starts(t)[0] == utc(2022, 1, 1, 0)  # label 00:00 is the hour it begins
    raw = from_eia930(PJM, errata=False)
    assert raw.num_rows == t.num_rows
    assert raw.column("erratum").null_count == raw.num_rows
    assert starts(raw)[0] == utc(2021, 12, 31, 23)
    assert [a + HOUR for a in starts(raw)] == starts(t)
    assert json.loads(raw.schema.metadata[METADATA_KEY])["files"][0]["errata"] == []


def write(path: Path, labels: list[str], values: list[str] | None = None) -> Path:
    vals = values or [f"{100 + i}" for i in range(len(labels))]
    rows = "".join(f"{t},1,1,1,1,1,1,1,1,{v}\n" for t, v in zip(labels, vals, strict=True))
    path.write_text(HEADER + rows)
    return path


def hourly(n: int) -> list[str]:
    return [f"2022-03-01T{h:02d}:00:00+00:00" for h in range(n)]


def errata_file(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    body = "".join(f'{b},{s},{e},{h},"{b} test {h}",test\n' for b, s, e, h in rows)
    path.write_text(
        "balancing_authority,period_start,period_end,shift_hours,erratum,source\n" + body
    )
    return path


@pytest.mark.parametrize(
    ("shift", "kept", "dropped", "hole"),
    [
        # +1 over labels [03:00, 06:00): entering leaves [02:00, 03:00)
        # unreported; leaving, labels 05:00 (corrected) and 06:00 give
        # [05:00, 06:00): 06:00, as published, is kept.
        ("1", [0, 1, 2, 3, 4, 6, 7, 8, 9], "2022-03-01T05:00:00Z", (2, 3)),
        # -1: entering, labels 02:00 and 03:00 (corrected) give [01:00, 02:00);
        # leaving leaves [04:00, 05:00) unreported.
        ("-1", [0, 1, 2, 4, 5, 6, 7, 8, 9], "2022-03-01T03:00:00Z", (4, 5)),
    ],
)
def test_boundary_rules_on_a_small_file(
    tmp_path: Path, shift: str, kept: list[int], dropped: str, hole: tuple[int, int]
) -> None:
    f = write(tmp_path / "XX_2022.csv", hourly(10))
    e = errata_file(
        tmp_path / "errata.csv", [("XX", "2022-03-01T03:00:00Z", "2022-03-01T06:00:00Z", shift)]
    )
    t = from_eia930(f, errata=e)
    h = int(shift)
    want = [utc(2022, 3, 1, i) - HOUR + (h * HOUR if 3 <= i < 6 else dt.timedelta(0)) for i in kept]
    assert starts(t) == want
    assert t.column("gco2e_per_kwh").to_pylist() == [100.0 + i for i in kept]
    (note,) = json.loads(t.schema.metadata[METADATA_KEY])["files"]
    assert [d["label"] for d in note["dropped"]] == [dropped]
    assert note["unreported"][0]["hour"] == [
        f"2022-03-01T{hole[0]:02d}:00:00Z",
        f"2022-03-01T{hole[1]:02d}:00:00Z",
    ]
    # Another balancing authority's file is left alone.
    other = from_eia930(write(tmp_path / "YY_2022.csv", hourly(10)), errata=e)
    assert other.column("erratum").null_count == 10


@settings(max_examples=60, deadline=None)
@given(
    periods=st.lists(
        st.tuples(st.integers(0, 30), st.integers(1, 8), st.sampled_from([-2, -1, 1, 2])),
        max_size=3,
    ),
    blanks=st.sets(st.integers(0, 39), max_size=4),
)
def test_no_overlap_and_every_hole_is_accounted_for(
    tmp_path_factory: pytest.TempPathFactory,
    periods: list[tuple[int, int, int]],
    blanks: set[int],
) -> None:
    """Whatever the corrections: no two rows give the same hour, and every
    hour of the span that no row gives is a blank row's hour or is listed
    as unreported."""
    d = tmp_path_factory.mktemp("prop")
    labels = [(utc(2022, 3, 1) + i * HOUR).isoformat().replace("+00:00", "Z") for i in range(40)]
    rows, last = [], 0
    for lo, n, h in periods:  # non-overlapping, in order
        lo = max(lo, last)
        if lo >= 40:
            break
        hi = min(lo + n, 40)
        rows.append(("ZZ", labels[lo], labels[hi] if hi < 40 else "", str(h)))
        last = hi
    e = errata_file(d / "errata.csv", rows)
    vals = ["" if i in blanks else str(i) for i in range(40)]
    t = from_eia930(write(d / "ZZ_x.csv", labels, vals), errata=e)
    s = starts(t)
    assert len(s) == len(set(s))
    note = json.loads(t.schema.metadata[METADATA_KEY])["files"][0]
    listed: set[dt.datetime] = set()
    for u in note["unreported"]:
        h0, h1 = (dt.datetime.fromisoformat(x) for x in u["hour"])
        while h0 < h1:
            listed.add(h0)
            h0 += HOUR
    covered = set(s)
    first_hour, last_hour = min(s), max(s)
    # Hours of blank rows, wherever their correction put them.
    shift = {i: 0 for i in range(40)}
    for _, first, after, hours in rows:
        i0 = labels.index(first)
        i1 = labels.index(after) if after else 40
        for i in range(i0, i1):
            shift[i] = int(hours)
    blank_hours = {utc(2022, 3, 1) + (i - 1 + shift[i]) * HOUR for i in blanks}
    dropped = {dt.datetime.fromisoformat(x["hour"][0]) for x in note["dropped"]}
    assert not listed & covered
    hour = first_hour
    while hour <= last_hour:
        if hour not in covered:
            assert hour in listed or hour in blank_hours or hour in dropped, hour
        hour += HOUR


def test_errata_table_errors(tmp_path: Path) -> None:
    f = write(tmp_path / "XX_2022.csv", hourly(3))
    bad = [
        ([("XX", "", "", "0")], "shift_hours.*'0'.*non-zero"),
        ([("XX", "", "", "1.5")], "shift_hours.*'1.5'"),
        ([("XX", "2022-03-01 03:00:00", "", "1")], "line 2, column 'period_start'.*no time zone"),
        (
            [("XX", "2022-03-02T00:00:00Z", "2022-03-01T00:00:00Z", "1")],
            "line 2: period_end .* is not after",
        ),
        (
            [("XX", "", "2022-03-02T00:00:00Z", "1"), ("XX", "2022-03-01T00:00:00Z", "", "1")],
            "lines 2 and 3: two periods of 'XX' overlap",
        ),
        ([(" ", "", "", "1")], "line 2, column 'balancing_authority': empty"),
    ]
    for i, (rows, match) in enumerate(bad):
        e = errata_file(tmp_path / f"errata{i}.csv", rows)
        with pytest.raises(cl.SchemaError, match=match):
            from_eia930(f, errata=e)
        with pytest.raises(cl.SchemaError, match=f"errata table .*errata{i}.csv"):
            eia930_errata(e)
    (tmp_path / "cols.csv").write_text("balancing_authority,shift_hours\nXX,1\n")
    with pytest.raises(cl.SchemaError, match="missing column 'period_start'"):
        from_eia930(f, errata=tmp_path / "cols.csv")
    with pytest.raises(cl.InputError, match="argument 'errata': got 3"):
        from_eia930(f, errata=3)  # type: ignore[arg-type]
    with pytest.raises(cl.InputError, match="cannot read the file"):
        from_eia930(f, errata=tmp_path / "nope.csv")


# ------------------------------------------------------------------ basis


def test_basis_columns() -> None:
    assert set(from_eia930(CISO).column("basis").to_pylist()) == {"production, lifecycle"}
    assert set(from_electricitymaps(EM_CISO, basis="direct").column("basis").to_pylist()) == {
        "consumption, direct"
    }
    lca = from_electricitymaps(EM_CISO, basis="lifecycle")
    assert set(lca.column("basis").to_pylist()) == {"consumption, lifecycle"}


def test_avg_ci_is_production_with_lifecycle_factors() -> None:
    """dc-rl's avg_CI is exactly the generation-weighted mean of IPCC AR5
    life-cycle medians (oil: 650, as Electricity Maps) over the BA's own
    generation: production-based, life-cycle."""
    factors = {
        "WND": 11,
        "SUN": 41,
        "WAT": 24,
        "OIL": 650,
        "NG": 490,
        "COL": 820,
        "NUC": 12,
        "OTH": 230,
    }
    for f in (CISO, PJM):
        t = pacsv.read_csv(f).drop_null()
        gen = np.column_stack([t.column(k).to_numpy() for k in factors])
        mix = gen @ np.array(list(factors.values()), dtype=float) / gen.sum(axis=1)
        assert np.allclose(mix, t.column("avg_CI").to_numpy(), rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    ("eia_file", "em_file", "direct", "lifecycle"),
    [(CISO, EM_CISO, 1.3066, 0.9765), (PJM, EM_PJM, 1.0213, 0.8541)],
)
def test_basis_gap_as_documented(
    eia_file: Path, em_file: Path, direct: float, lifecycle: float
) -> None:
    """The figures quoted in docs/ingest/grid-intensity.md: the mean of
    EIA-930 over the mean of Electricity Maps, on the hours both give."""
    eia = pl.from_arrow(from_eia930(eia_file).select(["start", "gco2e_per_kwh"]))
    assert isinstance(eia, pl.DataFrame)
    for basis, ratio in (("direct", direct), ("lifecycle", lifecycle)):
        em = pl.from_arrow(
            from_electricitymaps(em_file, basis=basis).select(["start", "gco2e_per_kwh"])  # type: ignore[arg-type]
        )
        assert isinstance(em, pl.DataFrame)
        j = eia.join(em.rename({"gco2e_per_kwh": "em"}), on="start")
        assert j.height > 8700
        assert j["gco2e_per_kwh"].mean() / j["em"].mean() == pytest.approx(ratio, abs=5e-5)  # type: ignore[operator]


# ------------------------------------------------- the engine takes them


@pytest.mark.parametrize("source", ["eia930", "electricitymaps"])
def test_account_accepts_the_adapter_tables(source: str) -> None:
    """1 kW for two hours (2022-03-01 00:00-02:00 UTC) in California, PUE
    1.5: 2 kWh, and 1.5 x (ci_00 + ci_01) / 1000 kg, with the extra columns
    (basis, erratum) passed through untouched."""
    if source == "eia930":
        intensity = from_eia930(CISO)
    else:
        intensity = from_electricitymaps(EM_CISO, basis="lifecycle", region="CISO")
    t0 = utc(2022, 3, 1)
    ts = [t0 + dt.timedelta(minutes=10 * i) for i in range(13)]
    power = pa.table({"device_id": ["g0"] * 13, "ts": pa.array(ts, TS), "power_w": [1000.0] * 13})
    r = cl.account(
        power=power,
        devices=devices_table(installed_at=pa.array([utc(2021, 1, 1)], TS)),
        sites=sites_table(region=["CISO"]),
        intensity=intensity,
        period=(t0, t0 + 2 * HOUR),
        max_gap=600,
    )
    ci = {r["start"]: r["gco2e_per_kwh"] for r in intensity.to_pylist()}
    want = 1.5 * (ci[t0] + ci[t0 + HOUR]) / 1000
    totals = r.totals()
    assert totals["energy_kwh"] == pytest.approx(2.0, rel=1e-9)
    assert totals["operational_kgco2e"] == pytest.approx(want, rel=1e-9)
    grid = r.grid.to_dicts()
    assert [g["gco2e_per_kwh"] for g in grid] == [ci[t0], ci[t0 + HOUR]]


# ------------------------------------------------------- plausibility


def test_implausible_hours_on_the_shipped_series() -> None:
    hits = implausible_hours(from_eia930(PJM)).to_pylist()
    assert [(h["region"], h["start"]) for h in hits] == [
        ("PJM", utc(2022, 10, 1, 5)),
        ("PJM", utc(2022, 10, 1, 6)),
        ("PJM", utc(2022, 10, 1, 7)),
        ("PJM", utc(2022, 10, 1, 8)),
        ("PJM", utc(2022, 10, 2, 4)),
    ]
    assert [round(h["gco2e_per_kwh"], 1) for h in hits] == [46.9, 46.9, 46.9, 44.8, 42.7]
    assert {round(h["floor_gco2e_per_kwh"], 1) for h in hits} == {289.8}
    # Nothing in CISO (corrected or not), nor in any Electricity Maps series shipped.
    assert implausible_hours(from_eia930(CISO)).num_rows == 0
    assert implausible_hours(from_eia930(CISO, errata=False)).num_rows == 0
    em_files = [EM_CISO, EM_PJM, *sorted((DATA.parent / "electricitymaps").glob("*.csv"))]
    for basis in ("direct", "lifecycle"):
        em = from_electricitymaps(em_files, basis=basis)
        assert implausible_hours(em).num_rows == 0


def test_implausible_hours_rules() -> None:
    # 20 days of a daily cycle 300-400 g/kWh, one hour at 60: a fifth of the floor.
    base = utc(2022, 3, 1)
    hours = [base + i * HOUR for i in range(480)]
    values = [350 + 50 * np.sin(i / 24 * 2 * np.pi) for i in range(480)]
    values[240] = 60.0

    def table(vals: list[float], **extra: list[object]) -> pa.Table:
        cols: dict[str, object] = {
            "region": ["R"] * len(vals),
            "start": pa.array(hours[: len(vals)], TS),
            "gco2e_per_kwh": vals,
        }
        cols.update(extra)
        return pa.table(cols)

    hits = implausible_hours(table(values)).to_pylist()
    assert [h["start"] for h in hits] == [hours[240]]
    assert hits[0]["end"] == hours[241]  # the next row's start
    # Half the floor is not implausible (a windy hour).
    values[240] = 160.0
    assert implausible_hours(table(values)).num_rows == 0
    # Near-zero regions: below a quarter but less than 10 g/kWh under the floor.
    tiny = [8 + (i % 24) / 6 for i in range(480)]
    tiny[240] = 0.5
    assert implausible_hours(table(tiny)).num_rows == 0
    # Too few rows in the window (daily or monthly factors): not judged.
    assert implausible_hours(table([300.0] * 20 + [10.0])).num_rows == 0
    # ISO strings and zone-less timestamps are read as UTC (SPEC 1).
    values[240] = 60.0
    as_text = table(values).set_column(
        1, "start", pa.array([h.strftime("%Y-%m-%d %H:%M:%S") for h in hours])
    )
    assert implausible_hours(as_text).column("start").to_pylist() == [hours[240]]
    with pytest.raises(cl.SchemaError, match="missing column 'region'"):
        implausible_hours(pa.table({"start": pa.array(hours, TS)}))


def test_validate_warns_about_pjm_partial_reports() -> None:
    devices = devices_table(installed_at=pa.array([utc(2021, 1, 1)], TS))
    v = cl.validate(devices, sites_table(region=["PJM"]), from_eia930(PJM))
    assert v.ok, v.problems  # a warning is not a problem
    (w,) = v.warnings
    assert w.code == "implausible_intensity" and w.count == 5
    assert "region 'PJM': 5 grid-intensity hour(s) below a quarter" in w.message
    assert "[2022-10-01 05:00, 09:00) UTC at 44.8-46.9 g/kWh (usual floor 289.8)" in w.message
    assert "[2022-10-02 04:00, 05:00) UTC at 42.7 g/kWh (usual floor 289.8)" in w.message
    assert w.examples[0] == "PJM 2022-10-01T05:00Z"
    # Outside the period, or in a region no site uses: nothing to say.
    jan = (utc(2022, 1, 1), utc(2022, 2, 1))
    assert (
        cl.validate(devices, sites_table(region=["PJM"]), from_eia930(PJM), period=jan).warnings
        == []
    )
    assert cl.validate(devices, sites_table(region=["CISO"]), from_eia930(PJM)).warnings == []
    ciso = cl.validate(devices, sites_table(region=["CISO"]), from_eia930(CISO))
    assert ciso.warnings == []


# ------------------------------------------------------ times and values


def test_eia930_zone_less_time_is_an_error(tmp_path: Path) -> None:
    f = write(tmp_path / "CISO_2022.csv", ["2022-01-01T01:00:00+00:00", "2022-01-01 02:00:00"])
    with pytest.raises(
        cl.SchemaError,
        match=r"CISO_2022.csv\), line 3, column 'timestamp': time '2022-01-01 02:00:00' has no "
        "time zone",
    ):
        from_eia930(f)
    # A bare date's "-01" is not an offset.
    with pytest.raises(cl.SchemaError, match="'2022-01-01' has no time zone"):
        from_eia930(write(tmp_path / "CISO_b.csv", ["2022-01-01"]))


def test_eia930_bad_cells(tmp_path: Path) -> None:
    f = write(tmp_path / "X_1.csv", hourly(2), ["250", "n/a"])
    with pytest.raises(cl.SchemaError, match=r"line 3, column 'avg_CI': 'n/a' is not a number"):
        from_eia930(f)
    f = write(tmp_path / "X_2.csv", ["2022-03-01T00:00:00Z", "yesterday+01:00"])
    with pytest.raises(cl.SchemaError, match=r"line 3, column 'timestamp': cannot parse 'yest"):
        from_eia930(f)
    f = write(tmp_path / "X_3.csv", ["2022-03-01T00:00:00Z", "2022-13-01T00:00:00Z"])
    with pytest.raises(cl.SchemaError, match=r"line 3, column 'timestamp': cannot parse"):
        from_eia930(f)
    (tmp_path / "X_4.csv").write_text("timestamp,CI\n2022-03-01T00:00:00Z,1\n")
    with pytest.raises(
        cl.SchemaError, match=r"missing column 'avg_CI' \(the file has 'timestamp', 'CI'\)"
    ):
        from_eia930(tmp_path / "X_4.csv")
    with pytest.raises(cl.InputError, match="cannot read the file"):
        from_eia930(tmp_path / "none_2022.csv")
    with pytest.raises(cl.InputError, match="no file given"):
        from_eia930([])
    f = write(tmp_path / "X_5.csv", hourly(2), ["250", "1_000"])  # Python's float takes it
    with pytest.raises(cl.SchemaError, match=r"line 3, column 'avg_CI': '1_000' is not a number"):
        from_eia930(f)


def test_electricitymaps_times(tmp_path: Path) -> None:
    head = (
        "Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
        "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,"
        "Data Source,Data Estimated,Data Estimation Method\n"
    )
    row = ",USA,CAISO,US-CAL-CISO,209.52,273.77,55.39,41.21,caiso.com,false,\n"
    # Zone-less is the format (the header says UTC); an offset is honoured.
    f = tmp_path / "em.csv"
    f.write_text(head + "2022-01-01 00:00:00" + row + "2022-01-01 02:00:00+01:00" + row)
    t = from_electricitymaps(f, basis="direct")
    assert starts(t) == [utc(2022, 1, 1, 0), utc(2022, 1, 1, 1)]
    f.write_text(head + "2022-01-01 00:00:00" + row + "1/1/2022 1:00" + row)
    with pytest.raises(
        cl.SchemaError, match=r"line 3, column 'Datetime \(UTC\)': cannot parse '1/1/2022 1:00'"
    ):
        from_electricitymaps(f, basis="direct")
    f.write_text(head + "2022-01-01 00:00:00" + row.replace("209.52", "x"))
    with pytest.raises(cl.SchemaError, match=r"line 2, column .*\(direct\)': 'x' is not a number"):
        from_electricitymaps(f, basis="direct")
