//! Integration tests of basalt-aof through its public API, in one binary.

mod support;

mod basic;
mod compaction;
mod crash;
mod damage;
mod props;
mod repair;
mod writer;
