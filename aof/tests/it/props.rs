//! Property tests: round trips and single-byte damage.

use crate::support::*;
use basalt_aof::format::{RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use basalt_aof::fs::MemFs;
use basalt_aof::repair::check;
use basalt_aof::{FsyncPolicy, RecoveryMode};
use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;

fn payloads() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..60)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_payloads_round_trip(all in payloads(), rotate_every in 0usize..20) {
        let fs = MemFs::new();
        let (log, _, _) = replay(&dir(), mem_opts(&fs)).unwrap();
        let mut last = basalt_aof::Lsn(0);
        for (i, p) in all.iter().enumerate() {
            last = log.append(p).unwrap();
            if rotate_every > 0 && i % rotate_every == rotate_every - 1 {
                log.rotate(Duration::from_secs(20)).unwrap();
            }
        }
        prop_assert!(log.wait_durable(last, Duration::from_secs(10)));
        let end = log.appended();
        drop(log);
        let (log, got, report) = replay(&dir(), mem_opts(&fs.crash())).unwrap();
        prop_assert_eq!(&got, &all);
        prop_assert_eq!(report.end, end);
        prop_assert_eq!(log.appended(), end);
    }

    #[test]
    fn one_flipped_byte_loses_exactly_one_record_after_fix(
        all in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..100), 2..40),
        pick in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let fs = MemFs::new();
        let (log, _, _) = replay(&dir(), mem_opts(&fs)).unwrap();
        let mut last = basalt_aof::Lsn(0);
        for p in &all {
            last = log.append(p).unwrap();
        }
        prop_assert!(log.wait_durable(last, Duration::from_secs(10)));
        drop(log);
        let total: usize = all.iter().map(|p| p.len() + RECORD_HEADER_LEN).sum();
        let at = SEGMENT_HEADER_LEN + pick.index(total);
        // Which record holds the byte.
        let mut off = SEGMENT_HEADER_LEN;
        let mut victim = 0;
        for (i, p) in all.iter().enumerate() {
            if at < off + p.len() + RECORD_HEADER_LEN { victim = i; break; }
            off += p.len() + RECORD_HEADER_LEN;
        }
        fs.damage(&segment_path(1), |b| b[at] ^= 1 << bit);
        check(&fs, &dir(), true).unwrap();
        let o = opts(Arc::new(fs.clone()), FsyncPolicy::Always, RecoveryMode::Strict);
        let (_l, got, _) = replay(&dir(), o).unwrap();
        let mut expect = all.clone();
        expect.remove(victim);
        prop_assert_eq!(got, expect);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Arbitrary bytes after a valid header never panic recovery or the
    /// checker, in any mode; after `check --fix`, strict recovery succeeds.
    #[test]
    fn arbitrary_segment_bytes_never_panic(
        good in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..8),
        junk in prop::collection::vec(any::<u8>(), 0..200),
        junk_at in any::<prop::sample::Index>(),
    ) {
        let fs = MemFs::new();
        let (log, _, _) = replay(&dir(), mem_opts(&fs)).unwrap();
        for p in &good {
            log.append(p).unwrap();
        }
        drop(log);
        fs.damage(&segment_path(1), |b| {
            let at = SEGMENT_HEADER_LEN + junk_at.index(b.len() - SEGMENT_HEADER_LEN + 1);
            let end = (at + junk.len()).min(b.len());
            b.splice(at..end, junk.iter().copied());
        });
        for mode in [RecoveryMode::Strict, RecoveryMode::TruncateTail, RecoveryMode::LoadUntilDamage] {
            let o = opts(Arc::new(fs.crash()), FsyncPolicy::Always, mode);
            let _ = replay(&dir(), o);
        }
        let r = check(&fs, &dir(), true).unwrap();
        if r.files.iter().all(|f| f.unfixable.is_none()) {
            let o = opts(Arc::new(fs.clone()), FsyncPolicy::Always, RecoveryMode::Strict);
            prop_assert!(replay(&dir(), o).is_ok(), "{}", r);
        }
    }
}
