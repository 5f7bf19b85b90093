//! Typed errors. Every message names the table, the column, the offending
//! value or id, and what was expected; the kind picks the Python exception.

use std::fmt;

/// What went wrong, coarse enough to map onto one exception class each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A column is missing or has a type that cannot be read as expected.
    Schema,
    /// A value is outside its domain (negative embodied, `end <= start`, ...).
    Input,
    /// An id refers to nothing (`device_id` not in devices, unknown `site_id`).
    UnknownId,
    /// Grid intensity rows leave a hole or overlap inside the period.
    Coverage,
    /// Allocation shares on one device sum above 1 inside the period.
    Overlap,
    /// A device's samples go back in time in a stream that was not sorted.
    Order,
    /// An invalid sample with `on_invalid="raise"`.
    InvalidSample,
    /// The caller asked to stop (Ctrl-C).
    Interrupted,
    /// A bug: an invariant of the engine itself failed.
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    pub fn schema(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Schema, message)
    }
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Input, message)
    }
    pub fn unknown_id(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::UnknownId, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// What a caught panic said (its `&str` or `String` payload), or `default`.
pub fn panic_message(panic: &(dyn std::any::Any + Send), default: &str) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
        .unwrap_or_else(|| default.to_string())
}

/// Of two errors found by parallel workers, each tagged with where it was
/// found (a row, a chunk), the earlier one: reduced over any split, the
/// error reported does not depend on the thread count.
pub fn earliest<K: Ord>(a: Option<(K, Error)>, b: Option<(K, Error)>) -> Option<(K, Error)> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// Every problem found while checking inputs, in the order found (the first
/// is what a run reports; `validate` reports them all).
#[derive(Debug, Default)]
pub struct Problems {
    pub list: Vec<Error>,
    /// Problems beyond [`Problems::CAP`], counted but not kept.
    pub more: usize,
}

impl Problems {
    pub const CAP: usize = 1000;

    pub fn note(&mut self, e: Error) {
        if self.list.len() < Self::CAP {
            self.list.push(e);
        } else {
            self.more += 1;
        }
    }

    /// The value, or `None` with the error noted.
    pub fn take<T>(&mut self, r: Result<T>) -> Option<T> {
        r.map_err(|e| self.note(e)).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The first problem as an error, if any.
    pub fn first(self) -> Result<()> {
        match self.list.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
