//! How long callers wait while a snapshot is taken (not a test; results in
//! docs/PERFORMANCE.md): a persistent fleet of 10k and 100k nodes compacts while another thread
//! evaluates a node in a loop and records the slowest call. The snapshot holds the fleet's lock
//! only to capture the state (one reference count per node) and to switch to the journal it
//! created beforehand: no I/O. Syncing and sealing the old journal, encoding and writing the
//! snapshot, and creating the next journal happen outside it.
//!
//!     cargo bench --bench snapshot_stall

use node_lifecycle::storage::{Fs, OsFs};
use node_lifecycle::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    for n in [10_000usize, 100_000] {
        run("disk", Arc::new(OsFs), n);
    }
}

fn run(fs_name: &str, fs: Arc<dyn Fs>, n: usize) {
    {
        let dir = std::env::temp_dir().join(format!("nl-stall-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let f = Arc::new(
            Fleet::builder(FleetOptions::default())
                .manual_clock(Timestamp(0))
                .file_system(fs)
                .data_dir(
                    &dir,
                    StorageOptions {
                        sync: SyncPolicy::Batched {
                            max_writes: 100_000,
                            max_delay_ms: 60_000,
                        },
                        compact_after_records: OFF,
                    },
                )
                .build()
                .unwrap(),
        );
        for i in 0..n {
            let id = format!("node-{i:08}");
            f.register(NodeSpec::cloud(&id, 16384)).unwrap();
            if i % 3 == 0 {
                f.transition(&id, LifecycleState::Initializing, "x")
                    .unwrap();
                f.transition(&id, LifecycleState::Ready, "cloud_init_completed")
                    .unwrap();
                f.add_container(&id, &format!("c-{i}"), 1024).unwrap();
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (f, stop) = (f.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut worst = Duration::ZERO;
                let mut calls = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let _ = f.evaluate("node-00000042").unwrap();
                    worst = worst.max(t.elapsed());
                    calls += 1;
                }
                (worst, calls)
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        let mut compactions = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            f.compact().unwrap();
            compactions.push(t.elapsed());
        }
        stop.store(true, Ordering::Relaxed);
        let (worst, calls) = reader.join().unwrap();
        compactions.sort();
        println!(
            "{fs_name:>6} {n:>7} nodes: compaction {:>8.1?} (median of 5), slowest concurrent verdict {:>8.1?} over {calls} calls",
            compactions[2], worst
        );
        drop(f);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
