//! A chained hash table with Redis's reverse-binary cursor scan.
//!
//! Why not `std::collections::HashMap`: SCAN must return every key that is
//! present for the whole scan at least once, even when the table grows or
//! shrinks between calls. Open addressing moves entries on resize and
//! probing puts them away from their home slot, so a cursor into it means
//! nothing after a resize. With chaining, an entry always lives in bucket
//! `hash & mask`, and iterating bucket indexes in reverse-bit order visits,
//! for any later table size, a superset of the buckets not yet visited
//! (the argument in Redis's `dict.c` `dictScan` comment).
//!
//! The table is owned by one shard and only touched under that shard's lock;
//! it is a plain single-threaded structure. Hashes are computed by the caller
//! (once per command, also used to pick the shard from the *high* bits; the
//! table uses the *low* bits, so keys of one shard still spread evenly).
//! Resizing is done in one go; shards keep each table small enough that this
//! costs microseconds to a few milliseconds.

use crate::bytes::CompactBytes;
use crate::entry::Entry;

struct Node<V> {
    next: Option<Box<Node<V>>>,
    key: CompactBytes,
    entry: V,
}

/// Hash function used for keys: keyed per process, so bucket placement
/// cannot be predicted by clients (the reason Redis uses SipHash).
pub fn hash_key(key: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    static STATE: std::sync::OnceLock<foldhash::quality::RandomState> = std::sync::OnceLock::new();
    STATE.get_or_init(Default::default).hash_one(key)
}

const MIN_BUCKETS: usize = 4;

/// Generic over the stored value: the keyspace uses `Dict<Entry>`; large
/// hashes, sets and sorted sets use it too (for the same SCAN guarantee).
pub struct Dict<V: Slot = Entry> {
    buckets: Vec<Option<Box<Node<V>>>>,
    len: usize,
    /// Epoch stamped on entries written from now on.
    epoch: u32,
    /// Set while a point-in-time snapshot of this table is being taken.
    snap: Option<Box<SnapHook>>,
}

/// What a table stores, as far as snapshots are concerned. The keyspace's
/// [`Entry`] carries the epoch it was last written in; values inside a
/// collection do not (a collection is captured whole, through its key's
/// entry), so the defaults make them never captured.
pub trait Slot {
    fn epoch(&self) -> u32 {
        u32::MAX
    }
    fn set_epoch(&mut self, _epoch: u32) {}
    fn as_entry(&self) -> Option<&Entry> {
        None
    }
}

impl Slot for Entry {
    fn epoch(&self) -> u32 {
        self.epoch
    }
    fn set_epoch(&mut self, epoch: u32) {
        self.epoch = epoch;
    }
    fn as_entry(&self) -> Option<&Entry> {
        Some(self)
    }
}

impl Slot for CompactBytes {}
impl Slot for () {}
impl Slot for f64 {}
impl Slot for u64 {}

/// Receives the pre-write image of entries for an active snapshot.
pub trait Capture: Send + Sync {
    fn capture(&self, db: u32, key: &[u8], entry: &Entry);
}

/// What [`Dict::sweep_from`] does with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    Keep,
    Remove,
    Modify,
}

/// Snapshot state of one table.
///
/// ```text
///  cut (all shard locks held)          walk (small slices, lock per slice)
///  ───────────────────────────         ─────────────────────────────────
///  epoch E = previous + 1              for each entry with epoch < E:
///  every table: begin_snapshot(E)          capture it, stamp epoch = E
///  log position S noted
///
///  any write to an entry with epoch < E (update, delete, expire, clear):
///      capture the old entry, stamp epoch = E, then write
///  new entries are stamped E and never captured
/// ```
///
/// Every entry present at the cut is captured exactly once, with the
/// value it had at the cut: either by the walk (untouched since) or by the
/// first write after the cut (which captures before changing it). Entries
/// created after the cut are skipped. So the captured set is exactly the
/// table at log position S. The hook lives inside the table, so no
/// mutation path can bypass it.
pub struct SnapHook {
    pub epoch: u32,
    /// The logical database this table was at the cut (SWAPDB moves
    /// tables; the label moves with them).
    pub db: u32,
    pub cursor: u64,
    pub sink: std::sync::Arc<dyn Capture>,
}

#[inline]
fn capture<V: Slot>(h: &SnapHook, key: &CompactBytes, v: &mut V) {
    if v.epoch() < h.epoch {
        if let Some(e) = v.as_entry() {
            h.sink.capture(h.db, key.as_slice(), e);
        }
        v.set_epoch(h.epoch);
    }
}

impl<V: Slot> Default for Dict<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Slot> Dict<V> {
    pub const fn new() -> Self {
        Dict {
            buckets: Vec::new(),
            len: 0,
            epoch: 0,
            snap: None,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of bucket array (for memory reports).
    pub fn bucket_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Option<Box<Node<V>>>>()
    }

    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    pub fn get(&self, hash: u64, key: &[u8]) -> Option<&V> {
        if self.buckets.is_empty() {
            return None;
        }
        let mut cur = self.buckets[hash as usize & self.mask()].as_deref();
        while let Some(n) = cur {
            if n.key.as_slice() == key {
                return Some(&n.entry);
            }
            cur = n.next.as_deref();
        }
        None
    }

    /// The value for writing: during a snapshot, its pre-write image is
    /// captured first (see [`SnapHook`]).
    pub fn get_mut(&mut self, hash: u64, key: &[u8]) -> Option<&mut V> {
        if self.buckets.is_empty() {
            return None;
        }
        let idx = hash as usize & self.mask();
        let snap = self.snap.as_deref();
        let mut cur = self.buckets[idx].as_deref_mut();
        while let Some(n) = cur {
            if n.key.as_slice() == key {
                if let Some(h) = snap {
                    capture(h, &n.key, &mut n.entry);
                }
                return Some(&mut n.entry);
            }
            cur = n.next.as_deref_mut();
        }
        None
    }

    /// Inserts or replaces; returns the previous entry for the key.
    pub fn insert(&mut self, hash: u64, key: &[u8], entry: V) -> Option<V> {
        let epoch = self.epoch;
        if let Some(e) = self.get_mut(hash, key) {
            let mut entry = entry;
            entry.set_epoch(epoch);
            return Some(std::mem::replace(e, entry));
        }
        self.insert_new(hash, CompactBytes::new(key), entry);
        None
    }

    /// Inserts a key known to be absent and returns its entry.
    pub fn insert_new(&mut self, hash: u64, key: CompactBytes, mut entry: V) -> &mut V {
        entry.set_epoch(self.epoch);
        if self.len >= self.buckets.len() {
            self.resize((self.buckets.len() * 2).max(MIN_BUCKETS));
        }
        let idx = hash as usize & self.mask();
        let next = self.buckets[idx].take();
        self.buckets[idx] = Some(Box::new(Node { next, key, entry }));
        self.len += 1;
        match self.buckets[idx].as_deref_mut() {
            Some(n) => &mut n.entry,
            None => unreachable!("bucket was just filled"),
        }
    }

    pub fn remove(&mut self, hash: u64, key: &[u8]) -> Option<(CompactBytes, V)> {
        if self.buckets.is_empty() {
            return None;
        }
        let idx = hash as usize & self.mask();
        let mut link = &mut self.buckets[idx];
        loop {
            match link {
                None => return None,
                Some(n) if n.key.as_slice() == key => {
                    if let Some(h) = self.snap.as_deref() {
                        capture(h, &n.key, &mut n.entry);
                    }
                    let mut node = link.take().expect("matched Some");
                    *link = node.next.take();
                    self.len -= 1;
                    let out = (node.key, node.entry);
                    self.maybe_shrink();
                    return Some(out);
                }
                Some(n) => link = &mut n.next,
            }
        }
    }

    fn maybe_shrink(&mut self) {
        let n = self.buckets.len();
        if n > MIN_BUCKETS && self.len * 8 < n {
            let mut target = MIN_BUCKETS;
            while target < self.len * 2 {
                target *= 2;
            }
            self.resize(target);
        }
    }

    fn resize(&mut self, new_len: usize) {
        debug_assert!(new_len.is_power_of_two());
        let old = std::mem::take(&mut self.buckets);
        self.buckets.resize_with(new_len, || None);
        let mask = new_len - 1;
        for mut head in old {
            while let Some(mut node) = head {
                head = node.next.take();
                let idx = hash_key(&node.key) as usize & mask;
                node.next = self.buckets[idx].take();
                self.buckets[idx] = Some(node);
            }
        }
    }

    pub fn clear(&mut self) {
        if let Some(h) = self.snap.as_deref() {
            for b in self.buckets.iter_mut() {
                let mut cur = b.as_deref_mut();
                while let Some(n) = cur {
                    capture(h, &n.key, &mut n.entry);
                    cur = n.next.as_deref_mut();
                }
            }
        }
        // Drop chains iteratively: a long chain dropped recursively could
        // overflow the stack.
        for b in self.buckets.iter_mut() {
            let mut head = b.take();
            while let Some(mut n) = head {
                head = n.next.take();
            }
        }
        self.buckets = Vec::new();
        self.len = 0;
    }

    /// Visits the bucket at `cursor` and returns the next cursor (0 = done).
    /// The callback may not change the table; collect keys and act after.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &V)) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let mask = self.mask() as u64;
        let mut cur = self.buckets[(cursor & mask) as usize].as_deref();
        while let Some(n) = cur {
            f(&n.key, &n.entry);
            cur = n.next.as_deref();
        }
        // Increment the reversed cursor, treating the bits above the mask
        // as set so the carry leaves the masked part cleanly.
        let mut v = cursor | !mask;
        v = v.reverse_bits();
        v = v.wrapping_add(1);
        v.reverse_bits()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> {
        self.buckets.iter().flat_map(|b| {
            let mut cur = b.as_deref();
            std::iter::from_fn(move || {
                let n = cur?;
                cur = n.next.as_deref();
                Some((n.key.as_slice(), &n.entry))
            })
        })
    }

    /// Removes every entry for which `keep` returns false, visiting at most
    /// `budget` buckets from `cursor`; returns the next cursor (0 = wrapped).
    /// Used by the active expiry sweep.
    pub fn retain_from(
        &mut self,
        cursor: u64,
        budget: usize,
        mut keep: impl FnMut(&[u8], &V) -> bool,
        removed: impl FnMut(CompactBytes, V),
    ) -> u64 {
        self.sweep_from(
            cursor,
            budget,
            |k, v| {
                if keep(k, v) {
                    Sweep::Keep
                } else {
                    Sweep::Remove
                }
            },
            |_, _| false,
            removed,
        )
    }

    /// Visits at most `budget` buckets from `cursor` and returns the next
    /// cursor (0 = wrapped). `decide` says what happens to each entry: kept,
    /// removed (handed to `removed`), or changed in place by `modify`, which
    /// returns true when the entry is now to be removed. Entries are handed
    /// to a running snapshot before they are changed or removed.
    pub fn sweep_from(
        &mut self,
        mut cursor: u64,
        budget: usize,
        mut decide: impl FnMut(&[u8], &V) -> Sweep,
        mut modify: impl FnMut(&[u8], &mut V) -> bool,
        mut removed: impl FnMut(CompactBytes, V),
    ) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let mask = self.mask() as u64;
        for _ in 0..budget {
            let mut link = &mut self.buckets[(cursor & mask) as usize];
            loop {
                let action = match link.as_deref() {
                    None => break,
                    Some(n) => decide(&n.key, &n.entry),
                };
                let remove = match action {
                    Sweep::Keep => false,
                    Sweep::Remove | Sweep::Modify => {
                        let n = link.as_mut().expect("checked above");
                        if let Some(h) = self.snap.as_deref() {
                            capture(h, &n.key, &mut n.entry);
                        }
                        matches!(action, Sweep::Remove) || modify(&n.key, &mut n.entry)
                    }
                };
                if remove {
                    let mut node = link.take().expect("checked above");
                    *link = node.next.take();
                    self.len -= 1;
                    removed(node.key, node.entry);
                } else {
                    link = &mut link.as_mut().expect("checked above").next;
                }
            }
            let mut v = cursor | !mask;
            v = v.reverse_bits().wrapping_add(1).reverse_bits();
            cursor = v;
            if cursor == 0 {
                break;
            }
        }
        self.maybe_shrink();
        cursor
    }

    /// Visits entries in consecutive buckets from a random one (Redis's
    /// `dictGetSomeKeys`): stops once `want` of them were accepted by `f`
    /// or after `max_buckets` buckets. Returns true when every bucket was
    /// visited (so a caller that accepted nothing knows there is nothing).
    pub fn sample(
        &self,
        seed: u64,
        want: usize,
        max_buckets: usize,
        mut f: impl FnMut(&[u8], &V) -> bool,
    ) -> bool {
        let n = self.buckets.len();
        if self.len == 0 {
            return true;
        }
        let steps = max_buckets.min(n);
        let mut idx = (seed as usize) & self.mask();
        let mut got = 0;
        for step in 0..steps {
            let mut cur = self.buckets[idx].as_deref();
            while let Some(node) = cur {
                if f(&node.key, &node.entry) {
                    got += 1;
                    if got >= want {
                        return step + 1 == n && node.next.is_none();
                    }
                }
                cur = node.next.as_deref();
            }
            idx = (idx + 1) & self.mask();
        }
        steps == n
    }

    /// A key from a random non-empty bucket (not uniform, as in Redis).
    pub fn random_key(&self, seed: u64) -> Option<&[u8]> {
        self.random_entry(seed).map(|(k, _)| k)
    }

    /// A (key, value) from a random non-empty bucket (not uniform).
    pub fn random_entry(&self, mut seed: u64) -> Option<(&[u8], &V)> {
        if self.len == 0 {
            return None;
        }
        let n = self.buckets.len();
        // Sparse tables: bounded probing, then fall back to a linear walk.
        for _ in 0..64 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let idx = (seed >> 17) as usize % n;
            if let Some(node) = self.buckets[idx].as_deref() {
                let mut len = 0usize;
                let mut c = Some(node);
                while let Some(x) = c {
                    len += 1;
                    c = x.next.as_deref();
                }
                let pick = (seed as usize >> 3) % len;
                let mut c = node;
                for _ in 0..pick {
                    c = c.next.as_deref().expect("counted");
                }
                return Some((c.key.as_slice(), &c.entry));
            }
        }
        self.iter().next()
    }
}

impl Dict<Entry> {
    /// Updates the access clock (`stamp` gets the entry's `lru` field)
    /// without counting as a write; returns whether the key exists.
    pub fn touch(&mut self, hash: u64, key: &[u8], stamp: impl FnOnce(&mut u32)) -> bool {
        if self.buckets.is_empty() {
            return false;
        }
        let idx = hash as usize & self.mask();
        let mut cur = self.buckets[idx].as_deref_mut();
        while let Some(n) = cur {
            if n.key.as_slice() == key {
                stamp(&mut n.entry.lru);
                return true;
            }
            cur = n.next.as_deref_mut();
        }
        false
    }

    /// Starts a snapshot of this table at epoch `epoch` (call with the cut
    /// held: every shard locked).
    pub fn begin_snapshot(&mut self, epoch: u32, db: u32, sink: std::sync::Arc<dyn Capture>) {
        self.epoch = epoch;
        self.snap = Some(Box::new(SnapHook {
            epoch,
            db,
            cursor: 0,
            sink,
        }));
    }

    /// Captures not-yet-captured entries in up to `budget` buckets; returns
    /// true when the whole table has been walked (the hook is then removed).
    pub fn snapshot_step(&mut self, budget: usize) -> bool {
        let Some(h) = self.snap.as_deref_mut() else {
            return true;
        };
        if self.buckets.is_empty() {
            self.snap = None;
            return true;
        }
        let mask = (self.buckets.len() - 1) as u64;
        let mut cursor = h.cursor;
        for _ in 0..budget {
            let mut cur = self.buckets[(cursor & mask) as usize].as_deref_mut();
            while let Some(n) = cur {
                if n.entry.epoch < h.epoch {
                    h.sink.capture(h.db, n.key.as_slice(), &n.entry);
                    n.entry.epoch = h.epoch;
                }
                cur = n.next.as_deref_mut();
            }
            cursor = (cursor | !mask)
                .reverse_bits()
                .wrapping_add(1)
                .reverse_bits();
            if cursor == 0 {
                self.snap = None;
                return true;
            }
        }
        h.cursor = cursor;
        false
    }

    /// Abandons a snapshot (failure); entries keep their stamps, which is
    /// harmless: the next snapshot uses a higher epoch.
    pub fn abort_snapshot(&mut self) {
        self.snap = None;
    }

    pub fn snapshot_active(&self) -> bool {
        self.snap.is_some()
    }
}

impl<V: Slot> Drop for Dict<V> {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    fn e(v: i64) -> Entry {
        Entry::new(Value::Int(v))
    }

    #[derive(Default)]
    struct Sink(std::sync::Mutex<Vec<(u32, Vec<u8>, i64)>>);
    impl Capture for Sink {
        fn capture(&self, db: u32, key: &[u8], e: &Entry) {
            let v = match e.value {
                Value::Int(i) => i,
                _ => -1,
            };
            self.0.lock().unwrap().push((db, key.to_vec(), v));
        }
    }

    #[test]
    fn snapshot_is_the_state_at_the_cut() {
        let mut d = Dict::new();
        let k = |i: i64| format!("k{i}");
        for i in 0..2000 {
            d.insert(hash_key(k(i).as_bytes()), k(i).as_bytes(), e(i));
        }
        let sink = std::sync::Arc::new(Sink::default());
        d.begin_snapshot(1, 7, sink.clone());
        let mut steps = 0;
        while !d.snapshot_step(16) {
            steps += 1;
            // Writes interleaved with the walk: updates, deletes, inserts
            // (which grow the table), and expiry-style removals.
            let i = steps as i64;
            d.insert(hash_key(k(i).as_bytes()), k(i).as_bytes(), e(-i));
            d.remove(hash_key(k(1000 + i).as_bytes()), k(1000 + i).as_bytes());
            for j in 0..20 {
                let n = 10_000 + steps as i64 * 20 + j;
                d.insert(hash_key(k(n).as_bytes()), k(n).as_bytes(), e(n));
            }
            if let Some(x) = d.get_mut(hash_key(k(500 + i).as_bytes()), k(500 + i).as_bytes()) {
                x.value = Value::Int(0);
            }
        }
        let mut got = std::mem::take(&mut *sink.0.lock().unwrap());
        got.sort();
        let mut want: Vec<(u32, Vec<u8>, i64)> =
            (0..2000).map(|i| (7, k(i).into_bytes(), i)).collect();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn insert_get_remove() {
        let mut d = Dict::new();
        for i in 0..1000i64 {
            let k = i.to_string();
            assert!(d
                .insert(hash_key(k.as_bytes()), k.as_bytes(), e(i))
                .is_none());
        }
        assert_eq!(d.len(), 1000);
        for i in 0..1000i64 {
            let k = i.to_string();
            assert!(
                matches!(d.get(hash_key(k.as_bytes()), k.as_bytes()).map(|e| &e.value), Some(Value::Int(x)) if *x == i)
            );
        }
        for i in 0..990i64 {
            let k = i.to_string();
            assert!(d.remove(hash_key(k.as_bytes()), k.as_bytes()).is_some());
        }
        assert_eq!(d.len(), 10);
        assert!(d.bucket_bytes() < 1000 * 8, "table shrank");
        assert_eq!(d.iter().count(), 10);
    }

    #[test]
    fn scan_survives_growth_and_shrink() {
        let mut d = Dict::new();
        let key = |i: u32| format!("k{i}");
        for i in 0..500 {
            d.insert(hash_key(key(i).as_bytes()), key(i).as_bytes(), e(0));
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut round = 0u32;
        loop {
            cursor = d.scan(cursor, |k, _| {
                seen.insert(k.to_vec());
            });
            round += 1;
            // Grow a lot, then shrink, while the scan is in progress.
            if round == 20 {
                for i in 500..5000 {
                    d.insert(hash_key(key(i).as_bytes()), key(i).as_bytes(), e(0));
                }
            }
            if round == 200 {
                for i in 600..5000 {
                    d.remove(hash_key(key(i).as_bytes()), key(i).as_bytes());
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..500 {
            assert!(
                seen.contains(key(i).as_bytes()),
                "key {i} present throughout was missed"
            );
        }
    }

    #[test]
    fn sample_walks_from_a_random_bucket() {
        let mut d = Dict::new();
        for i in 0..1000i64 {
            let k = i.to_string();
            d.insert(hash_key(k.as_bytes()), k.as_bytes(), e(i));
        }
        // Stops once enough were accepted.
        let mut n = 0;
        d.sample(12345, 5, 1 << 20, |_, _| {
            n += 1;
            true
        });
        assert_eq!(n, 5);
        // A filter nothing passes: bounded by the bucket budget, and a
        // budget covering the table visits every entry and says so.
        let mut seen = 0;
        assert!(!d.sample(7, 5, 10, |_, _| {
            seen += 1;
            false
        }));
        assert!(seen < 100);
        let mut all = 0;
        assert!(d.sample(7, 5, usize::MAX, |_, _| {
            all += 1;
            false
        }));
        assert_eq!(all, 1000);
        assert!(Dict::<Entry>::new().sample(1, 5, 50, |_, _| true));
    }

    #[test]
    fn retain_sweeps_everything_eventually() {
        let mut d = Dict::new();
        for i in 0..1000i64 {
            let k = i.to_string();
            d.insert(hash_key(k.as_bytes()), k.as_bytes(), e(i));
        }
        let mut cursor = 0;
        let mut removed = 0;
        loop {
            cursor = d.retain_from(
                cursor,
                7,
                |_, e| !matches!(e.value, Value::Int(x) if x % 2 == 0),
                |_, _| removed += 1,
            );
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(removed, 500);
        assert_eq!(d.len(), 500);
    }
}
