//! MIGRATE: Basalt -> redis-server, redis-server -> Basalt, Basalt ->
//! Basalt, and the error cases run from a redis-server source and from a
//! Basalt source against the same target situation, compared.

use crate::support::resp::Raw;
use crate::support::{RedisServer, TestServer};

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn migrate(c: &mut Raw, port: u16, rest: &[&str]) -> String {
    let p = port.to_string();
    let mut args = vec!["MIGRATE", "127.0.0.1", p.as_str()];
    args.extend_from_slice(rest);
    s(&c.cmd_str(&args))
}

fn pttl(c: &mut Raw, key: &str) -> i64 {
    let r = s(&c.cmd_str(&["PTTL", key]));
    r.trim()[1..].parse().unwrap()
}

/// Fills a source with one key of each type (the same on any server).
fn fill(c: &mut Raw) {
    c.cmd_str(&["SET", "str", "hello"]);
    c.cmd_str(&["SET", "ttl", "v", "PX", "100000"]);
    c.cmd_str(&["HSET", "h", "a", "1", "b", "2"]);
    c.cmd_str(&["RPUSH", "l", "x", "y", "z"]);
    c.cmd_str(&["SADD", "s", "m1", "m2"]);
    c.cmd_str(&["ZADD", "z", "1", "a", "2.5", "b"]);
    c.cmd_str(&["XADD", "st", "1-1", "f", "v"]);
    c.cmd_str(&["XGROUP", "CREATE", "st", "g", "0"]);
}

/// What `fill` put there, read back (sets and hashes sorted).
fn contents(c: &mut Raw) -> Vec<String> {
    let mut out = vec![
        s(&c.cmd_str(&["GET", "str"])),
        s(&c.cmd_str(&["GET", "ttl"])),
        s(&c.cmd_str(&["HGET", "h", "a"])),
        s(&c.cmd_str(&["HGET", "h", "b"])),
        s(&c.cmd_str(&["LRANGE", "l", "0", "-1"])),
        s(&c.cmd_str(&["SISMEMBER", "s", "m1"])),
        s(&c.cmd_str(&["SISMEMBER", "s", "m2"])),
        s(&c.cmd_str(&["SCARD", "s"])),
        s(&c.cmd_str(&["ZRANGE", "z", "0", "-1", "WITHSCORES"])),
        s(&c.cmd_str(&["XRANGE", "st", "-", "+"])),
        s(&c.cmd_str(&["XINFO", "GROUPS", "st"])),
    ];
    let t = pttl(c, "ttl");
    assert!(t > 90_000 && t <= 100_000, "pttl {t}");
    out.push("ttl ok".into());
    out
}

const ALL: [&str; 7] = ["str", "ttl", "h", "l", "s", "z", "st"];

#[test]
fn basalt_to_redis_moves_every_type_and_the_deletes_survive_a_restart() {
    if !RedisServer::available() {
        return;
    }
    let r = RedisServer::start(&[]);
    let mut b = TestServer::start(&[]);
    let (mut rc, mut bc) = (r.raw(), b.raw());
    fill(&mut bc);
    let expected = contents(&mut bc);
    // One key, then the rest with KEYS (a missing key among them is
    // skipped).
    assert_eq!(migrate(&mut bc, r.port, &["str", "0", "5000"]), "+OK\r\n");
    let mut rest = vec!["", "0", "5000", "KEYS", "nosuchkey"];
    rest.extend_from_slice(&ALL[1..]);
    assert_eq!(migrate(&mut bc, r.port, &rest), "+OK\r\n");
    assert_eq!(contents(&mut rc), expected);
    assert_eq!(bc.cmd_str(&["DBSIZE"]), b":0\r\n");
    // Nothing left: NOKEY.
    assert_eq!(
        migrate(&mut bc, r.port, &["str", "0", "5000"]),
        "+NOKEY\r\n"
    );

    // COPY keeps the source; REPLACE overwrites the target.
    bc.cmd_str(&["SET", "c", "basalt"]);
    rc.cmd_str(&["SET", "c", "redis"]);
    assert_eq!(
        migrate(&mut bc, r.port, &["c", "0", "5000", "COPY"]),
        "-ERR Target instance replied with error: BUSYKEY Target key name already exists.\r\n"
    );
    assert_eq!(
        migrate(&mut bc, r.port, &["c", "0", "5000", "COPY", "REPLACE"]),
        "+OK\r\n"
    );
    assert_eq!(bc.cmd_str(&["GET", "c"]), b"$6\r\nbasalt\r\n");
    assert_eq!(rc.cmd_str(&["GET", "c"]), b"$6\r\nbasalt\r\n");
    bc.cmd_str(&["SET", "c", "again"]);
    assert_eq!(
        migrate(&mut bc, r.port, &["c", "3", "5000", "REPLACE"]),
        "+OK\r\n"
    );
    rc.cmd_str(&["SELECT", "3"]);
    assert_eq!(rc.cmd_str(&["GET", "c"]), b"$5\r\nagain\r\n");
    rc.cmd_str(&["SELECT", "0"]);

    // AUTH / AUTH2 against a target with a password.
    rc.cmd_str(&["CONFIG", "SET", "requirepass", "pw"]);
    bc.cmd_str(&["SET", "a", "1"]);
    assert_eq!(
        migrate(&mut bc, r.port, &["a", "0", "5000", "AUTH", "pw"]),
        "+OK\r\n"
    );
    bc.cmd_str(&["SET", "a2", "2"]);
    assert_eq!(
        migrate(
            &mut bc,
            r.port,
            &["a2", "0", "5000", "AUTH2", "default", "pw"]
        ),
        "+OK\r\n"
    );
    let mut rc2 = r.raw();
    rc2.cmd_str(&["AUTH", "pw"]);
    assert_eq!(
        rc2.cmd_str(&["MGET", "a", "a2"]),
        b"*2\r\n$1\r\n1\r\n$1\r\n2\r\n"
    );

    // The log recorded the deletes: after a restart the keys stay gone,
    // and what COPY kept stays.
    b.restart();
    let mut bc = b.raw();
    assert_eq!(bc.cmd_str(&["DBSIZE"]), b":0\r\n", "keys came back");
    bc.cmd_str(&["SET", "x", "y"]);
    assert_eq!(bc.cmd_str(&["DBSIZE"]), b":1\r\n");
}

#[test]
fn redis_migrates_into_basalt() {
    if !RedisServer::available() {
        return;
    }
    let r = RedisServer::start(&[]);
    let b = TestServer::start(&["--requirepass", "secret"]);
    let (mut rc, mut bc) = (r.raw(), b.raw());
    bc.cmd_str(&["AUTH", "secret"]);
    fill(&mut rc);
    let expected = contents(&mut rc);
    assert_eq!(
        migrate(&mut rc, b.port, &["str", "0", "5000"]),
        "-ERR Target instance replied with error: NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        migrate(&mut rc, b.port, &["str", "0", "5000", "AUTH", "wrong"]),
        "-ERR Target instance replied with error: WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(rc.cmd_str(&["EXISTS", "str"]), b":1\r\n");
    let mut args = vec!["", "0", "5000", "AUTH", "secret", "KEYS"];
    args.extend_from_slice(&ALL);
    assert_eq!(migrate(&mut rc, b.port, &args), "+OK\r\n");
    assert_eq!(contents(&mut bc), expected);
    assert_eq!(rc.cmd_str(&["DBSIZE"]), b":0\r\n");
    // BUSYKEY from Basalt, in Redis's words, then REPLACE.
    rc.cmd_str(&["SET", "str", "new"]);
    assert_eq!(
        migrate(&mut rc, b.port, &["str", "0", "5000", "AUTH", "secret"]),
        "-ERR Target instance replied with error: BUSYKEY Target key name already exists.\r\n"
    );
    assert_eq!(
        migrate(
            &mut rc,
            b.port,
            &["str", "5", "5000", "AUTH2", "default", "secret", "REPLACE"]
        ),
        "+OK\r\n"
    );
    bc.cmd_str(&["SELECT", "5"]);
    assert_eq!(bc.cmd_str(&["GET", "str"]), b"$3\r\nnew\r\n");
    // And back: what Redis sent, Basalt sends on, and Redis reads it as
    // its own.
    bc.cmd_str(&["SELECT", "0"]);
    let mut args = vec!["", "0", "5000", "REPLACE", "KEYS"];
    args.extend_from_slice(&ALL);
    assert_eq!(migrate(&mut bc, r.port, &args), "+OK\r\n");
    assert_eq!(contents(&mut rc), expected);
    assert_eq!(bc.cmd_str(&["DBSIZE"]), b":0\r\n");
}

#[test]
fn basalt_to_basalt_and_to_itself() {
    let a = TestServer::start(&[]);
    let b = TestServer::start(&[]);
    let (mut ac, mut bc) = (a.raw(), b.raw());
    fill(&mut ac);
    let expected = contents(&mut ac);
    let mut args = vec!["", "2", "5000", "KEYS"];
    args.extend_from_slice(&ALL);
    assert_eq!(migrate(&mut ac, b.port, &args), "+OK\r\n");
    bc.cmd_str(&["SELECT", "2"]);
    assert_eq!(contents(&mut bc), expected);
    assert_eq!(ac.cmd_str(&["DBSIZE"]), b":0\r\n");

    // To itself: Redis times out reading (it cannot answer while it runs
    // MIGRATE); Basalt ends the same way, and the key stays.
    ac.cmd_str(&["SET", "k", "v"]);
    for db in ["0", "1"] {
        assert_eq!(
            migrate(&mut ac, a.port, &["k", db, "500", "REPLACE"]),
            "-IOERR error or timeout reading to target instance\r\n"
        );
    }
    // Through another loopback address (the source address is then
    // 127.0.0.1, not the one connected to).
    let two = TestServer::start(&["--bind", "127.0.0.1 127.0.0.2"]);
    let mut tc = two.raw();
    tc.cmd_str(&["SET", "k", "v"]);
    let p = two.port.to_string();
    assert_eq!(
        s(&tc.cmd_str(&["MIGRATE", "127.0.0.2", &p, "k", "0", "500", "REPLACE"])),
        "-IOERR error or timeout reading to target instance\r\n"
    );
    assert_eq!(tc.cmd_str(&["GET", "k"]), b"$1\r\nv\r\n");
    drop(two);
    assert_eq!(ac.cmd_str(&["GET", "k"]), b"$1\r\nv\r\n");

    // A migrated key touches WATCH and fires `del` events.
    let mut watcher = a.raw();
    watcher.cmd_str(&["WATCH", "k"]);
    let mut sub = a.raw();
    ac.cmd_str(&["CONFIG", "SET", "notify-keyspace-events", "Eg"]);
    sub.cmd_str(&["SUBSCRIBE", "__keyevent@0__:del"]);
    assert_eq!(migrate(&mut ac, b.port, &["k", "0", "5000"]), "+OK\r\n");
    let ev = sub.read_reply().unwrap();
    assert!(
        s(&ev).ends_with("$18\r\n__keyevent@0__:del\r\n$1\r\nk\r\n"),
        "{}",
        s(&ev)
    );
    watcher.cmd_str(&["MULTI"]);
    watcher.cmd_str(&["SET", "k", "mine"]);
    assert_eq!(watcher.cmd_str(&["EXEC"]), b"*-1\r\n");
    assert_eq!(ac.cmd_str(&["EXISTS", "k"]), b":0\r\n");
    assert_eq!(bc.cmd_str(&["SELECT", "0"]), b"+OK\r\n");
    assert_eq!(bc.cmd_str(&["GET", "k"]), b"$1\r\nv\r\n");

    // SLOWLOG (and MONITOR) show AUTH / AUTH2 credentials redacted.
    ac.cmd_str(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    migrate(&mut ac, b.port, &["nokey", "0", "100", "AUTH2", "u", "pw1"]);
    migrate(
        &mut ac,
        b.port,
        &["nokey", "0", "100", "AUTH", "pw2", "COPY"],
    );
    let log = s(&ac.cmd_str(&["SLOWLOG", "GET", "3"]));
    ac.cmd_str(&["CONFIG", "SET", "slowlog-log-slower-than", "10000"]);
    assert!(!log.contains("pw1") && !log.contains("pw2"), "{log}");
    assert!(
        log.contains("$5\r\nAUTH2\r\n$10\r\n(redacted)\r\n$10\r\n(redacted)\r\n"),
        "{log}"
    );

    // CLIENT KILL ends a MIGRATE waiting on a target that does not
    // answer (a listener that never replies), before its timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sp = silent.local_addr().unwrap().port();
    let mut victim = a.raw();
    let id = s(&victim.cmd_str(&["CLIENT", "ID"]));
    let id = id.trim().trim_start_matches(':').to_string();
    victim.cmd_str(&["SET", "held", "v"]);
    let t0 = std::time::Instant::now();
    let spp = sp.to_string();
    victim.send(&crate::support::resp::encode(&[
        b"MIGRATE",
        b"127.0.0.1",
        spp.as_bytes(),
        b"held",
        b"0",
        b"60000",
    ]));
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(ac.cmd_str(&["CLIENT", "KILL", "ID", &id]), b":1\r\n");
    assert!(victim.closed());
    assert!(t0.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(ac.cmd_str(&["GET", "held"]), b"$1\r\nv\r\n");
    drop(silent);

    // Inside MULTI Basalt refuses MIGRATE (EXEC holds its shards, and no
    // lock is held across network I/O); Redis runs it. The key stays.
    ac.cmd_str(&["SET", "m", "1"]);
    ac.cmd_str(&["MULTI"]);
    let p = b.port.to_string();
    assert_eq!(
        ac.cmd_str(&["MIGRATE", "127.0.0.1", &p, "m", "0", "1000"]),
        b"+QUEUED\r\n"
    );
    let r = s(&ac.cmd_str(&["EXEC"]));
    assert!(r.starts_with("*1\r\n-ERR MIGRATE"), "{r}");
    assert_eq!(ac.cmd_str(&["EXISTS", "m"]), b":1\r\n");
}

/// Sources: a redis-server and a Basalt with the same keys; the target
/// is set up the same way before each side's run.
struct Pair {
    r: RedisServer,
    b: TestServer,
}

impl Pair {
    /// Runs `setup_target` then `args` (after MIGRATE 127.0.0.1 port)
    /// from each source, with `keys` set on it first; returns both replies
    /// and which of `check` remain on each source.
    fn run(
        &self,
        target: &mut Raw,
        port: u16,
        setup_target: &[&[&str]],
        keys: &[&str],
        args: &[&str],
    ) -> [(String, String); 2] {
        let mut out = Vec::new();
        for src in [self.r.raw(), self.b.raw()] {
            let mut src = src;
            src.cmd_str(&["FLUSHALL"]);
            for k in keys {
                src.cmd_str(&["SET", k, "v"]);
            }
            target.cmd_str(&["FLUSHALL"]);
            // Redis caches its connection to the target (10 s): closing it
            // makes each run start from a new connection, as Basalt's do.
            target.cmd_str(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
            for c in setup_target {
                target.cmd_str(c);
            }
            let reply = migrate(&mut src, port, args);
            let mut left = String::new();
            for k in keys {
                left += &s(&src.cmd_str(&["EXISTS", k]));
            }
            out.push((reply, left));
        }
        [out[0].clone(), out[1].clone()]
    }
}

#[test]
fn errors_and_partial_outcomes_match_redis() {
    if !RedisServer::available() {
        return;
    }
    let pair = Pair {
        r: RedisServer::start(&[]),
        b: TestServer::start(&[]),
    };
    let target = RedisServer::start(&[]);
    let mut t = target.raw();
    let tp = target.port;
    let closed = crate::support::free_port();
    type Case<'a> = (&'a [&'a [&'a str]], &'a [&'a str], &'a [&'a str]);
    let cases: &[Case] = &[
        // BUSYKEY without REPLACE.
        (&[&["SET", "k", "x"]], &["k"], &["k", "0", "2000"]),
        // DB out of range on the target; -1 is not selected at all on a
        // new connection (Redis's "last db" of one), so db 0 it is.
        (&[], &["k"], &["k", "99", "2000"]),
        (&[], &["k"], &["k", "-1", "2000"]),
        (&[], &["k"], &["k", "-2", "2000"]),
        // Nothing listening there.
        (&[], &["k"], &["k", "0", "2000"]),
        // KEYS: present and missing keys, one of them busy on the target:
        // the others move, the busy one stays, the error is reported.
        (
            &[&["SET", "b", "x"]],
            &["a", "b", "c"],
            &["", "0", "2000", "KEYS", "a", "nope", "b", "c"],
        ),
        (
            &[&["SET", "b", "x"]],
            &["a", "b", "c"],
            &["", "0", "2000", "REPLACE", "KEYS", "a", "nope", "b", "c"],
        ),
        // Target wants a password: none, a wrong one, AUTH with none set.
        (
            &[&["CONFIG", "SET", "requirepass", "pw"]],
            &["k", "k2"],
            &["", "0", "2000", "KEYS", "k", "k2"],
        ),
        (
            &[&["CONFIG", "SET", "requirepass", "pw"]],
            &["k"],
            &["k", "0", "2000", "AUTH", "bad"],
        ),
        (
            &[&["CONFIG", "SET", "requirepass", "pw"]],
            &["k"],
            &["k", "0", "2000", "AUTH2", "nobody", "pw"],
        ),
        (
            &[&["CONFIG", "SET", "requirepass", "pw"]],
            &["k"],
            &["k", "0", "0", "AUTH", "pw", "COPY"],
        ),
    ];
    for (i, (setup, keys, args)) in cases.iter().enumerate() {
        let port = if i == 4 { closed } else { tp };
        let [r, b] = pair.run(&mut t, port, setup, keys, args);
        assert_eq!(r, b, "case {i}: MIGRATE {args:?} (redis, basalt)");
        // Unset a password a case set.
        let mut t2 = target.raw();
        t2.cmd_str(&["AUTH", "pw"]);
        t2.cmd_str(&["CONFIG", "SET", "requirepass", ""]);
    }
    // A target that does not answer in time (DEBUG SLEEP): IOERR reading,
    // the key stays on the source (the target restores it later).
    for src in [pair.r.raw(), pair.b.raw()] {
        let mut src = src;
        src.cmd_str(&["SET", "slow", "v"]);
        let mut sleeper = target.raw();
        sleeper.send(&crate::support::resp::encode(&[b"DEBUG", b"SLEEP", b"1"]));
        std::thread::sleep(std::time::Duration::from_millis(100));
        let t0 = std::time::Instant::now();
        assert_eq!(
            migrate(&mut src, tp, &["slow", "0", "300"]),
            "-IOERR error or timeout reading to target instance\r\n"
        );
        assert!(t0.elapsed() < std::time::Duration::from_millis(900));
        assert_eq!(src.cmd_str(&["EXISTS", "slow"]), b":1\r\n");
        sleeper.read_reply();
        t.cmd_str(&["FLUSHALL"]);
    }
}

/// A target that answers with an endless line (no newline) does not make
/// the server buffer it: MIGRATE fails reading, within its timeout, and
/// keeps the key.
#[test]
fn a_target_sending_an_endless_line_fails_the_read() {
    use std::io::{Read, Write};
    let b = TestServer::start(&[]);
    let mut c = b.raw();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let fake = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_write_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut req = [0u8; 4096];
        let _ = sock.read(&mut req);
        // 32 MB without a line end, in 64 KB writes, until the peer goes.
        let chunk = vec![b'+'; 64 * 1024];
        let mut sent = 0usize;
        while sent < 32 << 20 && sock.write_all(&chunk).is_ok() {
            sent += chunk.len();
        }
        sent
    });
    assert_eq!(c.cmd_str(&["SET", "k", "v"]), b"+OK\r\n");
    let r = migrate(&mut c, port, &["k", "0", "5000"]);
    assert_eq!(r, "-IOERR error or timeout reading to target instance\r\n");
    assert_eq!(c.cmd_str(&["EXISTS", "k"]), b":1\r\n");
    let sent = fake.join().unwrap();
    assert!(sent < 32 << 20, "the server read all {sent} bytes");
}
