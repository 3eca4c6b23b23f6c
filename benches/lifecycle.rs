//! Benchmarks of the core: `cargo bench --bench lifecycle`. Results are reported in
//! docs/PERFORMANCE.md; nothing here is asserted.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use node_lifecycle::audit::{AuditAction, AuditRecord, AuditResult, AuditRing};
use node_lifecycle::*;
use std::hint::black_box;
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

/// A fleet of `n` cloud nodes past every grace: a third idle, a third active with two
/// containers, a third ready; plus a few system nodes. Node ids are "node-00000042".
fn fleet(n: usize) -> Fleet {
    let f = Fleet::with_manual_clock(
        FleetOptions {
            audit_capacity: 1000,
            ..Default::default()
        },
        Timestamp(0),
    )
    .unwrap();
    for i in 0..n {
        let id = format!("node-{i:08}");
        f.register(NodeSpec::cloud(&id, 16384).hourly_cost_eur(0.01 + (i % 7) as f64 * 0.02))
            .unwrap();
        f.transition(&id, LifecycleState::Initializing, "cloud_init_started")
            .unwrap();
        f.transition(&id, LifecycleState::Ready, "cloud_init_completed")
            .unwrap();
        match i % 3 {
            0 => {
                f.add_container(&id, &format!("c-{i}"), 1024).unwrap();
                f.remove_container(&id, &format!("c-{i}")).unwrap();
            }
            1 => {
                f.add_container(&id, &format!("a-{i}"), 2048).unwrap();
                f.add_container(&id, &format!("b-{i}"), 1024).unwrap();
            }
            _ => {}
        }
    }
    for i in 0..3 {
        f.register(NodeSpec::system(format!("system-{i}"), 0))
            .unwrap();
    }
    f.advance_clock(120 * MIN).unwrap();
    f
}

fn single_operations(c: &mut Criterion) {
    let f = fleet(10_000);
    let mut g = c.benchmark_group("single");
    g.bench_function("verdict (10k-node fleet)", |b| {
        b.iter(|| black_box(f.evaluate(black_box("node-00004242")).unwrap()))
    });
    // What the C ABI's flat verdict costs in Rust (the Go benchmark's counterpart): idle,
    // active and ready nodes, the verdict reduced to its flat form where it is computed.
    for (what, id) in [
        ("idle", "node-00004242"),
        ("active", "node-00004243"),
        ("ready", "node-00004244"),
    ] {
        g.bench_function(format!("flat verdict, {what} node"), |b| {
            b.iter(|| {
                black_box(
                    f.decide(black_box(id))
                        .map(|d| (d.allowed(), d.primary(), d.blockers.len()))
                        .unwrap(),
                )
            })
        });
    }
    g.bench_function("verdict, pure rule", |b| {
        f.with_nodes(|nodes, policy, now| {
            let node = nodes.nth(4242).unwrap().clone();
            b.iter(|| {
                black_box(node_lifecycle::safety::evaluate(
                    black_box(&node),
                    policy,
                    now,
                ))
            })
        })
        .unwrap()
    });
    // A transition pair (unhealthy, then back to ready) per iteration; the figure is per pair.
    g.bench_function("transition pair ready->unhealthy->ready", |b| {
        b.iter(|| {
            f.transition("node-00000002", LifecycleState::Unhealthy, "bench")
                .unwrap();
            f.transition("node-00000002", LifecycleState::Ready, "bench")
                .unwrap();
        })
    });
    g.bench_function("container event pair add+remove", |b| {
        b.iter(|| {
            f.add_container("node-00000001", "bench-c", 512).unwrap();
            f.remove_container("node-00000001", "bench-c").unwrap();
        })
    });
    // An idle node: the pair moves it idle -> active -> idle, two audited transitions with
    // state snapshots (what the Go benchmark of the same name measures).
    g.bench_function("container event pair on an idle node", |b| {
        b.iter(|| {
            f.add_container("node-00000003", "bench-c", 512).unwrap();
            f.remove_container("node-00000003", "bench-c").unwrap();
        })
    });
    g.bench_function("audit append (ring, full)", |b| {
        let mut ring = AuditRing::new(1000);
        let mut t = 0;
        b.iter_batched(
            || {
                AuditRecord::new(AuditAction::ScaleUp, "node-00000042", AuditResult::Success)
                    .reason(0, "load")
                    .decision_by("reactive_policy")
            },
            |rec| {
                t += 1;
                black_box(ring.append(rec, Timestamp(t)))
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("audit record through the fleet (with snapshot)", |b| {
        b.iter(|| {
            f.record_audit(
                AuditRecord::new(AuditAction::ScaleUp, "node-00000042", AuditResult::Success)
                    .decision_by("reactive_policy"),
            )
            .unwrap()
        })
    });
    g.finish();
}

fn audit_queries(c: &mut Criterion) {
    let mut g = c.benchmark_group("audit queries");
    for capacity in [1_000usize, 100_000] {
        // 1000 nodes writing round robin: each node has capacity/1000 entries in the ring.
        let mut ring = AuditRing::new(capacity);
        for i in 0..(capacity * 2) {
            let rec = AuditRecord::new(
                AuditAction::LifecycleTransition,
                format!("node-{:08}", i % 1000),
                AuditResult::Success,
            );
            ring.append(rec, Timestamp(i as i64));
        }
        g.bench_with_input(BenchmarkId::new("by_node", capacity), &ring, |b, r| {
            b.iter(|| black_box(r.by_node("node-00000042", usize::MAX)))
        });
        g.bench_with_input(BenchmarkId::new("recent 100", capacity), &ring, |b, r| {
            b.iter(|| black_box(r.recent(100)))
        });
        g.bench_with_input(
            BenchmarkId::new("since (last 100)", capacity),
            &ring,
            |b, r| {
                let cursor = r.stats().next_seq - 101;
                b.iter(|| black_box(r.since(cursor, 1000)))
            },
        );
        g.bench_with_input(
            BenchmarkId::new("by_action (scan)", capacity),
            &ring,
            |b, r| b.iter(|| black_box(r.by_action(AuditAction::ScaleUp, 100))),
        );
    }
    g.finish();
}

fn fleet_wide(c: &mut Criterion) {
    let mut g = c.benchmark_group("fleet-wide");
    g.sample_size(20);
    for n in [1_000usize, 10_000, 100_000] {
        let f = fleet(n);
        g.bench_with_input(BenchmarkId::new("evaluate_all", n), &f, |b, f| {
            b.iter(|| black_box(f.evaluate_all()))
        });
        g.bench_with_input(
            BenchmarkId::new("with_verdicts (batch path)", n),
            &f,
            |b, f| {
                b.iter(|| {
                    let mut allowed = 0usize;
                    f.with_decisions(|_, d| allowed += d.allowed() as usize)
                        .unwrap();
                    black_box(allowed)
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("projection", n), &f, |b, f| {
            b.iter(|| black_box(f.projection()))
        });
    }
    let f = fleet(1_000);
    let req = ConsolidationRequest::default();
    g.bench_function("consolidation plan/1000", |b| {
        b.iter(|| black_box(f.consolidation_plan(&req).unwrap()))
    });
    g.finish();
}

fn persistence(c: &mut Criterion) {
    let mut g = c.benchmark_group("persistence");
    g.sample_size(10);
    for n in [10_000usize, 100_000] {
        let dir = std::env::temp_dir().join(format!("nl-bench-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let f = Fleet::builder(FleetOptions::default())
            .manual_clock(Timestamp(0))
            .data_dir(
                &dir,
                StorageOptions {
                    sync: SyncPolicy::Batched {
                        max_writes: 10_000,
                        max_delay_ms: 60_000,
                    },
                    compact_after_records: node_lifecycle::OFF,
                },
            )
            .build()
            .unwrap();
        for i in 0..n {
            let id = format!("node-{i:08}");
            f.register(NodeSpec::cloud(&id, 16384)).unwrap();
            f.add_container_or_skip(&id, i);
        }
        g.bench_function(BenchmarkId::new("snapshot", n), |b| {
            b.iter(|| f.compact().unwrap())
        });
        drop(f);
        g.bench_function(BenchmarkId::new("restore", n), |b| {
            b.iter(|| {
                let f = Fleet::builder(FleetOptions::default())
                    .manual_clock(Timestamp(0))
                    .data_dir(&dir, StorageOptions::default())
                    .build()
                    .unwrap();
                black_box(f.len())
            })
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
    g.finish();
}

/// Bench-only helper: gives every other node a container (nodes are provisioning, so it goes
/// through ready first).
trait Populate {
    fn add_container_or_skip(&self, id: &str, i: usize);
}

impl Populate for Fleet {
    fn add_container_or_skip(&self, id: &str, i: usize) {
        self.transition(id, LifecycleState::Initializing, "cloud_init_started")
            .unwrap();
        self.transition(id, LifecycleState::Ready, "cloud_init_completed")
            .unwrap();
        if i.is_multiple_of(2) {
            self.add_container(id, &format!("c-{i}"), 1024).unwrap();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = single_operations, audit_queries, fleet_wide, persistence
}
criterion_main!(benches);
