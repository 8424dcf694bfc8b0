//! REPLCONF SYNC PSYNC: enough of the replication handshake to hand out
//! snapshots (`redis-cli --rdb`, `--functions-rdb`, tools that ask for
//! `REPLCONF rdb-only 1`). The transfer itself runs in the connection
//! (`crate::replication::transfer`), which owns the socket.

use super::args::{eq, int};
use super::flags::*;
use super::{cmd, CmdError, CmdResult, CommandSpec, Ctx};
use crate::replication::SyncRequest;

const fn repl(mut c: CommandSpec) -> CommandSpec {
    c.group = "server";
    c
}

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        since: "3.0.0",
        ..repl(cmd(
            "replconf",
            -1,
            ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY,
            replconf,
        ))
    },
    CommandSpec {
        since: "1.0.0",
        ..repl(cmd(
            "sync",
            1,
            ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI,
            sync,
        ))
    },
    CommandSpec {
        since: "2.8.0",
        ..repl(cmd(
            "psync",
            -3,
            ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI,
            psync,
        ))
    },
];

/// Longest `REPLCONF ip-address` Redis accepts (NET_HOST_STR_LEN - 1).
const IP_ADDRESS_MAX: usize = 255;

/// REPLCONF option value ... : options are applied in order; the first
/// bad one answers an error (the ones before it stay applied), as Redis.
/// `ACK` and `GETACK` are for replication links, which this client is
/// not: like Redis, Basalt then stops without any reply.
fn replconf(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    if a.len().is_multiple_of(2) {
        return Err(CmdError::msg("ERR syntax error"));
    }
    for pair in a[1..].chunks(2) {
        let (opt, val) = (pair[0], pair[1]);
        if eq(opt, "listening-port") {
            int(val)?;
        } else if eq(opt, "ip-address") {
            if val.len() > IP_ADDRESS_MAX {
                return Err(CmdError::msg(format!(
                    "ERR REPLCONF ip-address provided by replica instance is too long: {} bytes",
                    val.len()
                )));
            }
        } else if eq(opt, "capa") {
            // psync2 changes nothing for a snapshot transfer.
            if eq(val, "eof") {
                ctx.client.capa_eof = true;
            }
        } else if eq(opt, "ack") || eq(opt, "getack") {
            return Ok(());
        } else if eq(opt, "rdb-only") {
            let v = int(val)?;
            if !(0..=1).contains(&v) {
                return Err(CmdError::msg(
                    "ERR value is out of range, value must between 0 and 1",
                ));
            }
            ctx.client.rdb_only = v == 1;
        } else if eq(opt, "rdb-filter-only") {
            let Some(filters) = split_words(val) else {
                return Err(CmdError::msg("ERR Missing rdb-filter-only values"));
            };
            // Data is always left out; "functions" keeps the functions,
            // and Basalt has none, so either way the dump has no keys.
            if let Some(bad) = filters.iter().find(|f| !eq(f, "functions")) {
                return Err(CmdError::msg(format!(
                    "ERR Unsupported rdb-filter-only option: {}",
                    String::from_utf8_lossy(bad)
                )));
            }
            ctx.client.rdb_exclude_data = true;
        } else {
            return Err(CmdError::msg(format!(
                "ERR Unrecognized REPLCONF option: {}",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    ctx.out.ok();
    Ok(())
}

/// The words of a REPLCONF rdb-filter-only value, split as Redis's
/// `sdssplitargs` does for plain words and quoted ones; None when a quote
/// is not closed (or a closing quote is followed by a non-space).
fn split_words(v: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        while i < v.len() && v[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= v.len() {
            break;
        }
        let mut word = Vec::new();
        if v[i] == b'"' || v[i] == b'\'' {
            let q = v[i];
            i += 1;
            loop {
                match v.get(i) {
                    None => return None,
                    Some(&c) if c == q => {
                        i += 1;
                        break;
                    }
                    Some(&c) => word.push(c),
                }
                i += 1;
            }
            if i < v.len() && !v[i].is_ascii_whitespace() {
                return None;
            }
        } else {
            while i < v.len() && !v[i].is_ascii_whitespace() {
                word.push(v[i]);
                i += 1;
            }
        }
        out.push(word);
    }
    Some(out)
}

fn sync(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    start_sync(ctx, None)
}

/// PSYNC replid offset: no partial resynchronisation is possible (there is
/// no backlog), so every PSYNC is a full one.
fn psync(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    start_sync(ctx, Some(a[2]))
}

/// `offset`: PSYNC's, checked after the pending-output rule (Redis's order).
fn start_sync(ctx: &mut Ctx<'_>, offset: Option<&[u8]>) -> CmdResult {
    if !ctx.out.is_empty() {
        return Err(CmdError::msg(
            "ERR SYNC and PSYNC are invalid with pending output",
        ));
    }
    if ctx.client.rdb_exclude_data && !ctx.client.capa_eof {
        return Err(CmdError::msg(
            "ERR Filtered replica requires EOF capability",
        ));
    }
    if let Some(o) = offset {
        int(o)?;
    }
    let psync = offset.is_some();
    if !ctx.client.rdb_only {
        return Err(CmdError::msg(
            "ERR Basalt does not stream replication to replicas yet; it serves snapshot transfers only (send REPLCONF rdb-only 1 first, as redis-cli --rdb does)",
        ));
    }
    ctx.client.pending_sync = Some(SyncRequest {
        psync,
        exclude_data: ctx.client.rdb_exclude_data,
    });
    Ok(())
}
