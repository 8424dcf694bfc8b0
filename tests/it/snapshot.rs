//! Forkless snapshots: consistency under concurrent writes, crash safety,
//! restart from snapshot + log tail.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::resp::{encode, Raw};
use crate::support::TestServer;

fn state(c: &mut Raw) -> Vec<(Vec<u8>, Vec<u8>)> {
    let r = c.cmd_str(&["KEYS", "*"]);
    let mut keys = Vec::new();
    let mut lines = r.split(|&b| b == b'\n').skip(1);
    while let (Some(_), Some(k)) = (lines.next(), lines.next()) {
        keys.push(k.strip_suffix(b"\r").unwrap_or(k).to_vec());
    }
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = keys
        .into_iter()
        .map(|k| {
            let v = c.cmd(&[b"GET", &k]);
            (k, v)
        })
        .collect();
    out.sort();
    out
}

fn wait_snapshot_done(c: &mut Raw) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = String::from_utf8_lossy(&c.cmd_str(&["INFO", "persistence"])).to_string();
        if r.contains("rdb_bgsave_in_progress:0") {
            return;
        }
        assert!(Instant::now() < deadline, "snapshot did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Non-idempotent writes (APPEND, INCRBY, RENAME, DEL) race with several
/// snapshots. A snapshot holding any effect from after its cut, or missing
/// anything from before it, makes "snapshot + log tail" differ from the
/// live state after a restart.
#[test]
fn snapshot_plus_tail_equals_live_state_under_concurrent_writes() {
    let mut s = TestServer::start(&["--appendfsync", "everysec"]);
    {
        let mut c = s.raw();
        let mut pipe = Vec::new();
        for i in 0..20_000 {
            pipe.extend_from_slice(&encode(&[b"SET", format!("k{i}").as_bytes(), b"base"]));
        }
        c.send(&pipe);
        for _ in 0..20_000 {
            c.read_reply().unwrap();
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4u64)
        .map(|t| {
            let (stop, port) = (stop.clone(), s.port);
            std::thread::spawn(move || {
                let mut c = Raw::connect(port);
                let mut x = t.wrapping_mul(0x9e3779b97f4a7c15) | 1;
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) && n < 200_000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = format!("k{}", x % 20_000);
                    let k2 = format!("k{}", (x >> 20) % 20_000);
                    let cmd: Vec<Vec<u8>> = match x % 7 {
                        0..=2 => vec![
                            b"APPEND".to_vec(),
                            k.into_bytes(),
                            format!("{t}").into_bytes(),
                        ],
                        3 => vec![b"DEL".to_vec(), k.into_bytes()],
                        4 => vec![b"RENAME".to_vec(), k.into_bytes(), k2.into_bytes()],
                        5 => vec![b"SET".to_vec(), k.into_bytes(), b"7".to_vec()],
                        _ => vec![b"INCRBY".to_vec(), k.into_bytes(), b"3".to_vec()],
                    };
                    let a: Vec<&[u8]> = cmd.iter().map(|v| v.as_slice()).collect();
                    c.cmd(&a);
                    n += 1;
                }
            })
        })
        .collect();
    let mut c = s.raw();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(c.cmd_str(&["BGSAVE"]), b"+Background saving started\r\n");
        wait_snapshot_done(&mut c);
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let info = String::from_utf8_lossy(&c.cmd_str(&["INFO", "persistence"])).to_string();
    assert!(info.contains("rdb_saves:4"), "{info}");
    let live = state(&mut c);
    s.restart();
    let mut c = s.raw();
    let info = String::from_utf8_lossy(&c.cmd_str(&["INFO", "persistence"])).to_string();
    assert!(
        !info.contains("rdb_last_load_keys_loaded:0\r"),
        "restart used the snapshot: {info}"
    );
    assert_eq!(state(&mut c), live);
}

#[test]
fn kill9_during_snapshots_loses_nothing_acknowledged() {
    let mut s = TestServer::start(&["--appendfsync", "always"]);
    let dir = s.dir.clone();
    let _keep = s.take_dir();
    let mut acked_all: Vec<String> = Vec::new();
    for cycle in 0..5 {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let (stop, acked, port) = (stop.clone(), acked.clone(), s.port);
                std::thread::spawn(move || {
                    let mut c = Raw::connect(port);
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) && i < 100_000 {
                        i += 1;
                        let k = format!("c{cycle}:{t}:{i}");
                        c.send(&encode(&[b"SET", k.as_bytes(), b"v"]));
                        match c.read_reply() {
                            Some(r) if r == b"+OK\r\n" => acked.lock().unwrap().push(k),
                            _ => break,
                        }
                    }
                })
            })
            .collect();
        let snapper = {
            let (stop, port) = (stop.clone(), s.port);
            std::thread::spawn(move || {
                let mut c = Raw::connect(port);
                c.s.set_read_timeout(Some(Duration::from_secs(2))).ok();
                while !stop.load(Ordering::Relaxed) {
                    c.send(&encode(&[b"BGSAVE", b"SCHEDULE"]));
                    if c.read_reply().is_none() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        std::thread::sleep(Duration::from_millis(300 + 130 * cycle));
        s.kill9();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        snapper.join().unwrap();
        acked_all.extend(std::mem::take(&mut *acked.lock().unwrap()));
        s = TestServer::start_in(&dir, &["--appendfsync", "always"]);
        let mut c = s.raw();
        for k in &acked_all {
            assert_eq!(
                c.cmd(&[b"EXISTS", k.as_bytes()]),
                b":1\r\n",
                "cycle {cycle}: acknowledged {k} lost"
            );
        }
        // Leftover temp files from the killed snapshot are not loaded.
        let n = String::from_utf8_lossy(&c.cmd_str(&["DBSIZE"]))
            .trim_start_matches(':')
            .trim()
            .parse::<usize>()
            .unwrap();
        assert!(n >= acked_all.len());
    }
}

#[test]
fn save_without_log_and_restart() {
    let mut s = TestServer::start(&["--appendonly", "no"]);
    let mut c = s.raw();
    c.cmd_str(&["SET", "a", "1"]);
    c.cmd_str(&["SET", "big", &"x".repeat(100_000)]);
    c.cmd_str(&["SELECT", "5"]);
    c.cmd_str(&["SET", "in5", "yes"]);
    assert_eq!(c.cmd_str(&["SAVE"]), b"+OK\r\n");
    let t: i64 = String::from_utf8_lossy(&c.cmd_str(&["LASTSAVE"]))
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!(t > 1_600_000_000);
    c.cmd_str(&["SET", "unsaved", "x"]);
    s.kill9();
    s.restart();
    let mut c = s.raw();
    assert_eq!(c.cmd_str(&["GET", "a"]), b"$1\r\n1\r\n");
    assert_eq!(c.cmd_str(&["STRLEN", "big"]), b":100000\r\n");
    assert_eq!(c.cmd_str(&["EXISTS", "unsaved"]), b":0\r\n");
    c.cmd_str(&["SELECT", "5"]);
    assert_eq!(c.cmd_str(&["GET", "in5"]), b"$3\r\nyes\r\n");
}

#[test]
fn damaged_snapshot_refuses_start_with_offset() {
    let mut s = TestServer::start(&["--appendonly", "no"]);
    let mut c = s.raw();
    for i in 0..1000 {
        c.cmd_str(&["SET", &format!("k{i}"), "v"]);
    }
    assert_eq!(c.cmd_str(&["SAVE"]), b"+OK\r\n");
    s.stop();
    let p = s.dir.join("basalt.snapshot");
    let mut b = std::fs::read(&p).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x55;
    std::fs::write(&p, &b).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_basalt-server"))
        .args(["--port", "0", "--appendonly", "no", "--dir"])
        .arg(&s.dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("offset") && err.contains("checksum"), "{err}");
}

#[test]
fn every_type_survives_snapshot_and_restart() {
    let mut s = TestServer::start(&["--appendonly", "no"]);
    let mut c = s.raw();
    c.cmd_str(&["HSET", "h", "f1", "v1", "f2", "2"]);
    c.cmd_str(&["SADD", "sint", "1", "2", "3"]);
    c.cmd_str(&["SADD", "sstr", "a", "b", "c"]);
    c.cmd_str(&["RPUSH", "l", "x", "y", "z"]);
    c.cmd_str(&["ZADD", "z", "1.5", "a", "-inf", "b", "3", "c"]);
    c.cmd_str(&["HSET", "ht", "keep", "1", "ttl", "2"]);
    assert_eq!(
        c.cmd_str(&["HEXPIRE", "ht", "1000", "FIELDS", "1", "ttl"]),
        b"*1\r\n:1\r\n"
    );
    // Big enough to use the table encodings.
    for i in 0..300 {
        c.cmd_str(&["HSET", "bigh", &format!("f{i}"), &"v".repeat(100)]);
        c.cmd_str(&["ZADD", "bigz", &i.to_string(), &format!("m{i}")]);
        c.cmd_str(&["RPUSH", "bigl", &format!("item{i}")]);
        c.cmd_str(&["SADD", "bigs", &format!("m{i}")]);
    }
    let probe: &[&[&str]] = &[
        &["HGETALL", "h"],
        &["SMEMBERS", "sint"],
        &["LRANGE", "l", "0", "-1"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["LRANGE", "bigl", "0", "-1"],
        &["ZRANGE", "bigz", "0", "-1", "WITHSCORES"],
        &["HLEN", "bigh"],
        &["SCARD", "bigs"],
        &["SISMEMBER", "sstr", "b"],
        &["OBJECT", "ENCODING", "bigh"],
        &["OBJECT", "ENCODING", "sint"],
        &["HMGET", "ht", "keep", "ttl"],
        &["HPERSIST", "ht", "FIELDS", "1", "keep"],
    ];
    let before: Vec<Vec<u8>> = probe.iter().map(|p| c.cmd_str(p)).collect();
    assert_eq!(c.cmd_str(&["SAVE"]), b"+OK\r\n");
    s.kill9();
    s.restart();
    let mut c = s.raw();
    let after: Vec<Vec<u8>> = probe.iter().map(|p| c.cmd_str(p)).collect();
    for (i, p) in probe.iter().enumerate() {
        assert_eq!(
            String::from_utf8_lossy(&before[i]),
            String::from_utf8_lossy(&after[i]),
            "{p:?}"
        );
    }
    let ttl = String::from_utf8_lossy(&c.cmd_str(&["HTTL", "ht", "FIELDS", "2", "ttl", "keep"]))
        .to_string();
    assert!(
        ttl.starts_with("*2\r\n:99") || ttl.starts_with("*2\r\n:1000"),
        "field TTL kept: {ttl}"
    );
    assert!(ttl.ends_with(":-1\r\n"), "{ttl}");
}

fn info_field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// While a snapshot and a log tail load, INFO persistence reports real
/// progress (bytes, percent, ETA) and other commands get -LOADING.
/// `key-load-delay` (as in Redis's own tests) slows the load down enough
/// to watch it.
#[test]
fn info_reports_loading_progress() {
    let mut s = TestServer::start(&["--appendonly", "yes"]);
    let mut c = s.raw();
    // ~13 MB raw: about a dozen chunks, so progress moves in steps.
    assert_eq!(
        c.cmd_str(&["DEBUG", "POPULATE", "40000", "key", "300"]),
        b"+OK\r\n"
    );
    assert_eq!(c.cmd_str(&["SAVE"]), b"+OK\r\n");
    for i in 0..100 {
        c.cmd_str(&["SET", &format!("tail{i}"), "v"]);
    }
    let dir = s.take_dir().unwrap();
    s.stop();
    let port = crate::support::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_basalt-server"))
        .args(["--port", &port.to_string(), "--appendonly", "yes"])
        .args(["--key-load-delay", "40", "--dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut c = loop {
        if let Ok(st) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            break Raw::from_stream(st);
        }
        assert!(Instant::now() < deadline, "server did not listen");
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut samples: Vec<(u64, u64, f64, u64)> = Vec::new();
    let mut saw_loading_error = false;
    loop {
        let info = String::from_utf8_lossy(&c.cmd_str(&["INFO", "persistence"])).to_string();
        if info_field(&info, "loading").as_deref() == Some("0") {
            break;
        }
        let num = |n: &str| info_field(&info, n).unwrap_or_else(|| panic!("{n} in {info}"));
        samples.push((
            num("loading_loaded_bytes").parse().unwrap(),
            num("loading_total_bytes").parse().unwrap(),
            num("loading_loaded_perc").parse().unwrap(),
            num("loading_eta_seconds").parse().unwrap(),
        ));
        assert!(num("loading_start_time").parse::<u64>().unwrap() > 1_600_000_000);
        if c.cmd_str(&["GET", "key:1"]).starts_with(b"-LOADING") {
            saw_loading_error = true;
        }
        assert!(Instant::now() < deadline, "load did not finish");
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(saw_loading_error, "GET during the load was not refused");
    // Before the log's manifest is read the size of the work is not known
    // yet (total 0); from then on it is fixed.
    samples.retain(|s| s.1 != 0);
    assert!(samples.len() >= 3, "too few samples: {samples:?}");
    let total = samples[0].1;
    assert!(total > 100_000, "{samples:?}");
    for w in samples.windows(2) {
        assert_eq!(w[1].1, total, "total changed: {samples:?}");
        assert!(w[1].0 >= w[0].0, "loaded bytes went back: {samples:?}");
    }
    // Strictly between the ends at some point, and consistent with bytes.
    assert!(
        samples.iter().any(|s| s.2 > 0.0 && s.2 < 100.0),
        "{samples:?}"
    );
    for s in &samples {
        let want = s.0 as f64 / total as f64 * 100.0;
        assert!((s.2 - want).abs() < 0.01, "{s:?}");
    }
    assert_eq!(c.cmd_str(&["DBSIZE"]), b":40100\r\n");
    let _ = child.kill();
    let _ = child.wait();
}

/// Chunks of the newest snapshot in `dir/appendonlydir` whose bytes go on
/// in the next chunk (a value written in pieces).
/// The newest snapshot file's bytes.
fn last_snapshot(dir: &std::path::Path) -> Vec<u8> {
    let d = dir.join("appendonlydir");
    let mut snaps: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "bsnap"))
        .collect();
    snaps.sort();
    std::fs::read(snaps.last().expect("a snapshot")).unwrap()
}

/// (raw length, entries field) of every chunk of a snapshot file; bit 31
/// of the entries field says the chunk's bytes continue in the next one.
fn chunk_headers(b: &[u8]) -> Vec<(u32, u32)> {
    let le32 = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let (mut pos, mut out) = (32, Vec::new());
    loop {
        let (comp, raw, entries) = (le32(pos), le32(pos + 4), le32(pos + 8));
        if comp == 0 && raw == 0 {
            return out;
        }
        out.push((raw, entries));
        pos += 16 + comp as usize;
    }
}

fn continued_chunks(dir: &std::path::Path) -> usize {
    chunk_headers(&last_snapshot(dir))
        .iter()
        .filter(|&&(_, e)| e >> 31 == 1)
        .count()
}

/// Three BGSAVEs 50 ms apart; the continued chunks of each, summed.
fn three_saves_counting_pieces(c: &mut Raw, dir: &std::path::Path) -> usize {
    let mut pieced = 0;
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(c.cmd_str(&["BGSAVE"]), b"+Background saving started\r\n");
        wait_snapshot_done(c);
        pieced += continued_chunks(dir);
    }
    pieced
}

/// A list of a million elements and a 600 kB string are written in pieces
/// (the shard lock released between pieces) while writers keep changing
/// them; snapshot + log tail must still give exactly the live state, so
/// every piece came from the value as it was at the cut.
#[test]
fn big_values_in_pieces_under_concurrent_writes() {
    const LIST_LEN: usize = 1_000_000;
    // A pause per snapshot step stretches the pieces of the list over
    // a few hundred ms, so the writer's changes land part-way through.
    let mut s = TestServer::start(&["--appendfsync", "everysec", "--rdb-key-save-delay", "3000"]);
    {
        let mut c = s.raw();
        let mut pipe = Vec::new();
        for chunk in 0..LIST_LEN / 1000 {
            let mut args: Vec<Vec<u8>> = vec![b"RPUSH".to_vec(), b"big".to_vec()];
            args.extend((0..1000).map(|i| format!("e{}", chunk * 1000 + i).into_bytes()));
            let a: Vec<&[u8]> = args.iter().map(|v| v.as_slice()).collect();
            pipe.extend_from_slice(&encode(&a));
        }
        c.send(&pipe);
        for _ in 0..LIST_LEN / 1000 {
            c.read_reply().unwrap();
        }
        let llen = c.cmd_str(&["LLEN", "big"]);
        assert_eq!(llen, format!(":{LIST_LEN}\r\n").as_bytes());
        c.cmd_str(&["SET", "bigs", &"s".repeat(600 << 10)]);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, port) = (stop.clone(), s.port);
        std::thread::spawn(move || {
            let mut c = Raw::connect(port);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let i = n.to_string();
                // A burst on both values every 150 ms.
                c.cmd_str(&["LPUSH", "big", &format!("head{i}")]);
                c.cmd_str(&["RPOP", "big"]);
                c.cmd_str(&[
                    "LSET",
                    "big",
                    &(n * 7919 % (LIST_LEN as u64 - 1000)).to_string(),
                    &i,
                ]);
                c.cmd_str(&["APPEND", "bigs", &i]);
                c.cmd_str(&[
                    "SETRANGE",
                    "bigs",
                    &(n * 104_729 % 600_000).to_string(),
                    "X",
                ]);
                n += 1;
                std::thread::sleep(Duration::from_millis(150));
            }
            n
        })
    };
    let mut c = s.raw();
    let pieced = three_saves_counting_pieces(&mut c, &s.dir);
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(writes > 3, "the writer ran ({writes} bursts)");
    assert!(pieced > 0, "big values were written in pieces");
    let list = c.cmd_str(&["LRANGE", "big", "0", "-1"]);
    let string = c.cmd_str(&["GET", "bigs"]);
    s.kill9();
    s.restart();
    let mut c = s.raw();
    assert!(
        c.cmd_str(&["LRANGE", "big", "0", "-1"]) == list,
        "list differs after restart"
    );
    assert!(
        c.cmd_str(&["GET", "bigs"]) == string,
        "string differs after restart"
    );
}

/// Big hashes (with and without field TTLs), sets and sorted sets are
/// written in pieces too, and writes that land between the pieces leave
/// the snapshot equal to the state at its position.
#[test]
fn big_collections_in_pieces_under_concurrent_writes() {
    use std::collections::{BTreeMap, BTreeSet};
    const N: usize = 100_000;
    let mut s = TestServer::start(&["--appendfsync", "everysec", "--rdb-key-save-delay", "3000"]);
    {
        let mut c = s.raw();
        let mut pipe = Vec::new();
        let mut replies = 0;
        for chunk in 0..N / 1000 {
            let ids: Vec<usize> = (chunk * 1000..(chunk + 1) * 1000).collect();
            let mut cmds: Vec<Vec<Vec<u8>>> = vec![
                vec![b"HSET".to_vec(), b"h".to_vec()],
                vec![b"HSET".to_vec(), b"ht".to_vec()],
                vec![b"SADD".to_vec(), b"st".to_vec()],
                vec![b"ZADD".to_vec(), b"z".to_vec()],
            ];
            for &i in &ids {
                cmds[0].extend([format!("f{i}").into_bytes(), format!("v{i}").into_bytes()]);
                cmds[1].extend([format!("f{i}").into_bytes(), b"x".to_vec()]);
                cmds[2].push(format!("m{i}").into_bytes());
                cmds[3].extend([
                    (i as f64 / 3.0).to_string().into_bytes(),
                    format!("m{i}").into_bytes(),
                ]);
            }
            // Field TTLs far in the future on every tenth field of "ht".
            let mut hx: Vec<Vec<u8>> = vec![
                b"HPEXPIREAT".to_vec(),
                b"ht".to_vec(),
                b"4000000000000".to_vec(),
                b"FIELDS".to_vec(),
                b"100".to_vec(),
            ];
            hx.extend(ids.iter().step_by(10).map(|i| format!("f{i}").into_bytes()));
            cmds.push(hx);
            for cmd in &cmds {
                let a: Vec<&[u8]> = cmd.iter().map(|v| v.as_slice()).collect();
                pipe.extend_from_slice(&encode(&a));
                replies += 1;
            }
        }
        c.send(&pipe);
        for _ in 0..replies {
            let r = c.read_reply().unwrap();
            assert!(!r.starts_with(b"-"), "{}", String::from_utf8_lossy(&r));
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, port) = (stop.clone(), s.port);
        std::thread::spawn(move || {
            let mut c = Raw::connect(port);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let i = n.to_string();
                let old = format!("f{}", n * 7919 % N as u64);
                let member = format!("m{}", n * 7919 % N as u64);
                for cmd in [
                    vec!["HSET", "h", &old, &i],
                    vec!["HDEL", "h", &format!("f{}", n * 104_729 % N as u64)],
                    vec!["HSET", "ht", &format!("new{i}"), &i],
                    vec!["HPEXPIREAT", "ht", "4100000000000", "FIELDS", "1", &old],
                    vec!["SREM", "st", &member],
                    vec!["SADD", "st", &format!("new{i}")],
                    vec!["ZINCRBY", "z", "1000000", &member],
                    vec!["ZREM", "z", &format!("m{}", n * 104_729 % N as u64)],
                ] {
                    let r = c.cmd_str(&cmd);
                    assert!(
                        !r.starts_with(b"-"),
                        "{cmd:?}: {}",
                        String::from_utf8_lossy(&r)
                    );
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            n
        })
    };
    let mut c = s.raw();
    let pieced = three_saves_counting_pieces(&mut c, &s.dir);
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(writes > 3, "the writer ran ({writes} rounds)");
    assert!(pieced > 0, "big values were written in pieces");
    type State = (
        BTreeMap<Vec<u8>, Vec<u8>>,
        BTreeMap<Vec<u8>, Vec<u8>>,
        BTreeSet<Vec<u8>>,
        Vec<u8>,
        Vec<u8>,
    );
    let state = |s: &TestServer| -> State {
        let mut r = s.client();
        let h: BTreeMap<Vec<u8>, Vec<u8>> = redis::cmd("HGETALL").arg("h").query(&mut r).unwrap();
        let ht: BTreeMap<Vec<u8>, Vec<u8>> = redis::cmd("HGETALL").arg("ht").query(&mut r).unwrap();
        let st: BTreeSet<Vec<u8>> = redis::cmd("SMEMBERS").arg("st").query(&mut r).unwrap();
        let mut raw = s.raw();
        let z = raw.cmd_str(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]);
        // Field deadlines of a sample, in a fixed order.
        let mut args = vec!["HPEXPIRETIME".to_string(), "ht".into(), "FIELDS".into()];
        let fields: Vec<String> = (0..N).step_by(7).map(|i| format!("f{i}")).collect();
        args.push(fields.len().to_string());
        args.extend(fields);
        let a: Vec<&str> = args.iter().map(|x| x.as_str()).collect();
        let ttls = raw.cmd_str(&a);
        (h, ht, st, z, ttls)
    };
    let before = state(&s);
    assert!(before.0.len() > N / 2 && before.2.len() > N / 2);
    s.kill9();
    s.restart();
    let after = state(&s);
    assert!(before.0 == after.0, "hash differs after restart");
    assert!(
        before.1 == after.1,
        "hash with field TTLs differs after restart"
    );
    assert!(before.2 == after.2, "set differs after restart");
    assert!(before.3 == after.3, "sorted set differs after restart");
    assert!(before.4 == after.4, "field deadlines differ after restart");
}

/// FLUSHALL while a snapshot runs hands every table the walk has not
/// reached to the snapshot at once, far more than one chunk's worth: it
/// must go out as continued chunks the loader accepts (one chunk over the
/// loader's limit would make the snapshot unloadable once the log it
/// covers is gone), and restart must give the live state.
#[test]
fn flushall_during_a_snapshot_writes_a_loadable_file() {
    const KEYS: usize = 60_000;
    // One shard: the walk does database 0 (the lists, whose pieces take
    // about 400 ms) before database 1 (the small keys), so a FLUSHALL
    // soon after BGSAVE finds all of database 1 ahead of the walk.
    let mut s = TestServer::start(&[
        "--appendfsync",
        "everysec",
        "--rdb-key-save-delay",
        "5000",
        "--shards",
        "1",
    ]);
    let mut c = s.raw();
    let mut pipe = encode(&[b"SELECT", b"1"]);
    let val = "v".repeat(100);
    for i in 0..KEYS {
        pipe.extend_from_slice(&encode(&[
            b"SET",
            format!("k{i}").as_bytes(),
            val.as_bytes(),
        ]));
    }
    pipe.extend_from_slice(&encode(&[b"SELECT", b"0"]));
    // 40 big lists: their pieces are 5 ms apart, two each.
    for l in 0..40 {
        let mut args: Vec<Vec<u8>> = vec![b"RPUSH".to_vec(), format!("list{l}").into_bytes()];
        args.extend((0..5000).map(|i| format!("e{i}").into_bytes()));
        let a: Vec<&[u8]> = args.iter().map(|v| v.as_slice()).collect();
        pipe.extend_from_slice(&encode(&a));
    }
    c.send(&pipe);
    for _ in 0..KEYS + 42 {
        c.read_reply().unwrap();
    }
    assert_eq!(c.cmd_str(&["BGSAVE"]), b"+Background saving started\r\n");
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(c.cmd_str(&["FLUSHALL"]), b"+OK\r\n");
    for i in 0..100 {
        c.cmd_str(&["SET", &format!("after{i}"), &i.to_string()]);
    }
    wait_snapshot_done(&mut c);
    // The capture of the flushed tables went out as one unit of several
    // chunks whose first chunk starts many entries (a big value's pieces
    // start one).
    // Units: runs of chunks flagged "continues" plus the chunk ending them.
    let (mut biggest, mut unit_raw, mut unit_entries) = (0, 0u64, 0u32);
    let mut bulk_units = 0;
    for (raw, entries) in chunk_headers(&last_snapshot(&s.dir)) {
        biggest = biggest.max(raw);
        unit_raw += u64::from(raw);
        unit_entries += entries & 0x7fff_ffff;
        if entries >> 31 == 0 {
            // 60k keys of ~110 bytes: the flushed database is one unit of
            // several MB and thousands of entries.
            if unit_raw > 2 << 20 && unit_entries > 10_000 {
                bulk_units += 1;
            }
            (unit_raw, unit_entries) = (0, 0);
        }
    }
    assert!(biggest <= 256 << 10, "a chunk of {biggest} raw bytes");
    // (The walker may drain part of it while FLUSHALL is still capturing,
    // making two units.)
    assert!(
        bulk_units >= 1,
        "the flushed database was not captured in bulk"
    );
    let live = state(&mut c);
    assert_eq!(live.len(), 100);
    drop(c);
    s.kill9();
    s.restart();
    let mut c = s.raw();
    assert!(state(&mut c) == live, "state differs after restart");
    c.cmd_str(&["SELECT", "1"]);
    assert_eq!(c.cmd_str(&["DBSIZE"]), b":0\r\n");
}

/// A running snapshot keeps the old value of each key a write changes
/// before the walk reaches it. Writers that outpace it wait instead of
/// piling those copies up: here the snapshot is held inside a big list's
/// pieces (db 0, walked first with one shard) while a writer overwrites
/// 20 MB of 1 KB values in db 1, which the walk has not reached. Without
/// the bound all 20 MB were held at once.
#[test]
fn writers_wait_for_a_snapshot_instead_of_piling_up_captured_values() {
    let mut s = TestServer::start(&[
        "--appendfsync",
        "everysec",
        "--shards",
        "1",
        "--rdb-key-save-delay",
        "100000",
    ]);
    let mut c = s.raw();
    const N: usize = 20_000;
    let value = |gen: u8| vec![b'a' + gen; 1000];
    // db 0: a list of 40 pieces (4096 elements each); db 1: N values.
    let mut pipe = Vec::new();
    for chunk in 0..40 {
        let mut cmd: Vec<Vec<u8>> = vec![b"RPUSH".to_vec(), b"big".to_vec()];
        cmd.extend((0..4096).map(|i| format!("e{chunk}-{i}").into_bytes()));
        let a: Vec<&[u8]> = cmd.iter().map(|v| v.as_slice()).collect();
        pipe.extend_from_slice(&encode(&a));
    }
    pipe.extend_from_slice(&encode(&[b"SELECT", b"1"]));
    for i in 0..N {
        pipe.extend_from_slice(&encode(&[b"SET", format!("k{i}").as_bytes(), &value(0)]));
    }
    c.send(&pipe);
    for _ in 0..40 + 1 + N {
        let r = c.read_reply().unwrap();
        assert!(!r.starts_with(b"-"), "{}", String::from_utf8_lossy(&r));
    }
    assert!(c.cmd_str(&["BGSAVE"]).starts_with(b"+"));
    std::thread::sleep(Duration::from_millis(200));
    // Overwrite every value in db 1 while the snapshot sits in the list's
    // pieces (100 ms apart): 100 SETs per round trip.
    let t0 = Instant::now();
    for batch in 0..N / 100 {
        let mut pipe = Vec::new();
        for i in batch * 100..(batch + 1) * 100 {
            pipe.extend_from_slice(&encode(&[b"SET", format!("k{i}").as_bytes(), &value(1)]));
        }
        c.send(&pipe);
        for _ in 0..100 {
            assert_eq!(c.read_reply().unwrap(), b"+OK\r\n");
        }
    }
    let waited = t0.elapsed();
    wait_snapshot_done(&mut c);
    let info = String::from_utf8_lossy(&c.cmd_str(&["INFO", "persistence"])).to_string();
    let held: u64 = info_field(&info, "rdb_last_cow_size")
        .unwrap()
        .parse()
        .unwrap();
    // The bound is 4 MB pending; the buffer's capacity may double past it.
    assert!(held < 9 << 20, "captured values held at once: {held} bytes");
    assert!(
        waited > Duration::from_millis(500),
        "the writer did not wait: {waited:?}"
    );
    // Nothing was lost: the snapshot plus the log gives the new values.
    s.restart();
    let mut c = s.raw();
    c.cmd_str(&["SELECT", "1"]);
    for i in (0..N).step_by(997) {
        assert_eq!(c.cmd(&[b"GET", format!("k{i}").as_bytes()]), {
            let mut r = b"$1000\r\n".to_vec();
            r.extend_from_slice(&value(1));
            r.extend_from_slice(b"\r\n");
            r
        });
    }
    c.cmd_str(&["SELECT", "0"]);
    assert_eq!(c.cmd_str(&["LLEN", "big"]), b":163840\r\n");
}
