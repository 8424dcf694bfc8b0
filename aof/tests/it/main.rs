//! Integration tests of basalt-aof through its public API, in one binary.

mod support;

mod basic;
mod damage;
mod writer;
mod compaction;
mod repair;
mod props;
mod crash;
