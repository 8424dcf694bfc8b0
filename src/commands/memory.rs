//! MEMORY USAGE, STATS, DOCTOR, PURGE, MALLOC-STATS and HELP, with Redis
//! 7.0's replies and errors. The numbers are Basalt's own: what its
//! allocator handed out (INFO's `used_memory`), the process's RSS, and
//! the keyspace tables' sizes; Basalt has no replication backlog, scripts
//! or cluster links, so those read zero.

use super::flags::*;
use super::{cmd, container, CmdError, CmdResult, CommandSpec, Ctx};
use basalt_storage::bytes::INLINE_CAP;
use basalt_storage::{Dict, Entry};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const fn srv(mut c: CommandSpec) -> CommandSpec {
    c.group = "server";
    c.since = "4.0.0";
    c
}

pub static COMMANDS: &[CommandSpec] = &[CommandSpec {
    subcommands: &[
        CommandSpec {
            first_key: 2,
            last_key: 2,
            step: 1,
            ..srv(cmd("usage", -3, READONLY, usage))
        },
        srv(cmd("stats", 2, 0, stats)),
        srv(cmd("doctor", 2, 0, doctor)),
        srv(cmd("purge", 2, 0, purge)),
        srv(cmd("malloc-stats", 2, 0, malloc_stats)),
        srv(cmd("help", 2, LOADING | STALE, help)),
    ],
    ..srv(cmd("memory", -2, 0, container))
}];

/// Elements of a nested value measured when MEMORY USAGE gives no
/// SAMPLES (Redis's default).
const DEFAULT_SAMPLES: usize = 5;

/// MEMORY USAGE key [SAMPLES count]: the bytes of the key's table entry,
/// key and value. Big hashes, sets and lists are measured on `count`
/// elements (0: all) and scaled, as Redis samples them.
fn usage(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let mut samples = DEFAULT_SAMPLES;
    let mut j = 3;
    while j < a.len() {
        if super::args::eq(a[j], "samples") && j + 1 < a.len() {
            let n = super::args::int(a[j + 1])?;
            if n < 0 {
                return Err(CmdError::Syntax);
            }
            samples = usize::try_from(n).unwrap_or(usize::MAX);
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let k = ctx.write_key(a[2]);
    let size = k.get().map(|e| {
        Dict::<Entry>::node_size()
            + if a[2].len() > INLINE_CAP {
                a[2].len()
            } else {
                0
            }
            + e.value.heap_size_sampled(samples)
    });
    drop(k);
    match size {
        Some(n) => ctx.out.int(n as i64),
        None => ctx.out.null(),
    }
    Ok(())
}

/// What MEMORY STATS and DOCTOR report.
struct Figures {
    peak: u64,
    total: u64,
    aof_buffer: u64,
    /// Per non-empty db: (index, bytes of its tables' buckets and nodes).
    dbs: Vec<(usize, u64)>,
    overhead: u64,
    keys: u64,
    rss: u64,
    /// The allocator's resident memory (see `alloc::resident`).
    resident: u64,
    startup_overhead: u64,
}

fn figures(ctx: &Ctx<'_>) -> Figures {
    let srv = ctx.srv;
    let total = crate::alloc::allocated() as u64;
    let peak = (crate::alloc::peak() as u64).max(total);
    let ndb = srv.ks.num_dbs();
    let mut per_db = vec![(0u64, 0u64); ndb];
    // One shard at a time, through the context (inside EXEC it holds them).
    for i in 0..srv.ks.num_shards() {
        let g = ctx.shard(i);
        for (db, d) in g.dbs.iter().enumerate() {
            if let Some(slot) = per_db.get_mut(db) {
                slot.0 += d.len() as u64;
                slot.1 += (d.bucket_bytes() + d.len() * Dict::<Entry>::node_size()) as u64;
            }
        }
    }
    let aof_buffer = crate::evict::not_counted(srv);
    let dbs: Vec<(usize, u64)> = per_db
        .iter()
        .enumerate()
        .filter(|(_, (keys, _))| *keys > 0)
        .map(|(db, (_, bytes))| (db, *bytes))
        .collect();
    let overhead = aof_buffer + dbs.iter().map(|(_, b)| b).sum::<u64>();
    Figures {
        peak,
        total,
        aof_buffer,
        dbs,
        overhead,
        keys: per_db.iter().map(|(k, _)| k).sum(),
        rss: super::info::rss(),
        resident: crate::alloc::resident(super::info::rss()),
        startup_overhead: STARTUP_OVERHEAD.load(Relaxed),
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// MEMORY STATS: Redis 7.0's fields, in its order.
fn stats(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let f = figures(ctx);
    let o = &mut ctx.out;
    o.map(27 + f.dbs.len());
    let ints: [(&[u8], u64); 10] = [
        (b"peak.allocated", f.peak),
        (b"total.allocated", f.total),
        (b"startup.allocated", 0),
        (b"replication.backlog", 0),
        (b"clients.slaves", 0),
        (b"clients.normal", 0),
        (b"cluster.links", 0),
        (b"aof.buffer", f.aof_buffer),
        (b"lua.caches", 0),
        (b"functions.caches", 0),
    ];
    for (name, v) in ints {
        o.bulk(name);
        o.int(v as i64);
    }
    for (db, bytes) in &f.dbs {
        o.bulk(format!("db.{db}").as_bytes());
        o.map(3);
        o.bulk(b"overhead.hashtable.main");
        o.int(*bytes as i64);
        // Deadlines live in the entries: no second table.
        o.bulk(b"overhead.hashtable.expires");
        o.int(0);
        o.bulk(b"overhead.hashtable.slot-to-keys");
        o.int(0);
    }
    let dataset = f.total.saturating_sub(f.overhead);
    let rss_extra = f.rss as i64 - f.total as i64;
    o.bulk(b"overhead.total");
    o.int(f.overhead as i64);
    o.bulk(b"keys.count");
    o.int(f.keys as i64);
    o.bulk(b"keys.bytes-per-key");
    o.int(f.total.checked_div(f.keys).unwrap_or(0) as i64);
    o.bulk(b"dataset.bytes");
    o.int(dataset as i64);
    o.bulk(b"dataset.percentage");
    o.double(ratio(dataset, f.total) * 100.0);
    o.bulk(b"peak.percentage");
    o.double(ratio(f.total, f.peak) * 100.0);
    // mimalloc's active bytes are not read: allocated = active, so no
    // allocator fragmentation is reported; resident is what it keeps
    // committed.
    o.bulk(b"allocator.allocated");
    o.int(f.total as i64);
    o.bulk(b"allocator.active");
    o.int(f.total as i64);
    o.bulk(b"allocator.resident");
    o.int(f.resident as i64);
    o.bulk(b"allocator-fragmentation.ratio");
    o.double(1.0);
    o.bulk(b"allocator-fragmentation.bytes");
    o.int(0);
    o.bulk(b"allocator-rss.ratio");
    o.double(ratio(f.resident, f.total));
    o.bulk(b"allocator-rss.bytes");
    o.int(f.resident as i64 - f.total as i64);
    o.bulk(b"rss-overhead.ratio");
    o.double(ratio(f.rss, f.resident));
    o.bulk(b"rss-overhead.bytes");
    o.int(f.rss as i64 - f.resident as i64);
    o.bulk(b"fragmentation");
    o.double(ratio(f.rss, f.total));
    o.bulk(b"fragmentation.bytes");
    o.int(rss_extra);
    Ok(())
}

const DOCTOR_EMPTY: &str = "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n";
const DOCTOR_FINE: &str = "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n";
const DOCTOR_INTRO: &str =
    "Sam, I detected a few issues in this Redis instance memory implants:\n\n";
const DOCTOR_PEAK: &str = " * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n";
const DOCTOR_RSS: &str = " * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"mimalloc\".\n\n";
const DOCTOR_OUTRO: &str = "I'm here to keep you safe, Sam. I want to help you.\n";

/// The process's RSS beyond its heap right after start (code, thread
/// stacks, runtime): about 11 MB here, against Redis's 6-7 MB.
static STARTUP_OVERHEAD: AtomicU64 = AtomicU64::new(0);

/// Notes the process's fixed RSS (call once, after the threads started),
/// which MEMORY DOCTOR leaves out of its RSS check.
pub fn note_startup_overhead() {
    let rss = super::info::rss();
    let used = crate::alloc::allocated() as u64;
    STARTUP_OVERHEAD.store(rss.saturating_sub(used), Relaxed);
}

/// The report for these figures, by Redis's rules (`getMemoryDoctorReport`):
/// under 5 MB in use it declines; otherwise it flags a peak over 150% of
/// the current use, and an RSS over 1.4x the use and 10 MB over it. The
/// RSS check leaves out the process's fixed overhead at start
/// (`STARTUP_OVERHEAD`), else every instance under ~30 MB would be told
/// of fragmentation it does not have. Redis's other checks never fire
/// here: mimalloc's free-but-resident and active bytes are not known (its
/// committed count includes pages never touched, above the RSS), and
/// Basalt's non-heap RSS is its code and stacks, not Lua or modules.
fn doctor_report(f: &Figures) -> String {
    if f.total < 5 << 20 {
        return DOCTOR_EMPTY.to_string();
    }
    const OVER: u64 = 10 << 20;
    let mut items = Vec::new();
    if ratio(f.peak, f.total) > 1.5 {
        items.push(DOCTOR_PEAK);
    }
    let rss = f.rss.saturating_sub(f.startup_overhead);
    if ratio(rss, f.total) > 1.4 && rss.saturating_sub(f.total) > OVER {
        items.push(DOCTOR_RSS);
    }
    if items.is_empty() {
        return DOCTOR_FINE.to_string();
    }
    let mut s = String::from(DOCTOR_INTRO);
    for i in items {
        s.push_str(i);
    }
    s.push_str(DOCTOR_OUTRO);
    s
}

fn doctor(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    let report = doctor_report(&figures(ctx));
    ctx.out.verbatim(report.as_bytes());
    Ok(())
}

/// MEMORY PURGE: returns this thread's free pages to the OS now (the
/// other threads return theirs within a second or two by themselves).
fn purge(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    crate::alloc::purge();
    ctx.out.ok();
    Ok(())
}

/// MEMORY MALLOC-STATS: Redis's reply for an allocator other than jemalloc.
fn malloc_stats(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    ctx.out
        .verbatim(b"Stats not supported for the current allocator");
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    super::keys::help_reply(
        ctx,
        "memory",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figs(total: u64, peak: u64, rss: u64, startup_overhead: u64) -> Figures {
        Figures {
            peak,
            total,
            aof_buffer: 0,
            dbs: vec![],
            overhead: 0,
            keys: 1,
            rss,
            resident: rss,
            startup_overhead,
        }
    }

    #[test]
    fn doctor_follows_redis_rules() {
        const MB: u64 = 1 << 20;
        let f = |total, peak, rss, base| doctor_report(&figs(total, peak, rss, base));
        assert_eq!(f(4 * MB, 40 * MB, 4 * MB, 0), DOCTOR_EMPTY);
        assert_eq!(f(50 * MB, 60 * MB, 65 * MB, 11 * MB), DOCTOR_FINE);
        assert_eq!(
            f(50 * MB, 80 * MB, 55 * MB, 11 * MB),
            format!("{DOCTOR_INTRO}{DOCTOR_PEAK}{DOCTOR_OUTRO}")
        );
        // 24 MB in use, 37 MB resident: the 11 MB the process had at
        // start is no fragmentation.
        assert_eq!(f(24 * MB, 24 * MB, 37 * MB, 11 * MB), DOCTOR_FINE);
        assert_eq!(
            f(24 * MB, 24 * MB, 37 * MB, 0),
            format!("{DOCTOR_INTRO}{DOCTOR_RSS}{DOCTOR_OUTRO}")
        );
        // Both, in Redis's order.
        assert_eq!(
            f(50 * MB, 100 * MB, 95 * MB, 11 * MB),
            format!("{DOCTOR_INTRO}{DOCTOR_PEAK}{DOCTOR_RSS}{DOCTOR_OUTRO}")
        );
        // Over the ratio but not 10 MB over: nothing.
        assert_eq!(f(6 * MB, 6 * MB, 14 * MB, 0), DOCTOR_FINE);
    }
}
