//! Splitting priced pieces between the allocations active on a device (by
//! share) and the device's unallocated bucket (what the shares leave over).
//!
//! Splitting every piece among the k allocations in flight would cost O(k)
//! a piece, quadratic when thousands overlap. Instead each piece is added
//! once to the device's running totals (its metric columns weighted by the
//! step's scale), and an allocation takes the difference of those totals
//! between when it opens and when it closes: O(1) a piece plus O(1) an
//! allocation edge. The totals are compensated sums and their difference is
//! taken word by word, so its error is of the order of eps^2 times the
//! device's total, far below eps times the allocation's own value; the
//! allocation's share multiplies the difference once, when the books close.

use crate::kbn::Kbn;
use crate::price::PieceValues;
use crate::timeline::DeviceAllocations;

/// Compensated running totals of the metric columns.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub duration_s: Kbn,
    pub uncovered_s: Kbn,
    pub busy_s: Kbn,
    pub execution_idle_s: Kbn,
    pub energy_kwh: Kbn,
    pub facility_energy_kwh: Kbn,
    pub operational_kg: Kbn,
    pub operational_market_kg: Kbn,
    pub embodied_kg: Kbn,
    pub execution_idle_kwh: Kbn,
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
        self.busy_s.add(v.busy_s * time_weight);
        self.execution_idle_s.add(v.execution_idle_s * time_weight);
        self.energy_kwh.add(v.energy_kwh * weight);
        self.facility_energy_kwh.add(v.facility_energy_kwh * weight);
        self.operational_kg.add(v.operational_kg * weight);
        self.operational_market_kg
            .add(v.operational_market_kg * weight);
        self.embodied_kg.add(v.embodied_kg * weight);
        self.execution_idle_kwh.add(v.execution_idle_kwh * weight);
    }

    /// How many of the columns (first, in `columns` order) are time, not
    /// weighted by an allocation's share.
    const TIME_COLUMNS: usize = 4;

    fn columns_mut(&mut self) -> [&mut Kbn; 10] {
        [
            &mut self.duration_s,
            &mut self.uncovered_s,
            &mut self.busy_s,
            &mut self.execution_idle_s,
            &mut self.energy_kwh,
            &mut self.facility_energy_kwh,
            &mut self.operational_kg,
            &mut self.operational_market_kg,
            &mut self.embodied_kg,
            &mut self.execution_idle_kwh,
        ]
    }

    fn columns(&self) -> [&Kbn; 10] {
        [
            &self.duration_s,
            &self.uncovered_s,
            &self.busy_s,
            &self.execution_idle_s,
            &self.energy_kwh,
            &self.facility_energy_kwh,
            &self.operational_kg,
            &self.operational_market_kg,
            &self.embodied_kg,
            &self.execution_idle_kwh,
        ]
    }

    /// Add the running totals `o` (when an allocation closes).
    #[inline]
    fn add_totals(&mut self, o: &Metrics) {
        for (m, t) in self.columns_mut().into_iter().zip(o.columns()) {
            m.add_sum(t);
        }
    }

    /// Subtract the running totals `o` (when an allocation opens).
    #[inline]
    fn sub_totals(&mut self, o: &Metrics) {
        for (m, t) in self.columns_mut().into_iter().zip(o.columns()) {
            m.sub_sum(t);
        }
    }

    /// Add `o`'s metric columns weighted by `w` (the time columns of a
    /// dynamic-energy account are 0).
    fn add_metrics_scaled(&mut self, o: &Metrics, w: f64) {
        for (m, t) in self
            .columns_mut()
            .into_iter()
            .zip(o.columns())
            .skip(Self::TIME_COLUMNS)
        {
            m.add_sum(&t.scaled(w));
        }
    }

    /// Weight the metric columns by `share`; the time columns are an
    /// allocation's whole time (SPEC 9).
    fn weight_metrics(&mut self, share: f64) {
        for m in self.columns_mut().into_iter().skip(Self::TIME_COLUMNS) {
            *m = m.scaled(share);
        }
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

/// Where booking stands on a device's allocation timeline. An allocation is
/// open exactly while `step` is one of its steps.
#[derive(Debug, Clone, Default)]
struct Sweep {
    /// Every piece booked in a step with an active allocation, its metric
    /// columns weighted by the step's scale.
    totals: Metrics,
    /// `attribution="utilization"`: the dynamic part of those pieces,
    /// weighted by the step's `util_scale` (each allocation takes its
    /// utilization times the difference).
    dyn_totals: Metrics,
    /// The step of the last such piece.
    step: Option<usize>,
}

impl Sweep {
    /// Move to `step`, opening and closing allocations on the way. Pieces
    /// come in time order, so this is a walk over the edges in between;
    /// only the leading uncovered span, booked last, jumps back (once).
    fn move_to(&mut self, step: usize, allocs: &DeviceAllocations, books: &mut Books<'_>) {
        match self.step {
            Some(at) if at == step => return,
            Some(at) if at < step => {
                for s in at + 1..=step {
                    for e in allocs.edges_at(s) {
                        self.edge(e.local as usize, e.opens, books);
                    }
                }
            }
            Some(at) => {
                self.close_all(at, allocs, books);
                self.open_all(step, allocs, books);
            }
            None => self.open_all(step, allocs, books),
        }
        self.step = Some(step);
    }

    /// An allocation opens (takes the totals off) or closes (adds them).
    #[inline]
    fn edge(&self, local: usize, opens: bool, books: &mut Books<'_>) {
        let m = &mut books.shared[local];
        let d = books.dynamic.get_mut(local);
        if opens {
            m.sub_totals(&self.totals);
            if let Some(d) = d {
                d.sub_totals(&self.dyn_totals);
            }
        } else {
            m.add_totals(&self.totals);
            if let Some(d) = d {
                d.add_totals(&self.dyn_totals);
            }
        }
    }

    fn open_all(&self, step: usize, allocs: &DeviceAllocations, books: &mut Books<'_>) {
        for l in allocs.active_at(step) {
            self.edge(l as usize, true, books);
        }
    }

    fn close_all(&self, step: usize, allocs: &DeviceAllocations, books: &mut Books<'_>) {
        for l in allocs.active_at(step) {
            self.edge(l as usize, false, books);
        }
    }
}

/// The allocations' running accounts a sweep updates: the shared part and,
/// under `attribution="utilization"`, the dynamic part (else empty).
struct Books<'a> {
    shared: &'a mut [Metrics],
    dynamic: &'a mut [Metrics],
}

/// The books of one device: its whole, each of its allocations, the rest,
/// and its pieces by grid row.
#[derive(Debug, Clone, Default)]
pub struct DeviceAccounts {
    pub device: Metrics,
    pub unallocated: Metrics,
    /// Indexed by the allocation's local index on the device. Final once
    /// the books are closed (`close_books`); until then each holds the
    /// device's running totals at its closes minus those at its opens.
    pub allocations: Vec<Metrics>,
    /// `attribution="utilization"`: each allocation's running account of
    /// the dynamic energy (empty otherwise, and after `close_books`).
    dynamic: Vec<Metrics>,
    pub grid: Vec<GridCell>,
    /// Made by the first piece booked while an allocation is active (boxed:
    /// the state of a million devices without stays small).
    sweep: Option<Box<Sweep>>,
    closed: bool,
}

impl DeviceAccounts {
    pub fn new(n_allocations: usize) -> Self {
        Self {
            allocations: vec![Metrics::default(); n_allocations],
            ..Default::default()
        }
    }

    /// Book one piece, in allocation step `step`: allocations get their
    /// share of the metrics and all of the piece's time (SPEC 9); the
    /// unallocated bucket gets the leftover of both. `dynamic`: under
    /// `attribution="utilization"`, the fraction of the piece's energy
    /// above the device's idle power, which goes to the active allocations
    /// by utilization instead (when their utilizations sum above 0).
    pub fn book(
        &mut self,
        v: &PieceValues,
        allocs: &DeviceAllocations,
        step: usize,
        grid_step: u32,
        dynamic: Option<f64>,
    ) {
        debug_assert!(!self.closed, "a piece booked after the books closed");
        self.device.add(v, 1.0, 1.0);
        match self.grid.last_mut() {
            Some(cell) if cell.step == grid_step => cell.values.add(v),
            _ => {
                if self.grid.capacity() == 0 {
                    // Over a short period a device books under one grid row:
                    // a first push would make room for four (256 bytes, a
                    // quarter GB for a million devices).
                    self.grid.reserve_exact(1);
                }
                self.grid.push(GridCell {
                    step: grid_step,
                    values: *v,
                });
            }
        }
        let shares = allocs.steps.vals[step];
        let split = match dynamic {
            Some(f) if f > 0.0 && shares.active > 0 && shares.util_scale > 0.0 => {
                Some(v.split_energy(f))
            }
            _ => None,
        };
        let (shared, dyn_part) = match &split {
            Some((stat, dynamic)) => (stat, Some(dynamic)),
            None => (v, None),
        };
        if shares.active > 0 {
            if dynamic.is_some() && self.dynamic.len() != self.allocations.len() {
                self.dynamic = vec![Metrics::default(); self.allocations.len()];
            }
            let sweep = self.sweep.get_or_insert_with(Box::default);
            let mut books = Books {
                shared: &mut self.allocations,
                dynamic: &mut self.dynamic,
            };
            sweep.move_to(step, allocs, &mut books);
            sweep.totals.add(shared, 1.0, shares.scale);
            if let Some(d) = dyn_part {
                sweep.dyn_totals.add(d, 0.0, shares.util_scale);
            }
        }
        if shares.leftover > 0.0 {
            self.unallocated
                .add(shared, shares.leftover, shares.leftover);
        }
    }

    /// After the last piece: close the allocations still open and weight
    /// each by its share (and its dynamic energy by its utilization).
    /// Idempotent.
    pub fn close_books(&mut self, allocs: &DeviceAllocations) {
        if self.closed {
            return;
        }
        self.closed = true;
        if let Some(sweep) = self.sweep.take() {
            if let Some(at) = sweep.step {
                let mut books = Books {
                    shared: &mut self.allocations,
                    dynamic: &mut self.dynamic,
                };
                sweep.close_all(at, allocs, &mut books);
            }
        }
        for (m, span) in self.allocations.iter_mut().zip(&allocs.spans) {
            m.weight_metrics(span.share);
        }
        let dynamic = std::mem::take(&mut self.dynamic);
        for ((m, d), span) in self.allocations.iter_mut().zip(&dynamic).zip(&allocs.spans) {
            m.add_metrics_scaled(d, span.util);
        }
    }

    /// Whether `close_books` has run: the allocations' metrics are final.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}
