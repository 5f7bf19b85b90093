//! Accounting options (SPEC 3, 7, 8, 11).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// Trapezoid: exact for the piecewise-linear power curve.
    Linear,
    /// Zero-order hold: `p_i` until `t_{i+1}`.
    Previous,
}

/// 1 MW: above a whole rack of today's densest accelerators (about 130 kW),
/// far above any single GPU, CPU or host; below the values a unit slip
/// (mW or uJ read as W or J) or a corrupted encoding produces.
pub const DEFAULT_MAX_POWER_W: f64 = 1e6;

#[derive(Debug, Clone)]
pub struct Options {
    pub period: Option<(i64, i64)>,
    pub interpolation: Interpolation,
    /// Longest interval between samples still interpolated, in ns.
    pub max_gap_ns: i64,
    /// Fill uncovered time with the device's `idle_power_w`.
    pub gap_fill_idle: bool,
    /// Raise on NaN / infinite / negative samples instead of dropping them.
    pub raise_on_invalid: bool,
    /// Scale over-allocated shares to sum to 1 instead of raising.
    pub normalize_overlap: bool,
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
}

impl Default for Options {
    fn default() -> Self {
        Self {
            period: None,
            interpolation: Interpolation::Linear,
            max_gap_ns: 300_000_000_000,
            gap_fill_idle: false,
            raise_on_invalid: false,
            normalize_overlap: false,
            sort: false,
            threads: None,
            max_power_w: DEFAULT_MAX_POWER_W,
            parallel_min_rows: 1 << 16,
        }
    }
}
