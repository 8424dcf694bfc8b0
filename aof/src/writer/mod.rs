//! The writer: many threads append, one flusher thread writes and fsyncs.
//!
//! ```text
//!  append() ──► pending buffer ──(flusher takes it whole)──► carry ──write──► file ──fdatasync──► durable
//!  (any thread,   (Mutex, memcpy only)                        (bytes not yet      (one write and one
//!   no syscall)                                                written)             fsync per batch)
//! ```
//!
//! Group commit falls out of the shape: while the flusher is inside
//! `fdatasync`, appends keep landing in the pending buffer, and the next
//! batch takes all of them at once. The slower the disk, the larger the
//! batches, so throughput degrades far less than latency does. On a disk
//! whose fsync takes a millisecond or more the flusher lingers briefly
//! before each batch so that all waiting clients share one fsync (see
//! `Inner::linger` in `flusher.rs`).
//!
//! Locks: `pending` is held only to copy bytes in or swap the buffer out.
//! `io` is held by the flusher for a whole write + fsync (and briefly by
//! `install_snapshot` to switch the manifest); appenders never take it.
//! Order: `io` then `pending`. Rotations are queued positions in `pending`
//! and carried out by the flusher, so cutting the log costs no I/O.
//!
//! Failure: a failed write or fsync never advances the durable position.
//! The log records the error (see [`Status`]) and the flusher retries every
//! `retry_interval`. Writes are positional, so a torn or short write is
//! simply written again at the same offset: nothing is duplicated or
//! reordered. After a failed fsync the kernel may have dropped the dirty
//! pages, so every byte written since the last good fsync is written again
//! from memory before the next fsync is trusted.

use crate::error::{Error, IoContext, Result};
use crate::format::{
    segment_file_name, Lsn, SegmentHeader, MAX_RECORD_LEN, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use crate::fs::{File, Fs};
use crate::manifest::{write_manifest, Manifest, SegmentEntry, SnapshotRef};
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::watch;

mod flusher;

pub use crate::options::{FsyncPolicy, Options, RecoveryMode};
pub use crate::status::Status;
use crate::status::{Counters, Health};

/// What [`Log::install_snapshot`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallReport {
    /// The snapshot the manifest named before (the caller may delete it).
    pub previous_snapshot: Option<SnapshotRef>,
    /// Segment files deleted because the snapshot covers them entirely.
    pub removed_segments: Vec<PathBuf>,
}

struct Pending {
    buf: Vec<u8>,
    /// Position after the last appended record.
    end: u64,
    records: u64,
    shutdown: bool,
    sync_requested: bool,
    /// Positions where a new segment must start (from `begin_rotate`).
    rotations: VecDeque<u64>,
    /// Inline commit: the flusher sleeps without a timeout and the next
    /// append must wake it.
    flusher_idle: bool,
}

struct Io {
    manifest: Manifest,
    file: Box<dyn File>,
    path: PathBuf,
    seg_start: u64,
    /// File offset where the next byte goes.
    write_off: u64,
    /// File bytes below this offset are durable.
    synced_off: u64,
    /// The file is zero-filled up to here (see `Inner::zero_fill`).
    alloc_off: u64,
    /// The bytes in `[synced_off, write_off)`, when kept (not under `No`).
    unsynced: Vec<u8>,
    unsynced_records: u64,
    /// Bytes taken from `pending` but not yet written.
    carry: Vec<u8>,
    carry_records: u64,
    /// Rotations taken from `pending`, not done yet.
    rotations: VecDeque<u64>,
    /// Total size of the segments before the active one.
    sealed_size: u64,
}

impl Io {
    fn lsn(&self, off: u64) -> u64 {
        self.seg_start + off - SEGMENT_HEADER_LEN as u64
    }
}

struct Inner {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    opts: Options,
    epoch: Instant,
    pending: Mutex<Pending>,
    wake: Condvar,
    io: Mutex<Io>,
    written: AtomicU64,
    /// Capacity of the flusher's buffers after its last round (memory
    /// the server does not count against `maxmemory`).
    io_buf_bytes: AtomicU64,
    durable: AtomicU64,
    /// Start position of the active segment.
    active_start: AtomicU64,
    /// The fsync policy (0 always, 1 everysec, 2 no); changeable at run time.
    policy: AtomicU8,
    durable_lock: Mutex<()>,
    durable_cv: Condvar,
    durable_tx: watch::Sender<Lsn>,
    /// Nanoseconds since `epoch` of the last successful fsync.
    last_sync_ns: AtomicU64,
    /// Moving average of fsync time (µs) and the last batch size, for the
    /// slow-disk linger (see `flusher.rs`).
    fsync_avg_us: AtomicU64,
    last_batch: AtomicU64,
    in_error: AtomicBool,
    syncing: AtomicBool,
    health: Mutex<Health>,
    counters: Counters,
}

/// An open log, ready for appends. Share it between threads in an `Arc`.
///
/// Dropping it (or [`Log::close`]) writes and fsyncs what is buffered and
/// stops the flusher thread.
pub struct Log {
    inner: Arc<Inner>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

fn policy_code(p: FsyncPolicy) -> u8 {
    match p {
        FsyncPolicy::Always => 0,
        FsyncPolicy::EverySec => 1,
        FsyncPolicy::No => 2,
    }
}

/// Creates segment `seq` starting at `start`: header written and fsynced,
/// directory fsynced.
pub(crate) fn create_segment(
    fs: &dyn Fs,
    dir: &Path,
    seq: u64,
    start: Lsn,
) -> Result<(Box<dyn File>, PathBuf)> {
    let path = dir.join(segment_file_name(seq));
    let mut f = fs.create(&path).ctx("create", &path)?;
    f.write_all_at(0, &SegmentHeader { seq, start }.encode())
        .ctx("write", &path)?;
    f.sync_data().ctx("sync", &path)?;
    fs.sync_dir(dir).ctx("sync directory", dir)?;
    Ok((f, path))
}

/// Where recovery left the log: what [`Log::start`] continues from.
pub(crate) struct Tail {
    pub manifest: Manifest,
    pub file: Box<dyn File>,
    pub path: PathBuf,
    pub seg_start: Lsn,
    /// Valid end of the active segment (a file offset).
    pub end_off: u64,
    pub sealed_size: u64,
}

impl Log {
    /// Starts the writer at the end recovery found. The active segment is
    /// fsynced once first, so that bytes a crashed process left in the page
    /// cache are durable before they are reported durable.
    pub(crate) fn start(dir: &Path, opts: Options, tail: Tail) -> Result<Log> {
        let Tail {
            manifest,
            mut file,
            path,
            seg_start,
            end_off,
            sealed_size,
        } = tail;
        file.set_len(end_off).ctx("truncate", &path)?;
        file.sync_data().ctx("sync", &path)?;
        let end = seg_start.0 + end_off - SEGMENT_HEADER_LEN as u64;
        let (durable_tx, _) = watch::channel(Lsn(end));
        let counters = Counters::default();
        counters
            .current_size
            .store(sealed_size + end_off, Ordering::Relaxed);
        counters
            .base_size
            .store(sealed_size + end_off, Ordering::Relaxed);
        counters
            .segments
            .store(manifest.segments.len() as u64, Ordering::Relaxed);
        let inner = Arc::new(Inner {
            fs: opts.fs.clone(),
            dir: dir.to_path_buf(),
            epoch: Instant::now(),
            pending: Mutex::new(Pending {
                buf: Vec::new(),
                end,
                records: 0,
                shutdown: false,
                sync_requested: false,
                rotations: VecDeque::new(),
                flusher_idle: false,
            }),
            wake: Condvar::new(),
            io: Mutex::new(Io {
                manifest,
                file,
                path,
                seg_start: seg_start.0,
                write_off: end_off,
                synced_off: end_off,
                alloc_off: end_off,
                unsynced: Vec::new(),
                unsynced_records: 0,
                carry: Vec::new(),
                carry_records: 0,
                rotations: VecDeque::new(),
                sealed_size,
            }),
            written: AtomicU64::new(end),
            io_buf_bytes: AtomicU64::new(0),
            durable: AtomicU64::new(end),
            active_start: AtomicU64::new(seg_start.0),
            policy: AtomicU8::new(policy_code(opts.fsync)),
            durable_lock: Mutex::new(()),
            durable_cv: Condvar::new(),
            durable_tx,
            last_sync_ns: AtomicU64::new(0),
            fsync_avg_us: AtomicU64::new(0),
            last_batch: AtomicU64::new(0),
            in_error: AtomicBool::new(false),
            syncing: AtomicBool::new(false),
            health: Mutex::new(Health::default()),
            counters,
            opts,
        });
        let worker = inner.clone();
        let handle = std::thread::Builder::new()
            .name("basalt-aof-flush".into())
            .spawn(move || worker.run())
            .map_err(|e| Error::Io {
                op: "spawn flusher thread for",
                path: dir.to_path_buf(),
                source: e,
            })?;
        Ok(Log {
            inner,
            flusher: Mutex::new(Some(handle)),
        })
    }

    /// Appends one record and returns its position (the position just after
    /// it). Only copies the framed record into memory: no system call, and
    /// it never waits for a write or fsync in flight. The record is durable
    /// once [`Log::durable`] reaches the returned position.
    pub fn append(&self, payload: &[u8]) -> Result<Lsn> {
        self.append_parts(&[payload])
    }

    /// Appends one record whose payload is the concatenation of `parts`
    /// (e.g. a RESP array header and its arguments), without the caller
    /// building it in one buffer first. Same guarantees as [`Log::append`].
    pub fn append_parts(&self, parts: &[&[u8]]) -> Result<Lsn> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total > MAX_RECORD_LEN as usize {
            return Err(Error::RecordTooLarge { len: total });
        }
        let len = total as u32;
        let mut h = crc32fast::Hasher::new();
        h.update(&len.to_le_bytes());
        for part in parts {
            h.update(part);
        }
        let crc = h.finalize();
        let lsn = {
            let mut p = self.inner.pending.lock();
            if p.shutdown {
                return Err(Error::Closed);
            }
            p.buf.reserve(RECORD_HEADER_LEN + total);
            p.buf.extend_from_slice(&len.to_le_bytes());
            p.buf.extend_from_slice(&crc.to_le_bytes());
            for part in parts {
                p.buf.extend_from_slice(part);
            }
            p.end += (RECORD_HEADER_LEN + total) as u64;
            p.records += 1;
            // Inline commit: whoever waits for this record commits it; under
            // everysec/no nobody waits for it. Either way the flusher polls,
            // and is only woken out of an idle sleep.
            if self.inner.flusher_polls() && !p.flusher_idle {
                return Ok(Lsn(p.end));
            }
            p.flusher_idle = false;
            p.end
        };
        self.inner.wake.notify_one();
        Ok(Lsn(lsn))
    }

    /// Makes `lsn` durable on the calling thread if it can do so at once:
    /// under `Always`, with inline commit on and a fast disk (fsync under
    /// 1 ms on average), it takes the pending batch — every record appended
    /// by any thread so far — writes it and fsyncs it here (after the write
    /// another thread may have in flight, which often covers `lsn` already).
    /// Otherwise (slow disk, failing disk, inline commit off) it asks the
    /// flusher thread. Returns whether `lsn` is durable; if not, wait for it
    /// as usual ([`Log::subscribe`]).
    ///
    /// This is group commit without a hand-off: a server calls it once it
    /// has run every request that was ready, so one write and one fsync
    /// cover them all, and no other thread has to be scheduled in between
    /// (on a busy core that switch costs more than a fast fsync).
    pub fn commit_inline(&self, lsn: Lsn) -> bool {
        let i = &*self.inner;
        if self.durable() >= lsn {
            return true;
        }
        if !i.inline_active() || i.in_error.load(Ordering::Acquire) {
            self.request_sync();
            return false;
        }
        // Another thread may be writing: on a fast disk, waiting for its
        // fsync (well under a millisecond) and then committing what is left
        // costs less than waking the flusher thread to do it.
        let mut io = i.io.lock();
        if self.durable() >= lsn {
            return true;
        }
        if let Err(e) = i.flush(&mut io, false) {
            i.record_error(&e);
            drop(io);
            self.request_sync(); // the flusher retries
            return false;
        }
        drop(io);
        self.durable() >= lsn
    }

    /// Position after the last appended record.
    pub fn appended(&self) -> Lsn {
        Lsn(self.inner.pending.lock().end)
    }

    /// Position up to which records have been written to the file (the
    /// bytes between this and [`Log::appended`] are buffered in memory).
    pub fn written(&self) -> Lsn {
        Lsn(self.inner.written.load(Ordering::Acquire))
    }

    /// Bytes allocated for records on their way to the file: the pending
    /// buffer and the flusher's buffers, by capacity (Redis's AOF buffer
    /// memory, which it does not count against `maxmemory`).
    pub fn buffer_bytes(&self) -> u64 {
        let p = self.inner.pending.lock();
        p.buf.capacity() as u64 + self.inner.io_buf_bytes.load(Ordering::Relaxed)
    }

    /// Position up to which records are durable.
    pub fn durable(&self) -> Lsn {
        Lsn(self.inner.durable.load(Ordering::Acquire))
    }

    /// A receiver that sees every new durable position: `await`
    /// `rx.wait_for(|d| *d >= lsn)` in async code (no runtime needed here).
    pub fn subscribe(&self) -> watch::Receiver<Lsn> {
        self.inner.durable_tx.subscribe()
    }

    /// Blocks until `lsn` is durable or `timeout` passes; returns whether it
    /// is durable. Under `No` nothing becomes durable by itself: call
    /// [`Log::request_sync`] first.
    pub fn wait_durable(&self, lsn: Lsn, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.inner.durable_lock.lock();
        loop {
            if self.durable() >= lsn {
                return true;
            }
            if self
                .inner
                .durable_cv
                .wait_until(&mut g, deadline)
                .timed_out()
            {
                return self.durable() >= lsn;
            }
        }
    }

    /// Changes the fsync policy at run time (`CONFIG SET appendfsync`).
    /// Leaving `No` or `EverySec` for `Always` fsyncs what is pending at once.
    pub fn set_policy(&self, policy: FsyncPolicy) {
        self.inner
            .policy
            .store(policy_code(policy), Ordering::Relaxed);
        self.request_sync();
    }

    /// Asks the flusher to fsync as soon as it can, whatever the policy
    /// (for `WAITAOF` under `everysec`/`no`).
    pub fn request_sync(&self) {
        self.inner.pending.lock().sync_requested = true;
        self.inner.wake.notify_one();
    }

    /// Health and counters.
    pub fn status(&self) -> Status {
        let i = &self.inner;
        let c = &i.counters;
        let health = i.health.lock();
        let fsyncs = c.fsyncs.load(Ordering::Relaxed);
        let records_synced = c.records_synced.load(Ordering::Relaxed);
        Status {
            policy: i.policy(),
            last_write_ok: health.error.is_none(),
            last_error: health.error.clone(),
            error_since: health.since,
            failures: c.failures.load(Ordering::Relaxed),
            appended: self.appended(),
            written: Lsn(i.written.load(Ordering::Acquire)),
            durable: self.durable(),
            fsyncs,
            records_synced,
            records_per_fsync: if fsyncs == 0 {
                0.0
            } else {
                records_synced as f64 / fsyncs as f64
            },
            max_records_per_fsync: c.max_batch.load(Ordering::Relaxed),
            fsync_micros_total: c.fsync_micros.load(Ordering::Relaxed),
            fsync_micros_max: c.fsync_micros_max.load(Ordering::Relaxed),
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
            current_size: c.current_size.load(Ordering::Relaxed),
            base_size: c.base_size.load(Ordering::Relaxed),
            fsync_in_progress: i.syncing.load(Ordering::Relaxed),
            segments: c.segments.load(Ordering::Relaxed) as usize,
        }
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Asks for a new segment to start at the current end of the log and
    /// returns that position: every record appended before this call is at
    /// or below it, every record appended after is above. Cheap (no I/O, no
    /// waiting), so the server can call it while holding its shard locks to
    /// cut a snapshot. The flusher thread seals the old segment (writes,
    /// truncates and fsyncs it), creates the new one and updates the manifest.
    pub fn begin_rotate(&self) -> Result<Lsn> {
        let b = {
            let mut p = self.inner.pending.lock();
            if p.shutdown {
                return Err(Error::Closed);
            }
            let b = p.end;
            if p.rotations.back() != Some(&b) {
                p.rotations.push_back(b);
            }
            b
        };
        self.inner.wake.notify_one();
        Ok(Lsn(b))
    }

    /// [`Log::begin_rotate`], then waits until the new segment is in place
    /// (at most `timeout`). On a disk error it returns the error; the
    /// rotation stays queued and is retried with the writes.
    pub fn rotate(&self, timeout: Duration) -> Result<Lsn> {
        let b = self.begin_rotate()?;
        let deadline = Instant::now() + timeout;
        let inner = &*self.inner;
        let mut g = inner.durable_lock.lock();
        loop {
            if inner.active_start.load(Ordering::Acquire) >= b.0 {
                return Ok(b);
            }
            if let Some(e) = inner.health.lock().error.clone() {
                return Err(Error::Io {
                    op: "rotate",
                    path: inner.dir.clone(),
                    source: std::io::Error::other(e),
                });
            }
            if inner.durable_cv.wait_until(&mut g, deadline).timed_out() {
                return Err(Error::Io {
                    op: "rotate",
                    path: inner.dir.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "rotation not done in time",
                    ),
                });
            }
        }
    }

    /// Records in the manifest that snapshot `name` holds the effect of every
    /// record up to `covered`, then deletes the segments it makes useless.
    /// The switch is atomic: after a crash the manifest names either the old
    /// state or the new one. The snapshot file must already be durable.
    pub fn install_snapshot(&self, name: &str, covered: Lsn) -> Result<InstallReport> {
        let inner = &*self.inner;
        let mut io = inner.io.lock();
        let end = Lsn(inner.pending.lock().end);
        if covered > end {
            return Err(Error::SnapshotBeyondLog { covered, end });
        }
        if name.is_empty() || name.contains(['\n', '\r']) {
            return Err(Error::InvalidSnapshotName {
                name: name.to_owned(),
            });
        }
        let first = io.manifest.segments.first().map_or(Lsn(0), |s| s.start);
        if covered < first {
            return Err(Error::SnapshotTooOld { covered, first });
        }
        let segs = &io.manifest.segments;
        // A segment can go when the next one starts at or below `covered`.
        let drop_count = segs
            .windows(2)
            .take_while(|w| matches!(w, [_, next] if next.start <= covered))
            .count();
        let mut manifest = io.manifest.clone();
        let dropped: Vec<SegmentEntry> = manifest.segments.drain(..drop_count).collect();
        let previous_snapshot = manifest.snapshot.replace(SnapshotRef {
            name: name.to_owned(),
            covered,
        });
        write_manifest(&*inner.fs, &inner.dir, &manifest)?;
        io.manifest = manifest;
        let mut removed = Vec::new();
        for seg in dropped {
            let path = inner.dir.join(seg.file_name());
            let size = inner.fs.open(&path).and_then(|f| f.len()).unwrap_or(0);
            match inner.fs.remove(&path) {
                Ok(()) => {
                    io.sealed_size = io.sealed_size.saturating_sub(size);
                    removed.push(path);
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove old log segment")
                }
            }
        }
        if !removed.is_empty() {
            inner
                .fs
                .sync_dir(&inner.dir)
                .ctx("sync directory", &inner.dir)?;
        }
        inner.update_size(&io);
        inner.counters.base_size.store(
            inner.counters.current_size.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        Ok(InstallReport {
            previous_snapshot,
            removed_segments: removed,
        })
    }

    /// The snapshot the manifest currently names.
    pub fn snapshot(&self) -> Option<SnapshotRef> {
        self.inner.io.lock().manifest.snapshot.clone()
    }

    /// Writes and fsyncs everything appended, stops the flusher, and reports
    /// whether everything appended became durable.
    pub fn close(&self) -> Result<()> {
        self.inner.pending.lock().shutdown = true;
        self.inner.wake.notify_all();
        if let Some(h) = self.flusher.lock().take() {
            let _ = h.join();
        }
        let end = self.appended();
        if self.durable() < end {
            let reason = self.status().last_error.unwrap_or_else(|| "unknown".into());
            return Err(Error::Io {
                op: "flush on close",
                path: self.inner.dir.clone(),
                source: std::io::Error::other(format!(
                    "records up to position {end} appended but only {} durable: {reason}",
                    self.durable()
                )),
            });
        }
        Ok(())
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
