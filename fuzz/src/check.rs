//! What every target asserts of a result: an error is an input error naming
//! its culprit; an `Output` has finite, non-negative metrics and conserves
//! them (allocations + unallocated = the device's row, SPEC 10.1).

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, RecordBatch};
use carbonledger_core::kbn::Kbn;
use carbonledger_core::report::METRIC_COLUMNS;
use carbonledger_core::{Error, ErrorKind, Output};

pub const REL: f64 = 1e-9;
pub const ABS: f64 = 1e-12;

/// An error must be a user-facing input error that names a table or an
/// argument, never an internal one.
pub fn check_error(e: &Error) {
    assert!(
        e.kind != ErrorKind::Internal && e.kind != ErrorKind::Interrupted,
        "internal error: {e:?}"
    );
    assert!(
        e.message.starts_with("table '") || e.message.starts_with("argument '"),
        "error does not name its table or argument: {e:?}"
    );
}

pub fn col<'a>(b: &'a RecordBatch, name: &str) -> &'a [f64] {
    let c = b
        .column_by_name(name)
        .unwrap_or_else(|| panic!("output column {name} missing"));
    assert_eq!(c.null_count(), 0, "nulls in output column {name}");
    c.as_primitive::<Float64Type>().values()
}

pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= (REL * a.abs().max(b.abs())).max(ABS)
}

/// Check an `Output` against SPEC 10.1 and finiteness. `alloc_device` maps
/// each allocation row to its device row (every allocation of an `Ok`
/// result names a device). Inputs with huge values are held to the same
/// rules: the engine's bounds on inputs must keep every result finite.
pub fn check_output(out: &Output, alloc_device: &[Option<usize>]) {
    let n_dev = out.devices.num_rows();
    assert_eq!(out.unallocated.num_rows(), n_dev, "unallocated rows");
    assert_eq!(
        out.allocations.num_rows(),
        alloc_device.len(),
        "allocation rows"
    );
    let tables = [
        ("allocations", &out.allocations),
        ("unallocated", &out.unallocated),
        ("devices", &out.devices),
        ("grid", &out.grid),
    ];
    for (name, t) in tables {
        let mut cols: Vec<&str> = METRIC_COLUMNS.to_vec();
        cols.push("uncovered_s");
        if name != "devices" {
            cols.push("duration_s");
        }
        for c in cols {
            for (row, v) in col(t, c).iter().enumerate() {
                assert!(
                    v.is_finite() && *v >= 0.0,
                    "{name}.{c} row {row} is {v} (expected finite >= 0)"
                );
            }
        }
    }
    for c in METRIC_COLUMNS {
        let dev = col(&out.devices, c);
        let un = col(&out.unallocated, c);
        let al = col(&out.allocations, c);
        let mut sums: Vec<Kbn> = vec![Kbn::default(); n_dev];
        for (row, &d) in alloc_device.iter().enumerate() {
            let d = d.unwrap_or_else(|| panic!("allocation row {row} names no device yet Ok"));
            sums[d].add(al[row]);
        }
        for d in 0..n_dev {
            sums[d].add(un[d]);
            let s = sums[d].value();
            assert!(
                close(s, dev[d]),
                "conservation: device row {d} {c}: allocations + unallocated = {s:e}, device = {:e}",
                dev[d]
            );
        }
        // The grid table slices the same books by region and row.
        let mut g = Kbn::default();
        col(&out.grid, c).iter().for_each(|v| g.add(*v));
        let mut t = Kbn::default();
        dev.iter().for_each(|v| t.add(*v));
        assert!(
            close(g.value(), t.value()),
            "grid {c} sums to {:e}, devices to {:e}",
            g.value(),
            t.value()
        );
    }
    for t in [&out.allocations, &out.unallocated, &out.devices] {
        let (op, emb, tot) = (
            col(t, "operational_kgco2e"),
            col(t, "embodied_kgco2e"),
            col(t, "total_kgco2e"),
        );
        for i in 0..tot.len() {
            assert!(close(op[i] + emb[i], tot[i]), "total != op + embodied");
        }
    }
}

/// Two outputs agree to 1e-9 (SPEC 10.2: batches, threads, sort, layouts).
pub fn check_same(a: &Output, b: &Output, what: &str) {
    for (name, x, y) in [
        ("allocations", &a.allocations, &b.allocations),
        ("unallocated", &a.unallocated, &b.unallocated),
        ("devices", &a.devices, &b.devices),
    ] {
        assert_eq!(x.num_rows(), y.num_rows(), "{what}: {name} rows");
        assert_eq!(x.schema(), y.schema(), "{what}: {name} schema");
        for (i, f) in x.schema().fields().iter().enumerate() {
            let (cx, cy) = (x.column(i), y.column(i));
            if let (Some(px), Some(py)) = (
                cx.as_primitive_opt::<Float64Type>(),
                cy.as_primitive_opt::<Float64Type>(),
            ) {
                for (r, (u, v)) in px.values().iter().zip(py.values()).enumerate() {
                    let same = (u.is_nan() && v.is_nan()) || close(*u, *v);
                    assert!(same, "{what}: {name}.{} row {r}: {u:e} vs {v:e}", f.name());
                }
            } else {
                assert_eq!(cx.as_ref(), cy.as_ref(), "{what}: {name}.{}", f.name());
            }
        }
    }
}
