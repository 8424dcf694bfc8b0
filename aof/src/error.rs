//! The crate's error type. Every variant that concerns a file names it, and
//! every variant about a damaged record gives the byte offset.

use crate::format::{BadRecord, HeaderError, Lsn};
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Errors from opening, recovering, writing or repairing a log.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An I/O call failed.
    Io {
        /// What was being done ("open", "write", "sync", …).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A segment file's header is unreadable.
    BadHeader {
        /// The segment file.
        path: PathBuf,
        /// What is wrong with it.
        reason: HeaderError,
    },
    /// A segment header disagrees with the manifest, or segments do not
    /// follow each other without a gap.
    Inconsistent {
        /// The file concerned.
        path: PathBuf,
        /// What disagrees.
        reason: String,
    },
    /// A damaged record that is not a torn tail: valid records follow it,
    /// or it is in a segment other than the last.
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the damaged record within that file.
        offset: u64,
        /// What is wrong.
        reason: CorruptReason,
        /// The log directory, for the repair hint.
        dir: PathBuf,
    },
    /// The manifest cannot be parsed or fails its checksum.
    BadManifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A payload larger than [`crate::format::MAX_RECORD_LEN`].
    RecordTooLarge {
        /// Its length.
        len: usize,
    },
    /// `install_snapshot` was given a position the log has not reached.
    SnapshotBeyondLog {
        /// The position the snapshot claims to cover.
        covered: Lsn,
        /// The log's current end.
        end: Lsn,
    },
    /// `install_snapshot` was given a position older than the first record
    /// the log still holds: replay would miss the records in between.
    SnapshotTooOld {
        /// The position the snapshot claims to cover.
        covered: Lsn,
        /// Where the log's first segment starts.
        first: Lsn,
    },
    /// A snapshot name that cannot go in the manifest (empty, or with a
    /// line break).
    InvalidSnapshotName {
        /// The name given.
        name: String,
    },
    /// The log was closed.
    Closed,
}

/// Why a record is considered damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptReason {
    /// The record's bytes are wrong.
    Record(BadRecord),
    /// A segment other than the last ends in the middle of a record.
    Truncated {
        /// Bytes present.
        have: u64,
        /// Bytes the record needs.
        need: u64,
    },
}

impl fmt::Display for CorruptReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptReason::Record(r) => r.fmt(f),
            CorruptReason::Truncated { have, need } => write!(
                f,
                "segment ends inside a record ({have} of {need} bytes present) but it is not the last segment"
            ),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, path, source } => write!(f, "{op} {}: {source}", path.display()),
            Error::BadHeader { path, reason } => {
                write!(f, "bad segment header in {}: {reason}", path.display())
            }
            Error::Inconsistent { path, reason } => {
                write!(f, "inconsistent log at {}: {reason}", path.display())
            }
            Error::Corrupt {
                path,
                offset,
                reason,
                dir,
            } => write!(
                f,
                "damaged record in {} at offset {offset}: {reason}; records after it cannot be \
                 trusted. Run `basalt-check-aof --fix {}` to salvage the valid records after the \
                 damage, or start with load-until-damage to load only the records before it",
                path.display(),
                dir.display()
            ),
            Error::BadManifest { path, reason } => {
                write!(f, "bad manifest {}: {reason}", path.display())
            }
            Error::RecordTooLarge { len } => write!(
                f,
                "record of {len} bytes exceeds the maximum of {} bytes",
                crate::format::MAX_RECORD_LEN
            ),
            Error::SnapshotBeyondLog { covered, end } => write!(
                f,
                "snapshot claims to cover log position {covered} but the log ends at {end}"
            ),
            Error::SnapshotTooOld { covered, first } => write!(
                f,
                "snapshot covers only up to log position {covered} but the log starts at {first}; \
                 the records in between are gone"
            ),
            Error::InvalidSnapshotName { name } => {
                write!(
                    f,
                    "invalid snapshot file name {name:?}: must be non-empty, without line breaks"
                )
            }
            Error::Closed => f.write_str("the log is closed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Shorthand for `Result<T, aof::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches an operation and a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            op,
            path: path.into(),
            source,
        })
    }
}
