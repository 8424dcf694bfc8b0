//! Key access for handlers: lock the right shard, apply lazy expiry,
//! count hits and misses, and propagate what changed.
//!
//! A handler holds a [`KeyLock`] (one key) or [`MultiLock`] (several keys,
//! shards locked in ascending order) for the duration of its work on the
//! keyspace, and calls [`Ctx::propagate`] *before* dropping it, so the
//! order of records in the log is the order in which the changes were
//! applied.

use std::sync::atomic::Ordering::Relaxed;

use basalt_storage::{Entry, Keyspace, ShardGuard};

use crate::commands::Ctx;

pub struct KeyLock<'s, 'k> {
    pub guard: ShardGuard<'s>,
    pub db: usize,
    pub hash: u64,
    pub key: &'k [u8],
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

    /// Inserts or replaces the whole entry; returns the old one.
    pub fn insert(&mut self, e: Entry) -> Option<Entry> {
        self.guard.dbs[self.db].insert(self.hash, self.key, e)
    }

    pub fn remove(&mut self) -> Option<Entry> {
        self.guard.dbs[self.db].remove(self.hash, self.key).map(|(_, e)| e)
    }
}

/// Several keys locked together.
pub struct MultiLock<'s> {
    guards: Vec<(usize, ShardGuard<'s>)>,
    pub db: usize,
    /// (hash, index into `guards`) per key position.
    slots: Vec<(u64, usize)>,
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

    pub fn insert(&mut self, i: usize, key: &[u8], e: Entry) -> Option<Entry> {
        let (d, h) = self.dict(i);
        d.insert(h, key, e)
    }

    pub fn remove(&mut self, i: usize, key: &[u8]) -> Option<Entry> {
        let (d, h) = self.dict(i);
        d.remove(h, key).map(|(_, e)| e)
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
    fn expire_if_needed(&self, g: &mut ShardGuard<'_>, db: usize, hash: u64, key: &[u8]) {
        if self.loading {
            return;
        }
        let expired = matches!(g.dbs[db].get(hash, key), Some(e) if e.is_expired(self.now_ms));
        if expired {
            g.dbs[db].remove(hash, key);
            self.srv.stats.expired_keys.fetch_add(1, Relaxed);
            self.propagate_in(db, &[b"DEL", key]);
        }
    }

    /// Locks `key`'s shard for writing (lazy expiry applied).
    pub fn write_key<'k>(&self, key: &'k [u8]) -> KeyLock<'a, 'k> {
        let hash = Keyspace::hash(key);
        let mut guard = self.srv.ks.lock(self.srv.ks.shard_of(hash));
        let db = self.client.db;
        self.expire_if_needed(&mut guard, db, hash, key);
        KeyLock { guard, db, hash, key }
    }

    /// Locks `key`'s shard for reading: lazy expiry, hit/miss counters and
    /// the access clock (unless CLIENT NO-TOUCH).
    pub fn read_key<'k>(&self, key: &'k [u8]) -> KeyLock<'a, 'k> {
        let mut k = self.write_key(key);
        if k.exists() {
            self.srv.stats.keyspace_hits.fetch_add(1, Relaxed);
            if !self.client.handle.no_touch.load(Relaxed) {
                // Not `get_mut`: an access-clock update is not a write and
                // must not make a running snapshot capture the entry.
                let clock = self.srv.lru_clock_at(self.now_ms);
                let (db, hash) = (k.db, k.hash);
                k.guard.dbs[db].touch(hash, key, clock);
            }
        } else {
            self.srv.stats.keyspace_misses.fetch_add(1, Relaxed);
        }
        k
    }

    /// Locks every key's shard (ascending order), lazy expiry applied.
    pub fn lock_keys(&self, keys: &[&[u8]]) -> MultiLock<'a> {
        self.lock_keys_db(keys, self.client.db)
    }

    pub fn lock_keys_db(&self, keys: &[&[u8]], db: usize) -> MultiLock<'a> {
        let ks = &self.srv.ks;
        let hashes: Vec<u64> = keys.iter().map(|k| Keyspace::hash(k)).collect();
        let idx: Vec<usize> = hashes.iter().map(|h| ks.shard_of(*h)).collect();
        let mut guards = ks.lock_many(idx.clone());
        let slots = hashes
            .iter()
            .zip(&idx)
            .map(|(h, s)| (*h, guards.iter().position(|(gi, _)| gi == s).expect("locked above")))
            .collect::<Vec<_>>();
        for (i, key) in keys.iter().enumerate() {
            let (h, g) = slots[i];
            self.expire_if_needed(&mut guards[g].1, db, h, key);
        }
        MultiLock { guards, db, slots }
    }

    /// Records a change in the current db: counts it for the save schedule
    /// and appends the command to the log. Call while holding the locks of
    /// the keys it changed.
    pub fn propagate(&self, args: &[&[u8]]) {
        self.propagate_in(self.client.db, args);
    }

    /// Records several commands as one log record (replayed atomically),
    /// e.g. a STORE command as DEL + the resulting adds.
    pub fn propagate_many(&self, cmds: &[&[&[u8]]]) {
        if self.loading {
            return;
        }
        self.srv.stats.dirty.fetch_add(1, Relaxed);
        self.srv.log_commands(self.client.db, cmds);
    }

    pub fn propagate_in(&self, db: usize, args: &[&[u8]]) {
        if self.loading {
            return;
        }
        self.srv.stats.dirty.fetch_add(1, Relaxed);
        self.srv.log_command(db, args);
    }
}
