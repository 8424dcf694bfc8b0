//! `basalt-rdb memory FILE`: what takes the memory.
//!
//! Estimates follow what Redis 7.0 (jemalloc, 64-bit, default
//! `*-max-listpack-*` / `set-max-intset-entries` thresholds) allocates once
//! the dump is loaded: the key's dictEntry, key sds, robj and bucket share,
//! the expires entry, and the value in the encoding Redis would choose
//! (int/embstr/raw strings, listpack or hashtable/skiplist/quicklist
//! collections, intsets), each allocation rounded up to jemalloc's size
//! class. Like redis-rdb-tools, it is an estimate, not `MEMORY USAGE`.

use super::filter::{Filter, FilterArgs};
use super::json::Json;
use super::{display_key, scan_borrowed, Result};
use basalt_rdb::{Entry, Item};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

mod estimate;
mod html;

pub use estimate::{estimate, lp_entry, malloc_size, sds_size, Estimate};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The report as aligned tables.
    Table,
    /// One CSV row per key (database,type,key,size_in_bytes,encoding,num_elements,len_largest_element,expiry), streamed.
    Csv,
    /// The report as one JSON object.
    Json,
}

/// Estimate each key's memory as Redis 7.0 would use it and report the top
/// keys, totals by type, encoding, database and key prefix, and a TTL
/// histogram.
///
/// Examples:
///   basalt-rdb memory dump.rdb
///   basalt-rdb memory dump.rdb --top 50 --separator : --depth 2 --html report.html
///   basalt-rdb memory dump.rdb --format csv --min-size 10240 > big-keys.csv
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The dump.
    pub file: PathBuf,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "table")]
    pub format: Format,
    /// Output file (default stdout).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// How many of the biggest keys to list.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Key prefix separator(s) for totals by prefix (each character separates).
    #[arg(long, default_value = ":")]
    pub separator: String,
    /// Prefix levels to total (1: `user:`, 2: `user:42:`, ...).
    #[arg(long, default_value_t = 2)]
    pub depth: usize,
    /// Prefixes kept per level; beyond it the smallest are folded into "(other)".
    #[arg(long, default_value_t = 100_000)]
    pub max_prefixes: usize,
    /// Also write a self-contained HTML report (treemap by prefix, tables).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// A fast non-cryptographic hasher (FxHash) for the prefix tables.
#[derive(Default, Clone, Copy)]
pub struct Fx(u64);

impl std::hash::Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut v = [0u8; 8];
            v.copy_from_slice(c);
            self.add(u64::from_le_bytes(v));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }
    fn finish(&self) -> u64 {
        // Mix the high bits down: hashbrown indexes buckets by the low bits.
        let h = self.0;
        (h ^ (h >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ (h >> 29)
    }
}

impl Fx {
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// A prefix, stored inline when short so a lookup compares bytes in the
/// table itself instead of chasing a pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrefixKey {
    /// Up to 22 bytes.
    Inline(u8, [u8; 22]),
    /// Longer.
    Heap(Box<[u8]>),
}

impl PrefixKey {
    fn new(b: &[u8]) -> PrefixKey {
        if b.len() <= 22 {
            let mut a = [0u8; 22];
            a[..b.len()].copy_from_slice(b);
            PrefixKey::Inline(b.len() as u8, a)
        } else {
            PrefixKey::Heap(b.into())
        }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            PrefixKey::Inline(n, a) => &a[..usize::from(*n)],
            PrefixKey::Heap(b) => b,
        }
    }
}

impl std::hash::Hash for PrefixKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_slice().hash(h);
    }
}

impl std::borrow::Borrow<[u8]> for PrefixKey {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

/// Builds [`Fx`] hashers.
pub type FxBuild = std::hash::BuildHasherDefault<Fx>;

/// Count and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tally {
    /// Keys.
    pub keys: u64,
    /// Estimated bytes.
    pub bytes: u64,
}

impl Tally {
    fn add(&mut self, b: u64) {
        self.keys += 1;
        self.bytes += b;
    }
}

/// Tallies under a few static names (types, encodings), in name order
/// when read; found by pointer first since the names are literals.
#[derive(Debug, Default)]
pub struct Named(Vec<(&'static str, Tally)>);

impl Named {
    fn entry(&mut self, name: &'static str) -> &mut Tally {
        let i = match self
            .0
            .iter()
            .position(|(n, _)| std::ptr::eq(*n, name) || *n == name)
        {
            Some(i) => i,
            None => {
                self.0.push((name, Tally::default()));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }

    /// (name, tally) sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&&'static str, &Tally)> {
        let mut v: Vec<&(&'static str, Tally)> = self.0.iter().collect();
        v.sort_by_key(|x| x.0);
        v.into_iter().map(|(n, t)| (n, t))
    }
}

/// TTL buckets: label and upper bound in ms (exclusive).
pub const TTL_BUCKETS: &[(&str, i64)] = &[
    ("expired", 0),
    ("< 1 min", 60_000),
    ("< 1 hour", 3_600_000),
    ("< 1 day", 86_400_000),
    ("< 1 week", 604_800_000),
    ("< 30 days", 2_592_000_000),
    (">= 30 days", i64::MAX),
];

/// A top key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TopKey {
    /// Bytes.
    pub bytes: u64,
    /// Database.
    pub db: u64,
    /// Key.
    pub key: Vec<u8>,
    /// Type name.
    pub kind: &'static str,
    /// Encoding.
    pub encoding: &'static str,
    /// Elements.
    pub elements: u64,
    /// Expiry.
    pub expire_ms: Option<i64>,
}

/// Everything the report shows.
#[derive(Debug, Default)]
pub struct Report {
    /// All keys.
    pub total: Tally,
    /// By type name.
    pub by_type: Named,
    /// By encoding.
    pub by_encoding: Named,
    /// By database.
    pub by_db: BTreeMap<u64, Tally>,
    /// Per level (index 0 = level 1): prefix -> tally.
    pub by_prefix: Vec<HashMap<PrefixKey, Tally, FxBuild>>,
    /// Per level: what was folded away when a level outgrew the cap.
    pub other: Vec<Tally>,
    /// Keys without expiry.
    pub no_ttl: Tally,
    /// TTL histogram, aligned with [`TTL_BUCKETS`].
    pub ttl: Vec<Tally>,
    /// Biggest keys (min-heap while collecting).
    top: BinaryHeap<Reverse<TopKey>>,
    /// Size of the dump.
    pub file_size: u64,
}

impl Report {
    fn new(depth: usize) -> Report {
        Report {
            by_prefix: vec![HashMap::default(); depth],
            other: vec![Tally::default(); depth],
            ttl: vec![Tally::default(); TTL_BUCKETS.len()],
            ..Report::default()
        }
    }

    fn add(&mut self, e: &Entry, est: &Estimate, a: &Args, now: i64) {
        let b = est.bytes;
        self.total.add(b);
        self.by_type.entry(e.value.type_name()).add(b);
        self.by_encoding.entry(est.encoding).add(b);
        self.by_db.entry(e.db).or_default().add(b);
        match e.expire_ms {
            None => self.no_ttl.add(b),
            Some(x) => {
                let left = x - now;
                let i = TTL_BUCKETS
                    .iter()
                    .position(|(_, hi)| left < *hi)
                    .unwrap_or(0);
                self.ttl[i].add(b);
            }
        }
        let sep = a.separator.as_bytes();
        let mut cut = 0usize;
        for level in 0..self.by_prefix.len() {
            let next = e.key[cut..].iter().position(|c| sep.contains(c));
            let prefix: &[u8] = match next {
                Some(p) => {
                    cut += p + 1;
                    &e.key[..cut]
                }
                None if level == 0 => b"",
                None => break,
            };
            let map = &mut self.by_prefix[level];
            if let Some(t) = map.get_mut(prefix) {
                t.add(b);
            } else {
                map.insert(PrefixKey::new(prefix), Tally { keys: 1, bytes: b });
                if map.len() > a.max_prefixes.max(16) {
                    fold(map, &mut self.other[level], a.max_prefixes.max(16) / 2);
                }
            }
            if next.is_none() {
                break;
            }
        }
        if a.top > 0 && (self.top.len() < a.top || self.top.peek().is_some_and(|t| t.0.bytes < b)) {
            self.top.push(Reverse(TopKey {
                bytes: b,
                db: e.db,
                key: e.key.clone(),
                kind: e.value.type_name(),
                encoding: est.encoding,
                elements: est.elements,
                expire_ms: e.expire_ms,
            }));
            if self.top.len() > a.top {
                self.top.pop();
            }
        }
    }

    /// The biggest keys, biggest first.
    pub fn top(&self) -> Vec<TopKey> {
        let mut v: Vec<TopKey> = self.top.iter().map(|r| r.0.clone()).collect();
        v.sort_by(|a, b| b.cmp(a));
        v
    }

    /// A level's prefixes, biggest first.
    pub fn prefixes(&self, level: usize, limit: usize) -> Vec<(Vec<u8>, Tally)> {
        let mut v: Vec<(Vec<u8>, Tally)> = self.by_prefix[level]
            .iter()
            .map(|(k, t)| (k.as_slice().to_vec(), *t))
            .collect();
        v.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then_with(|| a.0.cmp(&b.0)));
        v.truncate(limit);
        v
    }
}

/// Keeps the `keep` biggest prefixes, adding the rest to `other`.
fn fold(map: &mut HashMap<PrefixKey, Tally, FxBuild>, other: &mut Tally, keep: usize) {
    let mut sizes: Vec<u64> = map.values().map(|t| t.bytes).collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let min = sizes.get(keep).copied().unwrap_or(0);
    map.retain(|_, t| {
        if t.bytes > min {
            true
        } else {
            other.keys += t.keys;
            other.bytes += t.bytes;
            false
        }
    });
}

fn csv_field(out: &mut Vec<u8>, b: &[u8]) {
    if b.iter()
        .any(|&c| c == b',' || c == b'"' || c == b'\n' || c == b'\r')
    {
        out.push(b'"');
        for &c in b {
            if c == b'"' {
                out.push(b'"');
            }
            out.push(c);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(b);
    }
}

/// Runs `memory`.
pub fn run(a: &Args, quiet: bool) -> Result<ExitCode> {
    let filter = Filter::new(&a.filter)?;
    let mut out = super::output(a.output.as_ref())?;
    let mut report = Report::new(a.depth.max(1));
    let csv = a.format == Format::Csv;
    let mut buf = Vec::with_capacity(1 << 20);
    if csv {
        buf.extend_from_slice(
            b"database,type,key,size_in_bytes,encoding,num_elements,len_largest_element,expiry\n",
        );
    }
    let end = scan_borrowed(
        &a.file,
        super::decode_options(),
        quiet,
        |_| {},
        |item| {
            let Item::Entry(e) = item else { return Ok(()) };
            if !filter.matches(e) {
                return Ok(());
            }
            let est = estimate(e);
            if !filter.size_ok(est.bytes) {
                return Ok(());
            }
            // CSV prints rows only; the aggregates are for the other outputs.
            if !csv || a.html.is_some() {
                report.add(e, &est, a, filter.now);
            }
            if csv {
                let mut ib = itoa::Buffer::new();
                buf.extend_from_slice(ib.format(e.db).as_bytes());
                buf.push(b',');
                buf.extend_from_slice(e.value.type_name().as_bytes());
                buf.push(b',');
                csv_field(&mut buf, &e.key);
                buf.push(b',');
                buf.extend_from_slice(ib.format(est.bytes).as_bytes());
                buf.push(b',');
                buf.extend_from_slice(est.encoding.as_bytes());
                buf.push(b',');
                buf.extend_from_slice(ib.format(est.elements).as_bytes());
                buf.push(b',');
                buf.extend_from_slice(ib.format(est.largest).as_bytes());
                buf.push(b',');
                if let Some(x) = e.expire_ms {
                    buf.extend_from_slice(ib.format(x).as_bytes());
                }
                buf.push(b'\n');
                if buf.len() > 1 << 20 {
                    out.write_all(&buf)?;
                    buf.clear();
                }
            }
            Ok(())
        },
    )?;
    report.file_size = end.size;
    match a.format {
        Format::Csv => out.write_all(&buf)?,
        Format::Table => out.write_all(table(&report, a).as_bytes())?,
        Format::Json => out.write_all(&json(&report, a))?,
    }
    out.flush()?;
    if let Some(h) = &a.html {
        let page = html::page(&report, a);
        std::fs::write(h, page).map_err(|e| format!("{}: {e}", h.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Human-readable bytes.
pub fn human(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

fn key_text(k: &[u8]) -> String {
    let mut v = Vec::new();
    display_key(k, &mut v);
    String::from_utf8_lossy(&v).into_owned()
}

fn prefix_label(p: &[u8]) -> String {
    if p.is_empty() {
        "(no separator)".into()
    } else {
        key_text(p)
    }
}

fn table(r: &Report, a: &Args) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let pct = |b: u64| {
        if r.total.bytes == 0 {
            0.0
        } else {
            b as f64 * 100.0 / r.total.bytes as f64
        }
    };
    let _ = writeln!(
        s,
        "{} keys, estimated {} ({} bytes) in memory; dump file {}\n",
        r.total.keys,
        human(r.total.bytes),
        r.total.bytes,
        human(r.file_size)
    );
    let mut section = |title: &str, rows: Vec<(String, Tally)>| {
        let _ = writeln!(s, "{title}");
        let _ = writeln!(s, "  {:<40} {:>12} {:>14} {:>7}", "", "keys", "bytes", "%");
        for (name, t) in rows {
            let _ = writeln!(
                s,
                "  {:<40} {:>12} {:>14} {:>6.1}%",
                name,
                t.keys,
                t.bytes,
                pct(t.bytes)
            );
        }
        s.push('\n');
    };
    section(
        "by type",
        r.by_type.iter().map(|(k, t)| (k.to_string(), *t)).collect(),
    );
    section(
        "by encoding",
        r.by_encoding
            .iter()
            .map(|(k, t)| (k.to_string(), *t))
            .collect(),
    );
    section(
        "by database",
        r.by_db
            .iter()
            .map(|(k, t)| (format!("db{k}"), *t))
            .collect(),
    );
    for level in 0..r.by_prefix.len() {
        let mut rows: Vec<(String, Tally)> = r
            .prefixes(level, a.top.max(10))
            .into_iter()
            .map(|(p, t)| (prefix_label(&p), t))
            .collect();
        if r.other[level].keys > 0 {
            rows.push(("(other, folded)".into(), r.other[level]));
        }
        section(
            &format!(
                "by prefix, level {} (separator {:?})",
                level + 1,
                a.separator
            ),
            rows,
        );
    }
    let mut ttl = vec![("no expiry".to_string(), r.no_ttl)];
    ttl.extend(
        TTL_BUCKETS
            .iter()
            .zip(&r.ttl)
            .map(|((l, _), t)| (l.to_string(), *t)),
    );
    section("by time to live", ttl);
    let _ = writeln!(s, "top {} keys", a.top);
    let _ = writeln!(
        s,
        "  {:>14} {:>3} {:<7} {:<10} {:>10}  key",
        "bytes", "db", "type", "encoding", "elements"
    );
    for t in r.top() {
        let _ = writeln!(
            s,
            "  {:>14} {:>3} {:<7} {:<10} {:>10}  {}",
            t.bytes,
            t.db,
            t.kind,
            t.encoding,
            t.elements,
            key_text(&t.key)
        );
    }
    s
}

fn tally(j: &mut Json, t: &Tally) {
    j.raw("{\"keys\": ");
    j.int(t.keys);
    j.raw(", \"bytes\": ");
    j.int(t.bytes);
    j.raw("}");
}

/// The report as JSON (byte strings under the corpus convention).
pub fn json(r: &Report, a: &Args) -> Vec<u8> {
    let mut j = Json::new(false);
    j.raw("{\"total\": ");
    tally(&mut j, &r.total);
    j.raw(",\n\"file_size\": ");
    j.int(r.file_size);
    let named = |j: &mut Json, name: &str, rows: Vec<(String, Tally)>| {
        j.raw(",\n\"");
        j.raw(name);
        j.raw("\": {");
        for (n, (k, t)) in rows.iter().enumerate() {
            j.raw(if n > 0 { ", " } else { "" });
            j.str(k);
            j.raw(": ");
            tally(j, t);
        }
        j.raw("}");
    };
    named(
        &mut j,
        "by_type",
        r.by_type.iter().map(|(k, t)| (k.to_string(), *t)).collect(),
    );
    named(
        &mut j,
        "by_encoding",
        r.by_encoding
            .iter()
            .map(|(k, t)| (k.to_string(), *t))
            .collect(),
    );
    named(
        &mut j,
        "by_db",
        r.by_db.iter().map(|(k, t)| (k.to_string(), *t)).collect(),
    );
    let mut ttl = vec![("no expiry".to_string(), r.no_ttl)];
    ttl.extend(
        TTL_BUCKETS
            .iter()
            .zip(&r.ttl)
            .map(|((l, _), t)| (l.to_string(), *t)),
    );
    j.raw(",\n\"ttl\": [");
    for (n, (l, t)) in ttl.iter().enumerate() {
        j.raw(if n > 0 { ", " } else { "" });
        j.raw("{\"bucket\": ");
        j.str(l);
        j.raw(", \"keys\": ");
        j.int(t.keys);
        j.raw(", \"bytes\": ");
        j.int(t.bytes);
        j.raw("}");
    }
    j.raw("],\n\"separator\": ");
    j.str(&a.separator);
    j.raw(",\n\"prefixes\": [");
    for level in 0..r.by_prefix.len() {
        j.raw(if level > 0 { ",\n [" } else { "\n [" });
        for (n, (p, t)) in r.prefixes(level, a.top.max(100)).iter().enumerate() {
            j.raw(if n > 0 { ", " } else { "" });
            j.raw("{\"prefix\": ");
            j.bytes(p);
            j.raw(", \"keys\": ");
            j.int(t.keys);
            j.raw(", \"bytes\": ");
            j.int(t.bytes);
            j.raw("}");
        }
        j.raw("]");
    }
    j.raw("],\n\"top\": [");
    for (n, t) in r.top().iter().enumerate() {
        j.raw(if n > 0 { ",\n " } else { "\n " });
        j.raw("{\"db\": ");
        j.int(t.db);
        j.raw(", \"key\": ");
        j.bytes(&t.key);
        j.raw(", \"type\": ");
        j.str(t.kind);
        j.raw(", \"encoding\": ");
        j.str(t.encoding);
        j.raw(", \"elements\": ");
        j.int(t.elements);
        j.raw(", \"bytes\": ");
        j.int(t.bytes);
        j.raw(", \"expire_ms\": ");
        j.opt_int(t.expire_ms);
        j.raw("}");
    }
    j.raw("]}\n");
    j.out
}
