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
//!
//! Resizing is incremental, as in Redis: a resize allocates the new bucket
//! array and keeps the old one; every write then moves a few old buckets
//! (and the bucket of the key it touches) across, so no single command pays
//! for rehashing a whole table (a shard of 30 k keys took ~3 ms in one go,
//! which showed as the p99 of a SET load that grows the keyspace). While
//! both arrays exist, reads look in both, and walks by cursor (SCAN, the
//! expiry sweep, the snapshot walk) visit, for each cursor, the bucket of
//! the smaller array and every bucket of the larger one that splits from
//! it (Redis's `dictScan` over two tables), which keeps the guarantee
//! above: an entry is found wherever it sits when its cursor comes up.

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

type Bucket<V> = Option<Box<Node<V>>>;
/// The smaller and the larger bucket array of a cursor walk.
type Arrays<'a, V> = (&'a [Bucket<V>], &'a [Bucket<V>]);

const MIN_BUCKETS: usize = 4;
/// While a resize is under way, each write moves up to this many non-empty
/// old buckets to the new array, looking at no more than `REHASH_VISITS`
/// buckets (empty ones cost a look). A growing table moves its n old
/// buckets within about n/3 inserts, long before it must grow again.
const REHASH_MOVES: usize = 2;
const REHASH_VISITS: usize = 16;
/// Tables up to this many buckets are resized in one go (cheaper than
/// keeping two arrays).
const REHASH_AT_ONCE: usize = 256;

/// Generic over the stored value: the keyspace uses `Dict<Entry>`; large
/// hashes, sets and sorted sets use it too (for the same SCAN guarantee).
pub struct Dict<V: Slot = Entry> {
    buckets: Vec<Bucket<V>>,
    /// The array being emptied into `buckets` while a resize is under way
    /// (empty otherwise). Its buckets below `moved` are empty; others may
    /// be emptied out of order (a write moves its key's bucket first).
    old: Vec<Bucket<V>>,
    moved: usize,
    len: usize,
    /// Entries with a time to live. Kept by every insert, replace and
    /// removal here; a caller that changes a TTL in place reports it with
    /// [`Dict::ttl_changed`].
    ttls: usize,
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
    /// The value has a time to live (counted per table, for INFO's
    /// `expires=` and the expiry sweep).
    fn has_ttl(&self) -> bool {
        false
    }
    /// Hints the CPU to fetch the value's own allocation, if it has one
    /// (the third stage of a batch prefetch, see [`Dict::prefetch_value`]).
    fn prefetch_value(&self) {}
}

impl Slot for Entry {
    fn prefetch_value(&self) {
        use crate::value::Value;
        if let Value::Str(CompactBytes::Heap(b)) | Value::Raw(CompactBytes::Heap(b)) = &self.value {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: a prefetch is only a hint; it never faults, and the
            // allocation is live.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    b.as_ptr().cast::<i8>(),
                );
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = b;
        }
    }
    fn epoch(&self) -> u32 {
        self.epoch
    }
    fn set_epoch(&mut self, epoch: u32) {
        self.epoch = epoch;
    }
    fn as_entry(&self) -> Option<&Entry> {
        Some(self)
    }
    fn has_ttl(&self) -> bool {
        self.expire_at != 0
    }
}

impl Slot for CompactBytes {}
impl Slot for () {}
impl Slot for f64 {}
impl Slot for u64 {}

/// Receives the pre-write image of entries for an active snapshot.
pub trait Capture: Send + Sync {
    fn capture(&self, db: u32, key: &[u8], entry: &Entry);
    /// Entries the walk serialises in pieces (see [`Dict::snapshot_step`])
    /// rather than in one go under the shard lock.
    fn is_big(&self, _entry: &Entry) -> bool {
        false
    }
    /// Appends the encoding of `entry` from position `from` (0: with its
    /// header) to `out`, doing a bounded amount of work; returns the next
    /// position, or None once the entry is complete. With `all` set it
    /// encodes everything that is left.
    fn encode_piece(
        &self,
        _db: u32,
        _key: &[u8],
        _entry: &Entry,
        _from: usize,
        _all: bool,
        _out: &mut Vec<u8>,
    ) -> Option<usize> {
        None
    }
}

/// What one [`Dict::snapshot_step`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Walked a slice of buckets; more to do.
    Walked,
    /// Appended a piece of a big entry to the caller's buffer. `first`:
    /// the piece starts the entry; `last`: it ends it; `db`: the entry's
    /// database label.
    Piece { first: bool, last: bool, db: u32 },
    /// The table is fully captured; the hook is gone.
    Done,
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
///
/// Big values (the sink decides: a long list, a large string) are not
/// captured by the walk in one go. The walk leaves them uncaptured and
/// queues their keys; once the buckets are done, each step encodes one
/// bounded piece of the first queued entry (the shard lock is released
/// between pieces):
///
/// ```text
///  piece 1      piece 2      piece 3 ...      last piece: stamp epoch E
///  [hdr|a..b]   [b..c]       [c..d]           [..end]
///        a write to the entry between pieces (epoch still < E):
///        the writer encodes the rest [pos..end] into the hook
///        (big_rest) from the unchanged old value, stamps E, then
///        writes; the next step hands that rest over as the last piece
/// ```
///
/// So the pieces always come from one unchanged image: the value at the
/// cut. A write to a queued big entry before its first piece captures it
/// whole, like any other entry, and the queue then skips it (epoch = E).
pub struct SnapHook {
    pub epoch: u32,
    /// The logical database this table was at the cut (SWAPDB moves
    /// tables; the label moves with them).
    pub db: u32,
    pub cursor: u64,
    pub sink: std::sync::Arc<dyn Capture>,
    /// The bucket walk has wrapped.
    walked: bool,
    /// Big entries left for the piecewise phase; the first may be under way.
    big: std::collections::VecDeque<CompactBytes>,
    /// Position reached in `big[0]` (meaningful once `big_started`).
    big_pos: usize,
    big_started: bool,
    /// The remainder of `big[0]`, encoded by a writer about to change it.
    big_rest: Option<Vec<u8>>,
}

impl SnapHook {
    /// True while a big entry is part-way through its pieces (the caller
    /// must finish it before writing anything else to the file).
    pub fn big_in_progress(&self) -> bool {
        self.big_started
    }
}

#[inline]
fn capture<V: Slot>(h: &mut SnapHook, key: &CompactBytes, v: &mut V) {
    if v.epoch() < h.epoch {
        if let Some(e) = v.as_entry() {
            if h.big_started && h.big.front() == Some(key) {
                let mut rest = Vec::new();
                let _ = h
                    .sink
                    .encode_piece(h.db, key, e, h.big_pos, true, &mut rest);
                h.big_rest = Some(rest);
            } else {
                h.sink.capture(h.db, key.as_slice(), e);
            }
        }
        v.set_epoch(h.epoch);
    }
}

impl<V: Slot> Default for Dict<V> {
    fn default() -> Self {
        Self::new()
    }
}

/// Next reverse-binary cursor of a walk over a table with mask `mask`:
/// increments the cursor from its highest masked bit down, treating the
/// bits above the mask as set so the carry leaves the masked part cleanly.
#[inline]
fn next_cursor(cursor: u64, mask: u64) -> u64 {
    (cursor | !mask)
        .reverse_bits()
        .wrapping_add(1)
        .reverse_bits()
}

/// The arrays a cursor walk visits, smaller first; the second is empty
/// when no resize is under way.
fn walk_pair<'a, V>(
    old: &'a mut [Bucket<V>],
    new: &'a mut [Bucket<V>],
) -> (&'a mut [Bucket<V>], &'a mut [Bucket<V>]) {
    if old.is_empty() || new.len() < old.len() {
        (new, old)
    } else {
        (old, new)
    }
}

/// Calls `f(in_larger, index)` for every bucket cursor `cursor` stands
/// for and returns the next cursor: the bucket of the smaller array, then
/// each bucket of the larger one (length `large`, 0 when there is none)
/// whose index extends it, from the cursor's position on. `small` must not
/// be 0.
fn cursor_buckets(small: usize, large: usize, cursor: u64, mut f: impl FnMut(bool, usize)) -> u64 {
    let m0 = (small - 1) as u64;
    f(false, (cursor & m0) as usize);
    if large == 0 {
        return next_cursor(cursor, m0);
    }
    let m1 = (large - 1) as u64;
    let mut v = cursor;
    loop {
        f(true, (v & m1) as usize);
        v = next_cursor(v, m1);
        // Once the bits the larger mask adds wrap to zero, the carry has
        // moved the smaller array's part on: `v` is the next cursor.
        if v & (m0 ^ m1) == 0 {
            return v;
        }
    }
}

/// [`cursor_buckets`] over shared buckets.
fn walk_cursor<V>(
    small: &[Bucket<V>],
    large: &[Bucket<V>],
    cursor: u64,
    mut f: impl FnMut(&Bucket<V>),
) -> u64 {
    cursor_buckets(small.len(), large.len(), cursor, |big, i| {
        f(if big { &large[i] } else { &small[i] })
    })
}

/// [`cursor_buckets`] over mutable buckets.
fn walk_cursor_mut<V>(
    small: &mut [Bucket<V>],
    large: &mut [Bucket<V>],
    cursor: u64,
    mut f: impl FnMut(&mut Bucket<V>),
) -> u64 {
    cursor_buckets(small.len(), large.len(), cursor, |big, i| {
        f(if big { &mut large[i] } else { &mut small[i] })
    })
}

fn chain_find<'a, V>(head: &'a Bucket<V>, key: &[u8]) -> Option<&'a Node<V>> {
    let mut cur = head.as_deref();
    while let Some(n) = cur {
        if n.key.as_slice() == key {
            return Some(n);
        }
        cur = n.next.as_deref();
    }
    None
}

fn chain_find_mut<'a, V>(head: &'a mut Bucket<V>, key: &[u8]) -> Option<&'a mut Node<V>> {
    let mut cur = head.as_deref_mut();
    while let Some(n) = cur {
        if n.key.as_slice() == key {
            return Some(n);
        }
        cur = n.next.as_deref_mut();
    }
    None
}

/// Drops a chain node by node (recursive drop of a long chain could
/// overflow the stack).
fn drop_chain<V>(b: &mut Bucket<V>) {
    let mut head = b.take();
    while let Some(mut n) = head {
        head = n.next.take();
    }
}

impl<V: Slot> Dict<V> {
    pub const fn new() -> Self {
        Dict {
            buckets: Vec::new(),
            old: Vec::new(),
            moved: 0,
            len: 0,
            ttls: 0,
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

    /// Entries with a time to live (Redis's `expires` dict size).
    pub fn ttl_count(&self) -> usize {
        self.ttls
    }

    /// A caller changed an entry's time to live in place (had one before,
    /// has one now).
    pub fn ttl_changed(&mut self, had: bool, has: bool) {
        match (had, has) {
            (false, true) => self.ttls += 1,
            (true, false) => self.ttls -= 1,
            _ => {}
        }
    }

    /// Bytes of one entry's node: link, key (inline up to
    /// `bytes::INLINE_CAP`) and slot (for memory reports).
    pub const fn node_size() -> usize {
        std::mem::size_of::<Node<V>>()
    }

    /// Bytes of bucket arrays (for memory reports).
    pub fn bucket_bytes(&self) -> usize {
        (self.buckets.capacity() + self.old.capacity()) * std::mem::size_of::<Bucket<V>>()
    }

    /// True while a resize is under way (two bucket arrays).
    pub fn is_rehashing(&self) -> bool {
        !self.old.is_empty()
    }

    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    pub fn get(&self, hash: u64, key: &[u8]) -> Option<&V> {
        if !self.old.is_empty() {
            let i = hash as usize & (self.old.len() - 1);
            if let Some(n) = chain_find(&self.old[i], key) {
                return Some(&n.entry);
            }
        }
        if self.buckets.is_empty() {
            return None;
        }
        chain_find(&self.buckets[hash as usize & self.mask()], key).map(|n| &n.entry)
    }

    /// Before a write near `hash` during a resize: moves the old bucket
    /// `hash` falls in (so the key, if present, is in `buckets`), plus a
    /// few more.
    #[inline]
    fn settle(&mut self, hash: u64) {
        if !self.old.is_empty() {
            self.move_bucket(hash as usize & (self.old.len() - 1));
            self.rehash_step(REHASH_MOVES, REHASH_VISITS);
        }
    }

    /// Moves old bucket `i`'s chain into `buckets`.
    fn move_bucket(&mut self, i: usize) {
        let mask = self.mask();
        let mut head = self.old[i].take();
        while let Some(mut node) = head {
            head = node.next.take();
            let idx = hash_key(&node.key) as usize & mask;
            node.next = self.buckets[idx].take();
            self.buckets[idx] = Some(node);
        }
    }

    /// Moves up to `moves` non-empty old buckets, looking at no more than
    /// `visits`; drops the old array once it is empty.
    fn rehash_step(&mut self, mut moves: usize, mut visits: usize) {
        while self.moved < self.old.len() && moves > 0 && visits > 0 {
            if self.old[self.moved].is_some() {
                self.move_bucket(self.moved);
                moves -= 1;
            }
            self.moved += 1;
            visits -= 1;
        }
        if self.moved >= self.old.len() {
            self.old = Vec::new();
            self.moved = 0;
        }
    }

    fn finish_rehash(&mut self) {
        if !self.old.is_empty() {
            self.rehash_step(usize::MAX, usize::MAX);
        }
    }

    /// Starts a resize to `new_len` buckets (a power of two). A resize
    /// still under way is finished first; small or empty tables are
    /// resized at once.
    fn start_resize(&mut self, new_len: usize) {
        debug_assert!(new_len.is_power_of_two());
        self.finish_rehash();
        let mut fresh = Vec::new();
        fresh.resize_with(new_len, || None);
        self.old = std::mem::replace(&mut self.buckets, fresh);
        self.moved = 0;
        if self.len == 0 {
            self.old = Vec::new();
        } else if self.old.len() <= REHASH_AT_ONCE {
            self.finish_rehash();
        }
    }

    /// The value for writing: during a snapshot, its pre-write image is
    /// captured first (see [`SnapHook`]).
    pub fn get_mut(&mut self, hash: u64, key: &[u8]) -> Option<&mut V> {
        if self.buckets.is_empty() {
            return None;
        }
        self.settle(hash);
        let idx = hash as usize & self.mask();
        let n = chain_find_mut(&mut self.buckets[idx], key)?;
        if let Some(h) = self.snap.as_deref_mut() {
            capture(h, &n.key, &mut n.entry);
        }
        Some(&mut n.entry)
    }

    /// Inserts or replaces; returns the previous entry for the key.
    pub fn insert(&mut self, hash: u64, key: &[u8], entry: V) -> Option<V> {
        let epoch = self.epoch;
        if let Some(e) = self.get_mut(hash, key) {
            let mut entry = entry;
            entry.set_epoch(epoch);
            let (had, has) = (e.has_ttl(), entry.has_ttl());
            let old = std::mem::replace(e, entry);
            self.ttl_changed(had, has);
            return Some(old);
        }
        self.insert_new(hash, CompactBytes::new(key), entry);
        None
    }

    /// Like [`Dict::insert`] with the key already built (the snapshot
    /// loader builds keys outside the shard lock).
    pub fn insert_owned(&mut self, hash: u64, key: CompactBytes, entry: V) -> Option<V> {
        let epoch = self.epoch;
        if let Some(e) = self.get_mut(hash, &key) {
            let mut entry = entry;
            entry.set_epoch(epoch);
            let (had, has) = (e.has_ttl(), entry.has_ttl());
            let old = std::mem::replace(e, entry);
            self.ttl_changed(had, has);
            return Some(old);
        }
        self.insert_new(hash, key, entry);
        None
    }

    /// Grows the bucket array to hold `n` entries without a resize (never
    /// shrinks). The loader calls this with the key count a snapshot
    /// declares, so loading does not rehash the table log2(n) times.
    pub fn reserve(&mut self, n: usize) {
        let want = n.max(MIN_BUCKETS).next_power_of_two();
        if want > self.buckets.len() {
            self.start_resize(want);
            self.finish_rehash();
        }
    }

    /// Hints the CPU to fetch the bucket `hash` falls in (batch loaders
    /// prefetch a few keys ahead so the cache misses overlap).
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        if let Some(b) = self.buckets.get(hash as usize & self.mask()) {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: a prefetch is only a hint; it never faults, and the
            // pointer is to a live element anyway.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    (b as *const Bucket<V>).cast::<i8>(),
                );
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = b;
        }
    }

    /// The second stage of [`Dict::prefetch`]: once the bucket is cached,
    /// requests the first node of its chain (whose key an insert compares).
    #[inline]
    pub fn prefetch_head(&self, hash: u64) {
        if let Some(Some(n)) = self.buckets.get(hash as usize & self.mask()) {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `prefetch`; the node is live.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    (&**n as *const Node<V>).cast::<i8>(),
                );
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = n;
        }
    }

    /// The third stage of [`Dict::prefetch`]: once the chain's first
    /// nodes are cached, requests the value's allocation of `key` (read
    /// by GET, freed by SET), if it is in the first two nodes.
    #[inline]
    pub fn prefetch_value(&self, hash: u64, key: &[u8]) {
        let Some(mut cur) = self
            .buckets
            .get(hash as usize & self.mask())
            .and_then(|b| b.as_deref())
        else {
            return;
        };
        for _ in 0..2 {
            if cur.key.as_slice() == key {
                cur.entry.prefetch_value();
                return;
            }
            match cur.next.as_deref() {
                Some(n) => cur = n,
                None => return,
            }
        }
    }

    /// Inserts a key known to be absent and returns its entry.
    pub fn insert_new(&mut self, hash: u64, key: CompactBytes, mut entry: V) -> &mut V {
        entry.set_epoch(self.epoch);
        if self.len >= self.buckets.len() {
            self.start_resize((self.buckets.len() * 2).max(MIN_BUCKETS));
        } else if !self.old.is_empty() {
            self.rehash_step(REHASH_MOVES, REHASH_VISITS);
        }
        let idx = hash as usize & self.mask();
        let next = self.buckets[idx].take();
        self.len += 1;
        self.ttls += usize::from(entry.has_ttl());
        &mut self.buckets[idx]
            .insert(Box::new(Node { next, key, entry }))
            .entry
    }

    pub fn remove(&mut self, hash: u64, key: &[u8]) -> Option<(CompactBytes, V)> {
        if self.buckets.is_empty() {
            return None;
        }
        self.settle(hash);
        let idx = hash as usize & self.mask();
        let mut link = &mut self.buckets[idx];
        loop {
            match link {
                None => return None,
                Some(n) if n.key.as_slice() == key => {
                    if let Some(h) = self.snap.as_deref_mut() {
                        capture(h, &n.key, &mut n.entry);
                    }
                    let mut node = link.take().expect("matched Some");
                    *link = node.next.take();
                    self.len -= 1;
                    self.ttls -= usize::from(node.entry.has_ttl());
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
        if self.old.is_empty() && n > MIN_BUCKETS && self.len * 8 < n {
            let mut target = MIN_BUCKETS;
            while target < self.len * 2 {
                target *= 2;
            }
            self.start_resize(target);
        }
    }

    pub fn clear(&mut self) {
        if let Some(h) = self.snap.as_deref_mut() {
            for b in self.old.iter_mut().chain(self.buckets.iter_mut()) {
                let mut cur = b.as_deref_mut();
                while let Some(n) = cur {
                    capture(h, &n.key, &mut n.entry);
                    cur = n.next.as_deref_mut();
                }
            }
        }
        for b in self.old.iter_mut().chain(self.buckets.iter_mut()) {
            drop_chain(b);
        }
        self.buckets = Vec::new();
        self.old = Vec::new();
        self.moved = 0;
        self.len = 0;
        self.ttls = 0;
    }

    /// The arrays a cursor walk visits (see [`walk_cursor`]), or None when
    /// the table has no buckets.
    fn walk_arrays(&self) -> Option<Arrays<'_, V>> {
        if self.buckets.is_empty() {
            None
        } else if self.old.is_empty() || self.buckets.len() < self.old.len() {
            Some((&self.buckets, &self.old))
        } else {
            Some((&self.old, &self.buckets))
        }
    }

    /// Visits the buckets at `cursor` and returns the next cursor (0 =
    /// done). The callback may not change the table; collect keys and act
    /// after.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &V)) -> u64 {
        let Some((small, large)) = self.walk_arrays() else {
            return 0;
        };
        walk_cursor(small, large, cursor, |b| {
            let mut cur = b.as_deref();
            while let Some(n) = cur {
                f(&n.key, &n.entry);
                cur = n.next.as_deref();
            }
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> {
        self.old.iter().chain(self.buckets.iter()).flat_map(|b| {
            let mut cur = b.as_deref();
            std::iter::from_fn(move || {
                let n = cur?;
                cur = n.next.as_deref();
                Some((n.key.as_slice(), &n.entry))
            })
        })
    }

    /// Removes every entry for which `keep` returns false, visiting at most
    /// `budget` cursor positions from `cursor`; returns the next cursor
    /// (0 = wrapped). Used by the active expiry sweep.
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

    /// Visits at most `budget` cursor positions from `cursor` and returns
    /// the next cursor (0 = wrapped). `decide` says what happens to each
    /// entry: kept, removed (handed to `removed`), or changed in place by
    /// `modify`, which returns true when the entry is now to be removed.
    /// Entries are handed to a running snapshot before they are changed or
    /// removed. A resize under way also advances (so a table nobody writes
    /// to still finishes it).
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
        if !self.old.is_empty() {
            self.rehash_step(budget, budget * REHASH_VISITS);
        }
        let before = self.len;
        let Dict {
            buckets,
            old,
            snap,
            len,
            ttls,
            ..
        } = self;
        let (small, large) = walk_pair(old, buckets);
        for _ in 0..budget {
            cursor = walk_cursor_mut(small, large, cursor, |mut link| loop {
                let action = match link.as_deref() {
                    None => break,
                    Some(n) => decide(&n.key, &n.entry),
                };
                let remove = match action {
                    Sweep::Keep => false,
                    Sweep::Remove | Sweep::Modify => {
                        let n = link.as_mut().expect("checked above");
                        if let Some(h) = snap.as_deref_mut() {
                            capture(h, &n.key, &mut n.entry);
                        }
                        let had = n.entry.has_ttl();
                        let remove =
                            matches!(action, Sweep::Remove) || modify(&n.key, &mut n.entry);
                        // `modify` may change the TTL; what is removed is
                        // uncounted below, as it is now.
                        *ttls = *ttls + usize::from(n.entry.has_ttl()) - usize::from(had);
                        remove
                    }
                };
                if remove {
                    let mut node = link.take().expect("checked above");
                    *link = node.next.take();
                    *len -= 1;
                    *ttls -= usize::from(node.entry.has_ttl());
                    removed(node.key, node.entry);
                } else {
                    link = &mut link.as_mut().expect("checked above").next;
                }
            });
            if cursor == 0 {
                break;
            }
        }
        // Only a sweep that removed something shrinks (a table sized ahead
        // by `reserve` stays sized until entries actually go).
        if self.len < before {
            self.maybe_shrink();
        }
        cursor
    }

    /// Visits entries in consecutive buckets from a random one (Redis's
    /// `dictGetSomeKeys`; both arrays during a resize): stops once `want`
    /// of them were accepted by `f` or after `max_buckets` bucket indexes.
    /// Returns true when every bucket was visited (so a caller that
    /// accepted nothing knows there is nothing).
    pub fn sample(
        &self,
        seed: u64,
        want: usize,
        max_buckets: usize,
        mut f: impl FnMut(&[u8], &V) -> bool,
    ) -> bool {
        if self.len == 0 {
            return true;
        }
        let n = self.buckets.len().max(self.old.len());
        let mask = n - 1;
        let steps = max_buckets.min(n);
        let mut idx = (seed as usize) & mask;
        let mut got = 0;
        for step in 0..steps {
            for (t, table) in [&self.old, &self.buckets].into_iter().enumerate() {
                let mut cur = table.get(idx).and_then(|b| b.as_deref());
                while let Some(node) = cur {
                    if f(&node.key, &node.entry) {
                        got += 1;
                        if got >= want {
                            let rest_empty =
                                t == 1 || self.buckets.get(idx).is_none_or(|b| b.is_none());
                            return step + 1 == n && node.next.is_none() && rest_empty;
                        }
                    }
                    cur = node.next.as_deref();
                }
            }
            idx = (idx + 1) & mask;
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
        let (a, n) = (self.old.len(), self.old.len() + self.buckets.len());
        // Sparse tables: bounded probing, then fall back to a linear walk.
        for _ in 0..64 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let idx = (seed >> 17) as usize % n;
            let bucket = if idx < a {
                &self.old[idx]
            } else {
                &self.buckets[idx - a]
            };
            if let Some(node) = bucket.as_deref() {
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
        self.settle(hash);
        let idx = hash as usize & self.mask();
        match chain_find_mut(&mut self.buckets[idx], key) {
            Some(n) => {
                stamp(&mut n.entry.lru);
                true
            }
            None => false,
        }
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
            walked: false,
            big: Default::default(),
            big_pos: 0,
            big_started: false,
            big_rest: None,
        }));
    }

    /// One bounded step of the snapshot of this table: a slice of up to
    /// `budget` buckets (capturing entries not yet captured), or, once the
    /// walk is done, one piece of a big entry appended to `piece`. The
    /// hook is removed when everything is captured.
    pub fn snapshot_step(&mut self, budget: usize, piece: &mut Vec<u8>) -> Step {
        let Dict {
            buckets, old, snap, ..
        } = self;
        let Some(h) = snap.as_deref_mut() else {
            return Step::Done;
        };
        if !h.walked {
            if buckets.is_empty() {
                h.walked = true;
                return Step::Walked;
            }
            let (small, large) = walk_pair(old, buckets);
            let mut cursor = h.cursor;
            for _ in 0..budget {
                cursor = walk_cursor_mut(small, large, cursor, |b| {
                    let mut cur = b.as_deref_mut();
                    while let Some(n) = cur {
                        if n.entry.epoch < h.epoch {
                            if h.sink.is_big(&n.entry) {
                                // A key queued twice (the walk can revisit
                                // entries after a resize) is skipped the
                                // second time: it is stamped by then.
                                h.big.push_back(n.key.clone());
                            } else {
                                h.sink.capture(h.db, n.key.as_slice(), &n.entry);
                                n.entry.epoch = h.epoch;
                            }
                        }
                        cur = n.next.as_deref_mut();
                    }
                });
                if cursor == 0 {
                    h.walked = true;
                    break;
                }
            }
            h.cursor = cursor;
            return Step::Walked;
        }
        loop {
            let Some(key) = h.big.front() else {
                *snap = None;
                return Step::Done;
            };
            if let Some(rest) = h.big_rest.take() {
                // A writer finished this entry from the unchanged image.
                piece.extend_from_slice(&rest);
                h.big.pop_front();
                h.big_started = false;
                h.big_pos = 0;
                return Step::Piece {
                    first: false,
                    last: true,
                    db: h.db,
                };
            }
            // The entry is in either array while a resize is under way.
            let hash = hash_key(key) as usize;
            let in_old = match old.len() {
                0 => None,
                n => chain_find_mut(&mut old[hash & (n - 1)], key),
            };
            let found = match in_old {
                Some(n) => Some(n),
                None => match buckets.len() {
                    0 => None,
                    n => chain_find_mut(&mut buckets[hash & (n - 1)], key),
                },
            };
            match found {
                // Gone or rewritten since the walk queued it: a writer
                // captured it whole first (it had not started).
                None => {
                    debug_assert!(!h.big_started, "a started entry ends through big_rest");
                    h.big.pop_front();
                }
                Some(n) if n.entry.epoch >= h.epoch => {
                    h.big.pop_front();
                }
                Some(n) => {
                    let first = !h.big_started;
                    let next = h
                        .sink
                        .encode_piece(h.db, key, &n.entry, h.big_pos, false, piece);
                    match next {
                        Some(p) => {
                            h.big_pos = p;
                            h.big_started = true;
                            return Step::Piece {
                                first,
                                last: false,
                                db: h.db,
                            };
                        }
                        None => {
                            n.entry.epoch = h.epoch;
                            h.big.pop_front();
                            h.big_started = false;
                            h.big_pos = 0;
                            return Step::Piece {
                                first,
                                last: true,
                                db: h.db,
                            };
                        }
                    }
                }
            }
        }
    }

    /// The snapshot hook, if a snapshot of this table is under way.
    pub fn snapshot_hook(&self) -> Option<&SnapHook> {
        self.snap.as_deref()
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
        let mut piece = Vec::new();
        while d.snapshot_step(16, &mut piece) != Step::Done {
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

    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// Random inserts, overwrites, removes and expiry-style sweeps in
    /// phases that grow and shrink the table, so a resize is under way
    /// much of the time; reads, counts and full scans agree with a model.
    #[test]
    fn incremental_resizes_lose_nothing() {
        let mut d: Dict = Dict::new();
        let mut model: std::collections::HashMap<Vec<u8>, i64> = Default::default();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let (mut rehashing_rounds, mut sweep_cursor, mut ttls) = (0, 0u64, 0usize);
        for round in 0..80_000u32 {
            let r = xorshift(&mut rng);
            let k = format!("k{}", r % 30_000).into_bytes();
            let h = hash_key(&k);
            let grow = (round / 10_000) % 2 == 0;
            let v = (r >> 32) as i64;
            // Every third value has a TTL (counted by the table).
            let with_ttl = |v: i64| {
                let mut x = e(v);
                if v % 3 == 0 {
                    x.expire_at = 1 + v.unsigned_abs();
                }
                x
            };
            let ttl = |v: &i64| usize::from(v % 3 == 0);
            if (r >> 20) % 10 < if grow { 8 } else { 2 } {
                let prev = d.insert(h, &k, with_ttl(v)).map(|x| x.value);
                let want = model.insert(k.clone(), v);
                assert_eq!(prev.is_some(), want.is_some());
                ttls = ttls + ttl(&v) - want.as_ref().map_or(0, ttl);
            } else {
                let got = d.remove(h, &k).map(|(key, x)| {
                    assert_eq!(key.as_slice(), &k[..]);
                    x.value
                });
                let want = model.remove(&k);
                assert_eq!(got.is_some(), want.is_some());
                ttls -= want.as_ref().map_or(0, ttl);
            }
            if d.is_rehashing() {
                rehashing_rounds += 1;
            }
            if round % 97 == 0 {
                let mut gone = Vec::new();
                sweep_cursor = d.retain_from(
                    sweep_cursor,
                    8,
                    |_, x| !matches!(x.value, Value::Int(i) if i % 13 == 0),
                    |key, _| gone.push(key.as_slice().to_vec()),
                );
                for key in gone {
                    ttls -= model.remove(&key).as_ref().map_or(0, ttl);
                }
            }
            assert_eq!(d.len(), model.len());
            assert_eq!(d.ttl_count(), ttls);
            if round % 5_000 == 0 {
                assert_eq!(d.iter().count(), model.len());
                for (key, v) in &model {
                    let got = d.get(hash_key(key), key).map(|x| &x.value);
                    assert!(matches!(got, Some(Value::Int(i)) if i == v));
                }
                let mut seen = std::collections::HashSet::new();
                let mut c = 0;
                loop {
                    c = d.scan(c, |key, _| {
                        seen.insert(key.to_vec());
                    });
                    if c == 0 {
                        break;
                    }
                }
                assert_eq!(seen.len(), model.len());
            }
        }
        assert!(
            rehashing_rounds > 1_000,
            "resizes ran in steps: {rehashing_rounds}"
        );
    }

    /// One insert past the load limit starts a resize but moves only a few
    /// buckets; the rest move with later writes, or with sweeps when
    /// nobody writes. Scans and snapshots over the two arrays see every
    /// key present throughout.
    #[test]
    fn a_resize_is_spread_over_later_work() {
        let key = |i: u32| format!("key:{i}");
        let mut d: Dict = Dict::new();
        for i in 0..4096 {
            d.insert(hash_key(key(i).as_bytes()), key(i).as_bytes(), e(i as i64));
        }
        assert!(!d.is_rehashing());
        d.insert(hash_key(b"one-more"), b"one-more", e(-1));
        assert!(
            d.is_rehashing(),
            "growth of a 4096-bucket table is incremental"
        );
        // A scan and a snapshot walk started now, with writes between
        // steps that move buckets across (grow, then shrink below).
        let sink = std::sync::Arc::new(Sink::default());
        d.begin_snapshot(1, 0, sink.clone());
        let mut seen = std::collections::HashSet::new();
        let (mut cursor, mut piece, mut steps) = (0, Vec::new(), 0u32);
        loop {
            cursor = d.scan(cursor, |k, _| {
                seen.insert(k.to_vec());
            });
            let _ = d.snapshot_step(1, &mut piece);
            steps += 1;
            let extra = format!("extra:{steps}");
            d.insert(hash_key(extra.as_bytes()), extra.as_bytes(), e(0));
            if cursor == 0 {
                break;
            }
        }
        while d.snapshot_step(64, &mut piece) != Step::Done {}
        for i in 0..4096 {
            assert!(seen.contains(key(i).as_bytes()), "scan missed key {i}");
        }
        let mut got: Vec<_> = std::mem::take(&mut *sink.0.lock().unwrap());
        got.sort();
        let mut want: Vec<_> = (0..4096)
            .map(|i| (0, key(i).into_bytes(), i as i64))
            .collect();
        want.push((0, b"one-more".to_vec(), -1));
        want.sort();
        assert_eq!(got, want, "the snapshot is the table at the cut");
        // Shrink: remove most keys; the shrink is incremental too, and a
        // table left alone finishes it through sweeps.
        for i in 0..4000 {
            d.remove(hash_key(key(i).as_bytes()), key(i).as_bytes());
        }
        for s in 1..=steps {
            let extra = format!("extra:{s}");
            d.remove(hash_key(extra.as_bytes()), extra.as_bytes());
        }
        assert_eq!(d.len(), 97);
        let mut c = 0;
        for _ in 0..100_000 {
            if !d.is_rehashing() {
                break;
            }
            c = d.retain_from(c, 16, |_, _| true, |_, _| {});
        }
        assert!(!d.is_rehashing(), "sweeps finish a resize");
        for i in 4000..4096 {
            assert!(d
                .get(hash_key(key(i).as_bytes()), key(i).as_bytes())
                .is_some());
        }
        assert!(d.bucket_bytes() < 4096 * 8);
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

    #[test]
    fn reserve_sizes_once_and_an_idle_sweep_keeps_it() {
        let mut d: Dict = Dict::new();
        d.reserve(1000);
        let bytes = d.bucket_bytes();
        assert_eq!(bytes, 1024 * 8);
        // An expiry sweep over the empty table removes nothing and must
        // not undo the reservation.
        d.retain_from(0, 10, |_, _| true, |_, _| {});
        assert_eq!(d.bucket_bytes(), bytes);
        for i in 0..1000i64 {
            let k = i.to_string();
            d.insert_owned(hash_key(k.as_bytes()), k.as_bytes().into(), e(i));
        }
        assert_eq!(d.bucket_bytes(), bytes, "no resize while filling");
        let k = b"7";
        assert!(d.insert_owned(hash_key(k), k[..].into(), e(-7)).is_some());
        assert_eq!(d.len(), 1000);
    }

    /// Strings over 8 bytes are "big": pieces of 4 bytes, the first
    /// prefixed with `key=`.
    #[derive(Default)]
    struct PieceSink(std::sync::Mutex<Vec<(Vec<u8>, Vec<u8>)>>);
    fn str_of(e: &Entry) -> Vec<u8> {
        match &e.value {
            Value::Str(b) => b.to_vec(),
            _ => Vec::new(),
        }
    }
    impl Capture for PieceSink {
        fn capture(&self, _db: u32, key: &[u8], e: &Entry) {
            self.0.lock().unwrap().push((key.to_vec(), str_of(e)));
        }
        fn is_big(&self, e: &Entry) -> bool {
            str_of(e).len() > 8
        }
        fn encode_piece(
            &self,
            _db: u32,
            key: &[u8],
            e: &Entry,
            from: usize,
            all: bool,
            out: &mut Vec<u8>,
        ) -> Option<usize> {
            let v = str_of(e);
            if from == 0 {
                out.extend_from_slice(key);
                out.push(b'=');
            }
            let end = if all { v.len() } else { v.len().min(from + 4) };
            out.extend_from_slice(&v[from..end]);
            (end < v.len()).then_some(end)
        }
    }

    #[test]
    fn big_entries_in_pieces_keep_the_image_at_the_cut() {
        let sv = |s: &str| Entry::new(Value::Str(s.as_bytes().into()));
        let mut d = Dict::new();
        let mut want = Vec::new();
        for i in 0..50 {
            let (k, v) = (format!("k{i}"), format!("value-number-{i:04}"));
            let v = if i % 3 == 0 { format!("s{i}") } else { v };
            d.insert(hash_key(k.as_bytes()), k.as_bytes(), sv(&v));
            want.push((k.into_bytes(), v.into_bytes()));
        }
        let sink = std::sync::Arc::new(PieceSink::default());
        d.begin_snapshot(1, 0, sink.clone());
        let mut piece = Vec::new();
        let mut pieces: Vec<u8> = Vec::new();
        let mut n = 0;
        loop {
            let step = d.snapshot_step(4, &mut piece);
            if let Step::Piece { first, last, .. } = step {
                assert_eq!(first, pieces.is_empty());
                pieces.extend_from_slice(&piece);
                piece.clear();
                if last {
                    let at = pieces.iter().position(|&b| b == b'=').unwrap();
                    let (k, v) = (pieces[..at].to_vec(), pieces[at + 1..].to_vec());
                    sink.0.lock().unwrap().push((k, v));
                    pieces.clear();
                }
            }
            if step == Step::Done {
                break;
            }
            // Writes between steps: overwrite, delete and re-create big
            // entries, some of them part-way through their pieces.
            n += 1;
            let k = format!("k{}", (n * 7) % 50);
            match n % 3 {
                0 => {
                    if let Some(e) = d.get_mut(hash_key(k.as_bytes()), k.as_bytes()) {
                        e.value = Value::Str(b"overwritten-after-the-cut"[..].into());
                    }
                }
                1 => {
                    d.remove(hash_key(k.as_bytes()), k.as_bytes());
                }
                _ => {
                    d.insert(hash_key(k.as_bytes()), k.as_bytes(), sv("new-after-cut!"));
                }
            }
        }
        let mut got = std::mem::take(&mut *sink.0.lock().unwrap());
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }
}
