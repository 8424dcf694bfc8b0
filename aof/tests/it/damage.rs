//! Damage the log file and check exactly what survives (fjall-style).

use crate::support::*;
use basalt_aof::format::{RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use basalt_aof::fs::MemFs;
use basalt_aof::{Error, FsyncPolicy, RecoveryMode};
use std::sync::Arc;

/// File offset where record `i` starts in a log written by `write_records`.
fn record_offset(all: &[Vec<u8>], i: usize) -> usize {
    SEGMENT_HEADER_LEN
        + all
            .iter()
            .take(i)
            .map(|p| p.len() + RECORD_HEADER_LEN)
            .sum::<usize>()
}

#[test]
fn garbage_after_records_is_truncated() {
    let fs = MemFs::new();
    let all = write_records(&fs, 20);
    let len = fs.contents(&segment_path(1)).unwrap().len();
    fs.damage(&segment_path(1), |b| {
        b.extend_from_slice(b"\x13\x00\x00\x00garbage garbage garbage")
    });
    let (_log, got, report) = replay(&dir(), mem_opts(&fs)).unwrap();
    assert_eq!(got, all);
    let t = report.truncated.expect("truncation reported");
    assert_eq!(t.offset, len as u64);
    assert_eq!(t.dropped, 27);
    assert_eq!(fs.contents(&segment_path(1)).unwrap().len(), len);
}

#[test]
fn zero_filled_tail_is_the_end_of_the_log() {
    // The writer zero-fills ahead of its appends (FORMAT.md): zeros after
    // the last record are free space, not damage, in every mode.
    let fs = MemFs::new();
    let all = write_records(&fs, 5);
    let len = fs.contents(&segment_path(1)).unwrap().len();
    for tail in [1, 7, 8, 4096, 600_000] {
        let fs2 = fs.crash();
        fs2.damage(&segment_path(1), |b| {
            b.extend(std::iter::repeat_n(0u8, tail))
        });
        let strict = opts(
            Arc::new(fs2.clone()),
            FsyncPolicy::Always,
            RecoveryMode::Strict,
        );
        let (log, got, report) = replay(&dir(), strict).unwrap();
        assert_eq!(got, all, "tail {tail}");
        assert!(report.truncated.is_none(), "tail {tail}");
        assert_eq!(fs2.contents(&segment_path(1)).unwrap().len(), len);
        log.append(b"next").unwrap();
        drop(log);
        let (_l, got, _) = replay(&dir(), mem_opts(&fs2)).unwrap();
        assert_eq!(got.len(), 6);
    }
    // A partial record followed by zeros is still a torn tail.
    let fs2 = fs.crash();
    fs2.damage(&segment_path(1), |b| {
        b.extend_from_slice(b"\x13\x00\x00\x00ab");
        b.extend(std::iter::repeat_n(0u8, 5000));
    });
    let (_log, got, report) = replay(&dir(), mem_opts(&fs2)).unwrap();
    assert_eq!(got, all);
    let t = report.truncated.expect("torn tail reported");
    assert_eq!((t.offset, t.dropped), (len as u64, 5006));
}

#[test]
fn writer_zero_fills_ahead_and_a_clean_close_trims_it() {
    let fs = MemFs::new();
    let (log, _, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    let lsn = log.append(b"hello").unwrap();
    assert!(log.wait_durable(lsn, std::time::Duration::from_secs(20)));
    let records_end = SEGMENT_HEADER_LEN + RECORD_HEADER_LEN + 5;
    // Durable, and the file already extends past the record in zeros.
    let crashed = fs.crash();
    let bytes = crashed.contents(&segment_path(1)).unwrap();
    assert!(bytes.len() > records_end + 4096, "{}", bytes.len());
    assert!(bytes[records_end..].iter().all(|&b| b == 0));
    let (_l, got, report) = replay(&dir(), mem_opts(&crashed)).unwrap();
    assert_eq!(got, vec![b"hello".to_vec()]);
    assert!(report.truncated.is_none());
    drop(log);
    assert_eq!(fs.contents(&segment_path(1)).unwrap().len(), records_end);
}

#[test]
fn last_record_cut_at_every_byte() {
    let fs = MemFs::new();
    let all = write_records(&fs, 10);
    let full = fs.contents(&segment_path(1)).unwrap();
    let last_start = record_offset(&all, 9);
    assert_eq!(record_offset(&all, 10), full.len());
    for cut in last_start..full.len() {
        let fs2 = fs.crash();
        fs2.damage(&segment_path(1), |b| b.truncate(cut));
        let (log, got, report) = replay(&dir(), mem_opts(&fs2)).unwrap();
        assert_eq!(got, all[..9], "cut at {cut}");
        if cut == last_start {
            assert!(report.truncated.is_none());
        } else {
            let t = report.truncated.expect("truncated");
            assert_eq!(
                (t.offset, t.dropped),
                (last_start as u64, (cut - last_start) as u64)
            );
        }
        // New appends go right after the surviving prefix.
        log.append(b"next").unwrap();
        drop(log);
        let (_l, got, _) = replay(&dir(), mem_opts(&fs2)).unwrap();
        assert_eq!(got.len(), 10);
        assert_eq!(got[9], b"next");
    }
}

#[test]
fn flipped_crc_on_last_record_is_a_torn_tail() {
    let fs = MemFs::new();
    let all = write_records(&fs, 10);
    let at = record_offset(&all, 9) + 5;
    fs.damage(&segment_path(1), |b| b[at] ^= 0xff);
    let (_log, got, report) = replay(&dir(), mem_opts(&fs)).unwrap();
    assert_eq!(got, all[..9]);
    assert_eq!(
        report.truncated.unwrap().offset,
        record_offset(&all, 9) as u64
    );
}

#[test]
fn strict_refuses_a_torn_tail() {
    let fs = MemFs::new();
    write_records(&fs, 10);
    fs.damage(&segment_path(1), |b| {
        let n = b.len();
        b.truncate(n - 3)
    });
    let o = opts(
        Arc::new(fs.clone()),
        FsyncPolicy::Always,
        RecoveryMode::Strict,
    );
    assert!(matches!(replay(&dir(), o), Err(Error::Corrupt { .. })));
}

#[test]
fn flipped_byte_in_the_middle_is_refused_with_file_and_offset() {
    let fs = MemFs::new();
    let all = write_records(&fs, 50);
    let bad = record_offset(&all, 20);
    fs.damage(&segment_path(1), |b| b[bad + 4] ^= 0x01); // the stored crc
    for mode in [RecoveryMode::Strict, RecoveryMode::TruncateTail] {
        let o = opts(Arc::new(fs.clone()), FsyncPolicy::Always, mode);
        let err = replay(&dir(), o).unwrap_err();
        match &err {
            Error::Corrupt { path, offset, .. } => {
                assert_eq!(path, &segment_path(1));
                assert_eq!(*offset, bad as u64);
            }
            other => panic!("unexpected {other}"),
        }
        let text = err.to_string();
        assert!(text.contains("segment-00000000000000000001.aof"), "{text}");
        assert!(text.contains(&format!("offset {bad}")), "{text}");
        assert!(text.contains("basalt-check-aof --fix /log"), "{text}");
    }
    // Nothing was modified by the refused opens.
    let o = opts(
        Arc::new(fs.clone()),
        FsyncPolicy::Always,
        RecoveryMode::LoadUntilDamage,
    );
    let (log, got, report) = replay(&dir(), o).unwrap();
    assert_eq!(got, all[..20]);
    let d = report.damage.expect("damage reported");
    assert_eq!(d.offset, bad as u64);
    assert_eq!(
        d.saved_as,
        vec![dir().join("segment-00000000000000000001.aof.damaged")]
    );
    assert!(fs.contents(&d.saved_as[0]).unwrap().len() > bad);
    // The log continues from the damage point and reopens cleanly.
    log.append(b"after").unwrap();
    drop(log);
    let (_l, got, report) = replay(&dir(), mem_opts(&fs)).unwrap();
    assert_eq!(got.len(), 21);
    assert!(report.damage.is_none() && report.truncated.is_none());
}

#[test]
fn damaged_header_is_an_error() {
    let fs = MemFs::new();
    write_records(&fs, 3);
    fs.damage(&segment_path(1), |b| b[0] = b'X');
    let err = replay(&dir(), mem_opts(&fs)).unwrap_err();
    assert!(matches!(err, Error::BadHeader { .. }), "{err}");
}

#[test]
fn load_until_damage_twice_keeps_both_copies() {
    let fs = MemFs::new();
    let all = write_records(&fs, 30);
    let o = || {
        opts(
            Arc::new(fs.clone()),
            FsyncPolicy::Always,
            RecoveryMode::LoadUntilDamage,
        )
    };
    let first = record_offset(&all, 20);
    fs.damage(&segment_path(1), |b| b[first + 4] ^= 1);
    let (log, got, _) = replay(&dir(), o()).unwrap();
    assert_eq!(got.len(), 20);
    for i in 100..110 {
        log.append(&payload(i)).unwrap();
    }
    drop(log);
    let second = record_offset(&all, 10);
    fs.damage(&segment_path(1), |b| b[second + 4] ^= 1);
    let (_log, got, report) = replay(&dir(), o()).unwrap();
    assert_eq!(got, all[..10]);
    let saved = report.damage.unwrap().saved_as;
    assert_eq!(
        saved,
        vec![dir().join("segment-00000000000000000001.aof.damaged.1")]
    );
    assert!(fs
        .contents(&dir().join("segment-00000000000000000001.aof.damaged"))
        .is_some());
}
