//! `basalt-rdb convert` (not implemented yet).

use super::Result;
use std::process::ExitCode;

/// Not implemented yet.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `convert`.
pub fn run(_a: &Args, _quiet: bool) -> Result<ExitCode> {
    Err("not implemented yet".into())
}
