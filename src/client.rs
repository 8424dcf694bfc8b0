//! Per-connection state: what the connection task owns ([`ClientState`])
//! and what other connections may look at or act on ([`ClientHandle`]:
//! CLIENT LIST, CLIENT KILL).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::commands::Entry;
use crate::shared::unix_ms;

/// CLIENT UNBLOCK ... TIMEOUT: the blocked command answers as on its timeout.
pub const UNBLOCK_TIMEOUT: u8 = 1;
/// CLIENT UNBLOCK ... ERROR: it answers with `UNBLOCKED_ERROR`.
pub const UNBLOCK_ERROR: u8 = 2;
pub const UNBLOCKED_ERROR: &str = "UNBLOCKED client unblocked via CLIENT UNBLOCK";

pub struct ClientHandle {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub unix: bool,
    pub created: Instant,
    pub name: Mutex<Vec<u8>>,
    pub lib_name: Mutex<Vec<u8>>,
    pub lib_ver: Mutex<Vec<u8>>,
    pub db: AtomicU64,
    pub resp: AtomicU8,
    /// The command table entry last run (static; null before any).
    pub last_cmd: std::sync::atomic::AtomicPtr<Entry>,
    pub last_active_ms: AtomicU64,
    pub qbuf: AtomicU64,
    /// Reply bytes waiting to be sent (maxmemory-clients).
    pub omem: AtomicU64,
    pub no_evict: AtomicBool,
    pub no_touch: AtomicBool,
    pub killed: AtomicBool,
    /// For waits outside the connection's own loop (blocking commands,
    /// WAITAOF, a snapshot transfer): notified by [`ClientHandle::kill`].
    pub kill: tokio::sync::Notify,
    /// Set when `timeout` changes, so an idle connection re-arms its idle
    /// timer (taken by [`ClientHandle::poll_control`]).
    pub retimed: AtomicBool,
    /// The connection task's waker while it waits for input or for its
    /// output to go out (see [`ClientHandle::poll_control`]).
    control: Mutex<Option<std::task::Waker>>,
    /// Set while the connection waits in a blocking command (BLPOP,
    /// XREAD BLOCK, WAIT...), for CLIENT UNBLOCK.
    pub blocked: AtomicBool,
    /// CLIENT UNBLOCK's request: 0 none, `UNBLOCK_TIMEOUT`, `UNBLOCK_ERROR`.
    pub unblock: AtomicU8,
    pub unblocked: tokio::sync::Notify,
    /// CLIENT LIST's sub / psub / ssub counts and `multi` (-1 = none).
    pub sub_counts: [std::sync::atomic::AtomicU32; 3],
    pub multi_len: std::sync::atomic::AtomicI32,
    /// The authenticated user's name (CLIENT LIST `user=`).
    pub user: Mutex<Vec<u8>>,
}

/// What [`ClientHandle::poll_control`] found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Control {
    Waiting,
    Killed,
    Retimed,
}

impl ClientHandle {
    pub fn set_last_cmd(&self, e: &'static Entry) {
        // Entries live in a static table, so the pointer stays valid.
        self.last_cmd
            .store(e as *const Entry as *mut Entry, Relaxed);
    }

    pub fn last_cmd_name(&self) -> &'static str {
        let p = self.last_cmd.load(Relaxed);
        // SAFETY: only ever set from `&'static Entry` (see set_last_cmd).
        match unsafe { p.cast_const().as_ref() } {
            Some(e) => e.fullname.as_str(),
            None => "NULL",
        }
    }

    /// CLIENT UNBLOCK: ends the blocking command this client waits in, as
    /// if it timed out (or with an error). Whether it was blocked.
    pub fn try_unblock(&self, error: bool) -> bool {
        if !self.blocked.load(Relaxed) {
            return false;
        }
        let how = if error {
            UNBLOCK_ERROR
        } else {
            UNBLOCK_TIMEOUT
        };
        self.unblock.store(how, Relaxed);
        self.unblocked.notify_waiters();
        true
    }

    /// The wait loop's side of CLIENT UNBLOCK: marks the client blocked
    /// (or not), clearing any request left from an earlier block.
    pub fn set_blocked(&self, on: bool) {
        self.unblock.store(0, Relaxed);
        self.blocked.store(on, Relaxed);
    }

    pub fn kill(&self) {
        self.killed.store(true, Relaxed);
        self.kill.notify_one();
        self.wake_control();
    }

    /// `timeout` changed: the connection recomputes its idle deadline.
    pub fn retime(&self) {
        self.retimed.store(true, Relaxed);
        self.wake_control();
    }

    fn wake_control(&self) {
        let w = self.control.lock().take();
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Resolves with the next kill (and, with `retime`, `timeout` change):
    /// [`ClientHandle::poll_control`] as a future.
    pub fn control(&self, retime: bool) -> impl std::future::Future<Output = Control> + '_ {
        std::future::poll_fn(move |cx| match self.poll_control(cx, retime) {
            Control::Waiting => std::task::Poll::Pending,
            c => std::task::Poll::Ready(c),
        })
    }

    /// The connection loop's watch for a kill (and, with `retime`, for a
    /// `timeout` change, which it takes): ready with what happened, else
    /// keeps the task's waker for [`ClientHandle::kill`] and
    /// [`ClientHandle::retime`]. Polled on every request while the loop
    /// waits for input or for its output to go out, so it costs one
    /// uncontended lock and no allocation: a `Notify` registered and
    /// dropped there (three per request, with the read loop's other
    /// waits) was ~4% of an IO thread's time at `-P 1`.
    pub fn poll_control(&self, cx: &mut std::task::Context<'_>, retime: bool) -> Control {
        let mut slot = self.control.lock();
        // Checked under the lock: a kill or retime either sees the waker
        // stored below, or set its flag before this load.
        if self.killed.load(Relaxed) {
            return Control::Killed;
        }
        if retime && self.retimed.swap(false, Relaxed) {
            return Control::Retimed;
        }
        match &*slot {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
        Control::Waiting
    }

    /// One line of CLIENT LIST / CLIENT INFO, in Redis 7.2's field order.
    pub fn info_line(&self) -> String {
        let now = unix_ms();
        let idle = now.saturating_sub(self.last_active_ms.load(Relaxed)) / 1000;
        let name = String::from_utf8_lossy(&self.name.lock()).into_owned();
        let lib_name = String::from_utf8_lossy(&self.lib_name.lock()).into_owned();
        let lib_ver = String::from_utf8_lossy(&self.lib_ver.lock()).into_owned();
        let qbuf = self.qbuf.load(Relaxed);
        // Reply bytes waiting for the socket (Redis's omem; its obl/oll
        // describe buffers Basalt does not have).
        let omem = self.omem.load(Relaxed);
        let subs: Vec<u32> = self.sub_counts.iter().map(|c| c.load(Relaxed)).collect();
        let multi = self.multi_len.load(Relaxed);
        let mut flags = String::new();
        if subs.iter().any(|&n| n > 0) {
            flags.push('P');
        }
        if multi >= 0 {
            flags.push('x');
        }
        if self.blocked.load(Relaxed) {
            flags.push('b');
        }
        if self.no_evict.load(Relaxed) {
            flags.push('e');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        format!(
            "id={} addr={} laddr={} fd=0 name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem={} tot-mem={} events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            name,
            self.created.elapsed().as_secs(),
            idle,
            flags,
            self.db.load(Relaxed),
            subs[0],
            subs[1],
            subs[2],
            multi,
            qbuf,
            omem,
            qbuf + omem,
            self.last_cmd_name(),
            String::from_utf8_lossy(&self.user.lock()),
            self.resp.load(Relaxed),
            lib_name,
            lib_ver
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the next command's reply, then back to On.
    SkipNext,
    /// Set by CLIENT REPLY SKIP; becomes SkipNext after that command.
    Skip,
}

/// Owned by the connection task.
pub struct ClientState {
    pub handle: Arc<ClientHandle>,
    pub db: usize,
    pub reply_mode: ReplyMode,
    pub close_after_reply: bool,
    pub authenticated: bool,
    /// The user this connection runs as (shared: ACL SETUSER applies at
    /// once).
    pub user: Arc<crate::acl::User>,
    /// The user's rules as of `User::version` (see `rules`).
    rules_cache: Option<(u64, Arc<crate::acl::Rules>)>,
    /// A wrong password was given: the connection pauses before running
    /// the rest of its input (see `connection.rs`).
    pub auth_failed: bool,
    /// Set by WAITAOF: the connection waits, then replies.
    pub pending_waitaof: Option<WaitAof>,
    /// Set by a blocking pop that found nothing: the connection waits.
    pub pending_block: Option<crate::blocking::Blocked>,
    /// Set by MIGRATE: the connection sends the dumped keys, then lets
    /// `migrate::finish` delete them and reply.
    pub pending_migrate: Option<Box<crate::commands::migrate::Job>>,
    /// Set by SYNC/PSYNC: the connection sends a snapshot, then closes.
    pub pending_sync: Option<crate::replication::SyncRequest>,
    /// REPLCONF rdb-only 1: the client wants the snapshot only.
    pub rdb_only: bool,
    /// REPLCONF rdb-filter-only: the snapshot without keys.
    pub rdb_exclude_data: bool,
    /// REPLCONF capa eof: the client reads `$EOF:` transfers (Redis
    /// requires it of clients that ask for a filtered dump).
    pub capa_eof: bool,
    /// Input read while blocked (processed after the current batch).
    pub stash: Vec<u8>,
    /// The peer closed the connection while a command was blocked.
    pub peer_closed: bool,
    /// Commands queued since MULTI (None: not in a transaction).
    pub multi: Option<Box<MultiState>>,
    /// True while EXEC runs the queued commands.
    pub in_exec: bool,
    /// The last transaction's buffers, cleared, for the next MULTI.
    pub spare_multi: Option<Box<MultiState>>,
    pub watch: crate::watch::ClientWatch,
    /// Pub/sub: this client's handle in the registry, once it subscribed.
    pub sub: Option<Arc<crate::pubsub::Subscriber>>,
    pub subs: Subscriptions,
    /// CLIENT TRACKING options while on.
    pub tracking: Option<crate::tracking::TrackOpts>,
    /// CLIENT CACHING yes/no for the next command.
    pub caching: bool,
}

/// Channels, patterns and shard channels this client is subscribed to,
/// in subscription order.
#[derive(Default)]
pub struct Subscriptions {
    pub channels: Vec<Vec<u8>>,
    pub patterns: Vec<Vec<u8>>,
    pub shard: Vec<Vec<u8>>,
}

impl Subscriptions {
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    pub fn any(&self) -> bool {
        !(self.channels.is_empty() && self.patterns.is_empty() && self.shard.is_empty())
    }
}

/// A transaction being queued: every argument of every command in one
/// buffer.
#[derive(Default)]
pub struct MultiState {
    pub data: Vec<u8>,
    /// (start, end) of each argument in `data`.
    pub args: Vec<(u32, u32)>,
    /// (first argument, argument count) of each command.
    pub cmds: Vec<(u32, u32)>,
    /// The table entry of each command, resolved when queued.
    pub entries: Vec<&'static crate::commands::Entry>,
    /// A command was rejected while queueing: EXEC aborts.
    pub failed: bool,
}

impl MultiState {
    /// Empties it, keeping the allocations.
    pub fn clear(&mut self) {
        self.data.clear();
        self.args.clear();
        self.cmds.clear();
        self.entries.clear();
        self.failed = false;
    }

    pub fn push(&mut self, entry: &'static crate::commands::Entry, argv: &[&[u8]]) {
        self.entries.push(entry);
        self.cmds.push((self.args.len() as u32, argv.len() as u32));
        for a in argv {
            let start = self.data.len() as u32;
            self.data.extend_from_slice(a);
            self.args.push((start, self.data.len() as u32));
        }
    }

    /// Fills `argv` with the argument vector of queued command `i`
    /// (one reused vector instead of one allocation per command).
    pub fn argv_into<'a>(&'a self, i: usize, argv: &mut Vec<&'a [u8]>) {
        argv.clear();
        let (first, n) = self.cmds[i];
        argv.extend(
            self.args[first as usize..(first + n) as usize]
                .iter()
                .map(|&(s, e)| &self.data[s as usize..e as usize]),
        );
    }
}

#[derive(Clone, Copy, Debug)]
pub struct WaitAof {
    pub numlocal: i64,
    pub numreplicas: i64,
    /// Milliseconds; 0 = no limit.
    pub timeout_ms: u64,
    /// WAIT rather than WAITAOF: no log to wait for, one integer to answer.
    pub replicas_only: bool,
}

/// Placeholder user for internal clients (log replay): every command
/// allowed. Connections get the server's default user instead.
fn unrestricted_user() -> Arc<crate::acl::User> {
    static U: std::sync::OnceLock<Arc<crate::acl::User>> = std::sync::OnceLock::new();
    U.get_or_init(|| crate::acl::Acl::new().default_user())
        .clone()
}

impl ClientState {
    /// Runs as `user` from now on (AUTH, HELLO AUTH).
    pub fn set_user(&mut self, user: Arc<crate::acl::User>) {
        *self.handle.user.lock() = user.name.clone();
        self.user = user;
        self.authenticated = true;
    }

    /// This connection's user's current rules, refreshed only when the
    /// user's version moved.
    pub fn rules(&mut self) -> &crate::acl::Rules {
        let v = self.user.version.load(std::sync::atomic::Ordering::Acquire);
        if self.rules_cache.as_ref().is_some_and(|c| c.0 != v) {
            self.rules_cache = None;
        }
        let user = &self.user;
        &self.rules_cache.get_or_insert_with(|| (v, user.rules())).1
    }

    pub fn new(handle: Arc<ClientHandle>) -> Self {
        ClientState {
            handle,
            db: 0,
            reply_mode: ReplyMode::On,
            close_after_reply: false,
            authenticated: true,
            user: unrestricted_user(),
            rules_cache: None,
            auth_failed: false,
            pending_waitaof: None,
            multi: None,
            in_exec: false,
            spare_multi: None,
            watch: Default::default(),
            sub: None,
            subs: Subscriptions::default(),
            tracking: None,
            caching: false,
            pending_block: None,
            pending_migrate: None,
            pending_sync: None,
            rdb_only: false,
            rdb_exclude_data: false,
            capa_eof: false,
            stash: Vec::new(),
            peer_closed: false,
        }
    }

    pub fn select(&mut self, db: usize) {
        self.db = db;
        self.handle.db.store(db as u64, Relaxed);
    }
}

#[derive(Default)]
pub struct Clients {
    next_id: AtomicU64,
    map: Mutex<BTreeMap<u64, Arc<ClientHandle>>>,
}

impl Clients {
    pub fn register(&self, addr: String, laddr: String, unix: bool) -> Arc<ClientHandle> {
        self.try_register(addr, laddr, unix, usize::MAX)
            .expect("no limit")
    }

    /// Registers a client unless `max` are connected already (checked and
    /// added under one lock, so concurrent accepts cannot overshoot).
    pub fn try_register(
        &self,
        addr: String,
        laddr: String,
        unix: bool,
        max: usize,
    ) -> Option<Arc<ClientHandle>> {
        let mut map = self.map.lock();
        if map.len() >= max {
            return None;
        }
        let id = self.next_id.fetch_add(1, Relaxed) + 1;
        let h = Arc::new(ClientHandle {
            id,
            addr,
            laddr,
            unix,
            created: Instant::now(),
            name: Mutex::new(Vec::new()),
            lib_name: Mutex::new(Vec::new()),
            lib_ver: Mutex::new(Vec::new()),
            db: AtomicU64::new(0),
            resp: AtomicU8::new(2),
            last_cmd: std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
            last_active_ms: AtomicU64::new(unix_ms()),
            qbuf: AtomicU64::new(0),
            omem: AtomicU64::new(0),
            no_evict: AtomicBool::new(false),
            no_touch: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            kill: tokio::sync::Notify::new(),
            retimed: AtomicBool::new(false),
            control: Mutex::new(None),
            blocked: AtomicBool::new(false),
            unblock: AtomicU8::new(0),
            unblocked: tokio::sync::Notify::new(),
            sub_counts: Default::default(),
            multi_len: std::sync::atomic::AtomicI32::new(-1),
            user: Mutex::new(b"default".to_vec()),
        });
        map.insert(id, h.clone());
        Some(h)
    }

    pub fn unregister(&self, id: u64) {
        self.map.lock().remove(&id);
    }

    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn all(&self) -> Vec<Arc<ClientHandle>> {
        self.map.lock().values().cloned().collect()
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientHandle>> {
        self.map.lock().get(&id).cloned()
    }
}
