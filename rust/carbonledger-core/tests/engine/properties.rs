//! Property tests of the accounting invariants (SPEC 10) on random small
//! fleets, plus the worked example of SPEC 12.
//!
//! Every scenario is built here as plain Arrow record batches (the same shape
//! a Python caller hands over) and run through `stream::account`.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampNanosecondType, UInt64Type};
use arrow_array::{
    Array, ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray, UInt32Array,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use carbonledger_core::report::METRIC_COLUMNS;
use carbonledger_core::{account, Error, GapFill, Inputs, Interpolation, Options, Output, Table};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// One second in ns.
const S: i64 = 1_000_000_000;
/// 2025-01-01T00:00:00Z in ns since the epoch.
const T0: i64 = 1_735_689_600 * S;
/// `max_gap` of the random scenarios.
const MAX_GAP: i64 = 30 * S;
/// The grid rows of the random scenarios cover at least `T0 +- GRID_REACH`.
const GRID_REACH: i64 = 100_000 * S;

// ---------------------------------------------------------------------------
// Arrow builders
// ---------------------------------------------------------------------------

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

fn ts_col(v: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from(v).with_timezone("UTC"))
}

fn str_col<T: AsRef<str>>(v: &[T]) -> ArrayRef {
    Arc::new(StringArray::from(
        v.iter().map(|s| s.as_ref()).collect::<Vec<_>>(),
    ))
}

fn f64_col(v: Vec<Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from(v))
}

fn record_batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let arrays = cols.into_iter().map(|(_, a)| a).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("valid batch")
}

fn table(name: &'static str, batch: RecordBatch) -> Table {
    Table::new(name, &batch.schema(), &[batch]).expect("table")
}

fn power_schema(counters: bool) -> Schema {
    Schema::new(vec![
        Field::new("device_id", DataType::Utf8, false),
        Field::new("ts", ts_type(), true),
        Field::new(
            if counters { "energy_j" } else { "power_w" },
            DataType::Float64,
            true,
        ),
    ])
}

fn dev_name(i: usize) -> String {
    format!("g{i}")
}

/// A power (or counter) batch of `(device, ts, value)` rows; values times `scale`.
fn power_batch(counters: bool, rows: &[Sample], scale: f64) -> RecordBatch {
    let ids: Vec<String> = rows.iter().map(|s| dev_name(s.device)).collect();
    RecordBatch::try_new(
        Arc::new(power_schema(counters)),
        vec![
            str_col(&ids),
            ts_col(rows.iter().map(|s| Some(s.ts)).collect()),
            f64_col(rows.iter().map(|s| Some(s.v * scale)).collect()),
        ],
    )
    .expect("power batch")
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct DevSpec {
    region: usize,
    pue: f64,
    embodied: f64,
    installed: i64,
    lifetime_years: Option<f64>,
    retired: Option<i64>,
    idle_w: f64,
    wrap_j: Option<f64>,
}

#[derive(Debug, Clone)]
struct GridSpec {
    region: usize,
    start: i64,
    end: Option<i64>,
    c: f64,
    cfe: Option<f64>,
    residual: Option<f64>,
}

#[derive(Debug, Clone)]
struct AllocSpec {
    device: usize,
    start: i64,
    end: i64,
    share: Option<f64>,
}

impl AllocSpec {
    fn share(&self) -> f64 {
        self.share.unwrap_or(1.0)
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    device: usize,
    ts: i64,
    v: f64,
}

#[derive(Debug, Clone)]
struct Scenario {
    devices: Vec<DevSpec>,
    grid: Vec<GridSpec>,
    allocs: Vec<AllocSpec>,
    /// Device-sorted, each device's samples in time order.
    samples: Vec<Sample>,
    counters: bool,
    interpolation: Interpolation,
    gap_fill_idle: bool,
    /// `None`: the default period `[min ts, max ts)`.
    period: Option<(i64, i64)>,
    /// An explicit period `[a, c)` and a cut `a < b < c` (additivity).
    span: (i64, i64, i64),
    /// Drives shuffles and batch splits.
    seed: u64,
}

/// splitmix64: a tiny deterministic generator for shuffles and splits.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

impl Scenario {
    fn options(&self) -> Options {
        Options {
            period: self.period,
            interpolation: self.interpolation,
            max_gap_ns: MAX_GAP,
            gap_fill: if self.gap_fill_idle {
                GapFill::Idle
            } else {
                GapFill::Uncovered
            },
            sort: false,
            threads: Some(2),
            ..Options::default()
        }
    }

    /// The devices table with its rows in `order` (indices into `self.devices`);
    /// counter moduli times `wrap_scale`.
    fn devices_table(&self, order: &[usize], wrap_scale: f64) -> Table {
        let d = |i: usize| &self.devices[i];
        let ids: Vec<String> = order.iter().map(|&i| dev_name(i)).collect();
        let sites: Vec<String> = order.iter().map(|&i| format!("s{i}")).collect();
        table(
            "devices",
            record_batch(vec![
                ("device_id", str_col(&ids)),
                ("site_id", str_col(&sites)),
                (
                    "embodied_kgco2e",
                    f64_col(order.iter().map(|&i| Some(d(i).embodied)).collect()),
                ),
                (
                    "installed_at",
                    ts_col(order.iter().map(|&i| Some(d(i).installed)).collect()),
                ),
                (
                    "lifetime_years",
                    f64_col(order.iter().map(|&i| d(i).lifetime_years).collect()),
                ),
                (
                    "retired_at",
                    ts_col(order.iter().map(|&i| d(i).retired).collect()),
                ),
                (
                    "idle_power_w",
                    f64_col(order.iter().map(|&i| Some(d(i).idle_w)).collect()),
                ),
                (
                    "counter_wrap_j",
                    f64_col(
                        order
                            .iter()
                            .map(|&i| d(i).wrap_j.map(|w| w * wrap_scale))
                            .collect(),
                    ),
                ),
            ]),
        )
    }

    fn sites_table(&self) -> Table {
        let n = self.devices.len();
        let ids: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        let regions: Vec<String> = self
            .devices
            .iter()
            .map(|d| format!("R{}", d.region))
            .collect();
        table(
            "sites",
            record_batch(vec![
                ("site_id", str_col(&ids)),
                ("region", str_col(&regions)),
                (
                    "pue",
                    f64_col(self.devices.iter().map(|d| Some(d.pue)).collect()),
                ),
            ]),
        )
    }

    fn intensity_table(&self) -> Table {
        let g = &self.grid;
        let regions: Vec<String> = g.iter().map(|r| format!("R{}", r.region)).collect();
        table(
            "intensity",
            record_batch(vec![
                ("region", str_col(&regions)),
                ("start", ts_col(g.iter().map(|r| Some(r.start)).collect())),
                ("end", ts_col(g.iter().map(|r| r.end).collect())),
                (
                    "gco2e_per_kwh",
                    f64_col(g.iter().map(|r| Some(r.c)).collect()),
                ),
                ("cfe", f64_col(g.iter().map(|r| r.cfe).collect())),
                (
                    "residual_gco2e_per_kwh",
                    f64_col(g.iter().map(|r| r.residual).collect()),
                ),
            ]),
        )
    }

    /// `utilization`: with a `utilization` column (for
    /// `attribution="utilization"`): a function of the row, 0 for one in
    /// five (so steps where they sum to 0 occur).
    fn allocations_table(&self, utilization: bool) -> Table {
        let a = &self.allocs;
        let jobs: Vec<String> = (0..a.len()).map(|i| format!("j{i}")).collect();
        let devs: Vec<String> = a.iter().map(|x| dev_name(x.device)).collect();
        let mut cols = vec![
            ("job_id", str_col(&jobs)),
            ("device_id", str_col(&devs)),
            ("start", ts_col(a.iter().map(|x| Some(x.start)).collect())),
            ("end", ts_col(a.iter().map(|x| Some(x.end)).collect())),
            ("share", f64_col(a.iter().map(|x| x.share).collect())),
        ];
        if utilization {
            let u = (0..a.len()).map(|i| Some(((i * 7 + 3) % 5) as f64 / 4.0 * 0.9));
            cols.push(("utilization", f64_col(u.collect())));
        }
        table("allocations", record_batch(cols))
    }

    /// The samples in (ts, device) order, each device's own order kept.
    fn time_ordered(&self) -> Vec<Sample> {
        let mut v = self.samples.clone();
        v.sort_by_key(|s| (s.ts, s.device));
        v
    }

    /// The devices' streams merged in a random order, each device's own order kept.
    fn random_interleave(&self, rng: &mut Rng) -> Vec<Sample> {
        let n = self.devices.len();
        let mut queues: Vec<std::collections::VecDeque<Sample>> = vec![Default::default(); n];
        for s in &self.samples {
            queues[s.device].push_back(*s);
        }
        let mut out = Vec::with_capacity(self.samples.len());
        while out.len() < self.samples.len() {
            let d = rng.below(n);
            if let Some(s) = queues[d].pop_front() {
                out.push(s);
            }
        }
        out
    }
}

/// Cut `rows` into consecutive batches at random points (empty batches included).
fn random_split(rows: &[Sample], rng: &mut Rng) -> Vec<Vec<Sample>> {
    let n_cuts = rng.below(6);
    let mut cuts: Vec<usize> = (0..n_cuts).map(|_| rng.below(rows.len() + 1)).collect();
    cuts.push(0);
    cuts.push(rows.len());
    cuts.sort_unstable();
    cuts.windows(2).map(|w| rows[w[0]..w[1]].to_vec()).collect()
}

/// A sample's utilization when a run reports it: a function of the sample
/// alone (so batch splits and orders cannot change it), about one in eight
/// unknown, a fifth below the default execution-idle threshold.
fn utilization_of(s: &Sample) -> Option<f64> {
    let h = (s.ts as u64 ^ (s.device as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_mul(0xbf58_476d_1ce4_e5b9);
    match h >> 61 {
        0 => None,
        1 => Some(((h >> 20) % 50) as f64 / 1000.0),
        _ => Some(((h >> 20) % 1001) as f64 / 1000.0),
    }
}

/// How to run a scenario.
struct Run<'a> {
    /// Samples carry a `utilization` column (`utilization_of`).
    utilization: bool,
    dev_order: Vec<usize>,
    batches: Vec<Vec<Sample>>,
    /// Power (or counter values and moduli) times this.
    scale: f64,
    /// Device ids as an Int32 dictionary, as Parquet scans read them.
    dictionary: bool,
    opts: Options,
    sc: &'a Scenario,
}

impl<'a> Run<'a> {
    fn new(sc: &'a Scenario) -> Self {
        Self {
            utilization: false,
            dev_order: (0..sc.devices.len()).collect(),
            batches: vec![sc.samples.clone()],
            scale: 1.0,
            dictionary: false,
            opts: sc.options(),
            sc,
        }
    }

    fn go(&self) -> Result<Output, Error> {
        let sc = self.sc;
        let devices = sc.devices_table(&self.dev_order, self.scale);
        let sites = sc.sites_table();
        let intensity = sc.intensity_table();
        let allocations = sc.allocations_table(
            self.opts.attribution == carbonledger_core::Attribution::Utilization,
        );
        let inputs = Inputs {
            devices: &devices,
            sites: &sites,
            intensity: &intensity,
            allocations: Some(&allocations),
        };
        let mut schema = power_schema(sc.counters);
        let mut batches: Vec<RecordBatch> = self
            .batches
            .iter()
            .map(|b| power_batch(sc.counters, b, self.scale))
            .collect();
        if self.dictionary {
            let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
            let mut fields: Vec<Field> =
                schema.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields[0] = Field::new("device_id", dict.clone(), true);
            schema = Schema::new(fields);
            batches = batches
                .iter()
                .map(|b| {
                    let mut cols = b.columns().to_vec();
                    cols[0] = arrow_cast::cast(&cols[0], &dict).expect("dictionary ids");
                    RecordBatch::try_new(Arc::new(schema.clone()), cols).expect("batch")
                })
                .collect();
        }
        if self.utilization {
            let mut fields: Vec<Field> =
                schema.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.push(Field::new("utilization", DataType::Float64, true));
            schema = Schema::new(fields);
            batches = batches
                .iter()
                .zip(&self.batches)
                .map(|(b, rows)| {
                    let mut cols = b.columns().to_vec();
                    cols.push(f64_col(rows.iter().map(utilization_of).collect()));
                    RecordBatch::try_new(Arc::new(schema.clone()), cols).expect("batch")
                })
                .collect();
        }
        account(
            &inputs,
            &schema,
            batches.into_iter().map(Ok),
            self.opts.clone(),
            &|| false,
        )
    }
}

// --- strategies ------------------------------------------------------------

/// One step of a device's sample stream: (dt ns, value or power, flag).
fn step() -> impl Strategy<Value = (i64, f64, u8)> {
    let dt = prop_oneof![
        2 => Just(0i64),
        1 => Just(MAX_GAP),
        14 => 1..=MAX_GAP,
        3 => (MAX_GAP + 1)..=(4 * MAX_GAP),
    ];
    let v = prop_oneof![
        20 => 0.0..1000.0f64,
        1 => Just(f64::NAN),
        1 => Just(-5.0),
        1 => Just(0.0),
    ];
    (dt, v, any::<u8>())
}

/// An allocation lane: capacity fraction, whether it is the whole rest, its
/// first start, and its allocations (gap before, length, share fraction,
/// null share when the share is exactly 1).
type LaneGen = (f64, bool, i64, Vec<(i64, i64, f64, bool)>);

fn lane() -> impl Strategy<Value = LaneGen> {
    let alloc = (
        prop_oneof![1 => Just(0i64), 3 => 1..300 * S],
        prop_oneof![1 => 1..=S, 4 => S..600 * S],
        prop_oneof![1 => Just(1.0f64), 2 => 0.05..1.0f64],
        any::<bool>(),
    );
    (
        0.05..0.95f64,
        any::<bool>(),
        -600 * S..600 * S,
        proptest::collection::vec(alloc, 0..=3),
    )
}

#[derive(Debug, Clone)]
struct DevGen {
    region: usize,
    pue: f64,
    embodied: f64,
    /// true: installed long ago; else installed this far from T0.
    installed: (bool, i64),
    /// lifetime in years, or retired after this many ns.
    window: Result<f64, i64>,
    idle_w: f64,
    wrap_j: Option<f64>,
    e0: f64,
    first_ts: i64,
    steps: Vec<(i64, f64, u8)>,
    lanes: Vec<LaneGen>,
}

fn dev_gen() -> impl Strategy<Value = DevGen> {
    let window = prop_oneof![
        2 => (0.5..5.0f64).prop_map(Ok),
        1 => (S..4000 * S).prop_map(Err),
    ];
    (
        (
            0usize..2,
            prop_oneof![1 => Just(1.0f64), 3 => 1.0..2.0f64],
            prop_oneof![1 => Just(0.0f64), 4 => 0.0..1000.0f64],
            (any::<bool>(), -600 * S..2000 * S),
            window,
            0.0..500.0f64,
            proptest::option::weighted(0.4, 1e4..1e6f64),
        ),
        0.0..1e5f64,
        -300 * S..300 * S,
        proptest::collection::vec(step(), 0..24),
        proptest::collection::vec(lane(), 1..=2),
    )
        .prop_map(
            |(
                (region, pue, embodied, installed, window, idle_w, wrap_j),
                e0,
                first_ts,
                steps,
                lanes,
            )| {
                DevGen {
                    region,
                    pue,
                    embodied,
                    installed,
                    window,
                    idle_w,
                    wrap_j,
                    e0,
                    first_ts,
                    steps,
                    lanes,
                }
            },
        )
}

/// Grid rows of one region: (offset from T0, intensity, cfe, residual, null end).
type GridGen = Vec<(i64, f64, Option<f64>, Option<f64>, bool)>;

fn grid_gen() -> impl Strategy<Value = GridGen> {
    proptest::collection::vec(
        (
            -1000 * S..3000 * S,
            0.0..800.0f64,
            proptest::option::of(
                prop_oneof![1 => Just(0.0f64), 1 => Just(1.0f64), 4 => 0.0..=1.0f64],
            ),
            proptest::option::weighted(0.3, 0.0..800.0f64),
            any::<bool>(),
        ),
        1..=5,
    )
}

/// The raw draws a scenario is built from.
struct ScenarioGen {
    gens: Vec<DevGen>,
    n_regions: usize,
    grids: Vec<GridGen>,
    counters: bool,
    previous: bool,
    gap_fill_idle: bool,
    default_period: bool,
    /// (a offset from T0, c - a, where b falls in [a, c) as a fraction)
    span: (i64, i64, f64),
    seed: u64,
}

fn build_scenario(g: ScenarioGen) -> Scenario {
    let ScenarioGen {
        gens,
        n_regions,
        grids,
        counters,
        previous,
        gap_fill_idle,
        default_period,
        span,
        seed,
    } = g;
    let mut rng = Rng(seed);
    // Times on a coarse grid make samples, allocation edges, grid rows,
    // windows and period edges coincide often.
    let quantum = [1, S, 10 * S][rng.below(3)];
    let q = |t: i64| T0 + (t - T0).div_euclid(quantum) * quantum;
    let mut devices = Vec::new();
    let mut allocs = Vec::new();
    let mut samples = Vec::new();
    for (d, g) in gens.iter().enumerate() {
        let installed = if g.installed.0 {
            T0 - 200 * 86_400 * S
        } else {
            q(T0 + g.installed.1)
        };
        let (lifetime_years, retired) = match g.window {
            Ok(y) => (Some(y), None),
            // retired_at wins over lifetime_years (SPEC 2): give both sometimes.
            Err(ns) => (
                (rng.below(2) == 0).then_some(3.0),
                Some(q(installed + ns).max(installed + quantum)),
            ),
        };
        devices.push(DevSpec {
            region: g.region % n_regions,
            pue: g.pue,
            embodied: g.embodied,
            installed,
            lifetime_years,
            retired,
            idle_w: g.idle_w,
            wrap_j: if counters { g.wrap_j } else { None },
        });

        // Samples.
        let mut t = T0 + g.first_ts;
        let mut e = g.e0;
        for &(dt, v, flag) in &g.steps {
            t += dt;
            let valid = v.is_finite() && v >= 0.0;
            let value = if !counters {
                v
            } else {
                let rate = if valid { v } else { 100.0 };
                e += rate * (dt as f64 / 1e9);
                if flag < 8 && g.wrap_j.is_none() {
                    e = f64::from(flag); // a counter reset
                }
                match (valid, g.wrap_j) {
                    (false, _) => v,
                    (true, Some(w)) => e.rem_euclid(w),
                    (true, None) => e,
                }
            };
            samples.push(Sample {
                device: d,
                ts: q(t),
                v: value,
            });
        }

        // Allocations: lanes of sequential allocations; lane capacities sum to <= 1.
        let caps: Vec<f64> = match g.lanes.len() {
            1 => vec![if g.lanes[0].1 { 1.0 } else { g.lanes[0].0 }],
            _ => {
                let c1 = g.lanes[0].0;
                let rest = 1.0 - c1;
                vec![
                    c1,
                    if g.lanes[1].1 {
                        rest
                    } else {
                        rest * g.lanes[1].0
                    },
                ]
            }
        };
        for (lane, cap) in g.lanes.iter().zip(caps) {
            let mut t = T0 + lane.2;
            for &(gap, len, frac, null_share) in &lane.3 {
                let start = t + gap;
                let end = start + len;
                t = end;
                let (start, end) = (q(start), q(end));
                if end <= start {
                    continue;
                }
                let share = cap * frac;
                allocs.push(AllocSpec {
                    device: d,
                    start,
                    end,
                    share: if share == 1.0 && null_share {
                        None
                    } else {
                        Some(share)
                    },
                });
            }
        }
    }
    rng.shuffle(&mut allocs);

    let mut grid = Vec::new();
    for (region, rows) in grids.iter().enumerate().take(n_regions) {
        let mut rows = rows.clone();
        rows[0].0 = -GRID_REACH;
        for r in &mut rows {
            r.0 = q(T0 + r.0) - T0;
        }
        rows.sort_by_key(|r| r.0);
        rows.dedup_by_key(|r| r.0);
        let n = rows.len();
        for i in 0..n {
            let (off, c, cfe, residual, null_end) = rows[i];
            let end = if i + 1 < n {
                (!null_end).then_some(T0 + rows[i + 1].0)
            } else if n == 1 && null_end {
                None // a region's only row never ends
            } else {
                Some(T0 + GRID_REACH)
            };
            grid.push(GridSpec {
                region,
                start: T0 + off,
                end,
                c,
                cfe,
                residual,
            });
        }
    }
    rng.shuffle(&mut grid);

    let (a, len, frac) = span;
    let a = T0 + a;
    let cut = ((len as f64 * frac) as i64).clamp(1, len - 1);
    let span = match (q(a), q(a + cut), q(a + len)) {
        (qa, qb, qc) if qa < qb && qb < qc => (qa, qb, qc),
        _ => (a, a + cut, a + len),
    };
    Scenario {
        devices,
        grid,
        allocs,
        samples,
        counters,
        interpolation: if previous {
            Interpolation::Previous
        } else {
            Interpolation::Linear
        },
        gap_fill_idle,
        period: (!default_period).then_some((span.0, span.2)),
        span,
        seed,
    }
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        proptest::collection::vec(dev_gen(), 1..=3),
        1usize..=2,
        proptest::collection::vec(grid_gen(), 2),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        (-300 * S..300 * S, 2..2500 * S, 0.0..1.0f64),
        any::<u64>(),
    )
        .prop_map(
            |(
                gens,
                n_regions,
                grids,
                counters,
                previous,
                gap_fill_idle,
                default_period,
                span,
                seed,
            )| {
                build_scenario(ScenarioGen {
                    gens,
                    n_regions,
                    grids,
                    counters,
                    previous,
                    gap_fill_idle,
                    default_period,
                    span,
                    seed,
                })
            },
        )
}

// ---------------------------------------------------------------------------
// Reading and comparing outputs
// ---------------------------------------------------------------------------

fn col(b: &RecordBatch, name: &str) -> Vec<f64> {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("output column {name}"))
        .as_primitive::<Float64Type>()
        .values()
        .to_vec()
}

fn u64s(b: &RecordBatch, name: &str) -> Vec<u64> {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("output column {name}"))
        .as_primitive::<UInt64Type>()
        .values()
        .to_vec()
}

fn times_of(b: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    let a = b
        .column_by_name(name)
        .unwrap_or_else(|| panic!("output column {name}"))
        .as_primitive::<TimestampNanosecondType>();
    (0..a.len())
        .map(|i| (!a.is_null(i)).then(|| a.value(i)))
        .collect()
}

/// `|x - y| <= rel * max(|x|, |y|) + abs`.
fn close(x: f64, y: f64, rel: f64, abs: f64) -> bool {
    (x - y).abs() <= rel * x.abs().max(y.abs()) + abs
}

const REL: f64 = 1e-9;
/// Absolute tolerance, as a fraction of the device's total in that column.
const ABS_OF_TOTAL: f64 = 1e-12;

/// Float cells of runs that must agree (batching, order, threads) may differ
/// by this much, relative (plus this much of the device's total in that
/// column, for cells that are zero up to rounding): stricter than SPEC 10's
/// 1e-9, with room for sums the engine regroups by batch.
const SAME_REL: f64 = 1e-12;

/// Every column of two batches equal: integers and timestamps exactly, floats
/// to `SAME_REL`. `device_of(row)` is the device a row belongs to; `totals`
/// the `devices` batch whose columns scale the absolute tolerance.
fn assert_same_batch(
    a: &RecordBatch,
    b: &RecordBatch,
    totals: &RecordBatch,
    device_of: &dyn Fn(usize) -> usize,
    what: &str,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.schema(), b.schema(), "{}: schemas differ", what);
    for (i, f) in a.schema().fields().iter().enumerate() {
        let (x, y) = (a.column(i), b.column(i));
        if f.data_type() == &DataType::Float64 {
            let (x, y) = (
                x.as_primitive::<Float64Type>(),
                y.as_primitive::<Float64Type>(),
            );
            // `duration_s` has no device total: scale by the column's largest cell.
            let scale: Vec<f64> = match totals.column_by_name(f.name()) {
                Some(_) => col(totals, f.name()),
                None => {
                    vec![x.values().iter().fold(0.0f64, |m, v| m.max(v.abs())); totals.num_rows()]
                }
            };
            for r in 0..x.len() {
                let abs = SAME_REL * scale[device_of(r)].abs();
                prop_assert!(
                    close(x.value(r), y.value(r), SAME_REL, abs),
                    "{}: column {} row {}: {:e} vs {:e}",
                    what,
                    f.name(),
                    r,
                    x.value(r),
                    y.value(r)
                );
            }
        } else {
            prop_assert!(
                x.to_data() == y.to_data(),
                "{}: column {} differs: {:?} vs {:?}",
                what,
                f.name(),
                x,
                y
            );
        }
    }
    Ok(())
}

fn assert_same_output(
    sc: &Scenario,
    a: &Output,
    b: &Output,
    what: &str,
) -> Result<(), TestCaseError> {
    let by_alloc = |r: usize| sc.allocs[r].device;
    let by_row = |r: usize| r;
    assert_same_batch(
        &a.allocations,
        &b.allocations,
        &a.devices,
        &by_alloc,
        &format!("{what}: allocations"),
    )?;
    assert_same_batch(
        &a.unallocated,
        &b.unallocated,
        &a.devices,
        &by_row,
        &format!("{what}: unallocated"),
    )?;
    assert_same_batch(
        &a.devices,
        &b.devices,
        &a.devices,
        &by_row,
        &format!("{what}: devices"),
    )
}

/// Both runs fail the same way, or both succeed with the same outputs.
fn assert_same_result(
    sc: &Scenario,
    a: &Result<Output, Error>,
    b: &Result<Output, Error>,
    what: &str,
) -> Result<(), TestCaseError> {
    match (a, b) {
        (Ok(a), Ok(b)) => assert_same_output(sc, a, b, what),
        (Err(a), Err(b)) => {
            prop_assert_eq!(a.kind, b.kind, "{}: errors differ: {} vs {}", what, a, b);
            Ok(())
        }
        (a, b) => Err(TestCaseError::fail(format!(
            "{what}: one run failed: {:?} vs {:?}",
            a.as_ref().err(),
            b.as_ref().err()
        ))),
    }
}

/// The outputs of a scenario, or `None` when it legitimately has nothing to
/// account (default period without two distinct valid timestamps).
fn outputs_or_skip(
    sc: &Scenario,
    r: Result<Output, Error>,
) -> Result<Option<Output>, TestCaseError> {
    match r {
        Ok(o) => Ok(Some(o)),
        Err(e) if sc.period.is_none() && e.message.starts_with("table 'power'") => Ok(None),
        Err(e) => Err(TestCaseError::fail(format!("engine error: {e}"))),
    }
}

// ---------------------------------------------------------------------------
// SPEC 12: the worked example
// ---------------------------------------------------------------------------

fn assert_rel(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= 1e-12 * expected.abs(),
        "{what}: got {actual:e}, expected {expected:e}"
    );
}

#[test]
fn worked_example_spec_12() {
    let t = |s: i64| T0 + s * S;
    let installed = 1_704_067_200 * S; // 2024-01-01T00:00:00Z
    let devices = table(
        "devices",
        record_batch(vec![
            ("device_id", str_col(&["g0"])),
            ("site_id", str_col(&["s1"])),
            ("embodied_kgco2e", f64_col(vec![Some(150.0)])),
            ("installed_at", ts_col(vec![Some(installed)])),
            ("lifetime_years", f64_col(vec![Some(4.0)])),
        ]),
    );
    let sites = table(
        "sites",
        record_batch(vec![
            ("site_id", str_col(&["s1"])),
            ("region", str_col(&["R"])),
            ("pue", f64_col(vec![Some(1.5)])),
        ]),
    );
    let intensity = table(
        "intensity",
        record_batch(vec![
            ("region", str_col(&["R", "R"])),
            ("start", ts_col(vec![Some(t(0)), Some(t(15))])),
            ("end", ts_col(vec![Some(t(15)), Some(t(60))])),
            ("gco2e_per_kwh", f64_col(vec![Some(400.0), Some(100.0)])),
            ("cfe", f64_col(vec![Some(0.25), Some(0.25)])),
        ]),
    );
    let allocations = table(
        "allocations",
        record_batch(vec![
            ("job_id", str_col(&["A"])),
            ("device_id", str_col(&["g0"])),
            ("start", ts_col(vec![Some(t(5))])),
            ("end", ts_col(vec![Some(t(25))])),
            ("share", f64_col(vec![Some(1.0)])),
            ("phase", str_col(&["training"])),
        ]),
    );
    let samples: Vec<Sample> = [(0, 100.0), (10, 300.0), (20, 300.0), (40, 100.0)]
        .iter()
        .map(|&(s, w)| Sample {
            device: 0,
            ts: t(s),
            v: w,
        })
        .collect();
    let opts = Options {
        period: Some((t(0), t(40))),
        max_gap_ns: 15 * S,
        interpolation: Interpolation::Linear,
        ..Options::default()
    };
    let out = account(
        &Inputs {
            devices: &devices,
            sites: &sites,
            intensity: &intensity,
            allocations: Some(&allocations),
        },
        &power_schema(false),
        std::iter::once(Ok(power_batch(false, &samples, 1.0))),
        opts,
        &|| false,
    )
    .expect("worked example runs");

    let emb = 3000.0 / 126_230_400.0;
    let a_op = 1.0 / 1920.0;
    let u_op = 1.0 / 8000.0;
    let expect_a = [
        ("duration_s", 20.0),
        ("uncovered_s", 5.0),
        ("energy_kwh", 4250.0 / 3.6e6),
        ("facility_energy_kwh", 1.5 * 4250.0 / 3.6e6),
        ("operational_kgco2e", a_op),
        ("operational_market_kgco2e", 1.0 / 2560.0),
        ("embodied_kgco2e", emb),
        ("total_kgco2e", a_op + emb),
    ];
    let expect_u = [
        ("duration_s", 20.0),
        ("uncovered_s", 15.0),
        ("energy_kwh", 750.0 / 3.6e6),
        ("facility_energy_kwh", 1.5 * 750.0 / 3.6e6),
        ("operational_kgco2e", u_op),
        ("operational_market_kgco2e", 0.75 * u_op),
        ("embodied_kgco2e", emb),
        ("total_kgco2e", u_op + emb),
    ];
    let expect_d = [
        ("uncovered_s", 20.0),
        ("energy_kwh", 5000.0 / 3.6e6),
        ("facility_energy_kwh", 1.5 * 5000.0 / 3.6e6),
        ("operational_kgco2e", a_op + u_op),
        ("operational_market_kgco2e", 0.75 * (a_op + u_op)),
        ("embodied_kgco2e", 2.0 * emb),
        ("total_kgco2e", a_op + u_op + 2.0 * emb),
    ];
    assert_eq!(out.allocations.num_rows(), 1);
    for (name, v) in expect_a {
        assert_rel(col(&out.allocations, name)[0], v, &format!("A.{name}"));
    }
    assert_eq!(out.unallocated.num_rows(), 1);
    for (name, v) in expect_u {
        assert_rel(
            col(&out.unallocated, name)[0],
            v,
            &format!("unallocated.{name}"),
        );
    }
    assert_eq!(out.devices.num_rows(), 1);
    for (name, v) in expect_d {
        assert_rel(col(&out.devices, name)[0], v, &format!("devices.{name}"));
    }
    assert_eq!(u64s(&out.devices, "samples"), vec![4]);
    assert_eq!(u64s(&out.devices, "invalid_samples"), vec![0]);
    assert_eq!(u64s(&out.devices, "duplicate_samples"), vec![0]);
    assert_eq!(u64s(&out.devices, "gaps"), vec![1]);
    assert_eq!(u64s(&out.devices, "counter_wraps"), vec![0]);
    assert_eq!(u64s(&out.devices, "counter_resets"), vec![0]);
    assert_eq!(times_of(&out.devices, "first_ts"), vec![Some(t(0))]);
    assert_eq!(times_of(&out.devices, "last_ts"), vec![Some(t(40))]);
}

// ---------------------------------------------------------------------------
// SPEC 10 invariants
// ---------------------------------------------------------------------------

/// 10.1: per device, allocations + unallocated = the device's row, for every
/// metric column; also the time columns add up (share-weighted durations plus
/// the unallocated duration fill the period; likewise uncovered time).
fn check_conservation(sc: &Scenario, out: &Output) -> Result<(), TestCaseError> {
    let n_dev = sc.devices.len();
    let period_s = match sc.period {
        Some((p0, p1)) => (p1 - p0) as f64 / 1e9,
        None => {
            let first = times_of(&out.devices, "first_ts")
                .into_iter()
                .flatten()
                .min();
            let last = times_of(&out.devices, "last_ts")
                .into_iter()
                .flatten()
                .max();
            (last.expect("a valid sample") - first.expect("a valid sample")) as f64 / 1e9
        }
    };
    for name in METRIC_COLUMNS {
        let (a, u, d) = (
            col(&out.allocations, name),
            col(&out.unallocated, name),
            col(&out.devices, name),
        );
        for dev in 0..n_dev {
            let mut sum = u[dev];
            for (i, al) in sc.allocs.iter().enumerate() {
                prop_assert!(a[i] >= 0.0, "allocation {} {} = {:e} < 0", i, name, a[i]);
                if al.device == dev {
                    sum += a[i];
                }
            }
            prop_assert!(
                close(sum, d[dev], REL, ABS_OF_TOTAL * d[dev].abs()),
                "conservation of {} on device {}: allocations + unallocated = {:e}, device = {:e}",
                name,
                dev,
                sum,
                d[dev]
            );
        }
    }
    // total = operational (location-based) + embodied, on every row.
    for b in [&out.allocations, &out.unallocated, &out.devices] {
        let (op, emb, tot) = (
            col(b, "operational_kgco2e"),
            col(b, "embodied_kgco2e"),
            col(b, "total_kgco2e"),
        );
        for r in 0..b.num_rows() {
            prop_assert!(close(tot[r], op[r] + emb[r], 1e-15, 0.0));
        }
    }
    // Time columns: share-weighted allocation time + unallocated time.
    let (ad, au) = (
        col(&out.allocations, "duration_s"),
        col(&out.allocations, "uncovered_s"),
    );
    let (ud, uu) = (
        col(&out.unallocated, "duration_s"),
        col(&out.unallocated, "uncovered_s"),
    );
    let du = col(&out.devices, "uncovered_s");
    for dev in 0..n_dev {
        let (mut dur, mut unc) = (ud[dev], uu[dev]);
        for (i, al) in sc.allocs.iter().enumerate() {
            if al.device == dev {
                prop_assert!(ad[i] <= period_s * (1.0 + 1e-12) && au[i] <= ad[i] * (1.0 + 1e-12));
                dur += al.share() * ad[i];
                unc += al.share() * au[i];
            }
        }
        prop_assert!(
            close(dur, period_s, REL, 1e-12 * period_s),
            "device {}: time accounted {} s, period {} s",
            dev,
            dur,
            period_s
        );
        prop_assert!(
            close(unc, du[dev], REL, 1e-12 * period_s),
            "device {}: uncovered accounted {} s, device uncovered {} s",
            dev,
            unc,
            du[dev]
        );
        prop_assert!(du[dev] <= period_s * (1.0 + 1e-12));
    }
    Ok(())
}

/// Execution-idle: the run with utilization equals the run without on
/// every column they share; `execution_idle_kwh` is conserved per device;
/// busy and idle time fit in an allocation's covered time.
fn check_execution_idle(sc: &Scenario, out: &Output, util: &Output) -> Result<(), TestCaseError> {
    // Without utilization the hot path sums energy first; with it every
    // segment goes through the general path: equal to `SAME_REL`.
    let by_alloc = |r: usize| sc.allocs[r].device;
    let by_row = |r: usize| r;
    type Pair<'a> = (
        &'a RecordBatch,
        &'a RecordBatch,
        &'a dyn Fn(usize) -> usize,
        &'a str,
    );
    let tables: [Pair<'_>; 3] = [
        (
            &out.allocations,
            &util.allocations,
            &by_alloc,
            "allocations",
        ),
        (&out.unallocated, &util.unallocated, &by_row, "unallocated"),
        (&out.devices, &util.devices, &by_row, "devices"),
    ];
    for (plain, with, device_of, what) in tables {
        let shared: Vec<usize> = plain
            .schema()
            .fields()
            .iter()
            .map(|f| {
                with.schema()
                    .index_of(f.name())
                    .expect("the same columns and more")
            })
            .collect();
        let projected = with.project(&shared).expect("projection");
        let what = format!("utilization vs none: {what}");
        assert_same_batch(plain, &projected, &out.devices, device_of, &what)?;
    }
    let (a, u, d) = (
        col(&util.allocations, "execution_idle_kwh"),
        col(&util.unallocated, "execution_idle_kwh"),
        col(&util.devices, "execution_idle_kwh"),
    );
    let energy = col(&util.devices, "energy_kwh");
    for dev in 0..sc.devices.len() {
        let mut sum = u[dev];
        for (i, al) in sc.allocs.iter().enumerate() {
            if al.device == dev {
                sum += a[i];
            }
        }
        prop_assert!(
            close(sum, d[dev], REL, ABS_OF_TOTAL * energy[dev].abs()),
            "conservation of execution_idle_kwh on device {}: {:e} vs {:e}",
            dev,
            sum,
            d[dev]
        );
        prop_assert!(d[dev] <= energy[dev] * (1.0 + 1e-12) + 1e-300);
    }
    let (dur, unc) = (
        col(&util.allocations, "duration_s"),
        col(&util.allocations, "uncovered_s"),
    );
    let (busy, idle) = (
        col(&util.allocations, "busy_s"),
        col(&util.allocations, "execution_idle_s"),
    );
    for i in 0..dur.len() {
        prop_assert!(
            busy[i] + idle[i] <= (dur[i] - unc[i]) * (1.0 + 1e-12) + 1e-9,
            "allocation {}: busy {} + idle {} > covered {}",
            i,
            busy[i],
            idle[i],
            dur[i] - unc[i]
        );
    }
    Ok(())
}

/// `attribution="utilization"` against `"share"` on the same samples:
/// the devices' rows agree, and so do every allocation's time columns and
/// embodied carbon (which follow share either way); execution-idle energy
/// is conserved too.
fn check_utilization_attribution(
    sc: &Scenario,
    shared: &Output,
    weighted: &Output,
) -> Result<(), TestCaseError> {
    let by_row = |r: usize| r;
    let by_alloc = |r: usize| sc.allocs[r].device;
    assert_same_batch(
        &shared.devices,
        &weighted.devices,
        &shared.devices,
        &by_row,
        "utilization attribution: devices",
    )?;
    let embodied = col(&shared.devices, "embodied_kgco2e");
    for name in [
        "duration_s",
        "uncovered_s",
        "busy_s",
        "execution_idle_s",
        "embodied_kgco2e",
    ] {
        let (a, b) = (
            col(&shared.allocations, name),
            col(&weighted.allocations, name),
        );
        for i in 0..a.len() {
            // Seconds to 1 ns; embodied carbon to its device's total.
            let abs = if name == "embodied_kgco2e" {
                ABS_OF_TOTAL * embodied[by_alloc(i)].abs()
            } else {
                1e-9
            };
            prop_assert!(
                close(a[i], b[i], 1e-9, abs),
                "utilization attribution: allocation {} {} {} vs {}",
                i,
                name,
                a[i],
                b[i]
            );
        }
    }
    let (a, u, d) = (
        col(&weighted.allocations, "execution_idle_kwh"),
        col(&weighted.unallocated, "execution_idle_kwh"),
        col(&weighted.devices, "execution_idle_kwh"),
    );
    let energy = col(&weighted.devices, "energy_kwh");
    for dev in 0..sc.devices.len() {
        let sum = u[dev]
            + (0..a.len())
                .filter(|&i| sc.allocs[i].device == dev)
                .map(|i| a[i])
                .sum::<f64>();
        prop_assert!(close(sum, d[dev], REL, ABS_OF_TOTAL * energy[dev].abs()));
    }
    Ok(())
}

/// 10.4: `out_k` ran with power x `k`; `out` with power x 1.
fn check_linearity(
    out: &Output,
    out_k: &Output,
    k: f64,
    alloc_device: &[usize],
) -> Result<(), TestCaseError> {
    for (name, b, bk) in [
        ("allocations", &out.allocations, &out_k.allocations),
        ("unallocated", &out.unallocated, &out_k.unallocated),
        ("devices", &out.devices, &out_k.devices),
    ] {
        // `devices` rows are the totals the absolute tolerance scales with.
        for c in [
            "energy_kwh",
            "facility_energy_kwh",
            "operational_kgco2e",
            "operational_market_kgco2e",
        ] {
            let (x, y) = (col(b, c), col(bk, c));
            let totals = col(&out.devices, c);
            for r in 0..x.len() {
                let dev = if name == "allocations" {
                    alloc_device[r]
                } else {
                    r
                };
                prop_assert!(
                    close(y[r], k * x[r], REL, ABS_OF_TOTAL * k * totals[dev]),
                    "{}.{} row {}: x{} gives {:e}, expected {:e}",
                    name,
                    c,
                    r,
                    k,
                    y[r],
                    k * x[r]
                );
            }
        }
        for c in ["embodied_kgco2e", "uncovered_s"] {
            let (x, y) = (col(b, c), col(bk, c));
            prop_assert!(
                x == y,
                "{}.{} changed under scaling: {:?} vs {:?}",
                name,
                c,
                x,
                y
            );
        }
    }
    for c in [
        "samples",
        "invalid_samples",
        "duplicate_samples",
        "gaps",
        "counter_wraps",
        "counter_resets",
    ] {
        prop_assert_eq!(
            u64s(&out.devices, c),
            u64s(&out_k.devices, c),
            "devices.{}",
            c
        );
    }
    Ok(())
}

/// 10.3: `[a, c)` = `[a, b)` + `[b, c)`, per allocation, unallocated and device row.
fn check_additivity(
    whole: &Output,
    left: &Output,
    right: &Output,
    n_dev: usize,
    alloc_device: &[usize],
    period_s: f64,
) -> Result<(), TestCaseError> {
    let mut cols: Vec<&str> = vec!["duration_s", "uncovered_s"];
    cols.extend(METRIC_COLUMNS);
    for (name, w, l, r) in [
        (
            "allocations",
            &whole.allocations,
            &left.allocations,
            &right.allocations,
        ),
        (
            "unallocated",
            &whole.unallocated,
            &left.unallocated,
            &right.unallocated,
        ),
        ("devices", &whole.devices, &left.devices, &right.devices),
    ] {
        for c in &cols {
            if name == "devices" && *c == "duration_s" {
                continue; // not a column of `devices`
            }
            let (x, y, z) = (col(w, c), col(l, c), col(r, c));
            let totals = if c.ends_with("_s") {
                vec![period_s; n_dev]
            } else {
                col(&whole.devices, c)
            };
            for row in 0..x.len() {
                let dev = if name == "allocations" {
                    alloc_device[row]
                } else {
                    row
                };
                prop_assert!(
                    close(x[row], y[row] + z[row], REL, ABS_OF_TOTAL * totals[dev]),
                    "{}.{} row {}: whole {:e} vs {:e} + {:e} = {:e}",
                    name,
                    c,
                    row,
                    x[row],
                    y[row],
                    z[row],
                    y[row] + z[row]
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// SPEC 10.1.
    #[test]
    fn conservation(sc in scenario()) {
        if let Some(out) = outputs_or_skip(&sc, Run::new(&sc).go())? {
            check_conservation(&sc, &out)?;
            // Utilization adds the execution-idle columns, changes nothing
            // else, and its energy is conserved like every metric.
            let mut with_util = Run::new(&sc);
            with_util.utilization = true;
            let util_out = with_util.go().map_err(|e| TestCaseError::fail(format!("{e}")))?;
            check_execution_idle(&sc, &out, &util_out)?;
            // attribution="utilization" moves dynamic energy between a
            // device's allocations, conserved; time, embodied carbon and
            // the devices' rows do not change.
            let mut by_util = Run::new(&sc);
            by_util.utilization = true;
            by_util.opts.attribution = carbonledger_core::Attribution::Utilization;
            let weighted = by_util.go().map_err(|e| TestCaseError::fail(format!("{e}")))?;
            check_conservation(&sc, &weighted)?;
            check_utilization_attribution(&sc, &util_out, &weighted)?;
        }
    }

    /// SPEC 10.2: batch splits, time-ordered vs device-sorted interleaving,
    /// and the order of the devices table change nothing (to `SAME_REL`).
    #[test]
    fn batch_split_and_order_independence(sc in scenario()) {
        let mut rng = Rng(sc.seed ^ 0x5151);
        let base = Run::new(&sc).go();

        let mut split = Run::new(&sc);
        split.batches = random_split(&sc.samples, &mut rng);
        assert_same_result(&sc, &base, &split.go(), "device-sorted, split")?;

        let ordered = sc.time_ordered();
        let mut interleaved = Run::new(&sc);
        interleaved.batches = vec![ordered.clone()];
        assert_same_result(&sc, &base, &interleaved.go(), "time-ordered, one batch")?;
        interleaved.batches = random_split(&ordered, &mut rng);
        assert_same_result(&sc, &base, &interleaved.go(), "time-ordered, split")?;

        let mixed = sc.random_interleave(&mut rng);
        interleaved.batches = random_split(&mixed, &mut rng);
        assert_same_result(&sc, &base, &interleaved.go(), "randomly interleaved, split")?;
        // sort=True holds and sorts each device's samples: same result.
        interleaved.opts.sort = true;
        assert_same_result(&sc, &base, &interleaved.go(), "randomly interleaved, split, sort=True")?;

        // With utilization (its own, slower path): the same independence.
        let mut util_base = Run::new(&sc);
        util_base.utilization = true;
        let util_out = util_base.go();
        let mut util_split = Run::new(&sc);
        util_split.utilization = true;
        util_split.batches = random_split(&mixed, &mut rng);
        util_split.opts.sort = true;
        assert_same_result(&sc, &util_out, &util_split.go(), "utilization, interleaved, sort=True")?;
        util_split.batches = random_split(&ordered, &mut rng);
        util_split.opts.sort = false;
        assert_same_result(&sc, &util_out, &util_split.go(), "utilization, time-ordered, split")?;

        // The devices table in another order: rows follow it, values do not change.
        let mut perm: Vec<usize> = (0..sc.devices.len()).collect();
        rng.shuffle(&mut perm);
        let mut permuted = Run::new(&sc);
        permuted.dev_order = perm.clone();
        let got = permuted.go().map(|o| {
            let mut inv = vec![0u32; perm.len()];
            for (row, &d) in perm.iter().enumerate() {
                inv[d] = row as u32;
            }
            let idx = UInt32Array::from(inv);
            let take = |b: &RecordBatch| arrow_select::take::take_record_batch(b, &idx).expect("take");
            Output {
                allocations: o.allocations,
                unallocated: take(&o.unallocated),
                devices: take(&o.devices),
                grid: o.grid,
                period: o.period,
            }
        });
        assert_same_result(&sc, &base, &got, "devices table permuted")?;
    }

    /// SPEC 10.2: the number of worker threads changes nothing (to `SAME_REL`),
    /// nor do dictionary-encoded ids. Every batch is split across the workers
    /// however short (`parallel_min_rows`), as long batches are.
    #[test]
    fn thread_count_independence(sc in scenario()) {
        let mut rng = Rng(sc.seed ^ 0x7777);
        let mut run = Run::new(&sc);
        run.batches = random_split(&sc.time_ordered(), &mut rng);
        run.opts.threads = Some(1);
        let one = run.go();
        run.opts.threads = Some(3);
        run.opts.parallel_min_rows = 1;
        let three = run.go();
        assert_same_result(&sc, &one, &three, "threads 1 vs 3")?;
        run.dictionary = true;
        let dict = run.go();
        assert_same_result(&sc, &one, &dict, "threads 1 vs 3, dictionary ids")?;
        run.batches = random_split(&sc.random_interleave(&mut rng), &mut rng);
        let mixed = run.go();
        assert_same_result(&sc, &one, &mixed, "threads 3, dictionary ids, interleaved")?;
    }

    /// SPEC 10.3 (and 8): explicit periods [a, c) = [a, b) + [b, c).
    #[test]
    fn period_additivity(sc in scenario()) {
        let (a, b, c) = sc.span;
        let mut run = Run::new(&sc);
        run.opts.period = Some((a, c));
        let whole = run.go();
        run.opts.period = Some((a, b));
        let left = run.go();
        run.opts.period = Some((b, c));
        let right = run.go();
        let (whole, left, right) = match (whole, left, right) {
            (Ok(w), Ok(l), Ok(r)) => (w, l, r),
            (w, l, r) => {
                return Err(TestCaseError::fail(format!(
                    "engine error: {:?} / {:?} / {:?}",
                    w.err(), l.err(), r.err()
                )))
            }
        };
        let alloc_device: Vec<usize> = sc.allocs.iter().map(|a| a.device).collect();
        check_additivity(
            &whole,
            &left,
            &right,
            sc.devices.len(),
            &alloc_device,
            (c - a) as f64 / 1e9,
        )?;
    }

    /// SPEC 10.4: power (or counters and their moduli) x k gives energy and
    /// operational carbon x k; embodied, time and data-quality counts unchanged.
    #[test]
    fn linearity(
        sc in scenario(),
        k in prop_oneof![Just(2.0f64), Just(0.5), 1e-3..1e3f64],
    ) {
        linearity_case(sc, k)?;
    }
}

fn linearity_case(mut sc: Scenario, k: f64) -> Result<(), TestCaseError> {
    sc.gap_fill_idle = false; // not with idle fill
    let base = Run::new(&sc).go();
    let mut run = Run::new(&sc);
    run.scale = k;
    // The power ceiling scales with the power (k <= 1e3 keeps it within the
    // bound on ceilings), else a base run near the default ceiling would
    // fail scaled up.
    run.opts.max_power_w =
        (run.opts.max_power_w * k.max(1.0)).min(carbonledger_core::inputs::MAX_POWER_CEILING_W);
    let scaled = run.go();
    let Some(base) = outputs_or_skip(&sc, base)? else {
        prop_assert!(scaled.is_err());
        return Ok(());
    };
    let scaled = scaled.map_err(|e| TestCaseError::fail(format!("scaled run failed: {e}")))?;
    let alloc_device: Vec<usize> = sc.allocs.iter().map(|a| a.device).collect();
    check_linearity(&base, &scaled, k, &alloc_device)
}

// --- regression: the mean of identical duplicate counter samples ------------

/// A stuck counter read three times at t = 0 s and again at 10 s, then
/// 1000 J more at 20 s. `((x + x) + x) / 3 > x` for this `x` in f64: an engine
/// that averages duplicates as sum / n sees the counter go down by one ulp
/// between 0 s and 10 s, and books a reset (or, with a modulus, a whole wrap).
fn stuck_counter_scenario(wrap_j: Option<f64>) -> Scenario {
    let x = 945_270.695_553_922_3_f64;
    assert!(((x + x) + x) / 3.0 > x, "x trips the rounding");
    let sample = |s: i64, v: f64| Sample {
        device: 0,
        ts: T0 + s * S,
        v,
    };
    Scenario {
        devices: vec![DevSpec {
            region: 0,
            pue: 1.0,
            embodied: 0.0,
            installed: T0 - 100 * 86_400 * S,
            lifetime_years: Some(2.0),
            retired: None,
            idle_w: 0.0,
            wrap_j,
        }],
        grid: vec![GridSpec {
            region: 0,
            start: T0 - GRID_REACH,
            end: None,
            c: 100.0,
            cfe: None,
            residual: None,
        }],
        allocs: vec![],
        samples: vec![
            sample(0, x),
            sample(0, x),
            sample(0, x),
            sample(10, x),
            sample(20, x + 1000.0),
        ],
        counters: true,
        interpolation: Interpolation::Linear,
        gap_fill_idle: false,
        period: Some((T0, T0 + 20 * S)),
        span: (T0, T0 + 10 * S, T0 + 20 * S),
        seed: 0,
    }
}

#[test]
fn regression_identical_counter_duplicates_fake_reset() {
    let out = Run::new(&stuck_counter_scenario(None)).go().expect("runs");
    // SPEC 4: duplicates are averaged (the mean of x, x, x is x), so
    // [0, 10) carries 0 J and [10, 20) carries 1000 J, fully covered.
    assert_eq!(u64s(&out.devices, "duplicate_samples"), vec![2]);
    let got = stuck_counter_summary(&out);
    assert!(
        got.0 == 0 && got.1 == 0 && got.2 == 0.0 && (got.3 - 1000.0).abs() <= 1e-9 * 1000.0,
        "(resets, wraps, uncovered_s, energy_j): expected (0, 0, 0, 1000), got {got:?}"
    );
}

/// (counter_resets, counter_wraps, uncovered_s, energy in J) of the one device.
fn stuck_counter_summary(out: &Output) -> (u64, u64, f64, f64) {
    (
        u64s(&out.devices, "counter_resets")[0],
        u64s(&out.devices, "counter_wraps")[0],
        col(&out.devices, "uncovered_s")[0],
        col(&out.devices, "energy_kwh")[0] * 3.6e6,
    )
}

#[test]
fn regression_identical_counter_duplicates_fake_wrap() {
    let out = Run::new(&stuck_counter_scenario(Some(1e6)))
        .go()
        .expect("runs");
    // 1000 J; sum / n averaging booked about 1e6 + 1000 J (one wrap).
    let got = stuck_counter_summary(&out);
    assert!(
        got.0 == 0 && got.1 == 0 && got.2 == 0.0 && (got.3 - 1000.0).abs() <= 1e-9 * 1000.0,
        "(resets, wraps, uncovered_s, energy_j): expected (0, 0, 0, 1000), got {got:?}"
    );
}

// --- 10.5: constant power ---------------------------------------------------

#[derive(Debug, Clone)]
struct ConstCase {
    p: f64,
    pue: f64,
    c: f64,
    cfe: f64,
    counters: bool,
    previous: bool,
    /// Allocation [s, e) as offsets from T0.
    s: i64,
    len: i64,
    /// Samples start `lead` before s and end at least `tail` after e.
    lead: i64,
    tail: i64,
    e0: f64,
    period_kind: u8,
    seed: u64,
}

fn const_case() -> impl Strategy<Value = ConstCase> {
    (
        (
            1.0..1000.0f64,
            1.0..2.0f64,
            0.0..800.0f64,
            0.0..=1.0f64,
            any::<bool>(),
            any::<bool>(),
        ),
        (
            -100 * S..100 * S,
            S..1000 * S,
            0..100 * S,
            0..100 * S,
            0.0..1e4f64,
            0u8..3,
            any::<u64>(),
        ),
    )
        .prop_map(
            |(
                (p, pue, c, cfe, counters, previous),
                (s, len, lead, tail, e0, period_kind, seed),
            )| {
                ConstCase {
                    p,
                    pue,
                    c,
                    cfe,
                    counters,
                    previous,
                    s,
                    len,
                    lead,
                    tail,
                    e0,
                    period_kind,
                    seed,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// SPEC 10.5: constant power P, intensity c and PUE u over an allocation
    /// of T seconds, share 1, fully covered: energy = P T, operational =
    /// P T u c / 3.6e9 (and facility, market, embodied, time to match).
    #[test]
    fn constant_power(cc in const_case()) {
        let mut rng = Rng(cc.seed);
        let (s, e) = (T0 + cc.s, T0 + cc.s + cc.len);
        let mut samples = Vec::new();
        let mut t = s - cc.lead;
        let first = t;
        loop {
            let v = if cc.counters {
                cc.e0 + cc.p * ((t - first) as f64 / 1e9)
            } else {
                cc.p
            };
            samples.push(Sample { device: 0, ts: t, v });
            if rng.below(8) == 0 {
                samples.push(Sample { device: 0, ts: t, v }); // a duplicate
            }
            if t >= e + cc.tail {
                break;
            }
            t += 1 + (rng.next() % MAX_GAP as u64) as i64;
        }
        let last = t;
        let period = match cc.period_kind {
            0 => None,
            1 => Some((s, e)),
            _ => Some((first, last)),
        };
        let embodied = 100.0;
        let window_s = 2.0 * 31_557_600.0;
        let sc = Scenario {
            devices: vec![DevSpec {
                region: 0,
                pue: cc.pue,
                embodied,
                installed: T0 - 100 * 86_400 * S,
                lifetime_years: Some(2.0),
                retired: None,
                idle_w: 0.0,
                wrap_j: None,
            }],
            grid: vec![GridSpec {
                region: 0,
                start: T0 - GRID_REACH,
                end: None,
                c: cc.c,
                cfe: Some(cc.cfe),
                residual: None,
            }],
            allocs: vec![AllocSpec { device: 0, start: s, end: e, share: Some(1.0) }],
            samples,
            counters: cc.counters,
            interpolation: if cc.previous { Interpolation::Previous } else { Interpolation::Linear },
            gap_fill_idle: false,
            period,
            span: (s, s + 1, e),
            seed: cc.seed,
        };
        let out = Run::new(&sc)
            .go()
            .map_err(|err| TestCaseError::fail(format!("engine error: {err}")))?;
        let t_s = cc.len as f64 / 1e9;
        let energy_j = cc.p * t_s;
        let expected = [
            ("duration_s", t_s),
            ("energy_kwh", energy_j / 3.6e6),
            ("facility_energy_kwh", energy_j * cc.pue / 3.6e6),
            ("operational_kgco2e", energy_j * cc.pue * cc.c / 3.6e9),
            ("operational_market_kgco2e", energy_j * cc.pue * (1.0 - cc.cfe) * cc.c / 3.6e9),
            ("embodied_kgco2e", embodied * t_s / window_s),
        ];
        for (name, v) in expected {
            let got = col(&out.allocations, name)[0];
            prop_assert!(
                close(got, v, REL, 0.0),
                "{}: got {:e}, expected {:e}",
                name,
                got,
                v
            );
        }
        prop_assert_eq!(col(&out.allocations, "uncovered_s")[0], 0.0);
        prop_assert_eq!(col(&out.devices, "uncovered_s")[0], 0.0);
        prop_assert_eq!(u64s(&out.devices, "gaps")[0], 0);
        // The device over the whole period is fully covered too.
        let (p0, p1) = period.unwrap_or((first, last));
        let dev_energy_j = cc.p * ((p1 - p0) as f64 / 1e9);
        let got = col(&out.devices, "energy_kwh")[0];
        prop_assert!(close(got, dev_energy_j / 3.6e6, REL, 0.0), "device energy {:e}", got);
    }
}
