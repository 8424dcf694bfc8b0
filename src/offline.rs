//! A data directory read without serving it: what `basalt-rdb export
//! --data-dir` builds on.
//!
//! [`DataDir::open`] takes the directory's lock (so no running server can
//! be writing it, and no server can start on it meanwhile), then loads the
//! newest snapshot and replays the log tail with the server's own recovery
//! code ([`crate::persistence::load_log_read_only`], [`crate::snapshot::load`]).
//! No file is changed: a torn log tail is read up to the last whole record
//! and left for the next server start to truncate.

use std::path::Path;
use std::sync::Arc;

use crate::persistence::DirLock;
use crate::shared::Shared;

/// A loaded data directory, locked until dropped.
pub struct DataDir {
    srv: Arc<Shared>,
    _lock: DirLock,
    /// What was loaded, for messages: `"log (N records after snapshot)"`…
    pub source: String,
}

impl DataDir {
    /// Locks and loads `dir`. `server_args` are basalt-server options
    /// (`--appenddirname x`, `--appendonly no`, a config file first), so a
    /// directory written with non-default settings is read as the server
    /// would read it. Memory use is that of the server holding the data.
    pub fn open(dir: &Path, server_args: &[String]) -> Result<DataDir, String> {
        if !dir.is_dir() {
            return Err(format!("{}: not a directory", dir.display()));
        }
        let mut args: Vec<String> = server_args.to_vec();
        args.push("--dir".into());
        args.push(dir.to_string_lossy().into_owned());
        let (cfg, _warnings) = crate::config::from_args(&args).map_err(|e| e.to_string())?;
        let lock = crate::persistence::lock_dir(&cfg.dir).map_err(|e| {
            format!("{e}; stop the server first (the export reads the files it is writing)")
        })?;
        let appendonly = cfg.appendonly;
        let log_dir = cfg
            .dir
            .join(cfg.get("appenddirname").unwrap_or("appendonlydir"));
        let standalone = cfg.dir.join(crate::snapshot::STANDALONE_NAME);
        let srv = Arc::new(Shared::new(cfg));
        let _ = srv.me.set(Arc::downgrade(&srv));
        let has_log = basalt_aof::manifest::manifest_path(&log_dir).exists();
        let source = if has_log && (appendonly || !standalone.exists()) {
            let n = crate::persistence::load_log_read_only(&srv)?;
            format!("{} ({n} log records replayed)", log_dir.display())
        } else if standalone.exists() {
            let (keys, _) = crate::snapshot::load(&srv, &standalone)?;
            format!("{} ({keys} keys)", standalone.display())
        } else {
            return Err(format!(
                "{}: holds no Basalt data ({} or {} expected)",
                dir.display(),
                log_dir.display(),
                standalone.display()
            ));
        };
        Ok(DataDir {
            srv,
            _lock: lock,
            source,
        })
    }

    /// Number of databases.
    pub fn databases(&self) -> usize {
        self.srv.ks.num_dbs()
    }

    /// Calls `f(db, key, value, expire_ms)` for every key not expired at
    /// `now_ms`, database by database. Stops at the first error.
    pub fn for_each<E>(
        &self,
        now_ms: u64,
        mut f: impl FnMut(u64, &[u8], basalt_rdb::Value, Option<i64>) -> Result<(), E>,
    ) -> Result<u64, E> {
        let ks = &self.srv.ks;
        let mut n = 0u64;
        for db in 0..ks.num_dbs() {
            for shard in 0..ks.num_shards() {
                let g = ks.lock(shard);
                let Some(d) = g.dbs.get(db) else { continue };
                for (key, e) in d.iter() {
                    if e.is_expired(now_ms) {
                        continue;
                    }
                    let expire = (e.expire_at != 0).then_some(e.expire_at as i64);
                    f(db as u64, key, crate::convert::to_rdb(&e.value), expire)?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}
