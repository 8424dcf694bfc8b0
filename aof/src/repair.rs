//! Checking and repairing a log: the logic behind `basalt-check-aof`.
//!
//! The check reads every record of every segment. At a damaged record it
//! resynchronises: it scans forward, byte by byte, for the next offset where
//! a valid record starts (a plausible length that stays inside the file and
//! a matching crc32, which covers the length too), and carries on from
//! there. So it reports not just the first bad offset but what follows it.
//!
//! The fix works in place and never moves a valid record:
//! - a torn tail of the last segment is cut off (the file is truncated);
//! - a damaged region with valid records after it is overwritten by a
//!   *padding record* of exactly the same size, which recovery skips; every
//!   record after it keeps its position, so the positions a snapshot or
//!   the manifest refer to stay right;
//! - a segment other than the last that ends early (or in garbage) is
//!   padded up to where the next segment starts.
//!
//! The dropped bytes are saved first to `<segment>.dropped` so nothing is
//! destroyed that a person might still want to look at.

use crate::error::{Error, IoContext, Result};
use crate::format::parse_segment_file_name;
use crate::format::{
    Lsn, SegmentHeader, MANIFEST_NAME, MAX_RECORD_LEN, PADDING_FLAG, RECORD_HEADER_LEN,
    SEGMENT_HEADER_LEN,
};
use crate::fs::{File, Fs};
use crate::manifest::{read_manifest, SegmentEntry};
use crate::reader::{find_next_valid, Item, SegmentReader, CHUNK};
use std::fmt;
use std::path::{Path, PathBuf};

/// What kind of damage a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// Bad bytes with valid records after them.
    Damaged,
    /// The last segment ends with bytes that are not a complete valid record
    /// and no valid record follows (a crash mid-append).
    TornTail,
    /// A segment other than the last ends early or in garbage: bytes up to
    /// where the next segment starts are missing.
    MissingTail,
}

/// One damaged region of a segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Kind of damage.
    pub kind: ProblemKind,
    /// File offset of the first bad byte (where a record should start).
    pub offset: u64,
    /// File offset where valid data resumes (for a tail: the file's end, or
    /// where the segment should end).
    pub end: u64,
    /// What was found at `offset`.
    pub reason: String,
    /// Valid records between `end` and the next problem or the end.
    pub records_after: u64,
}

/// What a fix did to one file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FixAction {
    /// Regions `(offset, length)` overwritten with padding.
    pub padded: Vec<(u64, u64)>,
    /// Records that had to be dropped although valid (a damaged region
    /// shorter than a record header takes the record before it along).
    pub dropped_valid_records: u64,
    /// New length, when the file was truncated.
    pub truncated_to: Option<u64>,
    /// Where the dropped bytes were saved.
    pub saved_to: Option<PathBuf>,
}

/// The check of one segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// Its header, or why it is unreadable (then nothing else was checked).
    pub header: std::result::Result<SegmentHeader, String>,
    /// File length in bytes.
    pub file_len: u64,
    /// Valid data records.
    pub records: u64,
    /// Bytes of padding records already present.
    pub padding_bytes: u64,
    /// Damaged regions, in file order.
    pub problems: Vec<Problem>,
    /// What `--fix` did, if it ran and there was something to fix.
    pub fix: Option<FixAction>,
    /// Why this file could not be fixed, if it could not.
    pub unfixable: Option<String>,
}

/// The result of [`check`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckReport {
    /// One entry per segment checked, in log order.
    pub files: Vec<FileReport>,
    /// Problems outside any single segment (manifest, missing files).
    pub errors: Vec<String>,
    /// Whether the fix was asked for.
    pub fix_requested: bool,
}

impl CheckReport {
    /// No damage found.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
            && self
                .files
                .iter()
                .all(|f| f.header.is_ok() && f.problems.is_empty())
    }

    /// Damage remains (found and not fixed).
    pub fn damage_remains(&self) -> bool {
        !self.errors.is_empty()
            || self.files.iter().any(|f| {
                f.header.is_err()
                    || f.unfixable.is_some()
                    || (!f.problems.is_empty() && f.fix.is_none())
            })
    }
}

/// A run of consecutive valid records (and padding) in a file.
#[derive(Debug, Clone, Copy)]
struct Run {
    end: u64,
    /// Start offset of the last record (or padding) in the run.
    last_item: u64,
    /// The run's records, not counting padding.
    records: u64,
    start: u64,
}

/// Checks the log at `target` (a log directory, its `MANIFEST`, or one
/// segment file) and, with `fix`, repairs it.
pub fn check(fs: &dyn Fs, target: &Path, fix: bool) -> Result<CheckReport> {
    let mut report = CheckReport {
        fix_requested: fix,
        ..CheckReport::default()
    };
    let (dir, single) = if target.file_name().is_some_and(|n| n == MANIFEST_NAME) {
        (
            target.parent().unwrap_or(Path::new(".")).to_path_buf(),
            None,
        )
    } else if fs.list(target).is_ok() {
        (target.to_path_buf(), None)
    } else {
        (
            target.parent().unwrap_or(Path::new(".")).to_path_buf(),
            Some(target.to_path_buf()),
        )
    };
    let mut fix = fix;
    let manifest = match read_manifest(fs, &dir) {
        Ok(m) => m,
        Err(e @ Error::BadManifest { .. }) => {
            // Still check every segment file, but repair nothing: without
            // the manifest we cannot tell where each segment must end.
            report.errors.push(format!(
                "{e}; segment files checked on their own, nothing fixed"
            ));
            fix = false;
            None
        }
        Err(e) => return Err(e),
    };
    // (path, the manifest entry, where the segment must end as a file
    // offset; None = last segment).
    let mut plan: Vec<(PathBuf, Option<SegmentEntry>, Option<u64>)> = Vec::new();
    match (&single, &manifest) {
        (None, None) if report.errors.is_empty() => {
            return Err(Error::BadManifest {
                path: dir.join(MANIFEST_NAME),
                reason: "not found: not a log directory".into(),
            })
        }
        (None, None) => {
            for name in fs.list(&dir).ctx("list", &dir)? {
                if parse_segment_file_name(&name).is_some() {
                    plan.push((dir.join(name), None, None));
                }
            }
        }
        (None, Some(m)) => {
            for (i, seg) in m.segments.iter().enumerate() {
                let expected = m
                    .segments
                    .get(i + 1)
                    .map(|next| expected_end(seg.start, next.start));
                plan.push((dir.join(seg.file_name()), Some(*seg), expected));
            }
        }
        (Some(path), m) => {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let segs = m.as_ref().map_or(&[][..], |m| &m.segments[..]);
            let pos = segs.iter().position(|s| s.file_name() == name);
            let expected = pos.and_then(|i| {
                let (seg, next) = (segs.get(i)?, segs.get(i + 1)?);
                Some(expected_end(seg.start, next.start))
            });
            plan.push((
                path.clone(),
                pos.and_then(|i| segs.get(i).copied()),
                expected,
            ));
        }
    }
    for (path, entry, expected) in plan {
        let file = match fs.open(&path) {
            Ok(f) => f,
            Err(e) if single.is_some() => {
                return Err(Error::Io {
                    op: "open",
                    path,
                    source: e,
                })
            }
            Err(e) => {
                report.errors.push(format!(
                    "{}: listed in the manifest but cannot be opened: {e}",
                    path.display()
                ));
                continue;
            }
        };
        let (mut fr, runs, file) = scan(file, &path, expected)?;
        if let (Ok(h), Some(e)) = (&fr.header, entry) {
            if h.seq != e.seq || h.start != e.start {
                report.errors.push(format!(
                    "{}: header says segment {} at position {}, manifest says segment {} at {}",
                    path.display(),
                    h.seq,
                    h.start,
                    e.seq,
                    e.start
                ));
            }
        }
        if fix && !fr.problems.is_empty() {
            match plan_fix(&fr, &runs) {
                Ok(edits) => fr.fix = Some(apply_fix(fs, file, &path, &fr, edits)?),
                Err(why) => fr.unfixable = Some(why),
            }
        }
        report.files.push(fr);
    }
    Ok(report)
}

fn expected_end(start: Lsn, next: Lsn) -> u64 {
    next.0.saturating_sub(start.0) + SEGMENT_HEADER_LEN as u64
}

/// Reads one segment, resynchronising after damage.
fn scan(
    file: Box<dyn File>,
    path: &Path,
    expected: Option<u64>,
) -> Result<(FileReport, Vec<Run>, Box<dyn File>)> {
    let file_len = file.len().ctx("stat", path)?;
    let mut fr = FileReport {
        path: path.to_path_buf(),
        header: Err(String::new()),
        file_len,
        records: 0,
        padding_bytes: 0,
        problems: Vec::new(),
        fix: None,
        unfixable: None,
    };
    let mut reader = match SegmentReader::new(file, path)? {
        Ok(r) => r,
        Err(e) => {
            fr.header = Err(e.to_string());
            return Ok((fr, Vec::new(), dummy_reopen(path)));
        }
    };
    fr.header = Ok(reader.header());
    let mut runs: Vec<Run> = Vec::new();
    let push = |runs: &mut Vec<Run>, offset: u64, size: u64, is_record: bool| match runs.last_mut()
    {
        Some(r) if r.end == offset => {
            r.end += size;
            r.last_item = offset;
            r.records += u64::from(is_record);
        }
        _ => runs.push(Run {
            start: offset,
            end: offset + size,
            last_item: offset,
            records: u64::from(is_record),
        }),
    };
    loop {
        let (offset, reason) = match reader.next_item()? {
            Item::Record { offset, size, .. } => {
                fr.records += 1;
                if let Some(p) = fr.problems.last_mut() {
                    p.records_after += 1;
                }
                push(&mut runs, offset, size, true);
                continue;
            }
            Item::Padding { offset, size } => {
                fr.padding_bytes += size;
                push(&mut runs, offset, size, false);
                continue;
            }
            Item::End => break,
            Item::Incomplete { offset, have, need } => (
                offset,
                format!("incomplete record: {have} of {need} bytes present"),
            ),
            Item::Bad { offset, reason } => (offset, reason.to_string()),
        };
        match find_next_valid(reader.file(), path, offset + 1, file_len)? {
            Some(next) => {
                fr.problems.push(Problem {
                    kind: ProblemKind::Damaged,
                    offset,
                    end: next,
                    reason,
                    records_after: 0,
                });
                reader.seek(next);
            }
            None => {
                let kind = if expected.is_some() {
                    ProblemKind::MissingTail
                } else {
                    ProblemKind::TornTail
                };
                let end = expected.unwrap_or(file_len).max(offset);
                fr.problems.push(Problem {
                    kind,
                    offset,
                    end,
                    reason,
                    records_after: 0,
                });
                break;
            }
        }
    }
    // A sealed segment must end exactly where the next one starts.
    if let Some(exp) = expected {
        let valid_end = fr
            .problems
            .last()
            .filter(|p| p.end >= file_len || p.kind == ProblemKind::MissingTail);
        if valid_end.is_none() && file_len != exp {
            let reason = if file_len < exp {
                format!(
                    "segment ends at offset {file_len} but the next segment starts {} bytes later",
                    exp - file_len
                )
            } else {
                format!(
                    "segment is {} bytes longer than the position of the next segment allows",
                    file_len - exp
                )
            };
            fr.problems.push(Problem {
                kind: ProblemKind::MissingTail,
                offset: file_len.min(exp),
                end: exp,
                reason,
                records_after: 0,
            });
        }
    }
    Ok((fr, runs, reader.into_file()))
}

/// A placeholder file for the unreadable-header case (never written).
fn dummy_reopen(_path: &Path) -> Box<dyn File> {
    struct Nothing;
    impl File for Nothing {
        fn write_at(&mut self, _: u64, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("not open"))
        }
        fn read_at(&self, _: u64, _: &mut [u8]) -> std::io::Result<usize> {
            Ok(0)
        }
        fn sync_data(&mut self) -> std::io::Result<()> {
            Ok(())
        }
        fn set_len(&mut self, _: u64) -> std::io::Result<()> {
            Err(std::io::Error::other("not open"))
        }
        fn len(&self) -> std::io::Result<u64> {
            Ok(0)
        }
    }
    Box::new(Nothing)
}

/// The edits a fix makes: padding regions, a final length, valid records
/// sacrificed.
struct Edits {
    pads: Vec<(u64, u64)>,
    final_len: u64,
    dropped_valid: u64,
}

fn plan_fix(fr: &FileReport, runs: &[Run]) -> std::result::Result<Edits, String> {
    if let Err(e) = &fr.header {
        return Err(format!(
            "unreadable header ({e}); cannot tell where this segment belongs"
        ));
    }
    let mut edits = Edits {
        pads: Vec::new(),
        final_len: fr.file_len,
        dropped_valid: 0,
    };
    for p in &fr.problems {
        if p.kind == ProblemKind::TornTail {
            edits.final_len = p.offset;
            continue;
        }
        if p.kind == ProblemKind::MissingTail {
            edits.final_len = p.end;
        }
        let (mut start, end) = (p.offset, p.end);
        if end < start {
            return Err(format!(
                "segment at offset {start} runs past where the next segment starts"
            ));
        }
        if end == start {
            continue;
        }
        if end - start < RECORD_HEADER_LEN as u64 {
            // Too small for a padding record: take the record before along.
            let prev = runs
                .iter()
                .rev()
                .find(|r| r.end == start && r.start < start);
            match prev {
                Some(r) => {
                    start = r.last_item;
                    edits.dropped_valid += 1;
                }
                None => {
                    return Err(format!(
                        "damaged region at offset {start} is {} bytes, too short to pad",
                        end - start
                    ))
                }
            }
        }
        // Merge with a pad that ends where this one starts.
        match edits.pads.last_mut() {
            Some(last) if last.0 + last.1 == start => last.1 += end - start,
            _ => edits.pads.push((start, end - start)),
        }
    }
    Ok(edits)
}

fn apply_fix(
    fs: &dyn Fs,
    mut file: Box<dyn File>,
    path: &Path,
    fr: &FileReport,
    edits: Edits,
) -> Result<FixAction> {
    // Save every byte about to be overwritten or cut off.
    let mut regions: Vec<(u64, u64)> = edits.pads.clone();
    if edits.final_len < fr.file_len {
        regions.push((edits.final_len, fr.file_len - edits.final_len));
    }
    let mut action = FixAction {
        padded: edits.pads.clone(),
        dropped_valid_records: edits.dropped_valid,
        truncated_to: (edits.final_len != fr.file_len).then_some(edits.final_len),
        saved_to: None,
    };
    let saved_bytes: u64 = regions
        .iter()
        .map(|r| r.1.min(fr.file_len.saturating_sub(r.0)))
        .sum();
    if saved_bytes > 0 {
        let dir = path.parent().unwrap_or(Path::new("."));
        let existing = fs.list(dir).ctx("list", dir)?;
        let base = format!(
            "{}.dropped",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("segment")
        );
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
        let save = dir.join(name);
        let mut out = fs.create(&save).ctx("create", &save)?;
        let mut at = 0u64;
        let mut buf = vec![0u8; CHUNK];
        for (off, len) in &regions {
            let mut done = 0;
            while done < *len {
                let want = usize::try_from((*len - done).min(CHUNK as u64)).unwrap_or(CHUNK);
                let dst = buf.get_mut(..want).unwrap_or_default();
                let n = file.read_full_at(off + done, dst).ctx("read", path)?;
                if n == 0 {
                    break;
                }
                out.write_all_at(at, dst.get(..n).unwrap_or_default())
                    .ctx("write", &save)?;
                at += n as u64;
                done += n as u64;
            }
        }
        out.sync_data().ctx("sync", &save)?;
        fs.sync_dir(dir).ctx("sync directory", dir)?;
        action.saved_to = Some(save);
    }
    for &(off, len) in &edits.pads {
        write_padding(&mut *file, path, off, len)?;
    }
    file.set_len(edits.final_len).ctx("truncate", path)?;
    file.sync_data().ctx("sync", path)?;
    Ok(action)
}

/// Writes padding records covering exactly `[off, off + len)`, `len >= 8`.
fn write_padding(file: &mut dyn File, path: &Path, mut off: u64, mut len: u64) -> Result<()> {
    let max_piece = RECORD_HEADER_LEN as u64 + u64::from(MAX_RECORD_LEN);
    let zeros = vec![0u8; CHUNK];
    while len > 0 {
        let mut piece = len.min(max_piece);
        if len - piece > 0 && len - piece < RECORD_HEADER_LEN as u64 {
            piece -= RECORD_HEADER_LEN as u64; // leave room for one more header
        }
        let body = piece - RECORD_HEADER_LEN as u64;
        let word = PADDING_FLAG | body as u32;
        let mut h = crc32fast::Hasher::new();
        h.update(&word.to_le_bytes());
        let mut left = body;
        while left > 0 {
            let n = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
            h.update(zeros.get(..n).unwrap_or_default());
            left -= n as u64;
        }
        let crc = h.finalize();
        let mut head = [0u8; RECORD_HEADER_LEN];
        head.get_mut(..4)
            .unwrap_or_default()
            .copy_from_slice(&word.to_le_bytes());
        head.get_mut(4..)
            .unwrap_or_default()
            .copy_from_slice(&crc.to_le_bytes());
        file.write_all_at(off, &head).ctx("write", path)?;
        let mut at = off + RECORD_HEADER_LEN as u64;
        let mut left = body;
        while left > 0 {
            let n = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
            file.write_all_at(at, zeros.get(..n).unwrap_or_default())
                .ctx("write", path)?;
            at += n as u64;
            left -= n as u64;
        }
        off += piece;
        len -= piece;
    }
    Ok(())
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.errors {
            writeln!(f, "error: {e}")?;
        }
        for fr in &self.files {
            let name = fr.path.display();
            match &fr.header {
                Err(e) => {
                    writeln!(f, "{name}: bad header: {e}")?;
                    continue;
                }
                Ok(h) => writeln!(
                    f,
                    "{name}: segment {} from position {}, {} bytes, {} valid records{}",
                    h.seq,
                    h.start,
                    fr.file_len,
                    fr.records,
                    if fr.padding_bytes > 0 {
                        format!(", {} bytes of padding", fr.padding_bytes)
                    } else {
                        String::new()
                    }
                )?,
            }
            for p in &fr.problems {
                let what = match p.kind {
                    ProblemKind::Damaged => "damaged",
                    ProblemKind::TornTail => "torn tail",
                    ProblemKind::MissingTail => "missing tail",
                };
                write!(
                    f,
                    "  {what} at offset {}: {}; {} bytes",
                    p.offset,
                    p.reason,
                    p.end - p.offset
                )?;
                if p.kind == ProblemKind::Damaged {
                    write!(
                        f,
                        " until the next valid record at offset {}, then {} valid records",
                        p.end, p.records_after
                    )?;
                }
                writeln!(f)?;
            }
            if let Some(why) = &fr.unfixable {
                writeln!(f, "  cannot fix: {why}")?;
            }
            if let Some(a) = &fr.fix {
                for (off, len) in &a.padded {
                    writeln!(f, "  fixed: dropped {len} bytes at offset {off} (replaced by padding; later records keep their positions)")?;
                }
                if a.dropped_valid_records > 0 {
                    writeln!(
                        f,
                        "  fixed: also dropped {} valid record(s) adjoining the damage",
                        a.dropped_valid_records
                    )?;
                }
                if let Some(len) = a.truncated_to {
                    if len < fr.file_len {
                        writeln!(
                            f,
                            "  fixed: truncated to {len} bytes, dropping {} bytes",
                            fr.file_len - len
                        )?;
                    } else {
                        writeln!(f, "  fixed: extended to {len} bytes with padding")?;
                    }
                }
                if let Some(s) = &a.saved_to {
                    writeln!(f, "  dropped bytes saved to {}", s.display())?;
                }
            }
        }
        let verdict = if self.is_clean() {
            "log is clean"
        } else if self.damage_remains() {
            if self.fix_requested {
                "log is damaged and could not be fully fixed"
            } else {
                "log is damaged; run with --fix to repair"
            }
        } else {
            "log was damaged and is now fixed"
        };
        writeln!(f, "{verdict}")
    }
}
