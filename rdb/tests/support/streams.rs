//! Redis 8.6 / 8.8 stream values (types 26 and 27) assembled byte by byte
//! from the documented layout (see `rdb/src/stream.rs`), for the rdb
//! crate's hand-made tests and basalt-tools' tests.
#![allow(dead_code, clippy::indexing_slicing)]

/// Header + body + EOF + CRC64.
pub fn file(header: &[u8], body: &[u8]) -> Vec<u8> {
    let mut v = header.to_vec();
    v.extend_from_slice(body);
    v.push(255);
    let crc = basalt_rdb::crc64::checksum(&v);
    v.extend_from_slice(&crc.to_le_bytes());
    v
}

/// A one-entry stream node listpack: entry 1-1 {f: v}, master ID 1-1.
/// Elements: master `1 0 1 "f" 0`, entry `2(samefields) 0 0 "v" 4`.
pub fn node_listpack() -> Vec<u8> {
    let int = |v: u8| [v, 1]; // 7-bit uint, backlen 1
    let st = |c: u8| [0x81, c, 2]; // 6-bit string of length 1, backlen 2
    let mut body = Vec::new();
    for e in [1, 0, 1] {
        body.extend_from_slice(&int(e));
    }
    body.extend_from_slice(&st(b'f'));
    body.extend_from_slice(&int(0));
    for e in [2, 0, 0] {
        body.extend_from_slice(&int(e));
    }
    body.extend_from_slice(&st(b'v'));
    body.extend_from_slice(&int(4));
    let total = 6 + body.len() + 1;
    let mut lp = (total as u32).to_le_bytes().to_vec();
    lp.extend_from_slice(&10u16.to_le_bytes());
    lp.extend_from_slice(&body);
    lp.push(0xff);
    lp
}

pub fn raw_id(ms: u64, seq: u64) -> Vec<u8> {
    let mut v = ms.to_be_bytes().to_vec();
    v.extend_from_slice(&seq.to_be_bytes());
    v
}

/// Key `s` holding a stream of type `ty` (26 or 27) with one group `g`
/// whose only PEL entry 1-1 is owned by consumer `c` (`nack` false) or by
/// nobody and listed in the NACK zone (`nack` true, type 27 only).
pub fn stream_body(ty: u8, nack: bool) -> Vec<u8> {
    let lp = node_listpack();
    let mut b = vec![ty, 1, b's'];
    b.push(1); // one node
    b.push(16);
    b.extend_from_slice(&raw_id(1, 1));
    b.push(lp.len() as u8);
    b.extend_from_slice(&lp);
    b.extend_from_slice(&[1, 1, 1]); // length, last id 1-1
    b.extend_from_slice(&[1, 1, 0, 0, 1]); // first id, max deleted id, entries added
    b.extend_from_slice(&[1, 1, b'g', 1, 1, 1]); // 1 group "g", last delivered 1-1, entries read 1
    b.push(1); // group PEL: 1 entry
    b.extend_from_slice(&raw_id(1, 1));
    b.extend_from_slice(&1_700_000_000_000i64.to_le_bytes());
    b.push(2); // delivery count
    b.extend_from_slice(&[1, 1, b'c']); // 1 consumer "c"
    b.extend_from_slice(&1_700_000_000_001i64.to_le_bytes()); // seen
    b.extend_from_slice(&1_700_000_000_002i64.to_le_bytes()); // active
    if nack {
        b.push(0); // consumer PEL empty
        b.push(1); // NACK zone: 1 id
        b.extend_from_slice(&raw_id(1, 1));
    } else {
        b.push(1);
        b.extend_from_slice(&raw_id(1, 1));
        if ty == 27 {
            b.push(0); // empty NACK zone
        }
    }
    // IDMP: duration 100 (14-bit length), max entries 50, one producer "p"
    // with iid "i1" -> 1-1, iids added 1, duplicates 3.
    b.extend_from_slice(&[0x40, 100, 50]);
    b.extend_from_slice(&[1, 1, b'p', 1, 2, b'i', b'1', 1, 1]);
    b.extend_from_slice(&[1, 3]);
    b
}
