//! Mapping a referencing column (the power stream's `device_id`) to device
//! indices: the hot path, with the last lookup cached before hashing.

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;

use crate::error::Result;

use super::keys::{bytes_eq, for_each_key};
use super::{id_error, shift_row, IdKind, KeyIndex};

impl KeyIndex {
    /// Map a referencing column to indices, appending to `out`. Unknown or
    /// null ids are errors naming the table, column, value and row.
    pub fn resolve(
        &self,
        arr: &ArrayRef,
        table: &str,
        col: &str,
        of: &str,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        self.check_kind(arr, table, col, of)?;
        out.reserve(arr.len());
        if let DataType::Dictionary(_, _) = arr.data_type() {
            return self.resolve_dictionary(arr, table, col, of, out);
        }
        if arr.null_count() == 0 && self.kind == IdKind::Str {
            let start = out.len();
            let done = match arr.data_type() {
                DataType::Utf8 => {
                    let a = arr.as_string::<i32>();
                    let (o, v) = (a.value_offsets(), a.values().as_slice());
                    self.resolve_strs(a.len(), |i| &v[o[i] as usize..o[i + 1] as usize], out)
                }
                DataType::LargeUtf8 => {
                    let a = arr.as_string::<i64>();
                    let (o, v) = (a.value_offsets(), a.values().as_slice());
                    self.resolve_strs(a.len(), |i| &v[o[i] as usize..o[i + 1] as usize], out)
                }
                DataType::Utf8View => {
                    let a = arr.as_string_view();
                    self.resolve_strs(a.len(), |i| a.value(i).as_bytes(), out)
                }
                _ => false,
            };
            if done {
                return Ok(());
            }
            // An unknown id: redo the slow way, which names it.
            out.truncate(start);
        }
        // Integer ids hash cheaply; string ids took the predicted loop above
        // unless an id is unknown or null, which this path then names.
        for_each_key(arr, table, col, |row, key| {
            let i = key
                .and_then(|k| self.lookup(k))
                .ok_or_else(|| id_error(table, col, of, row, key))?;
            out.push(i);
            Ok(())
        })
    }

    /// The tight loop behind `resolve` for string ids without nulls; false
    /// at the first unknown id.
    #[inline]
    fn resolve_strs<'b>(
        &self,
        n: usize,
        get: impl Fn(usize) -> &'b [u8],
        out: &mut Vec<u32>,
    ) -> bool {
        let mut follow = vec![u32::MAX; self.len()];
        let mut prev = u32::MAX;
        let mut prev_key: &[u8] = &[];
        for row in 0..n {
            let k = get(row);
            if prev != u32::MAX && bytes_eq(prev_key, k) {
                out.push(prev);
                continue;
            }
            let next = if prev == u32::MAX {
                u32::MAX
            } else {
                follow[prev as usize]
            };
            let i = if next != u32::MAX && bytes_eq(self.names[next as usize].as_bytes(), k) {
                next
            } else {
                let Some(&i) = self.strs.get(k) else {
                    return false;
                };
                if prev != u32::MAX {
                    follow[prev as usize] = i;
                }
                i
            };
            prev = i;
            prev_key = k;
            out.push(i);
        }
        true
    }

    /// `resolve` over slices of a long column on the current rayon pool.
    pub fn resolve_parallel(
        &self,
        arr: &ArrayRef,
        table: &str,
        col: &str,
        of: &str,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        use rayon::prelude::*;
        const CHUNK: usize = 1 << 16;
        let n = arr.len();
        // Dictionary ids resolve by table lookup: one pass beats splitting.
        let dictionary = matches!(arr.data_type(), DataType::Dictionary(_, _));
        if n <= CHUNK || dictionary || rayon::current_num_threads() == 1 {
            return self.resolve(arr, table, col, of, out);
        }
        let parts: Vec<Vec<u32>> = (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let off = c * CHUNK;
                let piece = arr.slice(off, CHUNK.min(n - off));
                let mut v = Vec::new();
                self.resolve(&piece, table, col, of, &mut v)
                    .map_err(|mut e| {
                        e.message = shift_row(&e.message, off);
                        e
                    })?;
                Ok(v)
            })
            .collect::<Result<_>>()?;
        out.reserve(n);
        for p in parts {
            out.extend_from_slice(&p);
        }
        Ok(())
    }
}
