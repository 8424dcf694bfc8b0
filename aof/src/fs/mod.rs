//! The file-I/O seam. Everything the log does to the disk goes through
//! [`Fs`] and [`File`], so tests can swap in [`MemFs`] (which keeps the
//! bytes that were fsynced apart from the ones that were only written, to
//! simulate a power loss) or wrap any filesystem in [`FaultFs`] (failing
//! writes and fsyncs, short writes, slow fsyncs). [`SyncJournalFs`] and
//! [`simulate_power_loss`] do the same for a real server process killed
//! with `kill -9`.

mod fault;
mod journal;
mod mem;
mod std_fs;

pub use fault::{FaultFs, FaultKind, Faults};
pub use journal::{simulate_power_loss, PowerLossReport, SyncJournalFs};
pub use mem::MemFs;
pub use std_fs::StdFs;

use std::fmt;
use std::io;
use std::path::Path;

/// A filesystem: just the operations the log needs.
pub trait Fs: Send + Sync + fmt::Debug {
    /// Creates `path` (truncating it if it exists) for reading and writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn File>>;
    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Box<dyn File>>;
    /// Atomically renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Names (not paths) of the entries of a directory.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Creates a directory and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
}

/// An open file. Writes are positional, so retrying a failed or short
/// write at the same offset can never duplicate or reorder bytes.
#[allow(clippy::len_without_is_empty)]
pub trait File: Send + Sync {
    /// Writes some prefix of `buf` at `offset`; returns how many bytes.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<usize>;
    /// Reads into `buf` from `offset`; returns how many bytes (0 at EOF).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// `fdatasync`: makes the written bytes durable.
    fn sync_data(&mut self) -> io::Result<()>;
    /// Truncates or extends the file.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// Current length.
    fn len(&self) -> io::Result<u64>;

    /// Writes all of `buf` at `offset`, continuing after short writes.
    fn write_all_at(&mut self, mut offset: u64, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write_at(offset, buf) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
                Ok(n) => {
                    buf = buf.get(n..).unwrap_or_default();
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Fills `buf` from `offset`, stopping early only at end of file;
    /// returns how many bytes were read.
    fn read_full_at(&self, mut offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while let Some(rest) = buf.get_mut(done..) {
            if rest.is_empty() {
                break;
            }
            match self.read_at(offset, rest) {
                Ok(0) => break,
                Ok(n) => {
                    done += n;
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}

/// Reads a whole (small) file.
pub fn read_file(fs: &dyn Fs, path: &Path) -> io::Result<Vec<u8>> {
    let f = fs.open(path)?;
    let len = usize::try_from(f.len()?).map_err(|_| io::Error::other("file too large"))?;
    let mut buf = vec![0u8; len];
    let n = f.read_full_at(0, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}
