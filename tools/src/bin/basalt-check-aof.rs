//! `basalt-check-aof`: see `basalt_tools::check_aof`.

use basalt_tools::check_aof::{run, Args};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    run(&Args::parse())
}
