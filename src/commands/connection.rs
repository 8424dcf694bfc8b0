//! Connection commands: PING ECHO QUIT RESET HELLO SELECT AUTH.

use std::sync::atomic::Ordering::Relaxed;

use super::args::{eq, int};
use super::flags::*;
use super::{cmd, CmdError, CmdResult, CommandSpec, Ctx};
use crate::client::ReplyMode;

const fn conn(mut c: CommandSpec) -> CommandSpec {
    c.group = "connection";
    c
}

pub static COMMANDS: &[CommandSpec] = &[
    conn(cmd("ping", -1, FAST | SENTINEL, ping)),
    conn(cmd("echo", 2, LOADING | STALE | FAST, echo)),
    conn(cmd(
        "quit",
        -1,
        NO_AUTH | NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        quit,
    )),
    conn(cmd(
        "reset",
        1,
        NO_AUTH | LOADING | STALE | FAST | NOSCRIPT | ALLOW_BUSY,
        reset,
    )),
    conn(cmd(
        "hello",
        -1,
        NO_AUTH | LOADING | STALE | FAST | NOSCRIPT | ALLOW_BUSY,
        hello,
    )),
    conn(cmd("select", 2, LOADING | STALE | FAST, select)),
    conn(cmd(
        "auth",
        -2,
        NO_AUTH | LOADING | STALE | FAST | NOSCRIPT | ALLOW_BUSY,
        auth,
    )),
];

fn ping(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    if a.len() <= 2 && !ctx.out.resp3 && ctx.client.subs.any() {
        // Subscribed RESP2 clients get a multi-bulk, as Redis.
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(a.get(1).copied().unwrap_or(b""));
        return Ok(());
    }
    match a.len() {
        1 => ctx.out.simple("PONG"),
        2 => ctx.out.bulk(a[1]),
        _ => return Err(CmdError::WrongArity("ping".into())),
    }
    Ok(())
}

fn echo(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    ctx.out.bulk(a[1]);
    Ok(())
}

fn quit(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    ctx.out.ok();
    ctx.client.close_after_reply = true;
    Ok(())
}

fn reset(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    super::multi::clear(ctx.srv, ctx.client);
    super::pubsub::unsubscribe_all(ctx.srv, ctx.client);
    ctx.client.select(0);
    ctx.client.reply_mode = ReplyMode::On;
    ctx.out.resp3 = false;
    ctx.client.handle.resp.store(2, Relaxed);
    ctx.client.handle.no_evict.store(false, Relaxed);
    ctx.client.handle.no_touch.store(false, Relaxed);
    // The connection name goes too (lib-name/lib-ver stay, as in Redis).
    ctx.client.handle.name.lock().clear();
    ctx.client.set_user(ctx.srv.acl.default_user());
    ctx.client.authenticated = !ctx.srv.acl.default_needs_auth.load(Relaxed);
    ctx.out.simple("RESET");
    Ok(())
}

/// Authenticates as `user` or fails with WRONGPASS; a failure is counted
/// in the ACL log and makes the connection pause (`auth_failed`).
fn authenticate(ctx: &mut Ctx<'_>, user: &[u8], pass: &[u8]) -> Result<(), CmdError> {
    match ctx.srv.acl.authenticate(user, pass) {
        Some(u) => {
            ctx.client.set_user(u);
            Ok(())
        }
        None => {
            super::acl::log_denial(ctx, crate::acl::Denial::Auth, b"AUTH", Some(user));
            ctx.client.auth_failed = true;
            Err(CmdError::msg(
                "WRONGPASS invalid username-password pair or user is disabled.",
            ))
        }
    }
}

fn auth(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let (user, pass): (&[u8], &[u8]) = match a.len() {
        2 => {
            if ctx.srv.acl.default_user().rules().nopass {
                return Err(CmdError::msg("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"));
            }
            (b"default", a[1])
        }
        3 => (a[1], a[2]),
        _ => return Err(CmdError::Syntax),
    };
    authenticate(ctx, user, pass)?;
    ctx.out.ok();
    Ok(())
}

fn hello(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let mut ver = None;
    let mut j = 1;
    if a.len() >= 2 {
        let v = int(a[1])
            .map_err(|_| CmdError::msg("ERR Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&v) {
            return Err(CmdError::msg("NOPROTO unsupported protocol version"));
        }
        ver = Some(v);
        j = 2;
    }
    let mut setname: Option<&[u8]> = None;
    let mut creds: Option<(&[u8], &[u8])> = None;
    while j < a.len() {
        let more = a.len() - j - 1;
        if eq(a[j], "auth") && more >= 2 {
            creds = Some((a[j + 1], a[j + 2]));
            j += 3;
        } else if eq(a[j], "setname") && more >= 1 {
            setname = Some(a[j + 1]);
            j += 2;
        } else {
            return Err(CmdError::msg(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(a[j])
            )));
        }
    }
    if let Some((u, p)) = creds {
        authenticate(ctx, u, p)?;
    }
    if !ctx.client.authenticated && ctx.srv.acl.default_needs_auth.load(Relaxed) {
        return Err(CmdError::msg("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"));
    }
    if let Some(n) = setname {
        super::client::validate_name(n)?;
        *ctx.client.handle.name.lock() = n.to_vec();
    }
    if let Some(v) = ver {
        ctx.out.resp3 = v == 3;
        super::pubsub::sync_protocol(ctx.client, v == 3);
        ctx.client.handle.resp.store(v as u8, Relaxed);
    }
    let proto = if ctx.out.resp3 { 3 } else { 2 };
    ctx.out.map(7);
    ctx.out.bulk(b"server");
    ctx.out.bulk(b"redis");
    ctx.out.bulk(b"version");
    ctx.out.bulk(crate::REDIS_VERSION.as_bytes());
    ctx.out.bulk(b"proto");
    ctx.out.int(proto);
    ctx.out.bulk(b"id");
    ctx.out.int(ctx.client.handle.id as i64);
    ctx.out.bulk(b"mode");
    ctx.out.bulk(b"standalone");
    ctx.out.bulk(b"role");
    ctx.out.bulk(b"master");
    ctx.out.bulk(b"modules");
    ctx.out.array(0);
    Ok(())
}

fn select(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let v = super::args::int32(a[1])?;
    if v < 0 || v >= ctx.srv.ks.num_dbs() as i64 {
        return Err(CmdError::DbIndex);
    }
    ctx.client.select(v as usize);
    ctx.out.ok();
    Ok(())
}
