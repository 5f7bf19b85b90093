//! Mapping a referencing column (the power stream's `device_id`) to device
//! indices: the hot path.
//!
//! Telemetry dumps list devices in a stable order (every device's sample at
//! one tick, then the next tick; or one device's run, then the next), so a
//! row's device is predicted from the previous row's: the device that
//! followed it last time (itself, in a device-sorted run). A prediction is
//! only a guess, checked by comparing the id's bytes (for string views, the
//! 16-byte view itself); the hash table is consulted on a miss only.

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;

use crate::error::{earliest, Error, Result};

use super::keys::for_each_key;
use super::{id_error, shift_row, IdKind, KeyIndex};

/// Rows resolved per parallel task.
const CHUNK: usize = 1 << 16;

/// No device: the start of a chunk, or no prediction yet.
const NONE: u32 = u32::MAX;

/// The string ids of an index, contiguous, plus each id's 16-byte Arrow
/// string view split in two words (length and 4-byte prefix; the next 8
/// inline bytes), so that a string-view row is checked against a
/// prediction without reading its data buffer.
#[derive(Debug, Clone, Default)]
pub(super) struct FlatNames {
    bytes: Vec<u8>,
    /// `bytes[at[i]..at[i + 1]]` is id `i`.
    at: Vec<usize>,
    head: Vec<u64>,
    tail: Vec<u64>,
    /// Each id's length and its first and last 8 bytes, side by side: for
    /// an id of 8 to 16 bytes they are the whole id, checked against a
    /// row's bytes in one cache line.
    words: Vec<IdWords>,
}

#[derive(Debug, Clone, Copy, Default)]
struct IdWords {
    len: usize,
    first: u64,
    last: u64,
}

/// The 8 bytes of `v` from `at` (the caller checked `at + 8 <= v.len()`).
#[inline(always)]
fn word_at(v: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(v[at..at + 8].try_into().expect("8 bytes"))
}

/// Largest string an Arrow view holds inline.
const INLINE: usize = 12;

impl FlatNames {
    pub(super) fn of(index: &KeyIndex) -> Self {
        let mut flat = Self::default();
        if index.kind != IdKind::Str {
            return flat;
        }
        flat.at.push(0);
        for name in &index.names {
            let b = name.as_bytes();
            flat.bytes.extend_from_slice(b);
            flat.at.push(flat.bytes.len());
            let mut inline = [0u8; 16];
            // A view's length is a u32; a longer id never matches a view.
            let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
            inline[..4].copy_from_slice(&len.to_le_bytes());
            let shown = b.len().min(INLINE);
            inline[4..4 + shown].copy_from_slice(&b[..shown]);
            let word = |o: usize| u64::from_le_bytes(inline[o..o + 8].try_into().expect("8 bytes"));
            flat.head.push(word(0));
            flat.tail.push(word(8));
            let (first, last) = if b.len() >= 8 {
                (word_at(b, 0), word_at(b, b.len() - 8))
            } else {
                (0, 0)
            };
            flat.words.push(IdWords {
                len: b.len(),
                first,
                last,
            });
        }
        flat
    }

    /// Whether `v[a..b]` (a row of an offsets layout) is id `d`.
    #[inline(always)]
    fn is(&self, v: &[u8], a: usize, b: usize, d: u32) -> bool {
        let w = self.words[d as usize];
        let n = b - a;
        if n != w.len {
            return false;
        }
        if (8..=16).contains(&n) {
            word_at(v, a) == w.first && word_at(v, b - 8) == w.last
        } else {
            v[a..b] == *self.name(d)
        }
    }

    #[inline]
    fn name(&self, i: u32) -> &[u8] {
        let i = i as usize;
        &self.bytes[self.at[i]..self.at[i + 1]]
    }
}

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
        if let DataType::Dictionary(_, _) = arr.data_type() {
            out.reserve(arr.len());
            return self.resolve_dictionary(arr, table, col, of, out);
        }
        let start = out.len();
        out.resize(start + arr.len(), NONE);
        let mut follow = Vec::new();
        let r = self.resolve_into(arr, table, col, of, &mut out[start..], &mut follow);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    /// `resolve` of a non-dictionary column into `out` (one slot per row),
    /// with `follow` the caller's prediction scratch (reusable across calls:
    /// a stale prediction only costs a hash lookup).
    fn resolve_into(
        &self,
        arr: &ArrayRef,
        table: &str,
        col: &str,
        of: &str,
        out: &mut [u32],
        follow: &mut Vec<u32>,
    ) -> Result<()> {
        if arr.null_count() == 0 && self.kind == IdKind::Str {
            follow.resize(self.len(), NONE);
            let flat = &self.flat;
            let done = match arr.data_type() {
                DataType::Utf8 => {
                    let a = arr.as_string::<i32>();
                    let (o, v) = (a.value_offsets(), a.values().as_slice());
                    let key = |i: usize| &v[o[i] as usize..o[i + 1] as usize];
                    self.predict(out, follow, key, |i, d| {
                        flat.is(v, o[i] as usize, o[i + 1] as usize, d)
                    })
                }
                DataType::LargeUtf8 => {
                    let a = arr.as_string::<i64>();
                    let (o, v) = (a.value_offsets(), a.values().as_slice());
                    let key = |i: usize| &v[o[i] as usize..o[i + 1] as usize];
                    self.predict(out, follow, key, |i, d| {
                        flat.is(v, o[i] as usize, o[i + 1] as usize, d)
                    })
                }
                DataType::Utf8View => {
                    let a = arr.as_string_view();
                    let views = a.views();
                    let key = |i: usize| a.value(i).as_bytes();
                    self.predict(out, follow, key, |i, d| {
                        let view = views[i];
                        let d = d as usize;
                        // Low word: length and prefix; high word: the next
                        // 8 inline bytes, or where a long string lies.
                        if view as u64 != flat.head[d] {
                            return false;
                        }
                        if (view as u32 as usize) <= INLINE {
                            (view >> 64) as u64 == flat.tail[d]
                        } else {
                            key(i) == flat.name(d as u32)
                        }
                    })
                }
                _ => false,
            };
            if done {
                return Ok(());
            }
            // An unknown id: redo the slow way, which names it.
        }
        // Integer ids hash cheaply; string ids took the predicted loop above
        // unless an id is unknown or null, which this path then names.
        let mut row_out = out.iter_mut();
        for_each_key(arr, table, col, |row, key| {
            let i = key
                .and_then(|k| self.lookup(k))
                .ok_or_else(|| id_error(table, col, of, row, key))?;
            *row_out.next().expect("one slot per row") = i;
            Ok(())
        })
    }

    /// The predicted loop for string ids without nulls: `hit(row, d)` checks
    /// that row names device `d`; false at the first unknown id.
    #[inline]
    fn predict<'b>(
        &self,
        out: &mut [u32],
        follow: &mut [u32],
        key: impl Fn(usize) -> &'b [u8],
        hit: impl Fn(usize, u32) -> bool,
    ) -> bool {
        let mut prev = NONE;
        for (row, slot) in out.iter_mut().enumerate() {
            let guess = if prev == NONE {
                NONE
            } else {
                follow[prev as usize]
            };
            let i = if guess != NONE && hit(row, guess) {
                guess
            } else {
                let Some(&i) = self.strs.get(key(row)) else {
                    return false;
                };
                if prev != NONE {
                    follow[prev as usize] = i;
                }
                i
            };
            *slot = i;
            prev = i;
        }
        true
    }

    /// `resolve` over slices of a long column on the current rayon pool,
    /// written in place; an error is the one of the earliest row, whatever
    /// the thread count.
    pub fn resolve_parallel(
        &self,
        arr: &ArrayRef,
        table: &str,
        col: &str,
        of: &str,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        use rayon::prelude::*;
        let n = arr.len();
        // Dictionary ids resolve by table lookup: one pass beats splitting.
        let dictionary = matches!(arr.data_type(), DataType::Dictionary(_, _));
        if n <= CHUNK || dictionary || rayon::current_num_threads() == 1 {
            return self.resolve(arr, table, col, of, out);
        }
        self.check_kind(arr, table, col, of)?;
        let start = out.len();
        out.resize(start + n, NONE);
        let first_error = out[start..]
            .par_chunks_mut(CHUNK)
            .enumerate()
            .map_init(Vec::new, |follow, (c, slots)| {
                let off = c * CHUNK;
                let piece = arr.slice(off, slots.len());
                self.resolve_into(&piece, table, col, of, slots, follow)
                    .err()
                    .map(|mut e: Error| {
                        e.message = shift_row(&e.message, off);
                        (c, e)
                    })
            })
            .reduce(|| None, earliest);
        match first_error {
            Some((_, e)) => {
                out.truncate(start);
                Err(e)
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{LargeStringArray, StringArray, StringViewArray};

    use super::*;

    fn index(names: &[&str]) -> KeyIndex {
        let keys: ArrayRef = Arc::new(StringArray::from(names.to_vec()));
        KeyIndex::build(&keys, "devices", "device_id").expect("unique ids")
    }

    /// Every layout, short and long (> 12 bytes, not inline in a view) ids,
    /// an order that breaks every prediction, then one that keeps them.
    #[test]
    fn every_string_layout_resolves_each_row() {
        let names = [
            "a",
            "gpu-00001",
            "gpu-00002",
            "a-much-longer-device-id-0001",
            "a-much-longer-device-id-0002",
        ];
        let idx = index(&names);
        let rows: Vec<usize> = [
            0, 1, 2, 3, 4, 4, 3, 2, 1, 0, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 2, 2, 4,
        ]
        .into_iter()
        .collect();
        let strs: Vec<&str> = rows.iter().map(|&r| names[r]).collect();
        let want: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        let layouts: [ArrayRef; 3] = [
            Arc::new(StringArray::from(strs.clone())),
            Arc::new(LargeStringArray::from(strs.clone())),
            Arc::new(StringViewArray::from(strs.clone())),
        ];
        for arr in &layouts {
            let mut out = vec![7];
            idx.resolve(arr, "power", "device_id", "devices.device_id", &mut out)
                .expect("known ids");
            assert_eq!(out[0], 7, "{}: appends", arr.data_type());
            assert_eq!(&out[1..], &want[..], "{}", arr.data_type());
        }
    }

    /// A view whose first 12 bytes match an id of the same length but
    /// whose tail differs is not that id.
    #[test]
    fn long_views_compare_every_byte() {
        let idx = index(&["device-000000000001", "device-000000000002"]);
        let arr: ArrayRef = Arc::new(StringViewArray::from(vec![
            "device-000000000001",
            "device-000000000002",
            "device-000000000001",
            "device-000000000003",
        ]));
        let mut out = Vec::new();
        let e = idx
            .resolve(&arr, "power", "device_id", "devices.device_id", &mut out)
            .expect_err("unknown id");
        assert!(
            e.message.contains("'device-000000000003' at row 3"),
            "{}",
            e.message
        );
        assert!(out.is_empty(), "nothing written half-way");
    }

    /// Over several parallel chunks, the unknown id reported is the one of
    /// the earliest row, numbered in the whole column.
    #[test]
    fn parallel_resolution_names_the_earliest_unknown_row() {
        let idx = index(&["x", "y"]);
        let n = 3 * CHUNK + 5;
        let mut strs: Vec<&str> = (0..n).map(|i| if i % 3 == 0 { "x" } else { "y" }).collect();
        strs[CHUNK + 17] = "bad-1";
        strs[2 * CHUNK + 3] = "bad-2";
        let arr: ArrayRef = Arc::new(StringArray::from(strs.clone()));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("pool");
        let mut out = Vec::new();
        let e = pool
            .install(|| {
                idx.resolve_parallel(&arr, "power", "device_id", "devices.device_id", &mut out)
            })
            .expect_err("unknown ids");
        assert!(
            e.message
                .contains(&format!("'bad-1' at row {}", CHUNK + 17)),
            "{}",
            e.message
        );
        strs[CHUNK + 17] = "x";
        strs[2 * CHUNK + 3] = "y";
        let arr: ArrayRef = Arc::new(StringArray::from(strs.clone()));
        out.clear();
        pool.install(|| {
            idx.resolve_parallel(&arr, "power", "device_id", "devices.device_id", &mut out)
        })
        .expect("known ids");
        let want: Vec<u32> = strs.iter().map(|s| u32::from(*s == "y")).collect();
        assert_eq!(out, want);
    }
}
