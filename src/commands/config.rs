//! CONFIG GET / SET / RESETSTAT / REWRITE / HELP.

use super::flags::*;
use super::{cmd, container, CmdError, CmdResult, CommandSpec, Ctx};
use crate::commands::table;

pub static COMMANDS: &[CommandSpec] = &[CommandSpec {
    group: "server",
    subcommands: &[
        cmd("get", -3, ADMIN | NOSCRIPT | LOADING | STALE, config_get),
        cmd("set", -4, ADMIN | NOSCRIPT | LOADING | STALE, config_set),
        cmd(
            "resetstat",
            2,
            ADMIN | NOSCRIPT | LOADING | STALE,
            config_resetstat,
        ),
        cmd(
            "rewrite",
            2,
            ADMIN | NOSCRIPT | LOADING | STALE,
            config_rewrite,
        ),
        cmd("help", 2, LOADING | STALE, config_help),
    ],
    ..cmd("config", -2, 0, container)
}];

fn config_get(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let cfg = ctx.srv.config.read();
    // As Redis 7.0: a pattern without glob characters is looked up by
    // name and answered with the name as the client spelled it; names are
    // deduplicated case-insensitively.
    let mut pairs: Vec<(Vec<u8>, String)> = Vec::new();
    let add = |pairs: &mut Vec<(Vec<u8>, String)>, name: &[u8], v: &str| {
        if !pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            pairs.push((name.to_vec(), v.to_string()));
        }
    };
    for pat in &a[2..] {
        if !pat.iter().any(|c| matches!(c, b'[' | b'*' | b'?')) {
            let lname = String::from_utf8_lossy(pat).to_ascii_lowercase();
            if let Some(v) = cfg.get(&lname) {
                add(&mut pairs, pat, v);
            }
            continue;
        }
        for (k, v) in cfg.matching(pat) {
            add(&mut pairs, k.as_bytes(), v);
        }
    }
    drop(cfg);
    ctx.out.map(pairs.len());
    for (k, v) in pairs {
        ctx.out.bulk(&k);
        ctx.out.bulk(v.as_bytes());
    }
    Ok(())
}

fn config_set(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    if !a.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    // A repeated parameter is reported with the later spelling, as Redis
    // does; an unknown name (checked by `set` below) takes precedence.
    let mut names: Vec<String> = Vec::new();
    let mut dup: Option<String> = None;
    for pair in a[2..].chunks(2) {
        let n = String::from_utf8_lossy(pair[0]).into_owned();
        let l = n.to_ascii_lowercase();
        if ctx.srv.config.read().get(&l).is_none() {
            return Err(CmdError::msg(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{n}'"
            )));
        }
        if dup.is_none() && names.contains(&l) {
            dup = Some(n);
        }
        names.push(l);
    }
    if let Some(n) = dup {
        return Err(CmdError::msg(format!(
            "ERR CONFIG SET failed (possibly related to argument '{n}') - duplicate parameter"
        )));
    }
    // All or nothing: apply to a copy, then swap it in.
    let mut cfg = ctx.srv.config.write();
    let mut next = cfg.clone();
    for pair in a[2..].chunks(2) {
        let name = String::from_utf8_lossy(pair[0]).into_owned();
        let value = String::from_utf8_lossy(pair[1]).into_owned();
        next.set(&name, &value).map_err(CmdError::Msg)?;
    }
    // A changed TLS option rebuilds the TLS context; if that fails the
    // whole CONFIG SET is refused (Redis: "Unable to update TLS ...").
    if let Some(n) = names
        .iter()
        .find(|n| crate::tls::CONTEXT_OPTIONS.contains(&n.as_str()))
    {
        if ctx.srv.tls.read().is_some() {
            match crate::tls::from_config(&next) {
                Ok(t) => *ctx.srv.tls.write() = t,
                Err(e) => {
                    tracing::warn!("CONFIG SET {n}: TLS configuration error: {e}");
                    return Err(CmdError::msg(format!("ERR CONFIG SET failed (possibly related to argument '{n}') - Unable to update TLS configuration. Check server logs.")));
                }
            }
        }
    }
    let fsync = next.appendfsync.clone();
    let pass = next.requirepass.clone();
    *cfg = next;
    drop(cfg);
    // Settings that live outside the config struct.
    ctx.srv.apply_runtime_config();
    if names.iter().any(|n| n == "timeout") {
        // Idle connections re-arm their timers with the new value.
        for h in ctx.srv.clients.all() {
            h.retime();
        }
    }
    if names.iter().any(|n| n == "maxmemory") && ctx.txn.is_none() {
        // As Redis: start freeing memory at once if the new limit is
        // below the usage (the background cycle continues).
        crate::evict::perform(ctx.srv);
    }
    if names.iter().any(|n| n == "requirepass") {
        ctx.srv.acl.set_requirepass(pass.as_bytes());
    }
    if names.iter().any(|n| n == "appendfsync") {
        let p = crate::persistence::fsync_policy(&fsync);
        if let Some(log) = ctx.srv.log.get() {
            log.set_policy(p);
        }
        ctx.srv
            .fsync_always
            .store(fsync == "always", std::sync::atomic::Ordering::Relaxed);
    }
    ctx.out.ok();
    Ok(())
}

fn config_resetstat(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    ctx.srv.stats.reset();
    ctx.srv.evict.reset_stats();
    for e in table().all() {
        e.stats.calls.store(0, std::sync::atomic::Ordering::Relaxed);
        e.stats.usec.store(0, std::sync::atomic::Ordering::Relaxed);
        e.stats
            .rejected
            .store(0, std::sync::atomic::Ordering::Relaxed);
        e.stats
            .failed
            .store(0, std::sync::atomic::Ordering::Relaxed);
        e.stats.latency.reset();
    }
    ctx.out.ok();
    Ok(())
}

fn config_rewrite(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let cfg = ctx.srv.config.read();
    // Users go to the config file unless an ACL file holds them.
    let users = cfg.get("aclfile").is_none_or(str::is_empty).then(|| {
        ctx.srv
            .acl
            .all()
            .iter()
            .map(|u| format!("user {} {}", u.name_str(), u.rules().describe()))
            .collect()
    });
    cfg.rewrite_with_users(users).map_err(CmdError::Msg)?;
    drop(cfg);
    ctx.out.ok();
    Ok(())
}

fn config_help(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    super::keys::help_reply(
        ctx,
        "config",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    );
    Ok(())
}
