//! A raw RESP client: sends exact bytes and reads back exactly one reply
//! (parsed only far enough to know where it ends), for byte-for-byte
//! comparisons and protocol edge cases.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Raw {
    pub s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        s.set_nodelay(true).ok();
        Raw { s, buf: Vec::new() }
    }

    pub fn from_stream(s: TcpStream) -> Raw {
        s.set_nodelay(true).ok();
        Raw { s, buf: Vec::new() }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("write");
    }

    /// Sends a command as a RESP array.
    pub fn cmd(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(&encode(args));
        self.read_reply().expect("reply")
    }

    pub fn cmd_str(&mut self, args: &[&str]) -> Vec<u8> {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.cmd(&a)
    }

    /// Reads one complete reply; None on EOF.
    pub fn read_reply(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(n) = reply_len(&self.buf) {
                let r = self.buf[..n].to_vec();
                self.buf.drain(..n);
                return Some(r);
            }
            let mut tmp = [0u8; 65536];
            match self.s.read(&mut tmp) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(_) => return None,
            }
        }
    }

    /// True if the server closed the connection (reads EOF).
    pub fn closed(&mut self) -> bool {
        let mut tmp = [0u8; 1024];
        loop {
            match self.s.read(&mut tmp) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    }
}

pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

fn line_end(b: &[u8], from: usize) -> Option<usize> {
    b[from..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| from + p)
}

/// Length of the first complete RESP2/RESP3 reply in `b`, if complete.
pub fn reply_len(b: &[u8]) -> Option<usize> {
    value_end(b, 0)
}

fn value_end(b: &[u8], at: usize) -> Option<usize> {
    let t = *b.get(at)?;
    let le = line_end(b, at)?;
    if matches!(t, b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(') {
        // Simple lines may hold any bytes (errors echo arguments).
        return Some(le + 2);
    }
    let head = std::str::from_utf8(&b[at + 1..le]).ok()?;
    match t {
        b'$' | b'=' | b'!' => {
            let n: i64 = head.parse().ok()?;
            if n < 0 {
                return Some(le + 2);
            }
            let end = le + 2 + n as usize + 2;
            (b.len() >= end).then_some(end)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n: i64 = head.parse().ok()?;
            let mut pos = le + 2;
            if n < 0 {
                return Some(pos);
            }
            let items = if t == b'%' || t == b'|' { n * 2 } else { n };
            for _ in 0..items {
                pos = value_end(b, pos)?;
            }
            Some(pos)
        }
        _ => None,
    }
}
