//! Id resolution (`ids::KeyIndex`) for every id layout: strings (plain,
//! large, view), integers of every width, dictionaries of every key type
//! with null keys (out of range under the null), null values, unused and
//! reordered values; sliced arrays; mismatched kinds. Every entry point
//! must agree with a plain model of what each row names.
#![no_main]

use std::collections::HashMap;

use arrow_array::{Array, ArrayRef};
use carbonledger_core::error::{ErrorKind, Problems};
use carbonledger_core::ids::KeyIndex;
use carbonledger_fuzz::arrow::{id_column, id_layout_kind, id_value, DictShape, IdVal};
use carbonledger_fuzz::cases::IdsCase;
use carbonledger_fuzz::check::check_error;
use carbonledger_fuzz::gene::Gene;
use libfuzzer_sys::fuzz_target;

fn id_of(p: u8) -> Option<u8> {
    (p < 240).then_some(p)
}

/// What the model expects a column to read as: per row, the id, or `None`
/// for a null; `Err` when the column as a whole cannot hold ids.
fn model(layout: u8, ids: &[Option<u8>]) -> Result<Vec<Option<IdVal>>, ErrorKind> {
    if id_layout_kind(layout).is_none() {
        return Err(ErrorKind::Schema);
    }
    ids.iter()
        .map(|p| match p {
            None => Ok(None),
            Some(p) => id_value(layout, *p).map(Some).ok_or(ErrorKind::Schema),
        })
        .collect()
}

/// "at row N" in an error message.
fn row_of(msg: &str) -> Option<usize> {
    let i = msg.find("at row ")? + "at row ".len();
    let digits: String = msg[i..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fuzz_target!(|data: &[u8]| {
    let c = IdsCase::read(data);
    let shape = DictShape {
        reversed: c.reversed,
        extra: c.extra,
        null_value: c.null_value,
        bad_key: [1000, -1, 127, i64::MAX][c.bad_key as usize % 4],
    };
    let keys: Vec<Option<u8>> = c.keys.0.iter().map(|p| id_of(*p)).collect();
    let keys_arr = id_column(c.base, &keys, shape);

    // The index of the key column: unique, non-null ids.
    let want = model(c.base, &keys);
    let built = KeyIndex::build(&keys_arr, "devices", "device_id");
    let mut index: HashMap<IdVal, u32> = HashMap::new();
    let mut unique = true;
    if let Ok(ids) = &want {
        for (i, k) in ids.iter().enumerate() {
            match k {
                Some(k) if !index.contains_key(k) => {
                    index.insert(k.clone(), i as u32);
                }
                _ => unique = false,
            }
        }
    }
    let idx = match (&want, built) {
        (Ok(_), Ok(idx)) => {
            assert!(unique, "build accepted null or duplicate ids");
            assert_eq!(idx.len(), keys.len());
            idx
        }
        (Ok(_), Err(e)) => {
            check_error(&e);
            assert!(!unique, "build rejected unique ids: {e:?}");
            return;
        }
        (Err(k), Ok(_)) => panic!("build accepted a column the model rejects ({k:?})"),
        (Err(_), Err(e)) => {
            check_error(&e);
            return;
        }
    };
    let mut p = Problems::default();
    assert!(KeyIndex::build_all(&keys_arr, "devices", "device_id", &mut p).is_some());
    assert!(p.is_empty());

    let mut cache = None;
    for layout in [c.layouts.0, c.layouts.1, c.layouts.2, c.base] {
        let refs: Vec<Option<u8>> = c.refs.0.iter().map(|p| id_of(*p)).collect();
        let full = id_column(layout, &refs, shape);
        let off = usize::from(c.offset) % (refs.len() + 1);
        let len = usize::from(c.len) % (refs.len() - off + 1);
        let arr: ArrayRef = full.slice(off, len);
        let refs = &refs[off..off + len];
        let same_kind = id_layout_kind(layout) == id_layout_kind(c.base);
        let want: Result<Vec<Result<u32, ErrorKind>>, ErrorKind> = match model(layout, refs) {
            Err(k) => Err(k),
            Ok(_) if !same_kind => Err(ErrorKind::Schema),
            Ok(v) => Ok(v
                .iter()
                .map(|k| match k {
                    None => Err(ErrorKind::Input),
                    Some(k) => index.get(k).copied().ok_or(ErrorKind::UnknownId),
                })
                .collect()),
        };
        let first_bad = want
            .as_ref()
            .ok()
            .and_then(|v| v.iter().position(Result::is_err));

        // resolve: every row, or the first bad row named.
        let mut out = vec![7u32];
        let r = idx.resolve(&arr, "power", "device_id", "devices.device_id", &mut out);
        match (&want, r) {
            (Ok(v), Ok(())) => {
                assert!(first_bad.is_none(), "resolve accepted a bad row");
                let got: Vec<u32> = out[1..].to_vec();
                let v: Vec<u32> = v.iter().map(|x| *x.as_ref().unwrap()).collect();
                assert_eq!(got, v, "resolve (layout {layout})");
            }
            (Ok(v), Err(e)) => {
                check_error(&e);
                let at = first_bad.unwrap_or_else(|| panic!("resolve rejected good ids: {e:?}"));
                assert_eq!(Err(e.kind), v[at].map(|_| ()), "resolve error kind: {e:?}");
                assert_eq!(row_of(&e.message), Some(at), "resolve error row: {e:?}");
            }
            (Err(k), Ok(())) => panic!("resolve accepted a column the model rejects ({k:?})"),
            (Err(k), Err(e)) => {
                check_error(&e);
                assert_eq!(e.kind, *k, "resolve error kind: {e:?}");
            }
        }

        // resolve_each: every bad row noted, the others resolved.
        let mut p = Problems::default();
        let each = idx.resolve_each(&arr, "power", "device_id", "devices.device_id", &mut p);
        match (&want, each) {
            (Ok(v), Some(got)) => {
                assert_eq!(got.len(), v.len());
                for (row, (g, w)) in got.iter().zip(v).enumerate() {
                    assert_eq!(*g, w.ok(), "resolve_each row {row}");
                }
                let bad = v.iter().filter(|x| x.is_err()).count();
                assert_eq!(p.list.len(), bad, "resolve_each problems");
            }
            (Err(_), None) => assert!(!p.is_empty()),
            (Ok(_), None) => panic!("resolve_each gave up on a readable column: {:?}", p.list),
            (Err(k), Some(_)) => {
                // The kind matched but the column cannot be read (e.g. u64 > i64::MAX).
                assert!(!p.is_empty(), "resolve_each accepted ({k:?})");
            }
        }
        p.list.iter().for_each(check_error);

        // resolve_lenient: unknown ids are None, nulls an error.
        let lenient = idx.resolve_lenient(&arr, "intensity", "region", "sites.region");
        match (&want, lenient) {
            (Ok(v), Ok(got)) => {
                assert!(!v.contains(&Err(ErrorKind::Input)), "null accepted");
                for (g, w) in got.iter().zip(v) {
                    assert_eq!(*g, w.ok());
                }
            }
            (Ok(v), Err(e)) => {
                check_error(&e);
                assert!(v.contains(&Err(ErrorKind::Input)), "lenient: {e:?}");
            }
            (Err(k), Ok(_)) => panic!("resolve_lenient accepted ({k:?})"),
            (Err(_), Err(e)) => check_error(&e),
        }

        // dictionary_lut: when it offers keys, the table maps them right
        // (twice: the second time from the cache).
        for _ in 0..2 {
            match idx.dictionary_lut(&arr, "power", "device_id", "devices.device_id", &mut cache) {
                Ok(Some(keys)) => {
                    let v = want.as_ref().expect("a lut for an unreadable column");
                    assert!(first_bad.is_none(), "a lut over bad rows");
                    let (_, lut) = cache.as_ref().expect("a lut is cached");
                    assert_eq!(keys.len(), v.len());
                    for (row, k) in keys.iter().enumerate() {
                        let got = lut.get(usize::try_from(*k).expect("key >= 0")).copied();
                        assert_eq!(got, v[row].ok(), "lut row {row}");
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    check_error(&e);
                    assert!(want.is_err(), "dictionary_lut rejected: {e:?}");
                }
            }
        }

        // intern: equal ids share an index, nulls are errors.
        if let Ok(v) = model(layout, refs) {
            match KeyIndex::intern(&arr, "sites", "region") {
                Ok((interned, rows)) => {
                    assert!(v.iter().all(Option::is_some), "intern accepted a null");
                    assert_eq!(rows.len(), v.len());
                    for i in 0..v.len() {
                        for j in 0..v.len() {
                            assert_eq!(v[i] == v[j], rows[i] == rows[j], "intern rows {i} {j}");
                        }
                        assert!((rows[i] as usize) < interned.len());
                    }
                }
                Err(e) => {
                    check_error(&e);
                    assert!(v.iter().any(Option::is_none), "intern rejected: {e:?}");
                }
            }
        }
        let _ = arr.len();
    }
});
