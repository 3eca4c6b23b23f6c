//! The storage fault model, exhaustively: a workload with several compactions runs on a
//! simulated file system that fails or "crashes" at its Nth operation, for every N (the
//! approach of SQLite's test VFS). After each fault, the power is cut (only synced data and
//! directory entries survive, unsynced appends are torn) and the directory is reopened. It must
//! open — never `corrupt` — and hold exactly the acknowledged mutations: an operation that
//! returned an error is never visible; the one a crash interrupted may be either.
//!
//! Also here: a bit flip at every byte of a journal and of a snapshot either opens with every
//! acknowledged mutation or fails with `corrupt`, never with fewer.

use node_lifecycle::storage::testing::op;
use node_lifecycle::storage::{Fault, FaultFs, Fs, OsFs, SimFs};
use node_lifecycle::*;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const T0: Timestamp = Timestamp(1_767_225_600_000);
const DIR: &str = "/data";

#[derive(Clone, Debug)]
enum Op {
    Register(&'static str),
    Init(&'static str),
    Ready(&'static str),
    Add(&'static str, &'static str),
    Remove(&'static str, &'static str),
    Claim(&'static str),
    Cordon(&'static str),
    Hold(&'static str),
    Begin(&'static str),
    Fail(&'static str),
    Complete(&'static str),
    Advance(u64),
    Compact,
}

fn workload() -> Vec<Op> {
    use Op::*;
    vec![
        Register("a"),
        Register("b"),
        Init("a"),
        Ready("a"),
        Init("b"),
        Ready("b"),
        Add("a", "c1"),
        Add("b", "c2"),
        Claim("a"),
        Hold("b"),
        Advance(40),
        Remove("a", "c1"),
        Cordon("b"),
        Register("c"),
        Advance(40),
        Compact,
        Begin("a"),
        Fail("a"),
        Init("c"),
        Ready("c"),
        Add("c", "c3"),
        Remove("b", "c2"),
        Advance(40),
        Complete("a"),
        Register("d"),
        Begin("b"),
        Add("c", "c4"),
    ]
}

struct Runner {
    fleet: Fleet,
    tickets: HashMap<&'static str, DecommissionTicket>,
}

impl Runner {
    /// Applies `op`; `Ok(true)` for a mutation that was acknowledged.
    fn apply(&mut self, op: &Op) -> Result<bool> {
        let f = &self.fleet;
        match op {
            Op::Register(id) => f.register(NodeSpec::cloud(*id, 8192)).map(|_| true),
            Op::Init(id) => f
                .transition(id, LifecycleState::Initializing, "x")
                .map(|_| true),
            Op::Ready(id) => f.transition(id, LifecycleState::Ready, "x").map(|_| true),
            Op::Add(id, c) => f.add_container(id, c, 512).map(|_| true),
            Op::Remove(id, c) => f.remove_container(id, c).map(|_| true),
            Op::Claim(id) => f.claim(id, 256, OFF).map(|_| true),
            Op::Cordon(id) => f.cordon(id, "disk-full", "97%", false).map(|_| true),
            Op::Hold(id) => f.place_hold(id, "world", "data").map(|_| true),
            Op::Begin(id) => match f.begin_decommission(id, "test") {
                Ok(t) => {
                    self.tickets.insert(id, t);
                    Ok(true)
                }
                // A rejection is acknowledged too (its audit entry is durable), and so is the
                // failed entry of an unknown node.
                Err(Error::Rejected { .. } | Error::NodeNotFound(_)) => Ok(true),
                Err(e) => Err(e),
            },
            Op::Fail(id) => match self.tickets.get(id) {
                Some(t) => f.fail_decommission(t, b"503").map(|_| true),
                None => Ok(false),
            },
            Op::Complete(id) => match self.tickets.get(id) {
                Some(t) => f.complete_decommission(t).map(|_| true),
                None => Ok(false),
            },
            Op::Advance(m) => f.advance_clock(Duration::from_secs(m * 60)).map(|_| false),
            Op::Compact => f.compact().map(|_| false),
        }
    }
}

fn open(fs: Arc<dyn Fs>, at: Timestamp) -> Result<Fleet> {
    open_in(fs, Path::new(DIR), at)
}

fn open_in(fs: Arc<dyn Fs>, dir: &Path, at: Timestamp) -> Result<Fleet> {
    Fleet::builder(FleetOptions::default())
        .manual_clock(at)
        .data_dir(
            dir,
            StorageOptions {
                compact_after_records: 4,
                ..Default::default()
            },
        )
        .file_system(fs)
        .build()
}

/// What the directory must hold: nodes (ids of tickets and claims masked: each fleet draws its
/// own) and audit entries, from an in-memory fleet that ran the same acknowledged operations.
fn expected(ops: &[Op]) -> (Vec<NodeInfo>, Vec<AuditEntry>) {
    let mut r = Runner {
        fleet: Fleet::with_manual_clock(FleetOptions::default(), T0).unwrap(),
        tickets: HashMap::new(),
    };
    for op in ops {
        r.apply(op).unwrap();
    }
    (
        masked(r.fleet.nodes().unwrap()),
        r.fleet.audit_recent(usize::MAX).unwrap(),
    )
}

fn masked(nodes: Vec<NodeInfo>) -> Vec<NodeInfo> {
    nodes
        .into_iter()
        .map(|mut n| {
            for c in &mut n.claims {
                c.id = ClaimId([0; 8]);
            }
            if let Some(d) = &mut n.decommission {
                d.ticket = TicketId([0; 16]);
            }
            n.recovered_at_ms = None;
            n.container_sync_pending = false;
            n.container_sync_completed_at_ms = None;
            n
        })
        .collect()
}

/// Runs the workload with a fault at operation `at`, cuts the power, reopens, and checks.
fn run_with_fault(at: u64, fault: Fault, torn: bool) -> Option<String> {
    let sim = SimFs::new();
    let faulty = FaultFs::new(Arc::new(sim.clone()), at, fault, op::ALL);
    let mut acknowledged: Vec<Op> = Vec::new();
    let mut in_doubt: Option<Op> = None;
    let mut clock = T0;
    if let Ok(fleet) = open(Arc::new(faulty.clone()), T0) {
        let mut r = Runner {
            fleet,
            tickets: HashMap::new(),
        };
        for op in workload() {
            match r.apply(&op) {
                Ok(_) => acknowledged.push(op),
                // A storage failure, or an ordinary error of an operation whose premise an
                // earlier failure took away: not acknowledged either way.
                Err(_) => {
                    if fault == Fault::Crash && in_doubt.is_none() {
                        in_doubt = Some(op.clone());
                    }
                    // Clock moves are not mutations; keep the clocks in step.
                    if let Op::Advance(_) = op {
                        acknowledged.push(op);
                    }
                }
            }
        }
        clock = r.fleet.now();
    }
    if !faulty.fired() {
        return None;
    }
    sim.crash(torn);
    let reopened = open(Arc::new(sim.clone()), clock)
        .unwrap_or_else(|e| panic!("fault {at} {fault:?} torn={torn}: reopen failed: {e}"));
    let nodes = masked(reopened.nodes().unwrap());
    let audit = reopened.audit_recent(usize::MAX).unwrap();
    let mut candidates = vec![acknowledged.clone()];
    if let Some(op) = &in_doubt {
        let mut with = acknowledged.clone();
        with.push(op.clone());
        candidates.push(with);
    }
    let matched = candidates.iter().any(|ops| {
        let (n, a) = expected(ops);
        n == nodes && audit.len() >= a.len() && audit[..a.len()] == a[..]
    });
    assert!(
        matched,
        "fault at op {at} ({fault:?}, torn={torn}): the reopened directory does not hold exactly \
         the acknowledged mutations\nacknowledged: {acknowledged:?}\nin doubt: {in_doubt:?}\n\
         nodes: {nodes:#?}"
    );
    // And it is usable.
    reopened
        .register(NodeSpec::cloud("after-reopen", 0))
        .unwrap();
    Some(format!("{at}"))
}

#[test]
fn every_fault_at_every_operation_keeps_exactly_the_acknowledged() {
    // Learn how many file-system operations the workload makes.
    let sim = SimFs::new();
    let probe = FaultFs::new(Arc::new(sim), 0, Fault::Error, op::ALL);
    let mut r = Runner {
        fleet: open(Arc::new(probe.clone()), T0).unwrap(),
        tickets: HashMap::new(),
    };
    for op in workload() {
        r.apply(&op).unwrap();
    }
    let total = probe.count();
    assert!(total > 100, "the workload makes {total} operations");
    let status = r.fleet.storage_status().unwrap();
    assert!(status.compactions >= 3, "{status:?}");
    drop(r);
    let mut runs = 0;
    for at in 1..=total {
        for (fault, torn) in [
            (Fault::Error, false),
            (Fault::Crash, false),
            (Fault::Crash, true),
        ] {
            if run_with_fault(at, fault, torn).is_some() {
                runs += 1;
            }
        }
    }
    assert_eq!(runs, 3 * total, "every fault fired");
    eprintln!("storage faults: {runs} runs over {total} operations, each reopened with exactly the acknowledged mutations");
}

/// Every file of `dir` with its bytes, as `fs` has them now.
fn files_of(fs: &dyn Fs, dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for name in fs.list(dir).unwrap_or_default() {
        let mut data = Vec::new();
        if let Ok(mut r) = fs.open_read(&dir.join(&name)) {
            std::io::Read::read_to_end(&mut r, &mut data).unwrap();
        }
        out.push((name, data));
    }
    out.sort();
    out
}

/// Runs the workload on `base` with the disk full at its `at`-th write: that write writes half
/// of its bytes and fails with ENOSPC, as a write does when the disk just filled up; then the
/// space is free again and the workload goes on. Every mutation that failed must have left
/// every file exactly as it was. Then the fleet is closed and the directory reopened (no
/// crash): it must hold exactly the acknowledged mutations. Returns whether the fault fired.
fn run_with_full_disk(base: Arc<dyn Fs>, dir: &Path, at: u64) -> bool {
    let faulty = FaultFs::new(base.clone(), at, Fault::ShortWrite, op::WRITE);
    let mut acknowledged: Vec<Op> = Vec::new();
    let mut clock = T0;
    if let Ok(fleet) = open_in(Arc::new(faulty.clone()), dir, T0) {
        let mut r = Runner {
            fleet,
            tickets: HashMap::new(),
        };
        for op in workload() {
            let before = files_of(&*base, dir);
            match r.apply(&op) {
                Ok(_) => acknowledged.push(op),
                Err(e) => {
                    match op {
                        // Not a mutation; the clocks stay in step.
                        Op::Advance(_) => {
                            acknowledged.push(op);
                            continue;
                        }
                        // Not a mutation either: a compaction may fail after it started the
                        // next journal (the fault model only asks that nothing is lost).
                        Op::Compact => continue,
                        _ => {}
                    }
                    let after = files_of(&*base, dir);
                    assert!(
                        before == after,
                        "full disk at write {at}: {op:?} failed ({e}) but changed the files: \
                         before {:?}, after {:?}",
                        before.iter().map(|(n, d)| (n, d.len())).collect::<Vec<_>>(),
                        after.iter().map(|(n, d)| (n, d.len())).collect::<Vec<_>>()
                    );
                }
            }
        }
        clock = r.fleet.now();
    }
    if !faulty.fired() {
        return false;
    }
    let reopened = open_in(base, dir, clock)
        .unwrap_or_else(|e| panic!("full disk at write {at}: reopen failed: {e}"));
    let (nodes, audit) = expected(&acknowledged);
    assert_eq!(
        masked(reopened.nodes().unwrap()),
        nodes,
        "full disk at write {at}: the reopened directory does not hold exactly the \
         acknowledged mutations\nacknowledged: {acknowledged:?}"
    );
    let got = reopened.audit_recent(usize::MAX).unwrap();
    assert!(
        got.len() >= audit.len() && got[..audit.len()] == audit[..],
        "full disk at write {at}: the audit ring differs"
    );
    reopened
        .register(NodeSpec::cloud("after-reopen", 0))
        .unwrap();
    true
}

#[test]
fn a_full_disk_at_every_write_loses_nothing_once_space_is_freed() {
    // How many writes the workload makes.
    let sim = SimFs::new();
    let probe = FaultFs::new(Arc::new(sim), 0, Fault::Error, op::WRITE);
    let mut r = Runner {
        fleet: open(Arc::new(probe.clone()), T0).unwrap(),
        tickets: HashMap::new(),
    };
    for op in workload() {
        r.apply(&op).unwrap();
    }
    let writes = probe.count();
    assert!(writes > 30, "the workload makes {writes} writes");
    drop(r);
    let scratch = std::env::temp_dir().join(format!("nl-full-disk-{}", std::process::id()));
    for at in 1..=writes {
        // The simulated disk, and the real file system (where a file's write position is not
        // its length: a failed write cut back must not leave the next one at the old position).
        assert!(run_with_full_disk(
            Arc::new(SimFs::new()),
            Path::new(DIR),
            at
        ));
        let dir = scratch.join(format!("{at}"));
        assert!(run_with_full_disk(Arc::new(OsFs), &dir, at));
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!("full disk: {writes} writes, each failed short once on the simulated and on the real file system; every reopen held exactly the acknowledged mutations");
}

fn small_directory() -> (SimFs, Vec<Op>) {
    let sim = SimFs::new();
    let mut r = Runner {
        fleet: open(Arc::new(sim.clone()), T0).unwrap(),
        tickets: HashMap::new(),
    };
    let ops: Vec<Op> = workload().into_iter().take(15).collect();
    for op in &ops {
        r.apply(op).unwrap();
    }
    (sim, ops)
}

#[test]
fn a_bit_flip_anywhere_opens_with_everything_or_fails_as_corrupt() {
    let (sim, ops) = small_directory();
    let (expected_nodes, _) = expected(&ops);
    let names = sim.files(Path::new(DIR));
    let saved: Vec<(String, Vec<u8>)> = names
        .iter()
        .map(|n| (n.clone(), sim.read_file(&Path::new(DIR).join(n)).unwrap()))
        .collect();
    let restore = || {
        for n in sim.files(Path::new(DIR)) {
            sim.delete_file(&Path::new(DIR).join(n));
        }
        for (n, data) in &saved {
            sim.write_file(&Path::new(DIR).join(n), data.clone());
        }
    };
    let (mut checked, mut refused) = (0, 0);
    for (name, original) in &saved {
        let path = Path::new(DIR).join(name);
        for i in 0..original.len() {
            let mut bad = original.clone();
            bad[i] ^= 1 << (i % 8);
            sim.write_file(&path, bad);
            match open(Arc::new(sim.clone()), T0) {
                // Allowed only with every acknowledged mutation in it.
                Ok(f) => assert_eq!(
                    masked(f.nodes().unwrap()),
                    expected_nodes,
                    "{name} byte {i}: opened with fewer or different nodes"
                ),
                Err(Error::Corrupt { path, offset, .. }) => {
                    assert!(path.ends_with(name.as_str()), "{path} vs {name}");
                    assert!(offset <= i as u64, "offset {offset} after byte {i}");
                    refused += 1;
                }
                Err(e) => panic!("{name} byte {i}: {e}"),
            }
            restore();
            checked += 1;
        }
    }
    assert_eq!(refused, checked, "every flip is caught by a checksum");
    assert!(checked > 1000, "{checked}");
    eprintln!("bit flips: {checked} bytes, {refused} refused as corrupt");
}

#[test]
fn deleting_or_rolling_back_a_file_is_detected() {
    let (sim, _) = small_directory();
    let dir = Path::new(DIR);
    let names = sim.files(dir);
    let snapshots: Vec<&String> = names.iter().filter(|n| n.ends_with(".nls")).collect();
    let journals: Vec<&String> = names.iter().filter(|n| n.ends_with(".nlj")).collect();
    assert!(!snapshots.is_empty() && !journals.is_empty(), "{names:?}");
    for name in snapshots.iter().chain(&journals) {
        let path = dir.join(name);
        let original = sim.read_file(&path).unwrap();
        sim.delete_file(&path);
        assert!(
            matches!(open(Arc::new(sim.clone()), T0), Err(Error::Corrupt { .. })),
            "deleting {name} went unnoticed"
        );
        sim.write_file(&path, original);
    }
    open(Arc::new(sim), T0).expect("intact again");
}

// ----- batched syncs, reopening, and journals put back ------------------------------------------

fn open_batched(fs: Arc<dyn Fs>, at: Timestamp) -> Result<Fleet> {
    Fleet::builder(FleetOptions::default())
        .manual_clock(at)
        .data_dir(
            Path::new(DIR),
            StorageOptions {
                // Three writes per fsync, never by time: a power cut loses the current batch.
                sync: SyncPolicy::Batched {
                    max_writes: 3,
                    max_delay_ms: 3_600_000,
                },
                compact_after_records: 4,
            },
        )
        .file_system(fs)
        .build()
}

/// With batched syncs, acknowledged means written, not durable: after a power cut the
/// directory must hold the acknowledged mutations up to some point, all of them before it and
/// none after (a prefix), never a later one without an earlier one, and never be corrupt. The
/// dangerous moment is a compaction: the journal it retires may still hold an unsynced batch
/// when the next journal's first batch is synced.
fn run_batched_with_crash(at: u64, torn: bool) -> bool {
    let sim = SimFs::new();
    let faulty = FaultFs::new(Arc::new(sim.clone()), at, Fault::Crash, op::ALL);
    let mut done: Vec<Op> = Vec::new();
    let mut clock = T0;
    if let Ok(fleet) = open_batched(Arc::new(faulty.clone()), T0) {
        let mut r = Runner {
            fleet,
            tickets: HashMap::new(),
        };
        for op in workload() {
            match r.apply(&op) {
                Ok(_) => done.push(op),
                // The crash stops everything: the rest is not acknowledged (only the clock
                // moves, to keep the replay's times in step).
                Err(_) => {
                    if let Op::Advance(_) = op {
                        done.push(op);
                    }
                }
            }
        }
        clock = r.fleet.now();
    }
    if !faulty.fired() {
        return false;
    }
    sim.crash(torn);
    let reopened = open_batched(Arc::new(sim.clone()), clock)
        .unwrap_or_else(|e| panic!("crash at op {at} torn={torn} (batched): reopen failed: {e}"));
    let nodes = masked(reopened.nodes().unwrap());
    // Some prefix of what was done, with every later clock move (the reopened fleet is at the
    // last clock).
    let matched = (0..=done.len()).rev().any(|cut| {
        let mut ops: Vec<Op> = done[..cut].to_vec();
        ops.extend(
            done[cut..]
                .iter()
                .filter(|o| matches!(o, Op::Advance(_)))
                .cloned(),
        );
        expected(&ops).0 == nodes
    });
    assert!(
        matched,
        "crash at op {at} torn={torn} (batched): the reopened directory is not a prefix of the \
         acknowledged mutations\ndone: {done:?}\nnodes: {nodes:#?}"
    );
    true
}

#[test]
fn a_power_cut_with_batched_syncs_keeps_a_prefix_of_the_acknowledged() {
    let sim = SimFs::new();
    let probe = FaultFs::new(Arc::new(sim), 0, Fault::Error, op::ALL);
    let mut r = Runner {
        fleet: open_batched(Arc::new(probe.clone()), T0).unwrap(),
        tickets: HashMap::new(),
    };
    for op in workload() {
        r.apply(&op).unwrap();
    }
    let total = probe.count();
    assert!(r.fleet.storage_status().unwrap().compactions >= 3);
    drop(r);
    let mut runs = 0;
    for at in 1..=total {
        for torn in [false, true] {
            if run_batched_with_crash(at, torn) {
                runs += 1;
            }
        }
    }
    assert_eq!(runs, 2 * total, "every crash fired");
    eprintln!("batched syncs: {runs} power cuts over {total} operations, each reopened with a prefix of the acknowledged");
}

/// Reopening writes too (a new journal generation after writes, a spare journal for the next
/// compaction): a fault at any of its operations, then a power cut, loses nothing.
#[test]
fn a_fault_at_every_operation_of_a_reopen_loses_nothing() {
    let (sim, ops) = small_directory();
    let (want, _) = expected(&ops);
    // The time the workload ended at (the views resolve durations at the fleet's now).
    let minutes: u64 = ops
        .iter()
        .map(|o| match o {
            Op::Advance(m) => *m,
            _ => 0,
        })
        .sum();
    let at = T0.plus(Duration::from_secs(minutes * 60));
    let dir = Path::new(DIR);
    let saved: Vec<(String, Vec<u8>)> = sim
        .files(dir)
        .into_iter()
        .map(|n| {
            let data = sim.read_file(&dir.join(&n)).unwrap();
            (n, data)
        })
        .collect();
    let restore = || {
        for n in sim.files(dir) {
            sim.delete_file(&dir.join(n));
        }
        for (n, data) in &saved {
            sim.write_file(&dir.join(n), data.clone());
        }
    };
    // How many operations one reopen (and close) makes.
    let probe = FaultFs::new(Arc::new(sim.clone()), 0, Fault::Error, op::ALL);
    drop(open(Arc::new(probe.clone()), at).unwrap());
    let total = probe.count();
    assert!(total > 5, "a reopen makes {total} operations");
    let mut runs = 0;
    for op_at in 1..=total {
        for (fault, torn) in [
            (Fault::Error, false),
            (Fault::Crash, false),
            (Fault::Crash, true),
        ] {
            restore();
            let faulty = FaultFs::new(Arc::new(sim.clone()), op_at, fault, op::ALL);
            drop(open(Arc::new(faulty.clone()), at));
            assert!(faulty.fired(), "op {op_at}");
            sim.crash(torn);
            let f = open(Arc::new(sim.clone()), at).unwrap_or_else(|e| {
                panic!("fault at reopen op {op_at} ({fault:?}, torn={torn}): {e}")
            });
            assert_eq!(
                masked(f.nodes().unwrap()),
                want,
                "fault at reopen op {op_at} ({fault:?}, torn={torn})"
            );
            runs += 1;
        }
    }
    eprintln!("reopen faults: {runs} runs over {total} operations, nothing lost");
}

/// The live journal cannot be checked against anything (nothing follows it), but every reopen
/// after writes starts a new generation whose header says where the journal before it ended:
/// from then on, that journal put back from an older copy is refused.
#[test]
fn a_journal_put_back_from_an_older_copy_is_refused_after_a_restart() {
    let sim = SimFs::new();
    let dir = Path::new(DIR);
    let storage = StorageOptions {
        compact_after_records: OFF,
        ..Default::default()
    };
    let open_here = |fs: &SimFs| {
        Fleet::builder(FleetOptions::default())
            .manual_clock(T0)
            .data_dir(dir, storage.clone())
            .file_system(Arc::new(fs.clone()))
            .build()
    };
    let f = open_here(&sim).unwrap();
    f.register(NodeSpec::cloud("a", 0)).unwrap();
    let live = dir.join("journal-00000000000000000001.nlj");
    let older = sim.read_file(&live).unwrap();
    f.register(NodeSpec::cloud("b", 0)).unwrap();
    drop(f);
    // The restart: generation 2 starts where generation 1 ends.
    let f = open_here(&sim).unwrap();
    assert!(f.open_report().unwrap().new_generation);
    assert_eq!(f.storage_status().unwrap().generation, 2);
    drop(f);
    let newer = sim.read_file(&live).unwrap();
    sim.write_file(&live, older);
    match open_here(&sim) {
        Err(Error::Corrupt { path, detail, .. }) => {
            assert!(path.ends_with("journal-00000000000000000002.nlj"), "{path}");
            assert!(detail.contains("truncated or rolled back"), "{detail}");
        }
        Err(e) => panic!("{e}"),
        Ok(f) => panic!("opened with {} nodes", f.len()),
    }
    sim.write_file(&live, newer);
    let f = open_here(&sim).unwrap();
    assert_eq!(f.len(), 2, "intact again");
    drop(f);
}

/// Each restart after writes starts a journal; a process restarted often with few writes does
/// not pile them up: past a bound, the chain since the last snapshot is compacted.
#[test]
fn frequent_restarts_do_not_pile_up_journals() {
    let sim = SimFs::new();
    let dir = Path::new(DIR);
    for i in 0..60 {
        let f = open(Arc::new(sim.clone()), T0).unwrap();
        f.register(NodeSpec::cloud(format!("n{i}"), 0)).unwrap();
        let journals = sim
            .files(dir)
            .iter()
            .filter(|n| n.ends_with(".nlj"))
            .count() as u64;
        assert!(
            journals <= storage::MAX_JOURNALS_SINCE_SNAPSHOT + 3,
            "restart {i}: {journals} journals"
        );
    }
    assert_eq!(open(Arc::new(sim), T0).unwrap().len(), 60);
}
