//! Blocking pops (BLPOP, BRPOP, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP,
//! BLMOVE, BRPOPLPUSH).
//!
//! A blocking command first tries to pop, as its non-blocking form. When
//! every key is empty it registers a [`Waiter`] in the [`Registry`] under
//! each key — while still holding those keys' shard locks, so no push
//! can slip in between the check and the registration — and leaves its
//! reply to the connection, which awaits the waiter (see
//! [`wait`]).
//!
//! Serving follows Redis: the command that makes a key non-empty (a push,
//! ZADD, a STORE into it), still holding the key's lock, pops for the
//! waiters of that key in arrival order (`serve`), logs each pop as the
//! plain command (LPOP, ZPOPMIN, ...) and hands the finished reply to the
//! waiting connection over a oneshot channel. So waiters are served in
//! arrival order, across connections and threads, and the log holds what
//! was popped. BLMOVE waiters need a second key's lock, which the pusher
//! cannot take in order; they are woken instead and retry the move
//! themselves (serving stops at such a waiter so order is kept).
//!
//! Timeout, client kill and serving race only under the registry lock:
//! a waiter that times out removes itself; if it is already gone it was
//! served, and its reply is waiting in the channel.
//!
//! Keys that change wholesale — deleted, overwritten, renamed, moved,
//! swapped in by SWAPDB, flushed, expired, or changed inside EXEC — are
//! *marked ready* ([`mark_ready`]) instead, and looked at again once the
//! command (the whole EXEC) is over ([`drain_ready`]), as Redis's
//! `signalKeyAsReady` / `handleClientsBlockedOnKeys` do: a list or sorted
//! set there serves its waiters, a stream serves its XREAD / XREADGROUP
//! waiters (`-NOGROUP` when their group is gone), and anything else — no
//! key, another type — ends the XREADGROUP waits on it with `-UNBLOCKED
//! the stream key no longer exists` (plain XREAD keeps waiting).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use basalt_storage::{Entry, Value};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::client::ClientState;
use crate::commands::{self, Ctx};
use crate::db::{KeyLock, MultiLock};
use crate::resp::Reply;
use crate::shared::Shared;

/// What a waiter does when its key gets an element.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// BLPOP/BRPOP (`count` None) and BLMPOP (`Some(count)`).
    List { front: bool, count: Option<usize> },
    /// BZPOPMIN/BZPOPMAX (`count` None) and BZMPOP (`Some(count)`).
    ZSet { max: bool, count: Option<usize> },
    /// BLMOVE/BRPOPLPUSH: woken to retry.
    Move,
    /// XREAD/XREADGROUP with BLOCK (details in the waiter's `stream`).
    Stream,
}

impl Kind {
    fn wants_list(self) -> bool {
        matches!(self, Kind::List { .. } | Kind::Move)
    }

    fn wants_zset(self) -> bool {
        matches!(self, Kind::ZSet { .. })
    }
}

pub enum Served {
    Reply(Vec<u8>),
    Retry,
}

pub struct Waiter {
    id: u64,
    db: usize,
    keys: Vec<Vec<u8>>,
    kind: Kind,
    resp3: bool,
    stream: Option<Box<StreamWait>>,
    tx: Mutex<Option<oneshot::Sender<Served>>>,
}

/// What a blocked XREAD / XREADGROUP waits for.
pub struct StreamWait {
    /// Per key, the ID entries must be greater than (MAX = the group's
    /// last delivered ID, XREADGROUP's `>`).
    pub ids: Vec<(Vec<u8>, basalt_storage::StreamId)>,
    pub count: u64,
    /// XREADGROUP: (group, consumer).
    pub group: Option<(Vec<u8>, Vec<u8>)>,
    pub noack: bool,
}

#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
    /// Number of registered waiters: pushes skip the lock when 0.
    count: AtomicUsize,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    queues: HashMap<(usize, Vec<u8>), VecDeque<Arc<Waiter>>>,
}

impl Inner {
    fn remove(&mut self, w: &Waiter) -> bool {
        let mut found = false;
        for k in &w.keys {
            let key = (w.db, k.clone());
            if let Some(q) = self.queues.get_mut(&key) {
                let before = q.len();
                q.retain(|x| x.id != w.id);
                found |= q.len() != before;
                if q.is_empty() {
                    self.queues.remove(&key);
                }
            }
        }
        found
    }
}

impl Registry {
    /// Number of clients currently blocked (INFO blocked_clients).
    pub fn blocked(&self) -> usize {
        self.count.load(Relaxed)
    }

    /// Removes a waiter that gave up; false if it was already served.
    fn cancel(&self, w: &Waiter) -> bool {
        let mut inner = self.inner.lock();
        let removed = inner.remove(w);
        if removed {
            self.count.fetch_sub(1, Relaxed);
        }
        removed
    }
}

/// A registered wait, handed from the handler to the connection.
pub struct Blocked {
    waiter: Arc<Waiter>,
    rx: oneshot::Receiver<Served>,
    deadline_ms: u64,
    /// The command, re-run when a BLMOVE waiter is woken.
    argv: Vec<Vec<u8>>,
    /// Reply on timeout: null array (what Redis 7.0 sends for every
    /// blocking command, moves included) or null bulk.
    null_array: bool,
}

/// Parses a blocking timeout in seconds as Redis's
/// getTimeoutFromObjectOrReply: the absolute deadline in ms, 0 = none.
pub fn parse_timeout(b: &[u8], now_ms: u64) -> Result<u64, commands::CmdError> {
    use commands::CmdError;
    let v = crate::num::parse_f64(b)
        .ok_or_else(|| CmdError::msg("ERR timeout is not a float or out of range"))?;
    let ms = (v * 1000.0).ceil();
    if ms > i64::MAX as f64 {
        // Redis 7.0 casts the overflowing value to a negative long long.
        return Err(CmdError::msg("ERR timeout is negative"));
    }
    if ms < 0.0 {
        return Err(CmdError::msg("ERR timeout is negative"));
    }
    let ms = ms as u64;
    if ms == 0 {
        return Ok(0);
    }
    if ms > i64::MAX as u64 - now_ms {
        return Err(CmdError::msg("ERR timeout is out of range"));
    }
    Ok(now_ms + ms)
}

/// Registers the current client as waiting on `keys` (the caller holds
/// their locks) and leaves the reply to the connection.
pub fn block(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    kind: Kind,
    deadline_ms: u64,
    argv: &[&[u8]],
    null_array: bool,
) {
    block_inner(ctx, keys, kind, None, deadline_ms, argv, null_array)
}

/// `block` for XREAD / XREADGROUP.
pub fn block_stream(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    wait: StreamWait,
    deadline_ms: u64,
    argv: &[&[u8]],
) {
    block_inner(
        ctx,
        keys,
        Kind::Stream,
        Some(Box::new(wait)),
        deadline_ms,
        argv,
        true,
    )
}

fn block_inner(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    kind: Kind,
    stream: Option<Box<StreamWait>>,
    deadline_ms: u64,
    argv: &[&[u8]],
    null_array: bool,
) {
    // Inside MULTI/EXEC a blocking command does not block: it answers as
    // if its timeout had passed, as in Redis.
    if ctx.client.in_exec {
        if null_array {
            ctx.out.null_array();
        } else {
            ctx.out.null();
        }
        return;
    }
    let reg = &ctx.srv.blocked;
    let (tx, rx) = oneshot::channel();
    let mut inner = reg.inner.lock();
    inner.next_id += 1;
    let mut uniq: Vec<Vec<u8>> = Vec::new();
    for k in keys {
        if !uniq.iter().any(|u| u == k) {
            uniq.push(k.to_vec());
        }
    }
    let w = Arc::new(Waiter {
        id: inner.next_id,
        db: ctx.client.db,
        keys: uniq,
        kind,
        resp3: ctx.out.resp3,
        stream,
        tx: Mutex::new(Some(tx)),
    });
    for k in &w.keys {
        inner
            .queues
            .entry((w.db, k.clone()))
            .or_default()
            .push_back(w.clone());
    }
    reg.count.fetch_add(1, Relaxed);
    drop(inner);
    ctx.client.pending_block = Some(Blocked {
        waiter: w,
        rx,
        deadline_ms,
        argv: argv.iter().map(|a| a.to_vec()).collect(),
        null_array,
    });
}

/// Access to one locked key, for serving from any lock holder.
pub trait Slot {
    fn entry(&mut self) -> Option<&mut Entry>;
    fn remove(&mut self);
}

impl Slot for KeyLock<'_, '_> {
    fn entry(&mut self) -> Option<&mut Entry> {
        self.get_mut()
    }
    fn remove(&mut self) {
        KeyLock::remove(self);
    }
}

pub struct MultiSlot<'m, 's, 'k> {
    pub ml: &'m mut MultiLock<'s>,
    pub i: usize,
    pub key: &'k [u8],
}

impl Slot for MultiSlot<'_, '_, '_> {
    fn entry(&mut self) -> Option<&mut Entry> {
        self.ml.get_mut(self.i, self.key)
    }
    fn remove(&mut self) {
        self.ml.remove(self.i, self.key);
    }
}

/// Pops for `kind` from the value in `slot` if it has the right type and
/// is non-empty: returns the reply (in `resp3` or RESP2) and the command
/// to log. Deletes the key when emptied.
pub fn pop_for(
    kind: Kind,
    key: &[u8],
    slot: &mut dyn Slot,
    resp3: bool,
    lim: &basalt_storage::Limits,
) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    let e = slot.entry()?;
    let mut out = Reply {
        buf: Vec::with_capacity(64),
        resp3,
    };
    let log: Vec<Vec<u8>>;
    match (kind, &mut e.value) {
        (Kind::List { front, count }, Value::List(l)) if !l.is_empty() => {
            let n = count.unwrap_or(1).min(l.len());
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.extend(l.pop(front));
            }
            l.shrink_check(lim);
            let empty = l.is_empty();
            let name: &[u8] = if front { b"LPOP" } else { b"RPOP" };
            log = vec![name.to_vec(), key.to_vec(), n.to_string().into_bytes()];
            out.array(2);
            out.bulk(key);
            match count {
                None => out.bulk(&items[0]),
                Some(_) => {
                    out.array(items.len());
                    for v in &items {
                        out.bulk(v);
                    }
                }
            }
            if empty {
                slot.remove();
            }
        }
        (Kind::ZSet { max, count }, Value::ZSet(z)) if !z.is_empty() => {
            let len = z.len();
            let n = count.unwrap_or(1).min(len);
            let items = if max {
                z.collect(len - n, len - 1, true)
            } else {
                z.collect(0, n - 1, false)
            };
            if max {
                z.remove_ranks(len - n, len - 1);
            } else {
                z.remove_ranks(0, n - 1);
            }
            let empty = z.is_empty();
            let name: &[u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
            log = vec![name.to_vec(), key.to_vec(), n.to_string().into_bytes()];
            match count {
                None => {
                    out.array(3);
                    out.bulk(key);
                    out.bulk(&items[0].0);
                    out.double(items[0].1);
                }
                Some(_) => {
                    out.array(2);
                    out.bulk(key);
                    out.array(items.len());
                    for (m, s) in &items {
                        out.array(2);
                        out.bulk(m);
                        out.double(*s);
                    }
                }
            }
            if empty {
                slot.remove();
            }
        }
        _ => return None,
    }
    Some((out.buf, log))
}

/// Serves the waiters of `key` (just made non-empty by the caller, who
/// holds its lock) in arrival order while elements remain.
pub fn serve(ctx: &Ctx<'_>, key: &[u8], slot: &mut dyn Slot) {
    if ctx.txn.is_some() && ctx.srv.blocked.blocked() > 0 {
        // Inside EXEC: served once the transaction is over, from what the
        // key holds then (the transaction may pop it again).
        mark_ready(ctx.client.db, key);
        return;
    }
    let reg = &ctx.srv.blocked;
    if reg.count.load(Relaxed) == 0 || ctx.loading {
        return;
    }
    let lim = crate::commands::coll::limits(ctx);
    let mut inner = reg.inner.lock();
    let qkey = (ctx.client.db, key.to_vec());
    while let Some(is_list) = slot.entry().map(|e| matches!(e.value, Value::List(_))) {
        let Some(q) = inner.queues.get(&qkey) else {
            break;
        };
        // The first waiter for this key's type (others stay blocked).
        let Some(w) = q
            .iter()
            .find(|w| {
                if is_list {
                    w.kind.wants_list()
                } else {
                    w.kind.wants_zset()
                }
            })
            .cloned()
        else {
            break;
        };
        if w.kind == Kind::Move {
            inner.remove(&w);
            reg.count.fetch_sub(1, Relaxed);
            let tx = w.tx.lock().take();
            if let Some(tx) = tx {
                let _ = tx.send(Served::Retry);
            }
            break;
        }
        let Some((reply, log)) = pop_for(w.kind, key, slot, w.resp3, &lim) else {
            break;
        };
        inner.remove(&w);
        reg.count.fetch_sub(1, Relaxed);
        let refs: Vec<&[u8]> = log.iter().map(|v| v.as_slice()).collect();
        ctx.propagate(&refs);
        let tx = w.tx.lock().take();
        if let Some(tx) = tx {
            let _ = tx.send(Served::Reply(reply));
        }
    }
}

/// Serves the blocked XREAD / XREADGROUP clients of `key` (the caller
/// holds its lock and just added entries, or destroyed a group), in
/// arrival order: each gets the entries after its ID (a group reader the
/// entries after the group's last delivered ID, which moves as earlier
/// readers are served). A group read's effect is logged as the
/// synchronous read logs it.
pub fn serve_stream(ctx: &Ctx<'_>, key: &[u8], slot: &mut dyn Slot) {
    use crate::commands::stream::{
        deliver_new, propagate_effects, reply_range_pub, Effects, GroupRead,
    };
    use basalt_storage::StreamId;
    let reg = &ctx.srv.blocked;
    if reg.count.load(Relaxed) == 0 || ctx.loading {
        return;
    }
    if ctx.txn.is_some() {
        // Inside EXEC: served from the stream as the transaction leaves
        // it (a group destroyed and created again serves, as in Redis).
        mark_ready(ctx.client.db, key);
        return;
    }
    let mut inner = reg.inner.lock();
    let qkey = (ctx.client.db, key.to_vec());
    let Some(q) = inner.queues.get(&qkey) else {
        return;
    };
    let waiters: Vec<Arc<Waiter>> = q
        .iter()
        .filter(|w| w.kind == Kind::Stream)
        .cloned()
        .collect();
    let now = ctx.now_ms as i64;
    for w in waiters {
        let Some(sw) = &w.stream else { continue };
        let Some(e) = slot.entry() else { break };
        let Value::Stream(s) = &mut e.value else {
            break;
        };
        let gt = sw
            .ids
            .iter()
            .find(|(k, _)| k == key)
            .map(|x| x.1)
            .unwrap_or_default();
        let mut out = Reply {
            buf: Vec::with_capacity(64),
            resp3: w.resp3,
        };
        let mut log = Effects::default();
        let header = |out: &mut Reply| {
            if out.resp3 {
                out.map(1);
            } else {
                out.array(1);
                out.array(2);
            }
            out.bulk(key);
        };
        match &sw.group {
            None => {
                // As Redis: the stream's last ID, not its last entry, so a
                // stream whose new entries are already deleted (XADD with
                // MAXLEN 0, XDEL in the same EXEC) answers with none.
                if s.last_id <= gt {
                    continue;
                }
                header(&mut out);
                let start = gt.incr().unwrap_or(StreamId::MAX);
                reply_range_pub(&mut out, s, start, sw.count);
            }
            Some((g, c)) => {
                match s.groups.get_mut(g.as_slice()) {
                    None => {
                        out.error("NOGROUP the consumer group this client was blocked on no longer exists");
                    }
                    Some(grp) => {
                        if s.last_id <= grp.last_id {
                            continue;
                        }
                        let grp = s.groups.get_mut(g.as_slice()).expect("checked");
                        match grp.consumers.get_mut(c.as_slice()) {
                            Some(cons) => cons.seen_time = now,
                            None => {
                                grp.consumers.insert(
                                    c.as_slice().into(),
                                    basalt_storage::stream::Consumer {
                                        seen_time: now,
                                        active_time: -1,
                                        pel: Default::default(),
                                    },
                                );
                                log.cmd(&[b"XGROUP", b"CREATECONSUMER", key, g, c]);
                            }
                        }
                        header(&mut out);
                        let gr = GroupRead {
                            group: g,
                            consumer: c,
                            noack: sw.noack,
                        };
                        deliver_new(&mut out, key, s, &gr, sw.count, now, &mut log);
                    }
                }
            }
        }
        inner.remove(&w);
        reg.count.fetch_sub(1, Relaxed);
        if !log.is_empty() {
            propagate_effects(ctx, &log);
        }
        let tx = w.tx.lock().take();
        if let Some(tx) = tx {
            let _ = tx.send(Served::Reply(out.buf));
        }
    }
}

thread_local! {
    /// Keys marked ready by the command running on this thread, looked at
    /// by [`drain_ready`] when it is over. Commands run synchronously on
    /// one thread from parse to reply, so nothing else interleaves here.
    static READY: std::cell::RefCell<Vec<(usize, Vec<u8>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Marks `key` in `db` for a second look once the current command is
/// over (Redis's `signalKeyAsReady`). Callers check first that someone
/// is blocked at all ([`Registry::blocked`]).
pub fn mark_ready(db: usize, key: &[u8]) {
    READY.with(|r| {
        let mut r = r.borrow_mut();
        if !r.iter().rev().take(8).any(|(d, k)| *d == db && k == key) {
            r.push((db, key.to_vec()));
        }
    });
}

/// Marks every key of `db` that some client is blocked on (FLUSHDB,
/// FLUSHALL, SWAPDB change them all at once).
pub fn mark_db_ready(srv: &Shared, db: usize) {
    if srv.blocked.blocked() == 0 {
        return;
    }
    let inner = srv.blocked.inner.lock();
    let mut keys: Vec<&Vec<u8>> = inner
        .queues
        .keys()
        .filter(|(d, _)| *d == db)
        .map(|(_, k)| k)
        .collect();
    // A fixed order (the registry's map has none).
    keys.sort();
    for k in keys {
        mark_ready(db, k);
    }
}

/// Looks again at the keys the finished command marked ready: serves
/// their waiters from what the keys hold now, or ends the XREADGROUP
/// waits on keys that are no longer streams. Runs after every top-level
/// command (for EXEC, after the whole transaction), holding no locks.
pub fn drain_ready(ctx: &mut Ctx<'_>) {
    loop {
        // Nothing is marked while no one is blocked (marks left over from
        // waiters that timed out since are harmless: a second look only
        // serves what is there to serve).
        if ctx.srv.blocked.blocked() == 0 {
            return;
        }
        let batch = READY.with(|r| std::mem::take(&mut *r.borrow_mut()));
        if batch.is_empty() {
            return;
        }
        let mut seen: std::collections::HashSet<(usize, Vec<u8>)> = Default::default();
        for (db, key) in batch {
            if seen.contains(&(db, key.clone())) {
                continue;
            }
            recheck(ctx, db, &key);
            seen.insert((db, key));
        }
    }
}

/// The second look at one ready key (see [`drain_ready`]).
fn recheck(ctx: &mut Ctx<'_>, db: usize, key: &[u8]) {
    let srv = ctx.srv;
    if !srv
        .blocked
        .inner
        .lock()
        .queues
        .contains_key(&(db, key.to_vec()))
    {
        return;
    }
    // Serving logs and notifies in the key's db: run as if selected there.
    let selected = std::mem::replace(&mut ctx.client.db, db);
    {
        let mut ml = ctx.lock_keys_db(&[key], db);
        let mut slot = MultiSlot {
            ml: &mut ml,
            i: 0,
            key,
        };
        match slot.entry().map(|e| &e.value) {
            Some(Value::Stream(_)) => serve_stream(ctx, key, &mut slot),
            Some(Value::List(_) | Value::ZSet(_)) => {
                serve(ctx, key, &mut slot);
                unblock_deleted_stream(srv, db, key);
            }
            _ => unblock_deleted_stream(srv, db, key),
        }
    }
    ctx.client.db = selected;
}

/// A stream key was deleted or replaced: its blocked XREADGROUP clients
/// get `-UNBLOCKED the stream key no longer exists` (XREAD clients stay).
pub fn unblock_deleted_stream(srv: &Shared, db: usize, key: &[u8]) {
    let reg = &srv.blocked;
    let mut inner = reg.inner.lock();
    let Some(q) = inner.queues.get(&(db, key.to_vec())) else {
        return;
    };
    let waiters: Vec<Arc<Waiter>> = q
        .iter()
        .filter(|w| w.stream.as_ref().is_some_and(|s| s.group.is_some()))
        .cloned()
        .collect();
    for w in waiters {
        inner.remove(&w);
        reg.count.fetch_sub(1, Relaxed);
        let tx = w.tx.lock().take();
        if let Some(tx) = tx {
            let _ = tx.send(Served::Reply(
                b"-UNBLOCKED the stream key no longer exists\r\n".to_vec(),
            ));
        }
    }
}

/// Waits for a registered block to be served, to time out or for the
/// client to be killed, and writes the reply. Runs on the connection.
pub async fn wait<R: tokio::io::AsyncRead + Unpin>(
    srv: &Shared,
    client: &mut ClientState,
    mut b: Blocked,
    reply: &mut Reply,
    now_ms: u64,
    peer: &mut R,
) {
    use tokio::io::AsyncReadExt;
    let mut tmp = vec![0u8; 4096];
    let deadline_ms = b.deadline_ms;
    client.handle.set_blocked(true);
    loop {
        let sleep = async {
            if deadline_ms == 0 {
                std::future::pending::<()>().await
            } else {
                let left = deadline_ms.saturating_sub(crate::shared::unix_ms());
                tokio::time::sleep(std::time::Duration::from_millis(left)).await
            }
        };
        let handle = client.handle.clone();
        let mut shutdown = srv.shutdown.subscribe();
        // CLIENT UNBLOCK: armed before the flag is read, so a request made
        // in between is not missed.
        let unblocked = handle.unblocked.notified();
        tokio::pin!(unblocked);
        unblocked.as_mut().enable();
        let asked = handle.unblock.load(Relaxed) != 0;
        let served = tokio::select! {
            _ = std::future::ready(()), if asked => None,
            _ = &mut unblocked => None,
            r = &mut b.rx => r.ok(),
            _ = sleep => None,
            _ = handle.kill.notified() => None,
            _ = shutdown.changed() => None,
            n = peer.read(&mut tmp), if !client.peer_closed => match n {
                Ok(n) if n > 0 => {
                    // More commands pipelined behind the blocked one.
                    client.stash.extend_from_slice(&tmp[..n]);
                    continue;
                }
                _ => {
                    // The client went away: stop waiting, pop nothing.
                    client.peer_closed = true;
                    None
                }
            },
        };
        let served = match served {
            Some(s) => Some(s),
            None => {
                if srv.blocked.cancel(&b.waiter) {
                    None
                } else {
                    // Served concurrently with the timeout: take the reply.
                    (&mut b.rx).await.ok()
                }
            }
        };
        match served {
            Some(Served::Reply(bytes)) => {
                reply.buf.extend_from_slice(&bytes);
                break;
            }
            Some(Served::Retry) => {
                // Re-run the command: it moves now or blocks again.
                let argv: Vec<&[u8]> = b.argv.iter().map(|a| a.as_slice()).collect();
                let mut ctx = Ctx {
                    srv,
                    client,
                    out: reply,
                    now_ms: now_ms.max(crate::shared::unix_ms()),
                    loading: false,
                    txn: None,
                };
                commands::execute(&mut ctx, &argv);
                match client.pending_block.take() {
                    Some(nb) => {
                        b = Blocked { deadline_ms, ..nb };
                        continue;
                    }
                    None => break,
                }
            }
            None => {
                if client.handle.killed.load(Relaxed) || client.peer_closed {
                    break;
                }
                if client.handle.unblock.load(Relaxed) == crate::client::UNBLOCK_ERROR {
                    reply.error(crate::client::UNBLOCKED_ERROR);
                    break;
                }
                if b.null_array {
                    reply.null_array();
                } else {
                    reply.null();
                }
                break;
            }
        }
    }
    client.handle.set_blocked(false);
}

/// The shared body of BLPOP, BRPOP, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP:
/// type-check the keys in order and pop from the first non-empty one,
/// or block on all of them.
pub fn pop_or_block(
    ctx: &mut Ctx<'_>,
    argv: &[&[u8]],
    keys: &[&[u8]],
    kind: Kind,
    deadline_ms: u64,
) -> commands::CmdResult {
    use crate::commands::coll::{list, zset};
    let lim = crate::commands::coll::limits(ctx);
    // Each key is looked at (and lazily expired) in turn, as Redis does:
    // the keys after the one popped from, or after a wrong type, are not.
    let mut ml = ctx.lock_keys_deferred(keys, 0);
    for (i, key) in keys.iter().enumerate() {
        ctx.expire_locked(&mut ml, i, key);
        let Some(e) = ml.get(i, key) else { continue };
        if kind.wants_list() {
            list(e)?;
        } else {
            zset(e)?;
        }
        let mut slot = MultiSlot {
            ml: &mut ml,
            i,
            key,
        };
        if let Some((reply, log)) = pop_for(kind, key, &mut slot, ctx.out.resp3, &lim) {
            let refs: Vec<&[u8]> = log.iter().map(|v| v.as_slice()).collect();
            ctx.propagate(&refs);
            drop(ml);
            ctx.out.buf.extend_from_slice(&reply);
            return Ok(());
        }
    }
    if ctx.loading {
        drop(ml);
        ctx.out.null_array();
        return Ok(());
    }
    block(ctx, keys, kind, deadline_ms, argv, true);
    drop(ml);
    Ok(())
}

/// An MPOP's keys, whether it pops from the `left` end, and its COUNT.
pub type MpopArgs<'a> = (Vec<&'a [u8]>, bool, Option<usize>);

/// Parses `numkeys key... <left> | <right> [COUNT n]` from `a[at..]`
/// (LMPOP, ZMPOP and their blocking forms): (keys, first word?, count).
pub fn parse_mpop<'a>(
    a: &[&'a [u8]],
    at: usize,
    left: &str,
    right: &str,
) -> Result<MpopArgs<'a>, commands::CmdError> {
    use crate::commands::args::eq;
    use crate::commands::coll::ranged_msg;
    use crate::commands::CmdError;
    let numkeys = ranged_msg(a[at], 1, i64::MAX, "numkeys should be greater than 0")? as usize;
    let where_idx = numkeys.saturating_add(at + 1);
    if where_idx >= a.len() {
        return Err(CmdError::Syntax);
    }
    let first = if eq(a[where_idx], left) {
        true
    } else if eq(a[where_idx], right) {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let mut count = None;
    let mut j = where_idx + 1;
    while j < a.len() {
        if count.is_none() && eq(a[j], "count") && j + 1 < a.len() {
            count =
                Some(ranged_msg(a[j + 1], 1, i64::MAX, "count should be greater than 0")? as usize);
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok((a[at + 1..where_idx].to_vec(), first, count))
}
