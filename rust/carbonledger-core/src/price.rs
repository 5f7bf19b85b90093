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
    }
}
