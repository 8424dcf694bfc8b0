//! `basalt-tools`: Basalt's command-line tools. Each binary in `src/bin/`
//! is a thin `main` over a module here, so the logic is testable.
//!
//! - [`check_aof`]: `basalt-check-aof`, check and repair an append-only log.
//! - [`rdb`]: `basalt-rdb`, inspect, report on, check, convert, import and
//!   export RDB dumps.

pub mod check_aof;
pub mod rdb;
