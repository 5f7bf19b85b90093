//! Checking the inputs without reading a sample, reporting every problem
//! found rather than the first (`carbonledger validate`): the plan that
//! `account` compiles, compiled noting every problem.

use arrow_schema::Schema;

use crate::error::Problems;
use crate::options::Options;
use crate::plan::Plan;
use crate::stream::Inputs;

/// Every problem of the options, of the small tables, of the power sources'
/// schemas (when given) and, over `opts.period` (when given), of grid
/// coverage and over-allocation.
pub fn validate(inputs: &Inputs<'_>, power_schemas: &[&Schema], opts: &Options) -> Problems {
    let mut p = Problems::default();
    let _ = Plan::compile_all(inputs, power_schemas, opts.clone(), &mut p);
    p
}
