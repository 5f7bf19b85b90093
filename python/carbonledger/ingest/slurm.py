"""Slurm accounting (``sacct --parsable2``) to the canonical ``allocations``
table, and the pieces every scheduler adapter shares (device maps, device id
templates, the ``until`` rule, the output table).

What ``sacct`` writes (SchedMD/slurm ``src/sacct/``, ``doc/man/man1/sacct.1``,
``src/common/print_fields.c``, ``src/common/parse_time.c``):

- ``-P``/``--parsable2``: fields joined by ``|`` (or ``--delimiter``), a header
  line of the field names (``JobID|JobIDRaw|...``) unless ``-n``; ``-p``
  (``--parsable``) ends every line, the header included, with the delimiter.
- ``JobID`` is ``123``, ``123_4`` (array task), ``123_[5-9]`` (pending array
  tasks), ``123+0`` (heterogeneous component), and steps ``123.batch``,
  ``123.extern``, ``123.0`` (without ``-X``/``--allocations``).
- ``Start``/``End``: ``%Y-%m-%dT%H:%M:%S`` in the local zone of the host that
  ran ``sacct`` (``localtime_r``; ``TZ`` or ``/etc/localtime``), no offset;
  ``Unknown`` for time 0 (never started, or still running for ``End``) and
  ``None`` for NO_VAL.
- ``NodeList``: a Slurm hostlist (``gpu[01-04,07]``, ``a01,b[2-3]``,
  ``rack[1-2]n[1-4]``, ``node[1-3]-ib``), ``None assigned`` when none.
- ``AllocTRES``: ``billing=8,cpu=8,gres/gpu:a100=4,gres/gpu=4,mem=64G,node=1``;
  GPU counts are plain integers and are totals over the job's nodes.

Every sacct line is read and dropped as it goes (a month of a big cluster is
millions of lines); what stays in memory is one small record per GPU job
(to merge overlapping dumps) and the output rows.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import itertools
import os
import re
import string
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import pyarrow as pa

from ..exceptions import InputError, SchemaError
from ._common import ALLOCATIONS_SCHEMA, BATCH_ROWS, Format, open_text, parse_zone, to_ns

__all__ = [
    "FORMATS",
    "DeviceMap",
    "expand_hostlist",
    "from_sacct",
    "load_device_map",
]

Paths: TypeAlias = "str | os.PathLike[str] | Iterable[str | os.PathLike[str]]"
DeviceMapSource: TypeAlias = "str | os.PathLike[str] | pa.Table | Iterable[Mapping[str, Any]]"
Until: TypeAlias = "dt.datetime | str | None"

# share_basis values: how a row's share was derived.
BASIS_COUNT = "count"  # only a GPU count was known: an equal part of each node GPU
BASIS_INDEX = "index"  # the exact GPUs were known

# A hostlist expression may expand to at most this many names (Slurm caps its
# ranges too): a typo such as node[1-99999999] must not exhaust memory.
MAX_HOSTS = 1 << 20


# ---------------------------------------------------------------------------
# Shared by the scheduler adapters (slurm, dcgm_hpc, kubernetes).
# ---------------------------------------------------------------------------


def input_paths(paths: Paths, *, what: str) -> list[str]:
    """One path or several, as a list of strings (an empty list is an error)."""
    if isinstance(paths, (str, os.PathLike)):
        out = [os.fspath(paths)]
    else:
        out = [os.fspath(p) for p in paths]
    if not out:
        raise InputError(f"{what}: no input files given; expected at least one path")
    return out


def parse_until(until: Until, zone: dt.tzinfo | None, *, source: str) -> int | None:
    """``until`` (the time the records were taken, closing every interval
    still open) as UTC nanoseconds. A string is ISO 8601; without an offset it
    is read in ``zone`` (the source's ``tz``), and without one either it is an
    error (a guessed zone shifts every running job by hours)."""
    if until is None:
        return None
    if isinstance(until, str):
        try:
            t = dt.datetime.fromisoformat(until.strip())
        except ValueError as e:
            raise InputError(
                f"{source}: until={until!r} is not an ISO 8601 time; expected e.g. "
                "'2026-12-03T00:00:00Z' or '2026-12-03T01:00:00+01:00'"
            ) from e
    elif isinstance(until, dt.datetime):
        t = until
    else:
        raise InputError(
            f"{source}: until={until!r} is a {type(until).__name__}; expected a datetime "
            "or an ISO 8601 string"
        )
    if t.tzinfo is None or t.utcoffset() is None:
        if zone is None:
            raise SchemaError(
                f"{source}: until={until!s} has no UTC offset; give one "
                "(e.g. '2026-12-03T00:00:00Z') or pass tz='Area/City'"
            )
        t = t.replace(tzinfo=zone)
    return to_ns(t)


def _norm_gpu(value: str) -> str:
    """A GPU index ("03" and "3" are one GPU; MIG instance files "3.0")."""
    v = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", v):
        return ".".join(str(int(p)) for p in v.split("."))
    return v


@dataclass(frozen=True)
class DeviceEntry:
    """One row of a device map: a GPU (or MIG instance) of a host."""

    host: str
    gpu: str | None
    uuid: str | None
    device_id: str | None
    fraction: float

    @property
    def whole(self) -> bool:
        """A whole GPU (not a MIG instance, not a fraction of a device)."""
        if self.gpu is not None and "." in self.gpu:
            return False
        if self.uuid is not None and self.uuid.upper().startswith("MIG-"):
            return False
        return self.fraction == 1.0


_MAP_ALIASES = {
    "host": "host",
    "hostname": "host",
    "node": "host",
    "nodename": "host",
    "node_name": "host",
    "gpu": "gpu",
    "index": "gpu",
    "gpu_index": "gpu",
    "minor_number": "gpu",
    "uuid": "uuid",
    "gpu_uuid": "uuid",
    "device_id": "device_id",
    "fraction": "fraction",
}


class DeviceMap:
    """How schedulers' GPU names become power device ids.

    Schedulers name a GPU by host and index (Slurm, the DCGM HPC mapping
    directory) or by host and UUID (the Kubernetes device plugin); power
    adapters name it ``{Hostname}/{UUID}`` (DCGM) or ``{uuid}`` (nvidia-smi).
    A map row ``host, gpu, uuid[, device_id][, fraction]`` joins the two: it
    lists a host's GPUs (the count-based shares need them) and supplies the
    UUID (or the final ``device_id``) for a host/index pair. ``fraction``
    (default 1) is the part of the device a row stands for (a MIG instance
    mapped to its parent GPU's device id)."""

    def __init__(self, entries: Iterable[DeviceEntry], *, source: str) -> None:
        self.source = source
        self.by_gpu: dict[tuple[str, str], DeviceEntry] = {}
        self.by_uuid: dict[tuple[str, str], DeviceEntry] = {}
        self.whole: dict[str, list[DeviceEntry]] = {}
        for e in entries:
            if e.gpu is not None:
                if (e.host, e.gpu) in self.by_gpu:
                    raise InputError(
                        f"{source}: host {e.host!r} GPU {e.gpu} appears twice; expected one "
                        "row per host and GPU index"
                    )
                self.by_gpu[(e.host, e.gpu)] = e
            if e.uuid is not None:
                if (e.host, e.uuid) in self.by_uuid:
                    raise InputError(
                        f"{source}: host {e.host!r} uuid {e.uuid!r} appears twice; expected "
                        "one row per host and GPU uuid"
                    )
                self.by_uuid[(e.host, e.uuid)] = e
            if e.whole:
                self.whole.setdefault(e.host, []).append(e)
        for gpus in self.whole.values():
            # Index order where there is one (file order otherwise).
            gpus.sort(key=lambda e: int(e.gpu) if e.gpu is not None and e.gpu.isdigit() else -1)

    def __len__(self) -> int:
        return len(self.by_gpu) + len(self.by_uuid)


def _map_rows(source: DeviceMapSource) -> tuple[str, Iterator[tuple[int | None, dict[str, Any]]]]:
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)

        def rows() -> Iterator[tuple[int | None, dict[str, Any]]]:
            # A device map has one row per GPU of the fleet: small.
            with open_text(path) as f:
                reader = csv.reader(f, skipinitialspace=True)
                header = next(reader, None)
                if header is None:
                    raise SchemaError(f"{path}: the device map is empty; expected a header line")
                names = [h.strip() for h in header]
                for lineno, rec in enumerate(reader, start=2):
                    if not rec or all(not v.strip() for v in rec):
                        continue
                    if len(rec) != len(names):
                        raise InputError(
                            f"{path}:{lineno}: {len(rec)} fields, the header has "
                            f"{len(names)} ({','.join(names)})"
                        )
                    yield lineno, dict(zip(names, rec, strict=True))

        return path, rows()
    if isinstance(source, pa.Table):
        return "device_map", ((None, r) for r in source.to_pylist())
    return "device_map", ((None, dict(r)) for r in source)


def load_device_map(source: DeviceMapSource) -> DeviceMap:
    """A :class:`DeviceMap` from a CSV file (``host,gpu,uuid[,device_id]
    [,fraction]``; ``index``/``node``/``hostname``/``gpu_uuid`` are accepted
    as column names, so the output of ``nvidia-smi --query-gpu=index,uuid
    --format=csv`` with a ``host`` column added works), a ``pa.Table`` or
    row mappings."""
    name, rows = _map_rows(source)
    entries: list[DeviceEntry] = []
    for lineno, raw in rows:
        where = f"{name}:{lineno}" if lineno is not None else name
        row: dict[str, str] = {}
        for k, v in raw.items():
            key = _MAP_ALIASES.get(str(k).strip().lower().replace(" ", "_"))
            if key is not None and v is not None and str(v).strip() != "":
                row[key] = str(v).strip()
        if "host" not in row:
            raise SchemaError(
                f"{where}: device map row {dict(raw)!r} has no host; expected columns "
                "host, gpu, uuid[, device_id][, fraction]"
            )
        if "gpu" not in row and "uuid" not in row:
            raise SchemaError(
                f"{where}: device map row {dict(raw)!r} has neither gpu (index) nor uuid; "
                "expected columns host, gpu, uuid[, device_id][, fraction]"
            )
        fraction = 1.0
        if "fraction" in row:
            try:
                fraction = float(row["fraction"])
            except ValueError:
                fraction = float("nan")
            if not 0.0 < fraction <= 1.0:
                raise InputError(
                    f"{where}: fraction={row['fraction']!r}; expected a number in (0, 1]"
                )
        entries.append(
            DeviceEntry(
                host=row["host"],
                gpu=_norm_gpu(row["gpu"]) if "gpu" in row else None,
                uuid=row.get("uuid"),
                device_id=row.get("device_id"),
                fraction=fraction,
            )
        )
    return DeviceMap(entries, source=name)


def _as_device_map(source: DeviceMapSource | DeviceMap | None) -> DeviceMap | None:
    if source is None or isinstance(source, DeviceMap):
        return source
    return load_device_map(source)


class DeviceTemplate:
    """A ``device_id`` template over ``{host}`` (alias ``{node}``), ``{gpu}``
    (the index) and ``{uuid}``, checked once up front."""

    FIELDS = ("host", "node", "gpu", "uuid")

    def __init__(self, template: str, *, option: str = "device_id") -> None:
        self.template = template
        names: set[str] = set()
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as e:
            raise InputError(
                f"{option}={template!r} is not a valid template ({e}); expected e.g. "
                "'{host}/{gpu}' or '{host}/{uuid}'"
            ) from e
        for _, field_name, _, _ in parsed:
            if field_name is None:
                continue
            if field_name not in self.FIELDS:
                raise InputError(
                    f"{option}={template!r} uses {{{field_name}}}; expected only "
                    "{host} (or {node}), {gpu} and {uuid}"
                )
            names.add(field_name)
        self.needs = frozenset("host" if n == "node" else n for n in names)
        self.option = option

    def render(self, host: str, gpu: str | None, uuid: str | None) -> str:
        """The device id; the caller has checked the fields it needs."""
        return self.template.format(host=host, node=host, gpu=gpu or "", uuid=uuid or "")

    def __repr__(self) -> str:
        return repr(self.template)


class Resolver:
    """Device id (and fraction) of a scheduler's GPU, through the device map
    and the template; caches per host the GPUs used for count-based shares."""

    def __init__(
        self,
        dmap: DeviceMap | None,
        template: DeviceTemplate,
        *,
        gpus_per_node: int | None = None,
    ) -> None:
        self.dmap = dmap
        self.template = template
        self.gpus_per_node = gpus_per_node
        self._node_cache: dict[str, list[tuple[str, float, str | None]]] = {}

    def by_index(self, host: str, gpu: str, *, where: str) -> tuple[str, float]:
        """A GPU named by host and index (Slurm, the DCGM mapping files)."""
        entry = self.dmap.by_gpu.get((host, gpu)) if self.dmap is not None else None
        if entry is not None and entry.device_id is not None:
            return entry.device_id, entry.fraction
        uuid = entry.uuid if entry is not None else None
        if "uuid" in self.template.needs and uuid is None:
            raise InputError(
                f"{where}: device_id template {self.template!r} needs {{uuid}}, but the device "
                f"map has no uuid for host {host!r} GPU {gpu}; add a row '{host},{gpu},GPU-...' "
                "(host,gpu,uuid; from nvidia-smi --query-gpu=index,uuid --format=csv)"
            )
        return self.template.render(host, gpu, uuid), entry.fraction if entry else 1.0

    def by_uuid(self, host: str, uuid: str, *, where: str) -> tuple[str, float]:
        """A GPU named by host and UUID (the Kubernetes device plugin)."""
        entry = self.dmap.by_uuid.get((host, uuid)) if self.dmap is not None else None
        if entry is not None and entry.device_id is not None:
            return entry.device_id, entry.fraction
        gpu = entry.gpu if entry is not None else None
        if "gpu" in self.template.needs and gpu is None:
            raise InputError(
                f"{where}: device_id template {self.template!r} needs {{gpu}}, but the device "
                f"map has no GPU index for node {host!r} uuid {uuid!r}; add a row "
                f"'{host},<index>,{uuid}' (host,gpu,uuid)"
            )
        return self.template.render(host, gpu, uuid), entry.fraction if entry else 1.0

    def node_gpus(self, host: str, *, where: str, key: str) -> list[tuple[str, float, str | None]]:
        """Every whole GPU of a host as ``(device_id, fraction, gpu index)``:
        from the device map, else ``gpus_per_node`` indexes 0..n-1. ``key``
        is "gpu" (Slurm: the template may use the index) or "uuid" (Kubernetes:
        only the map knows the UUIDs)."""
        cached = self._node_cache.get(host)
        if cached is not None:
            return cached
        out: list[tuple[str, float, str | None]] = []
        entries = self.dmap.whole.get(host) if self.dmap is not None else None
        if entries:
            for e in entries:
                if e.device_id is not None:
                    out.append((e.device_id, e.fraction, e.gpu))
                elif key == "gpu" and e.gpu is not None:
                    dev, frac = self.by_index(host, e.gpu, where=where)
                    out.append((dev, frac, e.gpu))
                elif e.uuid is not None:
                    dev, frac = self.by_uuid(host, e.uuid, where=where)
                    out.append((dev, frac, e.gpu))
                else:
                    raise InputError(
                        f"{self.dmap.source if self.dmap else 'device_map'}: host {host!r} has "
                        f"a GPU row without {key}; expected host,gpu,uuid"
                    )
        elif self.gpus_per_node is not None and key == "gpu":
            for i in range(self.gpus_per_node):
                dev, frac = self.by_index(host, str(i), where=where)
                out.append((dev, frac, str(i)))
        else:
            if key == "gpu":
                need = (
                    "pass gpus_per_node=N (--gpus-per-node N) or a device map listing "
                    "the host's GPUs (--device-map, rows host,gpu[,uuid])"
                )
            else:
                need = (
                    "pass a device map listing the node's GPUs (--device-map, rows "
                    "host,gpu,uuid from nvidia-smi --query-gpu=index,uuid --format=csv)"
                )
            raise InputError(
                f"{where}: only a GPU count is known, and the GPUs of host {host!r} are "
                f"unknown; {need}"
            )
        self._node_cache[host] = out
        return out


class AllocationRows:
    """Builds the output table: the canonical allocation columns,
    ``share_basis`` and string label columns, in that order. Rows are packed
    into Arrow batches every ``BATCH_ROWS`` rows (Python lists of a million
    rows would cost ten times the memory of the table)."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self._batches: list[pa.RecordBatch] = []
        self._n = 0
        self._reset()

    def _reset(self) -> None:
        self.job_id: list[str] = []
        self.device_id: list[str] = []
        self.start: list[int] = []
        self.end: list[int] = []
        self.share: list[float] = []
        self.basis: list[str] = []
        self.values: list[list[str | None]] = [[] for _ in self.labels]

    def __len__(self) -> int:
        return self._n

    def add(
        self,
        job_id: str,
        device_id: str,
        start: int,
        end: int,
        share: float,
        basis: str,
        labels: Sequence[str | None],
    ) -> None:
        """One row; ``labels`` in the order given to the constructor."""
        self.job_id.append(job_id)
        self.device_id.append(device_id)
        self.start.append(start)
        self.end.append(end)
        self.share.append(share)
        self.basis.append(basis)
        for col, v in zip(self.values, labels, strict=True):
            col.append(v)
        self._n += 1
        if len(self.job_id) >= BATCH_ROWS:
            self._flush()

    def schema(self) -> pa.Schema:
        """The output schema: canonical columns, share_basis, labels."""
        fields = list(ALLOCATIONS_SCHEMA)
        fields.append(pa.field("share_basis", pa.string()))
        fields.extend(pa.field(n, pa.string()) for n in self.labels)
        return pa.schema(fields)

    def _flush(self) -> None:
        if not self.job_id:
            return
        ts = ALLOCATIONS_SCHEMA.field("start").type
        arrays = [
            pa.array(self.job_id, pa.string()),
            pa.array(self.device_id, pa.string()),
            pa.array(self.start, pa.int64()).cast(ts),
            pa.array(self.end, pa.int64()).cast(ts),
            pa.array(self.share, pa.float64()),
            pa.array(self.basis, pa.string()),
            *(pa.array(v, pa.string()) for v in self.values),
        ]
        self._batches.append(pa.RecordBatch.from_arrays(arrays, schema=self.schema()))
        self._reset()

    def table(self) -> pa.Table:
        """The rows as an Arrow table."""
        self._flush()
        return pa.Table.from_batches(self._batches, schema=self.schema())


def examples(items: Sequence[str], n: int = 5) -> str:
    """A short list for a message: the first few, and how many more."""
    head = ", ".join(items[:n])
    return head + (f" and {len(items) - n} more" if len(items) > n else "")


# ---------------------------------------------------------------------------
# Slurm hostlists.
# ---------------------------------------------------------------------------


def _split_top(expr: str) -> Iterator[str]:
    """Split at commas outside brackets (``a01,b[2-3,5]`` -> ``a01``, ``b[2-3,5]``)."""
    depth = 0
    start = 0
    for i, ch in enumerate(expr):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            yield expr[start:i]
            start = i + 1
    yield expr[start:]


def _range_values(body: str, expr: str) -> list[str]:
    out: list[str] = []
    for part in body.split(","):
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise InputError(
                f"hostlist {expr!r}: range {part!r} is not N or N-M (digits, e.g. [01-04,07])"
            )
        a, b = int(lo), int(hi) if sep else int(lo)
        if a > b:
            raise InputError(f"hostlist {expr!r}: range {part!r} runs backwards")
        if b - a + 1 > MAX_HOSTS:
            raise InputError(f"hostlist {expr!r}: range {part!r} has over {MAX_HOSTS} names")
        # Slurm pads every number to the width of the range's low end
        # (hostlist.c: "%0*lu" with width = strlen(lo)).
        width = len(lo)
        out.extend(f"{j:0{width}d}" for j in range(a, b + 1))
    return out


def expand_hostlist(expr: str) -> list[str]:
    """The host names of a Slurm hostlist expression, in Slurm's order.

    ``gpu[01-04,07]`` (zero padding kept: each number is padded to the width
    of its range's low end), ``node[1-3]-ib`` (a suffix), ``a01,b[2-3]``
    (comma lists outside brackets), ``rack[1-2]n[1-2]`` (several bracket
    groups: every combination, the first group varying slowest), as Slurm's
    ``src/common/hostlist.c`` expands them."""
    hosts: list[str] = []
    for token in _split_top(expr.strip()):
        token = token.strip()
        if not token:
            continue
        parts: list[list[str]] = []
        pos = 0
        while pos < len(token):
            open_at = token.find("[", pos)
            close_at = token.find("]", pos)
            if open_at < 0:
                if close_at >= 0:
                    raise InputError(f"hostlist {expr!r}: ']' without '['")
                parts.append([token[pos:]])
                break
            if close_at >= 0 and close_at < open_at:
                raise InputError(f"hostlist {expr!r}: ']' without '['")
            if open_at > pos:
                parts.append([token[pos:open_at]])
            close_at = token.find("]", open_at)
            if close_at < 0:
                raise InputError(f"hostlist {expr!r}: '[' without ']'")
            body = token[open_at + 1 : close_at]
            if "[" in body:
                raise InputError(f"hostlist {expr!r}: nested '['")
            parts.append(_range_values(body, expr))
            pos = close_at + 1
        count = 1
        for p in parts:
            count *= len(p)
        if len(hosts) + count > MAX_HOSTS:
            raise InputError(f"hostlist {expr!r}: expands to over {MAX_HOSTS} names")
        hosts.extend("".join(combo) for combo in itertools.product(*parts))
    return hosts


# ---------------------------------------------------------------------------
# sacct.
# ---------------------------------------------------------------------------

_REQUIRED = ("start", "end", "nodelist", "alloctres")
# Free-text fields that may hold the delimiter itself (a job named "a|b"):
# with exactly one of them on a line, the extra fields are joined back.
_FREE_TEXT = frozenset(
    {
        "jobname",
        "comment",
        "admincomment",
        "systemcomment",
        "submitline",
        "workdir",
        "constraints",
        "extra",
        "container",
        "reason",
    }
)
_NO_TIME = frozenset({"", "Unknown", "None"})
_SLURM_LABELS = ("user", "account", "partition", "job_name", "state", "cluster", "host", "gpu")


@dataclass(slots=True)
class _Job:
    job_id: str
    start: int
    end: int | None
    nodelist: str
    gpus: int
    labels: tuple[str | None, ...]  # user, account, partition, job_name, state, cluster
    where: str


def _gpu_count(tres: str, where: str) -> int:
    """GPUs of an AllocTRES string: ``gres/gpu`` (the total over every node
    and type), else the sum of the typed ``gres/gpu:<type>`` entries."""
    if "gres/gpu" not in tres:
        return 0  # most lines of a mixed cluster: no GPU at all
    total: int | None = None
    typed = 0
    for item in tres.split(","):
        key, sep, value = item.partition("=")
        if key == "gres/gpu" or key.startswith("gres/gpu:"):
            if not sep or not value.strip().isdigit():
                raise InputError(
                    f"{where}: AllocTRES entry {item!r} has no GPU count; expected e.g. gres/gpu=4"
                )
            if key == "gres/gpu":
                total = int(value)
            else:
                typed += int(value)
    return total if total is not None else typed


def _parse_time(text: str, zone: dt.tzinfo, where: str, column: str) -> int:
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError as e:
        raise InputError(
            f"{where}: {column}={text!r} is not a time; expected YYYY-MM-DDTHH:MM:SS "
            "(sacct's standard format: unset SLURM_TIME_FORMAT or set it to 'standard'), "
            "'Unknown' or 'None'"
        ) from e
    if t.tzinfo is None:
        # Wall-clock time of sacct's host: an hour repeated at the end of
        # daylight saving time is read as its first occurrence (fold=0).
        t = t.replace(tzinfo=zone)
    return to_ns(t)


def _read_sacct(
    path: str,
    *,
    zone: dt.tzinfo,
    delimiter: str,
    columns: Sequence[str] | None,
    jobs: dict[tuple[str, str, int], _Job],
) -> None:
    """Parse one sacct dump into ``jobs`` (GPU allocations, keyed by cluster,
    raw job id and start), line by line."""
    with open_text(path) as f:
        lines = iter(f)
        names: list[str]
        lineno = 0
        if columns is not None:
            names = [c.strip().lower() for c in columns]
            trailing = False
        else:
            header = ""
            for raw in lines:
                lineno += 1
                header = raw.rstrip("\r\n")
                if header.strip():
                    break
            if not header.strip():
                return  # an empty dump: no jobs in the window
            fields = header.split(delimiter)
            trailing = len(fields) > 1 and fields[-1] == ""  # sacct -p
            if trailing:
                fields = fields[:-1]
            names = [h.strip().lower() for h in fields]
        index = {n: i for i, n in enumerate(names)}
        missing = [c for c in _REQUIRED if c not in index]
        if "jobid" not in index and "jobidraw" not in index:
            missing.insert(0, "jobid")
        if missing:
            hint = (
                f"the header is {delimiter.join(names)!r}"
                if columns is None
                else f"columns={list(columns)!r}"
            )
            if columns is None and len(names) == 1 and delimiter not in header:
                hint += f" (no {delimiter!r} in it: was sacct run with --delimiter?)"
            raise SchemaError(
                f"{path}: sacct output has no {', '.join(missing)} column; {hint}; expected "
                "sacct --parsable2 --format=JobID,JobIDRaw,JobName,User,Account,Partition,"
                "Start,End,State,NodeList,AllocTRES"
            )
        ncols = len(names)
        i_id = index.get("jobid", index.get("jobidraw"))
        assert i_id is not None
        i_raw = index.get("jobidraw", i_id)
        i_start, i_end = index["start"], index["end"]
        i_nodes, i_tres = index["nodelist"], index["alloctres"]
        opt = [
            index.get(c) for c in ("user", "account", "partition", "jobname", "state", "cluster")
        ]
        i_cluster = index.get("cluster")
        free = [i for n, i in index.items() if n in _FREE_TEXT]

        for raw in lines:
            lineno += 1
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            if trailing and line.endswith(delimiter):
                line = line[: -len(delimiter)]
            fields = line.split(delimiter)
            if len(fields) != ncols:
                fields = _repair(fields, ncols, free, delimiter, f"{path}:{lineno}")
            job_id = fields[i_id].strip()
            if "." in job_id:
                # A step (123.batch, 123.extern, 123.0): its GPUs are the
                # allocation's, already counted by the allocation line.
                continue
            where = f"{path}:{lineno} (job {job_id})"
            gpus = _gpu_count(fields[i_tres].strip(), where)
            if gpus <= 0:
                continue  # no GPU: nothing to attribute on a GPU fleet
            start_s = fields[i_start].strip()
            if start_s in _NO_TIME:
                continue  # never started (pending, cancelled before start)
            nodelist = fields[i_nodes].strip()
            if nodelist in ("", "None assigned", "(null)"):
                continue
            start = _parse_time(start_s, zone, where, "Start")
            end_s = fields[i_end].strip()
            end = None if end_s in _NO_TIME else _parse_time(end_s, zone, where, "End")
            labels = tuple((fields[i].strip() or None) if i is not None else None for i in opt)
            cluster = fields[i_cluster].strip() if i_cluster is not None else ""
            key = (cluster, fields[i_raw].strip(), start)
            job = _Job(job_id, start, end, nodelist, gpus, labels, where)
            old = jobs.get(key)
            # Overlapping dumps (daily windows) list a job in each: the one
            # that knows the end wins, else the last one read.
            if old is None or not (end is None and old.end is not None):
                jobs[key] = job


def _repair(
    fields: list[str], ncols: int, free: list[int], delimiter: str, where: str
) -> list[str]:
    """A line with more fields than the header because a free-text field
    (JobName) contains the delimiter: join them back when that is the only
    free-text column, else say which delimiter to use. (``-p -n``: the
    delimiter that ends each line leaves one empty field more.)"""
    if len(fields) == ncols + 1 and fields[-1] == "":
        return fields[:-1]
    if len(fields) > ncols and len(free) == 1:
        k = free[0]
        extra = len(fields) - ncols
        return [*fields[:k], delimiter.join(fields[k : k + extra + 1]), *fields[k + extra + 1 :]]
    raise InputError(
        f"{where}: {len(fields)} fields, the header has {ncols}; a job name or comment "
        f"may contain {delimiter!r}: rerun sacct with a delimiter no job name uses "
        "(--delimiter=$'\\x1f' and delimiter='\\x1f'), or check the file is not truncated"
    )


def _load_teams(teams: Mapping[str, str] | str | os.PathLike[str] | None) -> dict[str, str] | None:
    if teams is None:
        return None
    if isinstance(teams, Mapping):
        return {str(k): str(v) for k, v in teams.items()}
    path = os.fspath(teams)
    out: dict[str, str] = {}
    # An account -> team table has one row per account: small.
    with open_text(path) as f:
        reader = csv.reader(f, skipinitialspace=True)
        header = [h.strip().lower() for h in next(reader, [])]
        if "account" not in header or "team" not in header:
            raise SchemaError(
                f"{path}: team map header is {','.join(header)!r}; expected columns account,team"
            )
        ia, it = header.index("account"), header.index("team")
        for lineno, rec in enumerate(reader, start=2):
            if not rec:
                continue
            if len(rec) != len(header):
                raise InputError(f"{path}:{lineno}: {len(rec)} fields; expected {len(header)}")
            out[rec[ia].strip()] = rec[it].strip()
    return out


def from_sacct(
    paths: Paths,
    *,
    tz: str | None,
    until: Until = None,
    gpus_per_node: int | None = None,
    device_map: DeviceMapSource | DeviceMap | None = None,
    device_id: str = "{host}/{gpu}",
    delimiter: str = "|",
    columns: Sequence[str] | None = None,
    teams: Mapping[str, str] | str | os.PathLike[str] | None = None,
) -> pa.Table:
    """Slurm ``sacct --parsable2`` dumps as an ``allocations`` table.

    One row per (job, GPU): ``job_id`` (sacct's JobID: ``123``, ``123_4``,
    ``123+0``), ``device_id`` (``device_id`` template over ``{host}``,
    ``{gpu}`` and ``{uuid}``, through ``device_map``), ``start``, ``end``,
    ``share``, ``share_basis`` (always ``"count"``: sacct gives a GPU count,
    not indexes, so a job with ``n`` GPUs on a node of ``G`` gets ``n / G``
    of each of its ``G`` GPUs; a job's ``gres/gpu`` total is split evenly
    over its nodes), then ``user, account, partition, job_name, state,
    cluster, host, gpu`` and ``team`` (with ``teams``, from the account).

    ``tz`` (required) is the zone sacct's host printed times in. Steps,
    never-started jobs, jobs without GPUs and zero-length jobs are skipped.
    A running job (``End`` ``Unknown``) ends at ``until`` (the time the dump
    was taken); without ``until`` it is dropped with a warning. A job listed
    in several dumps counts once (the record with a known end wins).
    """
    zone = parse_zone(tz, source="sacct", what="Start/End (sacct prints local time)")
    until_ns = parse_until(until, zone, source="sacct")
    files = input_paths(paths, what="sacct")
    if not delimiter:
        raise InputError("sacct: delimiter is empty; expected sacct's --delimiter ('|' default)")
    if gpus_per_node is not None and gpus_per_node <= 0:
        raise InputError(f"sacct: gpus_per_node={gpus_per_node}; expected a positive integer")
    resolver = Resolver(
        _as_device_map(device_map), DeviceTemplate(device_id), gpus_per_node=gpus_per_node
    )
    team_of = _load_teams(teams)

    jobs: dict[tuple[str, str, int], _Job] = {}
    for path in files:
        _read_sacct(path, zone=zone, delimiter=delimiter, columns=columns, jobs=jobs)

    labels = [*_SLURM_LABELS, *(["team"] if team_of is not None else [])]
    rows = AllocationRows(labels)
    running: list[str] = []
    for job in jobs.values():
        end = job.end
        if end is None:
            if until_ns is None:
                running.append(job.job_id)
                continue
            if until_ns <= job.start:
                raise InputError(
                    f"{job.where}: a running job's Start {_iso(job.start)} is not before "
                    f"until={_iso(until_ns)}; until is when the dump was taken, so it must "
                    "be after every running job's start"
                )
            end = until_ns
        if end < job.start:
            raise InputError(
                f"{job.where}: End {_iso(end)} is before Start {_iso(job.start)}; "
                "expected End >= Start"
            )
        if end == job.start:
            continue  # ran for no time: nothing to attribute
        try:
            hosts = expand_hostlist(job.nodelist)
        except InputError as e:
            raise InputError(f"{job.where}: NodeList: {e}") from None
        per_node = job.gpus / len(hosts)
        team = None
        if team_of is not None and job.labels[1] is not None:
            team = team_of.get(job.labels[1])
        for host in hosts:
            gpus = resolver.node_gpus(host, where=job.where, key="gpu")
            if per_node > len(gpus) + 1e-9:
                raise InputError(
                    f"{job.where}: {job.gpus} GPUs on {len(hosts)} node(s) is {per_node:g} per "
                    f"node, but host {host!r} has {len(gpus)}; check gpus_per_node / the "
                    "device map"
                )
            share = per_node / len(gpus)
            for dev, frac, idx in gpus:
                extra: tuple[str | None, ...] = (host, idx)
                if team_of is not None:
                    extra += (team,)
                rows.add(
                    job.job_id, dev, job.start, end, share * frac, BASIS_COUNT, job.labels + extra
                )
    if running:
        warnings.warn(
            f"sacct: {len(running)} running job(s) without an End were dropped "
            f"({examples(running)}); pass until=... (--until, the time sacct ran) "
            "to count them up to then",
            stacklevel=2,
        )
    return rows.table()


def _iso(ns: int) -> str:
    return (
        dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=ns // 1000)
    ).isoformat()


# ---------------------------------------------------------------------------
# carbonledger ingest slurm
# ---------------------------------------------------------------------------


def add_device_arguments(p: argparse.ArgumentParser, default_template: str) -> None:
    """The device map / template options every scheduler format shares."""
    p.add_argument(
        "--device-map",
        metavar="CSV",
        help="CSV with columns host,gpu,uuid[,device_id][,fraction]: the GPUs of each "
        "host and their UUIDs (e.g. nvidia-smi --query-gpu=index,uuid --format=csv plus a "
        "host column); translates scheduler GPU names to power device ids",
    )
    p.add_argument(
        "--device-id",
        metavar="TEMPLATE",
        default=default_template,
        help=f"device id template over {{host}}, {{gpu}} (index) and {{uuid}} (default "
        f"{default_template}; use {{host}}/{{uuid}} to match dcgm-exporter's "
        "Hostname/UUID, {uuid} for nvidia-smi)",
    )


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="sacct --parsable2 output files")
    p.add_argument(
        "--tz",
        help="IANA zone of the host that ran sacct (its times have no offset), e.g. "
        "Europe/Berlin; run TZ=UTC sacct ... and pass --tz UTC to avoid DST ambiguity",
    )
    p.add_argument(
        "--until",
        metavar="TIME",
        help="when the dump was taken (ISO 8601; without offset: in --tz): running jobs "
        "end there; without it they are dropped with a warning",
    )
    p.add_argument(
        "--gpus-per-node",
        type=int,
        metavar="N",
        help="GPUs per node (indexes 0..N-1) for hosts the device map does not list",
    )
    add_device_arguments(p, "{host}/{gpu}")
    p.add_argument(
        "--delimiter", default="|", help="the --delimiter sacct was run with (default '|')"
    )
    p.add_argument(
        "--columns",
        metavar="A,B,...",
        help="the --format fields, for output written with -n/--noheader",
    )
    p.add_argument("--team-map", metavar="CSV", help="CSV account,team: adds a team column")


def _open(args: argparse.Namespace) -> pa.Table:
    columns = args.columns.split(",") if args.columns else None
    return from_sacct(
        args.inputs,
        tz=args.tz,
        until=args.until,
        gpus_per_node=args.gpus_per_node,
        device_map=args.device_map,
        device_id=args.device_id,
        delimiter=args.delimiter,
        columns=columns,
        teams=args.team_map,
    )


SAMPLE = """\
JobID|JobIDRaw|JobName|User|Account|Partition|Start|End|State|NodeList|AllocTRES|Elapsed
4242|4242|train-llm|alice|ml-research|gpu|2026-12-02T14:03:05|2026-12-02T18:03:05|COMPLETED|gpu[01-02]|billing=32,cpu=32,gres/gpu:a100=8,gres/gpu=8,mem=512G,node=2|04:00:00
4242.batch|4242.batch|batch||ml-research||2026-12-02T14:03:05|2026-12-02T18:03:05|COMPLETED|gpu01|cpu=16,gres/gpu:a100=4,gres/gpu=4,mem=256G,node=1|04:00:00
4243|4243|eval|bob|ml-eval|gpu|2026-12-02T15:00:00|Unknown|RUNNING|gpu03|billing=8,cpu=8,gres/gpu=2,mem=64G,node=1|01:12:40
"""

FORMATS: tuple[Format, ...] = (
    Format(
        name="slurm",
        table="allocations",
        help="Slurm sacct --parsable2 output -> allocations (count-based GPU shares)",
        add_arguments=_add_arguments,
        open=_open,
        sample=SAMPLE,
    ),
)
