//! Listpacks (Redis 5+ compact encoding): validating decoder and builder.
//!
//! Layout: `total_bytes u32 LE | count u16 LE | entries... | 0xFF`. Each entry
//! is `encoding+data | backlen`, where backlen (1-5 bytes, 7 bits each, read
//! right to left) repeats the size of `encoding+data`. A count of 65535 means
//! "too many to store". Every entry is checked as Redis does with
//! `sanitize-dump-payload yes`: encodings, bounds, backlen, count, terminator.

use crate::error::{Error, Result};

/// One decoded element, borrowing string data from the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem<'a> {
    /// String data.
    Str(&'a [u8]),
    /// Integer-encoded element.
    Int(i64),
}

impl Elem<'_> {
    /// The element as bytes (integers as decimal text).
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Elem::Str(s) => s.to_vec(),
            Elem::Int(i) => itoa::Buffer::new().format(*i).as_bytes().to_vec(),
        }
    }

    /// The element as an integer, if it is one or is a canonical decimal.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Elem::Int(i) => Some(*i),
            Elem::Str(s) => parse_canonical_i64(s),
        }
    }
}

/// Parse a decimal that Redis would have stored as an integer (no sign `+`,
/// no leading zeros, no spaces, fits in i64).
pub fn parse_canonical_i64(s: &[u8]) -> Option<i64> {
    // Byte loop, accumulating negatively so that i64::MIN parses: this runs
    // for every element the memory report and the encoders look at.
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] => return (!neg).then_some(0),
        [b'0', ..] => return None,
        _ if digits.len() > 19 => return None,
        _ => {}
    }
    let mut v: i64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_sub(i64::from(d))?;
    }
    if neg {
        Some(v)
    } else {
        v.checked_neg()
    }
}

fn rd<const N: usize>(blob: &[u8], at: usize) -> Option<[u8; N]> {
    let s = blob.get(at..at.checked_add(N)?)?;
    let mut a = [0u8; N];
    a.copy_from_slice(s);
    Some(a)
}

/// Size of the backlen field for an entry of `l` bytes.
fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// Walk a listpack, calling `f` for every element. `base` is the blob's
/// offset in the input, for error messages. Returns the element count.
pub fn for_each<'a>(
    blob: &'a [u8],
    base: u64,
    mut f: impl FnMut(Elem<'a>) -> Result<()>,
) -> Result<u64> {
    let bad = |at: usize, what: &str| {
        Error::corrupt(
            base,
            format!("listpack invalid at inner offset {at}: {what}"),
        )
    };
    let total = rd::<4>(blob, 0)
        .map(u32::from_le_bytes)
        .ok_or_else(|| bad(0, "header"))?;
    if total as usize != blob.len() || blob.len() < 7 {
        return Err(bad(
            0,
            "expected total-bytes header equal to the blob length",
        ));
    }
    let declared = rd::<2>(blob, 4).map(u16::from_le_bytes).unwrap_or(0);
    let end = blob.len() - 1;
    if blob.get(end) != Some(&0xFF) {
        return Err(bad(end, "expected 0xFF terminator"));
    }
    let mut p = 6usize;
    let mut count = 0u64;
    while p < end {
        let b = blob.get(p).copied().ok_or_else(|| bad(p, "entry"))?;
        let (elem, len) = if b & 0x80 == 0 {
            (Elem::Int(i64::from(b & 0x7f)), 1usize)
        } else if b & 0xC0 == 0x80 {
            let l = (b & 0x3f) as usize;
            let s = blob
                .get(p + 1..p + 1 + l)
                .ok_or_else(|| bad(p, "string overruns"))?;
            (Elem::Str(s), 1 + l)
        } else if b & 0xE0 == 0xC0 {
            let b1 = blob
                .get(p + 1)
                .copied()
                .ok_or_else(|| bad(p, "13-bit int overruns"))?;
            let mut v = (i64::from(b & 0x1f) << 8) | i64::from(b1);
            if v >= 1 << 12 {
                v -= 1 << 13;
            }
            (Elem::Int(v), 2)
        } else if b & 0xF0 == 0xE0 {
            let b1 = blob
                .get(p + 1)
                .copied()
                .ok_or_else(|| bad(p, "12-bit length overruns"))?;
            let l = ((b & 0x0f) as usize) << 8 | b1 as usize;
            let s = blob
                .get(p + 2..p + 2 + l)
                .ok_or_else(|| bad(p, "string overruns"))?;
            (Elem::Str(s), 2 + l)
        } else {
            match b {
                0xF0 => {
                    let l = rd::<4>(blob, p + 1)
                        .map(u32::from_le_bytes)
                        .ok_or_else(|| bad(p, "32-bit length overruns"))?
                        as usize;
                    let s = p
                        .checked_add(5 + l)
                        .and_then(|e| blob.get(p + 5..e))
                        .ok_or_else(|| bad(p, "string overruns"))?;
                    (Elem::Str(s), 5 + l)
                }
                0xF1 => {
                    let v = rd::<2>(blob, p + 1).ok_or_else(|| bad(p, "int16 overruns"))?;
                    (Elem::Int(i64::from(i16::from_le_bytes(v))), 3)
                }
                0xF2 => {
                    let v = rd::<3>(blob, p + 1).ok_or_else(|| bad(p, "int24 overruns"))?;
                    let x = i32::from_le_bytes([0, v[0], v[1], v[2]]) >> 8;
                    (Elem::Int(i64::from(x)), 4)
                }
                0xF3 => {
                    let v = rd::<4>(blob, p + 1).ok_or_else(|| bad(p, "int32 overruns"))?;
                    (Elem::Int(i64::from(i32::from_le_bytes(v))), 5)
                }
                0xF4 => {
                    let v = rd::<8>(blob, p + 1).ok_or_else(|| bad(p, "int64 overruns"))?;
                    (Elem::Int(i64::from_le_bytes(v)), 9)
                }
                _ => return Err(bad(p, &format!("unknown entry encoding byte {b:#04x}"))),
            }
        };
        let bl = backlen_size(len);
        let bl_end = p + len + bl;
        if bl_end > end {
            return Err(bad(p, "entry overruns the terminator"));
        }
        // Decode the backlen right to left.
        let mut v = 0usize;
        let mut shift = 0;
        for i in (p + len..bl_end).rev() {
            let byte = blob.get(i).copied().unwrap_or(0);
            v |= ((byte & 127) as usize) << shift;
            shift += 7;
        }
        if v != len {
            return Err(bad(
                p,
                &format!("backlen {v} does not match entry size {len}"),
            ));
        }
        f(elem)?;
        count += 1;
        p = bl_end;
    }
    if declared != u16::MAX && u64::from(declared) != count {
        return Err(bad(
            4,
            &format!("header count {declared} but {count} entries"),
        ));
    }
    Ok(count)
}

/// Collect all elements of a listpack.
pub fn collect(blob: &[u8], base: u64) -> Result<Vec<Elem<'_>>> {
    let mut v = Vec::new();
    for_each(blob, base, |e| {
        v.push(e);
        Ok(())
    })?;
    Ok(v)
}

/// Builds a listpack.
#[derive(Debug, Clone)]
pub struct Builder {
    buf: Vec<u8>,
    count: u64,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// An empty listpack.
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0; 6]);
        Builder { buf, count: 0 }
    }

    /// Current encoded size (without terminator).
    pub fn len_bytes(&self) -> usize {
        self.buf.len() + 1
    }

    /// Number of elements.
    pub fn count(&self) -> u64 {
        self.count
    }

    fn backlen(&mut self, l: usize) {
        let n = backlen_size(l);
        for i in (0..n).rev() {
            let mut b = ((l >> (7 * i)) & 127) as u8;
            if i < n - 1 {
                b |= 128;
            }
            self.buf.push(b);
        }
    }

    /// Append an integer.
    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        if (0..=127).contains(&v) {
            self.buf.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = if v < 0 { (1 << 13) + v } else { v } as u16;
            self.buf.push(0xC0 | (u >> 8) as u8);
            self.buf.push((u & 0xff) as u8);
        } else if (-32768..=32767).contains(&v) {
            self.buf.push(0xF1);
            self.buf.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-8_388_608..=8_388_607).contains(&v) {
            self.buf.push(0xF2);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if (i64::from(i32::MIN)..=i64::from(i32::MAX)).contains(&v) {
            self.buf.push(0xF3);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            self.buf.push(0xF4);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        let l = self.buf.len() - start;
        self.backlen(l);
        self.count += 1;
    }

    /// Append a string as a string (never converted to an integer).
    pub fn push_str(&mut self, s: &[u8]) {
        let start = self.buf.len();
        let l = s.len();
        if l < 64 {
            self.buf.push(0x80 | l as u8);
        } else if l < 4096 {
            self.buf.push(0xE0 | (l >> 8) as u8);
            self.buf.push((l & 0xff) as u8);
        } else {
            self.buf.push(0xF0);
            self.buf.extend_from_slice(&(l as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        let n = self.buf.len() - start;
        self.backlen(n);
        self.count += 1;
    }

    /// Append an element the way Redis's `lpAppend` does: canonical integers
    /// are stored integer-encoded.
    pub fn push(&mut self, s: &[u8]) {
        match parse_canonical_i64(s) {
            Some(v) => self.push_int(v),
            None => self.push_str(s),
        }
    }

    /// Finish: write the header and terminator.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xFF);
        let total = self.buf.len() as u32;
        let count = if self.count < u64::from(u16::MAX) {
            self.count as u16
        } else {
            u16::MAX
        };
        if let Some(h) = self.buf.get_mut(0..4) {
            h.copy_from_slice(&total.to_le_bytes());
        }
        if let Some(h) = self.buf.get_mut(4..6) {
            h.copy_from_slice(&count.to_le_bytes());
        }
        self.buf
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn canonical_integers_parse_as_std_and_itoa_agree() {
        let reference = |s: &[u8]| -> Option<i64> {
            let v: i64 = std::str::from_utf8(s).ok()?.parse().ok()?;
            (itoa::Buffer::new().format(v).as_bytes() == s).then_some(v)
        };
        let cases: &[&[u8]] = &[
            b"0",
            b"-0",
            b"00",
            b"01",
            b"-01",
            b"1",
            b"-1",
            b"+1",
            b"",
            b"-",
            b" 1",
            b"1 ",
            b"12a",
            b"9223372036854775807",
            b"9223372036854775808",
            b"-9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999",
            b"123456789012345678901",
            b"42",
            b"-42",
            b"1e3",
            b"\xff",
        ];
        for c in cases {
            assert_eq!(
                parse_canonical_i64(c),
                reference(c),
                "{:?}",
                String::from_utf8_lossy(c)
            );
        }
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = (x as i64) >> (x % 64);
            let t = itoa::Buffer::new().format(v).as_bytes().to_vec();
            assert_eq!(parse_canonical_i64(&t), Some(v));
            let mut bad = t.clone();
            bad.insert(usize::from(bad[0] == b'-'), b'0');
            assert_eq!(parse_canonical_i64(&bad), reference(&bad));
        }
    }

    use super::*;

    #[test]
    fn round_trip() {
        let ints = [
            0i64,
            1,
            127,
            128,
            -1,
            4095,
            -4096,
            4096,
            32767,
            -32768,
            8_388_607,
            -8_388_608,
            i64::from(i32::MAX),
            i64::from(i32::MIN),
            i64::MAX,
            i64::MIN,
        ];
        let mut b = Builder::new();
        for &i in &ints {
            b.push_int(i);
        }
        let long = vec![b'x'; 20000];
        let strs: Vec<&[u8]> = vec![
            b"",
            b"abc",
            &[b'y'; 63],
            &[b'y'; 64],
            &[b'z'; 4095],
            &[b'z'; 4096],
            &long,
        ];
        for s in &strs {
            b.push_str(s);
        }
        let lp = b.finish();
        let got = collect(&lp, 0).unwrap();
        assert_eq!(got.len(), ints.len() + strs.len());
        for (g, &i) in got.iter().zip(ints.iter()) {
            assert_eq!(*g, Elem::Int(i));
        }
        for (g, s) in got[ints.len()..].iter().zip(strs.iter()) {
            assert_eq!(*g, Elem::Str(s));
        }
    }

    #[test]
    fn rejects_bad_backlen() {
        let mut b = Builder::new();
        b.push_str(b"hello");
        let mut lp = b.finish();
        let n = lp.len();
        lp[n - 2] = 9;
        assert!(collect(&lp, 0).is_err());
    }
}
