//! Differential runs of the collection case files
//! (`tests/it/cases/{hashes,sets,lists,zsets}.txt`, which
//! `differential.rs` also runs with the default configuration) with the
//! compact encodings switched off, so the large structures (hashtable,
//! skiplist, quicklist) answer every command; plus the runner used by
//! `types.rs` for generated scripts.
//!
//! Lines use the case-file syntax subset: whitespace-separated words,
//! `"..."` for arguments with spaces, `""` for empty, and the trailing
//! directives `~sort` (compare with every aggregate's elements sorted)
//! and `~type` (compare only the reply's type byte).

use crate::support::resp::{reply_len, Raw};
use crate::support::{RedisServer, TestServer};

fn tokenize(line: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut in_q = false;
    let mut had_q = false;
    for c in line.bytes() {
        match c {
            b'"' => {
                in_q = !in_q;
                had_q = true;
            }
            b' ' if !in_q => {
                if !cur.is_empty() || had_q {
                    out.push(std::mem::take(&mut cur));
                }
                had_q = false;
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() || had_q {
        out.push(cur);
    }
    out
}

/// The reply with the elements of every aggregate sorted (headers kept).
fn sorted(r: &[u8]) -> Vec<u8> {
    let Some(hdr_end) = r.windows(2).position(|w| w == b"\r\n") else {
        return r.to_vec();
    };
    if !matches!(r[0], b'*' | b'~' | b'%') {
        return r.to_vec();
    }
    let mut items = Vec::new();
    let mut pos = hdr_end + 2;
    while pos < r.len() {
        let n = reply_len(&r[pos..]).expect("complete element");
        items.push(sorted(&r[pos..pos + n]));
        pos += n;
    }
    items.sort();
    let mut out = r[..hdr_end + 2].to_vec();
    for i in items {
        out.extend_from_slice(&i);
    }
    out
}

pub fn run_script(script: &str, extra: &[&str]) {
    run_script_opts(script, extra, &[], false)
}

/// `sort_all`: compare every reply with its elements sorted (for runs
/// where hash-table iteration order makes every listing unordered).
/// `basalt_only`: options redis-server 7.0 does not know (7.2's).
pub fn run_script_opts(script: &str, extra: &[&str], basalt_only: &[&str], sort_all: bool) {
    if !RedisServer::available() {
        eprintln!("redis-server not installed; skipping differential test");
        return;
    }
    let mut bargs = extra.to_vec();
    bargs.extend_from_slice(basalt_only);
    let b = TestServer::start(&bargs);
    let r = RedisServer::start(extra);
    for resp3 in [false, true] {
        let mut bc = b.raw();
        let mut rc = r.raw();
        if resp3 {
            bc.cmd_str(&["HELLO", "3"]);
            rc.cmd_str(&["HELLO", "3"]);
        }
        bc.cmd_str(&["FLUSHALL"]);
        rc.cmd_str(&["FLUSHALL"]);
        let mut compared = 0;
        for (ln, line) in script.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (mode, body) = if let Some(rest) = line.strip_suffix(" ~sort") {
                ('~', rest)
            } else if let Some(rest) = line.strip_suffix(" ~type") {
                ('?', rest)
            } else {
                (if sort_all { '~' } else { ' ' }, line)
            };
            let args = tokenize(body);
            let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
            let (mut got, mut want) = (bc.cmd(&refs), rc.cmd(&refs));
            match mode {
                '~' => {
                    got = sorted(&got);
                    want = sorted(&want);
                }
                '?' => {
                    got.truncate(1);
                    want.truncate(1);
                }
                _ => {}
            }
            assert!(
                got == want,
                "line {} (resp{}): {}\n basalt: {:?}\n  redis: {:?}",
                ln + 1,
                if resp3 { 3 } else { 2 },
                body,
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            );
            compared += 1;
        }
        eprintln!(
            "resp{}: {compared} commands matched",
            if resp3 { 3 } else { 2 }
        );
    }
}

/// Asserts basalt's replies directly (for what 7.0 does differently, such
/// as 7.2's listpack encodings of small sets and lists).
pub fn expect(c: &mut Raw, args: &[&str], want: &str) {
    let got = c.cmd_str(args);
    assert_eq!(String::from_utf8_lossy(&got), want, "{args:?}");
}

fn case(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/cases")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The same scripts with the compact encodings disabled, so the large
/// structures (skiplist, hashtable, quicklist) answer every command.
#[test]
fn diff_zsets_skiplist() {
    run_script(&case("zsets.txt"), &["--zset-max-listpack-entries", "0"]);
}

#[test]
fn diff_lists_quicklist() {
    run_script(&case("lists.txt"), &["--list-max-listpack-size", "1"]);
}

#[test]
fn diff_sets_hashtable() {
    run_script_opts(
        &case("sets.txt"),
        &["--set-max-intset-entries", "0"],
        &["--set-max-listpack-entries", "0"],
        true,
    );
}

#[test]
fn diff_hashes_hashtable() {
    run_script_opts(
        &case("hashes.txt"),
        &["--hash-max-listpack-entries", "0"],
        &[],
        true,
    );
}
