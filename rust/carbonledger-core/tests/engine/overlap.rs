//! Thousands of allocations in flight on one device (inference requests as
//! allocations): every allocation and the unallocated bucket against an
//! independent second-by-second computation, conservation, and the same
//! bits whatever the threads and batches.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use carbonledger_core::{account, Inputs, Interpolation, Options, Output, Overlap, Table};

const S: i64 = 1_000_000_000;
/// 2025-01-01T00:00:00Z.
const T0: i64 = 1_735_689_600 * S;
/// The period is `[T0, T0 + PERIOD_S s)`.
const PERIOD_S: usize = 7200;
const PUE: f64 = 1.3;
const EMBODIED_KG: f64 = 1000.0;
const LIFETIME_S: f64 = 4.0 * 31_557_600.0;
const GRID_ROW_S: i64 = 600;
/// The first sample: the time before it is the leading uncovered span,
/// booked after the rest.
const FIRST_SAMPLE_S: i64 = 100;
/// No samples strictly inside this span: a gap longer than `max_gap`.
const HOLE_S: (i64, i64) = (3000, 3100);
const MAX_GAP_S: i64 = 30;

/// xorshift64*: a fixed stream of test values, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: i64) -> i64 {
        (self.next() % n as u64) as i64
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Job {
    /// Seconds after `T0`; may start before the period and end after it.
    start: i64,
    end: i64,
    share: f64,
}

struct Fleet {
    /// (seconds after `T0`, W), every 10 s but in the hole.
    samples: Vec<(i64, f64)>,
    /// (c, cfe) of each grid row, from `T0 - 3600 s`.
    grid: Vec<(f64, f64)>,
    jobs: Vec<Job>,
}

impl Fleet {
    fn new(n_jobs: usize, share: impl Fn(&mut Rng) -> f64) -> Self {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let samples = (FIRST_SAMPLE_S..=PERIOD_S as i64 + 20)
            .step_by(10)
            .filter(|t| !(HOLE_S.0 < *t && *t < HOLE_S.1))
            .map(|t| (t, 50.0 + 650.0 * rng.unit()))
            .collect();
        let grid = (0..24)
            .map(|_| (20.0 + 500.0 * rng.unit(), 0.6 * rng.unit()))
            .collect();
        let jobs = (0..n_jobs)
            .map(|_| {
                let start = rng.below(PERIOD_S as i64 + 200) - 200;
                let end = start + 1 + rng.below(3000);
                Job {
                    start,
                    end,
                    share: share(&mut rng),
                }
            })
            .collect();
        Self {
            samples,
            grid,
            jobs,
        }
    }

    fn grid_row(&self, t: i64) -> (f64, f64) {
        self.grid[((t + 3600) / GRID_ROW_S) as usize]
    }
}

// --- the engine --------------------------------------------------------------

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

fn ts_col(v: impl IntoIterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from_iter_values(v).with_timezone("UTC"))
}

fn str_col(v: impl IntoIterator<Item = String>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(v))
}

fn f64_col(v: impl IntoIterator<Item = f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(v))
}

fn table(name: &'static str, cols: Vec<(&str, ArrayRef)>) -> Table {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), false))
        .collect();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        cols.into_iter().map(|(_, a)| a).collect(),
    )
    .expect("batch");
    Table::new(name, &batch.schema(), &[batch]).expect("table")
}

fn power_schema() -> Schema {
    Schema::new(vec![
        Field::new("device_id", DataType::Utf8, false),
        Field::new("ts", ts_type(), false),
        Field::new("power_w", DataType::Float64, false),
    ])
}

/// Account `fleet`, its samples cut into batches of `batch_rows`.
fn run(fleet: &Fleet, normalize: bool, threads: usize, batch_rows: usize) -> Output {
    let secs = |t: i64| T0 + t * S;
    let devices = table(
        "devices",
        vec![
            ("device_id", str_col(["g0".to_string()])),
            ("site_id", str_col(["s0".to_string()])),
            ("embodied_kgco2e", f64_col([EMBODIED_KG])),
            ("installed_at", ts_col([T0 - 100 * 86_400 * S])),
            ("lifetime_years", f64_col([4.0])),
        ],
    );
    let sites = table(
        "sites",
        vec![
            ("site_id", str_col(["s0".to_string()])),
            ("region", str_col(["R".to_string()])),
            ("pue", f64_col([PUE])),
        ],
    );
    let n_rows = fleet.grid.len() as i64;
    let intensity = table(
        "intensity",
        vec![
            ("region", str_col((0..n_rows).map(|_| "R".to_string()))),
            (
                "start",
                ts_col((0..n_rows).map(|k| secs(k * GRID_ROW_S - 3600))),
            ),
            (
                "end",
                ts_col((0..n_rows).map(|k| secs((k + 1) * GRID_ROW_S - 3600))),
            ),
            ("gco2e_per_kwh", f64_col(fleet.grid.iter().map(|g| g.0))),
            ("cfe", f64_col(fleet.grid.iter().map(|g| g.1))),
        ],
    );
    let jobs = &fleet.jobs;
    let allocations = table(
        "allocations",
        vec![
            ("job_id", str_col((0..jobs.len()).map(|i| format!("j{i}")))),
            ("device_id", str_col(jobs.iter().map(|_| "g0".to_string()))),
            ("start", ts_col(jobs.iter().map(|j| secs(j.start)))),
            ("end", ts_col(jobs.iter().map(|j| secs(j.end)))),
            ("share", f64_col(jobs.iter().map(|j| j.share))),
        ],
    );
    let schema = Arc::new(power_schema());
    let batches: Vec<RecordBatch> = fleet
        .samples
        .chunks(batch_rows)
        .map(|c| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    str_col(c.iter().map(|_| "g0".to_string())),
                    ts_col(c.iter().map(|s| secs(s.0))),
                    f64_col(c.iter().map(|s| s.1)),
                ],
            )
            .expect("power batch")
        })
        .collect();
    let opts = Options {
        period: Some((T0, secs(PERIOD_S as i64))),
        interpolation: Interpolation::Previous,
        max_gap_ns: MAX_GAP_S * S,
        overlap: if normalize {
            Overlap::Normalize
        } else {
            Overlap::Error
        },
        threads: Some(threads),
        parallel_min_rows: 1,
        ..Options::default()
    };
    let inputs = Inputs {
        devices: &devices,
        sites: &sites,
        intensity: &intensity,
        allocations: Some(&allocations),
    };
    account(&inputs, &schema, batches.into_iter().map(Ok), opts, &|| {
        false
    })
    .expect("accounted")
}

// --- the independent computation ---------------------------------------------

/// Columns compared: the time columns, then the metric columns.
const COLUMNS: [&str; 7] = [
    "duration_s",
    "uncovered_s",
    "energy_kwh",
    "facility_energy_kwh",
    "operational_kgco2e",
    "operational_market_kgco2e",
    "embodied_kgco2e",
];

/// The columns of one second at power `p` (0 where uncovered), the time
/// columns weighted by `time_w` and the others by `w`.
fn second(fleet: &Fleet, t: i64, p: f64, covered: bool, time_w: f64, w: f64) -> [f64; 7] {
    let (c, cfe) = fleet.grid_row(t);
    let kwh = p / 3.6e6;
    [
        time_w,
        if covered { 0.0 } else { time_w },
        kwh * w,
        kwh * PUE * w,
        kwh * PUE * c / 1e3 * w,
        kwh * PUE * (1.0 - cfe) * c / 1e3 * w,
        EMBODIED_KG / LIFETIME_S * w,
    ]
}

/// Expected rows of every allocation and of the unallocated bucket, one
/// second at a time (every boundary is on a whole second).
fn expected(fleet: &Fleet) -> (Vec<[f64; 7]>, [f64; 7]) {
    let mut power = vec![0.0; PERIOD_S];
    let mut covered = vec![false; PERIOD_S];
    for w in fleet.samples.windows(2) {
        let ((t0, p), (t1, _)) = (w[0], w[1]);
        if t1 - t0 <= MAX_GAP_S {
            for t in t0..t1.min(PERIOD_S as i64) {
                power[t as usize] = p;
                covered[t as usize] = true;
            }
        }
    }
    let mut sum = vec![0.0; PERIOD_S];
    let in_period = |j: &Job| j.start.max(0)..j.end.min(PERIOD_S as i64);
    for j in &fleet.jobs {
        for t in in_period(j) {
            sum[t as usize] += j.share;
        }
    }
    let jobs = fleet
        .jobs
        .iter()
        .map(|j| {
            let mut acc = [0.0; 7];
            for t in in_period(j) {
                let i = t as usize;
                let w = j.share / sum[i].max(1.0);
                let v = second(fleet, t, power[i], covered[i], 1.0, w);
                acc.iter_mut().zip(v).for_each(|(a, x)| *a += x);
            }
            acc
        })
        .collect();
    let mut unallocated = [0.0; 7];
    for t in 0..PERIOD_S {
        let left = (1.0 - sum[t]).max(0.0);
        let v = second(fleet, t as i64, power[t], covered[t], left, left);
        unallocated.iter_mut().zip(v).for_each(|(a, x)| *a += x);
    }
    (jobs, unallocated)
}

fn col(b: &RecordBatch, name: &str) -> Vec<f64> {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("column {name}"))
        .as_primitive::<Float64Type>()
        .values()
        .to_vec()
}

/// Equal to 1e-9 relative, or within 1e-12 of the device's total.
fn assert_close(actual: f64, expected: f64, total: f64, what: &str) {
    let tol = (1e-9 * expected.abs()).max(1e-12 * total.abs());
    assert!(
        (actual - expected).abs() <= tol,
        "{what}: {actual} != {expected} (diff {:e})",
        actual - expected
    );
}

fn check(fleet: &Fleet, normalize: bool) {
    let out = run(fleet, normalize, 2, 97);
    let (jobs, unallocated) = expected(fleet);
    for (k, name) in COLUMNS.iter().enumerate() {
        // The devices table has no duration_s: the period is the device's.
        let device = match out.devices.column_by_name(name) {
            Some(_) => col(&out.devices, name)[0],
            None => PERIOD_S as f64,
        };
        let got = col(&out.allocations, name);
        for (i, want) in jobs.iter().enumerate() {
            assert_close(got[i], want[k], device, &format!("job {i} {name}"));
        }
        let unalloc = col(&out.unallocated, name)[0];
        assert_close(
            unalloc,
            unallocated[k],
            device,
            &format!("unallocated {name}"),
        );
        if k >= 2 {
            // Conservation (the time columns of allocations are not shares).
            let booked = got.iter().sum::<f64>() + unalloc;
            assert_close(booked, device, device, &format!("conservation of {name}"));
        }
    }
    // The same bits on one thread, in one batch or one row at a time.
    for (threads, rows) in [(1, usize::MAX), (1, 1), (2, 5)] {
        let again = run(fleet, normalize, threads, rows);
        for name in COLUMNS {
            for (table, a, b) in [
                ("allocations", &out.allocations, &again.allocations),
                ("unallocated", &out.unallocated, &again.unallocated),
            ] {
                let bits = |x: Vec<f64>| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(col(a, name)),
                    bits(col(b, name)),
                    "{table}.{name}: {threads} threads, batches of {rows}"
                );
            }
        }
    }
}

#[test]
fn thousands_in_flight_shares_below_one() {
    // About 1,250 in flight at once, each a share of 1/4000: they never sum
    // above 1, and the rest is unallocated.
    let fleet = Fleet::new(3000, |_| 1.0 / 4000.0);
    check(&fleet, false);
}

#[test]
fn thousands_in_flight_normalized() {
    // Shares of 0.1% to 1% sum well above 1 in the middle of the period and
    // below 1 at its edges.
    let fleet = Fleet::new(3000, |rng| 0.001 + 0.009 * rng.unit());
    check(&fleet, true);
}
