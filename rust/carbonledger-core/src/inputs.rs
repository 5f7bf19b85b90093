//! The small tables (devices, sites, intensity, allocations): read, validated
//! row by row, and turned into plain structs before any sample is read.

use crate::error::{Error, Result};
use crate::ids::KeyIndex;
use crate::schema::{floats, fmt_ts, times, Table};

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
}

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

fn for_id(ids: &KeyIndex, i: usize, what: &str) -> String {
    format!(" ({what} {})", ids.name(i))
}

/// Round a duration in seconds to whole nanoseconds (SPEC 1).
pub fn seconds_to_ns(s: f64) -> Option<i64> {
    let ns = (s * 1e9).round();
    (ns.is_finite() && ns.abs() < 9.2e18).then_some(ns as i64)
}

impl Fleet {
    pub fn compile(
        devices: &Table,
        sites: &Table,
        intensity: &Table,
        allocations: Option<&Table>,
    ) -> Result<Self> {
        // Sites.
        let site_ids = KeyIndex::build(
            sites.column("site_id", "string or integer ids")?,
            "sites",
            "site_id",
        )?;
        let (regions, site_region) = KeyIndex::intern(
            sites.column("region", "string or integer region ids")?,
            "sites",
            "region",
        )?;
        let pue = floats(sites.column("pue", "a float >= 1.0")?, "sites", "pue")?;
        for (row, u) in pue.iter().enumerate() {
            if !(u.is_finite() && *u >= 1.0) {
                return Err(bad(
                    "sites",
                    "pue",
                    row,
                    &for_id(&site_ids, row, "site_id"),
                    u,
                    "a finite PUE >= 1.0",
                ));
            }
        }

        // Devices.
        let device_ids = KeyIndex::build(
            devices.column("device_id", "string or integer ids")?,
            "devices",
            "device_id",
        )?;
        let mut dev_site = Vec::new();
        site_ids.resolve(
            devices.column("site_id", "ids of sites.site_id")?,
            "devices",
            "site_id",
            "sites.site_id",
            &mut dev_site,
        )?;
        let embodied = floats(
            devices.column("embodied_kgco2e", "a float >= 0")?,
            "devices",
            "embodied_kgco2e",
        )?;
        let installed = times(
            devices.column("installed_at", "a timestamp")?,
            "devices",
            "installed_at",
        )?;
        let lifetime = devices
            .optional("lifetime_years")
            .map(|a| floats(a, "devices", "lifetime_years"))
            .transpose()?;
        let retired = devices
            .optional("retired_at")
            .map(|a| times(a, "devices", "retired_at"))
            .transpose()?;
        if lifetime.is_none() && retired.is_none() {
            return Err(Error::schema(
                "table 'devices': missing column 'lifetime_years' or 'retired_at' (expected one of them: the amortization window)",
            ));
        }
        let idle = devices
            .optional("idle_power_w")
            .map(|a| floats(a, "devices", "idle_power_w"))
            .transpose()?;
        let wrap = devices
            .optional("counter_wrap_j")
            .map(|a| floats(a, "devices", "counter_wrap_j"))
            .transpose()?;

        let mut devs = Vec::with_capacity(devices.len());
        for row in 0..devices.len() {
            let id = for_id(&device_ids, row, "device_id");
            let e = embodied[row];
            if !(e.is_finite() && e >= 0.0) {
                return Err(bad(
                    "devices",
                    "embodied_kgco2e",
                    row,
                    &id,
                    e,
                    "a finite value >= 0 kgCO2e",
                ));
            }
            let start = installed
                .get(row)
                .ok_or_else(|| bad("devices", "installed_at", row, &id, "null", "a timestamp"))?;
            let end = match retired.as_ref().and_then(|r| r.get(row)) {
                Some(r) => {
                    if r <= start {
                        return Err(bad(
                            "devices",
                            "retired_at",
                            row,
                            &id,
                            fmt_ts(r),
                            &format!("a time after installed_at {}", fmt_ts(start)),
                        ));
                    }
                    r
                }
                None => {
                    let years = lifetime.as_ref().map_or(f64::NAN, |l| l[row]);
                    if !(years.is_finite() && years > 0.0) {
                        return Err(bad(
                            "devices",
                            "lifetime_years",
                            row,
                            &id,
                            years,
                            "lifetime_years > 0 (or a retired_at)",
                        ));
                    }
                    let ns = seconds_to_ns(years * SECONDS_PER_YEAR).ok_or_else(|| {
                        bad(
                            "devices",
                            "lifetime_years",
                            row,
                            &id,
                            years,
                            "a lifetime that fits the timestamp range",
                        )
                    })?;
                    start.checked_add(ns).ok_or_else(|| {
                        bad(
                            "devices",
                            "lifetime_years",
                            row,
                            &id,
                            years,
                            "a window ending before year 2262",
                        )
                    })?
                }
            };
            let idle_w = match idle.as_ref().map(|v| v[row]) {
                Some(w) if w.is_nan() => None,
                Some(w) if !(w.is_finite() && w >= 0.0) => {
                    return Err(bad(
                        "devices",
                        "idle_power_w",
                        row,
                        &id,
                        w,
                        "a finite power >= 0 W (or null)",
                    ))
                }
                other => other,
            };
            let wrap_j = match wrap.as_ref().map(|v| v[row]) {
                Some(w) if w.is_nan() => None,
                Some(w) if !(w.is_finite() && w > 0.0) => {
                    return Err(bad(
                        "devices",
                        "counter_wrap_j",
                        row,
                        &id,
                        w,
                        "a counter modulus > 0 J (or null)",
                    ))
                }
                other => other,
            };
            let site = dev_site[row] as usize;
            devs.push(Device {
                region: site_region[site],
                pue: pue[site],
                embodied_kg: e,
                window: (start, end),
                idle_w,
                wrap_j,
            });
        }

        // Intensity: rows of regions that no site uses are ignored.
        let reg_col = intensity.column("region", "region ids matching sites.region")?;
        let reg = regions.resolve_lenient(reg_col, "intensity", "region", "sites.region")?;
        let starts = times(
            intensity.column("start", "a timestamp")?,
            "intensity",
            "start",
        )?;
        let ends = intensity
            .optional("end")
            .map(|a| times(a, "intensity", "end"))
            .transpose()?;
        let c = floats(
            intensity.column("gco2e_per_kwh", "a float >= 0")?,
            "intensity",
            "gco2e_per_kwh",
        )?;
        let cfe = intensity
            .optional("cfe")
            .map(|a| floats(a, "intensity", "cfe"))
            .transpose()?;
        let residual = intensity
            .optional("residual_gco2e_per_kwh")
            .map(|a| floats(a, "intensity", "residual_gco2e_per_kwh"))
            .transpose()?;
        let mut grid_rows = Vec::with_capacity(intensity.len());
        for row in 0..intensity.len() {
            let Some(region) = reg[row] else { continue };
            let id = format!(" (region {})", regions.name(region as usize));
            let start = starts
                .get(row)
                .ok_or_else(|| bad("intensity", "start", row, &id, "null", "a timestamp"))?;
            let end = ends.as_ref().and_then(|e| e.get(row));
            if let Some(e) = end {
                if e <= start {
                    return Err(bad(
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
            if !(ci.is_finite() && ci >= 0.0) {
                return Err(bad(
                    "intensity",
                    "gco2e_per_kwh",
                    row,
                    &id,
                    ci,
                    "a finite intensity >= 0 gCO2e/kWh",
                ));
            }
            let f = cfe.as_ref().map_or(0.0, |v| v[row]);
            let f = if f.is_nan() { 0.0 } else { f };
            if !(0.0..=1.0).contains(&f) {
                return Err(bad(
                    "intensity",
                    "cfe",
                    row,
                    &id,
                    f,
                    "a carbon-free fraction in [0, 1]",
                ));
            }
            let r = residual.as_ref().map_or(f64::NAN, |v| v[row]);
            let r = if r.is_nan() { ci } else { r };
            if !(r.is_finite() && r >= 0.0) {
                return Err(bad(
                    "intensity",
                    "residual_gco2e_per_kwh",
                    row,
                    &id,
                    r,
                    "a finite intensity >= 0 gCO2e/kWh (or null)",
                ));
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

        // Allocations.
        let mut allocs = Vec::new();
        if let Some(a) = allocations {
            a.column("job_id", "a job id column")?;
            let mut dev = Vec::new();
            device_ids.resolve(
                a.column("device_id", "ids of devices.device_id")?,
                "allocations",
                "device_id",
                "devices.device_id",
                &mut dev,
            )?;
            let s = times(a.column("start", "a timestamp")?, "allocations", "start")?;
            let e = times(a.column("end", "a timestamp")?, "allocations", "end")?;
            let share_col = a.optional("share");
            let share = share_col
                .map(|c| floats(c, "allocations", "share"))
                .transpose()?;
            let share_nulls = share_col.and_then(|c| c.logical_nulls());
            for row in 0..a.len() {
                let id = format!(" (device_id {})", device_ids.name(dev[row] as usize));
                let start = s
                    .get(row)
                    .ok_or_else(|| bad("allocations", "start", row, &id, "null", "a timestamp"))?;
                let end = e
                    .get(row)
                    .ok_or_else(|| bad("allocations", "end", row, &id, "null", "a timestamp"))?;
                if end <= start {
                    return Err(bad(
                        "allocations",
                        "end",
                        row,
                        &id,
                        fmt_ts(end),
                        &format!("end > start {}", fmt_ts(start)),
                    ));
                }
                // Null means 1; a NaN share is bad input, not a default.
                let is_null = share_nulls.as_ref().is_some_and(|n| n.is_null(row));
                let sh = match &share {
                    Some(v) if !is_null => v[row],
                    _ => 1.0,
                };
                if !(sh > 0.0 && sh <= 1.0) {
                    return Err(bad(
                        "allocations",
                        "share",
                        row,
                        &id,
                        sh,
                        "a share in (0, 1]",
                    ));
                }
                allocs.push(Allocation {
                    device: dev[row],
                    start,
                    end,
                    share: sh,
                });
            }
        }

        Ok(Self {
            device_ids,
            devices: devs,
            regions,
            grid_rows,
            allocations: allocs,
        })
    }
}
