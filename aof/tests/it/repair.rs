//! The check/repair logic behind basalt-check-aof.

use crate::support::*;
use basalt_aof::format::{RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use basalt_aof::fs::MemFs;
use basalt_aof::repair::{check, ProblemKind};
use basalt_aof::{Error, FsyncPolicy, RecoveryMode};
use std::sync::Arc;
use std::time::Duration;

fn record_offset(all: &[Vec<u8>], i: usize) -> u64 {
    (SEGMENT_HEADER_LEN
        + all
            .iter()
            .take(i)
            .map(|p| p.len() + RECORD_HEADER_LEN)
            .sum::<usize>()) as u64
}

#[test]
fn clean_log_checks_clean() {
    let fs = MemFs::new();
    write_records(&fs, 30);
    let r = check(&fs, &dir(), false).unwrap();
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.files[0].records, 30);
    assert!(r.to_string().contains("log is clean"));
}

#[test]
fn flipped_byte_in_the_middle_is_salvaged() {
    let fs = MemFs::new();
    let all = write_records(&fs, 50);
    let bad = record_offset(&all, 20);
    fs.damage(&segment_path(1), |b| b[bad as usize + 10] ^= 0x40); // payload byte
    let before = fs.contents(&segment_path(1)).unwrap();

    let r = check(&fs, &dir(), false).unwrap();
    assert!(!r.is_clean() && r.damage_remains());
    let p = &r.files[0].problems[0];
    assert_eq!(p.kind, ProblemKind::Damaged);
    assert_eq!((p.offset, p.end), (bad, record_offset(&all, 21)));
    assert_eq!(p.records_after, 29);
    assert_eq!(r.files[0].records, 49);
    let text = r.to_string();
    assert!(text.contains(&format!("damaged at offset {bad}")), "{text}");
    assert_eq!(
        fs.contents(&segment_path(1)).unwrap(),
        before,
        "check alone modifies nothing"
    );

    let r = check(&fs, &dir(), true).unwrap();
    assert!(!r.damage_remains(), "{r}");
    let fix = r.files[0].fix.as_ref().unwrap();
    assert_eq!(fix.padded, vec![(bad, record_offset(&all, 21) - bad)]);
    assert_eq!(
        fs.contents(&segment_path(1)).unwrap().len(),
        before.len(),
        "positions unchanged"
    );
    assert_eq!(
        fix.saved_to.as_deref(),
        Some(
            dir()
                .join("segment-00000000000000000001.aof.dropped")
                .as_path()
        )
    );
    assert!(fs.contents(fix.saved_to.as_ref().unwrap()).unwrap().len() as u64 == p.end - p.offset);
    // A second repair keeps the first one's saved bytes.
    fs.damage(&segment_path(1), |b| {
        b[record_offset(&all, 30) as usize + 4] ^= 1
    });
    let r2 = check(&fs, &dir(), true).unwrap();
    let saved2 = r2.files[0].fix.as_ref().unwrap().saved_to.clone().unwrap();
    assert_eq!(
        saved2,
        dir().join("segment-00000000000000000001.aof.dropped.1")
    );

    // Strict recovery now loads every record but the damaged ones.
    let o = opts(
        Arc::new(fs.clone()),
        FsyncPolicy::Always,
        RecoveryMode::Strict,
    );
    let (log, got, report) = replay(&dir(), o).unwrap();
    let mut expect = all.clone();
    expect.remove(30);
    expect.remove(20);
    assert_eq!(got, expect);
    assert!(report.padding_bytes > 0);
    drop(log);
    assert!(check(&fs, &dir(), false).unwrap().is_clean());
}

#[test]
fn several_damaged_regions_and_a_torn_tail() {
    let fs = MemFs::new();
    let all = write_records(&fs, 40);
    let a = record_offset(&all, 5) as usize;
    let b = record_offset(&all, 17) as usize;
    let c = record_offset(&all, 18) as usize;
    let d = record_offset(&all, 19);
    let torn = record_offset(&all, 39) as usize;
    fs.damage(&segment_path(1), |bytes| {
        bytes[a] ^= 1; // length word
        bytes[b + 4] ^= 1; // crc of 17
        bytes[c + 9] ^= 1; // payload of 18 (adjacent: merged)
        bytes.truncate(torn + 5);
    });
    let r = check(&fs, &dir(), true).unwrap();
    let f = &r.files[0];
    let kinds: Vec<_> = f.problems.iter().map(|p| (p.kind, p.offset)).collect();
    assert_eq!(
        kinds,
        vec![
            (ProblemKind::Damaged, a as u64),
            (ProblemKind::Damaged, b as u64), // 17 and 18: one region
            (ProblemKind::TornTail, torn as u64)
        ]
    );
    let fix = f.fix.as_ref().unwrap();
    assert_eq!(
        fix.padded,
        vec![
            (a as u64, record_offset(&all, 6) - a as u64),
            (b as u64, d - b as u64)
        ]
    );
    assert_eq!(fix.truncated_to, Some(torn as u64));
    let (_l, got, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    let expect: Vec<_> = (0..39)
        .filter(|i| ![5, 17, 18].contains(i))
        .map(payload)
        .collect();
    assert_eq!(got, expect);
}

#[test]
fn repaired_log_keeps_snapshot_positions() {
    // Damage in a segment the snapshot partly covers: records after the
    // damage must still be above the covered position after the fix.
    let fs = MemFs::new();
    let (log, _, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    let mut lsns = Vec::new();
    for i in 0..20 {
        lsns.push(log.append(&payload(i)).unwrap());
    }
    assert!(log.wait_durable(lsns[19], std::time::Duration::from_secs(10)));
    log.install_snapshot("snap", lsns[9]).unwrap();
    drop(log);
    let all: Vec<_> = (0..20).map(payload).collect();
    let bad = record_offset(&all, 3) as usize;
    fs.damage(&segment_path(1), |b| b[bad + 4] ^= 1);
    assert!(matches!(
        replay(&dir(), mem_opts(&fs)),
        Err(Error::Corrupt { .. })
    ));
    check(&fs, &dir(), true).unwrap();
    let (_l, got, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    assert_eq!(got, (10..20).map(payload).collect::<Vec<_>>());
}

#[test]
fn short_sealed_segment_is_padded_to_the_next_start() {
    let fs = MemFs::new();
    let (log, _, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    for i in 0..10 {
        log.append(&payload(i)).unwrap();
    }
    log.rotate(Duration::from_secs(20)).unwrap();
    for i in 10..15 {
        log.append(&payload(i)).unwrap();
    }
    drop(log);
    let all: Vec<_> = (0..10).map(payload).collect();
    let cut = record_offset(&all, 8) as usize + 3;
    fs.damage(&segment_path(1), |b| b.truncate(cut));
    let err = replay(&dir(), mem_opts(&fs)).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    let r = check(&fs, &dir(), true).unwrap();
    assert_eq!(r.files[0].problems[0].kind, ProblemKind::MissingTail);
    assert!(!r.damage_remains(), "{r}");
    let (_l, got, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    let expect: Vec<_> = (0..15).filter(|&i| i != 8 && i != 9).map(payload).collect();
    assert_eq!(got, expect);
}

#[test]
fn single_file_target() {
    let fs = MemFs::new();
    let all = write_records(&fs, 10);
    let torn = record_offset(&all, 9) as usize;
    fs.damage(&segment_path(1), |b| b.truncate(torn + 2));
    let r = check(&fs, &segment_path(1), true).unwrap();
    assert_eq!(r.files.len(), 1);
    assert_eq!(
        r.files[0].fix.as_ref().unwrap().truncated_to,
        Some(torn as u64)
    );
    assert!(check(&fs, &dir().join("MANIFEST"), false)
        .unwrap()
        .is_clean());
}

#[test]
fn bad_manifest_is_reported_and_segments_still_checked() {
    let fs = MemFs::new();
    write_records(&fs, 10);
    fs.damage(&dir().join("MANIFEST"), |b| b[3] ^= 1);
    let r = check(&fs, &dir(), true).unwrap();
    assert!(r.damage_remains());
    assert!(r.errors[0].contains("bad manifest"), "{r}");
    assert_eq!(r.files.len(), 1);
    assert_eq!(r.files[0].records, 10);
}

/// Damage in the middle of a 200 MB segment of RESP-like records: the
/// resynchronisation must not re-read the file per candidate offset.
/// `cargo test --release -p basalt-aof --test it -- --ignored big_segment`
#[test]
#[ignore]
fn big_segment_damage_is_found_fast() {
    use basalt_aof::{Options, Recovery};
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = Recovery::open(
        tmp.path(),
        Options {
            fsync: FsyncPolicy::No,
            ..Options::default()
        },
    )
    .unwrap()
    .finish()
    .unwrap();
    let n = 3_000_000usize;
    for i in 0..n {
        let p = format!("*3\r\n$3\r\nSET\r\n$10\r\nkey:{i:06}\r\n$16\r\nvalue-{i:010}\r\n");
        log.append(p.as_bytes()).unwrap();
    }
    log.close().unwrap();
    drop(log);
    let seg = tmp.path().join(basalt_aof::format::segment_file_name(1));
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&seg, &bytes).unwrap();
    let t = std::time::Instant::now();
    let err = Recovery::open(tmp.path(), Options::default()).and_then(|mut r| {
        while r.next()?.is_some() {}
        Ok(())
    });
    assert!(matches!(err, Err(Error::Corrupt { .. })));
    let recovery_time = t.elapsed();
    let t = std::time::Instant::now();
    let r = check(&basalt_aof::fs::StdFs, tmp.path(), true).unwrap();
    assert_eq!(r.files[0].records, n as u64 - 1);
    println!(
        "{} MB: recovery found the damage in {recovery_time:?}, check --fix took {:?}",
        bytes.len() >> 20,
        t.elapsed()
    );
    assert!(recovery_time < std::time::Duration::from_secs(20));
}
