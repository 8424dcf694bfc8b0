//! Value decoding: lengths, strings, and every value encoding, generic over
//! an [`Input`]. Shared by the file reader and DUMP payloads.

use crate::error::{Error, Result};
use crate::format::{module_name, module_op, Kind, QUICKLIST_PACKED, QUICKLIST_PLAIN};
use crate::input::Input;
use crate::listpack::{self, Elem};
use crate::value::{
    has_duplicate, Array, ArrayElem, HashField, ModuleValue, PathFields, PathHash, Value,
};
use crate::{intset, lzf, stream, ziplist};
use std::borrow::Cow;

/// What to do with module values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModuleMode {
    /// Report them as [`Value::Module`] with the raw payload (default).
    #[default]
    Report,
    /// Skip keys holding module values (and MODULE_AUX data), recording a
    /// warning for each (see `Reader::warnings`).
    Skip,
    /// Fail with [`Error::Unsupported`] naming the module.
    Error,
}

/// Decoding options.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    /// Module values: report or fail.
    pub modules: ModuleMode,
    /// Skip keys whose collection is empty, as Redis does when loading
    /// (`true`, default) or yield them (`false`).
    pub skip_empty_keys: bool,
    /// Verify the trailing CRC64 (default `true`).
    pub verify_checksum: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            modules: ModuleMode::Report,
            skip_empty_keys: true,
            verify_checksum: true,
        }
    }
}

/// Allocations handed back by the caller (`Reader::recycle`) for the
/// decoder to reuse. A dump of millions of small keys otherwise spends a
/// fifth of its decoding time allocating and freeing the key, every
/// element and every collection (measured on `basalt-rdb check`).
/// Bounded: at most [`SPARE_BUFS`] buffers holding [`SPARE_HELD`] bytes
/// and [`SPARE_VECS`] collection vectors of at most [`SPARE_VEC_CAP`]
/// elements are kept. (Strings decoded as integers or from LZF are
/// allocated, not taken from here, so more come back than go out: without
/// the count bound the pool would grow to millions of tiny buffers.)
#[derive(Default)]
pub struct Spare {
    bytes: Vec<Vec<u8>>,
    /// Capacity held in `bytes`.
    held: usize,
    lists: Vec<Vec<Vec<u8>>>,
    fields: Vec<Vec<HashField>>,
    pairs: Vec<Vec<(Vec<u8>, f64)>>,
}

/// String buffers kept for reuse.
const SPARE_BUFS: usize = 1024;
/// Bytes of string buffers kept for reuse.
const SPARE_HELD: usize = 4 << 20;
/// Largest string buffer kept.
const SPARE_BUF_CAP: usize = 64 << 10;
/// Collection vectors kept, per shape.
const SPARE_VECS: usize = 16;
/// Largest collection vector kept (elements).
const SPARE_VEC_CAP: usize = 1 << 12;

impl Spare {
    /// `s` in a reused buffer when there is one.
    #[inline]
    pub(crate) fn bytes_from(&mut self, s: &[u8]) -> Vec<u8> {
        match self.bytes.pop() {
            Some(mut v) => {
                self.held -= v.capacity();
                v.extend_from_slice(s);
                v
            }
            None => s.to_vec(),
        }
    }

    /// An empty buffer, reused when there is one.
    #[inline]
    fn buf(&mut self) -> Vec<u8> {
        match self.bytes.pop() {
            Some(v) => {
                self.held -= v.capacity();
                v
            }
            None => Vec::new(),
        }
    }

    /// An element's bytes (integers as decimal text).
    #[inline]
    fn elem(&mut self, e: &Elem<'_>) -> Vec<u8> {
        match e {
            Elem::Str(s) => self.bytes_from(s),
            Elem::Int(i) => self.bytes_from(itoa::Buffer::new().format(*i).as_bytes()),
        }
    }

    #[inline]
    fn put_bytes(&mut self, mut v: Vec<u8>) {
        let cap = v.capacity();
        if cap != 0
            && cap <= SPARE_BUF_CAP
            && self.held + cap <= SPARE_HELD
            && self.bytes.len() < SPARE_BUFS
        {
            v.clear();
            self.held += cap;
            self.bytes.push(v);
        }
    }

    fn list(&mut self, cap: usize) -> Vec<Vec<u8>> {
        match self.lists.pop() {
            Some(mut v) => {
                v.reserve(cap);
                v
            }
            None => Vec::with_capacity(cap),
        }
    }

    fn fields(&mut self, cap: usize) -> Vec<HashField> {
        match self.fields.pop() {
            Some(mut v) => {
                v.reserve(cap);
                v
            }
            None => Vec::with_capacity(cap),
        }
    }

    fn pairs(&mut self, cap: usize) -> Vec<(Vec<u8>, f64)> {
        match self.pairs.pop() {
            Some(mut v) => {
                v.reserve(cap);
                v
            }
            None => Vec::with_capacity(cap),
        }
    }

    /// Takes back a decoded key's allocations.
    pub fn put(&mut self, key: Vec<u8>, value: Value) {
        self.put_bytes(key);
        match value {
            Value::String(s) => self.put_bytes(s),
            Value::List(mut v) | Value::Set(mut v) => {
                for s in v.drain(..) {
                    self.put_bytes(s);
                }
                if v.capacity() <= SPARE_VEC_CAP && self.lists.len() < SPARE_VECS {
                    self.lists.push(v);
                }
            }
            Value::Hash(mut v) => {
                for f in v.drain(..) {
                    self.put_bytes(f.field);
                    self.put_bytes(f.value);
                }
                if v.capacity() <= SPARE_VEC_CAP && self.fields.len() < SPARE_VECS {
                    self.fields.push(v);
                }
            }
            Value::SortedSet(mut v) => {
                for (m, _) in v.drain(..) {
                    self.put_bytes(m);
                }
                if v.capacity() <= SPARE_VEC_CAP && self.pairs.len() < SPARE_VECS {
                    self.pairs.push(v);
                }
            }
            _ => {}
        }
    }
}

/// A length prefix or a special string encoding.
enum Len {
    Plain(u64),
    Int(u8),
    Lzf,
}

fn read_len_raw<I: Input>(inp: &mut I, what: &'static str) -> Result<Len> {
    let at = inp.offset();
    let b = inp.read_u8(what)?;
    Ok(match b >> 6 {
        0 => Len::Plain(u64::from(b & 0x3f)),
        1 => Len::Plain(u64::from(b & 0x3f) << 8 | u64::from(inp.read_u8(what)?)),
        2 => match b {
            0x80 => Len::Plain(u64::from(u32::from_be_bytes(inp.array(what)?))),
            0x81 => Len::Plain(u64::from_be_bytes(inp.array(what)?)),
            _ => {
                return Err(Error::corrupt(
                    at,
                    format!("bad length prefix {b:#04x} for {what}"),
                ))
            }
        },
        _ => match b & 0x3f {
            0..=2 => Len::Int(b & 0x3f),
            3 => Len::Lzf,
            e => {
                return Err(Error::corrupt(
                    at,
                    format!("unknown string encoding {e} for {what}"),
                ))
            }
        },
    })
}

/// Read a plain length.
pub fn read_length<I: Input>(inp: &mut I, what: &'static str) -> Result<u64> {
    let at = inp.offset();
    match read_len_raw(inp, what)? {
        Len::Plain(n) => Ok(n),
        _ => Err(Error::corrupt(
            at,
            format!("expected a length for {what}, found a string encoding"),
        )),
    }
}

/// Read a string, borrowing it when stored raw. Returns the bytes and the
/// offset where its data starts.
pub fn read_blob<'i, I: Input>(inp: &'i mut I, what: &'static str) -> Result<(Cow<'i, [u8]>, u64)> {
    let at = inp.offset();
    match read_len_raw(inp, what)? {
        Len::Plain(n) => {
            let data_at = inp.offset();
            Ok((Cow::Borrowed(inp.take(n, what)?), data_at))
        }
        Len::Int(w) => {
            let v = read_int_string(inp, w, what)?;
            Ok((
                Cow::Owned(itoa::Buffer::new().format(v).as_bytes().to_vec()),
                at,
            ))
        }
        Len::Lzf => {
            let (v, data_at) = read_lzf(inp, at, what, Vec::new())?;
            Ok((Cow::Owned(v), data_at))
        }
    }
}

/// The value of an integer-encoded string of width code `w`.
#[inline]
fn read_int_string<I: Input>(inp: &mut I, w: u8, what: &'static str) -> Result<i64> {
    Ok(match w {
        0 => i64::from(inp.read_u8(what)? as i8),
        1 => i64::from(i16::from_le_bytes(inp.array(what)?)),
        _ => i64::from(i32::from_le_bytes(inp.array(what)?)),
    })
}

/// An LZF string (after its encoding byte at `at`), decompressed into
/// `out`, and the offset of its compressed data.
fn read_lzf<I: Input>(
    inp: &mut I,
    at: u64,
    what: &'static str,
    out: Vec<u8>,
) -> Result<(Vec<u8>, u64)> {
    let clen = read_length(inp, what)?;
    let len = read_length(inp, what)?;
    let data_at = inp.offset();
    if len > clen.saturating_mul(lzf::MAX_EXPANSION).saturating_add(64) {
        return Err(Error::corrupt(
            at,
            format!("LZF {what} claims {len} bytes from {clen} compressed bytes"),
        ));
    }
    let len = usize::try_from(len).map_err(|_| Error::corrupt(at, "LZF length overflow"))?;
    let comp = inp.take(clen, what)?;
    let v = lzf::decompress_into(comp, len, out).map_err(|e| {
        Error::corrupt(
            data_at,
            format!("LZF data of {what} does not decompress: {e:?}"),
        )
    })?;
    Ok((v, data_at))
}

/// Read a string as owned bytes.
#[inline]
pub fn read_string<I: Input>(inp: &mut I, what: &'static str) -> Result<Vec<u8>> {
    Ok(read_blob(inp, what)?.0.into_owned())
}

/// Read a string as owned bytes, in a reused buffer when there is one.
#[inline]
pub fn read_string_in<I: Input>(
    inp: &mut I,
    what: &'static str,
    spare: &mut Spare,
) -> Result<Vec<u8>> {
    let at = inp.offset();
    match read_len_raw(inp, what)? {
        Len::Plain(n) => {
            let s = inp.take(n, what)?;
            Ok(spare.bytes_from(s))
        }
        Len::Int(w) => {
            let v = read_int_string(inp, w, what)?;
            Ok(spare.bytes_from(itoa::Buffer::new().format(v).as_bytes()))
        }
        Len::Lzf => {
            let buf = spare.buf();
            Ok(read_lzf(inp, at, what, buf)?.0)
        }
    }
}

/// Read a millisecond timestamp (8 bytes LE).
pub fn read_ms<I: Input>(inp: &mut I, what: &'static str) -> Result<i64> {
    Ok(i64::from_le_bytes(inp.array(what)?))
}

fn read_ascii_double<I: Input>(inp: &mut I) -> Result<f64> {
    let at = inp.offset();
    let n = inp.read_u8("score length")?;
    match n {
        253 => Ok(f64::NAN),
        254 => Ok(f64::INFINITY),
        255 => Ok(f64::NEG_INFINITY),
        _ => {
            let s = inp.take(u64::from(n), "score")?;
            parse_score(s).ok_or_else(|| Error::corrupt(at, "expected an ASCII double score"))
        }
    }
}

/// Parse a score stored as text (ziplists, listpacks, ASCII zsets).
pub fn parse_score(s: &[u8]) -> Option<f64> {
    if let Some(v) = parse_simple_decimal(s) {
        return Some(v);
    }
    let t = std::str::from_utf8(s).ok()?;
    t.parse::<f64>()
        .ok()
        .or_else(|| match t.to_ascii_lowercase().as_str() {
            "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
            "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        })
}

/// `-?digits(.digits)?` with at most 15 digits in all, exactly: the digits
/// make an integer below 2^53 and the divisor is a power of ten below
/// 10^16, both exact doubles, so the one correctly rounded division gives
/// the correctly rounded value, as a full parser would (Clinger's fast
/// path). Anything else: `None`, for the full parser.
#[inline]
fn parse_simple_decimal(s: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (neg, body) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    if body.is_empty() || body.len() > 16 {
        return None;
    }
    let mut m: u64 = 0;
    let mut digits = 0usize;
    let mut frac: Option<usize> = None;
    for (i, &c) in body.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                m = m * 10 + u64::from(c - b'0');
                digits += 1;
            }
            b'.' if frac.is_none() => frac = Some(body.len() - i - 1),
            _ => return None,
        }
    }
    if digits == 0 || digits > 15 {
        return None;
    }
    let v = m as f64 / *POW10.get(frac.unwrap_or(0))?;
    Some(if neg { -v } else { v })
}

fn elem_score(e: &Elem<'_>, at: u64) -> Result<f64> {
    match e {
        Elem::Int(i) => Ok(*i as f64),
        Elem::Str(s) => {
            parse_score(s).ok_or_else(|| Error::corrupt(at, "expected a numeric score"))
        }
    }
}

fn strings<I: Input>(inp: &mut I, what: &'static str, spare: &mut Spare) -> Result<Vec<Vec<u8>>> {
    let n = read_length(inp, what)?;
    let mut v = spare.list(inp.capacity_for(n));
    for _ in 0..n {
        v.push(read_string_in(inp, what, spare)?);
    }
    Ok(v)
}

/// The element count a ziplist / listpack header claims (0 when it says
/// "unknown"), capped by what the blob could hold: a capacity hint only,
/// the walk validates every element.
fn packed_count_hint(blob: &[u8], is_listpack: bool) -> usize {
    let at = if is_listpack { 4 } else { 8 };
    let n = match blob.get(at..at + 2) {
        Some(&[a, b]) => usize::from(u16::from_le_bytes([a, b])),
        _ => 0,
    };
    if n == usize::from(u16::MAX) {
        0
    } else {
        n.min(blob.len() / 2)
    }
}

/// Collect the elements of a ziplist or listpack blob as owned bytes.
fn packed_elems(
    blob: &[u8],
    base: u64,
    is_listpack: bool,
    spare: &mut Spare,
) -> Result<Vec<Vec<u8>>> {
    let mut v = spare.list(packed_count_hint(blob, is_listpack));
    let push = |e: Elem<'_>| {
        v.push(spare.elem(&e));
        Ok(())
    };
    if is_listpack {
        listpack::for_each(blob, base, push)?;
    } else {
        ziplist::for_each(blob, base, push)?;
    }
    Ok(v)
}

fn hash_from_packed(
    blob: &[u8],
    base: u64,
    is_listpack: bool,
    spare: &mut Spare,
) -> Result<Vec<HashField>> {
    let mut out = spare.fields(packed_count_hint(blob, is_listpack) / 2);
    let mut field: Option<Vec<u8>> = None;
    let mut f = |e: Elem<'_>| {
        match field.take() {
            None => field = Some(spare.elem(&e)),
            Some(k) => out.push(HashField {
                field: k,
                value: spare.elem(&e),
                expire_ms: None,
            }),
        }
        Ok(())
    };
    if is_listpack {
        listpack::for_each(blob, base, &mut f)?;
    } else {
        ziplist::for_each(blob, base, &mut f)?;
    }
    if field.is_some() {
        return Err(Error::corrupt(
            base,
            "expected field/value pairs, found an odd element count",
        ));
    }
    Ok(out)
}

fn zset_from_packed(
    blob: &[u8],
    base: u64,
    is_listpack: bool,
    spare: &mut Spare,
) -> Result<Vec<(Vec<u8>, f64)>> {
    let mut out = spare.pairs(packed_count_hint(blob, is_listpack) / 2);
    let mut member: Option<Vec<u8>> = None;
    let mut f = |e: Elem<'_>| {
        match member.take() {
            None => member = Some(spare.elem(&e)),
            Some(m) => out.push((m, elem_score(&e, base)?)),
        }
        Ok(())
    };
    if is_listpack {
        listpack::for_each(blob, base, &mut f)?;
    } else {
        ziplist::for_each(blob, base, &mut f)?;
    }
    if member.is_some() {
        return Err(Error::corrupt(
            base,
            "expected member/score pairs, found an odd element count",
        ));
    }
    Ok(out)
}

fn hash_listpack_ex(blob: &[u8], base: u64) -> Result<Vec<HashField>> {
    let elems = listpack::collect(blob, base)?;
    if elems.len() % 3 != 0 {
        return Err(Error::corrupt(
            base,
            "expected field/value/ttl triples in listpack-ex hash",
        ));
    }
    let mut out = Vec::with_capacity(elems.len() / 3);
    for t in elems.chunks_exact(3) {
        if let [f, v, ttl] = t {
            let ttl = ttl
                .as_int()
                .ok_or_else(|| Error::corrupt(base, "expected an integer TTL"))?;
            out.push(HashField {
                field: f.to_vec(),
                value: v.to_vec(),
                expire_ms: if ttl == 0 { None } else { Some(ttl as u64) },
            });
        }
    }
    Ok(out)
}

/// Read a module value (type 7 or MODULE_AUX payload): the opcode-tagged
/// fields up to EOF, kept raw.
pub fn read_module_body<I: Input>(inp: &mut I, id: u64) -> Result<ModuleValue> {
    inp.begin_capture();
    let res = skip_module_fields(inp);
    let raw = inp.end_capture();
    res?;
    let (name, encver) = module_name(id);
    Ok(ModuleValue {
        id,
        name,
        encver,
        raw,
    })
}

/// Skip a KEY_META block (Redis 8.6+, after its opcode): a class count, then
/// per class a 4-byte class spec and module-encoded fields up to EOF.
/// Returns the class specs found.
pub fn skip_key_meta<I: Input>(inp: &mut I) -> Result<Vec<u32>> {
    let n = read_length(inp, "key metadata class count")?;
    let mut specs = Vec::new();
    for _ in 0..n {
        specs.push(u32::from_le_bytes(inp.array("key metadata class spec")?));
        skip_module_fields(inp)?;
    }
    Ok(specs)
}

fn skip_module_fields<I: Input>(inp: &mut I) -> Result<()> {
    loop {
        let at = inp.offset();
        match read_length(inp, "module opcode")? {
            module_op::EOF => return Ok(()),
            module_op::SINT | module_op::UINT => {
                read_length(inp, "module integer")?;
            }
            module_op::FLOAT => {
                inp.take(4, "module float")?;
            }
            module_op::DOUBLE => {
                inp.take(8, "module double")?;
            }
            module_op::STRING => {
                read_blob(inp, "module string")?;
            }
            op => return Err(Error::corrupt(at, format!("unknown module opcode {op}"))),
        }
    }
}

/// Array element tags (Redis 8.8, `sparsearray.h`).
mod array_tag {
    pub const SDS: u64 = 0;
    pub const INT: u64 = 1;
    pub const FLOAT: u64 = 2;
    pub const SMALLSTR: u64 = 3;
}

/// The fewest bytes one array element takes: a one-byte index, a one-byte
/// tag and a one-byte string length (an empty string).
const ARRAY_ELEM_MIN_BYTES: u64 = 3;

/// A Redis 8.8 ARRAY value (type 28): element count, insert-cursor flag
/// (0 or 1) and cursor, then per element its index (a plain length,
/// strictly increasing), a tag and the tagged payload.
fn read_array<I: Input>(inp: &mut I, spare: &mut Spare) -> Result<Array> {
    let count_at = inp.offset();
    let count = read_length(inp, "array element count")?;
    let flag_at = inp.offset();
    let insert_idx = match read_length(inp, "array insert-index flag")? {
        0 => None,
        1 => Some(read_length(inp, "array insert index")?),
        f => {
            return Err(Error::corrupt(
                flag_at,
                format!("expected array insert-index flag 0 or 1, found {f}"),
            ))
        }
    };
    if let Some(left) = inp.remaining() {
        if count > left / ARRAY_ELEM_MIN_BYTES {
            return Err(Error::corrupt(
                count_at,
                format!(
                    "array claims {count} elements but only {left} bytes remain \
                     (each takes at least {ARRAY_ELEM_MIN_BYTES})"
                ),
            ));
        }
    }
    // At most a third of the bytes left (slices, checked above) or 4096
    // (streams): beyond that the vector grows only as elements arrive.
    let mut elements = Vec::with_capacity(inp.capacity_for(count));
    let mut prev: Option<u64> = None;
    for _ in 0..count {
        let idx_at = inp.offset();
        let idx = read_length(inp, "array element index")?;
        if let Some(p) = prev {
            if idx <= p {
                return Err(Error::corrupt(
                    idx_at,
                    format!("expected an array index above {p}, found {idx}"),
                ));
            }
        }
        prev = Some(idx);
        let tag_at = inp.offset();
        let elem = match read_length(inp, "array element tag")? {
            array_tag::SDS => ArrayElem::Str(read_string_in(inp, "array string element", spare)?),
            array_tag::INT => {
                ArrayElem::Int(i64::from_le_bytes(inp.array("array integer element")?))
            }
            array_tag::FLOAT => {
                ArrayElem::Float(f64::from_le_bytes(inp.array("array double element")?))
            }
            array_tag::SMALLSTR => {
                ArrayElem::Str(read_string_in(inp, "array small-string element", spare)?)
            }
            t => {
                return Err(Error::corrupt(
                    tag_at,
                    format!(
                        "expected array element tag 0-3 (SDS, INT, FLOAT, SMALLSTR), found {t}"
                    ),
                ))
            }
        };
        elements.push((idx, elem));
    }
    Ok(Array {
        insert_idx,
        elements,
    })
}

/// The fewest bytes one path of a path hash takes: an empty path, a field
/// count of 1, an empty field and an empty value.
const PATH_MIN_BYTES: u64 = 4;

/// A Valkey 9.2 PATH_HASH value (type 23 under `VALKEY` 81), as valkey's
/// `rdbSaveObject` writes it: the path count, then per path the path (an
/// RDB string), its field count (at least 1) and that many field, value
/// string pairs. Nothing else: no flags and no per-field expiry. A path or
/// a field given twice, or a path without fields, is refused as Valkey's
/// loader refuses it.
fn read_path_hash<I: Input>(inp: &mut I, spare: &mut Spare) -> Result<PathHash> {
    let count_at = inp.offset();
    let count = read_length(inp, "path-hash path count")?;
    check_room(inp, count_at, count, PATH_MIN_BYTES, "paths")?;
    let mut paths: Vec<(Vec<u8>, PathFields)> = Vec::with_capacity(inp.capacity_for(count));
    // Valkey writes paths in byte order, so a repeat is usually the path
    // just before; anything out of order is checked as a whole at the end.
    let mut in_order = true;
    for _ in 0..count {
        let path_at = inp.offset();
        let path = read_string_in(inp, "path-hash path", spare)?;
        if let Some((prev, _)) = paths.last() {
            if path == *prev {
                return Err(Error::corrupt(path_at, "duplicate path-hash path"));
            }
            in_order &= path > *prev;
        }
        let n_at = inp.offset();
        let n = read_length(inp, "path-hash field count")?;
        if n == 0 {
            return Err(Error::corrupt(
                n_at,
                "expected at least one field in a path-hash path, found 0",
            ));
        }
        check_room(inp, n_at, n, 2, "fields")?;
        let mut fields = Vec::with_capacity(inp.capacity_for(n));
        for _ in 0..n {
            let f = read_string_in(inp, "path-hash field", spare)?;
            let v = read_string_in(inp, "path-hash value", spare)?;
            fields.push((f, v));
        }
        if has_duplicate(fields.iter().map(|(f, _)| f.as_slice())) {
            return Err(Error::corrupt(n_at, "duplicate path-hash fields"));
        }
        paths.push((path, fields));
    }
    if !in_order && has_duplicate(paths.iter().map(|(p, _)| p.as_slice())) {
        return Err(Error::corrupt(count_at, "duplicate path-hash paths"));
    }
    Ok(PathHash { paths })
}

/// Refuse a count of items that cannot fit in the bytes left (each takes
/// at least `min` bytes), before anything is allocated for it. Streamed
/// input (no known end) is bounded by `capacity_for` instead.
fn check_room<I: Input>(inp: &I, at: u64, count: u64, min: u64, what: &str) -> Result<()> {
    match inp.remaining() {
        Some(left) if count > left / min => Err(Error::corrupt(
            at,
            format!(
                "{count} {what} claimed but only {left} bytes remain (each takes at least {min})"
            ),
        )),
        _ => Ok(()),
    }
}

/// Decode one value of the given kind.
pub fn read_value<I: Input>(inp: &mut I, kind: Kind, opts: &DecodeOptions) -> Result<Value> {
    read_value_in(inp, kind, opts, &mut Spare::default())
}

/// [`read_value`], taking allocations from `spare` where it can.
pub fn read_value_in<I: Input>(
    inp: &mut I,
    kind: Kind,
    opts: &DecodeOptions,
    spare: &mut Spare,
) -> Result<Value> {
    let at = inp.offset();
    let value = match kind {
        Kind::String => Value::String(read_string_in(inp, "string value", spare)?),
        Kind::ListLinked => Value::List(strings(inp, "list element", spare)?),
        Kind::Set => {
            let v = strings(inp, "set member", spare)?;
            if has_duplicate(v.iter().map(Vec::as_slice)) {
                return Err(Error::corrupt(at, "duplicate set members"));
            }
            Value::Set(v)
        }
        Kind::Hash => {
            let n = read_length(inp, "hash length")?;
            let mut v = spare.fields(inp.capacity_for(n));
            for _ in 0..n {
                let field = read_string_in(inp, "hash field", spare)?;
                let value = read_string_in(inp, "hash value", spare)?;
                v.push(HashField {
                    field,
                    value,
                    expire_ms: None,
                });
            }
            if has_duplicate(v.iter().map(|f| f.field.as_slice())) {
                return Err(Error::corrupt(at, "duplicate hash fields"));
            }
            Value::Hash(v)
        }
        Kind::ZsetAscii | Kind::Zset2 => {
            let n = read_length(inp, "zset length")?;
            let mut v = spare.pairs(inp.capacity_for(n));
            for _ in 0..n {
                let m = read_string_in(inp, "zset member", spare)?;
                let s_at = inp.offset();
                let s = if kind == Kind::Zset2 {
                    f64::from_le_bytes(inp.array("binary score")?)
                } else {
                    read_ascii_double(inp)?
                };
                if s.is_nan() {
                    return Err(Error::corrupt(s_at, "zset score is NaN"));
                }
                v.push((m, s));
            }
            if has_duplicate(v.iter().map(|(m, _)| m.as_slice())) {
                return Err(Error::corrupt(at, "duplicate sorted set members"));
            }
            Value::SortedSet(v)
        }
        Kind::ModulePreGa => {
            return Err(Error::Unsupported {
                offset: at,
                what: "pre-GA module value (type 6) cannot be parsed without the module".into(),
            })
        }
        Kind::Module2 => {
            let id = read_length(inp, "module id")?;
            let m = read_module_body(inp, id)?;
            if opts.modules == ModuleMode::Error {
                return Err(Error::Unsupported {
                    offset: at,
                    what: format!("module value of type '{}'", m.name),
                });
            }
            Value::Module(Box::new(m))
        }
        Kind::HashZipmap => {
            let (blob, base) = read_blob(inp, "zipmap")?;
            let pairs = intset::decode_zipmap(&blob, base)?;
            Value::Hash(
                pairs
                    .into_iter()
                    .map(|(f, v)| HashField::new(f, v))
                    .collect(),
            )
        }
        Kind::ListZiplist => {
            let (blob, base) = read_blob(inp, "ziplist")?;
            Value::List(packed_elems(&blob, base, false, spare)?)
        }
        Kind::SetIntset => {
            let (blob, base) = read_blob(inp, "intset")?;
            let vals = intset::decode(&blob, base)?;
            let mut set = spare.list(vals.len());
            for v in vals {
                set.push(spare.elem(&Elem::Int(v)));
            }
            Value::Set(set)
        }
        Kind::SetListpack => {
            let (blob, base) = read_blob(inp, "set listpack")?;
            Value::Set(packed_elems(&blob, base, true, spare)?)
        }
        Kind::ZsetZiplist | Kind::ZsetListpack => {
            let (blob, base) = read_blob(inp, "zset ziplist/listpack")?;
            Value::SortedSet(zset_from_packed(
                &blob,
                base,
                kind == Kind::ZsetListpack,
                spare,
            )?)
        }
        Kind::HashZiplist | Kind::HashListpack => {
            let (blob, base) = read_blob(inp, "hash ziplist/listpack")?;
            Value::Hash(hash_from_packed(
                &blob,
                base,
                kind == Kind::HashListpack,
                spare,
            )?)
        }
        Kind::HashListpackEx | Kind::HashListpackExPreGa => {
            if kind == Kind::HashListpackEx {
                read_ms(inp, "hash min expire")?;
            }
            let (blob, base) = read_blob(inp, "hash listpack-ex")?;
            Value::Hash(hash_listpack_ex(&blob, base)?)
        }
        Kind::HashMetadata | Kind::HashMetadataPreGa => {
            let min = if kind == Kind::HashMetadata {
                read_ms(inp, "hash min expire")? as u64
            } else {
                0
            };
            let n = read_length(inp, "hash length")?;
            let mut v = Vec::with_capacity(inp.capacity_for(n));
            for _ in 0..n {
                let ttl = read_length(inp, "hash field ttl")?;
                let expire = if kind == Kind::HashMetadata {
                    (ttl != 0).then(|| ttl.wrapping_add(min).wrapping_sub(1))
                } else {
                    (ttl != 0).then_some(ttl)
                };
                let field = read_string(inp, "hash field")?;
                let value = read_string(inp, "hash value")?;
                v.push(HashField {
                    field,
                    value,
                    expire_ms: expire,
                });
            }
            if has_duplicate(v.iter().map(|f| f.field.as_slice())) {
                return Err(Error::corrupt(at, "duplicate hash fields"));
            }
            Value::Hash(v)
        }
        Kind::ValkeyHash2 => {
            let n = read_length(inp, "hash length")?;
            let mut v = Vec::with_capacity(inp.capacity_for(n));
            for _ in 0..n {
                let field = read_string(inp, "hash field")?;
                let value = read_string(inp, "hash value")?;
                let exp = read_ms(inp, "hash field expiry")?;
                v.push(HashField {
                    field,
                    value,
                    expire_ms: (exp >= 0).then_some(exp as u64),
                });
            }
            if has_duplicate(v.iter().map(|f| f.field.as_slice())) {
                return Err(Error::corrupt(at, "duplicate hash fields"));
            }
            Value::Hash(v)
        }
        Kind::ListQuicklist | Kind::ListQuicklist2 => {
            let nodes = read_length(inp, "quicklist node count")?;
            let mut out = Vec::new();
            for _ in 0..nodes {
                let container = if kind == Kind::ListQuicklist2 {
                    let c_at = inp.offset();
                    let c = read_length(inp, "quicklist container")?;
                    if c != QUICKLIST_PLAIN && c != QUICKLIST_PACKED {
                        return Err(Error::corrupt(
                            c_at,
                            format!("expected quicklist container 1 or 2, found {c}"),
                        ));
                    }
                    c
                } else {
                    QUICKLIST_PACKED
                };
                let n_at = inp.offset();
                let (blob, base) = read_blob(inp, "quicklist node")?;
                if blob.is_empty() {
                    return Err(Error::corrupt(n_at, "empty quicklist node"));
                }
                if container == QUICKLIST_PLAIN {
                    out.push(blob.into_owned());
                } else {
                    let elems = packed_elems(&blob, base, kind == Kind::ListQuicklist2, spare)?;
                    if out.is_empty() {
                        out = elems; // the common single-node list: no copy
                    } else {
                        out.extend(elems);
                    }
                }
            }
            Value::List(out)
        }
        Kind::Stream1 | Kind::Stream2 | Kind::Stream3 | Kind::Stream4 | Kind::Stream5 => {
            let version = match kind {
                Kind::Stream1 => 1,
                Kind::Stream2 => 2,
                Kind::Stream3 => 3,
                Kind::Stream4 => 4,
                _ => 5,
            };
            Value::Stream(Box::new(stream::read_stream(inp, version)?))
        }
        Kind::Array => Value::Array(Box::new(read_array(inp, spare)?)),
        Kind::ValkeyPathHash => Value::PathHash(Box::new(read_path_hash(inp, spare)?)),
    };
    // A compact encoding holding a member or field twice is corrupt, as
    // Redis's deep sanitisation (`sanitize-dump-payload yes`) finds; the
    // plain encodings are checked above as they are read.
    let compact = matches!(
        kind,
        Kind::SetListpack
            | Kind::ZsetZiplist
            | Kind::ZsetListpack
            | Kind::HashZiplist
            | Kind::HashListpack
            | Kind::HashListpackEx
            | Kind::HashListpackExPreGa
            | Kind::HashZipmap
    );
    if compact && value.has_duplicates() {
        let what = match &value {
            Value::Set(_) => "duplicate set members",
            Value::SortedSet(_) => "duplicate sorted set members",
            _ => "duplicate hash fields",
        };
        return Err(Error::corrupt(at, what));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_decimals_parse_as_the_full_parser_does() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut cases: Vec<String> = [
            "0",
            "-0",
            "1.",
            ".5",
            "-.5",
            "0.1",
            "3.14159",
            "999999999999999",
            "9999999999999999",
            "1234567.25",
            "0.000000000000001",
            "-",
            ".",
            "1.2.3",
            "+1",
            "1e5",
            "inf",
            "00012.5000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for _ in 0..200_000 {
            let r = next();
            let digits = 1 + (r % 17) as usize;
            let mut s: String = (0..digits)
                .map(|i| char::from(b'0' + ((r >> (8 + 3 * i)) % 10) as u8))
                .collect();
            let dot = (next() % (digits as u64 + 2)) as usize;
            if dot <= digits {
                s.insert(dot, '.');
            }
            if next() % 2 == 0 {
                s.insert(0, '-');
            }
            cases.push(s);
        }
        for c in cases {
            let fast = parse_simple_decimal(c.as_bytes());
            let full = c.parse::<f64>().ok();
            if let Some(v) = fast {
                assert_eq!(Some(v.to_bits()), full.map(f64::to_bits), "{c}");
            }
            if let Some(f) = full {
                assert_eq!(
                    parse_score(c.as_bytes()).map(f64::to_bits),
                    Some(f.to_bits()),
                    "{c}"
                );
            }
        }
    }
}
