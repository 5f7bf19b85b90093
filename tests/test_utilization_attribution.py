"""attribution="utilization" (issue 11): on time-sliced GPUs the energy up
to the device's idle power (and embodied carbon) goes by share, the energy
above it by each allocation's utilization. Hand-computed cases, errors,
and conservation as a property."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from conftest import allocations_table, at, devices_table, intensity_table, power_table, sites_table
from hypothesis import given, settings
from hypothesis import strategies as st

import carbonledger as cl

REL = 1e-12
KWH = 3.6e6


def run(jobs: list[tuple[str, float, float, float, float]], **kw: Any) -> cl.Report:
    """g0 at 250 W over [0, 10), idle power 50 W; jobs (id, start, end,
    share, utilization)."""
    allocs = allocations_table(
        [(j, "g0", s, e, share) for j, s, e, share, _ in jobs],
        utilization=[u for *_, u in jobs],
    )
    args: dict[str, Any] = {
        "power": power_table([("g0", 0, 250), ("g0", 10, 250)]),
        "devices": devices_table(idle_power_w=[50.0]),
        "sites": sites_table(),
        "intensity": intensity_table([(0, None, 400)]),
        "allocations": allocs,
        "period": (at(0), at(10)),
        "attribution": "utilization",
    }
    args.update(kw)
    return cl.account(**args)


def energy_j(r: cl.Report) -> list[float]:
    return [e * KWH for e in r.allocations["energy_kwh"].to_list()]


def test_dynamic_energy_follows_utilization() -> None:
    r = run([("A", 0, 10, 0.5, 0.6), ("B", 0, 10, 0.5, 0.2)])
    # Static 50 W x 10 s = 500 J by share; dynamic 2000 J as 0.6 : 0.2.
    a, b = energy_j(r)
    assert a == pytest.approx(250 + 1500, rel=REL)
    assert b == pytest.approx(250 + 500, rel=REL)
    assert r.unallocated["energy_kwh"][0] == pytest.approx(0, abs=1e-15)
    # Operational carbon follows energy; embodied follows share.
    ops = r.allocations["operational_kgco2e"].to_list()
    assert ops[0] == pytest.approx(1750 * 1.5 * 400 / 3.6e9, rel=REL)
    emb = r.allocations["embodied_kgco2e"].to_list()
    assert emb[0] == pytest.approx(emb[1], rel=REL)


def test_leftover_share_keeps_only_static_energy() -> None:
    r = run([("A", 0, 10, 0.5, 0.4)])
    # The unallocated half of the GPU drew no dynamic power.
    (a,) = energy_j(r)
    assert a == pytest.approx(250 + 2000, rel=REL)
    assert r.unallocated["energy_kwh"][0] * KWH == pytest.approx(250, rel=REL)


def test_zero_utilizations_fall_back_to_share() -> None:
    r = run([("A", 0, 10, 0.5, 0.0), ("B", 0, 10, 0.5, 0.0)])
    assert energy_j(r) == [pytest.approx(1250, rel=REL)] * 2


def test_below_idle_power_is_all_static() -> None:
    r = run(
        [("A", 0, 10, 0.5, 0.9), ("B", 0, 10, 0.5, 0.1)],
        power=power_table([("g0", 0, 30), ("g0", 10, 30)]),
    )
    assert energy_j(r) == [pytest.approx(150, rel=REL)] * 2


def test_share_attribution_ignores_utilization() -> None:
    r = run([("A", 0, 10, 0.5, 0.6), ("B", 0, 10, 0.5, 0.2)], attribution="share")
    assert energy_j(r) == [pytest.approx(1250, rel=REL)] * 2


def test_requires_utilization_and_idle_power() -> None:
    with pytest.raises(cl.InputError, match=r"'utilization'.*between 0 and 1"):
        run([("A", 0, 10, 0.5, 1.5)])
    with pytest.raises(cl.InputError, match=r"idle_power_w.*g0.*attribution"):
        run([("A", 0, 10, 0.5, 0.5)], devices=devices_table())
    no_column = allocations_table([("A", "g0", 0, 10, 0.5)])
    with pytest.raises(cl.SchemaError, match="utilization"):
        run([("A", 0, 10, 0.5, 0.5)], allocations=no_column)
    with pytest.raises(cl.InputError, match="attribution"):
        run([("A", 0, 10, 0.5, 0.5)], attribution="usage")


@settings(max_examples=60, deadline=None)
@given(
    jobs=st.lists(
        st.tuples(
            st.integers(0, 9),
            st.integers(1, 10),
            st.sampled_from([0.2, 0.25, 0.5]),
            st.floats(0, 1),
        ),
        min_size=1,
        max_size=4,
    ),
    powers=st.lists(st.floats(0, 700), min_size=11, max_size=11),
)
def test_conservation(jobs: list[tuple[int, int, float, float]], powers: list[float]) -> None:
    rows = [(f"j{i}", float(s), float(s + d), sh, u) for i, (s, d, sh, u) in enumerate(jobs)]
    power = power_table([("g0", t, powers[t]) for t in range(11)])
    r = run(rows, power=power, overlap="normalize")
    shared = run(rows, power=power, overlap="normalize", attribution="share")
    for col in ("energy_kwh", "operational_kgco2e", "total_kgco2e"):
        total = float(r.allocations[col].sum()) + float(r.unallocated[col][0])
        assert total == pytest.approx(r.devices[col][0], rel=1e-9, abs=1e-15)
    # Embodied carbon and the devices' rows do not depend on the rule.
    assert r.allocations["embodied_kgco2e"].to_list() == pytest.approx(
        shared.allocations["embodied_kgco2e"].to_list(), rel=1e-12
    )
    assert r.devices.equals(shared.devices)


def test_utilization_column_is_echoed() -> None:
    r = run([("A", 0, 10, 0.5, 0.6)])
    assert r.allocations["utilization"].to_list() == [0.6]
    assert isinstance(r.to_arrow("allocations"), pa.Table)
