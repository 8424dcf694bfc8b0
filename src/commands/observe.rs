//! MONITOR, SLOWLOG and LATENCY (state in `crate::observe`).

use super::flags::*;
use super::{cmd, container, CmdError, CmdResult, CommandSpec, Ctx};

const fn srv(mut c: CommandSpec) -> CommandSpec {
    c.group = "server";
    c
}

const A: u32 = ADMIN | LOADING | STALE;
const AN: u32 = ADMIN | NOSCRIPT | LOADING | STALE;

pub static COMMANDS: &[CommandSpec] = &[
    srv(cmd(
        "monitor",
        1,
        ADMIN | NOSCRIPT | LOADING | STALE,
        monitor,
    )),
    CommandSpec {
        since: "2.2.12",
        subcommands: &[
            srv(cmd("get", -2, A, slowlog_get)),
            srv(cmd("len", 2, A, slowlog_len)),
            srv(cmd("reset", 2, A, slowlog_reset)),
            srv(cmd("help", 2, LOADING | STALE, slowlog_help)),
        ],
        ..srv(cmd("slowlog", -2, 0, container))
    },
    CommandSpec {
        since: "2.8.13",
        subcommands: &[
            srv(cmd("latest", 2, AN, latency_latest)),
            srv(cmd("history", 3, AN, latency_history)),
            srv(cmd("reset", -2, AN, latency_reset)),
            srv(cmd("doctor", 2, AN, latency_doctor)),
            srv(cmd("graph", 3, AN, latency_graph)),
            srv(cmd("histogram", -2, AN, latency_histogram)),
            srv(cmd("help", 2, LOADING | STALE, latency_help)),
        ],
        ..srv(cmd("latency", -2, 0, container))
    },
];

fn monitor(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    if ctx.client.in_exec {
        return Err(CmdError::msg(
            "ERR MONITOR isn't allowed for DENY BLOCKING client",
        ));
    }
    let s = super::pubsub::sub_handle(ctx);
    ctx.srv.monitors.add(&s);
    ctx.out.ok();
    Ok(())
}

fn slowlog_get(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let mut count = 10i64;
    if a.len() == 3 {
        count = match crate::num::parse_i64(a[2]) {
            Some(n) if n >= -1 => n,
            _ => {
                return Err(CmdError::msg(
                    "ERR count should be greater than or equal to -1",
                ))
            }
        };
    } else if a.len() > 3 {
        return Err(super::client::subcommand_syntax_error(a));
    }
    let l = ctx.srv.slowlog.entries.lock();
    let n = if count < 0 {
        l.len()
    } else {
        l.len().min(count as usize)
    };
    let entries: Vec<_> = l
        .iter()
        .take(n)
        .map(|e| {
            (
                e.id,
                e.time,
                e.micros,
                e.args.clone(),
                e.addr.clone(),
                e.name.clone(),
            )
        })
        .collect();
    drop(l);
    ctx.out.array(entries.len());
    for (id, time, micros, args, addr, name) in entries {
        ctx.out.array(6);
        ctx.out.int(id as i64);
        ctx.out.int(time as i64);
        ctx.out.int(micros as i64);
        ctx.out.array(args.len());
        for x in &args {
            ctx.out.bulk(x);
        }
        ctx.out.bulk(addr.as_bytes());
        ctx.out.bulk(&name);
    }
    Ok(())
}

fn slowlog_len(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let n = ctx.srv.slowlog.entries.lock().len();
    ctx.out.int(n as i64);
    Ok(())
}

fn slowlog_reset(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    ctx.srv.slowlog.entries.lock().clear();
    ctx.out.ok();
    Ok(())
}

fn slowlog_help(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    super::keys::help_reply(
        ctx,
        "slowlog",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    );
    Ok(())
}

fn latency_latest(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let m = ctx.srv.latency.events.lock();
    let v: Vec<(String, u64, u64, u64)> = m
        .iter()
        .filter_map(|(k, s)| s.samples.back().map(|&(t, ms)| (k.clone(), t, ms, s.max)))
        .collect();
    drop(m);
    ctx.out.array(v.len());
    for (k, t, ms, max) in v {
        ctx.out.array(4);
        ctx.out.bulk(k.as_bytes());
        ctx.out.int(t as i64);
        ctx.out.int(ms as i64);
        ctx.out.int(max as i64);
    }
    Ok(())
}

fn latency_history(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let ev = String::from_utf8_lossy(a[2]).into_owned();
    let samples: Vec<(u64, u64)> = ctx
        .srv
        .latency
        .events
        .lock()
        .get(&ev)
        .map(|s| s.samples.iter().copied().collect())
        .unwrap_or_default();
    ctx.out.array(samples.len());
    for (t, ms) in samples {
        ctx.out.array(2);
        ctx.out.int(t as i64);
        ctx.out.int(ms as i64);
    }
    Ok(())
}

fn latency_reset(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let mut m = ctx.srv.latency.events.lock();
    let n = if a.len() == 2 {
        let n = m.len();
        m.clear();
        n
    } else {
        a[2..]
            .iter()
            .filter(|e| m.remove(String::from_utf8_lossy(e).as_ref()).is_some())
            .count()
    };
    drop(m);
    ctx.out.int(n as i64);
    Ok(())
}

fn latency_doctor(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let text = if ctx
        .srv
        .latency_ms
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".to_string()
    } else {
        let m = ctx.srv.latency.events.lock();
        if m.is_empty() {
            "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sleep tonight.\n".to_string()
        } else {
            let mut s = String::from("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
            for (i, (k, v)) in m.iter().enumerate() {
                let avg =
                    v.samples.iter().map(|x| x.1).sum::<u64>() / v.samples.len().max(1) as u64;
                s.push_str(&format!(
                    "{}. {}: {} latency spikes (average {}ms, worst {}ms).\n",
                    i + 1,
                    k,
                    v.samples.len(),
                    avg,
                    v.max
                ));
            }
            s
        }
    };
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

fn latency_graph(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let ev = String::from_utf8_lossy(a[2]).into_owned();
    let m = ctx.srv.latency.events.lock();
    let Some(s) = m.get(&ev).filter(|s| !s.samples.is_empty()) else {
        return Err(CmdError::msg(format!(
            "ERR No samples available for event '{ev}'"
        )));
    };
    // A compact text rendering: one line per sample (Redis draws a chart).
    let mut text = format!(
        "{ev} - high {} ms, low {} ms (all time high {} ms)\n",
        s.samples.iter().map(|x| x.1).max().unwrap_or(0),
        s.samples.iter().map(|x| x.1).min().unwrap_or(0),
        s.max
    );
    for (t, ms) in &s.samples {
        text.push_str(&format!("{t} {ms}\n"));
    }
    drop(m);
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// LATENCY HISTOGRAM [command ...]: per (sub)command, the calls and the
/// cumulative latency distribution over power-of-two microsecond buckets.
/// Latencies are sampled (see `crate::histogram`); the cumulative counts
/// are scaled so that the last one equals the exact number of calls.
fn latency_histogram(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let t = super::table();
    let mut picked: Vec<&super::Entry> = Vec::new();
    if a.len() == 2 {
        picked = t.all();
    } else {
        for name in &a[2..] {
            let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
            let e = match lower.split_once('|') {
                Some((c, s)) => t.get(c.as_bytes()).and_then(|e| e.subs.get(s)),
                None => t.get(lower.as_bytes()),
            };
            let Some(e) = e else { continue };
            // DEBUG counts as one command (its subcommands are ours).
            if e.subs.is_empty() || e.spec.name == "debug" {
                picked.push(e);
            } else {
                picked.extend(e.subs.values());
            }
        }
    }
    picked.sort_by(|x, y| x.fullname.cmp(&y.fullname));
    picked.dedup_by(|x, y| x.fullname == y.fullname);
    type Row<'a> = (&'a str, u64, Vec<(u64, u64)>);
    let rows: Vec<Row> = picked
        .into_iter()
        .filter_map(|e| {
            let calls = e.stats.calls.load(std::sync::atomic::Ordering::Relaxed);
            let buckets = e.stats.latency.cumulative_usec();
            let sampled = buckets.last()?.1;
            if calls == 0 {
                return None;
            }
            let scaled = buckets
                .into_iter()
                .map(|(us, n)| (us, (n as u128 * calls as u128 / sampled as u128) as u64))
                .collect();
            Some((e.fullname.as_str(), calls, scaled))
        })
        .collect();
    ctx.out.map(rows.len());
    for (name, calls, buckets) in rows {
        ctx.out.bulk(name.as_bytes());
        ctx.out.map(2);
        ctx.out.bulk(b"calls");
        ctx.out.int(calls as i64);
        ctx.out.bulk(b"histogram_usec");
        ctx.out.map(buckets.len());
        for (us, n) in buckets {
            ctx.out.int(us as i64);
            ctx.out.int(n as i64);
        }
    }
    Ok(())
}

fn latency_help(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    super::keys::help_reply(
        ctx,
        "latency",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    );
    Ok(())
}
