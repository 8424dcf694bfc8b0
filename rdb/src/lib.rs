//! # basalt-rdb: the Redis / Valkey RDB format
//!
//! **What it is.** A self-contained codec for RDB dumps and DUMP/RESTORE
//! payloads:
//! - a streaming [`Reader`] over a byte slice (memory-mapped files, see
//!   [`MappedFile`]) or any [`std::io::Read`], for every `REDIS` version 1-14
//!   (KEY_META is skipped) and `VALKEY` 80/81,
//!   every value encoding (raw/int/LZF strings, linked lists, ziplists,
//!   quicklists 1 and 2, intsets, listpacks, zipmaps, ASCII and binary zset
//!   scores, hash field TTLs in Redis 7.4 and Valkey 9 forms, streams 1-5
//!   with consumer groups, IDMP producers and NACKs, Redis 8.8 sparse
//!   arrays, Valkey 9.2 path hashes), functions, slot info, Valkey slot
//!   imports, AUX and module data (reported opaque,
//!   with the module's name);
//! - a [`Writer`] producing RDB 10 by default, or 9, 11, 12 or Valkey 80
//!   (none of which holds an array or a path hash: [`Value::Array`] and
//!   [`Value::PathHash`] are refused with [`Error::Unrepresentable`]);
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
//! **Entry points.**
//!
//! Reading a file (memory-mapped, constant memory apart from the current key):
//! ```no_run
//! use basalt_rdb::{DecodeOptions, Item, MappedFile};
//! # fn main() -> basalt_rdb::Result<()> {
//! let file = MappedFile::open("dump.rdb")?;
//! for item in file.reader(DecodeOptions::default())? {
//!     if let Item::Entry(e) = item? {
//!         println!("db {} key {:?}: {}", e.db, e.key, e.value.type_name());
//!     }
//! }
//! # Ok(()) }
//! ```
//! From a socket or pipe: `Reader::from_read(stream, opts)`.
//!
//! Writing a dump Redis 7.0+ loads, and reading it back:
//! ```
//! use basalt_rdb::{DecodeOptions, EncodeOptions, Entry, Item, Reader, Value, Writer};
//! # fn main() -> basalt_rdb::Result<()> {
//! let mut w = Writer::new(Vec::new(), EncodeOptions::default())?; // RDB 10
//! w.aux(b"redis-ver", b"7.0.15")?;
//! w.entry(&Entry::new("greeting", Value::String(b"hello".to_vec())))?;
//! let bytes = w.finish()?;
//! let keys: Vec<Item> = Reader::from_slice(&bytes, DecodeOptions::default())?
//!     .collect::<basalt_rdb::Result<_>>()?;
//! assert!(keys.iter().any(|i| matches!(i, Item::Entry(e) if e.key == b"greeting")));
//! # Ok(()) }
//! ```
//!
//! DUMP/RESTORE payloads:
//! ```
//! use basalt_rdb::{decode_dump, encode_dump, DecodeOptions, EncodeOptions, Value};
//! # fn main() -> basalt_rdb::Result<()> {
//! let v = Value::List(vec![b"a".to_vec(), b"42".to_vec()]);
//! let payload = encode_dump(&v, &EncodeOptions::default())?;
//! // Refuse payloads newer than what a Redis 7.0-compatible server accepts:
//! let (back, version) = decode_dump(&payload, &DecodeOptions::default(), Some(10))?;
//! assert_eq!((back, version), (v, 10));
//! # Ok(()) }
//! ```
//!
//! **Layout.**
//! - [`format`](mod@format): magic/version, type and opcode tables chosen by (magic, version)
//! - [`input`]: byte sources (slice, `Read`) with offsets and CRC
//! - `decode`: lengths, strings, every value encoding
//! - `reader`: the item iterator over a whole file
//! - [`encode`] (value encoding per target, public for callers that frame
//!   values themselves), `writer`: the file writer
//! - `dump`: DUMP/RESTORE payloads
//! - [`listpack`], [`ziplist`], [`intset`] (with zipmap), `stream`: container formats
//! - [`value`]: the neutral value model; [`error`]: the error type
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::indexing_slicing))]
#![warn(missing_docs)]

pub mod crc64;
mod decode;
mod dump;
pub mod encode;
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
pub use reader::{slot_import_warning, Checksum, Item, MappedFile, Reader};
pub use value::{
    format_array_double, Array, ArrayElem, Consumer, ConsumerGroup, Entry, Function, HashField,
    IdmpProducer, ModuleValue, PathFields, PathHash, PendingEntry, Stream, StreamEntry, StreamId,
    StreamIdmp, StreamNode, Value,
};
pub use writer::Writer;
