"""Streaming in miniature: a fleet split into many small files, read in tiny
batches under a memory budget far below the dataset's size, gives the same
ledger as the whole table in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import carbonledger as cl
from carbonledger import synth
from carbonledger.progress import Progress

REL = 1e-9
TABLES = ("allocations", "unallocated", "devices", "grid")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("streamfleet")
    # ~750k samples in files of 8,000 rows: about 90 files per dump order.
    return synth.generate(out, devices=16, hours=16.0, hz=1.0, seed=5, file_rows=8000)


def _small(fleet: dict[str, Any]) -> dict[str, Any]:
    return {k: fleet[k] for k in ("devices", "sites", "intensity", "allocations")}


def _assert_same(a: cl.Report, b: cl.Report) -> None:
    for name in TABLES:
        x, y = a.tables[name], b.tables[name]
        assert x.num_rows == y.num_rows, name
        for col in y.column_names:
            if pa.types.is_floating(y.schema.field(col).type):
                for u, v in zip(x.column(col).to_pylist(), y.column(col).to_pylist(), strict=True):
                    assert u == pytest.approx(v, rel=REL, abs=1e-15), (name, col)
            else:
                assert x.column(col).equals(y.column(col)), (name, col)


@pytest.mark.parametrize("reader", ["native", "pyarrow"])
@pytest.mark.parametrize("order", ["power_by_time", "power_by_device"])
def test_many_files_tiny_batches_equal_in_memory(
    fleet: dict[str, Any], order: str, reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder path is read in Rust (its memory bound is checked by the
    Rust tests of ``read_parquet``, which count the batches in flight); a
    pyarrow dataset by pyarrow, whose Arrow memory is sampled here."""
    files: list[str] = fleet[order]
    assert len(files) >= 40
    whole = pa.concat_tables([pq.read_table(f) for f in files])
    dataset_bytes = whole.nbytes
    in_memory = cl.account(whole, **_small(fleet))
    del whole

    # A memory budget in miniature: batches of 500 rows, and the Arrow memory
    # the stream holds (sampled at every batch) must stay far below the data.
    monkeypatch.setenv("CARBONLEDGER_SCAN_BATCH_ROWS", "500")
    base = pa.total_allocated_bytes()
    peak = 0
    seen: list[Progress] = []

    def watch(p: Progress) -> None:
        nonlocal peak
        peak = max(peak, pa.total_allocated_bytes() - base)
        seen.append(p)

    folder = str(Path(files[0]).parent)
    power: Any = folder if reader == "native" else ds.dataset(folder, format="parquet")
    streamed = cl.account(power, progress=watch, **_small(fleet))
    _assert_same(streamed, in_memory)
    assert seen[-1].done and seen[-1].rows == in_memory.devices["samples"].sum()
    assert len(seen) > 1000  # a thousand and more of batches went through
    assert peak < dataset_bytes / 4, (peak, dataset_bytes)


def test_large_batches_split_across_workers_the_same_on_any_thread_count(
    fleet: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches past 2^16 rows are split across workers by device (each worker
    walks the batch and takes its devices' rows); each device's samples keep
    their order on one thread, so results are equal bit for bit to one
    thread's."""
    whole = pa.concat_tables([pq.read_table(f) for f in fleet["power_by_time"]])
    assert whole.num_rows > 1 << 18
    big = whole.combine_chunks()
    results = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("CARBONLEDGER_MAX_THREADS", threads)
        results.append(cl.account(big, **_small(fleet)))
    for other in results[1:]:
        for name in TABLES:
            assert other.tables[name].equals(results[0].tables[name]), name
