"""Parquet read in Rust (``_native.ParquetScan``): the same ledger, bit for
bit, as the same samples read by pyarrow or held in memory, whatever the
files, row groups, batch size, column types and names; and typed errors
naming the file for what it cannot read."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings

import carbonledger as cl
from carbonledger import _native, synth
from carbonledger._io import open_power

TABLES = ("allocations", "unallocated", "devices", "grid")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("nativefleet")
    return synth.generate(out, devices=6, hours=3.0, hz=0.2, seed=11, file_rows=900)


def _small(fleet: dict[str, Any]) -> dict[str, Any]:
    return {k: fleet[k] for k in ("devices", "sites", "intensity", "allocations")}


def _whole(fleet: dict[str, Any]) -> pa.Table:
    return pa.concat_tables([pq.read_table(f) for f in fleet["power_by_time"]])


def _assert_equal(a: cl.Report, b: cl.Report) -> None:
    for name in TABLES:
        assert a.tables[name].equals(b.tables[name]), name


def test_paths_are_read_natively(fleet: dict[str, Any]) -> None:
    folder = str(Path(fleet["power_by_time"][0]).parent)
    (scan,) = open_power(folder, None)
    assert isinstance(scan, _native.ParquetScan)
    assert scan.num_files == len(fleet["power_by_time"])
    assert scan.num_rows == _whole(fleet).num_rows
    schema = pa.schema(scan)
    assert schema.names == ["device_id", "ts", "power_w"]
    # String ids come dictionary-encoded: resolved once per distinct id.
    assert pa.types.is_dictionary(schema.field("device_id").type)


def test_same_ledger_as_pyarrow_and_in_memory(fleet: dict[str, Any]) -> None:
    files = fleet["power_by_time"]
    native = cl.account(str(Path(files[0]).parent), **_small(fleet))
    by_pyarrow = cl.account(ds.dataset(files, format="parquet"), **_small(fleet))
    in_memory = cl.account(_whole(fleet), **_small(fleet))
    _assert_equal(native, by_pyarrow)
    _assert_equal(native, in_memory)
    # One source per file (a list is one source per item): the scans share
    # one decoding pipeline, and give what pyarrow's datasets give. (Each
    # source boundary folds the devices' runs of summation, so the last bit
    # may differ from one source's: 1.8e-16 here.)
    many = cl.account(list(files), **_small(fleet))
    _assert_equal(many, cl.account([ds.dataset(f) for f in files], **_small(fleet)))
    assert many.totals()["total_kgco2e"] == pytest.approx(
        native.totals()["total_kgco2e"], rel=1e-14
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    cuts=st.lists(st.integers(1, 4000), min_size=0, max_size=5, unique=True),
    row_group=st.integers(1, 3000),
    batch_rows=st.sampled_from([1, 7, 500, 65536]),
    threads=st.sampled_from(["1", "2", "3"]),
)
def test_any_files_row_groups_batches_and_threads_give_the_same_bits(
    fleet: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    cuts: list[int],
    row_group: int,
    batch_rows: str,
    threads: str,
) -> None:
    whole = _whole(fleet)
    expected = cl.account(whole, **_small(fleet))
    folder = tmp_path_factory.mktemp("cuts")
    edges = [0, *sorted(c for c in cuts if c < whole.num_rows), whole.num_rows]
    for i, (a, b) in enumerate(itertools.pairwise(edges)):
        pq.write_table(
            whole.slice(a, b - a), folder / f"part-{i:03d}.parquet", row_group_size=row_group
        )
    monkeypatch.setenv("CARBONLEDGER_SCAN_BATCH_ROWS", str(batch_rows))
    monkeypatch.setenv("CARBONLEDGER_MAX_THREADS", threads)
    _assert_equal(cl.account(str(folder), **_small(fleet)), expected)


@pytest.mark.parametrize(
    "ts_type",
    [pa.timestamp("ns", "UTC"), pa.timestamp("us", "UTC"), pa.timestamp("ms"), pa.timestamp("us")],
)
@pytest.mark.parametrize(
    "id_type", [pa.string(), pa.large_string(), pa.dictionary(pa.int32(), pa.string())]
)
def test_column_types_are_normalized(
    fleet: dict[str, Any], tmp_path: Path, ts_type: pa.DataType, id_type: pa.DataType
) -> None:
    whole = _whole(fleet)
    # Whole seconds survive every unit.
    ts = whole.column("ts").cast(pa.int64()).to_numpy() // 10**9 * 10**9
    whole = whole.set_column(1, "ts", pa.array(ts, pa.timestamp("ns", "UTC")))
    expected = cl.account(whole, **_small(fleet))
    cast = pa.table(
        {
            "device_id": whole.column("device_id").cast(id_type),
            "ts": whole.column("ts").cast(ts_type),
            "power_w": whole.column("power_w").cast(pa.float32()).cast(pa.float64()),
        }
    )
    expected32 = cl.account(cast.set_column(1, "ts", whole.column("ts")), **_small(fleet))
    pq.write_table(cast, tmp_path / "p.parquet", row_group_size=777)
    got = cl.account(str(tmp_path / "p.parquet"), **_small(fleet))
    _assert_equal(got, expected32)
    assert got.totals()["energy_kwh"] == pytest.approx(expected.totals()["energy_kwh"], rel=1e-6)


def test_float32_power_and_integer_ids(tmp_path: Path, spec12: dict[str, Any]) -> None:
    p = spec12["power"]
    ids = pa.array([7] * p.num_rows, pa.int64())
    t = pa.table(
        {"device_id": ids, "ts": p.column("ts"), "power_w": p.column("power_w").cast(pa.float32())}
    )
    pq.write_table(t, tmp_path / "p.parquet")
    kw = {k: v for k, v in spec12.items() if k != "power"}
    kw["devices"] = kw["devices"].set_column(0, "device_id", pa.array([7], pa.int64()))
    kw["allocations"] = kw["allocations"].set_column(1, "device_id", pa.array([7], pa.int64()))
    native = cl.account(str(tmp_path / "p.parquet"), **kw)
    in_memory = cl.account(t, **kw)
    _assert_equal(native, in_memory)
    assert native.totals()["energy_kwh"] == pytest.approx(5000 / 3.6e6, rel=1e-12)


def test_user_column_names_and_extra_columns(tmp_path: Path, spec12: dict[str, Any]) -> None:
    p = spec12["power"]
    t = pa.table(
        {
            "watts": p.column("power_w"),
            "host": p.column("device_id"),
            "note": pa.array(["x"] * p.num_rows),
            "timestamp": p.column("ts"),
        }
    )
    pq.write_table(t, tmp_path / "p.parquet")
    kw = {k: v for k, v in spec12.items() if k != "power"}
    cols = {"power": {"device_id": "host", "ts": "timestamp", "power_w": "watts"}}
    got = cl.account(str(tmp_path / "p.parquet"), columns=cols, **kw)
    _assert_equal(got, cl.account(p, **kw))
    (scan,) = open_power(str(tmp_path / "p.parquet"), cols)
    # Only the power columns, with carbonledger's names, in the file's order.
    assert pa.schema(scan).names == ["power_w", "device_id", "ts"]


def test_files_that_disagree_are_a_schema_error(tmp_path: Path, spec12: dict[str, Any]) -> None:
    p = spec12["power"]
    pq.write_table(p.slice(0, 2), tmp_path / "a.parquet")
    pq.write_table(
        p.slice(2).rename_columns(["device_id", "ts", "energy_j"]), tmp_path / "b.parquet"
    )
    kw = {k: v for k, v in spec12.items() if k != "power"}
    with pytest.raises(cl.SchemaError, match=r"disagree.*'power_w'.*b\.parquet|disagree.*energy_j"):
        cl.account(str(tmp_path), **kw)


def test_missing_column_names_what_the_file_has(tmp_path: Path, spec12: dict[str, Any]) -> None:
    p = spec12["power"].drop_columns(["ts"]).append_column("time", spec12["power"].column("ts"))
    pq.write_table(p, tmp_path / "p.parquet")
    kw = {k: v for k, v in spec12.items() if k != "power"}
    with pytest.raises(cl.SchemaError, match=r"'ts'.*time"):
        cl.account(str(tmp_path / "p.parquet"), **kw)


def test_a_corrupt_file_is_an_input_error_naming_it(tmp_path: Path, spec12: dict[str, Any]) -> None:
    pq.write_table(spec12["power"], tmp_path / "a.parquet")
    (tmp_path / "b.parquet").write_bytes(b"PAR1 this is not parquet PAR1")
    kw = {k: v for k, v in spec12.items() if k != "power"}
    with pytest.raises(cl.InputError, match=r"b\.parquet"):
        cl.account(str(tmp_path), **kw)


def test_a_truncated_page_is_an_input_error_naming_the_row_group(
    tmp_path: Path, fleet: dict[str, Any]
) -> None:
    whole = _whole(fleet)
    path = tmp_path / "p.parquet"
    pq.write_table(whole, path, row_group_size=1000, compression="zstd")
    raw = bytearray(path.read_bytes())
    # Scribble over the middle of the compressed pages, leaving the footer
    # whole: decompression fails. (Scribbled plain values would read as
    # values; NaN and negative power are invalid samples, counted.)
    mid = len(raw) // 3
    raw[mid : mid + 4000] = b"\xff" * 4000
    path.write_bytes(bytes(raw))
    with pytest.raises(cl.CarbonLedgerError, match=r"p\.parquet"):
        cl.account(str(path), **_small(fleet))


def test_empty_files_are_skipped(tmp_path: Path, spec12: dict[str, Any]) -> None:
    p = spec12["power"]
    pq.write_table(p.slice(0, 0), tmp_path / "a.parquet")
    pq.write_table(p, tmp_path / "b.parquet")
    pq.write_table(p.slice(0, 0), tmp_path / "c.parquet")
    kw = {k: v for k, v in spec12.items() if k != "power"}
    _assert_equal(cl.account(str(tmp_path), **kw), cl.account(p, **kw))


def test_an_error_mid_stream_stops_the_decoders(tmp_path: Path, fleet: dict[str, Any]) -> None:
    """An unknown id in the first file ends the run with its error while the
    workers are decoding later files; nothing hangs and the next run works."""
    files = fleet["power_by_time"]
    first = pq.read_table(files[0])
    bad = first.set_column(0, "device_id", pa.array(["nope"] * first.num_rows))
    pq.write_table(bad, tmp_path / "part-000.parquet")
    for i, f in enumerate(files[1:], 1):
        pq.write_table(pq.read_table(f), tmp_path / f"part-{i:03d}.parquet")
    with pytest.raises(cl.UnknownIdError, match="nope"):
        cl.account(str(tmp_path), **_small(fleet))
    folder = str(Path(files[0]).parent)
    assert cl.account(folder, **_small(fleet)).totals()["energy_kwh"] > 0


def test_a_footer_the_parquet_reader_panics_on_is_an_input_error(
    tmp_path: Path, spec12: dict[str, Any]
) -> None:
    """Fuzz finding 14: arrow-rs panics on this damaged embedded Arrow
    schema; the panic is caught and named, never a PanicException."""
    seed = (
        Path(__file__).parent.parent
        / "fuzz/seeds/parquet/finding-14-embedded-schema-without-fields"
    )
    path = tmp_path / "damaged.parquet"
    path.write_bytes(seed.read_bytes())
    kw = {k: v for k, v in spec12.items() if k != "power"}
    with pytest.raises(cl.InputError, match=r"damaged\.parquet"):
        cl.account(str(path), **kw)


def test_a_footer_whose_row_count_disagrees_with_its_row_groups_is_an_input_error(
    tmp_path: Path, spec12: dict[str, Any]
) -> None:
    """Fuzz finding 16: this footer counts 10 rows in the file and 12 in its
    row groups; a damaged footer is named, never read as either count."""
    seed = Path(__file__).parent.parent / "fuzz/seeds/parquet/finding-16-footer-row-count"
    path = tmp_path / "damaged.parquet"
    path.write_bytes(seed.read_bytes())
    kw = {k: v for k, v in spec12.items() if k != "power"}
    with pytest.raises(cl.InputError, match=r"damaged\.parquet.*10 rows in the file but 12"):
        cl.account(str(path), **kw)
