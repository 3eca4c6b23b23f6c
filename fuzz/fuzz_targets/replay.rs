//! Journal replay and snapshot restore on arbitrary bytes: opening a data directory whose files
//! hold fuzz input may fail with a typed error, and must never panic or misread.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_lifecycle::{Fleet, FleetOptions, StorageOptions, Timestamp};
use std::sync::atomic::{AtomicU64, Ordering};

static RUN: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("nl-fuzz-replay-{}-{}", std::process::id(), RUN.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The first byte chooses what the rest is: a journal, a snapshot, or both (then the next two
    // bytes, big-endian, are the snapshot's length).
    let (kind, rest) = data.split_first().unwrap_or((&0, &[]));
    match kind % 3 {
        0 => std::fs::write(dir.join("journal.log"), rest).unwrap(),
        1 => std::fs::write(dir.join("snapshot.bin"), rest).unwrap(),
        _ => {
            let (len, rest) = match rest {
                [hi, lo, rest @ ..] => (((*hi as usize) << 8 | *lo as usize).min(rest.len()), rest),
                _ => (0, rest),
            };
            let (a, b) = rest.split_at(len);
            std::fs::write(dir.join("snapshot.bin"), a).unwrap();
            std::fs::write(dir.join("journal.log"), b).unwrap();
        }
    }
    let opened = Fleet::builder(FleetOptions::default())
        .manual_clock(Timestamp(0))
        .data_dir(&dir, StorageOptions::default())
        .build();
    if let Ok(fleet) = opened {
        // A fleet that opened is usable and its restored state is consistent.
        for n in fleet.nodes() {
            assert_eq!(n.allocated_ram_mb, n.containers.values().sum::<u64>());
            let _ = fleet.evaluate(&n.id).unwrap();
        }
        let s = fleet.audit_stats();
        assert!(s.retained <= s.capacity);
        let _ = fleet.register(node_lifecycle::NodeSpec::cloud("after-fuzz", 1));
    }
    let _ = std::fs::remove_dir_all(&dir);
});
