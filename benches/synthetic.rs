//! A synthetic in-memory fleet for the Rust kernel benchmarks
//! (`benches/kernels.rs`) and the profiling example: `n_dev` devices at one
//! site and region, `n_per` samples each at 1 Hz, hourly intensity, power
//! drawn uniformly in [60, 400) W, in 2^20-row batches.

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use arrow_schema::{Field, Schema};
use carbonledger_core::Table;

pub const T0: i64 = 1_700_000_000_000_000_000;

pub fn batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        cols.into_iter().map(|c| c.1).collect(),
    )
    .expect("columns of one length")
}

pub fn ts(v: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from(v).with_timezone("UTC"))
}

pub struct Fleet {
    pub devices: Table,
    pub sites: Table,
    pub intensity: Table,
    pub power: Vec<RecordBatch>,
    pub samples: usize,
}

impl Fleet {
    pub fn schema(&self) -> Arc<Schema> {
        self.power[0].schema()
    }
}

fn table(name: &'static str, b: &RecordBatch) -> Table {
    Table::new(name, &b.schema(), std::slice::from_ref(b)).expect("a valid table")
}

pub fn fleet(n_dev: usize, n_per: usize, time_order: bool) -> Fleet {
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
        ("installed_at", ts(vec![T0 - 86_400_000_000_000; n_dev])),
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
        .map(|h| T0 - 3_600_000_000_000 + h * 3_600_000_000_000)
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
    let mut power = Vec::new();
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
        ts_col.push(T0 + s as i64 * 1_000_000_000);
        p_col.push(60.0 + (seed >> 40) as f64 / (1u64 << 24) as f64 * 340.0);
        if dev_col.len() == chunk || k + 1 == n {
            power.push(batch(vec![
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
    Fleet {
        devices: table("devices", &devices),
        sites: table("sites", &sites),
        intensity: table("intensity", &intensity),
        power,
        samples: n,
    }
}

/// The same samples as cumulative energy counters (`energy_j`): each device's
/// running sum of power x 1 s over the batches, in their order.
pub fn counters(power: &[RecordBatch]) -> Vec<RecordBatch> {
    let mut total: std::collections::HashMap<String, f64> = Default::default();
    power
        .iter()
        .map(|b| {
            let ids = b
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("ids");
            let p = b
                .column(2)
                .as_any()
                .downcast_ref::<Float64Array>()
                .expect("power");
            let e: Float64Array = (0..b.num_rows())
                .map(|r| {
                    let sum = total.entry(ids.value(r).to_string()).or_default();
                    *sum += p.value(r);
                    Some(*sum)
                })
                .collect();
            batch(vec![
                ("device_id", b.column(0).clone()),
                ("ts", b.column(1).clone()),
                ("energy_j", Arc::new(e) as ArrayRef),
            ])
        })
        .collect()
}
