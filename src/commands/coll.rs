//! Helpers shared by the collection families (hash, set, list, zset):
//! typed access to a key's value, encoding limits, randomness and the
//! *SCAN option parsing.

use std::cell::Cell;

use basalt_storage::{glob_match, Entry, Hash, Limits, List, Set, Value, ZSet};

use super::args::{eq, int};
use super::{CmdError, Ctx};

macro_rules! typed {
    ($get:ident, $get_mut:ident, $variant:ident, $ty:ty) => {
        /// The value as this type, or WRONGTYPE.
        pub fn $get(e: &Entry) -> Result<&$ty, CmdError> {
            match &e.value {
                Value::$variant(x) => Ok(x),
                _ => Err(CmdError::WrongType),
            }
        }

        pub fn $get_mut(e: &mut Entry) -> Result<&mut $ty, CmdError> {
            match &mut e.value {
                Value::$variant(x) => Ok(x),
                _ => Err(CmdError::WrongType),
            }
        }
    };
}

typed!(hash, hash_mut, Hash, Hash);
typed!(set, set_mut, Set, Set);
typed!(list, list_mut, List, List);
typed!(zset, zset_mut, ZSet, ZSet);

/// Type-checks an optional entry.
pub fn opt<'e, T>(
    e: Option<&'e Entry>,
    f: fn(&'e Entry) -> Result<&'e T, CmdError>,
) -> Result<Option<&'e T>, CmdError> {
    e.map(f).transpose()
}

pub fn limits(ctx: &Ctx<'_>) -> Limits {
    ctx.srv.config.read().limits
}

thread_local! {
    static RNG: Cell<u64> = Cell::new({
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
        let local = 0u8;
        (t ^ (&local as *const u8 as u64).rotate_left(32)) | 1
    });
}

/// A pseudo-random u64 (xorshift64*; not for cryptography).
pub fn rand_u64() -> u64 {
    RNG.with(|r| {
        let mut x = r.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        r.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

pub struct ScanOpts<'a> {
    pub count: usize,
    pub pattern: Option<&'a [u8]>,
}

/// SCAN's cursor argument.
pub fn parse_cursor(b: &[u8]) -> Result<u64, CmdError> {
    crate::num::parse_cursor(b).ok_or_else(|| CmdError::msg("ERR invalid cursor"))
}

/// MATCH / COUNT options from `a[from..]`.
pub fn parse_scan_opts<'a>(a: &[&'a [u8]], from: usize) -> Result<ScanOpts<'a>, CmdError> {
    let mut o = ScanOpts {
        count: 10,
        pattern: None,
    };
    let mut j = from;
    while j < a.len() {
        let has = j + 1 < a.len();
        if eq(a[j], "count") && has {
            let c = int(a[j + 1])?;
            if c < 1 {
                return Err(CmdError::Syntax);
            }
            o.count = c as usize;
        } else if eq(a[j], "match") && has {
            o.pattern = Some(a[j + 1]).filter(|p| *p != b"*");
        } else {
            return Err(CmdError::Syntax);
        }
        j += 2;
    }
    Ok(o)
}

/// Runs `step` (one table bucket per call, returning the next cursor)
/// until `count` items or `count * 10` buckets, as Redis's scan does.
pub fn scan_loop(
    mut cursor: u64,
    o: &ScanOpts<'_>,
    mut step: impl FnMut(u64, &mut Vec<Vec<u8>>) -> u64,
) -> (u64, Vec<Vec<u8>>) {
    let mut out = Vec::new();
    let mut iters = o.count.saturating_mul(10);
    loop {
        cursor = step(cursor, &mut out);
        iters -= 1;
        if cursor == 0 || iters == 0 || out.len() >= o.count {
            break;
        }
    }
    (cursor, out)
}

pub fn matches(o: &ScanOpts<'_>, item: &[u8]) -> bool {
    o.pattern.is_none_or(|p| glob_match(p, item, false))
}

pub fn scan_reply(ctx: &mut Ctx<'_>, cursor: u64, items: &[Vec<u8>]) {
    ctx.out.array(2);
    ctx.out.bulk(itoa::Buffer::new().format(cursor).as_bytes());
    ctx.out.array(items.len());
    for i in items {
        ctx.out.bulk(i);
    }
}

/// Redis's reply to a *SCAN on a missing key.
pub fn empty_scan(ctx: &mut Ctx<'_>) {
    ctx.out.array(2);
    ctx.out.bulk(b"0");
    ctx.out.array(0);
}

/// An integer argument in `[min, max]`: not an integer gives the usual
/// error, out of range names the bounds (getRangeLongFromObjectOrReply).
pub fn ranged(b: &[u8], min: i64, max: i64) -> Result<i64, CmdError> {
    let v = int(b)?;
    if v < min || v > max {
        return Err(CmdError::msg(format!(
            "ERR value is out of range, value must between {min} and {max}"
        )));
    }
    Ok(v)
}

/// Formats a double as Redis's replies and logs do (%.17g).
pub fn fmt_score(d: f64) -> Vec<u8> {
    let mut v = Vec::with_capacity(24);
    crate::num::fmt_f64(d, &mut v);
    v
}

/// An integer argument in `[min, max]`; any failure replies `msg`.
pub fn ranged_msg(b: &[u8], min: i64, max: i64, msg: &str) -> Result<i64, CmdError> {
    match crate::num::parse_i64(b) {
        Some(v) if v >= min && v <= max => Ok(v),
        _ => Err(CmdError::msg(format!("ERR {msg}"))),
    }
}

/// Redis's getPositiveLongFromObjectOrReply with its default message.
pub fn positive(b: &[u8]) -> Result<i64, CmdError> {
    ranged_msg(b, 0, i64::MAX, "value is out of range, must be positive")
}
