//! Byte sources for the reader: a borrowed slice (files are memory-mapped)
//! and any `std::io::Read`.
//!
//! Both count offsets from the start of the input, refuse a length that the
//! input cannot satisfy before allocating for it, and can compute the CRC64
//! of everything consumed so far.

use crate::crc64::Crc64;
use crate::error::{Error, Result};
use std::io::Read;

/// What the decoder needs from a byte source.
pub trait Input {
    /// Offset of the next byte.
    fn offset(&self) -> u64;
    /// Bytes left, when known (slices); `None` for streams.
    fn remaining(&self) -> Option<u64>;
    /// Consume one byte.
    fn read_u8(&mut self, what: &'static str) -> Result<u8>;
    /// Consume exactly `n` bytes and borrow them until the next call.
    fn take(&mut self, n: u64, what: &'static str) -> Result<&[u8]>;
    /// CRC64 of all bytes consumed so far.
    fn crc_so_far(&mut self) -> u64;
    /// Start recording consumed bytes (used to keep module values raw).
    fn begin_capture(&mut self);
    /// Stop recording and return the bytes consumed since `begin_capture`.
    fn end_capture(&mut self) -> Vec<u8>;

    /// Consume `N` bytes into an array.
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// A capacity hint for `count` items of at least one byte each that never
    /// exceeds what the input could hold.
    fn capacity_for(&self, count: u64) -> usize {
        let cap = self.remaining().unwrap_or(4096).min(count);
        usize::try_from(cap).unwrap_or(usize::MAX).min(1 << 24)
    }
}

/// A borrowed byte slice.
pub struct SliceInput<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
    capture: Option<usize>,
    /// CRC64 of `data[..crc_pos]`: folded in as the reader goes (see
    /// `Reader::digest_consumed`) so that a mapped file's pages need not be
    /// touched again at the end.
    crc: Crc64,
    crc_pos: usize,
}

impl<'a> SliceInput<'a> {
    /// Read `data`; offsets start at 0.
    pub fn new(data: &'a [u8]) -> Self {
        SliceInput {
            data,
            pos: 0,
            base: 0,
            capture: None,
            crc: Crc64::new(),
            crc_pos: 0,
        }
    }

    /// Read `data`, reporting offsets starting at `base`.
    pub fn with_base(data: &'a [u8], base: u64) -> Self {
        SliceInput {
            data,
            pos: 0,
            base,
            capture: None,
            crc: Crc64::new(),
            crc_pos: 0,
        }
    }

    /// Bytes not consumed yet.
    pub fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }
}

impl Input for SliceInput<'_> {
    #[inline]
    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    #[inline]
    fn remaining(&self) -> Option<u64> {
        Some((self.data.len() - self.pos) as u64)
    }

    #[inline]
    fn read_u8(&mut self, what: &'static str) -> Result<u8> {
        match self.data.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(Error::Truncated {
                offset: self.offset(),
                expected: what,
            }),
        }
    }

    #[inline]
    fn take(&mut self, n: u64, what: &'static str) -> Result<&[u8]> {
        let avail = (self.data.len() - self.pos) as u64;
        if n > avail {
            return Err(if n > 16 {
                Error::TooLong {
                    offset: self.offset(),
                    what,
                    claimed: n,
                    available: avail,
                }
            } else {
                Error::Truncated {
                    offset: self.offset(),
                    expected: what,
                }
            });
        }
        let start = self.pos;
        self.pos += n as usize;
        self.data
            .get(start..self.pos)
            .ok_or_else(|| Error::Truncated {
                offset: self.base + start as u64,
                expected: what,
            })
    }

    fn crc_so_far(&mut self) -> u64 {
        self.crc
            .update(self.data.get(self.crc_pos..self.pos).unwrap_or(&[]));
        self.crc_pos = self.pos;
        self.crc.value()
    }

    fn begin_capture(&mut self) {
        self.capture = Some(self.pos);
    }

    fn end_capture(&mut self) -> Vec<u8> {
        let start = self.capture.take().unwrap_or(self.pos);
        self.data.get(start..self.pos).unwrap_or(&[]).to_vec()
    }
}

const CHUNK: usize = 64 * 1024;

/// Any `Read`, buffered internally. Memory use is bounded by the largest
/// single string in the input plus a 64 KiB read chunk.
pub struct ReadInput<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    base: u64,
    crc: Crc64,
    crc_pos: usize,
    capture: Option<Vec<u8>>,
}

impl<R: Read> ReadInput<R> {
    /// Wrap a reader.
    pub fn new(inner: R) -> Self {
        ReadInput {
            inner,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            base: 0,
            crc: Crc64::new(),
            crc_pos: 0,
            capture: None,
        }
    }

    /// The reader and the bytes it had buffered but the decoder did not
    /// consume (for a replication stream: the commands after the RDB).
    pub fn into_parts(self) -> (R, Vec<u8>) {
        let rest = self.buf.get(self.pos..self.end).unwrap_or(&[]).to_vec();
        (self.inner, rest)
    }

    /// Make `n` bytes available at `pos`.
    #[inline(always)]
    fn ensure(&mut self, n: usize, what: &'static str) -> Result<()> {
        if self.end - self.pos >= n {
            return Ok(());
        }
        self.refill(n, what)
    }

    /// The slow path of [`Self::ensure`] (once per buffer of input).
    #[cold]
    #[inline(never)]
    fn refill(&mut self, n: usize, what: &'static str) -> Result<()> {
        // Digest and drop consumed bytes, then move the unread tail to the front.
        self.crc
            .update(self.buf.get(self.crc_pos..self.pos).unwrap_or(&[]));
        self.buf.copy_within(self.pos..self.end, 0);
        self.base += self.pos as u64;
        self.end -= self.pos;
        self.pos = 0;
        self.crc_pos = 0;
        while self.end < n {
            // Grow gradually so a bogus length cannot allocate more than the
            // data actually present plus one chunk.
            let want = (self.end + CHUNK).min(n.max(CHUNK));
            if self.buf.len() < want {
                self.buf.resize(want, 0);
            }
            let dst = self.buf.get_mut(self.end..).unwrap_or(&mut []);
            let got = match self.inner.read(dst) {
                Ok(g) => g,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Io(e)),
            };
            if got == 0 {
                return Err(if n > 16 {
                    Error::TooLong {
                        offset: self.base,
                        what,
                        claimed: n as u64,
                        available: self.end as u64,
                    }
                } else {
                    Error::Truncated {
                        offset: self.base + self.end as u64,
                        expected: what,
                    }
                });
            }
            self.end += got;
        }
        Ok(())
    }
}

impl<R: Read> Input for ReadInput<R> {
    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn remaining(&self) -> Option<u64> {
        None
    }

    fn read_u8(&mut self, what: &'static str) -> Result<u8> {
        self.ensure(1, what)?;
        let b = self.buf.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        if let Some(c) = self.capture.as_mut() {
            c.push(b);
        }
        Ok(b)
    }

    fn take(&mut self, n: u64, what: &'static str) -> Result<&[u8]> {
        let n = usize::try_from(n).map_err(|_| Error::TooLong {
            offset: self.offset(),
            what,
            claimed: n,
            available: 0,
        })?;
        self.ensure(n, what)?;
        let start = self.pos;
        self.pos += n;
        let s = self.buf.get(start..self.pos).unwrap_or(&[]);
        if let Some(c) = self.capture.as_mut() {
            c.extend_from_slice(s);
        }
        Ok(s)
    }

    fn crc_so_far(&mut self) -> u64 {
        self.crc
            .update(self.buf.get(self.crc_pos..self.pos).unwrap_or(&[]));
        self.crc_pos = self.pos;
        self.crc.value()
    }

    fn begin_capture(&mut self) {
        self.capture = Some(Vec::new());
    }

    fn end_capture(&mut self) -> Vec<u8> {
        self.capture.take().unwrap_or_default()
    }
}
