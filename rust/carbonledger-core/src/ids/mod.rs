//! Id columns (device, site, region) of any string layout or integer type,
//! mapped to dense indices. Device-sorted dumps repeat one id for long runs,
//! so the last lookup is cached before hashing.
//!
//! By responsibility: this module holds the index and the key columns of
//! the small tables (`build`, `intern`, `resolve_each`); `keys` reads the
//! id values of any layout; `resolve` maps the power stream's ids, the
//! hot path; `dictionary` maps dictionary-encoded ids through their values.

mod dictionary;
mod keys;
mod resolve;

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
    /// String ids laid out for the hot path's byte comparisons.
    flat: resolve::FlatNames,
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

use keys::for_each_key;

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
            flat: resolve::FlatNames::default(),
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
        idx.flat = resolve::FlatNames::of(&idx);
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
            flat: resolve::FlatNames::default(),
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
        idx.flat = resolve::FlatNames::of(&idx);
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

    /// The id as text, unquoted (for output columns).
    pub fn text(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// The id as written in messages: strings quoted, integers bare.
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
