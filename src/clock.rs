//! A cheap wall clock for the commands of one input batch.
//!
//! Every command reads the time (expiry, TTLs, `now` for its effects).
//! `unix_ms` is a `clock_gettime` call, 29 ns on this VM; once per
//! command it was 4.5% of the IO thread's CPU under `redis-benchmark -P 16
//! -t sadd` (`perf`), where both servers are CPU-bound. Within one batch
//! of input, a command reuses the last reading while the TSC (`rdtsc`,
//! 9 ns) says less than [`REUSE_US`] has passed since it was taken, so no
//! command sees a time older than that; Redis itself gives a command the
//! time taken when it started, however long it then runs.
//!
//! The TSC is used only where the kernel uses it as its own clock source
//! (constant rate, synchronised across CPUs); elsewhere every command
//! reads the clock. A TSC that went backwards (a migration to another
//! CPU of an unsynchronised machine) only causes an extra reading.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::shared::unix_ms;

/// How old a reused reading may be, in microseconds.
pub const REUSE_US: u64 = 20;

/// TSC ticks in `REUSE_US`; 0: not calibrated or no usable TSC.
static REUSE_TICKS: AtomicU64 = AtomicU64::new(0);

#[cfg(target_arch = "x86_64")]
fn tsc() -> u64 {
    // SAFETY: rdtsc has no preconditions on x86_64.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
fn tsc() -> u64 {
    0
}

/// Measures the TSC's rate against the monotonic clock (spins about
/// 2 ms); called once at start. Without it, every command reads the clock.
pub fn init() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let source =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .unwrap_or_default();
    if source.trim() != "tsc" {
        return;
    }
    let start = std::time::Instant::now();
    let t0 = tsc();
    while start.elapsed() < std::time::Duration::from_millis(2) {
        std::hint::spin_loop();
    }
    let ticks = tsc().wrapping_sub(t0);
    let ns = start.elapsed().as_nanos() as u64;
    // Plausible rates only (10 MHz to 100 GHz).
    if ns > 0 && (ticks / ns.max(1)) < 100 && ticks * 100 > ns {
        REUSE_TICKS.store(ticks.saturating_mul(REUSE_US * 1000) / ns, Relaxed);
    }
}

/// The clock of one batch of commands (see the module doc).
pub struct BatchClock {
    ms: u64,
    at: u64,
}

impl BatchClock {
    /// `ms`: `unix_ms()`, just read.
    pub fn new(ms: u64) -> Self {
        BatchClock { ms, at: tsc() }
    }

    /// The last reading, whatever its age.
    pub fn last(&self) -> u64 {
        self.ms
    }

    /// Wall-clock milliseconds, at most `REUSE_US` old.
    pub fn now(&mut self) -> u64 {
        let reuse = REUSE_TICKS.load(Relaxed);
        if reuse > 0 {
            let t = tsc();
            if t.wrapping_sub(self.at) < reuse {
                return self.ms;
            }
            self.at = t;
        }
        self.ms = unix_ms();
        self.ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_fresh() {
        init();
        let mut c = BatchClock::new(unix_ms());
        // Reused or not, a reading is never behind the clock by more than
        // the reuse window (plus the millisecond it may straddle).
        for _ in 0..1000 {
            let before = unix_ms();
            let got = c.now();
            assert!(got + 1 >= before, "{got} vs {before}");
            assert!(got <= unix_ms());
        }
        // After a pause longer than the window, the clock is read again.
        let mut c = BatchClock::new(unix_ms());
        std::thread::sleep(std::time::Duration::from_millis(5));
        let before = unix_ms();
        assert!(c.now() >= before);
    }
}
