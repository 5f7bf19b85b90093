//! Shared by the fuzz targets (see docs/fuzzing.md): genes read from the
//! fuzz bytes ([`gene`]), Arrow columns of every layout ([`arrow`]), whole
//! fleets ([`fleet`]) and the checks every result must pass ([`check`]).

pub mod arrow;
pub mod cases;
pub mod check;
pub mod fleet;
pub mod gene;

use carbonledger_core::{Error, Inputs, Output};

/// The small tables of a built fleet.
pub fn inputs(b: &fleet::Built) -> Inputs<'_> {
    Inputs {
        devices: &b.devices,
        sites: &b.sites,
        intensity: &b.intensity,
        allocations: b.allocations.as_ref(),
    }
}

/// Run `account_sources` (`account` with one source) on a built fleet.
pub fn account(b: &fleet::Built) -> Result<Output, Error> {
    let sources = b
        .sources
        .iter()
        .map(|(schema, batches)| (schema, batches.iter().cloned().map(Ok)))
        .collect();
    carbonledger_core::account_sources(&inputs(b), sources, b.opts.clone(), &|| false)
}

/// With `FUZZ_TRACE` set, print what an input did (read a corpus with
/// `cargo fuzz run <target> <dir> -- -runs=0`).
pub fn trace(what: impl FnOnce() -> String) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some()) {
        eprintln!("{}", what());
    }
}

/// A result in one line, for [`trace`].
pub fn outcome(r: &Result<Output, Error>) -> String {
    match r {
        Ok(out) => format!(
            "Ok: {} devices, {} allocations, {} grid rows",
            out.devices.num_rows(),
            out.allocations.num_rows(),
            out.grid.num_rows()
        ),
        Err(e) => format!("Err({:?}): {}", e.kind, e.message),
    }
}
