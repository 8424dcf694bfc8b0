//! One key's slot: its value, absolute expiry and access clock.

use crate::value::Value;

/// `expire_at` is an absolute Unix time in milliseconds; 0 means no expiry
/// (a stored deadline is always in the future when set, so 0 is free).
/// `lru` is the server's coarse access clock in seconds (OBJECT IDLETIME).
/// `epoch` is the snapshot epoch the entry was last written in; the table
/// maintains it (see `dict.rs`, snapshots), callers leave it alone.
pub struct Entry {
    pub value: Value,
    pub expire_at: u64,
    pub lru: u32,
    pub epoch: u32,
}

impl Entry {
    pub fn new(value: Value) -> Self {
        Entry {
            value,
            expire_at: 0,
            lru: 0,
            epoch: 0,
        }
    }

    pub fn with_expire(value: Value, expire_at: u64) -> Self {
        Entry {
            value,
            expire_at,
            lru: 0,
            epoch: 0,
        }
    }

    /// True when the key has a deadline at or before `now_ms`.
    #[inline]
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at != 0 && self.expire_at <= now_ms
    }
}
