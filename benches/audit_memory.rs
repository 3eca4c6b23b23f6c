//! Memory: `cargo bench --bench audit_memory`. Counts live heap bytes with a counting global
//! allocator and reports (1) the heap growth of the audit ring after it is full: fill the
//! ring, then append one million more entries through the fleet; (2) the bytes per node of a
//! fleet of one million nodes. Reported in docs/PERFORMANCE.md; not asserted.

use node_lifecycle::audit::{AuditAction, AuditRecord, AuditResult};
use node_lifecycle::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn main() {
    // Only run under `cargo bench` (criterion's harness flags are ignored here).
    let f = Fleet::with_manual_clock(FleetOptions::default(), Timestamp(0)).unwrap();
    for i in 0..100 {
        f.register(NodeSpec::cloud(format!("node-{i:03}"), 8192))
            .unwrap();
    }
    let record = |i: u64| {
        let rec = AuditRecord::new(
            AuditAction::ScaleUp,
            format!("node-{:03}", i % 100),
            AuditResult::Success,
        )
        .reason(0, "load")
        .decision_by("reactive_policy");
        f.record_audit(rec).unwrap();
    };
    // Fill the ring (capacity 1000) twice over, so every per-node index key exists.
    for i in 0..2_000 {
        record(i);
    }
    let before = LIVE.load(Ordering::Relaxed);
    let allocs_before = ALLOCS.load(Ordering::Relaxed);
    let start = std::time::Instant::now();
    for i in 0..1_000_000 {
        record(i);
    }
    let elapsed = start.elapsed();
    let after = LIVE.load(Ordering::Relaxed);
    let stats = f.audit_stats();
    println!(
        "audit ring capacity {}, recorded {}, evicted {}",
        stats.as_ref().unwrap().capacity,
        stats.as_ref().unwrap().total_recorded,
        stats.as_ref().unwrap().evicted
    );
    println!(
        "live heap before 1M appends: {before} bytes; after: {after} bytes; growth: {} bytes",
        after - before
    );
    println!(
        "1M appends through Fleet::record_audit in {:.2?} ({:.0} ns each), {:.1} allocations per append (all freed again)",
        elapsed,
        elapsed.as_nanos() as f64 / 1e6,
        (ALLOCS.load(Ordering::Relaxed) - allocs_before) as f64 / 1e6
    );
    drop(f);
    bytes_per_node();
}

/// Live heap per node at one million nodes: ready cloud nodes, half of them hosting one
/// container (a fleet as the conductor's would look), ids as the conductor names them.
fn bytes_per_node() {
    const N: usize = 1_000_000;
    let options = FleetOptions {
        audit_capacity: 1000,
        ..FleetOptions::default()
    };
    let before = LIVE.load(Ordering::Relaxed);
    let f = Fleet::with_manual_clock(options, Timestamp(0)).unwrap();
    for i in 0..N {
        let id = format!("hz-{i:08}");
        f.register(NodeSpec::cloud(id.clone(), 16384)).unwrap();
        f.transition(&id, LifecycleState::Initializing, "cloud_init_started")
            .unwrap();
        f.transition(&id, LifecycleState::Ready, "cloud_init_completed")
            .unwrap();
        if i % 2 == 0 {
            f.add_container(&id, &format!("srv-{i:08}"), 2048).unwrap();
        }
    }
    let after = LIVE.load(Ordering::Relaxed);
    println!(
        "{N} nodes (half with one container): {} bytes live, {:.0} bytes per node",
        after - before,
        (after - before) as f64 / N as f64
    );
    drop(f);
}
