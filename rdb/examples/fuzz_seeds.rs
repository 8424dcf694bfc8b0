//! Write seed inputs for the RESTORE-payload fuzz target:
//! `cargo run -p basalt-rdb --example fuzz_seeds -- DIR`.
use basalt_rdb::{encode_dump, EncodeOptions, HashField, StreamEntry, StreamId, Target, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: fuzz_seeds DIR")?;
    std::fs::create_dir_all(&dir)?;
    let big: Vec<Vec<u8>> = (0..300)
        .map(|i| format!("element-{i}").into_bytes())
        .collect();
    let values = vec![
        Value::String(b"hello".to_vec()),
        Value::String(b"12345".to_vec()),
        Value::String(vec![b'z'; 200]),
        Value::List(vec![b"a".to_vec(), b"7".to_vec(), b"-300".to_vec()]),
        Value::List(big.clone()),
        Value::Set(vec![b"1".to_vec(), b"2".to_vec(), b"70000".to_vec()]),
        Value::Set(vec![b"x".to_vec(), b"y".to_vec()]),
        Value::Set(big.clone()),
        Value::SortedSet(vec![(b"m".to_vec(), 1.5), (b"n".to_vec(), f64::INFINITY)]),
        Value::SortedSet(
            big.iter()
                .enumerate()
                .map(|(i, m)| (m.clone(), i as f64))
                .collect(),
        ),
        Value::Hash(vec![
            HashField::new("f", "v"),
            HashField {
                field: b"g".to_vec(),
                value: b"w".to_vec(),
                expire_ms: Some(1 << 40),
            },
        ]),
        Value::Hash(
            big.iter()
                .map(|m| HashField::new(m.clone(), m.clone()))
                .collect(),
        ),
        Value::Stream(Box::new(basalt_rdb::Stream {
            entries: vec![StreamEntry {
                id: StreamId::new(5, 1),
                fields: vec![(b"f".to_vec(), b"v".to_vec())],
            }],
            length: 1,
            last_id: StreamId::new(5, 1),
            ..Default::default()
        })),
    ];
    let mut n = 0;
    for (i, v) in values.iter().enumerate() {
        for t in [
            Target::Redis9,
            Target::Redis10,
            Target::Redis11,
            Target::Redis12,
            Target::Valkey80,
        ] {
            if let Ok(p) = encode_dump(
                v,
                &EncodeOptions {
                    target: t,
                    compress: i % 2 == 0,
                },
            ) {
                std::fs::write(format!("{dir}/seed-{i}-{t:?}"), p)?;
                n += 1;
            }
        }
    }
    println!("wrote {n} seeds to {dir}");
    Ok(())
}
