//! `maxmemory` and eviction, as Redis's `evict.c`.
//!
//! Memory is what the counting allocator reports (`alloc.rs`), minus what
//! Redis does not count for eviction (the log's pending buffer). Before a
//! command runs, [`perform`] frees memory while the server is over the
//! limit: under `noeviction` it only reports the failure (denyoom writes
//! then get `-OOM`); otherwise it deletes keys chosen by the policy.
//!
//! Choosing keys is Redis's approximation: sample `maxmemory-samples` keys
//! and keep the best candidates seen so far in a pool of 16 ordered by
//! score (idle time for LRU, 255 − frequency for LFU, earliest deadline
//! for volatile-ttl); evict the best candidate that still exists. Redis
//! samples every database per round; here a database is split into shards,
//! so one round samples every database of one shard, and rounds walk the
//! shards in turn — every shard is sampled equally often, and the pool
//! carries the best candidates from round to round.
//!
//! Concurrency: one evictor at a time (the pool's mutex). A thread that
//! waits for it re-checks the memory first, so threads over the limit
//! together do not each free the whole excess. The pool lock is taken with
//! no shard lock held, and shard locks are taken one at a time under it.
//! The work per call is bounded by `maxmemory-eviction-tenacity` (Redis's
//! time limit, 500 µs by default); when it runs out, the command goes on
//! and the next command, or the background cycle, continues.
//!
//! An evicted key is deleted as a client's DEL would be: logged as `DEL`,
//! `evicted` keyspace event, WATCH and client-tracking invalidation, and
//! counted in `evicted_keys`.
//!
//! LFU: the entry's 24-bit access field holds, under an LFU policy,
//! Redis's layout: 16 bits of minutes (last decrement time) and an 8-bit
//! logarithmic counter (see [`Stamp`]). Switching policy at run time
//! reinterprets the field, as in Redis.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use parking_lot::Mutex;

use crate::counter::Counter;
use crate::shared::Shared;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Policy {
    NoEviction = 0,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl Policy {
    pub fn parse(s: &str) -> Option<Policy> {
        Some(match s {
            "noeviction" => Policy::NoEviction,
            "allkeys-lru" => Policy::AllkeysLru,
            "allkeys-lfu" => Policy::AllkeysLfu,
            "allkeys-random" => Policy::AllkeysRandom,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => return None,
        })
    }

    fn from_u8(v: u8) -> Policy {
        match v {
            1 => Policy::AllkeysLru,
            2 => Policy::AllkeysLfu,
            3 => Policy::AllkeysRandom,
            4 => Policy::VolatileLru,
            5 => Policy::VolatileLfu,
            6 => Policy::VolatileRandom,
            7 => Policy::VolatileTtl,
            _ => Policy::NoEviction,
        }
    }

    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::AllkeysLfu | Policy::VolatileLfu)
    }

    pub fn is_lru(self) -> bool {
        matches!(self, Policy::AllkeysLru | Policy::VolatileLru)
    }

    fn volatile(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }

    fn random(self) -> bool {
        matches!(self, Policy::AllkeysRandom | Policy::VolatileRandom)
    }
}

/// Redis's `LFU_INIT_VAL`: a new key's counter, so it is not evicted
/// before it has a chance to be used.
pub const LFU_INIT_VAL: u32 = 5;

/// How a command marks the keys it accesses: the LRU clock, or an LFU
/// update (decay, then a logarithmic increment).
#[derive(Clone, Copy, Debug)]
pub enum Stamp {
    Lru(u32),
    Lfu {
        minutes: u32,
        log_factor: u32,
        decay: u32,
    },
}

impl Stamp {
    /// Records one access in an entry's access field.
    #[inline]
    pub fn apply(self, field: &mut u32) {
        match self {
            Stamp::Lru(c) => *field = c,
            Stamp::Lfu {
                minutes,
                log_factor,
                decay,
            } => {
                let c = lfu_decr(*field, minutes, decay);
                let c = lfu_log_incr(c, log_factor);
                *field = (minutes << 8) | c;
            }
        }
    }

    /// The access field of a new key.
    #[inline]
    pub fn fresh(self) -> u32 {
        match self {
            Stamp::Lru(c) => c,
            Stamp::Lfu { minutes, .. } => (minutes << 8) | LFU_INIT_VAL,
        }
    }
}

/// Redis's `LFUGetTimeInMinutes`: 16 bits of Unix minutes.
#[inline]
pub fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) & 0xffff) as u32
}

/// Redis's `LFUDecrAndReturn`: the counter after one decrement per
/// `decay` minutes since the last decrement time in the field.
#[inline]
pub fn lfu_decr(field: u32, now_minutes: u32, decay: u32) -> u32 {
    let ldt = (field >> 8) & 0xffff;
    let counter = field & 0xff;
    let elapsed = if now_minutes >= ldt {
        now_minutes - ldt
    } else {
        65535 - ldt + now_minutes
    };
    let periods = elapsed.checked_div(decay).unwrap_or(0);
    counter.saturating_sub(periods)
}

/// Redis's `LFULogIncr`: the higher the counter, the less likely an
/// access increments it (saturating at 255).
#[inline]
fn lfu_log_incr(counter: u32, log_factor: u32) -> u32 {
    if counter >= 255 {
        return 255;
    }
    let r = rand_f64();
    let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
    let p = 1.0 / (base * log_factor as f64 + 1.0);
    if r < p {
        counter + 1
    } else {
        counter
    }
}

/// A per-thread xorshift generator (sampling and LFU need speed, not
/// quality).
fn rand_u64() -> u64 {
    use std::cell::Cell;
    thread_local! {
        static S: Cell<u64> = Cell::new({
            let t = crate::shared::unix_ms() ^ (&S as *const _ as u64);
            basalt_storage::hash_key(&t.to_le_bytes()) | 1
        });
    }
    S.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}

fn rand_f64() -> f64 {
    (rand_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Redis's `EVPOOL_SIZE`.
const POOL_SIZE: usize = 16;

struct Candidate {
    score: u64,
    db: usize,
    key: Vec<u8>,
}

#[derive(Default)]
struct Pool {
    /// Ascending by score: the best candidate is last.
    cands: Vec<Candidate>,
    /// The write generation at which no key with a TTL existed.
    no_volatile_at: Option<u64>,
}

impl Pool {
    /// Redis's `evictionPoolPopulate` insertion.
    fn offer(&mut self, score: u64, db: usize, key: &[u8]) {
        if self.cands.iter().any(|c| c.db == db && c.key == key) {
            return;
        }
        let k = self.cands.partition_point(|c| c.score < score);
        if self.cands.len() >= POOL_SIZE {
            if k == 0 {
                return;
            }
            self.cands.remove(0);
            self.cands.insert(
                k - 1,
                Candidate {
                    score,
                    db,
                    key: key.to_vec(),
                },
            );
        } else {
            self.cands.insert(
                k,
                Candidate {
                    score,
                    db,
                    key: key.to_vec(),
                },
            );
        }
    }
}

/// The eviction settings (mirrored from the config) and state.
pub struct Evictor {
    pub maxmemory: AtomicU64,
    policy: AtomicU8,
    samples: AtomicU32,
    tenacity: AtomicU32,
    lfu_log_factor: AtomicU32,
    lfu_decay_time: AtomicU32,
    pool: Mutex<Pool>,
    /// The next shard a sampling round visits.
    cursor: AtomicUsize,
    /// Bumped by every propagated write: a "no key has a TTL" finding
    /// stays true while it has not moved.
    pub writes: Counter,
    /// Unix ms since which the server is over `maxmemory` (0: it is not),
    /// and the total ms spent over it (INFO's eviction_exceeded_time).
    exceeded_since: AtomicU64,
    exceeded_total: AtomicU64,
    /// `maxmemory-clients`: bytes, or a percentage of maxmemory (negative).
    clients_limit: std::sync::atomic::AtomicI64,
    pub evicted_clients: AtomicU64,
}

impl Default for Evictor {
    fn default() -> Self {
        Evictor {
            maxmemory: AtomicU64::new(0),
            policy: AtomicU8::new(0),
            samples: AtomicU32::new(5),
            tenacity: AtomicU32::new(10),
            lfu_log_factor: AtomicU32::new(10),
            lfu_decay_time: AtomicU32::new(1),
            pool: Mutex::new(Pool::default()),
            cursor: AtomicUsize::new(0),
            writes: Counter::default(),
            exceeded_since: AtomicU64::new(0),
            exceeded_total: AtomicU64::new(0),
            clients_limit: std::sync::atomic::AtomicI64::new(0),
            evicted_clients: AtomicU64::new(0),
        }
    }
}

/// What [`perform`] achieved (Redis's `EVICT_OK/RUNNING/FAIL`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// Under the limit (or no limit).
    Ok,
    /// Still over, out of time for this call: the command may run.
    Running,
    /// Over the limit and nothing (more) can be evicted.
    Fail,
}

impl Evictor {
    /// Mirrors the options from the config.
    pub fn configure(&self, c: &crate::config::Config) {
        let num = |n: &str, d: u64| c.get(n).and_then(|v| v.parse::<u64>().ok()).unwrap_or(d);
        self.maxmemory.store(num("maxmemory", 0), Relaxed);
        let p = c
            .get("maxmemory-policy")
            .and_then(Policy::parse)
            .unwrap_or(Policy::NoEviction);
        if p != self.policy() {
            self.pool.lock().cands.clear();
        }
        self.policy.store(p as u8, Relaxed);
        self.samples
            .store(num("maxmemory-samples", 5).clamp(1, 4096) as u32, Relaxed);
        self.tenacity.store(
            num("maxmemory-eviction-tenacity", 10).min(100) as u32,
            Relaxed,
        );
        self.lfu_log_factor.store(
            num("lfu-log-factor", 10).min(u32::MAX as u64) as u32,
            Relaxed,
        );
        self.lfu_decay_time.store(
            num("lfu-decay-time", 1).min(u32::MAX as u64) as u32,
            Relaxed,
        );
        let cl = c.get("maxmemory-clients").unwrap_or("0");
        let cl = match cl.strip_suffix('%') {
            Some(p) => -p.parse::<i64>().unwrap_or(0),
            None => cl.parse::<i64>().unwrap_or(0),
        };
        self.clients_limit.store(cl, Relaxed);
    }

    /// The `maxmemory-clients` limit in bytes (0: none).
    pub fn clients_limit(&self) -> u64 {
        match self.clients_limit.load(Relaxed) {
            n if n >= 0 => n as u64,
            pct => self.maxmemory.load(Relaxed) / 100 * pct.unsigned_abs(),
        }
    }

    #[inline]
    pub fn policy(&self) -> Policy {
        Policy::from_u8(self.policy.load(Relaxed))
    }

    pub fn lfu_decay_time(&self) -> u32 {
        self.lfu_decay_time.load(Relaxed)
    }

    /// How the current command stamps the keys it accesses.
    #[inline]
    pub fn stamp(&self, now_ms: u64) -> Stamp {
        if self.policy().is_lfu() {
            Stamp::Lfu {
                minutes: lfu_minutes(now_ms),
                log_factor: self.lfu_log_factor.load(Relaxed),
                decay: self.lfu_decay_time.load(Relaxed),
            }
        } else {
            Stamp::Lru(((now_ms / 1000) & crate::shared::LRU_CLOCK_MAX) as u32)
        }
    }

    /// (total, current) ms spent over the limit, for INFO stats.
    pub fn exceeded_ms(&self, now_ms: u64) -> (u64, u64) {
        let since = self.exceeded_since.load(Relaxed);
        let cur = if since == 0 {
            0
        } else {
            now_ms.saturating_sub(since)
        };
        (self.exceeded_total.load(Relaxed) + cur, cur)
    }

    /// CONFIG RESETSTAT: the time spent over the limit starts again.
    pub fn reset_stats(&self) {
        self.exceeded_total.store(0, Relaxed);
        self.evicted_clients.store(0, Relaxed);
        if self.exceeded_since.load(Relaxed) != 0 {
            self.exceeded_since
                .store(crate::shared::unix_ms().max(1), Relaxed);
        }
    }

    fn note_over(&self, over: bool) {
        let since = self.exceeded_since.load(Relaxed);
        if over && since == 0 {
            self.exceeded_since
                .store(crate::shared::unix_ms().max(1), Relaxed);
        } else if !over && since != 0 {
            self.exceeded_since.store(0, Relaxed);
            self.exceeded_total
                .fetch_add(crate::shared::unix_ms().saturating_sub(since), Relaxed);
        }
    }
}

/// Client eviction (`maxmemory-clients`): while the clients' buffers
/// (query buffer and unsent replies) add up to more than the limit, the
/// client using the most is disconnected, sparing CLIENT NO-EVICT ones
/// (Redis's `evictClients`). Run by the background cycle.
pub fn evict_clients(srv: &Shared) {
    let limit = srv.evict.clients_limit();
    if limit == 0 {
        return;
    }
    let mut clients: Vec<(u64, std::sync::Arc<crate::client::ClientHandle>)> = srv
        .clients
        .all()
        .into_iter()
        .map(|h| (h.qbuf.load(Relaxed) + h.omem.load(Relaxed), h))
        .collect();
    let mut total: u64 = clients.iter().map(|(m, _)| m).sum();
    if total <= limit {
        return;
    }
    clients.sort_by_key(|(m, _)| std::cmp::Reverse(*m));
    for (m, h) in clients {
        if total <= limit || m == 0 {
            break;
        }
        if h.no_evict.load(Relaxed) || h.killed.load(Relaxed) {
            continue;
        }
        tracing::info!(client = h.id, addr = %h.addr, bytes = m, "evicting client (maxmemory-clients)");
        h.kill();
        srv.evict.evicted_clients.fetch_add(1, Relaxed);
        total -= m;
    }
}

/// Memory Redis does not count against `maxmemory`: the log's buffers
/// of records on their way to the file, by allocated size (Redis's AOF
/// buffer, `sdsAllocSize(aof_buf)`).
pub fn not_counted(srv: &Shared) -> u64 {
    srv.log.get().map_or(0, |log| log.buffer_bytes())
}

/// `not_counted` plus what a running snapshot holds (Redis's fork keeps
/// its copy-on-write pages outside `used_memory` altogether).
pub fn not_counted_for_evict(srv: &Shared) -> u64 {
    not_counted(srv) + crate::snapshot::working_bytes(srv)
}

/// Bytes over the limit (0 when under or no limit).
fn excess(srv: &Shared, max: u64) -> u64 {
    let used = crate::alloc::allocated() as u64;
    if used <= max {
        return 0;
    }
    used.saturating_sub(not_counted_for_evict(srv))
        .saturating_sub(max)
}

/// Redis's `evictionTimeLimitUs`.
fn time_limit_us(tenacity: u32) -> u64 {
    if tenacity <= 10 {
        return 50 * tenacity as u64;
    }
    if tenacity < 100 {
        return (500.0 * 1.15f64.powi(tenacity as i32 - 10)) as u64;
    }
    u64::MAX
}

/// Frees memory until the server is under `maxmemory`, within the time
/// limit (Redis's `performEvictions`). Call with no shard lock held.
pub fn perform(srv: &Shared) -> Outcome {
    let ev = &srv.evict;
    let max = ev.maxmemory.load(Relaxed);
    if max == 0 {
        return Outcome::Ok;
    }
    if excess(srv, max) == 0 {
        ev.note_over(false);
        return Outcome::Ok;
    }
    let policy = ev.policy();
    if policy == Policy::NoEviction {
        ev.note_over(true);
        return Outcome::Fail;
    }
    let limit = time_limit_us(ev.tenacity.load(Relaxed));
    let start = Instant::now();
    let mut pool = ev.pool.lock();
    let mut n = 0u64;
    loop {
        // Another thread may have freed enough while we waited.
        if excess(srv, max) == 0 {
            ev.note_over(false);
            return Outcome::Ok;
        }
        if !evict_one(srv, &mut pool, policy) {
            ev.note_over(true);
            return Outcome::Fail;
        }
        n += 1;
        // Redis checks the clock every 16 keys.
        if n.is_multiple_of(16) && start.elapsed().as_micros() as u64 >= limit {
            ev.note_over(true);
            return Outcome::Running;
        }
    }
}

/// Evicts one key chosen by `policy`; false when there is none to evict.
fn evict_one(srv: &Shared, pool: &mut Pool, policy: Policy) -> bool {
    let volatile = policy.volatile();
    let gen = srv.evict.writes.load(Relaxed);
    if volatile && pool.no_volatile_at == Some(gen) {
        return false;
    }
    let n = srv.ks.num_shards();
    let ndb = srv.ks.num_dbs();
    // One full rotation over the shards; each round samples one shard.
    for _ in 0..n {
        let shard = srv.evict.cursor.fetch_add(1, Relaxed) % n;
        if policy.random() {
            if let Some((db, key)) = random_key(srv, shard, ndb, volatile) {
                if delete(srv, shard, db, &key, volatile) {
                    return true;
                }
            }
            continue;
        }
        populate(srv, pool, shard, ndb, policy);
        // Best first; candidates that vanished meanwhile are dropped.
        while let Some(c) = pool.cands.pop() {
            let h = basalt_storage::Keyspace::hash(&c.key);
            if delete(srv, srv.ks.shard_of(h), c.db, &c.key, volatile) {
                return true;
            }
        }
    }
    // Sampling found nothing in a whole rotation: look exhaustively, so
    // "nothing to evict" is a fact, not bad luck.
    match find_any(srv, ndb, volatile) {
        Some((shard, db, key)) => delete(srv, shard, db, &key, volatile),
        None => {
            if volatile {
                pool.no_volatile_at = Some(gen);
            }
            false
        }
    }
}

/// Samples every database of `shard` into the pool.
fn populate(srv: &Shared, pool: &mut Pool, shard: usize, ndb: usize, policy: Policy) {
    let ev = &srv.evict;
    let samples = ev.samples.load(Relaxed) as usize;
    let now_ms = crate::shared::unix_ms();
    let clock = ((now_ms / 1000) & crate::shared::LRU_CLOCK_MAX) as u32;
    let minutes = lfu_minutes(now_ms);
    let decay = ev.lfu_decay_time.load(Relaxed);
    let volatile = policy.volatile();
    let g = srv.ks.lock(shard);
    for db in 0..ndb {
        let d = &g.dbs[db];
        if d.is_empty() {
            continue;
        }
        d.sample(rand_u64(), samples, samples * 10, |k, e| {
            if volatile && e.expire_at == 0 {
                return false;
            }
            let score = match policy {
                Policy::AllkeysLfu | Policy::VolatileLfu => {
                    255 - lfu_decr(e.lru, minutes, decay) as u64
                }
                Policy::VolatileTtl => u64::MAX - e.expire_at,
                _ => crate::shared::lru_elapsed(clock, e.lru),
            };
            pool.offer(score, db, k);
            true
        });
    }
}

/// A random key of `shard` (with a TTL when `volatile`), databases tried
/// from a random one.
fn random_key(srv: &Shared, shard: usize, ndb: usize, volatile: bool) -> Option<(usize, Vec<u8>)> {
    let g = srv.ks.lock(shard);
    let first = rand_u64() as usize % ndb;
    for i in 0..ndb {
        let db = (first + i) % ndb;
        let d = &g.dbs[db];
        if d.is_empty() {
            continue;
        }
        if !volatile {
            if let Some(k) = d.random_key(rand_u64()) {
                return Some((db, k.to_vec()));
            }
            continue;
        }
        let mut found = None;
        d.sample(rand_u64(), 1, 64, |k, e| {
            if e.expire_at == 0 {
                return false;
            }
            found = Some(k.to_vec());
            true
        });
        if let Some(k) = found {
            return Some((db, k));
        }
    }
    None
}

/// The first key found walking every shard (with a TTL when `volatile`).
fn find_any(srv: &Shared, ndb: usize, volatile: bool) -> Option<(usize, usize, Vec<u8>)> {
    for shard in 0..srv.ks.num_shards() {
        let g = srv.ks.lock(shard);
        for db in 0..ndb {
            let d = &g.dbs[db];
            if let Some((k, _)) = d.iter().find(|(_, e)| !volatile || e.expire_at != 0) {
                return Some((shard, db, k.to_vec()));
            }
        }
    }
    None
}

/// Deletes `key` as an eviction if it still exists (and still has a TTL
/// when `volatile`); the value is freed after the shard lock is released.
fn delete(srv: &Shared, shard: usize, db: usize, key: &[u8], volatile: bool) -> bool {
    let hash = basalt_storage::Keyspace::hash(key);
    let mut g = srv.ks.lock(shard);
    let d = &mut g.dbs[db];
    match d.get(hash, key) {
        Some(e) if !volatile || e.expire_at != 0 => {}
        _ => return false,
    }
    let removed = d.remove(hash, key);
    srv.stats.evicted_keys.fetch_add(1, Relaxed);
    if srv.blocked.blocked() > 0 {
        // XREADGROUP waits on an evicted stream end.
        crate::blocking::unblock_deleted_stream(srv, db, key);
    }
    srv.watches.touch(db, key, true);
    if srv.tracking.active() {
        srv.tracking.invalidate(key, None, &srv.clients);
    }
    crate::notify::notify(srv, db, crate::notify::EVICTED, b"evicted", key);
    // Logged under the shard lock, so log order is apply order.
    srv.log_command(db, &[b"DEL", key]);
    drop(g);
    drop(removed);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfu_counter_grows_logarithmically() {
        let s = Stamp::Lfu {
            minutes: 100,
            log_factor: 10,
            decay: 1,
        };
        let mut f = s.fresh();
        assert_eq!(f & 0xff, LFU_INIT_VAL);
        for _ in 0..100 {
            s.apply(&mut f);
        }
        let c = f & 0xff;
        assert!(c > LFU_INIT_VAL && c < 40, "counter {c}");
        // Ten minutes idle with decay 1: ten decrements.
        assert_eq!(lfu_decr(f, 110, 1), c.saturating_sub(10));
        assert_eq!(lfu_decr(f, 110, 0), c);
    }

    #[test]
    fn pool_keeps_the_best() {
        let mut p = Pool::default();
        for i in 0..100u64 {
            p.offer((i * 37) % 101, 0, &i.to_le_bytes());
        }
        assert_eq!(p.cands.len(), POOL_SIZE);
        let scores: Vec<u64> = p.cands.iter().map(|c| c.score).collect();
        let mut sorted = scores.clone();
        sorted.sort();
        assert_eq!(scores, sorted);
        assert_eq!(*scores.last().unwrap(), 100);
        assert!(scores[0] >= 100 - 16);
    }

    #[test]
    fn time_limits_as_redis() {
        assert_eq!(time_limit_us(0), 0);
        assert_eq!(time_limit_us(10), 500);
        assert_eq!(time_limit_us(100), u64::MAX);
        assert!(time_limit_us(99) > 100_000_000);
    }
}
