//! LZF compression as written by Redis (liblzf 1.5 format), implemented here.
//!
//! Format: a sequence of runs. A control byte `c < 32` starts a literal run of
//! `c + 1` bytes. Otherwise `len = c >> 5` (7 means "add the next byte") and
//! the back-reference distance is `((c & 31) << 8 | next byte) + 1`; the run
//! copies `len + 2` bytes starting `distance` bytes back in the output (the
//! source may overlap the bytes being written).

/// Largest output a back-reference run can produce from 3 input bytes, used
/// to bound the expansion of untrusted input (264 bytes from 3 bytes).
pub const MAX_EXPANSION: u64 = 88;

/// Why decompression failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LzfError {
    /// A literal or back-reference reads past the end of the input.
    InputOverrun,
    /// A back-reference points before the start of the output.
    BadReference,
    /// The output would not have exactly the declared length.
    LengthMismatch,
}

/// Decompress `input`, which must expand to exactly `out_len` bytes.
///
/// The caller must bound `out_len` before calling (see [`MAX_EXPANSION`]).
pub fn decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, LzfError> {
    let mut out: Vec<u8> = Vec::with_capacity(out_len);
    let mut ip = 0usize;
    while let Some(&ctrl) = input.get(ip) {
        ip += 1;
        if ctrl < 32 {
            let run = ctrl as usize + 1;
            let lit = input.get(ip..ip + run).ok_or(LzfError::InputOverrun)?;
            if out.len() + run > out_len {
                return Err(LzfError::LengthMismatch);
            }
            out.extend_from_slice(lit);
            ip += run;
        } else {
            let mut len = (ctrl >> 5) as usize;
            if len == 7 {
                len += *input.get(ip).ok_or(LzfError::InputOverrun)? as usize;
                ip += 1;
            }
            let low = *input.get(ip).ok_or(LzfError::InputOverrun)? as usize;
            ip += 1;
            let dist = (((ctrl & 0x1f) as usize) << 8 | low) + 1;
            let len = len + 2;
            if dist > out.len() {
                return Err(LzfError::BadReference);
            }
            if out.len() + len > out_len {
                return Err(LzfError::LengthMismatch);
            }
            let start = out.len() - dist;
            if dist >= len {
                out.extend_from_within(start..start + len);
            } else {
                for i in 0..len {
                    let b = out.get(start + i).copied().ok_or(LzfError::BadReference)?;
                    out.push(b);
                }
            }
        }
    }
    if out.len() != out_len {
        return Err(LzfError::LengthMismatch);
    }
    Ok(out)
}

const HLOG: u32 = 14;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3); // 264 bytes copied at most
const MAX_LIT: usize = 1 << 5;

#[inline]
fn hash3(a: u8, b: u8, c: u8) -> usize {
    let v = (a as u32) << 16 | (b as u32) << 8 | c as u32;
    (v.wrapping_mul(2_654_435_761) >> (32 - HLOG)) as usize
}

/// Compress `input`. Returns `None` when the result would not be smaller
/// than `input.len() - 4` (Redis keeps LZF only when it saves 4+ bytes) or
/// when the input is shorter than 4 bytes.
pub fn compress(input: &[u8]) -> Option<Vec<u8>> {
    if input.len() < 4 {
        return None;
    }
    let limit = input.len() - 4;
    let mut out: Vec<u8> = Vec::with_capacity(limit);
    let mut htab = vec![0usize; 1 << HLOG];
    let mut lit_start = 0usize;
    let mut ip = 0usize;

    fn flush(out: &mut Vec<u8>, lit: &[u8]) {
        for chunk in lit.chunks(MAX_LIT) {
            out.push((chunk.len() - 1) as u8);
            out.extend_from_slice(chunk);
        }
    }

    while ip + 2 < input.len() {
        let (a, b, c) = match input.get(ip..ip + 3) {
            Some(&[a, b, c]) => (a, b, c),
            _ => break,
        };
        let h = hash3(a, b, c);
        let cand = htab.get(h).copied().unwrap_or(0);
        if let Some(slot) = htab.get_mut(h) {
            *slot = ip + 1;
        }
        if cand > 0 {
            let r = cand - 1;
            let dist = ip - r;
            if (1..=MAX_OFF).contains(&dist) && input.get(r..r + 3) == Some(&[a, b, c][..]) {
                let max_len = MAX_REF.min(input.len() - ip);
                let mut len = 3;
                while len < max_len && input.get(r + len) == input.get(ip + len) {
                    len += 1;
                }
                flush(&mut out, input.get(lit_start..ip).unwrap_or(&[]));
                let l = len - 2;
                let off = dist - 1;
                if l < 7 {
                    out.push(((l as u8) << 5) | (off >> 8) as u8);
                } else {
                    out.push((7 << 5) | (off >> 8) as u8);
                    out.push((l - 7) as u8);
                }
                out.push((off & 0xff) as u8);
                // Index the positions inside the match so later data can refer to them.
                let end = ip + len;
                let mut p = ip + 1;
                while p + 2 < end.min(input.len()) {
                    if let Some(&[x, y, z]) = input.get(p..p + 3) {
                        if let Some(slot) = htab.get_mut(hash3(x, y, z)) {
                            *slot = p + 1;
                        }
                    }
                    p += 1;
                }
                ip = end;
                lit_start = ip;
                if out.len() >= limit {
                    return None;
                }
                continue;
            }
        }
        ip += 1;
    }
    flush(&mut out, input.get(lit_start..).unwrap_or(&[]));
    if out.len() >= limit || out.len() + 4 > input.len() {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let cases: Vec<Vec<u8>> = vec![
            vec![b'a'; 1000],
            b"hello hello hello hello hello world world world".to_vec(),
            (0..5000u32).map(|i| (i % 251) as u8).collect(),
            (0..100_000u32).map(|i| (i / 7 % 13) as u8).collect(),
        ];
        for c in cases {
            let z = compress(&c).expect("compressible");
            assert!(z.len() < c.len());
            assert_eq!(decompress(&z, c.len()).unwrap(), c);
        }
    }

    #[test]
    fn incompressible() {
        let mut x: u64 = 0x1234_5678;
        let data: Vec<u8> = (0..1000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(compress(&data).is_none());
    }

    #[test]
    fn bad_input() {
        assert_eq!(decompress(&[0x20, 0x00], 3), Err(LzfError::BadReference));
        assert_eq!(decompress(&[5, b'a'], 6), Err(LzfError::InputOverrun));
        assert_eq!(decompress(&[0, b'a'], 2), Err(LzfError::LengthMismatch));
    }
}
