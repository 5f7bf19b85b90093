//! Checking the inputs without reading a sample, reporting every problem
//! found rather than the first (`carbonledger validate`).

use arrow_schema::Schema;

use crate::error::{Error, Problems};
use crate::inputs::Fleet;
use crate::options::Options;
use crate::schema::fmt_ts;
use crate::stream::{power_value_kind, Inputs};
use crate::timeline::{
    build_allocations, build_grids, check_grid_coverage_all, check_overallocation_all,
};

/// Every problem of the small tables, of the power sources' schemas (when
/// given) and, over `opts.period` (when given), of grid coverage and
/// over-allocation.
pub fn validate(inputs: &Inputs<'_>, power_schemas: &[&Schema], opts: &Options) -> Problems {
    let mut p = Problems::default();
    if let Some((p0, p1)) = opts.period {
        if p1 <= p0 {
            p.note(Error::input(format!(
                "argument 'period': end {} <= start {}; expected end > start",
                fmt_ts(p1),
                fmt_ts(p0)
            )));
        }
    }
    let Some(fleet) = Fleet::compile_all(
        inputs.devices,
        inputs.sites,
        inputs.intensity,
        inputs.allocations,
        &mut p,
    ) else {
        return p;
    };
    for schema in power_schemas {
        p.take(power_value_kind(schema, &fleet.device_ids));
    }
    let Some((p0, p1)) = opts.period.filter(|(a, b)| a < b) else {
        return p;
    };
    let grids = build_grids(&fleet);
    let mut region_used = vec![false; fleet.regions.len()];
    for d in &fleet.devices {
        if let Some(used) = region_used.get_mut(d.region as usize) {
            *used = true;
        }
    }
    check_grid_coverage_all(&grids, &region_used, &fleet.regions, p0, p1, &mut p);
    if !opts.normalize_overlap {
        let (_, over) = build_allocations(fleet.devices.len(), &fleet.allocations);
        check_overallocation_all(&over, &fleet.device_ids, p0, p1, &mut p);
    }
    p
}
