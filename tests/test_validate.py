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


# 2025-01-01T00:00:00Z in epoch nanoseconds.
_T0_NS = 1_735_689_600 * 10**9
_NS_PER = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def _ts_file(path: Path, ticks: list[int], unit: str, tz: str | None, **write: Any) -> str:
    """A power file whose ``ts`` column holds ``ticks`` (in ``unit``)."""
    n = len(ticks)
    table = pa.table(
        {
            "device_id": ["g0"] * n,
            "ts": pa.array(ticks, pa.timestamp(unit, tz)),
            "power_w": [100.0] * n,
        }
    )
    pq.write_table(table, path, **write)
    return str(path)


@pytest.mark.parametrize("tz", [None, "UTC", "America/New_York"])
def test_ts_span_is_exact_for_sub_microsecond_jitter(tmp_path: Path, tz: str | None) -> None:
    """Jittered ns telemetry: the statistics are not whole microseconds, which
    a conversion through ``datetime`` refuses (the crash of issue 9)."""
    from carbonledger._io import open_dataset
    from carbonledger.validation import _ts_span

    lo, hi = _T0_NS + 123_456_789, _T0_NS + 40 * 10**9 + 1
    ticks = [lo + 7, hi - 3, lo, _T0_NS + 20 * 10**9 + 999, hi]  # not sorted
    # Two row groups in one file, and a second file: the span is over all.
    _ts_file(tmp_path / "a.parquet", ticks, "ns", tz, row_group_size=2)
    _ts_file(tmp_path / "b.parquet", [lo + 1, lo + 2], "ns", tz)
    assert _ts_span(open_dataset(str(tmp_path), "power")) == (lo, hi)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_ts_span_is_exact_in_every_unit(tmp_path: Path, unit: str) -> None:
    """Each unit is scaled exactly; seconds are stored by Parquet in
    milliseconds, so the stored unit (not the Arrow type) must be used."""
    from carbonledger._io import open_dataset
    from carbonledger.validation import _ts_span

    k = _NS_PER[unit]
    ticks = [_T0_NS // k + 3, _T0_NS // k + 86_400 * (10**9 // k) + 5, _T0_NS // k + 4]
    path = _ts_file(tmp_path / "p.parquet", ticks, unit, "UTC")
    assert _ts_span(open_dataset(path, "power")) == (min(ticks) * k, max(ticks) * k)


def test_ts_span_without_usable_statistics_is_none(tmp_path: Path) -> None:
    from carbonledger._io import open_dataset
    from carbonledger.validation import _ts_span

    ticks = [_T0_NS + 1, _T0_NS + 10**10 + 1]
    nostats = _ts_file(tmp_path / "n.parquet", ticks, "ns", "UTC", write_statistics=False)
    assert _ts_span(open_dataset(nostats, "power")) is None
    # Legacy INT96 timestamps have no defined sort order: no usable statistics.
    int96 = _ts_file(
        tmp_path / "i.parquet", ticks, "ns", "UTC", use_deprecated_int96_timestamps=True
    )
    assert pq.ParquetFile(int96).metadata.schema.column(1).physical_type == "INT96"
    assert _ts_span(open_dataset(int96, "power")) is None


def test_validate_cli_accepts_nanosecond_jitter(spec12: dict[str, Any], tmp_path: Path) -> None:
    """``carbonledger validate`` on jittered ns power files: a result, no
    internal error, with the period taken from the exact statistics."""
    import subprocess
    import sys

    ticks = [_T0_NS + 1, _T0_NS + 20 * 10**9 + 500, _T0_NS + 40 * 10**9 + 999]
    power = _ts_file(tmp_path / "power.parquet", ticks, "ns", "UTC")
    paths = {}
    for name in ("devices", "sites", "intensity"):
        paths[name] = str(tmp_path / f"{name}.parquet")
        pq.write_table(spec12[name], paths[name])
    v = cl.validate(spec12["devices"], spec12["sites"], spec12["intensity"], power=power)
    assert v.ok and v.period_source == "power statistics"
    assert v.period == (at(0), at(40))  # shown to the microsecond
    # The intensity covers [0, 60 s): a span past it is a coverage hole.
    late = [_T0_NS + 1, _T0_NS + 60 * 10**9 + 1]
    late_power = _ts_file(tmp_path / "late.parquet", late, "ns", "UTC")
    v = cl.validate(spec12["devices"], spec12["sites"], spec12["intensity"], power=late_power)
    assert [p.kind for p in v.problems] == ["CoverageError"]

    proc = subprocess.run(
        [sys.executable, "-m", "carbonledger.cli", "validate", "--power", power]
        + [arg for name, path in paths.items() for arg in (f"--{name}", path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "(power statistics)" in proc.stdout and "internal error" not in proc.stderr
