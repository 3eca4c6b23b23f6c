//! Opening a data directory whose files hold fuzz input: a snapshot and journals of arbitrary
//! bytes (the first input byte says which files). Opening may fail with a typed error; it must
//! never panic, and a fleet that opened is consistent and usable. Runs on the simulated file
//! system, so every input costs no disk I/O.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_lifecycle::storage::SimFs;
use node_lifecycle::{Fleet, FleetOptions, StorageOptions, Timestamp};
use std::path::Path;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let fs = SimFs::new();
    let dir = Path::new("/data");
    let (kind, rest) = data.split_first().unwrap_or((&0, &[]));
    // Split the rest at the next two bytes' length: a snapshot, then a journal.
    let (len, rest) = match rest {
        [hi, lo, rest @ ..] => (((*hi as usize) << 8 | *lo as usize).min(rest.len()), rest),
        _ => (0, rest),
    };
    let (a, b) = rest.split_at(len);
    let snapshot = dir.join("snapshot-00000000000000000001.nls");
    let journal = dir.join(format!("journal-0000000000000000000{}.nlj", 1 + kind % 2));
    match kind % 4 {
        0 => fs.write_file(&journal, rest.to_vec()),
        1 => fs.write_file(&snapshot, rest.to_vec()),
        _ => {
            fs.write_file(&snapshot, a.to_vec());
            fs.write_file(&journal, b.to_vec());
        }
    }
    let opened = Fleet::builder(FleetOptions::default())
        .manual_clock(Timestamp(0))
        .data_dir(dir, StorageOptions::default())
        .file_system(Arc::new(fs))
        .build();
    if let Ok(fleet) = opened {
        for n in fleet.nodes().unwrap() {
            assert_eq!(n.allocated_ram_mb, n.containers.values().sum::<u64>());
            let _ = fleet.evaluate(&n.id).unwrap();
        }
        let s = fleet.audit_stats().unwrap();
        assert!(s.retained <= s.capacity);
        let _ = fleet.register(node_lifecycle::NodeSpec::cloud("after-fuzz", 1));
    }
});
