//! The crate's error type.
//!
//! Every decoding error names the byte offset where the problem was found and
//! what the reader expected there. Offsets are counted from the first byte of
//! the input (the `R` of `REDIS`, or the type byte of a DUMP payload). When
//! the problem is inside a blob (ziplist, listpack, intset, zipmap) that was
//! stored LZF-compressed, the offset is the blob's position in the file and
//! the message adds the position inside the decompressed blob.

use std::fmt;

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong reading or writing RDB data.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The underlying reader or writer failed.
    Io(std::io::Error),
    /// The first 9 bytes are not `REDIS%04d` or `VALKEY%03d`.
    BadMagic {
        /// The bytes found (up to 9).
        found: Vec<u8>,
    },
    /// The header names a version this crate cannot read.
    UnsupportedVersion {
        /// `REDIS` or `VALKEY`.
        magic: &'static str,
        /// Version number from the header or payload trailer.
        version: u32,
    },
    /// The input ended before a complete item.
    Truncated {
        /// Offset at which more bytes were needed.
        offset: u64,
        /// What was being read.
        expected: &'static str,
    },
    /// A length prefix claims more bytes or elements than the input can hold.
    TooLong {
        /// Offset of the length prefix's item.
        offset: u64,
        /// What was being read.
        what: &'static str,
        /// Claimed length.
        claimed: u64,
        /// Bytes actually left in the input (when known).
        available: u64,
    },
    /// The bytes are structurally invalid.
    Corrupt {
        /// Offset of the offending item.
        offset: u64,
        /// What was expected, and what was found.
        detail: String,
    },
    /// A value type or opcode byte that is not defined for this format.
    UnknownType {
        /// Offset of the type byte.
        offset: u64,
        /// The byte.
        byte: u8,
        /// Format the table was chosen for, e.g. `REDIS 10`.
        format: String,
    },
    /// A defined but unsupported construct (for example a Redis 7.4 RC
    /// format, or module data when modules are configured to fail).
    Unsupported {
        /// Offset of the construct.
        offset: u64,
        /// What it is.
        what: String,
    },
    /// The stored CRC64 does not match the data.
    Checksum {
        /// Offset of the 8-byte checksum.
        offset: u64,
        /// Checksum in the file.
        stored: u64,
        /// Checksum computed over the data.
        computed: u64,
    },
    /// The writer was asked to store something the target format cannot hold.
    Unrepresentable {
        /// Target format, e.g. `REDIS 10`.
        target: String,
        /// What cannot be represented.
        what: String,
    },
}

impl Error {
    pub(crate) fn corrupt(offset: u64, detail: impl Into<String>) -> Error {
        Error::Corrupt {
            offset,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::BadMagic { found } => write!(
                f,
                "at byte offset 0: expected `REDIS` or `VALKEY` magic and a version number, found {:?}",
                String::from_utf8_lossy(found)
            ),
            Error::UnsupportedVersion { magic, version } => {
                write!(f, "at byte offset 0: unsupported format version {magic} {version}")
            }
            Error::Truncated { offset, expected } => {
                write!(f, "at byte offset {offset}: input ended, expected {expected}")
            }
            Error::TooLong { offset, what, claimed, available } => write!(
                f,
                "at byte offset {offset}: {what} claims length {claimed} but only {available} bytes remain"
            ),
            Error::Corrupt { offset, detail } => write!(f, "at byte offset {offset}: {detail}"),
            Error::UnknownType { offset, byte, format } => write!(
                f,
                "at byte offset {offset}: expected a value type or opcode, found unknown byte {byte} for {format}"
            ),
            Error::Unsupported { offset, what } => {
                write!(f, "at byte offset {offset}: unsupported: {what}")
            }
            Error::Checksum { offset, stored, computed } => write!(
                f,
                "at byte offset {offset}: CRC64 mismatch, stored {stored:016x}, computed {computed:016x}"
            ),
            Error::Unrepresentable { target, what } => {
                write!(f, "cannot write {what} in format {target}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl Error {
    /// The byte offset the error refers to, if it has one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            Error::BadMagic { .. } | Error::UnsupportedVersion { .. } => Some(0),
            Error::Truncated { offset, .. }
            | Error::TooLong { offset, .. }
            | Error::Corrupt { offset, .. }
            | Error::UnknownType { offset, .. }
            | Error::Unsupported { offset, .. }
            | Error::Checksum { offset, .. } => Some(*offset),
            Error::Io(_) | Error::Unrepresentable { .. } => None,
        }
    }
}
