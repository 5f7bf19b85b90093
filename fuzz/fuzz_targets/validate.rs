//! `carbonledger_core::validate` (every problem of the inputs, before any
//! sample) and `account` on hostile tables: the fleets of the `account`
//! target with columns dropped, nulled, renamed, retyped, swapped or
//! doubled, and tables emptied. Every problem must be an input error naming
//! its culprit; `account` succeeding means `validate` found nothing.
#![no_main]

use std::sync::Arc;

use arrow_array::{new_null_array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use carbonledger_core::Table;
use carbonledger_fuzz::cases::{Mutation, ValidateCase};
use carbonledger_fuzz::check::{check_error, check_output};
use carbonledger_fuzz::fleet::Built;
use carbonledger_fuzz::gene::Gene;
use libfuzzer_sys::fuzz_target;

const NEAR_MISSES: [&str; 6] = ["timestamp", "Device_ID", "power", "", "ts ", "start_time"];

fn mutate(b: &RecordBatch, m: &Mutation) -> RecordBatch {
    let n = b.num_columns();
    let rows = b.num_rows();
    if m.op % 8 == 7 {
        return b.slice(0, 0); // an empty table
    }
    if n == 0 {
        return b.clone();
    }
    let i = usize::from(m.column) % n;
    let mut fields: Vec<Field> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut cols: Vec<ArrayRef> = b.columns().to_vec();
    match m.op % 8 {
        0 => {
            fields.remove(i);
            cols.remove(i);
        }
        1 => cols[i] = new_null_array(cols[i].data_type(), rows),
        2 => cols[i] = new_null_array(&DataType::Null, rows),
        3 => {
            let name = NEAR_MISSES[usize::from(m.other) % NEAR_MISSES.len()];
            fields[i] = Field::new(name, cols[i].data_type().clone(), true);
        }
        4 => cols[i] = cols[usize::from(m.other) % n].clone(),
        5 => {
            fields.push(fields[i].clone());
            cols.push(cols[usize::from(m.other) % n].clone());
        }
        _ => {
            let v: Vec<Option<&str>> = (0..rows)
                .map(|r| {
                    ["x", "", "1.5", "2025-01-01T00:00:00Z"]
                        .get((r + usize::from(m.other)) % 5)
                        .copied()
                })
                .collect();
            cols[i] = Arc::new(StringArray::from(v));
        }
    }
    let fields: Vec<Field> = fields
        .into_iter()
        .zip(&cols)
        .map(|(f, c)| Field::new(f.name(), c.data_type().clone(), true))
        .collect();
    let opts = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), cols, &opts)
        .expect("same lengths")
}

fn retable(t: &Table, m: &Mutation) -> Table {
    let b = mutate(&t.batch, m);
    Table::new(t.name, &b.schema(), &[b]).expect("one batch")
}

fuzz_target!(|data: &[u8]| {
    let case = ValidateCase::read(data);
    let Some(mut b) = case.fleet.build() else {
        return;
    };
    for m in &case.mutations.0 {
        match m.table % 5 {
            0 => b.devices = retable(&b.devices, m),
            1 => b.sites = retable(&b.sites, m),
            2 => b.intensity = retable(&b.intensity, m),
            3 => {
                if let Some(a) = &b.allocations {
                    b.allocations = Some(retable(a, m));
                }
            }
            _ => {
                let (schema, batches) = &mut b.sources[0];
                let batches2: Vec<RecordBatch> = batches.iter().map(|x| mutate(x, m)).collect();
                if let Some(first) = batches2.first() {
                    *schema = first.schema().as_ref().clone();
                }
                *batches = batches2;
            }
        }
    }
    let b: Built = b;
    let schemas: Vec<&Schema> = b.sources.iter().map(|(s, _)| s).collect();
    let problems = carbonledger_core::validate(&carbonledger_fuzz::inputs(&b), &schemas, &b.opts);
    problems.list.iter().for_each(check_error);
    let r = carbonledger_fuzz::account(&b);
    carbonledger_fuzz::trace(|| {
        format!(
            "validate: {} problems; account: {}",
            problems.list.len(),
            carbonledger_fuzz::outcome(&r)
        )
    });
    match r {
        Ok(out) => {
            assert!(
                problems.is_empty(),
                "account succeeded but validate found {:?}",
                problems.list
            );
            // Mutated allocation tables no longer match the fleet's model.
            if case.mutations.0.is_empty() {
                check_output(&out, &b.alloc_device);
            }
        }
        Err(e) => check_error(&e),
    }
});
