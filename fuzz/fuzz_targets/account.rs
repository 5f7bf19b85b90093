//! The whole engine through `carbonledger_core::account_sources`: fleets of
//! every id layout, time unit and zone, value type, option and batch split,
//! one or two power sources. A result must hold SPEC 10.1 with finite,
//! non-negative metrics, and be the same with each source in one batch on
//! the other number of workers (SPEC 10.2).
#![no_main]

use std::sync::Arc;

use carbonledger_fuzz::check::{check_error, check_output, check_same};
use carbonledger_fuzz::fleet::Fleet;
use carbonledger_fuzz::gene::Gene;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let fleet = Fleet::read(data);
    let Some(b) = fleet.build() else { return };
    let r = carbonledger_fuzz::account(&b);
    carbonledger_fuzz::trace(|| carbonledger_fuzz::outcome(&r));
    match r {
        Ok(out) => {
            check_output(&out, &b.alloc_device);
            let mut whole = b;
            for (schema, batches) in &mut whole.sources {
                let one =
                    arrow_select::concat::concat_batches(&Arc::new(schema.clone()), &*batches)
                        .expect("one schema");
                *batches = vec![one];
            }
            let two = whole.opts.threads != Some(2);
            whole.opts.threads = Some(if two { 2 } else { 1 });
            whole.opts.parallel_min_rows = if two { 0 } else { usize::MAX };
            match carbonledger_fuzz::account(&whole) {
                Ok(again) => check_same(&out, &again, "one batch per source, other workers"),
                Err(e) => panic!("one batch per source, other workers: {e:?}"),
            }
        }
        Err(e) => check_error(&e),
    }
});
