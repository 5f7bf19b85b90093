//! A whole fleet (devices, sites, intensity, allocations, power samples and
//! options) as genes, and its Arrow inputs.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::Schema;
use carbonledger_core::{GapFill, Interpolation, OnInvalid, Options, Overlap, Table};

use crate::arrow::{
    batch, float_column, id_column, id_layout_like, id_value, tick_ns, time_column, DictShape,
    IdVal, S, T0,
};
use crate::gene::List;
use crate::genes;

/// Values at the edges of every domain.
pub const EDGES: [f64; 20] = [
    0.0,
    -0.0,
    1.0,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -1.0,
    5e-324,
    1e-300,
    1e6,
    1e6 + 1.0,
    1e15,
    1e300,
    f64::MAX,
    0.5,
    1.0 + 1e-10,
    1.0 + 1e-8,
    1e-9,
    1.0 - 1e-16,
    2.0,
];

/// Timestamps at the edges of the nanosecond range and of the epoch.
pub const TIME_EDGES: [i64; 10] = [
    i64::MIN,
    i64::MIN + 1,
    i64::MAX,
    i64::MAX - 1,
    0,
    -1,
    1,
    -9_223_372_036 * S, // 1677-09-21
    9_223_372_036 * S,  // 2262-04-11
    T0,
];

genes! {
    /// A float: tags 0-11 uniform in the field's sane range, 12-13 an edge
    /// value, 14 the literal bits, 15 null.
    pub struct Val { pub tag: u8, pub bits: u64 }
}

impl Val {
    pub fn lit(v: f64) -> Self {
        Self {
            tag: 14,
            bits: v.to_bits(),
        }
    }

    pub fn null() -> Self {
        Self { tag: 15, bits: 0 }
    }

    pub fn edge(i: usize) -> Self {
        Self {
            tag: 12,
            bits: i as u64,
        }
    }

    pub fn get(&self, lo: f64, hi: f64) -> Option<f64> {
        match self.tag % 16 {
            0..=11 => Some(lo + (self.bits % 1_000_001) as f64 / 1e6 * (hi - lo)),
            12 | 13 => Some(EDGES[self.bits as usize % EDGES.len()]),
            14 => Some(f64::from_bits(self.bits)),
            _ => None,
        }
    }

    /// A cumulative counter reading after `prev`: mostly a rise, sometimes
    /// a wrap modulo `wrap`, a reset, or any value.
    pub fn counter(&self, prev: f64, wrap: Option<f64>) -> Option<f64> {
        let x = self.get(0.0, 5000.0);
        match self.tag % 16 {
            0..=8 => x.map(|x| prev + x),
            9 | 10 => x.map(|x| match wrap {
                Some(w) if w.is_finite() && w > 0.0 => (prev + x) % w,
                _ => prev + x,
            }),
            _ => x,
        }
    }
}

genes! {
    /// An instant: tags 0-7 within an hour of T0 (any ns), 8-11 whole
    /// seconds from T0, 12 ns from T0, 13 the literal value in the column's
    /// ticks, 14-15 an edge of the range (in ticks).
    pub struct Time { pub tag: u8, pub v: u64 }
}

impl Time {
    /// `s` seconds after T0.
    pub fn secs(s: i16) -> Self {
        Self {
            tag: 8,
            v: s as u16 as u64,
        }
    }

    /// Literally `t` ticks.
    pub fn lit(t: i64) -> Self {
        Self {
            tag: 13,
            v: t as u64,
        }
    }

    pub fn edge(i: usize) -> Self {
        Self {
            tag: 14,
            v: i as u64,
        }
    }

    /// In ticks of `tick` ns.
    pub fn ticks(&self, tick: i64) -> i64 {
        let ns = match self.tag % 16 {
            0..=7 => T0 + (self.v % (7_200 * S as u64)) as i64 - 3_600 * S,
            8..=11 => T0 + i64::from(self.v as i16) * S,
            12 => T0 + i64::from(self.v as i32),
            13 => return self.v as i64,
            _ => return TIME_EDGES[self.v as usize % TIME_EDGES.len()],
        };
        ns.div_euclid(tick)
    }
}

genes! {
    /// A duration: 0 none, 1 one tick, 2 `max_gap`, 3 `max_gap` + 1 ns,
    /// 4-9 whole seconds up to 2 min, 10 whole seconds up to 18 h, 11-12 ns
    /// up to 4 `max_gap`, 13 back in time, 14 the literal value in ns, 15
    /// none.
    pub struct Delta { pub tag: u8, pub v: u64 }
}

impl Delta {
    /// `s` whole seconds.
    pub fn secs(s: u16) -> Self {
        Self {
            tag: 10,
            v: u64::from(s),
        }
    }

    /// Literally `ns` nanoseconds.
    pub fn lit(ns: i64) -> Self {
        Self {
            tag: 14,
            v: ns as u64,
        }
    }

    /// In ticks of `tick` ns.
    pub fn ticks(&self, tick: i64, max_gap: i64) -> i64 {
        let ns = match self.tag % 16 {
            0 | 15 => 0,
            1 => return 1,
            2 => max_gap,
            3 => max_gap.saturating_add(1),
            4..=9 => (self.v % 121) as i64 * S,
            10 => (self.v % 65_536) as i64 * S,
            11 | 12 => (self.v % (4 * max_gap.clamp(1, i64::MAX / 8) as u64 + 1)) as i64,
            13 => -((self.v % (60 * S as u64)) as i64) - 1,
            _ => self.v as i64,
        };
        ns.div_euclid(tick)
    }
}

genes! {
    pub struct Dev {
        pub id: u8,
        pub site: u8,
        pub embodied: Val,
        pub installed: Time,
        /// 0 lifetime_years, 1 retired_at, 2 both, 3 neither (nulls).
        pub window: u8,
        pub lifetime_years: Val,
        pub retired: Delta,
        pub idle: Val,
        pub wrap: Val,
        /// First sample time.
        pub t0: Time,
    }
}

genes! {
    pub struct Site { pub id: u8, pub region: u8, pub pue: Val }
}

genes! {
    pub struct GridRow {
        pub region: u8,
        pub start: Time,
        pub len: Option<Delta>,
        pub c: Val,
        pub cfe: Val,
        pub residual: Val,
    }
}

genes! {
    pub struct Alloc { pub device: u8, pub start: Time, pub len: Delta, pub share: Val }
}

genes! {
    /// A sample of device `device` (an index into the devices), `dt` after
    /// that device's previous one.
    pub struct Sample { pub device: u8, pub dt: Delta, pub value: Val }
}

genes! {
    pub struct Opts {
        pub period: Option<Time>,
        pub period_len: Delta,
        pub previous: bool,
        /// 0-3: 15 s, 300 s, 0, 1 ns; 4 i64::MAX; 5 negative; 6-7 literal.
        pub max_gap_tag: u8,
        pub max_gap: u64,
        pub idle: bool,
        pub raise: bool,
        pub normalize: bool,
        pub sort: bool,
        /// Two workers, each batch split between them.
        pub parallel: bool,
    }
}

impl Opts {
    pub fn max_gap_ns(&self) -> i64 {
        match self.max_gap_tag % 8 {
            0 => 15 * S,
            1 => 300 * S,
            2 => 0,
            3 => 1,
            4 => i64::MAX,
            5 => -1,
            6 => self.max_gap as i64,
            _ => (self.max_gap % (3_600 * S as u64)) as i64,
        }
    }

    pub fn options(&self, power_tick: i64, period_tick: i64) -> Options {
        let max_gap = self.max_gap_ns();
        let period = self.period.as_ref().map(|p| {
            let a = p.ticks(period_tick).saturating_mul(period_tick);
            let d = self.period_len.ticks(power_tick, max_gap.max(1));
            (a, a.saturating_add(d.saturating_mul(power_tick)))
        });
        Options {
            period,
            interpolation: if self.previous {
                Interpolation::Previous
            } else {
                Interpolation::Linear
            },
            max_gap_ns: max_gap,
            gap_fill: if self.idle {
                GapFill::Idle
            } else {
                GapFill::Uncovered
            },
            on_invalid: if self.raise {
                OnInvalid::Raise
            } else {
                OnInvalid::Drop
            },
            overlap: if self.normalize {
                Overlap::Normalize
            } else {
                Overlap::Error
            },
            sort: self.sort,
            threads: Some(if self.parallel { 2 } else { 1 }),
            parallel_min_rows: if self.parallel { 0 } else { usize::MAX },
            ..Options::default()
        }
    }
}

genes! {
    /// Column types and layouts.
    pub struct Types {
        /// devices.device_id, then the others alike unless `mixed`.
        pub dev_id: u8,
        pub power_id: u8,
        pub alloc_id: u8,
        pub site_id: u8,
        pub dev_site: u8,
        pub region: u8,
        pub grid_region: u8,
        /// Id layouts chosen independently (kinds may then differ).
        pub mixed: bool,
        pub dict_reversed: bool,
        pub dict_extra: u8,
        pub dict_null_value: bool,
        pub bad_key: u8,
        /// power.ts, installed_at, retired_at, intensity start/end, allocation start/end.
        pub ts: u8,
        pub installed: u8,
        pub retired: u8,
        pub grid_ts: u8,
        pub alloc_ts: u8,
        /// Types of the value columns: power, then the rest.
        pub power_val: u8,
        pub other_val: u8,
        /// Extra columns present: bit 0 idle_power_w, 1 counter_wrap_j,
        /// 2 intensity end, 3 cfe, 4 residual, 5 share, 6 retired_at,
        /// 7 lifetime_years.
        pub optional: u8,
    }
}

genes! {
    pub struct Fleet {
        pub types: Types,
        pub counters: bool,
        pub opts: Opts,
        pub devices: List<Dev, 4>,
        pub samples: List<Sample, 40>,
        pub sites: List<Site, 3>,
        pub allocs: List<Alloc, 5>,
        pub grid: List<GridRow, 6>,
        /// No allocations table (`None`), rather than `allocs`.
        pub no_allocations: bool,
        /// No row per region starting a day before T0 (null end) ahead of
        /// `grid`'s.
        pub bare_grid: bool,
        /// Batch sizes the samples are cut into (0: an empty batch).
        pub cuts: List<u8, 6>,
        /// A second power source of the other value kind takes the
        /// samples of the devices listed at odd positions.
        pub two_sources: bool,
        /// Ids exactly as the genes say (duplicates, unknown sites);
        /// otherwise distinct device and site ids, devices at known sites.
        pub raw_ids: bool,
        /// Keep edge values, nulls, edge times, steps back in time and
        /// mistyped columns (else they are replaced by sane ones, so that
        /// about half the fleets are valid and reach the numbers).
        pub hostile: bool,
    }
}

impl Val {
    fn tame(&mut self) {
        if matches!(self.tag % 16, 12 | 13 | 15) {
            self.tag = 0;
        }
    }
}

impl Time {
    fn tame(&mut self) {
        if self.tag % 16 >= 14 {
            self.tag = 0;
        }
    }
}

impl Delta {
    fn tame(&mut self) {
        if self.tag % 16 == 13 {
            self.tag = 4;
        }
    }
}

/// The Arrow inputs of a fleet, and what the checks need to know.
pub struct Built {
    pub devices: Table,
    pub sites: Table,
    pub intensity: Table,
    pub allocations: Option<Table>,
    /// Power sources: a schema and its batches.
    pub sources: Vec<(Schema, Vec<RecordBatch>)>,
    pub opts: Options,
    /// The device row of each allocation row, where its id names exactly one.
    pub alloc_device: Vec<Option<usize>>,
    /// Some input value is huge (> 1e12) or the timestamps reach the edges
    /// of the range. Such inputs are held to the same checks (the engine's
    /// input bounds keep results finite).
    pub enormous: bool,
}

fn table(name: &'static str, b: RecordBatch) -> Option<Table> {
    Table::new(name, &b.schema(), &[b]).ok()
}

/// Id gene 251 is a null id.
pub const NULL_ID: u8 = 251;

fn id_of(p: u8) -> Option<u8> {
    (p != NULL_ID).then_some(p)
}

impl Fleet {
    /// Id layouts: (devices, power, allocations, sites.site_id, devices.site_id, sites.region, intensity.region).
    fn layouts(&self) -> [u8; 7] {
        let t = &self.types;
        if t.mixed {
            [
                t.dev_id,
                t.power_id,
                t.alloc_id,
                t.site_id,
                t.dev_site,
                t.region,
                t.grid_region,
            ]
        } else {
            // Integer ids when the gene is 3 mod 4, else strings.
            let like = |g: u8| id_layout_like(if g % 4 == 3 { 8 } else { 0 }, g / 4);
            let (d, s, r) = (like(t.dev_id), id_layout_like(0, t.site_id), like(t.region));
            [
                d,
                id_layout_like(d, t.power_id),
                id_layout_like(d, t.alloc_id),
                s,
                id_layout_like(s, t.dev_site),
                r,
                id_layout_like(r, t.grid_region),
            ]
        }
    }

    fn shape(&self) -> DictShape {
        let t = &self.types;
        DictShape {
            reversed: t.dict_reversed,
            extra: t.dict_extra,
            null_value: t.dict_null_value,
            bad_key: [1000, -1, 127, i64::MAX][t.bad_key as usize % 4],
        }
    }

    /// The fleet without edge values, nulls, edge times, steps back and
    /// mistyped columns (literal genes, as seeds use, are kept).
    pub fn tamed(&self) -> Fleet {
        let mut f = self.clone();
        let t = &mut f.types;
        for l in [
            &mut t.dev_id,
            &mut t.power_id,
            &mut t.alloc_id,
            &mut t.site_id,
            &mut t.dev_site,
            &mut t.region,
            &mut t.grid_region,
        ] {
            if crate::arrow::id_layout_kind(*l).is_none() {
                *l = 0;
            }
        }
        for ty in [
            &mut t.ts,
            &mut t.installed,
            &mut t.retired,
            &mut t.grid_ts,
            &mut t.alloc_ts,
        ] {
            if *ty as usize % crate::arrow::TIME_TYPES == 21 {
                *ty = 3;
            }
        }
        for ty in [&mut t.power_val, &mut t.other_val] {
            if *ty % 16 == 7 {
                *ty = 0;
            }
        }
        for d in &mut f.devices.0 {
            for v in [
                &mut d.embodied,
                &mut d.lifetime_years,
                &mut d.idle,
                &mut d.wrap,
            ] {
                v.tame();
            }
            d.installed.tame();
            d.t0.tame();
            d.retired.tame();
            if d.window % 8 == 7 {
                d.window = 0;
            }
        }
        for x in &mut f.sites.0 {
            x.pue.tame();
        }
        for r in &mut f.grid.0 {
            r.start.tame();
            for v in [&mut r.c, &mut r.cfe, &mut r.residual] {
                v.tame();
            }
            if let Some(l) = &mut r.len {
                l.tame();
            }
        }
        for a in &mut f.allocs.0 {
            a.start.tame();
            a.len.tame();
            a.share.tame();
        }
        for x in &mut f.samples.0 {
            x.dt.tame();
            x.value.tame();
        }
        if let Some(p) = &mut f.opts.period {
            p.tame();
        }
        f.opts.period_len.tame();
        f.raw_ids = false;
        f.types.mixed = false;
        for x in &mut f.samples.0 {
            if x.device == NULL_ID {
                x.device = 0;
            }
        }
        for a in &mut f.allocs.0 {
            if a.device == NULL_ID {
                a.device = 0;
            }
        }
        // A period that is one, and one when there is no sample.
        if f.opts.period_len.ticks(1, 1) <= 0 {
            f.opts.period_len = Delta::secs(60);
        }
        if f.samples.0.is_empty() && f.opts.period.is_none() {
            f.opts.period = Some(Time::secs(0));
        }
        if f.opts.max_gap_ns() < 0 {
            f.opts.max_gap_tag = 7;
        }
        f
    }

    pub fn build(&self) -> Option<Built> {
        if !self.hostile {
            let mut tame = self.tamed();
            tame.hostile = true;
            return tame.build();
        }
        let t = &self.types;
        let lay = self.layouts();
        let shape = self.shape();
        let opt = |bit: u8| t.optional & (1 << bit) != 0;
        let ov = t.other_val;
        let mut enormous = false;
        let mut big = |v: Option<f64>| {
            if v.is_some_and(|v| v.is_finite() && v.abs() > 1e12) {
                enormous = true;
            }
            v
        };
        let max_gap = self.opts.max_gap_ns();

        // Ids (palette entries): distinct unless `raw_ids`; a site at
        // least, unless `raw_ids`.
        let one_site = [Site::default()];
        let sites: &[Site] = if self.sites.0.is_empty() && !self.raw_ids {
            &one_site
        } else {
            &self.sites.0
        };
        let devs = &self.devices.0;
        let site_ids: Vec<u8> = sites
            .iter()
            .enumerate()
            .map(|(j, x)| {
                if self.raw_ids {
                    x.id
                } else {
                    (sites[0].id % 12 + j as u8) % 12
                }
            })
            .collect();
        let dev_ids: Vec<u8> = devs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                if self.raw_ids {
                    d.id
                } else {
                    (devs[0].id % 12 + i as u8) % 12
                }
            })
            .collect();
        let dev_sites: Vec<u8> = devs
            .iter()
            .map(|d| match site_ids.len() {
                n if n > 0 && !self.raw_ids => site_ids[d.site as usize % n],
                _ => d.site,
            })
            .collect();

        // Sites.
        let site_b = batch(vec![
            (
                "site_id",
                id_column(
                    lay[3],
                    &site_ids.iter().map(|p| id_of(*p)).collect::<Vec<_>>(),
                    shape,
                ),
            ),
            (
                "region",
                id_column(
                    lay[5],
                    &sites
                        .iter()
                        .map(|s| id_of(s.region % 4))
                        .collect::<Vec<_>>(),
                    shape,
                ),
            ),
            (
                "pue",
                float_column(
                    ov,
                    &sites
                        .iter()
                        .map(|s| big(s.pue.get(1.0, 3.0)))
                        .collect::<Vec<_>>(),
                ),
            ),
        ]);

        // Devices.
        let (ti, tr) = (tick_ns(t.installed), tick_ns(t.retired));
        let mut dev_cols: Vec<(&str, ArrayRef)> = vec![
            (
                "device_id",
                id_column(
                    lay[0],
                    &dev_ids.iter().map(|p| id_of(*p)).collect::<Vec<_>>(),
                    shape,
                ),
            ),
            (
                "site_id",
                id_column(
                    lay[4],
                    &dev_sites.iter().map(|p| id_of(*p)).collect::<Vec<_>>(),
                    shape,
                ),
            ),
            (
                "embodied_kgco2e",
                float_column(
                    ov,
                    &devs
                        .iter()
                        .map(|d| big(d.embodied.get(0.0, 2000.0)))
                        .collect::<Vec<_>>(),
                ),
            ),
            (
                "installed_at",
                time_column(
                    t.installed,
                    &devs
                        .iter()
                        .map(|d| Some(d.installed.ticks(ti)))
                        .collect::<Vec<_>>(),
                ),
            ),
        ];
        // 0 lifetime_years, 1 retired_at, 2 both; 7 (of 8) neither.
        let (with_life, with_retired) = (opt(7) || !opt(6), opt(6));
        // A device whose pick has no column takes the other one.
        let window = |d: &Dev, k: u8| {
            let only = if k == 0 { !with_retired } else { !with_life };
            d.window % 8 != 7 && (d.window % 3 == k || d.window % 3 == 2 || only)
        };
        if with_life {
            let v: Vec<Option<f64>> = devs
                .iter()
                .map(|d| {
                    if window(d, 0) {
                        big(d.lifetime_years.get(1e-6, 10.0))
                    } else {
                        None
                    }
                })
                .collect();
            dev_cols.push(("lifetime_years", float_column(ov, &v)));
        }
        if with_retired {
            let v: Vec<Option<i64>> = devs
                .iter()
                .map(|d| {
                    window(d, 1).then(|| {
                        let start = d.installed.ticks(ti).saturating_mul(ti) / tr;
                        start.saturating_add(d.retired.ticks(tr, max_gap))
                    })
                })
                .collect();
            dev_cols.push(("retired_at", time_column(t.retired, &v)));
        }
        if opt(0) {
            let v: Vec<Option<f64>> = devs.iter().map(|d| big(d.idle.get(0.0, 200.0))).collect();
            dev_cols.push(("idle_power_w", float_column(ov, &v)));
        }
        let wraps: Vec<Option<f64>> = devs.iter().map(|d| big(d.wrap.get(1e3, 1e6))).collect();
        if opt(1) {
            dev_cols.push(("counter_wrap_j", float_column(ov, &wraps)));
        }
        let dev_b = batch(dev_cols);

        // Intensity.
        let mut rows: Vec<&GridRow> = Vec::new();
        let cover: Vec<GridRow> = if !self.bare_grid {
            (0..4)
                .map(|r| GridRow {
                    region: r,
                    start: Time::default(),
                    len: None,
                    c: Val::lit(100.0 * f64::from(r + 1)),
                    cfe: Val::lit(0.25),
                    residual: Val::null(),
                })
                .collect()
        } else {
            Vec::new()
        };
        rows.extend(cover.iter());
        rows.extend(self.grid.0.iter());
        let tg = tick_ns(t.grid_ts);
        // The cover rows start a day before T0, in the column's ticks.
        let starts: Vec<Option<i64>> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Some(if i < cover.len() {
                    (T0 - 86_400 * S).div_euclid(tg)
                } else {
                    r.start.ticks(tg)
                })
            })
            .collect();
        let mut grid_cols: Vec<(&str, ArrayRef)> = vec![
            (
                "region",
                id_column(
                    lay[6],
                    &rows.iter().map(|r| id_of(r.region % 4)).collect::<Vec<_>>(),
                    shape,
                ),
            ),
            ("start", time_column(t.grid_ts, &starts)),
            (
                "gco2e_per_kwh",
                float_column(
                    ov,
                    &rows
                        .iter()
                        .map(|r| big(r.c.get(0.0, 900.0)))
                        .collect::<Vec<_>>(),
                ),
            ),
        ];
        if opt(2) {
            let ends: Vec<Option<i64>> = rows
                .iter()
                .zip(&starts)
                .map(|(r, s)| {
                    r.len
                        .as_ref()
                        .zip(*s)
                        .map(|(l, s)| s.saturating_add(l.ticks(tg, max_gap)))
                })
                .collect();
            grid_cols.push(("end", time_column(t.grid_ts, &ends)));
        }
        if opt(3) {
            let v: Vec<Option<f64>> = rows.iter().map(|r| big(r.cfe.get(0.0, 1.0))).collect();
            grid_cols.push(("cfe", float_column(ov, &v)));
        }
        if opt(4) {
            let v: Vec<Option<f64>> = rows
                .iter()
                .map(|r| big(r.residual.get(0.0, 1000.0)))
                .collect();
            grid_cols.push(("residual_gco2e_per_kwh", float_column(ov, &v)));
        }
        let grid_b = batch(grid_cols);

        // Allocations.
        let allocs = &self.allocs.0;
        let ta = tick_ns(t.alloc_ts);
        let a_start: Vec<Option<i64>> = allocs.iter().map(|a| Some(a.start.ticks(ta))).collect();
        let a_end: Vec<Option<i64>> = allocs
            .iter()
            .zip(&a_start)
            .map(|(a, s)| s.map(|s| s.saturating_add(a.len.ticks(ta, max_gap))))
            .collect();
        let alloc_dev_ids: Vec<Option<u8>> = allocs
            .iter()
            .map(|a| match dev_ids.len() {
                _ if a.device == NULL_ID => None,
                n if n > 0 && !self.raw_ids => Some(dev_ids[a.device as usize % n]),
                _ => Some(
                    dev_ids
                        .get(a.device as usize % 5)
                        .copied()
                        .unwrap_or(a.device),
                ),
            })
            .collect();
        let mut alloc_cols: Vec<(&str, ArrayRef)> = vec![
            (
                "job_id",
                Arc::new(StringArray::from(
                    (0..allocs.len())
                        .map(|i| format!("j{i}"))
                        .collect::<Vec<_>>(),
                )) as ArrayRef,
            ),
            ("device_id", id_column(lay[2], &alloc_dev_ids, shape)),
            ("start", time_column(t.alloc_ts, &a_start)),
            ("end", time_column(t.alloc_ts, &a_end)),
        ];
        if opt(5) {
            let v: Vec<Option<f64>> = allocs.iter().map(|a| a.share.get(0.0, 1.0)).collect();
            alloc_cols.push(("share", float_column(ov, &v)));
        }
        let alloc_b = batch(alloc_cols);

        // Power: each device's samples in their own time order (unless a
        // delta goes back), interleaved as the genes list them.
        let tp = tick_ns(t.ts);
        let mut clock: Vec<Option<i64>> = vec![None; devs.len().max(1)];
        let mut counter: Vec<f64> = vec![0.0; devs.len().max(1)];
        let (mut p_ids, mut p_ts, mut p_v) = (Vec::new(), Vec::new(), Vec::new());
        for s in &self.samples.0 {
            let di = s.device as usize % devs.len().max(1);
            let id = if s.device == NULL_ID {
                None
            } else {
                Some(dev_ids.get(di).copied().unwrap_or(s.device))
            };
            let base = devs.get(di).map_or(T0 / tp, |d| d.t0.ticks(tp));
            let now = match clock[di] {
                None => base.saturating_add(s.dt.ticks(tp, max_gap).clamp(0, 1)),
                Some(t) => t.saturating_add(s.dt.ticks(tp, max_gap)),
            };
            clock[di] = Some(now);
            let v = if self.counters {
                let v = s
                    .value
                    .counter(counter[di], wraps.get(di).copied().flatten());
                if let Some(v) = v.filter(|v| v.is_finite() && *v >= 0.0) {
                    counter[di] = v;
                }
                v
            } else {
                s.value.get(0.0, 1000.0)
            };
            p_ids.push(id);
            p_ts.push(Some(now));
            p_v.push(big(v));
        }
        let cols = ["power_w", "energy_j"];
        let source = |second: bool| {
            let pick = |r: usize| {
                let odd = self.samples.0[r].device as usize % devs.len().max(1) % 2 == 1;
                !self.two_sources || odd == second
            };
            let rows: Vec<usize> = (0..p_ids.len()).filter(|&r| pick(r)).collect();
            let ids: Vec<Option<u8>> = rows.iter().map(|&r| p_ids[r]).collect();
            let ts: Vec<Option<i64>> = rows.iter().map(|&r| p_ts[r]).collect();
            let v: Vec<Option<f64>> = rows.iter().map(|&r| p_v[r]).collect();
            let b = batch(vec![
                ("device_id", id_column(lay[1], &ids, shape)),
                ("ts", time_column(t.ts, &ts)),
                (
                    cols[usize::from(self.counters != second)],
                    float_column(t.power_val, &v),
                ),
            ]);
            let n = b.num_rows();
            let mut power = Vec::new();
            let mut at = 0;
            for c in &self.cuts.0 {
                let k = usize::from(*c % 16).min(n - at);
                power.push(b.slice(at, k));
                at += k;
            }
            power.push(b.slice(at, n - at));
            (b.schema().as_ref().clone(), power)
        };
        let mut sources = vec![source(false)];
        if self.two_sources {
            sources.push(source(true));
        }

        // Extreme timestamps: any time near the ends of the range.
        let far = |v: i64, tick: i64| {
            let ns = i128::from(v) * i128::from(tick);
            (ns - i128::from(T0)).abs() > 100 * 365 * 86_400 * i128::from(S)
        };
        if p_ts.iter().flatten().any(|v| far(*v, tp))
            || a_start.iter().chain(&a_end).flatten().any(|v| far(*v, ta))
            || starts.iter().flatten().any(|v| far(*v, tg))
            || devs.iter().any(|d| far(d.installed.ticks(ti), ti))
        {
            enormous = true;
        }

        // Which device row each allocation names (by the id as read).
        let dev_keys: Vec<Option<IdVal>> = dev_ids
            .iter()
            .map(|p| id_of(*p).and_then(|p| id_value(lay[0], p)))
            .collect();
        let mut index: HashMap<&IdVal, Vec<usize>> = HashMap::new();
        for (i, k) in dev_keys.iter().enumerate() {
            if let Some(k) = k {
                index.entry(k).or_default().push(i);
            }
        }
        let alloc_device = if self.no_allocations {
            Vec::new()
        } else {
            alloc_dev_ids
                .iter()
                .map(|p| {
                    let k = p.and_then(|p| id_value(lay[2], p))?;
                    match index.get(&k).map(Vec::as_slice) {
                        Some([i]) => Some(*i),
                        _ => None,
                    }
                })
                .collect()
        };

        let opts = self.opts.options(tp, tp);
        Some(Built {
            devices: table("devices", dev_b)?,
            sites: table("sites", site_b)?,
            intensity: table("intensity", grid_b)?,
            allocations: if !self.no_allocations {
                Some(table("allocations", alloc_b)?)
            } else {
                None
            },
            sources,
            opts,
            alloc_device,
            enormous,
        })
    }
}
