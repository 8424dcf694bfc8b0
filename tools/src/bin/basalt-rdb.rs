//! `basalt-rdb`: see `basalt_tools::rdb`.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    basalt_tools::rdb::run(basalt_tools::rdb::Cli::parse())
}
