//! Bitmaps: SETBIT GETBIT BITCOUNT BITPOS BITOP over string values.
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
    CommandSpec { first_key: 2, last_key: -1, step: 1, group: "bitmap", since: "2.6.0", ..cmd("bitop", -4, WRITE | DENYOOM, bitop) },
];

fn bit_offset(ctx: &Ctx<'_>, b: &[u8]) -> Result<u64, CmdError> {
    let max = ctx.srv.config.read().proto_max_bulk_len.saturating_mul(8);
    match crate::num::parse_i64(b) {
        Some(v) if v >= 0 && (v as u64) < max => Ok(v as u64),
        _ => Err(CmdError::msg("ERR bit offset is not an integer or out of range")),
    }
}

/// The string's bytes (copied; integers formatted), or WRONGTYPE.
fn bytes_of(e: &Entry) -> Result<Vec<u8>, CmdError> {
    let mut buf = itoa::Buffer::new();
    str_bytes(&e.value, &mut buf).map(|b| b.to_vec()).ok_or(CmdError::WrongType)
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
    if v.len() <= byte {
        v.resize(byte + 1, 0);
    }
    let mask = 1u8 << (7 - (off & 7));
    let old = v[byte] & mask != 0;
    if on {
        v[byte] |= mask;
    } else {
        v[byte] &= !mask;
    }
    let keep = k.get().map_or(0, |e| e.expire_at);
    k.insert(Entry::with_expire(Value::Raw(v.into()), keep));
    ctx.propagate(a);
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
            let isbit = if a.len() == 5 { unit(a[4])? } else { false };
            let len = s.len() as i64;
            if start < 0 && end < 0 && start > end {
                0
            } else if isbit {
                match resolve(start, end, len * 8) {
                    None => 0,
                    Some((b0, b1)) => (b0..=b1).filter(|&i| bit_at(&s, i)).count() as i64,
                }
            } else {
                match resolve(start, end, len) {
                    None => 0,
                    Some((b0, b1)) => s[b0 as usize..=b1 as usize].iter().map(|b| b.count_ones() as i64).sum(),
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
            let (end, given) = if a.len() >= 5 { (int(a[4])?, true) } else if isbit { ((len << 3) + 7, false) } else { (len - 1, false) };
            let total = if isbit { len * 8 } else { len };
            (resolve(start, end, total), given, isbit)
        }
        _ => return Err(CmdError::Syntax),
    };
    let Some((r0, r1)) = range else {
        ctx.out.int(-1);
        return Ok(());
    };
    let (b0, b1) = if isbit { (r0, r1) } else { (r0 * 8, r1 * 8 + 7) };
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
        return Err(CmdError::msg("ERR BITOP NOT must be called with a single source key."));
    }
    let keys = &a[2..];
    let mut ml = ctx.lock_keys(keys);
    let mut srcs = Vec::with_capacity(keys.len() - 1);
    for (i, key) in keys.iter().enumerate().skip(1) {
        srcs.push(match ml.get(i, key) {
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
        }
    } else {
        ml.insert(0, keys[0], Entry::new(Value::Raw(res.into())));
        // Deterministic: replays to the same bytes (and `raw` encoding).
        ctx.propagate(a);
    }
    drop(ml);
    ctx.out.int(maxlen as i64);
    Ok(())
}
