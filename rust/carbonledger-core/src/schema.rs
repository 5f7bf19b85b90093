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
        Error::schema(format!(
            "table '{table}': missing required column '{name}' (expected {expected}); found columns {found:?}"
        ))
    })
}

/// Timestamps as epoch nanoseconds, with the nulls of the input.
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

fn scaled<'a>(values: &'a [i64], factor: i64, table: &str, col: &str) -> Result<Cow<'a, [i64]>> {
    if factor == 1 {
        return Ok(Cow::Borrowed(values));
    }
    values
        .iter()
        .map(|v| {
            v.checked_mul(factor).ok_or_else(|| {
                Error::input(format!(
                    "table '{table}', column '{col}': timestamp {v} overflows the nanosecond range (years 1677-2262)"
                ))
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Cow::Owned)
}

/// Read a timestamp column (any unit; zone-aware values are UTC instants, naive
/// ones are taken as UTC) as epoch nanoseconds.
pub fn times<'a>(arr: &'a ArrayRef, table: &str, col: &str) -> Result<Times<'a>> {
    let nulls = arr.logical_nulls();
    let values = match arr.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, _) => scaled(
            arr.as_primitive::<TimestampNanosecondType>().values(),
            1,
            table,
            col,
        )?,
        DataType::Timestamp(TimeUnit::Microsecond, _) => scaled(
            arr.as_primitive::<TimestampMicrosecondType>().values(),
            1_000,
            table,
            col,
        )?,
        DataType::Timestamp(TimeUnit::Millisecond, _) => scaled(
            arr.as_primitive::<TimestampMillisecondType>().values(),
            1_000_000,
            table,
            col,
        )?,
        DataType::Timestamp(TimeUnit::Second, _) => scaled(
            arr.as_primitive::<TimestampSecondType>().values(),
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
            Cow::Owned(scaled(&days, 86_400_000_000_000, table, col)?.into_owned())
        }
        DataType::Date64 => scaled(
            arr.as_primitive::<Date64Type>().values(),
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
    fn formats_timestamps() {
        assert_eq!(fmt_ts(0), "1970-01-01T00:00:00Z");
        assert_eq!(fmt_ts(1_735_689_600_000_000_000), "2025-01-01T00:00:00Z");
        assert_eq!(fmt_ts(1_500_000_000), "1970-01-01T00:00:01.500000000Z");
    }
}
