//! Statistics counters that many threads bump without sharing a cache line.
//!
//! A plain `AtomicU64` bumped by every worker thread for every command
//! bounces its cache line between cores; `Counter` gives each thread its
//! own padded slot, so an increment is an uncontended add, and a read sums
//! the slots. The API mirrors the `AtomicU64` calls the code already makes
//! (`fetch_add`, `load`, `store`), so counters are a drop-in type.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const SLOTS: usize = 16;

#[repr(align(64))]
#[derive(Default)]
struct Slot(AtomicU64);

#[derive(Default)]
pub struct Counter {
    slots: [Slot; SLOTS],
}

fn my_slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS;
    }
    SLOT.with(|s| *s)
}

impl Counter {
    pub const fn new() -> Self {
        #[allow(clippy::declare_interior_mutable_const)]
        const Z: Slot = Slot(AtomicU64::new(0));
        Counter { slots: [Z; SLOTS] }
    }

    /// Adds `n`; returns this thread's slot value before the add (not the
    /// total: use `load` for that).
    #[inline]
    pub fn fetch_add(&self, n: u64, o: Ordering) -> u64 {
        self.slots[my_slot()].0.fetch_add(n, o)
    }

    pub fn load(&self, o: Ordering) -> u64 {
        self.slots
            .iter()
            .fold(0u64, |a, s| a.wrapping_add(s.0.load(o)))
    }

    /// Sets the total to `v` (for resets and the `dirty` rebase).
    pub fn store(&self, v: u64, o: Ordering) {
        for s in &self.slots[1..] {
            s.0.store(0, o);
        }
        self.slots[0].0.store(v, o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_across_threads() {
        let c = std::sync::Arc::new(Counter::default());
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(c.load(Ordering::Relaxed), 8000);
        c.store(5, Ordering::Relaxed);
        assert_eq!(c.load(Ordering::Relaxed), 5);
    }
}
