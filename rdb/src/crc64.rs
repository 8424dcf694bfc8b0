//! CRC64 "Jones" as used by Redis (reflected polynomial 0xad93d23594c935a9,
//! init 0, no final xor). The `crc` crate's `CRC_64_REDIS` has exactly these
//! parameters; this module wraps it with a 16-way sliced table.

use crc::{Crc, Table, CRC_64_REDIS};

static CRC64: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_REDIS);

/// CRC64 of `data`.
pub fn checksum(data: &[u8]) -> u64 {
    CRC64.checksum(data)
}

/// Incremental CRC64.
pub struct Crc64 {
    digest: crc::Digest<'static, u64, Table<16>>,
}

impl Default for Crc64 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc64 {
    /// A fresh digest.
    pub fn new() -> Self {
        Crc64 { digest: CRC64.digest() }
    }

    /// Feed bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.digest.update(data);
    }

    /// The CRC of everything fed so far (the digest stays usable).
    pub fn value(&self) -> u64 {
        self.digest.clone().finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        assert_eq!(checksum(b"123456789"), 0xe9c6d914c4b8d9ca);
        let mut c = Crc64::new();
        c.update(b"1234");
        c.update(b"56789");
        assert_eq!(c.value(), 0xe9c6d914c4b8d9ca);
    }
}
