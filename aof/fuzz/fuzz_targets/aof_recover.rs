//! Arbitrary bytes after a valid segment header: recovery (every mode) and
//! the checker must not panic, and after `check --fix` (when it says the
//! file is fixable) strict recovery must accept the log.
//!
//! `cd aof/fuzz && cargo +nightly fuzz run aof_recover -- -max_total_time=60`

#![no_main]

use basalt_aof::format::{segment_file_name, Lsn, SegmentHeader};
use basalt_aof::fs::{Fs, MemFs};
use basalt_aof::manifest::{write_manifest, Manifest, SegmentEntry};
use basalt_aof::repair::check;
use basalt_aof::{FsyncPolicy, Options, Recovery, RecoveryMode};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::Arc;

fn opts(fs: &MemFs, recovery: RecoveryMode) -> Options {
    Options { fs: Arc::new(fs.clone()), fsync: FsyncPolicy::No, recovery, ..Options::default() }
}

fn replay(fs: &MemFs, mode: RecoveryMode) -> Result<u64, basalt_aof::Error> {
    let mut rec = Recovery::open(Path::new("/log"), opts(fs, mode))?;
    let mut n = 0;
    while rec.next()?.is_some() {
        n += 1;
    }
    Ok(n)
}

fuzz_target!(|data: &[u8]| {
    let dir = Path::new("/log");
    let fs = MemFs::new();
    let m = Manifest { snapshot: None, segments: vec![SegmentEntry { seq: 1, start: Lsn(0) }] };
    write_manifest(&fs, dir, &m).expect("manifest");
    let mut seg = SegmentHeader { seq: 1, start: Lsn(0) }.encode().to_vec();
    seg.extend_from_slice(data);
    let path = dir.join(segment_file_name(1));
    let mut f = fs.create(&path).expect("create");
    f.write_all_at(0, &seg).expect("write");
    f.sync_data().expect("sync");
    fs.sync_dir(dir).expect("sync dir");

    for mode in [RecoveryMode::Strict, RecoveryMode::TruncateTail, RecoveryMode::LoadUntilDamage] {
        let _ = replay(&fs.crash(), mode);
    }
    let strict_before = replay(&fs, RecoveryMode::Strict);
    let report = check(&fs, dir, true).expect("check");
    if strict_before.is_ok() {
        assert!(report.is_clean(), "strict recovery accepted a log the checker calls damaged:\n{report}");
    }
    if report.files.iter().all(|f| f.unfixable.is_none()) {
        let after = replay(&fs, RecoveryMode::Strict);
        assert!(after.is_ok(), "still damaged after fix: {after:?}\n{report}");
        assert!(check(&fs, dir, false).expect("recheck").is_clean());
    }
});
