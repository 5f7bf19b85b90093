//! Accounting options (SPEC 3, 7, 8, 11). The string options are enums,
//! parsed once where they enter (`Choice::parse`, called by the Python glue).

use crate::error::{Error, Result};

/// A string option: its argument name and its choices, as the user spells
/// them.
pub trait Choice: Sized + Copy + PartialEq + 'static {
    const ARGUMENT: &'static str;
    const CHOICES: &'static [(&'static str, Self)];

    /// The choice spelled `v`, or an input error naming the argument, the
    /// value and every choice.
    fn parse(v: &str) -> Result<Self> {
        Self::CHOICES
            .iter()
            .find(|(name, _)| *name == v)
            .map(|&(_, c)| c)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::CHOICES.iter().map(|(n, _)| *n).collect();
                Error::input(format!(
                    "argument '{}': got {v:?}; expected one of {names:?}",
                    Self::ARGUMENT
                ))
            })
    }

    /// How the user spells this choice.
    fn spelling(self) -> &'static str {
        Self::CHOICES
            .iter()
            .find(|(_, c)| *c == self)
            .map_or("?", |(n, _)| n)
    }
}

/// How power is read between two samples (SPEC 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// Trapezoid: exact for the piecewise-linear power curve.
    Linear,
    /// Zero-order hold: `p_i` until `t_{i+1}`.
    Previous,
}

impl Choice for Interpolation {
    const ARGUMENT: &'static str = "interpolation";
    const CHOICES: &'static [(&'static str, Self)] =
        &[("linear", Self::Linear), ("previous", Self::Previous)];
}

/// What fills time that no pair of samples covers (SPEC 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapFill {
    /// Left uncovered: no energy, reported as `uncovered_s`.
    Uncovered,
    /// The device's `idle_power_w`.
    Idle,
}

impl Choice for GapFill {
    const ARGUMENT: &'static str = "gap_fill";
    const CHOICES: &'static [(&'static str, Self)] =
        &[("none", Self::Uncovered), ("idle", Self::Idle)];
}

/// What a NaN, infinite or negative sample does (SPEC 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInvalid {
    /// Dropped and counted in `invalid_samples`.
    Drop,
    /// An input error.
    Raise,
}

impl Choice for OnInvalid {
    const ARGUMENT: &'static str = "on_invalid";
    const CHOICES: &'static [(&'static str, Self)] =
        &[("drop", Self::Drop), ("raise", Self::Raise)];
}

/// What allocations whose shares on a device sum above 1 do (SPEC 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// An overlap error.
    Error,
    /// Shares scaled to sum to 1.
    Normalize,
}

impl Choice for Overlap {
    const ARGUMENT: &'static str = "overlap";
    const CHOICES: &'static [(&'static str, Self)] =
        &[("error", Self::Error), ("normalize", Self::Normalize)];
}

/// How a piece's energy is split between the allocations active on a
/// device (SPEC 7, and a rule beyond it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribution {
    /// Everything by share (SPEC 7).
    Share,
    /// Time-sliced GPUs: the static part of the energy (up to the device's
    /// `idle_power_w`) and embodied carbon by share; the dynamic part above
    /// it by each allocation's `utilization`.
    Utilization,
}

impl Choice for Attribution {
    const ARGUMENT: &'static str = "attribution";
    const CHOICES: &'static [(&'static str, Self)] =
        &[("share", Self::Share), ("utilization", Self::Utilization)];
}

/// 1 MW: above a whole rack of today's densest accelerators (about 130 kW),
/// far above any single GPU, CPU or host; below the values a unit slip
/// (mW or uJ read as W or J) or a corrupted encoding produces.
pub const DEFAULT_MAX_POWER_W: f64 = 1e6;
/// The execution-idle threshold: utilization under 5%, as in the study that
/// measured execution-idle at 19.7% of GPU time in a large cluster.
pub const DEFAULT_EXECUTION_IDLE_BELOW: f64 = 0.05;

#[derive(Debug, Clone)]
pub struct Options {
    pub period: Option<(i64, i64)>,
    pub interpolation: Interpolation,
    /// Longest interval between samples still interpolated, in ns.
    pub max_gap_ns: i64,
    pub gap_fill: GapFill,
    pub on_invalid: OnInvalid,
    pub overlap: Overlap,
    /// Accept samples out of time order (holds them all in memory).
    pub sort: bool,
    /// Worker threads; `None`: one per core.
    pub threads: Option<usize>,
    /// Highest credible power of one device (W), unless the devices table
    /// sets its own `max_power_w`: a sample (or a counter's mean power over
    /// an interval) above it is an input error, never a number in a total.
    pub max_power_w: f64,
    /// Batches shorter than this are walked on one thread: splitting a short
    /// batch across workers costs more than it saves.
    pub parallel_min_rows: usize,
    /// Covered time whose reported utilization (0..1) is below this is
    /// execution-idle: held, powered, and doing nothing.
    pub execution_idle_below: f64,
    pub attribution: Attribution,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            period: None,
            interpolation: Interpolation::Linear,
            max_gap_ns: 300_000_000_000,
            gap_fill: GapFill::Uncovered,
            on_invalid: OnInvalid::Drop,
            overlap: Overlap::Error,
            sort: false,
            threads: None,
            max_power_w: DEFAULT_MAX_POWER_W,
            parallel_min_rows: 1 << 16,
            execution_idle_below: DEFAULT_EXECUTION_IDLE_BELOW,
            attribution: Attribution::Share,
        }
    }
}
