//! `basalt-aof`: Basalt's append-only log.
//!
//! **What it is.** A directory of segment files plus a manifest. Each record
//! is an opaque payload framed as `[len u32 LE][crc32 u32 LE][payload]`
//! (byte-level layout in `FORMAT.md`). Many threads append; one flusher
//! thread writes each batch with one `write` and one `fdatasync` (group
//! commit) under the chosen [`FsyncPolicy`], and publishes the durable
//! position ([`Log::durable`], [`Log::subscribe`]). At start, [`Recovery`]
//! replays the records after the snapshot the manifest names, truncating a
//! torn tail and refusing (or stopping at) damage before it. The
//! [`repair`] module checks and salvages a damaged log for
//! `basalt-check-aof`.
//!
//! **What it is not.** It knows nothing about commands, keys or RESP: the
//! server decides what a payload means and makes it deterministic. It does
//! not write snapshots (the manifest only names them), does not lock the data
//! directory, and runs no async runtime (tokio is used only for its `watch`
//! channel).
//!
//! **Layout.**
//! - [`format`](mod@format): constants, [`Lsn`], segment header and record encoding.
//! - [`fs`]: the file-I/O seam: [`fs::StdFs`], [`fs::MemFs`] (power-loss
//!   simulation), [`fs::FaultFs`] (failing / short writes, slow fsyncs),
//!   [`fs::SyncJournalFs`] + [`fs::simulate_power_loss`] (power loss on the
//!   real filesystem after a `kill -9`, for the server's crash tests).
//! - [`manifest`]: the manifest file, replaced atomically.
//! - [`options`]: [`Options`], [`FsyncPolicy`] (what survives a crash under
//!   each), [`RecoveryMode`].
//! - [`writer`]: [`Log`]: append, durability waits, rotation, snapshot
//!   installation; `writer/flusher.rs` is the flusher thread (batching,
//!   fsync, retries after disk errors).
//! - [`status`]: [`Status`], the health and counters for `INFO persistence`.
//! - [`reader`]: sequential scan of one segment in constant memory.
//! - [`recovery`]: [`Recovery`]: open, replay, torn-tail handling.
//! - [`repair`]: check and fix, used by `basalt-check-aof`.
//! - [`error`]: [`Error`], naming file and offset.
//!
//! Tests: unit tests beside the code; `tests/it/` (one binary: damage,
//! writer, crash, compaction, repair, props); `benches/aof.rs`;
//! `fuzz/` (cargo-fuzz, its own workspace).
//!
//! ```no_run
//! use basalt_aof::{Options, Recovery};
//! let mut rec = Recovery::open("data/aof", Options::default())?;
//! if let Some(snap) = rec.snapshot() { /* load snap.name first */ }
//! while let Some(r) = rec.next()? { /* apply r.payload */ }
//! let (log, report) = rec.finish()?;          // torn tail truncated, writer running
//! let lsn = log.append(b"*1\r\n$4\r\nPING\r\n")?; // cheap: memcpy into the batch
//! let mut rx = log.subscribe();                 // async: rx.wait_for(|d| *d >= lsn).await
//! log.wait_durable(lsn, std::time::Duration::from_secs(1)); // blocking form
//! // Compaction: cut under the shard locks, snapshot, then install.
//! let cut = log.begin_rotate()?;
//! log.install_snapshot("snapshot-1.bsnap", cut)?;
//! # let _ = (report, rx);
//! # Ok::<(), basalt_aof::Error>(())
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod error;
pub mod format;
pub mod fs;
pub mod manifest;
pub mod options;
pub mod reader;
pub mod recovery;
pub mod repair;
pub mod status;
pub mod writer;

pub use error::{Error, Result};
pub use format::Lsn;
pub use manifest::SnapshotRef;
pub use recovery::{open_with, Record, Recovery, RecoveryReport};
pub use writer::{FsyncPolicy, InstallReport, Log, Options, RecoveryMode, Status};
