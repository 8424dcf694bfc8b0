//! `basalt-rdb convert FILE -o OUT --rdb-version N`.

use super::filter::{Filter, FilterArgs};
use super::{scan, Result};
use basalt_rdb::{EncodeOptions, Item, Writer};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Rewrite a dump for another RDB version, e.g. Redis 7.4's 12 to 11 for
/// Valkey 8, or Valkey's 11 to 10 for Redis 7.0. Keys, expiries, LRU/LFU
/// data, aux fields and functions are kept; what the target cannot hold
/// (hash field TTLs before 12, functions before 10, module data, empty
/// collections) is refused with a message naming the key, unless
/// --skip-unrepresentable drops it with a warning. The output is written to
/// a temporary file and renamed into place only when complete.
///
/// Examples:
///   basalt-rdb convert dump.rdb -o dump-v10.rdb --rdb-version 10
///   basalt-rdb convert valkey9.rdb -o for-redis-7.4.rdb --rdb-version 12
///   basalt-rdb convert dump.rdb -o sessions.rdb --rdb-version 9 --match 'session:*'
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The dump to read.
    pub file: PathBuf,
    /// Where to write the converted dump.
    #[arg(long, short)]
    pub output: PathBuf,
    /// Target: 9 (Redis 5-6.2), 10 (7.0), 11 (7.2, Valkey 7.2-8), 12 (7.4+), 80 (Valkey 9).
    #[arg(long)]
    pub rdb_version: u32,
    /// Drop (with a warning) what the target cannot hold instead of failing.
    #[arg(long)]
    pub skip_unrepresentable: bool,
    /// Write strings raw instead of LZF-compressing them (`rdbcompression no`).
    #[arg(long)]
    pub no_compression: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// What a conversion wrote.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Keys written.
    pub keys: u64,
    /// Things dropped, in words.
    pub dropped: Vec<String>,
}

/// Converts `src` into `dst` (via `dst.tmp`).
pub fn convert(a: &Args, quiet: bool) -> Result<Outcome> {
    let filter = Filter::new(&a.filter)?;
    let target = super::dump::target(a.rdb_version)?;
    let opts = EncodeOptions {
        target,
        compress: !a.no_compression,
    };
    let tmp = tmp_path(&a.output);
    let file = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let result = (|| -> Result<Outcome> {
        let mut w = Writer::new(BufWriter::with_capacity(1 << 20, file), opts)?;
        let mut out = Outcome::default();
        let tname = target.format().to_string();
        let skip = a.skip_unrepresentable;
        let refuse = |what: String, out: &mut Outcome| -> Result<()> {
            if skip {
                out.dropped.push(what);
                Ok(())
            } else {
                Err(format!(
                    "cannot convert to {tname}: {what} (--skip-unrepresentable drops such data)"
                )
                .into())
            }
        };
        scan(
            &a.file,
            super::decode_options(),
            quiet,
            |_| {},
            |item| {
                match item {
                    Item::Aux { key, value } => w.aux(&key, &value)?,
                    Item::Function(f) => {
                        if let Err(e) = w.function(&f) {
                            refuse(
                                format!(
                                    "function library '{}': {e}",
                                    String::from_utf8_lossy(&f.library)
                                ),
                                &mut out,
                            )?;
                        }
                    }
                    Item::Entry(e) => {
                        if !filter.accepts(&e) {
                            return Ok(());
                        }
                        if e.value.has_duplicates() {
                            // A compact encoding let a member or field
                            // through twice; no target loads that back.
                            return refuse(
                                format!(
                                    "db {} key {:?}: a {} holding the same member or field twice",
                                    e.db,
                                    String::from_utf8_lossy(&e.key),
                                    e.value.type_name()
                                ),
                                &mut out,
                            );
                        }
                        match w.entry(&e) {
                            Ok(()) => out.keys += 1,
                            Err(basalt_rdb::Error::Io(io)) => return Err(io.into()),
                            Err(err) => refuse(
                                format!(
                                    "db {} key {:?}: {err}",
                                    e.db,
                                    String::from_utf8_lossy(&e.key)
                                ),
                                &mut out,
                            )?,
                        }
                    }
                    // No target this tool writes keeps the job; its keys
                    // are written as they are, with a warning.
                    Item::SlotImport { name, ranges } => out
                        .dropped
                        .push(basalt_rdb::slot_import_warning(&name, &ranges)),
                    Item::ModuleAux { module, .. } => {
                        refuse(
                            format!("module aux data of type '{}'", module.name),
                            &mut out,
                        )?;
                    }
                    // Databases are selected per key; slot info is a hint
                    // Redis recomputes.
                    _ => {}
                }
                Ok(())
            },
        )?;
        let mut f = w.finish()?;
        std::io::Write::flush(&mut f)?;
        f.get_ref().sync_all()?;
        Ok(out)
    })();
    match result {
        Ok(o) => {
            std::fs::rename(&tmp, &a.output).map_err(|e| format!("{}: {e}", a.output.display()))?;
            Ok(o)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn tmp_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Runs `convert`.
pub fn run(a: &Args, quiet: bool) -> Result<ExitCode> {
    let o = convert(a, quiet)?;
    for d in &o.dropped {
        eprintln!("basalt-rdb: warning: dropped {d}");
    }
    eprintln!(
        "basalt-rdb: wrote {} keys to {} (RDB {})",
        o.keys,
        a.output.display(),
        a.rdb_version
    );
    Ok(ExitCode::SUCCESS)
}
