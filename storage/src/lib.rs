//! basalt-storage: Basalt's in-memory keyspace.
//!
//! What it is: the data structures behind the server — a sharded set of
//! hash tables ([`Keyspace`], [`Dict`]) holding [`Entry`]s with values in
//! compact encodings ([`Value`]), absolute millisecond expiry, and Redis's
//! glob matcher. Time is always passed in (`now_ms` arguments), so expiry
//! is testable without sleeping.
//!
//! What it is not: no sockets, files, RESP or command semantics. The
//! server decides what a command means, what gets logged and which
//! notifications fire; this crate only stores.
//!
//! Layout: `dict.rs` (chained table with a resize-proof SCAN cursor),
//! `keyspace.rs` (shards, locking order), `entry.rs`, `value.rs`,
//! `glob.rs`; collection types `hash.rs`, `set.rs`, `list.rs`, `zset.rs`
//! over the compact `packed.rs` encoding.

pub mod bytes;
pub mod chunked;
pub mod dict;
pub mod entry;
pub mod glob;
pub mod hash;
pub mod keyspace;
pub mod list;
pub mod packed;
pub mod set;
pub mod stream;
pub mod value;
pub mod zset;

pub use bytes::CompactBytes;
pub use dict::{hash_key, Capture, Dict};
pub use entry::Entry;
pub use glob::glob_match;
pub use hash::Hash;
pub use keyspace::{Keyspace, Shard, ShardGuard};
pub use list::List;
pub use set::Set;
pub use stream::{Stream, StreamId};
pub use value::{Limits, Value};
pub use zset::ZSet;
