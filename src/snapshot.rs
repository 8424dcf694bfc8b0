//! Forkless point-in-time snapshots and log compaction.
//!
//! A snapshot is the keyspace exactly as of log position S, taken without
//! fork and without stopping writers:
//!
//! ```text
//!   cut ─ lock every shard (microseconds) ─────────────────────────────┐
//!   │  epoch E = next; every table: begin_snapshot(E)                  │
//!   │  S = log.begin_rotate()  (records <= S are applied, > S are not) │
//!   └─ unlock ──────────────────────────────────────────────────────────┘
//!   walk ─ per table, small slices under the shard lock:
//!          capture entries with epoch < E, stamp them E
//!   writers ─ before changing an entry with epoch < E, the table captures
//!          its old image (storage/src/dict.rs, SnapHook)
//!   sink ─ captured entries are encoded into chunks, zstd-compressed,
//!          crc32'd and written by the snapshot thread, outside any lock
//!   finish ─ fsync, rename into place, fsync dir, then the log manifest
//!          switches to "snapshot S + segments after S"; old segments go
//! ```
//!
//! Extra memory is the capture buffer (drained continuously), not a copy
//! of the dataset. File format (all integers little-endian):
//!
//! ```text
//! header  "BASALTSN" | version u32 | reserved u32 | covered LSN u64 | epoch u64   (32 bytes)
//! chunk   comp_len u32 | raw_len u32 | entries u32 | crc32(comp) u32 | zstd(comp_len bytes)
//!         entries = entries starting in the chunk; bit 31 (version 2) set:
//!         the chunk's raw bytes continue in the next chunk. A run of such
//!         chunks plus the one that ends it is a unit, decoded as the
//!         concatenation of its raw bytes: a big value (a long list, a large
//!         string) is written in pieces across several chunks
//! ...
//! trailer 0 u32 | 0 u32 | ndbs u32 | crc32(totals) u32 | keys u64 | chunks u64   (32 bytes)
//!         then ndbs x (db u32 | keys u64): keys per database, so the loader
//!         sizes every table once instead of rehashing it while it fills
//!         (version 1 files have ndbs = 0 and no such records)
//!         crc32(totals) covers every chunk header, keys, chunks and the records
//! entry   db varint | key_len varint | key | expire_ms varint (0 = none) | type u8 | value
//!         type 0 int: zigzag varint; 1 string, 2 string grown in place: len varint | bytes
//!         3 hash: n varint | n x (field, value);  4 set: n | n x member
//!         5 list: n | n x item (head first);       6 zset: n | n x (member, score f64 LE)
//!         7 hash with field TTLs: n | n x (field, value, expire_ms varint, 0 = none)
//!         8 stream: len varint | a DUMP payload (RDB 11, STREAM_LISTPACKS_3:
//!           entries, IDs, counters, groups, PELs, consumers) with its CRC64
//!         (every string inside: len varint | bytes)
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use basalt_storage::{Capture, Entry, Keyspace, Step, Value};
use parking_lot::Mutex;

use crate::shared::{unix_ms, Shared};

const MAGIC: &[u8; 8] = b"BASALTSN";
const VERSION: u32 = 2;
/// Oldest version the loader still reads.
const MIN_VERSION: u32 = 1;
const HEADER_LEN: usize = 32;
const CHUNK_HEADER_LEN: usize = 16;
/// Raw bytes per chunk before compression.
const CHUNK_RAW: usize = 256 << 10;
/// Buckets walked per lock hold.
const WALK_SLICE: usize = 64;
/// Largest chunk a reader accepts (bounds allocation from a length field).
const MAX_CHUNK: usize = 256 << 20;
/// Chunk flag: the raw bytes continue in the next chunk.
const CONTINUES: u32 = 1 << 31;
/// Strings longer than this, and lists with more elements than
/// `PIECE_ELEMS`, are serialised in pieces of this many bytes / elements,
/// with the shard lock released between pieces.
const PIECE_BYTES: usize = 256 << 10;
const PIECE_ELEMS: usize = 4096;

/// Snapshot bookkeeping for INFO and the commands.
#[derive(Default)]
pub struct SnapState {
    pub in_progress: AtomicBool,
    pub last_ok: AtomicBool,
    pub last_save_time: AtomicU64,
    pub last_duration_ms: AtomicU64,
    pub last_extra_bytes: AtomicU64,
    pub saves: AtomicU64,
    pub last_error: Mutex<String>,
    pub epoch: AtomicU64,
    pub rewrites: AtomicU64,
    pub current_keys: AtomicU64,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos).ok_or("entry truncated")?;
        *pos += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint too long".into())
}

fn put_header(db: u32, key: &[u8], e: &Entry, out: &mut Vec<u8>) {
    put_varint(out, db as u64);
    put_varint(out, key.len() as u64);
    out.extend_from_slice(key);
    put_varint(out, e.expire_at);
}

/// True for the values serialised in pieces (see [`encode_piece`]).
pub fn is_big(e: &Entry) -> bool {
    match &e.value {
        Value::Str(b) | Value::Raw(b) => b.len() > PIECE_BYTES,
        Value::List(l) => l.len() > PIECE_ELEMS,
        Value::Hash(h) => h.len() > PIECE_ELEMS,
        Value::Set(st) => st.len() > PIECE_ELEMS,
        Value::ZSet(z) => z.len() > PIECE_ELEMS,
        _ => false,
    }
}

/// Appends part of an entry's encoding from position `from` (0 also
/// writes the header) up to one piece, or everything left with `all`.
/// Returns the next position, None when the entry is complete. The
/// pieces concatenated are exactly [`encode_entry`]'s bytes.
///
/// A position is a byte offset for strings, an element index for lists
/// and sorted sets (by rank), and a SCAN cursor for hashes and sets. The
/// value does not change between pieces (a writer first encodes the rest
/// of it, see `Dict::snapshot_step`), and the tables inside hashes and
/// sets resize only when written, so the positions stay valid. A cursor
/// that is not 0 is never returned as 0: 0 always means "start".
pub fn encode_piece(
    db: u32,
    key: &[u8],
    e: &Entry,
    from: usize,
    all: bool,
    out: &mut Vec<u8>,
) -> Option<usize> {
    let (tag, len) = match &e.value {
        Value::Str(b) => (1, b.len()),
        Value::Raw(b) => (2, b.len()),
        Value::Hash(h) if h.has_ttls() => (7, h.len()),
        Value::Hash(h) => (3, h.len()),
        Value::Set(st) => (4, st.len()),
        Value::List(l) => (5, l.len()),
        Value::ZSet(z) => (6, z.len()),
        // Never in pieces (`encode_entry` writes them itself).
        Value::Int(_) | Value::Stream(_) => {
            if from == 0 {
                encode_entry(db, key, e, out);
            }
            return None;
        }
    };
    if from == 0 {
        put_header(db, key, e, out);
        out.push(tag);
        put_varint(out, len as u64);
    }
    // Indexed values: `from..end` this time.
    let end = |step: usize| if all { len } else { len.min(from + step) };
    // Scanned values: SCAN steps from cursor `from` until a piece's worth.
    let scan = |step: &mut dyn FnMut(u64) -> (u64, usize)| {
        let (mut cursor, mut n) = (from as u64, 0);
        loop {
            let (next, got) = step(cursor);
            cursor = next;
            n += got;
            if cursor == 0 {
                return None;
            }
            if !all && n >= PIECE_ELEMS {
                return Some(cursor as usize);
            }
        }
    };
    match &e.value {
        Value::Str(b) | Value::Raw(b) => {
            let end = end(PIECE_BYTES);
            out.extend_from_slice(&b[from.min(end)..end]);
            (end < len).then_some(end)
        }
        Value::List(l) => {
            let end = end(PIECE_ELEMS);
            if end > from {
                l.range(from, end - 1, |b| put_bytes(out, b));
            }
            (end < len).then_some(end)
        }
        Value::ZSet(z) => {
            let end = end(PIECE_ELEMS);
            if end > from {
                z.visit(from, end - 1, false, |m, score| {
                    put_bytes(out, m);
                    out.extend_from_slice(&score.to_bits().to_le_bytes());
                });
            }
            (end < len).then_some(end)
        }
        Value::Hash(h) => {
            let ttl = tag == 7;
            scan(&mut |c| {
                let mut n = 0;
                let next = h.scan(c, |f, v| {
                    put_bytes(out, f);
                    put_bytes(out, v);
                    if ttl {
                        // Each field carries its absolute expiry in ms
                        // (HEXPIRE), 0 for none.
                        put_varint(out, h.field_expire(f).unwrap_or(0));
                    }
                    n += 1;
                });
                (next, n)
            })
        }
        Value::Set(st) => scan(&mut |c| {
            let mut n = 0;
            let next = st.scan(c, |m| {
                m.with(|b| put_bytes(out, b));
                n += 1;
            });
            (next, n)
        }),
        _ => None,
    }
}

/// Encodes one entry (the format above).
pub fn encode_entry(db: u32, key: &[u8], e: &Entry, out: &mut Vec<u8>) {
    match &e.value {
        Value::Int(i) => {
            put_header(db, key, e, out);
            out.push(0);
            put_varint(out, ((*i << 1) ^ (*i >> 63)) as u64);
        }
        Value::Stream(s) => {
            // A stream is stored as a DUMP payload of RDB 11 (the stream
            // encoding STREAM_LISTPACKS_3, which keeps consumer active
            // times), checked by its own CRC64 on load.
            put_header(db, key, e, out);
            out.push(8);
            let v = basalt_rdb::Value::Stream(Box::new(crate::convert::stream_to_rdb(s)));
            let opts = basalt_rdb::EncodeOptions::for_target(basalt_rdb::Target::Redis11);
            let payload = basalt_rdb::encode_dump(&v, &opts).unwrap_or_default();
            put_bytes(out, &payload);
        }
        // Strings and collections: the same bytes as their pieces, in one go.
        _ => {
            let rest = encode_piece(db, key, e, 0, true, out);
            debug_assert!(rest.is_none());
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// An element count, checked against the bytes left (each element takes
/// at least one byte), so a bad count cannot drive a huge loop.
fn get_count(b: &[u8], pos: &mut usize) -> Result<usize, String> {
    let n = get_varint(b, pos)?;
    if n > (b.len() - *pos) as u64 {
        return Err(format!("element count {n} exceeds the chunk"));
    }
    Ok(n as usize)
}

fn get_bytes<'a>(b: &'a [u8], pos: &mut usize) -> Result<&'a [u8], String> {
    let n = get_varint(b, pos)? as usize;
    let end = pos
        .checked_add(n)
        .filter(|&e| e <= b.len())
        .ok_or("length past the end of the chunk")?;
    let s = &b[*pos..end];
    *pos = end;
    Ok(s)
}

/// Decodes one entry; returns (db, key, entry). `lim` chooses the
/// encodings of collections as they are rebuilt.
pub fn decode_entry<'a>(
    b: &'a [u8],
    pos: &mut usize,
    lim: &basalt_storage::Limits,
) -> Result<(u32, &'a [u8], Entry), String> {
    let db = u32::try_from(get_varint(b, pos)?).map_err(|_| "db out of range")?;
    let key = get_bytes(b, pos)?;
    let expire_at = get_varint(b, pos)?;
    let t = *b.get(*pos).ok_or("entry truncated")?;
    *pos += 1;
    let value = match t {
        0 => {
            let z = get_varint(b, pos)?;
            Value::Int(((z >> 1) as i64) ^ -((z & 1) as i64))
        }
        1 => Value::Str(get_bytes(b, pos)?.into()),
        2 => Value::Raw(get_bytes(b, pos)?.into()),
        3 => {
            let n = get_count(b, pos)?;
            let mut h = basalt_storage::hash::Hash::new();
            for _ in 0..n {
                let f = get_bytes(b, pos)?;
                let v = get_bytes(b, pos)?;
                h.set(f, v, lim);
            }
            Value::Hash(h)
        }
        7 => {
            let n = get_count(b, pos)?;
            let mut h = basalt_storage::hash::Hash::new();
            for _ in 0..n {
                let f = get_bytes(b, pos)?;
                let v = get_bytes(b, pos)?;
                let at = get_varint(b, pos)?;
                h.set(f, v, lim);
                if at != 0 {
                    h.set_field_expire(f, at);
                }
            }
            Value::Hash(h)
        }
        4 => {
            let n = get_count(b, pos)?;
            let mut st = basalt_storage::set::Set::new();
            for _ in 0..n {
                st.add(get_bytes(b, pos)?, lim);
            }
            Value::Set(st)
        }
        5 => {
            let n = get_count(b, pos)?;
            let mut l = basalt_storage::list::List::new();
            for _ in 0..n {
                l.push(&[get_bytes(b, pos)?], false, lim);
            }
            Value::List(l)
        }
        6 => {
            let n = get_count(b, pos)?;
            let mut z = basalt_storage::zset::ZSet::new();
            for _ in 0..n {
                let m = get_bytes(b, pos)?;
                let raw = b.get(*pos..*pos + 8).ok_or("entry truncated")?;
                *pos += 8;
                let score = f64::from_bits(u64::from_le_bytes(
                    raw.try_into().map_err(|_| "entry truncated")?,
                ));
                if score.is_nan() {
                    return Err("NaN score".into());
                }
                z.set(m, score, lim);
            }
            Value::ZSet(z)
        }
        8 => {
            let payload = get_bytes(b, pos)?;
            let (v, _) =
                basalt_rdb::decode_dump(payload, &basalt_rdb::DecodeOptions::default(), None)
                    .map_err(|e| format!("stream: {e}"))?;
            crate::convert::from_rdb(&v, lim)?
        }
        t => return Err(format!("unknown value type {t}")),
    };
    Ok((db, key, Entry::with_expire(value, expire_at)))
}

/// Collects captured entries; the snapshot thread drains it into chunks.
struct Sink {
    buf: Mutex<SinkBuf>,
    peak: AtomicU64,
    /// Longest shard-lock hold of one walk step or piece, in µs: wall
    /// time (includes being descheduled while holding it) and the
    /// thread's CPU time.
    longest_step_us: AtomicU64,
    longest_step_cpu_us: AtomicU64,
}

#[derive(Default)]
struct SinkBuf {
    bytes: Vec<u8>,
    entries: u64,
    /// Entries captured per database since the start (never drained).
    per_db: Vec<u64>,
}

/// Allocated size of the running snapshot's capture buffer: memory that,
/// like the copy-on-write pages of Redis's fork, is not counted against
/// `maxmemory` (evicting a key a snapshot still needs moves its bytes
/// here rather than freeing them).
static CAPTURE_BYTES: AtomicU64 = AtomicU64::new(0);

/// Bytes captured and not yet drained by the snapshot thread. Writers that
/// outpace the snapshot (a flood evicting or overwriting keys it has not
/// reached) would grow this without bound; see [`capture_backlog`].
static CAPTURE_PENDING: AtomicU64 = AtomicU64::new(0);

/// Above this many captured-but-undrained bytes, writing clients wait
/// (their replies held, outside any lock) until the snapshot thread has
/// drained half; above a quarter of it, the snapshot thread stops offering
/// the CPU to others (`pace`). Redis's fork has no such bound: under a
/// write flood its copy-on-write pages approach the dataset's size.
pub const CAPTURE_BACKLOG_MAX: u64 = 4 << 20;

/// Captured bytes the running snapshot has not drained yet.
pub fn capture_backlog() -> u64 {
    CAPTURE_PENDING.load(Relaxed)
}

/// True while the snapshot falls behind its writers.
fn behind() -> bool {
    capture_backlog() > CAPTURE_BACKLOG_MAX / 4
}

/// Allocated size of the snapshot thread's own buffers: the chunk being
/// built (which can outgrow `CHUNK_RAW` when a drain brings many captured
/// entries at once), the compressed chunk, a big value's piece and the
/// file buffer.
static WORK_BYTES: AtomicU64 = AtomicU64::new(0);

/// Memory a running snapshot holds beyond the keyspace: the capture
/// buffer, the chunk being built and the file buffer (0 when none runs).
pub fn working_bytes(srv: &Shared) -> u64 {
    if !srv.snap.in_progress.load(Relaxed) {
        return 0;
    }
    CAPTURE_BYTES.load(Relaxed) + WORK_BYTES.load(Relaxed)
}

impl Capture for Sink {
    fn capture(&self, db: u32, key: &[u8], entry: &Entry) {
        let mut g = self.buf.lock();
        encode_entry(db, key, entry, &mut g.bytes);
        CAPTURE_PENDING.store(g.bytes.len() as u64, Relaxed);
        g.entries += 1;
        let db = db as usize;
        if g.per_db.len() <= db {
            g.per_db.resize(db + 1, 0);
        }
        g.per_db[db] += 1;
        let len = g.bytes.capacity() as u64;
        CAPTURE_BYTES.store(len, Relaxed);
        if len > self.peak.load(Relaxed) {
            self.peak.store(len, Relaxed);
        }
    }

    fn is_big(&self, e: &Entry) -> bool {
        is_big(e)
    }

    fn encode_piece(
        &self,
        db: u32,
        key: &[u8],
        e: &Entry,
        from: usize,
        all: bool,
        out: &mut Vec<u8>,
    ) -> Option<usize> {
        encode_piece(db, key, e, from, all, out)
    }
}

struct ChunkWriter {
    file: std::io::BufWriter<std::fs::File>,
    crc_totals: crc32fast::Hasher,
    keys: u64,
    chunks: u64,
    /// One zstd context for the whole snapshot: `zstd::bulk::compress`
    /// would build (allocate and initialise) a new one for every chunk.
    zstd: zstd::bulk::Compressor<'static>,
    comp: Vec<u8>,
    raw_cap: usize,
    piece_cap: usize,
}

impl ChunkWriter {
    /// Publishes the buffers' sizes (`raw_cap`, `piece_cap`, the
    /// compressed chunk and the file buffer) for `working_bytes`.
    fn publish_work_bytes(&self) {
        let total = self.raw_cap + self.piece_cap + self.comp.capacity() + (1 << 20);
        WORK_BYTES.store(total as u64, Relaxed);
    }

    /// Writes `raw` (holding `entries` entries that start in it) as chunks
    /// of at most `CHUNK_RAW` bytes; `continues`: the bytes go on in the
    /// next call's chunks. A drain can bring far more than one chunk's
    /// worth of captured entries at once (FLUSHALL during a save captures
    /// a whole table; a stream or a hash under the piece threshold can be
    /// hundreds of MB), and the loader refuses chunks over `MAX_CHUNK`:
    /// such bytes go out as a unit of continued chunks, which the loader
    /// decodes as one buffer.
    fn write_chunk(&mut self, raw: &[u8], entries: u64, continues: bool) -> std::io::Result<()> {
        if entries >= u64::from(CONTINUES) {
            return Err(std::io::Error::other("too many entries for one chunk"));
        }
        let n = raw.len().div_ceil(CHUNK_RAW).max(1);
        for i in 0..n {
            let sub = &raw[(i * CHUNK_RAW).min(raw.len())..((i + 1) * CHUNK_RAW).min(raw.len())];
            let e = if i == 0 { entries } else { 0 };
            self.write_one_chunk(sub, e, continues || i + 1 < n)?;
        }
        Ok(())
    }

    fn write_one_chunk(
        &mut self,
        raw: &[u8],
        entries: u64,
        continues: bool,
    ) -> std::io::Result<()> {
        // Compressing a chunk is one burst of CPU: let a waiting IO
        // thread go first (see `pace`), unless the writers are ahead.
        if !behind() {
            std::thread::yield_now();
        }
        self.comp.clear();
        self.comp
            .reserve(zstd::zstd_safe::compress_bound(raw.len()));
        self.zstd.compress_to_buffer(raw, &mut self.comp)?;
        let comp = &self.comp;
        let crc = crc32fast::hash(comp);
        let flags = if continues { CONTINUES } else { 0 };
        let mut h = [0u8; CHUNK_HEADER_LEN];
        h[0..4].copy_from_slice(&(comp.len() as u32).to_le_bytes());
        h[4..8].copy_from_slice(&(raw.len() as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(entries as u32 | flags).to_le_bytes());
        h[12..16].copy_from_slice(&crc.to_le_bytes());
        self.file.write_all(&h)?;
        self.file.write_all(comp)?;
        if self.comp.capacity() > 4 * CHUNK_RAW {
            self.comp = Vec::new();
        }
        self.crc_totals.update(&h);
        self.keys += entries;
        self.chunks += 1;
        Ok(())
    }
}

/// Where snapshots live: the log directory when the log is on (the
/// manifest names them), else the data directory.
pub fn snapshot_dir(srv: &Shared) -> PathBuf {
    match srv.log.get() {
        Some(l) => l.dir().to_path_buf(),
        None => srv.config.read().dir.clone(),
    }
}

/// The snapshot used when the log is off.
pub const STANDALONE_NAME: &str = "basalt.snapshot";

/// Takes a snapshot on the calling thread (BGSAVE runs this on its own
/// thread). Returns the file name and the covered log position.
pub fn take(srv: &Arc<Shared>) -> Result<(String, u64), String> {
    if !try_claim(srv) {
        return Err("ERR Background save already in progress".into());
    }
    take_claimed(srv)
}

/// Marks a snapshot as in progress; false if one already is.
pub fn try_claim(srv: &Shared) -> bool {
    !srv.snap.in_progress.swap(true, Relaxed)
}

/// Nice value of the background snapshot thread while it must keep up
/// (see `adjust_sched`): about a third of a busy IO thread's share.
const SNAPSHOT_NICE: i32 = 5;

/// Scheduling state of the background snapshot thread.
struct Sched {
    /// Set on the background thread only: a foreground SAVE runs the same
    /// code on an IO thread, whose scheduling is left alone.
    managed: bool,
    idle: bool,
    window: Instant,
    window_cpu_us: u64,
    boost_until: Option<Instant>,
}

thread_local! {
    static SCHED: std::cell::RefCell<Sched> = std::cell::RefCell::new(Sched {
        managed: false,
        idle: false,
        window: Instant::now(),
        window_cpu_us: 0,
        boost_until: None,
    });
}

/// The starvation check's window, and the share of it below which the
/// snapshot thread counts as starved.
const SCHED_WINDOW: std::time::Duration = std::time::Duration::from_millis(100);
const STARVED_PERCENT: u64 = 5;

/// Background snapshot threads running.
static BACKGROUND: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether a background snapshot thread is running. The IO threads then
/// stop polling between requests (see `server::poll_after_input`): a
/// polling thread never leaves its core idle, and the snapshot thread,
/// in SCHED_IDLE, runs on idle time; starved, it would switch to a nice
/// level and take time slices from the IO thread instead (SET p99 during
/// a save 1.06 ms polling, against 0.62 ms without a save).
pub fn background_running() -> bool {
    BACKGROUND.load(Relaxed) > 0
}

/// The background snapshot thread's body: `take_claimed` at low priority.
/// Returns the file name (in `snapshot_dir`) and the covered log position.
pub fn run_background(srv: &Arc<Shared>) -> Result<(String, u64), String> {
    run_background_as(srv, None)
}

/// `run_background`, for a snapshot transfer when `private` is given:
/// with the log off, the snapshot is written as `private` (in
/// `snapshot_dir`, the caller removes it) instead of replacing the one
/// loaded at start, and it counts as no save (Redis 7.0 sends such dumps
/// diskless). With the log on it is an ordinary snapshot, the log's.
pub fn run_background_as(
    srv: &Arc<Shared>,
    private: Option<&str>,
) -> Result<(String, u64), String> {
    struct Running;
    impl Drop for Running {
        fn drop(&mut self) {
            BACKGROUND.fetch_sub(1, Relaxed);
        }
    }
    BACKGROUND.fetch_add(1, Relaxed);
    let _running = Running; // also if the snapshot panics
    lower_priority();
    take_claimed_as(srv, private)
}

/// Called once on the background snapshot thread: it starts in
/// SCHED_IDLE, so it runs on time the IO threads leave idle and a woken
/// IO thread preempts it at once (see `adjust_sched`).
pub fn lower_priority() {
    SCHED.with(|s| {
        let mut s = s.borrow_mut();
        s.managed = true;
        s.window = Instant::now();
        s.window_cpu_us = thread_cpu_us();
    });
    set_idle(true);
}

/// SCHED_IDLE, or SCHED_OTHER at `SNAPSHOT_NICE` (Linux, this thread).
/// Leaving SCHED_IDLE needs no privilege while the nice value stays
/// within RLIMIT_NICE's range, which a positive nice value does.
fn set_idle(idle: bool) {
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on the calling thread (pid 0 / its own id).
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        let policy = if idle {
            libc::SCHED_IDLE
        } else {
            libc::SCHED_OTHER
        };
        libc::sched_setscheduler(0, policy, &param);
        if !idle {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, SNAPSHOT_NICE);
        }
    }
    SCHED.with(|s| s.borrow_mut().idle = idle);
}

/// Between steps of the background snapshot: SCHED_IDLE normally, and
/// SCHED_OTHER at nice 5 while the snapshot falls behind its writers
/// (captured bytes pile up) or for a window after one in which it got
/// under 5% of a core (a core kept busy by reads alone never makes it fall
/// behind, and must not starve it). At nice 5 the snapshot competed for
/// time slices with the IO thread on a busy core; in SCHED_IDLE the SET
/// p99 during a save moved from 1.21-1.54 ms to 0.84-1.03 ms
/// (`benches/snapshot.sh`, base 0.50-0.75 ms), with the same save time.
fn adjust_sched(behind: bool) {
    SCHED.with(|s| {
        let mut s = s.borrow_mut();
        if !s.managed {
            return;
        }
        let now = Instant::now();
        let elapsed = now.duration_since(s.window);
        if elapsed >= SCHED_WINDOW {
            let cpu = thread_cpu_us();
            let used = cpu.saturating_sub(s.window_cpu_us);
            if used * 100 < elapsed.as_micros() as u64 * STARVED_PERCENT {
                s.boost_until = Some(now + SCHED_WINDOW);
            }
            s.window = now;
            s.window_cpu_us = cpu;
        }
        let want_idle = !behind && s.boost_until.is_none_or(|t| now >= t);
        if want_idle != s.idle {
            drop(s);
            set_idle(want_idle);
        }
    });
}

/// Runs a snapshot claimed with [`try_claim`].
pub fn take_claimed(srv: &Arc<Shared>) -> Result<(String, u64), String> {
    take_claimed_as(srv, None)
}

/// `take_claimed`; `private`: see [`run_background_as`].
fn take_claimed_as(srv: &Arc<Shared>, private: Option<&str>) -> Result<(String, u64), String> {
    let private = private.filter(|_| srv.log.get().is_none());
    // The claim is released however this ends, a panic included: a claim
    // left set would refuse every later snapshot and hold up a shutdown
    // waiting for it.
    struct Release<'a>(&'a SnapState);
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            CAPTURE_PENDING.store(0, Relaxed);
            self.0.in_progress.store(false, Relaxed);
        }
    }
    let _release = Release(&srv.snap);
    let start = Instant::now();
    let res = take_inner(srv, private);
    let st = &srv.snap;
    st.last_duration_ms
        .store(start.elapsed().as_millis() as u64, Relaxed);
    match &res {
        Ok(_) if private.is_some() => {}
        Ok(_) => {
            st.last_ok.store(true, Relaxed);
            st.saves.fetch_add(1, Relaxed);
            st.last_save_time.store(unix_ms() / 1000, Relaxed);
            st.last_error.lock().clear();
        }
        Err(e) => {
            st.last_ok.store(false, Relaxed);
            *st.last_error.lock() = e.clone();
            tracing::error!("snapshot failed: {e}");
        }
    }
    res
}

fn take_inner(srv: &Arc<Shared>, private: Option<&str>) -> Result<(String, u64), String> {
    // Nothing of a previous (perhaps failed) snapshot is held any more.
    CAPTURE_BYTES.store(0, Relaxed);
    WORK_BYTES.store(0, Relaxed);
    let ks = &srv.ks;
    let sink = Arc::new(Sink {
        buf: Mutex::new(SinkBuf::default()),
        peak: AtomicU64::new(0),
        longest_step_us: AtomicU64::new(0),
        longest_step_cpu_us: AtomicU64::new(0),
    });
    let epoch = srv.snap.epoch.fetch_add(1, Relaxed) + 1;
    let epoch32 = (epoch & 0xffff_ffff) as u32;
    // The cut: with every shard locked, no command is between applying a
    // change and logging it, so "applied" and "logged at or before S" match.
    let (covered, dirty_at_cut) = {
        let mut guards = ks.lock_all();
        for g in guards.iter_mut() {
            for (db, d) in g.dbs.iter_mut().enumerate() {
                d.begin_snapshot(epoch32, db as u32, sink.clone());
            }
        }
        let covered = match srv.log.get() {
            Some(l) => {
                l.begin_rotate()
                    .map_err(|e| {
                        for g in guards.iter_mut() {
                            for d in g.dbs.iter_mut() {
                                d.abort_snapshot();
                            }
                        }
                        format!("ERR cannot cut the log: {e}")
                    })?
                    .0
            }
            None => 0,
        };
        (covered, srv.stats.dirty.load(Relaxed))
    };
    let dir = snapshot_dir(srv);
    let name = if srv.log.get().is_some() {
        format!("snapshot-{covered:020}-{epoch}.bsnap")
    } else {
        private.unwrap_or(STANDALONE_NAME).to_string()
    };
    let tmp = dir.join(format!("{name}.tmp"));
    let result = write_file(srv, &sink, &tmp, covered, epoch);
    if let Err(e) = result {
        // Leave every table consistent for the next attempt.
        for mut g in ks.lock_all() {
            for d in g.dbs.iter_mut() {
                d.abort_snapshot();
            }
        }
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("ERR snapshot write failed: {e}"));
    }
    let path = dir.join(&name);
    std::fs::rename(&tmp, &path).map_err(|e| format!("ERR rename {}: {e}", tmp.display()))?;
    sync_dir(&dir).map_err(|e| format!("ERR fsync {}: {e}", dir.display()))?;
    srv.snap
        .last_extra_bytes
        .store(sink.peak.load(Relaxed), Relaxed);
    if let Some(log) = srv.log.get() {
        let report = log
            .install_snapshot(&name, basalt_aof::Lsn(covered))
            .map_err(|e| format!("ERR installing snapshot: {e}"))?;
        if let Some(prev) = report.previous_snapshot {
            if prev.name != name {
                let _ = std::fs::remove_file(dir.join(&prev.name));
            }
        }
        srv.snap.rewrites.fetch_add(1, Relaxed);
    }
    if private.is_none() {
        let now_dirty = srv.stats.dirty.load(Relaxed);
        srv.stats
            .dirty
            .store(now_dirty.saturating_sub(dirty_at_cut), Relaxed);
    }
    tracing::info!(
        "snapshot {name} written (covers log position {covered}); longest shard lock hold of a step: {} us wall, {} us CPU",
        sink.longest_step_us.load(Relaxed),
        sink.longest_step_cpu_us.load(Relaxed)
    );
    Ok((name, covered))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn write_file(
    srv: &Shared,
    sink: &Arc<Sink>,
    tmp: &Path,
    covered: u64,
    epoch: u64,
) -> std::io::Result<()> {
    let f = std::fs::File::create(tmp)?;
    let mut w = ChunkWriter {
        file: std::io::BufWriter::with_capacity(1 << 20, f),
        crc_totals: crc32fast::Hasher::new(),
        keys: 0,
        chunks: 0,
        zstd: zstd::bulk::Compressor::new(1)?,
        comp: Vec::new(),
        raw_cap: CHUNK_RAW + 4096,
        piece_cap: 0,
    };
    w.publish_work_bytes();
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&covered.to_le_bytes());
    h[24..32].copy_from_slice(&epoch.to_le_bytes());
    w.file.write_all(&h)?;
    let ks = &srv.ks;
    let mut raw = Vec::with_capacity(CHUNK_RAW + 4096);
    let mut raw_entries = 0u64;
    let drain = |w: &mut ChunkWriter,
                 raw: &mut Vec<u8>,
                 raw_entries: &mut u64,
                 force: bool|
     -> std::io::Result<()> {
        {
            let mut g = sink.buf.lock();
            raw.extend_from_slice(&g.bytes);
            // Counted before the capture buffer's bytes stop being.
            w.raw_cap = raw.capacity();
            w.publish_work_bytes();
            *raw_entries += g.entries;
            g.bytes.clear();
            CAPTURE_PENDING.store(0, Relaxed);
            g.entries = 0;
            if g.bytes.capacity() > 4 * CHUNK_RAW {
                g.bytes.shrink_to(CHUNK_RAW);
            }
            CAPTURE_BYTES.store(g.bytes.capacity() as u64, Relaxed);
        }
        if raw.len() >= CHUNK_RAW || (force && *raw_entries > 0) {
            w.write_chunk(raw, *raw_entries, false)?;
            raw.clear();
            *raw_entries = 0;
            if raw.capacity() > 4 * CHUNK_RAW {
                raw.shrink_to(CHUNK_RAW + 4096);
            }
        }
        w.raw_cap = raw.capacity();
        w.publish_work_bytes();
        Ok(())
    };
    srv.snap.current_keys.store(0, Relaxed);
    let mut piece = Vec::new();
    // `rdb-key-save-delay` (a Redis test knob, microseconds): here a pause
    // after every piece of a big value, outside the lock, so tests can
    // race writes against a value part-way through its pieces.
    let delay = srv
        .config
        .read()
        .get("rdb-key-save-delay")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&us| us > 0)
        .map(std::time::Duration::from_micros);
    // Runs the snapshot of table `db` of shard `s` to its end, one bounded
    // step per lock hold. While a big entry is part-way through its
    // pieces, the steps go to the table holding it (SWAPDB may have moved
    // it to another index of the same shard) and nothing else is written,
    // so its chunks stay consecutive.
    let mut run_table = |w: &mut ChunkWriter,
                         raw: &mut Vec<u8>,
                         raw_entries: &mut u64,
                         s: usize,
                         db: usize|
     -> std::io::Result<()> {
        let mut in_big = false;
        let mut last_yield = Instant::now();
        loop {
            let step = {
                let mut g = ks.lock(s);
                let held = Instant::now();
                let cpu0 = thread_cpu_us();
                let d = if in_big {
                    g.dbs
                        .iter_mut()
                        .find(|d| d.snapshot_hook().is_some_and(|h| h.big_in_progress()))
                        .ok_or_else(|| std::io::Error::other("lost a big entry mid-way"))?
                } else {
                    &mut g.dbs[db]
                };
                let step = d.snapshot_step(WALK_SLICE, &mut piece);
                let us = held.elapsed().as_micros() as u64;
                sink.longest_step_us.fetch_max(us, Relaxed);
                sink.longest_step_cpu_us
                    .fetch_max(thread_cpu_us().saturating_sub(cpu0), Relaxed);
                step
            };
            pace(&mut last_yield);
            if let (Some(d), Step::Piece { .. }) = (delay, &step) {
                std::thread::sleep(d);
            }
            match step {
                Step::Walked => drain(w, raw, raw_entries, false)?,
                Step::Piece { first, last, db } => {
                    if first {
                        // Everything captured so far goes before the
                        // entry's first chunk.
                        drain(w, raw, raw_entries, true)?;
                        let mut g = sink.buf.lock();
                        let db = db as usize;
                        if g.per_db.len() <= db {
                            g.per_db.resize(db + 1, 0);
                        }
                        g.per_db[db] += 1;
                    }
                    w.piece_cap = piece.capacity();
                    w.publish_work_bytes();
                    w.write_chunk(&piece, u64::from(first), !last)?;
                    piece.clear();
                    if piece.capacity() > 4 * CHUNK_RAW {
                        piece.shrink_to(CHUNK_RAW);
                    }
                    w.piece_cap = piece.capacity();
                    w.publish_work_bytes();
                    in_big = !last;
                }
                Step::Done => {
                    drain(w, raw, raw_entries, false)?;
                    return Ok(());
                }
            }
        }
    };
    for s in 0..ks.num_shards() {
        for db in 0..ks.num_dbs() {
            run_table(&mut w, &mut raw, &mut raw_entries, s, db)?;
        }
        srv.snap.current_keys.store(w.keys + raw_entries, Relaxed);
    }
    // SWAPDB can move a table the walk already passed to an index it has
    // not, or back; sweep until no table has a hook left.
    loop {
        let mut active = false;
        for s in 0..ks.num_shards() {
            for db in 0..ks.num_dbs() {
                if ks.lock(s).dbs[db].snapshot_active() {
                    active = true;
                    run_table(&mut w, &mut raw, &mut raw_entries, s, db)?;
                }
            }
        }
        if !active {
            break;
        }
    }
    drain(&mut w, &mut raw, &mut raw_entries, true)?;
    let per_db: Vec<(u32, u64)> = {
        let g = sink.buf.lock();
        (0u32..)
            .zip(g.per_db.iter().copied())
            .filter(|&(_, n)| n > 0)
            .collect()
    };
    let mut totals = [0u8; 16];
    totals[0..8].copy_from_slice(&w.keys.to_le_bytes());
    totals[8..16].copy_from_slice(&w.chunks.to_le_bytes());
    w.crc_totals.update(&totals);
    let mut records = Vec::with_capacity(per_db.len() * 12);
    for (db, n) in &per_db {
        records.extend_from_slice(&db.to_le_bytes());
        records.extend_from_slice(&n.to_le_bytes());
    }
    w.crc_totals.update(&records);
    let crc = w.crc_totals.clone().finalize();
    let mut t = [0u8; 32];
    t[8..12].copy_from_slice(&(per_db.len() as u32).to_le_bytes());
    t[12..16].copy_from_slice(&crc.to_le_bytes());
    t[16..32].copy_from_slice(&totals);
    w.file.write_all(&t)?;
    w.file.write_all(&records)?;
    let f = w.file.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    Ok(())
}

/// How long the snapshot thread works before offering the CPU to others.
const PACE: std::time::Duration = std::time::Duration::from_micros(200);

/// Called between walk steps (no lock held): after `PACE` of work, yields
/// the CPU. At nice 5 the scheduler otherwise lets the snapshot thread run
/// slices of 1-2 ms while an IO thread with requests waits (seen with
/// `perf sched timehist` on one shared core); a yield costs a syscall and
/// returns at once when nobody else is runnable. While the snapshot falls
/// behind its writers (captured bytes pile up), it does not yield.
fn pace(last: &mut Instant) {
    let behind = behind();
    adjust_sched(behind);
    if last.elapsed() >= PACE && !behind {
        std::thread::yield_now();
        *last = Instant::now();
    }
}

/// Loads a snapshot into the (empty) keyspace, decoding chunks on every
/// core. Returns (keys, covered log position).
///
/// The chunks are in walk order, which is shard order, so each thread
/// starts on its own contiguous range of chunks (and so mostly on shards
/// no other thread touches) and steals from the other ranges once its own
/// is done. A thread decodes a whole chunk (allocation, hashing) without
/// any lock, then inserts each run of same-shard entries under one lock
/// hold into tables already sized from the trailer's per-database counts.
pub fn load(srv: &Shared, path: &Path) -> Result<(u64, u64), String> {
    let (map, idx) = open_mapped(path)?;
    let b: &[u8] = &map;
    let at = |off: usize, what: &str| at_offset(path, off, what);
    let ks = &srv.ks;
    // Size every table once. A trailer count cannot exceed what the
    // chunks could hold (4 bytes is the smallest entry), so a damaged
    // count cannot drive a huge allocation.
    let nshards = ks.num_shards() as u64;
    for &(db, n) in &idx.per_db {
        if (db as usize) < ks.num_dbs() {
            let per_shard = n.div_ceil(nshards) as usize;
            for s in 0..ks.num_shards() {
                ks.lock(s).dbs[db as usize].reserve(per_shard);
            }
        }
    }
    srv.loading_loaded_bytes
        .fetch_add(HEADER_LEN as u64, Relaxed);
    let lim = srv.config.read().limits;
    let delay = crate::persistence::key_load_delay(srv);
    let (chunks, units) = (&idx.chunks, &idx.units);
    // Loaded keys start with the current access clock (or the initial LFU
    // counter), as objects Redis creates while loading.
    let fresh = srv.evict.stamp(unix_ms()).fresh();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(units.len().max(1));
    // Range r is units[bounds[r]..bounds[r + 1]]; next[r] its cursor.
    let bounds: Vec<usize> = (0..=threads).map(|r| r * units.len() / threads).collect();
    let next: Vec<AtomicU64> = bounds[..threads]
        .iter()
        .map(|&b| AtomicU64::new(b as u64))
        .collect();
    let loaded = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let err: Mutex<Option<String>> = Mutex::new(None);
    let thread_cpu: Mutex<Vec<u64>> = Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for t in 0..threads {
            let (bounds, next, loaded, failed, err, lim) =
                (&bounds, &next, &loaded, &failed, &err, &lim);
            let thread_cpu = &thread_cpu;
            sc.spawn(move || {
                let _cpu = ThreadCpu(thread_cpu);
                let mut loader = match ChunkLoader::new(delay, fresh) {
                    Ok(l) => l,
                    Err(e) => {
                        failed.store(true, Relaxed);
                        *err.lock() = Some(at(0, &e));
                        return;
                    }
                };
                for r in (t..threads).chain(0..t) {
                    loop {
                        if failed.load(Relaxed) {
                            return;
                        }
                        let i = next[r].fetch_add(1, Relaxed) as usize;
                        if i >= bounds[r + 1] {
                            break;
                        }
                        let unit = &chunks[units[i].clone()];
                        match loader.load(ks, b, unit, lim) {
                            Ok(n) => {
                                loaded.fetch_add(n, Relaxed);
                                srv.loading_progress.fetch_add(n, Relaxed);
                                let bytes: usize =
                                    unit.iter().map(|c| CHUNK_HEADER_LEN + c.comp).sum();
                                srv.loading_loaded_bytes.fetch_add(bytes as u64, Relaxed);
                            }
                            Err((off, e)) => {
                                failed.store(true, Relaxed);
                                *err.lock() = Some(at(off, &e));
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = err.into_inner() {
        return Err(e);
    }
    // CPU time per loading thread: on an idle machine the load takes
    // about the largest of these, whatever else the host is running.
    tracing::info!(
        "snapshot decoded on {threads} threads, CPU ms per thread: {:?}",
        thread_cpu.into_inner()
    );
    srv.loading_loaded_bytes
        .fetch_add((b.len() - idx.trailer_at) as u64, Relaxed);
    let n = loaded.load(Relaxed);
    if n != idx.keys {
        return Err(at(
            idx.trailer_at,
            &format!("trailer says {} keys, chunks held {n}", idx.keys),
        ));
    }
    Ok((n, idx.covered))
}

/// Opens and maps the snapshot at `path` and reads its layout (see
/// `index`).
fn open_mapped(path: &Path) -> Result<(memmap2::Mmap, Index), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: snapshot files are written once, fsynced, renamed into place
    // complete and never modified afterwards (a newer snapshot may unlink
    // one, which keeps the map valid).
    let map = unsafe { memmap2::Mmap::map(&file) }
        .map_err(|e| format!("{}: mmap: {e}", path.display()))?;
    let idx = index(&map).map_err(|(off, what)| at_offset(path, off, &what))?;
    Ok((map, idx))
}

/// An error about `path` at byte offset `off`.
fn at_offset(path: &Path, off: usize, what: &str) -> String {
    format!("{}: offset {off}: {what}", path.display())
}

/// Checks and decompresses the chunks of one unit into `raw` (cleared
/// first); errors carry the offset of the chunk they concern.
fn decompress_unit(
    zstd: &mut zstd::bulk::Decompressor<'static>,
    file: &[u8],
    unit: &[ChunkRef],
    raw: &mut Vec<u8>,
) -> Result<(), (usize, String)> {
    raw.clear();
    for c in unit {
        let off = c.start - CHUNK_HEADER_LEN;
        let comp = &file[c.start..c.start + c.comp];
        if crc32fast::hash(comp) != c.crc {
            return Err((off, "chunk checksum mismatch".into()));
        }
        let before = raw.len();
        raw.reserve(c.raw);
        let mut cur = std::io::Cursor::new(&mut *raw);
        cur.set_position(before as u64);
        zstd.decompress_to_buffer(comp, &mut cur)
            .map_err(|e| (off, format!("chunk does not decompress: {e}")))?;
        if raw.len() != before + c.raw {
            return Err((off, "chunk size differs from its header".into()));
        }
    }
    Ok(())
}

/// Calls `f(db, key, entry)` for every entry of the snapshot file at
/// `path`, in file order, decoding one unit (a chunk, or the chunks of a
/// value written in pieces) at a time: memory stays at one unit whatever
/// the file's size. The file is mapped first, so a newer snapshot may
/// replace (unlink) it meanwhile. Returns the number of entries.
pub fn for_each_entry(
    path: &Path,
    lim: &basalt_storage::Limits,
    mut f: impl FnMut(u32, &[u8], Entry) -> Result<(), String>,
) -> Result<u64, String> {
    let (map, idx) = open_mapped(path)?;
    let b: &[u8] = &map;
    let at = |off: usize, what: &str| at_offset(path, off, what);
    let mut zstd = zstd::bulk::Decompressor::new().map_err(|e| format!("zstd: {e}"))?;
    let mut raw = Vec::new();
    let mut n = 0u64;
    for unit in &idx.units {
        let unit = &idx.chunks[unit.clone()];
        decompress_unit(&mut zstd, b, unit, &mut raw).map_err(|(off, e)| at(off, &e))?;
        let off = unit.first().map_or(0, |c| c.start - CHUNK_HEADER_LEN);
        let mut pos = 0;
        while pos < raw.len() {
            let (db, key, entry) = decode_entry(&raw, &mut pos, lim).map_err(|e| at(off, &e))?;
            f(db, key, entry)?;
            n += 1;
        }
    }
    if n != idx.keys {
        return Err(at(
            idx.trailer_at,
            &format!("trailer says {} keys, chunks held {n}", idx.keys),
        ));
    }
    Ok(n)
}

/// CPU time of the calling thread in µs (0 if the clock is unavailable).
fn thread_cpu_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes the calling thread's CPU clock into `ts`.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
        ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
    } else {
        0
    }
}

/// Records the thread's CPU time (ms) when the loading thread ends.
struct ThreadCpu<'a>(&'a Mutex<Vec<u64>>);

impl Drop for ThreadCpu<'_> {
    fn drop(&mut self) {
        self.0.lock().push(thread_cpu_us() / 1000);
    }
}

/// Where a chunk is and what its header says.
struct ChunkRef {
    start: usize,
    comp: usize,
    raw: usize,
    crc: u32,
    continues: bool,
}

/// A snapshot's layout, read from the headers and the trailer only.
struct Index {
    covered: u64,
    chunks: Vec<ChunkRef>,
    /// Units: ranges of `chunks` decoded as one byte stream.
    units: Vec<std::ops::Range<usize>>,
    keys: u64,
    per_db: Vec<(u32, u64)>,
    trailer_at: usize,
}

/// Reads the header, every chunk header and the trailer, checking every
/// length against the file before anything is decoded. Errors carry the
/// offset they refer to.
fn index(b: &[u8]) -> Result<Index, (usize, String)> {
    let le32 = |s: &[u8]| u32::from_le_bytes(s.try_into().unwrap_or_default());
    let le64 = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap_or_default());
    if b.len() < HEADER_LEN + 32 || &b[0..8] != MAGIC {
        return Err((0, "not a Basalt snapshot (bad magic or too short)".into()));
    }
    let version = le32(&b[8..12]);
    if !(MIN_VERSION..=VERSION).contains(&version) {
        return Err((8, format!("unsupported snapshot version {version}")));
    }
    let covered = le64(&b[16..24]);
    let mut chunks: Vec<ChunkRef> = Vec::new();
    let mut pos = HEADER_LEN;
    let mut crc_totals = crc32fast::Hasher::new();
    let mut raw_total = 0u64;
    loop {
        let h = b
            .get(pos..pos + CHUNK_HEADER_LEN)
            .ok_or((pos, "truncated (no trailer)".to_string()))?;
        let comp = le32(&h[0..4]) as usize;
        let raw = le32(&h[4..8]) as usize;
        let entries = le32(&h[8..12]);
        let crc = le32(&h[12..16]);
        let continues = version >= 2 && entries & CONTINUES != 0;
        if comp == 0 && raw == 0 {
            let ndbs = entries as usize;
            if version < 2 && ndbs != 0 {
                return Err((pos, "version 1 trailer with database counts".into()));
            }
            let totals = b
                .get(pos + 16..pos + 32)
                .ok_or((pos, "truncated trailer".to_string()))?;
            let records = b
                .get(pos + 32..)
                .and_then(|r| r.get(..ndbs.checked_mul(12)?))
                .ok_or((pos, "truncated trailer".to_string()))?;
            crc_totals.update(totals);
            crc_totals.update(records);
            if crc_totals.finalize() != crc {
                return Err((pos, "trailer checksum mismatch".into()));
            }
            let keys = le64(&totals[0..8]);
            let nchunks = le64(&totals[8..16]);
            if nchunks != chunks.len() as u64 {
                return Err((pos, "chunk count does not match the trailer".into()));
            }
            let per_db: Vec<(u32, u64)> = records
                .chunks_exact(12)
                .map(|r| (le32(&r[0..4]), le64(&r[4..12])))
                .collect();
            let sum = per_db.iter().try_fold(0u64, |a, &(_, n)| a.checked_add(n));
            if ndbs > 0 && sum != Some(keys) {
                return Err((pos, "database counts do not add up to the key count".into()));
            }
            if keys > raw_total / 4 {
                return Err((
                    pos,
                    format!("trailer claims {keys} keys, more than the chunks can hold"),
                ));
            }
            if chunks.last().is_some_and(|c: &ChunkRef| c.continues) {
                return Err((pos, "the last chunk says it continues".into()));
            }
            let mut units = Vec::new();
            let mut first = 0;
            for (i, c) in chunks.iter().enumerate() {
                if !c.continues {
                    units.push(first..i + 1);
                    first = i + 1;
                }
            }
            return Ok(Index {
                covered,
                chunks,
                units,
                keys,
                per_db,
                trailer_at: pos,
            });
        }
        if comp > MAX_CHUNK || raw > MAX_CHUNK {
            return Err((pos, format!("chunk length {comp}/{raw} exceeds the limit")));
        }
        crc_totals.update(h);
        let start = pos + CHUNK_HEADER_LEN;
        if start + comp > b.len() {
            return Err((pos, "chunk runs past the end of the file".into()));
        }
        raw_total += raw as u64;
        chunks.push(ChunkRef {
            start,
            comp,
            raw,
            crc,
            continues,
        });
        pos = start + comp;
    }
}

/// One loading thread's reusable state: a zstd context, the raw buffer
/// and the decoded entries of the current chunk (no allocation per chunk
/// once warm).
struct ChunkLoader {
    zstd: zstd::bulk::Decompressor<'static>,
    raw: Vec<u8>,
    items: Vec<(u64, u32, basalt_storage::CompactBytes, Entry)>,
    keys: Vec<(u64, u32)>,
    /// `key-load-delay` (tests): a pause per entry decoded.
    delay: Option<std::time::Duration>,
    /// Access clock (or initial LFU counter) stamped on loaded keys.
    fresh: u32,
}

/// How far ahead of the insert the bucket is prefetched.
const PREFETCH_AHEAD: usize = 8;

impl ChunkLoader {
    fn new(delay: Option<std::time::Duration>, fresh: u32) -> Result<Self, String> {
        Ok(ChunkLoader {
            delay,
            fresh,
            zstd: zstd::bulk::Decompressor::new().map_err(|e| format!("zstd: {e}"))?,
            raw: Vec::new(),
            items: Vec::new(),
            keys: Vec::new(),
        })
    }

    /// Loads one unit (a chunk, or the chunks of a value written in
    /// pieces); errors carry the offset of the chunk they concern.
    fn load(
        &mut self,
        ks: &Keyspace,
        file: &[u8],
        unit: &[ChunkRef],
        lim: &basalt_storage::Limits,
    ) -> Result<u64, (usize, String)> {
        decompress_unit(&mut self.zstd, file, unit, &mut self.raw)?;
        let off = unit.first().map_or(0, |c| c.start - CHUNK_HEADER_LEN);
        self.decode_insert(ks, lim).map_err(|e| (off, e))
    }

    fn decode_insert(
        &mut self,
        ks: &Keyspace,
        lim: &basalt_storage::Limits,
    ) -> Result<u64, String> {
        let ndb = ks.num_dbs();
        let raw = &self.raw;
        let mut pos = 0;
        self.items.clear();
        while pos < raw.len() {
            let (db, key, mut entry) = decode_entry(raw, &mut pos, lim)?;
            entry.lru = self.fresh;
            if db as usize >= ndb {
                return Err(format!(
                    "entry for db {db}, but only {ndb} databases are configured"
                ));
            }
            let h = Keyspace::hash(key);
            self.items.push((h, db, key.into(), entry));
            if let Some(d) = self.delay {
                std::thread::sleep(d);
            }
        }
        let n = self.items.len() as u64;
        // Insert runs of entries of one shard under one lock hold. Two
        // cache misses per insert (the bucket, then the node at its head)
        // are requested ahead: the bucket 2 x PREFETCH_AHEAD entries on,
        // its head node PREFETCH_AHEAD on, so the misses overlap.
        self.keys.clear();
        self.keys.extend(self.items.iter().map(|it| (it.0, it.1)));
        let keys = &self.keys;
        let mut items = self.items.drain(..).enumerate().peekable();
        while let Some((_, first)) = items.peek() {
            let s = ks.shard_of(first.0);
            let mut g = ks.lock(s);
            while let Some((i, (h, db, key, entry))) =
                items.next_if(|(_, it)| ks.shard_of(it.0) == s)
            {
                if let Some(&(ph, pdb)) = keys.get(i + 2 * PREFETCH_AHEAD) {
                    if ks.shard_of(ph) == s {
                        g.dbs[pdb as usize].prefetch(ph);
                    }
                }
                if let Some(&(ph, pdb)) = keys.get(i + PREFETCH_AHEAD) {
                    if ks.shard_of(ph) == s {
                        g.dbs[pdb as usize].prefetch_head(ph);
                    }
                }
                let _ = g.dbs[db as usize].insert_owned(h, key, entry);
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_roundtrip() {
        let cases = [
            Value::Int(0),
            Value::Int(-1),
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::Str(b"hello"[..].into()),
            Value::Raw(vec![0u8; 300].into()),
        ];
        for (i, v) in cases.into_iter().enumerate() {
            let e = Entry::with_expire(v, i as u64 * 1000);
            let mut out = Vec::new();
            encode_entry(i as u32, b"key", &e, &mut out);
            let mut pos = 0;
            let (db, key, d) = decode_entry(&out, &mut pos, &Default::default()).unwrap();
            assert_eq!(
                (db, key, d.expire_at, pos),
                (i as u32, &b"key"[..], e.expire_at, out.len())
            );
            let same = match (&e.value, &d.value) {
                (Value::Int(a), Value::Int(b)) => a == b,
                (Value::Str(a), Value::Str(b)) | (Value::Raw(a), Value::Raw(b)) => a == b,
                _ => false,
            };
            assert!(same);
        }
    }

    #[test]
    fn truncated_entries_are_errors() {
        let mut out = Vec::new();
        encode_entry(
            0,
            b"key",
            &Entry::new(Value::Str(b"value"[..].into())),
            &mut out,
        );
        for cut in 0..out.len() {
            let mut pos = 0;
            assert!(
                decode_entry(&out[..cut], &mut pos, &Default::default()).is_err(),
                "cut {cut}"
            );
        }
        // A length claiming more than the chunk holds.
        let mut pos = 0;
        assert!(decode_entry(
            &[0, 0xff, 0xff, 0xff, 0xff, 0x0f],
            &mut pos,
            &Default::default()
        )
        .is_err());
    }

    /// A file with one chunk of `keys` string entries in db 0, written by
    /// hand in the given version's layout; `per_db` counts (version 2).
    fn file(version: u32, keys: u32, per_db: &[(u32, u64)]) -> Vec<u8> {
        let mut raw = Vec::new();
        for i in 0..keys {
            let e = Entry::new(Value::Str(b"v"[..].into()));
            encode_entry(0, format!("k{i}").as_bytes(), &e, &mut raw);
        }
        let comp = zstd::bulk::compress(&raw, 1).unwrap();
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&version.to_le_bytes());
        b.extend_from_slice(&[0u8; 20]);
        let mut h = Vec::new();
        h.extend_from_slice(&(comp.len() as u32).to_le_bytes());
        h.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        h.extend_from_slice(&keys.to_le_bytes());
        h.extend_from_slice(&crc32fast::hash(&comp).to_le_bytes());
        b.extend_from_slice(&h);
        b.extend_from_slice(&comp);
        let mut totals = Vec::new();
        totals.extend_from_slice(&(keys as u64).to_le_bytes());
        totals.extend_from_slice(&1u64.to_le_bytes());
        let mut recs = Vec::new();
        for (db, n) in per_db {
            recs.extend_from_slice(&db.to_le_bytes());
            recs.extend_from_slice(&n.to_le_bytes());
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&h);
        crc.update(&totals);
        crc.update(&recs);
        b.extend_from_slice(&[0u8; 8]);
        b.extend_from_slice(&(per_db.len() as u32).to_le_bytes());
        b.extend_from_slice(&crc.finalize().to_le_bytes());
        b.extend_from_slice(&totals);
        b.extend_from_slice(&recs);
        b
    }

    #[test]
    fn index_reads_both_versions_and_checks_counts() {
        let v1 = index(&file(1, 100, &[])).unwrap();
        assert_eq!((v1.keys, v1.chunks.len(), v1.per_db.len()), (100, 1, 0));
        let v2 = index(&file(2, 100, &[(0, 60), (3, 40)])).unwrap();
        assert_eq!(v2.per_db, vec![(0, 60), (3, 40)]);
        // Counts that do not add up, counts in a version 1 file, a count
        // larger than the chunks could hold, a cut trailer.
        assert!(index(&file(2, 100, &[(0, 99)])).is_err());
        assert!(index(&file(1, 100, &[(0, 100)])).is_err());
        assert!(index(&file(2, 100, &[(0, 50), (1, u64::MAX - 10)])).is_err());
        let mut f = file(2, 100, &[(0, 100)]);
        f.truncate(f.len() - 1);
        assert!(index(&f).is_err());
        let mut f = file(2, 100, &[(0, 100)]);
        let last = f.len() - 1;
        f[last] ^= 1;
        assert!(index(&f).is_err(), "count records are under the checksum");
        assert!(index(&file(3, 100, &[])).is_err());
    }

    #[test]
    fn oversized_raw_goes_out_as_continued_chunks_within_the_limit() {
        let path = std::env::temp_dir().join(format!("basalt-chunks-{}", std::process::id()));
        let mut w = ChunkWriter {
            file: std::io::BufWriter::new(std::fs::File::create(&path).unwrap()),
            crc_totals: crc32fast::Hasher::new(),
            keys: 0,
            chunks: 0,
            zstd: zstd::bulk::Compressor::new(1).unwrap(),
            comp: Vec::new(),
            raw_cap: 0,
            piece_cap: 0,
        };
        let big: Vec<u8> = (0..(5 * CHUNK_RAW / 2))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        w.write_chunk(&big, 3, false).unwrap();
        w.write_chunk(b"tail", 1, false).unwrap();
        assert_eq!((w.keys, w.chunks), (4, 4));
        drop(w);
        let b = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let le32 = |s: &[u8]| u32::from_le_bytes(s.try_into().unwrap());
        let (mut pos, mut seen, mut joined) = (0, Vec::new(), Vec::new());
        while pos < b.len() {
            let (comp, raw, e) = (
                le32(&b[pos..pos + 4]) as usize,
                le32(&b[pos + 4..pos + 8]) as usize,
                le32(&b[pos + 8..pos + 12]),
            );
            assert!(raw <= CHUNK_RAW);
            let body = zstd::bulk::decompress(&b[pos + 16..pos + 16 + comp], raw).unwrap();
            if seen.len() < 3 {
                joined.extend_from_slice(&body);
            }
            seen.push((e & !CONTINUES, e & CONTINUES != 0));
            pos += 16 + comp;
        }
        assert_eq!(seen, vec![(3, true), (0, true), (0, false), (1, false)]);
        assert!(joined == big);
    }

    #[test]
    fn pieces_concatenate_to_the_whole_entry() {
        let lim = basalt_storage::Limits::default();
        let mut l = basalt_storage::list::List::new();
        for i in 0..(3 * PIECE_ELEMS + 5) {
            l.push(&[format!("e{i}").as_bytes()], false, &lim);
        }
        let big = vec![7u8; 2 * PIECE_BYTES + 3];
        let n = 3 * PIECE_ELEMS + 5;
        let (mut h, mut ht) = (
            basalt_storage::hash::Hash::new(),
            basalt_storage::hash::Hash::new(),
        );
        let mut st = basalt_storage::set::Set::new();
        let mut z = basalt_storage::zset::ZSet::new();
        for i in 0..n {
            let f = format!("f{i}");
            h.set(f.as_bytes(), format!("v{i}").as_bytes(), &lim);
            ht.set(f.as_bytes(), b"x", &lim);
            if i % 3 == 0 {
                ht.set_field_expire(f.as_bytes(), 4_000_000_000_000 + i as u64);
            }
            st.add(f.as_bytes(), &lim);
            z.set(f.as_bytes(), i as f64 / 7.0, &lim);
        }
        for v in [
            Value::List(l),
            Value::Raw(big.into()),
            Value::Str(vec![1u8; PIECE_BYTES + 1].into()),
            Value::Hash(h),
            Value::Hash(ht),
            Value::Set(st),
            Value::ZSet(z),
        ] {
            let e = Entry::with_expire(v, 123);
            assert!(is_big(&e));
            let mut whole = Vec::new();
            encode_entry(2, b"big", &e, &mut whole);
            let mut pieces = Vec::new();
            let mut from = 0;
            let mut n = 0;
            while let Some(next) = encode_piece(2, b"big", &e, from, false, &mut pieces) {
                from = next;
                n += 1;
            }
            assert!(n >= 1);
            assert_eq!(pieces, whole);
            // `all` from the middle finishes it in one go.
            let mut part = Vec::new();
            let mid = encode_piece(2, b"big", &e, 0, false, &mut part).unwrap();
            assert_eq!(encode_piece(2, b"big", &e, mid, true, &mut part), None);
            assert_eq!(part, whole);
            // And it decodes to the same value.
            let mut pos = 0;
            let (_, _, d) = decode_entry(&pieces, &mut pos, &Default::default()).unwrap();
            assert_eq!(pos, pieces.len());
            let same = match (&e.value, &d.value) {
                (Value::Hash(a), Value::Hash(b)) => {
                    a.len() == b.len()
                        && a.pairs().iter().all(|(f, v)| {
                            b.get(f) == Some(*v) && a.field_expire(f) == b.field_expire(f)
                        })
                }
                (Value::Set(a), Value::Set(b)) => {
                    a.len() == b.len() && a.members().iter().all(|m| b.contains(m))
                }
                (Value::ZSet(a), Value::ZSet(b)) => {
                    a.collect(0, a.len() - 1, false) == b.collect(0, b.len() - 1, false)
                }
                (Value::List(a), Value::List(b)) => a.len() == b.len(),
                (Value::Str(a), Value::Str(b)) | (Value::Raw(a), Value::Raw(b)) => a == b,
                _ => false,
            };
            assert!(same);
        }
    }
}
