//! Per-command latency histograms (LATENCY HISTOGRAM, INFO latencystats).
//!
//! Log-linear buckets over nanoseconds: values below 16 ns get one bucket
//! each; above, every power of two is split into 16 equal sub-buckets, so
//! a bucket is at most 1/16 (6.25%) wide relative to its values — close to
//! the two significant digits of Redis's HDR histograms. The table is
//! allocated on a command's first recorded call (8 KB), so the ~400
//! commands nobody calls cost a pointer each.
//!
//! Command times are taken on one call in `TIME_SAMPLE` (see
//! `commands::execute_entry`), so counts are recorded with that weight:
//! `calls` in LATENCY HISTOGRAM is an estimate, as `usec` in INFO
//! commandstats is; the percentiles are unaffected by the sampling.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = (SUB as usize) * (65 - SUB_BITS as usize);

#[derive(Default)]
pub struct Histogram {
    buckets: OnceLock<Box<[AtomicU64]>>,
}

fn index(ns: u64) -> usize {
    if ns < SUB {
        return ns as usize;
    }
    let p = 63 - ns.leading_zeros(); // p >= SUB_BITS
    let mantissa = (ns >> (p - SUB_BITS)) - SUB;
    (SUB + u64::from(p - SUB_BITS) * SUB + mantissa) as usize
}

/// The largest value (ns) that falls into bucket `i`.
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let p = (i - SUB) / SUB + u64::from(SUB_BITS);
    let mantissa = (i - SUB) % SUB;
    let low = (SUB + mantissa) << (p - u64::from(SUB_BITS));
    low + ((1u64 << (p - u64::from(SUB_BITS))) - 1)
}

/// The name Redis gives the histogram bucket that ends at `bound` ns (a
/// power of two from 1024): its HDR histogram (two significant digits)
/// reports the highest value equivalent to the bound, `bound + bound/128 -
/// 1`, in whole µs — 1, 2, 4, 8, 16, 33, 66, 132, 264, …
pub fn usec_name(bound: u64) -> u64 {
    (bound + bound / 128 - 1) / 1000
}

impl Histogram {
    /// Records `weight` calls that took `ns` nanoseconds.
    pub fn record(&self, ns: u64, weight: u64) {
        let b = self
            .buckets
            .get_or_init(|| (0..BUCKETS).map(|_| AtomicU64::new(0)).collect());
        b[index(ns)].fetch_add(weight, Relaxed);
    }

    pub fn reset(&self) {
        if let Some(b) = self.buckets.get() {
            b.iter().for_each(|c| c.store(0, Relaxed));
        }
    }

    fn counts(&self) -> Option<Vec<u64>> {
        let b = self.buckets.get()?;
        Some(b.iter().map(|c| c.load(Relaxed)).collect())
    }

    /// Total recorded calls.
    pub fn total(&self) -> u64 {
        self.counts().map_or(0, |c| c.iter().sum())
    }

    /// Redis's `histogram_usec`: (bucket bound in µs, cumulative count) for
    /// every bucket that gained calls. As Redis, buckets double from 1024 ns
    /// and are named by `usec_name`: 1, 2, 4, 8, 16, 33, 66, 132, …
    pub fn cumulative_usec(&self) -> Vec<(u64, u64)> {
        let Some(counts) = self.counts() else {
            return Vec::new();
        };
        let mut out: Vec<(u64, u64)> = Vec::new();
        let mut total = 0;
        for (i, &n) in counts.iter().enumerate() {
            if n == 0 {
                continue;
            }
            total += n;
            let mut bound = 1024u64;
            while bound < upper(i) && bound < 1 << 62 {
                bound <<= 1;
            }
            let us = usec_name(bound);
            match out.last_mut() {
                Some(last) if last.0 == us => last.1 = total,
                _ => out.push((us, total)),
            }
        }
        out
    }

    /// The value (µs) at percentile `p` (0-100), or None when empty.
    pub fn percentile_usec(&self, p: f64) -> Option<f64> {
        let counts = self.counts()?;
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let want = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &n) in counts.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(upper(i) as f64 / 1000.0);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_tight() {
        let mut last = None;
        for ns in (0..100_000u64).chain([1 << 40, u64::MAX / 2, u64::MAX]) {
            let i = index(ns);
            assert!(i < BUCKETS, "{ns}");
            assert!(ns <= upper(i), "{ns} above its bucket {}", upper(i));
            if i > 0 {
                assert!(ns > upper(i - 1), "{ns} belongs below");
            }
            if let Some(l) = last {
                assert!(i >= l);
            }
            last = Some(i);
            if ns >= 16 {
                // Within 1/16 relative width.
                assert!((upper(i) - ns) * 16 <= ns, "{ns} -> {}", upper(i));
            }
        }
    }

    #[test]
    fn percentiles_and_cumulative_buckets() {
        let h = Histogram::default();
        assert_eq!(h.percentile_usec(50.0), None);
        assert!(h.cumulative_usec().is_empty());
        for _ in 0..90 {
            h.record(800, 1); // 0.8 µs
        }
        for _ in 0..10 {
            h.record(12_000, 1); // 12 µs
        }
        assert_eq!(h.total(), 100);
        let p50 = h.percentile_usec(50.0).unwrap();
        assert!((0.8..0.86).contains(&p50), "{p50}");
        let p99 = h.percentile_usec(99.0).unwrap();
        assert!((12.0..12.8).contains(&p99), "{p99}");
        assert_eq!(h.cumulative_usec(), vec![(1, 90), (16, 100)]);
        h.record(20_000_000, 1); // 20 ms, as Redis's bucket for DEBUG SLEEP 0.02
        assert_eq!(h.cumulative_usec().last(), Some(&(33816, 101)));
        let names: Vec<u64> = (0..9).map(|k| usec_name(1024 << k)).collect();
        assert_eq!(names, [1, 2, 4, 8, 16, 33, 66, 132, 264]);
        h.reset();
        assert_eq!(h.total(), 0);
    }
}
