//! Sets: SADD and friends, the set algebra and its STORE forms. The
//! encodings live in `basalt_storage::set`.

use basalt_storage::{Entry, Set, Value};

use super::args::eq;
use super::coll::{self, limits, opt, rand_u64, set, set_mut};
use super::flags::*;
use super::hash::pick_distinct;
use super::{cmd, CmdError, CmdResult, CommandSpec, Ctx};

const fn k1(mut c: CommandSpec) -> CommandSpec {
    c.first_key = 1;
    c.last_key = 1;
    c.step = 1;
    c.group = "set";
    c
}

const fn kall(mut c: CommandSpec) -> CommandSpec {
    c.first_key = 1;
    c.last_key = -1;
    c.step = 1;
    c.group = "set";
    c
}

pub static COMMANDS: &[CommandSpec] = &[
    k1(cmd("sadd", -3, WRITE | DENYOOM | FAST, sadd)),
    k1(cmd("srem", -3, WRITE | FAST, srem)),
    k1(cmd("smembers", 2, READONLY, smembers)),
    k1(cmd("sismember", 3, READONLY | FAST, sismember)),
    k1(cmd("smismember", -3, READONLY | FAST, smismember)),
    k1(cmd("scard", 2, READONLY | FAST, scard)),
    k1(cmd("spop", -2, WRITE | FAST, spop)),
    k1(cmd("srandmember", -2, READONLY, srandmember)),
    CommandSpec {
        first_key: 1,
        last_key: 2,
        step: 1,
        group: "set",
        ..cmd("smove", 4, WRITE | FAST, smove)
    },
    kall(cmd("sinter", -2, READONLY, sinter)),
    CommandSpec {
        group: "set",
        ..cmd("sintercard", -3, READONLY, sintercard)
    },
    kall(cmd("sunion", -2, READONLY, sunion)),
    kall(cmd("sdiff", -2, READONLY, sdiff)),
    kall(cmd("sinterstore", -3, WRITE | DENYOOM, sinterstore)),
    kall(cmd("sunionstore", -3, WRITE | DENYOOM, sunionstore)),
    kall(cmd("sdiffstore", -3, WRITE | DENYOOM, sdiffstore)),
    k1(cmd("sscan", -3, READONLY, sscan)),
];

fn sadd(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let lim = limits(ctx);
    let mut k = ctx.write_key(a[1]);
    if k.get().is_none() {
        k.insert(Entry::new(Value::Set(Set::for_first(
            a[2],
            &lim,
            a.len() - 2,
        ))));
    }
    let s = set_mut(k.get_mut().expect("present"))?;
    let mut n = 0;
    for m in &a[2..] {
        n += s.add(m, &lim) as i64;
    }
    if n > 0 {
        ctx.propagate(a);
        ctx.notify(crate::notify::SET, b"sadd", a[1]);
    }
    drop(k);
    ctx.out.int(n);
    Ok(())
}

fn srem(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let mut k = ctx.write_key(a[1]);
    let mut n = 0;
    if let Some(e) = k.get_mut() {
        let s = set_mut(e)?;
        for m in &a[2..] {
            n += s.remove(m) as i64;
            if s.is_empty() {
                break;
            }
        }
        let emptied = s.is_empty();
        if emptied {
            k.remove();
        }
        if n > 0 {
            ctx.propagate(a);
            ctx.notify(crate::notify::SET, b"srem", a[1]);
            if emptied {
                ctx.notify(crate::notify::GENERIC, b"del", a[1]);
            }
        }
    }
    drop(k);
    ctx.out.int(n);
    Ok(())
}

fn reply_set(ctx: &mut Ctx<'_>, members: &[Vec<u8>]) {
    ctx.out.set(members.len());
    for m in members {
        ctx.out.bulk(m);
    }
}

fn smembers(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.read_key(a[1]);
    let Some(s) = opt(k.get(), set)? else {
        drop(k);
        ctx.out.set(0);
        return Ok(());
    };
    ctx.out.set(s.len());
    let out = &mut *ctx.out;
    s.for_each(|m| m.with(|b| out.bulk(b)));
    Ok(())
}

fn sismember(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.read_key(a[1]);
    let r = opt(k.get(), set)?.is_some_and(|s| s.contains(a[2]));
    drop(k);
    ctx.out.int(r as i64);
    Ok(())
}

fn smismember(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.read_key(a[1]);
    let s = opt(k.get(), set)?;
    ctx.out.array(a.len() - 2);
    for m in &a[2..] {
        ctx.out.int(s.is_some_and(|s| s.contains(m)) as i64);
    }
    Ok(())
}

fn scard(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.read_key(a[1]);
    let n = opt(k.get(), set)?.map_or(0, |s| s.len());
    drop(k);
    ctx.out.int(n as i64);
    Ok(())
}

fn spop(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    if a.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = if a.len() == 3 {
        Some(coll::positive(a[2])? as usize)
    } else {
        None
    };
    let mut k = ctx.write_key(a[1]);
    let Some(e) = k.get_mut() else {
        drop(k);
        match count {
            None => ctx.out.null(),
            Some(_) => ctx.out.set(0),
        }
        return Ok(());
    };
    let s = set_mut(e)?;
    let Some(count) = count else {
        let m = s.random(rand_u64()).expect("sets are never empty");
        s.remove(&m);
        let emptied = s.is_empty();
        if emptied {
            k.remove();
        }
        ctx.propagate(&[b"SREM", a[1], &m]);
        ctx.notify(crate::notify::SET, b"spop", a[1]);
        if emptied {
            ctx.notify(crate::notify::GENERIC, b"del", a[1]);
        }
        drop(k);
        ctx.out.bulk(&m);
        return Ok(());
    };
    if count == 0 {
        drop(k);
        ctx.out.set(0);
        return Ok(());
    }
    let popped = if count >= s.len() {
        let all = s.members();
        k.remove();
        ctx.propagate(&[b"DEL", a[1]]);
        ctx.notify(crate::notify::SET, b"spop", a[1]);
        ctx.notify(crate::notify::GENERIC, b"del", a[1]);
        all
    } else {
        let chosen = pick_distinct(s.members(), count);
        for m in &chosen {
            s.remove(m);
        }
        let mut rec: Vec<&[u8]> = vec![b"SREM", a[1]];
        rec.extend(chosen.iter().map(|m| m.as_slice()));
        ctx.propagate(&rec);
        ctx.notify(crate::notify::SET, b"spop", a[1]);
        chosen
    };
    drop(k);
    reply_set(ctx, &popped);
    Ok(())
}

fn srandmember(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    if a.len() > 3 {
        return Err(CmdError::Syntax);
    }
    if a.len() == 2 {
        let k = ctx.read_key(a[1]);
        match opt(k.get(), set)?.and_then(|s| s.random(rand_u64())) {
            Some(m) => ctx.out.bulk(&m),
            None => ctx.out.null(),
        }
        return Ok(());
    }
    let count = coll::ranged(a[2], -i64::MAX, i64::MAX)?;
    let k = ctx.read_key(a[1]);
    let Some(s) = opt(k.get(), set)? else {
        drop(k);
        ctx.out.array(0);
        return Ok(());
    };
    if count == 0 {
        drop(k);
        ctx.out.array(0);
        return Ok(());
    }
    if count < 0 || count == 1 {
        let n = count.unsigned_abs() as usize;
        let picks: Vec<Vec<u8>> = (0..n).filter_map(|_| s.random(rand_u64())).collect();
        drop(k);
        ctx.out.array(picks.len());
        for p in &picks {
            ctx.out.bulk(p);
        }
        return Ok(());
    }
    if count as usize >= s.len() {
        let all = s.members();
        drop(k);
        ctx.out.array(all.len());
        for m in &all {
            ctx.out.bulk(m);
        }
        return Ok(());
    }
    let chosen = pick_distinct(s.members(), count as usize);
    drop(k);
    ctx.out.array(chosen.len());
    for p in &chosen {
        ctx.out.bulk(p);
    }
    Ok(())
}

fn smove(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let lim = limits(ctx);
    let (src, dst, m) = (a[1], a[2], a[3]);
    let mut ml = ctx.lock_keys(&[src, dst]);
    let Some(se) = ml.get(0, src) else {
        drop(ml);
        ctx.out.int(0);
        return Ok(());
    };
    set(se)?;
    opt(ml.get(1, dst), set)?;
    if src == dst {
        let r = opt(ml.get(0, src), set)?.is_some_and(|s| s.contains(m));
        drop(ml);
        ctx.out.int(r as i64);
        return Ok(());
    }
    let s = set_mut(ml.get_mut(0, src).expect("present"))?;
    if !s.remove(m) {
        drop(ml);
        ctx.out.int(0);
        return Ok(());
    }
    let emptied = s.is_empty();
    if emptied {
        ml.remove(0, src);
    }
    ctx.notify(crate::notify::SET, b"srem", src);
    if emptied {
        ctx.notify(crate::notify::GENERIC, b"del", src);
    }
    if ml.get(1, dst).is_none() {
        ml.insert(1, dst, Entry::new(Value::Set(Set::for_first(m, &lim, 1))));
    }
    let added = set_mut(ml.get_mut(1, dst).expect("present"))?.add(m, &lim);
    ctx.propagate(a);
    if added {
        ctx.notify(crate::notify::SET, b"sadd", dst);
    }
    drop(ml);
    ctx.out.int(1);
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// Computes the set operation over `keys` (positions `first..` of the
/// lock).
fn compute<'a>(
    ctx: &Ctx<'a>,
    ml: &mut crate::db::MultiLock<'a>,
    keys: &[&[u8]],
    first: usize,
    op: Op,
) -> Result<Vec<Vec<u8>>, CmdError> {
    // Type-check every key first (a wrong type anywhere is an error),
    // counting each lookup as Redis's lookupKeyRead does (up to the
    // wrong-typed one, where Redis stops too). Lazy expiry goes as far
    // (the callers lock the keys with `lock_keys_deferred`).
    for (i, k) in keys.iter().enumerate() {
        ctx.expire_locked(ml, first + i, k);
        let e = ml.get(first + i, k);
        ctx.count_lookup(e.is_some());
        opt(e, set)?;
    }
    match op {
        Op::Inter => {
            // Smallest set drives; membership checks against the others.
            let mut sizes = Vec::with_capacity(keys.len());
            for (i, k) in keys.iter().enumerate() {
                match opt(ml.get(first + i, k), set)? {
                    None => return Ok(Vec::new()),
                    Some(s) => sizes.push((s.len(), i)),
                }
            }
            sizes.sort();
            let (_, small) = sizes[0];
            let mut cand = opt(ml.get(first + small, keys[small]), set)?
                .expect("checked")
                .members();
            for &(_, i) in &sizes[1..] {
                let s = opt(ml.get(first + i, keys[i]), set)?.expect("checked");
                cand.retain(|m| s.contains(m));
                if cand.is_empty() {
                    break;
                }
            }
            Ok(cand)
        }
        Op::Union => {
            let mut seen = std::collections::HashSet::new();
            let mut out = Vec::new();
            for (i, k) in keys.iter().enumerate() {
                if let Some(s) = opt(ml.get(first + i, k), set)? {
                    for m in s.members() {
                        if seen.insert(m.clone()) {
                            out.push(m);
                        }
                    }
                }
            }
            Ok(out)
        }
        Op::Diff => {
            let Some(s0) = opt(ml.get(first, keys[0]), set)? else {
                return Ok(Vec::new());
            };
            let mut cand = s0.members();
            for (i, k) in keys.iter().enumerate().skip(1) {
                if let Some(s) = opt(ml.get(first + i, k), set)? {
                    cand.retain(|m| !s.contains(m));
                }
                if cand.is_empty() {
                    break;
                }
            }
            Ok(cand)
        }
    }
}

fn setop(ctx: &mut Ctx<'_>, a: &[&[u8]], op: Op) -> CmdResult {
    let keys = &a[1..];
    let mut ml = ctx.lock_keys_deferred(keys, 0);
    let r = compute(ctx, &mut ml, keys, 0, op)?;
    drop(ml);
    reply_set(ctx, &r);
    Ok(())
}

fn setop_store(ctx: &mut Ctx<'_>, a: &[&[u8]], op: Op) -> CmdResult {
    let lim = limits(ctx);
    let keys = &a[1..];
    let mut ml = ctx.lock_keys(keys);
    let r = compute(ctx, &mut ml, &keys[1..], 1, op)?;
    let n = r.len();
    if r.is_empty() {
        if ml.remove(0, keys[0]).is_some() {
            ctx.propagate(&[b"DEL", keys[0]]);
            ctx.notify(crate::notify::GENERIC, b"del", keys[0]);
        }
    } else {
        let mut s = Set::for_first(&r[0], &lim, n);
        for m in &r {
            s.add(m, &lim);
        }
        ml.insert(0, keys[0], Entry::new(Value::Set(s)));
        // One record: replace the destination with exactly the result.
        let mut add: Vec<&[u8]> = Vec::with_capacity(n + 2);
        add.push(b"SADD");
        add.push(keys[0]);
        add.extend(r.iter().map(|m| m.as_slice()));
        ctx.propagate_many(&[&[b"DEL", keys[0]], &add]);
        let ev: &[u8] = match op {
            Op::Inter => b"sinterstore",
            Op::Union => b"sunionstore",
            Op::Diff => b"sdiffstore",
        };
        ctx.notify(crate::notify::SET, ev, keys[0]);
    }
    drop(ml);
    ctx.out.int(n as i64);
    Ok(())
}

fn sinter(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    setop(ctx, a, Op::Inter)
}

fn sunion(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    setop(ctx, a, Op::Union)
}

fn sdiff(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    setop(ctx, a, Op::Diff)
}

fn sinterstore(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    setop_store(ctx, a, Op::Inter)
}

fn sunionstore(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    setop_store(ctx, a, Op::Union)
}

fn sdiffstore(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    setop_store(ctx, a, Op::Diff)
}

/// Parses `numkeys key... [LIMIT n]` (SINTERCARD, ZINTERCARD).
pub fn parse_card_args<'a>(a: &[&'a [u8]]) -> Result<(Vec<&'a [u8]>, usize), CmdError> {
    let numkeys = coll::ranged_msg(a[1], 1, i64::MAX, "numkeys should be greater than 0")? as usize;
    if numkeys > a.len() - 2 {
        return Err(CmdError::msg(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    let mut limit = 0usize;
    let mut j = 2 + numkeys;
    while j < a.len() {
        if eq(a[j], "limit") && j + 1 < a.len() {
            limit = coll::ranged_msg(a[j + 1], 0, i64::MAX, "LIMIT can't be negative")? as usize;
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok((a[2..2 + numkeys].to_vec(), limit))
}

fn sintercard(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let (keys, limit) = parse_card_args(a)?;
    let mut ml = ctx.lock_keys_deferred(&keys, 0);
    let mut r = compute(ctx, &mut ml, &keys, 0, Op::Inter)?.len();
    drop(ml);
    if limit > 0 {
        r = r.min(limit);
    }
    ctx.out.int(r as i64);
    Ok(())
}

fn sscan(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let cursor = coll::parse_cursor(a[2])?;
    let k = ctx.read_key(a[1]);
    let Some(s) = opt(k.get(), set)? else {
        drop(k);
        coll::empty_scan(ctx);
        return Ok(());
    };
    let o = coll::parse_scan_opts(a, 3)?;
    let (next, items) = coll::scan_loop(cursor, &o, |c, out| {
        s.scan(c, |m| {
            m.with(|b| {
                if coll::matches(&o, b) {
                    out.push(b.to_vec());
                }
            })
        })
    });
    drop(k);
    coll::scan_reply(ctx, next, &items);
    Ok(())
}
