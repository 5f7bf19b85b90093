//! Reading typed columns out of Arrow batches, normalizing at the boundary:
//! any timestamp unit or zone (or date, or ISO string) becomes UTC epoch
//! nanoseconds; any numeric type becomes f64 (nulls become NaN).

use std::borrow::Cow;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Schema, TimeUnit};

use crate::error::{Error, Result};

/// A small input table, concatenated into one batch.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub batch: RecordBatch,
}

impl Table {
    pub fn new(name: &'static str, schema: &Schema, batches: &[RecordBatch]) -> Result<Self> {
        let batch =
            arrow_select::concat::concat_batches(&std::sync::Arc::new(schema.clone()), batches)
                .map_err(|e| {
                    Error::schema(format!("table '{name}': cannot read its batches: {e}"))
                })?;
        Ok(Self { name, batch })
    }

    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn column(&self, name: &str, expected: &str) -> Result<&ArrayRef> {
        required(&self.batch, self.name, name, expected)
    }

    pub fn optional(&self, name: &str) -> Option<&ArrayRef> {
        self.batch.column_by_name(name)
    }
}

/// The column `name` of `batch`, or a schema error naming what was expected.
pub fn required<'a>(
    batch: &'a RecordBatch,
    table: &str,
    name: &str,
    expected: &str,
) -> Result<&'a ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| {
        let found: Vec<&str> = batch
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        missing_column(table, name, expected, &found)
    })
}

/// The schema error for a missing column: what was expected, the columns
/// the input really has, and, when one of them looks like the missing one,
/// how to map it.
pub fn missing_column(table: &str, name: &str, expected: &str, found: &[&str]) -> Error {
    Error::schema(format!(
        "table '{table}': missing required column '{name}' (expected {expected}); found columns {found:?}{}",
        mapping_hint(table, name, found)
    ))
}

/// `; did you mean 'x'? map it with ...` when a found column looks like
/// `name`, else nothing.
pub fn mapping_hint(table: &str, name: &str, found: &[&str]) -> String {
    match closest_column(name, found) {
        Some(c) => format!(
            "; did you mean '{c}'? map it with columns={{\"{name}\": \"{c}\"}} (CLI: --column {table}.{name}={c})"
        ),
        None => String::new(),
    }
}

/// Names telemetry tools and schedulers use for carbonledger's columns.
const ALIASES: &[(&str, &[&str])] = &[
    (
        "ts",
        &[
            "timestamp",
            "time",
            "datetime",
            "date",
            "t",
            "sample_time",
            "time_utc",
        ],
    ),
    (
        "device_id",
        &[
            "device",
            "uuid",
            "gpu_uuid",
            "gpu",
            "gpu_id",
            "id",
            "device_uuid",
            "hostname",
        ],
    ),
    (
        "power_w",
        &[
            "power",
            "watts",
            "power_draw",
            "power.draw",
            "power_usage",
            "power_watts",
        ],
    ),
    (
        "energy_j",
        &["energy", "energy_joules", "total_energy", "joules"],
    ),
    (
        "start",
        &[
            "start_time",
            "starttime",
            "begin",
            "from",
            "start_ts",
            "valid_from",
        ],
    ),
    (
        "end",
        &["end_time", "endtime", "stop", "to", "end_ts", "valid_to"],
    ),
    ("job_id", &["job", "jobid", "job_name", "allocation_id"]),
    (
        "site_id",
        &["site", "datacenter", "data_center", "dc", "location"],
    ),
    (
        "gco2e_per_kwh",
        &[
            "carbon_intensity",
            "intensity",
            "gco2_per_kwh",
            "co2_intensity",
        ],
    ),
    (
        "embodied_kgco2e",
        &["embodied", "embodied_kg", "embodied_co2e"],
    ),
];

/// The found column most likely meant as `name`: a known alias, or a name
/// equal up to case and punctuation, or within a small edit distance.
pub fn closest_column<'f>(name: &str, found: &[&'f str]) -> Option<&'f str> {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let target = norm(name);
    let aliases: Vec<String> = ALIASES
        .iter()
        .filter(|(canon, _)| *canon == name)
        .flat_map(|(_, a)| a.iter().map(|x| norm(x)))
        .collect();
    let alias_rank = |f: &str| aliases.iter().position(|a| *a == norm(f));
    if let Some((_, f)) = found
        .iter()
        .filter_map(|f| alias_rank(f).map(|r| (r, *f)))
        .min_by_key(|(r, _)| *r)
    {
        return Some(f);
    }
    let limit = (target.len() / 3).max(1);
    found
        .iter()
        .map(|f| (edit_distance(&norm(f), &target), *f))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, f)| f)
}

/// Levenshtein distance (short column names only).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Timestamps as epoch nanoseconds, with the nulls of the input.
#[derive(Debug)]
pub struct Times<'a> {
    pub values: Cow<'a, [i64]>,
    pub nulls: Option<NullBuffer>,
}

impl Times<'_> {
    #[inline]
    pub fn get(&self, i: usize) -> Option<i64> {
        match &self.nulls {
            Some(n) if n.is_null(i) => None,
            _ => Some(self.values[i]),
        }
    }
}

pub fn is_time_type(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Timestamp(_, _)
            | DataType::Date32
            | DataType::Date64
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
    )
}

fn scaled<'a>(
    values: &'a [i64],
    nulls: Option<&NullBuffer>,
    factor: i64,
    table: &str,
    col: &str,
) -> Result<Cow<'a, [i64]>> {
    if factor == 1 {
        return Ok(Cow::Borrowed(values));
    }
    values
        .iter()
        .enumerate()
        .map(|(row, v)| match v.checked_mul(factor) {
            Some(ns) => Ok(ns),
            // A null's slot may hold anything (pandas' NaT is i64::MIN).
            None if nulls.is_some_and(|n| n.is_null(row)) => Ok(0),
            None => Err(Error::input(format!(
                "table '{table}', column '{col}': timestamp {v} at row {row} overflows the nanosecond range (years 1677-2262)"
            ))),
        })
        .collect::<Result<Vec<_>>>()
        .map(Cow::Owned)
}

/// The instants carbonledger accepts, in epoch ns: `[1970-01-01, 2200-01-01)`.
/// Fleet telemetry cannot predate the epoch, and the bound keeps the
/// difference of any two accepted instants (and a period widened by any
/// `max_gap` up to a century) inside i64 nanoseconds, so no interval length
/// can overflow. A time outside it is a unit or encoding slip (seconds read
/// as milliseconds, a zero or sentinel date), never a sample to book.
pub const ERA_NS: (i64, i64) = (0, 7_258_118_400_000_000_000);

/// Reject any non-null time outside [`ERA_NS`], naming the first one.
pub fn check_era(values: &[i64], nulls: Option<&NullBuffer>, table: &str, col: &str) -> Result<()> {
    let outside = |v: i64| v < ERA_NS.0 || v >= ERA_NS.1;
    let bad = match nulls {
        // Vectorizes: one pass of min/max, then a search only on failure.
        None => {
            let (lo, hi) = values
                .iter()
                .fold((i64::MAX, i64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            if values.is_empty() || !(outside(lo) || outside(hi)) {
                return Ok(());
            }
            values.iter().position(|&v| outside(v))
        }
        Some(n) => (0..values.len()).find(|&i| n.is_valid(i) && outside(values[i])),
    };
    match bad {
        None => Ok(()),
        Some(row) => Err(Error::input(format!(
            "table '{table}', column '{col}': time {} at row {row} is outside the accepted range [{}, {}); expected instants of this era (a value this far off is a unit or encoding slip, e.g. seconds stored as milliseconds, or a sentinel date)",
            fmt_ts(values[row]),
            fmt_ts(ERA_NS.0),
            fmt_ts(ERA_NS.1)
        ))),
    }
}

/// Read a timestamp column (any unit; zone-aware values are UTC instants, naive
/// ones are taken as UTC) as epoch nanoseconds, each within [`ERA_NS`].
pub fn times<'a>(arr: &'a ArrayRef, table: &str, col: &str) -> Result<Times<'a>> {
    let t = times_unchecked(arr, table, col)?;
    check_era(&t.values, t.nulls.as_ref(), table, col)?;
    Ok(t)
}

/// `times` without the era check: for rows that may still be ignored (the
/// read window of SPEC 8 decides first).
pub fn times_unchecked<'a>(arr: &'a ArrayRef, table: &str, col: &str) -> Result<Times<'a>> {
    let nulls = arr.logical_nulls();
    let values = match arr.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, _) => scaled(
            arr.as_primitive::<TimestampNanosecondType>().values(),
            nulls.as_ref(),
            1,
            table,
            col,
        )?,
        DataType::Timestamp(TimeUnit::Microsecond, _) => scaled(
            arr.as_primitive::<TimestampMicrosecondType>().values(),
            nulls.as_ref(),
            1_000,
            table,
            col,
        )?,
        DataType::Timestamp(TimeUnit::Millisecond, _) => scaled(
            arr.as_primitive::<TimestampMillisecondType>().values(),
            nulls.as_ref(),
            1_000_000,
            table,
            col,
        )?,
        DataType::Timestamp(TimeUnit::Second, _) => scaled(
            arr.as_primitive::<TimestampSecondType>().values(),
            nulls.as_ref(),
            1_000_000_000,
            table,
            col,
        )?,
        DataType::Date32 => {
            let days: Vec<i64> = arr
                .as_primitive::<Date32Type>()
                .values()
                .iter()
                .map(|d| i64::from(*d))
                .collect();
            Cow::Owned(scaled(&days, nulls.as_ref(), 86_400_000_000_000, table, col)?.into_owned())
        }
        DataType::Date64 => scaled(
            arr.as_primitive::<Date64Type>().values(),
            nulls.as_ref(),
            1_000_000,
            table,
            col,
        )?,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            // Not `safe`: an unparseable string is an error naming it, not a null.
            let opts = arrow_cast::CastOptions {
                safe: false,
                ..Default::default()
            };
            let cast = arrow_cast::cast_with_options(arr, &DataType::Timestamp(TimeUnit::Nanosecond, None), &opts)
                .map_err(|e| {
                    Error::input(format!(
                        "table '{table}', column '{col}': cannot parse strings as timestamps ({e}); expected ISO 8601 such as 2025-01-01T00:00:00Z"
                    ))
                })?;
            let v = cast
                .as_primitive::<TimestampNanosecondType>()
                .values()
                .to_vec();
            return Ok(Times {
                values: Cow::Owned(v),
                nulls: cast.logical_nulls(),
            });
        }
        other => {
            return Err(Error::schema(format!(
                "table '{table}', column '{col}': expected a timestamp column, found type {other}"
            )))
        }
    };
    Ok(Times { values, nulls })
}

/// Read a numeric column as f64; nulls become NaN (callers decide whether
/// that is an invalid sample, a default or an error).
pub fn floats<'a>(arr: &'a ArrayRef, table: &str, col: &str) -> Result<Cow<'a, [f64]>> {
    if !arr.data_type().is_numeric() {
        return Err(Error::schema(format!(
            "table '{table}', column '{col}': expected a numeric column, found type {}",
            arr.data_type()
        )));
    }
    if let (DataType::Float64, None) = (arr.data_type(), arr.logical_nulls()) {
        return Ok(Cow::Borrowed(
            arr.as_primitive::<arrow_array::types::Float64Type>()
                .values(),
        ));
    }
    let cast = arrow_cast::cast(arr, &DataType::Float64).map_err(|e| {
        Error::schema(format!(
            "table '{table}', column '{col}': cannot read as float64 ({e})"
        ))
    })?;
    let f: &Float64Array = cast.as_primitive();
    let mut v = f.values().to_vec();
    if let Some(n) = f.logical_nulls() {
        for (i, x) in v.iter_mut().enumerate() {
            if n.is_null(i) {
                *x = f64::NAN;
            }
        }
    }
    Ok(Cow::Owned(v))
}

/// Display a nanosecond timestamp as ISO 8601 UTC for error messages.
pub fn fmt_ts(ns: i64) -> String {
    if ns == i64::MIN {
        return "-inf".into();
    }
    if ns == i64::MAX {
        return "+inf".into();
    }
    let secs = ns.div_euclid(1_000_000_000);
    let sub = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let base = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    if sub == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{sub:09}Z")
    }
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_column() {
        assert_eq!(
            closest_column("ts", &["device_id", "timestamp", "power_w"]),
            Some("timestamp")
        );
        assert_eq!(closest_column("power_w", &["powr_w"]), Some("powr_w"));
        assert_eq!(
            closest_column("device_id", &["Device ID"]),
            Some("Device ID")
        );
        assert_eq!(closest_column("ts", &["value"]), None);
        let e = missing_column("power", "ts", "a timestamp", &["device_id", "timestamp"]);
        assert!(
            e.message
                .contains("found columns [\"device_id\", \"timestamp\"]"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("did you mean 'timestamp'"),
            "{}",
            e.message
        );
    }

    #[test]
    fn rejects_times_outside_the_era() {
        assert!(check_era(&[0, 1_735_689_600_000_000_000], None, "power", "ts").is_ok());
        let e = check_era(&[1, -9_000_000_000_000_000_000], None, "power", "ts").unwrap_err();
        assert!(e.message.contains("row 1"), "{}", e.message);
        assert!(check_era(&[ERA_NS.1], None, "power", "ts").is_err());
    }

    #[test]
    fn formats_timestamps() {
        assert_eq!(fmt_ts(0), "1970-01-01T00:00:00Z");
        assert_eq!(fmt_ts(1_735_689_600_000_000_000), "2025-01-01T00:00:00Z");
        assert_eq!(fmt_ts(1_500_000_000), "1970-01-01T00:00:01.500000000Z");
    }
}
