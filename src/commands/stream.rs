//! Streams: XADD, XRANGE, XREAD, consumer groups (XGROUP, XREADGROUP,
//! XACK, XPENDING, XCLAIM, XAUTOCLAIM), XINFO, XSETID.
//!
//! Semantics, replies and error texts follow Redis 7.0's `t_stream.c`.
//! Effects are logged deterministically: XADD with its concrete ID and any
//! trimming as an exact XTRIM; a group read as one XCLAIM ... FORCE JUSTID
//! per delivered entry plus XGROUP SETID ... ENTRIESREAD (what Redis
//! propagates), all in one record.

use basalt_storage::stream::{Consumer, Group, Nack, NodeLimits, Trim};
use basalt_storage::{Entry, Stream, StreamId, Value};

use super::args::{eq, int};
use super::error::c_str_trunc;
use super::flags::*;
use super::{cmd, container, CmdError, CmdResult, CommandSpec, Ctx};
use crate::blocking;
use crate::resp::Reply;

const fn k1(mut c: CommandSpec) -> CommandSpec {
    c.first_key = 1;
    c.last_key = 1;
    c.step = 1;
    c.group = "stream";
    c.since = "5.0.0";
    c
}

const fn k2(mut c: CommandSpec) -> CommandSpec {
    c.first_key = 2;
    c.last_key = 2;
    c.step = 1;
    c.group = "stream";
    c.since = "5.0.0";
    c
}

const fn g(mut c: CommandSpec) -> CommandSpec {
    c.group = "stream";
    c.since = "5.0.0";
    c
}

pub static COMMANDS: &[CommandSpec] = &[
    k1(cmd("xadd", -5, WRITE | DENYOOM | FAST, xadd)),
    k1(cmd("xlen", 2, READONLY | FAST, xlen)),
    k1(cmd("xrange", -4, READONLY, xrange)),
    k1(cmd("xrevrange", -4, READONLY, xrevrange)),
    k1(cmd("xdel", -3, WRITE | FAST, xdel)),
    k1(cmd("xtrim", -4, WRITE, xtrim)),
    k1(cmd("xsetid", -3, WRITE | DENYOOM | FAST, xsetid)),
    g(cmd("xread", -4, READONLY | BLOCKING, xread)),
    g(cmd("xreadgroup", -7, WRITE | BLOCKING, xreadgroup)),
    k1(cmd("xack", -4, WRITE | FAST, xack)),
    k1(cmd("xpending", -3, READONLY, xpending)),
    k1(cmd("xclaim", -6, WRITE | FAST, xclaim)),
    k1(cmd("xautoclaim", -6, WRITE | FAST, xautoclaim)),
    CommandSpec {
        subcommands: &[
            k2(cmd("create", -5, WRITE | DENYOOM, xgroup_create)),
            k2(cmd("setid", -5, WRITE, xgroup_setid)),
            k2(cmd("destroy", 4, WRITE, xgroup_destroy)),
            k2(cmd(
                "createconsumer",
                5,
                WRITE | DENYOOM,
                xgroup_createconsumer,
            )),
            k2(cmd("delconsumer", 5, WRITE, xgroup_delconsumer)),
            g(cmd("help", 2, LOADING | STALE, xgroup_help)),
        ],
        ..g(cmd("xgroup", -2, 0, container))
    },
    CommandSpec {
        subcommands: &[
            k2(cmd("stream", -3, READONLY, xinfo_stream)),
            k2(cmd("groups", 3, READONLY, xinfo_groups)),
            k2(cmd("consumers", 4, READONLY, xinfo_consumers)),
            g(cmd("help", 2, LOADING | STALE, xinfo_help)),
        ],
        ..g(cmd("xinfo", -2, 0, container))
    },
];

// ---------------------------------------------------------------- helpers

fn stream_ref(e: &Entry) -> Result<&Stream, CmdError> {
    match &e.value {
        Value::Stream(s) => Ok(s),
        _ => Err(CmdError::WrongType),
    }
}

fn stream_mut(e: &mut Entry) -> Result<&mut Stream, CmdError> {
    match &mut e.value {
        Value::Stream(s) => Ok(s),
        _ => Err(CmdError::WrongType),
    }
}

fn invalid_id() -> CmdError {
    CmdError::msg("ERR Invalid stream ID specified as stream command argument")
}

/// Redis's `string2ull`: canonical i64 (non-negative), else strtoull
/// (leading spaces, a sign, digits, nothing after; `-` negates).
fn string2ull(b: &[u8]) -> Option<u64> {
    if let Some(v) = basalt_storage::value::parse_canonical_i64(b) {
        return (v >= 0).then_some(v as u64);
    }
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let mut neg = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        neg = b[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut v: u64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        v = v.checked_mul(10)?.checked_add((b[i] - b'0') as u64)?;
        i += 1;
    }
    if i == start || i != b.len() {
        return None;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Redis's `streamGenericParseIDOrReply`. `seq_given` is Some for XADD
/// (which accepts `ms-*`): it is set false when the sequence is `*`.
fn parse_id_gen(
    b: &[u8],
    missing_seq: u64,
    strict: bool,
    seq_given: Option<&mut bool>,
) -> Result<StreamId, CmdError> {
    if b.len() > 127 {
        return Err(invalid_id());
    }
    // C string semantics: the argument ends at a NUL byte.
    let b = c_str_trunc(b, usize::MAX);
    if strict && (b == b"-" || b == b"+") {
        return Err(invalid_id());
    }
    let allow_star = seq_given.is_some();
    if let Some(s) = seq_given {
        *s = true;
        if b == b"-" {
            return Ok(StreamId::MIN);
        }
        if b == b"+" {
            return Ok(StreamId::MAX);
        }
        if let Some(d) = b.iter().position(|&c| c == b'-') {
            if &b[d + 1..] == b"*" {
                let ms = string2ull(&b[..d]).ok_or_else(invalid_id)?;
                *s = false;
                return Ok(StreamId::new(ms, 0));
            }
        }
    }
    let _ = allow_star;
    if b == b"-" {
        return Ok(StreamId::MIN);
    }
    if b == b"+" {
        return Ok(StreamId::MAX);
    }
    match b.iter().position(|&c| c == b'-') {
        Some(d) => {
            let ms = string2ull(&b[..d]).ok_or_else(invalid_id)?;
            let seq = string2ull(&b[d + 1..]).ok_or_else(invalid_id)?;
            Ok(StreamId::new(ms, seq))
        }
        None => Ok(StreamId::new(
            string2ull(b).ok_or_else(invalid_id)?,
            missing_seq,
        )),
    }
}

fn parse_id(b: &[u8], missing_seq: u64) -> Result<StreamId, CmdError> {
    parse_id_gen(b, missing_seq, false, None)
}

fn parse_strict(b: &[u8], missing_seq: u64) -> Result<StreamId, CmdError> {
    parse_id_gen(b, missing_seq, true, None)
}

/// An interval bound, `(` for exclusive: (id, exclusive).
fn parse_interval(b: &[u8], missing_seq: u64) -> Result<(StreamId, bool), CmdError> {
    if b.len() > 1 && b[0] == b'(' {
        Ok((parse_strict(&b[1..], missing_seq)?, true))
    } else {
        Ok((parse_id(b, missing_seq)?, false))
    }
}

fn parse_start(b: &[u8]) -> Result<StreamId, CmdError> {
    let (id, ex) = parse_interval(b, 0)?;
    if ex {
        return id
            .incr()
            .ok_or_else(|| CmdError::msg("ERR invalid start ID for the interval"));
    }
    Ok(id)
}

fn parse_end(b: &[u8]) -> Result<StreamId, CmdError> {
    let (id, ex) = parse_interval(b, u64::MAX)?;
    if ex {
        return id
            .decr()
            .ok_or_else(|| CmdError::msg("ERR invalid end ID for the interval"));
    }
    Ok(id)
}

fn id_bytes(id: StreamId) -> Vec<u8> {
    id.to_bytes()
}

fn reply_id(out: &mut Reply, id: StreamId) {
    let mut b = [0u8; 41];
    out.bulk(format_id(id, &mut b));
}

/// `ms-seq` into a stack buffer (at most 20 + 1 + 20 bytes).
fn format_id(id: StreamId, b: &mut [u8; 41]) -> &[u8] {
    let mut i = itoa::Buffer::new();
    let ms = i.format(id.ms).as_bytes();
    b[..ms.len()].copy_from_slice(ms);
    let mut n = ms.len();
    b[n] = b'-';
    n += 1;
    let seq = i.format(id.seq).as_bytes();
    b[n..n + seq.len()].copy_from_slice(seq);
    n += seq.len();
    &b[..n]
}

fn reply_entry(out: &mut Reply, id: StreamId, fields: &[&[u8]]) {
    out.array(2);
    reply_id(out, id);
    out.array(fields.len());
    for f in fields {
        out.bulk(f);
    }
}

/// Replies with live entries in [start, end] (at most `count`, 0 = all).
fn reply_range(out: &mut Reply, s: &Stream, start: StreamId, end: StreamId, rev: bool, count: u64) {
    let mut items: Vec<u8> = Vec::new();
    let mut n = 0u64;
    let mut tmp = Reply {
        buf: std::mem::take(&mut items),
        resp3: out.resp3,
    };
    s.range(start, end, rev, |id, f| {
        reply_entry(&mut tmp, id, f);
        n += 1;
        count == 0 || n < count
    });
    out.array(n as usize);
    out.buf.extend_from_slice(&tmp.buf);
}

/// For blocked readers: entries from `start` on (at most `count`).
pub fn reply_range_pub(out: &mut Reply, s: &Stream, start: StreamId, count: u64) {
    reply_range(out, s, start, StreamId::MAX, false, count);
}

/// `NOGROUP No such key 'K' or consumer group 'G'` plus `tail`.
fn nogroup_with(key: &[u8], group: &[u8], tail: &[u8]) -> CmdError {
    let mut m = b"NOGROUP No such key '".to_vec();
    m.extend_from_slice(c_str_trunc(key, usize::MAX));
    m.extend_from_slice(b"' or consumer group '");
    m.extend_from_slice(c_str_trunc(group, usize::MAX));
    m.extend_from_slice(tail);
    CmdError::Bytes(m)
}

fn nogroup_read(key: &[u8], group: &[u8]) -> CmdError {
    nogroup_with(key, group, b"' in XREADGROUP with GROUP option")
}

fn nogroup(key: &[u8], group: &[u8]) -> CmdError {
    nogroup_with(key, group, b"'")
}

fn nogroup_xgroup(key: &[u8], group: &[u8]) -> CmdError {
    let mut m = b"NOGROUP No such consumer group '".to_vec();
    m.extend_from_slice(c_str_trunc(group, usize::MAX));
    m.extend_from_slice(b"' for key name '");
    m.extend_from_slice(c_str_trunc(key, usize::MAX));
    m.push(b'\'');
    CmdError::Bytes(m)
}

fn node_limits(ctx: &Ctx<'_>) -> NodeLimits {
    let l = super::coll::limits(ctx);
    NodeLimits {
        max_bytes: l.stream_node_bytes,
        max_entries: l.stream_node_entries,
    }
}

fn now_i64(ctx: &Ctx<'_>) -> i64 {
    ctx.now_ms as i64
}

// ---------------------------------------------------------------- XADD / XTRIM

struct AddTrim {
    trim: Option<Trim>,
    approx: bool,
    limit: u64,
    nomkstream: bool,
    /// XADD: the ID argument position, the ID and whether its seq was given.
    id_pos: usize,
    id: Option<StreamId>,
    seq_given: bool,
}

/// Redis's `streamParseAddOrTrimArgsOrReply`.
fn parse_add_trim(ctx: &Ctx<'_>, a: &[&[u8]], xadd: bool) -> Result<AddTrim, CmdError> {
    let mut r = AddTrim {
        trim: None,
        approx: false,
        limit: 0,
        nomkstream: false,
        id_pos: a.len(),
        id: None,
        seq_given: true,
    };
    let mut limit: Option<i64> = None;
    let mut i = 2;
    let both = "ERR syntax error, MAXLEN and MINID options at the same time are not compatible";
    while i < a.len() {
        let more = a.len() - 1 - i;
        let opt = a[i];
        if xadd && opt == b"*" {
            break;
        } else if eq(opt, "maxlen") && more > 0 {
            if r.trim.is_some() {
                return Err(CmdError::msg(both));
            }
            r.approx = false;
            let next = a[i + 1];
            if more >= 2 && next == b"~" {
                r.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let m = int(a[i + 1])?;
            if m < 0 {
                return Err(CmdError::msg("ERR The MAXLEN argument must be >= 0."));
            }
            i += 1;
            r.trim = Some(Trim::MaxLen(m as u64));
        } else if eq(opt, "minid") && more > 0 {
            if r.trim.is_some() {
                return Err(CmdError::msg(both));
            }
            r.approx = false;
            let next = a[i + 1];
            if more >= 2 && next == b"~" {
                r.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let id = parse_strict(a[i + 1], 0)?;
            i += 1;
            r.trim = Some(Trim::MinId(id));
        } else if eq(opt, "limit") && more > 0 {
            let l = int(a[i + 1])?;
            if l < 0 {
                return Err(CmdError::msg("ERR The LIMIT argument must be >= 0."));
            }
            limit = Some(l);
            i += 1;
        } else if xadd && eq(opt, "nomkstream") {
            r.nomkstream = true;
        } else if xadd {
            let mut seq_given = true;
            r.id = Some(parse_id_gen(opt, 0, true, Some(&mut seq_given))?);
            r.seq_given = seq_given;
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    r.id_pos = i;
    if limit.is_some_and(|l| l != 0) && r.trim.is_none() {
        return Err(CmdError::msg(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && r.trim.is_none() {
        return Err(CmdError::msg(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if ctx.loading {
        r.limit = 0;
    } else if let Some(l) = limit {
        if !r.approx {
            return Err(CmdError::msg(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
        r.limit = l as u64;
    } else if r.approx {
        let l = 100 * node_limits(ctx).max_entries as u64;
        r.limit = if l == 0 || l > 10000 { 10000 } else { l };
    }
    Ok(r)
}

/// The exact trim that reproduces what was just trimmed (for the log).
fn exact_trim_cmd(key: &[u8], s: &Stream, how: Trim) -> Vec<Vec<u8>> {
    match how {
        Trim::MaxLen(_) => vec![
            b"XTRIM".to_vec(),
            key.to_vec(),
            b"MAXLEN".to_vec(),
            b"=".to_vec(),
            s.len().to_string().into_bytes(),
        ],
        Trim::MinId(_) => vec![
            b"XTRIM".to_vec(),
            key.to_vec(),
            b"MINID".to_vec(),
            b"=".to_vec(),
            id_bytes(if s.is_empty() {
                s.last_id.incr().unwrap_or(StreamId::MAX)
            } else {
                s.first_id
            }),
        ],
    }
}

fn xadd(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let p = parse_add_trim(ctx, a, true)?;
    let field_pos = p.id_pos + 1;
    if field_pos > a.len() || a.len() - field_pos < 2 || (a.len() - field_pos) % 2 == 1 {
        return Err(CmdError::WrongArity("xadd".into()));
    }
    if let Some(id) = p.id {
        if p.seq_given && id.is_zero() {
            return Err(CmdError::msg(
                "ERR The ID specified in XADD must be greater than 0-0",
            ));
        }
    }
    let key = a[1];
    let nl = node_limits(ctx);
    let mut k = ctx.write_key(key);
    let last = match k.get() {
        Some(e) => stream_ref(e)?.last_id,
        None if p.nomkstream => {
            drop(k);
            ctx.out.null();
            return Ok(());
        }
        None => StreamId::MIN,
    };
    if last == StreamId::MAX {
        return Err(CmdError::msg(
            "ERR The stream has exhausted the last possible ID, unable to add more items",
        ));
    }
    let smaller = || {
        CmdError::msg(
            "ERR The ID specified in XADD is equal or smaller than the target stream top item",
        )
    };
    let id = match p.id {
        None => {
            let now = ctx.now_ms;
            if now > last.ms {
                StreamId::new(now, 0)
            } else {
                last.incr().ok_or_else(smaller)?
            }
        }
        Some(id) if !p.seq_given => {
            if last.ms == id.ms {
                if last.seq == u64::MAX {
                    // Redis 7.0 reports this case with the size error.
                    return Err(CmdError::msg("ERR Elements are too large to be stored"));
                }
                StreamId::new(id.ms, last.seq + 1)
            } else {
                id
            }
        }
        Some(id) => id,
    };
    if id <= last {
        return Err(smaller());
    }
    if last == StreamId::MIN && k.get().is_none() {
        k.insert(ctx.new_entry(Value::Stream(Box::default()), 0));
    }
    let s = stream_mut(k.get_mut().expect("present"))?;
    s.append(id, &a[field_pos..], nl);
    let idb = id_bytes(id);
    let mut l1: Vec<&[u8]> = Vec::with_capacity(a.len() - field_pos + 3);
    l1.push(b"XADD");
    l1.push(key);
    l1.push(&idb);
    l1.extend_from_slice(&a[field_pos..]);
    let mut trim_log = None;
    let mut trimmed = 0;
    if let Some(how) = p.trim {
        trimmed = s.trim(how, p.approx, p.limit);
        if trimmed > 0 {
            trim_log = Some(exact_trim_cmd(key, s, how));
        }
    }
    match &trim_log {
        Some(t) => {
            let l2: Vec<&[u8]> = t.iter().map(|v| v.as_slice()).collect();
            ctx.propagate_many(&[&l1, &l2]);
        }
        None => ctx.propagate(&l1),
    }
    ctx.notify(crate::notify::STREAM, b"xadd", key);
    if trimmed > 0 {
        ctx.notify(crate::notify::STREAM, b"xtrim", key);
    }
    blocking::serve_stream(ctx, key, &mut k);
    drop(k);
    ctx.out.bulk(&idb);
    Ok(())
}

fn xtrim(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let key = a[1];
    let p = parse_add_trim(ctx, a, false)?;
    let mut k = ctx.write_key(key);
    let Some(e) = k.get() else {
        drop(k);
        ctx.out.int(0);
        return Ok(());
    };
    stream_ref(e)?;
    let how = p.trim.expect("checked");
    let s = stream_mut(k.get_mut().expect("present"))?;
    let n = s.trim(how, p.approx, p.limit);
    if n > 0 {
        let t = exact_trim_cmd(key, s, how);
        let l: Vec<&[u8]> = t.iter().map(|v| v.as_slice()).collect();
        ctx.propagate(&l);
        ctx.notify(crate::notify::STREAM, b"xtrim", key);
    }
    drop(k);
    ctx.out.int(n as i64);
    Ok(())
}

fn xlen(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.read_key(a[1]);
    let n = match k.get() {
        Some(e) => stream_ref(e)?.len(),
        None => 0,
    };
    drop(k);
    ctx.out.int(n as i64);
    Ok(())
}

fn range_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], rev: bool) -> CmdResult {
    let (sa, ea) = if rev { (a[3], a[2]) } else { (a[2], a[3]) };
    let start = parse_start(sa)?;
    let end = parse_end(ea)?;
    let mut count: i64 = -1;
    let mut j = 4;
    while j < a.len() {
        if eq(a[j], "count") && j + 1 < a.len() {
            count = int(a[j + 1])?;
            if count < 0 {
                count = 0;
            }
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    // As Redis: a missing key is an empty array and another type an
    // error before COUNT 0 answers a null array.
    let k = ctx.read_key(a[1]);
    let Some(e) = k.get() else {
        drop(k);
        ctx.out.array(0);
        return Ok(());
    };
    let s = stream_ref(e)?;
    if count == 0 {
        drop(k);
        ctx.out.null_array();
        return Ok(());
    }
    let c = if count < 0 { 0 } else { count as u64 };
    if rev {
        reply_range(ctx.out, s, start, end, true, c);
    } else {
        reply_range(ctx.out, s, start, end, false, c);
    }
    drop(k);
    Ok(())
}

fn xrange(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    range_generic(ctx, a, false)
}

fn xrevrange(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    range_generic(ctx, a, true)
}

fn xdel(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let key = a[1];
    let mut k = ctx.write_key(key);
    let Some(e) = k.get() else {
        drop(k);
        ctx.out.int(0);
        return Ok(());
    };
    stream_ref(e)?;
    let mut ids = Vec::with_capacity(a.len() - 2);
    for x in &a[2..] {
        ids.push(parse_strict(x, 0)?);
    }
    let s = stream_mut(k.get_mut().expect("present"))?;
    let mut n = 0;
    for id in ids {
        if s.delete(id) {
            if id > s.max_deleted {
                s.max_deleted = id;
            }
            n += 1;
        }
    }
    if n > 0 {
        ctx.propagate(a);
        ctx.notify(crate::notify::STREAM, b"xdel", key);
    }
    drop(k);
    ctx.out.int(n);
    Ok(())
}

fn xsetid(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let id = parse_strict(a[2], 0)?;
    let mut entries_added: i64 = -1;
    let mut max_xdel = StreamId::MIN;
    let mut i = 3;
    while i < a.len() {
        let more = a.len() - 1 - i;
        if eq(a[i], "entriesadded") && more > 0 {
            entries_added = int(a[i + 1])?;
            if entries_added < 0 {
                return Err(CmdError::msg("ERR entries_added must be positive"));
            }
            i += 2;
        } else if eq(a[i], "maxdeletedid") && more > 0 {
            max_xdel = parse_strict(a[i + 1], 0)?;
            if id < max_xdel {
                return Err(CmdError::msg(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let key = a[1];
    let mut k = ctx.write_key(key);
    let Some(e) = k.get() else {
        return Err(CmdError::NoSuchKey);
    };
    let s = stream_ref(e)?;
    if !s.is_empty() {
        let maxid = s.edge(false).unwrap_or_default();
        if id < maxid {
            return Err(CmdError::msg(
                "ERR The ID specified in XSETID is smaller than the target stream top item",
            ));
        }
        if entries_added != -1 && s.len() > entries_added as u64 {
            return Err(CmdError::msg(
                "ERR The entries_added specified in XSETID is smaller than the target stream length",
            ));
        }
    }
    let s = stream_mut(k.get_mut().expect("present"))?;
    s.last_id = id;
    if entries_added != -1 {
        s.entries_added = entries_added as u64;
    }
    if !max_xdel.is_zero() {
        s.max_deleted = max_xdel;
    }
    ctx.propagate(a);
    ctx.notify(crate::notify::STREAM, b"xsetid", key);
    drop(k);
    ctx.out.ok();
    Ok(())
}

// ---------------------------------------------------------------- XREAD

/// What a group read needs besides the stream.
pub struct GroupRead<'a> {
    pub group: &'a [u8],
    pub consumer: &'a [u8],
    pub noack: bool,
}

/// Delivers entries after `after` to the group (Redis's
/// `streamReplyWithRange` with a group): replies with them, adds them to
/// the PELs (unless NOACK), advances the group, and appends the effect
/// commands to `log`. Returns the number of entries.
pub fn deliver_new(
    out: &mut Reply,
    key: &[u8],
    s: &mut Stream,
    gr: &GroupRead<'_>,
    count: u64,
    now: i64,
    log: &mut Effects,
) -> u64 {
    let start = match s.groups.get(gr.group) {
        Some(g) => match g.last_id.incr() {
            Some(x) => x,
            None => {
                out.array(0);
                return 0;
            }
        },
        None => {
            out.array(0);
            return 0;
        }
    };
    let limit = if count == 0 {
        usize::MAX
    } else {
        count as usize
    };
    // Entries go straight into the reply; the array header, whose length
    // is known only afterwards, is put in front of them.
    let at = out.buf.len();
    let mut ids: Vec<StreamId> = Vec::new();
    s.range(start, StreamId::MAX, false, |id, f| {
        reply_entry(out, id, f);
        ids.push(id);
        ids.len() < limit
    });
    insert_array_header(out, at, ids.len());
    let mut propagate_last = false;
    for &id in &ids {
        let has_tomb = s.range_has_tombstones(id, StreamId::MAX);
        let entries_added = s.entries_added;
        let est = if entries_added > 0 {
            s.estimate_distance(id)
        } else {
            None
        };
        let g = s.groups.get_mut(gr.group).expect("checked");
        if id > g.last_id {
            match g.entries_read {
                Some(r) if !has_tomb => g.entries_read = Some(r.wrapping_add(1)),
                _ => {
                    if entries_added > 0 {
                        g.entries_read = est;
                    }
                }
            }
            g.last_id = id;
            propagate_last = true;
        }
        if !gr.noack {
            g.deliver(id, gr.consumer, now);
            xclaim_effect(log, key, gr.group, gr.consumer, id, now, 1, g.last_id);
        }
    }
    if propagate_last {
        let g = s.groups.get(gr.group).expect("checked");
        setid_effect(log, key, gr.group, g);
    }
    ids.len() as u64
}

/// Puts an array header for `n` items at byte `at` of the reply.
fn insert_array_header(out: &mut Reply, at: usize, n: usize) {
    let mut itoa = itoa::Buffer::new();
    let digits = itoa.format(n).as_bytes();
    let mut hdr = [0u8; 24];
    hdr[0] = b'*';
    hdr[1..1 + digits.len()].copy_from_slice(digits);
    hdr[1 + digits.len()..3 + digits.len()].copy_from_slice(b"\r\n");
    out.buf
        .splice(at..at, hdr[..3 + digits.len()].iter().copied());
}

#[allow(clippy::too_many_arguments)]
fn xclaim_effect(
    log: &mut Effects,
    key: &[u8],
    group: &[u8],
    consumer: &[u8],
    id: StreamId,
    time: i64,
    count: u64,
    last: StreamId,
) {
    log.arg(b"XCLAIM");
    log.arg(key);
    log.arg(group);
    log.arg(consumer);
    log.arg(b"0");
    log.arg_id(id);
    log.arg(b"TIME");
    log.arg(itoa::Buffer::new().format(time).as_bytes());
    log.arg(b"RETRYCOUNT");
    log.arg(itoa::Buffer::new().format(count).as_bytes());
    log.arg(b"FORCE");
    log.arg(b"JUSTID");
    log.arg(b"LASTID");
    log.arg_id(last);
    log.end();
}

fn setid_effect(log: &mut Effects, key: &[u8], group: &[u8], g: &Group) {
    log.arg(b"XGROUP");
    log.arg(b"SETID");
    log.arg(key);
    log.arg(group);
    log.arg_id(g.last_id);
    log.arg(b"ENTRIESREAD");
    log.arg(
        itoa::Buffer::new()
            .format(g.entries_read.map_or(-1, |r| r as i64))
            .as_bytes(),
    );
    log.end();
}

/// The effect commands of one command (a group read logs one XCLAIM per
/// entry), every argument in one buffer, logged as one record by
/// [`propagate_effects`].
#[derive(Default)]
pub struct Effects {
    buf: Vec<u8>,
    /// End of each argument in `buf`.
    ends: Vec<usize>,
    /// Number of arguments of each finished command.
    cmds: Vec<usize>,
    /// Arguments in finished commands.
    done: usize,
}

impl Effects {
    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }

    fn arg(&mut self, a: &[u8]) {
        self.buf.extend_from_slice(a);
        self.ends.push(self.buf.len());
    }

    fn arg_id(&mut self, id: StreamId) {
        let mut b = [0u8; 41];
        self.arg(format_id(id, &mut b));
    }

    /// Ends the command made of the arguments added since the last end.
    fn end(&mut self) {
        self.cmds.push(self.ends.len() - self.done);
        self.done = self.ends.len();
    }

    /// Adds a whole command.
    pub fn cmd(&mut self, args: &[&[u8]]) {
        for a in args {
            self.arg(a);
        }
        self.end();
    }
}

/// Logs the effect commands of one command as one record.
pub fn propagate_effects(ctx: &Ctx<'_>, log: &Effects) {
    // One vector of every argument, cut into one slice per command.
    let mut args: Vec<&[u8]> = Vec::with_capacity(log.done);
    let mut start = 0;
    for &e in &log.ends[..log.done] {
        args.push(&log.buf[start..e]);
        start = e;
    }
    let mut refs: Vec<&[&[u8]]> = Vec::with_capacity(log.cmds.len());
    let mut rest = args.as_slice();
    for &n in &log.cmds {
        let (c, r) = rest.split_at(n);
        refs.push(c);
        rest = r;
    }
    ctx.propagate_many(&refs);
}

/// History read from the consumer's PEL (IDs > `after`).
fn deliver_history(
    out: &mut Reply,
    s: &mut Stream,
    gr: &GroupRead<'_>,
    after: StreamId,
    count: u64,
    now: i64,
) {
    let Some(start) = after.incr() else {
        out.array(0);
        return;
    };
    let ids: Vec<StreamId> = match s
        .groups
        .get(gr.group)
        .and_then(|g| g.consumers.get(gr.consumer))
    {
        Some(c) => c
            .pel
            .range(start..)
            .take(if count == 0 {
                usize::MAX
            } else {
                count as usize
            })
            .copied()
            .collect(),
        None => Vec::new(),
    };
    out.array(ids.len());
    for id in ids {
        match s.get(id) {
            Some(fields) => {
                let refs: Vec<&[u8]> = fields.iter().map(|f| f.as_slice()).collect();
                reply_entry(out, id, &refs);
                if let Some(n) = s.groups.get_mut(gr.group).and_then(|g| g.pel.get_mut(&id)) {
                    n.delivery_time = now;
                    // Wrapping as Redis's C counter does (a loaded file
                    // may hold any value).
                    n.delivery_count = n.delivery_count.wrapping_add(1);
                }
            }
            None => {
                out.array(2);
                reply_id(out, id);
                out.null_array();
            }
        }
    }
}

fn read_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], xreadgroup: bool) -> CmdResult {
    let mut timeout: Option<u64> = None;
    let mut count: i64 = 0;
    let mut streams_arg = 0;
    let mut nstreams = 0;
    let mut noack = false;
    let mut group: Option<(&[u8], &[u8])> = None;
    let mut i = 1;
    while i < a.len() {
        let more = a.len() - i - 1;
        let o = a[i];
        if eq(o, "block") && more > 0 {
            i += 1;
            timeout = Some(parse_block_ms(a[i], ctx.now_ms)?);
        } else if eq(o, "count") && more > 0 {
            i += 1;
            count = int(a[i])?;
            if count < 0 {
                count = 0;
            }
        } else if eq(o, "streams") && more > 0 {
            streams_arg = i + 1;
            let n = a.len() - streams_arg;
            if !n.is_multiple_of(2) {
                return Err(CmdError::msg(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            nstreams = n / 2;
            break;
        } else if eq(o, "group") && more >= 2 {
            if !xreadgroup {
                return Err(CmdError::msg(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            group = Some((a[i + 1], a[i + 2]));
            i += 2;
        } else if eq(o, "noack") {
            if !xreadgroup {
                return Err(CmdError::msg(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            noack = true;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if streams_arg == 0 {
        return Err(CmdError::Syntax);
    }
    if xreadgroup && group.is_none() {
        return Err(CmdError::msg("ERR Missing GROUP option for XREADGROUP"));
    }
    let keys: Vec<&[u8]> = a[streams_arg..streams_arg + nstreams].to_vec();
    let id_args = &a[streams_arg + nstreams..];
    // Lazy expiry key by key: an error stops the lookups, as in Redis.
    let mut ml = ctx.lock_keys_deferred(&keys, 0);
    // Resolve IDs (MAX marks `>`).
    let mut ids = Vec::with_capacity(nstreams);
    for (j, key) in keys.iter().enumerate() {
        ctx.expire_locked(&mut ml, j, key);
        let e = ml.get(j, key);
        ctx.count_lookup(e.is_some());
        let s = match e {
            Some(e) => Some(stream_ref(e)?),
            None => None,
        };
        if let Some((gname, _)) = group {
            if s.and_then(|s| s.groups.get(gname)).is_none() {
                return Err(nogroup_read(key, gname));
            }
        }
        let arg = id_args[j];
        if arg == b"$" {
            if xreadgroup {
                return Err(CmdError::msg("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."));
            }
            ids.push(s.map_or(StreamId::MIN, |s| s.last_id));
            continue;
        }
        if arg == b"+" {
            // Redis 7.4: the stream's last entry (entries after the ID
            // before it, so COUNT changes nothing); with no entries, the
            // next one added (as `$`, or any ID when there is no key).
            if xreadgroup {
                return Err(CmdError::msg("ERR The + ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The + ID would just return an empty result set."));
            }
            let id = match s {
                None => StreamId::MIN,
                Some(s) => match s.edge(false) {
                    None => s.last_id,
                    Some(last) => last
                        .decr()
                        .ok_or_else(|| CmdError::msg("ERR the stream last element ID is 0-0"))?,
                },
            };
            ids.push(id);
            continue;
        }
        if arg == b">" {
            if !xreadgroup {
                return Err(CmdError::msg("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."));
            }
            ids.push(StreamId::MAX);
            continue;
        }
        ids.push(parse_strict(arg, 0)?);
    }
    // Serve synchronously where possible.
    let now = now_i64(ctx);
    let mut body = Reply {
        buf: Vec::new(),
        resp3: ctx.out.resp3,
    };
    let mut served = 0usize;
    let mut log = Effects::default();
    for (j, key) in keys.iter().enumerate() {
        // Redis looks each key up again to serve it: a second hit/miss.
        ctx.count_lookup(ml.get(j, key).is_some());
        if let Some((gname, cname)) = group {
            let Some(e) = ml.get_mut(j, key) else {
                continue;
            };
            let s = stream_mut(e)?;
            let gt = ids[j];
            let history = gt != StreamId::MAX;
            let last_valid = s.edge(false);
            let gl = s.groups.get(gname).map(|g| g.last_id).unwrap_or_default();
            let sync = history || (!s.is_empty() && last_valid.is_some_and(|m| m > gl));
            // As Redis 7.0: the consumer is created (and its seen time
            // set) only when there is something to serve it now.
            if !sync {
                continue;
            }
            let g = s.groups.get_mut(gname).expect("checked");
            if g.touch_consumer(cname, now) {
                log.cmd(&[b"XGROUP", b"CREATECONSUMER", key, gname, cname]);
                ctx.notify(crate::notify::STREAM, b"xgroup-createconsumer", key);
            }
            served += 1;
            if !body.resp3 {
                body.array(2);
            }
            body.bulk(key);
            let gr = GroupRead {
                group: gname,
                consumer: cname,
                noack,
            };
            if history {
                deliver_history(&mut body, s, &gr, gt, count as u64, now);
            } else {
                deliver_new(&mut body, key, s, &gr, count as u64, now, &mut log);
            }
        } else {
            let Some(e) = ml.get(j, key) else { continue };
            let s = stream_ref(e)?;
            let gt = ids[j];
            if s.is_empty() || s.edge(false).is_none_or(|m| m <= gt) {
                continue;
            }
            served += 1;
            if !body.resp3 {
                body.array(2);
            }
            body.bulk(key);
            let start = gt.incr().unwrap_or(StreamId::MAX);
            reply_range(&mut body, s, start, StreamId::MAX, false, count as u64);
        }
    }
    if !log.is_empty() {
        propagate_effects(ctx, &log);
    }
    if served > 0 {
        if ctx.out.resp3 {
            ctx.out.map(served);
        } else {
            ctx.out.array(served);
        }
        ctx.out.buf.extend_from_slice(&body.buf);
        drop(ml);
        return Ok(());
    }
    match timeout {
        Some(deadline) if !ctx.loading => {
            let wait = blocking::StreamWait {
                ids: keys
                    .iter()
                    .zip(&ids)
                    .map(|(k, id)| (k.to_vec(), *id))
                    .collect(),
                count: if count > 0 { count as u64 } else { 1000 },
                group: group.map(|(g, c)| (g.to_vec(), c.to_vec())),
                noack,
            };
            blocking::block_stream(ctx, &keys, wait, deadline, a);
            drop(ml);
        }
        _ => {
            drop(ml);
            ctx.out.null_array();
        }
    }
    Ok(())
}

/// BLOCK's argument: milliseconds → absolute deadline (0 = forever).
fn parse_block_ms(b: &[u8], now_ms: u64) -> Result<u64, CmdError> {
    let v = crate::num::parse_i64(b)
        .ok_or_else(|| CmdError::msg("ERR timeout is not an integer or out of range"))?;
    if v < 0 {
        return Err(CmdError::msg("ERR timeout is negative"));
    }
    if v == 0 {
        return Ok(0);
    }
    if v as u64 > i64::MAX as u64 - now_ms {
        return Err(CmdError::msg("ERR timeout is out of range"));
    }
    Ok(now_ms + v as u64)
}

fn xread(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    read_generic(ctx, a, false)
}

fn xreadgroup(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    read_generic(ctx, a, true)
}

// ---------------------------------------------------------------- groups

fn xgroup_opts(a: &[&[u8]], create: bool) -> Result<(bool, Option<u64>), CmdError> {
    let mut mkstream = false;
    let mut entries_read: Option<u64> = None;
    let mut i = 5;
    while i < a.len() {
        if create && eq(a[i], "mkstream") {
            mkstream = true;
            i += 1;
        } else if eq(a[i], "entriesread") && i + 1 < a.len() {
            let v = int(a[i + 1])?;
            if v < 0 && v != -1 {
                return Err(CmdError::msg(
                    "ERR value for ENTRIESREAD must be positive or -1",
                ));
            }
            entries_read = (v >= 0).then_some(v as u64);
            i += 2;
        } else {
            return Err(subcommand_syntax(a));
        }
    }
    Ok((mkstream, entries_read))
}

fn subcommand_syntax(a: &[&[u8]]) -> CmdError {
    let mut m = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
    m.extend_from_slice(c_str_trunc(a[1], 128));
    m.extend_from_slice(b"'. Try XGROUP HELP.");
    CmdError::Bytes(m)
}

fn key_required() -> CmdError {
    CmdError::msg("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.")
}

fn xgroup_create(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    // As Redis: the options are parsed first, in order (a bad ENTRIESREAD
    // value is reported before a stray argument after it), then the
    // argument count is checked.
    let (mkstream, entries_read) = xgroup_opts(a, true)?;
    if a.len() > 8 {
        return Err(subcommand_syntax(a));
    }
    let (key, gname) = (a[2], a[3]);
    let mut k = ctx.write_key(key);
    let exists = match k.get() {
        Some(e) => {
            stream_ref(e)?;
            true
        }
        None => false,
    };
    if !exists && !mkstream {
        return Err(key_required());
    }
    let id = if a[4] == b"$" {
        k.get()
            .map_or(Ok(StreamId::MIN), |e| stream_ref(e).map(|s| s.last_id))?
    } else {
        parse_strict(a[4], 0)?
    };
    if !exists {
        k.insert(ctx.new_entry(Value::Stream(Box::default()), 0));
    }
    let s = stream_mut(k.get_mut().expect("present"))?;
    if s.groups.contains_key(gname) {
        if !exists {
            // Cannot happen: a new stream has no groups.
            return Err(CmdError::msg(
                "BUSYGROUP Consumer Group name already exists",
            ));
        }
        return Err(CmdError::msg(
            "BUSYGROUP Consumer Group name already exists",
        ));
    }
    s.groups.insert(gname.into(), Group::new(id, entries_read));
    let mut log: Vec<&[u8]> = vec![b"XGROUP", b"CREATE", key, gname];
    let idb = id_bytes(id);
    log.push(&idb);
    if !exists {
        log.push(b"MKSTREAM");
    }
    let er = entries_read.map_or(-1, |r| r as i64).to_string();
    log.push(b"ENTRIESREAD");
    log.push(er.as_bytes());
    ctx.propagate(&log);
    ctx.notify(crate::notify::STREAM, b"xgroup-create", key);
    drop(k);
    ctx.out.ok();
    Ok(())
}

fn xgroup_setid(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let (_, entries_read) = xgroup_opts(a, false)?;
    let (key, gname) = (a[2], a[3]);
    let mut k = ctx.write_key(key);
    let Some(e) = k.get() else {
        return Err(key_required());
    };
    let s = stream_ref(e)?;
    if !s.groups.contains_key(gname) {
        return Err(nogroup_xgroup(key, gname));
    }
    if a.len() != 5 && a.len() != 7 {
        return Err(subcommand_syntax(a));
    }
    let id = if a[4] == b"$" {
        s.last_id
    } else {
        parse_id(a[4], 0)?
    };
    let s = stream_mut(k.get_mut().expect("present"))?;
    let g = s.groups.get_mut(gname).expect("checked");
    g.last_id = id;
    g.entries_read = entries_read;
    let mut log = Effects::default();
    setid_effect(&mut log, key, gname, g);
    propagate_effects(ctx, &log);
    ctx.notify(crate::notify::STREAM, b"xgroup-setid", key);
    drop(k);
    ctx.out.ok();
    Ok(())
}

fn xgroup_destroy(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let (key, gname) = (a[2], a[3]);
    let mut k = ctx.write_key(key);
    let Some(e) = k.get() else {
        return Err(key_required());
    };
    if !stream_ref(e)?.groups.contains_key(gname) {
        drop(k);
        ctx.out.int(0);
        return Ok(());
    }
    let s = stream_mut(k.get_mut().expect("present"))?;
    s.groups.remove(gname);
    ctx.propagate(&[b"XGROUP", b"DESTROY", key, gname]);
    ctx.notify(crate::notify::STREAM, b"xgroup-destroy", key);
    blocking::serve_stream(ctx, key, &mut k);
    drop(k);
    ctx.out.int(1);
    Ok(())
}

fn xgroup_createconsumer(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let (key, gname, cname) = (a[2], a[3], a[4]);
    let mut k = ctx.write_key(key);
    let Some(e) = k.get() else {
        return Err(key_required());
    };
    let s = stream_ref(e)?;
    let Some(g) = s.groups.get(gname) else {
        return Err(nogroup_xgroup(key, gname));
    };
    if g.consumers.contains_key(cname) {
        drop(k);
        ctx.out.int(0);
        return Ok(());
    }
    let now = now_i64(ctx);
    let s = stream_mut(k.get_mut().expect("present"))?;
    let g = s.groups.get_mut(gname).expect("checked");
    g.consumers.insert(cname.into(), Consumer::new(now));
    ctx.propagate(a);
    ctx.notify(crate::notify::STREAM, b"xgroup-createconsumer", key);
    drop(k);
    ctx.out.int(1);
    Ok(())
}

fn xgroup_delconsumer(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let (key, gname, cname) = (a[2], a[3], a[4]);
    let mut k = ctx.write_key(key);
    let Some(e) = k.get() else {
        return Err(key_required());
    };
    let s = stream_ref(e)?;
    let Some(g) = s.groups.get(gname) else {
        return Err(nogroup_xgroup(key, gname));
    };
    if !g.consumers.contains_key(cname) {
        drop(k);
        ctx.out.int(0);
        return Ok(());
    }
    let s = stream_mut(k.get_mut().expect("present"))?;
    let g = s.groups.get_mut(gname).expect("checked");
    let c = g.consumers.remove(cname).expect("checked");
    for id in c.pel.iter() {
        g.pel.remove(id);
    }
    ctx.propagate(a);
    ctx.notify(crate::notify::STREAM, b"xgroup-delconsumer", key);
    drop(k);
    ctx.out.int(c.pel.len() as i64);
    Ok(())
}

fn xgroup_help(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    super::keys::help_reply(
        ctx,
        "xgroup",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    );
    Ok(())
}

fn xack(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let (key, gname) = (a[1], a[2]);
    let mut k = ctx.write_key(key);
    let has = match k.get() {
        Some(e) => stream_ref(e)?.groups.contains_key(gname),
        None => false,
    };
    if !has {
        drop(k);
        ctx.out.int(0);
        return Ok(());
    }
    let mut ids = Vec::with_capacity(a.len() - 3);
    for x in &a[3..] {
        ids.push(parse_strict(x, 0)?);
    }
    // One pass: the first lookup of each ID is also its removal.
    let s = stream_mut(k.get_mut().expect("present"))?;
    let g = s.groups.get_mut(gname).expect("checked");
    let mut n = 0;
    for id in &ids {
        if g.ack(*id) {
            n += 1;
        }
    }
    if n > 0 {
        ctx.propagate(a);
    }
    drop(k);
    ctx.out.int(n);
    Ok(())
}

fn xpending(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let justinfo = a.len() == 3;
    let (key, gname) = (a[1], a[2]);
    if a.len() != 3 && (a.len() < 6 || a.len() > 9) {
        return Err(CmdError::Syntax);
    }
    let mut minidle: i64 = 0;
    let mut count: i64 = 0;
    let mut start = StreamId::MIN;
    let mut end = StreamId::MAX;
    let mut consumer: Option<&[u8]> = None;
    if a.len() >= 6 {
        let mut si = 3;
        if eq(a[3], "idle") {
            minidle = int(a[4])?;
            if a.len() < 8 {
                return Err(CmdError::Syntax);
            }
            si += 2;
        }
        count = int(a[si + 2])?;
        if count < 0 {
            count = 0;
        }
        start = parse_start(a[si])?;
        end = parse_end(a[si + 1])?;
        if si + 3 < a.len() {
            consumer = Some(a[si + 3]);
        }
    }
    let k = ctx.read_key(key);
    let s = match k.get() {
        Some(e) => Some(stream_ref(e)?),
        None => None,
    };
    let Some(g) = s.and_then(|s| s.groups.get(gname)) else {
        return Err(nogroup(key, gname));
    };
    let out = &mut *ctx.out;
    if justinfo {
        out.array(4);
        out.int(g.pel.len() as i64);
        if g.pel.is_empty() {
            out.null();
            out.null();
            out.null_array();
        } else {
            reply_id(out, g.pel_first().unwrap_or_default());
            reply_id(out, g.pel_last().unwrap_or_default());
            let with: Vec<_> = g
                .consumers
                .iter()
                .filter(|(_, c)| !c.pel.is_empty())
                .collect();
            out.array(with.len());
            for (name, c) in with {
                out.array(2);
                out.bulk(name);
                out.bulk_int(c.pel.len() as i64);
            }
        }
        drop(k);
        return Ok(());
    }
    let now = ctx.now_ms as i64;
    let ids: Box<dyn Iterator<Item = StreamId> + '_> = match consumer {
        Some(cn) => match g.consumers.get(cn) {
            Some(c) => Box::new(c.pel.range(start..).copied()),
            None => {
                out.array(0);
                drop(k);
                return Ok(());
            }
        },
        None => Box::new(g.pel_range(start).map(|(id, _)| id)),
    };
    let mut rows = Vec::new();
    for id in ids {
        if count == 0 || id > end {
            break;
        }
        let Some(n) = g.pel.get(&id) else { continue };
        if minidle != 0 && now.wrapping_sub(n.delivery_time) < minidle {
            continue;
        }
        count -= 1;
        rows.push((id, n));
    }
    out.array(rows.len());
    for (id, n) in rows {
        out.array(4);
        reply_id(out, id);
        out.bulk(&n.consumer);
        out.int(now.wrapping_sub(n.delivery_time).max(0));
        out.int(n.delivery_count as i64);
    }
    drop(k);
    Ok(())
}

fn xclaim(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let (key, gname, cname) = (a[1], a[2], a[3]);
    let mut k = ctx.write_key(key);
    let has = match k.get() {
        Some(e) => stream_ref(e)?.groups.contains_key(gname),
        None => false,
    };
    if !has {
        return Err(nogroup(key, gname));
    }
    let minidle = crate::num::parse_i64(a[4])
        .ok_or_else(|| CmdError::msg("ERR Invalid min-idle-time argument for XCLAIM"))?
        .max(0);
    let mut j = 5;
    let mut ids = Vec::new();
    while j < a.len() {
        match parse_strict(a[j], 0) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let now = now_i64(ctx);
    let mut force = false;
    let mut justid = false;
    let mut deliverytime: i64 = -1;
    let mut retrycount: i64 = -1;
    let mut last_id = StreamId::MIN;
    while j < a.len() {
        let more = a.len() - 1 - j;
        let opt = a[j];
        if eq(opt, "force") {
            force = true;
        } else if eq(opt, "justid") {
            justid = true;
        } else if eq(opt, "idle") && more > 0 {
            j += 1;
            let v = crate::num::parse_i64(a[j])
                .ok_or_else(|| CmdError::msg("ERR Invalid IDLE option argument for XCLAIM"))?;
            deliverytime = now.wrapping_sub(v);
        } else if eq(opt, "time") && more > 0 {
            j += 1;
            deliverytime = crate::num::parse_i64(a[j])
                .ok_or_else(|| CmdError::msg("ERR Invalid TIME option argument for XCLAIM"))?;
        } else if eq(opt, "retrycount") && more > 0 {
            j += 1;
            retrycount = crate::num::parse_i64(a[j]).ok_or_else(|| {
                CmdError::msg("ERR Invalid RETRYCOUNT option argument for XCLAIM")
            })?;
        } else if eq(opt, "lastid") && more > 0 {
            j += 1;
            last_id = parse_strict(a[j], 0)?;
        } else {
            let mut m = b"ERR Unrecognized XCLAIM option '".to_vec();
            m.extend_from_slice(c_str_trunc(opt, usize::MAX));
            m.push(b'\'');
            return Err(CmdError::Bytes(m));
        }
        j += 1;
    }
    if deliverytime == -1 || deliverytime < 0 || deliverytime > now {
        deliverytime = now;
    }
    let s = stream_mut(k.get_mut().expect("present"))?;
    let mut log = Effects::default();
    let mut propagate_last = false;
    {
        let g = s.groups.get_mut(gname).expect("checked");
        if last_id > g.last_id {
            g.last_id = last_id;
            propagate_last = true;
        }
    }
    let mut body = Reply {
        buf: Vec::new(),
        resp3: ctx.out.resp3,
    };
    let mut n = 0usize;
    let cname_b: Box<[u8]> = cname.into();
    let mut new_consumer = false;
    for id in ids {
        let exists = s.contains(id);
        let fields = if exists && !justid { s.get(id) } else { None };
        let g = s.groups.get_mut(gname).expect("checked");
        if !exists {
            if g.ack(id) {
                let mut b = [0u8; 41];
                log.cmd(&[b"XACK", key, gname, format_id(id, &mut b)]);
                propagate_last = false;
            }
            continue;
        }
        let created = if force && !g.pel.contains_key(&id) {
            g.pel.insert(
                id,
                Nack {
                    delivery_time: now,
                    delivery_count: 0,
                    consumer: (*cname_b).into(),
                },
            );
            true
        } else {
            false
        };
        let Some(nack) = g.pel.get(&id) else { continue };
        if !created && minidle != 0 && now.wrapping_sub(nack.delivery_time) < minidle {
            continue;
        }
        new_consumer |= g.touch_consumer(cname, now);
        let count = (retrycount >= 0).then_some(retrycount as u64);
        let (dt, dc) = g
            .claim(id, cname, now, deliverytime, count, !justid)
            .expect("pending");
        if justid {
            reply_id(&mut body, id);
        } else {
            let f = fields.unwrap_or_default();
            let refs: Vec<&[u8]> = f.iter().map(|x| x.as_slice()).collect();
            reply_entry(&mut body, id, &refs);
        }
        n += 1;
        xclaim_effect(&mut log, key, gname, cname, id, dt, dc, g.last_id);
        propagate_last = false;
    }
    if propagate_last {
        let g = s.groups.get(gname).expect("checked");
        setid_effect(&mut log, key, gname, g);
    }
    if new_consumer {
        ctx.notify(crate::notify::STREAM, b"xgroup-createconsumer", key);
    }
    if !log.is_empty() {
        propagate_effects(ctx, &log);
    }
    drop(k);
    ctx.out.array(n);
    ctx.out.buf.extend_from_slice(&body.buf);
    Ok(())
}

fn xautoclaim(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let (key, gname, cname) = (a[1], a[2], a[3]);
    let minidle = crate::num::parse_i64(a[4])
        .ok_or_else(|| CmdError::msg("ERR Invalid min-idle-time argument for XAUTOCLAIM"))?
        .max(0);
    let start = parse_start(a[5])?;
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    let max_count = i64::MAX / 16;
    while j < a.len() {
        let more = a.len() - 1 - j;
        if eq(a[j], "count") && more > 0 {
            count = match crate::num::parse_i64(a[j + 1]) {
                Some(v) if (1..=max_count).contains(&v) => v,
                _ => return Err(CmdError::msg("ERR COUNT must be > 0")),
            };
            j += 1;
        } else if eq(a[j], "justid") {
            justid = true;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let mut k = ctx.write_key(key);
    let has = match k.get() {
        Some(e) => stream_ref(e)?.groups.contains_key(gname),
        None => false,
    };
    if !has {
        return Err(nogroup(key, gname));
    }
    let now = now_i64(ctx);
    let s = stream_mut(k.get_mut().expect("present"))?;
    let mut attempts = count.saturating_mul(10);
    let mut new_consumer = false;
    let mut log = Effects::default();
    let mut body = Reply {
        buf: Vec::new(),
        resp3: ctx.out.resp3,
    };
    let mut n = 0usize;
    let mut deleted = Vec::new();
    // The IDs to scan, taken up front (one merge of the consumers' PELs,
    // not one per step): a step only acks or moves its own ID, so the IDs
    // after it are the same either way.
    let mut scan = s.groups[gname]
        .pel_range(start)
        .take(
            usize::try_from(attempts)
                .unwrap_or(usize::MAX)
                .saturating_add(1),
        )
        .map(|(id, _)| id)
        .collect::<Vec<_>>()
        .into_iter();
    let mut next: Option<StreamId>;
    loop {
        next = scan.next();
        let Some(id) = next else { break };
        if attempts == 0 || count == 0 {
            break;
        }
        attempts -= 1;
        let exists = s.contains(id);
        let fields = if exists && !justid { s.get(id) } else { None };
        let g = s.groups.get_mut(gname).expect("checked");
        if !exists {
            g.ack(id);
            let mut b = [0u8; 41];
            log.cmd(&[b"XACK", key, gname, format_id(id, &mut b)]);
            deleted.push(id);
            count -= 1;
            if id == StreamId::MAX {
                next = None;
                break;
            }
            continue;
        }
        let nack = g.pel.get(&id).expect("pending");
        if minidle != 0 && now.wrapping_sub(nack.delivery_time) < minidle {
            if id == StreamId::MAX {
                next = None;
                break;
            }
            continue;
        }
        new_consumer |= g.touch_consumer(cname, now);
        let (dt, dc) = g
            .claim(id, cname, now, now, None, !justid)
            .expect("pending");
        if justid {
            reply_id(&mut body, id);
        } else {
            let f = fields.unwrap_or_default();
            let refs: Vec<&[u8]> = f.iter().map(|x| x.as_slice()).collect();
            reply_entry(&mut body, id, &refs);
        }
        n += 1;
        count -= 1;
        xclaim_effect(&mut log, key, gname, cname, id, dt, dc, g.last_id);
        if id == StreamId::MAX {
            next = None;
            break;
        }
    }
    if new_consumer {
        ctx.notify(crate::notify::STREAM, b"xgroup-createconsumer", key);
    }
    if !log.is_empty() {
        propagate_effects(ctx, &log);
    }
    drop(k);
    let out = &mut *ctx.out;
    out.array(3);
    reply_id(out, next.unwrap_or(StreamId::MIN));
    out.array(n);
    out.buf.extend_from_slice(&body.buf);
    out.array(deleted.len());
    for id in deleted {
        reply_id(out, id);
    }
    Ok(())
}

// ---------------------------------------------------------------- XINFO

/// Number of nodes of Redis's radix tree holding these 16-byte keys.
fn rax_nodes(keys: &[[u8; 16]]) -> usize {
    fn walk(keys: &[[u8; 16]], d: usize) -> usize {
        if d >= 16 {
            return 1;
        }
        if keys.is_empty() {
            return 1;
        }
        let first = &keys[0];
        let last = &keys[keys.len() - 1];
        if first[d] == last[d] {
            // A compressed node up to where the keys diverge (or the end).
            let mut t = d;
            while t < 16 && first[t] == last[t] {
                t += 1;
            }
            return 1 + walk(keys, t);
        }
        // A branching node: one child per distinct byte.
        let mut n = 1;
        let mut i = 0;
        while i < keys.len() {
            let b = keys[i][d];
            let mut j = i;
            while j < keys.len() && keys[j][d] == b {
                j += 1;
            }
            n += walk(&keys[i..j], d + 1);
            i = j;
        }
        n
    }
    if keys.is_empty() {
        return 1;
    }
    walk(keys, 0)
}

fn be(id: StreamId) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&id.ms.to_be_bytes());
    b[8..].copy_from_slice(&id.seq.to_be_bytes());
    b
}

fn reply_opt_i64(out: &mut Reply, v: Option<i64>) {
    match v {
        Some(x) => out.int(x),
        None => out.null(),
    }
}

fn reply_opt_u64(out: &mut Reply, v: Option<u64>) {
    match v {
        Some(x) => out.int(x as i64),
        None => out.null(),
    }
}

fn xinfo_stream(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let key = a[2];
    // As Redis: the key is looked up (no such key, WRONGTYPE) before the
    // options are checked.
    let k = ctx.read_key(key);
    let Some(e) = k.get() else {
        return Err(CmdError::NoSuchKey);
    };
    let s = stream_ref(e)?;
    let mut full = false;
    let mut count: i64 = 10;
    if a.len() > 3 {
        if !(a.len() == 4 || a.len() == 6)
            || !eq(a[3], "full")
            || (a.len() == 6 && !eq(a[4], "count"))
        {
            let mut m = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
            m.extend_from_slice(c_str_trunc(a[1], 128));
            m.extend_from_slice(b"'. Try XINFO HELP.");
            return Err(CmdError::Bytes(m));
        }
        full = true;
        if a.len() == 6 {
            count = int(a[5])?;
            if count < 0 {
                count = 10;
            }
        }
    }
    let now = ctx.now_ms as i64;
    let out = &mut *ctx.out;
    out.map(if full { 9 } else { 10 });
    out.bulk(b"length");
    out.int(s.len() as i64);
    let keys: Vec<[u8; 16]> = s.node_ids().map(be).collect();
    out.bulk(b"radix-tree-keys");
    out.int(keys.len() as i64);
    out.bulk(b"radix-tree-nodes");
    out.int(rax_nodes(&keys) as i64);
    out.bulk(b"last-generated-id");
    reply_id(out, s.last_id);
    out.bulk(b"max-deleted-entry-id");
    reply_id(out, s.max_deleted);
    out.bulk(b"entries-added");
    out.int(s.entries_added as i64);
    out.bulk(b"recorded-first-entry-id");
    reply_id(out, s.first_id);
    if !full {
        out.bulk(b"groups");
        out.int(s.groups.len() as i64);
        for (name, first) in [(&b"first-entry"[..], true), (b"last-entry", false)] {
            out.bulk(name);
            let mut found = false;
            s.range(StreamId::MIN, StreamId::MAX, !first, |id, f| {
                reply_entry(out, id, f);
                found = true;
                false
            });
            if !found {
                out.null();
            }
        }
        drop(k);
        return Ok(());
    }
    let c = count as u64;
    out.bulk(b"entries");
    reply_range(out, s, StreamId::MIN, StreamId::MAX, false, c);
    out.bulk(b"groups");
    out.array(s.groups.len());
    let lim = |n: usize| if c == 0 { n } else { n.min(c as usize) };
    for (name, g) in &s.groups {
        out.map(7);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"last-delivered-id");
        reply_id(out, g.last_id);
        out.bulk(b"entries-read");
        reply_opt_u64(out, g.entries_read);
        out.bulk(b"lag");
        reply_opt_i64(out, s.group_lag(g));
        out.bulk(b"pel-count");
        out.int(g.pel.len() as i64);
        out.bulk(b"pending");
        out.array(lim(g.pel.len()));
        for (id, n) in g.pel_range(StreamId::MIN).take(lim(g.pel.len())) {
            out.array(4);
            reply_id(out, id);
            out.bulk(&n.consumer);
            out.int(n.delivery_time);
            out.int(n.delivery_count as i64);
        }
        out.bulk(b"consumers");
        out.array(g.consumers.len());
        for (cn, cons) in &g.consumers {
            out.map(4);
            out.bulk(b"name");
            out.bulk(cn);
            out.bulk(b"seen-time");
            out.int(cons.seen_time);
            out.bulk(b"pel-count");
            out.int(cons.pel.len() as i64);
            out.bulk(b"pending");
            out.array(lim(cons.pel.len()));
            for id in cons.pel.iter().take(lim(cons.pel.len())) {
                let n = g.pel.get(id).expect("pending");
                out.array(3);
                reply_id(out, *id);
                out.int(n.delivery_time);
                out.int(n.delivery_count as i64);
            }
        }
    }
    let _ = now;
    drop(k);
    Ok(())
}

fn xinfo_groups(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.read_key(a[2]);
    let Some(e) = k.get() else {
        return Err(CmdError::NoSuchKey);
    };
    let s = stream_ref(e)?;
    let out = &mut *ctx.out;
    out.array(s.groups.len());
    for (name, g) in &s.groups {
        out.map(6);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"consumers");
        out.int(g.consumers.len() as i64);
        out.bulk(b"pending");
        out.int(g.pel.len() as i64);
        out.bulk(b"last-delivered-id");
        reply_id(out, g.last_id);
        out.bulk(b"entries-read");
        reply_opt_u64(out, g.entries_read);
        out.bulk(b"lag");
        reply_opt_i64(out, s.group_lag(g));
    }
    drop(k);
    Ok(())
}

fn xinfo_consumers(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let (key, gname) = (a[2], a[3]);
    let k = ctx.read_key(key);
    let Some(e) = k.get() else {
        return Err(CmdError::NoSuchKey);
    };
    let s = stream_ref(e)?;
    let Some(g) = s.groups.get(gname) else {
        return Err(nogroup_xgroup(key, gname));
    };
    let now = ctx.now_ms as i64;
    let out = &mut *ctx.out;
    out.array(g.consumers.len());
    for (name, c) in &g.consumers {
        out.map(3);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"pending");
        out.int(c.pel.len() as i64);
        out.bulk(b"idle");
        out.int(now.wrapping_sub(c.seen_time).max(0));
    }
    drop(k);
    Ok(())
}

fn xinfo_help(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    super::keys::help_reply(
        ctx,
        "xinfo",
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    );
    Ok(())
}
