//! Protocol edge cases, asserted on raw bytes.

use std::io::Write;
use std::time::Duration;

use crate::support::TestServer;

#[test]
fn inline_and_multibulk() {
    let s = TestServer::start(&[]);
    let mut c = s.raw();
    c.send(b"SET k \"a b\"\r\n");
    assert_eq!(c.read_reply().unwrap(), b"+OK\r\n");
    c.send(b"GET k\n");
    assert_eq!(c.read_reply().unwrap(), b"$3\r\na b\r\n");
    // Pipelined, split at every byte boundary: replies come back in order.
    let pipeline = b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING\r\n";
    for cut in 1..pipeline.len() {
        c.send(&pipeline[..cut]);
        std::thread::sleep(Duration::from_millis(1));
        c.send(&pipeline[cut..]);
        assert_eq!(c.read_reply().unwrap(), b"+PONG\r\n");
        assert_eq!(c.read_reply().unwrap(), b"$2\r\nhi\r\n");
        assert_eq!(c.read_reply().unwrap(), b"+PONG\r\n");
    }
}

fn protocol_error(input: &[u8], expect: &[u8]) {
    let s = TestServer::start(&[]);
    let mut c = s.raw();
    c.send(input);
    assert_eq!(
        c.read_reply().unwrap(),
        expect,
        "input {:?}",
        String::from_utf8_lossy(input)
    );
    assert!(c.closed(), "connection closed after protocol error");
    // The server is fine.
    assert_eq!(s.raw().cmd_str(&["PING"]), b"+PONG\r\n");
}

#[test]
fn protocol_errors_close_the_connection() {
    protocol_error(
        b"*x\r\n",
        b"-ERR Protocol error: invalid multibulk length\r\n",
    );
    protocol_error(
        b"*3000000\r\n",
        b"-ERR Protocol error: invalid multibulk length\r\n",
    );
    protocol_error(
        b"*1\r\n$-5\r\n",
        b"-ERR Protocol error: invalid bulk length\r\n",
    );
    protocol_error(
        b"*1\r\n$99999999999\r\n",
        b"-ERR Protocol error: invalid bulk length\r\n",
    );
    protocol_error(
        b"*1\r\nfoo\r\n",
        b"-ERR Protocol error: expected '$', got 'f'\r\n",
    );
    protocol_error(
        b"SET \"a b\r\n",
        b"-ERR Protocol error: unbalanced quotes in request\r\n",
    );
    let mut long = vec![b'a'; 70 * 1024];
    long.extend_from_slice(b"\r\n");
    protocol_error(&long, b"-ERR Protocol error: too big inline request\r\n");
}

#[test]
fn command_errors_keep_the_connection() {
    let s = TestServer::start(&[]);
    let mut c = s.raw();
    assert_eq!(
        c.cmd_str(&["NOSUCH", "a", "b"]),
        b"-ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' \r\n"
    );
    assert_eq!(
        c.cmd_str(&["GET"]),
        b"-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(c.cmd_str(&["PING"]), b"+PONG\r\n");
}

#[test]
fn resp3_hello() {
    let s = TestServer::start(&[]);
    let mut c = s.raw();
    let r = c.cmd_str(&["HELLO", "3"]);
    assert!(
        r.starts_with(b"%7\r\n$6\r\nserver\r\n"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    assert_eq!(c.cmd_str(&["GET", "missing"]), b"_\r\n");
    assert_eq!(
        c.cmd_str(&["HELLO", "4"]),
        b"-NOPROTO unsupported protocol version\r\n"
    );
    c.cmd_str(&["HELLO", "2"]);
    assert_eq!(c.cmd_str(&["GET", "missing"]), b"$-1\r\n");
}

#[test]
fn half_sent_frame_then_disconnect() {
    let s = TestServer::start(&[]);
    for _ in 0..50 {
        let mut c = s.raw();
        c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc");
        drop(c);
    }
    let mut c = s.raw();
    assert_eq!(c.cmd_str(&["EXISTS", "k"]), b":0\r\n");
}

#[test]
fn huge_line_without_newline_is_cut_off() {
    let s = TestServer::start(&[]);
    let mut c = s.raw();
    // 100 MB of inline garbage with no newline: the server must answer
    // with an error and close long before buffering all of it.
    let chunk = vec![b'x'; 1 << 20];
    let mut sent = 0usize;
    for _ in 0..100 {
        if c.s.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    assert!(sent < 100 << 20 || c.read_reply().is_some());
    assert_eq!(s.raw().cmd_str(&["PING"]), b"+PONG\r\n");
}

#[test]
fn million_tiny_arguments() {
    let s = TestServer::start(&[]);
    let mut c = s.raw();
    let n = 1_000_000usize;
    let mut req = format!("*{}\r\n$4\r\nMSET\r\n", n + 1).into_bytes();
    for i in 0..n / 2 {
        let k = format!("k{i}");
        req.extend_from_slice(format!("${}\r\n{}\r\n$1\r\nv\r\n", k.len(), k).as_bytes());
    }
    c.send(&req);
    assert_eq!(c.read_reply().unwrap(), b"+OK\r\n");
    assert_eq!(
        c.cmd_str(&["DBSIZE"]),
        format!(":{}\r\n", n / 2).into_bytes()
    );
}

#[test]
fn pipelining_client_that_never_reads_stays_bounded() {
    let s = TestServer::start(&[]);
    let mut c = s.raw();
    c.s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    // 100k pipelined GETs of a 10 KB value: about 1 GB of replies if the
    // server buffered them. It must stop reading instead.
    let mut setup = s.raw();
    let big = vec![b'v'; 10 * 1024];
    setup.cmd(&[b"SET", b"big", &big]);
    let one = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n";
    let mut batch = Vec::new();
    for _ in 0..1000 {
        batch.extend_from_slice(one);
    }
    for _ in 0..100 {
        if c.s.write_all(&batch).is_err() {
            break; // the server stopped reading: backpressure works
        }
    }
    let rss = rss_kb(s.child.as_ref().unwrap().id());
    assert!(
        rss < 512 * 1024,
        "server RSS {rss} kB grew with unread replies"
    );
    assert_eq!(setup.cmd_str(&["PING"]), b"+PONG\r\n");
}

fn rss_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn unix_socket_serves_commands() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("basalt.sock");
    let s = TestServer::start(&["--unixsocket", sock.to_str().unwrap()]);
    let mut u = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    u.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nu\r\n$1\r\n1\r\nGET u\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < b"+OK\r\n$1\r\n1\r\n".len() {
        let n = u.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"+OK\r\n$1\r\n1\r\n");
    // The same keyspace over TCP.
    assert_eq!(s.raw().cmd_str(&["GET", "u"]), b"$1\r\n1\r\n");
}

#[test]
fn random_garbage_never_takes_the_server_down() {
    let s = TestServer::start(&[]);
    let mut seed: u64 = 0x2545f4914f6cdd1d;
    for round in 0..200 {
        let mut c = s.raw();
        c.s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let len = 1 + (round * 37) % 3000;
        let mut bytes = Vec::with_capacity(len);
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Bias towards protocol bytes so headers get exercised.
            bytes.push(match seed % 8 {
                0 => b'*',
                1 => b'$',
                2 => b'\r',
                3 => b'\n',
                4 => b'0' + (seed >> 8) as u8 % 10,
                5 => b'-',
                _ => (seed >> 16) as u8,
            });
        }
        let _ = c.s.write_all(&bytes);
        // Whatever it answers, it answers with RESP and stays up.
        while let Some(r) = c.read_reply() {
            assert!(
                matches!(
                    r[0],
                    b'+' | b'-' | b':' | b'$' | b'*' | b'_' | b'%' | b'~' | b',' | b'#' | b'='
                ),
                "{:?}",
                String::from_utf8_lossy(&r)
            );
        }
    }
    assert_eq!(s.raw().cmd_str(&["PING"]), b"+PONG\r\n");
}

/// INFO's instantaneous rates follow the load (Redis's 100 ms samples, mean
/// of the last 16), and fall back to zero when it stops.
#[test]
fn instantaneous_rates_follow_the_load() {
    let s = crate::support::TestServer::start(&[]);
    let mut c = s.raw();
    let field = |c: &mut crate::support::resp::Raw, name: &str| -> f64 {
        let info = String::from_utf8(c.cmd_str(&["INFO", "stats"])).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(field(&mut c, "instantaneous_ops_per_sec"), 0.0);
    let batch: Vec<u8> = b"PING\r\n".repeat(500);
    let start = std::time::Instant::now();
    let mut peak = (0.0, 0.0, 0.0);
    while start.elapsed() < std::time::Duration::from_millis(1500) {
        c.send(&batch);
        for _ in 0..500 {
            c.read_reply().unwrap();
        }
        peak = (
            field(&mut c, "instantaneous_ops_per_sec"),
            field(&mut c, "instantaneous_input_kbps"),
            field(&mut c, "instantaneous_output_kbps"),
        );
    }
    assert!(peak.0 >= 1000.0, "ops/s {}", peak.0);
    assert!(peak.1 > 1.0 && peak.2 > 1.0, "{peak:?}");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert!(field(&mut c, "instantaneous_ops_per_sec") < 100.0);
}

/// CPU time (user + system, clock ticks) of a process, from /proc.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may contain spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn busy_polling_io_thread_serves_every_client_and_then_sleeps() {
    // A long polling window, one IO thread: every connection shares the
    // thread that polls.
    let srv = TestServer::start(&["--io-threads", "1", "--busy-poll-us", "20000"]);
    let mut admin = srv.client();
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("busy-poll-us")
        .query(&mut admin)
        .unwrap();
    assert_eq!(got, ["busy-poll-us", "20000"]);
    let err = redis::cmd("CONFIG")
        .arg("SET")
        .arg("busy-poll-us")
        .arg("0")
        .query::<()>(&mut admin)
        .unwrap_err();
    assert!(
        err.to_string().contains("can't set immutable config"),
        "{err}"
    );

    // Several clients, one request at a time and pipelined, interleaved.
    let handles: Vec<_> = (0..4)
        .map(|c| {
            let mut con = srv.client();
            std::thread::spawn(move || {
                for i in 0..300 {
                    let key = format!("bp:{c}:{i}");
                    let _: () = redis::cmd("SET").arg(&key).arg(i).query(&mut con).unwrap();
                    let v: i64 = redis::cmd("GET").arg(&key).query(&mut con).unwrap();
                    assert_eq!(v, i);
                    if i % 50 == 0 {
                        let mut p = redis::pipe();
                        for j in 0..20 {
                            p.cmd("INCR").arg(format!("bp:{c}:ctr"));
                            p.cmd("GET").arg(format!("bp:{c}:{j}"));
                        }
                        let r: Vec<redis::Value> = p.query(&mut con).unwrap();
                        assert_eq!(r.len(), 40);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let n: i64 = redis::cmd("DBSIZE").query(&mut admin).unwrap();
    assert_eq!(n, 4 * 300 + 4);

    // Idle: the thread stops polling once the window has passed without
    // input, so the server uses (almost) no CPU. A poller that never
    // stopped would burn a whole core: ~100 ticks over this second.
    let pid = srv.child.as_ref().unwrap().id();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let before = cpu_ticks(pid);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let used = cpu_ticks(pid) - before;
    assert!(used < 30, "idle server used {used} ticks in 1 s");
}
