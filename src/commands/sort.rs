//! SORT and SORT_RO over lists, sets and sorted sets: BY (with `*` and
//! `->field` patterns), LIMIT, GET (`#` = the element), ASC/DESC, ALPHA,
//! STORE. Follows Redis's sortCommandGeneric, including its "don't sort"
//! cases (BY without `*`) and its LIMIT clamping.
//!
//! The source is copied out under its lock, then BY/GET keys are read one
//! at a time (they may live in any shard; holding them all would need
//! every shard locked). STORE writes the result as a list and logs it as
//! DEL + RPUSH in one record.

use std::cmp::Ordering;

use basalt_storage::zset::ZSet;
use basalt_storage::{Entry, List, Value};

use super::args::{eq, int};
use super::coll::limits;
use super::flags::*;
use super::string::str_bytes;
use super::{cmd, CmdError, CmdResult, CommandSpec, Ctx};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "generic",
        ..cmd("sort", -2, WRITE | DENYOOM, sort)
    },
    CommandSpec {
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "generic",
        since: "7.0.0",
        ..cmd("sort_ro", -2, READONLY, sort_ro)
    },
];

/// Redis's lookupKeyByPattern: the string (or hash field with `->`) that
/// `pattern` names for element `sub`; None when absent or not a string.
fn by_pattern(ctx: &Ctx<'_>, pattern: &[u8], sub: &[u8]) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(sub.to_vec());
    }
    let star = pattern.iter().position(|&c| c == b'*')?;
    let after = &pattern[star + 1..];
    let arrow = after
        .windows(2)
        .position(|w| w == b"->")
        .filter(|&i| i + 2 < after.len());
    let (post, field) = match arrow {
        Some(i) => (&after[..i], Some(&after[i + 2..])),
        None => (after, None),
    };
    let mut key = Vec::with_capacity(pattern.len() + sub.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(sub);
    key.extend_from_slice(post);
    let k = ctx.read_key(&key);
    let e = k.get()?;
    match (field, &e.value) {
        (Some(f), Value::Hash(h)) => h.get(f).map(|v| v.to_vec()),
        (None, v) => {
            let mut buf = itoa::Buffer::new();
            str_bytes(v, &mut buf).map(|b| b.to_vec())
        }
        _ => None,
    }
}

fn sort(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    sort_generic(ctx, a, false)
}

fn sort_ro(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    sort_generic(ctx, a, true)
}

/// ALPHA order. Redis compares with `strcoll` (C strings: up to the first
/// NUL byte; Basalt has only the C locale's byte order), or byte by byte
/// over the whole string with STORE.
fn alpha_cmp(x: &[u8], y: &[u8], store: bool) -> Ordering {
    if store {
        return x.cmp(y);
    }
    fn c_str(b: &[u8]) -> &[u8] {
        match b.iter().position(|&c| c == 0) {
            Some(n) => &b[..n],
            None => b,
        }
    }
    c_str(x).cmp(c_str(y))
}

fn sort_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], readonly: bool) -> CmdResult {
    let (mut desc, mut alpha, mut dontsort) = (false, false, false);
    let (mut limit_start, mut limit_count) = (0i64, -1i64);
    let mut store: Option<&[u8]> = None;
    let mut by: Option<&[u8]> = None;
    let mut gets: Vec<&[u8]> = Vec::new();
    // BY/GET patterns read arbitrary keys: only for users that may read
    // every key with this command (Redis's full-key-access check).
    let full_keys = ctx
        .client
        .user
        .unrestricted
        .load(std::sync::atomic::Ordering::Relaxed)
        || super::table()
            .get(a[0])
            .is_some_and(|e| ctx.client.rules().full_key_read(e, a));
    let mut j = 2;
    while j < a.len() {
        let left = a.len() - j - 1;
        if eq(a[j], "asc") {
            desc = false;
        } else if eq(a[j], "desc") {
            desc = true;
        } else if eq(a[j], "alpha") {
            alpha = true;
        } else if eq(a[j], "limit") && left >= 2 {
            limit_start = int(a[j + 1])?;
            limit_count = int(a[j + 2])?;
            j += 2;
        } else if !readonly && eq(a[j], "store") && left >= 1 {
            store = Some(a[j + 1]);
            j += 1;
        } else if eq(a[j], "by") && left >= 1 {
            by = Some(a[j + 1]);
            if !a[j + 1].contains(&b'*') {
                dontsort = true;
            } else if !full_keys {
                return Err(CmdError::msg(
                    "ERR BY option of SORT denied due to insufficient ACL permissions.",
                ));
            }
            j += 1;
        } else if eq(a[j], "get") && left >= 1 {
            if !full_keys {
                return Err(CmdError::msg(
                    "ERR GET option of SORT denied due to insufficient ACL permissions.",
                ));
            }
            gets.push(a[j + 1]);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }

    // Copy the elements out, in the source's own order.
    #[derive(PartialEq)]
    enum Src {
        List,
        Set,
        ZSet,
    }
    let (kind, mut elems) = {
        let mut k = ctx.read_key(a[1]);
        // Redis's SORT (and SORT_RO) converts a listpack sorted set to a
        // skiplist in place: OBJECT ENCODING says so afterwards, and a
        // later score of -0 keeps its sign.
        let packed = matches!(
            k.get().map(|e| &e.value),
            Some(Value::ZSet(ZSet::Packed(_)))
        );
        // get_mut only then: it hands the entry to a running snapshot.
        if packed {
            if let Some(Value::ZSet(z)) = k.get_mut().map(|e| &mut e.value) {
                z.upgrade_to_skip();
            }
        }
        match k.get().map(|e| &e.value) {
            None => (Src::List, Vec::new()),
            Some(Value::List(l)) => (Src::List, l.to_vec()),
            Some(Value::Set(s)) => (Src::Set, s.members()),
            Some(Value::ZSet(z)) => {
                let mut v = Vec::with_capacity(z.len());
                z.for_each(|m, _| v.push(m.to_vec()));
                (Src::ZSet, v)
            }
            Some(_) => return Err(CmdError::WrongType),
        }
    };
    // A set has no order of its own: with STORE, sort it so the stored
    // result is deterministic.
    if dontsort && kind == Src::Set && store.is_some() {
        dontsort = false;
        alpha = true;
        by = None;
    }
    let len = elems.len() as i64;
    let mut start = limit_start.max(0);
    let mut end = if limit_count < 0 {
        len - 1
    } else {
        start + limit_count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }
    if dontsort {
        // Native order; DESC reverses it for lists and zsets.
        if desc && kind != Src::Set {
            elems.reverse();
        }
    } else {
        let mut keyed: Vec<(Vec<u8>, Option<Vec<u8>>, f64)> = Vec::with_capacity(elems.len());
        let mut conv_error = false;
        for e in elems {
            let byval = match by {
                Some(p) => by_pattern(ctx, p, &e),
                None => Some(e.clone()),
            };
            let mut score = 0.0;
            if !alpha {
                if let Some(b) = &byval {
                    match crate::num::parse_f64_loose(b) {
                        Some(v) => score = v,
                        None => conv_error = true,
                    }
                }
            }
            keyed.push((e, if alpha && by.is_some() { byval } else { None }, score));
        }
        if conv_error {
            return Err(CmdError::msg(
                "ERR One or more scores can't be converted into double",
            ));
        }
        let by_given = by.is_some();
        keyed.sort_by(|x, y| {
            let c = if !alpha {
                x.2.partial_cmp(&y.2)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| x.0.cmp(&y.0))
            } else if by_given {
                match (&x.1, &y.1) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (Some(p), Some(q)) => alpha_cmp(p, q, store.is_some()),
                }
            } else {
                alpha_cmp(&x.0, &y.0, store.is_some())
            };
            if desc {
                c.reverse()
            } else {
                c
            }
        });
        elems = keyed.into_iter().map(|k| k.0).collect();
    }
    let picked: &[Vec<u8>] = if start <= end && end >= 0 {
        &elems[start as usize..=end as usize]
    } else {
        &[]
    };

    // Output rows: the element, or one value per GET.
    let mut out: Vec<Option<Vec<u8>>> = Vec::new();
    for e in picked {
        if gets.is_empty() {
            out.push(Some(e.clone()));
        }
        for g in &gets {
            out.push(by_pattern(ctx, g, e));
        }
    }
    match store {
        None => {
            ctx.out.array(out.len());
            for v in &out {
                match v {
                    Some(b) => ctx.out.bulk(b),
                    None => ctx.out.null(),
                }
            }
        }
        Some(dst) => {
            let lim = limits(ctx);
            let mut k = ctx.write_key(dst);
            if out.is_empty() {
                if k.remove().is_some() {
                    ctx.propagate(&[b"DEL", dst]);
                }
            } else {
                let items: Vec<&[u8]> = out.iter().map(|v| v.as_deref().unwrap_or(b"")).collect();
                let mut l = List::new();
                l.push(&items, false, &lim);
                k.insert(Entry::new(Value::List(l)));
                let mut rec: Vec<&[u8]> = vec![b"RPUSH", dst];
                rec.extend_from_slice(&items);
                ctx.propagate_many(&[&[b"DEL", dst], &rec]);
                crate::blocking::serve(ctx, dst, &mut k);
            }
            drop(k);
            ctx.out.int(out.len() as i64);
        }
    }
    Ok(())
}
