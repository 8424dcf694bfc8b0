//! Test support: a real `redis-server` on a free loopback port in a temp
//! dir (killed by pid on drop), a minimal RESP client, and value
//! normalisation for comparisons.
#![allow(dead_code, clippy::unwrap_used, clippy::indexing_slicing)]

use basalt_rdb::{Stream, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// `None` (and a note on stderr) when redis-server is not installed.
pub fn redis_available() -> bool {
    if Path::new(REDIS_SERVER).exists() {
        return true;
    }
    assert!(
        std::env::var_os("BASALT_REQUIRE_REDIS").is_none(),
        "{REDIS_SERVER} not found but BASALT_REQUIRE_REDIS is set"
    );
    eprintln!("SKIPPED: {REDIS_SERVER} not installed");
    false
}

pub struct RedisServer {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    /// Start redis-server in a fresh temp dir, loading `rdb` (if given) as
    /// its dump file `x.rdb`.
    pub fn start(rdb: Option<&[u8]>) -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        if let Some(bytes) = rdb {
            std::fs::write(dir.path().join("x.rdb"), bytes).unwrap();
        }
        for _attempt in 0..5 {
            let port = free_port();
            let mut child = Command::new(REDIS_SERVER)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .arg("--dir")
                .arg(dir.path())
                .args(["--dbfilename", "x.rdb", "--save", "", "--appendonly", "no"])
                .args(["--sanitize-dump-payload", "yes", "--daemonize", "no"])
                .arg("--logfile")
                .arg(dir.path().join("redis.log"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    let log =
                        std::fs::read_to_string(dir.path().join("redis.log")).unwrap_or_default();
                    if log.contains("Address already in use") {
                        break;
                    }
                    panic!("redis-server exited ({status}) while starting:\n{log}");
                }
                // A connection reset or closed while the server starts
                // (seen once in a full CI run) means "not yet", as a
                // refused one does.
                if TcpStream::connect(("127.0.0.1", port)).is_ok_and(answers_pong) {
                    return RedisServer { child, port, dir };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("redis-server did not answer PING in time");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("could not start redis-server on a free port");
    }

    pub fn conn(&self) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Conn::new(s)
    }

    pub fn dump_path(&self) -> PathBuf {
        self.dir.path().join("x.rdb")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Resp>>),
}

impl Resp {
    pub fn bulk(&self) -> Vec<u8> {
        match self {
            Resp::Bulk(Some(b)) => b.clone(),
            other => panic!("expected bulk, got {other:?}"),
        }
    }

    pub fn array(&self) -> Vec<Resp> {
        match self {
            Resp::Array(Some(a)) => a.clone(),
            other => panic!("expected array, got {other:?}"),
        }
    }

    pub fn int(&self) -> i64 {
        match self {
            Resp::Int(i) => *i,
            other => panic!("expected integer, got {other:?}"),
        }
    }
}

pub struct Conn {
    r: BufReader<TcpStream>,
}

/// Whether a PING on `s` gets `+PONG` (any error, EOF, timeout or other
/// reply, such as `-LOADING`, is a no).
fn answers_pong(s: TcpStream) -> bool {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut r = BufReader::new(s);
    if r.get_mut().write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut l = String::new();
    r.read_line(&mut l).is_ok() && l == "+PONG\r\n"
}

impl Conn {
    /// Connect to any RESP server at `addr` (`HOST:PORT`).
    #[allow(dead_code)]
    pub fn connect(addr: &str) -> Conn {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Conn::new(s)
    }

    fn new(s: TcpStream) -> Conn {
        Conn {
            r: BufReader::new(s),
        }
    }

    pub fn cmd(&mut self, args: &[&[u8]]) -> Resp {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.r.get_mut().write_all(&out).unwrap();
        self.read()
    }

    /// Run a command and panic on an error reply.
    pub fn ok(&mut self, args: &[&[u8]]) -> Resp {
        match self.cmd(args) {
            Resp::Error(e) => panic!(
                "{:?} failed: {e}",
                args.iter()
                    .map(|a| String::from_utf8_lossy(a))
                    .collect::<Vec<_>>()
            ),
            r => r,
        }
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        l.trim_end_matches("\r\n").to_string()
    }

    fn read(&mut self) -> Resp {
        let l = self.line();
        let (t, rest) = l.split_at(1);
        match t {
            "+" => Resp::Simple(rest.into()),
            "-" => Resp::Error(rest.into()),
            ":" => Resp::Int(rest.parse().unwrap()),
            "$" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return Resp::Bulk(None);
                }
                let mut b = vec![0; n as usize + 2];
                self.r.read_exact(&mut b).unwrap();
                b.truncate(n as usize);
                Resp::Bulk(Some(b))
            }
            "*" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return Resp::Array(None);
                }
                Resp::Array(Some((0..n).map(|_| self.read()).collect()))
            }
            _ => panic!("bad RESP line {l:?}"),
        }
    }
}

/// Canonical form for comparing values: unordered collections sorted,
/// on-disk details (listpack node count) cleared.
pub fn canon(v: &Value) -> Value {
    match v {
        Value::Set(s) => {
            let mut s = s.clone();
            s.sort();
            Value::Set(s)
        }
        Value::Hash(h) => {
            let mut h = h.clone();
            h.sort_by(|a, b| a.field.cmp(&b.field));
            Value::Hash(h)
        }
        Value::SortedSet(z) => {
            let mut z: Vec<(Vec<u8>, f64)> = z
                .iter()
                .map(|(m, s)| (m.clone(), if *s == 0.0 { 0.0 } else { *s }))
                .collect();
            z.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            Value::SortedSet(z)
        }
        Value::Stream(s) => {
            let mut s: Stream = (**s).clone();
            s.listpack_nodes = 0;
            s.nodes.clear();
            s.deleted.clear();
            s.groups.sort_by(|a, b| a.name.cmp(&b.name));
            for g in &mut s.groups {
                g.pel.sort_by_key(|p| p.id);
                g.consumers.sort_by(|a, b| a.name.cmp(&b.name));
                for c in &mut g.consumers {
                    c.pel.sort();
                }
            }
            Value::Stream(Box::new(s))
        }
        other => other.clone(),
    }
}
