//! Hashes, sets, lists and sorted sets beyond the scripted differential
//! cases: large collections (generated scripts compared with redis-server),
//! full SCAN iterations, 7.2 behaviour that 7.0 lacks (ZRANK WITHSCORE,
//! listpack sets and lists), and every type surviving a restart.

use crate::support::resp::Raw;
use crate::support::{RedisServer, TestServer};
use crate::types_diff::{expect, run_script};

fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

/// A few thousand random operations on large zsets (skiplist encoding
/// after the first 128 members), interleaved with reads of every kind.
#[test]
fn diff_large_zsets() {
    let mut s = String::new();
    let mut seed = 42u64;
    for i in 0..1500 {
        let m = lcg(&mut seed) % 400;
        let sc = (lcg(&mut seed) % 100) as i64 - 50;
        match i % 10 {
            0 => s += &format!("zrem z m{m}\n"),
            1 => s += &format!("zincrby z 0.5 m{m}\n"),
            2 => s += &format!("zrank z m{m}\n"),
            3 => s += &format!("zrevrank z m{m}\n"),
            4 => s += &format!("zrange z {} {} withscores\n", sc, sc + 7),
            5 => s += &format!("zrangebyscore z ({} {} withscores limit 2 5\n", sc, sc + 3),
            6 => s += &format!("zcount z {} (+inf\n", sc),
            7 => s += &format!("zrevrangebyscore z {} -inf limit 1 4\n", sc),
            _ => s += &format!("zadd z {sc} m{m}\n"),
        }
        if i % 100 == 99 {
            s += "zcard z\nzrange z 0 -1 withscores\nzpopmin z 3\nzpopmax z\n";
        }
    }
    // Lex ranges need equal scores.
    for i in 0..300 {
        s += &format!("zadd lex 0 k{:03}\n", (i * 7919) % 1000);
    }
    s += "zrangebylex lex [k100 (k200\nzrevrangebylex lex + [k900 limit 3 10\nzlexcount lex (k5 +\nzremrangebylex lex [k3 [k4\nzrange lex 0 -1\n";
    s += "zremrangebyrank z 10 50\nzremrangebyscore z (0 10\nzrange z 0 -1 withscores\n";
    s += "zunionstore u 2 z lex weights 2 1\nzrange u 0 -1 withscores\nzinterstore i 2 z u aggregate max\nzrange i 0 -1 withscores\n";
    s += "zdiffstore d 2 u z\nzrange d 0 -1\nobject encoding z\nobject encoding d\n";
    run_script(&s, &[]);
}

#[test]
fn diff_large_lists_hashes_sets() {
    let mut s = String::new();
    let mut seed = 7u64;
    for i in 0..1500 {
        let v = lcg(&mut seed) % 50;
        let idx = (lcg(&mut seed) % 200) as i64 - 100;
        match i % 12 {
            0 => s += &format!("lpush l v{v}\n"),
            1 => s += &format!("rpush l v{v} w{v}\n"),
            2 => s += &format!("lindex l {idx}\n"),
            3 => s += &format!("lrange l {idx} {}\n", idx + 10),
            4 => s += &format!("lrem l {} v{v}\n", idx % 3),
            5 => s += &format!("linsert l before v{v} x{v}\n"),
            6 => s += &format!("lpos l v{v} rank -2 count 3\n"),
            7 => s += &format!("lset l {idx} s{v}\n"),
            8 => s += &format!("hset h f{v} {i}\nhincrby h f{v} 3\n"),
            9 => s += &format!("hdel h f{v}\nhget h f{}\n", v + 1),
            10 => s += &format!("sadd s {v} m{v}\nsrem s {}\n", v / 2),
            _ => s += &format!("sismember s m{v}\nrpoplpush l l2\nlmove l2 l left left\n"),
        }
        if i % 150 == 149 {
            s += "llen l\nlrange l 0 -1\nhlen h\nhgetall h ~sort\nscard s\nsmembers s ~sort\nltrim l 5 -5\n";
        }
    }
    run_script(&s, &[]);
}

/// Iterates a *SCAN to the end and returns every element it produced.
fn full_scan(c: &mut Raw, cmd: &str, key: &str, count: &str) -> Vec<Vec<u8>> {
    let mut cursor = "0".to_string();
    let mut all = Vec::new();
    loop {
        let r = c.cmd_str(&[cmd, key, &cursor, "COUNT", count]);
        let text = r.clone();
        let mut parts = text
            .split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        parts.next(); // *2
        parts.next(); // $len
        cursor = String::from_utf8(parts.next().expect("cursor").to_vec()).expect("utf8");
        parts.next(); // *n
        let rest: Vec<&[u8]> = parts.filter(|l| !l.is_empty()).collect();
        for pair in rest.chunks(2) {
            if pair.len() == 2 {
                all.push(pair[1].to_vec());
            }
        }
        if cursor == "0" {
            break;
        }
    }
    all.sort();
    all
}

#[test]
fn scans_of_large_collections_return_everything() {
    let s = TestServer::start(&[]);
    let mut c = s.raw();
    for i in 0..2000 {
        let m = format!("m{i}");
        c.cmd_str(&["SADD", "s", &m]);
        c.cmd_str(&["HSET", "h", &m, "v"]);
        c.cmd_str(&["ZADD", "z", &i.to_string(), &m]);
    }
    let mut want: Vec<Vec<u8>> = (0..2000).map(|i| format!("m{i}").into_bytes()).collect();
    want.sort();
    assert_eq!(full_scan(&mut c, "SSCAN", "s", "7"), want);
    let h = full_scan(&mut c, "HSCAN", "h", "13");
    let mut keys: Vec<Vec<u8>> = h.into_iter().filter(|x| x != b"v").collect();
    keys.sort();
    assert_eq!(keys, want);
    let z = full_scan(&mut c, "ZSCAN", "z", "50");
    let mut zk: Vec<Vec<u8>> = z.into_iter().filter(|x| x.starts_with(b"m")).collect();
    zk.sort();
    assert_eq!(zk, want);
}

#[test]
fn redis_7_2_behaviour() {
    let s = TestServer::start(&[]);
    let mut c = s.raw();
    c.cmd_str(&["ZADD", "z", "1.5", "a", "2", "b"]);
    expect(
        &mut c,
        &["ZRANK", "z", "b", "WITHSCORE"],
        "*2\r\n:1\r\n$1\r\n2\r\n",
    );
    expect(
        &mut c,
        &["ZREVRANK", "z", "b", "withscore"],
        "*2\r\n:0\r\n$1\r\n2\r\n",
    );
    expect(&mut c, &["ZRANK", "z", "x", "WITHSCORE"], "*-1\r\n");
    expect(&mut c, &["ZRANK", "nokey", "x", "WITHSCORE"], "*-1\r\n");
    expect(
        &mut c,
        &["ZRANK", "z", "a", "WITHSCORES"],
        "-ERR syntax error\r\n",
    );
    expect(
        &mut c,
        &["ZRANK", "z", "a", "WITHSCORE", "x"],
        "-ERR syntax error\r\n",
    );
    // Encodings: sets and lists use listpack while small (7.2).
    c.cmd_str(&["SADD", "s", "1", "2"]);
    expect(&mut c, &["OBJECT", "ENCODING", "s"], "$6\r\nintset\r\n");
    c.cmd_str(&["SADD", "s", "x"]);
    expect(&mut c, &["OBJECT", "ENCODING", "s"], "$8\r\nlistpack\r\n");
    for i in 0..200 {
        c.cmd_str(&["SADD", "s", &format!("m{i}")]);
    }
    expect(&mut c, &["OBJECT", "ENCODING", "s"], "$9\r\nhashtable\r\n");
    c.cmd_str(&["RPUSH", "l", "a"]);
    expect(&mut c, &["OBJECT", "ENCODING", "l"], "$8\r\nlistpack\r\n");
    let big = "x".repeat(9000);
    c.cmd_str(&["RPUSH", "l", &big]);
    expect(&mut c, &["OBJECT", "ENCODING", "l"], "$9\r\nquicklist\r\n");
    c.cmd_str(&["RPOP", "l"]);
    expect(&mut c, &["OBJECT", "ENCODING", "l"], "$8\r\nlistpack\r\n");
    c.cmd_str(&["HSET", "h", "f", "v"]);
    expect(&mut c, &["OBJECT", "ENCODING", "h"], "$8\r\nlistpack\r\n");
    expect(&mut c, &["OBJECT", "ENCODING", "z"], "$8\r\nlistpack\r\n");
    for (k, t) in [("s", "set"), ("l", "list"), ("h", "hash"), ("z", "zset")] {
        expect(&mut c, &["TYPE", k], &format!("+{t}\r\n"));
    }
    // CONFIG SET changes the thresholds at run time.
    c.cmd_str(&["CONFIG", "SET", "zset-max-listpack-entries", "2"]);
    c.cmd_str(&["ZADD", "z", "3", "c"]);
    expect(&mut c, &["OBJECT", "ENCODING", "z"], "$8\r\nskiplist\r\n");
}

/// COPY deep-copies collections: changing the copy leaves the source.
#[test]
fn copy_collections() {
    let s = TestServer::start(&[]);
    let mut c = s.raw();
    c.cmd_str(&["HSET", "h", "a", "1"]);
    c.cmd_str(&["RPUSH", "l", "a", "b"]);
    c.cmd_str(&["ZADD", "z", "1", "a"]);
    c.cmd_str(&["SADD", "s", "a"]);
    for k in ["h", "l", "z", "s"] {
        let dst = format!("{k}2");
        expect(&mut c, &["COPY", k, &dst], ":1\r\n");
    }
    c.cmd_str(&["HSET", "h2", "b", "2"]);
    expect(&mut c, &["HLEN", "h"], ":1\r\n");
    c.cmd_str(&["RPUSH", "l2", "c"]);
    expect(&mut c, &["LLEN", "l"], ":2\r\n");
    c.cmd_str(&["ZADD", "z2", "2", "b"]);
    expect(&mut c, &["ZCARD", "z"], ":1\r\n");
    c.cmd_str(&["SADD", "s2", "b"]);
    expect(&mut c, &["SCARD", "s"], ":1\r\n");
}

fn dump_all(c: &mut Raw) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for k in [
        "h", "hbig", "s", "si", "sbig", "l", "lbig", "z", "zbig", "zstore", "sstore",
    ] {
        out.push(c.cmd_str(&["TYPE", k]));
        out.push(c.cmd_str(&["OBJECT", "ENCODING", k]));
    }
    out.push(c.cmd_str(&["HGETALL", "h"]));
    out.push(c.cmd_str(&["HLEN", "hbig"]));
    out.push(c.cmd_str(&["HGET", "hbig", "f77"]));
    out.push(c.cmd_str(&["HGET", "h", "fl"]));
    out.push(c.cmd_str(&["SMEMBERS", "si"]));
    out.push(c.cmd_str(&["SMEMBERS", "s"]));
    out.push(c.cmd_str(&["SCARD", "sbig"]));
    out.push(c.cmd_str(&["LRANGE", "l", "0", "-1"]));
    out.push(c.cmd_str(&["LRANGE", "lbig", "0", "-1"]));
    out.push(c.cmd_str(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]));
    out.push(c.cmd_str(&["ZRANGE", "zbig", "0", "-1", "WITHSCORES"]));
    out.push(c.cmd_str(&["ZRANGE", "zstore", "0", "-1", "WITHSCORES"]));
    out.push(c.cmd_str(&["SCARD", "sstore"]));
    out
}

/// Every type written (including the non-deterministic commands, which
/// are logged as what they did), the server restarted from its log, and
/// every value read back equal.
#[test]
fn collections_survive_restart() {
    let mut s = TestServer::start(&[]);
    let mut c = s.raw();
    c.cmd_str(&["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    c.cmd_str(&["HINCRBY", "h", "a", "10"]);
    c.cmd_str(&["HINCRBYFLOAT", "h", "fl", "0.1"]);
    c.cmd_str(&["HINCRBYFLOAT", "h", "fl", "1e-5"]);
    c.cmd_str(&["HDEL", "h", "b"]);
    for i in 0..600 {
        c.cmd_str(&["HSET", "hbig", &format!("f{i}"), &format!("v{i}")]);
        c.cmd_str(&["SADD", "sbig", &format!("m{i}")]);
        c.cmd_str(&["RPUSH", "lbig", &format!("e{i}")]);
        c.cmd_str(&["ZADD", "zbig", &format!("{}.25", i % 37), &format!("m{i}")]);
    }
    c.cmd_str(&["SADD", "s", "a", "b", "c", "d", "e"]);
    c.cmd_str(&["SADD", "si", "1", "2", "3", "4"]);
    c.cmd_str(&["SPOP", "s"]);
    c.cmd_str(&["SPOP", "sbig", "100"]);
    c.cmd_str(&["SPOP", "si", "2"]);
    c.cmd_str(&["SMOVE", "s", "si", "a"]);
    c.cmd_str(&["RPUSH", "l", "a", "b", "c", "d"]);
    c.cmd_str(&["LPUSH", "l", "z"]);
    c.cmd_str(&["LMOVE", "l", "l", "LEFT", "RIGHT"]);
    c.cmd_str(&["LINSERT", "l", "BEFORE", "c", "x"]);
    c.cmd_str(&["LMPOP", "1", "lbig", "LEFT", "COUNT", "5"]);
    c.cmd_str(&["LTRIM", "lbig", "0", "400"]);
    c.cmd_str(&["ZADD", "z", "1", "a", "2", "b", "inf", "c", "-inf", "d"]);
    c.cmd_str(&["ZINCRBY", "z", "0.1", "a"]);
    c.cmd_str(&["ZADD", "z", "GT", "CH", "5", "b"]);
    c.cmd_str(&["ZMPOP", "1", "zbig", "MAX", "COUNT", "3"]);
    c.cmd_str(&["ZPOPMIN", "zbig", "2"]);
    c.cmd_str(&["ZREMRANGEBYSCORE", "zbig", "(3", "5"]);
    c.cmd_str(&[
        "ZUNIONSTORE",
        "zstore",
        "2",
        "z",
        "zbig",
        "WEIGHTS",
        "0.3",
        "3",
    ]);
    c.cmd_str(&["SUNIONSTORE", "sstore", "s", "sbig", "si"]);
    c.cmd_str(&["SINTERSTORE", "gone", "s", "nokey"]);
    let before = dump_all(&mut c);
    drop(c);
    s.restart();
    let mut c = s.raw();
    let after = dump_all(&mut c);
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert_eq!(
            String::from_utf8_lossy(b),
            String::from_utf8_lossy(a),
            "item {i} changed across restart"
        );
    }
    expect(&mut c, &["EXISTS", "gone"], ":0\r\n");
}

/// Memory per small collection stays at or below Redis's (listpack vs
/// our packed buffers): 20k hashes of 10 fields and 20k zsets of 10.
#[test]
fn small_collections_memory_vs_redis() {
    if !RedisServer::available() {
        return;
    }
    let b = TestServer::start(&[]);
    let r = RedisServer::start(&[]);
    let used = |c: &mut Raw| -> i64 {
        let info = String::from_utf8_lossy(&c.cmd_str(&["INFO", "memory"])).to_string();
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let mut bc = b.raw();
    let mut rc = r.raw();
    let (b0, r0) = (used(&mut bc), used(&mut rc));
    let n = 20_000;
    for c in [&mut bc, &mut rc] {
        let mut batch = Vec::new();
        for i in 0..n {
            let mut h: Vec<String> = vec!["HSET".into(), format!("session:{i}")];
            let mut z: Vec<String> = vec!["ZADD".into(), format!("idx:{i}")];
            for f in 0..10 {
                h.push(format!("field{f}"));
                h.push(format!("value{f}"));
                z.push(format!("{f}"));
                z.push(format!("member{f}"));
            }
            let hr: Vec<&[u8]> = h.iter().map(|s| s.as_bytes()).collect();
            let zr: Vec<&[u8]> = z.iter().map(|s| s.as_bytes()).collect();
            batch.extend(crate::support::resp::encode(&hr));
            batch.extend(crate::support::resp::encode(&zr));
            if i % 500 == 499 {
                c.send(&batch);
                batch.clear();
                for _ in 0..1000 {
                    c.read_reply();
                }
            }
        }
    }
    let (b1, r1) = (used(&mut bc), used(&mut rc));
    let (bd, rd) = (b1 - b0, r1 - r0);
    eprintln!(
        "memory for {n} hashes + {n} zsets of 10: basalt {bd} bytes, redis {rd} bytes ({:.2}x)",
        bd as f64 / rd as f64
    );
    if bd > 0 {
        assert!(bd <= rd * 11 / 10, "basalt {bd} > redis {rd} (+10%)");
    }
}
