//! Transactions: MULTI EXEC DISCARD WATCH UNWATCH.
//!
//! MULTI starts queueing (see `execute` in `mod.rs`: every command but
//! EXEC DISCARD MULTI WATCH QUIT RESET is checked, then queued with
//! `+QUEUED`; a rejected one flags the transaction). EXEC:
//!
//! 1. plans the shards: the key positions of every queued command and
//!    every watched key; a command that reaches the whole keyspace (no
//!    key spec: FLUSHALL, KEYS, SCAN...) or whose keys its spec does not
//!    describe (numkeys forms) takes every shard;
//! 2. locks them in ascending order ([`TxnScope`]) and keeps them for the
//!    whole run, so no other client on any thread sees a partial state;
//! 3. checks WATCH (dirty flag, or a watched key expired since) under
//!    those locks;
//! 4. runs the commands through the normal dispatch with the scope in
//!    the `Ctx`: key access borrows the held shards, and every `propagate`
//!    goes to the scope's buffer;
//! 5. appends that buffer as ONE log record (replayed atomically), still
//!    under the locks, then releases them.

use std::sync::atomic::Ordering::Relaxed;

use basalt_storage::Keyspace;

use super::flags::*;
use super::{
    cmd, execute_entry, introspect::key_positions_iter, CmdError, CmdResult, CommandSpec, Ctx,
};
use crate::client::MultiState;
use crate::db::TxnScope;

const fn tx(mut c: CommandSpec) -> CommandSpec {
    c.group = "transactions";
    c.since = "1.2.0";
    c
}

pub static COMMANDS: &[CommandSpec] = &[
    tx(cmd(
        "multi",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        multi,
    )),
    tx(cmd(
        "exec",
        1,
        NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG,
        exec,
    )),
    tx(cmd(
        "discard",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        discard,
    )),
    CommandSpec {
        first_key: 1,
        last_key: -1,
        step: 1,
        since: "2.2.0",
        ..tx(cmd(
            "watch",
            -2,
            NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
            watch,
        ))
    },
    CommandSpec {
        since: "2.2.0",
        ..tx(cmd(
            "unwatch",
            1,
            NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
            unwatch,
        ))
    },
];

/// Commands that reach the whole keyspace without naming keys.
const WHOLE_KEYSPACE: &[&str] = &[
    "flushall",
    "flushdb",
    "swapdb",
    "keys",
    "scan",
    "dbsize",
    "randomkey",
    "info",
    "debug",
    // Keyless subcommands that read every shard (table sizes).
    "memory|stats",
    "memory|doctor",
];

/// Commands whose keys their first/last/step spec does not cover
/// (numkeys arguments, patterns, STORE keywords): they take every shard,
/// and COMMAND INFO flags them `movablekeys` as Redis does.
pub(crate) const MOVABLE_KEYS: &[&str] = &[
    "zunionstore",
    "zinterstore",
    "zdiffstore",
    "zunion",
    "zinter",
    "zdiff",
    "zintercard",
    "sintercard",
    "lmpop",
    "blmpop",
    "zmpop",
    "bzmpop",
    "sort",
    "sort_ro",
    "eval",
    "evalsha",
    "eval_ro",
    "evalsha_ro",
    "fcall",
    "fcall_ro",
    "migrate",
    "georadius",
    "georadiusbymember",
    "xread",
    "xreadgroup",
];

fn needs_all(spec: &CommandSpec, parent: Option<&str>) -> bool {
    let name = parent.unwrap_or(spec.name);
    WHOLE_KEYSPACE.contains(&name)
        || MOVABLE_KEYS.contains(&name)
        || parent.is_some_and(|p| {
            WHOLE_KEYSPACE
                .iter()
                .any(|w| w.split_once('|') == Some((p, spec.name)))
        })
}

fn multi(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::msg("ERR MULTI calls can not be nested"));
    }
    let m = ctx.client.spare_multi.take().unwrap_or_default();
    ctx.client.multi = Some(m);
    ctx.client.handle.multi_len.store(0, Relaxed);
    ctx.out.ok();
    Ok(())
}

fn discard(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let Some(m) = ctx.client.multi.take() else {
        return Err(CmdError::msg("ERR DISCARD without MULTI"));
    };
    recycle(ctx.client, m);
    ctx.client.handle.multi_len.store(-1, Relaxed);
    ctx.srv.watches.unwatch_all(&mut ctx.client.watch);
    ctx.out.ok();
    Ok(())
}

fn watch(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::msg("ERR WATCH inside MULTI is not allowed"));
    }
    let db = ctx.client.db;
    for key in &a[1..] {
        // Whether the key is already logically expired (its later removal
        // by expiry is then not a change), read under its shard lock.
        let expired = {
            let h = Keyspace::hash(key);
            let g = ctx.shard(ctx.srv.ks.shard_of(h));
            g.dbs[db]
                .get(h, key)
                .is_some_and(|e| e.is_expired(ctx.now_ms))
        };
        ctx.srv
            .watches
            .watch(&mut ctx.client.watch, db, key, expired);
    }
    ctx.out.ok();
    Ok(())
}

fn unwatch(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    ctx.srv.watches.unwatch_all(&mut ctx.client.watch);
    ctx.out.ok();
    Ok(())
}

/// Discards a transaction and its watches (RESET, disconnect).
pub fn clear(ctx_srv: &crate::shared::Shared, client: &mut crate::client::ClientState) {
    client.multi = None;
    client.handle.multi_len.store(-1, Relaxed);
    ctx_srv.watches.unwatch_all(&mut client.watch);
}

fn exec(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let Some(m) = ctx.client.multi.take() else {
        return Err(CmdError::msg("ERR EXEC without MULTI"));
    };
    ctx.client.handle.multi_len.store(-1, Relaxed);
    if m.failed {
        ctx.srv.watches.unwatch_all(&mut ctx.client.watch);
        return Err(CmdError::msg(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    let srv = ctx.srv;
    let (shards, all) = plan(srv, &m, &ctx.client.watch);
    let scope = TxnScope::lock(&srv.ks, shards, all);
    let mut inner = Ctx {
        srv,
        client: &mut *ctx.client,
        out: &mut *ctx.out,
        now_ms: ctx.now_ms,
        loading: false,
        txn: Some(&scope),
    };
    if watch_failed(&inner) {
        drop(scope);
        ctx.srv.watches.unwatch_all(&mut ctx.client.watch);
        ctx.out.null_array();
        return Ok(());
    }
    inner.out.array(m.cmds.len());
    inner.client.in_exec = true;
    let mut argv = Vec::with_capacity(8);
    for (i, e) in m.entries.iter().enumerate() {
        m.argv_into(i, &mut argv);
        execute_entry(&mut inner, e, &argv);
    }
    inner.client.in_exec = false;
    if let Some(rec) = scope.record() {
        srv.log_record(&rec);
    }
    drop(scope);
    ctx.srv.watches.unwatch_all(&mut ctx.client.watch);
    recycle(ctx.client, m);
    Ok(())
}

/// Keeps a finished transaction's buffers for the next MULTI (unless they
/// grew large).
fn recycle(client: &mut crate::client::ClientState, mut m: Box<MultiState>) {
    if m.data.capacity() <= 64 * 1024 && m.args.capacity() <= 4096 {
        m.clear();
        client.spare_multi = Some(m);
    }
}

/// The shards the transaction needs, or all of them.
fn plan(
    srv: &crate::shared::Shared,
    m: &MultiState,
    w: &crate::watch::ClientWatch,
) -> (Vec<usize>, bool) {
    let ks = &srv.ks;
    let mut shards: Vec<usize> = w
        .keys
        .iter()
        .map(|(_, k, _)| ks.shard_of(Keyspace::hash(k)))
        .collect();
    let mut argv = Vec::with_capacity(8);
    for (i, e) in m.entries.iter().enumerate() {
        let parent = e.fullname.split_once('|').map(|(p, _)| p);
        if needs_all(e.spec, parent) {
            return (Vec::new(), true);
        }
        m.argv_into(i, &mut argv);
        for i in key_positions_iter(e.spec, argv.len()) {
            shards.push(ks.shard_of(Keyspace::hash(argv[i])));
        }
    }
    (shards, false)
}

/// WATCH check, under the transaction's locks: a watched key changed, or
/// one that was live when watched has expired since (Redis 7).
fn watch_failed(ctx: &Ctx<'_>) -> bool {
    let w = &ctx.client.watch;
    if w.state.dirty.load(Relaxed) {
        return true;
    }
    w.keys.iter().any(|(db, key, was_expired)| {
        if *was_expired {
            return false;
        }
        let h = Keyspace::hash(key);
        let g = ctx.shard(ctx.srv.ks.shard_of(h));
        let expired = g.dbs[*db]
            .get(h, key)
            .is_some_and(|e| e.is_expired(ctx.now_ms));
        expired
    })
}

#[cfg(test)]
mod tests {
    use super::super::table;
    use super::*;

    /// Every command that reads or writes data either names its keys in
    /// its key spec or is planned as whole-keyspace/movable-keys; else EXEC
    /// would reach shards it did not lock.
    #[test]
    fn every_data_command_is_planned() {
        let mut unplanned = Vec::new();
        for e in table().all() {
            let s = e.spec;
            let parent = e.fullname.split_once('|').map(|(p, _)| p);
            let data = s.flags & (WRITE | READONLY) != 0;
            if data && s.first_key <= 0 && !needs_all(s, parent) && s.subcommands.is_empty() {
                unplanned.push(e.fullname.clone());
            }
        }
        unplanned.sort();
        // Keyless commands that read no keyspace data.
        let ok = [
            "lastsave",
            "command|count",
            "command|docs",
            "command|info",
            "command|list",
            "command|help",
            "pubsub",
        ];
        unplanned.retain(|n| !ok.contains(&n.as_str()));
        assert!(
            unplanned.is_empty(),
            "EXEC cannot plan the shards of: {unplanned:?}"
        );
        // Keyless commands whose handlers read every shard (their flags
        // name no data access, so the loop above cannot see them).
        for (parent, sub) in [("memory", "stats"), ("memory", "doctor")] {
            let e = table()
                .map
                .get(parent)
                .and_then(|p| p.subs.get(sub))
                .expect(sub);
            assert!(needs_all(e.spec, Some(parent)), "{parent}|{sub}");
        }
    }
}
