//! Grid and allocation timelines (`timeline`) against a brute-force model
//! on a small grid of instants: intensity rows with and without `end`,
//! overlapping, leaving holes, sharing a start; allocations with shares,
//! overlapping, adjacent, nested; coverage and over-allocation checks over
//! any period. Instants are `base + k x unit` for small `k`, at the epoch,
//! today, and the end of the accepted era, in units from 1 ns to days.
#![no_main]

use std::sync::{Arc, OnceLock};

use arrow_array::{ArrayRef, StringArray};
use carbonledger_core::ids::KeyIndex;
use carbonledger_core::inputs::{Allocation, Device, Fleet, GridRow};
use carbonledger_core::schema::ERA_NS;
use carbonledger_core::timeline::{
    build_allocations, build_grids, check_grid_coverage, check_overallocation, Steps,
    SHARE_TOLERANCE,
};
use carbonledger_core::Table;
use carbonledger_fuzz::arrow::{batch, float_column, time_column, T0};
use carbonledger_fuzz::cases::TimelineCase;
use carbonledger_fuzz::check::check_error;
use carbonledger_fuzz::gene::Gene;
use libfuzzer_sys::fuzz_target;

/// Instants `0..=K` of the small grid.
const K: i64 = 48;

const SHARES: [f64; 12] = [
    1.0,
    0.5,
    0.25,
    1.0 / 3.0,
    0.1,
    0.7,
    1e-9,
    0.999_999_999,
    1.0 - 1e-16,
    0.3,
    0.6,
    0.2,
];

/// Two devices at two sites in regions r0 and r1, compiled once.
fn template() -> &'static (KeyIndex, Vec<Device>, KeyIndex) {
    static T: OnceLock<(KeyIndex, Vec<Device>, KeyIndex)> = OnceLock::new();
    T.get_or_init(|| {
        let s = |v: &[&str]| Arc::new(StringArray::from(v.to_vec())) as ArrayRef;
        let t = |name: &'static str, b: arrow_array::RecordBatch| {
            Table::new(name, &b.schema(), &[b]).expect("table")
        };
        let devices = t(
            "devices",
            batch(vec![
                ("device_id", s(&["d0", "d1"])),
                ("site_id", s(&["s0", "s1"])),
                ("embodied_kgco2e", float_column(0, &[Some(1.0); 2])),
                ("installed_at", time_column(7, &[Some(T0); 2])),
                ("lifetime_years", float_column(0, &[Some(4.0); 2])),
            ]),
        );
        let sites = t(
            "sites",
            batch(vec![
                ("site_id", s(&["s0", "s1"])),
                ("region", s(&["r0", "r1"])),
                ("pue", float_column(0, &[Some(1.0); 2])),
            ]),
        );
        let intensity = t(
            "intensity",
            batch(vec![
                ("region", s(&["r0"])),
                ("start", time_column(7, &[Some(T0)])),
                ("gco2e_per_kwh", float_column(0, &[Some(1.0)])),
            ]),
        );
        let f = Fleet::compile(&devices, &sites, &intensity, None).expect("template fleet");
        (f.device_ids, f.devices, f.regions)
    })
}

fuzz_target!(|data: &[u8]| {
    let c = TimelineCase::read(data);
    let unit: i64 = [
        1,
        1_000,
        1_000_000_000,
        3_600_000_000_000,
        86_400_000_000_000,
    ][usize::from(c.unit) % 5];
    let base = [ERA_NS.0, T0, ERA_NS.1 - 1 - (K + 1) * unit][usize::from(c.base) % 3];
    let at = |k: i64| base + k * unit;
    let kk = |v: u8| i64::from(v) % (K + 1);

    // Intensity rows: start, optional end after it, intensity = row number.
    let rows: Vec<GridRow> = c
        .rows
        .0
        .iter()
        .map(|r| GridRow {
            region: u32::from(r.region),
            start: at(kk(r.start) % K),
            end: r.len.map(|l| at((kk(r.start) % K + 1 + kk(l) % 12).min(K))),
            gco2e_per_kwh: f64::from(r.c),
            cfe: 0.0,
            residual: f64::from(r.c),
        })
        .collect();
    let (device_ids, devices, regions) = template();
    let fleet = Fleet {
        device_ids: device_ids.clone(),
        devices: devices.clone(),
        regions: regions.clone(),
        grid_rows: rows.clone(),
        allocations: Vec::new(),
    };
    let grids = build_grids(&fleet);
    assert_eq!(grids.len(), 2);
    let (p0k, p1k) = (kk(c.p0), kk(c.p1));
    let (p0, p1) = (at(p0k), at(p1k));

    for (ri, g) in grids.iter().enumerate() {
        check_steps(&g.steps);
        // The model: each row's end (SPEC 2), then who covers each instant.
        let mut mine: Vec<&GridRow> = rows.iter().filter(|r| r.region as usize == ri).collect();
        mine.sort_by_key(|r| r.start);
        let mut ends: Vec<i64> = Vec::new();
        for (i, r) in mine.iter().enumerate() {
            let end = match r.end {
                Some(e) => e,
                None if i + 1 < mine.len() => mine[i + 1].start,
                None if i == 0 => i64::MAX,
                None => r.start.saturating_add(ends[i - 1] - mine[i - 1].start),
            };
            ends.push(end);
        }
        let shared_start = mine.windows(2).any(|w| w[0].start == w[1].start);
        let mut model_error = false;
        for k in 0..=K {
            let t = at(k);
            let covering: Vec<usize> = (0..mine.len())
                .filter(|&i| mine[i].start <= t && t < ends[i])
                .collect();
            let step = g.steps.vals[g.steps.locate(t)];
            if covering.len() == 1 && !shared_start {
                // Exactly one row: the step carries its values.
                let want = mine[covering[0]].gco2e_per_kwh;
                let overlapped = g.overlaps.iter().any(|(a, b)| *a <= t && t < *b);
                if !overlapped {
                    assert_eq!(step.map(|s| s.c), Some(want), "region {ri} at k={k}");
                }
            }
            if covering.is_empty() {
                assert!(step.is_none(), "region {ri} at k={k}: a value in a hole");
            }
            if (p0k..p1k).contains(&k) && covering.len() != 1 {
                model_error = true;
            }
        }
        // Coverage over [p0, p1) for this region alone.
        let used = [ri == 0, ri == 1];
        if p0 < p1 {
            match check_grid_coverage(&grids, &used, regions, p0, p1) {
                Ok(()) => assert!(!model_error, "region {ri}: a hole or overlap missed"),
                Err(e) => {
                    check_error(&e);
                    assert!(
                        model_error || shared_start,
                        "region {ri}: coverage error on a covered period: {e:?}"
                    );
                }
            }
        }
    }

    // Allocations: membership, scale and leftover per step; over-allocation.
    let jobs: Vec<Allocation> = c
        .jobs
        .0
        .iter()
        .map(|j| {
            let s = kk(j.start) % K;
            Allocation {
                device: u32::from(j.device),
                start: at(s),
                end: at((s + 1 + kk(j.len) % 16).min(K)),
                share: SHARES[usize::from(j.share) % SHARES.len()],
                utilization: f64::NAN,
            }
        })
        .collect();
    let (timelines, over) = build_allocations(2, &jobs);
    assert_eq!(timelines.len(), 2);
    let mut model_over = false;
    let mut near_tolerance = false;
    for (d, tl) in timelines.iter().enumerate() {
        check_steps(&tl.steps);
        // Allocations by input row: `rows` maps the timeline's own
        // (local) indices back to them.
        let local: Vec<(u32, &Allocation)> = (0u32..)
            .zip(&jobs)
            .filter(|(_, a)| a.device as usize == d)
            .collect();
        assert_eq!(tl.rows.len(), local.len());
        for k in 0..=K {
            let t = at(k);
            let active: Vec<u32> = local
                .iter()
                .filter(|(_, a)| a.start <= t && t < a.end)
                .map(|(row, _)| *row)
                .collect();
            let sum: f64 = active.iter().map(|&r| jobs[r as usize].share).sum();
            let step = tl.steps.locate(t);
            let mut got: Vec<u32> = tl.active_at(step).map(|l| tl.rows[l as usize]).collect();
            got.sort_unstable();
            assert_eq!(
                got, active,
                "device {d} at k={k} (step {step} of {:?}): active allocations of {local:?}",
                tl.steps.bounds
            );
            let sh = tl.steps.vals[step];
            assert_eq!(sh.active as usize, active.len());
            let (scale, leftover) = if sum > 1.0 {
                (1.0 / sum, 0.0)
            } else {
                (1.0, 1.0 - sum)
            };
            if !active.is_empty() {
                assert!((sh.scale - scale).abs() <= 1e-12, "scale {sh:?} vs {scale}");
            }
            assert!(
                (sh.leftover - leftover).abs() <= 1e-12,
                "device {d} at k={k}: leftover {} vs {leftover}",
                sh.leftover
            );
            if (p0k..p1k).contains(&k) {
                model_over |= sum > 1.0 + SHARE_TOLERANCE;
                near_tolerance |= (sum - (1.0 + SHARE_TOLERANCE)).abs() < 1e-12;
            }
        }
    }
    if p0 < p1 && !near_tolerance {
        match check_overallocation(&over, device_ids, p0, p1) {
            Ok(()) => assert!(!model_over, "an over-allocation missed"),
            Err(e) => {
                check_error(&e);
                assert!(
                    model_over,
                    "over-allocation reported where shares fit: {e:?}"
                );
            }
        }
    }
});

/// A step function covers all of time with sorted steps. (A grid may hold
/// an empty step where a row of no length meets a hole: harmless, as
/// `locate` never lands in it; see docs/fuzzing.md.)
fn check_steps<T>(s: &Steps<T>) {
    assert_eq!(s.bounds.len(), s.vals.len() + 1, "bounds and values");
    assert_eq!(s.bounds.first(), Some(&i64::MIN));
    assert_eq!(s.bounds.last(), Some(&i64::MAX));
    for w in s.bounds.windows(2) {
        assert!(w[0] <= w[1], "steps out of order: {:?}", s.bounds);
    }
}
