//! WATCH: a registry of watched (db, key) pairs → the clients watching
//! them. Any change to a watched key marks its watchers dirty, and their
//! next EXEC returns a null array.
//!
//! Changes are found where they are recorded: [`Ctx::propagate`] (every
//! write, lazy expiry's DEL included) calls [`Watches::touch_command`]
//! with the effect command, whose keys come from the command table; the
//! active expiry cycle, FLUSHDB, FLUSHALL and SWAPDB call the registry
//! directly. Each touch happens while the changed key's shard lock is
//! held, and EXEC reads its dirty flag after locking the shards of its
//! watched keys, so a write is either seen by EXEC or ordered after it.
//! With no WATCH anywhere, a touch is one relaxed load.
//!
//! [`Ctx::propagate`]: crate::commands::Ctx::propagate

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::commands::{args::eq, introspect::key_positions, table};

/// One client's watch state, shared with the registry.
#[derive(Default)]
pub struct WatchState {
    pub dirty: AtomicBool,
}

struct Watcher {
    state: Arc<WatchState>,
    /// The key was already logically expired when WATCHed: its deletion
    /// by expiry is not a change (Redis 7's rule).
    expired: bool,
}

/// Watchers by (database, key).
type WatchMap = HashMap<(usize, Vec<u8>), Vec<Watcher>>;

#[derive(Default)]
pub struct Watches {
    count: AtomicUsize,
    map: Mutex<WatchMap>,
}

/// What a client watches (owned by the connection).
#[derive(Default)]
pub struct ClientWatch {
    pub state: Arc<WatchState>,
    /// (db, key, expired when watched)
    pub keys: Vec<(usize, Vec<u8>, bool)>,
}

impl Watches {
    pub fn watch(&self, cw: &mut ClientWatch, db: usize, key: &[u8], expired: bool) {
        if cw.keys.iter().any(|(d, k, _)| *d == db && k == key) {
            return;
        }
        let mut m = self.map.lock();
        m.entry((db, key.to_vec())).or_default().push(Watcher {
            state: cw.state.clone(),
            expired,
        });
        self.count.fetch_add(1, Relaxed);
        cw.keys.push((db, key.to_vec(), expired));
    }

    /// Forgets every key of `cw` and clears its dirty flag.
    pub fn unwatch_all(&self, cw: &mut ClientWatch) {
        if !cw.keys.is_empty() {
            let mut m = self.map.lock();
            for (db, key, _) in cw.keys.drain(..) {
                let k = (db, key);
                if let Some(v) = m.get_mut(&k) {
                    v.retain(|w| !Arc::ptr_eq(&w.state, &cw.state));
                    if v.is_empty() {
                        m.remove(&k);
                    }
                }
                self.count.fetch_sub(1, Relaxed);
            }
        }
        cw.state.dirty.store(false, Relaxed);
    }

    #[inline]
    pub fn active(&self) -> bool {
        self.count.load(Relaxed) > 0
    }

    /// `key` in `db` changed; `deleted` when the change removed it.
    pub fn touch(&self, db: usize, key: &[u8], deleted: bool) {
        if !self.active() {
            return;
        }
        let mut m = self.map.lock();
        if let Some(v) = m.get_mut(&(db, key.to_vec())) {
            for w in v.iter_mut() {
                if w.expired && deleted {
                    w.expired = false;
                    continue;
                }
                w.state.dirty.store(true, Relaxed);
            }
        }
    }

    /// Marks the watchers of every watched key in `db` for which
    /// `exists(key)` holds (FLUSHDB, FLUSHALL, SWAPDB).
    pub fn touch_db(&self, db: usize, exists: impl Fn(&[u8]) -> bool) {
        if !self.active() {
            return;
        }
        let m = self.map.lock();
        for ((d, key), v) in m.iter() {
            if *d == db && exists(key) {
                for w in v {
                    w.state.dirty.store(true, Relaxed);
                }
            }
        }
    }

    /// Touches the keys of an effect command being recorded.
    pub fn touch_command(&self, db: usize, args: &[&[u8]]) {
        if self.active() {
            effect_keys(db, args, |d, k, deleted| self.touch(d, k, deleted));
        }
    }
}

/// Calls `f(db, key, deleted)` for each key an effect command changes.
pub fn effect_keys(db: usize, args: &[&[u8]], mut f: impl FnMut(usize, &[u8], bool)) {
    if args.is_empty() {
        return;
    }
    let name = args[0];
    let deleted = eq(name, "del") || eq(name, "unlink");
    if eq(name, "move") && args.len() >= 3 {
        f(db, args[1], true);
        if let Some(d) = std::str::from_utf8(args[2])
            .ok()
            .and_then(|s| s.parse().ok())
        {
            f(d, args[1], false);
        }
        return;
    }
    if eq(name, "copy") && args.len() >= 3 {
        let mut ddb = db;
        let mut j = 3;
        while j + 1 < args.len() {
            if eq(args[j], "db") {
                ddb = std::str::from_utf8(args[j + 1])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(db);
            }
            j += 1;
        }
        f(ddb, args[2], false);
        return;
    }
    let Ok(e) = table().resolve(args) else { return };
    for i in key_positions(e.spec, args.len()) {
        f(db, args[i], deleted);
    }
}
