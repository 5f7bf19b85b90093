"""Kubernetes pod records (and the kubelet's GPU assignments) to the
canonical ``allocations`` table.

Inputs, as the tools write them:

- ``kubectl get pods -A -o json``: a ``List`` (``kind: List``, ``items``) of
  Pods: ``metadata.{namespace,name,uid,labels}``, ``spec.nodeName``,
  ``spec.containers[].resources.limits["nvidia.com/gpu"]`` (a quantity
  string, ``"1"``), ``status.phase``, ``status.startTime`` (RFC 3339 UTC,
  when the kubelet admitted the pod, which is when the device plugin's
  devices are allocated) and ``status.containerStatuses[].state.terminated.
  finishedAt``.
- the kubelet pod-resources API (``k8s.io/kubelet/pkg/apis/podresources/v1``,
  ``List`` on ``/var/lib/kubelet/pod-resources/kubelet.sock``, what
  dcgm-exporter's ``internal/pkg/transformation/kubernetes.go`` reads) as
  JSON: ``pod_resources[].{name, namespace, containers[].devices[].
  {resource_name, device_ids}}`` (protobuf field names; the protojson
  camelCase ``podResources``/``resourceName``/``deviceIds`` that grpcurl
  prints is read too). NVIDIA's device plugin reports GPU UUIDs
  (``GPU-...``), MIG UUIDs (``MIG-...``) for ``nvidia.com/mig-*`` resources,
  and ``<uuid>::<n>`` for time-sliced replicas of one GPU.

Both are JSON documents of the cluster's current pods: a few MB even for a
large cluster, so each is loaded whole.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import json
import os
import string
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import pyarrow as pa

from ..exceptions import InputError, SchemaError
from ._common import Format, open_text, to_ns
from .slurm import (
    BASIS_COUNT,
    BASIS_INDEX,
    AllocationRows,
    DeviceMap,
    DeviceMapSource,
    DeviceTemplate,
    Resolver,
    Until,
    _as_device_map,
    add_device_arguments,
    examples,
    parse_until,
)

__all__ = ["FORMATS", "from_kubernetes"]

_JsonItem: TypeAlias = "str | os.PathLike[str] | Mapping[str, Any]"
JsonSource: TypeAlias = "_JsonItem | Iterable[_JsonItem]"

GPU_RESOURCE = "nvidia.com/gpu"
MIG_PREFIX = "nvidia.com/mig-"
_FIXED = ("namespace", "pod", "pod_uid", "node", "pod_phase")
_TERMINAL = frozenset({"Succeeded", "Failed"})


def _docs(src: JsonSource, what: str) -> list[tuple[str, Any]]:
    """Parsed JSON documents with a name for messages."""
    items: list[str | os.PathLike[str] | Mapping[str, Any]]
    if isinstance(src, (str, os.PathLike, Mapping)):
        items = [src]
    else:
        items = list(src)
    out: list[tuple[str, Any]] = []
    for i, item in enumerate(items):
        if isinstance(item, Mapping):
            out.append((f"{what}[{i}]", item))
            continue
        path = os.fspath(item)
        with open_text(path) as f:
            try:
                out.append((path, json.load(f)))
            except json.JSONDecodeError as e:
                raise InputError(
                    f"{path}:{e.lineno}:{e.colno}: not JSON ({e.msg}); expected the output of "
                    + (
                        "kubectl get pods -A -o json"
                        if what == "pods"
                        else "the pod-resources List call as JSON"
                    )
                ) from None
    return out


def _obj(value: Any, where: str, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SchemaError(f"{where}: {field} is {type(value).__name__}; expected an object")
    return value


def _list(value: Any, where: str, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SchemaError(f"{where}: {field} is {type(value).__name__}; expected a list")
    return value


def _time(value: Any, where: str, field: str) -> int:
    try:
        t = dt.datetime.fromisoformat(str(value))
    except ValueError:
        t = None
    if t is None or t.tzinfo is None:
        raise InputError(
            f"{where}: {field}={value!r}; expected an RFC 3339 time such as '2026-12-02T14:03:05Z'"
        )
    return to_ns(t)


def _count(value: Any, where: str, field: str) -> int:
    """A device quantity: a whole number, as a string (``"2"``) or number."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, int):
        n = value
    elif isinstance(value, str) and value.strip().isdigit():
        n = int(value.strip())
    else:
        raise InputError(f"{where}: {field}={value!r}; expected a whole number of devices")
    return n


@dataclass
class _Pod:
    namespace: str
    name: str
    uid: str
    node: str
    phase: str | None
    start: int
    end: int | None
    terminal: bool
    gpus: int
    mig: int
    labels: Mapping[str, Any]
    where: str


def _resources(container: Mapping[str, Any], names: frozenset[str], where: str) -> tuple[int, int]:
    """(GPUs, MIG devices) a container asks for: its limits (extended
    resources must set them), else its requests."""
    res = _obj(container.get("resources"), where, "resources")
    limits = _obj(res.get("limits"), where, "resources.limits")
    requests = _obj(res.get("requests"), where, "resources.requests")
    gpus = mig = 0
    for key in set(limits) | set(requests):
        if key in names or key.startswith(MIG_PREFIX):
            raw = limits.get(key, requests.get(key))
            n = _count(raw, where, f"resources.limits[{key!r}]")
            if key in names:
                gpus += n
            else:
                mig += n
    return gpus, mig


def _pod(item: Mapping[str, Any], src: str, i: int, names: frozenset[str]) -> _Pod | None:
    meta = _obj(item.get("metadata"), f"{src} items[{i}]", "metadata")
    ns = str(meta.get("namespace") or "default")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise SchemaError(f"{src} items[{i}]: metadata.name is missing; expected a Pod")
    where = f"{src} pod {ns}/{name}"
    spec = _obj(item.get("spec"), where, "spec")
    status = _obj(item.get("status"), where, "status")
    node = spec.get("nodeName")
    start_raw = status.get("startTime")
    if not node or start_raw is None:
        return None  # never scheduled or never admitted by a kubelet: held nothing
    # Effective request (Kubernetes' rule): the larger of the app
    # containers' sum and the largest init container (init containers run
    # one at a time and their devices are reused by the app containers).
    app = [
        _resources(_obj(c, where, "containers[]"), names, f"{where} container {c.get('name')!r}")
        for c in _list(spec.get("containers"), where, "spec.containers")
    ]
    init = [
        _resources(_obj(c, where, "initContainers[]"), names, f"{where} init {c.get('name')!r}")
        for c in _list(spec.get("initContainers"), where, "spec.initContainers")
    ]
    gpus = max(sum(g for g, _ in app), max((g for g, _ in init), default=0))
    mig = max(sum(m for _, m in app), max((m for _, m in init), default=0))
    phase = status.get("phase")
    phase = str(phase) if phase is not None else None
    finished: list[int] = []
    for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for cs in _list(status.get(key), where, f"status.{key}"):
            state = _obj(_obj(cs, where, key).get("state"), where, f"{key}[].state")
            term = _obj(state.get("terminated"), where, f"{key}[].state.terminated")
            if term.get("finishedAt") is not None:
                finished.append(_time(term["finishedAt"], where, "finishedAt"))
    terminal = phase in _TERMINAL
    return _Pod(
        namespace=ns,
        name=name,
        uid=str(meta.get("uid") or f"{ns}/{name}"),
        node=str(node),
        phase=phase,
        start=_time(start_raw, where, "status.startTime"),
        end=max(finished) if terminal and finished else None,
        terminal=terminal,
        gpus=gpus,
        mig=mig,
        labels=_obj(meta.get("labels"), where, "metadata.labels"),
        where=where,
    )


def _pick(doc: Mapping[str, Any], *keys: str) -> Any:
    for k in keys:
        if k in doc:
            return doc[k]
    return None


def _assignments(
    sources: list[tuple[str, Any]], names: frozenset[str]
) -> dict[tuple[str, str], list[str]]:
    """Device ids per (namespace, pod) from pod-resources ``List`` responses
    (several nodes, several times): every NVIDIA GPU or MIG id, once."""
    out: dict[tuple[str, str], dict[str, None]] = {}
    for src, doc in sources:
        top = _obj(doc, src, "the pod-resources response")
        pods = _pick(top, "pod_resources", "podResources")
        if pods is None and top:
            raise SchemaError(
                f"{src}: no pod_resources (or podResources) field; expected the kubelet "
                "pod-resources List response as JSON"
            )
        for i, pr in enumerate(_list(pods, src, "pod_resources")):
            pr = _obj(pr, src, f"pod_resources[{i}]")
            key = (str(pr.get("namespace") or "default"), str(pr.get("name") or ""))
            where = f"{src} pod_resources {key[0]}/{key[1]}"
            for c in _list(pr.get("containers"), where, "containers"):
                c = _obj(c, where, "containers[]")
                for d in _list(c.get("devices"), where, "devices"):
                    d = _obj(d, where, "devices[]")
                    res = str(_pick(d, "resource_name", "resourceName") or "")
                    if res not in names and not res.startswith(MIG_PREFIX):
                        continue
                    ids = _list(_pick(d, "device_ids", "deviceIds"), where, "device_ids")
                    bucket = out.setdefault(key, {})
                    for dev in ids:
                        bucket[str(dev)] = None
    return {k: list(v) for k, v in out.items() if v}


def _base(device: str) -> tuple[str, bool]:
    """The physical device of a plugin id and whether it is a time-sliced
    replica: ``GPU-x::3`` (NVIDIA plugin sharing) or ``nvidia0/vgpu2``
    (GKE)."""
    if "::" in device:
        return device.split("::", 1)[0], True
    if "/vgpu" in device:
        return device.split("/vgpu", 1)[0], True
    return device, False


def _label_spec(labels: Mapping[str, str] | Sequence[str] | None) -> dict[str, str]:
    """Output column -> pod label key (``team=app.kubernetes.io/team``, or a
    bare key naming both)."""
    if labels is None:
        return {}
    if isinstance(labels, Mapping):
        spec = {str(k): str(v) for k, v in labels.items()}
    else:
        spec = {}
        for item in labels:
            col, sep, key = str(item).partition("=")
            spec[col.strip()] = key.strip() if sep else col.strip()
    for col, key in spec.items():
        if not col or not key:
            raise InputError(f"labels: {col}={key!r}; expected COLUMN=LABEL_KEY or LABEL_KEY")
        if col in _FIXED or col in ("job_id", "device_id", "start", "end", "share", "share_basis"):
            raise InputError(
                f"labels: column {col!r} is one carbonledger already writes; name it "
                f"otherwise ({col}_label={key})"
            )
    return spec


@dataclass
class _Shared:
    device: str
    frac: float
    job: str
    start: int
    end: int
    weight: int
    labels: tuple[str | None, ...]


def _split_shared(items: list[_Shared], rows: AllocationRows) -> None:
    """Time-sliced GPUs: every pod holding replicas of one GPU gets, at each
    moment, its replicas over all replicas held then (two pods: 1/2 each;
    alone: all of it). Each pod's interval is cut where that ratio changes."""
    by_dev: dict[str, list[_Shared]] = {}
    for it in items:
        by_dev.setdefault(it.device, []).append(it)
    for group in by_dev.values():
        cuts = sorted({t for it in group for t in (it.start, it.end)})
        weight = [0] * len(cuts)  # weight[k]: replicas held in [cuts[k], cuts[k+1])
        for it in group:
            a, b = bisect.bisect_left(cuts, it.start), bisect.bisect_left(cuts, it.end)
            for k in range(a, b):
                weight[k] += it.weight
        for it in group:
            a, b = bisect.bisect_left(cuts, it.start), bisect.bisect_left(cuts, it.end)
            piece_start, piece_share = cuts[a], it.weight / weight[a]
            for k in range(a + 1, b + 1):
                share = it.weight / weight[k] if k < b else None
                if share != piece_share:
                    rows.add(
                        it.job,
                        it.device,
                        piece_start,
                        cuts[k],
                        piece_share * it.frac,
                        BASIS_INDEX,
                        it.labels,
                    )
                    if share is not None:
                        piece_start, piece_share = cuts[k], share


def from_kubernetes(
    pods: JsonSource,
    pod_resources: JsonSource | None = None,
    *,
    until: Until = None,
    labels: Mapping[str, str] | Sequence[str] | None = None,
    device_map: DeviceMapSource | DeviceMap | None = None,
    device_id: str = "{node}/{uuid}",
    resource_names: Sequence[str] = (GPU_RESOURCE,),
    job_id: str = "{namespace}/{pod}",
) -> pa.Table:
    """Pods (``kubectl get pods -A -o json``) joined with the GPUs the
    kubelet assigned them (pod-resources ``List`` JSON) as an ``allocations``
    table.

    One row per pod and GPU: ``job_id`` (template over ``{namespace}``,
    ``{pod}``, ``{uid}``, ``{node}``), ``device_id`` (template over
    ``{node}`` and ``{uuid}``, the device plugin's id: it matches
    dcgm-exporter's ``{Hostname}/{UUID}`` when node name = hostname; through
    ``device_map`` for anything else), ``start`` (``status.startTime``),
    ``end`` (latest container ``finishedAt`` of a Succeeded/Failed pod, else
    ``until``), ``share``, ``share_basis`` (``"index"`` with pod-resources
    ids, ``"count"`` when only the pod's GPU limit is known: ``n/G`` of each
    of the node's ``G`` GPUs from ``device_map``), ``namespace``, ``pod``,
    ``pod_uid``, ``node``, ``pod_phase`` and one column per ``labels`` entry
    (``{"team": "app.kubernetes.io/team"}`` or ``["team=...", "phase"]``).
    Running pods without ``until`` are dropped with a warning."""
    names = frozenset(resource_names)
    until_ns = parse_until(until, None, source="kubernetes")
    spec = _label_spec(labels)
    job_tmpl = _job_template(job_id)
    resolver = Resolver(_as_device_map(device_map), DeviceTemplate(device_id))

    records: dict[str, _Pod] = {}
    for src, doc in _docs(pods, "pods"):
        top = _obj(doc, src, "the document")
        kind = top.get("kind")
        if kind == "Pod":
            items: list[Any] = [top]
        elif "items" in top:
            items = _list(top.get("items"), src, "items")
        else:
            raise SchemaError(
                f"{src}: kind={kind!r} without items; expected a List of Pods "
                "(kubectl get pods -A -o json)"
            )
        for i, item in enumerate(items):
            item = _obj(item, src, f"items[{i}]")
            if item.get("kind", "Pod") != "Pod":
                continue
            pod = _pod(item, src, i, names)
            if pod is None:
                continue
            old = records.get(pod.uid)
            # Several snapshots of the pod list: the one that knows the end
            # wins, else the last one read.
            if old is None or not (pod.end is None and old.end is not None):
                records[pod.uid] = pod

    assigned = _assignments(_docs(pod_resources, "pod_resources"), names) if pod_resources else {}
    # Pod names recur (StatefulSets, re-created pods): a pod-resources entry
    # belongs to the pod of that name still running, else the latest started.
    owner: dict[tuple[str, str], _Pod] = {}
    for pod in records.values():
        key = (pod.namespace, pod.name)
        cur = owner.get(key)
        if cur is None or (pod.end is None, pod.start) > (cur.end is None, cur.start):
            owner[key] = pod

    label_cols = [*_FIXED, *spec]
    rows = AllocationRows(label_cols)
    shared: list[_Shared] = []
    running: list[str] = []
    unfinished: list[str] = []
    mig_only: list[str] = []
    for pod in records.values():
        devices = (
            assigned.get((pod.namespace, pod.name))
            if owner.get((pod.namespace, pod.name)) is pod
            else None
        )
        if not devices and pod.gpus <= 0:
            if pod.mig > 0:
                mig_only.append(f"{pod.namespace}/{pod.name}")
            continue
        end = pod.end
        if end is None:
            if pod.terminal:
                unfinished.append(f"{pod.namespace}/{pod.name}")
                continue
            if until_ns is None:
                running.append(f"{pod.namespace}/{pod.name}")
                continue
            if until_ns <= pod.start:
                raise InputError(
                    f"{pod.where}: status.startTime is not before until; until is when the pod "
                    "list was taken, so it must be after every running pod's start"
                )
            end = until_ns
        if end < pod.start:
            raise InputError(
                f"{pod.where}: finishedAt is before status.startTime; expected end >= start"
            )
        if end == pod.start:
            continue
        job = job_tmpl.format(namespace=pod.namespace, pod=pod.name, uid=pod.uid, node=pod.node)
        values: tuple[str | None, ...] = (
            pod.namespace,
            pod.name,
            pod.uid,
            pod.node,
            pod.phase,
            *(_label_value(pod.labels.get(key)) for key in spec.values()),
        )
        if devices:
            weights: dict[str, int] = {}
            is_shared: dict[str, bool] = {}
            for d in devices:
                base, sh = _base(d)
                weights[base] = weights.get(base, 0) + 1
                is_shared[base] = is_shared.get(base, False) or sh
            for base, w in weights.items():
                dev, frac = resolver.by_uuid(pod.node, base, where=pod.where)
                if is_shared[base]:
                    shared.append(_Shared(dev, frac, job, pod.start, end, w, values))
                else:
                    rows.add(job, dev, pod.start, end, frac, BASIS_INDEX, values)
            continue
        gpus = resolver.node_gpus(pod.node, where=pod.where, key="uuid")
        if pod.gpus > len(gpus):
            raise InputError(
                f"{pod.where}: asks for {pod.gpus} GPUs, but node {pod.node!r} has "
                f"{len(gpus)} in the device map; expected at most that"
            )
        share = pod.gpus / len(gpus)
        for dev, frac, _ in gpus:
            rows.add(job, dev, pod.start, end, share * frac, BASIS_COUNT, values)
    _split_shared(shared, rows)

    if running:
        warnings.warn(
            f"kubernetes: {len(running)} running pod(s) with GPUs were dropped "
            f"({examples(running)}); pass until=... (--until, when the pod list was taken) "
            "to count them up to then",
            stacklevel=2,
        )
    if unfinished:
        warnings.warn(
            f"kubernetes: {len(unfinished)} finished pod(s) with GPUs have no container "
            f"finishedAt and were dropped ({examples(unfinished)})",
            stacklevel=2,
        )
    if mig_only:
        warnings.warn(
            f"kubernetes: {len(mig_only)} pod(s) ask for MIG devices ({examples(mig_only)}) "
            "and have no pod-resources entry naming them; they were dropped (pass the "
            "pod-resources List output, and a device map from MIG UUIDs to GPUs)",
            stacklevel=2,
        )
    return rows.table()


def _label_value(v: Any) -> str | None:
    return None if v is None else str(v)


class _JobTemplate:
    def __init__(self, template: str) -> None:
        self.template = template

    def format(self, **values: str) -> str:
        return self.template.format(**values)


def _job_template(template: str) -> _JobTemplate:
    allowed = {"namespace", "pod", "uid", "node"}
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise InputError(f"job_id={template!r} is not a valid template ({e})") from e
    bad = [f for f in fields if f not in allowed]
    if bad:
        raise InputError(
            f"job_id={template!r} uses {{{bad[0]}}}; expected only {{namespace}}, {{pod}}, "
            "{uid} and {node}"
        )
    return _JobTemplate(template)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="kubectl get pods -A -o json output files"
    )
    p.add_argument(
        "--pod-resources",
        action="append",
        metavar="JSON",
        help="the kubelet pod-resources List response as JSON (one per node; repeatable): "
        "the exact GPU UUIDs of each pod",
    )
    p.add_argument(
        "--until",
        metavar="TIME",
        help="when the pod list was taken (ISO 8601 with offset): running pods end there; "
        "without it they are dropped with a warning",
    )
    p.add_argument(
        "--label",
        action="append",
        metavar="COLUMN=KEY",
        help="carry a pod label as a column, e.g. --label team=app.kubernetes.io/team or "
        "--label phase (repeatable)",
    )
    p.add_argument(
        "--resource",
        action="append",
        metavar="NAME",
        help="extended resource names counted as whole GPUs (default nvidia.com/gpu; repeatable)",
    )
    p.add_argument(
        "--job-id",
        default="{namespace}/{pod}",
        metavar="TEMPLATE",
        help="job id template over {namespace}, {pod}, {uid}, {node} (default {namespace}/{pod})",
    )
    add_device_arguments(p, "{node}/{uuid}")


def _open(args: argparse.Namespace) -> pa.Table:
    return from_kubernetes(
        args.inputs,
        args.pod_resources,
        until=args.until,
        labels=args.label,
        device_map=args.device_map,
        device_id=args.device_id,
        resource_names=tuple(args.resource) if args.resource else (GPU_RESOURCE,),
        job_id=args.job_id,
    )


SAMPLE = """\
{"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": [
  {"apiVersion": "v1", "kind": "Pod",
   "metadata": {"name": "train-0", "namespace": "ml", "uid": "5c1f...",
                "labels": {"app.kubernetes.io/team": "vision"}},
   "spec": {"nodeName": "gpu-node-1", "containers": [{"name": "trainer",
            "resources": {"limits": {"nvidia.com/gpu": "2"}}}]},
   "status": {"phase": "Succeeded", "startTime": "2026-12-02T14:03:05Z",
              "containerStatuses": [{"name": "trainer", "state": {"terminated":
                {"exitCode": 0, "finishedAt": "2026-12-02T18:03:05Z", "reason": "Completed"}}}]}}]}
"""

FORMATS: tuple[Format, ...] = (
    Format(
        name="kubernetes",
        table="allocations",
        help="kubectl get pods -o json (+ kubelet pod-resources) -> allocations",
        add_arguments=_add_arguments,
        open=_open,
        sample=SAMPLE,
    ),
)
