"""``carbonledger.ingest.nvidia_smi``: nvidia-smi CSV logs to power_w samples.

The inputs below are written the way ``nvidia-smi --query-gpu=... --format=csv
-l 1`` writes them (``nvidia-smi --help-query-gpu``; header fields keep their
``[unit]`` also with ``nounits``; values ``312.45 W`` / ``87 %``; ``[N/A]``
and other bracketed words for unreadable values; timestamp
``YYYY/MM/DD HH:MM:SS.msec`` in the host's local time, no zone).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import itertools
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import carbonledger as cl
from carbonledger.exceptions import InputError, OrderError, SchemaError
from carbonledger.ingest import write_power
from carbonledger.ingest.nvidia_smi import FORMATS, from_nvidia_smi

UTC = dt.UTC
TS = pa.timestamp("ns", tz="UTC")
REL = 1e-9
A = "GPU-5e3b9c1a-8f0e-4b4d-a1c2-7d9e0f1a2b3c"
B = "GPU-0c4f6a2e-1b3d-4e5f-8a9b-0c1d2e3f4a5b"

# Two H100s on a host in Berlin (CET, UTC+1 in December), -l 1. Timestamps
# as nvidia-smi writes them: one query per loop, all GPUs the same stamp.
LOG = f"""\
timestamp, uuid, power.draw [W], utilization.gpu [%]
2026/12/02 14:03:05.123, {A}, 100.00 W, 40 %
2026/12/02 14:03:05.123, {B}, 50.00 W, 0 %
2026/12/02 14:03:06.123, {A}, 300.00 W, 100 %
2026/12/02 14:03:06.123, {B}, [N/A], [N/A]
2026/12/02 14:03:07.123, {A}, 300.00 W, 100 %
2026/12/02 14:03:07.123, {B}, 70.00 W, 3 %
2026/12/02 14:03:08.123, {A}, 200.00 W, 87 %
2026/12/02 14:03:08.123, {B}, 90.00 W, 5 %
"""
# The same query with --format=csv,nounits: the header keeps its units.
LOG_NOUNITS = f"""\
timestamp, uuid, power.draw [W], utilization.gpu [%]
2026/12/02 14:03:05.123, {A}, 100.00, 40
2026/12/02 14:03:05.123, {B}, 50.00, 0
2026/12/02 14:03:06.123, {A}, 300.00, 100
2026/12/02 14:03:06.123, {B}, [N/A], [N/A]
2026/12/02 14:03:07.123, {A}, 300.00, 100
2026/12/02 14:03:07.123, {B}, 70.00, 3
2026/12/02 14:03:08.123, {A}, 200.00, 87
2026/12/02 14:03:08.123, {B}, 90.00, 5
"""
T0 = dt.datetime(2026, 12, 2, 13, 3, 5, 123000, tzinfo=UTC)  # 14:03:05.123 CET


def write(tmp: Path, text: str, name: str = "gpu.csv") -> Path:
    p = tmp / name
    p.write_text(text, encoding="utf-8")
    return p


def rows(reader: pa.RecordBatchReader) -> list[dict[str, Any]]:
    return reader.read_all().to_pylist()  # type: ignore[no-any-return]


def same(a: pa.Table, b: pa.Table) -> bool:
    """Equal tables, NaN equal to NaN (``Table.equals`` says NaN != NaN)."""

    def canon(t: pa.Table) -> list[dict[str, Any]]:
        return [
            {k: ("nan" if isinstance(v, float) and v != v else v) for k, v in r.items()}
            for r in t.to_pylist()
        ]

    return a.schema == b.schema and canon(a) == canon(b)


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


def test_end_to_end_energy(tmp_path: Path) -> None:
    """A: trapezoids (100+300)/2 + 300 + (300+200)/2 = 750 J. B: the [N/A]
    sample is an invalid row, dropped, so [0 s, 2 s) is interpolated from 50
    to 70 W (120 J), then (70+90)/2 = 80 J: 200 J."""
    log = write(tmp_path, LOG)
    alloc = pa.table(
        {
            "job_id": ["train-1"],
            "device_id": [A],
            "start": pa.array([T0 + dt.timedelta(seconds=1)], TS),
            "end": pa.array([T0 + dt.timedelta(seconds=3)], TS),
            "share": [1.0],
        }
    )
    r = cl.account(
        power=from_nvidia_smi(log, tz="Europe/Berlin"),
        allocations=alloc,
        period=(T0, T0 + dt.timedelta(seconds=3)),
        **fleet(A, B),
    )
    d = {row["device_id"]: row for row in r.devices.to_dicts()}
    assert d[A]["energy_kwh"] == pytest.approx(750 / 3.6e6, rel=REL)
    assert d[B]["energy_kwh"] == pytest.approx(200 / 3.6e6, rel=REL)
    assert (d[A]["samples"], d[A]["invalid_samples"]) == (4, 0)
    assert (d[B]["samples"], d[B]["invalid_samples"]) == (4, 1)
    # The job holds A over [1 s, 3 s): 300 + 250 J; 400 g/kWh, PUE 1.
    job = r.allocations.row(0, named=True)
    assert job["energy_kwh"] == pytest.approx(550 / 3.6e6, rel=REL)
    assert job["operational_kgco2e"] == pytest.approx(550 / 3.6e6 * 0.4, rel=REL)


def test_rows_units_and_zone(tmp_path: Path) -> None:
    out = rows(from_nvidia_smi(write(tmp_path, LOG), tz="Europe/Berlin"))
    assert [(r["device_id"], r["ts"]) for r in out[:2]] == [(A, T0), (B, T0)]
    assert out[0]["power_w"] == 100.0 and out[0]["utilization"] == pytest.approx(0.40)
    assert out[2]["utilization"] == 1.0
    assert out[3]["power_w"] != out[3]["power_w"]  # NaN: [N/A]
    assert out[3]["utilization"] is None
    assert out[7]["power_w"] == 90.0 and out[7]["utilization"] == pytest.approx(0.05)


def test_nounits_gives_the_same_rows(tmp_path: Path) -> None:
    a = from_nvidia_smi(write(tmp_path, LOG, "a.csv"), tz="Europe/Berlin").read_all()
    b = from_nvidia_smi(write(tmp_path, LOG_NOUNITS, "b.csv"), tz="Europe/Berlin").read_all()
    assert same(a, b)


def test_gzip_log(tmp_path: Path) -> None:
    p = tmp_path / "gpu.csv.gz"
    with gzip.open(p, "wt", encoding="utf-8") as f:
        f.write(LOG)
    plain = from_nvidia_smi(write(tmp_path, LOG), tz="Europe/Berlin").read_all()
    assert same(from_nvidia_smi(p, tz="Europe/Berlin").read_all(), plain)


def test_unreadable_values_are_nan_rows(tmp_path: Path) -> None:
    log = write(
        tmp_path,
        f"""\
timestamp, uuid, power.draw [W], utilization.gpu [%]
2026/12/02 14:03:05.123, {A}, [Not Supported], [Not Supported]
2026/12/02 14:03:06.123, {A}, [Unknown Error], [Unknown Error]
2026/12/02 14:03:07.123, {A}, [GPU is lost], [GPU is lost]
2026/12/02 14:03:07.123, [GPU is lost], [GPU is lost], [GPU is lost]
2026/12/02 14:03:08.123, {A}, 250.00 W, 12 %
""",
    )
    out = rows(from_nvidia_smi(log, tz="UTC"))
    # The lost GPU whose uuid could not be read names no device: skipped.
    assert [r["device_id"] for r in out] == [A] * 4
    assert all(r["power_w"] != r["power_w"] for r in out[:3])
    assert [r["utilization"] for r in out] == [None, None, None, pytest.approx(0.12)]
    r = cl.account(
        power=from_nvidia_smi(log, tz="UTC"),
        period=(
            dt.datetime(2026, 12, 2, 14, 3, 5, tzinfo=UTC),
            dt.datetime(2026, 12, 2, 14, 4, tzinfo=UTC),
        ),
        **fleet(A),
    )
    assert r.devices.row(0, named=True)["invalid_samples"] == 3


def test_repeated_header_after_logger_restart(tmp_path: Path) -> None:
    """``nvidia-smi ... >> gpu.csv`` restarted with a longer query: the new
    header is read and the rows after it follow it."""
    log = write(
        tmp_path,
        f"""\
timestamp, uuid, power.draw [W], utilization.gpu [%]
2026/12/02 14:03:05.123, {A}, 100.00 W, 40 %
timestamp, index, name, uuid, pci.bus_id, utilization.gpu [%], power.draw [W]
2026/12/02 14:05:00.017, 0, NVIDIA H100 80GB HBM3, {A}, 00000000:19:00.0, 87 %, 312.45 W
""",
    )
    out = rows(from_nvidia_smi(log, tz="UTC"))
    assert [(r["power_w"], r["utilization"]) for r in out] == [(100.0, 0.4), (312.45, 0.87)]


def test_tz_is_required(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"gpu\.csv.*no time zone.*tz='Area/City'.*--tz"):
        from_nvidia_smi(write(tmp_path, LOG))
    with pytest.raises(InputError, match=r"tz='Mars/Olympus' is not a time zone name"):
        from_nvidia_smi(write(tmp_path, LOG), tz="Mars/Olympus")


def smi_log(local_times: list[str]) -> str:
    body = "".join(f"2026/{t}, {A}, 100.00 W, 10 %\n" for t in local_times)
    return "timestamp, uuid, power.draw [W], utilization.gpu [%]\n" + body


def test_dst_fall_back_hour_resolved_by_row_order(tmp_path: Path) -> None:
    """Europe/Berlin 2026-10-25: 02:00-02:59 local happens twice (CEST, then
    CET). A log every 15 minutes reads 02:00..02:45 twice; the clock jumping
    back marks the second pass, so UTC time moves on in 15-minute steps."""
    local = [
        "10/25 01:30:00.000",
        "10/25 01:45:00.000",
        "10/25 02:00:00.000",  # first pass, CEST
        "10/25 02:15:00.000",
        "10/25 02:30:00.000",
        "10/25 02:45:00.000",
        "10/25 02:00:00.000",  # the clock went back: CET
        "10/25 02:15:00.000",
        "10/25 02:30:00.000",
        "10/25 02:45:00.000",
        "10/25 03:00:00.000",
        "10/25 03:15:00.000",
    ]
    out = rows(from_nvidia_smi(write(tmp_path, smi_log(local)), tz="Europe/Berlin"))
    start = dt.datetime(2026, 10, 24, 23, 30, tzinfo=UTC)
    assert [r["ts"] for r in out] == [start + dt.timedelta(minutes=15 * i) for i in range(12)]


def test_dst_second_pass_carries_into_the_next_file(tmp_path: Path) -> None:
    """A log rotated inside the repeated hour: the next file goes on with
    the second pass (files are given in time order)."""
    first = smi_log(["10/25 02:30:00.000", "10/25 02:50:00.000", "10/25 02:10:00.000"])
    second = smi_log(["10/25 02:30:00.000", "10/25 03:10:00.000"])
    out = rows(
        from_nvidia_smi(
            [write(tmp_path, first, "a.csv"), write(tmp_path, second, "b.csv")],
            tz="Europe/Berlin",
        )
    )
    utc = [r["ts"].strftime("%H:%M") for r in out]
    assert utc == ["00:30", "00:50", "01:10", "01:30", "02:10"]


def test_dst_nonexistent_time_is_an_error(tmp_path: Path) -> None:
    log = write(tmp_path, smi_log(["03/29 01:59:00.000", "03/29 02:30:00.000"]))
    with pytest.raises(
        InputError,
        match=r"gpu\.csv:3: timestamp '2026/03/29 02:30:00.000' does not exist in "
        r"Europe/Berlin.*check tz=",
    ):
        rows(from_nvidia_smi(log, tz="Europe/Berlin"))


def test_device_id_template_and_host(tmp_path: Path) -> None:
    log = write(
        tmp_path,
        f"""\
timestamp, index, uuid, pci.bus_id, power.draw [W]
2026/12/02 14:03:05.123, 0, {A}, 00000000:19:00.0, 100.00 W
2026/12/02 14:03:05.123, 1, {B}, 00000000:3B:00.0, 50.00 W
""",
    )
    ids = [
        r["device_id"]
        for r in rows(from_nvidia_smi(log, tz="UTC", host="node01", device_id="{host}/{uuid}"))
    ]
    assert ids == [f"node01/{A}", f"node01/{B}"]
    ids = [
        r["device_id"]
        for r in rows(from_nvidia_smi(log, tz="UTC", device_id="gpu{index}@{pci.bus_id}"))
    ]
    assert ids == ["gpu0@00000000:19:00.0", "gpu1@00000000:3B:00.0"]
    with pytest.raises(
        SchemaError,
        match=r"gpu\.csv:1: device_id template '\{host\}/\{uuid\}' uses field 'host'.*--host",
    ):
        rows(from_nvidia_smi(log, tz="UTC", device_id="{host}/{uuid}"))
    with pytest.raises(
        SchemaError, match=r"uses field 'serial', which the header \(timestamp, index"
    ):
        rows(from_nvidia_smi(log, tz="UTC", device_id="{serial}"))
    with pytest.raises(InputError, match=r"device_id='\{uuid': unbalanced or empty brace"):
        from_nvidia_smi(log, tz="UTC", device_id="{uuid")


POWER_LOG = f"""\
timestamp, uuid, power.draw [W], power.draw.average [W], power.draw.instant [W]
2026/12/02 14:03:05.123, {A}, 301.00 W, 300.00 W, 350.00 W
2026/12/02 14:03:06.123, {A}, 299.00 W, [N/A], 250.00 W
2026/12/02 14:03:07.123, {A}, [N/A], [N/A], 275.00 W
"""


def test_power_field_rule(tmp_path: Path) -> None:
    """``auto``: per row, the first readable of power.draw.average,
    power.draw, power.draw.instant; a named field is read alone."""
    log = write(tmp_path, POWER_LOG)
    assert [r["power_w"] for r in rows(from_nvidia_smi(log, tz="UTC"))] == [300.0, 299.0, 275.0]
    inst = rows(from_nvidia_smi(log, tz="UTC", power_field="power.draw.instant"))
    assert [r["power_w"] for r in inst] == [350.0, 250.0, 275.0]
    draw = [r["power_w"] for r in rows(from_nvidia_smi(log, tz="UTC", power_field="power.draw"))]
    assert draw[:2] == [301.0, 299.0] and draw[2] != draw[2]
    only_draw = write(tmp_path, LOG, "draw.csv")
    with pytest.raises(
        SchemaError, match=r"has no power field 'power.draw.instant'.*--power-field"
    ):
        rows(from_nvidia_smi(only_draw, tz="UTC", power_field="power.draw.instant"))
    with pytest.raises(InputError, match=r"power_field='power': expected 'auto' or one of"):
        from_nvidia_smi(log, tz="UTC", power_field="power")  # type: ignore[arg-type]


def test_rows_going_back_for_one_gpu_is_an_order_error(tmp_path: Path) -> None:
    log = write(
        tmp_path,
        f"""\
timestamp, uuid, power.draw [W]
2026/12/02 14:03:06.123, {A}, 100.00 W
2026/12/02 14:03:06.123, {B}, 100.00 W
2026/12/02 14:03:05.123, {A}, 100.00 W
""",
    )
    with pytest.raises(
        OrderError,
        match=rf"gpu\.csv:4: device '{A}': sample at 2026-12-02T14:03:05.123000Z is earlier than "
        r"its previous sample .*gpu\.csv:2\)",
    ):
        rows(from_nvidia_smi(log, tz="UTC"))


def test_files_out_of_order_are_an_order_error(tmp_path: Path) -> None:
    a = write(tmp_path, LOG, "day1.csv")
    with pytest.raises(OrderError, match=r"day1\.csv:2: device .* pass the files in time order"):
        rows(from_nvidia_smi([a, a], tz="Europe/Berlin"))


def test_noheader_needs_columns(tmp_path: Path) -> None:
    body = "".join(line + "\n" for line in LOG.splitlines()[1:])
    log = write(tmp_path, body)
    with pytest.raises(SchemaError, match=r"gpu\.csv:1: no header line.*noheader.*--columns"):
        rows(from_nvidia_smi(log, tz="Europe/Berlin"))
    got = from_nvidia_smi(
        log, tz="Europe/Berlin", columns="timestamp,uuid,power.draw,utilization.gpu"
    ).read_all()
    assert same(got, from_nvidia_smi(write(tmp_path, LOG, "h.csv"), tz="Europe/Berlin").read_all())
    with pytest.raises(InputError, match=r"columns='timestamp; uuid'"):
        from_nvidia_smi(log, tz="UTC", columns="timestamp; uuid")


def test_missing_timestamp_field(tmp_path: Path) -> None:
    log = write(tmp_path, f"uuid, power.draw [W]\n{A}, 100.00 W\n")
    with pytest.raises(
        SchemaError, match=r"gpu\.csv:1: header \(uuid, power.draw \[W\]\) has no 'timestamp'"
    ):
        rows(from_nvidia_smi(log, tz="UTC"))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"2026/12/02 14:03:06.123, {A}", r"gpu\.csv:3: row has 2 fields, the header has 3"),
        (
            f"02.12.2026 14:03:06, {A}, 100 W",
            r"gpu\.csv:3: field 'timestamp': value '02.12.2026 14:03:06' is not a timestamp",
        ),
        (
            f"2026/02/30 14:03:06.123, {A}, 100 W",
            r"value '2026/02/30 14:03:06.123' is not a timestamp",
        ),
        (
            f"2026/12/02 14:03:06.123, {A}, 100 mW",
            r"field 'power.draw': value '100 mW' is not a number in W",
        ),
        (
            f"2026/12/02 14:03:06.123, {A}, lots W",
            r"field 'power.draw': value 'lots W' is not a number in W",
        ),
    ],
)
def test_malformed_rows(tmp_path: Path, line: str, message: str) -> None:
    log = write(
        tmp_path, f"timestamp, uuid, power.draw [W]\n2026/12/02 14:03:05.123, {A}, 1 W\n{line}\n"
    )
    with pytest.raises(InputError, match=message):
        rows(from_nvidia_smi(log, tz="UTC"))


def test_truncated_last_line_and_driver_messages_are_skipped(tmp_path: Path) -> None:
    """A log copied while nvidia-smi was writing ends mid-row; a log written
    with 2>&1 holds nvidia-smi's messages about a GPU it cannot reach."""
    log = write(
        tmp_path,
        f"""\
timestamp, uuid, power.draw [W]
2026/12/02 14:03:05.123, {A}, 100.00 W
Unable to determine the device handle for GPU0000:3B:00.0: Unknown Error
2026/12/02 14:03:06.123, {A}, 120.00 W
2026/12/02 14:03:07.123, {A}, 1""",
    )
    assert [r["power_w"] for r in rows(from_nvidia_smi(log, tz="UTC"))] == [100.0, 120.0]


def test_lms_logging_and_crlf(tmp_path: Path) -> None:
    """``-lms 100``: ten rows a second; a log moved through Windows has CRLF."""
    lines = ["timestamp, uuid, power.draw [W]"] + [
        f"2026/12/02 14:03:05.{ms:03d}, {A}, {100 + ms / 10:.2f} W" for ms in range(0, 1000, 100)
    ]
    log = tmp_path / "lms.csv"
    log.write_bytes("\r\n".join(lines).encode() + b"\r\n")
    out = rows(from_nvidia_smi(log, tz="UTC"))
    assert len(out) == 10
    assert out[9]["ts"] - out[0]["ts"] == dt.timedelta(milliseconds=900)
    assert out[9]["power_w"] == 190.0


def test_input_paths_are_checked(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nvidia-smi: input file '.*nope\.csv' does not exist"):
        from_nvidia_smi(tmp_path / "nope.csv", tz="UTC")
    with pytest.raises(InputError, match=r"nvidia-smi: no input files given"):
        from_nvidia_smi([], tz="UTC")


def test_reader_is_lazy(tmp_path: Path) -> None:
    """Nothing is read before the first batch is asked for: a malformed row
    surfaces on reading, the call itself only checks its arguments."""
    log = write(tmp_path, "timestamp, uuid, power.draw [W]\nnot a row\n")
    reader = from_nvidia_smi(log, tz="UTC")
    with pytest.raises(InputError):
        reader.read_all()


def test_format_and_cli_arguments(tmp_path: Path) -> None:
    (fmt,) = FORMATS
    assert (fmt.name, fmt.table) == ("nvidia-smi", "power")
    assert fmt.sample.startswith("timestamp, uuid, power.draw [W]")
    parser = argparse.ArgumentParser()
    fmt.add_arguments(parser)
    log = write(tmp_path, LOG)
    args = parser.parse_args(
        [str(log), "--tz", "Europe/Berlin", "--device-id", "{host}/{uuid}", "--host", "node01"]
    )
    reader = fmt.open(args)
    assert isinstance(reader, pa.RecordBatchReader)
    summary = write_power(reader, tmp_path / "out")
    assert (summary.rows, summary.devices) == (8, 2)
    got = pq.read_table(tmp_path / "out" / "power" / "day=2026-12-02" / "part-0.parquet")
    assert got.column("device_id")[0].as_py() == f"node01/{A}"
    # The sample in --help is a log this adapter reads.
    sample = write(tmp_path, fmt.sample, "sample.csv")
    assert len(rows(from_nvidia_smi(sample, tz="UTC"))) == 3


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cuts=st.lists(st.integers(min_value=1, max_value=7), max_size=4, unique=True))
def test_splitting_the_log_into_files_gives_the_same_rows(tmp_path: Path, cuts: list[int]) -> None:
    """Rotated logs (each part with its own header, as a restarted logger
    writes it) read as the one log."""
    header, *body = LOG.splitlines(keepends=True)
    bounds = [0, *sorted(cuts), len(body)]
    parts = []
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        parts.append(write(tmp_path, header + "".join(body[a:b]), f"part{len(cuts)}-{i}.csv"))
    whole = from_nvidia_smi(write(tmp_path, LOG), tz="Europe/Berlin").read_all()
    assert same(from_nvidia_smi(parts, tz="Europe/Berlin").read_all(), whole)
