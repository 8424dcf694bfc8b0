//! One client connection: the only code that touches a client socket.
//!
//! Loop: read what the socket has, decode *every* complete command in the
//! buffer, execute them in order into one reply buffer, then write all the
//! replies with one write. Pipelining is the common case and costs one
//! read and one write per batch. Output is flushed early when it grows
//! past a threshold, so a client that pipelines without reading stalls on
//! TCP backpressure instead of growing the server's memory.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::client::{ClientHandle, ClientState, Control, ReplyMode};
use crate::commands::{self, flags, Ctx};
use crate::resp::decode::{parse_request, Limits, Parsed};
use crate::resp::Reply;
use crate::shared::{unix_ms, Shared};

/// Redis's per-client static reply buffer (PROTO_REPLY_CHUNK_BYTES):
/// output up to this size is not counted against the output limits.
const REPLY_CHUNK_BYTES: u64 = 16 * 1024;

/// After a wrong password (AUTH, HELLO AUTH) the connection stops running
/// the rest of what it has read, sends the replies so far, and waits this
/// long before going on: a client pipelining guesses gets one per flush
/// and delay (at most ~20 per second per connection) instead of
/// thousands per round trip. Redis has no such limit.
const AUTH_FAIL_DELAY: Duration = Duration::from_millis(50);

/// Room for one read, as Redis reads up to 16 KiB (PROTO_IOBUF_LEN) a time.
const READ_CHUNK: usize = 16 * 1024;

/// A batch that consumed more than this (a big request) leaves a fresh
/// read buffer behind it (see `consume`).
const READ_KEEP_MAX: usize = 64 * 1024;

/// Drops the `pos` bytes a batch consumed. A batch that took a big request
/// (a large value) grew the buffer to hold it: that memory goes back once
/// the buffer is empty, so an idle connection keeps READ_CHUNK, not its
/// largest request (Redis likewise frees a big query buffer).
fn consume(rbuf: &mut BytesMut, pos: usize) {
    rbuf.advance(pos);
    if pos > READ_KEEP_MAX && rbuf.is_empty() {
        *rbuf = BytesMut::with_capacity(READ_CHUNK);
    }
}

/// Gives the read buffer room for a whole read before the socket is read.
/// `advance` only moves the buffer's start, so without this the room left
/// at its end shrank batch by batch until a read stopped short in the
/// middle of a pipeline: one batch in twenty of `-P 16` SADD became two
/// reads and two reply writes (5% more syscalls and segments, on both
/// sides). `reserve` takes the consumed front back in place (no
/// allocation) when what is left fits there, as it does after a batch
/// that ended on a command boundary.
fn make_room(rbuf: &mut BytesMut) {
    if rbuf.capacity() - rbuf.len() < READ_CHUNK {
        rbuf.reserve(READ_CHUNK);
    }
}

/// Flush replies mid-batch once this many bytes are pending.
const FLUSH_AT: usize = 64 * 1024;

pub async fn serve<S>(srv: Arc<Shared>, mut stream: S, handle: Arc<ClientHandle>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut reply = Reply::new(false);
    let mut client = ClientState::new(handle.clone());
    client.user = srv.acl.default_user();
    client.authenticated = !srv.acl.default_needs_auth.load(Relaxed);
    let mut ranges = Vec::with_capacity(8);
    let mut shutdown = srv.shutdown.subscribe();
    // The read loop's watch for a shutdown, kept across requests (made
    // anew on each, its registration and removal cost a lock each).
    let mut stop_rx = srv.shutdown.subscribe();
    let stop = async move {
        let _ = stop_rx.changed().await;
    };
    tokio::pin!(stop);
    // Whether replies pending in `reply` followed a write (see `flush`).
    let mut wrote = false;
    let mut durable: Option<tokio::sync::watch::Receiver<basalt_aof::Lsn>> = None;
    // Input read while a command was blocked is already in `rbuf`: run it
    // before waiting on the socket again.
    let mut stashed = false;
    // When this client's pending output first went over the soft limit.
    let mut soft_since: Option<tokio::time::Instant> = None;
    'conn: loop {
        let (limits, qlimit, timeout) = {
            let c = srv.config.read();
            (
                Limits {
                    max_bulk_len: c.proto_max_bulk_len as usize,
                    ..Limits::default()
                },
                c.client_query_buffer_limit as usize,
                c.timeout,
            )
        };
        // `timeout`: idle clients are closed, except subscribers and
        // monitors (as Redis; a blocked client waits in `blocking::wait`).
        let exempt = timeout > 0
            && (client.subs.any()
                || client
                    .sub
                    .as_ref()
                    .is_some_and(|s| srv.monitors.contains(s)));
        let idle = async {
            if timeout > 0 && !exempt {
                let since = unix_ms().saturating_sub(handle.last_active_ms.load(Relaxed));
                let left = Duration::from_millis((timeout * 1000).saturating_sub(since));
                tokio::time::sleep(left).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        // A kill, or a `timeout` change (the idle deadline is recomputed).
        let control = handle.control(true);
        // A subscriber is also woken by messages pushed to its queue.
        let sub = client.sub.clone();
        let pushed = async {
            match &sub {
                Some(s) => s.pushed().await,
                None => std::future::pending::<()>().await,
            }
        };
        // Input read while a command was blocked is already in `rbuf`: run
        // it before waiting on the socket again.
        if !std::mem::take(&mut stashed) {
            make_room(&mut rbuf);
            tokio::select! {
                // Input first: when it is there, nothing else is polled.
                biased;
                r = stream.read_buf(&mut rbuf) => match r {
                    Ok(0) | Err(_) => break 'conn,
                    Ok(n) => { srv.stats.net_input_bytes.fetch_add(n as u64, Relaxed); crate::server::note_input(); }
                },
                _ = pushed => {
                    // Woken after the scheduler round of its first message
                    // (see `pubsub::wake_deferred`): one write for the
                    // messages of every publisher of that round.
                    if let Some(s) = &sub {
                        s.drain_into(&mut reply.buf);
                    }
                    if handle.killed.load(Relaxed) || flush_unless_killed(&srv, &handle, &mut stream, &mut reply, &mut wrote, &mut durable).await.is_err() {
                        break 'conn;
                    }
                    continue 'conn;
                }
                c = control => match c {
                    Control::Retimed => continue 'conn,
                    _ => break 'conn,
                },
                _ = &mut stop => break 'conn,
                _ = idle => {
                    tracing::debug!(client = handle.id, addr = %handle.addr, "closing idle client");
                    break 'conn;
                }
            }
        }
        // Input is polled first (above), so under a steady flood the kill
        // and shutdown branches may never be: look at both here.
        if handle.killed.load(Relaxed) || shutdown.has_changed().unwrap_or(true) {
            break;
        }
        let obl = OutputLimits::load(&srv, &client);
        let mut pos = 0;
        let mut close = false;
        let mut throttle = false;
        let now_ms = unix_ms();
        let mut clock = crate::clock::BatchClock::new(now_ms);
        handle.last_active_ms.store(now_ms, Relaxed);
        if client.authenticated {
            prefetch_keys(&srv, &rbuf, client.db, &limits, &mut ranges);
        }
        {
            let mut argv: Vec<&[u8]> = Vec::with_capacity(8);
            loop {
                let parsed = match parse_request(&rbuf[pos..], &limits, &mut ranges) {
                    Ok(None) => break,
                    Ok(Some(p)) => p,
                    Err(e) => {
                        reply.error(&format!("ERR {e}"));
                        srv.stats.count_error("ERR");
                        close = true;
                        break;
                    }
                };
                let consumed = match parsed {
                    Parsed::Skip { consumed } => {
                        pos += consumed;
                        continue;
                    }
                    Parsed::Command { consumed } => {
                        argv.clear();
                        argv.extend(ranges.iter().map(|r| &rbuf[pos + r.start..pos + r.end]));
                        let now = command_time(&client, &argv, &mut clock);
                        wrote |= run_one(&srv, &mut client, &mut reply, &argv, now).await;
                        consumed
                    }
                    Parsed::Owned { consumed, args } => {
                        let v: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
                        let now = command_time(&client, &v, &mut clock);
                        wrote |= run_one(&srv, &mut client, &mut reply, &v, now).await;
                        consumed
                    }
                };
                pos += consumed;
                if std::mem::take(&mut client.auth_failed) {
                    // A wrong password: stop this batch (see AUTH_FAIL_DELAY).
                    throttle = true;
                    break;
                }
                if let Some(req) = client.pending_sync.take() {
                    // SYNC/PSYNC for a snapshot: the connection sends it,
                    // then closes, as Redis closes an rdb-only replica.
                    if flush(&srv, &mut stream, &mut reply, &mut wrote, &mut durable)
                        .await
                        .is_ok()
                    {
                        let _ = crate::replication::transfer(
                            &srv,
                            &handle,
                            &mut stream,
                            req,
                            &mut shutdown,
                        )
                        .await;
                    }
                    break 'conn;
                }
                let (block, wait) = (client.pending_block.take(), client.pending_waitaof.take());
                if block.is_some() || wait.is_some() {
                    // A blocking command (a pop, XREAD BLOCK, WAIT, WAITAOF):
                    // send what is pending first (as Redis does before
                    // blocking), then wait here, where the socket is, so
                    // that a kill, shutdown or the client leaving ends it.
                    queue_pushes(&srv, &client, &mut reply);
                    if flush(&srv, &mut stream, &mut reply, &mut wrote, &mut durable)
                        .await
                        .is_err()
                    {
                        break 'conn;
                    }
                    let (before, mode) = (reply.len(), client.reply_mode);
                    srv.blocked_clients.fetch_add(1, Relaxed);
                    if let Some(b) = block {
                        crate::blocking::wait(
                            &srv,
                            &mut client,
                            b,
                            &mut reply,
                            unix_ms(),
                            &mut stream,
                        )
                        .await;
                    } else if let Some(w) = wait {
                        waitaof(&srv, &mut client, w, &mut reply, &mut stream).await;
                    }
                    srv.blocked_clients.fetch_sub(1, Relaxed);
                    // Its reply counts as interaction (Redis updates
                    // lastinteraction on writes), so `timeout` starts over.
                    handle.last_active_ms.store(unix_ms(), Relaxed);
                    apply_reply_mode(&mut client, &mut reply, before, mode);
                    if client.peer_closed || handle.killed.load(Relaxed) {
                        break 'conn;
                    }
                }
                if client.close_after_reply {
                    close = true;
                    break;
                }
                let big = reply.len() >= FLUSH_AT;
                if big {
                    // CLIENT LIST's omem and maxmemory-clients see a big
                    // reply while it waits for the socket, not only at the
                    // end of the batch.
                    handle.omem.store(reply.len() as u64, Relaxed);
                }
                if let Some(l) = &obl {
                    // With limits, output the socket cannot take yet is
                    // kept (up to the limits) while the batch goes on.
                    if reply.len() >= FLUSH_AT
                        && can_write_now(&srv, wrote)
                        && try_write(&srv, &mut stream, &mut reply).await.is_err()
                    {
                        break 'conn;
                    }
                    if l.over(reply.len(), &mut soft_since) {
                        cut_off(&handle, reply.len());
                        break 'conn;
                    }
                } else if reply.len() >= FLUSH_AT
                    && flush_unless_killed(
                        &srv,
                        &handle,
                        &mut stream,
                        &mut reply,
                        &mut wrote,
                        &mut durable,
                    )
                    .await
                    .is_err()
                {
                    break 'conn;
                }
                if big {
                    handle.omem.store(reply.len() as u64, Relaxed);
                }
            }
        }
        consume(&mut rbuf, pos);
        // Bytes that arrived while a command was blocked come after the
        // rest of the batch.
        if !client.stash.is_empty() {
            rbuf.extend_from_slice(&std::mem::take(&mut client.stash));
            stashed = true;
        }
        if client.peer_closed {
            break;
        }
        if throttle {
            queue_pushes(&srv, &client, &mut reply);
            if flush_unless_killed(
                &srv,
                &handle,
                &mut stream,
                &mut reply,
                &mut wrote,
                &mut durable,
            )
            .await
            .is_err()
                || close
            {
                break;
            }
            tokio::time::sleep(AUTH_FAIL_DELAY).await;
            stashed |= !rbuf.is_empty();
        }
        handle.qbuf.store(rbuf.len() as u64, Relaxed);
        if rbuf.len() > qlimit {
            tracing::warn!(client = handle.id, addr = %handle.addr, "closing client that reached max query buffer length");
            break;
        }
        // BCAST invalidations for the keys this batch changed (Redis sends
        // them once per event-loop iteration).
        queue_pushes(&srv, &client, &mut reply);
        handle.omem.store(reply.len() as u64, Relaxed);
        // A client that does not read its replies is cut off once it has
        // stayed over the soft limit for its seconds.
        let flushed = match obl.as_ref().and_then(|l| l.cut_at(soft_since)) {
            Some(at) if !reply.buf.is_empty() => tokio::select! {
                r = flush_unless_killed(&srv, &handle, &mut stream, &mut reply, &mut wrote, &mut durable) => r,
                _ = tokio::time::sleep_until(at) => {
                    cut_off(&handle, reply.len());
                    break;
                }
            },
            _ => {
                flush_unless_killed(
                    &srv,
                    &handle,
                    &mut stream,
                    &mut reply,
                    &mut wrote,
                    &mut durable,
                )
                .await
            }
        };
        handle.omem.store(reply.len() as u64, Relaxed);
        if reply.buf.is_empty() {
            soft_since = None;
        }
        if flushed.is_err() || close {
            break;
        }
    }
    // Invalidations for this client's last writes, if it left mid-batch.
    srv.tracking.flush_bcast(Some(handle.id), &srv.clients);
    crate::commands::multi::clear(&srv, &mut client);
    crate::commands::pubsub::unsubscribe_all(&srv, &mut client);
    let _ = stream.shutdown().await;
    srv.clients.unregister(handle.id);
}

/// `client-output-buffer-limit normal` for a client of that class (not
/// subscribed; subscribers have the `pubsub` class in `pubsub.rs`).
/// Without limits (Redis's default `normal 0 0 0`) a client that does not
/// read stalls its own connection on TCP backpressure instead, so its
/// output stays bounded either way.
struct OutputLimits {
    hard: u64,
    soft: u64,
    soft_secs: u64,
}

impl OutputLimits {
    fn load(srv: &Shared, client: &ClientState) -> Option<OutputLimits> {
        let l = &srv.normal_limits;
        let (hard, soft) = (l.hard.load(Relaxed), l.soft.load(Relaxed));
        if (hard == 0 && soft == 0) || client.subs.any() {
            return None;
        }
        Some(OutputLimits {
            hard,
            soft,
            soft_secs: l.soft_secs.load(Relaxed),
        })
    }

    /// Redis's rule: over the hard limit at once, or over the soft limit
    /// continuously for more than its seconds.
    fn over(&self, pending: usize, soft_since: &mut Option<tokio::time::Instant>) -> bool {
        // Redis counts only the reply list beyond the client's 16 KB
        // static buffer, so small replies never trip even a tiny limit.
        let pending = (pending as u64).saturating_sub(REPLY_CHUNK_BYTES);
        if self.hard > 0 && pending > self.hard {
            return true;
        }
        if self.soft > 0 && pending > self.soft {
            let since = *soft_since.get_or_insert_with(tokio::time::Instant::now);
            return since.elapsed() > Duration::from_secs(self.soft_secs);
        }
        *soft_since = None;
        false
    }

    /// When a stalled write must give up (the client is over the soft
    /// limit and stays there).
    fn cut_at(&self, soft_since: Option<tokio::time::Instant>) -> Option<tokio::time::Instant> {
        soft_since.map(|t| t + Duration::from_secs(self.soft_secs) + Duration::from_millis(1))
    }
}

fn cut_off(handle: &ClientHandle, pending: usize) {
    tracing::warn!(
        client = handle.id,
        addr = %handle.addr,
        "client closed for overcoming of output buffer limits ({pending} bytes pending)"
    );
}

/// Whether replies may leave now without waiting for an fsync (see
/// `flush`).
fn can_write_now(srv: &Shared, wrote: bool) -> bool {
    match srv.log.get() {
        Some(log) if srv.fsync_always.load(Relaxed) && (wrote || srv.log_ok.load(Relaxed)) => {
            log.durable() >= log.appended()
        }
        _ => true,
    }
}

/// Writes what the socket takes right now, without waiting for it.
async fn try_write<S: AsyncWrite + Unpin>(
    srv: &Shared,
    stream: &mut S,
    reply: &mut Reply,
) -> std::io::Result<()> {
    use std::pin::Pin;
    use std::task::Poll;
    let mut off = 0;
    while off < reply.buf.len() {
        let r = std::future::poll_fn(|cx| {
            match Pin::new(&mut *stream).poll_write(cx, &reply.buf[off..]) {
                Poll::Pending => Poll::Ready(None),
                Poll::Ready(r) => Poll::Ready(Some(r)),
            }
        })
        .await;
        match r {
            None => break,
            Some(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
            Some(Ok(n)) => off += n,
            Some(Err(e)) => return Err(e),
        }
    }
    if off > 0 {
        // Push out what a TLS stream buffered, if the socket takes it.
        let _ = std::future::poll_fn(|cx| match Pin::new(&mut *stream).poll_flush(cx) {
            Poll::Pending => Poll::Ready(Ok(())),
            r => r,
        })
        .await;
        srv.stats.net_output_bytes.fetch_add(off as u64, Relaxed);
        reply.buf.drain(..off);
    }
    Ok(())
}

/// The time a command runs at: the batch clock's (at most
/// `clock::REUSE_US` old), except for one that MULTI only queues (it
/// answers +QUEUED or an error, which no clock changes), which takes the
/// clock's last reading without looking at the TSC. A clock read costs
/// 29-100 ns on a VM, a visible share of a small command.
#[inline]
fn command_time(client: &ClientState, argv: &[&[u8]], clock: &mut crate::clock::BatchClock) -> u64 {
    if client.multi.is_some()
        && !argv
            .first()
            .is_some_and(|c| c.eq_ignore_ascii_case(b"exec"))
    {
        clock.last()
    } else {
        clock.now()
    }
}

/// Runs one command; returns true if it was a write.
async fn run_one(
    srv: &Shared,
    client: &mut ClientState,
    reply: &mut Reply,
    argv: &[&[u8]],
    now_ms: u64,
) -> bool {
    if srv.pause.until_ms.load(Relaxed) != 0 {
        wait_if_paused(srv, argv).await;
    }
    let before = reply.len();
    let mode_before = client.reply_mode;
    let f = {
        let mut ctx = Ctx {
            srv,
            client,
            out: reply,
            now_ms,
            loading: false,
            txn: None,
        };
        commands::execute(&mut ctx, argv)
    };
    if let Some(job) = client.pending_migrate.take() {
        // MIGRATE: the network part runs here, with no lock held; then
        // the migrated keys are deleted and the reply written.
        // A kill or shutdown abandons it (nothing deleted; the
        // connection closes): a long timeout must not hold either up.
        let handle = client.handle.clone();
        let killed = handle.control(false);
        let mut stop = srv.shutdown.subscribe();
        let outcome = tokio::select! {
            o = commands::migrate::transfer(srv, &job) => Some(o),
            _ = killed => None,
            _ = stop.changed() => None,
        };
        if let Some(outcome) = outcome {
            let mut ctx = Ctx {
                srv,
                client,
                out: reply,
                now_ms: unix_ms(),
                loading: false,
                txn: None,
            };
            commands::migrate::finish(&mut ctx, &job, outcome);
        }
    }
    if client.pending_block.is_some() || client.pending_waitaof.is_some() {
        // The batch loop waits (it owns the socket).
    } else {
        apply_reply_mode(client, reply, before, mode_before);
    }
    // (CLIENT REPLY OFF does not hold back pushes.)
    if let Some(s) = &client.sub {
        // Messages this command caused for its own client (a PUBLISH to
        // itself, a keyspace event of its write) go before its reply, as
        // Redis appends them to the output buffer while the command runs.
        let mut pushed = Vec::new();
        if s.drain_into_before(&mut pushed) {
            reply.buf.splice(before..before, pushed);
        }
        s.drain_after(&mut reply.buf);
    }
    f & flags::WRITE != 0
}

/// WAITAOF: waits until every record appended so far (this client's
/// writes included) is fsynced, or the timeout passes. Basalt has no
/// replicas, so a request for replica acks waits out the timeout (forever
/// for 0, as Redis would with none connected) and reports 0. WAIT
/// (`replicas_only`) is only that replica part, answered with one integer.
async fn waitaof<R: AsyncRead + Unpin>(
    srv: &Shared,
    client: &mut ClientState,
    w: crate::client::WaitAof,
    reply: &mut Reply,
    peer: &mut R,
) {
    let deadline = (w.timeout_ms > 0)
        .then(|| tokio::time::Instant::now() + Duration::from_millis(w.timeout_ms));
    let log = srv.log.get().filter(|_| !w.replicas_only);
    let target = log.map(|l| l.appended());
    let waiting = async {
        if let (Some(log), Some(target)) = (log, target) {
            if log.durable() < target {
                log.request_sync();
                let mut rx = log.subscribe();
                let wait = rx.wait_for(|d| *d >= target);
                match deadline {
                    Some(d) => {
                        let _ = tokio::time::timeout_at(d, wait).await;
                    }
                    None if w.numlocal > 0 => {
                        let _ = wait.await;
                    }
                    None => {}
                }
            }
        }
        if w.numreplicas > 0 {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending::<()>().await,
            }
        }
    };
    tokio::pin!(waiting);
    // CLIENT UNBLOCK, CLIENT KILL, shutdown or the client leaving end the
    // wait early (see `blocking::wait`).
    let handle = client.handle.clone();
    handle.set_blocked(true);
    let unblocked = handle.unblocked.notified();
    tokio::pin!(unblocked);
    unblocked.as_mut().enable();
    let killed = handle.kill.notified();
    tokio::pin!(killed);
    let mut shutdown = srv.shutdown.subscribe();
    let mut tmp = vec![0u8; 4096];
    while handle.unblock.load(Relaxed) == 0 && !handle.killed.load(Relaxed) {
        tokio::select! {
            _ = &mut waiting => break,
            _ = &mut unblocked => break,
            _ = &mut killed => break,
            _ = shutdown.changed() => break,
            n = peer.read(&mut tmp), if !client.peer_closed => match n {
                Ok(n) if n > 0 => {
                    // More commands pipelined behind the wait.
                    client.stash.extend_from_slice(&tmp[..n]);
                }
                _ => {
                    client.peer_closed = true;
                    break;
                }
            },
        }
    }
    let how = handle.unblock.load(Relaxed);
    handle.set_blocked(false);
    if handle.killed.load(Relaxed) || client.peer_closed {
        return;
    }
    if how == crate::client::UNBLOCK_ERROR {
        reply.error(crate::client::UNBLOCKED_ERROR);
        return;
    }
    if w.replicas_only {
        reply.int(0);
        return;
    }
    let local = match (log, target) {
        (Some(log), Some(target)) => (log.durable() >= target) as i64,
        _ => 0,
    };
    reply.array(2);
    reply.int(local);
    reply.int(0);
}

fn apply_reply_mode(
    client: &mut ClientState,
    reply: &mut Reply,
    before: usize,
    mode_before: ReplyMode,
) {
    match mode_before {
        ReplyMode::Off if client.reply_mode != ReplyMode::On => reply.buf.truncate(before),
        // CLIENT REPLY ON itself clears the skip and is answered.
        ReplyMode::SkipNext if client.reply_mode == ReplyMode::On => {}
        ReplyMode::SkipNext => {
            reply.buf.truncate(before);
            if client.reply_mode == ReplyMode::SkipNext {
                client.reply_mode = ReplyMode::On;
            }
        }
        _ => {}
    }
    if client.reply_mode == ReplyMode::Skip {
        client.reply_mode = ReplyMode::SkipNext;
    }
}

/// Sends the BCAST invalidations of this connection's writes so far (as
/// Redis does in `beforeSleep`) and appends every push queued for the
/// client after its replies.
fn queue_pushes(srv: &Shared, client: &ClientState, reply: &mut Reply) {
    srv.tracking
        .flush_bcast(Some(client.handle.id), &srv.clients);
    if let Some(s) = &client.sub {
        s.drain_into(&mut reply.buf);
    }
}

/// Writes pending replies. Under `appendfsync always`, no reply leaves
/// before the fsync covering every record appended so far: this client's
/// writes, and the writes of others that its reads may have observed (as
/// Redis holds a whole event-loop iteration's replies behind its fsync).
/// While the disk is failing, a batch of pure reads is not held back.
async fn flush<S: AsyncWrite + Unpin>(
    srv: &Shared,
    stream: &mut S,
    reply: &mut Reply,
    wrote: &mut bool,
    durable: &mut Option<tokio::sync::watch::Receiver<basalt_aof::Lsn>>,
) -> std::io::Result<()> {
    if reply.buf.is_empty() {
        return Ok(());
    }
    if *wrote {
        snapshot_backpressure().await;
    }
    if let Some(log) = srv.log.get() {
        if srv.fsync_always.load(Relaxed) && (*wrote || srv.log_ok.load(Relaxed)) {
            let target = log.appended();
            if log.durable() < target {
                // Let every other client that is ready run first (tokio
                // defers a yielded task until its worker has nothing else
                // to do and has polled for new input), so that one write and
                // fsync cover all of their records; then commit here, on
                // this thread, unless someone else already is.
                // While the others keep adding records, give them another
                // round (bounded), so the batch takes all of them.
                let mut seen = target;
                for _ in 0..16 {
                    tokio::task::yield_now().await;
                    let now = log.appended();
                    if now == seen || log.durable() >= target {
                        break;
                    }
                    seen = now;
                }
                if log.commit_inline(target) {
                    return write_replies(srv, stream, reply, wrote).await;
                }
                let rx = durable.get_or_insert_with(|| log.subscribe());
                if rx.wait_for(|d| *d >= target).await.is_err() {
                    return Err(std::io::Error::other("log closed"));
                }
            }
        } else if *wrote {
            log_backpressure(log).await;
        }
    }
    write_replies(srv, stream, reply, wrote).await
}

/// Under `everysec` and `no` replies do not wait for the disk, so writers
/// could outrun it and grow the log's buffer without bound. A writing
/// client whose records find more than `LOG_BACKLOG_MAX` bytes not yet
/// written to the file waits (its replies held) until the backlog is down
/// to half that: the disk's pace becomes the writers' pace, as Redis's
/// event loop writes its AOF buffer before taking more commands.
async fn log_backpressure(log: &basalt_aof::Log) {
    let backlog = |l: &basalt_aof::Log| l.appended().0.saturating_sub(l.written().0);
    if backlog(log) <= LOG_BACKLOG_MAX {
        return;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while backlog(log) > LOG_BACKLOG_MAX / 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A running snapshot keeps the old value of every key a write changes
/// before the walk reaches it, until the snapshot thread drains it into
/// the file. A client whose writes find that backlog over
/// `CAPTURE_BACKLOG_MAX` waits (its replies held, no lock held) until the
/// snapshot has drained half of it, so a write flood cannot grow the
/// captured memory faster than the snapshot writes it out (a flood against
/// `maxmemory` with eviction under way showed 50 MB captured at once).
async fn snapshot_backpressure() {
    use crate::snapshot::{capture_backlog, CAPTURE_BACKLOG_MAX};
    if capture_backlog() <= CAPTURE_BACKLOG_MAX {
        return;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while capture_backlog() > CAPTURE_BACKLOG_MAX / 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// See `log_backpressure`.
const LOG_BACKLOG_MAX: u64 = 64 << 20;

async fn write_replies<S: AsyncWrite + Unpin>(
    srv: &Shared,
    stream: &mut S,
    reply: &mut Reply,
    wrote: &mut bool,
) -> std::io::Result<()> {
    *wrote = false;
    stream.write_all(&reply.buf).await?;
    // A TLS stream may hold the last records until flushed (a no-op on TCP).
    stream.flush().await?;
    srv.stats
        .net_output_bytes
        .fetch_add(reply.buf.len() as u64, Relaxed);
    reply.buf.clear();
    if reply.buf.capacity() > 1 << 20 {
        reply.buf.shrink_to(64 * 1024);
    }
    Ok(())
}

/// `flush`, abandoned when the client is killed meanwhile (a subscriber
/// over its output limit is usually stuck writing to a full socket).
async fn flush_unless_killed<S: AsyncWrite + Unpin>(
    srv: &Shared,
    handle: &ClientHandle,
    stream: &mut S,
    reply: &mut Reply,
    wrote: &mut bool,
    durable: &mut Option<tokio::sync::watch::Receiver<basalt_aof::Lsn>>,
) -> std::io::Result<()> {
    let killed = handle.control(false);
    tokio::select! {
        // The output first: when it goes out at once, nothing else is polled.
        biased;
        r = flush(srv, stream, reply, wrote, durable) => r,
        _ = killed => Err(std::io::Error::other("client killed")),
    }
}

/// CLIENT PAUSE: holds the command until the pause ends.
async fn wait_if_paused(srv: &Shared, argv: &[&[u8]]) {
    loop {
        let until = srv.pause.until_ms.load(Relaxed);
        let now = unix_ms();
        if until <= now {
            return;
        }
        if srv.pause.writes_only.load(Relaxed) {
            let is_write = commands::table()
                .get(argv[0])
                .is_some_and(|e| e.spec.flags & flags::WRITE != 0);
            if !is_write {
                return;
            }
        }
        let notified = srv.pause.changed.notified();
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(Duration::from_millis(until - now)) => {}
        }
    }
}

/// Commands of a pipelined batch whose keys `prefetch_keys` requests.
const PREFETCH_MAX: usize = 16;

/// For a pipelined batch, asks the CPU for the table slots, then the
/// first chain nodes, then the values' allocations, of the first keys of up to `PREFETCH_MAX` commands
/// before any of them runs, so their cache misses overlap instead of
/// each command waiting for its own (as Redis 8 batches lookups for its
/// IO threads). A hint only: nothing is read that a command relies on.
fn prefetch_keys(
    srv: &Shared,
    buf: &[u8],
    db: usize,
    limits: &Limits,
    ranges: &mut Vec<std::ops::Range<usize>>,
) {
    if db >= srv.ks.num_dbs() {
        return;
    }
    let table = commands::table();
    let mut hashes = [0u64; PREFETCH_MAX];
    let mut keys: [&[u8]; PREFETCH_MAX] = [&[]; PREFETCH_MAX];
    let (mut n, mut pos) = (0, 0);
    // Commands looked at: a pipeline of key-less commands is not parsed
    // twice in full.
    for _ in 0..2 * PREFETCH_MAX {
        if n == PREFETCH_MAX {
            break;
        }
        match parse_request(&buf[pos..], limits, ranges) {
            Ok(Some(Parsed::Command { consumed })) => {
                if pos == 0 && consumed == buf.len() {
                    // A lone command (no pipeline): nothing to overlap.
                    return;
                }
                if ranges.len() >= 2 {
                    let name = &buf[pos + ranges[0].start..pos + ranges[0].end];
                    if table.get(name).is_some_and(|e| e.spec.first_key == 1) {
                        let key = &buf[pos + ranges[1].start..pos + ranges[1].end];
                        let h = basalt_storage::keyspace::Keyspace::hash(key);
                        // A key the batch already names is fetched once
                        // (a pipeline on one list or set is all one key).
                        if !hashes[..n].contains(&h) {
                            hashes[n] = h;
                            keys[n] = key;
                            n += 1;
                        }
                    }
                }
                pos += consumed;
            }
            Ok(Some(Parsed::Skip { consumed })) => pos += consumed,
            _ => break,
        }
    }
    if n < 2 {
        return;
    }
    let ks = &srv.ks;
    for &h in &hashes[..n] {
        ks.lock(ks.shard_of(h)).dbs[db].prefetch(h);
    }
    for &h in &hashes[..n] {
        ks.lock(ks.shard_of(h)).dbs[db].prefetch_head(h);
    }
    for (&h, key) in hashes[..n].iter().zip(&keys[..n]) {
        ks.lock(ks.shard_of(h)).dbs[db].prefetch_value(h, key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pipelines of 832 bytes (16 SADDs, as `redis-benchmark -P 16`),
    /// each read and consumed whole: every read must find room for a whole
    /// pipeline, and the buffer must not grow for it.
    #[test]
    fn every_read_has_room_for_a_pipeline_without_growing() {
        let batch = vec![b'x'; 832];
        let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
        for i in 0..200 {
            make_room(&mut rbuf);
            let spare = rbuf.capacity() - rbuf.len();
            assert!(spare >= READ_CHUNK, "read {i}: room for {spare} bytes only");
            assert_eq!(rbuf.capacity(), READ_CHUNK, "read {i}: the buffer grew");
            rbuf.extend_from_slice(&batch);
            rbuf.advance(batch.len());
        }
        // A partial command left over keeps its bytes, at the front.
        rbuf.extend_from_slice(b"*3\r\n$4\r\nSA");
        rbuf.advance(4);
        make_room(&mut rbuf);
        assert_eq!(&rbuf[..], b"$4\r\nSA");
        assert!(rbuf.capacity() - rbuf.len() >= READ_CHUNK);
    }

    /// A batch that held a big request leaves a small buffer once
    /// consumed; a partly consumed one keeps its bytes.
    #[test]
    fn a_big_request_does_not_keep_its_buffer() {
        let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
        rbuf.extend_from_slice(&vec![b'x'; 1 << 20]);
        consume(&mut rbuf, 1 << 20);
        assert_eq!(rbuf.capacity(), READ_CHUNK);
        rbuf.extend_from_slice(&vec![b'y'; 1 << 20]);
        consume(&mut rbuf, (1 << 20) - 3);
        assert_eq!(&rbuf[..], b"yyy");
    }
}
