//! Values and their compact encodings.

use crate::bytes::CompactBytes;
use crate::hash::Hash;
use crate::list::List;
use crate::set::Set;
use crate::stream::Stream;
use crate::zset::ZSet;

/// A stored value. Strings that are the canonical decimal form of an i64
/// are kept as `Int` (no heap allocation), as Redis's `int` encoding does.
/// `Str` is a string created whole (Redis reports `embstr` up to 44 bytes,
/// `raw` above); `Raw` is a string grown in place (APPEND, SETRANGE),
/// which Redis always reports as `raw`.
pub enum Value {
    Int(i64),
    Str(CompactBytes),
    Raw(CompactBytes),
    Hash(Hash),
    Set(Set),
    List(List),
    ZSet(ZSet),
    Stream(Box<Stream>),
}

/// Thresholds of the compact encodings (Redis's `*-max-listpack-*` and
/// `set-max-intset-entries` options), passed in by the server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub hash_entries: usize,
    pub hash_value: usize,
    pub set_intset_entries: usize,
    pub set_listpack_entries: usize,
    pub set_listpack_value: usize,
    pub zset_entries: usize,
    pub zset_value: usize,
    /// `list-max-listpack-size`: negative = size class, positive = count.
    pub list_size: i64,
    /// `stream-node-max-bytes` / `stream-node-max-entries`.
    pub stream_node_bytes: usize,
    pub stream_node_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            hash_entries: 512,
            hash_value: 64,
            set_intset_entries: 512,
            set_listpack_entries: 128,
            set_listpack_value: 64,
            zset_entries: 128,
            zset_value: 64,
            list_size: -2,
            stream_node_bytes: 4096,
            stream_node_entries: 100,
        }
    }
}

/// Longest string Redis stores as `embstr`.
pub const EMBSTR_MAX: usize = 44;

impl Value {
    /// Builds a string value, choosing the integer encoding when the bytes
    /// are exactly the canonical form of an i64 (no sign on zero, no
    /// leading zeros or spaces), as Redis's `tryObjectEncoding` does.
    pub fn from_bytes(b: &[u8]) -> Value {
        if let Some(i) = parse_canonical_i64(b) {
            return Value::Int(i);
        }
        Value::Str(CompactBytes::new(b))
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) | Value::Str(_) | Value::Raw(_) => "string",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::List(_) => "list",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    pub fn encoding_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Str(b) if b.len() <= EMBSTR_MAX => "embstr",
            Value::Str(_) | Value::Raw(_) => "raw",
            Value::Hash(h) => h.encoding_name(),
            Value::Set(s) => s.encoding_name(),
            Value::List(l) => l.encoding_name(),
            Value::ZSet(z) => z.encoding_name(),
            Value::Stream(_) => "stream",
        }
    }

    pub fn is_string(&self) -> bool {
        matches!(self, Value::Int(_) | Value::Str(_) | Value::Raw(_))
    }

    /// Heap bytes owned by this value (memory accounting).
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Int(_) => 0,
            Value::Str(b) | Value::Raw(b) => b.heap_size(),
            Value::Hash(h) => h.heap_size(),
            Value::Set(s) => s.heap_size(),
            Value::List(l) => l.heap_size(),
            Value::ZSet(z) => z.heap_size(),
            Value::Stream(s) => s.heap_size(),
        }
    }

    /// `heap_size` for MEMORY USAGE: the elements of a big hash, set or
    /// list are measured on at most `samples` of them (0: all) and scaled
    /// to the whole, as Redis samples nested values, so that a key of
    /// millions of elements costs `samples` steps, not millions.
    pub fn heap_size_sampled(&self, samples: usize) -> usize {
        match self {
            Value::Hash(h) => h.heap_size_sampled(samples),
            Value::Set(s) => s.heap_size_sampled(samples),
            Value::List(l) => l.heap_size_sampled(samples),
            _ => self.heap_size(),
        }
    }

    /// A deep copy (COPY, and snapshots of collections).
    pub fn deep_clone(&self) -> Value {
        match self {
            Value::Int(i) => Value::Int(*i),
            Value::Str(b) => Value::Str(b.clone()),
            Value::Raw(b) => Value::Raw(b.clone()),
            Value::Hash(h) => Value::Hash(h.deep_clone()),
            Value::Set(s) => Value::Set(s.deep_clone()),
            Value::List(l) => Value::List(l.deep_clone()),
            Value::ZSet(z) => Value::ZSet(z.deep_clone()),
            Value::Stream(s) => Value::Stream(Box::new(s.deep_clone())),
        }
    }
}

/// Parses the canonical decimal form of an i64 (Redis `string2ll`):
/// optional '-', no '+', no leading zeros (except "0"), no "-0", at most 20 chars.
pub fn parse_canonical_i64(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    if b == b"0" {
        return Some(0);
    }
    let (neg, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_ints() {
        assert_eq!(parse_canonical_i64(b"0"), Some(0));
        assert_eq!(parse_canonical_i64(b"-1"), Some(-1));
        assert_eq!(parse_canonical_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_canonical_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"-",
            b"1a",
        ] {
            assert_eq!(
                parse_canonical_i64(bad),
                None,
                "{:?}",
                std::str::from_utf8(bad)
            );
        }
    }
}

/// The sum of `sizes`, the sizes of a collection's `len` items, measured
/// on at most `samples` of them (0: all) and scaled to `len` (the sampled
/// average times `len`).
pub(crate) fn sampled_sum(sizes: impl Iterator<Item = usize>, len: usize, samples: usize) -> usize {
    if samples == 0 {
        return sizes.sum();
    }
    let (mut n, mut sum) = (0usize, 0usize);
    for s in sizes.take(samples) {
        n += 1;
        sum += s;
    }
    if n == 0 || n >= len {
        sum
    } else {
        (sum as f64 / n as f64 * len as f64) as usize
    }
}

#[cfg(test)]
mod sampled_tests {
    use super::sampled_sum;

    #[test]
    fn sampling_scales_the_measured_average_to_the_whole() {
        let sizes = [10usize, 30, 1000, 1000];
        assert_eq!(sampled_sum(sizes.iter().copied(), 4, 0), 2040);
        assert_eq!(sampled_sum(sizes.iter().copied(), 4, 4), 2040);
        assert_eq!(sampled_sum(sizes.iter().copied(), 4, 9), 2040);
        // Two measured (10 and 30, average 20), four in all.
        assert_eq!(sampled_sum(sizes.iter().copied(), 4, 2), 80);
        assert_eq!(sampled_sum(std::iter::empty(), 0, 5), 0);
    }
}
