//! `basalt-rdb import` / `export` with the real `basalt-server` (built by
//! the workspace: `target/<profile>/basalt-server`, next to this test's
//! own binary; built with cargo if missing). Basalt holds strings only for
//! now, so the datasets are the corpus's string dumps.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod support;

use basalt_rdb::{DecodeOptions, Item, MappedFile, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::*;

fn server_binary() -> PathBuf {
    // target/<profile>/deps/rdb_basalt-xxxx -> target/<profile>/basalt-server
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("basalt-server");
    if !bin.exists() {
        let profile = exe
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "basalt", "--bin", "basalt-server"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        if profile == "release" {
            cmd.arg("--release");
        }
        assert!(
            cmd.status().unwrap().success(),
            "building basalt-server failed"
        );
    }
    bin
}

struct Basalt {
    child: Child,
    addr: String,
}

impl Basalt {
    fn start(dir: &Path) -> Basalt {
        let mut child = Command::new(server_binary())
            .args(["--port", "0", "--bind", "127.0.0.1", "--dir"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn basalt-server");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if let Some(a) = line.trim().strip_prefix("basalt-server listening on tcp ") {
                    let _ = tx.send(a.to_string());
                }
                line.clear();
            }
        });
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = BufReader::new(stderr).read_to_end(&mut buf);
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("basalt-server printed its address");
        Basalt { child, addr }
    }
}

impl Drop for Basalt {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (db, key) -> (value, expiry) for keys that are not expired.
type Strings = BTreeMap<(u64, Vec<u8>), (Vec<u8>, Option<i64>)>;

fn strings(path: &Path) -> Strings {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut m = BTreeMap::new();
    for item in MappedFile::open(path)
        .unwrap()
        .reader(DecodeOptions::default())
        .unwrap()
    {
        if let Item::Entry(e) = item.unwrap() {
            if e.expire_ms.is_some_and(|x| x <= now + 60_000) {
                continue;
            }
            let Value::String(v) = e.value else {
                panic!("not a string dataset")
            };
            m.insert((e.db, e.key), (v, e.expire_ms));
        }
    }
    m
}

const STRING_DUMPS: &[&str] = &[
    "gen70_strings",
    "gen70_keys_100k",
    "gen70_string_1mib",
    "rdbtools_multiple_databases",
    "rdbtools_keys_with_expiry",
    "rdbtools_non_ascii_values",
    "rdbtools_integer_keys",
    "craft_v4_expire_seconds",
];

#[test]
fn import_into_basalt_and_export_back() {
    let tmp = tempfile::tempdir().unwrap();
    for name in STRING_DUMPS {
        let src = corpus(&format!("{name}.rdb"));
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let server = Basalt::start(&dir);
        for mode in ["restore", "plain"] {
            let o = rdb(&[
                "import",
                p(&src),
                "--to",
                &server.addr,
                "--mode",
                mode,
                "--replace",
                "-q",
            ]);
            assert!(
                o.status.success(),
                "{name} ({mode}): {}",
                String::from_utf8_lossy(&o.stderr)
            );
            // Basalt has no SYNC: auto falls back to SCAN + DUMP.
            let out = tmp.path().join(format!("{name}-{mode}.rdb"));
            rdb_ok(&["export", "--from", &server.addr, "-o", p(&out), "-q"]);
            assert_eq!(
                strings(&out),
                strings(&src),
                "{name} ({mode}) through Basalt"
            );
        }
        // Skip-existing leaves Basalt's keys alone.
        let o = rdb(&["import", p(&src), "--to", &server.addr, "--skip-existing"]);
        assert!(o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("imported 0 keys"),
            "{name}"
        );
    }
}

#[test]
fn import_data_dir_is_loaded_by_basalt_at_first_start() {
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "gen70_strings",
        "rdbtools_multiple_databases",
        "rdbtools_keys_with_expiry",
    ] {
        let src = corpus(&format!("{name}.rdb"));
        let dir = tmp.path().join(name);
        rdb_ok(&["import", p(&src), "--data-dir", p(&dir), "-q"]);
        assert!(dir.join("dump.rdb").exists());
        // A second import into the same dir is refused without --replace.
        assert_eq!(
            rdb(&["import", p(&src), "--data-dir", p(&dir)])
                .status
                .code(),
            Some(1)
        );
        let server = Basalt::start(&dir);
        let out = tmp.path().join(format!("{name}-back.rdb"));
        rdb_ok(&["export", "--from", &server.addr, "-o", p(&out), "-q"]);
        assert_eq!(
            strings(&out),
            strings(&src),
            "{name} through a Basalt data dir"
        );
    }
}
