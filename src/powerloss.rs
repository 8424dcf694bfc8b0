//! A file-system seam that makes `kill -9` behave like a power loss.
//!
//! A process crash keeps everything the process handed to the kernel (the
//! page cache survives), so kill -9 alone cannot tell `appendfsync always`
//! from `no`. With `debug-simulate-power-loss yes` the log's writes are
//! held in process memory until the file is fsynced, so a killed process
//! loses exactly the bytes a power loss would: everything not yet
//! fsynced. Tests use it to show that every acknowledged write was
//! durable. Metadata operations (create, rename, remove) pass through.

use std::io;
use std::path::Path;

use basalt_aof::fs::{File, Fs, StdFs};

#[derive(Debug, Default)]
pub struct PowerLossFs {
    inner: StdFs,
}

impl Fs for PowerLossFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn File>> {
        Ok(Box::new(HeldFile {
            inner: self.inner.create(path)?,
            pending: Vec::new(),
        }))
    }
    fn open(&self, path: &Path) -> io::Result<Box<dyn File>> {
        Ok(Box::new(HeldFile {
            inner: self.inner.open(path)?,
            pending: Vec::new(),
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

/// Writes are kept as (offset, bytes) until `sync_data`.
struct HeldFile {
    inner: Box<dyn File>,
    pending: Vec<(u64, Vec<u8>)>,
}

impl File for HeldFile {
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<usize> {
        self.pending.push((offset, buf.to_vec()));
        Ok(buf.len())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = self.inner.read_at(offset, buf)?;
        // Overlay writes not yet synced, in order.
        for (o, data) in &self.pending {
            let (s, e) = (*o, *o + data.len() as u64);
            let (rs, re) = (offset, offset + buf.len() as u64);
            if e <= rs || s >= re {
                continue;
            }
            let from = s.max(rs);
            let to = e.min(re);
            let dst = &mut buf[(from - rs) as usize..(to - rs) as usize];
            dst.copy_from_slice(&data[(from - s) as usize..(to - s) as usize]);
            n = n.max((to - rs) as usize);
        }
        Ok(n)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        for (o, data) in self.pending.drain(..) {
            self.inner.write_all_at(o, &data)?;
        }
        self.inner.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        for (o, data) in self.pending.iter_mut() {
            if *o >= len {
                data.clear();
            } else if *o + data.len() as u64 > len {
                data.truncate((len - *o) as usize);
            }
        }
        self.inner.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        let base = self.inner.len()?;
        Ok(self
            .pending
            .iter()
            .map(|(o, d)| o + d.len() as u64)
            .fold(base, u64::max))
    }
}
