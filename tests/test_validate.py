"""``carbonledger.validate``: every problem, without reading a sample."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import TS, allocations_table, at, devices_table, intensity_table, sites_table

import carbonledger as cl


def test_clean_inputs_have_no_problem(spec12: dict[str, Any]) -> None:
    v = cl.validate(
        spec12["devices"],
        spec12["sites"],
        spec12["intensity"],
        spec12["allocations"],
        power=spec12["power"],
        period=spec12["period"],
    )
    assert v.ok and v.problems == [] and v.more == 0
    assert v.period_source == "argument"


def test_every_problem_is_reported() -> None:
    devices = devices_table(
        device_id=["g0", "g1", "g1", "g3"],
        site_id=["s1", "nowhere", "s1", "s1"],
        embodied_kgco2e=[150.0, -1.0, 150.0, 150.0],
        installed_at=pa.array([at(-1e6)] * 4, TS),
        lifetime_years=[4.0, 4.0, 4.0, 0.0],
    )
    sites = sites_table(site_id=["s1"], region=["R"], pue=[0.9])
    intensity = intensity_table([(0, 10, 400), (20, 30, -5)])
    allocs = allocations_table(
        [("A", "g0", 0, 10, 0.7), ("B", "g0", 5, 15, 0.6), ("C", "ghost", 0, 5, 1.0)]
    )
    v = cl.validate(devices, sites, intensity, allocs, period=(at(0), at(30)))
    text = "\n".join(str(p) for p in v.problems)
    expected = [
        ("InputError", "table 'sites', column 'pue': value 0.9"),
        ("UnknownIdError", "table 'devices', column 'site_id': unknown id 'nowhere' at row 1"),
        ("InputError", "duplicate id 'g1' at row 2"),
        ("InputError", "column 'embodied_kgco2e': value -1 at row 1"),
        ("InputError", "column 'lifetime_years': value 0 at row 3"),
        ("InputError", "table 'intensity', column 'gco2e_per_kwh': value -5 at row 1"),
        ("UnknownIdError", "table 'allocations', column 'device_id': unknown id 'ghost' at row 2"),
        # The bad intensity row is left out, so the hole runs [10, 30).
        ("CoverageError", "row for [2025-01-01T00:00:10Z, 2025-01-01T00:00:30Z)"),
        ("OverlapError", "allocations on device_id 'g0' sum to share 1.2"),
    ]
    for kind, fragment in expected:
        assert any(p.kind == kind and fragment in p.message for p in v.problems), (
            f"missing {kind}: {fragment}\n{text}"
        )
    assert len(v.problems) == len(expected), text
    assert not v.ok


def test_first_problem_is_what_account_raises(spec12: dict[str, Any]) -> None:
    spec12["sites"] = sites_table(pue=[0.5])
    spec12["allocations"] = allocations_table([("A", "nobody", 5, 25, 1.0)])
    v = cl.validate(spec12["devices"], spec12["sites"], spec12["intensity"], spec12["allocations"])
    assert [p.kind for p in v.problems] == ["InputError", "UnknownIdError"]
    with pytest.raises(cl.InputError) as e:
        cl.account(**spec12)
    assert str(e.value) == v.problems[0].message


def test_power_schema_and_period_from_parquet_statistics(
    spec12: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "power.parquet"
    pq.write_table(spec12["power"], path)
    # Intensity covers [0, 15) only: the samples span [0, 40).
    short = intensity_table([(0, 15, 400)])
    v = cl.validate(spec12["devices"], spec12["sites"], short, power=str(path))
    assert v.period_source == "power statistics"
    assert v.period is not None and v.period[1] == at(40)
    assert [p.kind for p in v.problems] == ["CoverageError"]
    assert "[2025-01-01T00:00:15" in v.problems[0].message

    bad = spec12["power"].rename_columns(["device_id", "ts", "watts"])
    v = cl.validate(spec12["devices"], spec12["sites"], spec12["intensity"], power=bad)
    assert [p.kind for p in v.problems] == ["SchemaError"]
    assert "missing column 'power_w'" in v.problems[0].message
    assert v.period is None


def test_missing_columns_in_several_tables() -> None:
    devices = devices_table().drop_columns(["installed_at"])
    sites = sites_table().drop_columns(["pue"])
    v = cl.validate(devices, sites, intensity_table([(0, None, 1.0)]))
    messages = [p.message for p in v.problems]
    assert any("table 'sites'" in m and "'pue'" in m for m in messages), messages
    assert any("table 'devices'" in m and "'installed_at'" in m for m in messages), messages
    assert {p.kind for p in v.problems} == {"SchemaError"}
