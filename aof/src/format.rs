//! On-disk constants and the byte-level encoding of segment headers and
//! records. `FORMAT.md` draws the same layout; the two must change together.
//!
//! Everything multi-byte is little-endian.

use std::fmt;

/// First 8 bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"BSLTAOF\0";
/// Segment format version written into every header.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the segment header: magic (8) + version (4) + seq (8) +
/// start position (8) + header crc32 (4).
pub const SEGMENT_HEADER_LEN: usize = 32;
/// Size of a record header: len (4) + crc32 (4).
pub const RECORD_HEADER_LEN: usize = 8;
/// Bit 31 of the length word marks a *padding* record: written only by the
/// repair tool in place of bytes it had to drop, so that the positions of
/// the records after it do not move. Recovery skips padding records.
pub const PADDING_FLAG: u32 = 0x8000_0000;
/// Largest payload a record may carry (512 MiB, Redis's `proto-max-bulk-len`).
/// A larger length word is never produced by the writer, so recovery treats
/// it as damage.
pub const MAX_RECORD_LEN: u32 = 512 * 1024 * 1024;

/// Name of the manifest file inside the log directory.
pub const MANIFEST_NAME: &str = "MANIFEST";
/// Temporary name the manifest is written under before the atomic rename.
pub const MANIFEST_TMP_NAME: &str = "MANIFEST.tmp";
/// First line of the manifest.
pub const MANIFEST_MAGIC: &str = "basalt-aof-manifest 1";

/// A position in the log: the number of record bytes (headers included,
/// segment headers excluded) written since the log was created. A record's
/// position is the position *just after* it, so "durable up to P" means
/// every record whose position is `<= P` is on stable storage, and a
/// snapshot that "covers P" contains the effect of exactly those records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// File name of segment number `seq`.
pub fn segment_file_name(seq: u64) -> String {
    format!("segment-{seq:020}.aof")
}

/// Inverse of [`segment_file_name`].
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("segment-")?.strip_suffix(".aof")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The decoded header of a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Segment sequence number (1, 2, 3, … in log order).
    pub seq: u64,
    /// Log position of the first byte after the header.
    pub start: Lsn,
}

/// Why a header could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than [`SEGMENT_HEADER_LEN`] bytes.
    Short(usize),
    /// The magic bytes are wrong: not a Basalt log segment.
    BadMagic,
    /// A version this build does not read.
    UnsupportedVersion(u32),
    /// The header's own checksum does not match.
    BadChecksum,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Short(n) => write!(
                f,
                "file is {n} bytes, shorter than the {SEGMENT_HEADER_LEN}-byte header"
            ),
            HeaderError::BadMagic => f.write_str("bad magic: not a Basalt log segment"),
            HeaderError::UnsupportedVersion(v) => {
                write!(
                    f,
                    "format version {v} is not supported (this build reads {FORMAT_VERSION})"
                )
            }
            HeaderError::BadChecksum => f.write_str("header checksum mismatch"),
        }
    }
}

impl SegmentHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut out = [0u8; SEGMENT_HEADER_LEN];
        let (magic, rest) = out.split_at_mut(8);
        magic.copy_from_slice(&SEGMENT_MAGIC);
        let (version, rest) = rest.split_at_mut(4);
        version.copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        let (seq, rest) = rest.split_at_mut(8);
        seq.copy_from_slice(&self.seq.to_le_bytes());
        let (start, _) = rest.split_at_mut(8);
        start.copy_from_slice(&self.start.0.to_le_bytes());
        let crc = crc32fast::hash(out.get(..28).unwrap_or_default());
        if let Some(slot) = out.get_mut(28..32) {
            slot.copy_from_slice(&crc.to_le_bytes());
        }
        out
    }

    /// Decodes and verifies a header from the first bytes of a file.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, HeaderError> {
        let Some(h) = bytes.get(..SEGMENT_HEADER_LEN) else {
            return Err(HeaderError::Short(bytes.len()));
        };
        if h.get(..8) != Some(&SEGMENT_MAGIC[..]) {
            return Err(HeaderError::BadMagic);
        }
        let version = read_u32(h, 8);
        if version != FORMAT_VERSION {
            return Err(HeaderError::UnsupportedVersion(version));
        }
        let crc = read_u32(h, 28);
        if crc32fast::hash(h.get(..28).unwrap_or_default()) != crc {
            return Err(HeaderError::BadChecksum);
        }
        Ok(SegmentHeader {
            seq: read_u64(h, 12),
            start: Lsn(read_u64(h, 20)),
        })
    }
}

/// Reads a little-endian u32 at `at`; 0 if out of bounds (callers check
/// lengths first).
pub(crate) fn read_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

pub(crate) fn read_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// The record checksum: crc32 (IEEE, as `crc32fast`) over the 4 length
/// bytes followed by the payload. Covering the length means a zero-filled
/// region (len 0, crc 0) is never mistaken for a valid empty record, and a
/// damaged length is caught even when the bytes it points at happen to
/// checksum.
pub fn record_crc(len_word: u32, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len_word.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Appends one framed record to `out`.
pub fn encode_record(payload: &[u8], out: &mut Vec<u8>) {
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&record_crc(len, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Appends a padding record occupying exactly `total` bytes (`total >= 8`).
pub fn encode_padding(total: usize, out: &mut Vec<u8>) {
    let body = total.saturating_sub(RECORD_HEADER_LEN);
    let zeros = vec![0u8; body];
    let word = PADDING_FLAG | body as u32;
    out.extend_from_slice(&word.to_le_bytes());
    out.extend_from_slice(&record_crc(word, &zeros).to_le_bytes());
    out.extend_from_slice(&zeros);
}

/// What [`decode_record`] found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A valid data record of `size` bytes (header included).
    Record { payload: &'a [u8], size: usize },
    /// A valid padding record of `size` bytes.
    Padding { size: usize },
    /// The buffer ends before the record does; `need` is the total size the
    /// record would have (or 8 if even the header is incomplete).
    Incomplete { need: usize },
    /// The bytes cannot be a record.
    Bad(BadRecord),
}

/// Why bytes are not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRecord {
    /// Length word above [`MAX_RECORD_LEN`].
    LengthTooLarge(u32),
    /// Checksum mismatch.
    Checksum { stored: u32, computed: u32 },
}

impl fmt::Display for BadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadRecord::LengthTooLarge(n) => {
                write!(f, "record length {n} exceeds the maximum {MAX_RECORD_LEN}")
            }
            BadRecord::Checksum { stored, computed } => {
                write!(
                    f,
                    "record checksum mismatch (stored {stored:08x}, computed {computed:08x})"
                )
            }
        }
    }
}

/// Decodes the record at the start of `buf`.
pub fn decode_record(buf: &[u8]) -> Decoded<'_> {
    if buf.len() < RECORD_HEADER_LEN {
        return Decoded::Incomplete {
            need: RECORD_HEADER_LEN,
        };
    }
    let word = read_u32(buf, 0);
    let stored = read_u32(buf, 4);
    let len = word & !PADDING_FLAG;
    if len > MAX_RECORD_LEN {
        return Decoded::Bad(BadRecord::LengthTooLarge(len));
    }
    let size = RECORD_HEADER_LEN + len as usize;
    let Some(payload) = buf.get(RECORD_HEADER_LEN..size) else {
        return Decoded::Incomplete { need: size };
    };
    let computed = record_crc(word, payload);
    if computed != stored {
        return Decoded::Bad(BadRecord::Checksum { stored, computed });
    }
    if word & PADDING_FLAG != 0 {
        Decoded::Padding { size }
    } else {
        Decoded::Record { payload, size }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = SegmentHeader {
            seq: 7,
            start: Lsn(12345),
        };
        let bytes = h.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(h));
        let mut bad = bytes;
        bad[15] ^= 1;
        assert_eq!(SegmentHeader::decode(&bad), Err(HeaderError::BadChecksum));
        assert_eq!(
            SegmentHeader::decode(&bytes[..10]),
            Err(HeaderError::Short(10))
        );
    }

    #[test]
    fn zeroes_are_not_a_record() {
        assert!(matches!(decode_record(&[0u8; 64]), Decoded::Bad(_)));
    }

    #[test]
    fn record_and_padding_round_trip() {
        let mut buf = Vec::new();
        encode_record(b"hello", &mut buf);
        encode_padding(20, &mut buf);
        assert_eq!(
            decode_record(&buf),
            Decoded::Record {
                payload: b"hello",
                size: 13
            }
        );
        assert_eq!(decode_record(&buf[13..]), Decoded::Padding { size: 20 });
        assert_eq!(decode_record(&buf[..12]), Decoded::Incomplete { need: 13 });
    }

    /// Golden bytes, computed independently of this code (Python's zlib):
    /// they pin the format FORMAT.md describes.
    #[test]
    fn golden_bytes() {
        let mut rec = Vec::new();
        encode_record(b"abc", &mut rec);
        assert_eq!(rec, [3, 0, 0, 0, 0x33, 0x5d, 0xe1, 0x66, b'a', b'b', b'c']);
        let h = SegmentHeader {
            seq: 2,
            start: Lsn(100),
        }
        .encode();
        assert_eq!(&h[..8], b"BSLTAOF\0");
        assert_eq!(&h[8..12], &[1, 0, 0, 0]);
        assert_eq!(&h[12..20], &[2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&h[20..28], &[100, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&h[28..], &0xd82d_5934u32.to_le_bytes());
    }

    #[test]
    fn segment_names() {
        assert_eq!(parse_segment_file_name(&segment_file_name(42)), Some(42));
        assert_eq!(parse_segment_file_name("segment-42.aof"), None);
    }
}
