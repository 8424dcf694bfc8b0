//! Lists. Small lists are one [`Packed`] buffer (`listpack`); once they
//! pass `list-max-listpack-size` they become a ring buffer of strings
//! (reported as `quicklist`): a deque of fixed-size chunks, see
//! [`Chunked`].
//! A quicklist shrinking below half the limit becomes a listpack again,
//! as in Redis 7.2.

use crate::bytes::CompactBytes;
use crate::chunked::Chunked;
use crate::packed::Packed;
use crate::Limits;

pub enum List {
    Packed(Packed),
    Deque(Box<Chunked>),
}

impl Default for List {
    fn default() -> Self {
        List::Packed(Packed::new())
    }
}

/// Bytes Redis's listpack would use for an entry of `n` bytes (string
/// encoding), to apply the size limits at the same points.
fn lp_entry(n: usize) -> usize {
    let hdr = if n < 64 {
        1
    } else if n < 4096 {
        2
    } else {
        5
    };
    let body = hdr + n;
    body + if body < 128 {
        1
    } else if body < 16384 {
        2
    } else {
        3
    }
}

/// (size limit in bytes, count limit) for `list-max-listpack-size`.
fn limits(fill: i64) -> (usize, usize) {
    if fill >= 0 {
        (usize::MAX, if fill == 0 { 1 } else { fill as usize })
    } else {
        let lv = [4096usize, 8192, 16384, 32768, 65536];
        let off = ((-fill - 1) as usize).min(lv.len() - 1);
        (lv[off], usize::MAX)
    }
}

impl List {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn encoding_name(&self) -> &'static str {
        match self {
            List::Packed(_) => "listpack",
            List::Deque(_) => "quicklist",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            List::Packed(p) => p.count(),
            List::Deque(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lp_bytes(p: &Packed) -> usize {
        7 + p.iter().map(|e| lp_entry(e.len())).sum::<usize>()
    }

    /// Converts to a deque if adding `add` entries of `add_bytes` total
    /// would exceed the listpack limits.
    fn grow_check(&mut self, lim: &Limits, add: usize, add_bytes: usize) {
        if let List::Packed(p) = self {
            let (sz, cnt) = limits(lim.list_size);
            let bytes = Self::lp_bytes(p) + add_bytes;
            // Redis refuses listpack nodes over 8 KB when the limit is a count.
            let sz = if lim.list_size >= 0 { 8192 } else { sz };
            if p.count() + add > cnt || bytes > sz {
                let d: Chunked = p.iter().collect();
                *self = List::Deque(Box::new(d));
            }
        }
    }

    /// Converts a deque back to a listpack once under half the limits.
    pub fn shrink_check(&mut self, lim: &Limits) {
        if let List::Deque(d) = self {
            let (sz, cnt) = limits(lim.list_size);
            // Every entry costs at least 2 listpack bytes: a long deque
            // cannot fit, and is rejected without walking it.
            if d.len() > cnt / 2 || d.len() > sz / 4 {
                return;
            }
            let bytes = 7 + d.iter().map(|e| lp_entry(e.len())).sum::<usize>();
            if bytes > sz / 2 {
                return;
            }
            let mut p = Packed::new();
            let items: Vec<&[u8]> = d.iter().map(|e| e.as_slice()).collect();
            p.push_back(&items);
            *self = List::Packed(p);
        }
    }

    pub fn push(&mut self, items: &[&[u8]], front: bool, lim: &Limits) {
        let add_bytes = items.iter().map(|i| lp_entry(i.len())).sum();
        self.grow_check(lim, items.len(), add_bytes);
        match self {
            List::Packed(p) => {
                if front {
                    let rev: Vec<&[u8]> = items.iter().rev().copied().collect();
                    p.push_front(&rev);
                } else {
                    p.push_back(items);
                }
            }
            List::Deque(d) => {
                for i in items {
                    if front {
                        d.push_front(CompactBytes::new(i));
                    } else {
                        d.push_back(CompactBytes::new(i));
                    }
                }
            }
        }
    }

    pub fn pop(&mut self, front: bool) -> Option<Vec<u8>> {
        match self {
            List::Packed(p) => {
                if p.count() == 0 {
                    return None;
                }
                let off = if front {
                    p.start()
                } else {
                    *p.offsets().last()?
                };
                let (e, next) = p.at(off);
                let v = e.to_vec();
                p.splice(off, next, 1, &[]);
                Some(v)
            }
            List::Deque(d) => {
                let v = if front { d.pop_front() } else { d.pop_back() };
                v.map(|b| b.into_vec())
            }
        }
    }

    /// The element at a resolved, in-range index.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        match self {
            List::Packed(p) => p.iter().nth(i),
            List::Deque(d) => d.get(i).map(|b| b.as_slice()),
        }
    }

    /// Elements `[start, end]` (resolved, in range), in order.
    pub fn range(&self, start: usize, end: usize, mut f: impl FnMut(&[u8])) {
        match self {
            List::Packed(p) => p.iter().skip(start).take(end + 1 - start).for_each(f),
            List::Deque(d) => d.range(start, end).for_each(|b| f(b)),
        }
    }

    /// All elements (for the rewrites below and for small lists).
    pub fn to_vec(&self) -> Vec<Vec<u8>> {
        let mut v = Vec::with_capacity(self.len());
        if !self.is_empty() {
            self.range(0, self.len() - 1, |b| v.push(b.to_vec()));
        }
        v
    }

    fn rebuild(&mut self, items: Vec<Vec<u8>>, lim: &Limits) {
        let mut l = List::new();
        let refs: Vec<&[u8]> = items.iter().map(|v| v.as_slice()).collect();
        l.push(&refs, false, lim);
        l.shrink_check(lim);
        *self = l;
    }

    pub fn set(&mut self, i: usize, val: &[u8], lim: &Limits) {
        match self {
            List::Deque(d) => d.set(i, CompactBytes::new(val)),
            List::Packed(_) => {
                let mut v = self.to_vec();
                v[i] = val.to_vec();
                self.rebuild(v, lim);
            }
        }
    }

    /// LINSERT: Some(new length) when the pivot was found.
    pub fn insert(
        &mut self,
        pivot: &[u8],
        val: &[u8],
        before: bool,
        lim: &Limits,
    ) -> Option<usize> {
        match self {
            List::Deque(d) => {
                let pos = d.iter().position(|e| e.as_slice() == pivot)?;
                d.insert(if before { pos } else { pos + 1 }, CompactBytes::new(val));
                Some(d.len())
            }
            List::Packed(_) => {
                let mut v = self.to_vec();
                let pos = v.iter().position(|e| e == pivot)?;
                v.insert(if before { pos } else { pos + 1 }, val.to_vec());
                let n = v.len();
                self.rebuild(v, lim);
                Some(n)
            }
        }
    }

    /// LREM: removes up to |count| (all when 0) elements equal to `val`,
    /// from the head (count ≥ 0) or the tail (count < 0).
    pub fn remove(&mut self, count: i64, val: &[u8], lim: &Limits) -> usize {
        let mut v = self.to_vec();
        let limit = if count == 0 {
            usize::MAX
        } else {
            count.unsigned_abs() as usize
        };
        let mut removed = 0;
        if count >= 0 {
            v.retain(|e| {
                if removed < limit && e == val {
                    removed += 1;
                    false
                } else {
                    true
                }
            });
        } else {
            let mut i = v.len();
            while i > 0 && removed < limit {
                i -= 1;
                if v[i] == val {
                    v.remove(i);
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            self.rebuild(v, lim);
        }
        removed
    }

    /// Keeps `[start, end]` (resolved; start > end keeps nothing).
    pub fn trim(&mut self, start: usize, end: usize, lim: &Limits) {
        match self {
            List::Deque(d) => {
                if start > end || start >= d.len() {
                    d.clear();
                } else {
                    d.keep(start, end.min(d.len() - 1));
                }
                self.shrink_check(lim);
            }
            List::Packed(_) => {
                let v = self.to_vec();
                let kept = if start > end || start >= v.len() {
                    Vec::new()
                } else {
                    v[start..=end.min(v.len() - 1)].to_vec()
                };
                self.rebuild(kept, lim);
            }
        }
    }

    pub fn for_each(&self, f: impl FnMut(&[u8])) {
        if !self.is_empty() {
            self.range(0, self.len() - 1, f);
        }
    }

    pub fn heap_size(&self) -> usize {
        self.heap_size_sampled(0)
    }

    /// `heap_size`, measuring at most `samples` elements (0: all).
    pub fn heap_size_sampled(&self, samples: usize) -> usize {
        match self {
            List::Packed(p) => p.bytes(),
            List::Deque(d) => d.heap_size_sampled(samples),
        }
    }

    pub fn deep_clone(&self) -> List {
        match self {
            List::Packed(p) => List::Packed(p.clone()),
            List::Deque(d) => List::Deque(d.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_pop_convert() {
        let lim = Limits {
            list_size: 4,
            ..Limits::default()
        };
        let mut l = List::new();
        l.push(&[b"a", b"b"], false, &lim);
        l.push(&[b"x", b"y"], true, &lim);
        assert_eq!(
            l.to_vec(),
            vec![b"y".to_vec(), b"x".to_vec(), b"a".to_vec(), b"b".to_vec()]
        );
        assert_eq!(l.encoding_name(), "listpack");
        l.push(&[b"c"], false, &lim);
        assert_eq!(l.encoding_name(), "quicklist");
        assert_eq!(l.pop(true), Some(b"y".to_vec()));
        assert_eq!(l.pop(false), Some(b"c".to_vec()));
        l.trim(1, 1, &lim);
        assert_eq!(l.to_vec(), vec![b"a".to_vec()]);
        assert_eq!(l.encoding_name(), "listpack");
    }
}
