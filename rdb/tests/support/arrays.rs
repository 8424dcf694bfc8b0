//! Redis 8.8 ARRAY values (type 28, `REDIS0014`) assembled byte by byte
//! from the documented layout (see `read_array` in `rdb/src/decode.rs`),
//! for the rdb crate's tests, basalt-tools' tests and the fuzz seeds.
#![allow(dead_code, clippy::indexing_slicing)]

/// An RDB length (6-, 14-, 32- or 64-bit form, the shortest that fits).
pub fn len(out: &mut Vec<u8>, n: u64) {
    basalt_rdb::encode::write_length(out, n);
}

/// A raw RDB string (length + bytes).
pub fn raw(out: &mut Vec<u8>, s: &[u8]) {
    len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// One element as stored.
#[derive(Clone, Debug)]
pub enum Elem {
    /// Tag 0 (SDS), the string stored raw.
    Sds(Vec<u8>),
    /// Tag 0 (SDS), with the RDB string's bytes given as they are (an
    /// int-encoded or LZF string).
    SdsEncoded(Vec<u8>),
    /// Tag 1: 8 bytes little-endian.
    Int(i64),
    /// Tag 2: 8 bytes little-endian IEEE-754.
    Float(f64),
    /// Tag 3 (SMALLSTR), the string stored raw.
    Small(Vec<u8>),
    /// Any tag followed by these bytes (for corrupt inputs).
    Tagged(u64, Vec<u8>),
}

/// The value part of an ARRAY key: count, insert-index flag (and index),
/// then index, tag and payload per element.
pub fn array_value(insert_idx: Option<u64>, elems: &[(u64, Elem)]) -> Vec<u8> {
    let mut v = Vec::new();
    len(&mut v, elems.len() as u64);
    match insert_idx {
        None => v.push(0),
        Some(i) => {
            v.push(1);
            len(&mut v, i);
        }
    }
    for (idx, e) in elems {
        len(&mut v, *idx);
        match e {
            Elem::Sds(s) => {
                v.push(0);
                raw(&mut v, s);
            }
            Elem::SdsEncoded(b) => {
                v.push(0);
                v.extend_from_slice(b);
            }
            Elem::Int(i) => {
                v.push(1);
                v.extend_from_slice(&i.to_le_bytes());
            }
            Elem::Float(f) => {
                v.push(2);
                v.extend_from_slice(&f.to_le_bytes());
            }
            Elem::Small(s) => {
                v.push(3);
                raw(&mut v, s);
            }
            Elem::Tagged(t, b) => {
                len(&mut v, *t);
                v.extend_from_slice(b);
            }
        }
    }
    v
}

/// Type byte 28, the key, the value.
pub fn array_key(key: &[u8], insert_idx: Option<u64>, elems: &[(u64, Elem)]) -> Vec<u8> {
    let mut b = vec![28];
    raw(&mut b, key);
    b.extend_from_slice(&array_value(insert_idx, elems));
    b
}

/// The key librdb 2.3.0's fixture renders as
/// `{"idx":"0","val":"this_is_a_long_sds_string_value_long_enough"},
/// {"idx":"1","val":"42"},{"idx":"2","val":"1.5"},{"idx":"3","val":"abc"}`.
pub fn mixed() -> Vec<(u64, Elem)> {
    vec![
        (
            0,
            Elem::Sds(b"this_is_a_long_sds_string_value_long_enough".to_vec()),
        ),
        (1, Elem::Int(42)),
        (2, Elem::Float(1.5)),
        (3, Elem::Small(b"abc".to_vec())),
    ]
}

/// `REDIS0014` + body + EOF + CRC64 (or eight zero bytes when `crc` is
/// false: checksums off).
pub fn file14(body: &[u8], crc: bool) -> Vec<u8> {
    let mut v = b"REDIS0014".to_vec();
    v.extend_from_slice(body);
    v.push(255);
    let c = if crc {
        basalt_rdb::crc64::checksum(&v)
    } else {
        0
    };
    v.extend_from_slice(&c.to_le_bytes());
    v
}

/// A DUMP payload: type 28, the value, version 14, CRC64.
pub fn payload14(insert_idx: Option<u64>, elems: &[(u64, Elem)]) -> Vec<u8> {
    let mut p = vec![28];
    p.extend_from_slice(&array_value(insert_idx, elems));
    p.extend_from_slice(&14u16.to_le_bytes());
    let c = basalt_rdb::crc64::checksum(&p);
    p.extend_from_slice(&c.to_le_bytes());
    p
}
