//! Lists: pushes, pops, ranges, LMOVE and LMPOP (the non-blocking
//! forms). The encodings live in `basalt_storage::list`.

use basalt_storage::{Entry, List, Value};

use super::args::{eq, int};
use super::coll::{self, limits, list, list_mut, opt};
use super::flags::*;
use super::{cmd, CmdError, CmdResult, CommandSpec, Ctx};
use crate::blocking::{self, Kind, MultiSlot};

const fn k1(mut c: CommandSpec) -> CommandSpec {
    c.first_key = 1;
    c.last_key = 1;
    c.step = 1;
    c.group = "list";
    c
}

const fn k12(mut c: CommandSpec) -> CommandSpec {
    c.first_key = 1;
    c.last_key = 2;
    c.step = 1;
    c.group = "list";
    c
}

pub static COMMANDS: &[CommandSpec] = &[
    k1(cmd("lpush", -3, WRITE | DENYOOM | FAST, lpush)),
    k1(cmd("rpush", -3, WRITE | DENYOOM | FAST, rpush)),
    k1(cmd("lpushx", -3, WRITE | DENYOOM | FAST, lpushx)),
    k1(cmd("rpushx", -3, WRITE | DENYOOM | FAST, rpushx)),
    k1(cmd("lpop", -2, WRITE | FAST, lpop)),
    k1(cmd("rpop", -2, WRITE | FAST, rpop)),
    k1(cmd("llen", 2, READONLY | FAST, llen)),
    k1(cmd("lrange", 4, READONLY, lrange)),
    k1(cmd("lindex", 3, READONLY, lindex)),
    k1(cmd("lset", 4, WRITE | DENYOOM, lset)),
    k1(cmd("linsert", 5, WRITE | DENYOOM, linsert)),
    k1(cmd("lrem", 4, WRITE, lrem)),
    k1(cmd("ltrim", 4, WRITE, ltrim)),
    k1(cmd("lpos", -3, READONLY, lpos)),
    k12(cmd("lmove", 5, WRITE | DENYOOM, lmove)),
    k12(cmd("rpoplpush", 3, WRITE | DENYOOM, rpoplpush)),
    CommandSpec {
        group: "list",
        ..cmd("lmpop", -4, WRITE, lmpop)
    },
    CommandSpec {
        first_key: 1,
        last_key: -2,
        step: 1,
        group: "list",
        ..cmd("blpop", -3, WRITE | BLOCKING, blpop)
    },
    CommandSpec {
        first_key: 1,
        last_key: -2,
        step: 1,
        group: "list",
        ..cmd("brpop", -3, WRITE | BLOCKING, brpop)
    },
    k12(cmd("blmove", 6, WRITE | DENYOOM | BLOCKING, blmove)),
    k12(cmd("brpoplpush", 4, WRITE | DENYOOM | BLOCKING, brpoplpush)),
    CommandSpec {
        group: "list",
        ..cmd("blmpop", -5, WRITE | BLOCKING, blmpop)
    },
];

/// Keyspace events of a pop: `lpop`/`rpop`, then `del` if it emptied
/// the list.
fn popped_events(ctx: &Ctx<'_>, key: &[u8], front: bool, emptied: bool) {
    ctx.notify(
        crate::notify::LIST,
        if front { b"lpop" } else { b"rpop" },
        key,
    );
    if emptied {
        ctx.notify(crate::notify::GENERIC, b"del", key);
    }
}

fn push_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], front: bool, only_existing: bool) -> CmdResult {
    let lim = limits(ctx);
    let mut k = ctx.write_key(a[1]);
    if k.get().is_none() {
        if only_existing {
            drop(k);
            ctx.out.int(0);
            return Ok(());
        }
        k.insert(Entry::new(Value::List(List::new())));
    }
    let l = list_mut(k.get_mut().expect("present"))?;
    l.push(&a[2..], front, &lim);
    let n = l.len();
    ctx.propagate(a);
    blocking::serve(ctx, a[1], &mut k);
    ctx.notify(
        crate::notify::LIST,
        if front { b"lpush" } else { b"rpush" },
        a[1],
    );
    drop(k);
    ctx.out.int(n as i64);
    Ok(())
}

fn lpush(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    push_generic(ctx, a, true, false)
}

fn rpush(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    push_generic(ctx, a, false, false)
}

fn lpushx(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    push_generic(ctx, a, true, true)
}

fn rpushx(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    push_generic(ctx, a, false, true)
}

fn pop_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], front: bool) -> CmdResult {
    let name = if front { "lpop" } else { "rpop" };
    if a.len() > 3 {
        return Err(CmdError::WrongArity(name.into()));
    }
    let count = if a.len() == 3 {
        Some(coll::positive(a[2])? as usize)
    } else {
        None
    };
    let lim = limits(ctx);
    let mut k = ctx.write_key(a[1]);
    let Some(e) = k.get_mut() else {
        drop(k);
        match count {
            Some(_) => ctx.out.null_array(),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    let l = list_mut(e)?;
    let Some(count) = count else {
        let v = l.pop(front).expect("lists are never empty");
        l.shrink_check(&lim);
        let emptied = l.is_empty();
        if emptied {
            k.remove();
        }
        ctx.propagate(&[if front { b"LPOP" } else { b"RPOP" }, a[1]]);
        popped_events(ctx, a[1], front, emptied);
        drop(k);
        ctx.out.bulk(&v);
        return Ok(());
    };
    if count == 0 {
        drop(k);
        ctx.out.array(0);
        return Ok(());
    }
    let popped = pop_n(l, front, count, &lim);
    let emptied = l.is_empty();
    if emptied {
        k.remove();
    }
    let n = itoa::Buffer::new().format(popped.len()).as_bytes().to_vec();
    ctx.propagate(&[if front { b"LPOP" } else { b"RPOP" }, a[1], &n]);
    popped_events(ctx, a[1], front, emptied);
    drop(k);
    ctx.out.array(popped.len());
    for v in &popped {
        ctx.out.bulk(v);
    }
    Ok(())
}

fn pop_n(l: &mut List, front: bool, count: usize, lim: &basalt_storage::Limits) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(count.min(l.len()));
    while out.len() < count {
        match l.pop(front) {
            Some(v) => out.push(v),
            None => break,
        }
    }
    l.shrink_check(lim);
    out
}

fn lpop(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    pop_generic(ctx, a, true)
}

fn rpop(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    pop_generic(ctx, a, false)
}

fn llen(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.read_key(a[1]);
    let n = opt(k.get(), list)?.map_or(0, |l| l.len());
    drop(k);
    ctx.out.int(n as i64);
    Ok(())
}

/// Resolves LRANGE-style inclusive indexes against `len`; None = empty.
pub fn resolve_range(mut start: i64, mut end: i64, len: usize) -> Option<(usize, usize)> {
    let llen = len as i64;
    if start < 0 {
        start += llen;
    }
    if end < 0 {
        end += llen;
    }
    if start < 0 {
        start = 0;
    }
    if start > end || start >= llen {
        return None;
    }
    if end >= llen {
        end = llen - 1;
    }
    Some((start as usize, end as usize))
}

fn lrange(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let start = int(a[2])?;
    let end = int(a[3])?;
    let k = ctx.read_key(a[1]);
    let Some(l) = opt(k.get(), list)? else {
        drop(k);
        ctx.out.array(0);
        return Ok(());
    };
    match resolve_range(start, end, l.len()) {
        None => ctx.out.array(0),
        Some((s, e)) => {
            ctx.out.array(e - s + 1);
            let out = &mut *ctx.out;
            l.range(s, e, |v| out.bulk(v));
        }
    }
    Ok(())
}

fn index_of(i: i64, len: usize) -> Option<usize> {
    let i = if i < 0 { i + len as i64 } else { i };
    (i >= 0 && (i as usize) < len).then_some(i as usize)
}

fn lindex(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    // Redis looks the key up (nil if missing, WRONGTYPE) before parsing
    // the index.
    let k = ctx.read_key(a[1]);
    let Some(l) = opt(k.get(), list)? else {
        drop(k);
        ctx.out.null();
        return Ok(());
    };
    let i = int(a[2])?;
    match index_of(i, l.len()).and_then(|i| l.get(i)) {
        Some(v) => ctx.out.bulk(v),
        None => ctx.out.null(),
    }
    Ok(())
}

fn lset(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let lim = limits(ctx);
    let mut k = ctx.write_key(a[1]);
    let Some(e) = k.get_mut() else {
        return Err(CmdError::NoSuchKey);
    };
    let l = list_mut(e)?;
    let i = int(a[2])?;
    let Some(i) = index_of(i, l.len()) else {
        return Err(CmdError::msg("ERR index out of range"));
    };
    l.set(i, a[3], &lim);
    ctx.propagate(a);
    ctx.notify(crate::notify::LIST, b"lset", a[1]);
    drop(k);
    ctx.out.ok();
    Ok(())
}

fn linsert(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let before = if eq(a[2], "before") {
        true
    } else if eq(a[2], "after") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let lim = limits(ctx);
    let mut k = ctx.write_key(a[1]);
    let Some(e) = k.get_mut() else {
        drop(k);
        ctx.out.int(0);
        return Ok(());
    };
    let l = list_mut(e)?;
    let r = match l.insert(a[3], a[4], before, &lim) {
        Some(n) => {
            ctx.propagate(a);
            ctx.notify(crate::notify::LIST, b"linsert", a[1]);
            n as i64
        }
        None => -1,
    };
    drop(k);
    ctx.out.int(r);
    Ok(())
}

fn lrem(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let count = int(a[2])?;
    let lim = limits(ctx);
    let mut k = ctx.write_key(a[1]);
    let mut n = 0;
    if let Some(e) = k.get_mut() {
        let l = list_mut(e)?;
        n = l.remove(count, a[3], &lim);
        let emptied = l.is_empty();
        if emptied {
            k.remove();
        }
        if n > 0 {
            ctx.propagate(a);
            ctx.notify(crate::notify::LIST, b"lrem", a[1]);
            if emptied {
                ctx.notify(crate::notify::GENERIC, b"del", a[1]);
            }
        }
    }
    drop(k);
    ctx.out.int(n as i64);
    Ok(())
}

fn ltrim(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let start = int(a[2])?;
    let end = int(a[3])?;
    let lim = limits(ctx);
    let mut k = ctx.write_key(a[1]);
    if let Some(e) = k.get_mut() {
        let l = list_mut(e)?;
        let len = l.len();
        let emptied = match resolve_range(start, end, len) {
            None => {
                k.remove();
                true
            }
            Some((s, e)) => {
                if s > 0 || e + 1 < len {
                    l.trim(s, e, &lim);
                }
                false
            }
        };
        ctx.propagate(a);
        ctx.notify(crate::notify::LIST, b"ltrim", a[1]);
        if emptied {
            ctx.notify(crate::notify::GENERIC, b"del", a[1]);
        }
    }
    drop(k);
    ctx.out.ok();
    Ok(())
}

fn lpos(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let (mut rank, mut count, mut maxlen) = (1i64, None::<usize>, 0usize);
    // RANK -9223372036854775808: Redis 7.0 negates it in place and it stays
    // negative, so every match from the tail qualifies (rank -1) and its
    // COUNT test (`matches-rank+1 >= count`) wraps negative and never
    // stops the scan: every match within MAXLEN is returned.
    let mut rank_min = false;
    let mut j = 3;
    while j < a.len() {
        let more = j + 1 < a.len();
        if eq(a[j], "rank") && more {
            rank = int(a[j + 1])?;
            if rank == 0 {
                return Err(CmdError::msg(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
            rank_min = rank == i64::MIN;
            if rank_min {
                rank = -1;
            }
        } else if eq(a[j], "count") && more {
            count =
                Some(coll::ranged_msg(a[j + 1], 0, i64::MAX, "COUNT can't be negative")? as usize);
        } else if eq(a[j], "maxlen") && more {
            maxlen = coll::ranged_msg(a[j + 1], 0, i64::MAX, "MAXLEN can't be negative")? as usize;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 2;
    }
    let k = ctx.read_key(a[1]);
    let Some(l) = opt(k.get(), list)? else {
        drop(k);
        match count {
            None => ctx.out.null(),
            Some(_) => ctx.out.array(0),
        }
        return Ok(());
    };
    let len = l.len();
    let want = match count {
        None => 1,
        Some(_) if rank_min => usize::MAX,
        Some(0) => usize::MAX,
        Some(c) => c,
    };
    let mut skip = rank.unsigned_abs() as usize - 1;
    let mut found = Vec::new();
    let items = l.to_vec();
    let limit = if maxlen == 0 { len } else { maxlen.min(len) };
    for step in 0..limit {
        let i = if rank > 0 { step } else { len - 1 - step };
        if items[i] == a[2] {
            if skip > 0 {
                skip -= 1;
            } else {
                found.push(i);
                if found.len() >= want {
                    break;
                }
            }
        }
    }
    drop(k);
    match count {
        None => match found.first() {
            Some(i) => ctx.out.int(*i as i64),
            None => ctx.out.null(),
        },
        Some(_) => {
            ctx.out.array(found.len());
            for i in found {
                ctx.out.int(i as i64);
            }
        }
    }
    Ok(())
}

fn side(b: &[u8]) -> Result<bool, CmdError> {
    if eq(b, "left") {
        Ok(true)
    } else if eq(b, "right") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

/// LMOVE and friends; `block` (a deadline, 0 = none) makes a missing
/// source block instead of replying null. Logged as LMOVE.
fn lmove_generic(
    ctx: &mut Ctx<'_>,
    a: &[&[u8]],
    src: &[u8],
    dst: &[u8],
    from_left: bool,
    to_left: bool,
    block: Option<u64>,
) -> CmdResult {
    let lim = limits(ctx);
    // The destination is looked at (and lazily expired) only once the
    // source is found to be a list, as in Redis.
    let mut ml = ctx.lock_keys_deferred(&[src, dst], 1);
    let Some(se) = ml.get(0, src) else {
        // Inside MULTI (or while loading) it cannot block: a null bulk, as
        // Redis's blmoveGenericCommand answers there; a timeout is a null
        // array.
        match block {
            Some(deadline) if !ctx.loading && !ctx.client.in_exec => {
                blocking::block(ctx, &[src], Kind::Move, deadline, a, true)
            }
            _ => ctx.out.null(),
        }
        drop(ml);
        return Ok(());
    };
    list(se)?;
    ctx.expire_locked(&mut ml, 1, dst);
    opt(ml.get(1, dst), list)?;
    let l = list_mut(ml.get_mut(0, src).expect("present"))?;
    let v = l.pop(from_left).expect("lists are never empty");
    l.shrink_check(&lim);
    let emptied = l.is_empty() && src != dst;
    if emptied {
        ml.remove(0, src);
    }
    if ml.get(1, dst).is_none() {
        ml.insert(1, dst, Entry::new(Value::List(List::new())));
    }
    list_mut(ml.get_mut(1, dst).expect("present"))?.push(&[&v], to_left, &lim);
    let side = |l: bool| -> &'static [u8] {
        if l {
            b"LEFT"
        } else {
            b"RIGHT"
        }
    };
    ctx.propagate(&[b"LMOVE", src, dst, side(from_left), side(to_left)]);
    blocking::serve(
        ctx,
        dst,
        &mut MultiSlot {
            ml: &mut ml,
            i: 1,
            key: dst,
        },
    );
    if src != dst {
        blocking::serve(
            ctx,
            src,
            &mut MultiSlot {
                ml: &mut ml,
                i: 0,
                key: src,
            },
        );
    }
    ctx.notify(
        crate::notify::LIST,
        if to_left { b"lpush" } else { b"rpush" },
        dst,
    );
    popped_events(ctx, src, from_left, emptied);
    drop(ml);
    ctx.out.bulk(&v);
    Ok(())
}

fn lmove(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let from = side(a[3])?;
    let to = side(a[4])?;
    lmove_generic(ctx, a, a[1], a[2], from, to, None)
}

fn rpoplpush(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    lmove_generic(ctx, a, a[1], a[2], false, true, None)
}

fn bpop_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], front: bool) -> CmdResult {
    let deadline = blocking::parse_timeout(a[a.len() - 1], ctx.now_ms)?;
    blocking::pop_or_block(
        ctx,
        a,
        &a[1..a.len() - 1],
        Kind::List { front, count: None },
        deadline,
    )
}

fn blpop(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    bpop_generic(ctx, a, true)
}

fn brpop(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    bpop_generic(ctx, a, false)
}

fn blmove(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let from = side(a[3])?;
    let to = side(a[4])?;
    let deadline = blocking::parse_timeout(a[5], ctx.now_ms)?;
    lmove_generic(ctx, a, a[1], a[2], from, to, Some(deadline))
}

fn brpoplpush(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let deadline = blocking::parse_timeout(a[3], ctx.now_ms)?;
    lmove_generic(ctx, a, a[1], a[2], false, true, Some(deadline))
}

fn blmpop(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    // As Redis: numkeys, the keys, the side and COUNT are checked before
    // the timeout.
    let (keys, front, count) = blocking::parse_mpop(a, 2, "left", "right")?;
    let deadline = blocking::parse_timeout(a[1], ctx.now_ms)?;
    blocking::pop_or_block(
        ctx,
        a,
        &keys,
        Kind::List {
            front,
            count: Some(count.unwrap_or(1)),
        },
        deadline,
    )
}

fn lmpop(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let numkeys = coll::ranged_msg(a[1], 1, i64::MAX, "numkeys should be greater than 0")? as usize;
    let where_idx = numkeys.saturating_add(2);
    if where_idx >= a.len() {
        return Err(CmdError::Syntax);
    }
    let front = side(a[where_idx])?;
    let mut count = None;
    let mut j = where_idx + 1;
    while j < a.len() {
        if count.is_none() && eq(a[j], "count") && j + 1 < a.len() {
            count = Some(
                coll::ranged_msg(a[j + 1], 1, i64::MAX, "count should be greater than 0")? as usize,
            );
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let count = count.unwrap_or(1);
    let lim = limits(ctx);
    for key in &a[2..where_idx] {
        let mut k = ctx.write_key(key);
        let Some(e) = k.get_mut() else { continue };
        let l = list_mut(e)?;
        let popped = pop_n(l, front, count, &lim);
        let emptied = l.is_empty();
        if emptied {
            k.remove();
        }
        let n = itoa::Buffer::new().format(popped.len()).as_bytes().to_vec();
        ctx.propagate(&[if front { b"LPOP" } else { b"RPOP" }, key, &n]);
        popped_events(ctx, key, front, emptied);
        drop(k);
        ctx.out.array(2);
        ctx.out.bulk(key);
        ctx.out.array(popped.len());
        for v in &popped {
            ctx.out.bulk(v);
        }
        return Ok(());
    }
    ctx.out.null_array();
    Ok(())
}
