//! The GEO commands over sorted sets whose scores are 52-bit geohashes
//! (Redis's `geo.c`): GEOADD (a ZADD with computed scores), GEOPOS,
//! GEODIST, GEOHASH, and the searches GEORADIUS[BYMEMBER][_RO],
//! GEOSEARCH and GEOSEARCHSTORE. The arithmetic lives in
//! [`crate::geohash`]; here are argument parsing in Redis's order (it
//! decides which error wins), the scan of the nine cells in Redis's order,
//! its two sorts, and the replies.

use basalt_storage::zset::ScoreRange;
use basalt_storage::ZSet;

use super::args::eq;
use super::coll::{limits, opt, zset};
use super::flags::*;
use super::zset::{store_result, zadd_generic, AddFlags};
use super::{cmd, CmdError, CmdResult, CommandSpec, Ctx};
use crate::geohash::{self, Shape, ShapeKind};
use crate::num;

const fn k1(mut c: CommandSpec) -> CommandSpec {
    c.first_key = 1;
    c.last_key = 1;
    c.step = 1;
    c.group = "geo";
    c
}

const fn since(mut c: CommandSpec, v: &'static str) -> CommandSpec {
    c.since = v;
    c
}

pub static COMMANDS: &[CommandSpec] = &[
    since(k1(cmd("geoadd", -5, WRITE | DENYOOM, geoadd)), "3.2.0"),
    since(k1(cmd("geodist", -4, READONLY, geodist)), "3.2.0"),
    since(k1(cmd("geohash", -2, READONLY, geohash_cmd)), "3.2.0"),
    since(k1(cmd("geopos", -2, READONLY, geopos)), "3.2.0"),
    // STORE/STOREDIST keys are found by keyword (movable keys: EXEC
    // plans these on every shard, see multi.rs).
    since(
        k1(cmd("georadius", -6, WRITE | DENYOOM, georadius)),
        "3.2.0",
    ),
    since(
        k1(cmd(
            "georadiusbymember",
            -5,
            WRITE | DENYOOM,
            georadiusbymember,
        )),
        "3.2.0",
    ),
    since(
        k1(cmd("georadius_ro", -6, READONLY, georadius_ro)),
        "3.2.10",
    ),
    since(
        k1(cmd(
            "georadiusbymember_ro",
            -5,
            READONLY,
            georadiusbymember_ro,
        )),
        "3.2.10",
    ),
    since(k1(cmd("geosearch", -7, READONLY, geosearch)), "6.2.0"),
    CommandSpec {
        last_key: 2,
        ..since(
            k1(cmd("geosearchstore", -8, WRITE | DENYOOM, geosearchstore)),
            "6.2.0",
        )
    },
];

// ------------------------------------------------------------ arguments

/// `extractLongLatOrReply`: a valid (longitude, latitude) pair.
fn lon_lat(lon: &[u8], lat: &[u8]) -> Result<[f64; 2], CmdError> {
    let x = num::parse_f64(lon).ok_or(CmdError::NotFloat)?;
    let y = num::parse_f64(lat).ok_or(CmdError::NotFloat)?;
    if !(geohash::LONG_MIN..=geohash::LONG_MAX).contains(&x)
        || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&y)
    {
        let mut m = b"ERR invalid longitude,latitude pair ".to_vec();
        num::fmt_fixed(x, 6, &mut m);
        m.push(b',');
        num::fmt_fixed(y, 6, &mut m);
        return Err(CmdError::Bytes(m));
    }
    Ok([x, y])
}

/// `extractUnitOrReply`: meters per unit.
fn unit(u: &[u8]) -> Result<f64, CmdError> {
    if eq(u, "m") {
        Ok(1.0)
    } else if eq(u, "km") {
        Ok(1000.0)
    } else if eq(u, "ft") {
        Ok(0.3048)
    } else if eq(u, "mi") {
        Ok(1609.34)
    } else {
        Err(CmdError::msg(
            "ERR unsupported unit provided. please use M, KM, FT, MI",
        ))
    }
}

/// `extractDistanceOrReply`: (radius, meters per unit).
fn radius_arg(r: &[u8], u: &[u8]) -> Result<(f64, f64), CmdError> {
    let d = num::parse_f64(r).ok_or_else(|| CmdError::msg("ERR need numeric radius"))?;
    if d < 0.0 {
        return Err(CmdError::msg("ERR radius cannot be negative"));
    }
    Ok((d, unit(u)?))
}

/// `extractBoxOrReply`: (width, height, meters per unit).
fn box_arg(w: &[u8], h: &[u8], u: &[u8]) -> Result<(f64, f64, f64), CmdError> {
    let w = num::parse_f64(w).ok_or_else(|| CmdError::msg("ERR need numeric width"))?;
    let h = num::parse_f64(h).ok_or_else(|| CmdError::msg("ERR need numeric height"))?;
    if h < 0.0 || w < 0.0 {
        return Err(CmdError::msg("ERR height or width cannot be negative"));
    }
    Ok((w, h, unit(u)?))
}

/// A member's decoded position (`longLatFromMember`).
fn member_xy(z: &ZSet, m: &[u8]) -> Result<[f64; 2], CmdError> {
    z.score(m)
        .and_then(geohash::decode_score)
        .ok_or_else(|| CmdError::msg("ERR could not decode requested zset member"))
}

// ------------------------------------------------------------ GEOADD

/// GEOADD key [NX|XX] [CH] lon lat member ...: runs as ZADD with the
/// cells' scores, and is logged as that ZADD.
fn geoadd(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let (mut xx, mut nx) = (false, false);
    let mut longidx = 2;
    while longidx < a.len() {
        let o = a[longidx];
        if eq(o, "nx") {
            nx = true;
        } else if eq(o, "xx") {
            xx = true;
        } else if !eq(o, "ch") {
            break;
        }
        longidx += 1;
    }
    if !(a.len() - longidx).is_multiple_of(3) || (xx && nx) {
        return Err(CmdError::Syntax);
    }
    let elements = (a.len() - longidx) / 3;
    let mut scores: Vec<Vec<u8>> = Vec::with_capacity(elements);
    for e in a[longidx..].chunks(3) {
        let [x, y] = lon_lat(e[0], e[1])?;
        // In range, so it encodes.
        let s = geohash::score_of(x, y).unwrap_or(0);
        scores.push(itoa::Buffer::new().format(s).as_bytes().to_vec());
    }
    let mut argv: Vec<&[u8]> = Vec::with_capacity(longidx + 2 * elements);
    argv.push(b"ZADD");
    argv.extend_from_slice(&a[1..longidx]);
    for (e, s) in a[longidx..].chunks(3).zip(&scores) {
        argv.push(s);
        argv.push(e[2]);
    }
    zadd_generic(ctx, &argv, AddFlags::default(), 2)
}

// ------------------------------------------------------------ point reads

fn geopos(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.read_key(a[1]);
    let z = opt(k.get(), zset)?;
    let pos: Vec<Option<[f64; 2]>> = a[2..]
        .iter()
        .map(|m| z.and_then(|z| z.score(m)).and_then(geohash::decode_score))
        .collect();
    drop(k);
    ctx.out.array(pos.len());
    for p in pos {
        match p {
            Some([x, y]) => {
                ctx.out.array(2);
                coord(ctx, x);
                coord(ctx, y);
            }
            None => ctx.out.null_array(),
        }
    }
    Ok(())
}

/// A coordinate as `addReplyHumanLongDouble` prints it.
fn coord(ctx: &mut Ctx<'_>, d: f64) {
    let mut s = Vec::with_capacity(32);
    num::fmt_human(d, &mut s);
    ctx.out.double_text(&s);
}

/// A distance as `addReplyDoubleDistance`: four decimals in a bulk
/// string, rounded as Redis's `fixedpoint_d2string` does (`llrint` of
/// d × 10⁴, ties to even, which "%.4f" does not always agree with).
fn distance_reply(ctx: &mut Ctx<'_>, d: f64) {
    ctx.out.bulk(&fixed4(d));
}

fn fixed4(d: f64) -> Vec<u8> {
    const DIGITS: usize = 4;
    if d == 0.0 {
        return b"0.0000".to_vec();
    }
    let scaled = d * 10000.0;
    // llrint on x86-64: out of range (and NaN) gives LLONG_MIN.
    const LIMIT: f64 = 9223372036854775808.0;
    let sv = if (-LIMIT..LIMIT).contains(&scaled) {
        scaled.round_ties_even() as i64
    } else {
        i64::MIN
    };
    let mut out = Vec::with_capacity(24);
    if sv < 0 {
        out.push(b'-');
    }
    let digits = sv.unsigned_abs().to_string();
    if digits.len() <= DIGITS {
        out.push(b'0');
        out.push(b'.');
        out.extend(std::iter::repeat_n(b'0', DIGITS - digits.len()));
        out.extend_from_slice(digits.as_bytes());
    } else {
        let (int, frac) = digits.split_at(digits.len() - DIGITS);
        out.extend_from_slice(int.as_bytes());
        out.push(b'.');
        out.extend_from_slice(frac.as_bytes());
    }
    out
}

fn geohash_cmd(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.read_key(a[1]);
    let z = opt(k.get(), zset)?;
    let hashes: Vec<Option<[u8; 11]>> = a[2..]
        .iter()
        .map(|m| {
            z.and_then(|z| z.score(m))
                .and_then(geohash::standard_geohash)
        })
        .collect();
    drop(k);
    ctx.out.array(hashes.len());
    for h in hashes {
        match h {
            Some(h) => ctx.out.bulk(&h),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

fn geodist(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let to_meter = match a.len() {
        5 => unit(a[4])?,
        4 => 1.0,
        _ => return Err(CmdError::Syntax),
    };
    let k = ctx.read_key(a[1]);
    let Some(z) = opt(k.get(), zset)? else {
        drop(k);
        ctx.out.null();
        return Ok(());
    };
    let d = match (z.score(a[2]), z.score(a[3])) {
        (Some(s1), Some(s2)) => geohash::decode_score(s1)
            .zip(geohash::decode_score(s2))
            .map(|(p, q)| geohash::distance(p[0], p[1], q[0], q[1]) / to_meter),
        _ => None,
    };
    drop(k);
    match d {
        Some(d) => distance_reply(ctx, d),
        None => ctx.out.null(),
    }
    Ok(())
}

// ------------------------------------------------------------ searches

const COORDS: u32 = 1 << 0;
const MEMBER: u32 = 1 << 1;
const NOSTORE: u32 = 1 << 2;
const SEARCH: u32 = 1 << 3;
const SEARCHSTORE: u32 = 1 << 4;

#[derive(Clone, Copy, PartialEq)]
enum Sort {
    None,
    Asc,
    Desc,
}

struct Query {
    shape: Shape,
    withdist: bool,
    withhash: bool,
    withcoord: bool,
    sort: Sort,
    any: bool,
    /// 0: no limit.
    count: u64,
    /// Whether a STORE/STOREDIST/GEOSEARCHSTORE destination is written.
    store: bool,
    storedist: bool,
}

/// Where the options start.
fn base_args(flags: u32) -> usize {
    if flags & COORDS != 0 {
        6
    } else if flags & MEMBER != 0 {
        5
    } else if flags & SEARCHSTORE != 0 {
        3
    } else {
        2
    }
}

/// The destination of a GEORADIUS[BYMEMBER] ... STORE/STOREDIST, found
/// by walking the options as the parser will (the last one wins). Only
/// chooses what to lock: the real parse reports any error.
fn store_key<'a>(a: &[&'a [u8]], flags: u32) -> Option<&'a [u8]> {
    if flags & SEARCHSTORE != 0 {
        return Some(a[1]);
    }
    if flags & (NOSTORE | SEARCH) != 0 {
        return None;
    }
    let mut key = None;
    let mut i = base_args(flags);
    while i < a.len() {
        let has_next = i + 1 < a.len();
        if ["withdist", "withhash", "withcoord", "any", "asc", "desc"]
            .iter()
            .any(|o| eq(a[i], o))
        {
        } else if eq(a[i], "count") && has_next {
            i += 1;
        } else if (eq(a[i], "store") || eq(a[i], "storedist")) && has_next {
            key = Some(a[i + 1]);
            i += 1;
        } else {
            return None;
        }
        i += 1;
    }
    key
}

/// The STORE and STOREDIST key positions of a GEORADIUS[BYMEMBER] `argv`
/// as Redis's key specs find them (COMMAND GETKEYS, ACL): the first of
/// each keyword from where the options start, the last argument never
/// being a keyword.
pub fn store_key_positions(name: &str, argv: &[&[u8]]) -> Vec<usize> {
    let start = match name {
        "georadius" => 6,
        "georadiusbymember" => 5,
        _ => return Vec::new(),
    };
    let end = argv.len().saturating_sub(1);
    ["store", "storedist"]
        .iter()
        .filter_map(|kw| (start..end).find(|&i| eq(argv[i], kw)).map(|i| i + 1))
        .collect()
}

/// Parses a search in `georadiusGeneric`'s order. `z` is the source
/// (None when missing: FROMMEMBER is then not looked up). The center of a
/// member search on a missing key stays unset: nothing is searched.
fn parse_query(a: &[&[u8]], flags: u32, z: Option<&ZSet>) -> Result<Query, CmdError> {
    let mut shape = Shape {
        xy: [0.0, 0.0],
        conversion: 1.0,
        kind: ShapeKind::Radius(0.0),
    };
    if flags & COORDS != 0 {
        shape.xy = lon_lat(a[2], a[3])?;
        let (r, conv) = radius_arg(a[4], a[5])?;
        shape.kind = ShapeKind::Radius(r);
        shape.conversion = conv;
    } else if flags & MEMBER != 0 {
        if let Some(z) = z {
            shape.xy = member_xy(z, a[2])?;
            let (r, conv) = radius_arg(a[3], a[4])?;
            shape.kind = ShapeKind::Radius(r);
            shape.conversion = conv;
        }
    }
    let base = base_args(flags);
    let mut q = Query {
        shape,
        withdist: false,
        withhash: false,
        withcoord: false,
        sort: Sort::None,
        any: false,
        count: 0,
        store: flags & SEARCHSTORE != 0,
        storedist: false,
    };
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let search = flags & SEARCH != 0;
    let rest = &a[base..];
    let remaining = rest.len();
    let mut i = 0;
    while i < remaining {
        let arg = rest[i];
        if eq(arg, "withdist") {
            q.withdist = true;
        } else if eq(arg, "withhash") {
            q.withhash = true;
        } else if eq(arg, "withcoord") {
            q.withcoord = true;
        } else if eq(arg, "any") {
            q.any = true;
        } else if eq(arg, "asc") {
            q.sort = Sort::Asc;
        } else if eq(arg, "desc") {
            q.sort = Sort::Desc;
        } else if eq(arg, "count") && i + 1 < remaining {
            let c = num::parse_i64(rest[i + 1]).ok_or(CmdError::NotInteger)?;
            if c <= 0 {
                return Err(CmdError::msg("ERR COUNT must be > 0"));
            }
            q.count = c as u64;
            i += 1;
        } else if (eq(arg, "store") || eq(arg, "storedist"))
            && i + 1 < remaining
            && flags & (NOSTORE | SEARCH) == 0
        {
            q.store = true;
            q.storedist = eq(arg, "storedist");
            i += 1;
        } else if eq(arg, "storedist") && search && flags & SEARCHSTORE != 0 {
            q.storedist = true;
        } else if eq(arg, "frommember") && i + 1 < remaining && search && !fromloc {
            if let Some(z) = z {
                q.shape.xy = member_xy(z, rest[i + 1])?;
            }
            frommember = true;
            i += 1;
        } else if eq(arg, "fromlonlat") && i + 2 < remaining && search && !frommember {
            q.shape.xy = lon_lat(rest[i + 1], rest[i + 2])?;
            fromloc = true;
            i += 2;
        } else if eq(arg, "byradius") && i + 2 < remaining && search && !bybox {
            let (r, conv) = radius_arg(rest[i + 1], rest[i + 2])?;
            q.shape.kind = ShapeKind::Radius(r);
            q.shape.conversion = conv;
            byradius = true;
            i += 2;
        } else if eq(arg, "bybox") && i + 3 < remaining && search && !byradius {
            let (w, h, conv) = box_arg(rest[i + 1], rest[i + 2], rest[i + 3])?;
            q.shape.kind = ShapeKind::Box {
                width: w,
                height: h,
            };
            q.shape.conversion = conv;
            bybox = true;
            i += 3;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if q.store && (q.withdist || q.withhash || q.withcoord) {
        return Err(CmdError::msg(format!(
            "ERR {} is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            if flags & SEARCHSTORE != 0 {
                "GEOSEARCHSTORE"
            } else {
                "STORE option in GEORADIUS"
            }
        )));
    }
    let name = super::error::c_str_trunc(a[0], usize::MAX);
    if search && !(frommember || fromloc) {
        let mut m = b"ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for ".to_vec();
        m.extend_from_slice(name);
        return Err(CmdError::Bytes(m));
    }
    if search && !(byradius || bybox) {
        let mut m = b"ERR exactly one of BYRADIUS and BYBOX can be specified for ".to_vec();
        m.extend_from_slice(name);
        return Err(CmdError::Bytes(m));
    }
    if q.any && q.count == 0 {
        return Err(CmdError::msg(
            "ERR the ANY argument requires COUNT argument",
        ));
    }
    Ok(q)
}

/// A point found: member, score, decoded position, distance in meters.
struct Point {
    member: Vec<u8>,
    score: f64,
    xy: [f64; 2],
    dist: f64,
}

/// `membersOfAllNeighbors`: scans the nine cells in Redis's order
/// (skipping a cell equal to the one scanned just before), each in score
/// order, keeping the points inside the shape; with `limit` (COUNT ANY)
/// it stops once that many were found.
fn scan(z: &ZSet, shape: &Shape, limit: u64) -> Vec<Point> {
    let cells = geohash::areas_for(shape);
    let mut out: Vec<Point> = Vec::new();
    let full = |out: &[Point]| limit != 0 && !out.is_empty() && out.len() as u64 >= limit;
    let mut last = 0usize;
    for i in 0..cells.len() {
        if cells[i].is_zero() {
            continue;
        }
        if last != 0 && cells[i] == cells[last] {
            continue;
        }
        if full(&out) {
            break;
        }
        let (min, max) = geohash::score_range(cells[i]);
        let range = ScoreRange {
            min: min as f64,
            max: max as f64,
            minex: false,
            maxex: true,
        };
        if let Some((lo, hi)) = z.score_ranks(&range) {
            // Visited in slices so that COUNT ANY stops soon after it has
            // enough; only points inside the shape copy their member.
            let mut r = lo;
            let mut stop = false;
            while r <= hi && !stop {
                let end = hi.min(r + 63);
                z.visit(r, end, false, |member, score| {
                    if stop {
                        return;
                    }
                    if let Some(xy) = geohash::decode_score(score) {
                        if let Some(dist) = geohash::within(shape, xy) {
                            out.push(Point {
                                member: member.to_vec(),
                                score,
                                xy,
                                dist,
                            });
                        }
                    }
                    stop = full(&out);
                });
                r = end + 1;
            }
        }
        last = i;
    }
    out
}

/// The qsort comparator of geo.c (`sort_gp_asc`; DESC negates it).
fn cmp_dist(a: &Point, b: &Point, desc: bool) -> i32 {
    let c = if a.dist > b.dist {
        1
    } else if a.dist == b.dist {
        0
    } else {
        -1
    };
    if desc {
        -c
    } else {
        c
    }
}

/// glibc's `qsort` (2.36, the C library of the reference build) for
/// this element size: its merge sort (`msort`), reproduced step for step
/// so that equal (and NaN) distances keep the order Redis's replies show.
fn msort(v: &mut Vec<Point>, desc: bool) {
    fn rec(idx: &mut [usize], tmp: &mut Vec<usize>, pts: &[Point], desc: bool) {
        let n = idx.len();
        if n <= 1 {
            return;
        }
        let n1 = n / 2;
        {
            let (b1, b2) = idx.split_at_mut(n1);
            rec(b1, tmp, pts, desc);
            rec(b2, tmp, pts, desc);
        }
        tmp.clear();
        let (mut i, mut j) = (0, n1);
        while i < n1 && j < n {
            if cmp_dist(&pts[idx[i]], &pts[idx[j]], desc) <= 0 {
                tmp.push(idx[i]);
                i += 1;
            } else {
                tmp.push(idx[j]);
                j += 1;
            }
        }
        tmp.extend_from_slice(&idx[i..n1]);
        // What is left of the second half is already in place.
        let t = tmp.len();
        idx[..t].copy_from_slice(tmp);
    }
    let mut idx: Vec<usize> = (0..v.len()).collect();
    let mut tmp = Vec::with_capacity(v.len());
    rec(&mut idx, &mut tmp, v, desc);
    permute(v, &idx);
}

/// Reorders `v` so that position i holds the old `v[idx[i]]`.
fn permute(v: &mut Vec<Point>, idx: &[usize]) {
    let mut old: Vec<Option<Point>> = std::mem::take(v).into_iter().map(Some).collect();
    v.extend(idx.iter().filter_map(|&i| old[i].take()));
}

/// Redis's `pqsort` (NetBSD's qsort, sorting only the parts that cover
/// ranks `lrange..=rrange`) as redis-server 7.0 has it, without the
/// later switch to insertion sort on a swap-free pass; reproduced step
/// for step over positions so that the first `rrange + 1` points, ties
/// included, come out in Redis's order.
fn pqsort(v: &mut Vec<Point>, lrange: usize, rrange: usize, desc: bool) {
    // Positions are in units of ES so that the "byte" bounds Redis
    // compares (`rrange` is the last byte of an element) keep their order.
    const ES: isize = 2;
    let mut idx: Vec<usize> = (0..v.len()).collect();
    let pts: &[Point] = v;
    let cmp = |idx: &[usize], x: isize, y: isize| -> i32 {
        cmp_dist(
            &pts[idx[(x / ES) as usize]],
            &pts[idx[(y / ES) as usize]],
            desc,
        )
    };
    let swap =
        |idx: &mut [usize], x: isize, y: isize| idx.swap((x / ES) as usize, (y / ES) as usize);
    let vecswap = |idx: &mut [usize], x: isize, y: isize, n: isize| {
        for k in 0..n / ES {
            idx.swap((x / ES + k) as usize, (y / ES + k) as usize);
        }
    };
    let med3 = |idx: &[usize], a: isize, b: isize, c: isize| -> isize {
        if cmp(idx, a, b) < 0 {
            if cmp(idx, b, c) < 0 {
                b
            } else if cmp(idx, a, c) < 0 {
                c
            } else {
                a
            }
        } else if cmp(idx, b, c) > 0 {
            b
        } else if cmp(idx, a, c) < 0 {
            a
        } else {
            c
        }
    };
    let lr = lrange as isize * ES;
    let rr = (rrange as isize + 1) * ES - 1;
    // (a, n) frames still to sort: C's recursion plus its tail loop.
    let mut stack: Vec<(isize, isize)> = vec![(0, idx.len() as isize)];
    while let Some((mut a, mut n)) = stack.pop() {
        loop {
            if n < 7 {
                let mut pm = a + ES;
                while pm < a + n * ES {
                    let mut pl = pm;
                    while pl > a && cmp(&idx, pl - ES, pl) > 0 {
                        swap(&mut idx, pl, pl - ES);
                        pl -= ES;
                    }
                    pm += ES;
                }
                break;
            }
            let mut pm = a + (n / 2) * ES;
            if n > 7 {
                let mut pl = a;
                let mut pn = a + (n - 1) * ES;
                if n > 40 {
                    let d = (n / 8) * ES;
                    pl = med3(&idx, pl, pl + d, pl + 2 * d);
                    pm = med3(&idx, pm - d, pm, pm + d);
                    pn = med3(&idx, pn - 2 * d, pn - d, pn);
                }
                pm = med3(&idx, pl, pm, pn);
            }
            swap(&mut idx, a, pm);
            let (mut pa, mut pb) = (a + ES, a + ES);
            let (mut pc, mut pd) = (a + (n - 1) * ES, a + (n - 1) * ES);
            loop {
                while pb <= pc {
                    let r = cmp(&idx, pb, a);
                    if r > 0 {
                        break;
                    }
                    if r == 0 {
                        swap(&mut idx, pa, pb);
                        pa += ES;
                    }
                    pb += ES;
                }
                while pb <= pc {
                    let r = cmp(&idx, pc, a);
                    if r < 0 {
                        break;
                    }
                    if r == 0 {
                        swap(&mut idx, pc, pd);
                        pd -= ES;
                    }
                    pc -= ES;
                }
                if pb > pc {
                    break;
                }
                swap(&mut idx, pb, pc);
                pb += ES;
                pc -= ES;
            }
            let pn = a + n * ES;
            let r = (pa - a).min(pb - pa);
            vecswap(&mut idx, a, pb - r, r);
            let r = (pd - pc).min(pn - pd - ES);
            vecswap(&mut idx, pb, pn - r, r);
            let outside = |l: isize, r: isize| (lr < l && rr < l) || (lr > r && rr > r);
            let r1 = pb - pa;
            let r2 = pd - pc;
            // C recurses into the left part first, then loops on the
            // right: pushed right first so the left runs first.
            let right =
                (r2 > ES && !outside(pn - r2, pn - r2 + r2 - 1)).then_some((pn - r2, r2 / ES));
            if r1 > ES && !outside(a, a + r1 - 1) {
                if let Some(rt) = right {
                    stack.push(rt);
                }
                stack.push((a, r1 / ES));
                break;
            }
            match right {
                Some((na, nn)) => {
                    a = na;
                    n = nn;
                }
                None => break,
            }
        }
    }
    permute(v, &idx);
}

/// `georadiusGeneric`.
fn search_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], src: usize, flags: u32) -> CmdResult {
    match store_key(a, flags) {
        None => {
            let k = ctx.read_key(a[src]);
            let z = opt(k.get(), zset)?;
            let q = parse_query(a, flags, z)?;
            let Some(z) = z else {
                drop(k);
                ctx.out.array(0);
                return Ok(());
            };
            let points = run(z, &q);
            drop(k);
            reply_points(ctx, &q, &points);
            Ok(())
        }
        Some(dst) => {
            let lim = limits(ctx);
            let mut ml = ctx.lock_keys(&[dst, a[src]]);
            // A read lookup of the source, as Redis's lookupKeyRead counts.
            ctx.count_lookup(ml.get(1, a[src]).is_some());
            let z = opt(ml.get(1, a[src]), zset)?;
            let q = parse_query(a, flags, z)?;
            let points = match z {
                Some(z) => run(z, &q),
                None => Vec::new(),
            };
            if !q.store {
                // Unreachable: the pre-scan and the parse agree. Answer
                // as the parse says anyway.
                drop(ml);
                reply_points(ctx, &q, &points);
                return Ok(());
            }
            let items: Vec<(Vec<u8>, f64)> = points
                .into_iter()
                .map(|p| {
                    let s = if q.storedist {
                        p.dist / q.shape.conversion
                    } else {
                        p.score
                    };
                    (p.member, s)
                })
                // A NaN distance (haversine's rounding just past an
                // antipode, if ever) cannot be a score: Redis would fail
                // an assertion storing it; here the point is left out.
                .filter(|(_, s)| !s.is_nan())
                .collect();
            let event: &[u8] = if flags & SEARCH != 0 {
                b"geosearchstore"
            } else {
                b"georadiusstore"
            };
            store_result(ctx, &mut ml, 0, dst, &items, &lim, event);
            drop(ml);
            ctx.out.int(items.len() as i64);
            Ok(())
        }
    }
}

/// The search proper: scan, then sort and cut as Redis does. Returns the
/// points to reply with or store (distances still in meters).
fn run(z: &ZSet, q: &Query) -> Vec<Point> {
    let mut sort = q.sort;
    if q.count != 0 && sort == Sort::None && !q.any {
        sort = Sort::Asc;
    }
    let mut points = scan(z, &q.shape, if q.any { q.count } else { 0 });
    let total = points.len();
    let returned = if q.count == 0 || (total as u64) < q.count {
        total
    } else {
        q.count as usize
    };
    // All of them with qsort, or only the first COUNT with pqsort (the
    // two order equal distances differently).
    if sort != Sort::None && total > 0 {
        let desc = sort == Sort::Desc;
        if returned == total {
            msort(&mut points, desc);
        } else {
            pqsort(&mut points, 0, returned - 1, desc);
        }
    }
    points.truncate(returned);
    points
}

fn reply_points(ctx: &mut Ctx<'_>, q: &Query, points: &[Point]) {
    let opts = q.withdist as usize + q.withcoord as usize + q.withhash as usize;
    ctx.out.array(points.len());
    for p in points {
        if opts > 0 {
            ctx.out.array(opts + 1);
        }
        ctx.out.bulk(&p.member);
        if q.withdist {
            distance_reply(ctx, p.dist / q.shape.conversion);
        }
        if q.withhash {
            ctx.out.int(score_as_i64(p.score));
        }
        if q.withcoord {
            ctx.out.array(2);
            coord(ctx, p.xy[0]);
            coord(ctx, p.xy[1]);
        }
    }
}

/// C's `(long long)score` on x86-64 (cvttsd2si: out of range is i64::MIN).
fn score_as_i64(s: f64) -> i64 {
    const LIMIT: f64 = 9223372036854775808.0;
    if (-LIMIT..LIMIT).contains(&s) {
        s as i64
    } else {
        i64::MIN
    }
}

fn georadius(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    search_generic(ctx, a, 1, COORDS)
}

fn georadiusbymember(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    search_generic(ctx, a, 1, MEMBER)
}

fn georadius_ro(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    search_generic(ctx, a, 1, COORDS | NOSTORE)
}

fn georadiusbymember_ro(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    search_generic(ctx, a, 1, MEMBER | NOSTORE)
}

fn geosearch(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    search_generic(ctx, a, 1, SEARCH)
}

fn geosearchstore(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    search_generic(ctx, a, 2, SEARCH | SEARCHSTORE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    fn pts(d: &[f64]) -> Vec<Point> {
        d.iter()
            .enumerate()
            .map(|(i, &dist)| Point {
                member: vec![b'a' + i as u8],
                score: 0.0,
                xy: [0.0, 0.0],
                dist,
            })
            .collect()
    }

    #[test]
    fn distances_round_as_redis() {
        let f = |d: f64| String::from_utf8(fixed4(d)).unwrap();
        assert_eq!(f(0.0), "0.0000");
        assert_eq!(f(-0.0), "0.0000");
        assert_eq!(f(0.0001), "0.0001");
        assert_eq!(f(6.06429515983917e-05), "0.0001");
        assert_eq!(f(10.01), "10.0100");
        assert_eq!(f(166274.15156960033), "166274.1516");
        // d × 10⁴ rounds to an exact .5: llrint goes to even ("%.4f"
        // gives ...9605), as GEODIST ... FT in redis-server 7.0.15.
        assert_eq!(f(61447597.96045), "61447597.9604");
        assert_eq!(f(f64::NAN), "-922337203685477.5808");
    }

    #[test]
    fn sorts_order_distances() {
        let d = [5.0, 1.0, 3.0, 3.0, 9.0, 0.0, 2.0, 8.0, 7.0, 6.0, 4.0, 3.0];
        let mut v = pts(&d);
        msort(&mut v, false);
        let got: Vec<f64> = v.iter().map(|p| p.dist).collect();
        let mut want = d.to_vec();
        want.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
        assert_eq!(got, want);
        // Stable: the three 3.0s keep their order.
        let threes: Vec<u8> = v
            .iter()
            .filter(|p| p.dist == 3.0)
            .map(|p| p.member[0])
            .collect();
        assert_eq!(threes, b"cdl");
        for k in 0..d.len() {
            let mut v = pts(&d);
            pqsort(&mut v, 0, k, true);
            let got: Vec<f64> = v.iter().take(k + 1).map(|p| p.dist).collect();
            let mut want = d.to_vec();
            want.sort_by(|a, b| b.partial_cmp(a).unwrap_or(Ordering::Equal));
            assert_eq!(got, want[..=k].to_vec(), "k={k}");
            assert_eq!(v.len(), d.len());
        }
    }
}
