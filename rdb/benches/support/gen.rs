//! Deterministic generator of a mixed dump (~100 bytes per key on average),
//! the one generator behind the criterion bench, `decode_big` and
//! basalt-tools' `gen_dump` example (which includes this file by path).
//!
//! Mix: 60% strings (1 in 5 integers), 14% hashes (4 fields), 10% lists
//! (5 items), 10% sets (ints or text), 6% sorted sets (5 members); 10% of
//! keys expire.
#![allow(clippy::indexing_slicing, dead_code)]

use basalt_rdb::{EncodeOptions, Entry, HashField, Target, Value, Writer};
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

const FAMILIES: &[&str] = &[
    "session", "user", "cart", "token", "feed", "rate", "cache", "idx",
];

/// How the dump looks beyond the value mix.
#[derive(Clone, Copy)]
pub struct Style {
    /// Format written.
    pub target: Target,
    /// LZF-compress long strings.
    pub compress: bool,
    /// Keys like `session:417:1234567` (8 families x 1000 shards, for
    /// prefix reports) instead of `key:0001234567:417`.
    pub families: bool,
}

impl Style {
    /// The decode bench's dump: RDB 10, uncompressed, flat keys.
    pub fn bench() -> Style {
        Style {
            target: Target::Redis10,
            compress: false,
            families: false,
        }
    }

    /// The tools benchmark's dump (`gen_dump`): prefixed keys, compressed.
    pub fn tools(target: Target) -> Style {
        Style {
            target,
            compress: true,
            families: true,
        }
    }
}

/// Write `keys` mixed keys to `w` as [`Style::bench`].
pub fn generate<W: Write>(w: W, keys: u64) -> W {
    generate_with(w, keys, Style::bench())
}

/// Write `keys` mixed keys to `w` in `style`.
pub fn generate_with<W: Write>(w: W, keys: u64, style: Style) -> W {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let mut wr = Writer::new(
        w,
        EncodeOptions {
            compress: style.compress,
            ..EncodeOptions::for_target(style.target)
        },
    )
    .expect("header");
    let ver = if style.families { "6.2.14" } else { "7.0.15" };
    wr.standard_aux(ver, 1_700_000_000).expect("aux");
    wr.select_db(0, Some((keys, keys / 10))).expect("select");
    for i in 0..keys {
        let key = if style.families {
            let fam = FAMILIES[r.below(FAMILIES.len() as u64) as usize];
            format!("{fam}:{}:{i}", r.below(1000)).into_bytes()
        } else {
            format!("key:{:010}:{}", i, r.below(1000)).into_bytes()
        };
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
            let name = if style.families { "p" } else { "member" };
            Value::SortedSet(
                (0..5)
                    .map(|m| {
                        (
                            format!("{name}{m}").into_bytes(),
                            r.below(10_000) as f64 / 4.0,
                        )
                    })
                    .collect(),
            )
        };
        let mut e = Entry::new(key, value);
        if r.below(10) == 0 {
            e.expire_ms = Some(if style.families {
                1_900_000_000_000 + r.below(1_000_000_000) as i64
            } else {
                4_102_444_800_000 + r.below(1_000_000) as i64
            });
        }
        wr.entry(&e).expect("entry");
    }
    wr.finish().expect("finish")
}
