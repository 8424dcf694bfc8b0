//! A counting wrapper around mimalloc: INFO's `used_memory` is the number
//! of live heap bytes the allocator handed out, by usable block size
//! (size-class rounding included), as Redis counts with `zmalloc_size`.

use std::alloc::{GlobalAlloc, Layout};

use mimalloc::MiMalloc as System;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

pub struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to the allocator with the same arguments and
// only adds relaxed counter updates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            // SAFETY: `p` was just returned by mimalloc.
            let n = unsafe { System.usable_size(p) };
            let now = ALLOCATED.fetch_add(n, Relaxed) + n;
            if now > PEAK.load(Relaxed) {
                PEAK.store(now, Relaxed);
            }
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` is a live mimalloc block (the caller's contract).
        let n = unsafe { System.usable_size(p) };
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(p, l) };
        ALLOCATED.fetch_sub(n, Relaxed);
    }

    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            // SAFETY: `p` was just returned by mimalloc.
            ALLOCATED.fetch_add(unsafe { System.usable_size(p) }, Relaxed);
        }
        p
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: `p` is a live mimalloc block (the caller's contract).
        let old = unsafe { System.usable_size(p) };
        // SAFETY: forwarded as is.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            // SAFETY: `q` was just returned by mimalloc.
            let now = unsafe { System.usable_size(q) };
            if now > old {
                ALLOCATED.fetch_add(now - old, Relaxed);
            } else {
                ALLOCATED.fetch_sub(old - now, Relaxed);
            }
        }
        q
    }
}

pub fn allocated() -> usize {
    ALLOCATED.load(Relaxed)
}

pub fn peak() -> usize {
    PEAK.load(Relaxed).max(allocated())
}
