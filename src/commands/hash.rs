//! Hashes: HSET and friends. The encodings live in `basalt_storage::hash`.

use basalt_storage::{Entry, Hash, Value};

use super::args::{eq, int};
use super::coll::{self, hash, hash_mut, limits, opt, rand_u64};
use super::flags::*;
use super::{cmd, CmdError, CmdResult, CommandSpec, Ctx};
use crate::db::KeyLock;
use crate::num::{self, IncrFloatError};

/// Largest field deadline Redis 7.4 accepts (ms since the epoch).
const HFE_MAX_ABS_MS: i64 = ((1i64 << 48) - 1) >> 2;

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
    k1(cmd("hexpire", -6, WRITE | FAST, hexpire)),
    k1(cmd("hpexpire", -6, WRITE | FAST, hpexpire)),
    k1(cmd("hexpireat", -6, WRITE | FAST, hexpireat)),
    k1(cmd("hpexpireat", -6, WRITE | FAST, hpexpireat)),
    k1(cmd("httl", -5, READONLY | FAST, httl)),
    k1(cmd("hpttl", -5, READONLY | FAST, hpttl)),
    k1(cmd("hexpiretime", -5, READONLY | FAST, hexpiretime)),
    k1(cmd("hpexpiretime", -5, READONLY | FAST, hpexpiretime)),
    k1(cmd("hpersist", -5, WRITE | FAST, hpersist)),
];

/// Locks a key for a hash command and applies lazy field expiry: fields
/// past their deadline are deleted (logged as HDEL) before the command
/// sees the hash, and the key goes when its last field does.
fn lock_hash<'a, 'k>(ctx: &Ctx<'a>, key: &'k [u8], read: bool) -> KeyLock<'a, 'k> {
    let mut k = if read {
        ctx.read_key(key)
    } else {
        ctx.write_key(key)
    };
    if ctx.loading {
        return k;
    }
    // Look before taking the entry mutably: a mutable access hands the
    // value to a running snapshot first (a copy of a big hash).
    if !matches!(k.get().map(|e| &e.value), Some(Value::Hash(h)) if h.may_have_expired_fields(ctx.now_ms))
    {
        return k;
    }
    let gone = match k.get_mut().map(|e| &mut e.value) {
        Some(Value::Hash(h)) if h.has_ttls() => {
            let g = h.purge_expired(ctx.now_ms);
            (!g.is_empty()).then(|| (g, h.is_empty()))
        }
        _ => None,
    };
    if let Some((fields, empty)) = gone {
        if empty {
            k.remove();
        }
        let mut rec: Vec<&[u8]> = vec![b"HDEL", key];
        rec.extend(fields.iter().map(|f| f.as_slice()));
        ctx.propagate(&rec);
        ctx.notify(crate::notify::HASH, b"hexpired", key);
        if empty {
            ctx.notify(crate::notify::GENERIC, b"del", key);
        }
    }
    k
}

/// Logs a value change that keeps the field's TTL: HSET clears TTLs on
/// replay, so the deadline is restored in the same record.
fn log_set_keep_ttl(ctx: &Ctx<'_>, key: &[u8], field: &[u8], value: &[u8], ttl: Option<u64>) {
    match ttl {
        None => ctx.propagate(&[b"HSET", key, field, value]),
        Some(at) => {
            let at = itoa::Buffer::new().format(at).as_bytes().to_vec();
            ctx.propagate_many(&[
                &[b"HSET", key, field, value],
                &[b"HPEXPIREAT", key, &at, b"FIELDS", b"1", field],
            ]);
        }
    }
}

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
    let mut k = lock_hash(ctx, a[1], false);
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
    let mut k = lock_hash(ctx, a[1], false);
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
    let k = lock_hash(ctx, a[1], true);
    match opt(k.get(), hash)?.and_then(|h| h.get(a[2])) {
        Some(v) => ctx.out.bulk(v),
        None => ctx.out.null(),
    }
    Ok(())
}

fn hmget(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = lock_hash(ctx, a[1], true);
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
    let mut k = lock_hash(ctx, a[1], false);
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
    let k = lock_hash(ctx, a[1], true);
    let n = opt(k.get(), hash)?.map_or(0, |h| h.len());
    drop(k);
    ctx.out.int(n as i64);
    Ok(())
}

fn hstrlen(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = lock_hash(ctx, a[1], true);
    let n = opt(k.get(), hash)?
        .and_then(|h| h.get(a[2]))
        .map_or(0, |v| v.len());
    drop(k);
    ctx.out.int(n as i64);
    Ok(())
}

fn hexists(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = lock_hash(ctx, a[1], true);
    let n = opt(k.get(), hash)?.is_some_and(|h| h.contains(a[2]));
    drop(k);
    ctx.out.int(n as i64);
    Ok(())
}

fn hgetall_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], keys: bool, vals: bool) -> CmdResult {
    let k = lock_hash(ctx, a[1], true);
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
    let mut k = lock_hash(ctx, a[1], false);
    let cur = match opt(k.get(), hash)?.and_then(|h| h.get(a[2])) {
        Some(v) => {
            num::parse_i64(v).ok_or_else(|| CmdError::msg("ERR hash value is not an integer"))?
        }
        None => 0,
    };
    let new = cur.checked_add(by).ok_or(CmdError::Overflow)?;
    let s = itoa::Buffer::new().format(new).as_bytes().to_vec();
    let h = hash_for_write(&mut k)?;
    h.set_keep_ttl(a[2], &s, &lim);
    log_set_keep_ttl(ctx, a[1], a[2], &s, h.field_expire(a[2]));
    ctx.notify(crate::notify::HASH, b"hincrby", a[1]);
    drop(k);
    ctx.out.int(new);
    Ok(())
}

fn hincrbyfloat(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    // Validate the increment before looking at the key, as Redis does.
    match num::incr_by_float(None, a[3]) {
        Err(IncrFloatError::IncrNotFloat | IncrFloatError::ValueNotFloat) => {
            return Err(CmdError::NotFloat)
        }
        Err(IncrFloatError::NanOrInf) => return Err(CmdError::msg("ERR value is NaN or Infinity")),
        Ok(_) => {}
    }
    let lim = limits(ctx);
    let mut k = lock_hash(ctx, a[1], false);
    let cur = opt(k.get(), hash)?
        .and_then(|h| h.get(a[2]))
        .map(|v| v.to_vec());
    let new = num::incr_by_float(cur.as_deref(), a[3]).map_err(|e| match e {
        IncrFloatError::ValueNotFloat => CmdError::msg("ERR hash value is not a float"),
        IncrFloatError::IncrNotFloat => CmdError::NotFloat,
        IncrFloatError::NanOrInf => CmdError::msg("ERR increment would produce NaN or Infinity"),
    })?;
    let h = hash_for_write(&mut k)?;
    h.set_keep_ttl(a[2], &new, &lim);
    // Logged as the resulting value: float formatting is replayed exactly.
    log_set_keep_ttl(ctx, a[1], a[2], &new, h.field_expire(a[2]));
    ctx.notify(crate::notify::HASH, b"hincrbyfloat", a[1]);
    drop(k);
    ctx.out.bulk(&new);
    Ok(())
}

fn hrandfield(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    if a.len() == 2 {
        let k = lock_hash(ctx, a[1], true);
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
    let k = lock_hash(ctx, a[1], true);
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
    let k = lock_hash(ctx, a[1], true);
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

/// Parses `FIELDS numfields field...` starting at `at` (the FIELDS word).
fn parse_fields<'a>(a: &[&'a [u8]], at: usize) -> Result<Vec<&'a [u8]>, CmdError> {
    if at >= a.len() || !eq(a[at], "fields") {
        return Err(CmdError::msg(
            "ERR Mandatory argument FIELDS is missing or not at the right position",
        ));
    }
    let n = coll::ranged_msg(
        a.get(at + 1).copied().unwrap_or(b""),
        1,
        i64::MAX,
        "Number of fields must be a positive integer",
    )? as usize;
    if n != a.len() - at - 2 {
        return Err(CmdError::msg(
            "ERR The `numfields` parameter must match the number of arguments",
        ));
    }
    Ok(a[at + 2..].to_vec())
}

/// HEXPIRE, HPEXPIRE, HEXPIREAT, HPEXPIREAT (Redis 7.4): per field -2 no
/// such field, 0 condition not met, 1 set, 2 deleted (deadline passed).
/// Logged as HPEXPIREAT of the fields set plus HDEL of those deleted.
fn hexpire_generic(
    ctx: &mut Ctx<'_>,
    a: &[&[u8]],
    secs: bool,
    abs: bool,
    name: &'static str,
) -> CmdResult {
    let mut k = lock_hash(ctx, a[1], false);
    opt(k.get(), hash)?;
    let mut when = int(a[2])?;
    if when < 0 {
        return Err(CmdError::msg("ERR invalid expire time, must be >= 0"));
    }
    if secs {
        if when > HFE_MAX_ABS_MS / 1000 {
            return Err(CmdError::InvalidExpire(name));
        }
        when *= 1000;
    }
    let base = if abs { 0 } else { ctx.now_ms as i64 };
    if when > HFE_MAX_ABS_MS - base {
        return Err(CmdError::InvalidExpire(name));
    }
    when += base;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    let mut fields_at = 3;
    if eq(a[3], "nx") {
        nx = true;
    } else if eq(a[3], "xx") {
        xx = true;
    } else if eq(a[3], "gt") {
        gt = true;
    } else if eq(a[3], "lt") {
        lt = true;
    }
    if nx || xx || gt || lt {
        fields_at += 1;
    }
    let fields = parse_fields(a, fields_at)?;
    let Some(e) = k.get_mut() else {
        drop(k);
        ctx.out.array(fields.len());
        for _ in &fields {
            ctx.out.int(-2);
        }
        return Ok(());
    };
    let h = hash_mut(e)?;
    let when = when as u64;
    let (mut set, mut deleted, mut codes) = (Vec::new(), Vec::new(), Vec::new());
    for f in &fields {
        if !h.contains(f) {
            codes.push(-2);
            continue;
        }
        let prev = h.field_expire(f);
        let refuse = (nx && prev.is_some())
            || (xx && prev.is_none())
            || (gt && prev.is_none_or(|p| when <= p))
            || (lt && prev.is_some_and(|p| when >= p));
        if refuse {
            codes.push(0);
        } else if when <= ctx.now_ms && !ctx.loading {
            h.remove(f);
            deleted.push(*f);
            codes.push(2);
        } else {
            h.set_field_expire(f, when);
            set.push(*f);
            codes.push(1);
        }
    }
    let empty = h.is_empty();
    if empty {
        k.remove();
    }
    let at = itoa::Buffer::new().format(when).as_bytes().to_vec();
    let n = itoa::Buffer::new().format(set.len()).as_bytes().to_vec();
    let mut exp: Vec<&[u8]> = vec![b"HPEXPIREAT", a[1], &at, b"FIELDS", &n];
    exp.extend_from_slice(&set);
    let mut del: Vec<&[u8]> = vec![b"HDEL", a[1]];
    del.extend_from_slice(&deleted);
    match (set.is_empty(), deleted.is_empty()) {
        (false, true) => ctx.propagate(&exp),
        (true, false) => ctx.propagate(&del),
        (false, false) => ctx.propagate_many(&[&exp, &del]),
        (true, true) => {}
    }
    drop(k);
    ctx.out.array(codes.len());
    for c in codes {
        ctx.out.int(c);
    }
    Ok(())
}

fn hexpire(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    hexpire_generic(ctx, a, true, false, "hexpire")
}

fn hpexpire(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    hexpire_generic(ctx, a, false, false, "hpexpire")
}

fn hexpireat(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    hexpire_generic(ctx, a, true, true, "hexpireat")
}

fn hpexpireat(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    hexpire_generic(ctx, a, false, true, "hpexpireat")
}

#[derive(Clone, Copy)]
enum TtlKind {
    Ttl,
    PTtl,
    ExpireTime,
    PExpireTime,
}

/// HTTL, HPTTL, HEXPIRETIME, HPEXPIRETIME: per field -2 no such field,
/// -1 no TTL, else the time left or the deadline.
fn httl_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], kind: TtlKind) -> CmdResult {
    let k = lock_hash(ctx, a[1], true);
    let h = opt(k.get(), hash)?;
    let fields = parse_fields(a, 2)?;
    let now = ctx.now_ms;
    let vals: Vec<i64> = fields
        .iter()
        .map(|f| match h {
            Some(h) if h.contains(f) => match h.field_expire(f) {
                None => -1,
                Some(at) => {
                    let left = at.saturating_sub(now) as i64;
                    match kind {
                        TtlKind::Ttl => (left + 999) / 1000,
                        TtlKind::PTtl => left,
                        TtlKind::ExpireTime => (at / 1000) as i64,
                        TtlKind::PExpireTime => at as i64,
                    }
                }
            },
            _ => -2,
        })
        .collect();
    drop(k);
    ctx.out.array(vals.len());
    for v in vals {
        ctx.out.int(v);
    }
    Ok(())
}

fn httl(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    httl_generic(ctx, a, TtlKind::Ttl)
}

fn hpttl(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    httl_generic(ctx, a, TtlKind::PTtl)
}

fn hexpiretime(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    httl_generic(ctx, a, TtlKind::ExpireTime)
}

fn hpexpiretime(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    httl_generic(ctx, a, TtlKind::PExpireTime)
}

/// HPERSIST: per field -2 no such field, -1 no TTL, 1 TTL removed.
fn hpersist(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let mut k = lock_hash(ctx, a[1], false);
    opt(k.get(), hash)?;
    let fields = parse_fields(a, 2)?;
    let mut codes = Vec::with_capacity(fields.len());
    let mut done: Vec<&[u8]> = Vec::new();
    if let Some(e) = k.get_mut() {
        let h = hash_mut(e)?;
        for f in &fields {
            codes.push(if !h.contains(f) {
                -2
            } else if h.persist_field(f) {
                done.push(f);
                1
            } else {
                -1
            });
        }
    } else {
        codes.resize(fields.len(), -2);
    }
    if !done.is_empty() {
        let n = itoa::Buffer::new().format(done.len()).as_bytes().to_vec();
        let mut rec: Vec<&[u8]> = vec![b"HPERSIST", a[1], b"FIELDS", &n];
        rec.extend_from_slice(&done);
        ctx.propagate(&rec);
    }
    drop(k);
    ctx.out.array(codes.len());
    for c in codes {
        ctx.out.int(c);
    }
    Ok(())
}
