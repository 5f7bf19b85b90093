"""The synthetic fleet generator (``carbonledger.synth``): schemas, both dump
orders holding the same rows, determinism, allocations that never exceed a
device, and ``account`` giving the same answer on either order."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import carbonledger as cl
from carbonledger import synth

TS = pa.timestamp("ns", tz="UTC")
REL = 1e-9
SMALL: dict[str, Any] = {"devices": 8, "hours": 2.0, "hz": 0.2, "seed": 0}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("fleet")
    return synth.generate(out, file_rows=2000, **SMALL)


def _read(files: Any) -> pa.Table:
    assert isinstance(files, list) and files
    return pa.concat_tables([pq.read_table(f) for f in files])


def _account(fleet: dict[str, Any], power: Any) -> cl.Report:
    return cl.account(
        power=power,
        devices=fleet["devices"],
        sites=fleet["sites"],
        intensity=fleet["intensity"],
        allocations=fleet["allocations"],
    )


def _sorted_rows(t: pa.Table) -> tuple[list[str], Any, Any]:
    value = t.column_names[2]
    s = t.sort_by([("device_id", "ascending"), ("ts", "ascending"), (value, "ascending")])
    return (
        s.column("device_id").to_pylist(),
        s.column("ts").cast(pa.int64()).to_numpy(),
        s.column(value).to_numpy(),
    )


def test_layout_and_schemas(fleet: dict[str, Any]) -> None:
    for key in ("power_by_device", "power_by_time"):
        files = fleet[key]
        assert isinstance(files, list) and len(files) >= 2
        for i, f in enumerate(files):
            assert Path(f).name == f"part-{i:05d}.parquet"
            assert pq.ParquetFile(f).metadata.num_rows <= 2000
    assert Path(fleet["power_by_time"][0]).parent.name == "by_time"
    assert Path(fleet["power_counters_by_device"][0]).parent.parent.name == "power_counters"
    for key, col in (("power_by_device", "power_w"), ("power_counters_by_time", "energy_j")):
        schema = pq.read_schema(fleet[key][0])
        assert schema == pa.schema([("device_id", pa.string()), ("ts", TS), (col, pa.float64())])
    devices = pq.read_table(fleet["devices"])
    for name, typ in (
        ("device_id", pa.string()),
        ("site_id", pa.string()),
        ("model", pa.string()),
        ("kind", pa.string()),
        ("embodied_kgco2e", pa.float64()),
        ("installed_at", TS),
        ("lifetime_years", pa.float64()),
        ("idle_power_w", pa.float64()),
        ("counter_wrap_j", pa.float64()),
    ):
        assert devices.schema.field(name).type == typ, name
    assert devices.num_rows == SMALL["devices"]
    assert set(devices.column("kind").to_pylist()) == {"gpu"}
    idle = devices.column("idle_power_w").to_numpy()
    assert np.all((idle >= 55) & (idle <= 90))
    sites = pq.read_table(fleet["sites"])
    assert set(sites.column("region").to_pylist()) == {"DE", "US-CAL-CISO", "SG"}
    pue = sites.column("pue").to_numpy()
    assert np.all((pue >= 1.1) & (pue <= 1.4))
    intensity = pq.read_table(fleet["intensity"])
    assert intensity.column_names == ["region", "start", "end", "gco2e_per_kwh"]
    alloc = pq.read_table(fleet["allocations"])
    assert alloc.column_names == [
        "job_id",
        "device_id",
        "start",
        "end",
        "share",
        "phase",
        "team",
        "workload",
    ]
    assert set(alloc.column("phase").to_pylist()) <= {
        "data",
        "experimentation",
        "training",
        "inference",
    }
    assert pc.all(pc.greater(alloc.column("end"), alloc.column("start"))).as_py()


def test_counter_devices_are_split_off(fleet: dict[str, Any]) -> None:
    devices = pq.read_table(fleet["devices"]).to_pylist()
    counters = {d["device_id"] for d in devices if d["counter_wrap_j"] is not None}
    assert len(counters) == round(0.1 * SMALL["devices"])
    for d in devices:
        if d["device_id"] in counters:
            assert d["counter_wrap_j"] == 2**32 / 1000
    power_ids = set(_read(fleet["power_by_device"]).column("device_id").to_pylist())
    counter_tab = _read(fleet["power_counters_by_device"])
    assert set(counter_tab.column("device_id").to_pylist()) == counters
    assert not power_ids & counters
    e = counter_tab.column("energy_j").to_numpy()
    valid = e[np.isfinite(e) & (e >= 0)]
    assert np.all(valid < 2**32 / 1000)


def test_both_orders_hold_the_same_rows_in_their_order(fleet: dict[str, Any]) -> None:
    for name in ("power", "power_counters"):
        by_dev = _read(fleet[f"{name}_by_device"])
        by_time = _read(fleet[f"{name}_by_time"])
        assert by_dev.num_rows == by_time.num_rows > 0
        a, b = _sorted_rows(by_dev), _sorted_rows(by_time)
        assert a[0] == b[0]
        assert np.array_equal(a[1], b[1])
        assert np.array_equal(a[2], b[2], equal_nan=True)
        ids = by_dev.column("device_id").to_pylist()
        ts = by_dev.column("ts").cast(pa.int64()).to_pylist()
        assert list(zip(ids, ts, strict=True)) == sorted(zip(ids, ts, strict=True))
        ids = by_time.column("device_id").to_pylist()
        ts = by_time.column("ts").cast(pa.int64()).to_pylist()
        assert list(zip(ts, ids, strict=True)) == sorted(zip(ts, ids, strict=True))


def _assert_reports_equal(x: cl.Report, y: cl.Report) -> None:
    for table in ("allocations", "unallocated", "devices"):
        a, b = x.to_arrow(table), y.to_arrow(table)
        assert a.num_rows == b.num_rows
        for col in ("duration_s", "uncovered_s", *cl.METRIC_COLUMNS):
            if col not in a.column_names:
                continue
            u, v = a.column(col).to_numpy(), b.column(col).to_numpy()
            assert np.allclose(u, v, rtol=REL, atol=1e-12), (table, col)
    dx, dy = x.to_arrow("devices"), y.to_arrow("devices")
    for col in ("samples", "invalid_samples", "duplicate_samples", "gaps", "counter_wraps"):
        assert dx.column(col).equals(dy.column(col)), col


def test_account_gives_the_same_result_for_both_orders(fleet: dict[str, Any]) -> None:
    by_dev = _account(fleet, fleet["power_by_device"])
    by_time = _account(fleet, fleet["power_by_time"])
    _assert_reports_equal(by_dev, by_time)
    totals = by_dev.totals()
    assert totals["energy_kwh"] > 0
    assert totals["operational_kgco2e"] > 0
    assert totals["embodied_kgco2e"] > 0
    # a folder works as well as a list of files
    folder = str(Path(fleet["power_by_time"][0]).parent)
    _assert_reports_equal(by_dev, _account(fleet, folder))


def test_account_runs_on_the_counters(fleet: dict[str, Any]) -> None:
    by_dev = _account(fleet, fleet["power_counters_by_device"])
    by_time = _account(fleet, fleet["power_counters_by_time"])
    _assert_reports_equal(by_dev, by_time)
    devs = by_dev.to_arrow("devices")
    counted = pc.greater(devs.column("samples"), 0)
    assert pc.sum(pc.cast(counted, pa.int64())).as_py() == 1
    energy = pc.filter(devs.column("energy_kwh"), counted).to_pylist()
    assert energy[0] > 0
    assert pc.sum(devs.column("counter_resets")).as_py() == 0


def _max_concurrent_share(alloc: pa.Table) -> float:
    events: dict[str, list[tuple[int, float]]] = {}
    for r in alloc.to_pylist():
        ev = events.setdefault(r["device_id"], [])
        ev.append((int(r["start"].timestamp() * 1e6), r["share"]))
        ev.append((int(r["end"].timestamp() * 1e6), -r["share"]))
    worst = 0.0
    for ev in events.values():
        level = 0.0
        for _, delta in sorted(ev):  # ends (negative) first at equal times
            level += delta
            worst = max(worst, level)
    return worst


def test_allocations_never_over_allocate(fleet: dict[str, Any]) -> None:
    assert _max_concurrent_share(pq.read_table(fleet["allocations"])) <= 1.0 + 1e-12
    big = synth.fleet_tables(64, 48.0, 0.01, seed=3)["allocations"]
    shares = big.column("share").to_numpy()
    assert set(np.unique(shares)) <= {0.5, 1.0}
    assert (shares == 0.5).any() and (shares == 1.0).mean() > 0.5
    assert set(big.column("phase").to_pylist()) == {
        "data",
        "experimentation",
        "training",
        "inference",
    }
    assert _max_concurrent_share(big) <= 1.0 + 1e-12
    # gang-scheduled training: one job on several GPUs
    training = big.filter(pc.equal(big.column("phase"), "training"))
    assert training.num_rows > len(set(training.column("job_id").to_pylist()))


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    a = synth.generate(tmp_path / "a", order="time", **SMALL)
    b = synth.generate(tmp_path / "b", order="time", **SMALL)
    c = synth.generate(tmp_path / "c", order="time", **{**SMALL, "seed": 1})
    for key in ("power", "power_counters", "devices", "allocations"):
        fa, fb, fc = a[key], b[key], c[key]
        la = fa if isinstance(fa, list) else [fa]
        lb = fb if isinstance(fb, list) else [fb]
        assert [Path(x).read_bytes() for x in la] == [Path(x).read_bytes() for x in lb]
        lc = fc if isinstance(fc, list) else [fc]
        if key != "devices":
            assert [Path(x).read_bytes() for x in la] != [Path(x).read_bytes() for x in lc]
    assert a["power_by_device"] == []


def test_fleet_tables_match_the_files(fleet: dict[str, Any]) -> None:
    t = synth.fleet_tables(**SMALL)
    assert set(t) == {"power", "power_counters", "devices", "sites", "intensity", "allocations"}
    for name in ("power", "power_counters"):
        mine, files = t[name], _read(fleet[f"{name}_by_device"])
        assert mine.schema == files.schema
        assert mine.column("device_id").equals(files.column("device_id"))
        assert mine.column("ts").equals(files.column("ts"))
        u, v = mine.column(2).to_numpy(), files.column(2).to_numpy()
        assert np.array_equal(u, v, equal_nan=True)
    assert t["allocations"].equals(pq.read_table(fleet["allocations"]))
    assert t["devices"].equals(pq.read_table(fleet["devices"]))


def test_power_shapes_and_defects() -> None:
    t = synth.fleet_tables(24, 6.0, 0.2, seed=5, counters_fraction=0.0)
    devices = {d["device_id"]: d for d in t["devices"].to_pylist()}
    p = t["power"]
    w = p.column("power_w").to_numpy()
    ids = np.array(p.column("device_id").to_pylist())
    assert np.isnan(w).sum() >= 1
    assert (w < 0).sum() >= 1
    ok = np.isfinite(w) & (w >= 0)
    limit = np.array([devices[i]["power_limit_w"] for i in ids])
    idle = np.array([devices[i]["idle_power_w"] for i in ids])
    assert np.all(w[ok] <= 1.02 * limit[ok] + 1e-9)
    assert np.all(w[ok] >= 0.85 * idle[ok] - 1e-9)
    assert np.all(np.abs(np.round(w[ok] * 1000) - w[ok] * 1000) < 1e-6)  # whole milliwatts
    # busy phases reach near the limit, idle time sits near idle power
    assert np.quantile(w[ok] / limit[ok], 0.99) > 0.7
    assert np.quantile(w[ok] - idle[ok], 0.05) < 5
    r = cl.account(
        power=p,
        devices=t["devices"],
        sites=t["sites"],
        intensity=t["intensity"],
        allocations=t["allocations"],
    )
    d = r.to_arrow("devices")
    assert pc.sum(d.column("invalid_samples")).as_py() >= 2
    assert pc.sum(d.column("duplicate_samples")).as_py() >= 1
    assert pc.sum(d.column("gaps")).as_py() >= 1  # outages longer than 5 min
    by_phase: dict[str, float] = {}
    for row in r.to_arrow("allocations").to_pylist():
        if row["duration_s"] > 0:
            mean_w = row["energy_kwh"] * 3.6e6 / (row["duration_s"] * row["share"])
            by_phase.setdefault(row["phase"], 0.0)
            by_phase[row["phase"]] = max(by_phase[row["phase"]], mean_w)
    assert by_phase["training"] > by_phase["data"]


def test_intensity_covers_periods_outside_2023() -> None:
    start = dt.datetime(2025, 12, 31, 20, 30, tzinfo=dt.timezone.utc)
    t = synth.fleet_tables(6, 10.0, 0.05, seed=2, start=start)
    inten = t["intensity"]
    first = pc.min(inten.column("start")).as_py()
    last = pc.max(inten.column("end")).as_py()
    ts = t["power"].column("ts")
    assert first <= pc.min(ts).as_py() and last > pc.max(ts).as_py()
    # 2025-12-31T20:00Z reuses the 2023 hour with the same hour-of-year
    ref = synth.fleet_tables(6, 1.0, 0.05, start=dt.datetime(2023, 12, 31, 20, tzinfo=dt.UTC))
    for region in ("DE", "SG", "US-CAL-CISO"):
        a = inten.filter(pc.equal(inten.column("region"), region)).column("gco2e_per_kwh")
        b = ref["intensity"].filter(pc.equal(ref["intensity"].column("region"), region))
        assert a[0].as_py() == b.column("gco2e_per_kwh")[0].as_py()
    r = cl.account(
        power=t["power"],
        devices=t["devices"],
        sites=t["sites"],
        intensity=inten,
        allocations=t["allocations"],
    )
    assert math.isfinite(r.totals()["total_kgco2e"])


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--devices", "4", "--hours", "1", "--hz", "0.1", "--out", str(tmp_path)]
    args += ["--order", "device", "--file-rows", "500", "--counters-fraction", "0.5"]
    assert synth.main([*args, "--start", "2023-03-01T00:00:00Z"]) == 0
    assert '"nominal_samples": 1440' in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "power").iterdir()) == ["by_device"]
    assert (tmp_path / "power_counters" / "by_device" / "part-00000.parquet").exists()
    first = pq.read_table(tmp_path / "power" / "by_device").column("ts")[0].as_py()
    assert first.date() == dt.date(2023, 3, 1)
