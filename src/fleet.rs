//! The fleet registry: owns every node, the audit ring, the policy and the clock, and performs
//! every mutation atomically.
//!
//! Each public operation takes the lock once, reads the clock once, applies the pure rules of
//! [`crate::node`] and [`crate::safety`], and appends its audit entries before releasing the
//! lock. That single lock is what makes a reservation and a decommission of the same node
//! mutually exclusive: exactly one of them wins.

use crate::audit::{
    AuditAction, AuditEntry, AuditPage, AuditRecord, AuditResult, AuditRing, AuditStats,
    StateSnapshot,
};
use crate::clock::{Clock, ManualClock, SystemClock, Timestamp};
use crate::error::{Error, Result};
use crate::node::{validate_name, DrainTicket, Node, NodeSpec, StateChange};
use crate::planning::{self, ConsolidationPlan, ConsolidationPolicy, FleetProjection, PlanInput};
use crate::policy::{FleetOptions, Policy};
use crate::reason::ReasonCode;
use crate::safety::{effective_sync_completion, evaluate, Verdict};
use crate::state::{HealthStatus, LifecycleState, NodeOrigin};
use crate::storage::{FleetState, Journal, OpenReport, RecordOut, StorageOptions, StorageStatus};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Proof that a node entered the two-phase decommission. Pass `id` to complete, fail or cancel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecommissionTicket {
    pub id: u64,
    pub node_id: String,
}

/// What a container event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerOutcome {
    /// False when the event was a no-op (a known id added again, an unknown id removed).
    pub changed: bool,
    /// The node's state after the event (container events drive active/idle).
    pub state: LifecycleState,
    pub current_containers: u64,
}

/// What a health report did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthOutcome {
    pub health: HealthStatus,
    pub state: LifecycleState,
    pub consecutive_failures: u32,
}

/// What [`Fleet::consolidation_plan`] is asked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsolidationRequest {
    pub policy: ConsolidationPolicy,
    /// Containers that must not be moved (they pin their node).
    pub non_migratable_containers: Vec<String>,
    /// When the last consolidation ran, for the cooldown.
    pub last_consolidation_at_ms: Option<Timestamp>,
}

/// What [`Fleet::tick`] did: nodes whose timers fired.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickReport {
    /// Stuck in provisioning/initializing past the timeout; now unhealthy.
    pub provisioning_timeouts: Vec<String>,
    /// Container sync completed by the sync timeout.
    pub sync_timeouts: Vec<String>,
}

/// The verdict for one node, as returned by [`Fleet::evaluate_all`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeVerdict {
    pub node_id: String,
    pub verdict: Verdict,
}

/// A node as callers see it: everything the fleet knows, with durations resolved at `now`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: String,
    pub origin: NodeOrigin,
    pub state: LifecycleState,
    pub health: HealthStatus,
    pub instance_type: String,
    pub hourly_cost_eur: f64,
    pub total_ram_mb: u64,
    pub allocated_ram_mb: u64,
    pub reserved_ram_mb: u64,
    pub containers: BTreeMap<String, u64>,
    pub reservations: BTreeMap<String, u64>,
    pub holds: BTreeMap<String, String>,
    pub consecutive_health_failures: u32,
    pub provisioned_at_ms: Timestamp,
    pub initialized_at_ms: Option<Timestamp>,
    pub first_container_at_ms: Option<Timestamp>,
    pub last_container_at_ms: Option<Timestamp>,
    pub total_containers_ever: u64,
    pub state_entered_at_ms: Timestamp,
    pub time_in_state_ms: BTreeMap<String, u64>,
    pub recovered_at_ms: Option<Timestamp>,
    pub container_sync_pending: bool,
    pub container_sync_completed_at_ms: Option<Timestamp>,
    pub decommission: Option<DrainTicket>,
}

impl NodeInfo {
    fn of(node: &Node, policy: &Policy, now: Timestamp) -> NodeInfo {
        let m = node.metrics();
        let sync_done = effective_sync_completion(node, policy, now);
        NodeInfo {
            id: node.id.clone(),
            origin: node.origin,
            state: node.state,
            health: node.health,
            instance_type: node.instance_type.clone(),
            hourly_cost_eur: node.hourly_cost_eur,
            total_ram_mb: node.total_ram_mb,
            allocated_ram_mb: node.allocated_ram_mb,
            reserved_ram_mb: node.reserved_ram_mb,
            containers: node.containers.clone(),
            reservations: node.reservations.clone(),
            holds: node.holds.clone(),
            consecutive_health_failures: node.consecutive_health_failures,
            provisioned_at_ms: m.provisioned_at_ms,
            initialized_at_ms: m.initialized_at_ms,
            first_container_at_ms: m.first_container_at_ms,
            last_container_at_ms: m.last_container_at_ms,
            total_containers_ever: m.total_containers_ever,
            state_entered_at_ms: m.state_entered_at_ms,
            time_in_state_ms: m
                .time_in_states_ms(node.state, now)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            recovered_at_ms: m.recovered_at_ms,
            container_sync_pending: m.container_sync_pending_since_ms.is_some()
                && sync_done.is_none(),
            container_sync_completed_at_ms: if m.container_sync_pending_since_ms.is_some() {
                sync_done
            } else {
                m.container_sync_completed_at_ms
            },
            decommission: node.drain.clone(),
        }
    }
}

struct Inner {
    nodes: BTreeMap<String, Node>,
    /// ticket id -> node id, for the outstanding decommissions.
    tickets: HashMap<u64, String>,
    next_ticket: u64,
    audit: AuditRing,
    policy: Policy,
    /// Present when the fleet persists to a data directory.
    journal: Option<Journal>,
}

impl Inner {
    fn new(options: &FleetOptions) -> Inner {
        Inner {
            nodes: BTreeMap::new(),
            tickets: HashMap::new(),
            next_ticket: 1,
            audit: AuditRing::new(options.audit_capacity),
            policy: options.policy,
            journal: None,
        }
    }

    fn node(&self, id: &str) -> Result<&Node> {
        self.nodes
            .get(id)
            .ok_or_else(|| Error::NodeNotFound(id.to_owned()))
    }

    /// Everything that is persisted, for a snapshot.
    fn fleet_state(&self) -> FleetState {
        FleetState {
            nodes: self.nodes.values().cloned().collect(),
            next_ticket: self.next_ticket,
            audit: self.audit.state(),
        }
    }

    /// Loads a persisted state (replacing the empty one a new fleet starts with).
    fn restore(&mut self, state: FleetState, audit_capacity: usize) {
        self.nodes = state.nodes.into_iter().map(|n| (n.id.clone(), n)).collect();
        self.tickets = self
            .nodes
            .values()
            .filter_map(|n| n.drain.as_ref().map(|d| (d.ticket, n.id.clone())))
            .collect();
        let after_tickets = self.tickets.keys().max().map_or(1, |t| t + 1);
        self.next_ticket = state.next_ticket.max(after_tickets).max(1);
        self.audit = AuditRing::restore(audit_capacity, state.audit);
    }
}

/// Mutable access to one node together with the staged audit records and the policy: the
/// borrow every node mutation needs.
struct NodeCtx<'a> {
    node: &'a mut Node,
    staged: &'a mut Vec<AuditRecord>,
    policy: &'a Policy,
    now: Timestamp,
}

impl NodeCtx<'_> {
    fn snapshot(&self) -> StateSnapshot {
        StateSnapshot::of(self.node, self.policy, self.now)
    }

    /// Stages an audit record with the node's current snapshot.
    fn record(&mut self, rec: AuditRecord) {
        let rec = rec.snapshot(self.snapshot());
        self.staged.push(rec);
    }

    /// Applies a table transition and records it.
    fn transition(
        &mut self,
        to: LifecycleState,
        reason: &str,
        decision_by: &str,
    ) -> Result<Option<StateChange>> {
        let change = self.node.transition(to, self.now)?;
        if let Some(c) = change {
            self.record_change(c, reason, decision_by);
        }
        Ok(change)
    }

    fn record_change(&mut self, c: StateChange, reason: &str, decision_by: &str) {
        let rec = AuditRecord::new(
            AuditAction::LifecycleTransition,
            &self.node.id,
            AuditResult::Success,
        )
        .reason(0, reason)
        .decision_by(decision_by)
        .states(c.from, c.to);
        self.record(rec);
    }

    /// Moves between ready/active/idle as the container count demands.
    fn settle_occupancy(&mut self) {
        if let Some((to, reason)) = self.node.occupancy_transition() {
            // The occupancy transitions are all in the table, so this cannot fail.
            let _ = self.transition(to, reason, "");
        }
    }

    fn record_rejection(&mut self, action: AuditAction, verdict: &Verdict, decision_by: &str) {
        let rec = AuditRecord::new(action, &self.node.id, AuditResult::Rejected)
            .reason(
                verdict.primary.map_or(0, ReasonCode::code),
                verdict.message(),
            )
            .decision_by(decision_by);
        self.record(rec);
    }

    /// Ends the node's outstanding decommission and returns it; only called on a node found
    /// through its ticket, so the ticket is there.
    fn take_drain(&mut self) -> DrainTicket {
        self.node
            .drain
            .take()
            .expect("reached through its ticket, so the node has one")
    }

    fn outcome(&self, changed: bool) -> ContainerOutcome {
        ContainerOutcome {
            changed,
            state: self.node.state,
            current_containers: self.node.container_count() as u64,
        }
    }
}

/// One mutation in progress.
///
/// It stages audit records and, when the fleet persists, remembers the pre-image of every node
/// and ticket it touches. `commit` writes the post-images and entries to the journal first and
/// only then adds the entries to the ring; if the write fails, `rollback` restores the
/// pre-images, so a change that was not acknowledged is never visible. Without a journal
/// nothing can fail after validation, so no pre-images are taken (in-memory fleets pay
/// nothing for this).
struct Tx<'a> {
    inner: &'a mut Inner,
    now: Timestamp,
    /// Node id and its state before this transaction (`None`: it did not exist).
    touched: Vec<(String, Option<Node>)>,
    /// Ticket id and its mapping before this transaction.
    tickets_before: Vec<(u64, Option<String>)>,
    next_ticket_before: Option<u64>,
    staged: Vec<AuditRecord>,
    /// Commit the staged records even though the operation fails: an audited refusal.
    keep_on_error: bool,
}

impl<'a> Tx<'a> {
    fn new(inner: &'a mut Inner, now: Timestamp) -> Self {
        Tx {
            inner,
            now,
            touched: Vec::new(),
            tickets_before: Vec::new(),
            next_ticket_before: None,
            staged: Vec::new(),
            keep_on_error: false,
        }
    }

    fn journaled(&self) -> bool {
        self.inner.journal.is_some()
    }

    /// Remembers `id`'s pre-image the first time the transaction touches it.
    fn touch(&mut self, id: &str) {
        if self.journaled() && !self.touched.iter().any(|(t, _)| t == id) {
            let before = self.inner.nodes.get(id).cloned();
            self.touched.push((id.to_owned(), before));
        }
    }

    fn node_ref(&self, id: &str) -> Result<&Node> {
        self.inner.node(id)
    }

    fn node(&mut self, id: &str) -> Result<NodeCtx<'_>> {
        if !self.inner.nodes.contains_key(id) {
            return Err(Error::NodeNotFound(id.to_owned()));
        }
        self.touch(id);
        let node = self.inner.nodes.get_mut(id).expect("checked above");
        Ok(NodeCtx {
            node,
            staged: &mut self.staged,
            policy: &self.inner.policy,
            now: self.now,
        })
    }

    fn insert(&mut self, node: Node) {
        let id = node.id.clone();
        self.touch(&id);
        self.inner.nodes.insert(id, node);
    }

    fn remove(&mut self, id: &str) {
        self.touch(id);
        self.inner.nodes.remove(id);
    }

    fn issue_ticket(&mut self, node_id: &str) -> u64 {
        let ticket = self.inner.next_ticket;
        self.next_ticket_before.get_or_insert(ticket);
        self.inner.next_ticket += 1;
        self.set_ticket(ticket, Some(node_id.to_owned()));
        ticket
    }

    fn set_ticket(&mut self, ticket: u64, node_id: Option<String>) {
        let before = match node_id {
            Some(n) => self.inner.tickets.insert(ticket, n),
            None => self.inner.tickets.remove(&ticket),
        };
        if self.journaled() && !self.tickets_before.iter().any(|(t, _)| *t == ticket) {
            self.tickets_before.push((ticket, before));
        }
    }

    /// The node holding the outstanding decommission `ticket`.
    fn ticket_node(&mut self, ticket: u64) -> Result<NodeCtx<'_>> {
        let id = self
            .inner
            .tickets
            .get(&ticket)
            .ok_or(Error::TicketInvalid(ticket))?
            .clone();
        let ctx = self.node(&id)?;
        match &ctx.node.drain {
            Some(d) if d.ticket == ticket => Ok(ctx),
            _ => Err(Error::TicketInvalid(ticket)),
        }
    }

    /// Stages a record that has no node snapshot (e.g. about an unknown node).
    fn stage(&mut self, rec: AuditRecord) {
        self.staged.push(rec);
    }

    fn rollback(self) {
        let Tx {
            inner,
            touched,
            tickets_before,
            next_ticket_before,
            ..
        } = self;
        for (id, before) in touched.into_iter().rev() {
            match before {
                Some(n) => {
                    inner.nodes.insert(id, n);
                }
                None => {
                    inner.nodes.remove(&id);
                }
            }
        }
        for (ticket, before) in tickets_before.into_iter().rev() {
            match before {
                Some(n) => inner.tickets.insert(ticket, n),
                None => inner.tickets.remove(&ticket),
            };
        }
        if let Some(t) = next_ticket_before {
            inner.next_ticket = t;
        }
    }

    /// Makes the transaction durable (journal first) and visible (audit ring).
    fn commit(mut self) -> Result<()> {
        let now = self.now;
        let first = self.inner.audit.next_seq();
        let entries: Vec<AuditEntry> = std::mem::take(&mut self.staged)
            .into_iter()
            .enumerate()
            .map(|(i, r)| self.inner.audit.entry(r, now, first + i as u64))
            .collect();
        if let Some(journal) = self.inner.journal.as_mut() {
            let nodes = &self.inner.nodes;
            let mut records: Vec<RecordOut<'_>> = self
                .touched
                .iter()
                .map(|(id, _)| match nodes.get(id) {
                    Some(node) => RecordOut::Node { node },
                    None => RecordOut::Forget { id },
                })
                .collect();
            if self.next_ticket_before.is_some() {
                records.push(RecordOut::NextTicket {
                    next_ticket: self.inner.next_ticket,
                });
            }
            records.extend(entries.iter().map(|entry| RecordOut::Audit { entry }));
            if let Err(e) = journal.append(&records) {
                drop(records);
                self.rollback();
                return Err(e);
            }
        }
        for e in entries {
            self.inner.audit.push(e);
        }
        let inner = &mut *self.inner;
        if let Some(journal) = inner.journal.as_mut() {
            let (nodes, next_ticket, audit) = (&inner.nodes, inner.next_ticket, &inner.audit);
            journal.maybe_compact(|| FleetState {
                nodes: nodes.values().cloned().collect(),
                next_ticket,
                audit: audit.state(),
            });
        }
        Ok(())
    }
}

/// Builds a [`Fleet`]: options, clock, and optionally a data directory to persist to.
pub struct FleetBuilder {
    options: FleetOptions,
    clock: Option<Arc<dyn Clock>>,
    manual_start: Option<Timestamp>,
    data_dir: Option<(PathBuf, StorageOptions)>,
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

    pub fn build(self) -> Result<Fleet> {
        self.options.validate()?;
        let (clock, manual_clock): (Arc<dyn Clock>, _) = match (self.clock, self.manual_start) {
            (_, Some(start)) => {
                let c = Arc::new(ManualClock::new(start));
                (c.clone(), Some(c))
            }
            (Some(c), None) => (c, None),
            (None, None) => (Arc::new(SystemClock), None),
        };
        let mut inner = Inner::new(&self.options);
        let mut open_report = None;
        if let Some((dir, storage)) = self.data_dir {
            let opened = Journal::open(&dir, storage)?;
            let mut journal = opened.journal;
            if let Some(state) = opened.state {
                inner.restore(state, self.options.audit_capacity);
            }
            enter_recovery(&mut inner, clock.now(), &opened.report);
            // The restored state and its recovery entries become the next generation's snapshot.
            journal.compact(inner.fleet_state())?;
            inner.journal = Some(journal);
            open_report = Some(opened.report);
        }
        Ok(Fleet {
            inner: RwLock::new(inner),
            clock,
            manual_clock,
            open_report,
        })
    }
}

/// After a restart nobody knows what the restored nodes run now: every cloud node waits for
/// its container sync, then the post-sync grace (rule 7). Both are audited, and so is a torn
/// journal tail.
fn enter_recovery(inner: &mut Inner, now: Timestamp, report: &OpenReport) {
    let Inner {
        nodes,
        audit,
        policy,
        ..
    } = inner;
    for node in nodes.values_mut() {
        let protected = matches!(node.origin, NodeOrigin::System | NodeOrigin::Dedicated);
        if node.state.is_terminal() || protected {
            continue;
        }
        node.metrics.recovered_at_ms = Some(now);
        node.metrics.container_sync_pending_since_ms = Some(now);
        let rec = AuditRecord::new(AuditAction::Recovery, &node.id, AuditResult::Success)
            .reason(0, "restored_after_restart")
            .snapshot(StateSnapshot::of(node, policy, now));
        audit.append(rec, now);
    }
    if report.torn_tail_bytes > 0 {
        let rec = AuditRecord::new(AuditAction::Recovery, "-", AuditResult::Failed)
            .reason(0, "journal_tail_skipped")
            .error(format!(
                "{} bytes at the end of the journal failed their checksum (a torn write) and were skipped",
                report.torn_tail_bytes
            ));
        audit.append(rec, now);
    }
}

/// The thread-safe registry of nodes. Share it with `Arc<Fleet>`; every method takes `&self`.
pub struct Fleet {
    inner: RwLock<Inner>,
    clock: Arc<dyn Clock>,
    manual_clock: Option<Arc<ManualClock>>,
    open_report: Option<OpenReport>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.inner.read();
        f.debug_struct("Fleet")
            .field("nodes", &g.nodes.len())
            .field("audit_retained", &g.audit.len())
            .field("manual_clock", &self.manual_clock.is_some())
            .field("persistent", &g.journal.is_some())
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
        }
    }

    /// An in-memory fleet on the wall clock.
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

    /// Runs one mutation: lock, read the clock once, apply, commit (journal first) or roll back.
    fn mutate<R>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<R>) -> Result<R> {
        let now = self.clock.now();
        let mut g = self.inner.write();
        let mut tx = Tx::new(&mut g, now);
        let out = f(&mut tx);
        if out.is_err() && !tx.keep_on_error {
            tx.rollback();
            return out;
        }
        tx.commit()?;
        out
    }

    /// The library clock's current time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Moves a manual clock forward; an error on any other clock.
    pub fn advance_clock(&self, d: Duration) -> Result<Timestamp> {
        let c = self.manual_clock.as_ref().ok_or(Error::NotManualClock)?;
        c.advance(d);
        Ok(c.now())
    }

    /// Sets a manual clock; an error on any other clock.
    pub fn set_clock(&self, t: Timestamp) -> Result<()> {
        let c = self.manual_clock.as_ref().ok_or(Error::NotManualClock)?;
        c.set(t);
        Ok(())
    }

    pub fn policy(&self) -> Policy {
        self.inner.read().policy
    }

    /// Replaces the policy; takes effect for the next decision. The policy is configuration,
    /// not state: a persistent fleet takes it from its options when reopened.
    pub fn set_policy(&self, policy: Policy) -> Result<()> {
        policy.validate()?;
        self.inner.write().policy = policy;
        Ok(())
    }

    // ----- persistence -----------------------------------------------------------------------

    /// What reopening the data directory found; `None` for an in-memory fleet.
    pub fn open_report(&self) -> Option<&OpenReport> {
        self.open_report.as_ref()
    }

    /// The storage's state; `None` for an in-memory fleet.
    pub fn storage_status(&self) -> Option<StorageStatus> {
        self.inner.read().journal.as_ref().map(Journal::status)
    }

    /// Forces journaled mutations to disk (useful with [`crate::SyncPolicy::Batched`]).
    pub fn sync(&self) -> Result<()> {
        match self.inner.write().journal.as_mut() {
            Some(j) => j.sync(),
            None => Ok(()),
        }
    }

    /// Writes a snapshot and starts a new journal now.
    pub fn compact(&self) -> Result<()> {
        let mut g = self.inner.write();
        let state = g.fleet_state();
        match g.journal.as_mut() {
            Some(j) => j.compact(state),
            None => Ok(()),
        }
    }

    // ----- registration ----------------------------------------------------------------------

    /// Registers a node. Its origin decides the starting state (see [`NodeSpec`]).
    pub fn register(&self, spec: NodeSpec) -> Result<NodeInfo> {
        self.mutate(|tx| {
            let node = Node::from_spec(&spec, tx.now)?;
            if tx.inner.nodes.contains_key(&spec.id) {
                return Err(Error::NodeExists(spec.id.clone()));
            }
            tx.insert(node);
            let mut ctx = tx.node(&spec.id)?;
            let (action, reason) = match spec.origin {
                NodeOrigin::Cloud => (AuditAction::NodeProvision, "registered_cloud_node"),
                NodeOrigin::Recovered => (AuditAction::Recovery, "registered_recovered_node"),
                NodeOrigin::System => (AuditAction::LifecycleTransition, "registered_system_node"),
                NodeOrigin::Dedicated => (
                    AuditAction::LifecycleTransition,
                    "registered_dedicated_node",
                ),
            };
            let state = ctx.node.state;
            ctx.record(
                AuditRecord::new(action, &spec.id, AuditResult::Success)
                    .reason(0, reason)
                    .states(state, state),
            );
            Ok(NodeInfo::of(ctx.node, ctx.policy, ctx.now))
        })
    }

    /// Forgets a decommissioned node (its audit entries stay). Long-running fleets call this so
    /// that deleted VMs do not accumulate.
    pub fn forget(&self, id: &str) -> Result<()> {
        self.mutate(|tx| {
            let state = tx.node_ref(id)?.state;
            if state != LifecycleState::Decommissioned {
                return Err(Error::InvalidArgument(format!(
                    "node {id:?} is {state}; only decommissioned nodes can be forgotten"
                )));
            }
            tx.remove(id);
            Ok(())
        })
    }

    // ----- lifecycle -------------------------------------------------------------------------

    /// Moves a node along the transition table, recording `reason`.
    ///
    /// A transition to the current state is a no-op (`Ok(None)`). Entering `draining` or
    /// `decommissioned` this way must pass the safety verdict like any deletion; a refusal is
    /// audited. A node with an outstanding decommission ticket only moves through
    /// complete/cancel.
    pub fn transition(
        &self,
        id: &str,
        to: LifecycleState,
        reason: &str,
    ) -> Result<Option<StateChange>> {
        validate_name("reason", reason)?;
        self.mutate(|tx| {
            let current = tx.node_ref(id)?.state;
            if current == to {
                return Ok(None);
            }
            let mut ctx = tx.node(id)?;
            if crate::state::is_allowed_transition(current, to) {
                let guard = if ctx.node.drain.is_some() {
                    Some(Verdict::refused(
                        current,
                        ReasonCode::DecommissionInProgress,
                    ))
                } else if matches!(
                    to,
                    LifecycleState::Draining | LifecycleState::Decommissioned
                ) {
                    Some(evaluate(ctx.node, ctx.policy, ctx.now)).filter(|v| !v.allowed)
                } else {
                    None
                };
                if let Some(verdict) = guard {
                    ctx.record_rejection(AuditAction::LifecycleTransition, &verdict, "");
                    tx.keep_on_error = true;
                    return Err(Error::Rejected {
                        node: id.to_owned(),
                        verdict: Box::new(verdict),
                    });
                }
            }
            ctx.transition(to, reason, "")
        })
    }

    /// Takes one health-check result and applies the health policy.
    pub fn report_health(&self, id: &str, healthy: bool) -> Result<HealthOutcome> {
        self.mutate(|tx| {
            let threshold = tx.inner.policy.unhealthy_threshold;
            let mut ctx = tx.node(id)?;
            if !ctx.node.state.is_terminal() {
                // While a decommission is in flight, health changes nothing about the lifecycle:
                // the deletion decision stands until it is completed or cancelled.
                let in_flight = ctx.node.drain.is_some();
                if healthy {
                    ctx.node.consecutive_health_failures = 0;
                    ctx.node.health = HealthStatus::Healthy;
                    if ctx.node.state == LifecycleState::Unhealthy && !in_flight {
                        ctx.transition(LifecycleState::Ready, "health_check_recovered", "")?;
                    }
                } else {
                    ctx.node.consecutive_health_failures =
                        ctx.node.consecutive_health_failures.saturating_add(1);
                    if ctx.node.consecutive_health_failures >= threshold {
                        ctx.node.health = HealthStatus::Unhealthy;
                        if ctx.node.state.is_productive() && !in_flight {
                            ctx.transition(LifecycleState::Unhealthy, "health_check_failed", "")?;
                        }
                    }
                }
            }
            Ok(HealthOutcome {
                health: ctx.node.health,
                state: ctx.node.state,
                consecutive_failures: ctx.node.consecutive_health_failures,
            })
        })
    }

    /// Applies the timers: nodes stuck starting past the provisioning timeout become unhealthy,
    /// and pending container syncs past the sync timeout complete (both audited). Call it
    /// periodically, e.g. on every health tick.
    pub fn tick(&self) -> Result<TickReport> {
        self.mutate(|tx| {
            let now = tx.now;
            let policy = tx.inner.policy;
            let timeout = Duration::from_millis(policy.provisioning_timeout_ms);
            // Find the nodes whose timers fired first, so only they are touched.
            let due: Vec<(String, bool, Option<Timestamp>)> = tx
                .inner
                .nodes
                .values()
                .filter_map(|n| {
                    let stuck =
                        n.state.is_starting() && now >= n.metrics.provisioned_at_ms.plus(timeout);
                    let synced = if n.metrics.container_sync_pending_since_ms.is_some() {
                        effective_sync_completion(n, &policy, now)
                    } else {
                        None
                    };
                    (stuck || synced.is_some()).then(|| (n.id.clone(), stuck, synced))
                })
                .collect();
            let mut report = TickReport::default();
            for (id, stuck, synced) in due {
                let mut ctx = tx.node(&id)?;
                if stuck {
                    ctx.transition(LifecycleState::Unhealthy, "provisioning_timeout", "")?;
                    report.provisioning_timeouts.push(id.clone());
                }
                if let Some(deadline) = synced {
                    ctx.node.complete_sync(deadline);
                    ctx.record(
                        AuditRecord::new(AuditAction::Recovery, &id, AuditResult::Success)
                            .reason(0, "container_sync_timeout"),
                    );
                    report.sync_timeouts.push(id);
                }
            }
            Ok(report)
        })
    }

    /// Ends the restore pass after a restart: every node whose container sync is still pending
    /// counts as synchronised now (audited). Returns how many nodes it completed.
    pub fn finish_restore(&self) -> Result<usize> {
        self.mutate(|tx| {
            let pending: Vec<String> = tx
                .inner
                .nodes
                .values()
                .filter(|n| n.metrics.container_sync_pending_since_ms.is_some())
                .map(|n| n.id.clone())
                .collect();
            for id in &pending {
                let mut ctx = tx.node(id)?;
                ctx.node.complete_sync(ctx.now);
                ctx.record(
                    AuditRecord::new(AuditAction::Recovery, id, AuditResult::Success)
                        .reason(0, "restore_finished"),
                );
            }
            Ok(pending.len())
        })
    }

    // ----- containers, reservations, holds ---------------------------------------------------

    /// A container started on the node (idempotent by id). Consumes a reservation of the same id.
    pub fn add_container(
        &self,
        id: &str,
        container_id: &str,
        ram_mb: u64,
    ) -> Result<ContainerOutcome> {
        self.mutate(|tx| {
            let mut ctx = tx.node(id)?;
            let added = ctx.node.add_container(container_id, ram_mb, ctx.now)?;
            ctx.settle_occupancy();
            Ok(ctx.outcome(added))
        })
    }

    /// A container stopped; removing an unknown id is a reported no-op (`changed: false`).
    pub fn remove_container(&self, id: &str, container_id: &str) -> Result<ContainerOutcome> {
        self.mutate(|tx| {
            let mut ctx = tx.node(id)?;
            let removed = ctx.node.remove_container(container_id, ctx.now);
            ctx.settle_occupancy();
            Ok(ctx.outcome(removed))
        })
    }

    /// Replaces the node's container view with what it really runs (after a restart or a
    /// health recovery) and completes its pending container sync (audited). A non-empty list
    /// for a node that is being deleted is refused: cancel the decommission first.
    pub fn sync_containers(
        &self,
        id: &str,
        containers: &[(String, u64)],
    ) -> Result<ContainerOutcome> {
        self.mutate(|tx| {
            let mut ctx = tx.node(id)?;
            // Containers found on a node that is being deleted mean the deletion must be
            // cancelled first; accepting them here would let a deletion complete over live
            // containers.
            let deleting = ctx.node.state == LifecycleState::Draining || ctx.node.drain.is_some();
            if ctx.node.state.is_terminal() || (deleting && !containers.is_empty()) {
                return Err(Error::NotSchedulable {
                    node: id.to_owned(),
                    state: ctx.node.state,
                });
            }
            let was_pending = ctx.node.metrics.container_sync_pending_since_ms.is_some();
            ctx.node.sync_containers(containers, ctx.now)?;
            if was_pending {
                ctx.record(
                    AuditRecord::new(AuditAction::Recovery, id, AuditResult::Success)
                        .reason(0, "container_sync_completed"),
                );
            }
            ctx.settle_occupancy();
            Ok(ctx.outcome(true))
        })
    }

    /// Reserves capacity for a placement. Refused on unschedulable nodes and when the node's
    /// known capacity is exceeded. Atomic with respect to `begin_decommission`.
    pub fn reserve(&self, id: &str, container_id: &str, ram_mb: u64) -> Result<bool> {
        self.mutate(|tx| tx.node(id)?.node.reserve(container_id, ram_mb))
    }

    /// Turns a reservation into a running container.
    pub fn confirm_reservation(&self, id: &str, container_id: &str) -> Result<ContainerOutcome> {
        self.mutate(|tx| {
            let mut ctx = tx.node(id)?;
            let ram = ctx.node.reservation(container_id).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "no reservation for container {container_id:?} on node {id:?}"
                ))
            })?;
            let added = ctx.node.add_container(container_id, ram, ctx.now)?;
            ctx.settle_occupancy();
            Ok(ctx.outcome(added))
        })
    }

    /// Drops a reservation (the placement was abandoned); `false` if there was none.
    pub fn release_reservation(&self, id: &str, container_id: &str) -> Result<bool> {
        self.mutate(|tx| Ok(tx.node(id)?.node.release_reservation(container_id)))
    }

    /// Places a named hold (world data of a stopped server, do-not-disrupt, migration in
    /// flight). A node with holds is never drained. `false` if the hold already existed.
    pub fn place_hold(&self, id: &str, name: &str, detail: &str) -> Result<bool> {
        self.mutate(|tx| tx.node(id)?.node.place_hold(name, detail))
    }

    /// Releases a hold; `false` if there was none by that name.
    pub fn release_hold(&self, id: &str, name: &str) -> Result<bool> {
        self.mutate(|tx| Ok(tx.node(id)?.node.release_hold(name)))
    }

    // ----- verdicts --------------------------------------------------------------------------

    /// The safety verdict for one node now.
    pub fn evaluate(&self, id: &str) -> Result<Verdict> {
        let now = self.clock.now();
        let g = self.inner.read();
        Ok(evaluate(g.node(id)?, &g.policy, now))
    }

    /// Verdicts for every node, ordered by node id: a dry run of what a policy may delete now.
    pub fn evaluate_all(&self) -> Vec<NodeVerdict> {
        let now = self.clock.now();
        let g = self.inner.read();
        g.nodes
            .values()
            .map(|n| NodeVerdict {
                node_id: n.id.clone(),
                verdict: evaluate(n, &g.policy, now),
            })
            .collect()
    }

    /// Calls `f` with every node's id and verdict, ordered by id, under one read lock and one
    /// `now`, without allocating per node: the batch path behind the C ABI's
    /// `nl_fleet_evaluate_all`.
    pub fn with_verdicts(&self, mut f: impl FnMut(&str, &Verdict)) {
        let now = self.clock.now();
        let g = self.inner.read();
        for n in g.nodes.values() {
            f(&n.id, &evaluate(n, &g.policy, now));
        }
    }

    // ----- two-phase decommission ------------------------------------------------------------

    /// Phase 1: under one lock, evaluates the node and, if allowed, moves it to `draining` and
    /// returns a ticket. A refusal records a `rejected` entry and returns
    /// [`Error::Rejected`]; an unknown node records a `failed` entry (`node_not_found`).
    pub fn begin_decommission(&self, id: &str, decision_by: &str) -> Result<DecommissionTicket> {
        validate_name("decision_by", decision_by)?;
        validate_name("node id", id)?;
        self.mutate(|tx| {
            if !tx.inner.nodes.contains_key(id) {
                tx.stage(
                    AuditRecord::new(AuditAction::NodeDecommission, id, AuditResult::Failed)
                        .reason(ReasonCode::NodeNotFound.code(), "node not found")
                        .decision_by(decision_by)
                        .error(format!("node {id:?} not found")),
                );
                tx.keep_on_error = true;
                return Err(Error::NodeNotFound(id.to_owned()));
            }
            let mut ctx = tx.node(id)?;
            let verdict = match &ctx.node.drain {
                Some(_) => Verdict::refused(ctx.node.state, ReasonCode::DecommissionInProgress),
                None => evaluate(ctx.node, ctx.policy, ctx.now),
            };
            if !verdict.allowed {
                ctx.record_rejection(AuditAction::NodeDecommission, &verdict, decision_by);
                tx.keep_on_error = true;
                return Err(Error::Rejected {
                    node: id.to_owned(),
                    verdict: Box::new(verdict),
                });
            }
            // An unhealthy node is not schedulable already and the table has no unhealthy ->
            // draining edge, so it keeps its state; every other allowed node starts draining.
            if ctx.node.state != LifecycleState::Unhealthy {
                ctx.transition(
                    LifecycleState::Draining,
                    "decommission_started",
                    decision_by,
                )?;
            }
            let ticket = tx.issue_ticket(id);
            let ctx = tx.node(id)?;
            ctx.node.drain = Some(DrainTicket {
                ticket,
                decision_by: decision_by.to_owned(),
                issued_at_ms: ctx.now,
            });
            Ok(DecommissionTicket {
                id: ticket,
                node_id: id.to_owned(),
            })
        })
    }

    /// Phase 3 (success): the VM is deleted. The node becomes `decommissioned`; a `success`
    /// entry is recorded. The ticket is used up.
    pub fn complete_decommission(&self, ticket: u64) -> Result<()> {
        self.mutate(|tx| {
            let mut ctx = tx.ticket_node(ticket)?;
            let drain = ctx.take_drain();
            ctx.record(
                AuditRecord::new(
                    AuditAction::NodeDecommission,
                    &ctx.node.id,
                    AuditResult::Success,
                )
                .reason(0, "decommission completed")
                .decision_by(drain.decision_by.clone()),
            );
            ctx.transition(
                LifecycleState::Decommissioned,
                "decommission_completed",
                &drain.decision_by,
            )?;
            tx.set_ticket(ticket, None);
            Ok(())
        })
    }

    /// Phase 3 (failure): deleting the VM failed. Records a `failed` entry with `error`; the node
    /// stays draining and the ticket stays valid, to be completed, failed again or cancelled.
    pub fn fail_decommission(&self, ticket: u64, error: &str) -> Result<()> {
        if error.is_empty() {
            return Err(Error::InvalidArgument(
                "error text must not be empty".into(),
            ));
        }
        self.mutate(|tx| {
            let mut ctx = tx.ticket_node(ticket)?;
            let by = ctx
                .node
                .drain
                .as_ref()
                .map(|d| d.decision_by.clone())
                .unwrap_or_default();
            let rec = AuditRecord::new(
                AuditAction::NodeDecommission,
                &ctx.node.id,
                AuditResult::Failed,
            )
            .reason(0, "provider deletion failed")
            .decision_by(by)
            .error(error);
            ctx.record(rec);
            Ok(())
        })
    }

    /// Abandons the decommission: the node returns to its state before draining (ready or
    /// idle), audited. The ticket is used up. Returns the state the node is in afterwards.
    pub fn cancel_decommission(&self, ticket: u64, reason: &str) -> Result<LifecycleState> {
        validate_name("reason", reason)?;
        self.mutate(|tx| {
            let mut ctx = tx.ticket_node(ticket)?;
            let drain = ctx.take_drain();
            let reason = format!("decommission_cancelled: {reason}");
            match ctx.node.restore_from_drain(ctx.now) {
                Some(change) => ctx.record_change(change, &reason, &drain.decision_by),
                None => {
                    // An unhealthy node never left its state; record the cancellation itself.
                    let state = ctx.node.state;
                    let rec = AuditRecord::new(
                        AuditAction::LifecycleTransition,
                        &ctx.node.id,
                        AuditResult::Success,
                    )
                    .reason(0, reason)
                    .decision_by(drain.decision_by)
                    .states(state, state);
                    ctx.record(rec);
                }
            }
            let state = ctx.node.state;
            tx.set_ticket(ticket, None);
            Ok(state)
        })
    }

    // ----- views -----------------------------------------------------------------------------

    pub fn node(&self, id: &str) -> Result<NodeInfo> {
        let now = self.clock.now();
        let g = self.inner.read();
        Ok(NodeInfo::of(g.node(id)?, &g.policy, now))
    }

    /// Every node, ordered by id.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        let now = self.clock.now();
        let g = self.inner.read();
        g.nodes
            .values()
            .map(|n| NodeInfo::of(n, &g.policy, now))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.inner.read().nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `f` over the nodes under the read lock, with the policy and one `now`: the entry
    /// point for planning code that must see one consistent fleet.
    pub fn with_nodes<R>(
        &self,
        f: impl FnOnce(&mut dyn Iterator<Item = &Node>, &Policy, Timestamp) -> R,
    ) -> R {
        let now = self.clock.now();
        let g = self.inner.read();
        f(&mut g.nodes.values(), &g.policy, now)
    }

    // ----- planning --------------------------------------------------------------------------

    /// Capacity now, coming (still starting) and leaving (draining), with utilisation.
    pub fn projection(&self) -> FleetProjection {
        let now = self.clock.now();
        let g = self.inner.read();
        planning::project(g.nodes.values(), &g.policy, now)
    }

    /// A consolidation plan over the whole fleet: which nodes to remove, where their containers
    /// go, the savings, and why every other node stays. Read-only: nothing is changed.
    pub fn consolidation_plan(&self, request: &ConsolidationRequest) -> Result<ConsolidationPlan> {
        let now = self.clock.now();
        let non_migratable: BTreeSet<String> =
            request.non_migratable_containers.iter().cloned().collect();
        let input = {
            let g = self.inner.read();
            PlanInput {
                nodes: g
                    .nodes
                    .values()
                    .map(|n| planning::plan_node(n, &g.policy, now, &non_migratable))
                    .collect(),
                pending_placements: g.nodes.values().map(|n| n.reservation_count() as u64).sum(),
                last_consolidation_at_ms: request.last_consolidation_at_ms,
            }
        };
        planning::plan_consolidation(&input, &request.policy, now)
    }

    /// Records that a container moved from one node to another, atomically: it leaves
    /// `from_node` (which may become idle) and runs on `to_node` (which must be schedulable and
    /// have room), and a `container_migrate` entry is recorded.
    pub fn record_migration(
        &self,
        container_id: &str,
        from_node: &str,
        to_node: &str,
        decision_by: &str,
    ) -> Result<()> {
        validate_name("decision_by", decision_by)?;
        if from_node == to_node {
            return Err(Error::InvalidArgument(
                "a migration needs two different nodes".into(),
            ));
        }
        self.mutate(|tx| {
            let ram = *tx
                .node_ref(from_node)?
                .containers
                .get(container_id)
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "container {container_id:?} is not on node {from_node:?}"
                    ))
                })?;
            if let Some(free) = tx.node_ref(to_node)?.free_ram_mb() {
                if ram > free {
                    return Err(Error::InsufficientCapacity {
                        node: to_node.to_owned(),
                        requested_mb: ram,
                        free_mb: free,
                    });
                }
            }
            // Add first: it is the step that can be refused, and nothing has changed yet if it is.
            let mut to = tx.node(to_node)?;
            to.node.add_container(container_id, ram, to.now)?;
            to.settle_occupancy();
            let mut from = tx.node(from_node)?;
            from.node.remove_container(container_id, from.now);
            from.settle_occupancy();
            let rec = AuditRecord::new(
                AuditAction::ContainerMigrate,
                from_node,
                AuditResult::Success,
            )
            .container(container_id)
            .reason(0, format!("moved to {to_node}"))
            .decision_by(decision_by);
            from.record(rec);
            Ok(())
        })
    }

    // ----- audit -----------------------------------------------------------------------------

    /// Records an entry for an action the caller performed (scale up/down, a migration). The
    /// node's snapshot is attached when the node is known. Returns the sequence number.
    pub fn record_audit(&self, record: AuditRecord) -> Result<u64> {
        validate_name("node id", &record.node_id)?;
        if let Some(c) = &record.container_id {
            validate_name("container id", c)?;
        }
        self.mutate(|tx| {
            let seq = tx.inner.audit.next_seq();
            let record = match tx.inner.nodes.get(&record.node_id) {
                Some(node) => {
                    let snap = StateSnapshot::of(node, &tx.inner.policy, tx.now);
                    record.snapshot(snap)
                }
                None => record,
            };
            tx.stage(record);
            Ok(seq)
        })
    }

    /// The newest `n` entries, oldest first.
    pub fn audit_recent(&self, n: usize) -> Vec<AuditEntry> {
        self.inner.read().audit.recent(n)
    }

    pub fn audit_by_node(&self, node_id: &str, limit: usize) -> Vec<AuditEntry> {
        self.inner.read().audit.by_node(node_id, limit)
    }

    pub fn audit_by_action(&self, action: AuditAction, limit: usize) -> Vec<AuditEntry> {
        self.inner.read().audit.by_action(action, limit)
    }

    pub fn audit_by_result(&self, result: AuditResult, limit: usize) -> Vec<AuditEntry> {
        self.inner.read().audit.by_result(result, limit)
    }

    /// Entries after `cursor` (a sequence number), oldest first, with the reader's gap.
    pub fn audit_since(&self, cursor: u64, limit: usize) -> AuditPage {
        self.inner.read().audit.since(cursor, limit)
    }

    pub fn audit_stats(&self) -> AuditStats {
        self.inner.read().audit.stats()
    }
}
