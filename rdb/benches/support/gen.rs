//! Deterministic generator of a mixed dump (~100 bytes per key on average),
//! shared by the criterion bench and the large-file example.
#![allow(clippy::indexing_slicing)]

use basalt_rdb::{EncodeOptions, Entry, HashField, Value, Writer};
use std::io::Write;

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

/// Write `keys` mixed keys to `w` (RDB 10). Mix: 60% strings, 14% hashes,
/// 10% lists, 10% sets, 6% sorted sets; 10% of keys expire.
pub fn generate<W: Write>(w: W, keys: u64) -> W {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let mut wr = Writer::new(
        w,
        EncodeOptions {
            compress: false,
            ..Default::default()
        },
    )
    .expect("header");
    wr.standard_aux("7.0.15", 1_700_000_000).expect("aux");
    wr.select_db(0, Some((keys, keys / 10))).expect("select");
    for i in 0..keys {
        let key = format!("key:{:010}:{}", i, r.below(1000)).into_bytes();
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
                        .map(|m| format!("m{m}-{}", r.below(1000)).into_bytes())
                        .collect(),
                )
            }
        } else {
            Value::SortedSet(
                (0..5)
                    .map(|m| {
                        (
                            format!("member{m}").into_bytes(),
                            r.below(10_000) as f64 / 4.0,
                        )
                    })
                    .collect(),
            )
        };
        let mut e = Entry::new(key, value);
        if r.below(10) == 0 {
            e.expire_ms = Some(4_102_444_800_000 + r.below(1_000_000) as i64);
        }
        wr.entry(&e).expect("entry");
    }
    wr.finish().expect("finish")
}
