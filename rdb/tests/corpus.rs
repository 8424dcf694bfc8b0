//! Every dump of `shared/rdb-corpus/` decodes to exactly its expected JSON
//! (schema `rdb-corpus-expected/1`, see the corpus README), and every corrupt
//! one fails cleanly with a byte offset.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use basalt_rdb::{DecodeOptions, Entry, Function, Item, MappedFile, Reader, Value};
use base64::Engine;
use serde_json::{json, Value as J};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/rdb-corpus"
    ))
}

fn bytes(b: &[u8]) -> J {
    if b.len() > 16384 {
        return json!({"len": b.len(), "sha256": hex(&Sha256::digest(b))});
    }
    match std::str::from_utf8(b) {
        Ok(s) if !s.chars().any(|c| (c as u32) < 0x20 || c as u32 == 0x7f) => {
            J::String(s.to_string())
        }
        _ => json!({"b64": base64::engine::general_purpose::STANDARD.encode(b)}),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn score(s: f64) -> J {
    if s == f64::INFINITY {
        J::String("inf".into())
    } else if s == f64::NEG_INFINITY {
        J::String("-inf".into())
    } else {
        // -0 is returned as 0 by Redis.
        J::from(if s == 0.0 { 0.0 } else { s })
    }
}

fn value_json(v: &Value) -> J {
    match v {
        Value::String(s) => bytes(s),
        Value::List(items) => J::Array(items.iter().map(|i| bytes(i)).collect()),
        Value::Set(items) => {
            let mut s: Vec<&Vec<u8>> = items.iter().collect();
            s.sort();
            J::Array(s.into_iter().map(|i| bytes(i)).collect())
        }
        Value::SortedSet(pairs) => {
            let mut p: Vec<&(Vec<u8>, f64)> = pairs.iter().collect();
            p.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            J::Array(
                p.into_iter()
                    .map(|(m, s)| json!([bytes(m), score(*s)]))
                    .collect(),
            )
        }
        Value::Hash(fields) => {
            let mut f: Vec<_> = fields.iter().collect();
            f.sort_by(|a, b| a.field.cmp(&b.field));
            J::Array(
                f.into_iter()
                    .map(|h| json!([bytes(&h.field), bytes(&h.value)]))
                    .collect(),
            )
        }
        Value::Stream(s) => {
            let id = |i: basalt_rdb::StreamId| J::String(i.to_string());
            let mut groups: Vec<_> = s.groups.iter().collect();
            groups.sort_by(|a, b| a.name.cmp(&b.name));
            let groups: Vec<J> = groups
                .into_iter()
                .map(|g| {
                    let owner = |pid: basalt_rdb::StreamId| {
                        g.consumers.iter().find(|c| c.pel.contains(&pid)).map(|c| bytes(&c.name)).unwrap_or(J::Null)
                    };
                    let mut pel: Vec<_> = g.pel.iter().collect();
                    pel.sort_by_key(|p| p.id);
                    let mut consumers: Vec<_> = g.consumers.iter().collect();
                    consumers.sort_by(|a, b| a.name.cmp(&b.name));
                    json!({
                        "name": bytes(&g.name),
                        "last_delivered_id": id(g.last_delivered_id),
                        "entries_read": g.entries_read,
                        "pel": pel.iter().map(|p| json!({"id": id(p.id), "consumer": owner(p.id),
                            "delivery_time_ms": p.delivery_time_ms, "delivery_count": p.delivery_count})).collect::<Vec<_>>(),
                        "consumers": consumers.iter().map(|c| {
                            let mut cp = c.pel.clone();
                            cp.sort();
                            json!({"name": bytes(&c.name), "seen_time_ms": c.seen_time_ms,
                                "pel": cp.into_iter().map(id).collect::<Vec<_>>()})
                        }).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({
                "length": s.length,
                "last_id": id(s.last_id),
                "first_id": s.first_id.map(id),
                "max_deleted_id": s.max_deleted_id.map(id),
                "entries_added": s.entries_added,
                "listpack_nodes": s.listpack_nodes,
                "entries": s.entries.iter().map(|e| json!({"id": id(e.id),
                    "fields": e.fields.iter().map(|(f, v)| json!([bytes(f), bytes(v)])).collect::<Vec<_>>()})).collect::<Vec<_>>(),
                "groups": groups,
            })
        }
        Value::Module(m) => json!({"module": m.name, "encver": m.encver, "raw_len": m.raw.len()}),
        _ => J::Null,
    }
}

fn key_json(e: &Entry) -> J {
    json!({"key": bytes(&e.key), "type": e.value.type_name(), "expire_ms": e.expire_ms, "value": value_json(&e.value)})
}

/// Lua function names registered by a library's code.
fn function_names(code: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(code);
    let mut names = Vec::new();
    for (i, _) in text.match_indices("register_function") {
        let rest = text[i + "register_function".len()..].trim_start();
        let rest = if let Some(r) = rest.strip_prefix('(') {
            r
        } else if let Some(r) = rest.strip_prefix('{') {
            let p = r.find("function_name").unwrap();
            r[p + "function_name".len()..]
                .trim_start()
                .strip_prefix('=')
                .unwrap()
        } else {
            continue;
        };
        let rest = rest.trim_start();
        let q = rest.chars().next().unwrap();
        let end = rest[1..].find(q).unwrap();
        names.push(rest[1..1 + end].to_string());
    }
    names.sort();
    names
}

fn function_json(f: &Function) -> J {
    json!({
        "library": bytes(&f.library),
        "engine": String::from_utf8_lossy(&f.engine).to_uppercase(),
        "functions": function_names(&f.code),
        "code": bytes(&f.code),
    })
}

struct Decoded {
    aux: Vec<J>,
    functions: Vec<Function>,
    entries: Vec<Entry>,
}

fn decode(path: &Path) -> basalt_rdb::Result<Decoded> {
    let file = MappedFile::open(path)?;
    let mut d = Decoded {
        aux: vec![],
        functions: vec![],
        entries: vec![],
    };
    for item in file.reader(DecodeOptions::default())? {
        match item? {
            Item::Aux { key, value } => d.aux.push(json!([bytes(&key), bytes(&value)])),
            Item::Function(f) => d.functions.push(f),
            Item::Entry(e) => d.entries.push(e),
            _ => {}
        }
    }
    // Decoding through `Read` must give the same result.
    let f = std::fs::File::open(path)?;
    let n = Reader::from_read(std::io::BufReader::new(f), DecodeOptions::default())?
        .filter(|i| matches!(i, Ok(Item::Entry(_)) | Err(_)))
        .collect::<basalt_rdb::Result<Vec<_>>>()?
        .len();
    assert_eq!(
        n,
        d.entries.len(),
        "Read and slice readers disagree on {}",
        path.display()
    );
    Ok(d)
}

/// Numbers compared as f64 (expected files write integers and doubles alike).
fn normalize(v: &J) -> J {
    match v {
        J::Number(n) => serde_json::Number::from_f64(n.as_f64().unwrap())
            .map(J::Number)
            .unwrap_or(J::Null),
        J::Array(a) => J::Array(a.iter().map(normalize).collect()),
        J::Object(o) => J::Object(o.iter().map(|(k, v)| (k.clone(), normalize(v))).collect()),
        other => other.clone(),
    }
}

fn strip_key(k: &J) -> J {
    let mut out = serde_json::Map::new();
    for m in ["key", "type", "expire_ms", "value"] {
        out.insert(m.into(), k[m].clone());
    }
    let mut out = J::Object(out);
    // Members that RDB <= 9 streams do not store: Redis derived them.
    if let Some(derived) = k["value"].get("derived_by_redis").and_then(J::as_array) {
        let v = out["value"].as_object_mut().unwrap();
        v.remove("derived_by_redis");
        for d in derived {
            match d.as_str().unwrap() {
                "groups[].entries_read" => {
                    for g in v["groups"].as_array_mut().unwrap() {
                        g["entries_read"] = J::Null;
                    }
                }
                m => {
                    v.remove(m);
                }
            }
        }
    }
    normalize(&out)
}

fn strip_mine(k: &J, expected: &J) -> J {
    let mut k = k.clone();
    if let Some(derived) = expected["value"]
        .get("derived_by_redis")
        .and_then(J::as_array)
    {
        let v = k["value"].as_object_mut().unwrap();
        for d in derived {
            if d.as_str() != Some("groups[].entries_read") {
                v.remove(d.as_str().unwrap());
            }
        }
    }
    normalize(&k)
}

fn compare(name: &str, d: &Decoded, exp: &J) -> Result<(), String> {
    if J::Array(d.aux.clone()) != exp["aux"] {
        return Err(format!(
            "aux differ: got {:?}, expected {}",
            d.aux, exp["aux"]
        ));
    }
    let mut funcs: Vec<J> = d.functions.iter().map(function_json).collect();
    funcs.sort_by(|a, b| a["library"].to_string().cmp(&b["library"].to_string()));
    let exp_funcs = exp.get("functions").cloned().unwrap_or(J::Array(vec![]));
    if J::Array(funcs.clone()) != exp_funcs {
        return Err(format!(
            "functions differ: got {funcs:?}, expected {exp_funcs}"
        ));
    }
    let mut dbs: BTreeMap<u64, Vec<&Entry>> = BTreeMap::new();
    for e in &d.entries {
        dbs.entry(e.db).or_default().push(e);
    }
    let exp_dbs = exp["databases"].as_array().unwrap();
    if dbs.len() != exp_dbs.len() {
        return Err(format!(
            "{name}: {} databases, expected {}",
            dbs.len(),
            exp_dbs.len()
        ));
    }
    for ((db, entries), edb) in dbs.iter_mut().zip(exp_dbs) {
        if *db != edb["db"] || entries.len() != edb["key_count"] {
            return Err(format!(
                "db {db} with {} keys, expected {} / {}",
                entries.len(),
                edb["db"],
                edb["key_count"]
            ));
        }
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        if edb["keys"].is_null() {
            check_summary(entries, &edb["summary"])?;
            continue;
        }
        for (e, k) in entries.iter().zip(edb["keys"].as_array().unwrap()) {
            let mine = strip_mine(&key_json(e), k);
            let theirs = strip_key(k);
            if mine != theirs {
                return Err(format!(
                    "key differs:\n got      {mine}\n expected {theirs}"
                ));
            }
        }
    }
    Ok(())
}

fn check_summary(entries: &[&Entry], s: &J) -> Result<(), String> {
    let mut types: BTreeMap<&str, u64> = BTreeMap::new();
    let mut h = Sha256::new();
    for e in entries {
        *types.entry(e.value.type_name()).or_default() += 1;
        if let Value::String(v) = &e.value {
            h.update((e.key.len() as u32).to_le_bytes());
            h.update(&e.key);
            h.update((v.len() as u32).to_le_bytes());
            h.update(v);
        }
    }
    if serde_json::to_value(&types).unwrap() != s["types"] {
        return Err(format!("types {types:?} expected {}", s["types"]));
    }
    let expires = entries.iter().filter(|e| e.expire_ms.is_some()).count();
    if expires != s["expires"] {
        return Err("expires count differs".into());
    }
    let first: Vec<J> = entries
        .iter()
        .take(10)
        .map(|e| normalize(&key_json(e)))
        .collect();
    let exp_first: Vec<J> = s["first_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(strip_key)
        .collect();
    let last: Vec<J> = entries[entries.len() - 10..]
        .iter()
        .map(|e| normalize(&key_json(e)))
        .collect();
    let exp_last: Vec<J> = s["last_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(strip_key)
        .collect();
    if first != exp_first || last != exp_last {
        return Err("first/last keys differ".into());
    }
    if let Some(d) = s.get("strings_digest_sha256").and_then(J::as_str) {
        if hex(&h.finalize()) != d {
            return Err("strings digest differs".into());
        }
    }
    Ok(())
}

/// Facts about files that have no expected JSON (Redis 7.0 refuses them and
/// Valkey 8.0 cannot load them either), from their descriptions.
fn check_refused(name: &str, d: &Decoded) -> Option<String> {
    let types: Vec<(&str, u8)> = d
        .entries
        .iter()
        .map(|e| (e.value.type_name(), e.rdb_type))
        .collect();
    let field_ttls = |e: &Entry| match &e.value {
        Value::Hash(h) => h.iter().filter(|f| f.expire_ms.is_some()).count(),
        _ => 0,
    };
    let ok = match name {
        "hdt_hash_with_hfe" => types == [("hash", 24)] && field_ttls(&d.entries[0]) > 0,
        "hdt_hash_as_listpack_with_hfe" => {
            types == [("hash", 25)] && field_ttls(&d.entries[0]) == 2
        }
        "hdt_valkey_hash2_with_hfe" => types == [("hash", 22)] && field_ttls(&d.entries[0]) == 2,
        "replicator_dump_ttlhash" => types.len() == 3 && types.iter().all(|t| t.0 == "hash"),
        "hdt_stream_listoacks_3" => types == [("stream", 21)],
        "replicator_dump_slot" => types.len() == 5 && types.iter().all(|t| t == &("string", 0)),
        "hdt_tree" => types.len() == 7,
        "rdbtools_redis_40_with_module" | "replicator_dump_module_2" | "rdbcli_rdt_89" => d
            .entries
            .iter()
            .any(|e| matches!(&e.value, Value::Module(m) if !m.name.is_empty())),
        _ => true,
    };
    (!ok).then(|| format!("unexpected content {types:?}"))
}

fn expect_outcome(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path.with_extension("expect")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("outcome: ").map(str::to_string))
}

#[test]
fn corpus_decodes_to_expected() {
    let dir = corpus_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus at {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rdb"))
        .collect();
    files.sort();
    assert!(files.len() >= 90, "corpus has {} files", files.len());
    let mut failures = Vec::new();
    let (mut matched, mut errors, mut refused_ok) = (0, 0, 0);
    for path in &files {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let json_path = path.with_extension("json");
        let valkey_path = dir.join(format!("{name}.valkey-8.0.1.json"));
        let result = decode(path);
        if json_path.exists() || valkey_path.exists() {
            let p = if json_path.exists() {
                json_path
            } else {
                valkey_path
            };
            let exp: J = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            match result {
                Ok(d) => match compare(&name, &d, &exp) {
                    Ok(()) => matched += 1,
                    Err(e) => failures.push(format!("{name}: {e}")),
                },
                Err(e) => failures.push(format!("{name}: decode failed: {e}")),
            }
            continue;
        }
        match (expect_outcome(path).as_deref(), result) {
            (Some("error"), Err(e)) => {
                assert!(e.offset().is_some(), "{name}: error without offset: {e}");
                // The streaming reader must fail too (and not allocate for a bogus length).
                let f = std::fs::File::open(path).unwrap();
                let streamed = Reader::from_read(f, DecodeOptions::default())
                    .and_then(|r| r.collect::<basalt_rdb::Result<Vec<_>>>());
                assert!(
                    streamed.is_err(),
                    "{name}: streaming reader accepted a corrupt file"
                );
                eprintln!("{name}: error as expected: {e}");
                errors += 1;
            }
            (Some("error"), Ok(_)) => {
                failures.push(format!("{name}: corrupt file decoded without error"))
            }
            (Some("refused"), Ok(d)) => {
                eprintln!(
                    "{name}: refused by Redis 7.0, decoded {} keys",
                    d.entries.len()
                );
                if let Some(err) = check_refused(&name, &d) {
                    failures.push(format!("{name}: {err}"));
                }
                refused_ok += 1;
            }
            // A pre-GA module value (type 6, Redis 4.0 RCs) has no self-describing
            // layout: it cannot be skipped without the module, so a clear
            // "unsupported" error naming it is the correct outcome.
            (Some("refused"), Err(e @ basalt_rdb::Error::Unsupported { .. }))
                if e.to_string().contains("type 6") =>
            {
                eprintln!("{name}: refused by Redis 7.0, rejected here: {e}");
                refused_ok += 1;
            }
            (Some("refused"), Err(e)) => {
                failures.push(format!("{name}: well-formed file failed: {e}"))
            }
            (o, _) => failures.push(format!("{name}: no expectation ({o:?})")),
        }
    }
    eprintln!("matched {matched}, corrupt rejected {errors}, refused-but-decoded {refused_ok}");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn module_modes() {
    use basalt_rdb::ModuleMode;
    let path = corpus_dir().join("replicator_dump_module_2.rdb");
    let file = MappedFile::open(&path).unwrap();
    let read = |modules| {
        let mut r = file
            .reader(DecodeOptions {
                modules,
                ..Default::default()
            })
            .unwrap();
        let items: basalt_rdb::Result<Vec<Item>> = r.by_ref().collect();
        (items, r.warnings().to_vec())
    };
    let (items, _) = read(ModuleMode::Report);
    let names: Vec<String> = items
        .unwrap()
        .into_iter()
        .filter_map(|i| match i {
            Item::Entry(Entry {
                value: Value::Module(m),
                ..
            }) => Some(m.name),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["hellotype"]);
    let (items, warnings) = read(ModuleMode::Skip);
    assert!(items.unwrap().iter().all(|i| !matches!(
        i,
        Item::Entry(Entry {
            value: Value::Module(_),
            ..
        })
    )));
    assert!(
        warnings.iter().any(|w| w.contains("hellotype")),
        "{warnings:?}"
    );
    let (items, _) = read(ModuleMode::Error);
    let err = items.unwrap_err();
    assert!(
        err.to_string().contains("hellotype") && err.offset().is_some(),
        "{err}"
    );
}

#[test]
fn empty_keys_are_skipped_with_warnings_or_kept() {
    let path = corpus_dir().join("redis_corrupt_empty_keys.rdb");
    let file = MappedFile::open(&path).unwrap();
    let mut r = file.reader(DecodeOptions::default()).unwrap();
    let n = r
        .by_ref()
        .filter(|i| matches!(i, Ok(Item::Entry(_))))
        .count();
    assert_eq!(n, 0);
    assert_eq!(r.warnings().len(), 9, "{:?}", r.warnings());
    let r = file
        .reader(DecodeOptions {
            skip_empty_keys: false,
            ..Default::default()
        })
        .unwrap();
    let kept: Vec<Entry> = r
        .filter_map(|i| match i.unwrap() {
            Item::Entry(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(kept.len(), 9);
    assert!(kept.iter().all(|e| e.value.is_empty_collection()));
}
