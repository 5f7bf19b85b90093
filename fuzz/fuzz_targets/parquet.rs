//! Parquet files as they come (`read_parquet`): any bytes, seeded with small
//! real files, are opened and decoded. Each gives its batches or an error
//! naming the file, never a panic, an internal error or a hang; and a file
//! that decodes gives exactly the rows its footer counts (a damaged row
//! group must never read as a shorter one).
//!
//! Finding 14: arrow-rs panics on some damaged footers (`arrow-ipc`'s
//! `fb_to_schema` unwraps a missing field list): caught, an input error.
//! Finding 15: a damaged page header makes it spin (a Thrift list skipped
//! element by element): the stall timeout ends the run with an input error.
#![no_main]

use std::collections::BTreeMap;
use std::sync::{Arc, Once};
use std::time::Duration;

use carbonledger_core::error::ErrorKind;
use carbonledger_core::{decode, ParquetScan};
use libfuzzer_sys::fuzz_target;

static DEFAULT_HOOK: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    // arrow-rs panics on some damaged files (an embedded Arrow schema whose
    // flatbuffer lacks its fields, say); carbonledger catches those panics
    // and reports them as errors naming the file. libFuzzer's panic hook
    // aborts on any panic, caught or not, so the default hook comes back:
    // a panic that escapes still fails the run (libfuzzer-sys aborts then).
    DEFAULT_HOOK.call_once(|| drop(std::panic::take_hook()));
    let path = std::env::temp_dir().join(format!(
        "carbonledger-fuzz-parquet-{}.parquet",
        std::process::id()
    ));
    std::fs::write(&path, data).expect("write the input to a temporary file");
    let scan = match ParquetScan::open(&[path.clone()], &BTreeMap::new(), "source 0", 7) {
        // A decoder silent for 5 s has stalled (finding 15): an input error
        // naming the row group, well inside libFuzzer's 30 s.
        Ok(scan) => Arc::new(scan.with_stall_timeout(Duration::from_secs(5))),
        Err(e) => {
            assert_ne!(e.kind, ErrorKind::Internal, "{}", e.message);
            assert!(e.message.contains("carbonledger-fuzz-parquet"), "{}", e.message);
            return;
        }
    };
    let want = scan.num_rows();
    let mut rows = 0u64;
    for workers in [1, 2] {
        rows = 0;
        for (_, item) in decode(vec![Arc::clone(&scan)], workers, None) {
            match item {
                Ok((_, batch)) => rows += batch.num_rows() as u64,
                Err(e) => {
                    assert_ne!(e.kind, ErrorKind::Internal, "{}", e.message);
                    assert!(e.message.contains("row group"), "{}", e.message);
                    return;
                }
            }
        }
    }
    assert_eq!(rows, want, "decoded rows against the footers' count");
    // The read window's pruning reads each row group's `ts` statistics from
    // the (hostile) footer: it must skip or read, never panic, and what it
    // reads plus what it skips is every row.
    let windowed = decode(vec![Arc::clone(&scan)], 1, Some((0, 1_700_000_000_000_000_000)));
    let skipped = windowed.skipped();
    let mut read = 0u64;
    for (_, item) in windowed {
        match item {
            Ok((_, batch)) => read += batch.num_rows() as u64,
            Err(e) => {
                assert_ne!(e.kind, ErrorKind::Internal, "{}", e.message);
                return;
            }
        }
    }
    assert_eq!(read + skipped.rows, want, "rows read and skipped against the footers' count");
});
