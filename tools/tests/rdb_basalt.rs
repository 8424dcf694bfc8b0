//! `basalt-rdb import` / `export` with the real `basalt-server` (built by
//! the workspace: `target/<profile>/basalt-server`, next to this test's
//! own binary; built with cargo if missing). The import round trips use
//! the corpus's string dumps; `export --data-dir` is checked with every
//! type Basalt shares with Redis 7.0, against a real redis-server.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

#[path = "../../rdb/tests/support/mod.rs"]
mod redis;
mod support;

use basalt_rdb::{DecodeOptions, Item, MappedFile, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::*;

fn server_binary() -> PathBuf {
    // target/<profile>/deps/rdb_basalt-xxxx -> target/<profile>/basalt-server
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("basalt-server");
    if !bin.exists() {
        let profile = exe
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "basalt", "--bin", "basalt-server"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        if profile == "release" {
            cmd.arg("--release");
        }
        assert!(
            cmd.status().unwrap().success(),
            "building basalt-server failed"
        );
    }
    bin
}

struct Basalt {
    child: Child,
    addr: String,
}

impl Basalt {
    fn start(dir: &Path) -> Basalt {
        Basalt::start_with(dir, &[])
    }

    fn start_with(dir: &Path, extra: &[&str]) -> Basalt {
        let mut child = Command::new(server_binary())
            .args(["--port", "0", "--bind", "127.0.0.1", "--dir"])
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn basalt-server");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if let Some(a) = line.trim().strip_prefix("basalt-server listening on tcp ") {
                    let _ = tx.send(a.to_string());
                }
                line.clear();
            }
        });
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = BufReader::new(stderr).read_to_end(&mut buf);
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("basalt-server printed its address");
        Basalt { child, addr }
    }
}

impl Drop for Basalt {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (db, key) -> (value, expiry) for keys that are not expired.
type Strings = BTreeMap<(u64, Vec<u8>), (Vec<u8>, Option<i64>)>;

fn strings(path: &Path) -> Strings {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut m = BTreeMap::new();
    for item in MappedFile::open(path)
        .unwrap()
        .reader(DecodeOptions::default())
        .unwrap()
    {
        if let Item::Entry(e) = item.unwrap() {
            if e.expire_ms.is_some_and(|x| x <= now + 60_000) {
                continue;
            }
            let Value::String(v) = e.value else {
                panic!("not a string dataset")
            };
            m.insert((e.db, e.key), (v, e.expire_ms));
        }
    }
    m
}

const STRING_DUMPS: &[&str] = &[
    "gen70_strings",
    "gen70_keys_100k",
    "gen70_string_1mib",
    "rdbtools_multiple_databases",
    "rdbtools_keys_with_expiry",
    "rdbtools_non_ascii_values",
    "rdbtools_integer_keys",
    "craft_v4_expire_seconds",
];

#[test]
fn import_into_basalt_and_export_back() {
    let tmp = tempfile::tempdir().unwrap();
    for name in STRING_DUMPS {
        let src = corpus(&format!("{name}.rdb"));
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let server = Basalt::start(&dir);
        for mode in ["restore", "plain"] {
            let o = rdb(&[
                "import",
                p(&src),
                "--to",
                &server.addr,
                "--mode",
                mode,
                "--replace",
                "-q",
            ]);
            assert!(
                o.status.success(),
                "{name} ({mode}): {}",
                String::from_utf8_lossy(&o.stderr)
            );
            // Basalt answers SYNC for rdb-only clients (its snapshot as
            // RDB); SCAN + DUMP is the other way out.
            for method in ["sync", "scan"] {
                let out = tmp.path().join(format!("{name}-{mode}-{method}.rdb"));
                rdb_ok(&[
                    "export",
                    "--from",
                    &server.addr,
                    "-o",
                    p(&out),
                    "--method",
                    method,
                    "-q",
                ]);
                assert_eq!(
                    strings(&out),
                    strings(&src),
                    "{name} ({mode}, {method}) through Basalt"
                );
            }
        }
        // Skip-existing leaves Basalt's keys alone.
        let o = rdb(&["import", p(&src), "--to", &server.addr, "--skip-existing"]);
        assert!(o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("imported 0 keys"),
            "{name}"
        );
    }
}

#[test]
fn import_data_dir_is_loaded_by_basalt_at_first_start() {
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "gen70_strings",
        "rdbtools_multiple_databases",
        "rdbtools_keys_with_expiry",
    ] {
        let src = corpus(&format!("{name}.rdb"));
        let dir = tmp.path().join(name);
        rdb_ok(&["import", p(&src), "--data-dir", p(&dir), "-q"]);
        assert!(dir.join("dump.rdb").exists());
        // A second import into the same dir is refused without --replace.
        assert_eq!(
            rdb(&["import", p(&src), "--data-dir", p(&dir)])
                .status
                .code(),
            Some(1)
        );
        let server = Basalt::start(&dir);
        let out = tmp.path().join(format!("{name}-back.rdb"));
        rdb_ok(&["export", "--from", &server.addr, "-o", p(&out), "-q"]);
        assert_eq!(
            strings(&out),
            strings(&src),
            "{name} through a Basalt data dir"
        );
    }
}

// ---- export --data-dir ----

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Every key of a dump, canonical: (db, key) -> (value, expiry).
fn all_keys(path: &Path) -> BTreeMap<(u64, Vec<u8>), (Value, Option<i64>)> {
    let mut m = BTreeMap::new();
    for item in MappedFile::open(path)
        .unwrap()
        .reader(DecodeOptions::default())
        .unwrap()
    {
        if let Item::Entry(e) = item.unwrap() {
            m.insert((e.db, e.key), (redis::canon(&e.value), e.expire_ms));
        }
    }
    m
}

/// Commands writing every type Basalt and Redis 7.0 share, in two
/// databases, compact and large encodings, binary data and absolute
/// expiries. `phase` 0 runs before the snapshot, 1 after (the log tail:
/// overwrites, deletes, appends, new keys).
fn script(phase: u8, far: i64) -> Vec<Vec<Vec<u8>>> {
    let mut out: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut cmd = |parts: Vec<Vec<u8>>| out.push(parts);
    let b = |s: &str| s.as_bytes().to_vec();
    let far = far.to_string();
    if phase == 0 {
        cmd(vec![b("SELECT"), b("0")]);
        cmd(vec![b("SET"), b("str"), b("hello")]);
        cmd(vec![b("SET"), b("num"), b("12345")]);
        cmd(vec![b("SET"), b("big"), "x".repeat(100_000).into_bytes()]);
        cmd(vec![
            b("SET"),
            b("bin\x00key"),
            vec![0, 255, 13, 10, 128, 7],
        ]);
        cmd(vec![b("SET"), b("ttl"), b("v"), b("PXAT"), b(&far)]);
        cmd(vec![b("RPUSH"), b("list"), b("a"), b("b"), b("c")]);
        let mut big = vec![b("RPUSH"), b("listbig")];
        big.extend((0..2000).map(|i| format!("element-{i}").into_bytes()));
        cmd(big);
        cmd(vec![b("SADD"), b("intset"), b("1"), b("2"), b("-300000")]);
        cmd(vec![b("SADD"), b("set"), b("a"), b("b"), b("c")]);
        let mut big = vec![b("SADD"), b("setbig")];
        big.extend((0..700).map(|i| format!("m{i}").into_bytes()));
        cmd(big);
        cmd(vec![
            b("ZADD"),
            b("zset"),
            b("1"),
            b("a"),
            b("2.5"),
            b("b"),
            b("-inf"),
            b("c"),
        ]);
        let mut big = vec![b("ZADD"), b("zsetbig")];
        for i in 0..300 {
            big.push(format!("{}.25", i * 7).into_bytes());
            big.push(format!("member-{i}").into_bytes());
        }
        cmd(big);
        cmd(vec![
            b("HSET"),
            b("hash"),
            b("f1"),
            b("v1"),
            b("f2"),
            b("v2"),
        ]);
        let mut big = vec![b("HSET"), b("hashbig")];
        for i in 0..600 {
            big.push(format!("field{i}").into_bytes());
            big.push(format!("value{i}").into_bytes());
        }
        cmd(big);
        cmd(vec![b("PEXPIREAT"), b("hash"), b(&far)]);
        cmd(vec![b("SETBIT"), b("bits"), b("100"), b("1")]);
        cmd(vec![b("PFADD"), b("hll"), b("a"), b("b"), b("c")]);
        cmd(vec![b("SELECT"), b("3")]);
        cmd(vec![b("SET"), b("k3"), b("v3")]);
        cmd(vec![b("HSET"), b("h3"), b("a"), b("b")]);
    } else {
        cmd(vec![b("SELECT"), b("0")]);
        cmd(vec![b("APPEND"), b("str"), b(" world")]);
        cmd(vec![b("INCRBY"), b("num"), b("5")]);
        cmd(vec![b("DEL"), b("set")]);
        cmd(vec![b("RPUSH"), b("list"), b("d")]);
        cmd(vec![b("LPOP"), b("listbig")]);
        cmd(vec![b("ZREM"), b("zset"), b("a")]);
        cmd(vec![b("HDEL"), b("hash"), b("f1")]);
        cmd(vec![b("SREM"), b("setbig"), b("m5")]);
        cmd(vec![
            b("SET"),
            b("later"),
            b("after the snapshot"),
            b("PXAT"),
            b(&far),
        ]);
        cmd(vec![b("SELECT"), b("5")]);
        cmd(vec![b("SET"), b("k5"), b("v5")]);
        cmd(vec![b("SADD"), b("s5"), b("x")]);
    }
    out
}

/// A connection to Basalt once it has finished loading.
fn ready(addr: &str) -> redis::Conn {
    let mut c = redis::Conn::connect(addr);
    for _ in 0..600 {
        if let redis::Resp::Simple(_) = c.cmd(&[b"PING"]) {
            return c;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("basalt-server still loading");
}

fn run(conn: &mut redis::Conn, cmds: &[Vec<Vec<u8>>]) {
    for c in cmds {
        let args: Vec<&[u8]> = c.iter().map(|a| a.as_slice()).collect();
        conn.ok(&args);
    }
}

#[test]
fn export_data_dir_loads_into_redis_7_with_identical_contents() {
    if !redis::redis_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let far = now_ms() + 3_600_000;
    let (a, b) = (script(0, far), script(1, far));

    // The reference: the same commands on a real Redis 7.0.
    let reference = redis::RedisServer::start(None);
    let mut rc = reference.conn();
    run(&mut rc, &a);
    run(&mut rc, &b);
    rc.ok(&[b"SAVE"]);
    let want = all_keys(&reference.dump_path());

    // Basalt: half before a snapshot, half in the log tail after it.
    let server = Basalt::start(&dir);
    let mut bc = ready(&server.addr);
    run(&mut bc, &a);
    bc.ok(&[b"SAVE"]);
    run(&mut bc, &b);
    let out = tmp.path().join("export.rdb");
    // While the server runs, the data dir is locked: a clean refusal.
    let busy = rdb(&["export", "--data-dir", p(&dir), "-o", p(&out)]);
    assert_eq!(busy.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&busy.stderr);
    assert!(msg.contains("in use"), "{msg}");
    assert!(!out.exists());
    // kill -9: every write above was acknowledged, so fsynced.
    drop(bc);
    drop(server);
    let listing = |d: &Path| {
        let mut v: Vec<(String, u64)> = walk(d);
        v.sort();
        v
    };
    let before = listing(&dir);

    for version in ["9", "10"] {
        let out = tmp.path().join(format!("export-v{version}.rdb"));
        rdb_ok(&[
            "export",
            "--data-dir",
            p(&dir),
            "-o",
            p(&out),
            "--rdb-version",
            version,
            "-q",
        ]);
        assert_eq!(
            &std::fs::read(&out).unwrap()[..9],
            format!("REDIS{version:0>4}").as_bytes()
        );
        let loaded = redis::RedisServer::start(Some(&std::fs::read(&out).unwrap()));
        let mut lc = loaded.conn();
        assert_eq!(
            lc.ok(&[b"DBSIZE"]).int(),
            16,
            "db 0 after loading v{version}"
        );
        lc.ok(&[b"SAVE"]);
        let got = all_keys(&loaded.dump_path());
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "RDB {version}: key sets differ"
        );
        for (k, v) in &want {
            assert_eq!(
                &got[k],
                v,
                "RDB {version}: key {:?} differs",
                String::from_utf8_lossy(&k.1)
            );
        }
    }
    // The export changed nothing in the data dir (the lock file aside).
    assert_eq!(listing(&dir), before);
}

fn walk(d: &Path) -> Vec<(String, u64)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(d).unwrap().flatten() {
        let path = e.path();
        if path.is_dir() {
            v.extend(walk(&path));
        } else {
            v.push((
                path.display().to_string(),
                std::fs::metadata(&path).unwrap().len(),
            ));
        }
    }
    v
}

#[test]
fn export_data_dir_refuses_what_the_target_cannot_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let far = now_ms() + 3_600_000;
    {
        let server = Basalt::start(&dir);
        let mut c = ready(&server.addr);
        c.ok(&[b"HSET", b"h", b"a", b"1", b"b", b"2"]);
        let far = far.to_string();
        c.ok(&[b"HPEXPIREAT", b"h", far.as_bytes(), b"FIELDS", b"1", b"a"]);
        c.ok(&[b"SET", b"gone", b"x", b"PX", b"1"]);
    }
    std::thread::sleep(Duration::from_millis(5));
    let out = tmp.path().join("x.rdb");
    let r = rdb(&["export", "--data-dir", p(&dir), "-o", p(&out)]);
    assert_eq!(r.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&r.stderr);
    assert!(msg.contains("hash field expiry"), "{msg}");
    assert!(!out.exists(), "no partial output");
    rdb_ok(&[
        "export",
        "--data-dir",
        p(&dir),
        "-o",
        p(&out),
        "--rdb-version",
        "12",
        "-q",
    ]);
    let keys = all_keys(&out);
    // The expired key is left out; the field TTL is kept.
    assert_eq!(keys.len(), 1);
    let (Value::Hash(h), None) = &keys[&(0, b"h".to_vec())] else {
        panic!("{keys:?}")
    };
    assert_eq!(h[0].expire_ms, Some(far as u64));
    assert_eq!(h[1].expire_ms, None);
    // Not a data dir at all.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let r = rdb(&["export", "--data-dir", p(&empty), "-o", p(&out)]);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("no Basalt data"));
}

#[test]
fn export_data_dir_reads_a_standalone_snapshot() {
    // appendonly no: SAVE writes basalt.snapshot, which export loads.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    {
        let server = Basalt::start_with(&dir, &["--appendonly", "no"]);
        let mut c = ready(&server.addr);
        c.ok(&[b"SET", b"a", b"1"]);
        c.ok(&[b"RPUSH", b"l", b"x", b"y"]);
        c.ok(&[b"SELECT", b"2"]);
        c.ok(&[b"SADD", b"s", b"m"]);
        c.ok(&[b"SAVE"]);
        // Not saved: lost with the kill, as in Redis without AOF.
        c.ok(&[b"SET", b"unsaved", b"x"]);
    }
    assert!(dir.join("basalt.snapshot").exists());
    let conf = tmp.path().join("basalt.conf");
    std::fs::write(&conf, "appendonly no\n").unwrap();
    let out = tmp.path().join("x.rdb");
    rdb_ok(&[
        "export",
        "--data-dir",
        p(&dir),
        "--server-config",
        p(&conf),
        "-o",
        p(&out),
        "-q",
    ]);
    let keys = all_keys(&out);
    let names: Vec<_> = keys.keys().map(|(db, k)| (*db, k.clone())).collect();
    assert_eq!(
        names,
        vec![(0, b"a".to_vec()), (0, b"l".to_vec()), (2, b"s".to_vec())]
    );
    assert_eq!(
        keys[&(0, b"l".to_vec())].0,
        Value::List(vec![b"x".to_vec(), b"y".to_vec()])
    );
}
