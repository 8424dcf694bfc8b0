//! Key access for handlers: lock the right shard, apply lazy expiry,
//! count hits and misses, and propagate what changed.
//!
//! A handler holds a [`KeyLock`] (one key) or [`MultiLock`] (several keys,
//! shards locked in ascending order) for the duration of its work on the
//! keyspace, and calls [`Ctx::propagate`] *before* dropping it, so the
//! order of records in the log is the order in which the changes were
//! applied.
//!
//! Every shard access by a handler goes through the `Ctx` ([`Ctx::shard`],
//! [`Ctx::shards`], [`Ctx::shards_all`], or the key helpers built on
//! them), never `srv.ks.lock` directly: inside EXEC the transaction
//! already holds the shards it needs ([`TxnScope`]), and those functions
//! hand out the held shard instead of locking it again (the mutexes are
//! not reentrant). Outside a transaction they lock as before, at the cost
//! of one branch.

use std::cell::{Cell, RefCell};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering::Relaxed;

use basalt_storage::{Entry, Keyspace, Shard, ShardGuard};

use crate::commands::Ctx;

/// A locked shard: either locked by this command, or lent by the
/// transaction that holds it.
pub enum ShardRef<'s> {
    Own(ShardGuard<'s>),
    Held(HeldRef<'s>),
}

/// A shard lent by a [`TxnScope`]; returns it on drop.
pub struct HeldRef<'s> {
    shard: &'s mut Shard,
    busy: &'s Cell<bool>,
}

impl Drop for HeldRef<'_> {
    fn drop(&mut self) {
        self.busy.set(false);
    }
}

impl Deref for ShardRef<'_> {
    type Target = Shard;
    #[inline]
    fn deref(&self) -> &Shard {
        match self {
            ShardRef::Own(g) => g,
            ShardRef::Held(h) => h.shard,
        }
    }
}

impl DerefMut for ShardRef<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Shard {
        match self {
            ShardRef::Own(g) => &mut *g,
            ShardRef::Held(h) => h.shard,
        }
    }
}

struct HeldSlot {
    idx: usize,
    ptr: *mut Shard,
    busy: Cell<bool>,
}

/// The shards an EXEC holds for its whole run, and the buffer its
/// commands' effects go to (appended as one log record at the end, still
/// under the locks).
///
/// Lending: a handler never holds two locks on one shard at once (outside
/// a transaction that would deadlock), so each held shard is lent to at
/// most one `ShardRef` at a time; `busy` checks it at run time like a
/// `RefCell`, so a violation panics instead of aliasing.
pub struct TxnScope<'s> {
    slots: Box<[HeldSlot]>,
    _guards: Vec<ShardGuard<'s>>,
    log: RefCell<TxnLog>,
}

#[derive(Default)]
struct TxnLog {
    /// `[db u32 LE][commands]` once the first command is in.
    buf: Vec<u8>,
    /// The db the record's commands run in at its end (SELECTs inserted
    /// when an effect lands in another db).
    db: Option<usize>,
    cmds: usize,
}

impl<'s> TxnScope<'s> {
    /// Locks `shards` (any order, duplicates allowed) in ascending order,
    /// or every shard when `all`.
    pub fn lock(ks: &'s Keyspace, mut shards: Vec<usize>, all: bool) -> Self {
        if all {
            shards = (0..ks.num_shards()).collect();
        }
        let mut guards: Vec<(usize, ShardGuard<'s>)> = ks.lock_many(shards);
        // Sorted by shard index (lock order), searched when lending.
        let slots: Box<[HeldSlot]> = guards
            .iter_mut()
            // The shard lives inside the keyspace's mutex, not in the
            // guard, so the pointer stays valid while the guard lives.
            .map(|(i, g)| HeldSlot {
                idx: *i,
                ptr: &mut **g as *mut Shard,
                busy: Cell::new(false),
            })
            .collect();
        let log = TxnLog {
            buf: Vec::with_capacity(512),
            ..TxnLog::default()
        };
        TxnScope {
            slots,
            _guards: guards.into_iter().map(|(_, g)| g).collect(),
            log: RefCell::new(log),
        }
    }

    fn lend(&self, idx: usize) -> Option<HeldRef<'_>> {
        let s = &self.slots[self.slots.binary_search_by_key(&idx, |s| s.idx).ok()?];
        assert!(
            !s.busy.replace(true),
            "shard {idx} lent twice inside a transaction"
        );
        // SAFETY: the guard for this shard is alive as long as `self`
        // (in `_guards`), so the pointee is valid and locked by us; `busy`
        // guarantees this is the only live reference to it.
        Some(HeldRef {
            shard: unsafe { &mut *s.ptr },
            busy: &s.busy,
        })
    }

    fn held_max(&self) -> Option<usize> {
        self.slots.last().map(|s| s.idx)
    }

    fn append(&self, db: usize, args: &[&[u8]]) {
        let mut l = self.log.borrow_mut();
        match l.db {
            None => l.buf.extend_from_slice(&(db as u32).to_le_bytes()),
            Some(d) if d != db => {
                let n = itoa::Buffer::new().format(db).to_string();
                encode_command(&[b"SELECT", n.as_bytes()], &mut l.buf);
            }
            _ => {}
        }
        l.db = Some(db);
        l.cmds += 1;
        encode_command(args, &mut l.buf);
    }

    /// The log record of everything the transaction changed, if anything.
    pub fn record(&self) -> Option<Vec<u8>> {
        let mut l = self.log.borrow_mut();
        (l.cmds > 0).then(|| std::mem::take(&mut l.buf))
    }
}

pub struct KeyLock<'s, 'k> {
    pub guard: ShardRef<'s>,
    pub db: usize,
    pub hash: u64,
    pub key: &'k [u8],
    /// For the `new` keyspace event (None while replaying the log).
    events: Option<&'s crate::shared::Shared>,
    /// The access field for an inserted entry that has none (0).
    fresh: u32,
    /// An LFU policy is on: an overwrite keeps the key's counter.
    lfu: bool,
}

/// The `new` keyspace event (class `n`) when an insert created the key.
#[inline]
fn created(events: Option<&crate::shared::Shared>, db: usize, key: &[u8], old: &Option<Entry>) {
    if let (Some(srv), None) = (events, old) {
        if srv.notify_flags.load(Relaxed) & crate::notify::NEW != 0 {
            crate::notify::notify(srv, db, crate::notify::NEW, b"new", key);
        }
    }
}

/// A stream key deleted or overwritten (Redis 7.0's
/// signalDeletedKeyAsReady), or a stream put under a key (dbAdd's
/// signalKeyAsReady): the key is looked at again when the command is
/// over, which serves its waiters or ends its XREADGROUP waits with
/// `-UNBLOCKED` (see `blocking::drain_ready`). Lists and sorted sets are
/// served by the command that fills them (`blocking::serve`); commands
/// that put whole values in place (COPY, MOVE, RESTORE, SWAPDB) mark them
/// themselves.
#[inline]
fn gone(
    events: Option<&crate::shared::Shared>,
    db: usize,
    key: &[u8],
    old: Option<&Entry>,
    new_stream: bool,
) {
    if let Some(srv) = events {
        if srv.blocked.blocked() > 0 && (new_stream || old.is_some_and(|e| is_stream(&e.value))) {
            crate::blocking::mark_ready(db, key);
        }
    }
}

#[inline]
fn is_stream(v: &basalt_storage::Value) -> bool {
    matches!(v, basalt_storage::Value::Stream(_))
}

impl<'s, 'k> KeyLock<'s, 'k> {
    pub fn get(&self) -> Option<&Entry> {
        self.guard.dbs[self.db].get(self.hash, self.key)
    }

    pub fn get_mut(&mut self) -> Option<&mut Entry> {
        self.guard.dbs[self.db].get_mut(self.hash, self.key)
    }

    pub fn exists(&self) -> bool {
        self.get().is_some()
    }

    /// Sets the key's expiry time in place (unix ms, 0: none), keeping the
    /// table's count of keys with a TTL; false if the key is absent.
    pub fn set_expire(&mut self, at: u64) -> bool {
        let d = &mut self.guard.dbs[self.db];
        let Some(e) = d.get_mut(self.hash, self.key) else {
            return false;
        };
        let had = e.expire_at != 0;
        e.expire_at = at;
        d.ttl_changed(had, at != 0);
        true
    }

    /// Inserts or replaces the whole entry; returns the old one.
    pub fn insert(&mut self, mut e: Entry) -> Option<Entry> {
        if e.lru == 0 {
            e.lru = self.fresh;
        }
        if self.lfu {
            // As Redis's `dbSetValue`: a new value for a key keeps its
            // access frequency.
            if let Some(old) = self.get() {
                e.lru = old.lru;
            }
        }
        let nb = is_stream(&e.value);
        let old = self.guard.dbs[self.db].insert(self.hash, self.key, e);
        created(self.events, self.db, self.key, &old);
        gone(self.events, self.db, self.key, old.as_ref(), nb);
        old
    }

    pub fn remove(&mut self) -> Option<Entry> {
        let old = self.guard.dbs[self.db]
            .remove(self.hash, self.key)
            .map(|(_, e)| e);
        gone(self.events, self.db, self.key, old.as_ref(), false);
        old
    }
}

/// Several keys locked together.
pub struct MultiLock<'s> {
    guards: Vec<(usize, ShardRef<'s>)>,
    pub db: usize,
    /// (hash, index into `guards`) per key position.
    slots: Vec<(u64, usize)>,
    events: Option<&'s crate::shared::Shared>,
    fresh: u32,
    lfu: bool,
}

impl<'s> MultiLock<'s> {
    fn dict(&mut self, i: usize) -> (&mut basalt_storage::Dict, u64) {
        let (h, g) = self.slots[i];
        let db = self.db;
        (&mut self.guards[g].1.dbs[db], h)
    }

    pub fn get(&mut self, i: usize, key: &[u8]) -> Option<&Entry> {
        let (d, h) = self.dict(i);
        d.get(h, key)
    }

    pub fn get_mut(&mut self, i: usize, key: &[u8]) -> Option<&mut Entry> {
        let (d, h) = self.dict(i);
        d.get_mut(h, key)
    }

    /// Puts an object that keeps its own access field (RENAME, COPY:
    /// Redis deletes the destination and adds the object).
    pub fn insert_object(&mut self, i: usize, key: &[u8], e: Entry) -> Option<Entry> {
        let lfu = std::mem::replace(&mut self.lfu, false);
        let old = self.insert(i, key, e);
        self.lfu = lfu;
        old
    }

    pub fn insert(&mut self, i: usize, key: &[u8], mut e: Entry) -> Option<Entry> {
        if e.lru == 0 {
            e.lru = self.fresh;
        }
        let lfu = self.lfu;
        let (d, h) = self.dict(i);
        if lfu {
            if let Some(old) = d.get(h, key) {
                e.lru = old.lru;
            }
        }
        let nb = is_stream(&e.value);
        let old = d.insert(h, key, e);
        created(self.events, self.db, key, &old);
        gone(self.events, self.db, key, old.as_ref(), nb);
        old
    }

    pub fn remove(&mut self, i: usize, key: &[u8]) -> Option<Entry> {
        let (d, h) = self.dict(i);
        let old = d.remove(h, key).map(|(_, e)| e);
        gone(self.events, self.db, key, old.as_ref(), false);
        old
    }
}

/// Encodes a command as a RESP array (the log record form).
pub fn encode_command(args: &[&[u8]], out: &mut Vec<u8>) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

impl<'a> Ctx<'a> {
    /// Locks shard `idx` (or borrows it from the running transaction).
    #[inline]
    pub fn shard(&self, idx: usize) -> ShardRef<'a> {
        match self.txn {
            None => ShardRef::Own(self.srv.ks.lock(idx)),
            Some(t) => self.shard_in_txn(t, idx),
        }
    }

    #[cold]
    fn shard_in_txn(&self, t: &'a TxnScope<'a>, idx: usize) -> ShardRef<'a> {
        if let Some(h) = t.lend(idx) {
            return ShardRef::Held(h);
        }
        // A shard the transaction did not plan for (a command whose keys
        // its key spec does not describe). Above every held shard the
        // ascending order still holds; below it, waiting could deadlock,
        // so it is reported (the EXEC key planning should be extended).
        if t.held_max().is_none_or(|m| idx > m) {
            return ShardRef::Own(self.srv.ks.lock(idx));
        }
        if let Some(g) = self.srv.ks.try_lock(idx) {
            return ShardRef::Own(g);
        }
        tracing::error!("EXEC: command needs shard {idx} that the transaction did not lock; waiting for it out of order");
        ShardRef::Own(self.srv.ks.lock(idx))
    }

    /// Locks the given shards in ascending order (duplicates allowed);
    /// returns them sorted by index.
    pub fn shards(&self, mut idx: Vec<usize>) -> Vec<(usize, ShardRef<'a>)> {
        match self.txn {
            None => self
                .srv
                .ks
                .lock_many(idx)
                .into_iter()
                .map(|(i, g)| (i, ShardRef::Own(g)))
                .collect(),
            Some(_) => {
                idx.sort_unstable();
                idx.dedup();
                idx.into_iter().map(|i| (i, self.shard(i))).collect()
            }
        }
    }

    /// Every shard, in order (FLUSHALL, SWAPDB...).
    pub fn shards_all(&self) -> Vec<ShardRef<'a>> {
        (0..self.srv.ks.num_shards())
            .map(|i| self.shard(i))
            .collect()
    }

    /// Key count of one database (each shard in turn).
    pub fn db_len(&self, db: usize) -> usize {
        (0..self.srv.ks.num_shards())
            .map(|i| self.shard(i).dbs[db].len())
            .sum()
    }

    fn expire_if_needed(&self, g: &mut Shard, db: usize, hash: u64, key: &[u8]) {
        if self.loading {
            return;
        }
        let expired = matches!(g.dbs[db].get(hash, key), Some(e) if e.is_expired(self.now_ms));
        if expired {
            let old = g.dbs[db].remove(hash, key);
            if !self.loading {
                gone(Some(self.srv), db, key, old.as_ref().map(|(_, e)| e), false);
            }
            self.srv.stats.expired_keys.fetch_add(1, Relaxed);
            self.notify_in(db, crate::notify::EXPIRED, b"expired", key);
            self.propagate_in(db, &[b"DEL", key]);
        }
    }

    /// Locks `key`'s shard for writing (lazy expiry applied).
    pub fn write_key<'k>(&self, key: &'k [u8]) -> KeyLock<'a, 'k> {
        let hash = Keyspace::hash(key);
        let mut guard = self.shard(self.srv.ks.shard_of(hash));
        let db = self.client.db;
        self.expire_if_needed(&mut guard, db, hash, key);
        let stamp = self.stamp();
        KeyLock {
            guard,
            db,
            hash,
            key,
            events: (!self.loading).then_some(self.srv),
            fresh: stamp.fresh(),
            lfu: matches!(stamp, crate::evict::Stamp::Lfu { .. }),
        }
    }

    /// Locks `key`'s shard for reading: lazy expiry, hit/miss counters and
    /// the access clock (unless CLIENT NO-TOUCH).
    pub fn read_key<'k>(&self, key: &'k [u8]) -> KeyLock<'a, 'k> {
        let mut k = self.write_key(key);
        // One table walk finds the key and stamps its access clock. Not
        // `get_mut`: an access-clock update is not a write and must not make
        // a running snapshot capture the entry.
        let found = if self.client.handle.no_touch.load(Relaxed) {
            k.exists()
        } else {
            let stamp = self.stamp();
            let (db, hash) = (k.db, k.hash);
            k.guard.dbs[db].touch(hash, key, |f| stamp.apply(f))
        };
        if found {
            self.srv.stats.keyspace_hits.fetch_add(1, Relaxed);
        } else {
            self.srv.stats.keyspace_misses.fetch_add(1, Relaxed);
            self.notify(crate::notify::KEY_MISS, b"keymiss", key);
        }
        k
    }

    /// Locks every key's shard (ascending order), lazy expiry applied.
    pub fn lock_keys(&self, keys: &[&[u8]]) -> MultiLock<'a> {
        self.lock_keys_db(keys, self.client.db)
    }

    pub fn lock_keys_db(&self, keys: &[&[u8]], db: usize) -> MultiLock<'a> {
        self.lock_keys_in(keys, db, keys.len())
    }

    /// Locks every key's shard like [`Ctx::lock_keys`] but applies lazy
    /// expiry to the first `eager` keys only: the others are looked at
    /// later with [`Ctx::expire_locked`], when the command gets to them.
    /// Redis looks a destination up only once its source is found
    /// (RENAME, COPY, LMOVE): a missing source leaves an expired
    /// destination in place (DBSIZE counts it, no `expired` event).
    pub fn lock_keys_deferred(&self, keys: &[&[u8]], eager: usize) -> MultiLock<'a> {
        self.lock_keys_in(keys, self.client.db, eager)
    }

    /// Lazy expiry of key `i` of a [`Ctx::lock_keys_deferred`] lock.
    pub fn expire_locked(&self, m: &mut MultiLock<'a>, i: usize, key: &[u8]) {
        let (h, g) = m.slots[i];
        self.expire_if_needed(&mut m.guards[g].1, m.db, h, key);
    }

    fn lock_keys_in(&self, keys: &[&[u8]], db: usize, eager: usize) -> MultiLock<'a> {
        let ks = &self.srv.ks;
        let hashes: Vec<u64> = keys.iter().map(|k| Keyspace::hash(k)).collect();
        let idx: Vec<usize> = hashes.iter().map(|h| ks.shard_of(*h)).collect();
        let mut guards = self.shards(idx.clone());
        let slots = hashes
            .iter()
            .zip(&idx)
            .map(|(h, s)| {
                (
                    *h,
                    guards
                        .iter()
                        .position(|(gi, _)| gi == s)
                        .expect("locked above"),
                )
            })
            .collect::<Vec<_>>();
        for (i, key) in keys.iter().enumerate().take(eager) {
            let (h, g) = slots[i];
            self.expire_if_needed(&mut guards[g].1, db, h, key);
        }
        let stamp = self.stamp();
        MultiLock {
            guards,
            db,
            slots,
            events: (!self.loading).then_some(self.srv),
            fresh: stamp.fresh(),
            lfu: matches!(stamp, crate::evict::Stamp::Lfu { .. }),
        }
    }

    /// Records a change in the current db: counts it for the save schedule
    /// and appends the command to the log. Call while holding the locks of
    /// the keys it changed.
    pub fn propagate(&self, args: &[&[u8]]) {
        self.propagate_in(self.client.db, args);
    }

    /// Records several commands as one log record (replayed atomically),
    /// e.g. a STORE command as DEL + the resulting adds. Inside EXEC they
    /// join the transaction's record.
    pub fn propagate_many(&self, cmds: &[&[&[u8]]]) {
        if self.loading {
            return;
        }
        self.srv.stats.dirty.fetch_add(1, Relaxed);
        self.srv.evict.writes.fetch_add(1, Relaxed);
        let db = self.client.db;
        for c in cmds {
            self.touched(db, c);
        }
        match self.txn {
            None => self.srv.log_commands(db, cmds),
            Some(t) => {
                for c in cmds {
                    t.append(db, c);
                }
            }
        }
    }

    pub fn propagate_in(&self, db: usize, args: &[&[u8]]) {
        if self.loading {
            return;
        }
        self.srv.stats.dirty.fetch_add(1, Relaxed);
        self.srv.evict.writes.fetch_add(1, Relaxed);
        self.touched(db, args);
        match self.txn {
            None => self.srv.log_command(db, args),
            Some(t) => t.append(db, args),
        }
    }

    /// The keys an effect command changes: WATCH and CLIENT TRACKING.
    #[inline]
    fn touched(&self, db: usize, args: &[&[u8]]) {
        self.srv.watches.touch_command(db, args);
        if self.srv.tracking.active() {
            let id = self.client.handle.id;
            crate::watch::effect_keys(db, args, |_, k, _| {
                self.srv.tracking.invalidate(k, Some(id), &self.srv.clients)
            });
        }
    }
}
