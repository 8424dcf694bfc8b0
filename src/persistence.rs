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
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
    let path = dir.join("basalt.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open lock file {}: {e}", path.display()))?;
    file.try_lock_exclusive().map_err(|_| {
        format!(
            "data directory {} is in use by another basalt-server (lock {} is held)",
            dir.display(),
            path.display()
        )
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
        return Err(format!(
            "record names db {db}, but only {} databases are configured",
            srv.ks.num_dbs()
        ));
    }
    client.select(db);
    let mut ranges = Vec::new();
    let limits = Limits {
        max_bulk_len: u32::MAX as usize,
        max_multibulk_len: u32::MAX as usize,
        max_inline_len: u32::MAX as usize,
    };
    let mut reply = Reply::new(false);
    let now_ms = unix_ms();
    while !rest.is_empty() {
        let consumed = match parse_request(rest, &limits, &mut ranges) {
            Ok(Some(Parsed::Command { consumed })) => {
                let argv: Vec<&[u8]> = ranges.iter().map(|r| &rest[r.clone()]).collect();
                let mut ctx = Ctx {
                    srv,
                    client,
                    out: &mut reply,
                    now_ms,
                    loading: true,
                    txn: None,
                };
                commands::execute(&mut ctx, &argv);
                if reply.buf.first() == Some(&b'-') {
                    return Err(format!(
                        "command {:?} failed: {}",
                        String::from_utf8_lossy(argv[0]),
                        String::from_utf8_lossy(&reply.buf).trim_end()
                    ));
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

/// Imports a Redis / Valkey `dump.rdb` (name from `dbfilename`) into the
/// empty keyspace: the migration path. Already-expired keys are dropped,
/// as a Redis master does when loading. Returns the number of keys loaded,
/// or None when there is no such file.
pub fn import_rdb(srv: &Shared) -> Result<Option<u64>, String> {
    let path = {
        let c = srv.config.read();
        c.dir.join(c.get("dbfilename").unwrap_or("dump.rdb"))
    };
    if !path.exists() {
        return Ok(None);
    }
    let t = Instant::now();
    let file =
        basalt_rdb::MappedFile::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file_len = std::fs::metadata(&path).map_or(0, |m| m.len());
    srv.loading_total_bytes.store(file_len, Relaxed);
    let now = unix_ms() as i64;
    let mut n = 0u64;
    let ndb = srv.ks.num_dbs() as u64;
    let lim = srv.config.read().limits;
    let mut reader = file
        .reader(basalt_rdb::DecodeOptions::default())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    while let Some(item) = reader.next() {
        let item = item.map_err(|e| format!("{}: {e}", path.display()))?;
        if n.is_multiple_of(1024) {
            srv.loading_loaded_bytes
                .store(reader.offset().min(file_len), Relaxed);
        }
        let basalt_rdb::Item::Entry(e) = item else {
            continue;
        };
        if e.db >= ndb {
            return Err(format!(
                "{}: key in db {}, but only {ndb} databases are configured",
                path.display(),
                e.db
            ));
        }
        if matches!(e.expire_ms, Some(x) if x <= now) {
            continue;
        }
        let v = crate::convert::from_rdb(&e.value, &lim).map_err(|m| {
            format!(
                "{}: key {:?}: {m}",
                path.display(),
                String::from_utf8_lossy(&e.key)
            )
        })?;
        let mut entry =
            basalt_storage::Entry::with_expire(v, e.expire_ms.map_or(0, |x| x.max(1) as u64));
        entry.lru = srv.evict.stamp(now as u64).fresh();
        let h = basalt_storage::Keyspace::hash(&e.key);
        srv.ks.lock(srv.ks.shard_of(h)).dbs[e.db as usize].insert(h, &e.key, entry);
        n += 1;
    }
    for w in reader.warnings() {
        tracing::warn!("{}: {w}", path.display());
    }
    tracing::info!(
        "imported {n} keys from {} in {:.3}s",
        path.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(Some(n))
}

/// Loads `dir/basalt.snapshot` when the log is off (SAVE/BGSAVE without
/// a log write it there).
pub fn load_standalone_snapshot(srv: &Arc<Shared>) -> Result<(), String> {
    let path = srv.config.read().dir.join(crate::snapshot::STANDALONE_NAME);
    // Dumps of transfers a crash interrupted (see `replication`).
    if let Ok(rd) = path
        .parent()
        .map_or(Err(std::io::Error::other("no dir")), std::fs::read_dir)
    {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(crate::replication::DUMP_PREFIX) {
                tracing::info!("removing stale dump file {name}");
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    if !path.exists() {
        if let Some(n) = import_rdb(srv)? {
            srv.loaded_keys.store(n, Relaxed);
        }
        return Ok(());
    }
    let t = Instant::now();
    srv.loading_total_bytes
        .store(std::fs::metadata(&path).map_or(0, |m| m.len()), Relaxed);
    let (keys, _) = crate::snapshot::load(srv, &path)?;
    srv.loaded_keys.store(keys, Relaxed);
    tracing::info!(
        "snapshot {} loaded: {keys} keys in {:.3}s",
        path.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The `key-load-delay` test knob (microseconds per key loaded, as in
/// Redis): makes a load slow enough for a test to watch its progress.
pub fn key_load_delay(srv: &Shared) -> Option<std::time::Duration> {
    let us: u64 = srv.config.read().get("key-load-delay")?.parse().ok()?;
    (us > 0).then(|| std::time::Duration::from_micros(us))
}

/// Opens the log under `dir/<appenddirname>`, replays it into the
/// keyspace and attaches the writer to `srv`. Runs before clients are
/// served (they get -LOADING meanwhile).
pub fn open_log(srv: &Arc<Shared>) -> Result<(), String> {
    recover_log(srv, false)
}

/// Loads the snapshot and log of the data dir into `srv` exactly as a
/// start would, but changes no file: no torn tail is truncated, no stale
/// snapshot removed, no writer attached (offline export). The caller holds
/// the dir lock. Returns the number of log records replayed.
pub fn load_log_read_only(srv: &Arc<Shared>) -> Result<u64, String> {
    let dir = {
        let c = srv.config.read();
        c.dir
            .join(c.get("appenddirname").unwrap_or("appendonlydir"))
    };
    if !basalt_aof::manifest::manifest_path(&dir).exists() {
        return Err(format!(
            "{}: no Basalt log (manifest missing)",
            dir.display()
        ));
    }
    recover_log(srv, true)?;
    Ok(srv.loading_progress.load(Relaxed))
}

fn recover_log(srv: &Arc<Shared>, read_only: bool) -> Result<(), String> {
    let (dir, policy, recovery, simulate_power_loss, inject_faults) = {
        let c = srv.config.read();
        let name = c
            .get("appenddirname")
            .unwrap_or("appendonlydir")
            .to_string();
        let mode = if c.get("aof-load-truncated") == Some("no") {
            RecoveryMode::Strict
        } else {
            RecoveryMode::TruncateTail
        };
        let mode = if c.get("aof-load-until-damage") == Some("yes") {
            RecoveryMode::LoadUntilDamage
        } else {
            mode
        };
        let sim = c.get("debug-simulate-power-loss") == Some("yes");
        let faults = c.get("debug-aof-fault-injection") == Some("yes");
        (
            c.dir.join(name),
            fsync_policy(&c.appendfsync),
            mode,
            sim,
            faults,
        )
    };
    let mut opts = Options {
        fsync: policy,
        recovery,
        // Connections commit their own batches on a fast disk (see
        // `Log::commit_inline`): no flusher wake-up per batch.
        inline_commit: true,
        ..Options::default()
    };
    if simulate_power_loss {
        tracing::warn!(
            "debug-simulate-power-loss is on: unsynced log writes are held in memory (test mode)"
        );
        opts.fs = Arc::new(crate::powerloss::PowerLossFs::default());
    }
    if inject_faults {
        tracing::warn!(
            "debug-aof-fault-injection is on: DEBUG AOF-FAULT can fail log writes (test mode)"
        );
        let (fs, faults) = basalt_aof::fs::FaultFs::new(opts.fs.clone());
        opts.fs = Arc::new(fs);
        let _ = srv.aof_faults.set(faults);
    }
    let start = Instant::now();
    let fresh = !basalt_aof::manifest::manifest_path(&dir).exists();
    let mut rec = Recovery::open(&dir, opts).map_err(|e| e.to_string())?;
    // Progress for INFO: the snapshot's bytes, then the log's.
    let snap_bytes = rec
        .snapshot()
        .and_then(|s| std::fs::metadata(dir.join(&s.name)).ok())
        .map_or(0, |m| m.len());
    srv.loading_total_bytes
        .store(snap_bytes + rec.progress().1, Relaxed);
    // A data dir with no Basalt state but a Redis dump: import it, then
    // (below, once the log is open) snapshot it into Basalt's own format.
    let imported = if fresh && !read_only {
        import_rdb(srv)?
    } else {
        None
    };
    if let Some(snap) = rec.snapshot() {
        let path = dir.join(&snap.name);
        let t = Instant::now();
        let (keys, covered) =
            crate::snapshot::load(srv, &path).map_err(|e| format!("cannot load snapshot: {e}"))?;
        if covered != snap.covered.0 {
            return Err(format!(
                "{}: covers log position {covered}, the manifest says {}",
                path.display(),
                snap.covered.0
            ));
        }
        srv.loaded_keys.store(keys, Relaxed);
        tracing::info!(
            "snapshot {} loaded: {keys} keys in {:.3}s",
            snap.name,
            t.elapsed().as_secs_f64()
        );
    }
    // A snapshot killed mid-write leaves a temp file; older snapshots whose
    // install was interrupted are not named by the manifest. Neither is
    // ever loaded; remove them.
    let stale_dir = if read_only {
        Err(std::io::Error::other("read-only"))
    } else {
        std::fs::read_dir(&dir)
    };
    if let Ok(rd) = stale_dir {
        let keep = rec.snapshot().map(|s| s.name.clone());
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let stale = name.ends_with(".bsnap.tmp")
                || (name.ends_with(".bsnap") && Some(&name) != keep.as_ref())
                || name.starts_with(crate::replication::DUMP_PREFIX);
            if stale {
                tracing::info!("removing stale snapshot file {name}");
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    srv.loading_loaded_bytes.store(snap_bytes, Relaxed);
    let key_load_delay = key_load_delay(srv);
    let mut replayer = ParallelReplay::new(srv.clone());
    let mut n: u64 = 0;
    loop {
        let r = match rec.next() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => return Err(e.to_string()),
        };
        let lsn = r.lsn;
        replayer.push(r.payload).map_err(|e| {
            format!(
                "{}: record ending at log position {}: {e}",
                dir.display(),
                lsn.0
            )
        })?;
        n += 1;
        if n.is_multiple_of(4096) || key_load_delay.is_some() {
            srv.loading_progress.store(n, Relaxed);
            srv.loading_loaded_bytes
                .store(snap_bytes + rec.progress().0, Relaxed);
        }
        if let Some(d) = key_load_delay {
            std::thread::sleep(d);
        }
    }
    replayer
        .finish()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    if read_only {
        srv.loading_progress.store(n, Relaxed);
        return Ok(());
    }
    let (log, report) = rec.finish().map_err(|e| e.to_string())?;
    if let Some(t) = &report.truncated {
        tracing::warn!(
            "log tail torn by a crash: truncated {} at offset {}, {} bytes dropped",
            t.path.display(),
            t.offset,
            t.dropped
        );
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
    tracing::info!(
        "log replayed: {n} records in {secs:.3}s ({:.0} records/s)",
        n as f64 / secs.max(1e-9)
    );
    srv.stats.dirty.store(0, Relaxed);
    srv.attach_log(log);
    if let Some(n) = imported {
        srv.loaded_keys.store(n, Relaxed);
        crate::snapshot::take(srv).map_err(|e| format!("snapshot of the imported dump: {e}"))?;
    }
    Ok(())
}

/// Replays records on several threads. A key lives in the same shard in
/// every database, so records whose keys all fall in one shard are
/// independent of records for other shards: they go to the worker owning
/// that shard, which applies them in log order. Records touching several
/// shards or none (MSET across shards, FLUSHALL, SWAPDB, transactions)
/// are barriers: every worker drains, then the record runs alone. The
/// result is exactly the sequential replay.
struct ParallelReplay {
    srv: Arc<Shared>,
    workers: Vec<std::sync::mpsc::SyncSender<Job>>,
    joins: Vec<std::thread::JoinHandle<Result<(), String>>>,
    batches: Vec<Vec<Vec<u8>>>,
    main_client: ClientState,
    ranges: Vec<std::ops::Range<usize>>,
}

enum Job {
    Records(Vec<Vec<u8>>),
    Barrier(std::sync::mpsc::SyncSender<()>),
}

const REPLAY_BATCH: usize = 256;

impl ParallelReplay {
    fn new(srv: Arc<Shared>) -> Self {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8);
        let mut workers = Vec::new();
        let mut joins = Vec::new();
        for i in 0..n {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(64);
            let srv = srv.clone();
            let join = std::thread::Builder::new()
                .name(format!("basalt-replay-{i}"))
                .spawn(move || {
                    let mut client = replay_client(&srv);
                    let mut failed: Option<String> = None;
                    for job in rx {
                        match job {
                            Job::Records(recs) => {
                                if failed.is_some() {
                                    continue;
                                }
                                for r in recs {
                                    if let Err(e) = replay_record(&srv, &mut client, &r) {
                                        failed = Some(e);
                                        break;
                                    }
                                }
                            }
                            Job::Barrier(done) => {
                                let _ = done.send(());
                            }
                        }
                    }
                    failed.map_or(Ok(()), Err)
                })
                .expect("spawn replay worker");
            workers.push(tx);
            joins.push(join);
        }
        let main_client = replay_client(&srv);
        ParallelReplay {
            batches: vec![Vec::new(); n],
            srv,
            workers,
            joins,
            main_client,
            ranges: Vec::new(),
        }
    }

    /// The single shard every key of `payload` lives in, if there is one.
    fn shard_of(&mut self, payload: &[u8]) -> Option<usize> {
        let body = payload.get(4..)?;
        let limits = Limits {
            max_bulk_len: u32::MAX as usize,
            max_multibulk_len: u32::MAX as usize,
            max_inline_len: u32::MAX as usize,
        };
        let consumed = match parse_request(body, &limits, &mut self.ranges) {
            Ok(Some(Parsed::Command { consumed })) => consumed,
            _ => return None,
        };
        if consumed != body.len() {
            return None; // several commands: a transaction
        }
        let argv: Vec<&[u8]> = self.ranges.iter().map(|r| &body[r.clone()]).collect();
        let entry = commands::table().resolve(&argv).ok()?;
        let keys = commands::introspect::key_positions(entry.spec, argv.len());
        let ks = &self.srv.ks;
        let mut shard = None;
        for i in keys {
            let s = ks.shard_of(basalt_storage::Keyspace::hash(argv[i]));
            match shard {
                None => shard = Some(s),
                Some(x) if x == s => {}
                Some(_) => return None,
            }
        }
        shard
    }

    fn push(&mut self, payload: &[u8]) -> Result<(), String> {
        match self.shard_of(payload) {
            Some(s) => {
                let w = s % self.workers.len();
                self.batches[w].push(payload.to_vec());
                if self.batches[w].len() >= REPLAY_BATCH {
                    let b = std::mem::take(&mut self.batches[w]);
                    self.workers[w]
                        .send(Job::Records(b))
                        .map_err(|_| "replay worker stopped".to_string())?;
                }
                Ok(())
            }
            None => {
                self.barrier()?;
                replay_record(&self.srv, &mut self.main_client, payload)
            }
        }
    }

    fn barrier(&mut self) -> Result<(), String> {
        for (w, tx) in self.workers.iter().enumerate() {
            let b = std::mem::take(&mut self.batches[w]);
            if !b.is_empty() {
                tx.send(Job::Records(b))
                    .map_err(|_| "replay worker stopped".to_string())?;
            }
        }
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel(self.workers.len());
        for tx in &self.workers {
            tx.send(Job::Barrier(done_tx.clone()))
                .map_err(|_| "replay worker stopped".to_string())?;
        }
        for _ in 0..self.workers.len() {
            done_rx
                .recv()
                .map_err(|_| "replay worker stopped".to_string())?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(), String> {
        self.barrier()?;
        drop(std::mem::take(&mut self.workers));
        for j in std::mem::take(&mut self.joins) {
            j.join()
                .map_err(|_| "replay worker panicked".to_string())??;
        }
        Ok(())
    }
}

fn replay_client(srv: &Shared) -> ClientState {
    let handle = srv.clients.register("replay".into(), String::new(), false);
    srv.clients.unregister(handle.id);
    ClientState::new(handle)
}
