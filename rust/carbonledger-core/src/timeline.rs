//! Per-region grid timelines and per-device allocation timelines: sorted,
//! disjoint steps covering all of time, so a device's ledger can walk them
//! with a moving index and find the next boundary in O(1).

use crate::error::{Error, ErrorKind, Problems, Result};
use crate::ids::KeyIndex;
use crate::inputs::{Allocation, Fleet, GridRow};
use crate::schema::fmt_ts;

/// Shares summing up to this much above 1 are rounding, scaled silently.
pub const SHARE_TOLERANCE: f64 = 1e-9;

/// A step function over all of time: value `vals[i]` on `[bounds[i], bounds[i+1])`,
/// with `bounds[0] = i64::MIN` and `bounds[n] = i64::MAX`.
#[derive(Debug, Clone)]
pub struct Steps<T> {
    pub bounds: Vec<i64>,
    pub vals: Vec<T>,
}

impl<T> Steps<T> {
    fn single(v: T) -> Self {
        Self {
            bounds: vec![i64::MIN, i64::MAX],
            vals: vec![v],
        }
    }

    fn push(&mut self, start: i64, v: T) {
        // Callers push in increasing `start`; the last bound closes the final step.
        if self.bounds.is_empty() {
            self.bounds.push(start);
        } else {
            *self.bounds.last_mut().expect("bounds not empty") = start;
        }
        self.vals.push(v);
        self.bounds.push(i64::MAX);
    }

    /// Index of the step holding `t`.
    pub fn locate(&self, t: i64) -> usize {
        let i = self.bounds.partition_point(|&b| b <= t);
        i.saturating_sub(1).min(self.vals.len() - 1)
    }
}

/// The grid values of one step: `None` where the region has no row (a hole).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    pub c: f64,
    pub cfe: f64,
    pub residual: f64,
}

pub struct RegionGrid {
    pub steps: Steps<Option<Grid>>,
    /// Ranges where two rows overlap: an error when they meet the period.
    pub overlaps: Vec<(i64, i64)>,
}

/// Build each region's grid timeline from its rows (SPEC 2: a null `end` is
/// the next row's start; the last row lasts as long as the one before it; a
/// region's only row never ends).
pub fn build_grids(fleet: &Fleet) -> Vec<RegionGrid> {
    let mut by_region: Vec<Vec<GridRow>> = vec![Vec::new(); fleet.regions.len()];
    for r in &fleet.grid_rows {
        by_region[r.region as usize].push(*r);
    }
    by_region
        .into_iter()
        .map(|mut rows| {
            rows.sort_by_key(|r| r.start);
            let n = rows.len();
            let mut ends = Vec::with_capacity(n);
            for i in 0..n {
                let end = match rows[i].end {
                    Some(e) => e,
                    None if i + 1 < n => rows[i + 1].start,
                    None if i == 0 => i64::MAX,
                    None => {
                        let prev: i64 = ends[i - 1];
                        let len = prev.saturating_sub(rows[i - 1].start);
                        rows[i].start.saturating_add(len)
                    }
                };
                ends.push(end);
            }
            let mut steps = Steps {
                bounds: Vec::new(),
                vals: Vec::new(),
            };
            steps.push(i64::MIN, None);
            let mut overlaps = Vec::new();
            let mut covered_to = i64::MIN;
            let mut prev_start = None;
            for (r, &end) in rows.iter().zip(&ends) {
                if prev_start == Some(r.start) {
                    overlaps.push((r.start, end.max(covered_to).max(r.start + 1)));
                } else if r.start < covered_to {
                    overlaps.push((r.start, end.min(covered_to)));
                }
                let from = r.start.max(covered_to);
                if r.start > covered_to {
                    // a hole up to this row (or the open past before the first)
                    if covered_to != i64::MIN {
                        steps.push(covered_to, None);
                    }
                }
                if end > from {
                    steps.push(
                        from,
                        Some(Grid {
                            c: r.gco2e_per_kwh,
                            cfe: r.cfe,
                            residual: r.residual,
                        }),
                    );
                    covered_to = end;
                }
                prev_start = Some(r.start);
            }
            if covered_to != i64::MAX {
                steps.push(covered_to.max(i64::MIN + 1), None);
            }
            RegionGrid { steps, overlaps }
        })
        .collect()
}

/// Check that every region used by a device has exactly one grid row at every
/// instant of `[p0, p1)`.
pub fn check_grid_coverage(
    grids: &[RegionGrid],
    used: &[bool],
    regions: &KeyIndex,
    p0: i64,
    p1: i64,
) -> Result<()> {
    let mut p = Problems::default();
    check_grid_coverage_all(grids, used, regions, p0, p1, &mut p);
    p.first()
}

/// Note every overlap and every hole of a used region's grid inside `[p0, p1)`.
pub fn check_grid_coverage_all(
    grids: &[RegionGrid],
    used: &[bool],
    regions: &KeyIndex,
    p0: i64,
    p1: i64,
    p: &mut Problems,
) {
    for (ri, g) in grids.iter().enumerate() {
        if !used[ri] {
            continue;
        }
        let name = regions.name(ri);
        for (a, b) in g.overlaps.iter().filter(|(a, b)| *a < p1 && *b > p0) {
            p.note(Error::new(
                ErrorKind::Coverage,
                format!(
                    "table 'intensity', column 'start': rows of region {name} overlap in [{}, {}); expected one row at each instant",
                    fmt_ts(*a),
                    fmt_ts(*b)
                ),
            ));
        }
        let s = &g.steps;
        let mut i = s.locate(p0);
        while i < s.vals.len() && s.bounds[i] < p1 {
            if s.vals[i].is_none() {
                let (a, b) = (s.bounds[i].max(p0), s.bounds[i + 1].min(p1));
                p.note(Error::new(
                    ErrorKind::Coverage,
                    format!(
                        "table 'intensity': region {name} has no grid intensity row for [{}, {}) inside the period [{}, {}); expected rows covering every instant",
                        fmt_ts(a),
                        fmt_ts(b),
                        fmt_ts(p0),
                        fmt_ts(p1)
                    ),
                ));
            }
            i += 1;
        }
    }
}

/// Allocations active on a device during one step, shares already scaled
/// when they summed above 1.
#[derive(Debug, Clone, Default)]
pub struct Active {
    /// (local allocation index on the device, share)
    pub members: Vec<(u32, f64)>,
    /// `1 - sum(shares)`: what goes to the unallocated bucket.
    pub leftover: f64,
}

pub struct DeviceAllocations {
    pub steps: Steps<Active>,
    /// Global (input row) index of each local allocation.
    pub rows: Vec<u32>,
}

/// A step where shares sum above 1 + tolerance (an error inside the period
/// unless `overlap="normalize"`).
#[derive(Debug, Clone)]
pub struct OverAllocation {
    pub device: u32,
    pub start: i64,
    pub end: i64,
    pub sum: f64,
}

pub fn build_allocations(
    n_devices: usize,
    allocations: &[Allocation],
) -> (Vec<DeviceAllocations>, Vec<OverAllocation>) {
    let mut rows_of: Vec<Vec<u32>> = vec![Vec::new(); n_devices];
    for (i, a) in allocations.iter().enumerate() {
        rows_of[a.device as usize].push(i as u32);
    }
    let mut over = Vec::new();
    let timelines = rows_of
        .into_iter()
        .enumerate()
        .map(|(dev, rows)| {
            if rows.is_empty() {
                return DeviceAllocations {
                    steps: Steps::single(Active {
                        members: Vec::new(),
                        leftover: 1.0,
                    }),
                    rows,
                };
            }
            let mut edges: Vec<i64> = rows
                .iter()
                .flat_map(|&r| [allocations[r as usize].start, allocations[r as usize].end])
                .collect();
            edges.sort_unstable();
            edges.dedup();
            let mut by_start: Vec<u32> = (0..rows.len() as u32).collect();
            by_start.sort_by_key(|&l| allocations[rows[l as usize] as usize].start);
            let mut steps = Steps {
                bounds: Vec::new(),
                vals: Vec::new(),
            };
            steps.push(
                i64::MIN,
                Active {
                    members: Vec::new(),
                    leftover: 1.0,
                },
            );
            let mut active: Vec<u32> = Vec::new();
            let mut next = 0;
            for w in edges.windows(2) {
                let (t, t_next) = (w[0], w[1]);
                active.retain(|&l| allocations[rows[l as usize] as usize].end > t);
                while next < by_start.len()
                    && allocations[rows[by_start[next] as usize] as usize].start <= t
                {
                    active.push(by_start[next]);
                    next += 1;
                }
                active.sort_unstable();
                let sum: f64 = active
                    .iter()
                    .map(|&l| allocations[rows[l as usize] as usize].share)
                    .sum();
                let scale = if sum > 1.0 {
                    if sum > 1.0 + SHARE_TOLERANCE {
                        over.push(OverAllocation {
                            device: dev as u32,
                            start: t,
                            end: t_next,
                            sum,
                        });
                    }
                    1.0 / sum
                } else {
                    1.0
                };
                let members: Vec<(u32, f64)> = active
                    .iter()
                    .map(|&l| (l, allocations[rows[l as usize] as usize].share * scale))
                    .collect();
                let leftover = if sum >= 1.0 { 0.0 } else { 1.0 - sum };
                steps.push(t, Active { members, leftover });
            }
            steps.push(
                *edges.last().expect("allocations have edges"),
                Active {
                    members: Vec::new(),
                    leftover: 1.0,
                },
            );
            DeviceAllocations { steps, rows }
        })
        .collect();
    (timelines, over)
}

/// Over-allocation inside `[p0, p1)` is an error unless normalizing.
pub fn check_overallocation(
    over: &[OverAllocation],
    ids: &KeyIndex,
    p0: i64,
    p1: i64,
) -> Result<()> {
    let mut p = Problems::default();
    check_overallocation_all(over, ids, p0, p1, &mut p);
    p.first()
}

/// Note every span inside `[p0, p1)` where a device's shares sum above 1.
pub fn check_overallocation_all(
    over: &[OverAllocation],
    ids: &KeyIndex,
    p0: i64,
    p1: i64,
    p: &mut Problems,
) {
    for o in over.iter().filter(|o| o.start < p1 && o.end > p0) {
        p.note(Error::new(
            ErrorKind::Overlap,
            format!(
                "table 'allocations', column 'share': allocations on device_id {} sum to share {} in [{}, {}); expected at most 1 (pass overlap=\"normalize\" to scale them)",
                ids.name(o.device as usize),
                o.sum,
                fmt_ts(o.start.max(p0)),
                fmt_ts(o.end.min(p1))
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_locate() {
        let mut s = Steps {
            bounds: Vec::new(),
            vals: Vec::new(),
        };
        s.push(i64::MIN, 0);
        s.push(10, 1);
        s.push(20, 2);
        assert_eq!(s.bounds, vec![i64::MIN, 10, 20, i64::MAX]);
        assert_eq!(s.locate(-5), 0);
        assert_eq!(s.locate(10), 1);
        assert_eq!(s.locate(19), 1);
        assert_eq!(s.locate(20), 2);
    }

    #[test]
    fn allocation_steps_and_leftover() {
        let a = vec![
            Allocation {
                device: 0,
                start: 0,
                end: 10,
                share: 0.5,
            },
            Allocation {
                device: 0,
                start: 5,
                end: 15,
                share: 0.5,
            },
        ];
        let (t, over) = build_allocations(1, &a);
        assert!(over.is_empty());
        let s = &t[0].steps;
        assert_eq!(s.bounds, vec![i64::MIN, 0, 5, 10, 15, i64::MAX]);
        assert_eq!(s.vals[1].leftover, 0.5);
        assert_eq!(s.vals[2].leftover, 0.0);
        assert_eq!(s.vals[2].members.len(), 2);
        assert_eq!(s.vals[4].leftover, 1.0);
    }
}
