//! `basalt-rdb export --from HOST:PORT -o dump.rdb` and
//! `basalt-rdb export --data-dir DIR -o dump.rdb` (offline).

use super::filter::{Filter, FilterArgs};
use super::resp::{Client, Reply};
use super::Result;
use basalt_rdb::{decode_dump, DecodeOptions, EncodeOptions, Entry, Writer};
use std::io::{BufRead, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// How the dump is pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// SYNC as a replica (`REPLCONF rdb-only 1`, as `redis-cli --rdb`), falling back to scan.
    Auto,
    /// `REPLCONF rdb-only 1` + `SYNC`: the server's own dump (Redis, Valkey).
    Sync,
    /// SCAN + DUMP + PEXPIRETIME per key, written with Basalt's writer
    /// (any server with DUMP, Basalt included; functions are not copied).
    Scan,
}

/// Pull a dump from a live server, or read a stopped Basalt's data dir,
/// into an RDB file.
///
/// With SYNC the file is the server's own dump, checked after the transfer;
/// filters or --rdb-version then rewrite it (as `convert`). With SCAN + DUMP
/// every key is fetched with its absolute expiry and written as RDB
/// --rdb-version (default: what the server itself writes). With --data-dir
/// the directory's snapshot and log tail are loaded by Basalt's own
/// recovery code, under the directory's lock (the server must be stopped;
/// no file in it is changed), and written as RDB --rdb-version (default
/// 10); expired keys are left out. The output is renamed into place only
/// when complete.
///
/// Examples:
///   basalt-rdb export --from 127.0.0.1:6379 -o dump.rdb
///   basalt-rdb export --from 127.0.0.1:6380 -o dump.rdb --method scan --match 'user:*'
///   basalt-rdb export --from 127.0.0.1:6379 --password s3cret -o v9.rdb --rdb-version 9
///   basalt-rdb export --data-dir ./data -o dump.rdb
///   basalt-rdb export --data-dir ./data --server-config basalt.conf -o dump.rdb
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The server, HOST:PORT.
    #[arg(
        long,
        value_name = "HOST:PORT",
        required_unless_present = "data_dir",
        conflicts_with = "data_dir"
    )]
    pub from: Option<String>,
    /// A stopped basalt-server's data directory (read offline).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// With --data-dir: the basalt.conf the server ran with (for
    /// appendonly / appenddirname / databases).
    #[arg(long, value_name = "FILE", requires = "data_dir")]
    pub server_config: Option<PathBuf>,
    /// Where to write the dump.
    #[arg(long, short)]
    pub output: PathBuf,
    /// ACL user (with --password).
    #[arg(long)]
    pub user: Option<String>,
    /// Password (AUTH).
    #[arg(long)]
    pub password: Option<String>,
    #[command(flatten)]
    pub tls: super::resp::TlsArgs,
    /// How to pull the data.
    #[arg(long, value_enum, default_value = "auto")]
    pub method: Method,
    /// RDB version of the output (9, 10, 11, 12, 80).
    #[arg(long)]
    pub rdb_version: Option<u32>,
    /// Keys per SCAN / pipelined DUMP batch.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    #[command(flatten)]
    pub filter: FilterArgs,
}

fn tmp_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

fn filtered(f: &FilterArgs) -> bool {
    !f.db.is_empty()
        || f.glob.is_some()
        || f.regex.is_some()
        || !f.types.is_empty()
        || f.min_size.is_some()
        || f.expired
        || f.not_expired
}

/// Pulls the server's dump with `REPLCONF rdb-only 1` + `SYNC` into `dst`.
/// `Ok(false)` when the server does not support it.
/// How `sync` ended when it did not fail.
enum Synced {
    /// The dump is in `dst`.
    Done,
    /// The server refused (REPLCONF rdb-only unknown, or SYNC answered
    /// an error, e.g. Basalt with keys RDB 10 cannot hold): its reply.
    Refused(String),
}

fn sync(c: &mut Client, dst: &Path) -> Result<Synced> {
    match c.call(&[b"REPLCONF", b"rdb-only", b"1"])? {
        Reply::Simple(_) => {}
        _ => return Ok(Synced::Refused("REPLCONF rdb-only is not supported".into())),
    }
    c.send(b"*1\r\n$4\r\nSYNC\r\n")?;
    let r = c.reader();
    // Newlines are keep-alives while the server prepares the dump.
    let mut line = Vec::new();
    loop {
        line.clear();
        r.read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Err("connection closed before the dump arrived".into());
        }
        if line != b"\n" {
            break;
        }
    }
    let head = String::from_utf8_lossy(&line).trim_end().to_string();
    if let Some(e) = head.strip_prefix('-') {
        return Ok(Synced::Refused(format!("SYNC: {e}")));
    }
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(dst)?);
    if let Some(mark) = head.strip_prefix("$EOF:") {
        // Diskless: the payload ends with the 40-byte mark.
        let mark = mark.as_bytes().to_vec();
        let mut tail: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Err("connection closed in the middle of the dump".into());
            }
            tail.extend_from_slice(&buf[..n]);
            if tail.ends_with(&mark) {
                tail.truncate(tail.len() - mark.len());
                out.write_all(&tail)?;
                break;
            }
            if tail.len() > mark.len() {
                let keep = tail.split_off(tail.len() - mark.len());
                out.write_all(&tail)?;
                tail = keep;
            }
        }
    } else if let Some(len) = head.strip_prefix('$').and_then(|n| n.parse::<u64>().ok()) {
        let copied = std::io::copy(&mut r.take(len), &mut out)?;
        if copied != len {
            return Err(format!("connection closed after {copied} of {len} bytes").into());
        }
    } else {
        return Err(format!("SYNC: unexpected reply {head:?}").into());
    }
    let f = out.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    Ok(Synced::Done)
}

/// Non-empty databases from `INFO keyspace`.
fn databases(c: &mut Client) -> Result<Vec<u64>> {
    let info = match c.call(&[b"INFO", b"keyspace"])? {
        Reply::Bulk(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
        r => return Err(format!("INFO keyspace: {r:?}").into()),
    };
    Ok(info
        .lines()
        .filter_map(|l| l.strip_prefix("db")?.split(':').next()?.parse().ok())
        .collect())
}

fn bulk_keys(r: &Reply) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    let Reply::Array(Some(a)) = r else {
        return None;
    };
    let (Some(Reply::Bulk(Some(cursor))), Some(Reply::Array(Some(keys)))) = (a.first(), a.get(1))
    else {
        return None;
    };
    let keys = keys
        .iter()
        .filter_map(|k| {
            if let Reply::Bulk(Some(b)) = k {
                Some(b.clone())
            } else {
                None
            }
        })
        .collect();
    Some((cursor.clone(), keys))
}

/// SCAN + DUMP into `dst` as RDB `version`. Returns keys written.
fn scan_dump(c: &mut Client, dst: &Path, version: u32, a: &Args, filter: &Filter) -> Result<u64> {
    let opts = EncodeOptions::for_target(super::dump::target(version)?);
    let file = std::fs::File::create(dst)?;
    let mut w = Writer::new(BufWriter::with_capacity(1 << 20, file), opts)?;
    w.aux(b"redis-ver", b"7.0.15")?;
    w.aux(b"redis-bits", b"64")?;
    let now = super::filter::unix_ms();
    w.aux(b"ctime", (now / 1000).to_string().as_bytes())?;
    let mut n = 0u64;
    let mut pexpiretime = true;
    for db in databases(c)? {
        if !a.filter.db.is_empty() && !a.filter.db.contains(&db) {
            continue;
        }
        if let Reply::Error(e) = c.call(&[b"SELECT", db.to_string().as_bytes()])? {
            return Err(format!("SELECT {db}: {e}").into());
        }
        let mut cursor = b"0".to_vec();
        let count = a.batch.to_string();
        loop {
            let mut args: Vec<&[u8]> = vec![b"SCAN", &cursor, b"COUNT", count.as_bytes()];
            if let Some(g) = &a.filter.glob {
                args.push(b"MATCH");
                args.push(g.as_bytes());
            }
            let r = c.call(&args)?;
            let (next, keys) =
                bulk_keys(&r).ok_or_else(|| format!("SCAN: unexpected reply {r:?}"))?;
            let mut q = Vec::new();
            for k in &keys {
                super::resp::command(&mut q, &[b"DUMP", k]);
                let ttl: &[u8] = if pexpiretime { b"PEXPIRETIME" } else { b"PTTL" };
                super::resp::command(&mut q, &[ttl, k]);
            }
            c.send(&q)?;
            let mut replies = Vec::with_capacity(keys.len());
            for _ in &keys {
                replies.push((c.read()?, c.read()?));
            }
            for (k, (dump, ttl)) in keys.into_iter().zip(replies) {
                let payload = match dump {
                    Reply::Bulk(Some(p)) => p,
                    Reply::Bulk(None) => continue, // deleted meanwhile
                    other => {
                        // Never leave a key out silently.
                        return Err(format!(
                            "DUMP {:?}: {}",
                            String::from_utf8_lossy(&k),
                            match other {
                                Reply::Error(e) => e,
                                _ => "unexpected reply".to_string(),
                            }
                        )
                        .into());
                    }
                };
                let expire_ms = match ttl {
                    Reply::Int(t) if t < 0 => None,
                    Reply::Int(t) if pexpiretime => Some(t),
                    Reply::Int(t) => Some(now + t),
                    Reply::Error(_) if pexpiretime => {
                        // Before Redis 7.0: fall back to PTTL from the next batch on,
                        // and ask for this key's TTL now.
                        pexpiretime = false;
                        match c.call(&[b"PTTL", &k])? {
                            Reply::Int(t) if t >= 0 => Some(now + t),
                            _ => None,
                        }
                    }
                    r => {
                        return Err(
                            format!("TTL of {:?}: {r:?}", String::from_utf8_lossy(&k)).into()
                        )
                    }
                };
                let (value, _) = decode_dump(&payload, &DecodeOptions::default(), None)
                    .map_err(|e| format!("DUMP of {:?}: {e}", String::from_utf8_lossy(&k)))?;
                let e = Entry {
                    db,
                    key: k,
                    value,
                    expire_ms,
                    lru_idle: None,
                    lfu_freq: None,
                    rdb_type: 0,
                };
                if !filter.accepts(&e) {
                    continue;
                }
                w.entry(&e).map_err(|err| {
                    format!(
                        "key {:?}: {err} (choose another --rdb-version)",
                        String::from_utf8_lossy(&e.key)
                    )
                })?;
                n += 1;
            }
            cursor = next;
            if cursor == b"0" {
                break;
            }
        }
    }
    let f = w.finish()?;
    let f = f.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    Ok(n)
}

/// Writes the keys of a stopped Basalt's data dir to `dst` as RDB
/// `version`. Returns (keys written, what was loaded).
fn data_dir_dump(
    dir: &Path,
    dst: &Path,
    version: u32,
    a: &Args,
    filter: &Filter,
) -> Result<(u64, String)> {
    let mut server_args = Vec::new();
    if let Some(c) = &a.server_config {
        server_args.push(c.to_string_lossy().into_owned());
    }
    let data = basalt::offline::DataDir::open(dir, &server_args)?;
    let opts = EncodeOptions::for_target(super::dump::target(version)?);
    let file = std::fs::File::create(dst)?;
    let mut w = Writer::new(BufWriter::with_capacity(1 << 20, file), opts)?;
    let now = super::filter::unix_ms();
    w.standard_aux(basalt::REDIS_VERSION, (now / 1000) as u64)?;
    let mut n = 0u64;
    data.for_each(now as u64, |db, key, value, expire_ms| -> Result<()> {
        let e = Entry {
            db,
            key: key.to_vec(),
            value,
            expire_ms,
            lru_idle: None,
            lfu_freq: None,
            rdb_type: 0,
        };
        if !filter.accepts(&e) {
            return Ok(());
        }
        w.entry(&e).map_err(|err| {
            format!(
                "key {:?}: {err} (choose another --rdb-version)",
                String::from_utf8_lossy(&e.key)
            )
        })?;
        n += 1;
        Ok(())
    })?;
    let f = w.finish()?;
    let f = f.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    Ok((n, data.source.clone()))
}

/// Runs `export`.
pub fn run(a: &Args, quiet: bool) -> Result<ExitCode> {
    let filter = Filter::new(&a.filter)?;
    let from = match (&a.from, &a.data_dir) {
        (Some(f), _) => f.clone(),
        (None, Some(dir)) => {
            let tmp = tmp_path(&a.output);
            let version = a.rdb_version.unwrap_or(10);
            return match data_dir_dump(dir, &tmp, version, a, &filter)
                .and_then(|r| Ok((r, std::fs::rename(&tmp, &a.output)?)))
            {
                Ok(((n, source), ())) => {
                    eprintln!(
                        "basalt-rdb: exported {n} keys from {source} to {} (RDB {version})",
                        a.output.display()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    Err(e)
                }
            };
        }
        (None, None) => return Err("give --from HOST:PORT or --data-dir DIR".into()),
    };
    let mut c = Client::open(&from, a.user.as_deref(), a.password.as_deref(), &a.tls)?;
    c.wait_loaded()?;
    let info = match c.call(&[b"INFO", b"server"])? {
        Reply::Bulk(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
        _ => String::new(),
    };
    let tmp = tmp_path(&a.output);
    let result = (|| -> Result<String> {
        let synced = if a.method == Method::Scan {
            Synced::Refused(String::new())
        } else {
            sync(&mut c, &tmp)?
        };
        if let Synced::Done = synced {
            let r = super::check::check(&tmp, true, false)?;
            if let Some((off, msg)) = r.error {
                return Err(
                    format!("the dump received is damaged at offset {off:?}: {msg}").into(),
                );
            }
            if filtered(&a.filter) || a.rdb_version.is_some() {
                let conv = super::convert::Args {
                    file: tmp.clone(),
                    output: a.output.clone(),
                    rdb_version: a.rdb_version.unwrap_or(10),
                    skip_unrepresentable: false,
                    no_compression: false,
                    filter: a.filter.clone(),
                };
                let o = super::convert::convert(&conv, quiet)?;
                let _ = std::fs::remove_file(&tmp);
                return Ok(format!(
                    "{} keys (SYNC, rewritten as RDB {})",
                    o.keys, conv.rdb_version
                ));
            }
            std::fs::rename(&tmp, &a.output)?;
            return Ok(format!("{} keys (SYNC)", r.keys));
        }
        if let Synced::Refused(why) = &synced {
            if a.method == Method::Sync {
                return Err(format!("the server refused: {why} (use --method scan)").into());
            }
            if !why.is_empty() && !quiet {
                eprintln!("{why}; falling back to SCAN + DUMP");
            }
        }
        // A connection that tried SYNC may be in replica state: start afresh.
        let mut c = Client::open(&from, a.user.as_deref(), a.password.as_deref(), &a.tls)?;
        let version = a
            .rdb_version
            .unwrap_or_else(|| super::import::version_for(&info));
        let n = scan_dump(&mut c, &tmp, version, a, &filter)?;
        std::fs::rename(&tmp, &a.output)?;
        Ok(format!("{n} keys (SCAN + DUMP, RDB {version})"))
    })();
    match result {
        Ok(what) => {
            eprintln!("basalt-rdb: exported {what} to {}", a.output.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}
