"""carbonledger.ingest.kubernetes: pod records + kubelet pod-resources ->
allocations.

Pods are shaped as ``kubectl get pods -A -o json`` prints them (a ``List``
with ``items``; quantities as strings; RFC 3339 UTC times); pod-resources as
the kubelet's ``v1.PodResourcesLister/List`` response (k8s.io/kubelet
pkg/apis/podresources/v1 api.proto field names, or grpcurl's protojson
camelCase), with NVIDIA device-plugin ids: ``GPU-<uuid>``, ``MIG-<uuid>``,
``<uuid>::<n>`` for time-sliced replicas (as dcgm-exporter's
internal/pkg/transformation/kubernetes.go handles them).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

import carbonledger as cl
from carbonledger.exceptions import InputError, SchemaError
from carbonledger.ingest import kubernetes
from carbonledger.ingest.kubernetes import from_kubernetes

UTC = dt.UTC
T0 = dt.datetime(2025, 1, 1, tzinfo=UTC)
TS = pa.timestamp("ns", tz="UTC")
REL = 1e-9


def at(s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


def iso(s: float) -> str:
    return at(s).strftime("%Y-%m-%dT%H:%M:%SZ")


def ns(s: float) -> int:
    return int(at(s).timestamp()) * 1_000_000_000


def pod(
    name: str,
    *,
    node: str | None = "gpu-node-1",
    gpus: int | str | None = 1,
    start: float | None = 0,
    finished: float | None = None,
    phase: str | None = None,
    ns_: str = "ml",
    uid: str | None = None,
    labels: dict[str, str] | None = None,
    resource: str = "nvidia.com/gpu",
    init_gpus: int | None = None,
) -> dict[str, Any]:
    """A Pod as kubectl prints it (the fields that matter plus the usual noise)."""
    limits: dict[str, Any] = {"cpu": "8", "memory": "64Gi"}
    if gpus is not None:
        limits[resource] = str(gpus) if isinstance(gpus, int) else gpus
    if phase is None:
        phase = "Succeeded" if finished is not None else "Running"
    state: dict[str, Any]
    if finished is not None:
        state = {
            "terminated": {
                "containerID": "containerd://4f2b0c",
                "exitCode": 0,
                "finishedAt": iso(finished),
                "reason": "Completed",
                "startedAt": iso((start or 0) + 20),
            }
        }
    else:
        state = {"running": {"startedAt": iso((start or 0) + 20)}}
    p: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "creationTimestamp": iso((start or 0) - 5),
            "labels": labels or {},
            "name": name,
            "namespace": ns_,
            "resourceVersion": "918273",
            "uid": uid or f"uid-{ns_}-{name}",
        },
        "spec": {
            "containers": [
                {
                    "image": "nvcr.io/nvidia/pytorch:24.01-py3",
                    "imagePullPolicy": "IfNotPresent",
                    "name": "main",
                    "resources": {"limits": limits, "requests": dict(limits)},
                }
            ],
            "restartPolicy": "Never",
            "schedulerName": "default-scheduler",
            "tolerations": [
                {"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}
            ],
        },
        "status": {
            "conditions": [{"status": "True", "type": "PodScheduled"}],
            "containerStatuses": [
                {
                    "image": "nvcr.io/nvidia/pytorch:24.01-py3",
                    "name": "main",
                    "ready": finished is None,
                    "restartCount": 0,
                    "state": state,
                }
            ],
            "phase": phase,
            "qosClass": "Guaranteed",
        },
    }
    if node is not None:
        p["spec"]["nodeName"] = node
    if start is not None:
        p["status"]["startTime"] = iso(start)
    if init_gpus is not None:
        p["spec"]["initContainers"] = [
            {"name": "warmup", "resources": {"limits": {resource: str(init_gpus)}}}
        ]
    return p


def pod_list(*pods: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "items": list(pods),
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    }


def resources(entries: list[tuple[str, str, list[str]]], camel: bool = False) -> dict[str, Any]:
    """A pod-resources List response: (namespace, pod, device ids)."""
    pr, rn, di = (
        ("podResources", "resourceName", "deviceIds")
        if camel
        else (
            "pod_resources",
            "resource_name",
            "device_ids",
        )
    )
    out = []
    for ns_, name, ids in entries:
        res = (
            "nvidia.com/gpu"
            if not ids or not ids[0].startswith("MIG-")
            else "nvidia.com/mig-1g.10gb"
        )
        out.append(
            {
                "name": name,
                "namespace": ns_,
                "containers": [
                    {
                        "name": "main",
                        "devices": [{rn: res, di: ids, "topology": {"nodes": [{"ID": 0}]}}]
                        if ids
                        else [],
                        "cpu_ids": [2, 3],
                    }
                ],
            }
        )
    return {pr: out}


UUIDS = {
    "gpu-node-1": [f"GPU-a{i}" for i in range(4)],
    "gpu-node-2": [f"GPU-b{i}" for i in range(4)],
}
POWER = {f"gpu-node-1/GPU-a{i}": 100.0 * (i + 1) for i in range(4)} | {
    f"gpu-node-2/GPU-b{i}": 250.0 for i in range(4)
}


def device_map(tmp_path: Path) -> Path:
    p = tmp_path / "gpus.csv"
    p.write_text(
        "host,index,uuid\n"
        + "".join(f"{n},{i},{u}\n" for n, us in UUIDS.items() for i, u in enumerate(us))
    )
    return p


def write_json(tmp_path: Path, name: str, doc: Any) -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(doc, indent=4))
    return p


def rows(t: pa.Table) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = t.to_pylist()
    for r in out:
        r["start"] = int(pa.scalar(r["start"], TS).cast(pa.int64()).as_py())
        r["end"] = int(pa.scalar(r["end"], TS).cast(pa.int64()).as_py())
    return out


def key(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["job_id"], r["device_id"], r["start"], r["end"], r["share"], r["share_basis"])


FLEET_PODS = pod_list(
    pod(
        "train-0",
        gpus=2,
        finished=3600,
        labels={"app.kubernetes.io/team": "vision", "ml.example.com/phase": "training"},
    ),
    pod("train-1", node="gpu-node-2", gpus=2, start=1800, labels={"app.kubernetes.io/team": "nlp"}),
    pod("infer", gpus=1, finished=3600, ns_="serving"),
    pod("infer-2", gpus=1, start=1800, finished=5400, ns_="serving"),
    pod("coredns-5d78c9869d-x7z2q", gpus=None, ns_="kube-system"),
    pod("queued", node=None, gpus=4, start=None, phase="Pending"),
)
FLEET_RESOURCES = [
    resources(
        [
            ("ml", "train-0", ["GPU-a0", "GPU-a1"]),
            ("serving", "infer", ["GPU-a2::0"]),
            ("serving", "infer-2", ["GPU-a2::1"]),
            ("kube-system", "coredns-5d78c9869d-x7z2q", []),
        ]
    ),
    resources([]),  # gpu-node-2: train-1 is not listed (e.g. the file is stale)
]


def fleet_inputs() -> dict[str, Any]:
    devs = sorted(POWER)
    ts = list(range(0, 7201, 60))
    return {
        "power": pa.table(
            {
                "device_id": [d for d in devs for _ in ts],
                "ts": pa.array([at(t) for _ in devs for t in ts], TS),
                "power_w": [POWER[d] for d in devs for _ in ts],
            }
        ),
        "devices": pa.table(
            {
                "device_id": devs,
                "site_id": ["s1"] * len(devs),
                "embodied_kgco2e": [150.0] * len(devs),
                "installed_at": pa.array([dt.datetime(2024, 1, 1, tzinfo=UTC)] * len(devs), TS),
                "lifetime_years": [4.0] * len(devs),
            }
        ),
        "sites": pa.table({"site_id": ["s1"], "region": ["R"], "pue": [1.2]}),
        "intensity": pa.table(
            {"region": ["R"], "start": pa.array([at(-3600)], TS), "gco2e_per_kwh": [300.0]}
        ),
    }


def test_end_to_end(tmp_path: Path) -> None:
    pods = write_json(tmp_path, "pods.json", FLEET_PODS)
    prs = [write_json(tmp_path, f"pr-{i}.json", d) for i, d in enumerate(FLEET_RESOURCES)]
    alloc = from_kubernetes(
        pods,
        prs,
        until=iso(7200),
        labels={"team": "app.kubernetes.io/team", "phase": "ml.example.com/phase"},
        device_map=device_map(tmp_path),
    )
    got = rows(alloc)
    assert sorted(key(r) for r in got) == sorted(
        [
            ("ml/train-0", "gpu-node-1/GPU-a0", ns(0), ns(3600), 1.0, "index"),
            ("ml/train-0", "gpu-node-1/GPU-a1", ns(0), ns(3600), 1.0, "index"),
            # No pod-resources entry: 2 GPUs of node-2's 4 -> 1/2 of each.
            *(
                ("ml/train-1", f"gpu-node-2/GPU-b{i}", ns(1800), ns(7200), 0.5, "count")
                for i in range(4)
            ),
            # Time-sliced replicas of GPU-a2: alone -> all, together -> 1/2.
            ("serving/infer", "gpu-node-1/GPU-a2", ns(0), ns(1800), 1.0, "index"),
            ("serving/infer", "gpu-node-1/GPU-a2", ns(1800), ns(3600), 0.5, "index"),
            ("serving/infer-2", "gpu-node-1/GPU-a2", ns(1800), ns(3600), 0.5, "index"),
            ("serving/infer-2", "gpu-node-1/GPU-a2", ns(3600), ns(5400), 1.0, "index"),
        ]
    )
    t0 = next(r for r in got if r["job_id"] == "ml/train-0")
    assert (t0["namespace"], t0["pod"], t0["node"], t0["pod_phase"]) == (
        "ml",
        "train-0",
        "gpu-node-1",
        "Succeeded",
    )
    assert (t0["team"], t0["phase"], t0["pod_uid"]) == ("vision", "training", "uid-ml-train-0")
    t1 = next(r for r in got if r["job_id"] == "ml/train-1")
    assert (t1["team"], t1["phase"], t1["pod_phase"]) == ("nlp", None, "Running")

    r = cl.account(**fleet_inputs(), allocations=alloc, period=(at(0), at(7200)))
    per_job = {
        row["job_id"]: row["energy_kwh"]
        for row in r.allocations.group_by("job_id").agg(pl.col("energy_kwh").sum()).to_dicts()
    }
    assert per_job["ml/train-0"] == pytest.approx((100 + 200) * 3600 / 3.6e6, rel=REL)
    assert per_job["ml/train-1"] == pytest.approx(0.5 * 1000 * 5400 / 3.6e6, rel=REL)
    assert per_job["serving/infer"] == pytest.approx(300 * 2700 / 3.6e6, rel=REL)
    assert per_job["serving/infer-2"] == pytest.approx(300 * 2700 / 3.6e6, rel=REL)
    per_team = r.summary(by="team").to_dicts()
    assert {d["team"]: d["energy_kwh"] for d in per_team}["vision"] == pytest.approx(0.3, rel=REL)
    alloc_dev = r.allocations.group_by("device_id").agg(pl.col("energy_kwh").sum())
    by_dev = dict(zip(alloc_dev["device_id"], alloc_dev["energy_kwh"], strict=True))
    unalloc = dict(zip(r.unallocated["device_id"], r.unallocated["energy_kwh"], strict=True))
    total = dict(zip(r.devices["device_id"], r.devices["energy_kwh"], strict=True))
    for dev, p in POWER.items():
        assert total[dev] == pytest.approx(p * 7200 / 3.6e6, rel=REL)
        assert by_dev.get(dev, 0.0) + unalloc[dev] == pytest.approx(total[dev], rel=REL)


def test_grpcurl_camel_case_and_dicts(tmp_path: Path) -> None:
    snake = from_kubernetes(
        FLEET_PODS, FLEET_RESOURCES, until=iso(7200), device_map=device_map(tmp_path)
    )
    camel_docs = [
        resources(
            [
                ("ml", "train-0", ["GPU-a0", "GPU-a1"]),
                ("serving", "infer", ["GPU-a2::0"]),
                ("serving", "infer-2", ["GPU-a2::1"]),
            ],
            camel=True,
        )
    ]
    camel = from_kubernetes(
        [FLEET_PODS], camel_docs, until=iso(7200), device_map=device_map(tmp_path)
    )
    assert sorted(key(r) for r in rows(camel)) == sorted(key(r) for r in rows(snake))


def test_running_without_until_warns() -> None:
    pods = pod_list(pod("a", finished=100), pod("b", start=50))
    prs = resources([("ml", "a", ["GPU-a0"]), ("ml", "b", ["GPU-a1"])])
    with pytest.warns(UserWarning, match=r"1 running pod\(s\) with GPUs were dropped \(ml/b\)"):
        t = from_kubernetes(pods, prs)
    assert [r["job_id"] for r in rows(t)] == ["ml/a"]
    with pytest.raises(
        SchemaError, match=r"kubernetes: until=2025-01-01 02:00:00 has no UTC offset"
    ):
        from_kubernetes(pods, prs, until="2025-01-01 02:00:00")
    with pytest.raises(InputError, match=r"pod ml/b: status.startTime is not before until"):
        from_kubernetes(pods, prs, until=iso(10))


def test_failed_without_finished_at_warns() -> None:
    evicted = pod("evicted", phase="Failed")
    evicted["status"]["containerStatuses"] = []
    with pytest.warns(
        UserWarning, match=r"1 finished pod\(s\) with GPUs have no container finishedAt"
    ):
        t = from_kubernetes(pod_list(evicted), resources([("ml", "evicted", ["GPU-a0"])]))
    assert t.num_rows == 0


def test_mig(tmp_path: Path) -> None:
    mig = "MIG-2ce7a541-c516-5dbc-a76e-26cc100d9b55"
    pods = pod_list(pod("m", gpus=1, finished=600, resource="nvidia.com/mig-1g.10gb"))
    got = rows(from_kubernetes(pods, resources([("ml", "m", [mig])])))
    assert [key(r) for r in got] == [("ml/m", f"gpu-node-1/{mig}", ns(0), ns(600), 1.0, "index")]
    dmap = tmp_path / "mig.csv"
    dmap.write_text(f"host,uuid,device_id,fraction\ngpu-node-1,{mig},gpu-node-1/GPU-a3,0.142857\n")
    got = rows(from_kubernetes(pods, resources([("ml", "m", [mig])]), device_map=dmap))
    assert [(r["device_id"], r["share"]) for r in got] == [("gpu-node-1/GPU-a3", 0.142857)]
    with pytest.warns(UserWarning, match=r"1 pod\(s\) ask for MIG devices \(ml/m\)"):
        assert from_kubernetes(pods).num_rows == 0


def test_init_containers_and_dedupe() -> None:
    """Effective request = max(sum of app containers, largest init
    container); an init container's devices are the app's, counted once."""
    p = pod("i", gpus=2, finished=600, init_gpus=1)
    p2 = pod("j", gpus=1, finished=600, init_gpus=4, node="n4")
    pr = resources([("ml", "i", ["GPU-a0", "GPU-a1"])])
    pr["pod_resources"][0]["containers"].append(
        {
            "name": "warmup",
            "devices": [{"resource_name": "nvidia.com/gpu", "device_ids": ["GPU-a0"]}],
        }
    )
    dmap = pa.table({"host": ["n4"] * 8, "uuid": [f"GPU-n{i}" for i in range(8)]})
    got = rows(from_kubernetes(pod_list(p, p2), pr, device_map=dmap))
    assert sorted((r["job_id"], r["device_id"], r["share"]) for r in got) == [
        ("ml/i", "gpu-node-1/GPU-a0", 1.0),
        ("ml/i", "gpu-node-1/GPU-a1", 1.0),
        *(("ml/j", f"n4/GPU-n{i}", 0.5) for i in range(8)),
    ]


def test_count_basis_needs_device_map() -> None:
    pods = pod_list(pod("c", gpus=2, finished=600))
    with pytest.raises(InputError, match=r"pod ml/c: only a GPU count is known.*--device-map"):
        from_kubernetes(pods)
    dmap = pa.table({"node": ["gpu-node-1"], "uuid": ["GPU-a0"]})
    with pytest.raises(InputError, match=r"pod ml/c: asks for 2 GPUs, but node 'gpu-node-1' has 1"):
        from_kubernetes(pods, device_map=dmap)


def test_snapshots_and_recurring_names() -> None:
    """The same pod in two pod lists counts once (the finished record wins);
    a re-created pod of the same name gets the pod-resources ids only if it
    is the one running."""
    early = pod_list(pod("w", start=0))
    late = pod_list(pod("w", finished=900), pod("w", uid="uid-new", start=1000))
    pr = resources([("ml", "w", ["GPU-a3"])])
    dmap = pa.table({"host": ["gpu-node-1"] * 4, "uuid": UUIDS["gpu-node-1"]})
    got = rows(from_kubernetes([early, late], pr, until=iso(1200), device_map=dmap, job_id="{uid}"))
    assert sorted(key(r) for r in got) == sorted(
        [
            # The old pod: finished; its GPUs are no longer listed -> by count.
            *(
                ("uid-ml-w", f"gpu-node-1/GPU-a{i}", ns(0), ns(900), 0.25, "count")
                for i in range(4)
            ),
            ("uid-new", "gpu-node-1/GPU-a3", ns(1000), ns(1200), 1.0, "index"),
        ]
    )


def test_input_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "List", "items": [\n  {"kind": "Pod",}\n]}')
    with pytest.raises(InputError, match=r"bad.json:2:\d+: not JSON .*kubectl get pods -A -o json"):
        from_kubernetes(bad)
    with pytest.raises(
        SchemaError, match=r"pods\[0\]: kind='Node' without items; expected a List of Pods"
    ):
        from_kubernetes({"kind": "Node"})
    with pytest.raises(
        InputError, match=r"pod ml/q container 'main': resources.limits\['nvidia.com/gpu'\]='1k'"
    ):
        from_kubernetes(pod_list(pod("q", gpus="1k", finished=60)))
    with pytest.raises(
        InputError, match=r"pod ml/t: status.startTime='yesterday'; expected an RFC 3339"
    ):
        p = pod("t", finished=60)
        p["status"]["startTime"] = "yesterday"
        from_kubernetes(pod_list(p))
    with pytest.raises(
        SchemaError, match=r"pod_resources\[0\]: no pod_resources \(or podResources\)"
    ):
        from_kubernetes(pod_list(pod("a", finished=60)), {"pods": []})
    with pytest.raises(
        InputError, match=r"labels: column 'pod' is one carbonledger already writes"
    ):
        from_kubernetes(FLEET_PODS, labels=["pod=app"])
    with pytest.raises(InputError, match=r"job_id='\{name\}' uses \{name\}"):
        from_kubernetes(FLEET_PODS, job_id="{name}")
    with pytest.raises(InputError, match=r"pod ml/e: finishedAt is before status.startTime"):
        from_kubernetes(
            pod_list(pod("e", start=100, finished=50)), resources([("ml", "e", ["GPU-a0"])])
        )


def test_format_cli(tmp_path: Path) -> None:
    (fmt,) = kubernetes.FORMATS
    assert (fmt.name, fmt.table) == ("kubernetes", "allocations")
    p = argparse.ArgumentParser()
    fmt.add_arguments(p)
    sample = tmp_path / "pods.json"
    sample.write_text(fmt.sample)
    json.loads(fmt.sample)  # the sample is real JSON
    prs = write_json(tmp_path, "pr.json", resources([("ml", "train-0", ["GPU-x0", "GPU-x1"])]))
    args = p.parse_args(
        [str(sample), "--pod-resources", str(prs), "--label", "team=app.kubernetes.io/team"]
    )
    t = fmt.open(args)
    assert isinstance(t, pa.Table)
    got = t.to_pylist()
    assert [(r["job_id"], r["device_id"], r["team"]) for r in got] == [
        ("ml/train-0", "gpu-node-1/GPU-x0", "vision"),
        ("ml/train-0", "gpu-node-1/GPU-x1", "vision"),
    ]
