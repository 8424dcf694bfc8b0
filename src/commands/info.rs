//! INFO, with Redis's section and field names so exporters and
//! dashboards that parse it work unchanged.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use super::flags::*;
use super::{cmd, table, CmdResult, CommandSpec, Ctx};

pub static COMMANDS: &[CommandSpec] = &[CommandSpec {
    group: "server",
    ..cmd("info", -1, LOADING | STALE | SENTINEL | CAT_DANGEROUS, info)
}];

const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];
const ALL_EXTRA: &[&str] = &["commandstats", "latencystats"];

fn info(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let mut sections: Vec<String> = Vec::new();
    let mut all = false;
    for s in &a[1..] {
        let s = String::from_utf8_lossy(s).to_ascii_lowercase();
        match s.as_str() {
            "default" => sections.extend(DEFAULT.iter().map(|x| x.to_string())),
            "all" | "everything" => all = true,
            _ => sections.push(s),
        }
    }
    if a.len() == 1 {
        sections.extend(DEFAULT.iter().map(|x| x.to_string()));
    }
    if all {
        sections = DEFAULT
            .iter()
            .chain(ALL_EXTRA)
            .map(|x| x.to_string())
            .collect();
    }
    let text = render(ctx, &sections);
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

fn rusage(who: libc::c_int) -> (f64, f64) {
    // SAFETY: getrusage fills the struct we own.
    unsafe {
        let mut r: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut r);
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        (t(r.ru_stime), t(r.ru_utime))
    }
}

pub(crate) fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / 1024.0 / 1024.0)
    } else {
        format!("{:.2}G", b / 1024.0 / 1024.0 / 1024.0)
    }
}

pub fn render(ctx: &Ctx<'_>, sections: &[String]) -> String {
    let srv = ctx.srv;
    let mut o = String::new();
    let want = |s: &str| sections.iter().any(|x| x == s);
    let cfg = srv.config.read();
    if want("server") {
        let up = srv.started.elapsed().as_secs();
        let _ = write!(
            o,
            "# Server\r\nredis_version:{}\r\nbasalt_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nlru_clock:{}\r\nexecutable:basalt-server\r\nconfig_file:{}\r\nio_threads_active:{}\r\n\r\n",
            crate::REDIS_VERSION,
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH,
            std::process::id(),
            srv.run_id,
            srv.tcp_port.load(Relaxed),
            crate::shared::unix_ms() * 1000,
            up,
            up / 86400,
            cfg.hz,
            cfg.hz,
            srv.lru_clock(),
            cfg.file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            (cfg.io_threads > 1) as u8,
        );
    }
    if want("clients") {
        let _ = write!(
            o,
            "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:{}\r\ntracking_clients:{}\r\nclients_in_timeout_table:0\r\n\r\n",
            srv.clients.len(),
            cfg.maxclients,
            srv.blocked_clients.load(Relaxed),
            srv.tracking.clients_count()
        );
    }
    if want("memory") {
        let used = crate::alloc::allocated() as u64;
        let peak = crate::alloc::peak().max(used as usize) as u64;
        let rss = rss();
        // The allocator's resident memory: what mimalloc keeps committed.
        let resident = crate::alloc::resident(rss);
        let total = total_mem();
        let maxmem: u64 = cfg
            .get("maxmemory")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let aofbuf = crate::evict::not_counted(srv);
        let notcounted = crate::evict::not_counted_for_evict(srv);
        let ratio = |a: u64, b: u64| if b > 0 { a as f64 / b as f64 } else { 0.0 };
        let pct = |a: u64, b: u64| ratio(a, b) * 100.0;
        // Field set and order as Redis 7.0; Basalt has no scripting, no
        // replication buffers and no defragmenter, so those read zero.
        let _ = write!(
            o,
            "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\nused_memory_peak_perc:{:.2}%\r\nused_memory_overhead:0\r\nused_memory_startup:0\r\nused_memory_dataset:{used}\r\nused_memory_dataset_perc:{:.2}%\r\nallocator_allocated:{used}\r\nallocator_active:{used}\r\nallocator_resident:{resident}\r\ntotal_system_memory:{total}\r\ntotal_system_memory_human:{}\r\nused_memory_lua:0\r\nused_memory_vm_eval:0\r\nused_memory_lua_human:0B\r\nused_memory_scripts_eval:0\r\nnumber_of_cached_scripts:0\r\nnumber_of_functions:0\r\nnumber_of_libraries:0\r\nused_memory_vm_functions:0\r\nused_memory_vm_total:0\r\nused_memory_vm_total_human:0B\r\nused_memory_functions:0\r\nused_memory_scripts:0\r\nused_memory_scripts_human:0B\r\nmaxmemory:{maxmem}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nallocator_frag_ratio:1.00\r\nallocator_frag_bytes:0\r\nallocator_rss_ratio:{:.2}\r\nallocator_rss_bytes:{}\r\nrss_overhead_ratio:{:.2}\r\nrss_overhead_bytes:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_fragmentation_bytes:{}\r\nmem_not_counted_for_evict:{notcounted}\r\nmem_replication_backlog:0\r\nmem_total_replication_buffers:0\r\nmem_clients_slaves:0\r\nmem_clients_normal:0\r\nmem_cluster_links:0\r\nmem_aof_buffer:{aofbuf}\r\nmem_allocator:mimalloc\r\nactive_defrag_running:0\r\nlazyfree_pending_objects:0\r\nlazyfreed_objects:0\r\n\r\n",
            human(used),
            human(rss),
            human(peak),
            pct(used, peak),
            if used > 0 { 100.0 } else { 0.0 },
            human(total),
            human(maxmem),
            cfg.get("maxmemory-policy").unwrap_or("noeviction"),
            ratio(resident, used),
            resident as i64 - used as i64,
            ratio(rss, resident),
            rss as i64 - resident as i64,
            ratio(rss, used),
            rss as i64 - used as i64,
        );
    }
    if want("persistence") {
        o.push_str(&srv.persistence_info());
    }
    if want("stats") {
        let s = &srv.stats;
        let (tk, ti, tp) = srv.tracking.stats();
        let exceeded = srv.evict.exceeded_ms(crate::shared::unix_ms());
        let inst = s.instantaneous.rates();
        let _ = write!(
            o,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:{:.2}\r\ninstantaneous_output_kbps:{:.2}\r\ninstantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\nrejected_connections:{}\r\nsync_full:{}\r\nsync_partial_ok:0\r\nsync_partial_err:0\r\nexpired_keys:{}\r\nexpired_stale_perc:0.00\r\nexpired_time_cap_reached_count:0\r\nexpire_cycle_cpu_milliseconds:0\r\nevicted_keys:{}\r\nevicted_clients:{}\r\ntotal_eviction_exceeded_time:{}\r\ncurrent_eviction_exceeded_time:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:{}\r\nlatest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:0\r\nslave_expires_tracked_keys:0\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\ntracking_total_keys:{}\r\ntracking_total_items:{}\r\ntracking_total_prefixes:{}\r\nunexpected_error_replies:0\r\ntotal_error_replies:{}\r\ndump_payload_sanitizations:0\r\ntotal_reads_processed:0\r\ntotal_writes_processed:0\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\nreply_buffer_shrinks:0\r\nreply_buffer_expands:0\r\n\r\n",
            s.connections.load(Relaxed),
            s.commands.load(Relaxed),
            inst.0,
            s.net_input_bytes.load(Relaxed),
            s.net_output_bytes.load(Relaxed),
            inst.1,
            inst.2,
            s.rejected_connections.load(Relaxed),
            s.sync_full.load(Relaxed),
            s.expired_keys.load(Relaxed),
            s.evicted_keys.load(Relaxed),
            srv.evict.evicted_clients.load(Relaxed),
            exceeded.0,
            exceeded.1,
            s.keyspace_hits.load(Relaxed),
            s.keyspace_misses.load(Relaxed),
            srv.pubsub.channels(crate::pubsub::Kind::Channel, None).len(),
            srv.pubsub.numpat(),
            srv.pubsub.channels(crate::pubsub::Kind::Shard, None).len(),
            tk,
            ti,
            tp,
            s.error_replies.load(Relaxed),
        );
    }
    if want("replication") {
        let _ = write!(
            o,
            "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n\r\n",
            srv.run_id
        );
    }
    if want("cpu") {
        let (sys, user) = rusage(libc::RUSAGE_SELF);
        // "main thread": the thread serving this client.
        let (tsys, tuser) = rusage(libc::RUSAGE_THREAD);
        let _ = write!(
            o,
            "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\nused_cpu_sys_main_thread:{tsys:.6}\r\nused_cpu_user_main_thread:{tuser:.6}\r\n\r\n"
        );
    }
    if want("modules") {
        o.push_str("# Modules\r\n\r\n");
    }
    if want("commandstats") {
        o.push_str("# Commandstats\r\n");
        let mut all = table().all();
        all.sort_by(|a, b| a.fullname.cmp(&b.fullname));
        for e in all {
            let calls = e.stats.calls.load(Relaxed);
            let rej = e.stats.rejected.load(Relaxed);
            let failed = e.stats.failed.load(Relaxed);
            if calls == 0 && rej == 0 && failed == 0 {
                continue;
            }
            let usec = e.stats.usec.load(Relaxed);
            let per = if calls > 0 {
                usec as f64 / calls as f64
            } else {
                0.0
            };
            let _ = write!(o, "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per:.2},rejected_calls={rej},failed_calls={failed}\r\n", e.fullname);
        }
        o.push_str("\r\n");
    }
    if want("errorstats") {
        o.push_str("# Errorstats\r\n");
        let errs = srv.stats.errors.lock();
        let mut v: Vec<_> = errs.iter().collect();
        v.sort();
        for (k, n) in v {
            let _ = write!(o, "errorstat_{k}:count={n}\r\n");
        }
        o.push_str("\r\n");
    }
    if want("latencystats") {
        o.push_str("# Latencystats\r\n");
        let pcts: Vec<f64> = srv
            .config
            .read()
            .get("latency-tracking-info-percentiles")
            .unwrap_or("50 99 99.9")
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        let mut all = table().all();
        all.sort_by(|a, b| a.fullname.cmp(&b.fullname));
        for e in all {
            if e.stats.latency.total() == 0 {
                continue;
            }
            let _ = write!(o, "latency_percentiles_usec_{}:", e.fullname);
            for (i, p) in pcts.iter().enumerate() {
                let v = e.stats.latency.percentile_usec(*p).unwrap_or(0.0);
                let _ = write!(o, "{}p{p}={v:.3}", if i > 0 { "," } else { "" });
            }
            o.push_str("\r\n");
        }
        o.push_str("\r\n");
    }
    if want("cluster") {
        o.push_str("# Cluster\r\ncluster_enabled:0\r\n\r\n");
    }
    // No config guard while shards are locked below: a CONFIG SET waiting
    // for the write lock would block readers that hold shards (EXEC).
    drop(cfg);
    if want("keyspace") {
        o.push_str("# Keyspace\r\n");
        let n = srv.ks.num_dbs();
        let mut keys = vec![0usize; n];
        let mut expires = vec![0usize; n];
        for s in 0..srv.ks.num_shards() {
            let g = ctx.shard(s);
            for db in 0..n {
                keys[db] += g.dbs[db].len();
                expires[db] += g.dbs[db].ttl_count();
            }
        }
        for db in 0..n {
            if keys[db] > 0 {
                let _ = write!(
                    o,
                    "db{db}:keys={},expires={},avg_ttl=0\r\n",
                    keys[db], expires[db]
                );
            }
        }
        o.push_str("\r\n");
    }
    // Redis ends with a single CRLF after the last section.
    while o.ends_with("\r\n\r\n") {
        o.truncate(o.len() - 2);
    }
    o
}

pub(crate) fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

fn total_mem() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().next().and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}
