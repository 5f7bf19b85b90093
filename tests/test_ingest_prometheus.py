"""The Prometheus adapters for dcgm-exporter metrics (prometheus-json,
prometheus-text).

Inputs are written as the tools write them:
- JSON as Prometheus' HTTP API writes it (docs/querying/api.md; labels
  sorted by name as encoding/json writes a map; timestamps as Unix seconds
  with millisecond decimals, util/jsonutil/marshal.go MarshalTimestamp;
  values as strings, "NaN" / "+Inf" included);
- scrapes as dcgm-exporter's template writes them
  (internal/pkg/rendermetrics/render_metrics.go: gpu, UUID, pci_bus_id,
  device, modelName, Hostname, then label fields such as
  DCGM_FI_DRIVER_VERSION; doubles with "%f", integers with "%d"), names and
  units from etc/default-counters.csv.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import gzip
import itertools
import json
import math
import tempfile
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import pyarrow as pa
import pytest
from conftest import (
    T0,
    allocations_table,
    at,
    devices_table,
    intensity_table,
    sites_table,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import carbonledger as cl
from carbonledger.exceptions import InputError, SchemaError
from carbonledger.ingest import prometheus as prom
from carbonledger.ingest.prometheus import (
    FORMATS,
    PrometheusIngestWarning,
    from_prometheus_json,
    from_prometheus_text,
)

REL = 1e-9
EPOCH = int(T0.timestamp())  # 1735689600 = 2025-01-01T00:00:00Z
UUID_A = "GPU-8d5053b3-9280-7d1a-751b-4fd2fdd547c5"
UUID_B = "GPU-a9079f15-493e-6c1c-c78c-73ec2b840cba"
A = f"node01/{UUID_A}"
B = f"node02/{UUID_B}"


# ------------------------------------------------------------------ helpers


def prom_ts(ms: int) -> str:
    """A timestamp as Prometheus' MarshalTimestamp writes it."""
    s, frac = divmod(ms, 1000)
    return f"{s}" if frac == 0 else f"{s}.{frac:03d}"


def labels(
    name: str, host: str, uuid: str, gpu: str = "0", driver: str = "535.129.03", **extra: str
) -> dict[str, str]:
    out = {
        "DCGM_FI_DRIVER_VERSION": driver,
        "Hostname": host,
        "UUID": uuid,
        "__name__": name,
        "device": f"nvidia{gpu}",
        "gpu": gpu,
        "instance": f"{host}:9400",
        "job": "dcgm-exporter",
        "modelName": "NVIDIA H100 80GB HBM3",
        "pci_bus_id": "00000000:18:00.0",
    }
    out.update(extra)
    return out


def series(metric: dict[str, str], samples: Sequence[tuple[float, str]]) -> str:
    """One matrix series; samples as (seconds after T0, value string)."""
    vals = ",".join(f'[{prom_ts(EPOCH * 1000 + round(s * 1000))},"{v}"]' for s, v in samples)
    m = json.dumps(metric, separators=(",", ":"), sort_keys=True)
    return f'{{"metric":{m},"values":[{vals}]}}'


def response(*parts: str, result_type: str = "matrix") -> str:
    return (
        f'{{"status":"success","data":{{"resultType":"{result_type}","result":['
        + ",".join(parts)
        + "]}}"
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def rows(reader: pa.RecordBatchReader) -> list[tuple[Any, ...]]:
    """Rows as (device_id, seconds after T0, value, utilization); NaN as 'nan'."""
    t = reader.read_all()
    col = t.schema.field(2).name
    out = []
    for r in t.to_pylist():
        v = r[col]
        secs = (r["ts"] - T0).total_seconds()
        out.append((r["device_id"], secs, "nan" if v != v else v, r["utilization"]))
    return out


def fleet(ids: list[str], **over: Any) -> dict[str, Any]:
    n = len(ids)
    return {
        "devices": devices_table(
            device_id=ids,
            site_id=["s1"] * n,
            embodied_kgco2e=[0.0] * n,
            installed_at=pa.array(
                [dt.datetime(2024, 1, 1, tzinfo=dt.UTC)] * n, pa.timestamp("ns", tz="UTC")
            ),
            lifetime_years=[4.0] * n,
        ),
        "sites": sites_table(),
        "intensity": intensity_table([(0, 3600, 400)]),
        **over,
    }


def device_row(result: Any, device: str) -> dict[str, Any]:
    for r in result.devices.to_dicts():
        if r["device_id"] == device:
            return dict(r)
    raise AssertionError(device)


# ----------------------------------------------------------- JSON end to end


def json_pages(tmp: Path) -> list[Path]:
    """Two query_range pages of DCGM_FI_DEV_POWER_USAGE and
    DCGM_FI_DEV_GPU_UTIL (one query `{__name__=~"...|..."}` per page), the
    second repeating the first one's last timestamp, as consecutive
    start/end windows do."""
    util_a = labels("DCGM_FI_DEV_GPU_UTIL", "node01", UUID_A)
    pow_a = labels("DCGM_FI_DEV_POWER_USAGE", "node01", UUID_A)
    pow_b = labels("DCGM_FI_DEV_POWER_USAGE", "node02", UUID_B, gpu="3")
    page1 = response(
        series(util_a, [(0, "40"), (15, "60"), (30, "80")]),
        series(pow_a, [(0, "100.25"), (15, "200.5"), (30, "300")]),
        series(pow_b, [(0, "250"), (15, "250"), (30, "250")]),
    )
    page2 = response(
        series(util_a, [(30, "80"), (45, "20")]),
        series(pow_a, [(30, "300"), (45, "100.25")]),
        series(pow_b, [(30, "250"), (45, "250")]),
    )
    return [write(tmp / "page-0001.json", page1), write(tmp / "page-0002.json", page2)]


def test_json_end_to_end(tmp_path: Path) -> None:
    files = json_pages(tmp_path / "dump")
    got = rows(from_prometheus_json(tmp_path / "dump"))
    # Sorted by (ts, device_id); the page boundary (30 s) read once.
    assert got == [
        (A, 0, 100.25, 0.4),
        (B, 0, 250.0, None),
        (A, 15, 200.5, 0.6),
        (B, 15, 250.0, None),
        (A, 30, 300.0, 0.8),
        (B, 30, 250.0, None),
        (A, 45, 100.25, 0.2),
        (B, 45, 250.0, None),
    ]
    r = cl.account(
        power=from_prometheus_json(files),
        allocations=allocations_table([("train-1", A, 0, 45, 1.0)]),
        period=(at(0), at(45)),
        **fleet([A, B]),
    )
    # Trapezoids: (100.25+200.5)/2*15 + (200.5+300)/2*15 + (300+100.25)/2*15.
    e_a = 2255.625 + 3753.75 + 3001.875
    job = r.allocations.row(0, named=True)
    assert job["energy_kwh"] == pytest.approx(e_a / 3.6e6, rel=REL)
    assert job["operational_kgco2e"] == pytest.approx(e_a * 1.5 * 400 / 3.6e9, rel=REL)
    b = next(u for u in r.unallocated.to_dicts() if u["device_id"] == B)
    assert b["energy_kwh"] == pytest.approx(250 * 45 / 3.6e6, rel=REL)
    a = device_row(r, A)
    assert (a["samples"], a["duplicate_samples"], a["invalid_samples"]) == (4, 0, 0)


def test_json_energy_counter_with_reset(tmp_path: Path) -> None:
    """DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION is mJ since boot (a counter); a
    driver reload restarts it: passed through, the engine counts a reset."""
    m = labels("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "node01", UUID_A)
    f = write(
        tmp_path / "energy.json",
        response(
            series(m, [(0, "1000000000"), (15, "1003000000"), (30, "500000"), (45, "2000000")])
        ),
    )
    got = rows(from_prometheus_json(f, value="energy"))
    assert [g[2] for g in got] == [1_000_000.0, 1_003_000.0, 500.0, 2_000.0]
    r = cl.account(
        power=from_prometheus_json(f, value="energy", utilization=None),
        allocations=allocations_table([("j", A, 0, 45, 1.0)]),
        period=(at(0), at(45)),
        **fleet([A]),
    )
    d = device_row(r, A)
    assert d["counter_resets"] == 1
    assert d["energy_kwh"] == pytest.approx((3000 + 1500) / 3.6e6, rel=REL)
    assert d["uncovered_s"] == pytest.approx(15, rel=REL)


def test_json_nan_inf_and_dcgm_blanks_are_invalid_samples(tmp_path: Path) -> None:
    """ "NaN" / "+Inf" values and DCGM's blank value (2**47 for a double,
    printed by dcgm-exporter before 4.5.2-4.8.1) stay as NaN/inf rows, so
    the engine drops and counts them; a blank utilization is null."""
    pw = labels("DCGM_FI_DEV_POWER_USAGE", "node01", UUID_A)
    ut = labels("DCGM_FI_DEV_GPU_UTIL", "node01", UUID_A)
    f = write(
        tmp_path / "p.json",
        response(
            series(ut, [(0, "50"), (15, "9223372036854775808"), (30, "NaN")]),
            series(
                pw,
                [(0, "200"), (15, "140737488355328"), (30, "NaN"), (45, "+Inf"), (60, "200")],
            ),
        ),
    )
    got = rows(from_prometheus_json(f))
    assert [(g[1], g[2], g[3]) for g in got] == [
        (0, 200.0, 0.5),
        (15, "nan", None),
        (30, "nan", None),
        (45, math.inf, None),
        (60, 200.0, None),
    ]
    r = cl.account(power=from_prometheus_json(f), period=(at(0), at(60)), **fleet([A]))
    d = device_row(r, A)
    assert (d["samples"], d["invalid_samples"]) == (5, 3)
    assert d["energy_kwh"] == pytest.approx(200 * 60 / 3.6e6, rel=REL)


def test_json_label_change_mid_dump_keeps_the_device(tmp_path: Path) -> None:
    """A driver upgrade changes DCGM_FI_DRIVER_VERSION: a new series, the
    same device id; the two merge in time order. Prometheus' lookback can
    give both at the switch: a different value is kept (the engine averages
    the duplicate)."""
    old = labels("DCGM_FI_DEV_POWER_USAGE", "node01", UUID_A, driver="535.129.03")
    new = labels("DCGM_FI_DEV_POWER_USAGE", "node01", UUID_A, driver="550.54.15")
    f = write(
        tmp_path / "p.json",
        response(
            series(new, [(30, "300"), (45, "300")]),
            series(old, [(0, "100"), (15, "100"), (30, "200")]),
        ),
    )
    got = rows(from_prometheus_json(f, utilization=None))
    assert [(g[0], g[1], g[2]) for g in got] == [
        (A, 0, 100.0),
        (A, 15, 100.0),
        (A, 30, 300.0),
        (A, 30, 200.0),
        (A, 45, 300.0),
    ]
    r = cl.account(power=from_prometheus_json(f), period=(at(0), at(45)), **fleet([A]))
    d = device_row(r, A)
    assert d["duplicate_samples"] == 1
    # 100 W for 15 s, 100 -> 250 (the mean at 30 s), then 250 -> 300.
    e = 1500 + (100 + 250) / 2 * 15 + (250 + 300) / 2 * 15
    assert d["energy_kwh"] == pytest.approx(e / 3.6e6, rel=REL)


def test_json_conflicting_value_of_one_series_is_kept(tmp_path: Path) -> None:
    m = labels("DCGM_FI_DEV_POWER_USAGE", "node01", UUID_A)
    p1 = write(tmp_path / "1.json", response(series(m, [(0, "100"), (15, "200")])))
    p2 = write(tmp_path / "2.json", response(series(m, [(15, "400"), (30, "200")])))
    got = rows(from_prometheus_json([p1, p2]))
    assert [(g[1], g[2]) for g in got] == [(0, 100.0), (15, 200.0), (15, 400.0), (30, 200.0)]


def test_json_pages_out_of_order_are_sorted(tmp_path: Path) -> None:
    files = json_pages(tmp_path)
    forward = rows(from_prometheus_json(files))
    assert rows(from_prometheus_json(files[::-1])) == forward


def test_json_host_renamed_warns(tmp_path: Path) -> None:
    """Same UUID under a new Hostname (older exporters in Kubernetes use the
    pod name): a new device id with the default template, and a warning;
    device_id='{UUID}' keeps one id."""
    before = labels("DCGM_FI_DEV_POWER_USAGE", "dcgm-exporter-7xk2p", UUID_A)
    after = labels("DCGM_FI_DEV_POWER_USAGE", "dcgm-exporter-q9z4m", UUID_A)
    p1 = write(tmp_path / "1.json", response(series(before, [(0, "100"), (15, "100")])))
    p2 = write(tmp_path / "2.json", response(series(after, [(30, "100"), (45, "100")])))
    with pytest.warns(PrometheusIngestWarning) as w:
        got = rows(from_prometheus_json([p2, p1]))
    msg = str(w[0].message)
    assert "changed device id" in msg
    assert msg.index(f"'dcgm-exporter-7xk2p/{UUID_A}'") < msg.index(
        f"'dcgm-exporter-q9z4m/{UUID_A}'"
    )
    assert UUID_A in msg and "{UUID}" in msg
    assert len({g[0] for g in got}) == 2
    got = rows(from_prometheus_json([p1, p2], device_id="{UUID}"))
    assert {g[0] for g in got} == {UUID_A}


def test_json_mig_instances_are_one_device(tmp_path: Path) -> None:
    """With MIG, dcgm-exporter repeats device-level power for each GPU
    instance (same UUID, GPU_I_ID differs; values read a moment apart). The
    default template makes them one device: the engine averages them. A
    template that splits them would count the GPU's power per instance: a
    warning."""
    i3 = labels("DCGM_FI_DEV_POWER_USAGE", "node01", UUID_A, GPU_I_ID="3", GPU_I_PROFILE="1g.6gb")
    i4 = labels("DCGM_FI_DEV_POWER_USAGE", "node01", UUID_A, GPU_I_ID="4", GPU_I_PROFILE="1g.6gb")
    f = write(
        tmp_path / "mig.json",
        response(
            series(i3, [(0, "52.636"), (15, "52.636")]),
            series(i4, [(0, "52.746"), (15, "52.746")]),
        ),
    )
    r = cl.account(power=from_prometheus_json(f), period=(at(0), at(15)), **fleet([A]))
    d = device_row(r, A)
    assert d["duplicate_samples"] == 2
    assert d["energy_kwh"] == pytest.approx((52.636 + 52.746) / 2 * 15 / 3.6e6, rel=REL)
    with pytest.warns(PrometheusIngestWarning, match="several device ids at the same time"):
        rows(from_prometheus_json(f, device_id="{Hostname}/{UUID}/{GPU_I_ID}"))


def test_json_hostname_label_renamed_by_exporter_upgrade(tmp_path: Path) -> None:
    """dcgm-exporter commit d5e5f51 renamed Hostname to hostname; the
    template's {Hostname} falls back to the one label differing only in
    case, so the GPU keeps its id across the upgrade (and no warning)."""
    old = labels("DCGM_FI_DEV_POWER_USAGE", "node01", UUID_A)
    new = dict(old)
    new["hostname"] = new.pop("Hostname")
    f = write(
        tmp_path / "p.json",
        response(series(old, [(0, "100")]), series(new, [(15, "100")])),
    )
    assert {g[0] for g in rows(from_prometheus_json(f))} == {A}


def test_json_missing_label_names_series_file_and_template(tmp_path: Path) -> None:
    m = labels("DCGM_FI_DEV_POWER_USAGE", "node01", UUID_A)
    del m["Hostname"]
    f = write(tmp_path / "nohost.json", response(series(m, [(0, "100")])))
    with pytest.raises(SchemaError) as e:
        from_prometheus_json(f).read_all()
    msg = str(e.value)
    assert "nohost.json, result[0]" in msg
    assert "no label 'Hostname'" in msg and "'{Hostname}/{UUID}'" in msg
    assert f'UUID="{UUID_A}"' in msg


def test_json_error_response(tmp_path: Path) -> None:
    f = write(
        tmp_path / "page-0007.json",
        '{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of '
        '11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"}',
    )
    with pytest.raises(InputError, match=r"page-0007\.json.*'bad_data'.*exceeded maximum"):
        from_prometheus_json(f).read_all()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("<html><body>502 Bad Gateway</body></html>", r"expected a Prometheus API response"),
        (
            '{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":'
            '"DCGM_FI_DEV_POWER_USAGE"},"values":[[1735689600,"1"]',
            r"line 1 \(character \d+\): not valid JSON",
        ),
        ('{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}', "scalar"),
        ('{"status":"success","data":{"resultType":"matrix"}}', "no data.result"),
        ('{"data":{"resultType":"matrix","result":[]}}', "status None"),
        ("", "empty file"),
        (
            response('{"metric":{"Hostname":"n","UUID":"u"},"values":[[1735689600,"1"]]}'),
            "no __name__ label",
        ),
        (
            response(series(labels("DCGM_FI_DEV_POWER_USAGE", "n", "u"), [(0, "12,5")])),
            r"value '12,5' at 2025-01-01T00:00:00Z; expected a number",
        ),
        (
            response(
                '{"metric":{"__name__":"DCGM_FI_DEV_POWER_USAGE","Hostname":"n","UUID":"u"},'
                '"values":[["x","1"]]}'
            ),
            "timestamp 'x'",
        ),
    ],
)
def test_json_bad_files(tmp_path: Path, text: str, match: str) -> None:
    f = write(tmp_path / "bad.json", text)
    with pytest.raises(SchemaError, match=match) as e:
        from_prometheus_json(f).read_all()
    assert "bad.json" in str(e.value)


def test_json_no_power_samples(tmp_path: Path) -> None:
    m = labels("DCGM_FI_DEV_SM_CLOCK", "node01", UUID_A)
    f = write(tmp_path / "p.json", response(series(m, [(0, "1410")])))
    with pytest.raises(
        SchemaError, match=r"no DCGM_FI_DEV_POWER_USAGE samples.*DCGM_FI_DEV_SM_CLOCK"
    ):
        from_prometheus_json(f).read_all()


def test_json_pretty_gzip_several_responses_and_vector(tmp_path: Path) -> None:
    """jq-indented JSON, gzip, several responses appended to one file, and an
    instant-query vector all read the same."""
    m = labels("DCGM_FI_DEV_POWER_USAGE", "node01", UUID_A)
    pretty = json.dumps(json.loads(response(series(m, [(0, "100"), (15, "200")]))), indent=2)
    vector = (
        '{"status":"success","data":{"resultType":"vector","result":[{"metric":'
        + json.dumps(m, separators=(",", ":"), sort_keys=True)
        + f',"value":[{EPOCH + 30},"300"]}}]}}}}'
    )
    f = write(tmp_path / "dump.json.gz", "\ufeff" + pretty + "\n" + vector + "\n")
    got = rows(from_prometheus_json(f))
    assert [(g[1], g[2]) for g in got] == [(0, 100.0), (15, 200.0), (30, 300.0)]


def test_json_prometheus_warnings_are_passed_on(tmp_path: Path) -> None:
    m = labels("DCGM_FI_DEV_POWER_USAGE", "node01", UUID_A)
    body = response(series(m, [(0, "100")]))
    f = write(tmp_path / "p.json", body[:-1] + ',"warnings":["partial response: store 2 down"]}')
    with pytest.warns(PrometheusIngestWarning, match=r"p\.json: .*partial response"):
        rows(from_prometheus_json(f))


def test_json_utilization_out_of_range_warns(tmp_path: Path) -> None:
    pw = labels("DCGM_FI_DEV_POWER_USAGE", "node01", UUID_A)
    ut = labels("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "node01", UUID_A)
    f = write(
        tmp_path / "p.json",
        response(series(pw, [(0, "100"), (15, "100")]), series(ut, [(0, "0.25"), (15, "37")])),
    )
    with pytest.warns(PrometheusIngestWarning, match=r"1 DCGM_FI_PROF_GR_ENGINE_ACTIVE .* 37"):
        got = rows(from_prometheus_json(f, utilization="DCGM_FI_PROF_GR_ENGINE_ACTIVE"))
    assert [g[3] for g in got] == [0.25, None]


def test_json_spill_to_disk_gives_the_same_rows_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = json_pages(tmp_path / "in")
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill))
    expected = rows(from_prometheus_json(files))
    monkeypatch.setattr(prom, "_SPILL_ROWS", 2)
    assert rows(from_prometheus_json(files)) == expected
    assert list(spill.iterdir()) == []
    # Abandoned part-way: the temporary database goes with the reader.
    reader = from_prometheus_json(files)
    reader.read_next_batch()
    assert len(list(spill.iterdir())) == 1
    del reader
    gc.collect()
    assert list(spill.iterdir()) == []


finite = st.floats(0, 1000, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    power=st.lists(st.one_of(finite, st.just(math.nan)), min_size=1, max_size=16),
    util=st.lists(st.integers(0, 100), min_size=1, max_size=16),
    cuts=st.lists(st.integers(1, 15), max_size=4),
    reverse=st.booleans(),
    spill=st.integers(1, 40),
    chunk=st.integers(1, 97),
)
def test_json_pages_property(
    power: list[float],
    util: list[int],
    cuts: list[int],
    reverse: bool,
    spill: int,
    chunk: int,
) -> None:
    """Splitting a dump into pages (each repeating the previous page's last
    sample), listing them in any order, spilling the sort to disk and
    reading in chunks of any size give the rows of the single response."""
    n = len(power)
    pa_ = labels("DCGM_FI_DEV_POWER_USAGE", "node01", UUID_A)
    ua = labels("DCGM_FI_DEV_GPU_UTIL", "node01", UUID_A)
    pb = labels("DCGM_FI_DEV_POWER_USAGE", "node02", UUID_B)

    def page(lo: int, hi: int) -> str:
        ts = range(lo, hi + 1)
        return response(
            series(pa_, [(15 * i, "NaN" if power[i] != power[i] else repr(power[i])) for i in ts]),
            series(ua, [(15 * i, str(util[i % len(util)])) for i in ts]),
            series(pb, [(15 * i, "250") for i in ts]),
        )

    bounds = sorted({c for c in cuts if c < n - 1} | {0, n - 1})
    with tempfile.TemporaryDirectory() as d:
        whole = write(Path(d) / "whole.json", page(0, n - 1))
        expected = rows(from_prometheus_json(whole))
        spans = list(itertools.pairwise(bounds)) or [(0, 0)]
        pages = [write(Path(d) / f"p{k}.json", page(lo, hi)) for k, (lo, hi) in enumerate(spans)]
        with (
            mock.patch.object(prom, "_SPILL_ROWS", spill),
            mock.patch.object(prom, "_CHUNK_CHARS", chunk),
        ):
            got = rows(from_prometheus_json(pages[::-1] if reverse else pages))
    assert got == expected
    assert len(expected) == 2 * n


def test_json_memory_is_bounded_by_the_fleet_not_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One big page read series by series: Python memory holds per-device
    state (ids, spans) and fixed buffers, not the samples. 4x the samples of
    the same 1,000 GPUs: about the same peak, well below the file's size
    (json.load would hold all of it, as ~10x the text in objects)."""
    monkeypatch.setattr(prom, "_SPILL_ROWS", 2000)
    monkeypatch.setattr(prom, "_BATCH_ROWS", 4096)
    monkeypatch.setattr(prom, "_CHUNK_CHARS", 1 << 16)

    def peak(n_samples: int) -> tuple[int, int]:
        parts = []
        for k in range(1000):
            m = labels(
                "DCGM_FI_DEV_POWER_USAGE", f"node{k // 8:04d}", f"GPU-{k:08x}", gpu=str(k % 8)
            )
            vals = [(15 * i, f"{100 + (k + i) % 200}.5") for i in range(n_samples)]
            parts.append(series(m, vals))
        f = write(tmp_path / f"big{n_samples}.json", response(*parts))
        del parts
        tracemalloc.start()
        try:
            n = 0
            for batch in from_prometheus_json(f, utilization=None):
                n += batch.num_rows
                del batch
            _, top = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert n == 1000 * n_samples
        return top, f.stat().st_size

    small, _ = peak(50)
    big, size = peak(200)
    assert size > 4_000_000
    assert big < size / 3, (big, size)
    assert big < 1.5 * small + 256 * 1024, (small, big)


# ------------------------------------------------------------ options, paths


def test_paths_directory_glob_list_and_missing(tmp_path: Path) -> None:
    files = json_pages(tmp_path / "d")
    (tmp_path / "d" / ".DS_Store").write_bytes(b"\0")
    by_dir = rows(from_prometheus_json(tmp_path / "d"))
    assert rows(from_prometheus_json(str(tmp_path / "d" / "page-*.json"))) == by_dir
    assert rows(from_prometheus_json([str(f) for f in files])) == by_dir
    with pytest.raises(InputError, match="no such file"):
        from_prometheus_json(tmp_path / "nope.json")
    with pytest.raises(InputError, match="matches no file"):
        from_prometheus_json(str(tmp_path / "*.nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no files"):
        from_prometheus_json(tmp_path / "empty")
    with pytest.raises(InputError, match="no input"):
        from_prometheus_json([])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"value": "watts"}, "value='watts'; expected 'power'"),
        ({"utilization": "DCGM_FI_DEV_MEM_COPY_UTIL"}, "utilization='DCGM_FI_DEV_MEM_COPY_UTIL'"),
        ({"device_id": "{Hostname/{UUID}"}, "unbalanced"),
        ({"device_id": "node/{}"}, "empty"),
        ({"device_id": "gpu"}, "names no label"),
    ],
)
def test_bad_options(tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
    f = json_pages(tmp_path)[0]
    with pytest.raises(InputError, match=match):
        from_prometheus_json(f, **kwargs)
    with pytest.raises(InputError, match=match):
        from_prometheus_text(f, **kwargs)


def test_template_literal_braces_and_other_labels(tmp_path: Path) -> None:
    f = json_pages(tmp_path)[0]
    got = rows(from_prometheus_json(f, device_id="{{{instance}}}-gpu{gpu}"))
    assert {g[0] for g in got} == {"{node01:9400}-gpu0", "{node02:9400}-gpu3"}


# ------------------------------------------------------------ text scrapes


def scrape(gpus: list[tuple[str, str, str, str, str]], ts_ms: int | None = None) -> str:
    """One dcgm-exporter /metrics answer: (gpu, UUID, Hostname, power
    "%f", util "%d") per GPU, with the HELP/TYPE lines and some of the
    other default counters."""
    suffix = "" if ts_ms is None else f" {ts_ms}"

    def lab(gpu: str, uuid: str, host: str) -> str:
        return (
            f'gpu="{gpu}",UUID="{uuid}",pci_bus_id="00000000:{18 + int(gpu):02X}:00.0",'
            f'device="nvidia{gpu}",modelName="NVIDIA H100 80GB HBM3",Hostname="{host}",'
            'DCGM_FI_DRIVER_VERSION="535.129.03"'
        )

    out = [
        "# HELP DCGM_FI_DEV_SM_CLOCK SM clock frequency (in MHz).",
        "# TYPE DCGM_FI_DEV_SM_CLOCK gauge",
    ]
    out += [f"DCGM_FI_DEV_SM_CLOCK{{{lab(g, u, h)}}} 1980{suffix}" for g, u, h, _, _ in gpus]
    out += [
        "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).",
        "# TYPE DCGM_FI_DEV_GPU_UTIL gauge",
    ]
    out += [f"DCGM_FI_DEV_GPU_UTIL{{{lab(g, u, h)}}} {ut}{suffix}" for g, u, h, _, ut in gpus]
    out += [
        "# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).",
        "# TYPE DCGM_FI_DEV_POWER_USAGE gauge",
    ]
    out += [f"DCGM_FI_DEV_POWER_USAGE{{{lab(g, u, h)}}} {p}{suffix}" for g, u, h, p, _ in gpus]
    return "\n".join(out) + "\n"


def test_text_end_to_end(tmp_path: Path) -> None:
    """Scrapes of node01 (two GPUs) saved one per file with the scrape time
    in the name, and node02's scrapes with sample timestamps (ms) in one
    file without a time in its name."""
    c = UUID_B.replace("a9", "c0")
    d = tmp_path / "scrapes"
    for s, (p0, p1, u0) in zip(
        ("000000", "000015", "000030"),
        [
            ("100.000000", "50.500000", "10"),
            ("300.000000", "50.500000", "90"),
            ("200.000000", "50.500000", "55"),
        ],
        strict=True,
    ):
        write(
            d / f"node01-20250101T{s}Z.prom",
            scrape([("0", UUID_A, "node01", p0, u0), ("1", UUID_B, "node01", p1, "0")]),
        )
    timed = "".join(
        scrape([("0", c, "node02", "400.000000", "100")], ts_ms=(EPOCH + k) * 1000)
        for k in (0, 15, 30)
    )
    write(d / "node02.prom", timed)
    got = rows(from_prometheus_text(d))
    assert got[:3] == [
        (A, 0, 100.0, 0.1),
        (f"node01/{UUID_B}", 0, 50.5, 0.0),
        (f"node02/{c}", 0, 400.0, 1.0),
    ]
    ids = [A, f"node01/{UUID_B}", f"node02/{c}"]
    r = cl.account(
        power=from_prometheus_text(d),
        allocations=allocations_table([("j", A, 0, 30, 1.0)]),
        period=(at(0), at(30)),
        **fleet(ids),
    )
    job = r.allocations.row(0, named=True)
    assert job["energy_kwh"] == pytest.approx(
        ((100 + 300) / 2 * 15 + (300 + 200) / 2 * 15) / 3.6e6, rel=REL
    )
    assert device_row(r, ids[1])["energy_kwh"] == pytest.approx(50.5 * 30 / 3.6e6, rel=REL)
    assert device_row(r, ids[2])["energy_kwh"] == pytest.approx(400 * 30 / 3.6e6, rel=REL)


def test_text_energy_counter_gzip(tmp_path: Path) -> None:
    lines = (
        "# HELP DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION Total energy consumption since boot (in mJ).\n"
        "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n"
        'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu="0",UUID="%s",device="nvidia0",'
        'modelName="NVIDIA H100 80GB HBM3",Hostname="node01"} %s\n'
    )
    for k, mj in ((0, "4096000000"), (60, "4114000000"), (120, "12000")):
        write(tmp_path / f"node01-{EPOCH + k}.prom.gz", lines % (UUID_A, mj))
    got = rows(from_prometheus_text(tmp_path, value="energy", utilization=None))
    assert got == [(A, 0, 4_096_000.0, None), (A, 60, 4_114_000.0, None), (A, 120, 12.0, None)]
    r = cl.account(
        power=from_prometheus_text(tmp_path, value="energy"),
        period=(at(0), at(120)),
        **fleet([A]),
    )
    d = device_row(r, A)
    assert d["counter_resets"] == 1
    assert d["energy_kwh"] == pytest.approx(18_000 / 3.6e6, rel=REL)


def test_text_label_escapes_spacing_and_quoted_names(tmp_path: Path) -> None:
    r"""Label values with \" \\ \n (and another backslash pair kept as
    written, as Prometheus' lvalReplacer does); blanks after commas (the
    exporter's README shows `{gpu="0", UUID="..."}`), tabs, a trailing
    comma; a quoted metric name inside the braces; a promtool-dump style
    __name__ label."""
    text = (
        'DCGM_FI_DEV_POWER_USAGE{gpu="0", UUID="GPU-1",Hostname="rack \\"7\\"\\\\n01\\nb\\t",} '
        "100.5 1735689600000\n"
        '  DCGM_FI_DEV_POWER_USAGE\t{ gpu = "1" , UUID="GPU-2", Hostname="n2" }'
        "\t200\t1735689600000\n"
        '{"DCGM_FI_DEV_POWER_USAGE", UUID="GPU-3", Hostname="n3"} 300 1735689600000\n'
        '{__name__="DCGM_FI_DEV_POWER_USAGE", Hostname="n4", UUID="GPU-4"} 400 1735689600000\n'
        'DCGM_FI_DEV_POWER_USAGE_INSTANT{UUID="GPU-5",Hostname="n5"} 999 1735689600000\n'
    )
    f = write(tmp_path / "m.prom", text)
    got = rows(from_prometheus_text(f))
    assert got == [
        ("n2/GPU-2", 0, 200.0, None),
        ("n3/GPU-3", 0, 300.0, None),
        ("n4/GPU-4", 0, 400.0, None),
        ('rack "7"\\n01\nb\\t/GPU-1', 0, 100.5, None),
    ]


@pytest.mark.parametrize(
    ("name", "tz", "expected"),
    [
        ("node01-20250101T000130Z.prom", None, 90),
        ("node01-2025-01-01T01:01:30+01:00.txt", None, 90),
        ("node01_2025-01-01_01-01-30.prom", "Europe/Berlin", 90),
        ("metrics.1735689690.prom", None, 90),
        ("metrics-1735689690500.prom", None, 90.5),
    ],
)
def test_text_time_from_file_name(
    tmp_path: Path, name: str, tz: str | None, expected: float
) -> None:
    f = write(tmp_path / name, scrape([("0", UUID_A, "node01", "100.000000", "1")]))
    assert rows(from_prometheus_text(f, tz=tz))[0][1] == expected


def test_text_time_errors_and_scrape_time(tmp_path: Path) -> None:
    body = scrape([("0", UUID_A, "node01", "100.000000", "1")])
    f = write(tmp_path / "metrics.prom", body)
    with pytest.raises(
        SchemaError, match=r"metrics\.prom, line 6: the sample has no timestamp.*modification"
    ):
        from_prometheus_text(f).read_all()
    assert rows(from_prometheus_text(f, scrape_time="2025-01-01T00:00:45Z"))[0][1] == 45
    assert rows(from_prometheus_text(f, scrape_time=T0))[0][1] == 0
    g = write(tmp_path / "other.prom", body)
    with pytest.raises(InputError, match="scrape_time dates a single file, and 2"):
        from_prometheus_text([f, g], scrape_time="2025-01-01T00:00:45Z")
    z = write(tmp_path / "z" / "node01-20250101-000000.prom", body)
    with pytest.raises(SchemaError, match=r"node01-20250101-000000\.prom: .*no time zone"):
        from_prometheus_text(z).read_all()
    with pytest.raises(InputError, match="tz='Mars/Olympus' is not a time zone name"):
        from_prometheus_text(z, tz="Mars/Olympus")
    two = write(tmp_path / "t" / "20250101T000000Z-20250101T000015Z.prom", body)
    with pytest.raises(SchemaError, match="several times"):
        from_prometheus_text(two).read_all()
    bad = write(tmp_path / "b" / "node-20251301T000000Z.prom", body)
    with pytest.raises(SchemaError, match="not a valid date"):
        from_prometheus_text(bad).read_all()


def test_text_concatenated_scrapes_without_timestamps(tmp_path: Path) -> None:
    one = scrape([("0", UUID_A, "node01", "100.000000", "1")])
    f = write(tmp_path / "node01-20250101T000000Z.prom", one + one)
    with pytest.raises(
        SchemaError,
        match=r"line 15: series DCGM_FI_DEV_GPU_UTIL\{.*\} appears again .*first at line 6",
    ):
        from_prometheus_text(f).read_all()


@pytest.mark.parametrize(
    ("line", "match"),
    [
        (
            'DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="u",Hostname="h"',
            r"a metric name, then labels in braces",
        ),
        ('DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="u",Hostname="h"} 1e_3', "a number as the value"),
        (
            'DCGM_FI_DEV_POWER_USAGE{gpu=0,UUID="u",Hostname="h"} 1',
            "double-quoted value for label 'gpu'",
        ),
        ('DCGM_FI_DEV_POWER_USAGE{UUID="u",Hostname="h"} 1 1735689600.5', "integer milliseconds"),
        ('DCGM_FI_DEV_POWER_USAGE{UUID="u",Hostname="h"} 1 2 3', "a value and an optional"),
        ('DCGM_FI_DEV_POWER_USAGE{UUID="u",UUID="v",Hostname="h"} 1', "given twice"),
        ("<html><body>404 page not found</body></html>", "a metric name, '#' or '{'"),
    ],
)
def test_text_bad_lines(tmp_path: Path, line: str, match: str) -> None:
    f = write(tmp_path / "node01-20250101T000000Z.prom", "# TYPE x gauge\n" + line + "\n")
    with pytest.raises(SchemaError, match=match) as e:
        from_prometheus_text(f).read_all()
    assert "node01-20250101T000000Z.prom, line 2" in str(e.value)


def test_text_missing_label(tmp_path: Path) -> None:
    f = write(
        tmp_path / "node01-20250101T000000Z.prom",
        'DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-1",Hostname=""} 100.000000\n',
    )
    with pytest.raises(
        SchemaError, match=r"line 1 \(series .*\): no label 'Hostname'.*'\{Hostname\}/\{UUID\}'"
    ):
        from_prometheus_text(f).read_all()
    assert rows(from_prometheus_text(f, device_id="{UUID}")) == [("GPU-1", 0, 100.0, None)]


@settings(max_examples=30, deadline=None)
@given(
    powers=st.lists(st.integers(0, 70000), min_size=1, max_size=8),
    spill=st.integers(1, 20),
)
def test_text_files_match_one_timestamped_file(powers: list[int], spill: int) -> None:
    """One scrape per file named by its time gives the rows of the same
    samples written with timestamps into one file."""
    with tempfile.TemporaryDirectory() as d:
        one = []
        for k, p in enumerate(powers):
            gp = [("0", UUID_A, "node01", f"{p / 100:f}", str(k % 101))]
            write(Path(d) / "files" / f"node01-{EPOCH + 15 * k}.prom", scrape(gp))
            one.append(scrape(gp, ts_ms=(EPOCH + 15 * k) * 1000))
        write(Path(d) / "one" / "all.prom", "".join(one))
        with mock.patch.object(prom, "_SPILL_ROWS", spill):
            assert rows(from_prometheus_text(Path(d) / "files")) == rows(
                from_prometheus_text(Path(d) / "one")
            )


# -------------------------------------------------------------- the formats


def test_formats_parse_and_open(tmp_path: Path) -> None:
    assert [f.name for f in FORMATS] == ["prometheus-json", "prometheus-text"]
    assert {f.table for f in FORMATS} == {"power"}
    js, tx = FORMATS
    files = json_pages(tmp_path / "j")
    p = argparse.ArgumentParser()
    js.add_arguments(p)
    args = p.parse_args([str(tmp_path / "j"), "--value", "power", "--utilization", "none"])
    got = rows(js.open(args))
    assert got == rows(from_prometheus_json(files, utilization=None))
    assert all(g[3] is None for g in got)
    write(tmp_path / "t" / "metrics.prom", scrape([("0", UUID_A, "node01", "100.000000", "50")]))
    p = argparse.ArgumentParser()
    tx.add_arguments(p)
    args = p.parse_args(
        [str(tmp_path / "t"), "--scrape-time", "2025-01-01T00:00:15Z", "--device-id", "{UUID}"]
    )
    assert rows(tx.open(args)) == [(UUID_A, 15, 100.0, 0.5)]
    # The samples shown in --help are real input of each format.
    write(tmp_path / "s" / "sample.json", js.sample)
    assert len(rows(from_prometheus_json(tmp_path / "s"))) == 2
    write(tmp_path / "u" / "node01-20250101T000000Z.prom", tx.sample + "\n")
    assert rows(from_prometheus_text(tmp_path / "u")) == [
        ("node01/GPU-8d5053b3-9280-7d1a-751b-4fd2fdd547c5", 0, 312.5, None)
    ]
