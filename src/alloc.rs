//! A counting wrapper around mimalloc: INFO's `used_memory` is the number
//! of live heap bytes the allocator handed out, by usable block size
//! (size-class rounding included), as Redis counts with `zmalloc_size`.

use std::alloc::{GlobalAlloc, Layout};

use mimalloc::MiMalloc as System;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

pub struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// The highest `ALLOCATED` since the heap last shrank enough to collect
/// (see `check_shrink`); never above `PEAK`.
static HIGH: AtomicUsize = AtomicUsize::new(0);

/// After the heap grew to `now` bytes: raises the high marks.
#[inline]
fn grew(now: usize) {
    if now > HIGH.load(Relaxed) {
        HIGH.store(now, Relaxed);
        if now > PEAK.load(Relaxed) {
            PEAK.store(now, Relaxed);
        }
    }
}

// SAFETY: every method forwards to the allocator with the same arguments and
// only adds relaxed counter updates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            // SAFETY: `p` was just returned by mimalloc.
            let n = unsafe { System.usable_size(p) };
            grew(ALLOCATED.fetch_add(n, Relaxed) + n);
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
            let n = unsafe { System.usable_size(p) };
            grew(ALLOCATED.fetch_add(n, Relaxed) + n);
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
                grew(ALLOCATED.fetch_add(now - old, Relaxed) + (now - old));
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
    fn mi_collect(force: bool);
    fn mi_process_info(
        elapsed_msecs: *mut usize,
        user_msecs: *mut usize,
        system_msecs: *mut usize,
        current_rss: *mut usize,
        peak_rss: *mut usize,
        current_commit: *mut usize,
        peak_commit: *mut usize,
        page_faults: *mut usize,
    );
}

/// The allocator's resident memory for INFO and MEMORY STATS: what
/// mimalloc keeps committed, but never above the process's RSS (`rss`):
/// its committed count includes pages it never touched.
pub fn resident(rss: u64) -> u64 {
    (committed() as u64).min(rss)
}

/// Bytes mimalloc holds committed from the OS (its "resident" memory:
/// what it handed out plus its free pages not yet purged). mimalloc
/// counts OS commits in every build.
pub fn committed() -> usize {
    let mut v = [0usize; 8];
    let [a, b, c, d, e, f, g, h] = &mut v;
    // SAFETY: mimalloc writes one usize through each pointer.
    unsafe { mi_process_info(a, b, c, d, e, f, g, h) };
    v[5]
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

/// Returns freed memory to the OS now, as far as the calling thread can
/// (MEMORY PURGE): mimalloc frees this thread's empty pages and purges
/// them without waiting for the purge delay.
pub fn purge() {
    // SAFETY: mimalloc's collection entry point; no arguments to uphold.
    unsafe { mi_collect(true) };
}

/// Shrink of the heap, below its high mark, that makes every thread
/// collect (see [`Collector`]).
const COLLECT_AFTER_FREEING: usize = 1 << 20;

/// Bumped when the heap shrank by `COLLECT_AFTER_FREEING` (see `check_shrink`).
static COLLECT_EPOCH: AtomicUsize = AtomicUsize::new(0);

/// Called about once a second by one thread (the server's cron): when the
/// heap is at least a MiB below its highest point since the last time this
/// fired, asks every thread's [`Collector`] to collect. The high mark is
/// kept by the allocator itself, so a fill and a FLUSHALL between two
/// calls are seen too.
pub fn check_shrink() {
    let now = allocated();
    if now + COLLECT_AFTER_FREEING <= HIGH.load(Relaxed) {
        HIGH.store(now, Relaxed);
        COLLECT_EPOCH.fetch_add(1, Relaxed);
    }
}

/// Gives memory back to the OS after the dataset shrinks (FLUSHALL, a mass
/// DEL, keys expiring), as Redis's jemalloc does by itself.
///
/// mimalloc returns a thread's free pages only while that thread runs the
/// allocator: pages freed by another thread wait in their owner's list,
/// and empty pages are purged when their owner next allocates. An IO
/// thread that goes quiet after a FLUSHALL kept the whole former dataset
/// resident (177 MB RSS for 2 MB in use, against Redis's 20 MB, with 1 M
/// keys flushed). So each thread that allocates for the keyspace calls
/// [`Collector::tick`] about once a second; after the heap shrank (see
/// [`check_shrink`]) it collects its own pages twice: the first frees
/// them, the second, after the purge delay, returns them to the OS. A
/// collection of a 190 MB heap took 5 us to 3 ms here, so a heap that
/// holds steady (overwrites, or growth) is not collected at all.
#[derive(Default)]
pub struct Collector {
    epoch: usize,
    rounds: u8,
}

impl Collector {
    pub fn tick(&mut self) {
        let epoch = COLLECT_EPOCH.load(Relaxed);
        if epoch != self.epoch {
            self.epoch = epoch;
            self.rounds = 2;
        }
        if self.rounds > 0 {
            self.rounds -= 1;
            // SAFETY: as in `purge`; `false` frees and purges only what
            // the purge delay allows.
            unsafe { mi_collect(false) };
        }
    }
}
