//! `Chunked`: the large-list structure (what Redis calls a quicklist): a
//! deque of fixed-size chunks of strings. Pushes and pops at either end
//! are O(1) and never move more than one chunk's worth of memory, so a
//! list of millions of elements grows without the long copy a single
//! ring buffer makes when it doubles (which stalls every client of the
//! shard). Index access walks the chunks from the nearer end: O(n / CHUNK).

use std::collections::VecDeque;

use crate::bytes::CompactBytes;

const CHUNK: usize = 128;

#[derive(Clone, Default)]
pub struct Chunked {
    chunks: VecDeque<VecDeque<CompactBytes>>,
    len: usize,
}

impl Chunked {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push_back(&mut self, v: CompactBytes) {
        match self.chunks.back_mut() {
            Some(c) if c.len() < CHUNK => c.push_back(v),
            _ => {
                let mut c = VecDeque::with_capacity(CHUNK);
                c.push_back(v);
                self.chunks.push_back(c);
            }
        }
        self.len += 1;
    }

    pub fn push_front(&mut self, v: CompactBytes) {
        match self.chunks.front_mut() {
            Some(c) if c.len() < CHUNK => c.push_front(v),
            _ => {
                let mut c = VecDeque::with_capacity(CHUNK);
                c.push_front(v);
                self.chunks.push_front(c);
            }
        }
        self.len += 1;
    }

    pub fn pop_front(&mut self) -> Option<CompactBytes> {
        let c = self.chunks.front_mut()?;
        let v = c.pop_front();
        if c.is_empty() {
            self.chunks.pop_front();
        }
        if v.is_some() {
            self.len -= 1;
        }
        v
    }

    pub fn pop_back(&mut self) -> Option<CompactBytes> {
        let c = self.chunks.back_mut()?;
        let v = c.pop_back();
        if c.is_empty() {
            self.chunks.pop_back();
        }
        if v.is_some() {
            self.len -= 1;
        }
        v
    }

    /// (chunk index, offset in chunk) of element `i` (< len).
    fn locate(&self, mut i: usize) -> (usize, usize) {
        if i < self.len / 2 {
            for (ci, c) in self.chunks.iter().enumerate() {
                if i < c.len() {
                    return (ci, i);
                }
                i -= c.len();
            }
        } else {
            let mut from_end = self.len - 1 - i;
            for (ci, c) in self.chunks.iter().enumerate().rev() {
                if from_end < c.len() {
                    return (ci, c.len() - 1 - from_end);
                }
                from_end -= c.len();
            }
        }
        unreachable!("index {i} within len {}", self.len)
    }

    pub fn get(&self, i: usize) -> Option<&CompactBytes> {
        if i >= self.len {
            return None;
        }
        let (c, o) = self.locate(i);
        self.chunks[c].get(o)
    }

    pub fn set(&mut self, i: usize, v: CompactBytes) {
        let (c, o) = self.locate(i);
        self.chunks[c][o] = v;
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &CompactBytes> + '_ {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// Elements `[start, end]` in order (`end` < len).
    pub fn range(&self, start: usize, end: usize) -> impl Iterator<Item = &CompactBytes> + '_ {
        let (c, o) = self.locate(start);
        self.chunks
            .range(c..)
            .flat_map(|c| c.iter())
            .skip(o)
            .take(end + 1 - start)
    }

    /// Inserts at position `i` (≤ len), splitting a full chunk.
    pub fn insert(&mut self, i: usize, v: CompactBytes) {
        if i == self.len {
            return self.push_back(v);
        }
        let (ci, o) = self.locate(i);
        let c = &mut self.chunks[ci];
        c.insert(o, v);
        if c.len() > 2 * CHUNK {
            let tail = c.split_off(CHUNK);
            self.chunks.insert(ci + 1, tail);
        }
        self.len += 1;
    }

    /// Keeps only `[start, end]`.
    pub fn keep(&mut self, start: usize, end: usize) {
        let back = self.len - 1 - end;
        for _ in 0..back {
            self.pop_back();
        }
        for _ in 0..start {
            self.pop_front();
        }
    }

    pub fn clear(&mut self) {
        self.chunks.clear();
        self.len = 0;
    }

    pub fn heap_size(&self) -> usize {
        self.heap_size_sampled(0)
    }

    /// `heap_size`, measuring at most `samples` elements (0: all) and
    /// scaling them to the whole.
    pub fn heap_size_sampled(&self, samples: usize) -> usize {
        let each = self
            .chunks
            .iter()
            .flat_map(|c| c.iter().map(|b| b.heap_size()));
        self.chunks.capacity() * 32
            + self.chunks.iter().map(|c| c.capacity() * 24).sum::<usize>()
            + crate::value::sampled_sum(each, self.len, samples)
    }
}

impl<'a> FromIterator<&'a [u8]> for Chunked {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(it: I) -> Self {
        let mut c = Chunked::new();
        for v in it {
            c.push_back(CompactBytes::new(v));
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_deque() {
        let mut c = Chunked::new();
        let mut d: VecDeque<Vec<u8>> = VecDeque::new();
        let mut seed = 1u64;
        for i in 0..20000u32 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = i.to_le_bytes().to_vec();
            match (seed >> 40) % 7 {
                0 | 1 => {
                    c.push_back(CompactBytes::new(&v));
                    d.push_back(v);
                }
                2 | 3 => {
                    c.push_front(CompactBytes::new(&v));
                    d.push_front(v);
                }
                4 => assert_eq!(c.pop_front().map(|b| b.into_vec()), d.pop_front()),
                5 => assert_eq!(c.pop_back().map(|b| b.into_vec()), d.pop_back()),
                _ if !d.is_empty() => {
                    let at = (seed >> 20) as usize % (d.len() + 1);
                    c.insert(at, CompactBytes::new(&v));
                    d.insert(at, v);
                }
                _ => {}
            }
            assert_eq!(c.len(), d.len());
        }
        let all: Vec<Vec<u8>> = c.iter().map(|b| b.to_vec()).collect();
        assert_eq!(all, d.iter().cloned().collect::<Vec<_>>());
        for i in (0..d.len()).step_by(97) {
            assert_eq!(c.get(i).map(|b| b.to_vec()).as_ref(), d.get(i));
            let r: Vec<Vec<u8>> = c
                .range(i, (i + 300).min(d.len() - 1))
                .map(|b| b.to_vec())
                .collect();
            assert_eq!(
                r,
                d.range(i..=(i + 300).min(d.len() - 1))
                    .cloned()
                    .collect::<Vec<_>>()
            );
        }
        c.keep(10, 500);
        let want: Vec<Vec<u8>> = d.range(10..=500).cloned().collect();
        assert_eq!(c.iter().map(|b| b.to_vec()).collect::<Vec<_>>(), want);
    }
}
