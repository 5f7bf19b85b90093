//! Reading id values of every layout (strings, large strings, string
//! views, integers of every width, dictionaries of those) as `Key`s.

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;

use crate::error::{Error, Result};

use super::{IdKind, Key};

/// Visit the keys of an id column; `f(row, key)` with `None` for nulls.
pub(super) fn for_each_key<'a>(
    arr: &'a ArrayRef,
    table: &str,
    col: &str,
    mut f: impl FnMut(usize, Option<Key<'a>>) -> Result<()>,
) -> Result<()> {
    let nulls = arr.logical_nulls();
    let valid = |i: usize| nulls.as_ref().is_none_or(|n| n.is_valid(i));
    match arr.data_type() {
        DataType::Utf8 => {
            let a = arr.as_string::<i32>();
            for i in 0..a.len() {
                f(i, valid(i).then(|| Key::Str(a.value(i).as_bytes())))?;
            }
        }
        DataType::LargeUtf8 => {
            let a = arr.as_string::<i64>();
            for i in 0..a.len() {
                f(i, valid(i).then(|| Key::Str(a.value(i).as_bytes())))?;
            }
        }
        DataType::Utf8View => {
            let a = arr.as_string_view();
            for i in 0..a.len() {
                f(i, valid(i).then(|| Key::Str(a.value(i).as_bytes())))?;
            }
        }
        DataType::Dictionary(_, _) => {
            let d = arr.as_any_dictionary();
            let values = d.values();
            let keys = value_indices(d);
            let mut per_value: Vec<Option<Key<'a>>> = Vec::with_capacity(values.len());
            collect_keys(values, table, col, &mut per_value)?;
            for (i, k) in keys.iter().enumerate() {
                let key = if valid(i) {
                    value_at(&per_value, *k)
                } else {
                    None
                };
                f(i, key)?;
            }
        }
        dt if IdKind::of(dt) == Some(IdKind::Int) => {
            // Not `safe`: a uint64 id above i64::MAX would become a null
            // slot, read back as id 0.
            let opts = arrow_cast::CastOptions {
                safe: false,
                ..Default::default()
            };
            let cast =
                arrow_cast::cast_with_options(arr, &DataType::Int64, &opts).map_err(|e| {
                    Error::schema(format!(
                        "table '{table}', column '{col}': integer ids must fit in int64 ({e})"
                    ))
                })?;
            let a = cast.as_primitive::<arrow_array::types::Int64Type>();
            for i in 0..a.len() {
                f(i, valid(i).then(|| Key::Int(a.value(i))))?;
            }
        }
        other => {
            return Err(Error::schema(format!(
            "table '{table}', column '{col}': expected string or integer ids, found type {other}"
        )))
        }
    }
    Ok(())
}

pub(super) fn collect_keys<'a>(
    values: &'a ArrayRef,
    table: &str,
    col: &str,
    out: &mut Vec<Option<Key<'a>>>,
) -> Result<()> {
    // Dictionary values are plain arrays; borrow their bytes directly.
    let nulls = values.logical_nulls();
    let valid = |i: usize| nulls.as_ref().is_none_or(|n| n.is_valid(i));
    match values.data_type() {
        DataType::Utf8 => {
            let a = values.as_string::<i32>();
            out.extend((0..a.len()).map(|i| valid(i).then(|| Key::Str(a.value(i).as_bytes()))));
        }
        DataType::LargeUtf8 => {
            let a = values.as_string::<i64>();
            out.extend((0..a.len()).map(|i| valid(i).then(|| Key::Str(a.value(i).as_bytes()))));
        }
        DataType::Utf8View => {
            let a = values.as_string_view();
            out.extend((0..a.len()).map(|i| valid(i).then(|| Key::Str(a.value(i).as_bytes()))));
        }
        DataType::Int64 => {
            let a = values.as_primitive::<arrow_array::types::Int64Type>();
            out.extend((0..a.len()).map(|i| valid(i).then(|| Key::Int(a.value(i)))));
        }
        DataType::Int32 => {
            let a = values.as_primitive::<arrow_array::types::Int32Type>();
            out.extend((0..a.len()).map(|i| valid(i).then(|| Key::Int(i64::from(a.value(i))))));
        }
        other => {
            return Err(Error::schema(format!(
                "table '{table}', column '{col}': unsupported dictionary value type {other} for ids"
            )))
        }
    }
    Ok(())
}

/// Each row's index into the dictionary's values. `normalized_keys` clamps
/// every key into range (null rows may hold any key) but panics on an empty
/// dictionary, which a valid array has only when every row is null (an
/// empty id table read from a dictionary-encoded file, say).
pub(super) fn value_indices(d: &dyn arrow_array::AnyDictionaryArray) -> Vec<usize> {
    if d.values().is_empty() {
        vec![0; d.len()]
    } else {
        d.normalized_keys()
    }
}

/// The dictionary value at `k`, `None` past the end (a null row's key).
#[inline]
pub(super) fn value_at<T: Copy>(values: &[Option<T>], k: usize) -> Option<T> {
    values.get(k).copied().flatten()
}
