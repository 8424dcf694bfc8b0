//! COMMAND and its subcommands, generated from the command table.

use super::args::eq;
use super::flags::{self, *};
use super::{cmd, table, CmdError, CmdResult, CommandSpec, Ctx, Entry};

pub static COMMANDS: &[CommandSpec] = &[CommandSpec {
    group: "server",
    subcommands: &[
        cmd("count", 2, LOADING | STALE | CAT_CONNECTION, command_count),
        cmd("info", -2, LOADING | STALE | CAT_CONNECTION, command_info),
        cmd("docs", -2, LOADING | STALE | CAT_CONNECTION, command_docs),
        cmd("list", -2, LOADING | STALE | CAT_CONNECTION, command_list),
        // -4 as Redis 7.0 (7.2 relaxed it to -3).
        cmd(
            "getkeys",
            -4,
            LOADING | STALE | CAT_CONNECTION,
            command_getkeys,
        ),
        cmd("help", 2, LOADING | STALE | CAT_CONNECTION, command_help),
    ],
    ..cmd("command", -1, LOADING | STALE | CAT_CONNECTION, command)
}];

/// ACL categories as Redis reports them (see `crate::acl::categories_of`).
fn acl_categories(e: &Entry) -> Vec<String> {
    crate::acl::category_names(e)
        .into_iter()
        .map(|c| format!("@{c}"))
        .collect()
}

fn write_info(ctx: &mut Ctx<'_>, e: &Entry) {
    let s = e.spec;
    ctx.out.array(10);
    ctx.out.bulk(e.fullname.as_bytes());
    ctx.out.int(s.arity as i64);
    let mut fl: Vec<&str> = flags::NAMES
        .iter()
        .filter(|(f, _)| s.flags & f != 0)
        .map(|(_, n)| *n)
        .collect();
    // Redis lists it after the others (none of these has allow_busy).
    if super::multi::MOVABLE_KEYS.contains(&e.fullname.as_str()) {
        fl.push("movablekeys");
    }
    ctx.out.set(fl.len());
    for f in fl {
        ctx.out.simple(f);
    }
    ctx.out.int(s.first_key as i64);
    ctx.out.int(s.last_key as i64);
    ctx.out.int(s.step as i64);
    let cats = acl_categories(e);
    ctx.out.set(cats.len());
    for c in cats {
        ctx.out.simple(&c);
    }
    // Tips, then key specs (Basalt reports neither yet), then the
    // subcommands: sets in RESP3 as Redis 7.0 sends them, except a
    // container's subcommands, which are an array.
    ctx.out.set(0);
    ctx.out.set(0);
    let mut subs: Vec<&Entry> = e.subs.values().collect();
    subs.sort_by(|a, b| a.fullname.cmp(&b.fullname));
    if subs.is_empty() {
        ctx.out.set(0);
    } else {
        ctx.out.array(subs.len());
    }
    for sub in subs {
        write_info(ctx, sub);
    }
}

fn sorted() -> Vec<&'static Entry> {
    let mut v: Vec<&Entry> = table().map.values().collect();
    v.sort_by(|a, b| a.fullname.cmp(&b.fullname));
    v
}

fn command(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    if a.len() > 1 {
        return Err(CmdError::UnknownSubcommand {
            name: a[1].to_vec(),
            container: "COMMAND".into(),
        });
    }
    let all = sorted();
    ctx.out.array(all.len());
    for e in all {
        write_info(ctx, e);
    }
    Ok(())
}

fn command_count(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    ctx.out.int(table().map.len() as i64);
    Ok(())
}

/// Finds "name" or "container|sub".
fn find(name: &[u8]) -> Option<&'static Entry> {
    let s = String::from_utf8_lossy(name).to_ascii_lowercase();
    match s.split_once('|') {
        Some((c, sub)) => table().map.get(c)?.subs.get(sub),
        None => table().map.get(s.as_str()),
    }
}

fn command_info(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    if a.len() == 2 {
        return command(ctx, &a[..1]);
    }
    ctx.out.array(a.len() - 2);
    for n in &a[2..] {
        match find(n) {
            Some(e) => write_info(ctx, e),
            // Redis's addReplyNull: `$-1` in RESP2.
            None => ctx.out.null(),
        }
    }
    Ok(())
}

fn write_docs(ctx: &mut Ctx<'_>, e: &Entry) {
    let s = e.spec;
    let nsub = e.subs.len();
    ctx.out.map(3 + usize::from(nsub > 0));
    ctx.out.bulk(b"summary");
    ctx.out.bulk(s.summary.as_bytes());
    ctx.out.bulk(b"since");
    ctx.out.bulk(s.since.as_bytes());
    ctx.out.bulk(b"group");
    ctx.out.bulk(s.group.as_bytes());
    if nsub > 0 {
        ctx.out.bulk(b"subcommands");
        let mut subs: Vec<&Entry> = e.subs.values().collect();
        subs.sort_by(|a, b| a.fullname.cmp(&b.fullname));
        ctx.out.map(nsub);
        for sub in subs {
            ctx.out.bulk(sub.fullname.as_bytes());
            write_docs(ctx, sub);
        }
    }
}

fn command_docs(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let list: Vec<&Entry> = if a.len() == 2 {
        sorted()
    } else {
        a[2..].iter().filter_map(|n| find(n)).collect()
    };
    ctx.out.map(list.len());
    for e in list {
        ctx.out.bulk(e.fullname.as_bytes());
        write_docs(ctx, e);
    }
    Ok(())
}

fn command_list(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let mut names: Vec<&str> = Vec::new();
    let filter = match a.len() {
        2 => None,
        5 if eq(a[2], "filterby") => Some((a[3], a[4])),
        _ => return Err(CmdError::Syntax),
    };
    // As Redis, subcommands are listed too (`config|get`), after their
    // container.
    let mut all: Vec<&Entry> = Vec::new();
    for e in sorted() {
        all.push(e);
        let mut subs: Vec<&Entry> = e.subs.values().collect();
        subs.sort_by(|a, b| a.fullname.cmp(&b.fullname));
        all.extend(subs);
    }
    for e in all {
        let keep = match filter {
            None => true,
            Some((k, v)) if eq(k, "pattern") => {
                basalt_storage::glob_match(v, e.fullname.as_bytes(), true)
            }
            Some((k, v)) if eq(k, "aclcat") => {
                let want = format!("@{}", String::from_utf8_lossy(v).to_ascii_lowercase());
                acl_categories(e).contains(&want)
            }
            Some((k, _)) if eq(k, "module") => false,
            Some(_) => return Err(CmdError::Syntax),
        };
        if keep {
            names.push(&e.fullname);
        }
    }
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
    Ok(())
}

fn command_getkeys(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let argv = &a[2..];
    let e = match table().resolve(argv) {
        Ok(e) => e,
        Err(CmdError::UnknownCommand { .. }) | Err(CmdError::UnknownSubcommand { .. }) => {
            return Err(CmdError::msg("ERR Invalid command specified"))
        }
        Err(_) => {
            return Err(CmdError::msg(
                "ERR Invalid number of arguments specified for command",
            ))
        }
    };
    let mut keys = key_positions(e.spec, argv.len());
    if matches!(e.fullname.as_str(), "xread" | "xreadgroup") {
        // Keys are the first half of what follows STREAMS.
        if let Some(p) = argv.iter().position(|x| super::args::eq(x, "streams")) {
            let n = (argv.len() - p - 1) / 2;
            keys = (p + 1..p + 1 + n).collect();
        }
    }
    keys.extend(super::geo::store_key_positions(&e.fullname, argv));
    if e.fullname == "migrate" {
        keys = super::migrate::key_positions(argv);
    }
    if keys.is_empty() {
        return Err(CmdError::msg("ERR The command has no key arguments"));
    }
    ctx.out.array(keys.len());
    for i in keys {
        ctx.out.bulk(argv[i]);
    }
    Ok(())
}

/// Argument indexes that are keys, from first/last/step.
pub fn key_positions(s: &CommandSpec, argc: usize) -> Vec<usize> {
    key_positions_iter(s, argc).collect()
}

/// [`key_positions`] without the allocation (hot paths: EXEC's plan).
pub fn key_positions_iter(s: &CommandSpec, argc: usize) -> impl Iterator<Item = usize> {
    let (first, last) = if s.first_key <= 0 {
        (1, 0) // empty
    } else if s.last_key < 0 {
        (
            s.first_key as usize,
            (argc as i32 + s.last_key).max(0) as usize,
        )
    } else {
        (
            s.first_key as usize,
            s.last_key.min(argc as i32 - 1).max(0) as usize,
        )
    };
    let step = s.step.max(1) as usize;
    (first..=last).step_by(step).filter(move |&i| i < argc)
}

fn command_help(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    super::keys::help_reply(
        ctx,
        "command",
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
        ],
    );
    Ok(())
}
