//! The Parquet reader alone, for profiling: every power batch of the files
//! decoded and dropped, no accounting.
//! `cargo run --release --example decode_parquet -- WORKERS BATCH_ROWS FILE...`
#![allow(clippy::print_stdout)] // a command-line tool: it reports by printing

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use carbonledger_core::{decode, ParquetScan};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let workers: usize = args.get(1).map_or(2, |s| s.parse().unwrap());
    let batch_rows: usize = args.get(2).map_or(1 << 18, |s| s.parse().unwrap());
    let paths: Vec<PathBuf> = args[3..].iter().map(PathBuf::from).collect();
    let t0 = Instant::now();
    let scan = ParquetScan::open(&paths, &BTreeMap::new(), "power", batch_rows).unwrap();
    let mut rows = 0;
    for (_, batch) in decode(vec![Arc::new(scan)], workers, None) {
        rows += batch.unwrap().1.num_rows();
    }
    println!("{rows} rows in {:.3} s", t0.elapsed().as_secs_f64());
}
