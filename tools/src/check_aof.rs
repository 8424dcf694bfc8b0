//! `basalt-check-aof <dir|file> [--fix]`: verify every record of a log and
//! optionally repair it. The logic is `basalt_aof::repair`; this module only
//! parses arguments, prints, and picks the exit code.

use basalt_aof::fs::StdFs;
use basalt_aof::repair::check;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code: the log is clean, or was damaged and is now fixed.
pub const EXIT_OK: u8 = 0;
/// Exit code: the log is damaged and was not (fully) fixed.
pub const EXIT_DAMAGED: u8 = 1;
/// Exit code: bad arguments or an I/O error.
pub const EXIT_ERROR: u8 = 2;

/// Check (and repair) a Basalt append-only log.
///
/// Verifies every record of every segment and reports each damaged region:
/// its offset, what is wrong, and how many valid records follow it.
/// With --fix, a torn tail is truncated and a damaged region with valid
/// records after it is replaced by padding of the same size, so every valid
/// record is kept at its position. Dropped bytes are saved next to the
/// segment as `<segment>.aof.dropped`.
///
/// Exit status: 0 clean or fixed, 1 damaged and not fixed, 2 usage or I/O error.
#[derive(Debug, Parser)]
#[command(name = "basalt-check-aof", version)]
pub struct Args {
    /// The log directory (or its MANIFEST, or one segment file).
    pub path: PathBuf,
    /// Repair the damage found.
    #[arg(long)]
    pub fix: bool,
}

/// Runs the check with parsed arguments, printing the report to stdout.
pub fn run(args: &Args) -> ExitCode {
    match check(&StdFs, &args.path, args.fix) {
        Ok(report) => {
            print!("{report}");
            if report.damage_remains() {
                ExitCode::from(EXIT_DAMAGED)
            } else {
                ExitCode::from(EXIT_OK)
            }
        }
        Err(e) => {
            eprintln!("basalt-check-aof: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
