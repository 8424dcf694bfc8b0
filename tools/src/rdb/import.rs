//! `basalt-rdb import FILE --to HOST:PORT` and `--data-dir DIR`.

use super::filter::{Filter, FilterArgs};
use super::resp::{self, Client, Reply};
use super::{scan, Result};
use basalt_rdb::{EncodeOptions, Item};
use std::path::PathBuf;
use std::process::ExitCode;

/// How keys are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// RESTORE with a DUMP payload of a version the target accepts (exact:
    /// stream groups and PELs, LRU/LFU, encodings).
    Restore,
    /// Plain commands (SET, RPUSH, SADD, ZADD, HSET, XADD, ..., PEXPIREAT):
    /// for servers without RESTORE; stream PELs are lost (with a warning).
    Plain,
}

/// Load a dump into a live server (Redis, Valkey or Basalt) with pipelined
/// RESTORE commands, or plain commands, or build a Basalt data dir offline.
///
/// Keys already expired are not sent (--keep-expired sends them too, and
/// the server drops them). Existing keys make the import fail unless
/// --replace or --skip-existing. The payload version is chosen from the
/// server's INFO (Redis 7.0: 10, 7.2: 11, 7.4+: 12, Valkey 8: 11, Valkey 9:
/// 80, older: 9) unless --rdb-version. --tls connects with TLS (rustls),
/// checking the server against --cacert (default: the system's CAs), with
/// --cert/--key for servers that require client certificates.
///
/// --data-dir DIR writes DIR/dump.rdb (RDB 10), which basalt-server imports
/// at its first start in DIR (when there is no log yet).
///
/// Examples:
///   basalt-rdb import dump.rdb --to 127.0.0.1:6379 --replace
///   basalt-rdb import dump.rdb --to 10.0.0.5:6380 --password s3cret --skip-existing --db 0
///   basalt-rdb import dump.rdb --to 127.0.0.1:6379 --mode plain --match 'user:*'
///   basalt-rdb import dump.rdb --to db.example:6380 --tls --cacert ca.crt --cert client.crt --key client.key
///   basalt-rdb import dump.rdb --data-dir /var/lib/basalt
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The dump.
    pub file: PathBuf,
    /// The server, HOST:PORT.
    #[arg(
        long,
        value_name = "HOST:PORT",
        required_unless_present = "data_dir",
        conflicts_with = "data_dir"
    )]
    pub to: Option<String>,
    /// Build a Basalt data dir offline instead (writes DIR/dump.rdb).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// ACL user (with --password).
    #[arg(long)]
    pub user: Option<String>,
    /// Password (AUTH).
    #[arg(long)]
    pub password: Option<String>,
    #[command(flatten)]
    pub tls: super::resp::TlsArgs,
    /// RESTORE payloads or plain commands.
    #[arg(long, value_enum, default_value = "restore")]
    pub mode: Mode,
    /// Payload version for RESTORE (9, 10, 11, 12, 80); default from the server's INFO.
    #[arg(long)]
    pub rdb_version: Option<u32>,
    /// Overwrite existing keys.
    #[arg(long, conflicts_with = "skip_existing")]
    pub replace: bool,
    /// Leave existing keys alone.
    #[arg(long)]
    pub skip_existing: bool,
    /// Also send keys whose expiry has passed.
    #[arg(long)]
    pub keep_expired: bool,
    /// Commands per pipelined batch.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Keys written.
    pub imported: u64,
    /// Keys left alone because they existed (--skip-existing).
    pub skipped: u64,
    /// Keys not sent because they had expired.
    pub expired: u64,
    /// Keys the server refused (first errors kept).
    pub failed: u64,
    /// The first few errors.
    pub errors: Vec<String>,
    /// Function libraries loaded.
    pub functions: u64,
    /// Function libraries that existed (--skip-existing).
    pub skipped_functions: u64,
    /// Warnings (what plain commands could not carry).
    pub warnings: Vec<String>,
}

/// The payload version a server accepts, from its `INFO server`.
pub fn version_for(info: &str) -> u32 {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    let ver = |s: &str| -> (u32, u32) {
        let mut it = s.split('.').map(|x| x.parse::<u32>().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    };
    if field("basalt_version:").is_some() {
        return 10;
    }
    if let Some(v) = field("valkey_version:") {
        return if ver(&v).0 >= 9 { 80 } else { 11 };
    }
    match field("redis_version:").map(|v| ver(&v)) {
        Some((m, _)) if m >= 8 => 12,
        Some((7, n)) if n >= 4 => 12,
        Some((7, 2..=3)) => 11,
        Some((7, _)) => 10,
        _ => 9,
    }
}

/// One key's commands waiting in a batch.
struct Pending {
    key: Vec<u8>,
    /// Replies to expect (SELECT counts as one with an empty key).
    replies: usize,
    select: bool,
}

struct Batch {
    buf: Vec<u8>,
    keys: Vec<Pending>,
    commands: usize,
}

/// Imports into a live server.
pub fn import_to(a: &Args, addr: &str, quiet: bool) -> Result<Outcome> {
    let filter = Filter::new(&a.filter)?;
    let mut c = Client::open(addr, a.user.as_deref(), a.password.as_deref(), &a.tls)?;
    c.wait_loaded()?;
    let info = match c.call(&[b"INFO", b"server"])? {
        Reply::Bulk(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
        _ => String::new(),
    };
    let version = match a.rdb_version {
        Some(v) => v,
        None => version_for(&info),
    };
    let opts = EncodeOptions::for_target(super::dump::target(version)?);
    let mut out = Outcome::default();
    let mut batch = Batch {
        buf: Vec::with_capacity(1 << 20),
        keys: Vec::new(),
        commands: 0,
    };
    let mut db: Option<u64> = None;
    scan(
        &a.file,
        super::decode_options(),
        quiet,
        |_| {},
        |item| {
            let e = match item {
                Item::Entry(e) => e,
                Item::Function(f) => {
                    let mut args: Vec<&[u8]> = vec![b"FUNCTION", b"LOAD"];
                    if a.replace {
                        args.push(b"REPLACE");
                    }
                    args.push(&f.code);
                    match c.call(&args)? {
                        Reply::Error(e) if a.skip_existing && e.contains("already exists") => {
                            out.skipped_functions += 1
                        }
                        Reply::Error(e) => {
                            note(&mut out, &f.library, &format!("FUNCTION LOAD: {e}"))
                        }
                        _ => out.functions += 1,
                    }
                    return Ok(());
                }
                Item::SlotImport { name, ranges } => {
                    out.warnings
                        .push(basalt_rdb::slot_import_warning(&name, &ranges));
                    return Ok(());
                }
                _ => return Ok(()),
            };
            if !filter.accepts(&e) || e.value.is_empty_collection() {
                return Ok(());
            }
            if !a.keep_expired && e.expire_ms.is_some_and(|x| x <= filter.now) {
                out.expired += 1;
                return Ok(());
            }
            if db != Some(e.db) {
                resp::command(&mut batch.buf, &[b"SELECT", e.db.to_string().as_bytes()]);
                batch.keys.push(Pending {
                    key: Vec::new(),
                    replies: 1,
                    select: true,
                });
                batch.commands += 1;
                db = Some(e.db);
            }
            let n = match a.mode {
                Mode::Restore => {
                    resp::restore(&e, &opts, a.replace, &mut batch.buf)?;
                    1
                }
                Mode::Plain => {
                    if !a.replace {
                        // Existence is checked per batch before the commands go out.
                        batch.buf.extend_from_slice(b"\0");
                    }
                    let mut cmds = Vec::new();
                    let n = resp::plain(&e, a.replace, &mut cmds, &mut out.warnings)?;
                    batch
                        .buf
                        .extend_from_slice(&(cmds.len() as u64).to_le_bytes());
                    batch.buf.extend_from_slice(&cmds);
                    n
                }
            };
            batch.keys.push(Pending {
                key: e.key,
                replies: n,
                select: false,
            });
            batch.commands += n;
            if batch.commands >= a.batch || batch.buf.len() > 8 << 20 {
                flush(&mut c, &mut batch, a, &mut out)?;
            }
            Ok(())
        },
    )?;
    flush(&mut c, &mut batch, a, &mut out)?;
    Ok(out)
}

fn err_text(r: &Reply) -> Option<&str> {
    match r {
        Reply::Error(e) => Some(e),
        _ => None,
    }
}

fn note(out: &mut Outcome, key: &[u8], msg: &str) {
    out.failed += 1;
    if out.errors.len() < 20 {
        out.errors
            .push(format!("key {:?}: {msg}", String::from_utf8_lossy(key)));
    }
}

fn flush(c: &mut Client, b: &mut Batch, a: &Args, out: &mut Outcome) -> Result<()> {
    if b.keys.is_empty() {
        return Ok(());
    }
    match a.mode {
        Mode::Restore => {
            c.send(&b.buf)?;
            for p in &b.keys {
                let r = c.read()?;
                match err_text(&r) {
                    None if p.select => {}
                    None => out.imported += 1,
                    Some(e) if p.select => return Err(format!("SELECT: {e}").into()),
                    Some(e) if e.starts_with("BUSYKEY") && a.skip_existing => out.skipped += 1,
                    Some(e) => note(out, &p.key, e),
                }
            }
        }
        Mode::Plain => plain_flush(c, b, a, out)?,
    }
    b.buf.clear();
    b.keys.clear();
    b.commands = 0;
    Ok(())
}

/// Plain mode: the batch buffer holds, per key, an optional `\0` marker
/// (check existence first), the length of its commands and the commands;
/// SELECTs are plain RESP.
fn plain_flush(c: &mut Client, b: &Batch, a: &Args, out: &mut Outcome) -> Result<()> {
    // Pass 1: EXISTS for every key, with the SELECTs in between.
    let mut parts: Vec<(bool, &[u8])> = Vec::new();
    let mut pos = 0;
    let buf = &b.buf;
    for p in &b.keys {
        if p.select {
            let len = select_len(&buf[pos..]).ok_or("internal error: bad SELECT in batch")?;
            parts.push((false, &buf[pos..pos + len]));
            pos += len;
            continue;
        }
        let check = !a.replace && buf.get(pos) == Some(&0);
        if check {
            pos += 1;
        }
        let mut n = [0u8; 8];
        n.copy_from_slice(&buf[pos..pos + 8]);
        let len = u64::from_le_bytes(n) as usize;
        pos += 8;
        parts.push((check, &buf[pos..pos + len]));
        pos += len;
    }
    let mut exists = vec![false; b.keys.len()];
    if !a.replace {
        let mut q = Vec::new();
        let mut asked = Vec::new();
        for (i, (p, (_, cmds))) in b.keys.iter().zip(&parts).enumerate() {
            if p.select {
                q.extend_from_slice(cmds);
                asked.push(None);
            } else {
                resp::command(&mut q, &[b"EXISTS", &p.key]);
                asked.push(Some(i));
            }
        }
        c.send(&q)?;
        for x in asked {
            let r = c.read()?;
            if let Some(i) = x {
                exists[i] = r == Reply::Int(1);
            } else if let Some(e) = err_text(&r) {
                return Err(format!("SELECT: {e}").into());
            }
        }
    }
    let mut q = Vec::new();
    let mut expect: Vec<(usize, usize)> = Vec::new();
    for (i, (p, (_, cmds))) in b.keys.iter().zip(&parts).enumerate() {
        if p.select {
            q.extend_from_slice(cmds);
            expect.push((i, 1));
        } else if exists[i] {
            if a.skip_existing {
                out.skipped += 1;
            } else {
                note(out, &p.key, "BUSYKEY Target key name already exists.");
            }
        } else {
            q.extend_from_slice(cmds);
            expect.push((i, p.replies));
        }
    }
    c.send(&q)?;
    for (i, n) in expect {
        let mut first_err = None;
        for _ in 0..n {
            let r = c.read()?;
            if let (None, Some(e)) = (&first_err, err_text(&r)) {
                first_err = Some(e.to_string());
            }
        }
        let p = &b.keys[i];
        match (p.select, first_err) {
            (true, Some(e)) => return Err(format!("SELECT: {e}").into()),
            (true, None) => {}
            (false, None) => out.imported += 1,
            (false, Some(e)) => note(out, &p.key, &e),
        }
    }
    Ok(())
}

/// Length of the RESP array at the start of `b` (a SELECT we wrote).
fn select_len(b: &[u8]) -> Option<usize> {
    let line = |from: usize| -> Option<(usize, usize)> {
        let rel = b.get(from..)?.windows(2).position(|w| w == b"\r\n")?;
        let n: usize = std::str::from_utf8(b.get(from + 1..from + rel)?)
            .ok()?
            .parse()
            .ok()?;
        Some((n, from + rel + 2))
    };
    let (argc, mut at) = line(0)?;
    for _ in 0..argc {
        let (len, next) = line(at)?;
        at = next + len + 2;
    }
    Some(at)
}

/// Writes `DIR/dump.rdb` for basalt-server's first start.
pub fn import_data_dir(a: &Args, dir: &std::path::Path, quiet: bool) -> Result<Outcome> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if dir.join("appendonlydir").exists() || dir.join("basalt.snapshot").exists() {
        return Err(format!(
            "{}: already holds Basalt data (appendonlydir or basalt.snapshot); basalt-server imports dump.rdb only into a fresh data dir",
            dir.display()
        )
        .into());
    }
    let dst = dir.join("dump.rdb");
    if dst.exists() && !a.replace {
        return Err(format!("{}: exists (--replace overwrites it)", dst.display()).into());
    }
    let mut fa = a.filter.clone();
    if !a.keep_expired && !fa.expired {
        fa.not_expired = true;
    }
    let conv = super::convert::Args {
        file: a.file.clone(),
        output: dst,
        rdb_version: 10,
        skip_unrepresentable: false,
        no_compression: false,
        filter: fa,
    };
    let o = super::convert::convert(&conv, quiet)?;
    Ok(Outcome {
        imported: o.keys,
        warnings: o.dropped,
        ..Outcome::default()
    })
}

/// Runs `import`.
pub fn run(a: &Args, quiet: bool) -> Result<ExitCode> {
    let o = match (&a.to, &a.data_dir) {
        (Some(addr), _) => import_to(a, addr, quiet)?,
        (None, Some(dir)) => import_data_dir(a, dir, quiet)?,
        (None, None) => return Err("give --to HOST:PORT or --data-dir DIR".into()),
    };
    for w in &o.warnings {
        eprintln!("basalt-rdb: warning: {w}");
    }
    for e in &o.errors {
        eprintln!("basalt-rdb: error: {e}");
    }
    eprintln!(
        "basalt-rdb: imported {} keys and {} function libraries, skipped {} existing keys and {} libraries, {} expired not sent, {} failed",
        o.imported, o.functions, o.skipped, o.skipped_functions, o.expired, o.failed
    );
    Ok(if o.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
