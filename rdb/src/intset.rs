//! Intsets (sorted integer sets) and zipmaps (Redis 2.4 hashes).
//!
//! Intset: `encoding u32 LE (2, 4 or 8) | length u32 LE | values LE`, values
//! strictly ascending. Zipmap: `zmlen u8 (254 = unknown) | entries | 0xFF`,
//! an entry being `len key len free value free-bytes`, lengths one byte below
//! 254 or `0xFE` + u32 LE.

use crate::error::{Error, Result};

/// Decode and validate an intset.
pub fn decode(blob: &[u8], base: u64) -> Result<Vec<i64>> {
    let bad = |what: String| Error::corrupt(base, format!("intset invalid: {what}"));
    let word = |at: usize| {
        blob.get(at..at + 4)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| bad("shorter than its 8-byte header".into()))
    };
    let enc = word(0)? as usize;
    let len = word(4)? as usize;
    if !matches!(enc, 2 | 4 | 8) {
        return Err(bad(format!("encoding {enc}, expected 2, 4 or 8")));
    }
    let body = blob.get(8..).unwrap_or(&[]);
    if len.checked_mul(enc) != Some(body.len()) {
        return Err(bad(format!(
            "{len} values of {enc} bytes do not fill {} bytes",
            body.len()
        )));
    }
    let mut out = Vec::with_capacity(len);
    for c in body.chunks_exact(enc) {
        let v = match c {
            [a, b] => i64::from(i16::from_le_bytes([*a, *b])),
            [a, b, c, d] => i64::from(i32::from_le_bytes([*a, *b, *c, *d])),
            [a, b, c, d, e, f, g, h] => i64::from_le_bytes([*a, *b, *c, *d, *e, *f, *g, *h]),
            _ => return Err(bad("bad value width".into())),
        };
        if let Some(&prev) = out.last() {
            if v <= prev {
                return Err(bad(format!(
                    "values not strictly ascending ({prev} then {v})"
                )));
            }
        }
        out.push(v);
    }
    Ok(out)
}

/// Encode sorted, unique integers as an intset with the smallest width.
pub fn encode(values: &[i64]) -> Vec<u8> {
    let enc: usize = if values.iter().all(|&v| i16::try_from(v).is_ok()) {
        2
    } else if values.iter().all(|&v| i32::try_from(v).is_ok()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + enc * values.len());
    out.extend_from_slice(&(enc as u32).to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for &v in values {
        match enc {
            2 => out.extend_from_slice(&(v as i16).to_le_bytes()),
            4 => out.extend_from_slice(&(v as i32).to_le_bytes()),
            _ => out.extend_from_slice(&v.to_le_bytes()),
        }
    }
    out
}

/// Decode and validate a zipmap into (field, value) pairs.
pub fn decode_zipmap(blob: &[u8], base: u64) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let bad = |at: usize, what: &str| {
        Error::corrupt(base, format!("zipmap invalid at inner offset {at}: {what}"))
    };
    let zmlen = *blob.first().ok_or_else(|| bad(0, "empty blob"))?;
    if zmlen == 255 {
        return Err(bad(
            0,
            "count byte 0xFF (counts of 254 or more must be written as 254)",
        ));
    }
    let mut p = 1usize;
    let read_len = |p: &mut usize| -> Result<Option<usize>> {
        let b = *blob.get(*p).ok_or_else(|| bad(*p, "length overruns"))?;
        match b {
            255 => Ok(None),
            254 => {
                let s = blob
                    .get(*p + 1..*p + 5)
                    .and_then(|s| <[u8; 4]>::try_from(s).ok())
                    .ok_or_else(|| bad(*p, "length overruns"))?;
                *p += 5;
                Ok(Some(u32::from_le_bytes(s) as usize))
            }
            _ => {
                *p += 1;
                Ok(Some(b as usize))
            }
        }
    };
    let mut out = Vec::new();
    while let Some(klen) = read_len(&mut p)? {
        let key = blob
            .get(p..p.saturating_add(klen))
            .ok_or_else(|| bad(p, "key overruns"))?;
        p += klen;
        let vlen = read_len(&mut p)?.ok_or_else(|| bad(p, "value length expected, found end"))?;
        let free = *blob.get(p).ok_or_else(|| bad(p, "free byte overruns"))? as usize;
        p += 1;
        let val = blob
            .get(p..p.saturating_add(vlen))
            .ok_or_else(|| bad(p, "value overruns"))?;
        p = p.saturating_add(vlen).saturating_add(free);
        out.push((key.to_vec(), val.to_vec()));
    }
    if p != blob.len() - 1 {
        return Err(bad(p, "end marker before the end of the blob"));
    }
    if zmlen < 254 && zmlen as usize != out.len() {
        return Err(bad(0, &format!("count {zmlen} but {} entries", out.len())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intset_round_trip() {
        for vals in [
            vec![1i64, 2, 3],
            vec![-70000, 5],
            vec![i64::MIN, 0, i64::MAX],
            vec![],
        ] {
            assert_eq!(decode(&encode(&vals), 0).unwrap(), vals);
        }
        assert!(decode(&encode(&[3, 2]), 0).is_err());
    }

    #[test]
    fn zipmap() {
        let zm = [
            2u8, 1, b'a', 1, 0, b'x', 2, b'b', b'c', 3, 1, b'y', b'z', b'w', 0, 255,
        ];
        let got = decode_zipmap(&zm, 0).unwrap();
        assert_eq!(
            got,
            vec![
                (b"a".to_vec(), b"x".to_vec()),
                (b"bc".to_vec(), b"yzw".to_vec())
            ]
        );
    }
}
