//! Arrow columns of every layout the engine accepts (and a few it must
//! reject), built from plain values.

use std::sync::Arc;

use arrow_array::types::{
    ArrowDictionaryKeyType, Int16Type, Int32Type, Int64Type, Int8Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type,
    UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Date32Array, Date64Array, DictionaryArray, Float64Array,
    Int32Array, Int64Array, LargeStringArray, PrimitiveArray, RecordBatch, StringArray,
    StringViewArray, UInt64Array, UInt8Array,
};
use arrow_buffer::{NullBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, TimeUnit};

pub const S: i64 = 1_000_000_000;
/// 2025-01-01T00:00:00Z in ns.
pub const T0: i64 = 1_735_689_600 * S;

/// Id palette: palette index `p` is `ID_STRS[p]` in string layouts and
/// `ID_INTS[p]` in integer ones. Short, 8-16 byte (the word compare) and
/// long (out-of-line string view) ids, empty, NUL, non-ASCII, near-equal.
pub const ID_STRS: [&str; 12] = [
    "g0",
    "g1",
    "gpu-0123",
    "gpu-0123456789ab",
    "gpu-0123456789abcdef-long",
    "",
    "\0",
    "é",
    "g0 ",
    "G0",
    "s1",
    "R",
];
pub const ID_INTS: [i64; 12] = [
    0,
    1,
    2,
    -1,
    i64::MIN,
    i64::MAX,
    42,
    1 << 40,
    255,
    256,
    65_535,
    -128,
];

/// An id as the engine sees it after reading (`None`: it cannot be read
/// as an id of that kind at all, e.g. a u64 above i64::MAX).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdVal {
    Str(&'static str),
    Int(i64),
}

/// Id column layouts.
pub const ID_LAYOUTS: usize = 16;

/// Kind of an id layout: `Some(true)` strings, `Some(false)` integers,
/// `None` not an id type.
pub fn id_layout_kind(layout: u8) -> Option<bool> {
    match layout as usize % ID_LAYOUTS {
        0..=7 | 14 => Some(true),
        8..=13 => Some(false),
        _ => None,
    }
}

/// A layout of the same kind as `base` picked by `g`.
pub fn id_layout_like(base: u8, g: u8) -> u8 {
    const STR: [u8; 9] = [0, 1, 2, 3, 4, 5, 6, 7, 14];
    const INT: [u8; 6] = [8, 9, 10, 11, 12, 13];
    match id_layout_kind(base) {
        Some(true) => STR[g as usize % STR.len()],
        Some(false) => INT[g as usize % INT.len()],
        None => base,
    }
}

/// What palette entry `p` reads as in `layout`.
pub fn id_value(layout: u8, p: u8) -> Option<IdVal> {
    let p = p as usize % ID_STRS.len();
    let i = ID_INTS[p];
    match layout as usize % ID_LAYOUTS {
        0..=7 | 14 => Some(IdVal::Str(ID_STRS[p])),
        8 | 12 => Some(IdVal::Int(i)),
        9 | 13 => Some(IdVal::Int(i64::from(i as i32))),
        10 => i64::try_from(i as u64).ok().map(IdVal::Int),
        11 => Some(IdVal::Int(i64::from(i as u8))),
        _ => None,
    }
}

fn str_values(layout: usize, vals: &[Option<&str>]) -> ArrayRef {
    match layout {
        1 => Arc::new(LargeStringArray::from(vals.to_vec())),
        2 => Arc::new(StringViewArray::from(vals.to_vec())),
        _ => Arc::new(StringArray::from(vals.to_vec())),
    }
}

/// Dictionary of `values` with keys `keys` (`None`: a null row whose key
/// is `bad`, possibly out of range: Arrow leaves null keys unchecked).
fn dictionary<K: ArrowDictionaryKeyType>(
    keys: &[Option<usize>],
    bad: i64,
    values: ArrayRef,
) -> ArrayRef
where
    K::Native: TryFrom<i64> + TryFrom<usize> + Default,
{
    let native: Vec<K::Native> = keys
        .iter()
        .map(|k| match k {
            Some(k) => K::Native::try_from(*k).unwrap_or_default(),
            None => K::Native::try_from(bad).unwrap_or_default(),
        })
        .collect();
    let nulls = keys
        .iter()
        .any(Option::is_none)
        .then(|| NullBuffer::from(keys.iter().map(Option::is_some).collect::<Vec<_>>()));
    let n = keys.len();
    let keys = PrimitiveArray::<K>::new(ScalarBuffer::from(native), nulls);
    match DictionaryArray::<K>::try_new(keys, values) {
        Ok(d) => Arc::new(d),
        // A key type too narrow for the dictionary: all nulls.
        Err(_) => arrow_array::new_null_array(&DataType::Utf8, n),
    }
}

/// Options of an id column: how its dictionary (if any) is laid out.
#[derive(Debug, Clone, Copy, Default)]
pub struct DictShape {
    /// Values in reverse order of first use.
    pub reversed: bool,
    /// Unused palette entries appended to the dictionary.
    pub extra: u8,
    /// A null entry in the dictionary, used by rows whose id is 254.
    pub null_value: bool,
    /// The key of null rows (may be out of range).
    pub bad_key: i64,
}

/// An id column of palette indices (`None`: null) in `layout`.
pub fn id_column(layout: u8, ids: &[Option<u8>], shape: DictShape) -> ArrayRef {
    let layout = layout as usize % ID_LAYOUTS;
    let pal = |p: u8| p as usize % ID_STRS.len();
    match layout {
        0..=2 => {
            let v: Vec<Option<&str>> = ids.iter().map(|p| p.map(|p| ID_STRS[pal(p)])).collect();
            str_values(layout, &v)
        }
        8 => Arc::new(Int64Array::from(
            ids.iter()
                .map(|p| p.map(|p| ID_INTS[pal(p)]))
                .collect::<Vec<_>>(),
        )),
        9 => Arc::new(Int32Array::from(
            ids.iter()
                .map(|p| p.map(|p| ID_INTS[pal(p)] as i32))
                .collect::<Vec<_>>(),
        )),
        10 => Arc::new(UInt64Array::from(
            ids.iter()
                .map(|p| p.map(|p| ID_INTS[pal(p)] as u64))
                .collect::<Vec<_>>(),
        )),
        11 => Arc::new(UInt8Array::from(
            ids.iter()
                .map(|p| p.map(|p| ID_INTS[pal(p)] as u8))
                .collect::<Vec<_>>(),
        )),
        15 => Arc::new(BooleanArray::from(
            ids.iter()
                .map(|p| p.map(|p| p % 2 == 0))
                .collect::<Vec<_>>(),
        )),
        _ => {
            // Dictionary layouts: distinct palette entries in first-use order.
            let mut order: Vec<usize> = Vec::new();
            for p in ids.iter().flatten() {
                if !order.contains(&pal(*p)) {
                    order.push(pal(*p));
                }
            }
            if shape.reversed {
                order.reverse();
            }
            for k in 0..usize::from(shape.extra % 4) {
                let p = (k * 5 + 3) % ID_STRS.len();
                if !order.contains(&p) {
                    order.push(p);
                }
            }
            let null_at = order.len();
            let keys: Vec<Option<usize>> = ids
                .iter()
                .map(|p| match p {
                    Some(p) => order.iter().position(|o| *o == pal(*p)),
                    None => None,
                })
                .collect();
            // Rows "null through the dictionary": a valid key to a null value.
            let keys: Vec<Option<usize>> = if shape.null_value {
                keys.iter().map(|k| Some(k.unwrap_or(null_at))).collect()
            } else {
                keys
            };
            let strs: Vec<Option<&str>> = order
                .iter()
                .map(|&p| Some(ID_STRS[p]))
                .chain(shape.null_value.then_some(None))
                .collect();
            let ints: Vec<Option<i64>> = order
                .iter()
                .map(|&p| Some(ID_INTS[p]))
                .chain(shape.null_value.then_some(None))
                .collect();
            let bad = shape.bad_key;
            match layout {
                3 => dictionary::<Int32Type>(&keys, bad, str_values(0, &strs)),
                4 => dictionary::<UInt32Type>(&keys, bad, str_values(0, &strs)),
                5 => dictionary::<Int8Type>(&keys, bad, str_values(1, &strs)),
                6 => dictionary::<UInt64Type>(&keys, bad, str_values(2, &strs)),
                7 => dictionary::<Int16Type>(&keys, bad, str_values(0, &strs)),
                12 => dictionary::<Int32Type>(&keys, bad, Arc::new(Int64Array::from(ints))),
                13 => {
                    let v: Vec<Option<i32>> = ints.iter().map(|i| i.map(|i| i as i32)).collect();
                    dictionary::<UInt16Type>(&keys, bad, Arc::new(Int32Array::from(v)))
                }
                _ => dictionary::<Int64Type>(&keys, bad, str_values(0, &strs)),
            }
        }
    }
}

/// Time column types: 0-15 timestamps (unit x zone), then date32, date64,
/// ISO strings (three layouts), a mistyped int64 column.
pub const TIME_TYPES: usize = 24;

/// Nanoseconds per tick of a time column type.
pub fn tick_ns(ty: u8) -> i64 {
    match ty as usize % TIME_TYPES {
        t @ 0..=15 => [S, 1_000_000, 1_000, 1][t % 4],
        16 => 86_400 * S,
        17 => 1_000_000,
        _ => 1,
    }
}

/// A time column of `ty` from values in its ticks.
pub fn time_column(ty: u8, ticks: &[Option<i64>]) -> ArrayRef {
    let ty = ty as usize % TIME_TYPES;
    let tz: Option<Arc<str>> = match ty / 4 {
        0 => None,
        1 => Some("UTC".into()),
        2 => Some("+05:30".into()),
        _ => Some("-08:00".into()),
    };
    let v = ticks.to_vec();
    match ty {
        0..=15 => match ty % 4 {
            0 => Arc::new(PrimitiveArray::<TimestampSecondType>::from(v).with_timezone_opt(tz)),
            1 => {
                Arc::new(PrimitiveArray::<TimestampMillisecondType>::from(v).with_timezone_opt(tz))
            }
            2 => {
                Arc::new(PrimitiveArray::<TimestampMicrosecondType>::from(v).with_timezone_opt(tz))
            }
            _ => Arc::new(PrimitiveArray::<TimestampNanosecondType>::from(v).with_timezone_opt(tz)),
        },
        16 => Arc::new(Date32Array::from(
            v.iter().map(|t| t.map(|t| t as i32)).collect::<Vec<_>>(),
        )),
        17 => Arc::new(Date64Array::from(v)),
        18..=20 => {
            let s: Vec<Option<String>> = v
                .iter()
                .map(|t| t.map(carbonledger_core::schema::fmt_ts))
                .collect();
            let s: Vec<Option<&str>> = s.iter().map(|x| x.as_deref()).collect();
            str_values(ty - 18, &s)
        }
        21 => Arc::new(Int64Array::from(v)),
        _ => Arc::new(PrimitiveArray::<TimestampNanosecondType>::from(v).with_timezone("UTC")),
    }
}

/// Numeric column types: 0 float64, then float32, int64, int32, uint64,
/// float16, decimal128, a mistyped string column; 8-15 float64.
pub fn float_column(ty: u8, vals: &[Option<f64>]) -> ArrayRef {
    let base: ArrayRef = Arc::new(Float64Array::from(vals.to_vec()));
    let target = match ty % 16 {
        1 => DataType::Float32,
        2 => DataType::Int64,
        3 => DataType::Int32,
        4 => DataType::UInt64,
        5 => DataType::Float16,
        6 => DataType::Decimal128(38, 6),
        7 => DataType::Utf8,
        _ => return base,
    };
    arrow_cast::cast(&base, &target).unwrap_or(base)
}

/// A record batch of named columns (fields nullable).
pub fn batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let arrays: Vec<ArrayRef> = cols.into_iter().map(|(_, a)| a).collect();
    let n = arrays.first().map_or(0, |a| a.len());
    let opts = arrow_array::RecordBatchOptions::new().with_row_count(Some(n));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &opts)
        .expect("columns of one length")
}

/// Keep `TimeUnit` in scope for targets that name it.
pub fn unit_of(ty: u8) -> Option<TimeUnit> {
    match ty as usize % TIME_TYPES {
        t @ 0..=15 => Some(
            [
                TimeUnit::Second,
                TimeUnit::Millisecond,
                TimeUnit::Microsecond,
                TimeUnit::Nanosecond,
            ][t % 4],
        ),
        _ => None,
    }
}

/// `true` when `a` has the data type of a valid id column.
pub fn is_dictionary(a: &dyn Array) -> bool {
    matches!(a.data_type(), DataType::Dictionary(_, _))
}
