//! SAVE BGSAVE LASTSAVE BGREWRITEAOF.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::args::eq;
use super::flags::*;
use super::{cmd, CmdError, CmdResult, CommandSpec, Ctx};

const fn srv(mut c: CommandSpec) -> CommandSpec {
    c.group = "server";
    c
}

pub static COMMANDS: &[CommandSpec] = &[
    srv(cmd(
        "save",
        1,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI,
        save,
    )),
    srv(cmd(
        "bgsave",
        -1,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING,
        bgsave,
    )),
    srv(cmd("lastsave", 1, LOADING | STALE | FAST, lastsave)),
    srv(cmd(
        "bgrewriteaof",
        1,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING,
        bgrewriteaof,
    )),
];

fn shared(ctx: &Ctx<'_>) -> Result<Arc<crate::shared::Shared>, CmdError> {
    ctx.srv
        .self_arc()
        .ok_or_else(|| CmdError::msg("ERR server is shutting down"))
}

fn save(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let srv = shared(ctx)?;
    let r = match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| crate::snapshot::take(&srv))
        }
        _ => crate::snapshot::take(&srv),
    };
    r.map_err(CmdError::msg)?;
    ctx.out.ok();
    Ok(())
}

/// Starts a snapshot on its own thread; false if one is already running.
/// The claim is taken before returning, so INFO shows it in progress as
/// soon as BGSAVE has replied.
pub fn start_background(srv: Arc<crate::shared::Shared>) -> bool {
    if !crate::snapshot::try_claim(&srv) {
        return false;
    }
    let s2 = srv.clone();
    let spawned = std::thread::Builder::new()
        .name("basalt-snapshot".into())
        .spawn(move || {
            let _ = crate::snapshot::run_background(&s2);
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the snapshot thread: {e}");
        srv.snap.in_progress.store(false, Relaxed);
        return false;
    }
    true
}

fn bgsave(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let schedule = match a.len() {
        1 => false,
        2 if eq(a[1], "schedule") => true,
        _ => return Err(CmdError::Syntax),
    };
    let srv = shared(ctx)?;
    if !start_background(srv.clone()) {
        if schedule {
            srv.snap_scheduled.store(true, Relaxed);
            ctx.out.simple("Background saving scheduled");
            return Ok(());
        }
        return Err(CmdError::msg("ERR Background save already in progress"));
    }
    ctx.out.simple("Background saving started");
    Ok(())
}

fn lastsave(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let t = ctx.srv.snap.last_save_time.load(Relaxed);
    ctx.out.int(if t == 0 {
        ctx.srv.start_unix_secs as i64
    } else {
        t as i64
    });
    Ok(())
}

fn bgrewriteaof(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let srv = shared(ctx)?;
    if !start_background(srv.clone()) {
        srv.snap_scheduled.store(true, Relaxed);
        ctx.out
            .simple("Background append only file rewriting scheduled");
        return Ok(());
    }
    ctx.out
        .simple("Background append only file rewriting started");
    Ok(())
}
