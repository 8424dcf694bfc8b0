//! DUMP / RESTORE payloads: `type byte | value | RDB version u16 LE |
//! CRC64 LE` (the CRC covers everything before it). Payloads carry no magic;
//! versions 80+ are read with Valkey's tables.

use crate::crc64;
use crate::decode::{read_value, DecodeOptions};
use crate::encode::{encode_value, EncodeOptions};
use crate::error::{Error, Result};
use crate::format::Format;
use crate::input::{Input, SliceInput};
use crate::value::Value;

/// Build a DUMP payload for `value` in `opts.target`'s format.
pub fn encode_dump(value: &Value, opts: &EncodeOptions) -> Result<Vec<u8>> {
    let mut out = vec![0u8];
    let t = encode_value(&mut out, value, opts)?;
    if let Some(b) = out.first_mut() {
        *b = t;
    }
    let version = u16::try_from(opts.target.format().version).unwrap_or(u16::MAX);
    out.extend_from_slice(&version.to_le_bytes());
    let crc = crc64::checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// The RDB version a payload declares, if it is long enough to have one.
pub fn dump_version(payload: &[u8]) -> Option<u16> {
    let n = payload.len();
    let v = payload.get(n.checked_sub(10)?..n - 8)?;
    Some(u16::from_le_bytes([*v.first()?, *v.get(1)?]))
}

/// Decode a DUMP payload, checking its version (this crate must be able to
/// read it; pass `max_version` to also refuse what a given server would)
/// and its CRC64. Returns the value and the payload's RDB version.
pub fn decode_dump(
    payload: &[u8],
    opts: &DecodeOptions,
    max_version: Option<u16>,
) -> Result<(Value, u16)> {
    let n = payload.len();
    if n < 11 {
        return Err(Error::Truncated {
            offset: n as u64,
            expected: "DUMP payload of at least 11 bytes",
        });
    }
    let body_end = n - 10;
    let version = dump_version(payload).unwrap_or(0);
    let fmt = Format::for_payload_version(u32::from(version));
    if !fmt.is_supported() || max_version.is_some_and(|m| version > m) {
        return Err(Error::UnsupportedVersion {
            magic: fmt.magic_str(),
            version: u32::from(version),
        });
    }
    let stored = payload
        .get(n - 8..)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0);
    let computed = crc64::checksum(payload.get(..n - 8).unwrap_or(&[]));
    if stored != computed {
        return Err(Error::Checksum {
            offset: (n - 8) as u64,
            stored,
            computed,
        });
    }
    let body = payload.get(..body_end).unwrap_or(&[]);
    let mut inp = SliceInput::new(body);
    let mut type_byte = inp.read_u8("type byte")?;
    // Redis 8.6+ payloads may start with key metadata (KEY_META opcode).
    if fmt.opcode(type_byte) == Some(crate::format::Opcode::KeyMeta) {
        crate::decode::skip_key_meta(&mut inp)?;
        type_byte = inp.read_u8("type byte")?;
    }
    let kind = fmt.kind(type_byte).ok_or_else(|| Error::UnknownType {
        offset: 0,
        byte: type_byte,
        format: fmt.to_string(),
    })?;
    let opts = DecodeOptions {
        skip_empty_keys: false,
        ..*opts
    };
    let value = read_value(&mut inp, kind, &opts)?;
    if inp.offset() != body_end as u64 {
        return Err(Error::corrupt(
            inp.offset(),
            "expected the version trailer, found more value bytes",
        ));
    }
    Ok((value, version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Target;

    #[test]
    fn layout_is_type_value_version_crc() {
        let p = encode_dump(&Value::String(b"hi".to_vec()), &EncodeOptions::default()).unwrap();
        // type 0, length 2, "hi", version 10 LE, CRC64 LE of everything before.
        assert_eq!(&p[..6], &[0, 2, b'h', b'i', 10, 0]);
        assert_eq!(p.len(), 14);
        assert_eq!(
            u64::from_le_bytes(p[6..].try_into().unwrap()),
            crc64::checksum(&p[..6])
        );
        assert_eq!(dump_version(&p), Some(10));
    }

    #[test]
    fn refuses_bad_payloads() {
        let v = Value::List(vec![b"a".to_vec()]);
        let p = encode_dump(&v, &EncodeOptions::for_target(Target::Redis11)).unwrap();
        let opts = DecodeOptions::default();
        assert_eq!(decode_dump(&p, &opts, None).unwrap(), (v.clone(), 11));
        // A Redis 7.0 server (RDB 10) must refuse a version 11 payload.
        assert!(matches!(
            decode_dump(&p, &opts, Some(10)),
            Err(Error::UnsupportedVersion { version: 11, .. })
        ));
        let mut bad = p.clone();
        let n = bad.len();
        bad[n - 1] ^= 0x40;
        assert!(matches!(
            decode_dump(&bad, &opts, None),
            Err(Error::Checksum { .. })
        ));
        assert!(matches!(
            decode_dump(&p[..5], &opts, None),
            Err(Error::Truncated { .. })
        ));
        // Trailing bytes between the value and the version are refused.
        let mut extra = p[..n - 10].to_vec();
        extra.push(0);
        extra.extend_from_slice(&11u16.to_le_bytes());
        let crc = crc64::checksum(&extra);
        extra.extend_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            decode_dump(&extra, &opts, None),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn valkey_versions_use_valkey_tables() {
        let mut h = crate::value::HashField::new("f", "v");
        h.expire_ms = Some(1 << 41);
        let v = Value::Hash(vec![h]);
        let p = encode_dump(&v, &EncodeOptions::for_target(Target::Valkey80)).unwrap();
        assert_eq!(p[0], 22);
        assert_eq!(
            decode_dump(&p, &DecodeOptions::default(), None).unwrap(),
            (v, 80)
        );
    }
}
