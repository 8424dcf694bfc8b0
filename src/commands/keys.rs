//! Generic key commands: DEL, EXISTS, TTLs, RENAME, COPY, MOVE, KEYS, SCAN...

use std::sync::atomic::Ordering::Relaxed;

use basalt_storage::{glob_match, Entry, Keyspace, Value};

use super::args::{eq, int, upper};
use super::flags::*;
use super::{cmd, container, CmdError, CmdResult, CommandSpec, Ctx};

const fn k1(mut c: CommandSpec) -> CommandSpec {
    c.first_key = 1;
    c.last_key = 1;
    c.step = 1;
    c.group = "generic";
    c
}

const fn kall(mut c: CommandSpec) -> CommandSpec {
    c.first_key = 1;
    c.last_key = -1;
    c.step = 1;
    c.group = "generic";
    c
}

const fn k12(mut c: CommandSpec) -> CommandSpec {
    c.first_key = 1;
    c.last_key = 2;
    c.step = 1;
    c.group = "generic";
    c
}

const fn obj(mut c: CommandSpec) -> CommandSpec {
    c.first_key = 2;
    c.last_key = 2;
    c.step = 1;
    c.group = "generic";
    c
}

pub static COMMANDS: &[CommandSpec] = &[
    kall(cmd("del", -2, WRITE, del)),
    kall(cmd("unlink", -2, WRITE | FAST, unlink)),
    kall(cmd("exists", -2, READONLY | FAST, exists)),
    kall(cmd("touch", -2, READONLY | FAST, touch)),
    k1(cmd("type", 2, READONLY | FAST, type_)),
    k1(cmd("expire", -3, WRITE | FAST, expire)),
    k1(cmd("pexpire", -3, WRITE | FAST, pexpire)),
    k1(cmd("expireat", -3, WRITE | FAST, expireat)),
    k1(cmd("pexpireat", -3, WRITE | FAST, pexpireat)),
    k1(cmd("ttl", 2, READONLY | FAST, ttl)),
    k1(cmd("pttl", 2, READONLY | FAST, pttl)),
    k1(cmd("expiretime", 2, READONLY | FAST, expiretime)),
    k1(cmd("pexpiretime", 2, READONLY | FAST, pexpiretime)),
    k1(cmd("persist", 2, WRITE | FAST, persist)),
    k12(cmd("rename", 3, WRITE, rename)),
    k12(cmd("renamenx", 3, WRITE | FAST, renamenx)),
    k12(cmd("copy", -3, WRITE | DENYOOM, copy)),
    k1(cmd("move", 3, WRITE | FAST, move_)),
    CommandSpec {
        group: "generic",
        ..cmd("keys", 2, READONLY | CAT_DANGEROUS, keys)
    },
    k1(cmd("dump", 2, READONLY, dump)),
    k1(cmd("restore", -4, WRITE | DENYOOM | CAT_DANGEROUS, restore)),
    CommandSpec {
        group: "generic",
        ..cmd("scan", -2, READONLY, scan)
    },
    CommandSpec {
        group: "generic",
        ..cmd("randomkey", 1, READONLY, randomkey)
    },
    CommandSpec {
        group: "generic",
        subcommands: &[
            obj(cmd("encoding", 3, READONLY, object_encoding)),
            obj(cmd("freq", 3, READONLY, object_freq)),
            obj(cmd("idletime", 3, READONLY, object_idletime)),
            obj(cmd("refcount", 3, READONLY, object_refcount)),
            cmd("help", 2, LOADING | STALE, object_help),
        ],
        ..cmd("object", -2, 0, container)
    },
];

fn del_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], name: &'static [u8]) -> CmdResult {
    let mut n = 0;
    for key in &a[1..] {
        let mut k = ctx.write_key(key);
        if k.remove().is_some() {
            n += 1;
            ctx.propagate(&[name, key]);
            ctx.notify(crate::notify::GENERIC, b"del", key);
        }
    }
    ctx.out.int(n);
    Ok(())
}

fn del(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    del_generic(ctx, a, b"DEL")
}

fn unlink(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    del_generic(ctx, a, b"UNLINK")
}

fn exists(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let mut n = 0;
    for key in &a[1..] {
        if ctx.peek_key(key).exists() {
            n += 1;
        }
    }
    ctx.out.int(n);
    Ok(())
}

fn touch(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    // TOUCH updates the access clock even under CLIENT NO-TOUCH (7.2);
    // otherwise the read lookup already did (once: an LFU counter counts
    // one access).
    let extra = ctx
        .client
        .handle
        .no_touch
        .load(std::sync::atomic::Ordering::Relaxed)
        .then(|| ctx.stamp());
    let mut n = 0;
    for key in &a[1..] {
        let mut k = ctx.read_key(key);
        if k.exists() {
            n += 1;
            let (db, hash) = (k.db, k.hash);
            if let Some(s) = extra {
                k.guard.dbs[db].touch(hash, key, |f| s.apply(f));
            }
        }
    }
    ctx.out.int(n);
    Ok(())
}

fn type_(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.peek_key(a[1]);
    let t = k.get().map_or("none", |e| e.value.type_name());
    drop(k);
    ctx.out.simple(t);
    Ok(())
}

#[derive(Default)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_expire_flags(a: &[&[u8]]) -> Result<ExpireFlags, CmdError> {
    let mut f = ExpireFlags::default();
    for opt in &a[3..] {
        if eq(opt, "nx") {
            f.nx = true;
        } else if eq(opt, "xx") {
            f.xx = true;
        } else if eq(opt, "gt") {
            f.gt = true;
        } else if eq(opt, "lt") {
            f.lt = true;
        } else {
            let mut m = b"ERR Unsupported option ".to_vec();
            m.extend_from_slice(super::error::c_str_trunc(opt, usize::MAX));
            return Err(CmdError::Bytes(m));
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        return Err(CmdError::msg(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if f.gt && f.lt {
        return Err(CmdError::msg(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    Ok(f)
}

fn expire_generic(
    ctx: &mut Ctx<'_>,
    a: &[&[u8]],
    secs: bool,
    abs: bool,
    name: &'static str,
) -> CmdResult {
    let f = parse_expire_flags(a)?;
    let mut when = int(a[2])?;
    if secs {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return Err(CmdError::InvalidExpire(name));
        }
        when *= 1000;
    }
    let base = if abs { 0 } else { ctx.now_ms as i64 };
    if when > i64::MAX - base {
        return Err(CmdError::InvalidExpire(name));
    }
    when += base;
    let touch = ctx.touch_clock();
    let mut k = ctx.write_key(a[1]);
    let Some(e) = k.get_mut() else {
        drop(k);
        ctx.out.int(0);
        return Ok(());
    };
    if let Some(c) = touch {
        c.apply(&mut e.lru);
    }
    let cur = if e.expire_at == 0 {
        -1
    } else {
        e.expire_at as i64
    };
    let refuse = (f.nx && cur != -1)
        || (f.xx && cur == -1)
        || (f.gt && (cur == -1 || when <= cur))
        || (f.lt && cur != -1 && when >= cur);
    if refuse {
        drop(k);
        ctx.out.int(0);
        return Ok(());
    }
    if when <= ctx.now_ms as i64 && !ctx.loading {
        k.remove();
        ctx.propagate(&[b"DEL", a[1]]);
        ctx.notify(crate::notify::GENERIC, b"del", a[1]);
    } else {
        // A deadline at or before the epoch can only come from replay;
        // 1 ms keeps it "expired" without meaning "no TTL".
        k.set_expire(when.max(1) as u64);
        ctx.propagate(&[
            b"PEXPIREAT",
            a[1],
            itoa::Buffer::new().format(when).as_bytes(),
        ]);
        ctx.notify(crate::notify::GENERIC, b"expire", a[1]);
    }
    drop(k);
    ctx.out.int(1);
    Ok(())
}

fn expire(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, a, true, false, "expire")
}

fn pexpire(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, a, false, false, "pexpire")
}

fn expireat(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, a, true, true, "expireat")
}

fn pexpireat(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, a, false, true, "pexpireat")
}

/// -2 missing, -1 no TTL, else the deadline in ms.
fn deadline(ctx: &Ctx<'_>, key: &[u8]) -> i64 {
    let k = ctx.peek_key(key);
    match k.get() {
        None => -2,
        Some(e) if e.expire_at == 0 => -1,
        Some(e) => e.expire_at as i64,
    }
}

fn ttl_generic(ctx: &mut Ctx<'_>, key: &[u8], ms: bool) -> CmdResult {
    let d = deadline(ctx, key);
    if d < 0 {
        ctx.out.int(d);
    } else {
        let left = (d - ctx.now_ms as i64).max(0);
        ctx.out.int(if ms { left } else { (left + 500) / 1000 });
    }
    Ok(())
}

fn ttl(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, a[1], false)
}

fn pttl(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, a[1], true)
}

fn expiretime(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let d = deadline(ctx, a[1]);
    ctx.out.int(if d < 0 { d } else { d / 1000 });
    Ok(())
}

fn pexpiretime(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let d = deadline(ctx, a[1]);
    ctx.out.int(d);
    Ok(())
}

fn persist(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let touch = ctx.touch_clock();
    let mut k = ctx.write_key(a[1]);
    let done = match k.get_mut() {
        Some(e) => {
            if let Some(c) = touch {
                c.apply(&mut e.lru);
            }
            e.expire_at != 0
        }
        None => false,
    };
    if done {
        k.set_expire(0);
    }
    if done {
        ctx.propagate(&[b"PERSIST", a[1]]);
        ctx.notify(crate::notify::GENERIC, b"persist", a[1]);
    }
    drop(k);
    ctx.out.int(done as i64);
    Ok(())
}

fn rename_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], nx: bool) -> CmdResult {
    let keys = [a[1], a[2]];
    let touch = ctx.touch_clock();
    // The destination is looked at (and lazily expired) only once the
    // source is found, as in Redis.
    let mut m = ctx.lock_keys_deferred(&keys, 1);
    match m.get_mut(0, a[1]) {
        None => return Err(CmdError::NoSuchKey),
        Some(e) => {
            if let Some(c) = touch {
                c.apply(&mut e.lru);
            }
        }
    }
    if a[1] == a[2] {
        drop(m);
        if nx {
            ctx.out.int(0);
        } else {
            ctx.out.ok();
        }
        return Ok(());
    }
    ctx.expire_locked(&mut m, 1, a[2]);
    if nx && m.get(1, a[2]).is_some() {
        drop(m);
        ctx.out.int(0);
        return Ok(());
    }
    let e = m.remove(0, a[1]).expect("checked above");
    m.insert_object(1, a[2], e);
    ctx.propagate(&[if nx { b"RENAMENX" } else { b"RENAME" }, a[1], a[2]]);
    // A list or zset arriving under a key clients block on serves them.
    crate::blocking::serve(
        ctx,
        a[2],
        &mut crate::blocking::MultiSlot {
            ml: &mut m,
            i: 1,
            key: a[2],
        },
    );
    ctx.notify(crate::notify::GENERIC, b"rename_from", a[1]);
    ctx.notify(crate::notify::GENERIC, b"rename_to", a[2]);
    drop(m);
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
    Ok(())
}

fn rename(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    rename_generic(ctx, a, false)
}

fn renamenx(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    rename_generic(ctx, a, true)
}

/// Deep copy of a value (COPY).
pub fn clone_value(v: &Value) -> Value {
    v.deep_clone()
}

fn parse_db(ctx: &Ctx<'_>, b: &[u8]) -> Result<usize, CmdError> {
    let v = super::args::int32(b)?;
    if v < 0 || v >= ctx.srv.ks.num_dbs() as i64 {
        return Err(CmdError::DbIndex);
    }
    Ok(v as usize)
}

/// Locks `src` in `sdb` and `dst` in `ddb` together (same shard rule:
/// a key maps to the same shard in every db). Lazy expiry applies to
/// `dst` only when `src` is there: Redis's COPY and MOVE look the
/// destination up only once the source is found.
fn with_two<R>(
    ctx: &Ctx<'_>,
    src: &[u8],
    sdb: usize,
    dst: &[u8],
    ddb: usize,
    f: impl FnOnce(&mut basalt_storage::Dict, &mut basalt_storage::Dict, u64, u64) -> R,
) -> R {
    let ks = &ctx.srv.ks;
    let (hs, hd) = (Keyspace::hash(src), Keyspace::hash(dst));
    let (ss, sd) = (ks.shard_of(hs), ks.shard_of(hd));
    let mut g = ctx.shards(vec![ss, sd]);
    let now = ctx.now_ms;
    let expire = |d: &mut basalt_storage::Dict, h: u64, k: &[u8], db: usize| {
        if !ctx.loading && matches!(d.get(h, k), Some(e) if e.is_expired(now)) {
            d.remove(h, k);
            ctx.srv.stats.expired_keys.fetch_add(1, Relaxed);
            if ctx.srv.blocked.blocked() > 0 {
                crate::blocking::mark_ready(db, k);
            }
            true
        } else {
            false
        }
    };
    if g.len() == 1 {
        let shard = &mut g[0].1;
        if expire(&mut shard.dbs[sdb], hs, src, sdb) {
            ctx.notify_in(sdb, crate::notify::EXPIRED, b"expired", src);
            ctx.propagate_in(sdb, &[b"DEL", src]);
        }
        if shard.dbs[sdb].get(hs, src).is_some() && expire(&mut shard.dbs[ddb], hd, dst, ddb) {
            ctx.notify_in(ddb, crate::notify::EXPIRED, b"expired", dst);
            ctx.propagate_in(ddb, &[b"DEL", dst]);
        }
        debug_assert_ne!(sdb, ddb, "same-db callers use lock_keys");
        {
            let (a, b) = if sdb < ddb {
                let (l, r) = shard.dbs.split_at_mut(ddb);
                (&mut l[sdb], &mut r[0])
            } else {
                let (l, r) = shard.dbs.split_at_mut(sdb);
                (&mut r[0], &mut l[ddb])
            };
            f(a, b, hs, hd)
        }
    } else {
        let (first, second) = g.split_at_mut(1);
        let (sg, dg) = if ss < sd {
            (&mut first[0].1, &mut second[0].1)
        } else {
            (&mut second[0].1, &mut first[0].1)
        };
        if expire(&mut sg.dbs[sdb], hs, src, sdb) {
            ctx.notify_in(sdb, crate::notify::EXPIRED, b"expired", src);
            ctx.propagate_in(sdb, &[b"DEL", src]);
        }
        if sg.dbs[sdb].get(hs, src).is_some() && expire(&mut dg.dbs[ddb], hd, dst, ddb) {
            ctx.notify_in(ddb, crate::notify::EXPIRED, b"expired", dst);
            ctx.propagate_in(ddb, &[b"DEL", dst]);
        }
        f(&mut sg.dbs[sdb], &mut dg.dbs[ddb], hs, hd)
    }
}

fn copy(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let (src, dst) = (a[1], a[2]);
    let mut ddb = ctx.client.db;
    let mut replace = false;
    let mut j = 3;
    while j < a.len() {
        if eq(a[j], "replace") {
            replace = true;
        } else if eq(a[j], "db") && j + 1 < a.len() {
            ddb = parse_db(ctx, a[j + 1])?;
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let sdb = ctx.client.db;
    if src == dst && sdb == ddb {
        return Err(CmdError::msg(
            "ERR source and destination objects are the same",
        ));
    }
    // The copy is a new object (fresh access clock); reading the source
    // touches it.
    let clock = ctx.stamp().fresh();
    let touch = ctx.touch_clock();
    let copy_into = |e: &Entry| Entry {
        value: clone_value(&e.value),
        expire_at: e.expire_at,
        lru: clock,
        epoch: 0,
    };
    // (source found, copied); the source lookup counts as a read.
    let (found, done) = if sdb == ddb {
        // The destination is looked at only once the source is found.
        let mut m = ctx.lock_keys_deferred(&[src, dst], 1);
        if let (Some(e), Some(c)) = (m.get_mut(0, src), touch) {
            c.apply(&mut e.lru);
        }
        let ne = m.get(0, src).map(copy_into);
        if ne.is_some() {
            ctx.expire_locked(&mut m, 1, dst);
        }
        match ne {
            Some(ne) if replace || m.get(1, dst).is_none() => {
                m.insert_object(1, dst, ne);
                (true, true)
            }
            found => (found.is_some(), false),
        }
    } else {
        with_two(ctx, src, sdb, dst, ddb, |s, d, hs, hd| {
            if let (Some(e), Some(c)) = (s.get_mut(hs, src), touch) {
                c.apply(&mut e.lru);
            }
            let Some(e) = s.get(hs, src) else {
                return (false, false);
            };
            if d.get(hd, dst).is_some() && !replace {
                return (true, false);
            }
            if d.insert(hd, dst, copy_into(e)).is_none() {
                // A key created in another db: the `new` event (same-db
                // inserts raise it in `MultiLock::insert`).
                crate::notify::notify(ctx.srv, ddb, crate::notify::NEW, b"new", dst);
            }
            (true, true)
        })
    };
    ctx.count_lookup(found);
    if done && ctx.srv.blocked.blocked() > 0 {
        // A list, sorted set or stream put under a key clients block on.
        crate::blocking::mark_ready(ddb, dst);
    }
    if done {
        let dbs = itoa::Buffer::new().format(ddb).to_string();
        let mut rec: Vec<&[u8]> = vec![b"COPY", src, dst, b"DB", dbs.as_bytes()];
        if replace {
            rec.push(b"REPLACE");
        }
        ctx.propagate(&rec);
        ctx.notify_in(ddb, crate::notify::GENERIC, b"copy_to", dst);
    }
    ctx.out.int(done as i64);
    Ok(())
}

fn move_(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let ddb = parse_db(ctx, a[2])?;
    let sdb = ctx.client.db;
    if sdb == ddb {
        return Err(CmdError::msg(
            "ERR source and destination objects are the same",
        ));
    }
    let key = a[1];
    let touch = ctx.touch_clock();
    let done = with_two(ctx, key, sdb, key, ddb, |s, d, h, _| {
        if let (Some(e), Some(c)) = (s.get_mut(h, key), touch) {
            c.apply(&mut e.lru);
        }
        if s.get(h, key).is_none() || d.get(h, key).is_some() {
            return false;
        }
        let (_, e) = s.remove(h, key).expect("checked");
        d.insert(h, key, e);
        true
    });
    if done && ctx.srv.blocked.blocked() > 0 {
        // Gone from one db (XREADGROUP waits there end), arrived in the
        // other (its waiters there are served).
        crate::blocking::mark_ready(sdb, key);
        crate::blocking::mark_ready(ddb, key);
    }
    if done {
        ctx.propagate(&[b"MOVE", key, a[2]]);
        ctx.notify_in(ddb, crate::notify::NEW, b"new", key);
        ctx.notify_in(sdb, crate::notify::GENERIC, b"move_from", key);
        ctx.notify_in(ddb, crate::notify::GENERIC, b"move_to", key);
    }
    ctx.out.int(done as i64);
    Ok(())
}

fn keys(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let pat = a[1];
    let all = pat == b"*";
    let db = ctx.client.db;
    let mut out: Vec<Vec<u8>> = Vec::new();
    for s in 0..ctx.srv.ks.num_shards() {
        let g = ctx.shard(s);
        for (k, e) in g.dbs[db].iter() {
            if !e.is_expired(ctx.now_ms) && (all || glob_match(pat, k, false)) {
                out.push(k.to_vec());
            }
        }
    }
    ctx.out.array(out.len());
    for k in &out {
        ctx.out.bulk(k);
    }
    Ok(())
}

fn scan(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let cursor =
        crate::num::parse_cursor(a[1]).ok_or_else(|| CmdError::msg("ERR invalid cursor"))?;
    let mut count = 10i64;
    let mut pat: Option<&[u8]> = None;
    let mut typ: Option<String> = None;
    let mut j = 2;
    while j < a.len() {
        let has = j + 1 < a.len();
        if eq(a[j], "count") && has {
            count = int(a[j + 1])?;
            if count < 1 {
                return Err(CmdError::Syntax);
            }
        } else if eq(a[j], "match") && has {
            pat = Some(a[j + 1]);
        } else if eq(a[j], "type") && has {
            typ = Some(String::from_utf8_lossy(a[j + 1]).to_ascii_lowercase());
        } else {
            return Err(CmdError::Syntax);
        }
        j += 2;
    }
    let ks = &ctx.srv.ks;
    let nshards = ks.num_shards() as u64;
    let db = ctx.client.db;
    // Cursor layout: shard index in the low bits, the table's reverse-
    // binary cursor above them. Each shard is scanned to completion
    // before the next, so the per-table guarantee carries over.
    let mut shard = cursor % nshards;
    let mut tc = cursor / nshards;
    let mut found: Vec<Vec<u8>> = Vec::new();
    let mut expired: Vec<Vec<u8>> = Vec::new();
    let mut visited = 0i64;
    let maxiter = count.saturating_mul(10);
    let mut next = 0u64;
    let now = ctx.now_ms;
    'outer: loop {
        let g = ctx.shard(shard as usize);
        loop {
            tc = g.dbs[db].scan(tc, |k, e| {
                if e.is_expired(now) {
                    expired.push(k.to_vec());
                } else {
                    found.push(k.to_vec());
                }
            });
            visited += 1;
            if tc == 0 {
                break;
            }
            if found.len() as i64 >= count || visited >= maxiter {
                next = tc * nshards + shard;
                break 'outer;
            }
        }
        drop(g);
        shard += 1;
        if shard >= nshards {
            break;
        }
        if found.len() as i64 >= count || visited >= maxiter {
            next = shard;
            break;
        }
    }
    if let Some(p) = pat {
        found.retain(|k| glob_match(p, k, false));
        expired.retain(|k| glob_match(p, k, false));
    }
    // Redis deletes the expired keys a SCAN returns-to-be (after the
    // pattern filter): DBSIZE shows it.
    for k in &expired {
        drop(ctx.write_key(k));
    }
    if let Some(t) = typ {
        found.retain(|k| {
            let kl = ctx.peek_key(k);
            kl.get().is_some_and(|e| e.value.type_name() == t)
        });
    }
    ctx.out.array(2);
    ctx.out.bulk(itoa::Buffer::new().format(next).as_bytes());
    ctx.out.array(found.len());
    for k in &found {
        ctx.out.bulk(k);
    }
    Ok(())
}

fn randomkey(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let n = ctx.srv.ks.num_shards();
    let db = ctx.client.db;
    let mut seed = ctx.now_ms
        ^ (ctx.client.handle.id << 20)
        ^ ctx
            .srv
            .stats
            .commands
            .load(Relaxed)
            .wrapping_mul(0x9e3779b97f4a7c15);
    // As Redis: an expired key that comes up is deleted and another is
    // drawn, so the loop ends with a live key or an empty db.
    loop {
        let mut picked: Option<(Vec<u8>, bool)> = None;
        // Random shards first, then every shard in order.
        for attempt in 0..(n * 2) {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let s = if attempt < n {
                (seed >> 33) as usize % n
            } else {
                attempt - n
            };
            let g = ctx.shard(s);
            if let Some(k) = g.dbs[db].random_key(seed) {
                let expired = g.dbs[db]
                    .get(Keyspace::hash(k), k)
                    .is_none_or(|e| e.is_expired(ctx.now_ms));
                picked = Some((k.to_vec(), expired));
                break;
            }
        }
        match picked {
            None => {
                ctx.out.null();
                return Ok(());
            }
            Some((k, expired)) if !expired || ctx.loading => {
                ctx.out.bulk(&k);
                return Ok(());
            }
            // Lazy expiry on access deletes it (and logs the DEL).
            Some((k, _)) => drop(ctx.write_key(&k)),
        }
    }
}

fn object_encoding(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.peek_key(a[2]);
    let enc = k.get().map(|e| e.value.encoding_name());
    drop(k);
    match enc {
        Some(e) => ctx.out.bulk(e.as_bytes()),
        None => ctx.out.null(),
    }
    Ok(())
}

fn lfu_policy(ctx: &Ctx<'_>) -> bool {
    ctx.srv.evict.policy().is_lfu()
}

fn object_freq(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.peek_key(a[2]);
    let field = k.get().map(|e| e.lru);
    drop(k);
    let Some(field) = field else {
        ctx.out.null();
        return Ok(());
    };
    if !lfu_policy(ctx) {
        return Err(CmdError::msg("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
    }
    // The counter after decay, as Redis's `LFUDecrAndReturn` (not stored).
    let c = crate::evict::lfu_decr(
        field,
        crate::evict::lfu_minutes(ctx.now_ms),
        ctx.srv.evict.lfu_decay_time(),
    );
    ctx.out.int(c as i64);
    Ok(())
}

fn object_idletime(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.peek_key(a[2]);
    let lru = k.get().map(|e| e.lru);
    drop(k);
    let Some(lru) = lru else {
        ctx.out.null();
        return Ok(());
    };
    if lfu_policy(ctx) {
        return Err(CmdError::msg("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
    }
    ctx.out
        .int(crate::shared::lru_elapsed(ctx.srv.lru_clock_at(ctx.now_ms), lru) as i64);
    Ok(())
}

fn object_refcount(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    // Redis shares the integers 0..9999 and reports INT_MAX for them,
    // unless a maxmemory with an LRU/LFU policy needs per-key clocks.
    let shared = {
        let cfg = ctx.srv.config.read();
        let maxmem = cfg.get("maxmemory").is_some_and(|v| v != "0");
        let lru_lfu = cfg
            .get("maxmemory-policy")
            .is_some_and(|p| p.contains("lru") || p.contains("lfu"));
        !(maxmem && lru_lfu)
    };
    let k = ctx.peek_key(a[2]);
    let rc = k.get().map(|e| match e.value {
        Value::Int(i) if shared && (0..10000).contains(&i) => i32::MAX as i64,
        _ => 1,
    });
    drop(k);
    match rc {
        Some(rc) => ctx.out.int(rc),
        None => ctx.out.null(),
    }
    Ok(())
}

pub fn help_reply(ctx: &mut Ctx<'_>, container: &str, lines: &[&str]) {
    ctx.out.array(lines.len() + 3);
    ctx.out.simple(&format!(
        "{} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        upper(container.as_bytes())
    ));
    for l in lines {
        ctx.out.simple(l);
    }
    ctx.out.simple("HELP");
    ctx.out.simple("    Prints this help.");
}

fn object_help(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    help_reply(
        ctx,
        "object",
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    );
    Ok(())
}

fn dump(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.read_key(a[1]);
    let v = k.get().map(|e| crate::convert::to_rdb(&e.value));
    drop(k);
    match v {
        None => ctx.out.null(),
        Some(v) => {
            let payload = dump_payload(&v)?;
            ctx.out.bulk(&payload);
        }
    }
    Ok(())
}

/// A DUMP payload: RDB 10 (Redis 7.0) unless the value needs more: a
/// hash with field TTLs is dumped as Redis 7.4 does (RDB 12), which 7.4+
/// and Basalt restore and older servers refuse by its version.
pub(crate) fn dump_payload(v: &basalt_rdb::Value) -> Result<Vec<u8>, CmdError> {
    basalt_rdb::encode_dump(v, &basalt_rdb::EncodeOptions::default())
        .or_else(|_| {
            let opts = basalt_rdb::EncodeOptions {
                target: basalt_rdb::Target::Redis12,
                ..Default::default()
            };
            basalt_rdb::encode_dump(v, &opts)
        })
        .map_err(|e| CmdError::msg(format!("ERR DUMP failed: {e}")))
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]
fn restore(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let (mut replace, mut absttl) = (false, false);
    let mut lru_idle: Option<i64> = None;
    let mut freq: Option<i64> = None;
    let mut j = 4;
    while j < a.len() {
        let more = j + 1 < a.len();
        // As Redis: IDLETIME and FREQ exclude each other (syntax error).
        if eq(a[j], "replace") {
            replace = true;
        } else if eq(a[j], "absttl") {
            absttl = true;
        } else if eq(a[j], "idletime") && more && freq.is_none() {
            let v = int(a[j + 1])?;
            if v < 0 {
                return Err(CmdError::msg("ERR Invalid IDLETIME value, must be >= 0"));
            }
            lru_idle = Some(v);
            j += 1;
        } else if eq(a[j], "freq") && more && lru_idle.is_none() {
            let v = int(a[j + 1])?;
            if !(0..=255).contains(&v) {
                return Err(CmdError::msg(
                    "ERR Invalid FREQ value, must be >= 0 and <= 255",
                ));
            }
            freq = Some(v);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    // Redis's order: BUSYKEY, then the TTL, then the payload.
    if !replace && ctx.write_key(a[1]).exists() {
        return Err(CmdError::msg("BUSYKEY Target key name already exists."));
    }
    let ttl = int(a[2])?;
    if ttl < 0 {
        return Err(CmdError::msg("ERR Invalid TTL value, must be >= 0"));
    }
    let bad_payload = || CmdError::msg("ERR DUMP payload version or checksum are wrong");
    if a[3].len() < 10 {
        return Err(bad_payload());
    }
    let (value, _) = basalt_rdb::decode_dump(a[3], &basalt_rdb::DecodeOptions::default(), None)
        .map_err(|e| match e {
            basalt_rdb::Error::UnsupportedVersion { .. }
            | basalt_rdb::Error::Checksum { .. }
            | basalt_rdb::Error::Truncated { .. } => bad_payload(),
            _ => CmdError::msg("ERR Bad data format"),
        })?;
    let lim = ctx.srv.config.read().limits;
    let v =
        crate::convert::from_rdb(&value, &lim).map_err(|e| CmdError::msg(format!("ERR {e}")))?;
    let expire_at = match (ttl, absttl) {
        (0, _) => 0,
        (t, true) => t as u64,
        (t, false) => ctx.now_ms.saturating_add(t as u64),
    };
    let mut k = ctx.write_key(a[1]);
    if k.exists() && !replace {
        return Err(CmdError::msg("BUSYKEY Target key name already exists."));
    }
    if expire_at != 0 && expire_at <= ctx.now_ms && !ctx.loading {
        // Already expired: Redis deletes the key and replies OK.
        if k.remove().is_some() {
            ctx.propagate(&[b"DEL", a[1]]);
            ctx.notify(crate::notify::GENERIC, b"del", a[1]);
        }
        drop(k);
        ctx.out.ok();
        return Ok(());
    }
    // As Redis's `objectSetLRUOrLFU`: FREQ counts under an LFU policy,
    // IDLETIME otherwise; an option that does not apply is ignored. The
    // key is new (REPLACE deletes first), so nothing is inherited.
    let stamp = ctx.stamp();
    let mut lru = stamp.fresh();
    match (stamp, freq, lru_idle) {
        (crate::evict::Stamp::Lfu { minutes, .. }, Some(f), _) => {
            lru = (minutes << 8) | f as u32;
        }
        (crate::evict::Stamp::Lru(now), _, Some(idle)) => {
            let idle = (idle as u64).min(crate::shared::LRU_CLOCK_MAX);
            // Going back `idle` seconds on the 24-bit wrapping clock.
            lru = ((now as u64 + crate::shared::LRU_CLOCK_MAX + 1 - idle)
                & crate::shared::LRU_CLOCK_MAX) as u32;
        }
        _ => {}
    }
    k.insert(Entry::with_expire(v, expire_at));
    if let Some(e) = k.get_mut() {
        e.lru = lru;
    }
    if ctx.srv.blocked.blocked() > 0 {
        // A list or sorted set restored under a key clients block on.
        crate::blocking::mark_ready(ctx.client.db, a[1]);
    }
    // Logged with an absolute deadline so replay is exact.
    let abs = itoa::Buffer::new().format(expire_at).to_string();
    ctx.propagate(&[
        b"RESTORE",
        a[1],
        abs.as_bytes(),
        a[3],
        b"REPLACE",
        b"ABSTTL",
    ]);
    ctx.notify(crate::notify::GENERIC, b"restore", a[1]);
    drop(k);
    ctx.out.ok();
    Ok(())
}
