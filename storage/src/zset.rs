//! Sorted sets. Small ones are one [`Packed`] buffer of elements kept in
//! (score, member) order (`listpack`; each element is one entry, the
//! score first in a compact form, see `encode_entry`). Past
//! `zset-max-listpack-entries` members or a member longer than
//! `zset-max-listpack-value` they become a skiplist with spans plus a
//! member → score [`Dict`] (`skiplist`): O(1) ZSCORE, O(log n) insert,
//! delete, rank and the start of any range, as Redis's `zskiplist`.
//!
//! The skiplist lives in an arena (`Vec<Node>`, links are `u32` indexes,
//! freed slots reused), so it needs no unsafe code and a node costs one
//! allocation for its level array only.
//!
//! Most operations are expressed through ascending 0-based ranks: a score
//! or lex range resolves to a rank interval, which is then read or
//! removed. Both encodings implement that small core.

use std::cmp::Ordering;

use crate::bytes::CompactBytes;
use crate::dict::{hash_key, Dict};
use crate::packed::Packed;
use crate::Limits;

/// A score interval with exclusive flags (ZRANGEBYSCORE's `(`).
#[derive(Clone, Copy, Debug)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub minex: bool,
    pub maxex: bool,
}

impl ScoreRange {
    pub fn gte_min(&self, v: f64) -> bool {
        if self.minex {
            v > self.min
        } else {
            v >= self.min
        }
    }
    pub fn lte_max(&self, v: f64) -> bool {
        if self.maxex {
            v < self.max
        } else {
            v <= self.max
        }
    }
    pub fn empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.minex || self.maxex))
    }
}

/// One end of a lex range: `-`, `+`, `[x` or `(x`.
#[derive(Clone, Debug)]
pub enum LexBound {
    NegInf,
    PosInf,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

#[derive(Clone, Debug)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    pub fn gte_min(&self, v: &[u8]) -> bool {
        match &self.min {
            LexBound::NegInf => true,
            LexBound::PosInf => false,
            LexBound::Incl(s) => v >= s.as_slice(),
            LexBound::Excl(s) => v > s.as_slice(),
        }
    }
    pub fn lte_max(&self, v: &[u8]) -> bool {
        match &self.max {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(s) => v <= s.as_slice(),
            LexBound::Excl(s) => v < s.as_slice(),
        }
    }
    pub fn empty(&self) -> bool {
        use LexBound::*;
        match (&self.min, &self.max) {
            (PosInf, _) | (_, NegInf) => true,
            (NegInf, _) | (_, PosInf) => false,
            (Incl(a) | Excl(a), Incl(b) | Excl(b)) => {
                let c = a.cmp(b);
                c == Ordering::Greater
                    || (c == Ordering::Equal
                        && !(matches!(self.min, Incl(_)) && matches!(self.max, Incl(_))))
            }
        }
    }
}

#[inline]
fn cmp_key(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    match s1.partial_cmp(&s2) {
        Some(Ordering::Equal) | None => m1.cmp(m2),
        Some(o) => o,
    }
}

// ---------------------------------------------------------------- skiplist

const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;
const MAX_LEVEL: usize = 32;

#[derive(Clone, Copy)]
struct Level {
    fwd: u32,
    span: u32,
}

#[derive(Clone)]
struct Node {
    ele: CompactBytes,
    score: f64,
    back: u32,
    lv: Box<[Level]>,
}

#[derive(Clone)]
pub struct SkipList {
    nodes: Vec<Node>,
    free: Vec<u32>,
    tail: u32,
    level: usize,
    len: usize,
    rng: u64,
}

impl Default for SkipList {
    fn default() -> Self {
        Self::new()
    }
}

impl SkipList {
    pub fn new() -> Self {
        let head = Node {
            ele: CompactBytes::new(b""),
            score: 0.0,
            back: NIL,
            lv: vec![Level { fwd: NIL, span: 0 }; MAX_LEVEL].into_boxed_slice(),
        };
        SkipList {
            nodes: vec![head],
            free: Vec::new(),
            tail: NIL,
            level: 1,
            len: 0,
            rng: 0x2545_f491_4f6c_dd1d,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn random_level(&mut self) -> usize {
        let mut l = 1;
        loop {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            if (self.rng & 0xffff) < 0x4000 && l < MAX_LEVEL {
                l += 1;
            } else {
                return l;
            }
        }
    }

    #[inline]
    fn n(&self, i: u32) -> &Node {
        &self.nodes[i as usize]
    }

    #[inline]
    fn fwd(&self, x: u32, i: usize) -> u32 {
        self.nodes[x as usize].lv[i].fwd
    }

    /// Inserts (score, ele); the caller guarantees ele is absent.
    pub fn insert(&mut self, score: f64, ele: &[u8]) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0u32; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            rank[i] = if i == self.level - 1 { 0 } else { rank[i + 1] };
            loop {
                let f = self.fwd(x, i);
                if f != NIL
                    && cmp_key(self.n(f).score, &self.n(f).ele, score, ele) == Ordering::Less
                {
                    rank[i] += self.n(x).lv[i].span;
                    x = f;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        let lvl = self.random_level();
        if lvl > self.level {
            for i in self.level..lvl {
                rank[i] = 0;
                update[i] = HEAD;
                self.nodes[0].lv[i].span = self.len as u32;
            }
            self.level = lvl;
        }
        let node = Node {
            ele: CompactBytes::new(ele),
            score,
            back: NIL,
            lv: vec![Level { fwd: NIL, span: 0 }; lvl].into_boxed_slice(),
        };
        let x = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        for i in 0..lvl {
            let u = update[i] as usize;
            let ul = self.nodes[u].lv[i];
            self.nodes[x as usize].lv[i] = Level {
                fwd: ul.fwd,
                span: ul.span - (rank[0] - rank[i]),
            };
            self.nodes[u].lv[i] = Level {
                fwd: x,
                span: (rank[0] - rank[i]) + 1,
            };
        }
        for (i, &u) in update.iter().enumerate().take(self.level).skip(lvl) {
            self.nodes[u as usize].lv[i].span += 1;
        }
        self.nodes[x as usize].back = if update[0] == HEAD { NIL } else { update[0] };
        let f0 = self.fwd(x, 0);
        if f0 != NIL {
            self.nodes[f0 as usize].back = x;
        } else {
            self.tail = x;
        }
        self.len += 1;
    }

    /// Removes (score, ele); false when absent.
    pub fn delete(&mut self, score: f64, ele: &[u8]) -> bool {
        let mut update = [HEAD; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let f = self.fwd(x, i);
                if f != NIL
                    && cmp_key(self.n(f).score, &self.n(f).ele, score, ele) == Ordering::Less
                {
                    x = f;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        let x = self.fwd(x, 0);
        if x == NIL || self.n(x).score != score || self.n(x).ele.as_slice() != ele {
            return false;
        }
        for (i, &u) in update.iter().enumerate().take(self.level) {
            let u = u as usize;
            if self.nodes[u].lv[i].fwd == x {
                let xl = self.nodes[x as usize].lv[i];
                self.nodes[u].lv[i].span += xl.span;
                self.nodes[u].lv[i].span -= 1;
                self.nodes[u].lv[i].fwd = xl.fwd;
            } else {
                self.nodes[u].lv[i].span -= 1;
            }
        }
        let f0 = self.fwd(x, 0);
        let back = self.n(x).back;
        if f0 != NIL {
            self.nodes[f0 as usize].back = back;
        } else {
            self.tail = back;
        }
        while self.level > 1 && self.nodes[0].lv[self.level - 1].fwd == NIL {
            self.level -= 1;
        }
        self.len -= 1;
        let n = &mut self.nodes[x as usize];
        n.ele = CompactBytes::new(b"");
        n.lv = Box::new([]);
        self.free.push(x);
        if self.len == 0 {
            *self = SkipList {
                rng: self.rng,
                ..SkipList::new()
            };
        }
        true
    }

    /// 1-based rank of (score, ele), 0 when absent.
    pub fn rank_of(&self, score: f64, ele: &[u8]) -> usize {
        let mut rank = 0usize;
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let f = self.fwd(x, i);
                if f != NIL
                    && cmp_key(self.n(f).score, &self.n(f).ele, score, ele) != Ordering::Greater
                {
                    rank += self.n(x).lv[i].span as usize;
                    x = f;
                } else {
                    break;
                }
            }
            if x != HEAD && self.n(x).ele.as_slice() == ele {
                return rank;
            }
        }
        0
    }

    /// The node at 1-based `rank`.
    fn by_rank(&self, rank: usize) -> u32 {
        let mut traversed = 0usize;
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let f = self.fwd(x, i);
                if f != NIL && traversed + self.n(x).lv[i].span as usize <= rank {
                    traversed += self.n(x).lv[i].span as usize;
                    x = f;
                } else {
                    break;
                }
            }
            if traversed == rank {
                return x;
            }
        }
        NIL
    }

    /// 0-based rank of the first element for which `below` is false
    /// (`below` must be monotone: true then false along the order).
    fn partition(&self, below: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut rank = 0usize;
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let f = self.fwd(x, i);
                if f != NIL && below(self.n(f).score, &self.n(f).ele) {
                    rank += self.n(x).lv[i].span as usize;
                    x = f;
                } else {
                    break;
                }
            }
        }
        rank
    }

    /// Visits ascending ranks `[start, end]` (0-based, in range), forward
    /// or (rev) from `end` down to `start`.
    pub fn visit(&self, start: usize, end: usize, rev: bool, mut f: impl FnMut(&[u8], f64)) {
        if start > end || end >= self.len {
            return;
        }
        let mut x = self.by_rank(if rev { end + 1 } else { start + 1 });
        for _ in start..=end {
            let n = self.n(x);
            f(&n.ele, n.score);
            x = if rev { n.back } else { n.lv[0].fwd };
        }
    }
}

// ---------------------------------------------------------------- zset

pub struct SkipZ {
    dict: Dict<f64>,
    zsl: SkipList,
}

pub enum ZSet {
    Packed(Packed),
    Skip(Box<SkipZ>),
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::Packed(Packed::new())
    }
}

/// A score's packed form: integral scores of magnitude below 2^53 as the
/// 0–7 little-endian bytes of their zigzag form (0 takes no bytes, small
/// integers one), anything else as the 8 bytes of the f64. The length
/// tells them apart.
struct ScoreBuf {
    b: [u8; 8],
    n: usize,
}

impl ScoreBuf {
    fn bytes(&self) -> &[u8] {
        &self.b[..self.n]
    }
}

fn score_bytes(s: f64) -> ScoreBuf {
    const LIM: f64 = (1u64 << 53) as f64;
    if s.fract() == 0.0 && s.abs() < LIM && !(s == 0.0 && s.is_sign_negative()) {
        let v = s as i64;
        let z = ((v << 1) ^ (v >> 63)) as u64;
        let n = (8 - z.leading_zeros() as usize / 8).min(7);
        ScoreBuf {
            b: z.to_le_bytes(),
            n,
        }
    } else {
        ScoreBuf {
            b: s.to_le_bytes(),
            n: 8,
        }
    }
}

fn score_of(b: &[u8]) -> f64 {
    let mut a = [0u8; 8];
    a[..b.len()].copy_from_slice(b);
    let u = u64::from_le_bytes(a);
    if b.len() == 8 {
        f64::from_bits(u)
    } else {
        (((u >> 1) as i64) ^ -((u & 1) as i64)) as f64
    }
}

/// A packed element: one entry holding `[tag][score bytes][member]`.
/// Tags below 0xE0 are the integer scores -96..=127 themselves (no score
/// bytes: most scores in practice); 0xE0+n is followed by an n-byte
/// zigzag integer; 0xE8 by the 8 bytes of an f64.
fn encode_entry(m: &[u8], s: f64) -> Vec<u8> {
    let mut v = Vec::with_capacity(m.len() + 9);
    let sb = score_bytes(s);
    if sb.n < 8 && (-96.0..=127.0).contains(&s) {
        v.push((s as i64 + 96) as u8);
    } else if sb.n < 8 {
        v.push(0xE0 + sb.n as u8);
        v.extend_from_slice(sb.bytes());
    } else {
        v.push(0xE8);
        v.extend_from_slice(sb.bytes());
    }
    v.extend_from_slice(m);
    v
}

fn decode_entry(e: &[u8]) -> (&[u8], f64) {
    let tag = e[0];
    if tag < 0xE0 {
        (&e[1..], (tag as i64 - 96) as f64)
    } else {
        let n = if tag == 0xE8 {
            8
        } else {
            (tag - 0xE0) as usize
        };
        (&e[1 + n..], score_of(&e[1..1 + n]))
    }
}

/// Decoded view of a packed zset: (member, score, entry offset).
fn items(p: &Packed) -> Vec<(&[u8], f64, usize)> {
    let mut v = Vec::with_capacity(p.count());
    let mut off = p.start();
    let end = p.end();
    while off < end {
        let (e, next) = p.at(off);
        let (m, s) = decode_entry(e);
        v.push((m, s, off));
        off = next;
    }
    v
}

impl ZSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty zset in the encoding Redis picks for `size_hint` members
    /// of at most `max_len` bytes.
    pub fn with_hint(size_hint: usize, max_len: usize, lim: &Limits) -> Self {
        if size_hint <= lim.zset_entries && max_len <= lim.zset_value {
            ZSet::Packed(Packed::new())
        } else {
            ZSet::Skip(Box::new(SkipZ {
                dict: Dict::new(),
                zsl: SkipList::new(),
            }))
        }
    }

    pub fn encoding_name(&self) -> &'static str {
        match self {
            ZSet::Packed(_) => "listpack",
            ZSet::Skip(_) => "skiplist",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ZSet::Packed(p) => p.count(),
            ZSet::Skip(z) => z.zsl.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn score(&self, m: &[u8]) -> Option<f64> {
        match self {
            ZSet::Packed(p) => p
                .iter()
                .map(decode_entry)
                .find(|(e, _)| *e == m)
                .map(|(_, s)| s),
            ZSet::Skip(z) => z.dict.get(hash_key(m), m).copied(),
        }
    }

    /// Converts a listpack to the skiplist encoding (a no-op otherwise),
    /// as Redis's SORT does to the sorted set it sorts.
    pub fn upgrade_to_skip(&mut self) {
        if let ZSet::Packed(p) = self {
            let mut z = SkipZ {
                dict: Dict::new(),
                zsl: SkipList::new(),
            };
            for (m, s, _) in items(p) {
                z.dict.insert_new(hash_key(m), CompactBytes::new(m), s);
                z.zsl.insert(s, m);
            }
            *self = ZSet::Skip(Box::new(z));
        }
    }

    /// Sets `m`'s score (adding it when absent); true when it was added.
    pub fn set(&mut self, m: &[u8], score: f64, lim: &Limits) -> bool {
        if let ZSet::Packed(p) = self {
            let its = items(p);
            let existing = its.iter().position(|(e, _, _)| *e == m);
            if existing.is_none() && (its.len() + 1 > lim.zset_entries || m.len() > lim.zset_value)
            {
                // Converted first, as Redis does: a new member's -0 then
                // keeps its sign in the skiplist.
                drop(its);
                self.upgrade_to_skip();
                return self.set(m, score, lim);
            }
            // Redis's listpack keeps scores as text and loses the sign of
            // zero; so do we, so that replies match.
            let score = if score == 0.0 { 0.0 } else { score };
            // Remove the old pair, then insert at the sorted position.
            let mut pos_off = p.end();
            for (e, s, off) in &its {
                if *e != m && cmp_key(*s, e, score, m) == Ordering::Greater {
                    pos_off = *off;
                    break;
                }
            }
            let sb = encode_entry(m, score);
            match existing {
                Some(i) => {
                    let old_off = its[i].2;
                    let old_end = if i + 1 < its.len() {
                        its[i + 1].2
                    } else {
                        p.end()
                    };
                    let (pos_off, old_off, old_end) = (pos_off, old_off, old_end);
                    drop(its);
                    if pos_off == old_end || pos_off == old_off {
                        p.splice(old_off, old_end, 1, &[&sb]);
                    } else if pos_off < old_off {
                        p.splice(old_off, old_end, 1, &[]);
                        p.splice(pos_off, pos_off, 0, &[&sb]);
                    } else {
                        let gap = old_end - old_off;
                        p.splice(old_off, old_end, 1, &[]);
                        p.splice(pos_off - gap, pos_off - gap, 0, &[&sb]);
                    }
                    return false;
                }
                None => {
                    drop(its);
                    p.splice(pos_off, pos_off, 0, &[&sb]);
                    return true;
                }
            }
        }
        match self {
            ZSet::Skip(z) => {
                let h = hash_key(m);
                match z.dict.get_mut(h, m) {
                    Some(old) => {
                        // An equal score (0 against -0 included) changes
                        // nothing, as in Redis.
                        let o = *old;
                        if o != score {
                            *old = score;
                            z.zsl.delete(o, m);
                            z.zsl.insert(score, m);
                        }
                        false
                    }
                    None => {
                        z.dict.insert_new(h, CompactBytes::new(m), score);
                        z.zsl.insert(score, m);
                        true
                    }
                }
            }
            ZSet::Packed(_) => unreachable!("handled above"),
        }
    }

    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            ZSet::Packed(p) => {
                let its = items(p);
                let Some(i) = its.iter().position(|(e, _, _)| *e == m) else {
                    return false;
                };
                let from = its[i].2;
                let to = if i + 1 < its.len() {
                    its[i + 1].2
                } else {
                    p.end()
                };
                drop(its);
                p.splice(from, to, 1, &[]);
                true
            }
            ZSet::Skip(z) => match z.dict.remove(hash_key(m), m) {
                Some((_, s)) => {
                    z.zsl.delete(s, m);
                    true
                }
                None => false,
            },
        }
    }

    /// 0-based ascending rank of `m` with its score.
    pub fn rank(&self, m: &[u8]) -> Option<(usize, f64)> {
        match self {
            ZSet::Packed(p) => items(p)
                .iter()
                .position(|(e, _, _)| *e == m)
                .map(|i| (i, items(p)[i].1)),
            ZSet::Skip(z) => {
                let s = *z.dict.get(hash_key(m), m)?;
                let r = z.zsl.rank_of(s, m);
                (r > 0).then(|| (r - 1, s))
            }
        }
    }

    /// First ascending rank for which `below` is false.
    fn partition(&self, below: impl Fn(f64, &[u8]) -> bool) -> usize {
        match self {
            ZSet::Packed(p) => items(p).partition_point(|(m, s, _)| below(*s, m)),
            ZSet::Skip(z) => z.zsl.partition(below),
        }
    }

    /// Ascending rank interval `[a, b]` of members in `r`, None if empty.
    pub fn score_ranks(&self, r: &ScoreRange) -> Option<(usize, usize)> {
        if r.empty() {
            return None;
        }
        let a = self.partition(|s, _| !r.gte_min(s));
        let b = self.partition(|s, _| r.lte_max(s));
        (a < b).then(|| (a, b - 1))
    }

    pub fn lex_ranks(&self, r: &LexRange) -> Option<(usize, usize)> {
        if r.empty() {
            return None;
        }
        let a = self.partition(|_, m| !r.gte_min(m));
        let b = self.partition(|_, m| r.lte_max(m));
        (a < b).then(|| (a, b - 1))
    }

    /// Visits ascending ranks `[start, end]`; `rev` walks from `end` down.
    pub fn visit(&self, start: usize, end: usize, rev: bool, mut f: impl FnMut(&[u8], f64)) {
        if start > end || end >= self.len() {
            return;
        }
        match self {
            ZSet::Packed(p) => {
                let its = items(p);
                if rev {
                    its[start..=end].iter().rev().for_each(|(m, s, _)| f(m, *s));
                } else {
                    its[start..=end].iter().for_each(|(m, s, _)| f(m, *s));
                }
            }
            ZSet::Skip(z) => z.zsl.visit(start, end, rev, f),
        }
    }

    /// Copies out ascending ranks `[start, end]` (or descending with rev).
    pub fn collect(&self, start: usize, end: usize, rev: bool) -> Vec<(Vec<u8>, f64)> {
        let mut v = Vec::with_capacity(end.saturating_sub(start) + 1);
        self.visit(start, end, rev, |m, s| v.push((m.to_vec(), s)));
        v
    }

    /// Removes ascending ranks `[start, end]`; returns how many.
    pub fn remove_ranks(&mut self, start: usize, end: usize) -> usize {
        if start > end || end >= self.len() {
            return 0;
        }
        match self {
            ZSet::Packed(p) => {
                let its = items(p);
                let from = its[start].2;
                let to = if end + 1 < its.len() {
                    its[end + 1].2
                } else {
                    p.end()
                };
                drop(its);
                p.splice(from, to, end + 1 - start, &[]);
            }
            ZSet::Skip(_) => {
                for (m, _) in self.collect(start, end, false) {
                    self.remove(&m);
                }
            }
        }
        end + 1 - start
    }

    pub fn for_each(&self, f: impl FnMut(&[u8], f64)) {
        if !self.is_empty() {
            self.visit(0, self.len() - 1, false, f);
        }
    }

    /// A random (member, score).
    pub fn random(&self, seed: u64) -> Option<(Vec<u8>, f64)> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        match self {
            ZSet::Packed(_) => {
                let i = (seed % n as u64) as usize;
                self.collect(i, i, false).pop()
            }
            ZSet::Skip(z) => z.dict.random_entry(seed).map(|(k, s)| (k.to_vec(), *s)),
        }
    }

    /// One SCAN step (the whole zset when packed).
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], f64)) -> u64 {
        match self {
            ZSet::Packed(_) => {
                self.for_each(f);
                0
            }
            ZSet::Skip(z) => z.dict.scan(cursor, |k, s| f(k, *s)),
        }
    }

    pub fn heap_size(&self) -> usize {
        match self {
            ZSet::Packed(p) => p.bytes(),
            ZSet::Skip(z) => {
                z.dict.bucket_bytes()
                    + z.dict.len() * 48
                    + z.zsl.nodes.capacity() * std::mem::size_of::<Node>()
                    + z.zsl.len * 16
            }
        }
    }

    pub fn deep_clone(&self) -> ZSet {
        match self {
            ZSet::Packed(p) => ZSet::Packed(p.clone()),
            ZSet::Skip(z) => {
                let mut d = Dict::new();
                for (k, s) in z.dict.iter() {
                    d.insert_new(hash_key(k), CompactBytes::new(k), *s);
                }
                ZSet::Skip(Box::new(SkipZ {
                    dict: d,
                    zsl: z.zsl.clone(),
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_same(a: &ZSet, b: &ZSet) {
        let mut va = Vec::new();
        a.for_each(|m, s| va.push((m.to_vec(), s)));
        let mut vb = Vec::new();
        b.for_each(|m, s| vb.push((m.to_vec(), s)));
        assert_eq!(va, vb);
    }

    #[test]
    fn packed_and_skiplist_agree() {
        let small = Limits {
            zset_entries: 1_000_000,
            ..Limits::default()
        };
        let big = Limits {
            zset_entries: 0,
            ..Limits::default()
        };
        let mut a = ZSet::new();
        let mut b = ZSet::new();
        let mut seed = 7u64;
        for i in 0..3000u64 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let m = format!("m{}", (seed >> 33) % 500);
            let s = ((seed >> 20) % 50) as f64;
            if i % 5 == 0 {
                assert_eq!(a.remove(m.as_bytes()), b.remove(m.as_bytes()));
            } else {
                assert_eq!(a.set(m.as_bytes(), s, &small), b.set(m.as_bytes(), s, &big));
            }
        }
        assert_eq!(a.encoding_name(), "listpack");
        assert_eq!(b.encoding_name(), "skiplist");
        check_same(&a, &b);
        let n = a.len();
        for r in 0..n {
            let x = a.collect(r, r, false);
            let y = b.collect(r, r, false);
            assert_eq!(x, y);
            assert_eq!(a.rank(&x[0].0), Some((r, x[0].1)));
            assert_eq!(b.rank(&x[0].0), Some((r, x[0].1)));
        }
        let rg = ScoreRange {
            min: 10.0,
            max: 20.0,
            minex: true,
            maxex: false,
        };
        assert_eq!(a.score_ranks(&rg), b.score_ranks(&rg));
        assert_eq!(a.collect(3, 40, true), b.collect(3, 40, true));
        a.remove_ranks(2, 30);
        b.remove_ranks(2, 30);
        check_same(&a, &b);
    }

    #[test]
    fn entry_encoding_roundtrips() {
        for s in [
            0.0,
            1.0,
            -96.0,
            -97.0,
            127.0,
            128.0,
            1e15,
            -1e15,
            0.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
            9007199254740992.0,
        ] {
            let e = encode_entry(b"member", s);
            assert_eq!(decode_entry(&e), (&b"member"[..], s), "{s}");
        }
        assert_eq!(encode_entry(b"m", 5.0).len(), 2);
        assert_eq!(encode_entry(b"", 300.0).len(), 3);
    }

    #[test]
    fn score_encoding_roundtrips() {
        for s in [
            0.0,
            1.0,
            -1.0,
            63.0,
            64.0,
            -64.0,
            1e15,
            -1e15,
            9007199254740991.0,
            9007199254740992.0,
            0.5,
            -0.1,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
        ] {
            let b = score_bytes(s);
            assert_eq!(score_of(b.bytes()), s, "{s}");
        }
        assert_eq!(score_bytes(0.0).n, 0);
        assert_eq!(score_bytes(5.0).n, 1);
    }

    #[test]
    fn lex_ranges_with_equal_scores() {
        let big = Limits {
            zset_entries: 0,
            ..Limits::default()
        };
        for lim in [Limits::default(), big] {
            let mut z = ZSet::new();
            for m in ["a", "b", "c", "d", "e"] {
                z.set(m.as_bytes(), 0.0, &lim);
            }
            let lr = LexRange {
                min: LexBound::Excl(b"a".to_vec()),
                max: LexBound::Incl(b"d".to_vec()),
            };
            assert_eq!(z.lex_ranks(&lr), Some((1, 3)));
            let lr = LexRange {
                min: LexBound::Incl(b"x".to_vec()),
                max: LexBound::PosInf,
            };
            assert_eq!(z.lex_ranks(&lr), None);
        }
    }
}
