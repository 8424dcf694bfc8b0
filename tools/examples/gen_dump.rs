//! Writes a large deterministic mixed dump for benchmarks:
//! `cargo run --release -p basalt-tools --example gen_dump -- OUT KEYS [RDB_VERSION]`
//! (default RDB 9, which redis-rdb-tools reads; 10.5 M keys give ~1.1 GB).
//!
//! The generator is the rdb crate's bench generator
//! (`rdb/benches/support/gen.rs`) in its tools style: keys look like
//! `session:417:1234567` (8 families x 1000 shards, so prefix reports have
//! something to group), long strings LZF-compressed.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

#[path = "../../rdb/benches/support/gen.rs"]
mod gen;

fn main() {
    let mut args = std::env::args().skip(1);
    let out = args.next().expect("usage: gen_dump OUT KEYS [RDB_VERSION]");
    let keys: u64 = args.next().expect("KEYS").parse().unwrap();
    let version: u32 = args.next().map_or(9, |v| v.parse().unwrap());
    let target = match version {
        9 => basalt_rdb::Target::Redis9,
        10 => basalt_rdb::Target::Redis10,
        11 => basalt_rdb::Target::Redis11,
        _ => basalt_rdb::Target::Redis12,
    };
    let f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&out).unwrap());
    gen::generate_with(f, keys, gen::Style::tools(target));
}
