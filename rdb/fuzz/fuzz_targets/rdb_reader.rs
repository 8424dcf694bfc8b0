//! Fuzz the file reader: never panic; the slice and `Read` readers agree;
//! plain values that decode re-encode and decode to the same value.
#![no_main]

use basalt_rdb::{DecodeOptions, EncodeOptions, Item, Reader, Value, Writer};
use libfuzzer_sys::fuzz_target;

fn items(data: &[u8]) -> (Vec<Item>, bool) {
    let opts = DecodeOptions {
        verify_checksum: false,
        ..Default::default()
    };
    let mut out = Vec::new();
    let Ok(r) = Reader::from_slice(data, opts) else {
        return (out, false);
    };
    for i in r {
        match i {
            Ok(i) => out.push(i),
            Err(_) => return (out, false),
        }
    }
    (out, true)
}

/// What any stream the writer accepts keeps through write and read: its
/// live entries (by ID) and its groups' names, PEL IDs and consumers.
fn stream_survives(a: &basalt_rdb::Stream, b: &basalt_rdb::Stream) {
    let ids = |s: &basalt_rdb::Stream| {
        let mut v: Vec<_> = s.entries.iter().map(|e| (e.id, e.fields.clone())).collect();
        v.sort();
        v
    };
    assert_eq!(ids(a), ids(b), "re-encoded stream entries differ");
    assert_eq!(
        a.groups.len(),
        b.groups.len(),
        "re-encoded stream groups differ"
    );
    for (x, y) in a.groups.iter().zip(&b.groups) {
        assert_eq!(x.name, y.name);
        assert_eq!(x.last_delivered_id, y.last_delivered_id);
        let pel = |g: &basalt_rdb::ConsumerGroup| g.pel.iter().map(|p| p.id).collect::<Vec<_>>();
        assert_eq!(pel(x), pel(y), "re-encoded group PEL differs");
        let cons = |g: &basalt_rdb::ConsumerGroup| {
            g.consumers
                .iter()
                .map(|c| (c.name.clone(), c.pel.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(cons(x), cons(y), "re-encoded consumers differ");
    }
}

fuzz_target!(|data: &[u8]| {
    // Let most inputs get past the header.
    let mut buf = b"REDIS0010".to_vec();
    let input = if data.first() == Some(&b'R') || data.first() == Some(&b'V') {
        data
    } else {
        buf.extend_from_slice(data);
        &buf
    };
    let (slice_items, ok) = items(input);
    let opts = DecodeOptions {
        verify_checksum: false,
        ..Default::default()
    };
    if let Ok(r) = Reader::from_read(input, opts) {
        let streamed: Vec<_> = r.take_while(Result::is_ok).map(Result::unwrap).collect();
        assert_eq!(streamed, slice_items, "slice and Read readers disagree");
    }
    if !ok {
        return;
    }
    for item in slice_items {
        let Item::Entry(e) = item else { continue };
        if !matches!(
            e.value,
            Value::String(_) | Value::List(_) | Value::Stream(_)
        ) {
            continue;
        }
        let mut w = Writer::new(Vec::new(), EncodeOptions::default()).expect("header");
        if w.entry(&e).is_err() {
            continue;
        }
        let bytes = w.finish().expect("finish");
        let (back, ok) = items(&bytes);
        assert!(ok, "re-encoded entry does not decode");
        let got = back.into_iter().find_map(|i| match i {
            Item::Entry(x) => Some(x.value),
            _ => None,
        });
        match (&e.value, got.as_ref()) {
            // Streams: the writer picks its own node split and drops what
            // the target cannot hold; the entries and groups must survive.
            (Value::Stream(a), Some(Value::Stream(b))) => stream_survives(a, b),
            _ => assert_eq!(got.as_ref(), Some(&e.value), "re-encoded value differs"),
        }
    }
});
