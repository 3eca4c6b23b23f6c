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
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
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
}

/// Mutable access to one node together with the audit ring and policy: the borrow every
/// mutation needs.
struct NodeCtx<'a> {
    node: &'a mut Node,
    audit: &'a mut AuditRing,
    policy: &'a Policy,
    now: Timestamp,
}

impl NodeCtx<'_> {
    fn snapshot(&self) -> StateSnapshot {
        StateSnapshot::of(self.node, self.policy, self.now)
    }

    fn record(&mut self, rec: AuditRecord) -> u64 {
        let rec = rec.snapshot(self.snapshot());
        self.audit.append(rec, self.now)
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

    fn outcome(&self, changed: bool) -> ContainerOutcome {
        ContainerOutcome {
            changed,
            state: self.node.state,
            current_containers: self.node.container_count() as u64,
        }
    }
}

impl Inner {
    fn ctx(&mut self, id: &str, now: Timestamp) -> Result<NodeCtx<'_>> {
        let node = self
            .nodes
            .get_mut(id)
            .ok_or_else(|| Error::NodeNotFound(id.to_owned()))?;
        Ok(NodeCtx {
            node,
            audit: &mut self.audit,
            policy: &self.policy,
            now,
        })
    }

    fn node(&self, id: &str) -> Result<&Node> {
        self.nodes
            .get(id)
            .ok_or_else(|| Error::NodeNotFound(id.to_owned()))
    }

    /// The node holding the outstanding decommission `ticket`.
    fn ticket_ctx(&mut self, ticket: u64, now: Timestamp) -> Result<NodeCtx<'_>> {
        let id = self
            .tickets
            .get(&ticket)
            .ok_or(Error::TicketInvalid(ticket))?
            .clone();
        let ctx = self.ctx(&id, now)?;
        match &ctx.node.drain {
            Some(d) if d.ticket == ticket => Ok(ctx),
            _ => Err(Error::TicketInvalid(ticket)),
        }
    }
}

/// The thread-safe registry of nodes. Share it with `Arc<Fleet>`; every method takes `&self`.
pub struct Fleet {
    inner: RwLock<Inner>,
    clock: Arc<dyn Clock>,
    manual_clock: Option<Arc<ManualClock>>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.inner.read();
        f.debug_struct("Fleet")
            .field("nodes", &g.nodes.len())
            .field("audit_retained", &g.audit.len())
            .field("manual_clock", &self.manual_clock.is_some())
            .finish()
    }
}

impl Fleet {
    /// A fleet on the wall clock.
    pub fn new(options: FleetOptions) -> Result<Fleet> {
        Self::build(options, Arc::new(SystemClock), None)
    }

    /// A fleet on a caller-supplied clock.
    pub fn with_clock(options: FleetOptions, clock: Arc<dyn Clock>) -> Result<Fleet> {
        Self::build(options, clock, None)
    }

    /// A fleet on a manual clock starting at `start`; move it with [`Fleet::advance_clock`].
    pub fn with_manual_clock(options: FleetOptions, start: Timestamp) -> Result<Fleet> {
        let clock = Arc::new(ManualClock::new(start));
        Self::build(options, clock.clone(), Some(clock))
    }

    fn build(
        options: FleetOptions,
        clock: Arc<dyn Clock>,
        manual_clock: Option<Arc<ManualClock>>,
    ) -> Result<Fleet> {
        options.validate()?;
        Ok(Fleet {
            inner: RwLock::new(Inner {
                nodes: BTreeMap::new(),
                tickets: HashMap::new(),
                next_ticket: 1,
                audit: AuditRing::new(options.audit_capacity),
                policy: options.policy,
            }),
            clock,
            manual_clock,
        })
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

    /// Replaces the policy; takes effect for the next decision.
    pub fn set_policy(&self, policy: Policy) -> Result<()> {
        policy.validate()?;
        self.inner.write().policy = policy;
        Ok(())
    }

    // ----- registration -------------------------------------------------------------------

    /// Registers a node. Its origin decides the starting state (see [`NodeSpec`]).
    pub fn register(&self, spec: NodeSpec) -> Result<NodeInfo> {
        let now = self.clock.now();
        let node = Node::from_spec(&spec, now)?;
        let mut g = self.inner.write();
        if g.nodes.contains_key(&spec.id) {
            return Err(Error::NodeExists(spec.id));
        }
        g.nodes.insert(spec.id.clone(), node);
        let mut ctx = g.ctx(&spec.id, now)?;
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
        Ok(NodeInfo::of(ctx.node, ctx.policy, now))
    }

    /// Forgets a decommissioned node (its audit entries stay). Long-running fleets call this so
    /// that deleted VMs do not accumulate.
    pub fn forget(&self, id: &str) -> Result<()> {
        let mut g = self.inner.write();
        let state = g.node(id)?.state;
        if state != LifecycleState::Decommissioned {
            return Err(Error::InvalidArgument(format!(
                "node {id:?} is {state}; only decommissioned nodes can be forgotten"
            )));
        }
        g.nodes.remove(id);
        Ok(())
    }

    // ----- lifecycle ----------------------------------------------------------------------

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
        let now = self.clock.now();
        let mut g = self.inner.write();
        let mut ctx = g.ctx(id, now)?;
        if ctx.node.state == to {
            return Ok(None);
        }
        if crate::state::is_allowed_transition(ctx.node.state, to) {
            let guard = if ctx.node.drain.is_some() {
                Some(Verdict::refused(
                    ctx.node.state,
                    ReasonCode::DecommissionInProgress,
                ))
            } else if matches!(
                to,
                LifecycleState::Draining | LifecycleState::Decommissioned
            ) {
                Some(evaluate(ctx.node, ctx.policy, now)).filter(|v| !v.allowed)
            } else {
                None
            };
            if let Some(verdict) = guard {
                ctx.record_rejection(AuditAction::LifecycleTransition, &verdict, "");
                return Err(Error::Rejected {
                    node: id.to_owned(),
                    verdict: Box::new(verdict),
                });
            }
        }
        ctx.transition(to, reason, "")
    }

    /// Takes one health-check result and applies the health policy.
    pub fn report_health(&self, id: &str, healthy: bool) -> Result<HealthOutcome> {
        let now = self.clock.now();
        let mut g = self.inner.write();
        let threshold = g.policy.unhealthy_threshold;
        let mut ctx = g.ctx(id, now)?;
        let node = &mut *ctx.node;
        if !node.state.is_terminal() {
            // While a decommission is in flight, health changes nothing about the lifecycle:
            // the deletion decision stands until it is completed or cancelled.
            let in_flight = node.drain.is_some();
            if healthy {
                node.consecutive_health_failures = 0;
                node.health = HealthStatus::Healthy;
                if node.state == LifecycleState::Unhealthy && !in_flight {
                    ctx.transition(LifecycleState::Ready, "health_check_recovered", "")?;
                }
            } else {
                node.consecutive_health_failures =
                    node.consecutive_health_failures.saturating_add(1);
                if node.consecutive_health_failures >= threshold {
                    node.health = HealthStatus::Unhealthy;
                    if node.state.is_productive() && !in_flight {
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
    }

    /// Applies the timers: nodes stuck starting past the provisioning timeout become unhealthy,
    /// and pending container syncs past the sync timeout complete (both audited). Call it
    /// periodically, e.g. on every health tick.
    pub fn tick(&self) -> TickReport {
        let now = self.clock.now();
        let mut g = self.inner.write();
        let Inner {
            nodes,
            audit,
            policy,
            ..
        } = &mut *g;
        let mut report = TickReport::default();
        let timeout = Duration::from_millis(policy.provisioning_timeout_ms);
        for node in nodes.values_mut() {
            let mut ctx = NodeCtx {
                node,
                audit,
                policy,
                now,
            };
            let started = ctx.node.metrics.provisioned_at_ms;
            if ctx.node.state.is_starting() && now >= started.plus(timeout) {
                if let Ok(Some(_)) =
                    ctx.transition(LifecycleState::Unhealthy, "provisioning_timeout", "")
                {
                    report.provisioning_timeouts.push(ctx.node.id.clone());
                }
            }
            if ctx.node.metrics.container_sync_pending_since_ms.is_some() {
                if let Some(deadline) = effective_sync_completion(ctx.node, ctx.policy, now) {
                    ctx.node.complete_sync(deadline);
                    let rec =
                        AuditRecord::new(AuditAction::Recovery, &ctx.node.id, AuditResult::Success)
                            .reason(0, "container_sync_timeout");
                    ctx.record(rec);
                    report.sync_timeouts.push(ctx.node.id.clone());
                }
            }
        }
        report
    }

    /// Ends the restore pass after a restart: every node whose container sync is still pending
    /// counts as synchronised now (audited). Returns how many nodes it completed.
    pub fn finish_restore(&self) -> usize {
        let now = self.clock.now();
        let mut g = self.inner.write();
        let Inner {
            nodes,
            audit,
            policy,
            ..
        } = &mut *g;
        let mut completed = 0;
        for node in nodes.values_mut() {
            if node.complete_sync(now) {
                let mut ctx = NodeCtx {
                    node,
                    audit,
                    policy,
                    now,
                };
                let rec =
                    AuditRecord::new(AuditAction::Recovery, &ctx.node.id, AuditResult::Success)
                        .reason(0, "restore_finished");
                ctx.record(rec);
                completed += 1;
            }
        }
        completed
    }

    // ----- containers, reservations, holds ------------------------------------------------

    /// A container started on the node (idempotent by id). Consumes a reservation of the same id.
    pub fn add_container(
        &self,
        id: &str,
        container_id: &str,
        ram_mb: u64,
    ) -> Result<ContainerOutcome> {
        let now = self.clock.now();
        let mut g = self.inner.write();
        let mut ctx = g.ctx(id, now)?;
        let added = ctx.node.add_container(container_id, ram_mb, now)?;
        ctx.settle_occupancy();
        Ok(ctx.outcome(added))
    }

    /// A container stopped; removing an unknown id is a reported no-op (`changed: false`).
    pub fn remove_container(&self, id: &str, container_id: &str) -> Result<ContainerOutcome> {
        let now = self.clock.now();
        let mut g = self.inner.write();
        let mut ctx = g.ctx(id, now)?;
        let removed = ctx.node.remove_container(container_id, now);
        ctx.settle_occupancy();
        Ok(ctx.outcome(removed))
    }

    /// Replaces the node's container view with what it really runs (after a restart or a
    /// health recovery) and completes its pending container sync (audited). A non-empty list
    /// for a node that is being deleted is refused: cancel the decommission first.
    pub fn sync_containers(
        &self,
        id: &str,
        containers: &[(String, u64)],
    ) -> Result<ContainerOutcome> {
        let now = self.clock.now();
        let mut g = self.inner.write();
        let mut ctx = g.ctx(id, now)?;
        // Containers found on a node that is being deleted mean the deletion must be cancelled
        // first; accepting them here would let a deletion complete over live containers.
        let deleting = ctx.node.state == LifecycleState::Draining || ctx.node.drain.is_some();
        if ctx.node.state.is_terminal() || (deleting && !containers.is_empty()) {
            return Err(Error::NotSchedulable {
                node: id.to_owned(),
                state: ctx.node.state,
            });
        }
        let was_pending = ctx.node.metrics.container_sync_pending_since_ms.is_some();
        ctx.node.sync_containers(containers, now)?;
        if was_pending {
            let rec = AuditRecord::new(AuditAction::Recovery, id, AuditResult::Success)
                .reason(0, "container_sync_completed");
            ctx.record(rec);
        }
        ctx.settle_occupancy();
        Ok(ctx.outcome(true))
    }

    /// Reserves capacity for a placement. Refused on unschedulable nodes and when the node's
    /// known capacity is exceeded. Atomic with respect to `begin_decommission`.
    pub fn reserve(&self, id: &str, container_id: &str, ram_mb: u64) -> Result<bool> {
        let now = self.clock.now();
        let mut g = self.inner.write();
        g.ctx(id, now)?.node.reserve(container_id, ram_mb)
    }

    /// Turns a reservation into a running container.
    pub fn confirm_reservation(&self, id: &str, container_id: &str) -> Result<ContainerOutcome> {
        let now = self.clock.now();
        let mut g = self.inner.write();
        let mut ctx = g.ctx(id, now)?;
        let ram = ctx.node.reservation(container_id).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "no reservation for container {container_id:?} on node {id:?}"
            ))
        })?;
        let added = ctx.node.add_container(container_id, ram, now)?;
        ctx.settle_occupancy();
        Ok(ctx.outcome(added))
    }

    /// Drops a reservation (the placement was abandoned); `false` if there was none.
    pub fn release_reservation(&self, id: &str, container_id: &str) -> Result<bool> {
        let now = self.clock.now();
        let mut g = self.inner.write();
        Ok(g.ctx(id, now)?.node.release_reservation(container_id))
    }

    /// Places a named hold (world data of a stopped server, do-not-disrupt, migration in
    /// flight). A node with holds is never drained. `false` if the hold already existed.
    pub fn place_hold(&self, id: &str, name: &str, detail: &str) -> Result<bool> {
        let now = self.clock.now();
        let mut g = self.inner.write();
        g.ctx(id, now)?.node.place_hold(name, detail)
    }

    /// Releases a hold; `false` if there was none by that name.
    pub fn release_hold(&self, id: &str, name: &str) -> Result<bool> {
        let now = self.clock.now();
        let mut g = self.inner.write();
        Ok(g.ctx(id, now)?.node.release_hold(name))
    }

    // ----- verdicts ------------------------------------------------------------------------

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

    // ----- two-phase decommission --------------------------------------------------------

    /// Phase 1: under one lock, evaluates the node and, if allowed, moves it to `draining` and
    /// returns a ticket. A refusal records a `rejected` entry and returns
    /// [`Error::Rejected`]; an unknown node records a `failed` entry (`node_not_found`).
    pub fn begin_decommission(&self, id: &str, decision_by: &str) -> Result<DecommissionTicket> {
        validate_name("decision_by", decision_by)?;
        validate_name("node id", id)?;
        let now = self.clock.now();
        let mut g = self.inner.write();
        let inner = &mut *g;
        if !inner.nodes.contains_key(id) {
            let rec = AuditRecord::new(AuditAction::NodeDecommission, id, AuditResult::Failed)
                .reason(ReasonCode::NodeNotFound.code(), "node not found")
                .decision_by(decision_by)
                .error(format!("node {id:?} not found"));
            inner.audit.append(rec, now);
            return Err(Error::NodeNotFound(id.to_owned()));
        }
        let ticket = inner.next_ticket;
        let mut ctx = inner.ctx(id, now)?;
        let verdict = match &ctx.node.drain {
            Some(_) => Verdict::refused(ctx.node.state, ReasonCode::DecommissionInProgress),
            None => evaluate(ctx.node, ctx.policy, now),
        };
        if !verdict.allowed {
            ctx.record_rejection(AuditAction::NodeDecommission, &verdict, decision_by);
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
        ctx.node.drain = Some(DrainTicket {
            ticket,
            decision_by: decision_by.to_owned(),
            issued_at_ms: now,
        });
        inner.next_ticket += 1;
        inner.tickets.insert(ticket, id.to_owned());
        Ok(DecommissionTicket {
            id: ticket,
            node_id: id.to_owned(),
        })
    }

    /// Phase 3 (success): the VM is deleted. The node becomes `decommissioned`; a `success`
    /// entry is recorded. The ticket is used up.
    pub fn complete_decommission(&self, ticket: u64) -> Result<()> {
        let now = self.clock.now();
        let mut g = self.inner.write();
        let mut ctx = g.ticket_ctx(ticket, now)?;
        let drain = ctx
            .node
            .drain
            .take()
            .expect("ticket_ctx checked the ticket");
        let rec = AuditRecord::new(
            AuditAction::NodeDecommission,
            &ctx.node.id,
            AuditResult::Success,
        )
        .reason(0, "decommission completed")
        .decision_by(drain.decision_by.clone());
        ctx.record(rec);
        ctx.transition(
            LifecycleState::Decommissioned,
            "decommission_completed",
            &drain.decision_by,
        )?;
        g.tickets.remove(&ticket);
        Ok(())
    }

    /// Phase 3 (failure): deleting the VM failed. Records a `failed` entry with `error`; the node
    /// stays draining and the ticket stays valid, to be completed, failed again or cancelled.
    pub fn fail_decommission(&self, ticket: u64, error: &str) -> Result<()> {
        if error.is_empty() {
            return Err(Error::InvalidArgument(
                "error text must not be empty".into(),
            ));
        }
        let now = self.clock.now();
        let mut g = self.inner.write();
        let mut ctx = g.ticket_ctx(ticket, now)?;
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
    }

    /// Abandons the decommission: the node returns to its state before draining (ready or
    /// idle), audited. The ticket is used up. Returns the state the node is in afterwards.
    pub fn cancel_decommission(&self, ticket: u64, reason: &str) -> Result<LifecycleState> {
        validate_name("reason", reason)?;
        let now = self.clock.now();
        let mut g = self.inner.write();
        let mut ctx = g.ticket_ctx(ticket, now)?;
        let drain = ctx
            .node
            .drain
            .take()
            .expect("ticket_ctx checked the ticket");
        let reason = format!("decommission_cancelled: {reason}");
        match ctx.node.restore_from_drain(now) {
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
        g.tickets.remove(&ticket);
        Ok(state)
    }

    // ----- views ---------------------------------------------------------------------------

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

    // ----- planning ------------------------------------------------------------------------

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
        let now = self.clock.now();
        let mut g = self.inner.write();
        let ram = *g
            .node(from_node)?
            .containers
            .get(container_id)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "container {container_id:?} is not on node {from_node:?}"
                ))
            })?;
        {
            let target = g.node(to_node)?;
            if let Some(free) = target.free_ram_mb() {
                if ram > free {
                    return Err(Error::InsufficientCapacity {
                        node: to_node.to_owned(),
                        requested_mb: ram,
                        free_mb: free,
                    });
                }
            }
        }
        // Add first: it is the step that can be refused, and nothing has changed yet if it is.
        let mut to = g.ctx(to_node, now)?;
        to.node.add_container(container_id, ram, now)?;
        to.settle_occupancy();
        let mut from = g.ctx(from_node, now)?;
        from.node.remove_container(container_id, now);
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
    }

    // ----- audit ---------------------------------------------------------------------------

    /// Records an entry for an action the caller performed (scale up/down, a migration). The
    /// node's snapshot is attached when the node is known. Returns the sequence number.
    pub fn record_audit(&self, record: AuditRecord) -> Result<u64> {
        validate_name("node id", &record.node_id)?;
        if let Some(c) = &record.container_id {
            validate_name("container id", c)?;
        }
        let now = self.clock.now();
        let mut g = self.inner.write();
        let inner = &mut *g;
        Ok(match inner.nodes.get_mut(&record.node_id) {
            Some(node) => {
                let snap = StateSnapshot::of(node, &inner.policy, now);
                inner.audit.append(record.snapshot(snap), now)
            }
            None => inner.audit.append(record, now),
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
