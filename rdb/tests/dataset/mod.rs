//! A dataset holding every value type and the encodings the writer picks
//! for it (compact and plain), shared by the real-Redis tests and the bench.
#![allow(dead_code, clippy::unwrap_used, clippy::indexing_slicing)]

use basalt_rdb::{
    Consumer, ConsumerGroup, Entry, HashField, PendingEntry, Stream, StreamEntry, StreamId, Target,
    Value,
};

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn e(key: &str, value: Value) -> Entry {
    Entry::new(b(key), value)
}

/// A stream with several nodes, mixed field sets and two groups.
pub fn stream_value() -> Stream {
    let mut entries = Vec::new();
    for i in 0..250u64 {
        let id = StreamId::new(1_700_000_000_000 + i * 7, i % 3);
        let fields = if i % 10 == 3 {
            vec![(b("other"), format!("v{i}").into_bytes())]
        } else {
            vec![
                (b("sensor"), format!("s{}", i % 4).into_bytes()),
                (b("temp"), (i as i64 - 50).to_string().into_bytes()),
            ]
        };
        entries.push(StreamEntry { id, fields });
    }
    let ids: Vec<StreamId> = entries.iter().map(|e| e.id).collect();
    let last = *ids.last().unwrap();
    let g1 = ConsumerGroup {
        name: b("g1"),
        last_delivered_id: ids[10],
        entries_read: Some(11),
        pel: vec![
            PendingEntry {
                id: ids[2],
                delivery_time_ms: 1_700_000_123_456,
                delivery_count: 3,
            },
            PendingEntry {
                id: ids[5],
                delivery_time_ms: 1_700_000_123_999,
                delivery_count: 1,
            },
            PendingEntry {
                id: ids[9],
                delivery_time_ms: 1_700_000_124_000,
                delivery_count: 2,
            },
        ],
        consumers: vec![
            Consumer {
                name: b("alice"),
                seen_time_ms: 1_700_000_200_000,
                active_time_ms: None,
                pel: vec![ids[2], ids[9]],
            },
            Consumer {
                name: b("bob"),
                seen_time_ms: 1_700_000_300_000,
                active_time_ms: None,
                pel: vec![ids[5]],
            },
            Consumer {
                name: b("carol"),
                seen_time_ms: 1_700_000_400_000,
                active_time_ms: None,
                pel: vec![],
            },
        ],
        nacked: vec![],
    };
    let g2 = ConsumerGroup {
        name: b("g2"),
        last_delivered_id: StreamId::new(0, 0),
        entries_read: Some(0),
        pel: vec![],
        consumers: vec![],
        nacked: vec![],
    };
    Stream {
        length: entries.len() as u64,
        last_id: last,
        first_id: Some(ids[0]),
        max_deleted_id: Some(StreamId::new(0, 0)),
        entries_added: Some(entries.len() as u64),
        groups: vec![g1, g2],
        listpack_nodes: 0,
        nodes: vec![],
        deleted: vec![],
        idmp: None,
        entries,
    }
}

/// Every type, in db 0 and db 3; field TTLs only when the target has them.
pub fn dataset(target: Target) -> Vec<Entry> {
    let mut v = vec![
        e("str:raw", Value::String(b("hello world"))),
        e("str:int", Value::String(b("12345"))),
        e("str:neg", Value::String(b("-7"))),
        e("str:bigint", Value::String(b("12345678901234"))),
        e("str:notint", Value::String(b("007"))),
        e("str:lzf", Value::String(vec![b'a'; 1000])),
        e("str:bin", Value::String((0..=255u8).collect())),
        e("str:empty", Value::String(vec![])),
        Entry::new(vec![0u8, 0xff, b'k'], Value::String(b("binary key"))),
        e(
            "list:small",
            Value::List(vec![b("a"), b("1"), b("-5"), b("b")]),
        ),
        e(
            "list:big",
            Value::List(
                (0..3000)
                    .map(|i| {
                        if i % 3 == 0 {
                            i.to_string()
                        } else {
                            format!("item-{i}")
                        }
                        .into_bytes()
                    })
                    .collect(),
            ),
        ),
        e(
            "list:long",
            Value::List((0..3u8).map(|i| vec![b'x' + i; 10_000]).collect()),
        ),
        e(
            "set:ints",
            Value::Set(
                (1..100)
                    .map(|i: i64| (i * 37 - 1000).to_string().into_bytes())
                    .collect(),
            ),
        ),
        e(
            "set:strs",
            Value::Set(vec![b("x"), b("y"), b("z"), b("12")]),
        ),
        e(
            "set:big",
            Value::Set(
                (0..1000)
                    .map(|i| format!("member-{i}").into_bytes())
                    .collect(),
            ),
        ),
        e(
            "set:bigints",
            Value::Set(
                (0..600)
                    .map(|i: i64| (i * 1000).to_string().into_bytes())
                    .collect(),
            ),
        ),
        e(
            "zset:small",
            Value::SortedSet(vec![
                (b("inf"), f64::INFINITY),
                (b("ninf"), f64::NEG_INFINITY),
                (b("half"), 1.5),
                (b("neg"), -0.25),
                (b("huge"), 1e300),
                (b("three"), 3.0),
                (b("tiny"), 5e-324),
                (b("pi"), std::f64::consts::PI),
                (b("tie-b"), 7.0),
                (b("tie-a"), 7.0),
            ]),
        ),
        e(
            "zset:big",
            Value::SortedSet(
                (0..300)
                    .map(|i| (format!("m{i}").into_bytes(), i as f64 * 1.1 - 100.0))
                    .collect(),
            ),
        ),
        e(
            "hash:small",
            Value::Hash(
                (0..5)
                    .map(|i| HashField::new(format!("f{i}"), format!("v{i}")))
                    .collect(),
            ),
        ),
        e(
            "hash:big",
            Value::Hash(
                (0..200)
                    .map(|i| HashField::new(format!("field{i}"), i.to_string()))
                    .collect(),
            ),
        ),
        e(
            "hash:longval",
            Value::Hash(vec![HashField::new("f", vec![b'v'; 100])]),
        ),
        e("stream:s", Value::Stream(Box::new(stream_value()))),
    ];
    let mut exp = e("exp:future", Value::String(b("expires in 2100")));
    exp.expire_ms = Some(4_102_444_800_000);
    v.push(exp);
    let mut idle = e("meta:idle", Value::String(b("idle")));
    idle.lru_idle = Some(1234);
    v.push(idle);
    let mut other_db = e("db3:key", Value::List(vec![b("in db 3")]));
    other_db.db = 3;
    v.push(other_db);
    if matches!(target, Target::Redis12 | Target::Valkey80) {
        let mut h: Vec<HashField> = (0..4)
            .map(|i| HashField::new(format!("f{i}"), format!("v{i}")))
            .collect();
        h[1].expire_ms = Some(4_102_444_800_000);
        h[3].expire_ms = Some(4_102_444_900_000);
        v.push(e("hash:ttl-small", Value::Hash(h.clone())));
        let mut big: Vec<HashField> = (0..300)
            .map(|i| HashField::new(format!("f{i}"), format!("v{i}")))
            .collect();
        big[7].expire_ms = Some(4_102_444_800_000);
        v.push(e("hash:ttl-big", Value::Hash(big)));
    }
    v
}

/// The library code used in function tests.
pub const LIBRARY: &str = "#!lua name=basaltlib\nredis.register_function('basalt_one', function(keys, args) return 1 end)\n";
