//! Rust kernel benchmarks (divan): `cargo bench -p carbonledger-core --bench kernels`.
//!
//! - `resolve`: device ids to dense indices, from string, large-string,
//!   string-view and dictionary columns;
//! - `feed`: one 2^20-row batch through a fresh engine (each row through its
//!   device's state machine), time-ordered and device-ordered, one and two
//!   threads, and time-ordered energy counters on one thread;
//! - `account`: the whole in-memory run, compile to result tables.
//!
//! Throughput is in samples (rows); 500 devices as in `make bench`.

use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    Array, ArrayRef, DictionaryArray, LargeStringArray, RecordBatch, StringArray, StringViewArray,
};
use arrow_schema::Schema;
use carbonledger_core::ids::KeyIndex;
use carbonledger_core::{account, Engine, Inputs, Options};
use divan::counter::ItemsCount;
use divan::Bencher;

#[path = "synthetic.rs"]
mod synthetic;

const DEVICES: usize = 500;
const PER_DEVICE: usize = 2100; // a little over one 2^20-row batch

fn main() {
    divan::main();
}

fn inputs(f: &synthetic::Fleet) -> Inputs<'_> {
    Inputs {
        devices: &f.devices,
        sites: &f.sites,
        intensity: &f.intensity,
        allocations: None,
    }
}

#[divan::bench(args = ["string", "large_string", "string_view", "dictionary"])]
fn resolve(bencher: Bencher, layout: &str) {
    let f = synthetic::fleet(DEVICES, PER_DEVICE, true);
    let ids = KeyIndex::build(
        f.devices.column("device_id", "ids").expect("device_id"),
        "devices",
        "device_id",
    )
    .expect("unique ids");
    let col: ArrayRef = f.power[0].column(0).clone();
    let strs = col.as_any().downcast_ref::<StringArray>().expect("strings");
    let col: ArrayRef = match layout {
        "dictionary" => Arc::new(strs.iter().collect::<DictionaryArray<Int32Type>>()),
        "large_string" => Arc::new(strs.iter().collect::<LargeStringArray>()),
        "string_view" => Arc::new(strs.iter().collect::<StringViewArray>()),
        _ => col,
    };
    let mut out = Vec::with_capacity(col.len());
    bencher.counter(ItemsCount::new(col.len())).bench_local(|| {
        out.clear();
        ids.resolve(&col, "power", "device_id", "devices.device_id", &mut out)
            .expect("known ids");
        divan::black_box(out.len())
    });
}

#[divan::bench(args = [
    ("time", 1), ("time", 2), ("device", 1), ("device", 2), ("time, counters", 1),
    ("time, dictionary", 1), ("time, dictionary", 2),
])]
fn feed(bencher: Bencher, (order, threads): (&str, usize)) {
    let mut f = synthetic::fleet(DEVICES, PER_DEVICE, order.starts_with("time"));
    if order.ends_with("counters") {
        f.power = synthetic::counters(&f.power);
    }
    let mut batch = f.power[0].clone();
    if order.ends_with("dictionary") {
        // Ids as Parquet hands them over: the key -> device table path.
        let strs = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("strings");
        let dict: ArrayRef = Arc::new(strs.iter().collect::<DictionaryArray<Int32Type>>());
        let mut cols = batch.columns().to_vec();
        cols[0] = dict;
        let fields: Vec<_> = batch
            .schema()
            .fields()
            .iter()
            .enumerate()
            .map(|(i, fl)| {
                fl.as_ref()
                    .clone()
                    .with_data_type(cols[i].data_type().clone())
            })
            .collect();
        batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).expect("batch");
    }
    let schema = f.schema();
    let opts = Options {
        threads: Some(threads),
        ..Options::default()
    };
    bencher
        .counter(ItemsCount::new(batch.num_rows()))
        .with_inputs(|| Engine::new(&inputs(&f), &schema, opts.clone()).expect("engine"))
        .bench_local_values(|mut engine| {
            engine.feed(&batch).expect("feed");
            engine
        });
}

#[divan::bench(args = [1, 2], sample_count = 10)]
fn account_in_memory(bencher: Bencher, threads: usize) {
    let f = synthetic::fleet(DEVICES, PER_DEVICE * 4, true);
    let schema = f.schema();
    bencher.counter(ItemsCount::new(f.samples)).bench_local(|| {
        let opts = Options {
            threads: Some(threads),
            ..Options::default()
        };
        account(
            &inputs(&f),
            &schema,
            f.power.iter().cloned().map(Ok),
            opts,
            &|| false,
        )
        .expect("account")
    });
}
