//! The pub/sub registry: channels, patterns and shard channels mapped to
//! subscriber handles, each with a bounded outbound queue.
//!
//! PUBLISH (from any thread) encodes the message once per protocol and
//! appends it to each subscriber's queue. A subscriber's connection task
//! waiting on its socket and on its queue (`Pushed`) is woken by the first
//! message, and not directly: its waker is deferred until the publishing
//! worker has run every task ready now (`wake_deferred`), so the messages
//! of all those publishers reach it together and leave in one write, as
//! Redis writes a subscriber's output once per event-loop iteration. A subscriber that does not read is cut off
//! by `client-output-buffer-limit pubsub <hard> <soft> <secs>` (Redis's
//! default 32mb 8mb 60): past the hard limit at once, past the soft limit
//! once it has stayed there for `secs`.
//!
//! Locks: the registry maps are behind `RwLock`s taken only by (un)subscribe
//! (write) and publish (read); a queue has its own small mutex. Neither is
//! ever held while taking a shard lock, so publishing from inside a
//! command (keyspace notifications, with shard locks held) cannot deadlock.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

use crate::client::ClientHandle;

/// One subscribed connection, as the registry sees it.
pub struct Subscriber {
    pub handle: Arc<ClientHandle>,
    limits: Arc<Limits>,
    pub resp3: AtomicBool,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    buf: Vec<u8>,
    /// Frames caused by the client's own running command that Redis
    /// sends after its reply (tracking invalidations of its own writes).
    after: Vec<u8>,
    /// When the queue first went over the soft limit (None: under it).
    soft_since: Option<Instant>,
    closed: bool,
    /// The connection task waiting for the queue to fill (see `Pushed`).
    waker: Option<Waker>,
}

impl Subscriber {
    pub fn new(handle: Arc<ClientHandle>, resp3: bool, limits: Arc<Limits>) -> Arc<Self> {
        Arc::new(Subscriber {
            handle,
            limits,
            resp3: AtomicBool::new(resp3),
            queue: Mutex::new(Queue::default()),
        })
    }

    /// Ready once the ordinary queue holds something (for the connection
    /// task's `select!`; the waker it leaves is taken by the next push).
    pub fn pushed(&self) -> Pushed<'_> {
        Pushed(self)
    }

    /// Moves the frames to send after the current reply to `out`.
    pub fn drain_after(&self, out: &mut Vec<u8>) {
        let mut q = self.queue.lock();
        if !q.after.is_empty() {
            out.extend_from_slice(&q.after);
            q.after.clear();
        }
    }

    /// Moves the ordinary queue (not the after-reply frames) to `out`.
    pub fn drain_into_before(&self, out: &mut Vec<u8>) -> bool {
        let mut q = self.queue.lock();
        if q.buf.is_empty() {
            return false;
        }
        std::mem::swap(out, &mut q.buf);
        q.soft_since = None;
        true
    }

    /// Moves everything queued to `out`.
    pub fn drain_into(&self, out: &mut Vec<u8>) -> bool {
        let mut q = self.queue.lock();
        if !q.after.is_empty() {
            let after = std::mem::take(&mut q.after);
            q.buf.extend_from_slice(&after);
        }
        if q.buf.is_empty() {
            return false;
        }
        if out.is_empty() {
            std::mem::swap(out, &mut q.buf);
        } else {
            out.extend_from_slice(&q.buf);
            q.buf.clear();
        }
        q.soft_since = None;
        true
    }

    pub fn pending(&self) -> usize {
        self.queue.lock().buf.len()
    }

    /// Queues a frame to follow the reply of the command running on
    /// this subscriber's own connection.
    pub fn push_after_reply(&self, frame: &[u8]) {
        let mut q = self.queue.lock();
        if !q.closed {
            q.after.extend_from_slice(frame);
        }
    }

    /// Queues one message; false if the subscriber is being closed.
    pub fn push_frame(&self, frame: &[u8]) -> bool {
        self.push(frame, true)
    }

    /// As `push_frame`, for frames that should not wait for the
    /// publishers' round to end on a polling IO thread (see
    /// `server::hold_wake`): tracking invalidations (a client must drop a
    /// stale cache entry as soon as it can) and MONITOR lines.
    pub fn push_frame_prompt(&self, frame: &[u8]) -> bool {
        self.push(frame, false)
    }

    fn push(&self, frame: &[u8], may_hold: bool) -> bool {
        let limits = &*self.limits;
        let mut q = self.queue.lock();
        if q.closed {
            return false;
        }
        q.buf.extend_from_slice(frame);
        let len = q.buf.len() as u64;
        let (hard, soft, secs) = (
            limits.hard.load(Relaxed),
            limits.soft.load(Relaxed),
            limits.soft_secs.load(Relaxed),
        );
        let mut over = hard > 0 && len > hard;
        if soft > 0 && len > soft {
            match q.soft_since {
                None => q.soft_since = Some(Instant::now()),
                Some(t) if t.elapsed().as_secs() >= secs => over = true,
                Some(_) => {}
            }
        } else {
            q.soft_since = None;
        }
        if over {
            q.closed = true;
            q.buf = Vec::new();
            drop(q);
            tracing::warn!(client = self.handle.id, addr = %self.handle.addr, "closing pub/sub client over its output buffer limit ({len} bytes)");
            self.handle.kill();
            return false;
        }
        let waker = q.waker.take();
        drop(q);
        if let Some(w) = waker {
            wake_deferred(w, may_hold);
        }
        true
    }
}

/// See `Subscriber::pushed`.
pub struct Pushed<'a>(&'a Subscriber);

impl Future for Pushed<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut q = self.0.queue.lock();
        if !q.buf.is_empty() {
            return Poll::Ready(());
        }
        if !q.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            q.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Wakes `w` once the current runtime worker has run every task that is
/// ready now and polled for new input (at once outside a worker): a
/// pending `yield_now` polled with `w` as its waker is exactly that. The
/// subscriber then finds the messages of every publisher of this round in
/// its queue, and is scheduled once for them instead of once per message.
fn wake_deferred(w: Waker, may_hold: bool) {
    let w = if may_hold {
        match crate::server::hold_wake(w) {
            Ok(()) => return,
            Err(w) => w,
        }
    } else {
        w
    };
    let mut cx = Context::from_waker(&w);
    let y = std::pin::pin!(tokio::task::yield_now());
    if y.poll(&mut cx).is_ready() {
        w.wake();
    }
}

/// `client-output-buffer-limit pubsub` in bytes and seconds (0 = none).
#[derive(Default)]
pub struct Limits {
    pub hard: AtomicU64,
    pub soft: AtomicU64,
    pub soft_secs: AtomicU64,
}

/// Channel name to subscribers. foldhash (keyed per process, as the
/// keyspace's) instead of SipHash: every PUBLISH hashes its channel.
type Subs = HashMap<Vec<u8>, Vec<Arc<Subscriber>>, foldhash::quality::RandomState>;

#[derive(Default)]
pub struct PubSub {
    channels: RwLock<Subs>,
    patterns: RwLock<Subs>,
    shard: RwLock<Subs>,
    /// Number of patterns with subscribers, so PUBLISH skips the scan.
    npatterns: AtomicUsize,
    /// Number of channels with subscribers.
    nchannels: AtomicUsize,
    pub limits: Arc<Limits>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl PubSub {
    fn map(&self, k: Kind) -> &RwLock<Subs> {
        match k {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard,
        }
    }

    pub fn subscribe(&self, k: Kind, name: &[u8], s: &Arc<Subscriber>) {
        let mut m = self.map(k).write();
        let v = m.entry(name.to_vec()).or_default();
        if v.is_empty() {
            match k {
                Kind::Pattern => self.npatterns.fetch_add(1, Relaxed),
                Kind::Channel => self.nchannels.fetch_add(1, Relaxed),
                Kind::Shard => 0,
            };
        }
        v.push(s.clone());
    }

    pub fn unsubscribe(&self, k: Kind, name: &[u8], s: &Arc<Subscriber>) {
        let mut m = self.map(k).write();
        if let Some(v) = m.get_mut(name) {
            v.retain(|x| !Arc::ptr_eq(x, s));
            if v.is_empty() {
                m.remove(name);
                match k {
                    Kind::Pattern => self.npatterns.fetch_sub(1, Relaxed),
                    Kind::Channel => self.nchannels.fetch_sub(1, Relaxed),
                    Kind::Shard => 0,
                };
            }
        }
    }

    /// Every (kind, name) client `id` is subscribed to (a scan of the
    /// registry: for ACL changes, not hot paths).
    pub fn subscriptions_of(&self, id: u64) -> Vec<(Kind, Vec<u8>)> {
        let mut out = Vec::new();
        for k in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            for (name, subs) in self.map(k).read().iter() {
                if subs.iter().any(|s| s.handle.id == id) {
                    out.push((k, name.clone()));
                }
            }
        }
        out
    }

    /// Delivers `msg` on `channel`; returns the number of receivers
    /// (pattern matches count once per matching pattern, as Redis).
    pub fn publish(&self, channel: &[u8], msg: &[u8]) -> usize {
        let mut n = 0;
        let mut frames = Frames::default();
        {
            let m = self.channels.read();
            if let Some(v) = m.get(channel) {
                for s in v {
                    n += s.push_frame(frames.get(s, FrameKind::Message, None, channel, msg))
                        as usize;
                }
            }
        }
        if self.npatterns.load(Relaxed) > 0 {
            let m = self.patterns.read();
            for (pat, v) in m.iter() {
                if basalt_storage::glob_match(pat, channel, false) {
                    let mut pf = Frames::default();
                    for s in v {
                        n += s.push_frame(pf.get(s, FrameKind::PMessage, Some(pat), channel, msg))
                            as usize;
                    }
                }
            }
        }
        n
    }

    pub fn spublish(&self, channel: &[u8], msg: &[u8]) -> usize {
        let mut n = 0;
        let mut frames = Frames::default();
        let m = self.shard.read();
        if let Some(v) = m.get(channel) {
            for s in v {
                n += s.push_frame(frames.get(s, FrameKind::SMessage, None, channel, msg)) as usize;
            }
        }
        n
    }

    /// Channels (or shard channels) with at least one subscriber matching
    /// `pattern` (all when None).
    pub fn channels(&self, k: Kind, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        self.map(k)
            .read()
            .keys()
            .filter(|c| pattern.is_none_or(|p| basalt_storage::glob_match(p, c, false)))
            .cloned()
            .collect()
    }

    pub fn numsub(&self, k: Kind, channel: &[u8]) -> usize {
        self.map(k).read().get(channel).map_or(0, |v| v.len())
    }

    pub fn numpat(&self) -> usize {
        self.npatterns.load(Relaxed)
    }

    /// No channel or pattern subscriber at all: keyspace notifications
    /// skip building channel names nobody reads.
    #[inline]
    pub fn is_idle(&self) -> bool {
        self.nchannels.load(Relaxed) == 0 && self.npatterns.load(Relaxed) == 0
    }
}

#[derive(Clone, Copy)]
enum FrameKind {
    Message,
    PMessage,
    SMessage,
}

thread_local! {
    /// `Frames`' buffers, reused so that a PUBLISH allocates nothing.
    static SCRATCH: std::cell::Cell<[Vec<u8>; 2]> = const { std::cell::Cell::new([Vec::new(), Vec::new()]) };
}

/// A message encoded for RESP2 and RESP3 subscribers, built on first use
/// (into this thread's scratch buffers, handed back on drop).
struct Frames {
    /// Indexed by `resp3 as usize`.
    bufs: [Vec<u8>; 2],
    built: [bool; 2],
}

impl Default for Frames {
    fn default() -> Self {
        Frames {
            bufs: SCRATCH.with(|c| c.take()),
            built: [false; 2],
        }
    }
}

impl Drop for Frames {
    fn drop(&mut self) {
        let mut bufs = std::mem::take(&mut self.bufs);
        for b in &mut bufs {
            b.clear();
            if b.capacity() > 64 * 1024 {
                *b = Vec::new();
            }
        }
        SCRATCH.with(|c| c.set(bufs));
    }
}

impl Frames {
    fn get(
        &mut self,
        s: &Subscriber,
        kind: FrameKind,
        pattern: Option<&[u8]>,
        channel: &[u8],
        msg: &[u8],
    ) -> &[u8] {
        let r3 = s.resp3.load(Relaxed);
        let i = r3 as usize;
        if !self.built[i] {
            self.built[i] = true;
            let mut r = crate::resp::Reply {
                buf: std::mem::take(&mut self.bufs[i]),
                resp3: r3,
            };
            r.buf
                .reserve(48 + channel.len() + msg.len() + pattern.map_or(0, |p| p.len()));
            let name: &[u8] = match kind {
                FrameKind::Message => b"message",
                FrameKind::PMessage => b"pmessage",
                FrameKind::SMessage => b"smessage",
            };
            r.push(if pattern.is_some() { 4 } else { 3 });
            r.bulk(name);
            if let Some(p) = pattern {
                r.bulk(p);
            }
            r.bulk(channel);
            r.bulk(msg);
            self.bufs[i] = r.buf;
        }
        &self.bufs[i]
    }
}

/// Parses the `pubsub` class of `client-output-buffer-limit` into bytes
/// and seconds.
pub fn parse_limits(conf: &str) -> Option<(u64, u64, u64)> {
    parse_class_limits(conf, "pubsub")
}

/// Parses one class (`normal`, `pubsub`, `slave`) of
/// `client-output-buffer-limit` into bytes and seconds.
pub fn parse_class_limits(conf: &str, class: &str) -> Option<(u64, u64, u64)> {
    let w: Vec<&str> = conf.split_whitespace().collect();
    for c in w.chunks(4) {
        if c.len() == 4 && c[0].eq_ignore_ascii_case(class) {
            let mem = |s: &str| crate::config::parse_memory(s);
            return Some((mem(c[1])?, mem(c[2])?, c[3].parse().ok()?));
        }
    }
    None
}
