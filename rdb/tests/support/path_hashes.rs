//! Valkey 9.2 PATH_HASH values (type 23 under `VALKEY` 81) assembled byte
//! by byte from the layout valkey's `rdbSaveObject` writes (see
//! `read_path_hash` in `rdb/src/decode.rs`), for the rdb crate's tests,
//! basalt-tools' tests and the fuzz seeds.
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

/// One path as stored: the path's RDB string bytes exactly as given (so
/// a test can use an int-encoded or LZF string), then its fields.
pub struct Path {
    /// The path's encoded RDB string (length prefix included).
    pub encoded: Vec<u8>,
    /// (field, value) pairs, written raw.
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A path with a raw string and the given fields.
pub fn path(p: &[u8], fields: &[(&[u8], &[u8])]) -> Path {
    let mut encoded = Vec::new();
    raw(&mut encoded, p);
    Path {
        encoded,
        fields: fields
            .iter()
            .map(|(f, v)| (f.to_vec(), v.to_vec()))
            .collect(),
    }
}

/// The value part: path count, then per path its string, field count and
/// field/value strings.
pub fn path_hash_value(paths: &[Path]) -> Vec<u8> {
    let mut v = Vec::new();
    len(&mut v, paths.len() as u64);
    for p in paths {
        v.extend_from_slice(&p.encoded);
        len(&mut v, p.fields.len() as u64);
        for (f, x) in &p.fields {
            raw(&mut v, f);
            raw(&mut v, x);
        }
    }
    v
}

/// Type byte 23, the key, the value.
pub fn path_hash_key(key: &[u8], paths: &[Path]) -> Vec<u8> {
    let mut b = vec![23];
    raw(&mut b, key);
    b.extend_from_slice(&path_hash_value(paths));
    b
}

/// `VALKEY081` + body + EOF + CRC64 (or eight zero bytes when `crc` is
/// false: checksums off).
pub fn file81(body: &[u8], crc: bool) -> Vec<u8> {
    let mut v = b"VALKEY081".to_vec();
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

/// A DUMP payload as Valkey 9.2 writes it: type 23, the value, version
/// 81, CRC64.
pub fn payload81(value: &[u8]) -> Vec<u8> {
    let mut p = vec![23];
    p.extend_from_slice(value);
    p.extend_from_slice(&81u16.to_le_bytes());
    let c = basalt_rdb::crc64::checksum(&p);
    p.extend_from_slice(&c.to_le_bytes());
    p
}

/// Three paths as PHSET would build them: the root path (empty), a
/// nested one, and one holding an integer and a binary value.
pub fn sample() -> Vec<Path> {
    vec![
        path(b"", &[(b"root", b"1")]),
        path(b"a/b", &[(b"f", b"v"), (b"g", b"w")]),
        path(b"a/c", &[(b"n", b"12345"), (b"bin", &[0, 0xff, b'\n'])]),
    ]
}
