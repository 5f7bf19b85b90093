//! A synthetic in-memory fleet pushed through the engine, for profiling:
//! `cargo run --release --example profile -- DEVICES SAMPLES_PER_DEVICE [time|device] [threads] [dict|str] [power|counters]`
//!
//! Device ids are dictionary-encoded by default, as carbonledger's Parquet
//! scan reads them; `str` keeps plain strings. `counters` feeds cumulative
//! `energy_j` instead of `power_w`.
#![allow(clippy::print_stdout)] // a command-line tool: it reports by printing

use std::sync::Arc;
use std::time::Instant;

use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef, DictionaryArray, RecordBatch, StringArray};

use carbonledger_core::{account, Inputs, Options};

#[path = "../../../benches/synthetic.rs"]
mod synthetic;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n_dev: usize = args.get(1).map_or(1000, |s| s.parse().unwrap());
    let n_per: usize = args.get(2).map_or(10_000, |s| s.parse().unwrap());
    let time_order = args.get(3).is_none_or(|s| s == "time");
    let threads: Option<usize> = args.get(4).map(|s| s.parse().unwrap());
    let mut f = synthetic::fleet(n_dev, n_per, time_order);
    if args.get(6).is_some_and(|s| s == "counters") {
        f.power = synthetic::counters(&f.power);
    }
    if args.get(5).is_none_or(|s| s == "dict") {
        f.power = f.power.iter().map(dictionary_ids).collect();
    }
    let inputs = Inputs {
        devices: &f.devices,
        sites: &f.sites,
        intensity: &f.intensity,
        allocations: None,
    };
    for _ in 0..3 {
        let opts = Options {
            threads,
            ..Options::default()
        };
        let start = Instant::now();
        let out = account(
            &inputs,
            &f.schema(),
            f.power.iter().cloned().map(Ok),
            opts,
            &|| false,
        )
        .unwrap();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{} samples, {n_dev} devices, {} order: {:.3} s, {:.1} M samples/s ({} rows out)",
            f.samples,
            if time_order { "time" } else { "device" },
            secs,
            f.samples as f64 / secs / 1e6,
            out.devices.num_rows()
        );
    }
}

fn dictionary_ids(b: &RecordBatch) -> RecordBatch {
    let strs = b
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("strings");
    let ids: ArrayRef = Arc::new(strs.iter().collect::<DictionaryArray<Int32Type>>());
    let schema = b.schema();
    let mut cols: Vec<(&str, ArrayRef)> = vec![("device_id", ids)];
    for i in 1..b.num_columns() {
        cols.push((schema.field(i).name().as_str(), b.column(i).clone()));
    }
    synthetic::batch(cols)
}
