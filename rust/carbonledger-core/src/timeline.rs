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

#[derive(Debug)]
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

/// How the allocations active on a device during one step share it. Each
/// active allocation takes `share x scale` of every piece in the step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepShares {
    /// How many allocations are active.
    pub active: u32,
    /// 1, or `1 / sum(shares)` where the shares sum above 1.
    pub scale: f64,
    /// `1 - sum(shares)`, at least 0: what goes to the unallocated bucket.
    pub leftover: f64,
    /// `1 / sum(utilizations)` of the active allocations, the weight of
    /// their dynamic energy under `attribution="utilization"`; 0 when they
    /// sum to 0 (or carry none): then the dynamic energy goes by share.
    pub util_scale: f64,
}

impl StepShares {
    /// No allocation active: everything is unallocated.
    pub const IDLE: Self = Self {
        active: 0,
        scale: 1.0,
        leftover: 1.0,
        util_scale: 0.0,
    };
}

/// One allocation on a device: its share and the steps `[first, end)` of
/// the device's timeline it is active in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub share: f64,
    /// The allocation's utilization under `attribution="utilization"`, else 0.
    pub util: f64,
    pub first: u32,
    pub end: u32,
}

impl Span {
    #[inline]
    pub fn contains(&self, step: usize) -> bool {
        (self.first as usize..self.end as usize).contains(&step)
    }
}

/// An allocation that becomes active (`opens`) or stops being active at
/// the start of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub local: u32,
    pub opens: bool,
}

/// A device's allocations as a timeline: per step only how the active ones
/// share it, and per step boundary only which allocations come and go, so
/// its size is linear in the allocations however many overlap.
#[derive(Debug)]
pub struct DeviceAllocations {
    pub steps: Steps<StepShares>,
    /// Global (input row) index of each local allocation.
    pub rows: Vec<u32>,
    /// Each local allocation's share and steps.
    pub spans: Vec<Span>,
    /// The edges at the start of step `s` are `edges[edge_at[s]..edge_at[s + 1]]`.
    edge_at: Vec<u32>,
    edges: Vec<Edge>,
}

impl DeviceAllocations {
    fn none() -> Self {
        Self {
            steps: Steps::single(StepShares::IDLE),
            rows: Vec::new(),
            spans: Vec::new(),
            edge_at: Vec::new(),
            edges: Vec::new(),
        }
    }

    /// The allocations that open or close at the start of `step`.
    #[inline]
    pub fn edges_at(&self, step: usize) -> &[Edge] {
        match self.edge_at.get(step..step + 2) {
            Some(&[a, b]) => &self.edges[a as usize..b as usize],
            _ => &[],
        }
    }

    /// The allocations active during `step` (a scan of all of them: for
    /// the few jumps of a device's timeline, not for each step).
    pub fn active_at(&self, step: usize) -> impl Iterator<Item = u32> + '_ {
        (0u32..)
            .zip(&self.spans)
            .filter(move |(_, s)| s.contains(step))
            .map(|(l, _)| l)
    }
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

/// Shares are summed in fixed point with this many fractional bits: exact
/// for every share above 2^-38 (and within 2^-91 for smaller ones), so the
/// running sum a step sees does not depend on the order allocations came
/// and went, and a step with none left sums to exactly 0. 2^32 allocations
/// of share 1 still fit an i128.
const SHARE_FRACTION_BITS: i32 = 90;
const SHARE_ONE: i128 = 1 << SHARE_FRACTION_BITS;

fn fixed_share(share: f64) -> i128 {
    (share * (SHARE_ONE as f64)).round() as i128
}

/// How a step with shares summing to `sum` and utilizations to
/// `util_sum` (both fixed point) is shared.
fn step_shares(active: u32, sum: i128, util_sum: i128) -> StepShares {
    if active == 0 {
        return StepShares::IDLE;
    }
    let one = SHARE_ONE as f64;
    let util_scale = if util_sum > 0 {
        one / util_sum as f64
    } else {
        0.0
    };
    if sum > SHARE_ONE {
        StepShares {
            active,
            scale: one / sum as f64,
            leftover: 0.0,
            util_scale,
        }
    } else {
        StepShares {
            active,
            scale: 1.0,
            leftover: (SHARE_ONE - sum) as f64 / one,
            util_scale,
        }
    }
}

/// The step that starts at `t`, one of the sorted distinct `edges`: step
/// `k + 1` starts at `edges[k]` (step 0 is everything before the first).
fn step_of(edges: &[i64], t: i64) -> u32 {
    edges.partition_point(|&e| e < t) as u32 + 1
}

/// Compile one device's allocations (`rows`, input row numbers) in
/// O(n log n): sort the edges once, then sweep them keeping the exact sum
/// of the active shares.
fn device_allocations(
    dev: u32,
    mut rows: Vec<u32>,
    allocations: &[Allocation],
    over: &mut Vec<OverAllocation>,
) -> DeviceAllocations {
    if rows.is_empty() {
        return DeviceAllocations::none();
    }
    // Local indices in start order: samples arrive in time order, so the
    // allocations they open (and mostly those they close) are neighbours in
    // memory, not scattered over the device's whole list.
    rows.sort_by_key(|&r| allocations[r as usize].start);
    let mut times: Vec<i64> = rows
        .iter()
        .flat_map(|&r| [allocations[r as usize].start, allocations[r as usize].end])
        .collect();
    times.sort_unstable();
    times.dedup();
    let n_steps = times.len() + 1;
    let spans: Vec<Span> = rows
        .iter()
        .map(|&r| {
            let a = &allocations[r as usize];
            Span {
                share: a.share,
                // 0 without weights: `close_books` uses it only with them.
                util: if a.utilization.is_nan() {
                    0.0
                } else {
                    a.utilization
                },
                first: step_of(&times, a.start),
                end: step_of(&times, a.end),
            }
        })
        .collect();

    // Counting sort of the edges by step; within a step, by local index.
    let mut edge_at = vec![0u32; n_steps + 1];
    for s in &spans {
        edge_at[s.first as usize + 1] += 1;
        edge_at[s.end as usize + 1] += 1;
    }
    for i in 1..edge_at.len() {
        edge_at[i] += edge_at[i - 1];
    }
    let mut fill = edge_at.clone();
    let mut edges = vec![
        Edge {
            local: 0,
            opens: false
        };
        2 * spans.len()
    ];
    for (l, s) in (0u32..).zip(&spans) {
        for (step, opens) in [(s.first, true), (s.end, false)] {
            let at = &mut fill[step as usize];
            edges[*at as usize] = Edge { local: l, opens };
            *at += 1;
        }
    }

    let mut steps = Steps {
        bounds: Vec::with_capacity(n_steps + 1),
        vals: Vec::with_capacity(n_steps),
    };
    steps.push(i64::MIN, StepShares::IDLE);
    let (mut active, mut sum, mut util_sum) = (0u32, 0i128, 0i128);
    for (k, &t) in times.iter().enumerate() {
        let step = k + 1;
        for e in &edges[edge_at[step] as usize..edge_at[step + 1] as usize] {
            let span = &spans[e.local as usize];
            let share = fixed_share(span.share);
            let util = fixed_share(span.util);
            if e.opens {
                active += 1;
                sum += share;
                util_sum += util;
            } else {
                active -= 1;
                sum -= share;
                util_sum -= util;
            }
        }
        let shares = step_shares(active, sum, util_sum);
        if sum > SHARE_ONE {
            let sum = sum as f64 / SHARE_ONE as f64;
            if sum > 1.0 + SHARE_TOLERANCE {
                over.push(OverAllocation {
                    device: dev,
                    start: t,
                    end: times.get(k + 1).copied().unwrap_or(i64::MAX),
                    sum,
                });
            }
        }
        steps.push(t, shares);
    }
    debug_assert_eq!(active, 0, "every allocation ends");
    DeviceAllocations {
        steps,
        rows,
        spans,
        edge_at,
        edges,
    }
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
    let timelines = (0u32..)
        .zip(rows_of)
        .map(|(dev, rows)| device_allocations(dev, rows, allocations, &mut over))
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
                utilization: f64::NAN,
            },
            Allocation {
                device: 0,
                start: 5,
                end: 15,
                share: 0.5,
                utilization: f64::NAN,
            },
        ];
        let (t, over) = build_allocations(1, &a);
        assert!(over.is_empty());
        let s = &t[0].steps;
        assert_eq!(s.bounds, vec![i64::MIN, 0, 5, 10, 15, i64::MAX]);
        assert_eq!(s.vals[1].leftover, 0.5);
        assert_eq!(s.vals[2].leftover, 0.0);
        assert_eq!(s.vals[2].active, 2);
        assert_eq!(s.vals[4], StepShares::IDLE);
        let d = &t[0];
        assert_eq!(
            d.spans,
            vec![
                Span {
                    share: 0.5,
                    util: 0.0,
                    first: 1,
                    end: 3
                },
                Span {
                    share: 0.5,
                    util: 0.0,
                    first: 2,
                    end: 4
                }
            ]
        );
        let opens = |local, opens| Edge { local, opens };
        assert_eq!(d.edges_at(1), [opens(0, true)]);
        assert_eq!(d.edges_at(3), [opens(0, false)]);
        assert_eq!(d.edges_at(4), [opens(1, false)]);
        assert_eq!(d.edges_at(0), []);
        assert_eq!(d.edges_at(5), []);
        assert_eq!(d.active_at(2).collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn shares_sum_exactly_whatever_the_order() {
        // Ten shares of 0.1 summed in floating point give 0.9999999999999999;
        // their exact sum is just above 1, which is rounding: no leftover,
        // no error. Coming and going in any order leaves exactly 0.
        let a: Vec<Allocation> = (0..10)
            .map(|i| Allocation {
                device: 0,
                start: i,
                end: 100 - i,
                share: 0.1,
                utilization: f64::NAN,
            })
            .collect();
        let (t, over) = build_allocations(1, &a);
        assert!(over.is_empty());
        let full = &t[0].steps.vals[10];
        assert_eq!((full.active, full.leftover), (10, 0.0));
        assert_eq!(t[0].steps.vals[11].active, 9);
        assert_eq!(*t[0].steps.vals.last().unwrap(), StepShares::IDLE);
    }

    #[test]
    fn over_allocation_is_found_per_step() {
        let a: Vec<Allocation> = (0..3)
            .map(|i| Allocation {
                device: 0,
                start: i * 10,
                end: 100,
                share: 0.5,
                utilization: f64::NAN,
            })
            .collect();
        let (t, over) = build_allocations(1, &a);
        let spans: Vec<_> = over.iter().map(|o| (o.start, o.end, o.sum)).collect();
        assert_eq!(spans, vec![(20, 100, 1.5)]);
        assert_eq!(t[0].steps.vals[3].scale, 1.0 / 1.5);
        assert_eq!(t[0].steps.vals[3].leftover, 0.0);
    }
}
