"""Snapshots of dcgm-exporter's HPC job mapping directory to the canonical
``allocations`` table.

What the tool reads (NVIDIA/dcgm-exporter ``internal/pkg/transformation/
hpc.go``, README "How to include HPC jobs in metric labels"): with
``--hpc-job-mapping-dir DIR`` (``DCGM_HPC_JOB_MAPPING_DIR``) the exporter
lists ``DIR`` on every scrape; each regular file named ``<gpu index>`` or
``<gpu index>.<gpu instance id>`` (MIG; names must match
``^\\d+(\\.\\d+)?$``, anything else is ignored) holds the job ids running on
that GPU, one per line (the Slurm prolog writes ``$SLURM_JOB_ID``, the
epilog removes the file). The directory only says what runs *now*, so
accounting needs its history. Two documented layouts are read:

- a snapshot tree ``ROOT/<host>/<time>/<gpu index>``: a collector copies the
  directory every N seconds into a folder named by the time (ISO 8601
  ``2026-12-02T14:03:05Z``, ``20261202T140305Z``, ``2026-12-02T14-03-05Z``, or
  Unix seconds ``1764684185``); an empty folder is a snapshot with no job;
- a CSV log with the header ``ts,host,gpu,job_id``: one row per job id of a
  mapping file at snapshot time ``ts``; a row with empty ``gpu`` and
  ``job_id`` records a snapshot of a host (so an empty directory is seen);
  every ``(host, ts)`` present is one snapshot, rows of a host in time order.

A job's interval on a GPU runs from the first snapshot that shows it to the
first one that does not; a GPU listing ``n`` jobs gives each ``1/n`` (its
interval is cut where ``n`` changes). A host's last snapshot is closed at
``until`` when given (when collection stopped), else at that snapshot's time.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import itertools
import os
import re
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from ..exceptions import InputError, OrderError, SchemaError
from ._common import Format, open_text, parse_zone, to_ns
from .slurm import (
    BASIS_INDEX,
    AllocationRows,
    DeviceMap,
    DeviceMapSource,
    DeviceTemplate,
    Paths,
    Resolver,
    Until,
    _as_device_map,
    _norm_gpu,
    add_device_arguments,
    input_paths,
    parse_until,
)

__all__ = ["FORMATS", "from_dcgm_hpc"]

# The file names dcgm-exporter reads (hpc.go validGPUFile).
GPU_FILE = re.compile(r"^\d+(\.\d+)?$")
_DASHED_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})(.*)$")
_EPOCH = re.compile(r"^\d+(\.\d+)?$")

Emit = Callable[[str, str, str, int, int, float], None]


class _Zone:
    """``tz`` for snapshot times without an offset, checked on first use
    (a layout that writes offsets needs none)."""

    def __init__(self, tz: str | None) -> None:
        self.tz = tz
        self._zone: dt.tzinfo | None = None

    def get(self, where: str) -> dt.tzinfo:
        if self._zone is None:
            self._zone = parse_zone(self.tz, source=where, what="the snapshot time")
        return self._zone


def _snapshot_ts(text: str, zone: _Zone, where: str) -> int:
    """A snapshot time: Unix seconds, or ISO 8601 (``:`` may be ``-`` in a
    folder name)."""
    s = text.strip()
    if _EPOCH.match(s):
        whole, _, frac = s.partition(".")
        return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])
    m = _DASHED_TIME.match(s)
    if m:
        s = f"{m[1]}T{m[2]}:{m[3]}:{m[4]}{m[5]}"
    try:
        t = dt.datetime.fromisoformat(s)
    except ValueError as e:
        raise InputError(
            f"{where}: snapshot time {text!r} is not a time; expected ISO 8601 "
            "(2026-12-02T14:03:05Z, 20261202T140305Z, 2026-12-02T14-03-05Z) or Unix seconds"
        ) from e
    if t.tzinfo is None:
        t = t.replace(tzinfo=zone.get(where))
    return to_ns(t)


class _Host:
    """The open intervals of one host's GPUs between snapshots."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.last: int | None = None
        self.open: dict[str, dict[str, tuple[int, float]]] = {}

    def apply(self, ts: int, snapshot: dict[str, list[str]], emit: Emit) -> None:
        """A snapshot at ``ts``: close what it no longer shows (or shows with
        another share), open what it shows for the first time."""
        for gpu in sorted(set(self.open) | set(snapshot), key=_gpu_key):
            jobs = snapshot.get(gpu, [])
            share = 1.0 / len(jobs) if jobs else 0.0
            cur = self.open.get(gpu, {})
            for job, (start, s) in list(cur.items()):
                if s != share or job not in jobs:
                    if ts > start:
                        emit(job, self.host, gpu, start, ts, s)
                    del cur[job]
            for job in jobs:
                if job not in cur:
                    cur[job] = (ts, share)
            if cur:
                self.open[gpu] = cur
            else:
                self.open.pop(gpu, None)
        self.last = ts

    def close(self, until: int | None, emit: Emit, source: str) -> None:
        """The end of collection: everything open ends at ``until`` (or at
        the last snapshot, contributing nothing after it)."""
        if self.last is None:
            return
        end = self.last
        if until is not None:
            if until < self.last:
                raise InputError(
                    f"{source}: until is before host {self.host!r}'s last snapshot; until is "
                    "when collection stopped, so it must not precede any snapshot"
                )
            end = until
        for gpu in sorted(self.open, key=_gpu_key):
            for job, (start, s) in self.open[gpu].items():
                if end > start:
                    emit(job, self.host, gpu, start, end, s)
        self.open.clear()


def _gpu_key(gpu: str) -> tuple[int, ...]:
    return tuple(int(p) for p in gpu.split("."))


def _read_jobs(path: Path) -> list[str]:
    """Job ids of one mapping file (a few lines): one per line, blank lines
    skipped, each job once."""
    with open_text(path) as f:
        jobs = [line.strip() for line in f]
    return list(dict.fromkeys(j for j in jobs if j))


def _tree_hosts(roots: list[Path]) -> dict[str, list[Path]]:
    hosts: dict[str, list[Path]] = {}
    for root in roots:
        with os.scandir(root) as it:
            for e in it:
                if e.is_dir() and not e.name.startswith("."):
                    hosts.setdefault(e.name, []).append(Path(e.path))
    return hosts


def _read_tree_host(
    host: str, folders: list[Path], zone: _Zone, until: int | None, emit: Emit
) -> None:
    snaps: list[tuple[int, Path]] = []
    for folder in folders:
        with os.scandir(folder) as it:
            for e in it:
                # Hidden names are a collector's copy in progress.
                if e.name.startswith(".") or not e.is_dir():
                    continue
                snaps.append((_snapshot_ts(e.name, zone, e.path), Path(e.path)))
    snaps.sort(key=lambda s: s[0])
    state = _Host(host)
    for (t0, p0), (t1, p1) in itertools.pairwise(snaps):
        if t0 == t1:
            raise InputError(
                f"{p0} and {p1}: two snapshots of host {host!r} at one time; expected one"
            )
    for ts, folder in snaps:
        snapshot: dict[str, list[str]] = {}
        with os.scandir(folder) as it:
            for e in it:
                if GPU_FILE.match(e.name) and e.is_file():
                    jobs = _read_jobs(Path(e.path))
                    if jobs:
                        snapshot[_norm_gpu(e.name)] = jobs
        state.apply(ts, snapshot, emit)
    state.close(until, emit, str(folders[0]))


def _read_logs(
    files: list[str], zone: _Zone, until: int | None, emit: Emit, tree_hosts: set[str]
) -> None:
    """CSV logs, read line by line as one stream in the order given (rotated
    logs oldest first); memory holds one pending snapshot per host."""
    states: dict[str, _Host] = {}
    pending: dict[str, tuple[int, dict[str, list[str]]]] = {}
    for path in files:
        with open_text(path) as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                continue
            names = [h.strip().lower() for h in header]
            missing = [c for c in ("ts", "host", "gpu", "job_id") if c not in names]
            if missing:
                raise SchemaError(
                    f"{path}: header {','.join(header)!r} has no {', '.join(missing)}; "
                    "expected ts,host,gpu,job_id"
                )
            i_ts, i_host = names.index("ts"), names.index("host")
            i_gpu, i_job = names.index("gpu"), names.index("job_id")
            width = len(names)
            for lineno, rec in enumerate(reader, start=2):
                if not rec:
                    continue
                where = f"{path}:{lineno}"
                if len(rec) != width:
                    raise InputError(
                        f"{where}: {len(rec)} fields, the header has {width}; expected "
                        "ts,host,gpu,job_id"
                    )
                host = rec[i_host].strip()
                if not host:
                    raise InputError(f"{where}: host is empty; expected the GPU's host name")
                if host in tree_hosts:
                    raise InputError(
                        f"{where}: host {host!r} is also in a snapshot tree; give each "
                        "host's snapshots in one layout"
                    )
                ts = _snapshot_ts(rec[i_ts], zone, where)
                gpu = rec[i_gpu].strip()
                job = rec[i_job].strip()
                if gpu and not GPU_FILE.match(gpu):
                    raise InputError(
                        f"{where}: gpu={gpu!r}; expected a GPU index (0) or "
                        "index.instance (3.0), as dcgm-exporter's file names"
                    )
                if job and not gpu:
                    raise InputError(f"{where}: job_id={job!r} with an empty gpu")
                cur = pending.get(host)
                if cur is not None and ts != cur[0]:
                    if ts < cur[0]:
                        raise OrderError(
                            f"{where}: ts {rec[i_ts]!r} is before the previous snapshot of "
                            f"host {host!r}; expected each host's rows in time order"
                        )
                    states.setdefault(host, _Host(host)).apply(cur[0], cur[1], emit)
                    cur = None
                if cur is None:
                    cur = (ts, {})
                    pending[host] = cur
                if gpu:
                    jobs = cur[1].setdefault(_norm_gpu(gpu), [])
                    if job and job not in jobs:
                        jobs.append(job)
    for host, (ts, snapshot) in pending.items():
        state = states.setdefault(host, _Host(host))
        state.apply(ts, snapshot, emit)
        state.close(until, emit, files[-1])


def from_dcgm_hpc(
    paths: Paths,
    *,
    until: Until = None,
    tz: str | None = None,
    device_map: DeviceMapSource | DeviceMap | None = None,
    device_id: str = "{host}/{gpu}",
) -> pa.Table:
    """Snapshots of dcgm-exporter's ``--hpc-job-mapping-dir`` as an
    ``allocations`` table.

    ``paths``: snapshot trees (``ROOT/<host>/<time>/<gpu>``) and/or CSV logs
    (``ts,host,gpu,job_id``), see the module docstring. One row per job
    interval on a GPU with a constant share: ``job_id`` (the file's line),
    ``device_id`` (template over ``{host}``, ``{gpu}`` (the file name) and
    ``{uuid}`` via ``device_map``), ``start``, ``end``, ``share`` (``1/n``
    with ``n`` jobs in the file), ``share_basis`` ``"index"``, ``host``,
    ``gpu``. ``until`` closes every host's last snapshot (default: the last
    snapshot's own time); ``tz`` is needed only for snapshot times without
    an offset."""
    files = input_paths(paths, what="dcgm-hpc")
    zone = _Zone(tz)
    until_ns = parse_until(until, zone.get("dcgm-hpc until") if tz else None, source="dcgm-hpc")
    resolver = Resolver(_as_device_map(device_map), DeviceTemplate(device_id))
    rows = AllocationRows(["host", "gpu"])

    def emit(job: str, host: str, gpu: str, start: int, end: int, share: float) -> None:
        dev, frac = resolver.by_index(host, gpu, where=f"dcgm-hpc host {host!r} GPU {gpu}")
        rows.add(job, dev, start, end, share * frac, BASIS_INDEX, (host, gpu))

    roots = [Path(p) for p in files if os.path.isdir(p)]
    logs = [p for p in files if not os.path.isdir(p)]
    for p in logs:
        if not os.path.exists(p):
            raise InputError(f"{p}: no such file or folder; expected a snapshot tree or CSV log")
    hosts = _tree_hosts(roots)
    for host in sorted(hosts):
        _read_tree_host(host, hosts[host], zone, until_ns, emit)
    if logs:
        _read_logs(logs, zone, until_ns, emit, set(hosts))
    return rows.table()


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="snapshot trees ROOT/<host>/<time>/<gpu> and/or CSV logs ts,host,gpu,job_id",
    )
    p.add_argument(
        "--until",
        metavar="TIME",
        help="when snapshot collection stopped (ISO 8601): closes each host's last "
        "snapshot; default: the last snapshot's time",
    )
    p.add_argument("--tz", help="IANA zone of snapshot times written without an offset")
    add_device_arguments(p, "{host}/{gpu}")


def _open(args: argparse.Namespace) -> pa.Table:
    return from_dcgm_hpc(
        args.inputs,
        until=args.until,
        tz=args.tz,
        device_map=args.device_map,
        device_id=args.device_id,
    )


SAMPLE = """\
ts,host,gpu,job_id
2026-12-02T14:00:00Z,gpu01,,
2026-12-02T14:00:30Z,gpu01,0,4242
2026-12-02T14:00:30Z,gpu01,1,4242
2026-12-02T14:01:00Z,gpu01,0,4242
2026-12-02T14:01:00Z,gpu01,0,4250
"""

FORMATS: tuple[Format, ...] = (
    Format(
        name="dcgm-hpc",
        table="allocations",
        help="snapshots of dcgm-exporter's --hpc-job-mapping-dir -> allocations (exact GPUs)",
        add_arguments=_add_arguments,
        open=_open,
        sample=SAMPLE,
    ),
)
