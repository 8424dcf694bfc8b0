//! Valkey 9.2's PATH_HASH type (23 under `VALKEY` 81), assembled byte by
//! byte from the layout valkey's `rdbSaveObject` writes: paths with their
//! fields, encoded path strings, the key's TTL, empty path hashes, every
//! corrupt form Valkey's loader refuses, and the writer refusing it.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use basalt_rdb::{
    decode_dump, encode_dump, DecodeOptions, EncodeOptions, Entry, Error, Item, PathFields,
    PathHash, Reader, Target, Value, Writer,
};

#[path = "support/path_hashes.rs"]
mod path_hashes;
use path_hashes::{
    file81, len, path, path_hash_key, path_hash_value, payload81, raw, sample, Path,
};

const TARGETS: [Target; 5] = [
    Target::Redis9,
    Target::Redis10,
    Target::Redis11,
    Target::Redis12,
    Target::Valkey80,
];

#[path = "support/read.rs"]
mod read;
use read::items;

/// Through the `Read` path, 5 bytes at a time.
fn items_streamed(data: &[u8]) -> basalt_rdb::Result<Vec<Item>> {
    read::items_dribbled(data, 5)
}

fn entries(data: &[u8]) -> Vec<Entry> {
    let got = items(data).unwrap();
    assert_eq!(items_streamed(data).unwrap(), got);
    got.into_iter()
        .filter_map(|i| match i {
            Item::Entry(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn owned(p: &[u8], fields: &[(&[u8], &[u8])]) -> (Vec<u8>, PathFields) {
    (
        p.to_vec(),
        fields
            .iter()
            .map(|(f, v)| (f.to_vec(), v.to_vec()))
            .collect(),
    )
}

fn sample_value() -> PathHash {
    PathHash {
        paths: vec![
            owned(b"", &[(b"root", b"1")]),
            owned(b"a/b", &[(b"f", b"v"), (b"g", b"w")]),
            owned(b"a/c", &[(b"n", b"12345"), (b"bin", &[0, 0xff, b'\n'])]),
        ],
    }
}

#[test]
fn valkey_9_2_path_hashes_decode() {
    let mut body = path_hash_key(b"ph", &sample());
    body.extend_from_slice(&[0, 1, b's', 1, b'x']);
    for crc in [true, false] {
        let keys = entries(&file81(&body, crc));
        assert_eq!(keys.len(), 2);
        let e = &keys[0];
        assert_eq!(e.key, b"ph");
        assert_eq!(e.rdb_type, 23);
        assert_eq!(e.value.type_name(), "path-hash");
        assert_eq!(e.value, Value::PathHash(Box::new(sample_value())));
        let Value::PathHash(ph) = &e.value else {
            unreachable!()
        };
        assert_eq!(ph.field_count(), 5);
        assert!(!e.value.has_duplicates());
        assert_eq!(keys[1].value, Value::String(b"x".to_vec()));
    }
}

/// Valkey's own test: `PHSET source p FIELDS 1 f v` then `DUMP` gives
/// `17 01 01 'p' 01 01 'f' 01 'v'`, version 81 and the CRC64; with byte 4
/// (the field count) zeroed, RESTORE answers "Bad data format".
#[test]
fn the_payload_valkey_dumps_decodes_and_its_broken_form_is_refused() {
    let payload = payload81(&[1, 1, b'p', 1, 1, b'f', 1, b'v']);
    assert_eq!(&payload[..9], b"\x17\x01\x01p\x01\x01f\x01v");
    let (v, version) = decode_dump(&payload, &DecodeOptions::default(), None).unwrap();
    assert_eq!(version, 81);
    assert_eq!(
        v,
        Value::PathHash(Box::new(PathHash {
            paths: vec![owned(b"p", &[(b"f", b"v")])]
        }))
    );
    // A server speaking RDB 10 refuses the version before the type.
    assert!(matches!(
        decode_dump(&payload, &DecodeOptions::default(), Some(10)),
        Err(Error::UnsupportedVersion { version: 81, .. })
    ));
    let broken = payload81(&[1, 1, b'p', 0, 1, b'f', 1, b'v']);
    let err = decode_dump(&broken, &DecodeOptions::default(), None).unwrap_err();
    assert_eq!(err.offset(), Some(4), "{err}");
    assert!(err.to_string().contains("at least one field"), "{err}");
}

/// Paths are ordinary RDB strings: int-encoded and LZF forms decode; the
/// key's TTL comes from the usual opcode; a path hash with no paths is
/// kept (Valkey keeps such a key), even when empty keys are skipped.
#[test]
fn encoded_paths_ttls_and_empty_path_hashes() {
    let long = b"deep/path/with/many/many/many/many/many/segments/".repeat(3);
    let lzf = basalt_rdb::lzf::compress(&long).unwrap();
    let mut lzf_path = vec![0xC3];
    len(&mut lzf_path, lzf.len() as u64);
    len(&mut lzf_path, long.len() as u64);
    lzf_path.extend_from_slice(&lzf);
    let paths = vec![
        // INT16 12345.
        Path {
            encoded: vec![0xC1, 0x39, 0x30],
            fields: vec![(b"f".to_vec(), b"1".to_vec())],
        },
        Path {
            encoded: lzf_path,
            fields: vec![(b"g".to_vec(), b"2".to_vec())],
        },
    ];
    let mut body = vec![252];
    body.extend_from_slice(&1_900_000_000_000u64.to_le_bytes());
    body.extend_from_slice(&path_hash_key(b"ph", &paths));
    body.extend_from_slice(&path_hash_key(b"empty", &[]));
    let data = file81(&body, true);
    let keys = entries(&data);
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].expire_ms, Some(1_900_000_000_000));
    assert_eq!(
        keys[0].value,
        Value::PathHash(Box::new(PathHash {
            paths: vec![
                owned(b"12345", &[(b"f", b"1")]),
                owned(&long, &[(b"g", b"2")])
            ]
        }))
    );
    assert_eq!(keys[1].expire_ms, None);
    assert_eq!(keys[1].value, Value::PathHash(Box::default()));
    let opts = DecodeOptions {
        skip_empty_keys: true,
        ..DecodeOptions::default()
    };
    let kept = Reader::from_slice(&data, opts)
        .unwrap()
        .filter(|i| matches!(i, Ok(Item::Entry(_))))
        .count();
    assert_eq!(kept, 2);
}

/// Offsets: header 9 bytes, type byte at 9, key "k" at 10-11, path count
/// at 12, the first path's string at 13.
#[test]
fn corrupt_path_hashes_name_their_offset() {
    let check = |body: Vec<u8>, offset: u64, needle: &str| {
        let data = file81(&body, true);
        for err in [
            items(&data).unwrap_err(),
            items_streamed(&data).unwrap_err(),
        ] {
            assert_eq!(err.offset(), Some(offset), "{err}");
            assert!(err.to_string().contains(needle), "{err}");
        }
    };
    // A path without fields (Valkey: "Path hash path with empty payload").
    check(
        path_hash_key(b"k", &[path(b"p", &[])]),
        15,
        "at least one field in a path-hash path, found 0",
    );
    // After a good path: the second path's field count.
    check(
        path_hash_key(b"k", &[path(b"a", &[(b"f", b"v")]), path(b"b", &[])]),
        15 + 5 + 2,
        "found 0",
    );
    // The same path twice in a row, at the second one.
    check(
        path_hash_key(
            b"k",
            &[path(b"a", &[(b"f", b"v")]), path(b"a", &[(b"g", b"w")])],
        ),
        13 + 7,
        "duplicate path-hash path",
    );
    // Out of byte order, repeated further apart: at the path count.
    check(
        path_hash_key(
            b"k",
            &[
                path(b"b", &[(b"f", b"v")]),
                path(b"a", &[(b"f", b"v")]),
                path(b"b", &[(b"g", b"w")]),
            ],
        ),
        12,
        "duplicate path-hash paths",
    );
    // A field twice in one path, at that path's field count.
    check(
        path_hash_key(b"k", &[path(b"p", &[(b"f", b"1"), (b"f", b"2")])]),
        15,
        "duplicate path-hash fields",
    );
    // The same field in two paths is fine.
    let ok = path_hash_key(
        b"k",
        &[path(b"a", &[(b"f", b"1")]), path(b"b", &[(b"f", b"2")])],
    );
    assert_eq!(entries(&file81(&ok, true)).len(), 1);
    // A count in the special-string form is not a length.
    let mut b = path_hash_key(b"k", &[path(b"p", &[(b"f", b"v")])]);
    b[12 - 9] = 0xC0;
    check(b, 12, "expected a length for path-hash path count");
}

#[test]
fn huge_counts_are_refused_before_allocating() {
    for claimed in [1u64 << 60, u64::MAX, 1000] {
        // As the path count.
        let mut body = vec![23, 1, b'k', 0x81];
        body.extend_from_slice(&claimed.to_be_bytes());
        body.extend_from_slice(&[1, b'p', 1, 1, b'f', 1, b'v']);
        let data = file81(&body, true);
        let err = items(&data).unwrap_err();
        assert_eq!(err.offset(), Some(12), "{err}");
        assert!(err.to_string().contains("paths claimed"), "{err}");
        // A stream does not know its length: it runs out path by path.
        assert!(items_streamed(&data).unwrap_err().offset().is_some());
        // As a path's field count.
        let mut body = vec![23, 1, b'k', 1, 1, b'p', 0x81];
        body.extend_from_slice(&claimed.to_be_bytes());
        body.extend_from_slice(&[1, b'f', 1, b'v']);
        let err = items(&file81(&body, true)).unwrap_err();
        assert_eq!(err.offset(), Some(15), "{err}");
        assert!(err.to_string().contains("fields claimed"), "{err}");
    }
}

/// Type 23 is PATH_HASH only under VALKEY 81: Valkey 9.0 (80) has no type
/// 23, and under REDIS 12 it is the 7.4 RC listpack-with-TTLs hash.
#[test]
fn type_23_is_a_path_hash_only_in_valkey_81() {
    let body = path_hash_key(b"k", &sample());
    let mut data = b"VALKEY080".to_vec();
    data.extend_from_slice(&body);
    data.push(255);
    let crc = basalt_rdb::crc64::checksum(&data);
    data.extend_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        items(&data).unwrap_err(),
        Error::UnknownType {
            offset: 9,
            byte: 23,
            ..
        }
    ));
    let mut redis = b"REDIS0012".to_vec();
    redis.extend_from_slice(&body);
    redis.push(255);
    let crc = basalt_rdb::crc64::checksum(&redis);
    redis.extend_from_slice(&crc.to_le_bytes());
    // There the bytes after the key are read as a listpack (a path count
    // of 3 is no listpack header): refused as corrupt.
    let err = items(&redis).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
}

#[test]
fn writer_refuses_path_hashes_for_every_target() {
    let v = Value::PathHash(Box::new(sample_value()));
    for t in TARGETS {
        let err = encode_dump(&v, &EncodeOptions::for_target(t)).unwrap_err();
        assert!(
            matches!(err, Error::Unrepresentable { .. }) && err.to_string().contains("path hash"),
            "{err}"
        );
        // The file writer refuses the key and stays usable.
        let mut w = Writer::new(Vec::new(), EncodeOptions::for_target(t)).unwrap();
        let err = w.entry(&Entry::new("ph", v.clone())).unwrap_err();
        assert!(err.to_string().contains("VALKEY 81"), "{err}");
        w.entry(&Entry::new("s", Value::String(b"ok".to_vec())))
            .unwrap();
        let bytes = w.finish().unwrap();
        let keys: Vec<Vec<u8>> = items(&bytes)
            .unwrap()
            .into_iter()
            .filter_map(|i| match i {
                Item::Entry(e) => Some(e.key),
                _ => None,
            })
            .collect();
        assert_eq!(keys, [b"s".to_vec()]);
    }
}

/// A path hash built in code with a repeated path or field, or a path
/// without fields, is one Valkey cannot hold: `has_duplicates` says so.
#[test]
fn built_values_with_repeats_are_flagged() {
    let mut ph = sample_value();
    assert!(!ph.has_duplicates());
    ph.paths.push(owned(b"a/b", &[(b"x", b"y")]));
    assert!(Value::PathHash(Box::new(ph)).has_duplicates());
    let ph = PathHash {
        paths: vec![owned(b"p", &[(b"f", b"1"), (b"f", b"2")])],
    };
    assert!(ph.has_duplicates());
    let ph = PathHash {
        paths: vec![owned(b"p", &[])],
    };
    assert!(ph.has_duplicates());
}

#[test]
fn damaged_path_hashes_never_panic() {
    let opts = DecodeOptions {
        verify_checksum: false,
        ..DecodeOptions::default()
    };
    let mut paths = sample();
    let mut wide = Vec::new();
    for i in 0..40u32 {
        wide.push((
            format!("field-{i}").into_bytes(),
            format!("{}", i * 7).into_bytes(),
        ));
    }
    paths.push(Path {
        encoded: {
            let mut e = Vec::new();
            raw(&mut e, b"z");
            e
        },
        fields: wide,
    });
    let good = file81(&path_hash_key(b"ph", &paths), true);
    assert_eq!(entries(&good).len(), 1);
    for cut in 0..good.len() {
        let r: basalt_rdb::Result<Vec<Item>> =
            Reader::from_slice(&good[..cut], opts).and_then(|r| r.collect());
        assert!(r.is_err(), "truncated at {cut} decoded");
    }
    for at in 9..good.len() - 9 {
        for x in [0x01, 0x40, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[at] ^= x;
            let a = Reader::from_slice(&bad, opts).and_then(|r| r.collect::<Result<Vec<_>, _>>());
            let b =
                Reader::from_read(&bad[..], opts).and_then(|r| r.collect::<Result<Vec<_>, _>>());
            // Both readers decode the same, or both refuse.
            assert_eq!(a.is_ok(), b.is_ok(), "byte {at} ^ {x:#x}");
            if let (Ok(a), Ok(b)) = (a, b) {
                assert_eq!(a, b, "byte {at} ^ {x:#x}");
            }
        }
    }
    // And as DUMP payloads.
    let value = path_hash_value(&paths);
    let good = payload81(&value);
    for cut in 0..good.len() {
        let _ = decode_dump(&good[..cut], &DecodeOptions::default(), None);
    }
}
