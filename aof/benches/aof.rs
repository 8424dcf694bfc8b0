//! Benchmarks: appends under each fsync policy against a real temp dir, and
//! the recovery scan.
//!
//! `cargo bench -p basalt-aof --bench aof`

use basalt_aof::{FsyncPolicy, Lsn, Options, Recovery};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PAYLOAD: &[u8] = b"*3\r\n$3\r\nSET\r\n$10\r\nkey:000042\r\n$16\r\nvalue-0123456789\r\n";

fn opts(policy: FsyncPolicy) -> Options {
    Options {
        fsync: policy,
        ..Options::default()
    }
}

/// One thread appends `n` records, then waits until they are written
/// (`No`, `EverySec`) or durable (`Always`).
fn append_single_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_1_thread");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let n = 10_000u64;
    g.throughput(Throughput::Elements(n));
    for policy in [FsyncPolicy::Always, FsyncPolicy::EverySec, FsyncPolicy::No] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (log, _) = Recovery::open(tmp.path(), opts(policy))
            .and_then(|r| r.finish())
            .expect("open");
        g.bench_function(BenchmarkId::from_parameter(format!("{policy:?}")), |b| {
            b.iter(|| {
                let mut last = Lsn(0);
                for _ in 0..n {
                    last = log.append(PAYLOAD).expect("append");
                }
                if policy == FsyncPolicy::Always {
                    assert!(log.wait_durable(last, Duration::from_secs(30)));
                } else {
                    while log.status().written < last {
                        std::thread::yield_now();
                    }
                }
            })
        });
        let s = log.status();
        println!(
            "  {policy:?}: {} fsyncs, {:.1} records per fsync",
            s.fsyncs, s.records_per_fsync
        );
    }
    g.finish();
}

/// The server's pattern under `always`: many clients, each appending one
/// record and waiting for its fsync before the next (like a reply held
/// behind the fsync).
fn append_clients_always(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_clients_wait_durable");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let per_client = 500u64;
    for clients in [1u64, 8, 50] {
        g.throughput(Throughput::Elements(per_client * clients));
        let tmp = tempfile::tempdir().expect("tempdir");
        let (log, _) = Recovery::open(tmp.path(), opts(FsyncPolicy::Always))
            .and_then(|r| r.finish())
            .expect("open");
        let log = Arc::new(log);
        g.bench_function(BenchmarkId::from_parameter(clients), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let threads: Vec<_> = (0..clients)
                        .map(|_| {
                            let log = log.clone();
                            std::thread::spawn(move || {
                                for _ in 0..per_client {
                                    let lsn = log.append(PAYLOAD).expect("append");
                                    assert!(log.wait_durable(lsn, Duration::from_secs(30)));
                                }
                            })
                        })
                        .collect();
                    for t in threads {
                        t.join().expect("join");
                    }
                }
                start.elapsed()
            })
        });
        let s = log.status();
        println!(
            "  {clients} clients: {} fsyncs, {:.1} records per fsync",
            s.fsyncs, s.records_per_fsync
        );
    }
    g.finish();
}

/// The server's shape: client connections as tokio tasks on a 2-thread
/// runtime, each appending one record and awaiting the watch channel
/// before its next command (a reply held behind the fsync).
fn append_tasks_watch(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_tasks_await_durable");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let per_task = 1000u64;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    for tasks in [1u64, 50] {
        g.throughput(Throughput::Elements(per_task * tasks));
        let tmp = tempfile::tempdir().expect("tempdir");
        let (log, _) = Recovery::open(tmp.path(), opts(FsyncPolicy::Always))
            .and_then(|r| r.finish())
            .expect("open");
        let log = Arc::new(log);
        g.bench_function(BenchmarkId::from_parameter(tasks), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let handles: Vec<_> = (0..tasks)
                        .map(|_| {
                            let log = log.clone();
                            tokio::spawn(async move {
                                let mut rx = log.subscribe();
                                for _ in 0..per_task {
                                    let lsn = log.append(PAYLOAD).expect("append");
                                    rx.wait_for(|d| *d >= lsn).await.expect("watch");
                                }
                            })
                        })
                        .collect();
                    for h in handles {
                        h.await.expect("task");
                    }
                })
            })
        });
        let s = log.status();
        println!(
            "  {tasks} tasks: {} fsyncs, {:.1} records per fsync",
            s.fsyncs, s.records_per_fsync
        );
    }
    g.finish();
}

/// A slow disk (fsync made to take 2 or 10 ms through the I/O seam, on the
/// in-memory filesystem): 50 client tasks each waiting for their record's
/// fsync. Without group commit this would be 500 or 100 records/s.
fn append_slow_disk(c: &mut Criterion) {
    use basalt_aof::fs::{FaultFs, MemFs};
    let mut g = c.benchmark_group("slow_disk_50_tasks");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    let per_task = 100u64;
    let tasks = 50u64;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    for delay_ms in [2u64, 10] {
        g.throughput(Throughput::Elements(per_task * tasks));
        let (fs, faults) = FaultFs::new(Arc::new(MemFs::new()));
        faults.set_sync_delay(Duration::from_millis(delay_ms));
        let o = Options {
            fs: Arc::new(fs),
            ..opts(FsyncPolicy::Always)
        };
        let (log, _) = Recovery::open("/log", o)
            .and_then(|r| r.finish())
            .expect("open");
        let log = Arc::new(log);
        g.bench_function(
            BenchmarkId::from_parameter(format!("fsync_{delay_ms}ms")),
            |b| {
                b.iter(|| {
                    rt.block_on(async {
                        let handles: Vec<_> = (0..tasks)
                            .map(|_| {
                                let log = log.clone();
                                tokio::spawn(async move {
                                    let mut rx = log.subscribe();
                                    for _ in 0..per_task {
                                        let lsn = log.append(PAYLOAD).expect("append");
                                        rx.wait_for(|d| *d >= lsn).await.expect("watch");
                                    }
                                })
                            })
                            .collect();
                        for h in handles {
                            h.await.expect("task");
                        }
                    })
                })
            },
        );
        let s = log.status();
        println!(
            "  fsync {delay_ms} ms: {} fsyncs, {:.1} records per fsync",
            s.fsyncs, s.records_per_fsync
        );
    }
    g.finish();
}

/// Recovery: open + iterate every record of a 1 M-record log.
fn recovery_scan(c: &mut Criterion) {
    let n = 1_000_000u64;
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let (log, _) = Recovery::open(tmp.path(), opts(FsyncPolicy::No))
            .and_then(|r| r.finish())
            .expect("open");
        for _ in 0..n {
            log.append(PAYLOAD).expect("append");
        }
        log.close().expect("close");
    }
    let mut g = c.benchmark_group("recovery");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(n));
    g.bench_function("scan_1M_records", |b| {
        b.iter(|| {
            let mut rec = Recovery::open(tmp.path(), Options::default()).expect("open");
            let mut count = 0u64;
            let mut bytes = 0usize;
            while let Some(r) = rec.next().expect("next") {
                count += 1;
                bytes += r.payload.len();
            }
            assert_eq!(count, n);
            bytes
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    append_single_thread,
    append_clients_always,
    append_tasks_watch,
    append_slow_disk,
    recovery_scan
);
criterion_main!(benches);
