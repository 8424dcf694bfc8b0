//! Access control: users, their rules, the permission check at dispatch
//! and the ACL log. The ACL command itself is in `commands/acl.rs`.
//!
//! A user is an `Arc<User>` shared by every connection authenticated as
//! it, so ACL SETUSER takes effect on them at once (as in Redis). Its
//! rules sit behind a lock; the hot path only reads `User::unrestricted`,
//! true when the user may run every command on every key and channel,
//! which is the default user's state unless configured otherwise.
//!
//! Rules follow Redis 7.0: a root selector plus `(...)` selectors, each a
//! bitmap of allowed commands (indexed by [`Entry::id`]), allowed first
//! arguments, key patterns with read/write flags and channel patterns.
//! `describe` rebuilds the rule text as Redis 7.0 does (start from
//! `+@all` or `-@all`, add the categories that cover more allowed than
//! denied commands, then single-command fixes), so ACL LIST / GETUSER
//! read like Redis's.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};

use crate::commands::{flags, table, Entry};

/// Redis's category table, in its order (ACL CAT, COMMAND INFO).
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

fn cat_bit(name: &str) -> Option<u32> {
    CATEGORIES
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

/// The categories of a command as a bitmask over [`CATEGORIES`]: implied
/// by its flags (write, readonly, admin, pubsub, fast/slow, blocking), its
/// group (subcommands take their container's; a container has no group
/// category, only flag ones such as @slow) and
/// the explicit `CAT_*` flags, as Redis's `setImplicitACLCategories` plus
/// the JSON `acl_categories`.
pub fn categories_of(e: &Entry) -> u32 {
    let s = e.spec;
    let group = match e.fullname.split_once('|') {
        Some((parent, _)) => table().map.get(parent).map_or(s.group, |p| p.spec.group),
        None if !s.subcommands.is_empty() => "",
        None => s.group,
    };
    let has = |f: u32| s.flags & f != 0;
    let mut m = 0;
    let mut add = |on: bool, name: &str| {
        if on {
            m |= cat_bit(name).unwrap_or(0);
        }
    };
    add(group == "generic" || has(flags::CAT_KEYSPACE), "keyspace");
    add(has(flags::READONLY) && group != "scripting", "read");
    add(has(flags::WRITE), "write");
    add(group == "set", "set");
    add(group == "sorted-set" || group == "sorted_set", "sortedset");
    add(group == "list", "list");
    add(group == "hash", "hash");
    add(group == "string", "string");
    add(group == "bitmap", "bitmap");
    add(group == "hyperloglog", "hyperloglog");
    add(group == "geo", "geo");
    add(group == "stream", "stream");
    add(has(flags::PUBSUB), "pubsub");
    add(has(flags::ADMIN), "admin");
    add(has(flags::FAST), "fast");
    add(!has(flags::FAST), "slow");
    add(has(flags::BLOCKING), "blocking");
    add(has(flags::ADMIN) || has(flags::CAT_DANGEROUS), "dangerous");
    add(
        group == "connection" || has(flags::CAT_CONNECTION),
        "connection",
    );
    add(group == "transactions", "transaction");
    add(group == "scripting", "scripting");
    // Explicit categories Redis's command JSON gives beyond the above.
    match e.fullname.as_str() {
        "sort" | "sort_ro" => {
            m &= !cat_bit("keyspace").unwrap_or(0);
            for c in ["set", "sortedset", "list", "dangerous"] {
                m |= cat_bit(c).unwrap_or(0);
            }
        }
        // Redis's WAIT is in the generic group without @keyspace.
        "wait" => m &= !cat_bit("keyspace").unwrap_or(0),
        "lastsave" | "role" => {
            m |= cat_bit("admin").unwrap_or(0) | cat_bit("dangerous").unwrap_or(0)
        }
        _ => {}
    }
    m
}

/// Category names of a command, in table order.
pub fn category_names(e: &Entry) -> Vec<&'static str> {
    let m = categories_of(e);
    CATEGORIES
        .iter()
        .enumerate()
        .filter(|(i, _)| m & (1 << i) != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// Every command and subcommand, indexed by id, with categories; and the
/// order rules are described in (top-level names sorted, each followed by
/// its sorted subcommands).
pub struct Catalog {
    pub by_id: Vec<&'static Entry>,
    pub cats: Vec<u32>,
    pub sorted: Vec<usize>,
}

pub fn catalog() -> &'static Catalog {
    static C: OnceLock<Catalog> = OnceLock::new();
    C.get_or_init(|| {
        let all = table().all();
        let n = all.iter().map(|e| e.id + 1).max().unwrap_or(0);
        let mut by_id: Vec<Option<&'static Entry>> = vec![None; n];
        for e in &all {
            by_id[e.id] = Some(*e);
        }
        let by_id: Vec<&'static Entry> = by_id.into_iter().flatten().collect();
        debug_assert!(by_id.iter().enumerate().all(|(i, e)| e.id == i));
        let cats = by_id.iter().map(|e| categories_of(e)).collect();
        let mut top: Vec<&Entry> = table().map.values().collect();
        top.sort_by(|a, b| a.fullname.cmp(&b.fullname));
        let mut sorted = Vec::new();
        for t in top {
            sorted.push(t.id);
            let mut subs: Vec<&Entry> = t.subs.values().collect();
            subs.sort_by(|a, b| a.fullname.cmp(&b.fullname));
            sorted.extend(subs.iter().map(|s| s.id));
        }
        Catalog {
            by_id,
            cats,
            sorted,
        }
    })
}

/// The order categories are tried in when describing rules: largest
/// first, so a category that contains another (@dangerous ⊃ @admin) is
/// used before the smaller one, which then adds nothing (this matches
/// Redis 7.0's output on such rules: `+@all -@dangerous -@admin` reads
/// back as `+@all -@dangerous`).
fn category_order() -> &'static [usize] {
    static O: OnceLock<Vec<usize>> = OnceLock::new();
    O.get_or_init(|| {
        let c = catalog();
        let size = |j: usize| c.cats.iter().filter(|m| *m & (1 << j) != 0).count();
        let mut v: Vec<usize> = (0..CATEGORIES.len()).collect();
        v.sort_by_key(|&j| std::cmp::Reverse(size(j)));
        v
    })
}

pub const PERM_READ: u8 = 1;
pub const PERM_WRITE: u8 = 2;
pub const PERM_ALL: u8 = 3;

#[derive(Clone, Default, PartialEq)]
pub struct Selector {
    /// Allowed commands, one bit per entry id.
    cmds: Vec<u64>,
    /// Redis's reserved "future commands" bit: set by +@all, cleared by
    /// -@all; decides whether the description starts with +@all.
    future: bool,
    /// Every command allowed (+@all and nothing taken away since).
    allcommands: bool,
    /// Allowed first arguments per command id (`+select|0`).
    firstargs: BTreeMap<usize, Vec<Vec<u8>>>,
    pub allkeys: bool,
    /// (flags, pattern) in the order added.
    keys: Vec<(u8, Vec<u8>)>,
    pub allchannels: bool,
    channels: Vec<Vec<u8>>,
}

/// Why a rule was refused (Redis's errno cases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError {
    Syntax,
    UnknownCommand,
    KeyAfterAll,
    ChannelAfterAll,
    NoSuchPassword,
    BadHash,
    FirstArgOfSub,
}

impl RuleError {
    pub fn text(self) -> &'static str {
        match self {
            RuleError::Syntax => "Syntax error",
            RuleError::UnknownCommand => "Unknown command or category name in ACL",
            RuleError::KeyAfterAll => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelAfterAll => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::FirstArgOfSub => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

/// Looks up "name" or "container|sub", case-insensitively.
fn lookup(name: &[u8]) -> Option<&'static Entry> {
    let s = String::from_utf8_lossy(name).to_ascii_lowercase();
    match s.split_once('|') {
        Some((c, sub)) => table().map.get(c)?.subs.get(sub),
        None => table().map.get(s.as_str()),
    }
}

impl Selector {
    fn new(allchannels: bool) -> Self {
        Selector {
            cmds: vec![0; catalog().by_id.len().div_ceil(64)],
            allchannels,
            ..Default::default()
        }
    }

    pub fn allows_id(&self, id: usize) -> bool {
        self.cmds
            .get(id / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if let Some(w) = self.cmds.get_mut(id / 64) {
            if on {
                *w |= 1 << (id % 64);
            } else {
                *w &= !(1 << (id % 64));
            }
        }
        if !on {
            self.allcommands = false;
        }
    }

    /// Allows or denies a command and, for a container, its subcommands.
    fn change(&mut self, e: &'static Entry, on: bool) {
        self.set_bit(e.id, on);
        self.firstargs.remove(&e.id);
        for s in e.subs.values() {
            self.set_bit(s.id, on);
            self.firstargs.remove(&s.id);
        }
    }

    fn change_category(&mut self, bit: u32, on: bool) {
        let c = catalog();
        for (id, cats) in c.cats.iter().enumerate() {
            if cats & bit != 0 {
                self.set_bit(id, on);
                self.firstargs.remove(&id);
            }
        }
    }

    fn all_commands(&mut self, on: bool) {
        for w in self.cmds.iter_mut() {
            *w = if on { u64::MAX } else { 0 };
        }
        self.future = on;
        self.allcommands = on;
        self.firstargs.clear();
    }

    /// Applies one selector rule (Redis's ACLSetSelector).
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let lower = op.to_ascii_lowercase();
        match &lower[..] {
            b"allkeys" | b"~*" => {
                self.allkeys = true;
                self.keys.clear();
                return Ok(());
            }
            b"resetkeys" => {
                self.allkeys = false;
                self.keys.clear();
                return Ok(());
            }
            b"allchannels" | b"&*" => {
                self.allchannels = true;
                self.channels.clear();
                return Ok(());
            }
            b"resetchannels" => {
                self.allchannels = false;
                self.channels.clear();
                return Ok(());
            }
            b"allcommands" | b"+@all" => {
                self.all_commands(true);
                return Ok(());
            }
            b"nocommands" | b"-@all" => {
                self.all_commands(false);
                return Ok(());
            }
            _ => {}
        }
        match op.first() {
            Some(b'~') | Some(b'%') => {
                if self.allkeys {
                    return Err(RuleError::KeyAfterAll);
                }
                let (flags, pat) = if op[0] == b'%' {
                    let mut f = 0;
                    let mut i = 1;
                    loop {
                        match op.get(i).map(|c| c.to_ascii_uppercase()) {
                            Some(b'R') if f & PERM_READ == 0 => f |= PERM_READ,
                            Some(b'W') if f & PERM_WRITE == 0 => f |= PERM_WRITE,
                            Some(b'~') => {
                                i += 1;
                                break;
                            }
                            _ => return Err(RuleError::Syntax),
                        }
                        i += 1;
                    }
                    (f, &op[i..])
                } else {
                    (PERM_ALL, &op[1..])
                };
                if pat == b"*" && flags == PERM_ALL {
                    self.allkeys = true;
                    self.keys.clear();
                } else if pat.iter().any(|c| c.is_ascii_whitespace()) {
                    return Err(RuleError::Syntax);
                } else if let Some(k) = self.keys.iter_mut().find(|(_, p)| p == pat) {
                    k.0 |= flags;
                } else {
                    self.keys.push((flags, pat.to_vec()));
                }
                Ok(())
            }
            Some(b'&') => {
                if self.allchannels {
                    return Err(RuleError::ChannelAfterAll);
                }
                let pat = &op[1..];
                if pat.iter().any(|c| c.is_ascii_whitespace()) {
                    return Err(RuleError::Syntax);
                }
                if !self.channels.iter().any(|c| c == pat) {
                    self.channels.push(pat.to_vec());
                }
                Ok(())
            }
            Some(&sign @ (b'+' | b'-')) if op.get(1) == Some(&b'@') => {
                let name = String::from_utf8_lossy(&op[2..]);
                let bit = cat_bit(&name).ok_or(RuleError::UnknownCommand)?;
                self.change_category(bit, sign == b'+');
                Ok(())
            }
            Some(b'+') => {
                let name = &op[1..];
                let Some(bar) = name.iter().rposition(|&c| c == b'|') else {
                    let e = lookup(name).ok_or(RuleError::UnknownCommand)?;
                    self.change(e, true);
                    return Ok(());
                };
                let (cmd, sub) = (&name[..bar], &name[bar + 1..]);
                let parent = lookup(cmd).ok_or(RuleError::UnknownCommand)?;
                if parent.fullname.contains('|') {
                    return Err(RuleError::FirstArgOfSub);
                }
                if sub.is_empty() {
                    return Err(RuleError::Syntax);
                }
                if !parent.subs.is_empty() {
                    let e = lookup(name).ok_or(RuleError::UnknownCommand)?;
                    self.change(e, true);
                } else if !self.allows_id(parent.id) {
                    let list = self.firstargs.entry(parent.id).or_default();
                    let sub = sub.to_ascii_lowercase();
                    if !list.contains(&sub) {
                        list.push(sub);
                    }
                }
                Ok(())
            }
            Some(b'-') => {
                let e = lookup(&op[1..]).ok_or(RuleError::UnknownCommand)?;
                self.change(e, false);
                Ok(())
            }
            _ => Err(RuleError::Syntax),
        }
    }

    /// Whether this selector may run the command (Redis's
    /// ACLSelectorCheckCmd). On denial: the reason and the offending
    /// argument index (for the log and DRYRUN).
    pub fn check(&self, e: &Entry, argv: &[&[u8]]) -> Result<(), (Denial, usize)> {
        if !self.allcommands && e.spec.flags & flags::NO_AUTH == 0 && !self.allows_id(e.id) {
            let idx = if e.fullname.contains('|') { 2 } else { 1 };
            let ok = argv.get(idx).is_some_and(|a| {
                self.firstargs
                    .get(&e.id)
                    .is_some_and(|l| l.iter().any(|x| x.eq_ignore_ascii_case(a)))
            });
            if !ok {
                return Err((Denial::Command, 0));
            }
        }
        if !self.allkeys {
            // The common single-key command, without building a list.
            let sp = e.spec;
            if sp.first_key == 1
                && sp.last_key == 1
                && argv.len() > 1
                && !matches!(
                    e.fullname.as_str(),
                    "set" | "bitfield" | "sort" | "sort_ro" | "georadius" | "georadiusbymember"
                )
            {
                let need = base_need(e.fullname.as_str(), sp.flags);
                if !self.key_ok(argv[1], need) {
                    return Err((Denial::Key, 1));
                }
            } else {
                for (i, need) in key_access(e, argv) {
                    if !self.key_ok(argv[i], need) {
                        return Err((Denial::Key, i));
                    }
                }
            }
        }
        if !self.allchannels {
            let (range, pattern) = channel_args(e, argv.len());
            for i in range {
                if !self.channel_ok(argv[i], pattern) {
                    return Err((Denial::Channel, i));
                }
            }
        }
        Ok(())
    }

    fn key_ok(&self, key: &[u8], need: u8) -> bool {
        self.keys
            .iter()
            .any(|(f, p)| f & need == need && basalt_storage::glob_match(p, key, false))
    }

    fn channel_ok(&self, ch: &[u8], is_pattern: bool) -> bool {
        self.channels.iter().any(|p| {
            if is_pattern {
                p == ch
            } else {
                basalt_storage::glob_match(p, ch, false)
            }
        })
    }

    pub fn describe_keys(&self) -> String {
        if self.allkeys {
            return "~*".into();
        }
        let v: Vec<String> = self
            .keys
            .iter()
            .map(|(f, p)| {
                let p = String::from_utf8_lossy(p);
                match *f {
                    PERM_READ => format!("%R~{p}"),
                    PERM_WRITE => format!("%W~{p}"),
                    _ => format!("~{p}"),
                }
            })
            .collect();
        v.join(" ")
    }

    pub fn describe_channels(&self) -> String {
        if self.allchannels {
            return "&*".into();
        }
        let v: Vec<String> = self
            .channels
            .iter()
            .map(|c| format!("&{}", String::from_utf8_lossy(c)))
            .collect();
        v.join(" ")
    }

    /// The command rules as Redis 7.0 rebuilds them
    /// (ACLDescribeSelectorCommandRules).
    pub fn describe_commands(&self) -> String {
        let c = catalog();
        let mut rules: Vec<String> = Vec::new();
        let additive = !self.future;
        let mut fake = Selector::new(false);
        fake.all_commands(!additive);
        rules.push(if additive { "-@all" } else { "+@all" }.into());
        let mut temp = self.clone();
        // Top-level commands of a category that are (on, off) in `temp`.
        let count = |temp: &Selector, bit: u32| {
            let (mut on, mut off) = (0, 0);
            for (id, e) in c.by_id.iter().enumerate() {
                if e.fullname.contains('|') || c.cats[id] & bit == 0 {
                    continue;
                }
                if temp.allows_id(id) {
                    on += 1;
                } else {
                    off += 1;
                }
            }
            (on, off)
        };
        let mut emit = |temp: &mut Selector, fake: &mut Selector, j: usize| {
            let bit = 1u32 << j;
            fake.change_category(bit, additive);
            temp.change_category(bit, !additive);
            rules.push(format!(
                "{}@{}",
                if additive { '+' } else { '-' },
                CATEGORIES[j]
            ));
        };
        // First the categories the rules cover exactly, largest first;
        // then Redis's rule: a category with more commands to change
        // than to leave.
        for &j in category_order() {
            let (on, off) = count(&temp, 1 << j);
            let (want, other) = if additive { (on, off) } else { (off, on) };
            if want > 0 && other == 0 {
                emit(&mut temp, &mut fake, j);
            }
        }
        for j in 0..CATEGORIES.len() {
            let (on, off) = count(&temp, 1 << j);
            if (additive && on > off) || (!additive && off > on) {
                emit(&mut temp, &mut fake, j);
            }
        }
        for &id in &c.sorted {
            let e = c.by_id[id];
            let (mine, theirs) = (self.allows_id(id), fake.allows_id(id));
            if mine != theirs {
                rules.push(format!("{}{}", if mine { '+' } else { '-' }, e.fullname));
            }
            if !mine {
                if let Some(l) = self.firstargs.get(&id) {
                    for a in l {
                        rules.push(format!("+{}|{}", e.fullname, String::from_utf8_lossy(a)));
                    }
                }
            }
        }
        rules.join(" ")
    }

    /// Keys, channels and commands, as in ACL LIST.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        let k = self.describe_keys();
        if !k.is_empty() {
            parts.push(k);
        }
        if self.allchannels {
            parts.push("&*".into());
        } else {
            parts.push("resetchannels".into());
            let ch = self.describe_channels();
            if !ch.is_empty() {
                parts.push(ch);
            }
        }
        parts.push(self.describe_commands());
        parts.join(" ")
    }

    fn unrestricted(&self) -> bool {
        self.allcommands && self.allkeys && self.allchannels
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denial {
    Command = 1,
    Key = 2,
    Auth = 3,
    Channel = 4,
}

impl Denial {
    fn reason(self) -> &'static str {
        match self {
            Denial::Command => "command",
            Denial::Key => "key",
            Denial::Auth => "auth",
            Denial::Channel => "channel",
        }
    }
}

/// The key arguments of a command with the access each needs, from its
/// key positions and a per-command table of read/write roles (Redis's
/// key-spec flags, checked against redis-server 7.0 with ACL DRYRUN for
/// the commands Basalt has: a read-only command reads its keys unless it
/// only reports metadata; a write command writes them, and also reads
/// those whose value it returns).
pub fn key_access(e: &Entry, argv: &[&[u8]]) -> Vec<(usize, u8)> {
    let name = e.fullname.as_str();
    let n = argv.len();
    let numkeys = |at: usize| -> usize {
        argv.get(at)
            .and_then(|a| std::str::from_utf8(a).ok())
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(0)
            .min(n.saturating_sub(at + 1))
    };
    let range = |from: usize, count: usize, f: u8| (from..from + count).map(move |i| (i, f));
    let r = PERM_READ;
    let w = PERM_WRITE;
    let rw = PERM_ALL;
    let v: Vec<(usize, u8)> = match name {
        "zunionstore" | "zinterstore" | "zdiffstore" => std::iter::once((1, w))
            .chain(range(3, numkeys(2), r))
            .collect(),
        "zunion" | "zinter" | "zdiff" | "zintercard" | "sintercard" => {
            range(2, numkeys(1), r).collect()
        }
        "lmpop" | "zmpop" => range(2, numkeys(1), rw).collect(),
        "blmpop" | "bzmpop" => range(3, numkeys(2), rw).collect(),
        // Every key is read (dumped) and deleted.
        "migrate" => crate::commands::migrate::key_positions(argv)
            .into_iter()
            .map(|i| (i, rw))
            .collect(),
        // The source is read; STORE/STOREDIST destinations are written.
        "georadius" | "georadiusbymember" => std::iter::once((1, r))
            .chain(
                crate::commands::geo::store_key_positions(name, argv)
                    .into_iter()
                    .map(|i| (i, w)),
            )
            .collect(),
        "sort" | "sort_ro" => {
            // The source is only read; a STORE destination is written.
            let mut v = vec![(1, r)];
            if name == "sort" {
                let mut i = 2;
                while i + 1 < n {
                    if argv[i].eq_ignore_ascii_case(b"store") {
                        v.push((i + 1, w));
                    }
                    i += 1;
                }
            }
            v
        }
        _ => {
            let pos = crate::commands::introspect::key_positions(e.spec, n);
            let base = base_need(name, e.spec.flags);
            let mut v: Vec<(usize, u8)> = pos.into_iter().map(|i| (i, base)).collect();
            match name {
                // Destination written, sources read.
                "sunionstore" | "sinterstore" | "sdiffstore" | "bitop" | "zrangestore"
                | "pfmerge" | "geosearchstore" => {
                    let first = if name == "bitop" { 2 } else { 1 };
                    // PFMERGE reads its destination too.
                    let dest = if name == "pfmerge" { rw } else { w };
                    for k in v.iter_mut() {
                        k.1 = if k.0 == first { dest } else { r };
                    }
                }
                // Source read (and taken from), destination written.
                "copy" | "rename" | "renamenx" | "smove" | "lmove" | "rpoplpush" | "blmove"
                | "brpoplpush" => {
                    for k in v.iter_mut() {
                        k.1 = if k.0 == 1 {
                            if name == "copy" {
                                r
                            } else {
                                rw
                            }
                        } else {
                            w
                        };
                    }
                }
                "set" if argv[3..].iter().any(|a| a.eq_ignore_ascii_case(b"get")) => {
                    v.iter_mut().for_each(|k| k.1 = rw)
                }
                // Only GET subcommands: a read.
                "bitfield"
                    if !argv[2..].iter().any(|a| {
                        a.eq_ignore_ascii_case(b"set") || a.eq_ignore_ascii_case(b"incrby")
                    }) =>
                {
                    v.iter_mut().for_each(|k| k.1 = r)
                }
                _ => {}
            }
            v
        }
    };
    v.into_iter().filter(|(i, _)| *i < n).collect()
}

/// The access a command's keys need unless `key_access` knows better.
fn base_need(name: &str, f: u32) -> u8 {
    if f & flags::WRITE != 0 {
        if access_on_write(name) {
            PERM_ALL
        } else {
            PERM_WRITE
        }
    } else if no_access_read(name) {
        0
    } else {
        PERM_READ
    }
}

/// Read-only commands whose key specs lack ACCESS (they report metadata,
/// not the value): any key pattern allows them, `%W~` included.
fn no_access_read(name: &str) -> bool {
    matches!(
        name,
        "strlen"
            | "type"
            | "exists"
            | "touch"
            | "object|encoding"
            | "object|freq"
            | "object|idletime"
            | "object|refcount"
            | "hlen"
            | "llen"
            | "scard"
            | "zcard"
            | "hexists"
            | "hstrlen"
            | "sismember"
    )
}

/// Write commands whose key specs include ACCESS (they return data).
fn access_on_write(name: &str) -> bool {
    matches!(
        name,
        "getset"
            | "getdel"
            | "getex"
            | "incr"
            | "decr"
            | "incrby"
            | "decrby"
            | "incrbyfloat"
            | "lpop"
            | "rpop"
            | "blpop"
            | "brpop"
            | "spop"
            | "zpopmin"
            | "zpopmax"
            | "bzpopmin"
            | "bzpopmax"
            | "hincrby"
            | "hincrbyfloat"
            | "zincrby"
            | "bitfield"
            | "move"
            | "setbit"
    )
}

/// The channel arguments a command names: their range and whether they
/// are patterns (matched literally against the user's patterns).
fn channel_args(e: &Entry, argc: usize) -> (std::ops::Range<usize>, bool) {
    match e.fullname.as_str() {
        "publish" | "spublish" => (1..2.min(argc), false),
        "subscribe" | "ssubscribe" => (1..argc, false),
        "psubscribe" => (1..argc, true),
        _ => (0..0, false),
    }
}

#[derive(Clone, Default)]
pub struct Rules {
    pub enabled: bool,
    pub nopass: bool,
    /// SHA-256 of each password.
    pub passwords: Vec<[u8; 32]>,
    /// Some(true): skip-sanitize-payload; Some(false): sanitize-payload.
    pub skip_sanitize: Option<bool>,
    pub root: Selector,
    pub selectors: Vec<Selector>,
}

pub fn sha256(pass: &[u8]) -> [u8; 32] {
    Sha256::digest(pass).into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn parse_hash(h: &[u8]) -> Result<[u8; 32], RuleError> {
    if h.len() != 64 || !h.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(RuleError::BadHash);
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        let s = std::str::from_utf8(&h[i * 2..i * 2 + 2]).map_err(|_| RuleError::BadHash)?;
        *o = u8::from_str_radix(s, 16).map_err(|_| RuleError::BadHash)?;
    }
    Ok(out)
}

impl Rules {
    /// A new user: off, no passwords, nothing allowed, channels as
    /// `acl-pubsub-default` says.
    pub fn new(allchannels: bool) -> Self {
        Rules {
            root: Selector::new(allchannels),
            ..Default::default()
        }
    }

    /// Applies one user rule (Redis's ACLSetUser).
    pub fn apply(&mut self, op: &[u8], allchannels_default: bool) -> Result<(), RuleError> {
        let lower = op.to_ascii_lowercase();
        match &lower[..] {
            b"on" => self.enabled = true,
            b"off" => self.enabled = false,
            b"skip-sanitize-payload" => self.skip_sanitize = Some(true),
            b"sanitize-payload" => self.skip_sanitize = Some(false),
            b"nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            b"resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            b"clearselectors" => self.selectors.clear(),
            b"reset" => {
                self.passwords.clear();
                self.nopass = false;
                self.root.apply(b"resetkeys")?;
                self.root.apply(b"resetchannels")?;
                if allchannels_default {
                    self.root.apply(b"allchannels")?;
                }
                self.enabled = false;
                self.skip_sanitize = Some(false);
                self.selectors.clear();
                self.root.apply(b"-@all")?;
            }
            _ => match op.first() {
                Some(b'>') => {
                    let h = sha256(&op[1..]);
                    if !self.passwords.contains(&h) {
                        self.passwords.push(h);
                    }
                    self.nopass = false;
                }
                Some(b'#') => {
                    let h = parse_hash(&op[1..])?;
                    if !self.passwords.contains(&h) {
                        self.passwords.push(h);
                    }
                    self.nopass = false;
                }
                Some(b'<') | Some(b'!') => {
                    let h = if op[0] == b'<' {
                        sha256(&op[1..])
                    } else {
                        parse_hash(&op[1..])?
                    };
                    let before = self.passwords.len();
                    self.passwords.retain(|p| *p != h);
                    if self.passwords.len() == before {
                        return Err(RuleError::NoSuchPassword);
                    }
                    self.nopass = false;
                }
                Some(b'(') if op.last() == Some(&b')') && op.len() >= 2 => {
                    let mut s = Selector::new(allchannels_default);
                    for part in op[1..op.len() - 1]
                        .split(|c| c.is_ascii_whitespace())
                        .filter(|p| !p.is_empty())
                    {
                        s.apply(part)?;
                    }
                    self.selectors.push(s);
                }
                _ => self.root.apply(op)?,
            },
        }
        Ok(())
    }

    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut v = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            v.push("nopass");
        }
        match self.skip_sanitize {
            Some(true) => v.push("skip-sanitize-payload"),
            Some(false) => v.push("sanitize-payload"),
            None => {}
        }
        v
    }

    pub fn password_hex(&self) -> Vec<String> {
        self.passwords.iter().map(|p| hex(p)).collect()
    }

    pub fn selectors(&self) -> &[Selector] {
        &self.selectors
    }

    /// The rule text after `user <name> ` in ACL LIST and the ACL file.
    pub fn describe(&self) -> String {
        let mut s = self.flag_names().join(" ");
        for p in self.password_hex() {
            s.push_str(" #");
            s.push_str(&p);
        }
        s.push(' ');
        s.push_str(&self.root.describe());
        for sel in &self.selectors {
            s.push_str(" (");
            s.push_str(&sel.describe());
            s.push(')');
        }
        s
    }

    fn unrestricted(&self) -> bool {
        self.root.unrestricted()
    }

    /// Checks every selector; the most specific denial wins (Redis
    /// ranks command < key < channel).
    pub fn check(&self, e: &Entry, argv: &[&[u8]]) -> Result<(), (Denial, usize)> {
        let mut worst: Option<(Denial, usize)> = None;
        for s in std::iter::once(&self.root).chain(&self.selectors) {
            match s.check(e, argv) {
                Ok(()) => return Ok(()),
                Err(d) => {
                    let worse = match worst {
                        Some(w) => d.0 > w.0,
                        None => true,
                    };
                    if worse {
                        worst = Some(d);
                    }
                }
            }
        }
        Err(worst.unwrap_or((Denial::Command, 0)))
    }

    /// Whether a selector that allows this command also allows reading
    /// every key (`~*`, `allkeys` or `%R~*`): SORT BY / GET need it.
    pub fn full_key_read(&self, e: &Entry, argv: &[&[u8]]) -> bool {
        std::iter::once(&self.root)
            .chain(&self.selectors)
            .filter(|s| s.check(e, argv).is_ok())
            .any(|s| {
                s.allkeys
                    || s.keys
                        .iter()
                        .any(|(f, p)| f & PERM_READ != 0 && p.as_slice() == b"*")
            })
    }

    /// Whether some selector lets this user use the channel (a pattern:
    /// subscribe to that exact pattern).
    pub fn channel_allowed(&self, ch: &[u8], is_pattern: bool) -> bool {
        std::iter::once(&self.root)
            .chain(&self.selectors)
            .any(|s| s.allchannels || s.channel_ok(ch, is_pattern))
    }

    pub fn password_ok(&self, pass: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let h = sha256(pass);
        // Compare every stored hash fully (no early exit on a byte).
        self.passwords.iter().fold(false, |ok, p| {
            ok | (p.iter().zip(&h).fold(0, |d, (a, b)| d | (a ^ b)) == 0)
        })
    }
}

pub struct User {
    pub name: Vec<u8>,
    /// Every command, key and channel allowed: the dispatch check is
    /// skipped. Kept in step with `rules`.
    pub unrestricted: AtomicBool,
    /// Set when the user is deleted (its clients are being closed).
    pub deleted: AtomicBool,
    /// Changes with every change of rules, unique across users: a
    /// connection keeps its own reference to the rules and refreshes it
    /// when this differs, so checks take no lock and write no shared
    /// cache line.
    pub version: AtomicU64,
    rules: RwLock<Arc<Rules>>,
}

static VERSIONS: AtomicU64 = AtomicU64::new(1);

impl User {
    pub fn new(name: &[u8], rules: Rules) -> Arc<User> {
        Arc::new(User {
            name: name.to_vec(),
            unrestricted: AtomicBool::new(rules.unrestricted()),
            deleted: AtomicBool::new(false),
            version: AtomicU64::new(VERSIONS.fetch_add(1, Relaxed)),
            rules: RwLock::new(Arc::new(rules)),
        })
    }

    pub fn rules(&self) -> Arc<Rules> {
        self.rules.read().clone()
    }

    pub fn replace(&self, r: Rules) {
        let mut w = self.rules.write();
        self.unrestricted.store(r.unrestricted(), Relaxed);
        *w = Arc::new(r);
        self.version.store(
            VERSIONS.fetch_add(1, Relaxed),
            std::sync::atomic::Ordering::Release,
        );
    }

    pub fn name_str(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// One ACL LOG entry.
pub struct LogEntry {
    pub count: u64,
    pub reason: &'static str,
    pub context: &'static str,
    pub object: Vec<u8>,
    pub username: Vec<u8>,
    pub ctime_ms: u64,
    pub client_info: String,
}

/// Entries within this long of a matching one are merged into it.
const LOG_GROUPING_MS: u64 = 60_000;

pub struct Acl {
    users: RwLock<BTreeMap<Vec<u8>, Arc<User>>>,
    default: Arc<User>,
    /// The default user has no password (or is off): clients start
    /// unauthenticated. Mirrors the default user's rules.
    pub default_needs_auth: AtomicBool,
    log: Mutex<VecDeque<LogEntry>>,
}

impl Default for Acl {
    fn default() -> Self {
        Self::new()
    }
}

impl Acl {
    pub fn new() -> Self {
        let mut r = Rules::new(true);
        r.enabled = true;
        r.nopass = true;
        r.root.apply(b"+@all").ok();
        r.root.apply(b"~*").ok();
        let default = User::new(b"default", r);
        let mut users = BTreeMap::new();
        users.insert(b"default".to_vec(), default.clone());
        Acl {
            users: RwLock::new(users),
            default,
            default_needs_auth: AtomicBool::new(false),
            log: Mutex::new(VecDeque::new()),
        }
    }

    pub fn default_user(&self) -> Arc<User> {
        self.default.clone()
    }

    pub fn get(&self, name: &[u8]) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    pub fn names(&self) -> Vec<Vec<u8>> {
        self.users.read().keys().cloned().collect()
    }

    pub fn all(&self) -> Vec<Arc<User>> {
        self.users.read().values().cloned().collect()
    }

    fn refresh_default(&self) {
        let r = self.default.rules();
        self.default_needs_auth
            .store(!r.nopass || !r.enabled, Relaxed);
    }

    /// ACL SETUSER: applies `ops` to a copy of the user (a new one if
    /// absent) and installs it only if every rule was accepted.
    pub fn set_user(
        &self,
        name: &[u8],
        ops: &[&[u8]],
        allchannels_default: bool,
    ) -> Result<(), (usize, RuleError)> {
        let existing = self.get(name);
        let mut r = match &existing {
            Some(u) => (*u.rules()).clone(),
            None => Rules::new(allchannels_default),
        };
        for (i, op) in ops.iter().enumerate() {
            r.apply(op, allchannels_default).map_err(|e| (i, e))?;
        }
        match existing {
            Some(u) => u.replace(r),
            None => {
                self.users.write().insert(name.to_vec(), User::new(name, r));
            }
        }
        self.refresh_default();
        Ok(())
    }

    /// Installs `rules` for `name` (config `user` lines).
    pub fn put_user(&self, name: &[u8], rules: Rules) {
        match self.get(name) {
            Some(u) => u.replace(rules),
            None => {
                self.users
                    .write()
                    .insert(name.to_vec(), User::new(name, rules));
            }
        }
        self.refresh_default();
    }

    /// Removes a user; returns it (its clients must be closed).
    pub fn delete(&self, name: &[u8]) -> Option<Arc<User>> {
        let u = self.users.write().remove(name)?;
        u.deleted.store(true, Relaxed);
        Some(u)
    }

    /// `requirepass`: the default user gets exactly this password, or
    /// `nopass` when empty.
    pub fn set_requirepass(&self, pass: &[u8]) {
        let mut r = (*self.default.rules()).clone();
        r.passwords.clear();
        if pass.is_empty() {
            r.nopass = true;
        } else {
            r.nopass = false;
            r.passwords.push(sha256(pass));
        }
        self.default.replace(r);
        self.refresh_default();
    }

    /// Checks credentials: the user if it exists, is on and the password
    /// matches.
    pub fn authenticate(&self, name: &[u8], pass: &[u8]) -> Option<Arc<User>> {
        let u = self.get(name)?;
        let ok = {
            let r = u.rules();
            r.enabled && r.password_ok(pass)
        };
        ok.then_some(u)
    }

    /// Replaces every user with `users` (ACL LOAD, aclfile at start). The
    /// default user keeps its identity and takes the new rules (or its
    /// defaults when the file has none). Returns the users removed or
    /// replaced, whose clients must be closed.
    pub fn replace_all(&self, users: Vec<(Vec<u8>, Rules)>) -> Vec<Arc<User>> {
        let mut map = self.users.write();
        let old: Vec<Arc<User>> = map
            .values()
            .filter(|u| u.name != b"default")
            .cloned()
            .collect();
        map.clear();
        let mut default_rules = None;
        for (name, rules) in users {
            if name == b"default" {
                default_rules = Some(rules);
            } else {
                map.insert(name.clone(), User::new(&name, rules));
            }
        }
        let dr = default_rules.unwrap_or_else(|| {
            let mut r = Rules::new(true);
            r.enabled = true;
            r.nopass = true;
            r.root.apply(b"+@all").ok();
            r.root.apply(b"~*").ok();
            r
        });
        self.default.replace(dr);
        map.insert(b"default".to_vec(), self.default.clone());
        drop(map);
        for u in &old {
            u.deleted.store(true, Relaxed);
        }
        self.refresh_default();
        old
    }

    /// Adds a denial or failed AUTH to the log, merging it into a recent
    /// identical entry as Redis does.
    #[allow(clippy::too_many_arguments)]
    pub fn log_event(
        &self,
        reason: Denial,
        in_multi: bool,
        object: &[u8],
        username: &[u8],
        client_info: String,
        now_ms: u64,
        max_len: usize,
    ) {
        let context = if in_multi { "multi" } else { "toplevel" };
        let mut log = self.log.lock();
        // Redis looks at the 10 newest entries only.
        let found = log.iter().take(10).position(|e| {
            e.reason == reason.reason()
                && e.context == context
                && e.object == object
                && e.username == username
                && now_ms.saturating_sub(e.ctime_ms) <= LOG_GROUPING_MS
        });
        if let Some(i) = found {
            if let Some(mut e) = log.remove(i) {
                e.count += 1;
                e.ctime_ms = now_ms;
                e.client_info = client_info;
                log.push_front(e);
            }
        } else {
            log.push_front(LogEntry {
                count: 1,
                reason: reason.reason(),
                context,
                object: object.to_vec(),
                username: username.to_vec(),
                ctime_ms: now_ms,
                client_info,
            });
        }
        log.truncate(max_len);
    }

    pub fn with_log<R>(&self, f: impl FnOnce(&mut VecDeque<LogEntry>) -> R) -> R {
        f(&mut self.log.lock())
    }
}

/// Splits an ACL SETUSER argument list, joining `(` ... `)` selectors
/// spread over several arguments into one (Redis's
/// ACLMergeSelectorArguments). Err: the argument an unmatched `(`
/// starts at.
pub fn merge_selector_args(args: &[&[u8]]) -> Result<Vec<Vec<u8>>, Vec<u8>> {
    let mut out = Vec::new();
    let mut open: Option<Vec<u8>> = None;
    let mut start: &[u8] = b"";
    for a in args {
        if let Some(cur) = open.as_mut() {
            cur.push(b' ');
            cur.extend_from_slice(a);
            if a.last() == Some(&b')') {
                out.push(open.take().unwrap_or_default());
            }
            continue;
        }
        if a.first() == Some(&b'(') && a.last() != Some(&b')') {
            open = Some(a.to_vec());
            start = a;
            continue;
        }
        out.push(a.to_vec());
    }
    if open.is_some() {
        return Err(start.to_vec());
    }
    Ok(out)
}

/// Parses ACL file / config `user` lines: `user <name> <rule> ...`.
/// Errors are reported as Redis's ACL LOAD does: every line's problems,
/// then a closing warning; nothing is applied when there is any.
pub fn parse_user_lines(
    text: &str,
    origin: &str,
    allchannels_default: bool,
) -> Result<Vec<(Vec<u8>, Rules)>, String> {
    let mut users: Vec<(Vec<u8>, Rules)> = Vec::new();
    let mut errors = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let words: Vec<&[u8]> = t.split_whitespace().map(str::as_bytes).collect();
        let lineno = i + 1;
        if words[0] != b"user" || words.len() < 2 {
            errors.push_str(&format!(
                "{origin}:{lineno} should start with user keyword followed by the username. "
            ));
            continue;
        }
        let name = words[1];
        if users.iter().any(|(n, _)| n == name) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{}' found on line {lineno}. ",
                String::from_utf8_lossy(name)
            ));
            continue;
        }
        let ops = match merge_selector_args(&words[2..]) {
            Ok(o) => o,
            Err(_) => {
                errors.push_str(&format!(
                    "{origin}:{lineno}: Unmatched parenthesis in selector definition. "
                ));
                continue;
            }
        };
        let mut r = Rules::new(allchannels_default);
        let mut syntax_error = false;
        let before = errors.len();
        for op in &ops {
            match r.apply(op, allchannels_default) {
                Ok(()) => {}
                // Unknown names are shown; other rules may hold a
                // password, so only the first such error, without it.
                Err(RuleError::UnknownCommand) => errors.push_str(&format!(
                    "{origin}:{lineno}: Error in applying operation '{}': {}. ",
                    String::from_utf8_lossy(op),
                    RuleError::UnknownCommand.text()
                )),
                Err(e) if !syntax_error => {
                    syntax_error = true;
                    errors.push_str(&format!("{origin}:{lineno}: {}. ", e.text()));
                }
                Err(_) => {}
            }
        }
        if errors.len() == before {
            users.push((name.to_vec(), r));
        }
    }
    if errors.is_empty() {
        Ok(users)
    } else {
        errors.push_str(
            "WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
        );
        Err(errors)
    }
}

/// The ACL file text for the current users (ACL SAVE).
pub fn file_text(acl: &Acl) -> String {
    let mut s = String::new();
    for u in acl.all() {
        s.push_str("user ");
        s.push_str(&u.name_str());
        s.push(' ');
        s.push_str(&u.rules().describe());
        s.push('\n');
    }
    s
}

/// Random hex for ACL GENPASS, from the OS's generator.
pub fn random_hex(chars: usize) -> String {
    let mut bytes = vec![0u8; chars.div_ceil(2)];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    if !filled {
        // Fall back to hashing the time and a counter.
        let seed = format!(
            "{:?}{:?}",
            std::time::SystemTime::now(),
            std::thread::current().id()
        );
        let mut h = sha256(seed.as_bytes()).to_vec();
        while h.len() < bytes.len() {
            let next = sha256(&h);
            h.extend_from_slice(&next);
        }
        let n = bytes.len();
        bytes.copy_from_slice(&h[..n]);
    }
    let mut s = hex(&bytes);
    s.truncate(chars);
    s
}

/// Protected mode's decision: refuse a connection from `peer` when the
/// mode is on, the default user has no password, and the peer is not on
/// the loopback interface (or a unix socket).
pub fn protected_refuses(
    protected: bool,
    default_nopass: bool,
    peer: Option<std::net::IpAddr>,
) -> bool {
    protected && default_nopass && peer.is_some_and(|ip| !ip.is_loopback())
}

pub const PROTECTED_MODE_ERROR: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_mode_decision() {
        let lo: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let lo6: std::net::IpAddr = "::1".parse().unwrap();
        let out: std::net::IpAddr = "10.1.2.3".parse().unwrap();
        assert!(protected_refuses(true, true, Some(out)));
        assert!(!protected_refuses(true, true, Some(lo)));
        assert!(!protected_refuses(true, true, Some(lo6)));
        assert!(!protected_refuses(true, true, None));
        assert!(!protected_refuses(false, true, Some(out)));
        assert!(!protected_refuses(true, false, Some(out)));
    }

    #[test]
    fn rules_describe_like_redis() {
        let mut r = Rules::new(false);
        for op in [
            "on",
            ">p1",
            "~k*",
            "%R~r*",
            "&ch*",
            "+@read",
            "-@dangerous",
            "+config|get",
        ] {
            r.apply(op.as_bytes(), false).unwrap();
        }
        let d = r.describe();
        assert!(d.starts_with("on #"), "{d}");
        assert!(
            d.contains("~k* %R~r* resetchannels &ch* -@all +@read"),
            "{d}"
        );
        assert!(d.contains("+config|get"), "{d}");
        assert!(d.contains("-keys"), "{d}");
        assert!(r.password_ok(b"p1"));
        assert!(!r.password_ok(b"p2"));
    }

    #[test]
    fn rule_errors() {
        let mut r = Rules::new(false);
        assert_eq!(r.apply(b"bogus", false), Err(RuleError::Syntax));
        assert_eq!(r.apply(b"+nosuch", false), Err(RuleError::UnknownCommand));
        assert_eq!(r.apply(b"<nopw", false), Err(RuleError::NoSuchPassword));
        assert_eq!(r.apply(b"#abc", false), Err(RuleError::BadHash));
        assert_eq!(
            r.apply(b"+config|get|x", false),
            Err(RuleError::FirstArgOfSub)
        );
        r.apply(b"~*", false).unwrap();
        assert_eq!(r.apply(b"~x", false), Err(RuleError::KeyAfterAll));
    }

    #[test]
    fn selector_merge() {
        let a: Vec<&[u8]> = vec![b"on", b"(+get", b"~x)", b"(+set ~y)"];
        let m = merge_selector_args(&a).unwrap();
        assert_eq!(
            m,
            vec![b"on".to_vec(), b"(+get ~x)".to_vec(), b"(+set ~y)".to_vec()]
        );
        assert!(merge_selector_args(&[b"(+get".as_slice()]).is_err());
    }
}
