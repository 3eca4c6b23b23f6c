//! The fleet registry: owns every node, the audit ring, the policy and the clock, and performs
//! every mutation atomically.
//!
//! Each public operation takes the lock once, reads the clock once, applies the pure rules of
//! [`crate::node`] and [`crate::safety`], and appends its audit entries before releasing the
//! lock. That single lock is what makes a claim and a decommission of the same node mutually
//! exclusive: exactly one of them wins.
//!
//! The operations are grouped by concern, one file each: [`registry`] (register, update,
//! rename, forget), [`lifecycle`] (transitions, health, timers), [`placement`] (containers,
//! claims, holds, cordons, migrations), [`decommission`] (the two-phase protocol), [`views`]
//! (verdicts, nodes, pages), [`consolidation`] (projection, plans and their execution) and
//! [`audit`] (queries). [`tx`] is the transaction every mutation runs in; [`store`] (with the
//! indexes of [`index`]) is where the nodes live.

mod audit;
mod consolidation;
mod decommission;
mod index;
mod lifecycle;
mod placement;
mod registry;
mod store;
mod tx;
mod views;

pub use consolidation::{ConsolidationRequest, PlanExecution};
pub use lifecycle::{HealthOutcome, TickReport};
pub use placement::ContainerOutcome;
pub use views::{
    FleetSummary, NodeInfo, NodePage, NodeQuery, NodeRow, NodeVerdict, StateHealthCount,
};

use crate::audit::{AuditAction, AuditRecord, AuditResult, AuditRing};
use crate::clock::{Clock, ManualClock, Moment, SystemClock, Timestamp};
use crate::error::{Error, Result};
use crate::ids::InstanceId;
use crate::node::Node;
use crate::policy::{FleetOptions, Policy};
use crate::state::NodeOrigin;
use crate::storage::{
    CompactionJob, FleetMeta, FleetState, Fs, OpenReport, OsFs, Storage, StorageOptions,
    StorageStatus,
};
use parking_lot::{Mutex, RwLock};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use store::NodeStore;
use tx::{Scratch, Tx};

/// Everything behind the fleet's lock.
pub(crate) struct Inner {
    pub(crate) store: NodeStore,
    pub(crate) audit: AuditRing,
    pub(crate) policy: Policy,
    pub(crate) meta: FleetMeta,
    /// Present when the fleet persists to a data directory.
    pub(crate) storage: Option<Storage>,
    /// A restore pass is open: the fleet reopened a data directory that held nodes, or a
    /// recovered node was registered, and `finish_restore` has not run since. Re-entered at
    /// every open, so not persisted.
    pub(crate) restoring: bool,
    /// A transaction's buffers, kept between transactions so that one allocates nothing.
    scratch: Scratch,
}

impl Inner {
    fn new(options: &FleetOptions, instance_id: InstanceId) -> Inner {
        Inner {
            store: NodeStore::default(),
            audit: AuditRing::new(options.audit_capacity),
            policy: options.policy,
            meta: FleetMeta {
                instance_id,
                last_consolidation_at: None,
            },
            storage: None,
            restoring: false,
            scratch: Scratch::default(),
        }
    }

    pub(crate) fn node(&self, id: &str) -> Result<&Node> {
        self.store
            .get(id)
            .map(|n| &**n)
            .ok_or_else(|| Error::NodeNotFound(id.to_owned()))
    }

    /// Everything that is persisted, for a snapshot: nodes and audit entries are shared, not
    /// copied, so capturing costs one reference count per node and per chunk of entries. The
    /// nodes come in no particular order: the snapshot writer sorts them, outside the fleet's
    /// lock.
    pub(crate) fn capture(&self) -> FleetState {
        let nodes: Vec<Arc<Node>> = self.store.values().cloned().collect();
        FleetState {
            meta: self.meta.clone(),
            nodes,
            audit: self.audit.state(),
        }
    }

    /// Loads a persisted state into an empty fleet, rebuilding every index.
    fn restore(&mut self, state: FleetState, audit_capacity: usize) {
        self.meta = state.meta;
        for node in state.nodes {
            let containers: Vec<crate::text::Text> = node
                .container_set()
                .iter()
                .map(|(c, _)| c.clone())
                .collect();
            let claims: Vec<_> = node.claims().map(|(c, _)| *c).collect();
            let slot = self.store.insert(node);
            for c in containers {
                self.store.index_container(&c, slot);
            }
            for c in claims {
                self.store.set_claim(c, Some(slot));
            }
        }
        self.audit = AuditRing::restore(audit_capacity, state.audit);
    }
}

/// Builds a [`Fleet`]: options, clock, and optionally a data directory to persist to.
pub struct FleetBuilder {
    options: FleetOptions,
    clock: Option<Arc<dyn Clock>>,
    manual_start: Option<Timestamp>,
    data_dir: Option<(PathBuf, StorageOptions)>,
    fs: Option<Arc<dyn Fs>>,
}

impl FleetBuilder {
    /// Runs the fleet on a manual clock starting at `start`.
    pub fn manual_clock(mut self, start: Timestamp) -> Self {
        self.manual_start = Some(start);
        self.clock = None;
        self
    }

    /// Runs the fleet on a caller-supplied clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self.manual_start = None;
        self
    }

    /// Persists to `dir`: restores what it holds, and journals every mutation before it returns.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>, storage: StorageOptions) -> Self {
        self.data_dir = Some((dir.into(), storage));
        self
    }

    /// Does all storage I/O through `fs` instead of the operating system's file system: the
    /// seam fault-injection tests use ([`crate::storage::FaultFs`], [`crate::storage::SimFs`]).
    pub fn file_system(mut self, fs: Arc<dyn Fs>) -> Self {
        self.fs = Some(fs);
        self
    }

    pub fn build(self) -> Result<Fleet> {
        let options = self.options.resolve()?;
        let (clock, manual_clock): (Arc<dyn Clock>, _) = match (self.clock, self.manual_start) {
            (_, Some(start)) => {
                let c = Arc::new(ManualClock::new(start));
                (c.clone(), Some(c))
            }
            (Some(c), None) => (c, None),
            (None, None) => (Arc::new(SystemClock), None),
        };
        let now = clock.now();
        let mut inner = Inner::new(&options, InstanceId::random()?);
        let mut open_report = None;
        if let Some((dir, storage_options)) = self.data_dir {
            let fs = self.fs.unwrap_or_else(|| Arc::new(OsFs));
            let opened = Storage::open(
                fs,
                &dir,
                storage_options,
                inner.meta.instance_id,
                options.audit_capacity,
            )?;
            if let Some(state) = opened.state {
                inner.restore(state, options.audit_capacity);
            }
            inner.storage = Some(opened.storage);
            let mut report = opened.report;
            report.recovery_recorded = enter_recovery(&mut inner, now, &report)?;
            open_report = Some(report);
        }
        Ok(Fleet {
            inner: RwLock::new(inner),
            clock,
            manual_clock,
            open_report,
            poisoned: AtomicBool::new(false),
            poison_reason: Mutex::new(None),
            compaction: Mutex::new(()),
        })
    }
}

/// After a restart nobody knows what the restored nodes run now: every cloud node waits for
/// its container sync, then the post-sync grace (rule 7). This state is re-entered at every
/// open, so it is not journaled; the one audit entry that says so is (so its sequence number is
/// never reused), together with a note about a torn journal tail. On a full disk the entry is
/// left out rather than refusing to open (reopening never needs more space than the data
/// already uses); returns whether it was recorded.
fn enter_recovery(inner: &mut Inner, now: Moment, report: &OpenReport) -> Result<bool> {
    let mut restored = 0u64;
    let slots: Vec<store::Slot> = inner.store.slots().map(|(s, _)| s).collect();
    for slot in slots {
        let Some(node) = inner.store.at_mut(slot) else {
            continue;
        };
        let protected = matches!(node.origin, NodeOrigin::System | NodeOrigin::Dedicated);
        if node.state.is_terminal() || protected {
            continue;
        }
        node.metrics.recovered_at.set(Some(now.wall));
        node.metrics.container_sync_pending_since.set(Some(now));
        inner.store.refresh(slot);
        restored += 1;
    }
    inner.restoring = restored > 0;
    let mut tx = Tx::new(inner, now);
    if report.nodes_restored > 0 || report.snapshot_found || report.journal_records_replayed > 0 {
        tx.stage(
            AuditRecord::new(AuditAction::Recovery, "-", AuditResult::Success).reason(
                0,
                format!(
                    "restored_after_restart: {} nodes restored, {restored} wait for their container sync",
                    report.nodes_restored
                ),
            ),
        );
    }
    if report.torn_tail_bytes > 0 {
        tx.stage(
            AuditRecord::new(AuditAction::Recovery, "-", AuditResult::Failed)
                .reason(0, "journal_tail_skipped")
                .error(format!(
                    "{} bytes at the end of the journal were an incomplete write (a crash before \
                     the write was acknowledged) and were cut off",
                    report.torn_tail_bytes
                )),
        );
    }
    match tx.commit() {
        Ok(job) => {
            // Nobody else holds the fleet yet: a compaction that came due runs right here.
            if let Some(job) = job {
                let _ = job.run();
            }
            Ok(true)
        }
        Err(Error::Storage(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The thread-safe registry of nodes. Share it with `Arc<Fleet>`; every method takes `&self`.
pub struct Fleet {
    inner: RwLock<Inner>,
    clock: Arc<dyn Clock>,
    manual_clock: Option<Arc<ManualClock>>,
    open_report: Option<OpenReport>,
    /// Set when a mutation was interrupted by a panic: its state may be half-applied, so the
    /// fleet refuses everything until it is reopened.
    poisoned: AtomicBool,
    poison_reason: Mutex<Option<String>>,
    /// Serialises compactions (which run outside the fleet lock).
    compaction: Mutex<()>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.inner.read();
        f.debug_struct("Fleet")
            .field("nodes", &g.store.len())
            .field("audit_retained", &g.audit.len())
            .field("manual_clock", &self.manual_clock.is_some())
            .field("persistent", &g.storage.is_some())
            .finish()
    }
}

impl Fleet {
    /// A builder, for a persistent fleet or a custom clock.
    pub fn builder(options: FleetOptions) -> FleetBuilder {
        FleetBuilder {
            options,
            clock: None,
            manual_start: None,
            data_dir: None,
            fs: None,
        }
    }

    /// An in-memory fleet on the system clock.
    pub fn new(options: FleetOptions) -> Result<Fleet> {
        Self::builder(options).build()
    }

    /// An in-memory fleet on a caller-supplied clock.
    pub fn with_clock(options: FleetOptions, clock: Arc<dyn Clock>) -> Result<Fleet> {
        Self::builder(options).clock(clock).build()
    }

    /// An in-memory fleet on a manual clock starting at `start`; move it with
    /// [`Fleet::advance_clock`].
    pub fn with_manual_clock(options: FleetOptions, start: Timestamp) -> Result<Fleet> {
        Self::builder(options).manual_clock(start).build()
    }

    fn check_poison(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            let why = self.poison_reason.lock().clone().unwrap_or_default();
            return Err(Error::Poisoned(why));
        }
        Ok(())
    }

    /// Runs `f` under the read lock with one `now`.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Inner, Moment) -> R) -> Result<R> {
        self.check_poison()?;
        let now = self.clock.now();
        let g = self.inner.read();
        Ok(f(&g, now))
    }

    /// Runs one mutation: lock, read the clock once, apply, commit (journal first) or roll back.
    /// A panic inside poisons the fleet (its state may be half-applied) and is resumed.
    pub(crate) fn mutate<R>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<R>) -> Result<R> {
        self.check_poison()?;
        let now = self.clock.now();
        let mut g = self.inner.write();
        if let Some(why) = g.storage.as_ref().and_then(Storage::poisoned) {
            return Err(Error::Poisoned(why.to_owned()));
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut tx = Tx::new(&mut g, now);
            let out = f(&mut tx);
            if out.is_err() && !tx.keep_on_error {
                tx.rollback();
                return (out, None);
            }
            match tx.commit() {
                Ok(job) => (out, job),
                Err(e) => (Err(e), None),
            }
        }));
        match outcome {
            Ok((out, job)) => {
                drop(g);
                if let Some(job) = job {
                    self.run_compaction(job);
                }
                out
            }
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                *self.poison_reason.lock() = Some(format!(
                    "a mutation was interrupted by an internal error: {what}"
                ));
                self.poisoned.store(true, Ordering::Release);
                drop(g);
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// Writes a snapshot outside the fleet lock; its outcome is kept in the storage status.
    fn run_compaction(&self, job: Box<CompactionJob>) {
        let _serial = self.compaction.lock();
        let _ = job.run();
    }

    /// The library clock's current time (wall clock).
    pub fn now(&self) -> Timestamp {
        self.clock.now().wall
    }

    /// The library clock's current reading, wall and monotonic.
    pub fn moment(&self) -> Moment {
        self.clock.now()
    }

    /// Lets `d` pass on a manual clock (both wall and monotonic time); an error on any other
    /// clock.
    pub fn advance_clock(&self, d: Duration) -> Result<Timestamp> {
        let c = self.manual_clock.as_ref().ok_or(Error::NotManualClock)?;
        c.advance(d);
        Ok(c.now().wall)
    }

    /// Steps a manual clock's wall time to `t`, as an NTP correction would; graces are measured
    /// on the monotonic clock and do not move. An error on any other clock.
    pub fn set_clock(&self, t: Timestamp) -> Result<()> {
        let c = self.manual_clock.as_ref().ok_or(Error::NotManualClock)?;
        c.set(t);
        Ok(())
    }

    /// The policy in force (every default resolved).
    pub fn policy(&self) -> Policy {
        self.inner.read().policy
    }

    /// Replaces the policy; zeros mean the defaults. Takes effect for the next decision. The
    /// policy is configuration, not state: a persistent fleet takes it from its options when
    /// reopened.
    pub fn set_policy(&self, policy: Policy) -> Result<()> {
        let policy = policy.resolve()?;
        self.check_poison()?;
        self.inner.write().policy = policy;
        Ok(())
    }

    /// This fleet's identity: random, and kept in its data directory for as long as the data
    /// lives (an in-memory fleet gets a new one each time). Audit sinks use it so that two
    /// fleets never pass for one.
    pub fn instance_id(&self) -> InstanceId {
        self.inner.read().meta.instance_id
    }

    // ----- persistence -----------------------------------------------------------------------

    /// What reopening the data directory found; `None` for an in-memory fleet.
    pub fn open_report(&self) -> Option<&OpenReport> {
        self.open_report.as_ref()
    }

    /// The storage's state; `None` for an in-memory fleet.
    pub fn storage_status(&self) -> Option<StorageStatus> {
        self.inner.read().storage.as_ref().map(Storage::status)
    }

    /// Forces journaled mutations to disk (useful with [`crate::SyncPolicy::Batched`]). A
    /// failure poisons the storage: see [`Error::Poisoned`].
    pub fn sync(&self) -> Result<()> {
        self.check_poison()?;
        match self.inner.write().storage.as_mut() {
            Some(s) => s.sync(),
            None => Ok(()),
        }
    }

    /// Writes a snapshot and starts a new journal generation now. The fleet lock is held only
    /// to capture the state and switch to the journal created beforehand; syncing, encoding and
    /// writing happen outside it. If a compaction that a mutation started has not run yet, this
    /// waits for it and then compacts again.
    pub fn compact(&self) -> Result<()> {
        self.check_poison()?;
        loop {
            let serial = self.compaction.lock();
            let job = {
                let mut g = self.inner.write();
                match g.storage.as_ref() {
                    None => return Ok(()),
                    Some(s) if s.compaction_in_flight() => None,
                    Some(_) => {
                        let state = g.capture();
                        let storage = g.storage.as_mut().expect("checked above");
                        Some(storage.begin_compaction(state)?)
                    }
                }
            };
            match job {
                Some(job) => return job.run(),
                None => {
                    // The mutation that began it runs it once it has this lock.
                    drop(serial);
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeSpec;

    #[test]
    fn a_panic_inside_a_mutation_poisons_the_fleet() {
        let f = Fleet::with_manual_clock(FleetOptions::default(), Timestamp(0)).unwrap();
        f.register(NodeSpec::cloud("a", 1)).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _: Result<()> = f.mutate(|tx| {
                tx.node("a")?.node.total_ram_mb = 99;
                panic!("injected");
            });
        }));
        assert!(r.is_err());
        assert!(matches!(f.node("a"), Err(Error::Poisoned(m)) if m.contains("injected")));
        assert!(matches!(
            f.register(NodeSpec::cloud("b", 1)),
            Err(Error::Poisoned(_))
        ));
        assert!(matches!(f.evaluate("a"), Err(Error::Poisoned(_))));
    }
}
