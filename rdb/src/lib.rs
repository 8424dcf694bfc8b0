//! # basalt-rdb: the Redis / Valkey RDB format
//!
//! **What it is.** A self-contained codec for RDB dumps and DUMP/RESTORE
//! payloads:
//! - a streaming [`Reader`] over a byte slice (memory-mapped files, see
//!   [`MappedFile`]) or any [`std::io::Read`], for every `REDIS` version 1-12
//!   and `VALKEY` 80/81, every value encoding (raw/int/LZF strings, linked
//!   lists, ziplists, quicklists 1 and 2, intsets, listpacks, zipmaps, ASCII
//!   and binary zset scores, hash field TTLs in Redis 7.4 and Valkey 9
//!   forms, streams 1-3 with consumer groups), functions, slot info, AUX and
//!   module data (reported opaque, with the module's name);
//! - a [`Writer`] producing RDB 10 by default, or 9, 11, 12 or Valkey 80;
//! - [`encode_dump`] / [`decode_dump`] for DUMP/RESTORE payloads, with the
//!   same value codec;
//! - its own LZF ([`lzf`]) and CRC64 Jones ([`crc64`]).
//!
//! **What it is not.** It knows nothing of Basalt's keyspace: values come out
//! as the neutral [`Value`] model and conversion lives in the server and
//! tools. It does not execute function code or interpret module data.
//!
//! **Safety on bad input.** Decoding never panics, every claimed length is
//! checked against the bytes available before anything is allocated for it,
//! and ziplists, listpacks, intsets and zipmaps are validated entry by entry
//! (as Redis's `sanitize-dump-payload yes`). Errors name the byte offset and
//! what was expected ([`Error`]).
//!
//! **Layout.**
//! - [`format`]: magic/version, type and opcode tables chosen by (magic, version)
//! - [`input`]: byte sources (slice, `Read`) with offsets and CRC
//! - `decode`: lengths, strings, every value encoding
//! - `reader`: the item iterator over a whole file
//! - `encode`, `writer`: value encoding per target, the file writer
//! - `dump`: DUMP/RESTORE payloads
//! - [`listpack`], [`ziplist`], [`intset`] (with zipmap), `stream`: container formats
//! - [`value`]: the neutral value model; [`error`]: the error type
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::indexing_slicing))]
#![warn(missing_docs)]

pub mod crc64;
mod decode;
mod dump;
mod encode;
pub mod error;
pub mod format;
pub mod input;
pub mod intset;
pub mod listpack;
pub mod lzf;
mod reader;
mod stream;
pub mod value;
mod writer;
pub mod ziplist;

pub use decode::{DecodeOptions, ModuleMode};
pub use dump::{decode_dump, dump_version, encode_dump};
pub use encode::{EncodeOptions, Target};
pub use error::{Error, Result};
pub use format::{Format, Magic};
pub use reader::{Checksum, Item, MappedFile, Reader};
pub use value::{
    Consumer, ConsumerGroup, Entry, Function, HashField, ModuleValue, PendingEntry, Stream, StreamEntry,
    StreamId, Value,
};
pub use writer::Writer;
