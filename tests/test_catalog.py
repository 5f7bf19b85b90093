"""The embodied-carbon catalog: every row sourced, lookups, and ``account``
filling ``embodied_kgco2e`` from ``devices.model``."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import carbonledger as cl
from carbonledger import catalog
from carbonledger.exceptions import InputError, UnknownIdError

YEAR_S = 31_557_600.0
SOURCES = resources.files("carbonledger").joinpath("data", "catalog", "sources")


def test_every_row_has_source_year_and_unit() -> None:
    t = catalog.embodied_catalog()
    assert t.num_rows >= 10
    models = t.column("model").to_pylist()
    assert len({m.casefold() for m in models}) == len(models)
    for row in t.to_pylist():
        assert row["embodied_kgco2e"] > 0, row["model"]
        assert row["source"].strip() and row["source_url"].startswith("https://"), row["model"]
        assert 2015 <= row["year"] <= 2026, row["model"]
        assert row["unit"] in ("gpu", "baseboard", "server"), row["model"]
        assert row["boundary"].strip(), row["model"]
        if row["derived"]:
            assert "DERIVED" in row["notes"], row["model"]


def test_required_hardware_is_listed() -> None:
    for model in (
        "A100-SXM4-80GB",
        "A100-PCIe",
        "H100-SXM5-80GB",
        "H100-PCIe",
        "V100-SXM2-32GB",
        "HPE-Apollo-6500-Gen10-Plus",
        "Azure-GreenSKU-Baseline-1U",
    ):
        assert catalog.lookup(model).model == model


def test_lookup_values_and_case() -> None:
    assert catalog.lookup("A100-SXM4-80GB").embodied_kgco2e == 150.0
    assert catalog.lookup("  h100-sxm5-80gb ").embodied_kgco2e == 164.0
    e = catalog.lookup("HGX-H100-8GPU")
    assert (e.embodied_kgco2e, e.unit, e.derived) == (1312.0, "baseboard", False)
    assert catalog.lookup("H100-SXM5-80GB").embodied_kgco2e == e.embodied_kgco2e / 8
    with pytest.raises(UnknownIdError, match="known models"):
        catalog.lookup("TPUv9")


def _ccf() -> dict[str, dict[str, Any]]:
    with SOURCES.joinpath("ccf-coefficients-aws-embodied.csv").open("rb") as f:
        rows = pacsv.read_csv(f).to_pylist()
    return {r["type"]: r for r in rows}


def test_ccf_derived_rows_recompute_from_the_copied_coefficients() -> None:
    ccf = _ccf()
    for model, instance, gpus in (
        ("AWS-p4d.24xlarge-host", "p4d.24xlarge", 8),
        ("AWS-p3dn.24xlarge-host", "p3dn.24xlarge", 8),
    ):
        r = ccf[instance]
        host = r["total"] - r["additional_gpus"]
        assert catalog.lookup(model).embodied_kgco2e == pytest.approx(host, abs=1e-9)
        assert r["additional_gpus"] / gpus == 150.0
        assert r["total"] == pytest.approx(
            1000 + r["additional_memory"] + r["additional_storage"] + r["additional_cpus"] + 1200
        )
    assert ccf["g4dn.metal"]["additional_gpus"] / 8 == catalog.lookup("T4").embodied_kgco2e


def _greensku(name: str, key: str) -> float:
    text = SOURCES.joinpath(f"greensku-carbon-{name}.yaml").read_text()
    m = re.search(rf"{re.escape(key)}[\s\S]*?carbon:\s*([0-9.]+)", text)
    assert m, (name, key)
    return float(m.group(1))


def test_greensku_server_recomputes_from_the_copied_component_table() -> None:
    config = SOURCES.joinpath("greensku-server-Baseline.yaml").read_text()
    assert "number: 12\n    size: 64GB" in config and "number: 6\n    size: 2TB" in config
    server = SOURCES.joinpath("greensku-carbon-server.yaml").read_text()
    one_u = server.split("- type: Server-2U")[0]
    chassis = [float(x) for x in re.findall(r"carbon:\s*([0-9.]+)", one_u)]
    total = (
        _greensku("CPU", "count: 80")
        + 12 * _greensku("DRAM", "size: 64GB")
        + 6 * _greensku("SSD", "size: 2TB")
        + _greensku("NIC", "bandwidth: 100G")
        + sum(chassis)
    )
    assert total == pytest.approx(1912.5498, abs=1e-9)
    assert catalog.lookup("Azure-GreenSKU-Baseline-1U").embodied_kgco2e == round(total, 2)


def _fleet(devices: pa.Table) -> dict[str, Any]:
    ts = pa.timestamp("ns", tz="UTC")
    n = devices.num_rows
    ids = devices.column("device_id").to_pylist()
    return {
        "power": pa.table(
            {
                "device_id": [d for d in ids for _ in range(2)],
                "ts": pa.array([0, 3600 * 10**9] * n, pa.int64()).cast(ts),
                "power_w": [100.0] * (2 * n),
            }
        ),
        "devices": devices,
        "sites": pa.table({"site_id": ["s"], "region": ["R"], "pue": [1.0]}),
        "intensity": pa.table(
            {"region": ["R"], "start": pa.array([0], pa.int64()).cast(ts), "gco2e_per_kwh": [0.0]}
        ),
    }


def _devices(**cols: Any) -> pa.Table:
    n = len(cols["device_id"])
    base = {
        "site_id": ["s"] * n,
        "installed_at": pa.array([0] * n, pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "lifetime_years": [1.0] * n,
    }
    return pa.table({**cols, **base})


def test_account_fills_embodied_from_model() -> None:
    devices = _devices(device_id=["a", "h"], model=["A100-SXM4-80GB", "H100-SXM5-80GB"])
    report = cl.account(**_fleet(devices))
    got = dict(zip(report.devices["device_id"], report.devices["embodied_kgco2e"], strict=True))
    assert got["a"] == pytest.approx(150.0 * 3600 / YEAR_S, rel=1e-12)
    assert got["h"] == pytest.approx(164.0 * 3600 / YEAR_S, rel=1e-12)


def test_explicit_value_wins_and_nulls_are_filled() -> None:
    devices = _devices(
        device_id=["a", "b", "c"],
        model=["A100-SXM4-80GB", "not-in-catalog", "HGX-H100-8GPU"],
        embodied_kgco2e=pa.array([10.0, 20.0, None], pa.float64()),
    )
    filled = catalog.fill_embodied(devices)
    assert filled.column("embodied_kgco2e").to_pylist() == [10.0, 20.0, 1312.0]
    assert filled.column_names == devices.column_names
    report = cl.account(**_fleet(devices))
    assert report.devices["embodied_kgco2e"].to_list() == pytest.approx(
        [x * 3600 / YEAR_S for x in (10.0, 20.0, 1312.0)], rel=1e-12
    )


def test_no_model_column_leaves_devices_unchanged() -> None:
    devices = _devices(device_id=["a"], embodied_kgco2e=[5.0])
    assert catalog.fill_embodied(devices) is devices


def test_unknown_model_error_names_table_column_value_and_known_models() -> None:
    devices = _devices(device_id=["a", "x"], model=["A100-SXM4-80GB", "TPUv9"])
    with pytest.raises(UnknownIdError) as e:
        cl.account(**_fleet(devices))
    msg = str(e.value)
    for part in ("table 'devices'", "column 'model'", "'TPUv9'", "'x'", "H100-SXM5-80GB"):
        assert part in msg
    assert isinstance(e.value, InputError)


def test_null_model_without_embodied_is_an_error() -> None:
    devices = _devices(device_id=["a"], model=pa.array([None], pa.string()))
    with pytest.raises(UnknownIdError, match="neither 'embodied_kgco2e' nor 'model'"):
        catalog.fill_embodied(devices)


def test_model_through_polars_and_dictionary_columns() -> None:
    pl = pytest.importorskip("polars")
    devices = _devices(device_id=["a"], model=["T4"])
    as_dict = devices.set_column(1, "model", devices.column("model").dictionary_encode())
    assert catalog.fill_embodied(as_dict).column("embodied_kgco2e").to_pylist() == [150.0]
    report = cl.account(**{**_fleet(devices), "devices": pl.from_arrow(devices)})
    assert report.devices["embodied_kgco2e"][0] == pytest.approx(150.0 * 3600 / YEAR_S)
