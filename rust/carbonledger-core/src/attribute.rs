//! Splitting priced pieces between the allocations active on a device (by
//! share) and the device's unallocated bucket (what the shares leave over).

use crate::kbn::Kbn;
use crate::price::PieceValues;
use crate::timeline::Active;

/// Compensated running totals of the metric columns.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub duration_s: Kbn,
    pub uncovered_s: Kbn,
    pub energy_kwh: Kbn,
    pub facility_energy_kwh: Kbn,
    pub operational_kg: Kbn,
    pub operational_market_kg: Kbn,
    pub embodied_kg: Kbn,
}

impl Metrics {
    /// Add all of `v`.
    #[inline]
    pub fn add_all(&mut self, v: &PieceValues) {
        self.add(v, 1.0, 1.0);
    }

    /// Add `v`, its time columns weighted by `time_weight` and the others by `weight`.
    #[inline]
    fn add(&mut self, v: &PieceValues, time_weight: f64, weight: f64) {
        self.duration_s.add(v.duration_s * time_weight);
        self.uncovered_s.add(v.uncovered_s * time_weight);
        self.energy_kwh.add(v.energy_kwh * weight);
        self.facility_energy_kwh.add(v.facility_energy_kwh * weight);
        self.operational_kg.add(v.operational_kg * weight);
        self.operational_market_kg
            .add(v.operational_market_kg * weight);
        self.embodied_kg.add(v.embodied_kg * weight);
    }
}

/// What a device booked under one row of its region's grid (the `grid`
/// output). Pieces arrive in time order but for the leading uncovered span,
/// so consecutive pieces under one row share a cell.
#[derive(Debug, Clone, Copy)]
pub struct GridCell {
    /// Index of the step in the region's grid timeline.
    pub step: u32,
    pub values: PieceValues,
}

/// The books of one device: its whole, each of its allocations, the rest,
/// and its pieces by grid row.
#[derive(Debug, Clone, Default)]
pub struct DeviceAccounts {
    pub device: Metrics,
    pub unallocated: Metrics,
    /// Indexed by the allocation's local index on the device.
    pub allocations: Vec<Metrics>,
    pub grid: Vec<GridCell>,
}

impl DeviceAccounts {
    pub fn new(n_allocations: usize) -> Self {
        Self {
            allocations: vec![Metrics::default(); n_allocations],
            ..Default::default()
        }
    }

    /// Book one piece: allocations get their share of the metrics and all of
    /// the piece's time (SPEC 9); the unallocated bucket gets the leftover of both.
    pub fn book(&mut self, v: &PieceValues, active: &Active, grid_step: u32) {
        self.device.add(v, 1.0, 1.0);
        match self.grid.last_mut() {
            Some(cell) if cell.step == grid_step => cell.values.add(v),
            _ => self.grid.push(GridCell {
                step: grid_step,
                values: *v,
            }),
        }
        for &(local, share) in &active.members {
            self.allocations[local as usize].add(v, 1.0, share);
        }
        if active.leftover > 0.0 {
            self.unallocated.add(v, active.leftover, active.leftover);
        }
    }
}
