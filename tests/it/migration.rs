//! Moving data between Redis and Basalt: DUMP/RESTORE both ways, and
//! importing a Redis dump.rdb at first start.

use crate::support::{RedisServer, TestServer};

#[test]
fn restore_accepts_redis_dump_payloads_and_redis_accepts_ours() {
    if !RedisServer::available() {
        return;
    }
    let r = RedisServer::start(&[]);
    let b = TestServer::start(&[]);
    let (mut rc, mut bc) = (r.raw(), b.raw());
    let values: [&[u8]; 4] = [b"hello", b"12345", b"-9223372036854775808", &[b'z'; 5000]];
    for (i, v) in values.iter().enumerate() {
        let k = format!("k{i}");
        rc.cmd(&[b"SET", k.as_bytes(), v]);
        let payload = rc.cmd(&[b"DUMP", k.as_bytes()]);
        let body =
            &payload[payload.iter().position(|&c| c == b'\n').unwrap() + 1..payload.len() - 2];
        assert_eq!(bc.cmd(&[b"RESTORE", k.as_bytes(), b"0", body]), b"+OK\r\n");
        assert_eq!(
            bc.cmd(&[b"GET", k.as_bytes()]),
            rc.cmd(&[b"GET", k.as_bytes()])
        );
        // And back: Basalt's DUMP restores into Redis.
        let ours = bc.cmd(&[b"DUMP", k.as_bytes()]);
        let body = &ours[ours.iter().position(|&c| c == b'\n').unwrap() + 1..ours.len() - 2];
        let k2 = format!("back{i}");
        assert_eq!(rc.cmd(&[b"RESTORE", k2.as_bytes(), b"0", body]), b"+OK\r\n");
        assert_eq!(
            rc.cmd(&[b"GET", k2.as_bytes()]),
            bc.cmd(&[b"GET", k.as_bytes()])
        );
    }
    // Errors as Redis words them.
    assert_eq!(
        bc.cmd(&[b"RESTORE", b"k0", b"0", b"xx"]),
        b"-BUSYKEY Target key name already exists.\r\n"
    );
    assert_eq!(
        bc.cmd(&[b"RESTORE", b"new", b"0", b"garbage-payload"]),
        b"-ERR DUMP payload version or checksum are wrong\r\n"
    );
    assert_eq!(
        bc.cmd(&[b"RESTORE", b"new", b"-1", b"x"]),
        b"-ERR Invalid TTL value, must be >= 0\r\n"
    );
    assert_eq!(bc.cmd(&[b"DUMP", b"missing"]), b"$-1\r\n");
}

#[test]
fn restore_with_ttl_survives_restart() {
    let mut b = TestServer::start(&[]);
    let mut c = b.raw();
    c.cmd_str(&["SET", "src", "value"]);
    let d = c.cmd_str(&["DUMP", "src"]);
    let body = d[d.iter().position(|&x| x == b'\n').unwrap() + 1..d.len() - 2].to_vec();
    assert_eq!(c.cmd(&[b"RESTORE", b"dst", b"100000", &body]), b"+OK\r\n");
    b.restart();
    let mut c = b.raw();
    assert_eq!(c.cmd_str(&["GET", "dst"]), b"$5\r\nvalue\r\n");
    let ttl = String::from_utf8_lossy(&c.cmd_str(&["TTL", "dst"])).to_string();
    assert!(ttl == ":100\r\n" || ttl == ":99\r\n", "{ttl}");
}

#[test]
fn first_start_imports_a_redis_dump() {
    if !RedisServer::available() {
        return;
    }
    let r = RedisServer::start(&[]);
    let mut rc = r.raw();
    rc.cmd_str(&["SET", "s", "v"]);
    rc.cmd_str(&["SET", "n", "42"]);
    rc.cmd_str(&["SET", "t", "ttl", "EX", "1000"]);
    rc.cmd_str(&["SET", "gone", "x", "PX", "1"]);
    rc.cmd_str(&["SELECT", "2"]);
    rc.cmd_str(&["SET", "in2", "yes"]);
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert_eq!(rc.cmd_str(&["SAVE"]), b"+OK\r\n");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(r.dir().join("dump.rdb"), dir.path().join("dump.rdb")).unwrap();
    let mut b = TestServer::start_in(dir.path(), &[]);
    let mut c = b.raw();
    assert_eq!(c.cmd_str(&["GET", "s"]), b"$1\r\nv\r\n");
    assert_eq!(c.cmd_str(&["GET", "n"]), b"$2\r\n42\r\n");
    assert_eq!(c.cmd_str(&["EXISTS", "gone"]), b":0\r\n");
    let ttl = String::from_utf8_lossy(&c.cmd_str(&["TTL", "t"])).to_string();
    assert!(ttl.starts_with(":99") || ttl.starts_with(":1000"), "{ttl}");
    c.cmd_str(&["SELECT", "2"]);
    assert_eq!(c.cmd_str(&["GET", "in2"]), b"$3\r\nyes\r\n");
    // The import was snapshotted into Basalt's own state: a restart does
    // not depend on dump.rdb any more.
    b.stop();
    std::fs::remove_file(dir.path().join("dump.rdb")).unwrap();
    b = TestServer::start_in(dir.path(), &[]);
    assert_eq!(b.raw().cmd_str(&["GET", "s"]), b"$1\r\nv\r\n");
}

#[test]
fn collections_move_both_ways_with_dump_restore() {
    if !RedisServer::available() {
        return;
    }
    let r = RedisServer::start(&[]);
    let b = TestServer::start(&[]);
    let (mut rc, mut bc) = (r.raw(), b.raw());
    rc.cmd_str(&["HSET", "h", "a", "1", "b", "2"]);
    rc.cmd_str(&["RPUSH", "l", "x", "y"]);
    rc.cmd_str(&["SADD", "s", "m1", "m2"]);
    rc.cmd_str(&["ZADD", "z", "1", "a", "2.5", "b"]);
    let body = |reply: &[u8]| {
        reply[reply.iter().position(|&c| c == b'\n').unwrap() + 1..reply.len() - 2].to_vec()
    };
    for k in ["h", "l", "s", "z"] {
        let p = body(&rc.cmd_str(&["DUMP", k]));
        assert_eq!(
            bc.cmd(&[b"RESTORE", k.as_bytes(), b"0", &p]),
            b"+OK\r\n",
            "{k}"
        );
        let back = body(&bc.cmd_str(&["DUMP", k]));
        let k2 = format!("{k}2");
        assert_eq!(
            rc.cmd(&[b"RESTORE", k2.as_bytes(), b"0", &back]),
            b"+OK\r\n",
            "{k}"
        );
    }
    assert_eq!(bc.cmd_str(&["HGET", "h", "b"]), b"$1\r\n2\r\n");
    assert_eq!(
        bc.cmd_str(&["LRANGE", "l", "0", "-1"]),
        rc.cmd_str(&["LRANGE", "l", "0", "-1"])
    );
    assert_eq!(
        bc.cmd_str(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]),
        rc.cmd_str(&["ZRANGE", "z2", "0", "-1", "WITHSCORES"])
    );
    assert_eq!(rc.cmd_str(&["SISMEMBER", "s2", "m2"]), b":1\r\n");
    assert_eq!(rc.cmd_str(&["HGET", "h2", "a"]), b"$1\r\n1\r\n");
}

/// A Valkey cluster node's dump with an unfinished slot import (opcode
/// 243) loads: its keys are served, and the log warns that those slots may
/// be incomplete.
#[test]
fn a_valkey_dump_with_an_unfinished_slot_import_loads_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = b"VALKEY080".to_vec();
    data.extend_from_slice(&[0xF3, 40]);
    data.extend_from_slice(&[b'j'; 40]);
    data.extend_from_slice(&[1, 0x40, 0x64, 0x40, 0xc8]); // slots 100-200
    data.extend_from_slice(&[0xFE, 0, 0, 1, b'k', 1, b'v', 0xFF]);
    let crc = basalt_rdb::crc64::checksum(&data);
    data.extend_from_slice(&crc.to_le_bytes());
    std::fs::write(dir.path().join("dump.rdb"), &data).unwrap();
    let log = dir.path().join("server.log");
    let b = TestServer::start_in(dir.path(), &["--logfile", log.to_str().unwrap()]);
    assert_eq!(b.raw().cmd_str(&["GET", "k"]), b"$1\r\nv\r\n");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("unfinished slot import") && text.contains("slots 100-200"),
        "{text}"
    );
}
