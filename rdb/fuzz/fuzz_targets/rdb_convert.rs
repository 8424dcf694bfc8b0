//! Fuzz the version converter (`basalt-rdb convert`): read a dump, write
//! every item for another target as the tool does, then read the output
//! back. Never panic; the output always decodes with a valid checksum; the
//! keys, aux fields and functions the writer accepted come back equal
//! (sets, hashes and sorted sets compared as sets: the writer may pick
//! another encoding; streams by entries and groups, as in `rdb_reader`).
#![no_main]

use basalt_rdb::{
    Checksum, DecodeOptions, EncodeOptions, Entry, Function, Item, Reader, Target, Value, Writer,
};
use libfuzzer_sys::fuzz_target;

const TARGETS: [Target; 5] = [
    Target::Redis9,
    Target::Redis10,
    Target::Redis11,
    Target::Redis12,
    Target::Valkey80,
];

/// The tool's decoding options: empty keys are yielded, modules reported.
fn opts(verify_checksum: bool) -> DecodeOptions {
    DecodeOptions {
        skip_empty_keys: false,
        verify_checksum,
        ..Default::default()
    }
}

/// A value in a form independent of the encoding the writer chose.
fn normal(v: &Value) -> Value {
    match v {
        Value::Set(s) => {
            let mut s = s.clone();
            s.sort();
            Value::Set(s)
        }
        Value::Hash(h) => {
            let mut h = h.clone();
            // A total order: the reader lets duplicate fields through
            // (as Redis does for listpacks without deep sanitisation), and
            // the writer may reorder them (by TTL).
            h.sort_by(|a, b| {
                (&a.field, &a.value, a.expire_ms).cmp(&(&b.field, &b.value, b.expire_ms))
            });
            Value::Hash(h)
        }
        Value::SortedSet(z) => {
            let mut z = z.clone();
            // -0 and 0 are the same score once written as text.
            for p in &mut z {
                if p.1 == 0.0 {
                    p.1 = 0.0;
                }
            }
            z.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            Value::SortedSet(z)
        }
        other => other.clone(),
    }
}

fn stream_survives(a: &basalt_rdb::Stream, b: &basalt_rdb::Stream) {
    let ids = |s: &basalt_rdb::Stream| {
        let mut v: Vec<_> = s.entries.iter().map(|e| (e.id, e.fields.clone())).collect();
        v.sort();
        v
    };
    assert_eq!(ids(a), ids(b), "converted stream entries differ");
    assert_eq!(
        a.groups.len(),
        b.groups.len(),
        "converted stream groups differ"
    );
    for (x, y) in a.groups.iter().zip(&b.groups) {
        assert_eq!(x.name, y.name);
        assert_eq!(x.last_delivered_id, y.last_delivered_id);
        let pel = |g: &basalt_rdb::ConsumerGroup| g.pel.iter().map(|p| p.id).collect::<Vec<_>>();
        assert_eq!(pel(x), pel(y), "converted group PEL differs");
    }
}

fn same_entry(a: &Entry, b: &Entry) {
    assert_eq!((a.db, &a.key), (b.db, &b.key), "converted key differs");
    assert_eq!(a.expire_ms, b.expire_ms, "converted expiry differs");
    assert_eq!(a.lru_idle, b.lru_idle, "converted LRU idle differs");
    assert_eq!(a.lfu_freq, b.lfu_freq, "converted LFU freq differs");
    match (&a.value, &b.value) {
        (Value::Stream(x), Value::Stream(y)) => stream_survives(x, y),
        (x, y) => assert_eq!(normal(x), normal(y), "converted value differs"),
    }
}

fuzz_target!(|data: &[u8]| {
    // Whole dumps (seeds) are taken as they are, the target picked from
    // their length; other inputs are a selector byte and a body after a
    // header of the version the selector names.
    let mut buf;
    let (input, sel) = match data.first() {
        Some(b'R') | Some(b'V') => (data, data.len() as u8),
        Some(&s) => {
            let v: &[u8] = match s >> 4 & 3 {
                0 => b"REDIS0009",
                1 => b"REDIS0010",
                2 => b"REDIS0011",
                _ => b"REDIS0012",
            };
            buf = v.to_vec();
            buf.extend_from_slice(&data[1..]);
            (&buf[..], s)
        }
        None => return,
    };
    let target = TARGETS[usize::from(sel % 5)];
    let compress = sel & 8 != 0;

    let Ok(reader) = Reader::from_slice(input, opts(false)) else {
        return;
    };
    let mut w = Writer::new(Vec::new(), EncodeOptions { target, compress }).expect("header");
    let mut aux: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut functions: Vec<Function> = Vec::new();
    let mut entries: Vec<Entry> = Vec::new();
    for item in reader {
        // A bad input ends the conversion; what was written so far must
        // still make a valid dump once finished.
        let Ok(item) = item else { break };
        match item {
            Item::Aux { key, value } => {
                w.aux(&key, &value).expect("aux to a Vec");
                aux.push((key, value));
            }
            Item::Function(f) => {
                if w.function(&f).is_ok() {
                    functions.push(f);
                }
            }
            // `basalt-rdb convert` refuses these (see its convert.rs).
            Item::Entry(e) if e.value.has_duplicates() => {}
            Item::Entry(e) => match w.entry(&e) {
                Ok(()) => entries.push(e),
                Err(basalt_rdb::Error::Io(io)) => panic!("I/O error writing to a Vec: {io}"),
                // Refused: what the target cannot hold.
                Err(_) => {}
            },
            _ => {}
        }
    }
    let out = w.finish().expect("finish to a Vec");

    let mut back = Reader::from_slice(&out, opts(true)).expect("converted header");
    let (mut got_aux, mut got_functions, mut got_entries) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        match back.next_item() {
            Ok(Some(Item::Aux { key, value })) => got_aux.push((key, value)),
            Ok(Some(Item::Function(f))) => got_functions.push(f),
            Ok(Some(Item::Entry(e))) => got_entries.push(e),
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => panic!("converted dump ({target:?}) does not decode: {e}"),
        }
    }
    assert!(
        matches!(back.checksum(), Some(Checksum::Verified(_))),
        "converted dump's checksum: {:?}",
        back.checksum()
    );
    assert_eq!(aux, got_aux, "converted aux fields differ");
    assert_eq!(
        functions.len(),
        got_functions.len(),
        "converted functions differ"
    );
    for (a, b) in functions.iter().zip(&got_functions) {
        assert_eq!(
            (&a.library, &a.code),
            (&b.library, &b.code),
            "converted function differs"
        );
    }
    assert_eq!(
        entries.len(),
        got_entries.len(),
        "converted key count differs"
    );
    for (a, b) in entries.iter().zip(&got_entries) {
        same_entry(a, b);
    }
});
