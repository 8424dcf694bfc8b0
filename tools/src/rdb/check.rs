//! `basalt-rdb check FILE`: like redis-check-rdb.

use super::Result;
use basalt_rdb::{Checksum, DecodeOptions, Item, ModuleMode, Reader};
use std::path::PathBuf;
use std::process::ExitCode;

/// Verify a dump's structure (every value decoded and validated, as Redis's
/// `sanitize-dump-payload yes`) and its CRC64. Prints "RDB looks OK" and
/// exits 0, or reports the first bad byte offset and exits 1.
///
/// Example:
///   basalt-rdb check dump.rdb && echo intact
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The dump.
    pub file: PathBuf,
    /// Fail on module data instead of skipping it.
    #[arg(long)]
    pub strict_modules: bool,
}

/// What a check found.
#[derive(Debug)]
pub struct Report {
    /// Keys read.
    pub keys: u64,
    /// Keys with an expiry.
    pub expires: u64,
    /// The checksum outcome, when the end was reached.
    pub checksum: Option<Checksum>,
    /// The first error: offset and message.
    pub error: Option<(Option<u64>, String)>,
    /// Bytes read before the error (or the file size).
    pub offset: u64,
    /// Bytes after the checksum (ignored by Redis).
    pub trailing: u64,
}

/// Checks a file.
pub fn check(path: &std::path::Path, quiet: bool, strict_modules: bool) -> Result<Report> {
    // Read through a buffer, not a map: the resident set stays small.
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let progress = super::Progress::new(size, quiet);
    let opts = DecodeOptions {
        modules: if strict_modules {
            ModuleMode::Error
        } else {
            ModuleMode::Report
        },
        ..super::decode_options()
    };
    let mut r = Report {
        keys: 0,
        expires: 0,
        checksum: None,
        error: None,
        offset: 0,
        trailing: 0,
    };
    let mut reader = match Reader::from_read(file, opts) {
        Ok(rd) => rd,
        Err(e) => {
            r.error = Some((e.offset(), e.to_string()));
            return Ok(r);
        }
    };
    loop {
        match reader.next_item() {
            Ok(Some(Item::Entry(e))) => {
                r.keys += 1;
                r.expires += u64::from(e.expire_ms.is_some());
                if r.keys.is_multiple_of(4096) {
                    progress.set(reader.offset());
                }
                // Its buffers serve the next keys.
                reader.recycle(Item::Entry(e));
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                r.error = Some((e.offset(), e.to_string()));
                break;
            }
        }
    }
    progress.finish();
    r.offset = reader.offset();
    r.checksum = reader.checksum();
    if r.error.is_none() && r.offset < size {
        // Redis ignores them when loading, as redis-check-rdb does: a warning.
        r.trailing = size - r.offset;
    }
    Ok(r)
}

/// Runs `check`.
pub fn run(a: &Args, quiet: bool) -> Result<ExitCode> {
    let r = check(&a.file, quiet, a.strict_modules)?;
    println!("[info] {} keys read, {} with an expiry", r.keys, r.expires);
    match &r.error {
        None => {
            match r.checksum {
                Some(Checksum::Verified(c)) => println!("[info] checksum {c:016x} ok"),
                Some(Checksum::Disabled) => println!("[info] checksum disabled (zero trailer)"),
                Some(Checksum::NotPresent) | None => println!("[info] no checksum (RDB < 5)"),
                Some(Checksum::Unchecked(c)) => println!("[info] checksum {c:016x} not verified"),
            }
            if r.trailing > 0 {
                println!(
                    "[warning] {} bytes after the end of the dump (offset {}), ignored by Redis",
                    r.trailing, r.offset
                );
            }
            println!("RDB looks OK");
            Ok(ExitCode::SUCCESS)
        }
        Some((off, msg)) => {
            println!("RDB ERROR DETECTED: {msg}");
            if let Some(o) = off {
                println!("first bad offset: {o}");
            }
            Ok(ExitCode::from(1))
        }
    }
}
