//! `basalt-server [path/to/basalt.conf] [--option value ...]`

use std::sync::Arc;

use basalt::config;
use basalt::shared::Shared;

#[global_allocator]
static ALLOC: basalt::alloc::Counting = basalt::alloc::Counting;

fn main() {
    basalt::alloc::configure();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("usage: basalt-server [/path/to/basalt.conf] [--option value ...]\n\nOptions use redis.conf names, e.g. --port 6380 --dir ./data --appendfsync everysec");
        return;
    }
    if args.iter().any(|a| a == "--version" || a == "-v") {
        println!(
            "basalt-server {} (redis_version {})",
            env!("CARGO_PKG_VERSION"),
            basalt::REDIS_VERSION
        );
        return;
    }
    let (mut cfg, warnings) = match config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("basalt-server: configuration error: {e}");
            std::process::exit(1);
        }
    };
    init_logging(&cfg);
    for w in &warnings {
        tracing::warn!("{w}");
    }
    if cfg.get("disable-thp") != Some("no") {
        disable_thp();
    }
    adjust_open_files(&mut cfg);
    let tls = match basalt::tls::from_config(&cfg) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("TLS configuration error: {e}");
            eprintln!("basalt-server: TLS configuration error: {e}");
            std::process::exit(1);
        }
    };
    // The main thread accepts connections and runs the periodic tasks;
    // connections are served by `io-threads` threads of their own (see
    // `basalt::server::start_io_threads`).
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .and_then(|rt| {
            basalt::server::start_io_threads(cfg.io_threads, cfg.busy_poll()).map(|()| {
                basalt::commands::memory::note_startup_overhead();
                rt
            })
        }) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("basalt-server: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    let _lock = match basalt::persistence::lock_dir(&cfg.dir) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("basalt-server: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(async move {
        let listeners = match basalt::server::bind(&cfg).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("basalt-server: {e}");
                return 1;
            }
        };
        let appendonly = cfg.appendonly;
        let srv = Arc::new(Shared::new(cfg));
        *srv.tls.write() = tls;
        let _ = srv.me.set(Arc::downgrade(&srv));
        if let Err(e) = srv.init_acl() {
            tracing::error!("Aborting startup because of ACL errors: {e}");
            eprintln!("basalt-server: Aborting startup because of ACL errors: {e}");
            return 1;
        }
        {
            // Replay in the background while clients get -LOADING.
            srv.loading
                .store(true, std::sync::atomic::Ordering::Relaxed);
            srv.loading_start_ms.store(
                basalt::shared::unix_ms(),
                std::sync::atomic::Ordering::Relaxed,
            );
            let s2 = srv.clone();
            std::thread::spawn(move || {
                let r = if appendonly {
                    basalt::persistence::open_log(&s2)
                } else {
                    basalt::persistence::load_standalone_snapshot(&s2)
                };
                if let Err(e) = r {
                    tracing::error!("cannot load the data: {e}");
                    eprintln!("basalt-server: cannot load the data: {e}");
                    std::process::exit(1);
                }
                s2.loading
                    .store(false, std::sync::atomic::Ordering::Relaxed);
            });
        }
        basalt::server::run(srv.clone(), listeners).await;
        let kind = *srv.shutdown.borrow();
        let save_points = !srv.config.read().save_points().is_empty();
        let want_save = match kind {
            Some(basalt::shared::ShutdownKind::Save) => true,
            Some(basalt::shared::ShutdownKind::NoSave) => false,
            _ => save_points,
        };
        if want_save && !srv.loading.load(std::sync::atomic::Ordering::Relaxed) {
            // A running snapshot (BGSAVE, a transfer's) holds the one
            // claim and does not cover the writes since it started: wait
            // for it, then take the final one.
            if !basalt::snapshot::try_claim(&srv) {
                tracing::info!("waiting for the running snapshot before the final one");
                while !basalt::snapshot::try_claim(&srv) {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
            if let Err(e) = basalt::snapshot::take_claimed(&srv) {
                tracing::error!("snapshot at shutdown failed: {e}");
            }
        }
        // Transfers still making a dump are not waited for.
        basalt::replication::remove_dumps();
        if let Some(log) = srv.log.get() {
            if let Err(e) = log.close() {
                tracing::error!("closing the log: {e}");
                return 1;
            }
        }
        // Everything is on disk. Freeing the keyspace one allocation at a
        // time would only delay the exit (2.5-4 s for 2 M keys, measured
        // with `perf`: mi_free and Dict::clear), and a restart must wait
        // for the data-dir lock: leave it to the OS, as Redis does.
        std::mem::forget(srv);
        0
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    std::process::exit(code);
}

/// `disable-thp yes` (the default, as in Redis): no transparent huge
/// pages for this process. Redis turns them off for fork's copy-on-write;
/// Basalt does not fork, but on a busy host a huge-page fault can stall
/// in direct compaction, and loading a snapshot measured several hundred
/// ms more system time with them than without (the allocator asks for
/// them with madvise).
fn disable_thp() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with integer arguments only; affects this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Redis's adjustOpenFilesLimit: `maxclients` needs that many file
/// descriptors plus 32 for the server's own files. Raise RLIMIT_NOFILE if
/// needed; when the system does not allow it, lower `maxclients` to fit
/// (with Redis's warnings), so accepts fail with the Redis error instead
/// of EMFILE.
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
fn adjust_open_files(cfg: &mut config::Config) {
    const RESERVED: u64 = 32;
    let want = cfg.maxclients.saturating_add(RESERVED);
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    let old = lim.rlim_cur as u64;
    if old >= want {
        return;
    }
    let mut got = old;
    let mut error = String::new();
    for target in [want, (lim.rlim_max as u64).min(want)] {
        if target <= got {
            continue;
        }
        let new = libc::rlimit {
            rlim_cur: target as libc::rlim_t,
            rlim_max: (target as libc::rlim_t).max(lim.rlim_max),
        };
        // SAFETY: setrlimit reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
            got = target;
            break;
        }
        error = std::io::Error::last_os_error().to_string();
    }
    if got >= want {
        tracing::info!(
            "increased maximum number of open files to {got} (it was originally set to {old})"
        );
        return;
    }
    let reduced = got.saturating_sub(RESERVED).max(1);
    tracing::warn!(
        "You requested maxclients of {} requiring at least {want} max file descriptors.",
        cfg.maxclients
    );
    tracing::warn!("Server can't set maximum open files to {want} because of OS error: {error}.");
    tracing::warn!("Current maximum open files is {got}. maxclients has been reduced to {reduced} to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'.");
    let explicit = cfg.explicit.clone();
    let _ = cfg.set("maxclients", &reduced.to_string());
    cfg.explicit = explicit;
}

fn init_logging(cfg: &config::Config) {
    let level = match cfg.loglevel.as_str() {
        "debug" => "debug",
        "verbose" => "info",
        "warning" => "warn",
        "nothing" => "off",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BASALT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if cfg.logfile.is_empty() {
        builder.with_writer(std::io::stderr).init();
    } else {
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&cfg.logfile)
        {
            Ok(f) => builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(f))
                .init(),
            Err(e) => {
                eprintln!("basalt-server: cannot open logfile {}: {e}", cfg.logfile);
                std::process::exit(1);
            }
        }
    }
}
