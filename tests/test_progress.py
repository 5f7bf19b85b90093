"""``account(..., progress=callback)``: rows and files pulled from the sample
stream add up, totals come from Parquet footers, results do not change; and
the terminal bar's text and pacing."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from conftest import power_table

import carbonledger as cl
from carbonledger.progress import Progress, ProgressBar, format_progress


def _split_power(spec12: dict[str, Any], folder: Path, fmt: str = "parquet") -> list[int]:
    """Write the SPEC 12 samples as three files of 1, 2 and 1 rows."""
    power: pa.Table = spec12["power"]
    sizes = [1, 2, 1]
    offset = 0
    for i, n in enumerate(sizes):
        part = power.slice(offset, n)
        if fmt == "parquet":
            pq.write_table(part, folder / f"part-{i}.parquet")
        else:
            pacsv.write_csv(part, folder / f"part-{i}.csv")
        offset += n
    return sizes


def _account(spec12: dict[str, Any], power: Any, calls: list[Progress] | None) -> cl.Report:
    kwargs = {k: v for k, v in spec12.items() if k != "power"}
    return cl.account(power, **kwargs, progress=None if calls is None else calls.append)


def test_files_and_rows_add_up_with_totals_from_parquet_footers(
    spec12: dict[str, Any], tmp_path: Path
) -> None:
    _split_power(spec12, tmp_path)
    calls: list[Progress] = []
    report = _account(spec12, str(tmp_path / "*.parquet"), calls)
    assert calls == [
        Progress(0, 4, 0, 3),
        Progress(1, 4, 0, 3),
        Progress(3, 4, 1, 3),
        Progress(4, 4, 2, 3),
        Progress(4, 4, 3, 3, done=True),
    ]
    plain = _account(spec12, str(tmp_path / "*.parquet"), None)
    assert report.totals() == plain.totals()
    alloc = report.allocations.row(0, named=True)
    assert alloc["operational_kgco2e"] == pytest.approx(1 / 1920, rel=1e-12)


def test_csv_files_are_counted_without_a_row_total(spec12: dict[str, Any], tmp_path: Path) -> None:
    _split_power(spec12, tmp_path, "csv")
    calls: list[Progress] = []
    report = _account(spec12, [str(tmp_path)], calls)
    assert calls[-1] == Progress(4, None, 3, 3, done=True)
    assert [c.files for c in calls] == [0, 0, 1, 2, 3]
    assert report.totals()["energy_kwh"] == pytest.approx(5000 / 3.6e6, rel=1e-12)


def test_in_memory_inputs_report_rows(spec12: dict[str, Any]) -> None:
    power = spec12["power"]
    calls: list[Progress] = []
    _account(spec12, power, calls)
    assert calls[0] == Progress(0, 4) and calls[-1] == Progress(4, 4, done=True)
    assert sum(c.rows for c in calls if not c.done) >= 4

    calls = []
    _account(spec12, pl.from_arrow(power), calls)
    assert calls[-1] == Progress(4, 4, done=True)

    calls = []
    lazy = pl.from_arrow(power)
    assert isinstance(lazy, pl.DataFrame)
    _account(spec12, lazy.lazy(), calls)
    assert calls[0] == Progress(0, None) and calls[-1] == Progress(4, None, done=True)

    calls = []
    reader = pa.RecordBatchReader.from_batches(power.schema, power.to_batches(max_chunksize=1))
    report = _account(spec12, reader, calls)
    assert [c.rows for c in calls] == [0, 1, 2, 3, 4, 4]
    assert report.totals() == _account(spec12, power, None).totals()


def test_progress_stops_with_the_stream_on_bad_input(spec12: dict[str, Any]) -> None:
    bad = power_table([("g0", 0, 100), ("nope", 10, 300)])
    calls: list[Progress] = []
    with pytest.raises(cl.UnknownIdError, match="nope"):
        _account(spec12, bad, calls)
    assert calls[0] == Progress(0, 2)  # the error still comes through, typed


def test_format_progress() -> None:
    p = Progress(1_048_576, 4_194_304, 2, 8)
    assert format_progress(p, elapsed=0.5, width=10) == (
        "power  [##--------]  25%  2/8 files  1.05M/4.19M rows  2.1M rows/s  ETA 0:02"
    )
    assert format_progress(Progress(0, None), elapsed=0.0) == "power  0 rows"
    assert format_progress(Progress(12_345, None), elapsed=2.0) == (
        "power  12.3k rows  6.17k rows/s"
    )
    # no row total: the files give the fraction
    assert format_progress(Progress(500, None, 1, 4), elapsed=10.0, width=4) == (
        "power  [#---]  25%  1/4 files  500 rows  50 rows/s  ETA 0:30"
    )
    done = Progress(4_194_304, 4_194_304, 8, 8, done=True)
    assert format_progress(done, elapsed=3725.0, width=4) == (
        "power  [####] 100%  8/8 files  4.19M/4.19M rows  1.13k rows/s  in 1:02:05"
    )


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bar_redraws_at_most_ten_times_a_second_and_ends_its_line() -> None:
    out = io.StringIO()
    clock = _Clock()
    bar = ProgressBar(out, max_rate=10.0, clock=clock)
    bar(Progress(0, 100))
    clock.now += 0.05
    bar(Progress(10, 100))  # too soon: skipped
    clock.now += 0.06
    bar(Progress(20, 100))
    clock.now += 0.01
    bar(Progress(100, 100, done=True))  # the last state is always drawn
    frames = out.getvalue().split("\r")[1:]
    assert len(frames) == 3
    assert "  0%" in frames[0] and " 20%" in frames[1] and "100%" in frames[2]
    assert "in 0:00" in frames[2]
    bar.close(keep=True)
    assert out.getvalue().endswith("\n")


def test_bar_pads_shorter_lines_and_erases_itself() -> None:
    out = io.StringIO()
    clock = _Clock()
    bar = ProgressBar(out, clock=clock)
    bar(Progress(0, 10_000_000, 0, 100))
    first = out.getvalue()
    clock.now += 1.0
    bar(Progress(5, None))
    second = out.getvalue()[len(first) :]
    assert len(second) == len(first)  # the rest of the longer line blanked
    bar.close()
    drawn = len(format_progress(Progress(5, None), elapsed=1.0))
    assert out.getvalue().endswith("\r" + " " * drawn + "\r")
    end = out.getvalue()
    bar.close()  # idempotent
    assert out.getvalue() == end


def test_no_bar_no_output() -> None:
    out = io.StringIO()
    ProgressBar(out).close()
    assert out.getvalue() == ""
