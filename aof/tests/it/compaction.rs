//! Rotation, snapshot installation, and crashes in between.

use crate::support::*;
use basalt_aof::fs::{Fs, MemFs};
use basalt_aof::{Error, Lsn, SnapshotRef};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

#[test]
fn rotate_then_install_snapshot_drops_covered_segments() {
    let fs = MemFs::new();
    let (log, _, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    for i in 0..10 {
        log.append(&payload(i)).unwrap();
    }
    let cut = log.rotate(Duration::from_secs(20)).unwrap();
    assert_eq!(cut, log.appended());
    assert_eq!(log.durable(), cut);
    for i in 10..20 {
        log.append(&payload(i)).unwrap();
    }
    assert_eq!(log.status().segments, 2);
    let report = log.install_snapshot("snap-1.bsnap", cut).unwrap();
    assert_eq!(report.previous_snapshot, None);
    assert_eq!(report.removed_segments, vec![segment_path(1)]);
    assert!(fs.contents(&segment_path(1)).is_none());
    assert_eq!(log.status().segments, 1);
    let last = log.append(&payload(20)).unwrap();
    assert!(log.wait_durable(last, LONG));
    drop(log);

    let (log, got, report) = replay(&dir(), mem_opts(&fs)).unwrap();
    assert_eq!(
        report.snapshot,
        Some(SnapshotRef {
            name: "snap-1.bsnap".into(),
            covered: cut
        })
    );
    assert_eq!(got, (10..21).map(payload).collect::<Vec<_>>());
    // A second compaction names the previous snapshot for deletion.
    let cut2 = log.rotate(Duration::from_secs(20)).unwrap();
    let r = log.install_snapshot("snap-2.bsnap", cut2).unwrap();
    assert_eq!(r.previous_snapshot.unwrap().name, "snap-1.bsnap");
    drop(log);
    let (_log, got, report) = replay(&dir(), mem_opts(&fs)).unwrap();
    assert!(got.is_empty());
    assert_eq!(report.snapshot.unwrap().covered, cut2);
}

#[test]
fn snapshot_inside_a_segment_skips_covered_records() {
    let fs = MemFs::new();
    let (log, _, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    let mut lsns = Vec::new();
    for i in 0..10 {
        lsns.push(log.append(&payload(i)).unwrap());
    }
    assert!(log.wait_durable(lsns[9], LONG));
    log.install_snapshot("s", lsns[4]).unwrap();
    drop(log);
    let (_l, got, report) = replay(&dir(), mem_opts(&fs)).unwrap();
    assert_eq!(got, (5..10).map(payload).collect::<Vec<_>>());
    assert_eq!(report.covered_records, 5);
}

#[test]
fn snapshot_beyond_the_log_is_refused() {
    let fs = MemFs::new();
    let (log, _, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    let err = log.install_snapshot("s", Lsn(1000)).unwrap_err();
    assert!(matches!(err, Error::SnapshotBeyondLog { .. }));
}

#[test]
fn many_segments_replay_in_order_and_positions_continue() {
    let fs = MemFs::new();
    let (log, _, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    let mut i = 0;
    for _ in 0..5 {
        for _ in 0..7 {
            log.append(&payload(i)).unwrap();
            i += 1;
        }
        log.rotate(Duration::from_secs(20)).unwrap();
    }
    let end = log.appended();
    drop(log);
    let (log, got, report) = replay(&dir(), mem_opts(&fs)).unwrap();
    assert_eq!(got, (0..35).map(payload).collect::<Vec<_>>());
    assert_eq!(report.segments, 6);
    assert_eq!(report.end, end);
    assert_eq!(log.appended(), end);
}

#[test]
fn crash_at_each_step_of_a_compaction_loses_nothing() {
    // Power loss after the rotation, before/after the manifest switch: the
    // log must replay either from the old state or from the snapshot.
    let fs = MemFs::new();
    let (log, _, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    for i in 0..10 {
        log.append(&payload(i)).unwrap();
    }
    let cut = log.rotate(Duration::from_secs(20)).unwrap();
    let after_rotate = fs.crash();
    let last = log.append(&payload(10)).unwrap();
    assert!(log.wait_durable(last, LONG));
    log.install_snapshot("snap", cut).unwrap();
    let after_install = fs.crash();
    drop(log);

    let (_l, got, report) = replay(&dir(), mem_opts(&after_rotate)).unwrap();
    assert_eq!(got, (0..10).map(payload).collect::<Vec<_>>());
    assert!(report.snapshot.is_none());
    let (_l, got, report) = replay(&dir(), mem_opts(&after_install)).unwrap();
    assert_eq!(got, vec![payload(10)]);
    assert_eq!(report.snapshot.unwrap().name, "snap");
}

#[test]
fn stray_segment_from_interrupted_rotation_is_removed() {
    let fs = MemFs::new();
    let all = write_records(&fs, 5);
    // A segment file created but never listed in the manifest.
    let stray = segment_path(2);
    fs.create(&stray).unwrap();
    fs.sync_dir(&dir()).unwrap();
    let (_l, got, report) = replay(&dir(), mem_opts(&fs)).unwrap();
    assert_eq!(got, all);
    assert_eq!(report.removed_files, vec![stray.clone()]);
    assert!(fs.contents(&stray).is_none());
}

#[test]
fn missing_manifest_with_segments_is_an_error() {
    let fs = MemFs::new();
    write_records(&fs, 3);
    fs.remove(&dir().join("MANIFEST")).unwrap();
    let err = replay(&dir(), mem_opts(&fs)).unwrap_err();
    assert!(err.to_string().contains("manifest is missing"), "{err}");
}

#[test]
fn missing_middle_segment_is_an_error() {
    let fs = MemFs::new();
    let (log, _, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    log.append(b"a").unwrap();
    log.rotate(Duration::from_secs(20)).unwrap();
    log.append(b"b").unwrap();
    log.rotate(Duration::from_secs(20)).unwrap();
    drop(log);
    fs.remove(&segment_path(2)).unwrap();
    let err = replay(&dir(), mem_opts(&fs)).unwrap_err();
    assert!(
        err.to_string().contains("segment-00000000000000000002.aof"),
        "{err}"
    );
}

#[test]
fn begin_rotate_cuts_exactly_between_appends() {
    let fs = MemFs::new();
    let (log, _, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    for i in 0..5 {
        log.append(&payload(i)).unwrap();
    }
    let b = log.begin_rotate().unwrap();
    assert_eq!(b, log.appended());
    let mut last = Lsn(0);
    for i in 5..10 {
        last = log.append(&payload(i)).unwrap();
    }
    assert!(log.wait_durable(last, LONG));
    drop(log);
    let r = basalt_aof::repair::check(&fs, &dir(), false).unwrap();
    assert_eq!(r.files.len(), 2);
    assert_eq!((r.files[0].records, r.files[1].records), (5, 5));
    assert_eq!(r.files[1].header.as_ref().unwrap().start, b);
    let (_l, got, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    assert_eq!(got, (0..10).map(payload).collect::<Vec<_>>());
}

#[test]
fn rotation_during_a_disk_failure_is_retried() {
    use basalt_aof::fs::FaultFs;
    use basalt_aof::{FsyncPolicy, RecoveryMode};
    use std::sync::Arc;
    let mem = MemFs::new();
    let (ffs, faults) = FaultFs::new(Arc::new(mem.clone()));
    let o = opts(
        Arc::new(ffs),
        FsyncPolicy::Always,
        RecoveryMode::TruncateTail,
    );
    let (log, _, _) = replay(&dir(), o).unwrap();
    log.append(b"one").unwrap();
    faults.set_fail_syncs(true);
    assert!(log.rotate(Duration::from_millis(200)).is_err());
    let last = log.append(b"two").unwrap();
    faults.heal();
    assert!(log.wait_durable(last, LONG));
    assert_eq!(log.status().segments, 2);
    drop(log);
    let (_l, got, report) = replay(&dir(), mem_opts(&mem.crash())).unwrap();
    assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec()]);
    assert_eq!(report.segments, 2);
}

#[test]
fn snapshot_names_with_line_breaks_are_refused() {
    let fs = MemFs::new();
    let (log, _, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    let lsn = log.append(b"a").unwrap();
    assert!(matches!(
        log.install_snapshot("a\nsegment 9 0", lsn),
        Err(Error::InvalidSnapshotName { .. })
    ));
    assert!(matches!(
        log.install_snapshot("", lsn),
        Err(Error::InvalidSnapshotName { .. })
    ));
}

#[test]
fn manifest_without_the_snapshot_its_segments_need_is_refused() {
    use basalt_aof::manifest::{write_manifest, Manifest, SegmentEntry};
    let fs = MemFs::new();
    let (log, _, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    log.append(b"a").unwrap();
    let cut = log.rotate(LONG).unwrap();
    log.install_snapshot("s", cut).unwrap();
    drop(log);
    // Someone drops the snapshot line: the first segment starts past 0.
    let m = Manifest {
        snapshot: None,
        segments: vec![SegmentEntry { seq: 2, start: cut }],
    };
    write_manifest(&fs, &dir(), &m).unwrap();
    let err = replay(&dir(), mem_opts(&fs)).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}
