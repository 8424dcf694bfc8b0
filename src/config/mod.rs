//! Configuration: redis.conf syntax and option names.
//!
//! Every option Redis 7.0 has is known (see `options.rs`), so an existing
//! redis.conf loads: options Basalt acts on are marked `IMPLEMENTED`, the
//! others are stored (CONFIG GET shows them) and logged once as ignored.
//! An unknown name is an error naming the file and line. Values are kept
//! as normalized strings (memory in bytes, booleans as yes/no), which is
//! what CONFIG GET returns; hot values are cached in typed fields.

mod options;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::resp::decode::inline_args_owned;

pub const IMMUTABLE: u32 = 1;
pub const IMPLEMENTED: u32 = 2;
/// Left out of glob matches: CONFIG GET answers only the exact name (as
/// Redis's HIDDEN_CONFIG).
pub const HIDDEN: u32 = 4;

pub enum Kind {
    Bool,
    Int,
    Mem,
    Str,
    Enum(&'static [&'static str]),
}

pub struct Opt {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: Kind,
    pub flags: u32,
}

/// Basalt's own options (not in Redis).
/// Redis's hidden testing knobs (not in `CONFIG GET *`, so not in the
/// generated table): CONFIG GET answers them by exact name only.
static HIDDEN_OPTIONS: &[Opt] = &[
    Opt {
        name: "key-load-delay",
        default: "0",
        kind: Kind::Int,
        flags: HIDDEN,
    },
    Opt {
        name: "loading-process-events-interval-bytes",
        default: "2097152",
        kind: Kind::Int,
        flags: HIDDEN,
    },
    Opt {
        name: "rdb-key-save-delay",
        default: "0",
        kind: Kind::Int,
        flags: HIDDEN,
    },
    Opt {
        name: "watchdog-period",
        default: "0",
        kind: Kind::Int,
        flags: HIDDEN,
    },
];

static BASALT_OPTIONS: &[Opt] = &[
    // Keyspace shards; 0 = automatic (16 per IO thread, at least 64).
    Opt {
        name: "shards",
        default: "0",
        kind: Kind::Int,
        flags: IMMUTABLE | IMPLEMENTED,
    },
    // Microseconds an IO thread keeps polling its sockets after its last
    // input before it sleeps; 0 = never; -1 = automatic (see
    // `Config::busy_poll`).
    Opt {
        name: "busy-poll-us",
        default: "-1",
        kind: Kind::Int,
        flags: IMMUTABLE | IMPLEMENTED,
    },
    // At start, load the log up to the first damaged record instead of
    // refusing to start (the damaged part is kept for basalt-check-aof).
    // Test seam: hold log writes in memory until fsync, so kill -9 acts
    // like a power loss (see src/powerloss.rs). Never for production.
    Opt {
        name: "debug-simulate-power-loss",
        default: "no",
        kind: Kind::Bool,
        flags: IMMUTABLE | IMPLEMENTED,
    },
    // Test seam: put a fault injector under the log, driven by
    // DEBUG AOF-FAULT. Never for production.
    Opt {
        name: "debug-aof-fault-injection",
        default: "no",
        kind: Kind::Bool,
        flags: IMMUTABLE | IMPLEMENTED,
    },
    Opt {
        name: "aof-load-until-damage",
        default: "no",
        kind: Kind::Bool,
        flags: IMPLEMENTED,
    },
];

/// Immutable here, mutable (or absent) in Redis: see `Config::set`.
const FIXED_AT_START: &[&str] = &[
    "appendonly",
    "jemalloc-bg-thread",
    "shards",
    "busy-poll-us",
    "debug-simulate-power-loss",
    "debug-aof-fault-injection",
    "tls-port",
];

fn lookup(name: &str) -> Option<&'static Opt> {
    options::OPTIONS
        .iter()
        .chain(HIDDEN_OPTIONS)
        .chain(BASALT_OPTIONS)
        .find(|o| o.name == name)
}

pub fn all_options() -> impl Iterator<Item = &'static Opt> {
    options::OPTIONS
        .iter()
        .chain(HIDDEN_OPTIONS)
        .chain(BASALT_OPTIONS)
}

/// Integer ranges Redis enforces on CONFIG SET (a subset; others: i64).
fn int_range(name: &str) -> (i64, i64) {
    match name {
        "port" | "tls-port" => (0, 65535),
        "databases" => (1, i32::MAX as i64),
        "maxclients" => (1, u32::MAX as i64),
        "hz" => (0, i32::MAX as i64),
        "active-expire-effort" => (1, 10),
        "io-threads" => (0, 128),
        "timeout" | "tcp-keepalive" => (0, i32::MAX as i64),
        "slowlog-max-len" => (0, i64::MAX),
        "auto-aof-rewrite-percentage" => (0, i32::MAX as i64),
        "shards" => (0, 1 << 16),
        "busy-poll-us" => (-1, 1_000_000),
        "maxmemory-samples" => (1, i32::MAX as i64),
        "maxmemory-eviction-tenacity" => (0, 100),
        "lfu-log-factor" | "lfu-decay-time" => (0, i32::MAX as i64),
        _ => (i64::MIN, i64::MAX),
    }
}

/// Bounds Redis enforces on memory options (a subset; others: u64).
fn mem_range(name: &str) -> (u64, u64) {
    match name {
        "proto-max-bulk-len" | "client-query-buffer-limit" => (1 << 20, i64::MAX as u64),
        _ => (0, u64::MAX),
    }
}

/// Parses a memory value as Redis's `memtoull`: digits with an optional
/// unit (k=1000, kb=1024, m, mb, g, gb), case-insensitive.
/// `client-output-buffer-limit <class> <hard> <soft> <secs> ...` applied
/// over `current`: the classes given replace theirs, the result lists all
/// three in bytes, as Redis's CONFIG GET shows it.
pub fn merge_output_limits(current: &str, input: &str) -> Result<String, String> {
    let words: Vec<&str> = input.split_whitespace().collect();
    if !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut classes: [(&str, [u64; 3]); 3] = [
        ("normal", [0, 0, 0]),
        ("slave", [268435456, 67108864, 60]),
        ("pubsub", [33554432, 8388608, 60]),
    ];
    let class_of = |w: &str| match w.to_ascii_lowercase().as_str() {
        "normal" => Some(0),
        "slave" | "replica" => Some(1),
        "pubsub" => Some(2),
        _ => None,
    };
    let cur: Vec<&str> = current.split_whitespace().collect();
    for c in cur.chunks(4).filter(|c| c.len() == 4) {
        if let (Some(i), Some(h), Some(s), Ok(t)) = (
            class_of(c[0]),
            parse_memory(c[1]),
            parse_memory(c[2]),
            c[3].parse::<u64>(),
        ) {
            classes[i].1 = [h, s, t];
        }
    }
    let mut updates = Vec::new();
    for c in words.chunks(4) {
        let i = class_of(c[0])
            .ok_or("Invalid client class specified in buffer limit configuration.")?;
        let bad = || {
            "Error in hard, soft or soft_seconds setting in buffer limit configuration.".to_string()
        };
        let h = parse_memory(c[1]).ok_or_else(bad)?;
        let s = parse_memory(c[2]).ok_or_else(bad)?;
        let t = c[3].parse::<u64>().map_err(|_| bad())?;
        updates.push((i, [h, s, t]));
    }
    for (i, v) in updates {
        classes[i].1 = v;
    }
    Ok(classes
        .iter()
        .map(|(n, [h, s, t])| format!("{n} {h} {s} {t}"))
        .collect::<Vec<_>>()
        .join(" "))
}

pub fn parse_memory(s: &str) -> Option<u64> {
    let l = s.to_ascii_lowercase();
    let (num, mul) = [
        ("gb", 1u64 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1000),
        ("b", 1),
    ]
    .iter()
    .find_map(|(u, m)| l.strip_suffix(u).map(|n| (n.to_string(), *m)))
    .unwrap_or((l.clone(), 1));
    // An empty number is 0, as Redis's `memtoull` (strtoull of "").
    if num.is_empty() {
        return Some(0);
    }
    if !num.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    num.parse::<u64>().ok()?.checked_mul(mul)
}

#[derive(Clone)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    pub file: Option<PathBuf>,
    /// Names set explicitly (file, command line or CONFIG SET).
    pub explicit: Vec<&'static str>,
    // Typed cache of hot or structural values.
    /// `notify-keyspace-events` as flags: kept apart from the string
    /// because Redis's canonical form drops `n` next to `A`.
    pub notify_flags: u32,
    pub port: u16,
    pub bind: Vec<String>,
    pub unixsocket: String,
    pub dir: PathBuf,
    pub databases: usize,
    pub shards: usize,
    pub io_threads: usize,
    /// See the `busy-poll-us` option and `Config::busy_poll`.
    pub busy_poll_us: i64,
    pub proto_max_bulk_len: u64,
    pub client_query_buffer_limit: u64,
    pub timeout: u64,
    pub maxclients: u64,
    pub hz: u64,
    pub active_expire_effort: u64,
    pub requirepass: String,
    pub appendonly: bool,
    pub appendfsync: String,
    pub loglevel: String,
    pub logfile: String,
    /// `user <name> <rules...>` lines from the config file, in order.
    pub users: Vec<String>,
    /// Thresholds of the compact collection encodings.
    pub limits: basalt_storage::Limits,
}

#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Default for Config {
    fn default() -> Self {
        let values = all_options()
            .map(|o| (o.name, o.default.to_string()))
            .collect();
        let mut c = Config {
            notify_flags: 0,
            values,
            file: None,
            explicit: Vec::new(),
            port: 6379,
            bind: vec![],
            unixsocket: String::new(),
            dir: PathBuf::from("./data"),
            databases: 16,
            shards: 64,
            io_threads: 1,
            busy_poll_us: -1,
            proto_max_bulk_len: 512 << 20,
            client_query_buffer_limit: 1 << 30,
            timeout: 0,
            maxclients: 10000,
            hz: 10,
            active_expire_effort: 1,
            requirepass: String::new(),
            appendonly: true,
            appendfsync: "always".into(),
            loglevel: "notice".into(),
            logfile: String::new(),
            users: Vec::new(),
            limits: basalt_storage::Limits::default(),
        };
        c.refresh();
        c
    }
}

impl Config {
    /// How long an IO thread polls for more input before it sleeps.
    ///
    /// Why: a thread asleep in `epoll_wait` has to be woken by the kernel
    /// for each request, and on a VM that wake-up (an IPI, a VM exit) is
    /// paid by the *client's* CPU when its write lands. Measured with
    /// redis-benchmark -P 1 pinned to the other core, Basalt's IO thread
    /// slept about once per 4 requests (49k sleeps per 200k, Redis 25k),
    /// and the client spent 8% more CPU per request than against Redis:
    /// that, not Basalt's own CPU, capped -P 1 throughput. Polling for
    /// 50 us after the last input keeps the thread awake between a
    /// client's requests.
    ///
    /// It costs CPU, so `-1` (automatic) polls only where it cannot take
    /// a core from someone else: when the IO threads are fewer than the
    /// cores in the process's affinity mask, or when the process was
    /// pinned to a subset of the machine's cores (taskset, cpuset: the
    /// operator gave it those cores). Otherwise (IO threads on every core,
    /// the default, with clients that may share them; more IO threads
    /// than cores; a cgroup CPU quota, which polling would spend) it does
    /// not poll.
    pub fn busy_poll(&self) -> std::time::Duration {
        let us = match self.busy_poll_us {
            n if n >= 0 => n as u64,
            _ => {
                // `available_parallelism` also counts a cgroup CPU quota;
                // the affinity mask is the cores the process was given.
                let quota = std::thread::available_parallelism().map_or(1, |n| n.get());
                let cores = affinity_cpus().unwrap_or(quota);
                let online = online_cpus().unwrap_or(cores);
                if quota < cores || self.io_threads > cores {
                    // Under a CPU quota polling would spend it (and be
                    // throttled); more IO threads than cores would poll
                    // against each other.
                    0
                } else if self.io_threads < cores || cores < online {
                    50
                } else {
                    0
                }
            }
        };
        std::time::Duration::from_micros(us)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|s| s.as_str())
    }

    /// (name, value) pairs whose names match a glob, sorted.
    pub fn matching(&self, pattern: &[u8]) -> Vec<(&'static str, &str)> {
        self.values
            .iter()
            .filter(|(k, _)| lookup(k).is_none_or(|o| o.flags & HIDDEN == 0))
            .filter(|(k, _)| basalt_storage::glob_match(pattern, k.as_bytes(), true))
            .map(|(k, v)| (*k, v.as_str()))
            .collect()
    }

    /// Validates and normalizes one value; `Err` is the reason text Redis
    /// puts after "CONFIG SET failed (possibly related to argument ...) - ".
    fn normalize(opt: &Opt, args: &[String]) -> Result<String, String> {
        let joined = args.join(" ");
        match &opt.kind {
            Kind::Bool => match joined.to_ascii_lowercase().as_str() {
                "yes" => Ok("yes".into()),
                "no" => Ok("no".into()),
                _ => Err("argument must be 'yes' or 'no'".into()),
            },
            Kind::Int => {
                let v: i64 = joined
                    .parse()
                    .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
                let (lo, hi) = int_range(opt.name);
                if v < lo || v > hi {
                    return Err(format!("argument must be between {lo} and {hi} inclusive"));
                }
                Ok(v.to_string())
            }
            Kind::Mem if opt.name == "maxmemory-clients" => {
                // Bytes, or a percentage of maxmemory ("10%"), as Redis.
                let bad = || "argument must be a memory or percent value".to_string();
                if let Some(p) = joined.strip_suffix('%') {
                    if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
                        return Err(bad());
                    }
                    let n: u64 = p.parse().map_err(|_| bad())?;
                    if n > 100 {
                        return Err("percentage argument must be less or equal to 100".into());
                    }
                    return Ok(if n == 0 { "0".into() } else { format!("{n}%") });
                }
                Ok(parse_memory(&joined).ok_or_else(bad)?.to_string())
            }
            Kind::Mem => {
                let v = parse_memory(&joined)
                    .ok_or_else(|| "argument must be a memory value".to_string())?;
                let (lo, hi) = mem_range(opt.name);
                if v < lo || v > hi {
                    return Err(format!("argument must be between {lo} and {hi} inclusive"));
                }
                Ok(v.to_string())
            }
            Kind::Enum(choices) => {
                let l = joined.to_ascii_lowercase();
                if choices.contains(&l.as_str()) {
                    Ok(l)
                } else {
                    Err(format!(
                        "argument(s) must be one of the following: {}",
                        choices.join(", ")
                    ))
                }
            }
            Kind::Str => {
                if opt.name == "save" {
                    validate_save(&joined)?;
                }
                if opt.name == "notify-keyspace-events" {
                    let f = crate::notify::parse_flags(&joined).ok_or_else(|| {
                        "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string()
                    })?;
                    return Ok(crate::notify::flags_to_string(f));
                }
                Ok(joined)
            }
        }
    }

    /// Sets an option at runtime (CONFIG SET). Returns Redis's error text.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let lname = name.to_ascii_lowercase();
        let opt = lookup(&lname).ok_or_else(|| {
            format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'")
        })?;
        let immutable = || {
            format!("ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config")
        };
        // Options Redis can change at run time but Basalt fixes at start
        // (and Basalt's own fixed ones) are validated as Redis would, and
        // setting their current value is a no-op, so a client that writes
        // back what CONFIG GET returned (Redis's "CONFIG sanity") succeeds.
        let fixed_here = FIXED_AT_START.contains(&opt.name);
        if opt.flags & IMMUTABLE != 0 && !fixed_here {
            return Err(immutable());
        }
        let mut v = Self::normalize(opt, &[value.to_string()]).map_err(|e| {
            format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {e}")
        })?;
        if opt.name == "client-output-buffer-limit" {
            v = merge_output_limits(self.get(opt.name).unwrap_or(""), &v).map_err(|e| {
                format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {e}")
            })?;
        }
        if opt.name == "notify-keyspace-events" {
            self.notify_flags = crate::notify::parse_flags(value).unwrap_or(0);
        }
        if fixed_here {
            return if self.get(opt.name) == Some(v.as_str()) {
                Ok(())
            } else {
                Err(immutable())
            };
        }
        self.values.insert(opt.name, v);
        if !self.explicit.contains(&opt.name) {
            self.explicit.push(opt.name);
        }
        self.refresh();
        Ok(())
    }

    /// Applies one directive from a file or the command line.
    fn apply_directive(
        &mut self,
        args: &[String],
        warnings: &mut Vec<String>,
    ) -> Result<(), String> {
        let name = args[0].to_ascii_lowercase();
        let opt = lookup(&name)
            .ok_or_else(|| "Bad directive or wrong number of arguments".to_string())?;
        let vals = &args[1..];
        if vals.is_empty() && opt.name != "save" {
            return Err("wrong number of arguments".into());
        }
        let v = if opt.name == "save" {
            // `save ""` resets; several `save` lines accumulate, as in Redis.
            let joined = vals.join(" ");
            if joined.trim().is_empty() {
                String::new()
            } else {
                validate_save(&joined)?;
                if self.explicit.contains(&"save") && !self.values["save"].is_empty() {
                    format!("{} {}", self.values["save"], joined)
                } else {
                    joined
                }
            }
        } else if opt.name == "client-output-buffer-limit" {
            merge_output_limits(
                self.values.get(opt.name).map_or("", |s| s.as_str()),
                &vals.join(" "),
            )?
        } else {
            Self::normalize(opt, vals)?
        };
        if opt.name == "notify-keyspace-events" {
            self.notify_flags = crate::notify::parse_flags(&vals.join(" ")).unwrap_or(0);
        }
        if opt.flags & IMPLEMENTED == 0 && v != opt.default {
            warnings.push(format!(
                "option '{}' is accepted but has no effect in Basalt",
                opt.name
            ));
        }
        self.values.insert(opt.name, v);
        if !self.explicit.contains(&opt.name) {
            self.explicit.push(opt.name);
        }
        Ok(())
    }

    /// Loads `text` (redis.conf syntax). `origin` names it in errors.
    pub fn load_str(
        &mut self,
        text: &str,
        origin: &str,
        warnings: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let args = inline_args_owned(t.as_bytes()).ok_or_else(|| {
                ConfigError(format!("{origin}:{}: unbalanced quotes in '{t}'", i + 1))
            })?;
            let args: Vec<String> = args
                .into_iter()
                .map(|a| String::from_utf8_lossy(&a).into_owned())
                .collect();
            if args.is_empty() {
                continue;
            }
            if args[0].eq_ignore_ascii_case("user") {
                if args.len() < 2 {
                    return Err(ConfigError(format!(
                        "{origin}:{}: '{t}': wrong number of arguments",
                        i + 1
                    )));
                }
                self.users.push(t.to_string());
                continue;
            }
            if args[0].eq_ignore_ascii_case("include") {
                let path = args.get(1).ok_or_else(|| {
                    ConfigError(format!("{origin}:{}: include needs a path", i + 1))
                })?;
                let inner = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError(format!(
                        "{origin}:{}: cannot read include '{path}': {e}",
                        i + 1
                    ))
                })?;
                self.load_str(&inner, path, warnings)?;
                continue;
            }
            self.apply_directive(&args, warnings)
                .map_err(|e| ConfigError(format!("{origin}:{}: '{t}': {e}", i + 1)))?;
        }
        self.refresh();
        Ok(())
    }

    /// Refreshes typed fields from the string values.
    pub fn refresh(&mut self) {
        let g = |n: &str| self.values.get(n).cloned().unwrap_or_default();
        let num = |n: &str| g(n).parse::<u64>().unwrap_or(0);
        self.port = num("port") as u16;
        self.bind = g("bind").split_whitespace().map(str::to_string).collect();
        self.unixsocket = g("unixsocket");
        self.dir = PathBuf::from(g("dir"));
        self.databases = num("databases").max(1) as usize;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        self.io_threads = match num("io-threads") {
            0 => cores,
            n => n as usize,
        };
        self.busy_poll_us = g("busy-poll-us").parse::<i64>().unwrap_or(-1);
        self.shards = match num("shards") {
            0 => (self.io_threads * 16).max(64).next_power_of_two(),
            n => n as usize,
        };
        self.proto_max_bulk_len = num("proto-max-bulk-len");
        self.client_query_buffer_limit = num("client-query-buffer-limit");
        self.timeout = num("timeout");
        self.maxclients = num("maxclients");
        self.hz = num("hz").clamp(1, 500);
        self.active_expire_effort = num("active-expire-effort").clamp(1, 10);
        self.requirepass = g("requirepass");
        self.appendonly = g("appendonly") == "yes";
        self.appendfsync = g("appendfsync");
        self.loglevel = g("loglevel");
        self.logfile = g("logfile");
        let int = |n: &str| g(n).parse::<i64>().unwrap_or(0);
        let cap = |n: &str| int(n).clamp(0, i64::MAX) as usize;
        self.limits = basalt_storage::Limits {
            hash_entries: cap("hash-max-listpack-entries"),
            hash_value: cap("hash-max-listpack-value"),
            set_intset_entries: cap("set-max-intset-entries").min(1 << 30),
            set_listpack_entries: cap("set-max-listpack-entries"),
            set_listpack_value: cap("set-max-listpack-value"),
            zset_entries: cap("zset-max-listpack-entries"),
            zset_value: cap("zset-max-listpack-value"),
            list_size: int("list-max-listpack-size"),
            stream_node_bytes: cap("stream-node-max-bytes"),
            stream_node_entries: cap("stream-node-max-entries"),
        };
    }

    /// CONFIG REWRITE: rewrites the file in place, keeping comments and
    /// order, replacing changed directives and appending new ones.
    pub fn rewrite(&self) -> Result<(), String> {
        self.rewrite_with_users(None)
    }

    /// CONFIG REWRITE; `users` (ACL LIST lines) replace the file's `user`
    /// lines, as Redis does when no `aclfile` is set.
    pub fn rewrite_with_users(&self, users: Option<Vec<String>>) -> Result<(), String> {
        let path = self
            .file
            .as_ref()
            .ok_or_else(|| "ERR The server is running without a config file".to_string())?;
        let old = std::fs::read_to_string(path).unwrap_or_default();
        let mut out = String::new();
        let mut written: Vec<&str> = Vec::new();
        let mut users = users;
        for line in old.lines() {
            let t = line.trim();
            if users.is_some() && t.split_whitespace().next() == Some("user") {
                // All users go where the first `user` line was.
                for u in users.take().unwrap_or_default() {
                    out.push_str(&u);
                    out.push('\n');
                }
                users = Some(Vec::new());
                continue;
            }
            let name = t
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            match lookup(&name) {
                Some(o) if !t.starts_with('#') => {
                    if !written.contains(&o.name) {
                        written.push(o.name);
                        out.push_str(&self.directive(o.name));
                        out.push('\n');
                    }
                }
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        let mut header = false;
        for name in &self.explicit {
            if !written.contains(name) {
                if !header {
                    out.push_str("# Generated by CONFIG REWRITE\n");
                    header = true;
                }
                out.push_str(&self.directive(name));
                out.push('\n');
            }
        }
        for u in users.unwrap_or_default() {
            if !header {
                out.push_str("# Generated by CONFIG REWRITE\n");
                header = true;
            }
            out.push_str(&u);
            out.push('\n');
        }
        let tmp = path.with_extension("rewrite.tmp");
        std::fs::write(&tmp, out).map_err(|e| format!("ERR Rewriting config file: {e}"))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("ERR Rewriting config file: {e}"))?;
        Ok(())
    }

    fn directive(&self, name: &str) -> String {
        let v = self.get(name).unwrap_or("");
        if v.is_empty() {
            format!("{name} \"\"")
        } else if name == "save"
            || name == "bind"
            || name == "client-output-buffer-limit"
            || name == "oom-score-adj-values"
        {
            format!("{name} {v}")
        } else {
            format!("{name} {}", quote(v))
        }
    }

    /// The `save` schedule as (seconds, changes) pairs.
    pub fn save_points(&self) -> Vec<(u64, u64)> {
        let v: Vec<u64> = self
            .get("save")
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        v.chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0], c[1]))
            .collect()
    }
}

fn quote(v: &str) -> String {
    if v.bytes()
        .all(|c| c.is_ascii_graphic() && c != b'"' && c != b'\'' && c != b'\\')
    {
        v.to_string()
    } else {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn validate_save(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.is_empty() {
        return Ok(());
    }
    if !parts.len().is_multiple_of(2) || parts.iter().any(|p| p.parse::<u64>().is_err()) {
        return Err("Invalid save parameters".into());
    }
    Ok(())
}

/// Builds the configuration from `basalt-server [file] [--name value ...]`.
pub fn from_args(args: &[String]) -> Result<(Config, Vec<String>), ConfigError> {
    let mut c = Config::default();
    let mut warnings = Vec::new();
    let mut rest = args;
    if let Some(first) = rest.first() {
        if !first.starts_with("--") {
            let text = std::fs::read_to_string(first)
                .map_err(|e| ConfigError(format!("cannot read config file '{first}': {e}")))?;
            c.load_str(&text, first, &mut warnings)?;
            c.file = Some(std::fs::canonicalize(first).unwrap_or_else(|_| PathBuf::from(first)));
            rest = &rest[1..];
        }
    }
    // `--name v1 v2 --other v` becomes lines "name v1 v2" / "other v".
    let mut lines = String::new();
    for a in rest {
        if let Some(name) = a.strip_prefix("--") {
            if !lines.is_empty() {
                lines.push('\n');
            }
            lines.push_str(name);
        } else {
            lines.push(' ');
            lines.push_str(&quote_arg(a));
        }
    }
    c.load_str(&lines, "command line", &mut warnings)?;
    Ok((c, warnings))
}

fn quote_arg(a: &str) -> String {
    if a.is_empty()
        || a.bytes()
            .any(|c| c.is_ascii_whitespace() || c == b'"' || c == b'\'' || c == b'\\')
    {
        format!("\"{}\"", a.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        a.to_string()
    }
}

/// Number of CPUs in this process's affinity mask (Linux).
fn affinity_cpus() -> Option<usize> {
    #[cfg(target_os = "linux")]
    // SAFETY: sched_getaffinity fills the zeroed set we pass, of its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            let n = libc::CPU_COUNT(&set);
            return (n > 0).then_some(n as usize);
        }
    }
    None
}

/// Number of CPUs online on the machine (not only those this process may
/// use), from sysfs.
fn online_cpus() -> Option<usize> {
    cpu_list_len(&std::fs::read_to_string("/sys/devices/system/cpu/online").ok()?)
}

/// Number of CPUs in a kernel CPU list such as "0-3,8,10-11".
fn cpu_list_len(list: &str) -> Option<usize> {
    let mut n = 0usize;
    for part in list.trim().split(',') {
        n += match part.split_once('-') {
            Some((a, b)) => b
                .parse::<usize>()
                .ok()?
                .checked_sub(a.parse::<usize>().ok()?)?
                .checked_add(1)?,
            None => part.parse::<usize>().map(|_| 1).ok()?,
        };
    }
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list_len("0-1\n"), Some(2));
        assert_eq!(cpu_list_len("0"), Some(1));
        assert_eq!(cpu_list_len("0-3,8,10-11"), Some(7));
        assert_eq!(cpu_list_len("3-1"), None);
        assert_eq!(cpu_list_len(""), None);
        assert_eq!(cpu_list_len("x"), None);
    }

    #[test]
    fn busy_poll_explicit_and_automatic() {
        let mut c = Config {
            busy_poll_us: 0,
            ..Config::default()
        };
        assert_eq!(c.busy_poll(), std::time::Duration::ZERO);
        c.busy_poll_us = 120;
        assert_eq!(c.busy_poll(), std::time::Duration::from_micros(120));
        // Automatic: IO threads on every usable core, unpinned, never
        // poll; fewer IO threads than usable cores poll for 50 us.
        c.busy_poll_us = -1;
        let quota = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cores = affinity_cpus().unwrap_or(quota);
        let pinned = online_cpus().is_some_and(|o| cores < o);
        let limited = quota < cores;
        c.io_threads = cores;
        let expect = if pinned && !limited { 50 } else { 0 };
        assert_eq!(c.busy_poll(), std::time::Duration::from_micros(expect));
        if cores > 1 {
            c.io_threads = cores - 1;
            let expect = if limited { 0 } else { 50 };
            assert_eq!(c.busy_poll(), std::time::Duration::from_micros(expect));
        }
        // More IO threads than cores: never.
        c.io_threads = cores + 1;
        assert_eq!(c.busy_poll(), std::time::Duration::ZERO);
    }

    #[test]
    fn defaults_and_args() {
        let (c, w) = from_args(&[
            "--port".into(),
            "0".into(),
            "--save".into(),
            "".into(),
            "--maxmemory".into(),
            "1mb".into(),
        ])
        .unwrap();
        assert_eq!(c.port, 0);
        assert_eq!(c.get("save"), Some(""));
        assert_eq!(c.get("maxmemory"), Some("1048576"));
        assert_eq!(c.get("appendfsync"), Some("always"));
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn unknown_option_names_line() {
        let mut c = Config::default();
        let e = c
            .load_str("port 1\nbogus 2\n", "x.conf", &mut Vec::new())
            .unwrap_err();
        assert!(e.0.starts_with("x.conf:2:"), "{}", e.0);
    }

    #[test]
    fn set_validates_like_redis() {
        let mut c = Config::default();
        assert_eq!(c.set("activerehashing", "maybe").unwrap_err(), "ERR CONFIG SET failed (possibly related to argument 'activerehashing') - argument must be 'yes' or 'no'");
        assert!(c
            .set("nope", "1")
            .unwrap_err()
            .starts_with("ERR Unknown option"));
        c.set("MAXMEMORY", "2gb").unwrap();
        assert_eq!(c.get("maxmemory"), Some("2147483648"));
        assert!(c.set("databases", "3").unwrap_err().contains("immutable"));
        // Fixed at start here, mutable in Redis: the current value is a no-op.
        c.set("appendonly", "yes").unwrap();
        assert!(c.set("appendonly", "no").unwrap_err().contains("immutable"));
    }

    #[test]
    fn ignored_options_warn() {
        let mut c = Config::default();
        let mut w = Vec::new();
        c.load_str("lua-time-limit 100\nsave 900 1\nsave 300 10\n", "f", &mut w)
            .unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(c.save_points(), vec![(900, 1), (300, 10)]);
    }
}
