//! Hash-field expiration (HEXPIRE and friends) with Redis 7.4's documented
//! semantics; redis-server 7.0 lacks these commands, so the expected
//! replies are written out.

use std::time::Duration;

use crate::support::TestServer;
use crate::types_diff::expect;

#[test]
fn field_ttls_set_read_and_persist() {
    let s = TestServer::start(&[]);
    let mut c = s.raw();
    c.cmd_str(&["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    expect(
        &mut c,
        &["HEXPIRE", "h", "100", "FIELDS", "2", "a", "nope"],
        "*2\r\n:1\r\n:-2\r\n",
    );
    expect(
        &mut c,
        &["HTTL", "h", "FIELDS", "3", "a", "b", "nope"],
        "*3\r\n:100\r\n:-1\r\n:-2\r\n",
    );
    let r = String::from_utf8(c.cmd_str(&["HPTTL", "h", "FIELDS", "1", "a"])).unwrap();
    let ms: i64 = r.trim_start_matches("*1\r\n:").trim().parse().unwrap();
    assert!((99_000..=100_000).contains(&ms), "{ms}");
    // Conditions.
    expect(
        &mut c,
        &["HEXPIRE", "h", "200", "NX", "FIELDS", "2", "a", "b"],
        "*2\r\n:0\r\n:1\r\n",
    );
    expect(
        &mut c,
        &["HEXPIRE", "h", "300", "XX", "FIELDS", "2", "a", "c"],
        "*2\r\n:1\r\n:0\r\n",
    );
    expect(
        &mut c,
        &["HEXPIRE", "h", "50", "GT", "FIELDS", "2", "a", "c"],
        "*2\r\n:0\r\n:0\r\n",
    );
    expect(
        &mut c,
        &["HEXPIRE", "h", "50", "LT", "FIELDS", "2", "a", "c"],
        "*2\r\n:1\r\n:1\r\n",
    );
    expect(
        &mut c,
        &["HEXPIREAT", "h", "4000000000", "FIELDS", "1", "b"],
        "*1\r\n:1\r\n",
    );
    expect(
        &mut c,
        &["HEXPIRETIME", "h", "FIELDS", "1", "b"],
        "*1\r\n:4000000000\r\n",
    );
    expect(
        &mut c,
        &["HPEXPIRETIME", "h", "FIELDS", "1", "b"],
        "*1\r\n:4000000000000\r\n",
    );
    expect(
        &mut c,
        &["HPERSIST", "h", "FIELDS", "3", "b", "b", "nope"],
        "*3\r\n:1\r\n:-1\r\n:-2\r\n",
    );
    expect(&mut c, &["HTTL", "h", "FIELDS", "1", "b"], "*1\r\n:-1\r\n");
    // HSET clears a field's TTL; HINCRBY keeps it.
    c.cmd_str(&["HSET", "h", "a", "x"]);
    expect(&mut c, &["HTTL", "h", "FIELDS", "1", "a"], "*1\r\n:-1\r\n");
    c.cmd_str(&["HSET", "h", "n", "1"]);
    c.cmd_str(&["HEXPIRE", "h", "100", "FIELDS", "1", "n"]);
    c.cmd_str(&["HINCRBY", "h", "n", "5"]);
    expect(&mut c, &["HTTL", "h", "FIELDS", "1", "n"], "*1\r\n:100\r\n");
    // A deadline in the past deletes the field at once (code 2).
    expect(
        &mut c,
        &["HEXPIRE", "h", "0", "FIELDS", "1", "c"],
        "*1\r\n:2\r\n",
    );
    expect(&mut c, &["HEXISTS", "h", "c"], ":0\r\n");
    // Missing key: -2 per field.
    expect(
        &mut c,
        &["HEXPIRE", "nokey", "10", "FIELDS", "2", "a", "b"],
        "*2\r\n:-2\r\n:-2\r\n",
    );
    expect(
        &mut c,
        &["HTTL", "nokey", "FIELDS", "1", "a"],
        "*1\r\n:-2\r\n",
    );
    expect(
        &mut c,
        &["HPERSIST", "nokey", "FIELDS", "1", "a"],
        "*1\r\n:-2\r\n",
    );
}

#[test]
fn field_ttl_errors() {
    let s = TestServer::start(&[]);
    let mut c = s.raw();
    c.cmd_str(&["HSET", "h", "a", "1"]);
    c.cmd_str(&["SET", "str", "v"]);
    expect(
        &mut c,
        &["HEXPIRE", "str", "10", "FIELDS", "1", "a"],
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    );
    expect(
        &mut c,
        &["HTTL", "str", "FIELDS", "1", "a"],
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    );
    expect(
        &mut c,
        &["HEXPIRE", "h", "-1", "FIELDS", "1", "a"],
        "-ERR invalid expire time, must be >= 0\r\n",
    );
    expect(
        &mut c,
        &["HEXPIRE", "h", "abc", "FIELDS", "1", "a"],
        "-ERR value is not an integer or out of range\r\n",
    );
    expect(
        &mut c,
        &["HEXPIRE", "h", "99999999999999999", "FIELDS", "1", "a"],
        "-ERR invalid expire time in 'hexpire' command\r\n",
    );
    expect(
        &mut c,
        &["HEXPIRE", "h", "10", "FOO", "1", "a"],
        "-ERR Mandatory argument FIELDS is missing or not at the right position\r\n",
    );
    expect(
        &mut c,
        &["HEXPIRE", "h", "10", "FIELDS", "0", "a"],
        "-ERR Number of fields must be a positive integer\r\n",
    );
    expect(
        &mut c,
        &["HEXPIRE", "h", "10", "FIELDS", "2", "a"],
        "-ERR The `numfields` parameter must match the number of arguments\r\n",
    );
    expect(
        &mut c,
        &["HTTL", "h", "FIELDS", "2", "a"],
        "-ERR The `numfields` parameter must match the number of arguments\r\n",
    );
    expect(
        &mut c,
        &["HTTL", "h", "a", "1", "a"],
        "-ERR Mandatory argument FIELDS is missing or not at the right position\r\n",
    );
    expect(
        &mut c,
        &["HEXPIRE", "h", "10", "FIELDS", "1"],
        "-ERR wrong number of arguments for 'hexpire' command\r\n",
    );
}

#[test]
fn fields_expire_and_the_last_one_takes_the_key() {
    let s = TestServer::start(&[]);
    let mut c = s.raw();
    c.cmd_str(&["HSET", "h", "a", "1", "b", "2"]);
    c.cmd_str(&["HPEXPIRE", "h", "50", "FIELDS", "1", "a"]);
    expect(&mut c, &["HLEN", "h"], ":2\r\n");
    std::thread::sleep(Duration::from_millis(120));
    expect(&mut c, &["HGET", "h", "a"], "$-1\r\n");
    expect(&mut c, &["HGETALL", "h"], "*2\r\n$1\r\nb\r\n$1\r\n2\r\n");
    expect(&mut c, &["HLEN", "h"], ":1\r\n");
    c.cmd_str(&["HPEXPIRE", "h", "50", "FIELDS", "1", "b"]);
    std::thread::sleep(Duration::from_millis(120));
    expect(&mut c, &["HLEN", "h"], ":0\r\n");
    expect(&mut c, &["EXISTS", "h"], ":0\r\n");
}

#[test]
fn field_ttls_survive_restart() {
    let mut s = TestServer::start(&[]);
    let mut c = s.raw();
    c.cmd_str(&[
        "HSET", "h", "keep", "1", "ttl", "2", "gone", "3", "f", "1.5",
    ]);
    c.cmd_str(&["HEXPIREAT", "h", "4000000000", "FIELDS", "2", "ttl", "f"]);
    c.cmd_str(&["HINCRBYFLOAT", "h", "f", "0.25"]);
    c.cmd_str(&["HPEXPIRE", "h", "30", "FIELDS", "1", "gone"]);
    std::thread::sleep(Duration::from_millis(80));
    expect(&mut c, &["HEXISTS", "h", "gone"], ":0\r\n");
    drop(c);
    s.restart();
    let mut c = s.raw();
    expect(
        &mut c,
        &["HMGET", "h", "keep", "ttl", "f", "gone"],
        "*4\r\n$1\r\n1\r\n$1\r\n2\r\n$4\r\n1.75\r\n$-1\r\n",
    );
    expect(&mut c, &["HLEN", "h"], ":3\r\n");
    expect(
        &mut c,
        &[
            "HEXPIRETIME",
            "h",
            "FIELDS",
            "4",
            "keep",
            "ttl",
            "f",
            "gone",
        ],
        "*4\r\n:-1\r\n:4000000000\r\n:4000000000\r\n:-2\r\n",
    );
}

#[test]
fn fields_expire_actively_without_access() {
    let s = TestServer::start(&["--hz", "100"]);
    let mut c = s.raw();
    let mut sub = s.raw();
    c.cmd_str(&["CONFIG", "SET", "notify-keyspace-events", "Egh"]);
    sub.cmd_str(&["SUBSCRIBE", "__keyevent@0__:hexpired", "__keyevent@0__:del"]);
    sub.read_reply().unwrap(); // second subscribe confirmation
    for i in 0..20 {
        let k = format!("h{i}");
        c.cmd_str(&["HSET", &k, "keep", "1", "gone", "2"]);
        c.cmd_str(&["HPEXPIRE", &k, "30", "FIELDS", "1", "gone"]);
    }
    c.cmd_str(&["HSET", "all", "a", "1"]);
    c.cmd_str(&["HPEXPIRE", "all", "30", "FIELDS", "1", "a"]);
    expect(
        &mut c,
        &["OBJECT", "ENCODING", "all"],
        "$10\r\nlistpackex\r\n",
    );
    expect(&mut c, &["DBSIZE"], ":21\r\n");
    // No command touches the hashes: the active cycle must reap the fields
    // and the emptied key, with one hexpired event per hash.
    let mut hexpired = std::collections::HashSet::new();
    let mut deleted = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while (hexpired.len() < 21 || deleted.is_empty()) && std::time::Instant::now() < deadline {
        let msg = String::from_utf8(sub.read_reply().unwrap()).unwrap();
        let key = msg.rsplit("\r\n").nth(1).unwrap().to_string();
        if msg.contains("hexpired") {
            assert!(hexpired.insert(key.clone()), "hexpired twice for {key}");
        } else {
            deleted.push(key);
        }
    }
    assert_eq!(hexpired.len(), 21);
    assert_eq!(deleted, vec!["all".to_string()]);
    expect(&mut c, &["DBSIZE"], ":20\r\n");
    expect(
        &mut c,
        &["HGETALL", "h3"],
        "*2\r\n$4\r\nkeep\r\n$1\r\n1\r\n",
    );
    expect(
        &mut c,
        &["OBJECT", "ENCODING", "h3"],
        "$10\r\nlistpackex\r\n",
    );
}

#[test]
fn listpackex_becomes_hashtable_past_the_listpack_limits() {
    let s = TestServer::start(&["--hash-max-listpack-entries", "4"]);
    let mut c = s.raw();
    c.cmd_str(&["HSET", "h", "a", "1", "b", "2"]);
    expect(&mut c, &["OBJECT", "ENCODING", "h"], "$8\r\nlistpack\r\n");
    c.cmd_str(&["HEXPIRE", "h", "100", "FIELDS", "1", "a"]);
    expect(
        &mut c,
        &["OBJECT", "ENCODING", "h"],
        "$10\r\nlistpackex\r\n",
    );
    c.cmd_str(&["HPERSIST", "h", "FIELDS", "1", "a"]);
    expect(
        &mut c,
        &["OBJECT", "ENCODING", "h"],
        "$10\r\nlistpackex\r\n",
    );
    c.cmd_str(&["HSET", "h", "c", "3", "d", "4"]);
    expect(
        &mut c,
        &["OBJECT", "ENCODING", "h"],
        "$10\r\nlistpackex\r\n",
    );
    c.cmd_str(&["HSET", "h", "e", "5"]);
    expect(&mut c, &["OBJECT", "ENCODING", "h"], "$9\r\nhashtable\r\n");
    // Too long a value also ends listpackex.
    c.cmd_str(&["HSET", "g", "a", "1"]);
    c.cmd_str(&["HEXPIRE", "g", "100", "FIELDS", "1", "a"]);
    c.cmd_str(&["HSET", "g", "b", &"x".repeat(100)]);
    expect(&mut c, &["OBJECT", "ENCODING", "g"], "$9\r\nhashtable\r\n");
}

/// DUMP of a hash with field TTLs gives Redis 7.4's RDB 12 payload (RDB 10
/// cannot hold the TTLs), and RESTORE brings the TTLs back.
#[test]
fn dump_and_restore_keep_field_ttls() {
    let s = TestServer::start(&[]);
    let mut c = s.raw();
    c.cmd_str(&["HSET", "h", "a", "1", "b", "2"]);
    expect(
        &mut c,
        &["HEXPIRE", "h", "500", "FIELDS", "1", "a"],
        "*1\r\n:1\r\n",
    );
    let reply = c.cmd_str(&["DUMP", "h"]);
    assert_eq!(reply[0], b'$', "{}", String::from_utf8_lossy(&reply));
    let start = reply.iter().position(|&b| b == b'\n').unwrap() + 1;
    let payload = &reply[start..reply.len() - 2];
    // [type][value][u16 version][u64 crc]: version 12.
    let v = payload.len() - 10;
    assert_eq!(&payload[v..v + 2], &12u16.to_le_bytes());
    assert_eq!(c.cmd(&[b"RESTORE", b"h2", b"0", payload]), b"+OK\r\n");
    // The same absolute deadline, and none on the other field.
    assert_eq!(
        c.cmd_str(&["HPEXPIRETIME", "h2", "FIELDS", "2", "a", "b"]),
        c.cmd_str(&["HPEXPIRETIME", "h", "FIELDS", "2", "a", "b"])
    );
    expect(&mut c, &["HTTL", "h2", "FIELDS", "1", "b"], "*1\r\n:-1\r\n");
    expect(&mut c, &["HGET", "h2", "b"], "$1\r\n2\r\n");
}
