//! Hashes: HSET and friends. The encodings live in `basalt_storage::hash`.

use basalt_storage::{Entry, Hash, Value};

use super::args::{eq, int};
use super::coll::{self, hash, hash_mut, limits, opt, rand_u64};
use super::flags::*;
use super::{cmd, CmdError, CmdResult, CommandSpec, Ctx};
use crate::db::KeyLock;
use crate::num::{self, IncrFloatError};

const fn k1(mut c: CommandSpec) -> CommandSpec {
    c.first_key = 1;
    c.last_key = 1;
    c.step = 1;
    c.group = "hash";
    c
}

pub static COMMANDS: &[CommandSpec] = &[
    k1(cmd("hset", -4, WRITE | DENYOOM | FAST, hset)),
    k1(cmd("hmset", -4, WRITE | DENYOOM | FAST, hmset)),
    k1(cmd("hsetnx", 4, WRITE | DENYOOM | FAST, hsetnx)),
    k1(cmd("hget", 3, READONLY | FAST, hget)),
    k1(cmd("hmget", -3, READONLY | FAST, hmget)),
    k1(cmd("hdel", -3, WRITE | FAST, hdel)),
    k1(cmd("hlen", 2, READONLY | FAST, hlen)),
    k1(cmd("hstrlen", 3, READONLY | FAST, hstrlen)),
    k1(cmd("hexists", 3, READONLY | FAST, hexists)),
    k1(cmd("hkeys", 2, READONLY, hkeys)),
    k1(cmd("hvals", 2, READONLY, hvals)),
    k1(cmd("hgetall", 2, READONLY, hgetall)),
    k1(cmd("hincrby", 4, WRITE | DENYOOM | FAST, hincrby)),
    k1(cmd("hincrbyfloat", 4, WRITE | DENYOOM | FAST, hincrbyfloat)),
    k1(cmd("hrandfield", -2, READONLY, hrandfield)),
    k1(cmd("hscan", -3, READONLY, hscan)),
];

/// The hash at `k`, created empty if missing (the caller must then add
/// something, or remove the key again).
fn hash_for_write<'e>(k: &'e mut KeyLock<'_, '_>) -> Result<&'e mut Hash, CmdError> {
    if k.get().is_none() {
        k.insert(Entry::new(Value::Hash(Hash::new())));
    }
    hash_mut(k.get_mut().expect("just inserted"))
}

fn hset_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], name: &str) -> Result<i64, CmdError> {
    if a.len() % 2 == 1 {
        return Err(CmdError::WrongArity(name.into()));
    }
    let lim = limits(ctx);
    let mut k = ctx.write_key(a[1]);
    let h = hash_for_write(&mut k)?;
    let mut added = 0;
    for p in a[2..].chunks(2) {
        added += h.set(p[0], p[1], &lim) as i64;
    }
    ctx.propagate(a);
    ctx.notify(crate::notify::HASH, b"hset", a[1]);
    Ok(added)
}

fn hset(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let n = hset_generic(ctx, a, "hset")?;
    ctx.out.int(n);
    Ok(())
}

fn hmset(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    hset_generic(ctx, a, "hmset")?;
    ctx.out.ok();
    Ok(())
}

fn hsetnx(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let lim = limits(ctx);
    let mut k = ctx.write_key(a[1]);
    if let Some(h) = opt(k.get(), hash)? {
        if h.contains(a[2]) {
            drop(k);
            ctx.out.int(0);
            return Ok(());
        }
    }
    hash_for_write(&mut k)?.set(a[2], a[3], &lim);
    ctx.propagate(&[b"HSET", a[1], a[2], a[3]]);
    ctx.notify(crate::notify::HASH, b"hset", a[1]);
    drop(k);
    ctx.out.int(1);
    Ok(())
}

fn hget(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.read_key(a[1]);
    match opt(k.get(), hash)?.and_then(|h| h.get(a[2])) {
        Some(v) => ctx.out.bulk(v),
        None => ctx.out.null(),
    }
    Ok(())
}

fn hmget(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.read_key(a[1]);
    let h = opt(k.get(), hash)?;
    ctx.out.array(a.len() - 2);
    for f in &a[2..] {
        match h.and_then(|h| h.get(f)) {
            Some(v) => ctx.out.bulk(v),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

fn hdel(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let mut k = ctx.write_key(a[1]);
    let mut n = 0;
    if let Some(e) = k.get_mut() {
        let h = hash_mut(e)?;
        for f in &a[2..] {
            if h.remove(f) {
                n += 1;
                if h.is_empty() {
                    break;
                }
            }
        }
        let emptied = h.is_empty();
        if emptied {
            k.remove();
        }
        if n > 0 {
            ctx.propagate(a);
            ctx.notify(crate::notify::HASH, b"hdel", a[1]);
            if emptied {
                ctx.notify(crate::notify::GENERIC, b"del", a[1]);
            }
        }
    }
    drop(k);
    ctx.out.int(n);
    Ok(())
}

fn hlen(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.read_key(a[1]);
    let n = opt(k.get(), hash)?.map_or(0, |h| h.len());
    drop(k);
    ctx.out.int(n as i64);
    Ok(())
}

fn hstrlen(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.read_key(a[1]);
    let n = opt(k.get(), hash)?.and_then(|h| h.get(a[2])).map_or(0, |v| v.len());
    drop(k);
    ctx.out.int(n as i64);
    Ok(())
}

fn hexists(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.read_key(a[1]);
    let n = opt(k.get(), hash)?.is_some_and(|h| h.contains(a[2]));
    drop(k);
    ctx.out.int(n as i64);
    Ok(())
}

fn hgetall_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], keys: bool, vals: bool) -> CmdResult {
    let k = ctx.read_key(a[1]);
    let Some(h) = opt(k.get(), hash)? else {
        drop(k);
        if keys && vals {
            ctx.out.map(0);
        } else {
            ctx.out.array(0);
        }
        return Ok(());
    };
    if keys && vals {
        ctx.out.map(h.len());
    } else {
        ctx.out.array(h.len());
    }
    let out = &mut *ctx.out;
    h.for_each(|f, v| {
        if keys {
            out.bulk(f);
        }
        if vals {
            out.bulk(v);
        }
    });
    Ok(())
}

fn hkeys(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    hgetall_generic(ctx, a, true, false)
}

fn hvals(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    hgetall_generic(ctx, a, false, true)
}

fn hgetall(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    hgetall_generic(ctx, a, true, true)
}

fn hincrby(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let by = int(a[3])?;
    let lim = limits(ctx);
    let mut k = ctx.write_key(a[1]);
    let cur = match opt(k.get(), hash)?.and_then(|h| h.get(a[2])) {
        Some(v) => num::parse_i64(v).ok_or_else(|| CmdError::msg("ERR hash value is not an integer"))?,
        None => 0,
    };
    let new = cur.checked_add(by).ok_or(CmdError::Overflow)?;
    let s = itoa::Buffer::new().format(new).as_bytes().to_vec();
    hash_for_write(&mut k)?.set(a[2], &s, &lim);
    ctx.propagate(&[b"HSET", a[1], a[2], &s]);
    ctx.notify(crate::notify::HASH, b"hincrby", a[1]);
    drop(k);
    ctx.out.int(new);
    Ok(())
}

fn hincrbyfloat(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    // Validate the increment before looking at the key, as Redis does.
    match num::incr_by_float(None, a[3]) {
        Err(IncrFloatError::IncrNotFloat | IncrFloatError::ValueNotFloat) => return Err(CmdError::NotFloat),
        Err(IncrFloatError::NanOrInf) => return Err(CmdError::msg("ERR value is NaN or Infinity")),
        Ok(_) => {}
    }
    let lim = limits(ctx);
    let mut k = ctx.write_key(a[1]);
    let cur = opt(k.get(), hash)?.and_then(|h| h.get(a[2])).map(|v| v.to_vec());
    let new = num::incr_by_float(cur.as_deref(), a[3]).map_err(|e| match e {
        IncrFloatError::ValueNotFloat => CmdError::msg("ERR hash value is not a float"),
        IncrFloatError::IncrNotFloat => CmdError::NotFloat,
        IncrFloatError::NanOrInf => CmdError::msg("ERR increment would produce NaN or Infinity"),
    })?;
    hash_for_write(&mut k)?.set(a[2], &new, &lim);
    // Logged as the resulting value: float formatting is replayed exactly.
    ctx.propagate(&[b"HSET", a[1], a[2], &new]);
    ctx.notify(crate::notify::HASH, b"hincrbyfloat", a[1]);
    drop(k);
    ctx.out.bulk(&new);
    Ok(())
}

fn hrandfield(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    if a.len() == 2 {
        let k = ctx.read_key(a[1]);
        match opt(k.get(), hash)?.and_then(|h| h.random(rand_u64())) {
            Some((f, _)) => ctx.out.bulk(f),
            None => ctx.out.null(),
        }
        return Ok(());
    }
    let count = coll::ranged(a[2], -i64::MAX, i64::MAX)?;
    let withvalues = match a.len() {
        3 => false,
        4 if eq(a[3], "withvalues") => {
            if !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
                return Err(CmdError::msg("ERR value is out of range"));
            }
            true
        }
        _ => return Err(CmdError::Syntax),
    };
    let k = ctx.read_key(a[1]);
    let Some(h) = opt(k.get(), hash)? else {
        drop(k);
        ctx.out.array(0);
        return Ok(());
    };
    let resp3 = ctx.out.resp3;
    let pairs: Vec<(&[u8], &[u8])> = if count < 0 {
        let n = count.unsigned_abs() as usize;
        (0..n).filter_map(|_| h.random(rand_u64())).collect()
    } else if count as usize >= h.len() {
        h.pairs()
    } else {
        pick_distinct(h.pairs(), count as usize)
    };
    if withvalues && !resp3 {
        ctx.out.array(pairs.len() * 2);
    } else {
        ctx.out.array(pairs.len());
    }
    for (f, v) in pairs {
        if withvalues && resp3 {
            ctx.out.array(2);
        }
        ctx.out.bulk(f);
        if withvalues {
            ctx.out.bulk(v);
        }
    }
    Ok(())
}

/// `n` distinct items chosen at random (partial Fisher–Yates), in the
/// order chosen.
pub fn pick_distinct<T>(mut all: Vec<T>, n: usize) -> Vec<T> {
    let len = all.len();
    for i in 0..n.min(len) {
        let j = i + (rand_u64() % (len - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(n);
    all
}

fn hscan(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let cursor = coll::parse_cursor(a[2])?;
    let k = ctx.read_key(a[1]);
    let Some(h) = opt(k.get(), hash)? else {
        drop(k);
        coll::empty_scan(ctx);
        return Ok(());
    };
    let o = coll::parse_scan_opts(a, 3)?;
    let (next, items) = coll::scan_loop(cursor, &o, |c, out| {
        h.scan(c, |f, v| {
            if coll::matches(&o, f) {
                out.push(f.to_vec());
                out.push(v.to_vec());
            }
        })
    });
    drop(k);
    coll::scan_reply(ctx, next, &items);
    Ok(())
}
