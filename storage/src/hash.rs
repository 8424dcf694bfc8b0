//! Hashes: field → value. Small hashes are one [`Packed`] buffer of
//! alternating field and value entries (Redis's `listpack` encoding);
//! past `hash-max-listpack-entries` fields or a field or value longer than
//! `hash-max-listpack-value` they become a [`Dict`] (`hashtable`), never
//! converting back (as in Redis).

use crate::bytes::CompactBytes;
use crate::dict::{hash_key, Dict};
use crate::packed::Packed;
use crate::Limits;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set, for the life of the process, once any hash field is given a
/// deadline (by a command, a restore or a load): until then no hash can
/// have a field to expire, and the active expiry cycle can pass over a
/// database whose keys have no TTL without walking it.
static FIELD_TTLS_SEEN: AtomicBool = AtomicBool::new(false);

/// Whether any hash field has ever had a deadline in this process.
pub fn field_ttls_seen() -> bool {
    FIELD_TTLS_SEEN.load(Ordering::Relaxed)
}

pub enum Hash {
    Packed(Packed),
    Table(Box<HTable>),
}

/// The table form: fields, plus per-field deadlines (HEXPIRE) when any
/// field has one. Derefs to the field table.
pub struct HTable {
    pub fields: Dict<CompactBytes>,
    /// Field → absolute expiry in ms (only fields with a TTL).
    pub ttl: Option<Box<Dict<u64>>>,
    /// A lower bound of every deadline in `ttl` (`u64::MAX` when none):
    /// lazy and active expiry look at the deadlines only once it has passed.
    next_expiry: u64,
    /// Still within the listpack limits since a field TTL turned the
    /// listpack into a table: Redis 7.4 calls that encoding `listpackex`.
    listpack_ex: bool,
}

impl std::ops::Deref for HTable {
    type Target = Dict<CompactBytes>;
    fn deref(&self) -> &Dict<CompactBytes> {
        &self.fields
    }
}

impl std::ops::DerefMut for HTable {
    fn deref_mut(&mut self) -> &mut Dict<CompactBytes> {
        &mut self.fields
    }
}

fn table(fields: Dict<CompactBytes>) -> Box<HTable> {
    Box::new(HTable {
        fields,
        ttl: None,
        next_expiry: u64::MAX,
        listpack_ex: false,
    })
}

impl Default for Hash {
    fn default() -> Self {
        Hash::Packed(Packed::new())
    }
}

impl Hash {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn encoding_name(&self) -> &'static str {
        match self {
            Hash::Packed(_) => "listpack",
            Hash::Table(t) if t.listpack_ex => "listpackex",
            Hash::Table(_) => "hashtable",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Hash::Packed(p) => p.count() / 2,
            Hash::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Offset of `field`'s entry in the packed form.
    fn packed_find(p: &Packed, field: &[u8]) -> Option<(usize, usize, usize)> {
        let mut off = p.start();
        let end = p.end();
        while off < end {
            let (f, voff) = p.at(off);
            let (_, next) = p.at(voff);
            if f == field {
                return Some((off, voff, next));
            }
            off = next;
        }
        None
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Hash::Packed(p) => Self::packed_find(p, field).map(|(_, v, _)| p.at(v).0),
            Hash::Table(d) => d.get(hash_key(field), field).map(|v| v.as_slice()),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Converts to a table if adding entries this long would break the
    /// listpack limits.
    pub fn ensure_fits(&mut self, lim: &Limits, add_entries: usize, max_len: usize) {
        if let Hash::Packed(p) = self {
            if max_len > lim.hash_value || p.count() / 2 + add_entries > lim.hash_entries {
                self.upgrade_to_table();
            }
        }
    }

    fn upgrade_to_table(&mut self) {
        if let Hash::Packed(p) = self {
            let mut d = Dict::new();
            let mut it = p.iter();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                d.insert_new(hash_key(f), CompactBytes::new(f), CompactBytes::new(v));
            }
            *self = Hash::Table(table(d));
        }
    }

    /// Sets `field` and drops any TTL it had (HSET); true when new.
    pub fn set(&mut self, field: &[u8], value: &[u8], lim: &Limits) -> bool {
        let added = self.set_keep_ttl(field, value, lim);
        if let Hash::Table(t) = self {
            if let Some(ttl) = t.ttl.as_mut() {
                ttl.remove(hash_key(field), field);
            }
        }
        added
    }

    /// Sets `field` keeping its TTL (HINCRBY and friends); true when new.
    /// Converts encodings as needed.
    pub fn set_keep_ttl(&mut self, field: &[u8], value: &[u8], lim: &Limits) -> bool {
        if let Hash::Packed(p) = self {
            if let Some((_, voff, next)) = Self::packed_find(p, field) {
                if field.len().max(value.len()) <= lim.hash_value {
                    p.splice(voff, next, 1, &[value]);
                    return false;
                }
            } else if field.len().max(value.len()) <= lim.hash_value
                && p.count() / 2 < lim.hash_entries
            {
                p.push_back(&[field, value]);
                return true;
            }
            self.upgrade_to_table();
        }
        match self {
            Hash::Table(d) => {
                let h = hash_key(field);
                if d.listpack_ex
                    && (field.len().max(value.len()) > lim.hash_value
                        || d.fields.len() >= lim.hash_entries)
                {
                    d.listpack_ex = false; // outgrew listpackex: hashtable now
                }
                match d.get_mut(h, field) {
                    Some(v) => {
                        *v = CompactBytes::new(value);
                        false
                    }
                    None => {
                        d.insert_new(h, CompactBytes::new(field), CompactBytes::new(value));
                        true
                    }
                }
            }
            Hash::Packed(_) => unreachable!("converted above"),
        }
    }

    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Packed(p) => match Self::packed_find(p, field) {
                Some((off, _, next)) => {
                    p.splice(off, next, 2, &[]);
                    true
                }
                None => false,
            },
            Hash::Table(d) => {
                let h = hash_key(field);
                if let Some(ttl) = d.ttl.as_mut() {
                    ttl.remove(h, field);
                    if ttl.is_empty() {
                        d.next_expiry = u64::MAX;
                    }
                }
                d.remove(h, field).is_some()
            }
        }
    }

    /// The field's absolute expiry in ms, if it has one.
    pub fn field_expire(&self, field: &[u8]) -> Option<u64> {
        match self {
            Hash::Table(t) => t.ttl.as_ref()?.get(hash_key(field), field).copied(),
            Hash::Packed(_) => None,
        }
    }

    pub fn has_ttls(&self) -> bool {
        matches!(self, Hash::Table(t) if t.ttl.as_ref().is_some_and(|d| !d.is_empty()))
    }

    /// Gives an existing field a deadline (the hash becomes a table).
    pub fn set_field_expire(&mut self, field: &[u8], at: u64) {
        if !FIELD_TTLS_SEEN.load(Ordering::Relaxed) {
            FIELD_TTLS_SEEN.store(true, Ordering::Relaxed);
        }
        let was_packed = matches!(self, Hash::Packed(_));
        self.upgrade_to_table();
        if let Hash::Table(t) = self {
            if was_packed {
                t.listpack_ex = true;
            }
            t.next_expiry = t.next_expiry.min(at);
            let h = hash_key(field);
            let ttl = t.ttl.get_or_insert_with(|| Box::new(Dict::new()));
            match ttl.get_mut(h, field) {
                Some(v) => *v = at,
                None => {
                    ttl.insert_new(h, CompactBytes::new(field), at);
                }
            }
        }
    }

    /// Removes a field's deadline; true if it had one.
    pub fn persist_field(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Table(t) => {
                let Some(d) = t.ttl.as_mut() else {
                    return false;
                };
                let had = d.remove(hash_key(field), field).is_some();
                if d.is_empty() {
                    // No deadline left: lazy expiry need not look (nor take
                    // the hash mutably) any more.
                    t.next_expiry = u64::MAX;
                }
                had
            }
            Hash::Packed(_) => false,
        }
    }

    /// Deletes every field whose deadline is at or before `now_ms` and
    /// returns their names.
    pub fn purge_expired(&mut self, now_ms: u64) -> Vec<Vec<u8>> {
        let Hash::Table(t) = self else {
            return Vec::new();
        };
        if t.next_expiry > now_ms {
            return Vec::new();
        }
        let Some(ttl) = t.ttl.as_ref() else {
            t.next_expiry = u64::MAX;
            return Vec::new();
        };
        let mut next = u64::MAX;
        let mut gone = Vec::new();
        for (k, at) in ttl.iter() {
            if *at <= now_ms {
                gone.push(k.to_vec());
            } else {
                next = next.min(*at);
            }
        }
        t.next_expiry = next;
        for f in &gone {
            self.remove(f);
        }
        gone
    }

    /// Whether some field's deadline may have passed at `now_ms` (cheap:
    /// compares with a lower bound of the deadlines).
    pub fn may_have_expired_fields(&self, now_ms: u64) -> bool {
        matches!(self, Hash::Table(t) if t.next_expiry <= now_ms)
    }

    /// Every (field, value), in the encoding's order.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &[u8])) {
        match self {
            Hash::Packed(p) => {
                let mut it = p.iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    f(k, v);
                }
            }
            Hash::Table(d) => {
                for (k, v) in d.iter() {
                    f(k, v);
                }
            }
        }
    }

    pub fn pairs(&self) -> Vec<(&[u8], &[u8])> {
        let mut v = Vec::with_capacity(self.len());
        match self {
            Hash::Packed(p) => {
                let mut it = p.iter();
                while let (Some(k), Some(x)) = (it.next(), it.next()) {
                    v.push((k, x));
                }
            }
            Hash::Table(d) => v.extend(d.iter().map(|(k, x)| (k, x.as_slice()))),
        }
        v
    }

    /// One SCAN step: calls `f` for the fields of one bucket (the whole
    /// hash when packed) and returns the next cursor (0 = done).
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        match self {
            Hash::Packed(_) => {
                self.for_each(f);
                0
            }
            Hash::Table(d) => d.scan(cursor, |k, v| f(k, v)),
        }
    }

    /// A random (field, value); `seed` drives the choice.
    pub fn random(&self, seed: u64) -> Option<(&[u8], &[u8])> {
        match self {
            Hash::Packed(p) => {
                let n = p.count() / 2;
                if n == 0 {
                    return None;
                }
                let i = (seed % n as u64) as usize;
                let mut it = p.iter().skip(2 * i);
                Some((it.next()?, it.next()?))
            }
            Hash::Table(d) => d.random_entry(seed).map(|(k, v)| (k, v.as_slice())),
        }
    }

    /// Heap bytes (approximate, for memory reports).
    pub fn heap_size(&self) -> usize {
        self.heap_size_sampled(0)
    }

    /// `heap_size`, measuring the fields and values of at most `samples`
    /// entries of a table (0: all) and scaling them to the whole.
    pub fn heap_size_sampled(&self, samples: usize) -> usize {
        match self {
            Hash::Packed(p) => p.bytes(),
            Hash::Table(d) => {
                let each = d.iter().map(|(k, v)| {
                    k.len()
                        .saturating_sub(crate::bytes::INLINE_CAP)
                        .min(k.len())
                        + v.heap_size()
                });
                d.bucket_bytes() + d.len() * 56 + crate::value::sampled_sum(each, d.len(), samples)
            }
        }
    }

    pub fn deep_clone(&self) -> Hash {
        match self {
            Hash::Packed(p) => Hash::Packed(p.clone()),
            Hash::Table(d) => {
                let mut n = Dict::new();
                for (k, v) in d.iter() {
                    n.insert_new(hash_key(k), CompactBytes::new(k), v.clone());
                }
                let mut t = table(n);
                t.next_expiry = d.next_expiry;
                t.listpack_ex = d.listpack_ex;
                if let Some(ttl) = &d.ttl {
                    let mut c = Dict::new();
                    for (k, at) in ttl.iter() {
                        c.insert_new(hash_key(k), CompactBytes::new(k), *at);
                    }
                    t.ttl = Some(Box::new(c));
                }
                Hash::Table(t)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_then_table() {
        let lim = Limits {
            hash_entries: 4,
            ..Limits::default()
        };
        let mut h = Hash::new();
        for i in 0..4 {
            assert!(h.set(format!("f{i}").as_bytes(), b"v", &lim));
        }
        assert_eq!(h.encoding_name(), "listpack");
        assert!(!h.set(b"f1", b"w", &lim));
        assert_eq!(h.get(b"f1"), Some(&b"w"[..]));
        assert!(h.set(b"f9", b"x", &lim));
        assert_eq!(h.encoding_name(), "hashtable");
        assert_eq!(h.len(), 5);
        assert_eq!(h.get(b"f1"), Some(&b"w"[..]));
        assert!(h.remove(b"f1"));
        assert!(!h.remove(b"f1"));
        assert_eq!(h.len(), 4);
        let mut h = Hash::new();
        h.set(b"a", &[b'x'; 65], &lim);
        assert_eq!(h.encoding_name(), "hashtable");
    }
}
