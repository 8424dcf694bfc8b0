//! Keyspace notifications against redis-server: the same commands on both
//! servers, every event each one publishes (KEA), compared command by
//! command.

use std::time::Duration;

use crate::support::{RedisServer, TestServer};

/// Deterministic commands of every type (no SPOP or random members: the
/// two servers would then hold different data).
const COMMANDS: &[&str] = &[
    "SET s v",
    "SET s v2 EX 100",
    "SETEX s2 100 v",
    "SETNX s3 v",
    "SETRANGE s 0 x",
    "APPEND s y",
    "INCR n",
    "INCRBYFLOAT n 1.5",
    "DECRBY n 2",
    "GETDEL s3",
    "GETEX s PERSIST",
    "GETEX s EX 50",
    "MSET a 1 b 2",
    "MSETNX c 1 d 2",
    "GETSET a 3",
    "COPY a a2",
    "RENAME a2 a3",
    "RENAMENX a3 a4",
    "MOVE a4 1",
    "EXPIRE b 100",
    "PERSIST b",
    "EXPIRE b 0",
    "DEL c d nosuch",
    "RPUSH l 1 2 3 4",
    "LPUSH l 0",
    "LINSERT l BEFORE 1 x",
    "LSET l 0 y",
    "LREM l 1 x",
    "LTRIM l 0 2",
    "LPOP l",
    "RPOP l 5",
    "RPUSH l2 a b",
    "LMOVE l2 l3 LEFT RIGHT",
    "RPOPLPUSH l2 l3",
    "LMPOP 1 l3 LEFT COUNT 10",
    "HSET h a 1 b 2",
    "HINCRBY h a 5",
    "HDEL h a b",
    "SADD st a b c",
    "SREM st a",
    "SMOVE st st2 b",
    "SMOVE st st2 c",
    "SADD x 1 2",
    "SADD y 2 3",
    "SINTERSTORE z1 x y",
    "SDIFFSTORE z3 nosuch y",
    "ZADD zs 1 a 2 b 3 c",
    "ZINCRBY zs 5 a",
    "ZPOPMIN zs",
    "ZREMRANGEBYRANK zs 0 0",
    "ZUNIONSTORE zu 1 zs",
    "ZRANGESTORE zr zs 0 -1",
    "XADD xs 1-1 f v",
    "XTRIM xs MAXLEN 0",
    "XGROUP CREATE xs g $",
    "XGROUP DESTROY xs g",
    "SETBIT bits 1 1",
    "SETBIT bits 1 1",
    "SETBIT bits 100 0",
    "SETBIT bits 1 0",
    "BITOP NOT bits2 bits",
    "BITOP AND bits2 nosuch",
    "BITFIELD bits GET u8 0",
    "BITFIELD bits SET u8 0 255",
    "BITFIELD bits OVERFLOW FAIL INCRBY u2 0 10",
    "PFADD hll a b",
    "PFADD hll a",
    "PFADD hll2",
    "PFMERGE hll3 hll",
    "GEOADD geo 1 1 m",
    "SORT l STORE sorted",
    "FLUSHDB",
];

fn events(port: u16) -> Vec<Vec<(String, String)>> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut c = client.get_connection().unwrap();
    let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "notify-keyspace-events", "KEA"][..])
        .query(&mut c)
        .unwrap();
    let mut sub = client.get_connection().unwrap();
    sub.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut ps = sub.as_pubsub();
    ps.psubscribe("*").unwrap();
    let mut out = Vec::new();
    for (i, line) in COMMANDS.iter().enumerate() {
        let mut cmd = redis::cmd(line.split(' ').next().unwrap());
        for a in line.split(' ').skip(1) {
            cmd.arg(a);
        }
        let _ = cmd.query::<redis::Value>(&mut c);
        // A marker from the same connection comes after every event of
        // the command.
        let marker = format!("marker-{i}");
        let _: i64 = redis::cmd("PUBLISH")
            .arg("marker")
            .arg(&marker)
            .query(&mut c)
            .unwrap();
        let mut evs = Vec::new();
        loop {
            let m = ps.get_message().expect("events, then the marker");
            let (ch, payload): (String, String) =
                (m.get_channel_name().to_string(), m.get_payload().unwrap());
            if ch == "marker" && payload == marker {
                break;
            }
            evs.push((ch, payload));
        }
        out.push(evs);
    }
    out
}

#[test]
fn keyspace_events_match_redis() {
    if !RedisServer::available() {
        return;
    }
    let r = RedisServer::start(&[]);
    let b = TestServer::start(&[]);
    let (er, eb) = (events(r.port), events(b.port));
    let mut differ = Vec::new();
    for (i, (x, y)) in er.iter().zip(&eb).enumerate() {
        if x != y {
            differ.push(format!("{}\n  redis:  {x:?}\n  basalt: {y:?}", COMMANDS[i]));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    // The list above does exercise events.
    assert!(er.iter().filter(|e| !e.is_empty()).count() > 50);
}
