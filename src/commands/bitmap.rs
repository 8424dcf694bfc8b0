//! Bitmaps: SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD over string
//! values.
//! Bit 0 is the most significant bit of byte 0, as in Redis.

use basalt_storage::{Entry, Value};

use super::args::{eq, int};
use super::flags::*;
use super::string::str_bytes;
use super::{cmd, CmdError, CmdResult, CommandSpec, Ctx};

const fn k1(mut c: CommandSpec) -> CommandSpec {
    c.first_key = 1;
    c.last_key = 1;
    c.step = 1;
    c.group = "bitmap";
    c.since = "2.2.0";
    c
}

pub static COMMANDS: &[CommandSpec] = &[
    k1(cmd("setbit", 4, WRITE | DENYOOM, setbit)),
    k1(cmd("getbit", 3, READONLY | FAST, getbit)),
    k1(cmd("bitcount", -2, READONLY, bitcount)),
    k1(cmd("bitpos", -3, READONLY, bitpos)),
    CommandSpec {
        first_key: 2,
        last_key: -1,
        step: 1,
        group: "bitmap",
        since: "2.6.0",
        ..cmd("bitop", -4, WRITE | DENYOOM, bitop)
    },
    k1(cmd("bitfield", -2, WRITE | DENYOOM, bitfield)),
    k1(cmd("bitfield_ro", -2, READONLY | FAST, bitfield_ro)),
];

fn bit_offset(ctx: &Ctx<'_>, b: &[u8]) -> Result<u64, CmdError> {
    let max = ctx.srv.config.read().proto_max_bulk_len.saturating_mul(8);
    match crate::num::parse_i64(b) {
        Some(v) if v >= 0 && (v as u64) < max => Ok(v as u64),
        _ => Err(CmdError::msg(
            "ERR bit offset is not an integer or out of range",
        )),
    }
}

/// The string's bytes (copied; integers formatted), or WRONGTYPE.
fn bytes_of(e: &Entry) -> Result<Vec<u8>, CmdError> {
    let mut buf = itoa::Buffer::new();
    str_bytes(&e.value, &mut buf)
        .map(|b| b.to_vec())
        .ok_or(CmdError::WrongType)
}

fn setbit(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let off = bit_offset(ctx, a[2])?;
    let on = match a[3] {
        b"1" => true,
        b"0" => false,
        _ => return Err(CmdError::msg("ERR bit is not an integer or out of range")),
    };
    let mut k = ctx.write_key(a[1]);
    let mut v = match k.get() {
        Some(e) => bytes_of(e)?,
        None => Vec::new(),
    };
    let byte = (off >> 3) as usize;
    // Created or grown: changed even when the bit already had its value.
    let mut changed = k.get().is_none() || v.len() <= byte;
    if v.len() <= byte {
        v.resize(byte + 1, 0);
    }
    let mask = 1u8 << (7 - (off & 7));
    let old = v[byte] & mask != 0;
    changed |= old != on;
    if on {
        v[byte] |= mask;
    } else {
        v[byte] &= !mask;
    }
    let keep = k.get().map_or(0, |e| e.expire_at);
    k.insert(Entry::with_expire(Value::Raw(v.into()), keep));
    ctx.propagate(a);
    if changed {
        // As Redis 7.0: no event when nothing changed.
        ctx.notify(crate::notify::STRING, b"setbit", a[1]);
    }
    drop(k);
    ctx.out.int(old as i64);
    Ok(())
}

fn getbit(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let off = bit_offset(ctx, a[2])?;
    let k = ctx.read_key(a[1]);
    let bit = match k.get() {
        None => false,
        Some(e) => {
            let mut buf = itoa::Buffer::new();
            let s = str_bytes(&e.value, &mut buf).ok_or(CmdError::WrongType)?;
            let byte = (off >> 3) as usize;
            byte < s.len() && s[byte] & (1 << (7 - (off & 7))) != 0
        }
    };
    drop(k);
    ctx.out.int(bit as i64);
    Ok(())
}

/// Resolves a BITCOUNT/BITPOS range to inclusive bit positions.
fn resolve(mut start: i64, mut end: i64, totlen: i64) -> Option<(i64, i64)> {
    if start < 0 {
        start += totlen;
    }
    if end < 0 {
        end += totlen;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= totlen {
        end = totlen - 1;
    }
    (start <= end).then_some((start, end))
}

fn bit_at(s: &[u8], i: i64) -> bool {
    s[(i >> 3) as usize] & (1 << (7 - (i & 7))) != 0
}

fn unit(b: &[u8]) -> Result<bool, CmdError> {
    if eq(b, "bit") {
        Ok(true)
    } else if eq(b, "byte") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

fn bitcount(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.read_key(a[1]);
    let Some(e) = k.get() else {
        drop(k);
        ctx.out.int(0);
        return Ok(());
    };
    let s = bytes_of(e)?;
    drop(k);
    let n = match a.len() {
        2 => s.iter().map(|b| b.count_ones() as i64).sum(),
        4 | 5 => {
            let start = int(a[2])?;
            let end = int(a[3])?;
            let len = s.len() as i64;
            // As Redis: an empty negative range answers 0 before the unit
            // (BYTE|BIT) is even looked at.
            if start < 0 && end < 0 && start > end {
                0
            } else if a.len() == 5 && unit(a[4])? {
                match resolve(start, end, len * 8) {
                    None => 0,
                    Some((b0, b1)) => (b0..=b1).filter(|&i| bit_at(&s, i)).count() as i64,
                }
            } else {
                match resolve(start, end, len) {
                    None => 0,
                    Some((b0, b1)) => s[b0 as usize..=b1 as usize]
                        .iter()
                        .map(|b| b.count_ones() as i64)
                        .sum(),
                }
            }
        }
        _ => return Err(CmdError::Syntax),
    };
    ctx.out.int(n);
    Ok(())
}

fn bitpos(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let bit = int(a[2])?;
    if bit != 0 && bit != 1 {
        return Err(CmdError::msg("ERR The bit argument must be 1 or 0."));
    }
    let want = bit == 1;
    let k = ctx.read_key(a[1]);
    let Some(e) = k.get() else {
        drop(k);
        ctx.out.int(if want { -1 } else { 0 });
        return Ok(());
    };
    let s = bytes_of(e)?;
    drop(k);
    let len = s.len() as i64;
    let (range, end_given, isbit) = match a.len() {
        3 => (resolve(0, len - 1, len), false, false),
        4..=6 => {
            let start = int(a[3])?;
            let isbit = if a.len() == 6 { unit(a[5])? } else { false };
            let (end, given) = if a.len() >= 5 {
                (int(a[4])?, true)
            } else if isbit {
                ((len << 3) + 7, false)
            } else {
                (len - 1, false)
            };
            let total = if isbit { len * 8 } else { len };
            (resolve(start, end, total), given, isbit)
        }
        _ => return Err(CmdError::Syntax),
    };
    let Some((r0, r1)) = range else {
        ctx.out.int(-1);
        return Ok(());
    };
    let (b0, b1) = if isbit {
        (r0, r1)
    } else {
        (r0 * 8, r1 * 8 + 7)
    };
    let found = (b0..=b1).find(|&i| bit_at(&s, i) == want);
    let pos = match found {
        Some(p) => p,
        None if want || end_given => -1,
        // Looking for a clear bit past an open-ended range: the string
        // continues with zeros.
        None => ((b1 >> 3) + 1) * 8,
    };
    ctx.out.int(pos);
    Ok(())
}

fn bitop(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    #[derive(PartialEq)]
    enum Op {
        And,
        Or,
        Xor,
        Not,
    }
    let op = if eq(a[1], "and") {
        Op::And
    } else if eq(a[1], "or") {
        Op::Or
    } else if eq(a[1], "xor") {
        Op::Xor
    } else if eq(a[1], "not") {
        Op::Not
    } else {
        return Err(CmdError::Syntax);
    };
    if op == Op::Not && a.len() != 4 {
        return Err(CmdError::msg(
            "ERR BITOP NOT must be called with a single source key.",
        ));
    }
    let keys = &a[2..];
    let mut ml = ctx.lock_keys(keys);
    let mut srcs = Vec::with_capacity(keys.len() - 1);
    for (i, key) in keys.iter().enumerate().skip(1) {
        let e = ml.get(i, key);
        ctx.count_lookup(e.is_some());
        srcs.push(match e {
            Some(e) => bytes_of(e)?,
            None => Vec::new(),
        });
    }
    let maxlen = srcs.iter().map(|s| s.len()).max().unwrap_or(0);
    let byte = |s: &Vec<u8>, i: usize| s.get(i).copied().unwrap_or(0);
    let res: Vec<u8> = (0..maxlen)
        .map(|i| match op {
            Op::Not => !byte(&srcs[0], i),
            Op::And => srcs.iter().fold(0xff, |acc, s| acc & byte(s, i)),
            Op::Or => srcs.iter().fold(0, |acc, s| acc | byte(s, i)),
            Op::Xor => srcs.iter().fold(0, |acc, s| acc ^ byte(s, i)),
        })
        .collect();
    if res.is_empty() {
        if ml.remove(0, keys[0]).is_some() {
            ctx.propagate(a);
            ctx.notify(crate::notify::GENERIC, b"del", keys[0]);
        }
    } else {
        ml.insert(0, keys[0], Entry::new(Value::Raw(res.into())));
        // Deterministic: replays to the same bytes (and `raw` encoding).
        ctx.propagate(a);
        ctx.notify(crate::notify::STRING, b"set", keys[0]);
    }
    drop(ml);
    ctx.out.int(maxlen as i64);
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq)]
enum FieldOp {
    Get,
    Set,
    Incr,
}

struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    value: i64,
    ow: Overflow,
}

fn field_type(b: &[u8]) -> Result<(bool, u32), CmdError> {
    let err = || {
        CmdError::msg("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.")
    };
    let signed = match b.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(err()),
    };
    match crate::num::parse_i64(&b[1..]) {
        Some(n) if n >= 1 && ((signed && n <= 64) || (!signed && n <= 63)) => {
            Ok((signed, n as u32))
        }
        _ => Err(err()),
    }
}

fn field_offset(ctx: &Ctx<'_>, b: &[u8], bits: u32) -> Result<u64, CmdError> {
    let err = || CmdError::msg("ERR bit offset is not an integer or out of range");
    let hash = b.first() == Some(&b'#');
    let mut v = crate::num::parse_i64(if hash { &b[1..] } else { b }).ok_or_else(err)?;
    if hash {
        v = v.wrapping_mul(bits as i64);
    }
    let max = ctx.srv.config.read().proto_max_bulk_len;
    if v < 0 || (v as u64 >> 3) >= max {
        return Err(err());
    }
    Ok(v as u64)
}

fn get_bits(s: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for i in 0..bits as u64 {
        let pos = offset + i;
        let byte = s.get((pos >> 3) as usize).copied().unwrap_or(0);
        v = (v << 1) | ((byte >> (7 - (pos & 7))) & 1) as u64;
    }
    v
}

fn set_bits(s: &mut [u8], offset: u64, bits: u32, v: u64) {
    for i in 0..bits as u64 {
        let bit = (v >> (bits as u64 - 1 - i)) & 1;
        let pos = offset + i;
        let byte = &mut s[(pos >> 3) as usize];
        let mask = 1u8 << (7 - (pos & 7));
        if bit == 1 {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

fn get_signed(s: &[u8], offset: u64, bits: u32) -> i64 {
    let v = get_bits(s, offset, bits);
    if bits == 64 {
        v as i64
    } else if v & (1 << (bits - 1)) != 0 {
        (v | (u64::MAX << bits)) as i64
    } else {
        v as i64
    }
}

/// Redis's checkUnsignedBitfieldOverflow: (overflowed, value to store).
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> (bool, u64) {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = (value as i64).wrapping_neg();
    let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX.checked_shl(bits).unwrap_or(0));
    if value > max || (incr > 0 && incr > maxincr) {
        match ow {
            Overflow::Wrap => (true, wrap()),
            Overflow::Sat => (true, max),
            Overflow::Fail => (true, 0),
        }
    } else if incr < 0 && incr < minincr {
        match ow {
            Overflow::Wrap => (true, wrap()),
            Overflow::Sat => (true, 0),
            Overflow::Fail => (true, 0),
        }
    } else {
        (false, 0)
    }
}

/// Redis's checkSignedBitfieldOverflow.
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> (bool, i64) {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = max.wrapping_sub(value);
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let msb = 1u64 << (bits - 1);
            let mask = u64::MAX << bits;
            if c & msb != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        match ow {
            Overflow::Wrap => (true, wrap()),
            Overflow::Sat => (true, max),
            Overflow::Fail => (true, 0),
        }
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        match ow {
            Overflow::Wrap => (true, wrap()),
            Overflow::Sat => (true, min),
            Overflow::Fail => (true, 0),
        }
    } else {
        (false, 0)
    }
}

fn bitfield_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], ro: bool) -> CmdResult {
    let mut ops = Vec::new();
    let mut ow = Overflow::Wrap;
    let mut readonly = true;
    let mut highest: u64 = 0;
    let mut j = 2;
    while j < a.len() {
        let rem = a.len() - j - 1;
        let op = if eq(a[j], "get") && rem >= 2 {
            FieldOp::Get
        } else if eq(a[j], "set") && rem >= 3 {
            FieldOp::Set
        } else if eq(a[j], "incrby") && rem >= 3 {
            FieldOp::Incr
        } else if eq(a[j], "overflow") && rem >= 1 {
            ow = if eq(a[j + 1], "wrap") {
                Overflow::Wrap
            } else if eq(a[j + 1], "sat") {
                Overflow::Sat
            } else if eq(a[j + 1], "fail") {
                Overflow::Fail
            } else {
                return Err(CmdError::msg("ERR Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(CmdError::Syntax);
        };
        let (signed, bits) = field_type(a[j + 1])?;
        let offset = field_offset(ctx, a[j + 2], bits)?;
        let mut value = 0;
        if op != FieldOp::Get {
            readonly = false;
            highest = highest.max(offset + bits as u64 - 1);
            value = int(a[j + 3])?;
        }
        ops.push(Field {
            op,
            signed,
            bits,
            offset,
            value,
            ow,
        });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }
    if readonly {
        let k = ctx.read_key(a[1]);
        let s = match k.get() {
            Some(e) => bytes_of(e)?,
            None => Vec::new(),
        };
        drop(k);
        ctx.out.array(ops.len());
        for f in &ops {
            if f.signed {
                ctx.out.int(get_signed(&s, f.offset, f.bits));
            } else {
                ctx.out.int(get_bits(&s, f.offset, f.bits) as i64);
            }
        }
        return Ok(());
    }
    if ro {
        return Err(CmdError::msg(
            "ERR BITFIELD_RO only supports the GET subcommand",
        ));
    }
    let mut k = ctx.write_key(a[1]);
    let mut s = match k.get() {
        Some(e) => bytes_of(e)?,
        None => Vec::new(),
    };
    let need = (highest >> 3) as usize + 1;
    if s.len() < need {
        s.resize(need, 0);
    }
    let mut replies: Vec<Option<i64>> = Vec::with_capacity(ops.len());
    // Write operations performed (not refused by OVERFLOW FAIL).
    let mut changes = 0usize;
    for f in &ops {
        if f.signed {
            let old = get_signed(&s, f.offset, f.bits);
            let (ovf, wrapped, new, ret) = match f.op {
                FieldOp::Get => {
                    replies.push(Some(old));
                    continue;
                }
                FieldOp::Incr => {
                    let (o, w) = signed_overflow(old, f.value, f.bits, f.ow);
                    let n = if o { w } else { old.wrapping_add(f.value) };
                    (o, w, n, n)
                }
                FieldOp::Set => {
                    let (o, w) = signed_overflow(f.value, 0, f.bits, f.ow);
                    (o, w, if o { w } else { f.value }, old)
                }
            };
            let _ = wrapped;
            if ovf && f.ow == Overflow::Fail {
                replies.push(None);
            } else {
                replies.push(Some(ret));
                set_bits(&mut s, f.offset, f.bits, new as u64);
                changes += 1;
            }
        } else {
            let old = get_bits(&s, f.offset, f.bits);
            let (ovf, new, ret) = match f.op {
                FieldOp::Get => {
                    replies.push(Some(old as i64));
                    continue;
                }
                FieldOp::Incr => {
                    let (o, w) = unsigned_overflow(old, f.value, f.bits, f.ow);
                    let n = if o {
                        w
                    } else {
                        old.wrapping_add(f.value as u64)
                    };
                    (o, n, n)
                }
                FieldOp::Set => {
                    let (o, w) = unsigned_overflow(f.value as u64, 0, f.bits, f.ow);
                    (o, if o { w } else { f.value as u64 }, old)
                }
            };
            if ovf && f.ow == Overflow::Fail {
                replies.push(None);
            } else {
                replies.push(Some(ret as i64));
                set_bits(&mut s, f.offset, f.bits, new);
                changes += 1;
            }
        }
    }
    let keep = k.get().map_or(0, |e| e.expire_at);
    k.insert(Entry::with_expire(Value::Raw(s.into()), keep));
    ctx.propagate(a);
    if changes > 0 {
        ctx.notify(crate::notify::STRING, b"setbit", a[1]);
    }
    drop(k);
    ctx.out.array(replies.len());
    for r in replies {
        match r {
            Some(v) => ctx.out.int(v),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

fn bitfield(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    bitfield_generic(ctx, a, false)
}

fn bitfield_ro(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    bitfield_generic(ctx, a, true)
}
