//! Sorted sets: ZADD and friends, ranges by rank, score and lex, pops,
//! and the ZUNION/ZINTER/ZDIFF algebra with its STORE forms. The
//! encodings (listpack, skiplist) live in `basalt_storage::zset`; every
//! range here resolves to an interval of ascending ranks first.

use basalt_storage::zset::{LexBound, LexRange, ScoreRange};
use basalt_storage::{Entry, Limits, Value, ZSet};

use super::args::{eq, int};
use super::coll::{self, limits, opt, rand_u64, zset, zset_mut};
use super::flags::*;
use super::hash::pick_distinct;
use super::{cmd, CmdError, CmdResult, CommandSpec, Ctx};
use crate::blocking::{self, Kind, MultiSlot};
use crate::db::MultiLock;
use crate::num;

/// (member, score) pairs.
type Scored = Vec<(Vec<u8>, f64)>;

const fn k1(mut c: CommandSpec) -> CommandSpec {
    c.first_key = 1;
    c.last_key = 1;
    c.step = 1;
    c.group = "sorted-set";
    c
}

const fn g(mut c: CommandSpec) -> CommandSpec {
    c.group = "sorted-set";
    c
}

pub static COMMANDS: &[CommandSpec] = &[
    k1(cmd("zadd", -4, WRITE | DENYOOM | FAST, zadd)),
    k1(cmd("zincrby", 4, WRITE | DENYOOM | FAST, zincrby)),
    k1(cmd("zrem", -3, WRITE | FAST, zrem)),
    k1(cmd("zscore", 3, READONLY | FAST, zscore)),
    k1(cmd("zmscore", -3, READONLY | FAST, zmscore)),
    k1(cmd("zcard", 2, READONLY | FAST, zcard)),
    k1(cmd("zcount", 4, READONLY | FAST, zcount)),
    k1(cmd("zlexcount", 4, READONLY | FAST, zlexcount)),
    k1(cmd("zrange", -4, READONLY, zrange)),
    CommandSpec {
        first_key: 1,
        last_key: 2,
        step: 1,
        ..g(cmd("zrangestore", -5, WRITE | DENYOOM, zrangestore))
    },
    k1(cmd("zrangebyscore", -4, READONLY, zrangebyscore)),
    k1(cmd("zrevrangebyscore", -4, READONLY, zrevrangebyscore)),
    k1(cmd("zrangebylex", -4, READONLY, zrangebylex)),
    k1(cmd("zrevrangebylex", -4, READONLY, zrevrangebylex)),
    k1(cmd("zrevrange", -4, READONLY, zrevrange)),
    k1(cmd("zrank", -3, READONLY | FAST, zrank)),
    k1(cmd("zrevrank", -3, READONLY | FAST, zrevrank)),
    k1(cmd("zremrangebyrank", 4, WRITE, zremrangebyrank)),
    k1(cmd("zremrangebyscore", 4, WRITE, zremrangebyscore)),
    k1(cmd("zremrangebylex", 4, WRITE, zremrangebylex)),
    k1(cmd("zpopmin", -2, WRITE | FAST, zpopmin)),
    k1(cmd("zpopmax", -2, WRITE | FAST, zpopmax)),
    g(cmd("zmpop", -4, WRITE, zmpop)),
    k1(cmd("zrandmember", -2, READONLY, zrandmember)),
    g(cmd("zunion", -3, READONLY, zunion)),
    g(cmd("zinter", -3, READONLY, zinter)),
    g(cmd("zdiff", -3, READONLY, zdiff)),
    CommandSpec {
        first_key: 1,
        last_key: 1,
        step: 1,
        ..g(cmd("zunionstore", -4, WRITE | DENYOOM, zunionstore))
    },
    CommandSpec {
        first_key: 1,
        last_key: 1,
        step: 1,
        ..g(cmd("zinterstore", -4, WRITE | DENYOOM, zinterstore))
    },
    CommandSpec {
        first_key: 1,
        last_key: 1,
        step: 1,
        ..g(cmd("zdiffstore", -4, WRITE | DENYOOM, zdiffstore))
    },
    g(cmd("zintercard", -3, READONLY, zintercard)),
    k1(cmd("zscan", -3, READONLY, zscan)),
    CommandSpec {
        first_key: 1,
        last_key: -2,
        step: 1,
        ..g(cmd("bzpopmin", -3, WRITE | FAST | BLOCKING, bzpopmin))
    },
    CommandSpec {
        first_key: 1,
        last_key: -2,
        step: 1,
        ..g(cmd("bzpopmax", -3, WRITE | FAST | BLOCKING, bzpopmax))
    },
    g(cmd("bzmpop", -5, WRITE | BLOCKING, bzmpop)),
];

// ------------------------------------------------------------ parsing

fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
    fn one(b: &[u8]) -> Option<(f64, bool)> {
        match b.first() {
            Some(b'(') => Some((num::parse_f64_loose(&b[1..])?, true)),
            _ => Some((num::parse_f64_loose(b)?, false)),
        }
    }
    let err = || CmdError::msg("ERR min or max is not a float");
    let (min, minex) = one(min).ok_or_else(err)?;
    let (max, maxex) = one(max).ok_or_else(err)?;
    Ok(ScoreRange {
        min,
        max,
        minex,
        maxex,
    })
}

fn parse_lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, CmdError> {
    fn one(b: &[u8]) -> Option<LexBound> {
        match b.first()? {
            b'+' if b.len() == 1 => Some(LexBound::PosInf),
            b'-' if b.len() == 1 => Some(LexBound::NegInf),
            b'(' => Some(LexBound::Excl(b[1..].to_vec())),
            b'[' => Some(LexBound::Incl(b[1..].to_vec())),
            _ => None,
        }
    }
    let err = || CmdError::msg("ERR min or max not valid string range item");
    Ok(LexRange {
        min: one(min).ok_or_else(err)?,
        max: one(max).ok_or_else(err)?,
    })
}

/// Redis's rank sanitising: Some((start, end)) ascending from the side
/// the command counts from, or None for an empty range.
fn rank_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    super::list::resolve_range(start, end, len)
}

// ------------------------------------------------------------ replies

/// Member/score pairs: `[m, s]` arrays in RESP3 when `nested`, else flat.
fn reply_pairs(ctx: &mut Ctx<'_>, items: &[(Vec<u8>, f64)], withscores: bool) {
    let resp3 = ctx.out.resp3;
    if withscores && !resp3 {
        ctx.out.array(items.len() * 2);
    } else {
        ctx.out.array(items.len());
    }
    for (m, s) in items {
        if withscores && resp3 {
            ctx.out.array(2);
        }
        ctx.out.bulk(m);
        if withscores {
            ctx.out.double(*s);
        }
    }
}

/// Replaces `dst` (lock slot `i`) with `items`, logging DEL + ZADD as one
/// record; an empty result deletes `dst`.
pub(super) fn store_result(
    ctx: &Ctx<'_>,
    ml: &mut MultiLock<'_>,
    i: usize,
    dst: &[u8],
    items: &[(Vec<u8>, f64)],
    lim: &Limits,
    event: &[u8],
) {
    if items.is_empty() {
        if ml.remove(i, dst).is_some() {
            ctx.propagate(&[b"DEL", dst]);
            ctx.notify(crate::notify::GENERIC, b"del", dst);
        }
        return;
    }
    let maxlen = items.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
    let mut z = ZSet::with_hint(items.len(), maxlen, lim);
    for (m, s) in items {
        z.set(m, *s, lim);
    }
    ml.insert(i, dst, Entry::new(Value::ZSet(z)));
    let scores: Vec<Vec<u8>> = items.iter().map(|(_, s)| coll::fmt_score(*s)).collect();
    let mut add: Vec<&[u8]> = Vec::with_capacity(2 + 2 * items.len());
    add.push(b"ZADD");
    add.push(dst);
    for ((m, _), s) in items.iter().zip(&scores) {
        add.push(s);
        add.push(m);
    }
    ctx.propagate_many(&[&[b"DEL", dst], &add]);
    blocking::serve(ctx, dst, &mut MultiSlot { ml, i, key: dst });
    ctx.notify(crate::notify::ZSET, event, dst);
}

// ------------------------------------------------------------ ZADD

#[derive(Default)]
pub(super) struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

pub(super) fn zadd_generic(
    ctx: &mut Ctx<'_>,
    a: &[&[u8]],
    mut f: AddFlags,
    first: usize,
) -> CmdResult {
    let mut idx = first;
    if !f.incr {
        while idx < a.len() {
            let o = a[idx];
            if eq(o, "nx") {
                f.nx = true;
            } else if eq(o, "xx") {
                f.xx = true;
            } else if eq(o, "ch") {
                f.ch = true;
            } else if eq(o, "incr") {
                f.incr = true;
            } else if eq(o, "gt") {
                f.gt = true;
            } else if eq(o, "lt") {
                f.lt = true;
            } else {
                break;
            }
            idx += 1;
        }
    }
    let rest = &a[idx..];
    if rest.is_empty() || rest.len() % 2 == 1 {
        return Err(CmdError::Syntax);
    }
    if f.nx && f.xx {
        return Err(CmdError::msg(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (f.gt || f.lt) && f.nx || (f.gt && f.lt) {
        return Err(CmdError::msg(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if f.incr && rest.len() > 2 {
        return Err(CmdError::msg(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    for p in rest.chunks(2) {
        pairs.push((num::parse_f64(p[0]).ok_or(CmdError::NotFloat)?, p[1]));
    }
    let lim = limits(ctx);
    let mut k = ctx.write_key(a[1]);
    opt(k.get(), zset)?;
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0);
    let mut last = 0f64;
    if k.get().is_none() {
        if f.xx {
            drop(k);
            if f.incr {
                ctx.out.null();
            } else {
                ctx.out.int(0);
            }
            return Ok(());
        }
        let maxlen = pairs.iter().map(|(_, m)| m.len()).max().unwrap_or(0);
        k.insert(Entry::new(Value::ZSet(ZSet::with_hint(
            pairs.len(),
            maxlen,
            &lim,
        ))));
    }
    let z = zset_mut(k.get_mut().expect("present"))?;
    for (score, m) in pairs {
        match z.score(m) {
            Some(cur) => {
                if f.nx {
                    continue;
                }
                let mut s = score;
                if f.incr {
                    s += cur;
                    if s.is_nan() {
                        if z.is_empty() {
                            k.remove();
                        }
                        return Err(CmdError::msg("ERR resulting score is not a number (NaN)"));
                    }
                }
                if (f.lt && s >= cur) || (f.gt && s <= cur) {
                    continue;
                }
                last = s;
                processed += 1;
                if s != cur {
                    z.set(m, s, &lim);
                    updated += 1;
                }
            }
            None if !f.xx => {
                z.set(m, score, &lim);
                added += 1;
                processed += 1;
                last = score;
            }
            None => {}
        }
    }
    if z.is_empty() {
        k.remove();
    }
    if added + updated > 0 {
        ctx.propagate(a);
        blocking::serve(ctx, a[1], &mut k);
        ctx.notify(
            crate::notify::ZSET,
            if f.incr { b"zincr" } else { b"zadd" },
            a[1],
        );
    }
    drop(k);
    if f.incr {
        if processed > 0 {
            ctx.out.double(last);
        } else {
            ctx.out.null();
        }
    } else {
        ctx.out.int(if f.ch { added + updated } else { added });
    }
    Ok(())
}

fn zadd(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    zadd_generic(ctx, a, AddFlags::default(), 2)
}

fn zincrby(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    // Redis runs ZINCRBY through ZADD's option parser, so an option word in
    // the increment's place is taken as a flag and leaves an odd number of
    // arguments: a syntax error, not a float error.
    if ["nx", "xx", "ch", "incr", "gt", "lt"]
        .iter()
        .any(|o| a[2].eq_ignore_ascii_case(o.as_bytes()))
    {
        return Err(CmdError::Syntax);
    }
    zadd_generic(
        ctx,
        a,
        AddFlags {
            incr: true,
            ..Default::default()
        },
        2,
    )
}

// ------------------------------------------------------------ simple reads

fn zrem(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let mut k = ctx.write_key(a[1]);
    let mut n = 0;
    if let Some(e) = k.get_mut() {
        let z = zset_mut(e)?;
        for m in &a[2..] {
            n += z.remove(m) as i64;
            if z.is_empty() {
                break;
            }
        }
        let emptied = z.is_empty();
        if emptied {
            k.remove();
        }
        if n > 0 {
            ctx.propagate(a);
            ctx.notify(crate::notify::ZSET, b"zrem", a[1]);
            if emptied {
                ctx.notify(crate::notify::GENERIC, b"del", a[1]);
            }
        }
    }
    drop(k);
    ctx.out.int(n);
    Ok(())
}

fn zscore(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.read_key(a[1]);
    match opt(k.get(), zset)?.and_then(|z| z.score(a[2])) {
        Some(s) => ctx.out.double(s),
        None => ctx.out.null(),
    }
    Ok(())
}

fn zmscore(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.read_key(a[1]);
    let z = opt(k.get(), zset)?;
    ctx.out.array(a.len() - 2);
    for m in &a[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

fn zcard(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.read_key(a[1]);
    let n = opt(k.get(), zset)?.map_or(0, |z| z.len());
    drop(k);
    ctx.out.int(n as i64);
    Ok(())
}

fn count_of(r: Option<(usize, usize)>) -> i64 {
    r.map_or(0, |(a, b)| (b - a + 1) as i64)
}

fn zcount(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let r = parse_score_range(a[2], a[3])?;
    let k = ctx.read_key(a[1]);
    let n = opt(k.get(), zset)?.map_or(0, |z| count_of(z.score_ranks(&r)));
    drop(k);
    ctx.out.int(n);
    Ok(())
}

fn zlexcount(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let r = parse_lex_range(a[2], a[3])?;
    let k = ctx.read_key(a[1]);
    let n = opt(k.get(), zset)?.map_or(0, |z| count_of(z.lex_ranks(&r)));
    drop(k);
    ctx.out.int(n);
    Ok(())
}

// ------------------------------------------------------------ ranges

#[derive(Clone, Copy, PartialEq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Clone, Copy, PartialEq)]
enum Dir {
    Auto,
    Fwd,
    Rev,
}

enum Parsed {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

struct RangeQuery {
    what: Parsed,
    rev: bool,
    withscores: bool,
    offset: i64,
    limit: i64,
}

/// ZRANGE's argument parsing (Redis's zrangeGenericCommand), `at` the
/// index of the source key.
fn parse_range_query(
    a: &[&[u8]],
    at: usize,
    store: bool,
    mut rt: RangeType,
    mut dir: Dir,
) -> Result<RangeQuery, CmdError> {
    let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut j = at + 3;
    while j < a.len() {
        let left = a.len() - j - 1;
        if !store && eq(a[j], "withscores") {
            withscores = true;
        } else if eq(a[j], "limit") && left >= 2 {
            offset = int(a[j + 1])?;
            limit = int(a[j + 2])?;
            j += 2;
        } else if dir == Dir::Auto && eq(a[j], "rev") {
            dir = Dir::Rev;
        } else if rt == RangeType::Auto && eq(a[j], "bylex") {
            rt = RangeType::Lex;
        } else if rt == RangeType::Auto && eq(a[j], "byscore") {
            rt = RangeType::Score;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let rev = dir == Dir::Rev;
    if rt == RangeType::Auto {
        rt = RangeType::Rank;
    }
    if limit != -1 && rt == RangeType::Rank {
        return Err(CmdError::msg(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && rt == RangeType::Lex {
        return Err(CmdError::msg(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut lo, mut hi) = (a[at + 1], a[at + 2]);
    if rev && rt != RangeType::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let what = match rt {
        RangeType::Score => Parsed::Score(parse_score_range(lo, hi)?),
        RangeType::Lex => Parsed::Lex(parse_lex_range(lo, hi)?),
        _ => Parsed::Rank(int(lo)?, int(hi)?),
    };
    Ok(RangeQuery {
        what,
        rev,
        withscores,
        offset,
        limit,
    })
}

/// Runs a parsed range query against `z`.
fn run_range(z: &ZSet, q: &RangeQuery) -> Vec<(Vec<u8>, f64)> {
    let len = z.len();
    let ranks = match &q.what {
        Parsed::Rank(s, e) => {
            let Some((s, e)) = rank_range(*s, *e, len) else {
                return Vec::new();
            };
            return if q.rev {
                z.collect(len - 1 - e, len - 1 - s, true)
            } else {
                z.collect(s, e, false)
            };
        }
        Parsed::Score(r) => z.score_ranks(r),
        Parsed::Lex(r) => z.lex_ranks(r),
    };
    if q.offset < 0 || (q.offset > 0 && q.offset as usize >= len) {
        return Vec::new();
    }
    let Some((lo, hi)) = ranks else {
        return Vec::new();
    };
    let n = hi - lo + 1;
    let off = q.offset as usize;
    if off >= n {
        return Vec::new();
    }
    let take = if q.limit < 0 {
        n - off
    } else {
        (q.limit as usize).min(n - off)
    };
    if take == 0 {
        return Vec::new();
    }
    if q.rev {
        z.collect(hi + 1 - off - take, hi - off, true)
    } else {
        z.collect(lo + off, lo + off + take - 1, false)
    }
}

fn range_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], rt: RangeType, dir: Dir) -> CmdResult {
    let q = parse_range_query(a, 1, false, rt, dir)?;
    let k = ctx.read_key(a[1]);
    let Some(z) = opt(k.get(), zset)? else {
        drop(k);
        ctx.out.array(0);
        return Ok(());
    };
    let items = run_range(z, &q);
    drop(k);
    let ws = q.withscores;
    reply_pairs(ctx, &items, ws);
    Ok(())
}

fn zrange(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    range_generic(ctx, a, RangeType::Auto, Dir::Auto)
}

fn zrevrange(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    range_generic(ctx, a, RangeType::Rank, Dir::Rev)
}

fn zrangebyscore(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    range_generic(ctx, a, RangeType::Score, Dir::Fwd)
}

fn zrevrangebyscore(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    range_generic(ctx, a, RangeType::Score, Dir::Rev)
}

fn zrangebylex(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    range_generic(ctx, a, RangeType::Lex, Dir::Fwd)
}

fn zrevrangebylex(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    range_generic(ctx, a, RangeType::Lex, Dir::Rev)
}

fn zrangestore(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let q = parse_range_query(a, 2, true, RangeType::Auto, Dir::Auto)?;
    let lim = limits(ctx);
    let mut ml = ctx.lock_keys(&[a[1], a[2]]);
    let src = ml.get(1, a[2]);
    ctx.count_lookup(src.is_some());
    let items = match opt(src, zset)? {
        Some(z) => run_range(z, &q),
        None => Vec::new(),
    };
    store_result(ctx, &mut ml, 0, a[1], &items, &lim, b"zrangestore");
    drop(ml);
    ctx.out.int(items.len() as i64);
    Ok(())
}

fn rank_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], rev: bool) -> CmdResult {
    let withscore = match a.len() {
        3 => false,
        4 if eq(a[3], "withscore") => true,
        _ => return Err(CmdError::Syntax),
    };
    let k = ctx.read_key(a[1]);
    let found = match opt(k.get(), zset)? {
        Some(z) => z
            .rank(a[2])
            .map(|(r, s)| (if rev { z.len() - 1 - r } else { r }, s)),
        None => None,
    };
    drop(k);
    match found {
        Some((r, s)) => {
            if withscore {
                ctx.out.array(2);
            }
            ctx.out.int(r as i64);
            if withscore {
                ctx.out.double(s);
            }
        }
        None if withscore => ctx.out.null_array(),
        None => ctx.out.null(),
    }
    Ok(())
}

fn zrank(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    rank_generic(ctx, a, false)
}

fn zrevrank(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    rank_generic(ctx, a, true)
}

fn remrange_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], what: Parsed) -> CmdResult {
    let mut k = ctx.write_key(a[1]);
    let Some(e) = k.get_mut() else {
        drop(k);
        ctx.out.int(0);
        return Ok(());
    };
    let z = zset_mut(e)?;
    let ranks = match &what {
        Parsed::Rank(s, e) => rank_range(*s, *e, z.len()),
        Parsed::Score(r) => z.score_ranks(r),
        Parsed::Lex(r) => z.lex_ranks(r),
    };
    let n = ranks.map_or(0, |(s, e)| z.remove_ranks(s, e));
    let emptied = z.is_empty();
    if emptied {
        k.remove();
    }
    if n > 0 {
        ctx.propagate(a);
        let event: &[u8] = match &what {
            Parsed::Rank(..) => b"zremrangebyrank",
            Parsed::Score(_) => b"zremrangebyscore",
            Parsed::Lex(_) => b"zremrangebylex",
        };
        ctx.notify(crate::notify::ZSET, event, a[1]);
        if emptied {
            ctx.notify(crate::notify::GENERIC, b"del", a[1]);
        }
    }
    drop(k);
    ctx.out.int(n as i64);
    Ok(())
}

fn zremrangebyrank(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let what = Parsed::Rank(int(a[2])?, int(a[3])?);
    remrange_generic(ctx, a, what)
}

fn zremrangebyscore(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let what = Parsed::Score(parse_score_range(a[2], a[3])?);
    remrange_generic(ctx, a, what)
}

fn zremrangebylex(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let what = Parsed::Lex(parse_lex_range(a[2], a[3])?);
    remrange_generic(ctx, a, what)
}

// ------------------------------------------------------------ pops

/// Pops up to `count` from the min or max end of the first non-empty
/// zset among `keys`; returns (key, popped) or None. Logs ZPOPMIN/MAX.
fn pop_from(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    max: bool,
    count: usize,
) -> Result<Option<(Vec<u8>, Scored)>, CmdError> {
    for key in keys {
        let mut k = ctx.write_key(key);
        let Some(e) = k.get_mut() else { continue };
        let z = zset_mut(e)?;
        let len = z.len();
        let n = count.min(len);
        let items = if max {
            z.collect(len - n, len - 1, true)
        } else {
            z.collect(0, n - 1, false)
        };
        if max {
            z.remove_ranks(len - n, len - 1);
        } else {
            z.remove_ranks(0, n - 1);
        }
        let emptied = z.is_empty();
        if emptied {
            k.remove();
        }
        let c = itoa::Buffer::new().format(n).as_bytes().to_vec();
        ctx.propagate(&[if max { b"ZPOPMAX" } else { b"ZPOPMIN" }, key, &c]);
        ctx.notify(
            crate::notify::ZSET,
            if max { b"zpopmax" } else { b"zpopmin" },
            key,
        );
        if emptied {
            ctx.notify(crate::notify::GENERIC, b"del", key);
        }
        return Ok(Some((key.to_vec(), items)));
    }
    Ok(None)
}

fn zpop_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], max: bool) -> CmdResult {
    if a.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = if a.len() == 3 {
        Some(coll::positive(a[2])? as usize)
    } else {
        None
    };
    // Type check before the count-0 shortcut, as Redis.
    {
        let k = ctx.write_key(a[1]);
        let present = opt(k.get(), zset)?.is_some();
        if !present || count == Some(0) {
            drop(k);
            ctx.out.array(0);
            return Ok(());
        }
    }
    let nested = ctx.out.resp3 && count.is_some();
    let items = pop_from(ctx, &a[1..2], max, count.unwrap_or(1))?
        .map(|(_, v)| v)
        .unwrap_or_default();
    if nested {
        reply_pairs(ctx, &items, true);
    } else {
        ctx.out.array(items.len() * 2);
        for (m, s) in &items {
            ctx.out.bulk(m);
            ctx.out.double(*s);
        }
    }
    Ok(())
}

fn zpopmin(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    zpop_generic(ctx, a, false)
}

fn zpopmax(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    zpop_generic(ctx, a, true)
}

fn zmpop(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let numkeys = coll::ranged_msg(a[1], 1, i64::MAX, "numkeys should be greater than 0")? as usize;
    let where_idx = numkeys.saturating_add(2);
    if where_idx >= a.len() {
        return Err(CmdError::Syntax);
    }
    let max = if eq(a[where_idx], "min") {
        false
    } else if eq(a[where_idx], "max") {
        true
    } else {
        return Err(CmdError::Syntax);
    };
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
    match pop_from(ctx, &a[2..where_idx], max, count.unwrap_or(1))? {
        None => ctx.out.null_array(),
        Some((key, items)) => {
            ctx.out.array(2);
            ctx.out.bulk(&key);
            ctx.out.array(items.len());
            for (m, s) in &items {
                ctx.out.array(2);
                ctx.out.bulk(m);
                ctx.out.double(*s);
            }
        }
    }
    Ok(())
}

fn zrandmember(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    if a.len() == 2 {
        let k = ctx.read_key(a[1]);
        match opt(k.get(), zset)?.and_then(|z| z.random(rand_u64())) {
            Some((m, _)) => ctx.out.bulk(&m),
            None => ctx.out.null(),
        }
        return Ok(());
    }
    let count = coll::ranged(a[2], -i64::MAX, i64::MAX)?;
    let withscores = match a.len() {
        3 => false,
        4 if eq(a[3], "withscores") => {
            if !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
                return Err(CmdError::msg("ERR value is out of range"));
            }
            true
        }
        _ => return Err(CmdError::Syntax),
    };
    let k = ctx.read_key(a[1]);
    let Some(z) = opt(k.get(), zset)? else {
        drop(k);
        ctx.out.array(0);
        return Ok(());
    };
    let items: Vec<(Vec<u8>, f64)> = if count < 0 {
        (0..count.unsigned_abs())
            .filter_map(|_| z.random(rand_u64()))
            .collect()
    } else if count as usize >= z.len() {
        z.collect(0, z.len() - 1, false)
    } else {
        pick_distinct(z.collect(0, z.len() - 1, false), count as usize)
    };
    drop(k);
    reply_pairs(ctx, &items, withscores);
    Ok(())
}

// ------------------------------------------------------------ algebra

#[derive(Clone, Copy, PartialEq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Agg {
    Sum,
    Min,
    Max,
}

fn aggregate(target: &mut f64, v: f64, agg: Agg) {
    match agg {
        Agg::Sum => {
            *target += v;
            // +inf + -inf is NaN; Redis's convention is 0.
            if target.is_nan() {
                *target = 0.0;
            }
        }
        // As Redis compares: a NaN `v` (a weighted inf times 0) loses, and
        // of 0 and -0 the score already there stays.
        Agg::Min => {
            if v < *target {
                *target = v;
            }
        }
        Agg::Max => {
            if v > *target {
                *target = v;
            }
        }
    }
}

/// A source's (member, score) list: zsets as stored, sets with score 1.
fn source_items(e: Option<&Entry>) -> Result<Option<Scored>, CmdError> {
    let Some(e) = e else { return Ok(None) };
    match &e.value {
        Value::ZSet(z) => Ok(Some(if z.is_empty() {
            Vec::new()
        } else {
            z.collect(0, z.len() - 1, false)
        })),
        Value::Set(s) => Ok(Some(s.members().into_iter().map(|m| (m, 1.0)).collect())),
        _ => Err(CmdError::WrongType),
    }
}

struct AlgebraArgs {
    keys_at: usize,
    numkeys: usize,
    weights: Vec<f64>,
    agg: Agg,
    withscores: bool,
    limit: usize,
}

/// Parses `numkeys key... [WEIGHTS ...] [AGGREGATE ...] [WITHSCORES]`
/// starting at `at`. Sources are type-checked (by `check`) between the
/// keys and the options, as Redis does.
fn parse_algebra(
    ctx: &Ctx<'_>,
    a: &[&[u8]],
    at: usize,
    op: SetOp,
    store: bool,
    card: bool,
) -> Result<AlgebraArgs, CmdError> {
    let numkeys = int(a[at])?;
    if numkeys < 1 {
        let name = String::from_utf8_lossy(a[0]).to_lowercase();
        return Err(CmdError::msg(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        )));
    }
    let numkeys = numkeys as usize;
    if numkeys > a.len() - at - 1 {
        return Err(CmdError::Syntax);
    }
    let keys_at = at + 1;
    // Type check now (errors before option errors).
    for key in &a[keys_at..keys_at + numkeys] {
        let k = ctx.read_key(key);
        if let Some(e) = k.get() {
            if !matches!(e.value, Value::ZSet(_) | Value::Set(_)) {
                return Err(CmdError::WrongType);
            }
        }
    }
    let mut r = AlgebraArgs {
        keys_at,
        numkeys,
        weights: vec![1.0; numkeys],
        agg: Agg::Sum,
        withscores: false,
        limit: 0,
    };
    let mut j = keys_at + numkeys;
    while j < a.len() {
        let remaining = a.len() - j;
        if op != SetOp::Diff && !card && remaining > numkeys && eq(a[j], "weights") {
            j += 1;
            for w in r.weights.iter_mut() {
                *w = num::parse_f64(a[j])
                    .ok_or_else(|| CmdError::msg("ERR weight value is not a float"))?;
                j += 1;
            }
        } else if op != SetOp::Diff && !card && remaining >= 2 && eq(a[j], "aggregate") {
            r.agg = if eq(a[j + 1], "sum") {
                Agg::Sum
            } else if eq(a[j + 1], "min") {
                Agg::Min
            } else if eq(a[j + 1], "max") {
                Agg::Max
            } else {
                return Err(CmdError::Syntax);
            };
            j += 2;
        } else if !store && !card && eq(a[j], "withscores") {
            r.withscores = true;
            j += 1;
        } else if card && remaining >= 2 && eq(a[j], "limit") {
            r.limit = coll::ranged_msg(a[j + 1], 0, i64::MAX, "LIMIT can't be negative")? as usize;
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(r)
}

/// Computes the operation over sources locked in `ml` from slot `first`.
fn compute(
    ml: &mut MultiLock<'_>,
    keys: &[&[u8]],
    first: usize,
    op: SetOp,
    p: &AlgebraArgs,
) -> Result<Vec<(Vec<u8>, f64)>, CmdError> {
    let mut srcs = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        srcs.push((source_items(ml.get(first + i, k))?, p.weights[i]));
    }
    let weighted = |s: f64, w: f64| {
        let v = s * w;
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };
    let mut out: Vec<(Vec<u8>, f64)> = match op {
        SetOp::Diff => {
            let Some(first) = srcs[0].0.take() else {
                return Ok(Vec::new());
            };
            let others: Vec<std::collections::HashSet<Vec<u8>>> = srcs[1..]
                .iter()
                .filter_map(|(s, _)| s.as_ref())
                .map(|s| s.iter().map(|(m, _)| m.clone()).collect())
                .collect();
            first
                .into_iter()
                .filter(|(m, _)| !others.iter().any(|o| o.contains(m)))
                .collect()
        }
        SetOp::Inter => {
            if srcs
                .iter()
                .any(|(s, _)| s.as_ref().is_none_or(|v| v.is_empty()))
            {
                return Ok(Vec::new());
            }
            // Smallest first (stable), as Redis orders the sources.
            srcs.sort_by_key(|(s, _)| s.as_ref().map_or(0, |v| v.len()));
            let maps: Vec<std::collections::HashMap<&[u8], f64>> = srcs[1..]
                .iter()
                .map(|(s, _)| {
                    s.as_ref()
                        .expect("checked")
                        .iter()
                        .map(|(m, sc)| (m.as_slice(), *sc))
                        .collect()
                })
                .collect();
            let mut res = Vec::new();
            'outer: for (m, s) in srcs[0].0.as_ref().expect("checked") {
                let mut score = weighted(*s, srcs[0].1);
                for (i, map) in maps.iter().enumerate() {
                    match map.get(m.as_slice()) {
                        // Only the first source's product has a NaN made 0
                        // in Redis's ZINTER; a later one (inf times a 0
                        // weight) goes into the aggregate as NaN, so SUM
                        // gives 0 and MIN/MAX keep the score so far.
                        Some(v) => aggregate(&mut score, *v * srcs[i + 1].1, p.agg),
                        None => continue 'outer,
                    }
                }
                res.push((m.clone(), score));
            }
            res
        }
        SetOp::Union => {
            srcs.sort_by_key(|(s, _)| s.as_ref().map_or(0, |v| v.len()));
            let mut idx: std::collections::HashMap<Vec<u8>, usize> =
                std::collections::HashMap::new();
            let mut res: Vec<(Vec<u8>, f64)> = Vec::new();
            for (s, w) in &srcs {
                for (m, sc) in s.iter().flatten() {
                    let v = weighted(*sc, *w);
                    match idx.get(m) {
                        Some(&i) => aggregate(&mut res[i].1, v, p.agg),
                        None => {
                            idx.insert(m.clone(), res.len());
                            res.push((m.clone(), v));
                        }
                    }
                }
            }
            res
        }
    };
    out.sort_by(|a, b| {
        a.1.partial_cmp(&b.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.0.cmp(&b.0))
    });
    Ok(out)
}

fn algebra(ctx: &mut Ctx<'_>, a: &[&[u8]], op: SetOp) -> CmdResult {
    let p = parse_algebra(ctx, a, 1, op, false, false)?;
    let keys = &a[p.keys_at..p.keys_at + p.numkeys];
    let mut ml = ctx.lock_keys(keys);
    let items = compute(&mut ml, keys, 0, op, &p)?;
    drop(ml);
    reply_pairs(ctx, &items, p.withscores);
    Ok(())
}

fn algebra_store(ctx: &mut Ctx<'_>, a: &[&[u8]], op: SetOp) -> CmdResult {
    let p = parse_algebra(ctx, a, 2, op, true, false)?;
    let lim = limits(ctx);
    let mut keys: Vec<&[u8]> = vec![a[1]];
    keys.extend_from_slice(&a[p.keys_at..p.keys_at + p.numkeys]);
    let mut ml = ctx.lock_keys(&keys);
    let items = compute(&mut ml, &keys[1..], 1, op, &p)?;
    let event: &[u8] = match op {
        SetOp::Union => b"zunionstore",
        SetOp::Inter => b"zinterstore",
        SetOp::Diff => b"zdiffstore",
    };
    store_result(ctx, &mut ml, 0, a[1], &items, &lim, event);
    drop(ml);
    ctx.out.int(items.len() as i64);
    Ok(())
}

fn zunion(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    algebra(ctx, a, SetOp::Union)
}

fn zinter(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    algebra(ctx, a, SetOp::Inter)
}

fn zdiff(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    algebra(ctx, a, SetOp::Diff)
}

fn zunionstore(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    algebra_store(ctx, a, SetOp::Union)
}

fn zinterstore(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    algebra_store(ctx, a, SetOp::Inter)
}

fn zdiffstore(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    algebra_store(ctx, a, SetOp::Diff)
}

fn zintercard(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let p = parse_algebra(ctx, a, 1, SetOp::Inter, false, true)?;
    let keys = &a[p.keys_at..p.keys_at + p.numkeys];
    let mut ml = ctx.lock_keys(keys);
    let mut n = compute(&mut ml, keys, 0, SetOp::Inter, &p)?.len();
    drop(ml);
    if p.limit > 0 {
        n = n.min(p.limit);
    }
    ctx.out.int(n as i64);
    Ok(())
}

fn bzpop_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], max: bool) -> CmdResult {
    let deadline = blocking::parse_timeout(a[a.len() - 1], ctx.now_ms)?;
    blocking::pop_or_block(
        ctx,
        a,
        &a[1..a.len() - 1],
        Kind::ZSet { max, count: None },
        deadline,
    )
}

fn bzpopmin(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    bzpop_generic(ctx, a, false)
}

fn bzpopmax(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    bzpop_generic(ctx, a, true)
}

fn bzmpop(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    // As Redis: numkeys, the keys, MIN|MAX and COUNT are checked before
    // the timeout.
    let (keys, min, count) = blocking::parse_mpop(a, 2, "min", "max")?;
    let deadline = blocking::parse_timeout(a[1], ctx.now_ms)?;
    blocking::pop_or_block(
        ctx,
        a,
        &keys,
        Kind::ZSet {
            max: !min,
            count: Some(count.unwrap_or(1)),
        },
        deadline,
    )
}

fn zscan(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let cursor = coll::parse_cursor(a[2])?;
    let k = ctx.read_key(a[1]);
    let Some(z) = opt(k.get(), zset)? else {
        drop(k);
        coll::empty_scan(ctx);
        return Ok(());
    };
    let o = coll::parse_scan_opts(a, 3)?;
    let (next, items) = coll::scan_loop(cursor, &o, |c, out| {
        z.scan(c, |m, s| {
            if coll::matches(&o, m) {
                out.push(m.to_vec());
                out.push(coll::fmt_score(s));
            }
        })
    });
    drop(k);
    coll::scan_reply(ctx, next, &items);
    Ok(())
}
