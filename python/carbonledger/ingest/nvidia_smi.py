"""``nvidia-smi --query-gpu ... --format=csv -l 1`` logs to canonical
``power_w`` samples.

What the tool writes (``nvidia-smi --help-query-gpu``; the same CSV layout
is found in logs from drivers 396 (2018) to 535 (2024))::

    timestamp, uuid, power.draw [W], utilization.gpu [%]
    2026/12/02 14:03:05.123, GPU-5e3b9c1a-8f0e-4b4d-a1c2-7d9e0f1a2b3c, 312.45 W, 87 %
    2026/12/02 14:03:05.123, GPU-0c4f6a2e-1b3d-4e5f-8a9b-0c1d2e3f4a5b, [N/A], [N/A]

- fields are separated by ``", "`` and never quoted;
- the header names each queried field as it was asked for, followed by its
  unit in brackets (``power.draw [W]``) - also with ``nounits``, which only
  drops the unit from the values (``312.45`` instead of ``312.45 W``);
- ``noheader`` leaves the header out (then ``columns=`` must say what was
  queried);
- a value that cannot be read is a bracketed word: ``[N/A]``,
  ``[Not Supported]``, ``[Unknown Error]``, ``[GPU is lost]``,
  ``[Insufficient Permissions]``, ...;
- ``timestamp`` is the host's local wall-clock time, "YYYY/MM/DD
  HH:MM:SS.msec", without a zone, so the zone must be given (``tz=``);
- a logger restarted with ``>>`` appends a second header line mid-file.

The helpers for zone-less wall-clock times, device-id templates and input
paths are shared with ``counters`` (RAPL and NVML counter logs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from ..exceptions import InputError, OrderError, SchemaError
from ._common import Format, batches_of, open_text, parse_zone, power_reader

__all__ = ["FORMATS", "POWER_FIELDS", "PowerField", "from_nvidia_smi"]

PowerField = Literal["auto", "power.draw", "power.draw.average", "power.draw.instant"]
# The ``auto`` preference, best first. ``power.draw.average`` is the board's
# mean power over the last second (Ampere and newer, except GA100); on those
# GPUs ``power.draw`` is the same average, on older ones it is an
# instantaneous reading, as ``power.draw.instant`` always is. Energy is the
# integral of power, and a 1 s average sampled every second integrates the
# whole second, where an instantaneous reading is a point that misses what
# happened between samples (nvidia-smi --help-query-gpu; Yang et al., "Part-
# time power measurements: nvidia-smi's lack of attention", arXiv 2312.02741).
POWER_FIELDS: tuple[str, ...] = ("power.draw.average", "power.draw", "power.draw.instant")

# ``--query-gpu`` accepts aliases for a few fields; the header repeats the
# name as queried. Templates and lookups use the first name.
_ALIASES = {
    "gpu_uuid": "uuid",
    "gpu_name": "name",
    "gpu_serial": "serial",
    "gpu_bus_id": "pci.bus_id",
}
_HEADER_FIELD = re.compile(r"^([a-z][a-z0-9_.]*)(?: \[([^\]]*)\])?$")
_SMI_TS = re.compile(r"^(\d{4})/(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$")
# Lines nvidia-smi prints instead of a row when it cannot talk to the driver
# or to one GPU (seen in logs written with ``2>&1``); they hold no sample.
_DIAGNOSTICS = (
    "Unable to determine the device handle",
    "No devices were found",
    "NVIDIA-SMI has failed",
    "Failed to initialize NVML",
)
_NS = 1_000_000_000


# --- shared with counters.py -------------------------------------------------

Paths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def _input_paths(paths: Paths, what: str) -> list[str]:
    """The input files, in the order given (which must be time order for
    the files of one device), each checked to exist."""
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not items:
        raise InputError(f"{what}: no input files given; expected one or more paths")
    out = []
    for p in items:
        s = os.fspath(p)
        if not os.path.isfile(s):
            raise InputError(f"{what}: input file {s!r} does not exist (or is not a file)")
        out.append(s)
    return out


def _describe(paths: list[str]) -> str:
    return paths[0] if len(paths) == 1 else f"{paths[0]} (and {len(paths) - 1} more)"


class _Template:
    """A device-id template such as ``{host}/{uuid}``: ``{field}`` is
    replaced by that field's value (field names may contain dots, as
    nvidia-smi's do, so this is not ``str.format``); ``{{`` and ``}}`` are
    literal braces."""

    _PART = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")

    def __init__(self, text: str, option: str) -> None:
        self.text = text
        self.parts: list[tuple[bool, str]] = []  # (is_field, literal or name)
        pos = 0
        for m in self._PART.finditer(text):
            if m.start() > pos:
                self.parts.append((False, text[pos : m.start()]))
            tok = m.group(0)
            if tok in ("{{", "}}"):
                self.parts.append((False, tok[0]))
            elif m.group(1) is None or not m.group(1).strip():
                raise InputError(
                    f"{option}={text!r}: unbalanced or empty brace at position {m.start()}; "
                    "expected fields in braces such as '{uuid}' or '{host}/{uuid}' "
                    "(write '{{' or '}}' for a literal brace)"
                )
            else:
                self.parts.append((True, _ALIASES.get(m.group(1).strip(), m.group(1).strip())))
            pos = m.end()
        if pos < len(text):
            self.parts.append((False, text[pos:]))
        self.fields = [name for is_field, name in self.parts if is_field]
        if not self.fields:
            raise InputError(
                f"{option}={text!r}: names no field, so every row would be one device; "
                "expected e.g. '{uuid}' or '{host}/{uuid}'"
            )

        # Just one field and no text around it: the value is the id.
        self.single = len(self.parts) == 1

    def render(self, values: Mapping[str, str]) -> str:
        """The id from the fields' values by name."""
        return "".join(values[s] if is_field else s for is_field, s in self.parts)

    def render_parts(self, values: Sequence[str]) -> str:
        """The id from the fields' values in the order of ``fields``."""
        it = iter(values)
        return "".join(next(it) if is_field else s for is_field, s in self.parts)


class _LocalClock:
    """Zone-less wall-clock timestamps of one zone to UTC nanoseconds.

    The autumn fall-back hour happens twice (Europe/Berlin 2026-10-25: 02:00
    to 02:59:59 first in CEST, then again in CET). A logger writes rows in
    time order, so the rows say which pass they belong to: inside the
    repeated hour, rows are read as the first pass (``fold=0``) until the
    clock is seen to jump back (a row more than half the shift earlier than
    the latest one), and as the second pass (``fold=1``) from then on. A row
    before the repeated hour (the next file, another host) starts afresh. A
    time that does not exist (the spring-forward gap) cannot have been
    written by a clock in that zone: an ``InputError`` that suggests
    checking ``tz``."""

    def __init__(self, zone: dt.tzinfo, zone_name: str) -> None:
        self.zone = zone
        self.zone_name = zone_name
        self._minute: int | None = None  # naive minute of the cached offsets
        self._off0 = 0
        self._off1 = 0
        self._first_max: int | None = None  # latest naive ns of the first pass
        self._second = False

    def _offsets(self, minute: int) -> None:
        # Transitions fall on whole minutes, so one lookup serves a minute of
        # rows; logs are in time order, so a one-entry cache hits nearly always.
        if minute != self._minute:
            t = dt.datetime(1970, 1, 1) + dt.timedelta(minutes=minute)
            o0 = t.replace(tzinfo=self.zone, fold=0).utcoffset()
            o1 = t.replace(tzinfo=self.zone, fold=1).utcoffset()
            assert o0 is not None and o1 is not None  # a ZoneInfo always answers
            self._off0 = int(o0.total_seconds()) * _NS
            self._off1 = int(o1.total_seconds()) * _NS
            self._minute = minute

    def to_utc_ns(self, naive_ns: int, where: str, value: str) -> int:
        """``naive_ns``: the wall-clock time as if it were UTC (ns)."""
        self._offsets(naive_ns // (60 * _NS))
        o0, o1 = self._off0, self._off1
        if o0 == o1:
            if self._first_max is not None and naive_ns < self._first_max:
                self._first_max, self._second = None, False
            return naive_ns - o0
        if o0 < o1:  # PEP 495: in a gap fold=0 gives the earlier (smaller) offset
            raise InputError(
                f"{where}: timestamp {value!r} does not exist in {self.zone_name} (the clocks "
                "skipped it when daylight saving time began), so the log was not written in "
                f"that zone; check tz={self.zone_name!r} (--tz), e.g. the host may log in UTC"
            )
        shift = o0 - o1
        if self._first_max is None or abs(naive_ns - self._first_max) > 2 * shift:
            self._first_max, self._second = naive_ns, False
        elif not self._second:
            if naive_ns < self._first_max - shift // 2:
                self._second = True
            else:
                self._first_max = max(self._first_max, naive_ns)
        return naive_ns - (o1 if self._second else o0)


def _civil_ns(y: int, mo: int, d: int, h: int, mi: int, s: int, frac: str | None) -> int:
    """Wall-clock fields as nanoseconds since 1970-01-01T00:00 of that
    clock; ``ValueError`` for an impossible date or time."""
    days = dt.date(y, mo, d).toordinal() - 719_163
    if h > 23 or mi > 59 or s > 59:
        raise ValueError("time of day out of range")
    ns = int(frac.ljust(9, "0")) if frac else 0
    return ((days * 24 + h) * 60 + mi) * 60 * _NS + s * _NS + ns


def _check_order(
    last: dict[str, tuple[int, str, int]], device: str, ts: int, path: str, line: int
) -> None:
    prev = last.get(device)
    if prev is not None and ts < prev[0]:
        raise OrderError(
            f"{path}:{line}: device {device!r}: sample at {_iso(ts)} is earlier than its "
            f"previous sample at {_iso(prev[0])} ({prev[1]}:{prev[2]}); expected each device's "
            "rows in time order: pass the files in time order (oldest first), or sort them"
        )
    last[device] = (ts, path, line)


def _iso(ns: int) -> str:
    t = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=ns // 1000)
    return t.isoformat().replace("+00:00", "Z")


def _unavailable(value: str) -> bool:
    """nvidia-smi's way of saying a value could not be read."""
    return value == "" or value.startswith("[") or value in ("N/A", "Not Supported")


# --- nvidia-smi --------------------------------------------------------------


@dataclass
class _Header:
    index: dict[str, int]  # canonical field name -> column
    names: list[str]  # column -> canonical field name
    n: int
    power: list[int]  # columns to try for power, in order
    util: int | None
    ts: int
    template_cols: list[int]  # column of each template field; -1: host=
    host_in_template: bool


def _parse_header(
    fields: list[str],
    where: str,
    template: _Template,
    power_field: str,
    host: str | None,
) -> _Header:
    index: dict[str, int] = {}
    units: dict[str, str] = {}
    index_names: list[str] = []
    for i, f in enumerate(fields):
        m = _HEADER_FIELD.match(f)
        if m is None:  # unreachable: lines are only headers when every field matches
            raise SchemaError(f"{where}: header field {f!r} is not a nvidia-smi field name")
        name = _ALIASES.get(m.group(1), m.group(1))
        index[name] = i
        index_names.append(name)
        units[name] = m.group(2) or ""
    names = ", ".join(fields)
    if "timestamp" not in index:
        raise SchemaError(
            f"{where}: header ({names}) has no 'timestamp' field; expected a log of "
            "nvidia-smi --query-gpu=timestamp,uuid,power.draw,... --format=csv"
        )
    wanted = list(POWER_FIELDS) if power_field == "auto" else [power_field]
    power_names = [p for p in wanted if p in index]
    if not power_names:
        expected = " or ".join(repr(p) for p in wanted)
        raise SchemaError(
            f"{where}: header ({names}) has no power field {expected}; query one of them "
            "(--query-gpu=timestamp,uuid,power.draw,...) or choose another power_field "
            "(--power-field)"
        )
    for p in power_names:
        if units[p] not in ("", "W"):
            raise SchemaError(f"{where}: field {p!r} has unit [{units[p]}]; expected [W]")
    for f in template.fields:
        if f not in index and not (f == "host" and host is not None):
            hint = (
                "; nvidia-smi does not log the host: pass host='node01' (--host)"
                if f == "host"
                else ""
            )
            raise SchemaError(
                f"{where}: device_id template {template.text!r} uses field {f!r}, which "
                f"the header ({names}) does not have{hint}"
            )
    cols = [index.get(f, -1) for f in template.fields]
    return _Header(
        index=index,
        names=list(index_names),
        n=len(fields),
        power=[index[p] for p in power_names],
        util=index.get("utilization.gpu"),
        ts=index["timestamp"],
        template_cols=cols,
        host_in_template=-1 in cols,
    )


def _is_header(fields: list[str]) -> bool:
    return all(_HEADER_FIELD.match(f) for f in fields)


def _number(value: str, unit: str, where: str, field: str) -> float | None:
    """A value as nvidia-smi prints it: ``312.45 W``, ``312.45`` (nounits)
    or a bracketed word when it could not be read (``None``)."""
    if value.endswith(unit):  # "312.45 W": the common case first
        text = value[: -len(unit)].rstrip()
    elif _unavailable(value):
        return None
    else:
        text = value
    try:
        return float(text)
    except ValueError:
        raise InputError(
            f"{where}: field {field!r}: value {value!r} is not a number in {unit}; "
            f"expected e.g. '312.45 {unit}', '312.45' (nounits) or '[N/A]'"
        ) from None


def _smi_rows(
    paths: list[str],
    clock: _LocalClock,
    template: _Template,
    power_field: str,
    host: str | None,
    columns: list[str] | None,
) -> Iterator[tuple[str, int, float | None, float | None]]:
    last: dict[str, tuple[int, str, int]] = {}
    nan = float("nan")
    # Every GPU of one query shares its timestamp: parse each stamp once.
    last_text = ""
    last_ts = 0
    host_value = host or ""
    for path in paths:
        header = (
            _parse_header(columns, f"{path} (columns=)", template, power_field, host)
            if columns
            else None
        )
        with open_text(path) as f:
            lineno = 0
            for raw in f:
                lineno += 1
                line = raw.rstrip("\r\n")
                if not line.strip():
                    continue
                if not raw.endswith(("\n", "\r")):
                    # nvidia-smi ends every row with a newline: a last line
                    # without one is a row still being written (a log copied
                    # while the logger ran), possibly cut inside a number.
                    continue
                fields = [x.strip() for x in line.split(",")]
                if fields[0][:1].isalpha() and _is_header(fields):
                    # The first header, or a logger restarted with ``>>``
                    # (its query may differ: read it again).
                    header = _parse_header(fields, f"{path}:{lineno}", template, power_field, host)
                    continue
                if len(fields) == 1 and line.startswith(_DIAGNOSTICS):
                    continue
                if header is None:
                    raise SchemaError(
                        f"{path}:{lineno}: no header line before the first row; the log was "
                        "written with --format=csv,noheader: pass columns='timestamp,uuid,"
                        "power.draw,utilization.gpu' (--columns), the --query-gpu list it was "
                        "written with"
                    )
                if len(fields) != header.n:
                    raise InputError(
                        f"{path}:{lineno}: row has {len(fields)} fields, the header has "
                        f"{header.n}; expected one value per queried field: {line!r}"
                    )
                if header.host_in_template:
                    parts = [host_value if i < 0 else fields[i] for i in header.template_cols]
                else:
                    parts = [fields[i] for i in header.template_cols]
                if any(_unavailable(v) for v in parts):
                    # A GPU nvidia-smi could not identify ("[GPU is lost]"):
                    # no device to give the sample to.
                    continue
                device = parts[0] if template.single else template.render_parts(parts)
                ts_text = fields[header.ts]
                if ts_text != last_text:
                    last_ts = _smi_ts(clock, ts_text, path, lineno)
                    last_text = ts_text
                ts = last_ts
                _check_order(last, device, ts, path, lineno)
                power: float | None = None
                for col in header.power:
                    power = _number(fields[col], "W", f"{path}:{lineno}", header.names[col])
                    if power is not None:
                        break
                util: float | None = None
                if header.util is not None:
                    u = _number(fields[header.util], "%", f"{path}:{lineno}", "utilization.gpu")
                    util = None if u is None else u / 100.0
                # An unreadable power value stays a row (NaN): the engine
                # counts it as an invalid sample, so the hole shows.
                yield device, ts, nan if power is None else power, util


def _smi_ts(clock: _LocalClock, text: str, path: str, lineno: int) -> int:
    m = _SMI_TS.match(text)
    try:
        if m is None:
            raise ValueError
        y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
        naive = _civil_ns(y, mo, d, h, mi, s, m.group(7))
    except ValueError:
        raise InputError(
            f"{path}:{lineno}: field 'timestamp': value {text!r} is not a timestamp; "
            "expected nvidia-smi's 'YYYY/MM/DD HH:MM:SS.mmm'"
        ) from None
    return clock.to_utc_ns(naive, f"{path}:{lineno}", text)


def from_nvidia_smi(
    paths: Paths,
    *,
    tz: str | None = None,
    device_id: str = "{uuid}",
    power_field: PowerField = "auto",
    host: str | None = None,
    columns: str | Sequence[str] | None = None,
) -> pa.RecordBatchReader:
    """Read ``nvidia-smi --query-gpu=... --format=csv[,nounits] -l N`` logs.

    Args:
        paths: one log or several (plain or ``.gz``), the files of one GPU
            in time order.
        tz: the IANA zone of the logging host's clock (required: nvidia-smi
            writes local time without a zone), e.g. ``"Europe/Berlin"``.
        device_id: template over the queried fields and ``host``:
            ``"{uuid}"`` (default), ``"{host}/{uuid}"``, ``"{host}/gpu{index}"``.
        power_field: ``"auto"`` takes, row by row, the first readable of
            ``power.draw.average``, ``power.draw``, ``power.draw.instant``
            among the queried fields; or name one of them.
        host: the value of ``{host}`` (nvidia-smi does not log it).
        columns: the ``--query-gpu`` list, for logs written with
            ``noheader`` (a header in the file takes precedence).

    Returns:
        A lazy ``pa.RecordBatchReader`` of ``device_id, ts, power_w,
        utilization`` (a fraction), every device's rows in time order.
        An unreadable power value (``[N/A]``, ``[Unknown Error]``, ...)
        gives a NaN row, which the engine counts as an invalid sample.
    """
    files = _input_paths(paths, "nvidia-smi")
    if power_field != "auto" and power_field not in POWER_FIELDS:
        raise InputError(
            f"power_field={power_field!r}: expected 'auto' or one of "
            + ", ".join(repr(p) for p in POWER_FIELDS)
        )
    zone = parse_zone(
        tz, source=f"nvidia-smi log {_describe(files)}", what="its 'timestamp' field (local time)"
    )
    template = _Template(device_id, "device_id")
    cols: list[str] | None = None
    if columns is not None:
        cols = [c.strip() for c in (columns.split(",") if isinstance(columns, str) else columns)]
        if not _is_header(cols):
            raise InputError(
                f"columns={columns!r}: expected the --query-gpu field names, comma-separated, "
                "e.g. 'timestamp,uuid,power.draw,utilization.gpu'"
            )
    clock = _LocalClock(zone, str(tz))
    rows = _smi_rows(files, clock, template, power_field, host, cols)
    return power_reader("power_w", batches_of(rows, "power_w"))


# --- carbonledger ingest nvidia-smi -------------------------------------------


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="nvidia-smi CSV logs (.csv or .csv.gz), each GPU's files in time order",
    )
    parser.add_argument(
        "--tz",
        required=False,
        help="IANA time zone of the logging host's clock (required: nvidia-smi writes local "
        "time without a zone), e.g. Europe/Berlin or UTC",
    )
    parser.add_argument(
        "--device-id",
        default="{uuid}",
        help="device id template over the queried fields and {host} "
        "(default: %(default)s; e.g. '{host}/{uuid}')",
    )
    parser.add_argument(
        "--power-field",
        default="auto",
        choices=("auto", *POWER_FIELDS),
        help="which power field to read: auto (default) takes, row by row, the first readable "
        "of power.draw.average, power.draw, power.draw.instant",
    )
    parser.add_argument("--host", help="value of {host} in --device-id (not in the log)")
    parser.add_argument(
        "--columns",
        help="the --query-gpu list, for logs written with noheader "
        "(e.g. timestamp,uuid,power.draw,utilization.gpu)",
    )


def _open(args: argparse.Namespace) -> pa.RecordBatchReader:
    return from_nvidia_smi(
        args.inputs,
        tz=args.tz,
        device_id=args.device_id,
        power_field=args.power_field,
        host=args.host,
        columns=args.columns,
    )


_SAMPLE = """\
timestamp, uuid, power.draw [W], utilization.gpu [%]
2026/12/02 14:03:05.123, GPU-5e3b9c1a-8f0e-4b4d-a1c2-7d9e0f1a2b3c, 312.45 W, 87 %
2026/12/02 14:03:05.123, GPU-0c4f6a2e-1b3d-4e5f-8a9b-0c1d2e3f4a5b, [N/A], [N/A]
2026/12/02 14:03:06.125, GPU-5e3b9c1a-8f0e-4b4d-a1c2-7d9e0f1a2b3c, 298.10 W, 85 %
"""

FORMATS: tuple[Format, ...] = (
    Format(
        name="nvidia-smi",
        table="power",
        help="nvidia-smi --query-gpu=timestamp,uuid,power.draw,utilization.gpu --format=csv "
        "-l 1 logs (local time: --tz required)",
        add_arguments=_add_arguments,
        open=_open,
        sample=_SAMPLE,
    ),
)
