//! The flusher thread: takes the pending batch, writes it, fsyncs it per
//! policy, performs queued rotations, and retries after disk errors.

use super::{create_segment, FsyncPolicy, Inner, Io};
use crate::error::{Error, IoContext, Result};
use crate::format::{Lsn, SEGMENT_HEADER_LEN};
use crate::manifest::{write_manifest, SegmentEntry};
use crate::status::Health;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// fsyncs slower than this (µs, moving average) turn on the linger.
const LINGER_MIN_FSYNC_US: u64 = 1_000;
/// Longest linger (µs).
const LINGER_MAX_US: u64 = 1_000;

/// Buffers larger than this are shrunk once empty again (to 1/16): a
/// burst must not leave tens of MB allocated, which `maxmemory` users
/// would see as memory the dataset cannot use.
const SHRINK_ABOVE: usize = 2 << 20;

/// How far ahead of the appends the active segment is zero-filled.
const ZERO_FILL: u64 = 512 << 10;
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

impl Inner {
    /// The fsync policy now in force.
    pub(super) fn policy(&self) -> FsyncPolicy {
        match self.policy.load(Ordering::Relaxed) {
            0 => FsyncPolicy::Always,
            1 => FsyncPolicy::EverySec,
            _ => FsyncPolicy::No,
        }
    }

    /// Whether waiters commit batches themselves (see `Log::commit_inline`):
    /// asked for, under `Always`, on a disk whose fsync is fast. On a slow
    /// disk the flusher thread does it, so that connections keep running
    /// (and appending) while an fsync is in flight.
    pub(super) fn inline_active(&self) -> bool {
        self.opts.inline_commit
            && self.policy() == FsyncPolicy::Always
            && self.fsync_avg_us.load(Ordering::Relaxed) < LINGER_MIN_FSYNC_US
    }

    /// Whether appends leave the flusher asleep unless it is idle: under
    /// inline commit (see above), and under `EverySec`/`No` when
    /// `inline_commit` is on, where nobody waits for the write and the
    /// flusher writes whatever accumulated once per `inline_poll`. Waking
    /// it for every append would cost a context switch (and a small
    /// write) per record.
    pub(super) fn flusher_polls(&self) -> bool {
        self.opts.inline_commit && (self.policy() != FsyncPolicy::Always || self.inline_active())
    }

    pub(super) fn run(self: Arc<Self>) {
        let mut shutdown_failures = 0;
        let (mut mark, mut polled) = (0, false);
        loop {
            let (shutdown, sync_requested) = self.wait_for_work(&mut mark, &mut polled);
            if !shutdown {
                self.linger();
            }
            // Coming out of an error, only a good fsync proves the disk is back.
            let force = shutdown || sync_requested || self.in_error.load(Ordering::Acquire);
            let result = {
                let mut io = self.io.lock();
                self.flush(&mut io, force)
            };
            match result {
                Ok(()) => {
                    self.clear_error();
                    if shutdown && self.pending.lock().buf.is_empty() {
                        self.trim_zero_fill();
                        return;
                    }
                }
                Err(e) => {
                    self.record_error(&e);
                    if shutdown {
                        shutdown_failures += 1;
                        if shutdown_failures >= 3 {
                            tracing::error!(dir = %self.dir.display(), error = %e, "giving up flushing the log on close");
                            return;
                        }
                    }
                    std::thread::sleep(self.opts.retry_interval);
                }
            }
        }
    }

    /// On a slow disk, waits a moment before starting a batch so that the
    /// clients released by the previous fsync can join it.
    ///
    /// Without this, under `Always` with N clients each waiting for its
    /// fsync, the clients settle into two cohorts that alternate: one waits
    /// in the fsync in flight while the other fills the next batch, so each
    /// fsync carries about N/2 records. Lingering for a tenth of an fsync
    /// (at most 1 ms) lets both cohorts share one fsync, nearly doubling
    /// throughput when fsync costs milliseconds. On a disk whose fsync takes
    /// under 1 ms, and when the last batch held a single record (one client:
    /// nobody to wait for), it does nothing.
    fn linger(&self) {
        if self.policy() != FsyncPolicy::Always || self.in_error.load(Ordering::Acquire) {
            return;
        }
        let avg = self.fsync_avg_us.load(Ordering::Relaxed);
        if self.last_batch.load(Ordering::Relaxed) < 2 {
            return;
        }
        if avg < LINGER_MIN_FSYNC_US {
            // A fast disk: don't sleep, but give the CPU to the threads
            // producing records first. When the server's workers share this
            // core, they then finish the round of clients that the last fsync
            // released, and the batch carries them all (fewer fsyncs, each
            // costing a VM exit and two context switches); on an idle core
            // this returns at once.
            std::thread::yield_now();
            return;
        }
        // A plain sleep: waiting on the condvar would wake the flusher for
        // every append that arrives meanwhile.
        std::thread::sleep(Duration::from_micros((avg / 10).min(LINGER_MAX_US)));
    }

    /// Sleeps until there is something to do; returns (shutdown, sync requested).
    ///
    /// Under inline commit appends don't wake the flusher: it polls every
    /// `inline_poll` and takes over records that were already appended at
    /// the previous poll (`mark`) and are still not durable. After a poll
    /// interval without appends it sleeps until the next append wakes it.
    ///
    /// Under `EverySec`/`No` with polling (`flusher_polls`), `polled` is
    /// set once the flusher has slept one interval since its last write;
    /// the records found then are written.
    fn wait_for_work(&self, mark: &mut u64, polled: &mut bool) -> (bool, bool) {
        let mut p = self.pending.lock();
        loop {
            if p.shutdown {
                return (true, std::mem::take(&mut p.sync_requested));
            }
            if p.sync_requested || !p.rotations.is_empty() || self.in_error.load(Ordering::Acquire)
            {
                return (false, std::mem::take(&mut p.sync_requested));
            }
            if self.inline_active() {
                let durable = self.durable.load(Ordering::Acquire);
                if !p.buf.is_empty() && *mark > durable {
                    *mark = p.end;
                    return (false, false);
                }
                if p.end == *mark && p.end <= durable {
                    // Nothing appended for a whole interval: sleep until woken.
                    p.flusher_idle = true;
                    self.wake.wait(&mut p);
                    *mark = 0;
                    continue;
                }
                *mark = p.end;
                let deadline = Instant::now() + self.opts.inline_poll;
                self.wake.wait_until(&mut p, deadline);
                continue;
            }
            let polls = self.flusher_polls();
            if !p.buf.is_empty() && (!polls || *polled) {
                *polled = false;
                return (false, std::mem::take(&mut p.sync_requested));
            }
            if polls && !*polled {
                // Let records accumulate for one poll interval; appends
                // don't wake us meanwhile (`flusher_idle` stays false).
                *polled = true;
                let deadline = Instant::now() + self.opts.inline_poll;
                self.wake.wait_until(&mut p, deadline);
                continue;
            }
            // Nothing appended for a whole interval: sleep until an append
            // (or the everysec deadline) wakes us. The flag is set even when
            // appends wake us anyway (slow disk under `Always`): if an
            // inline commit makes the disk look fast meanwhile, appends stop
            // waking a flusher that is not marked idle.
            p.flusher_idle = true;
            let unsynced =
                self.written.load(Ordering::Acquire) > self.durable.load(Ordering::Acquire);
            if self.policy() == FsyncPolicy::EverySec && unsynced {
                let last = Duration::from_nanos(self.last_sync_ns.load(Ordering::Acquire));
                let deadline = self.epoch + last + self.opts.everysec_interval;
                if Instant::now() >= deadline || self.wake.wait_until(&mut p, deadline).timed_out()
                {
                    p.flusher_idle = false;
                    return (false, false);
                }
            } else {
                self.wake.wait(&mut p);
            }
            p.flusher_idle = false;
            *polled = false;
        }
    }

    /// Moves the pending buffer into `io.carry`.
    fn take_pending(&self, io: &mut Io) {
        let mut p = self.pending.lock();
        io.rotations.extend(p.rotations.drain(..));
        if p.buf.is_empty() {
            return;
        }
        if io.carry.is_empty() {
            std::mem::swap(&mut io.carry, &mut p.buf);
        } else {
            io.carry.extend_from_slice(&p.buf);
            p.buf.clear();
        }
        io.carry_records += std::mem::take(&mut p.records);
        // Under the pending lock, so `Log::buffer_bytes` never misses the
        // bytes moved out of the pending buffer.
        self.publish_buf_bytes(io);
    }

    /// One round: take the pending records, write them, fsync if the policy
    /// (or `force`) says so.
    pub(super) fn flush(&self, io: &mut Io, force: bool) -> Result<()> {
        self.take_pending(io);
        let r = self.flush_round(io, force);
        self.publish_buf_bytes(io);
        r
    }

    fn publish_buf_bytes(&self, io: &Io) {
        self.io_buf_bytes.store(
            (io.carry.capacity() + io.unsynced.capacity()) as u64,
            Ordering::Relaxed,
        );
    }

    fn flush_round(&self, io: &mut Io, force: bool) -> Result<()> {
        while let Some(&b) = io.rotations.front() {
            self.rotate_at(io, b)?;
            io.rotations.pop_front();
        }
        self.write_carry(io)?;
        if io.write_off == io.synced_off {
            return Ok(());
        }
        let due = match self.policy() {
            FsyncPolicy::Always => true,
            FsyncPolicy::EverySec => {
                let last = Duration::from_nanos(self.last_sync_ns.load(Ordering::Acquire));
                self.epoch.elapsed() >= last + self.opts.everysec_interval
            }
            FsyncPolicy::No => false,
        };
        if due || force {
            self.sync(io)?;
        }
        Ok(())
    }

    /// Ends the active segment at log position `b` and starts a new one
    /// there. Idempotent: after a failure it is simply called again.
    fn rotate_at(&self, io: &mut Io, b: u64) -> Result<()> {
        if b <= io.seg_start {
            return Ok(()); // the active segment is empty: nothing to seal
        }
        let split = usize::try_from(b.saturating_sub(io.lsn(io.write_off))).unwrap_or(usize::MAX);
        self.write_prefix(io, split.min(io.carry.len()))?;
        let (path, write_off) = (io.path.clone(), io.write_off);
        // Drop anything a failed write left past the last record.
        if io.file.len().ctx("stat", &path)? != write_off {
            io.file.set_len(write_off).ctx("truncate", &path)?;
            if io.write_off == io.synced_off {
                io.file.sync_data().ctx("sync", &path)?; // make the truncation durable
            }
        }
        self.sync(io)?;
        let seq = io.manifest.segments.last().map_or(1, |s| s.seq + 1);
        let (file, new_path) = create_segment(&*self.fs, &self.dir, seq, Lsn(b))?;
        let mut manifest = io.manifest.clone();
        manifest.segments.push(SegmentEntry { seq, start: Lsn(b) });
        write_manifest(&*self.fs, &self.dir, &manifest)?;
        io.manifest = manifest;
        io.sealed_size += io.write_off;
        io.file = file;
        io.path = new_path;
        io.seg_start = b;
        io.write_off = SEGMENT_HEADER_LEN as u64;
        io.alloc_off = SEGMENT_HEADER_LEN as u64;
        io.synced_off = SEGMENT_HEADER_LEN as u64;
        self.update_size(io);
        self.active_start.store(b, Ordering::Release);
        {
            let _g = self.durable_lock.lock();
            self.durable_cv.notify_all();
        }
        tracing::debug!(seq, position = b, "log segment rotated");
        Ok(())
    }

    /// Writes `io.carry` at the write offset.
    fn write_carry(&self, io: &mut Io) -> Result<()> {
        let n = io.carry.len();
        self.write_prefix(io, n)
    }

    /// Writes the first `n` bytes of `io.carry` at the write offset.
    fn write_prefix(&self, io: &mut Io, n: usize) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let off = io.write_off;
        if self.policy() != FsyncPolicy::No && off + n as u64 > io.alloc_off {
            self.zero_fill(io, off + n as u64)?;
        }
        let Some(bytes) = io.carry.get(..n) else {
            return Ok(());
        };
        io.file.write_all_at(off, bytes).ctx("write", &io.path)?;
        io.write_off += n as u64;
        let whole = n == io.carry.len();
        if self.policy() != FsyncPolicy::No {
            if whole && io.unsynced.is_empty() {
                std::mem::swap(&mut io.unsynced, &mut io.carry);
            } else {
                io.unsynced
                    .extend_from_slice(io.carry.get(..n).unwrap_or_default());
            }
        }
        if whole {
            io.carry.clear();
            if io.carry.capacity() > SHRINK_ABOVE {
                io.carry.shrink_to(SHRINK_ABOVE / 16);
            }
            io.unsynced_records += std::mem::take(&mut io.carry_records);
        } else {
            io.carry.drain(..n);
            // Record counts are only used for statistics; attribute the
            // split batch's records to the part written last.
        }
        let n = n as u64;
        self.counters.bytes_written.fetch_add(n, Ordering::Relaxed);
        self.written.store(io.lsn(io.write_off), Ordering::Release);
        self.update_size(io);
        Ok(())
    }

    /// Writes zeros from the zero-filled end to `ZERO_FILL` past `upto`.
    ///
    /// Appending grows the file, and an fdatasync after a size change must
    /// also write the inode: two device writes per commit. Records written
    /// over zeros already on disk leave the size alone, so the fdatasync
    /// that commits them writes only their data pages; the size changes
    /// once per `ZERO_FILL` bytes of log. Readers take zeros after the last
    /// record for the end of the log (`FORMAT.md`).
    fn zero_fill(&self, io: &mut Io, upto: u64) -> Result<()> {
        let target = upto + ZERO_FILL;
        let mut o = io.alloc_off.max(io.write_off);
        while o < target {
            let n = (target - o).min(ZEROS.len() as u64) as usize;
            io.file
                .write_all_at(o, ZEROS.get(..n).unwrap_or_default())
                .ctx("write", &io.path)?;
            o += n as u64;
        }
        io.alloc_off = target;
        Ok(())
    }

    /// On close: cuts the zero-filled space off the active segment, so that
    /// a log closed cleanly ends exactly at its last record. (Best effort:
    /// readers accept the zeros anyway.)
    fn trim_zero_fill(&self) {
        let mut io = self.io.lock();
        if io.alloc_off <= io.write_off {
            return;
        }
        let (off, path) = (io.write_off, io.path.clone());
        let r = io.file.set_len(off).and_then(|()| io.file.sync_data());
        match r {
            Ok(()) => io.alloc_off = off,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "could not trim the log's zero-filled tail")
            }
        }
    }

    /// fdatasync and publish. On failure, everything since the last good
    /// fsync goes back to `carry` to be written again.
    fn sync(&self, io: &mut Io) -> Result<()> {
        if io.write_off == io.synced_off {
            return Ok(());
        }
        self.syncing.store(true, Ordering::Relaxed);
        let t = Instant::now();
        let r = io.file.sync_data();
        let micros = t.elapsed().as_micros() as u64;
        self.syncing.store(false, Ordering::Relaxed);
        if let Err(e) = r {
            let kept = io.unsynced.len() as u64 == io.write_off - io.synced_off;
            if kept {
                let mut again = std::mem::take(&mut io.unsynced);
                again.extend_from_slice(&io.carry);
                io.carry = again;
                io.carry_records += std::mem::take(&mut io.unsynced_records);
                io.write_off = io.synced_off;
            }
            return Err(Error::Io {
                op: "sync",
                path: io.path.clone(),
                source: e,
            });
        }
        io.synced_off = io.write_off;
        io.unsynced.clear();
        if io.unsynced.capacity() > SHRINK_ABOVE {
            // Give back memory after a burst (e.g. a long disk outage).
            io.unsynced.shrink_to(SHRINK_ABOVE / 16);
        }
        let records = std::mem::take(&mut io.unsynced_records);
        let c = &self.counters;
        c.fsyncs.fetch_add(1, Ordering::Relaxed);
        c.records_synced.fetch_add(records, Ordering::Relaxed);
        c.max_batch.fetch_max(records, Ordering::Relaxed);
        c.fsync_micros.fetch_add(micros, Ordering::Relaxed);
        let avg = self.fsync_avg_us.load(Ordering::Relaxed);
        let avg = if avg == 0 {
            micros
        } else {
            (avg * 7 + micros) / 8
        };
        self.fsync_avg_us.store(avg, Ordering::Relaxed);
        self.last_batch.store(records, Ordering::Relaxed);
        c.fsync_micros_max.fetch_max(micros, Ordering::Relaxed);
        self.last_sync_ns
            .store(self.epoch.elapsed().as_nanos() as u64, Ordering::Release);
        // Healthy again before anyone sees the new durable position.
        self.clear_error();
        self.publish(io.lsn(io.synced_off));
        Ok(())
    }

    fn publish(&self, lsn: u64) {
        self.durable.store(lsn, Ordering::Release);
        self.durable_tx.send_replace(Lsn(lsn));
        let _g = self.durable_lock.lock();
        self.durable_cv.notify_all();
    }

    pub(super) fn update_size(&self, io: &Io) {
        self.counters
            .current_size
            .store(io.sealed_size + io.write_off, Ordering::Relaxed);
        self.counters
            .segments
            .store(io.manifest.segments.len() as u64, Ordering::Relaxed);
    }

    fn clear_error(&self) {
        if self.in_error.swap(false, Ordering::AcqRel) {
            *self.health.lock() = Health::default();
            tracing::warn!(dir = %self.dir.display(), "log writes succeed again");
        }
    }

    pub(super) fn record_error(&self, e: &Error) {
        self.counters.failures.fetch_add(1, Ordering::Relaxed);
        let first = !self.in_error.swap(true, Ordering::AcqRel);
        let mut h = self.health.lock();
        h.error = Some(e.to_string());
        if first {
            h.since = Some(SystemTime::now());
            tracing::error!(dir = %self.dir.display(), error = %e, "log write failed; records are not durable, retrying");
        }
    }
}
