//! Power-loss simulation on the real filesystem, across processes.
//!
//! [`SyncJournalFs`] wraps an [`Fs`] and appends a line to a journal file
//! after every *successful* `sync_data`, rename, create and remove. Because
//! the line is written before `sync_data` returns to the log, any record
//! the log reported durable is covered by a journal line. A crash test can
//! then `kill -9` the server and call [`simulate_power_loss`], which cuts
//! every file back to the length it had at its last fsync, zeroes what was
//! written over existing bytes since then (the log overwrites only space it
//! zero-filled, so zeros are what the disk held there), and removes files
//! never fsynced: what a power cut would have left. (`kill -9` alone keeps
//! the page cache, so it cannot tell `always` from `no`.)
//!
//! Journal lines (tab-separated): `create <path>`, `write <path> <offset>
//! <len>` (noted before the write), `sync <path> <len>`, `rename <from>
//! <to>`, `remove <path>`.

use super::{File, Fs};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An [`Fs`] that journals what became durable. See the module docs.
#[derive(Debug, Clone)]
pub struct SyncJournalFs {
    inner: Arc<dyn Fs>,
    journal: Arc<Mutex<std::fs::File>>,
}

impl SyncJournalFs {
    /// Wraps `inner`, appending to the journal at `journal` (created if
    /// missing; kept across restarts so several crash cycles accumulate).
    pub fn new(inner: Arc<dyn Fs>, journal: &Path) -> io::Result<SyncJournalFs> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(journal)?;
        Ok(SyncJournalFs {
            inner,
            journal: Arc::new(Mutex::new(f)),
        })
    }

    fn note(journal: &Mutex<std::fs::File>, line: String) -> io::Result<()> {
        journal.lock().write_all(line.as_bytes())
    }
}

struct JournalFile {
    inner: Box<dyn File>,
    path: PathBuf,
    journal: Arc<Mutex<std::fs::File>>,
}

impl Fs for SyncJournalFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn File>> {
        let inner = self.inner.create(path)?;
        Self::note(&self.journal, format!("create\t{}\n", path.display()))?;
        Ok(Box::new(JournalFile {
            inner,
            path: path.to_path_buf(),
            journal: self.journal.clone(),
        }))
    }
    fn open(&self, path: &Path) -> io::Result<Box<dyn File>> {
        let inner = self.inner.open(path)?;
        Ok(Box::new(JournalFile {
            inner,
            path: path.to_path_buf(),
            journal: self.journal.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)?;
        Self::note(
            &self.journal,
            format!("rename\t{}\t{}\n", from.display(), to.display()),
        )
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)?;
        Self::note(&self.journal, format!("remove\t{}\n", path.display()))
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

impl File for JournalFile {
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<usize> {
        SyncJournalFs::note(
            &self.journal,
            format!("write\t{}\t{offset}\t{}\n", self.path.display(), buf.len()),
        )?;
        self.inner.write_at(offset, buf)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_at(offset, buf)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.inner.sync_data()?;
        let len = self.inner.len()?;
        SyncJournalFs::note(
            &self.journal,
            format!("sync\t{}\t{len}\n", self.path.display()),
        )
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

/// What [`simulate_power_loss`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PowerLossReport {
    /// Files cut back: (path, length before, length after).
    pub truncated: Vec<(PathBuf, u64, u64)>,
    /// Files removed because nothing of them was ever fsynced.
    pub removed: Vec<PathBuf>,
    /// Unsynced writes inside the synced length, zeroed: (path, bytes).
    pub zeroed: Vec<(PathBuf, u64)>,
}

/// Applies a simulated power loss to the files in `dir` using the journal
/// written by [`SyncJournalFs`]: every file is cut to its last fsynced
/// length, files created but never fsynced are removed. Files the journal
/// never mentions are left alone. Run it only while no process uses `dir`.
pub fn simulate_power_loss(journal: &Path, dir: &Path) -> io::Result<PowerLossReport> {
    let text = std::fs::read_to_string(journal)?;
    // path -> last synced length (None: created, never synced).
    let mut state: HashMap<PathBuf, Option<u64>> = HashMap::new();
    // path -> writes since its last sync: (offset, len).
    let mut unsynced: HashMap<PathBuf, Vec<(u64, u64)>> = HashMap::new();
    let num = |v: &str| -> io::Result<u64> {
        v.parse()
            .map_err(|_| io::Error::other(format!("bad journal number `{v}`")))
    };
    for line in text.lines() {
        let parts: Vec<&str> = line.split('\t').collect();
        match parts.as_slice() {
            ["create", p] => {
                state.insert(PathBuf::from(p), None);
                unsynced.remove(Path::new(p));
            }
            ["write", p, off, len] => {
                let (Ok(off), Ok(len)) = (num(off), num(len)) else {
                    continue; // torn by the kill
                };
                unsynced
                    .entry(PathBuf::from(p))
                    .or_default()
                    .push((off, len));
            }
            ["sync", p, len] => {
                state.insert(PathBuf::from(p), Some(num(len)?));
                unsynced.remove(Path::new(p));
            }
            ["rename", from, to] => {
                let v = state.remove(Path::new(from)).unwrap_or(None);
                state.insert(PathBuf::from(to), v);
                let w = unsynced.remove(Path::new(from)).unwrap_or_default();
                unsynced.insert(PathBuf::from(to), w);
            }
            ["remove", p] => {
                state.remove(Path::new(p));
                unsynced.remove(Path::new(p));
            }
            _ => {} // a line torn by the kill: ignore
        }
    }
    let mut report = PowerLossReport::default();
    for (path, synced) in &state {
        let (Some(len), Some(writes)) = (synced, unsynced.get(path)) else {
            continue;
        };
        if path.parent() != Some(dir) || !path.exists() {
            continue;
        }
        let f = std::fs::OpenOptions::new().write(true).open(path)?;
        let mut zeroed = 0;
        for &(off, n) in writes {
            let end = (off + n).min(*len);
            if off < end {
                std::os::unix::fs::FileExt::write_all_at(
                    &f,
                    &vec![0u8; (end - off) as usize],
                    off,
                )?;
                zeroed += end - off;
            }
        }
        if zeroed > 0 {
            report.zeroed.push((path.clone(), zeroed));
        }
    }
    for (path, synced) in state {
        if path.parent() != Some(dir) {
            continue;
        }
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        match synced {
            None => {
                std::fs::remove_file(&path)?;
                report.removed.push(path);
            }
            Some(len) if meta.len() > len => {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)?
                    .set_len(len)?;
                report.truncated.push((path, meta.len(), len));
            }
            Some(_) => {}
        }
    }
    report.truncated.sort();
    report.removed.sort();
    report.zeroed.sort();
    Ok(report)
}
