//! Value encoding for a chosen target format. Shared by the file writer and
//! DUMP payloads.
//!
//! Encodings follow what the target's Redis would write with default
//! settings: compact encodings (listpack, or ziplist for RDB 9) for small
//! collections, plain encodings otherwise. Data a target cannot hold (hash
//! field TTLs before RDB 12, functions before RDB 10, empty collections,
//! Redis 8.8 arrays in any target) is refused with [`Error::Unrepresentable`].
//!
//! For the deterministic compact encodings (listpacks, intsets, strings with
//! Redis's LZF, hash field TTLs) the output is byte-identical to what Redis
//! 7.0 / 7.4 and Valkey 8 / 9 write (`tests/byte_fidelity.rs`).

use crate::error::{Error, Result};
use crate::format::{module_id, Format, QUICKLIST_PACKED, QUICKLIST_PLAIN};
use crate::listpack::{self, parse_canonical_i64};
use crate::value::{HashField, Value};
use crate::{intset, lzf, stream, ziplist};

/// A format the writer can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Target {
    /// `REDIS0009` (Redis 5.0 - 6.2).
    Redis9,
    /// `REDIS0010` (Redis 7.0; loaded by every later Redis and Valkey).
    #[default]
    Redis10,
    /// `REDIS0011` (Redis 7.2, Valkey 7.2/8.x).
    Redis11,
    /// `REDIS0012` (Redis 7.4 - 8.4), with hash field TTLs.
    Redis12,
    /// `VALKEY080` (Valkey 9), with hash field TTLs.
    Valkey80,
}

impl Target {
    /// The header format.
    pub fn format(self) -> Format {
        match self {
            Target::Redis9 => Format::redis(9),
            Target::Redis10 => Format::redis(10),
            Target::Redis11 => Format::redis(11),
            Target::Redis12 => Format::redis(12),
            Target::Valkey80 => Format::valkey(80),
        }
    }

    fn v(self) -> u32 {
        match self {
            Target::Redis9 => 9,
            Target::Redis10 => 10,
            Target::Redis11 => 11,
            Target::Redis12 => 12,
            Target::Valkey80 => 80,
        }
    }

    fn refuse(self, what: impl Into<String>) -> Error {
        Error::Unrepresentable {
            target: self.format().to_string(),
            what: what.into(),
        }
    }
}

/// Encoding options.
#[derive(Debug, Clone, Copy)]
pub struct EncodeOptions {
    /// Target format (default RDB 10).
    pub target: Target,
    /// LZF-compress strings longer than 20 bytes when it saves space, as
    /// `rdbcompression yes` does (default `true`).
    pub compress: bool,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            target: Target::Redis10,
            compress: true,
        }
    }
}

impl EncodeOptions {
    /// Options for a target with compression on.
    pub fn for_target(target: Target) -> Self {
        EncodeOptions {
            target,
            ..Default::default()
        }
    }
}

const PACKED_ENTRIES: usize = 128;
const PACKED_VALUE: usize = 64;
const INTSET_ENTRIES: usize = 512;
const LIST_NODE_BYTES: usize = 8192;
const PLAIN_THRESHOLD: usize = 1 << 30;

/// Write a length prefix.
pub fn write_length(out: &mut Vec<u8>, n: u64) {
    if n < 64 {
        out.push(n as u8);
    } else if n < 16384 {
        out.push(0x40 | (n >> 8) as u8);
        out.push((n & 0xff) as u8);
    } else if n <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Write a string: integer-encoded when it is a short canonical integer,
/// LZF-compressed when `compress` and it saves at least 4 bytes.
pub fn write_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 {
        if let Some(v) = parse_canonical_i64(s) {
            if let Ok(x) = i8::try_from(v) {
                out.push(0xC0);
                out.push(x as u8);
                return;
            } else if let Ok(x) = i16::try_from(v) {
                out.push(0xC1);
                out.extend_from_slice(&x.to_le_bytes());
                return;
            } else if let Ok(x) = i32::try_from(v) {
                out.push(0xC2);
                out.extend_from_slice(&x.to_le_bytes());
                return;
            }
        }
    }
    if compress && s.len() > 20 {
        if let Some(z) = lzf::compress(s) {
            out.push(0xC3);
            write_length(out, z.len() as u64);
            write_length(out, s.len() as u64);
            out.extend_from_slice(&z);
            return;
        }
    }
    write_length(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Write a millisecond timestamp (8 bytes LE).
pub fn write_ms(out: &mut Vec<u8>, ms: i64) {
    out.extend_from_slice(&ms.to_le_bytes());
}

/// A score as Redis 7.0's `d2string` writes it into a ziplist/listpack:
/// `inf`/`-inf`, `0`/`-0`, integers in (-(2^52-1), 2^52) as integers, and
/// everything else as C's `%.17g` (17 significant digits, which always reads
/// back to the same double).
fn score_text(s: f64) -> Vec<u8> {
    if s.is_infinite() {
        return if s > 0.0 {
            b"inf".to_vec()
        } else {
            b"-inf".to_vec()
        };
    }
    if s == 0.0 {
        return if s.is_sign_negative() {
            b"-0".to_vec()
        } else {
            b"0".to_vec()
        };
    }
    if s > -4_503_599_627_370_495.0 && s < 4_503_599_627_370_496.0 && s.fract() == 0.0 {
        return itoa::Buffer::new().format(s as i64).as_bytes().to_vec();
    }
    format_g17(s).into_bytes()
}

/// C's `printf("%.17g", v)` for finite, non-zero `v`.
fn format_g17(v: f64) -> String {
    fn trim(mut t: String) -> String {
        if t.contains('.') {
            while t.ends_with('0') {
                t.pop();
            }
            if t.ends_with('.') {
                t.pop();
            }
        }
        t
    }
    let e = format!("{v:.16e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..17).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa.to_string()), exp.abs())
    } else {
        let decimals = usize::try_from(16 - exp).unwrap_or(0);
        trim(format!("{v:.decimals$}"))
    }
}

fn small<'a>(n: usize, mut items: impl Iterator<Item = &'a [u8]>) -> bool {
    n <= PACKED_ENTRIES && items.all(|s| s.len() <= PACKED_VALUE)
}

/// Encode a value's body; returns the RDB type byte to write before it.
pub fn encode_value(out: &mut Vec<u8>, value: &Value, opts: &EncodeOptions) -> Result<u8> {
    let t = opts.target;
    let z = opts.compress;
    let v10 = t.v() >= 10;
    Ok(match value {
        Value::String(s) => {
            write_string(out, s, z);
            0
        }
        Value::List(items) => {
            if items.is_empty() {
                return Err(t.refuse("an empty list (Redis deletes empty keys)"));
            }
            let mut nodes: Vec<(u64, Vec<u8>)> = Vec::new();
            let mut i = 0;
            while i < items.len() {
                let first = items.get(i).map(Vec::len).unwrap_or(0);
                if v10 && first >= PLAIN_THRESHOLD {
                    nodes.push((QUICKLIST_PLAIN, items.get(i).cloned().unwrap_or_default()));
                    i += 1;
                    continue;
                }
                if v10 {
                    let mut lp = listpack::Builder::new();
                    while let Some(it) = items.get(i) {
                        if lp.count() > 0
                            && (lp.len_bytes() + it.len() + 8 > LIST_NODE_BYTES
                                || it.len() >= PLAIN_THRESHOLD)
                        {
                            break;
                        }
                        lp.push(it);
                        i += 1;
                    }
                    nodes.push((QUICKLIST_PACKED, lp.finish()));
                } else {
                    let mut zl = ziplist::Builder::new();
                    let mut n = 0;
                    while let Some(it) = items.get(i) {
                        if n > 0 && zl.len_bytes() + it.len() > LIST_NODE_BYTES {
                            break;
                        }
                        zl.push(it);
                        n += 1;
                        i += 1;
                    }
                    nodes.push((QUICKLIST_PACKED, zl.finish()));
                }
            }
            write_length(out, nodes.len() as u64);
            for (container, data) in &nodes {
                if v10 {
                    write_length(out, *container);
                }
                write_string(out, data, z);
            }
            if v10 {
                18
            } else {
                14
            }
        }
        Value::Set(members) => {
            if members.is_empty() {
                return Err(t.refuse("an empty set (Redis deletes empty keys)"));
            }
            let ints: Option<Vec<i64>> = if members.len() <= INTSET_ENTRIES {
                members.iter().map(|m| parse_canonical_i64(m)).collect()
            } else {
                None
            };
            if let Some(mut ints) = ints {
                ints.sort_unstable();
                ints.dedup();
                write_string(out, &intset::encode(&ints), z);
                11
            } else if t.v() >= 11 && small(members.len(), members.iter().map(Vec::as_slice)) {
                let mut lp = listpack::Builder::new();
                for m in members {
                    lp.push(m);
                }
                write_string(out, &lp.finish(), z);
                20
            } else {
                write_length(out, members.len() as u64);
                for m in members {
                    write_string(out, m, z);
                }
                2
            }
        }
        Value::SortedSet(pairs) => {
            if pairs.is_empty() {
                return Err(t.refuse("an empty sorted set (Redis deletes empty keys)"));
            }
            if pairs.iter().any(|(_, s)| s.is_nan()) {
                return Err(t.refuse("a NaN sorted-set score"));
            }
            if small(pairs.len(), pairs.iter().map(|(m, _)| m.as_slice())) {
                let mut sorted: Vec<&(Vec<u8>, f64)> = pairs.iter().collect();
                sorted.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
                if v10 {
                    let mut lp = listpack::Builder::new();
                    for (m, s) in sorted {
                        lp.push(m);
                        lp.push(&score_text(*s));
                    }
                    write_string(out, &lp.finish(), z);
                    17
                } else {
                    let mut zl = ziplist::Builder::new();
                    for (m, s) in sorted {
                        zl.push(m);
                        zl.push(&score_text(*s));
                    }
                    write_string(out, &zl.finish(), z);
                    12
                }
            } else {
                write_length(out, pairs.len() as u64);
                for (m, s) in pairs.iter().rev() {
                    write_string(out, m, z);
                    out.extend_from_slice(&s.to_le_bytes());
                }
                5
            }
        }
        Value::Hash(fields) => encode_hash(out, fields, opts)?,
        Value::Stream(s) => {
            // No target this writer produces holds Redis 8.6/8.8 stream
            // state: refuse it rather than drop it. Configuration alone at
            // Redis's defaults carries no information and is left out.
            if s.groups.iter().any(|g| !g.nacked.is_empty()) {
                return Err(
                    t.refuse("a stream with NACKed pending entries (XNACK state needs REDIS 14)")
                );
            }
            if let Some(m) = s.idmp.as_deref() {
                if m.has_state()
                    || !m.producers.is_empty()
                    || m.duration != IDMP_DEFAULT
                    || m.max_entries != IDMP_DEFAULT
                {
                    return Err(
                        t.refuse("a stream with idempotent-producer state (IDMP needs REDIS 13)")
                    );
                }
            }
            let version = match t {
                Target::Redis9 => 1,
                Target::Redis10 => 2,
                _ => 3,
            };
            stream::write_stream(out, s, version, z);
            match version {
                1 => 15,
                2 => 19,
                _ => 21,
            }
        }
        Value::Array(_) => {
            // RDB type 28 exists only in REDIS 14 (Redis 8.8), which this
            // writer does not produce; no older type can hold an array.
            return Err(t.refuse("a Redis 8.8 array (type 28 needs REDIS 14)"));
        }
        Value::PathHash(_) => {
            // Type 23 holds a path hash only under VALKEY 81 (Valkey 9.2),
            // which this writer does not produce.
            return Err(t.refuse("a Valkey 9.2 path hash (type 23 needs VALKEY 81)"));
        }
        Value::Module(m) => {
            if module_id(&m.name, m.encver) != Some(m.id) {
                return Err(t.refuse(format!(
                    "module value with inconsistent id for '{}'",
                    m.name
                )));
            }
            write_length(out, m.id);
            out.extend_from_slice(&m.raw);
            7
        }
    })
}

/// Redis 8.6's default `IDMP-DURATION` (seconds) and `IDMP-MAXSIZE`.
const IDMP_DEFAULT: u64 = 100;

fn encode_hash(out: &mut Vec<u8>, fields: &[HashField], opts: &EncodeOptions) -> Result<u8> {
    let t = opts.target;
    let z = opts.compress;
    if fields.is_empty() {
        return Err(t.refuse("an empty hash (Redis deletes empty keys)"));
    }
    let is_small = small(
        fields.len(),
        fields
            .iter()
            .flat_map(|f| [f.field.as_slice(), f.value.as_slice()]),
    );
    let min_expire = fields.iter().filter_map(|f| f.expire_ms).min();
    if let Some(min) = min_expire {
        const MAX_TTL: u64 = (1 << 48) - 1;
        match t {
            Target::Redis12 => {
                if fields
                    .iter()
                    .any(|f| f.expire_ms.is_some_and(|e| e > MAX_TTL || e == 0))
                {
                    return Err(t.refuse("a hash field expiry of 0 or above 2^48-1 ms"));
                }
                write_ms(out, min as i64);
                if is_small {
                    // Redis keeps listpack-ex hashes ordered by expiry, fields
                    // without one last (its active expiry looks at the head).
                    let mut ordered: Vec<&HashField> = fields.iter().collect();
                    ordered.sort_by_key(|f| f.expire_ms.unwrap_or(u64::MAX));
                    let mut lp = listpack::Builder::new();
                    for f in ordered {
                        lp.push(&f.field);
                        lp.push(&f.value);
                        lp.push_int(f.expire_ms.unwrap_or(0) as i64);
                    }
                    write_string(out, &lp.finish(), z);
                    Ok(25)
                } else {
                    write_length(out, fields.len() as u64);
                    for f in fields {
                        write_length(out, f.expire_ms.map(|e| e - min + 1).unwrap_or(0));
                        write_string(out, &f.field, z);
                        write_string(out, &f.value, z);
                    }
                    Ok(24)
                }
            }
            Target::Valkey80 => {
                // Stored as a signed 64-bit ms value where negative means
                // "none": a larger expiry would come back as no expiry.
                if fields
                    .iter()
                    .any(|f| f.expire_ms.is_some_and(|e| i64::try_from(e).is_err()))
                {
                    return Err(t.refuse("a hash field expiry above 2^63-1 ms"));
                }
                write_length(out, fields.len() as u64);
                for f in fields {
                    write_string(out, &f.field, z);
                    write_string(out, &f.value, z);
                    write_ms(out, f.expire_ms.map(|e| e as i64).unwrap_or(-1));
                }
                Ok(22)
            }
            _ => Err(t.refuse("hash field expiry (needs REDIS 12 or VALKEY 80)")),
        }
    } else if is_small {
        if t.v() >= 10 {
            let mut lp = listpack::Builder::new();
            for f in fields {
                lp.push(&f.field);
                lp.push(&f.value);
            }
            write_string(out, &lp.finish(), z);
            Ok(16)
        } else {
            let mut zl = ziplist::Builder::new();
            for f in fields {
                zl.push(&f.field);
                zl.push(&f.value);
            }
            write_string(out, &zl.finish(), z);
            Ok(13)
        }
    } else {
        write_length(out, fields.len() as u64);
        for f in fields {
            write_string(out, &f.field, z);
            write_string(out, &f.value, z);
        }
        Ok(4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_written_like_redis_7_0() {
        let cases: &[(f64, &str)] = &[
            (1.5, "1.5"),
            (0.1, "0.10000000000000001"),
            (-2.25, "-2.25"),
            (42.0, "42"),
            (-0.0, "-0"),
            (1e15, "1000000000000000"),
            (9_007_199_254_740_992.0, "9007199254740992"),
            (1e300, "1.0000000000000001e+300"),
            (5e-324, "4.9406564584124654e-324"),
            (-f64::MAX, "-1.7976931348623157e+308"),
            (std::f64::consts::PI, "3.1415926535897931"),
            (0.0001, "0.0001"),
            (0.00001, "1.0000000000000001e-05"),
            (1e17, "1e+17"),
            (f64::INFINITY, "inf"),
        ];
        for (v, want) in cases {
            assert_eq!(String::from_utf8(score_text(*v)).unwrap(), *want, "{v:e}");
            let back: f64 = want.parse().unwrap_or(if v.is_sign_negative() {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            });
            assert_eq!(back, *v);
        }
    }
}
