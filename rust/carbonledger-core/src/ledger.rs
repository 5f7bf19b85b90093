//! A device's position on its timeline. Energy accumulates inside the current
//! piece (between two consecutive boundaries: allocation edges, grid rows,
//! amortization window, period end); when a segment crosses a boundary the
//! piece is priced and booked, and the next one opens.

use crate::attribute::DeviceAccounts;
use crate::error::{Error, Result};
use crate::ids::KeyIndex;
use crate::inputs::Device;
use crate::kbn::Kbn;
use crate::options::{Attribution, GapFill, Options};
use crate::price::{price, J_PER_KWH};
use crate::timeline::{DeviceAllocations, RegionGrid};

/// Everything a device's state machine reads, shared and immutable.
#[derive(Debug)]
pub struct DeviceCtx<'a> {
    pub index: usize,
    pub ids: &'a KeyIndex,
    pub device: &'a Device,
    pub grid: &'a RegionGrid,
    pub allocs: &'a DeviceAllocations,
    pub opts: &'a Options,
    /// Samples are cumulative energy counters (`energy_j`), not power.
    pub counters: bool,
    /// `[p0, p1)` to clip to while streaming; all of time when the period is
    /// only known at the end (then every segment lies inside it anyway).
    pub clip: (i64, i64),
}

impl DeviceCtx<'_> {
    pub fn name(&self) -> String {
        self.ids.name(self.index)
    }

    /// The device's power ceiling: its own `max_power_w`, else the option's.
    #[inline]
    pub fn max_power_w(&self) -> f64 {
        self.device.max_power_w.unwrap_or(self.opts.max_power_w)
    }
}

/// How power behaves over one segment between two consecutive points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// Linear from `p0` at `t0` to `p1` at `t1`.
    Linear { p0: f64, p1: f64 },
    /// Constant `p`.
    Hold { p: f64 },
    /// `d` joules spread evenly over the segment.
    Counter { d: f64 },
    /// Not measured.
    Uncovered,
}

#[derive(Debug, Clone, Copy)]
pub struct Segment {
    pub t0: i64,
    pub t1: i64,
    pub shape: Shape,
    /// The device's utilization over the segment (0..1), as reported with
    /// the sample that ends it; NaN when unknown.
    pub util: f64,
}

impl Segment {
    /// Energy (J) over `[a, b)`, a sub-interval of the segment. The power at
    /// a cut is the interpolated value, so the parts add up to the whole.
    #[inline]
    pub fn energy(&self, a: i64, b: i64) -> f64 {
        let len_s = (b - a) as f64 / 1e9;
        match self.shape {
            Shape::Linear { p0, p1 } => {
                if a == self.t0 && b == self.t1 {
                    return 0.5 * (p0 + p1) * len_s;
                }
                let span = (self.t1 - self.t0) as f64;
                let fa = (a - self.t0) as f64 / span;
                let fb = (b - self.t0) as f64 / span;
                (p0 + (p1 - p0) * (0.5 * (fa + fb))) * len_s
            }
            Shape::Hold { p } => p * len_s,
            Shape::Counter { d } => {
                if a == self.t0 && b == self.t1 {
                    d
                } else {
                    d * ((b - a) as f64 / (self.t1 - self.t0) as f64)
                }
            }
            Shape::Uncovered => 0.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Cursor {
    pub pos: i64,
    piece_start: i64,
    piece_end: i64,
    energy: Kbn,
    uncovered_ns: i64,
    /// Covered time of the piece with known utilization: at or above the
    /// execution-idle threshold, below it, and the energy of the latter.
    busy_ns: i64,
    idle_ns: i64,
    idle_energy: Kbn,
    ai: usize,
    gi: usize,
    in_window: bool,
}

impl Cursor {
    pub fn new(ctx: &DeviceCtx<'_>, t: i64) -> Self {
        let mut c = Self {
            pos: t,
            piece_start: t,
            piece_end: t,
            energy: Kbn::default(),
            uncovered_ns: 0,
            busy_ns: 0,
            idle_ns: 0,
            idle_energy: Kbn::default(),
            ai: ctx.allocs.steps.locate(t),
            gi: ctx.grid.steps.locate(t),
            in_window: false,
        };
        c.open(ctx, t);
        c
    }

    fn open(&mut self, ctx: &DeviceCtx<'_>, t: i64) {
        let a = &ctx.allocs.steps.bounds;
        while a[self.ai + 1] <= t {
            self.ai += 1;
        }
        let g = &ctx.grid.steps.bounds;
        while g[self.gi + 1] <= t {
            self.gi += 1;
        }
        let (w0, w1) = ctx.device.window;
        let window_edge = if t < w0 {
            w0
        } else if t < w1 {
            w1
        } else {
            i64::MAX
        };
        self.in_window = w0 <= t && t < w1;
        self.piece_start = t;
        self.piece_end = a[self.ai + 1]
            .min(g[self.gi + 1])
            .min(window_edge)
            .min(ctx.clip.1);
    }

    /// Where the current piece ends (the next boundary).
    #[inline]
    pub fn piece_end(&self) -> i64 {
        self.piece_end
    }

    /// Add energy integrated inside the current piece up to `pos`.
    #[inline]
    pub fn add_energy(&mut self, energy_j: f64, pos: i64) {
        debug_assert!(pos <= self.piece_end);
        self.energy.add(energy_j);
        self.pos = pos;
    }

    /// Price the piece so far and book it.
    pub fn close(&mut self, ctx: &DeviceCtx<'_>, acc: &mut DeviceAccounts) {
        if self.pos > self.piece_start {
            let mut v = price(
                self.energy.value(),
                self.pos - self.piece_start,
                self.uncovered_ns,
                ctx.device,
                ctx.grid.steps.vals[self.gi],
                self.in_window,
            );
            if self.busy_ns | self.idle_ns != 0 {
                v.busy_s = self.busy_ns as f64 / 1e9;
                v.execution_idle_s = self.idle_ns as f64 / 1e9;
                v.execution_idle_kwh = self.idle_energy.value() / J_PER_KWH;
            }
            let dynamic = self.dynamic_fraction(ctx);
            acc.book(&v, ctx.allocs, self.ai, self.gi as u32, dynamic);
        }
        self.piece_start = self.pos;
        self.energy = Kbn::default();
        self.uncovered_ns = 0;
        self.busy_ns = 0;
        self.idle_ns = 0;
        self.idle_energy = Kbn::default();
    }

    /// `attribution="utilization"`: the fraction of the piece's energy
    /// above the device's idle power over its measured (or idle-filled)
    /// time; `None` under `attribution="share"`.
    fn dynamic_fraction(&self, ctx: &DeviceCtx<'_>) -> Option<f64> {
        if ctx.opts.attribution != Attribution::Utilization {
            return None;
        }
        let idle_w = ctx.device.idle_w?;
        let energy = self.energy.value();
        if energy <= 0.0 {
            return Some(0.0);
        }
        let mut powered_ns = self.pos - self.piece_start - self.uncovered_ns;
        if ctx.opts.gap_fill == GapFill::Idle {
            powered_ns += self.uncovered_ns;
        }
        let idle_j = idle_w * (powered_ns as f64 / 1e9);
        Some(((energy - idle_j) / energy).clamp(0.0, 1.0))
    }

    /// Book `energy_j`, measured over `[x, y)` of `seg`, as busy or
    /// execution-idle when the segment's utilization is known.
    #[inline]
    fn add_measured(&mut self, ctx: &DeviceCtx<'_>, seg: &Segment, x: i64, y: i64, energy_j: f64) {
        self.energy.add(energy_j);
        if seg.util.is_nan() {
            return;
        }
        if seg.util < ctx.opts.execution_idle_below {
            self.idle_ns += y - x;
            self.idle_energy.add(energy_j);
        } else {
            self.busy_ns += y - x;
        }
    }

    /// Integrate `seg` over `[a, b)`, where `a` is the current position.
    #[inline]
    pub fn advance(
        &mut self,
        ctx: &DeviceCtx<'_>,
        acc: &mut DeviceAccounts,
        seg: &Segment,
        a: i64,
        b: i64,
    ) -> Result<()> {
        debug_assert_eq!(a, self.pos);
        if b <= self.piece_end && seg.shape != Shape::Uncovered {
            self.add_measured(ctx, seg, a, b, seg.energy(a, b));
            self.pos = b;
            return Ok(());
        }
        let idle = if seg.shape == Shape::Uncovered && ctx.opts.gap_fill == GapFill::Idle {
            let w = ctx.device.idle_w.ok_or_else(|| {
                Error::input(format!(
                    "table 'devices', column 'idle_power_w': null for device_id {}; gap_fill=\"idle\" needs it to fill its uncovered time",
                    ctx.name()
                ))
            })?;
            // Idle fill is power the engine books itself: it must meet the
            // ceiling a sample would.
            if w > ctx.max_power_w() {
                return Err(Error::input(format!(
                    "table 'devices', column 'idle_power_w': {w} W for device_id {}, above its ceiling of {} W; expected an idle power within max_power_w",
                    ctx.name(),
                    ctx.max_power_w()
                )));
            }
            Some(w)
        } else {
            None
        };
        let mut x = a;
        while x < b {
            if x >= self.piece_end {
                self.close(ctx, acc);
                self.open(ctx, x);
            }
            let y = b.min(self.piece_end);
            if seg.shape == Shape::Uncovered {
                self.uncovered_ns += y - x;
                if let Some(w) = idle {
                    self.energy.add(w * ((y - x) as f64 / 1e9));
                }
            } else {
                self.add_measured(ctx, seg, x, y, seg.energy(x, y));
            }
            x = y;
            self.pos = x;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_pieces_add_up() {
        let s = Segment {
            t0: 0,
            t1: 10_000_000_000,
            shape: Shape::Linear {
                p0: 100.0,
                p1: 300.0,
            },
            util: f64::NAN,
        };
        assert_eq!(s.energy(0, 10_000_000_000), 2000.0);
        assert_eq!(s.energy(5_000_000_000, 10_000_000_000), 1250.0);
        assert_eq!(s.energy(0, 5_000_000_000), 750.0);
    }
}
