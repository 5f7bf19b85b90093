//! Regression tests for what the fuzz targets found (docs/fuzzing.md): each
//! input gives a result or an input error naming its culprit, never a panic
//! or an internal error.

use std::sync::Arc;

use arrow_array::types::{Int32Type, TimestampSecondType, UInt32Type};
use arrow_array::{
    Array, ArrayRef, DictionaryArray, Float64Array, PrimitiveArray, RecordBatch, StringArray,
    TimestampNanosecondArray, UInt32Array, UInt64Array,
};
use arrow_buffer::{NullBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use carbonledger_core::ids::KeyIndex;
use carbonledger_core::schema::times;
use carbonledger_core::{account, validate, Error, ErrorKind, Inputs, Options, Table};

const S: i64 = 1_000_000_000;
const T0: i64 = 1_735_689_600 * S;

fn batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let arrays = cols.into_iter().map(|(_, a)| a).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("valid batch")
}

fn table(name: &'static str, b: RecordBatch) -> Table {
    Table::new(name, &b.schema(), &[b]).expect("table")
}

fn ts(v: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from(v).with_timezone("UTC"))
}

fn f64s(v: Vec<f64>) -> ArrayRef {
    Arc::new(Float64Array::from(v))
}

/// An empty `dictionary<uint32, string>` column.
fn empty_dict() -> ArrayRef {
    let keys = UInt32Array::from(Vec::<u32>::new());
    let values: ArrayRef = Arc::new(StringArray::from(Vec::<&str>::new()));
    Arc::new(DictionaryArray::<UInt32Type>::try_new(keys, values).expect("dictionary"))
}

fn assert_input_error(e: &Error) {
    assert_ne!(e.kind, ErrorKind::Internal, "{e:?}");
    assert!(e.message.starts_with("table '") || e.message.starts_with("argument '"));
}

/// Found by a random-input pass (issue 9): empty id tables read as
/// dictionaries (`normalized_keys` asserts a dictionary is not empty).
#[test]
fn empty_dictionary_id_tables() {
    let devices = table(
        "devices",
        batch(vec![
            ("device_id", empty_dict()),
            ("site_id", empty_dict()),
            ("embodied_kgco2e", f64s(vec![])),
            ("installed_at", ts(vec![])),
            ("lifetime_years", f64s(vec![])),
        ]),
    );
    let sites = table(
        "sites",
        batch(vec![
            ("site_id", empty_dict()),
            ("region", empty_dict()),
            ("pue", f64s(vec![])),
        ]),
    );
    let intensity = table(
        "intensity",
        batch(vec![
            ("region", empty_dict()),
            ("start", ts(vec![])),
            ("gco2e_per_kwh", f64s(vec![])),
        ]),
    );
    let power = batch(vec![
        ("device_id", empty_dict()),
        ("ts", ts(vec![])),
        ("energy_j", f64s(vec![])),
    ]);
    let inputs = Inputs {
        devices: &devices,
        sites: &sites,
        intensity: &intensity,
        allocations: None,
    };
    let schema = power.schema();
    let e = account(
        &inputs,
        &schema,
        std::iter::once(Ok(power.clone())),
        Options::default(),
        &|| false,
    )
    .expect_err("no sample and no period");
    assert_input_error(&e);
    let opts = Options {
        period: Some((T0, T0 + S)),
        ..Options::default()
    };
    let out = account(
        &inputs,
        &schema,
        std::iter::once(Ok(power)),
        opts.clone(),
        &|| false,
    )
    .expect("an empty fleet over an explicit period");
    assert_eq!(out.devices.num_rows(), 0);
    let problems = validate(&inputs, &[schema.as_ref()], &opts);
    assert!(problems.is_empty(), "{:?}", problems.list);
}

/// A dictionary whose rows are all null (keys out of range under the null).
#[test]
fn all_null_dictionary_ids_are_named() {
    let keys = PrimitiveArray::<Int32Type>::new(
        ScalarBuffer::from(vec![7, -3]),
        Some(NullBuffer::from(vec![false, false])),
    );
    let values: ArrayRef = Arc::new(StringArray::from(Vec::<&str>::new()));
    let ids: ArrayRef = Arc::new(DictionaryArray::try_new(keys, values).expect("dictionary"));
    let e = KeyIndex::build(&ids, "devices", "device_id").expect_err("null ids");
    assert_eq!(e.kind, ErrorKind::Input);
    assert!(e.message.contains("null id at row 0"), "{e:?}");

    let known: ArrayRef = Arc::new(StringArray::from(vec!["g0"]));
    let index = KeyIndex::build(&known, "devices", "device_id").expect("index");
    let mut out = Vec::new();
    let e = index
        .resolve(&ids, "power", "device_id", "devices.device_id", &mut out)
        .expect_err("null ids");
    assert!(e.message.contains("null id at row 0"), "{e:?}");
}

/// Found by the `ids` target: a uint64 id above i64::MAX was cast to a null
/// slot and read back as id 0, silently naming another device.
#[test]
fn uint64_ids_above_i64_max_are_an_error() {
    let known: ArrayRef = Arc::new(UInt64Array::from(vec![0u64, 1]));
    let index = KeyIndex::build(&known, "devices", "device_id").expect("index");
    let huge: ArrayRef = Arc::new(UInt64Array::from(vec![1u64, u64::MAX]));
    let mut out = Vec::new();
    let e = index
        .resolve(&huge, "power", "device_id", "devices.device_id", &mut out)
        .expect_err("u64::MAX is no int64 id");
    assert_eq!(e.kind, ErrorKind::Schema);
    assert!(
        e.message.contains("table 'power', column 'device_id'"),
        "{e:?}"
    );
    assert!(e.message.contains("18446744073709551615"), "{e:?}");
    let e = KeyIndex::build(&huge, "devices", "device_id").expect_err("u64::MAX");
    assert_eq!(e.kind, ErrorKind::Schema);
}

/// Found by the `schema` target: the slot of a null timestamp may hold any
/// value (pandas' NaT is i64::MIN); scaling it to ns must not overflow.
#[test]
fn null_timestamp_slots_are_not_scaled() {
    let secs = PrimitiveArray::<TimestampSecondType>::new(
        ScalarBuffer::from(vec![T0 / S, i64::MIN, i64::MAX]),
        Some(NullBuffer::from(vec![true, false, false])),
    );
    let arr: ArrayRef = Arc::new(secs);
    assert_eq!(
        arr.data_type(),
        &DataType::Timestamp(TimeUnit::Second, None)
    );
    let t = times(&arr, "power", "ts").expect("nulls are not read");
    assert_eq!(t.get(0), Some(T0));
    assert_eq!(t.get(1), None);
    assert_eq!(t.get(2), None);
    // A valid value that overflows is still an error naming it.
    let bad: ArrayRef = Arc::new(PrimitiveArray::<TimestampSecondType>::from(vec![
        i64::MAX / 2,
    ]));
    let e = times(&bad, "power", "ts").expect_err("overflow");
    assert!(e.message.contains("4611686018427387903"), "{e:?}");
}
