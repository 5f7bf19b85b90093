//! The accumulators become the result tables (SPEC 9). Ids and input
//! columns are joined back by the caller, which holds the input tables.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, TimestampNanosecondArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, TimeUnit};

use crate::attribute::Metrics;
use crate::integrate::DeviceState;
use crate::timeline::DeviceAllocations;

/// The metric columns, in output order.
pub const METRIC_COLUMNS: [&str; 6] = [
    "energy_kwh",
    "facility_energy_kwh",
    "operational_kgco2e",
    "operational_market_kgco2e",
    "embodied_kgco2e",
    "total_kgco2e",
];

pub struct Output {
    /// One row per input allocation, in input order: duration_s, uncovered_s, metrics.
    pub allocations: RecordBatch,
    /// One row per device: duration_s, uncovered_s, metrics.
    pub unallocated: RecordBatch,
    /// One row per device: samples .. counter_resets, uncovered_s, metrics.
    pub devices: RecordBatch,
}

fn f64_col(v: Vec<f64>) -> ArrayRef {
    Arc::new(Float64Array::from(v))
}

fn metric_values(m: &Metrics) -> [f64; 6] {
    let op = m.operational_kg.value();
    let emb = m.embodied_kg.value();
    [
        m.energy_kwh.value(),
        m.facility_energy_kwh.value(),
        op,
        m.operational_market_kg.value(),
        emb,
        op + emb,
    ]
}

/// Columns `[duration_s?, uncovered_s, metrics...]` for a list of accounts.
fn metric_batch(
    accounts: &[&Metrics],
    with_duration: bool,
    mut lead: Vec<(Field, ArrayRef)>,
) -> RecordBatch {
    if with_duration {
        lead.push((
            Field::new("duration_s", DataType::Float64, false),
            f64_col(accounts.iter().map(|m| m.duration_s.value()).collect()),
        ));
    }
    lead.push((
        Field::new("uncovered_s", DataType::Float64, false),
        f64_col(accounts.iter().map(|m| m.uncovered_s.value()).collect()),
    ));
    let values: Vec<[f64; 6]> = accounts.iter().map(|m| metric_values(m)).collect();
    for (k, name) in METRIC_COLUMNS.iter().enumerate() {
        lead.push((
            Field::new(*name, DataType::Float64, false),
            f64_col(values.iter().map(|v| v[k]).collect()),
        ));
    }
    let (fields, cols): (Vec<Field>, Vec<ArrayRef>) = lead.into_iter().unzip();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).expect("columns have equal lengths")
}

pub fn build(states: &[DeviceState], allocs: &[DeviceAllocations], n_allocations: usize) -> Output {
    let empty = Metrics::default();
    let mut by_row: Vec<&Metrics> = vec![&empty; n_allocations];
    for (st, da) in states.iter().zip(allocs) {
        for (local, &row) in da.rows.iter().enumerate() {
            by_row[row as usize] = &st.acc.allocations[local];
        }
    }
    let allocations = metric_batch(&by_row, true, Vec::new());
    let unalloc: Vec<&Metrics> = states.iter().map(|s| &s.acc.unallocated).collect();
    let unallocated = metric_batch(&unalloc, true, Vec::new());

    let u64_col = |f: fn(&DeviceState) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from(states.iter().map(f).collect::<Vec<_>>()))
    };
    let ts_col = |f: fn(&DeviceState) -> Option<i64>| -> ArrayRef {
        Arc::new(
            TimestampNanosecondArray::from(states.iter().map(f).collect::<Vec<_>>())
                .with_timezone("UTC"),
        )
    };
    let ts_type = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
    let lead = vec![
        (
            Field::new("samples", DataType::UInt64, false),
            u64_col(|s| s.stats.samples),
        ),
        (
            Field::new("invalid_samples", DataType::UInt64, false),
            u64_col(|s| s.stats.invalid),
        ),
        (
            Field::new("duplicate_samples", DataType::UInt64, false),
            u64_col(|s| s.stats.duplicates),
        ),
        (
            Field::new("first_ts", ts_type.clone(), true),
            ts_col(|s| s.stats.first_ts),
        ),
        (
            Field::new("last_ts", ts_type, true),
            ts_col(|s| s.stats.last_ts),
        ),
        (
            Field::new("gaps", DataType::UInt64, false),
            u64_col(|s| s.stats.gaps),
        ),
        (
            Field::new("counter_wraps", DataType::UInt64, false),
            u64_col(|s| s.stats.wraps),
        ),
        (
            Field::new("counter_resets", DataType::UInt64, false),
            u64_col(|s| s.stats.resets),
        ),
    ];
    let dev: Vec<&Metrics> = states.iter().map(|s| &s.acc.device).collect();
    let devices = metric_batch(&dev, false, lead);
    Output {
        allocations,
        unallocated,
        devices,
    }
}
