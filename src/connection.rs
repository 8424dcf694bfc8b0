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

use crate::client::{ClientHandle, ClientState, ReplyMode};
use crate::commands::{self, flags, Ctx};
use crate::resp::decode::{parse_request, Limits, Parsed};
use crate::resp::Reply;
use crate::shared::{unix_ms, Shared};

/// Flush replies mid-batch once this many bytes are pending.
const FLUSH_AT: usize = 64 * 1024;

pub async fn serve<S>(srv: Arc<Shared>, mut stream: S, handle: Arc<ClientHandle>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    let mut reply = Reply::new(false);
    let mut client = ClientState::new(handle.clone());
    client.authenticated = srv.config.read().requirepass.is_empty();
    let mut ranges = Vec::with_capacity(8);
    let mut shutdown = srv.shutdown.subscribe();
    // Whether replies pending in `reply` followed a write (see `flush`).
    let mut wrote = false;
    let mut durable: Option<tokio::sync::watch::Receiver<basalt_aof::Lsn>> = None;
    // Input read while a command was blocked is already in `rbuf`: run it
    // before waiting on the socket again.
    let mut stashed = false;
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
        let idle = async {
            if timeout > 0 {
                tokio::time::sleep(Duration::from_secs(timeout)).await
            } else {
                std::future::pending::<()>().await
            }
        };
        // A subscriber is also woken by messages pushed to its queue.
        let sub = client.sub.clone();
        let pushed = async {
            match &sub {
                Some(s) => s.wake.notified().await,
                None => std::future::pending::<()>().await,
            }
        };
        // Input read while a command was blocked is already in `rbuf`: run
        // it before waiting on the socket again.
        if !std::mem::take(&mut stashed) {
            tokio::select! {
                r = stream.read_buf(&mut rbuf) => match r {
                    Ok(0) | Err(_) => break 'conn,
                    Ok(n) => { srv.stats.net_input_bytes.fetch_add(n as u64, Relaxed); }
                },
                _ = pushed => {
                    if let Some(s) = &sub {
                        s.drain_into(&mut reply.buf);
                    }
                    if handle.killed.load(Relaxed) || flush_unless_killed(&srv, &handle, &mut stream, &mut reply, &mut wrote, &mut durable).await.is_err() {
                        break 'conn;
                    }
                    continue 'conn;
                }
                _ = handle.kill.notified() => break 'conn,
                _ = shutdown.changed() => break 'conn,
                _ = idle => break 'conn,
            }
        }
        if handle.killed.load(Relaxed) {
            break;
        }
        let mut pos = 0;
        let mut close = false;
        let now_ms = unix_ms();
        handle.last_active_ms.store(now_ms, Relaxed);
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
                        wrote |= run_one(&srv, &mut client, &mut reply, &argv, unix_ms()).await;
                        consumed
                    }
                    Parsed::Owned { consumed, args } => {
                        let v: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
                        wrote |= run_one(&srv, &mut client, &mut reply, &v, unix_ms()).await;
                        consumed
                    }
                };
                pos += consumed;
                if let Some(b) = client.pending_block.take() {
                    // A blocked pop: send what is pending first (as Redis
                    // does before blocking), then wait for it to be served.
                    if flush(&srv, &mut stream, &mut reply, &mut wrote, &mut durable)
                        .await
                        .is_err()
                    {
                        break 'conn;
                    }
                    let (before, mode) = (reply.len(), client.reply_mode);
                    crate::blocking::wait(&srv, &mut client, b, &mut reply, unix_ms(), &mut stream)
                        .await;
                    apply_reply_mode(&mut client, &mut reply, before, mode);
                    if client.peer_closed {
                        break 'conn;
                    }
                }
                if client.close_after_reply {
                    close = true;
                    break;
                }
                if reply.len() >= FLUSH_AT
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
            }
        }
        rbuf.advance(pos);
        // Bytes that arrived while a command was blocked come after the
        // rest of the batch.
        if !client.stash.is_empty() {
            rbuf.extend_from_slice(&std::mem::take(&mut client.stash));
            stashed = true;
        }
        if client.peer_closed {
            break;
        }
        handle.qbuf.store(rbuf.len() as u64, Relaxed);
        if rbuf.len() > qlimit {
            tracing::warn!(client = handle.id, addr = %handle.addr, "closing client that reached max query buffer length");
            break;
        }
        if let Some(s) = &client.sub {
            s.drain_into(&mut reply.buf);
        }
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
    }
    crate::commands::multi::clear(&srv, &mut client);
    crate::commands::pubsub::unsubscribe_all(&srv, &mut client);
    let _ = stream.shutdown().await;
    srv.clients.unregister(handle.id);
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
    if let Some(w) = client.pending_waitaof.take() {
        let before = reply.len();
        waitaof(srv, w, reply).await;
        apply_reply_mode(client, reply, before, mode_before);
    } else if client.pending_block.is_some() {
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
/// for 0, as Redis would with none connected) and reports 0.
async fn waitaof(srv: &Shared, w: crate::client::WaitAof, reply: &mut Reply) {
    let deadline = (w.timeout_ms > 0)
        .then(|| tokio::time::Instant::now() + Duration::from_millis(w.timeout_ms));
    let mut local = 0;
    if let Some(log) = srv.log.get() {
        let target = log.appended();
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
        local = (log.durable() >= target) as i64;
    }
    if w.numreplicas > 0 {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending::<()>().await,
        }
    }
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
    if let Some(log) = srv.log.get() {
        if srv.fsync_always.load(Relaxed) && (*wrote || srv.log_ok.load(Relaxed)) {
            let target = log.appended();
            if log.durable() < target {
                // Let every other client that is ready run first (tokio
                // defers a yielded task until its worker has nothing else
                // to do and has polled for new input), so that one write and
                // fsync cover all of their records; then commit here, on
                // this thread, unless someone else already is.
                tokio::task::yield_now().await;
                if log.commit_inline(target) {
                    return write_replies(srv, stream, reply, wrote).await;
                }
                let rx = durable.get_or_insert_with(|| log.subscribe());
                if rx.wait_for(|d| *d >= target).await.is_err() {
                    return Err(std::io::Error::other("log closed"));
                }
            }
        }
    }
    write_replies(srv, stream, reply, wrote).await
}

async fn write_replies<S: AsyncWrite + Unpin>(
    srv: &Shared,
    stream: &mut S,
    reply: &mut Reply,
    wrote: &mut bool,
) -> std::io::Result<()> {
    *wrote = false;
    stream.write_all(&reply.buf).await?;
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
    tokio::select! {
        r = flush(srv, stream, reply, wrote, durable) => r,
        _ = handle.kill.notified() => Err(std::io::Error::other("client killed")),
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
                .map_or(false, |e| e.spec.flags & flags::WRITE != 0);
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
