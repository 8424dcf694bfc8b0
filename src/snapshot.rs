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
//! ...
//! trailer 0 u32 | 0 u32 | 0 u32 | crc32(totals) u32 | keys u64 | chunks u64      (32 bytes)
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

use basalt_storage::{Capture, Entry, Keyspace, Value};
use parking_lot::Mutex;

use crate::shared::{unix_ms, Shared};

const MAGIC: &[u8; 8] = b"BASALTSN";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 32;
const CHUNK_HEADER_LEN: usize = 16;
/// Raw bytes per chunk before compression.
const CHUNK_RAW: usize = 1 << 20;
/// Buckets walked per lock hold.
const WALK_SLICE: usize = 64;
/// Largest chunk a reader accepts (bounds allocation from a length field).
const MAX_CHUNK: usize = 256 << 20;

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

/// Encodes one entry (the format above).
pub fn encode_entry(db: u32, key: &[u8], e: &Entry, out: &mut Vec<u8>) {
    put_varint(out, db as u64);
    put_varint(out, key.len() as u64);
    out.extend_from_slice(key);
    put_varint(out, e.expire_at);
    match &e.value {
        Value::Int(i) => {
            out.push(0);
            put_varint(out, ((*i << 1) ^ (*i >> 63)) as u64);
        }
        Value::Str(b) => {
            out.push(1);
            put_varint(out, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Raw(b) => {
            out.push(2);
            put_varint(out, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Hash(h) if h.has_ttls() => {
            // Fields with deadlines (HEXPIRE): each field carries its
            // absolute expiry in ms, 0 for none.
            out.push(7);
            put_varint(out, h.len() as u64);
            h.for_each(|f, v| {
                put_bytes(out, f);
                put_bytes(out, v);
                put_varint(out, h.field_expire(f).unwrap_or(0));
            });
        }
        Value::Hash(h) => {
            out.push(3);
            put_varint(out, h.len() as u64);
            h.for_each(|f, v| {
                put_bytes(out, f);
                put_bytes(out, v);
            });
        }
        Value::Set(st) => {
            out.push(4);
            put_varint(out, st.len() as u64);
            st.for_each(|m| m.with(|b| put_bytes(out, b)));
        }
        Value::List(l) => {
            out.push(5);
            put_varint(out, l.len() as u64);
            l.for_each(|b| put_bytes(out, b));
        }
        Value::ZSet(z) => {
            out.push(6);
            put_varint(out, z.len() as u64);
            z.for_each(|m, score| {
                put_bytes(out, m);
                out.extend_from_slice(&score.to_bits().to_le_bytes());
            });
        }
        Value::Stream(s) => {
            // A stream is stored as a DUMP payload of RDB 11 (the stream
            // encoding STREAM_LISTPACKS_3, which keeps consumer active
            // times), checked by its own CRC64 on load.
            out.push(8);
            let v = basalt_rdb::Value::Stream(Box::new(crate::convert::stream_to_rdb(s)));
            let opts = basalt_rdb::EncodeOptions::for_target(basalt_rdb::Target::Redis11);
            let payload = basalt_rdb::encode_dump(&v, &opts).unwrap_or_default();
            put_bytes(out, &payload);
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
    buf: Mutex<(Vec<u8>, u64)>,
    peak: AtomicU64,
}

/// Allocated size of the running snapshot's capture buffer: memory that,
/// like the copy-on-write pages of Redis's fork, is not counted against
/// `maxmemory` (evicting a key a snapshot still needs moves its bytes
/// here rather than freeing them).
static CAPTURE_BYTES: AtomicU64 = AtomicU64::new(0);

/// Memory a running snapshot holds beyond the keyspace: the capture
/// buffer, the chunk being built and the file buffer (0 when none runs).
pub fn working_bytes(srv: &Shared) -> u64 {
    if !srv.snap.in_progress.load(Relaxed) {
        return 0;
    }
    CAPTURE_BYTES.load(Relaxed) + 2 * CHUNK_RAW as u64 + (1 << 20)
}

impl Capture for Sink {
    fn capture(&self, db: u32, key: &[u8], entry: &Entry) {
        let mut g = self.buf.lock();
        encode_entry(db, key, entry, &mut g.0);
        g.1 += 1;
        let len = g.0.capacity() as u64;
        CAPTURE_BYTES.store(len, Relaxed);
        if len > self.peak.load(Relaxed) {
            self.peak.store(len, Relaxed);
        }
    }
}

struct ChunkWriter {
    file: std::io::BufWriter<std::fs::File>,
    crc_totals: crc32fast::Hasher,
    keys: u64,
    chunks: u64,
}

impl ChunkWriter {
    fn write_chunk(&mut self, raw: &[u8], entries: u64) -> std::io::Result<()> {
        if entries == 0 {
            return Ok(());
        }
        let comp = zstd::bulk::compress(raw, 1)?;
        let crc = crc32fast::hash(&comp);
        let mut h = [0u8; CHUNK_HEADER_LEN];
        h[0..4].copy_from_slice(&(comp.len() as u32).to_le_bytes());
        h[4..8].copy_from_slice(&(raw.len() as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(entries as u32).to_le_bytes());
        h[12..16].copy_from_slice(&crc.to_le_bytes());
        self.file.write_all(&h)?;
        self.file.write_all(&comp)?;
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

/// Runs a snapshot claimed with [`try_claim`].
pub fn take_claimed(srv: &Arc<Shared>) -> Result<(String, u64), String> {
    let start = Instant::now();
    let res = take_inner(srv);
    let st = &srv.snap;
    st.last_duration_ms
        .store(start.elapsed().as_millis() as u64, Relaxed);
    match &res {
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
    st.in_progress.store(false, Relaxed);
    res
}

fn take_inner(srv: &Arc<Shared>) -> Result<(String, u64), String> {
    let ks = &srv.ks;
    let sink = Arc::new(Sink {
        buf: Mutex::new((Vec::new(), 0)),
        peak: AtomicU64::new(0),
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
        STANDALONE_NAME.to_string()
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
    let now_dirty = srv.stats.dirty.load(Relaxed);
    srv.stats
        .dirty
        .store(now_dirty.saturating_sub(dirty_at_cut), Relaxed);
    tracing::info!("snapshot {name} written (covers log position {covered})");
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
    };
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
            raw.extend_from_slice(&g.0);
            *raw_entries += g.1;
            g.0.clear();
            g.1 = 0;
            if g.0.capacity() > 4 * CHUNK_RAW {
                g.0.shrink_to(CHUNK_RAW);
            }
            CAPTURE_BYTES.store(g.0.capacity() as u64, Relaxed);
        }
        if raw.len() >= CHUNK_RAW || (force && *raw_entries > 0) {
            w.write_chunk(raw, *raw_entries)?;
            raw.clear();
            *raw_entries = 0;
        }
        Ok(())
    };
    srv.snap.current_keys.store(0, Relaxed);
    for s in 0..ks.num_shards() {
        for db in 0..ks.num_dbs() {
            loop {
                let done = ks.lock(s).dbs[db].snapshot_step(WALK_SLICE);
                drain(&mut w, &mut raw, &mut raw_entries, false)?;
                if done {
                    break;
                }
            }
        }
        srv.snap.current_keys.store(w.keys + raw_entries, Relaxed);
    }
    // SWAPDB can move a table the walk already passed to an index it has
    // not, or back; sweep until no table has a hook left.
    loop {
        let mut active = false;
        for s in 0..ks.num_shards() {
            let mut g = ks.lock(s);
            for d in g.dbs.iter_mut() {
                while !d.snapshot_step(usize::MAX) {}
                active |= d.snapshot_active();
            }
        }
        if !active {
            break;
        }
    }
    drain(&mut w, &mut raw, &mut raw_entries, true)?;
    let mut totals = [0u8; 16];
    totals[0..8].copy_from_slice(&w.keys.to_le_bytes());
    totals[8..16].copy_from_slice(&w.chunks.to_le_bytes());
    w.crc_totals.update(&totals);
    let crc = w.crc_totals.clone().finalize();
    let mut t = [0u8; 32];
    t[12..16].copy_from_slice(&crc.to_le_bytes());
    t[16..32].copy_from_slice(&totals);
    w.file.write_all(&t)?;
    let f = w.file.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    Ok(())
}

/// Loads a snapshot into the (empty) keyspace, decoding chunks on every
/// core. Returns (keys, covered log position).
pub fn load(srv: &Shared, path: &Path) -> Result<(u64, u64), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: the file is ours (data dir locked) and not modified while
    // mapped; it was renamed into place complete and fsynced.
    let map = unsafe { memmap2::Mmap::map(&file) }
        .map_err(|e| format!("{}: mmap: {e}", path.display()))?;
    let b: &[u8] = &map;
    let at = |off: usize, what: &str| format!("{}: offset {off}: {what}", path.display());
    if b.len() < HEADER_LEN + 32 || &b[0..8] != MAGIC {
        return Err(at(0, "not a Basalt snapshot (bad magic or too short)"));
    }
    let version = u32::from_le_bytes(b[8..12].try_into().unwrap_or_default());
    if version != VERSION {
        return Err(at(8, &format!("unsupported snapshot version {version}")));
    }
    let covered = u64::from_le_bytes(b[16..24].try_into().unwrap_or_default());
    // Index the chunks (headers only), checking every length first.
    let mut chunks: Vec<(usize, usize, usize, u32)> = Vec::new();
    let mut pos = HEADER_LEN;
    let mut crc_totals = crc32fast::Hasher::new();
    let (keys, nchunks) = loop {
        let h = b
            .get(pos..pos + CHUNK_HEADER_LEN)
            .ok_or_else(|| at(pos, "truncated (no trailer)"))?;
        let comp = u32::from_le_bytes(h[0..4].try_into().unwrap_or_default()) as usize;
        let raw = u32::from_le_bytes(h[4..8].try_into().unwrap_or_default()) as usize;
        let entries = u32::from_le_bytes(h[8..12].try_into().unwrap_or_default());
        let crc = u32::from_le_bytes(h[12..16].try_into().unwrap_or_default());
        if comp == 0 && raw == 0 && entries == 0 {
            let totals = b
                .get(pos + 16..pos + 32)
                .ok_or_else(|| at(pos, "truncated trailer"))?;
            crc_totals.update(totals);
            if crc_totals.finalize() != crc {
                return Err(at(pos, "trailer checksum mismatch"));
            }
            let keys = u64::from_le_bytes(totals[0..8].try_into().unwrap_or_default());
            let n = u64::from_le_bytes(totals[8..16].try_into().unwrap_or_default());
            break (keys, n);
        }
        if comp > MAX_CHUNK || raw > MAX_CHUNK {
            return Err(at(
                pos,
                &format!("chunk length {comp}/{raw} exceeds the limit"),
            ));
        }
        crc_totals.update(h);
        let start = pos + CHUNK_HEADER_LEN;
        if start + comp > b.len() {
            return Err(at(pos, "chunk runs past the end of the file"));
        }
        chunks.push((start, comp, raw, crc));
        pos = start + comp;
    };
    if nchunks != chunks.len() as u64 {
        return Err(at(pos, "chunk count does not match the trailer"));
    }
    let lim = srv.config.read().limits;
    // Loaded keys start with the current access clock (or the initial LFU
    // counter), as objects Redis creates while loading.
    let fresh = srv.evict.stamp(unix_ms()).fresh();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(chunks.len().max(1));
    let next = AtomicU64::new(0);
    let loaded = AtomicU64::new(0);
    let err: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|sc| {
        for _ in 0..threads {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, Relaxed) as usize;
                let Some(&(start, comp, raw, crc)) = chunks.get(i) else {
                    break;
                };
                if err.lock().is_some() {
                    break;
                }
                let r = load_chunk(
                    &srv.ks,
                    &b[start..start + comp],
                    raw,
                    crc,
                    srv.ks.num_dbs(),
                    &lim,
                    fresh,
                );
                match r {
                    Ok(n) => {
                        loaded.fetch_add(n, Relaxed);
                        srv.loading_progress.fetch_add(n, Relaxed);
                    }
                    Err(e) => {
                        *err.lock() = Some(at(start - CHUNK_HEADER_LEN, &e));
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = err.into_inner() {
        return Err(e);
    }
    let n = loaded.load(Relaxed);
    if n != keys {
        return Err(at(
            pos,
            &format!("trailer says {keys} keys, chunks held {n}"),
        ));
    }
    Ok((n, covered))
}

fn load_chunk(
    ks: &Keyspace,
    comp: &[u8],
    raw_len: usize,
    crc: u32,
    ndb: usize,
    lim: &basalt_storage::Limits,
    fresh: u32,
) -> Result<u64, String> {
    if crc32fast::hash(comp) != crc {
        return Err("chunk checksum mismatch".into());
    }
    let raw = zstd::bulk::decompress(comp, raw_len)
        .map_err(|e| format!("chunk does not decompress: {e}"))?;
    if raw.len() != raw_len {
        return Err("chunk size differs from its header".into());
    }
    let mut pos = 0;
    let mut n = 0;
    while pos < raw.len() {
        let (db, key, mut entry) = decode_entry(&raw, &mut pos, lim)?;
        entry.lru = fresh;
        if db as usize >= ndb {
            return Err(format!(
                "entry for db {db}, but only {ndb} databases are configured"
            ));
        }
        let h = Keyspace::hash(key);
        ks.lock(ks.shard_of(h)).dbs[db as usize].insert(h, key, entry);
        n += 1;
    }
    Ok(n)
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
}
