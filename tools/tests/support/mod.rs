//! Test helpers: the built `basalt-rdb` binary and the shared corpus.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn corpus_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/rdb-corpus"
    ))
}

pub fn corpus(name: &str) -> PathBuf {
    corpus_dir().join(name)
}

/// Every corpus dump, sorted.
pub fn corpus_files() -> Vec<PathBuf> {
    let dir = corpus_dir();
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus at {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rdb"))
        .collect();
    v.sort();
    assert!(v.len() >= 90, "corpus has {} dumps", v.len());
    v
}

/// Runs `basalt-rdb ARGS` and returns its output.
pub fn rdb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_basalt-rdb"))
        .args(args)
        .output()
        .expect("run basalt-rdb")
}

/// Runs and requires success; returns stdout.
pub fn rdb_ok(args: &[&str]) -> Vec<u8> {
    let o = rdb(args);
    assert!(
        o.status.success(),
        "basalt-rdb {args:?} failed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The outcome line of a `.expect` file (`error` or `refused`).
pub fn expect_outcome(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path.with_extension("expect")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("outcome: ").map(str::to_string))
}
