//! Memory given back and MEMORY's reports, against the real binary: RSS
//! falls after FLUSHALL (mimalloc keeps a quiet thread's freed pages
//! otherwise), a mass expiry is swept in seconds, MEMORY USAGE grows with
//! the value and samples big ones, MEMORY DOCTOR flags a past peak, and
//! `redis-cli --memkeys` (which needs MEMORY USAGE) works unchanged.
//! Syntax and errors are compared with redis-server in cases/memory.txt.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::resp::Raw;
use crate::support::TestServer;

fn rss_bytes(s: &TestServer) -> u64 {
    let pid = s.child.as_ref().expect("running").id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

fn int_reply(r: &[u8]) -> i64 {
    assert_eq!(r.first(), Some(&b':'), "{}", String::from_utf8_lossy(r));
    String::from_utf8_lossy(&r[1..]).trim().parse().unwrap()
}

/// SETs `n` keys `{prefix}{i}` (with `extra` arguments, e.g. PX 500) in
/// pipelined batches, checking every reply.
fn fill(c: &mut Raw, prefix: &str, n: usize, value: &[u8], extra: &[&str]) {
    for start in (0..n).step_by(1000) {
        let end = (start + 1000).min(n);
        let mut batch = Vec::new();
        for i in start..end {
            let key = format!("{prefix}{i}");
            let mut args: Vec<&[u8]> = vec![b"SET", key.as_bytes(), value];
            args.extend(extra.iter().map(|e| e.as_bytes()));
            batch.extend(crate::support::resp::encode(&args));
        }
        c.send(&batch);
        for _ in start..end {
            assert_eq!(c.read_reply().unwrap(), b"+OK\r\n");
        }
    }
}

#[test]
fn flushall_gives_the_memory_back_to_the_os() {
    let s = TestServer::start(&["--appendonly", "no"]);
    let mut c = s.raw();
    let value = vec![b'v'; 1000];
    fill(&mut c, "key:", 60_000, &value, &[]);
    let loaded = rss_bytes(&s);
    assert!(loaded > 60 << 20, "60k keys of 1000 bytes: RSS {loaded}");
    assert_eq!(c.cmd_str(&["FLUSHALL"]), b"+OK\r\n");
    // The IO thread that freed the keys goes quiet now; its allocator
    // pages must still be returned (they were kept before).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut now = rss_bytes(&s);
    while now > loaded / 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        now = rss_bytes(&s);
    }
    assert!(
        now <= loaded / 3,
        "RSS {now} bytes 10 s after FLUSHALL, {loaded} when loaded"
    );
}

#[test]
fn a_mass_expiry_is_swept_in_seconds() {
    // One shard, so the old sweep (a few buckets per shard per cycle)
    // would need minutes; and the keys with a deadline are under 10% of
    // the keyspace, so a ratio counted over every key (not only those
    // with a deadline, as Redis counts) would never call for more passes.
    let s = TestServer::start(&["--appendonly", "no", "--shards", "1"]);
    let mut c = s.raw();
    fill(&mut c, "plain:", 200_000, b"x", &[]);
    let unix_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    // All at one moment, far enough ahead for the fill to finish first.
    let at = unix_ms() + 1500;
    fill(&mut c, "session:", 15_000, b"x", &["PXAT", &at.to_string()]);
    // (On a machine so loaded that the fill overran the deadline, the
    // exact counts are not checked, only that the keys go.)
    let in_time = unix_ms() + 200 < at;
    if in_time {
        assert_eq!(int_reply(&c.cmd_str(&["DBSIZE"])), 215_000);
    }
    // DBSIZE does not expire anything itself: only the active cycle can
    // bring it down.
    let deadline = Instant::now()
        + Duration::from_millis(at.saturating_sub(unix_ms()))
        + Duration::from_secs(15);
    let mut n = int_reply(&c.cmd_str(&["DBSIZE"]));
    while n > 200_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        n = int_reply(&c.cmd_str(&["DBSIZE"]));
    }
    assert_eq!(n, 200_000, "keys left 15 s after they expired");
    let info = String::from_utf8_lossy(&c.cmd_str(&["INFO", "stats"])).to_string();
    assert!(
        !in_time || info.contains("\r\nexpired_keys:15000\r\n"),
        "{info}"
    );
}

#[test]
fn memory_usage_follows_the_value_and_samples_big_ones() {
    let s = TestServer::start(&["--appendonly", "no"]);
    let mut c = s.raw();
    let usage = |c: &mut Raw, args: &[&str]| -> i64 {
        let mut a = vec!["MEMORY", "USAGE"];
        a.extend_from_slice(args);
        int_reply(&c.cmd_str(&a))
    };
    c.cmd_str(&["SET", "small", "x"]);
    let big = "y".repeat(10_000);
    c.cmd_str(&["SET", "big", &big]);
    let (small, large) = (usage(&mut c, &["small"]), usage(&mut c, &["big"]));
    assert!(small > 0 && small < 200, "a 1-byte string: {small}");
    assert!((10_000..11_000).contains(&large), "a 10 kB string: {large}");
    // A long key is counted too.
    let long_key = "k".repeat(1000);
    c.cmd_str(&["SET", &long_key, "x"]);
    assert!(usage(&mut c, &[&long_key]) >= small + 1000);

    // A hash of 2000 fields, one of them huge: sampling all (0) gives the
    // exact size.
    for i in 0..2000 {
        c.cmd_str(&["HSET", "h", &format!("field-{i}"), &format!("value-{i}")]);
    }
    let huge = "z".repeat(200_000);
    c.cmd_str(&["HSET", "h", "field-1999", &huge]);
    let all = usage(&mut c, &["h", "SAMPLES", "0"]);
    assert!(all > 200_000, "every field measured: {all}");
    let sampled = usage(&mut c, &["h"]);
    assert!(sampled > 2000 * 10, "2000 entries: {sampled}");
    // Sampled: far above the exact size if the huge field was among the
    // five, far below if not; never equal.
    assert_ne!(sampled, all);
    let again = usage(&mut c, &["h", "SAMPLES", "5"]);
    assert_eq!(sampled, again, "SAMPLES 5 is the default");
    // As many samples as entries: every entry measured.
    assert_eq!(usage(&mut c, &["h", "SAMPLES", "2000"]), all);
}

#[test]
fn memory_doctor_reports_a_past_peak_and_purge_answers() {
    let s = TestServer::start(&["--appendonly", "no"]);
    let mut c = s.raw();
    let text = |r: Vec<u8>| String::from_utf8_lossy(&r).to_string();
    assert!(text(c.cmd_str(&["MEMORY", "DOCTOR"])).contains("this instance is empty"));
    // 40 MB, then all but 10 MB of it deleted: the peak is 4x the use.
    let value = vec![b'v'; 1000];
    fill(&mut c, "a:", 10_000, &value, &[]);
    fill(&mut c, "b:", 30_000, &value, &[]);
    assert!(!text(c.cmd_str(&["MEMORY", "DOCTOR"])).contains("Peak memory"));
    for start in (0..30_000).step_by(1000) {
        let keys: Vec<String> = (start..start + 1000).map(|i| format!("b:{i}")).collect();
        let mut args = vec!["DEL"];
        args.extend(keys.iter().map(String::as_str));
        assert_eq!(int_reply(&c.cmd_str(&args)), 1000);
    }
    let report = text(c.cmd_str(&["MEMORY", "DOCTOR"]));
    assert!(
        report.contains("Sam, I detected a few issues") && report.contains(" * Peak memory:"),
        "{report}"
    );
    assert_eq!(c.cmd_str(&["MEMORY", "PURGE"]), b"+OK\r\n");
    let stats = text(c.cmd_str(&["MEMORY", "STATS"]));
    assert!(stats.contains("keys.count\r\n:10000\r\n"), "{stats}");
}

#[test]
fn redis_cli_memkeys_works() {
    let s = TestServer::start(&["--appendonly", "no"]);
    let mut c = s.raw();
    c.cmd_str(&["SET", "str", &"s".repeat(5000)]);
    c.cmd_str(&["RPUSH", "list", "a", "b"]);
    c.cmd_str(&["HSET", "hash", "f", "v"]);
    let out = Command::new("redis-cli")
        .args(["-p", &s.port.to_string(), "--memkeys"])
        .output()
        .expect("redis-cli (redis-tools)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Biggest string found") && stdout.contains("\"str\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("Sampled 3 keys in the keyspace"),
        "{stdout}"
    );
}

/// MEMORY STATS and DOCTOR read every shard: inside EXEC they must be
/// planned with the whole keyspace, or a transaction holding one shard
/// and a FLUSHALL holding another wait for each other (the whole server
/// hung within a few dozen rounds before).
#[test]
fn memory_stats_in_transactions_beside_flushall_never_deadlock() {
    let s = TestServer::start(&["--appendonly", "no", "--shards", "2", "--io-threads", "2"]);
    let port = s.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flusher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut b = Raw::connect(port);
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 5000 {
                assert_eq!(b.cmd_str(&["FLUSHALL"]), b"+OK\r\n");
                n += 1;
            }
        })
    };
    let mut a = s.raw();
    let started = Instant::now();
    let mut rounds = 0;
    while rounds < 400 && started.elapsed() < Duration::from_secs(5) {
        let mut batch = Vec::new();
        for args in [
            &["MULTI"][..],
            &["SET", "k0", "v"],
            &["MEMORY", "STATS"],
            &["MEMORY", "DOCTOR"],
            &["EXEC"],
        ] {
            let a: Vec<&[u8]> = args.iter().map(|x| x.as_bytes()).collect();
            batch.extend(crate::support::resp::encode(&a));
        }
        a.send(&batch);
        for _ in 0..4 {
            a.read_reply().expect("reply (server hung?)");
        }
        let exec = a.read_reply().expect("EXEC reply (server hung?)");
        assert!(
            exec.starts_with(b"*3\r\n"),
            "{}",
            String::from_utf8_lossy(&exec)
        );
        rounds += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flusher.join().unwrap();
    assert_eq!(s.raw().cmd_str(&["PING"]), b"+PONG\r\n");
}
