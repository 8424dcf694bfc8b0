//! Watching the server run: MONITOR feeds, the slow log and the latency
//! monitor. Each costs one relaxed load per command when unused.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::pubsub::Subscriber;

/// MONITOR clients.
#[derive(Default)]
pub struct Monitors {
    count: AtomicUsize,
    list: RwLock<Vec<Arc<Subscriber>>>,
}

impl Monitors {
    #[inline]
    pub fn active(&self) -> bool {
        self.count.load(Relaxed) > 0
    }

    pub fn add(&self, s: &Arc<Subscriber>) {
        let mut l = self.list.write();
        if !l.iter().any(|x| Arc::ptr_eq(x, s)) {
            l.push(s.clone());
            self.count.store(l.len(), Relaxed);
        }
    }

    pub fn contains(&self, s: &Arc<Subscriber>) -> bool {
        self.active() && self.list.read().iter().any(|x| Arc::ptr_eq(x, s))
    }

    pub fn remove(&self, s: &Arc<Subscriber>) {
        let mut l = self.list.write();
        l.retain(|x| !Arc::ptr_eq(x, s));
        self.count.store(l.len(), Relaxed);
    }

    /// Sends one executed command to every monitor, as Redis's
    /// `replicationFeedMonitors`: `+<unix s>.<us> [<db> <addr>] "arg" ...`.
    pub fn feed(&self, db: usize, addr: &str, argv: &[&[u8]], redact_from: usize) {
        let us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        let mut line = format!(
            "+{}.{:06} [{} {}]",
            us / 1_000_000,
            us % 1_000_000,
            db,
            addr
        )
        .into_bytes();
        for (i, a) in argv.iter().enumerate() {
            line.extend_from_slice(b" ");
            if i >= redact_from {
                line.extend_from_slice(b"\"(redacted)\"");
            } else {
                repr(a, &mut line);
            }
        }
        line.extend_from_slice(b"\r\n");
        for s in self.list.read().iter() {
            s.push_frame_prompt(&line);
        }
    }
}

/// Redis's `sdscatrepr`: a double-quoted, escaped string.
pub fn repr(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            c if c.is_ascii_graphic() || c == b' ' => out.push(c),
            c => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

pub struct SlowEntry {
    pub id: u64,
    pub time: u64,
    pub micros: u64,
    pub args: Vec<Vec<u8>>,
    pub addr: String,
    pub name: Vec<u8>,
}

/// The slow log (newest first).
#[derive(Default)]
pub struct SlowLog {
    pub entries: Mutex<VecDeque<SlowEntry>>,
    next_id: std::sync::atomic::AtomicU64,
}

const SLOWLOG_MAX_ARGC: usize = 32;
const SLOWLOG_MAX_STRING: usize = 128;

impl SlowLog {
    pub fn push(&self, argv: &[&[u8]], micros: u64, addr: String, name: Vec<u8>, max_len: usize) {
        let argc = argv.len().min(SLOWLOG_MAX_ARGC);
        let mut args = Vec::with_capacity(argc);
        for (j, a) in argv.iter().take(argc).enumerate() {
            if argc != argv.len() && j == argc - 1 {
                args.push(format!("... ({} more arguments)", argv.len() - argc + 1).into_bytes());
            } else if a.len() > SLOWLOG_MAX_STRING {
                let mut v = a[..SLOWLOG_MAX_STRING].to_vec();
                v.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - SLOWLOG_MAX_STRING).as_bytes(),
                );
                args.push(v);
            } else {
                args.push(a.to_vec());
            }
        }
        let e = SlowEntry {
            id: self.next_id.fetch_add(1, Relaxed),
            time: crate::shared::unix_ms() / 1000,
            micros,
            args,
            addr,
            name,
        };
        let mut l = self.entries.lock();
        l.push_front(e);
        l.truncate(max_len);
    }
}

/// Latency monitor: per event, the last 160 samples (one per second at
/// most, keeping the max), as Redis's `latency.c`.
#[derive(Default)]
pub struct Latency {
    pub events: Mutex<HashMap<String, LatencySeries>>,
}

#[derive(Default)]
pub struct LatencySeries {
    /// (unix seconds, ms)
    pub samples: VecDeque<(u64, u64)>,
    pub max: u64,
}

const LATENCY_SAMPLES: usize = 160;

impl Latency {
    pub fn add(&self, event: &str, ms: u64) {
        let now = crate::shared::unix_ms() / 1000;
        let mut m = self.events.lock();
        let s = m.entry(event.to_string()).or_default();
        s.max = s.max.max(ms);
        match s.samples.back_mut() {
            Some(last) if last.0 == now => last.1 = last.1.max(ms),
            _ => {
                s.samples.push_back((now, ms));
                if s.samples.len() > LATENCY_SAMPLES {
                    s.samples.pop_front();
                }
            }
        }
    }
}
