"""carbonledger.ingest.slurm: sacct dumps -> allocations.

The inputs are written as sacct writes them (SchedMD/slurm src/sacct/print.c,
src/common/print_fields.c, src/common/parse_time.c): ``--parsable2`` fields
joined by ``|`` with a header of field names, steps with empty User and
Partition, ``Unknown`` for unset times, AllocTRES as ``key=value`` pairs
sorted by name with typed and untyped gres/gpu.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import itertools
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import carbonledger as cl
from carbonledger.exceptions import InputError, SchemaError
from carbonledger.ingest import slurm
from carbonledger.ingest._common import ALLOCATIONS_SCHEMA
from carbonledger.ingest.slurm import expand_hostlist, from_sacct, load_device_map

UTC = dt.UTC
T0 = dt.datetime(2025, 1, 1, tzinfo=UTC)
TS = pa.timestamp("ns", tz="UTC")
REL = 1e-9

HEADER = "JobID|JobIDRaw|JobName|User|Account|Partition|Start|End|State|NodeList|AllocTRES|Elapsed"

# Times are Europe/Berlin wall clock (UTC+1 in January): 01:00:00 is T0.
FLEET = f"""\
{HEADER}
101|101|train-llm|alice|ml-research|gpu|2025-01-01T01:00:00|2025-01-01T02:00:00|COMPLETED|gpu01|billing=16,cpu=16,gres/gpu:a100=2,gres/gpu=2,mem=128G,node=1|01:00:00
101.batch|101.batch|batch||ml-research||2025-01-01T01:00:00|2025-01-01T02:00:00|COMPLETED|gpu01|cpu=16,gres/gpu:a100=2,gres/gpu=2,mem=128G,node=1|01:00:00
101.extern|101.extern|extern||ml-research||2025-01-01T01:00:00|2025-01-01T02:00:00|COMPLETED|gpu01|billing=16,cpu=16,gres/gpu:a100=2,gres/gpu=2,mem=128G,node=1|01:00:00
101.0|101.0|python||ml-research||2025-01-01T01:00:05|2025-01-01T01:59:58|COMPLETED|gpu01|cpu=16,gres/gpu:a100=2,gres/gpu=2,mem=128G,node=1|00:59:53
102|102|finetune|bob|ml-prod|gpu|2025-01-01T01:30:00|2025-01-01T02:30:00|COMPLETED|gpu[01-02]|billing=32,cpu=32,gres/gpu:a100=4,gres/gpu=4,mem=256G,node=2|01:00:00
102.batch|102.batch|batch||ml-prod||2025-01-01T01:30:00|2025-01-01T02:30:00|COMPLETED|gpu01|cpu=16,gres/gpu:a100=2,gres/gpu=2,mem=128G,node=1|01:00:00
103|103|preprocess|carol|ml-research|cpu|2025-01-01T01:10:00|2025-01-01T01:40:00|COMPLETED|cpu07|billing=4,cpu=4,mem=16G,node=1|00:30:00
104|104|queued|dave|ml-research|gpu|Unknown|Unknown|PENDING|None assigned||00:00:00
"""


def one_job(
    nodes: str = "n1",
    tres: str = "gres/gpu=1",
    start: str = "2025-01-01T00:00:00",
    end: str = "2025-01-01T01:00:00",
    name: str = "j",
    jid: str = "9",
) -> str:
    """A dump with one job line, as sacct --parsable2 prints it."""
    fields = [jid, jid, name, "u", "a", "gpu", start, end, "COMPLETED", nodes, tres, "01:00:00"]
    return HEADER + "\n" + "|".join(fields) + "\n"


def write(tmp_path: Path, text: str, name: str = "sacct.txt") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def at(s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


def ns(s: float) -> int:
    return int(at(s).timestamp()) * 1_000_000_000


def rows(t: pa.Table) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = t.to_pylist()
    for r in out:
        r["start"] = int(pa.scalar(r["start"], TS).cast(pa.int64()).as_py())
        r["end"] = int(pa.scalar(r["end"], TS).cast(pa.int64()).as_py())
    return out


# ---------------------------------------------------------------------------
# End to end
# ---------------------------------------------------------------------------

POWER = {f"gpu01/{i}": 100.0 * (i + 1) for i in range(4)} | {f"gpu02/{i}": 200.0 for i in range(4)}


def fleet_inputs() -> dict[str, Any]:
    devs = sorted(POWER)
    ts = list(range(0, 7201, 60))
    power = pa.table(
        {
            "device_id": [d for d in devs for _ in ts],
            "ts": pa.array([at(t) for _ in devs for t in ts], TS),
            "power_w": [POWER[d] for d in devs for _ in ts],
        }
    )
    devices = pa.table(
        {
            "device_id": devs,
            "site_id": ["s1"] * len(devs),
            "embodied_kgco2e": [150.0] * len(devs),
            "installed_at": pa.array([dt.datetime(2024, 1, 1, tzinfo=UTC)] * len(devs), TS),
            "lifetime_years": [4.0] * len(devs),
        }
    )
    sites = pa.table({"site_id": ["s1"], "region": ["R"], "pue": [1.2]})
    intensity = pa.table(
        {"region": ["R"], "start": pa.array([at(-3600)], TS), "gco2e_per_kwh": [300.0]}
    )
    return {"power": power, "devices": devices, "sites": sites, "intensity": intensity}


def test_end_to_end_two_nodes(tmp_path: Path) -> None:
    alloc = from_sacct(write(tmp_path, FLEET), tz="Europe/Berlin", gpus_per_node=4)
    assert alloc.schema.field("start").type == TS
    assert alloc.schema.names[:5] == ALLOCATIONS_SCHEMA.names
    got = rows(alloc)
    # 101: 2 GPUs on a 4-GPU node -> 0.5 of each of gpu01's four GPUs;
    # 102: 4 GPUs over 2 nodes -> 2 per node -> 0.5 of each of 8 GPUs.
    assert [(r["job_id"], r["device_id"], r["share"]) for r in got] == [
        ("101", f"gpu01/{i}", 0.5) for i in range(4)
    ] + [("102", f"gpu0{n}/{i}", 0.5) for n in (1, 2) for i in range(4)]
    assert {r["share_basis"] for r in got} == {"count"}
    assert got[0]["start"] == ns(0) and got[0]["end"] == ns(3600)
    assert got[4]["start"] == ns(1800) and got[4]["end"] == ns(5400)
    assert (got[0]["user"], got[0]["account"], got[0]["partition"], got[0]["job_name"]) == (
        "alice",
        "ml-research",
        "gpu",
        "train-llm",
    )
    assert (got[4]["host"], got[4]["gpu"], got[4]["state"]) == ("gpu01", "0", "COMPLETED")

    r = cl.account(**fleet_inputs(), allocations=alloc, period=(at(0), at(7200)))
    per_job = {
        row["job_id"]: row["energy_kwh"]
        for row in r.allocations.group_by("job_id").agg(pl.col("energy_kwh").sum()).to_dicts()
    }
    # 101: 0.5 x (100+200+300+400) W x 3600 s; 102: 0.5 x (1000 + 4 x 200) W x 3600 s.
    assert per_job["101"] == pytest.approx(0.5 * 1000 * 3600 / 3.6e6, rel=REL)
    assert per_job["102"] == pytest.approx(0.5 * 1800 * 3600 / 3.6e6, rel=REL)
    assert per_job["101"] == pytest.approx(0.5, rel=REL)
    assert per_job["102"] == pytest.approx(0.9, rel=REL)

    # Conservation: allocations + unallocated = device, per device.
    alloc_dev = r.allocations.group_by("device_id").agg(pl.col("energy_kwh").sum())
    by_dev = dict(zip(alloc_dev["device_id"], alloc_dev["energy_kwh"], strict=True))
    unalloc = dict(zip(r.unallocated["device_id"], r.unallocated["energy_kwh"], strict=True))
    total = dict(zip(r.devices["device_id"], r.devices["energy_kwh"], strict=True))
    for dev, p in POWER.items():
        assert total[dev] == pytest.approx(p * 7200 / 3.6e6, rel=REL)
        assert by_dev[dev] + unalloc[dev] == pytest.approx(total[dev], rel=REL)
    # gpu01/3 (400 W): 101 holds 0.5 over [0, 3600), 102 holds 0.5 over [1800, 5400).
    assert by_dev["gpu01/3"] == pytest.approx(400 * (0.5 * 3600 + 0.5 * 3600) / 3.6e6, rel=REL)


# ---------------------------------------------------------------------------
# Hostlists
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "hosts"),
    [
        ("gpu[01-04,07]", ["gpu01", "gpu02", "gpu03", "gpu04", "gpu07"]),
        ("node[1-3]-ib", ["node1-ib", "node2-ib", "node3-ib"]),
        ("a01,b[2-3]", ["a01", "b2", "b3"]),
        ("rack[1-2]n[01-02]", ["rack1n01", "rack1n02", "rack2n01", "rack2n02"]),
        ("n[8-10]", ["n8", "n9", "n10"]),
        ("n[098-101]", ["n098", "n099", "n100", "n101"]),
        ("gpu01", ["gpu01"]),
        ("c[1,3],d[5-6]-ib,e", ["c1", "c3", "d5-ib", "d6-ib", "e"]),
    ],
)
def test_hostlist(expr: str, hosts: list[str]) -> None:
    assert expand_hostlist(expr) == hosts


@pytest.mark.parametrize(
    ("expr", "msg"),
    [
        ("gpu[01-04", r"'\[' without '\]'"),
        ("gpu01]", r"'\]' without '\['"),
        ("gpu[4-1]", "runs backwards"),
        ("gpu[a-b]", "is not N or N-M"),
        ("gpu[1-2[3]]", "nested"),
        ("n[0-99999999]", "over"),
    ],
)
def test_hostlist_errors(expr: str, msg: str) -> None:
    with pytest.raises(InputError, match=msg):
        expand_hostlist(expr)


def test_bad_nodelist_names_line(tmp_path: Path) -> None:
    text = one_job(nodes="gpu[1-", jid="7")
    with pytest.raises(InputError, match=r"sacct.txt:2 \(job 7\): NodeList: hostlist 'gpu\[1-'"):
        from_sacct(write(tmp_path, text), tz="UTC", gpus_per_node=4)


# ---------------------------------------------------------------------------
# Job ids, steps, arrays, heterogeneous jobs, AllocTRES
# ---------------------------------------------------------------------------


def test_arrays_het_and_tres(tmp_path: Path) -> None:
    text = f"""\
{HEADER}
200_4|204|sweep|alice|a|gpu|2025-01-01T00:00:00|2025-01-01T00:10:00|COMPLETED|n1|billing=1,cpu=1,gres/gpu=1,mem=4G,node=1|00:10:00
200_4.batch|204.batch|batch||a||2025-01-01T00:00:00|2025-01-01T00:10:00|COMPLETED|n1|cpu=1,gres/gpu=1,mem=4G,node=1|00:10:00
200_[5-9]|200|sweep|alice|a|gpu|Unknown|Unknown|PENDING|None assigned||00:00:00
300+0|300|het|bob|a|gpu|2025-01-01T00:00:00|2025-01-01T00:20:00|COMPLETED|n2|billing=2,cpu=2,gres/gpu:h100=2,mem=8G,node=1|00:20:00
300+1|301|het|bob|a|gpu|2025-01-01T00:00:00|2025-01-01T00:20:00|COMPLETED|n3|billing=2,cpu=2,gres/gpu=1,gres/gpumem=80G,mem=8G,node=1|00:20:00
400|400|cpu-only|bob|a|cpu|2025-01-01T00:00:00|2025-01-01T00:20:00|COMPLETED|n4|billing=2,cpu=2,gres/shard=2,mem=8G,node=1|00:20:00
401|401|zero|bob|a|gpu|2025-01-01T00:00:00|2025-01-01T00:00:00|FAILED|n4|billing=2,cpu=2,gres/gpu=1,mem=8G,node=1|00:00:00
402|402|never|bob|a|gpu|None|None|CANCELLED by 1000|None assigned|gres/gpu=1|00:00:00
"""
    got = rows(from_sacct(write(tmp_path, text), tz="UTC", gpus_per_node=2))
    jobs = [(r["job_id"], r["device_id"], r["share"]) for r in got]
    assert jobs == [
        ("200_4", "n1/0", 0.5),
        ("200_4", "n1/1", 0.5),
        # Only typed entries: their sum (2 of 2 GPUs).
        ("300+0", "n2/0", 1.0),
        ("300+0", "n2/1", 1.0),
        # gres/gpumem is memory, not a count.
        ("300+1", "n3/0", 0.5),
        ("300+1", "n3/1", 0.5),
    ]


def test_uneven_gpus_over_nodes(tmp_path: Path) -> None:
    """3 GPUs on 2 nodes: 1.5 per node (documented: an even split)."""
    text = one_job(nodes="n[1-2]", tres="gres/gpu=3,node=2")
    got = rows(from_sacct(write(tmp_path, text), tz="UTC", gpus_per_node=4))
    assert len(got) == 8
    assert all(r["share"] == pytest.approx(1.5 / 4) for r in got)


def test_more_gpus_than_node_has(tmp_path: Path) -> None:
    text = one_job(tres="gres/gpu=8,node=1")
    with pytest.raises(InputError, match=r"sacct.txt:2 \(job 9\): 8 GPUs on 1 node.*has 4"):
        from_sacct(write(tmp_path, text), tz="UTC", gpus_per_node=4)


def test_bad_tres_count(tmp_path: Path) -> None:
    text = one_job(tres="gres/gpu=x,node=1")
    with pytest.raises(InputError, match=r"sacct.txt:2 \(job 9\): AllocTRES entry 'gres/gpu=x'"):
        from_sacct(write(tmp_path, text), tz="UTC", gpus_per_node=4)


# ---------------------------------------------------------------------------
# Time: zones, running jobs, until
# ---------------------------------------------------------------------------

RUNNING = f"""\
{HEADER}
500|500|serve|eve|ml-prod|gpu|2025-01-01T01:00:00|Unknown|RUNNING|gpu01|billing=8,cpu=8,gres/gpu=4,mem=64G,node=1|01:12:40
500.batch|500.batch|batch||ml-prod||2025-01-01T01:00:00|Unknown|RUNNING|gpu01|cpu=8,gres/gpu=4,mem=64G,node=1|01:12:40
"""


def test_tz_required(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"sacct: Start/End.*no time zone.*--tz"):
        from_sacct(write(tmp_path, FLEET), tz=None, gpus_per_node=4)
    with pytest.raises(InputError, match="tz='Mars/Olympus' is not a time zone"):
        from_sacct(write(tmp_path, FLEET), tz="Mars/Olympus", gpus_per_node=4)


def test_zone_applied(tmp_path: Path) -> None:
    ny = rows(from_sacct(write(tmp_path, FLEET), tz="America/New_York", gpus_per_node=4))
    assert ny[0]["start"] == ns(6 * 3600)  # 01:00 EST = 06:00Z, 5 h later than Berlin's 00:00Z


def test_running_without_until_warns(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match=r"1 running job\(s\) without an End were dropped \(500\)"):
        t = from_sacct(write(tmp_path, RUNNING), tz="Europe/Berlin", gpus_per_node=4)
    assert t.num_rows == 0
    assert t.schema.names[:6] == [*ALLOCATIONS_SCHEMA.names, "share_basis"]


def test_running_until(tmp_path: Path) -> None:
    p = write(tmp_path, RUNNING)
    a = rows(from_sacct(p, tz="Europe/Berlin", until="2025-01-01T01:30:00Z", gpus_per_node=4))
    b = rows(from_sacct(p, tz="Europe/Berlin", until="2025-01-01T02:30:00", gpus_per_node=4))
    c = rows(from_sacct(p, tz="Europe/Berlin", until=at(5400), gpus_per_node=4))
    assert [r["end"] for r in a] == [ns(5400)] * 4
    assert a == b == c
    assert [r["share"] for r in a] == [1.0] * 4
    with pytest.raises(InputError, match=r"until='yesterday' is not an ISO 8601 time"):
        from_sacct(p, tz="UTC", until="yesterday", gpus_per_node=4)
    with pytest.raises(
        InputError, match=r"job 500\): a running job's Start .* is not before until"
    ):
        from_sacct(p, tz="Europe/Berlin", until="2025-01-01T00:00:00Z", gpus_per_node=4)


def test_bad_time_format(tmp_path: Path) -> None:
    # SLURM_TIME_FORMAT=relative prints "Ystday 14:03".
    text = f"{HEADER}\n9|9|j|u|a|gpu|Ystday 14:03|Ystday 15:03|COMPLETED|n1|gres/gpu=1|01:00:00\n"
    with pytest.raises(
        InputError, match=r"sacct.txt:2 \(job 9\): Start='Ystday 14:03'.*SLURM_TIME_FORMAT"
    ):
        from_sacct(write(tmp_path, text), tz="UTC", gpus_per_node=4)


def test_end_before_start(tmp_path: Path) -> None:
    text = one_job(start="2025-01-01T02:00:00", end="2025-01-01T01:00:00")
    with pytest.raises(InputError, match=r"\(job 9\): End .* is before Start"):
        from_sacct(write(tmp_path, text), tz="UTC", gpus_per_node=4)


def test_overlapping_dumps_count_once(tmp_path: Path) -> None:
    """Daily dumps list a job running over midnight twice: first running
    (End Unknown), then finished. The finished record wins, in either order."""
    day1 = write(tmp_path, RUNNING, "day1.txt")
    day2 = write(
        tmp_path,
        RUNNING.replace("Unknown|RUNNING", "2025-01-01T03:00:00|COMPLETED"),
        "day2.txt",
    )
    for order in ([day1, day2], [day2, day1]):
        got = rows(from_sacct(order, tz="Europe/Berlin", gpus_per_node=4))
        assert [(r["job_id"], r["end"]) for r in got] == [("500", ns(7200))] * 4


# ---------------------------------------------------------------------------
# Layout variants: --format order, --delimiter, -p, -n
# ---------------------------------------------------------------------------


def test_format_order_and_delimiter(tmp_path: Path) -> None:
    base = rows(from_sacct(write(tmp_path, FLEET), tz="Europe/Berlin", gpus_per_node=4))
    cols = HEADER.split("|")
    order = [10, 9, 6, 7, 0, 3, 4, 5, 2, 8, 1, 11]
    lines = [ln.split("|") for ln in FLEET.splitlines()]
    text = "\n".join(";".join(f[i] for i in order) for f in lines) + "\n"
    got = rows(
        from_sacct(
            write(tmp_path, text, "semi.txt"), tz="Europe/Berlin", gpus_per_node=4, delimiter=";"
        )
    )
    assert got == base
    # sacct -p: a trailing delimiter on every line, header included.
    text_p = "".join(ln + "|\n" for ln in FLEET.splitlines())
    assert (
        rows(from_sacct(write(tmp_path, text_p, "p.txt"), tz="Europe/Berlin", gpus_per_node=4))
        == base
    )
    # sacct -n: no header; the columns come from the caller.
    text_n = "".join(ln + "\n" for ln in FLEET.splitlines()[1:])
    got_n = rows(
        from_sacct(
            write(tmp_path, text_n, "n.txt"), tz="Europe/Berlin", gpus_per_node=4, columns=cols
        )
    )
    assert got_n == base
    # sacct -p -n: both.
    text_pn = "".join(ln + "|\n" for ln in FLEET.splitlines()[1:])
    got_pn = rows(
        from_sacct(
            write(tmp_path, text_pn, "pn.txt"), tz="Europe/Berlin", gpus_per_node=4, columns=cols
        )
    )
    assert got_pn == base
    # Lower-case field names (sacct --format=jobid,...) are the same columns.
    lower = FLEET.replace(HEADER, HEADER.lower())
    assert (
        rows(from_sacct(write(tmp_path, lower, "l.txt"), tz="Europe/Berlin", gpus_per_node=4))
        == base
    )


def test_missing_column(tmp_path: Path) -> None:
    text = "JobID|Start|End|State\n1|2025-01-01T00:00:00|2025-01-01T01:00:00|COMPLETED\n"
    with pytest.raises(
        SchemaError, match=r"sacct.txt: sacct output has no nodelist, alloctres column"
    ):
        from_sacct(write(tmp_path, text), tz="UTC", gpus_per_node=4)
    with pytest.raises(SchemaError, match=r"no ';' in it: was sacct run with --delimiter"):
        from_sacct(write(tmp_path, FLEET), tz="UTC", gpus_per_node=4, delimiter=";")


def test_job_name_with_delimiter(tmp_path: Path) -> None:
    text = one_job(name="a|b").replace("|u|a|", "|carol|acct|")
    got = rows(from_sacct(write(tmp_path, text), tz="UTC", gpus_per_node=1))
    assert (got[0]["job_name"], got[0]["user"], got[0]["account"]) == ("a|b", "carol", "acct")
    two_free = (
        "JobID|JobName|Comment|Start|End|NodeList|AllocTRES\n"
        "9|a|b|c|2025-01-01T00:00:00|2025-01-01T01:00:00|n1|gres/gpu=1\n"
    )
    with pytest.raises(InputError, match=r"sacct.txt:2: 8 fields, the header has 7.*--delimiter"):
        from_sacct(write(tmp_path, two_free), tz="UTC", gpus_per_node=1)


def test_gzip_and_empty(tmp_path: Path) -> None:
    gz = tmp_path / "sacct.txt.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write(FLEET)
    assert from_sacct(gz, tz="Europe/Berlin", gpus_per_node=4).num_rows == 12
    assert from_sacct(write(tmp_path, "", "empty.txt"), tz="UTC", gpus_per_node=4).num_rows == 0
    with pytest.raises(InputError, match="sacct: no input files given"):
        from_sacct([], tz="UTC", gpus_per_node=4)


# ---------------------------------------------------------------------------
# Device ids: templates and maps
# ---------------------------------------------------------------------------


def test_device_map_uuid_template(tmp_path: Path) -> None:
    # nvidia-smi --query-gpu=index,uuid --format=csv on each host, a host column added.
    dmap = write(
        tmp_path,
        "host, index, uuid\n"
        "gpu01, 0, GPU-0a\ngpu01, 1, GPU-1a\ngpu01, 2, GPU-2a\ngpu01, 3, GPU-3a\n"
        "gpu02, 0, GPU-0b\ngpu02, 1, GPU-1b\n",
        "map.csv",
    )
    t = rows(
        from_sacct(
            write(tmp_path, FLEET), tz="Europe/Berlin", device_map=dmap, device_id="{host}/{uuid}"
        )
    )
    assert [r["device_id"] for r in t if r["job_id"] == "101"] == [
        f"gpu01/GPU-{i}a" for i in range(4)
    ]
    # gpu02 lists 2 GPUs: 102's 2 GPUs there are the whole node.
    assert [(r["device_id"], r["share"]) for r in t if r["host"] == "gpu02"] == [
        ("gpu02/GPU-0b", 1.0),
        ("gpu02/GPU-1b", 1.0),
    ]
    # A host the map does not list and no gpus_per_node: which GPUs?
    only01 = write(tmp_path, "host,gpu,uuid\ngpu01,0,GPU-0a\ngpu01,1,GPU-1a\n", "m1.csv")
    with pytest.raises(
        InputError, match=r"\(job 102\): only a GPU count is known.*gpu02.*--gpus-per-node"
    ):
        from_sacct(write(tmp_path, FLEET), tz="Europe/Berlin", device_map=only01)
    # {uuid} with gpus_per_node alone: the map has no UUID for gpu02.
    with pytest.raises(InputError, match=r"needs \{uuid\}.*host 'gpu02' GPU 0"):
        from_sacct(
            write(tmp_path, FLEET),
            tz="Europe/Berlin",
            device_map=only01,
            gpus_per_node=4,
            device_id="{host}/{uuid}",
        )


def test_device_map_explicit_ids_and_table(tmp_path: Path) -> None:
    table = pa.table(
        {
            "node": ["n1", "n1"],
            "gpu": [0, 1],
            "device_id": ["rackA/n1/g0", "rackA/n1/g1"],
        }
    )
    text = one_job()
    got = rows(from_sacct(write(tmp_path, text), tz="UTC", device_map=table))
    assert [(r["device_id"], r["share"]) for r in got] == [
        ("rackA/n1/g0", 0.5),
        ("rackA/n1/g1", 0.5),
    ]


def test_device_map_errors(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"m.csv:2: device map row .* has no host"):
        load_device_map(write(tmp_path, "index,uuid\n0,GPU-1\n", "m.csv"))
    with pytest.raises(InputError, match=r"host 'n1' GPU 0 appears twice"):
        load_device_map(write(tmp_path, "host,gpu\nn1,0\nn1,00\n", "m.csv"))
    with pytest.raises(InputError, match=r"m.csv:2: fraction='2'; expected a number in \(0, 1\]"):
        load_device_map(write(tmp_path, "host,gpu,fraction\nn1,0,2\n", "m.csv"))
    with pytest.raises(InputError, match=r"device_id='\{host\}/\{serial\}' uses \{serial\}"):
        from_sacct(write(tmp_path, FLEET), tz="UTC", gpus_per_node=4, device_id="{host}/{serial}")
    with pytest.raises(InputError, match="gpus_per_node=0"):
        from_sacct(write(tmp_path, FLEET), tz="UTC", gpus_per_node=0)


def test_teams(tmp_path: Path) -> None:
    teams = write(tmp_path, "account,team\nml-research,research\n", "teams.csv")
    got = rows(from_sacct(write(tmp_path, FLEET), tz="Europe/Berlin", gpus_per_node=4, teams=teams))
    assert {(r["account"], r["team"]) for r in got} == {
        ("ml-research", "research"),
        ("ml-prod", None),
    }
    got2 = rows(
        from_sacct(
            write(tmp_path, FLEET), tz="Europe/Berlin", gpus_per_node=4, teams={"ml-prod": "prod"}
        )
    )
    assert {(r["account"], r["team"]) for r in got2} == {("ml-research", None), ("ml-prod", "prod")}


# ---------------------------------------------------------------------------
# Properties and the CLI format
# ---------------------------------------------------------------------------


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cuts=st.lists(st.integers(min_value=1, max_value=8), max_size=4))
def test_split_into_files_is_the_same(
    tmp_path_factory: pytest.TempPathFactory, cuts: list[int]
) -> None:
    """Any split of the dump into several files (each with the header) gives
    the same rows."""
    tmp = tmp_path_factory.mktemp("split")
    body = FLEET.splitlines()[1:]
    whole = rows(from_sacct(write(tmp, FLEET), tz="Europe/Berlin", gpus_per_node=4))
    bounds = sorted({0, *cuts, len(body)})
    paths = []
    for k, (a, b) in enumerate(itertools.pairwise(bounds)):
        paths.append(write(tmp, "\n".join([HEADER, *body[a:b]]) + "\n", f"part{k}.txt"))
    assert rows(from_sacct(paths, tz="Europe/Berlin", gpus_per_node=4)) == whole


def test_format_cli(tmp_path: Path) -> None:
    (fmt,) = slurm.FORMATS
    assert (fmt.name, fmt.table) == ("slurm", "allocations")
    p = argparse.ArgumentParser()
    fmt.add_arguments(p)
    args = p.parse_args(
        [str(write(tmp_path, FLEET)), "--tz", "Europe/Berlin", "--gpus-per-node", "4"]
    )
    t = fmt.open(args)
    assert isinstance(t, pa.Table) and t.num_rows == 12
    sample = write(tmp_path, fmt.sample, "sample.txt")
    args = p.parse_args(
        [str(sample), "--tz", "UTC", "--gpus-per-node", "4", "--until", "2026-12-03T00:00:00Z"]
    )
    t = fmt.open(args)
    assert isinstance(t, pa.Table)
    assert sorted(set(t.column("job_id").to_pylist())) == ["4242", "4243"]


def test_output_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows packed into many small Arrow batches come out the same."""
    whole = rows(from_sacct(write(tmp_path, FLEET), tz="Europe/Berlin", gpus_per_node=4))
    monkeypatch.setattr(slurm, "BATCH_ROWS", 5)
    t = from_sacct(write(tmp_path, FLEET), tz="Europe/Berlin", gpus_per_node=4)
    assert t.column("job_id").num_chunks == 3
    assert rows(t) == whole
