//! `basalt-rdb` on every dump of `shared/rdb-corpus/`: `dump --format json`
//! equals the expected JSON, `check` agrees with the expected outcome,
//! `info`, `keys` and `memory` succeed and agree with each other.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod support;

use serde_json::Value as J;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use support::*;

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

/// key, type, expire_ms, value; stream members that RDB <= 9 does not store
/// (Redis derived them, `derived_by_redis`) removed from both sides.
fn comparable(k: &J, expected: &J) -> J {
    let mut out = serde_json::Map::new();
    for m in ["key", "type", "expire_ms", "value"] {
        out.insert(m.into(), k[m].clone());
    }
    let mut out = J::Object(out);
    if let Some(derived) = expected["value"]
        .get("derived_by_redis")
        .and_then(J::as_array)
    {
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
    // Consumers' active time is not in the corpus schema.
    if let Some(groups) = out["value"].get_mut("groups").and_then(J::as_array_mut) {
        for g in groups {
            for c in g["consumers"].as_array_mut().unwrap() {
                c.as_object_mut().unwrap().remove("active_time_ms");
            }
        }
    }
    normalize(&out)
}

fn compare(name: &str, got: &J, exp: &J) -> Result<(), String> {
    if got["aux"] != exp["aux"] {
        return Err(format!(
            "{name}: aux differ: {} vs {}",
            got["aux"], exp["aux"]
        ));
    }
    let none = J::Array(vec![]);
    let gf = got.get("functions").unwrap_or(&none);
    let ef = exp.get("functions").unwrap_or(&none);
    if gf != ef {
        return Err(format!("{name}: functions differ:\n {gf}\n {ef}"));
    }
    if got["rdb_version"] != exp["rdb_version"]
        || got["magic"] != exp["magic"]
        || got["header"] != exp["header"]
    {
        return Err(format!("{name}: header differs"));
    }
    // Keys Redis skips on purpose (empty collections) are in our output.
    let skipped: Vec<(u64, J)> = exp["scan"]["not_loaded_by_redis"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|k| (k["db"].as_u64().unwrap(), k["key"].clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut gdbs: Vec<(u64, Vec<J>)> = Vec::new();
    for d in got["databases"].as_array().unwrap() {
        let db = d["db"].as_u64().unwrap();
        let keys: Vec<J> = d["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| !skipped.contains(&(db, k["key"].clone())))
            .cloned()
            .collect();
        if !keys.is_empty() {
            gdbs.push((db, keys));
        }
    }
    let edbs = exp["databases"].as_array().unwrap();
    if gdbs.len() != edbs.len() {
        return Err(format!(
            "{name}: {} databases, expected {}",
            gdbs.len(),
            edbs.len()
        ));
    }
    for ((db, keys), edb) in gdbs.iter().zip(edbs) {
        if *db != edb["db"] || keys.len() as u64 != edb["key_count"] {
            return Err(format!(
                "{name}: db {db} with {} keys, expected {} / {}",
                keys.len(),
                edb["db"],
                edb["key_count"]
            ));
        }
        if edb["keys"].is_null() {
            summary(name, keys, &edb["summary"])?;
            continue;
        }
        for (k, e) in keys.iter().zip(edb["keys"].as_array().unwrap()) {
            let (mine, theirs) = (comparable(k, e), comparable(e, e));
            if mine != theirs {
                return Err(format!(
                    "{name}: key differs:\n got      {mine}\n expected {theirs}"
                ));
            }
            for m in ["rdb_type", "rdb_type_name", "lru_idle_s", "lfu_freq"] {
                if k.get(m) != e.get(m) && e.get(m).is_some() {
                    return Err(format!(
                        "{name}: key {}: {m} {:?} expected {:?}",
                        k["key"],
                        k.get(m),
                        e.get(m)
                    ));
                }
            }
        }
    }
    Ok(())
}

fn bytes_of(j: &J) -> Vec<u8> {
    use base64::Engine;
    match j {
        J::String(s) => s.as_bytes().to_vec(),
        J::Object(o) if o.contains_key("b64") => base64::engine::general_purpose::STANDARD
            .decode(o["b64"].as_str().unwrap())
            .unwrap(),
        other => panic!("not full bytes: {other}"),
    }
}

fn summary(name: &str, keys: &[J], s: &J) -> Result<(), String> {
    let mut types: BTreeMap<String, u64> = BTreeMap::new();
    let mut h = Sha256::new();
    for k in keys {
        *types
            .entry(k["type"].as_str().unwrap().to_string())
            .or_default() += 1;
        if k["type"] == "string" {
            let (kb, vb) = (bytes_of(&k["key"]), bytes_of(&k["value"]));
            h.update((kb.len() as u32).to_le_bytes());
            h.update(&kb);
            h.update((vb.len() as u32).to_le_bytes());
            h.update(&vb);
        }
    }
    if serde_json::to_value(&types).unwrap() != s["types"] {
        return Err(format!("{name}: types {types:?} expected {}", s["types"]));
    }
    let expires = keys.iter().filter(|k| !k["expire_ms"].is_null()).count();
    if expires != s["expires"] {
        return Err(format!("{name}: expires differ"));
    }
    let first: Vec<J> = keys[..10].iter().map(|k| comparable(k, k)).collect();
    let efirst: Vec<J> = s["first_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| comparable(k, k))
        .collect();
    let last: Vec<J> = keys[keys.len() - 10..]
        .iter()
        .map(|k| comparable(k, k))
        .collect();
    let elast: Vec<J> = s["last_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| comparable(k, k))
        .collect();
    if first != efirst || last != elast {
        return Err(format!("{name}: first/last keys differ"));
    }
    if let Some(d) = s.get("strings_digest_sha256").and_then(J::as_str) {
        let got: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        if got != d {
            return Err(format!("{name}: strings digest differs"));
        }
    }
    Ok(())
}

#[test]
fn dump_json_equals_corpus_expectations() {
    let mut failures = Vec::new();
    let mut compared = 0;
    for f in corpus_files() {
        let name = f.file_stem().unwrap().to_str().unwrap().to_string();
        let expected = f.with_extension("json");
        let out = rdb(&["dump", p(&f), "--format", "json", "--quiet"]);
        if !expected.exists() {
            // Refused or corrupt: a clean error or a document, never a crash.
            let outcome = expect_outcome(&f).unwrap_or_default();
            assert!(out.status.code().is_some(), "{name}: killed by a signal");
            if outcome == "error" && out.status.success() {
                failures.push(format!("{name}: corrupt file dumped without error"));
            }
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(
                    err.starts_with("basalt-rdb: "),
                    "{name}: unclear error {err}"
                );
            }
            continue;
        }
        if !out.status.success() {
            failures.push(format!(
                "{name}: failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let got: J = match serde_json::from_slice(&out.stdout) {
            Ok(j) => j,
            Err(e) => {
                failures.push(format!("{name}: output is not JSON: {e}"));
                continue;
            }
        };
        let exp: J = serde_json::from_str(&std::fs::read_to_string(&expected).unwrap()).unwrap();
        if let Err(e) = compare(&name, &got, &exp) {
            failures.push(e);
        }
        compared += 1;
    }
    assert!(compared >= 70, "only {compared} files compared");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn jsonl_and_unsorted_json_hold_the_same_records() {
    for name in [
        "gen70_all_types",
        "gen70_multidb",
        "redis_encodings",
        "gen70_stream_groups",
    ] {
        let f = corpus(&format!("{name}.rdb"));
        let sorted: J = serde_json::from_slice(&rdb_ok(&["dump", p(&f)])).unwrap();
        let streamed: J = serde_json::from_slice(&rdb_ok(&["dump", p(&f), "--no-sort"])).unwrap();
        let lines = rdb_ok(&["dump", p(&f), "--format", "jsonl"]);
        let mut from_lines: BTreeMap<(u64, String), J> = BTreeMap::new();
        for l in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let mut k: J = serde_json::from_slice(l).unwrap();
            let db = k["db"].as_u64().unwrap();
            k.as_object_mut().unwrap().remove("db");
            from_lines.insert((db, k["key"].to_string()), k);
        }
        for doc in [&sorted, &streamed] {
            let mut n = 0;
            for d in doc["databases"].as_array().unwrap() {
                for k in d["keys"].as_array().unwrap() {
                    assert_eq!(
                        from_lines[&(d["db"].as_u64().unwrap(), k["key"].to_string())],
                        *k,
                        "{name}"
                    );
                    n += 1;
                }
            }
            assert_eq!(n, from_lines.len(), "{name}");
            assert_eq!(doc["aux"], sorted["aux"]);
        }
    }
}

#[test]
fn check_agrees_with_expected_outcomes() {
    for f in corpus_files() {
        let name = f.file_stem().unwrap().to_str().unwrap().to_string();
        let o = rdb(&["check", p(&f)]);
        let stdout = String::from_utf8_lossy(&o.stdout);
        match expect_outcome(&f).as_deref() {
            Some("error") if name != "redis_corrupt_empty_keys" => {
                assert_eq!(o.status.code(), Some(1), "{name}: {stdout}");
                assert!(stdout.contains("RDB ERROR DETECTED"), "{name}: {stdout}");
                assert!(stdout.contains("first bad offset: "), "{name}: {stdout}");
            }
            Some("error") => {}
            // Well-formed files (loaded or refused by Redis 7.0 for other reasons).
            _ => {
                if !f.with_extension("json").exists() && o.status.code() == Some(1) {
                    // Refused files the reader does not support either (e.g. pre-GA modules).
                    assert!(stdout.contains("RDB ERROR DETECTED"), "{name}: {stdout}");
                    continue;
                }
                assert_eq!(o.status.code(), Some(0), "{name}: {stdout}");
                assert!(stdout.contains("RDB looks OK"), "{name}");
            }
        }
    }
    // Exact offsets for the hand-made damage.
    let o = rdb(&["check", p(&corpus("corrupt_crc_mismatch.rdb"))]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("first bad offset: 1704"));
    let o = rdb(&["check", p(&corpus("corrupt_truncated_mid_value.rdb"))]);
    assert_eq!(o.status.code(), Some(1));
    let tmp = tempfile::tempdir().unwrap();
    let padded = tmp.path().join("padded.rdb");
    let mut b = std::fs::read(corpus("gen70_strings.rdb")).unwrap();
    b.extend_from_slice(b"xx");
    std::fs::write(&padded, &b).unwrap();
    let o = rdb(&["check", p(&padded)]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout)
        .contains("2 bytes after the end of the dump (offset 1712)"));
    let o = rdb(&["check", "/nonexistent/dump.rdb"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/dump.rdb"));
}

#[test]
fn info_keys_and_memory_agree_on_every_loadable_dump() {
    let tmp = tempfile::tempdir().unwrap();
    for f in corpus_files() {
        if !f.with_extension("json").exists() {
            continue;
        }
        let name = f.file_stem().unwrap().to_str().unwrap().to_string();
        let info: J = serde_json::from_slice(&rdb_ok(&["info", p(&f), "--json"])).unwrap();
        // Keys with control characters are quoted: one line per key.
        let keys = rdb_ok(&["keys", p(&f)]);
        let nkeys = keys.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(info["keys"].as_u64().unwrap(), nkeys, "{name}");
        let html = tmp.path().join(format!("{name}.html"));
        let mem: J = serde_json::from_slice(&rdb_ok(&[
            "memory",
            p(&f),
            "--format",
            "json",
            "--html",
            p(&html),
        ]))
        .unwrap();
        assert_eq!(mem["total"]["keys"].as_u64().unwrap(), nkeys, "{name}");
        let page = std::fs::read_to_string(&html).unwrap();
        assert!(
            page.contains("<div id=\"map\">")
                && !page.contains("http://")
                && !page.contains("https://"),
            "{name}"
        );
        let csv = rdb_ok(&["memory", p(&f), "--format", "csv"]);
        let rows = csv.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count() as u64;
        assert!(rows > nkeys, "{name}: {rows} csv rows for {nkeys} keys");
    }
}

#[test]
fn filters_select_keys() {
    let f = corpus("gen70_all_types.rdb");
    let all = String::from_utf8(rdb_ok(&["keys", p(&f)])).unwrap();
    let by_glob = String::from_utf8(rdb_ok(&["keys", p(&f), "--match", "s:*"])).unwrap();
    let mut g: Vec<&str> = by_glob.lines().collect();
    g.sort();
    let mut want: Vec<&str> = all.lines().filter(|k| k.starts_with("s:")).collect();
    want.sort();
    assert_eq!(g, want);
    assert!(!g.is_empty());
    let by_re = String::from_utf8(rdb_ok(&["keys", p(&f), "--regex", "^s:"])).unwrap();
    assert_eq!(by_re.lines().count(), g.len());
    let zsets = String::from_utf8(rdb_ok(&["keys", p(&f), "--type", "zset,hash"])).unwrap();
    assert!(
        zsets
            .lines()
            .all(|k| k.starts_with("z:") || k.starts_with("h:")),
        "{zsets}"
    );
    let db3 = String::from_utf8(rdb_ok(&["keys", p(&f), "--db", "3"])).unwrap();
    assert!(db3.lines().all(|k| k.starts_with("db3:")), "{db3}");
    let big = String::from_utf8(rdb_ok(&["keys", p(&f), "--min-size", "10000"])).unwrap();
    assert!(big.lines().count() >= 1 && big.lines().count() < all.lines().count());
    // Expiry relative to a given time.
    let e = corpus("gen70_expiry.rdb");
    let exp = String::from_utf8(rdb_ok(&["keys", p(&e), "--expired"])).unwrap();
    assert!(exp.lines().any(|k| k == "exp:past"), "{exp}");
    let live = String::from_utf8(rdb_ok(&["keys", p(&e), "--not-expired"])).unwrap();
    assert!(!live.lines().any(|k| k == "exp:past"));
    let total = String::from_utf8(rdb_ok(&["keys", p(&e)]))
        .unwrap()
        .lines()
        .count();
    assert_eq!(exp.lines().count() + live.lines().count(), total);
    let then = String::from_utf8(rdb_ok(&["keys", p(&e), "--expired", "--now", "0"])).unwrap();
    assert_eq!(then.lines().count(), 0);
    // Bad arguments.
    assert_eq!(
        rdb(&["keys", p(&f), "--type", "blob"]).status.code(),
        Some(1)
    );
    assert_eq!(rdb(&["keys", p(&f), "--regex", "("]).status.code(), Some(1));
}

#[test]
fn every_subcommand_help_has_an_example() {
    for sub in [
        "info", "keys", "dump", "memory", "check", "convert", "import", "export",
    ] {
        let out = String::from_utf8(rdb_ok(&[sub, "--help"])).unwrap();
        assert!(
            out.contains("Example") && out.contains(&format!("basalt-rdb {sub} ")),
            "{sub} --help has no example:\n{out}"
        );
    }
}

#[test]
fn decode_thread_gives_the_same_output() {
    for f in corpus_files()
        .into_iter()
        .filter(|f| f.with_extension("json").exists())
    {
        let one = rdb(&["dump", p(&f), "--format", "jsonl"]);
        let two = rdb(&["--decode-thread", "dump", p(&f), "--format", "jsonl"]);
        assert_eq!(one.stdout, two.stdout, "{}", f.display());
        assert_eq!(one.status.code(), two.status.code());
    }
    // Errors come through the thread too.
    let o = rdb(&[
        "--decode-thread",
        "dump",
        p(&corpus("corrupt_truncated_mid_value.rdb")),
        "--format",
        "jsonl",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("corrupt_truncated_mid_value.rdb"));
}

#[path = "../../rdb/tests/support/streams.rs"]
mod streams;

#[test]
fn redis_8_streams_dump_and_refuse_older_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("v14.rdb");
    std::fs::write(
        &src,
        streams::file(b"REDIS0014", &streams::stream_body(27, true)),
    )
    .unwrap();
    let out = rdb_ok(&["dump", p(&src), "--format", "jsonl"]);
    let rec: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(rec["rdb_type_name"], "STREAM_LISTPACKS_5");
    let v = &rec["value"];
    assert_eq!(v["groups"][0]["nacked"], serde_json::json!(["1-1"]));
    assert_eq!(
        v["groups"][0]["pel"][0]["consumer"],
        serde_json::Value::Null
    );
    assert_eq!(v["idmp"]["duration_s"], 100);
    assert_eq!(v["idmp"]["max_entries"], 50);
    assert_eq!(
        v["idmp"]["producers"][0]["entries"],
        serde_json::json!([["i1", "1-1"]])
    );
    let dst = tmp.path().join("v10.rdb");
    let r = rdb(&["convert", p(&src), "-o", p(&dst), "--rdb-version", "10"]);
    assert_eq!(r.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&r.stderr);
    assert!(msg.contains("XNACK"), "{msg}");
    assert_eq!(rdb(&["check", p(&src)]).status.code(), Some(0));
}

#[path = "../../rdb/tests/support/arrays.rs"]
mod arrays;

/// A `REDIS0014` dump with a Redis 8.8 array (librdb 2.3.0's fixture
/// values, a cursor at u64::MAX-1) between two strings.
fn array_dump(dir: &std::path::Path) -> std::path::PathBuf {
    let mut body = vec![0, 1, b'a', 1, b'x'];
    let mut elems = arrays::mixed();
    elems.push((1 << 40, arrays::Elem::Float(f64::NEG_INFINITY)));
    elems.push((1 << 41, arrays::Elem::Int(i64::MIN)));
    elems.push((1 << 42, arrays::Elem::Sds(vec![0, 1, 2])));
    body.extend_from_slice(&arrays::array_key(b"arr", Some(u64::MAX - 1), &elems));
    body.extend_from_slice(&[0, 1, b'b', 1, b'y']);
    let src = dir.join("v14-array.rdb");
    std::fs::write(&src, arrays::file14(&body, true)).unwrap();
    src
}

#[test]
fn redis_8_arrays_dump_report_and_refuse_older_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let src = array_dump(tmp.path());
    let out = rdb_ok(&["dump", p(&src), "--format", "jsonl", "--match", "arr"]);
    let rec: J = serde_json::from_slice(&out).unwrap();
    assert_eq!(rec["type"], "array");
    assert_eq!(rec["rdb_type"], 28);
    assert_eq!(rec["rdb_type_name"], "ARRAY");
    assert_eq!(
        rec["value"],
        serde_json::json!({"elements":[
            {"idx":"0","val":"this_is_a_long_sds_string_value_long_enough"},
            {"idx":"1","val":"42"},
            {"idx":"2","val":"1.5"},
            {"idx":"3","val":"abc"},
            {"idx":"1099511627776","val":"-inf"},
            {"idx":"2199023255552","val":"-9223372036854775808"},
            {"idx":"4398046511104","val":{"b64":"AAEC"}}],
            "insert_idx":"18446744073709551614"})
    );
    // The sorted JSON document holds the same record.
    let doc: J = serde_json::from_slice(&rdb_ok(&["dump", p(&src), "--format", "json"])).unwrap();
    let keys = doc["databases"][0]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[1]["value"], rec["value"]);
    // Filters, info, keys, memory and check know the type.
    let only = rdb_ok(&["keys", p(&src), "--type", "array"]);
    assert_eq!(String::from_utf8_lossy(&only).trim(), "arr");
    let info = String::from_utf8(rdb_ok(&["info", p(&src)])).unwrap();
    assert!(info.contains("array"), "{info}");
    assert!(info.contains("ARRAY"), "{info}");
    let mem = String::from_utf8(rdb_ok(&["memory", p(&src), "--format", "csv"])).unwrap();
    assert!(
        mem.lines()
            .any(|l| l.contains("arr,") && l.contains("sparsearray")),
        "{mem}"
    );
    assert_eq!(rdb(&["check", p(&src)]).status.code(), Some(0));
    // Plain commands cannot rebuild it: warned, the other keys written.
    let r = rdb(&["dump", p(&src), "--format", "resp"]);
    assert_eq!(r.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&r.stderr).contains("Redis 8.8 array"));
    assert!(!String::from_utf8_lossy(&r.stdout).contains("arr"));
    // No target holds it: convert refuses, or drops it when asked.
    convert_refuses_or_skips(&src, &["9", "10", "11", "12", "80"], "array", "arr");
}

/// `convert` to each version refuses `src` (naming `what` and the key
/// `key`) and writes nothing; with `--skip-unrepresentable` it writes the
/// other keys, "a" and "b".
fn convert_refuses_or_skips(src: &std::path::Path, versions: &[&str], what: &str, key: &str) {
    let tmp = tempfile::tempdir().unwrap();
    for v in versions {
        let dst = tmp.path().join(format!("out-{v}.rdb"));
        let r = rdb(&["convert", p(src), "-o", p(&dst), "--rdb-version", v]);
        assert_eq!(r.status.code(), Some(1));
        let msg = String::from_utf8_lossy(&r.stderr);
        assert!(
            msg.contains(what) && msg.contains(&format!("\"{key}\"")),
            "{msg}"
        );
        assert!(!dst.exists());
        let r = rdb(&[
            "convert",
            p(src),
            "-o",
            p(&dst),
            "--rdb-version",
            v,
            "--skip-unrepresentable",
        ]);
        assert_eq!(
            r.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&r.stderr)
        );
        let names = String::from_utf8(rdb_ok(&["keys", p(&dst)])).unwrap();
        let mut names: Vec<&str> = names.lines().collect();
        names.sort();
        assert_eq!(names, ["a", "b"]);
    }
}

#[path = "../../rdb/tests/support/path_hashes.rs"]
mod path_hashes;

/// A `VALKEY081` dump with a Valkey 9.2 path hash (a TTL, the root path
/// and a binary value) between two strings.
fn path_hash_dump(dir: &std::path::Path) -> std::path::PathBuf {
    let mut body = vec![0, 1, b'a', 1, b'x', 252];
    body.extend_from_slice(&1_900_000_000_000u64.to_le_bytes());
    body.extend_from_slice(&path_hashes::path_hash_key(b"ph", &path_hashes::sample()));
    body.extend_from_slice(&[0, 1, b'b', 1, b'y']);
    let src = dir.join("valkey81-path-hash.rdb");
    std::fs::write(&src, path_hashes::file81(&body, true)).unwrap();
    src
}

#[test]
fn valkey_9_2_path_hashes_dump_report_and_refuse_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let src = path_hash_dump(tmp.path());
    let out = rdb_ok(&["dump", p(&src), "--format", "jsonl", "--match", "ph"]);
    let rec: J = serde_json::from_slice(&out).unwrap();
    assert_eq!(rec["type"], "path-hash");
    assert_eq!(rec["rdb_type"], 23);
    assert_eq!(rec["rdb_type_name"], "PATH_HASH");
    assert_eq!(rec["expire_ms"], 1_900_000_000_000u64);
    assert_eq!(
        rec["value"],
        serde_json::json!([
            {"path":"","fields":[["root","1"]]},
            {"path":"a/b","fields":[["f","v"],["g","w"]]},
            {"path":"a/c","fields":[["bin",{"b64":"AP8K"}],["n","12345"]]}])
    );
    let doc: J = serde_json::from_slice(&rdb_ok(&["dump", p(&src), "--format", "json"])).unwrap();
    let keys = doc["databases"][0]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[2]["value"], rec["value"]);
    let only = rdb_ok(&["keys", p(&src), "--type", "path-hash"]);
    assert_eq!(String::from_utf8_lossy(&only).trim(), "ph");
    let info = String::from_utf8(rdb_ok(&["info", p(&src)])).unwrap();
    assert!(info.contains("path-hash"), "{info}");
    assert!(info.contains("23 PATH_HASH"), "{info}");
    let mem = String::from_utf8(rdb_ok(&["memory", p(&src), "--format", "csv"])).unwrap();
    assert!(
        mem.lines()
            .any(|l| l.contains("ph,") && l.contains("path-hash")),
        "{mem}"
    );
    assert_eq!(rdb(&["check", p(&src)]).status.code(), Some(0));
    // No Redis command builds one: warned, the other keys written.
    let r = rdb(&["dump", p(&src), "--format", "resp"]);
    assert_eq!(r.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&r.stderr).contains("Valkey 9.2 path hash"));
    assert!(!String::from_utf8_lossy(&r.stdout).contains("ph"));
    // No target holds it: convert refuses, or drops it when asked.
    convert_refuses_or_skips(&src, &["10", "80"], "path hash", "ph");
}

/// A Valkey cluster node's dump with an unfinished slot import (opcode
/// 243): `info` reports it, the keys dump as usual.
#[test]
fn valkey_slot_imports_are_reported_by_info() {
    let tmp = tempfile::tempdir().unwrap();
    let mut data = b"VALKEY080".to_vec();
    data.extend_from_slice(&[0xF3, 40]);
    data.extend_from_slice(&[b'n'; 40]);
    data.extend_from_slice(&[2, 0, 10, 0x40, 0x64, 0x40, 0xc8]);
    data.extend_from_slice(&[0xFE, 0, 0, 1, b'k', 1, b'v', 0xFF]);
    let c = basalt_rdb::crc64::checksum(&data);
    data.extend_from_slice(&c.to_le_bytes());
    let f = tmp.path().join("valkey-slot-import.rdb");
    std::fs::write(&f, &data).unwrap();
    let info: J = serde_json::from_slice(&rdb_ok(&["info", p(&f), "--json"])).unwrap();
    assert_eq!(info["slot_imports"], 1);
    let text = String::from_utf8(rdb_ok(&["info", p(&f)])).unwrap();
    assert!(
        text.contains("slot import: 1 unfinished jobs (2 slot ranges)"),
        "{text}"
    );
    assert_eq!(
        String::from_utf8(rdb_ok(&["keys", p(&f)])).unwrap().trim(),
        "k"
    );
    assert_eq!(rdb(&["check", p(&f)]).status.code(), Some(0));
    // The JSON document lists the job; every dump format warns about it.
    let r = rdb(&["dump", p(&f), "--format", "json"]);
    assert_eq!(r.status.code(), Some(0));
    let doc: J = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(
        doc["slot_imports"],
        serde_json::json!([{"name": "n".repeat(40), "ranges": [[0, 10], [100, 200]]}])
    );
    for format in ["json", "jsonl", "resp"] {
        let r = rdb(&["dump", p(&f), "--format", format]);
        let msg = String::from_utf8_lossy(&r.stderr);
        assert!(
            msg.contains("warning: offset 9: unfinished slot import"),
            "{format}: {msg}"
        );
    }
    // Converting keeps the keys and says what the job meant.
    let dst = tmp.path().join("out.rdb");
    let r = rdb(&["convert", p(&f), "-o", p(&dst), "--rdb-version", "10"]);
    assert_eq!(r.status.code(), Some(0));
    let msg = String::from_utf8_lossy(&r.stderr);
    assert!(
        msg.contains("unfinished slot import") && msg.contains("slots 0-10, 100-200"),
        "{msg}"
    );
    assert_eq!(
        String::from_utf8(rdb_ok(&["keys", p(&dst)]))
            .unwrap()
            .trim(),
        "k"
    );
}

/// An AOF directory whose RDB base holds an array: the array comes through
/// the replay unchanged, and a command on its key is refused.
#[test]
fn aof_base_with_an_array_keeps_it() {
    let tmp = tempfile::tempdir().unwrap();
    let src = array_dump(tmp.path());
    let dir = tmp.path().join("appendonlydir");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(&src, dir.join("appendonly.aof.1.base.rdb")).unwrap();
    std::fs::write(
        dir.join("appendonly.aof.1.incr.aof"),
        "*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$1\r\nz\r\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("appendonly.aof.manifest"),
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
    )
    .unwrap();
    let out = rdb_ok(&["dump", p(&dir), "--format", "jsonl", "--match", "arr"]);
    let rec: J = serde_json::from_slice(&out).unwrap();
    assert_eq!(rec["type"], "array");
    assert_eq!(rec["value"]["elements"].as_array().unwrap().len(), 7);
    std::fs::write(
        dir.join("appendonly.aof.1.incr.aof"),
        "*3\r\n$6\r\nAPPEND\r\n$3\r\narr\r\n$1\r\nz\r\n",
    )
    .unwrap();
    let r = rdb(&["dump", p(&dir), "--format", "jsonl"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("WRONGTYPE"));
}
