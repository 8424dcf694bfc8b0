//! Transactions, pub/sub and keyspace notifications across connections
//! and threads: atomicity of EXEC, WATCH races, delivery counts, event
//! streams compared byte for byte with redis-server, a slow subscriber
//! cut off, and a transaction's all-or-nothing survival of kill -9.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::resp::Raw;
use crate::support::{RedisServer, TestServer};

fn conn(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap()
}

/// MULTI INCR c INCR c EXEC from several threads against plain INCRs from
/// others: every EXEC sees two consecutive values (nothing interleaved)
/// and the final count is exact.
#[test]
fn exec_is_atomic_across_threads() {
    let srv = TestServer::start(&["--io-threads", "4"]);
    let port = srv.port;
    let (txn_threads, plain_threads, rounds) = (4, 4, 300);
    let mut hs = Vec::new();
    for _ in 0..txn_threads {
        hs.push(std::thread::spawn(move || {
            let mut c = conn(port);
            for _ in 0..rounds {
                let (a, b, x): (i64, i64, i64) = redis::pipe()
                    .atomic()
                    .incr("c", 1)
                    .incr("c", 1)
                    .incr("other", 1)
                    .query(&mut c)
                    .unwrap();
                assert_eq!(b, a + 1, "another client's INCR ran inside the transaction");
                assert!(x >= 1);
            }
        }));
    }
    for _ in 0..plain_threads {
        hs.push(std::thread::spawn(move || {
            let mut c = conn(port);
            for _ in 0..rounds {
                let _: i64 = redis::cmd("INCR").arg("c").query(&mut c).unwrap();
            }
        }));
    }
    for h in hs {
        h.join().unwrap();
    }
    let mut c = srv.client();
    let total: i64 = redis::cmd("GET").arg("c").query(&mut c).unwrap();
    assert_eq!(
        total,
        (txn_threads * 2 * rounds + plain_threads * rounds) as i64
    );
}

/// A transaction over keys in many shards is seen whole by readers: MSET-
/// like transactions writing the same value to 16 keys never let a
/// concurrent MGET observe a mix.
#[test]
fn exec_is_isolated_from_multi_key_readers() {
    let srv = TestServer::start(&[]);
    let port = srv.port;
    let keys: Vec<String> = (0..16).map(|i| format!("iso:{i}")).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let keys = keys.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut c = conn(port);
            let mut v = 0u64;
            while !stop.load(Ordering::Relaxed) {
                v += 1;
                let mut p = redis::pipe();
                p.atomic();
                for k in &keys {
                    p.set(k, v).ignore();
                }
                let _: () = p.query(&mut c).unwrap();
            }
            v
        })
    };
    let mut c = conn(port);
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut checks = 0;
    while Instant::now() < deadline {
        let vals: Vec<Option<u64>> = redis::cmd("MGET").arg(&keys).query(&mut c).unwrap();
        assert!(
            vals.windows(2).all(|w| w[0] == w[1]),
            "saw a partial transaction: {vals:?}"
        );
        checks += 1;
    }
    stop.store(true, Ordering::Relaxed);
    assert!(writer.join().unwrap() > 0);
    assert!(checks > 0);
}

/// Optimistic locking: many threads increment one counter with WATCH/GET/
/// MULTI/SET/EXEC, retrying on a null EXEC. No update is lost, and the
/// number of successful EXECs equals the final value.
#[test]
fn watch_races_lose_no_update() {
    let srv = TestServer::start(&[]);
    let port = srv.port;
    let aborted = Arc::new(AtomicU64::new(0));
    let (threads, per) = (6, 150);
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let aborted = aborted.clone();
            std::thread::spawn(move || {
                let mut c = conn(port);
                let mut done = 0;
                while done < per {
                    let _: () = redis::cmd("WATCH").arg("w").query(&mut c).unwrap();
                    let v: Option<i64> = redis::cmd("GET").arg("w").query(&mut c).unwrap();
                    let r: Option<(String,)> = redis::pipe()
                        .atomic()
                        .set("w", v.unwrap_or(0) + 1)
                        .query(&mut c)
                        .unwrap();
                    match r {
                        Some(_) => done += 1,
                        None => {
                            aborted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let mut c = srv.client();
    let v: i64 = redis::cmd("GET").arg("w").query(&mut c).unwrap();
    assert_eq!(v, threads * per);
    assert!(
        aborted.load(Ordering::Relaxed) > 0,
        "the race never happened; the test proves nothing"
    );
}

/// A watched key that expires (lazily or by the active cycle) fails EXEC.
#[test]
fn watch_sees_expiry() {
    let srv = TestServer::start(&[]);
    let mut c = srv.client();
    let _: () = redis::cmd("SET")
        .arg("e")
        .arg("v")
        .arg("PX")
        .arg(100)
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("WATCH").arg("e").query(&mut c).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let r: Option<(String,)> = redis::pipe().atomic().set("x", 1).query(&mut c).unwrap();
    assert_eq!(r, None);
    // A key already expired when watched is not a change when removed.
    let _: () = redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg(0)
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("e2")
        .arg("v")
        .arg("PX")
        .arg(1)
        .query(&mut c)
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let _: () = redis::cmd("WATCH").arg("e2").query(&mut c).unwrap();
    let _: Option<String> = redis::cmd("GET").arg("e2").query(&mut c).unwrap();
    let r: Option<(String,)> = redis::pipe().atomic().set("x", 1).query(&mut c).unwrap();
    assert_eq!(r, Some(("OK".to_string(),)));
}

/// Every SET from every thread produces exactly one keyevent message.
#[test]
fn notifications_once_per_event_from_every_thread() {
    let srv = TestServer::start(&["--notify-keyspace-events", "E$", "--io-threads", "4"]);
    let port = srv.port;
    let mut sub = conn(port);
    let mut ps = sub.as_pubsub();
    ps.subscribe("__keyevent@0__:set").unwrap();
    ps.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (threads, per) = (4, 250);
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = conn(port);
                for i in 0..per {
                    let _: () = redis::cmd("SET")
                        .arg(format!("t{t}:{i}"))
                        .arg(i)
                        .query(&mut c)
                        .unwrap();
                }
            })
        })
        .collect();
    let mut seen: HashMap<String, u32> = HashMap::new();
    for _ in 0..threads * per {
        let m = ps.get_message().unwrap();
        assert_eq!(m.get_channel_name(), "__keyevent@0__:set");
        *seen.entry(m.get_payload::<String>().unwrap()).or_default() += 1;
    }
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(seen.len(), threads * per);
    assert!(seen.values().all(|&n| n == 1));
    // Nothing more arrives.
    ps.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(ps.get_message().is_err());
}

/// The `redis` crate's pub/sub API: subscribe, psubscribe, messages with
/// patterns, unsubscribe.
#[test]
fn redis_crate_pubsub_api() {
    let srv = TestServer::start(&[]);
    let mut sub = srv.client();
    let mut pubc = srv.client();
    let mut ps = sub.as_pubsub();
    ps.subscribe("news").unwrap();
    ps.psubscribe("sport.*").unwrap();
    ps.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("hello")
        .query(&mut pubc)
        .unwrap();
    assert_eq!(n, 1);
    let n: i64 = redis::cmd("PUBLISH")
        .arg("sport.tennis")
        .arg("ace")
        .query(&mut pubc)
        .unwrap();
    assert_eq!(n, 1);
    let n: i64 = redis::cmd("PUBLISH")
        .arg("weather")
        .arg("rain")
        .query(&mut pubc)
        .unwrap();
    assert_eq!(n, 0);
    let m = ps.get_message().unwrap();
    assert_eq!(
        (m.get_channel_name(), m.get_payload::<String>().unwrap()),
        ("news", "hello".to_string())
    );
    assert!(!m.from_pattern());
    let m = ps.get_message().unwrap();
    assert_eq!(
        (m.get_channel_name(), m.get_payload::<String>().unwrap()),
        ("sport.tennis", "ace".to_string())
    );
    assert_eq!(m.get_pattern::<String>().unwrap(), "sport.*");
    ps.unsubscribe("news").unwrap();
    ps.punsubscribe("sport.*").unwrap();
    let n: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("again")
        .query(&mut pubc)
        .unwrap();
    assert_eq!(n, 0);
    let numsub: (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("news")
        .query(&mut pubc)
        .unwrap();
    assert_eq!(numsub.1, 0);
}

/// A keyspace-expiry subscriber sees every key of a batch that expires,
/// through the active cycle (nobody touches the keys).
#[test]
fn expiry_subscriber_sees_every_expired_key() {
    let srv = TestServer::start(&["--notify-keyspace-events", "Ex"]);
    let mut sub = srv.client();
    let mut c = srv.client();
    let mut ps = sub.as_pubsub();
    ps.subscribe("__keyevent@0__:expired").unwrap();
    ps.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let n = 500;
    let mut p = redis::pipe();
    for i in 0..n {
        p.cmd("SET")
            .arg(format!("sess:{i}"))
            .arg("x")
            .arg("PX")
            .arg(50 + (i % 50))
            .ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    let mut seen = std::collections::HashSet::new();
    while seen.len() < n {
        let m = ps.get_message().expect("an expired event");
        assert!(
            seen.insert(m.get_payload::<String>().unwrap()),
            "duplicate expired event"
        );
    }
    let size: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(size, 0);
}

/// Sends `script` from one connection while another (RESP2 or RESP3)
/// pattern-subscribes to every keyspace and keyevent channel; returns the
/// subscriber's byte stream up to a sentinel message.
fn event_stream(port: u16, resp3: bool, script: &[Vec<&str>]) -> Vec<Vec<u8>> {
    let mut sub = Raw::connect(port);
    if resp3 {
        sub.cmd_str(&["HELLO", "3"]);
    }
    sub.cmd_str(&["PSUBSCRIBE", "__key*__:*", "end"]);
    sub.read_reply();
    let mut c = Raw::connect(port);
    c.cmd_str(&["FLUSHALL"]);
    c.cmd_str(&["CONFIG", "SET", "notify-keyspace-events", "KEAn"]);
    for cmd in script {
        c.cmd_str(cmd);
    }
    c.cmd_str(&["PUBLISH", "end", "end"]);
    let mut out = Vec::new();
    loop {
        let r = sub.read_reply().expect("event");
        if r.windows(3).any(|w| w == b"end") && r.ends_with(b"$3\r\nend\r\n$3\r\nend\r\n") {
            break;
        }
        out.push(r);
    }
    c.cmd_str(&["CONFIG", "SET", "notify-keyspace-events", ""]);
    out
}

/// The keyspace/keyevent messages of string and generic commands, byte
/// for byte as redis-server 7.0 sends them, in RESP2 and RESP3.
#[test]
fn keyspace_events_match_redis() {
    if !RedisServer::available() {
        eprintln!("redis-server not installed; skipping");
        return;
    }
    let script: Vec<Vec<&str>> = [
        "SET a 1",
        "SET a 2 EX 100",
        "SETEX b 100 v",
        "PSETEX b2 100000 v",
        "SETNX a 3",
        "SETNX c 3",
        "GETSET c 4",
        "MSET m1 1 m2 2",
        "MSETNX m1 1 m3 3",
        "MSETNX m4 4 m5 5",
        "APPEND a x",
        "SETRANGE a 0 zz",
        "INCR n",
        "DECR n",
        "INCRBY n 5",
        "DECRBY n 2",
        "INCRBYFLOAT f 1.5",
        "GET nosuch",
        "GETEX a EX 100",
        "GETEX a PERSIST",
        "GETDEL c",
        "EXPIRE a 100",
        "PEXPIRE a 100000",
        "EXPIREAT a 99999999999",
        "PERSIST a",
        "EXPIRE m1 -1",
        "DEL m2 nosuch m3",
        "UNLINK m4",
        "RENAME a a2",
        "RENAMENX a2 a3",
        "COPY a3 a4",
        "MOVE a4 1",
        "COPY x c2 DB 2",
        "COPY x c2 DB 2 REPLACE",
        "SET x 1",
        "TOUCH x",
        "FLUSHDB",
    ]
    .iter()
    .map(|l| l.split(' ').collect())
    .collect();
    for resp3 in [false, true] {
        let redis = RedisServer::start(&[]);
        let ours = TestServer::start(&[]);
        let want = event_stream(redis.port, resp3, &script);
        let got = event_stream(ours.port, resp3, &script);
        assert!(want.len() > 60, "too few events from redis: {}", want.len());
        let show = |v: &[Vec<u8>]| {
            v.iter()
                .map(|r| String::from_utf8_lossy(r).replace("\r\n", " "))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(show(&got), show(&want), "resp3={resp3}");
    }
}

/// Multi-client pub/sub reply sequences against redis-server: what a
/// subscriber receives from publishers, in both protocols.
#[test]
fn pubsub_streams_match_redis() {
    if !RedisServer::available() {
        eprintln!("redis-server not installed; skipping");
        return;
    }
    fn run(port: u16, resp3: bool) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut s = Raw::connect(port);
        let mut p = Raw::connect(port);
        if resp3 {
            s.cmd_str(&["HELLO", "3"]);
        }
        s.send(b"*4\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\na\r\n");
        for _ in 0..3 {
            out.push(s.read_reply().unwrap());
        }
        out.push(s.cmd_str(&["PSUBSCRIBE", "a*"]));
        out.push(s.cmd_str(&["SSUBSCRIBE", "sa"]));
        out.push(p.cmd_str(&["PUBLISH", "a", "one"]));
        out.push(p.cmd_str(&["PUBLISH", "ab", "two"]));
        out.push(p.cmd_str(&["SPUBLISH", "sa", "three"]));
        out.push(p.cmd_str(&["PUBSUB", "NUMSUB", "a", "b", "c"]));
        out.push(p.cmd_str(&["PUBSUB", "NUMPAT"]));
        let mut ch = String::from_utf8(p.cmd_str(&["PUBSUB", "CHANNELS"])).unwrap();
        ch = ch.replace("$1\r\nb\r\n$1\r\na\r\n", "$1\r\na\r\n$1\r\nb\r\n");
        out.push(ch.into_bytes());
        for _ in 0..4 {
            out.push(s.read_reply().unwrap());
        }
        out.push(s.cmd_str(&["PING"]));
        out.push(s.cmd_str(&["UNSUBSCRIBE", "b"]));
        out.push(s.cmd_str(&["PUNSUBSCRIBE"]));
        out.push(s.cmd_str(&["SUNSUBSCRIBE"]));
        out.push(s.cmd_str(&["UNSUBSCRIBE"]));
        out.push(s.cmd_str(&["PING"]));
        out
    }
    for resp3 in [false, true] {
        let redis = RedisServer::start(&[]);
        let ours = TestServer::start(&[]);
        let want = run(redis.port, resp3);
        let got = run(ours.port, resp3);
        let show = |v: &[Vec<u8>]| {
            v.iter()
                .map(|r| String::from_utf8_lossy(r).replace("\r\n", " "))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(show(&got), show(&want), "resp3={resp3}");
    }
}

/// A subscriber that never reads is disconnected once its queue passes
/// the pubsub hard limit; publishing goes on for everyone else.
#[test]
fn slow_subscriber_is_cut_off() {
    let srv = TestServer::start(&["--client-output-buffer-limit", "pubsub 1mb 512kb 60"]);
    let mut slow = Raw::connect(srv.port);
    slow.cmd_str(&["SUBSCRIBE", "firehose"]);
    let mut p = srv.client();
    let payload = vec![b'x'; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n: i64 = redis::cmd("PUBLISH")
            .arg("firehose")
            .arg(&payload)
            .query(&mut p)
            .unwrap();
        if n == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slow subscriber was never cut off"
        );
    }
    // The connection goes away (and the socket is closed).
    loop {
        let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut p).unwrap();
        if list.lines().count() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{list}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Pipelined bursts of PUBLISH from several connections (on several IO
/// threads) reach every subscriber (RESP2, RESP3, pattern) complete and,
/// per publisher, in order: a subscriber woken once for a round of
/// publishers gets all of their messages, none lost or reordered.
#[test]
fn publish_bursts_arrive_complete_and_in_order() {
    publish_bursts(&["--io-threads", "4"]);
}

/// The same with IO threads that poll and hold subscriber wake-ups back
/// (`busy-poll-us`, `server::hold_wake`): one thread for everyone, and two.
#[test]
fn publish_bursts_arrive_complete_and_in_order_when_polling() {
    publish_bursts(&["--io-threads", "1", "--busy-poll-us", "300"]);
    publish_bursts(&["--io-threads", "2", "--busy-poll-us", "300"]);
}

/// A lone message on a polling IO thread is not held back: it arrives
/// while its publisher waits (the read would time out otherwise).
#[test]
fn single_publish_is_delivered_when_polling() {
    let srv = TestServer::start(&["--io-threads", "1", "--busy-poll-us", "100000"]);
    let mut sub = Raw::connect(srv.port);
    sub.cmd_str(&["SUBSCRIBE", "one"]);
    let mut p = Raw::connect(srv.port);
    for i in 0..5 {
        let msg = format!("m{i}");
        assert_eq!(p.cmd_str(&["PUBLISH", "one", &msg]), b":1\r\n");
        let m = sub.read_reply().expect("the message");
        let want = format!("*3\r\n$7\r\nmessage\r\n$3\r\none\r\n$2\r\n{msg}\r\n");
        assert_eq!(String::from_utf8_lossy(&m), want);
        std::thread::sleep(std::time::Duration::from_millis(20 * i));
    }
}

fn publish_bursts(args: &[&str]) {
    let srv = TestServer::start(args);
    let (publishers, per, chunk) = (4usize, 3000usize, 150usize);
    // (connection, RESP3, pattern)
    let mut subs: Vec<(Raw, bool, bool)> = Vec::new();
    for (resp3, pattern) in [(false, false), (false, false), (true, false), (false, true)] {
        let mut r = Raw::connect(srv.port);
        if resp3 {
            r.cmd_str(&["HELLO", "3"]);
        }
        if pattern {
            r.cmd_str(&["PSUBSCRIBE", "burst*"]);
        } else {
            r.cmd_str(&["SUBSCRIBE", "burst"]);
        }
        subs.push((r, resp3, pattern));
    }
    let readers: Vec<_> = subs
        .into_iter()
        .map(|(mut r, resp3, pattern)| {
            std::thread::spawn(move || {
                let mut next = vec![0usize; publishers];
                for _ in 0..publishers * per {
                    let m = r.read_reply().expect("a message");
                    let head: &[u8] = match (resp3, pattern) {
                        (false, false) => b"*3\r\n$7\r\nmessage\r\n$5\r\nburst\r\n",
                        (true, false) => b">3\r\n$7\r\nmessage\r\n$5\r\nburst\r\n",
                        _ => b"*4\r\n$8\r\npmessage\r\n$6\r\nburst*\r\n$5\r\nburst\r\n",
                    };
                    assert!(m.starts_with(head), "{}", String::from_utf8_lossy(&m));
                    let text = String::from_utf8_lossy(&m[head.len()..]).to_string();
                    let payload = text.split("\r\n").nth(1).unwrap();
                    let (t, i) = payload.split_once(':').unwrap();
                    let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
                    assert_eq!(i, next[t], "publisher {t}: out of order or lost");
                    next[t] += 1;
                }
                next
            })
        })
        .collect();
    let pubs: Vec<_> = (0..publishers)
        .map(|t| {
            let port = srv.port;
            std::thread::spawn(move || {
                let mut r = Raw::connect(port);
                for start in (0..per).step_by(chunk) {
                    let mut batch = Vec::new();
                    for i in start..(start + chunk).min(per) {
                        let msg = format!("{t}:{i}");
                        batch.extend(crate::support::resp::encode(&[
                            b"PUBLISH",
                            b"burst",
                            msg.as_bytes(),
                        ]));
                    }
                    r.send(&batch);
                    for _ in start..(start + chunk).min(per) {
                        assert_eq!(r.read_reply().unwrap(), b":4\r\n");
                    }
                }
            })
        })
        .collect();
    for p in pubs {
        p.join().unwrap();
    }
    for h in readers {
        assert_eq!(h.join().unwrap(), vec![per; publishers]);
    }
}

/// kill -9 during a stream of acknowledged transactions: after restart
/// every transaction is either wholly there or wholly absent, and every
/// acknowledged one is there.
#[test]
fn exec_is_all_or_nothing_after_kill9() {
    let mut srv = TestServer::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let port = srv.port;
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
    let writer = {
        let (acked, stop, keys) = (acked.clone(), stop.clone(), keys.clone());
        std::thread::spawn(move || {
            let mut c = conn(port);
            let mut v = 0u64;
            while !stop.load(Ordering::Relaxed) {
                v += 1;
                let mut p = redis::pipe();
                p.atomic();
                for k in &keys {
                    p.set(k, v).ignore();
                }
                p.incr("count", 1).ignore();
                if p.query::<()>(&mut c).is_err() {
                    return;
                }
                acked.store(v, Ordering::SeqCst);
            }
        })
    };
    while acked.load(Ordering::SeqCst) < 200 {
        std::thread::sleep(Duration::from_millis(5));
    }
    srv.kill9();
    let last_acked = acked.load(Ordering::SeqCst);
    stop.store(true, Ordering::Relaxed);
    let _ = writer.join();
    srv.restart();
    let mut c = srv.client();
    let vals: Vec<Option<u64>> = redis::cmd("MGET").arg(&keys).query(&mut c).unwrap();
    let count: u64 = redis::cmd("GET").arg("count").query(&mut c).unwrap();
    assert!(
        vals.iter().all(|v| *v == Some(count)),
        "torn transaction after restart: {vals:?} count={count}"
    );
    assert!(
        count >= last_acked,
        "acknowledged transaction {last_acked} lost (have {count})"
    );
}

/// Client-side caching across connections, against redis-server: a RESP2
/// client redirecting to a subscriber of `__redis__:invalidate`, a RESP3
/// client told directly, BCAST, OPTIN and NOLOOP.
#[test]
fn tracking_streams_match_redis() {
    if !RedisServer::available() {
        eprintln!("redis-server not installed; skipping");
        return;
    }
    fn id(r: &mut Raw) -> String {
        let b = r.cmd_str(&["CLIENT", "ID"]);
        String::from_utf8_lossy(&b[1..b.len() - 2]).into_owned()
    }
    fn run(port: u16) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut inv = Raw::connect(port);
        let mut a = Raw::connect(port);
        let mut r3 = Raw::connect(port);
        let mut w = Raw::connect(port);
        r3.cmd_str(&["HELLO", "3"]);
        let inv_id = id(&mut inv);
        out.push(inv.cmd_str(&["SUBSCRIBE", "__redis__:invalidate"]));
        out.push(a.cmd_str(&["CLIENT", "TRACKING", "on", "REDIRECT", &inv_id]));
        out.push(r3.cmd_str(&["CLIENT", "TRACKING", "on"]));
        out.push(w.cmd_str(&["MSET", "k1", "a", "k2", "b", "user:1", "u"]));
        out.push(a.cmd_str(&["MGET", "k1", "k2"]));
        out.push(r3.cmd_str(&["GET", "k1"]));
        out.push(w.cmd_str(&["SET", "k1", "x"]));
        out.push(inv.read_reply().unwrap());
        out.push(r3.read_reply().unwrap());
        out.push(w.cmd_str(&["DEL", "k2"]));
        out.push(inv.read_reply().unwrap());
        // Read again after an invalidation: tracked again.
        out.push(r3.cmd_str(&["GET", "k1"]));
        out.push(w.cmd_str(&["EXPIRE", "k1", "0"]));
        out.push(r3.read_reply().unwrap());
        out.push(r3.cmd_str(&["CLIENT", "TRACKING", "off"]));
        out.push(r3.cmd_str(&["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "user:"]));
        out.push(w.cmd_str(&["SET", "user:1", "v"]));
        out.push(r3.read_reply().unwrap());
        out.push(w.cmd_str(&["SET", "other", "v"]));
        // One BCAST message per prefix for everything a command changed,
        // keys sorted and deduplicated.
        out.push(w.cmd_str(&[
            "MSET", "user:9", "a", "user:2", "b", "other", "x", "user:2", "c",
        ]));
        out.push(r3.read_reply().unwrap());
        out.push(w.cmd_str(&["MULTI"]));
        out.push(w.cmd_str(&["SET", "user:3", "1"]));
        out.push(w.cmd_str(&["DEL", "user:9", "user:none"]));
        out.push(w.cmd_str(&["INCR", "user:10"]));
        out.push(w.cmd_str(&["EXEC"]));
        out.push(r3.read_reply().unwrap());
        out.push(r3.cmd_str(&["PING"]));
        // A BCAST client's own writes: the invalidation follows the
        // replies of its pipeline.
        let mut batch = crate::support::resp::encode(&[b"SET", b"user:30", b"v"]);
        batch.extend(crate::support::resp::encode(&[b"GET", b"user:30"]));
        batch.extend(crate::support::resp::encode(&[
            b"MSET", b"user:31", b"a", b"user:30", b"b",
        ]));
        r3.send(&batch);
        for _ in 0..4 {
            out.push(r3.read_reply().unwrap());
        }
        out.push(r3.cmd_str(&["PING"]));
        out.push(r3.cmd_str(&["CLIENT", "TRACKING", "off"]));
        out.push(r3.cmd_str(&[
            "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "user:", "PREFIX", "sess:", "NOLOOP",
        ]));
        out.push(r3.cmd_str(&["MSET", "user:7", "1", "sess:1", "2"]));
        out.push(w.cmd_str(&[
            "MSET", "user:8", "a", "sess:2", "b", "user:7", "c", "x:1", "d",
        ]));
        out.push(r3.read_reply().unwrap());
        out.push(r3.read_reply().unwrap());
        out.push(r3.cmd_str(&["PING"]));
        out.push(r3.cmd_str(&["CLIENT", "TRACKING", "off"]));
        out.push(r3.cmd_str(&["CLIENT", "TRACKING", "on", "OPTIN", "NOLOOP"]));
        out.push(r3.cmd_str(&["GET", "o1"]));
        out.push(r3.cmd_str(&["CLIENT", "CACHING", "yes"]));
        out.push(r3.cmd_str(&["GET", "o2"]));
        out.push(r3.cmd_str(&["SET", "o2", "mine"]));
        out.push(r3.cmd_str(&["GET", "o2"]));
        out.push(w.cmd_str(&["MSET", "o1", "1", "o2", "2"]));
        out.push(r3.cmd_str(&["PING"]));
        out.push(w.cmd_str(&["FLUSHALL"]));
        out.push(inv.read_reply().unwrap());
        out.push(r3.read_reply().unwrap());
        out.push(r3.cmd_str(&["PING"]));
        out
    }
    let redis = RedisServer::start(&[]);
    let ours = TestServer::start(&[]);
    let want = run(redis.port);
    let got = run(ours.port);
    let show = |v: &[Vec<u8>]| {
        v.iter()
            .map(|r| String::from_utf8_lossy(r).replace("\r\n", " "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(show(&got), show(&want));
}

/// MONITOR's feed against redis-server, timestamps and client ports
/// masked: executed commands only (not admin ones, not unknown ones),
/// queued commands when EXEC runs them, AUTH redacted, the db after the
/// command.
#[test]
fn monitor_feed_matches_redis() {
    if !RedisServer::available() {
        eprintln!("redis-server not installed; skipping");
        return;
    }
    fn run(port: u16) -> Vec<String> {
        let mut m = Raw::connect(port);
        let first = m.cmd_str(&["MONITOR"]);
        let mut c = Raw::connect(port);
        for cmd in [
            vec!["SET", "a b", "x\"y\n\x01"],
            vec!["CONFIG", "GET", "maxmemory"],
            vec!["MULTI"],
            vec!["SET", "q", "1"],
            vec!["GET", "q"],
            vec!["EXEC"],
            vec!["AUTH", "secret"],
            vec!["NOSUCH", "x"],
            vec!["GET"],
            vec!["SELECT", "3"],
            vec!["PUBLISH", "ch", "m"],
            vec!["ECHO", "end"],
        ] {
            c.cmd_str(&cmd);
        }
        let mut out = vec![String::from_utf8_lossy(&first).into_owned()];
        loop {
            let r = String::from_utf8_lossy(&m.read_reply().unwrap()).into_owned();
            // "+1700000000.123456 [0 127.0.0.1:40000] ..." -> "+T [0 ADDR] ..."
            let (_, rest) = r.split_once(' ').unwrap();
            let (db, rest) = rest[1..].split_once(' ').unwrap();
            let (_, rest) = rest.split_once(']').unwrap();
            let line = format!("+T [{db} ADDR]{rest}");
            let end = line.contains("\"ECHO\" \"end\"");
            out.push(line);
            if end {
                return out;
            }
        }
    }
    let redis = RedisServer::start(&[]);
    let ours = TestServer::start(&[]);
    assert_eq!(run(ours.port), run(redis.port));
}

/// A slow command lands in SLOWLOG (args, duration, client name) and, with
/// a latency threshold, in LATENCY LATEST/HISTORY.
#[test]
fn slowlog_and_latency_record_slow_commands() {
    let srv = TestServer::start(&["--latency-monitor-threshold", "10"]);
    let mut c = srv.client();
    let _: () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("sleeper")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg("0.03")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("fast")
        .arg("1")
        .query(&mut c)
        .unwrap();
    let log: Vec<(i64, i64, i64, Vec<String>, String, String)> =
        redis::cmd("SLOWLOG").arg("GET").query(&mut c).unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    let (_, _, us, args, _, name) = &log[0];
    assert!(*us >= 30_000, "{us}");
    assert_eq!(args, &["DEBUG", "SLEEP", "0.03"]);
    assert_eq!(name, "sleeper");
    let latest: Vec<(String, i64, i64, i64)> =
        redis::cmd("LATENCY").arg("LATEST").query(&mut c).unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].0, "command");
    assert!(latest[0].2 >= 30);
    let hist: Vec<(i64, i64)> = redis::cmd("LATENCY")
        .arg("HISTORY")
        .arg("command")
        .query(&mut c)
        .unwrap();
    assert_eq!(hist.len(), 1);
    let n: i64 = redis::cmd("LATENCY").arg("RESET").query(&mut c).unwrap();
    assert_eq!(n, 1);
}

/// LATENCY HISTOGRAM and INFO latencystats: per-command calls and a
/// cumulative distribution over power-of-two microsecond buckets, in the
/// same reply shape as redis-server 7.0; CONFIG RESETSTAT clears them.
#[test]
fn latency_histograms_per_command() {
    use std::collections::BTreeMap;
    type Hist = BTreeMap<String, (String, i64, String, BTreeMap<i64, i64>)>;
    let shape = |port: u16| {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}"))
            .unwrap()
            .get_connection()
            .unwrap();
        for i in 0..50 {
            let _: () = redis::cmd("SET").arg(i).arg(i).query(&mut c).unwrap();
        }
        let _: () = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg("0.02")
            .query(&mut c)
            .unwrap();
        let h: Hist = redis::cmd("LATENCY")
            .arg("HISTOGRAM")
            .arg("set")
            .arg("debug")
            .arg("nosuchcommand")
            .query(&mut c)
            .unwrap();
        let info: String = redis::cmd("INFO")
            .arg("latencystats")
            .query(&mut c)
            .unwrap();
        let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
        let after: Hist = redis::cmd("LATENCY")
            .arg("HISTOGRAM")
            .arg("set")
            .query(&mut c)
            .unwrap();
        (h, info, after)
    };
    let check = |(h, info, after): (Hist, String, Hist)| {
        assert_eq!(h.keys().collect::<Vec<_>>(), ["debug", "set"]);
        let (calls_key, calls, buckets_key, buckets) = &h["set"];
        assert_eq!((calls_key.as_str(), *calls), ("calls", 50));
        assert_eq!(buckets_key, "histogram_usec");
        // Cumulative over power-of-two bounds, ending at every call.
        let v: Vec<(i64, i64)> = buckets.iter().map(|(k, n)| (*k, *n)).collect();
        assert!(v.windows(2).all(|w| w[0].1 <= w[1].1), "{v:?}");
        // Bounds double from 1024 ns, named as Redis's HDR histogram does:
        // 1, 2, 4, 8, 16, 33, 66, 132 …
        let bounds: Vec<i64> = (0..40)
            .map(|k| basalt::histogram::usec_name(1024u64 << k) as i64)
            .collect();
        assert!(v.iter().all(|(k, _)| bounds.contains(k)), "{v:?}");
        assert_eq!(v.last().unwrap().1, 50, "{v:?}");
        // The 20 ms sleep lands in the 33816 µs bucket (or the next ones
        // on a loaded machine).
        let (_, dcalls, _, dbuckets) = &h["debug"];
        assert_eq!(*dcalls, 1);
        let (&bound, _) = dbuckets.iter().next().unwrap();
        assert!((33816..=135265).contains(&bound), "{dbuckets:?}");
        let line = info
            .lines()
            .find(|l| l.starts_with("latency_percentiles_usec_set:"))
            .unwrap_or_else(|| panic!("{info}"));
        let rest = line.split(':').nth(1).unwrap();
        let keys: Vec<&str> = rest
            .split(',')
            .map(|kv| kv.split('=').next().unwrap())
            .collect();
        assert_eq!(keys, ["p50", "p99", "p99.9"], "{line}");
        assert!(after.is_empty(), "{after:?}");
    };
    let ours = TestServer::start(&[]);
    check(shape(ours.port));
    if RedisServer::available() {
        let redis = RedisServer::start(&[]);
        check(shape(redis.port));
    }
}

/// Keyspace events of the hash, list, set and sorted-set families, byte
/// for byte as redis-server 7.0 sends them.
#[test]
fn collection_events_match_redis() {
    if !RedisServer::available() {
        eprintln!("redis-server not installed; skipping");
        return;
    }
    let script: Vec<Vec<&str>> = [
        "HSET h a 1 b 2",
        "HMSET h c 3",
        "HSETNX h a 9",
        "HSETNX h d 4",
        "HINCRBY h a 5",
        "HINCRBYFLOAT h b 1.5",
        "HDEL h a nosuch",
        "HDEL h b c d",
        "HDEL h x",
        "RPUSH l a b c d e",
        "LPUSH l z",
        "LPUSHX nol x",
        "RPUSHX l f",
        "LSET l 0 zz",
        "LINSERT l BEFORE b bb",
        "LREM l 1 bb",
        "LPOP l",
        "RPOP l 2",
        "LTRIM l 0 1",
        "LMOVE l l2 LEFT RIGHT",
        "RPOPLPUSH l l2",
        "LMPOP 2 nol l2 LEFT COUNT 5",
        "RPUSH l3 x",
        "LTRIM l3 5 10",
        "SADD s a b c",
        "SADD s a",
        "SREM s a nosuch",
        "SMOVE s s2 b",
        "SMOVE s s2 c",
        "SADD s3 x y",
        "SINTERSTORE d s2 s3",
        "SUNIONSTORE d s2 s3",
        "SDIFFSTORE d s2 s3",
        "SPOP s3 5",
        "ZADD z 1 a 2 b 3 c 4 d 5 e",
        "ZADD z XX 1 a",
        "ZADD z INCR 2 a",
        "ZINCRBY z 1 b",
        "ZREM z a",
        "ZREMRANGEBYSCORE z 0 2",
        "ZREMRANGEBYRANK z 0 0",
        "ZADD lex 0 a 0 b 0 c",
        "ZREMRANGEBYLEX lex [a [b",
        "ZPOPMIN z",
        "ZPOPMAX z 5",
        "ZADD z1 1 a 2 b",
        "ZADD z2 2 b 3 c",
        "ZUNIONSTORE zu 2 z1 z2",
        "ZINTERSTORE zi 2 z1 z2",
        "ZDIFFSTORE zd 2 z1 z2",
        "ZRANGESTORE zr z1 0 -1",
        "ZINTERSTORE zr 2 z1 nosuch",
        "ZMPOP 1 z1 MIN COUNT 10",
    ]
    .iter()
    .map(|l| l.split(' ').collect())
    .collect();
    let redis = RedisServer::start(&[]);
    let ours = TestServer::start(&[]);
    let want = event_stream(redis.port, false, &script);
    let got = event_stream(ours.port, false, &script);
    assert!(
        want.len() > 100,
        "too few events from redis: {}",
        want.len()
    );
    let show = |v: &[Vec<u8>]| {
        v.iter()
            .map(|r| String::from_utf8_lossy(r).replace("\r\n", " "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(show(&got), show(&want));
}

/// A tracking client whose REDIRECT target disconnected is told so on
/// each invalidation (`tracking-redir-broken`), as redis-server does.
#[test]
fn tracking_broken_redirect_matches_redis() {
    if !RedisServer::available() {
        eprintln!("redis-server not installed; skipping");
        return;
    }
    fn run(port: u16) -> Vec<String> {
        let mut out = Vec::new();
        let mut t = Raw::connect(port);
        let mut w = Raw::connect(port);
        let mut target = Raw::connect(port);
        let b = target.cmd_str(&["CLIENT", "ID"]);
        let tid = String::from_utf8_lossy(&b[1..b.len() - 2]).into_owned();
        t.cmd_str(&["HELLO", "3"]);
        t.cmd_str(&["CLIENT", "TRACKING", "on", "REDIRECT", &tid]);
        t.cmd_str(&["GET", "k"]);
        drop(target);
        // Wait until the server has noticed the disconnect.
        for _ in 0..200 {
            let l = w.cmd_str(&["CLIENT", "LIST"]);
            if String::from_utf8_lossy(&l).matches("id=").count() == 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        w.cmd_str(&["SET", "k", "1"]);
        let id =
            |b: Vec<u8>| String::from_utf8_lossy(&b).replace(&format!(":{tid}\r\n"), ":ID\r\n");
        out.push(id(t.read_reply().unwrap()));
        t.cmd_str(&["GET", "k"]);
        w.cmd_str(&["SET", "k", "2"]);
        out.push(id(t.read_reply().unwrap()));
        out.push(id(t.cmd_str(&["CLIENT", "TRACKINGINFO"])));
        out.push(String::from_utf8_lossy(&t.cmd_str(&["PING"])).into_owned());
        out
    }
    let redis = RedisServer::start(&[]);
    let ours = TestServer::start(&[]);
    assert_eq!(run(ours.port), run(redis.port));
}

/// CLIENT LIST / CLIENT KILL TYPE pubsub select subscribed clients; CLIENT
/// LIST shows sub/psub/ssub counts and the P and x flags.
#[test]
fn client_types_and_counts() {
    let srv = TestServer::start(&[]);
    let mut s = Raw::connect(srv.port);
    s.cmd_str(&["SUBSCRIBE", "a"]);
    s.cmd_str(&["PSUBSCRIBE", "p*"]);
    let mut m = Raw::connect(srv.port);
    m.cmd_str(&["MULTI"]);
    m.cmd_str(&["PING"]);
    let mut c = srv.client();
    let pubsub: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut c)
        .unwrap();
    assert_eq!(pubsub.lines().count(), 1, "{pubsub}");
    assert!(
        pubsub.contains(" flags=P ") && pubsub.contains(" sub=1 psub=1 ssub=0 multi=-1 "),
        "{pubsub}"
    );
    let normal: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("normal")
        .query(&mut c)
        .unwrap();
    assert_eq!(normal.lines().count(), 2, "{normal}");
    assert!(
        normal
            .lines()
            .any(|l| l.contains(" flags=x ") && l.contains(" multi=1 ")),
        "{normal}"
    );
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut c)
        .unwrap();
    assert_eq!(killed, 1);
    assert!(s.closed());
}

/// Past `tracking-table-max-keys`, remembered keys are dropped with an
/// invalidation, so the table stays bounded.
#[test]
fn tracking_table_is_bounded() {
    let srv = TestServer::start(&["--tracking-table-max-keys", "10"]);
    let mut t = Raw::connect(srv.port);
    t.cmd_str(&["HELLO", "3"]);
    t.cmd_str(&["CLIENT", "TRACKING", "on"]);
    // A BCAST client hears of changed keys only, not of keys the table
    // forgets (as Redis).
    let mut b = Raw::connect(srv.port);
    b.cmd_str(&["HELLO", "3"]);
    b.cmd_str(&["CLIENT", "TRACKING", "on", "BCAST"]);
    let mut invalidated = 0;
    for i in 0..30 {
        t.send(&crate::support::resp::encode(&[
            b"GET",
            format!("k{i}").as_bytes(),
        ]));
        // Replies and pushes interleave: count pushes until the GET's reply.
        loop {
            let r = t.read_reply().unwrap();
            if r.starts_with(b">2") {
                invalidated += 1;
            } else {
                break;
            }
        }
    }
    assert_eq!(invalidated, 20);
    let mut w = Raw::connect(srv.port);
    w.cmd_str(&["SET", "changed", "1"]);
    let first = b.read_reply().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&first),
        ">2\r\n$10\r\ninvalidate\r\n*1\r\n$7\r\nchanged\r\n"
    );
}

/// A transaction spanning databases (SELECT, MOVE, COPY ... DB inside) is
/// one record and replays to the same state after a restart.
#[test]
fn exec_across_dbs_replays_after_restart() {
    let mut srv = TestServer::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut r = srv.raw();
    for cmd in [
        vec!["MULTI"],
        vec!["SET", "a", "1"],
        vec!["SELECT", "2"],
        vec!["SET", "b", "2"],
        vec!["MOVE", "b", "3"],
        vec!["SELECT", "0"],
        vec!["COPY", "a", "c", "DB", "5"],
        vec!["INCR", "a"],
        vec!["EXEC"],
    ] {
        r.cmd_str(&cmd);
    }
    drop(r);
    srv.kill9();
    srv.restart();
    let mut r = srv.raw();
    assert_eq!(r.cmd_str(&["GET", "a"]), b"$1\r\n2\r\n");
    r.cmd_str(&["SELECT", "3"]);
    assert_eq!(r.cmd_str(&["GET", "b"]), b"$1\r\n2\r\n");
    r.cmd_str(&["SELECT", "2"]);
    assert_eq!(r.cmd_str(&["DBSIZE"]), b":0\r\n");
    r.cmd_str(&["SELECT", "5"]);
    assert_eq!(r.cmd_str(&["GET", "c"]), b"$1\r\n1\r\n");
}
