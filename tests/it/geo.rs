//! GEO data across restarts: GEOADD is logged as the ZADD it did, and a
//! GEOSEARCHSTORE / GEORADIUS ... STORE as the destination it wrote, so
//! replay rebuilds exactly what was acknowledged even when the sources
//! changed afterwards (the same search would now find something else).

use crate::support::resp::Raw;
use crate::support::{RedisServer, TestServer};

fn ok(c: &mut Raw, cmd: &[&str]) -> Vec<u8> {
    let r = c.cmd_str(cmd);
    assert!(
        !r.starts_with(b"-"),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&r)
    );
    r
}

/// Everything the GEO keys hold, as replies: the scores, positions and
/// hashes of the sources and the stored results.
fn geo_state(c: &mut Raw) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for k in [
        "Sicily", "edges", "dst", "dst2", "dst3", "dst4", "tx", "txdst",
    ] {
        out.push(c.cmd_str(&["TYPE", k]));
        out.push(c.cmd_str(&["ZRANGE", k, "0", "-1", "WITHSCORES"]));
    }
    let members = [
        "Palermo",
        "Catania",
        "Agrigento",
        "Siracusa",
        "Trapani",
        "gone",
        "nosuch",
    ];
    let mut pos = vec!["GEOPOS", "Sicily"];
    pos.extend(members);
    out.push(c.cmd_str(&pos));
    let mut hash = vec!["GEOHASH", "Sicily"];
    hash.extend(members);
    out.push(c.cmd_str(&hash));
    out.push(c.cmd_str(&["GEOPOS", "edges", "sw", "ne", "east", "west"]));
    out.push(c.cmd_str(&[
        "GEOSEARCH",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYRADIUS",
        "300",
        "km",
        "ASC",
        "WITHDIST",
        "WITHCOORD",
        "WITHHASH",
    ]));
    out
}

fn write_geo(c: &mut Raw) {
    ok(
        c,
        &[
            "GEOADD",
            "Sicily",
            "13.361389",
            "38.115556",
            "Palermo",
            "15.087269",
            "37.502669",
            "Catania",
            "13.583333",
            "37.316667",
            "Agrigento",
        ],
    );
    ok(
        c,
        &[
            "GEOADD", "Sicily", "NX", "CH", "0", "0", "Palermo", "15.2866", "37.0755", "Siracusa",
        ],
    );
    ok(c, &["GEOADD", "Sicily", "XX", "12.5", "37.8", "Trapani"]);
    ok(
        c,
        &[
            "GEOADD", "Sicily", "CH", "12.5", "37.8", "Trapani", "1", "1", "gone",
        ],
    );
    ok(c, &["ZREM", "Sicily", "gone"]);
    ok(
        c,
        &[
            "GEOADD",
            "edges",
            "-180",
            "-85.05112878",
            "sw",
            "180",
            "85.05112878",
            "ne",
            "179.9999999",
            "0",
            "east",
            "-180",
            "0",
            "west",
        ],
    );
    // Stores, then sources changed so that the same searches now differ.
    assert_eq!(
        ok(
            c,
            &[
                "GEOSEARCHSTORE",
                "dst",
                "Sicily",
                "FROMMEMBER",
                "Palermo",
                "BYRADIUS",
                "200",
                "km"
            ]
        ),
        b":4\r\n"
    );
    ok(
        c,
        &[
            "GEOSEARCHSTORE",
            "dst2",
            "Sicily",
            "FROMLONLAT",
            "15",
            "37",
            "BYBOX",
            "400",
            "400",
            "km",
            "STOREDIST",
            "ASC",
            "COUNT",
            "3",
        ],
    );
    ok(
        c,
        &[
            "GEORADIUS",
            "Sicily",
            "15",
            "37",
            "200",
            "mi",
            "STOREDIST",
            "dst3",
        ],
    );
    ok(c, &["SET", "dst4", "old"]);
    assert_eq!(
        ok(
            c,
            &["GEORADIUS", "Sicily", "0", "0", "1", "km", "STORE", "dst4"]
        ),
        b":0\r\n"
    );
    ok(
        c,
        &[
            "GEOADD", "Sicily", "XX", "14", "37.5", "Palermo", "15.1", "37.5", "Catania",
        ],
    );
    ok(c, &["ZREM", "Sicily", "Agrigento"]);
    ok(c, &["GEOADD", "Sicily", "14.0167", "37.4833", "Agrigento"]);
    // A transaction: one log record.
    ok(c, &["MULTI"]);
    ok(
        c,
        &[
            "GEOADD",
            "tx",
            "13.361389",
            "38.115556",
            "Palermo",
            "15.087269",
            "37.502669",
            "Catania",
        ],
    );
    ok(
        c,
        &["GEORADIUS", "tx", "15", "37", "200", "km", "STORE", "txdst"],
    );
    ok(c, &["GEOADD", "tx", "XX", "1", "1", "Catania"]);
    ok(c, &["EXEC"]);
}

#[test]
fn geo_writes_and_stores_replay_identically_after_restart() {
    let mut s = TestServer::start(&[]);
    let mut c = s.raw();
    write_geo(&mut c);
    let before = geo_state(&mut c);
    // Sanity: the stores hold what they found then, not what a search
    // finds now.
    assert_ne!(
        c.cmd_str(&["ZRANGE", "dst", "0", "-1"]),
        c.cmd_str(&[
            "GEOSEARCH",
            "Sicily",
            "FROMMEMBER",
            "Palermo",
            "BYRADIUS",
            "200",
            "km"
        ])
    );
    assert_eq!(c.cmd_str(&["EXISTS", "dst4"]), b":0\r\n");
    s.restart();
    let mut c = s.raw();
    assert_eq!(before, geo_state(&mut c));
}

#[test]
fn geo_writes_survive_kill9() {
    let mut s = TestServer::start(&["--appendfsync", "always"]);
    let mut c = s.raw();
    write_geo(&mut c);
    let before = geo_state(&mut c);
    s.kill9();
    s.restart();
    let mut c = s.raw();
    assert_eq!(before, geo_state(&mut c));
}

/// The migration case: geo keys written by redis-server (a small listpack
/// and a large skiplist sorted set), saved to dump.rdb and imported at
/// Basalt's first start, or moved with DUMP/RESTORE, answer every GEO
/// query byte for byte as Redis does.
#[test]
fn geo_keys_from_a_redis_dump_answer_as_redis() {
    if !RedisServer::available() {
        return;
    }
    let r = RedisServer::start(&[]);
    let mut rc = r.raw();
    ok(
        &mut rc,
        &[
            "GEOADD",
            "small",
            "13.361389",
            "38.115556",
            "Palermo",
            "15.087269",
            "37.502669",
            "Catania",
            "12.5",
            "37.8",
            "Trapani",
        ],
    );
    // 400 points on a grid around Sicily, some sharing a position.
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    for chunk in 0..4 {
        let mut cmd: Vec<String> = vec!["GEOADD".into(), "big".into()];
        for i in 0..100 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let x = 12.0 + (seed % 400) as f64 / 100.0;
            let y = 36.5 + ((seed >> 20) % 250) as f64 / 100.0;
            cmd.extend([format!("{x}"), format!("{y}"), format!("p{chunk}_{i}")]);
        }
        let args: Vec<&str> = cmd.iter().map(|s| s.as_str()).collect();
        ok(&mut rc, &args);
    }
    assert_eq!(
        rc.cmd_str(&["OBJECT", "ENCODING", "big"]),
        b"$8\r\nskiplist\r\n"
    );
    assert_eq!(rc.cmd_str(&["SAVE"]), b"+OK\r\n");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(r.dir().join("dump.rdb"), dir.path().join("dump.rdb")).unwrap();
    let b = TestServer::start_in(dir.path(), &[]);
    let mut bc = b.raw();
    // The same keys again through DUMP/RESTORE.
    for k in ["small", "big"] {
        let payload = rc.cmd_str(&["DUMP", k]);
        let body =
            &payload[payload.iter().position(|&c| c == b'\n').unwrap() + 1..payload.len() - 2];
        let to = format!("{k}2");
        assert_eq!(bc.cmd(&[b"RESTORE", to.as_bytes(), b"0", body]), b"+OK\r\n");
        ok(&mut rc, &["COPY", k, &to]);
    }
    let queries: &[&[&str]] = &[
        &["GEOPOS", "small", "Palermo", "Catania", "Trapani", "nosuch"],
        &["GEOHASH", "small", "Palermo", "Catania", "Trapani"],
        &["GEODIST", "small", "Palermo", "Catania", "km"],
        &["GEOPOS", "big", "p0_0", "p1_5", "p3_99"],
        &["GEODIST", "big", "p0_0", "p3_99", "mi"],
        &[
            "GEOSEARCH",
            "small",
            "FROMMEMBER",
            "Palermo",
            "BYRADIUS",
            "300",
            "km",
            "WITHDIST",
            "WITHCOORD",
            "WITHHASH",
        ],
        &["GEORADIUS", "big", "14", "37.5", "50", "km"],
        &[
            "GEORADIUS",
            "big",
            "14",
            "37.5",
            "50",
            "km",
            "ASC",
            "WITHDIST",
        ],
        &[
            "GEORADIUS",
            "big",
            "14",
            "37.5",
            "80",
            "km",
            "COUNT",
            "7",
            "WITHCOORD",
        ],
        &[
            "GEORADIUS",
            "big",
            "14",
            "37.5",
            "80",
            "km",
            "COUNT",
            "7",
            "ANY",
        ],
        &[
            "GEOSEARCH",
            "big",
            "FROMMEMBER",
            "p2_50",
            "BYBOX",
            "100",
            "60",
            "km",
            "DESC",
            "WITHHASH",
        ],
        &[
            "GEOSEARCH",
            "big2",
            "FROMLONLAT",
            "13",
            "37",
            "BYRADIUS",
            "1000",
            "km",
            "COUNT",
            "20",
        ],
        &[
            "GEORADIUSBYMEMBER",
            "small2",
            "Trapani",
            "100",
            "mi",
            "WITHDIST",
            "DESC",
        ],
    ];
    // The searches find something (the comparison is not of empties).
    assert!(rc
        .cmd_str(&["GEORADIUS", "big", "14", "37.5", "80", "km", "COUNT", "7"])
        .starts_with(b"*7\r\n"));
    assert!(
        rc.cmd_str(&[
            "GEOSEARCH",
            "big",
            "FROMMEMBER",
            "p2_50",
            "BYBOX",
            "100",
            "60",
            "km"
        ])
        .len()
            > 100
    );
    for q in queries {
        assert_eq!(
            String::from_utf8_lossy(&bc.cmd_str(q)),
            String::from_utf8_lossy(&rc.cmd_str(q)),
            "{q:?}"
        );
    }
    for (store, read) in [
        (
            &[
                "GEOSEARCHSTORE",
                "d",
                "big",
                "FROMLONLAT",
                "14",
                "37.5",
                "BYRADIUS",
                "60",
                "km",
                "STOREDIST",
            ][..],
            &["ZRANGE", "d", "0", "-1", "WITHSCORES"][..],
        ),
        (
            &[
                "GEORADIUS",
                "big2",
                "14",
                "37.5",
                "60",
                "km",
                "COUNT",
                "9",
                "STORE",
                "d2",
            ][..],
            &["ZRANGE", "d2", "0", "-1", "WITHSCORES"][..],
        ),
    ] {
        assert_eq!(bc.cmd_str(store), rc.cmd_str(store), "{store:?}");
        assert_eq!(bc.cmd_str(read), rc.cmd_str(read), "{read:?}");
    }
}
