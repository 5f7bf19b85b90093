"""carbonledger.ingest.dcgm_hpc: snapshots of dcgm-exporter's HPC job
mapping directory -> allocations.

The mapping files are what dcgm-exporter reads (NVIDIA/dcgm-exporter
internal/pkg/transformation/hpc.go): one file per GPU named by its index
(``0``) or ``<gpu>.<gpu instance>`` for MIG (``3.0``), one job id per line,
other names ignored.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import carbonledger as cl
from carbonledger.exceptions import InputError, OrderError, SchemaError
from carbonledger.ingest import dcgm_hpc
from carbonledger.ingest.dcgm_hpc import from_dcgm_hpc

UTC = dt.UTC
T0 = dt.datetime(2025, 1, 1, tzinfo=UTC)
TS = pa.timestamp("ns", tz="UTC")
REL = 1e-9
STEP = 600

POWER = {f"gpu01/{i}": 100.0 * (i + 1) for i in range(4)} | {f"gpu02/{i}": 250.0 for i in range(4)}


def at(s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


def iso(s: float) -> str:
    return at(s).strftime("%Y-%m-%dT%H:%M:%SZ")


def ns(s: float) -> int:
    return int(at(s).timestamp()) * 1_000_000_000


def running(t: int) -> dict[str, dict[str, list[str]]]:
    """What the mapping directories hold at time t (seconds after T0)."""
    gpu01: dict[str, list[str]] = {}
    gpu02: dict[str, list[str]] = {}
    if t < 3600:
        gpu01["0"] = ["4242"]
        gpu01["1"] = ["4242"]
    if 1200 <= t < 2400:
        gpu01["0"] = [*gpu01.get("0", []), "4250"]
    if 600 <= t < 4200:
        for i in range(4):
            gpu02[str(i)] = ["4300"]
    return {"gpu01": gpu01, "gpu02": gpu02}


TIMES = list(range(0, 7200, STEP))  # the last snapshot is at 6600; until closes at 7200


def make_tree(root: Path, times: list[int] = TIMES) -> Path:
    for t in times:
        for host, files in running(t).items():
            snap = root / host / iso(t)
            snap.mkdir(parents=True)
            for gpu, jobs in files.items():
                (snap / gpu).write_text("".join(j + "\n" for j in jobs))
    return root


def log_lines(times: list[int] = TIMES) -> list[str]:
    out = []
    for t in times:
        for host, files in running(t).items():
            out.append(f"{iso(t)},{host},,")
            for gpu, jobs in files.items():
                out.extend(f"{iso(t)},{host},{gpu},{j}" for j in jobs)
    return out


def rows(t: pa.Table) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = t.to_pylist()
    for r in out:
        r["start"] = int(pa.scalar(r["start"], TS).cast(pa.int64()).as_py())
        r["end"] = int(pa.scalar(r["end"], TS).cast(pa.int64()).as_py())
    return out


def key(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["job_id"], r["device_id"], r["start"], r["end"], r["share"])


def fleet_inputs() -> dict[str, Any]:
    devs = sorted(POWER)
    ts = list(range(0, 7201, 60))
    return {
        "power": pa.table(
            {
                "device_id": [d for d in devs for _ in ts],
                "ts": pa.array([at(t) for _ in devs for t in ts], TS),
                "power_w": [POWER[d] for d in devs for _ in ts],
            }
        ),
        "devices": pa.table(
            {
                "device_id": devs,
                "site_id": ["s1"] * len(devs),
                "embodied_kgco2e": [150.0] * len(devs),
                "installed_at": pa.array([dt.datetime(2024, 1, 1, tzinfo=UTC)] * len(devs), TS),
                "lifetime_years": [4.0] * len(devs),
            }
        ),
        "sites": pa.table({"site_id": ["s1"], "region": ["R"], "pue": [1.2]}),
        "intensity": pa.table(
            {"region": ["R"], "start": pa.array([at(-3600)], TS), "gco2e_per_kwh": [300.0]}
        ),
    }


def test_end_to_end_tree(tmp_path: Path) -> None:
    alloc = from_dcgm_hpc(make_tree(tmp_path / "snapshots"), until=iso(7200))
    got = sorted(rows(alloc), key=key)
    assert sorted(key(r) for r in got) == sorted(
        [
            # 4242 alone on GPU 0, then with 4250 (1/2 each), then alone again.
            ("4242", "gpu01/0", ns(0), ns(1200), 1.0),
            ("4242", "gpu01/0", ns(1200), ns(2400), 0.5),
            ("4242", "gpu01/0", ns(2400), ns(3600), 1.0),
            ("4242", "gpu01/1", ns(0), ns(3600), 1.0),
            ("4250", "gpu01/0", ns(1200), ns(2400), 0.5),
            *(("4300", f"gpu02/{i}", ns(600), ns(4200), 1.0) for i in range(4)),
        ]
    )
    assert {r["share_basis"] for r in got} == {"index"}
    assert {(r["host"], r["gpu"]) for r in got if r["job_id"] == "4250"} == {("gpu01", "0")}

    r = cl.account(**fleet_inputs(), allocations=alloc, period=(at(0), at(7200)))
    per_job = {
        row["job_id"]: row["energy_kwh"]
        for row in r.allocations.group_by("job_id").agg(pl.col("energy_kwh").sum()).to_dicts()
    }
    assert per_job["4242"] == pytest.approx((100 * 3000 + 200 * 3600) / 3.6e6, rel=REL)
    assert per_job["4250"] == pytest.approx(100 * 600 / 3.6e6, rel=REL)
    assert per_job["4300"] == pytest.approx(4 * 250 * 3600 / 3.6e6, rel=REL)
    alloc_dev = r.allocations.group_by("device_id").agg(pl.col("energy_kwh").sum())
    by_dev = dict(zip(alloc_dev["device_id"], alloc_dev["energy_kwh"], strict=True))
    unalloc = dict(zip(r.unallocated["device_id"], r.unallocated["energy_kwh"], strict=True))
    total = dict(zip(r.devices["device_id"], r.devices["energy_kwh"], strict=True))
    for dev, p in POWER.items():
        assert total[dev] == pytest.approx(p * 7200 / 3.6e6, rel=REL)
        assert by_dev.get(dev, 0.0) + unalloc[dev] == pytest.approx(total[dev], rel=REL)


def test_log_equals_tree(tmp_path: Path) -> None:
    tree = rows(from_dcgm_hpc(make_tree(tmp_path / "snapshots"), until=iso(7200)))
    log = tmp_path / "jobs.csv"
    log.write_text("ts,host,gpu,job_id\n" + "\n".join(log_lines()) + "\n")
    assert sorted(rows(from_dcgm_hpc(log, until=iso(7200))), key=key) == sorted(tree, key=key)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cuts=st.lists(st.integers(min_value=1, max_value=60), max_size=4))
def test_rotated_logs_are_one_stream(
    tmp_path_factory: pytest.TempPathFactory, cuts: list[int]
) -> None:
    """A log rotated at any line (each part with its header), read oldest
    first, gives the rows of the whole log."""
    tmp = tmp_path_factory.mktemp("rot")
    lines = log_lines()
    whole = tmp / "all.csv"
    whole.write_text("ts,host,gpu,job_id\n" + "\n".join(lines) + "\n")
    expect = sorted(rows(from_dcgm_hpc(whole, until=iso(7200))), key=key)
    bounds = sorted({0, *(c for c in cuts if c < len(lines)), len(lines)})
    parts = []
    for k, (a, b) in enumerate(itertools.pairwise(bounds)):
        p = tmp / f"jobs.log.{k}"
        p.write_text("ts,host,gpu,job_id\n" + "\n".join(lines[a:b]) + "\n")
        parts.append(p)
    assert sorted(rows(from_dcgm_hpc(parts, until=iso(7200))), key=key) == expect


def test_last_snapshot_closes_without_until(tmp_path: Path) -> None:
    """Without until, the intervals still open end at the host's last
    snapshot: 4242 seen at 0 and 600 only -> [0, 600)."""
    got = rows(from_dcgm_hpc(make_tree(tmp_path / "s", times=[0, 600])))
    assert sorted(key(r) for r in got if r["job_id"] == "4242") == [
        ("4242", "gpu01/0", ns(0), ns(600), 1.0),
        ("4242", "gpu01/1", ns(0), ns(600), 1.0),
    ]
    # 4300 first appears in the last snapshot: no time is known, no row.
    assert not [r for r in got if r["job_id"] == "4300"]
    with pytest.raises(InputError, match=r"until is before host 'gpu01''s last snapshot"):
        from_dcgm_hpc(tmp_path / "s", until=iso(300))


def test_mapping_file_details(tmp_path: Path) -> None:
    """Blank lines, a job listed twice, names dcgm-exporter ignores, hidden
    snapshot folders, MIG instance files, and a device map for MIG."""
    snap = tmp_path / "root" / "gpu01"
    a, b = snap / "20250101T000000Z", snap / "20250101T001000Z"
    a.mkdir(parents=True)
    b.mkdir()
    (snap / ".20250101T002000Z.tmp").mkdir()  # a copy in progress
    (a / "0").write_text("\n77\n77\n\n")
    (a / "README").write_text("not a GPU\n")
    (a / "0.swp").write_text("99\n")
    (a / "3.0").write_text("88\n")
    (a / "3.1").write_text("89\n90\n")
    got = rows(from_dcgm_hpc(tmp_path / "root"))
    assert sorted(key(r) for r in got) == [
        ("77", "gpu01/0", ns(0), ns(600), 1.0),
        ("88", "gpu01/3.0", ns(0), ns(600), 1.0),
        ("89", "gpu01/3.1", ns(0), ns(600), 0.5),
        ("90", "gpu01/3.1", ns(0), ns(600), 0.5),
    ]
    dmap = tmp_path / "map.csv"
    dmap.write_text(
        "host,gpu,uuid,device_id,fraction\n"
        "gpu01,0,GPU-aaa,,\n"
        "gpu01,3.0,,gpu01/GPU-ddd,0.5\n"
        "gpu01,3.1,,gpu01/GPU-ddd,0.5\n"
    )
    got = rows(from_dcgm_hpc(tmp_path / "root", device_map=dmap, device_id="{host}/{uuid}"))
    assert sorted(key(r) for r in got) == [
        ("77", "gpu01/GPU-aaa", ns(0), ns(600), 1.0),
        ("88", "gpu01/GPU-ddd", ns(0), ns(600), 0.5),
        ("89", "gpu01/GPU-ddd", ns(0), ns(600), 0.25),
        ("90", "gpu01/GPU-ddd", ns(0), ns(600), 0.25),
    ]


def test_snapshot_time_forms(tmp_path: Path) -> None:
    root = tmp_path / "r"
    for name in ("1735689600", "2025-01-01T00-10-00Z", "2025-01-01T01:20:00+01:00"):
        d = root / "h" / name
        d.mkdir(parents=True)
        (d / "0").write_text("5\n")
    got = rows(from_dcgm_hpc(root, until=iso(1800)))
    assert [key(r) for r in got] == [("5", "h/0", ns(0), ns(1800), 1.0)]
    naive = tmp_path / "n"
    (naive / "h" / "2025-01-01T01:00:00").mkdir(parents=True)
    with pytest.raises(
        SchemaError, match=r"2025-01-01T01:00:00: the snapshot time has no time zone"
    ):
        from_dcgm_hpc(naive)
    (naive / "h" / "2025-01-01T01:00:00" / "1").write_text("6\n")
    (naive / "h" / "2025-01-01T01:10:00").mkdir()
    got = rows(from_dcgm_hpc(naive, tz="Europe/Berlin"))
    assert [key(r) for r in got] == [("6", "h/1", ns(0), ns(600), 1.0)]
    bad = tmp_path / "b"
    (bad / "h" / "yesterday").mkdir(parents=True)
    with pytest.raises(InputError, match=r"yesterday: snapshot time 'yesterday' is not a time"):
        from_dcgm_hpc(bad)
    dup = tmp_path / "d"
    (dup / "h" / "1735689600").mkdir(parents=True)
    (dup / "h" / "2025-01-01T00:00:00Z").mkdir()
    with pytest.raises(InputError, match=r"two snapshots of host 'h' at one time"):
        from_dcgm_hpc(dup)


def test_log_errors(tmp_path: Path) -> None:
    def log(text: str) -> Path:
        p = tmp_path / "x.csv"
        p.write_text(text)
        return p

    with pytest.raises(SchemaError, match=r"x.csv: header 'time,host,gpu,job' has no ts, job_id"):
        from_dcgm_hpc(log("time,host,gpu,job\n"))
    with pytest.raises(OrderError, match=r"x.csv:4: ts '2025-01-01T00:00:00Z' is before"):
        from_dcgm_hpc(
            log(
                "ts,host,gpu,job_id\n2025-01-01T00:00:00Z,h,0,1\n"
                "2025-01-01T00:10:00Z,h,0,1\n2025-01-01T00:00:00Z,h,0,1\n"
            )
        )
    with pytest.raises(InputError, match=r"x.csv:2: gpu='GPU-abc'; expected a GPU index"):
        from_dcgm_hpc(log("ts,host,gpu,job_id\n2025-01-01T00:00:00Z,h,GPU-abc,1\n"))
    with pytest.raises(InputError, match=r"x.csv:2: 3 fields, the header has 4"):
        from_dcgm_hpc(log("ts,host,gpu,job_id\n2025-01-01T00:00:00Z,h,0\n"))
    with pytest.raises(InputError, match=r"x.csv:2: host is empty"):
        from_dcgm_hpc(log("ts,host,gpu,job_id\n2025-01-01T00:00:00Z,,0,1\n"))
    with pytest.raises(InputError, match=r"nope.csv: no such file or folder"):
        from_dcgm_hpc(tmp_path / "nope.csv")
    with pytest.raises(InputError, match=r"dcgm-hpc: until='soon' is not an ISO 8601 time"):
        from_dcgm_hpc(log("ts,host,gpu,job_id\n"), until="soon")


def test_interleaved_hosts_in_log(tmp_path: Path) -> None:
    """Hosts interleave freely; only each host's own rows must be in order."""
    p = tmp_path / "x.csv"
    p.write_text(
        "ts,host,gpu,job_id\n"
        "2025-01-01T00:00:00Z,a,0,1\n"
        "2025-01-01T00:00:05Z,b,0,2\n"
        "2025-01-01T00:10:00Z,a,,\n"
        "2025-01-01T00:10:05Z,b,0,2\n"
        "2025-01-01T00:20:05Z,b,0,\n"
    )
    got = sorted(rows(from_dcgm_hpc(p)), key=key)
    assert [key(r) for r in got] == [
        ("1", "a/0", ns(0), ns(600), 1.0),
        ("2", "b/0", ns(5), ns(1205), 1.0),
    ]


def test_format_cli(tmp_path: Path) -> None:
    (fmt,) = dcgm_hpc.FORMATS
    assert (fmt.name, fmt.table) == ("dcgm-hpc", "allocations")
    p = argparse.ArgumentParser()
    fmt.add_arguments(p)
    sample = tmp_path / "sample.csv"
    sample.write_text(fmt.sample)
    t = fmt.open(p.parse_args([str(sample), "--until", "2026-12-02T14:01:30Z"]))
    assert isinstance(t, pa.Table)
    got = sorted((r["job_id"], r["device_id"], r["share"]) for r in t.to_pylist())
    assert got == [
        ("4242", "gpu01/0", 0.5),
        ("4242", "gpu01/0", 1.0),
        ("4242", "gpu01/1", 1.0),
        ("4250", "gpu01/0", 0.5),
    ]
