//! Persistence orchestration: the data-dir lock, opening the append-only
//! log, replaying it through the normal command path at start, and the
//! record format the server puts in it.
//!
//! A log record's payload (opaque to the `aof` crate) is
//! `[db u32 LE][one or more RESP commands]`: the commands run in order in
//! that database as one atomic step at replay. Commands are logged as
//! their deterministic *effect* (absolute expiry times, resulting values),
//! so replaying them gives exactly the state that was acknowledged.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use basalt_aof::{FsyncPolicy, Options, Recovery, RecoveryMode};

use crate::client::ClientState;
use crate::commands::{self, Ctx};
use crate::resp::decode::{parse_request, Limits, Parsed};
use crate::resp::Reply;
use crate::shared::{unix_ms, Shared};

/// Holds the exclusive lock on the data directory for the process's life.
pub struct DirLock {
    _file: std::fs::File,
    pub path: PathBuf,
}

/// Creates `dir` if needed and locks it, so two servers never share it.
pub fn lock_dir(dir: &Path) -> Result<DirLock, String> {
    use fs2::FileExt;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
    let path = dir.join("basalt.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open lock file {}: {e}", path.display()))?;
    file.try_lock_exclusive().map_err(|_| {
        format!("data directory {} is in use by another basalt-server (lock {} is held)", dir.display(), path.display())
    })?;
    Ok(DirLock { _file: file, path })
}

pub fn fsync_policy(s: &str) -> FsyncPolicy {
    match s {
        "everysec" => FsyncPolicy::EverySec,
        "no" => FsyncPolicy::No,
        _ => FsyncPolicy::Always,
    }
}

/// Appends one record: `db` then the RESP encoding of `cmds`.
pub fn encode_record(db: usize, cmds: &[&[&[u8]]], out: &mut Vec<u8>) {
    out.extend_from_slice(&(db as u32).to_le_bytes());
    for c in cmds {
        crate::db::encode_command(c, out);
    }
}

/// Replays one record's payload. Errors name what was wrong.
pub fn replay_record(srv: &Shared, client: &mut ClientState, payload: &[u8]) -> Result<(), String> {
    let (db, mut rest) = match payload.split_first_chunk::<4>() {
        Some((d, r)) => (u32::from_le_bytes(*d) as usize, r),
        None => return Err("record shorter than its db header".into()),
    };
    if db >= srv.ks.num_dbs() {
        return Err(format!("record names db {db}, but only {} databases are configured", srv.ks.num_dbs()));
    }
    client.select(db);
    let mut ranges = Vec::new();
    let limits = Limits { max_bulk_len: u32::MAX as usize, max_multibulk_len: u32::MAX as usize, max_inline_len: u32::MAX as usize };
    let mut reply = Reply::new(false);
    while !rest.is_empty() {
        let consumed = match parse_request(rest, &limits, &mut ranges) {
            Ok(Some(Parsed::Command { consumed })) => {
                let argv: Vec<&[u8]> = ranges.iter().map(|r| &rest[r.clone()]).collect();
                let mut ctx = Ctx { srv, client, out: &mut reply, now_ms: unix_ms(), loading: true };
                commands::execute(&mut ctx, &argv);
                if reply.buf.first() == Some(&b'-') {
                    return Err(format!("command {:?} failed: {}", String::from_utf8_lossy(argv[0]), String::from_utf8_lossy(&reply.buf).trim_end()));
                }
                reply.buf.clear();
                consumed
            }
            Ok(Some(Parsed::Skip { consumed })) => consumed,
            _ => return Err("record payload is not a sequence of RESP commands".into()),
        };
        rest = &rest[consumed..];
    }
    Ok(())
}

/// Opens the log under `dir/<appenddirname>`, replays it into the
/// keyspace and attaches the writer to `srv`. Runs before clients are
/// served (they get -LOADING meanwhile).
pub fn open_log(srv: &Arc<Shared>) -> Result<(), String> {
    let (dir, policy, recovery, simulate_power_loss, inject_faults) = {
        let c = srv.config.read();
        let name = c.get("appenddirname").unwrap_or("appendonlydir").to_string();
        let mode = if c.get("aof-load-truncated") == Some("no") { RecoveryMode::Strict } else { RecoveryMode::TruncateTail };
        let mode = if c.get("aof-load-until-damage") == Some("yes") { RecoveryMode::LoadUntilDamage } else { mode };
        let sim = c.get("debug-simulate-power-loss") == Some("yes");
        let faults = c.get("debug-aof-fault-injection") == Some("yes");
        (c.dir.join(name), fsync_policy(&c.appendfsync), mode, sim, faults)
    };
    let mut opts = Options { fsync: policy, recovery, ..Options::default() };
    if simulate_power_loss {
        tracing::warn!("debug-simulate-power-loss is on: unsynced log writes are held in memory (test mode)");
        opts.fs = Arc::new(crate::powerloss::PowerLossFs::default());
    }
    if inject_faults {
        tracing::warn!("debug-aof-fault-injection is on: DEBUG AOF-FAULT can fail log writes (test mode)");
        let (fs, faults) = basalt_aof::fs::FaultFs::new(opts.fs.clone());
        opts.fs = Arc::new(fs);
        let _ = srv.aof_faults.set(faults);
    }
    let start = Instant::now();
    let mut rec = Recovery::open(&dir, opts).map_err(|e| e.to_string())?;
    let handle = srv.clients.register("replay".into(), String::new(), false);
    srv.clients.unregister(handle.id);
    let mut client = ClientState::new(handle);
    let mut n: u64 = 0;
    loop {
        let r = match rec.next() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => return Err(format!("{e} (repair with: basalt-check-aof --fix {})", dir.display())),
        };
        let lsn = r.lsn;
        replay_record(srv, &mut client, r.payload).map_err(|e| format!("{}: record ending at log position {}: {e}", dir.display(), lsn.0))?;
        n += 1;
        if n % 65536 == 0 {
            srv.loading_progress.store(n, Relaxed);
        }
    }
    let (log, report) = rec.finish().map_err(|e| e.to_string())?;
    if let Some(t) = &report.truncated {
        tracing::warn!("log tail torn by a crash: truncated {} at offset {}, {} bytes dropped", t.path.display(), t.offset, t.dropped);
    }
    if let Some(d) = &report.damage {
        tracing::warn!(
            "log loaded only up to damage in {} at offset {} ({}); {} bytes not loaded, kept as {:?} for basalt-check-aof",
            d.path.display(),
            d.offset,
            d.reason,
            d.dropped,
            d.saved_as
        );
    }
    let secs = start.elapsed().as_secs_f64();
    tracing::info!("log replayed: {n} records in {secs:.3}s ({:.0} records/s)", n as f64 / secs.max(1e-9));
    srv.stats.dirty.store(0, Relaxed);
    srv.attach_log(log);
    Ok(())
}
