//! carbonledger-core: exact operational + embodied carbon accounting for AI
//! compute fleets (see SPEC.md). Pure Rust; the Python bindings live in
//! `carbonledger-py`.
//!
//! Data flows one way: the small tables are validated and compiled into a
//! [`plan`] of per-device timelines ([`timeline`]); power batches stream through
//! per-device state machines ([`integrate`]) that integrate energy between
//! boundaries ([`ledger`]); each piece is priced ([`price`]) and split by
//! share ([`attribute`]); the accumulators become the result tables
//! ([`report`]). [`stream`] drives it all.

// No unsafe code: the one block there was (unchecked dictionary-key lookups
// in the row loop) saved at most 5% of `feed` on dictionary ids, within this
// machine's run-to-run noise (benches/RESULTS.md), so it went.
#![forbid(unsafe_code)]

pub mod attribute;
pub mod error;
pub mod ids;
pub mod inputs;
pub mod integrate;
pub mod kbn;
pub mod ledger;
pub mod options;
pub mod plan;
pub mod price;
pub mod read_parquet;
pub mod report;
pub mod schema;
pub mod stream;
pub mod timeline;
pub mod validate;

pub use error::{Error, ErrorKind, Problems, Result};
pub use options::{Attribution, Choice, GapFill, Interpolation, OnInvalid, Options, Overlap};
pub use plan::Plan;
pub use read_parquet::{decode, ParquetBatches, ParquetScan};
pub use report::Output;
pub use schema::Table;
pub use stream::{account, account_sources, Engine, Inputs};
pub use validate::validate;
