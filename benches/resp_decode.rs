//! RESP request decoding throughput.

use basalt::resp::decode::{parse_request, Limits, Parsed};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn pipeline(n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..n {
        let k = format!("key:{i:08}");
        let cmd: [&[u8]; 3] = [b"SET", k.as_bytes(), &[b'x'; 64]];
        basalt::db::encode_command(&cmd, &mut v);
    }
    v
}

fn bench(c: &mut Criterion) {
    let buf = pipeline(1000);
    let mut g = c.benchmark_group("resp_decode");
    g.throughput(Throughput::Bytes(buf.len() as u64));
    g.bench_function("set_pipeline_1000", |b| {
        let mut ranges = Vec::new();
        b.iter(|| {
            let mut pos = 0;
            let mut n = 0;
            while let Ok(Some(Parsed::Command { consumed })) =
                parse_request(&buf[pos..], &Limits::default(), &mut ranges)
            {
                pos += consumed;
                n += 1;
            }
            assert_eq!(n, 1000);
        })
    });
    let inline = b"SET key:00000001 somevalue\r\n".repeat(1000);
    g.throughput(Throughput::Bytes(inline.len() as u64));
    g.bench_function("inline_1000", |b| {
        let mut ranges = Vec::new();
        b.iter(|| {
            let mut pos = 0;
            while let Ok(Some(Parsed::Command { consumed })) =
                parse_request(&inline[pos..], &Limits::default(), &mut ranges)
            {
                pos += consumed;
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
