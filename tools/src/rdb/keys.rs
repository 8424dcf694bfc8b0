//! `basalt-rdb keys FILE`: one key per line.

use super::filter::{Filter, FilterArgs};
use super::{display_key, scan, Result};
use basalt_rdb::Item;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// List the keys, one per line, in file order. Keys with control
/// characters or invalid UTF-8 are printed quoted as redis-cli does.
///
/// Examples:
///   basalt-rdb keys dump.rdb --match 'session:*' --not-expired
///   basalt-rdb keys dump.rdb --type zset --min-size 1000000 --long
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The dump.
    pub file: PathBuf,
    /// Also print db, type, expiry (Unix ms or -1) and estimated memory, tab-separated.
    #[arg(long, short)]
    pub long: bool,
    /// Write keys raw, each followed by a NUL byte (for `xargs -0`).
    #[arg(long, short = '0', conflicts_with = "long")]
    pub null: bool,
    /// Output file (default stdout).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Runs `keys`.
pub fn run(a: &Args, quiet: bool) -> Result<ExitCode> {
    let filter = Filter::new(&a.filter)?;
    let mut out = super::output(a.output.as_ref())?;
    let mut line = Vec::with_capacity(256);
    scan(
        &a.file,
        super::decode_options(),
        quiet,
        |_| {},
        |item| {
            let Item::Entry(e) = item else { return Ok(()) };
            if !filter.matches(&e) {
                return Ok(());
            }
            let mem = if a.long || filter.needs_size() {
                super::memory::estimate(&e).bytes
            } else {
                0
            };
            if !filter.size_ok(mem) {
                return Ok(());
            }
            line.clear();
            if a.null {
                line.extend_from_slice(&e.key);
                line.push(0);
            } else {
                if a.long {
                    line.extend_from_slice(
                        format!(
                            "{}\t{}\t{}\t{}\t",
                            e.db,
                            e.value.type_name(),
                            e.expire_ms.unwrap_or(-1),
                            mem
                        )
                        .as_bytes(),
                    );
                }
                display_key(&e.key, &mut line);
                line.push(b'\n');
            }
            out.write_all(&line)?;
            Ok(())
        },
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
