//! The manifest: which snapshot the log starts from and which segment files
//! follow it. A small text file, replaced atomically (write a temporary
//! file, fsync it, rename it over the old one, fsync the directory).
//!
//! ```text
//! basalt-aof-manifest 1
//! snapshot 4096 dump-00012.snap     (optional: covered position, file name)
//! segment 3 1024                    (sequence number, start position)
//! segment 4 8192
//! crc32 1a2b3c4d                    (crc32 of every byte above this line)
//! ```

use crate::error::{Error, IoContext, Result};
use crate::format::{segment_file_name, Lsn, MANIFEST_MAGIC, MANIFEST_NAME, MANIFEST_TMP_NAME};
use crate::fs::{read_file, Fs};
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

/// The snapshot a log starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRef {
    /// File name of the snapshot, as the server gave it.
    pub name: String,
    /// The snapshot holds the effect of every record up to this position.
    pub covered: Lsn,
}

/// One segment listed in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentEntry {
    /// Sequence number (also gives the file name).
    pub seq: u64,
    /// Position of its first record.
    pub start: Lsn,
}

impl SegmentEntry {
    /// The segment's file name.
    pub fn file_name(&self) -> String {
        segment_file_name(self.seq)
    }
}

/// The decoded manifest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// The snapshot replay starts from, if any.
    pub snapshot: Option<SnapshotRef>,
    /// Segments in log order; never empty in a valid manifest.
    pub segments: Vec<SegmentEntry>,
}

impl Manifest {
    /// Encodes the manifest text.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        s.push_str(MANIFEST_MAGIC);
        s.push('\n');
        if let Some(snap) = &self.snapshot {
            let _ = writeln!(s, "snapshot {} {}", snap.covered.0, snap.name);
        }
        for seg in &self.segments {
            let _ = writeln!(s, "segment {} {}", seg.seq, seg.start.0);
        }
        let crc = crc32fast::hash(s.as_bytes());
        let _ = writeln!(s, "crc32 {crc:08x}");
        s
    }

    /// Decodes and verifies manifest text; `Err` holds the reason.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Manifest, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
        let body_end = text.rfind("crc32 ").ok_or("missing crc32 line")?;
        let (body, trailer) = text.split_at(body_end);
        let stored = trailer
            .trim_end()
            .strip_prefix("crc32 ")
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or("malformed crc32 line")?;
        let computed = crc32fast::hash(body.as_bytes());
        if stored != computed {
            return Err(format!(
                "checksum mismatch (stored {stored:08x}, computed {computed:08x})"
            ));
        }
        let mut lines = body.lines();
        if lines.next() != Some(MANIFEST_MAGIC) {
            return Err(format!("first line is not `{MANIFEST_MAGIC}`"));
        }
        let mut m = Manifest::default();
        for line in lines {
            let bad = || format!("malformed line `{line}`");
            if let Some(rest) = line.strip_prefix("snapshot ") {
                let (pos, name) = rest.split_once(' ').ok_or_else(bad)?;
                let covered = Lsn(pos.parse().map_err(|_| bad())?);
                m.snapshot = Some(SnapshotRef {
                    name: name.to_owned(),
                    covered,
                });
            } else if let Some(rest) = line.strip_prefix("segment ") {
                let (seq, start) = rest.split_once(' ').ok_or_else(bad)?;
                m.segments.push(SegmentEntry {
                    seq: seq.parse().map_err(|_| bad())?,
                    start: Lsn(start.parse().map_err(|_| bad())?),
                });
            } else {
                return Err(bad());
            }
        }
        if m.segments.is_empty() {
            return Err("lists no segment".to_owned());
        }
        if m.segments
            .windows(2)
            .any(|w| matches!(w, [a, b] if b.seq <= a.seq || b.start < a.start))
        {
            return Err("segments are not in increasing order".to_owned());
        }
        Ok(m)
    }
}

/// Path of the manifest in `dir`.
pub fn manifest_path(dir: &Path) -> PathBuf {
    dir.join(MANIFEST_NAME)
}

/// Reads the manifest of `dir`; `Ok(None)` if there is none.
pub fn read_manifest(fs: &dyn Fs, dir: &Path) -> Result<Option<Manifest>> {
    let path = manifest_path(dir);
    match read_file(fs, &path) {
        Ok(bytes) => Manifest::decode(&bytes)
            .map(Some)
            .map_err(|reason| Error::BadManifest { path, reason }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io {
            op: "read",
            path,
            source: e,
        }),
    }
}

/// Atomically replaces the manifest of `dir`.
pub fn write_manifest(fs: &dyn Fs, dir: &Path, m: &Manifest) -> Result<()> {
    let tmp = dir.join(MANIFEST_TMP_NAME);
    let mut f = fs.create(&tmp).ctx("create", &tmp)?;
    f.write_all_at(0, m.encode().as_bytes())
        .ctx("write", &tmp)?;
    f.sync_data().ctx("sync", &tmp)?;
    drop(f);
    let path = manifest_path(dir);
    fs.rename(&tmp, &path).ctx("rename", &path)?;
    fs.sync_dir(dir).ctx("sync directory", dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_checksum() {
        let m = Manifest {
            snapshot: Some(SnapshotRef {
                name: "snap 1.bsnap".into(),
                covered: Lsn(99),
            }),
            segments: vec![
                SegmentEntry {
                    seq: 2,
                    start: Lsn(50),
                },
                SegmentEntry {
                    seq: 3,
                    start: Lsn(120),
                },
            ],
        };
        let text = m.encode();
        assert_eq!(Manifest::decode(text.as_bytes()), Ok(m));
        let damaged = text.replace("segment 3", "segment 4");
        assert!(Manifest::decode(damaged.as_bytes())
            .unwrap_err()
            .contains("checksum"));
    }
}
