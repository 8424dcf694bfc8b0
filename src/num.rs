//! Number parsing and formatting with Redis's exact rules.

use std::os::raw::{c_char, c_int};

extern "C" {
    fn basalt_fmt_g17(d: f64, out: *mut c_char, cap: c_int) -> c_int;
    fn basalt_parse_double(s: *const c_char, len: usize, v: *mut f64) -> c_int;
    fn basalt_strtod_whole(s: *const c_char, len: usize, v: *mut f64) -> c_int;
    fn basalt_fmt_fixed(d: f64, prec: c_int, out: *mut c_char, cap: c_int) -> c_int;
    fn basalt_fmt_human(d: f64, out: *mut c_char, cap: c_int) -> c_int;
    fn basalt_incrbyfloat(
        value: *const c_char,
        vlen: usize,
        incr: *const c_char,
        ilen: usize,
        out: *mut c_char,
        cap: c_int,
    ) -> c_int;
}

/// Parses an i64 as Redis's `string2ll`: optional '-', digits, no spaces,
/// no '+', no leading zeros except "0", within range.
pub fn parse_i64(b: &[u8]) -> Option<i64> {
    basalt_storage::value::parse_canonical_i64(b)
}

/// Parses a u64 the same strict way.
pub fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(v)
}

/// The longest numeric prefix after leading spaces (C's `atof`/`atoi`
/// grammar for decimal input): `[+-]digits[.digits][e[+-]digits]`.
fn numeric_prefix(b: &[u8], float: bool) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace() && *c != 0x0b)
        .unwrap_or(b.len());
    let b = &b[s..];
    let mut i = 0;
    let digits = |b: &[u8], mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let d0 = i;
    i = digits(b, i);
    let mut any = i > d0;
    if float {
        if i < b.len() && b[i] == b'.' {
            let f0 = i + 1;
            let f = digits(b, f0);
            if f > f0 || any {
                any |= f > f0;
                i = f;
            }
        }
        if any && i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            let mut j = i + 1;
            if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                j += 1;
            }
            let e = digits(b, j);
            if e > j {
                i = e;
            }
        }
    }
    if any {
        &b[..i]
    } else {
        &b[..0]
    }
}

/// C `atof` for decimal input: the numeric prefix, 0 when there is none.
pub fn atof(b: &[u8]) -> f64 {
    std::str::from_utf8(numeric_prefix(b, true))
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0)
}

/// C `atoi`: the integer prefix, 0 when there is none (saturating).
pub fn atoi(b: &[u8]) -> i64 {
    let p = numeric_prefix(b, false);
    match std::str::from_utf8(p)
        .ok()
        .and_then(|s| s.parse::<i128>().ok())
    {
        Some(v) => v.clamp(i64::MIN as i128, i64::MAX as i128) as i64,
        None => 0,
    }
}

/// Parses a SCAN cursor as Redis's `parseScanCursorOrReply`: C `strtoul`
/// in base 10 (optional sign, a negative value wraps, no digits at all
/// means 0), rejecting a leading space, trailing junk and overflow. The
/// argument ends at its first NUL, as a C string does.
pub fn parse_cursor(b: &[u8]) -> Option<u64> {
    let b = match b.iter().position(|&c| c == 0) {
        Some(n) => &b[..n],
        None => b,
    };
    if b.first()
        .is_some_and(|c| c.is_ascii_whitespace() || *c == 0x0b)
    {
        return None;
    }
    if b.is_empty() {
        return Some(0);
    }
    let (neg, digits) = match b[0] {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Parses a double as Redis's `getDoubleFromObject` (C `strtod`).
pub fn parse_f64(b: &[u8]) -> Option<f64> {
    let mut v = 0f64;
    // SAFETY: the pointer/length pair describes `b`; the C side copies at
    // most `len` bytes and writes only `v`.
    let ok = unsafe { basalt_parse_double(b.as_ptr().cast(), b.len(), &mut v) };
    (ok == 1).then_some(v)
}

/// Parses a score-range bound as Redis's `zslParseRange` (plain strtod
/// over the whole C string: "" is 0, leading spaces pass, NaN fails).
pub fn parse_f64_loose(b: &[u8]) -> Option<f64> {
    let mut v = 0f64;
    // SAFETY: as in `parse_f64`.
    let ok = unsafe { basalt_strtod_whole(b.as_ptr().cast(), b.len(), &mut v) };
    (ok == 1).then_some(v)
}

/// Formats a double as Redis 7.0's `addReplyDouble` ("%.17g", with
/// "inf"/"-inf" for infinities).
pub fn fmt_f64(d: f64, out: &mut Vec<u8>) {
    if d.is_infinite() {
        out.extend_from_slice(if d > 0.0 { b"inf" } else { b"-inf" });
        return;
    }
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is 64 writable bytes; snprintf writes at most `cap`.
    let n = unsafe { basalt_fmt_g17(d, buf.as_mut_ptr().cast(), buf.len() as c_int) };
    let n = (n.max(0) as usize).min(buf.len() - 1);
    out.extend_from_slice(&buf[..n]);
}

/// C's `printf("%.*f", prec, d)` (GEO distances use 4 digits, error
/// texts 6). `prec` is at most 17.
pub fn fmt_fixed(d: f64, prec: u8, out: &mut Vec<u8>) {
    // A double's integer part has at most 309 digits.
    let mut buf = [0u8; 352];
    let prec = prec.min(17) as c_int;
    // SAFETY: `buf` is writable for `buf.len()` bytes; snprintf writes at
    // most that many, and returns the length it wanted.
    let n = unsafe { basalt_fmt_fixed(d, prec, buf.as_mut_ptr().cast(), buf.len() as c_int) };
    let n = (n.max(0) as usize).min(buf.len() - 1);
    out.extend_from_slice(&buf[..n]);
}

/// Redis's `ld2string(LD_STR_HUMAN)` of a double ("%.17Lf" with trailing
/// zeros removed): how GEOPOS and WITHCOORD print coordinates.
pub fn fmt_human(d: f64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 400];
    // SAFETY: as in `fmt_fixed`; 0 is returned when the text did not fit.
    let n = unsafe { basalt_fmt_human(d, buf.as_mut_ptr().cast(), buf.len() as c_int) };
    let n = (n.max(0) as usize).min(buf.len() - 1);
    out.extend_from_slice(&buf[..n]);
}

pub enum IncrFloatError {
    ValueNotFloat,
    IncrNotFloat,
    NanOrInf,
}

/// `value + incr` computed as Redis's INCRBYFLOAT (long double, "%.17Lf",
/// trailing zeros removed). `value` None means a missing key.
pub fn incr_by_float(value: Option<&[u8]>, incr: &[u8]) -> Result<Vec<u8>, IncrFloatError> {
    let mut buf = vec![0u8; 5200];
    let (vp, vl) = match value {
        Some(v) => (v.as_ptr(), v.len()),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: pointers/lengths describe live slices; `buf` has `cap` bytes.
    let n = unsafe {
        basalt_incrbyfloat(
            vp.cast(),
            vl,
            incr.as_ptr().cast(),
            incr.len(),
            buf.as_mut_ptr().cast(),
            buf.len() as c_int,
        )
    };
    match n {
        -1 => Err(IncrFloatError::ValueNotFloat),
        -2 => Err(IncrFloatError::IncrNotFloat),
        n if n < 0 => Err(IncrFloatError::NanOrInf),
        n => {
            buf.truncate(n as usize);
            Ok(buf)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_redis() {
        let f = |d| {
            let mut v = Vec::new();
            fmt_f64(d, &mut v);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(f(1.5), "1.5");
        assert_eq!(f(0.1), "0.10000000000000001");
        assert_eq!(f(f64::INFINITY), "inf");
        assert_eq!(f(1e20), "1e+20");
    }

    #[test]
    fn incrbyfloat_like_redis() {
        let r = |v: Option<&str>, i: &str| {
            incr_by_float(v.map(|s| s.as_bytes()), i.as_bytes())
                .ok()
                .map(|b| String::from_utf8(b).unwrap())
        };
        assert_eq!(r(Some("10.5"), "0.1").as_deref(), Some("10.6"));
        assert_eq!(r(None, "5.0e3").as_deref(), Some("5000"));
        assert_eq!(r(Some("3.0e3"), "200").as_deref(), Some("3200"));
        assert_eq!(r(Some("1"), "-1").as_deref(), Some("0"));
        assert!(r(Some("abc"), "1").is_none());
        assert!(r(Some("1"), " 1").is_none());
        assert!(matches!(
            incr_by_float(Some(b"1"), b"inf"),
            Err(IncrFloatError::NanOrInf)
        ));
    }

    #[test]
    fn atof_atoi_prefixes() {
        assert_eq!(atof(b"abc"), 0.0);
        assert_eq!(atof(b" 1.5x"), 1.5);
        assert_eq!(atof(b".5"), 0.5);
        assert_eq!(atof(b"2e1"), 20.0);
        assert_eq!(atof(b"2e"), 2.0);
        assert_eq!(atof(b"-"), 0.0);
        assert_eq!(atoi(b"12ab"), 12);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(atoi(b" -3"), -3);
    }

    #[test]
    fn cursors_like_strtoul() {
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"+7"), Some(7));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        for bad in [&b" 1"[..], b"-", b"1 ", b"0x1", b"1.5", b"abc"] {
            assert_eq!(parse_cursor(bad), None);
        }
    }

    #[test]
    fn parses_doubles_like_strtod() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"1 "), None);
        assert_eq!(parse_f64(b""), None);
        assert_eq!(parse_f64(b"1e400"), None);
    }
}
