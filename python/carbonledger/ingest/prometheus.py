"""NVIDIA dcgm-exporter metrics, as Prometheus gives them, to carbonledger's
canonical ``power`` table.

Two inputs:

- ``prometheus-json``: responses of the Prometheus HTTP API, as saved from
  ``/api/v1/query_range`` (a ``matrix`` of series, each with
  ``[[<unix seconds>, "<value>"], ...]``), usually paginated into many
  files of consecutive time ranges; ``/api/v1/query`` answers (``vector``,
  or a ``matrix`` of raw samples for a range selector) are read the same way;
- ``prometheus-text``: scrapes of the exporter saved from
  ``curl http://host:9400/metrics`` (Prometheus text exposition format
  0.0.4), one scrape per file.

The metrics and units are those of dcgm-exporter's ``etc/default-counters.csv``:
``DCGM_FI_DEV_POWER_USAGE`` (gauge, W) gives ``power_w``;
``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION`` (counter, mJ since boot) gives
``energy_j`` (mJ / 1000); ``DCGM_FI_DEV_GPU_UTIL`` (gauge, %) or
``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` (a 0..1 ratio) gives ``utilization``, joined
to the power or energy sample of the same device at the same instant.

Output order: every row is sorted by ``(ts, device_id)`` before it is handed
out, so each device's samples are in time order whatever the order of the
files, pages and series (the join needs the sort anyway: Prometheus returns a
device's utilization series far from its power series). The sort keeps memory
bounded: past ``_SPILL_ROWS`` samples they go to a temporary SQLite file,
whose sorter works on disk.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import itertools
import json
import math
import os
import re
import shutil
import sqlite3
import tempfile
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, Literal, NoReturn

import pyarrow as pa

from ..exceptions import InputError, SchemaError
from ._common import (
    BATCH_ROWS,
    Format,
    PowerBatches,
    ValueColumn,
    open_text,
    parse_zone,
    power_reader,
    to_ns,
)

__all__ = [
    "DEFAULT_DEVICE_ID",
    "ENERGY_METRIC",
    "FORMATS",
    "GPU_UTIL_METRIC",
    "GR_ENGINE_ACTIVE_METRIC",
    "POWER_METRIC",
    "PrometheusIngestWarning",
    "from_prometheus_json",
    "from_prometheus_text",
]

POWER_METRIC = "DCGM_FI_DEV_POWER_USAGE"
ENERGY_METRIC = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"
GPU_UTIL_METRIC = "DCGM_FI_DEV_GPU_UTIL"
GR_ENGINE_ACTIVE_METRIC = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
DEFAULT_DEVICE_ID = "{Hostname}/{UUID}"

# value option -> (metric, canonical column, divisor to the canonical unit)
_VALUES: dict[str, tuple[str, ValueColumn, float]] = {
    "power": (POWER_METRIC, "power_w", 1.0),  # W
    "energy": (ENERGY_METRIC, "energy_j", 1000.0),  # mJ -> J
}
# utilization metric -> divisor to a 0..1 fraction
_UTILIZATIONS: dict[str, float] = {GPU_UTIL_METRIC: 100.0, GR_ENGINE_ACTIVE_METRIC: 1.0}

PathsArg = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]
Value = Literal["power", "energy"]

# Samples held in memory before the sort moves to a temporary SQLite file
# (a row costs ~200 bytes as a Python tuple: ~25 MB). Tests lower it.
_SPILL_ROWS = 1 << 17
# Characters read per step of the JSON reader's sliding buffer.
_CHUNK_CHARS = 1 << 20
# The largest single JSON value (one series object) the reader will hold.
# /api/v1/query_range refuses more than 11,000 points per series (Prometheus
# web/api/v1/api.go), a few hundred kB; raw samples of a range selector
# (`metric[30d]`) are a few MB. Past this the file is taken as malformed.
_MAX_VALUE_CHARS = 1 << 28
# Rows per output batch (``_common.BATCH_ROWS``; tests lower it).
_BATCH_ROWS = BATCH_ROWS
# Parsed label sets of text-format series kept for reuse across scrapes.
_SERIES_CACHE = 1 << 16

# DCGM's "no value" sentinels (dcgm_structs.h: DCGM_FP64_BLANK = 2**47 and
# the NOT_FOUND / NOT_SUPPORTED / NOT_PERMISSIONED values just above it;
# DCGM_INT64_BLANK = 0x7ffffffffffffff0 and up, which Prometheus' float64
# rounds to 2**63; DCGM_INT32_BLANK = 0x7ffffff0 and up). dcgm-exporter
# before 4.5.2-4.8.1 printed them as values (its README shows
# DCGM_FI_DEV_MEMORY_TEMP 9223372036854775794). Read as watts, 2**47 would
# stop the engine as a sample above max_power_w; as NaN it is an invalid
# sample, dropped and counted.
_FP64_BLANKS = frozenset(float(2**47 + k) for k in range(4))
_INT32_BLANKS = frozenset(float(0x7FFFFFF0 + k) for k in range(4))
_INT64_BLANK_MIN = 9.2e18


class PrometheusIngestWarning(UserWarning):
    """Something in a Prometheus dump that the adapter read as documented but
    that may not be what the user meant (a GPU whose device id changed, a
    Prometheus warning in a response, utilization out of range)."""


def _skip(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """The position after what ``pattern`` (which may match nothing) matches at ``pos``."""
    m = pattern.match(text, pos)
    return m.end() if m else pos


def _is_blank(x: float, util: bool) -> bool:
    return x in _FP64_BLANKS or _INT64_BLANK_MIN <= x < math.inf or (util and x in _INT32_BLANKS)


def _go_float(text: str) -> float | None:
    """A sample value as Prometheus parses it (Go ``strconv.ParseFloat``, no
    underscores: NaN, +Inf and -Inf included), ``None`` if it is not one."""
    if "_" in text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


# ----------------------------------------------------------------- device ids


class _Template:
    """A device id template: label names in braces (``{Hostname}/{UUID}``),
    ``{{`` and ``}}`` for literal braces."""

    _TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]|[^{}]+")

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise InputError(
                f"device_id: got {text!r}; expected a template string such as '{DEFAULT_DEVICE_ID}'"
            )
        self.text = text
        self.parts: list[tuple[bool, str]] = []  # (is a label, literal text or label name)
        for m in self._TOKEN.finditer(text):
            tok = m.group(0)
            if tok in ("{{", "}}"):
                self.parts.append((False, tok[0]))
            elif tok in ("{", "}"):
                raise InputError(
                    f"device_id template {text!r}: unbalanced {tok!r}; expected label names "
                    "in braces such as '{Hostname}/{UUID}' ('{{' and '}}' for literal braces)"
                )
            elif m.group(1) is not None:
                name = m.group(1).strip()
                if not name:
                    raise InputError(
                        f"device_id template {text!r}: empty '{{}}'; expected a label name "
                        "in the braces, such as '{UUID}'"
                    )
                self.parts.append((True, name))
            else:
                self.parts.append((False, tok))
        if not any(is_label for is_label, _ in self.parts):
            raise InputError(
                f"device_id template {text!r} names no label, so every GPU would get the same "
                "id; expected label names in braces such as '{Hostname}/{UUID}' or '{UUID}'"
            )

    def render(self, labels: Mapping[str, str], where: Callable[[], str]) -> str:
        out: list[str] = []
        for is_label, s in self.parts:
            if not is_label:
                out.append(s)
                continue
            v = _label(labels, s, where)
            if v is None:
                have = ", ".join(sorted(labels)) or "none"
                raise SchemaError(
                    f"{where()}: no label {s!r}, which device_id template {self.text!r} needs "
                    f"(labels: {have}); expected every series to carry it, or pass a template "
                    "of labels it has (device_id='{UUID}' with --device-id '{UUID}')"
                )
            out.append(v)
        return "".join(out)


def _label(labels: Mapping[str, str], name: str, where: Callable[[], str]) -> str | None:
    """A label's value. An exact name first; failing that, the one label of
    the same name in another case: dcgm-exporter renamed ``Hostname`` to
    ``hostname`` (commit d5e5f51, 2026) and writes ``uuid`` instead of
    ``UUID`` with ``--use-old-namespace``, and a GPU must keep its id across
    such an upgrade. An empty value is no value (Prometheus drops empty
    labels)."""
    v = labels.get(name)
    if v:
        return v
    low = name.lower()
    found = [k for k, x in labels.items() if x and k != name and k.lower() == low]
    if len(found) == 1:
        return labels[found[0]]
    if len(found) > 1:
        raise SchemaError(
            f"{where()}: no label {name!r} and several that differ from it only in case "
            f"({', '.join(sorted(found))}); expected one, or a device_id template that names "
            "the right one exactly"
        )
    return None


def _uuid(labels: Mapping[str, str]) -> str | None:
    return labels.get("UUID") or labels.get("uuid") or None


def _describe(name: str, labels: Mapping[str, str]) -> str:
    body = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    text = f"{name}{{{body}}}"
    return text if len(text) <= 300 else text[:297] + "..."


# ------------------------------------------------------------------- the sort


class _Store:
    """The samples of a whole input, handed back sorted by ``(ts,
    device_id)`` with input order kept among equals. Rows are ``(ts_ns,
    device_id, kind, series, value)``: kind 0 a power/energy sample, 1 a
    utilization; ``series`` tells two series of one device apart.

    Up to ``_SPILL_ROWS`` rows are sorted in memory; beyond, every row goes
    to a temporary SQLite database whose ORDER BY sorts on disk, so memory
    stays bounded on a dump of any size (disk use is about the samples')."""

    def __init__(self) -> None:
        self._rows: list[tuple[int, str, int, int, float]] = []
        self._limit = max(1, _SPILL_ROWS)
        self._tmp: str | None = None
        self._db: sqlite3.Connection | None = None
        self._cleanup: weakref.finalize[Any, Any] | None = None

    def add(self, row: tuple[int, str, int, int, float]) -> None:
        self._rows.append(row)
        if len(self._rows) >= self._limit:
            self._spill()

    def extend(self, rows: list[tuple[int, str, int, int, float]]) -> None:
        """Several rows (one series: the buffer may pass the limit by one)."""
        self._rows.extend(rows)
        if len(self._rows) >= self._limit:
            self._spill()

    def _spill(self) -> None:
        if self._db is None:
            self._tmp = tempfile.mkdtemp(prefix="carbonledger-prometheus-")
            # Removed by close(), or when the store is collected, or at exit
            # (a reader abandoned part-way is not always collected before).
            self._cleanup = weakref.finalize(self, shutil.rmtree, self._tmp, ignore_errors=True)
            db = sqlite3.connect(os.path.join(self._tmp, "sort.sqlite"))
            # A scratch file: no journal, no fsync; the sorter spills to files.
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")
            db.execute("PRAGMA temp_store=FILE")
            db.execute("PRAGMA cache_size=-32768")
            # rowid grows with each insert: it keeps input order among equals.
            db.execute(
                "CREATE TABLE s (ts INTEGER, dev TEXT, kind INTEGER, series INTEGER, v REAL)"
            )
            self._db = db
        self._db.executemany("INSERT INTO s VALUES (?, ?, ?, ?, ?)", self._rows)
        self._rows = []

    def sorted_rows(self) -> Iterator[tuple[int, str, int, int, float | None]]:
        """Every row, sorted; a NaN value may come back as ``None`` (SQLite
        stores NaN as NULL, and there is no other NULL)."""
        if self._db is None:
            rows, self._rows = self._rows, []
            rows.sort(key=itemgetter(0, 1))  # stable: input order among equals
            return iter(rows)
        if self._rows:
            self._spill()
        self._db.commit()
        cursor = self._db.execute("SELECT * FROM s ORDER BY ts, dev, rowid")
        cursor.arraysize = 4096
        return iter(cursor)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._cleanup is not None:
            self._cleanup()
            self._cleanup = None


# ------------------------------------------------------------ the shared core


@dataclass
class _SeriesInfo:
    """What one series (one label set) contributes: its kind, device id,
    identity, divisor, and the time span of its GPU under that id."""

    kind: int  # 0 value, 1 utilization
    device: str
    series: int
    div: float
    span: list[int] | None  # [first ts, last ts] of (UUID, device id)
    desc: str  # the series as text, for messages


class _Ingest:
    """Reads series of either format into one sorted, joined stream."""

    def __init__(self, value: str, utilization: str | None, device_id: str) -> None:
        if value not in _VALUES:
            raise InputError(
                f"value={value!r}; expected 'power' ({POWER_METRIC}, W) or 'energy' "
                f"({ENERGY_METRIC}, mJ since boot)"
            )
        if utilization is not None and utilization not in _UTILIZATIONS:
            raise InputError(
                f"utilization={utilization!r}; expected {GPU_UTIL_METRIC!r} (percent), "
                f"{GR_ENGINE_ACTIVE_METRIC!r} (ratio 0..1) or None (no utilization)"
            )
        self.value_metric, self.column, self.value_div = _VALUES[value]
        self.util_metric = utilization
        self.util_div = _UTILIZATIONS[utilization] if utilization else 1.0
        self.template = _Template(device_id)
        self.store = _Store()
        self.values = 0
        self.names_seen: set[str] = set()
        # UUID -> device id -> [first ts, last ts]: bounded by the fleet.
        self.spans: dict[str, dict[str, list[int]]] = {}
        self.util_bad = 0
        self.util_bad_first = ""
        self.prom_warnings: dict[str, list[str]] = {}

    def kind_of(self, name: str) -> int | None:
        if name == self.value_metric:
            return 0
        if name == self.util_metric:
            return 1
        if len(self.names_seen) < 50:
            self.names_seen.add(name)
        return None

    def series(
        self, name: str, labels: Mapping[str, str], where: Callable[[], str]
    ) -> _SeriesInfo | None:
        kind = self.kind_of(name)
        if kind is None:
            return None
        device = self.template.render(labels, where)
        series = hash((name, frozenset((k, v) for k, v in labels.items() if v)))
        span = None
        uuid = _uuid(labels)
        if uuid is not None:
            span = self.spans.setdefault(uuid, {}).setdefault(device, [2**63, -(2**63)])
        div = self.value_div if kind == 0 else self.util_div
        return _SeriesInfo(kind, device, series, div, span, _describe(name, labels))

    def add(self, info: _SeriesInfo, ts: int, x: float, where: Callable[[], str]) -> None:
        """One sample (``x`` in the metric's own unit)."""
        span = info.span
        if span is not None:
            if ts < span[0]:
                span[0] = ts
            if ts > span[1]:
                span[1] = ts
        if info.kind == 0:
            # NaN and Inf stay; DCGM's blank values become NaN: rows the
            # engine drops and counts as invalid samples.
            v = math.nan if _is_blank(x, False) else x / info.div
            self.store.add((ts, info.device, 0, info.series, v))
            self.values += 1
            return
        if x != x or _is_blank(x, True):
            return  # no utilization known: null in the output
        u = x / info.div
        if not -1e-9 <= u <= 1 + 1e-9:
            self.util_bad += 1
            if not self.util_bad_first:
                self.util_bad_first = f"{where()}: {x!r} at {_iso(ts)}"
            return
        self.store.add((ts, info.device, 1, 0, min(max(u, 0.0), 1.0)))

    def add_series(
        self, info: _SeriesInfo, tss: list[int], xs: list[float], where: Callable[[], str]
    ) -> None:
        """A series' samples at once (what ``add`` does, per series)."""
        if not tss:
            return
        span = info.span
        if span is not None:
            span[0] = min(span[0], min(tss))
            span[1] = max(span[1], max(tss))
        if info.kind == 1:
            for ts, x in zip(tss, xs, strict=True):
                self.add(info, ts, x, where)
            return
        div, dev, series, nan, inf = info.div, info.device, info.series, math.nan, math.inf
        blanks, top = _FP64_BLANKS, _INT64_BLANK_MIN
        self.store.extend(
            [
                (ts, dev, 0, series, nan if (x in blanks or top <= x < inf) else x / div)
                for ts, x in zip(tss, xs, strict=True)
            ]
        )
        self.values += len(tss)

    def batches(self, inputs: str) -> Iterator[pa.RecordBatch]:
        """The joined canonical batches, once every series has been read."""
        if self.values == 0:
            names = ", ".join(sorted(self.names_seen)) or "none"
            raise SchemaError(
                f"{inputs}: no {self.value_metric} samples (metrics seen: {names}); expected "
                f"series of {self.value_metric}"
                + (
                    " (or pass value='energy' / --value energy for the energy counter)"
                    if self.column == "power_w"
                    else ""
                )
            )
        self._warn()
        builder = PowerBatches(self.column, _BATCH_ROWS)
        key: tuple[int, str] | None = None
        vals: list[float] = []
        seen: set[tuple[int, float | None]] = set()
        usum = 0.0
        un = 0

        def flush() -> Iterator[pa.RecordBatch]:
            assert key is not None
            u = usum / un if un else None
            for v in vals:
                full = builder.add(key[1], key[0], v, u)
                if full is not None:
                    yield full

        nan = math.nan
        for ts, dev, kind, series, value in self.store.sorted_rows():
            v = nan if value is None else value
            if (ts, dev) != key:
                if key is not None:
                    yield from flush()
                key = (ts, dev)
                vals = []
                seen = set()
                usum = 0.0
                un = 0
            if kind == 1:
                # Several utilization samples at one instant (a page boundary
                # repeated, MIG instances): their mean, as the engine does.
                usum += v
                un += 1
                continue
            # The same series at the same instant with the same value is a
            # page boundary read twice: dropped. A different value (or
            # another series of the device) is kept, and the engine averages
            # and counts it as a duplicate.
            mark = (series, None if v != v else v)
            if mark in seen:
                continue
            seen.add(mark)
            vals.append(v)
        if key is not None:
            yield from flush()
        last = builder.flush()
        if last is not None:
            yield last

    def _warn(self) -> None:
        renamed: list[str] = []
        shared: list[str] = []
        for uuid, ids in sorted(self.spans.items()):
            if len(ids) < 2:
                continue
            ordered = sorted(ids.items(), key=lambda kv: (kv[1][0], kv[0]))
            overlap = any(b[1][0] <= a[1][1] for a, b in itertools.pairwise(ordered))
            chain = " then ".join(f"{d!r} ({_iso(s[0])} to {_iso(s[1])})" for d, s in ordered)
            (shared if overlap else renamed).append(f"{uuid}: {chain}")
        if renamed:
            warnings.warn(
                f"{len(renamed)} GPU(s) changed device id mid-dump (host renamed, or in "
                "Kubernetes the exporter pod restarted under a new name): "
                + "; ".join(renamed[:5])
                + ("; ..." if len(renamed) > 5 else "")
                + f". With device_id {self.template.text!r} each id is a separate device; "
                "device_id='{UUID}' (--device-id '{UUID}') keeps one id per GPU",
                PrometheusIngestWarning,
                stacklevel=2,
            )
        if shared:
            warnings.warn(
                f"{len(shared)} GPU(s) appear under several device ids at the same time: "
                + "; ".join(shared[:5])
                + ("; ..." if len(shared) > 5 else "")
                + f". Device-level metrics are per GPU, so with device_id "
                f"{self.template.text!r} each id is accounted the GPU's whole power; "
                "expected a template that names the GPU once, such as '{Hostname}/{UUID}'",
                PrometheusIngestWarning,
                stacklevel=2,
            )
        if self.util_bad:
            unit = "percent (0..100)" if self.util_div == 100.0 else "a ratio (0..1)"
            warnings.warn(
                f"{self.util_bad} {self.util_metric} sample(s) outside {unit} were left out "
                f"(utilization null); first: {self.util_bad_first}",
                PrometheusIngestWarning,
                stacklevel=2,
            )
        for text, files in self.prom_warnings.items():
            more = f" and {len(files) - 1} more file(s)" if len(files) > 1 else ""
            warnings.warn(
                f"{files[0]}{more}: Prometheus answered with a warning: {text}",
                PrometheusIngestWarning,
                stacklevel=2,
            )


def _iso(ts: int) -> str:
    if not -(2**62) < ts < 2**62:
        return str(ts)
    t = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=ts // 1000)
    return t.isoformat().replace("+00:00", "Z")


def _expand(paths: PathsArg, what: str) -> list[Path]:
    """Input paths: a file, a directory (its files in name order, hidden
    ones skipped), a glob (matches in name order), or a list of those."""
    items: list[Any] = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise InputError(f"{what}: no input given; expected files, directories or globs")
    out: list[Path] = []
    for item in items:
        try:
            p = Path(item)
        except TypeError as e:
            raise InputError(f"{what}: input {item!r} is not a path") from e
        if p.is_dir():
            files = sorted(c for c in p.iterdir() if c.is_file() and not c.name.startswith("."))
            if not files:
                raise InputError(f"{what}: directory {str(p)!r} holds no files")
            out.extend(files)
        elif p.is_file():
            out.append(p)
        elif re.search(r"[*?\[]", str(item)):
            files = sorted(Path(m) for m in glob.glob(str(item), recursive=True))
            files = [f for f in files if f.is_file()]
            if not files:
                raise InputError(f"{what}: glob {str(item)!r} matches no file")
            out.extend(files)
        else:
            raise InputError(f"{what}: {str(item)!r}: no such file or directory")
    return list(dict.fromkeys(out))


def _summary(files: list[Path]) -> str:
    if len(files) == 1:
        return str(files[0])
    return f"{len(files)} files ({files[0]} ... {files[-1]})"


def _reader(ing: _Ingest, files: list[Path], read: Callable[[Path], None]) -> pa.RecordBatchReader:
    def gen() -> Iterator[pa.RecordBatch]:
        try:
            for path in files:
                read(path)
            yield from ing.batches(_summary(files))
        finally:
            ing.store.close()

    return power_reader(ing.column, gen())


# ----------------------------------------------------------------- JSON dumps


class _JsonReader:
    """A forward-only reader of JSON text over a sliding buffer: one value
    (here, one series object) at a time is decoded with
    ``json.JSONDecoder.raw_decode``; what is behind is dropped. A
    ``json.load`` of a 100k-series page would build every sample as Python
    objects at once (gigabytes); this holds one series object and a chunk."""

    _WS = re.compile(r"[ \t\n\r]*")
    _DECODER = json.JSONDecoder()

    def __init__(self, f: IO[str], source: str) -> None:
        self.f = f
        self.source = source
        self.buf = ""
        self.pos = 0
        self.base = 0  # characters dropped before buf[0]
        self.lines = 0  # newlines dropped before buf[0]
        self.eof = False

    def _fill(self, want: int) -> None:
        if self.pos:
            self.lines += self.buf.count("\n", 0, self.pos)
            self.base += self.pos
            self.buf = self.buf[self.pos :]
            self.pos = 0
        chunk = self.f.read(max(want, _CHUNK_CHARS))
        if chunk:
            self.buf += chunk
        else:
            self.eof = True

    def where(self, pos: int | None = None) -> str:
        p = self.pos if pos is None else pos
        line = self.lines + self.buf.count("\n", 0, p) + 1
        return f"{self.source}, line {line} (character {self.base + p + 1})"

    def peek(self) -> str:
        """The next non-blank character ('' at the end of the file)."""
        while True:
            self.pos = _skip(self._WS, self.buf, self.pos)
            if self.pos < len(self.buf) or self.eof:
                return self.buf[self.pos] if self.pos < len(self.buf) else ""
            self._fill(_CHUNK_CHARS)

    def expect(self, ch: str, what: str) -> None:
        c = self.peek()
        if c != ch:
            found = repr(self.buf[self.pos : self.pos + 40]) if c else "the end of the file"
            raise SchemaError(f"{self.where()}: expected {what} ({ch!r}), found {found}")
        self.pos += 1

    def value(self) -> Any:
        """The next JSON value, read whole."""
        self.peek()
        while True:
            try:
                obj, end = self._DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                # Cut short by the end of the buffer (the error is at its end,
                # or a string runs past it): read more and decode again; the
                # buffer doubles, so a long value costs linear time.
                cut = e.pos >= len(self.buf) - 64 or e.msg.startswith("Unterminated string")
                if self.eof or not cut:
                    raise SchemaError(
                        f"{self.where(e.pos)}: not valid JSON ({e.msg}); expected a "
                        "Prometheus API response as the server wrote it"
                    ) from None
                self._grow()
                continue
            if end >= len(self.buf) and not self.eof:
                self._grow()  # a number may go on in the next chunk
                continue
            self.pos = end
            return obj

    def _grow(self) -> None:
        held = len(self.buf) - self.pos
        if held > _MAX_VALUE_CHARS:
            raise SchemaError(
                f"{self.where()}: one JSON value runs over {_MAX_VALUE_CHARS} characters; "
                "expected series objects of at most a few MB (the file is probably "
                "truncated or not a Prometheus response)"
            )
        self._fill(held)

    def members(self) -> Iterator[str]:
        """The keys of the object whose '{' was just read; after each key the
        caller reads its value."""
        c = self.peek()
        if c == "}":
            self.pos += 1
            return
        while True:
            if c != '"':
                self.expect('"', "a key")
            key = self.value()
            self.expect(":", "':' after a key")
            yield key
            c = self.peek()
            if c == ",":
                self.pos += 1
                c = self.peek()
            elif c == "}":
                self.pos += 1
                return
            else:
                self.expect("}", "',' or the end of the object")

    def items(self) -> Iterator[Any]:
        """The values of the array whose '[' was just read."""
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            yield self.value()
            c = self.peek()
            if c == ",":
                self.pos += 1
            elif c == "]":
                self.pos += 1
                return
            else:
                self.expect("]", "',' or the end of the array")


def _read_json(ing: _Ingest, path: Path) -> None:
    source = str(path)
    with open_text(path) as f:
        r = _JsonReader(f, source)
        if r.peek() == "\ufeff":
            r.pos += 1
        docs = 0
        # Several responses may follow one another (a script appending each
        # page's answer to one file, one per line): each is read in turn.
        while r.peek():
            docs += 1
            _read_response(ing, r, docs)
        if docs == 0:
            raise SchemaError(f"{source}: empty file; expected a Prometheus API response")


def _read_response(ing: _Ingest, r: _JsonReader, doc: int) -> None:
    source = r.source if doc == 1 else f"{r.source} (response {doc})"
    start = r.where()
    r.expect("{", "a Prometheus API response, a JSON object")
    status: Any = None
    error_type: Any = None
    error: Any = None
    result_type: Any = None
    have_result = False
    index = 0
    for key in r.members():
        if key == "status":
            status = r.value()
        elif key == "errorType":
            error_type = r.value()
        elif key == "error":
            error = r.value()
        elif key in ("warnings", "infos"):
            notes = r.value()
            if key == "warnings" and isinstance(notes, list):
                for n in notes:
                    ing.prom_warnings.setdefault(str(n), []).append(source)
        elif key == "data" and status != "error" and r.peek() == "{":
            r.pos += 1
            for k in r.members():
                if k == "resultType":
                    result_type = r.value()
                    if result_type not in ("matrix", "vector"):
                        raise SchemaError(
                            f"{source}: resultType {result_type!r}; expected 'matrix' (from "
                            "/api/v1/query_range) or 'vector' (from /api/v1/query)"
                        )
                elif k == "result" and r.peek() == "[":
                    have_result = True
                    r.pos += 1
                    for item in r.items():
                        _json_series(ing, source, index, item)
                        index += 1
                else:
                    r.value()
        else:
            r.value()
    if status == "error":
        raise InputError(
            f"{source}: Prometheus answered with an error instead of data (errorType "
            f'{error_type!r}, error {error!r}); expected "status": "success": re-run that '
            "query (a shorter range or a larger step for 'exceeded maximum resolution', a "
            "longer timeout for 'timeout')"
        )
    if status != "success":
        raise SchemaError(
            f"{source}: the response at {start} has status {status!r}; expected a Prometheus "
            'API response with "status": "success" (from /api/v1/query_range)'
        )
    if not have_result:
        raise SchemaError(
            f"{source}: the response has no data.result array; expected "
            '{"status":"success","data":{"resultType":"matrix","result":[...]}}'
        )


# Unix seconds that fit in int64 nanoseconds.
_MAX_SECONDS = 9.2e9


def _json_series(ing: _Ingest, source: str, index: int, obj: Any) -> None:
    def at() -> str:
        return f"{source}, result[{index}]"

    if not isinstance(obj, dict) or not isinstance(obj.get("metric"), dict):
        raise SchemaError(
            f"{at()}: {str(obj)[:80]!r}; expected a series object "
            '{"metric": {labels}, "values": [[<unix seconds>, "<value>"], ...]}'
        )
    labels: dict[str, Any] = obj["metric"]
    name = labels.get("__name__")
    if not isinstance(name, str):
        raise SchemaError(
            f"{at()}: series {_describe('', labels)} has no __name__ label; expected the plain "
            f"metric (a function or operator in the query drops the name: query "
            f'{ing.value_metric} or {{__name__=~"{ing.value_metric}|{GPU_UTIL_METRIC}"}})'
        )
    if name != ing.value_metric and name != ing.util_metric:
        ing.kind_of(name)
        return
    for k, v in labels.items():
        if not isinstance(v, str):
            raise SchemaError(f"{at()}: label {k!r} = {v!r}; expected a string value")

    def where() -> str:
        return f"{at()} (series {_describe(name, labels)})"

    info = ing.series(name, labels, where)
    assert info is not None
    values = obj.get("values")
    if values is None and "value" in obj:
        values = [obj["value"]]
    if not isinstance(values, list):
        extra = " (a native histogram series)" if "histograms" in obj else ""
        raise SchemaError(
            f'{where()}: no "values" array{extra}; expected '
            '"values": [[<unix seconds>, "<value>"], ...]'
        )
    # One pass with the checks inlined: this loop sees every sample.
    tss: list[int] = []
    xs: list[float] = []
    for pair in values:
        if type(pair) is not list or len(pair) != 2:
            raise SchemaError(
                f'{where()}: sample {str(pair)[:60]!r}; expected [<unix seconds>, "<value>"]'
            )
        t, text = pair
        # Seconds with millisecond decimals (Prometheus' MarshalTimestamp),
        # rounded to the microsecond so the float's last bits do not leak in.
        if type(t) is float and -_MAX_SECONDS < t < _MAX_SECONDS:
            ts = round(t * 1e6) * 1000
        elif type(t) is int and -_MAX_SECONDS < t < _MAX_SECONDS:
            ts = t * 1_000_000_000
        else:
            raise SchemaError(f"{where()}: timestamp {t!r}; expected Unix seconds (a number)")
        x = _go_float(text) if type(text) is str else None
        if x is None:
            raise SchemaError(
                f"{where()}: value {text!r} at {_iso(ts)}; expected a number in a string "
                '(such as "312.5", "NaN" or "+Inf")'
            )
        tss.append(ts)
        xs.append(x)
    ing.add_series(info, tss, xs, where)


def from_prometheus_json(
    paths: PathsArg,
    *,
    value: Value = "power",
    utilization: str | None = GPU_UTIL_METRIC,
    device_id: str = DEFAULT_DEVICE_ID,
) -> pa.RecordBatchReader:
    """dcgm-exporter metrics from saved Prometheus HTTP API responses, as a
    canonical ``power`` stream.

    Args:
        paths: a file, a directory (its files in name order), a glob or a
            list of them: ``/api/v1/query_range`` responses (``.gz`` too),
            one per page or several one after another in a file.
        value: ``"power"`` (``DCGM_FI_DEV_POWER_USAGE``, W, to ``power_w``)
            or ``"energy"`` (``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION``, mJ
            since boot, to ``energy_j`` in J).
        utilization: ``"DCGM_FI_DEV_GPU_UTIL"`` (percent),
            ``"DCGM_FI_PROF_GR_ENGINE_ACTIVE"`` (ratio) or ``None``: the
            metric joined as ``utilization`` (a fraction) to the value
            sample of the same device at the same instant (null when none).
        device_id: the device id template: label names in braces.

    Returns:
        A lazy ``pyarrow.RecordBatchReader`` (``device_id, ts, power_w |
        energy_j, utilization``), sorted by ``(ts, device_id)``; the files
        are read when the first batch is asked for.

    Raises:
        InputError: an option is wrong, an input is missing, or a file
            holds a Prometheus error response.
        SchemaError: a file is not a Prometheus response, or a series lacks
            a label of the template (each naming the file and series).
    """
    ing = _Ingest(value, utilization, device_id)
    files = _expand(paths, "prometheus-json")
    return _reader(ing, files, lambda p: _read_json(ing, p))


# ---------------------------------------------------------------- text scrapes

_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LNAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_QSTR_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')
_SP_RE = re.compile(r"[ \t]*")
_ESC_RE = re.compile(r"\\(.)")
# Prometheus' lvalReplacer (model/textparse/promparse.go): these three only;
# any other backslash pair stays as written.
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n"}
_INT_RE = re.compile(r"-?[0-9]+")


def _unescape(s: str) -> str:
    if "\\" not in s:
        return s
    return _ESC_RE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), s)


def _parse_series(text: str) -> tuple[str, dict[str, str]]:
    """``name{label="value",...}`` as the Prometheus text parser reads it:
    blanks around tokens, a trailing comma, quoted label names and a quoted
    metric name inside the braces (``{"name",label="v"}``); a ``__name__``
    label stands for the name (as ``promtool tsdb dump`` writes series).
    Empty label values are dropped (Prometheus treats them as absent).
    Raises ``ValueError`` with what was expected."""
    n = len(text)
    name: str | None = None
    m = _NAME_RE.match(text)
    pos = 0
    if m:
        name = m.group()
        pos = m.end()
    pos = _skip(_SP_RE, text, pos)
    labels: dict[str, str] = {}
    if pos < n and text[pos] == "{":
        pos += 1
        while True:
            pos = _skip(_SP_RE, text, pos)
            if pos >= n:
                raise ValueError("expected '}' to close the labels")
            if text[pos] == "}":
                pos += 1
                break
            quoted = False
            m = _LNAME_RE.match(text, pos)
            if m is None:
                m = _QSTR_RE.match(text, pos)
                quoted = True
                if m is None:
                    raise ValueError(f"expected a label name at {text[pos : pos + 20]!r}")
            lname = _unescape(m.group(1)) if quoted else m.group()
            pos = _skip(_SP_RE, text, m.end())
            if quoted and pos < n and text[pos] in ",}":
                if name is not None:
                    raise ValueError(f"metric name given twice ({name!r} and {lname!r})")
                name = lname
                if text[pos] == ",":
                    pos += 1
                continue
            if pos >= n or text[pos] != "=":
                raise ValueError(f"expected '=' after label name {lname!r}")
            pos = _skip(_SP_RE, text, pos + 1)
            m = _QSTR_RE.match(text, pos)
            if m is None:
                raise ValueError(f"expected a double-quoted value for label {lname!r}")
            if lname in labels:
                raise ValueError(f"label {lname!r} given twice")
            labels[lname] = _unescape(m.group(1))
            pos = _skip(_SP_RE, text, m.end())
            if pos < n and text[pos] == ",":
                pos += 1
            elif pos < n and text[pos] != "}":
                raise ValueError(f"expected ',' or '}}' after the value of label {lname!r}")
    if pos != n:
        raise ValueError(f"unexpected {text[pos : pos + 20]!r} after the series")
    by_label = labels.pop("__name__", None)
    name = name or by_label
    if not name:
        raise ValueError("no metric name")
    return name, {k: v for k, v in labels.items() if v}


# A time in a file name: ISO 8601 basic or extended (``20250101T120000Z``,
# ``2025-01-01T12:00:00+01:00``, ``2025-01-01_12-00-00``), else Unix
# seconds (10 digits) or milliseconds (13), as `date +%s` names files.
_NAME_ISO = re.compile(
    r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})[T_ -]?(\d{2})[:h-]?(\d{2})[:m-]?(\d{2})"
    r"(?:[.,](\d{1,9}))?(Z|[+-]\d{2}(?::?\d{2})?)?(?![\d:])"
)
_NAME_EPOCH = re.compile(r"(?<!\d)(\d{13}|\d{10})(?!\d)")


def _name_time(path: Path, tz: str | None) -> int | None:
    """The scrape time written in a file's name (ns), ``None`` if none."""
    name = path.name
    isos = {m.group(0): m for m in _NAME_ISO.finditer(name)}
    if len(isos) > 1:
        raise SchemaError(
            f"{path}: its name holds several times ({', '.join(isos)}); expected one, the "
            "scrape time, or pass scrape_time (--scrape-time) for this one file"
        )
    if isos:
        m = next(iter(isos.values()))
        y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
        frac = (m.group(7) or "0")[:6].ljust(6, "0")
        zone = m.group(8)
        try:
            if zone is None:
                tzinfo = parse_zone(
                    tz, source=str(path), what=f"the time {m.group(0)!r} in its name"
                )
            elif zone == "Z":
                tzinfo = dt.timezone.utc
            else:
                digits = zone[1:].replace(":", "")
                off = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
                tzinfo = dt.timezone(off if zone[0] == "+" else -off)
            t = dt.datetime(y, mo, d, h, mi, s, int(frac), tzinfo=tzinfo)
        except ValueError as e:
            raise SchemaError(
                f"{path}: the time {m.group(0)!r} in its name is not a valid date and time "
                f"({e}); expected e.g. 20250101T120000Z"
            ) from None
        return to_ns(t)
    epochs = set(_NAME_EPOCH.findall(name))
    if len(epochs) > 1:
        raise SchemaError(
            f"{path}: its name holds several Unix times ({', '.join(sorted(epochs))}); expected "
            "one, the scrape time"
        )
    if epochs:
        digits = epochs.pop()
        return int(digits) * (1_000_000 if len(digits) == 13 else 1_000_000_000)
    return None


def _scrape_time_ns(value: dt.datetime | str | int | float, tz: str | None) -> int:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return round(value * 1e6) * 1000
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InputError(
                f"scrape_time={value!r}; expected an ISO 8601 time such as 2025-01-01T12:00:00Z"
            ) from None
    if not isinstance(value, dt.datetime):
        raise InputError(f"scrape_time={value!r}; expected a datetime, ISO string or Unix seconds")
    if value.tzinfo is None:
        value = value.replace(tzinfo=parse_zone(tz, source="scrape_time", what="scrape_time"))
    return to_ns(value)


class _TextFile:
    """State of one scrape file being read."""

    def __init__(self, path: Path, tz: str | None, scrape_time: int | None) -> None:
        self.path = path
        self.tz = tz
        self.scrape_time = scrape_time
        self._time: int | None = None
        self.untimed: dict[int, int] = {}  # series -> first line without a timestamp

    def time(self, lineno: int) -> int:
        """The scrape time for samples written without a timestamp."""
        if self._time is None:
            t = self.scrape_time if self.scrape_time is not None else _name_time(self.path, self.tz)
            if t is None:
                raise SchemaError(
                    f"{self.path}, line {lineno}: the sample has no timestamp and the file name "
                    "holds no time; expected the scrape time in the name (e.g. "
                    "node01-20250101T120000Z.prom or metrics-1735732800.prom) or "
                    "scrape_time= (--scrape-time) for a single file (the file's modification "
                    "time is never used: a copy changes it)"
                )
            self._time = t
        return self._time


def _read_text(
    ing: _Ingest,
    path: Path,
    tz: str | None,
    scrape_time: int | None,
    cache: dict[str, tuple[str, _SeriesInfo | None]],
) -> None:
    state = _TextFile(path, tz, scrape_time)
    wanted = (*(m for m in (ing.value_metric, ing.util_metric) if m), "{")
    with open_text(path) as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip(" \t\r\n")
            # Only the metrics in use are parsed (a scrape holds ~50 others);
            # '{' starts a series whose name is inside the braces.
            if not line.startswith(wanted):
                if line and line[0] != "#" and not _NAME_RE.match(line):
                    _bad_line(path, lineno, line, "a metric name, '#' or '{'")
                continue
            close = line.rfind("}")
            if close >= 0 and "{" in line[:close]:
                key, rest = line[: close + 1], line[close + 1 :]
            else:
                m = _NAME_RE.match(line)
                if m is None or line[m.end() :].lstrip(" \t").startswith("{"):
                    _bad_line(path, lineno, line, "a metric name, then labels in braces")
                key, rest = m.group(), line[m.end() :]
            hit = cache.get(key)
            if hit is None:
                try:
                    name, labels = _parse_series(key)
                except ValueError as e:
                    _bad_line(path, lineno, line, str(e))
                info = ing.series(
                    name,
                    labels,
                    partial(_at_line, path, lineno, _describe(name, labels)),
                )
                if len(cache) >= _SERIES_CACHE:
                    cache.clear()
                hit = cache[key] = (name, info)
            info = hit[1]
            if info is None:
                continue
            parts = rest.split()
            if not parts or len(parts) > 2:
                _bad_line(path, lineno, line, "a value and an optional timestamp after the series")
            x = _go_float(parts[0])
            if x is None:
                _bad_line(path, lineno, line, f"a number as the value, got {parts[0]!r}")
            if len(parts) == 2:
                if not _INT_RE.fullmatch(parts[1]):
                    _bad_line(
                        path,
                        lineno,
                        line,
                        f"a timestamp in integer milliseconds, got {parts[1]!r} (OpenMetrics' "
                        "seconds are not read)",
                    )
                ts = int(parts[1]) * 1_000_000
                if not -(2**63) < ts < 2**63:
                    _bad_line(path, lineno, line, f"a timestamp in range, got {parts[1]!r}")
            else:
                ts = state.time(lineno)
                first = state.untimed.setdefault(info.series, lineno)
                if first != lineno:
                    raise SchemaError(
                        f"{path}, line {lineno}: series {info.desc} appears again "
                        f"without a timestamp (first at line {first}), so the file holds "
                        "several scrapes that would all get one time; expected one scrape per "
                        "file (its time in the name) or samples with timestamps"
                    )

            ing.add(info, ts, x, partial(_at_line, path, lineno, ""))


def _at_line(path: Path, lineno: int, series: str) -> str:
    return f"{path}, line {lineno}" + (f" (series {series})" if series else "")


def _bad_line(path: Path, lineno: int, line: str, expected: str) -> NoReturn:
    shown = line if len(line) <= 200 else line[:197] + "..."
    raise SchemaError(
        f"{path}, line {lineno}: {shown!r} is not a Prometheus text-format sample; expected "
        f"{expected}"
    )


def from_prometheus_text(
    paths: PathsArg,
    *,
    value: Value = "power",
    utilization: str | None = GPU_UTIL_METRIC,
    device_id: str = DEFAULT_DEVICE_ID,
    tz: str | None = None,
    scrape_time: dt.datetime | str | float | None = None,
) -> pa.RecordBatchReader:
    """dcgm-exporter metrics from saved ``/metrics`` scrapes (Prometheus text
    format), as a canonical ``power`` stream.

    A sample's time is its own timestamp (integer ms) when it has one;
    otherwise the time in its file's name (``20250101T120000Z``, ISO 8601
    with or without separators and offset, or Unix seconds / ms); otherwise
    ``scrape_time``, allowed with a single file only. Never the file's
    modification time. One file holds one scrape: a series repeated without
    timestamps is an error.

    Args:
        paths: a file, a directory (its files in name order), a glob or a
            list of them (``.gz`` too).
        value, utilization, device_id: as for :func:`from_prometheus_json`.
        tz: IANA zone of times in file names (or ``scrape_time``) written
            without an offset; required for those.
        scrape_time: the scrape time of a single file whose samples and name
            carry none (datetime, ISO 8601 string or Unix seconds).

    Returns:
        A lazy ``pyarrow.RecordBatchReader`` sorted by ``(ts, device_id)``.

    Raises:
        InputError: an option is wrong or an input is missing.
        SchemaError: a line is not a sample, a sample has no time, a series
            lacks a label of the template (naming file and line).
    """
    ing = _Ingest(value, utilization, device_id)
    files = _expand(paths, "prometheus-text")
    when: int | None = None
    if scrape_time is not None:
        if len(files) != 1:
            raise InputError(
                f"scrape_time dates a single file, and {len(files)} were given; expected the "
                "scrape time in each file's name (e.g. node01-20250101T120000Z.prom)"
            )
        when = _scrape_time_ns(scrape_time, tz)
    if tz is not None:
        parse_zone(tz, source="prometheus-text", what="tz")  # fail early on a bad name
    cache: dict[str, tuple[str, _SeriesInfo | None]] = {}
    return _reader(ing, files, lambda p: _read_text(ing, p, tz, when, cache))


# ------------------------------------------------------------------------ CLI


def _common_arguments(parser: argparse.ArgumentParser, inputs_help: str) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help=inputs_help)
    parser.add_argument(
        "--value",
        choices=("power", "energy"),
        default="power",
        help=f"power: {POWER_METRIC} (W) to power_w (default); energy: {ENERGY_METRIC} "
        "(mJ since boot, a counter) to energy_j",
    )
    parser.add_argument(
        "--utilization",
        choices=(GPU_UTIL_METRIC, GR_ENGINE_ACTIVE_METRIC, "none"),
        default=GPU_UTIL_METRIC,
        help="metric joined as utilization to the sample of the same device and time "
        f"(default {GPU_UTIL_METRIC}, in %%; {GR_ENGINE_ACTIVE_METRIC} is a 0..1 ratio; none)",
    )
    parser.add_argument(
        "--device-id",
        default=DEFAULT_DEVICE_ID,
        metavar="TEMPLATE",
        help="device id from series labels, names in braces (default "
        f"'{DEFAULT_DEVICE_ID}'; '{{UUID}}' keeps a GPU's id when its host is renamed)",
    )


def _json_arguments(parser: argparse.ArgumentParser) -> None:
    _common_arguments(
        parser,
        "saved /api/v1/query_range responses: files, directories (all files in name order) "
        "or globs; pages may repeat their boundary sample",
    )


def _text_arguments(parser: argparse.ArgumentParser) -> None:
    _common_arguments(
        parser,
        "saved dcgm-exporter scrapes (curl host:9400/metrics), one scrape per file, the "
        "scrape time in the name (e.g. node01-20250101T120000Z.prom): files, directories "
        "or globs",
    )
    parser.add_argument(
        "--tz",
        help="IANA zone of scrape times in file names written without an offset "
        "(e.g. node01-20250101-120000.prom)",
    )
    parser.add_argument(
        "--scrape-time",
        metavar="TIME",
        help="scrape time (ISO 8601) of a single input file whose samples and name carry none",
    )


def _utilization_arg(args: argparse.Namespace) -> str | None:
    u: str = args.utilization
    return None if u == "none" else u


def _open_json(args: argparse.Namespace) -> pa.RecordBatchReader:
    return from_prometheus_json(
        args.inputs,
        value=args.value,
        utilization=_utilization_arg(args),
        device_id=args.device_id,
    )


def _open_text(args: argparse.Namespace) -> pa.RecordBatchReader:
    return from_prometheus_text(
        args.inputs,
        value=args.value,
        utilization=_utilization_arg(args),
        device_id=args.device_id,
        tz=args.tz,
        scrape_time=args.scrape_time,
    )


_JSON_SAMPLE = (
    '{"status":"success","data":{"resultType":"matrix","result":[{"metric":{'
    '"DCGM_FI_DRIVER_VERSION":"535.129.03","Hostname":"node01",'
    '"UUID":"GPU-8d5053b3-9280-7d1a-751b-4fd2fdd547c5","__name__":"DCGM_FI_DEV_POWER_USAGE",'
    '"device":"nvidia0","gpu":"0","instance":"node01:9400","job":"dcgm-exporter",'
    '"modelName":"NVIDIA H100 80GB HBM3","pci_bus_id":"00000000:18:00.0"},'
    '"values":[[1735689600,"312.5"],[1735689615,"318.25"]]}]}}'
)
_TEXT_SAMPLE = (
    "# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).\n"
    "# TYPE DCGM_FI_DEV_POWER_USAGE gauge\n"
    'DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-8d5053b3-9280-7d1a-751b-4fd2fdd547c5",'
    'pci_bus_id="00000000:18:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",'
    'Hostname="node01",DCGM_FI_DRIVER_VERSION="535.129.03"} 312.500000'
)

FORMATS: tuple[Format, ...] = (
    Format(
        name="prometheus-json",
        table="power",
        help="dcgm-exporter metrics from saved Prometheus /api/v1/query_range JSON responses",
        add_arguments=_json_arguments,
        open=_open_json,
        sample=_JSON_SAMPLE,
    ),
    Format(
        name="prometheus-text",
        table="power",
        help="dcgm-exporter metrics from saved /metrics scrapes (Prometheus text format)",
        add_arguments=_text_arguments,
        open=_open_text,
        sample=_TEXT_SAMPLE,
    ),
)
