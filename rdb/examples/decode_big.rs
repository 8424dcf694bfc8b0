//! Generate a large mixed dump (if missing) and time one full decode on one
//! core: `cargo run --release -p basalt-rdb --example decode_big -- PATH [KEYS]`
//! (default 10,000,000 keys, about 1.1 GB).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
use basalt_rdb::{DecodeOptions, Item, MappedFile};
use std::time::Instant;

#[path = "../benches/support/gen.rs"]
mod gen;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: decode_big PATH [KEYS]")?;
    let keys: u64 = std::env::args()
        .nth(2)
        .map(|k| k.parse())
        .transpose()?
        .unwrap_or(10_000_000);
    if !std::path::Path::new(&path).exists() {
        let t = Instant::now();
        let f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        gen::generate(f, keys);
        eprintln!("generated {path} in {:.1}s", t.elapsed().as_secs_f64());
    }
    let file = MappedFile::open(&path)?;
    let bytes = file.bytes().len() as f64;
    // Touch the pages first so the timing measures decoding, not disk reads.
    let mut sum = 0u64;
    for chunk in file.bytes().chunks(4096) {
        sum = sum.wrapping_add(u64::from(chunk[0]));
    }
    let cpu0 = thread_cpu_seconds();
    let t = Instant::now();
    let (mut n, mut elems) = (0u64, 0u64);
    for item in file.reader(DecodeOptions::default())? {
        if let Item::Entry(e) = item? {
            n += 1;
            elems += match &e.value {
                basalt_rdb::Value::List(v) | basalt_rdb::Value::Set(v) => v.len() as u64,
                basalt_rdb::Value::Hash(v) => v.len() as u64,
                basalt_rdb::Value::SortedSet(v) => v.len() as u64,
                _ => 1,
            };
        }
    }
    let s = t.elapsed().as_secs_f64();
    let cpu = thread_cpu_seconds() - cpu0;
    println!(
        "{path}: {:.0} MB, {n} keys ({elems} elements); wall {s:.2}s = {:.0} MB/s, {:.2} M keys/s; \
         thread CPU {cpu:.2}s = {:.0} MB/s, {:.2} M keys/s (touch {sum})",
        bytes / 1e6,
        bytes / 1e6 / s,
        n as f64 / 1e6 / s,
        bytes / 1e6 / cpu,
        n as f64 / 1e6 / cpu
    );
    Ok(())
}

/// CPU time of the calling thread: the decode's cost on one core, even when
/// other processes compete for the machine.
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}
