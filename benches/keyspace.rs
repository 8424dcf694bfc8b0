//! Keyspace operations without the network: lookup, insert, overwrite.

use basalt_storage::{Entry, Keyspace, Value};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let ks = Keyspace::new(16, 64);
    let keys: Vec<Vec<u8>> = (0..100_000)
        .map(|i| format!("key:{i:08}").into_bytes())
        .collect();
    for k in &keys {
        let h = Keyspace::hash(k);
        ks.lock(ks.shard_of(h)).dbs[0].insert(h, k, Entry::new(Value::from_bytes(b"value")));
    }
    let mut g = c.benchmark_group("keyspace");
    g.throughput(Throughput::Elements(keys.len() as u64));
    g.bench_function("get_100k", |b| {
        b.iter(|| {
            let mut found = 0;
            for k in &keys {
                let h = Keyspace::hash(k);
                if ks.lock(ks.shard_of(h)).dbs[0].get(h, k).is_some() {
                    found += 1;
                }
            }
            assert_eq!(found, keys.len());
        })
    });
    g.bench_function("overwrite_100k", |b| {
        b.iter(|| {
            for k in &keys {
                let h = Keyspace::hash(k);
                ks.lock(ks.shard_of(h)).dbs[0].insert(
                    h,
                    k,
                    Entry::new(Value::from_bytes(&[b'v'; 64])),
                );
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
