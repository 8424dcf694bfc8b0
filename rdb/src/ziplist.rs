//! Ziplists (Redis 2.6 to 6.2 compact encoding): validating decoder and
//! builder (the builder serves RDB 9 output).
//!
//! Layout: `zlbytes u32 LE | zltail u32 LE | zllen u16 LE | entries | 0xFF`.
//! An entry is `prevlen | encoding | data`; prevlen is one byte below 254,
//! else `0xFE` and a u32 LE. String encodings: `00pppppp`, `01pppppp qqqqqqqq`
//! (big endian), `10000000` + u32 BE. Integer encodings: `0xC0` i16, `0xD0`
//! i32, `0xE0` i64, `0xF0` i24, `0xFE` i8, `0xF1..=0xFD` immediate 0..12.

use crate::error::{Error, Result};
use crate::listpack::{parse_canonical_i64, Elem};

const HEADER: usize = 10;

fn rd<const N: usize>(blob: &[u8], at: usize) -> Option<[u8; N]> {
    let s = blob.get(at..at.checked_add(N)?)?;
    let mut a = [0u8; N];
    a.copy_from_slice(s);
    Some(a)
}

/// Walk a ziplist, validating every entry, calling `f` for each element.
/// Returns the number of elements.
pub fn for_each<'a>(
    blob: &'a [u8],
    base: u64,
    mut f: impl FnMut(Elem<'a>) -> Result<()>,
) -> Result<u64> {
    let bad = |at: usize, what: &str| {
        Error::corrupt(
            base,
            format!("ziplist invalid at inner offset {at}: {what}"),
        )
    };
    if blob.len() < HEADER + 1 {
        return Err(bad(0, "shorter than header and terminator"));
    }
    let zlbytes = rd::<4>(blob, 0).map(u32::from_le_bytes).unwrap_or(0) as usize;
    let zltail = rd::<4>(blob, 4).map(u32::from_le_bytes).unwrap_or(0) as usize;
    let zllen = rd::<2>(blob, 8).map(u16::from_le_bytes).unwrap_or(0);
    if zlbytes != blob.len() {
        return Err(bad(
            0,
            &format!("zlbytes {zlbytes} but blob has {} bytes", blob.len()),
        ));
    }
    let end = blob.len() - 1;
    if blob.get(end) != Some(&0xFF) {
        return Err(bad(end, "expected 0xFF terminator"));
    }
    let mut p = HEADER;
    let mut prev_size = 0usize;
    let mut last = HEADER;
    let mut count = 0u64;
    while p < end {
        let b0 = blob.get(p).copied().unwrap_or(0xFF);
        let (prevlen, pl_size) = if b0 < 254 {
            (b0 as usize, 1)
        } else if b0 == 254 {
            let v = rd::<4>(blob, p + 1).ok_or_else(|| bad(p, "prevlen overruns"))?;
            (u32::from_le_bytes(v) as usize, 5)
        } else {
            return Err(bad(p, "unexpected 0xFF before the end"));
        };
        if prevlen != prev_size {
            return Err(bad(
                p,
                &format!("prevlen {prevlen} but previous entry has {prev_size} bytes"),
            ));
        }
        let q = p + pl_size;
        let e = blob
            .get(q)
            .copied()
            .ok_or_else(|| bad(q, "encoding overruns"))?;
        let (elem, enc_size) = match e >> 6 {
            0 => {
                let l = (e & 0x3f) as usize;
                (
                    Elem::Str(
                        blob.get(q + 1..q + 1 + l)
                            .ok_or_else(|| bad(q, "string overruns"))?,
                    ),
                    1 + l,
                )
            }
            1 => {
                let b1 = blob
                    .get(q + 1)
                    .copied()
                    .ok_or_else(|| bad(q, "length overruns"))?;
                let l = ((e & 0x3f) as usize) << 8 | b1 as usize;
                (
                    Elem::Str(
                        blob.get(q + 2..q + 2 + l)
                            .ok_or_else(|| bad(q, "string overruns"))?,
                    ),
                    2 + l,
                )
            }
            2 => {
                if e != 0x80 {
                    return Err(bad(q, &format!("bad string encoding {e:#04x}")));
                }
                let l = rd::<4>(blob, q + 1)
                    .map(u32::from_be_bytes)
                    .ok_or_else(|| bad(q, "length overruns"))? as usize;
                let s = q
                    .checked_add(5 + l)
                    .and_then(|x| blob.get(q + 5..x))
                    .ok_or_else(|| bad(q, "string overruns"))?;
                (Elem::Str(s), 5 + l)
            }
            _ => match e {
                0xC0 => (
                    Elem::Int(i64::from(i16::from_le_bytes(
                        rd(blob, q + 1).ok_or_else(|| bad(q, "int16"))?,
                    ))),
                    3,
                ),
                0xD0 => (
                    Elem::Int(i64::from(i32::from_le_bytes(
                        rd(blob, q + 1).ok_or_else(|| bad(q, "int32"))?,
                    ))),
                    5,
                ),
                0xE0 => (
                    Elem::Int(i64::from_le_bytes(
                        rd(blob, q + 1).ok_or_else(|| bad(q, "int64"))?,
                    )),
                    9,
                ),
                0xF0 => {
                    let v: [u8; 3] = rd(blob, q + 1).ok_or_else(|| bad(q, "int24"))?;
                    (
                        Elem::Int(i64::from(i32::from_le_bytes([0, v[0], v[1], v[2]]) >> 8)),
                        4,
                    )
                }
                0xFE => (
                    Elem::Int(i64::from(
                        blob.get(q + 1).copied().ok_or_else(|| bad(q, "int8"))? as i8,
                    )),
                    2,
                ),
                0xF1..=0xFD => (Elem::Int(i64::from(e & 0x0f) - 1), 1),
                _ => return Err(bad(q, &format!("bad integer encoding {e:#04x}"))),
            },
        };
        let size = pl_size + enc_size;
        if p + size > end {
            return Err(bad(p, "entry overruns the terminator"));
        }
        f(elem)?;
        count += 1;
        last = p;
        prev_size = size;
        p += size;
    }
    if zltail != last {
        return Err(bad(4, &format!("zltail {zltail} but last entry at {last}")));
    }
    if zllen != u16::MAX && u64::from(zllen) != count {
        return Err(bad(8, &format!("zllen {zllen} but {count} entries")));
    }
    Ok(count)
}

/// Builds a ziplist.
#[derive(Debug, Clone)]
pub struct Builder {
    buf: Vec<u8>,
    count: u64,
    prev_size: usize,
    last: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// An empty ziplist.
    pub fn new() -> Self {
        Builder {
            buf: vec![0; HEADER],
            count: 0,
            prev_size: 0,
            last: HEADER,
        }
    }

    /// Current size in bytes (including terminator).
    pub fn len_bytes(&self) -> usize {
        self.buf.len() + 1
    }

    fn prevlen(&mut self) {
        self.last = self.buf.len();
        if self.prev_size < 254 {
            self.buf.push(self.prev_size as u8);
        } else {
            self.buf.push(254);
            self.buf
                .extend_from_slice(&(self.prev_size as u32).to_le_bytes());
        }
    }

    /// Append an element, integer-encoded when it is a canonical integer.
    pub fn push(&mut self, s: &[u8]) {
        let start = self.buf.len();
        self.prevlen();
        if let Some(v) = parse_canonical_i64(s) {
            if (0..=12).contains(&v) {
                self.buf.push(0xF1 + v as u8);
            } else if (-128..=127).contains(&v) {
                self.buf.push(0xFE);
                self.buf.push(v as i8 as u8);
            } else if (-32768..=32767).contains(&v) {
                self.buf.push(0xC0);
                self.buf.extend_from_slice(&(v as i16).to_le_bytes());
            } else if (-8_388_608..=8_388_607).contains(&v) {
                self.buf.push(0xF0);
                self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
            } else if (i64::from(i32::MIN)..=i64::from(i32::MAX)).contains(&v) {
                self.buf.push(0xD0);
                self.buf.extend_from_slice(&(v as i32).to_le_bytes());
            } else {
                self.buf.push(0xE0);
                self.buf.extend_from_slice(&v.to_le_bytes());
            }
        } else {
            let l = s.len();
            if l <= 63 {
                self.buf.push(l as u8);
            } else if l <= 16383 {
                self.buf.push(0x40 | (l >> 8) as u8);
                self.buf.push((l & 0xff) as u8);
            } else {
                self.buf.push(0x80);
                self.buf.extend_from_slice(&(l as u32).to_be_bytes());
            }
            self.buf.extend_from_slice(s);
        }
        self.prev_size = self.buf.len() - start;
        self.count += 1;
    }

    /// Finish: write header and terminator.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xFF);
        let total = self.buf.len() as u32;
        let len = if self.count < u64::from(u16::MAX) {
            self.count as u16
        } else {
            u16::MAX
        };
        let tail = self.last as u32;
        if let Some(h) = self.buf.get_mut(0..4) {
            h.copy_from_slice(&total.to_le_bytes());
        }
        if let Some(h) = self.buf.get_mut(4..8) {
            h.copy_from_slice(&tail.to_le_bytes());
        }
        if let Some(h) = self.buf.get_mut(8..10) {
            h.copy_from_slice(&len.to_le_bytes());
        }
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let items: Vec<Vec<u8>> = vec![
            b"0".to_vec(),
            b"12".to_vec(),
            b"13".to_vec(),
            b"-128".to_vec(),
            b"300".to_vec(),
            b"-70000".to_vec(),
            b"8388608".to_vec(),
            b"9223372036854775807".to_vec(),
            b"".to_vec(),
            b"hello".to_vec(),
            vec![b'a'; 300],
            vec![b'b'; 20000],
            b"007".to_vec(),
        ];
        let mut b = Builder::new();
        for i in &items {
            b.push(i);
        }
        let zl = b.finish();
        let mut got = Vec::new();
        for_each(&zl, 0, |e| {
            got.push(e.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(got, items);
    }

    #[test]
    fn empty() {
        let zl = Builder::new().finish();
        assert_eq!(for_each(&zl, 0, |_| Ok(())).unwrap(), 0);
    }
}
