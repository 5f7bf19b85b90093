//! The small tables (devices, sites, intensity, allocations): read, validated
//! row by row, and turned into plain structs before any sample is read.

use crate::error::{Error, Problems, Result};
use crate::ids::KeyIndex;
use std::borrow::Cow;

use crate::schema::{floats, fmt_ts, times, Table, Times};

/// Ceilings on physical inputs. SPEC 11 asks only for `pue >= 1` and
/// non-negative values; these upper bounds are the project's (docs/methodology.md,
/// "Bounds on inputs"). Each is far above anything real (the worst data
/// centers run a PUE near 3, lignite burns about 1,100 gCO2e/kWh, a GPU
/// server embodies a few tonnes, a whole site draws tens of MW), so that no
/// real fleet meets them, and together low enough that no product of
/// accepted inputs overflows a float: NaN or an infinity in a ledger is a
/// silent wrong number.
pub const MAX_PUE: f64 = 100.0;
/// Grid intensity (and residual mix) ceiling, gCO2e/kWh.
pub const MAX_INTENSITY_G_PER_KWH: f64 = 1e5;
/// Embodied carbon ceiling of one device, kgCO2e (a megatonne).
pub const MAX_EMBODIED_KG: f64 = 1e9;
/// Ceiling on any power ceiling (`max_power_w`, devices.max_power_w), W.
pub const MAX_POWER_CEILING_W: f64 = 1e9;

/// Seconds in a `lifetime_years` year: 365.25 days.
pub const SECONDS_PER_YEAR: f64 = 31_557_600.0;

#[derive(Debug, Clone)]
pub struct Device {
    pub region: u32,
    pub pue: f64,
    pub embodied_kg: f64,
    /// Amortization window `[start, end)` in epoch ns.
    pub window: (i64, i64),
    pub idle_w: Option<f64>,
    pub wrap_j: Option<f64>,
    /// Its own power ceiling (W), else the option's (see `Options`).
    pub max_power_w: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
pub struct GridRow {
    pub region: u32,
    pub start: i64,
    /// Explicit `end`, when given.
    pub end: Option<i64>,
    pub gco2e_per_kwh: f64,
    pub cfe: f64,
    pub residual: f64,
}

#[derive(Debug, Clone, Copy)]
pub struct Allocation {
    pub device: u32,
    pub start: i64,
    pub end: i64,
    pub share: f64,
    /// The allocation's utilization of its device (0..1), its weight in the
    /// dynamic energy under `attribution="utilization"`; NaN otherwise.
    pub utilization: f64,
}

#[derive(Debug)]
pub struct Fleet {
    pub device_ids: KeyIndex,
    pub devices: Vec<Device>,
    pub regions: KeyIndex,
    pub grid_rows: Vec<GridRow>,
    pub allocations: Vec<Allocation>,
}

fn bad(
    table: &str,
    col: &str,
    row: usize,
    id: &str,
    value: impl std::fmt::Display,
    expected: &str,
) -> Error {
    Error::input(format!(
        "table '{table}', column '{col}': value {value} at row {row}{id} is invalid; expected {expected}"
    ))
}

/// A float as a person reads it: plain digits in the usual range, and
/// scientific notation for huge or tiny values (1e300, not 301 digits).
struct Num(f64);

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = self.0.abs();
        if a == 0.0 || !a.is_finite() || (1e-6..1e15).contains(&a) {
            write!(f, "{}", self.0)
        } else {
            write!(f, "{:e}", self.0)
        }
    }
}

fn for_id(ids: &KeyIndex, i: usize, what: &str) -> String {
    format!(" ({what} {})", ids.name(i))
}

/// A required float column of `t`, or `None` with its problem noted.
fn req_floats<'a>(
    t: &'a Table,
    col: &str,
    expected: &str,
    p: &mut Problems,
) -> Option<Cow<'a, [f64]>> {
    p.take(t.column(col, expected).and_then(|c| floats(c, t.name, col)))
}

/// An optional float column of `t`; a mistyped one is noted.
fn opt_floats<'a>(t: &'a Table, col: &str, p: &mut Problems) -> Option<Cow<'a, [f64]>> {
    t.optional(col).and_then(|c| p.take(floats(c, t.name, col)))
}

/// A required timestamp column of `t`, or `None` with its problem noted.
fn req_times<'a>(t: &'a Table, col: &str, expected: &str, p: &mut Problems) -> Option<Times<'a>> {
    p.take(t.column(col, expected).and_then(|c| times(c, t.name, col)))
}

/// An optional timestamp column of `t`; a mistyped one is noted.
fn opt_times<'a>(t: &'a Table, col: &str, p: &mut Problems) -> Option<Times<'a>> {
    t.optional(col).and_then(|c| p.take(times(c, t.name, col)))
}

/// Round a duration in seconds to whole nanoseconds (SPEC 1).
pub fn seconds_to_ns(s: f64) -> Option<i64> {
    let ns = (s * 1e9).round();
    (ns.is_finite() && ns.abs() < 9.2e18).then_some(ns as i64)
}

impl Fleet {
    /// Compile the small tables; the first problem found is the error.
    pub fn compile(
        devices: &Table,
        sites: &Table,
        intensity: &Table,
        allocations: Option<&Table>,
    ) -> Result<Self> {
        let mut p = Problems::default();
        let fleet = Self::compile_all(devices, sites, intensity, allocations, false, &mut p);
        p.first()?;
        fleet.ok_or_else(|| Error::internal("inputs compiled without a problem but no fleet"))
    }

    /// Compile the small tables, noting every problem in `p` and going on
    /// as far as the tables allow. The fleet, when the id columns could be
    /// read, skips bad intensity and allocation rows and holds placeholders
    /// for bad devices (region `u32::MAX` when unknown): fit for `validate`'s
    /// further checks, not for accounting unless `p` stayed empty.
    pub fn compile_all(
        devices: &Table,
        sites: &Table,
        intensity: &Table,
        allocations: Option<&Table>,
        utilization_weights: bool,
        p: &mut Problems,
    ) -> Option<Self> {
        let sites = compile_sites(sites, p);
        let (device_ids, devs) = compile_devices(devices, &sites, p);
        let regions = sites.regions.as_ref().map(|(r, _)| r);
        let grid_rows = compile_grid_rows(intensity, regions, p);
        let allocs = compile_allocations(allocations, device_ids.as_ref(), utilization_weights, p);
        let device_ids = device_ids?;
        if devs.len() != device_ids.len() {
            return None;
        }
        Some(Self {
            device_ids,
            devices: devs,
            regions: sites.regions?.0,
            grid_rows,
            allocations: allocs,
        })
    }
}

/// The sites table as the devices need it: site ids, each site's region
/// (interned: the regions' index and each site's region), and PUEs.
struct Sites<'a> {
    ids: Option<KeyIndex>,
    regions: Option<(KeyIndex, Vec<u32>)>,
    pue: Option<Cow<'a, [f64]>>,
}

fn compile_sites<'a>(sites: &'a Table, p: &mut Problems) -> Sites<'a> {
    let site_ids = p
        .take(sites.column("site_id", "string or integer ids"))
        .and_then(|c| KeyIndex::build_all(c, "sites", "site_id", p));
    let region_of_site = p
        .take(sites.column("region", "string or integer region ids"))
        .and_then(|c| KeyIndex::intern_all(c, "sites", "region", p));
    let pue = req_floats(sites, "pue", "a float >= 1.0", p);
    let site_name = |row: usize| {
        site_ids
            .as_ref()
            .map_or(String::new(), |ids| for_id(ids, row, "site_id"))
    };
    if let Some(pue) = &pue {
        for (row, u) in pue.iter().enumerate() {
            if !(u.is_finite() && (1.0..=MAX_PUE).contains(u)) {
                p.note(bad(
                    "sites",
                    "pue",
                    row,
                    &site_name(row),
                    Num(*u),
                    &format!("a PUE >= 1.0 and at most {MAX_PUE} (the overhead of a real data center is a fraction of its IT load, not {MAX_PUE} times it: check the unit or the column)"),
                ));
            }
        }
    }
    Sites {
        ids: site_ids,
        regions: region_of_site,
        pue,
    }
}

/// The devices table: the device index, and each device's site data,
/// embodied carbon and amortization window, idle power, counter modulus and
/// power ceiling (a device with a problem keeps a placeholder row).
fn compile_devices(
    devices: &Table,
    sites: &Sites<'_>,
    p: &mut Problems,
) -> (Option<KeyIndex>, Vec<Device>) {
    let (site_ids, region_of_site, pue) = (&sites.ids, &sites.regions, &sites.pue);
    let device_ids = p
        .take(devices.column("device_id", "string or integer ids"))
        .and_then(|c| KeyIndex::build_all(c, "devices", "device_id", p));
    let dev_site = p
        .take(devices.column("site_id", "ids of sites.site_id"))
        .and_then(|c| {
            let ids = site_ids.as_ref()?;
            ids.resolve_each(c, "devices", "site_id", "sites.site_id", p)
        });
    let embodied = req_floats(devices, "embodied_kgco2e", "a float >= 0", p);
    let installed = req_times(devices, "installed_at", "a timestamp", p);
    let lifetime = opt_floats(devices, "lifetime_years", p);
    let retired = opt_times(devices, "retired_at", p);
    let window_columns =
        devices.optional("lifetime_years").is_some() || devices.optional("retired_at").is_some();
    if !window_columns {
        p.note(Error::schema(
            "table 'devices': missing column 'lifetime_years' or 'retired_at' (expected one of them: the amortization window)",
        ));
    }
    let idle = opt_floats(devices, "idle_power_w", p);
    let wrap = opt_floats(devices, "counter_wrap_j", p);
    let ceiling = opt_floats(devices, "max_power_w", p);

    let mut devs = Vec::with_capacity(devices.len());
    if let (Some(device_ids), Some(embodied), Some(installed), true) =
        (&device_ids, &embodied, &installed, window_columns)
    {
        for row in 0..devices.len() {
            let id = for_id(device_ids, row, "device_id");
            let e = embodied[row];
            if !(e.is_finite() && (0.0..=MAX_EMBODIED_KG).contains(&e)) {
                p.note(bad(
                    "devices",
                    "embodied_kgco2e",
                    row,
                    &id,
                    Num(e),
                    &format!("a value >= 0 and at most {MAX_EMBODIED_KG:e} kgCO2e (one device embodies tonnes, not megatonnes: check the unit, e.g. g read as kg)"),
                ));
            }
            let start = installed.get(row);
            if start.is_none() {
                p.note(bad(
                    "devices",
                    "installed_at",
                    row,
                    &id,
                    "null",
                    "a timestamp",
                ));
            }
            let end = match (start, retired.as_ref().and_then(|r| r.get(row))) {
                (None, _) => None,
                (Some(start), Some(r)) if r <= start => {
                    p.note(bad(
                        "devices",
                        "retired_at",
                        row,
                        &id,
                        fmt_ts(r),
                        &format!("a time after installed_at {}", fmt_ts(start)),
                    ));
                    None
                }
                (Some(_), Some(r)) => Some(r),
                (Some(start), None) => lifetime_end(lifetime.as_deref(), row, start, &id, p),
            };
            let idle_w = match idle.as_ref().map(|v| v[row]) {
                Some(w) if w.is_nan() => None,
                Some(w) if !(w.is_finite() && (0.0..=MAX_POWER_CEILING_W).contains(&w)) => {
                    p.note(bad(
                        "devices",
                        "idle_power_w",
                        row,
                        &id,
                        Num(w),
                        &format!("a power >= 0 and at most {MAX_POWER_CEILING_W:e} W (or null)"),
                    ));
                    None
                }
                other => other,
            };
            let wrap_j = match wrap.as_ref().map(|v| v[row]) {
                Some(w) if w.is_nan() => None,
                Some(w) if !(w.is_finite() && w > 0.0) => {
                    p.note(bad(
                        "devices",
                        "counter_wrap_j",
                        row,
                        &id,
                        Num(w),
                        "a counter modulus > 0 J (or null)",
                    ));
                    None
                }
                other => other,
            };
            let max_power_w = match ceiling.as_ref().map(|v| v[row]) {
                Some(w) if w.is_nan() => None,
                Some(w) if !(w.is_finite() && w > 0.0 && w <= MAX_POWER_CEILING_W) => {
                    p.note(bad(
                        "devices",
                        "max_power_w",
                        row,
                        &id,
                        Num(w),
                        &format!(
                            "a power ceiling > 0 and at most {MAX_POWER_CEILING_W:e} W (or null)"
                        ),
                    ));
                    None
                }
                other => other,
            };
            // A device with a problem still takes its row (placeholder
            // values), so device indices stay row numbers for `validate`.
            let site = dev_site.as_ref().and_then(|s| s[row]).map(|s| s as usize);
            let region = site
                .zip(region_of_site.as_ref())
                .map_or(u32::MAX, |(s, (_, site_region))| site_region[s]);
            let pue = site.zip(pue.as_ref()).map_or(1.0, |(s, pue)| pue[s]);
            devs.push(Device {
                region,
                pue,
                embodied_kg: e,
                window: start.zip(end).unwrap_or((0, 1)),
                idle_w,
                wrap_j,
                max_power_w,
            });
        }
    }
    (device_ids, devs)
}

/// The intensity rows of the regions some site uses (rows of other regions
/// are ignored; a row with a problem is noted and left out).
fn compile_grid_rows(
    intensity: &Table,
    regions: Option<&KeyIndex>,
    p: &mut Problems,
) -> Vec<GridRow> {
    let reg = p
        .take(intensity.column("region", "region ids matching sites.region"))
        .and_then(|c| {
            let regions = regions?;
            p.take(regions.resolve_lenient(c, "intensity", "region", "sites.region"))
        });
    let starts = req_times(intensity, "start", "a timestamp", p);
    let ends = opt_times(intensity, "end", p);
    let c = req_floats(intensity, "gco2e_per_kwh", "a float >= 0", p);
    let cfe = opt_floats(intensity, "cfe", p);
    let residual = opt_floats(intensity, "residual_gco2e_per_kwh", p);
    let mut grid_rows = Vec::with_capacity(intensity.len());
    if let (Some(regions), Some(reg), Some(starts), Some(c)) = (regions, &reg, &starts, &c) {
        for row in 0..intensity.len() {
            let Some(region) = reg[row] else { continue };
            let id = format!(" (region {})", regions.name(region as usize));
            let Some(start) = starts.get(row) else {
                p.note(bad("intensity", "start", row, &id, "null", "a timestamp"));
                continue;
            };
            // A row with a problem is noted and left out of the grid.
            let mut row_ok = true;
            let end = ends.as_ref().and_then(|e| e.get(row));
            if let Some(e) = end {
                if e <= start {
                    row_ok = false;
                    p.note(bad(
                        "intensity",
                        "end",
                        row,
                        &id,
                        fmt_ts(e),
                        &format!("end > start {}", fmt_ts(start)),
                    ));
                }
            }
            let ci = c[row];
            if !(ci.is_finite() && (0.0..=MAX_INTENSITY_G_PER_KWH).contains(&ci)) {
                row_ok = false;
                p.note(bad(
                    "intensity",
                    "gco2e_per_kwh",
                    row,
                    &id,
                    Num(ci),
                    &format!("an intensity >= 0 and at most {MAX_INTENSITY_G_PER_KWH:e} gCO2e/kWh (about 100 times the dirtiest generation: check the unit, e.g. g/MWh or lb/MWh)"),
                ));
            }
            let f = cfe.as_ref().map_or(0.0, |v| v[row]);
            let f = if f.is_nan() { 0.0 } else { f };
            if !(0.0..=1.0).contains(&f) {
                row_ok = false;
                p.note(bad(
                    "intensity",
                    "cfe",
                    row,
                    &id,
                    Num(f),
                    "a carbon-free fraction in [0, 1]",
                ));
            }
            let r = residual.as_ref().map_or(f64::NAN, |v| v[row]);
            // A missing residual is the intensity itself, checked above.
            let (r, given) = if r.is_nan() { (ci, false) } else { (r, true) };
            if given && !(r.is_finite() && (0.0..=MAX_INTENSITY_G_PER_KWH).contains(&r)) {
                row_ok = false;
                p.note(bad(
                    "intensity",
                    "residual_gco2e_per_kwh",
                    row,
                    &id,
                    Num(r),
                    &format!("an intensity >= 0 and at most {MAX_INTENSITY_G_PER_KWH:e} gCO2e/kWh (or null)"),
                ));
            }
            if !row_ok {
                continue;
            }
            grid_rows.push(GridRow {
                region,
                start,
                end,
                gco2e_per_kwh: ci,
                cfe: f,
                residual: r,
            });
        }
    }
    grid_rows
}

/// The allocations on known devices with a valid span and share (and,
/// with `utilization_weights`, a utilization in 0..1 each).
fn compile_allocations(
    allocations: Option<&Table>,
    device_ids: Option<&KeyIndex>,
    utilization_weights: bool,
    p: &mut Problems,
) -> Vec<Allocation> {
    let mut allocs = Vec::new();
    if let Some(a) = allocations {
        p.take(a.column("job_id", "a job id column"));
        let dev = p
            .take(a.column("device_id", "ids of devices.device_id"))
            .and_then(|c| {
                let ids = device_ids.as_ref()?;
                ids.resolve_each(c, "allocations", "device_id", "devices.device_id", p)
            });
        let s = req_times(a, "start", "a timestamp", p);
        let e = req_times(a, "end", "a timestamp", p);
        let share_col = a.optional("share");
        let share = opt_floats(a, "share", p);
        let share_nulls = share_col.and_then(|c| c.logical_nulls());
        let util = if utilization_weights {
            p.take(a.column("utilization", "a utilization (0..1) per allocation"))
                .and_then(|c| p.take(floats(c, "allocations", "utilization")))
        } else {
            None
        };
        if let (Some(dev), Some(s), Some(e), Some(device_ids)) = (&dev, &s, &e, &device_ids) {
            for row in 0..a.len() {
                let Some(device) = dev[row] else { continue };
                let id = format!(" (device_id {})", device_ids.name(device as usize));
                let start = s.get(row);
                if start.is_none() {
                    p.note(bad("allocations", "start", row, &id, "null", "a timestamp"));
                }
                let end = e.get(row);
                if end.is_none() {
                    p.note(bad("allocations", "end", row, &id, "null", "a timestamp"));
                }
                let (Some(start), Some(end)) = (start, end) else {
                    continue;
                };
                if end <= start {
                    p.note(bad(
                        "allocations",
                        "end",
                        row,
                        &id,
                        fmt_ts(end),
                        &format!("end > start {}", fmt_ts(start)),
                    ));
                    continue;
                }
                // Null means 1; a NaN share is bad input, not a default.
                let is_null = share_nulls.as_ref().is_some_and(|n| n.is_null(row));
                let sh = match &share {
                    Some(v) if !is_null => v[row],
                    _ => 1.0,
                };
                if !(sh > 0.0 && sh <= 1.0) {
                    p.note(bad(
                        "allocations",
                        "share",
                        row,
                        &id,
                        sh,
                        "a share in (0, 1]",
                    ));
                    continue;
                }
                let utilization = match &util {
                    Some(u) if (0.0..=1.0).contains(&u[row]) => u[row],
                    Some(u) => {
                        p.note(bad(
                            "allocations",
                            "utilization",
                            row,
                            &id,
                            Num(u[row]),
                            "a utilization between 0 and 1 (attribution=\"utilization\")",
                        ));
                        continue;
                    }
                    None => f64::NAN,
                };
                allocs.push(Allocation {
                    device,
                    start,
                    end,
                    share: sh,
                    utilization,
                });
            }
        }
    }
    allocs
}

/// The end of a device's amortization window from `lifetime_years`.
fn lifetime_end(
    lifetime: Option<&[f64]>,
    row: usize,
    start: i64,
    id: &str,
    p: &mut Problems,
) -> Option<i64> {
    let years = lifetime.map_or(f64::NAN, |l| l[row]);
    if !(years.is_finite() && years > 0.0) {
        p.note(bad(
            "devices",
            "lifetime_years",
            row,
            id,
            Num(years),
            "lifetime_years > 0 (or a retired_at)",
        ));
        return None;
    }
    let Some(ns) = seconds_to_ns(years * SECONDS_PER_YEAR).filter(|&ns| ns > 0) else {
        p.note(bad(
            "devices",
            "lifetime_years",
            row,
            id,
            Num(years),
            "a lifetime of at least 1 ns that fits the timestamp range (a window that rounds to nothing would book no embodied carbon)",
        ));
        return None;
    };
    let end = start.checked_add(ns);
    if end.is_none() {
        p.note(bad(
            "devices",
            "lifetime_years",
            row,
            id,
            Num(years),
            "a window ending before year 2262",
        ));
    }
    end
}
