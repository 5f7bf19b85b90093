//! The per-device state machine: samples in time order become points
//! (invalid ones dropped, duplicates averaged), consecutive points become
//! segments (interpolated, counter deltas, or gaps), and segments clipped to
//! the period advance the device's ledger cursor.

use crate::attribute::DeviceAccounts;
use crate::error::{Error, ErrorKind, Result};
use crate::ledger::{Cursor, DeviceCtx, Segment, Shape};
use crate::options::{Interpolation, OnInvalid};
use crate::plan::ValueKind;
use crate::schema::fmt_ts;

/// Data-quality counts of one device (SPEC 9, `devices` table).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub samples: u64,
    pub invalid: u64,
    pub duplicates: u64,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
    pub gaps: u64,
    pub wraps: u64,
    pub resets: u64,
}

/// Samples a hot run sums plainly before it is folded into the piece's
/// compensated sum (bounds the rounding of the plain sum).
const RUN_MAX: u32 = 1 << 12;

/// How a hot run turns two consecutive points into energy: the `Shape` of
/// its segments (`take`'s const parameter).
pub const LINEAR: u8 = 0;
pub const HOLD: u8 = 1;
pub const COUNTER: u8 = 2;

/// The part of a device's state that the common case touches, in one cache
/// line: valid samples in increasing time whose segments stay inside the
/// current piece and the period, with no gap (and, for counters, no step
/// back: no wrap or reset). The pending point (`pending_ts`,
/// `pending_mean`: the mean of its duplicates so far) becomes final once a
/// later valid sample arrives; then the segment from the last final point
/// (`final_ts`, `final_value`) to it is integrated. Anything else goes to `DeviceState::push`
/// after `settle`; `arm` starts the next run.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub struct Hot {
    pending_ts: i64,
    pending_mean: f64,
    final_ts: i64,
    final_value: f64,
    /// Segments must end by here: the piece end and the clip end.
    limit: i64,
    /// Energy of the run: W ns (J x 1e9) for power, one division when it is
    /// folded; J for counters.
    energy: f64,
    /// The device's power ceiling (W): a sample or a counter's rise above it
    /// takes the general path, which rejects it.
    max_w: f64,
    taken: u32,
}

impl Hot {
    /// Takes nothing: every sample goes to the general path.
    pub const OFF: Hot = Hot {
        pending_ts: i64::MAX,
        pending_mean: 0.0,
        final_ts: i64::MAX,
        final_value: 0.0,
        limit: i64::MIN,
        energy: 0.0,
        max_w: 0.0,
        taken: 0,
    };

    /// Take one sample if the common case holds; `false` leaves the state
    /// untouched for the general path.
    #[inline(always)]
    pub fn take<const RULE: u8>(&mut self, t: i64, v: f64, max_gap: i64) -> bool {
        // A counter's segment is its rise, booked only when it does not go
        // back (the general path handles wraps and resets).
        let rise = self.pending_mean - self.final_value;
        let len_ns = (self.pending_ts - self.final_ts) as f64;
        // Power: finite, >= +0 and at most the ceiling in one integer compare
        // (non-negative floats order as their bits; -0.0, also valid, takes
        // the general path). Counters: any finite value >= +0, and a rise
        // that neither goes back nor exceeds the ceiling's energy.
        let valid = if RULE == COUNTER {
            (v.to_bits() < f64::INFINITY.to_bits())
                & (rise >= 0.0)
                & (rise * 1e9 <= self.max_w * len_ns)
        } else {
            v.to_bits() <= self.max_w.to_bits()
        };
        // Non-short-circuit: one branch, not six.
        let ok = (t > self.pending_ts)
            & valid
            & (self.pending_ts - self.final_ts <= max_gap)
            & (self.pending_ts <= self.limit)
            & (self.taken < RUN_MAX);
        if !ok {
            return false;
        }
        self.energy += match RULE {
            LINEAR => 0.5 * (self.final_value + self.pending_mean) * len_ns,
            HOLD => self.final_value * len_ns,
            _ => rise,
        };
        self.final_ts = self.pending_ts;
        self.final_value = self.pending_mean;
        self.pending_ts = t;
        self.pending_mean = v;
        self.taken += 1;
        true
    }
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    ts: i64,
    /// Running mean of the duplicates at `ts`: exact when they are all equal
    /// (a counter that stood still must not look like it went back).
    mean: f64,
    n: u32,
    /// Running mean of the duplicates' known utilizations (NaN: none known).
    util: f64,
    util_n: u32,
}

impl Pending {
    fn new(ts: i64, v: f64, util: f64) -> Self {
        Self {
            ts,
            mean: v,
            n: 1,
            util,
            util_n: u32::from(!util.is_nan()),
        }
    }

    fn merge(&mut self, v: f64, util: f64) {
        self.n += 1;
        self.mean += (v - self.mean) / f64::from(self.n);
        if !util.is_nan() {
            self.util_n += 1;
            self.util = if self.util_n == 1 {
                util
            } else {
                self.util + (util - self.util) / f64::from(self.util_n)
            };
        }
    }
}

#[derive(Debug, Clone)]
pub struct DeviceState {
    pub stats: Stats,
    /// The value column of the source that gave this device its first
    /// sample; every later sample must come from the same kind (SPEC 2).
    pub kind: Option<ValueKind>,
    pending: Option<Pending>,
    prev: Option<(i64, f64)>,
    main: Option<Cursor>,
    main_start: i64,
    pub acc: DeviceAccounts,
}

impl DeviceState {
    pub fn new(n_allocations: usize) -> Self {
        Self {
            stats: Stats::default(),
            kind: None,
            pending: None,
            prev: None,
            main: None,
            main_start: 0,
            acc: DeviceAccounts::new(n_allocations),
        }
    }

    /// Fold a hot run back into the state, before the general `push` takes
    /// a sample and at the end of input.
    pub fn settle(&mut self, hot: &mut Hot, counters: bool) {
        if hot.taken > 0 {
            let cur = self.main.as_mut().expect("armed only with an open cursor");
            let joules = if counters {
                hot.energy
            } else {
                hot.energy / 1e9
            };
            cur.add_energy(joules, hot.final_ts);
            self.prev = Some((hot.final_ts, hot.final_value));
            self.pending = Some(Pending::new(hot.pending_ts, hot.pending_mean, f64::NAN));
            self.stats.samples += u64::from(hot.taken);
            self.stats.last_ts = Some(hot.pending_ts);
        }
        *hot = Hot::OFF;
    }

    /// The hot state that continues from here, or `Hot::OFF` when the next
    /// sample needs the general machinery (duplicates pending, no point yet,
    /// no open piece).
    pub fn arm(&self, ctx: &DeviceCtx<'_>) -> Hot {
        match (self.pending, self.prev, self.main.as_ref()) {
            (Some(p), Some((final_ts, final_value)), Some(cur))
                if p.n == 1 && cur.pos == final_ts =>
            {
                Hot {
                    pending_ts: p.ts,
                    pending_mean: p.mean,
                    final_ts,
                    final_value,
                    limit: cur.piece_end().min(ctx.clip.1),
                    energy: 0.0,
                    max_w: ctx.max_power_w(),
                    taken: 0,
                }
            }
            _ => Hot::OFF,
        }
    }

    /// Take one input row. `ts` is `None` for a null timestamp; `util` is
    /// the device's utilization (0..1) over the interval the sample ends,
    /// NaN when unknown.
    #[inline]
    pub fn push(&mut self, ctx: &DeviceCtx<'_>, ts: Option<i64>, v: f64, util: f64) -> Result<()> {
        self.stats.samples += 1;
        let ts = match ts {
            Some(t) if v.is_finite() && v >= 0.0 => t,
            _ => return self.invalid(ctx, ts, v),
        };
        if !ctx.counters && v > ctx.max_power_w() {
            return Err(above_ceiling(ctx, ts, v, "a power"));
        }
        match &mut self.pending {
            Some(p) if ts == p.ts => {
                p.merge(v, util);
                self.stats.duplicates += 1;
            }
            Some(p) if ts < p.ts => {
                return Err(Error::new(
                    ErrorKind::Order,
                    format!(
                        "table 'power', column 'ts': samples of device_id {} go back in time ({} after {}); expected each device's samples in time order (pass sort=True to sort them, holding them in memory)",
                        ctx.name(),
                        fmt_ts(ts),
                        fmt_ts(p.ts)
                    ),
                ))
            }
            Some(p) => {
                let done = *p;
                *p = Pending::new(ts, v, util);
                self.emit(ctx, done.ts, done.mean, done.util)?;
            }
            None => {
                self.pending = Some(Pending::new(ts, v, util));
                self.stats.first_ts = Some(ts);
            }
        }
        self.stats.last_ts = Some(ts);
        Ok(())
    }

    #[cold]
    fn invalid(&mut self, ctx: &DeviceCtx<'_>, ts: Option<i64>, v: f64) -> Result<()> {
        if ctx.opts.on_invalid == OnInvalid::Raise {
            let col = if ctx.counters { "energy_j" } else { "power_w" };
            return Err(Error::new(
                ErrorKind::InvalidSample,
                match ts {
                    None => format!(
                        "table 'power', column 'ts': null timestamp in a sample of device_id {}; expected a timestamp (on_invalid=\"raise\")",
                        ctx.name()
                    ),
                    Some(t) => format!(
                        "table 'power', column '{col}': invalid value {v} for device_id {} at {}; expected a finite value >= 0 (on_invalid=\"raise\")",
                        ctx.name(),
                        fmt_ts(t)
                    ),
                },
            ));
        }
        self.stats.invalid += 1;
        Ok(())
    }

    /// A point became final: integrate the segment it ends. Its
    /// utilization describes that segment (tools report utilization over
    /// the sampling period that ends at the sample).
    fn emit(&mut self, ctx: &DeviceCtx<'_>, t: i64, v: f64, util: f64) -> Result<()> {
        let prev = self.prev.replace((t, v));
        match prev {
            Some((t0, v0)) => self.segment(ctx, (t0, v0), (t, v), util),
            None => Ok(()),
        }
    }

    fn segment(
        &mut self,
        ctx: &DeviceCtx<'_>,
        (t0, v0): (i64, f64),
        (t1, v1): (i64, f64),
        util: f64,
    ) -> Result<()> {
        let (p0, p1) = ctx.clip;
        let in_period = t0 < p1 && t1 > p0;
        let shape = if t1 - t0 > ctx.opts.max_gap_ns {
            self.stats.gaps += u64::from(in_period);
            Shape::Uncovered
        } else if ctx.counters {
            let d = v1 - v0;
            let shape = if d >= 0.0 {
                Shape::Counter { d }
            } else if let Some(w) = ctx.device.wrap_j {
                self.stats.wraps += u64::from(in_period);
                Shape::Counter { d: d.rem_euclid(w) }
            } else {
                self.stats.resets += u64::from(in_period);
                Shape::Uncovered
            };
            if let Shape::Counter { d } = shape {
                // The mean power over the interval, compared without a
                // division (the interval is > 0 ns: duplicates were merged).
                if d * 1e9 > ctx.max_power_w() * (t1 - t0) as f64 {
                    let watts = d / ((t1 - t0) as f64 / 1e9);
                    return Err(above_ceiling(
                        ctx,
                        t1,
                        watts,
                        "a counter rising at a mean power",
                    ));
                }
            }
            shape
        } else {
            match ctx.opts.interpolation {
                Interpolation::Linear => Shape::Linear { p0: v0, p1: v1 },
                Interpolation::Previous => Shape::Hold { p: v0 },
            }
        };
        let (a, b) = (t0.max(p0), t1.min(p1));
        if a >= b {
            return Ok(());
        }
        let seg = Segment {
            t0,
            t1,
            shape,
            util,
        };
        let cur = match &mut self.main {
            Some(c) => c,
            None => {
                self.main_start = a;
                self.main.insert(Cursor::new(ctx, a))
            }
        };
        cur.advance(ctx, &mut self.acc, &seg, a, b)
    }

    /// End of input: flush the last point, then book the uncovered time
    /// before the first and after the last point inside `[p0, p1)`.
    pub fn finish(&mut self, ctx: &DeviceCtx<'_>, p0: i64, p1: i64) -> Result<()> {
        if let Some(p) = self.pending.take() {
            self.emit(ctx, p.ts, p.mean, p.util)?;
        }
        let gap = Segment {
            t0: p0,
            t1: p1,
            shape: Shape::Uncovered,
            util: f64::NAN,
        };
        match self.main.take() {
            Some(mut cur) => {
                if cur.pos < p1 {
                    cur.advance(ctx, &mut self.acc, &gap, cur.pos, p1)?;
                }
                cur.close(ctx, &mut self.acc);
                if self.main_start > p0 {
                    let mut lead = Cursor::new(ctx, p0);
                    lead.advance(ctx, &mut self.acc, &gap, p0, self.main_start.min(p1))?;
                    lead.close(ctx, &mut self.acc);
                }
            }
            None => {
                let mut all = Cursor::new(ctx, p0);
                all.advance(ctx, &mut self.acc, &gap, p0, p1)?;
                all.close(ctx, &mut self.acc);
            }
        }
        self.acc.close_books(ctx.allocs);
        Ok(())
    }
}

/// A sample above the device's power ceiling: never dropped quietly, as
/// such a value is a unit or encoding error that would dominate every total.
#[cold]
fn above_ceiling(ctx: &DeviceCtx<'_>, t: i64, watts: f64, what: &str) -> Error {
    let col = if ctx.counters { "energy_j" } else { "power_w" };
    Error::new(
        ErrorKind::InvalidSample,
        format!(
            "table 'power', column '{col}': {what} of {watts:e} W for device_id {} at {}, above its ceiling of {} W; expected at most the ceiling (no single metered device of a compute fleet draws more: check the unit, e.g. mW or uJ read as W or J; if the device really draws that much, raise max_power_w, or set devices.max_power_w for it)",
            ctx.name(),
            fmt_ts(t),
            ctx.max_power_w()
        ),
    )
}
