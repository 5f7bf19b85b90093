"""Cumulative energy counters to canonical ``energy_j`` samples: Linux
RAPL (``/sys/class/powercap/*/energy_uj``) and NVIDIA NVML
(``nvmlDeviceGetTotalEnergyConsumption``).

Neither counter has a standard log format, so each gets a small documented
CSV that a one-line shell loop or a few lines of pynvml write (see
``docs/ingest/counters.md``). Columns are found by header name (any order,
extra columns allowed and usable in the device-id template); fields may be
quoted; a header repeated mid-file (a collector restarted with ``>>``) is
skipped.

RAPL (``rapl``)::

    timestamp,host,zone,name,energy_uj,max_energy_range_uj
    1796216585.123456789,node01,intel-rapl:0,package-0,81234567890,262143328850

The counter is in microjoules and wraps: the kernel's powercap ABI
(Documentation/power/powercap/powercap.rst) gives ``max_energy_range_uj`` as
the "range of the above energy counter", so ``energy_uj`` runs through
``0..max_energy_range_uj`` and then starts again at 0. A drop is unwrapped by
adding ``max_energy_range_uj + 1`` (the number of values in that range); the
kernel derives both numbers from a 32-bit register in RAPL energy units
(15.3-61 uJ), so the exact modulus is one unit more than the range, which
the kernel does not expose: the unwrapped energy is exact to one energy unit
per wrap (<= 61 uJ in the ~262 kJ a wrap takes, < 3e-10 relative). A drop
that would mean a mean power above ``max_power_w`` over its interval cannot
be a wrap (a reboot or a write of 0 reset the counter): it is passed through
as a drop, so the engine counts a reset and leaves that interval uncovered.

NVML (``nvml``)::

    timestamp,uuid,total_energy_mj
    2026-12-02T13:03:05.123456+00:00,GPU-5e3b9c1a-8f0e-4b4d-a1c2-7d9e0f1a2b3c,48213377221

``nvmlDeviceGetTotalEnergyConsumption`` is the board's energy in millijoules
since the driver was last loaded (Volta and newer); it is a 64-bit counter
that does not wrap, and a driver reload restarts it from 0. The drop is
passed through unchanged: the engine counts a reset and leaves that interval
uncovered (SPEC 4). ``nvidia-smi --query-gpu`` has no field for this counter
(``nvidia-smi --help-query-gpu`` lists power readings only), so it is logged
through NVML.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa

from ..exceptions import InputError, SchemaError
from ._common import Format, batches_of, open_text, parse_zone, power_reader
from .nvidia_smi import (
    _SMI_TS,
    Paths,
    _check_order,
    _civil_ns,
    _input_paths,
    _LocalClock,
    _Template,
    _unavailable,
)

__all__ = ["DEFAULT_MAX_POWER_W", "FORMATS", "from_nvml", "from_rapl"]

# The highest mean power (W) one RAPL zone can draw: a drop that would need
# more to be a wrap is a reset. Well above any package, DRAM or platform
# (psys) zone of a single host (server packages draw up to ~500 W).
DEFAULT_MAX_POWER_W = 10_000.0
_NS = 1_000_000_000
_EPOCH = re.compile(r"^(-?\d+)(?:\.(\d{1,9})\d*)?$")
_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9})\d*)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)
# Epoch seconds beyond this (year 5138) are milliseconds or nanoseconds.
_EPOCH_MAX_S = 100_000_000_000


class _Timestamps:
    """The timestamp forms the counter formats accept: epoch seconds
    (``date +%s.%N``, ``time.time()``), ISO 8601 with ``Z`` or an offset
    (``datetime.now(UTC).isoformat()``), and - only with ``tz`` - ISO 8601
    or nvidia-smi's ``YYYY/MM/DD HH:MM:SS.mmm`` without a zone."""

    def __init__(self, tz: str | None, source: str) -> None:
        self.tz = tz
        self.source = source
        self._clock: _LocalClock | None = None
        if tz is not None:
            self._clock = _LocalClock(parse_zone(tz, source=source, what="timestamps"), tz)

    def ns(self, text: str, where: str) -> int:
        m = _EPOCH.match(text)
        if m is not None:
            s = int(m.group(1))
            if abs(s) >= _EPOCH_MAX_S:
                raise InputError(
                    f"{where}: field 'timestamp': value {text!r} is too large for epoch "
                    "seconds; expected seconds since 1970 (e.g. date +%s.%N), not "
                    "milliseconds or nanoseconds"
                )
            frac = int((m.group(2) or "").ljust(9, "0"))
            return s * _NS + (-frac if text.startswith("-") else frac)
        naive: int | None = None
        offset: str | None = None
        try:
            if (m := _ISO.match(text)) is not None:
                y, mo, d, h, mi, sec = (int(g) for g in m.groups()[:6])
                naive = _civil_ns(y, mo, d, h, mi, sec, m.group(7))
                offset = m.group(8)
            elif (m := _SMI_TS.match(text)) is not None:
                y, mo, d, h, mi, sec = (int(g) for g in m.groups()[:6])
                naive = _civil_ns(y, mo, d, h, mi, sec, m.group(7))
        except ValueError:  # a date or time that does not exist (Feb 30)
            naive = None
        if naive is None:
            raise InputError(
                f"{where}: field 'timestamp': value {text!r} is not a timestamp; expected "
                "epoch seconds (1796216585.123), ISO 8601 with an offset "
                "(2026-12-02T14:03:05+01:00 or ...Z), or local time without a zone together "
                "with tz="
            )
        if offset is None:
            return self._local(naive, text, where)
        if offset == "Z":
            return naive
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        return naive - sign * (int(digits[:2]) * 60 + int(digits[2:])) * 60 * _NS

    def _local(self, naive: int, text: str, where: str) -> int:
        if self._clock is None:
            raise SchemaError(
                f"{where}: field 'timestamp': value {text!r} has no time zone; pass "
                "tz='Area/City' (--tz Area/City, e.g. --tz Europe/Berlin, or --tz UTC) to say "
                "which zone the logging host's clock was in, or log epoch seconds or ISO 8601 "
                "with an offset"
            )
        return self._clock.to_utc_ns(naive, where, text)


@dataclass
class _Csv:
    """One header of a counter CSV: column positions by lower-case name."""

    index: dict[str, int]
    names: list[str]

    def col(self, *names: str) -> int | None:
        for n in names:
            if n in self.index:
                return self.index[n]
        return None


def _header(row: list[str]) -> _Csv:
    names = [c.strip() for c in row]
    return _Csv({n.lower(): i for i, n in enumerate(names)}, names)


def _is_header(row: list[str]) -> bool:
    """A header line: the first, or one a restarted collector appended (no
    data row holds the word ``timestamp``)."""
    return any(c.strip().lower() == "timestamp" for c in row)


def _require(h: _Csv, where: str, fmt: str, *names: str) -> int:
    i = h.col(*names)
    if i is None:
        expected = " or ".join(repr(n) for n in names)
        raise SchemaError(
            f"{where}: header ({','.join(h.names)}) has no {expected} column; expected a "
            f"{fmt} log (see docs/ingest/counters.md)"
        )
    return i


def _check_template(
    h: _Csv, template: _Template, host: str | None, where: str, fmt: str
) -> list[tuple[str, int | None]]:
    """Where each template field comes from: a column, or ``host=``."""
    out: list[tuple[str, int | None]] = []
    for f in template.fields:
        i = h.col(f.lower())
        if i is None and not (f == "host" and host is not None):
            hint = ": add a host column or pass host='node01' (--host)" if f == "host" else ""
            raise SchemaError(
                f"{where}: device_id template {template.text!r} uses field {f!r}, which the "
                f"header ({','.join(h.names)}) does not have{hint}"
            )
        out.append((f, i))
    return out


def _rows(
    path: str,
) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of the non-blank rows of a CSV file, streamed."""
    with open_text(path) as f:
        reader = csv.reader(f)
        try:
            for row in reader:
                if row and any(c.strip() for c in row):
                    yield reader.line_num, row
        except csv.Error as e:
            raise InputError(f"{path}:{reader.line_num}: not a readable CSV row: {e}") from None


def _device(
    fields: list[tuple[str, int | None]],
    template: _Template,
    row: list[str],
    host: str | None,
) -> str | None:
    values: dict[str, str] = {}
    for name, i in fields:
        v = host if i is None else row[i].strip()
        if v is None or _unavailable(v):
            return None
        values[name] = v
    return template.render(values)


def _value(text: str, where: str, column: str, unit: str) -> float | None:
    t = text.strip()
    if _unavailable(t) or t.lower() == "nan":
        return None
    try:
        return float(t)
    except ValueError:
        raise InputError(
            f"{where}: column {column!r}: value {text!r} is not a number; expected a counter "
            f"in {unit} (or empty / [N/A] where it could not be read)"
        ) from None


# --- RAPL ---------------------------------------------------------------------


def _microjoules(text: str, where: str, column: str) -> int | None:
    """A powercap counter: the whole number of microjoules the kernel
    writes, or ``None`` where the collector could not read it."""
    t = text.strip()
    if _unavailable(t) or t.lower() == "nan":
        return None
    try:
        return int(t)
    except ValueError:
        raise InputError(
            f"{where}: column {column!r}: value {text!r} is not a whole number of "
            "microjoules; expected the integer the kernel writes in that powercap file "
            "(or empty / [N/A] where it could not be read)"
        ) from None


def _rapl_rows(
    paths: list[str],
    stamps: _Timestamps,
    template: _Template,
    host: str | None,
    max_energy_range_uj: int | None,
    zones: list[str] | None,
    max_power_w: float,
) -> Iterator[tuple[str, int, float | None, float | None]]:
    last: dict[str, tuple[int, str, int]] = {}
    # Per device: (last raw counter uJ, its ts, offset added by the wraps so far).
    state: dict[str, tuple[int, int, int]] = {}
    nan = float("nan")
    for path in paths:
        h: _Csv | None = None
        for lineno, row in _rows(path):
            where = f"{path}:{lineno}"
            if h is None or _is_header(row):
                h = _header(row)
                i_ts = _require(h, where, "RAPL", "timestamp")
                i_zone = _require(h, where, "RAPL", "zone")
                i_e = _require(h, where, "RAPL", "energy_uj")
                i_max = h.col("max_energy_range_uj")
                i_name = h.col("name")
                fields = _check_template(h, template, host, where, "RAPL")
                continue
            if len(row) != len(h.names):
                raise InputError(
                    f"{where}: row has {len(row)} fields, the header has {len(h.names)}; "
                    f"expected one value per column ({','.join(h.names)})"
                )
            if zones is not None:
                zone = row[i_zone].strip()
                name = row[i_name].strip() if i_name is not None else ""
                if not any(
                    fnmatch.fnmatchcase(zone, z) or fnmatch.fnmatchcase(name, z) for z in zones
                ):
                    continue
            device = _device(fields, template, row, host)
            if device is None:
                continue
            ts = stamps.ns(row[i_ts].strip(), where)
            _check_order(last, device, ts, path, lineno)
            raw = _microjoules(row[i_e], where, "energy_uj")
            if raw is None:
                yield device, ts, nan, None  # an invalid sample; the state is kept
                continue
            rng = max_energy_range_uj
            if i_max is not None:
                rng = _microjoules(row[i_max], where, "max_energy_range_uj") or rng
            if rng is not None and not 0 <= raw <= rng:
                raise InputError(
                    f"{where}: device {device!r}: energy_uj {raw} is outside the counter's range "
                    f"0..{rng} (max_energy_range_uj); expected a value the kernel can write: "
                    "check max_energy_range_uj"
                )
            prev = state.get(device)
            offset = 0
            if prev is not None:
                p_raw, p_ts, offset = prev
                if raw < p_raw and rng is not None:
                    wrapped = raw + rng + 1 - p_raw
                    dt_s = (ts - p_ts) / _NS
                    # A wrap is only credible if the zone could have drawn
                    # that much energy in the time between the samples.
                    if dt_s > 0 and wrapped / 1e6 <= max_power_w * dt_s:
                        offset += rng + 1
            state[device] = (raw, ts, offset)
            # Integer microjoules until here: exact, whatever the wrap count.
            yield device, ts, (raw + offset) / 1e6, None


def from_rapl(
    paths: Paths,
    *,
    max_energy_range_uj: int | None = None,
    device_id: str = "{host}/{zone}",
    host: str | None = None,
    tz: str | None = None,
    zones: str | Sequence[str] | None = None,
    max_power_w: float = DEFAULT_MAX_POWER_W,
) -> pa.RecordBatchReader:
    """Read RAPL ``energy_uj`` logs (CSV ``timestamp,host,zone,energy_uj``
    [``,name,max_energy_range_uj``]) as ``energy_j`` counters.

    Args:
        paths: one log or several (plain or ``.gz``), each zone's files in
            time order.
        max_energy_range_uj: the counters' range, for logs without a
            ``max_energy_range_uj`` column (a column value wins). Without
            either a drop cannot be unwrapped and is passed through as a
            counter reset.
        device_id: template over the columns and ``host``; default
            ``"{host}/{zone}"`` (``node01/intel-rapl:0``).
        host: ``{host}`` for logs without a ``host`` column.
        tz: zone of timestamps written without one (epoch seconds and ISO
            8601 with an offset need none).
        zones: keep only rows whose ``zone`` or ``name`` matches one of these
            shell patterns (``"package-*"``, ``"dram"``): ``psys`` contains
            the packages and ``core``/``uncore`` are parts of their package,
            so accounting them side by side counts energy twice.
        max_power_w: a drop that would mean more mean power than this over
            its interval is a reset, not a wrap.

    Returns:
        A lazy ``pa.RecordBatchReader`` of ``device_id, ts, energy_j,
        utilization`` (null): joules, unwrapped so each device's counter
        only grows except at a reset.
    """
    files = _input_paths(paths, "rapl")
    if max_energy_range_uj is not None and max_energy_range_uj <= 0:
        raise InputError(
            f"max_energy_range_uj={max_energy_range_uj!r}: expected the positive value of "
            "/sys/class/powercap/<zone>/max_energy_range_uj"
        )
    if not max_power_w > 0:
        raise InputError(f"max_power_w={max_power_w!r}: expected a positive power in W")
    pats = None if zones is None else _list(zones)
    stamps = _Timestamps(tz, f"RAPL log {files[0]}")
    template = _Template(device_id, "device_id")
    rows = _rapl_rows(files, stamps, template, host, max_energy_range_uj, pats, max_power_w)
    return power_reader("energy_j", batches_of(rows, "energy_j"))


def _list(value: str | Sequence[str]) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return [v.strip() for v in items if v.strip()]


# --- NVML ---------------------------------------------------------------------


_NVML_ENERGY = ("total_energy_mj", "energy_mj")
_NVML_UTIL = ("utilization_gpu", "utilization.gpu")


def _nvml_rows(
    paths: list[str], stamps: _Timestamps, template: _Template, host: str | None
) -> Iterator[tuple[str, int, float | None, float | None]]:
    last: dict[str, tuple[int, str, int]] = {}
    nan = float("nan")
    for path in paths:
        h: _Csv | None = None
        for lineno, row in _rows(path):
            where = f"{path}:{lineno}"
            if h is None or _is_header(row):
                h = _header(row)
                i_ts = _require(h, where, "NVML", "timestamp")
                i_e = _require(h, where, "NVML", *_NVML_ENERGY)
                e_name = h.names[i_e]
                i_u = h.col(*_NVML_UTIL)
                fields = _check_template(h, template, host, where, "NVML")
                continue
            if len(row) != len(h.names):
                raise InputError(
                    f"{where}: row has {len(row)} fields, the header has {len(h.names)}; "
                    f"expected one value per column ({','.join(h.names)})"
                )
            device = _device(fields, template, row, host)
            if device is None:
                continue
            ts = stamps.ns(row[i_ts].strip(), where)
            _check_order(last, device, ts, path, lineno)
            e = _value(row[i_e], where, e_name, "millijoules")
            util: float | None = None
            if i_u is not None:
                u = _value(row[i_u], where, h.names[i_u], "percent")
                util = None if u is None else u / 100.0
            # A reset (driver reload: the counter drops) passes through as
            # it is: the engine counts it and leaves the interval uncovered.
            yield device, ts, nan if e is None else e / 1000.0, util


def from_nvml(
    paths: Paths,
    *,
    device_id: str = "{uuid}",
    host: str | None = None,
    tz: str | None = None,
) -> pa.RecordBatchReader:
    """Read NVML total-energy logs (CSV ``timestamp,uuid,total_energy_mj``
    [``,utilization_gpu``]) as ``energy_j`` counters.

    Args:
        paths: one log or several (plain or ``.gz``), each GPU's files in
            time order.
        device_id: template over the columns and ``host``; default
            ``"{uuid}"``.
        host: ``{host}`` for logs without a ``host`` column.
        tz: zone of timestamps written without one.

    Returns:
        A lazy ``pa.RecordBatchReader`` of ``device_id, ts, energy_j,
        utilization``: joules (mJ / 1000), counter resets passed through.
    """
    files = _input_paths(paths, "nvml")
    stamps = _Timestamps(tz, f"NVML log {files[0]}")
    template = _Template(device_id, "device_id")
    rows = _nvml_rows(files, stamps, template, host)
    return power_reader("energy_j", batches_of(rows, "energy_j"))


# --- carbonledger ingest rapl / nvml --------------------------------------------


def _common_arguments(parser: argparse.ArgumentParser, what: str, default_id: str) -> None:
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help=f"{what} CSV logs (.csv or .csv.gz)"
    )
    parser.add_argument(
        "--device-id",
        default=default_id,
        help="device id template over the columns and {host} (default: %(default)s)",
    )
    parser.add_argument("--host", help="value of {host} for logs without a host column")
    parser.add_argument(
        "--tz",
        help="IANA zone of timestamps written without one (epoch seconds and ISO 8601 with "
        "an offset need none)",
    )


def _rapl_arguments(parser: argparse.ArgumentParser) -> None:
    _common_arguments(parser, "RAPL energy_uj", "{host}/{zone}")
    parser.add_argument(
        "--max-energy-range-uj",
        type=int,
        help="the counters' max_energy_range_uj, for logs without that column",
    )
    parser.add_argument(
        "--zones",
        help="keep only these zones, by zone or name, comma-separated shell patterns "
        "(e.g. 'package-*,dram'; psys contains the packages: never both)",
    )
    parser.add_argument(
        "--max-power-w",
        type=float,
        default=DEFAULT_MAX_POWER_W,
        help="a counter drop that would mean more mean power than this is a reset, not a wrap "
        "(default: %(default)s W)",
    )


def _nvml_arguments(parser: argparse.ArgumentParser) -> None:
    _common_arguments(parser, "NVML total-energy", "{uuid}")


def _open_rapl(args: argparse.Namespace) -> pa.RecordBatchReader:
    return from_rapl(
        args.inputs,
        max_energy_range_uj=args.max_energy_range_uj,
        device_id=args.device_id,
        host=args.host,
        tz=args.tz,
        zones=args.zones,
        max_power_w=args.max_power_w,
    )


def _open_nvml(args: argparse.Namespace) -> pa.RecordBatchReader:
    return from_nvml(args.inputs, device_id=args.device_id, host=args.host, tz=args.tz)


_RAPL_SAMPLE = """\
timestamp,host,zone,name,energy_uj,max_energy_range_uj
1796216585.123456789,node01,intel-rapl:0,package-0,262143000000,262143328850
1796216585.123456789,node01,intel-rapl:0:0,dram,11532890112,65712999613
1796216586.124001233,node01,intel-rapl:0,package-0,171671150,262143328850
"""
_NVML_SAMPLE = """\
timestamp,uuid,total_energy_mj,utilization_gpu
2026-12-02T13:03:05.123456+00:00,GPU-5e3b9c1a-8f0e-4b4d-a1c2-7d9e0f1a2b3c,48213377221,87
2026-12-02T13:03:06.124012+00:00,GPU-5e3b9c1a-8f0e-4b4d-a1c2-7d9e0f1a2b3c,48213689670,85
"""

FORMATS: tuple[Format, ...] = (
    Format(
        name="rapl",
        table="power",
        help="RAPL energy_uj counter logs (CSV timestamp,host,zone,energy_uj"
        "[,max_energy_range_uj]), unwrapped into energy_j",
        add_arguments=_rapl_arguments,
        open=_open_rapl,
        sample=_RAPL_SAMPLE,
    ),
    Format(
        name="nvml",
        table="power",
        help="NVML nvmlDeviceGetTotalEnergyConsumption logs (CSV timestamp,uuid,"
        "total_energy_mj), as energy_j",
        add_arguments=_nvml_arguments,
        open=_open_nvml,
        sample=_NVML_SAMPLE,
    ),
)
