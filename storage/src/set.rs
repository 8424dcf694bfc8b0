//! Sets. Three encodings, as in Redis 7.2:
//! - `intset`: all members are canonical i64s, up to
//!   `set-max-intset-entries`: one sorted buffer of 2-, 4- or 8-byte
//!   little-endian integers (the width grows with the largest magnitude);
//! - `listpack`: up to `set-max-listpack-entries` members no longer than
//!   `set-max-listpack-value`, one [`Packed`] buffer in insertion order;
//! - `hashtable`: a [`Dict`] with no values.
//!
//! Encodings only ever move up that list.

use crate::bytes::CompactBytes;
use crate::dict::{hash_key, Dict};
use crate::packed::Packed;
use crate::value::parse_canonical_i64;
use crate::Limits;

/// Sorted integers: `[width u8][n × width bytes LE]`.
#[derive(Clone)]
pub struct IntSet {
    buf: Box<[u8]>,
}

fn width_for(v: i64) -> u8 {
    if v >= i16::MIN as i64 && v <= i16::MAX as i64 {
        2
    } else if v >= i32::MIN as i64 && v <= i32::MAX as i64 {
        4
    } else {
        8
    }
}

impl IntSet {
    pub fn new() -> Self {
        IntSet {
            buf: vec![2u8].into_boxed_slice(),
        }
    }

    fn width(&self) -> usize {
        self.buf[0] as usize
    }

    pub fn len(&self) -> usize {
        (self.buf.len() - 1) / self.width()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub fn get(&self, i: usize) -> i64 {
        let w = self.width();
        let s = &self.buf[1 + i * w..1 + (i + 1) * w];
        match w {
            2 => i16::from_le_bytes([s[0], s[1]]) as i64,
            4 => i32::from_le_bytes([s[0], s[1], s[2], s[3]]) as i64,
            _ => i64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]),
        }
    }

    fn search(&self, v: i64) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.get(mid).cmp(&v) {
                std::cmp::Ordering::Equal => return Ok(mid),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Err(lo)
    }

    pub fn contains(&self, v: i64) -> bool {
        self.search(v).is_ok()
    }

    fn rebuild(&mut self, w: u8, vals: impl Iterator<Item = i64>) {
        let mut b = Vec::with_capacity(self.len() * w as usize + 1 + w as usize);
        b.push(w);
        for v in vals {
            match w {
                2 => b.extend_from_slice(&(v as i16).to_le_bytes()),
                4 => b.extend_from_slice(&(v as i32).to_le_bytes()),
                _ => b.extend_from_slice(&v.to_le_bytes()),
            }
        }
        self.buf = b.into_boxed_slice();
    }

    pub fn insert(&mut self, v: i64) -> bool {
        let pos = match self.search(v) {
            Ok(_) => return false,
            Err(p) => p,
        };
        let w = (self.width() as u8).max(width_for(v));
        let n = self.len();
        let old: Vec<i64> = (0..n).map(|i| self.get(i)).collect();
        self.rebuild(
            w,
            old[..pos]
                .iter()
                .copied()
                .chain(std::iter::once(v))
                .chain(old[pos..].iter().copied()),
        );
        true
    }

    pub fn remove(&mut self, v: i64) -> bool {
        match self.search(v) {
            Ok(i) => {
                let w = self.width();
                let mut b = self.buf.to_vec();
                b.drain(1 + i * w..1 + (i + 1) * w);
                self.buf = b.into_boxed_slice();
                true
            }
            Err(_) => false,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    pub fn bytes(&self) -> usize {
        self.buf.len()
    }
}

impl Default for IntSet {
    fn default() -> Self {
        Self::new()
    }
}

pub enum Set {
    Ints(IntSet),
    Packed(Packed),
    Table(Box<Dict<()>>),
}

impl Default for Set {
    fn default() -> Self {
        Set::Ints(IntSet::new())
    }
}

/// A member as bytes: borrowed, or an integer formatted on the stack.
pub enum Member<'a> {
    Bytes(&'a [u8]),
    Int(i64),
}

impl Member<'_> {
    pub fn with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Member::Bytes(b) => f(b),
            Member::Int(i) => f(itoa::Buffer::new().format(*i).as_bytes()),
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.with(|b| b.to_vec())
    }
}

impl Set {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set in the encoding Redis would pick for a first member
    /// `first` (intset when it is an integer, else listpack).
    pub fn for_first(first: &[u8], lim: &Limits, size_hint: usize) -> Self {
        if parse_canonical_i64(first).is_some() && size_hint <= lim.set_intset_entries {
            Set::Ints(IntSet::new())
        } else if size_hint <= lim.set_listpack_entries && first.len() <= lim.set_listpack_value {
            Set::Packed(Packed::new())
        } else {
            Set::Table(Box::default())
        }
    }

    pub fn encoding_name(&self) -> &'static str {
        match self {
            Set::Ints(_) => "intset",
            Set::Packed(_) => "listpack",
            Set::Table(_) => "hashtable",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Set::Ints(s) => s.len(),
            Set::Packed(p) => p.count(),
            Set::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match self {
            Set::Ints(s) => parse_canonical_i64(m).is_some_and(|v| s.contains(v)),
            Set::Packed(p) => p.iter().any(|e| e == m),
            Set::Table(d) => d.get(hash_key(m), m).is_some(),
        }
    }

    fn upgrade_to_table(&mut self) {
        let mut d = Dict::new();
        self.for_each(|m| {
            m.with(|b| {
                d.insert_new(hash_key(b), CompactBytes::new(b), ());
            })
        });
        *self = Set::Table(Box::new(d));
    }

    fn upgrade_to_packed(&mut self) {
        let mut p = Packed::new();
        if let Set::Ints(s) = self {
            let items: Vec<String> = s.iter().map(|v| v.to_string()).collect();
            let refs: Vec<&[u8]> = items.iter().map(|s| s.as_bytes()).collect();
            p.push_back(&refs);
        }
        *self = Set::Packed(p);
    }

    /// Adds `m`; true when it was new.
    pub fn add(&mut self, m: &[u8], lim: &Limits) -> bool {
        if let Set::Ints(s) = self {
            if let Some(v) = parse_canonical_i64(m) {
                if !s.insert(v) {
                    return false;
                }
                if s.len() > lim.set_intset_entries {
                    self.upgrade_to_table();
                }
                return true;
            }
            // A string member: listpack if everything fits, else table.
            let n = s.len();
            let maxlen = if n == 0 {
                0
            } else {
                itoa::Buffer::new()
                    .format(s.get(0))
                    .len()
                    .max(itoa::Buffer::new().format(s.get(n - 1)).len())
            };
            if n < lim.set_listpack_entries
                && m.len() <= lim.set_listpack_value
                && maxlen <= lim.set_listpack_value
            {
                self.upgrade_to_packed();
            } else {
                self.upgrade_to_table();
            }
        }
        if let Set::Packed(p) = self {
            if p.iter().any(|e| e == m) {
                return false;
            }
            if p.count() < lim.set_listpack_entries && m.len() <= lim.set_listpack_value {
                p.push_back(&[m]);
                return true;
            }
            self.upgrade_to_table();
        }
        match self {
            Set::Table(d) => {
                let h = hash_key(m);
                if d.get(h, m).is_some() {
                    return false;
                }
                d.insert_new(h, CompactBytes::new(m), ());
                true
            }
            _ => unreachable!("converted above"),
        }
    }

    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            Set::Ints(s) => parse_canonical_i64(m).is_some_and(|v| s.remove(v)),
            Set::Packed(p) => {
                let mut it = p.iter();
                loop {
                    let off = it.offset();
                    match it.next() {
                        None => return false,
                        Some(e) if e == m => {
                            let next = it.offset();
                            p.splice(off, next, 1, &[]);
                            return true;
                        }
                        Some(_) => {}
                    }
                }
            }
            Set::Table(d) => d.remove(hash_key(m), m).is_some(),
        }
    }

    pub fn for_each(&self, mut f: impl FnMut(Member<'_>)) {
        match self {
            Set::Ints(s) => s.iter().for_each(|v| f(Member::Int(v))),
            Set::Packed(p) => p.iter().for_each(|b| f(Member::Bytes(b))),
            Set::Table(d) => d.iter().for_each(|(k, _)| f(Member::Bytes(k))),
        }
    }

    pub fn members(&self) -> Vec<Vec<u8>> {
        let mut v = Vec::with_capacity(self.len());
        self.for_each(|m| v.push(m.to_vec()));
        v
    }

    /// A random member.
    pub fn random(&self, seed: u64) -> Option<Vec<u8>> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let i = (seed % n as u64) as usize;
        match self {
            Set::Ints(s) => Some(s.get(i).to_string().into_bytes()),
            Set::Packed(p) => p.iter().nth(i).map(|b| b.to_vec()),
            Set::Table(d) => d.random_key(seed).map(|k| k.to_vec()),
        }
    }

    /// One SCAN step (the whole set when not a table).
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(Member<'_>)) -> u64 {
        match self {
            Set::Table(d) => d.scan(cursor, |k, _| f(Member::Bytes(k))),
            _ => {
                self.for_each(f);
                0
            }
        }
    }

    pub fn heap_size(&self) -> usize {
        self.heap_size_sampled(0)
    }

    /// `heap_size`, measuring the members of at most `samples` entries of
    /// a table (0: all) and scaling them to the whole.
    pub fn heap_size_sampled(&self, samples: usize) -> usize {
        match self {
            Set::Ints(s) => s.bytes(),
            Set::Packed(p) => p.bytes(),
            Set::Table(d) => {
                let each = d.iter().map(|(k, _)| {
                    if k.len() > crate::bytes::INLINE_CAP {
                        k.len()
                    } else {
                        0
                    }
                });
                d.bucket_bytes() + d.len() * 32 + crate::value::sampled_sum(each, d.len(), samples)
            }
        }
    }

    pub fn deep_clone(&self) -> Set {
        match self {
            Set::Ints(s) => Set::Ints(s.clone()),
            Set::Packed(p) => Set::Packed(p.clone()),
            Set::Table(d) => {
                let mut n = Dict::new();
                for (k, _) in d.iter() {
                    n.insert_new(hash_key(k), CompactBytes::new(k), ());
                }
                Set::Table(Box::new(n))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_progress() {
        let lim = Limits {
            set_intset_entries: 4,
            set_listpack_entries: 6,
            ..Limits::default()
        };
        let mut s = Set::new();
        for v in [5i64, -3, 70000, 1 << 40] {
            assert!(s.add(v.to_string().as_bytes(), &lim));
        }
        assert!(!s.add(b"5", &lim));
        assert_eq!(s.encoding_name(), "intset");
        assert_eq!(
            s.members(),
            vec![
                b"-3".to_vec(),
                b"5".to_vec(),
                b"70000".to_vec(),
                (1i64 << 40).to_string().into_bytes()
            ]
        );
        assert!(s.add(b"x", &lim));
        assert_eq!(s.encoding_name(), "listpack");
        assert!(s.contains(b"70000") && s.contains(b"x"));
        assert!(s.add(b"y", &lim));
        assert!(s.add(b"z", &lim));
        assert_eq!(s.encoding_name(), "hashtable");
        assert_eq!(s.len(), 7);
        assert!(s.remove(b"x") && !s.remove(b"x"));
        let mut s = Set::new();
        for v in 0..5 {
            s.add(v.to_string().as_bytes(), &lim);
        }
        assert_eq!(s.encoding_name(), "hashtable");
    }
}
