//! Helpers shared by the test modules.

use basalt_aof::fs::{Fs, MemFs};
use basalt_aof::{FsyncPolicy, Log, Options, Recovery, RecoveryMode, RecoveryReport};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub fn dir() -> PathBuf {
    PathBuf::from("/log")
}

pub fn opts(fs: Arc<dyn Fs>, policy: FsyncPolicy, mode: RecoveryMode) -> Options {
    Options {
        fs,
        fsync: policy,
        recovery: mode,
        retry_interval: Duration::from_millis(5),
        everysec_interval: Duration::from_millis(50),
        ..Options::default()
    }
}

pub fn mem_opts(fs: &MemFs) -> Options {
    opts(
        Arc::new(fs.clone()),
        FsyncPolicy::Always,
        RecoveryMode::TruncateTail,
    )
}

/// Opens the log and collects every record to replay.
pub fn replay(dir: &Path, o: Options) -> basalt_aof::Result<(Log, Vec<Vec<u8>>, RecoveryReport)> {
    let mut rec = Recovery::open(dir, o)?;
    let mut out = Vec::new();
    while let Some(r) = rec.next()? {
        out.push(r.payload.to_vec());
    }
    let (log, report) = rec.finish()?;
    Ok((log, out, report))
}

/// Payload number `i`: varying sizes, recognisable content.
pub fn payload(i: usize) -> Vec<u8> {
    let mut p = format!("record-{i}:").into_bytes();
    p.extend(vec![b'a' + (i % 26) as u8; i % 37]);
    p
}

/// Writes `n` records to a fresh log on `fs` and closes it.
pub fn write_records(fs: &MemFs, n: usize) -> Vec<Vec<u8>> {
    let (log, got, _) = replay(&dir(), mem_opts(fs)).expect("open");
    assert!(got.is_empty());
    let all: Vec<Vec<u8>> = (0..n).map(payload).collect();
    let mut last = basalt_aof::Lsn(0);
    for p in &all {
        last = log.append(p).expect("append");
    }
    assert!(log.wait_durable(last, Duration::from_secs(10)));
    log.close().expect("close");
    all
}

pub fn segment_path(seq: u64) -> PathBuf {
    dir().join(basalt_aof::format::segment_file_name(seq))
}
