//! How a log is opened: fsync policy, recovery mode, and the filesystem.

use crate::fs::Fs;
use std::sync::Arc;
use std::time::Duration;

/// When the log fsyncs, with Redis's `appendfsync` meanings.
///
/// | policy | a process crash (kill -9) loses | a power loss / kernel crash loses |
/// |---|---|---|
/// | `Always` | nothing reported durable | nothing reported durable |
/// | `EverySec` | only records not yet written (*) | up to about one second of records |
/// | `No` | only records not yet written (*) | whatever the OS had not flushed (often ~30 s) |
///
/// (*) Records still in the in-memory batch: those appended since the
/// flusher's last `write`, normally well under a millisecond's worth. Under
/// `EverySec` the same thread also runs the once-a-second fsync, so on a slow
/// disk that window can stretch to one fsync's duration. Appends themselves
/// never wait for it (Redis instead delays writes up to 2 s behind a slow fsync).
///
/// In every policy a record is *durable* once [`Log::durable`](crate::Log::durable) has reached
/// its position; under `Always` that happens within one batch, and a
/// server that holds replies until then never acknowledges a write that a
/// power loss could take away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// `appendfsync always`: every batch is written and fdatasync'ed before
    /// its records are published as durable.
    #[default]
    Always,
    /// `appendfsync everysec`: batches are written promptly; fdatasync runs
    /// about once a second in the flusher thread.
    EverySec,
    /// `appendfsync no`: batches are written promptly and never fsynced
    /// (except on rotation, close, or [`Log::request_sync`](crate::Log::request_sync)).
    No,
}

/// What `open` does with damage found in the log. See
/// [`crate::recovery::Recovery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Any damage, even a torn tail, is an error.
    Strict,
    /// A torn tail of the last segment (a crash mid-append) is truncated and
    /// reported; damage before the tail is an error.
    #[default]
    TruncateTail,
    /// Load every record before the first damage and stop there. The damaged
    /// files are kept as `<name>.damaged` for the check tool, and the log
    /// continues from the damage point.
    LoadUntilDamage,
}

/// How to open a log.
#[derive(Debug, Clone)]
pub struct Options {
    /// The filesystem (the real one unless a test injects another).
    pub fs: Arc<dyn Fs>,
    /// When to fsync.
    pub fsync: FsyncPolicy,
    /// What to do with damage found at open.
    pub recovery: RecoveryMode,
    /// Pause between retries after a failed write or fsync.
    pub retry_interval: Duration,
    /// The fsync period under [`FsyncPolicy::EverySec`].
    pub everysec_interval: Duration,
    /// Under [`FsyncPolicy::Always`] on a fast disk, let the threads that
    /// wait for durability write and fsync the pending batch themselves
    /// ([`Log::commit_inline`](crate::Log::commit_inline)) instead of waking
    /// the flusher thread for every batch. Appends then no longer wake the
    /// flusher; it polls every [`Options::inline_poll`] and flushes records
    /// that nobody committed within one poll interval. Under `EverySec`
    /// and `No` it also makes the flusher poll: appends don't wake it, and
    /// it writes what accumulated once per poll interval (so a process
    /// crash can lose up to one interval of acknowledged writes there, well
    /// inside `EverySec`'s one-second bound).
    pub inline_commit: bool,
    /// The flusher's poll period when `inline_commit` is on.
    pub inline_poll: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            fs: Arc::new(crate::fs::StdFs),
            fsync: FsyncPolicy::Always,
            recovery: RecoveryMode::TruncateTail,
            retry_interval: Duration::from_millis(100),
            everysec_interval: Duration::from_secs(1),
            inline_commit: false,
            inline_poll: Duration::from_millis(2),
        }
    }
}
