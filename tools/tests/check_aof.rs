//! Runs the real `basalt-check-aof` binary against logs on disk.

use basalt_aof::format::{segment_file_name, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use basalt_aof::{Options, Recovery};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_basalt-check-aof"))
}

fn write_log(dir: &Path, n: usize) -> Vec<Vec<u8>> {
    let (log, _) = Recovery::open(dir, Options::default())
        .unwrap()
        .finish()
        .unwrap();
    let all: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("SET key{i} value{i}").into_bytes())
        .collect();
    let mut last = basalt_aof::Lsn(0);
    for p in &all {
        last = log.append(p).unwrap();
    }
    assert!(log.wait_durable(last, Duration::from_secs(10)));
    log.close().unwrap();
    all
}

fn replay(dir: &Path) -> Result<Vec<Vec<u8>>, basalt_aof::Error> {
    let mut rec = Recovery::open(dir, Options::default())?;
    let mut out = Vec::new();
    while let Some(r) = rec.next()? {
        out.push(r.payload.to_vec());
    }
    Ok(out)
}

fn offset_of(all: &[Vec<u8>], i: usize) -> usize {
    SEGMENT_HEADER_LEN
        + all
            .iter()
            .take(i)
            .map(|p| p.len() + RECORD_HEADER_LEN)
            .sum::<usize>()
}

#[test]
fn clean_log_exits_zero() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 10);
    let out = bin().arg(tmp.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("10 valid records"), "{stdout}");
    assert!(stdout.contains("log is clean"), "{stdout}");
}

#[test]
fn damaged_middle_exits_one_then_fix_salvages() {
    let tmp = tempfile::tempdir().unwrap();
    let all = write_log(tmp.path(), 100);
    let seg = tmp.path().join(segment_file_name(1));
    let bad = offset_of(&all, 40);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[bad + 12] ^= 0x20;
    std::fs::write(&seg, &bytes).unwrap();

    let err = replay(tmp.path()).unwrap_err().to_string();
    assert!(
        err.contains(&format!("offset {bad}")) && err.contains("basalt-check-aof --fix"),
        "{err}"
    );

    let out = bin().arg(tmp.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("damaged at offset {bad}")),
        "{stdout}"
    );
    assert!(stdout.contains("then 59 valid records"), "{stdout}");
    assert!(stdout.contains("run with --fix"), "{stdout}");

    let out = bin().arg(tmp.path()).arg("--fix").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "dropped {} bytes at offset {bad}",
            all[40].len() + 8
        )),
        "{stdout}"
    );
    assert!(stdout.contains("now fixed"), "{stdout}");

    let mut expect = all.clone();
    expect.remove(40);
    assert_eq!(replay(tmp.path()).unwrap(), expect);
    let out = bin().arg(tmp.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn torn_tail_fix_truncates() {
    let tmp = tempfile::tempdir().unwrap();
    let all = write_log(tmp.path(), 10);
    let seg = tmp.path().join(segment_file_name(1));
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(offset_of(&all, 9) as u64 + 6).unwrap();
    let out = bin().arg(&seg).arg("--fix").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("torn tail"), "{stdout}");
    assert!(stdout.contains("dropping 6 bytes"), "{stdout}");
    assert_eq!(
        std::fs::metadata(&seg).unwrap().len(),
        offset_of(&all, 9) as u64
    );
}

#[test]
fn usage_and_io_errors_exit_two() {
    let out = bin().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let tmp = tempfile::tempdir().unwrap();
    let out = bin().arg(tmp.path().join("nope")).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = bin().arg(tmp.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "empty dir is not a log");
}
