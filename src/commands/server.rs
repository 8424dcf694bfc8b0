//! Server commands: DBSIZE FLUSHDB FLUSHALL SWAPDB TIME SHUTDOWN DEBUG.

use std::sync::atomic::Ordering::Relaxed;

use super::args::{eq, int};
use super::flags::*;
use super::{cmd, container, CmdError, CmdResult, CommandSpec, Ctx};
use crate::shared::ShutdownKind;

const fn srv(mut c: CommandSpec) -> CommandSpec {
    c.group = "server";
    c
}

pub static COMMANDS: &[CommandSpec] = &[
    srv(cmd("dbsize", 1, READONLY | FAST | CAT_KEYSPACE, dbsize)),
    CommandSpec {
        group: "server",
        ..cmd("flushdb", -1, WRITE | CAT_KEYSPACE | CAT_DANGEROUS, flushdb)
    },
    CommandSpec {
        group: "server",
        ..cmd(
            "flushall",
            -1,
            WRITE | CAT_KEYSPACE | CAT_DANGEROUS,
            flushall,
        )
    },
    srv(cmd(
        "swapdb",
        3,
        WRITE | FAST | CAT_KEYSPACE | CAT_DANGEROUS,
        swapdb,
    )),
    srv(cmd("time", 1, LOADING | STALE | FAST, time)),
    CommandSpec {
        group: "generic",
        since: "7.2.0",
        ..cmd("waitaof", 4, NOSCRIPT, waitaof)
    },
    CommandSpec {
        group: "generic",
        since: "3.0.0",
        ..cmd("wait", 3, NOSCRIPT | CAT_CONNECTION, wait)
    },
    CommandSpec {
        since: "2.8.12",
        ..srv(cmd("role", 1, NOSCRIPT | LOADING | STALE | FAST, role))
    },
    srv(cmd(
        "shutdown",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | SENTINEL | ALLOW_BUSY,
        shutdown,
    )),
    CommandSpec {
        group: "server",
        subcommands: &[
            cmd("sleep", 3, ADMIN, debug_sleep),
            cmd("set-active-expire", 3, ADMIN, debug_set_active_expire),
            CommandSpec {
                first_key: 2,
                last_key: 2,
                step: 1,
                ..cmd("object", 3, ADMIN, debug_object)
            },
            cmd("aof-fault", -3, ADMIN, debug_aof_fault),
            cmd("populate", -3, ADMIN, debug_populate),
            cmd("help", 2, ADMIN, debug_help),
        ],
        ..cmd(
            "debug",
            -2,
            ADMIN | NOSCRIPT | LOADING | STALE | PROTECTED,
            container,
        )
    },
];

fn dbsize(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let n = ctx.db_len(ctx.client.db);
    ctx.out.int(n as i64);
    Ok(())
}

/// Parses the optional ASYNC|SYNC argument of FLUSHDB/FLUSHALL.
fn flush_mode(a: &[&[u8]]) -> CmdResult {
    match a.len() {
        1 => Ok(()),
        2 if eq(a[1], "async") || eq(a[1], "sync") => Ok(()),
        _ => Err(CmdError::Syntax),
    }
}

fn flushdb(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    flush_mode(a)?;
    let db = ctx.client.db;
    let mut guards = ctx.shards_all();
    touch_flushed(ctx, &guards, db);
    crate::blocking::mark_db_ready(ctx.srv, db);
    let mut n = 0;
    for g in guards.iter_mut() {
        n += g.dbs[db].len();
        g.dbs[db].clear();
    }
    ctx.propagate(&[b"FLUSHDB"]);
    ctx.srv
        .tracking
        .invalidate_all(Some(ctx.client.handle.id), &ctx.srv.clients);
    drop(guards);
    ctx.srv.stats.dirty.fetch_add(n as u64, Relaxed);
    ctx.out.ok();
    Ok(())
}

/// Whether `key` is in `db`, looked up in the locked shards.
fn exists_in(ctx: &Ctx<'_>, guards: &[crate::db::ShardRef<'_>], db: usize, key: &[u8]) -> bool {
    let h = basalt_storage::Keyspace::hash(key);
    guards[ctx.srv.ks.shard_of(h)].dbs[db].get(h, key).is_some()
}

/// WATCH: a flush changes every watched key that exists in `db`.
fn touch_flushed(ctx: &Ctx<'_>, guards: &[crate::db::ShardRef<'_>], db: usize) {
    ctx.srv
        .watches
        .touch_db(db, |k| exists_in(ctx, guards, db, k));
}

fn flushall(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    flush_mode(a)?;
    let mut guards = ctx.shards_all();
    for db in 0..ctx.srv.ks.num_dbs() {
        touch_flushed(ctx, &guards, db);
        crate::blocking::mark_db_ready(ctx.srv, db);
    }
    for g in guards.iter_mut() {
        for d in g.dbs.iter_mut() {
            d.clear();
        }
    }
    ctx.propagate(&[b"FLUSHALL"]);
    ctx.srv
        .tracking
        .invalidate_all(Some(ctx.client.handle.id), &ctx.srv.clients);
    drop(guards);
    ctx.out.ok();
    Ok(())
}

fn swapdb(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let x = super::args::int32(a[1]).map_err(|_| CmdError::msg("ERR invalid first DB index"))?;
    let y = super::args::int32(a[2]).map_err(|_| CmdError::msg("ERR invalid second DB index"))?;
    let n = ctx.srv.ks.num_dbs() as i64;
    if x < 0 || x >= n || y < 0 || y >= n {
        return Err(CmdError::DbIndex);
    }
    let mut guards = ctx.shards_all();
    if x != y {
        for (d, other) in [(x as usize, y as usize), (y as usize, x as usize)] {
            ctx.srv.watches.touch_db(d, |k| {
                exists_in(ctx, &guards, d, k) || exists_in(ctx, &guards, other, k)
            });
        }
        for g in guards.iter_mut() {
            g.dbs.swap(x as usize, y as usize);
            g.expire_cursor.swap(x as usize, y as usize);
        }
        // Clients stay blocked on their db number: what it holds now
        // serves them, or ends their XREADGROUP waits (Redis's
        // scanDatabaseForDeletedStreams and scanDatabaseForReadyKeys).
        crate::blocking::mark_db_ready(ctx.srv, x as usize);
        crate::blocking::mark_db_ready(ctx.srv, y as usize);
    }
    ctx.propagate(&[b"SWAPDB", a[1], a[2]]);
    drop(guards);
    ctx.out.ok();
    Ok(())
}

/// WAIT numreplicas timeout: Basalt has no replicas, so 0 at once when
/// none are asked for (or inside EXEC, where nothing may block), else 0
/// once the timeout passes (never, for 0), as Redis answers with none
/// connected. For a durable point on this server, see WAITAOF.
fn wait(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let numreplicas = int(a[1])?;
    let timeout =
        int(a[2]).map_err(|_| CmdError::msg("ERR timeout is not an integer or out of range"))?;
    if timeout < 0 {
        return Err(CmdError::msg("ERR timeout is negative"));
    }
    if numreplicas <= 0 || ctx.client.in_exec {
        ctx.out.int(0);
        return Ok(());
    }
    ctx.client.pending_waitaof = Some(crate::client::WaitAof {
        numlocal: 0,
        numreplicas,
        timeout_ms: timeout as u64,
        replicas_only: true,
    });
    Ok(())
}

/// ROLE: always a master, with no replicas.
fn role(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    ctx.out.array(3);
    ctx.out.bulk(b"master");
    ctx.out.int(0);
    ctx.out.array(0);
    Ok(())
}

fn waitaof(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let numlocal = int(a[1])?;
    let numreplicas = int(a[2])?;
    let timeout =
        int(a[3]).map_err(|_| CmdError::msg("ERR timeout is not an integer or out of range"))?;
    if timeout < 0 {
        return Err(CmdError::msg("ERR timeout is negative"));
    }
    if numlocal > 0 && ctx.srv.log.get().is_none() {
        return Err(CmdError::msg(
            "ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled.",
        ));
    }
    if ctx.client.in_exec {
        // Inside EXEC nothing may wait (Redis's DENY_BLOCKING): answer with
        // what is fsynced now.
        let local = ctx
            .srv
            .log
            .get()
            .map_or(0, |l| (l.durable() >= l.appended()) as i64);
        ctx.out.array(2);
        ctx.out.int(local);
        ctx.out.int(0);
        return Ok(());
    }
    // The connection waits for the log (see connection::run_one) and
    // writes the reply, keeping reply order within a pipeline.
    ctx.client.pending_waitaof = Some(crate::client::WaitAof {
        numlocal,
        numreplicas,
        timeout_ms: timeout as u64,
        replicas_only: false,
    });
    Ok(())
}

fn time(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    ctx.out.array(2);
    ctx.out.bulk_int(d.as_secs() as i64);
    ctx.out.bulk_int(d.subsec_micros() as i64);
    Ok(())
}

fn shutdown(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    // Parsed as Redis 7.0: unknown words, ABORT with anything else, and
    // SAVE with NOSAVE are syntax errors.
    let (mut nosave, mut save, mut other, mut abort) = (false, false, false, false);
    for opt in &a[1..] {
        if eq(opt, "nosave") {
            nosave = true;
        } else if eq(opt, "save") {
            save = true;
        } else if eq(opt, "now") || eq(opt, "force") {
            other = true;
        } else if eq(opt, "abort") {
            abort = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if (abort && (nosave || save || other)) || (nosave && save) {
        return Err(CmdError::Syntax);
    }
    if abort {
        return Err(CmdError::msg("ERR No shutdown in progress."));
    }
    let kind = if nosave {
        ShutdownKind::NoSave
    } else if save {
        ShutdownKind::Save
    } else {
        ShutdownKind::Default
    };
    // Redis replies nothing on success: the connection just closes.
    ctx.srv.shutdown.send_replace(Some(kind));
    ctx.client.close_after_reply = true;
    Ok(())
}

/// DEBUG POPULATE count [prefix] [size]: creates `prefix:N` = `value:N`
/// (padded with zero bytes to `size`), skipping existing keys, as Redis's.
/// Like Redis's, it is a test helper and is not written to the log.
fn debug_populate(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let count =
        int(a[2]).map_err(|_| CmdError::msg("ERR value is out of range, must be positive"))?;
    if count < 0 {
        return Err(CmdError::msg("ERR value is out of range, must be positive"));
    }
    let prefix: &[u8] = a.get(3).copied().unwrap_or(b"key");
    let size = match a.get(4) {
        Some(v) => int(v)
            .ok()
            .filter(|&n| n >= 0)
            .ok_or_else(|| CmdError::msg("ERR value is out of range, must be positive"))?
            as usize,
        None => 0,
    };
    if a.len() > 5 {
        return Err(CmdError::Syntax);
    }
    let db = ctx.client.db;
    let ks = &ctx.srv.ks;
    let mut key = Vec::new();
    let mut val = Vec::new();
    for i in 0..count {
        key.clear();
        key.extend_from_slice(prefix);
        key.push(b':');
        key.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
        val.clear();
        val.extend_from_slice(b"value:");
        val.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
        if size > 0 {
            val.resize(size, 0);
        }
        let h = basalt_storage::Keyspace::hash(&key);
        let mut g = ctx.shard(ks.shard_of(h));
        if g.dbs[db].get(h, &key).is_none() {
            g.dbs[db].insert(
                h,
                &key,
                basalt_storage::Entry::new(basalt_storage::Value::from_bytes(&val)),
            );
        }
    }
    ctx.out.ok();
    Ok(())
}

fn debug_sleep(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    // C `atof`, as Redis: junk reads as 0 (no sleep), never an error.
    let secs = crate::num::atof(a[2]);
    if secs > 0.0 && secs.is_finite() {
        let d = std::time::Duration::from_secs_f64(secs.min(3600.0));
        // Blocks this worker only, like Redis's DEBUG SLEEP blocks its loop.
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| std::thread::sleep(d))
            }
            _ => std::thread::sleep(d),
        }
    }
    ctx.out.ok();
    Ok(())
}

fn debug_set_active_expire(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    // C `atoi`, as Redis: junk reads as 0.
    let v = crate::num::atoi(a[2]);
    ctx.srv.active_expire_enabled.store(v != 0, Relaxed);
    ctx.out.ok();
    Ok(())
}

fn debug_object(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let k = ctx.write_key(a[2]);
    let info = k.get().map(|e| {
        let idle = crate::shared::lru_elapsed(ctx.srv.lru_clock(), e.lru);
        format!(
            "Value at:0x0 refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
            e.value.encoding_name(),
            e.value.heap_size().max(1),
            e.lru,
            idle
        )
    });
    drop(k);
    match info {
        Some(s) => ctx.out.simple(&s),
        None => return Err(CmdError::NoSuchKey),
    }
    Ok(())
}

/// DEBUG AOF-FAULT fail-syncs|fail-writes|enospc|sync-delay-ms <n>|heal:
/// drives the fault injector under the log (only with
/// `debug-aof-fault-injection yes`), for failure tests.
fn debug_aof_fault(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let f = ctx.srv.aof_faults.get().ok_or_else(|| {
        CmdError::msg("ERR fault injection is off (start with --debug-aof-fault-injection yes)")
    })?;
    if eq(a[2], "fail-syncs") {
        f.set_fail_syncs(true);
    } else if eq(a[2], "fail-writes") {
        f.set_fail_writes(true);
    } else if eq(a[2], "enospc") {
        f.set_kind(basalt_aof::fs::FaultKind::Enospc);
    } else if eq(a[2], "heal") {
        f.heal();
    } else if eq(a[2], "write-rate") && a.len() == 4 {
        f.set_write_rate(int(a[3])?.max(0) as u64);
    } else if eq(a[2], "sync-delay-ms") && a.len() == 4 {
        let ms = int(a[3])?.max(0) as u64;
        f.set_sync_delay(std::time::Duration::from_millis(ms));
    } else {
        return Err(CmdError::Syntax);
    }
    ctx.out.ok();
    Ok(())
}

fn debug_help(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    super::keys::help_reply(
        ctx,
        "debug",
        &[
            "OBJECT <key>",
            "    Show low level info about `key` and associated value.",
            "SET-ACTIVE-EXPIRE <0|1>",
            "    Setting it to 0 disables expiring keys in background when they are not",
            "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
            "    default.",
            "SLEEP <seconds>",
            "    Stop the server for <seconds>. Decimals allowed.",
        ],
    );
    Ok(())
}
