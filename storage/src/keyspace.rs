//! The sharded keyspace.
//!
//! Concurrency: the keyspace is `nshards` independent shards, each a
//! `Mutex<Shard>` holding one table per logical database. A key lives in
//! the shard picked by the high bits of its hash, for every database, so a
//! command on one key locks exactly one shard. Commands on several keys
//! lock all the shards they touch in ascending index order (see
//! [`Keyspace::lock_many`]), which makes them atomic and deadlock-free.
//! Whole-keyspace operations (FLUSHALL, SWAPDB) lock every shard in order.
//! Locks are held for one command's work only, never across I/O.

use parking_lot::{Mutex, MutexGuard};

use crate::dict::{hash_key, Dict};

pub struct Shard {
    pub dbs: Box<[Dict]>,
    /// Per-db position of the active-expiry sweep.
    pub expire_cursor: Box<[u64]>,
}

impl Shard {
    fn new(ndb: usize) -> Self {
        Shard {
            dbs: (0..ndb).map(|_| Dict::new()).collect(),
            expire_cursor: vec![0; ndb].into_boxed_slice(),
        }
    }
}

pub struct Keyspace {
    shards: Box<[Mutex<Shard>]>,
    shift: u32,
    ndb: usize,
}

pub type ShardGuard<'a> = MutexGuard<'a, Shard>;

impl Keyspace {
    /// `nshards` is rounded up to a power of two (at least 1).
    pub fn new(ndb: usize, nshards: usize) -> Self {
        let n = nshards.max(1).next_power_of_two();
        let bits = n.trailing_zeros();
        Keyspace {
            shards: (0..n).map(|_| Mutex::new(Shard::new(ndb))).collect(),
            // A shift of 64 is not allowed on u64; with one shard every
            // hash maps to 0 via the checked path in `shard_of`.
            shift: 64 - bits,
            ndb,
        }
    }

    pub fn num_dbs(&self) -> usize {
        self.ndb
    }

    pub fn num_shards(&self) -> usize {
        self.shards.len()
    }

    #[inline]
    pub fn shard_of(&self, hash: u64) -> usize {
        hash.checked_shr(self.shift).unwrap_or(0) as usize
    }

    #[inline]
    pub fn hash(key: &[u8]) -> u64 {
        hash_key(key)
    }

    #[inline]
    pub fn lock(&self, idx: usize) -> ShardGuard<'_> {
        self.shards[idx].lock()
    }

    /// Locks shard `idx` if it is free.
    #[inline]
    pub fn try_lock(&self, idx: usize) -> Option<ShardGuard<'_>> {
        self.shards[idx].try_lock()
    }

    /// Locks the given shard indexes in ascending order (duplicates
    /// allowed); returns guards sorted by shard index.
    pub fn lock_many(&self, mut idx: Vec<usize>) -> Vec<(usize, ShardGuard<'_>)> {
        idx.sort_unstable();
        idx.dedup();
        idx.into_iter()
            .map(|i| (i, self.shards[i].lock()))
            .collect()
    }

    /// Locks every shard, in order.
    pub fn lock_all(&self) -> Vec<ShardGuard<'_>> {
        self.shards.iter().map(|s| s.lock()).collect()
    }

    /// Key count of one database (locks each shard briefly in turn).
    pub fn db_len(&self, db: usize) -> usize {
        self.shards.iter().map(|s| s.lock().dbs[db].len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_choice_in_range() {
        for n in [1, 2, 3, 64] {
            let ks = Keyspace::new(16, n);
            for i in 0..1000u32 {
                let h = Keyspace::hash(&i.to_le_bytes());
                assert!(ks.shard_of(h) < ks.num_shards());
            }
        }
    }

    #[test]
    fn lock_many_orders_and_dedups() {
        let ks = Keyspace::new(1, 8);
        let g = ks.lock_many(vec![5, 1, 5, 3]);
        let order: Vec<usize> = g.iter().map(|(i, _)| *i).collect();
        assert_eq!(order, vec![1, 3, 5]);
    }
}
