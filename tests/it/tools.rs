//! The real Redis tools against Basalt: redis-cli and redis-benchmark.

use std::process::Command;

use crate::support::{RedisServer, TestServer};

#[test]
fn redis_benchmark_runs_without_errors() {
    if !RedisServer::available() {
        eprintln!("redis-benchmark not installed; skipped (CI installs it)");
        return;
    }
    let s = TestServer::start(&["--appendfsync", "everysec"]);
    let out = Command::new("redis-benchmark")
        .args([
            "-p",
            &s.port.to_string(),
            "-q",
            "-t",
            "ping,set,get,incr,mset",
            "-P",
            "16",
            "-n",
            "20000",
            "-c",
            "10",
        ])
        .output()
        .expect("redis-benchmark");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    for t in [
        "PING_INLINE: ",
        "PING_MBULK: ",
        "SET: ",
        "GET: ",
        "INCR: ",
        "MSET (10 keys): ",
    ] {
        assert!(text.contains(t), "missing {t} in {text}");
    }
    assert!(!text.to_lowercase().contains("error"), "{text}");
}

#[test]
fn redis_cli_resp3_and_resp2() {
    if !RedisServer::available() {
        return;
    }
    let s = TestServer::start(&[]);
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .arg("-p")
            .arg(s.port.to_string())
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(cli(&["set", "k", "v"]), "OK");
    assert_eq!(cli(&["get", "k"]), "v");
    assert_eq!(cli(&["-3", "--no-raw", "get", "nope"]), "(nil)");
    assert_eq!(cli(&["--no-raw", "get", "nope"]), "(nil)");
    assert!(cli(&["-3", "hello", "3"]).contains("proto"));
    assert_eq!(cli(&["incrbyfloat", "f", "1.5"]), "1.5");
    assert_eq!(
        cli(&["nosuch"]),
        "ERR unknown command 'nosuch', with args beginning with:"
    );
}
