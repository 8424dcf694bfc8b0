//! CRC64 "Jones" as used by Redis: reflected polynomial 0xad93d23594c935a9
//! (0x95ac9329ac4bc9b5 bit-reversed), init 0, no final xor;
//! `checksum(b"123456789") == 0xe9c6d914c4b8d9ca`.
//!
//! Implementation: slice-by-8 tables, and for long inputs four independent
//! lanes advanced in one loop (so the CPU overlaps their table lookups),
//! joined with the standard CRC combination (multiply the earlier CRC by
//! x^(8·len) modulo the polynomial). Because init and xorout are zero the
//! CRC is linear and `crc(A ‖ B) = crc(A)·x^(8|B|) ⊕ crc(B)`.

const POLY: u64 = 0x95ac_9329_ac4b_c9b5;

// Indices are loop counters below 256/8 or bytes masked to 0..=255.
#[allow(clippy::indexing_slicing)]
const fn make_tables() -> [[u64; 256]; 8] {
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u64;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut c = t[0][i];
        let mut j = 1;
        while j < 8 {
            c = t[0][(c & 0xff) as usize] ^ (c >> 8);
            t[j][i] = c;
            j += 1;
        }
        i += 1;
    }
    t
}

static T: [[u64; 256]; 8] = make_tables();

/// Multiply two polynomials modulo POLY (reflected representation: x^0 is
/// the top bit).
const fn multmodp(a: u64, mut b: u64) -> u64 {
    let mut m = 1u64 << 63;
    let mut p = 0u64;
    loop {
        if a & m != 0 {
            p ^= b;
            if a & (m - 1) == 0 {
                break;
            }
        }
        m >>= 1;
        if m == 0 {
            break;
        }
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
    }
    p
}

/// X2N[k] = x^(2^k) mod POLY.
#[allow(clippy::indexing_slicing)]
const fn make_x2n() -> [u64; 64] {
    let mut t = [0u64; 64];
    t[0] = 1 << 62;
    let mut k = 1;
    while k < 64 {
        t[k] = multmodp(t[k - 1], t[k - 1]);
        k += 1;
    }
    t
}

static X2N: [u64; 64] = make_x2n();

/// x^(n·2^k) mod POLY.
fn x2nmodp(mut n: u64, mut k: usize) -> u64 {
    let mut p = 1u64 << 63;
    while n != 0 {
        if n & 1 != 0 {
            p = multmodp(X2N.get(k & 63).copied().unwrap_or(0), p);
        }
        n >>= 1;
        k += 1;
    }
    p
}

/// CRC of `A ‖ B` from `crc(A)`, `crc(B)` and `|B|`.
pub fn combine(crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    multmodp(x2nmodp(len_b, 3), crc_a) ^ crc_b
}

// Table indices below are masked to 0..=255, in bounds of the 256-entry rows.
#[allow(clippy::indexing_slicing)]
#[inline(always)]
fn step8(crc: u64, chunk: [u8; 8]) -> u64 {
    let c = crc ^ u64::from_le_bytes(chunk);
    T[7][(c & 0xff) as usize]
        ^ T[6][((c >> 8) & 0xff) as usize]
        ^ T[5][((c >> 16) & 0xff) as usize]
        ^ T[4][((c >> 24) & 0xff) as usize]
        ^ T[3][((c >> 32) & 0xff) as usize]
        ^ T[2][((c >> 40) & 0xff) as usize]
        ^ T[1][((c >> 48) & 0xff) as usize]
        ^ T[0][(c >> 56) as usize]
}

#[allow(clippy::indexing_slicing)]
fn slice8(mut crc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        crc = step8(crc, a);
    }
    for &b in chunks.remainder() {
        crc = T[0][((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// Continue a CRC over more data.
pub fn update(crc: u64, data: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if data.len() >= 256 && clmul::available() {
            return clmul::update(crc, data);
        }
    }
    update_tables(crc, data)
}

/// Table-driven CRC: four lanes of slice-by-8 for long inputs.
fn update_tables(crc: u64, data: &[u8]) -> u64 {
    const LANES: usize = 4;
    if data.len() < 4096 {
        return slice8(crc, data);
    }
    let lane = (data.len() / LANES) & !7;
    let (a, rest) = data.split_at(lane);
    let (b, rest) = rest.split_at(lane);
    let (c, rest) = rest.split_at(lane);
    let (d, tail) = rest.split_at(lane);
    let (mut ca, mut cb, mut cc, mut cd) = (crc, 0u64, 0u64, 0u64);
    let word = |s: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(s);
        w
    };
    for (((wa, wb), wc), wd) in a
        .chunks_exact(8)
        .zip(b.chunks_exact(8))
        .zip(c.chunks_exact(8))
        .zip(d.chunks_exact(8))
    {
        ca = step8(ca, word(wa));
        cb = step8(cb, word(wb));
        cc = step8(cc, word(wc));
        cd = step8(cd, word(wd));
    }
    let l = lane as u64;
    let r = combine(combine(combine(ca, cb, l), cc, l), cd, l);
    slice8(r, tail)
}

/// CRC64 of `data`.
pub fn checksum(data: &[u8]) -> u64 {
    update(0, data)
}

/// x^k mod P in normal (non-reflected) form, P = x^64 + 0xad93d23594c935a9.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const fn xpow_mod(k: u32) -> u64 {
    const P_NORMAL: u64 = 0xad93_d235_94c9_35a9;
    let mut r: u64 = 1;
    let mut i = 0;
    while i < k {
        let carry = r >> 63;
        r <<= 1;
        if carry == 1 {
            r ^= P_NORMAL;
        }
        i += 1;
    }
    r
}

/// Carry-less multiplication folding (PCLMULQDQ), used when the CPU has it.
///
/// Bytes are loaded little-endian into 128-bit registers, so bit k of a
/// block is the message's k-th bit, the coefficient of x^(127-k). Folding a
/// block forward by N bits multiplies its two 64-bit halves by
/// x^(N+64) and x^N modulo P; with bit-reflected operands the carry-less
/// product comes out one bit short, which the constants absorb by using
/// x^(N+63) and x^(N-1). What remains after folding is a 128-bit value with
/// the same CRC as the folded prefix, finished with the tables.
#[cfg(target_arch = "x86_64")]
mod clmul {
    use super::{slice8, xpow_mod};
    use std::arch::x86_64::{
        __m128i, _mm_clmulepi64_si128, _mm_loadu_si128, _mm_set_epi64x, _mm_storeu_si128,
        _mm_xor_si128,
    };

    /// (low lane constant, high lane constant) for folding by `n` bits.
    const fn fold_consts(n: u32) -> (u64, u64) {
        (
            xpow_mod(n + 63).reverse_bits(),
            xpow_mod(n - 1).reverse_bits(),
        )
    }

    const K128: (u64, u64) = fold_consts(128);
    const K512: (u64, u64) = fold_consts(512);

    pub(super) fn available() -> bool {
        std::is_x86_feature_detected!("pclmulqdq") && std::is_x86_feature_detected!("sse2")
    }

    pub(super) fn update(crc: u64, data: &[u8]) -> u64 {
        // SAFETY: `available()` checked that the CPU supports PCLMULQDQ and SSE2.
        unsafe { update_clmul(crc, data) }
    }

    #[target_feature(enable = "pclmulqdq,sse2")]
    unsafe fn fold(a: __m128i, k: __m128i, d: __m128i) -> __m128i {
        let lo = _mm_clmulepi64_si128(a, k, 0x00);
        let hi = _mm_clmulepi64_si128(a, k, 0x11);
        _mm_xor_si128(_mm_xor_si128(lo, hi), d)
    }

    #[target_feature(enable = "pclmulqdq,sse2")]
    unsafe fn load(b: &[u8]) -> __m128i {
        debug_assert!(b.len() >= 16);
        // SAFETY: callers pass 16-byte chunks; unaligned loads are allowed.
        unsafe { _mm_loadu_si128(b.as_ptr().cast::<__m128i>()) }
    }

    #[target_feature(enable = "pclmulqdq,sse2")]
    unsafe fn update_clmul(crc: u64, data: &[u8]) -> u64 {
        let k128 = _mm_set_epi64x(K128.1 as i64, K128.0 as i64);
        let k512 = _mm_set_epi64x(K512.1 as i64, K512.0 as i64);
        let wide = data.len() / 64 * 64;
        let (body, tail) = data.split_at(wide);
        let mut chunks = body.chunks_exact(64);
        let Some(first) = chunks.next() else {
            return slice8(crc, data);
        };
        // SAFETY (all unsafe blocks below): `load` gets 16-byte sub-slices of
        // 64-byte chunks; the intrinsics only need the features enabled above.
        let part =
            |c: &[u8], i: usize| unsafe { load(c.get(i * 16..i * 16 + 16).unwrap_or(&[0; 16])) };
        let mut a0 = _mm_xor_si128(part(first, 0), _mm_set_epi64x(0, crc as i64));
        let mut a1 = part(first, 1);
        let mut a2 = part(first, 2);
        let mut a3 = part(first, 3);
        for c in chunks {
            unsafe {
                a0 = fold(a0, k512, part(c, 0));
                a1 = fold(a1, k512, part(c, 1));
                a2 = fold(a2, k512, part(c, 2));
                a3 = fold(a3, k512, part(c, 3));
            }
        }
        let mut a = unsafe { fold(fold(fold(a0, k128, a1), k128, a2), k128, a3) };
        let mut rest = tail.chunks_exact(16);
        for c in &mut rest {
            a = unsafe { fold(a, k128, load(c)) };
        }
        let mut bytes = [0u8; 16];
        unsafe { _mm_storeu_si128(bytes.as_mut_ptr().cast::<__m128i>(), a) };
        slice8(slice8(0, &bytes), rest.remainder())
    }
}

/// Incremental CRC64.
#[derive(Debug, Clone, Default)]
pub struct Crc64 {
    crc: u64,
}

impl Crc64 {
    /// A fresh digest.
    pub fn new() -> Self {
        Crc64 { crc: 0 }
    }

    /// Feed bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.crc = update(self.crc, data);
    }

    /// The CRC of everything fed so far.
    pub fn value(&self) -> u64 {
        self.crc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crc::{Crc, CRC_64_REDIS};

    #[test]
    fn check_value() {
        assert_eq!(checksum(b"123456789"), 0xe9c6d914c4b8d9ca);
        let mut c = Crc64::new();
        c.update(b"1234");
        c.update(b"56789");
        assert_eq!(c.value(), 0xe9c6d914c4b8d9ca);
    }

    #[test]
    fn matches_reference_implementation() {
        let reference = Crc::<u64>::new(&CRC_64_REDIS);
        let mut x: u64 = 42;
        let data: Vec<u8> = (0..100_003)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 33) as u8
            })
            .collect();
        for len in [0, 1, 7, 8, 9, 4095, 4096, 4097, 10_000, 65_536, 100_003] {
            assert_eq!(
                checksum(&data[..len]),
                reference.checksum(&data[..len]),
                "len {len}"
            );
        }
        let mut inc = Crc64::new();
        for part in data.chunks(5000) {
            inc.update(part);
        }
        assert_eq!(inc.value(), reference.checksum(&data));
    }
}
