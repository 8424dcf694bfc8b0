//! The command table and dispatch.
//!
//! Each family module exports `COMMANDS: &[CommandSpec]`: name, arity in
//! Redis's sign convention (N = exactly N, -N = at least N, counting the
//! name), flags, key positions, and a handler. Handlers are pure: they get
//! a [`Ctx`] (shared state, this client's state, the reply buffer) and the
//! arguments, and never touch a socket. Arity and subcommands are checked
//! once, here. The same table answers COMMAND INFO / DOCS / LIST.

pub mod acl;
pub mod args;
pub mod bitmap;
pub mod client;
pub mod coll;
pub mod config;
pub mod connection;
pub mod error;
pub mod geo;
pub mod hash;
pub mod hll;
pub mod info;
pub mod introspect;
pub mod keys;
pub mod list;
pub mod memory;
pub mod migrate;
pub mod multi;
pub mod observe;
pub mod persistence;
pub mod pubsub;
pub mod replication;
pub mod server;
pub mod set;
pub mod sort;
pub mod stream;
pub mod string;
pub mod zset;

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::OnceLock;

pub use error::{CmdError, CmdResult};

use crate::client::ClientState;
use crate::resp::Reply;
use crate::shared::Shared;

pub type Handler = fn(&mut Ctx<'_>, &[&[u8]]) -> CmdResult;

pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const FAST: u32 = 1 << 9;
    pub const NO_AUTH: u32 = 1 << 10;
    pub const NO_MULTI: u32 = 1 << 11;
    pub const SKIP_SLOWLOG: u32 = 1 << 12;
    pub const ALLOW_BUSY: u32 = 1 << 13;
    pub const SENTINEL: u32 = 1 << 14;
    pub const NO_ASYNC_LOADING: u32 = 1 << 15;
    /// Allowed only as `enable-debug-command` says (Redis's CMD_PROTECTED;
    /// not shown by COMMAND INFO, as in Redis 7.0).
    pub const PROTECTED: u32 = 1 << 16;

    /// ACL categories a command has beyond those its flags and group
    /// imply (Redis's explicit `acl_categories`); never shown as flags.
    pub const CAT_KEYSPACE: u32 = 1 << 24;
    pub const CAT_DANGEROUS: u32 = 1 << 25;
    pub const CAT_CONNECTION: u32 = 1 << 26;

    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

pub struct CommandSpec {
    /// Lowercase name.
    pub name: &'static str,
    pub arity: i32,
    pub flags: u32,
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    pub handler: Handler,
    pub subcommands: &'static [CommandSpec],
}

/// Builds a spec with no keys and no docs; refine with struct update.
pub const fn cmd(name: &'static str, arity: i32, flags: u32, handler: Handler) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "generic",
        since: "1.0.0",
        summary: "",
        handler,
        subcommands: &[],
    }
}

/// Handler for container commands: dispatch resolves the subcommand first,
/// so this only runs if a container is called bare (arity prevents it).
pub fn container(_: &mut Ctx<'_>, _: &[&[u8]]) -> CmdResult {
    Err(CmdError::Syntax)
}

/// Per-command counters for INFO commandstats.
#[derive(Default)]
pub struct CmdStats {
    pub calls: crate::counter::Counter,
    pub usec: crate::counter::Counter,
    pub rejected: crate::counter::Counter,
    pub failed: crate::counter::Counter,
    /// Sampled call latencies (LATENCY HISTOGRAM, INFO latencystats).
    pub latency: crate::histogram::Histogram,
}

pub struct Entry {
    pub spec: &'static CommandSpec,
    /// Dense index over every command and subcommand (ACL bitmaps).
    pub id: usize,
    pub fullname: String,
    pub stats: CmdStats,
    pub subs: HashMap<String, Entry, NameHash>,
}

/// The table is fixed at start and only looked up (once per command), so
/// a fast unkeyed hash serves: SipHash was a visible share of a pipelined
/// command's CPU.
type NameHash = foldhash::fast::FixedState;

pub struct Table {
    pub map: HashMap<String, Entry, NameHash>,
}

fn families() -> impl Iterator<Item = &'static CommandSpec> {
    [
        connection::COMMANDS,
        server::COMMANDS,
        config::COMMANDS,
        client::COMMANDS,
        introspect::COMMANDS,
        info::COMMANDS,
        string::COMMANDS,
        keys::COMMANDS,
        migrate::COMMANDS,
        persistence::COMMANDS,
        replication::COMMANDS,
        multi::COMMANDS,
        pubsub::COMMANDS,
        observe::COMMANDS,
        memory::COMMANDS,
        hash::COMMANDS,
        set::COMMANDS,
        list::COMMANDS,
        zset::COMMANDS,
        geo::COMMANDS,
        bitmap::COMMANDS,
        sort::COMMANDS,
        hll::COMMANDS,
        acl::COMMANDS,
        stream::COMMANDS,
    ]
    .into_iter()
    .flatten()
}

fn entry_for(spec: &'static CommandSpec, parent: Option<&str>) -> Entry {
    // The table is built once, so ids are 0..n.
    static NEXT_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let id = NEXT_ID.fetch_add(1, Relaxed);
    let fullname = match parent {
        Some(p) => format!("{p}|{}", spec.name),
        None => spec.name.to_string(),
    };
    let subs = spec
        .subcommands
        .iter()
        .map(|s| (s.name.to_string(), entry_for(s, Some(spec.name))))
        .collect();
    Entry {
        spec,
        id,
        fullname,
        stats: CmdStats::default(),
        subs,
    }
}

pub fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| Table {
        map: families()
            .map(|s| (s.name.to_string(), entry_for(s, None)))
            .collect(),
    })
}

/// Lowercases `name` into `buf` when short enough for a table lookup.
fn lower<'b>(name: &[u8], buf: &'b mut [u8; 32]) -> Option<&'b str> {
    if name.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    std::str::from_utf8(&buf[..name.len()]).ok()
}

/// Why a command did not resolve, and the entry it named when only its
/// arguments failed (see `resolve_counted`).
pub type Unresolved<'a> = (CmdError, Option<(&'a Entry, bool)>);

impl Table {
    pub fn get(&self, name: &[u8]) -> Option<&Entry> {
        let mut buf = [0u8; 32];
        self.map.get(lower(name, &mut buf)?)
    }

    /// Resolves argv to the entry that will run (the subcommand for
    /// containers), checking arity. Errors are the client-facing ones.
    pub fn resolve(&self, argv: &[&[u8]]) -> Result<&Entry, CmdError> {
        self.resolve_counted(argv).map_err(|(e, _)| e)
    }

    /// As `resolve`; an error also names the entry whose `rejected_calls`
    /// it counts in, as Redis: the (sub)command for a wrong arity, none for
    /// an unknown name. DEBUG, one command in Redis, counts as a call that
    /// failed (`true`).
    pub fn resolve_counted(&self, argv: &[&[u8]]) -> Result<&Entry, Unresolved<'_>> {
        let name = argv[0];
        let e = self.get(name).ok_or_else(|| {
            (
                CmdError::UnknownCommand {
                    name: name.to_vec(),
                    args: argv[1..].iter().map(|a| a.to_vec()).collect(),
                },
                None,
            )
        })?;
        if !e.subs.is_empty() && argv.len() >= 2 {
            let mut buf = [0u8; 32];
            let sub = lower(argv[1], &mut buf).and_then(|s| e.subs.get(s));
            // DEBUG is a single command in Redis that parses its own
            // subcommands: unknown ones and wrong counts get one message.
            if e.spec.name == "debug" && sub.is_none_or(|s| check_arity(s, argv.len()).is_err()) {
                return Err((client::subcommand_syntax_error(argv), Some((e, true))));
            }
            let sub = sub.ok_or_else(|| {
                (
                    CmdError::UnknownSubcommand {
                        name: argv[1].to_vec(),
                        container: e.spec.name.to_uppercase(),
                    },
                    None,
                )
            })?;
            check_arity(sub, argv.len()).map_err(|err| (err, Some((sub, false))))?;
            return Ok(sub);
        }
        check_arity(e, argv.len()).map_err(|err| (err, Some((e, false))))?;
        Ok(e)
    }

    /// Every entry, subcommands included (INFO commandstats).
    pub fn all(&self) -> Vec<&Entry> {
        let mut v = Vec::new();
        for e in self.map.values() {
            v.push(e);
            v.extend(e.subs.values());
        }
        v
    }
}

fn check_arity(e: &Entry, argc: usize) -> CmdResult {
    let a = e.spec.arity;
    if (a > 0 && argc as i32 != a) || (argc as i32) < -a {
        return Err(CmdError::WrongArity(e.fullname.clone()));
    }
    Ok(())
}

/// What a handler sees.
pub struct Ctx<'a> {
    pub srv: &'a Shared,
    pub client: &'a mut ClientState,
    pub out: &'a mut Reply,
    /// Unix time in ms, read once per command (as Redis's `mstime`).
    pub now_ms: u64,
    /// True while replaying the log: no expiry, no propagation.
    pub loading: bool,
    /// The running EXEC's held shards and log buffer (see `db.rs`).
    pub txn: Option<&'a crate::db::TxnScope<'a>>,
}

impl<'a> Ctx<'a> {
    /// Counts a read lookup in `keyspace_hits` / `keyspace_misses`, as
    /// Redis's `lookupKeyRead` does.
    pub fn count_lookup(&self, found: bool) {
        let s = &self.srv.stats;
        if found {
            &s.keyspace_hits
        } else {
            &s.keyspace_misses
        }
        .fetch_add(1, Relaxed);
    }

    /// The access clock now (OBJECT IDLETIME's unit).
    pub fn clock(&self) -> u32 {
        self.srv.lru_clock_at(self.now_ms)
    }

    /// How this command marks an accessed key: the LRU clock, or an LFU
    /// counter update under an LFU `maxmemory-policy`.
    #[inline]
    pub fn stamp(&self) -> crate::evict::Stamp {
        self.srv.evict.stamp(self.now_ms)
    }

    /// A new stored value: it starts with the current access clock (or
    /// the initial LFU counter), as a new Redis object does.
    pub fn new_entry(&self, value: basalt_storage::Value, expire_at: u64) -> basalt_storage::Entry {
        let mut e = basalt_storage::Entry::with_expire(value, expire_at);
        e.lru = self.stamp().fresh();
        e
    }

    /// The stamp for a key a write command looks up (Redis's write
    /// lookups touch it too), or None under CLIENT NO-TOUCH.
    pub fn touch_clock(&self) -> Option<crate::evict::Stamp> {
        (!self.client.handle.no_touch.load(Relaxed)).then(|| self.stamp())
    }

    /// A read that counts hit/miss but leaves the access clock alone
    /// (Redis's `LOOKUP_NOTOUCH`: EXISTS, TYPE, TTL, OBJECT).
    pub fn peek_key<'k>(&self, key: &'k [u8]) -> crate::db::KeyLock<'a, 'k> {
        let k = self.write_key(key);
        self.count_lookup(k.exists());
        k
    }
}

/// Runs one parsed command and writes its reply. Returns the flags of the
/// command that ran (0 when it was rejected before running).
pub fn execute(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> u32 {
    let t = table();
    let entry = match t.resolve_counted(argv) {
        Ok(e) => e,
        Err((err, counted)) => {
            match counted {
                Some((e, false)) => {
                    e.stats.rejected.fetch_add(1, Relaxed);
                }
                Some((e, true)) => {
                    e.stats.calls.fetch_add(1, Relaxed);
                    e.stats.failed.fetch_add(1, Relaxed);
                    ctx.srv.stats.commands.fetch_add(1, Relaxed);
                }
                None => {}
            }
            reject(ctx, argv, &err);
            return 0;
        }
    };
    execute_entry(ctx, entry, argv)
}

const DEBUG_NOT_ALLOWED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

/// `enable-debug-command`: `no` (Redis 7.0's default), `yes`, or `local`
/// (unix socket and loopback clients only, as Redis's `islocalClient`).
fn debug_allowed(ctx: &Ctx<'_>) -> bool {
    let setting = ctx
        .srv
        .config
        .read()
        .get("enable-debug-command")
        .map(|v| v.to_ascii_lowercase());
    match setting.as_deref() {
        Some("yes") => true,
        Some("local") => {
            let h = &ctx.client.handle;
            h.unix || h.addr.starts_with("127.0.0.1:") || h.addr.starts_with("[::1]:")
        }
        _ => false,
    }
}

/// `execute` for a command already resolved (and arity-checked): EXEC
/// runs its queued commands through here.
pub fn execute_entry(ctx: &mut Ctx<'_>, entry: &'static Entry, argv: &[&[u8]]) -> u32 {
    let t = table();
    // DEBUG is one command in Redis: its subcommands count as `debug`.
    let stat = match entry.fullname.strip_prefix("debug|") {
        Some(_) => t.get(b"debug").unwrap_or(entry),
        None => entry,
    };
    let f = entry.spec.flags;
    if !ctx.loading && stat.spec.flags & flags::PROTECTED != 0 && !debug_allowed(ctx) {
        stat.stats.rejected.fetch_add(1, Relaxed);
        reject(ctx, argv, &CmdError::msg(DEBUG_NOT_ALLOWED));
        return 0;
    }
    if !ctx.loading && ctx.srv.loading.load(Relaxed) && f & flags::LOADING == 0 {
        stat.stats.rejected.fetch_add(1, Relaxed);
        reject(
            ctx,
            argv,
            &CmdError::msg("LOADING Redis is loading the dataset in memory"),
        );
        return 0;
    }
    if f & flags::WRITE != 0 && !ctx.loading && !ctx.srv.log_ok.load(Relaxed) {
        stat.stats.rejected.fetch_add(1, Relaxed);
        let why = ctx.srv.log_error.lock().clone();
        reject(
            ctx,
            argv,
            &CmdError::msg(format!("MISCONF Errors writing to the AOF file: {why}")),
        );
        return 0;
    }
    if !ctx.client.authenticated
        && entry.spec.flags & flags::NO_AUTH == 0
        && ctx.srv.acl.default_needs_auth.load(Relaxed)
    {
        stat.stats.rejected.fetch_add(1, Relaxed);
        reject(ctx, argv, &CmdError::msg("NOAUTH Authentication required."));
        return 0;
    }
    if ctx.client.multi.is_some() && f & flags::NO_MULTI != 0 {
        stat.stats.rejected.fetch_add(1, Relaxed);
        reject(
            ctx,
            argv,
            &CmdError::msg("ERR Command not allowed inside a transaction"),
        );
        return 0;
    }
    if !ctx.loading && !ctx.client.user.unrestricted.load(Relaxed) {
        if let Err(err) = acl::check_command(ctx, entry, argv, false) {
            stat.stats.rejected.fetch_add(1, Relaxed);
            reject(ctx, argv, &err);
            return 0;
        }
    }
    if ctx.txn.is_none()
        && !ctx.loading
        && ctx.srv.evict.maxmemory.load(Relaxed) != 0
        && out_of_memory(ctx, entry)
    {
        stat.stats.rejected.fetch_add(1, Relaxed);
        reject(
            ctx,
            argv,
            &CmdError::msg("OOM command not allowed when used memory > 'maxmemory'."),
        );
        return 0;
    }
    if !ctx.out.resp3
        && ctx.client.sub.is_some()
        && ctx.client.subs.any()
        && !allowed_subscribed(entry)
    {
        stat.stats.rejected.fetch_add(1, Relaxed);
        reject(ctx, argv,
            &CmdError::msg(format!(
                "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                entry.fullname
            )),
        );
        return 0;
    }
    ctx.client.handle.set_last_cmd(stat);
    if let Some(m) = ctx.client.multi.as_mut() {
        if !matches!(
            entry.fullname.as_str(),
            "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
        ) {
            m.push(entry, argv);
            ctx.client
                .handle
                .multi_len
                .store(m.cmds.len() as i32, Relaxed);
            ctx.out.simple("QUEUED");
            return 0;
        }
    }
    // Command time is measured on one call in TIME_SAMPLE and scaled: two
    // clock reads per command were a visible share of a pipelined GET.
    // Counted after the call, as Redis: INFO does not see itself and
    // CONFIG RESETSTAT shows as its own first call.
    // The slow log and latency monitor time every command while enabled:
    // precisely below a millisecond threshold, with the coarse clock
    // (a few ns, ms resolution) above.
    let calls = stat.stats.calls.load(Relaxed);
    let sample = calls % TIME_SAMPLE == 0;
    let (slow_us, lat_ms) = (
        ctx.srv.slowlog_us.load(Relaxed),
        ctx.srv.latency_ms.load(Relaxed),
    );
    let watch_time = slow_us >= 0 || lat_ms > 0;
    let (res, micros) = if sample || (0..1000).contains(&slow_us) {
        let start = std::time::Instant::now();
        let r = (entry.spec.handler)(ctx, argv);
        let ns = start.elapsed().as_nanos() as u64;
        let us = ns / 1000;
        if sample {
            stat.stats.usec.fetch_add(us * TIME_SAMPLE, Relaxed);
            if ctx.srv.latency_tracking.load(Relaxed) {
                stat.stats.latency.record(ns, 1);
            }
        }
        (r, Some(us))
    } else if watch_time {
        let start = coarse_us();
        let r = (entry.spec.handler)(ctx, argv);
        (r, Some(coarse_us().saturating_sub(start)))
    } else {
        ((entry.spec.handler)(ctx, argv), None)
    };
    // Keys the command (a whole EXEC: its commands run with `txn` set)
    // changed wholesale: serve or unblock their waiters now.
    if ctx.txn.is_none() {
        crate::blocking::drain_ready(ctx);
    }
    // Thresholds as they are now (CONFIG SET may just have changed them,
    // and Redis checks after the call).
    let (slow_us, lat_ms) = (
        ctx.srv.slowlog_us.load(Relaxed),
        ctx.srv.latency_ms.load(Relaxed),
    );
    let us = micros.unwrap_or(0);
    if (slow_us >= 0 && us >= slow_us as u64) || (lat_ms > 0 && us / 1000 >= lat_ms) {
        observe(ctx, entry, argv, us, slow_us, lat_ms);
    }
    if ctx.srv.monitors.active() && f & flags::ADMIN == 0 {
        let redact = if entry.fullname == "auth" {
            1
        } else {
            argv.len()
        };
        if entry.fullname == "hello" {
            // HELLO ... AUTH <user> <pass>: those two are hidden, as Redis.
            let mut shown: Vec<&[u8]> = argv.to_vec();
            let mut j = 2;
            while j < shown.len() {
                if args::eq(shown[j], "auth") && j + 2 < shown.len() {
                    shown[j + 1] = b"(redacted)";
                    shown[j + 2] = b"(redacted)";
                    j += 3;
                } else {
                    j += 1;
                }
            }
            ctx.srv
                .monitors
                .feed(ctx.client.db, &ctx.client.handle.addr, &shown, shown.len());
        } else if entry.fullname == "migrate" {
            let shown = migrate::redacted(argv);
            ctx.srv
                .monitors
                .feed(ctx.client.db, &ctx.client.handle.addr, &shown, shown.len());
        } else {
            ctx.srv
                .monitors
                .feed(ctx.client.db, &ctx.client.handle.addr, argv, redact);
        }
    }
    stat.stats.calls.fetch_add(1, Relaxed);
    ctx.srv.stats.commands.fetch_add(1, Relaxed);
    if ctx.client.tracking.is_some() {
        track_after(ctx, entry, argv);
    }
    if let Err(err) = res {
        stat.stats.failed.fetch_add(1, Relaxed);
        reply_error(ctx, &err);
    }
    f
}

/// Frees memory for a command (Redis's `performEvictions` in
/// `processCommand`); true when the command must be refused: the server
/// stays over `maxmemory` and the command may grow memory — it is flagged
/// `denyoom`, it is an EXEC of such commands, or it would be queued in a
/// transaction.
#[cold]
fn out_of_memory(ctx: &Ctx<'_>, entry: &Entry) -> bool {
    if ctx.srv.loading.load(Relaxed) {
        return false;
    }
    let outcome = crate::evict::perform(ctx.srv);
    if outcome != crate::evict::Outcome::Fail {
        return false;
    }
    let name = entry.fullname.as_str();
    match &ctx.client.multi {
        Some(m) if name == "exec" => m.entries.iter().any(|e| e.spec.flags & flags::DENYOOM != 0),
        Some(_) => !matches!(name, "discard" | "quit" | "reset"),
        None => entry.spec.flags & flags::DENYOOM != 0,
    }
}

const TIME_SAMPLE: u64 = 8;

/// CLOCK_MONOTONIC_COARSE in microseconds (millisecond resolution): about
/// 3 ns through the vDSO, against 20 for CLOCK_MONOTONIC (and a 1 ms
/// ticker thread costs 1% of a core even when idle).
pub fn coarse_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// SLOWLOG and LATENCY bookkeeping for one command that took `us`.
#[cold]
fn observe(ctx: &Ctx<'_>, entry: &Entry, argv: &[&[u8]], us: u64, slow_us: i64, lat_ms: u64) {
    let f = entry.spec.flags;
    if slow_us >= 0 && us >= slow_us as u64 && f & flags::SKIP_SLOWLOG == 0 {
        let max = ctx.srv.slowlog_max.load(Relaxed) as usize;
        let redacted: Vec<&[u8]>;
        let args = if entry.fullname == "auth" {
            redacted = argv
                .iter()
                .enumerate()
                .map(|(i, a)| if i == 0 { *a } else { &b"(redacted)"[..] })
                .collect();
            &redacted[..]
        } else if entry.fullname == "migrate" {
            redacted = migrate::redacted(argv);
            &redacted[..]
        } else {
            argv
        };
        ctx.srv.slowlog.push(
            args,
            us,
            ctx.client.handle.addr.clone(),
            ctx.client.handle.name.lock().clone(),
            max,
        );
    }
    if lat_ms > 0 && us / 1000 >= lat_ms {
        ctx.srv.latency.add(
            if f & flags::FAST != 0 {
                "fast-command"
            } else {
                "command"
            },
            us / 1000,
        );
    }
}

/// CLIENT TRACKING: remember the keys a read-only command read, then
/// drop a one-command CLIENT CACHING setting.
#[cold]
fn track_after(ctx: &mut Ctx<'_>, entry: &Entry, argv: &[&[u8]]) {
    let Some(o) = &ctx.client.tracking else {
        return;
    };
    if entry.spec.flags & flags::READONLY != 0
        && !o.bcast
        && !((o.optin && !ctx.client.caching) || (o.optout && ctx.client.caching))
    {
        let keys = introspect::key_positions(entry.spec, argv.len());
        ctx.srv.tracking.remember(
            ctx.client.handle.id,
            keys.into_iter().map(|i| argv[i].to_vec()),
            &ctx.srv.clients,
        );
    }
    if ctx.client.multi.is_none() && entry.fullname != "client|caching" {
        ctx.client.caching = false;
    }
}

/// Commands a RESP2 client may send while subscribed.
fn allowed_subscribed(e: &Entry) -> bool {
    matches!(
        e.fullname.as_str(),
        "ping"
            | "subscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "sunsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "quit"
            | "reset"
    )
}

/// A command refused before running: the error reply, and a transaction
/// being queued is flagged so its EXEC aborts (Redis's `rejectCommand`).
/// A rejected EXEC discards the transaction and says why.
fn reject(ctx: &mut Ctx<'_>, argv: &[&[u8]], err: &CmdError) {
    if let Some(m) = ctx.client.multi.as_mut() {
        m.failed = true;
    }
    if args::eq(argv[0], "exec") {
        multi::clear(ctx.srv, ctx.client);
        let text = err.to_bytes();
        let why = text.strip_prefix(b"ERR ").unwrap_or(&text);
        let mut m = b"EXECABORT Transaction discarded because of: ".to_vec();
        m.extend_from_slice(why);
        reply_error(ctx, &CmdError::Bytes(m));
        return;
    }
    reply_error(ctx, err);
}

pub fn reply_error(ctx: &mut Ctx<'_>, err: &CmdError) {
    ctx.srv.stats.count_error(&err.code());
    ctx.out.error_bytes(&err.to_bytes());
}
