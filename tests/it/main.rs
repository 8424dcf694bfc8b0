//! Integration tests: the real `basalt-server` binary over TCP.

mod support;

mod blocking;
mod differential;
mod hash_ttl;
mod migration;
mod persistence;
mod protocol;
mod snapshot;
mod streams;
mod strings;
mod tools;
mod txn;
mod types;
mod types_diff;
