"""Adapters from real grid-intensity datasets to the canonical intensity table
(``region, start, end, gco2e_per_kwh``), and a plausibility check of hourly
intensity.

Besides the canonical columns each adapter writes ``basis``: what its figures
measure (``"production, lifecycle"`` for EIA-930 as published by dc-rl,
``"consumption, direct"`` or ``"consumption, lifecycle"`` for Electricity
Maps), so that figures of different bases are not mixed unknowingly (SPEC 2
allows extra columns; the engine ignores them). ``from_eia930`` also corrects
the known labelling errors of the published files (``data/eia930/errata.csv``)
and names the correction on each row it moved (``erratum``).

The inputs of both adapters are yearly files of hourly rows (8,760 rows,
about 1 MB each), so each file is read whole.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .exceptions import InputError, SchemaError

Basis = Literal["direct", "lifecycle"]
PathArg = str | os.PathLike[str]

#: What ``from_eia930`` figures measure: dc-rl's ``avg_CI`` is the
#: generation-weighted mean of per-fuel life-cycle factors over the balancing
#: authority's own generation (no imports), see docs/ingest/grid-intensity.md.
EIA930_BASIS = "production, lifecycle"
#: What Electricity Maps figures measure, per ``basis`` argument: the
#: intensity of the electricity consumed in the zone (flow-traced imports
#: included), direct (combustion) or life-cycle emission factors.
ELECTRICITYMAPS_BASIS: dict[str, str] = {
    "direct": "consumption, direct",
    "lifecycle": "consumption, lifecycle",
}
#: The shipped EIA-930 errata table.
ERRATA_PATH = Path(__file__).parent / "data" / "eia930" / "errata.csv"
#: Schema metadata key of ``from_eia930``'s table: a JSON account of the
#: corrections (errata applied, rows dropped, hours left unreported).
METADATA_KEY = b"carbonledger.intensity"

_EM_COLUMNS = {
    "direct": "Carbon Intensity gCO₂eq/kWh (direct)",
    "lifecycle": "Carbon Intensity gCO₂eq/kWh (LCA)",
}
_EM_TIME = "Datetime (UTC)"
_HOUR = dt.timedelta(hours=1)
_HOUR_NS = 3_600_000_000_000
_DAY_NS = 24 * _HOUR_NS
# On the calling thread: nothing of the read is left on pyarrow's pool to
# finish while the interpreter exits (see catalog.embodied_catalog). A year
# of hours parses in milliseconds on one thread.
_READ = pacsv.ReadOptions(use_threads=False)
# An ISO 8601 date, or date and time, without a zone ("Z" or an offset).
_NAIVE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$"
_TS = pa.timestamp("ns", "UTC")
_EIA_EXPECTED = "an EIA-930 hourly file (timestamp, ..., avg_CI)"
_EM_EXPECTED = "an Electricity Maps hourly export"
_ERRATA_COLUMNS = (
    "balancing_authority",
    "period_start",
    "period_end",
    "shift_hours",
    "erratum",
    "source",
)


# ------------------------------------------------------------------ reading


def _read_strings(path: str, columns: Sequence[str], what: str, expected: str) -> pa.Table:
    """A CSV file (plain or .gz) with ``columns`` read as strings, so that a
    bad value is reported by us with its line, not by the CSV reader."""
    try:
        t = pacsv.read_csv(
            path,
            read_options=_READ,
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(columns, pa.string())),
        )
    except OSError as e:
        raise InputError(f"{what} ({path}): cannot read the file: {e}") from None
    except pa.ArrowInvalid as e:
        raise SchemaError(
            f"{what} ({path}): not a readable CSV ({e}); expected {expected}"
        ) from None
    for col in columns:
        if col not in t.column_names:
            raise SchemaError(
                f"{what} ({path}): missing column {col!r} (the file has "
                f"{', '.join(repr(c) for c in t.column_names)}); expected {expected}"
            )
    return t


def _first(mask: pa.ChunkedArray | pa.Array) -> int | None:
    """Index of the first true value of a boolean column (nulls are false)."""
    i = pc.index(pc.fill_null(mask, False), True).as_py()
    return None if i is None or i < 0 else int(i)


def _timestamps(
    col: pa.ChunkedArray, where: str, column: str, *, zone_less: str | None
) -> pa.ChunkedArray:
    """ISO 8601 strings as ``timestamp[ns, UTC]``.

    ``zone_less`` says what a value without a zone means: ``None`` makes it
    an error (the format carries a zone, so one without is a file edited or
    exported differently, whose hours would silently shift), ``"UTC"``
    reads it as UTC (the format states its zone elsewhere, e.g. a
    ``Datetime (UTC)`` header).
    """
    s = col.cast(pa.string())
    blank = pc.or_kleene(pc.is_null(s), pc.equal(pc.utf8_trim_whitespace(s), ""))
    i = _first(blank)
    if i is not None:
        raise SchemaError(
            f"{where}, line {i + 2}, column {column!r}: empty time; expected an ISO 8601 time"
        )
    s = pc.utf8_trim_whitespace(s)
    naive = pc.match_substring_regex(s, _NAIVE)
    if zone_less is None:
        i = _first(naive)
        if i is not None:
            raise SchemaError(
                f"{where}, line {i + 2}, column {column!r}: time {s[i].as_py()!r} has no time "
                "zone; expected an offset such as '+00:00' or 'Z' (the published files carry "
                "one; a zone-less time could be local and would shift every hour)"
            )
    else:
        date_only = pc.match_substring_regex(s, r"^\d{4}-\d{2}-\d{2}$")
        utc = pc.if_else(date_only, "T00:00:00+00:00", "+00:00")
        s = pc.if_else(naive, pc.binary_join_element_wise(s, utc, ""), s)
    try:
        return s.cast(_TS)
    except pa.ArrowInvalid:
        bad = _first_refused(s, _TS)
        raise SchemaError(
            f"{where}, line {bad + 2}, column {column!r}: cannot parse "
            f"{col[bad].as_py()!r} as an ISO 8601 time"
        ) from None


def _floats(col: pa.ChunkedArray, where: str, column: str) -> pa.ChunkedArray:
    """Numbers from strings; a blank cell is null (a missing hour)."""
    s = pc.utf8_trim_whitespace(col.cast(pa.string()))
    s = pc.if_else(pc.equal(s, ""), pa.scalar(None, pa.string()), s)
    try:
        return s.cast(pa.float64())
    except pa.ArrowInvalid:
        k = _first_refused(s, pa.float64())
        raise SchemaError(
            f"{where}, line {k + 2}, column {column!r}: {s[k].as_py()!r} is not a number; "
            "expected gCO2e/kWh (blank for a missing hour)"
        ) from None


def _first_refused(s: pa.ChunkedArray, to: pa.DataType) -> int:
    """Index of the first value a cast refuses (only after the cast of the
    whole column failed: one small cast per value up to it)."""
    for k, v in enumerate(s.to_pylist()):
        try:
            pa.array([v], pa.string()).cast(to)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return k
    return 0


def _ns(ts: pa.ChunkedArray) -> np.ndarray[Any, np.dtype[np.int64]]:
    return np.asarray(ts.cast(pa.int64()).to_numpy(), dtype=np.int64)


def _path_list(paths: PathArg | Sequence[PathArg]) -> list[PathArg]:
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not items:
        raise InputError("argument 'paths': no file given; expected one or more CSV files")
    return items


def _iso(ns: int) -> str:
    t = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=ns // 1000)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------ Electricity Maps


def from_electricitymaps(
    paths: PathArg | Sequence[PathArg],
    *,
    basis: Basis,
    region: str | None = None,
) -> pa.Table:
    """Read Electricity Maps hourly CSV exports (plain or ``.gz``).

    Electricity Maps labels each hour by its start (UTC), so a row covers
    ``[start, start + 1 h)``; its ``Datetime (UTC)`` column carries no zone
    (the header states it); a value with an offset is converted to UTC.
    ``basis`` must be chosen explicitly: ``"direct"`` (combustion emissions
    only, the GHG Protocol Scope 2 basis) or ``"lifecycle"`` (adds upstream
    emissions of each source). Electricity Maps figures are
    consumption-based (imports flow-traced), so the ``basis`` column reads
    ``"consumption, direct"`` or ``"consumption, lifecycle"``. Hours with a
    blank intensity are left out, so they surface as coverage holes instead
    of being silently priced at zero. ``region`` overrides the file's
    ``Zone Id``.
    """
    if basis not in _EM_COLUMNS:
        raise InputError(f"argument 'basis': got {basis!r}; expected 'direct' or 'lifecycle'")
    items = _path_list(paths)
    value_col = _EM_COLUMNS[basis]
    tables = []
    for p in items:
        path = os.fspath(p)
        where = f"table 'intensity' ({path})"
        t = _read_strings(path, (_EM_TIME, "Zone Id", value_col), "table 'intensity'", _EM_EXPECTED)
        start = _timestamps(t.column(_EM_TIME), where, _EM_TIME, zone_less="UTC")
        zone = (
            pa.array([region] * t.num_rows, pa.string())
            if region is not None
            else t.column("Zone Id").cast(pa.string())
        )
        out = pa.table(
            {
                "region": zone,
                "start": start,
                "end": pc.add(start, pa.scalar(_HOUR, pa.duration("ns"))),
                "gco2e_per_kwh": _floats(t.column(value_col), where, value_col),
                "basis": pa.array([ELECTRICITYMAPS_BASIS[basis]] * t.num_rows, pa.string()),
            }
        )
        tables.append(out.filter(pc.is_valid(out.column("gco2e_per_kwh"))))
    return pa.concat_tables(tables)


# ------------------------------------------------------------- EIA-930


@dataclass(frozen=True)
class _Erratum:
    ba: str
    start: int | None  # first affected label (epoch ns), None: unbounded
    end: int | None  # first label after, None: unbounded
    shift_ns: int
    text: str


def eia930_errata(path: PathArg | None = None) -> pa.Table:
    """The EIA-930 errata table: the shipped one (``data/eia930/errata.csv``)
    or a CSV of the same columns at ``path``.

    Columns: ``balancing_authority`` (EIA code, e.g. ``CISO``),
    ``period_start`` and ``period_end`` (the affected EIA labels, i.e. the
    published hour-ending ``timestamp``, half-open ``[start, end)``, ISO 8601
    with a zone; blank: unbounded), ``shift_hours`` (a non-zero integer: how
    many hours later the corrected hour is than the label says; ``+1`` for
    values labelled by their hour's beginning), ``erratum`` (the text written
    on each corrected row) and ``source`` (where the error is documented and
    how it was checked). Periods of one balancing authority may not overlap.
    """
    return _shipped_errata() if path is None else _errata_table(os.fspath(path))


@functools.lru_cache(maxsize=1)
def _shipped_errata() -> pa.Table:
    return _errata_table(os.fspath(ERRATA_PATH))


def _errata_table(path: str) -> pa.Table:
    what = "errata table"
    where = f"{what} ({path})"
    t = _read_strings(path, _ERRATA_COLUMNS, what, "columns " + ", ".join(_ERRATA_COLUMNS))
    ba = pc.utf8_trim_whitespace(t.column("balancing_authority"))
    for name, col in (("balancing_authority", ba), ("erratum", t.column("erratum"))):
        i = _first(pc.equal(pc.utf8_trim_whitespace(col), ""))
        if i is not None:
            raise SchemaError(
                f"{where}, line {i + 2}, column {name!r}: empty; expected "
                + ("an EIA code such as 'CISO'" if name == "balancing_authority" else "a text")
            )
    bounds = {}
    for col in ("period_start", "period_end"):
        s = pc.utf8_trim_whitespace(t.column(col))
        given = pc.not_equal(s, "")
        # Blank is unbounded: parse the others (a placeholder keeps lines).
        filled = pc.if_else(given, s, "1970-01-01T00:00:00Z")
        bounds[col] = pc.if_else(
            given, _timestamps(filled, where, col, zone_less=None), pa.scalar(None, _TS)
        )
    shifts = []
    for k, v in enumerate(t.column("shift_hours").to_pylist()):
        try:
            h = int(str(v).strip())
        except ValueError:
            h = 0
        if h == 0 or abs(h) > 24:
            raise SchemaError(
                f"{where}, line {k + 2}, column 'shift_hours': {v!r}; expected a non-zero "
                "whole number of hours between -24 and 24"
            )
        shifts.append(h)
    out = pa.table(
        {
            "balancing_authority": ba,
            "period_start": bounds["period_start"],
            "period_end": bounds["period_end"],
            "shift_hours": pa.array(shifts, pa.int64()),
            "erratum": t.column("erratum"),
            "source": t.column("source"),
        }
    )
    rows = _errata_rows(out)
    for k, a in enumerate(rows):
        if a.start is not None and a.end is not None and a.end <= a.start:
            raise SchemaError(
                f"{where}, line {k + 2}: period_end {_iso(a.end)} is not after period_start "
                f"{_iso(a.start)}"
            )
        for m in range(k):
            b = rows[m]
            lo_a = a.start if a.start is not None else -(2**63)
            hi_a = a.end if a.end is not None else 2**63
            lo_b = b.start if b.start is not None else -(2**63)
            hi_b = b.end if b.end is not None else 2**63
            if a.ba == b.ba and lo_a < hi_b and lo_b < hi_a:
                raise SchemaError(
                    f"{where}, lines {m + 2} and {k + 2}: two periods of {a.ba!r} overlap; "
                    "expected at most one correction per label"
                )
    return out


def _errata_rows(table: pa.Table) -> list[_Erratum]:
    bounds = []
    for col in ("period_start", "period_end"):
        c = table.column(col)
        given = c.is_valid().to_pylist()
        ns = _ns(pc.fill_null(c, pa.scalar(0, _TS))).tolist()
        bounds.append([n if g else None for n, g in zip(ns, given, strict=True)])
    return [
        _Erratum(ba=b, start=lo, end=hi, shift_ns=int(h) * _HOUR_NS, text=str(text))
        for b, lo, hi, h, text in zip(
            table.column("balancing_authority").to_pylist(),
            bounds[0],
            bounds[1],
            table.column("shift_hours").to_pylist(),
            table.column("erratum").to_pylist(),
            strict=True,
        )
    ]


def from_eia930(
    paths: PathArg | Sequence[PathArg],
    *,
    region: str | None = None,
    errata: bool | PathArg = True,
) -> pa.Table:
    """Read EIA-930 derived hourly intensity CSVs (``timestamp, ..., avg_CI``,
    as published by HewlettPackard/dc-rl from the EIA hourly grid monitor;
    plain or ``.gz``).

    EIA-930 labels each hour by its END, so a row stamped ``t`` covers
    ``[t - 1 h, t)``. ``timestamp`` must carry its zone (the published files
    write ``+00:00``); a zone-less one is an error naming the file, line and
    value. ``avg_CI`` is production-based (the balancing authority's own
    generation mix, no imports) with life-cycle factors per fuel, so every
    row's ``basis`` is ``"production, lifecycle"``: do not mix it with
    Electricity Maps' consumption-based or direct figures. Blank hours are
    left out so they surface as coverage holes. ``region`` defaults to the
    file name's prefix before the first ``_`` (the balancing authority, e.g.
    ``CISO``), which is also the code the errata are looked up by.

    ``errata`` (default ``True``: the shipped table, see
    :func:`eia930_errata`; a path: your own table; ``False``: none) corrects
    balancing authorities that labelled hours by their beginning: an
    affected row covers ``[t - 1 h + shift, t + shift)`` and its ``erratum``
    column names the correction (null on rows left as published). Where a
    correction starts or stops, the labels of the two conventions meet:

    - two rows then give the same hour: the row as published is kept and the
      corrected one dropped (as open-grid-emissions' ``manual_930_adjust``
      does); no overlap is left;
    - an hour no row gives (it was never reported: e.g. CISO 2022-06-15
      06:00-07:00 UTC) is left out, as a blank hour is, so an account over
      it names the hole instead of pricing a neighbour's value.

    Both are listed in the table's schema metadata (:data:`METADATA_KEY`,
    JSON), with the number of rows each erratum moved.
    """
    fixes = [] if errata is False else _errata_rows(_choose_errata(errata))
    items = _path_list(paths)
    tables = []
    report: list[dict[str, Any]] = []
    for p in items:
        path = os.fspath(p)
        table, note = _read_eia930(path, region, fixes)
        tables.append(table)
        report.append(note)
    out = pa.concat_tables(tables)
    meta = {"source": "EIA-930 via dc-rl", "basis": EIA930_BASIS, "files": report}
    return out.replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()})


def _choose_errata(errata: bool | PathArg) -> pa.Table:
    if errata is True:
        return eia930_errata()
    if isinstance(errata, str | os.PathLike):
        return eia930_errata(errata)
    raise InputError(
        f"argument 'errata': got {errata!r}; expected True (the shipped table), False or a path"
    )


def _read_eia930(
    path: str, region: str | None, fixes: Sequence[_Erratum]
) -> tuple[pa.Table, dict[str, Any]]:
    where = f"table 'intensity' ({path})"
    t = _read_strings(path, ("timestamp", "avg_CI"), "table 'intensity'", _EIA_EXPECTED)
    labels = _ns(_timestamps(t.column("timestamp"), where, "timestamp", zone_less=None))
    values = _floats(t.column("avg_CI"), where, "avg_CI")
    ba = os.path.basename(path).split("_")[0]
    name = region if region is not None else ba

    shift = np.zeros(len(labels), dtype=np.int64)
    which = np.full(len(labels), -1, dtype=np.int64)
    applied = []
    for k, e in enumerate(fixes):
        if e.ba != ba:
            continue
        hit = np.ones(len(labels), dtype=bool)
        if e.start is not None:
            hit &= labels >= e.start
        if e.end is not None:
            hit &= labels < e.end
        shift[hit] = e.shift_ns
        which[hit] = k
        if hit.any():
            applied.append({"erratum": e.text, "rows": int(hit.sum())})
    start = labels - _HOUR_NS + shift
    end = labels + shift
    keep = np.asarray(pc.is_valid(values).to_numpy(zero_copy_only=False), dtype=bool)

    dropped = _drop_erratum_duplicates(start, shift, keep)
    unreported = _boundary_holes(labels, start, keep)
    rows = np.flatnonzero(keep)
    texts = [fixes[w].text if w >= 0 else None for w in which[rows].tolist()]
    out = pa.table(
        {
            "region": pa.array([name] * len(rows), pa.string()),
            "start": pa.array(start[rows], pa.int64()).cast(_TS),
            "end": pa.array(end[rows], pa.int64()).cast(_TS),
            "gco2e_per_kwh": values.take(pa.array(rows, pa.int64())),
            "basis": pa.array([EIA930_BASIS] * len(rows), pa.string()),
            "erratum": pa.array(texts, pa.string()),
        }
    )
    note = {
        "file": path,
        "balancing_authority": ba,
        "region": name,
        "errata": applied,
        "dropped": [
            {
                "label": _iso(int(labels[d])),
                "hour": [_iso(int(start[d])), _iso(int(end[d]))],
                "kept_label": _iso(int(labels[k])),
                "why": "a corrected row and a row as published give the same hour where "
                "the labelling convention changes; the row as published is kept",
            }
            for d, k in dropped
        ],
        "unreported": [
            {
                "hour": [_iso(a), _iso(b)],
                "why": "no row gives this hour where the labelling convention changes "
                "(never reported); left out like a blank hour",
            }
            for a, b in unreported
        ],
    }
    return out, note


def _drop_erratum_duplicates(
    start: np.ndarray[Any, np.dtype[np.int64]],
    shift: np.ndarray[Any, np.dtype[np.int64]],
    keep: np.ndarray[Any, np.dtype[np.bool_]],
) -> list[tuple[int, int]]:
    """Among the kept rows that start at the same instant, keep the one
    with the smallest correction (the row as published, when one is) and
    drop those whose correction differs from it, in place. Rows with the
    same correction (duplicates in the file itself) are left for the engine
    to report. Returns ``(dropped, kept)`` row pairs."""
    idx = np.flatnonzero(keep)
    if len(idx) < 2:
        return []
    order = idx[np.lexsort((idx, np.abs(shift[idx]), start[idx]))]
    s = start[order]
    new = np.r_[True, s[1:] != s[:-1]]
    leader = order[np.flatnonzero(new)][np.cumsum(new) - 1]
    drop = shift[order] != shift[leader]
    keep[order[drop]] = False
    return list(zip(order[drop].tolist(), leader[drop].tolist(), strict=True))


def _boundary_holes(
    labels: np.ndarray[Any, np.dtype[np.int64]],
    start: np.ndarray[Any, np.dtype[np.int64]],
    keep: np.ndarray[Any, np.dtype[np.bool_]],
) -> list[tuple[int, int]]:
    """The hours, inside the span of the kept rows, that no row gives once
    corrected but that were no gap of the file as published, as ``[start,
    end)`` runs: the hours nobody reported where a correction starts or
    stops (or that a correction moved past the file's edge). A blank row
    still marks its hour (a blank, not an erratum); a label missing from
    the file is the file's own gap."""
    if not keep.any():
        return []
    lo, hi = int(start[keep].min()), int(start[keep].max())
    hours = np.arange(lo, hi, _HOUR_NS, dtype=np.int64)
    published = labels - _HOUR_NS
    in_file = (hours >= published.min()) & (hours <= published.max())
    file_gap = in_file & ~np.isin(hours, published)
    missing = hours[~np.isin(hours, start) & ~file_gap].tolist()
    runs: list[tuple[int, int]] = []
    for h in missing:
        if runs and runs[-1][1] == h:
            runs[-1] = (runs[-1][0], h + _HOUR_NS)
        else:
            runs.append((h, h + _HOUR_NS))
    return runs


# --------------------------------------------------------- plausibility


def implausible_hours(
    intensity: pa.Table,
    *,
    window_days: int = 7,
    quantile: float = 0.05,
    fraction: float = 0.25,
    min_drop: float = 10.0,
    min_rows: int = 48,
) -> pa.Table:
    """Rows of an intensity table far below their region's usual floor.

    The floor of a row is the ``quantile`` (5 %) of its region's intensity
    over the rows that start within ``window_days`` (7) days either side of
    the row's UTC day. A row is implausible when it is below ``fraction``
    (a quarter) of that floor and at least ``min_drop`` (10) g/kWh below it.
    A low percentile over two weeks follows the seasons and is not moved by
    a few bad hours; genuine low hours of windy or sunny days stay within a
    half of it on every shipped series, while partial reports (EIA-930 PJM,
    2022-10-01) and single-hour glitches fall to a sixth or less. Windows
    with fewer than ``min_rows`` rows (monthly or yearly factors, short
    tables) are not judged.

    ``intensity`` needs ``region``, ``start`` and ``gco2e_per_kwh``
    (``end`` is used where given; else the next row's start). Returns
    ``region, start, end, gco2e_per_kwh, floor_gco2e_per_kwh`` of the
    implausible rows, by region and start.
    """
    for col in ("region", "start", "gco2e_per_kwh"):
        if col not in intensity.column_names:
            raise SchemaError(f"table 'intensity': missing column {col!r}")
    where = "table 'intensity'"
    starts, has_start = _times(intensity.column("start"), where, "start")
    if "end" in intensity.column_names:
        ends, has_end = _times(intensity.column("end"), where, "end")
    else:
        ends, has_end = np.zeros(len(starts), dtype=np.int64), np.zeros(len(starts), dtype=bool)
    try:
        col = intensity.column("gco2e_per_kwh").cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise SchemaError(
            f"{where}: column 'gco2e_per_kwh' of type "
            f"{intensity.schema.field('gco2e_per_kwh').type} is not numeric"
        ) from None
    values = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
    regions = np.asarray(intensity.column("region").cast(pa.string()).to_pylist(), dtype=object)

    hits: dict[str, list[Any]] = {k: [] for k in ("region", "start", "end", "v", "floor")}
    ok = has_start & np.isfinite(values) & (regions != None)  # noqa: E711 - elementwise
    for reg in sorted(set(regions[ok].tolist())):
        rows = np.flatnonzero(ok & (regions == reg))
        rows = rows[np.argsort(starts[rows], kind="stable")]
        t, x = starts[rows], values[rows]
        # End of each row: its own, else the next start, else one more of the
        # previous row's length (SPEC 2), else an hour.
        step = np.diff(t, append=t[-1] + (t[-1] - t[-2] if len(t) > 1 else _HOUR_NS))
        e = np.where(has_end[rows], ends[rows], t + np.where(step > 0, step, _HOUR_NS))
        day = t // _DAY_NS
        for d in np.unique(day):
            lo, hi = np.searchsorted(
                t, [(d - window_days) * _DAY_NS, (d + window_days + 1) * _DAY_NS]
            )
            if hi - lo < min_rows:
                continue
            floor = float(np.quantile(x[lo:hi], quantile))
            a, b = np.searchsorted(t, [d * _DAY_NS, (d + 1) * _DAY_NS])
            bad = (x[a:b] < fraction * floor) & (floor - x[a:b] >= min_drop)
            for i in np.flatnonzero(bad) + a:
                hits["region"].append(reg)
                hits["start"].append(int(t[i]))
                hits["end"].append(int(e[i]))
                hits["v"].append(float(x[i]))
                hits["floor"].append(floor)
    return pa.table(
        {
            "region": pa.array(hits["region"], pa.string()),
            "start": pa.array(hits["start"], pa.int64()).cast(_TS),
            "end": pa.array(hits["end"], pa.int64()).cast(_TS),
            "gco2e_per_kwh": pa.array(hits["v"], pa.float64()),
            "floor_gco2e_per_kwh": pa.array(hits["floor"], pa.float64()),
        }
    )


def _times(
    col: pa.ChunkedArray, where: str, column: str
) -> tuple[np.ndarray[Any, np.dtype[np.int64]], np.ndarray[Any, np.dtype[np.bool_]]]:
    """A time column as epoch nanoseconds (0 where null) and where it is
    given: timestamps (zone-less = UTC, SPEC 1) or ISO strings."""
    given = np.asarray(pc.is_valid(col).to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_timestamp(col.type):
        ns = col.cast(pa.timestamp("ns", col.type.tz)).cast(pa.int64())
    elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        filled = pc.if_else(pc.is_valid(col), col.cast(pa.string()), "1970-01-01T00:00:00Z")
        ns = _timestamps(filled, where, column, zone_less="UTC").cast(pa.int64())
    else:
        raise SchemaError(f"{where}: column {column!r} of type {col.type} is not a time")
    return np.asarray(pc.fill_null(ns, 0).to_numpy(), dtype=np.int64), given
