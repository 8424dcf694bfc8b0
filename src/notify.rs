//! Keyspace notifications (`notify-keyspace-events`), as Redis's
//! `notify.c`: an event of a class that is enabled is published on
//! `__keyspace@<db>__:<key>` (message: the event name) when `K` is set and
//! on `__keyevent@<db>__:<event>` (message: the key) when `E` is set.
//!
//! Command families call [`Ctx::notify`] (or [`Ctx::notify_in`]) after a
//! change, with their class bit (`STRING`, `LIST`, `HASH`...) and Redis's
//! event name; when no class is enabled that is one relaxed load.

use std::sync::atomic::Ordering::Relaxed;

use crate::commands::Ctx;
use crate::shared::Shared;

pub const KEYSPACE: u32 = 1 << 0; // K
pub const KEYEVENT: u32 = 1 << 1; // E
pub const GENERIC: u32 = 1 << 2; // g
pub const STRING: u32 = 1 << 3; // $
pub const LIST: u32 = 1 << 4; // l
pub const SET: u32 = 1 << 5; // s
pub const HASH: u32 = 1 << 6; // h
pub const ZSET: u32 = 1 << 7; // z
pub const EXPIRED: u32 = 1 << 8; // x
pub const EVICTED: u32 = 1 << 9; // e
pub const STREAM: u32 = 1 << 10; // t
pub const KEY_MISS: u32 = 1 << 11; // m
pub const MODULE: u32 = 1 << 13; // d
pub const NEW: u32 = 1 << 14; // n
/// `A`: every class but `m` and `n`.
pub const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Parses a flags string; None on an unknown character.
pub fn parse_flags(s: &str) -> Option<u32> {
    let mut f = 0;
    for c in s.chars() {
        f |= match c {
            'A' => ALL,
            'g' => GENERIC,
            '$' => STRING,
            'l' => LIST,
            's' => SET,
            'h' => HASH,
            'z' => ZSET,
            'x' => EXPIRED,
            'e' => EVICTED,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            't' => STREAM,
            'm' => KEY_MISS,
            'd' => MODULE,
            'n' => NEW,
            _ => return None,
        };
    }
    Some(f)
}

/// The canonical string CONFIG GET shows (Redis's
/// `keyspaceEventsFlagsToString`).
pub fn flags_to_string(f: u32) -> String {
    let mut s = String::new();
    if f & ALL == ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if f & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// Publishes one event (any thread; no lock of ours is needed).
pub fn notify(srv: &Shared, db: usize, class: u32, event: &[u8], key: &[u8]) {
    let flags = srv.notify_flags.load(Relaxed);
    if flags & class == 0 || srv.pubsub.is_idle() {
        return;
    }
    let mut dbs = itoa::Buffer::new();
    let dbs = dbs.format(db).as_bytes();
    let mut chan = Vec::with_capacity(16 + key.len().max(event.len()));
    if flags & KEYSPACE != 0 {
        chan.extend_from_slice(b"__keyspace@");
        chan.extend_from_slice(dbs);
        chan.extend_from_slice(b"__:");
        chan.extend_from_slice(key);
        srv.pubsub.publish(&chan, event);
    }
    if flags & KEYEVENT != 0 {
        chan.clear();
        chan.extend_from_slice(b"__keyevent@");
        chan.extend_from_slice(dbs);
        chan.extend_from_slice(b"__:");
        chan.extend_from_slice(event);
        srv.pubsub.publish(&chan, key);
    }
}

impl Ctx<'_> {
    /// A keyspace event for `key` in the current db.
    #[inline]
    pub fn notify(&self, class: u32, event: &[u8], key: &[u8]) {
        self.notify_in(self.client.db, class, event, key);
    }

    #[inline]
    pub fn notify_in(&self, db: usize, class: u32, event: &[u8], key: &[u8]) {
        if self.loading || self.srv.notify_flags.load(Relaxed) & class == 0 {
            return;
        }
        notify(self.srv, db, class, event, key);
    }
}
