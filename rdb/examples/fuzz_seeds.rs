//! Write seed inputs for the fuzz targets:
//! `cargo run -p basalt-rdb --example fuzz_seeds -- DIR` (RESTORE
//! payloads) and `... -- --rdb DIR` (whole dumps for the reader).
//!
//! Both sets lean on streams: values with deleted entries, several nodes,
//! consumer groups with PELs and consumers, written for every target
//! (STREAM_LISTPACKS 1-3), and the Redis 8.6 / 8.8 stream types 26 and 27
//! (IDMP state, NACK zone), arrays (type 28) and Valkey 9.2 path hashes
//! (type 23 under `VALKEY` 81) assembled byte by byte, which the writer
//! does not produce.
// A developer tool over fixed, built-in data (not input from a file or a
// socket): indexing it cannot go out of range, so the crate-wide deny is lifted.
#![allow(clippy::indexing_slicing)]

use basalt_rdb::{
    encode_dump, Consumer, ConsumerGroup, EncodeOptions, HashField, Item, PendingEntry,
    StreamEntry, StreamId, Target, Value, Writer,
};

#[path = "../tests/support/streams.rs"]
mod streams;

#[path = "../tests/support/arrays.rs"]
mod arrays;

#[path = "../tests/support/path_hashes.rs"]
mod path_hashes;

const TARGETS: [Target; 5] = [
    Target::Redis9,
    Target::Redis10,
    Target::Redis11,
    Target::Redis12,
    Target::Valkey80,
];

fn entry(ms: u64, seq: u64, fields: &[(&str, &str)]) -> StreamEntry {
    StreamEntry {
        id: StreamId::new(ms, seq),
        fields: fields
            .iter()
            .map(|(f, v)| (f.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect(),
    }
}

/// Streams: one entry; many entries over several nodes (same and
/// different fields, integers); entries deleted; two groups with PELs
/// and consumers; an empty stream with a group.
fn streams() -> Vec<basalt_rdb::Stream> {
    let one = basalt_rdb::Stream {
        entries: vec![entry(5, 1, &[("f", "v")])],
        length: 1,
        last_id: StreamId::new(5, 1),
        ..Default::default()
    };
    let mut many: Vec<StreamEntry> = (0..250u64)
        .map(|i| {
            if i % 7 == 0 {
                entry(1000 + i, i, &[("other", "x"), ("n", "123456789")])
            } else {
                let v = format!("value-{i}");
                entry(1000 + i, 0, &[("name", &v), ("n", "-42")])
            }
        })
        .collect();
    let deleted: Vec<StreamEntry> = many
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 9 == 4)
        .map(|(_, e)| e.clone())
        .collect();
    many.retain(|e| !deleted.iter().any(|d| d.id == e.id));
    let pel_ids: Vec<StreamId> = many.iter().take(6).map(|e| e.id).collect();
    let group = |name: &str, owners: &[&str]| ConsumerGroup {
        name: name.as_bytes().to_vec(),
        last_delivered_id: pel_ids[5],
        entries_read: Some(7),
        pel: pel_ids
            .iter()
            .enumerate()
            .map(|(i, id)| PendingEntry {
                id: *id,
                delivery_time_ms: 1_700_000_000_000 + i as i64,
                delivery_count: 1 + i as u64,
            })
            .collect(),
        consumers: owners
            .iter()
            .enumerate()
            .map(|(c, n)| Consumer {
                name: n.as_bytes().to_vec(),
                seen_time_ms: 1_700_000_000_100 + c as i64,
                active_time_ms: Some(1_700_000_000_050),
                pel: pel_ids
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % owners.len() == c)
                    .map(|(_, id)| *id)
                    .collect(),
            })
            .collect(),
        nacked: Vec::new(),
    };
    let last = deleted.last().map_or(many[many.len() - 1].id, |d| {
        d.id.max(many[many.len() - 1].id)
    });
    let grouped = basalt_rdb::Stream {
        length: many.len() as u64,
        last_id: last,
        first_id: Some(many[0].id),
        max_deleted_id: deleted.last().map(|d| d.id),
        entries_added: Some(250),
        groups: vec![group("g1", &["alice", "bob"]), group("g2", &["carol"])],
        entries: many,
        deleted,
        ..Default::default()
    };
    let empty = basalt_rdb::Stream {
        last_id: StreamId::new(9, 9),
        max_deleted_id: Some(StreamId::new(9, 9)),
        entries_added: Some(3),
        groups: vec![ConsumerGroup {
            name: b"g".to_vec(),
            last_delivered_id: StreamId::new(9, 9),
            entries_read: Some(3),
            pel: Vec::new(),
            consumers: Vec::new(),
            nacked: Vec::new(),
        }],
        ..Default::default()
    };
    vec![one, grouped, empty]
}

/// The hand-made type 26/27 streams as (header, key + value bytes).
fn redis8_streams() -> Vec<(&'static [u8], Vec<u8>)> {
    vec![
        (&b"REDIS0013"[..], streams::stream_body(26, false)),
        (&b"REDIS0014"[..], streams::stream_body(27, true)),
        (&b"REDIS0014"[..], streams::stream_body(27, false)),
    ]
}

/// Hand-made Valkey 9.2 path hashes: the sample (root path, nested
/// paths, a binary value), an empty one, one path of many fields, and
/// many paths with an int-encoded one.
fn valkey92_path_hashes() -> Vec<Vec<path_hashes::Path>> {
    use path_hashes::path;
    let fields: Vec<(Vec<u8>, Vec<u8>)> = (0..30u32)
        .map(|i| {
            (
                format!("f{i}").into_bytes(),
                format!("{}", i * 1000).into_bytes(),
            )
        })
        .collect();
    let wide = path_hashes::Path {
        encoded: vec![1, b'w'],
        fields,
    };
    let mut many: Vec<path_hashes::Path> = (0..20u32)
        .map(|i| path(format!("p/{i:02}").as_bytes(), &[(b"f", b"v")]))
        .collect();
    many.insert(
        0,
        path_hashes::Path {
            encoded: vec![0xC0, 7],
            fields: vec![(b"x".to_vec(), b"y".to_vec())],
        },
    );
    vec![path_hashes::sample(), Vec::new(), vec![wide], many]
}

/// An array's insert cursor and its (index, element) pairs.
type ArraySeed = (Option<u64>, Vec<(u64, arrays::Elem)>);

/// Hand-made Redis 8.8 arrays (type 28) as (insert cursor, elements):
/// librdb's fixture values, every tag and string encoding, extreme
/// integers, doubles and indexes, and an empty one.
fn redis8_arrays() -> Vec<ArraySeed> {
    use arrays::Elem;
    let long = b"fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz".to_vec();
    let z = basalt_rdb::lzf::compress(&long).expect("compressible");
    let mut lzf = vec![0xC3];
    arrays::len(&mut lzf, z.len() as u64);
    arrays::len(&mut lzf, long.len() as u64);
    lzf.extend_from_slice(&z);
    vec![
        (None, arrays::mixed()),
        (
            Some(u64::MAX - 1),
            vec![
                (0, Elem::Int(i64::MIN)),
                (1, Elem::Int(i64::MAX)),
                (2, Elem::Float(f64::NEG_INFINITY)),
                (3, Elem::Float(-0.0)),
                (1 << 40, Elem::SdsEncoded(lzf)),
                (1 << 41, Elem::SdsEncoded(vec![0xC1, 0x39, 0x30])),
                (u64::MAX - 2, Elem::Small(b"tail".to_vec())),
            ],
        ),
        (Some(0), Vec::new()),
    ]
}

/// A DUMP payload from a type byte + value, for RDB `version`.
fn payload(ty: u8, value: &[u8], version: u16) -> Vec<u8> {
    let mut p = vec![ty];
    p.extend_from_slice(value);
    p.extend_from_slice(&version.to_le_bytes());
    let crc = basalt_rdb::crc64::checksum(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

fn restore_seeds(dir: &str) -> Result<usize, Box<dyn std::error::Error>> {
    let big: Vec<Vec<u8>> = (0..300)
        .map(|i| format!("element-{i}").into_bytes())
        .collect();
    let mut values = vec![
        Value::String(b"hello".to_vec()),
        Value::String(b"12345".to_vec()),
        Value::String(vec![b'z'; 200]),
        Value::List(vec![b"a".to_vec(), b"7".to_vec(), b"-300".to_vec()]),
        Value::List(big.clone()),
        Value::Set(vec![b"1".to_vec(), b"2".to_vec(), b"70000".to_vec()]),
        Value::Set(vec![b"x".to_vec(), b"y".to_vec()]),
        Value::Set(big.clone()),
        Value::SortedSet(vec![(b"m".to_vec(), 1.5), (b"n".to_vec(), f64::INFINITY)]),
        Value::SortedSet(
            big.iter()
                .enumerate()
                .map(|(i, m)| (m.clone(), i as f64))
                .collect(),
        ),
        Value::Hash(vec![
            HashField::new("f", "v"),
            HashField {
                field: b"g".to_vec(),
                value: b"w".to_vec(),
                expire_ms: Some(1 << 40),
            },
        ]),
        Value::Hash(
            big.iter()
                .map(|m| HashField::new(m.clone(), m.clone()))
                .collect(),
        ),
    ];
    values.extend(streams().into_iter().map(|s| Value::Stream(Box::new(s))));
    let mut n = 0;
    for (i, v) in values.iter().enumerate() {
        for t in TARGETS {
            let opts = EncodeOptions {
                target: t,
                compress: i % 2 == 0,
            };
            if let Ok(p) = encode_dump(v, &opts) {
                std::fs::write(format!("{dir}/seed-{i}-{t:?}"), p)?;
                n += 1;
            }
        }
    }
    for (i, (header, body)) in redis8_streams().into_iter().enumerate() {
        let version: u16 = if header.ends_with(b"13") { 13 } else { 14 };
        // body = type, key "s" (length 1 + 1 byte), value.
        std::fs::write(
            format!("{dir}/seed-redis8-stream-{i}"),
            payload(body[0], &body[3..], version),
        )?;
        n += 1;
    }
    for (i, (insert, elems)) in redis8_arrays().into_iter().enumerate() {
        std::fs::write(
            format!("{dir}/seed-redis8-array-{i}"),
            arrays::payload14(insert, &elems),
        )?;
        n += 1;
    }
    for (i, paths) in valkey92_path_hashes().iter().enumerate() {
        std::fs::write(
            format!("{dir}/seed-valkey92-path-hash-{i}"),
            path_hashes::payload81(&path_hashes::path_hash_value(paths)),
        )?;
        n += 1;
    }
    Ok(n)
}

fn rdb_seeds(dir: &str) -> Result<usize, Box<dyn std::error::Error>> {
    let mut n = 0;
    for (i, (insert, elems)) in redis8_arrays().into_iter().enumerate() {
        let mut body = vec![0, 1, b'a', 1, b'x'];
        body.extend_from_slice(&arrays::array_key(b"arr", insert, &elems));
        std::fs::write(
            format!("{dir}/redis8-array-{i}.rdb"),
            arrays::file14(&body, true),
        )?;
        n += 1;
    }
    // A Valkey cluster node's unfinished slot import (opcode 243): a
    // 40-byte job name and two slot ranges, before the keys.
    let mut body = vec![0xF3, 40];
    body.extend_from_slice(&[b'n'; 40]);
    body.extend_from_slice(&[2, 0, 10, 0x40, 0x64, 0x7F, 0xFF]);
    body.extend_from_slice(&[0xFE, 0, 0, 1, b'a', 1, b'x']);
    std::fs::write(
        format!("{dir}/valkey9-slot-import.rdb"),
        path_hashes::file81(&body, true),
    )?;
    n += 1;
    for (i, paths) in valkey92_path_hashes().iter().enumerate() {
        let mut body = vec![0, 1, b'a', 1, b'x'];
        body.extend_from_slice(&path_hashes::path_hash_key(b"ph", paths));
        std::fs::write(
            format!("{dir}/valkey92-path-hash-{i}.rdb"),
            path_hashes::file81(&body, true),
        )?;
        n += 1;
    }
    for (i, (header, body)) in redis8_streams().into_iter().enumerate() {
        std::fs::write(
            format!("{dir}/redis8-stream-{i}.rdb"),
            streams::file(header, &body),
        )?;
        n += 1;
    }
    for t in TARGETS {
        for compress in [false, true] {
            let mut w = Writer::new(
                Vec::new(),
                EncodeOptions {
                    target: t,
                    compress,
                },
            )?;
            for (i, s) in streams().into_iter().enumerate() {
                w.entry(&basalt_rdb::Entry {
                    db: 0,
                    key: format!("stream-{i}").into_bytes(),
                    value: Value::Stream(Box::new(s)),
                    expire_ms: None,
                    lru_idle: None,
                    lfu_freq: None,
                    rdb_type: 0,
                })?;
            }
            let bytes = w.finish()?;
            // Every seed must decode (else it seeds nothing useful).
            let r = basalt_rdb::Reader::from_slice(&bytes, Default::default())?;
            let items: Vec<Item> = r.collect::<Result<_, _>>()?;
            assert!(items.iter().any(|i| matches!(i, Item::Entry(_))));
            std::fs::write(format!("{dir}/streams-{t:?}-{compress}.rdb"), bytes)?;
            n += 1;
        }
    }
    Ok(n)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (rdb, dir) = match args.as_slice() {
        [flag, dir] if flag == "--rdb" => (true, dir.clone()),
        [dir] => (false, dir.clone()),
        _ => return Err("usage: fuzz_seeds [--rdb] DIR".into()),
    };
    std::fs::create_dir_all(&dir)?;
    let n = if rdb {
        rdb_seeds(&dir)?
    } else {
        restore_seeds(&dir)?
    };
    println!("wrote {n} seeds to {dir}");
    Ok(())
}
