//! Snapshot transfers over the replication protocol: `SYNC` / `PSYNC`
//! from a client that asked for the RDB only (`REPLCONF rdb-only 1`, as
//! `redis-cli --rdb` and `basalt-rdb export --from` send), so that a
//! running Basalt hands out a dump real Redis loads.
//!
//! The dump is a forkless snapshot (`snapshot.rs`, the same one BGSAVE
//! takes, at its low priority; with the log off it goes to a file of its
//! own, so the snapshot loaded at start stays the last save's, as with
//! Redis's diskless transfers), rewritten as RDB 10 into a temporary file
//! beside it one unit at a time (memory stays at one chunk), then sent as
//! Redis sends a disk-based transfer: `$<length>\r\n` and the bytes. While
//! the dump is being made, a newline goes out every second (Redis's
//! keep-alive for replicas waiting on BGSAVE; readers skip it). After the
//! transfer the connection is closed, as Redis closes an rdb-only
//! replica. `REPLCONF rdb-filter-only ""` or `functions` asks for no keys:
//! Basalt has no functions, so that dump is empty.
//!
//! Streaming the replication feed to a real replica afterwards is not
//! done: a SYNC/PSYNC without `rdb-only` is refused with an error that
//! says so (see `commands::replication`).

use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::client::ClientHandle;
use crate::shared::{unix_ms, Shared, ShutdownKind};

/// What SYNC/PSYNC asked for (set on the client; the connection runs it).
#[derive(Clone, Copy, Debug)]
pub struct SyncRequest {
    /// PSYNC (answered `+FULLRESYNC <replid> <offset>` first) or SYNC.
    pub psync: bool,
    /// `REPLCONF rdb-filter-only`: no keys in the dump.
    pub exclude_data: bool,
}

/// Interval of the keep-alive newlines while the dump is made.
const KEEPALIVE: Duration = Duration::from_secs(1);
/// Bytes read from the dump file per socket write.
const SEND_CHUNK: usize = 256 << 10;

/// Serves a full synchronisation to `stream`: the FULLRESYNC line (PSYNC),
/// keep-alive newlines, then the dump, or `-ERR ...` if it could not be
/// made. Ends early (the caller closes the connection either way) when
/// the client is killed or the server shuts down; the temporary file is
/// removed in every case.
pub async fn transfer<S: AsyncWrite + Unpin>(
    srv: &Arc<Shared>,
    handle: &ClientHandle,
    stream: &mut S,
    req: SyncRequest,
    shutdown: &mut tokio::sync::watch::Receiver<Option<ShutdownKind>>,
) -> std::io::Result<()> {
    tokio::select! {
        r = serve(srv, handle, stream, req) => r,
        _ = handle.kill.notified() => Ok(()),
        _ = shutdown.changed() => Ok(()),
    }
}

/// A dump file, removed when dropped (sent, failed or abandoned).
struct Dump(PathBuf);

impl Drop for Dump {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        LIVE.lock().retain(|p| p != &self.0);
    }
}

/// The dump files that exist (or are about to), and whether the server
/// has stopped handing out new ones: the process exits without waiting
/// for a dump thread, so [`remove_dumps`] removes what they left.
static LIVE: parking_lot::Mutex<Vec<PathBuf>> = parking_lot::Mutex::new(Vec::new());
static CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Called once at exit: removes every dump file still there and makes
/// any later `make_dump` fail before it creates one.
pub fn remove_dumps() {
    let mut live = LIVE.lock();
    CLOSED.store(true, Relaxed);
    for p in live.drain(..) {
        let _ = std::fs::remove_file(p);
    }
}

async fn serve<S: AsyncWrite + Unpin>(
    srv: &Arc<Shared>,
    handle: &ClientHandle,
    stream: &mut S,
    req: SyncRequest,
) -> std::io::Result<()> {
    if req.psync {
        let line = format!("+FULLRESYNC {} 0\r\n", srv.run_id);
        stream.write_all(line.as_bytes()).await?;
        stream.flush().await?;
    }
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    let s2 = srv.clone();
    let spawned = std::thread::Builder::new()
        .name("basalt-sync".into())
        .spawn(move || {
            // If the client has gone, the file goes with the returned value.
            let _ = tx.send(make_dump(&s2, req.exclude_data));
        });
    if let Err(e) = spawned {
        return reply_error(stream, &format!("cannot start the dump thread: {e}")).await;
    }
    let made = loop {
        tokio::select! {
            r = &mut rx => break r,
            _ = tokio::time::sleep(KEEPALIVE) => {
                stream.write_all(b"\n").await?;
                stream.flush().await?;
            }
        }
    };
    let (dump, len) = match made {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return reply_error(stream, &e).await,
        Err(_) => return reply_error(stream, "the dump thread stopped").await,
    };
    send_file(stream, &dump.0, len).await?;
    srv.stats.sync_full.fetch_add(1, Relaxed);
    tracing::info!(client = handle.id, addr = %handle.addr, bytes = len, "snapshot transfer done");
    Ok(())
}

async fn reply_error<S: AsyncWrite + Unpin>(stream: &mut S, e: &str) -> std::io::Result<()> {
    tracing::warn!("snapshot transfer failed: {e}");
    let e = e
        .strip_prefix("ERR ")
        .unwrap_or(e)
        .replace(['\r', '\n'], " ");
    stream.write_all(format!("-ERR {e}\r\n").as_bytes()).await?;
    stream.flush().await
}

async fn send_file<S: AsyncWrite + Unpin>(
    stream: &mut S,
    path: &std::path::Path,
    len: u64,
) -> std::io::Result<()> {
    let mut f = std::fs::File::open(path)?;
    stream.write_all(format!("${len}\r\n").as_bytes()).await?;
    let mut left = len;
    let mut buf = vec![0u8; SEND_CHUNK];
    while left > 0 {
        let want = (left as usize).min(SEND_CHUNK);
        // Reads go to the blocking pool: the file may not be cached.
        let (r, f2, b2) = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let r = f.read(&mut buf[..want]);
            (r, f, buf)
        })
        .await
        .map_err(std::io::Error::other)?;
        (f, buf) = (f2, b2);
        let n = r?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the dump file is shorter than announced",
            ));
        }
        stream.write_all(&buf[..n]).await?;
        left -= n as u64;
    }
    stream.flush().await
}

/// Temporary dump files get distinct names.
static NEXT_DUMP: AtomicU64 = AtomicU64::new(0);

/// Makes the dump file (on the calling thread, which it may block for as
/// long as the snapshot takes). Returns it and its length.
fn make_dump(srv: &Arc<Shared>, exclude_data: bool) -> Result<(Dump, u64), String> {
    let dir = crate::snapshot::snapshot_dir(srv);
    let stem = format!(
        "{DUMP_PREFIX}{}-{}",
        std::process::id(),
        NEXT_DUMP.fetch_add(1, Relaxed)
    );
    // With the log off, the snapshot is this transfer's own file (see
    // `run_background_as`), removed when this returns.
    let mut _own = Vec::new();
    let snapshot = if exclude_data {
        None
    } else {
        let private = format!("{stem}.bsnap");
        _own.push(register(srv, dir.join(&private))?);
        _own.push(register(srv, dir.join(format!("{private}.tmp")))?);
        // One snapshot at a time: wait for a running BGSAVE (or another
        // transfer's snapshot) to finish, then take a fresh one.
        // None is started once the server shuts down (it waits for a
        // running one before its final snapshot).
        loop {
            if srv.shutdown.borrow().is_some() {
                return Err("ERR server is shutting down".into());
            }
            if crate::snapshot::try_claim(srv) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let (name, _covered) = crate::snapshot::run_background_as(srv, Some(&private))?;
        Some(dir.join(name))
    };
    let dump = register(srv, dir.join(format!("{stem}.rdb")))?;
    let len = write_rdb(srv, snapshot.as_deref(), &dump.0)?;
    Ok((dump, len))
}

/// Registers a file about to be made, so that it goes at exit whatever
/// the thread making it is doing; the returned guard removes it when
/// dropped. Refused once the server shuts down.
fn register(srv: &Shared, path: PathBuf) -> Result<Dump, String> {
    let mut live = LIVE.lock();
    if CLOSED.load(Relaxed) || srv.shutdown.borrow().is_some() {
        return Err("ERR server is shutting down".into());
    }
    live.push(path.clone());
    Ok(Dump(path))
}

/// Temporary files of transfers are named `temp-sync-<pid>-<n>.*`: the
/// dump (`.rdb`) and, with the log off, its snapshot (`.bsnap`).
pub const DUMP_PREFIX: &str = "temp-sync-";

/// Rewrites the snapshot at `from` (none: no keys) as RDB 10 into `to`,
/// leaving out keys already expired. Returns the file's length.
fn write_rdb(
    srv: &Shared,
    from: Option<&std::path::Path>,
    to: &std::path::Path,
) -> Result<u64, String> {
    let io = |e: std::io::Error| format!("{}: {e}", to.display());
    let rdb = |e: basalt_rdb::Error| format!("{}: {e}", to.display());
    let file = std::fs::File::create(to).map_err(io)?;
    let opts = basalt_rdb::EncodeOptions::default();
    let mut w =
        basalt_rdb::Writer::new(BufWriter::with_capacity(1 << 20, file), opts).map_err(rdb)?;
    let now = unix_ms();
    w.standard_aux(crate::REDIS_VERSION, now / 1000)
        .map_err(rdb)?;
    if let Some(from) = from {
        let lim = srv.config.read().limits;
        crate::snapshot::for_each_entry(from, &lim, |db, key, entry| {
            if entry.expire_at != 0 && entry.expire_at <= now {
                return Ok(());
            }
            let e = basalt_rdb::Entry {
                db: db as u64,
                key: key.to_vec(),
                value: crate::convert::to_rdb(&entry.value),
                expire_ms: (entry.expire_at != 0).then_some(entry.expire_at as i64),
                lru_idle: None,
                lfu_freq: None,
                rdb_type: 0,
            };
            w.entry(&e).map_err(|err| {
                format!(
                    "key {:?} cannot be written as RDB 10: {err}",
                    String::from_utf8_lossy(key)
                )
            })
        })?;
    }
    let f = w.finish().map_err(rdb)?;
    let f = f.into_inner().map_err(|e| io(e.into_error()))?;
    let len = f.metadata().map_err(io)?.len();
    Ok(len)
}
