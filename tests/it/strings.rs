//! String and key semantics through a real client library.

use redis::Commands;

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
