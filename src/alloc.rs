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

/// mimalloc's option number for `purge_delay` (`mi_option_purge_delay`
/// in mimalloc.h; the Rust bindings don't name it).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// How long mimalloc keeps freed memory committed before returning it to
/// the OS, in milliseconds.
///
/// mimalloc's default is a second. Under a write flood against
/// `maxmemory`, eviction frees pages at the rate new keys fill others, so
/// a second of freed-but-committed pages showed up as RSS: 126-129 MB
/// peak against `maxmemory 100mb`, 117-122 MB with 10 ms
/// (`benches/maxmemory_flood.sh`). 10 ms still batches the purges.
const PURGE_DELAY_MS: std::ffi::c_long = 10;

extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// Sets Basalt's allocator options, unless the environment already chose
/// (`MIMALLOC_PURGE_DELAY`). Call once, early in `main`.
pub fn configure() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: a plain setter of a process-wide option; the symbol comes
        // from the linked mimalloc (libmimalloc-sys, built by the mimalloc crate).
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}
