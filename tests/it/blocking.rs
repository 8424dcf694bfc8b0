//! Blocking pops across connections: timeouts, serving order, several
//! keys, BLMOVE, a client killed or gone while blocked, keys that change
//! type, and the log after blocked clients were served.

use std::time::{Duration, Instant};

use crate::support::resp::{encode, Raw};
use crate::support::TestServer;

/// Sends a command without reading its reply.
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

/// Lets a just-sent blocking command reach the server and register.
fn settle() {
    std::thread::sleep(Duration::from_millis(150));
}

#[test]
fn timeout_replies_null() {
    let s = TestServer::start(&[]);
    let mut c = s.raw();
    let t = Instant::now();
    assert_eq!(cmd(&mut c, &["BLPOP", "k", "0.2"]), "*-1\r\n");
    assert!(
        t.elapsed() >= Duration::from_millis(190),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(
        cmd(&mut c, &["BLMOVE", "k", "d", "LEFT", "RIGHT", "0.05"]),
        "*-1\r\n"
    );
    assert_eq!(cmd(&mut c, &["BZPOPMIN", "z", "0.05"]), "*-1\r\n");
    cmd(&mut c, &["HELLO", "3"]);
    assert_eq!(cmd(&mut c, &["BRPOP", "k", "0.05"]), "_\r\n");
    assert_eq!(cmd(&mut c, &["BLMPOP", "0.05", "1", "k", "LEFT"]), "_\r\n");
    // The connection still works after a timeout.
    assert_eq!(cmd(&mut c, &["PING"]), "+PONG\r\n");
}

#[test]
fn push_serves_blocked_clients_in_arrival_order() {
    let s = TestServer::start(&[]);
    let mut w: Vec<Raw> = (0..3).map(|_| s.raw()).collect();
    for c in w.iter_mut() {
        send(c, &["BLPOP", "q", "0"]);
        settle();
    }
    let mut p = s.raw();
    assert_eq!(cmd(&mut p, &["RPUSH", "q", "a", "b", "c", "d"]), ":4\r\n");
    assert_eq!(read(&mut w[0]), "*2\r\n$1\r\nq\r\n$1\r\na\r\n");
    assert_eq!(read(&mut w[1]), "*2\r\n$1\r\nq\r\n$1\r\nb\r\n");
    assert_eq!(read(&mut w[2]), "*2\r\n$1\r\nq\r\n$1\r\nc\r\n");
    assert_eq!(
        cmd(&mut p, &["LRANGE", "q", "0", "-1"]),
        "*1\r\n$1\r\nd\r\n"
    );
    // A served client keeps working, pipelined commands included.
    send(&mut w[0], &["BRPOP", "q2", "q", "0"]);
    assert_eq!(read(&mut w[0]), "*2\r\n$1\r\nq\r\n$1\r\nd\r\n");
    assert_eq!(cmd(&mut p, &["EXISTS", "q"]), ":0\r\n");
}

#[test]
fn several_keys_and_variants() {
    let s = TestServer::start(&[]);
    let mut p = s.raw();
    let mut a = s.raw();
    send(&mut a, &["BLPOP", "k1", "k2", "0"]);
    settle();
    cmd(&mut p, &["LPUSH", "k2", "x"]);
    assert_eq!(read(&mut a), "*2\r\n$2\r\nk2\r\n$1\r\nx\r\n");

    send(
        &mut a,
        &["BLMPOP", "0", "2", "m1", "m2", "RIGHT", "COUNT", "2"],
    );
    settle();
    cmd(&mut p, &["RPUSH", "m2", "1", "2", "3"]);
    assert_eq!(
        read(&mut a),
        "*2\r\n$2\r\nm2\r\n*2\r\n$1\r\n3\r\n$1\r\n2\r\n"
    );

    send(&mut a, &["BZPOPMAX", "z", "0"]);
    settle();
    cmd(&mut p, &["ZADD", "z", "1", "a", "2", "b"]);
    assert_eq!(read(&mut a), "*3\r\n$1\r\nz\r\n$1\r\nb\r\n$1\r\n2\r\n");

    send(&mut a, &["BZMPOP", "0", "1", "z2", "MIN", "COUNT", "5"]);
    settle();
    cmd(&mut p, &["ZADD", "z2", "1.5", "m"]);
    assert_eq!(
        read(&mut a),
        "*2\r\n$2\r\nz2\r\n*1\r\n*2\r\n$1\r\nm\r\n$3\r\n1.5\r\n"
    );

    // A STORE into the key also serves.
    send(&mut a, &["BZPOPMIN", "dst", "0"]);
    settle();
    cmd(&mut p, &["ZUNIONSTORE", "dst", "1", "z"]);
    assert_eq!(read(&mut a), "*3\r\n$3\r\ndst\r\n$1\r\na\r\n$1\r\n1\r\n");

    send(&mut a, &["BLMOVE", "src", "dst2", "RIGHT", "LEFT", "0"]);
    settle();
    cmd(&mut p, &["RPUSH", "src", "v1", "v2"]);
    assert_eq!(read(&mut a), "$2\r\nv2\r\n");
    assert_eq!(
        cmd(&mut p, &["LRANGE", "dst2", "0", "-1"]),
        "*1\r\n$2\r\nv2\r\n"
    );
    assert_eq!(
        cmd(&mut p, &["LRANGE", "src", "0", "-1"]),
        "*1\r\n$2\r\nv1\r\n"
    );

    // A BLMOVE into a key another client waits on serves that client too.
    let mut b = s.raw();
    send(&mut b, &["BLPOP", "chain", "0"]);
    settle();
    send(&mut a, &["BRPOPLPUSH", "src", "chain", "0"]);
    assert_eq!(read(&mut a), "$2\r\nv1\r\n");
    assert_eq!(read(&mut b), "*2\r\n$5\r\nchain\r\n$2\r\nv1\r\n");
    assert_eq!(cmd(&mut p, &["EXISTS", "chain", "src"]), ":0\r\n");

    // RENAME of a list onto a key someone waits on serves them.
    send(&mut b, &["BRPOP", "target", "0"]);
    settle();
    cmd(&mut p, &["RPUSH", "tmp", "r1", "r2"]);
    cmd(&mut p, &["RENAME", "tmp", "target"]);
    assert_eq!(read(&mut b), "*2\r\n$6\r\ntarget\r\n$2\r\nr2\r\n");
    assert_eq!(
        cmd(&mut p, &["LRANGE", "target", "0", "-1"]),
        "*1\r\n$2\r\nr1\r\n"
    );
}

#[test]
fn killed_or_gone_clients_pop_nothing() {
    let s = TestServer::start(&[]);
    let mut p = s.raw();
    let mut a = s.raw();
    let id = cmd(&mut a, &["CLIENT", "ID"]);
    let id = id.trim_start_matches(':').trim().to_string();
    send(&mut a, &["BLPOP", "k", "0"]);
    settle();
    assert_eq!(cmd(&mut p, &["CLIENT", "KILL", "ID", &id]), ":1\r\n");
    settle();
    {
        let mut b = s.raw();
        send(&mut b, &["BLPOP", "k", "0"]);
        settle();
    } // b disconnects while blocked
    settle();
    cmd(&mut p, &["RPUSH", "k", "x"]);
    assert_eq!(
        cmd(&mut p, &["LRANGE", "k", "0", "-1"]),
        "*1\r\n$1\r\nx\r\n"
    );
}

#[test]
fn keys_that_change_type() {
    let s = TestServer::start(&[]);
    let mut p = s.raw();
    let mut a = s.raw();
    cmd(&mut p, &["SET", "str", "v"]);
    assert_eq!(
        cmd(&mut a, &["BLPOP", "str", "0"]),
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
    assert_eq!(
        cmd(&mut a, &["BZPOPMIN", "str", "0"]),
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
    // A zset waiter is not served by a list push, and vice versa.
    send(&mut a, &["BZPOPMIN", "k", "0"]);
    settle();
    cmd(&mut p, &["RPUSH", "k", "x"]);
    assert_eq!(cmd(&mut p, &["LLEN", "k"]), ":1\r\n");
    cmd(&mut p, &["DEL", "k"]);
    cmd(&mut p, &["ZADD", "k", "3", "m"]);
    assert_eq!(read(&mut a), "*3\r\n$1\r\nk\r\n$1\r\nm\r\n$1\r\n3\r\n");
}

#[test]
fn served_pops_are_logged() {
    let mut s = TestServer::start(&[]);
    let mut p = s.raw();
    let mut a = s.raw();
    send(&mut a, &["BLPOP", "l", "0"]);
    settle();
    cmd(&mut p, &["RPUSH", "l", "1", "2", "3"]);
    assert_eq!(read(&mut a), "*2\r\n$1\r\nl\r\n$1\r\n1\r\n");
    send(&mut a, &["BZPOPMIN", "z", "0"]);
    settle();
    cmd(&mut p, &["ZADD", "z", "1", "a", "2", "b"]);
    read(&mut a);
    send(&mut a, &["BLMOVE", "e", "l", "LEFT", "LEFT", "0"]);
    settle();
    cmd(&mut p, &["RPUSH", "e", "moved"]);
    read(&mut a);
    assert_eq!(
        cmd(&mut p, &["BLPOP", "l", "0"]),
        "*2\r\n$1\r\nl\r\n$5\r\nmoved\r\n"
    );
    let before = (
        cmd(&mut p, &["LRANGE", "l", "0", "-1"]),
        cmd(&mut p, &["ZRANGE", "z", "0", "-1"]),
        cmd(&mut p, &["EXISTS", "e"]),
    );
    drop(a);
    drop(p);
    s.restart();
    let mut p = s.raw();
    let after = (
        cmd(&mut p, &["LRANGE", "l", "0", "-1"]),
        cmd(&mut p, &["ZRANGE", "z", "0", "-1"]),
        cmd(&mut p, &["EXISTS", "e"]),
    );
    assert_eq!(before, after);
    assert_eq!(after.0, "*2\r\n$1\r\n2\r\n$1\r\n3\r\n");
}

/// CLIENT UNBLOCK against Basalt and redis-server alike: a blocked BLPOP,
/// XREAD BLOCK, BZPOPMIN and WAIT end as on their timeout (TIMEOUT, the
/// default) or with `-UNBLOCKED` (ERROR); the caller gets 1, and 0 for a
/// client that is not blocked. The blocked connection works afterwards.
#[test]
fn client_unblock_ends_a_blocking_command_like_redis() {
    let redis = crate::support::RedisServer::start(&[]);
    let basalt = TestServer::start(&[]);
    let run = |port: u16| -> Vec<String> {
        let mut a = Raw::connect(port);
        let mut b = Raw::connect(port);
        let id = cmd(&mut a, &["CLIENT", "ID"]);
        let id = id.trim_start_matches(':').trim().to_string();
        let mut out = vec![cmd(&mut b, &["CLIENT", "UNBLOCK", &id])];
        let blocking: [&[&str]; 5] = [
            &["BLPOP", "list", "0"],
            &["XREAD", "BLOCK", "0", "STREAMS", "st", "$"],
            &["BZPOPMIN", "z", "0"],
            &["WAIT", "1", "0"],
            &["BLMOVE", "list", "other", "LEFT", "RIGHT", "0"],
        ];
        for how in [None, Some("TIMEOUT"), Some("ERROR")] {
            for args in blocking {
                send(&mut a, args);
                let mut unblock = vec!["CLIENT", "UNBLOCK", id.as_str()];
                unblock.extend(how);
                // Until the command has reached the server and blocked.
                let mut r = cmd(&mut b, &unblock);
                for _ in 0..200 {
                    if r == ":1\r\n" {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                    r = cmd(&mut b, &unblock);
                }
                out.push(r);
                out.push(read(&mut a));
            }
        }
        // Still usable, and no longer blocked.
        out.push(cmd(&mut a, &["PING"]));
        out.push(cmd(&mut b, &["CLIENT", "UNBLOCK", &id, "ERROR"]));
        out
    };
    let want = run(redis.port);
    assert_eq!(want[0], ":0\r\n");
    assert!(want.contains(&"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n".to_string()));
    assert_eq!(run(basalt.port), want);
}

/// A client waiting in WAIT (or WAITAOF) can be killed, and leaving frees
/// its connection; commands pipelined behind the wait run after it.
#[test]
fn wait_ends_when_the_client_is_killed_or_leaves() {
    let s = TestServer::start(&[]);
    let mut admin = s.raw();
    let listed =
        |admin: &mut Raw, id: &str| cmd(admin, &["CLIENT", "LIST"]).contains(&format!("id={id} "));
    let id_of = |c: &mut Raw| {
        cmd(c, &["CLIENT", "ID"])
            .trim_start_matches(':')
            .trim()
            .to_string()
    };

    // Killed while waiting: the connection closes, no reply.
    let mut a = s.raw();
    let id = id_of(&mut a);
    send(&mut a, &["WAIT", "1", "0"]);
    settle();
    // Listed as blocked, as Redis lists it.
    let list = cmd(&mut admin, &["CLIENT", "LIST", "ID", &id]);
    assert!(list.contains(" flags=b "), "{list}");
    assert_eq!(cmd(&mut admin, &["CLIENT", "KILL", "ID", &id]), ":1\r\n");
    assert!(a.read_reply().is_none(), "a killed client gets no reply");
    let t = Instant::now();
    while listed(&mut admin, &id) && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!listed(&mut admin, &id), "killed client still listed");

    // Gone while waiting (WAITAOF too): its slot is freed.
    for args in [&["WAIT", "1", "0"][..], &["WAITAOF", "0", "1", "0"]] {
        let mut b = s.raw();
        let id = id_of(&mut b);
        send(&mut b, args);
        settle();
        assert!(listed(&mut admin, &id));
        drop(b);
        let t = Instant::now();
        while listed(&mut admin, &id) && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !listed(&mut admin, &id),
            "{args:?}: a client that left is still listed"
        );
    }

    // Pipelined behind a WAIT with a timeout: answered after it, in order.
    let mut c = s.raw();
    let mut batch = encode(&[b"WAIT", b"1", b"100"]);
    batch.extend(encode(&[b"PING"]));
    c.send(&batch);
    assert_eq!(read(&mut c), ":0\r\n");
    assert_eq!(read(&mut c), "+PONG\r\n");
}
