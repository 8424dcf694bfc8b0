//! What the log reports about itself (`INFO persistence`).

use crate::format::Lsn;
use crate::writer::FsyncPolicy;
use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

/// A snapshot of the log's health and counters (what `INFO persistence`
/// reports).
///
/// | Redis field | from |
/// |---|---|
/// | `aof_last_write_status` | `ok` if `last_write_ok`, else `err` |
/// | `aof_current_size` | `current_size` |
/// | `aof_base_size` | `base_size` |
/// | `aof_pending_bio_fsync` | `fsync_in_progress as u8` |
/// | `aof_delayed_fsync` | always 0: appends never wait for an fsync in flight |
/// | `aof_buffer_length` | `appended - written` |
/// | (Basalt) `aof_fsyncs`, `aof_records_per_fsync` | `fsyncs`, `records_per_fsync` |
/// | `WAITAOF` local ack | `durable >= ` the client's last write position |
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Status {
    /// The fsync policy.
    pub policy: FsyncPolicy,
    /// `false` while the last write or fsync failed (`aof_last_write_status:err`).
    pub last_write_ok: bool,
    /// Text of the last error, kept until a write and fsync succeed again.
    pub last_error: Option<String>,
    /// When the current error state began.
    pub error_since: Option<SystemTime>,
    /// Failed write/fsync attempts since open.
    pub failures: u64,
    /// Position after the last appended record.
    pub appended: Lsn,
    /// Position up to which records were written to the file.
    pub written: Lsn,
    /// Position up to which records are durable.
    pub durable: Lsn,
    /// fdatasync calls that succeeded.
    pub fsyncs: u64,
    /// Records those fsyncs covered.
    pub records_synced: u64,
    /// `records_synced / fsyncs`: the group-commit batch size.
    pub records_per_fsync: f64,
    /// Largest number of records covered by one fsync.
    pub max_records_per_fsync: u64,
    /// Total time spent in successful fsyncs, in microseconds.
    pub fsync_micros_total: u64,
    /// Slowest successful fsync, in microseconds.
    pub fsync_micros_max: u64,
    /// Record bytes written since open.
    pub bytes_written: u64,
    /// Size in bytes of the log's segment files now (`aof_current_size`).
    pub current_size: u64,
    /// Size at open or at the last `install_snapshot` (`aof_base_size`).
    pub base_size: u64,
    /// An fsync is running now (`aof_pending_bio_fsync`).
    pub fsync_in_progress: bool,
    /// Number of segment files.
    pub segments: usize,
}

/// The error state: set by a failed write or fsync, cleared by a good one.
#[derive(Default)]
pub(crate) struct Health {
    pub(crate) error: Option<String>,
    pub(crate) since: Option<SystemTime>,
}

/// Counters updated by the flusher.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) fsyncs: AtomicU64,
    pub(crate) records_synced: AtomicU64,
    pub(crate) max_batch: AtomicU64,
    pub(crate) fsync_micros: AtomicU64,
    pub(crate) fsync_micros_max: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) current_size: AtomicU64,
    pub(crate) base_size: AtomicU64,
    pub(crate) segments: AtomicU64,
}
