//! `basalt-rdb`: see `basalt_tools::rdb`.

use clap::Parser;
use std::process::ExitCode;

// Items are decoded on one thread and freed on another: mimalloc keeps
// those cross-thread frees cheap (glibc's malloc doubled the CPU time).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    basalt_tools::rdb::run(basalt_tools::rdb::Cli::parse())
}
