//! MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE]
//! [AUTH password] [AUTH2 username password] [KEYS key ...]
//!
//! Three steps, so that no shard lock is held while the network is used:
//! the handler checks the arguments and DUMPs the keys (each under its
//! shard lock, released at once) into a [`Job`] left in the client's
//! state; the connection task (`connection::run_one`) sends it with
//! async I/O ([`transfer`]), then runs [`finish`], which deletes the keys
//! the target acknowledged (logged as DEL, with `del` events) and answers.
//!
//! As Redis 7.0 on the wire: `[AUTH ..] SELECT db RESTORE key ttl payload
//! [REPLACE]...` pipelined in one write, then one reply line read for each.
//! Unlike Redis, no connection is cached: each MIGRATE connects anew.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::args::{eq, int};
use super::flags::*;
use super::{cmd, CmdError, CmdResult, CommandSpec, Ctx};
use crate::shared::Shared;

pub static COMMANDS: &[CommandSpec] = &[CommandSpec {
    first_key: 3,
    last_key: 3,
    step: 1,
    group: "generic",
    since: "2.6.0",
    summary: "Atomically transfer a key from a Redis instance to another one.",
    ..cmd("migrate", -6, WRITE | CAT_KEYSPACE | CAT_DANGEROUS, migrate)
}];

/// One key to send: its DUMP payload and remaining TTL (0: none).
pub struct Item {
    pub key: Vec<u8>,
    pub ttl_ms: u64,
    pub payload: Vec<u8>,
}

/// A MIGRATE whose keys are dumped, waiting for the connection task.
pub struct Job {
    host: String,
    /// None when the argument is no TCP port (Redis fails to write then).
    port: Option<u16>,
    db: i64,
    timeout: Duration,
    copy: bool,
    replace: bool,
    /// (username, password) of AUTH / AUTH2.
    auth: Option<(Option<Vec<u8>>, Vec<u8>)>,
    items: Vec<Item>,
}

/// What the target answered.
pub struct Outcome {
    /// Per item: the target restored it (its reply was not an error).
    acked: Vec<bool>,
    /// The reply when it is not +OK (without the leading `-`).
    error: Option<Vec<u8>>,
}

/// The argument indexes that are keys, as Redis's `migrateGetKeys`: the
/// key argument, or what follows KEYS when that argument is empty.
pub fn key_positions(argv: &[&[u8]]) -> Vec<usize> {
    if argv.len() < 6 {
        return Vec::new();
    }
    let mut i = 6;
    while i < argv.len() {
        if eq(argv[i], "auth") {
            i += 1;
        } else if eq(argv[i], "auth2") {
            i += 2;
        } else if eq(argv[i], "keys") && argv[3].is_empty() {
            return (i + 1..argv.len()).collect();
        }
        i += 1;
    }
    vec![3]
}

/// `argv` with the AUTH / AUTH2 credentials shown as `(redacted)` (SLOWLOG
/// and MONITOR), as far as Redis's option parser gets.
pub fn redacted<'a>(argv: &[&'a [u8]]) -> Vec<&'a [u8]> {
    let mut v = argv.to_vec();
    let mut j = 6;
    while j < v.len() {
        let more = v.len() - 1 - j;
        if eq(v[j], "auth") && more >= 1 {
            v[j + 1] = b"(redacted)";
            j += 1;
        } else if eq(v[j], "auth2") && more >= 2 {
            v[j + 1] = b"(redacted)";
            v[j + 2] = b"(redacted)";
            j += 2;
        } else if !eq(v[j], "copy") && !eq(v[j], "replace") {
            break;
        }
        j += 1;
    }
    v
}

fn migrate(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    // Options first, then the integers, then the keys: Redis's order.
    let (mut copy, mut replace) = (false, false);
    let mut auth = None;
    let mut keys: &[&[u8]] = &a[3..4];
    let mut j = 6;
    while j < a.len() {
        let more = a.len() - 1 - j;
        if eq(a[j], "copy") {
            copy = true;
        } else if eq(a[j], "replace") {
            replace = true;
        } else if eq(a[j], "auth") {
            if more < 1 {
                return Err(CmdError::Syntax);
            }
            auth = Some((None, a[j + 1].to_vec()));
            j += 1;
        } else if eq(a[j], "auth2") {
            if more < 2 {
                return Err(CmdError::Syntax);
            }
            auth = Some((Some(a[j + 1].to_vec()), a[j + 2].to_vec()));
            j += 2;
        } else if eq(a[j], "keys") {
            if !a[3].is_empty() {
                return Err(CmdError::msg(
                    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            keys = &a[j + 1..];
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let timeout = int(a[5])?;
    let db = int(a[4])?;
    let timeout = if timeout <= 0 { 1000 } else { timeout as u64 };
    if ctx.client.in_exec || ctx.txn.is_some() {
        // EXEC holds its shards while its commands run, and the network
        // must not be waited on under a lock (see the module doc).
        return Err(CmdError::msg(
            "ERR MIGRATE is not supported inside MULTI/EXEC",
        ));
    }
    let mut items = Vec::with_capacity(keys.len());
    for key in keys {
        // A read lookup, as Redis's (an expired key is gone here).
        let k = ctx.read_key(key);
        let Some(e) = k.get() else { continue };
        let v = crate::convert::to_rdb(&e.value);
        let expire_at = e.expire_at;
        drop(k);
        let ttl_ms = match expire_at {
            0 => 0,
            at => at.saturating_sub(ctx.now_ms).max(1),
        };
        items.push(Item {
            key: key.to_vec(),
            ttl_ms,
            payload: super::keys::dump_payload(&v)?,
        });
    }
    if items.is_empty() {
        ctx.out.simple("NOKEY");
        return Ok(());
    }
    ctx.client.pending_migrate = Some(Box::new(Job {
        host: String::from_utf8_lossy(a[1]).into_owned(),
        port: std::str::from_utf8(a[2]).ok().and_then(|p| p.parse().ok()),
        db,
        timeout: Duration::from_millis(timeout),
        copy,
        replace,
        auth,
        items,
    }));
    Ok(())
}

const IOERR_CONNECT: &str = "IOERR error or timeout connecting to the client";
const IOERR_WRITE: &str = "IOERR error or timeout writing to target instance";
const IOERR_READ: &str = "IOERR error or timeout reading to target instance";

/// Sends the job to its target and reads the replies (no lock held).
pub async fn transfer(srv: &Shared, job: &Job) -> Outcome {
    let mut out = Outcome {
        acked: vec![false; job.items.len()],
        error: None,
    };
    let fail = |mut out: Outcome, msg: &str| {
        out.error = Some(msg.as_bytes().to_vec());
        out
    };
    let t = job.timeout;
    // Redis connects to whatever the port argument parses to and fails
    // writing; only a host that does not resolve fails "connecting".
    let addr = match job.host.parse::<std::net::IpAddr>() {
        Ok(ip) => Some(std::net::SocketAddr::new(ip, job.port.unwrap_or(0))),
        Err(_) => {
            let found =
                tokio::time::timeout(t, tokio::net::lookup_host((job.host.as_str(), 0))).await;
            match found {
                Ok(Ok(mut it)) => it.next().map(|mut a| {
                    a.set_port(job.port.unwrap_or(0));
                    a
                }),
                _ => return fail(out, IOERR_CONNECT),
            }
        }
    };
    let Some(addr) = addr.filter(|_| job.port.is_some_and(|p| p != 0)) else {
        return fail(out, IOERR_WRITE);
    };
    let stream = match tokio::time::timeout(t, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        _ => return fail(out, IOERR_WRITE),
    };
    // A MIGRATE to this very server: Redis (single-threaded, blocked in
    // MIGRATE) cannot answer itself and times out reading. Basalt could
    // answer, but a REPLACE into the same db would then delete the key it
    // just restored: end the same way as Redis, without the wait.
    let to_self = match (stream.local_addr(), stream.peer_addr()) {
        // Our port on a loopback address (any of 127/8, whose source
        // address is 127.0.0.1) or on the address we connected from.
        (Ok(l), Ok(p)) => {
            (p.ip().is_loopback() || l.ip() == p.ip())
                && p.port() as u64 == srv.tcp_port.load(std::sync::atomic::Ordering::Relaxed)
        }
        _ => false,
    };
    if to_self {
        return fail(out, IOERR_READ);
    }
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    if let Some((user, pass)) = &job.auth {
        match user {
            Some(u) => crate::db::encode_command(&[b"AUTH", u, pass], &mut buf),
            None => crate::db::encode_command(&[b"AUTH", pass], &mut buf),
        }
    }
    // Redis sends SELECT when the db differs from the one its cached
    // connection last selected, -1 for a new connection: so for db -1 a
    // new connection sends none, and the keys land in the target's db 0.
    let select = job.db != -1;
    if select {
        let db = itoa::Buffer::new().format(job.db).to_string();
        crate::db::encode_command(&[b"SELECT", db.as_bytes()], &mut buf);
    }
    for it in &job.items {
        let ttl = itoa::Buffer::new().format(it.ttl_ms).to_string();
        let mut args: Vec<&[u8]> = vec![b"RESTORE", &it.key, ttl.as_bytes(), &it.payload];
        if job.replace {
            args.push(b"REPLACE");
        }
        crate::db::encode_command(&args, &mut buf);
    }
    let mut stream = BufReader::new(stream);
    match tokio::time::timeout(t, stream.get_mut().write_all(&buf)).await {
        Ok(Ok(())) => {}
        _ => return fail(out, IOERR_WRITE),
    }
    drop(buf);
    let mut line = Vec::new();
    // An AUTH or SELECT error fails every key; the first error is the one
    // reported, as Redis.
    let mut first_err: Option<Vec<u8>> = None;
    if job.auth.is_some() {
        if !read_line(&mut stream, &mut line, t).await {
            return fail(out, IOERR_READ);
        }
        if line.first() == Some(&b'-') {
            first_err = Some(error_text(&line));
        }
    }
    if select {
        if !read_line(&mut stream, &mut line, t).await {
            return fail(out, IOERR_READ);
        }
        if first_err.is_none() && line.first() == Some(&b'-') {
            first_err = Some(error_text(&line));
        }
    }
    let all_fail = first_err.is_some();
    let mut socket_error = false;
    for ack in out.acked.iter_mut() {
        if !read_line(&mut stream, &mut line, t).await {
            socket_error = true;
            break;
        }
        if line.first() == Some(&b'-') {
            first_err.get_or_insert_with(|| error_text(&line));
        } else if !all_fail {
            *ack = true;
        }
    }
    out.error = match first_err {
        Some(e) => {
            let mut m = b"ERR Target instance replied with error: ".to_vec();
            m.extend_from_slice(&e);
            Some(m)
        }
        None if socket_error => Some(IOERR_READ.as_bytes().to_vec()),
        None => None,
    };
    out
}

/// Reads one reply line within `t`; false on an error, EOF or timeout.
async fn read_line(
    stream: &mut BufReader<tokio::net::TcpStream>,
    line: &mut Vec<u8>,
    t: Duration,
) -> bool {
    line.clear();
    // A reply line longer than this is not one Redis sends to RESTORE,
    // AUTH or SELECT: stop reading (and fail) rather than let a target
    // grow the line without bound.
    const MAX_LINE: u64 = 64 * 1024;
    let mut limited = tokio::io::AsyncReadExt::take(&mut *stream, MAX_LINE);
    matches!(
        tokio::time::timeout(t, limited.read_until(b'\n', line)).await,
        Ok(Ok(n)) if n > 0 && line.ends_with(b"\n")
    )
}

/// A target's error line without its `-` and line end.
fn error_text(line: &[u8]) -> Vec<u8> {
    let l = line.strip_prefix(b"-").unwrap_or(line);
    let l = l.strip_suffix(b"\n").unwrap_or(l);
    l.strip_suffix(b"\r").unwrap_or(l).to_vec()
}

/// After the transfer, back on the keyspace: deletes the keys the target
/// took (unless COPY) and answers. A key that changed while the transfer
/// ran (its DUMP is not the one sent) is kept: the target has the older
/// value, and the newer one is not lost.
pub fn finish(ctx: &mut Ctx<'_>, job: &Job, outcome: Outcome) {
    if !job.copy {
        for (it, _) in job.items.iter().zip(&outcome.acked).filter(|(_, a)| **a) {
            let mut k = ctx.write_key(&it.key);
            let same = k.get().is_some_and(|e| {
                super::keys::dump_payload(&crate::convert::to_rdb(&e.value))
                    .is_ok_and(|p| p == it.payload)
            });
            if same && k.remove().is_some() {
                ctx.propagate(&[b"DEL", &it.key]);
                ctx.notify(crate::notify::GENERIC, b"del", &it.key);
            }
        }
    }
    match outcome.error {
        None => ctx.out.ok(),
        Some(e) => super::reply_error(ctx, &CmdError::Bytes(e)),
    }
}
