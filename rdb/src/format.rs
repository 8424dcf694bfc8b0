//! Format constants and the type/opcode tables.
//!
//! Redis and Valkey give the same byte different meanings (type 22 is a
//! Redis 7.4 RC hash encoding and Valkey 9's `HASH_2`; opcode 243 is Redis
//! 8.6's `KEY_META` and Valkey's `SLOT_IMPORT`), so every table lookup takes
//! the [`Format`] (magic and version) the bytes come from.

use crate::error::{Error, Result};

/// Highest `REDIS` version this crate reads. Versions 13 (Redis 8.6) and 14
/// (Redis 8.8) are read, IDMP and NACK streams and the ARRAY type included;
/// KEY_META opcodes are skipped.
pub const MAX_REDIS_VERSION: u32 = 14;
/// Lowest and highest `VALKEY` version this crate reads.
pub const VALKEY_VERSIONS: std::ops::RangeInclusive<u32> = 80..=81;

/// Header magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Magic {
    /// `REDIS` + 4 digits (also written by Valkey up to 8.x).
    Redis,
    /// `VALKEY` + 3 digits (Valkey 9+).
    Valkey,
}

/// Magic and version: what the type and opcode tables depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Format {
    /// Header magic.
    pub magic: Magic,
    /// Version number.
    pub version: u32,
}

impl Format {
    /// `REDIS` format of the given version.
    pub const fn redis(version: u32) -> Format {
        Format {
            magic: Magic::Redis,
            version,
        }
    }

    /// `VALKEY` format of the given version.
    pub const fn valkey(version: u32) -> Format {
        Format {
            magic: Magic::Valkey,
            version,
        }
    }

    /// The format a DUMP payload of this version belongs to (payloads carry
    /// no magic; Valkey uses versions 80+).
    pub fn for_payload_version(version: u32) -> Format {
        if version >= 80 {
            Format::valkey(version)
        } else {
            Format::redis(version)
        }
    }

    /// Parse the 9-byte header.
    pub fn parse_header(h: &[u8]) -> Result<Format> {
        let bad = || Error::BadMagic { found: h.to_vec() };
        let (magic, digits) = if let Some(d) = h.strip_prefix(b"REDIS") {
            (Magic::Redis, d)
        } else if let Some(d) = h.strip_prefix(b"VALKEY") {
            (Magic::Valkey, d)
        } else {
            return Err(bad());
        };
        if h.len() != 9 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        let version = digits
            .iter()
            .fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
        let f = Format { magic, version };
        if !f.is_supported() {
            return Err(Error::UnsupportedVersion {
                magic: f.magic_str(),
                version,
            });
        }
        Ok(f)
    }

    /// Whether this crate reads the format.
    pub fn is_supported(&self) -> bool {
        match self.magic {
            Magic::Redis => (1..=MAX_REDIS_VERSION).contains(&self.version),
            Magic::Valkey => VALKEY_VERSIONS.contains(&self.version),
        }
    }

    /// `"REDIS"` or `"VALKEY"`.
    pub fn magic_str(&self) -> &'static str {
        match self.magic {
            Magic::Redis => "REDIS",
            Magic::Valkey => "VALKEY",
        }
    }

    /// The 9-byte header.
    pub fn header(&self) -> Vec<u8> {
        match self.magic {
            Magic::Redis => format!("REDIS{:04}", self.version).into_bytes(),
            Magic::Valkey => format!("VALKEY{:03}", self.version).into_bytes(),
        }
    }

    /// Files of version 5+ end with a CRC64.
    pub fn has_checksum(&self) -> bool {
        self.magic == Magic::Valkey || self.version >= 5
    }

    /// Version 8+ (and Valkey) can store 64-bit lengths.
    pub fn has_64bit_len(&self) -> bool {
        self.magic == Magic::Valkey || self.version >= 8
    }

    /// Look up a value type byte.
    pub fn kind(&self, byte: u8) -> Option<Kind> {
        use Kind::*;
        Some(match byte {
            0 => String,
            1 => ListLinked,
            2 => Set,
            3 => ZsetAscii,
            4 => Hash,
            5 => Zset2,
            6 => ModulePreGa,
            7 => Module2,
            9 => HashZipmap,
            10 => ListZiplist,
            11 => SetIntset,
            12 => ZsetZiplist,
            13 => HashZiplist,
            14 => ListQuicklist,
            15 => Stream1,
            16 => HashListpack,
            17 => ZsetListpack,
            18 => ListQuicklist2,
            19 => Stream2,
            20 => SetListpack,
            21 => Stream3,
            // Byte 22/23 mean different things to Redis (7.4 release
            // candidates, RDB 12) and Valkey (9.0+, RDB 80+); neither exists
            // in older formats.
            22 => match self.magic {
                Magic::Valkey => ValkeyHash2,
                Magic::Redis if self.version >= 12 => HashMetadataPreGa,
                Magic::Redis => return None,
            },
            23 => match self.magic {
                Magic::Valkey if self.version >= 81 => ValkeyPathHash,
                Magic::Redis if self.version >= 12 => HashListpackExPreGa,
                _ => return None,
            },
            24 if self.magic == Magic::Redis && self.version >= 12 => HashMetadata,
            25 if self.magic == Magic::Redis && self.version >= 12 => HashListpackEx,
            26 if self.magic == Magic::Redis && self.version >= 13 => Stream4,
            27 if self.magic == Magic::Redis && self.version >= 14 => Stream5,
            28 if self.magic == Magic::Redis && self.version >= 14 => Array,
            _ => return None,
        })
    }

    /// Look up an opcode byte (bytes read where a type byte is expected).
    pub fn opcode(&self, byte: u8) -> Option<Opcode> {
        use Opcode::*;
        Some(match byte {
            255 => Eof,
            254 => SelectDb,
            253 => ExpireTime,
            252 => ExpireTimeMs,
            251 => ResizeDb,
            250 => Aux,
            249 => Freq,
            248 => Idle,
            247 => ModuleAux,
            246 => FunctionPreGa,
            245 => Function2,
            244 => SlotInfo,
            243 => match self.magic {
                Magic::Redis if self.version >= 13 => KeyMeta,
                Magic::Redis => return None,
                Magic::Valkey => SlotImport,
            },
            242 if self.magic == Magic::Valkey => Update,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.magic_str(), self.version)
    }
}

/// How a value is stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// 0: string.
    String,
    /// 1: linked list of strings.
    ListLinked,
    /// 2: set of strings.
    Set,
    /// 3: sorted set with ASCII scores.
    ZsetAscii,
    /// 4: hash of strings.
    Hash,
    /// 5: sorted set with binary scores.
    Zset2,
    /// 6: pre-GA module value (cannot be skipped).
    ModulePreGa,
    /// 7: module value.
    Module2,
    /// 9: zipmap hash.
    HashZipmap,
    /// 10: ziplist list.
    ListZiplist,
    /// 11: intset set.
    SetIntset,
    /// 12: ziplist sorted set.
    ZsetZiplist,
    /// 13: ziplist hash.
    HashZiplist,
    /// 14: quicklist of ziplists.
    ListQuicklist,
    /// 15: stream, first format.
    Stream1,
    /// 16: listpack hash.
    HashListpack,
    /// 17: listpack sorted set.
    ZsetListpack,
    /// 18: quicklist of listpacks / plain nodes.
    ListQuicklist2,
    /// 19: stream with first/max-deleted IDs and counters.
    Stream2,
    /// 20: listpack set.
    SetListpack,
    /// 21: stream with consumer active time.
    Stream3,
    /// 22 (Redis 7.4 RC): hash with absolute field TTLs.
    HashMetadataPreGa,
    /// 23 (Redis 7.4 RC): listpack hash with TTLs, no min-expire prefix.
    HashListpackExPreGa,
    /// 22 (Valkey 9): hash with per-field expiry.
    ValkeyHash2,
    /// 23 (Valkey 9.2): path hash.
    ValkeyPathHash,
    /// 24: hash with field TTLs relative to a min-expire.
    HashMetadata,
    /// 25: listpack hash with field TTLs.
    HashListpackEx,
    /// 26 (Redis 8.6): stream with IDMP metadata.
    Stream4,
    /// 27 (Redis 8.8): stream with NACK zone.
    Stream5,
    /// 28 (Redis 8.8): sparse array.
    Array,
}

/// Opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Opcode {
    Eof,
    SelectDb,
    ExpireTime,
    ExpireTimeMs,
    ResizeDb,
    Aux,
    Freq,
    Idle,
    ModuleAux,
    FunctionPreGa,
    Function2,
    SlotInfo,
    KeyMeta,
    SlotImport,
    Update,
}

/// Module value sub-opcodes.
pub mod module_op {
    /// End of module value.
    pub const EOF: u64 = 0;
    /// Signed integer (length-encoded).
    pub const SINT: u64 = 1;
    /// Unsigned integer (length-encoded).
    pub const UINT: u64 = 2;
    /// 4-byte float.
    pub const FLOAT: u64 = 3;
    /// 8-byte double.
    pub const DOUBLE: u64 = 4;
    /// String.
    pub const STRING: u64 = 5;
}

const MODULE_CHARSET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Decode a module type ID into its 9-character name and encoding version.
pub fn module_name(id: u64) -> (String, u16) {
    let mut name = String::with_capacity(9);
    for i in 0..9u32 {
        let c = ((id >> (64 - 6 * (i + 1))) & 63) as usize;
        name.push(
            MODULE_CHARSET
                .get(c)
                .copied()
                .map(char::from)
                .unwrap_or('?'),
        );
    }
    (name, (id & 1023) as u16)
}

/// Encode a 9-character module name and version into a module type ID.
pub fn module_id(name: &str, encver: u16) -> Option<u64> {
    if name.len() != 9 || encver > 1023 {
        return None;
    }
    let mut id = 0u64;
    for b in name.bytes() {
        let pos = MODULE_CHARSET.iter().position(|&c| c == b)? as u64;
        id = (id << 6) | pos;
    }
    Some((id << 10) | u64::from(encver))
}

/// Quicklist 2 container tags.
pub const QUICKLIST_PLAIN: u64 = 1;
/// Quicklist 2 packed (listpack) node.
pub const QUICKLIST_PACKED: u64 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_depend_on_magic_and_version() {
        assert_eq!(Format::redis(12).kind(22), Some(Kind::HashMetadataPreGa));
        assert_eq!(Format::valkey(80).kind(22), Some(Kind::ValkeyHash2));
        assert_eq!(Format::redis(11).kind(22), None);
        assert_eq!(Format::redis(11).kind(24), None);
        assert_eq!(Format::valkey(80).kind(24), None);
        assert_eq!(Format::valkey(80).kind(23), None);
        assert_eq!(Format::valkey(81).kind(23), Some(Kind::ValkeyPathHash));
        assert_eq!(Format::redis(12).opcode(243), None);
        assert_eq!(Format::valkey(80).opcode(243), Some(Opcode::SlotImport));
        assert_eq!(Format::redis(10).opcode(242), None);
        assert_eq!(
            Format::parse_header(b"VALKEY080").unwrap(),
            Format::valkey(80)
        );
        assert!(Format::parse_header(b"REDIS0015").is_err());
        assert_eq!(Format::redis(13).opcode(243), Some(Opcode::KeyMeta));
        assert_eq!(Format::redis(13).kind(26), Some(Kind::Stream4));
        assert_eq!(Format::redis(12).kind(26), None);
        assert_eq!(Format::redis(14).kind(28), Some(Kind::Array));
        assert_eq!(Format::redis(13).kind(28), None);
        assert_eq!(Format::valkey(81).kind(28), None);
        assert!(Format::parse_header(b"VALKEY012").is_err());
        assert_eq!(Format::redis(7).header(), b"REDIS0007");
    }

    #[test]
    fn module_ids() {
        let id = module_id("hellotype", 0).unwrap();
        assert_eq!(module_name(id), ("hellotype".to_string(), 0));
        assert_eq!(module_name(module_id("ReJSON-RL", 3).unwrap()).1, 3);
        assert!(module_id("short", 0).is_none());
    }
}
