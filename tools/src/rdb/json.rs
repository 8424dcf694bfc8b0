//! JSON in the corpus schema (`shared/rdb-corpus/README.md`), written by
//! hand into a byte buffer: one key record is one line, fast enough to keep
//! up with the reader.
//!
//! **Bytes** (keys, values, members, fields, names) are a JSON string when
//! the bytes are UTF-8 without C0 controls or DEL, `{"b64": ...}` otherwise,
//! and `{"len": N, "sha256": hex}` beyond 16384 bytes unless full values
//! were asked for.

use basalt_rdb::{ArrayElem, Entry, Function, StreamId, Value};
use base64::Engine;
use sha2::{Digest, Sha256};

/// Longest byte string written in full under the corpus convention.
pub const SUMMARY_OVER: usize = 16384;

const ESC: u8 = 1;
const CTRL: u8 = 2;
const HIGH: u8 = 4;

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Non-zero iff some lane (byte) of `x` is below `n`, for n <= 128. A
/// borrow leaves a lane only if that lane is below `n` (plus an incoming
/// borrow, itself caused by a lower lane below `n`), so a flagged lane
/// implies a true one; lanes >= 0x80 never borrow and are never flagged.
#[inline(always)]
fn lanes_below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(LO * u64::from(n)) & !x & HI
}

/// Non-zero iff some lane of `x` equals `c`.
#[inline(always)]
fn lanes_eq(x: u64, c: u8) -> u64 {
    lanes_below(x ^ (LO * u64::from(c)), 1)
}

/// CTRL | ESC | HIGH for `b`, sixteen bytes at a time with SSE2 (part of
/// every x86_64 CPU). Measured on `dump --format jsonl` of the benchmark
/// dump (values of 40-170 bytes): the eight-bytes-at-a-time [`classify_swar`]
/// took about 1.5x as long per string, and the compiler's own vectorisation
/// of a plain loop was slower still.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
fn classify(b: &[u8]) -> u8 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_set_epi64x, _mm_setzero_si128,
    };
    #[inline(always)]
    fn word(c: &[u8]) -> i64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        i64::from_le_bytes(a)
    }
    // SAFETY: these intrinsics only need SSE2, which the cfg above
    // guarantees is enabled for the whole build; they take no pointers.
    unsafe {
        let (mut ctrl, mut esc, mut high) = (
            _mm_setzero_si128(),
            _mm_setzero_si128(),
            _mm_setzero_si128(),
        );
        let mut step = |x: __m128i| {
            high = _mm_or_si128(high, x);
            // x <= 0x1f (unsigned) or x == DEL.
            let low = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
            let del = _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f));
            ctrl = _mm_or_si128(ctrl, _mm_or_si128(low, del));
            let q = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8));
            let bs = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8));
            esc = _mm_or_si128(esc, _mm_or_si128(q, bs));
        };
        let n = b.len();
        if n >= 16 {
            let mut chunks = b.chunks_exact(16);
            for c in &mut chunks {
                step(_mm_set_epi64x(word(&c[8..]), word(&c[..8])));
            }
            if !chunks.remainder().is_empty() {
                // The last sixteen bytes, overlapping ones already seen:
                // the classes are "any byte is", so that is harmless.
                let t = &b[n - 16..];
                step(_mm_set_epi64x(word(&t[8..]), word(&t[..8])));
            }
        } else if n >= 8 {
            step(_mm_set_epi64x(word(&b[n - 8..]), word(&b[..8])));
        } else if n > 0 {
            // Short: pad with 'a', which is in no class (a byte loop: a
            // variable-length copy is a libc call).
            let mut w = u64::from_le_bytes([b'a'; 8]);
            for (i, &c) in b.iter().enumerate() {
                w = (w & !(0xff << (8 * i))) | (u64::from(c) << (8 * i));
            }
            step(_mm_set_epi64x(w as i64, w as i64));
        }
        let mut flags = 0;
        if _mm_movemask_epi8(high) != 0 {
            flags |= HIGH;
        }
        if _mm_movemask_epi8(ctrl) != 0 {
            flags |= CTRL;
        }
        if _mm_movemask_epi8(esc) != 0 {
            flags |= ESC;
        }
        flags
    }
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
fn classify(b: &[u8]) -> u8 {
    classify_swar(b)
}

/// CTRL | ESC | HIGH for `b`, eight bytes at a time: keys and values are
/// mostly a few dozen bytes, too short for the compiler's vector loop to
/// pay off, and profiling showed the per-byte tail dominating `bytes`.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
#[inline]
fn classify_swar(b: &[u8]) -> u8 {
    let (mut ctrl, mut esc, mut high) = (0u64, 0u64, 0u64);
    let mut word = |x: u64| {
        high |= x & HI;
        ctrl |= lanes_below(x, 0x20) | lanes_eq(x, 0x7f);
        esc |= lanes_eq(x, b'"') | lanes_eq(x, b'\\');
    };
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        word(u64::from_le_bytes(a));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let w = if b.len() >= 8 {
            // The last eight bytes, overlapping ones already seen: the
            // classes are "any byte is", so seeing a byte twice is harmless.
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[b.len() - 8..]);
            u64::from_le_bytes(a)
        } else {
            // Short: pad with 'a', which is in no class. (A byte loop: a
            // variable-length copy here was a libc memcpy call and showed
            // as a quarter of this function's samples.)
            let mut w = u64::from_le_bytes([b'a'; 8]);
            for (i, &c) in rest.iter().enumerate() {
                w = (w & !(0xff << (8 * i))) | (u64::from(c) << (8 * i));
            }
            w
        };
        word(w);
    }
    let mut flags = 0;
    if high != 0 {
        flags |= HIGH;
    }
    if ctrl != 0 {
        flags |= CTRL;
    }
    if esc != 0 {
        flags |= ESC;
    }
    flags
}

/// Scores that are a multiple of 1/16 and below this print without ryu
/// (see [`Json::score`]).
const SIXTEENTHS_BELOW: f64 = (1u64 << 40) as f64;

/// A JSON writer appending to a buffer.
pub struct Json {
    /// The output so far.
    pub out: Vec<u8>,
    /// Write every byte string in full (no len/sha256 summaries).
    pub full: bool,
    /// Precomputed record text.
    parts: RecordParts,
    /// Reused index vector for sorting a collection's elements.
    order: Vec<usize>,
}

/// Constant parts of key records, built on first use.
#[derive(Default)]
struct RecordParts {
    /// The db whose prefix is in `db_prefix`.
    db: Option<u64>,
    /// `{"db":N,"key":`.
    db_prefix: Vec<u8>,
    /// Per RDB type byte: `,"rdb_type":N,"rdb_type_name":"NAME"`.
    rdb_type: Vec<Vec<u8>>,
}

/// `,"type":"T","expire_ms":` for a value (`None` for a kind added to the
/// model later: the caller writes its name).
fn type_part(v: &Value) -> Option<&'static str> {
    Some(match v {
        Value::String(_) => ",\"type\":\"string\",\"expire_ms\":",
        Value::List(_) => ",\"type\":\"list\",\"expire_ms\":",
        Value::Set(_) => ",\"type\":\"set\",\"expire_ms\":",
        Value::SortedSet(_) => ",\"type\":\"zset\",\"expire_ms\":",
        Value::Hash(_) => ",\"type\":\"hash\",\"expire_ms\":",
        Value::Stream(_) => ",\"type\":\"stream\",\"expire_ms\":",
        Value::Module(_) => ",\"type\":\"module\",\"expire_ms\":",
        Value::Array(_) => ",\"type\":\"array\",\"expire_ms\":",
        Value::PathHash(_) => ",\"type\":\"path-hash\",\"expire_ms\":",
        _ => return None,
    })
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(char::from(b"0123456789abcdef"[usize::from(x >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(x & 15)]));
    }
    s
}

impl Json {
    /// An empty writer.
    pub fn new(full: bool) -> Json {
        Json {
            out: Vec::with_capacity(1 << 16),
            full,
            parts: RecordParts::default(),
            order: Vec::new(),
        }
    }

    /// Raw text.
    pub fn raw(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
    }

    /// An integer.
    pub fn int(&mut self, v: impl itoa::Integer) {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    /// An optional integer (`null` for `None`).
    pub fn opt_int(&mut self, v: Option<impl itoa::Integer>) {
        match v {
            Some(v) => self.int(v),
            None => self.raw("null"),
        }
    }

    /// A JSON string from text (escaped).
    pub fn str(&mut self, s: &str) {
        self.out.push(b'"');
        for &b in s.as_bytes() {
            match b {
                b'"' => self.out.extend_from_slice(b"\\\""),
                b'\\' => self.out.extend_from_slice(b"\\\\"),
                0..=0x1f | 0x7f => {
                    self.out
                        .extend_from_slice(format!("\\u{:04x}", b).as_bytes());
                }
                _ => self.out.push(b),
            }
        }
        self.out.push(b'"');
    }

    /// Bytes under the corpus convention.
    pub fn bytes(&mut self, b: &[u8]) {
        if !self.full && b.len() > SUMMARY_OVER {
            self.raw("{\"len\":");
            self.int(b.len());
            self.raw(",\"sha256\":\"");
            self.raw(&hex(&Sha256::digest(b)));
            self.raw("\"}");
            return;
        }
        let flags = classify(b);
        let text = flags & CTRL == 0 && (flags & HIGH == 0 || std::str::from_utf8(b).is_ok());
        if text {
            self.out.push(b'"');
            if flags & ESC == 0 {
                self.out.extend_from_slice(b);
            } else {
                let mut start = 0;
                for (i, &c) in b.iter().enumerate() {
                    if c == b'"' || c == b'\\' {
                        self.out.extend_from_slice(&b[start..i]);
                        self.out.push(b'\\');
                        self.out.push(c);
                        start = i + 1;
                    }
                }
                self.out.extend_from_slice(&b[start..]);
            }
            self.out.push(b'"');
        } else {
            self.raw("{\"b64\":\"");
            let n = self.out.len();
            self.out.resize(n + b.len().div_ceil(3) * 4, 0);
            let w = base64::engine::general_purpose::STANDARD
                .encode_slice(b, &mut self.out[n..])
                .unwrap_or(0);
            self.out.truncate(n + w);
            self.raw("\"}");
        }
    }

    /// A zset score: shortest round-trip double, or `"inf"` / `"-inf"`.
    pub fn score(&mut self, s: f64) {
        if s == f64::INFINITY {
            self.raw("\"inf\"");
        } else if s == f64::NEG_INFINITY {
            self.raw("\"-inf\"");
        } else if s.is_nan() {
            self.raw("\"nan\"");
        } else {
            // Redis returns -0 as 0.
            let s = if s == 0.0 { 0.0 } else { s };
            // Integrality by a round trip through an integer, not fract()
            // (trunc is a libm call without SSE4.1).
            let a = s.abs();
            let a16 = a * 16.0; // exact: a power of two
            if a < 1e15 && (a as u64) as f64 == a {
                // Integral scores (counts, timestamps) are the common case:
                // the same text as ryu's ("42.0"), at itoa's cost.
                self.int(s as i64);
                self.raw(".0");
            } else if a < SIXTEENTHS_BELOW && (a16 as u64) as f64 == a16 {
                // Sixteenths (halves, quarters: scores from averages or
                // ratings): their exact decimal, at most 4 fraction digits,
                // is the shortest text that reads back (the spacing of
                // doubles below 2^40 is under 2^-12, so no shorter decimal
                // rounds to the same double), which is what ryu prints.
                if s < 0.0 {
                    self.out.push(b'-');
                }
                let n = a16 as u64;
                self.int(n >> 4);
                // 1..=15 sixteenths, as ten-thousandths (x 625).
                let mut frac = (n & 15) as u32 * 625;
                let mut digits = [b'.', b'0', b'0', b'0', b'0'];
                for d in digits[1..].iter_mut().rev() {
                    *d = b'0' + (frac % 10) as u8;
                    frac /= 10;
                }
                let len = digits.iter().rposition(|&d| d != b'0').unwrap_or(0) + 1;
                self.out.extend_from_slice(&digits[..len]);
            } else {
                self.out
                    .extend_from_slice(ryu::Buffer::new().format_finite(s).as_bytes());
            }
        }
    }

    fn id(&mut self, id: StreamId) {
        self.out.push(b'"');
        self.int(id.ms);
        self.out.push(b'-');
        self.int(id.seq);
        self.out.push(b'"');
    }

    fn opt_id(&mut self, id: Option<StreamId>) {
        match id {
            Some(i) => self.id(i),
            None => self.raw("null"),
        }
    }

    fn list<T>(&mut self, items: impl IntoIterator<Item = T>, mut f: impl FnMut(&mut Self, T)) {
        self.out.push(b'[');
        for (n, it) in items.into_iter().enumerate() {
            if n > 0 {
                self.raw(",");
            }
            f(self, it);
        }
        self.out.push(b']');
    }

    fn hash_field(&mut self, h: &basalt_rdb::HashField) {
        self.out.push(b'[');
        self.bytes(&h.field);
        self.raw(",");
        self.bytes(&h.value);
        if let Some(x) = h.expire_ms {
            self.raw(",");
            self.int(x);
        }
        self.out.push(b']');
    }

    /// A value in the corpus form (sets and hashes sorted by bytes, zsets
    /// in Redis order, streams with groups and consumers sorted by name).
    pub fn value(&mut self, v: &Value) {
        match v {
            Value::String(s) => self.bytes(s),
            Value::List(items) => self.list(items, |j, i| j.bytes(i)),
            Value::Set(items) => {
                // Most small sets come sorted (listpacks written in order):
                // no index vector then. Otherwise a reused one (intsets
                // are in numeric order, not byte order).
                if items.windows(2).all(|w| w[0] <= w[1]) {
                    self.list(items, |j, i| j.bytes(i));
                } else {
                    let mut order = std::mem::take(&mut self.order);
                    order.clear();
                    order.extend(0..items.len());
                    order.sort_unstable_by(|&a, &b| items[a].cmp(&items[b]));
                    self.list(&order, |j, &i| j.bytes(&items[i]));
                    self.order = order;
                }
            }
            Value::SortedSet(pairs) => {
                let cmp = |a: &(Vec<u8>, f64), b: &(Vec<u8>, f64)| {
                    a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0))
                };
                let pair = |j: &mut Self, (m, s): &(Vec<u8>, f64)| {
                    j.out.push(b'[');
                    j.bytes(m);
                    j.raw(",");
                    j.score(*s);
                    j.out.push(b']');
                };
                // Listpacks keep score order: usually no sorting at all.
                if pairs.windows(2).all(|w| cmp(&w[0], &w[1]).is_le()) {
                    self.list(pairs, pair);
                } else {
                    let mut order = std::mem::take(&mut self.order);
                    order.clear();
                    order.extend(0..pairs.len());
                    // Unstable is fine: equal keys are equal pairs.
                    order.sort_unstable_by(|&a, &b| cmp(&pairs[a], &pairs[b]));
                    self.list(&order, |j, &i| pair(j, &pairs[i]));
                    self.order = order;
                }
            }
            Value::Hash(fields) => {
                let mut f: Vec<_> = Vec::new();
                if fields.windows(2).all(|w| w[0].field <= w[1].field) {
                    self.list(fields, |j, h| j.hash_field(h));
                    return;
                }
                f.extend(fields.iter());
                f.sort_by(|a, b| a.field.cmp(&b.field));
                self.list(f, |j, h| j.hash_field(h));
            }
            Value::Stream(s) => self.stream(s),
            Value::Module(m) => {
                self.raw("{\"module\":");
                self.str(&m.name);
                self.raw(",\"encver\":");
                self.int(m.encver);
                self.raw(",\"raw\":");
                self.bytes(&m.raw);
                self.out.push(b'}');
            }
            Value::Array(a) => self.array(a),
            Value::PathHash(ph) => self.path_hash(ph),
            _ => self.raw("null"),
        }
    }

    /// A Redis 8.8 array in librdb's shape: `{"elements":[{"idx":"0",
    /// "val":"v"},...]}` in index order, plus `"insert_idx":"N"` when the
    /// dump records a cursor. Indexes are strings (no precision loss past
    /// 2^53); integers and doubles are their text (`"42"`, `"1.5"`, `"inf"`,
    /// see `basalt_rdb::format_array_double`), strings bytes as elsewhere.
    fn array(&mut self, a: &basalt_rdb::Array) {
        self.raw("{\"elements\":");
        self.list(&a.elements, |j, (idx, e)| {
            j.raw("{\"idx\":\"");
            j.int(*idx);
            j.raw("\",\"val\":");
            match e {
                ArrayElem::Str(b) => j.bytes(b),
                ArrayElem::Int(i) => {
                    j.out.push(b'"');
                    j.int(*i);
                    j.out.push(b'"');
                }
                ArrayElem::Float(f) => j.str(&basalt_rdb::format_array_double(*f)),
            }
            j.out.push(b'}');
        });
        if let Some(i) = a.insert_idx {
            self.raw(",\"insert_idx\":\"");
            self.int(i);
            self.out.push(b'"');
        }
        self.out.push(b'}');
    }

    /// A Valkey 9.2 path hash: `[{"path":P,"fields":[[F,V],...]},...]`,
    /// paths sorted by bytes and each path's fields as a hash's (sorted by
    /// field), so the same contents give the same text whatever the file
    /// order.
    fn path_hash(&mut self, ph: &basalt_rdb::PathHash) {
        let mut paths: Vec<_> = ph.paths.iter().collect();
        paths.sort_by(|a, b| a.0.cmp(&b.0));
        self.list(paths, |j, (path, fields)| {
            j.raw("{\"path\":");
            j.bytes(path);
            j.raw(",\"fields\":");
            let mut f: Vec<_> = fields.iter().collect();
            f.sort_by(|a, b| a.0.cmp(&b.0));
            j.list(f, |j, (k, v)| {
                j.out.push(b'[');
                j.bytes(k);
                j.out.push(b',');
                j.bytes(v);
                j.out.push(b']');
            });
            j.out.push(b'}');
        });
    }

    fn stream(&mut self, s: &basalt_rdb::Stream) {
        self.raw("{\"length\":");
        self.int(s.length);
        self.raw(",\"last_id\":");
        self.id(s.last_id);
        self.raw(",\"first_id\":");
        self.opt_id(s.first_id);
        self.raw(",\"max_deleted_id\":");
        self.opt_id(s.max_deleted_id);
        self.raw(",\"entries_added\":");
        self.opt_int(s.entries_added);
        self.raw(",\"listpack_nodes\":");
        self.int(s.listpack_nodes);
        self.raw(",\"entries\":");
        self.list(&s.entries, |j, e| {
            j.raw("{\"id\":");
            j.id(e.id);
            j.raw(",\"fields\":");
            j.list(&e.fields, |j, (f, v)| {
                j.out.push(b'[');
                j.bytes(f);
                j.raw(",");
                j.bytes(v);
                j.out.push(b']');
            });
            j.out.push(b'}');
        });
        let mut groups: Vec<_> = s.groups.iter().collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        self.raw(",\"groups\":");
        self.list(groups, |j, g| {
            j.raw("{\"name\":");
            j.bytes(&g.name);
            j.raw(",\"last_delivered_id\":");
            j.id(g.last_delivered_id);
            j.raw(",\"entries_read\":");
            j.opt_int(g.entries_read);
            let mut pel: Vec<_> = g.pel.iter().collect();
            pel.sort_by_key(|p| p.id);
            j.raw(",\"pel\":");
            j.list(pel, |j, p| {
                j.raw("{\"id\":");
                j.id(p.id);
                j.raw(",\"consumer\":");
                match g.consumers.iter().find(|c| c.pel.contains(&p.id)) {
                    Some(c) => j.bytes(&c.name),
                    None => j.raw("null"),
                }
                j.raw(",\"delivery_time_ms\":");
                j.int(p.delivery_time_ms);
                j.raw(",\"delivery_count\":");
                j.int(p.delivery_count);
                j.out.push(b'}');
            });
            let mut consumers: Vec<_> = g.consumers.iter().collect();
            consumers.sort_by(|a, b| a.name.cmp(&b.name));
            j.raw(",\"consumers\":");
            j.list(consumers, |j, c| {
                j.raw("{\"name\":");
                j.bytes(&c.name);
                j.raw(",\"seen_time_ms\":");
                j.int(c.seen_time_ms);
                if let Some(a) = c.active_time_ms {
                    j.raw(",\"active_time_ms\":");
                    j.int(a);
                }
                let mut ids = c.pel.clone();
                ids.sort_unstable();
                j.raw(",\"pel\":");
                j.list(ids, |j, i| j.id(i));
                j.out.push(b'}');
            });
            if !g.nacked.is_empty() {
                let mut ids = g.nacked.clone();
                ids.sort_unstable();
                j.raw(",\"nacked\":");
                j.list(ids, |j, i| j.id(i));
            }
            j.out.push(b'}');
        });
        if let Some(m) = s.idmp.as_deref() {
            self.raw(",\"idmp\":{\"duration_s\":");
            self.int(m.duration);
            self.raw(",\"max_entries\":");
            self.int(m.max_entries);
            self.raw(",\"iids_added\":");
            self.int(m.iids_added);
            self.raw(",\"iids_duplicates\":");
            self.int(m.iids_duplicates);
            self.raw(",\"producers\":");
            self.list(&m.producers, |j, p| {
                j.raw("{\"pid\":");
                j.bytes(&p.pid);
                j.raw(",\"entries\":");
                j.list(&p.entries, |j, (iid, id)| {
                    j.out.push(b'[');
                    j.bytes(iid);
                    j.raw(",");
                    j.id(*id);
                    j.out.push(b']');
                });
                j.out.push(b'}');
            });
            self.out.push(b'}');
        }
        self.out.push(b'}');
    }

    /// One key record: `key`, `type`, `expire_ms`, `value`, `rdb_type`,
    /// `rdb_type_name`, and `lru_idle_s` / `lfu_freq` when stored; `db`
    /// first when `with_db` (jsonl).
    ///
    /// The constant runs between the variable parts come from
    /// [`RecordParts`] (one copy each instead of several small appends and
    /// integer formatting): this runs once per key.
    pub fn key_record(&mut self, e: &Entry, with_db: bool) {
        let parts = &mut self.parts;
        if with_db {
            if parts.db != Some(e.db) {
                parts.db = Some(e.db);
                parts.db_prefix.clear();
                parts.db_prefix.extend_from_slice(b"{\"db\":");
                parts
                    .db_prefix
                    .extend_from_slice(itoa::Buffer::new().format(e.db).as_bytes());
                parts.db_prefix.extend_from_slice(b",\"key\":");
            }
            self.out.extend_from_slice(&parts.db_prefix);
        } else {
            self.raw("{\"key\":");
        }
        self.bytes(&e.key);
        match type_part(&e.value) {
            Some(p) => self.raw(p),
            None => {
                self.raw(",\"type\":\"");
                self.raw(e.value.type_name());
                self.raw("\",\"expire_ms\":");
            }
        }
        self.opt_int(e.expire_ms);
        self.raw(",\"value\":");
        self.value(&e.value);
        let parts = &mut self.parts;
        let t = usize::from(e.rdb_type);
        if parts.rdb_type.is_empty() {
            parts.rdb_type = (0..=255u8)
                .map(|t| {
                    format!(
                        ",\"rdb_type\":{t},\"rdb_type_name\":\"{}\"",
                        super::rdb_type_name(t)
                    )
                    .into_bytes()
                })
                .collect();
        }
        if matches!(e.value, Value::PathHash(_)) {
            // Type 23 is PATH_HASH only under VALKEY 81; the per-byte
            // table names both meanings.
            self.raw(",\"rdb_type\":23,\"rdb_type_name\":\"PATH_HASH\"");
        } else if let Some(p) = parts.rdb_type.get(t) {
            self.out.extend_from_slice(p);
        }
        if let Some(i) = e.lru_idle {
            self.raw(",\"lru_idle_s\":");
            self.int(i);
        }
        if let Some(f) = e.lfu_freq {
            self.raw(",\"lfu_freq\":");
            self.int(f);
        }
        self.out.push(b'}');
    }

    /// A function library: `{library, engine, functions, code}`.
    pub fn function(&mut self, f: &Function) {
        self.raw("{\"library\":");
        self.bytes(&f.library);
        self.raw(",\"engine\":");
        self.str(&String::from_utf8_lossy(&f.engine).to_uppercase());
        self.raw(",\"functions\":");
        let names = function_names(&f.code);
        self.list(names, |j, n| j.str(&n));
        self.raw(",\"code\":");
        self.bytes(&f.code);
        self.out.push(b'}');
    }
}

/// Names registered by a Lua library (`redis.register_function('name', ...)`
/// or `{function_name = 'name', ...}`), sorted.
pub fn function_names(code: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(code);
    let mut names = Vec::new();
    for (i, _) in text.match_indices("register_function") {
        let rest = text[i + "register_function".len()..].trim_start();
        let rest = if let Some(r) = rest.strip_prefix('(') {
            r.trim_start()
        } else if let Some(r) = rest.strip_prefix('{') {
            r.trim_start()
        } else {
            continue;
        };
        let rest = if rest.starts_with('{') || rest.starts_with("function_name") {
            let Some(p) = rest.find("function_name") else {
                continue;
            };
            match rest[p + "function_name".len()..]
                .trim_start()
                .strip_prefix('=')
            {
                Some(r) => r.trim_start(),
                None => continue,
            }
        } else {
            rest
        };
        let Some(q) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') else {
            continue;
        };
        if let Some(end) = rest[1..].find(q) {
            names.push(rest[1..1 + end].to_string());
        }
    }
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(b: &[u8]) -> u8 {
        let mut f = 0;
        if b.iter().any(|&c| c < 0x20 || c == 0x7f) {
            f |= CTRL;
        }
        if b.iter().any(|&c| c == b'"' || c == b'\\') {
            f |= ESC;
        }
        if b.iter().any(|&c| c >= 0x80) {
            f |= HIGH;
        }
        f
    }

    #[test]
    fn integral_scores_print_as_ryu_does() {
        for s in [
            0.0,
            1.0,
            -1.0,
            42.0,
            1_700_000_000_000.0,
            -999_999_999_999_999.0,
            999_999_999_999_999.0,
            1e15,
            1e16,
            2.5,
            -0.25,
        ] {
            let mut j = Json::new(false);
            j.score(s);
            let want = ryu::Buffer::new().format_finite(s).to_string();
            assert_eq!(String::from_utf8(j.out).unwrap(), want, "{s}");
        }
    }

    #[test]
    fn sixteenths_print_as_ryu_does() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let check = |s: f64| {
            let mut j = Json::new(false);
            j.score(s);
            // -0 prints as 0 (as Redis does).
            let want = ryu::Buffer::new()
                .format_finite(if s == 0.0 { 0.0 } else { s })
                .to_string();
            assert_eq!(String::from_utf8(j.out).unwrap(), want, "{s}");
        };
        for k in -4096i64..4096 {
            check(k as f64 / 16.0);
            check(k as f64 / 4.0 + 1e6);
        }
        let top = SIXTEENTHS_BELOW;
        for s in [
            top - 0.0625,
            top - 0.5,
            top + 0.5,
            -top + 0.25,
            1e12 + 0.75,
            0.0625,
        ] {
            check(s);
            check(-s);
        }
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let bits = 1 + (x % 44) as u32;
            let v = (x >> 20) % (1u64 << bits);
            check(v as f64 / 16.0);
            check(-(v as f64) / 16.0);
        }
    }

    #[test]
    fn classify_matches_a_byte_loop() {
        // Every byte value at every position of short strings, and
        // pseudo-random strings of every length up to 40.
        for len in 1..=33 {
            for pos in 0..len {
                for v in 0..=255u8 {
                    for fill in [b'a', 0x80, 0xff, 0x1f, b'"'] {
                        let mut b = vec![fill; len];
                        b[pos] = v;
                        assert_eq!(classify(&b), naive(&b), "{b:?}");
                        assert_eq!(classify_swar(&b), naive(&b), "{b:?}");
                    }
                }
            }
        }
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            let len = (x % 41) as usize;
            let b: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 56) as u8
                })
                .collect();
            assert_eq!(classify(&b), naive(&b), "{b:?}");
            assert_eq!(classify_swar(&b), naive(&b), "{b:?}");
        }
        assert_eq!(classify(b""), 0);
        assert_eq!(classify_swar(b""), 0);
    }
}
