//! String and key semantics through a real client library.

use redis::Commands;

use std::time::Duration;

use crate::support::resp::Raw;
use crate::support::TestServer;

#[test]
fn set_get_ttl_with_redis_client() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    let _: () = c.set("a", "1").unwrap();
    let v: i64 = c.incr("a", 5).unwrap();
    assert_eq!(v, 6);
    let _: () = redis::cmd("SET")
        .arg("s")
        .arg("x")
        .arg("EX")
        .arg(100)
        .query(&mut c)
        .unwrap();
    let ttl: i64 = c.ttl("s").unwrap();
    assert!((99..=100).contains(&ttl));
    let vals: Vec<Option<String>> = c.mget(&["a", "nope", "s"]).unwrap();
    assert_eq!(vals, vec![Some("6".into()), None, Some("x".into())]);
    let n: i64 = c.del(&["a", "s", "nope"]).unwrap();
    assert_eq!(n, 2);
}

#[test]
fn binary_keys_and_values() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    let key: Vec<u8> = vec![0, 255, b'\r', b'\n', 7];
    let val: Vec<u8> = (0..=255u8).collect();
    let _: () = c.set(&key, &val).unwrap();
    let got: Vec<u8> = c.get(&key).unwrap();
    assert_eq!(got, val);
    let _: () = c.set(b"", b"").unwrap();
    let e: bool = c.exists(b"").unwrap();
    assert!(e);
}

#[test]
fn lazy_and_active_expiry() {
    let s = TestServer::start(&["--hz", "50"]);
    let mut c = s.client();
    for i in 0..200 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg("v")
            .arg("PX")
            .arg(50)
            .query(&mut c)
            .unwrap();
    }
    let _: () = c.set("keep", "v").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let v: Option<String> = c.get("k0").unwrap();
    assert_eq!(v, None, "lazy expiry on access");
    // Active expiry removes the rest without access.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
        if n == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "active expiry left {n} keys"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn scan_returns_every_key_while_table_grows() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    for i in 0..1000 {
        let _: () = c.set(format!("base{i}"), i).unwrap();
    }
    let mut cursor: u64 = 0;
    let mut seen = std::collections::HashSet::new();
    let mut round = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(50)
            .query(&mut c)
            .unwrap();
        seen.extend(keys);
        round += 1;
        if round % 3 == 0 {
            for j in 0..300 {
                let _: () = c.set(format!("grow{round}_{j}"), 1).unwrap();
            }
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    for i in 0..1000 {
        assert!(seen.contains(&format!("base{i}")), "base{i} missed");
    }
}

#[test]
fn shutdown_command_and_sigterm_exit_cleanly() {
    let mut s = TestServer::start(&[]);
    let st = s.stop().unwrap();
    assert!(st.success(), "{st:?}");
}

/// INFO keyspace's `expires=` is kept as keys gain, change and lose TTLs
/// (every command that does, the active expiry, RENAME, MOVE, SWAPDB,
/// FLUSHDB), and equals redis-server's after the same commands.
#[test]
fn info_keyspace_counts_keys_with_a_ttl_like_redis() {
    use crate::support::RedisServer;
    let ours = TestServer::start(&[]);
    let theirs = RedisServer::start(&[]);
    let script: &[&[&str]] = &[
        &["SET", "a", "1", "EX", "1000"],
        &["SET", "b", "1"],
        &["EXPIRE", "b", "1000"],
        &["PEXPIRE", "b", "2000000"],
        &["SET", "c", "1", "PX", "5000000"],
        &["SET", "c", "2"],
        &["SET", "d", "1", "EX", "100"],
        &["SET", "d", "2", "KEEPTTL"],
        &["PERSIST", "d"],
        &["GETEX", "d", "EX", "50"],
        &["GETEX", "d", "PERSIST"],
        &["GETEX", "d", "PX", "600000"],
        &["SET", "e", "1", "EX", "100"],
        &["DEL", "e"],
        &["SET", "f", "1", "EX", "100"],
        &["RENAME", "f", "g"],
        &["SET", "h", "1", "EX", "100"],
        &["MOVE", "h", "1"],
        &["HSET", "hh", "x", "1"],
        &["EXPIRE", "hh", "100"],
        &["SET", "gone", "1", "PX", "1"],
        &["SET", "i", "1", "EX", "100"],
        &["EXPIRE", "i", "-1"],
        &["SET", "j", "1"],
        &["EXPIREAT", "j", "1"],
        &["INCR", "counter"],
        &["EXPIRE", "counter", "100"],
        &["INCR", "counter"],
        &["SELECT", "2"],
        &["SET", "x", "1", "EX", "100"],
        &["SET", "y", "1"],
        &["SWAPDB", "2", "3"],
        &["SELECT", "1"],
        &["SET", "z", "1", "EX", "100"],
        &["SELECT", "4"],
        &["SET", "w", "1", "EX", "100"],
        &["FLUSHDB"],
    ];
    let keyspace = |c: &mut Raw| {
        let info = String::from_utf8_lossy(&c.cmd_str(&["INFO", "keyspace"])).to_string();
        info.lines()
            .filter(|l| l.starts_with("db"))
            .map(|l| l.split(",avg_ttl").next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let (mut a, mut b) = (ours.raw(), theirs.raw());
    for cmd in script {
        let (x, y) = (a.cmd_str(cmd), b.cmd_str(cmd));
        assert_eq!(
            String::from_utf8_lossy(&x),
            String::from_utf8_lossy(&y),
            "{cmd:?}"
        );
    }
    // "gone" (1 ms) is removed lazily by the GET or by the active cycle.
    std::thread::sleep(Duration::from_millis(20));
    for c in [&mut a, &mut b] {
        c.cmd_str(&["SELECT", "0"]);
        c.cmd_str(&["GET", "gone"]);
    }
    let want = keyspace(&mut b);
    assert_eq!(keyspace(&mut a), want);
    assert_eq!(
        want,
        [
            "db0:keys=7,expires=6",
            "db1:keys=2,expires=2",
            "db3:keys=2,expires=1"
        ]
    );
}
