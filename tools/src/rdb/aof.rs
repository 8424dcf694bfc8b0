//! Redis AOF as input: a single file (commands, or an RDB preamble followed
//! by commands) or a Redis 7 `appendonlydir` (manifest, base `.rdb` or
//! `.aof`, incremental `.aof` files). The commands are replayed into an
//! in-memory keyspace (so, unlike RDB input, memory grows with the data)
//! and the result is presented as RDB items, keys sorted by (db, key).
//!
//! The replay covers what Redis writes to an AOF: the rewrite commands
//! (SET, RPUSH, SADD, ZADD, HMSET, XADD, XSETID, XGROUP, PEXPIREAT, SELECT)
//! and the propagated effects of the common write commands. Anything else
//! is an error naming the command and its offset.

use super::Result;
use basalt_rdb::{
    ConsumerGroup, DecodeOptions, Entry, Format, Function, HashField, Item, MappedFile, Stream,
    StreamEntry, StreamId, Value,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};

/// A value being rebuilt.
enum V {
    Str(Vec<u8>),
    List(VecDeque<Vec<u8>>),
    Set(BTreeSet<Vec<u8>>),
    Zset(BTreeMap<Vec<u8>, f64>),
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    Stream(Box<Stream>),
    /// A value the replay has no commands for (module data, Redis 8.8
    /// arrays) from the RDB preamble or a RESTORE: kept as it is, and a
    /// command on its key is WRONGTYPE.
    Other(Value),
}

#[derive(Default)]
struct State {
    db: u64,
    keys: BTreeMap<(u64, Vec<u8>), (V, Option<i64>)>,
    functions: BTreeMap<Vec<u8>, Function>,
    aux: Vec<(Vec<u8>, Vec<u8>)>,
    format: Option<Format>,
}

/// Whether `path` is an AOF (a directory, or a file starting with `*`).
pub fn is_aof(path: &Path) -> bool {
    if path.is_dir() {
        return true;
    }
    let mut head = [0u8; 1];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .map(|_| head[0] == b'*')
        .unwrap_or(false)
}

/// The replayed contents.
pub struct Loaded {
    /// The base RDB's format, or REDIS 10 for a pure command log.
    pub format: Format,
    /// Aux fields, functions, then keys sorted by (db, key).
    pub items: Vec<Item>,
    /// Bytes read.
    pub size: u64,
}

fn files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let manifest = std::fs::read_dir(path)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "manifest"))
        .ok_or_else(|| format!("{}: no *.manifest file in this directory", path.display()))?;
    let text = std::fs::read_to_string(&manifest)?;
    let (mut base, mut incr) = (None, Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let t: Vec<&str> = line.split_whitespace().collect();
        let get = |k: &str| {
            t.iter()
                .position(|x| *x == k)
                .and_then(|i| t.get(i + 1))
                .map(|s| s.trim_matches('"'))
        };
        let (Some(name), Some(kind)) = (get("file"), get("type")) else {
            return Err(format!("{}: bad manifest line {line:?}", manifest.display()).into());
        };
        let seq: u64 = get("seq").and_then(|s| s.parse().ok()).unwrap_or(0);
        match kind {
            "b" => base = Some(path.join(name)),
            "i" => incr.push((seq, path.join(name))),
            _ => {}
        }
    }
    incr.sort();
    Ok(base
        .into_iter()
        .chain(incr.into_iter().map(|x| x.1))
        .collect())
}

/// Replays an AOF file or directory.
pub fn load(path: &Path) -> Result<Loaded> {
    let mut st = State::default();
    let mut size = 0;
    for f in files(path)? {
        let map = MappedFile::open(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let bytes = map.bytes();
        size += bytes.len() as u64;
        let mut at = 0usize;
        if bytes.starts_with(b"REDIS") || bytes.starts_with(b"VALKEY") {
            let mut r = map
                .reader(DecodeOptions::default())
                .map_err(|e| format!("{}: {e}", f.display()))?;
            st.format.get_or_insert(r.format());
            while let Some(item) = r.next_item().map_err(|e| format!("{}: {e}", f.display()))? {
                match item {
                    Item::Entry(e) => {
                        st.keys
                            .insert((e.db, e.key), (from_value(e.value), e.expire_ms));
                    }
                    Item::Aux { key, value } => st.aux.push((key, value)),
                    Item::Function(fun) => {
                        st.functions.insert(fun.library.clone(), fun);
                    }
                    _ => {}
                }
            }
            at = r.offset() as usize;
        }
        st.db = 0;
        while at < bytes.len() {
            let start = at;
            let args = parse_command(bytes, &mut at)
                .map_err(|m| format!("{}: offset {start}: {m}", f.display()))?;
            st.apply(&args)
                .map_err(|m| format!("{}: offset {start}: {m}", f.display()))?;
        }
    }
    let mut items: Vec<Item> = st
        .aux
        .into_iter()
        .map(|(key, value)| Item::Aux { key, value })
        .collect();
    items.extend(st.functions.into_values().map(Item::Function));
    for ((db, key), (v, expire_ms)) in st.keys {
        let value = to_value(v);
        if value.is_empty_collection() {
            continue;
        }
        items.push(Item::Entry(Entry {
            db,
            key,
            value,
            expire_ms,
            lru_idle: None,
            lfu_freq: None,
            rdb_type: 0,
        }));
    }
    Ok(Loaded {
        format: st.format.unwrap_or(Format::redis(10)),
        items,
        size,
    })
}

fn parse_command(b: &[u8], at: &mut usize) -> std::result::Result<Vec<Vec<u8>>, String> {
    let line = |at: &mut usize| -> std::result::Result<&[u8], String> {
        let rest = b.get(*at..).unwrap_or(&[]);
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated command (redis-check-aof --fix cuts it)")?;
        *at += end + 2;
        Ok(&rest[..end])
    };
    let num = |l: &[u8], what: &str| -> std::result::Result<usize, String> {
        std::str::from_utf8(l)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad {what} {:?}", String::from_utf8_lossy(l)))
    };
    let head = line(at)?;
    let n = match head.split_first() {
        Some((b'*', rest)) => num(rest, "argument count")?,
        _ => {
            return Err(format!(
                "expected '*', found {:?}",
                String::from_utf8_lossy(&head[..head.len().min(20)])
            ))
        }
    };
    let mut args = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let l = line(at)?;
        let len = match l.split_first() {
            Some((b'$', rest)) => num(rest, "bulk length")?,
            _ => return Err("expected '$'".into()),
        };
        let data = b
            .get(*at..*at + len)
            .ok_or("truncated argument (redis-check-aof --fix cuts it)")?;
        if b.get(*at + len..*at + len + 2) != Some(b"\r\n") {
            return Err("argument not followed by CRLF".into());
        }
        args.push(data.to_vec());
        *at += len + 2;
    }
    Ok(args)
}

fn from_value(v: Value) -> V {
    match v {
        Value::String(s) => V::Str(s),
        Value::List(l) => V::List(l.into()),
        Value::Set(s) => V::Set(s.into_iter().collect()),
        Value::SortedSet(z) => V::Zset(z.into_iter().collect()),
        Value::Hash(h) => V::Hash(h.into_iter().map(|f| (f.field, f.value)).collect()),
        Value::Stream(s) => V::Stream(s),
        other => V::Other(other),
    }
}

fn to_value(v: V) -> Value {
    match v {
        V::Str(s) => Value::String(s),
        V::List(l) => Value::List(l.into()),
        V::Set(s) => Value::Set(s.into_iter().collect()),
        V::Zset(z) => Value::SortedSet(z.into_iter().collect()),
        V::Hash(h) => Value::Hash(h.into_iter().map(|(f, v)| HashField::new(f, v)).collect()),
        V::Stream(s) => Value::Stream(s),
        V::Other(v) => v,
    }
}

fn int(b: &[u8]) -> std::result::Result<i64, String> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an integer: {:?}", String::from_utf8_lossy(b)))
}

fn float(b: &[u8]) -> std::result::Result<f64, String> {
    let s = std::str::from_utf8(b)
        .map_err(|_| "not a float")?
        .to_ascii_lowercase();
    match s.as_str() {
        "inf" | "+inf" => Ok(f64::INFINITY),
        "-inf" => Ok(f64::NEG_INFINITY),
        _ => s.parse().map_err(|_| format!("not a float: {s:?}")),
    }
}

fn id(b: &[u8]) -> std::result::Result<StreamId, String> {
    let s = std::str::from_utf8(b).map_err(|_| "bad stream ID")?;
    let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
    Ok(StreamId::new(
        ms.parse().map_err(|_| format!("bad stream ID {s:?}"))?,
        seq.parse().map_err(|_| format!("bad stream ID {s:?}"))?,
    ))
}

fn now_ms() -> i64 {
    super::filter::unix_ms()
}

fn fmt_float(f: f64) -> Vec<u8> {
    if f.fract() == 0.0 && f.abs() < 1e17 {
        (f as i64).to_string().into_bytes()
    } else {
        format!("{f}").into_bytes()
    }
}

macro_rules! get_or {
    ($st:expr, $key:expr, $variant:ident, $new:expr) => {{
        let k = ($st.db, $key.to_vec());
        let e = $st
            .keys
            .entry(k)
            .or_insert_with(|| (V::$variant($new), None));
        match &mut e.0 {
            V::$variant(x) => x,
            _ => {
                return Err(format!(
                    "WRONGTYPE for key {:?}",
                    String::from_utf8_lossy($key)
                ))
            }
        }
    }};
}

impl State {
    fn apply(&mut self, a: &[Vec<u8>]) -> std::result::Result<(), String> {
        let Some(cmd) = a.first() else { return Ok(()) };
        let cmd = String::from_utf8_lossy(cmd).to_ascii_lowercase();
        let arg = |i: usize| {
            a.get(i)
                .map(Vec::as_slice)
                .ok_or_else(|| format!("{cmd}: missing argument"))
        };
        let db = self.db;
        match cmd.as_str() {
            "select" => self.db = int(arg(1)?)? as u64,
            "multi" | "exec" | "ping" => {}
            "set" | "setnx" | "getset" => {
                let (k, v) = (arg(1)?, arg(2)?);
                let exists = self.keys.contains_key(&(db, k.to_vec()));
                let mut keep = false;
                let mut exp = None;
                let mut skip = cmd == "setnx" && exists;
                let mut i = 3;
                while i < a.len() {
                    let o = String::from_utf8_lossy(&a[i]).to_ascii_lowercase();
                    let n = || {
                        a.get(i + 1)
                            .map(|x| int(x))
                            .transpose()
                            .map(|x| x.unwrap_or(0))
                    };
                    match o.as_str() {
                        "nx" => skip |= exists,
                        "xx" => skip |= !exists,
                        "get" => {}
                        "keepttl" => keep = true,
                        "ex" => {
                            exp = Some(now_ms() + n()? * 1000);
                            i += 1;
                        }
                        "px" => {
                            exp = Some(now_ms() + n()?);
                            i += 1;
                        }
                        "exat" => {
                            exp = Some(n()? * 1000);
                            i += 1;
                        }
                        "pxat" => {
                            exp = Some(n()?);
                            i += 1;
                        }
                        _ => return Err(format!("SET: unknown option {o:?}")),
                    }
                    i += 1;
                }
                if !skip {
                    let old = self.keys.get(&(db, k.to_vec())).and_then(|e| e.1);
                    self.keys.insert(
                        (db, k.to_vec()),
                        (V::Str(v.to_vec()), if keep { old } else { exp }),
                    );
                }
            }
            "setex" | "psetex" => {
                let t = int(arg(2)?)?;
                let exp = now_ms() + if cmd == "setex" { t * 1000 } else { t };
                self.keys.insert(
                    (db, arg(1)?.to_vec()),
                    (V::Str(arg(3)?.to_vec()), Some(exp)),
                );
            }
            "mset" | "msetnx" => {
                for p in a[1..].chunks(2) {
                    if let [k, v] = p {
                        self.keys.insert((db, k.clone()), (V::Str(v.clone()), None));
                    }
                }
            }
            "append" => get_or!(self, arg(1)?, Str, Vec::new()).extend_from_slice(arg(2)?),
            "setrange" => {
                let off = int(arg(2)?)? as usize;
                let v = arg(3)?;
                let s = get_or!(self, arg(1)?, Str, Vec::new());
                if s.len() < off + v.len() {
                    s.resize(off + v.len(), 0);
                }
                s[off..off + v.len()].copy_from_slice(v);
            }
            "incr" | "decr" | "incrby" | "decrby" | "incrbyfloat" => {
                let s = get_or!(self, arg(1)?, Str, b"0".to_vec());
                if cmd == "incrbyfloat" {
                    let v = float(s)? + float(arg(2)?)?;
                    *s = fmt_float(v);
                } else {
                    let by = match cmd.as_str() {
                        "incr" => 1,
                        "decr" => -1,
                        "incrby" => int(arg(2)?)?,
                        _ => -int(arg(2)?)?,
                    };
                    *s = (int(s)? + by).to_string().into_bytes();
                }
            }
            "del" | "unlink" | "getdel" => {
                for k in &a[1..] {
                    self.keys.remove(&(db, k.clone()));
                }
            }
            "expire" | "pexpire" | "expireat" | "pexpireat" => {
                let t = int(arg(2)?)?;
                let ms = match cmd.as_str() {
                    "expire" => now_ms() + t * 1000,
                    "pexpire" => now_ms() + t,
                    "expireat" => t * 1000,
                    _ => t,
                };
                if let Some(e) = self.keys.get_mut(&(db, arg(1)?.to_vec())) {
                    e.1 = Some(ms);
                }
            }
            "persist" => {
                if let Some(e) = self.keys.get_mut(&(db, arg(1)?.to_vec())) {
                    e.1 = None;
                }
            }
            "rename" | "renamenx" => {
                if let Some(e) = self.keys.remove(&(db, arg(1)?.to_vec())) {
                    self.keys.insert((db, arg(2)?.to_vec()), e);
                }
            }
            "flushdb" => self.keys.retain(|k, _| k.0 != db),
            "flushall" => self.keys.clear(),
            "swapdb" => {
                let (x, y) = (int(arg(1)?)? as u64, int(arg(2)?)? as u64);
                let moved = std::mem::take(&mut self.keys);
                self.keys = moved
                    .into_iter()
                    .map(|((d, k), v)| {
                        (
                            (
                                if d == x {
                                    y
                                } else if d == y {
                                    x
                                } else {
                                    d
                                },
                                k,
                            ),
                            v,
                        )
                    })
                    .collect();
            }
            "rpush" | "lpush" | "rpushx" | "lpushx" => {
                if cmd.ends_with('x') && !self.keys.contains_key(&(db, arg(1)?.to_vec())) {
                    return Ok(());
                }
                let l = get_or!(self, arg(1)?, List, VecDeque::new());
                for v in &a[2..] {
                    if cmd.starts_with('r') {
                        l.push_back(v.clone())
                    } else {
                        l.push_front(v.clone())
                    }
                }
            }
            "lpop" | "rpop" => {
                let n = a.get(2).map(|x| int(x)).transpose()?.unwrap_or(1);
                let l = get_or!(self, arg(1)?, List, VecDeque::new());
                for _ in 0..n {
                    if cmd == "lpop" {
                        l.pop_front();
                    } else {
                        l.pop_back();
                    }
                }
            }
            "lset" => {
                let i = int(arg(2)?)?;
                let l = get_or!(self, arg(1)?, List, VecDeque::new());
                let i = if i < 0 { l.len() as i64 + i } else { i } as usize;
                if let Some(x) = l.get_mut(i) {
                    *x = arg(3)?.to_vec();
                }
            }
            "ltrim" => {
                let (s, e) = (int(arg(2)?)?, int(arg(3)?)?);
                let l = get_or!(self, arg(1)?, List, VecDeque::new());
                let n = l.len() as i64;
                let s = if s < 0 { (n + s).max(0) } else { s };
                let e = if e < 0 { n + e } else { e.min(n - 1) };
                *l = if s > e || s >= n {
                    VecDeque::new()
                } else {
                    l.range(s as usize..=e as usize).cloned().collect()
                };
            }
            "lrem" => {
                let count = int(arg(2)?)?;
                let v = arg(3)?.to_vec();
                let l = get_or!(self, arg(1)?, List, VecDeque::new());
                let mut left = if count == 0 {
                    usize::MAX
                } else {
                    count.unsigned_abs() as usize
                };
                let mut items: Vec<Vec<u8>> = l.drain(..).collect();
                if count < 0 {
                    items.reverse();
                }
                items.retain(|x| {
                    if *x == v && left > 0 {
                        left -= 1;
                        false
                    } else {
                        true
                    }
                });
                if count < 0 {
                    items.reverse();
                }
                *l = items.into();
            }
            "linsert" => {
                let before = arg(2)?.eq_ignore_ascii_case(b"before");
                let (pivot, v) = (arg(3)?.to_vec(), arg(4)?.to_vec());
                let l = get_or!(self, arg(1)?, List, VecDeque::new());
                if let Some(i) = l.iter().position(|x| *x == pivot) {
                    l.insert(if before { i } else { i + 1 }, v);
                }
            }
            "lmove" | "rpoplpush" => {
                let (from_left, to_left) = if cmd == "rpoplpush" {
                    (false, true)
                } else {
                    (
                        arg(3)?.eq_ignore_ascii_case(b"left"),
                        arg(4)?.eq_ignore_ascii_case(b"left"),
                    )
                };
                let src = get_or!(self, arg(1)?, List, VecDeque::new());
                let Some(v) = (if from_left {
                    src.pop_front()
                } else {
                    src.pop_back()
                }) else {
                    return Ok(());
                };
                let dst = get_or!(self, arg(2)?, List, VecDeque::new());
                if to_left {
                    dst.push_front(v)
                } else {
                    dst.push_back(v)
                }
            }
            "sadd" => get_or!(self, arg(1)?, Set, BTreeSet::new()).extend(a[2..].iter().cloned()),
            "srem" => {
                let s = get_or!(self, arg(1)?, Set, BTreeSet::new());
                for m in &a[2..] {
                    s.remove(m);
                }
            }
            "smove" => {
                let m = arg(3)?.to_vec();
                if get_or!(self, arg(1)?, Set, BTreeSet::new()).remove(&m) {
                    get_or!(self, arg(2)?, Set, BTreeSet::new()).insert(m);
                }
            }
            "zadd" | "zincrby" => {
                let z = get_or!(self, arg(1)?, Zset, BTreeMap::new());
                if cmd == "zincrby" {
                    *z.entry(arg(3)?.to_vec()).or_insert(0.0) += float(arg(2)?)?;
                    return Ok(());
                }
                let mut i = 2;
                let (mut nx, mut xx, mut incr) = (false, false, false);
                while let Some(o) = a.get(i) {
                    match String::from_utf8_lossy(o).to_ascii_lowercase().as_str() {
                        "nx" => nx = true,
                        "xx" => xx = true,
                        "incr" => incr = true,
                        "gt" | "lt" | "ch" => {
                            return Err("ZADD GT/LT/CH in an AOF is not supported".into())
                        }
                        _ => break,
                    }
                    i += 1;
                }
                for p in a[i..].chunks(2) {
                    if let [s, m] = p {
                        let s = float(s)?;
                        let has = z.contains_key(m);
                        if (nx && has) || (xx && !has) {
                            continue;
                        }
                        let e = z.entry(m.clone()).or_insert(0.0);
                        *e = if incr { *e + s } else { s };
                    }
                }
            }
            "zrem" => {
                let z = get_or!(self, arg(1)?, Zset, BTreeMap::new());
                for m in &a[2..] {
                    z.remove(m);
                }
            }
            "hset" | "hmset" | "hsetnx" => {
                let h = get_or!(self, arg(1)?, Hash, BTreeMap::new());
                for p in a[2..].chunks(2) {
                    if let [f, v] = p {
                        if cmd == "hsetnx" && h.contains_key(f) {
                            continue;
                        }
                        h.insert(f.clone(), v.clone());
                    }
                }
            }
            "hdel" => {
                let h = get_or!(self, arg(1)?, Hash, BTreeMap::new());
                for f in &a[2..] {
                    h.remove(f);
                }
            }
            "hincrby" | "hincrbyfloat" => {
                let by = arg(3)?;
                let h = get_or!(self, arg(1)?, Hash, BTreeMap::new());
                let cur = h.entry(arg(2)?.to_vec()).or_insert_with(|| b"0".to_vec());
                *cur = if cmd == "hincrby" {
                    (int(cur)? + int(by)?).to_string().into_bytes()
                } else {
                    fmt_float(float(cur)? + float(by)?)
                };
            }
            "xadd" => {
                let mut i = 2;
                while let Some(o) = a.get(i) {
                    match String::from_utf8_lossy(o).to_ascii_lowercase().as_str() {
                        "nomkstream" => i += 1,
                        "maxlen" | "minid" => {
                            return Err("XADD with trimming in an AOF is not supported".into())
                        }
                        _ => break,
                    }
                }
                let eid = id(arg(i)?)?;
                let fields: Vec<(Vec<u8>, Vec<u8>)> = a[i + 1..]
                    .chunks(2)
                    .filter_map(|p| match p {
                        [f, v] => Some((f.clone(), v.clone())),
                        _ => None,
                    })
                    .collect();
                let s = get_or!(self, arg(1)?, Stream, Box::default());
                s.entries.push(StreamEntry { id: eid, fields });
                s.length += 1;
                s.last_id = eid;
                s.entries_added = Some(s.entries_added.unwrap_or(0) + 1);
                s.first_id = s.entries.first().map(|e| e.id);
                s.max_deleted_id.get_or_insert(StreamId::default());
            }
            "xdel" => {
                let ids: Vec<StreamId> = a[2..]
                    .iter()
                    .map(|x| id(x))
                    .collect::<std::result::Result<_, _>>()?;
                let s = get_or!(self, arg(1)?, Stream, Box::default());
                s.entries.retain(|e| !ids.contains(&e.id));
                s.length = s.entries.len() as u64;
                if let Some(m) = ids.iter().max() {
                    s.max_deleted_id = Some(s.max_deleted_id.unwrap_or_default().max(*m));
                }
                s.first_id = s.entries.first().map(|e| e.id);
            }
            "xsetid" => {
                let last = id(arg(2)?)?;
                let mut opts: HashMap<String, Vec<u8>> = HashMap::new();
                for p in a[3..].chunks(2) {
                    if let [k, v] = p {
                        opts.insert(String::from_utf8_lossy(k).to_ascii_lowercase(), v.clone());
                    }
                }
                let s = get_or!(self, arg(1)?, Stream, Box::default());
                s.last_id = last;
                if let Some(n) = opts.get("entriesadded") {
                    s.entries_added = Some(int(n)? as u64);
                }
                if let Some(m) = opts.get("maxdeletedid") {
                    s.max_deleted_id = Some(id(m)?);
                }
            }
            "xgroup" => {
                let sub = String::from_utf8_lossy(arg(1)?).to_ascii_lowercase();
                let (key, group) = (arg(2)?, arg(3)?.to_vec());
                let s = get_or!(self, key, Stream, Box::default());
                match sub.as_str() {
                    "create" => {
                        let last = if arg(4)? == b"$" {
                            s.last_id
                        } else {
                            id(arg(4)?)?
                        };
                        let mut entries_read = None;
                        if let Some(i) = a
                            .iter()
                            .position(|x| x.eq_ignore_ascii_case(b"entriesread"))
                        {
                            entries_read = Some(int(arg(i + 1)?)? as u64);
                        }
                        s.groups.push(ConsumerGroup {
                            name: group,
                            last_delivered_id: last,
                            entries_read,
                            pel: Vec::new(),
                            consumers: Vec::new(),
                            nacked: Vec::new(),
                        });
                    }
                    "setid" => {
                        if let Some(g) = s.groups.iter_mut().find(|g| g.name == group) {
                            g.last_delivered_id = id(arg(4)?)?;
                        }
                    }
                    "destroy" => s.groups.retain(|g| g.name != group),
                    "createconsumer" => {
                        let c = arg(4)?.to_vec();
                        if let Some(g) = s.groups.iter_mut().find(|g| g.name == group) {
                            if !g.consumers.iter().any(|x| x.name == c) {
                                g.consumers.push(basalt_rdb::Consumer {
                                    name: c,
                                    seen_time_ms: now_ms(),
                                    active_time_ms: None,
                                    pel: Vec::new(),
                                });
                            }
                        }
                    }
                    "delconsumer" => {
                        let c = arg(4)?;
                        if let Some(g) = s.groups.iter_mut().find(|g| g.name == group) {
                            g.consumers.retain(|x| x.name != c);
                        }
                    }
                    _ => return Err(format!("XGROUP {sub} is not supported")),
                }
            }
            "restore" => {
                let ttl = int(arg(2)?)?;
                let (v, _) = basalt_rdb::decode_dump(arg(3)?, &DecodeOptions::default(), None)
                    .map_err(|e| format!("RESTORE payload: {e}"))?;
                let abs = a[4..].iter().any(|x| x.eq_ignore_ascii_case(b"absttl"));
                let exp = match ttl {
                    0 => None,
                    t if abs => Some(t),
                    t => Some(now_ms() + t),
                };
                self.keys
                    .insert((db, arg(1)?.to_vec()), (from_value(v), exp));
            }
            "function" if arg(1)?.eq_ignore_ascii_case(b"load") => {
                let code = a.last().cloned().unwrap_or_default();
                let f = Function::from_code(code)
                    .ok_or("FUNCTION LOAD: code without '#!<engine> name=<library>'")?;
                self.functions.insert(f.library.clone(), f);
            }
            _ => {
                return Err(format!(
                    "command '{}' is not supported in AOF input (convert the AOF with Redis first)",
                    String::from_utf8_lossy(&a[0])
                ))
            }
        }
        // Emptied collections disappear, as in Redis.
        if let Some(k) = a.get(1) {
            let gone = match self.keys.get(&(db, k.clone())) {
                Some((V::List(l), _)) => l.is_empty(),
                Some((V::Set(s), _)) => s.is_empty(),
                Some((V::Zset(z), _)) => z.is_empty(),
                Some((V::Hash(h), _)) => h.is_empty(),
                _ => false,
            };
            if gone {
                self.keys.remove(&(db, k.clone()));
            }
        }
        Ok(())
    }
}
