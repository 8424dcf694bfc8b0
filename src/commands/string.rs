//! Strings: GET SET and friends, counters, ranges, LCS.

use basalt_storage::Value;

use super::args::{eq, int};
use super::flags::*;
use super::{cmd, CmdError, CmdResult, CommandSpec, Ctx};
use crate::num::{self, IncrFloatError};

const fn key1(mut c: CommandSpec) -> CommandSpec {
    c.first_key = 1;
    c.last_key = 1;
    c.step = 1;
    c.group = "string";
    c
}

const fn keys_all(mut c: CommandSpec, step: i32) -> CommandSpec {
    c.first_key = 1;
    c.last_key = -1;
    c.step = step;
    c.group = "string";
    c
}

pub static COMMANDS: &[CommandSpec] = &[
    key1(cmd("get", 2, READONLY | FAST, get)),
    key1(cmd("set", -3, WRITE | DENYOOM, set)),
    key1(cmd("setnx", 3, WRITE | DENYOOM | FAST, setnx)),
    key1(cmd("setex", 4, WRITE | DENYOOM, setex)),
    key1(cmd("psetex", 4, WRITE | DENYOOM, psetex)),
    key1(cmd("getset", 3, WRITE | DENYOOM | FAST, getset)),
    key1(cmd("getdel", 2, WRITE | FAST, getdel)),
    key1(cmd("getex", -2, WRITE | FAST, getex)),
    keys_all(cmd("mget", -2, READONLY | FAST, mget), 1),
    keys_all(cmd("mset", -3, WRITE | DENYOOM, mset), 2),
    keys_all(cmd("msetnx", -3, WRITE | DENYOOM, msetnx), 2),
    key1(cmd("append", 3, WRITE | DENYOOM | FAST, append)),
    key1(cmd("strlen", 2, READONLY | FAST, strlen)),
    key1(cmd("getrange", 4, READONLY, getrange)),
    key1(cmd("substr", 4, READONLY, getrange)),
    key1(cmd("setrange", 4, WRITE | DENYOOM, setrange)),
    key1(cmd("incr", 2, WRITE | DENYOOM | FAST, incr)),
    key1(cmd("decr", 2, WRITE | DENYOOM | FAST, decr)),
    key1(cmd("incrby", 3, WRITE | DENYOOM | FAST, incrby)),
    key1(cmd("decrby", 3, WRITE | DENYOOM | FAST, decrby)),
    key1(cmd("incrbyfloat", 3, WRITE | DENYOOM | FAST, incrbyfloat)),
    CommandSpec {
        first_key: 1,
        last_key: 2,
        step: 1,
        group: "string",
        ..cmd("lcs", -3, READONLY, lcs)
    },
];

/// Borrowed bytes of a string value (ints are formatted into `buf`).
pub fn str_bytes<'v>(v: &'v Value, buf: &'v mut itoa::Buffer) -> Option<&'v [u8]> {
    match v {
        Value::Int(i) => Some(buf.format(*i).as_bytes()),
        Value::Str(b) | Value::Raw(b) => Some(b),
        _ => None,
    }
}

fn reply_value(ctx: &mut Ctx<'_>, v: &Value) -> CmdResult {
    match v {
        Value::Int(i) => ctx.out.bulk_int(*i),
        Value::Str(b) | Value::Raw(b) => ctx.out.bulk(b),
        _ => return Err(CmdError::WrongType),
    }
    Ok(())
}

fn get(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.read_key(a[1]);
    match k.get() {
        None => ctx.out.null(),
        Some(e) => reply_value(ctx, &e.value)?,
    }
    Ok(())
}

#[derive(Default, Clone, Copy)]
struct SetOpts {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    /// (unit is seconds, is absolute, argument index)
    expire: Option<(bool, bool, usize)>,
}

#[derive(PartialEq)]
enum Kind {
    Set,
    GetEx,
}

fn parse_set_opts(a: &[&[u8]], from: usize, kind: Kind) -> Result<SetOpts, CmdError> {
    let mut o = SetOpts::default();
    let mut j = from;
    while j < a.len() {
        let opt = a[j];
        let has_next = j + 1 < a.len();
        let no_exp = o.expire.is_none();
        let exp_kind = |o: &SetOpts| o.expire.map(|(s, abs, _)| (s, abs));
        if eq(opt, "nx") && !o.xx && kind == Kind::Set {
            o.nx = true;
        } else if eq(opt, "xx") && !o.nx && kind == Kind::Set {
            o.xx = true;
        } else if eq(opt, "get") && kind == Kind::Set {
            o.get = true;
        } else if eq(opt, "keepttl") && !o.persist && no_exp && kind == Kind::Set {
            o.keepttl = true;
        } else if eq(opt, "persist") && kind == Kind::GetEx && no_exp && !o.keepttl {
            o.persist = true;
        } else if let Some((secs, abs)) = [
            ("ex", true, false),
            ("px", false, false),
            ("exat", true, true),
            ("pxat", false, true),
        ]
        .iter()
        .find(|(n, _, _)| eq(opt, n))
        .map(|(_, s, abs)| (*s, *abs))
        {
            // The same option may repeat (last wins); a different one may not.
            let compatible =
                !o.keepttl && !o.persist && exp_kind(&o).is_none_or(|k| k == (secs, abs));
            if compatible && has_next {
                o.expire = Some((secs, abs, j + 1));
                j += 1;
            } else {
                return Err(CmdError::Syntax);
            }
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

/// Absolute expiry in ms from an EX/PX/EXAT/PXAT argument, with Redis's
/// checks and error text.
fn expire_ms(
    ctx: &Ctx<'_>,
    arg: &[u8],
    secs: bool,
    abs: bool,
    cmdname: &'static str,
) -> Result<u64, CmdError> {
    let v = int(arg)?;
    if v <= 0 || (secs && v > i64::MAX / 1000) {
        return Err(CmdError::InvalidExpire(cmdname));
    }
    let mut ms = if secs { v * 1000 } else { v };
    if !abs {
        ms = ms
            .checked_add(ctx.now_ms as i64)
            .ok_or(CmdError::InvalidExpire(cmdname))?;
    }
    Ok(ms as u64)
}

fn set(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let o = parse_set_opts(a, 3, Kind::Set)?;
    let when = match o.expire {
        Some((s, abs, i)) => Some(expire_ms(ctx, a[i], s, abs, "set")?),
        None => None,
    };
    set_generic(ctx, a[1], a[2], o, when, false)
}

/// The shared body of SET, SETEX, PSETEX, GETSET, SETNX.
fn set_generic(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    val: &[u8],
    o: SetOpts,
    when: Option<u64>,
    setnx_reply: bool,
) -> CmdResult {
    let touch = ctx.touch_clock();
    let mut k = ctx.write_key(key);
    // The write lookup touches an existing key, even when NX/XX refuses.
    if let (Some(e), Some(c)) = (k.get_mut(), touch) {
        c.apply(&mut e.lru);
    }
    let old = k.get();
    if o.get {
        ctx.count_lookup(old.is_some());
        match old {
            None => ctx.out.null(),
            Some(e) if !e.value.is_string() => return Err(CmdError::WrongType),
            Some(e) => reply_value(ctx, &e.value)?,
        }
    }
    let found = old.is_some();
    if (o.nx && found) || (o.xx && !found) {
        if setnx_reply {
            ctx.out.int(0);
        } else if !o.get {
            ctx.out.null();
        }
        return Ok(());
    }
    let keep = if o.keepttl {
        old.map_or(0, |e| e.expire_at)
    } else {
        0
    };
    k.insert(ctx.new_entry(Value::from_bytes(val), when.unwrap_or(keep)));
    match when {
        Some(ms) => ctx.propagate(&[
            b"SET",
            key,
            val,
            b"PXAT",
            itoa::Buffer::new().format(ms).as_bytes(),
        ]),
        None if o.keepttl => ctx.propagate(&[b"SET", key, val, b"KEEPTTL"]),
        None => ctx.propagate(&[b"SET", key, val]),
    }
    ctx.notify(crate::notify::STRING, b"set", key);
    if when.is_some() {
        ctx.notify(crate::notify::GENERIC, b"expire", key);
    }
    drop(k);
    if setnx_reply {
        ctx.out.int(1);
    } else if !o.get {
        ctx.out.ok();
    }
    Ok(())
}

fn setnx(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    set_generic(
        ctx,
        a[1],
        a[2],
        SetOpts {
            nx: true,
            ..Default::default()
        },
        None,
        true,
    )
}

fn setex(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let when = expire_ms(ctx, a[2], true, false, "setex")?;
    set_generic(ctx, a[1], a[3], SetOpts::default(), Some(when), false)
}

fn psetex(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let when = expire_ms(ctx, a[2], false, false, "psetex")?;
    set_generic(ctx, a[1], a[3], SetOpts::default(), Some(when), false)
}

fn getset(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    set_generic(
        ctx,
        a[1],
        a[2],
        SetOpts {
            get: true,
            ..Default::default()
        },
        None,
        false,
    )
}

fn getdel(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let mut k = ctx.read_key(a[1]);
    match k.get() {
        None => ctx.out.null(),
        Some(e) => {
            reply_value(ctx, &e.value)?;
            k.remove();
            ctx.propagate(&[b"DEL", a[1]]);
            ctx.notify(crate::notify::GENERIC, b"del", a[1]);
        }
    }
    Ok(())
}

fn getex(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let o = parse_set_opts(a, 2, Kind::GetEx)?;
    // As Redis: a missing key answers nil, and a key of another type
    // WRONGTYPE, before the expire is validated.
    let is_string = ctx.read_key(a[1]).get().map(|e| e.value.is_string());
    match is_string {
        None => {
            ctx.out.null();
            return Ok(());
        }
        Some(false) => return Err(CmdError::WrongType),
        Some(true) => {}
    }
    let when = match o.expire {
        Some((s, abs, i)) => Some((expire_ms(ctx, a[i], s, abs, "getex")?, abs)),
        None => None,
    };
    let mut k = ctx.write_key(a[1]);
    let Some(e) = k.get_mut() else {
        ctx.out.null();
        return Ok(());
    };
    reply_value(ctx, &e.value)?;
    match when {
        Some((ms, abs)) if abs && ms <= ctx.now_ms && !ctx.loading => {
            k.remove();
            ctx.propagate(&[b"DEL", a[1]]);
            ctx.notify(crate::notify::GENERIC, b"del", a[1]);
        }
        Some((ms, _)) => {
            k.set_expire(ms);
            ctx.propagate(&[
                b"PEXPIREAT",
                a[1],
                itoa::Buffer::new().format(ms).as_bytes(),
            ]);
            ctx.notify(crate::notify::GENERIC, b"expire", a[1]);
        }
        None if o.persist && e.expire_at != 0 => {
            k.set_expire(0);
            ctx.propagate(&[b"PERSIST", a[1]]);
            ctx.notify(crate::notify::GENERIC, b"persist", a[1]);
        }
        None => {}
    }
    Ok(())
}

fn mget(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    ctx.out.array(a.len() - 1);
    // One key at a time: MGET need not be atomic across keys in Redis's
    // sense beyond each read being consistent, but lock all for a
    // snapshot-consistent answer when keys share few shards.
    let keys = &a[1..];
    let touch = ctx.touch_clock();
    let mut m = ctx.lock_keys(keys);
    let mut buf = itoa::Buffer::new();
    for (i, key) in keys.iter().enumerate() {
        if let (Some(e), Some(c)) = (m.get_mut(i, key), touch) {
            c.apply(&mut e.lru);
        }
        match m.get(i, key) {
            // A key of another type is a hit too (Redis looks it up, then
            // answers nil).
            Some(e) => {
                ctx.count_lookup(true);
                match str_bytes(&e.value, &mut buf) {
                    Some(b) => ctx.out.bulk(b),
                    None => ctx.out.null(),
                }
            }
            None => {
                ctx.srv
                    .stats
                    .keyspace_misses
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                ctx.out.null()
            }
        }
    }
    Ok(())
}

fn mset_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], nx: bool) -> CmdResult {
    if a.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity(
            if nx { "msetnx" } else { "mset" }.into(),
        ));
    }
    let keys: Vec<&[u8]> = a[1..].iter().step_by(2).copied().collect();
    let touch = ctx.touch_clock();
    let mut m = ctx.lock_keys(&keys);
    if let Some(i) = keys
        .iter()
        .enumerate()
        .position(|(i, k)| nx && m.get(i, k).is_some())
    {
        // Redis's write lookup stops at (and touches) the first that exists.
        if let (Some(e), Some(c)) = (m.get_mut(i, keys[i]), touch) {
            c.apply(&mut e.lru);
        }
        drop(m);
        ctx.out.int(0);
        return Ok(());
    }
    for (i, key) in keys.iter().enumerate() {
        m.insert(i, key, ctx.new_entry(Value::from_bytes(a[2 + 2 * i]), 0));
        ctx.notify(crate::notify::STRING, b"set", key);
    }
    // One record for the whole command, so it replays atomically.
    let mut rec: Vec<&[u8]> = Vec::with_capacity(a.len());
    rec.push(b"MSET");
    rec.extend_from_slice(&a[1..]);
    ctx.propagate(&rec);
    drop(m);
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
    Ok(())
}

fn mset(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    mset_generic(ctx, a, false)
}

fn msetnx(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    mset_generic(ctx, a, true)
}

fn max_len(ctx: &Ctx<'_>) -> u64 {
    ctx.srv.config.read().proto_max_bulk_len
}

const TOO_BIG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

/// Takes the value as an owned, growable byte vector (for APPEND/SETRANGE).
fn take_bytes(v: &mut Value) -> Vec<u8> {
    match std::mem::replace(v, Value::Int(0)) {
        Value::Int(i) => itoa::Buffer::new().format(i).as_bytes().to_vec(),
        Value::Str(b) | Value::Raw(b) => b.into_vec(),
        // Callers check `is_string` first; a collection reads as empty.
        _ => Vec::new(),
    }
}

fn append(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let limit = max_len(ctx);
    let touch = ctx.touch_clock();
    let mut k = ctx.write_key(a[1]);
    let newlen = match k.get_mut() {
        None => {
            // A new key is stored as SET would (int encoding if canonical).
            k.insert(ctx.new_entry(Value::from_bytes(a[2]), 0));
            a[2].len()
        }
        Some(e) => {
            // Redis's write lookups touch the key.
            if let Some(c) = touch {
                c.apply(&mut e.lru);
            }
            if !e.value.is_string() {
                return Err(CmdError::WrongType);
            }
            let cur = e.value.heap_size().max(str_len(&e.value));
            if (cur + a[2].len()) as u64 > limit {
                return Err(CmdError::msg(TOO_BIG));
            }
            let mut b = take_bytes(&mut e.value);
            b.extend_from_slice(a[2]);
            let n = b.len();
            e.value = Value::Raw(b.into());
            n
        }
    };
    ctx.propagate(&[b"APPEND", a[1], a[2]]);
    ctx.notify(crate::notify::STRING, b"append", a[1]);
    drop(k);
    ctx.out.int(newlen as i64);
    Ok(())
}

fn str_len(v: &Value) -> usize {
    match v {
        Value::Int(i) => itoa::Buffer::new().format(*i).len(),
        Value::Str(b) | Value::Raw(b) => b.len(),
        _ => 0,
    }
}

fn strlen(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.read_key(a[1]);
    let n = match k.get() {
        None => 0,
        Some(e) if !e.value.is_string() => return Err(CmdError::WrongType),
        Some(e) => str_len(&e.value),
    };
    drop(k);
    ctx.out.int(n as i64);
    Ok(())
}

fn getrange(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let mut start = int(a[2])?;
    let mut end = int(a[3])?;
    let k = ctx.read_key(a[1]);
    let Some(e) = k.get() else {
        ctx.out.bulk(b"");
        return Ok(());
    };
    let mut buf = itoa::Buffer::new();
    let s = str_bytes(&e.value, &mut buf).ok_or(CmdError::WrongType)?;
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        ctx.out.bulk(b"");
        return Ok(());
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        ctx.out.bulk(b"");
    } else {
        ctx.out.bulk(&s[start as usize..=end as usize]);
    }
    Ok(())
}

fn setrange(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let offset = int(a[2])?;
    if offset < 0 {
        return Err(CmdError::msg("ERR offset is out of range"));
    }
    let val = a[3];
    let limit = max_len(ctx);
    let touch = ctx.touch_clock();
    let mut k = ctx.write_key(a[1]);
    let too_big = |off: i64| (off as u64).saturating_add(val.len() as u64) > limit;
    let newlen = match k.get_mut() {
        None => {
            if val.is_empty() {
                ctx.out.int(0);
                return Ok(());
            }
            if too_big(offset) {
                return Err(CmdError::msg(TOO_BIG));
            }
            let mut b = vec![0u8; offset as usize];
            b.extend_from_slice(val);
            let n = b.len();
            k.insert(ctx.new_entry(Value::Raw(b.into()), 0));
            n
        }
        Some(e) => {
            if let Some(c) = touch {
                c.apply(&mut e.lru);
            }
            if !e.value.is_string() {
                return Err(CmdError::WrongType);
            }
            let olen = str_len(&e.value);
            if val.is_empty() {
                ctx.out.int(olen as i64);
                return Ok(());
            }
            if too_big(offset) {
                return Err(CmdError::msg(TOO_BIG));
            }
            let mut b = take_bytes(&mut e.value);
            let end = offset as usize + val.len();
            if b.len() < end {
                b.resize(end, 0);
            }
            b[offset as usize..end].copy_from_slice(val);
            let n = b.len();
            e.value = Value::Raw(b.into());
            n
        }
    };
    ctx.propagate(&[b"SETRANGE", a[1], a[2], a[3]]);
    ctx.notify(crate::notify::STRING, b"setrange", a[1]);
    drop(k);
    ctx.out.int(newlen as i64);
    Ok(())
}

fn incr_generic(ctx: &mut Ctx<'_>, key: &[u8], by: i64) -> CmdResult {
    let touch = ctx.touch_clock();
    let mut k = ctx.write_key(key);
    let new = match k.get_mut() {
        None => {
            k.insert(ctx.new_entry(Value::Int(by), 0));
            by
        }
        Some(e) => {
            let cur = match &e.value {
                Value::Int(i) => *i,
                Value::Str(b) | Value::Raw(b) => num::parse_i64(b).ok_or(CmdError::NotInteger)?,
                _ => return Err(CmdError::WrongType),
            };
            let new = cur.checked_add(by).ok_or(CmdError::Overflow)?;
            e.value = Value::Int(new);
            if let Some(c) = touch {
                c.apply(&mut e.lru);
            }
            new
        }
    };
    // Logged as the resulting value: replay is exact and idempotent.
    ctx.propagate(&[
        b"SET",
        key,
        itoa::Buffer::new().format(new).as_bytes(),
        b"KEEPTTL",
    ]);
    ctx.notify(crate::notify::STRING, b"incrby", key);
    drop(k);
    ctx.out.int(new);
    Ok(())
}

fn incr(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    incr_generic(ctx, a[1], 1)
}

fn decr(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    incr_generic(ctx, a[1], -1)
}

fn incrby(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let by = int(a[2])?;
    incr_generic(ctx, a[1], by)
}

fn decrby(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let by = int(a[2])?;
    if by == i64::MIN {
        return Err(CmdError::msg("ERR decrement would overflow"));
    }
    incr_generic(ctx, a[1], -by)
}

fn incrbyfloat(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let mut k = ctx.write_key(a[1]);
    let mut buf = itoa::Buffer::new();
    let cur = match k.get() {
        None => None,
        Some(e) => Some(
            str_bytes(&e.value, &mut buf)
                .ok_or(CmdError::WrongType)?
                .to_vec(),
        ),
    };
    let new = num::incr_by_float(cur.as_deref(), a[2]).map_err(|e| match e {
        IncrFloatError::ValueNotFloat | IncrFloatError::IncrNotFloat => CmdError::NotFloat,
        IncrFloatError::NanOrInf => CmdError::msg("ERR increment would produce NaN or Infinity"),
    })?;
    let keep = k.get().map_or(0, |e| e.expire_at);
    // Redis keeps the result as a string (embstr), never the int encoding.
    k.insert(ctx.new_entry(Value::Str(new.as_slice().into()), keep));
    ctx.propagate(&[b"SET", a[1], &new, b"KEEPTTL"]);
    ctx.notify(crate::notify::STRING, b"incrbyfloat", a[1]);
    drop(k);
    ctx.out.bulk(&new);
    Ok(())
}

fn lcs(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let keys = [a[1], a[2]];
    let touch = ctx.touch_clock();
    let mut m = ctx.lock_keys(&keys);
    for (i, key) in keys.iter().enumerate() {
        if let (Some(e), Some(c)) = (m.get_mut(i, key), touch) {
            c.apply(&mut e.lru);
        }
    }
    let mut fetch = |i: usize| -> Result<Option<Vec<u8>>, CmdError> {
        match m.get(i, keys[i]) {
            None => Ok(None),
            Some(e) => {
                let mut b = itoa::Buffer::new();
                str_bytes(&e.value, &mut b)
                    .map(|s| Some(s.to_vec()))
                    .ok_or_else(|| {
                        CmdError::msg("ERR The specified keys must contain string values")
                    })
            }
        }
    };
    let sa = fetch(0);
    let sb = fetch(1);
    drop(m);
    for s in [&sa, &sb] {
        // A key of another type is still a hit.
        ctx.count_lookup(s.as_ref().map_or(true, |s| s.is_some()));
    }
    let (sa, sb) = (sa?.unwrap_or_default(), sb?.unwrap_or_default());
    // Redis checks the keys' types before it parses the options.
    let (mut getlen, mut getidx, mut withmatchlen, mut minmatchlen) = (false, false, false, 0i64);
    let mut j = 3;
    while j < a.len() {
        if eq(a[j], "idx") {
            getidx = true;
        } else if eq(a[j], "len") {
            getlen = true;
        } else if eq(a[j], "withmatchlen") {
            withmatchlen = true;
        } else if eq(a[j], "minmatchlen") && j + 1 < a.len() {
            minmatchlen = int(a[j + 1])?.max(0);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if getidx && getlen {
        return Err(CmdError::msg(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    let cells = (sa.len() as u64 + 1)
        .saturating_mul(sb.len() as u64 + 1)
        .saturating_mul(4);
    if cells > max_len(ctx) {
        return Err(CmdError::msg(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    let (al, bl) = (sa.len(), sb.len());
    let w = bl + 1;
    let mut dp = vec![0u32; (al + 1) * (bl + 1)];
    for i in 1..=al {
        for j in 1..=bl {
            dp[i * w + j] = if sa[i - 1] == sb[j - 1] {
                dp[(i - 1) * w + j - 1] + 1
            } else {
                dp[(i - 1) * w + j].max(dp[i * w + j - 1])
            };
        }
    }
    let total = dp[al * w + bl] as usize;
    // Walk back from the end, as Redis does, collecting the LCS string and
    // the ranges of matching runs (reported from the end backwards).
    let mut result = vec![0u8; total];
    let mut idx = total;
    let (mut i, mut j) = (al, bl);
    let mut matches: Vec<[usize; 5]> = Vec::new(); // a_start a_end b_start b_end len
    let mut cur: Option<[usize; 4]> = None;
    let emit = |cur: &mut Option<[usize; 4]>, matches: &mut Vec<[usize; 5]>| {
        if let Some([as_, ae, bs, be]) = cur.take() {
            let len = ae - as_ + 1;
            if len as i64 >= minmatchlen {
                matches.push([as_, ae, bs, be, len]);
            }
        }
    };
    while i > 0 && j > 0 {
        if sa[i - 1] == sb[j - 1] {
            idx -= 1;
            result[idx] = sa[i - 1];
            match &mut cur {
                Some(r) if r[0] == i && r[2] == j => {
                    r[0] = i - 1;
                    r[2] = j - 1;
                }
                _ => {
                    emit(&mut cur, &mut matches);
                    cur = Some([i - 1, i - 1, j - 1, j - 1]);
                }
            }
            i -= 1;
            j -= 1;
        } else {
            emit(&mut cur, &mut matches);
            if dp[(i - 1) * w + j] > dp[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
        }
    }
    emit(&mut cur, &mut matches);
    if getidx {
        ctx.out.map(2);
        ctx.out.bulk(b"matches");
        ctx.out.array(matches.len());
        for m in &matches {
            ctx.out.array(if withmatchlen { 3 } else { 2 });
            ctx.out.array(2);
            ctx.out.int(m[0] as i64);
            ctx.out.int(m[1] as i64);
            ctx.out.array(2);
            ctx.out.int(m[2] as i64);
            ctx.out.int(m[3] as i64);
            if withmatchlen {
                ctx.out.int(m[4] as i64);
            }
        }
        ctx.out.bulk(b"len");
        ctx.out.int(total as i64);
    } else if getlen {
        ctx.out.int(total as i64);
    } else {
        ctx.out.bulk(&result);
    }
    Ok(())
}
