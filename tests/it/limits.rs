//! Client limits against the real server: maxclients, timeout,
//! client-output-buffer-limit for normal clients, client-query-buffer-limit,
//! CLIENT NO-EVICT, and the INFO fields that report them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::resp::Raw;
use crate::support::TestServer;

fn info_field(raw: &mut Raw, section: &str, field: &str) -> String {
    let r = raw.cmd_str(&["INFO", section]);
    let text = String::from_utf8_lossy(&r).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {text}"))
        .trim()
        .to_string()
}

/// Polls until `f` is true (at most `secs`).
fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

fn connected(raw: &mut Raw) -> u64 {
    info_field(raw, "clients", "connected_clients")
        .parse()
        .unwrap()
}

/// True once the peer has closed (EOF or reset), within `secs`.
fn closed_within(s: &mut TcpStream, secs: u64) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
        if Instant::now() > deadline {
            return false;
        }
    }
}

#[test]
fn maxclients_refuses_with_redis_error_and_counts() {
    let s = TestServer::start(&["--maxclients", "3"]);
    let mut a = s.raw();
    assert!(eventually(5, || connected(&mut a) == 1));
    let mut b = s.raw();
    let mut c = s.raw();
    assert_eq!(b.cmd_str(&["PING"]), b"+PONG\r\n");
    assert_eq!(c.cmd_str(&["PING"]), b"+PONG\r\n");
    let mut d = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    d.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let _ = d.read_to_end(&mut got);
    assert_eq!(got, b"-ERR max number of clients reached\r\n");
    assert_eq!(info_field(&mut a, "stats", "rejected_connections"), "1");
    assert_eq!(connected(&mut a), 3);
    // A slot frees when a client leaves; CONFIG SET raises the limit.
    drop(c);
    assert!(eventually(5, || connected(&mut a) == 2));
    let mut e = s.raw();
    assert_eq!(e.cmd_str(&["PING"]), b"+PONG\r\n");
    assert_eq!(a.cmd_str(&["CONFIG", "SET", "maxclients", "4"]), b"+OK\r\n");
    let mut f = s.raw();
    assert_eq!(f.cmd_str(&["PING"]), b"+PONG\r\n");
    assert_eq!(info_field(&mut a, "clients", "maxclients"), "4");
}

#[test]
fn timeout_closes_idle_clients_but_not_subscribers_or_blocked() {
    let s = TestServer::start(&["--timeout", "1"]);
    let mut idle = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    idle.write_all(b"PING\r\n").unwrap();
    let mut sub = s.raw();
    sub.cmd_str(&["SUBSCRIBE", "ch"]);
    let mut blocked = s.raw();
    blocked.send(&crate::support::resp::encode(&[b"BLPOP", b"list", b"0"]));
    // MONITOR only once the BLPOP ran, or the monitor is fed it.
    let mut probe = s.raw();
    assert!(eventually(5, || info_field(
        &mut probe,
        "clients",
        "blocked_clients"
    ) == "1"));
    drop(probe);
    let mut mon = s.raw();
    assert_eq!(mon.cmd_str(&["MONITOR"]), b"+OK\r\n");
    let start = Instant::now();
    assert!(closed_within(&mut idle, 5), "idle client not closed");
    assert!(start.elapsed() >= Duration::from_millis(900));
    std::thread::sleep(Duration::from_millis(1500));
    // The others are still served.
    let mut other = s.raw();
    assert_eq!(other.cmd_str(&["PUBLISH", "ch", "hi"]), b":1\r\n");
    assert!(sub.read_reply().unwrap().ends_with(b"$2\r\nhi\r\n"));
    assert_eq!(info_field(&mut other, "clients", "blocked_clients"), "1");
    other.cmd_str(&["RPUSH", "list", "v"]);
    assert_eq!(
        blocked.read_reply().unwrap(),
        b"*2\r\n$4\r\nlist\r\n$1\r\nv\r\n"
    );
    assert!(mon.read_reply().unwrap().starts_with(b"+"));
    // Unblocked after more than `timeout`: not closed right away.
    assert_eq!(blocked.cmd_str(&["PING"]), b"+PONG\r\n");
    // CONFIG SET timeout 0 reaches clients already idle.
    assert_eq!(
        other.cmd_str(&["CONFIG", "SET", "timeout", "0"]),
        b"+OK\r\n"
    );
    let mut stay = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    stay.write_all(b"PING\r\n").unwrap();
    assert!(!closed_within(&mut stay, 2), "closed with timeout 0");
    // And a new timeout reaches a client that was idle under timeout 0.
    assert_eq!(
        other.cmd_str(&["CONFIG", "SET", "timeout", "1"]),
        b"+OK\r\n"
    );
    assert!(
        closed_within(&mut stay, 5),
        "idle client kept after CONFIG SET"
    );
}

/// Pipelines `n` GETs of a big value without reading any reply.
fn flood_without_reading(port: u16, n: usize) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut cmds = Vec::new();
    for _ in 0..n {
        cmds.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n");
    }
    s.write_all(&cmds).unwrap();
    s
}

#[test]
fn normal_output_limit_cuts_clients_that_never_read() {
    let s = TestServer::start(&["--appendfsync", "everysec"]);
    let mut a = s.raw();
    let big = "x".repeat(100_000);
    a.cmd_str(&["SET", "big", &big]);

    // Redis's default `normal 0 0 0`: the client is not cut off (Basalt
    // stops executing its input while its replies wait on the socket).
    let mut slow = flood_without_reading(s.port, 400);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(connected(&mut a), 2);
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let want = 400 * (big.len() + "$100000\r\n\r\n".len());
    while total < want {
        let n = slow.read(&mut buf).unwrap();
        assert!(n > 0);
        total += n;
    }
    assert_eq!(total, want);
    drop(slow);

    // Hard limit: cut off at once.
    assert_eq!(
        a.cmd_str(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 2mb 0 0"
        ]),
        b"+OK\r\n"
    );
    assert!(eventually(5, || connected(&mut a) == 1));
    let mut hard = flood_without_reading(s.port, 400);
    assert!(closed_within(&mut hard, 10), "hard limit did not cut");
    assert!(eventually(5, || connected(&mut a) == 1));

    // Soft limit: cut off after its seconds.
    assert_eq!(
        a.cmd_str(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 0 1mb 1"
        ]),
        b"+OK\r\n"
    );
    let start = Instant::now();
    let mut soft = flood_without_reading(s.port, 400);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(connected(&mut a), 2, "soft limit cut before its seconds");
    // (Reading would let the replies drain; this client never reads.)
    assert!(
        eventually(10, || connected(&mut a) == 1),
        "soft limit did not cut"
    );
    assert!(start.elapsed() >= Duration::from_millis(900));
    assert!(closed_within(&mut soft, 10));

    // A client that reads its replies is never cut.
    let mut ok = s.raw();
    for _ in 0..30 {
        assert_eq!(ok.cmd_str(&["GET", "big"]).len(), big.len() + 11);
    }
    // The pubsub class is separate.
    assert_eq!(
        a.cmd_str(&["CONFIG", "GET", "client-output-buffer-limit"]),
        b"*2\r\n$26\r\nclient-output-buffer-limit\r\n$73\r\nnormal 0 1048576 1 slave 268435456 67108864 60 pubsub 33554432 8388608 60\r\n"
            .to_vec()
    );
}

#[test]
fn query_buffer_limit_closes_the_client() {
    let s = TestServer::start(&[]);
    let mut a = s.raw();
    assert_eq!(
        a.cmd_str(&["CONFIG", "SET", "client-query-buffer-limit", "1mb"]),
        b"+OK\r\n"
    );
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n")
        .unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0;
    while sent < 2_000_000 {
        if c.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    assert!(
        closed_within(&mut c, 10),
        "query buffer over the limit kept"
    );
    assert_eq!(a.cmd_str(&["EXISTS", "k"]), b":0\r\n");
    // Under the limit is fine.
    let v = "v".repeat(500_000);
    assert_eq!(a.cmd_str(&["SET", "k", &v]), b"+OK\r\n");
}

#[test]
fn client_no_evict_shows_in_flags() {
    let s = TestServer::start(&[]);
    let mut a = s.raw();
    assert_eq!(a.cmd_str(&["CLIENT", "NO-EVICT", "on"]), b"+OK\r\n");
    let info = String::from_utf8_lossy(&a.cmd_str(&["CLIENT", "INFO"])).into_owned();
    assert!(info.contains(" flags=e "), "{info}");
    let list = String::from_utf8_lossy(&a.cmd_str(&["CLIENT", "LIST"])).into_owned();
    assert!(list.contains(" flags=e "), "{list}");
    assert_eq!(a.cmd_str(&["CLIENT", "NO-EVICT", "off"]), b"+OK\r\n");
    let info = String::from_utf8_lossy(&a.cmd_str(&["CLIENT", "INFO"])).into_owned();
    assert!(info.contains(" flags=N "), "{info}");
}

#[test]
fn tcp_keepalive_is_set_on_accepted_sockets() {
    // Observable from outside only through the kernel: the server's side of
    // the connection shows a keepalive timer in /proc/net/tcp (Linux).
    let Ok(before) = std::fs::read_to_string("/proc/net/tcp") else {
        return;
    };
    let _ = before;
    let s = TestServer::start(&["--tcp-keepalive", "7"]);
    let c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let mut raw = Raw::from_stream(c.try_clone().unwrap());
    assert_eq!(raw.cmd_str(&["PING"]), b"+PONG\r\n");
    let local = c.local_addr().unwrap().port();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    // The server's socket: local port = server port, remote port = ours.
    // Columns: sl local rem st tx:rx tr:tm->when ...; tr 2 = keepalive.
    let want_local = format!(":{:04X}", s.port);
    let want_rem = format!(":{local:04X}");
    let row = table
        .lines()
        .find(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 5 && f[1].ends_with(&want_local) && f[2].ends_with(&want_rem)
        })
        .unwrap_or_else(|| panic!("server socket not found in /proc/net/tcp"));
    let f: Vec<&str> = row.split_whitespace().collect();
    assert!(f[5].starts_with("02:"), "no keepalive timer: {row}");
}

#[test]
fn maxclients_fits_the_open_files_limit() {
    // Under `ulimit -n 100`, maxclients 10000 needs 10032 descriptors: the
    // server raises the limit if it may (root), else lowers maxclients.
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_basalt-server");
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 100 && exec '{bin}' --port 0 --maxclients 10000 --dir '{}'",
            dir.path().display()
        ))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    use std::io::BufRead;
    out.read_line(&mut line).unwrap();
    let port: u16 = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    let mut raw = Raw::connect(port);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let open: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap();
    let max = raw.cmd_str(&["CONFIG", "GET", "maxclients"]);
    if open >= 10032 {
        assert_eq!(max, b"*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n");
    } else {
        assert_eq!(open, 100);
        assert_eq!(max, b"*2\r\n$10\r\nmaxclients\r\n$2\r\n68\r\n");
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A connection that sent one big value does not keep a read buffer the
/// size of that value afterwards: with ten idle connections that each
/// sent 8 MB, used_memory comes back near its start once the values are
/// deleted (before, each kept its grown buffer until it disconnected).
#[test]
fn idle_connections_give_back_big_read_buffers() {
    let s = TestServer::start(&[]);
    let mut a = s.raw();
    let used = |a: &mut Raw| {
        info_field(a, "memory", "used_memory")
            .parse::<u64>()
            .unwrap()
    };
    let before = used(&mut a);
    let value = vec![b'x'; 8 << 20];
    let mut idle = Vec::new();
    for i in 0..10 {
        let mut c = s.raw();
        let key = format!("big{i}");
        assert_eq!(c.cmd(&[b"SET", key.as_bytes(), &value]), b"+OK\r\n");
        idle.push(c);
    }
    assert_eq!(a.cmd_str(&["FLUSHALL", "SYNC"]), b"+OK\r\n");
    let mut after = 0;
    // Freed memory is counted at once; allow the server a moment anyway.
    eventually(5, || {
        after = used(&mut a);
        after < before + (16 << 20)
    });
    assert!(
        after < before + (16 << 20),
        "used_memory {before} -> {after} with ten idle connections that sent 8 MB each"
    );
    // The connections still work.
    for c in &mut idle {
        assert_eq!(c.cmd_str(&["PING"]), b"+PONG\r\n");
    }
}

fn client_id(raw: &mut Raw) -> String {
    let r = raw.cmd_str(&["CLIENT", "ID"]);
    String::from_utf8_lossy(&r[1..r.len() - 2]).into_owned()
}

fn listed(raw: &mut Raw, id: &str) -> bool {
    let r = raw.cmd_str(&["CLIENT", "LIST"]);
    String::from_utf8_lossy(&r).contains(&format!("id={id} "))
}

/// CLIENT KILL reaches a connection waiting for input, and one stuck
/// writing a reply its peer does not read (no output limit for normal
/// clients by default), and SHUTDOWN ends a connection that keeps
/// sending pipelined commands.
#[test]
fn client_kill_reaches_idle_and_stuck_connections() {
    let mut s = TestServer::start(&[]);
    let mut admin = s.raw();
    let mut idle = s.raw();
    assert_eq!(idle.cmd_str(&["PING"]), b"+PONG\r\n");
    let idle_id = client_id(&mut idle);
    let mut stuck = s.raw();
    let stuck_id = client_id(&mut stuck);
    let big = "x".repeat(8 << 20);
    assert_eq!(admin.cmd_str(&["SET", "big", &big]), b"+OK\r\n");
    // 64 MB of replies that nobody reads: the connection's writes stall
    // once the socket buffers are full.
    let mut burst = Vec::new();
    for _ in 0..8 {
        burst.extend_from_slice(&crate::support::resp::encode(&[b"GET", b"big"]));
    }
    stuck.send(&burst);
    // CLIENT LIST shows the reply waiting to go out (omem, as in Redis).
    let mut last = String::new();
    let stalled = eventually(10, || {
        let r = admin.cmd_str(&["CLIENT", "LIST", "ID", &stuck_id]);
        last = String::from_utf8_lossy(&r).into_owned();
        last.contains("cmd=get ")
            && last
                .split(' ')
                .find_map(|f| f.strip_prefix("omem="))
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|v| v >= 1 << 20)
    });
    assert!(stalled, "no output waiting: {last}");

    assert_eq!(
        admin.cmd_str(&["CLIENT", "KILL", "ID", &idle_id]),
        b":1\r\n"
    );
    assert!(idle.closed(), "an idle connection is closed by CLIENT KILL");
    assert_eq!(
        admin.cmd_str(&["CLIENT", "KILL", "ID", &stuck_id]),
        b":1\r\n"
    );
    assert!(
        eventually(5, || !listed(&mut admin, &stuck_id)),
        "a connection stuck writing is closed by CLIENT KILL"
    );
    // It was stuck: far less than the 64 MB came out before the close.
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(n) = stuck.s.read(&mut buf) {
        if n == 0 {
            break;
        }
        got += n;
    }
    assert!(got < 32 << 20, "{got} bytes came out: it was not stuck");
    drop(stuck);

    // A client flooding pipelined commands does not hold up SHUTDOWN.
    let port = s.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut reader = c.try_clone().unwrap();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
            });
            let mut batch = Vec::new();
            for i in 0..64 {
                batch.extend_from_slice(&crate::support::resp::encode(&[
                    b"SET",
                    format!("k{i}").as_bytes(),
                    b"v",
                ]));
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                if c.write_all(&batch).is_err() {
                    break;
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    admin.send(&crate::support::resp::encode(&[b"SHUTDOWN", b"NOSAVE"]));
    let exited = eventually(10, || !s.is_running());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flood.join().unwrap();
    assert!(exited, "SHUTDOWN under a pipelined flood did not finish");
    assert!(started.elapsed() < Duration::from_secs(10));
}
