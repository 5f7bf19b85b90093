//! A synthetic in-memory fleet pushed through the engine, for profiling:
//! `cargo run --release --example profile -- DEVICES SAMPLES_PER_DEVICE [time|device] [threads]`

use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow_schema::{Field, Schema};
use carbonledger_core::{account, Inputs, Options, Table};

fn batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        cols.into_iter().map(|c| c.1).collect(),
    )
    .unwrap()
}

fn ts(v: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from(v).with_timezone("UTC"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n_dev: usize = args.get(1).map_or(1000, |s| s.parse().unwrap());
    let n_per: usize = args.get(2).map_or(10_000, |s| s.parse().unwrap());
    let time_order = args.get(3).is_none_or(|s| s == "time");
    let threads: Option<usize> = args.get(4).map(|s| s.parse().unwrap());
    let t0: i64 = 1_700_000_000_000_000_000;
    let names: Vec<String> = (0..n_dev).map(|i| format!("gpu-{i:05}")).collect();

    let devices = batch(vec![
        (
            "device_id",
            Arc::new(StringArray::from(names.clone())) as ArrayRef,
        ),
        ("site_id", Arc::new(StringArray::from(vec!["s"; n_dev]))),
        (
            "embodied_kgco2e",
            Arc::new(Float64Array::from(vec![150.0; n_dev])),
        ),
        ("installed_at", ts(vec![t0 - 86_400_000_000_000; n_dev])),
        (
            "lifetime_years",
            Arc::new(Float64Array::from(vec![5.0; n_dev])),
        ),
    ]);
    let sites = batch(vec![
        (
            "site_id",
            Arc::new(StringArray::from(vec!["s"])) as ArrayRef,
        ),
        ("region", Arc::new(StringArray::from(vec!["R"]))),
        ("pue", Arc::new(Float64Array::from(vec![1.2]))),
    ]);
    let hours = n_per / 3600 + 3;
    let starts: Vec<i64> = (0..hours as i64)
        .map(|h| t0 - 3_600_000_000_000 + h * 3_600_000_000_000)
        .collect();
    let intensity = batch(vec![
        (
            "region",
            Arc::new(StringArray::from(vec!["R"; hours])) as ArrayRef,
        ),
        ("start", ts(starts)),
        (
            "gco2e_per_kwh",
            Arc::new(Float64Array::from(
                (0..hours).map(|h| 100.0 + h as f64).collect::<Vec<_>>(),
            )),
        ),
    ]);

    let n = n_dev * n_per;
    let chunk = 1 << 20;
    let mut batches = Vec::new();
    let mut dev_col: Vec<&str> = Vec::with_capacity(chunk);
    let mut ts_col = Vec::with_capacity(chunk);
    let mut p_col = Vec::with_capacity(chunk);
    let mut seed: u64 = 1;
    for k in 0..n {
        let (d, s) = if time_order {
            (k % n_dev, k / n_dev)
        } else {
            (k / n_per, k % n_per)
        };
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        dev_col.push(&names[d]);
        ts_col.push(t0 + s as i64 * 1_000_000_000);
        p_col.push(60.0 + (seed >> 40) as f64 / (1u64 << 24) as f64 * 340.0);
        if dev_col.len() == chunk || k + 1 == n {
            batches.push(batch(vec![
                (
                    "device_id",
                    Arc::new(StringArray::from(std::mem::take(&mut dev_col))) as ArrayRef,
                ),
                ("ts", ts(std::mem::take(&mut ts_col))),
                (
                    "power_w",
                    Arc::new(Float64Array::from(std::mem::take(&mut p_col))),
                ),
            ]));
        }
    }
    let schema = batches[0].schema();
    let t = |name, b: &RecordBatch| Table::new(name, &b.schema(), std::slice::from_ref(b)).unwrap();
    let (devices, sites, intensity) = (
        t("devices", &devices),
        t("sites", &sites),
        t("intensity", &intensity),
    );
    let inputs = Inputs {
        devices: &devices,
        sites: &sites,
        intensity: &intensity,
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
            &schema,
            batches.iter().cloned().map(Ok),
            opts,
            &|| false,
        )
        .unwrap();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{n} samples, {n_dev} devices, {} order: {:.3} s, {:.1} M samples/s ({} rows out)",
            if time_order { "time" } else { "device" },
            secs,
            n as f64 / secs / 1e6,
            out.devices.num_rows()
        );
    }
}
