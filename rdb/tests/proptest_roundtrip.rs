//! Property tests: generated datasets of every type round-trip through
//! write-then-read for every target, and through DUMP payloads; random and
//! mutated inputs never panic.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod support;

use basalt_rdb::{
    decode_dump, encode_dump, Consumer, ConsumerGroup, DecodeOptions, EncodeOptions, Entry,
    HashField, Item, PendingEntry, Reader, Stream, StreamEntry, StreamId, Target, Value, Writer,
};
use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;
use support::canon;

const TARGETS: [Target; 5] = [
    Target::Redis9,
    Target::Redis10,
    Target::Redis11,
    Target::Redis12,
    Target::Valkey80,
];

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..40),
        any::<i64>().prop_map(|i| i.to_string().into_bytes()),
        (0u8..4, 0usize..300).prop_map(|(b, n)| vec![b'a' + b; n]),
        vec(any::<u8>(), 60..120),
    ]
}

fn score() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("no NaN", |f| !f.is_nan()),
        (-1000i64..1000).prop_map(|i| i as f64),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
    ]
}

fn stream() -> impl Strategy<Value = Stream> {
    let entries = btree_map(
        (0u64..1 << 45, 0u64..5),
        vec((bytes(), bytes()), 1..4),
        0..120,
    );
    (entries, vec((bytes(), 0usize..6, any::<bool>()), 0..3)).prop_map(|(entries, groups)| {
        let entries: Vec<StreamEntry> = entries
            .into_iter()
            .map(|((ms, seq), fields)| StreamEntry {
                id: StreamId::new(ms, seq),
                fields,
            })
            .collect();
        let last = entries.last().map(|e| e.id).unwrap_or_default();
        let mut seen = std::collections::BTreeSet::new();
        let groups = groups
            .into_iter()
            .filter(|(name, _, _)| seen.insert(name.clone()))
            .map(|(name, npel, read)| {
                let pel: Vec<PendingEntry> = entries
                    .iter()
                    .take(npel)
                    .map(|e| PendingEntry {
                        id: e.id,
                        delivery_time_ms: 1_700_000_000_000,
                        delivery_count: 2,
                    })
                    .collect();
                let consumers = vec![
                    Consumer {
                        name: b"c1".to_vec(),
                        seen_time_ms: 5,
                        active_time_ms: None,
                        pel: pel.iter().step_by(2).map(|p| p.id).collect(),
                    },
                    Consumer {
                        name: b"c2".to_vec(),
                        seen_time_ms: 6,
                        active_time_ms: Some(7),
                        pel: pel.iter().skip(1).step_by(2).map(|p| p.id).collect(),
                    },
                ];
                ConsumerGroup {
                    name,
                    last_delivered_id: last,
                    entries_read: read.then_some(3),
                    pel,
                    consumers,
                    nacked: vec![],
                }
            })
            .collect();
        Stream {
            length: entries.len() as u64,
            last_id: last,
            first_id: Some(entries.first().map(|e| e.id).unwrap_or_default()),
            max_deleted_id: Some(StreamId::new(0, 0)),
            entries_added: Some(entries.len() as u64),
            groups,
            listpack_nodes: 0,
            nodes: vec![],
            deleted: vec![],
            idmp: None,
            entries,
        }
    })
}

fn value(ttl: bool) -> impl Strategy<Value = Value> {
    let ttl_s = if ttl {
        prop::option::of(1u64..(1 << 47)).boxed()
    } else {
        Just(None).boxed()
    };
    prop_oneof![
        bytes().prop_map(Value::String),
        vec(bytes(), 1..200).prop_map(Value::List),
        btree_set(bytes(), 1..150).prop_map(|s| Value::Set(s.into_iter().collect())),
        btree_set(any::<i32>(), 1..600)
            .prop_map(|s| Value::Set(s.into_iter().map(|i| i.to_string().into_bytes()).collect())),
        btree_map(bytes(), score(), 1..200).prop_map(|m| Value::SortedSet(m.into_iter().collect())),
        btree_map(bytes(), (bytes(), ttl_s), 1..200).prop_map(|m| Value::Hash(
            m.into_iter()
                .map(|(field, (value, expire_ms))| HashField {
                    field,
                    value,
                    expire_ms
                })
                .collect()
        )),
        stream().prop_map(|s| Value::Stream(Box::new(s))),
    ]
}

/// What reading back a value written for `t` gives.
fn expected(v: &Value, t: Target) -> Value {
    let mut v = canon(v);
    if let Value::Stream(s) = &mut v {
        match t {
            Target::Redis9 => {
                s.first_id = None;
                s.max_deleted_id = None;
                s.entries_added = None;
                for g in &mut s.groups {
                    g.entries_read = None;
                }
            }
            Target::Redis10 => {}
            _ => {}
        }
        for g in &mut s.groups {
            for c in &mut g.consumers {
                c.active_time_ms = match t {
                    Target::Redis9 | Target::Redis10 => None,
                    _ => Some(c.active_time_ms.unwrap_or(c.seen_time_ms)),
                };
            }
        }
    }
    v
}

fn roundtrip(entries: &[Entry], t: Target) -> Vec<Entry> {
    let mut w = Writer::new(Vec::new(), EncodeOptions::for_target(t)).unwrap();
    w.aux(b"redis-ver", b"7.0.15").unwrap();
    for e in entries {
        w.entry(e).unwrap();
    }
    let bytes = w.finish().unwrap();
    let from_slice: Vec<Entry> = Reader::from_slice(&bytes, DecodeOptions::default())
        .unwrap()
        .filter_map(|i| match i.unwrap() {
            Item::Entry(e) => Some(e),
            _ => None,
        })
        .collect();
    let from_read = Reader::from_read(&bytes[..], DecodeOptions::default())
        .unwrap()
        .filter(|i| matches!(i, Ok(Item::Entry(_))))
        .count();
    assert_eq!(from_read, from_slice.len());
    from_slice
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn write_then_read_every_type(vals in vec((value(true), prop::option::of(0i64..1 << 45), 0u64..3), 1..8)) {
        for t in TARGETS {
            let ttl_ok = matches!(t, Target::Redis12 | Target::Valkey80);
            let entries: Vec<Entry> = vals
                .iter()
                .enumerate()
                .map(|(i, (v, exp, db))| {
                    let mut v = v.clone();
                    if !ttl_ok {
                        if let Value::Hash(h) = &mut v {
                            h.iter_mut().for_each(|f| f.expire_ms = None);
                        }
                    }
                    let mut e = Entry::new(format!("key{i}"), v);
                    e.expire_ms = *exp;
                    e.db = *db;
                    e
                })
                .collect();
            let back = roundtrip(&entries, t);
            prop_assert_eq!(back.len(), entries.len());
            for (a, b) in entries.iter().zip(&back) {
                prop_assert_eq!(&a.key, &b.key);
                prop_assert_eq!(a.db, b.db);
                prop_assert_eq!(a.expire_ms, b.expire_ms);
                prop_assert_eq!(canon(&b.value), expected(&a.value, t), "target {:?}", t);
            }
        }
    }

    #[test]
    fn dump_payload_round_trip(v in value(true)) {
        for t in TARGETS {
            let opts = EncodeOptions::for_target(t);
            match encode_dump(&v, &opts) {
                Ok(p) => {
                    let (back, ver) = decode_dump(&p, &DecodeOptions::default(), None).unwrap();
                    prop_assert_eq!(u32::from(ver), t.format().version);
                    prop_assert_eq!(canon(&back), expected(&v, t));
                }
                Err(e) => prop_assert!(e.to_string().contains("hash field expiry"), "{}", e),
            }
        }
    }

    #[test]
    fn mutated_dumps_never_panic(v in value(false), flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), cut in any::<prop::sample::Index>()) {
        let e = Entry::new("k", v);
        let mut w = Writer::new(Vec::new(), EncodeOptions::default()).unwrap();
        w.entry(&e).unwrap();
        let bytes = w.finish().unwrap();
        let mut m = bytes.clone();
        for (i, b) in &flips {
            let at = i.index(m.len());
            m[at] ^= b | 1;
        }
        let opts = DecodeOptions { verify_checksum: false, ..Default::default() };
        if let Ok(r) = Reader::from_slice(&m, opts) {
            for item in r { if item.is_err() { break; } }
        }
        let t = &bytes[..cut.index(bytes.len())];
        if let Ok(r) = Reader::from_read(t, opts) {
            let res: Result<Vec<_>, _> = r.collect();
            prop_assert!(res.is_err());
        }
        let p = encode_dump(&e.value, &EncodeOptions::default()).unwrap();
        let mut mp = p.clone();
        for (i, b) in &flips {
            let at = i.index(mp.len() - 10);
            mp[at] ^= b | 1;
        }
        // Fix up the CRC so the decoder really parses the damaged value.
        let n = mp.len();
        let crc = basalt_rdb::crc64::checksum(&mp[..n - 8]);
        mp[n - 8..].copy_from_slice(&crc.to_le_bytes());
        let _ = decode_dump(&mp, &DecodeOptions::default(), None);
    }

    #[test]
    fn random_bytes_never_panic(body in vec(any::<u8>(), 0..400)) {
        let mut data = b"REDIS0010".to_vec();
        data.extend_from_slice(&body);
        if let Ok(r) = Reader::from_slice(&data, DecodeOptions::default()) {
            for item in r { if item.is_err() { break; } }
        }
        let _ = decode_dump(&body, &DecodeOptions::default(), None);
    }
}
