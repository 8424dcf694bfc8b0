//! A wrapper that injects faults into any [`Fs`]: failing writes and
//! fsyncs (EIO or ENOSPC), short writes, and slow fsyncs.

use super::{File, Fs};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

/// Which error an injected failure returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// `EIO`: the device failed.
    Eio,
    /// `ENOSPC`: the disk is full.
    Enospc,
}

/// The knobs of a [`FaultFs`], shared with the test that drives it.
/// Write and fsync calls are counted from 1 across all files.
#[derive(Debug, Default)]
pub struct Faults {
    writes: AtomicU64,
    syncs: AtomicU64,
    fail_write_nth: AtomicU64,
    fail_sync_nth: AtomicU64,
    fail_writes: AtomicBool,
    fail_syncs: AtomicBool,
    short_write_max: AtomicUsize,
    errno: AtomicI32,
    sync_delay_us: AtomicU64,
    /// Bytes per second a write may take (0: unlimited): a slow disk.
    write_rate: AtomicU64,
    frozen: AtomicBool,
}

impl Faults {
    /// Fail the `n`th write call from now on counting (1-based, 0 = never).
    /// A failing write first writes half of its buffer (a torn write).
    pub fn fail_nth_write(&self, n: u64) {
        self.fail_write_nth
            .store(self.writes.load(Ordering::SeqCst) + n, Ordering::SeqCst);
    }
    /// Fail the `n`th fsync call from now on counting (1-based).
    pub fn fail_nth_sync(&self, n: u64) {
        self.fail_sync_nth
            .store(self.syncs.load(Ordering::SeqCst) + n, Ordering::SeqCst);
    }
    /// Fail every write while `on`.
    pub fn set_fail_writes(&self, on: bool) {
        self.fail_writes.store(on, Ordering::SeqCst);
    }
    /// Fail every fsync while `on`.
    pub fn set_fail_syncs(&self, on: bool) {
        self.fail_syncs.store(on, Ordering::SeqCst);
    }
    /// Each write call writes at most `max` bytes (0 = no limit).
    pub fn set_short_writes(&self, max: usize) {
        self.short_write_max.store(max, Ordering::SeqCst);
    }
    /// The error injected failures return (EIO by default).
    pub fn set_kind(&self, kind: FaultKind) {
        let e = match kind {
            FaultKind::Eio => EIO,
            FaultKind::Enospc => ENOSPC,
        };
        self.errno.store(e, Ordering::SeqCst);
    }
    /// Every file fsync sleeps this long first (a slow disk).
    /// Writes take `len / bytes_per_sec` seconds (0: no limit), as on a
    /// disk slower than the records arrive.
    pub fn set_write_rate(&self, bytes_per_sec: u64) {
        self.write_rate.store(bytes_per_sec, Ordering::SeqCst);
    }
    pub fn set_sync_delay(&self, d: Duration) {
        self.sync_delay_us
            .store(d.as_micros() as u64, Ordering::SeqCst);
    }
    /// Every later write, set_len and fsync fails without touching the file:
    /// the writer is as good as dead (a test's stand-in for `kill -9`).
    /// [`Faults::heal`] does not undo it.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }
    /// Clears every injected fault (the counters keep counting).
    pub fn heal(&self) {
        self.fail_write_nth.store(0, Ordering::SeqCst);
        self.fail_sync_nth.store(0, Ordering::SeqCst);
        self.set_fail_writes(false);
        self.set_fail_syncs(false);
        self.set_short_writes(0);
    }
    /// Write calls seen so far.
    pub fn write_calls(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }
    /// File fsync calls seen so far.
    pub fn sync_calls(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }

    fn error(&self) -> io::Error {
        match self.errno.load(Ordering::SeqCst) {
            0 => io::Error::from_raw_os_error(EIO),
            e => io::Error::from_raw_os_error(e),
        }
    }
}

/// An [`Fs`] that forwards to another one, injecting the faults set in its
/// [`Faults`].
#[derive(Debug, Clone)]
pub struct FaultFs {
    inner: Arc<dyn Fs>,
    faults: Arc<Faults>,
}

impl FaultFs {
    /// Wraps `inner`; returns the wrapper and its fault controls.
    pub fn new(inner: Arc<dyn Fs>) -> (FaultFs, Arc<Faults>) {
        let faults = Arc::new(Faults::default());
        (
            FaultFs {
                inner,
                faults: faults.clone(),
            },
            faults,
        )
    }
}

struct FaultFile {
    inner: Box<dyn File>,
    faults: Arc<Faults>,
}

impl Fs for FaultFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn File>> {
        let inner = self.inner.create(path)?;
        Ok(Box::new(FaultFile {
            inner,
            faults: self.faults.clone(),
        }))
    }
    fn open(&self, path: &Path) -> io::Result<Box<dyn File>> {
        let inner = self.inner.open(path)?;
        Ok(Box::new(FaultFile {
            inner,
            faults: self.faults.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
}

impl File for FaultFile {
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<usize> {
        let f = &self.faults;
        let n = f.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if f.frozen.load(Ordering::SeqCst) {
            return Err(f.error());
        }
        if f.fail_writes.load(Ordering::SeqCst) || f.fail_write_nth.load(Ordering::SeqCst) == n {
            // A torn write: part of the data reaches the file, then EIO.
            let half = buf.get(..buf.len() / 2).unwrap_or_default();
            if !half.is_empty() {
                self.inner.write_at(offset, half)?;
            }
            return Err(f.error());
        }
        let rate = f.write_rate.load(Ordering::SeqCst);
        if rate > 0 {
            std::thread::sleep(Duration::from_secs_f64(buf.len() as f64 / rate as f64));
        }
        let max = f.short_write_max.load(Ordering::SeqCst);
        let buf = if max > 0 {
            buf.get(..max.min(buf.len())).unwrap_or_default()
        } else {
            buf
        };
        self.inner.write_at(offset, buf)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_at(offset, buf)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        let f = &self.faults;
        let n = f.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        let delay = f.sync_delay_us.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_micros(delay));
        }
        if f.frozen.load(Ordering::SeqCst)
            || f.fail_syncs.load(Ordering::SeqCst)
            || f.fail_sync_nth.load(Ordering::SeqCst) == n
        {
            return Err(f.error());
        }
        self.inner.sync_data()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        if self.faults.frozen.load(Ordering::SeqCst) {
            return Err(self.faults.error());
        }
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}
