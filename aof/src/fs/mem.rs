//! An in-memory filesystem that models what survives a power loss.
//!
//! Each file keeps two byte vectors: `live` (what reads see) and `durable`
//! (what `sync_data` last made stable). Directory entries are likewise
//! live or durable: a create, rename or remove becomes durable only when
//! the parent directory is synced. [`MemFs::crash`] returns the filesystem
//! as it would be found after a power cut: durable entries with durable
//! bytes, nothing else.

use super::{File, Fs};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Default, Clone)]
struct Data {
    live: Vec<u8>,
    durable: Vec<u8>,
    /// Lowest offset changed since the last sync (`live.len()` if clean):
    /// `live` and `durable` agree on every byte before it.
    dirty_from: usize,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    data: HashMap<u64, Data>,
    live: BTreeMap<PathBuf, u64>,
    durable: BTreeMap<PathBuf, u64>,
}

/// In-memory [`Fs`] with power-loss simulation. Clones share the same files.
#[derive(Debug, Default, Clone)]
pub struct MemFs {
    state: Arc<Mutex<State>>,
}

struct MemFile {
    state: Arc<Mutex<State>>,
    id: u64,
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

impl MemFs {
    /// An empty filesystem.
    pub fn new() -> MemFs {
        MemFs::default()
    }

    /// The filesystem after a power loss: only synced directory entries,
    /// each holding only its synced bytes. `self` is left untouched.
    pub fn crash(&self) -> MemFs {
        self.crash_torn(|_, _| 0)
    }

    /// The filesystem after a power loss during which the disk had already
    /// written part of what was not fsynced: like [`MemFs::crash`], but each
    /// file also keeps the first `keep(path, unsynced_len)` bytes (at most
    /// `unsynced_len`) of its unsynced tail. Models torn writes. The whole
    /// picture is taken under one lock, as of one instant.
    pub fn crash_torn(&self, keep: impl Fn(&Path, usize) -> usize) -> MemFs {
        let st = self.state.lock();
        let mut fresh = State::default();
        for (path, id) in &st.durable {
            let bytes = match st.data.get(id) {
                Some(d) => {
                    let from = d.dirty_from.min(d.live.len()).min(d.durable.len());
                    let unsynced = d.live.len() - from;
                    let k = keep(path, unsynced).min(unsynced);
                    if k == 0 {
                        d.durable.clone()
                    } else {
                        d.live.get(..from + k).unwrap_or_default().to_vec()
                    }
                }
                None => Vec::new(),
            };
            let new_id = fresh.next_id;
            fresh.next_id += 1;
            fresh.data.insert(
                new_id,
                Data {
                    dirty_from: bytes.len(),
                    live: bytes.clone(),
                    durable: bytes,
                },
            );
            fresh.live.insert(path.clone(), new_id);
            fresh.durable.insert(path.clone(), new_id);
        }
        MemFs {
            state: Arc::new(Mutex::new(fresh)),
        }
    }

    /// The filesystem after the process was killed (kill -9) but the kernel
    /// survived: every written byte and every directory change is kept.
    pub fn crash_process(&self) -> MemFs {
        let st = self.state.lock();
        let mut fresh = State::default();
        for (path, id) in &st.live {
            let bytes = st.data.get(id).map(|d| d.live.clone()).unwrap_or_default();
            let new_id = fresh.next_id;
            fresh.next_id += 1;
            fresh.data.insert(
                new_id,
                Data {
                    dirty_from: bytes.len(),
                    live: bytes.clone(),
                    durable: bytes,
                },
            );
            fresh.live.insert(path.clone(), new_id);
            fresh.durable.insert(path.clone(), new_id);
        }
        MemFs {
            state: Arc::new(Mutex::new(fresh)),
        }
    }

    /// The live bytes of a file, if it exists.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.state.lock();
        let id = st.live.get(path)?;
        st.data.get(id).map(|d| d.live.clone())
    }

    /// Changes a file's bytes, live and durable alike (disk damage, or a
    /// test setting up a file).
    pub fn damage(&self, path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
        let mut st = self.state.lock();
        let Some(&id) = st.live.get(path) else { return };
        if let Some(d) = st.data.get_mut(&id) {
            f(&mut d.live);
            d.durable = d.live.clone();
            d.dirty_from = d.live.len();
        }
        st.durable.insert(path.to_path_buf(), id);
    }
}

impl Fs for MemFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn File>> {
        let mut st = self.state.lock();
        let id = st.next_id;
        st.next_id += 1;
        st.data.insert(id, Data::default());
        st.live.insert(path.to_path_buf(), id);
        Ok(Box::new(MemFile {
            state: self.state.clone(),
            id,
        }))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn File>> {
        let st = self.state.lock();
        let id = *st.live.get(path).ok_or_else(|| not_found(path))?;
        Ok(Box::new(MemFile {
            state: self.state.clone(),
            id,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        let id = st.live.remove(from).ok_or_else(|| not_found(from))?;
        st.live.insert(to.to_path_buf(), id);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.live
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.state.lock();
        if st.live.contains_key(dir) {
            return Err(io::Error::other(format!(
                "{}: not a directory",
                dir.display()
            )));
        }
        Ok(st
            .live
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        let st = &mut *st;
        st.durable.retain(|p, _| p.parent() != Some(dir));
        for (p, id) in &st.live {
            if p.parent() == Some(dir) {
                st.durable.insert(p.clone(), *id);
            }
        }
        Ok(())
    }

    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
}

impl MemFile {
    fn with<T>(&self, f: impl FnOnce(&mut Data) -> T) -> io::Result<T> {
        let mut st = self.state.lock();
        let d = st
            .data
            .get_mut(&self.id)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "file vanished"))?;
        Ok(f(d))
    }
}

impl File for MemFile {
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<usize> {
        let off = usize::try_from(offset).map_err(io::Error::other)?;
        self.with(|d| {
            if d.live.len() < off + buf.len() {
                d.live.resize(off + buf.len(), 0);
            }
            if let Some(dst) = d.live.get_mut(off..off + buf.len()) {
                dst.copy_from_slice(buf);
            }
            d.dirty_from = d.dirty_from.min(off);
            buf.len()
        })
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let off = usize::try_from(offset).map_err(io::Error::other)?;
        self.with(|d| {
            let src = d.live.get(off..).unwrap_or_default();
            let n = src.len().min(buf.len());
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), src.get(..n)) {
                dst.copy_from_slice(src);
            }
            n
        })
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.with(|d| {
            let from = d.dirty_from.min(d.live.len());
            d.durable.truncate(from);
            d.durable
                .extend_from_slice(d.live.get(from..).unwrap_or_default());
            d.dirty_from = d.live.len();
        })
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(io::Error::other)?;
        self.with(|d| {
            d.dirty_from = d.dirty_from.min(len).min(d.live.len());
            d.live.resize(len, 0);
        })
    }

    fn len(&self) -> io::Result<u64> {
        self.with(|d| d.live.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_keeps_only_synced_bytes_and_entries() {
        let fs = MemFs::new();
        let dir = Path::new("/d");
        let a = dir.join("a");
        let mut f = fs.create(&a).unwrap();
        f.write_all_at(0, b"hello").unwrap();
        f.sync_data().unwrap();
        // Entry not durable yet: the file vanishes.
        assert!(fs.crash().contents(&a).is_none());
        fs.sync_dir(dir).unwrap();
        f.write_all_at(5, b" world").unwrap();
        assert_eq!(fs.crash().contents(&a).unwrap(), b"hello");
        f.write_all_at(0, b"J").unwrap();
        f.sync_data().unwrap();
        assert_eq!(fs.crash().contents(&a).unwrap(), b"Jello world");
        fs.rename(&a, &dir.join("b")).unwrap();
        let c = fs.crash();
        assert!(c.contents(&dir.join("b")).is_none());
        assert!(c.contents(&a).is_some());
        fs.sync_dir(dir).unwrap();
        let c = fs.crash();
        assert!(c.contents(&a).is_none());
        assert_eq!(c.contents(&dir.join("b")).unwrap(), b"Jello world");
    }
}
