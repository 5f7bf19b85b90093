//! Id columns (device, site, region) of any string layout or integer type,
//! mapped to dense indices. Device-sorted dumps repeat one id for long runs,
//! so the last lookup is cached before hashing.

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use rustc_hash::FxHashMap;

use crate::error::{Error, Problems, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Str,
    Int,
}

impl IdKind {
    pub fn of(dt: &DataType) -> Option<Self> {
        match dt {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(Self::Str),
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64 => Some(Self::Int),
            DataType::Dictionary(_, v) => Self::of(v),
            _ => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Str => "string",
            Self::Int => "integer",
        }
    }
}

/// The ids of one key column (e.g. `devices.device_id`), in input order.
#[derive(Debug, Clone)]
pub struct KeyIndex {
    kind: IdKind,
    strs: FxHashMap<Box<[u8]>, u32>,
    ints: FxHashMap<i64, u32>,
    names: Vec<String>,
}

/// One id value, borrowed from an Arrow array.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Key<'_> {
    fn display(&self) -> String {
        match self {
            Key::Str(s) => format!("'{}'", String::from_utf8_lossy(s)),
            Key::Int(i) => i.to_string(),
        }
    }
}

/// Visit the keys of an id column; `f(row, key)` with `None` for nulls.
fn for_each_key<'a>(
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

fn collect_keys<'a>(
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

impl KeyIndex {
    /// Build the index from the key column of its own table (e.g.
    /// `devices.device_id`): ids must be unique and not null.
    pub fn build(arr: &ArrayRef, table: &str, col: &str) -> Result<Self> {
        let mut p = Problems::default();
        let idx = Self::build_all(arr, table, col, &mut p);
        p.first()?;
        Ok(idx.expect("no problem, so an index"))
    }

    /// `build`, noting every null and duplicate id instead of stopping at the
    /// first; `None` only when the column cannot hold ids at all.
    pub fn build_all(arr: &ArrayRef, table: &str, col: &str, p: &mut Problems) -> Option<Self> {
        let kind = p.take(IdKind::of(arr.data_type()).ok_or_else(|| {
            Error::schema(format!(
                "table '{table}', column '{col}': expected string or integer ids, found type {}",
                arr.data_type()
            ))
        }))?;
        let mut idx = Self {
            kind,
            strs: FxHashMap::default(),
            ints: FxHashMap::default(),
            names: Vec::with_capacity(arr.len()),
        };
        let r = for_each_key(arr, table, col, |row, key| {
            // Every row gets a name, so indices stay row numbers.
            let Some(key) = key else {
                p.note(Error::input(format!(
                    "table '{table}', column '{col}': null id at row {row}"
                )));
                idx.names.push("null".into());
                return Ok(());
            };
            let n = idx.names.len() as u32;
            // The first row with an id keeps it.
            let dup = match key {
                Key::Str(s) => {
                    let fresh = !idx.strs.contains_key(s);
                    if fresh {
                        idx.strs.insert(s.into(), n);
                    }
                    !fresh
                }
                Key::Int(i) => {
                    let fresh = !idx.ints.contains_key(&i);
                    if fresh {
                        idx.ints.insert(i, n);
                    }
                    !fresh
                }
            };
            if dup {
                p.note(Error::input(format!(
                    "table '{table}', column '{col}': duplicate id {} at row {row}; ids must be unique",
                    key.display()
                )));
            }
            idx.names.push(match key {
                Key::Str(s) => String::from_utf8_lossy(s).into_owned(),
                Key::Int(i) => i.to_string(),
            });
            Ok(())
        });
        p.take(r)?;
        Some(idx)
    }

    /// Build an index of the distinct values of a column that may repeat
    /// (e.g. `sites.region`), returning the index of each row too.
    pub fn intern(arr: &ArrayRef, table: &str, col: &str) -> Result<(Self, Vec<u32>)> {
        let mut p = Problems::default();
        let r = Self::intern_all(arr, table, col, &mut p);
        p.first()?;
        Ok(r.expect("no problem, so an index"))
    }

    /// `intern`, noting every null (its row maps to `u32::MAX`).
    pub fn intern_all(
        arr: &ArrayRef,
        table: &str,
        col: &str,
        p: &mut Problems,
    ) -> Option<(Self, Vec<u32>)> {
        let kind = p.take(IdKind::of(arr.data_type()).ok_or_else(|| {
            Error::schema(format!(
                "table '{table}', column '{col}': expected string or integer ids, found type {}",
                arr.data_type()
            ))
        }))?;
        let mut idx = Self {
            kind,
            strs: FxHashMap::default(),
            ints: FxHashMap::default(),
            names: Vec::new(),
        };
        let mut rows = Vec::with_capacity(arr.len());
        let r = for_each_key(arr, table, col, |row, key| {
            let Some(key) = key else {
                p.note(Error::input(format!(
                    "table '{table}', column '{col}': null value at row {row}"
                )));
                rows.push(u32::MAX);
                return Ok(());
            };
            let next = idx.names.len() as u32;
            let i = match key {
                Key::Str(s) => *idx.strs.entry(s.into()).or_insert(next),
                Key::Int(v) => *idx.ints.entry(v).or_insert(next),
            };
            if i == next {
                idx.names.push(match key {
                    Key::Str(s) => String::from_utf8_lossy(s).into_owned(),
                    Key::Int(v) => v.to_string(),
                });
            }
            rows.push(i);
            Ok(())
        });
        p.take(r)?;
        Some((idx, rows))
    }

    /// Resolve a referencing column row by row, noting every null or unknown
    /// id (its row maps to `None`); `None` when the column's kind is wrong.
    pub fn resolve_each(
        &self,
        arr: &ArrayRef,
        table: &str,
        col: &str,
        of: &str,
        p: &mut Problems,
    ) -> Option<Vec<Option<u32>>> {
        p.take(self.check_kind(arr, table, col, of))?;
        let mut out = Vec::with_capacity(arr.len());
        let r = for_each_key(arr, table, col, |row, key| {
            let i = key.and_then(|k| self.lookup(k));
            if i.is_none() {
                p.note(id_error(table, col, of, row, key));
            }
            out.push(i);
            Ok(())
        });
        p.take(r)?;
        Some(out)
    }

    /// Like `resolve`, but unknown ids map to `None` instead of an error
    /// (intensity rows of regions no device uses are simply ignored).
    pub fn resolve_lenient(
        &self,
        arr: &ArrayRef,
        table: &str,
        col: &str,
        of: &str,
    ) -> Result<Vec<Option<u32>>> {
        self.check_kind(arr, table, col, of)?;
        let mut out = Vec::with_capacity(arr.len());
        for_each_key(arr, table, col, |row, key| {
            let key = key.ok_or_else(|| {
                Error::input(format!(
                    "table '{table}', column '{col}': null value at row {row}"
                ))
            })?;
            out.push(self.lookup(key));
            Ok(())
        })?;
        Ok(out)
    }

    pub fn kind(&self) -> IdKind {
        self.kind
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The id as written in messages: strings quoted, integers bare.
    /// The id as text, unquoted (for output columns).
    pub fn text(&self, i: usize) -> &str {
        &self.names[i]
    }

    pub fn name(&self, i: usize) -> String {
        match self.kind {
            IdKind::Str => format!("'{}'", self.names[i]),
            IdKind::Int => self.names[i].clone(),
        }
    }

    fn lookup(&self, key: Key<'_>) -> Option<u32> {
        match key {
            Key::Str(s) => self.strs.get(s).copied(),
            Key::Int(i) => self.ints.get(&i).copied(),
        }
    }

    /// Check that a referencing column has the same id kind as this index.
    pub fn check_kind(&self, arr: &ArrayRef, table: &str, col: &str, of: &str) -> Result<()> {
        match IdKind::of(arr.data_type()) {
            Some(k) if k == self.kind => Ok(()),
            Some(k) => Err(Error::schema(format!(
                "table '{table}', column '{col}': ids are {} but {of} ids are {}; use one kind in every table",
                k.describe(),
                self.kind.describe()
            ))),
            None => Err(Error::schema(format!(
                "table '{table}', column '{col}': expected string or integer ids, found type {}",
                arr.data_type()
            ))),
        }
    }

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
        if !cache
            .as_ref()
            .is_some_and(|(v, _)| v.as_ref() == values.as_ref())
        {
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

    fn resolve_dictionary(
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

/// Each row's index into the dictionary's values. `normalized_keys` clamps
/// every key into range (null rows may hold any key) but panics on an empty
/// dictionary, which a valid array has only when every row is null (an
/// empty id table read from a dictionary-encoded file, say).
fn value_indices(d: &dyn arrow_array::AnyDictionaryArray) -> Vec<usize> {
    if d.values().is_empty() {
        vec![0; d.len()]
    } else {
        d.normalized_keys()
    }
}

/// The dictionary value at `k`, `None` past the end (a null row's key).
#[inline]
fn value_at<T: Copy>(values: &[Option<T>], k: usize) -> Option<T> {
    values.get(k).copied().flatten()
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

/// The error for a null or unknown id in a referencing column.
fn id_error(table: &str, col: &str, of: &str, row: usize, key: Option<Key<'_>>) -> Error {
    match key {
        None => Error::input(format!(
            "table '{table}', column '{col}': null id at row {row}; every row needs an id"
        )),
        Some(k) => Error::unknown_id(format!(
            "table '{table}', column '{col}': unknown id {} at row {row}; expected an id of {of}",
            k.display()
        )),
    }
}

/// Rewrite "at row N" in a message from a slice to the whole column's row.
fn shift_row(message: &str, offset: usize) -> String {
    let Some(i) = message.find("at row ") else {
        return message.to_string();
    };
    let digits_start = i + "at row ".len();
    let digits: String = message[digits_start..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    match digits.parse::<usize>() {
        Ok(r) => format!(
            "{}{}{}",
            &message[..digits_start],
            r + offset,
            &message[digits_start + digits.len()..]
        ),
        Err(_) => message.to_string(),
    }
}

/// Byte equality, fast for the short ids of real fleets.
#[inline]
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if (8..=16).contains(&n) {
        let word =
            |s: &[u8], o: usize| u64::from_le_bytes(s[o..o + 8].try_into().expect("8 bytes"));
        return word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8);
    }
    a == b
}
