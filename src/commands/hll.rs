//! HyperLogLog: PFADD PFCOUNT PFMERGE, byte-compatible with Redis's
//! representation (hyperloglog.c), so HLLs moved between Redis and Basalt
//! keep counting identically: a 16-byte header ("HYLL", encoding, 3
//! unused bytes, 8-byte little-endian cached cardinality whose top bit
//! marks it stale) followed by either the sparse opcodes (ZERO, XZERO,
//! VAL runs) or 16384 dense 6-bit registers. Hash: MurmurHash64A with
//! seed 0xadc83b19; estimator: Ertl's improved one, as Redis 5+.

use basalt_storage::{Entry, Value};

use super::flags::*;
use super::string::str_bytes;
use super::{cmd, CmdError, CmdResult, CommandSpec, Ctx};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "hyperloglog",
        since: "2.8.9",
        ..cmd("pfadd", -2, WRITE | DENYOOM | FAST, pfadd)
    },
    CommandSpec {
        first_key: 1,
        last_key: -1,
        step: 1,
        group: "hyperloglog",
        since: "2.8.9",
        ..cmd("pfcount", -2, READONLY, pfcount)
    },
    CommandSpec {
        first_key: 1,
        last_key: -1,
        step: 1,
        group: "hyperloglog",
        since: "2.8.9",
        ..cmd("pfmerge", -2, WRITE | DENYOOM, pfmerge)
    },
];

const P: u32 = 14;
const REGS: usize = 1 << P;
const Q: u32 = 64 - P;
const BITS: usize = 6;
const REG_MAX: u8 = 63;
const HDR: usize = 16;
const DENSE_SIZE: usize = HDR + (REGS * BITS).div_ceil(8);
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
const CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";

fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, b) in rest.iter().enumerate().rev() {
            h ^= (*b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// (register index, run length of the "000..1" pattern).
fn pat_len(ele: &[u8]) -> (usize, u8) {
    let mut hash = murmur64a(ele, 0xadc8_3b19);
    let index = (hash & (REGS as u64 - 1)) as usize;
    hash >>= P;
    hash |= 1u64 << Q;
    let mut bit = 1u64;
    let mut count = 1u8;
    while hash & bit == 0 {
        count += 1;
        bit <<= 1;
    }
    (index, count)
}

fn dense_get(r: &[u8], i: usize) -> u8 {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let b0 = r[byte] as u16;
    let b1 = r.get(byte + 1).copied().unwrap_or(0) as u16;
    (((b0 >> fb) | (b1 << (8 - fb))) & REG_MAX as u16) as u8
}

fn dense_set(r: &mut [u8], i: usize, v: u8) {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let fb8 = 8 - fb;
    let v = v as u16;
    r[byte] &= !((REG_MAX as u16) << fb) as u8;
    r[byte] |= (v << fb) as u8;
    if byte + 1 < r.len() {
        r[byte + 1] &= !((REG_MAX as u16) >> fb8) as u8;
        r[byte + 1] |= (v >> fb8) as u8;
    }
}

fn new_hll() -> Vec<u8> {
    let mut v = vec![0u8; HDR];
    v[..4].copy_from_slice(b"HYLL");
    v[4] = SPARSE;
    // One XZERO opcode covering all 16384 registers.
    let l = REGS - 1;
    v.push((l >> 8) as u8 | 0x40);
    v.push((l & 0xff) as u8);
    v
}

fn valid(v: &[u8]) -> bool {
    v.len() >= HDR && &v[..4] == b"HYLL" && v[4] <= 1 && (v[4] != DENSE || v.len() == DENSE_SIZE)
}

fn invalidate(v: &mut [u8]) {
    v[15] |= 0x80;
}

fn is_zero(b: u8) -> bool {
    b & 0xc0 == 0
}
fn is_xzero(b: u8) -> bool {
    b & 0xc0 == 0x40
}
fn zero_len(b: u8) -> usize {
    (b & 0x3f) as usize + 1
}
fn xzero_len(b: u8, b2: u8) -> usize {
    ((((b & 0x3f) as usize) << 8) | b2 as usize) + 1
}
fn val_value(b: u8) -> u8 {
    ((b >> 2) & 0x1f) + 1
}
fn val_len(b: u8) -> usize {
    (b & 0x3) as usize + 1
}
fn val_op(val: u8, len: usize) -> u8 {
    (((val - 1) << 2) | (len as u8 - 1)) | 0x80
}
fn push_zero(seq: &mut Vec<u8>, len: usize) {
    if len > ZERO_MAX_LEN {
        let l = len - 1;
        seq.push((l >> 8) as u8 | 0x40);
        seq.push((l & 0xff) as u8);
    } else {
        seq.push(len as u8 - 1);
    }
}

/// hllSparseToDense. Err on a corrupt sparse form.
fn to_dense(v: &mut Vec<u8>) -> Result<(), ()> {
    if v[4] == DENSE {
        return Ok(());
    }
    let mut d = vec![0u8; DENSE_SIZE];
    d[..HDR].copy_from_slice(&v[..HDR]);
    d[4] = DENSE;
    let mut idx = 0usize;
    let mut p = HDR;
    while p < v.len() {
        let b = v[p];
        if is_zero(b) {
            idx += zero_len(b);
            p += 1;
        } else if is_xzero(b) {
            idx += xzero_len(b, *v.get(p + 1).ok_or(())?);
            p += 2;
        } else {
            let (run, val) = (val_len(b), val_value(b));
            if run + idx > REGS {
                break;
            }
            for _ in 0..run {
                dense_set(&mut d[HDR..], idx, val);
                idx += 1;
            }
            p += 1;
        }
    }
    if idx != REGS {
        return Err(());
    }
    *v = d;
    Ok(())
}

/// hllSparseSet / hllDenseSet: 1 if the register grew, 0 if not.
fn set_register(v: &mut Vec<u8>, index: usize, count: u8, max_bytes: usize) -> Result<bool, ()> {
    if v[4] == DENSE {
        let old = dense_get(&v[HDR..], index);
        if count > old {
            dense_set(&mut v[HDR..], index, count);
            return Ok(true);
        }
        return Ok(false);
    }
    if count > VAL_MAX_VALUE {
        return promote(v, index, count);
    }
    // Step 1: find the opcode covering `index`.
    let end = v.len();
    let (mut p, mut first, mut prev, mut span) = (HDR, 0usize, None::<usize>, 0usize);
    while p < end {
        let b = v[p];
        let oplen;
        if is_zero(b) {
            span = zero_len(b);
            oplen = 1;
        } else if b & 0x80 != 0 {
            span = val_len(b);
            oplen = 1;
        } else {
            span = xzero_len(b, *v.get(p + 1).ok_or(())?);
            oplen = 2;
        }
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += oplen;
        first += span;
    }
    if span == 0 || p >= end {
        return Err(());
    }
    let b = v[p];
    let (zero, xzero, val) = (is_zero(b), is_xzero(b), b & 0x80 != 0);
    let mut updated_in_place = false;
    if val {
        let old = val_value(b);
        if old >= count {
            return Ok(false);
        }
        if val_len(b) == 1 {
            v[p] = val_op(count, 1);
            updated_in_place = true;
        }
    }
    if !updated_in_place && zero && zero_len(b) == 1 {
        v[p] = val_op(count, 1);
        updated_in_place = true;
    }
    if !updated_in_place {
        // Step 2: split the run into up to three opcodes.
        let last = first + span - 1;
        let mut seq = Vec::with_capacity(5);
        if zero || xzero {
            if index != first {
                push_zero(&mut seq, index - first);
            }
            seq.push(val_op(count, 1));
            if index != last {
                push_zero(&mut seq, last - index);
            }
        } else {
            let cur = val_value(b);
            if index != first {
                seq.push(val_op(cur, index - first));
            }
            seq.push(val_op(count, 1));
            if index != last {
                seq.push(val_op(cur, last - index));
            }
        }
        let oldlen = if xzero { 2 } else { 1 };
        // Step 3: splice it in, or go dense past the size limit.
        if seq.len() > oldlen && v.len() + seq.len() - oldlen > max_bytes {
            return promote(v, index, count);
        }
        v.splice(p..p + oldlen, seq);
    }
    // Step 4: merge adjacent VAL opcodes with the same value.
    let mut p = prev.unwrap_or(HDR);
    let mut scan = 5;
    while p < v.len() && scan > 0 {
        scan -= 1;
        let b = v[p];
        if is_xzero(b) {
            p += 2;
            continue;
        } else if is_zero(b) {
            p += 1;
            continue;
        }
        if p + 1 < v.len() && v[p + 1] & 0x80 != 0 {
            let (v1, v2) = (val_value(b), val_value(v[p + 1]));
            if v1 == v2 {
                let len = val_len(b) + val_len(v[p + 1]);
                if len <= VAL_MAX_LEN {
                    v[p + 1] = val_op(v1, len);
                    v.remove(p);
                    continue;
                }
            }
        }
        p += 1;
    }
    invalidate(v);
    Ok(true)
}

fn promote(v: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, ()> {
    to_dense(v)?;
    let old = dense_get(&v[HDR..], index);
    if count > old {
        dense_set(&mut v[HDR..], index, count);
    }
    Ok(true)
}

/// Raises `max` to this HLL's registers (hllMerge).
fn merge_into(max: &mut [u8; REGS], v: &[u8]) -> Result<(), ()> {
    if v[4] == DENSE {
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(&v[HDR..], i));
        }
        return Ok(());
    }
    let mut i = 0usize;
    let mut p = HDR;
    while p < v.len() {
        let b = v[p];
        if is_zero(b) {
            i += zero_len(b);
            p += 1;
        } else if is_xzero(b) {
            i += xzero_len(b, *v.get(p + 1).ok_or(())?);
            p += 2;
        } else {
            let (run, val) = (val_len(b), val_value(b));
            if run + i > REGS {
                break;
            }
            for _ in 0..run {
                max[i] = max[i].max(val);
                i += 1;
            }
            p += 1;
        }
    }
    if i != REGS {
        return Err(());
    }
    Ok(())
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let zp = z;
        z += x * y;
        y += y;
        if zp == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let zp = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if zp == z {
            return z / 3.0;
        }
    }
}

/// The estimate from a register histogram (hllCount).
fn estimate(histo: &[u32; 64]) -> u64 {
    let m = REGS as f64;
    let mut z = m * tau((m - histo[Q as usize + 1] as f64) / m);
    for j in (1..=Q as usize).rev() {
        z += histo[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histo[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

fn histogram(v: &[u8]) -> Result<[u32; 64], ()> {
    let mut h = [0u32; 64];
    if v[4] == DENSE {
        for i in 0..REGS {
            h[dense_get(&v[HDR..], i) as usize] += 1;
        }
        return Ok(h);
    }
    let mut idx = 0usize;
    let mut p = HDR;
    while p < v.len() {
        let b = v[p];
        if is_zero(b) {
            let r = zero_len(b);
            idx += r;
            h[0] += r as u32;
            p += 1;
        } else if is_xzero(b) {
            let r = xzero_len(b, *v.get(p + 1).ok_or(())?);
            idx += r;
            h[0] += r as u32;
            p += 2;
        } else {
            let r = val_len(b);
            idx += r;
            h[val_value(b) as usize] += r as u32;
            p += 1;
        }
    }
    if idx != REGS {
        return Err(());
    }
    Ok(h)
}

/// The HLL bytes of an entry: Ok(None) missing, Err on wrong type/format.
fn hll_bytes(e: Option<&Entry>) -> Result<Option<Vec<u8>>, CmdError> {
    let Some(e) = e else { return Ok(None) };
    let mut buf = itoa::Buffer::new();
    let b = str_bytes(&e.value, &mut buf).ok_or(CmdError::WrongType)?;
    if !valid(b) {
        return Err(CmdError::msg(NOT_HLL));
    }
    Ok(Some(b.to_vec()))
}

fn max_bytes(ctx: &Ctx<'_>) -> usize {
    ctx.srv
        .config
        .read()
        .get("hll-sparse-max-bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

fn pfadd(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let maxb = max_bytes(ctx);
    let mut k = ctx.write_key(a[1]);
    let (mut v, mut updated) = match hll_bytes(k.get())? {
        Some(v) => (v, false),
        None => (new_hll(), true),
    };
    for ele in &a[2..] {
        let (idx, count) = pat_len(ele);
        updated |= set_register(&mut v, idx, count, maxb).map_err(|_| CmdError::msg(CORRUPT))?;
    }
    if updated {
        invalidate(&mut v);
        let keep = k.get().map_or(0, |e| e.expire_at);
        k.insert(Entry::with_expire(Value::Raw(v.into()), keep));
        ctx.propagate(a);
        ctx.notify(crate::notify::STRING, b"pfadd", a[1]);
    }
    drop(k);
    ctx.out.int(updated as i64);
    Ok(())
}

fn pfcount(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    if a.len() == 2 {
        let mut k = ctx.write_key(a[1]);
        // A read lookup in Redis (it may cache the count in the value).
        ctx.count_lookup(k.get().is_some());
        let Some(mut v) = hll_bytes(k.get())? else {
            drop(k);
            ctx.out.int(0);
            return Ok(());
        };
        let card = if v[15] & 0x80 == 0 {
            u64::from_le_bytes([v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]])
        } else {
            let c = estimate(&histogram(&v).map_err(|_| CmdError::msg(CORRUPT))?);
            // Cache it in the value, as Redis does (and log that, so the
            // stored bytes replay identically).
            v[8..16].copy_from_slice(&c.to_le_bytes());
            if let Some(e) = k.get_mut() {
                e.value = Value::Raw(v.into());
            }
            ctx.propagate(&[b"PFCOUNT", a[1]]);
            c
        };
        drop(k);
        ctx.out.int(card as i64);
        return Ok(());
    }
    let mut max = Box::new([0u8; REGS]);
    for key in &a[1..] {
        let k = ctx.read_key(key);
        if let Some(v) = hll_bytes(k.get())? {
            merge_into(&mut max, &v).map_err(|_| CmdError::msg(CORRUPT))?;
        }
    }
    let mut h = [0u32; 64];
    for r in max.iter() {
        h[*r as usize] += 1;
    }
    ctx.out.int(estimate(&h) as i64);
    Ok(())
}

fn pfmerge(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let maxb = max_bytes(ctx);
    let keys = &a[1..];
    // Lazy expiry key by key: a wrong type stops the lookups, as in Redis.
    let mut ml = ctx.lock_keys_deferred(keys, 0);
    let mut max = Box::new([0u8; REGS]);
    let mut use_dense = false;
    for (i, key) in keys.iter().enumerate() {
        // Every key, the destination first, is a read lookup in Redis.
        ctx.expire_locked(&mut ml, i, key);
        let e = ml.get(i, key);
        ctx.count_lookup(e.is_some());
        if let Some(v) = hll_bytes(e)? {
            use_dense |= v[4] == DENSE;
            merge_into(&mut max, &v).map_err(|_| CmdError::msg(CORRUPT))?;
        }
    }
    let existing = ml
        .get(0, keys[0])
        .map(|e| (hll_bytes(Some(e)), e.expire_at));
    let (mut v, keep) = match existing {
        Some((Ok(Some(v)), exp)) => (v, exp),
        _ => (new_hll(), 0),
    };
    if use_dense {
        to_dense(&mut v).map_err(|_| CmdError::msg(CORRUPT))?;
    }
    for (j, &m) in max.iter().enumerate() {
        if m != 0 {
            set_register(&mut v, j, m, maxb).map_err(|_| CmdError::msg(CORRUPT))?;
        }
    }
    invalidate(&mut v);
    ml.insert(0, keys[0], Entry::with_expire(Value::Raw(v.into()), keep));
    ctx.propagate(a);
    ctx.notify(crate::notify::STRING, b"pfadd", keys[0]);
    drop(ml);
    ctx.out.ok();
    Ok(())
}
