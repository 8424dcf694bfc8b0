use crate::support::*;
use basalt_aof::fs::MemFs;
use basalt_aof::Lsn;
use std::time::Duration;

#[test]
fn fresh_log_round_trips() {
    let fs = MemFs::new();
    let all = write_records(&fs, 100);
    let (log, got, report) = replay(&dir(), mem_opts(&fs)).unwrap();
    assert_eq!(got, all);
    assert_eq!(report.records, 100);
    assert!(report.truncated.is_none());
    assert_eq!(log.appended(), report.end);
    assert_eq!(log.durable(), report.end);
    // Appending continues after the recovered end.
    let lsn = log.append(b"more").unwrap();
    assert_eq!(lsn, Lsn(report.end.0 + 12));
    assert!(log.wait_durable(lsn, Duration::from_secs(5)));
    drop(log);
    let (_log, got, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    assert_eq!(got.len(), 101);
    assert_eq!(got.last().unwrap(), b"more");
}

#[test]
fn positions_are_byte_positions() {
    let fs = MemFs::new();
    let (log, _, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    assert_eq!(log.append(b"").unwrap(), Lsn(8));
    assert_eq!(log.append(b"abc").unwrap(), Lsn(19));
}

#[test]
fn recovery_reports_progress() {
    let fs = MemFs::new();
    write_records(&fs, 50);
    let mut rec = basalt_aof::Recovery::open(dir(), mem_opts(&fs)).unwrap();
    let (done, total) = rec.progress();
    assert_eq!(done, 0);
    assert_eq!(total, fs.contents(&segment_path(1)).unwrap().len() as u64);
    while rec.next().unwrap().is_some() {}
    assert_eq!(rec.progress(), (total, total));
}

#[test]
fn append_parts_is_one_record() {
    let fs = MemFs::new();
    let (log, _, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    let a = log
        .append_parts(&[b"*2\r\n", b"$3\r\nGET\r\n", b"", b"$1\r\nk\r\n"])
        .unwrap();
    let b = log.append(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").unwrap();
    assert_eq!(b.0 - a.0, a.0);
    assert!(log.wait_durable(b, Duration::from_secs(5)));
    drop(log);
    let (_l, got, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], got[1]);
}
