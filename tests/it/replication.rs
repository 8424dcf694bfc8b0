//! Snapshot transfers over the replication protocol: `redis-cli --rdb`
//! against a running Basalt, the dump loaded by a real redis-server, and
//! the handshake's edges over a raw connection.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{RedisServer, TestServer};

fn redis_conn(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .and_then(|c| c.get_connection())
        .expect("connect")
}

/// Every key of every database in `dbs`, with a canonical rendering of its
/// value (unordered types sorted) and whether it has a TTL.
fn contents(port: u16, dbs: &[i64]) -> BTreeMap<(i64, Vec<u8>), (String, String, bool)> {
    let mut c = redis_conn(port);
    let mut out = BTreeMap::new();
    for &db in dbs {
        redis::cmd("SELECT").arg(db).query::<()>(&mut c).unwrap();
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
        for k in keys {
            let t: String = redis::cmd("TYPE").arg(&k).query(&mut c).unwrap();
            let v = match t.as_str() {
                "string" => format!(
                    "{:?}",
                    redis::cmd("GET").arg(&k).query::<Vec<u8>>(&mut c).unwrap()
                ),
                "list" => format!(
                    "{:?}",
                    redis::cmd("LRANGE")
                        .arg(&k)
                        .arg(0)
                        .arg(-1)
                        .query::<Vec<Vec<u8>>>(&mut c)
                        .unwrap()
                ),
                "hash" => format!(
                    "{:?}",
                    redis::cmd("HGETALL")
                        .arg(&k)
                        .query::<BTreeMap<Vec<u8>, Vec<u8>>>(&mut c)
                        .unwrap()
                ),
                "set" => format!(
                    "{:?}",
                    redis::cmd("SMEMBERS")
                        .arg(&k)
                        .query::<BTreeSet<Vec<u8>>>(&mut c)
                        .unwrap()
                ),
                "zset" => format!(
                    "{:?}",
                    redis::cmd("ZRANGE")
                        .arg(&k)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES")
                        .query::<Vec<Vec<u8>>>(&mut c)
                        .unwrap()
                ),
                "stream" => format!(
                    "{:?} {:?}",
                    redis::cmd("XRANGE")
                        .arg(&k)
                        .arg("-")
                        .arg("+")
                        .query::<redis::Value>(&mut c)
                        .unwrap(),
                    redis::cmd("XINFO")
                        .arg("GROUPS")
                        .arg(&k)
                        .query::<redis::Value>(&mut c)
                        .unwrap()
                ),
                other => panic!("unexpected type {other}"),
            };
            let pttl: i64 = redis::cmd("PTTL").arg(&k).query(&mut c).unwrap();
            out.insert((db, k), (t, v, pttl > 0));
        }
    }
    out
}

fn cli_available() -> bool {
    RedisServer::available()
        && Command::new("redis-cli")
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
}

#[test]
fn redis_cli_rdb_dumps_a_running_server_and_redis_loads_it() {
    if !cli_available() {
        eprintln!("redis-server/redis-cli not installed; skipped (CI installs them)");
        return;
    }
    let s = TestServer::start(&[]);
    let mut c = s.client();
    // Every type, small and large encodings, a TTL, two databases.
    for i in 0..3000 {
        let v = if i % 3 == 0 {
            i.to_string()
        } else {
            format!("value-{i}")
        };
        redis::cmd("SET")
            .arg(format!("k:{i}"))
            .arg(v)
            .query::<()>(&mut c)
            .unwrap();
    }
    redis::cmd("SET")
        .arg("big")
        .arg("x".repeat(300_000))
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("RPUSH")
        .arg("small-list")
        .arg(&["a", "b", "c"][..])
        .query::<()>(&mut c)
        .unwrap();
    let long: Vec<String> = (0..2000).map(|i| format!("item{i}")).collect();
    redis::cmd("RPUSH")
        .arg("long-list")
        .arg(&long)
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("HSET")
        .arg("small-hash")
        .arg(&["f", "v", "g", "w"][..])
        .query::<()>(&mut c)
        .unwrap();
    for i in 0..600 {
        redis::cmd("HSET")
            .arg("big-hash")
            .arg(format!("f{i}"))
            .arg(i)
            .query::<()>(&mut c)
            .unwrap();
    }
    redis::cmd("SADD")
        .arg("ints")
        .arg(&[1, 2, 3, 500][..])
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("SADD")
        .arg("words")
        .arg(&["x", "y"][..])
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("SADD")
        .arg("big-set")
        .arg(&long)
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("ZADD")
        .arg("z")
        .arg(&[("1.5", "a"), ("-2", "b")][..])
        .query::<()>(&mut c)
        .unwrap();
    for i in 0..300 {
        redis::cmd("ZADD")
            .arg("big-z")
            .arg(i)
            .arg(format!("m{i}"))
            .query::<()>(&mut c)
            .unwrap();
    }
    for i in 0..20 {
        redis::cmd("XADD")
            .arg("st")
            .arg("*")
            .arg("n")
            .arg(i)
            .query::<()>(&mut c)
            .unwrap();
    }
    redis::cmd("XGROUP")
        .arg(&["CREATE", "st", "g", "0"][..])
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("XREADGROUP")
        .arg(&["GROUP", "g", "alice", "COUNT", "3", "STREAMS", "st", ">"][..])
        .query::<redis::Value>(&mut c)
        .unwrap();
    redis::cmd("SET")
        .arg("session")
        .arg("s")
        .arg("EX")
        .arg(3600)
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("SELECT").arg(5).query::<()>(&mut c).unwrap();
    redis::cmd("SET")
        .arg("in-db5")
        .arg("yes")
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("SELECT").arg(0).query::<()>(&mut c).unwrap();

    // A writer keeps going while the dump is taken and sent.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, port) = (stop.clone(), s.port);
        std::thread::spawn(move || {
            let mut w = redis_conn(port);
            let mut n = 0u64;
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                redis::cmd("INCR")
                    .arg("during")
                    .query::<i64>(&mut w)
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dump.rdb");
    let out = Command::new("timeout")
        .args(["60", "redis-cli", "-p", &s.port.to_string(), "--rdb"])
        .arg(&file)
        .output()
        .expect("redis-cli");
    stop.store(true, Ordering::Relaxed);
    let increments = writer.join().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Transfer finished with success"), "{text}");
    assert!(increments > 0);

    // The running server counts the transfer and left no temporary file.
    let info: String = redis::cmd("INFO").arg("stats").query(&mut c).unwrap();
    assert!(info.contains("sync_full:1\r\n"), "{info}");
    let leftovers: Vec<_> = walk(&s.dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("temp-sync-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // redis-server loads it; everything but the counter written during
    // the transfer is equal, and the counter is some value it had.
    let r = RedisServer::start(&[
        "--dir",
        dir.path().to_str().unwrap(),
        "--dbfilename",
        "dump.rdb",
    ]);
    let mut from_redis = contents(r.port, &[0, 5]);
    let mut from_basalt = contents(s.port, &[0, 5]);
    let during_redis = from_redis.remove(&(0, b"during".to_vec()));
    from_basalt.remove(&(0, b"during".to_vec()));
    let differ: Vec<_> = from_basalt
        .iter()
        .filter(|(k, v)| from_redis.get(*k) != Some(*v))
        .map(|(k, v)| {
            (
                k,
                &v.0,
                v.1.len().min(200),
                from_redis.get(k).map(|r| r.1.len()),
            )
        })
        .collect();
    assert!(differ.is_empty(), "differ: {differ:?}");
    assert_eq!(from_redis.len(), 3000 + 13, "keys in the loaded dump");
    assert_eq!(from_redis, from_basalt);
    assert!(from_redis[&(0, b"session".to_vec())].2, "the TTL survived");
    if let Some((_, v, _)) = during_redis {
        let n: u64 = v
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(", ")
            .map(|b| b.parse::<u8>().unwrap() as char)
            .collect::<String>()
            .parse()
            .unwrap();
        assert!(n <= increments, "{n} > {increments}");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Reads the reply to SYNC/PSYNC up to the end of the dump: skips the
/// keep-alive newlines, checks the `$<len>` line, returns the payload.
fn read_dump(stream: &mut std::net::TcpStream) -> Vec<u8> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        stream.read_exact(&mut b).unwrap();
        if b[0] == b'\n' && line.is_empty() {
            continue; // keep-alive
        }
        line.push(b[0]);
        if line.ends_with(b"\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&line).to_string();
    let len: usize = text
        .strip_prefix('$')
        .and_then(|t| t.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("not a bulk length: {text:?}"));
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).unwrap();
    payload
}

fn keys_in(payload: &[u8]) -> usize {
    let reader = basalt_rdb::Reader::from_slice(payload, Default::default()).expect("an RDB");
    let mut n = 0;
    for e in reader.entries() {
        e.expect("a valid RDB");
        n += 1;
    }
    n
}

#[test]
fn psync_for_rdb_only_answers_fullresync_then_the_dump_then_closes() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    for i in 0..50 {
        redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query::<()>(&mut c)
            .unwrap();
    }
    let mut raw = s.raw();
    assert_eq!(raw.cmd_str(&["REPLCONF", "rdb-only", "1"]), b"+OK\r\n");
    raw.send(b"*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n");
    let mut stream = raw.s.try_clone().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        stream.read_exact(&mut b).unwrap();
        line.push(b[0]);
    }
    let line = String::from_utf8(line).unwrap();
    let parts: Vec<&str> = line.trim_end().split(' ').collect();
    assert_eq!(parts.len(), 3, "{line:?}");
    assert_eq!(parts[0], "+FULLRESYNC");
    assert_eq!(parts[1].len(), 40);
    assert!(parts[1].bytes().all(|c| c.is_ascii_hexdigit()), "{line:?}");
    let payload = read_dump(&mut stream);
    assert!(payload.starts_with(b"REDIS0010"), "{:?}", &payload[..9]);
    assert_eq!(keys_in(&payload), 50);
    // Then the server closes the connection (an rdb-only replica is done).
    let mut rest = Vec::new();
    assert_eq!(stream.read_to_end(&mut rest).unwrap(), 0, "{rest:?}");
}

#[test]
fn rdb_filter_only_gives_a_dump_without_keys() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query::<()>(&mut c)
        .unwrap();
    for filter in ["functions", ""] {
        let mut raw = s.raw();
        assert_eq!(
            raw.cmd_str(&[
                "REPLCONF",
                "capa",
                "eof",
                "rdb-only",
                "1",
                "rdb-filter-only",
                filter
            ]),
            b"+OK\r\n"
        );
        raw.send(b"*1\r\n$4\r\nSYNC\r\n");
        let mut stream = raw.s.try_clone().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let payload = read_dump(&mut stream);
        assert_eq!(keys_in(&payload), 0, "filter {filter:?}");
    }
}

#[test]
fn sync_without_rdb_only_is_refused_and_ack_answers_nothing() {
    let s = TestServer::start(&[]);
    let mut raw = s.raw();
    let r = raw.cmd_str(&["SYNC"]);
    assert!(
        r.starts_with(b"-ERR Basalt does not stream replication"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    let r = raw.cmd_str(&["PSYNC", "?", "-1"]);
    assert!(r.starts_with(b"-ERR Basalt does not stream replication"));
    // REPLCONF ACK/GETACK from a client that is no replica: no reply at
    // all (as Redis), so the next reply is PING's.
    raw.send(b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$1\r\n5\r\n");
    raw.send(b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n");
    assert_eq!(raw.cmd_str(&["PING"]), b"+PONG\r\n");
    // Pending output first: refused, as Redis does.
    assert_eq!(raw.cmd_str(&["REPLCONF", "rdb-only", "1"]), b"+OK\r\n");
    raw.send(b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nSYNC\r\n");
    assert_eq!(raw.read_reply().unwrap(), b"+PONG\r\n");
    assert_eq!(
        raw.read_reply().unwrap(),
        b"-ERR SYNC and PSYNC are invalid with pending output\r\n"
    );
}

#[test]
fn a_client_that_leaves_mid_transfer_leaves_no_file_behind() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    redis::cmd("DEBUG")
        .arg(&["POPULATE", "20000", "k", "1000"][..])
        .query::<()>(&mut c)
        .unwrap();
    for _ in 0..3 {
        let mut raw = s.raw();
        assert_eq!(raw.cmd_str(&["REPLCONF", "rdb-only", "1"]), b"+OK\r\n");
        raw.send(b"*1\r\n$4\r\nSYNC\r\n");
        drop(raw); // gone before (or while) the ~20 MB dump is sent
    }
    // Each SYNC takes its own snapshot; once the third is done, its dump
    // is being written (or already sent) and then every dump must go.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
        if info.contains("rdb_saves:3\r\n") {
            break;
        }
        assert!(Instant::now() < deadline, "snapshots not done: {info}");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    loop {
        let left: Vec<_> = walk(&s.dir)
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("temp-sync-"))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut c).unwrap(), 20_000);
}

/// A shutdown while a transfer's snapshot runs (it holds the one
/// snapshot claim) must still take the final snapshot, and must leave no
/// temporary dump behind.
#[test]
fn a_shutdown_during_a_transfer_still_saves_and_leaves_no_dump() {
    // ~40 pieces of a 10 MB string at 50 ms each: the snapshot takes ~2 s.
    let mut s = TestServer::start(&[
        "--appendonly",
        "no",
        "--save",
        "3600 1",
        "--rdb-key-save-delay",
        "50000",
    ]);
    let mut c = s.client();
    redis::cmd("SET")
        .arg("big")
        .arg(vec![b'x'; 10 << 20])
        .query::<()>(&mut c)
        .unwrap();
    let mut raw = s.raw();
    assert_eq!(raw.cmd_str(&["REPLCONF", "rdb-only", "1"]), b"+OK\r\n");
    raw.send(b"*1\r\n$4\r\nSYNC\r\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
        if info.contains("rdb_bgsave_in_progress:1\r\n") {
            break;
        }
        assert!(Instant::now() < deadline, "no snapshot started: {info}");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Written after the transfer's snapshot started: only the final
    // snapshot has it.
    redis::cmd("SET")
        .arg("after")
        .arg("1")
        .query::<()>(&mut c)
        .unwrap();
    drop(c);
    let st = s.stop().expect("exit status");
    assert!(st.success(), "{st:?}");
    let left: Vec<_> = walk(&s.dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("temp-sync-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    drop(raw);
    // A dump a crash left (the process exits without waiting for a dump
    // thread) goes at the next start.
    let stale = s.dir.join("temp-sync-99-0.rdb");
    std::fs::write(&stale, b"REDIS0010").unwrap();
    s.restart();
    assert!(!stale.exists(), "a stale dump was kept");
    let mut c = s.client();
    let v: Option<String> = redis::cmd("GET").arg("after").query(&mut c).unwrap();
    assert_eq!(
        v.as_deref(),
        Some("1"),
        "the shutdown snapshot was not taken"
    );
    let n: i64 = redis::cmd("STRLEN").arg("big").query(&mut c).unwrap();
    assert_eq!(n, 10 << 20);
}

/// With the log off, a transfer's snapshot is not the one the next start
/// loads: Redis 7.0 (diskless by default) leaves no file behind, so a key
/// deleted after `redis-cli --rdb` must not come back after a restart of
/// a server that persists nothing.
#[test]
fn a_transfer_without_the_log_does_not_replace_the_snapshot_loaded_at_start() {
    let mut s = TestServer::start(&["--appendonly", "no", "--save", ""]);
    let mut c = s.client();
    redis::cmd("SET")
        .arg("a")
        .arg("1")
        .query::<()>(&mut c)
        .unwrap();
    let mut raw = s.raw();
    assert_eq!(raw.cmd_str(&["REPLCONF", "rdb-only", "1"]), b"+OK\r\n");
    raw.send(b"*1\r\n$4\r\nSYNC\r\n");
    let mut stream = raw.s.try_clone().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    assert_eq!(keys_in(&read_dump(&mut stream)), 1);
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    redis::cmd("DEL").arg("a").query::<()>(&mut c).unwrap();
    let files: Vec<_> = walk(&s.dir)
        .into_iter()
        .filter(|p| !p.ends_with("basalt.lock"))
        .collect();
    assert!(files.is_empty(), "files left: {files:?}");
    drop(c);
    s.restart();
    let mut c = s.client();
    let v: Option<String> = redis::cmd("GET").arg("a").query(&mut c).unwrap();
    assert_eq!(
        v, None,
        "a deleted key came back from the transfer's snapshot"
    );
}
