//! JSON in the corpus schema (`shared/rdb-corpus/README.md`), written by
//! hand into a byte buffer: one key record is one line, fast enough to keep
//! up with the reader.
//!
//! **Bytes** (keys, values, members, fields, names) are a JSON string when
//! the bytes are UTF-8 without C0 controls or DEL, `{"b64": ...}` otherwise,
//! and `{"len": N, "sha256": hex}` beyond 16384 bytes unless full values
//! were asked for.

use basalt_rdb::{Entry, Function, StreamId, Value};
use base64::Engine;
use sha2::{Digest, Sha256};

/// Longest byte string written in full under the corpus convention.
pub const SUMMARY_OVER: usize = 16384;

const ESC: u8 = 1;
const CTRL: u8 = 2;
const HIGH: u8 = 4;

/// A JSON writer appending to a buffer.
pub struct Json {
    /// The output so far.
    pub out: Vec<u8>,
    /// Write every byte string in full (no len/sha256 summaries).
    pub full: bool,
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
        // One branch-free pass (vectorised) classifies the bytes.
        let (mut ctrl, mut esc, mut high) = (false, false, false);
        for &c in b {
            ctrl |= (c < 0x20) | (c == 0x7f);
            esc |= (c == b'"') | (c == b'\\');
            high |= c >= 0x80;
        }
        let flags = (u8::from(ctrl) * CTRL) | (u8::from(esc) * ESC) | (u8::from(high) * HIGH);
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
            self.out
                .extend_from_slice(ryu::Buffer::new().format_finite(s).as_bytes());
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

    /// A value in the corpus form (sets and hashes sorted by bytes, zsets
    /// in Redis order, streams with groups and consumers sorted by name).
    pub fn value(&mut self, v: &Value) {
        match v {
            Value::String(s) => self.bytes(s),
            Value::List(items) => self.list(items, |j, i| j.bytes(i)),
            Value::Set(items) => {
                let mut s: Vec<&Vec<u8>> = items.iter().collect();
                s.sort_unstable();
                self.list(s, |j, i| j.bytes(i));
            }
            Value::SortedSet(pairs) => {
                let mut p: Vec<&(Vec<u8>, f64)> = pairs.iter().collect();
                p.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
                self.list(p, |j, (m, s)| {
                    j.out.push(b'[');
                    j.bytes(m);
                    j.raw(",");
                    j.score(*s);
                    j.out.push(b']');
                });
            }
            Value::Hash(fields) => {
                let mut f: Vec<_> = fields.iter().collect();
                f.sort_by(|a, b| a.field.cmp(&b.field));
                self.list(f, |j, h| {
                    j.out.push(b'[');
                    j.bytes(&h.field);
                    j.raw(",");
                    j.bytes(&h.value);
                    if let Some(x) = h.expire_ms {
                        j.raw(",");
                        j.int(x);
                    }
                    j.out.push(b']');
                });
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
            _ => self.raw("null"),
        }
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
    pub fn key_record(&mut self, e: &Entry, with_db: bool) {
        self.out.push(b'{');
        if with_db {
            self.raw("\"db\":");
            self.int(e.db);
            self.raw(",");
        }
        self.raw("\"key\":");
        self.bytes(&e.key);
        self.raw(",\"type\":\"");
        self.raw(e.value.type_name());
        self.raw("\",\"expire_ms\":");
        self.opt_int(e.expire_ms);
        self.raw(",\"value\":");
        self.value(&e.value);
        self.raw(",\"rdb_type\":");
        self.int(e.rdb_type);
        self.raw(",\"rdb_type_name\":\"");
        self.raw(super::rdb_type_name(e.rdb_type));
        self.out.push(b'"');
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
