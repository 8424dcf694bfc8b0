//! Valkey's SLOT_IMPORT opcode (243 under `VALKEY` 80+): an unfinished
//! atomic slot migration recorded in a cluster node's dump, laid out as
//! valkey's `clusterRDBSaveSlotImports` writes it (and its
//! `rdb-slot-import.tcl` test assembles it): `F3`, a 40-byte job name, the
//! range count, then first and last slot per range.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use basalt_rdb::{DecodeOptions, Error, Item, Reader, Value};

fn file(header: &[u8], body: &[u8]) -> Vec<u8> {
    let mut v = header.to_vec();
    v.extend_from_slice(body);
    v.push(255);
    let c = basalt_rdb::crc64::checksum(&v);
    v.extend_from_slice(&c.to_le_bytes());
    v
}

#[path = "support/read.rs"]
mod read;
use read::items;

/// Through the `Read` path, 3 bytes at a time.
fn streamed(data: &[u8]) -> basalt_rdb::Result<Vec<Item>> {
    read::items_dribbled(data, 3)
}

const NAME: &[u8; 40] = b"0123456789abcdef0123456789abcdef01234567";

/// `F3`, the name, the ranges (each slot as a one- or two-byte length).
fn slot_import(name: &[u8], ranges: &[(u64, u64)]) -> Vec<u8> {
    let mut b = vec![0xF3];
    basalt_rdb::encode::write_length(&mut b, name.len() as u64);
    b.extend_from_slice(name);
    basalt_rdb::encode::write_length(&mut b, ranges.len() as u64);
    for (a, z) in ranges {
        basalt_rdb::encode::write_length(&mut b, *a);
        basalt_rdb::encode::write_length(&mut b, *z);
    }
    b
}

#[test]
fn unfinished_slot_imports_are_reported_before_the_keys() {
    for header in [&b"VALKEY080"[..], b"VALKEY081"] {
        let mut body = slot_import(NAME, &[(0, 100), (16383, 16383)]);
        body.extend_from_slice(&slot_import(NAME, &[]));
        body.extend_from_slice(&[0xFE, 0, 0, 1, b'k', 1, b'v']);
        let data = file(header, &body);
        let got = items(&data).unwrap();
        assert_eq!(streamed(&data).unwrap(), got);
        // Whoever loads the dump is told the slots may be incomplete.
        let mut r = Reader::from_slice(&data, DecodeOptions::default()).unwrap();
        assert_eq!(r.by_ref().count(), 4);
        let w = r.warnings().join("\n");
        assert!(
            w.contains("offset 9: unfinished slot import") && w.contains("(slots 0-100, 16383)"),
            "{w}"
        );
        assert!(w.contains("(slots none)"), "{w}");
        assert_eq!(
            got[0],
            Item::SlotImport {
                name: NAME.to_vec(),
                ranges: vec![(0, 100), (16383, 16383)],
            }
        );
        assert_eq!(
            got[1],
            Item::SlotImport {
                name: NAME.to_vec(),
                ranges: vec![],
            }
        );
        assert_eq!(got[2], Item::SelectDb(0));
        let Item::Entry(e) = &got[3] else {
            panic!("{got:?}")
        };
        assert_eq!(e.value, Value::String(b"v".to_vec()));
    }
}

/// Offsets: header 9 bytes, opcode at 9, name length at 10, name at 11-50,
/// range count at 51, first range at 52.
#[test]
fn bad_slot_imports_name_their_offset() {
    let check = |body: Vec<u8>, offset: u64, needle: &str| {
        let data = file(b"VALKEY080", &body);
        for err in [items(&data).unwrap_err(), streamed(&data).unwrap_err()] {
            assert_eq!(err.offset(), Some(offset), "{err}");
            assert!(err.to_string().contains(needle), "{err}");
        }
    };
    // valkey-check-rdb: "Invalid slot import job name length in RDB".
    check(
        slot_import(b"short", &[(1, 2)]),
        10,
        "40-byte slot import job name, found 5",
    );
    check(
        slot_import(NAME, &[(5, 4)]),
        52,
        "within 0-16383, found 5-4",
    );
    check(
        slot_import(NAME, &[(0, 1), (10, 16384)]),
        54,
        "found 10-16384",
    );
    // A range count no cluster can have, refused before allocating.
    let mut b = slot_import(NAME, &[]);
    b.truncate(51 - 9);
    b.extend_from_slice(&[0x81, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    check(b, 51, "at most 16384 slot import ranges");
    // Cut short.
    let data = file(b"VALKEY080", &slot_import(NAME, &[(1, 2)]));
    for err in [
        items(&data[..53]).unwrap_err(),
        streamed(&data[..53]).unwrap_err(),
    ] {
        assert!(matches!(err, Error::Truncated { .. }), "{err}");
    }
}

/// Byte 243 is Redis 8.6's KEY_META under `REDIS` 13+, and nothing in
/// older Redis files.
#[test]
fn opcode_243_is_a_slot_import_only_in_valkey_files() {
    let body = slot_import(NAME, &[(0, 1)]);
    assert!(matches!(
        items(&file(b"REDIS0011", &body)).unwrap_err(),
        Error::UnknownType { byte: 243, .. }
    ));
    // Under REDIS 13 the same bytes are KEY_META, whose class spec (the
    // name's first bytes) makes no sense: refused, not a slot import.
    let err = items(&file(b"REDIS0013", &body)).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
}
