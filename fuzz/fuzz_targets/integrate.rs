//! The per-device state machine (SPEC 3, 4, 8) against a plain reference
//! integrator, on two devices with many samples: power or counters, wraps,
//! resets, duplicates, gaps, invalid values, out-of-order rows, extreme
//! values and timestamps. The same samples also run cut into batches on two
//! workers, with dictionary ids, and sorted by the engine (`sort=True`):
//! every run must agree (SPEC 10.2).
#![no_main]

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, TimestampNanosecondType, UInt64Type};
use arrow_array::{Array, ArrayRef, DictionaryArray, RecordBatch, StringArray};
use carbonledger_core::inputs::{seconds_to_ns, SECONDS_PER_YEAR};
use carbonledger_core::{
    Engine, Error, ErrorKind, GapFill, Inputs, OnInvalid, Options, Output, Overlap, Table,
};
use carbonledger_fuzz::arrow::{batch, float_column, time_column, S, T0};
use carbonledger_fuzz::cases::IntegrateCase;
use carbonledger_fuzz::check::{check_error, check_output, check_same, col};
use carbonledger_fuzz::gene::Gene;
use libfuzzer_sys::fuzz_target;

type Case = IntegrateCase;

const IDS: [&str; 2] = ["a", "b"];
/// The one grid row starts this long before T0 and never ends.
const GRID_FROM: i64 = T0 - 1000 * 86_400 * S;
/// Timestamps this close to T0 are "sane": the reference runs on them.
const SANE_NS: i128 = 500 * 86_400 * S as i128;

struct Fixture {
    devices: Table,
    sites: Table,
    intensity: Table,
    allocations: Option<Table>,
    /// (device, ts ns, value) in input order.
    rows: Vec<(usize, i64, Option<f64>)>,
    idle: [Option<f64>; 2],
    wrap: [Option<f64>; 2],
    embodied: Option<f64>,
    window: Option<(i64, i64)>,
    /// (device, start, end, share) of each allocation.
    allocs: Vec<(usize, i64, i64, f64)>,
    alloc_device: Vec<Option<usize>>,
    sane: bool,
}

fn table(name: &'static str, b: RecordBatch) -> Table {
    Table::new(name, &b.schema(), &[b]).expect("one batch")
}

fn strs(v: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}

fn fixture(case: &Case) -> Fixture {
    {
        let max_gap = case.opts.max_gap_ns().max(1);
        let devs = [&case.a, &case.b];
        let idle = devs.map(|d| d.idle.get(0.0, 200.0));
        let wrap = devs.map(|d| d.wrap.get(1e3, 1e6));
        let embodied = case.embodied.get(0.0, 2000.0);
        let installed = case.installed.ticks(1);
        let years = case.lifetime.get(1e-6, 10.0);
        let mut sane = true;
        let mut huge = |v: Option<f64>| {
            if v.is_some_and(|v| v.is_finite() && v.abs() > 1e12) {
                sane = false;
            }
            v
        };
        let devices = table(
            "devices",
            batch(vec![
                ("device_id", strs(&IDS)),
                ("site_id", strs(&["s", "s"])),
                ("embodied_kgco2e", float_column(0, &[huge(embodied); 2])),
                ("installed_at", time_column(7, &[Some(installed); 2])),
                ("lifetime_years", float_column(0, &[years; 2])),
                ("idle_power_w", float_column(0, &idle.map(&mut huge))),
                ("counter_wrap_j", float_column(0, &wrap.map(&mut huge))),
            ]),
        );
        let pue = huge(case.pue.get(1.0, 3.0));
        let sites = table(
            "sites",
            batch(vec![
                ("site_id", strs(&["s"])),
                ("region", strs(&["R"])),
                ("pue", float_column(0, &[pue])),
            ]),
        );
        let c = huge(case.c.get(0.0, 900.0));
        let intensity = table(
            "intensity",
            batch(vec![
                ("region", strs(&["R"])),
                ("start", time_column(7, &[Some(GRID_FROM)])),
                ("gco2e_per_kwh", float_column(0, &[c])),
                ("cfe", float_column(0, &[case.cfe.get(0.0, 1.0)])),
            ]),
        );
        let al = &case.allocs.0;
        let starts: Vec<Option<i64>> = al.iter().map(|a| Some(a.start.ticks(1))).collect();
        let ends: Vec<Option<i64>> = al
            .iter()
            .zip(&starts)
            .map(|(a, s)| s.map(|s| s.saturating_add(a.len.ticks(1, max_gap))))
            .collect();
        let allocations = (!al.is_empty()).then(|| {
            let jobs: Vec<String> = (0..al.len()).map(|i| format!("j{i}")).collect();
            let jobs: Vec<&str> = jobs.iter().map(String::as_str).collect();
            let devs: Vec<&str> = al.iter().map(|a| IDS[usize::from(a.device)]).collect();
            table(
                "allocations",
                batch(vec![
                    ("job_id", strs(&jobs)),
                    ("device_id", strs(&devs)),
                    ("start", time_column(7, &starts)),
                    ("end", time_column(7, &ends)),
                    (
                        "share",
                        float_column(
                            0,
                            &al.iter().map(|a| a.share.get(0.0, 1.0)).collect::<Vec<_>>(),
                        ),
                    ),
                ]),
            )
        });

        let mut clock: [Option<i64>; 2] = [None; 2];
        let mut counter = [0.0f64; 2];
        let mut rows = Vec::new();
        for s in &case.steps.0 {
            let d = usize::from(s.device);
            let now = match clock[d] {
                None => devs[d].t0.ticks(1),
                Some(t) => t.saturating_add(s.dt.ticks(1, max_gap)),
            };
            clock[d] = Some(now);
            let v = if case.counters {
                let v = s.value.counter(counter[d], wrap[d]);
                if let Some(v) = v.filter(|v| v.is_finite() && *v >= 0.0) {
                    counter[d] = v;
                }
                v
            } else {
                s.value.get(0.0, 1000.0)
            };
            rows.push((d, now, huge(v)));
        }
        let far = |t: i64| (i128::from(t) - i128::from(T0)).abs() > SANE_NS;
        if rows.iter().any(|r| far(r.1))
            || starts.iter().chain(&ends).flatten().any(|t| far(*t))
            || far(installed)
        {
            sane = false;
        }
        if let Some(p) = case.opts.options(1, 1).period {
            if far(p.0) || far(p.1) {
                sane = false;
            }
        }
        let window = years
            .filter(|y| y.is_finite() && *y > 0.0)
            .and_then(|y| seconds_to_ns(y * SECONDS_PER_YEAR))
            .and_then(|ns| Some((installed, installed.checked_add(ns)?)));
        Fixture {
            devices,
            sites,
            intensity,
            allocations,
            rows,
            idle,
            wrap,
            embodied,
            window,
            allocs: al
                .iter()
                .zip(starts.iter().zip(&ends))
                .map(|(a, (s, e))| {
                    let share = a.share.get(0.0, 1.0).filter(|x| !x.is_nan());
                    (
                        usize::from(a.device),
                        s.unwrap_or(0),
                        e.unwrap_or(0),
                        share.unwrap_or(1.0),
                    )
                })
                .collect(),
            alloc_device: al.iter().map(|a| Some(usize::from(a.device))).collect(),
            sane,
        }
    }
}

/// What the reference expects of a device.
#[derive(Debug, Default, Clone)]
struct DevExpect {
    samples: u64,
    invalid: u64,
    duplicates: u64,
    gaps: u64,
    wraps: u64,
    resets: u64,
    first: Option<i64>,
    last: Option<i64>,
    energy_j: f64,
    uncovered_ns: i128,
}

/// The reference's verdict: the expectations, the error kinds the engine
/// must raise one of (`must`), or may raise (`may`: over-allocation sums
/// within rounding of the tolerance).
struct Verdict {
    expect: [DevExpect; 2],
    must: Vec<ErrorKind>,
    may: Vec<ErrorKind>,
}

fn reference(fx: &Fixture, opts: &Options, counters: bool) -> Verdict {
    let mut v = Verdict {
        expect: Default::default(),
        must: Vec::new(),
        may: Vec::new(),
    };
    // Points per device: (ts, running mean, n), as the engine averages.
    let mut points: [Vec<(i64, f64, u32)>; 2] = [Vec::new(), Vec::new()];
    let ex = &mut v.expect;
    // SPEC 8 (v1.1): with an explicit period only rows in the read window
    // [start - max_gap, end + max_gap] count.
    let window = opts.period.map_or((i64::MIN, i64::MAX), |(a, b)| {
        (
            a.saturating_sub(opts.max_gap_ns),
            b.saturating_add(opts.max_gap_ns),
        )
    });
    for &(d, t, val) in &fx.rows {
        if t < window.0 || t > window.1 {
            continue;
        }
        let e = &mut ex[d];
        e.samples += 1;
        let val = val.unwrap_or(f64::NAN);
        if !(val.is_finite() && val >= 0.0) {
            e.invalid += 1;
            if opts.on_invalid == OnInvalid::Raise {
                v.must.push(ErrorKind::InvalidSample);
                break;
            }
            continue;
        }
        if !counters && val > opts.max_power_w {
            v.must.push(ErrorKind::InvalidSample);
            break;
        }
        let p = &mut points[d];
        match p.last_mut() {
            Some(last) if last.0 == t => {
                last.2 += 1;
                last.1 += (val - last.1) / f64::from(last.2);
                e.duplicates += 1;
            }
            Some(last) if t < last.0 => {
                v.must.push(ErrorKind::Order);
                break;
            }
            _ => p.push((t, val, 1)),
        }
        e.first = Some(e.first.map_or(t, |f| f.min(t)));
        e.last = Some(e.last.map_or(t, |l| l.max(t)));
    }
    // A counter rising faster than the power ceiling (checked as each
    // segment is made, whatever the period).
    if counters {
        for (d, p) in points.iter().enumerate() {
            for w in p.windows(2) {
                let ((t0, v0, _), (t1, v1, _)) = (w[0], w[1]);
                if t1 - t0 > opts.max_gap_ns {
                    continue;
                }
                let dv = v1 - v0;
                let dv = match fx.wrap[d].filter(|w| !w.is_nan()) {
                    _ if dv >= 0.0 => dv,
                    Some(wrap) => dv.rem_euclid(wrap),
                    None => continue,
                };
                if dv * 1e9 > opts.max_power_w * (t1 - t0) as f64 {
                    v.must.push(ErrorKind::InvalidSample);
                }
            }
        }
    }
    if !v.must.is_empty() {
        // An uncovered piece without idle power may come first, and the
        // default period's over-allocation check comes before the last
        // segment of each device is made.
        if opts.gap_fill == GapFill::Idle {
            v.must.push(ErrorKind::Input);
        }
        if opts.period.is_none() && opts.overlap == Overlap::Error {
            v.must.push(ErrorKind::Overlap);
        }
        return v;
    }
    let (p0, p1) = match opts.period {
        Some(p) => p,
        None => {
            let lo = ex.iter().filter_map(|e| e.first).min();
            let hi = ex.iter().filter_map(|e| e.last).max();
            match (lo, hi) {
                (Some(a), Some(b)) if a < b => (a, b),
                _ => {
                    v.must.push(ErrorKind::Input);
                    return v;
                }
            }
        }
    };
    for d in 0..2 {
        let e = &mut ex[d];
        let mut covered: i128 = 0;
        let mut energy = 0.0;
        for w in points[d].windows(2) {
            let ((t0, v0, _), (t1, v1, _)) = (w[0], w[1]);
            let in_period = t0 < p1 && t1 > p0;
            let (a, b) = (t0.max(p0), t1.min(p1));
            let span = (t1 - t0) as f64;
            let part = |x: i64| (x - t0) as f64 / span;
            let measured = if t1 - t0 > opts.max_gap_ns {
                e.gaps += u64::from(in_period);
                None
            } else if counters {
                let dv = v1 - v0;
                if dv >= 0.0 {
                    Some(dv)
                } else if let Some(wrap) = fx.wrap[d].filter(|w| !w.is_nan()) {
                    e.wraps += u64::from(in_period);
                    Some(dv.rem_euclid(wrap))
                } else {
                    e.resets += u64::from(in_period);
                    None
                }
            } else {
                Some(0.0)
            };
            if a >= b {
                continue;
            }
            let Some(dv) = measured else { continue };
            covered += i128::from(b - a);
            let len_s = (b - a) as f64 / 1e9;
            energy += if counters {
                dv * ((b - a) as f64 / span)
            } else if opts.interpolation == carbonledger_core::Interpolation::Previous {
                v0 * len_s
            } else {
                let (pa, pb) = (v0 + (v1 - v0) * part(a), v0 + (v1 - v0) * part(b));
                0.5 * (pa + pb) * len_s
            };
        }
        e.uncovered_ns = i128::from(p1) - i128::from(p0) - covered;
        if opts.gap_fill == GapFill::Idle && e.uncovered_ns > 0 {
            match fx.idle[d].filter(|w| !w.is_nan()) {
                // Idle fill is power the engine books: within the ceiling.
                Some(w) if w > opts.max_power_w => v.must.push(ErrorKind::Input),
                Some(w) => energy += w * (e.uncovered_ns as f64 / 1e9),
                None => v.must.push(ErrorKind::Input),
            }
        }
        e.energy_j = energy;
    }
    // Over-allocation inside the default period (an explicit one was
    // checked before any sample was read).
    if opts.period.is_none() && opts.overlap == Overlap::Error {
        let mut edges: Vec<i64> = fx.allocs.iter().flat_map(|a| [a.1, a.2]).collect();
        edges.sort_unstable();
        edges.dedup();
        let mut worst = 0.0f64;
        for w in edges.windows(2) {
            if w[1] <= p0 || w[0] >= p1 {
                continue;
            }
            for d in 0..2 {
                let sum: f64 = fx
                    .allocs
                    .iter()
                    .filter(|a| a.0 == d && a.1 <= w[0] && a.2 > w[0])
                    .map(|a| a.3)
                    .sum();
                worst = worst.max(sum);
            }
        }
        if worst > 1.0 + 2e-9 {
            v.must.push(ErrorKind::Overlap);
        } else if worst > 1.0 + 0.5e-9 {
            v.may.push(ErrorKind::Overlap);
        }
    }
    v
}

fn rows_batch(fx: &Fixture, order: &[usize], dictionary: bool, counters: bool) -> RecordBatch {
    let ids: Vec<&str> = order.iter().map(|&i| IDS[fx.rows[i].0]).collect();
    let ids: ArrayRef = if dictionary {
        Arc::new(ids.iter().copied().collect::<DictionaryArray<Int32Type>>())
    } else {
        strs(&ids)
    };
    let ts: Vec<Option<i64>> = order.iter().map(|&i| Some(fx.rows[i].1)).collect();
    let vals: Vec<Option<f64>> = order.iter().map(|&i| fx.rows[i].2).collect();
    batch(vec![
        ("device_id", ids),
        ("ts", time_column(7, &ts)),
        (
            if counters { "energy_j" } else { "power_w" },
            float_column(0, &vals),
        ),
    ])
}

fn run(fx: &Fixture, opts: Options, batches: &[RecordBatch]) -> Result<Output, Error> {
    let inputs = Inputs {
        devices: &fx.devices,
        sites: &fx.sites,
        intensity: &fx.intensity,
        allocations: fx.allocations.as_ref(),
    };
    let schema = batches[0].schema();
    let mut engine = Engine::new(&inputs, &schema, opts)?;
    for b in batches {
        engine.feed(b)?;
    }
    engine.finish()
}

fn same_status(a: &Result<Output, Error>, b: &Result<Output, Error>, what: &str) {
    match (a, b) {
        (Ok(x), Ok(y)) => check_same(x, y, what),
        // Which of several problems is met first may depend on where the
        // batches are cut (a batch is read whole before its rows are).
        (Err(x), Err(y)) => {
            check_error(x);
            check_error(y);
        }
        _ => panic!(
            "{what}: one run failed: {:?} vs {:?}",
            a.as_ref().err(),
            b.as_ref().err()
        ),
    }
}

fn close(a: f64, b: f64, rel: f64, abs: f64) -> bool {
    (a - b).abs() <= (rel * a.abs().max(b.abs())).max(abs)
}

/// Runs 2-4: the same samples in batches on two workers, as a dictionary,
/// and sorted by the engine; each must agree with run 1.
fn differential(
    fx: &Fixture,
    opts: &Options,
    whole: &RecordBatch,
    r1: &Result<Output, Error>,
    case: &Case,
) {
    let n = fx.rows.len();
    let order: Vec<usize> = (0..n).collect();
    // 2. Cut into batches (empty ones too), two workers splitting each.
    let mut cut = Vec::new();
    let mut at = 0;
    for c in &case.cuts.0 {
        let k = usize::from(*c % 64).min(n - at);
        cut.push(whole.slice(at, k));
        at += k;
    }
    cut.push(whole.slice(at, n - at));
    let mut two = opts.clone();
    two.threads = Some(2);
    two.parallel_min_rows = 0;
    same_status(r1, &run(fx, two, &cut), "batches and two workers");

    // 3. Dictionary ids (the key -> device table, cached across slices).
    let dict = rows_batch(fx, &order, true, case.counters);
    let slices: Vec<RecordBatch> = (0..n.div_ceil(7).max(1))
        .map(|i| dict.slice((i * 7).min(n), 7.min(n - (i * 7).min(n))))
        .collect();
    same_status(r1, &run(fx, opts.clone(), &slices), "dictionary ids");

    // 4. sort=True on the rows grouped by device (each device's order kept).
    let mut grouped = order.clone();
    grouped.sort_by_key(|&i| fx.rows[i].0 == 0);
    let mut sorted = opts.clone();
    sorted.sort = true;
    let r4 = run(
        fx,
        sorted.clone(),
        &[rows_batch(fx, &grouped, false, case.counters)],
    );
    // A device whose rows step back in time makes the stream as given
    // invalid: it fails with an order error, or with whatever problem it
    // meets first. Sorting gives the rows another meaning (later rows at an
    // earlier instant become that instant's duplicates; finding 13), so
    // the sorted run may succeed, but never with an order error.
    let steps_back = (0..2).any(|d| {
        let ts: Vec<i64> = order
            .iter()
            .filter(|&&i| fx.rows[i].0 == d)
            .map(|&i| fx.rows[i].1)
            .collect();
        ts.windows(2).any(|w| w[1] < w[0])
    });
    match (r1, &r4) {
        (Err(e), _) if e.kind == ErrorKind::Order || steps_back => {
            check_error(e);
            if let Err(e4) = &r4 {
                assert_ne!(e4.kind, ErrorKind::Order, "sort=True raised {e4:?}");
            }
        }
        _ => same_status(r1, &r4, "sort=True"),
    }
}

fuzz_target!(|data: &[u8]| {
    let case = Case::read(data);
    let fx = fixture(&case);
    let mut opts = case.opts.options(1, 1);
    opts.sort = false;
    opts.threads = Some(1);
    opts.parallel_min_rows = usize::MAX;
    let n = fx.rows.len();
    let order: Vec<usize> = (0..n).collect();
    let whole = rows_batch(&fx, &order, false, case.counters);

    // 1. One batch, one worker.
    let r1 = run(&fx, opts.clone(), std::slice::from_ref(&whole));
    carbonledger_fuzz::trace(|| carbonledger_fuzz::outcome(&r1));
    match &r1 {
        Ok(out) => check_output(out, &fx.alloc_device),
        Err(e) => check_error(e),
    }

    // 2-4, for one input in three (they cost three more runs; which one is
    // a function of the bytes, so each input always does the same).
    let sum = data
        .iter()
        .fold(0u32, |a, &b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    if sum % 3 == 0 {
        differential(&fx, &opts, &whole, &r1, &case);
    }

    // 5. The reference, on sane inputs once the tables compiled.
    if !fx.sane {
        return;
    }
    if r1.is_err() {
        let inputs = Inputs {
            devices: &fx.devices,
            sites: &fx.sites,
            intensity: &fx.intensity,
            allocations: fx.allocations.as_ref(),
        };
        if Engine::new(&inputs, &whole.schema(), opts.clone()).is_err() {
            return; // a problem of the small tables or the options
        }
    }
    let verdict = reference(&fx, &opts, case.counters);
    match &r1 {
        Err(e) => assert!(
            verdict.must.contains(&e.kind) || verdict.may.contains(&e.kind),
            "reference expects {:?} (or maybe {:?}), engine raised {e:?}",
            verdict.must,
            verdict.may
        ),
        Ok(_) if !verdict.must.is_empty() => {
            panic!(
                "reference expects one of {:?}, engine succeeded",
                verdict.must
            )
        }
        Ok(out) => {
            let ex = &verdict.expect;
            let d = &out.devices;
            let u = |c: &str| d.column_by_name(c).expect(c).as_primitive::<UInt64Type>();
            let ts = |c: &str| {
                d.column_by_name(c)
                    .expect(c)
                    .as_primitive::<TimestampNanosecondType>()
                    .clone()
            };
            let (first, last) = (ts("first_ts"), ts("last_ts"));
            let energy = col(d, "energy_kwh");
            let uncovered = col(d, "uncovered_s");
            for (i, e) in ex.iter().enumerate() {
                let counts = [
                    ("samples", e.samples),
                    ("invalid_samples", e.invalid),
                    ("duplicate_samples", e.duplicates),
                    ("gaps", e.gaps),
                    ("counter_wraps", e.wraps),
                    ("counter_resets", e.resets),
                ];
                for (c, want) in counts {
                    assert_eq!(u(c).value(i), want, "device {i} {c}; rows {:?}", fx.rows);
                }
                assert_eq!(
                    first.is_valid(i).then(|| first.value(i)),
                    e.first,
                    "first_ts"
                );
                assert_eq!(last.is_valid(i).then(|| last.value(i)), e.last, "last_ts");
                let got = energy[i] * 3.6e6;
                assert!(
                    close(got, e.energy_j, 1e-9, 1e-9),
                    "device {i} energy: engine {got:e} J, reference {:e} J",
                    e.energy_j
                );
                let want_unc = e.uncovered_ns as f64 / 1e9;
                assert!(
                    close(uncovered[i], want_unc, 1e-9, 1e-6),
                    "device {i} uncovered: engine {} s, reference {want_unc} s",
                    uncovered[i]
                );
            }
            // Embodied: the window's share of the period, for each device.
            let period = opts.period.unwrap_or_else(|| {
                let lo = ex.iter().filter_map(|e| e.first).min().expect("samples");
                let hi = ex.iter().filter_map(|e| e.last).max().expect("samples");
                (lo, hi)
            });
            if let (Some(emb), Some((w0, w1))) = (fx.embodied, fx.window) {
                let inside = (period.1.min(w1) as i128 - period.0.max(w0) as i128).max(0);
                // A lifetime that rounds to 0 ns leaves an empty window
                // (nothing booked; see docs/fuzzing.md).
                let len = (w1 as i128 - w0 as i128).max(1);
                let want = emb * (inside as f64 / len as f64);
                for (i, got) in col(d, "embodied_kgco2e").iter().enumerate() {
                    assert!(
                        close(*got, want, 1e-9, 1e-12),
                        "device {i} embodied: engine {got:e}, reference {want:e}"
                    );
                }
            }
        }
    }
});
