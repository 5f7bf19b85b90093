"""Real intensity formats: hour labels and blank hours."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import carbonledger as cl
from carbonledger.intensity import from_eia930, from_electricitymaps

UTC = dt.timezone.utc
DATA = Path(cl.__file__).parent / "data" / "electricitymaps"


def test_electricitymaps_hours_start_at_their_label() -> None:
    t = from_electricitymaps(DATA / "DE-LU_2023_hourly.csv", basis="direct")
    assert t.num_rows == 8760
    row = t.slice(0, 1).to_pylist()[0]
    assert row["region"] == "DE"
    assert row["start"] == dt.datetime(2023, 1, 1, 0, tzinfo=UTC)
    assert row["end"] == dt.datetime(2023, 1, 1, 1, tzinfo=UTC)
    assert row["gco2e_per_kwh"] == 140.51
    lca = from_electricitymaps(DATA / "DE-LU_2023_hourly.csv", basis="lifecycle")
    assert lca.slice(0, 1).to_pylist()[0]["gco2e_per_kwh"] == 185.8


def test_electricitymaps_basis_is_explicit() -> None:
    with pytest.raises(cl.InputError, match="basis"):
        from_electricitymaps(DATA / "DE-LU_2023_hourly.csv", basis="average")  # type: ignore[arg-type]


def test_eia930_hours_end_at_their_label_and_blanks_are_holes(tmp_path: Path) -> None:
    f = tmp_path / "CISO_2022_hourly.csv"
    f.write_text(
        "timestamp,WND,SUN,WAT,OIL,NG,COL,NUC,OTH,avg_CI\n"
        "2022-01-01 01:00:00+00:00,1,1,1,1,1,1,1,1,222.5\n"
        "2022-01-01 02:00:00+00:00,,,,,,,,,\n"
        "2022-01-01 03:00:00+00:00,1,1,1,1,1,1,1,1,260.0\n"
    )
    t = from_eia930(f, errata=False)
    rows = t.to_pylist()
    assert [r["region"] for r in rows] == ["CISO", "CISO"]
    assert rows[0]["start"] == dt.datetime(2022, 1, 1, 0, tzinfo=UTC)
    assert rows[0]["end"] == dt.datetime(2022, 1, 1, 1, tzinfo=UTC)
    assert rows[1]["start"] == dt.datetime(2022, 1, 1, 2, tzinfo=UTC)
    assert rows[1]["gco2e_per_kwh"] == 260.0
