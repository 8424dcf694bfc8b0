//! Writes a large deterministic mixed dump for benchmarks:
//! `cargo run --release -p basalt-tools --example gen_dump -- OUT KEYS [RDB_VERSION]`
//! (default RDB 9, which redis-rdb-tools reads; 10.5 M keys give ~1.1 GB).
//!
//! Mix: 60% strings (1 in 5 integers), 14% hashes (4 fields), 10% lists
//! (5 items), 10% sets (ints or text), 6% sorted sets (5 members); 10% of
//! keys expire. Keys look like `session:417:1234567`: 8 families x 1000
//! shards, so prefix reports have something to group.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use basalt_rdb::{EncodeOptions, Entry, HashField, Value, Writer};
use std::io::BufWriter;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn text(r: &mut Rng, len: usize) -> Vec<u8> {
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:.";
    (0..len)
        .map(|_| A[(r.next() >> 32) as usize % A.len()])
        .collect()
}

const FAMILIES: &[&str] = &[
    "session", "user", "cart", "token", "feed", "rate", "cache", "idx",
];

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
    let f = BufWriter::with_capacity(1 << 20, std::fs::File::create(&out).unwrap());
    let mut w = Writer::new(f, EncodeOptions::for_target(target)).unwrap();
    w.standard_aux("6.2.14", 1_700_000_000).unwrap();
    w.select_db(0, Some((keys, keys / 10))).unwrap();
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..keys {
        let fam = FAMILIES[r.below(FAMILIES.len() as u64) as usize];
        let key = format!("{fam}:{}:{i}", r.below(1000)).into_bytes();
        let kind = r.below(100);
        let value = if kind < 60 {
            if r.below(5) == 0 {
                Value::String(r.below(1_000_000).to_string().into_bytes())
            } else {
                let n = 40 + r.below(128) as usize;
                Value::String(text(&mut r, n))
            }
        } else if kind < 74 {
            Value::Hash(
                (0..4)
                    .map(|f| {
                        let n = 8 + r.below(10) as usize;
                        HashField::new(format!("field{f}"), text(&mut r, n))
                    })
                    .collect(),
            )
        } else if kind < 84 {
            Value::List(
                (0..5)
                    .map(|_| {
                        let n = 6 + r.below(10) as usize;
                        text(&mut r, n)
                    })
                    .collect(),
            )
        } else if kind < 94 {
            if r.below(2) == 0 {
                Value::Set(
                    (0..6)
                        .map(|_| r.below(100_000).to_string().into_bytes())
                        .collect(),
                )
            } else {
                Value::Set(
                    (0..5)
                        .map(|j| format!("m{j}-{}", r.below(1000)).into_bytes())
                        .collect(),
                )
            }
        } else {
            Value::SortedSet(
                (0..5)
                    .map(|j| (format!("p{j}").into_bytes(), r.below(10_000) as f64 / 4.0))
                    .collect(),
            )
        };
        let mut e = Entry::new(key, value);
        if r.below(10) == 0 {
            e.expire_ms = Some(1_900_000_000_000 + r.below(1_000_000_000) as i64);
        }
        w.entry(&e).unwrap();
    }
    w.finish().unwrap();
}
