//! Basalt: a durable, Redis-compatible key-value server.
//!
//! Layout: `resp/` (I/O-free RESP codec), `connection.rs` (the only code
//! that touches client sockets), `commands/` (one module per command
//! family, each with its command table; pure handlers), `db.rs` (key
//! access: locking, lazy expiry, propagation), `shared.rs` (state shared
//! by all connections), `config/` (redis.conf syntax), `server.rs`
//! (listeners, background cycles, shutdown). The keyspace itself lives in
//! the `basalt-storage` crate.

pub mod acl;
pub mod alloc;
pub mod blocking;
pub mod client;
pub mod clock;
pub mod commands;
pub mod config;
pub mod connection;
pub mod convert;
pub mod counter;
pub mod db;
pub mod evict;
pub mod geohash;
pub mod histogram;
pub mod notify;
pub mod num;
pub mod observe;
pub mod offline;
pub mod persistence;
pub mod powerloss;
pub mod pubsub;
pub mod replication;
pub mod resp;
pub mod server;
pub mod shared;
pub mod snapshot;
pub mod tls;
pub mod tracking;
pub mod watch;

/// The Redis version Basalt reports (HELLO, INFO): the command semantics
/// it implements, so client libraries enable the matching features.
pub const REDIS_VERSION: &str = "7.2.0";
