//! Client-side caching support (CLIENT TRACKING), as Redis's
//! `tracking.c`.
//!
//! Default mode: after a read-only command, its keys are remembered with
//! the reading client's id (OPTIN: only after `CLIENT CACHING yes`;
//! OPTOUT: unless `CLIENT CACHING no`). When a remembered key changes —
//! found at the same place as WATCH's touches, [`Ctx::propagate`], plus
//! the active expiry cycle — every client that read it gets one
//! invalidation and the key is forgotten. BCAST mode: every change of a
//! key under one of the client's prefixes (all keys without prefixes) is
//! sent, batched as Redis does in `beforeSleep`: changed keys are
//! collected and, when the connection whose commands changed them ends
//! its batch (or the periodic cycle ends its round), each BCAST client
//! gets one message per prefix carrying every changed key under it,
//! sorted and without duplicates (NOLOOP: without the keys it changed
//! itself). FLUSHDB/FLUSHALL send a null invalidation to every tracking
//! client.
//!
//! Delivery goes through the target's pub/sub queue (the client itself,
//! or its REDIRECT target): a RESP3 target gets `>2 invalidate [keys]`, a
//! RESP2 target subscribed to `__redis__:invalidate` gets a pub/sub
//! message on that channel; anything else cannot be told and is skipped.
//! With no tracking client, every hook is one relaxed load.
//!
//! [`Ctx::propagate`]: crate::commands::Ctx::propagate

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::pubsub::Subscriber;

/// One tracking client's options (kept in the connection too).
#[derive(Clone, Debug, Default)]
pub struct TrackOpts {
    pub redirect: u64,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    pub prefixes: Vec<Vec<u8>>,
}

#[derive(Default)]
pub struct Tracking {
    active: AtomicUsize,
    /// `tracking-table-max-keys` (0: unlimited).
    pub max_keys: AtomicUsize,
    /// Key → ids of the clients that may have cached it.
    table: Mutex<HashMap<Vec<u8>, Vec<u64>>>,
    clients: RwLock<HashMap<u64, TrackOpts>>,
    /// Every connection's delivery queue that exists, by client id.
    targets: RwLock<HashMap<u64, Arc<Subscriber>>>,
    /// Tracking clients whose redirect target went away.
    broken: Mutex<std::collections::HashSet<u64>>,
    /// Keys changed under some BCAST client's prefix and not sent yet,
    /// by the client that changed them (`None`: expiry, eviction). Each
    /// connection sends its own at the end of its batch (after its
    /// replies), so one command's keys stay in one message and a client
    /// never gets the invalidation of its own write before the reply.
    bcast_pending: Mutex<HashMap<Option<u64>, Vec<Vec<u8>>>>,
    has_bcast_pending: AtomicBool,
}

pub const CHANNEL: &[u8] = b"__redis__:invalidate";

impl Tracking {
    #[inline]
    pub fn active(&self) -> bool {
        self.active.load(Relaxed) > 0
    }

    /// Clients with tracking on (INFO clients).
    pub fn clients_count(&self) -> usize {
        self.active.load(Relaxed)
    }

    /// INFO stats: tracked keys, (key, client) items, BCAST prefixes.
    pub fn stats(&self) -> (usize, usize, usize) {
        let (keys, items) = {
            let t = self.table.lock();
            (t.len(), t.values().map(|v| v.len()).sum())
        };
        let mut prefixes: Vec<Vec<u8>> = self
            .clients
            .read()
            .values()
            .flat_map(|o| o.prefixes.iter().cloned())
            .collect();
        prefixes.sort();
        prefixes.dedup();
        (keys, items, prefixes.len())
    }

    pub fn register_target(&self, id: u64, s: &Arc<Subscriber>) {
        self.targets.write().insert(id, s.clone());
    }

    pub fn unregister_target(&self, id: u64) {
        self.targets.write().remove(&id);
    }

    pub fn enable(&self, id: u64, opts: TrackOpts) {
        if self.clients.write().insert(id, opts).is_none() {
            self.active.fetch_add(1, Relaxed);
        }
    }

    pub fn disable(&self, id: u64) {
        if self.clients.write().remove(&id).is_some() {
            self.active.fetch_sub(1, Relaxed);
        }
        self.broken.lock().remove(&id);
    }

    /// Whether `id`'s redirect target is gone (TRACKINGINFO).
    pub fn is_broken(&self, id: u64) -> bool {
        self.broken.lock().contains(&id)
    }

    pub fn remember(
        &self,
        id: u64,
        keys: impl Iterator<Item = Vec<u8>>,
        registry: &crate::client::Clients,
    ) {
        let mut t = self.table.lock();
        for k in keys {
            let v = t.entry(k).or_default();
            if !v.contains(&id) {
                v.push(id);
            }
        }
        let max = self.max_keys.load(Relaxed);
        if max == 0 || t.len() <= max {
            return;
        }
        // Over `tracking-table-max-keys`: forget keys (in hash order, as
        // good as Redis's random pick) and tell their readers to drop
        // them, as if they had changed.
        let excess = t.len() - max;
        let victims: Vec<Vec<u8>> = t.keys().take(excess).cloned().collect();
        drop(t);
        // Only the clients that read them: BCAST clients hear of changes,
        // and these keys did not change (Redis passes bcast=0 here).
        for k in victims {
            self.invalidate_as(&k, None, registry, false);
        }
    }

    /// `key` changed (by client `origin`, if a client did it).
    pub fn invalidate(&self, key: &[u8], origin: Option<u64>, registry: &crate::client::Clients) {
        self.invalidate_as(key, origin, registry, true);
    }

    /// As `invalidate`; without `bcast`, only the clients that read `key`
    /// are told (a key the table forgets did not change).
    fn invalidate_as(
        &self,
        key: &[u8],
        origin: Option<u64>,
        registry: &crate::client::Clients,
        bcast: bool,
    ) {
        if !self.active() {
            return;
        }
        let ids = self.table.lock().remove(key).unwrap_or_default();
        let clients = self.clients.read();
        let send = |id: u64| {
            let Some(o) = clients.get(&id) else { return };
            if o.noloop && Some(id) == origin {
                return;
            }
            self.send_for(id, o, Some(&[key]), origin, registry);
        };
        for id in ids {
            send(id);
        }
        let under =
            |o: &TrackOpts| o.prefixes.is_empty() || o.prefixes.iter().any(|p| key.starts_with(p));
        if bcast && clients.values().any(|o| o.bcast && under(o)) {
            self.bcast_pending
                .lock()
                .entry(origin)
                .or_default()
                .push(key.to_vec());
            self.has_bcast_pending.store(true, Relaxed);
        }
    }

    /// Sends BCAST invalidations collected so far: those caused by
    /// connection `current` and those with no client behind them (expiry,
    /// eviction), or, with `current` = `None`, everything (the periodic
    /// cycle, a connection that went away). Per BCAST client, one message
    /// per prefix (in prefix order) with the changed keys under it, sorted,
    /// deduplicated, and for NOLOOP without the keys the client changed
    /// itself. `current`'s own messages go after its replies.
    pub fn flush_bcast(&self, current: Option<u64>, registry: &crate::client::Clients) {
        if !self.has_bcast_pending.load(Relaxed) {
            return;
        }
        let mut pending: Vec<(Vec<u8>, Option<u64>)> = Vec::new();
        {
            let mut p = self.bcast_pending.lock();
            let origins: Vec<Option<u64>> = match current {
                Some(_) => vec![current, None],
                None => p.keys().copied().collect(),
            };
            for origin in origins {
                if let Some(keys) = p.remove(&origin) {
                    pending.extend(keys.into_iter().map(|k| (k, origin)));
                }
            }
            self.has_bcast_pending.store(!p.is_empty(), Relaxed);
        }
        if pending.is_empty() {
            return;
        }
        // Sorted once: each prefix's keys are then one contiguous run.
        pending.sort_unstable();
        pending.dedup();
        let clients = self.clients.read();
        for (&id, o) in clients.iter().filter(|(_, o)| o.bcast) {
            let mut prefixes: Vec<&[u8]> = o.prefixes.iter().map(|p| p.as_slice()).collect();
            if prefixes.is_empty() {
                prefixes.push(b"");
            }
            prefixes.sort_unstable();
            for p in prefixes {
                let start = pending.partition_point(|(k, _)| k.as_slice() < p);
                let mut keys: Vec<&[u8]> = pending[start..]
                    .iter()
                    .take_while(|(k, _)| k.starts_with(p))
                    .filter(|(_, by)| !(o.noloop && *by == Some(id)))
                    .map(|(k, _)| k.as_slice())
                    .collect();
                if keys.is_empty() {
                    continue;
                }
                keys.dedup();
                self.send_for(id, o, Some(&keys), current, registry);
            }
        }
    }

    /// FLUSHDB / FLUSHALL: a null invalidation to every tracking client.
    pub fn invalidate_all(&self, origin: Option<u64>, registry: &crate::client::Clients) {
        if !self.active() {
            return;
        }
        self.table.lock().clear();
        let clients = self.clients.read();
        for (&id, o) in clients.iter() {
            self.send_for(id, o, None, origin, registry);
        }
    }

    /// Sends to tracking client `id`'s target; a missing redirect target
    /// is reported to the client instead (`tracking-redir-broken`, RESP3).
    fn send_for(
        &self,
        id: u64,
        o: &TrackOpts,
        keys: Option<&[&[u8]]>,
        origin: Option<u64>,
        registry: &crate::client::Clients,
    ) {
        if o.redirect == 0 {
            return self.send(id, keys, origin);
        }
        if registry.get(o.redirect).is_some() {
            return self.send(o.redirect, keys, origin);
        }
        // Redis tells the client every time (and flags it for TRACKINGINFO).
        self.broken.lock().insert(id);
        let Some(s) = self.targets.read().get(&id).cloned() else {
            return;
        };
        if s.resp3.load(Relaxed) {
            let mut r = crate::resp::Reply {
                buf: Vec::with_capacity(48),
                resp3: true,
            };
            r.push(2);
            r.bulk(b"tracking-redir-broken");
            r.int(o.redirect as i64);
            if Some(id) == origin {
                s.push_after_reply(&r.buf);
            } else {
                s.push_frame_prompt(&r.buf);
            }
        }
    }

    fn send(&self, target: u64, keys: Option<&[&[u8]]>, origin: Option<u64>) {
        let Some(s) = self.targets.read().get(&target).cloned() else {
            return;
        };
        let resp3 = s.resp3.load(Relaxed);
        let mut r = crate::resp::Reply {
            buf: Vec::with_capacity(64),
            resp3,
        };
        if resp3 {
            r.push(2);
            r.bulk(b"invalidate");
        } else if s.handle.sub_counts.iter().any(|c| c.load(Relaxed) > 0) {
            r.push(3);
            r.bulk(b"message");
            r.bulk(CHANNEL);
        } else {
            return;
        }
        match keys {
            Some(keys) => {
                r.array(keys.len());
                for k in keys {
                    r.bulk(k);
                }
            }
            None => r.null(),
        }
        // Redis 7.0 sends a client's invalidations caused by its own
        // command after that command's reply.
        if Some(target) == origin {
            s.push_after_reply(&r.buf);
        } else {
            s.push_frame_prompt(&r.buf);
        }
    }
}
