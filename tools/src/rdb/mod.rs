//! `basalt-rdb`: inspect, report on, check, convert, import and export
//! Redis / Valkey RDB dumps, offline and in constant memory.
//!
//! The binary (`src/bin/basalt-rdb.rs`) only parses arguments and calls
//! [`run`]. Each subcommand is a module here:
//! - [`info`]: header, aux fields, per-db counts, type/encoding histogram, checksum;
//! - [`keys`]: one key per line;
//! - [`dump`]: the keys as JSON (corpus schema), JSON lines or RESP commands;
//! - [`memory`]: per-key memory estimates, top-N, totals by type and prefix,
//!   TTL histogram; table, CSV, JSON and an HTML report;
//! - [`check`]: structure and checksum, first bad offset, exit 0/1;
//! - [`convert`]: rewrite for another RDB version;
//! - [`import`] / [`export`]: to and from a live server over RESP.
//!
//! [`filter`] holds the key filters every subcommand shares, [`json`] the
//! corpus-schema JSON writer, [`resp`] command generation and a small RESP
//! client.

pub mod aof;
pub mod check;
pub mod convert;
pub mod dump;
pub mod export;
pub mod filter;
pub mod import;
pub mod info;
pub mod json;
pub mod keys;
pub mod memory;
pub mod outwriter;
pub mod resp;

use basalt_rdb::{Checksum, DecodeOptions, Format, Item};
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Errors at the tool's edge: a message for the user.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Inspect, check, convert, import and export Redis / Valkey RDB dumps.
///
/// Reads every RDB version (1-12, Valkey 80/81) and encoding, streaming in
/// constant memory. Examples:
///
///   basalt-rdb info dump.rdb
///   basalt-rdb keys dump.rdb --match 'user:*' --type hash
///   basalt-rdb dump dump.rdb --format jsonl > keys.jsonl
///   basalt-rdb memory dump.rdb --top 20 --html report.html
///   basalt-rdb check dump.rdb
///   basalt-rdb convert dump.rdb -o dump-v10.rdb --rdb-version 10
///   basalt-rdb import dump.rdb --to 127.0.0.1:6379 --replace
///   basalt-rdb export --from 127.0.0.1:6379 -o dump.rdb
#[derive(Debug, Parser)]
#[command(name = "basalt-rdb", version, verbatim_doc_comment)]
pub struct Cli {
    /// No progress bar (it is only shown when stderr is a terminal anyway).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Decode on a second thread, overlapping decoding with formatting:
    /// faster on an idle multi-core machine, ~20% more CPU in total.
    #[arg(long, global = true)]
    pub decode_thread: bool,
    /// What to do.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// The subcommands (each documented on its `Args`).
#[derive(Debug, Subcommand)]
pub enum Cmd {
    Info(info::Args),
    Keys(keys::Args),
    Dump(dump::Args),
    Memory(memory::Args),
    Check(check::Args),
    Convert(convert::Args),
    Import(import::Args),
    Export(export::Args),
}

/// Runs a parsed command line; errors are printed here.
pub fn run(cli: Cli) -> ExitCode {
    let quiet = cli.quiet;
    DECODE_THREAD.store(cli.decode_thread, std::sync::atomic::Ordering::Relaxed);
    let r = match cli.cmd {
        Cmd::Info(a) => info::run(&a, quiet),
        Cmd::Keys(a) => keys::run(&a, quiet),
        Cmd::Dump(a) => dump::run(&a, quiet),
        Cmd::Memory(a) => memory::run(&a, quiet),
        Cmd::Check(a) => check::run(&a, quiet),
        Cmd::Convert(a) => convert::run(&a, quiet),
        Cmd::Import(a) => import::run(&a, quiet),
        Cmd::Export(a) => export::run(&a, quiet),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            eprintln!("basalt-rdb: {e}");
            ExitCode::from(1)
        }
    }
}

/// A progress bar on stderr, only when stderr is a terminal.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// A byte-counting bar over `total` bytes (hidden when quiet or not a terminal).
    pub fn new(total: u64, quiet: bool) -> Progress {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style);
        }
        Progress { bar: Some(bar) }
    }

    /// Moves the bar.
    pub fn set(&self, pos: u64) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// What a full pass over a dump found besides the items.
pub struct ScanEnd {
    /// Magic and version.
    pub format: Format,
    /// The trailing checksum.
    pub checksum: Option<Checksum>,
    /// Things the reader skipped.
    pub warnings: Vec<String>,
    /// File size.
    pub size: u64,
}

/// Decoding options for the tools: empty keys are yielded (the tools report
/// what is in the file), module data is reported.
pub fn decode_options() -> DecodeOptions {
    DecodeOptions {
        skip_empty_keys: false,
        ..DecodeOptions::default()
    }
}

/// `--decode-thread`: decode on a thread of its own.
static DECODE_THREAD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Items per batch handed from the decoding thread to the caller's.
const BATCH_ITEMS: usize = 512;
/// Batches in flight: bounds the memory between the two threads.
const BATCHES_IN_FLIGHT: usize = 8;

/// Reads a whole dump, calling `on` for every item, with a progress bar.
/// The format is passed before the first item.
///
/// The file is read through a buffer, not a memory map, so the resident
/// set stays small however big the dump ([`scan_borrowed`] maps it and
/// releases the pages it has decoded). With `--decode-thread`, decoding
/// runs on its own thread and batches of items go to the calling thread
/// through a bounded channel: formatting and decoding overlap on two cores
/// and memory stays bounded by a few batches.
pub fn scan(
    path: &Path,
    opts: DecodeOptions,
    quiet: bool,
    mut on_format: impl FnMut(Format),
    mut on: impl FnMut(Item) -> Result<()>,
) -> Result<ScanEnd> {
    if aof::is_aof(path) {
        let loaded = aof::load(path)?;
        on_format(loaded.format);
        for item in loaded.items {
            on(item)?;
        }
        return Ok(ScanEnd {
            format: loaded.format,
            checksum: None,
            warnings: Vec::new(),
            size: loaded.size,
        });
    }
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let progress = Progress::new(size, quiet);
    let mut reader = basalt_rdb::Reader::from_read(file, opts)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    on_format(reader.format());
    if !DECODE_THREAD.load(std::sync::atomic::Ordering::Relaxed) {
        let mut n = 0u32;
        loop {
            let item = match reader.next_item() {
                Ok(Some(i)) => i,
                Ok(None) => break,
                Err(e) => {
                    progress.finish();
                    return Err(format!("{}: {e}", path.display()).into());
                }
            };
            on(item)?;
            n = n.wrapping_add(1);
            if n.is_multiple_of(4096) {
                progress.set(reader.offset());
            }
        }
        progress.finish();
        return Ok(ScanEnd {
            format: reader.format(),
            checksum: reader.checksum(),
            warnings: reader.warnings().to_vec(),
            size,
        });
    }
    type Msg = std::result::Result<(Vec<Item>, u64), basalt_rdb::Error>;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(BATCHES_IN_FLIGHT);
    let decoded = std::thread::scope(|s| -> Result<_> {
        let decoder = s.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH_ITEMS);
            loop {
                match reader.next_item() {
                    Ok(Some(i)) => {
                        batch.push(i);
                        if batch.len() == BATCH_ITEMS {
                            let full =
                                std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ITEMS));
                            if tx.send(Ok((full, reader.offset()))).is_err() {
                                return reader; // the consumer stopped
                            }
                        }
                    }
                    Ok(None) => {
                        let _ = tx.send(Ok((batch, reader.offset())));
                        return reader;
                    }
                    Err(e) => {
                        let _ = tx.send(Ok((batch, reader.offset())));
                        let _ = tx.send(Err(e));
                        return reader;
                    }
                }
            }
        });
        let mut failure: Option<Error> = None;
        for msg in rx.iter() {
            match msg {
                Ok((items, offset)) => {
                    for item in items {
                        if let Err(e) = on(item) {
                            failure = Some(e);
                            break;
                        }
                    }
                    if failure.is_some() {
                        break;
                    }
                    progress.set(offset);
                }
                Err(e) => {
                    failure = Some(format!("{}: {e}", path.display()).into());
                    break;
                }
            }
        }
        drop(rx);
        let reader = decoder.join().map_err(|_| "the decoding thread panicked")?;
        match failure {
            Some(e) => Err(e),
            None => Ok(reader),
        }
    });
    progress.finish();
    let reader = decoded?;
    Ok(ScanEnd {
        format: reader.format(),
        checksum: reader.checksum(),
        warnings: reader.warnings().to_vec(),
        size,
    })
}

/// [`scan`] for callers that only look at each item: items go back to the
/// reader once `on` returns, so the next keys are decoded into their
/// buffers (no allocation per key and element).
pub fn scan_borrowed(
    path: &Path,
    opts: DecodeOptions,
    quiet: bool,
    on_format: impl FnMut(Format),
    mut on: impl FnMut(&Item) -> Result<()>,
) -> Result<ScanEnd> {
    if aof::is_aof(path) || DECODE_THREAD.load(std::sync::atomic::Ordering::Relaxed) {
        return scan(path, opts, quiet, on_format, |item| on(&item));
    }
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    // A regular file is mapped (no read() copying it into a buffer); the
    // pages already decoded are released as the reader moves on, so the
    // resident set stays bounded. Anything else (a pipe) is read.
    let mapped = std::fs::metadata(path)
        .map(|m| m.is_file())
        .unwrap_or(false)
        .then(|| basalt_rdb::MappedFile::open(path).ok())
        .flatten();
    match &mapped {
        Some(map) => {
            let reader = map
                .reader(opts)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            scan_reader(path, reader, size, quiet, on_format, on, |at| {
                map.release_before(at)
            })
        }
        None => {
            let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let reader = basalt_rdb::Reader::from_read(file, opts)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            scan_reader(path, reader, size, quiet, on_format, on, |_| {})
        }
    }
}

/// The loop of [`scan_borrowed`]; `consumed` is told every few thousand
/// items how far the reader got.
fn scan_reader<I: basalt_rdb::input::Input>(
    path: &Path,
    mut reader: basalt_rdb::Reader<I>,
    size: u64,
    quiet: bool,
    mut on_format: impl FnMut(Format),
    mut on: impl FnMut(&Item) -> Result<()>,
    mut consumed: impl FnMut(u64),
) -> Result<ScanEnd> {
    let progress = Progress::new(size, quiet);
    on_format(reader.format());
    let mut n = 0u32;
    loop {
        let item = match reader.next_item() {
            Ok(Some(i)) => i,
            Ok(None) => break,
            Err(e) => {
                progress.finish();
                return Err(format!("{}: {e}", path.display()).into());
            }
        };
        on(&item)?;
        reader.recycle(item);
        n = n.wrapping_add(1);
        if n.is_multiple_of(4096) {
            progress.set(reader.offset());
            reader.digest_consumed();
            consumed(reader.offset());
        }
    }
    progress.finish();
    Ok(ScanEnd {
        format: reader.format(),
        checksum: reader.checksum(),
        warnings: reader.warnings().to_vec(),
        size,
    })
}

/// Output: a file (`-o`) or stdout, buffered and written on a second
/// thread (see [`outwriter`]).
pub fn output(path: Option<&PathBuf>) -> Result<outwriter::ThreadedWriter> {
    Ok(match path {
        Some(p) if p.as_os_str() != "-" => outwriter::ThreadedWriter::new(
            std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?,
        ),
        _ => outwriter::ThreadedWriter::new(std::io::stdout()),
    })
}

/// The name of a value type byte in a file of format `f`: Valkey gives
/// 22 and 23 their own meanings (`HASH_2`, `PATH_HASH`).
pub fn rdb_type_name_in(f: basalt_rdb::Format, t: u8) -> &'static str {
    match (f.magic, t) {
        (basalt_rdb::Magic::Valkey, 22) => "HASH_2",
        (basalt_rdb::Magic::Valkey, 23) => "PATH_HASH",
        (basalt_rdb::Magic::Redis, 22) => "HASH_METADATA_PRE_GA",
        _ => rdb_type_name(t),
    }
}

/// Redis's name for an on-disk value type byte (`RDB_TYPE_*` without the prefix).
pub fn rdb_type_name(t: u8) -> &'static str {
    match t {
        0 => "STRING",
        1 => "LIST",
        2 => "SET",
        3 => "ZSET",
        4 => "HASH",
        5 => "ZSET_2",
        6 => "MODULE_PRE_GA",
        7 => "MODULE_2",
        9 => "HASH_ZIPMAP",
        10 => "LIST_ZIPLIST",
        11 => "SET_INTSET",
        12 => "ZSET_ZIPLIST",
        13 => "HASH_ZIPLIST",
        14 => "LIST_QUICKLIST",
        15 => "STREAM_LISTPACKS",
        16 => "HASH_LISTPACK",
        17 => "ZSET_LISTPACK",
        18 => "LIST_QUICKLIST_2",
        19 => "STREAM_LISTPACKS_2",
        20 => "SET_LISTPACK",
        21 => "STREAM_LISTPACKS_3",
        22 => "HASH_METADATA_PRE_GA/HASH_2",
        23 => "HASH_LISTPACK_EX_PRE_GA",
        24 => "HASH_METADATA",
        25 => "HASH_LISTPACK_EX",
        26 => "STREAM_LISTPACKS_4",
        27 => "STREAM_LISTPACKS_5",
        28 => "ARRAY",
        _ => "UNKNOWN",
    }
}

/// A key for a terminal line: as is when printable, else quoted as
/// redis-cli does (`"a\x00b"`).
pub fn display_key(k: &[u8], out: &mut Vec<u8>) {
    let plain = !k.is_empty()
        && k.first() != Some(&b'"')
        && k.iter().all(|&c| (0x20..0x7f).contains(&c) || c >= 0x80)
        && std::str::from_utf8(k).is_ok();
    if plain {
        out.extend_from_slice(k);
        return;
    }
    out.push(b'"');
    for &c in k {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x20..=0x7e => out.push(c),
            _ => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}
