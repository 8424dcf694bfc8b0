//! The per-key estimate: what Redis 7.0 allocates for a key once loaded
//! (see the parent module's notes).

use basalt_rdb::{ArrayElem, Entry, Value};

/// A key's estimated footprint.
#[derive(Debug, Clone, Copy)]
pub struct Estimate {
    /// Bytes, including the key and its dict overhead.
    pub bytes: u64,
    /// The encoding Redis 7.0 would use (`OBJECT ENCODING`).
    pub encoding: &'static str,
    /// Elements (1 for strings, entries for streams).
    pub elements: u64,
    /// Length of the largest element (or of the string).
    pub largest: u64,
}

/// jemalloc's size class for an allocation of `n` bytes.
pub fn malloc_size(n: u64) -> u64 {
    if n <= 8 {
        8
    } else if n <= 128 {
        n.div_ceil(16) * 16
    } else {
        let p = n.next_power_of_two();
        let step = p / 8;
        n.div_ceil(step) * step
    }
}

/// Allocation for an sds string of `len` bytes.
pub fn sds_size(len: u64) -> u64 {
    let hdr = if len < 32 {
        1
    } else if len < 256 {
        3
    } else if len < 65536 {
        5
    } else if len < 1 << 32 {
        9
    } else {
        17
    };
    malloc_size(hdr + len + 1)
}

const DICT_ENTRY: u64 = 32; // 24 bytes, jemalloc class 32
const ROBJ: u64 = 16;
const DICT: u64 = 64; // 56 bytes
const LISTPACK_MAX_ENTRIES: usize = 128;
const LISTPACK_MAX_VALUE: usize = 64;
const INTSET_MAX: usize = 512;
const LIST_NODE_BYTES: u64 = 8192;

fn int_of(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    basalt_rdb::listpack::parse_canonical_i64(b)
}

/// Bytes one listpack entry takes.
pub fn lp_entry(b: &[u8]) -> u64 {
    let enc = if let Some(v) = int_of(b) {
        match v {
            0..=127 => 1,
            -4096..=4095 => 2,
            -32768..=32767 => 3,
            -8_388_608..=8_388_607 => 4,
            -2_147_483_648..=2_147_483_647 => 5,
            _ => 9,
        }
    } else {
        let l = b.len() as u64;
        l + if l < 64 {
            1
        } else if l < 4096 {
            2
        } else {
            5
        }
    };
    enc + if enc < 128 {
        1
    } else if enc < 16384 {
        2
    } else if enc < 2_097_152 {
        3
    } else if enc < 268_435_456 {
        4
    } else {
        5
    }
}

fn buckets(n: u64) -> u64 {
    n.max(4).next_power_of_two() * 8
}

/// Listpack bytes of a score as Redis stores it (an integer when integral,
/// else its shortest text), without allocating.
fn lp_score(s: f64) -> u64 {
    if s.fract() == 0.0 && s.abs() < 1e15 {
        lp_entry(itoa::Buffer::new().format(s as i64).as_bytes())
    } else if s == f64::INFINITY {
        lp_entry(b"inf")
    } else if s == f64::NEG_INFINITY {
        lp_entry(b"-inf")
    } else {
        lp_entry(ryu::Buffer::new().format(s).as_bytes())
    }
}

/// Estimates a key's memory.
pub fn estimate(e: &Entry) -> Estimate {
    let mut bytes = DICT_ENTRY + sds_size(e.key.len() as u64) + 8;
    if e.expire_ms.is_some() {
        bytes += DICT_ENTRY + 8;
    }
    let (v, encoding, elements, largest) = value_size(&e.value);
    bytes += v;
    Estimate {
        bytes,
        encoding,
        elements,
        largest,
    }
}

/// A hash of these (field, value) pairs, as Redis keeps it: a listpack
/// (with a TTL slot per field when `ttl`) within the listpack limits, a
/// hashtable beyond. Returns (bytes, encoding, fields, largest item).
fn hash_size<'a>(
    fields: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])> + Clone,
    ttl: bool,
) -> (u64, &'static str, u64, u64) {
    let n = fields.len() as u64;
    let largest = fields
        .clone()
        .map(|(f, v)| f.len().max(v.len()))
        .max()
        .unwrap_or(0) as u64;
    if fields.len() <= LISTPACK_MAX_ENTRIES && largest <= LISTPACK_MAX_VALUE as u64 {
        let lp: u64 = fields
            .map(|(f, v)| lp_entry(f) + lp_entry(v) + if ttl { 9 } else { 0 })
            .sum();
        return (
            ROBJ + malloc_size(lp + 7),
            if ttl { "listpackex" } else { "listpack" },
            n,
            largest,
        );
    }
    let entries: u64 = fields
        .map(|(f, v)| DICT_ENTRY + sds_size(f.len() as u64) + sds_size(v.len() as u64))
        .sum();
    (ROBJ + DICT + buckets(n) + entries, "hashtable", n, largest)
}

fn value_size(v: &Value) -> (u64, &'static str, u64, u64) {
    let maxlen = |it: &mut dyn Iterator<Item = usize>| it.max().unwrap_or(0) as u64;
    match v {
        Value::String(s) => {
            let l = s.len() as u64;
            if int_of(s).is_some() {
                (ROBJ, "int", 1, l)
            } else if l <= 44 {
                (malloc_size(ROBJ + 3 + l + 1), "embstr", 1, l)
            } else {
                (ROBJ + sds_size(l), "raw", 1, l)
            }
        }
        Value::List(items) => {
            let mut total = ROBJ + 48;
            let mut node = 0u64;
            for i in items {
                let b = lp_entry(i);
                if node > 0 && node + b > LIST_NODE_BYTES {
                    total += 32 + malloc_size(node + 7);
                    node = 0;
                }
                node += b;
            }
            if node > 0 || items.is_empty() {
                total += 32 + malloc_size(node + 7);
            }
            // Redis 7.0 keeps every list as a quicklist of listpacks.
            (
                total,
                "quicklist",
                items.len() as u64,
                maxlen(&mut items.iter().map(Vec::len)),
            )
        }
        Value::Set(items) => {
            let n = items.len() as u64;
            let largest = maxlen(&mut items.iter().map(Vec::len));
            if items.len() <= INTSET_MAX {
                let ints: Option<Vec<i64>> = items.iter().map(|i| int_of(i)).collect();
                if let Some(ints) = ints {
                    let w = ints.iter().map(|&x| {
                        if i16::try_from(x).is_ok() {
                            2
                        } else if i32::try_from(x).is_ok() {
                            4
                        } else {
                            8
                        }
                    });
                    let width = w.max().unwrap_or(2);
                    return (ROBJ + malloc_size(8 + n * width), "intset", n, largest);
                }
            }
            let entries: u64 = items
                .iter()
                .map(|i| DICT_ENTRY + sds_size(i.len() as u64))
                .sum();
            (ROBJ + DICT + buckets(n) + entries, "hashtable", n, largest)
        }
        Value::SortedSet(pairs) => {
            let n = pairs.len() as u64;
            let largest = maxlen(&mut pairs.iter().map(|p| p.0.len()));
            if pairs.len() <= LISTPACK_MAX_ENTRIES && largest <= LISTPACK_MAX_VALUE as u64 {
                let lp: u64 = pairs.iter().map(|(m, s)| lp_entry(m) + lp_score(*s)).sum();
                return (ROBJ + malloc_size(lp + 7), "listpack", n, largest);
            }
            // zset + dict + skiplist header; per element: dictEntry, member
            // sds, skiplist node of average level 4/3.
            let per: u64 = pairs
                .iter()
                .map(|p| DICT_ENTRY + sds_size(p.0.len() as u64) + 52)
                .sum();
            (
                ROBJ + 16 + DICT + buckets(n) + 32 + 640 + per,
                "skiplist",
                n,
                largest,
            )
        }
        Value::Hash(fields) => {
            let ttl = fields.iter().any(|f| f.expire_ms.is_some());
            hash_size(
                fields
                    .iter()
                    .map(|f| (f.field.as_slice(), f.value.as_slice())),
                ttl,
            )
        }
        Value::Stream(s) => {
            let mut lp = 0u64;
            let mut largest = 0u64;
            for en in &s.entries {
                // ID deltas, flags, field count, fields, lp-count.
                lp += 2 + 2 + 1 + 1 + 1;
                for (f, v) in &en.fields {
                    lp += lp_entry(f) + lp_entry(v);
                    largest = largest.max(f.len() as u64).max(v.len() as u64);
                }
            }
            // As Redis 7.0's MEMORY USAGE: radix trees cost 16 bytes per
            // element plus 244 per node (streamRadixTreeMemoryUsage), about
            // one node per element.
            let rax = |n: u64| 24 + 16 * n + (n + 1) * 244;
            let nodes = (s.entries.len() as u64)
                .div_ceil(100)
                .max(u64::from(!s.entries.is_empty()));
            let mut total = ROBJ + 80 + rax(nodes) + malloc_size(lp + nodes * 7).max(lp);
            for g in &s.groups {
                total += 40
                    + rax(g.pel.len() as u64)
                    + g.pel.len() as u64 * 24
                    + rax(g.consumers.len() as u64);
                for c in &g.consumers {
                    total += 32 + sds_size(c.name.len() as u64) + rax(c.pel.len() as u64);
                }
            }
            (total, "stream", s.entries.len() as u64, largest)
        }
        Value::Module(m) => (
            ROBJ + malloc_size(m.raw.len() as u64),
            "module",
            1,
            m.raw.len() as u64,
        ),
        Value::Array(a) => {
            // A rough figure, not checked against Redis 8.8 (none was
            // available): 16 bytes a slot (index and value word), strings
            // over 7 bytes (the inline SMALLSTR limit) in their own sds.
            let mut total = ROBJ + 64;
            let mut largest = 0u64;
            for (_, e) in &a.elements {
                total += 16;
                let l = match e {
                    ArrayElem::Str(b) => b.len() as u64,
                    _ => 8,
                };
                largest = largest.max(l);
                if l > 7 {
                    total += sds_size(l);
                }
            }
            (total, "sparsearray", a.elements.len() as u64, largest)
        }
        Value::PathHash(ph) => {
            // A rough figure, not checked against Valkey 9.2 (none was
            // available): a radix-tree node per path (header, the path's
            // bytes, a child pointer), each path's fields as a small hash
            // would be kept.
            let mut total = ROBJ + 64;
            let mut largest = 0u64;
            for (path, fields) in &ph.paths {
                total += malloc_size(16 + path.len() as u64 + 8);
                let (bytes, _, _, l) = hash_size(
                    fields.iter().map(|(f, v)| (f.as_slice(), v.as_slice())),
                    false,
                );
                total += bytes;
                largest = largest.max(l).max(path.len() as u64);
            }
            (total, "path-hash", ph.field_count() as u64, largest)
        }
        _ => (ROBJ, "unknown", 0, 0),
    }
}
