//! Durability: reopen after a clean close and after crashes (torn or garbled tails, killed
//! processes), field-by-field comparison, faults (full disk, lock, corruption, newer format).

use node_lifecycle::storage::crc32;
use node_lifecycle::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);
const T0: Timestamp = Timestamp(1_767_225_600_000);

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nl-{name}-{}-{}", std::process::id(), rand_u64()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    h.finish()
}

fn open(dir: &Path, start: Timestamp, storage: StorageOptions) -> Result<Fleet> {
    Fleet::builder(FleetOptions::default())
        .manual_clock(start)
        .data_dir(dir, storage)
        .build()
}

/// A workload touching every kind of state: all origins, transitions, containers, reservations,
/// holds, a rejection, an outstanding decommission, a completed one, health failures.
fn workload(f: &Fleet) {
    f.register(NodeSpec::system("local-node", 0)).unwrap();
    f.register(NodeSpec::dedicated("ded-1", 65536).initial_state(LifecycleState::Ready))
        .unwrap();
    for id in ["a", "b", "c", "d"] {
        f.register(
            NodeSpec::cloud(id, 8192)
                .hourly_cost_eur(0.05)
                .instance_type("cx32"),
        )
        .unwrap();
        f.transition(id, LifecycleState::Initializing, "cloud_init_started")
            .unwrap();
        f.advance_clock(2 * MIN).unwrap();
        f.transition(id, LifecycleState::Ready, "cloud_init_completed")
            .unwrap();
    }
    f.add_container("a", "mc-1", 2048).unwrap();
    f.add_container("a", "mc-2", 1024).unwrap();
    f.reserve("b", "mc-3", 512).unwrap();
    f.place_hold("c", "world:srv-9", "stopped server").unwrap();
    f.add_container("d", "mc-4", 256).unwrap();
    f.advance_clock(40 * MIN).unwrap();
    f.remove_container("d", "mc-4").unwrap();
    f.report_health("a", false).unwrap();
    assert_eq!(
        f.begin_decommission("a", "reactive_policy")
            .unwrap_err()
            .code(),
        ReasonCode::HasContainers.code()
    );
    f.advance_clock(31 * MIN).unwrap();
    let t = f.begin_decommission("d", "reactive_policy").unwrap();
    f.fail_decommission(t.id, "provider 503").unwrap();
    f.register(NodeSpec::cloud("gone", 4096)).unwrap();
    f.transition("gone", LifecycleState::Unhealthy, "vm_create_failed")
        .unwrap();
    let t = f.begin_decommission("gone", "manual").unwrap();
    f.complete_decommission(t.id).unwrap();
}

/// A node as restored, minus the recovery fields that reopening sets on purpose.
fn comparable(mut n: NodeInfo) -> NodeInfo {
    n.recovered_at_ms = None;
    n.container_sync_pending = false;
    n.container_sync_completed_at_ms = None;
    n
}

#[test]
fn reopen_after_clean_close_restores_every_field() {
    let dir = tempdir("clean");
    let f = open(&dir, T0, StorageOptions::default()).unwrap();
    workload(&f);
    let nodes_before = f.nodes();
    let audit_before = f.audit_recent(usize::MAX);
    let stats_before = f.audit_stats();
    let now = f.now();
    drop(f);

    let f = open(&dir, now, StorageOptions::default()).unwrap();
    let report = f.open_report().unwrap().clone();
    assert!(report.snapshot_found);
    assert_eq!(report.torn_tail_bytes, 0);
    assert_eq!(report.nodes_restored, nodes_before.len() as u64);
    assert_eq!(report.audit_entries_restored, audit_before.len() as u64);
    let nodes_after = f.nodes();
    assert_eq!(nodes_after.len(), nodes_before.len());
    for (b, a) in nodes_before.iter().zip(&nodes_after) {
        assert_eq!(
            comparable(a.clone()),
            comparable(b.clone()),
            "node {}",
            b.id
        );
    }
    // The audit ring continues where it was: same entries, then one recovery entry per
    // restored cloud node, sequence numbers never reused.
    let audit_after = f.audit_recent(usize::MAX);
    assert_eq!(&audit_after[..audit_before.len()], &audit_before[..]);
    let recovered: Vec<&str> = audit_after[audit_before.len()..]
        .iter()
        .map(|e| e.node_id.as_str())
        .collect();
    assert_eq!(recovered, vec!["a", "b", "c", "d"]);
    assert!(audit_after[audit_before.len()..]
        .iter()
        .all(|e| e.action == AuditAction::Recovery && e.reason == "restored_after_restart"));
    let stats = f.audit_stats();
    assert_eq!(stats.total_recorded, stats_before.total_recorded + 4);
    assert_eq!(
        stats.by_action[&AuditAction::NodeDecommission],
        stats_before.by_action[&AuditAction::NodeDecommission]
    );

    // Restored nodes enter the recovery rules.
    let a = f.node("a").unwrap();
    assert!(a.container_sync_pending && a.recovered_at_ms == Some(now));
    assert_eq!(
        f.evaluate("c")
            .unwrap()
            .blockers
            .iter()
            .map(|b| b.code)
            .collect::<Vec<_>>(),
        vec![ReasonCode::HasHolds, ReasonCode::ContainerSyncPending]
    );
    assert!(
        !f.node("local-node").unwrap().container_sync_pending,
        "system nodes need no sync"
    );

    // The draining node came back draining, with its ticket still valid.
    let d = f.node("d").unwrap();
    assert_eq!(d.state, LifecycleState::Draining);
    let ticket = d.decommission.unwrap().ticket;
    assert!(
        matches!(
            f.reserve("d", "x", 1),
            Err(Error::NotSchedulable {
                state: LifecycleState::Draining,
                ..
            })
        ),
        "still unschedulable"
    );
    f.complete_decommission(ticket).unwrap();
    assert_eq!(f.node("d").unwrap().state, LifecycleState::Decommissioned);
    // Ticket numbers continue: a new ticket is never an old one.
    f.advance_clock(60 * MIN).unwrap();
    f.finish_restore().unwrap();
    f.advance_clock(11 * MIN).unwrap();
    let t = f.begin_decommission("b", "manual");
    assert_eq!(
        t.unwrap_err().code(),
        ReasonCode::HasReservations.code(),
        "b has a reservation"
    );
    f.release_reservation("b", "mc-3").unwrap();
    let t = f.begin_decommission("b", "manual").unwrap();
    assert!(t.id > ticket);
    drop(f);
    let _ = std::fs::remove_dir_all(&dir);
}

fn journal(dir: &Path) -> PathBuf {
    dir.join("journal.log")
}

#[test]
fn torn_and_garbled_tails_are_skipped_counted_and_audited() {
    for garble in [false, true] {
        let dir = tempdir("torn");
        // Never compact, so every mutation stays in the journal.
        let storage = StorageOptions {
            compact_after_records: u64::MAX,
            ..Default::default()
        };
        let f = open(&dir, T0, storage.clone()).unwrap();
        f.register(NodeSpec::cloud("kept", 0)).unwrap();
        let len_before_last = std::fs::metadata(journal(&dir)).unwrap().len();
        f.register(NodeSpec::cloud("lost", 0)).unwrap();
        drop(f);
        let len = std::fs::metadata(journal(&dir)).unwrap().len();
        let mut bytes = std::fs::read(journal(&dir)).unwrap();
        if garble {
            bytes[(len - 5) as usize] ^= 0xff;
        } else {
            bytes.truncate((len - 7) as usize);
        }
        std::fs::write(journal(&dir), &bytes).unwrap();

        let f = open(&dir, T0, storage).unwrap();
        let r = f.open_report().unwrap();
        assert!(r.torn_tail_bytes > 0, "garble={garble}: {r:?}");
        assert_eq!(r.torn_tail_bytes, bytes.len() as u64 - len_before_last);
        assert!(f.node("kept").is_ok());
        assert_eq!(f.node("lost"), Err(Error::NodeNotFound("lost".into())));
        let e = f.audit_by_result(AuditResult::Failed, 1).pop().unwrap();
        assert_eq!(
            (e.action, e.reason.as_str()),
            (AuditAction::Recovery, "journal_tail_skipped")
        );
        // Writing continues cleanly after the cut, and survives another reopen.
        f.register(NodeSpec::cloud("after", 0)).unwrap();
        drop(f);
        let f = open(&dir, T0, StorageOptions::default()).unwrap();
        assert_eq!(f.open_report().unwrap().torn_tail_bytes, 0);
        assert!(f.node("after").is_ok() && f.node("kept").is_ok());
        drop(f);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn compaction_keeps_everything_and_generations_advance() {
    let dir = tempdir("compact");
    let storage = StorageOptions {
        compact_after_records: 7,
        ..Default::default()
    };
    let f = open(&dir, T0, storage.clone()).unwrap();
    workload(&f);
    let g = f.storage_status().unwrap().generation;
    assert!(g > 3, "compacted several times: generation {g}");
    assert_eq!(f.storage_status().unwrap().last_compaction_error, None);
    let before = f.nodes();
    let seq = f.audit_stats().next_seq;
    let now = f.now();
    drop(f);
    let f = open(&dir, now, storage).unwrap();
    for (b, a) in before.iter().zip(f.nodes()) {
        assert_eq!(comparable(a), comparable(b.clone()));
    }
    // Four cloud nodes were restored: four recovery entries, numbered after the old ones.
    assert_eq!(f.audit_stats().next_seq, seq + 4);
    drop(f);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_full_disk_fails_the_call_and_changes_nothing() {
    let dir = tempdir("full");
    let probe = open(&dir, T0, StorageOptions::default()).unwrap();
    probe.register(NodeSpec::cloud("a", 8192)).unwrap();
    probe
        .transition("a", LifecycleState::Initializing, "cloud_init_started")
        .unwrap();
    probe
        .transition("a", LifecycleState::Ready, "cloud_init_completed")
        .unwrap();
    let used = probe.storage_status().unwrap().journal_bytes;
    drop(probe);
    let storage = StorageOptions {
        compact_after_records: u64::MAX,
        fail_journal_beyond_bytes: Some(used + 1500),
        ..Default::default()
    };
    let f = open(&dir, T0, storage).unwrap();
    let mut acknowledged = Vec::new();
    let mut failed = None;
    for i in 0..50 {
        let nodes = f.nodes();
        let stats = f.audit_stats();
        match f.register(NodeSpec::cloud(format!("n{i}"), 0)) {
            Ok(_) => acknowledged.push(format!("n{i}")),
            Err(e) => {
                assert!(
                    matches!(e, Error::Storage(ref m) if m.contains("No space left")),
                    "{e}"
                );
                assert_eq!(e.code(), 14);
                // Nothing changed: no node, no audit entry.
                assert_eq!(f.nodes(), nodes);
                assert_eq!(f.audit_stats(), stats);
                failed = Some(i);
                break;
            }
        }
    }
    assert!(failed.is_some() && !acknowledged.is_empty());
    // A bigger mutation (a container, an automatic ready -> active transition and its audit
    // entry) fails the same way and is rolled back entirely.
    let a_before = f.node("a").unwrap();
    let stats = f.audit_stats();
    assert!(matches!(
        f.add_container("a", "c1", 1),
        Err(Error::Storage(_))
    ));
    assert_eq!(f.node("a").unwrap(), a_before);
    assert_eq!(a_before.state, LifecycleState::Ready);
    assert_eq!(f.audit_stats(), stats);
    drop(f);
    let f = open(&dir, T0, StorageOptions::default()).unwrap();
    for id in &acknowledged {
        assert!(f.node(id).is_ok(), "acknowledged {id} lost");
    }
    let lost = format!("n{}", failed.unwrap());
    assert_eq!(f.node(&lost), Err(Error::NodeNotFound(lost.clone())));
    drop(f);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn faults_on_open_are_typed_errors() {
    // Two openers: the second is refused while the first holds the lock.
    let dir = tempdir("lock");
    let f = open(&dir, T0, StorageOptions::default()).unwrap();
    let err = open(&dir, T0, StorageOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Locked(_)), "{err}");
    drop(f);
    open(&dir, T0, StorageOptions::default()).unwrap();

    // A data directory that cannot be created.
    let file = tempdir("file");
    std::fs::write(&file, b"not a directory").unwrap();
    let err = open(&file.join("data"), T0, StorageOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{err}");
    let _ = std::fs::remove_file(&file);

    // A damaged snapshot.
    let snap = dir.join("snapshot.bin");
    let mut bytes = std::fs::read(&snap).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&snap, &bytes).unwrap();
    let err = open(&dir, T0, StorageOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err}");
    assert_eq!(err.code(), 17);

    // A snapshot from a newer format.
    let payload = br#"[{"type":"snapshot","format_version":99,"generation":1,"state":{"nodes":[],"next_ticket":1,"audit":{"entries":[],"next_seq":1,"evicted":0,"by_action":[],"by_result":[]}}}]"#;
    let mut frame = Vec::new();
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32(payload).to_le_bytes());
    frame.extend_from_slice(payload);
    std::fs::write(&snap, &frame).unwrap();
    let err = open(&dir, T0, StorageOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedFormat {
                found: 99,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// ----- crash test: SIGKILL a writer at random points ------------------------------------------

const CHILD_ENV: &str = "NL_CRASH_CHILD_DIR";

/// Not a test on its own: the writer the crash test runs in a child process (it returns at
/// once when the variable is not set).
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    use std::io::Write;
    let storage = StorageOptions {
        sync: SyncPolicy::Batched {
            max_writes: 64,
            max_delay_ms: 50,
        },
        compact_after_records: 500,
        ..Default::default()
    };
    let f = open(Path::new(&dir), T0, storage).expect("child opens");
    let start = f.len();
    let mut out = std::io::stdout().lock();
    for i in start.. {
        let id = format!("n{i}");
        f.register(NodeSpec::cloud(&id, 1024)).unwrap();
        f.transition(&id, LifecycleState::Initializing, "cloud_init_started")
            .unwrap();
        // Acknowledged: the caller may rely on it from here on.
        writeln!(out, "{i}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn every_acknowledged_write_survives_sigkill() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempdir("crash");
    let exe = std::env::current_exe().unwrap();
    let mut acknowledged: Vec<u64> = Vec::new();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for round in 0..50 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let run_ms = 5 + seed % 60;
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(|l| l.ok())
                .filter_map(|l| l.trim().parse::<u64>().ok())
                .collect::<Vec<u64>>()
        });
        std::thread::sleep(Duration::from_millis(run_ms));
        child.kill().unwrap(); // SIGKILL: no destructors, no flush, no sync
        child.wait().unwrap();
        acknowledged.extend(reader.join().unwrap());

        let f = open(&dir, T0, StorageOptions::default())
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        for i in &acknowledged {
            let n = f
                .node(&format!("n{i}"))
                .unwrap_or_else(|_| panic!("round {round}: acknowledged n{i} lost"));
            assert_eq!(n.state, LifecycleState::Initializing, "round {round}: n{i}");
        }
        drop(f);
    }
    assert!(
        acknowledged.len() > 50,
        "the child acknowledged only {} writes",
        acknowledged.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
