//! Writes the committed seed inputs under `fuzz/seeds/<target>/`: the
//! scenarios of the tests (SPEC 12's worked example, the flat counter of
//! tests/test_properties.py, integer and dictionary ids, ...) encoded as the
//! targets' genes. Run: `cargo run --example seeds` in `fuzz/`.

use std::path::Path;

use carbonledger_fuzz::arrow::{S, T0};
use carbonledger_fuzz::cases::{
    IdsCase, IntegrateAlloc, IntegrateCase, IntegrateDev, SchemaCase, Step, TimelineCase,
    TimelineJob, TimelineRow, ValidateCase,
};
use carbonledger_fuzz::fleet::{Alloc, Delta, Dev, Fleet, GridRow, Opts, Sample, Site, Time, Val};
use carbonledger_fuzz::gene::{Gene, List};

fn ns(t: i64) -> Time {
    Time::lit(t)
}

fn dt(ns: i64) -> Delta {
    Delta::lit(ns)
}

/// SPEC 12: g0 at s1 in R (PUE 1.5), embodied 150 from 2024-01-01 for 4
/// years; samples (0, 100) (10, 300) (20, 300) (40, 100); max_gap 15 s;
/// intensity [0, 15) 400, [15, 60) 100, cfe 0.25; allocation A [5, 25).
fn spec12() -> Fleet {
    let mut f = Fleet {
        // Literal genes, nulls included.
        hostile: true,
        bare_grid: true,
        ..Fleet::default()
    };
    f.types.ts = 7; // timestamp[ns, UTC] everywhere
    f.types.installed = 7;
    f.types.retired = 7;
    f.types.grid_ts = 7;
    f.types.alloc_ts = 7;
    f.types.optional = 0b1010_1100; // end, cfe, share, lifetime_years
    f.types.dev_site = 0;
    f.devices = List(vec![Dev {
        id: 0,
        site: 10,
        embodied: Val::lit(150.0),
        installed: ns(T0 - 366 * 86_400 * S),
        window: 0,
        lifetime_years: Val::lit(4.0),
        retired: Delta::default(),
        idle: Val::null(),
        wrap: Val::null(),
        t0: Time::secs(0),
    }]);
    f.sites = List(vec![Site {
        id: 10,
        region: 0,
        pue: Val::lit(1.5),
    }]);
    f.grid = List(vec![
        GridRow {
            region: 0,
            start: Time::secs(0),
            len: Some(Delta::secs(15)),
            c: Val::lit(400.0),
            cfe: Val::lit(0.25),
            residual: Val::null(),
        },
        GridRow {
            region: 0,
            start: Time::secs(15),
            len: Some(Delta::secs(45)),
            c: Val::lit(100.0),
            cfe: Val::lit(0.25),
            residual: Val::null(),
        },
    ]);
    f.allocs = List(vec![Alloc {
        device: 0,
        start: Time::secs(5),
        len: Delta::secs(20),
        share: Val::lit(1.0),
    }]);
    let s = |d: u16, v: f64| Sample {
        device: 0,
        dt: Delta::secs(d),
        value: Val::lit(v),
    };
    f.samples = List(vec![s(0, 100.0), s(10, 300.0), s(10, 300.0), s(20, 100.0)]);
    f.opts = Opts {
        period: Some(Time::secs(0)),
        period_len: Delta::secs(40),
        max_gap_tag: 6,
        max_gap: 15 * S as u64,
        ..Opts::default()
    };
    f
}

/// tests/test_properties.py FLAT_COUNTER: three equal readings at one
/// instant then the same reading later (a counter standing still), wrap 1000.
fn flat_counter() -> Fleet {
    let mut f = spec12();
    f.counters = true;
    f.types.optional |= 0b10; // counter_wrap_j
    f.devices.0[0].wrap = Val::lit(1000.0);
    let s = |d: u16, v: f64| Sample {
        device: 0,
        dt: Delta::secs(d),
        value: Val::lit(v),
    };
    f.samples = List(vec![
        s(0, 0.0),
        s(10, 1.0),
        s(0, 1.0),
        s(0, 1.0),
        s(10, 1.0),
    ]);
    f.opts.period = None;
    f.opts.max_gap_tag = 0; // 15 s
    f
}

/// Two devices with a wrap and a reset, ids as a uint32 dictionary, samples
/// interleaved in time order, cut into batches, two workers.
fn two_devices_dictionary() -> Fleet {
    let mut f = flat_counter();
    f.types.dev_id = 4 * 4; // dictionary<uint32, string>
    f.types.power_id = 4;
    f.types.alloc_id = 4;
    let mut g1 = f.devices.0[0].clone();
    g1.id = 1;
    g1.wrap = Val::null();
    f.devices.0.push(g1);
    let s = |dev: u8, d: u16, v: f64| Sample {
        device: dev,
        dt: Delta::secs(d),
        value: Val::lit(v),
    };
    f.samples = List(vec![
        s(0, 0, 900.0),
        s(1, 0, 50.0),
        s(0, 5, 990.0),
        s(1, 5, 80.0),
        s(0, 5, 20.0),  // wrap: 990 -> 20 is 30 J
        s(1, 5, 10.0),  // reset: no wrap known
        s(0, 30, 40.0), // a gap longer than max_gap
        s(1, 5, 30.0),
    ]);
    f.cuts = List(vec![3, 0, 2]);
    f.opts.parallel = true;
    f.allocs.0.push(Alloc {
        device: 1,
        start: Time::secs(0),
        len: Delta::secs(8),
        share: Val::lit(0.5),
    });
    f
}

/// Integer ids, timestamps in seconds with a +05:30 zone, float32 values,
/// intensity rows with null ends, `previous` interpolation, idle fill.
fn integer_ids() -> Fleet {
    let mut f = spec12();
    f.types.dev_id = 3; // int64
    f.types.region = 3;
    f.types.ts = 8; // timestamp[s, +05:30]
    f.types.alloc_ts = 9; // timestamp[ms, +05:30]
    f.types.power_val = 1; // float32
    f.types.optional = 0b1010_0001; // idle_power_w, share, lifetime_years
    f.devices.0[0].idle = Val::lit(40.0);
    f.opts.previous = true;
    f.opts.idle = true;
    f.opts.period_len = Delta::secs(90);
    f
}

/// The same fleet through a string view, a large string and an int8-keyed
/// dictionary, timestamps in microseconds, naive.
fn string_views() -> Fleet {
    let mut f = spec12();
    f.types.dev_id = 2 * 4; // string view
    f.types.power_id = 5; // dictionary<int8, large_string>
    f.types.alloc_id = 1; // large string
    f.types.ts = 2; // timestamp[us]
    f.types.grid_ts = 3; // timestamp[ns], naive
    f.opts.sort = true;
    f
}

/// A boundary exactly on a sample and one 1 ns off.
fn boundaries() -> Fleet {
    let mut f = spec12();
    f.allocs.0[0].start = ns(T0 + 10 * S);
    f.allocs.0[0].len = dt(10 * S - 1);
    f.allocs.0.push(Alloc {
        device: 0,
        start: ns(T0 + 20 * S - 1),
        len: dt(S + 1),
        share: Val::lit(0.5),
    });
    f
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).expect("seed dir");
    std::fs::write(d.join(name), bytes).expect("seed file");
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let fleets = [
        ("spec12", spec12()),
        ("flat_counter", flat_counter()),
        ("two_devices_dictionary", two_devices_dictionary()),
        ("integer_ids", integer_ids()),
        ("string_views", string_views()),
        ("boundaries", boundaries()),
    ];
    for (name, mut f) in fleets {
        let bytes = f.write();
        // The seed decodes to the fleet it encodes.
        assert_eq!(format!("{:?}", Fleet::read(&bytes)), format!("{f:?}"));
        write(&dir, "account", name, &bytes);
        let mut v = ValidateCase {
            fleet: f.clone(),
            mutations: List(Vec::new()),
        };
        write(&dir, "validate", name, &v.write());
    }
    for (name, mut c) in integrate_cases() {
        write(&dir, "integrate", name, &c.write());
    }
    for (name, mut c) in ids_cases() {
        write(&dir, "ids", name, &c.write());
    }
    for (name, mut c) in schema_cases() {
        write(&dir, "schema", name, &c.write());
    }
    for (name, mut c) in timeline_cases() {
        write(&dir, "timeline", name, &c.write());
    }
    println!("seeds written under {}", dir.display());
}

fn integrate_cases() -> Vec<(&'static str, IntegrateCase)> {
    let step = |device: bool, d: u16, v: f64| Step {
        device,
        dt: Delta::secs(d),
        value: Val::lit(v),
    };
    let base = |counters: bool| IntegrateCase {
        counters,
        opts: Opts {
            max_gap_tag: 6,
            max_gap: 15 * S as u64,
            normalize: true,
            ..Opts::default()
        },
        pue: Val::lit(1.5),
        c: Val::lit(400.0),
        cfe: Val::lit(0.25),
        embodied: Val::lit(150.0),
        installed: ns(T0 - 366 * 86_400 * S),
        lifetime: Val::lit(4.0),
        a: IntegrateDev {
            idle: Val::lit(30.0),
            wrap: Val::lit(1000.0),
            t0: Time::secs(0),
        },
        b: IntegrateDev {
            idle: Val::null(),
            wrap: Val::null(),
            t0: Time::secs(3),
        },
        allocs: List(vec![IntegrateAlloc {
            device: false,
            start: Time::secs(5),
            len: Delta::secs(20),
            share: Val::lit(1.0),
        }]),
        steps: List(vec![
            step(false, 0, 100.0),
            step(true, 0, 50.0),
            step(false, 10, 300.0),
            step(true, 0, 50.0),
            step(true, 7, 20.0),
            step(false, 10, 300.0),
            step(false, 20, 100.0),
            step(true, 30, 900.0),
        ]),
        cuts: List(vec![2, 0, 3]),
    };
    let mut previous = base(false);
    previous.opts.previous = true;
    previous.opts.idle = true;
    let mut period = base(true);
    period.opts.period = Some(Time::secs(4));
    period.opts.period_len = Delta::secs(17);
    vec![
        ("power", base(false)),
        ("counters", base(true)),
        ("previous_idle", previous),
        ("counters_period", period),
    ]
}

fn ids_cases() -> Vec<(&'static str, IdsCase)> {
    let case = |base: u8, layouts: (u8, u8, u8), keys: &[u8], refs: &[u8]| IdsCase {
        base,
        layouts,
        keys: List(keys.to_vec()),
        refs: List(refs.to_vec()),
        extra: 1,
        len: 255,
        ..IdsCase::default()
    };
    vec![
        (
            "strings",
            case(0, (3, 4, 2), &[0, 1, 2], &[0, 1, 1, 2, 0, 245]),
        ),
        (
            "integers",
            case(8, (12, 13, 10), &[0, 1, 2, 3], &[3, 3, 0, 1, 9]),
        ),
        ("empty_dictionary", case(4, (4, 3, 0), &[], &[250, 251])),
        ("unknown", case(6, (0, 5, 7), &[4, 5, 6, 7], &[4, 8, 5])),
    ]
}

fn schema_cases() -> Vec<(&'static str, SchemaCase)> {
    let case = |ty: u8| SchemaCase {
        ty,
        times: List(vec![
            (false, Time::secs(0)),
            (true, Time::edge(0)),
            (false, Time::secs(3600)),
            (false, Time { tag: 0, v: 12_345 }),
        ]),
        num_ty: ty % 8,
        nums: List(vec![
            Val {
                tag: 0,
                bits: 500_000,
            },
            Val::null(),
        ]),
        garbage: List(vec![0, 1, 4, 255]),
        offset: 1,
    };
    vec![
        ("seconds", case(0)),
        ("millis_utc", case(5)),
        ("micros_kolkata", case(10)),
        ("nanos", case(3)),
        ("date32", case(16)),
        ("date64", case(17)),
        ("iso", case(18)),
    ]
}

fn timeline_cases() -> Vec<(&'static str, TimelineCase)> {
    let row = |region: bool, start: u8, len: Option<u8>, c: u8| TimelineRow {
        region,
        start,
        len,
        c,
    };
    let job = |device: bool, start: u8, len: u8, share: u8| TimelineJob {
        device,
        start,
        len,
        share,
    };
    vec![(
        "rows_and_jobs",
        TimelineCase {
            base: 1,
            unit: 2,
            rows: List(vec![
                row(false, 0, Some(10), 40),
                row(false, 10, None, 50),
                row(true, 5, Some(3), 60),
            ]),
            jobs: List(vec![
                job(false, 2, 5, 1),
                job(false, 4, 5, 1),
                job(true, 1, 9, 0),
            ]),
            p0: 1,
            p1: 30,
        },
    )]
}
