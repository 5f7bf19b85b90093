"""``carbonledger.ingest.counters``: RAPL ``energy_uj`` and NVML total-energy
logs to energy_j counters.

RAPL values are what ``/sys/class/powercap/intel-rapl:*/energy_uj`` and
``max_energy_range_uj`` hold (integer microjoules; 65532610987 is a real
``max_energy_range_uj``, the ~65.5 kJ range of a 15.3 uJ energy unit, as
listed in codecarbon's examples/rapl/intel_rapl_show.py). NVML values are
``nvmlDeviceGetTotalEnergyConsumption`` millijoules.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import itertools
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import carbonledger as cl
from carbonledger.exceptions import InputError, OrderError, SchemaError
from carbonledger.ingest.counters import FORMATS, from_nvml, from_rapl

UTC = dt.UTC
TS = pa.timestamp("ns", tz="UTC")
REL = 1e-9
T0 = 1_796_216_585  # 2026-12-02T13:03:05Z
RANGE = 65_532_610_987  # max_energy_range_uj
GPU = "GPU-5e3b9c1a-8f0e-4b4d-a1c2-7d9e0f1a2b3c"
HEADER = "timestamp,host,zone,name,energy_uj,max_energy_range_uj\n"


def at(s: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(T0, UTC) + dt.timedelta(seconds=s)


def write(tmp: Path, text: str, name: str = "rapl.csv") -> Path:
    p = tmp / name
    p.write_text(text, encoding="utf-8")
    return p


def rows(reader: pa.RecordBatchReader) -> list[dict[str, Any]]:
    return reader.read_all().to_pylist()  # type: ignore[no-any-return]


def fleet(*devices: str) -> dict[str, Any]:
    n = len(devices)
    return {
        "devices": pa.table(
            {
                "device_id": list(devices),
                "site_id": ["fra1"] * n,
                "embodied_kgco2e": [0.0] * n,
                "installed_at": pa.array([dt.datetime(2025, 1, 1, tzinfo=UTC)] * n, TS),
                "lifetime_years": [4.0] * n,
            }
        ),
        "sites": pa.table({"site_id": ["fra1"], "region": ["DE"], "pue": [1.0]}),
        "intensity": pa.table(
            {
                "region": ["DE"],
                "start": pa.array([dt.datetime(2026, 1, 1, tzinfo=UTC)], TS),
                "gco2e_per_kwh": [400.0],
            }
        ),
    }


def package_counter(samples: int, start_uj: int, step_uj: int) -> list[int]:
    """What energy_uj reads: the true count modulo the range + 1."""
    return [(start_uj + k * step_uj) % (RANGE + 1) for k in range(samples)]


def rapl_log(every_s: int = 60, with_range: bool = True) -> str:
    """A collector loop on node01 every minute: package-0 at 200 W (12 kJ a
    minute, so its 65.5 kJ counter wraps twice in 11 minutes), dram at 10 W,
    and core (part of the package) and psys (the whole platform)."""
    pkg = package_counter(12, 60_000_000_000, 200 * every_s * 1_000_000)
    lines = []
    for k in range(12):
        t = f"{T0 + every_s * k}.250000000"
        rng = RANGE if with_range else ""
        core, dram, psys = (
            (start + k * watts * every_s * 1_000_000) % (RANGE + 1)
            for start, watts in ((1_000_000, 150), (5_000_000, 10), (9_000_000, 260))
        )
        lines += [
            f"{t},node01,intel-rapl:0,package-0,{pkg[k]},{rng}",
            f"{t},node01,intel-rapl:0:0,core,{core},{rng}",
            f"{t},node01,intel-rapl:0:2,dram,{dram},{rng}",
            f"{t},node01,intel-rapl:1,psys,{psys},{rng}",
        ]
    return HEADER + "".join(line + "\n" for line in lines)


def test_rapl_counter_wrapping_twice_end_to_end(tmp_path: Path) -> None:
    log = write(tmp_path, rapl_log())
    pkg, dram = "node01/intel-rapl:0", "node01/intel-rapl:0:2"
    out = [r for r in rows(from_rapl(log, zones="package-*,dram")) if r["device_id"] == pkg]
    raw = package_counter(12, 60_000_000_000, 12_000_000_000)
    assert raw[1] < raw[0] and raw[6] < raw[5]  # the two wraps
    # Unwrapped: the true count, in J, exactly.
    assert [r["energy_j"] for r in out] == [
        (60_000_000_000 + k * 12_000_000_000) / 1e6 for k in range(12)
    ]
    assert out[0]["ts"] == at(0.25) and out[0]["utilization"] is None
    r = cl.account(
        power=from_rapl(log, zones="package-*,dram"),
        period=(at(0.25), at(660.25)),
        **fleet(pkg, dram),
    )
    d = {row["device_id"]: row for row in r.devices.to_dicts()}
    assert d[pkg]["energy_kwh"] == pytest.approx(11 * 12_000 / 3.6e6, rel=REL)  # 200 W x 660 s
    assert d[dram]["energy_kwh"] == pytest.approx(11 * 600 / 3.6e6, rel=REL)  # 10 W x 660 s
    assert (d[pkg]["counter_wraps"], d[pkg]["counter_resets"]) == (0, 0)
    assert d[pkg]["uncovered_s"] == 0


def test_rapl_range_from_the_option(tmp_path: Path) -> None:
    lines = rapl_log().splitlines()
    no_col = "timestamp,host,zone,name,energy_uj\n" + "".join(
        line.rsplit(",", 1)[0] + "\n" for line in lines[1:]
    )
    a = rows(from_rapl(write(tmp_path, rapl_log(), "a.csv")))
    b = rows(from_rapl(write(tmp_path, no_col, "b.csv"), max_energy_range_uj=RANGE))
    assert a == b


def test_rapl_without_a_range_a_drop_is_a_reset(tmp_path: Path) -> None:
    """Nothing says where the counter wraps: the drop passes through, and
    the engine leaves that interval uncovered as a reset."""
    log = write(tmp_path, rapl_log(with_range=False))
    pkg = "node01/intel-rapl:0"
    r = cl.account(
        power=from_rapl(log, zones="package-0"), period=(at(0.25), at(660.25)), **fleet(pkg)
    )
    d = r.devices.row(0, named=True)
    assert (d["counter_wraps"], d["counter_resets"]) == (0, 2)
    assert d["uncovered_s"] == pytest.approx(120, rel=REL)
    assert d["energy_kwh"] == pytest.approx(9 * 12_000 / 3.6e6, rel=REL)


def test_rapl_reboot_is_a_reset_not_a_wrap(tmp_path: Path) -> None:
    """30 kJ, then 5 J a second later (the host rebooted, or someone wrote 0
    to energy_uj): as a wrap that would be 35.5 kJ in 1 s, 35 kW - not a
    package. Passed through as a drop; the engine counts a reset."""
    log = write(
        tmp_path,
        HEADER
        + f"{T0},node01,intel-rapl:0,package-0,29000000000,{RANGE}\n"
        + f"{T0 + 5},node01,intel-rapl:0,package-0,30000000000,{RANGE}\n"
        + f"{T0 + 6},node01,intel-rapl:0,package-0,5000000,{RANGE}\n"
        + f"{T0 + 11},node01,intel-rapl:0,package-0,1005000000,{RANGE}\n",
    )
    out = rows(from_rapl(log))
    assert [r["energy_j"] for r in out] == [29000.0, 30000.0, 5.0, 1005.0]
    dev = "node01/intel-rapl:0"
    r = cl.account(power=from_rapl(log), period=(at(0), at(11)), **fleet(dev))
    d = r.devices.row(0, named=True)
    assert (d["counter_wraps"], d["counter_resets"]) == (0, 1)
    assert d["energy_kwh"] == pytest.approx(2000 / 3.6e6, rel=REL)
    # A lower bound on credible power turns the same drop into a reset too;
    # a higher one lets it pass as a wrap.
    wrapped = rows(from_rapl(log, max_power_w=100_000))
    assert wrapped[2]["energy_j"] == (5_000_000 + RANGE + 1) / 1e6


def test_rapl_zones_filter_and_device_ids(tmp_path: Path) -> None:
    log = write(tmp_path, rapl_log())
    ids = {r["device_id"] for r in rows(from_rapl(log))}
    assert ids == {
        "node01/intel-rapl:0",
        "node01/intel-rapl:0:0",
        "node01/intel-rapl:0:2",
        "node01/intel-rapl:1",
    }
    ids = {r["device_id"] for r in rows(from_rapl(log, zones=["psys"], device_id="{host}:{name}"))}
    assert ids == {"node01:psys"}
    ids = {r["device_id"] for r in rows(from_rapl(log, zones="intel-rapl:0*"))}
    assert ids == {"node01/intel-rapl:0", "node01/intel-rapl:0:0", "node01/intel-rapl:0:2"}


def test_rapl_host_from_option(tmp_path: Path) -> None:
    log = write(tmp_path, f"timestamp,zone,energy_uj\n{T0},intel-rapl:0,1000000\n")
    assert rows(from_rapl(log, host="node07"))[0]["device_id"] == "node07/intel-rapl:0"
    with pytest.raises(
        SchemaError,
        match=r"rapl\.csv:1: device_id template '\{host\}/\{zone\}' uses field 'host'.*--host",
    ):
        rows(from_rapl(log))
    assert rows(from_rapl(log, device_id="{zone}"))[0]["device_id"] == "intel-rapl:0"


@pytest.mark.parametrize(
    "stamp",
    [
        f"{T0}.5",
        "2026-12-02T13:03:05.5Z",
        "2026-12-02T14:03:05.500000+01:00",
        "2026-12-02T08:03:05.500000000-0500",
        '"2026-12-02T14:03:05,5+01:00"',  # GNU date -Ins: decimal comma, quoted
    ],
)
def test_timestamp_forms(tmp_path: Path, stamp: str) -> None:
    log = write(tmp_path, f"timestamp,host,zone,energy_uj\n{stamp},n1,intel-rapl:0,1\n")
    assert rows(from_rapl(log))[0]["ts"] == at(0.5)


def test_zoneless_timestamps_need_tz(tmp_path: Path) -> None:
    log = write(
        tmp_path, "timestamp,host,zone,energy_uj\n2026-12-02 14:03:05.5,n1,intel-rapl:0,1\n"
    )
    with pytest.raises(
        SchemaError,
        match=r"rapl\.csv:2: field 'timestamp': value '2026-12-02 14:03:05.5' has no time zone; "
        r"pass tz=",
    ):
        rows(from_rapl(log))
    assert rows(from_rapl(log, tz="Europe/Berlin"))[0]["ts"] == at(0.5)


def test_zoneless_fall_back_hour_in_a_counter_log(tmp_path: Path) -> None:
    local = ["01:50", "02:10", "02:50", "02:10", "02:50", "03:10"]
    body = "".join(f"2026-10-25T{t}:00,n1,intel-rapl:0,{i}\n" for i, t in enumerate(local))
    log = write(tmp_path, "timestamp,host,zone,energy_uj\n" + body)
    utc = [r["ts"].strftime("%H:%M") for r in rows(from_rapl(log, tz="Europe/Berlin"))]
    assert utc == ["23:50", "00:10", "00:50", "01:10", "01:50", "02:10"]


@pytest.mark.parametrize(
    ("line", "error", "message"),
    [
        (
            f"{T0}000,n1,intel-rapl:0,5",
            InputError,
            r"rapl\.csv:3: field 'timestamp': value '1796216585000' is too large for epoch seconds",
        ),
        (
            "yesterday,n1,intel-rapl:0,5",
            InputError,
            r"rapl\.csv:3: field 'timestamp': value 'yesterday' is not a timestamp",
        ),
        (
            f"{T0 + 1},n1,intel-rapl:0,5.5",
            InputError,
            r"rapl\.csv:3: column 'energy_uj': value '5.5' is not a whole number of microjoules",
        ),
        (
            f"{T0 + 1},n1,intel-rapl:0",
            InputError,
            r"rapl\.csv:3: row has 3 fields, the header has 4",
        ),
        (
            f"{T0 - 1},n1,intel-rapl:0,5",
            OrderError,
            r"rapl\.csv:3: device 'n1/intel-rapl:0': sample at 2026-12-02T13:03:04Z is earlier "
            r"than its previous sample at 2026-12-02T13:03:05Z \(.*rapl\.csv:2\)",
        ),
    ],
)
def test_rapl_errors(tmp_path: Path, line: str, error: type[Exception], message: str) -> None:
    log = write(tmp_path, f"timestamp,host,zone,energy_uj\n{T0},n1,intel-rapl:0,1\n{line}\n")
    with pytest.raises(error, match=message):
        rows(from_rapl(log))


def test_rapl_schema_and_option_errors(tmp_path: Path) -> None:
    log = write(tmp_path, f"time,host,zone,energy_uj\n{T0},n1,intel-rapl:0,1\n")
    with pytest.raises(
        SchemaError,
        match=r"rapl\.csv:1: header \(time,host,zone,energy_uj\) has no 'timestamp' column",
    ):
        rows(from_rapl(log))
    log = write(tmp_path, f"timestamp,host,zone,energy\n{T0},n1,intel-rapl:0,1\n")
    with pytest.raises(SchemaError, match=r"has no 'energy_uj' column; expected a RAPL log"):
        rows(from_rapl(log))
    log = write(tmp_path, f"{HEADER}{T0},n1,intel-rapl:0,package-0,{RANGE + 5},{RANGE}\n")
    with pytest.raises(
        InputError,
        match=rf"rapl\.csv:2: device 'n1/intel-rapl:0': energy_uj {RANGE + 5} is outside the "
        rf"counter's range 0..{RANGE}",
    ):
        rows(from_rapl(log))
    with pytest.raises(InputError, match=r"max_energy_range_uj=0: expected the positive value"):
        from_rapl(log, max_energy_range_uj=0)
    with pytest.raises(InputError, match=r"max_power_w=-1: expected a positive power"):
        from_rapl(log, max_power_w=-1)
    with pytest.raises(InputError, match=r"rapl: input file '.*missing\.csv' does not exist"):
        from_rapl(tmp_path / "missing.csv")


def test_rapl_unreadable_value_is_an_invalid_sample(tmp_path: Path) -> None:
    """An empty energy_uj (the collector's cat failed) is a NaN row; the
    unwrapping goes on from the last good value."""
    log = write(
        tmp_path,
        HEADER
        + f"{T0},n1,intel-rapl:0,package-0,{RANGE - 1_000_000},{RANGE}\n"
        + f"{T0 + 1},n1,intel-rapl:0,package-0,,{RANGE}\n"
        + f"{T0 + 2},n1,intel-rapl:0,package-0,199000000,{RANGE}\n",
    )
    out = rows(from_rapl(log))
    assert out[1]["energy_j"] != out[1]["energy_j"]
    assert out[2]["energy_j"] - out[0]["energy_j"] == pytest.approx(200.000001, rel=1e-12)


def test_rapl_repeated_header_and_gzip(tmp_path: Path) -> None:
    text = rapl_log()
    head, *body = text.splitlines(keepends=True)
    restarted = head + "".join(body[:9]) + head + "".join(body[9:])
    p = tmp_path / "rapl.csv.gz"
    with gzip.open(p, "wt", encoding="utf-8") as f:
        f.write(restarted)
    assert rows(from_rapl(p)) == rows(from_rapl(write(tmp_path, text)))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start=st.integers(min_value=0, max_value=RANGE),
    steps=st.lists(st.integers(min_value=0, max_value=RANGE), min_size=1, max_size=20),
    cuts=st.lists(st.integers(min_value=1, max_value=19), max_size=3, unique=True),
)
def test_unwrapping_recovers_the_true_count(
    tmp_path: Path, start: int, steps: list[int], cuts: list[int]
) -> None:
    """Whatever the increments (each below one range, 1000 s apart: under
    66 W), the unwrapped counter is the true count; and splitting the log
    into files (each with its header) changes nothing."""
    true = [start]
    for s in steps:
        true.append(true[-1] + s)
    lines = [
        f"{T0 + 1000 * k},n1,intel-rapl:0,package-0,{v % (RANGE + 1)},{RANGE}\n"
        for k, v in enumerate(true)
    ]
    whole = rows(from_rapl(write(tmp_path, HEADER + "".join(lines))))
    assert [r["energy_j"] for r in whole] == [v / 1e6 for v in true]
    bounds = [0, *sorted(c for c in cuts if c < len(lines)), len(lines)]
    parts = [
        write(tmp_path, HEADER + "".join(lines[a:b]), f"part{i}.csv")
        for i, (a, b) in enumerate(itertools.pairwise(bounds))
    ]
    assert rows(from_rapl(parts)) == whole


# --- NVML ---------------------------------------------------------------------

# A pynvml loop's log: the driver was reloaded between 13:03:07 and 13:03:08
# (the counter restarts near 0).
NVML_LOG = f"""\
timestamp,uuid,total_energy_mj,utilization_gpu
2026-12-02T13:03:05.000000+00:00,{GPU},48213377221,87
2026-12-02T13:03:06.000000+00:00,{GPU},48213677221,90
2026-12-02T13:03:07.000000+00:00,{GPU},48213977221,91
2026-12-02T13:03:08.000000+00:00,{GPU},50000,0
2026-12-02T13:03:09.000000+00:00,{GPU},350000,64
2026-12-02T13:03:10.000000+00:00,{GPU},650000,66
"""


def test_nvml_reset_passes_through_end_to_end(tmp_path: Path) -> None:
    """300 J a second; the interval across the reload is uncovered, so the
    device has 4 x 300 J and one counter reset."""
    log = write(tmp_path, NVML_LOG, "nvml.csv")
    out = rows(from_nvml(log))
    assert [r["energy_j"] for r in out] == [
        48213377.221,
        48213677.221,
        48213977.221,
        50.0,
        350.0,
        650.0,
    ]
    assert out[0]["utilization"] == pytest.approx(0.87)
    r = cl.account(power=from_nvml(log), period=(at(0), at(5)), **fleet(GPU))
    d = r.devices.row(0, named=True)
    assert (d["counter_resets"], d["counter_wraps"]) == (1, 0)
    assert d["uncovered_s"] == pytest.approx(1, rel=REL)
    assert d["energy_kwh"] == pytest.approx(1200 / 3.6e6, rel=REL)


def test_nvml_variants(tmp_path: Path) -> None:
    """``energy_mj`` column, epoch seconds, a host column in the id, an
    unreadable value ([N/A]: a NaN row), quoted fields."""
    log = write(
        tmp_path,
        "host,timestamp,index,uuid,energy_mj\n"
        f'node01,{T0},0,{GPU},"1000"\n'
        f"node01,{T0 + 1},0,{GPU},[N/A]\n"
        f"node01,{T0 + 2},0,{GPU},2000\n",
        "nvml.csv",
    )
    out = rows(from_nvml(log, device_id="{host}/gpu{index}"))
    assert [r["device_id"] for r in out] == ["node01/gpu0"] * 3
    assert out[0]["energy_j"] == 1.0 and out[2]["energy_j"] == 2.0
    assert out[1]["energy_j"] != out[1]["energy_j"]
    assert out[0]["utilization"] is None


def test_nvml_errors(tmp_path: Path) -> None:
    log = write(tmp_path, f"timestamp,uuid,power_w\n{T0},{GPU},300\n", "nvml.csv")
    with pytest.raises(
        SchemaError,
        match=r"nvml\.csv:1: header \(timestamp,uuid,power_w\) has no 'total_energy_mj' or "
        r"'energy_mj' column",
    ):
        rows(from_nvml(log))
    log = write(tmp_path, f"timestamp,uuid,total_energy_mj\n{T0},{GPU},lots\n", "nvml.csv")
    with pytest.raises(
        InputError, match=r"nvml\.csv:2: column 'total_energy_mj': value 'lots' is not a number"
    ):
        rows(from_nvml(log))
    log = write(tmp_path, f"timestamp,gpu,total_energy_mj\n{T0},0,1\n", "nvml.csv")
    with pytest.raises(
        SchemaError,
        match=r"uses field 'uuid', which the header \(timestamp,gpu,total_energy_mj\) does not "
        r"have",
    ):
        rows(from_nvml(log))
    log = write(tmp_path, 'timestamp,uuid,total_energy_mj\n"unterminated\n', "nvml.csv")
    with pytest.raises(InputError, match=r"nvml\.csv:2: row has 1 fields, the header has 3"):
        rows(from_nvml(log))


def test_formats_and_cli_arguments(tmp_path: Path) -> None:
    rapl, nvml = FORMATS
    assert (rapl.name, rapl.table, nvml.name, nvml.table) == ("rapl", "power", "nvml", "power")
    parser = argparse.ArgumentParser()
    rapl.add_arguments(parser)
    args = parser.parse_args(
        [str(write(tmp_path, rapl_log())), "--zones", "package-*", "--max-power-w", "5000"]
    )
    reader = rapl.open(args)
    assert isinstance(reader, pa.RecordBatchReader)
    assert {r["device_id"] for r in rows(reader)} == {"node01/intel-rapl:0"}
    parser = argparse.ArgumentParser()
    nvml.add_arguments(parser)
    args = parser.parse_args([str(write(tmp_path, NVML_LOG, "nvml.csv")), "--device-id", "{uuid}"])
    assert len(rows(nvml.open(args))) == 6
    # The samples shown in --help are logs these adapters read.
    got = from_rapl(write(tmp_path, rapl.sample, "s.csv")).read_all().column("energy_j")
    assert got[2].as_py() - got[0].as_py() == pytest.approx(172.000001, rel=1e-12)
    assert len(rows(from_nvml(write(tmp_path, nvml.sample, "n.csv")))) == 2
