//! ACL and its subcommands, and the permission check dispatch runs for
//! users that are not unrestricted. The user model is in `crate::acl`.

use std::sync::atomic::Ordering::Relaxed;

use super::args::{eq, int};
use super::flags::*;
use super::{cmd, container, CmdError, CmdResult, CommandSpec, Ctx, Entry};
use crate::acl::{self as model, Denial};

const ADM: u32 = ADMIN | NOSCRIPT | LOADING | STALE;

pub static COMMANDS: &[CommandSpec] = &[CommandSpec {
    group: "server",
    since: "6.0.0",
    subcommands: &[
        cmd("cat", -2, NOSCRIPT | LOADING | STALE, acl_cat),
        cmd("deluser", -3, ADM, acl_deluser),
        cmd("dryrun", -4, ADM, acl_dryrun),
        cmd("genpass", -2, NOSCRIPT | LOADING | STALE, acl_genpass),
        cmd("getuser", 3, ADM, acl_getuser),
        cmd("help", 2, LOADING | STALE, acl_help),
        cmd("list", 2, ADM, acl_list),
        cmd("load", 2, ADM, acl_load),
        cmd("log", -2, ADM, acl_log),
        cmd("save", 2, ADM, acl_save),
        cmd("setuser", -3, ADM, acl_setuser),
        cmd("users", 2, ADM, acl_users),
        cmd("whoami", 2, NOSCRIPT | LOADING | STALE, acl_whoami),
    ],
    ..cmd("acl", -2, 0, container)
}];

/// The dispatch check for a restricted user: Err is the NOPERM reply
/// (the denial is logged). Inside EXEC the text says the rules changed
/// since queueing, as Redis's.
pub fn check_command(
    ctx: &mut Ctx<'_>,
    entry: &Entry,
    argv: &[&[u8]],
    _dry: bool,
) -> Result<(), CmdError> {
    let res = ctx.client.rules().check(entry, argv);
    let Err((denial, idx)) = res else {
        return Ok(());
    };
    let object: &[u8] = match denial {
        Denial::Command => entry.fullname.as_bytes(),
        _ => argv.get(idx).copied().unwrap_or(b""),
    };
    log_denial(ctx, denial, object, None);
    if ctx.client.in_exec {
        let reason = match denial {
            Denial::Command => "no permission to execute the command or subcommand",
            Denial::Key => "no permission to touch the specified keys",
            Denial::Channel => "no permission to access one of the channels used as arguments",
            Denial::Auth => "no permission",
        };
        return Err(CmdError::msg(format!("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}")));
    }
    Err(CmdError::msg(match denial {
        Denial::Command => format!(
            "NOPERM this user has no permissions to run the '{}' command",
            entry.fullname
        ),
        Denial::Key => {
            "NOPERM this user has no permissions to access one of the keys used as arguments".into()
        }
        _ => "NOPERM this user has no permissions to access one of the channels used as arguments"
            .into(),
    }))
}

/// Adds an ACL LOG entry for this client. `username` overrides the
/// client's user (a failed AUTH names the user it tried).
pub fn log_denial(ctx: &mut Ctx<'_>, denial: Denial, object: &[u8], username: Option<&[u8]>) {
    let max = ctx
        .srv
        .config
        .read()
        .get("acllog-max-len")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(128);
    let in_multi = ctx.client.multi.is_some() || ctx.client.in_exec;
    let user = username.map_or_else(|| ctx.client.user.name.clone(), |u| u.to_vec());
    let info = ctx.client.handle.info_line();
    ctx.srv
        .acl
        .log_event(denial, in_multi, object, &user, info, ctx.now_ms, max);
}

fn pubsub_default_all(ctx: &Ctx<'_>) -> bool {
    ctx.srv.config.read().get("acl-pubsub-default") == Some("allchannels")
}

fn acl_setuser(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let ops = model::merge_selector_args(&a[3..]).map_err(|start| {
        let mut m = b"ERR Unmatched parenthesis in acl selector starting at '".to_vec();
        m.extend_from_slice(&start);
        m.extend_from_slice(b"'.");
        CmdError::Bytes(m)
    })?;
    let refs: Vec<&[u8]> = ops.iter().map(|o| o.as_slice()).collect();
    let all = pubsub_default_all(ctx);
    ctx.srv.acl.set_user(a[2], &refs, all).map_err(|(i, e)| {
        let mut m = b"ERR Error in ACL SETUSER modifier '".to_vec();
        m.extend_from_slice(refs[i]);
        m.extend_from_slice(b"': ");
        m.extend_from_slice(e.text().as_bytes());
        CmdError::Bytes(m)
    })?;
    kill_revoked_subscribers(ctx, a[2]);
    ctx.out.ok();
    Ok(())
}

/// After a user's rules change, closes its connections subscribed to a
/// channel or pattern it may no longer use (Redis's
/// ACLKillPubsubClientsIfNeeded).
fn kill_revoked_subscribers(ctx: &mut Ctx<'_>, name: &[u8]) {
    let Some(u) = ctx.srv.acl.get(name) else {
        return;
    };
    let rules = u.rules().clone();
    for c in ctx.srv.clients.all() {
        if *c.user.lock() != name || c.sub_counts.iter().all(|n| n.load(Relaxed) == 0) {
            continue;
        }
        let revoked = ctx
            .srv
            .pubsub
            .subscriptions_of(c.id)
            .iter()
            .any(|(k, ch)| !rules.channel_allowed(ch, *k == crate::pubsub::Kind::Pattern));
        if revoked {
            if c.id == ctx.client.handle.id {
                ctx.client.close_after_reply = true;
            } else {
                c.kill();
            }
        }
    }
}

fn acl_getuser(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let Some(u) = ctx.srv.acl.get(a[2]) else {
        ctx.out.null();
        return Ok(());
    };
    let r = u.rules().clone();
    ctx.out.map(6);
    ctx.out.bulk(b"flags");
    let flags = r.flag_names();
    ctx.out.set(flags.len());
    for f in flags {
        ctx.out.bulk(f.as_bytes());
    }
    ctx.out.bulk(b"passwords");
    let pw = r.password_hex();
    ctx.out.array(pw.len());
    for p in pw {
        ctx.out.bulk(p.as_bytes());
    }
    ctx.out.bulk(b"commands");
    ctx.out.bulk(r.root.describe_commands().as_bytes());
    ctx.out.bulk(b"keys");
    ctx.out.bulk(r.root.describe_keys().as_bytes());
    ctx.out.bulk(b"channels");
    ctx.out.bulk(r.root.describe_channels().as_bytes());
    ctx.out.bulk(b"selectors");
    ctx.out.array(r.selectors().len());
    for s in r.selectors() {
        ctx.out.map(3);
        ctx.out.bulk(b"commands");
        ctx.out.bulk(s.describe_commands().as_bytes());
        ctx.out.bulk(b"keys");
        ctx.out.bulk(s.describe_keys().as_bytes());
        ctx.out.bulk(b"channels");
        ctx.out.bulk(s.describe_channels().as_bytes());
    }
    Ok(())
}

/// Closes the connections authenticated as these users (the calling
/// client after its reply).
fn kill_clients_of(ctx: &mut Ctx<'_>, users: &[std::sync::Arc<model::User>]) {
    if users.is_empty() {
        return;
    }
    for c in ctx.srv.clients.all() {
        let name = c.user.lock().clone();
        if users.iter().any(|u| u.name == name) {
            if c.id == ctx.client.handle.id {
                ctx.client.close_after_reply = true;
            } else {
                c.kill();
            }
        }
    }
}

fn acl_deluser(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    if a[2..].iter().any(|n| *n == b"default") {
        return Err(CmdError::msg("ERR The 'default' user cannot be removed"));
    }
    let removed: Vec<_> = a[2..]
        .iter()
        .filter_map(|n| ctx.srv.acl.delete(n))
        .collect();
    kill_clients_of(ctx, &removed);
    ctx.out.int(removed.len() as i64);
    Ok(())
}

fn acl_list(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let users = ctx.srv.acl.all();
    ctx.out.array(users.len());
    for u in users {
        let line = format!("user {} {}", u.name_str(), u.rules().describe());
        ctx.out.bulk(line.as_bytes());
    }
    Ok(())
}

fn acl_users(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let names = ctx.srv.acl.names();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(&n);
    }
    Ok(())
}

fn acl_whoami(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let n = ctx.client.user.name.clone();
    ctx.out.bulk(&n);
    Ok(())
}

fn acl_cat(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    if a.len() == 2 {
        ctx.out.array(model::CATEGORIES.len());
        for c in model::CATEGORIES {
            ctx.out.bulk(c.as_bytes());
        }
        return Ok(());
    }
    if a.len() > 3 {
        return Err(super::client::subcommand_syntax_error(a));
    }
    let name = String::from_utf8_lossy(a[2]).to_ascii_lowercase();
    let Some(j) = model::CATEGORIES.iter().position(|c| *c == name) else {
        let mut m = b"ERR Unknown category '".to_vec();
        m.extend_from_slice(a[2]);
        m.push(b'\'');
        return Err(CmdError::Bytes(m));
    };
    let cat = model::catalog();
    let names: Vec<&str> = cat
        .sorted
        .iter()
        .filter(|&&id| cat.cats[id] & (1 << j) != 0)
        .map(|&id| cat.by_id[id].fullname.as_str())
        .collect();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
    Ok(())
}

fn acl_genpass(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    if a.len() > 3 {
        return Err(super::client::subcommand_syntax_error(a));
    }
    let bits = match a.get(2) {
        Some(b) => int(b)?,
        None => 256,
    };
    if !(1..=4096).contains(&bits) {
        return Err(CmdError::msg("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"));
    }
    let chars = (bits as usize).div_ceil(4);
    ctx.out.bulk(model::random_hex(chars).as_bytes());
    Ok(())
}

fn acl_dryrun(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let Some(u) = ctx.srv.acl.get(a[2]) else {
        let mut m = b"ERR User '".to_vec();
        m.extend_from_slice(a[2]);
        m.extend_from_slice(b"' not found");
        return Err(CmdError::Bytes(m));
    };
    let argv = &a[3..];
    let e = match super::table().resolve(argv) {
        Ok(e) => e,
        Err(CmdError::UnknownCommand { .. }) => {
            let mut m = b"ERR Command '".to_vec();
            m.extend_from_slice(argv[0]);
            m.extend_from_slice(b"' not found");
            return Err(CmdError::Bytes(m));
        }
        Err(e) => return Err(e),
    };
    let res = u.rules().check(e, argv);
    match res {
        Ok(()) => ctx.out.ok(),
        Err((d, i)) => {
            let obj = String::from_utf8_lossy(argv.get(i).copied().unwrap_or(b""));
            let msg = match d {
                Denial::Command => format!(
                    "This user has no permissions to run the '{}' command",
                    e.fullname
                ),
                Denial::Key => format!("This user has no permissions to access the '{obj}' key"),
                _ => format!("This user has no permissions to access the '{obj}' channel"),
            };
            ctx.out.bulk(msg.as_bytes());
        }
    }
    Ok(())
}

fn acl_log(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    if a.len() > 3 {
        return Err(super::client::subcommand_syntax_error(a));
    }
    let mut count = 10i64;
    if let Some(arg) = a.get(2) {
        if eq(arg, "reset") {
            ctx.srv.acl.with_log(|l| l.clear());
            ctx.out.ok();
            return Ok(());
        }
        count = int(arg)?;
    }
    let now = ctx.now_ms;
    let out = &mut *ctx.out;
    ctx.srv.acl.with_log(|log| {
        let n = if count <= 0 {
            0
        } else {
            log.len().min(count as usize)
        };
        out.array(n);
        for e in log.iter().take(n) {
            out.map(7);
            out.bulk(b"count");
            out.int(e.count as i64);
            out.bulk(b"reason");
            out.bulk(e.reason.as_bytes());
            out.bulk(b"context");
            out.bulk(e.context.as_bytes());
            out.bulk(b"object");
            out.bulk(&e.object);
            out.bulk(b"username");
            out.bulk(&e.username);
            out.bulk(b"age-seconds");
            out.double(now.saturating_sub(e.ctime_ms) as f64 / 1000.0);
            out.bulk(b"client-info");
            out.bulk(e.client_info.as_bytes());
        }
    });
    Ok(())
}

const NO_ACLFILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

fn aclfile(ctx: &Ctx<'_>) -> Result<String, CmdError> {
    let f = ctx
        .srv
        .config
        .read()
        .get("aclfile")
        .unwrap_or("")
        .to_string();
    if f.is_empty() {
        return Err(CmdError::msg(NO_ACLFILE));
    }
    Ok(f)
}

fn acl_save(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let path = aclfile(ctx)?;
    save_file(&ctx.srv.acl, &path).map_err(|e| {
        tracing::warn!("ACL SAVE to '{path}' failed: {e}");
        CmdError::msg("ERR There was an error trying to save the ACLs. Please check the server logs for more information")
    })?;
    ctx.out.ok();
    Ok(())
}

/// Writes the users to `path` atomically (temp file, fsync, rename).
pub fn save_file(acl: &model::Acl, path: &str) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = format!("{path}.tmp-{}", std::process::id());
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(model::file_text(acl).as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// Reads and applies the ACL file: all or nothing. Returns the users
/// whose clients must be closed.
pub fn load_file(
    acl: &model::Acl,
    path: &str,
    allchannels_default: bool,
) -> Result<Vec<std::sync::Arc<model::User>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        // strerror's text, without Rust's "(os error N)".
        let msg = e.to_string();
        let msg = msg.split(" (os error").next().unwrap_or("").to_string();
        format!("Error loading ACLs, opening file '{path}': {msg}")
    })?;
    let users = model::parse_user_lines(&text, path, allchannels_default)?;
    Ok(acl.replace_all(users))
}

fn acl_load(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let path = aclfile(ctx)?;
    let all = pubsub_default_all(ctx);
    let old = load_file(&ctx.srv.acl, &path, all).map_err(|e| CmdError::msg(format!("ERR {e}")))?;
    kill_clients_of(ctx, &old);
    // This connection keeps its user object only if it still exists.
    if ctx.client.user.deleted.load(Relaxed) {
        ctx.client.close_after_reply = true;
    }
    ctx.out.ok();
    Ok(())
}

fn acl_help(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    super::keys::help_reply(
        ctx,
        "acl",
        &[
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
        ],
    );
    Ok(())
}
