//! AUTH and ACL end to end: real clients (redis-cli, the `redis` crate)
//! logging in as ACL users, the ACL file round trip, users and
//! requirepass from the config file, the wrong-password throttle, and
//! what happens to connections of changed or deleted users.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::resp::{encode, Raw};
use crate::support::{RedisServer, TestServer};

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Starts basalt-server with a config file (which must come first on
/// the command line); returns the child and its port.
fn start_with_conf(conf: &std::path::Path, dir: &std::path::Path) -> (Child, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_basalt-server"))
        .arg(conf)
        .arg("--port")
        .arg("0")
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = BufReader::new(err).read_to_end(&mut v);
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(out);
        let mut line = String::new();
        while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            if let Some(a) = line.trim().strip_prefix("basalt-server listening on tcp ") {
                let _ = tx.send(a.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()));
            }
            line.clear();
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(60))
        .ok()
        .flatten()
        .expect("port");
    // Wait until it answers (NOAUTH counts).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut r = Raw::connect(port);
        let rep = r.cmd_str(&["PING"]);
        if rep.starts_with(b"+PONG") || rep.starts_with(b"-NOAUTH") {
            break;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, port)
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("redis-cli");
    // redis-cli reports a failed AUTH on stderr.
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text.trim().to_string()
}

#[test]
fn redis_cli_and_redis_crate_log_in_as_acl_users() {
    let srv = TestServer::start(&["--requirepass", "s3cret"]);
    let mut admin = srv.raw();
    assert_eq!(admin.cmd_str(&["AUTH", "s3cret"]), b"+OK\r\n");
    assert_eq!(
        admin.cmd_str(&[
            "ACL",
            "SETUSER",
            "app",
            "on",
            ">apppw",
            "~app:*",
            "&news",
            "+@read",
            "+@write",
            "+subscribe",
            "-@dangerous"
        ]),
        b"+OK\r\n"
    );
    if RedisServer::available() {
        let p = srv.port;
        assert_eq!(
            cli(p, &["--no-auth-warning", "-a", "s3cret", "ping"]),
            "PONG"
        );
        assert!(cli(p, &["ping"]).starts_with("NOAUTH"));
        let app = ["--no-auth-warning", "--user", "app", "--pass", "apppw"];
        let run = |extra: &[&str]| {
            let mut a: Vec<&str> = app.to_vec();
            a.extend_from_slice(extra);
            cli(p, &a)
        };
        assert_eq!(run(&["set", "app:1", "v"]), "OK");
        assert_eq!(run(&["get", "app:1"]), "v");
        assert_eq!(
            run(&["acl", "whoami"]).to_string(),
            "NOPERM this user has no permissions to run the 'acl|whoami' command"
        );
        assert_eq!(
            run(&["get", "other"]),
            "NOPERM this user has no permissions to access one of the keys used as arguments"
        );
        assert_eq!(
            run(&["flushall"]),
            "NOPERM this user has no permissions to run the 'flushall' command"
        );
        assert!(cli(
            p,
            &[
                "--no-auth-warning",
                "--user",
                "app",
                "--pass",
                "bad",
                "ping"
            ]
        )
        .contains("WRONGPASS"));
    }
    // The redis crate, with credentials in the URL (it sends AUTH user pass).
    let url = format!("redis://app:apppw@127.0.0.1:{}/", srv.port);
    let mut c = redis::Client::open(url)
        .expect("client")
        .get_connection()
        .expect("connect as app");
    let _: () = redis::cmd("SET")
        .arg("app:2")
        .arg("x")
        .query(&mut c)
        .expect("set");
    let v: String = redis::cmd("GET").arg("app:2").query(&mut c).expect("get");
    assert_eq!(v, "x");
    let e = redis::cmd("DEL")
        .arg("nope")
        .query::<i64>(&mut c)
        .expect_err("denied key");
    assert!(e.to_string().to_uppercase().contains("NOPERM"), "{e}");
    let bad = format!("redis://app:wrong@127.0.0.1:{}/", srv.port);
    assert!(redis::Client::open(bad)
        .expect("client")
        .get_connection()
        .is_err());

    // CLIENT LIST shows the user; channels are checked on SUBSCRIBE.
    let mut sub = srv.raw();
    assert_eq!(sub.cmd_str(&["AUTH", "app", "apppw"]), b"+OK\r\n");
    assert!(s(&sub.cmd_str(&["SUBSCRIBE", "other"])).starts_with(
        "-NOPERM this user has no permissions to access one of the channels used as arguments"
    ));
    assert!(s(&sub.cmd_str(&["SUBSCRIBE", "news"])).contains("news"));
    let list = s(&admin.cmd_str(&["CLIENT", "LIST"]));
    assert!(list.contains("user=app"), "{list}");
    assert!(list.contains("user=default"), "{list}");
    // PUBLISH to a channel the publisher may not use is refused.
    assert!(
        s(&admin.cmd_str(&["ACL", "SETUSER", "pub", "on", ">p", "+publish", "&news"]))
            .starts_with("+OK")
    );
    let mut publ = srv.raw();
    assert_eq!(publ.cmd_str(&["AUTH", "pub", "p"]), b"+OK\r\n");
    assert_eq!(publ.cmd_str(&["PUBLISH", "news", "hi"]), b":1\r\n");
    assert!(s(&publ.cmd_str(&["PUBLISH", "sports", "hi"])).starts_with("-NOPERM"));

    // Deleting a user closes its connections.
    assert_eq!(admin.cmd_str(&["ACL", "DELUSER", "app"]), b":1\r\n");
    let t = Instant::now();
    assert!(sub.read_reply().is_none() || sub.closed());
    assert!(t.elapsed() < Duration::from_secs(10));
    let c2 =
        redis::Client::open(format!("redis://app:apppw@127.0.0.1:{}/", srv.port)).expect("client");
    assert!(c2.get_connection().is_err(), "deleted user cannot log in");
}

#[test]
fn acl_rules_change_for_connected_clients_and_in_multi() {
    let srv = TestServer::start(&[]);
    let mut admin = srv.raw();
    assert_eq!(
        admin.cmd_str(&["ACL", "SETUSER", "u", "on", "nopass", "~*", "+@all"]),
        b"+OK\r\n"
    );
    let mut u = srv.raw();
    assert_eq!(u.cmd_str(&["AUTH", "u", "x"]), b"+OK\r\n");
    assert_eq!(u.cmd_str(&["SET", "k", "v"]), b"+OK\r\n");
    assert_eq!(u.cmd_str(&["MULTI"]), b"+OK\r\n");
    assert_eq!(u.cmd_str(&["SET", "k", "v2"]), b"+QUEUED\r\n");
    assert_eq!(u.cmd_str(&["GET", "k"]), b"+QUEUED\r\n");
    // Taken away while queued: EXEC reports it per command.
    assert_eq!(admin.cmd_str(&["ACL", "SETUSER", "u", "-set"]), b"+OK\r\n");
    let r = s(&u.cmd_str(&["EXEC"]));
    assert!(
        r.contains("-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: no permission to execute the command or subcommand"),
        "{r}"
    );
    assert!(r.ends_with("$1\r\nv\r\n"), "{r}");
    // Applies at once to the connected client.
    assert!(s(&u.cmd_str(&["SET", "k", "v"])).starts_with("-NOPERM"));
    let log = s(&admin.cmd_str(&["ACL", "LOG"]));
    assert!(log.contains("multi") && log.contains("toplevel"), "{log}");
    // CLIENT KILL USER.
    assert_eq!(admin.cmd_str(&["CLIENT", "KILL", "USER", "u"]), b":1\r\n");
    assert!(u.closed());

    // Subscribers lose their connection when a channel is taken away;
    // those whose channels stay allowed keep it.
    assert_eq!(
        admin.cmd_str(&["ACL", "SETUSER", "s", "on", "nopass", "+@all", "&news", "&sport*"]),
        b"+OK\r\n"
    );
    let mut news = srv.raw();
    assert_eq!(news.cmd_str(&["AUTH", "s", "x"]), b"+OK\r\n");
    assert!(s(&news.cmd_str(&["SUBSCRIBE", "news"])).contains("news"));
    let mut sport = srv.raw();
    assert_eq!(sport.cmd_str(&["AUTH", "s", "x"]), b"+OK\r\n");
    assert!(s(&sport.cmd_str(&["PSUBSCRIBE", "sport*"])).contains("sport*"));
    assert_eq!(
        admin.cmd_str(&["ACL", "SETUSER", "s", "resetchannels", "&sport*"]),
        b"+OK\r\n"
    );
    assert!(news.closed(), "subscriber to a revoked channel is closed");
    assert_eq!(admin.cmd_str(&["PUBLISH", "sports", "goal"]), b":1\r\n");
    assert!(s(&sport.read_reply().expect("message")).contains("goal"));
}

/// A client pipelining wrong passwords gets one guess per pause, not
/// hundreds per round trip; the commands after a failure still run.
#[test]
fn pipelined_wrong_passwords_are_throttled() {
    let srv = TestServer::start(&["--requirepass", "right"]);
    let mut c = srv.raw();
    let mut batch = Vec::new();
    for i in 0..10 {
        batch.extend(encode(&[b"AUTH", format!("guess{i}").as_bytes()]));
    }
    batch.extend(encode(&[b"AUTH", b"right"]));
    batch.extend(encode(&[b"PING"]));
    let t = Instant::now();
    c.send(&batch);
    for _ in 0..10 {
        assert!(s(&c.read_reply().expect("reply")).starts_with("-WRONGPASS"));
    }
    assert_eq!(c.read_reply().expect("reply"), b"+OK\r\n");
    assert_eq!(c.read_reply().expect("reply"), b"+PONG\r\n");
    // 10 failures at 50 ms each.
    assert!(
        t.elapsed() >= Duration::from_millis(450),
        "{:?}",
        t.elapsed()
    );
    let mut a = srv.raw();
    assert_eq!(a.cmd_str(&["AUTH", "right"]), b"+OK\r\n");
    let log = s(&a.cmd_str(&["ACL", "LOG", "1"]));
    assert!(log.contains("count\r\n:10\r\n"), "{log}");
}

#[test]
fn aclfile_load_save_round_trip() {
    let tmp = tempfile::tempdir().expect("tmp");
    let aclfile = tmp.path().join("users.acl");
    std::fs::write(
        &aclfile,
        "user default on nopass ~* &* +@all\nuser reader on >rpw ~cache:* resetchannels -@all +@read\n",
    )
    .expect("write");
    let path = aclfile.to_str().expect("utf8");
    let mut srv = TestServer::start(&["--aclfile", path]);
    let mut c = srv.raw();
    let list = s(&c.cmd_str(&["ACL", "LIST"]));
    assert!(list.contains("user reader on #"), "{list}");
    assert!(
        list.contains("~cache:* resetchannels -@all +@read"),
        "{list}"
    );
    let mut r = srv.raw();
    assert_eq!(r.cmd_str(&["AUTH", "reader", "rpw"]), b"+OK\r\n");
    assert_eq!(r.cmd_str(&["GET", "cache:1"]), b"$-1\r\n");
    assert!(s(&r.cmd_str(&["SET", "cache:1", "v"])).starts_with("-NOPERM"));

    // SAVE writes what LIST shows; a restart reads it back.
    assert_eq!(
        c.cmd_str(&[
            "ACL",
            "SETUSER",
            "writer",
            "on",
            ">wpw",
            "~*",
            "+@write",
            "(+get ~x*)"
        ]),
        b"+OK\r\n"
    );
    assert_eq!(c.cmd_str(&["ACL", "SAVE"]), b"+OK\r\n");
    let saved = std::fs::read_to_string(&aclfile).expect("read");
    let list = s(&c.cmd_str(&["ACL", "LIST"]));
    for line in saved.lines() {
        assert!(list.contains(line), "{line} not in {list}");
    }
    assert!(saved.contains("user writer on #"), "{saved}");
    assert!(saved.contains("(~x* resetchannels -@all +get)"), "{saved}");

    // LOAD replaces the users; the connection of a replaced user closes.
    std::fs::write(&aclfile, format!("{saved}user extra on >e ~* +ping\n")).expect("write");
    assert_eq!(c.cmd_str(&["ACL", "LOAD"]), b"+OK\r\n");
    assert!(s(&c.cmd_str(&["ACL", "USERS"])).contains("extra"));
    assert!(r.closed(), "reader's connection closed by ACL LOAD");
    // A bad file changes nothing.
    std::fs::write(
        &aclfile,
        "user default on nopass +@all\nuser bad on +nosuchcmd\n",
    )
    .expect("write");
    let e = s(&c.cmd_str(&["ACL", "LOAD"]));
    assert!(e.starts_with("-ERR") && e.contains("nosuchcmd"), "{e}");
    assert!(s(&c.cmd_str(&["ACL", "USERS"])).contains("extra"));

    // Restart: the saved users come back.
    std::fs::write(&aclfile, &saved).expect("write");
    srv.restart();
    let mut c = srv.raw();
    let users = s(&c.cmd_str(&["ACL", "USERS"]));
    assert!(
        users.contains("writer") && users.contains("reader"),
        "{users}"
    );
    let mut w = srv.raw();
    assert_eq!(w.cmd_str(&["AUTH", "writer", "wpw"]), b"+OK\r\n");
    assert_eq!(w.cmd_str(&["GET", "x1"]), b"$-1\r\n");
    assert!(s(&w.cmd_str(&["GET", "y1"])).starts_with("-NOPERM"));
}

#[test]
fn requirepass_and_users_from_the_config_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let conf = tmp.path().join("basalt.conf");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    std::fs::write(
        &conf,
        "requirepass s3cret\nuser bob on >bobpw ~bob:* +@all -@dangerous\nappendonly no\nsave \"\"\n",
    )
    .expect("write");
    let (mut child, port) = start_with_conf(&conf, &data);
    let mut c = Raw::connect(port);
    assert_eq!(
        c.cmd_str(&["GET", "k"]),
        b"-NOAUTH Authentication required.\r\n"
    );
    assert!(s(&c.cmd_str(&["AUTH", "nope"])).starts_with("-WRONGPASS"));
    assert_eq!(c.cmd_str(&["AUTH", "bob", "bobpw"]), b"+OK\r\n");
    assert_eq!(c.cmd_str(&["SET", "bob:1", "v"]), b"+OK\r\n");
    assert!(s(&c.cmd_str(&["SET", "x", "v"])).starts_with("-NOPERM"));
    assert_eq!(c.cmd_str(&["AUTH", "s3cret"]), b"+OK\r\n");
    assert_eq!(c.cmd_str(&["ACL", "WHOAMI"]), b"$7\r\ndefault\r\n");
    // CONFIG REWRITE stores the users (no aclfile): a restart has them.
    assert_eq!(
        c.cmd_str(&["ACL", "SETUSER", "carol", "on", ">cpw", "+ping"]),
        b"+OK\r\n"
    );
    assert_eq!(c.cmd_str(&["CONFIG", "REWRITE"]), b"+OK\r\n");
    let text = std::fs::read_to_string(&conf).expect("read");
    assert!(text.contains("user carol on #"), "{text}");
    assert_eq!(text.matches("user bob ").count(), 1, "{text}");
    let _ = child.kill();
    let _ = child.wait();
    let (mut child, port) = start_with_conf(&conf, &data);
    let mut c = Raw::connect(port);
    assert_eq!(c.cmd_str(&["AUTH", "carol", "cpw"]), b"+OK\r\n");
    assert_eq!(c.cmd_str(&["PING"]), b"+PONG\r\n");
    assert_eq!(c.cmd_str(&["AUTH", "bob", "bobpw"]), b"+OK\r\n");
    assert_eq!(c.cmd_str(&["AUTH", "s3cret"]), b"+OK\r\n");
    let _ = child.kill();
    let _ = child.wait();

    // Users in the config file and an ACL file together: refused, as Redis.
    std::fs::write(
        &conf,
        format!(
            "user bob on >bobpw\naclfile {}\n",
            tmp.path().join("x.acl").display()
        ),
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_basalt-server"))
        .arg(&conf)
        .arg("--port")
        .arg("0")
        .arg("--dir")
        .arg(&data)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(s(&out.stderr).contains("ACL file"), "{}", s(&out.stderr));
}

/// MONITOR never shows passwords: AUTH's arguments and HELLO's AUTH
/// pair are redacted, as Redis.
#[test]
fn monitor_redacts_credentials() {
    let srv = TestServer::start(&[]);
    let mut mon = srv.raw();
    assert_eq!(mon.cmd_str(&["MONITOR"]), b"+OK\r\n");
    let mut c = srv.raw();
    assert!(
        s(&c.cmd_str(&["HELLO", "2", "AUTH", "default", "hunter2", "SETNAME", "n"]))
            .contains("proto")
    );
    assert_eq!(c.cmd_str(&["AUTH", "default", "hunter2"]), b"+OK\r\n");
    let hello = s(&mon.read_reply().expect("hello line"));
    assert!(
        hello.contains(r#""HELLO" "2" "AUTH" "(redacted)" "(redacted)" "SETNAME" "n""#),
        "{hello}"
    );
    let auth = s(&mon.read_reply().expect("auth line"));
    assert!(
        auth.contains(r#""AUTH" "(redacted)" "(redacted)""#),
        "{auth}"
    );
    assert!(!hello.contains("hunter2") && !auth.contains("hunter2"));
}

/// ACL LOAD / SAVE against redis-server 7.0 on the same file: the same
/// error text for a bad or missing file, and a file either one saves
/// loads into the other with the same users.
#[test]
fn aclfile_matches_redis_and_round_trips_between_servers() {
    if !RedisServer::available() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("users.acl");
    let path = file.to_str().expect("utf8").to_string();
    std::fs::write(&file, "user default on nopass ~* &* +@all\n").expect("write");
    let red = RedisServer::start(&["--aclfile", &path]);
    let bas = TestServer::start(&["--aclfile", &path]);
    let (mut r, mut b) = (red.raw(), bas.raw());
    let both = |r: &mut Raw, b: &mut Raw, args: &[&str]| {
        let (x, y) = (r.cmd_str(args), b.cmd_str(args));
        assert_eq!(s(&x), s(&y), "{args:?}");
        s(&x)
    };
    // A file with several problems: nothing changes, same report.
    std::fs::write(
        &file,
        "user default on nopass +@all\nuser bad on +nosuchcmd +get\nuser bad2 on bogus >pw <nope\nfoo bar\nuser dup on\nuser dup on\n",
    )
    .expect("write");
    let e = both(&mut r, &mut b, &["ACL", "LOAD"]);
    assert!(e.starts_with("-ERR "), "{e}");
    both(&mut r, &mut b, &["ACL", "LIST"]);
    std::fs::remove_file(&file).expect("rm");
    both(&mut r, &mut b, &["ACL", "LOAD"]);
    // Good file: same users.
    std::fs::write(
        &file,
        "user default on nopass ~* &* +@all\nuser app on #5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 ~app:* %R~ro:* &news -@all +@read +@write\nuser ops off resetchannels -@all +@admin (~x* +get)\n",
    )
    .expect("write");
    both(&mut r, &mut b, &["ACL", "LOAD"]);
    let list = both(&mut r, &mut b, &["ACL", "LIST"]);
    assert!(list.contains("user app on"), "{list}");
    // Basalt saves, Redis loads it: still the same users.
    both(
        &mut r,
        &mut b,
        &["ACL", "SETUSER", "extra", "on", ">x", "~e*", "+set"],
    );
    assert_eq!(b.cmd_str(&["ACL", "SAVE"]), b"+OK\r\n");
    let saved = std::fs::read_to_string(&file).expect("read");
    assert_eq!(r.cmd_str(&["ACL", "LOAD"]), b"+OK\r\n");
    both(&mut r, &mut b, &["ACL", "LIST"]);
    // And the other way.
    assert_eq!(r.cmd_str(&["ACL", "SAVE"]), b"+OK\r\n");
    assert_eq!(b.cmd_str(&["ACL", "LOAD"]), b"+OK\r\n");
    both(&mut r, &mut b, &["ACL", "LIST"]);
    assert_eq!(
        saved.lines().count(),
        std::fs::read_to_string(&file)
            .expect("read")
            .lines()
            .count()
    );
}
