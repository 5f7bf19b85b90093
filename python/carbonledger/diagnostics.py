"""Warnings about results that are almost certainly a mistake.

An accounting run can succeed and still be wrong in ways no single input row
shows: a device whose telemetry never arrived, jobs that no sample covers, a
job table in local time read as UTC. :func:`collect_warnings` looks for
these signatures after a run, from what the run already holds (the result
tables, the period, the input schemas and the small input tables),
never by reading samples again, so it costs a few vectorized passes over
tables with one row per device or allocation.

Each check, its exact rule and the reason for it are documented in
``docs/methodology.md`` (section "Warnings"). ``account(..., strict=True)``
and ``carbonledger run --strict`` turn any warning into a
:class:`~carbonledger.exceptions.SuspiciousResultError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from ._time import to_ns, to_polars
from .exceptions import InputError, SuspiciousResultError

if TYPE_CHECKING:
    from .report import Report

__all__ = [
    "WARNING_CODES",
    "LedgerWarning",
    "apply_warnings",
    "collect_warnings",
    "format_warnings",
    "warnings_from_manifest",
]

#: Every warning code, in the order warnings are reported (causes first).
WARNING_CODES: tuple[str, ...] = (
    "naive_timestamps",
    "time_mismatch",
    "fleet_unallocated",
    "device_no_samples",
    "allocation_uncovered",
)

MAX_EXAMPLES = 5
NS = 1_000_000_000
HOUR_NS = 3600 * NS
YEAR_NS = 31_557_600 * NS  # SPEC 1: 365.25 days
# UTC offsets in use run from -12 h to +14 h.
MAX_ZONE_OFFSET_H = 14
# How far each end of the two spans may be from a whole-hour offset: the
# first/last sample sits up to one sampling interval from the hour the
# export starts on; 5 min is the default max_gap (Prometheus staleness).
OFFSET_TOLERANCE_NS = 300 * NS
# uncovered_s and duration_s are float seconds from integer nanoseconds: "all
# of it uncovered" is compared with this relative slack.
REL = 1e-9

# The timestamp columns the engine reads (SPEC 2), per table.
TIME_COLUMNS: dict[str, tuple[str, ...]] = {
    "power": ("ts",),
    "devices": ("installed_at", "retired_at"),
    "intensity": ("start", "end"),
    "allocations": ("start", "end"),
}

SchemaInput: TypeAlias = pa.Schema | Sequence[pa.Schema] | None
# An ISO 8601 string that carries its zone ends in Z or a UTC offset.
_ZONED = r"([Zz]|[+-]\d{2}(:?\d{2})?)$"


@dataclass(frozen=True)
class LedgerWarning:
    """A result that is almost certainly a mistake, found after a run.

    Attributes:
        code: stable identifier of the check (one of ``WARNING_CODES``).
        message: one line for people: what was found, how many, examples,
            and the likely cause.
        count: how many devices, allocations or columns are concerned.
        examples: a few of their ids (device ids, job ids or
            ``table.column`` names), as strings.
    """

    code: str
    message: str
    count: int
    examples: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (as written to ``manifest.json``)."""
        return {
            "code": self.code,
            "message": self.message,
            "count": self.count,
            "examples": list(self.examples),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LedgerWarning:
        """The inverse of :meth:`to_dict`."""
        return cls(
            code=str(d["code"]),
            message=str(d["message"]),
            count=int(d.get("count", 0)),
            examples=tuple(str(x) for x in d.get("examples", ())),
        )


def warnings_from_manifest(manifest: Mapping[str, Any]) -> list[LedgerWarning]:
    """The warnings recorded in a ledger's ``manifest.json`` (``[]`` for a
    ledger written before warnings existed)."""
    return [LedgerWarning.from_dict(d) for d in manifest.get("warnings", ()) or ()]


def format_warnings(warnings: Sequence[LedgerWarning]) -> str:
    """One line per warning, for a terminal or a log."""
    return "\n".join(f"carbonledger: warning {w}" for w in warnings)


# ------------------------------------------------------------------ helpers


def _listing(ids: Sequence[str], count: int) -> str:
    more = count - len(ids)
    text = ", ".join(str(i) for i in ids)  # a null id is None
    return f"{text} and {more} more" if more > 0 else text


def _ts_text(ns: int) -> str:
    t = pl.Series([ns]).cast(pl.Datetime("ns", "UTC"))[0]
    return str(t.strftime("%Y-%m-%d %H:%M:%S UTC"))


def _span_text(lo: int, hi: int) -> str:
    return f"[{_ts_text(lo)}, {_ts_text(hi)}]"


def _ns_series(s: pl.Series) -> pl.Series | None:
    """Epoch nanoseconds (UTC; naive = UTC, SPEC 1) of a time column as the
    run read it, or ``None`` where its type is not one the check can read."""
    if isinstance(s.dtype, pl.Datetime):
        return s.dt.epoch("ns")
    if s.dtype == pl.String:
        # ISO strings (CSV), parsed as the engine parses them; small tables only.
        try:
            return pl.Series([None if v is None else to_ns(v, s.name) for v in s], dtype=pl.Int64)
        except InputError:
            return None
    return None


def _jobs(df: pl.DataFrame) -> tuple[int, tuple[str, ...]]:
    """Distinct job ids of some allocation rows: how many, and the first few."""
    jobs = _ids(df["job_id"]).unique(maintain_order=True)
    return jobs.len(), tuple(jobs.head(MAX_EXAMPLES).to_list())


def _ids(s: pl.Series) -> pl.Series:
    # Dictionary-encoded (categorical) ids join as strings; integers too.
    # Any other type (job ids are free-form: binary that is not UTF-8, lists)
    # as its text.
    try:
        return s.cast(pl.String)
    except pl.exceptions.PolarsError:
        return pl.Series(s.name, [None if x is None else str(x) for x in s.to_list()], pl.String)


def _schemas(value: SchemaInput) -> list[pa.Schema]:
    if value is None:
        return []
    if isinstance(value, pa.Schema):
        return [value]
    return [s for s in value if s is not None]


def _in_service(devices_in: pa.Table | None, n: int, period: tuple[int, int]) -> pl.Series:
    """Per device of ``devices`` (in order): does its amortization window
    ``[installed_at, retired_at or installed_at + lifetime)`` meet the
    period? Unknown (no table, an unreadable type, nulls) counts as yes, so
    that a doubt never hides a warning. Column-wise: a million devices."""
    yes = pl.repeat(True, n, dtype=pl.Boolean, eager=True)
    if devices_in is None or devices_in.num_rows != n:
        return yes
    if "installed_at" not in devices_in.column_names:
        return yes
    df = to_polars(devices_in)
    installed = _ns_series(df["installed_at"])
    if installed is None:
        return yes
    if "retired_at" in df.columns:
        retired = _ns_series(df["retired_at"])
        if retired is None:
            return yes
    else:
        retired = pl.Series([None] * n, dtype=pl.Int64)
    if "lifetime_years" in df.columns and df["lifetime_years"].dtype.is_numeric():
        lifetime = df["lifetime_years"].cast(pl.Float64)
    else:
        lifetime = pl.Series([None] * n, dtype=pl.Float64)
    inst, ret, life = pl.col("inst"), pl.col("ret"), pl.col("life")
    # SPEC 2: retired_at wins over lifetime_years.
    end_meets = (
        pl.when(ret.is_not_null())
        .then(ret > period[0])
        .otherwise(inst.cast(pl.Float64) + life * YEAR_NS > period[0])
    )
    known = inst.is_not_null() & (ret.is_not_null() | life.is_not_null())
    meets = pl.when(known).then((inst < period[1]) & end_meets).otherwise(True)
    cols = pl.DataFrame({"inst": installed, "ret": retired, "life": lifetime})
    return cols.select(meets.alias("in_service")).to_series()


# ------------------------------------------------------------------- checks


def _naive_strings(table: pa.Table | None, col: str) -> bool:
    """Does a string time column of a small input table hold a value without
    a zone? (Only small tables: the samples are never read again.)"""
    if table is None or col not in table.column_names:
        return False
    values = table.column(col).drop_null()
    if len(values) == 0:
        return False
    zoned = pc.match_substring_regex(values.cast(pa.string()), _ZONED)
    return not pc.all(zoned).as_py()


def _naive_timestamps(
    schemas: Mapping[str, SchemaInput], tables: Mapping[str, pa.Table | None]
) -> LedgerWarning | None:
    names: list[str] = []
    for table, columns in TIME_COLUMNS.items():
        found = _schemas(schemas.get(table))
        for i, schema in enumerate(found):
            for col in columns:
                if col not in schema.names:
                    continue
                t = schema.field(col).type
                if pa.types.is_timestamp(t):
                    naive = t.tz is None
                elif (
                    pa.types.is_string(t)
                    or pa.types.is_large_string(t)
                    or pa.types.is_string_view(t)
                ):
                    naive = _naive_strings(tables.get(table), col)
                else:
                    naive = False
                if naive:
                    # With several sources, say which one.
                    names.append(f"{table}[{i}].{col}" if len(found) > 1 else f"{table}.{col}")
    if not names:
        return None
    return LedgerWarning(
        "naive_timestamps",
        f"{len(names)} timestamp column(s) without a time zone were read as UTC (SPEC 1): "
        f"{', '.join(names)}; if they hold local times every result is shifted: give them "
        "a zone (e.g. timestamp[ns, tz=UTC], or ISO strings with an offset)",
        len(names),
        tuple(names),
    )


def _with_spans(alloc: pl.DataFrame, devices: pl.DataFrame) -> pl.DataFrame | None:
    """Per allocation row, in input order: ``job_id``, ``start``, ``end``
    (epoch ns), ``duration_s``, ``uncovered_s`` and its device's valid-sample
    span ``first``, ``last`` (epoch ns; null for a device without one).
    ``None`` where a needed column is missing or its type unreadable."""
    needed = {"job_id", "device_id", "start", "end", "duration_s", "uncovered_s"}
    if not needed <= set(alloc.columns) or "first_ts" not in devices.columns:
        return None
    start, end = _ns_series(alloc["start"]), _ns_series(alloc["end"])
    if start is None or end is None:
        return None
    a = pl.DataFrame(
        {
            "device_id": _ids(alloc["device_id"]),
            "job_id": _ids(alloc["job_id"]),
            "start": start,
            "end": end,
            "duration_s": alloc["duration_s"],
            "uncovered_s": alloc["uncovered_s"],
        }
    )
    spans = pl.DataFrame(
        {
            "device_id": _ids(devices["device_id"]),
            "first": devices["first_ts"].dt.epoch("ns"),
            "last": devices["last_ts"].dt.epoch("ns"),
        }
    )
    # Input order kept through the join (examples are listed in that order).
    return (
        a.with_row_index("_row").join(spans, on="device_id", how="left").sort("_row").drop("_row")
    )


def _time_mismatch(joined: pl.DataFrame) -> LedgerWarning | None:
    # Only allocations on devices that have valid samples say anything about
    # clocks; a device without samples is the device_no_samples check.
    j = joined.drop_nulls(["start", "end", "first", "last"])
    if j.height == 0:
        return None
    meets = (j["start"] <= j["last"]) & (j["end"] > j["first"])
    s0, s1 = int(j["first"].min()), int(j["last"].max())  # type: ignore[arg-type]
    a0, a1 = int(j["start"].min()), int(j["end"].max())  # type: ignore[arg-type]
    spans_text = f"valid samples span {_span_text(s0, s1)}, allocations {_span_text(a0, a1)}"
    hint = (
        "the signature of local times read as UTC (naive timestamps are UTC, SPEC 1) "
        "or of a wrong zone: give the timestamps their zone"
    )
    d_start, d_end = a0 - s0, a1 - s1
    k = round(d_start / HOUR_NS)
    shifted = (
        1 <= abs(k) <= MAX_ZONE_OFFSET_H
        and abs(d_start - k * HOUR_NS) <= OFFSET_TOLERANCE_NS
        and abs(d_end - k * HOUR_NS) <= OFFSET_TOLERANCE_NS
    )
    shift_text = f"the allocations' time range is the samples' shifted by {k:+d} h at both ends"
    if not meets.any():
        n_jobs, examples = _jobs(j)
        also = f"; {shift_text}" if shifted else ""
        return LedgerWarning(
            "time_mismatch",
            f"no allocation meets its device's samples: each of the {j.height} allocation(s) "
            f"on measured devices lies wholly before the device's first or after its last "
            f"valid sample ({spans_text}{also}): {hint}; jobs: {_listing(examples, n_jobs)}",
            j.height,
            examples,
        )
    if shifted:
        # The allocations hanging over the samples' edges are the evidence.
        out = j.filter((pl.col("start") < pl.col("first")) | (pl.col("end") > pl.col("last")))
        n_jobs, examples = _jobs(out)
        return LedgerWarning(
            "time_mismatch",
            f"{shift_text} ({spans_text}): {hint}; {out.height} allocation(s) reach past "
            f"their device's samples, jobs: {_listing(examples, n_jobs)}",
            out.height,
            examples,
        )
    return None


def _fleet_unallocated(report: Report, alloc: pl.DataFrame) -> LedgerWarning | None:
    if alloc.height == 0:
        return LedgerWarning(
            "fleet_unallocated",
            "an allocations table was given but it has no rows: the whole fleet is booked "
            "as unallocated",
            0,
        )
    duration = float(alloc["duration_s"].sum())
    n_jobs, examples = _jobs(alloc)
    listing = _listing(examples, n_jobs)
    if duration <= 0:
        return LedgerWarning(
            "fleet_unallocated",
            f"none of the {alloc.height} allocation(s) overlaps the period: the whole fleet "
            f"is booked as unallocated (jobs: {listing}); check the period and the "
            "allocations' time zone",
            alloc.height,
            examples,
        )
    fleet_energy = report.totals()["energy_kwh"]
    if fleet_energy > 0 and float(alloc["energy_kwh"].sum()) <= 0:
        return LedgerWarning(
            "fleet_unallocated",
            f"the {alloc.height} allocation(s) receive no energy: all "
            f"{fleet_energy:.6g} kWh of the fleet is booked as unallocated (jobs: {listing})",
            alloc.height,
            examples,
        )
    return None


def _device_no_samples(
    devices: pl.DataFrame, period: tuple[int, int], devices_in: pa.Table | None
) -> LedgerWarning | None:
    period_s = (period[1] - period[0]) / NS
    if period_s <= 0 or "uncovered_s" not in devices.columns:
        return None
    service = _in_service(devices_in, devices.height, period)
    hit = devices.filter(service & (pl.col("uncovered_s") >= period_s * (1 - REL)))
    if hit.height == 0:
        return None
    ids = _ids(hit["device_id"]).head(MAX_EXAMPLES).to_list()
    never = int(hit["first_ts"].is_null().sum()) if "first_ts" in hit.columns else 0
    return LedgerWarning(
        "device_no_samples",
        f"{hit.height} of {devices.height} device(s) in service during the period have no "
        f"measured time in it, so none of their energy is measured: "
        f"{_listing(ids, hit.height)} (no valid sample in or around the period, or samples "
        f"farther apart than max_gap; {never} without any valid sample at all)",
        hit.height,
        tuple(ids),
    )


def _allocation_uncovered(joined: pl.DataFrame) -> LedgerWarning | None:
    # An allocation wholly inside a telemetry gap is an outage the data
    # coverage counts already (the demo has such); one beyond its device's
    # first or last sample, or on a device with none, says that the two
    # tables describe different times or devices.
    beyond = (
        pl.col("first").is_null()
        | (pl.col("end") <= pl.col("first"))
        | (pl.col("start") >= pl.col("last"))
    )
    hit = joined.filter(
        (pl.col("duration_s") > 0)
        & (pl.col("uncovered_s") >= pl.col("duration_s") * (1 - REL))
        & beyond
    )
    if hit.height == 0:
        return None
    alloc = joined
    n_jobs, examples = _jobs(hit)
    return LedgerWarning(
        "allocation_uncovered",
        f"{hit.height} of {alloc.height} allocation(s) overlap the period but lie wholly "
        f"before their device's first valid sample, after its last, or on a device without "
        f"any, so no energy is measured for them (jobs: {_listing(examples, n_jobs)})",
        hit.height,
        examples,
    )


def collect_warnings(
    report: Report,
    *,
    schemas: Mapping[str, SchemaInput],
    allocations_given: bool,
    period: tuple[int, int] | None = None,
    tables: Mapping[str, pa.Table | None] | None = None,
) -> list[LedgerWarning]:
    """Find the results of a run that are almost certainly a mistake.

    Args:
        report: the run's result tables.
        schemas: the Arrow schema of each input table as the run saw it
            (``"power"`` may map to a list, one per source; ``None`` or a
            missing key skips that table's timestamp check).
        allocations_given: whether the run was given an allocations table
            (``report.allocations`` is empty either way when none was).
        period: the accounting period in epoch nanoseconds; ``None``: the
            engine's default, first to last valid sample.
        tables: the small input tables as the run read them (``devices``,
            ``intensity``, ``allocations``): ``devices`` exempts devices
            whose amortization window does not meet the period from
            ``device_no_samples``, and string time columns are checked for
            a zone; a missing table skips that part.

    Returns:
        The warnings, in the order of ``WARNING_CODES``; ``[]`` when every
        check passes.
    """
    small = tables or {}
    found: list[LedgerWarning | None] = [_naive_timestamps(schemas, small)]
    alloc = report.allocations
    dev = report.devices
    joined = _with_spans(alloc, dev) if alloc.height else None
    if allocations_given:
        found.append(_time_mismatch(joined) if joined is not None else None)
        found.append(_fleet_unallocated(report, alloc))
    # The engine's settled period (the default one when none was asked for).
    span = period if period is not None else report.period_ns
    if span is not None:
        found.append(_device_no_samples(dev, span, small.get("devices")))
    if joined is not None:
        found.append(_allocation_uncovered(joined))
    return [w for w in found if w is not None]


def apply_warnings(report: Report, warnings: Iterable[LedgerWarning], *, strict: bool) -> Report:
    """Set ``report.warnings``; with ``strict``, raise instead when any."""
    report.warnings = list(warnings)
    if strict and report.warnings:
        raise SuspiciousResultError(report.warnings)
    return report
