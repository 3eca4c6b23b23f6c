//! Durability on the real file system: reopen after a clean close, torn tails, damaged and
//! missing files, a failed fsync, a full disk, the directory lock, records of every size, and
//! SIGKILLed writers (also during compaction). The exhaustive fault enumeration runs on the
//! simulated file system in `storage_faults.rs`.

use node_lifecycle::storage::{self, Fault, FaultFs, Fs, OsFs};
use node_lifecycle::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);
const T0: Timestamp = Timestamp(1_767_225_600_000);

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "nl-{name}-{}-{}",
        std::process::id(),
        TicketId::random().unwrap()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn open(dir: &Path, start: Timestamp, storage: StorageOptions) -> Result<Fleet> {
    Fleet::builder(FleetOptions::default())
        .manual_clock(start)
        .data_dir(dir, storage)
        .build()
}

fn no_compaction() -> StorageOptions {
    StorageOptions {
        compact_after_records: OFF,
        ..Default::default()
    }
}

fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .collect();
    v.sort();
    v
}

/// The live journal: the newest one, unless that is the empty spare an open fleet keeps ready
/// for its next compaction (header sequence number 0, nothing after the header frame) beside
/// the live one.
fn journal(dir: &Path) -> PathBuf {
    let mut all = files(dir, "journal-");
    let newest = all.pop().unwrap();
    match all.pop() {
        Some(before) if is_empty_spare(&newest) => before,
        _ => newest,
    }
}

fn is_empty_spare(p: &Path) -> bool {
    let len = std::fs::metadata(p).unwrap().len();
    let bytes = std::fs::read(p).unwrap();
    let header_len = 36 + u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as u64;
    file_header(p)["lsn"] == 0 && len == header_len
}

/// Every file of a directory, to put the whole directory back as it was (restoring one file
/// of it is what the journal chain is there to catch).
fn save_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    files(dir, "")
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

fn restore_dir(dir: &Path, saved: &[(PathBuf, Vec<u8>)]) {
    for p in files(dir, "") {
        std::fs::remove_file(p).unwrap();
    }
    for (p, bytes) in saved {
        std::fs::write(p, bytes).unwrap();
    }
}

/// A workload touching every kind of state: all origins, transitions, containers, claims,
/// holds, cordons, labels, a rejection, an outstanding decommission, a completed one, a
/// rename, an executed consolidation (whose cooldown must survive), health failures.
fn workload(f: &Fleet) {
    f.register(NodeSpec::system("local-node", 0)).unwrap();
    f.register(NodeSpec::dedicated("ded-1", 65536).initial_state(LifecycleState::Ready))
        .unwrap();
    for id in ["a", "b", "c", "d"] {
        f.register(
            NodeSpec::cloud(format!("tmp-{id}"), 8192)
                .hourly_cost_eur(0.05)
                .instance_type("cx32")
                .label("zone", "fsn1"),
        )
        .unwrap();
        f.rename(&format!("tmp-{id}"), id).unwrap();
        f.transition(id, LifecycleState::Initializing, "cloud_init_started")
            .unwrap();
        f.advance_clock(2 * MIN).unwrap();
        f.transition(id, LifecycleState::Ready, "cloud_init_completed")
            .unwrap();
    }
    f.add_container("a", "mc-1", 2048).unwrap();
    f.add_container("a", "mc-2", 1024).unwrap();
    f.reserve("b", "mc-3", 512).unwrap();
    f.claim("b", 256, OFF).unwrap();
    f.place_hold("c", "world:srv-9", "stopped server").unwrap();
    f.cordon("c", "disk-full", "disk 97% full", false).unwrap();
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
    f.fail_decommission(&t, b"provider 503").unwrap();
    f.register(NodeSpec::placeholder("gone", 4096)).unwrap();
    f.abandon_provisioning("gone", b"server limit").unwrap();
    // A consolidation: e's container moves to a; e is cordoned for evacuation.
    f.register(NodeSpec::cloud("e", 8192).hourly_cost_eur(0.5))
        .unwrap();
    f.transition("e", LifecycleState::Initializing, "x")
        .unwrap();
    f.transition("e", LifecycleState::Ready, "x").unwrap();
    f.add_container("e", "mc-5", 512).unwrap();
    f.advance_clock(60 * MIN).unwrap();
    f.release_reservation("b", "mc-3").unwrap();
    let claims: Vec<ClaimId> = f.node("b").unwrap().claims.iter().map(|c| c.id).collect();
    for c in &claims {
        f.release_claim(*c).unwrap();
    }
    let policy = ConsolidationPolicy {
        max_utilisation_after: 1.0,
        ..Default::default()
    };
    let plan = f
        .consolidation_plan(&ConsolidationRequest {
            policy,
            ..Default::default()
        })
        .unwrap();
    assert!(plan.worthwhile, "{plan:?}");
    let exec = f.execute_plan(&plan, &policy).unwrap();
    for m in &exec.moves {
        f.record_migration(
            &m.container_id,
            &m.from_node,
            &m.to_node,
            "consolidation_policy",
        )
        .unwrap();
    }
    // A placement after the plan, on a node the plan keeps.
    let keeper = f
        .nodes()
        .unwrap()
        .into_iter()
        .find(|n| n.schedulable && n.origin != NodeOrigin::System)
        .unwrap();
    f.reserve(&keeper.id, "mc-6", 512).unwrap();
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
    for compact in [false, true] {
        let dir = tempdir("clean");
        let f = open(&dir, T0, no_compaction()).unwrap();
        workload(&f);
        if compact {
            f.compact().unwrap();
        }
        let nodes_before = f.nodes().unwrap();
        let audit_before = f.audit_recent(usize::MAX).unwrap();
        let stats_before = f.audit_stats().unwrap();
        let now = f.now();
        let instance = f.instance_id();
        let last_consolidation = f.last_consolidation();
        drop(f);

        let f = open(&dir, now, StorageOptions::default()).unwrap();
        let report = f.open_report().unwrap().clone();
        assert!(report.snapshot_found);
        assert_eq!(report.torn_tail_bytes, 0);
        assert!(report.recovery_recorded);
        assert_eq!(report.nodes_restored, nodes_before.len() as u64);
        assert_eq!(report.audit_entries_restored, audit_before.len() as u64);
        assert_eq!(f.instance_id(), instance, "the fleet keeps its identity");
        assert_eq!(f.last_consolidation(), last_consolidation);
        let nodes_after = f.nodes().unwrap();
        assert_eq!(nodes_after.len(), nodes_before.len());
        for (b, a) in nodes_before.iter().zip(&nodes_after) {
            assert_eq!(
                comparable(a.clone()),
                comparable(b.clone()),
                "node {}",
                b.id
            );
        }
        // The audit ring continues where it was: same entries, then one recovery entry,
        // sequence numbers never reused.
        let audit_after = f.audit_recent(usize::MAX).unwrap();
        assert_eq!(&audit_after[..audit_before.len()], &audit_before[..]);
        let restart = &audit_after[audit_before.len()..];
        assert_eq!(restart.len(), 1);
        assert_eq!(restart[0].action, AuditAction::Recovery);
        assert_eq!(
            restart[0].reason,
            "restored_after_restart: 8 nodes restored, 5 wait for their container sync"
        );
        let stats = f.audit_stats().unwrap();
        assert_eq!(stats.total_recorded, stats_before.total_recorded + 1);
        assert_eq!(stats.by_action, {
            let mut m = stats_before.by_action.clone();
            *m.get_mut(&AuditAction::Recovery).unwrap() += 1;
            m
        });
        // The renamed nodes keep their history under the new name.
        assert_eq!(
            f.audit_by_node("a", 1000).unwrap()[0].node_id,
            "tmp-a",
            "history recorded under the placeholder's id"
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
        assert!(!f.node("local-node").unwrap().container_sync_pending);

        // The draining node came back draining, with its ticket still valid.
        let d = f.node("d").unwrap();
        assert_eq!(d.state, LifecycleState::Draining);
        assert!(matches!(
            f.reserve("d", "x", 1),
            Err(Error::NotSchedulable {
                state: LifecycleState::Draining,
                ..
            })
        ));
        let ticket = f.ticket_for("d").unwrap().unwrap();
        f.complete_decommission(&ticket).unwrap();
        assert_eq!(f.node("d").unwrap().state, LifecycleState::Decommissioned);
        // The cooldown survived: no plan within two hours of the execution.
        for n in f.nodes().unwrap() {
            for c in n.claims {
                f.release_claim(c.id).unwrap();
            }
        }
        let plan = f
            .consolidation_plan(&ConsolidationRequest::default())
            .unwrap();
        assert_eq!(plan.refusal, Some(planning::PlanRefusal::Cooldown));
        // Container ids stay unique across the restart.
        let nodes = f.nodes().unwrap();
        let runner = nodes
            .iter()
            .find(|n| n.containers.contains_key("mc-1"))
            .unwrap();
        let other = nodes
            .iter()
            .find(|n| n.schedulable && n.id != runner.id)
            .unwrap();
        assert_eq!(
            f.add_container(&other.id, "mc-1", 1),
            Err(Error::ContainerElsewhere {
                container: "mc-1".into(),
                node: runner.id.clone()
            })
        );
        drop(f);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_torn_tail_at_every_byte_offset_is_cut_and_reported() {
    let dir = tempdir("torn");
    let f = open(&dir, T0, no_compaction()).unwrap();
    f.register(NodeSpec::cloud("kept", 0)).unwrap();
    let journal = journal(&dir);
    let len_before_last = std::fs::metadata(&journal).unwrap().len();
    f.register(NodeSpec::cloud("lost", 0)).unwrap();
    drop(f);
    let saved = save_dir(&dir);
    let whole = std::fs::read(&journal).unwrap();
    for cut in len_before_last as usize..whole.len() {
        restore_dir(&dir, &saved);
        std::fs::write(&journal, &whole[..cut]).unwrap();
        let f = open(&dir, T0, no_compaction()).unwrap();
        let report = f.open_report().unwrap();
        assert_eq!(
            report.torn_tail_bytes,
            (cut - len_before_last as usize) as u64,
            "cut at {cut}"
        );
        assert!(f.node("kept").is_ok(), "cut at {cut}");
        assert_eq!(f.node("lost"), Err(Error::NodeNotFound("lost".into())));
        if cut > len_before_last as usize {
            let e = f.audit_recent(1).unwrap().pop().unwrap();
            assert_eq!(e.reason, "journal_tail_skipped");
        }
        drop(f);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn damage_missing_and_swapped_files_are_refused_and_never_rewritten() {
    let dir = tempdir("damage");
    let f = open(&dir, T0, no_compaction()).unwrap();
    for i in 0..5 {
        f.register(NodeSpec::cloud(format!("n{i}"), 0)).unwrap();
    }
    let older_journal = std::fs::read(journal(&dir)).unwrap();
    f.compact().unwrap();
    for i in 5..10 {
        f.register(NodeSpec::cloud(format!("n{i}"), 0)).unwrap();
    }
    drop(f);
    let snapshot = files(&dir, "snapshot-").pop().unwrap();
    let journal = journal(&dir);
    let corrupt = |what: &str, needle: &str| {
        let err = open(&dir, T0, no_compaction()).unwrap_err();
        match &err {
            Error::Corrupt { path, detail, .. } => {
                assert!(
                    detail.contains(needle) || path.contains(needle),
                    "{what}: {err}"
                )
            }
            other => panic!("{what}: {other}"),
        }
        assert_eq!(err.code(), 17);
    };
    let keep = |p: &Path| std::fs::read(p).unwrap();
    let (snap_bytes, journal_bytes) = (keep(&snapshot), keep(&journal));

    // One flipped bit in the middle of the journal: refused, and the file is untouched.
    let mut bad = journal_bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x10;
    std::fs::write(&journal, &bad).unwrap();
    corrupt("mid-journal flip", "checksum mismatch");
    assert_eq!(keep(&journal), bad, "open never rewrites damaged data");
    // The journal header.
    let mut bad = journal_bytes.clone();
    bad[3] ^= 1;
    std::fs::write(&journal, &bad).unwrap();
    corrupt("header flip", "checksum mismatch");
    std::fs::write(&journal, &journal_bytes).unwrap();

    // The journal deleted.
    std::fs::remove_file(&journal).unwrap();
    corrupt("journal deleted", "missing");
    std::fs::write(&journal, &journal_bytes).unwrap();
    // The snapshot deleted: the journal of generation 2 needs it.
    std::fs::remove_file(&snapshot).unwrap();
    corrupt("snapshot deleted", "snapshot");
    std::fs::write(&snapshot, &snap_bytes).unwrap();

    // A file from another fleet's directory.
    let other = tempdir("other");
    let g = open(&other, T0, no_compaction()).unwrap();
    g.register(NodeSpec::cloud("x", 0)).unwrap();
    g.compact().unwrap();
    drop(g);
    std::fs::copy(journal_of(&other), &journal).unwrap();
    corrupt("a journal from elsewhere", "belongs to fleet");
    std::fs::write(&journal, &journal_bytes).unwrap();
    let _ = std::fs::remove_dir_all(&other);

    // A snapshot put back under another generation's name.
    let older = dir.join("snapshot-00000000000000000009.nls");
    std::fs::copy(&snapshot, &older).unwrap();
    corrupt("a swapped snapshot", "was swapped or copied");
    std::fs::remove_file(&older).unwrap();

    // The journal replaced by an older copy (of the generation before the compaction).
    std::fs::write(&journal, &older_journal).unwrap();
    corrupt("an older journal put back", "was swapped or copied");
    std::fs::write(&journal, &journal_bytes).unwrap();
    let f = open(&dir, T0, no_compaction()).unwrap();
    assert_eq!(f.len(), 10, "intact again");
    drop(f);
    let _ = std::fs::remove_dir_all(&dir);
}

fn journal_of(dir: &Path) -> PathBuf {
    journal(dir)
}

#[test]
fn damage_is_salvaged_into_a_new_directory_with_a_report_of_what_was_lost() {
    let dir = tempdir("salvage");
    let f = open(&dir, T0, no_compaction()).unwrap();
    for i in 0..10 {
        f.register(NodeSpec::cloud(format!("n{i}"), 0)).unwrap();
    }
    drop(f);
    let journal = journal(&dir);
    let mut bytes = std::fs::read(&journal).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&journal, &bytes).unwrap();
    assert!(matches!(
        open(&dir, T0, no_compaction()),
        Err(Error::Corrupt { .. })
    ));
    // A target inside the damaged directory is refused, however it is spelled, and nothing
    // is written there.
    let files_before = std::fs::read_dir(&dir).unwrap().count();
    let link = tempdir("salvage-link");
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    for target in [
        dir.clone(),
        dir.join("recovered"),
        dir.join("sub/../recovered"),
        dir.join("./nested/deeper"),
        link.join("via-a-link"),
    ] {
        let err = storage::salvage(&dir, &target).unwrap_err();
        assert_eq!(
            err,
            Error::InvalidArgument(format!(
                "the salvage target {} is inside the damaged directory {}: salvage never \
                 writes the directory it reads; choose a target outside it",
                target.display(),
                dir.display()
            ))
        );
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), files_before);
    std::fs::remove_file(&link).unwrap();
    let out = tempdir("salvaged");
    let report = storage::salvage(&dir, &out).unwrap();
    assert_eq!(report.damaged_ranges.len(), 1, "{report:?}");
    assert_eq!(report.lost_sequence_ranges.len(), 1, "{report:?}");
    let (lo, hi) = report.lost_sequence_ranges[0];
    assert_eq!(lo, hi, "exactly one mutation lost");
    assert_eq!(report.journal_records_recovered, 9);
    assert_eq!(report.nodes_recovered, 9);
    let f = open(&out, T0, no_compaction()).unwrap();
    assert_eq!(f.len(), 9);
    drop(f);
    assert_eq!(
        std::fs::read(&journal).unwrap(),
        bytes,
        "salvage never writes the source"
    );
    assert!(matches!(
        storage::salvage(&dir, &out),
        Err(Error::InvalidArgument(m)) if m.contains("not empty")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_failed_fsync_poisons_the_handle_and_reopen_shows_exactly_the_acknowledged() {
    let dir = tempdir("fsync");
    // Count the syncs of opening and of one registration, then fail the next registration's.
    let probe = FaultFs::new(Arc::new(OsFs), 0, Fault::Error, storage::testing::op::SYNC);
    let f = Fleet::builder(FleetOptions::default())
        .manual_clock(T0)
        .data_dir(&dir, no_compaction())
        .file_system(Arc::new(probe.clone()))
        .build()
        .unwrap();
    f.register(NodeSpec::cloud("acked", 0)).unwrap();
    let syncs = probe.count();
    drop(f);
    let _ = std::fs::remove_dir_all(&dir);
    let faulty = FaultFs::new(
        Arc::new(OsFs),
        syncs + 1,
        Fault::Error,
        storage::testing::op::SYNC,
    );
    let f = Fleet::builder(FleetOptions::default())
        .manual_clock(T0)
        .data_dir(&dir, no_compaction())
        .file_system(Arc::new(faulty))
        .build()
        .unwrap();
    f.register(NodeSpec::cloud("acked", 0)).unwrap();
    let seq_before = f.audit_stats().unwrap().next_seq;
    let err = f.register(NodeSpec::cloud("not-acked", 0)).unwrap_err();
    assert!(
        matches!(&err, Error::Poisoned(m) if m.contains("fsync")),
        "{err}"
    );
    assert_eq!(err.code(), 23);
    assert_eq!(
        f.node("not-acked"),
        Err(Error::NodeNotFound("not-acked".into()))
    );
    // Nothing more is accepted; reads still work.
    assert!(matches!(
        f.register(NodeSpec::cloud("later", 0)),
        Err(Error::Poisoned(_))
    ));
    assert!(f.node("acked").is_ok());
    assert!(f.storage_status().unwrap().poisoned.is_some());
    drop(f);
    let f = open(&dir, T0, no_compaction()).unwrap();
    assert!(f.node("acked").is_ok());
    assert_eq!(
        f.node("not-acked"),
        Err(Error::NodeNotFound("not-acked".into()))
    );
    // The next entry's sequence number is the one the failed mutation never got to use, and
    // no entry of the failed mutation exists.
    let recent = f.audit_recent(usize::MAX).unwrap();
    assert!(recent.iter().all(|e| e.node_id != "not-acked"));
    assert_eq!(recent.last().unwrap().seq, seq_before);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_full_disk_rolls_back_leaves_no_temporary_files_and_still_reopens() {
    let dir = tempdir("full");
    let f = open(&dir, T0, no_compaction()).unwrap();
    f.register(NodeSpec::cloud("a", 0)).unwrap();
    f.transition("a", LifecycleState::Initializing, "x")
        .unwrap();
    f.transition("a", LifecycleState::Ready, "x").unwrap();
    drop(f);
    // Every write from now on fails as on a full disk.
    let every_write = Arc::new(AlwaysFull);
    let f = Fleet::builder(FleetOptions::default())
        .manual_clock(T0)
        .data_dir(&dir, no_compaction())
        .file_system(every_write)
        .build()
        .expect("reopening needs no free space");
    assert!(!f.open_report().unwrap().recovery_recorded);
    let a_before = f.node("a").unwrap();
    let stats = f.audit_stats().unwrap();
    // A mutation with several records (a container, ready -> active and its entry).
    let err = f.add_container("a", "c1", 1).unwrap_err();
    assert!(
        matches!(&err, Error::Storage(m) if m.contains("no space")),
        "{err}"
    );
    assert_eq!(f.node("a").unwrap(), a_before);
    assert_eq!(f.audit_stats().unwrap(), stats);
    // A compaction fails too, and leaves no temporary file.
    assert!(matches!(f.compact(), Err(Error::Storage(_))));
    drop(f);
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    let f = open(&dir, T0, no_compaction()).unwrap();
    assert_eq!(f.node("a").unwrap().state, LifecycleState::Ready);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The real file system, with every write failing as on a full disk.
#[derive(Debug)]
struct AlwaysFull;

impl storage::Fs for AlwaysFull {
    fn create_dir_all(&self, d: &Path) -> std::io::Result<()> {
        OsFs.create_dir_all(d)
    }
    fn list(&self, d: &Path) -> std::io::Result<Vec<String>> {
        OsFs.list(d)
    }
    fn len(&self, p: &Path) -> std::io::Result<u64> {
        OsFs.len(p)
    }
    fn open_read(&self, p: &Path) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        OsFs.open_read(p)
    }
    fn create(&self, p: &Path) -> std::io::Result<Box<dyn storage::fs::FsFile>> {
        Ok(Box::new(FullFile(OsFs.create(p)?)))
    }
    fn open_append(&self, p: &Path) -> std::io::Result<Box<dyn storage::fs::FsFile>> {
        Ok(Box::new(FullFile(OsFs.open_append(p)?)))
    }
    fn rename(&self, a: &Path, b: &Path) -> std::io::Result<()> {
        OsFs.rename(a, b)
    }
    fn remove(&self, p: &Path) -> std::io::Result<()> {
        OsFs.remove(p)
    }
    fn sync_dir(&self, d: &Path) -> std::io::Result<()> {
        OsFs.sync_dir(d)
    }
    fn lock_dir(&self, d: &Path) -> std::io::Result<Option<storage::fs::LockGuard>> {
        OsFs.lock_dir(d)
    }
}

#[derive(Debug)]
struct FullFile(Box<dyn storage::fs::FsFile>);

impl storage::fs::FsFile for FullFile {
    fn write_all(&mut self, _: &[u8]) -> std::io::Result<()> {
        Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "no space left on device",
        ))
    }
    fn sync_data(&mut self) -> std::io::Result<()> {
        self.0.sync_data()
    }
    fn set_len(&mut self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
}

#[test]
fn the_lock_is_on_the_directory_and_deleting_files_does_not_defeat_it() {
    let dir = tempdir("lock");
    let f = open(&dir, T0, StorageOptions::default()).unwrap();
    let err = open(&dir, T0, StorageOptions::default()).unwrap_err();
    assert_eq!(err, Error::Locked(dir.display().to_string()));
    // Deleting every file (a careless operator) does not let a second writer in.
    for p in std::fs::read_dir(&dir).unwrap() {
        std::fs::remove_file(p.unwrap().path()).unwrap();
    }
    assert!(matches!(
        open(&dir, T0, StorageOptions::default()),
        Err(Error::Locked(_))
    ));
    drop(f);
    let _ = std::fs::remove_dir_all(&dir);

    // A data directory that cannot be created.
    let file = tempdir("file");
    std::fs::write(&file, b"not a directory").unwrap();
    let err = open(&file.join("data"), T0, StorageOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{err}");
    let _ = std::fs::remove_file(&file);

    // A directory of the previous format.
    let v1 = tempdir("v1");
    std::fs::create_dir_all(&v1).unwrap();
    std::fs::write(v1.join("journal.log"), b"old").unwrap();
    assert!(matches!(
        open(&v1, T0, StorageOptions::default()),
        Err(Error::UnsupportedFormat {
            found: 1,
            supported: 3,
            ..
        })
    ));
    let _ = std::fs::remove_dir_all(&v1);
}

#[test]
fn records_of_any_size_the_api_accepts_are_written_and_read_back() {
    let dir = tempdir("large");
    let batched = StorageOptions {
        sync: SyncPolicy::Batched {
            max_writes: 10_000,
            max_delay_ms: 1000,
        },
        compact_after_records: OFF,
    };
    let f = Fleet::builder(FleetOptions {
        audit_capacity: 60_000,
        ..Default::default()
    })
    .manual_clock(T0)
    .data_dir(&dir, batched.clone())
    .build()
    .unwrap();
    f.register(NodeSpec::cloud("big", 0)).unwrap();
    f.transition("big", LifecycleState::Initializing, "x")
        .unwrap();
    f.transition("big", LifecycleState::Ready, "x").unwrap();
    // One mutation of several MiB: 100,000 containers reported by a sync.
    let containers: Vec<(String, u64)> = (0..100_000)
        .map(|i| (format!("container-{i:06}-with-a-long-name"), 1))
        .collect();
    f.sync_containers("big", &containers).unwrap();
    let t_len = std::fs::metadata(journal(&dir)).unwrap().len();
    assert!(
        t_len > 3 * storage::frame::MAX_PAYLOAD as u64,
        "the record spans several frames: {t_len}"
    );
    f.register(NodeSpec::cloud("after", 0)).unwrap();
    // The longest failure text.
    f.register(NodeSpec::placeholder("p", 0)).unwrap();
    f.abandon_provisioning("p", &vec![b'x'; 1 << 20]).unwrap();
    for i in 0..50_000 {
        f.record_audit(
            AuditRecord::new(AuditAction::ScaleUp, "big", AuditResult::Success)
                .reason(0, format!("{i}")),
        )
        .unwrap();
    }
    f.compact().unwrap();
    drop(f);
    let f = Fleet::builder(FleetOptions {
        audit_capacity: 60_000,
        ..Default::default()
    })
    .manual_clock(T0)
    .data_dir(&dir, batched)
    .build()
    .unwrap();
    assert_eq!(f.node("big").unwrap().containers.len(), 100_000);
    assert!(f.node("after").is_ok());
    assert!(f.audit_stats().unwrap().retained > 50_000);
    let p = f.audit_recent(1).unwrap();
    assert_eq!(p[0].action, AuditAction::Recovery);
    drop(f);
    let _ = std::fs::remove_dir_all(&dir);
}

// ----- crash test: SIGKILL a writer at random points ------------------------------------------

const CHILD_ENV: &str = "NL_CRASH_CHILD_DIR";
const CHILD_COMPACT_ENV: &str = "NL_CRASH_CHILD_COMPACT";

/// Not a test on its own: the writer the crash tests run in a child process (it returns at
/// once when the variable is not set).
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    use std::io::Write;
    let compact_every = std::env::var(CHILD_COMPACT_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let storage = StorageOptions {
        sync: SyncPolicy::EveryWrite,
        compact_after_records: compact_every,
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

fn sigkill_rounds(name: &str, compact_every: u64, rounds: u32, min_acknowledged: usize) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempdir(name);
    let exe = std::env::current_exe().unwrap();
    let mut acknowledged: Vec<u64> = Vec::new();
    let mut seed = 0x2545_F491_4F6C_DD1Du64 ^ compact_every;
    for round in 0..rounds {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let run_ms = 10 + seed % 90;
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &dir)
            .env(CHILD_COMPACT_ENV, compact_every.to_string())
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
        acknowledged.len() > min_acknowledged,
        "the child acknowledged only {} writes",
        acknowledged.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_acknowledged_write_survives_sigkill() {
    sigkill_rounds("crash", 500, 40, 50);
}

#[test]
fn every_acknowledged_write_survives_sigkill_during_compaction() {
    // A compaction every 4 records (two writes): most kills land in or near one.
    sigkill_rounds("crash-compact", 4, 40, 20);
}

/// A crash while a new journal is created leaves it empty (or with a partial header): open
/// discards it, since its predecessor is not sealed and nothing was written to it. The same
/// empty file after the predecessor was sealed, or beside its own snapshot, is damage.
#[test]
fn an_empty_newest_journal_is_an_interrupted_creation_only_before_the_seal() {
    let dir = tempdir("empty-journal");
    let f = open(&dir, T0, no_compaction()).unwrap();
    f.register(NodeSpec::cloud("a", 0)).unwrap();
    drop(f);
    let live = journal(&dir);
    let name = live.file_name().unwrap().to_str().unwrap().to_owned();
    let generation: u64 = name["journal-".len()..name.len() - ".nlj".len()]
        .parse()
        .unwrap();
    let next = dir.join(format!("journal-{:020}.nlj", generation + 1));

    // Interrupted creation: the predecessor is unsealed.
    std::fs::write(&next, b"").unwrap();
    let f = open(&dir, T0, no_compaction()).unwrap();
    assert!(f.node("a").is_ok());
    assert_eq!(f.open_report().unwrap().obsolete_files_removed, 1);
    assert!(
        file_header(&next)["lsn"].as_u64() > Some(0),
        "the empty journal was removed, and the restart's new generation took its name"
    );
    // Compaction seals the live journal and starts the next one, with its snapshot.
    f.compact().unwrap();
    f.register(NodeSpec::cloud("b", 0)).unwrap();
    drop(f);

    // The live journal emptied after its snapshot was written: damage, not a crash.
    let live = journal(&dir);
    let whole = std::fs::read(&live).unwrap();
    std::fs::write(&live, b"").unwrap();
    match open(&dir, T0, no_compaction()) {
        Err(Error::Corrupt { detail, .. }) => assert!(
            detail.contains("missing") || detail.contains("header"),
            "{detail}"
        ),
        Err(e) => panic!("an emptied live journal: {e}"),
        Ok(f) => panic!(
            "an emptied live journal opened with b lost: {:?}",
            f.node("b").map(|n| n.id)
        ),
    }
    std::fs::write(&live, &whole).unwrap();
    let f = open(&dir, T0, no_compaction()).unwrap();
    assert!(f.node("b").is_ok());
    drop(f);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A compaction that fails after the journal rotation leaves the old journal sealed beside the
/// new one. The seal carries the sequence number the new journal starts at: salvage must take
/// the new journal's first mutation at that number, not the seal, or it drops a mutation
/// without reporting it.
#[test]
fn salvage_keeps_the_first_mutation_after_a_seal() {
    let dir = tempdir("salvage-seal");
    let f = open(&dir, T0, no_compaction()).unwrap();
    for i in 0..3 {
        f.register(NodeSpec::cloud(format!("a{i}"), 0)).unwrap();
    }
    // The snapshot's temporary file cannot be created: the compaction fails after rotating.
    std::fs::create_dir(dir.join("snapshot-00000000000000000002.nls.tmp")).unwrap();
    assert!(f.compact().is_err());
    for i in 0..2 {
        f.register(NodeSpec::cloud(format!("b{i}"), 0)).unwrap();
    }
    drop(f);
    std::fs::remove_dir(dir.join("snapshot-00000000000000000002.nls.tmp")).unwrap();
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(&dir),
        [
            "journal-00000000000000000001.nlj",
            "journal-00000000000000000002.nlj",
            "snapshot-00000000000000000001.nls"
        ],
        "the state a compaction that failed after rotating leaves"
    );
    let out = tempdir("salvage-seal-out");
    let report = storage::salvage(&dir, &out).unwrap();
    assert!(report.lost_sequence_ranges.is_empty(), "{report:?}");
    assert_eq!(report.journal_records_recovered, 5, "{report:?}");
    assert_eq!(open(&out, T0, no_compaction()).unwrap().len(), 5);
    // The directory itself opens with all five too.
    assert_eq!(open(&dir, T0, no_compaction()).unwrap().len(), 5);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&out);
}

/// The payload of a file's first frame (its header), as JSON.
fn file_header(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap();
    let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[36..36 + len]).unwrap()
}

/// A directory written by 0.2.0 (tests/data/format-2, see its README) opens with everything it
/// holds, and what this version writes goes to a journal of the current format, which 0.2.0
/// refuses instead of misreading (it ignores fields it does not know).
#[test]
fn a_directory_written_by_0_2_opens_and_moves_to_the_current_format() {
    let dir = tempdir("format-2");
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/format-2");
    for name in [
        "journal-00000000000000000002.nlj",
        "snapshot-00000000000000000002.nls",
    ] {
        std::fs::copy(fixture.join(name), dir.join(name)).unwrap();
        assert_eq!(file_header(&dir.join(name))["format_version"], 2);
    }
    let old_journal = std::fs::read(dir.join("journal-00000000000000000002.nlj")).unwrap();
    let start = Timestamp(T0.0 + 2 * 3_600_000);
    let f = open(&dir, start, no_compaction()).unwrap();
    let report = f.open_report().unwrap();
    assert_eq!((report.nodes_restored, report.snapshot_generation), (4, 2));
    let w1 = f.node("w-1").unwrap();
    assert_eq!(
        (
            w1.state,
            w1.total_ram_mb,
            w1.instance_type.as_str(),
            w1.hourly_cost_eur,
            w1.labels["zone"].as_str(),
            w1.total_containers_ever,
        ),
        (LifecycleState::Idle, 8192, "cx22", 0.0119, "fsn1", 1)
    );
    assert_eq!(w1.cordons[0].name, "disk_full");
    assert_eq!(w1.cordons[0].reason, "disk at 93%");
    assert_eq!(w1.health, HealthStatus::Healthy);
    assert!(!w1.placeholder && w1.gone_at_provider.is_none());
    let w2 = f.node("w-2").unwrap();
    assert_eq!((w2.reserved_ram_mb, w2.claims.len()), (512, 1));
    assert_eq!(w2.holds["world-data:srv-9"], "stopped server");
    assert_eq!(f.node("local-node").unwrap().origin, NodeOrigin::System);
    let w3 = f.node("w-3").unwrap();
    assert_eq!(w3.state, LifecycleState::Draining);
    let failed = f
        .audit_by_node("w-3", usize::MAX)
        .unwrap()
        .into_iter()
        .find(|e| e.result == AuditResult::Failed)
        .unwrap();
    assert_eq!(failed.error.as_deref(), Some("hetzner: 503"));
    // Opening recorded the restart: that first write went to a new journal of format 3, and
    // the 0.2 journal only gained its seal.
    let j3 = dir.join("journal-00000000000000000003.nlj");
    assert_eq!(file_header(&j3)["format_version"], 3);
    let journal2 = std::fs::read(dir.join("journal-00000000000000000002.nlj")).unwrap();
    assert!(journal2.len() > old_journal.len() && journal2.starts_with(&old_journal));
    // The ticket 0.2 issued still completes, and a reopen holds it all.
    let t = f.ticket_for("w-3").unwrap().unwrap();
    f.complete_decommission(&t).unwrap();
    drop(f);
    let f = open(&dir, start, no_compaction()).unwrap();
    assert_eq!(f.node("w-3").unwrap().state, LifecycleState::Decommissioned);
    assert_eq!(f.len(), 4);
    f.compact().unwrap();
    drop(f);
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        assert_eq!(file_header(&p)["format_version"], 3, "{}", p.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ----- compaction holds the fleet lock for no I/O -------------------------------------------------

/// A file system that holds every operation while its gate is closed, except those on one
/// file: the journal mutations go to. A compaction that did any I/O under the fleet's lock
/// would then hold the lock while stuck, and a concurrent mutation could not finish.
#[derive(Debug, Clone)]
struct GateFs {
    gate: Arc<(std::sync::Mutex<GateState>, std::sync::Condvar)>,
}

#[derive(Debug, Default)]
struct GateState {
    closed: bool,
    allowed: Option<PathBuf>,
    /// Operations waiting at the gate now.
    waiting: usize,
}

impl GateFs {
    fn pass(&self, path: &Path) {
        let (m, cv) = &*self.gate;
        let mut s = m.lock().unwrap();
        if !s.closed || s.allowed.as_deref() == Some(path) {
            return;
        }
        s.waiting += 1;
        cv.notify_all();
        while s.closed {
            s = cv.wait(s).unwrap();
        }
        s.waiting -= 1;
    }

    fn close(&self, allowed: PathBuf) {
        let mut s = self.gate.0.lock().unwrap();
        s.closed = true;
        s.allowed = Some(allowed);
    }

    fn open(&self) {
        self.gate.0.lock().unwrap().closed = false;
        self.gate.1.notify_all();
    }

    /// Waits until something is held at the gate.
    fn wait_for_a_held_operation(&self) {
        let (m, cv) = &*self.gate;
        let s = m.lock().unwrap();
        let (s, timeout) = cv
            .wait_timeout_while(s, Duration::from_secs(20), |s| s.waiting == 0)
            .unwrap();
        assert!(
            !timeout.timed_out() && s.waiting > 0,
            "the compaction did no I/O at all"
        );
    }
}

#[derive(Debug)]
struct GateFile {
    inner: Box<dyn storage::fs::FsFile>,
    path: PathBuf,
    fs: GateFs,
}

impl storage::fs::FsFile for GateFile {
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.fs.pass(&self.path);
        self.inner.write_all(buf)
    }
    fn sync_data(&mut self) -> std::io::Result<()> {
        self.fs.pass(&self.path);
        self.inner.sync_data()
    }
    fn set_len(&mut self, len: u64) -> std::io::Result<()> {
        self.fs.pass(&self.path);
        self.inner.set_len(len)
    }
}

impl Fs for GateFs {
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        self.pass(dir);
        OsFs.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        self.pass(dir);
        OsFs.list(dir)
    }
    fn len(&self, path: &Path) -> std::io::Result<u64> {
        self.pass(path);
        OsFs.len(path)
    }
    fn open_read(&self, path: &Path) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        self.pass(path);
        OsFs.open_read(path)
    }
    fn create(&self, path: &Path) -> std::io::Result<Box<dyn storage::fs::FsFile>> {
        self.pass(path);
        let inner = OsFs.create(path)?;
        Ok(Box::new(GateFile {
            inner,
            path: path.to_path_buf(),
            fs: self.clone(),
        }))
    }
    fn open_append(&self, path: &Path) -> std::io::Result<Box<dyn storage::fs::FsFile>> {
        self.pass(path);
        let inner = OsFs.open_append(path)?;
        Ok(Box::new(GateFile {
            inner,
            path: path.to_path_buf(),
            fs: self.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.pass(from);
        OsFs.rename(from, to)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        self.pass(path);
        OsFs.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.pass(dir);
        OsFs.sync_dir(dir)
    }
    fn lock_dir(&self, dir: &Path) -> std::io::Result<Option<storage::fs::LockGuard>> {
        OsFs.lock_dir(dir)
    }
}

#[test]
fn a_compaction_holds_the_lock_for_no_io_and_mutations_go_on_during_it() {
    let dir = tempdir("gate");
    let gate = GateFs {
        gate: Arc::default(),
    };
    let f = Arc::new(
        Fleet::builder(FleetOptions::default())
            .manual_clock(T0)
            .data_dir(&dir, no_compaction())
            .file_system(Arc::new(gate.clone()))
            .build()
            .unwrap(),
    );
    for i in 0..20 {
        f.register(NodeSpec::cloud(format!("n{i}"), 0)).unwrap();
    }
    // Mutations may go to the next journal only (a spare the fleet created ahead of time).
    let next = f.storage_status().unwrap().generation + 1;
    gate.close(dir.join(format!("journal-{next:020}.nlj")));
    let compacting = {
        let f = f.clone();
        std::thread::spawn(move || f.compact())
    };
    // The compaction is now stuck in I/O (syncing and sealing the old journal, writing the
    // snapshot), all of it after releasing the lock: a mutation and a read complete meanwhile.
    gate.wait_for_a_held_operation();
    let (done, finished) = std::sync::mpsc::channel();
    {
        let f = f.clone();
        std::thread::spawn(move || {
            let r = f.register(NodeSpec::cloud("during", 0)).map(|_| ());
            let v = f.evaluate("n0").map(|_| ());
            done.send((r, v)).unwrap();
        });
    }
    let (r, v) = finished
        .recv_timeout(Duration::from_secs(20))
        .expect("a mutation waited for the compaction's I/O: it held the fleet lock");
    r.unwrap();
    v.unwrap();
    gate.open();
    compacting.join().unwrap().unwrap();
    assert_eq!(f.storage_status().unwrap().compactions, 1);
    drop(Arc::try_unwrap(f).unwrap());
    let f = open(&dir, T0, no_compaction()).unwrap();
    assert_eq!(f.len(), 21);
    assert!(f.node("during").is_ok());
    drop(f);
    let _ = std::fs::remove_dir_all(&dir);
}
