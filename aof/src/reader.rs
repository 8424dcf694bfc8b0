//! Sequential reading of one segment file in constant memory: a buffer of
//! [`CHUNK`] bytes (grown only for a record larger than that), refilled with
//! positional reads. Used by recovery and by the check/repair tool.

use crate::error::{IoContext, Result};
use crate::format::{
    decode_record, read_u32, record_crc, BadRecord, Decoded, SegmentHeader, MAX_RECORD_LEN,
    PADDING_FLAG, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use crate::fs::File;
use std::path::{Path, PathBuf};

/// Bytes read per refill.
pub const CHUNK: usize = 1 << 20;

/// One step of a segment scan.
#[derive(Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// A data record at file offset `offset`, `size` bytes long in the file.
    Record {
        offset: u64,
        size: u64,
        payload: &'a [u8],
    },
    /// A padding record left by the repair tool.
    Padding { offset: u64, size: u64 },
    /// The file ends in the middle of a record starting at `offset`.
    Incomplete { offset: u64, have: u64, need: u64 },
    /// The bytes at `offset` are not a record.
    Bad { offset: u64, reason: BadRecord },
    /// Clean end of file.
    End,
}

/// Scans the records of one segment file, in order.
pub struct SegmentReader {
    file: Box<dyn File>,
    path: PathBuf,
    file_len: u64,
    header: SegmentHeader,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_start: u64,
    /// Read cursor within `buf`.
    pos: usize,
    /// Range in `buf` of the payload of the last record returned.
    last: (usize, usize),
}

impl SegmentReader {
    /// Opens a scan: reads and verifies the header. The header error, if
    /// any, is returned as the inner `Err` so callers can decide.
    pub fn new(
        file: Box<dyn File>,
        path: &Path,
    ) -> Result<std::result::Result<SegmentReader, crate::format::HeaderError>> {
        let file_len = file.len().ctx("stat", path)?;
        let mut head = [0u8; SEGMENT_HEADER_LEN];
        let n = file.read_full_at(0, &mut head).ctx("read", path)?;
        let header = match SegmentHeader::decode(head.get(..n).unwrap_or_default()) {
            Ok(h) => h,
            Err(e) => return Ok(Err(e)),
        };
        Ok(Ok(SegmentReader {
            file,
            path: path.to_path_buf(),
            file_len,
            header,
            buf: Vec::new(),
            buf_start: SEGMENT_HEADER_LEN as u64,
            pos: 0,
            last: (0, 0),
        }))
    }

    /// The decoded header.
    pub fn header(&self) -> SegmentHeader {
        self.header
    }

    /// Length of the file when the scan started.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// File offset of the next record.
    pub fn offset(&self) -> u64 {
        self.buf_start + self.pos as u64
    }

    /// The underlying file (for resynchronisation scans).
    pub fn file(&self) -> &dyn File {
        &*self.file
    }

    /// Gives the file back.
    pub fn into_file(self) -> Box<dyn File> {
        self.file
    }

    /// Payload of the last record [`SegmentReader::next_item`] returned.
    pub fn last_payload(&self) -> &[u8] {
        self.buf.get(self.last.0..self.last.1).unwrap_or_default()
    }

    /// Moves the cursor to `offset` (a record boundary found by a resync).
    pub fn seek(&mut self, offset: u64) {
        self.buf.clear();
        self.buf_start = offset;
        self.pos = 0;
        self.last = (0, 0);
    }

    /// The next item.
    pub fn next_item(&mut self) -> Result<Item<'_>> {
        loop {
            let offset = self.offset();
            if offset >= self.file_len {
                return Ok(Item::End);
            }
            let avail = self.buf.get(self.pos..).unwrap_or_default();
            let decoded = decode_record(avail);
            let zero_head = avail
                .get(..RECORD_HEADER_LEN)
                .is_some_and(|h| h.iter().all(|&b| b == 0));
            if zero_head && matches!(decoded, Decoded::Bad(_)) && self.zero_to_end(offset)? {
                // Space the writer zero-filled ahead of its appends (see
                // FORMAT.md): the records end here.
                self.file_len = offset;
                return Ok(Item::End);
            }
            let need = match decoded {
                Decoded::Incomplete { need } => need,
                Decoded::Bad(reason) => return Ok(Item::Bad { offset, reason }),
                Decoded::Padding { size } => {
                    self.pos += size;
                    return Ok(Item::Padding {
                        offset,
                        size: size as u64,
                    });
                }
                Decoded::Record { size, .. } => {
                    let start = self.pos;
                    self.pos += size;
                    self.last = (start + RECORD_HEADER_LEN, start + size);
                    let payload = self
                        .buf
                        .get(start + RECORD_HEADER_LEN..start + size)
                        .unwrap_or_default();
                    return Ok(Item::Record {
                        offset,
                        size: size as u64,
                        payload,
                    });
                }
            };
            let left_in_file = self.file_len - offset;
            if (need as u64) > left_in_file {
                if self.zero_to_end(offset)? {
                    self.file_len = offset;
                    return Ok(Item::End);
                }
                return Ok(Item::Incomplete {
                    offset,
                    have: left_in_file,
                    need: need as u64,
                });
            }
            let before = self.buf.len() - self.pos;
            self.refill(need)?;
            if self.buf.len() - self.pos <= before {
                // The file is shorter than when the scan began.
                return Ok(Item::Incomplete {
                    offset,
                    have: before as u64,
                    need: need as u64,
                });
            }
        }
    }

    /// Whether every byte from `offset` to the end of the file is zero.
    fn zero_to_end(&self, offset: u64) -> Result<bool> {
        let mut chunk = vec![0u8; CHUNK.min(1 << 16)];
        let mut o = offset;
        while o < self.file_len {
            let len =
                usize::try_from(self.file_len - o).map_or(chunk.len(), |l| l.min(chunk.len()));
            let Some(dst) = chunk.get_mut(..len) else {
                break;
            };
            let n = self.file.read_full_at(o, dst).ctx("read", &self.path)?;
            if n == 0 {
                break;
            }
            if chunk.get(..n).unwrap_or_default().iter().any(|&b| b != 0) {
                return Ok(false);
            }
            o += n as u64;
        }
        Ok(true)
    }

    /// Discards consumed bytes and reads so that at least `need` bytes (or
    /// the rest of the file) are buffered from the cursor.
    fn refill(&mut self, need: usize) -> Result<()> {
        self.buf.drain(..self.pos.min(self.buf.len()));
        self.last = (0, 0);
        self.buf_start += self.pos as u64;
        self.pos = 0;
        let have = self.buf.len();
        let want = need.max(CHUNK);
        let left = usize::try_from(self.file_len - self.buf_start).unwrap_or(usize::MAX);
        let target = want.min(left);
        if target <= have {
            return Ok(());
        }
        self.buf.resize(target, 0);
        let dst = self.buf.get_mut(have..).unwrap_or_default();
        let n = self
            .file
            .read_full_at(self.buf_start + have as u64, dst)
            .ctx("read", &self.path)?;
        self.buf.truncate(have + n);
        Ok(())
    }
}

/// Looks for the first offset in `[from, end)` where a valid record
/// (plausible length, within the file, matching checksum) starts.
/// Reads in chunks; payloads are checksummed as they stream in.
pub fn find_next_valid(file: &dyn File, path: &Path, from: u64, end: u64) -> Result<Option<u64>> {
    let mut win: Vec<u8> = Vec::new();
    let mut win_start = from;
    let mut o = from;
    while o + RECORD_HEADER_LEN as u64 <= end {
        let rel = (o - win_start) as usize;
        if rel + RECORD_HEADER_LEN > win.len() {
            win_start = o;
            let len = usize::try_from((end - o).min(CHUNK as u64)).unwrap_or(CHUNK);
            win.resize(len, 0);
            let n = file.read_full_at(o, &mut win).ctx("read", path)?;
            win.truncate(n);
            if n < RECORD_HEADER_LEN {
                return Ok(None);
            }
            continue;
        }
        let word = read_u32(&win, rel);
        let stored = read_u32(&win, rel + 4);
        let len = word & !PADDING_FLAG;
        let total = RECORD_HEADER_LEN as u64 + u64::from(len);
        if len <= MAX_RECORD_LEN && o + total <= end {
            let body = rel + RECORD_HEADER_LEN..rel + total as usize;
            let crc = match win.get(body) {
                Some(payload) => Some(record_crc(word, payload)),
                // A payload beyond the window costs a long read: first check
                // that the two headers that would follow look like headers,
                // which rejects nearly every false candidate for free.
                None if chain_plausible(file, path, o + total, end, 2)? => Some(stream_crc(
                    file,
                    path,
                    word,
                    o + RECORD_HEADER_LEN as u64,
                    u64::from(len),
                )?),
                None => None,
            };
            if crc == Some(stored) {
                return Ok(Some(o));
            }
        }
        o += 1;
    }
    Ok(None)
}

/// Whether `depth` record headers starting at `pos` look plausible: each
/// has a length word within [`MAX_RECORD_LEN`], or the file ends (cleanly
/// or inside a header, as a torn tail would).
fn chain_plausible(
    file: &dyn File,
    path: &Path,
    mut pos: u64,
    end: u64,
    depth: u32,
) -> Result<bool> {
    for _ in 0..depth {
        if pos + RECORD_HEADER_LEN as u64 > end {
            return Ok(true);
        }
        let mut head = [0u8; 4];
        if file.read_full_at(pos, &mut head).ctx("read", path)? < 4 {
            return Ok(true);
        }
        let len = u32::from_le_bytes(head) & !PADDING_FLAG;
        if len > MAX_RECORD_LEN {
            return Ok(false);
        }
        pos += RECORD_HEADER_LEN as u64 + u64::from(len);
    }
    Ok(true)
}

fn stream_crc(file: &dyn File, path: &Path, word: u32, mut at: u64, mut len: u64) -> Result<u32> {
    let mut h = crc32fast::Hasher::new();
    h.update(&word.to_le_bytes());
    let mut buf = vec![0u8; CHUNK];
    while len > 0 {
        let n = usize::try_from(len.min(CHUNK as u64)).unwrap_or(CHUNK);
        let dst = buf.get_mut(..n).unwrap_or_default();
        let got = file.read_full_at(at, dst).ctx("read", path)?;
        h.update(dst.get(..got).unwrap_or_default());
        if got < n {
            break;
        }
        at += n as u64;
        len -= n as u64;
    }
    Ok(h.finalize())
}
