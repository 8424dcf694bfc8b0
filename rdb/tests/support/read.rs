//! Reading a whole dump in the rdb crate's tests: through the slice reader,
//! and through the `Read` reader fed a few bytes at a time (so every refill
//! boundary is crossed).
#![allow(dead_code, clippy::indexing_slicing)]

use basalt_rdb::{DecodeOptions, Item, Reader};

/// Every item of `data`, read from the slice.
pub fn items(data: &[u8]) -> basalt_rdb::Result<Vec<Item>> {
    Reader::from_slice(data, DecodeOptions::default())?.collect()
}

/// Every item of `data`, read through `std::io::Read` handing out at most
/// `chunk` bytes per call.
pub fn items_dribbled(data: &[u8], chunk: usize) -> basalt_rdb::Result<Vec<Item>> {
    struct Dribble<'a>(&'a [u8], usize);
    impl std::io::Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.1).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    Reader::from_read(Dribble(data, chunk), DecodeOptions::default())?.collect()
}
