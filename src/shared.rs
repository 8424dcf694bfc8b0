//! State shared by every connection: the keyspace, configuration, client
//! registry and counters.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use crate::counter::Counter;
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use basalt_storage::Keyspace;
use parking_lot::{Mutex, RwLock};

use crate::client::Clients;
use crate::config::Config;

/// Redis's instantaneous metrics: the totals sampled every 100 ms, a rate
/// per sample, and the mean of the last 16 rates (`trackInstantaneousMetric`).
#[derive(Default)]
pub struct Instantaneous {
    inner: Mutex<InstState>,
}

#[derive(Default)]
struct InstState {
    /// (commands, net input bytes, net output bytes) at the last sample.
    last: Option<([u64; 3], std::time::Instant)>,
    /// Per-second rates of the last samples, newest last.
    rates: std::collections::VecDeque<[f64; 3]>,
}

const INST_SAMPLES: usize = 16;

impl Instantaneous {
    /// Takes one sample of the totals.
    pub fn sample(&self, totals: [u64; 3]) {
        let now = std::time::Instant::now();
        let mut s = self.inner.lock();
        if let Some((prev, at)) = s.last {
            let secs = now.duration_since(at).as_secs_f64();
            if secs > 0.0 {
                let mut r = [0.0; 3];
                for i in 0..3 {
                    r[i] = totals[i].saturating_sub(prev[i]) as f64 / secs;
                }
                if s.rates.len() == INST_SAMPLES {
                    s.rates.pop_front();
                }
                s.rates.push_back(r);
            }
        }
        s.last = Some((totals, now));
    }

    /// (ops per second, input KB/s, output KB/s), averaged.
    pub fn rates(&self) -> (u64, f64, f64) {
        let s = self.inner.lock();
        let n = s.rates.len().max(1) as f64;
        let sum = s.rates.iter().fold([0.0; 3], |mut a, r| {
            for i in 0..3 {
                a[i] += r[i];
            }
            a
        });
        (
            (sum[0] / n) as u64,
            sum[1] / n / 1024.0,
            sum[2] / n / 1024.0,
        )
    }
}

#[derive(Default)]
pub struct Stats {
    pub commands: Counter,
    pub connections: Counter,
    pub rejected_connections: Counter,
    /// Full synchronisations served (snapshot transfers, INFO sync_full).
    pub sync_full: Counter,
    pub keyspace_hits: Counter,
    pub keyspace_misses: Counter,
    pub expired_keys: Counter,
    pub expired_stale_perc: Counter,
    pub evicted_keys: Counter,
    pub net_input_bytes: Counter,
    pub net_output_bytes: Counter,
    pub dirty: Counter,
    pub error_replies: Counter,
    pub errors: Mutex<HashMap<String, u64>>,
    pub instantaneous: Instantaneous,
}

impl Stats {
    pub fn count_error(&self, code: &str) {
        self.error_replies.fetch_add(1, Relaxed);
        *self.errors.lock().entry(code.to_string()).or_insert(0) += 1;
    }

    pub fn reset(&self) {
        for a in [
            &self.commands,
            &self.connections,
            &self.rejected_connections,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.expired_keys,
            &self.evicted_keys,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.error_replies,
        ] {
            a.store(0, Relaxed);
        }
        self.errors.lock().clear();
    }
}

/// CLIENT PAUSE state.
#[derive(Default)]
pub struct Pause {
    /// Unix ms until which clients are paused; 0 = not paused.
    pub until_ms: AtomicU64,
    /// True: only writes are paused (`WRITE`), false: all commands.
    pub writes_only: AtomicBool,
    pub changed: tokio::sync::Notify,
}

pub struct Shared {
    pub ks: Keyspace,
    pub config: RwLock<Config>,
    pub clients: Clients,
    /// Users and the ACL log.
    pub acl: crate::acl::Acl,
    pub stats: Stats,
    pub pause: Pause,
    pub started: Instant,
    pub run_id: String,
    pub shutdown: tokio::sync::watch::Sender<Option<ShutdownKind>>,
    pub tcp_port: AtomicU64,
    pub active_expire_enabled: AtomicBool,
    pub start_unix_secs: u64,
    /// The append-only log, once opened (None with `appendonly no`).
    pub log: OnceLock<basalt_aof::Log>,
    /// False while the log's last write or fsync failed: writes are refused.
    pub log_ok: AtomicBool,
    pub log_error: parking_lot::Mutex<String>,
    /// True until the log has been replayed; commands get -LOADING.
    pub loading: AtomicBool,
    pub loading_progress: AtomicU64,
    /// Bytes to load at start (snapshot + log segments) and bytes done.
    pub loading_total_bytes: AtomicU64,
    pub loading_loaded_bytes: AtomicU64,
    pub loading_start_ms: AtomicU64,
    /// The fault injector under the log (debug-aof-fault-injection).
    pub aof_faults: OnceLock<Arc<basalt_aof::fs::Faults>>,
    pub snap: crate::snapshot::SnapState,
    /// Keys loaded from the snapshot at start.
    pub loaded_keys: AtomicU64,
    /// A BGSAVE SCHEDULE / BGREWRITEAOF waiting for the current snapshot.
    pub snap_scheduled: AtomicBool,
    /// A weak handle to ourselves, for commands that start threads.
    pub me: OnceLock<std::sync::Weak<Shared>>,
    /// `appendfsync always` (fixed at start).
    pub fsync_always: AtomicBool,
    /// Clients blocked in BLPOP and friends, by key.
    pub blocked: crate::blocking::Registry,
    pub pubsub: crate::pubsub::PubSub,
    pub watches: crate::watch::Watches,
    pub tracking: crate::tracking::Tracking,
    pub monitors: crate::observe::Monitors,
    pub slowlog: crate::observe::SlowLog,
    pub latency: crate::observe::Latency,
    /// `slowlog-log-slower-than` (µs; negative: off), `slowlog-max-len`,
    /// `latency-monitor-threshold` (ms; 0: off), mirrored for the hot path.
    pub slowlog_us: std::sync::atomic::AtomicI64,
    pub slowlog_max: AtomicU64,
    pub latency_ms: AtomicU64,
    /// `latency-tracking`: per-command latency histograms.
    pub latency_tracking: AtomicBool,
    /// `notify-keyspace-events` as flag bits (see `notify`).
    pub notify_flags: std::sync::atomic::AtomicU32,
    /// The TLS context for connections on `tls-port` (None: no TLS).
    /// Replaced by CONFIG SET of a `tls-*` option; a connection keeps the
    /// context it was accepted with.
    pub tls: parking_lot::RwLock<Option<Arc<rustls::ServerConfig>>>,
    /// `client-output-buffer-limit normal`, mirrored for the connections.
    pub normal_limits: crate::pubsub::Limits,
    /// Clients waiting in a blocking command (INFO blocked_clients).
    pub blocked_clients: AtomicU64,
    /// `maxmemory` and eviction (see `evict`).
    pub evict: crate::evict::Evictor,
}

/// Redis's LRU clock resolution: 24 bits of seconds.
pub const LRU_CLOCK_MAX: u64 = (1 << 24) - 1;

/// Seconds between two access-clock readings, across a wrap.
pub fn lru_elapsed(now: u32, then: u32) -> u64 {
    if now >= then {
        (now - then) as u64
    } else {
        (LRU_CLOCK_MAX - then as u64) + now as u64
    }
}

thread_local! {
    static RECORD_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// `RECORD_BUF` is freed after a record that grew it past this.
const RECORD_BUF_KEEP: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownKind {
    Save,
    NoSave,
    Default,
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Shared {
    pub fn new(config: Config) -> Self {
        let ks = Keyspace::new(config.databases, config.shards);
        let fsync_always = config.appendfsync == "always";
        let mut seed = [0u8; 20];
        let t = unix_ms() ^ (std::process::id() as u64) << 32;
        let h = basalt_storage::hash_key(&t.to_le_bytes());
        for (i, b) in seed.iter_mut().enumerate() {
            *b = (h.rotate_left(i as u32 * 7) ^ basalt_storage::hash_key(&[i as u8])) as u8;
        }
        let run_id = seed.iter().map(|b| format!("{b:02x}")).collect();
        let s = Shared {
            ks,
            config: RwLock::new(config),
            clients: Clients::default(),
            acl: crate::acl::Acl::new(),
            stats: Stats::default(),
            pause: Pause::default(),
            started: Instant::now(),
            run_id,
            shutdown: tokio::sync::watch::channel(None).0,
            tcp_port: AtomicU64::new(0),
            active_expire_enabled: AtomicBool::new(true),
            start_unix_secs: unix_ms() / 1000,
            log: OnceLock::new(),
            log_ok: AtomicBool::new(true),
            log_error: parking_lot::Mutex::new(String::new()),
            loading: AtomicBool::new(false),
            loading_progress: AtomicU64::new(0),
            loading_total_bytes: AtomicU64::new(0),
            loading_loaded_bytes: AtomicU64::new(0),
            loading_start_ms: AtomicU64::new(0),
            fsync_always: AtomicBool::new(fsync_always),
            snap: Default::default(),
            loaded_keys: AtomicU64::new(0),
            snap_scheduled: AtomicBool::new(false),
            me: OnceLock::new(),
            aof_faults: OnceLock::new(),
            blocked: Default::default(),
            pubsub: Default::default(),
            watches: Default::default(),
            tracking: Default::default(),
            monitors: Default::default(),
            tls: parking_lot::RwLock::new(None),
            normal_limits: Default::default(),
            blocked_clients: AtomicU64::new(0),
            slowlog: Default::default(),
            latency: Default::default(),
            slowlog_us: Default::default(),
            slowlog_max: Default::default(),
            latency_ms: Default::default(),
            latency_tracking: AtomicBool::new(true),
            notify_flags: Default::default(),
            evict: Default::default(),
        };
        s.apply_runtime_config();
        s
    }

    /// Sets up users at start: `requirepass` for the default user, then
    /// the config file's `user` lines or the `aclfile` (not both, as
    /// Redis). Err: why the server must not start.
    pub fn init_acl(&self) -> Result<(), String> {
        let (pass, users, aclfile, all) = {
            let c = self.config.read();
            (
                c.requirepass.clone(),
                c.users.clone(),
                c.get("aclfile").unwrap_or("").to_string(),
                c.get("acl-pubsub-default") == Some("allchannels"),
            )
        };
        self.acl.set_requirepass(pass.as_bytes());
        if !users.is_empty() && !aclfile.is_empty() {
            return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
        }
        if !users.is_empty() {
            let parsed = crate::acl::parse_user_lines(&users.join("\n"), "config", all)?;
            for (name, rules) in parsed {
                self.acl.put_user(&name, rules);
            }
        }
        if !aclfile.is_empty() {
            crate::commands::acl::load_file(&self.acl, &aclfile, all)?;
        }
        Ok(())
    }

    /// Mirrors settings the hot paths read into atomics (at start and
    /// after CONFIG SET).
    pub fn apply_runtime_config(&self) {
        let c = self.config.read();
        self.notify_flags.store(c.notify_flags, Relaxed);
        self.evict.configure(&c);
        let num = |n: &str| c.get(n).and_then(|v| v.parse::<i64>().ok());
        self.slowlog_us
            .store(num("slowlog-log-slower-than").unwrap_or(10000), Relaxed);
        self.slowlog_max
            .store(num("slowlog-max-len").unwrap_or(128).max(0) as u64, Relaxed);
        self.latency_ms.store(
            num("latency-monitor-threshold").unwrap_or(0).max(0) as u64,
            Relaxed,
        );
        self.latency_tracking
            .store(c.get("latency-tracking") != Some("no"), Relaxed);
        self.tracking.max_keys.store(
            num("tracking-table-max-keys").unwrap_or(1_000_000).max(0) as usize,
            Relaxed,
        );
        if let Some((hard, soft, secs)) = c
            .get("client-output-buffer-limit")
            .and_then(crate::pubsub::parse_limits)
        {
            let l = &self.pubsub.limits;
            l.hard.store(hard, Relaxed);
            l.soft.store(soft, Relaxed);
            l.soft_secs.store(secs, Relaxed);
        }
        if let Some((hard, soft, secs)) = c
            .get("client-output-buffer-limit")
            .and_then(|v| crate::pubsub::parse_class_limits(v, "normal"))
        {
            let l = &self.normal_limits;
            l.hard.store(hard, Relaxed);
            l.soft.store(soft, Relaxed);
            l.soft_secs.store(secs, Relaxed);
        }
    }

    /// Appends one ready-made record payload (`[db][commands]`) to the
    /// log, as one atomic step at replay (EXEC).
    pub fn log_record(&self, payload: &[u8]) {
        let Some(log) = self.log.get() else { return };
        if let Err(e) = log.append(payload) {
            tracing::error!("cannot append to the log: {e}");
        }
    }

    /// Appends a change to the log (when one is attached). Called with the
    /// changed keys' shard locks held, so log order is apply order.
    pub fn log_command(&self, db: usize, args: &[&[u8]]) {
        self.log_commands(db, &[args]);
    }

    /// Appends one record holding several commands (replayed atomically).
    pub fn log_commands(&self, db: usize, cmds: &[&[&[u8]]]) {
        let Some(log) = self.log.get() else { return };
        RECORD_BUF.with(|b| {
            let mut b = b.borrow_mut();
            b.clear();
            crate::persistence::encode_record(db, cmds, &mut b);
            if let Err(e) = log.append(&b) {
                // Only a closed log or an oversized record land here; the
                // reply is held until durable, so nothing false is acked.
                tracing::error!("cannot append to the log: {e}");
            }
            // One big record (a large value) must not leave its size
            // allocated on every thread that wrote one.
            if b.capacity() > RECORD_BUF_KEEP {
                *b = Vec::new();
            }
        });
    }

    pub fn attach_log(&self, log: basalt_aof::Log) {
        let _ = self.log.set(log);
    }

    /// INFO persistence.
    pub fn persistence_info(&self) -> String {
        let st = self.log.get().map(|l| l.status());
        let loading = self.loading.load(Relaxed);
        let mut s = format!(
            "# Persistence\r\nloading:{}\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\n",
            loading as u8
        );
        if loading {
            // As Redis computes them (rdb.c / server.c genRedisInfoString).
            let start = self.loading_start_ms.load(Relaxed);
            let total = self.loading_total_bytes.load(Relaxed);
            let done = self.loading_loaded_bytes.load(Relaxed).min(total);
            let perc = if total == 0 {
                0.0
            } else {
                done as f64 / total as f64 * 100.0
            };
            let elapsed = unix_ms().saturating_sub(start) / 1000;
            let eta = if elapsed == 0 {
                1
            } else {
                elapsed * (total - done) / (done + 1)
            };
            s.push_str(&format!(
                "loading_start_time:{}\r\nloading_total_bytes:{total}\r\nloading_rdb_used_mem:0\r\nloading_loaded_bytes:{done}\r\nloading_loaded_perc:{perc:.2}\r\nloading_eta_seconds:{eta}\r\nloading_loaded_records:{}\r\n",
                start / 1000,
                self.loading_progress.load(Relaxed)
            ));
        }
        let sn = &self.snap;
        let in_prog = sn.in_progress.load(Relaxed);
        let ok = if sn.last_ok.load(Relaxed)
            || sn.saves.load(Relaxed) == 0 && sn.last_error.lock().is_empty()
        {
            "ok"
        } else {
            "err"
        };
        let last_time = match sn.last_save_time.load(Relaxed) {
            0 => self.start_unix_secs,
            t => t,
        };
        let dur = sn.last_duration_ms.load(Relaxed);
        s.push_str(&format!(
            "rdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:-1\r\nrdb_saves:{}\r\nrdb_last_cow_size:{}\r\nrdb_last_load_keys_expired:0\r\nrdb_last_load_keys_loaded:{}\r\nsnapshot_keys_processed:{}\r\n",
            self.stats.dirty.load(Relaxed),
            in_prog as u8,
            last_time,
            ok,
            if sn.saves.load(Relaxed) == 0 { -1 } else { (dur / 1000) as i64 },
            sn.saves.load(Relaxed),
            sn.last_extra_bytes.load(Relaxed),
            self.loaded_keys.load(Relaxed),
            sn.current_keys.load(Relaxed),
        ));
        let rewrite_in_prog = (in_prog && self.log.get().is_some()) as u8;
        let rewrites = sn.rewrites.load(Relaxed);
        let sched = self.snap_scheduled.load(Relaxed) as u8;
        match st {
            None => s.push_str(&format!("aof_enabled:0\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:{sched}\r\naof_last_rewrite_time_sec:-1\r\naof_current_rewrite_time_sec:-1\r\naof_last_bgrewrite_status:ok\r\naof_rewrites:0\r\naof_rewrites_consecutive_failures:0\r\naof_last_write_status:ok\r\naof_last_cow_size:0\r\n")),
            Some(st) => s.push_str(&format!(
                "aof_enabled:1\r\naof_rewrite_in_progress:{rewrite_in_prog}\r\naof_rewrite_scheduled:{sched}\r\naof_last_rewrite_time_sec:-1\r\naof_current_rewrite_time_sec:-1\r\naof_last_bgrewrite_status:{ok}\r\naof_rewrites:{rewrites}\r\naof_rewrites_consecutive_failures:0\r\naof_last_write_status:{}\r\naof_last_cow_size:0\r\naof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:0\r\naof_buffer_length:{}\r\naof_pending_bio_fsync:{}\r\naof_delayed_fsync:0\r\naof_fsync_policy:{}\r\naof_fsyncs:{}\r\naof_records_per_fsync:{:.2}\r\naof_max_records_per_fsync:{}\r\naof_write_failures:{}\r\naof_appended_offset:{}\r\naof_durable_offset:{}\r\n",
                if st.last_write_ok { "ok" } else { "err" },
                st.current_size,
                st.base_size,
                st.appended.0.saturating_sub(st.written.0),
                st.fsync_in_progress as u8,
                match st.policy {
                    basalt_aof::FsyncPolicy::Always => "always",
                    basalt_aof::FsyncPolicy::EverySec => "everysec",
                    basalt_aof::FsyncPolicy::No => "no",
                },
                st.fsyncs,
                st.records_per_fsync,
                st.max_records_per_fsync,
                st.failures,
                st.appended.0,
                st.durable.0,
            )),
        }
        s.push_str("module_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n\r\n");
        s
    }

    pub fn self_arc(&self) -> Option<Arc<Shared>> {
        self.me.get().and_then(|w| w.upgrade())
    }

    /// Coarse access clock in seconds since start (OBJECT IDLETIME).
    /// The access clock at `now_ms` (no clock read): Unix seconds,
    /// wrapping at 2^24 as Redis's LRU clock does, so an idle time set by
    /// RESTORE IDLETIME can reach back before the server started.
    #[inline]
    pub fn lru_clock_at(&self, now_ms: u64) -> u32 {
        ((now_ms / 1000) & LRU_CLOCK_MAX) as u32
    }

    pub fn lru_clock(&self) -> u32 {
        self.lru_clock_at(unix_ms())
    }
}
