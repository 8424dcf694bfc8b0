//! Listeners, the accept loop, background cycles and shutdown.

use basalt_storage::dict::Sweep;
use basalt_storage::Value;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, UnixListener};

use crate::config::Config;
use crate::connection;
use crate::shared::{unix_ms, Shared};

/// Parses a `bind` entry into a socket address; a leading '-' marks it
/// optional (failure to bind is not fatal), as in Redis.
fn bind_addr(entry: &str, port: u16) -> (Option<SocketAddr>, bool) {
    let (optional, host) = match entry.strip_prefix('-') {
        Some(h) => (true, h),
        None => (false, entry),
    };
    let host = match host {
        "*" => "0.0.0.0",
        "::*" => "::",
        h => h,
    };
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    (addr.parse().ok(), optional)
}

pub struct Listeners {
    pub tcp: Vec<TcpListener>,
    /// `tls-port` listeners, on the same addresses as the plain ones.
    pub tls: Vec<TcpListener>,
    pub unix: Option<UnixListener>,
}

/// Binds everything the configuration asks for. Errors are fatal and
/// name the address.
pub async fn bind(cfg: &Config) -> Result<Listeners, String> {
    let mut tcp = Vec::new();
    let binds = if cfg.bind.is_empty() {
        vec!["127.0.0.1".to_string()]
    } else {
        cfg.bind.clone()
    };
    let tls_port = cfg
        .get("tls-port")
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(0);
    // `port 0` with a TLS port: TLS only, as in Redis.
    if cfg.port != 0 || tls_port == 0 {
        tcp = bind_port(&binds, cfg.port).await?;
    }
    let tls = if tls_port != 0 {
        bind_port(&binds, tls_port).await?
    } else {
        Vec::new()
    };
    let unix = if cfg.unixsocket.is_empty() {
        None
    } else {
        let _ = std::fs::remove_file(&cfg.unixsocket);
        Some(
            UnixListener::bind(&cfg.unixsocket)
                .map_err(|e| format!("could not bind unix socket {}: {e}", cfg.unixsocket))?,
        )
    };
    Ok(Listeners { tcp, tls, unix })
}

async fn bind_port(binds: &[String], mut port: u16) -> Result<Vec<TcpListener>, String> {
    let mut out = Vec::new();
    for b in binds {
        let (addr, optional) = bind_addr(b, port);
        let Some(addr) = addr else {
            return Err(format!("invalid bind address '{b}'"));
        };
        match TcpListener::bind(addr).await {
            Ok(l) => {
                // `port 0`: every further address uses the port picked first.
                if port == 0 {
                    port = l.local_addr().map(|a| a.port()).unwrap_or(0);
                }
                out.push(l);
            }
            Err(e) if optional => tracing::warn!("could not bind optional address {addr}: {e}"),
            Err(e) => return Err(format!("could not bind {addr}: {e}")),
        }
    }
    Ok(out)
}

/// Socket options for an accepted TCP connection: no Nagle delay, and
/// `tcp-keepalive` probes (idle time = the option, interval a third of
/// it, 3 probes, as Redis's anetKeepAlive).
fn prepare(srv: &Shared, sock: &tokio::net::TcpStream) {
    let _ = sock.set_nodelay(true);
    let secs = srv
        .config
        .read()
        .get("tcp-keepalive")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if secs > 0 {
        set_keepalive(sock, secs);
    }
}

pub fn set_keepalive(sock: &tokio::net::TcpStream, secs: u64) {
    let ka = socket2::TcpKeepalive::new().with_time(Duration::from_secs(secs));
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let ka = ka
        .with_interval(Duration::from_secs((secs / 3).max(1)))
        .with_retries(3);
    if let Err(e) = socket2::SockRef::from(sock).set_tcp_keepalive(&ka) {
        tracing::debug!("cannot set tcp-keepalive: {e}");
    }
}

/// Serves until shutdown is requested (SHUTDOWN, SIGTERM, SIGINT).
pub async fn run(srv: Arc<Shared>, listeners: Listeners) {
    // Install signal handlers before announcing the port, so a SIGTERM
    // right after start is a clean shutdown, not the default kill.
    use tokio::signal::unix::{signal, SignalKind};
    let sigs = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => Some((t, i)),
        _ => None,
    };
    for l in &listeners.tcp {
        if let Ok(a) = l.local_addr() {
            srv.tcp_port.store(a.port() as u64, Relaxed);
            // Tests and scripts read this line to find a `port 0` server.
            println!("basalt-server listening on tcp {a}");
        }
    }
    for l in &listeners.tls {
        if let Ok(a) = l.local_addr() {
            println!("basalt-server listening on tls {a}");
        }
    }
    if let Some(u) = &listeners.unix {
        if let Ok(a) = u.local_addr() {
            println!(
                "basalt-server listening on unix {:?}",
                a.as_pathname().unwrap_or(std::path::Path::new(""))
            );
        }
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();

    let mut tasks = Vec::new();
    for l in listeners.tcp {
        let srv = srv.clone();
        tasks.push(tokio::spawn(async move {
            let mut stop = srv.shutdown.subscribe();
            loop {
                tokio::select! {
                    r = l.accept() => match r {
                        Ok((sock, peer)) => {
                            prepare(&srv, &sock);
                            let local = sock.local_addr().map(|a| a.to_string()).unwrap_or_default();
                            if protected_refuses(&srv, peer.ip()) {
                                on_io_thread(sock, deny_protected);
                                continue;
                            }
                            match admit(&srv, peer.to_string(), local, false) {
                                Some(h) => {
                                    let srv = srv.clone();
                                    on_io_thread(sock, move |s| connection::serve(srv, s, h));
                                }
                                None => on_io_thread(sock, reject),
                            };
                        }
                        Err(e) => {
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    },
                    _ = stop.changed() => break,
                }
            }
        }));
    }
    for l in listeners.tls {
        let srv = srv.clone();
        tasks.push(tokio::spawn(async move {
            let mut stop = srv.shutdown.subscribe();
            loop {
                tokio::select! {
                    r = l.accept() => match r {
                        Ok((sock, peer)) => {
                            prepare(&srv, &sock);
                            let Some(ctx) = srv.tls.read().clone() else { continue };
                            let srv = srv.clone();
                            on_io_thread(sock, move |s| serve_tls(srv, s, peer, ctx));
                        }
                        Err(e) => {
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    },
                    _ = stop.changed() => break,
                }
            }
        }));
    }
    if let Some(u) = listeners.unix {
        let srv = srv.clone();
        tasks.push(tokio::spawn(async move {
            let mut stop = srv.shutdown.subscribe();
            let path = srv.config.read().unixsocket.clone();
            loop {
                tokio::select! {
                    r = u.accept() => match r {
                        Ok((sock, _)) => {
                            match admit(&srv, format!("{path}:0"), format!("{path}:0"), true) {
                                Some(h) => {
                                    let srv = srv.clone();
                                    on_io_thread(sock, move |s| connection::serve(srv, s, h));
                                }
                                None => on_io_thread(sock, reject),
                            };
                        }
                        Err(e) => {
                            tracing::warn!("unix accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    },
                    _ = stop.changed() => break,
                }
            }
        }));
    }
    tokio::spawn(expire_cycle(srv.clone()));
    tokio::spawn(stats_cycle(srv.clone()));
    tokio::spawn(log_health(srv.clone()));
    tokio::spawn(persistence_cron(srv.clone()));
    if let Some((t, i)) = sigs {
        tokio::spawn(signals(srv.clone(), t, i));
    }

    let mut stop = srv.shutdown.subscribe();
    while stop.borrow().is_none() {
        if stop.changed().await.is_err() {
            break;
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    // Let connections finish the replies they are writing (bounded).
    let deadline = Instant::now() + Duration::from_secs(2);
    while !srv.clients.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let path = srv.config.read().unixsocket.clone();
    if !path.is_empty() {
        let _ = std::fs::remove_file(path);
    }
}

/// The IO threads' runtimes (see [`start_io_threads`]).
static IO_THREADS: std::sync::OnceLock<Vec<tokio::runtime::Handle>> = std::sync::OnceLock::new();
static NEXT_IO: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Starts `n` IO threads, each driving its own single-threaded runtime.
/// Accepted connections are handed to them in turn and stay on their
/// thread, as with Redis's IO threads or a thread-per-core server: a
/// work-stealing runtime woke an idle worker to steal whenever a worker
/// had more than one task ready, and those wakeups (0.25-0.45 context
/// switches per request at `-P 1` with two workers, ~20% of the CPU in
/// the profile) made a small request cost more than on Redis's single
/// thread. Anything woken from another thread (pub/sub, blocked pops, the
/// log's durability) still works: wakers are not tied to a runtime.
pub fn start_io_threads(n: usize, busy_poll: std::time::Duration) -> std::io::Result<()> {
    crate::clock::init();
    let mut handles = Vec::new();
    for i in 0..n.max(1) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        handles.push(rt.handle().clone());
        rt.spawn(collect_freed_memory());
        std::thread::Builder::new()
            .name(format!("basalt-io-{i}"))
            .spawn(move || rt.block_on(poll_after_input(busy_poll)))?;
    }
    let _ = IO_THREADS.set(handles);
    tracing::info!(
        io_threads = n.max(1),
        busy_poll_us = busy_poll.as_micros() as u64,
        "IO threads started"
    );
    Ok(())
}

thread_local! {
    /// Inputs read by connections of this IO thread (see `poll_after_input`).
    static INPUTS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// The poller, when it sleeps until the next input.
    static POLLER: std::cell::Cell<Option<std::task::Waker>> = const { std::cell::Cell::new(None) };
    /// Whether this thread runs a poller (see `hold_wake`).
    static POLLING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Wakes held back until the next quiet round (see `hold_wake`).
    static HELD: std::cell::RefCell<Vec<std::task::Waker>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Held wakes are released after this many rounds in a row without
/// input (one such round is a few microseconds)...
const QUIET_ROUNDS: u32 = 3;
/// ... or after this many rounds with input, or this long, whichever
/// comes first (measured with redis-benchmark -P 16 PUBLISH and one
/// subscriber: releasing after every quiet round cost the subscriber
/// 1.7x Redis's CPU per message; after three quiet rounds, at most 250 us,
/// 1.1x; at most 500 us, 0.9x).
const HOLD_ROUNDS: u32 = 32;
const HOLD_MAX: std::time::Duration = std::time::Duration::from_micros(500);

/// On a polling IO thread, keeps `w` (a subscriber with new messages) to
/// be woken once the scheduler's rounds find no new input, or after
/// `HOLD_ROUNDS` rounds or `HOLD_MAX` (see `poll_after_input`): the subscriber then gets the messages of every
/// publisher of those rounds in one write. Redis writes a subscriber's
/// output once per event-loop iteration, and its iterations are long
/// because each carries many clients; Basalt's rounds are short, and
/// waking a subscriber every round cost it (and the core it shares with
/// the publishers' client) three times the CPU per message that Redis's
/// subscriber needed. Elsewhere, gives `w` back.
pub fn hold_wake(w: std::task::Waker) -> Result<(), std::task::Waker> {
    if !POLLING.with(|p| p.get()) {
        return Err(w);
    }
    HELD.with(|h| h.borrow_mut().push(w));
    // Make sure the poller runs its rounds (and so releases the wake).
    if let Some(p) = POLLER.with(|p| p.take()) {
        p.wake();
    }
    Ok(())
}

fn release_held() {
    let held = HELD.with(|h| std::mem::take(&mut *h.borrow_mut()));
    for w in held {
        w.wake();
    }
}

fn holding() -> bool {
    HELD.with(|h| !h.borrow().is_empty())
}

/// Called by a connection when it has read input (on an IO thread; a
/// no-op elsewhere).
pub fn note_input() {
    INPUTS.with(|a| a.set(a.get().wrapping_add(1)));
    if let Some(w) = POLLER.with(|w| w.take()) {
        w.wake();
    }
}

/// The IO thread's idle loop (see `Config::busy_poll`): after an input,
/// keep this task ready, yielding, until `window` passes with no input.
/// While a task is ready, the runtime polls its sockets without blocking
/// (tokio defers a yielded task until it has polled for I/O), so requests
/// that arrive meanwhile are found without a kernel wake-up. With no input
/// for `window`, the task waits for the next one and the thread may sleep.
async fn poll_after_input(window: std::time::Duration) {
    if window.is_zero() {
        return std::future::pending::<()>().await;
    }
    POLLING.with(|p| p.set(true));
    let inputs = || INPUTS.with(|a| a.get());
    let mut seen = inputs();
    loop {
        std::future::poll_fn(|cx| {
            let now = inputs();
            if now != seen || holding() {
                seen = now;
                std::task::Poll::Ready(())
            } else {
                POLLER.with(|w| w.set(Some(cx.waker().clone())));
                std::task::Poll::Pending
            }
        })
        .await;
        let mut last = std::time::Instant::now();
        let (mut held_rounds, mut quiet) = (0, 0);
        let mut held_since: Option<std::time::Instant> = None;
        loop {
            tokio::task::yield_now().await;
            let now = inputs();
            if now != seen {
                seen = now;
                last = std::time::Instant::now();
                quiet = 0;
                if holding() {
                    held_rounds += 1;
                    let since = *held_since.get_or_insert(last);
                    if held_rounds >= HOLD_ROUNDS || last.duration_since(since) >= HOLD_MAX {
                        (held_rounds, held_since) = (0, None);
                        release_held();
                    }
                }
                continue;
            }
            // A quiet round: everything ready has run.
            quiet += 1;
            if quiet >= QUIET_ROUNDS {
                (held_rounds, held_since) = (0, None);
                release_held();
            }
            if last.elapsed() >= window || crate::snapshot::background_running() {
                release_held();
                break;
            }
        }
    }
}

/// Serves `sock` with `serve` on the next IO thread (round robin), or on
/// the current runtime when no IO threads were started. A socket is tied
/// to the reactor that registered it, so it moves as a std socket and is
/// registered again there.
fn on_io_thread<T, F, Fut>(sock: T, serve: F)
where
    T: IoSocket,
    F: FnOnce(T) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(handles) = IO_THREADS.get().filter(|h| !h.is_empty()) else {
        tokio::spawn(serve(sock));
        return;
    };
    let handle = &handles[NEXT_IO.fetch_add(1, Relaxed) % handles.len()];
    match sock.into_std_socket() {
        Ok(std_sock) => {
            handle.spawn(async move {
                match T::from_std_socket(std_sock) {
                    Ok(sock) => serve(sock).await,
                    Err(e) => tracing::warn!("cannot register a connection: {e}"),
                }
            });
        }
        Err(e) => tracing::warn!("cannot hand a connection to an IO thread: {e}"),
    }
}

/// A tokio socket that can move between runtimes.
trait IoSocket: Sized + Send + 'static {
    type Std: Send + 'static;
    fn into_std_socket(self) -> std::io::Result<Self::Std>;
    fn from_std_socket(s: Self::Std) -> std::io::Result<Self>;
}

impl IoSocket for tokio::net::TcpStream {
    type Std = std::net::TcpStream;
    fn into_std_socket(self) -> std::io::Result<Self::Std> {
        self.into_std()
    }
    fn from_std_socket(s: Self::Std) -> std::io::Result<Self> {
        tokio::net::TcpStream::from_std(s)
    }
}

#[cfg(unix)]
impl IoSocket for tokio::net::UnixStream {
    type Std = std::os::unix::net::UnixStream;
    fn into_std_socket(self) -> std::io::Result<Self::Std> {
        self.into_std()
    }
    fn from_std_socket(s: Self::Std) -> std::io::Result<Self> {
        tokio::net::UnixStream::from_std(s)
    }
}

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection on `tls-port`: the handshake, then the same batch loop as
/// a plain connection. A client over `maxclients` is told so over TLS.
async fn serve_tls(
    srv: Arc<Shared>,
    sock: tokio::net::TcpStream,
    peer: SocketAddr,
    ctx: Arc<rustls::ServerConfig>,
) {
    let local = sock.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let acceptor = tokio_rustls::TlsAcceptor::from(ctx);
    let mut stop = srv.shutdown.subscribe();
    let stream = tokio::select! {
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(sock)) => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::info!("TLS handshake with {peer} failed: {e}");
                return;
            }
            Err(_) => {
                tracing::info!("TLS handshake with {peer} timed out");
                return;
            }
        },
        _ = stop.changed() => return,
    };
    if protected_refuses(&srv, peer.ip()) {
        return deny_protected(stream).await;
    }
    match admit(&srv, peer.to_string(), local, false) {
        Some(h) => connection::serve(srv, stream, h).await,
        None => reject(stream).await,
    }
}

/// Registers a new client unless `maxclients` are connected (Redis
/// counts a refused one in `rejected_connections` only).
fn admit(
    srv: &Shared,
    addr: String,
    laddr: String,
    unix: bool,
) -> Option<Arc<crate::client::ClientHandle>> {
    let max = srv.config.read().maxclients as usize;
    match srv.clients.try_register(addr, laddr, unix, max) {
        Some(h) => {
            srv.stats.connections.fetch_add(1, Relaxed);
            Some(h)
        }
        None => {
            srv.stats.rejected_connections.fetch_add(1, Relaxed);
            None
        }
    }
}

async fn reject<S: tokio::io::AsyncWrite + Unpin>(mut sock: S) {
    use tokio::io::AsyncWriteExt;
    let _ = sock
        .write_all(b"-ERR max number of clients reached\r\n")
        .await;
    let _ = sock.flush().await;
    let _ = sock.shutdown().await;
}

/// Starts snapshots when due: a scheduled BGSAVE/BGREWRITEAOF, the `save
/// <seconds> <changes>` points, and log growth past
/// `auto-aof-rewrite-percentage` over its size after the last compaction
/// (once above `auto-aof-rewrite-min-size`), as Redis does.
async fn persistence_cron(srv: Arc<Shared>) {
    let mut stop = srv.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = stop.changed() => return,
        }
        if srv.loading.load(Relaxed) || srv.snap.in_progress.load(Relaxed) {
            continue;
        }
        let now = unix_ms() / 1000;
        let last = match srv.snap.last_save_time.load(Relaxed) {
            0 => srv.start_unix_secs,
            t => t,
        };
        let dirty = srv.stats.dirty.load(Relaxed);
        let (points, pct, min_size) = {
            let c = srv.config.read();
            let num = |n: &str| c.get(n).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            (
                c.save_points(),
                num("auto-aof-rewrite-percentage"),
                num("auto-aof-rewrite-min-size"),
            )
        };
        let mut due = srv.snap_scheduled.swap(false, Relaxed);
        // After a failed save, retry no sooner than 5 s (Redis's rule).
        let failed_recently = !srv.snap.last_ok.load(Relaxed)
            && srv.snap.saves.load(Relaxed) + 1 > 1
            && now.saturating_sub(last) < 5;
        if !failed_recently {
            due |= points
                .iter()
                .any(|&(secs, changes)| dirty >= changes && now.saturating_sub(last) >= secs);
        }
        if let (Some(log), true) = (srv.log.get(), pct > 0) {
            let st = log.status();
            let base = st.base_size.max(1);
            if st.current_size >= min_size
                && st.current_size.saturating_sub(base) * 100 / base >= pct
            {
                due = true;
            }
        }
        if due && !crate::commands::persistence::start_background(srv.clone()) {
            srv.snap_scheduled.store(true, Relaxed);
        }
    }
}

/// Mirrors the log's health into flags the command path reads cheaply.
async fn log_health(srv: Arc<Shared>) {
    let mut stop = srv.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            _ = stop.changed() => return,
        }
        if let Some(log) = srv.log.get() {
            let st = log.status();
            if st.last_write_ok != srv.log_ok.load(Relaxed) {
                if st.last_write_ok {
                    tracing::info!("log writes succeed again; accepting writes");
                } else {
                    tracing::error!(
                        "log write failed: {}; refusing writes until it recovers",
                        st.last_error.clone().unwrap_or_default()
                    );
                }
            }
            *srv.log_error.lock() = st.last_error.unwrap_or_default();
            srv.log_ok.store(st.last_write_ok, Relaxed);
        }
    }
}

async fn signals(
    srv: Arc<Shared>,
    mut term: tokio::signal::unix::Signal,
    mut int: tokio::signal::unix::Signal,
) {
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM, shutting down"),
        _ = int.recv() => tracing::info!("received SIGINT, shutting down"),
    }
    srv.shutdown
        .send_replace(Some(crate::shared::ShutdownKind::Default));
}

/// Runs the allocator's collection for this thread about once a second
/// (see `crate::alloc::Collector`).
async fn collect_freed_memory() {
    let mut c = crate::alloc::Collector::default();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        c.tick();
    }
}

/// Samples the totals behind INFO's instantaneous rates every 100 ms.
async fn stats_cycle(srv: Arc<Shared>) {
    let mut stop = srv.shutdown.subscribe();
    // The main thread frees too (active expiry, eviction).
    let (mut collector, mut ticks) = (crate::alloc::Collector::default(), 0u32);
    loop {
        ticks = ticks.wrapping_add(1);
        if ticks % 10 == 0 {
            crate::alloc::check_shrink();
            collector.tick();
        }
        let s = &srv.stats;
        s.instantaneous.sample([
            s.commands.load(Relaxed),
            s.net_input_bytes.load(Relaxed),
            s.net_output_bytes.load(Relaxed),
        ]);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The active expiry cycle: `hz` times a second, sweep shards for keys
/// whose deadline passed, within a CPU budget of about 25% of one core
/// scaled by `active-expire-effort` (Redis's idea; here a resumable sweep
/// per table instead of random sampling, so every expired key is reached).
async fn expire_cycle(srv: Arc<Shared>) {
    let mut shard = 0usize;
    let mut stop = srv.shutdown.subscribe();
    loop {
        let (hz, effort) = {
            let c = srv.config.read();
            (c.hz, c.active_expire_effort)
        };
        let period = Duration::from_millis(1000 / hz.max(1));
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.changed() => return,
        }
        let budget = period.mul_f64(0.25 * (1.0 + (effort - 1) as f64 * 0.1));
        // BCAST invalidations of the keys the last round expired or
        // evicted, and any a connection left behind.
        srv.tracking.flush_bcast(None, &srv.clients);
        crate::evict::evict_clients(&srv);
        // Keep freeing memory while over `maxmemory` between commands
        // (Redis's eviction time proc), within the same budget.
        if srv.evict.maxmemory.load(Relaxed) != 0 && !srv.loading.load(Relaxed) {
            let start = Instant::now();
            while crate::evict::perform(&srv) == crate::evict::Outcome::Running
                && start.elapsed() < budget
            {}
            srv.tracking.flush_bcast(None, &srv.clients);
        }
        // Not while loading (as Redis): the sweep would compete with the
        // loader for shard locks, and deleting keys mid-replay would make
        // the replay depend on the clock.
        if !srv.active_expire_enabled.load(Relaxed) || srv.loading.load(Relaxed) {
            continue;
        }
        let start = Instant::now();
        let n = srv.ks.num_shards();
        let ndb = srv.ks.num_dbs();
        let now = unix_ms();
        let mut visited = 0;
        // Keys with a deadline looked at, and keys expired, in this pass
        // over the shards.
        let (seen, expired) = (std::cell::Cell::new(0usize), std::cell::Cell::new(0usize));
        loop {
            if visited == n {
                // As Redis's cycle repeats while more than 10% of the keys
                // it sampled had expired: another pass while this one
                // found that many (a mass expiry), within the budget.
                // One pass of a few buckets per shard reached about 30k
                // keys a second, and a million keys that expired together
                // took half a minute to go (Redis: a few seconds).
                if seen.get() == 0 || expired.get() * 10 < seen.get() {
                    break;
                }
                visited = 0;
                seen.set(0);
                expired.set(0);
            }
            if start.elapsed() >= budget {
                break;
            }
            let mut g = srv.ks.lock(shard);
            for db in 0..ndb {
                if g.dbs[db].is_empty() {
                    continue;
                }
                // Nothing here can expire: no key has a TTL and no hash
                // field has ever had one. Redis's cycle samples only keys
                // with a TTL, so a keyspace without any costs it nothing;
                // walking every bucket of it cost ~2% of the IO thread at
                // 100k requests/s. A resize under way is still advanced.
                if g.dbs[db].ttl_count() == 0
                    && !basalt_storage::hash::field_ttls_seen()
                    && !g.dbs[db].is_rehashing()
                {
                    continue;
                }
                let cursor = g.expire_cursor[db];
                // Expired keys, and hashes with expired fields (Redis 7.4's
                // active field expiry): (key, expired fields or None for
                // the whole key, the hash emptied).
                type Event = (Vec<u8>, Option<Vec<Vec<u8>>>, bool);
                let events: RefCell<Vec<Event>> = RefCell::default();
                let next = g.dbs[db].sweep_from(
                    cursor,
                    64,
                    |_, e| {
                        // Redis's ratio is over keys with a deadline: keys
                        // without one would dilute a mass expiry below 10%.
                        if e.expire_at != 0 {
                            seen.set(seen.get() + 1);
                        }
                        if e.is_expired(now) {
                            expired.set(expired.get() + 1);
                            Sweep::Remove
                        } else if matches!(&e.value, Value::Hash(h) if h.may_have_expired_fields(now)) {
                            Sweep::Modify
                        } else {
                            Sweep::Keep
                        }
                    },
                    |k, e| {
                        let Value::Hash(h) = &mut e.value else {
                            return false;
                        };
                        let fields = h.purge_expired(now);
                        let emptied = h.is_empty();
                        if !fields.is_empty() {
                            events.borrow_mut().push((k.to_vec(), Some(fields), emptied));
                        }
                        emptied
                    },
                    |k, e| {
                        let emptied = matches!(&e.value, Value::Hash(h) if h.is_empty());
                        if !emptied {
                            events.borrow_mut().push((k.to_vec(), None, true));
                        }
                    },
                );
                g.expire_cursor[db] = next;
                for (k, fields, emptied) in events.into_inner() {
                    srv.stats.dirty.fetch_add(1, Relaxed);
                    srv.watches.touch(db, &k, true);
                    srv.tracking.invalidate(&k, None, &srv.clients);
                    match fields {
                        None => {
                            srv.stats.expired_keys.fetch_add(1, Relaxed);
                            if srv.blocked.blocked() > 0 {
                                // XREADGROUP waits on an expired stream end.
                                crate::blocking::unblock_deleted_stream(&srv, db, &k);
                            }
                            crate::notify::notify(&srv, db, crate::notify::EXPIRED, b"expired", &k);
                            srv.log_command(db, &[b"DEL", &k]);
                        }
                        Some(fields) => {
                            // Replaying the HDEL also removes an emptied hash.
                            let mut rec: Vec<&[u8]> = vec![b"HDEL", &k];
                            rec.extend(fields.iter().map(|f| f.as_slice()));
                            srv.log_command(db, &rec);
                            crate::notify::notify(&srv, db, crate::notify::HASH, b"hexpired", &k);
                            if emptied {
                                crate::notify::notify(&srv, db, crate::notify::GENERIC, b"del", &k);
                            }
                        }
                    }
                }
            }
            drop(g);
            shard = (shard + 1) % n;
            visited += 1;
        }
        srv.tracking.flush_bcast(None, &srv.clients);
    }
}

/// Protected mode: no password for the default user and a peer that is
/// not on the loopback interface.
fn protected_refuses(srv: &Shared, peer: std::net::IpAddr) -> bool {
    let on = srv.config.read().get("protected-mode") == Some("yes");
    on && crate::acl::protected_refuses(on, srv.acl.default_user().rules().nopass, Some(peer))
}

/// Sends Redis's protected-mode explanation and closes.
async fn deny_protected<S: tokio::io::AsyncWrite + Unpin>(mut sock: S) {
    use tokio::io::AsyncWriteExt;
    let _ = sock
        .write_all(crate::acl::PROTECTED_MODE_ERROR.as_bytes())
        .await;
    let _ = sock.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The accept loop's protected-mode decision against real server
    /// state (the socket side only writes PROTECTED_MODE_ERROR).
    #[test]
    fn protected_mode_follows_password_and_config() {
        let srv = Shared::new(Config::default());
        let outside: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        let lo: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        assert!(protected_refuses(&srv, outside));
        assert!(!protected_refuses(&srv, lo));
        srv.acl.set_requirepass(b"pw");
        assert!(!protected_refuses(&srv, outside));
        srv.acl.set_requirepass(b"");
        assert!(protected_refuses(&srv, outside));
        srv.config.write().set("protected-mode", "no").unwrap();
        assert!(!protected_refuses(&srv, outside));
    }
}
