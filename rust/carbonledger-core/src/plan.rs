//! The plan: everything compiled from the small tables, the power sources'
//! schemas and the options before a sample is read. `validate` compiles it
//! noting every problem; `account` compiles the same plan, stopping at the
//! first problem, and streams samples through it (`stream::Engine`, which
//! holds the run's state only).

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, TimeUnit};

use crate::error::{Error, Problems, Result};
use crate::ids::KeyIndex;
use crate::inputs::Fleet;
use crate::ledger::DeviceCtx;
use crate::options::{Attribution, Options, Overlap};
use crate::report::{EchoedInputs, ALLOCATION_OUTPUT_COLUMNS};
use crate::schema::{closest_column, fmt_ts, is_time_type, mapping_hint, missing_column, ERA_NS};
use crate::stream::Inputs;
use crate::timeline::{
    build_allocations, build_grids, check_grid_coverage_all, check_overallocation_all,
    DeviceAllocations, OverAllocation, RegionGrid,
};

/// The compiled inputs of one accounting run.
#[derive(Debug)]
pub struct Plan {
    pub(crate) fleet: Fleet,
    /// Each region's intensity timeline.
    pub(crate) grids: Vec<RegionGrid>,
    /// Each device's allocation timeline.
    pub(crate) allocs: Vec<DeviceAllocations>,
    /// Spans where a device's shares sum above 1.
    pub(crate) over: Vec<OverAllocation>,
    /// Regions some device is in (only their grids must cover the period).
    pub(crate) region_used: Vec<bool>,
    pub(crate) opts: Options,
    /// Each power source's value column, in order.
    pub(crate) kinds: Vec<ValueKind>,
    /// Each power source's utilization column, if it has one.
    pub(crate) utilization: Vec<Option<Utilization>>,
    /// The input columns the result tables repeat.
    pub(crate) echoed: EchoedInputs,
}

impl Plan {
    /// Compile and check everything but the samples, stopping at the first
    /// problem. With an explicit period, grid coverage and over-allocation
    /// are checked here too.
    pub fn compile(inputs: &Inputs<'_>, power_schemas: &[&Schema], opts: Options) -> Result<Self> {
        let mut p = Problems::default();
        let plan = Self::compile_all(inputs, power_schemas, opts, &mut p);
        p.first()?;
        plan.ok_or_else(|| Error::internal("inputs compiled without a problem but no plan"))
    }

    /// `compile`, noting every problem in `p` and going on as far as the
    /// inputs allow; `None` when a problem was noted.
    pub fn compile_all(
        inputs: &Inputs<'_>,
        power_schemas: &[&Schema],
        opts: Options,
        p: &mut Problems,
    ) -> Option<Self> {
        let before = p.list.len() + p.more;
        let period = check_options(&opts, p);
        let fleet = Fleet::compile_all(
            inputs.devices,
            inputs.sites,
            inputs.intensity,
            inputs.allocations,
            opts.attribution == Attribution::Utilization,
            p,
        )?;
        let echoed = echo_inputs(inputs, p);
        let kinds: Vec<Option<ValueKind>> = power_schemas
            .iter()
            .map(|s| p.take(power_value_kind(s, &fleet.device_ids)))
            .collect();
        let utilization: Vec<Option<Option<Utilization>>> = power_schemas
            .iter()
            .map(|s| p.take(power_utilization(s)))
            .collect();
        let grids = build_grids(&fleet);
        let (allocs, over) = build_allocations(fleet.devices.len(), &fleet.allocations);
        if opts.attribution == Attribution::Utilization {
            check_idle_power(&fleet, &allocs, p);
        }
        let mut region_used = vec![false; fleet.regions.len()];
        for d in &fleet.devices {
            // A device whose site was bad holds a placeholder region.
            if let Some(used) = region_used.get_mut(d.region as usize) {
                *used = true;
            }
        }
        if let Some((p0, p1)) = period {
            check_grid_coverage_all(&grids, &region_used, &fleet.regions, p0, p1, p);
            if opts.overlap == Overlap::Error {
                check_overallocation_all(&over, &fleet.device_ids, p0, p1, p);
            }
        }
        let kinds = kinds.into_iter().collect::<Option<Vec<_>>>()?;
        let utilization = utilization.into_iter().collect::<Option<Vec<_>>>()?;
        let echoed = echoed?;
        if p.list.len() + p.more > before {
            return None;
        }
        Some(Self {
            fleet,
            grids,
            allocs,
            over,
            region_used,
            opts,
            kinds,
            utilization,
            echoed,
        })
    }

    /// Grid coverage and over-allocation over a period settled after the
    /// samples were read (no explicit period: `[min ts, max ts)`).
    pub(crate) fn check_period(&self, p0: i64, p1: i64) -> Result<()> {
        let mut p = Problems::default();
        check_grid_coverage_all(
            &self.grids,
            &self.region_used,
            &self.fleet.regions,
            p0,
            p1,
            &mut p,
        );
        if self.opts.overlap == Overlap::Error {
            check_overallocation_all(&self.over, &self.fleet.device_ids, p0, p1, &mut p);
        }
        p.first()
    }

    /// Device `i`'s context; `counters` says which value kind its samples
    /// are (the current source's while streaming, its own at the end).
    pub(crate) fn ctx(&self, i: usize, counters: bool) -> DeviceCtx<'_> {
        let device = &self.fleet.devices[i];
        DeviceCtx {
            index: i,
            ids: &self.fleet.device_ids,
            device,
            grid: &self.grids[device.region as usize],
            allocs: &self.allocs[i],
            opts: &self.opts,
            counters,
            clip: self.opts.period.unwrap_or((i64::MIN, i64::MAX)),
        }
    }

    /// The devices' ids.
    pub fn device_ids(&self) -> &KeyIndex {
        &self.fleet.device_ids
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }
}

/// The input columns the result tables repeat: `devices.device_id`, and
/// every column of `allocations` (none may carry an output column's name).
fn echo_inputs(inputs: &Inputs<'_>, p: &mut Problems) -> Option<EchoedInputs> {
    let devices = &inputs.devices.batch;
    let (_, field) = devices.schema_ref().column_with_name("device_id")?;
    let field = Arc::new(field.clone());
    let ids = devices.column_by_name("device_id")?.clone();
    let allocations = match inputs.allocations {
        Some(t) => {
            let names = t.batch.schema_ref().fields().iter().map(|f| f.name());
            if let Some(c) = names
                .into_iter()
                .find(|n| ALLOCATION_OUTPUT_COLUMNS.contains(&n.as_str()))
            {
                p.note(Error::schema(format!(
                    "table 'allocations': input column '{c}' clashes with an output column; rename it"
                )));
                return None;
            }
            t.batch.clone()
        }
        None => {
            let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
            RecordBatch::new_empty(Arc::new(Schema::new(vec![
                Field::new("job_id", DataType::Utf8, true),
                Field::new("device_id", field.data_type().clone(), true),
                Field::new("start", ts.clone(), true),
                Field::new("end", ts, true),
            ])))
        }
    };
    Some(EchoedInputs {
        device_id: (field, ids),
        allocations,
    })
}

/// Note every problem of the options; the explicit period when it is
/// usable for the coverage checks.
fn check_options(opts: &Options, p: &mut Problems) -> Option<(i64, i64)> {
    let mut period = opts.period;
    if let Some((p0, p1)) = opts.period {
        if p1 <= p0 {
            p.note(Error::input(format!(
                "argument 'period': end {} <= start {}; expected end > start",
                fmt_ts(p1),
                fmt_ts(p0)
            )));
            period = None;
        } else if p0 < ERA_NS.0 || p1 > ERA_NS.1 {
            p.note(Error::input(format!(
                "argument 'period': [{}, {}) reaches outside the accepted range [{}, {}); expected a period of this era",
                fmt_ts(p0),
                fmt_ts(p1),
                fmt_ts(ERA_NS.0),
                fmt_ts(ERA_NS.1)
            )));
            period = None;
        }
    }
    let top = crate::inputs::MAX_POWER_CEILING_W;
    if !(opts.max_power_w.is_finite() && opts.max_power_w > 0.0 && opts.max_power_w <= top) {
        p.note(Error::input(format!(
            "argument 'max_power_w': got {}; expected a power ceiling > 0 and at most {top:e} W",
            opts.max_power_w
        )));
    }
    if opts.max_gap_ns < 0 {
        p.note(Error::input(
            "argument 'max_gap': negative; expected a duration >= 0",
        ));
    }
    let below = opts.execution_idle_below;
    if !((0.0..=1.0).contains(&below)) {
        p.note(Error::input(format!(
            "argument 'execution_idle_below': got {below}; expected a utilization threshold between 0 and 1 (e.g. 0.05 for 5%)"
        )));
    }
    period
}

/// `attribution="utilization"` splits energy at each device's idle power:
/// every device with an allocation needs `idle_power_w`.
fn check_idle_power(fleet: &Fleet, allocs: &[DeviceAllocations], p: &mut Problems) {
    for (i, (d, a)) in fleet.devices.iter().zip(allocs).enumerate() {
        if d.idle_w.is_none() && !a.rows.is_empty() {
            p.note(Error::input(format!(
                "table 'devices', column 'idle_power_w': null for device_id {}; attribution=\"utilization\" needs it for every device with allocations (the power up to it is shared by share, the power above it by utilization)",
                fleet.device_ids.name(i)
            )));
        }
    }
}

/// A power source's utilization column: its name and the factor that
/// turns its values into a fraction of 0..1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Utilization {
    pub column: &'static str,
    pub scale: f64,
}

impl Plan {
    /// Whether any power source reports utilization (the result tables
    /// then carry the execution-idle columns).
    pub fn has_utilization(&self) -> bool {
        self.utilization.iter().any(Option::is_some)
    }
}

/// The utilization column of a power source, if any: `utilization` (a
/// fraction, 0..1) or `utilization_pct` (percent, 0..100), numeric.
pub fn power_utilization(schema: &Schema) -> Result<Option<Utilization>> {
    let found: Vec<Utilization> = [("utilization", 1.0), ("utilization_pct", 0.01)]
        .into_iter()
        .filter(|(name, _)| schema.field_with_name(name).is_ok())
        .map(|(column, scale)| Utilization { column, scale })
        .collect();
    match found.as_slice() {
        [] => Ok(None),
        [u] => {
            let f = schema.field_with_name(u.column).expect("found above");
            if f.data_type().is_numeric() {
                Ok(Some(*u))
            } else {
                Err(Error::schema(format!(
                    "table 'power', column '{}': expected a numeric column, found type {}",
                    u.column,
                    f.data_type()
                )))
            }
        }
        _ => Err(Error::schema(
            "table 'power': has both 'utilization' (fraction 0..1) and 'utilization_pct' (percent); expected at most one of them",
        )),
    }
}

/// Which value column the power table carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    PowerW,
    EnergyJ,
}

impl ValueKind {
    pub fn column(self) -> &'static str {
        match self {
            Self::PowerW => "power_w",
            Self::EnergyJ => "energy_j",
        }
    }
}

/// Validate the power table's schema before reading any sample.
pub fn power_value_kind(schema: &Schema, ids: &KeyIndex) -> Result<ValueKind> {
    let field = |n: &str| schema.field_with_name(n).ok();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let id = field("device_id")
        .ok_or_else(|| missing_column("power", "device_id", "ids of devices.device_id", &names))?;
    ids.check_kind(
        &arrow_array::new_empty_array(id.data_type()),
        "power",
        "device_id",
        "devices.device_id",
    )?;
    let ts = field("ts").ok_or_else(|| missing_column("power", "ts", "a timestamp", &names))?;
    if !is_time_type(ts.data_type()) {
        return Err(Error::schema(format!(
            "table 'power', column 'ts': expected a timestamp column, found type {}",
            ts.data_type()
        )));
    }
    let kind = match (field("power_w"), field("energy_j")) {
        (Some(_), Some(_)) => {
            return Err(Error::schema(
                "table 'power': has both 'power_w' and 'energy_j'; expected exactly one of them",
            ))
        }
        (None, None) => {
            // Suggest an energy column when the input looks like counters.
            let hint = match closest_column("power_w", &names) {
                None if closest_column("energy_j", &names).is_some() => {
                    mapping_hint("power", "energy_j", &names)
                }
                _ => mapping_hint("power", "power_w", &names),
            };
            return Err(Error::schema(format!(
                    "table 'power': missing column 'power_w' (W, instantaneous) or 'energy_j' (J, cumulative counter); found columns {names:?}{hint}"
                )));
        }
        (Some(_), None) => ValueKind::PowerW,
        (None, Some(_)) => ValueKind::EnergyJ,
    };
    let v = field(kind.column()).expect("checked above");
    if !v.data_type().is_numeric() {
        return Err(Error::schema(format!(
            "table 'power', column '{}': expected a numeric column, found type {}",
            kind.column(),
            v.data_type()
        )));
    }
    Ok(kind)
}
