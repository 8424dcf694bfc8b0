//! The writer under concurrency, power loss, and disk faults.

use crate::support::*;
use basalt_aof::fs::{FaultFs, FaultKind, Fs, MemFs};
use basalt_aof::{FsyncPolicy, Lsn, RecoveryMode};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

#[test]
fn power_loss_keeps_every_durable_record_and_invents_none() {
    for round in 0..5 {
        let fs = MemFs::new();
        let (log, _, _) = replay(&dir(), mem_opts(&fs)).unwrap();
        let log = Arc::new(log);
        let acked: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for t in 0..4 {
            let (log, acked, stop) = (log.clone(), acked.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let p = format!("t{t}-{i}").into_bytes();
                    let lsn = log.append(&p).unwrap();
                    // Like the server: only count what durable() covers.
                    let durable = if i % 3 == 0 {
                        log.wait_durable(lsn, LONG)
                    } else {
                        log.durable() >= lsn
                    };
                    if durable {
                        acked.lock().unwrap().push(p);
                    }
                    i += 1;
                }
                i
            }));
        }
        std::thread::sleep(Duration::from_millis(30 + 10 * round));
        let deadline = std::time::Instant::now() + LONG;
        while acked.lock().unwrap().len() < 10 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        // Power cut while appenders are still running. Everything in
        // `acked` now was reported durable before the cut.
        let acked_at_crash: Vec<Vec<u8>> = acked.lock().unwrap().clone();
        let crashed = fs.crash();
        stop.store(true, Ordering::Relaxed);
        let counts: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let (_l, got, _) = replay(&dir(), mem_opts(&crashed)).unwrap();
        let got_set: HashSet<&Vec<u8>> = got.iter().collect();
        for p in &acked_at_crash {
            assert!(
                got_set.contains(p),
                "durable record {:?} lost",
                String::from_utf8_lossy(p)
            );
        }
        // Nothing foreign; per-thread order kept and gap-free.
        let mut next = [0usize; 4];
        for p in &got {
            let s = String::from_utf8(p.clone()).unwrap();
            let (t, i) = s[1..].split_once('-').unwrap();
            let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
            assert!(i < counts[t]);
            assert_eq!(i, next[t], "thread {t} out of order");
            next[t] += 1;
        }
        assert!(!acked_at_crash.is_empty());
    }
}

#[test]
fn group_commit_batches_many_appenders() {
    let fs = MemFs::new();
    let (log, _, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    let log = Arc::new(log);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    let lsn = log.append(format!("{t}:{i}").as_bytes()).unwrap();
                    assert!(log.wait_durable(lsn, LONG));
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let s = log.status();
    assert_eq!(s.records_synced, 4000);
    assert!(s.records_per_fsync > 1.0, "no batching: {s:?}");
}

#[test]
fn slow_fsync_is_absorbed_by_batching() {
    let mem = MemFs::new();
    let (ffs, faults) = FaultFs::new(Arc::new(mem.clone()));
    faults.set_sync_delay(Duration::from_millis(5));
    let o = opts(
        Arc::new(ffs),
        FsyncPolicy::Always,
        RecoveryMode::TruncateTail,
    );
    let (log, _, _) = replay(&dir(), o).unwrap();
    let log = Arc::new(log);
    let threads: Vec<_> = (0..32)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..20 {
                    let lsn = log.append(format!("{t}:{i}").as_bytes()).unwrap();
                    assert!(log.wait_durable(lsn, LONG));
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let s = log.status();
    // 640 records, each waiting for its fsync: one fsync per record would
    // take 3.2 s; batching lets every waiting client share each fsync. With
    // the slow-disk linger the 32 clients share nearly every fsync (about
    // 30 records per fsync when measured); without it they would split
    // into two alternating cohorts of 16.
    assert_eq!(s.records_synced, 640);
    assert!(
        s.records_per_fsync >= 12.0,
        "records per fsync {}",
        s.records_per_fsync
    );
    eprintln!(
        "slow fsync: {:.1} records per fsync, max {}",
        s.records_per_fsync, s.max_records_per_fsync
    );
    assert!(s.max_records_per_fsync >= 16, "{s:?}");
    assert!(
        s.fsync_micros_max >= 5_000 && s.fsync_micros_total >= 5_000 * s.fsyncs,
        "{s:?}"
    );
}

#[test]
fn failing_fsync_holds_durability_then_recovers() {
    let mem = MemFs::new();
    let (ffs, faults) = FaultFs::new(Arc::new(mem.clone()));
    let o = opts(
        Arc::new(ffs),
        FsyncPolicy::Always,
        RecoveryMode::TruncateTail,
    );
    let (log, _, _) = replay(&dir(), o).unwrap();
    let first = log.append(b"before").unwrap();
    assert!(log.wait_durable(first, LONG));
    faults.set_kind(FaultKind::Eio);
    faults.set_fail_syncs(true);
    let second = log.append(b"during").unwrap();
    assert!(!log.wait_durable(second, Duration::from_millis(100)));
    let s = log.status();
    assert!(!s.last_write_ok);
    assert!(
        s.last_error
            .as_deref()
            .unwrap_or("")
            .contains("Input/output error"),
        "{s:?}"
    );
    assert_eq!(s.durable, first);
    assert!(s.failures >= 1);
    // A power loss now keeps "before" only.
    let (_l, got, _) = replay(&dir(), mem_opts(&mem.crash())).unwrap();
    assert_eq!(got, vec![b"before".to_vec()]);
    // The disk comes back: the retry makes it durable, status clears.
    faults.heal();
    assert!(log.wait_durable(second, LONG));
    let s = log.status();
    assert!(s.last_write_ok && s.last_error.is_none());
    drop(log);
    let (_l, got, _) = replay(&dir(), mem_opts(&mem.crash())).unwrap();
    assert_eq!(got, vec![b"before".to_vec(), b"during".to_vec()]);
}

#[test]
fn failing_writes_enospc_then_recover_without_duplicates() {
    let mem = MemFs::new();
    let (ffs, faults) = FaultFs::new(Arc::new(mem.clone()));
    let o = opts(
        Arc::new(ffs),
        FsyncPolicy::Always,
        RecoveryMode::TruncateTail,
    );
    let (log, _, _) = replay(&dir(), o).unwrap();
    faults.set_kind(FaultKind::Enospc);
    faults.set_fail_writes(true); // each failing write is torn: half lands
    let mut last = Lsn(0);
    for i in 0..50 {
        last = log.append(&payload(i)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(log.durable(), Lsn(0));
    let s = log.status();
    assert!(!s.last_write_ok);
    assert!(s.last_error.unwrap().contains("No space left"));
    faults.heal();
    assert!(log.wait_durable(last, LONG));
    drop(log);
    let (_l, got, report) = replay(&dir(), mem_opts(&mem.crash())).unwrap();
    assert_eq!(got, (0..50).map(payload).collect::<Vec<_>>());
    assert!(report.truncated.is_none());
}

#[test]
fn nth_write_failure_mid_stream() {
    let mem = MemFs::new();
    let (ffs, faults) = FaultFs::new(Arc::new(mem.clone()));
    let o = opts(
        Arc::new(ffs),
        FsyncPolicy::Always,
        RecoveryMode::TruncateTail,
    );
    let (log, _, _) = replay(&dir(), o).unwrap();
    let mut last = Lsn(0);
    for i in 0..200 {
        if i == 50 {
            faults.fail_nth_write(1);
        }
        if i == 120 {
            faults.fail_nth_sync(1);
        }
        last = log.append(&payload(i)).unwrap();
        if i % 7 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert!(log.wait_durable(last, LONG));
    drop(log);
    let (_l, got, _) = replay(&dir(), mem_opts(&mem.crash())).unwrap();
    assert_eq!(got, (0..200).map(payload).collect::<Vec<_>>());
}

#[test]
fn short_writes_are_completed() {
    let mem = MemFs::new();
    let (ffs, faults) = FaultFs::new(Arc::new(mem.clone()));
    faults.set_short_writes(1); // one byte per write call
    let o = opts(
        Arc::new(ffs),
        FsyncPolicy::Always,
        RecoveryMode::TruncateTail,
    );
    let (log, _, _) = replay(&dir(), o).unwrap();
    let mut last = Lsn(0);
    for i in 0..30 {
        last = log.append(&payload(i)).unwrap();
    }
    assert!(log.wait_durable(last, LONG));
    assert!(faults.write_calls() as usize > 30 * 8);
    drop(log);
    let (_l, got, _) = replay(&dir(), mem_opts(&mem.crash())).unwrap();
    assert_eq!(got, (0..30).map(payload).collect::<Vec<_>>());
}

#[test]
fn everysec_syncs_in_the_background_and_no_never_does() {
    let mem = MemFs::new();
    let o = opts(
        Arc::new(mem.clone()),
        FsyncPolicy::EverySec,
        RecoveryMode::TruncateTail,
    );
    let (log, _, _) = replay(&dir(), o).unwrap();
    let lsn = log.append(b"x").unwrap();
    // everysec_interval is 50 ms in tests.
    assert!(log.wait_durable(lsn, Duration::from_secs(5)));
    drop(log);

    let mem = MemFs::new();
    let o = opts(
        Arc::new(mem.clone()),
        FsyncPolicy::No,
        RecoveryMode::TruncateTail,
    );
    let (log, _, _) = replay(&dir(), o).unwrap();
    let lsn = log.append(b"y").unwrap();
    assert!(!log.wait_durable(lsn, Duration::from_millis(150)));
    let deadline = std::time::Instant::now() + LONG;
    while log.status().written < lsn && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(log.status().written, lsn, "written promptly");
    // Power loss under `no` loses it; a process crash would not.
    let (_l, got, _) = replay(&dir(), mem_opts(&mem.crash())).unwrap();
    assert!(got.is_empty());
    log.request_sync();
    assert!(log.wait_durable(lsn, LONG));
}

#[test]
fn watch_channel_sees_durable_positions() {
    let fs = MemFs::new();
    let (log, _, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    let mut rx = log.subscribe();
    let lsn = log.append(b"hello").unwrap();
    let deadline = std::time::Instant::now() + LONG;
    while *rx.borrow_and_update() < lsn {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(log.status().durable, lsn);
}

#[test]
fn log_is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<basalt_aof::Log>();
    check::<basalt_aof::Error>();
    check::<basalt_aof::Recovery>();
    let _: Arc<dyn Fs> = Arc::new(MemFs::new());
}

#[test]
fn policy_can_change_at_run_time() {
    let mem = MemFs::new();
    let o = opts(
        Arc::new(mem.clone()),
        FsyncPolicy::No,
        RecoveryMode::TruncateTail,
    );
    let (log, _, _) = replay(&dir(), o).unwrap();
    let lsn = log.append(b"a").unwrap();
    assert!(!log.wait_durable(lsn, Duration::from_millis(50)));
    log.set_policy(FsyncPolicy::Always);
    assert!(log.wait_durable(lsn, LONG));
    assert_eq!(log.status().policy, FsyncPolicy::Always);
    let lsn = log.append(b"b").unwrap();
    assert!(log.wait_durable(lsn, LONG));
}

fn inline_opts(fs: Arc<dyn Fs>) -> basalt_aof::Options {
    inline_opts_poll(fs, Duration::from_millis(20))
}

/// With a long poll the flusher never steps in by itself, so a test can
/// assert what commit_inline did on its own.
fn inline_opts_poll(fs: Arc<dyn Fs>, poll: Duration) -> basalt_aof::Options {
    basalt_aof::Options {
        inline_commit: true,
        inline_poll: poll,
        ..opts(fs, FsyncPolicy::Always, RecoveryMode::TruncateTail)
    }
}

#[test]
fn inline_commit_fsyncs_on_the_calling_thread_for_every_appender() {
    let mem = MemFs::new();
    let (ffs, faults) = FaultFs::new(Arc::new(mem.clone()));
    let (log, _, _) = replay(&dir(), inline_opts_poll(Arc::new(ffs), LONG)).unwrap();
    let syncs_before = faults.sync_calls();
    // Three "clients" append, then one commit covers them all.
    let a = log.append(b"a").unwrap();
    let b = log.append(b"b").unwrap();
    let c = log.append(b"c").unwrap();
    assert!(log.durable() < a);
    assert!(log.commit_inline(b));
    assert!(
        log.durable() >= c,
        "the commit covers every record appended"
    );
    assert_eq!(faults.sync_calls() - syncs_before, 1);
    // Already durable: no second fsync.
    assert!(log.commit_inline(a));
    assert_eq!(faults.sync_calls() - syncs_before, 1);
    let s = log.status();
    assert_eq!((s.records_synced, s.fsyncs), (3, 1));
    // A power loss keeps all three.
    let (_l, got, _) = replay(&dir(), mem_opts(&mem.crash())).unwrap();
    assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
}

#[test]
fn inline_commit_records_nobody_commits_are_flushed_by_the_poll() {
    let mem = MemFs::new();
    let (log, _, _) = replay(&dir(), inline_opts(Arc::new(mem.clone()))).unwrap();
    // Appends don't wake the flusher under inline commit (after its first
    // idle sleep), but a record nobody commits still becomes durable
    // within about two poll intervals.
    for i in 0..3 {
        let lsn = log.append(format!("r{i}").as_bytes()).unwrap();
        assert!(log.wait_durable(lsn, LONG));
        std::thread::sleep(Duration::from_millis(60)); // let the flusher go idle
    }
    let s = log.status();
    assert_eq!(s.records_synced, 3);
}

/// Under everysec with polling, appends don't wake the flusher one by one:
/// records spread over a poll interval go out in one write.
#[test]
fn everysec_polling_flusher_batches_appends_into_few_writes() {
    let mem = MemFs::new();
    let (ffs, faults) = FaultFs::new(Arc::new(mem.clone()));
    let o = basalt_aof::Options {
        inline_commit: true,
        inline_poll: Duration::from_millis(50),
        ..opts(
            Arc::new(ffs),
            FsyncPolicy::EverySec,
            RecoveryMode::TruncateTail,
        )
    };
    let (log, _, _) = replay(&dir(), o).unwrap();
    let wait_written = |lsn: Lsn| {
        let t = std::time::Instant::now();
        while log.written() < lsn {
            assert!(t.elapsed() < LONG, "records never written");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    wait_written(log.append(b"first").unwrap());
    let writes_before = faults.write_calls();
    let mut last = Lsn(0);
    for i in 0..20 {
        last = log.append(format!("r{i}").as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    wait_written(last);
    let writes = faults.write_calls() - writes_before;
    // Woken per append, the flusher would write about 20 times.
    assert!(writes <= 6, "{writes} writes for 20 spaced appends");
    log.close().unwrap();
    let (_l, got, _) = replay(&dir(), mem_opts(&mem)).unwrap();
    assert_eq!(got.len(), 21);
}

#[test]
fn inline_commit_failing_fsync_acknowledges_nothing_then_recovers() {
    let mem = MemFs::new();
    let (ffs, faults) = FaultFs::new(Arc::new(mem.clone()));
    let (log, _, _) = replay(&dir(), inline_opts(Arc::new(ffs))).unwrap();
    // (The flusher may be mid-flush at any moment — its poll, or a retry
    // finishing — and then commit_inline leaves the batch to it.)
    let first = log.append(b"before").unwrap();
    assert!(log.commit_inline(first) || log.wait_durable(first, LONG));
    faults.set_kind(FaultKind::Eio);
    faults.set_fail_syncs(true);
    let second = log.append(b"during").unwrap();
    assert!(!log.commit_inline(second));
    assert_eq!(log.durable(), first);
    assert!(!log.status().last_write_ok);
    let (_l, got, _) = replay(&dir(), mem_opts(&mem.crash())).unwrap();
    assert_eq!(got, vec![b"before".to_vec()]);
    // The flusher retries on its own; the disk comes back.
    faults.heal();
    assert!(log.wait_durable(second, LONG));
    assert!(log.status().last_write_ok);
    let third = log.append(b"after").unwrap();
    assert!(log.commit_inline(third) || log.wait_durable(third, LONG));
    drop(log);
    let (_l, got, _) = replay(&dir(), mem_opts(&mem.crash())).unwrap();
    assert_eq!(
        got,
        vec![b"before".to_vec(), b"during".to_vec(), b"after".to_vec()]
    );
}

#[test]
fn inline_commit_hands_slow_disks_to_the_flusher() {
    let mem = MemFs::new();
    let (ffs, faults) = FaultFs::new(Arc::new(mem.clone()));
    let (log, _, _) = replay(&dir(), inline_opts_poll(Arc::new(ffs), LONG)).unwrap();
    faults.set_sync_delay(Duration::from_millis(5));
    // The first commit runs inline and measures a slow fsync ...
    let a = log.append(b"a").unwrap();
    assert!(log.commit_inline(a));
    // ... after which callers no longer block in fsync: the flusher thread
    // takes the batch, so commit_inline returns at once without durability.
    // (Each fsync takes 5 ms, so nothing can have made `b` durable yet.)
    let syncs = faults.sync_calls();
    let b = log.append(b"b").unwrap();
    assert!(!log.commit_inline(b));
    assert!(log.wait_durable(b, LONG));
    assert_eq!(faults.sync_calls() - syncs, 1);
}

#[test]
fn inline_commit_many_threads_lose_nothing() {
    let mem = MemFs::new();
    let (log, _, _) = replay(&dir(), inline_opts(Arc::new(mem.clone()))).unwrap();
    let log = Arc::new(log);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..300 {
                    let lsn = log.append(format!("{t}:{i}").as_bytes()).unwrap();
                    if !log.commit_inline(lsn) {
                        assert!(log.wait_durable(lsn, LONG));
                    }
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(log.status().records_synced, 2400);
    let (_l, got, _) = replay(&dir(), mem_opts(&mem.crash())).unwrap();
    assert_eq!(got.len(), 2400);
}
