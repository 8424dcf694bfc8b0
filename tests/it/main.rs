//! Integration tests: the real `basalt-server` binary over TCP.

mod support;

mod acl;
mod blocking;
mod differential;
mod evict;
mod geo;
mod hash_ttl;
mod limits;
mod memory;
mod migrate;
mod migration;
mod notify_diff;
mod persistence;
mod protocol;
mod replication;
mod snapshot;
mod streams;
mod strings;
mod tls;
mod tools;
mod txn;
mod types;
mod types_diff;
