//! Hand-assembled inputs for opcodes and corner cases the corpus lacks.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use basalt_rdb::{crc64, DecodeOptions, Error, Item, Reader, Value};

/// Header + body + EOF + CRC.
fn file(header: &[u8], body: &[u8]) -> Vec<u8> {
    let mut v = header.to_vec();
    v.extend_from_slice(body);
    v.push(255);
    let crc = crc64::checksum(&v);
    v.extend_from_slice(&crc.to_le_bytes());
    v
}

fn items(data: &[u8]) -> basalt_rdb::Result<Vec<Item>> {
    Reader::from_slice(data, DecodeOptions::default())?.collect()
}

#[test]
fn key_metadata_is_skipped_with_a_warning() {
    // KEY_META: 1 class, spec, UINT 5, EOF; then STRING k = v.
    let body = [243, 1, 1, 2, 3, 4, 2, 5, 0, 0, 1, b'k', 1, b'v'];
    let data = file(b"REDIS0013", &body);
    let mut r = Reader::from_slice(&data, DecodeOptions::default()).unwrap();
    let got: Vec<Item> = r.by_ref().collect::<Result<_, _>>().unwrap();
    assert!(
        matches!(&got[..], [Item::Entry(e)] if e.key == b"k" && e.value == Value::String(b"v".to_vec()))
    );
    assert_eq!(r.warnings().len(), 1);
}

#[test]
fn metadata_opcodes_attach_to_the_next_key_only() {
    let mut body = vec![253];
    body.extend_from_slice(&1_700_000_000i32.to_le_bytes());
    body.extend_from_slice(&[
        248, 0x40, 200, 249, 7, 0, 1, b'a', 1, b'x', 0, 1, b'b', 1, b'y',
    ]);
    let got = items(&file(b"REDIS0009", &body)).unwrap();
    let Item::Entry(a) = &got[0] else { panic!() };
    let Item::Entry(b) = &got[1] else { panic!() };
    assert_eq!(
        (a.expire_ms, a.lru_idle, a.lfu_freq),
        (Some(1_700_000_000_000), Some(200), Some(7))
    );
    assert_eq!((b.expire_ms, b.lru_idle, b.lfu_freq), (None, None, None));
}

#[test]
fn unknown_and_unsupported_types_name_their_offset() {
    let err = items(&file(b"REDIS0010", &[8, 1, b'k'])).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnknownType {
                offset: 9,
                byte: 8,
                ..
            }
        ),
        "{err}"
    );
    // Redis 8.8's ARRAY (28) is read (tests/array.rs); a bad insert-index
    // flag (here 5) is corrupt at its offset.
    let err = items(&file(b"REDIS0014", &[28, 1, b'k', 0, 5])).unwrap_err();
    assert!(matches!(err, Error::Corrupt { offset: 13, .. }), "{err}");
    // Valkey 9.2's PATH_HASH (23 in VALKEY081) is read too
    // (tests/path_hash.rs); a path without fields is corrupt at its count.
    let err = items(&file(b"VALKEY081", &[23, 1, b'k', 1, 1, b'p', 0])).unwrap_err();
    assert!(matches!(err, Error::Corrupt { offset: 15, .. }), "{err}");
    // Stream types 26 and 27 do not exist before RDB 13 and 14.
    assert!(matches!(
        items(&file(b"REDIS0012", &[26])).unwrap_err(),
        Error::UnknownType { .. }
    ));
    assert!(matches!(
        items(&file(b"REDIS0013", &[27])).unwrap_err(),
        Error::UnknownType { .. }
    ));
    // Type 24 means nothing before RDB 12, and nothing to Valkey.
    assert!(matches!(
        items(&file(b"REDIS0011", &[24])).unwrap_err(),
        Error::UnknownType { .. }
    ));
    assert!(matches!(
        items(&file(b"VALKEY080", &[24])).unwrap_err(),
        Error::UnknownType { .. }
    ));
}

#[test]
fn headers() {
    assert!(matches!(
        items(b"REDIS").unwrap_err(),
        Error::BadMagic { .. }
    ));
    assert!(matches!(
        items(b"REDIS0015").unwrap_err(),
        Error::UnsupportedVersion { version: 15, .. }
    ));
    assert!(items(&file(b"VALKEY081", &[])).unwrap().is_empty());
    // Version 1-4 files have no checksum.
    assert!(items(b"REDIS0004\xff").unwrap().is_empty());
    // An all-zero trailer means checksums were disabled.
    let mut r =
        Reader::from_slice(b"REDIS0010\xff\0\0\0\0\0\0\0\0", DecodeOptions::default()).unwrap();
    assert!(r.next().is_none());
    assert_eq!(r.checksum(), Some(basalt_rdb::Checksum::Disabled));
}

#[test]
fn huge_claims_fail_before_allocating() {
    // A list claiming 2^62 elements, and an LZF string claiming 2^40 bytes.
    let mut body = vec![1, 1, b'k', 0x81];
    body.extend_from_slice(&(1u64 << 62).to_be_bytes());
    assert!(items(&file(b"REDIS0010", &body)).is_err());
    let mut body = vec![0, 1, b'k', 0xC3, 0x01, 0x81];
    body.extend_from_slice(&(1u64 << 40).to_be_bytes());
    body.push(0);
    let err = items(&file(b"REDIS0010", &body)).unwrap_err();
    assert!(err.to_string().contains("LZF"), "{err}");
    // Through `Read` too: a 2^60-byte string.
    let mut body = vec![0, 1, b'k', 0x81];
    body.extend_from_slice(&(1u64 << 60).to_be_bytes());
    let data = file(b"REDIS0010", &body);
    let r: basalt_rdb::Result<Vec<Item>> = Reader::from_read(&data[..], DecodeOptions::default())
        .unwrap()
        .collect();
    assert!(matches!(r.unwrap_err(), Error::TooLong { .. }));
}

#[test]
fn entries_iterator_keeps_only_keys() {
    let body = [250, 1, b'a', 1, b'b', 0, 1, b'k', 1, b'v'];
    let data = file(b"REDIS0010", &body);
    let keys: Vec<_> = Reader::from_slice(&data, DecodeOptions::default())
        .unwrap()
        .entries()
        .collect::<basalt_rdb::Result<_>>()
        .unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].key, b"k");
}

#[test]
fn bytes_after_the_dump_stay_available() {
    let mut data = file(b"REDIS0010", &[0, 1, b'k', 1, b'v']);
    let n = data.len();
    data.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    let mut r = Reader::from_read(&data[..], DecodeOptions::default()).unwrap();
    assert_eq!(r.by_ref().count(), 1);
    let (rest_reader, buffered) = r.into_input().into_parts();
    let mut all = buffered;
    all.extend_from_slice(rest_reader);
    assert_eq!(all, &data[n..]);
    let mut r = Reader::from_slice(&data, DecodeOptions::default()).unwrap();
    assert_eq!(r.by_ref().count(), 1);
    assert_eq!(r.into_input().rest(), b"*1\r\n$4\r\nPING\r\n");
}

// ---- Redis 8.6 / 8.8 streams (types 26 and 27), assembled byte by byte ----

#[path = "support/streams.rs"]
mod streams;
use streams::{raw_id, stream_body};

fn stream_of(data: &[u8]) -> basalt_rdb::Stream {
    let got = items(data).unwrap();
    let [Item::Entry(e)] = &got[..] else {
        panic!("{got:?}")
    };
    let Value::Stream(s) = &e.value else {
        panic!("{:?}", e.value)
    };
    (**s).clone()
}

#[test]
fn stream_with_idmp_state_rdb13() {
    let s = stream_of(&file(b"REDIS0013", &stream_body(26, false)));
    assert_eq!(s.entries.len(), 1);
    assert_eq!(s.entries[0].id, basalt_rdb::StreamId::new(1, 1));
    assert_eq!(s.entries[0].fields, vec![(b"f".to_vec(), b"v".to_vec())]);
    let g = &s.groups[0];
    assert_eq!(g.pel.len(), 1);
    assert_eq!(g.consumers[0].pel, vec![basalt_rdb::StreamId::new(1, 1)]);
    assert_eq!(g.consumers[0].active_time_ms, Some(1_700_000_000_002));
    assert!(g.nacked.is_empty());
    let m = s.idmp.as_deref().unwrap();
    assert_eq!((m.duration, m.max_entries), (100, 50));
    assert_eq!((m.iids_added, m.iids_duplicates), (1, 3));
    assert_eq!(m.producers.len(), 1);
    assert_eq!(m.producers[0].pid, b"p");
    assert_eq!(
        m.producers[0].entries,
        vec![(b"i1".to_vec(), basalt_rdb::StreamId::new(1, 1))]
    );
}

#[test]
fn stream_with_nack_zone_rdb14() {
    let s = stream_of(&file(b"REDIS0014", &stream_body(27, true)));
    let g = &s.groups[0];
    assert!(g.consumers[0].pel.is_empty());
    assert_eq!(g.nacked, vec![basalt_rdb::StreamId::new(1, 1)]);
    assert!(s.idmp.is_some());
    // Type 27 with an owned entry and an empty NACK zone.
    let s = stream_of(&file(b"REDIS0014", &stream_body(27, false)));
    assert!(s.groups[0].nacked.is_empty());
    assert_eq!(s.groups[0].consumers[0].pel.len(), 1);
}

#[test]
fn nack_of_an_owned_entry_is_corrupt() {
    // Consumer owns 1-1 and the NACK zone lists it too.
    let mut b = stream_body(27, false);
    // Replace the empty NACK zone (the byte after the consumer PEL) by one id.
    let tail_len = 3 + 9 + 2; // IDMP block
    let nack_at = b.len() - tail_len - 1;
    assert_eq!(b[nack_at], 0);
    let mut zone = vec![1];
    zone.extend_from_slice(&raw_id(1, 1));
    b.splice(nack_at..=nack_at, zone);
    let err = items(&file(b"REDIS0014", &b)).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("NACK"), "{err}");
}

#[test]
fn truncated_idmp_block_names_its_offset() {
    let b = stream_body(26, false);
    let cut = &b[..b.len() - 2];
    let mut data = b"REDIS0013".to_vec();
    data.extend_from_slice(cut);
    let err = items(&data).unwrap_err();
    assert!(err.to_string().contains("IDMP"), "{err}");
}

#[test]
fn writer_refuses_redis_8_stream_state() {
    use basalt_rdb::{encode_dump, EncodeOptions, Target};
    for (ty, nack, what) in [(26, false, "IDMP"), (27, true, "XNACK")] {
        let header: &[u8] = if ty == 26 { b"REDIS0013" } else { b"REDIS0014" };
        let s = stream_of(&file(header, &stream_body(ty, nack)));
        for t in [
            Target::Redis9,
            Target::Redis10,
            Target::Redis11,
            Target::Redis12,
            Target::Valkey80,
        ] {
            let err = encode_dump(
                &Value::Stream(Box::new(s.clone())),
                &EncodeOptions::for_target(t),
            )
            .unwrap_err();
            assert!(
                matches!(err, Error::Unrepresentable { .. }) && err.to_string().contains(what),
                "{err}"
            );
        }
    }
    // A stream whose IDMP block is only Redis's default configuration
    // carries nothing the older formats lose: written, without the block.
    let mut s = stream_of(&file(b"REDIS0013", &stream_body(26, false)));
    s.idmp = Some(Box::new(basalt_rdb::StreamIdmp {
        duration: 100,
        max_entries: 100,
        ..Default::default()
    }));
    let p = encode_dump(
        &Value::Stream(Box::new(s.clone())),
        &EncodeOptions::default(),
    )
    .unwrap();
    let (back, _) = basalt_rdb::decode_dump(&p, &DecodeOptions::default(), None).unwrap();
    let Value::Stream(back) = back else { panic!() };
    assert_eq!(back.entries, s.entries);
    assert_eq!(back.idmp, None);
}

#[test]
fn damaged_redis_8_streams_never_panic() {
    // Every truncation and every single-byte change of type 26/27 values,
    // decoded with the checksum off so the damage reaches the value parser:
    // an error or a value, never a panic or a huge allocation.
    let opts = DecodeOptions {
        verify_checksum: false,
        ..DecodeOptions::default()
    };
    for (header, ty, nack) in [
        (b"REDIS0013", 26, false),
        (b"REDIS0014", 27, true),
        (b"REDIS0014", 27, false),
    ] {
        let good = streams::file(header, &stream_body(ty, nack));
        for cut in 0..good.len() {
            let r: basalt_rdb::Result<Vec<Item>> =
                Reader::from_slice(&good[..cut], opts).and_then(|r| r.collect());
            assert!(r.is_err(), "truncated at {cut} decoded");
        }
        for at in 9..good.len() - 9 {
            for x in [0x01, 0x40, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[at] ^= x;
                let _ =
                    Reader::from_slice(&bad, opts).and_then(|r| r.collect::<Result<Vec<_>, _>>());
            }
        }
    }
}

/// A stream node whose master entry claims i64::MAX live entries and one
/// deleted: an error, not an overflow panic.
#[test]
fn stream_node_counts_that_overflow_are_corrupt() {
    for (count, deleted) in [(i64::MAX, 1), (1, i64::MAX), (i64::MAX, i64::MAX)] {
        let mut lp = basalt_rdb::listpack::Builder::new();
        for v in [count, deleted, 0, 0] {
            lp.push_int(v);
        }
        let lp = lp.finish();
        let mut b = vec![15, 1, b's', 1, 16];
        b.extend_from_slice(&raw_id(1, 0));
        b.push(lp.len() as u8);
        b.extend_from_slice(&lp);
        b.extend_from_slice(&[1, 1, 0, 0]); // length, last id, no groups
        let err = items(&file(b"REDIS0009", &b)).unwrap_err();
        assert!(err.to_string().contains("stream listpack invalid"), "{err}");
    }
}

/// Found by the `rdb_convert` fuzz target: a pre-GA function library
/// (opcode 246) stores its name apart from the code, so a name with a
/// space (or a newline, or none) made GA code whose shebang does not name
/// it, and the converted dump did not load. The writer refuses it now.
#[test]
fn writer_refuses_a_function_whose_code_would_not_name_it() {
    use basalt_rdb::{EncodeOptions, Function, Writer};
    let mut body = vec![246];
    for s in [&b"my lib"[..], b"LUA"] {
        body.push(s.len() as u8);
        body.extend_from_slice(s);
    }
    body.push(0); // no description
    let code = b"redis.register_function('f', function() return 1 end)";
    body.push(code.len() as u8);
    body.extend_from_slice(code);
    let read = items(&file(b"REDIS0010", &body)).unwrap();
    let Some(Item::Function(f)) = read.first() else {
        panic!("{read:?}")
    };
    assert!(!f.code_names_itself());
    let mut w = Writer::new(Vec::new(), EncodeOptions::default()).unwrap();
    let err = w.function(f).unwrap_err();
    assert!(matches!(err, Error::Unrepresentable { .. }), "{err}");
    // The writer is still usable and its dump loads.
    let ok = Function::from_code(b"#!LUA name=mylib\nreturn 1".to_vec()).unwrap();
    assert!(ok.code_names_itself());
    w.function(&ok).unwrap();
    let out = w.finish().unwrap();
    let back = items(&out).unwrap();
    assert!(matches!(back.first(), Some(Item::Function(g)) if g.library == b"mylib"));
}

/// Found by the `rdb_convert` fuzz target: a hash field expiry above
/// 2^63-1 ms (a Redis 12 HASH_METADATA value can decode to one) was
/// written for Valkey 9 as a negative number, which reads back as "no
/// expiry". Refused now, as Redis 12 refuses expiries above 2^48-1.
#[test]
fn writer_refuses_hash_field_expiries_it_would_lose() {
    use basalt_rdb::{EncodeOptions, Entry, HashField, Target, Writer};
    for target in [Target::Valkey80, Target::Redis12] {
        let mut f = HashField::new("f", "v");
        f.expire_ms = Some(u64::MAX - 5);
        let e = Entry::new("h", Value::Hash(vec![f, HashField::new("g", "w")]));
        let mut w = Writer::new(Vec::new(), EncodeOptions::for_target(target)).unwrap();
        let err = w.entry(&e).unwrap_err();
        assert!(
            matches!(err, Error::Unrepresentable { .. }),
            "{target:?}: {err}"
        );
    }
}

/// Found by the `rdb_convert` fuzz target: a plain-encoded set holding the
/// same member twice decoded, and converting it (as an intset) dropped the
/// copy. Redis refuses such sets, hashes and sorted sets when loading.
#[test]
fn duplicates_in_plain_collections_are_corrupt() {
    // type 2 (set): 2 members "a", "a".
    let set = [2u8, 1, b'k', 2, 1, b'a', 1, b'a'];
    let err = items(&file(b"REDIS0009", &set)).unwrap_err();
    assert!(err.to_string().contains("duplicate set members"), "{err}");
    // type 4 (hash): f=1, f=2.
    let hash = [4u8, 1, b'h', 2, 1, b'f', 1, b'1', 1, b'f', 1, b'2'];
    let err = items(&file(b"REDIS0009", &hash)).unwrap_err();
    assert!(err.to_string().contains("duplicate hash fields"), "{err}");
    // type 5 (zset, binary scores): m twice.
    let mut zset = vec![5u8, 1, b'z', 2];
    for s in [1.0f64, 2.0] {
        zset.extend_from_slice(&[1, b'm']);
        zset.extend_from_slice(&s.to_le_bytes());
    }
    let err = items(&file(b"REDIS0009", &zset)).unwrap_err();
    assert!(
        err.to_string().contains("duplicate sorted set members"),
        "{err}"
    );
    // Distinct members are fine.
    let ok = [2u8, 1, b'k', 2, 1, b'a', 1, b'b'];
    assert_eq!(items(&file(b"REDIS0009", &ok)).unwrap().len(), 1);
}

/// Found by the `rdb_convert` fuzz target: a listpack hash holding a field
/// twice (accepted, as Redis does without deep sanitisation) was converted
/// for Valkey 9 as a plain hash, which no server loads. Converters check
/// `Value::has_duplicates` and refuse such keys.
#[test]
fn duplicate_members_are_detected_in_the_value_model() {
    use basalt_rdb::HashField;
    let dup_hash = Value::Hash(vec![HashField::new("f", "1"), HashField::new("f", "2")]);
    assert!(dup_hash.has_duplicates());
    let many: Vec<Vec<u8>> = (0..100).map(|i| format!("m{i}").into_bytes()).collect();
    assert!(!Value::Set(many.clone()).has_duplicates());
    let mut with_dup = many;
    with_dup.push(b"m57".to_vec());
    assert!(Value::Set(with_dup).has_duplicates());
    assert!(Value::SortedSet(vec![(b"a".to_vec(), 1.0), (b"a".to_vec(), 2.0)]).has_duplicates());
    assert!(!Value::List(vec![b"x".to_vec(), b"x".to_vec()]).has_duplicates());
}

/// A listpack of the given entries (each already encoded with its
/// back-length), as an RDB string.
fn listpack_blob(entries: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = entries.concat();
    let total = 4 + 2 + body.len() + 1;
    let mut lp = (total as u32).to_le_bytes().to_vec();
    lp.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    lp.extend_from_slice(&body);
    lp.push(0xff);
    let mut out = vec![lp.len() as u8]; // every test listpack is under 64 bytes
    out.extend_from_slice(&lp);
    out
}

/// Found by the `restore_payload` fuzz target: a listpack set holding "x"
/// twice decoded as a set with a duplicate. The compact encodings are now
/// checked as Redis's deep sanitisation (`sanitize-dump-payload yes`)
/// checks them; an integer entry and a string entry with the same digits
/// are the same member.
#[test]
fn duplicates_in_compact_collections_are_corrupt() {
    let x: &[u8] = &[0x81, b'x', 2]; // 6-bit string "x"
    let y: &[u8] = &[0x81, b'y', 2];
    let one_int: &[u8] = &[0x01, 1]; // 7-bit unsigned 1
    let one_str: &[u8] = &[0x81, b'1', 2];
    let two_int: &[u8] = &[0x02, 1];
    let value = |ty: u8, entries: &[&[u8]]| {
        let mut v = vec![ty, 1, b'k'];
        v.extend_from_slice(&listpack_blob(entries));
        file(b"REDIS0011", &v)
    };
    // type 20: set listpack.
    let err = items(&value(20, &[x, x])).unwrap_err();
    assert!(err.to_string().contains("duplicate set members"), "{err}");
    let err = items(&value(20, &[one_int, one_str])).unwrap_err();
    assert!(err.to_string().contains("duplicate set members"), "{err}");
    assert_eq!(items(&value(20, &[x, y])).unwrap().len(), 1);
    // type 16: hash listpack, field x twice.
    let err = items(&value(16, &[x, one_int, x, two_int])).unwrap_err();
    assert!(err.to_string().contains("duplicate hash fields"), "{err}");
    assert_eq!(
        items(&value(16, &[x, one_int, y, two_int])).unwrap().len(),
        1
    );
    // type 17: sorted set listpack, member x twice.
    let err = items(&value(17, &[x, one_int, x, two_int])).unwrap_err();
    assert!(
        err.to_string().contains("duplicate sorted set members"),
        "{err}"
    );
    assert_eq!(
        items(&value(17, &[x, one_int, y, two_int])).unwrap().len(),
        1
    );
}
