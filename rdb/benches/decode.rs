//! Decoding throughput of a generated mixed dump (RDB 10, ~100 bytes/key).
//!
//! `cargo bench -p basalt-rdb --bench decode`. For the ≥ 1 GB / 10 M key
//! figure see `examples/decode_big.rs`.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use basalt_rdb::{DecodeOptions, Item, Reader};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[path = "support/gen.rs"]
mod gen;

fn decode(c: &mut Criterion) {
    let dump = gen::generate(Vec::new(), 500_000);
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(dump.len() as u64));
    g.sample_size(10);
    g.bench_function("mixed_500k_keys_slice", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for item in Reader::from_slice(&dump, DecodeOptions::default()).unwrap() {
                if let Item::Entry(_) = item.unwrap() {
                    n += 1;
                }
            }
            assert_eq!(n, 500_000);
        })
    });
    g.bench_function("mixed_500k_keys_read", |b| {
        b.iter(|| {
            let n = Reader::from_read(&dump[..], DecodeOptions::default())
                .unwrap()
                .count();
            assert!(n >= 500_000);
        })
    });
    g.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
