//! Thin PyO3 glue: Arrow in and out through the PyCapsule interface, the GIL
//! released while the core works, Ctrl-C honoured between batches, core
//! errors raised as the exception classes this module defines (`errors`),
//! which `carbonledger.exceptions` re-exports.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use carbonledger_core::{
    Attribution, Choice, Error, ErrorKind, GapFill, Inputs, Interpolation, OnInvalid, Options,
    Output, Overlap, Problems, Table,
};

mod errors;
mod scan;

/// Every Rust allocation of the extension (see Cargo.toml for why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use pyo3::prelude::*;
use pyo3_arrow::{PySchema, PyTable};
use scan::{ParquetScan, PowerSource};

fn table(name: &'static str, t: PyTable) -> Result<Table, Error> {
    let (batches, schema) = t.into_inner();
    Table::new(name, &schema, &batches)
}

/// The options, parsed once here: a bad choice is an `InputError` naming
/// the argument (the Python layer passes them through unchecked).
#[allow(clippy::too_many_arguments)]
fn parse_options(
    py: Python<'_>,
    period: Option<(i64, i64)>,
    interpolation: &str,
    max_gap_ns: i64,
    gap_fill: &str,
    on_invalid: &str,
    overlap: &str,
    sort: bool,
    threads: Option<usize>,
    max_power_w: f64,
    execution_idle_below: f64,
    attribution: &str,
) -> PyResult<Options> {
    let opts = || -> carbonledger_core::Result<Options> {
        Ok(Options {
            period,
            interpolation: Interpolation::parse(interpolation)?,
            max_gap_ns,
            gap_fill: GapFill::parse(gap_fill)?,
            on_invalid: OnInvalid::parse(on_invalid)?,
            overlap: Overlap::parse(overlap)?,
            sort,
            threads,
            max_power_w,
            execution_idle_below,
            attribution: Attribution::parse(attribution)?,
            ..Options::default()
        })
    };
    opts().map_err(|e| errors::to_py(py, e))
}

/// What `account` returns: the allocations, unallocated, devices and grid
/// tables, the settled period in ns, and what the read window left unread
/// of the Parquet sources (row groups, rows, compressed bytes).
type Accounted = (
    PyTable,
    PyTable,
    PyTable,
    PyTable,
    (i64, i64),
    (u64, u64, u64),
);

/// Account `power` (one stream per source, SPEC 2) against the small tables.
/// Returns the four SPEC 9 tables, complete (input columns echoed): the
/// allocations (input order), unallocated and devices (devices order), and
/// the grid; and the settled period in ns.
#[pyfunction]
#[pyo3(signature = (
    power, devices, sites, intensity, allocations=None, *,
    period=None, interpolation="linear", max_gap_ns=300_000_000_000, gap_fill="none",
    on_invalid="drop", overlap="error", sort=false, threads=None, max_power_w=1e6,
    execution_idle_below=0.05, attribution="share", progress=Vec::new()
))]
#[allow(clippy::too_many_arguments)]
fn account(
    py: Python<'_>,
    power: Vec<PowerSource>,
    devices: PyTable,
    sites: PyTable,
    intensity: PyTable,
    allocations: Option<PyTable>,
    period: Option<(i64, i64)>,
    interpolation: &str,
    max_gap_ns: i64,
    gap_fill: &str,
    on_invalid: &str,
    overlap: &str,
    sort: bool,
    threads: Option<usize>,
    max_power_w: f64,
    execution_idle_below: f64,
    attribution: &str,
    progress: Vec<Option<Py<PyAny>>>,
) -> PyResult<Accounted> {
    let opts = parse_options(
        py,
        period,
        interpolation,
        max_gap_ns,
        gap_fill,
        on_invalid,
        overlap,
        sort,
        threads,
        max_power_w,
        execution_idle_below,
        attribution,
    )?;
    // Parquet decoding gets as many threads as the engine may use.
    let workers = threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    // SPEC 8 (v1.1): with an explicit period, rows outside
    // [start - max_gap, end + max_gap] cannot change a result.
    let window = opts.period.map(|(p0, p1)| {
        (
            p0.saturating_sub(opts.max_gap_ns),
            p1.saturating_add(opts.max_gap_ns),
        )
    });
    let (opened, read_stats) = scan::open_all(power, workers, window)?;
    let mut hooks = progress.into_iter();
    // A progress hook's own exception, re-raised as it is.
    let hook_failed: Arc<Mutex<Option<PyErr>>> = Arc::default();
    let opened: Vec<_> = opened
        .into_iter()
        .map(|o| {
            let hook = hooks.next().flatten();
            (
                o.schema,
                scan::with_progress(o.batches, hook, Arc::clone(&hook_failed)),
            )
        })
        .collect();
    let interrupt: Mutex<Option<PyErr>> = Mutex::new(None);
    let result = py.detach(|| {
        catch_unwind(AssertUnwindSafe(|| -> Result<Output, Error> {
            let devices = table("devices", devices)?;
            let sites = table("sites", sites)?;
            let intensity = table("intensity", intensity)?;
            let allocations = allocations.map(|a| table("allocations", a)).transpose()?;
            let (schemas, batches): (Vec<_>, Vec<_>) = opened.into_iter().unzip();
            let sources = schemas.iter().map(|s| s.as_ref()).zip(batches).collect();
            let cancelled = || {
                Python::attach(|py| match py.check_signals() {
                    Ok(()) => false,
                    Err(e) => {
                        *interrupt.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        true
                    }
                })
            };
            let inputs = Inputs {
                devices: &devices,
                sites: &sites,
                intensity: &intensity,
                allocations: allocations.as_ref(),
            };
            carbonledger_core::account_sources(&inputs, sources, opts, &cancelled)
        }))
    });
    let out = match result {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            if e.kind == ErrorKind::Interrupted {
                let hook = hook_failed.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(err) = interrupt
                    .into_inner()
                    .unwrap_or_else(|p| p.into_inner())
                    .or(hook)
                {
                    return Err(err);
                }
            }
            return Err(errors::to_py(py, e));
        }
        Err(panic) => {
            let msg = carbonledger_core::error::panic_message(panic.as_ref(), "unknown panic");
            return Err(errors::to_py(
                py,
                Error::internal(format!(
                    "internal error in carbonledger (please report): {msg}"
                )),
            ));
        }
    };
    let wrap = |b: arrow_array::RecordBatch| {
        let schema = b.schema();
        PyTable::try_new(vec![b], schema)
    };
    Ok((
        wrap(out.allocations)?,
        wrap(out.unallocated)?,
        wrap(out.devices)?,
        wrap(out.grid)?,
        out.period,
        {
            let s = read_stats.skipped();
            (s.row_groups, s.rows, s.bytes)
        },
    ))
}

/// Check the small tables (and the power schema, and coverage and
/// over-allocation over `period` when given) without reading a sample.
/// Returns every problem as `(exception class name, message)`, and how many
/// more were found beyond those listed.
#[pyfunction]
#[pyo3(signature = (
    devices, sites, intensity, allocations=None, *, power_schemas=Vec::new(), period=None,
    overlap="error", attribution="share"
))]
#[allow(clippy::too_many_arguments)]
fn validate(
    py: Python<'_>,
    devices: PyTable,
    sites: PyTable,
    intensity: PyTable,
    allocations: Option<PyTable>,
    power_schemas: Vec<PySchema>,
    period: Option<(i64, i64)>,
    overlap: &str,
    attribution: &str,
) -> PyResult<(Vec<(String, String)>, usize)> {
    let opts = parse_options(
        py,
        period,
        "linear",
        0,
        "none",
        "drop",
        overlap,
        false,
        None,
        1e6,
        0.05,
        attribution,
    )?;
    let schemas: Vec<_> = power_schemas.into_iter().map(|s| s.into_inner()).collect();
    let problems = py.detach(|| {
        catch_unwind(AssertUnwindSafe(|| {
            let mut p = Problems::default();
            let devices = p.take(table("devices", devices));
            let sites = p.take(table("sites", sites));
            let intensity = p.take(table("intensity", intensity));
            let allocations = allocations.and_then(|a| p.take(table("allocations", a)));
            let (Some(devices), Some(sites), Some(intensity)) = (devices, sites, intensity) else {
                return p;
            };
            let inputs = Inputs {
                devices: &devices,
                sites: &sites,
                intensity: &intensity,
                allocations: allocations.as_ref(),
            };
            let mut found = carbonledger_core::validate(
                &inputs,
                &schemas.iter().map(|s| s.as_ref()).collect::<Vec<_>>(),
                &opts,
            );
            p.list.append(&mut found.list);
            p.more += found.more;
            p
        }))
    });
    let p = problems.map_err(|_| {
        errors::to_py(
            py,
            Error::internal("internal error in carbonledger validate (please report)"),
        )
    })?;
    let listed = p
        .list
        .into_iter()
        .map(|e| Ok((errors::class_name(py, e.kind)?, e.message)))
        .collect::<PyResult<Vec<_>>>()?;
    Ok((listed, p.more))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The metric columns, in output order: written once, in the core.
    m.add(
        "METRIC_COLUMNS",
        carbonledger_core::report::METRIC_COLUMNS.to_vec(),
    )?;
    errors::register(m)?;
    m.add_function(wrap_pyfunction!(account, m)?)?;
    m.add_function(wrap_pyfunction!(validate, m)?)?;
    m.add_class::<ParquetScan>()?;
    Ok(())
}
