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
    decompress_into(input, out_len, Vec::new())
}

/// [`decompress`] into `out` (cleared first; a reused buffer saves an
/// allocation per string).
pub fn decompress_into(
    input: &[u8],
    out_len: usize,
    mut out: Vec<u8>,
) -> Result<Vec<u8>, LzfError> {
    out.clear();
    out.reserve(out_len);
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

const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3); // 264 bytes copied at most
const MAX_LIT: usize = 1 << 5;

/// Hash slot of the 3 bytes most recently shifted into `h` (liblzf's
/// "very fast" variant, so the parse matches Redis's choices).
#[inline]
fn slot(h: u32) -> usize {
    ((h >> (24 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

/// An output buffer of fixed capacity; writing past it means "does not
/// compress well enough".
struct Out {
    buf: Vec<u8>,
    op: usize,
}

impl Out {
    fn put(&mut self, at: usize, b: u8) -> Option<()> {
        *self.buf.get_mut(at)? = b;
        Some(())
    }
}

/// Compress `input` as Redis does before storing a string: the result must
/// fit in `input.len() - 4` bytes, otherwise `None` (Redis then stores the
/// string raw). The parse follows liblzf's (hash table of 2^16 slots,
/// greedy matches, the last two positions of each match re-indexed), so for
/// the same input the output is normally byte-identical to Redis's.
pub fn compress(input: &[u8]) -> Option<Vec<u8>> {
    if input.len() <= 4 || input.len() >= u32::MAX as usize {
        return None;
    }
    TABLE.with(|t| {
        let mut guard = t.borrow_mut();
        let table = &mut *guard;
        let out = compress_with(input, table);
        // Leave the table all-empty for the next call (same result as a
        // fresh table, without zeroing 256 KiB per short string).
        for &i in &table.touched {
            if let Some(s) = table.slots.get_mut(i as usize) {
                *s = 0;
            }
        }
        table.touched.clear();
        out
    })
}

/// The hash table, reused per thread: `slots` hold positions + 1 (0 =
/// empty); `touched` lists the slots written by the current call.
struct Table {
    slots: Vec<u32>,
    touched: Vec<u32>,
}

impl Table {
    #[inline]
    fn set(&mut self, slot: usize, pos: usize) {
        if let Some(s) = self.slots.get_mut(slot) {
            if *s == 0 {
                self.touched.push(slot as u32);
            }
            *s = pos as u32 + 1;
        }
    }
}

thread_local! {
    static TABLE: std::cell::RefCell<Table> =
        std::cell::RefCell::new(Table { slots: vec![0; HSIZE], touched: Vec::new() });
}

fn compress_with(input: &[u8], htab: &mut Table) -> Option<Vec<u8>> {
    let in_len = input.len();
    let out_len = in_len - 4;
    let mut o = Out {
        buf: vec![0u8; out_len],
        op: 0,
    };
    let at = |i: usize| input.get(i).copied().map(u32::from).unwrap_or(0);
    let mut lit = 0usize;
    o.op += 1; // header of the first literal run
    let mut ip = 0usize;
    let mut hval = (at(0) << 8) | at(1);
    while ip + 2 < in_len {
        hval = (hval << 8) | at(ip + 2);
        let hs = slot(hval);
        let cand = htab.slots.get(hs).copied().unwrap_or(0) as usize;
        htab.set(hs, ip);
        let matched = cand > 1 && {
            let r = cand - 1;
            r < ip
                && ip - r - 1 < MAX_OFF
                && input.get(r..r + 3).is_some()
                && input.get(r..r + 3) == input.get(ip..ip + 3)
        };
        if matched {
            let r = cand - 1;
            let off = ip - r - 1;
            let maxlen = (in_len - ip - 2).min(MAX_REF);
            if o.op + 4 >= out_len && o.op - usize::from(lit == 0) + 4 >= out_len {
                return None;
            }
            o.put(o.op.checked_sub(lit + 1)?, (lit as u8).wrapping_sub(1))?; // close the run
            o.op -= usize::from(lit == 0); // drop an empty run
                                           // Count matching bytes like liblzf: when more than 16 may match,
                                           // 16 bytes are compared without the length cap first (so a match
                                           // may run to the very end of the input), then one by one.
            let eq = |n: usize| input.get(r + n).is_some() && input.get(r + n) == input.get(ip + n);
            let mut len = 2usize;
            let mut mismatch = false;
            if maxlen > 16 {
                for _ in 0..16 {
                    len += 1;
                    if !eq(len) {
                        mismatch = true;
                        break;
                    }
                }
            }
            if !mismatch {
                loop {
                    len += 1;
                    if !(len < maxlen && eq(len)) {
                        break;
                    }
                }
            }
            len -= 2;
            ip += 1;
            if len < 7 {
                o.put(o.op, ((off >> 8) + (len << 5)) as u8)?;
                o.op += 1;
            } else {
                o.put(o.op, ((off >> 8) + (7 << 5)) as u8)?;
                o.put(o.op + 1, (len - 7) as u8)?;
                o.op += 2;
            }
            o.put(o.op, (off & 0xff) as u8)?;
            o.op += 2; // the offset byte, then the next run's header
            lit = 0;
            ip += len + 1;
            if ip + 2 >= in_len {
                break;
            }
            // Re-index the last two positions of the match.
            ip -= 2;
            hval = (at(ip) << 8) | at(ip + 1);
            for _ in 0..2 {
                hval = (hval << 8) | at(ip + 2);
                htab.set(slot(hval), ip);
                ip += 1;
            }
        } else {
            if o.op >= out_len {
                return None;
            }
            o.put(o.op, *input.get(ip)?)?;
            o.op += 1;
            ip += 1;
            lit += 1;
            if lit == MAX_LIT {
                o.put(o.op - lit - 1, (lit - 1) as u8)?;
                lit = 0;
                o.op += 1;
            }
        }
    }
    if o.op + 3 > out_len {
        return None;
    }
    while ip < in_len {
        o.put(o.op, *input.get(ip)?)?;
        o.op += 1;
        ip += 1;
        lit += 1;
        if lit == MAX_LIT {
            o.put(o.op - lit - 1, (lit - 1) as u8)?;
            lit = 0;
            o.op += 1;
        }
    }
    o.put(o.op.checked_sub(lit + 1)?, (lit as u8).wrapping_sub(1))?;
    o.op -= usize::from(lit == 0);
    o.buf.truncate(o.op);
    Some(o.buf)
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
    fn reused_table_gives_the_same_output() {
        let a: Vec<u8> = b"abcabcabcabcabcabcabcabcxyzxyzxyzxyzxyz".repeat(5);
        let b: Vec<u8> = b"xyzabcxyzabc0123456789xyzabcabc".repeat(9);
        let first = compress(&a).unwrap();
        let _ = compress(&b).unwrap();
        assert_eq!(compress(&a).unwrap(), first);
        // Redis's own bytes for 21 'a': a 2-byte literal, then one back-reference.
        assert_eq!(
            compress(&[b'a'; 21]).unwrap(),
            [0x01, b'a', b'a', 0xe0, 0x0a, 0x00]
        );
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
