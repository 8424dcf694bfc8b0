//! Crash cycles through the I/O seam: power loss with torn unsynced tails,
//! process kills, and repeated restarts on the same log.

use crate::support::*;
use basalt_aof::fs::MemFs;
use basalt_aof::{Error, FsyncPolicy, Lsn, RecoveryMode};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Runs `threads` appenders for a while on `fs`, then cuts the power (or
/// kills the process) while they run. Returns (acked before the cut, the
/// filesystem after it, everything ever appended).
fn run_and_crash(
    fs: &MemFs,
    policy: FsyncPolicy,
    cycle: usize,
    crash: &dyn Fn(&MemFs) -> MemFs,
) -> (Vec<Vec<u8>>, MemFs, HashSet<Vec<u8>>) {
    let o = opts(Arc::new(fs.clone()), policy, RecoveryMode::TruncateTail);
    let (log, _, _) = replay(&dir(), o).unwrap();
    let log = Arc::new(log);
    let acked: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let appended: Arc<Mutex<HashSet<Vec<u8>>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (log, acked, appended, stop) =
                (log.clone(), acked.clone(), appended.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let p = format!("c{cycle}-t{t}-{i}").into_bytes();
                    appended.lock().unwrap().insert(p.clone());
                    let lsn = log.append(&p).unwrap();
                    if log.wait_durable(lsn, Duration::from_millis(if i % 2 == 0 { 50 } else { 0 }))
                    {
                        acked.lock().unwrap().push(p);
                    }
                    i += 1;
                    if i % 64 == 0 && t == 0 && cycle % 2 == 1 {
                        log.rotate(Duration::from_secs(20)).unwrap();
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20 + 7 * cycle as u64));
    // On a loaded machine, make sure some records were acknowledged.
    let deadline = std::time::Instant::now() + LONG;
    while acked.lock().unwrap().len() < 20 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let acked_before = acked.lock().unwrap().clone();
    let after = crash(fs);
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());
    let appended = appended.lock().unwrap().clone();
    (acked_before, after, appended)
}

#[test]
fn restart_cycles_with_torn_power_loss_lose_no_acked_record() {
    let mut fs = MemFs::new();
    let mut all_acked: Vec<Vec<u8>> = Vec::new();
    let mut all_appended: HashSet<Vec<u8>> = HashSet::new();
    let rng = Mutex::new(Rng(0x9e37_79b9_7f4a_7c15));
    for cycle in 0..6 {
        let crash =
            |f: &MemFs| f.crash_torn(|_, n| (rng.lock().unwrap().next() % (n as u64 + 1)) as usize);
        let (acked, after, appended) = run_and_crash(&fs, FsyncPolicy::Always, cycle, &crash);
        all_acked.extend(acked);
        all_appended.extend(appended);
        let (_log, got, _report) = replay(&dir(), mem_opts(&after)).unwrap();
        let got_set: HashSet<&Vec<u8>> = got.iter().collect();
        assert_eq!(got_set.len(), got.len(), "a record replayed twice");
        for p in &all_acked {
            assert!(
                got_set.contains(p),
                "cycle {cycle}: acked {:?} lost",
                String::from_utf8_lossy(p)
            );
        }
        for p in &got {
            assert!(
                all_appended.contains(p),
                "cycle {cycle}: {:?} never appended",
                String::from_utf8_lossy(p)
            );
        }
        fs = after;
    }
    assert!(all_acked.len() > 100);
}

#[test]
fn kill_9_under_no_keeps_every_written_record() {
    // A process crash keeps the page cache: under `no` every record the
    // flusher wrote survives, even though none was fsynced.
    let fs = MemFs::new();
    let o = opts(
        Arc::new(fs.clone()),
        FsyncPolicy::No,
        RecoveryMode::TruncateTail,
    );
    let (log, _, _) = replay(&dir(), o).unwrap();
    let mut last = Lsn(0);
    for i in 0..100 {
        last = log.append(&payload(i)).unwrap();
    }
    let deadline = std::time::Instant::now() + LONG;
    while log.status().written < last {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(log.durable() < last);
    let killed = fs.crash_process();
    let powered_off = fs.crash();
    let (_l, got, _) = replay(&dir(), mem_opts(&killed)).unwrap();
    assert_eq!(got, (0..100).map(payload).collect::<Vec<_>>());
    let (_l, got, _) = replay(&dir(), mem_opts(&powered_off)).unwrap();
    assert!(
        got.is_empty(),
        "power loss under `no` keeps nothing unsynced"
    );
}

#[test]
fn everysec_loss_is_bounded_by_the_interval() {
    // everysec_interval is 50 ms in tests: after 3 intervals of quiet,
    // everything appended before is durable.
    let fs = MemFs::new();
    let o = opts(
        Arc::new(fs.clone()),
        FsyncPolicy::EverySec,
        RecoveryMode::TruncateTail,
    );
    let (log, _, _) = replay(&dir(), o).unwrap();
    for i in 0..50 {
        log.append(&payload(i)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(150));
    let (_l, got, _) = replay(&dir(), mem_opts(&fs.crash())).unwrap();
    assert_eq!(got.len(), 50);
}

#[test]
fn install_of_a_too_old_snapshot_is_refused() {
    let fs = MemFs::new();
    let (log, _, _) = replay(&dir(), mem_opts(&fs)).unwrap();
    let early = log.append(b"a").unwrap();
    log.append(b"b").unwrap();
    let cut = log.rotate(Duration::from_secs(20)).unwrap();
    log.install_snapshot("new", cut).unwrap();
    let err = log.install_snapshot("old", early).unwrap_err();
    assert!(matches!(err, Error::SnapshotTooOld { .. }), "{err}");
}

#[test]
fn journal_power_loss_on_the_real_filesystem() {
    use basalt_aof::fs::{simulate_power_loss, FaultFs, StdFs, SyncJournalFs};
    use basalt_aof::{Options, Recovery};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("aof");
    let journal = tmp.path().join("sync.journal");
    let (faulty, faults) = FaultFs::new(Arc::new(StdFs));
    let fs = SyncJournalFs::new(Arc::new(faulty), &journal).unwrap();
    let o = Options {
        fs: Arc::new(fs),
        retry_interval: Duration::from_millis(5),
        ..Options::default()
    };
    let (log, _) = Recovery::open(&dir, o).unwrap().finish().unwrap();
    let mut last = Lsn(0);
    for i in 0..20 {
        last = log.append(&payload(i)).unwrap();
    }
    assert!(log.wait_durable(last, LONG));
    // From now on fsyncs fail: the next records reach the page cache only.
    faults.set_fail_syncs(true);
    for i in 20..30 {
        log.append(&payload(i)).unwrap();
    }
    let deadline = std::time::Instant::now() + LONG;
    while log.status().written < log.appended() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(1));
    }
    // "kill -9": the writer stops touching the disk and is abandoned
    // without a clean close.
    faults.freeze();
    std::mem::forget(log);
    let got_before = {
        let mut rec = Recovery::open(&dir, Options::default()).unwrap();
        let mut n = 0;
        while rec.next().unwrap().is_some() {
            n += 1;
        }
        n
    };
    assert_eq!(got_before, 30, "the page cache still has everything");
    let report = simulate_power_loss(&journal, &dir).unwrap();
    // The unsynced records went over zero-filled space or past the synced
    // length: either way the power cut takes them.
    assert!(
        report.truncated.len() + report.zeroed.len() >= 1,
        "{report:?}"
    );
    let mut rec = Recovery::open(&dir, Options::default()).unwrap();
    let mut got = Vec::new();
    while let Some(r) = rec.next().unwrap() {
        got.push(r.payload.to_vec());
    }
    assert_eq!(got, (0..20).map(payload).collect::<Vec<_>>());
}

/// Appenders, a compactor (cut, "snapshot", install) and power cuts with
/// torn tails: after every cut, snapshot + replayed records hold every
/// acknowledged record exactly once and nothing else.
#[test]
fn compaction_under_load_survives_power_cuts() {
    use std::collections::{BTreeMap, HashMap};
    // Snapshots are "durable files" kept by the test: name -> records.
    let snapshots: Arc<Mutex<HashMap<String, Vec<Vec<u8>>>>> = Arc::default();
    let mut fs = MemFs::new();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut all_acked: Vec<Vec<u8>> = Vec::new();
    let mut from_snapshot = 0;
    for cycle in 0..6 {
        let o = opts(
            Arc::new(fs.clone()),
            FsyncPolicy::Always,
            RecoveryMode::TruncateTail,
        );
        // Rebuild the state: snapshot, then the replayed records.
        let mut rec = basalt_aof::Recovery::open(dir(), o).unwrap();
        let mut state: Vec<Vec<u8>> = match rec.snapshot() {
            Some(s) => {
                from_snapshot += 1;
                snapshots.lock().unwrap()[&s.name].clone()
            }
            None => Vec::new(),
        };
        // Every record by position, to cut snapshots from.
        let by_lsn: Arc<Mutex<BTreeMap<Lsn, Vec<u8>>>> = Arc::default();
        while let Some(r) = rec.next().unwrap() {
            state.push(r.payload.to_vec());
        }
        let (log, report) = rec.finish().unwrap();
        let set: HashSet<&Vec<u8>> = state.iter().collect();
        assert_eq!(
            set.len(),
            state.len(),
            "cycle {cycle}: a record appears twice"
        );
        for p in &all_acked {
            assert!(
                set.contains(p),
                "cycle {cycle}: acked {:?} lost",
                String::from_utf8_lossy(p)
            );
        }
        if cycle == 5 {
            break; // the last cycle only checks the last power cut
        }
        // Positions up to the end belong to `state`, in order.
        let base = Arc::new(Mutex::new((report.end, state)));
        let log = Arc::new(log);
        let acked: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for t in 0..3 {
            let (log, acked, stop, by_lsn) =
                (log.clone(), acked.clone(), stop.clone(), by_lsn.clone());
            threads.push(std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let p = format!("k{cycle}-{t}-{i}").into_bytes();
                    // Record the position under the same lock as the append so
                    // the compactor sees a consistent map.
                    let lsn = {
                        let mut m = by_lsn.lock().unwrap();
                        let lsn = log.append(&p).unwrap();
                        m.insert(lsn, p.clone());
                        lsn
                    };
                    if log.wait_durable(lsn, LONG) {
                        acked.lock().unwrap().push(p);
                    }
                    i += 1;
                }
            }));
        }
        let installed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let compactor = {
            let (log, stop, by_lsn, snapshots, base, installed) = (
                log.clone(),
                stop.clone(),
                by_lsn.clone(),
                snapshots.clone(),
                base.clone(),
                installed.clone(),
            );
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(3));
                    // The cut: position and content at the same instant.
                    let (cut, content) = {
                        let m = by_lsn.lock().unwrap();
                        let cut = log.begin_rotate().unwrap();
                        let b = base.lock().unwrap();
                        let mut content = b.1.clone();
                        content.extend(
                            m.range(..=cut)
                                .filter(|(l, _)| **l > b.0)
                                .map(|(_, p)| p.clone()),
                        );
                        (cut, content)
                    };
                    let name = format!("snap-{cycle}-{n}");
                    snapshots.lock().unwrap().insert(name.clone(), content);
                    // Install may fail only while the flusher has not yet
                    // reached `cut`: never in this test (it is appended).
                    log.install_snapshot(&name, cut).unwrap();
                    installed.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
                n
            })
        };
        std::thread::sleep(Duration::from_millis(40));
        // On a loaded machine the compactor may not have run yet: give it time.
        let deadline = std::time::Instant::now() + LONG;
        while (installed.load(Ordering::Relaxed) < 2 || acked.lock().unwrap().len() < 10)
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        let acked_before = acked.lock().unwrap().clone();
        let k = rng.next();
        let after = fs.crash_torn(|_, n| (k % (n as u64 + 1)) as usize);
        stop.store(true, Ordering::Relaxed);
        threads.into_iter().for_each(|t| t.join().unwrap());
        let installs = compactor.join().unwrap();
        assert!(installs > 0);
        all_acked.extend(acked_before);
        drop(log);
        fs = after;
    }
    assert!(all_acked.len() > 50);
    assert!(
        from_snapshot >= 4,
        "recovery started from a snapshot {from_snapshot} times"
    );
}
