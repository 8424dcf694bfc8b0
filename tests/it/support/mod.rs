//! Test support: start the real `basalt-server` binary (and, for
//! differential tests, a real `redis-server`) on a free port with a temp
//! data dir, and talk to it over TCP.

#![allow(dead_code)]

pub mod resp;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestServer {
    pub child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    args: Vec<String>,
}

impl TestServer {
    /// Starts basalt-server with `--port 0`, a fresh temp dir and `args`.
    pub fn start(args: &[&str]) -> TestServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = TestServer {
            child: None,
            port: 0,
            dir,
            _tmp: Some(tmp),
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn();
        s
    }

    /// Starts on an existing data dir (kept by the caller).
    pub fn start_in(dir: &Path, args: &[&str]) -> TestServer {
        let mut s = TestServer {
            child: None,
            port: 0,
            dir: dir.to_path_buf(),
            _tmp: None,
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_basalt-server"));
        // DEBUG is off by default (as in Redis 7.0); tests use it, as the
        // RedisServer beside them does. A test's own args come after.
        cmd.arg("--port")
            .arg("0")
            .arg("--dir")
            .arg(&self.dir)
            .args(["--enable-debug-command", "yes"])
            .args(&self.args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn basalt-server");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if let Some(a) = line.trim().strip_prefix("basalt-server listening on tcp ") {
                    let port = a.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
                    let _ = tx.send(port);
                }
                line.clear();
            }
        });
        // Keep stderr drained so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
        });
        let Some(port) = rx.recv_timeout(Duration::from_secs(60)).ok().flatten() else {
            // Do not leave the child running when the test fails here.
            let _ = child.kill();
            let _ = child.wait();
            panic!("server did not print its port");
        };
        self.port = port;
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut c) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                if c.write_all(b"PING\r\n").is_ok() {
                    let mut b = [0u8; 64];
                    if let Ok(n) = c.read(&mut b) {
                        // A password-protected server answers NOAUTH: up too.
                        if b[..n].starts_with(b"+PONG") || b[..n].starts_with(b"-NOAUTH") {
                            return;
                        }
                    }
                }
            }
            assert!(Instant::now() < deadline, "server did not answer PING");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Takes ownership of the temp data dir, so it outlives this server
    /// (for tests that start another server on the same dir).
    pub fn take_dir(&mut self) -> Option<tempfile::TempDir> {
        self._tmp.take()
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> redis::Connection {
        let c = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).expect("client");
        c.get_connection().expect("connect")
    }

    pub fn raw(&self) -> resp::Raw {
        resp::Raw::connect(self.port)
    }

    /// Sends SIGKILL and waits.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Asks for a clean shutdown (SIGTERM) and waits for the exit.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        // SAFETY: sending a signal to our own child by its pid.
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                return c.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A real redis-server for differential tests, if one is installed.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    _tmp: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl RedisServer {
    pub fn available() -> bool {
        Command::new("redis-server")
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    pub fn start(extra: &[&str]) -> RedisServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
                .arg(tmp.path())
                .args([
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--enable-debug-command",
                    "yes",
                ])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let mut s = RedisServer {
                child,
                port,
                _tmp: tempfile::tempdir().expect("tempdir"),
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = s.child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    s._tmp = tmp;
                    return s;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
        panic!("could not start redis-server");
    }

    pub fn raw(&self) -> resp::Raw {
        resp::Raw::connect(self.port)
    }

    /// The server's data directory (where SAVE writes dump.rdb).
    pub fn dir(&self) -> &Path {
        self._tmp.path()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
