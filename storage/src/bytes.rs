//! `CompactBytes`: a byte string stored inline when short.
//!
//! Most keys and many values are short ("session:8f3a...", "42", a
//! token). Keeping up to 22 bytes inside the 24-byte handle saves one heap
//! allocation and, more importantly, one cache miss per lookup: the key
//! sits in the same node as the table link, so comparing it does not
//! chase another pointer.

use std::ops::Deref;

pub const INLINE_CAP: usize = 22;

#[derive(Clone)]
pub enum CompactBytes {
    Inline { len: u8, data: [u8; INLINE_CAP] },
    Heap(Box<[u8]>),
}

impl CompactBytes {
    pub fn new(b: &[u8]) -> Self {
        if b.len() <= INLINE_CAP {
            let mut data = [0u8; INLINE_CAP];
            data[..b.len()].copy_from_slice(b);
            CompactBytes::Inline {
                len: b.len() as u8,
                data,
            }
        } else {
            CompactBytes::Heap(b.into())
        }
    }

    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match self {
            CompactBytes::Inline { len, data } => &data[..*len as usize],
            CompactBytes::Heap(b) => b,
        }
    }

    pub fn into_vec(self) -> Vec<u8> {
        match self {
            CompactBytes::Inline { len, data } => data[..len as usize].to_vec(),
            CompactBytes::Heap(b) => b.into_vec(),
        }
    }

    /// Heap bytes owned (0 when inline).
    pub fn heap_size(&self) -> usize {
        match self {
            CompactBytes::Inline { .. } => 0,
            CompactBytes::Heap(b) => b.len(),
        }
    }
}

impl Deref for CompactBytes {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<&[u8]> for CompactBytes {
    fn from(b: &[u8]) -> Self {
        CompactBytes::new(b)
    }
}

impl From<Vec<u8>> for CompactBytes {
    fn from(v: Vec<u8>) -> Self {
        if v.len() <= INLINE_CAP {
            CompactBytes::new(&v)
        } else {
            CompactBytes::Heap(v.into_boxed_slice())
        }
    }
}

impl From<Box<[u8]>> for CompactBytes {
    fn from(b: Box<[u8]>) -> Self {
        if b.len() <= INLINE_CAP {
            CompactBytes::new(&b)
        } else {
            CompactBytes::Heap(b)
        }
    }
}

impl PartialEq for CompactBytes {
    fn eq(&self, o: &Self) -> bool {
        self.as_slice() == o.as_slice()
    }
}

impl Eq for CompactBytes {}

impl std::fmt::Debug for CompactBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_roundtrip() {
        assert_eq!(std::mem::size_of::<CompactBytes>(), 24);
        assert!(std::mem::size_of::<crate::Value>() <= 32);
        for n in [0, 1, 21, 22, 23, 100] {
            let v: Vec<u8> = (0..n as u8).collect();
            let c = CompactBytes::new(&v);
            assert_eq!(c.as_slice(), &v[..]);
            assert_eq!(c.heap_size(), if n <= INLINE_CAP { 0 } else { n });
            assert_eq!(CompactBytes::from(v.clone()).into_vec(), v);
        }
    }
}
