//! The driver: compile the plan (`plan`), then stream power batches through
//! the per-device state machines (parallel over devices), then close the books.

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use rayon::prelude::*;

use crate::error::{earliest, Error, ErrorKind, Result};
use crate::integrate::{DeviceState, Hot, COUNTER, HOLD, LINEAR};
use crate::options::Options;
pub use crate::plan::{power_utilization, power_value_kind, Plan, Utilization, ValueKind};
use crate::report::{self, Output};
use crate::schema::{floats, fmt_ts, required, times, times_unchecked, Table, ERA_NS};

/// Batches decoded ahead of the one being integrated.
const READ_AHEAD: usize = 8;

/// Rows a worker picks out of a batch at a time (its devices' rows).
const BLOCK: usize = 4096;

/// One batch's columns, all of one length (`Keyed` reads keys unchecked).
struct Rows<'a, D> {
    dev: D,
    ts: &'a [i64],
    vals: &'a [f64],
}

impl<'a, D: Devices> Rows<'a, D> {
    fn new(dev: D, ts: &'a [i64], vals: &'a [f64]) -> Self {
        // A record batch's columns have one length; checked once per batch.
        assert!(dev.len() == vals.len() && ts.len() == vals.len());
        Self { dev, ts, vals }
    }
}

/// A worker's devices `lo..lo + states.len()`: their state machines and hot
/// records.
struct DeviceRange<'a> {
    lo: usize,
    states: &'a mut [DeviceState],
    hot: &'a mut [Hot],
}

/// Each row's device index, for the engine's row loop.
trait Devices: Sync {
    fn len(&self) -> usize;
    fn at(&self, row: usize) -> u32;
}

/// Ids resolved up front.
struct Resolved<'a>(&'a [u32]);

impl Devices for Resolved<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }

    #[inline(always)]
    fn at(&self, row: usize) -> u32 {
        self.0[row]
    }
}

/// Dictionary keys resolved as they are read (`KeyIndex::dictionary_lut`
/// checked every key and every value, so the indexing never fails; its
/// bounds checks cost nothing measurable).
struct Keyed<'a> {
    keys: &'a [i32],
    lut: &'a [u32],
}

impl Devices for Keyed<'_> {
    fn len(&self) -> usize {
        self.keys.len()
    }

    #[inline(always)]
    fn at(&self, row: usize) -> u32 {
        self.lut[self.keys[row] as usize]
    }
}

/// A sample held for sorting: (timestamp or null, value, utilization or NaN).
type HeldSample = (Option<i64>, f64, f64);

/// The small input tables.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub devices: &'a Table,
    pub sites: &'a Table,
    pub intensity: &'a Table,
    pub allocations: Option<&'a Table>,
}

/// The run state of one accounting: every device's state machine, fed
/// batch by batch, over a compiled [`Plan`].
#[derive(Debug)]
pub struct Engine {
    plan: Plan,
    /// The current source's value column.
    kind: ValueKind,
    /// The current source's utilization column, if it has one.
    util: Option<Utilization>,
    states: Vec<DeviceState>,
    /// The common-case part of each device's state (`Hot::OFF` when idle).
    hot: Vec<Hot>,
    /// `sort=True`: every device's samples, held until the end.
    held: Option<Vec<Vec<HeldSample>>>,
    pool: rayon::ThreadPool,
    /// Scratch reused across batches: each row's device index.
    rows: Vec<u32>,
    /// The last dictionary of ids and its key -> device table.
    lut: Option<(arrow_array::ArrayRef, Vec<u32>)>,
}

impl Engine {
    /// Compile and check everything but the samples (`Plan::compile`),
    /// then start the run.
    pub fn new(inputs: &Inputs<'_>, power_schema: &Schema, opts: Options) -> Result<Self> {
        Self::start(Plan::compile(inputs, &[power_schema], opts)?)
    }

    /// Start a run over a plan, reading its first power source.
    pub fn start(plan: Plan) -> Result<Self> {
        let Some(&kind) = plan.kinds.first() else {
            return Err(Error::input(
                "table 'power': no source given; expected at least one table, path or stream of samples",
            ));
        };
        let mut builder = rayon::ThreadPoolBuilder::new();
        if let Some(n) = plan.opts.threads {
            builder = builder.num_threads(n.max(1));
        }
        let pool = builder
            .build()
            .map_err(|e| Error::internal(format!("cannot start worker threads: {e}")))?;
        let n_dev = plan.fleet.devices.len();
        Ok(Self {
            kind,
            util: plan.utilization.first().copied().flatten(),
            states: plan
                .allocs
                .iter()
                .map(|a| DeviceState::new(a.rows.len()))
                .collect(),
            hot: vec![Hot::OFF; n_dev],
            held: plan.opts.sort.then(|| vec![Vec::new(); n_dev]),
            pool,
            rows: Vec::new(),
            lut: None,
            plan,
        })
    }

    /// Switch to the next power source (SPEC 2, several sources): later
    /// batches carry `schema`'s value column. Hot runs of the previous
    /// source are folded first, so every device's first sample of the new
    /// source passes the general path, which checks the device's kind.
    pub fn begin_source(&mut self, schema: &Schema) -> Result<()> {
        let kind = power_value_kind(schema, &self.plan.fleet.device_ids)?;
        self.util = power_utilization(schema)?;
        let counters = self.kind == ValueKind::EnergyJ;
        for (st, h) in self.states.iter_mut().zip(self.hot.iter_mut()) {
            st.settle(h, counters);
        }
        self.kind = kind;
        Ok(())
    }

    /// Stream one batch of samples.
    pub fn feed(&mut self, batch: &RecordBatch) -> Result<()> {
        self.feed_with(batch, true)
    }

    /// `feed`, on one thread unless `spread`: when the reader is the slower
    /// side, a second worker would only take CPU from its decoding.
    fn feed_with(&mut self, batch: &RecordBatch, spread: bool) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        match read_window(&self.plan.opts, batch)? {
            Window::Part(inside) if inside.num_rows() == 0 => Ok(()),
            Window::Part(inside) => self.feed_rows(&inside, spread, false),
            Window::Whole { in_era } => self.feed_rows(batch, spread, in_era),
        }
    }

    /// `in_era`: every time is already known to lie in [`ERA_NS`].
    fn feed_rows(&mut self, batch: &RecordBatch, spread: bool, in_era: bool) -> Result<()> {
        let col = self.kind.column();
        let ids = required(batch, "power", "device_id", "ids of devices.device_id")?;
        let ts_col = required(batch, "power", "ts", "a timestamp")?;
        let ts = if in_era {
            times_unchecked(ts_col, "power", "ts")?
        } else {
            times(ts_col, "power", "ts")?
        };
        let vals = floats(
            required(batch, "power", col, "a numeric column")?,
            "power",
            col,
        )?;
        let utils = match self.util {
            Some(u) => Some((u, utilizations(batch, u)?)),
            None => None,
        };
        let Self {
            plan,
            kind,
            states,
            hot,
            held,
            pool,
            rows,
            lut,
            ..
        } = self;
        let device_ids = &plan.fleet.device_ids;
        let (of, name) = ("devices.device_id", "device_id");
        rows.clear();
        let keyed = match (&held, &utils) {
            (None, None) => device_ids.dictionary_lut(ids, "power", name, of, lut)?,
            _ => None,
        };
        if keyed.is_none() {
            pool.install(|| device_ids.resolve_parallel(ids, "power", name, of, rows))?;
        }

        if let Some(held) = held {
            for (r, &d) in rows.iter().enumerate() {
                let d = d as usize;
                claim_kind(&mut states[d], *kind, || device_ids.name(d))?;
                let u = match &utils {
                    Some((util, values)) => checked_utilization(*util, values[r], r, d, &ts, plan)?,
                    None => f64::NAN,
                };
                held[d].push((ts.get(r), vals[r], u));
            }
            return Ok(());
        }
        if let Some((util, mut values)) = utils {
            for (r, (v, &d)) in values.iter_mut().zip(rows.iter()).enumerate() {
                *v = checked_utilization(util, *v, r, d as usize, &ts, plan)?;
            }
            return feed_with_utilization(
                plan, *kind, states, hot, rows, &ts.values, &vals, &values,
            );
        }

        // Null timestamps were rejected by `read_window`.
        let (ts, vals) = (&ts.values[..], &vals[..]);
        let walker = Walker { plan, kind: *kind };
        let workers = if spread && vals.len() >= plan.opts.parallel_min_rows {
            pool.current_num_threads().clamp(1, states.len().max(1))
        } else {
            1
        };
        match (keyed, lut.as_ref()) {
            (Some(keys), Some((_, lut))) => walker.walk_batch(
                pool,
                states,
                hot,
                &Rows::new(Keyed { keys, lut }, ts, vals),
                workers,
            ),
            (Some(_), None) => Err(Error::internal("dictionary ids without their table")),
            (None, _) => walker.walk_batch(
                pool,
                states,
                hot,
                &Rows::new(Resolved(rows), ts, vals),
                workers,
            ),
        }
    }

    /// Close the books and build the result tables.
    pub fn finish(self) -> Result<Output> {
        let Self {
            plan,
            mut states,
            mut hot,
            held,
            pool,
            ..
        } = self;
        for (st, h) in states.iter_mut().zip(hot.iter_mut()) {
            let counters = st.kind == Some(ValueKind::EnergyJ);
            st.settle(h, counters);
        }
        if let Some(mut held) = held {
            pool.install(|| {
                states
                    .par_iter_mut()
                    .zip(held.par_iter_mut())
                    .enumerate()
                    .map(|(i, (st, samples))| {
                        samples.sort_by_key(|s| s.0.unwrap_or(i64::MIN));
                        let ctx = plan.ctx(i, st.kind == Some(ValueKind::EnergyJ));
                        for &(t, v, u) in samples.iter() {
                            st.push(&ctx, t, v, u)?;
                        }
                        Ok(())
                    })
                    .reduce(|| Ok(()), |a, b| a.and(b))
            })?;
        }
        let (p0, p1) = match plan.opts.period {
            Some(p) => p,
            None => {
                let first = states.iter().filter_map(|s| s.stats.first_ts).min();
                let last = states.iter().filter_map(|s| s.stats.last_ts).max();
                let (Some(p0), Some(p1)) = (first, last) else {
                    return Err(Error::input(
                        "table 'power': no valid sample and no period; expected samples or an explicit period=(start, end)",
                    ));
                };
                if p1 <= p0 {
                    return Err(Error::input(format!(
                        "table 'power': all valid samples are at {}; the default period [min ts, max ts) is empty, pass an explicit period",
                        fmt_ts(p0)
                    )));
                }
                plan.check_period(p0, p1)?;
                (p0, p1)
            }
        };
        pool.install(|| {
            states
                .par_iter_mut()
                .enumerate()
                .map(|(i, st)| st.finish(&plan.ctx(i, st.kind == Some(ValueKind::EnergyJ)), p0, p1))
                .reduce(|| Ok(()), |a, b| a.and(b))
        })?;
        let out = report::build(
            &states,
            &plan.allocs,
            &plan.echoed,
            &report::GridContext {
                grids: &plan.grids,
                regions: &plan.fleet.regions,
                devices: &plan.fleet.devices,
                period: (p0, p1),
            },
            plan.has_utilization(),
        );
        report::check_finite(&out)?;
        Ok(out)
    }
}

/// A batch whose samples carry utilization, on the calling thread and
/// through the general state machine only: the hot runs integrate energy
/// without looking at utilization. Slower than the hot path, exact all the
/// same.
#[allow(clippy::too_many_arguments)]
fn feed_with_utilization(
    plan: &Plan,
    kind: ValueKind,
    states: &mut [DeviceState],
    hot: &mut [Hot],
    rows: &[u32],
    ts: &[i64],
    vals: &[f64],
    utils: &[f64],
) -> Result<()> {
    let counters = kind == ValueKind::EnergyJ;
    for (r, &d) in rows.iter().enumerate() {
        let d = d as usize;
        let st = &mut states[d];
        claim_kind(st, kind, || plan.fleet.device_ids.name(d))?;
        let ctx = plan.ctx(d, counters);
        st.settle(&mut hot[d], counters);
        st.push(&ctx, Some(ts[r]), vals[r], utils[r])?;
    }
    Ok(())
}

/// The batch's utilization column, scaled to fractions (NaN where null),
/// not yet checked.
fn utilizations(batch: &RecordBatch, u: Utilization) -> Result<Vec<f64>> {
    let col = required(batch, "power", u.column, "a numeric column")?;
    Ok(floats(col, "power", u.column)?
        .iter()
        .map(|&x| x * u.scale)
        .collect())
}

/// Row `r`'s utilization (a fraction, NaN when unknown) of device `d`. A
/// value outside 0..1 is an input error: most likely a percentage in the
/// fraction column, which would make every sample look busy.
fn checked_utilization(
    u: Utilization,
    f: f64,
    r: usize,
    d: usize,
    ts: &crate::schema::Times<'_>,
    plan: &Plan,
) -> Result<f64> {
    // Tolerate rounding just past the ends (e.g. 100.00000001 %).
    if f.is_nan() || (-1e-9..=1.0 + 1e-9).contains(&f) {
        return Ok(f.clamp(0.0, 1.0));
    }
    let x = f / u.scale;
    let (expected, hint) = if u.scale == 1.0 {
        let hint = if (0.0..=100.0).contains(&x) {
            "; it looks like a percentage: name the column 'utilization_pct' (or divide by 100)"
        } else {
            ""
        };
        ("a fraction between 0 and 1", hint)
    } else {
        ("a percentage between 0 and 100", "")
    };
    let at = ts.get(r).map_or_else(|| "a null time".to_string(), fmt_ts);
    Err(Error::new(
        ErrorKind::InvalidSample,
        format!(
            "table 'power', column '{}': value {x} for device_id {} at {at}; expected {expected}{hint}",
            u.column,
            plan.fleet.device_ids.name(d)
        ),
    ))
}

/// SPEC 8 (v1.1): with an explicit period only rows whose `ts` lies in
/// `W = [start - max_gap, end + max_gap]` can change a result; the others
/// are ignored, neither counted nor validated. `None`: every row is in
/// `W` (no copy); else the rows in `W`. A null `ts` is an input error
/// wherever it is read.
/// What the read window leaves of a batch.
enum Window {
    /// Every row; `in_era` when its times were seen to lie in [`ERA_NS`]
    /// (the window's own scan), so that check need not pass again.
    Whole { in_era: bool },
    /// The rows inside the window.
    Part(RecordBatch),
}

fn read_window(opts: &Options, batch: &RecordBatch) -> Result<Window> {
    let col = required(batch, "power", "ts", "a timestamp")?;
    if col.null_count() > 0 {
        let row = (0..col.len()).find(|&r| col.is_null(r)).unwrap_or(0);
        let id = batch
            .column_by_name("device_id")
            .and_then(|ids| arrow_cast::display::array_value_to_string(ids, row).ok())
            .unwrap_or_default();
        return Err(Error::input(format!(
            "table 'power', column 'ts': null timestamp in a sample of device_id '{id}'; expected a timestamp in every row"
        )));
    }
    let Some((p0, p1)) = opts.period else {
        return Ok(Window::Whole { in_era: false });
    };
    let gap = opts.max_gap_ns;
    let (w0, w1) = (p0.saturating_sub(gap), p1.saturating_add(gap));
    let ts = times_unchecked(col, "power", "ts")?;
    let (lo, hi) = ts
        .values
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
    if lo >= w0 && hi <= w1 {
        let in_era = ts.values.is_empty() || (lo >= ERA_NS.0 && hi < ERA_NS.1);
        return Ok(Window::Whole { in_era });
    }
    let keep: arrow_array::BooleanArray = ts
        .values
        .iter()
        .map(|&t| Some(t >= w0 && t <= w1))
        .collect();
    arrow_select::filter::filter_record_batch(batch, &keep)
        .map(Window::Part)
        .map_err(|e| Error::internal(format!("cannot filter a batch to the read window: {e}")))
}

/// What the workers read while walking a batch: the plan and the current
/// source's value kind.
#[derive(Clone, Copy)]
struct Walker<'a> {
    plan: &'a Plan,
    kind: ValueKind,
}

impl Walker<'_> {
    /// Each worker owns a contiguous range of devices and walks the whole
    /// batch in row order, taking its devices' rows: no reordering, and every
    /// device sees its samples in input order on one thread, so the result
    /// does not depend on the thread count.
    fn walk_batch<D: Devices>(
        self,
        pool: &rayon::ThreadPool,
        states: &mut [DeviceState],
        hot: &mut [Hot],
        batch: &Rows<'_, D>,
        workers: usize,
    ) -> Result<()> {
        // One worker runs on the calling thread: handing the batch to the
        // pool would only wake its threads, which then spin (`sched_yield`)
        // on the cores the Parquet decoders need.
        let first_error = if workers == 1 {
            let mut all = DeviceRange { lo: 0, states, hot };
            self.walk_rows(batch, &mut all, 0..batch.vals.len())
        } else {
            let per = states.len().div_ceil(workers).max(1);
            pool.install(|| {
                states
                    .par_chunks_mut(per)
                    .zip(hot.par_chunks_mut(per))
                    .enumerate()
                    .map(|(w, (states, hot))| {
                        let mine = DeviceRange {
                            lo: w * per,
                            states,
                            hot,
                        };
                        self.run(batch, mine)
                    })
                    .reduce(|| None, earliest)
            })
        };
        // The error of the earliest row: the same whatever the thread count.
        match first_error {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    /// One worker's pass over a batch: the rows of its share of the
    /// devices, in row order. Returns the first error and its row.
    fn run<D: Devices>(
        &self,
        batch: &Rows<'_, D>,
        mut mine: DeviceRange<'_>,
    ) -> Option<(usize, Error)> {
        let n = batch.vals.len();
        // Pick this worker's rows a block at a time, without a branch per row.
        let mut picked = [0u32; BLOCK];
        let (lo32, n_mine) = (mine.lo as u32, mine.states.len() as u32);
        for start in (0..n).step_by(BLOCK) {
            let end = (start + BLOCK).min(n);
            let mut k = 0;
            for r in start..end {
                picked[k] = r as u32;
                k += usize::from(batch.dev.at(r).wrapping_sub(lo32) < n_mine);
            }
            let rows = picked[..k].iter().map(|&r| r as usize);
            let failed = self.walk_rows(batch, &mut mine, rows);
            if failed.is_some() {
                return failed;
            }
        }
        None
    }

    /// `walk` specialized for null timestamps and the segment rule.
    #[inline(always)]
    fn walk_rows<D: Devices>(
        &self,
        batch: &Rows<'_, D>,
        mine: &mut DeviceRange<'_>,
        rows: impl Iterator<Item = usize>,
    ) -> Option<(usize, Error)> {
        let rule = match (self.kind, self.plan.opts.interpolation) {
            (ValueKind::EnergyJ, _) => COUNTER,
            (ValueKind::PowerW, crate::options::Interpolation::Linear) => LINEAR,
            (ValueKind::PowerW, crate::options::Interpolation::Previous) => HOLD,
        };
        match rule {
            LINEAR => self.walk::<LINEAR, D>(batch, mine, rows),
            HOLD => self.walk::<HOLD, D>(batch, mine, rows),
            _ => self.walk::<COUNTER, D>(batch, mine, rows),
        }
    }

    /// The per-row loop: the hot state takes the common case inline, the
    /// general state machine everything else.
    #[inline(always)]
    fn walk<const RULE: u8, D: Devices>(
        &self,
        batch: &Rows<'_, D>,
        mine: &mut DeviceRange<'_>,
        rows: impl Iterator<Item = usize>,
    ) -> Option<(usize, Error)> {
        let max_gap = self.plan.opts.max_gap_ns;
        let DeviceRange { lo, states, hot } = mine;
        let lo = *lo;
        for r in rows {
            let (t, v) = (batch.ts[r], batch.vals[r]);
            let d = batch.dev.at(r) as usize - lo;
            if !hot[d].take::<RULE>(t, v, max_gap) {
                if let Err(e) = self.general(&mut states[d], &mut hot[d], lo + d, t, v) {
                    return Some((r, e));
                }
            }
        }
        None
    }

    /// A sample the hot state cannot take: fold the hot run back, let the
    /// state machine take the sample, and start the next run.
    #[cold]
    #[inline(never)]
    fn general(&self, st: &mut DeviceState, hot: &mut Hot, i: usize, t: i64, v: f64) -> Result<()> {
        claim_kind(st, self.kind, || self.plan.fleet.device_ids.name(i))?;
        let ctx = self.plan.ctx(i, self.kind == ValueKind::EnergyJ);
        st.settle(hot, ctx.counters);
        st.push(&ctx, Some(t), v, f64::NAN)?;
        *hot = st.arm(&ctx);
        Ok(())
    }
}

/// Run the whole accounting over an iterator of power batches. Batches are
/// read ahead on a separate thread (decoding overlaps integration);
/// `cancelled` is polled between batches (Ctrl-C).
pub fn account<I>(
    inputs: &Inputs<'_>,
    power_schema: &Schema,
    power: I,
    opts: Options,
    cancelled: &dyn Fn() -> bool,
) -> Result<Output>
where
    I: Iterator<Item = Result<RecordBatch>> + Send,
{
    account_sources(inputs, vec![(power_schema, power)], opts, cancelled)
}

/// What the read-ahead thread hands the engine: the start of the next
/// power source (its schema), or one of its batches.
enum Pulled<'s> {
    Source(&'s Schema),
    Batch(Result<RecordBatch>),
}

/// `account` over several power sources (SPEC 2), read one after the
/// other; each source's batches carry that source's value column.
pub fn account_sources<I>(
    inputs: &Inputs<'_>,
    sources: Vec<(&Schema, I)>,
    opts: Options,
    cancelled: &dyn Fn() -> bool,
) -> Result<Output>
where
    I: Iterator<Item = Result<RecordBatch>> + Send,
{
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    if sources.is_empty() {
        return Err(Error::input(
            "table 'power': no source given; expected at least one table, path or stream of samples",
        ));
    };
    // Every source's schema is checked before any sample is read.
    let schemas: Vec<&Schema> = sources.iter().map(|(schema, _)| *schema).collect();
    let mut engine = Engine::start(Plan::compile(inputs, &schemas, opts)?)?;
    // Batches read ahead and not yet taken, and whether the reader has
    // read them all. The engine spreads a batch over its threads only when
    // the read-ahead is full (the engine is the bottleneck) or nothing is
    // left to read (in memory: a table of a few large chunks); otherwise
    // the reader (the Parquet decoders, on every core) needs the cores,
    // and an engine on one thread leaves them free. Spreading as soon as
    // two batches waited took CPU from the decoders whenever a row group
    // decoded ahead was handed over at once.
    let waiting = AtomicUsize::new(0);
    let all_read = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Pulled<'_>>(READ_AHEAD);
        let (waiting, all_read) = (&waiting, &all_read);
        scope.spawn(move || {
            for (k, (schema, power)) in sources.into_iter().enumerate() {
                if k > 0 && tx.send(Pulled::Source(schema)).is_err() {
                    return;
                }
                for batch in power {
                    let stop = batch.is_err();
                    waiting.fetch_add(1, Ordering::Relaxed);
                    if tx.send(Pulled::Batch(batch)).is_err() || stop {
                        return;
                    }
                }
            }
            all_read.store(true, Ordering::Relaxed);
        });
        for pulled in rx {
            let batch = match pulled {
                Pulled::Source(schema) => {
                    engine.begin_source(schema)?;
                    continue;
                }
                Pulled::Batch(batch) => batch,
            };
            let behind = waiting.fetch_sub(1, Ordering::Relaxed) >= READ_AHEAD
                || all_read.load(Ordering::Relaxed);
            if cancelled() {
                return Err(Error::new(ErrorKind::Interrupted, "interrupted"));
            }
            engine.feed_with(&batch?, behind)?;
        }
        Ok(())
    })?;
    if cancelled() {
        return Err(Error::new(ErrorKind::Interrupted, "interrupted"));
    }
    engine.finish()
}

/// Give a device the current source's value kind on its first sample; a
/// sample from a source of the other kind is an input error (SPEC 2: every
/// device's samples come from one kind).
fn claim_kind(st: &mut DeviceState, kind: ValueKind, name: impl FnOnce() -> String) -> Result<()> {
    match st.kind {
        None => {
            st.kind = Some(kind);
            Ok(())
        }
        Some(k) if k == kind => Ok(()),
        Some(k) => Err(Error::input(format!(
            "table 'power': device_id {} has samples in a '{}' source and in a '{}' source; expected every device's samples to come from one kind (power or energy counter)",
            name(),
            k.column(),
            kind.column()
        ))),
    }
}
