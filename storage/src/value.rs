//! Values and their compact encodings.

use crate::bytes::CompactBytes;

/// A stored value. Strings that are the canonical decimal form of an i64
/// are kept as `Int` (no heap allocation), as Redis's `int` encoding does.
/// `Str` is a string created whole (Redis reports `embstr` up to 44 bytes,
/// `raw` above); `Raw` is a string grown in place (APPEND, SETRANGE),
/// which Redis always reports as `raw`.
pub enum Value {
    Int(i64),
    Str(CompactBytes),
    Raw(CompactBytes),
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
        }
    }

    pub fn encoding_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Str(b) if b.len() <= EMBSTR_MAX => "embstr",
            Value::Str(_) | Value::Raw(_) => "raw",
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
        for bad in [&b""[..], b"-0", b"01", b"+1", b" 1", b"1 ", b"9223372036854775808", b"-", b"1a"] {
            assert_eq!(parse_canonical_i64(bad), None, "{:?}", std::str::from_utf8(bad));
        }
    }
}
