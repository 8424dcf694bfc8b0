//! CLIENT subcommands.

use std::sync::atomic::Ordering::Relaxed;

use super::args::{eq, int, upper};
use super::flags::*;
use super::{cmd, container, CmdError, CmdResult, CommandSpec, Ctx};
use crate::client::ReplyMode;
use crate::shared::unix_ms;

const F: u32 = ADMIN | NOSCRIPT | LOADING | STALE;
const C: u32 = NOSCRIPT | LOADING | STALE;

pub static COMMANDS: &[CommandSpec] = &[CommandSpec {
    group: "connection",
    subcommands: &[
        cmd("id", 2, C, client_id),
        cmd("setname", 3, C, client_setname),
        cmd("getname", 2, C, client_getname),
        cmd("list", -2, F, client_list),
        cmd("info", 2, C, client_info),
        cmd("kill", -3, F, client_kill),
        cmd("unblock", -3, F, client_unblock),
        cmd("setinfo", 4, C, client_setinfo),
        cmd("pause", -3, F, client_pause),
        cmd("unpause", 2, F, client_unpause),
        cmd("reply", 3, C, client_reply),
        cmd("no-evict", 3, F, client_no_evict),
        cmd("no-touch", 3, C, client_no_touch),
        cmd("tracking", -3, C, client_tracking),
        cmd("caching", 3, C, client_caching),
        cmd("getredir", 2, C, client_getredir),
        cmd("trackinginfo", 2, C, client_trackinginfo),
        cmd("help", 2, LOADING | STALE, client_help),
    ],
    ..cmd("client", -2, 0, container)
}];

/// Redis's `addReplySubcommandSyntaxError`.
pub fn subcommand_syntax_error(a: &[&[u8]]) -> CmdError {
    let mut m = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
    m.extend_from_slice(super::error::c_str_trunc(a[1], 128));
    m.extend_from_slice(format!("'. Try {} HELP.", upper(a[0])).as_bytes());
    CmdError::Bytes(m)
}

/// Redis refuses names with spaces, newlines or other non-printables.
pub fn validate_name(n: &[u8]) -> CmdResult {
    if n.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::msg(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

fn client_id(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    ctx.out.int(ctx.client.handle.id as i64);
    Ok(())
}

fn client_setname(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    validate_name(a[2])?;
    *ctx.client.handle.name.lock() = a[2].to_vec();
    ctx.out.ok();
    Ok(())
}

fn client_getname(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let n = ctx.client.handle.name.lock().clone();
    if n.is_empty() {
        ctx.out.null();
    } else {
        ctx.out.bulk(&n);
    }
    Ok(())
}

fn client_list(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let mut ids: Option<Vec<u64>> = None;
    let mut kind: Option<String> = None;
    let mut j = 2;
    while j < a.len() {
        if eq(a[j], "type") && j + 1 < a.len() {
            let t = upper(a[j + 1]);
            if !["NORMAL", "MASTER", "REPLICA", "SLAVE", "PUBSUB"].contains(&t.as_str()) {
                return Err(CmdError::msg(format!(
                    "ERR Unknown client type '{}'",
                    String::from_utf8_lossy(a[j + 1])
                )));
            }
            kind = Some(t);
            j += 2;
        } else if eq(a[j], "id") && j + 1 < a.len() {
            let mut v = ids.take().unwrap_or_default();
            for x in &a[j + 1..] {
                // Any integer: ids that match no client are skipped.
                match int(x) {
                    Ok(n) => v.push(n as u64),
                    Err(_) => return Err(CmdError::msg("ERR Invalid client ID")),
                }
            }
            ids = Some(v);
            j = a.len();
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let mut s = String::new();
    for c in ctx.srv.clients.all() {
        if ids.as_ref().is_none_or(|v| v.contains(&c.id))
            && kind.as_deref().is_none_or(|k| k == client_type(&c))
        {
            s.push_str(&c.info_line());
            s.push('\n');
        }
    }
    ctx.out.verbatim(s.as_bytes());
    Ok(())
}

/// Redis's client type: PUBSUB while subscribed to anything, else NORMAL
/// (Basalt has no replicas).
fn client_type(c: &crate::client::ClientHandle) -> &'static str {
    if c.sub_counts.iter().any(|n| n.load(Relaxed) > 0) {
        "PUBSUB"
    } else {
        "NORMAL"
    }
}

fn client_info(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let mut s = ctx.client.handle.info_line();
    s.push('\n');
    ctx.out.verbatim(s.as_bytes());
    Ok(())
}

fn client_kill(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let all = ctx.srv.clients.all();
    if a.len() == 3 {
        // Old form: CLIENT KILL addr:port
        let addr = String::from_utf8_lossy(a[2]);
        return match all.iter().find(|c| c.addr == addr) {
            Some(c) => {
                c.kill();
                ctx.out.ok();
                Ok(())
            }
            None => Err(CmdError::msg("ERR No such client")),
        };
    }
    if !a.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    let mut skipme = true;
    let mut filters: Vec<(String, Vec<u8>)> = Vec::new();
    for pair in a[2..].chunks(2) {
        let f = String::from_utf8_lossy(pair[0]).to_ascii_lowercase();
        match f.as_str() {
            "id" => {
                if !matches!(int(pair[1]), Ok(n) if n > 0) {
                    return Err(CmdError::msg("ERR client-id should be greater than 0"));
                }
            }
            "skipme" => {
                skipme = if eq(pair[1], "yes") {
                    true
                } else if eq(pair[1], "no") {
                    false
                } else {
                    return Err(CmdError::Syntax);
                }
            }
            "user" if ctx.srv.acl.get(pair[1]).is_none() => {
                let mut m = b"ERR No such user '".to_vec();
                m.extend_from_slice(super::error::c_str_trunc(pair[1], usize::MAX));
                m.push(b'\'');
                return Err(CmdError::Bytes(m));
            }
            "addr" | "laddr" | "user" => {}
            "type" => {
                let t = upper(pair[1]);
                if !["NORMAL", "MASTER", "REPLICA", "SLAVE", "PUBSUB"].contains(&t.as_str()) {
                    return Err(CmdError::msg(format!(
                        "ERR Unknown client type '{}'",
                        String::from_utf8_lossy(pair[1])
                    )));
                }
            }
            _ => return Err(CmdError::Syntax),
        }
        filters.push((f, pair[1].to_vec()));
    }
    let mut killed = 0;
    for c in all {
        if skipme && c.id == ctx.client.handle.id {
            continue;
        }
        let ok = filters.iter().all(|(f, v)| match f.as_str() {
            "id" => int(v).is_ok_and(|n| n as u64 == c.id),
            "addr" => c.addr.as_bytes() == &v[..],
            "laddr" => c.laddr.as_bytes() == &v[..],
            "user" => *c.user.lock() == *v,
            "type" => upper(v) == client_type(&c),
            _ => true,
        });
        if ok {
            if c.id == ctx.client.handle.id {
                ctx.client.close_after_reply = true;
            } else {
                c.kill();
            }
            killed += 1;
        }
    }
    ctx.out.int(killed);
    Ok(())
}

fn client_setinfo(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let v = a[3];
    if v.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::msg(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(a[2]).to_ascii_lowercase()
        )));
    }
    if eq(a[2], "lib-name") {
        *ctx.client.handle.lib_name.lock() = v.to_vec();
    } else if eq(a[2], "lib-ver") {
        *ctx.client.handle.lib_ver.lock() = v.to_vec();
    } else {
        return Err(CmdError::msg(format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(a[2])
        )));
    }
    ctx.out.ok();
    Ok(())
}

fn client_pause(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let ms = match int(a[2]) {
        Ok(v) if v < 0 => return Err(CmdError::msg("ERR timeout is negative")),
        Ok(v) => v as u64,
        Err(_) => {
            return Err(CmdError::msg(
                "ERR timeout is not an integer or out of range",
            ))
        }
    };
    if a.len() > 4 {
        return Err(subcommand_syntax_error(a));
    }
    let writes_only = match a.get(3) {
        None => false,
        Some(m) if eq(m, "write") => true,
        Some(m) if eq(m, "all") => false,
        Some(_) => return Err(CmdError::msg("ERR CLIENT PAUSE mode must be WRITE or ALL")),
    };
    let p = &ctx.srv.pause;
    p.writes_only.store(writes_only, Relaxed);
    // Redis adds in signed 64 bits: a deadline that overflows is already
    // in the past, so the pause ends at once.
    let until = (unix_ms() as i64).wrapping_add(ms as i64).max(0) as u64;
    p.until_ms.store(until, Relaxed);
    p.changed.notify_waiters();
    ctx.out.ok();
    Ok(())
}

fn client_unpause(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    ctx.srv.pause.until_ms.store(0, Relaxed);
    ctx.srv.pause.changed.notify_waiters();
    ctx.out.ok();
    Ok(())
}

fn client_reply(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    if eq(a[2], "on") {
        ctx.client.reply_mode = ReplyMode::On;
        ctx.out.ok();
    } else if eq(a[2], "off") {
        ctx.client.reply_mode = ReplyMode::Off;
    } else if eq(a[2], "skip") {
        // As Redis: SKIP while a skip is pending re-arms it for the next
        // command; only OFF ignores it.
        if ctx.client.reply_mode != ReplyMode::Off {
            ctx.client.reply_mode = ReplyMode::Skip;
        }
    } else {
        return Err(CmdError::Syntax);
    }
    Ok(())
}

fn on_off(v: &[u8]) -> Result<bool, CmdError> {
    if eq(v, "on") {
        Ok(true)
    } else if eq(v, "off") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: ends another client's blocking
/// command (BLPOP, XREAD BLOCK, WAIT, WAITAOF...) as if it timed out, or
/// with an `-UNBLOCKED` error. 1 if that client was blocked, else 0.
fn client_unblock(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    if a.len() > 4 {
        return Err(subcommand_syntax_error(a));
    }
    let mut error = false;
    if a.len() == 4 {
        if eq(a[3], "timeout") {
            error = false;
        } else if eq(a[3], "error") {
            error = true;
        } else {
            return Err(CmdError::msg(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ));
        }
    }
    let id = int(a[2])?;
    let done = u64::try_from(id)
        .ok()
        .and_then(|id| ctx.srv.clients.get(id))
        .is_some_and(|c| c.try_unblock(error));
    ctx.out.int(done as i64);
    Ok(())
}

fn client_no_evict(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    ctx.client.handle.no_evict.store(on_off(a[2])?, Relaxed);
    ctx.out.ok();
    Ok(())
}

fn client_no_touch(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    ctx.client.handle.no_touch.store(on_off(a[2])?, Relaxed);
    ctx.out.ok();
    Ok(())
}

fn client_help(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    super::keys::help_reply(
        ctx,
        "client",
        &[
            "CACHING (YES|NO)",
            "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
            "GETREDIR",
            "    Return the client ID we are redirecting to when tracking is enabled.",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "    * ID <client-id>",
            "      Kill connections by client id.",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are:",
            "    * LIB-NAME: the client lib name.",
            "    * LIB-VER: the client lib version.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
            "         [OPTIN] [OPTOUT] [NOLOOP]",
            "    Control server assisted client side caching.",
            "TRACKINGINFO",
            "    Report tracking status for the current connection.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
            "NO-TOUCH (ON|OFF)",
            "    Will not touch LRU/LFU stats when this mode is on.",
        ],
    );
    Ok(())
}

fn client_tracking(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let mut o = crate::tracking::TrackOpts::default();
    let mut j = 3;
    while j < a.len() {
        let more = j + 1 < a.len();
        if eq(a[j], "redirect") && more {
            j += 1;
            if o.redirect != 0 {
                return Err(CmdError::msg(
                    "ERR A client can only redirect to a single other client",
                ));
            }
            let id = int(a[j])?;
            if id <= 0 || ctx.srv.clients.get(id as u64).is_none() {
                return Err(CmdError::msg(
                    "ERR The client ID you want redirect to does not exist",
                ));
            }
            o.redirect = id as u64;
        } else if eq(a[j], "bcast") {
            o.bcast = true;
        } else if eq(a[j], "optin") {
            o.optin = true;
        } else if eq(a[j], "optout") {
            o.optout = true;
        } else if eq(a[j], "noloop") {
            o.noloop = true;
        } else if eq(a[j], "prefix") && more {
            j += 1;
            o.prefixes.push(a[j].to_vec());
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let id = ctx.client.handle.id;
    if eq(a[2], "on") {
        if !o.bcast && !o.prefixes.is_empty() {
            return Err(CmdError::msg(
                "ERR PREFIX option requires BCAST mode to be enabled",
            ));
        }
        let cur = ctx.client.tracking.clone();
        if let Some(c) = &cur {
            if c.bcast != o.bcast {
                return Err(CmdError::msg("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."));
            }
        }
        if o.bcast && (o.optin || o.optout) {
            return Err(CmdError::msg(
                "ERR OPTIN and OPTOUT are not compatible with BCAST",
            ));
        }
        if o.optin && o.optout {
            return Err(CmdError::msg(
                "ERR You can't specify both OPTIN mode and OPTOUT mode",
            ));
        }
        if let Some(c) = &cur {
            if (o.optin && c.optout) || (o.optout && c.optin) {
                return Err(CmdError::msg("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."));
            }
        }
        let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let existing = cur.as_ref().map(|c| c.prefixes.clone()).unwrap_or_default();
        for (i, p) in o.prefixes.iter().enumerate() {
            let overlap = |q: &[u8]| p.starts_with(q) || q.starts_with(p);
            if let Some(q) = existing.iter().find(|q| overlap(q)) {
                return Err(CmdError::msg(format!(
                    "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    lossy(p),
                    lossy(q)
                )));
            }
            if let Some(q) = o.prefixes[i + 1..].iter().find(|q| overlap(q)) {
                return Err(CmdError::msg(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    lossy(p),
                    lossy(q)
                )));
            }
        }
        let mut prefixes = existing;
        prefixes.append(&mut o.prefixes);
        o.prefixes = prefixes;
        // Invalidations are delivered through this connection's queue
        // (or the redirect target's).
        super::pubsub::sub_handle(ctx);
        ctx.srv.tracking.enable(id, o.clone());
        ctx.client.tracking = Some(o);
    } else if eq(a[2], "off") {
        ctx.srv.tracking.disable(id);
        ctx.client.tracking = None;
        ctx.client.caching = false;
    } else {
        return Err(CmdError::Syntax);
    }
    ctx.out.ok();
    Ok(())
}

fn client_caching(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let Some(o) = &ctx.client.tracking else {
        return Err(CmdError::msg("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"));
    };
    if eq(a[2], "yes") {
        if !o.optin {
            return Err(CmdError::msg(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if eq(a[2], "no") {
        if !o.optout {
            return Err(CmdError::msg(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(CmdError::Syntax);
    }
    ctx.client.caching = true;
    ctx.out.ok();
    Ok(())
}

fn client_getredir(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let r = ctx
        .client
        .tracking
        .as_ref()
        .map_or(-1, |o| o.redirect as i64);
    ctx.out.int(r);
    Ok(())
}

fn client_trackinginfo(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let o = ctx.client.tracking.clone();
    let caching = ctx.client.caching;
    ctx.out.map(3);
    ctx.out.bulk(b"flags");
    let mut flags: Vec<&str> = Vec::new();
    match &o {
        None => flags.push("off"),
        Some(o) => {
            flags.push("on");
            if o.bcast {
                flags.push("bcast");
            }
            if o.optin {
                flags.push("optin");
                if caching {
                    flags.push("caching-yes");
                }
            }
            if o.optout {
                flags.push("optout");
                if caching {
                    flags.push("caching-no");
                }
            }
            if o.noloop {
                flags.push("noloop");
            }
            if ctx.srv.tracking.is_broken(ctx.client.handle.id) {
                flags.push("broken_redirect");
            }
        }
    }
    ctx.out.set(flags.len());
    for f in flags {
        ctx.out.bulk(f.as_bytes());
    }
    ctx.out.bulk(b"redirect");
    ctx.out.int(o.as_ref().map_or(-1, |o| o.redirect as i64));
    ctx.out.bulk(b"prefixes");
    let mut p = o.map(|o| o.prefixes).unwrap_or_default();
    p.sort();
    ctx.out.array(p.len());
    for x in &p {
        ctx.out.bulk(x);
    }
    Ok(())
}
