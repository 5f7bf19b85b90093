"""SPEC section 12, to 1e-12."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import at

import carbonledger as cl

REL = 1e-12


def test_allocation_a(spec12: dict[str, Any]) -> None:
    r = cl.account(**spec12)
    a = r.allocations.row(0, named=True)
    assert a["job_id"] == "A" and a["phase"] == "training"
    assert a["energy_kwh"] == pytest.approx(4250 / 3.6e6, rel=REL)
    assert a["facility_energy_kwh"] == pytest.approx(1.5 * 4250 / 3.6e6, rel=REL)
    assert a["operational_kgco2e"] == pytest.approx(1 / 1920, rel=REL)
    assert a["operational_market_kgco2e"] == pytest.approx(1 / 2560, rel=REL)
    assert a["embodied_kgco2e"] == pytest.approx(3000 / 126_230_400, rel=REL)
    assert a["total_kgco2e"] == pytest.approx(1 / 1920 + 3000 / 126_230_400, rel=REL)
    assert a["duration_s"] == pytest.approx(20, rel=REL)
    assert a["uncovered_s"] == pytest.approx(5, rel=REL)


def test_unallocated_g0(spec12: dict[str, Any]) -> None:
    r = cl.account(**spec12)
    u = r.unallocated.row(0, named=True)
    assert u["device_id"] == "g0"
    assert u["energy_kwh"] == pytest.approx(750 / 3.6e6, rel=REL)
    assert u["operational_kgco2e"] == pytest.approx(1 / 8000, rel=REL)
    assert u["operational_market_kgco2e"] == pytest.approx(0.75 / 8000, rel=REL)
    assert u["embodied_kgco2e"] == pytest.approx(3000 / 126_230_400, rel=REL)
    assert u["duration_s"] == pytest.approx(20, rel=REL)
    assert u["uncovered_s"] == pytest.approx(15, rel=REL)


def test_device_row(spec12: dict[str, Any]) -> None:
    r = cl.account(**spec12)
    d = r.devices.row(0, named=True)
    assert (d["samples"], d["invalid_samples"], d["duplicate_samples"]) == (4, 0, 0)
    assert d["gaps"] == 1
    assert d["uncovered_s"] == pytest.approx(20, rel=REL)
    assert d["energy_kwh"] == pytest.approx(5000 / 3.6e6, rel=REL)
    assert d["embodied_kgco2e"] == pytest.approx(6000 / 126_230_400, rel=REL)


def test_grid_rows(spec12: dict[str, Any]) -> None:
    """The fleet by intensity interval: [0, 15) holds 3500 J (750 + 2000 +
    1500), [15, 40) holds 1500 J and the 20 uncovered seconds; the second
    interval ends at the period's end, not at 60."""
    r = cl.account(**spec12)
    rows = r.grid.to_dicts()
    assert [(g["region"], g["gco2e_per_kwh"]) for g in rows] == [("R", 400.0), ("R", 100.0)]
    first, second = rows
    assert (first["end"] - first["start"]).total_seconds() == 15
    assert (second["end"] - second["start"]).total_seconds() == 25
    assert first["energy_kwh"] == pytest.approx(3500 / 3.6e6, rel=REL)
    assert first["operational_kgco2e"] == pytest.approx(7 / 12000, rel=REL)
    assert first["operational_market_kgco2e"] == pytest.approx(0.75 * 7 / 12000, rel=REL)
    assert first["embodied_kgco2e"] == pytest.approx(150 * 15 / 126_230_400, rel=REL)
    assert (first["duration_s"], first["uncovered_s"]) == (15, 0)
    assert second["energy_kwh"] == pytest.approx(1500 / 3.6e6, rel=REL)
    assert second["operational_kgco2e"] == pytest.approx(1 / 16000, rel=REL)
    assert (second["duration_s"], second["uncovered_s"]) == (25, 20)
    totals = r.totals()
    for c in totals:
        assert first[c] + second[c] == pytest.approx(totals[c], rel=REL)


def test_settled_period_is_returned(spec12: dict[str, Any]) -> None:
    # Explicit: the one asked for; default: first to last valid sample.
    def ns(s: float) -> int:
        return int(at(s).timestamp()) * 1_000_000_000

    r = cl.account(**{**spec12, "period": (at(0), at(60))})
    assert r.period_ns == (ns(0), ns(60))
    assert r.period == (at(0), at(60))
    r = cl.account(**{**spec12, "period": None})
    assert r.period_ns == (ns(0), ns(40))
