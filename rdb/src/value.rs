//! The neutral value model: what a dump holds, independent of how Redis
//! encoded it on disk and of how any server keeps it in memory.
//!
//! Byte strings are `Vec<u8>` (binary safe). Collections keep the order in
//! which the file stored them; callers that need Redis order (sets are
//! unordered, sorted sets are stored highest-first by Redis 5+ for skiplist
//! encodings) sort themselves.

/// A key's value.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// A string (integer-encoded strings are given as their decimal text).
    String(Vec<u8>),
    /// A list, head first.
    List(Vec<Vec<u8>>),
    /// A set, in file order.
    Set(Vec<Vec<u8>>),
    /// A sorted set: (member, score), in file order.
    SortedSet(Vec<(Vec<u8>, f64)>),
    /// A hash, in file order, with optional per-field expiry.
    Hash(Vec<HashField>),
    /// A stream with its consumer groups.
    Stream(Box<Stream>),
    /// Module data, kept opaque.
    Module(Box<ModuleValue>),
    /// A Redis 8.8 sparse array (RDB type 28, `REDIS` 14): read, never
    /// written (no target of the writer holds it).
    Array(Box<Array>),
    /// A Valkey 9.2 path hash (RDB type 23 under `VALKEY` 81, `TYPE`
    /// reply `path-hash`): read, never written (no target of the writer
    /// holds it).
    PathHash(Box<PathHash>),
}

impl Value {
    /// The Redis type name (`TYPE` command), e.g. `"zset"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::SortedSet(_) => "zset",
            Value::Hash(_) => "hash",
            Value::Stream(_) => "stream",
            Value::Module(_) => "module",
            Value::Array(_) => "array",
            Value::PathHash(_) => "path-hash",
        }
    }

    /// True for a set or sorted set holding a member twice, or a hash
    /// holding a field twice: not a value Redis can hold (it refuses such
    /// plain-encoded collections when loading; compact ones pass unless
    /// `sanitize-dump-payload` is on). A converter should refuse them.
    pub fn has_duplicates(&self) -> bool {
        match self {
            Value::Set(v) => has_duplicate(v.iter().map(Vec::as_slice)),
            Value::Hash(v) => has_duplicate(v.iter().map(|f| f.field.as_slice())),
            Value::SortedSet(v) => has_duplicate(v.iter().map(|(m, _)| m.as_slice())),
            Value::PathHash(p) => p.has_duplicates(),
            _ => false,
        }
    }

    /// True for an empty collection (Redis skips such keys when loading).
    /// Strings, streams and module values are never "empty" in this sense,
    /// nor are arrays: an array with no elements can still carry an insert
    /// cursor, and whether Redis 8.8 drops such a key on load could not be
    /// checked, so the reader reports it rather than drop it. A path hash
    /// with no paths is kept too: Valkey 9.2 keeps such a key after its last
    /// path is deleted (`EXISTS` 1, `PHCARD` 0, in valkey's
    /// `tests/unit/type/path_hash.tcl`), and its `rdbLoadObject` accepts a
    /// path count of 0 (valkey-io/valkey at 8c15031e).
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::List(v) | Value::Set(v) => v.is_empty(),
            Value::SortedSet(v) => v.is_empty(),
            Value::Hash(v) => v.is_empty(),
            Value::String(_)
            | Value::Stream(_)
            | Value::Module(_)
            | Value::Array(_)
            | Value::PathHash(_) => false,
        }
    }
}

/// True when two of `items` are equal: pairwise for the usual few items,
/// sorted beyond.
pub(crate) fn has_duplicate<'a>(items: impl ExactSizeIterator<Item = &'a [u8]> + Clone) -> bool {
    let n = items.len();
    if n <= 16 {
        let mut rest = items;
        while let Some(a) = rest.next() {
            if rest.clone().any(|b| b == a) {
                return true;
            }
        }
        false
    } else {
        let mut v: Vec<&[u8]> = items.collect();
        v.sort_unstable();
        v.windows(2).any(|w| w.first() == w.get(1))
    }
}

/// A Valkey 9.2 path hash: binary-safe paths (the empty path included),
/// each holding a hash of at least one field. Valkey keeps the paths in a
/// radix tree and writes them in byte order; both are kept here in file
/// order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PathHash {
    /// (path, its fields), in file order.
    pub paths: Vec<(Vec<u8>, PathFields)>,
}

/// One path's fields in a [`PathHash`]: (field, value), in file order.
pub type PathFields = Vec<(Vec<u8>, Vec<u8>)>;

impl PathHash {
    /// The number of fields over all paths (`PHCARD` counts paths).
    pub fn field_count(&self) -> usize {
        self.paths.iter().map(|(_, f)| f.len()).sum()
    }

    /// True when a path appears twice, a path holds a field twice, or a
    /// path holds no field: none of these can be loaded by Valkey.
    pub fn has_duplicates(&self) -> bool {
        has_duplicate(self.paths.iter().map(|(p, _)| p.as_slice()))
            || self
                .paths
                .iter()
                .any(|(_, f)| f.is_empty() || has_duplicate(f.iter().map(|(k, _)| k.as_slice())))
    }
}

/// A Redis 8.8 array: a sparse array of values indexed by `u64`.
///
/// Only the elements that are set are stored, as (index, element) in
/// strictly increasing index order (the reader refuses anything else, as
/// Redis's loader refuses a repeated index).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Array {
    /// The array's insert cursor (where an append without an index goes),
    /// when the dump records one.
    pub insert_idx: Option<u64>,
    /// The elements that are set, by increasing index.
    pub elements: Vec<(u64, ArrayElem)>,
}

/// One element of an [`Array`]. Redis stores a short string inline
/// (`SMALLSTR`) or as an sds (`SDS`); both are [`ArrayElem::Str`] here, as
/// the model keeps no encodings.
///
/// Equality compares doubles bit for bit: `-0.0` differs from `0.0`, and a
/// NaN equals itself (the same stored element decoded twice is equal).
#[derive(Debug, Clone)]
pub enum ArrayElem {
    /// A byte string.
    Str(Vec<u8>),
    /// A 64-bit signed integer.
    Int(i64),
    /// A double (any bit pattern the file holds, `-0.0` and infinities
    /// included).
    Float(f64),
}

impl PartialEq for ArrayElem {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ArrayElem::Str(a), ArrayElem::Str(b)) => a == b,
            (ArrayElem::Int(a), ArrayElem::Int(b)) => a == b,
            (ArrayElem::Float(a), ArrayElem::Float(b)) => a.to_bits() == b.to_bits(),
            _ => false,
        }
    }
}

impl Eq for ArrayElem {}

impl ArrayElem {
    /// The element as the text a client would see: strings as they are,
    /// integers in decimal, doubles as [`format_array_double`] writes them.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            ArrayElem::Str(s) => s.clone(),
            ArrayElem::Int(i) => itoa::Buffer::new().format(*i).as_bytes().to_vec(),
            ArrayElem::Float(f) => format_array_double(*f).into_bytes(),
        }
    }
}

/// A double as text: `inf`, `-inf`, `nan`; integral values of magnitude
/// below 2^53 as integers (`42`, `-0`); anything else as the shortest
/// decimal that reads back to the same double, plain for decimal exponents
/// -6 to 20 (`1.5`, `0.001`, `123456789012345680000`) and with an exponent
/// beyond, as JavaScript chooses (`1e-7`, `1.5e300`). Not checked byte for
/// byte against a Redis 8.8 reply (none was available); every output
/// parses back to the same double (but for NaN's payload).
pub fn format_array_double(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if f.abs() < EXACT && (f as i64) as f64 == f {
        return itoa::Buffer::new().format(f as i64).to_string();
    }
    // Both of Rust's forms give the shortest round-trip digits.
    let exp_form = format!("{f:e}");
    let exp: i32 = exp_form
        .rsplit_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    if (-6..21).contains(&exp) {
        format!("{f}")
    } else {
        exp_form
    }
}

/// One hash field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashField {
    /// Field name.
    pub field: Vec<u8>,
    /// Field value.
    pub value: Vec<u8>,
    /// Absolute expiry in Unix milliseconds (Redis 7.4+ / Valkey 9 hash
    /// field expiration), if any.
    pub expire_ms: Option<u64>,
}

impl HashField {
    /// A field without expiry.
    pub fn new(field: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        HashField {
            field: field.into(),
            value: value.into(),
            expire_ms: None,
        }
    }
}

/// A stream entry ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// Build an ID.
    pub const fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }

    /// The 16-byte big-endian form used as radix-tree key and in PELs.
    pub fn to_be_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    /// Parse the 16-byte big-endian form.
    pub fn from_be_bytes(b: [u8; 16]) -> Self {
        let mut ms = [0u8; 8];
        let mut seq = [0u8; 8];
        ms.copy_from_slice(&b[..8]);
        seq.copy_from_slice(&b[8..]);
        StreamId {
            ms: u64::from_be_bytes(ms),
            seq: u64::from_be_bytes(seq),
        }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One stream entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    /// Entry ID.
    pub id: StreamId,
    /// Field/value pairs in stored order.
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A stream value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stream {
    /// Live entries in ID order (deleted entries are not listed).
    pub entries: Vec<StreamEntry>,
    /// Number of entries (as stored).
    pub length: u64,
    /// Last ID ever generated.
    pub last_id: StreamId,
    /// Recorded first entry ID (RDB type STREAM_LISTPACKS_2+; `None` when
    /// the file does not store it).
    pub first_id: Option<StreamId>,
    /// Largest deleted ID (STREAM_LISTPACKS_2+).
    pub max_deleted_id: Option<StreamId>,
    /// Entries ever added (STREAM_LISTPACKS_2+).
    pub entries_added: Option<u64>,
    /// Consumer groups in stored order.
    pub groups: Vec<ConsumerGroup>,
    /// Number of listpack nodes the file used (informative).
    pub listpack_nodes: u64,
    /// The file's node layout, in order: each node's master ID and its
    /// number of entries, deleted ones included. Empty when unknown (a
    /// value built in memory); the writer then chooses its own split.
    /// When present and consistent with `entries` + `deleted`, the writer
    /// reproduces it exactly (so trimming with `~` and XINFO's radix-tree
    /// figures stay as they were).
    pub nodes: Vec<StreamNode>,
    /// Entries marked deleted inside the file's nodes (tombstones), in ID
    /// order. Not part of the stream's contents.
    pub deleted: Vec<StreamEntry>,
    /// Idempotent-producer state (RDB type STREAM_LISTPACKS_4+, Redis 8.6);
    /// `None` when the file does not store it.
    pub idmp: Option<Box<StreamIdmp>>,
}

/// One listpack node of a stream as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamNode {
    /// The node's master ID (its radix-tree key).
    pub master: StreamId,
    /// Entries in the node, deleted ones included.
    pub entries: u64,
}

/// A stream's idempotent-producer (IDMP, `XADD ... IDMP`) state, Redis 8.6+.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamIdmp {
    /// How long an idempotent ID is kept, in seconds (`IDMP-DURATION`).
    pub duration: u64,
    /// IDs kept per producer (`IDMP-MAXSIZE`).
    pub max_entries: u64,
    /// Producers in stored order.
    pub producers: Vec<IdmpProducer>,
    /// All-time count of entries added with an idempotent ID.
    pub iids_added: u64,
    /// All-time count of duplicate idempotent IDs detected.
    pub iids_duplicates: u64,
}

impl StreamIdmp {
    /// True when the state holds tracked IDs or counters (more than the
    /// configuration alone).
    pub fn has_state(&self) -> bool {
        self.iids_added != 0
            || self.iids_duplicates != 0
            || self.producers.iter().any(|p| !p.entries.is_empty())
    }
}

/// One idempotent producer: its ID and the idempotent IDs it has used,
/// each with the stream entry it produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdmpProducer {
    /// Producer ID.
    pub pid: Vec<u8>,
    /// (idempotent ID, entry ID) in stored order.
    pub entries: Vec<(Vec<u8>, StreamId)>,
}

/// A consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroup {
    /// Group name.
    pub name: Vec<u8>,
    /// Last delivered ID.
    pub last_delivered_id: StreamId,
    /// Logical read counter (STREAM_LISTPACKS_2+; `None` if not stored or
    /// stored as "invalid").
    pub entries_read: Option<u64>,
    /// Group pending-entries list, in ID order.
    pub pel: Vec<PendingEntry>,
    /// Consumers in stored order.
    pub consumers: Vec<Consumer>,
    /// PEL entries negatively acknowledged (`XNACK`): pending, owned by no
    /// consumer (STREAM_LISTPACKS_5, Redis 8.8). Empty otherwise.
    pub nacked: Vec<StreamId>,
}

/// A pending entry of a group's PEL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    /// Entry ID.
    pub id: StreamId,
    /// Last delivery time, Unix ms.
    pub delivery_time_ms: i64,
    /// Number of deliveries.
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// Consumer name.
    pub name: Vec<u8>,
    /// Last time seen, Unix ms.
    pub seen_time_ms: i64,
    /// Last successful activity, Unix ms (STREAM_LISTPACKS_3+).
    pub active_time_ms: Option<i64>,
    /// IDs of the group PEL entries this consumer owns.
    pub pel: Vec<StreamId>,
}

/// Module data, reported with the module's type name and kept as raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleValue {
    /// The 64-bit module type ID as stored.
    pub id: u64,
    /// The 9-character module type name decoded from the ID.
    pub name: String,
    /// The module's encoding version (low 10 bits of the ID).
    pub encver: u16,
    /// The opcode-tagged module payload exactly as stored after the ID, up
    /// to and including the EOF opcode.
    pub raw: Vec<u8>,
}

/// A key with its value and metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Database number (SELECTDB).
    pub db: u64,
    /// Key bytes.
    pub key: Vec<u8>,
    /// Value.
    pub value: Value,
    /// Absolute expiry, Unix ms (seconds opcodes are multiplied by 1000).
    pub expire_ms: Option<i64>,
    /// LRU idle time in seconds (IDLE opcode).
    pub lru_idle: Option<u64>,
    /// LFU counter (FREQ opcode).
    pub lfu_freq: Option<u8>,
    /// On-disk value type byte (informative; 0 for values built by callers).
    pub rdb_type: u8,
}

impl Entry {
    /// A key in db 0 without expiry or eviction metadata.
    pub fn new(key: impl Into<Vec<u8>>, value: Value) -> Self {
        Entry {
            db: 0,
            key: key.into(),
            value,
            expire_ms: None,
            lru_idle: None,
            lfu_freq: None,
            rdb_type: 0,
        }
    }
}

/// A function library (Redis 7.0+).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// Library name (from the `#!engine name=...` line, or stored
    /// separately in the pre-GA format).
    pub library: Vec<u8>,
    /// Engine name, e.g. `LUA`.
    pub engine: Vec<u8>,
    /// Full library code including the shebang line, as Redis 7.0 GA keeps
    /// it. For the pre-GA format the shebang is synthesised as Redis does:
    /// `#!<engine> name=<library>\n<code>`.
    pub code: Vec<u8>,
    /// Description (pre-GA format only).
    pub description: Option<Vec<u8>>,
    /// True when read from the pre-GA opcode 246.
    pub pre_ga: bool,
}

impl Function {
    /// Build from GA library code, parsing the shebang for engine and name.
    /// Returns `None` if the code does not start with `#!<engine> name=<lib>`.
    pub fn from_code(code: Vec<u8>) -> Option<Function> {
        let (engine, library) = shebang(&code)?;
        let (engine, library) = (engine.to_vec(), library.to_vec());
        Some(Function {
            library,
            engine,
            code,
            description: None,
            pre_ga: false,
        })
    }

    /// True when the code's shebang names this library and engine, so that
    /// written as GA code (opcode 245) it reads back as the same library.
    /// A pre-GA library (opcode 246) stores name and engine apart, and a
    /// name with a space or a newline, or an empty one, cannot be.
    pub fn code_names_itself(&self) -> bool {
        shebang(&self.code) == Some((&self.engine[..], &self.library[..]))
    }
}

/// Engine and library name from `#!<engine> ... name=<library> ...`.
fn shebang(code: &[u8]) -> Option<(&[u8], &[u8])> {
    let line_end = code.iter().position(|&b| b == b'\n').unwrap_or(code.len());
    let line = code.get(..line_end)?;
    let rest = line.strip_prefix(b"#!")?;
    let mut parts = rest.split(|&b| b == b' ').filter(|p| !p.is_empty());
    let engine = parts.next()?;
    let library = parts.find_map(|p| p.strip_prefix(b"name="))?;
    Some((engine, library))
}
