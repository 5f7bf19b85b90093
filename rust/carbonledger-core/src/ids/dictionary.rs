//! Dictionary-encoded ids (what Parquet hands over): each dictionary value
//! resolved once, then a key -> index table per batch.

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;

use crate::error::Result;

use super::keys::{collect_keys, value_at, value_indices};
use super::{id_error, Key, KeyIndex};

impl KeyIndex {
    /// A dictionary's values as keys, and each one's index (`None`: a null
    /// or unknown id).
    fn dictionary_values<'a>(
        &self,
        values: &'a ArrayRef,
        table: &str,
        col: &str,
    ) -> Result<DictionaryValues<'a>> {
        let mut per_value = Vec::new();
        collect_keys(values, table, col, &mut per_value)?;
        let mapped = per_value
            .iter()
            .map(|k| k.and_then(|k| self.lookup(k)))
            .collect();
        Ok((per_value, mapped))
    }

    /// Int32 dictionary ids with no null key whose every dictionary value is
    /// a known id: the keys and a key -> index table, so the caller resolves
    /// each row as it reads it. `None` when any of that does not hold: then
    /// `resolve` (which names a bad row) is the way. `cache` holds the last
    /// dictionary and its table: Parquet scans repeat one dictionary across
    /// batches, which then costs one comparison instead of a lookup per value.
    pub fn dictionary_lut<'a>(
        &self,
        arr: &'a ArrayRef,
        table: &str,
        col: &str,
        of: &str,
        cache: &mut Option<(ArrayRef, Vec<u32>)>,
    ) -> Result<Option<&'a [i32]>> {
        self.check_kind(arr, table, col, of)?;
        let DataType::Dictionary(k, _) = arr.data_type() else {
            return Ok(None);
        };
        if **k != DataType::Int32 || arr.nulls().is_some() {
            return Ok(None);
        }
        let d = arr.as_dictionary::<arrow_array::types::Int32Type>();
        let values = d.values();
        // Readers hand every batch of a column chunk the same dictionary:
        // the pointer check spares comparing its strings batch after batch.
        let same =
            |v: &ArrayRef| v.to_data().ptr_eq(&values.to_data()) || v.as_ref() == values.as_ref();
        if !cache.as_ref().is_some_and(|(v, _)| same(v)) {
            let (_, mapped) = self.dictionary_values(values, table, col)?;
            let Some(lut) = mapped.into_iter().collect::<Option<Vec<u32>>>() else {
                *cache = None;
                return Ok(None);
            };
            *cache = Some((values.clone(), lut));
        }
        let lut_len = cache.as_ref().map_or(0, |(_, l)| l.len());
        let keys = d.keys().values().as_ref();
        // Min and max vectorize; valid arrays keep keys in range anyway.
        let (min, max) = keys
            .iter()
            .fold((i32::MAX, i32::MIN), |(lo, hi), &k| (lo.min(k), hi.max(k)));
        if !keys.is_empty() && (min < 0 || max as usize >= lut_len) {
            return Ok(None);
        }
        Ok(Some(keys))
    }

    pub(super) fn resolve_dictionary(
        &self,
        arr: &ArrayRef,
        table: &str,
        col: &str,
        of: &str,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        let d = arr.as_any_dictionary();
        let (per_value, mapped) = self.dictionary_values(d.values(), table, col)?;
        let nulls = arr.logical_nulls();
        if nulls.is_none() {
            // One table lookup per row; a null or unknown value falls
            // through to the loop below, which names it.
            let lut: Vec<u32> = mapped.iter().map(|m| m.unwrap_or(u32::MAX)).collect();
            let start = out.len();
            let ok = match arr.data_type() {
                DataType::Dictionary(k, _) => match k.as_ref() {
                    DataType::Int32 => lut_keys(
                        arr.as_dictionary::<arrow_array::types::Int32Type>()
                            .keys()
                            .values(),
                        &lut,
                        out,
                    ),
                    DataType::UInt32 => lut_keys(
                        arr.as_dictionary::<arrow_array::types::UInt32Type>()
                            .keys()
                            .values(),
                        &lut,
                        out,
                    ),
                    DataType::Int16 => lut_keys(
                        arr.as_dictionary::<arrow_array::types::Int16Type>()
                            .keys()
                            .values(),
                        &lut,
                        out,
                    ),
                    DataType::Int64 => lut_keys(
                        arr.as_dictionary::<arrow_array::types::Int64Type>()
                            .keys()
                            .values(),
                        &lut,
                        out,
                    ),
                    _ => false,
                },
                _ => false,
            };
            if ok {
                return Ok(());
            }
            out.truncate(start);
        }
        for (row, k) in value_indices(d).into_iter().enumerate() {
            let key = if nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                None
            } else {
                value_at(&per_value, k)
            };
            let i = key
                .and(value_at(&mapped, k))
                .ok_or_else(|| id_error(table, col, of, row, key))?;
            out.push(i);
        }
        Ok(())
    }
}

/// A dictionary's values as keys, and the index of each (`None`: null or unknown).
type DictionaryValues<'a> = (Vec<Option<Key<'a>>>, Vec<Option<u32>>);

/// Map dictionary keys through `lut` (u32::MAX: a null or unknown value);
/// false if any key is out of range or maps to u32::MAX.
#[inline]
fn lut_keys<K: Copy + TryInto<usize>>(keys: &[K], lut: &[u32], out: &mut Vec<u32>) -> bool {
    let mut bad = false;
    out.extend(keys.iter().map(|&k| {
        let i = k
            .try_into()
            .ok()
            .and_then(|k: usize| lut.get(k).copied())
            .unwrap_or(u32::MAX);
        bad |= i == u32::MAX;
        i
    }));
    !bad
}
