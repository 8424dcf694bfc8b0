//! Streams beyond the differential cases: blocking XREAD / XREADGROUP
//! across connections, consumer groups with several consumers, crash
//! (kill -9) and restart under `appendfsync always`, snapshots, DUMP /
//! RESTORE with a real redis-server, the RDB corpus's streams, and
//! blocked readers whose key is deleted, replaced, moved, swapped,
//! flushed or expired (scenarios compared with redis-server 7.0).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::resp::{encode, Raw};
use crate::support::{RedisServer, TestServer};

fn send(c: &mut Raw, args: &[&str]) {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    c.send(&encode(&a));
}

fn read(c: &mut Raw) -> String {
    String::from_utf8_lossy(&c.read_reply().expect("reply")).into_owned()
}

fn cmd(c: &mut Raw, args: &[&str]) -> String {
    String::from_utf8_lossy(&c.cmd_str(args)).into_owned()
}

fn settle() {
    std::thread::sleep(Duration::from_millis(150));
}

#[test]
fn xread_block_timeout_and_wakeup_across_connections() {
    let s = TestServer::start(&[]);
    let mut c = s.raw();
    let t = Instant::now();
    assert_eq!(
        cmd(&mut c, &["XREAD", "BLOCK", "200", "STREAMS", "s", "$"]),
        "*-1\r\n"
    );
    assert!(t.elapsed() >= Duration::from_millis(190));
    cmd(&mut c, &["HELLO", "3"]);
    assert_eq!(
        cmd(&mut c, &["XREAD", "BLOCK", "50", "STREAMS", "s", "$"]),
        "_\r\n"
    );

    // Three readers block on `$` (two RESP2, one RESP3), one on an older
    // ID of another key as well; one XADD wakes all of them, in order.
    let mut w: Vec<Raw> = (0..3).map(|_| s.raw()).collect();
    cmd(&mut w[2], &["HELLO", "3"]);
    for r in w.iter_mut() {
        send(
            r,
            &["XREAD", "BLOCK", "0", "STREAMS", "other", "s", "$", "$"],
        );
        settle();
    }
    let mut p = s.raw();
    assert_eq!(
        cmd(&mut p, &["XADD", "s", "5-1", "f", "v"]),
        "$3\r\n5-1\r\n"
    );
    let want2 = "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n5-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n";
    let want3 = "%1\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n5-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n";
    assert_eq!(read(&mut w[0]), want2);
    assert_eq!(read(&mut w[1]), want2);
    assert_eq!(read(&mut w[2]), want3);

    // A reader waiting for IDs after 5-1 with COUNT gets only new ones.
    send(
        &mut w[0],
        &["XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", "5-1"],
    );
    settle();
    // An XADD to another key does not wake it.
    cmd(&mut p, &["XADD", "zz", "1-1", "a", "b"]);
    settle();
    cmd(&mut p, &["XADD", "s", "6-0", "g", "w"]);
    assert_eq!(
        read(&mut w[0]),
        "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n6-0\r\n*2\r\n$1\r\ng\r\n$1\r\nw\r\n"
    );
    assert!(cmd(&mut p, &["INFO", "clients"]).contains("blocked_clients:0"));
}

#[test]
fn xreadgroup_block_delivers_each_entry_once_in_arrival_order() {
    let s = TestServer::start(&[]);
    let mut p = s.raw();
    assert_eq!(
        cmd(&mut p, &["XGROUP", "CREATE", "q", "g", "$", "MKSTREAM"]),
        "+OK\r\n"
    );
    let mut a = s.raw();
    let mut b = s.raw();
    send(
        &mut a,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "ca",
            "BLOCK",
            "0",
            "STREAMS",
            "q",
            ">",
        ],
    );
    settle();
    send(
        &mut b,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "cb",
            "BLOCK",
            "0",
            "STREAMS",
            "q",
            ">",
        ],
    );
    settle();
    cmd(&mut p, &["XADD", "q", "1-0", "job", "1"]);
    assert_eq!(
        read(&mut a),
        "*1\r\n*2\r\n$1\r\nq\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$3\r\njob\r\n$1\r\n1\r\n"
    );
    // b is still blocked: the entry went to a.
    settle();
    cmd(&mut p, &["XADD", "q", "2-0", "job", "2"]);
    assert_eq!(
        read(&mut b),
        "*1\r\n*2\r\n$1\r\nq\r\n*1\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$3\r\njob\r\n$1\r\n2\r\n"
    );
    let pending = cmd(&mut p, &["XPENDING", "q", "g"]);
    assert_eq!(
        pending,
        "*4\r\n:2\r\n$3\r\n1-0\r\n$3\r\n2-0\r\n*2\r\n*2\r\n$2\r\nca\r\n$1\r\n1\r\n*2\r\n$2\r\ncb\r\n$1\r\n1\r\n"
    );
    // A destroyed group unblocks its readers with an error.
    send(
        &mut a,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "ca",
            "BLOCK",
            "0",
            "STREAMS",
            "q",
            ">",
        ],
    );
    settle();
    assert_eq!(cmd(&mut p, &["XGROUP", "DESTROY", "q", "g"]), ":1\r\n");
    assert_eq!(
        read(&mut a),
        "-NOGROUP the consumer group this client was blocked on no longer exists\r\n"
    );
    // Deleting the stream unblocks group readers (not plain readers).
    cmd(&mut p, &["XGROUP", "CREATE", "q", "g", "$"]);
    send(
        &mut a,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "ca",
            "BLOCK",
            "0",
            "STREAMS",
            "q",
            ">",
        ],
    );
    send(&mut b, &["XREAD", "BLOCK", "0", "STREAMS", "q", "$"]);
    settle();
    assert_eq!(cmd(&mut p, &["DEL", "q"]), ":1\r\n");
    assert_eq!(
        read(&mut a),
        "-UNBLOCKED the stream key no longer exists\r\n"
    );
    cmd(&mut p, &["XADD", "q", "7-0", "x", "y"]);
    assert_eq!(
        read(&mut b),
        "*1\r\n*2\r\n$1\r\nq\r\n*1\r\n*2\r\n$3\r\n7-0\r\n*2\r\n$1\r\nx\r\n$1\r\ny\r\n"
    );
    // Inside MULTI a blocking group read answers at once.
    cmd(&mut p, &["XGROUP", "CREATE", "q", "h", "$"]);
    cmd(&mut p, &["MULTI"]);
    cmd(
        &mut p,
        &[
            "XREADGROUP",
            "GROUP",
            "h",
            "c",
            "BLOCK",
            "0",
            "STREAMS",
            "q",
            ">",
        ],
    );
    assert_eq!(cmd(&mut p, &["EXEC"]), "*1\r\n*-1\r\n");
}

/// Several consumers, acks and claims; then kill -9 and restart: the
/// group state (last ID, read counter, PELs with owners and delivery
/// counts) is back exactly.
#[test]
fn consumer_group_state_survives_kill9_under_always() {
    let mut s = TestServer::start(&["--appendfsync", "always"]);
    let mut c = s.raw();
    for i in 1..=20 {
        let id = format!("{i}-0");
        let v = i.to_string();
        cmd(&mut c, &["XADD", "jobs", &id, "n", &v]);
    }
    cmd(&mut c, &["XGROUP", "CREATE", "jobs", "workers", "0"]);
    cmd(&mut c, &["XGROUP", "CREATE", "jobs", "audit", "$"]);
    for (cons, n) in [("w1", "5"), ("w2", "5"), ("w3", "4")] {
        let r = cmd(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "workers",
                cons,
                "COUNT",
                n,
                "STREAMS",
                "jobs",
                ">",
            ],
        );
        assert!(r.starts_with("*1\r\n"), "{r}");
    }
    assert_eq!(
        cmd(&mut c, &["XACK", "jobs", "workers", "1-0", "2-0", "6-0"]),
        ":3\r\n"
    );
    // w3 claims two of w1's entries, one with an explicit retry count.
    cmd(
        &mut c,
        &["XCLAIM", "jobs", "workers", "w3", "0", "3-0", "JUSTID"],
    );
    cmd(
        &mut c,
        &[
            "XCLAIM",
            "jobs",
            "workers",
            "w3",
            "0",
            "4-0",
            "RETRYCOUNT",
            "9",
            "JUSTID",
        ],
    );
    cmd(
        &mut c,
        &[
            "XAUTOCLAIM",
            "jobs",
            "workers",
            "w4",
            "0",
            "7-0",
            "COUNT",
            "2",
        ],
    );
    cmd(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "audit",
            "a1",
            "NOACK",
            "STREAMS",
            "jobs",
            ">",
        ],
    );
    cmd(&mut c, &["XADD", "jobs", "21-0", "n", "21"]);
    cmd(&mut c, &["XDEL", "jobs", "20-0"]);
    cmd(
        &mut c,
        &["XGROUP", "CREATECONSUMER", "jobs", "workers", "idle"],
    );
    cmd(&mut c, &["XGROUP", "DELCONSUMER", "jobs", "workers", "w2"]);
    let probe = |c: &mut Raw| {
        let mut out = Vec::new();
        out.push(cmd(c, &["XPENDING", "jobs", "workers"]));
        // IDs, owners and delivery counts (idle times change).
        let ext = c.cmd_str(&["XPENDING", "jobs", "workers", "-", "+", "100"]);
        out.push(strip_idle(&ext));
        out.push(cmd(c, &["XINFO", "GROUPS", "jobs"]));
        out.push(cmd(c, &["XRANGE", "jobs", "-", "+"]));
        out.push(cmd(c, &["XINFO", "STREAM", "jobs"]));
        let w3 = c.cmd_str(&["XPENDING", "jobs", "workers", "-", "+", "100", "w3"]);
        out.push(strip_idle(&w3));
        out
    };
    let before = probe(&mut c);
    s.kill9();
    s.restart();
    let mut c = s.raw();
    let after = probe(&mut c);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a);
    }
    // Delivery times survive too (XCLAIM's TIME in the log): nothing
    // became idle for longer than the test has run.
    let ext = cmd(
        &mut c,
        &[
            "XPENDING", "jobs", "workers", "IDLE", "60000", "-", "+", "100",
        ],
    );
    assert_eq!(ext, "*0\r\n");
}

/// Replaces the idle-time integer (third field) of each XPENDING row.
fn strip_idle(reply: &[u8]) -> String {
    let text = String::from_utf8_lossy(reply).into_owned();
    let lines: Vec<&str> = text.split("\r\n").collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i] == "*4" && i + 5 < lines.len() {
            out.extend_from_slice(&lines[i..i + 5]);
            out.push(":idle");
            out.push(lines[i + 6]);
            i += 7;
        } else {
            out.push(lines[i]);
            i += 1;
        }
    }
    out.join("\r\n")
}

#[test]
fn snapshot_keeps_everything_exactly() {
    let mut s = TestServer::start(&[]);
    let mut c = s.raw();
    cmd(&mut c, &["CONFIG", "SET", "stream-node-max-entries", "7"]);
    for i in 1..=50 {
        let id = format!("{i}-{i}");
        let v = format!("value-{i}");
        if i % 3 == 0 {
            cmd(&mut c, &["XADD", "st", &id, "other", &v]);
        } else {
            cmd(&mut c, &["XADD", "st", &id, "f", &v, "n", "12"]);
        }
    }
    cmd(&mut c, &["XDEL", "st", "10-10", "1-1"]);
    cmd(&mut c, &["XGROUP", "CREATE", "st", "g", "0"]);
    cmd(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "COUNT",
            "5",
            "STREAMS",
            "st",
            ">",
        ],
    );
    cmd(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c2",
            "COUNT",
            "3",
            "STREAMS",
            "st",
            ">",
        ],
    );
    cmd(
        &mut c,
        &[
            "XCLAIM",
            "st",
            "g",
            "c2",
            "0",
            "2-2",
            "TIME",
            "1700000000000",
            "RETRYCOUNT",
            "4",
        ],
    );
    cmd(
        &mut c,
        &["XGROUP", "CREATE", "st", "empty", "$", "ENTRIESREAD", "3"],
    );
    cmd(
        &mut c,
        &[
            "XSETID",
            "st",
            "60-0",
            "ENTRIESADDED",
            "70",
            "MAXDELETEDID",
            "55-0",
        ],
    );
    let full = cmd(&mut c, &["XINFO", "STREAM", "st", "FULL", "COUNT", "0"]);
    let range = cmd(&mut c, &["XREVRANGE", "st", "+", "-"]);
    assert_eq!(cmd(&mut c, &["SAVE"]), "+OK\r\n");
    s.restart();
    let mut c = s.raw();
    assert_eq!(
        cmd(&mut c, &["XINFO", "STREAM", "st", "FULL", "COUNT", "0"]),
        full
    );
    assert_eq!(cmd(&mut c, &["XREVRANGE", "st", "+", "-"]), range);
    assert_eq!(cmd(&mut c, &["TYPE", "st"]), "+stream\r\n");
    assert_eq!(
        cmd(&mut c, &["OBJECT", "ENCODING", "st"]),
        "$6\r\nstream\r\n"
    );
    // COPY and RENAME carry the whole stream.
    cmd(&mut c, &["COPY", "st", "st2"]);
    cmd(&mut c, &["RENAME", "st2", "st3"]);
    assert_eq!(cmd(&mut c, &["XREVRANGE", "st3", "+", "-"]), range);
}

fn bulk_body(reply: &[u8]) -> Vec<u8> {
    let nl = reply.iter().position(|&c| c == b'\n').expect("bulk header");
    reply[nl + 1..reply.len() - 2].to_vec()
}

#[test]
fn dump_restore_streams_both_ways_with_redis() {
    if !RedisServer::available() {
        return;
    }
    let r = RedisServer::start(&[]);
    let b = TestServer::start(&[]);
    let (mut rc, mut bc) = (r.raw(), b.raw());
    for c in [&mut rc, &mut bc] {
        for i in 1..=30 {
            let id = format!("{i}-0");
            cmd(c, &["XADD", "s", &id, "a", "1", "b", &i.to_string()]);
        }
        cmd(c, &["XDEL", "s", "3-0"]);
        cmd(c, &["XGROUP", "CREATE", "s", "g", "0"]);
        cmd(
            c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "COUNT",
                "4",
                "STREAMS",
                "s",
                ">",
            ],
        );
        cmd(
            c,
            &[
                "XCLAIM",
                "s",
                "g",
                "d",
                "0",
                "2-0",
                "TIME",
                "1600000000000",
                "JUSTID",
            ],
        );
    }
    // Redis → Basalt.
    let p = bulk_body(&rc.cmd_str(&["DUMP", "s"]));
    assert_eq!(bc.cmd(&[b"RESTORE", b"fromredis", b"0", &p]), b"+OK\r\n");
    let want = rc.cmd_str(&["XINFO", "STREAM", "s", "FULL"]);
    let got = bc.cmd_str(&["XINFO", "STREAM", "fromredis", "FULL"]);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
    // Basalt → Redis.
    let p = bulk_body(&bc.cmd_str(&["DUMP", "fromredis"]));
    assert_eq!(rc.cmd(&[b"RESTORE", b"back", b"0", &p]), b"+OK\r\n");
    assert_eq!(
        rc.cmd_str(&["XINFO", "STREAM", "back", "FULL"]),
        rc.cmd_str(&["XINFO", "STREAM", "s", "FULL"])
    );
    // Basalt's own stream, built by the same commands, has the same
    // entries and group bookkeeping (times aside).
    assert_eq!(
        bc.cmd_str(&["XRANGE", "s", "-", "+"]),
        rc.cmd_str(&["XRANGE", "s", "-", "+"])
    );
    assert_eq!(
        bc.cmd_str(&["XINFO", "GROUPS", "s"]),
        rc.cmd_str(&["XINFO", "GROUPS", "s"])
    );
}

/// The shared corpus, beside the repository (`../shared/rdb-corpus`).
fn corpus_dir() -> Option<std::path::PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/rdb-corpus");
    p.join("README.md").exists().then_some(p)
}

/// Every stream in the shared RDB corpus (the files redis-server 7.0
/// loads) reads back from Basalt exactly as from redis-server loading the
/// same file: XRANGE and XINFO STREAM FULL (times included, they come
/// from the file).
#[test]
fn rdb_corpus_streams_read_back_equal() {
    if !RedisServer::available() {
        return;
    }
    let Some(dir) = corpus_dir() else {
        eprintln!("rdb corpus not found; skipped");
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.ends_with(".json")
                && !n.contains("valkey")
                && n != "corpus-meta.json"
                && std::fs::read_to_string(p).is_ok_and(|t| t.contains("\"type\": \"stream\""))
        })
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    let mut checked = 0;
    for json in files {
        let rdb = json.with_extension("rdb");
        let rdir = tempfile::tempdir().unwrap();
        std::fs::copy(&rdb, rdir.path().join("dump.rdb")).unwrap();
        let r = RedisServer::start(&["--dir", rdir.path().to_str().unwrap()]);
        eprintln!("corpus file {}", rdb.display());
        let bdir = tempfile::tempdir().unwrap();
        std::fs::copy(&rdb, bdir.path().join("dump.rdb")).unwrap();
        let b = TestServer::start_in(bdir.path(), &[]);
        let (mut rc, mut bc) = (r.raw(), b.raw());
        // Wait for redis to finish loading.
        let deadline = Instant::now() + Duration::from_secs(20);
        while cmd(&mut rc, &["PING"]).starts_with("-LOADING") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        for db in 0..16 {
            let d = db.to_string();
            cmd(&mut rc, &["SELECT", &d]);
            cmd(&mut bc, &["SELECT", &d]);
            let keys = rc.cmd_str(&["KEYS", "*"]);
            let text = String::from_utf8_lossy(&keys).into_owned();
            let names: Vec<&str> = text
                .split("\r\n")
                .skip(1)
                .filter(|l| !l.starts_with('$') && !l.is_empty())
                .collect();
            for k in names {
                if cmd(&mut rc, &["TYPE", k]) != "+stream\r\n" {
                    continue;
                }
                for q in [
                    vec!["XINFO", "STREAM", k, "FULL", "COUNT", "0"],
                    vec!["XRANGE", k, "-", "+"],
                    vec!["XINFO", "GROUPS", k],
                    vec!["XLEN", k],
                ] {
                    let want = cmd(&mut rc, &q);
                    let got = cmd(&mut bc, &q);
                    assert_eq!(got, want, "{} db {db} key {k}: {q:?}", rdb.display());
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} streams checked");
}

/// A group read served by XADD to a blocked client is logged like a
/// synchronous one: after kill -9 the entry is pending for that consumer.
#[test]
fn blocked_group_read_is_in_the_log() {
    let mut s = TestServer::start(&["--appendfsync", "always"]);
    let mut p = s.raw();
    cmd(&mut p, &["XGROUP", "CREATE", "q", "g", "$", "MKSTREAM"]);
    let mut a = s.raw();
    send(
        &mut a,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "waiter",
            "BLOCK",
            "0",
            "STREAMS",
            "q",
            ">",
        ],
    );
    settle();
    cmd(&mut p, &["XADD", "q", "3-0", "k", "v"]);
    assert!(read(&mut a).contains("3-0"));
    let before = cmd(&mut p, &["XPENDING", "q", "g"]);
    let groups = cmd(&mut p, &["XINFO", "GROUPS", "q"]);
    s.kill9();
    s.restart();
    let mut p = s.raw();
    assert_eq!(cmd(&mut p, &["XPENDING", "q", "g"]), before);
    assert_eq!(cmd(&mut p, &["XINFO", "GROUPS", "q"]), groups);
    assert!(before.contains("waiter"), "{before}");
}

// ------------------------------------------------------------------
// Blocked readers when their key changes wholesale. Each scenario runs
// against Basalt and, when installed, redis-server 7.0, and the two
// transcripts must be equal; `want` records what Redis 7.0.15 answers
// each blocked client, so the scenarios also check Basalt alone.

/// The standard blockers: a group reader and a plain reader on stream
/// `s` (entry 1-0, group `g` at `$`).
const GROUP_READER: &[&str] = &[
    "XREADGROUP",
    "GROUP",
    "g",
    "c",
    "BLOCK",
    "0",
    "STREAMS",
    "s",
    ">",
];
const PLAIN_READER: &[&str] = &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"];
const STREAM_SETUP: &[&[&str]] = &[
    &["XADD", "s", "1-0", "f", "v"],
    &["XGROUP", "CREATE", "s", "g", "$"],
];

const UNBLOCKED: &str = "-UNBLOCKED the stream key no longer exists\r\n";
const NOGROUP: &str = "-NOGROUP the consumer group this client was blocked on no longer exists\r\n";
const STAYS: &str = "(blocked)";
const EMPTY_S: &str = "*1\r\n*2\r\n$1\r\ns\r\n*0\r\n";

struct Scene {
    name: &'static str,
    setup: &'static [&'static [&'static str]],
    blockers: &'static [&'static [&'static str]],
    /// Commands on a third connection; `["SLEEP", ms]` waits.
    actions: &'static [&'static [&'static str]],
    /// Each blocker's reply after the actions (or [`STAYS`]).
    want: &'static [&'static str],
    /// Commands whose replies end the transcript.
    after: &'static [&'static [&'static str]],
    /// How long a blocker is given to answer.
    wait_ms: u64,
    resp3: bool,
}

const SCENE: Scene = Scene {
    name: "",
    setup: STREAM_SETUP,
    blockers: &[GROUP_READER, PLAIN_READER],
    actions: &[],
    want: &[],
    after: &[],
    wait_ms: 300,
    resp3: false,
};

fn blocked_count(c: &mut Raw) -> usize {
    let info = cmd(c, &["INFO", "clients"]);
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(usize::MAX)
}

fn wait_blocked(c: &mut Raw, n: usize) {
    let t = Instant::now();
    while blocked_count(c) != n {
        assert!(t.elapsed() < Duration::from_secs(10), "never {n} blocked");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `sc` on a fresh keyspace; returns the transcript (every reply,
/// and each blocker's answer).
fn run_scene(connect: &dyn Fn() -> Raw, sc: &Scene) -> Vec<String> {
    let mut adm = connect();
    wait_blocked(&mut adm, 0);
    let mut t = vec![format!("# {}", sc.name)];
    cmd(&mut adm, &["FLUSHALL"]);
    for c in sc.setup {
        t.push(format!("{c:?} -> {}", cmd(&mut adm, c)));
    }
    let mut bs: Vec<Raw> = Vec::new();
    for b in sc.blockers {
        let mut r = connect();
        if sc.resp3 {
            cmd(&mut r, &["HELLO", "3"]);
        }
        send(&mut r, b);
        bs.push(r);
        wait_blocked(&mut adm, bs.len());
    }
    for c in sc.actions {
        if c[0] == "SLEEP" {
            std::thread::sleep(Duration::from_millis(c[1].parse().unwrap()));
            continue;
        }
        if c[0] == "DUMP+RESTORE" {
            // RESTORE dst 0 <DUMP src> (the payload is binary).
            let payload = bulk_body(&adm.cmd_str(&["DUMP", c[1]]));
            let r = adm.cmd(&[b"RESTORE", c[2].as_bytes(), b"0", &payload]);
            t.push(format!("{c:?} -> {}", String::from_utf8_lossy(&r)));
            continue;
        }
        if c[0] == "DUMP+RESTORE-REPLACE" {
            let payload = bulk_body(&adm.cmd_str(&["DUMP", c[1]]));
            let r = adm.cmd(&[b"RESTORE", c[2].as_bytes(), b"0", &payload, b"REPLACE"]);
            t.push(format!("{c:?} -> {}", String::from_utf8_lossy(&r)));
            continue;
        }
        t.push(format!("{c:?} -> {}", cmd(&mut adm, c)));
    }
    for (i, r) in bs.iter_mut().enumerate() {
        r.s.set_read_timeout(Some(Duration::from_millis(sc.wait_ms)))
            .unwrap();
        let got = r
            .read_reply()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|| STAYS.to_string());
        t.push(format!("blocker {i}: {got}"));
        if let Some(w) = sc.want.get(i) {
            assert_eq!(got, *w, "{}: blocker {i}", sc.name);
        }
    }
    drop(bs);
    for c in sc.after {
        t.push(format!("{c:?} -> {}", cmd(&mut adm, c)));
    }
    t
}

/// Runs the scenes on Basalt and redis-server (in parallel) and compares.
fn run_scenes(scenes: &'static [Scene], extra: &[&str]) {
    let s = TestServer::start(extra);
    let redis = RedisServer::available().then(|| RedisServer::start(&[]));
    let rport = redis.as_ref().map(|r| r.port);
    let theirs = std::thread::spawn(move || {
        rport.map(|p| {
            scenes
                .iter()
                .map(|sc| run_scene(&|| Raw::connect(p), sc))
                .collect::<Vec<_>>()
        })
    });
    let ours: Vec<Vec<String>> = scenes.iter().map(|sc| run_scene(&|| s.raw(), sc)).collect();
    if let Some(theirs) = theirs.join().expect("redis side") {
        for (o, t) in ours.iter().zip(&theirs) {
            assert_eq!(o, t, "Basalt vs redis-server");
        }
    }
}

static STREAM_GONE: &[Scene] = &[
    Scene {
        name: "DEL",
        actions: &[&["DEL", "s"]],
        want: &[UNBLOCKED, STAYS],
        ..SCENE
    },
    Scene {
        name: "UNLINK",
        actions: &[&["UNLINK", "s"]],
        want: &[UNBLOCKED, STAYS],
        ..SCENE
    },
    Scene {
        name: "FLUSHALL",
        actions: &[&["FLUSHALL"]],
        want: &[UNBLOCKED, STAYS],
        ..SCENE
    },
    Scene {
        name: "FLUSHALL ASYNC",
        actions: &[&["FLUSHALL", "ASYNC"]],
        want: &[UNBLOCKED, STAYS],
        ..SCENE
    },
    Scene {
        name: "FLUSHDB",
        actions: &[&["FLUSHDB"]],
        want: &[UNBLOCKED, STAYS],
        ..SCENE
    },
    Scene {
        name: "FLUSHDB of another db",
        actions: &[&["SELECT", "1"], &["FLUSHDB"], &["SELECT", "0"]],
        want: &[STAYS, STAYS],
        ..SCENE
    },
    Scene {
        name: "DEL, then LPUSH the same key",
        actions: &[&["DEL", "s"], &["LPUSH", "s", "x"]],
        want: &[UNBLOCKED, STAYS],
        ..SCENE
    },
    Scene {
        name: "SET over the stream",
        actions: &[&["SET", "s", "x"]],
        want: &[UNBLOCKED, STAYS],
        ..SCENE
    },
    Scene {
        name: "SORT STORE over the stream",
        setup: &[
            &["XADD", "s", "1-0", "f", "v"],
            &["XGROUP", "CREATE", "s", "g", "$"],
            &["RPUSH", "l", "1"],
        ],
        actions: &[&["SORT", "l", "STORE", "s"]],
        want: &[UNBLOCKED, STAYS],
        ..SCENE
    },
    Scene {
        name: "XGROUP DESTROY",
        actions: &[&["XGROUP", "DESTROY", "s", "g"]],
        want: &[NOGROUP, STAYS],
        ..SCENE
    },
    Scene {
        name: "XGROUP DESTROY of another group",
        setup: &[
            &["XADD", "s", "1-0", "f", "v"],
            &["XGROUP", "CREATE", "s", "g", "$"],
            &["XGROUP", "CREATE", "s", "g2", "$"],
        ],
        actions: &[&["XGROUP", "DESTROY", "s", "g2"]],
        want: &[STAYS, STAYS],
        ..SCENE
    },
    Scene {
        name: "DEL, then XADD a new stream",
        actions: &[&["DEL", "s"], &["XADD", "s", "2-0", "a", "b"]],
        want: &[
            UNBLOCKED,
            "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n",
        ],
        ..SCENE
    },
    Scene {
        name: "XTRIM, XSETID and XGROUP SETID wake no one",
        actions: &[
            &["XTRIM", "s", "MAXLEN", "0"],
            &["XSETID", "s", "100-0"],
            &["XGROUP", "SETID", "s", "g", "0"],
        ],
        want: &[STAYS, STAYS],
        ..SCENE
    },
    Scene {
        name: "XADD with MAXLEN 0 answers with no entries",
        actions: &[&["XADD", "s", "MAXLEN", "0", "7-0", "f", "v"]],
        want: &[EMPTY_S, EMPTY_S],
        ..SCENE
    },
    Scene {
        name: "RESTORE REPLACE of the same stream",
        actions: &[&["DUMP+RESTORE-REPLACE", "s", "s"]],
        want: &[STAYS, STAYS],
        ..SCENE
    },
    Scene {
        name: "active expiry",
        actions: &[&["PEXPIRE", "s", "100"]],
        want: &[UNBLOCKED, STAYS],
        wait_ms: 1500,
        ..SCENE
    },
    Scene {
        name: "lazy expiry",
        setup: &[
            &["DEBUG", "SET-ACTIVE-EXPIRE", "0"],
            &["XADD", "s", "1-0", "f", "v"],
            &["XGROUP", "CREATE", "s", "g", "$"],
        ],
        actions: &[&["PEXPIRE", "s", "50"], &["SLEEP", "100"], &["EXISTS", "s"]],
        want: &[UNBLOCKED, STAYS],
        after: &[&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]],
        ..SCENE
    },
    Scene {
        name: "RESP3: DEL",
        actions: &[&["DEL", "s"]],
        want: &[UNBLOCKED, STAYS],
        resp3: true,
        ..SCENE
    },
];

static STREAM_MOVED: &[Scene] = &[
    Scene {
        name: "SWAPDB with an empty db",
        actions: &[&["SWAPDB", "0", "1"]],
        want: &[UNBLOCKED, STAYS],
        ..SCENE
    },
    Scene {
        name: "SWAPDB brings a list",
        setup: &[
            &["XADD", "s", "1-0", "f", "v"],
            &["XGROUP", "CREATE", "s", "g", "$"],
            &["SELECT", "1"],
            &["RPUSH", "s", "x"],
            &["SELECT", "0"],
        ],
        actions: &[&["SWAPDB", "0", "1"]],
        want: &[UNBLOCKED, STAYS],
        ..SCENE
    },
    Scene {
        name: "SWAPDB brings the stream with the group and a new entry",
        setup: &[
            &["XADD", "s", "1-0", "f", "v"],
            &["XGROUP", "CREATE", "s", "g", "$"],
            &["SELECT", "1"],
            &["XADD", "s", "1-0", "f", "v"],
            &["XGROUP", "CREATE", "s", "g", "$"],
            &["XADD", "s", "2-0", "n", "e"],
            &["SELECT", "0"],
        ],
        actions: &[&["SWAPDB", "0", "1"]],
        want: &[
            "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\nn\r\n$1\r\ne\r\n",
            "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\nn\r\n$1\r\ne\r\n",
        ],
        after: &[&["XPENDING", "s", "g"], &["XINFO", "GROUPS", "s"]],
        ..SCENE
    },
    Scene {
        name: "SWAPDB brings a stream without the group",
        setup: &[
            &["XADD", "s", "1-0", "f", "v"],
            &["XGROUP", "CREATE", "s", "g", "$"],
            &["SELECT", "1"],
            &["XADD", "s", "2-0", "n", "e"],
            &["SELECT", "0"],
        ],
        actions: &[&["SWAPDB", "0", "1"]],
        want: &[
            NOGROUP,
            "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\nn\r\n$1\r\ne\r\n",
        ],
        ..SCENE
    },
    Scene {
        name: "SWAPDB brings a stream with nothing new",
        setup: &[
            &["XADD", "s", "1-0", "f", "v"],
            &["XGROUP", "CREATE", "s", "g", "$"],
            &["SELECT", "1"],
            &["XADD", "s", "1-0", "f", "v"],
            &["XGROUP", "CREATE", "s", "g", "$"],
            &["SELECT", "0"],
        ],
        actions: &[&["SWAPDB", "0", "1"]],
        want: &[STAYS, STAYS],
        ..SCENE
    },
    Scene {
        name: "SWAPDB brings a stream whose group has not read 1-0",
        setup: &[
            &["XADD", "s", "1-0", "f", "v"],
            &["XGROUP", "CREATE", "s", "g", "$"],
            &["SELECT", "1"],
            &["XADD", "s", "1-0", "f", "v"],
            &["XGROUP", "CREATE", "s", "g", "0"],
            &["SELECT", "0"],
        ],
        actions: &[&["SWAPDB", "0", "1"]],
        want: &[
            "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
            STAYS,
        ],
        ..SCENE
    },
    Scene {
        name: "SWAPDB brings a stream whose new entry is deleted",
        setup: &[
            &["XADD", "s", "1-0", "f", "v"],
            &["XGROUP", "CREATE", "s", "g", "$"],
            &["SELECT", "1"],
            &["XADD", "s", "5-0", "f", "v"],
            &["XGROUP", "CREATE", "s", "g", "0"],
            &["XDEL", "s", "5-0"],
            &["SELECT", "0"],
        ],
        actions: &[&["SWAPDB", "0", "1"]],
        want: &[EMPTY_S, EMPTY_S],
        ..SCENE
    },
    Scene {
        name: "RESP3: SWAPDB brings a stream without the group",
        setup: &[
            &["XADD", "s", "1-0", "f", "v"],
            &["XGROUP", "CREATE", "s", "g", "$"],
            &["SELECT", "1"],
            &["XADD", "s", "2-0", "n", "e"],
            &["SELECT", "0"],
        ],
        actions: &[&["SWAPDB", "0", "1"]],
        want: &[
            NOGROUP,
            "%1\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\nn\r\n$1\r\ne\r\n",
        ],
        resp3: true,
        ..SCENE
    },
    Scene {
        name: "SWAPDB of two other dbs",
        actions: &[&["SWAPDB", "1", "2"]],
        want: &[STAYS, STAYS],
        ..SCENE
    },
    Scene {
        name: "MOVE to another db",
        actions: &[&["MOVE", "s", "1"]],
        want: &[UNBLOCKED, STAYS],
        ..SCENE
    },
    Scene {
        name: "RENAME away",
        actions: &[&["RENAME", "s", "s2"]],
        want: &[UNBLOCKED, STAYS],
        ..SCENE
    },
    Scene {
        name: "RENAME onto itself",
        actions: &[&["RENAME", "s", "s"]],
        want: &[STAYS, STAYS],
        ..SCENE
    },
    Scene {
        name: "RENAME a stream with the group onto it",
        setup: &[
            &["XADD", "s", "1-0", "f", "v"],
            &["XGROUP", "CREATE", "s", "g", "$"],
            &["XADD", "t", "1-0", "f", "v"],
            &["XGROUP", "CREATE", "t", "g", "$"],
            &["XADD", "t", "3-0", "n", "e"],
        ],
        actions: &[&["RENAME", "t", "s"]],
        want: &[
            "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n3-0\r\n*2\r\n$1\r\nn\r\n$1\r\ne\r\n",
            "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n3-0\r\n*2\r\n$1\r\nn\r\n$1\r\ne\r\n",
        ],
        ..SCENE
    },
    Scene {
        name: "RENAME a stream without the group onto it",
        setup: &[
            &["XADD", "s", "1-0", "f", "v"],
            &["XGROUP", "CREATE", "s", "g", "$"],
            &["XADD", "t", "3-0", "n", "e"],
        ],
        actions: &[&["RENAME", "t", "s"]],
        want: &[
            NOGROUP,
            "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n3-0\r\n*2\r\n$1\r\nn\r\n$1\r\ne\r\n",
        ],
        ..SCENE
    },
    Scene {
        name: "RENAME a list onto it",
        setup: &[
            &["XADD", "s", "1-0", "f", "v"],
            &["XGROUP", "CREATE", "s", "g", "$"],
            &["RPUSH", "t", "x"],
        ],
        actions: &[&["RENAME", "t", "s"]],
        want: &[UNBLOCKED, STAYS],
        ..SCENE
    },
    Scene {
        name: "COPY REPLACE a stream with the group onto it",
        setup: &[
            &["XADD", "s", "1-0", "f", "v"],
            &["XGROUP", "CREATE", "s", "g", "$"],
            &["XADD", "t", "1-0", "f", "v"],
            &["XGROUP", "CREATE", "t", "g", "$"],
            &["XADD", "t", "3-0", "n", "e"],
        ],
        actions: &[&["COPY", "t", "s", "REPLACE"]],
        want: &[
            "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n3-0\r\n*2\r\n$1\r\nn\r\n$1\r\ne\r\n",
            "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n3-0\r\n*2\r\n$1\r\nn\r\n$1\r\ne\r\n",
        ],
        ..SCENE
    },
    Scene {
        name: "COPY REPLACE a list onto it",
        setup: &[
            &["XADD", "s", "1-0", "f", "v"],
            &["XGROUP", "CREATE", "s", "g", "$"],
            &["RPUSH", "t", "x"],
        ],
        actions: &[&["COPY", "t", "s", "REPLACE"]],
        want: &[UNBLOCKED, STAYS],
        ..SCENE
    },
];

static STREAM_EXEC: &[Scene] = &[
    Scene {
        name: "MULTI DEL LPUSH EXEC",
        actions: &[&["MULTI"], &["DEL", "s"], &["LPUSH", "s", "x"], &["EXEC"]],
        want: &[UNBLOCKED, STAYS],
        ..SCENE
    },
    Scene {
        name: "MULTI DEL XADD EXEC",
        actions: &[
            &["MULTI"],
            &["DEL", "s"],
            &["XADD", "s", "5-0", "f", "v"],
            &["EXEC"],
        ],
        want: &[
            NOGROUP,
            "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n5-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
        ],
        ..SCENE
    },
    Scene {
        name: "MULTI DEL XADD XGROUP CREATE EXEC",
        actions: &[
            &["MULTI"],
            &["DEL", "s"],
            &["XADD", "s", "5-0", "f", "v"],
            &["XGROUP", "CREATE", "s", "g", "0"],
            &["EXEC"],
        ],
        want: &[
            "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n5-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
            "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n5-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
        ],
        after: &[&["XPENDING", "s", "g"]],
        ..SCENE
    },
    Scene {
        name: "MULTI XADD XDEL EXEC",
        actions: &[
            &["MULTI"],
            &["XADD", "s", "7-0", "f", "v"],
            &["XDEL", "s", "7-0"],
            &["EXEC"],
        ],
        want: &[EMPTY_S, EMPTY_S],
        ..SCENE
    },
    Scene {
        name: "MULTI XGROUP DESTROY CREATE EXEC",
        actions: &[
            &["MULTI"],
            &["XGROUP", "DESTROY", "s", "g"],
            &["XGROUP", "CREATE", "s", "g", "$"],
            &["EXEC"],
        ],
        want: &[STAYS, STAYS],
        ..SCENE
    },
    Scene {
        name: "MULTI XGROUP DESTROY CREATE at 0 EXEC",
        actions: &[
            &["MULTI"],
            &["XGROUP", "DESTROY", "s", "g"],
            &["XGROUP", "CREATE", "s", "g", "0"],
            &["EXEC"],
        ],
        want: &[
            "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
            STAYS,
        ],
        ..SCENE
    },
    // Lists and sorted sets in EXEC, for comparison: served from what
    // the transaction leaves.
    Scene {
        name: "MULTI LPUSH LPOP EXEC",
        setup: &[],
        blockers: &[&["BLPOP", "l", "0"]],
        actions: &[&["MULTI"], &["LPUSH", "l", "a"], &["LPOP", "l"], &["EXEC"]],
        want: &[STAYS],
        ..SCENE
    },
    Scene {
        name: "MULTI LPUSH 2 LPOP EXEC",
        setup: &[],
        blockers: &[&["BLPOP", "l", "0"]],
        actions: &[
            &["MULTI"],
            &["LPUSH", "l", "a", "b"],
            &["LPOP", "l"],
            &["EXEC"],
        ],
        want: &["*2\r\n$1\r\nl\r\n$1\r\na\r\n"],
        after: &[&["EXISTS", "l"]],
        ..SCENE
    },
    Scene {
        name: "MULTI ZADD ZPOPMIN EXEC",
        setup: &[],
        blockers: &[&["BZPOPMIN", "z", "0"]],
        actions: &[
            &["MULTI"],
            &["ZADD", "z", "1", "a"],
            &["ZPOPMIN", "z"],
            &["EXEC"],
        ],
        want: &[STAYS],
        ..SCENE
    },
];

/// Lists and sorted sets that arrive whole under a key clients block on.
static LIST_ARRIVES: &[Scene] = &[
    Scene {
        name: "MOVE a list into the db",
        setup: &[&["SELECT", "1"], &["RPUSH", "l", "x"], &["SELECT", "0"]],
        blockers: &[&["BLPOP", "l", "0"]],
        actions: &[&["SELECT", "1"], &["MOVE", "l", "0"], &["SELECT", "0"]],
        want: &["*2\r\n$1\r\nl\r\n$1\r\nx\r\n"],
        ..SCENE
    },
    Scene {
        name: "COPY a list",
        setup: &[&["RPUSH", "t", "x"]],
        blockers: &[&["BLPOP", "l", "0"]],
        actions: &[&["COPY", "t", "l"]],
        want: &["*2\r\n$1\r\nl\r\n$1\r\nx\r\n"],
        ..SCENE
    },
    Scene {
        name: "COPY a list from another db",
        setup: &[&["SELECT", "1"], &["RPUSH", "t", "x"]],
        blockers: &[&["BLPOP", "l", "0"]],
        actions: &[
            &["SELECT", "1"],
            &["COPY", "t", "l", "DB", "0"],
            &["SELECT", "0"],
        ],
        want: &["*2\r\n$1\r\nl\r\n$1\r\nx\r\n"],
        ..SCENE
    },
    Scene {
        name: "SWAPDB brings a list",
        setup: &[
            &["SELECT", "1"],
            &["RPUSH", "l", "x", "y"],
            &["SELECT", "0"],
        ],
        blockers: &[&["BLPOP", "l", "0"]],
        actions: &[&["SWAPDB", "0", "1"]],
        want: &["*2\r\n$1\r\nl\r\n$1\r\nx\r\n"],
        after: &[&["LRANGE", "l", "0", "-1"]],
        ..SCENE
    },
    Scene {
        name: "SWAPDB brings a sorted set",
        setup: &[&["SELECT", "1"], &["ZADD", "z", "1", "x"], &["SELECT", "0"]],
        blockers: &[&["BZPOPMIN", "z", "0"]],
        actions: &[&["SWAPDB", "0", "1"]],
        want: &["*3\r\n$1\r\nz\r\n$1\r\nx\r\n$1\r\n1\r\n"],
        ..SCENE
    },
    Scene {
        name: "SWAPDB brings a list to BLMOVE",
        setup: &[&["SELECT", "1"], &["RPUSH", "l", "x"], &["SELECT", "0"]],
        blockers: &[&["BLMOVE", "l", "d", "LEFT", "LEFT", "0"]],
        actions: &[&["SWAPDB", "0", "1"]],
        want: &["$1\r\nx\r\n"],
        after: &[&["LRANGE", "d", "0", "-1"]],
        ..SCENE
    },
    Scene {
        name: "RESTORE a list",
        setup: &[&["RPUSH", "t", "x"]],
        blockers: &[&["BLPOP", "l", "0"]],
        actions: &[&["DUMP+RESTORE", "t", "l"]],
        want: &["*2\r\n$1\r\nl\r\n$1\r\nx\r\n"],
        ..SCENE
    },
];

#[test]
fn blocked_stream_readers_when_the_key_goes() {
    run_scenes(STREAM_GONE, &[]);
}

#[test]
fn blocked_stream_readers_across_swapdb_move_rename_copy() {
    run_scenes(STREAM_MOVED, &[]);
}

#[test]
fn blocked_readers_are_served_after_exec_from_what_it_leaves() {
    run_scenes(STREAM_EXEC, &[]);
}

#[test]
fn lists_arriving_whole_serve_blocked_clients() {
    run_scenes(LIST_ARRIVES, &[]);
}

/// Group reads served after the command that changed the key (SWAPDB,
/// EXEC) are logged in the db they were served in: after kill -9 the
/// entries are pending for the waiting consumers.
#[test]
fn group_reads_served_after_swapdb_and_exec_are_in_the_log() {
    let mut s = TestServer::start(&["--appendfsync", "always"]);
    let mut p = s.raw();
    for c in [
        &["XADD", "s", "1-0", "f", "v"][..],
        &["XGROUP", "CREATE", "s", "g", "$"],
        &["SELECT", "1"],
        &["XADD", "s", "1-0", "f", "v"],
        &["XGROUP", "CREATE", "s", "g", "$"],
        &["XADD", "s", "2-0", "n", "e"],
        &["SELECT", "0"],
    ] {
        cmd(&mut p, c);
    }
    let mut a = s.raw();
    send(&mut a, GROUP_READER);
    wait_blocked(&mut p, 1);
    cmd(&mut p, &["SWAPDB", "0", "1"]);
    assert!(read(&mut a).contains("2-0"));

    cmd(&mut p, &["XGROUP", "CREATE", "q", "g", "$", "MKSTREAM"]);
    let mut b = s.raw();
    send(
        &mut b,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "cb",
            "BLOCK",
            "0",
            "STREAMS",
            "q",
            ">",
        ],
    );
    wait_blocked(&mut p, 1);
    cmd(&mut p, &["MULTI"]);
    cmd(&mut p, &["XADD", "q", "5-0", "k", "v"]);
    cmd(&mut p, &["XADD", "q", "6-0", "k", "v"]);
    cmd(&mut p, &["EXEC"]);
    let got = read(&mut b);
    assert!(got.contains("5-0") && got.contains("6-0"), "{got}");

    let before: Vec<String> = [&["XPENDING", "s", "g"][..], &["XPENDING", "q", "g"]]
        .iter()
        .map(|c| cmd(&mut p, c))
        .collect();
    assert!(before[0].contains("2-0") && before[1].contains("cb"));
    s.kill9();
    s.restart();
    let mut p = s.raw();
    let after: Vec<String> = [&["XPENDING", "s", "g"][..], &["XPENDING", "q", "g"]]
        .iter()
        .map(|c| cmd(&mut p, c))
        .collect();
    assert_eq!(after, before);
    cmd(&mut p, &["SELECT", "1"]);
    assert_eq!(
        cmd(&mut p, &["XPENDING", "s", "g"]),
        "*4\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n"
    );
}

/// `XREAD ... STREAMS key +` as Redis 7.4 documents and tests it
/// (tests/unit/type/stream.tcl, "XREAD last element ..."): the last entry,
/// COUNT changing nothing; nil for a missing or empty stream; with BLOCK
/// on a missing stream, the first entry added; XREADGROUP refuses `+`.
/// Redis 7.0 rejects `+` as an invalid ID, so this is not differential.
#[test]
fn xread_plus_reads_the_last_entry_as_redis_7_4() {
    let s = TestServer::start(&[]);
    let mut c = s.raw();
    let last = |k: &str, id: &str, f: &str, v: &str| {
        format!(
            "*1\r\n*2\r\n${}\r\n{k}\r\n*1\r\n*2\r\n${}\r\n{id}\r\n*2\r\n${}\r\n{f}\r\n${}\r\n{v}\r\n",
            k.len(),
            id.len(),
            f.len(),
            v.len()
        )
    };
    for (id, f, v) in [
        ("1-0", "k1", "v1"),
        ("2-0", "k2", "v2"),
        ("3-0", "k3", "v3"),
    ] {
        cmd(&mut c, &["XADD", "le", id, f, v]);
    }
    assert_eq!(
        cmd(&mut c, &["XREAD", "STREAMS", "le", "+"]),
        last("le", "3-0", "k3", "v3")
    );
    // COUNT has no effect: only the last entry comes after the one before.
    assert_eq!(
        cmd(&mut c, &["XREAD", "COUNT", "3", "STREAMS", "le", "+"]),
        last("le", "3-0", "k3", "v3")
    );
    // A non-empty stream answers at once, BLOCK or not.
    assert_eq!(
        cmd(&mut c, &["XREAD", "BLOCK", "1000000", "STREAMS", "le", "+"]),
        last("le", "3-0", "k3", "v3")
    );
    // Sequence numbers at the top of the range.
    cmd(
        &mut c,
        &["XADD", "le", "3-18446744073709551614", "k4", "v4"],
    );
    cmd(
        &mut c,
        &["XADD", "le", "3-18446744073709551615", "k5", "v5"],
    );
    assert_eq!(
        cmd(&mut c, &["XREAD", "STREAMS", "le", "+"]),
        last("le", "3-18446744073709551615", "k5", "v5")
    );
    // The last entry deleted: the one before it (Redis 7.4.2, #13628).
    cmd(&mut c, &["XDEL", "le", "3-18446744073709551615"]);
    assert_eq!(
        cmd(&mut c, &["XREAD", "STREAMS", "le", "+"]),
        last("le", "3-18446744073709551614", "k4", "v4")
    );
    // Several streams: only the non-empty ones, in order.
    cmd(&mut c, &["XADD", "le2", "1-0", "k1", "v4"]);
    cmd(&mut c, &["XADD", "le2", "3-0", "k3", "v6"]);
    assert_eq!(
        cmd(
            &mut c,
            &["XREAD", "STREAMS", "le2", "nokey", "le", "+", "+", "+"]
        ),
        "*2\r\n*2\r\n$3\r\nle2\r\n*1\r\n*2\r\n$3\r\n3-0\r\n*2\r\n$2\r\nk3\r\n$2\r\nv6\r\n\
         *2\r\n$2\r\nle\r\n*1\r\n*2\r\n$22\r\n3-18446744073709551614\r\n*2\r\n$2\r\nk4\r\n$2\r\nv4\r\n"
    );
    // RESP3: a map, as for any XREAD.
    cmd(&mut c, &["HELLO", "3"]);
    assert_eq!(
        cmd(&mut c, &["XREAD", "STREAMS", "le2", "+"]),
        "%1\r\n$3\r\nle2\r\n*1\r\n*2\r\n$3\r\n3-0\r\n*2\r\n$2\r\nk3\r\n$2\r\nv6\r\n"
    );
    cmd(&mut c, &["HELLO", "2"]);

    // Missing, emptied and created-empty streams: nil.
    assert_eq!(cmd(&mut c, &["XREAD", "STREAMS", "nokey", "+"]), "*-1\r\n");
    cmd(&mut c, &["XADD", "gone", "1-0", "k1", "v1"]);
    cmd(&mut c, &["XDEL", "gone", "1-0"]);
    assert_eq!(cmd(&mut c, &["XREAD", "STREAMS", "gone", "+"]), "*-1\r\n");
    cmd(&mut c, &["XGROUP", "CREATE", "mk", "g", "$", "MKSTREAM"]);
    assert_eq!(cmd(&mut c, &["XREAD", "STREAMS", "mk", "+"]), "*-1\r\n");
    assert_eq!(
        cmd(&mut c, &["XREAD", "BLOCK", "50", "STREAMS", "mk", "+"]),
        "*-1\r\n"
    );

    // Blocking on a missing stream: the first entry added serves it.
    let mut w = s.raw();
    send(
        &mut w,
        &["XREAD", "BLOCK", "20000", "STREAMS", "nokey", "+"],
    );
    wait_blocked(&mut c, 1);
    cmd(&mut c, &["XADD", "nokey", "1-0", "k1", "v1"]);
    assert_eq!(read(&mut w), last("nokey", "1-0", "k1", "v1"));
    // On an emptied stream it waits for IDs after the last one generated.
    send(&mut w, &["XREAD", "BLOCK", "20000", "STREAMS", "gone", "+"]);
    wait_blocked(&mut c, 1);
    cmd(&mut c, &["XADD", "gone", "2-0", "k2", "v2"]);
    assert_eq!(read(&mut w), last("gone", "2-0", "k2", "v2"));

    // Errors: XREADGROUP refuses `+` (7.4's text); the type is checked first.
    assert_eq!(
        cmd(
            &mut c,
            &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "mk", "+"]
        ),
        "-ERR The + ID is meaningless in the context of XREADGROUP: you want to read the \
         history of this consumer by specifying a proper ID, or use the > ID to get new \
         messages. The + ID would just return an empty result set.\r\n"
    );
    assert!(cmd(
        &mut c,
        &["XREADGROUP", "GROUP", "nog", "c", "STREAMS", "mk", "+"]
    )
    .starts_with("-NOGROUP No such key 'mk' or consumer group 'nog'"));
    cmd(&mut c, &["SET", "str", "x"]);
    assert!(cmd(&mut c, &["XREAD", "STREAMS", "str", "+"]).starts_with("-WRONGTYPE"));
    // `+` inside MULTI with BLOCK answers at once, as any blocking read.
    cmd(&mut c, &["MULTI"]);
    cmd(&mut c, &["XREAD", "BLOCK", "0", "STREAMS", "mk", "+"]);
    cmd(&mut c, &["XREAD", "BLOCK", "0", "STREAMS", "le2", "+"]);
    assert_eq!(
        cmd(&mut c, &["EXEC"]),
        format!("*2\r\n*-1\r\n{}", last("le2", "3-0", "k3", "v6"))
    );
}

/// Damaged stream DUMP payloads (every truncation and single-byte change,
/// CRC fixed so the damage reaches the decoder) never take the server
/// down: RESTORE answers an error or restores a stream that the stream
/// commands then read, extend, trim and dump without failing.
#[test]
fn damaged_stream_restore_payloads_never_crash_the_server() {
    let s = TestServer::start(&[]);
    let mut c = s.raw();
    // A stream with several nodes, deleted entries, two groups, PELs and
    // consumers, dumped by Basalt; plus Redis 7.0's DUMPs (fuzz seeds).
    cmd(&mut c, &["CONFIG", "SET", "stream-node-max-entries", "4"]);
    for i in 1..=14 {
        let id = format!("{i}-0");
        let v = format!("v{i}");
        cmd(&mut c, &["XADD", "src", &id, "f", &v, "n", "7"]);
    }
    cmd(&mut c, &["XADD", "src", "15-0", "other", "x"]);
    cmd(&mut c, &["XDEL", "src", "3-0", "9-0"]);
    cmd(&mut c, &["XGROUP", "CREATE", "src", "g1", "0"]);
    cmd(&mut c, &["XGROUP", "CREATE", "src", "g2", "$"]);
    cmd(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "a",
            "COUNT",
            "3",
            "STREAMS",
            "src",
            ">",
        ],
    );
    cmd(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "b",
            "COUNT",
            "2",
            "STREAMS",
            "src",
            ">",
        ],
    );
    cmd(&mut c, &["XGROUP", "CREATECONSUMER", "src", "g2", "idle"]);
    let mut payloads = vec![bulk_body(&c.cmd_str(&["DUMP", "src"]))];
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("rdb/fuzz/seeds/restore_payload");
    for name in [
        "redis70-stream-s1",
        "redis70-stream-s2",
        "redis70-stream-s4",
    ] {
        payloads.push(std::fs::read(seeds.join(name)).expect("seed payload"));
    }
    let fix_crc = |p: &mut Vec<u8>| {
        let n = p.len();
        if n >= 10 {
            let crc = basalt_rdb::crc64::checksum(&p[..n - 8]);
            p[n - 8..].copy_from_slice(&crc.to_le_bytes());
        }
    };
    let (mut restored, mut refused) = (0, 0);
    for good in &payloads {
        let n = good.len();
        let mut damaged: Vec<Vec<u8>> = Vec::new();
        // Truncations keep the 10-byte trailer (version + CRC) at the end.
        for cut in (1..n - 10).step_by(3) {
            let mut p = good[..cut].to_vec();
            p.extend_from_slice(&good[n - 10..]);
            damaged.push(p);
        }
        for at in 1..n - 10 {
            for x in [0x01u8, 0x80, 0xff] {
                let mut p = good.clone();
                p[at] ^= x;
                damaged.push(p);
            }
        }
        // Seeded random damage: a few bytes changed, or 8 bytes set to an
        // extreme integer (times, counts, IDs near the limits).
        let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ n as u64;
        let mut next = |m: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % m as u64) as usize
        };
        for _ in 0..400 {
            let mut p = good.clone();
            for _ in 0..1 + next(3) {
                let at = 1 + next(n - 11);
                match next(3) {
                    0 => p[at] ^= 1 + next(255) as u8,
                    k => {
                        let pat: [u8; 8] = if k == 1 {
                            [0xff; 8]
                        } else {
                            [0, 0, 0, 0, 0, 0, 0, 0x80]
                        };
                        for (i, b) in pat.iter().enumerate() {
                            if at + i < n - 10 {
                                p[at + i] = *b;
                            }
                        }
                    }
                }
            }
            damaged.push(p);
        }
        for mut p in damaged {
            fix_crc(&mut p);
            let hex: String = p.iter().map(|b| format!("{b:02x}")).collect();
            c.send(&encode(&[b"RESTORE", b"k", b"0", &p, b"REPLACE"]));
            let r = c
                .read_reply()
                .unwrap_or_else(|| panic!("no reply to RESTORE of {hex}"));
            if r.starts_with(b"-") {
                refused += 1;
                continue;
            }
            assert_eq!(r, b"+OK\r\n");
            restored += 1;
            for q in [
                &["XINFO", "STREAM", "k", "FULL"][..],
                &["XINFO", "GROUPS", "k"],
                &["XRANGE", "k", "-", "+"],
                &["XREVRANGE", "k", "+", "-", "COUNT", "3"],
                &["XLEN", "k"],
                &["XPENDING", "k", "g1", "-", "+", "10"],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g1",
                    "z",
                    "COUNT",
                    "2",
                    "STREAMS",
                    "k",
                    ">",
                ],
                &["XREADGROUP", "GROUP", "g1", "a", "STREAMS", "k", "0"],
                &["XAUTOCLAIM", "k", "g1", "y", "0", "0-0", "COUNT", "5"],
                &["XADD", "k", "*", "f", "v"],
                &["XTRIM", "k", "MAXLEN", "~", "2"],
                &["DUMP", "k"],
                &["XDEL", "k", "1-0", "5-0"],
                &["XTRIM", "k", "MINID", "8"],
                &["XINFO", "CONSUMERS", "k", "g1"],
                &["XPENDING", "k", "g1", "IDLE", "1", "-", "+", "10"],
                &[
                    "XCLAIM",
                    "k",
                    "g1",
                    "x",
                    "0",
                    "1-0",
                    "2-0",
                    "4-0",
                    "RETRYCOUNT",
                    "3",
                ],
                &["XCLAIM", "k", "g1", "x", "1", "5-0", "6-0"],
                &["XACK", "k", "g1", "1-0", "6-0"],
                &["XGROUP", "DELCONSUMER", "k", "g1", "a"],
                &["XGROUP", "SETID", "k", "g1", "0"],
                &["XREADGROUP", "GROUP", "g1", "w", "STREAMS", "k", ">"],
                &["XINFO", "STREAM", "k"],
                &["XADD", "k", "MAXLEN", "1", "*", "f", "v"],
                &["MEMORY", "USAGE", "k"],
                &["COPY", "k", "k2", "REPLACE"],
            ] {
                // Any reply (errors included) is fine; no reply is not.
                send(&mut c, q);
                assert!(c.read_reply().is_some(), "no reply to {q:?} after {hex}");
            }
        }
    }
    assert_eq!(cmd(&mut c, &["PING"]), "+PONG\r\n");
    assert!(
        restored > 0 && refused > 0,
        "{restored} restored, {refused} refused"
    );
}
