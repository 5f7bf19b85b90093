//! Column normalization (`schema`): timestamps of every unit and zone, dates
//! and ISO strings become epoch ns (overflow an error naming the value,
//! nulls kept whatever their slots hold); numbers of every type become f64
//! (nulls NaN); timestamps print and parse back.
#![no_main]

use std::sync::Arc;

use arrow_array::types::{
    Date32Type, Date64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, ArrayRef, PrimitiveArray, StringArray};
use arrow_buffer::{NullBuffer, ScalarBuffer};
use carbonledger_core::error::ErrorKind;
use carbonledger_core::schema::{floats, fmt_ts, times, ERA_NS};
use carbonledger_fuzz::arrow::{float_column, tick_ns, S, T0};
use carbonledger_fuzz::cases::SchemaCase;
use carbonledger_fuzz::check::check_error;
use carbonledger_fuzz::gene::Gene;
use libfuzzer_sys::fuzz_target;

const GARBAGE: [&str; 12] = [
    "2025-01-01T00:00:00Z",
    "2025-01-01",
    "2025-01-01T00:00:00+05:30",
    "2025-01-01 00:00:00",
    "2025-13-45T00:00:00Z",
    "",
    "not a time",
    "+inf",
    "99999-01-01T00:00:00Z",
    "1677-09-21T00:12:43.145224191Z",
    "2262-04-11T23:47:16.854775808Z",
    "2025-01-01T00:00:00.123456789123Z",
];

fn prim<T: arrow_array::types::ArrowTimestampType>(
    v: Vec<i64>,
    nulls: Option<NullBuffer>,
    tz: Option<&str>,
) -> ArrayRef {
    Arc::new(PrimitiveArray::<T>::new(ScalarBuffer::from(v), nulls).with_timezone_opt(tz))
}

fuzz_target!(|data: &[u8]| {
    let c = SchemaCase::read(data);
    let ty = c.ty % 20;
    let tick = tick_ns(ty);
    let raw: Vec<i64> = c.times.0.iter().map(|(_, t)| t.ticks(tick)).collect();
    let valid: Vec<bool> = c.times.0.iter().map(|(n, _)| !n).collect();
    let nulls = valid
        .iter()
        .any(|v| !v)
        .then(|| NullBuffer::from(valid.clone()));
    let arr: ArrayRef = match ty {
        t @ 0..=15 => {
            // The zone only labels the instants (stored as UTC).
            let tz = [None, Some("UTC"), Some("+05:30"), Some("-08:00")][usize::from(t / 4)];
            match t % 4 {
                0 => prim::<TimestampSecondType>(raw.clone(), nulls, tz),
                1 => prim::<TimestampMillisecondType>(raw.clone(), nulls, tz),
                2 => prim::<TimestampMicrosecondType>(raw.clone(), nulls, tz),
                _ => prim::<TimestampNanosecondType>(raw.clone(), nulls, tz),
            }
        }
        16 => Arc::new(PrimitiveArray::<Date32Type>::new(
            ScalarBuffer::from(raw.iter().map(|d| *d as i32).collect::<Vec<_>>()),
            nulls,
        )),
        17 => Arc::new(PrimitiveArray::<Date64Type>::new(
            ScalarBuffer::from(raw.clone()),
            nulls,
        )),
        _ => {
            // ISO strings as printed by fmt_ts: they must parse back.
            let s: Vec<Option<String>> = raw
                .iter()
                .zip(&valid)
                .map(|(t, v)| v.then(|| fmt_ts(*t)))
                .collect();
            Arc::new(StringArray::from(s))
        }
    };
    let off = usize::from(c.offset) % (arr.len() + 1);
    let arr = arr.slice(off, arr.len() - off);
    let (raw, valid) = (&raw[off..], &valid[off..]);
    let ticks: Vec<i64> = match ty {
        16 => raw.iter().map(|d| i64::from(*d as i32)).collect(),
        _ => raw.to_vec(),
    };
    // The model: each valid row's instant, or an overflow.
    let want: Vec<Option<Option<i64>>> = ticks
        .iter()
        .zip(valid)
        .map(|(t, v)| {
            if !v {
                Some(None)
            } else if ty >= 18 && (*t == i64::MIN || *t == i64::MAX) {
                None // printed as -inf / +inf: not a timestamp
            } else {
                // Representable in ns, and inside the accepted era.
                t.checked_mul(tick)
                    .filter(|ns| (ERA_NS.0..ERA_NS.1).contains(ns))
                    .map(Some)
            }
        })
        .collect();
    match times(&arr, "power", "ts") {
        Ok(got) => {
            for (row, w) in want.iter().enumerate() {
                let w = w.unwrap_or_else(|| panic!("row {row} overflows yet times() is Ok"));
                assert_eq!(got.get(row), w, "row {row} (type {ty})");
            }
            assert_eq!(got.values.len(), want.len());
        }
        Err(e) => {
            check_error(&e);
            assert!(e.message.contains("'ts'"), "{e:?}");
            assert!(
                want.iter().any(Option::is_none),
                "times() failed on valid values: {e:?}"
            );
            assert_eq!(e.kind, ErrorKind::Input, "{e:?}");
        }
    }

    // Garbage strings: a value or an input error naming the column.
    let g: Vec<Option<&str>> = c
        .garbage
        .0
        .iter()
        .map(|i| (*i < 250).then(|| GARBAGE[usize::from(*i) % GARBAGE.len()]))
        .collect();
    let garr: ArrayRef = Arc::new(StringArray::from(g));
    if let Err(e) = times(&garr, "intensity", "start") {
        check_error(&e);
    }

    // Numbers of every type: f64 with NaN for nulls.
    let vals: Vec<Option<f64>> = c.nums.0.iter().map(|v| v.get(-1e3, 1e3)).collect();
    let num = float_column(c.num_ty, &vals);
    match floats(&num, "devices", "embodied_kgco2e") {
        Ok(f) => {
            assert_eq!(f.len(), num.len());
            for (i, x) in f.iter().enumerate() {
                if num.is_null(i) {
                    assert!(x.is_nan(), "null row {i} read as {x}");
                } else if c.num_ty % 16 == 0 || c.num_ty % 16 >= 8 {
                    let v = vals[i].expect("valid");
                    assert!(v.to_bits() == x.to_bits() || (v.is_nan() && x.is_nan()));
                }
            }
        }
        Err(e) => {
            check_error(&e);
            assert_eq!(e.kind, ErrorKind::Schema);
        }
    }
    let _ = (S, T0);
});
