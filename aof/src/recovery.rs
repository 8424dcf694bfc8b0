//! Opening a log: read the manifest, check every segment, hand the records
//! to the caller one at a time, then start the writer where the valid log
//! ends.
//!
//! ```text
//! Recovery::open(dir, opts) ──► snapshot()            which snapshot to load first
//!                           ──► next() … next()       records after the snapshot, in order
//!                           ──► finish()              truncate torn tail, start the writer
//! ```
//!
//! Damage is classified as it is met:
//! - in the **last** segment, a record that is incomplete or fails its
//!   checksum *and is followed by no valid record* is a torn tail (a crash
//!   mid-append). `TruncateTail` and `LoadUntilDamage` cut it off and
//!   report file, offset and bytes dropped; `Strict` refuses.
//! - anything else is damage in the middle: `Strict` and `TruncateTail`
//!   refuse with [`Error::Corrupt`] (file, offset, and the repair command);
//!   `LoadUntilDamage` stops there.

use crate::error::{CorruptReason, Error, IoContext, Result};
use crate::format::{parse_segment_file_name, Lsn, MANIFEST_TMP_NAME, SEGMENT_HEADER_LEN};
use crate::fs::Fs;
use crate::manifest::{read_manifest, write_manifest, Manifest, SegmentEntry, SnapshotRef};
use crate::reader::{find_next_valid, Item, SegmentReader, CHUNK};
use crate::writer::{create_segment, Log, Options, RecoveryMode, Tail};
use std::path::{Path, PathBuf};

/// A torn tail that recovery cut off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The segment file.
    pub path: PathBuf,
    /// Offset the file was cut at (the end of the last valid record).
    pub offset: u64,
    /// Bytes dropped.
    pub dropped: u64,
}

/// Damage where `LoadUntilDamage` stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The segment file.
    pub path: PathBuf,
    /// Offset of the damaged record.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
    /// Bytes of log not loaded (the rest of this file and all later ones).
    pub dropped: u64,
    /// Where the unloaded bytes were kept, for `basalt-check-aof`.
    pub saved_as: Vec<PathBuf>,
}

/// What recovery found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The snapshot replay starts from.
    pub snapshot: Option<SnapshotRef>,
    /// Segment files read.
    pub segments: usize,
    /// Records handed to the caller.
    pub records: u64,
    /// Payload bytes handed to the caller.
    pub payload_bytes: u64,
    /// Records skipped because the snapshot covers them.
    pub covered_records: u64,
    /// Bytes of padding records (left by the repair tool) skipped.
    pub padding_bytes: u64,
    /// The torn tail that was cut off, if any.
    pub truncated: Option<Truncation>,
    /// Where `LoadUntilDamage` stopped, if it did.
    pub damage: Option<Damage>,
    /// Leftover files removed (segments not in the manifest, temp manifest).
    pub removed_files: Vec<PathBuf>,
    /// Position after the last valid record: where appends continue.
    pub end: Lsn,
}

/// One record handed back by [`Recovery::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The record's position (just after it).
    pub lsn: Lsn,
    /// Its payload.
    pub payload: &'a [u8],
}

enum State {
    /// Reading `segments[idx]`.
    Reading { idx: usize, reader: SegmentReader },
    /// Between segments: open `segments[idx]` next.
    Next { idx: usize },
    /// All records handed out; the log's valid end is known.
    Done { end_off: u64 },
}

/// An open-in-progress log. See the module docs.
pub struct Recovery {
    fs: std::sync::Arc<dyn Fs>,
    dir: PathBuf,
    opts: Options,
    manifest: Option<Manifest>,
    state: State,
    report: RecoveryReport,
    /// Where `LoadUntilDamage` stopped: segment index and offset.
    stop: Option<(usize, u64)>,
    /// Total bytes of the segment files, for progress reports.
    total_bytes: u64,
    /// Bytes of the segments already read completely.
    done_bytes: u64,
}

impl Recovery {
    /// Reads the manifest of `dir` (a missing directory or manifest is a new,
    /// empty log). Nothing is modified until [`Recovery::finish`].
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Recovery> {
        let dir = dir.as_ref().to_path_buf();
        let fs = opts.fs.clone();
        let manifest = read_manifest(&*fs, &dir)?;
        if manifest.is_none() {
            let names = match fs.list(&dir) {
                Ok(names) => names,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => {
                    return Err(Error::Io {
                        op: "list",
                        path: dir,
                        source: e,
                    })
                }
            };
            if let Some(seg) = names.iter().find(|n| parse_segment_file_name(n).is_some()) {
                return Err(Error::Inconsistent {
                    path: dir.join(seg),
                    reason: "segment files exist but the manifest is missing".into(),
                });
            }
        }
        if let Some(m) = &manifest {
            let first = m.segments.first().map_or(Lsn(0), |s| s.start);
            let covered = m.snapshot.as_ref().map_or(Lsn(0), |s| s.covered);
            if covered < first {
                return Err(Error::Inconsistent {
                    path: crate::manifest::manifest_path(&dir),
                    reason: format!(
                        "the log starts at position {first} but {} covers only up to {covered}: \
                         the records in between are missing",
                        m.snapshot
                            .as_ref()
                            .map_or("no snapshot".to_owned(), |s| format!("snapshot {}", s.name))
                    ),
                });
            }
        }
        let report = RecoveryReport {
            snapshot: manifest.as_ref().and_then(|m| m.snapshot.clone()),
            ..RecoveryReport::default()
        };
        let state = match manifest {
            Some(_) => State::Next { idx: 0 },
            None => State::Done {
                end_off: SEGMENT_HEADER_LEN as u64,
            },
        };
        let mut total_bytes = 0;
        for seg in manifest.iter().flat_map(|m| &m.segments) {
            let p = dir.join(seg.file_name());
            total_bytes += fs.open(&p).and_then(|f| f.len()).unwrap_or(0);
        }
        Ok(Recovery {
            fs,
            dir,
            opts,
            manifest,
            state,
            report,
            stop: None,
            total_bytes,
            done_bytes: 0,
        })
    }

    /// The snapshot to load before replaying the records.
    pub fn snapshot(&self) -> Option<&SnapshotRef> {
        self.report.snapshot.as_ref()
    }

    /// `(bytes read, total bytes)` of the segment files: for `INFO`'s
    /// `loading_loaded_bytes` / `loading_total_bytes` while replaying.
    pub fn progress(&self) -> (u64, u64) {
        let current = match &self.state {
            State::Reading { reader, .. } => reader.offset(),
            _ => 0,
        };
        (
            (self.done_bytes + current).min(self.total_bytes),
            self.total_bytes,
        )
    }

    /// What has been found so far.
    pub fn report(&self) -> &RecoveryReport {
        &self.report
    }

    /// The next record to replay, `None` at the end.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Record<'_>>> {
        loop {
            match &mut self.state {
                State::Done { .. } => return Ok(None),
                State::Next { idx } => {
                    let idx = *idx;
                    self.state = self.open_segment(idx)?;
                }
                State::Reading { idx, reader } => {
                    let idx = *idx;
                    let covered = self.report.snapshot.as_ref().map_or(0, |s| s.covered.0);
                    let start = reader.header().start.0;
                    // Step until a record to return or a change of state.
                    let step = match reader.next_item()? {
                        Item::Record { offset, size, .. } => {
                            let lsn = start + offset + size - SEGMENT_HEADER_LEN as u64;
                            if lsn <= covered {
                                self.report.covered_records += 1;
                                continue;
                            }
                            Step::Record(lsn)
                        }
                        Item::Padding { size, .. } => {
                            self.report.padding_bytes += size;
                            continue;
                        }
                        Item::End => Step::End,
                        Item::Incomplete { offset, have, need } => {
                            Step::Damage(offset, CorruptReason::Truncated { have, need })
                        }
                        Item::Bad { offset, reason } => {
                            Step::Damage(offset, CorruptReason::Record(reason))
                        }
                    };
                    match step {
                        Step::Record(lsn) => {
                            // Re-borrow to hand out the payload.
                            let State::Reading { reader, .. } = &mut self.state else {
                                return Ok(None);
                            };
                            let payload = reader.last_payload();
                            self.report.records += 1;
                            self.report.payload_bytes += payload.len() as u64;
                            return Ok(Some(Record {
                                lsn: Lsn(lsn),
                                payload,
                            }));
                        }
                        Step::End => self.end_of_segment(idx)?,
                        Step::Damage(offset, reason) => self.damage(idx, offset, reason)?,
                    }
                }
            }
        }
    }

    fn segments(&self) -> &[SegmentEntry] {
        self.manifest.as_ref().map_or(&[], |m| &m.segments)
    }

    fn seg_path(&self, idx: usize) -> PathBuf {
        self.segments()
            .get(idx)
            .map_or_else(|| self.dir.clone(), |s| self.dir.join(s.file_name()))
    }

    fn open_segment(&mut self, idx: usize) -> Result<State> {
        let Some(&entry) = self.segments().get(idx) else {
            return Ok(State::Done {
                end_off: SEGMENT_HEADER_LEN as u64,
            });
        };
        let path = self.seg_path(idx);
        let file = self.fs.open(&path).ctx("open", &path)?;
        let reader = match SegmentReader::new(file, &path)? {
            Ok(r) => r,
            Err(reason) => return Err(Error::BadHeader { path, reason }),
        };
        let h = reader.header();
        if h.seq != entry.seq || h.start != entry.start {
            return Err(Error::Inconsistent {
                path,
                reason: format!(
                    "header says segment {} starting at position {}, manifest says segment {} at {}",
                    h.seq, h.start, entry.seq, entry.start
                ),
            });
        }
        self.report.segments += 1;
        Ok(State::Reading { idx, reader })
    }

    fn is_last(&self, idx: usize) -> bool {
        idx + 1 >= self.segments().len()
    }

    fn end_of_segment(&mut self, idx: usize) -> Result<()> {
        let State::Reading { reader, .. } = &self.state else {
            return Ok(());
        };
        let end_off = reader.offset();
        let end_lsn = reader.header().start.0 + end_off - SEGMENT_HEADER_LEN as u64;
        if self.is_last(idx) {
            self.done_bytes += end_off;
            self.report.end = Lsn(end_lsn);
            self.state = State::Done { end_off };
            return Ok(());
        }
        let next_start = self.segments().get(idx + 1).map_or(end_lsn, |s| s.start.0);
        if next_start != end_lsn {
            let err = Error::Inconsistent {
                path: self.seg_path(idx),
                reason: format!(
                    "segment ends at log position {end_lsn} but the next one starts at {next_start}: \
                     bytes are missing; run `basalt-check-aof --fix {}`",
                    self.dir.display()
                ),
            };
            if self.opts.recovery == RecoveryMode::LoadUntilDamage {
                return self.stop_here(idx, end_off, err.to_string());
            }
            return Err(err);
        }
        self.done_bytes += end_off;
        self.state = State::Next { idx: idx + 1 };
        Ok(())
    }

    fn damage(&mut self, idx: usize, offset: u64, reason: CorruptReason) -> Result<()> {
        let path = self.seg_path(idx);
        let State::Reading { reader, .. } = &self.state else {
            return Ok(());
        };
        let file_len = reader.file_len();
        let torn = self.is_last(idx)
            && find_next_valid(reader.file(), &path, offset + 1, file_len)?.is_none();
        let mode = self.opts.recovery;
        if torn && mode != RecoveryMode::Strict {
            let dropped = file_len - offset;
            tracing::warn!(
                file = %path.display(), offset, dropped, %reason,
                "log ends with a torn record (crash during append); truncating it"
            );
            self.report.truncated = Some(Truncation {
                path,
                offset,
                dropped,
            });
            self.report.end = Lsn(reader.header().start.0 + offset - SEGMENT_HEADER_LEN as u64);
            self.state = State::Done { end_off: offset };
            return Ok(());
        }
        let err = Error::Corrupt {
            path,
            offset,
            reason,
            dir: self.dir.clone(),
        };
        if mode == RecoveryMode::LoadUntilDamage {
            return self.stop_here(idx, offset, err.to_string());
        }
        Err(err)
    }

    /// `LoadUntilDamage`: stop at `offset` of segment `idx`.
    fn stop_here(&mut self, idx: usize, offset: u64, reason: String) -> Result<()> {
        let State::Reading { reader, .. } = &self.state else {
            return Ok(());
        };
        let start = reader.header().start.0;
        let mut dropped = reader.file_len() - offset;
        for later in idx + 1..self.segments().len() {
            let p = self.seg_path(later);
            dropped += self.fs.open(&p).and_then(|f| f.len()).unwrap_or(0);
        }
        let path = self.seg_path(idx);
        tracing::error!(file = %path.display(), offset, dropped, %reason, "log damaged; loading only the records before the damage");
        self.report.damage = Some(Damage {
            path,
            offset,
            reason,
            dropped,
            saved_as: Vec::new(),
        });
        self.report.end = Lsn(start + offset - SEGMENT_HEADER_LEN as u64);
        self.stop = Some((idx, offset));
        self.state = State::Done { end_off: offset };
        Ok(())
    }

    /// Reads any records not yet handed out (discarding them), repairs what
    /// the mode allows, removes leftover files, and starts the writer.
    pub fn finish(mut self) -> Result<(Log, RecoveryReport)> {
        while self.next()?.is_some() {}
        let State::Done { end_off } = self.state else {
            return Err(Error::Closed);
        };
        let fs = self.fs.clone();
        let dir = self.dir.clone();
        let mut manifest = match self.manifest.take() {
            Some(m) => m,
            None => {
                fs.create_dir_all(&dir).ctx("create directory", &dir)?;
                let manifest = Manifest {
                    snapshot: None,
                    segments: vec![SegmentEntry {
                        seq: 1,
                        start: Lsn(0),
                    }],
                };
                create_segment(&*fs, &dir, 1, Lsn(0))?;
                write_manifest(&*fs, &dir, &manifest)?;
                manifest
            }
        };
        if let Some((idx, _)) = self.stop {
            // Keep the unloaded bytes for the repair tool, then continue the
            // log from the damage point.
            let mut saved = Vec::new();
            let existing = fs.list(&dir).ctx("list", &dir)?;
            for (i, seg) in manifest.segments.iter().enumerate().skip(idx) {
                let path = dir.join(seg.file_name());
                // Never overwrite what an earlier damaged start kept.
                let base = format!("{}.damaged", seg.file_name());
                let name = (0..)
                    .map(|n| {
                        if n == 0 {
                            base.clone()
                        } else {
                            format!("{base}.{n}")
                        }
                    })
                    .find(|c| !existing.contains(c))
                    .unwrap_or(base);
                let keep = dir.join(name);
                if i == idx {
                    copy_file(&*fs, &path, &keep)?;
                } else {
                    fs.rename(&path, &keep).ctx("rename", &path)?;
                }
                saved.push(keep);
            }
            fs.sync_dir(&dir).ctx("sync directory", &dir)?;
            manifest.segments.truncate(idx + 1);
            write_manifest(&*fs, &dir, &manifest)?;
            if let Some(d) = &mut self.report.damage {
                d.saved_as = saved;
            }
        }
        let Some(&last) = manifest.segments.last() else {
            return Err(Error::BadManifest {
                path: dir.clone(),
                reason: "lists no segment".into(),
            });
        };
        let path = dir.join(last.file_name());
        let mut file = fs.open(&path).ctx("open", &path)?;
        let len = file.len().ctx("stat", &path)?;
        if len != end_off {
            file.set_len(end_off).ctx("truncate", &path)?;
            file.sync_data().ctx("sync", &path)?;
        }
        self.report.removed_files = remove_strays(&*fs, &dir, &manifest)?;
        let mut sealed_size = 0;
        for seg in manifest
            .segments
            .iter()
            .take(manifest.segments.len().saturating_sub(1))
        {
            let p = dir.join(seg.file_name());
            sealed_size += fs.open(&p).and_then(|f| f.len()).ctx("stat", &p)?;
        }
        if self.report.end == Lsn(0) {
            self.report.end = Lsn(last.start.0 + end_off - SEGMENT_HEADER_LEN as u64);
        }
        let tail = Tail {
            manifest,
            file,
            path,
            seg_start: last.start,
            end_off,
            sealed_size,
        };
        let log = Log::start(&dir, self.opts, tail)?;
        Ok((log, self.report))
    }
}

enum Step {
    Record(u64),
    End,
    Damage(u64, CorruptReason),
}

/// Removes segment files the manifest does not list (a rotation or a
/// compaction interrupted by a crash) and a leftover temporary manifest.
fn remove_strays(fs: &dyn Fs, dir: &Path, manifest: &Manifest) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for name in fs.list(dir).ctx("list", dir)? {
        let stray_segment = parse_segment_file_name(&name)
            .is_some_and(|seq| !manifest.segments.iter().any(|s| s.seq == seq));
        if stray_segment || name == MANIFEST_TMP_NAME {
            let p = dir.join(&name);
            tracing::info!(file = %p.display(), "removing log file left over by an interrupted rotation or compaction");
            fs.remove(&p).ctx("remove", &p)?;
            removed.push(p);
        }
    }
    if !removed.is_empty() {
        fs.sync_dir(dir).ctx("sync directory", dir)?;
    }
    Ok(removed)
}

fn copy_file(fs: &dyn Fs, from: &Path, to: &Path) -> Result<()> {
    let src = fs.open(from).ctx("open", from)?;
    let mut dst = fs.create(to).ctx("create", to)?;
    let mut buf = vec![0u8; CHUNK];
    let mut off = 0u64;
    loop {
        let n = src.read_full_at(off, &mut buf).ctx("read", from)?;
        if n == 0 {
            break;
        }
        dst.write_all_at(off, buf.get(..n).unwrap_or_default())
            .ctx("write", to)?;
        off += n as u64;
    }
    dst.sync_data().ctx("sync", to)
}

/// Opens the log at `dir`, calling `replay` for every record after the
/// snapshot, then starts the writer. The convenience form of [`Recovery`].
pub fn open_with<E>(
    dir: impl AsRef<Path>,
    opts: Options,
    mut replay: impl FnMut(Record<'_>) -> std::result::Result<(), E>,
) -> Result<std::result::Result<(Log, RecoveryReport), E>> {
    let mut rec = Recovery::open(dir, opts)?;
    while let Some(r) = rec.next()? {
        if let Err(e) = replay(r) {
            return Ok(Err(e));
        }
    }
    rec.finish().map(Ok)
}
