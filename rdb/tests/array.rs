//! Redis 8.8's ARRAY type (28, `REDIS0014`), assembled byte by byte: every
//! element tag and string encoding, the insert cursor, sparse indexes, and
//! each corrupt form giving a clean error at its offset.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use basalt_rdb::{
    decode_dump, encode_dump, Array, ArrayElem, Checksum, DecodeOptions, EncodeOptions, Entry,
    Error, Item, Reader, Target, Value, Writer,
};

#[path = "support/arrays.rs"]
mod arrays;
use arrays::{array_key, file14, mixed, payload14, Elem};

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

/// Through the `Read` path, 7 bytes at a time.
fn items_streamed(data: &[u8]) -> basalt_rdb::Result<Vec<Item>> {
    read::items_dribbled(data, 7)
}

fn array_of(data: &[u8]) -> (Entry, Array) {
    let got = items(data).unwrap();
    assert_eq!(items_streamed(data).unwrap(), got);
    let [Item::Entry(e)] = &got[..] else {
        panic!("{got:?}")
    };
    let Value::Array(a) = &e.value else {
        panic!("{:?}", e.value)
    };
    (e.clone(), (**a).clone())
}

fn s(b: &str) -> ArrayElem {
    ArrayElem::Str(b.as_bytes().to_vec())
}

#[test]
fn librdb_fixture_array_decodes() {
    let body = array_key(b"arr", None, &mixed());
    for crc in [true, false] {
        let data = file14(&body, crc);
        let (e, a) = array_of(&data);
        assert_eq!(e.key, b"arr");
        assert_eq!(e.rdb_type, 28);
        assert_eq!(e.value.type_name(), "array");
        assert_eq!(a.insert_idx, None);
        assert_eq!(
            a.elements,
            vec![
                (0, s("this_is_a_long_sds_string_value_long_enough")),
                (1, ArrayElem::Int(42)),
                (2, ArrayElem::Float(1.5)),
                (3, s("abc")),
            ]
        );
        let texts: Vec<Vec<u8>> = a.elements.iter().map(|(_, x)| x.to_bytes()).collect();
        assert_eq!(
            texts,
            [
                &b"this_is_a_long_sds_string_value_long_enough"[..],
                b"42",
                b"1.5",
                b"abc"
            ]
        );
        let mut r = Reader::from_slice(&data, DecodeOptions::default()).unwrap();
        assert_eq!(r.by_ref().count(), 1);
        if crc {
            assert!(matches!(r.checksum(), Some(Checksum::Verified(_))));
        } else {
            assert_eq!(r.checksum(), Some(Checksum::Disabled));
        }
    }
}

#[test]
fn integers_and_doubles_keep_their_exact_values() {
    let ints = [0, 1, -1, 42, -42, i64::MIN, i64::MAX, 1 << 40];
    let floats = [
        1.5,
        -1.5,
        0.1,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.0,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        1e300,
    ];
    let mut elems = Vec::new();
    for (i, v) in ints.iter().enumerate() {
        elems.push((i as u64, Elem::Int(*v)));
    }
    for (i, v) in floats.iter().enumerate() {
        elems.push((100 + i as u64, Elem::Float(*v)));
    }
    let (_, a) = array_of(&file14(&array_key(b"n", None, &elems), true));
    assert_eq!(a.elements.len(), ints.len() + floats.len());
    for ((idx, got), (want_idx, want)) in a.elements.iter().zip(&elems) {
        assert_eq!(idx, want_idx);
        match (got, want) {
            (ArrayElem::Int(g), Elem::Int(w)) => assert_eq!(g, w),
            // Bit for bit: -0.0 stays negative.
            (ArrayElem::Float(g), Elem::Float(w)) => assert_eq!(g.to_bits(), w.to_bits()),
            other => panic!("{other:?}"),
        }
    }
    let text = |e: &ArrayElem| String::from_utf8(e.to_bytes()).unwrap();
    let by_idx = |i: u64| &a.elements.iter().find(|(x, _)| *x == i).unwrap().1;
    assert_eq!(text(by_idx(5)), "-9223372036854775808");
    assert_eq!(text(by_idx(6)), "9223372036854775807");
    assert_eq!(text(by_idx(100)), "1.5");
    assert_eq!(text(by_idx(102)), "0.1");
    assert_eq!(text(by_idx(103)), "inf");
    assert_eq!(text(by_idx(104)), "-inf");
    assert_eq!(text(by_idx(105)), "-0");
    assert_eq!(text(by_idx(106)), "0");
    assert_eq!(text(by_idx(110)), "1e300");
    // Every double's text reads back to the same double.
    for f in floats {
        let t = basalt_rdb::format_array_double(f);
        let back: f64 = match t.as_str() {
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            t => t.parse().unwrap(),
        };
        assert_eq!(back.to_bits(), f.to_bits(), "{t}");
    }
    assert_eq!(basalt_rdb::format_array_double(f64::NAN), "nan");
    for (f, want) in [
        (0.001, "0.001"),
        (0.000001, "0.000001"),
        (1e-7, "1e-7"),
        (-2.5e-10, "-2.5e-10"),
        (1e16, "10000000000000000"),
        (1.2345678901234567e20, "123456789012345670000"),
        (1e21, "1e21"),
        (1.5e300, "1.5e300"),
        (-9007199254740991.0, "-9007199254740991"),
        (f64::MAX, "1.7976931348623157e308"),
        (5e-324, "5e-324"),
    ] {
        assert_eq!(basalt_rdb::format_array_double(f), want);
        assert_eq!(want.parse::<f64>().unwrap().to_bits(), f.to_bits());
    }
}

#[test]
fn string_elements_in_every_rdb_string_encoding() {
    let long = b"abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabc".repeat(4);
    let z = basalt_rdb::lzf::compress(&long).unwrap();
    let mut lzf = vec![0xC3];
    arrays::len(&mut lzf, z.len() as u64);
    arrays::len(&mut lzf, long.len() as u64);
    lzf.extend_from_slice(&z);
    let elems = vec![
        (0, Elem::SdsEncoded(lzf)),
        (1, Elem::SdsEncoded(vec![0xC0, 0xF9])), // int8 -7
        (2, Elem::SdsEncoded(vec![0xC1, 0x39, 0x30])), // int16 12345
        (3, Elem::SdsEncoded(vec![0xC2, 0x00, 0x00, 0x00, 0x80])), // int32 MIN
        (4, Elem::Sds(Vec::new())),
        (5, Elem::Sds(vec![0, 0xff, b'\n'])),
        (6, Elem::Small(b"1234567".to_vec())),
        // Longer than Redis would store inline: accepted, as Redis does.
        (7, Elem::Small(b"a small string of twenty-nine".to_vec())),
        (8, Elem::Small(Vec::new())),
        // SMALLSTR may be int-encoded too (any RDB string).
        (9, Elem::Tagged(3, vec![0xC0, 5])),
    ];
    let (_, a) = array_of(&file14(&array_key(b"s", None, &elems), true));
    let want: Vec<(u64, ArrayElem)> = vec![
        (0, ArrayElem::Str(long.clone())),
        (1, s("-7")),
        (2, s("12345")),
        (3, s("-2147483648")),
        (4, s("")),
        (5, ArrayElem::Str(vec![0, 0xff, b'\n'])),
        (6, s("1234567")),
        (7, s("a small string of twenty-nine")),
        (8, s("")),
        (9, s("5")),
    ];
    assert_eq!(a.elements, want);
}

#[test]
fn insert_cursor_and_sparse_indexes() {
    for insert in [None, Some(0), Some(5), Some(1 << 33), Some(u64::MAX - 1)] {
        let elems = vec![
            (0, Elem::Int(1)),
            (1 << 40, Elem::Small(b"far".to_vec())),
            (u64::MAX - 2, Elem::Float(2.5)),
        ];
        let body = array_key(b"sparse", insert, &elems);
        if insert == Some(u64::MAX - 1) {
            // The 64-bit length form carries the cursor.
            assert_eq!(body[9], 1);
            assert_eq!(body[10], 0x81);
        }
        let (_, a) = array_of(&file14(&body, true));
        assert_eq!(a.insert_idx, insert);
        let idx: Vec<u64> = a.elements.iter().map(|(i, _)| *i).collect();
        assert_eq!(idx, vec![0, 1 << 40, u64::MAX - 2]);
    }
}

#[test]
fn empty_array_is_reported_not_skipped() {
    for insert in [None, Some(7)] {
        let data = file14(&array_key(b"e", insert, &[]), true);
        let (e, a) = array_of(&data);
        assert_eq!(e.key, b"e");
        assert!(a.elements.is_empty());
        assert_eq!(a.insert_idx, insert);
        let mut r = Reader::from_slice(&data, DecodeOptions::default()).unwrap();
        assert_eq!(r.by_ref().count(), 1);
        assert!(r.warnings().is_empty());
    }
}

#[test]
fn several_keys_with_metadata_and_other_types() {
    // An array with an expiry and LFU data between two strings.
    let mut body = vec![0, 1, b'a', 1, b'x'];
    body.push(252);
    body.extend_from_slice(&1_900_000_000_000i64.to_le_bytes());
    body.extend_from_slice(&[249, 9]);
    body.extend_from_slice(&array_key(b"arr", Some(4), &mixed()));
    body.extend_from_slice(&[0, 1, b'b', 1, b'y']);
    let got = items(&file14(&body, true)).unwrap();
    assert_eq!(items_streamed(&file14(&body, true)).unwrap(), got);
    let keys: Vec<&Entry> = got
        .iter()
        .filter_map(|i| match i {
            Item::Entry(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[1].expire_ms, Some(1_900_000_000_000));
    assert_eq!(keys[1].lfu_freq, Some(9));
    assert!(matches!(&keys[1].value, Value::Array(a) if a.elements.len() == 4));
    assert_eq!(keys[2].expire_ms, None);
    assert_eq!(keys[2].value, Value::String(b"y".to_vec()));
}

/// Offsets: header 9 bytes, type byte at 9, key "k" (length 10, byte 11),
/// count at 12, flag at 13, first index at 14 (no cursor), tag at 15.
#[test]
fn corrupt_arrays_name_their_offset() {
    let check = |body: Vec<u8>, offset: u64, needle: &str| {
        let data = file14(&body, true);
        for err in [
            items(&data).unwrap_err(),
            items_streamed(&data).unwrap_err(),
        ] {
            assert_eq!(err.offset(), Some(offset), "{err}");
            assert!(err.to_string().contains(needle), "{err}");
            assert!(
                err.to_string()
                    .starts_with(&format!("at byte offset {offset}:")),
                "{err}"
            );
        }
    };
    // Insert-index flag 2.
    let mut b = array_key(b"k", None, &[(0, Elem::Int(1))]);
    b[13 - 9] = 2;
    check(b, 13, "insert-index flag 0 or 1, found 2");
    // Unknown tag 4.
    check(
        array_key(b"k", None, &[(0, Elem::Tagged(4, vec![0; 8]))]),
        15,
        "tag 0-3",
    );
    // Tag 4 after a valid element: the offset of that tag.
    check(
        array_key(
            b"k",
            None,
            &[(0, Elem::Int(1)), (1, Elem::Tagged(4, vec![0; 8]))],
        ),
        15 + 9 + 1,
        "found 4",
    );
    // Repeated and decreasing indexes, at the offending index.
    check(
        array_key(b"k", None, &[(3, Elem::Int(1)), (3, Elem::Int(2))]),
        14 + 10,
        "array index above 3, found 3",
    );
    check(
        array_key(
            b"k",
            None,
            &[(1 << 40, Elem::Int(1)), (7, Elem::Small(b"x".to_vec()))],
        ),
        14 + 9 + 1 + 8, // 2^40 takes the 64-bit length form
        "found 7",
    );
    // An index in the special-string form (0xC0) is not a length.
    check(
        array_key(b"k", None, &[(0, Elem::Int(1))])
            .into_iter()
            .enumerate()
            .map(|(i, x)| if i == 14 - 9 { 0xC0 } else { x })
            .collect(),
        14,
        "expected a length for array element index",
    );
}

#[test]
fn truncated_int_payload_names_its_offset() {
    // One INT element whose 8 bytes are cut to 3, then the file ends.
    let mut data = b"REDIS0014".to_vec();
    data.extend_from_slice(&[28, 1, b'k', 1, 0, 0, 1, 1, 2, 3]);
    let err = items(&data).unwrap_err();
    assert!(matches!(err, Error::Truncated { offset: 16, .. }), "{err}");
    assert!(err.to_string().contains("array integer element"), "{err}");
    // A stream reports where its bytes ran out.
    let err = items_streamed(&data).unwrap_err();
    assert!(matches!(err, Error::Truncated { offset: 19, .. }), "{err}");
    assert!(err.to_string().contains("array integer element"), "{err}");
    // Same for a double, and for a value cut after the count.
    data[15] = 2;
    let err = items(&data).unwrap_err();
    assert!(err.to_string().contains("array double element"), "{err}");
    let err = items(&data[..13]).unwrap_err();
    assert!(err.to_string().contains("insert-index flag"), "{err}");
}

#[test]
fn huge_counts_are_refused_before_allocating() {
    // 2^60 elements, and u64::MAX, claimed by a 30-byte file.
    for claimed in [1u64 << 60, u64::MAX, 1000] {
        let mut body = vec![28, 1, b'k', 0x81];
        body.extend_from_slice(&claimed.to_be_bytes());
        body.extend_from_slice(&[0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        let data = file14(&body, true);
        let err = items(&data).unwrap_err();
        assert_eq!(err.offset(), Some(12), "{err}");
        assert!(err.to_string().contains("array claims"), "{err}");
        // A stream does not know its length: the count is read element by
        // element and the input runs out first, without a big reservation.
        let err = items_streamed(&data).unwrap_err();
        assert!(err.offset().is_some(), "{err}");
    }
}

#[test]
fn array_type_exists_only_in_redis_14() {
    let body = array_key(b"k", None, &mixed());
    for header in [&b"REDIS0013"[..], b"REDIS0012", b"VALKEY080", b"VALKEY081"] {
        let mut data = header.to_vec();
        data.extend_from_slice(&body);
        data.push(255);
        let crc = basalt_rdb::crc64::checksum(&data);
        data.extend_from_slice(&crc.to_le_bytes());
        assert!(
            matches!(
                items(&data).unwrap_err(),
                Error::UnknownType {
                    offset: 9,
                    byte: 28,
                    ..
                }
            ),
            "{}",
            String::from_utf8_lossy(header)
        );
    }
}

#[test]
fn dump_payloads_of_version_14_decode() {
    let p = payload14(Some(9), &mixed());
    let (v, version) = decode_dump(&p, &DecodeOptions::default(), None).unwrap();
    assert_eq!(version, 14);
    let Value::Array(a) = &v else { panic!("{v:?}") };
    assert_eq!(a.insert_idx, Some(9));
    assert_eq!(a.elements.len(), 4);
    // A server speaking RDB 10 refuses the version first.
    assert!(matches!(
        decode_dump(&p, &DecodeOptions::default(), Some(12)),
        Err(Error::UnsupportedVersion { version: 14, .. })
    ));
    // Empty arrays decode from payloads too.
    let (v, _) = decode_dump(&payload14(None, &[]), &DecodeOptions::default(), None).unwrap();
    assert_eq!(v, Value::Array(Box::default()));
}

#[test]
fn writer_refuses_arrays_for_every_target() {
    let p = payload14(Some(3), &mixed());
    let (v, _) = decode_dump(&p, &DecodeOptions::default(), None).unwrap();
    for t in TARGETS {
        let err = encode_dump(&v, &EncodeOptions::for_target(t)).unwrap_err();
        assert!(
            matches!(err, Error::Unrepresentable { .. }) && err.to_string().contains("array"),
            "{err}"
        );
        // The file writer refuses the key and stays usable.
        let mut w = Writer::new(Vec::new(), EncodeOptions::for_target(t)).unwrap();
        let err = w.entry(&Entry::new("arr", v.clone())).unwrap_err();
        assert!(err.to_string().contains("REDIS 14"), "{err}");
        w.entry(&Entry::new("s", Value::String(b"ok".to_vec())))
            .unwrap();
        let bytes = w.finish().unwrap();
        let got = items(&bytes).unwrap();
        let keys: Vec<&[u8]> = got
            .iter()
            .filter_map(|i| match i {
                Item::Entry(e) => Some(&e.key[..]),
                _ => None,
            })
            .collect();
        assert_eq!(keys, [b"s"]);
    }
}

#[test]
fn damaged_arrays_never_panic() {
    // Every truncation and every single-byte change, with the checksum off
    // so the damage reaches the value parser: an error or a value, never a
    // panic or a huge allocation.
    let opts = DecodeOptions {
        verify_checksum: false,
        ..DecodeOptions::default()
    };
    let mut elems = mixed();
    elems.push((1 << 40, Elem::Int(i64::MIN)));
    elems.push((u64::MAX - 5, Elem::Float(f64::NEG_INFINITY)));
    let good = file14(&array_key(b"arr", Some(u64::MAX - 1), &elems), true);
    for cut in 0..good.len() {
        let r: basalt_rdb::Result<Vec<Item>> =
            Reader::from_slice(&good[..cut], opts).and_then(|r| r.collect());
        assert!(r.is_err(), "truncated at {cut} decoded");
    }
    for at in 9..good.len() - 9 {
        for x in [0x01, 0x40, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[at] ^= x;
            let _ = Reader::from_slice(&bad, opts).and_then(|r| r.collect::<Result<Vec<_>, _>>());
        }
    }
}

#[test]
fn doubles_compare_bit_for_bit() {
    assert_ne!(ArrayElem::Float(0.0), ArrayElem::Float(-0.0));
    assert_eq!(ArrayElem::Float(f64::NAN), ArrayElem::Float(f64::NAN));
    assert_ne!(ArrayElem::Float(1.0), ArrayElem::Int(1));
    // A NaN element read twice (slice and stream readers) is the same item.
    let data = file14(&array_key(b"n", None, &[(0, Elem::Float(f64::NAN))]), true);
    let (_, a) = array_of(&data);
    assert!(matches!(a.elements[0].1, ArrayElem::Float(f) if f.is_nan()));
}
