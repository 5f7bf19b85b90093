//! The accumulators become the result tables (SPEC 9), complete: the input
//! columns they repeat (each allocation's, each device's id), then the
//! engine's columns, in SPEC order.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{
    ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray, UInt64Array,
};
use arrow_schema::{DataType, Field, FieldRef, Schema, TimeUnit};

use crate::attribute::Metrics;
use crate::ids::KeyIndex;
use crate::inputs::Device;
use crate::integrate::DeviceState;
use crate::timeline::{DeviceAllocations, RegionGrid};

/// The metric columns, in output order.
pub const METRIC_COLUMNS: [&str; 6] = [
    "energy_kwh",
    "facility_energy_kwh",
    "operational_kgco2e",
    "operational_market_kgco2e",
    "embodied_kgco2e",
    "total_kgco2e",
];

#[derive(Debug)]
pub struct Output {
    /// One row per input allocation, in input order: duration_s, uncovered_s, metrics.
    pub allocations: RecordBatch,
    /// One row per device: duration_s, uncovered_s, metrics.
    pub unallocated: RecordBatch,
    /// One row per device: samples .. counter_resets, uncovered_s, metrics.
    pub devices: RecordBatch,
    /// One row per (region, grid row) some device booked inside the period:
    /// region, start, end, intensity columns, duration_s, uncovered_s, metrics.
    pub grid: RecordBatch,
    /// The settled period `[start, end)` in ns since the epoch: the one
    /// asked for, else the first to the last valid sample of any device.
    pub period: (i64, i64),
}

/// The output columns of `allocations` after its input columns (an input
/// column of one of these names is a schema error).
pub const ALLOCATION_OUTPUT_COLUMNS: [&str; 11] = [
    "duration_s",
    "uncovered_s",
    METRIC_COLUMNS[0],
    METRIC_COLUMNS[1],
    METRIC_COLUMNS[2],
    METRIC_COLUMNS[3],
    METRIC_COLUMNS[4],
    METRIC_COLUMNS[5],
    EXECUTION_IDLE_COLUMNS[0],
    EXECUTION_IDLE_COLUMNS[1],
    EXECUTION_IDLE_COLUMNS[2],
];

/// The input columns the result tables repeat (SPEC 9).
#[derive(Debug, Clone)]
pub struct EchoedInputs {
    /// `devices.device_id`, first column of `unallocated` and `devices`.
    pub device_id: (FieldRef, ArrayRef),
    /// Every column of `allocations` as given (an empty table of `job_id,
    /// device_id, start, end` when none was given).
    pub allocations: RecordBatch,
}

impl EchoedInputs {
    fn allocation_columns(&self) -> Vec<(FieldRef, ArrayRef)> {
        let b = &self.allocations;
        b.schema()
            .fields()
            .iter()
            .cloned()
            .zip(b.columns().iter().cloned())
            .collect()
    }
}

/// What the `grid` table needs besides the device states.
#[derive(Debug)]
pub struct GridContext<'a> {
    pub grids: &'a [RegionGrid],
    pub regions: &'a KeyIndex,
    pub devices: &'a [Device],
    pub period: (i64, i64),
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

/// The columns that follow the metrics when the power samples carry
/// utilization: covered time at or above the execution-idle threshold,
/// below it, and the energy of the latter.
pub const EXECUTION_IDLE_COLUMNS: [&str; 3] = ["busy_s", "execution_idle_s", "execution_idle_kwh"];

/// Columns `[lead..., duration_s?, uncovered_s, metrics..., execution-idle?]`
/// for a list of accounts.
fn metric_batch(
    accounts: &[&Metrics],
    with_duration: bool,
    execution_idle: bool,
    mut lead: Vec<(FieldRef, ArrayRef)>,
) -> RecordBatch {
    let field = |name: &str| Arc::new(Field::new(name, DataType::Float64, false));
    if with_duration {
        lead.push((
            field("duration_s"),
            f64_col(accounts.iter().map(|m| m.duration_s.value()).collect()),
        ));
    }
    lead.push((
        field("uncovered_s"),
        f64_col(accounts.iter().map(|m| m.uncovered_s.value()).collect()),
    ));
    // Straight into the columns, in one pass: a table of every row's values
    // first would take another 48 bytes a row (half a GB for ten million
    // allocations).
    let mut columns: [Vec<f64>; 6] = std::array::from_fn(|_| Vec::with_capacity(accounts.len()));
    for m in accounts {
        for (column, v) in columns.iter_mut().zip(metric_values(m)) {
            column.push(v);
        }
    }
    for (name, column) in METRIC_COLUMNS.iter().zip(columns) {
        lead.push((field(name), f64_col(column)));
    }
    if execution_idle {
        let getters: [fn(&Metrics) -> f64; 3] = [
            |m| m.busy_s.value(),
            |m| m.execution_idle_s.value(),
            |m| m.execution_idle_kwh.value(),
        ];
        for (name, get) in EXECUTION_IDLE_COLUMNS.iter().zip(getters) {
            lead.push((
                field(name),
                f64_col(accounts.iter().map(|m| get(m)).collect()),
            ));
        }
    }
    let (fields, cols): (Vec<FieldRef>, Vec<ArrayRef>) = lead.into_iter().unzip();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).expect("columns have equal lengths")
}

/// Sum every device's grid cells by (region, grid row), in device order (so
/// the sums do not depend on threads or batches), sorted by region name, then time.
fn grid_batch(states: &[DeviceState], g: &GridContext<'_>) -> RecordBatch {
    let mut cells: Vec<Vec<Option<Metrics>>> = g
        .grids
        .iter()
        .map(|r| vec![None; r.steps.vals.len()])
        .collect();
    for (st, dev) in states.iter().zip(g.devices) {
        let region = &mut cells[dev.region as usize];
        for cell in &st.acc.grid {
            region[cell.step as usize]
                .get_or_insert_with(Metrics::default)
                .add_all(&cell.values);
        }
    }
    let mut order: Vec<usize> = (0..g.grids.len()).collect();
    order.sort_by_key(|&r| g.regions.text(r));
    let (p0, p1) = g.period;
    let mut region = Vec::new();
    let (mut start, mut end) = (Vec::new(), Vec::new());
    let (mut c, mut cfe, mut residual) = (Vec::new(), Vec::new(), Vec::new());
    let mut accounts: Vec<&Metrics> = Vec::new();
    for r in order {
        let steps = &g.grids[r].steps;
        for (k, m) in cells[r].iter().enumerate() {
            let Some(m) = m else { continue };
            region.push(g.regions.text(r));
            start.push(steps.bounds[k].max(p0));
            end.push(steps.bounds[k + 1].min(p1));
            let v = steps.vals[k];
            c.push(v.map(|v| v.c));
            cfe.push(v.map(|v| v.cfe));
            residual.push(v.map(|v| v.residual));
            accounts.push(m);
        }
    }
    let ts_type = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
    let ts = |v: Vec<i64>| -> ArrayRef {
        Arc::new(TimestampNanosecondArray::from(v).with_timezone("UTC"))
    };
    let opt = |v: Vec<Option<f64>>| -> ArrayRef { Arc::new(Float64Array::from(v)) };
    let lead = vec![
        (
            Field::new("region", DataType::Utf8, false),
            Arc::new(StringArray::from(region)) as ArrayRef,
        ),
        (Field::new("start", ts_type.clone(), false), ts(start)),
        (Field::new("end", ts_type, false), ts(end)),
        (Field::new("gco2e_per_kwh", DataType::Float64, true), opt(c)),
        (Field::new("cfe", DataType::Float64, true), opt(cfe)),
        (
            Field::new("residual_gco2e_per_kwh", DataType::Float64, true),
            opt(residual),
        ),
    ];
    let lead = lead.into_iter().map(|(f, c)| (Arc::new(f), c)).collect();
    metric_batch(&accounts, true, false, lead)
}

/// Every number of a result is finite: the bounds on the inputs
/// (`inputs::MAX_*`, `max_power_w`, the era) keep every product in range, so
/// a NaN or an infinity here is a defect of those bounds, and an error
/// rather than a silent wrong number in a ledger.
pub fn check_finite(out: &Output) -> crate::Result<()> {
    let tables = [
        ("devices", &out.devices),
        ("allocations", &out.allocations),
        ("unallocated", &out.unallocated),
        ("grid", &out.grid),
    ];
    for (table, batch) in tables {
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            let Some(values) = column.as_primitive_opt::<Float64Type>() else {
                continue;
            };
            if let Some(row) = values.values().iter().position(|v| !v.is_finite()) {
                return Err(crate::Error::internal(format!(
                    "result table '{table}', column '{}': {} at row {row}; the input bounds should make every result finite (please report this with the inputs)",
                    field.name(),
                    values.value(row)
                )));
            }
        }
    }
    Ok(())
}

pub fn build(
    states: &[DeviceState],
    allocs: &[DeviceAllocations],
    echoed: &EchoedInputs,
    grid: &GridContext<'_>,
    execution_idle: bool,
) -> Output {
    let n_allocations = echoed.allocations.num_rows();
    let empty = Metrics::default();
    let mut by_row: Vec<&Metrics> = vec![&empty; n_allocations];
    for (st, da) in states.iter().zip(allocs) {
        // Until then the allocations hold running totals, not metrics.
        assert!(st.acc.is_closed(), "report built before the books closed");
        for (local, &row) in da.rows.iter().enumerate() {
            by_row[row as usize] = &st.acc.allocations[local];
        }
    }
    let allocations = metric_batch(&by_row, true, execution_idle, echoed.allocation_columns());
    let unalloc: Vec<&Metrics> = states.iter().map(|s| &s.acc.unallocated).collect();
    let unallocated = metric_batch(
        &unalloc,
        true,
        execution_idle,
        vec![echoed.device_id.clone()],
    );

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
    let mut lead = vec![echoed.device_id.clone()];
    let stats = [
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
    lead.extend(stats.into_iter().map(|(f, c)| (Arc::new(f), c)));
    let dev: Vec<&Metrics> = states.iter().map(|s| &s.acc.device).collect();
    let devices = metric_batch(&dev, false, execution_idle, lead);
    Output {
        allocations,
        unallocated,
        devices,
        grid: grid_batch(states, grid),
        period: grid.period,
    }
}
