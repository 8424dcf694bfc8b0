//! The streaming file reader: yields one [`Item`] at a time, in file order.

use crate::decode::{
    read_length, read_module_body, read_string, read_string_in, read_value_in, skip_key_meta,
    DecodeOptions, ModuleMode, Spare,
};
use crate::error::{Error, Result};
use crate::format::{module_op, Format, Opcode};
use crate::input::{Input, ReadInput, SliceInput};
use crate::value::{Entry, Function, ModuleValue};
use std::io::Read;
use std::path::Path;

/// One thing found in a dump.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Item {
    /// An AUX field (`redis-ver`, `ctime`, ...).
    Aux {
        /// Field name.
        key: Vec<u8>,
        /// Field value (integer-encoded values as decimal text).
        value: Vec<u8>,
    },
    /// SELECTDB: following keys belong to this database.
    SelectDb(u64),
    /// RESIZEDB hint for the current database.
    ResizeDb {
        /// Number of keys.
        db_size: u64,
        /// Number of keys with an expiry.
        expires_size: u64,
    },
    /// A key.
    Entry(Entry),
    /// A function library.
    Function(Function),
    /// SLOT_INFO (Redis 7.4+ cluster mode).
    SlotInfo {
        /// Slot number.
        slot: u64,
        /// Keys in the slot.
        size: u64,
        /// Keys with an expiry in the slot.
        expires_size: u64,
    },
    /// SLOT_IMPORT (Valkey 9.0+ cluster mode): a slot import job (atomic
    /// slot migration) that had not finished when the dump was taken.
    SlotImport {
        /// The job's name (40 bytes, as a cluster node name).
        name: Vec<u8>,
        /// Slot ranges being imported, (first, last) inclusive.
        ranges: Vec<(u64, u64)>,
    },
    /// MODULE_AUX data, reported opaque.
    ModuleAux {
        /// When the module saved it (before or after the keyspace).
        when: u64,
        /// The module's data.
        module: ModuleValue,
    },
}

/// What the trailing checksum said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// Files before version 5 have none.
    NotPresent,
    /// All-zero trailer: written with `rdbchecksum no`.
    Disabled,
    /// Stored value matched the data.
    Verified(u64),
    /// Not verified because the options said so.
    Unchecked(u64),
}

/// Streaming reader over any [`Input`].
pub struct Reader<I> {
    inp: I,
    format: Format,
    opts: DecodeOptions,
    db: u64,
    expire: Option<i64>,
    idle: Option<u64>,
    freq: Option<u8>,
    done: bool,
    checksum: Option<Checksum>,
    warnings: Vec<String>,
    /// Allocations given back by [`Reader::recycle`].
    spare: Spare,
}

impl<'a> Reader<SliceInput<'a>> {
    /// Read a dump held in memory (or memory-mapped).
    pub fn from_slice(data: &'a [u8], opts: DecodeOptions) -> Result<Self> {
        Reader::new(SliceInput::new(data), opts)
    }
}

impl<R: Read> Reader<ReadInput<R>> {
    /// Read a dump from a stream (socket, pipe, file).
    pub fn from_read(r: R, opts: DecodeOptions) -> Result<Self> {
        Reader::new(ReadInput::new(r), opts)
    }
}

/// A memory-mapped dump file.
pub struct MappedFile {
    map: memmap2::Mmap,
    /// Bytes before this were released ([`MappedFile::release_before`]).
    released: std::cell::Cell<usize>,
}

impl MappedFile {
    /// Map a file read-only.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let file = std::fs::File::open(path)?;
        // SAFETY: the mapping is read-only and every byte is treated as
        // untrusted input; if another process truncates the file while it is
        // mapped, reads may fault (SIGBUS), as with any mmap-based reader.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        // The reader goes front to back: read ahead aggressively.
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(MappedFile {
            map,
            released: std::cell::Cell::new(0),
        })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Drops the mapped pages wholly before `offset` from this process's
    /// resident set (they stay in the page cache and would be read again
    /// from the file if touched). A sequential reader calls this as it goes
    /// so that reading a 30 GB dump does not make a 30 GB resident set.
    /// Does nothing if the bytes were already released or the advice fails.
    pub fn release_before(&self, offset: u64) {
        const PAGE: usize = 4096;
        let end = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.map.len())
            / PAGE
            * PAGE;
        let start = self.released.get();
        // In steps of at least 32 MiB: one system call per step.
        if end < start + (32 << 20) {
            return;
        }
        // SAFETY: MADV_DONTNEED on a read-only, shared file mapping only
        // unmaps the pages: they are not modified (so nothing is lost) and
        // a later access faults them in again from the same file, so every
        // slice borrowed from the map still reads the same bytes. (It is
        // unsafe in general because on private or anonymous mappings it
        // discards data.) `start..end` lies within the map, page-aligned.
        let r = unsafe {
            self.map
                .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
        };
        if r.is_ok() {
            self.released.set(end);
        }
    }

    /// A reader over the mapped bytes.
    pub fn reader(&self, opts: DecodeOptions) -> Result<Reader<SliceInput<'_>>> {
        Reader::from_slice(&self.map, opts)
    }
}

impl<I: Input> Reader<I> {
    /// Read the header and prepare to iterate.
    pub fn new(mut inp: I, opts: DecodeOptions) -> Result<Self> {
        let mut head = Vec::with_capacity(9);
        for _ in 0..9 {
            match inp.read_u8("9-byte header") {
                Ok(b) => head.push(b),
                Err(_) => return Err(Error::BadMagic { found: head }),
            }
        }
        let format = Format::parse_header(&head)?;
        Ok(Reader {
            inp,
            format,
            opts,
            db: 0,
            expire: None,
            idle: None,
            freq: None,
            done: false,
            checksum: None,
            warnings: Vec::new(),
            spare: Spare::default(),
        })
    }

    /// The input, positioned after the last item read (after the checksum
    /// once iteration has ended).
    pub fn into_input(self) -> I {
        self.inp
    }

    /// Magic and version of the file.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Offset of the next byte to read.
    pub fn offset(&self) -> u64 {
        self.inp.offset()
    }

    /// The checksum outcome, once the end of the file was reached.
    pub fn checksum(&self) -> Option<Checksum> {
        self.checksum
    }

    /// Only the keys (AUX, functions and other items are dropped); errors
    /// are passed through and end the iteration.
    pub fn entries(self) -> impl Iterator<Item = Result<Entry>> {
        self.filter_map(|i| match i {
            Ok(Item::Entry(e)) => Some(Ok(e)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
    }

    /// Things skipped so far, in the words Redis would log them (empty keys
    /// when `skip_empty_keys` is set, module data with [`ModuleMode::Skip`]).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Folds the bytes read so far into the running checksum. The result
    /// is the same without it; a caller that releases a mapped file's pages
    /// as it goes ([`MappedFile::release_before`]) calls this first, so the
    /// checksum at the end does not read them all again.
    pub fn digest_consumed(&mut self) {
        self.inp.crc_so_far();
    }

    /// Gives an item back once the caller is done with it: the next keys
    /// are decoded into its buffers instead of fresh allocations (a bounded
    /// number is kept). Optional; dropping items is fine too.
    pub fn recycle(&mut self, item: Item) {
        if let Item::Entry(e) = item {
            self.spare.put(e.key, e.value);
        }
    }

    /// The next item, or `None` after the EOF opcode (and checksum).
    pub fn next_item(&mut self) -> Result<Option<Item>> {
        while !self.done {
            let at = self.inp.offset();
            let b = self.inp.read_u8("a value type or opcode")?;
            if let Some(kind) = self.format.kind(b) {
                let key = read_string_in(&mut self.inp, "key", &mut self.spare)?;
                let value = read_value_in(&mut self.inp, kind, &self.opts, &mut self.spare)?;
                let expire_ms = self.expire.take();
                let lru_idle = self.idle.take();
                let lfu_freq = self.freq.take();
                if self.opts.skip_empty_keys && value.is_empty_collection() {
                    self.warnings.push(format!(
                        "offset {at}: skipping empty key '{}' (type {b})",
                        String::from_utf8_lossy(&key)
                    ));
                    continue;
                }
                if let (ModuleMode::Skip, crate::value::Value::Module(m)) =
                    (self.opts.modules, &value)
                {
                    self.warnings.push(format!(
                        "offset {at}: skipping key '{}' holding module data of type '{}'",
                        String::from_utf8_lossy(&key),
                        m.name
                    ));
                    continue;
                }
                return Ok(Some(Item::Entry(Entry {
                    db: self.db,
                    key,
                    value,
                    expire_ms,
                    lru_idle,
                    lfu_freq,
                    rdb_type: b,
                })));
            }
            let op = self.format.opcode(b).ok_or_else(|| Error::UnknownType {
                offset: at,
                byte: b,
                format: self.format.to_string(),
            })?;
            let inp = &mut self.inp;
            match op {
                Opcode::Eof => {
                    self.finish()?;
                    return Ok(None);
                }
                Opcode::SelectDb => {
                    self.db = read_length(inp, "database number")?;
                    return Ok(Some(Item::SelectDb(self.db)));
                }
                Opcode::ExpireTime => {
                    let s = i32::from_le_bytes(inp.array("expire time (seconds)")?);
                    self.expire = Some(i64::from(s) * 1000);
                }
                Opcode::ExpireTimeMs => {
                    self.expire = Some(i64::from_le_bytes(inp.array("expire time (ms)")?));
                }
                Opcode::ResizeDb => {
                    let db_size = read_length(inp, "resizedb size")?;
                    let expires_size = read_length(inp, "resizedb expires size")?;
                    return Ok(Some(Item::ResizeDb {
                        db_size,
                        expires_size,
                    }));
                }
                Opcode::Aux => {
                    let key = read_string(inp, "aux key")?;
                    let value = read_string(inp, "aux value")?;
                    return Ok(Some(Item::Aux { key, value }));
                }
                Opcode::Freq => self.freq = Some(inp.read_u8("LFU frequency")?),
                Opcode::Idle => self.idle = Some(read_length(inp, "LRU idle time")?),
                Opcode::ModuleAux => {
                    let id = read_length(inp, "module id")?;
                    let w_at = inp.offset();
                    if read_length(inp, "module aux when-opcode")? != module_op::UINT {
                        return Err(Error::corrupt(
                            w_at,
                            "expected module aux when-opcode 2 (UINT)",
                        ));
                    }
                    let when = read_length(inp, "module aux when")?;
                    let module = read_module_body(inp, id)?;
                    match self.opts.modules {
                        ModuleMode::Error => {
                            return Err(Error::Unsupported {
                                offset: at,
                                what: format!("module aux data of type '{}'", module.name),
                            })
                        }
                        ModuleMode::Skip => self.warnings.push(format!(
                            "offset {at}: skipping module aux data of type '{}'",
                            module.name
                        )),
                        ModuleMode::Report => return Ok(Some(Item::ModuleAux { when, module })),
                    }
                }
                Opcode::FunctionPreGa => {
                    let name = read_string(inp, "function library name")?;
                    let engine = read_string(inp, "function engine")?;
                    let description = if read_length(inp, "function description flag")? != 0 {
                        Some(read_string(inp, "function description")?)
                    } else {
                        None
                    };
                    let body = read_string(inp, "function code")?;
                    let mut code = Vec::with_capacity(body.len() + name.len() + engine.len() + 10);
                    code.extend_from_slice(b"#!");
                    code.extend_from_slice(&engine);
                    code.extend_from_slice(b" name=");
                    code.extend_from_slice(&name);
                    code.push(b'\n');
                    code.extend_from_slice(&body);
                    return Ok(Some(Item::Function(Function {
                        library: name,
                        engine,
                        code,
                        description,
                        pre_ga: true,
                    })));
                }
                Opcode::Function2 => {
                    let code = read_string(inp, "function library code")?;
                    let f = Function::from_code(code).ok_or_else(|| {
                        Error::corrupt(
                            at,
                            "function library code does not start with '#!<engine> name=<library>'",
                        )
                    })?;
                    return Ok(Some(Item::Function(f)));
                }
                Opcode::SlotInfo => {
                    let slot = read_length(inp, "slot id")?;
                    let size = read_length(inp, "slot size")?;
                    let expires_size = read_length(inp, "slot expires size")?;
                    return Ok(Some(Item::SlotInfo {
                        slot,
                        size,
                        expires_size,
                    }));
                }
                Opcode::KeyMeta => {
                    let specs = skip_key_meta(inp)?;
                    self.warnings.push(format!(
                        "offset {at}: skipping key metadata (class specs {specs:08x?}) of the next key"
                    ));
                }
                Opcode::SlotImport => {
                    let (name, ranges) = read_slot_import(inp)?;
                    self.warnings.push(format!(
                        "offset {at}: {}",
                        slot_import_warning(&name, &ranges)
                    ));
                    return Ok(Some(Item::SlotImport { name, ranges }));
                }
                Opcode::Update => {
                    // Written only into forkless full-sync streams by
                    // unmerged Valkey work (a RESP command after the
                    // opcode); no released Valkey writes it to a file.
                    return Err(Error::Unsupported {
                        offset: at,
                        what: format!("opcode {b} ({op:?}) in {}", self.format),
                    });
                }
            }
        }
        Ok(None)
    }

    fn finish(&mut self) -> Result<()> {
        self.done = true;
        if !self.format.has_checksum() {
            self.checksum = Some(Checksum::NotPresent);
            return Ok(());
        }
        let computed = self.inp.crc_so_far();
        let at = self.inp.offset();
        let stored = u64::from_le_bytes(self.inp.array("8-byte CRC64 trailer")?);
        self.checksum = Some(if stored == 0 {
            Checksum::Disabled
        } else if !self.opts.verify_checksum {
            Checksum::Unchecked(stored)
        } else if stored == computed {
            Checksum::Verified(stored)
        } else {
            return Err(Error::Checksum {
                offset: at,
                stored,
                computed,
            });
        });
        Ok(())
    }
}

impl<I: Input> Iterator for Reader<I> {
    type Item = Result<Item>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_item() {
            Ok(Some(i)) => Some(Ok(i)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// A slot import job's (first, last) slot ranges.
type SlotRanges = Vec<(u64, u64)>;

/// The length of a slot import job's name (`CLUSTER_NAMELEN`).
const SLOT_IMPORT_NAME_LEN: usize = 40;
/// Slots in a cluster.
const CLUSTER_SLOTS: u64 = 16384;

/// Valkey's SLOT_IMPORT record (opcode 243, `VALKEY` 80+), as
/// `clusterRDBSaveSlotImports` writes it: the job name (an RDB string of
/// 40 bytes), the range count, then each range's first and last slot (RDB
/// lengths). A name of another length is refused as valkey-check-rdb
/// refuses it, and so is a range outside 0-16383 or reversed.
fn read_slot_import<I: Input>(inp: &mut I) -> Result<(Vec<u8>, SlotRanges)> {
    let name_at = inp.offset();
    let name = read_string(inp, "slot import job name")?;
    if name.len() != SLOT_IMPORT_NAME_LEN {
        return Err(Error::corrupt(
            name_at,
            format!(
                "expected a {SLOT_IMPORT_NAME_LEN}-byte slot import job name, found {} bytes",
                name.len()
            ),
        ));
    }
    let count_at = inp.offset();
    let count = read_length(inp, "slot import range count")?;
    if count > CLUSTER_SLOTS {
        return Err(Error::corrupt(
            count_at,
            format!("expected at most {CLUSTER_SLOTS} slot import ranges, found {count}"),
        ));
    }
    let mut ranges = Vec::with_capacity(inp.capacity_for(count));
    for _ in 0..count {
        let at = inp.offset();
        let first = read_length(inp, "slot import range start")?;
        let last = read_length(inp, "slot import range end")?;
        if first > last || last >= CLUSTER_SLOTS {
            return Err(Error::corrupt(
                at,
                format!("expected a slot range within 0-16383, found {first}-{last}"),
            ));
        }
        ranges.push((first, last));
    }
    Ok((name, ranges))
}

/// What an unfinished slot import means for whoever loads the dump: the
/// keys of those slots may be a partial copy. Valkey fails such a job at
/// load and, on a primary, drops the keys of slots it does not own.
pub fn slot_import_warning(name: &[u8], ranges: &[(u64, u64)]) -> String {
    let slots: Vec<String> = ranges
        .iter()
        .map(|(a, z)| {
            if a == z {
                a.to_string()
            } else {
                format!("{a}-{z}")
            }
        })
        .collect();
    format!(
        "unfinished slot import '{}' (slots {}): the keys of those slots may be incomplete \
         (Valkey fails the job when loading and drops keys of slots it does not own)",
        String::from_utf8_lossy(name),
        if slots.is_empty() {
            "none".to_string()
        } else {
            slots.join(", ")
        }
    )
}
