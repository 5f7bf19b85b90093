"""Several power sources (SPEC 2, v1.1), column mapping, and the bounds that
keep absurd inputs out of the totals (power ceiling, the accepted era)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import TS, at, power_table

import carbonledger as cl
from carbonledger import synth
from carbonledger.exceptions import InputError, InvalidSampleError, SchemaError

PERIOD = (dt.datetime(2025, 3, 3, 0, 10), dt.datetime(2025, 3, 3, 1, 50))


@pytest.fixture(scope="module")
def mixed() -> dict[str, pa.Table]:
    """A fleet where a third of the devices report energy counters."""
    return synth.fleet_tables(
        devices=12,
        hours=2.0,
        hz=0.2,
        seed=3,
        counters_fraction=0.34,
        start=dt.datetime(2025, 3, 3, tzinfo=dt.timezone.utc),
        order="time",
    )


def _small(f: dict[str, pa.Table]) -> dict[str, Any]:
    return {k: f[k] for k in ("devices", "sites", "intensity", "allocations")}


def _rows(report: cl.Report, table: str, key: str, ids: set[str]) -> list[dict[str, Any]]:
    t = report.to_arrow(table)
    mask = pc.is_in(t.column(key), pa.array(sorted(ids)))
    rows: list[dict[str, Any]] = t.filter(mask).to_pylist()
    return rows


def test_two_sources_equal_each_source_on_its_own(mixed: dict[str, pa.Table]) -> None:
    power, counters = mixed["power"], mixed["power_counters"]
    assert power.num_rows and counters.num_rows
    both = cl.account([power, counters], **_small(mixed), period=PERIOD)
    alone_p = cl.account(power, **_small(mixed), period=PERIOD)
    alone_c = cl.account(counters, **_small(mixed), period=PERIOD)
    ids_p = set(power.column("device_id").to_pylist())
    ids_c = set(counters.column("device_id").to_pylist())
    assert ids_p and ids_c and not ids_p & ids_c
    for table in ("devices", "unallocated", "allocations"):
        assert _rows(both, table, "device_id", ids_p) == _rows(alone_p, table, "device_id", ids_p)
        assert _rows(both, table, "device_id", ids_c) == _rows(alone_c, table, "device_id", ids_c)
    # Every sample counted: none dropped as invalid because of the other kind.
    d = both.devices
    alone = [int(r.devices["samples"].sum()) for r in (alone_p, alone_c)]
    assert int(d["samples"].sum()) == sum(alone)
    # The order of the sources does not change a bit.
    swapped = cl.account([counters, power], **_small(mixed), period=PERIOD)
    for table in ("devices", "unallocated", "allocations", "grid"):
        assert swapped.to_arrow(table).equals(both.to_arrow(table))


def _write_parts(t: pa.Table, folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    step = -(-t.num_rows // n)
    for i in range(n):
        pq.write_table(t.slice(i * step, step), folder / f"part-{i:03d}.parquet")


def test_file_sources_and_the_cli(mixed: dict[str, pa.Table], tmp_path: Path) -> None:
    _write_parts(mixed["power"], tmp_path / "gpu", 3)
    _write_parts(mixed["power_counters"], tmp_path / "cpu", 2)
    for name in ("devices", "sites", "intensity", "allocations"):
        pq.write_table(mixed[name], tmp_path / f"{name}.parquet")
    files: dict[str, Any] = {
        n: str(tmp_path / f"{n}.parquet") for n in ("devices", "sites", "intensity")
    }
    alloc = str(tmp_path / "allocations.parquet")
    mem = cl.account([mixed["power"], mixed["power_counters"]], **_small(mixed), period=PERIOD)
    disk = cl.account(
        [str(tmp_path / "gpu"), str(tmp_path / "cpu" / "*.parquet")],
        **files,
        allocations=alloc,
        period=PERIOD,
    )
    for c in ("energy_kwh", "total_kgco2e", "samples", "gaps", "counter_resets"):
        assert disk.devices[c].to_list() == mem.devices[c].to_list()

    # One source whose files disagree: a SchemaError naming files and columns.
    mixed_dir = tmp_path / "mixed"
    _write_parts(mixed["power"], mixed_dir / "a", 2)
    _write_parts(mixed["power_counters"], mixed_dir / "b", 1)
    with pytest.raises(SchemaError) as e:
        cl.account(str(mixed_dir), **files, allocations=alloc, period=PERIOD)
    msg = str(e.value)
    assert "disagree" in msg and "power_w" in msg and "energy_j" in msg
    assert "part-000.parquet" in msg

    out = tmp_path / "ledger"
    args = ["--devices", files["devices"], "--sites", files["sites"]]
    args += ["--intensity", files["intensity"], "--allocations", alloc]
    args += ["--period", PERIOD[0].isoformat(), PERIOD[1].isoformat(), "--quiet"]
    cli = [sys.executable, "-m", "carbonledger.cli", "run"]
    power_args = ["--power", str(tmp_path / "gpu"), "--power", str(tmp_path / "cpu")]
    r = subprocess.run(
        [*cli, *power_args, *args, "--out", str(out)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    ledger = pq.read_table(out / "devices.parquet")
    assert ledger.column("energy_kwh").to_pylist() == mem.devices["energy_kwh"].to_list()
    # Both kinds under one --power: exit 2, the files named, nothing written.
    bad = [*cli, "--power", str(mixed_dir), *args, "--out", str(tmp_path / "no")]
    r = subprocess.run(bad, capture_output=True, text=True)
    assert r.returncode == 2 and "disagree" in r.stderr
    assert not (tmp_path / "no").exists()


def test_a_device_in_both_kinds_is_an_error(spec12: dict[str, Any]) -> None:
    args = dict(spec12)
    power = args.pop("power")
    counters = power_table([("g0", 50, 1000.0), ("g0", 60, 2000.0)], col="energy_j")
    with pytest.raises(InputError, match="device_id 'g0' has samples in a 'power_w' source and"):
        cl.account([power, counters], **args)
    with pytest.raises(InputError, match="device_id 'g0'"):
        cl.account([power, counters], **args, sort=True)
    with pytest.raises(InputError, match="at least one source"):
        cl.account([], **args)


def test_column_mapping(spec12: dict[str, Any], tmp_path: Path) -> None:
    args = dict(spec12)
    power = args.pop("power")
    expected = cl.account(power, **args).to_arrow("devices")
    renamed = power.rename_columns(["gpu", "timestamp", "watts"])
    mapping: dict[str, Any] = {
        "power": {"device_id": "gpu", "power_w": "watts"},
        "ts": "timestamp",
    }
    got = cl.account(renamed, **args, columns=mapping).to_arrow("devices")
    assert got.equals(expected)
    # From Parquet: renamed in the scan, so the ids stay dictionary-encoded.
    pq.write_table(renamed, tmp_path / "p.parquet")
    got = cl.account(str(tmp_path / "p.parquet"), **args, columns=mapping)
    assert got.to_arrow("devices").equals(expected)
    # Small tables too.
    alloc = args.pop("allocations").rename_columns(
        ["job", "device_id", "begin", "end", "share", "phase"]
    )
    got = cl.account(power, **args, allocations=alloc, columns={"job_id": "job", "start": "begin"})
    assert got.to_arrow("devices").equals(expected)


def test_schema_errors_name_real_columns_and_suggest(
    spec12: dict[str, Any], tmp_path: Path
) -> None:
    args = dict(spec12)
    power = args.pop("power").rename_columns(["device_id", "timestamp", "power_w"])
    pq.write_table(
        power.append_column("extra", pa.array([1] * power.num_rows)), tmp_path / "p.parquet"
    )
    for source, extra in ((power, False), (str(tmp_path / "p.parquet"), True)):
        with pytest.raises(SchemaError) as e:
            cl.account(source, **args)
        msg = str(e.value)
        # The columns the input really has, not only the ones a scan projects.
        assert '"timestamp"' in msg and ('"extra"' in msg) == extra
        assert "did you mean 'timestamp'" in msg
        assert 'columns={"ts": "timestamp"}' in msg
    v = cl.validate(
        args["devices"], args["sites"], args["intensity"], power=str(tmp_path / "p.parquet")
    )
    assert any("did you mean 'timestamp'" in p.message for p in v.problems)
    v = cl.validate(
        args["devices"],
        args["sites"],
        args["intensity"],
        power=str(tmp_path / "p.parquet"),
        columns={"ts": "timestamp"},
    )
    assert v.ok, v.problems


def test_power_ceiling(spec12: dict[str, Any]) -> None:
    args = dict(spec12)
    args.pop("power")
    huge = power_table([("g0", 0, 100.0), ("g0", 30, 1e308)])
    with pytest.raises(InvalidSampleError, match=r"1e308 W for device_id 'g0'.*max_power_w"):
        cl.account(huge, **args)
    # on_invalid="drop" does not hide it: it is no measurement error to drop.
    with pytest.raises(InvalidSampleError):
        cl.account(huge, **args, on_invalid="drop")
    ok = power_table([("g0", 0, 100.0), ("g0", 10, 2e6), ("g0", 20, 100.0)])
    with pytest.raises(InvalidSampleError, match="above its ceiling of 1000000 W"):
        cl.account(ok, **args)
    r = cl.account(ok, **args, max_power_w=3e6)
    assert r.totals()["energy_kwh"] == pytest.approx(2.0001e7 / 3.6e6)
    devices = args.pop("devices").append_column("max_power_w", pa.array([5e6]))
    r = cl.account(ok, devices=devices, **args)
    assert r.totals()["energy_kwh"] == pytest.approx(2.0001e7 / 3.6e6)
    with pytest.raises(InputError, match="max_power_w"):
        cl.account(ok, devices=devices, **args, max_power_w=0.0)
    # A counter rising faster than the ceiling over its interval.
    counters = power_table([("g0", 0, 0.0), ("g0", 10, 1e8), ("g0", 20, 1e8 + 5)], col="energy_j")
    with pytest.raises(InvalidSampleError, match=r"counter rising at a mean power of 1e7 W"):
        cl.account(counters, devices=devices.drop_columns(["max_power_w"]), **args)


def test_times_outside_the_era(spec12: dict[str, Any]) -> None:
    args = dict(spec12)
    args.pop("power")
    args.pop("period")
    far = pa.table(
        {
            "device_id": ["g0", "g0"],
            "ts": pa.array([-9_200_000_000_000_000_000, int(at(10).timestamp()) * 10**9]).cast(TS),
            "power_w": [100.0, 100.0],
        }
    )
    with pytest.raises(InputError, match=r"column 'ts': time 1678-.*outside the accepted range"):
        cl.account(far, **args, sort=True)
    with pytest.raises(InputError, match="period"):
        cl.account(power_table([("g0", 0, 1.0)]), **args, period=(dt.datetime(1960, 1, 1), at(5)))
