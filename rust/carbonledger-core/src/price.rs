//! Pricing one piece of a device's timeline: inside a piece the PUE, grid row,
//! embodied rate and shares are constant, so energy is priced once per piece.

use crate::inputs::Device;
use crate::timeline::Grid;

/// J per kWh.
pub const J_PER_KWH: f64 = 3.6e6;
/// J/kWh x g/kg: turns J x gCO2e/kWh into kgCO2e.
pub const J_G_PER_KWH_KG: f64 = 3.6e9;

/// What one piece of a device's timeline contributes, before attribution.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PieceValues {
    pub duration_s: f64,
    pub uncovered_s: f64,
    pub energy_kwh: f64,
    pub facility_energy_kwh: f64,
    pub operational_kg: f64,
    pub operational_market_kg: f64,
    pub embodied_kg: f64,
    /// Covered time whose utilization was at or above the execution-idle
    /// threshold (0 when the samples carry no utilization).
    pub busy_s: f64,
    /// Covered time whose utilization was below the threshold: the device
    /// was held but did nothing ("execution-idle").
    pub execution_idle_s: f64,
    /// The energy of that execution-idle time.
    pub execution_idle_kwh: f64,
}

impl PieceValues {
    /// Add another piece (plain sums: a device has few pieces per grid row).
    #[inline]
    pub fn add(&mut self, o: &PieceValues) {
        self.duration_s += o.duration_s;
        self.uncovered_s += o.uncovered_s;
        self.energy_kwh += o.energy_kwh;
        self.facility_energy_kwh += o.facility_energy_kwh;
        self.operational_kg += o.operational_kg;
        self.operational_market_kg += o.operational_market_kg;
        self.embodied_kg += o.embodied_kg;
        self.busy_s += o.busy_s;
        self.execution_idle_s += o.execution_idle_s;
        self.execution_idle_kwh += o.execution_idle_kwh;
    }
}

impl PieceValues {
    /// The piece as (static, dynamic) parts: fraction `f` of its energy and
    /// of what is priced with it (operational carbon, execution-idle
    /// energy) is dynamic; time and embodied carbon are all static. The
    /// parts add up to the whole (the static part is the remainder).
    pub fn split_energy(&self, f: f64) -> (PieceValues, PieceValues) {
        let dynamic = PieceValues {
            duration_s: 0.0,
            uncovered_s: 0.0,
            energy_kwh: self.energy_kwh * f,
            facility_energy_kwh: self.facility_energy_kwh * f,
            operational_kg: self.operational_kg * f,
            operational_market_kg: self.operational_market_kg * f,
            embodied_kg: 0.0,
            busy_s: 0.0,
            execution_idle_s: 0.0,
            execution_idle_kwh: self.execution_idle_kwh * f,
        };
        let stat = PieceValues {
            energy_kwh: self.energy_kwh - dynamic.energy_kwh,
            facility_energy_kwh: self.facility_energy_kwh - dynamic.facility_energy_kwh,
            operational_kg: self.operational_kg - dynamic.operational_kg,
            operational_market_kg: self.operational_market_kg - dynamic.operational_market_kg,
            execution_idle_kwh: self.execution_idle_kwh - dynamic.execution_idle_kwh,
            ..*self
        };
        (stat, dynamic)
    }
}

/// Price `energy_j` measured over `duration_ns` (of which `uncovered_ns` were
/// not measured) on `device`, under grid row `grid` (`None`: a hole, priced at
/// zero here and reported by the coverage check), inside or outside the
/// amortization window.
pub fn price(
    energy_j: f64,
    duration_ns: i64,
    uncovered_ns: i64,
    device: &Device,
    grid: Option<Grid>,
    in_window: bool,
) -> PieceValues {
    let u = device.pue;
    let (c, f, r) = grid.map_or((0.0, 0.0, 0.0), |g| (g.c, g.cfe, g.residual));
    let embodied_kg = if in_window {
        let window_ns = (device.window.1 - device.window.0) as f64;
        device.embodied_kg * (duration_ns as f64 / window_ns)
    } else {
        0.0
    };
    PieceValues {
        duration_s: duration_ns as f64 / 1e9,
        uncovered_s: uncovered_ns as f64 / 1e9,
        energy_kwh: energy_j / J_PER_KWH,
        facility_energy_kwh: energy_j * u / J_PER_KWH,
        operational_kg: energy_j * u * c / J_G_PER_KWH_KG,
        operational_market_kg: energy_j * u * (1.0 - f) * r / J_G_PER_KWH_KG,
        embodied_kg,
        busy_s: 0.0,
        execution_idle_s: 0.0,
        execution_idle_kwh: 0.0,
    }
}
