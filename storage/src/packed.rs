//! `Packed`: the compact encoding of small collections (Redis's listpack).
//!
//! One exactly-sized heap buffer: a 4-byte little-endian entry count, then
//! entries back to back, each a LEB128 length followed by its bytes. A
//! 10-field hash of short strings costs one allocation of ~150 bytes
//! instead of 20 separately allocated strings. Every operation is a linear
//! scan or a splice (a copy of the buffer); the owners keep collections in
//! this encoding only while they are small (the `*-max-listpack-*`
//! limits), where a scan of a few hundred bytes beats chasing pointers.

const HDR: usize = 4;

pub struct Packed {
    buf: Box<[u8]>,
}

impl Default for Packed {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for Packed {
    fn clone(&self) -> Self {
        Packed {
            buf: self.buf.clone(),
        }
    }
}

fn varint_len(mut n: usize) -> usize {
    let mut l = 1;
    while n >= 0x80 {
        n >>= 7;
        l += 1;
    }
    l
}

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Decodes the entry at `off`: (bytes, offset of the next entry).
#[inline]
fn entry_at(buf: &[u8], mut off: usize) -> (&[u8], usize) {
    let mut n = 0usize;
    let mut shift = 0;
    loop {
        let b = buf[off];
        off += 1;
        n |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    (&buf[off..off + n], off + n)
}

/// The encoded size of an entry holding `n` bytes.
pub fn entry_size(n: usize) -> usize {
    varint_len(n) + n
}

impl Packed {
    pub fn new() -> Self {
        Packed {
            buf: vec![0u8; HDR].into_boxed_slice(),
        }
    }

    /// Number of entries.
    #[inline]
    pub fn count(&self) -> usize {
        u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize
    }

    /// Total bytes of the buffer (memory accounting).
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Offset of the first entry.
    pub const fn start(&self) -> usize {
        HDR
    }

    /// Offset just past the last entry.
    pub fn end(&self) -> usize {
        self.buf.len()
    }

    pub fn iter(&self) -> PackedIter<'_> {
        PackedIter {
            buf: &self.buf,
            off: HDR,
        }
    }

    /// The entry at `off` and the offset after it.
    #[inline]
    pub fn at(&self, off: usize) -> (&[u8], usize) {
        entry_at(&self.buf, off)
    }

    /// Offsets of every entry (for backward walks and index access).
    pub fn offsets(&self) -> Vec<usize> {
        let mut v = Vec::with_capacity(self.count());
        let mut off = HDR;
        while off < self.buf.len() {
            v.push(off);
            off = entry_at(&self.buf, off).1;
        }
        v
    }

    /// Replaces the bytes `[from, to)` (whole entries, `removed` of them)
    /// with the entries `items`.
    pub fn splice(&mut self, from: usize, to: usize, removed: usize, items: &[&[u8]]) {
        let add: usize = items.iter().map(|i| entry_size(i.len())).sum();
        let mut v = Vec::with_capacity(self.buf.len() - (to - from) + add);
        v.extend_from_slice(&self.buf[..from]);
        for i in items {
            put_varint(&mut v, i.len());
            v.extend_from_slice(i);
        }
        v.extend_from_slice(&self.buf[to..]);
        let n = (self.count() - removed + items.len()) as u32;
        v[..HDR].copy_from_slice(&n.to_le_bytes());
        self.buf = v.into_boxed_slice();
    }

    pub fn push_back(&mut self, items: &[&[u8]]) {
        let e = self.end();
        self.splice(e, e, 0, items);
    }

    pub fn push_front(&mut self, items: &[&[u8]]) {
        self.splice(HDR, HDR, 0, items);
    }
}

pub struct PackedIter<'a> {
    buf: &'a [u8],
    off: usize,
}

impl<'a> Iterator for PackedIter<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.off >= self.buf.len() {
            return None;
        }
        let (e, n) = entry_at(self.buf, self.off);
        self.off = n;
        Some(e)
    }
}

impl<'a> PackedIter<'a> {
    /// Offset of the next entry to be returned.
    pub fn offset(&self) -> usize {
        self.off
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_and_iterate() {
        let mut p = Packed::new();
        p.push_back(&[b"a", b"bb"]);
        p.push_front(&[b"z"]);
        let big = vec![7u8; 300];
        p.push_back(&[&big]);
        assert_eq!(p.count(), 4);
        let all: Vec<&[u8]> = p.iter().collect();
        assert_eq!(all, vec![&b"z"[..], b"a", b"bb", &big[..]]);
        let offs = p.offsets();
        p.splice(offs[1], offs[3], 2, &[b"x"]);
        let all: Vec<&[u8]> = p.iter().collect();
        assert_eq!(all, vec![&b"z"[..], b"x", &big[..]]);
        assert_eq!(p.count(), 3);
    }
}
