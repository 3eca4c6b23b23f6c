//! Reading the fleet: verdicts, one node, every node, and pages of nodes with their verdicts.
//! A page costs O(log n + limit) and holds the read lock only while it copies.

use super::{Fleet, Inner};
use crate::clock::{Moment, Timestamp};
use crate::error::Result;
use crate::ids::{ClaimId, TicketId};
use crate::node::{GoneAtProvider, Labels, Node};
use crate::policy::{Policy, OFF};
use crate::safety::{decide, effective_sync_completion, evaluate, Decision, Verdict};
use crate::state::{HealthStatus, LifecycleState, NodeOrigin};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The verdict for one node, as returned by [`Fleet::evaluate_all`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeVerdict {
    pub node_id: String,
    pub verdict: Verdict,
}

/// A cordon as callers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CordonInfo {
    pub name: String,
    pub reason: String,
    pub evacuate: bool,
    pub placed_at_ms: Timestamp,
}

/// A claim (or keyed reservation) as callers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimInfo {
    pub id: ClaimId,
    pub ram_mb: u64,
    pub container_id: Option<String>,
    pub created_at_ms: Timestamp,
    /// When it expires if not confirmed or released; `None` if it never does.
    pub expires_at_ms: Option<Timestamp>,
}

/// An outstanding decommission as callers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketInfo {
    pub ticket: TicketId,
    pub decision_by: String,
    pub issued_at_ms: Timestamp,
    pub pre_drain_state: LifecycleState,
}

/// A node as callers see it: everything the fleet knows, with durations resolved at `now`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: String,
    pub origin: NodeOrigin,
    pub state: LifecycleState,
    pub health: HealthStatus,
    /// Whether placement may put a container here now (ready/active/idle, no cordons).
    pub schedulable: bool,
    pub instance_type: String,
    pub hourly_cost_eur: f64,
    pub labels: Labels,
    pub total_ram_mb: u64,
    pub allocated_ram_mb: u64,
    pub reserved_ram_mb: u64,
    pub containers: BTreeMap<String, u64>,
    pub claims: Vec<ClaimInfo>,
    pub holds: BTreeMap<String, String>,
    pub cordons: Vec<CordonInfo>,
    /// The evacuate cordon under which the node was emptied (the idle grace is waived).
    pub evacuated_by: Option<String>,
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
    pub decommission: Option<TicketInfo>,
    /// Registered before its VM existed and not bound to it yet.
    pub placeholder: bool,
    /// When the last health result was reported.
    pub health_reported_at_ms: Option<Timestamp>,
    /// The provider's confirmation that the VM is gone (an unhealthy node only).
    pub gone_at_provider: Option<GoneAtProvider>,
}

impl NodeInfo {
    pub(crate) fn of(node: &Node, policy: &Policy, now: Moment) -> NodeInfo {
        let m = node.metrics();
        let sync_done = effective_sync_completion(node, policy, now);
        let sync_pending = m.container_sync_pending_since().is_some();
        NodeInfo {
            id: node.id().to_owned(),
            origin: node.origin,
            state: node.state,
            health: node.health,
            schedulable: node.is_schedulable(),
            instance_type: node.instance_type().to_owned(),
            hourly_cost_eur: node.hourly_cost_eur,
            labels: node.labels.clone(),
            total_ram_mb: node.total_ram_mb,
            allocated_ram_mb: node.allocated_ram_mb,
            reserved_ram_mb: node.reserved_ram_mb,
            containers: node.containers().map(|(c, r)| (c.to_owned(), r)).collect(),
            claims: node
                .claims()
                .map(|(id, c)| ClaimInfo {
                    id: *id,
                    ram_mb: c.ram_mb,
                    container_id: c.container_id.as_ref().map(|c| c.to_string()),
                    created_at_ms: c.created_at.wall,
                    expires_at_ms: (c.ttl_ms != OFF).then(|| c.created_at.wall.plus_ms(c.ttl_ms)),
                })
                .collect(),
            holds: node
                .holds()
                .map(|(n, d)| (n.to_owned(), d.to_owned()))
                .collect(),
            cordons: node
                .cordons()
                .map(|(name, c)| CordonInfo {
                    name: name.to_owned(),
                    reason: c.reason.to_string(),
                    evacuate: c.evacuate,
                    placed_at_ms: c.placed_at_ms,
                })
                .collect(),
            evacuated_by: node.evacuation().map(str::to_owned),
            consecutive_health_failures: node.consecutive_health_failures,
            provisioned_at_ms: m.provisioned_at().wall,
            initialized_at_ms: m.initialized_at().map(|t| t.wall),
            first_container_at_ms: m.first_container_at(),
            last_container_at_ms: m.last_container_at().map(|t| t.wall),
            total_containers_ever: m.total_containers_ever(),
            state_entered_at_ms: m.state_entered_at().wall,
            time_in_state_ms: m.time_in_states_ms(node.state, now),
            recovered_at_ms: m.recovered_at(),
            container_sync_pending: sync_pending && sync_done.is_none(),
            container_sync_completed_at_ms: if sync_pending {
                sync_done.map(|t| t.wall)
            } else {
                m.container_sync_completed_at().map(|t| t.wall)
            },
            decommission: node.drain().map(|d| TicketInfo {
                ticket: d.ticket,
                decision_by: d.decision_by.to_string(),
                issued_at_ms: d.issued_at,
                pre_drain_state: d.pre_drain_state,
            }),
            placeholder: node.is_placeholder(),
            health_reported_at_ms: m.health_reported_at(),
            gone_at_provider: node.gone_at_provider().cloned(),
        }
    }
}

/// Which page of nodes to read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeQuery {
    /// Only nodes whose id sorts after this one (the previous page's `next_after`).
    pub after: Option<String>,
    /// Only nodes in this state.
    pub state: Option<LifecycleState>,
    /// At most this many nodes (0 returns none).
    pub limit: usize,
}

/// One node with its verdict, read under the same lock hold (so they agree).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeRow {
    pub node: NodeInfo,
    pub verdict: Verdict,
}

/// A page of nodes, ordered by id.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodePage {
    pub nodes: Vec<NodeRow>,
    /// Set when there may be more: pass it as `after` for the next page.
    pub next_after: Option<String>,
}

impl Inner {
    /// Every node in id order.
    pub(crate) fn ordered_nodes(&self) -> impl Iterator<Item = &Node> + '_ {
        self.store.ordered(None, None).map(|(_, n)| n)
    }
}

/// Counts over the whole fleet for gauges (metrics, dashboards): computed under the read lock
/// without copying any node, O(n) in fleet size but a few nanoseconds per node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetSummary {
    pub nodes: u64,
    /// Nodes by lifecycle state and health; only the pairs that occur.
    pub by_state_and_health: Vec<StateHealthCount>,
    /// Nodes with at least one cordon, and the cordons in all.
    pub cordoned_nodes: u64,
    pub cordons: u64,
    /// Claims and keyed reservations not yet confirmed or released.
    pub claims: u64,
    pub holds: u64,
    pub containers: u64,
    /// Nodes with an outstanding decommission ticket.
    pub decommissions_in_progress: u64,
    pub total_ram_mb: u64,
    pub allocated_ram_mb: u64,
    pub reserved_ram_mb: u64,
    /// A restore pass is open (see [`Fleet::restoring`]).
    pub restoring: bool,
    /// Placeholders not yet bound to their VM.
    pub placeholders: u64,
}

/// One row of [`FleetSummary::by_state_and_health`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateHealthCount {
    pub state: LifecycleState,
    pub health: HealthStatus,
    pub nodes: u64,
}

impl Fleet {
    /// Counts over the whole fleet (see [`FleetSummary`]).
    pub fn summary(&self) -> Result<FleetSummary> {
        self.read(|g, _| {
            let mut counts = [[0u64; 3]; 8];
            let mut s = FleetSummary {
                nodes: g.store.len() as u64,
                claims: g.store.claim_count() as u64,
                containers: g.store.container_count() as u64,
                restoring: g.restoring,
                ..Default::default()
            };
            for n in g.store.values() {
                counts[n.state as usize][n.health as usize] += 1;
                if !n.cordons.is_empty() {
                    s.cordoned_nodes += 1;
                    s.cordons += n.cordons.len() as u64;
                }
                s.holds += n.holds.len() as u64;
                s.placeholders += u64::from(n.is_placeholder());
                s.decommissions_in_progress += u64::from(n.drain().is_some());
                s.total_ram_mb = s.total_ram_mb.saturating_add(n.total_ram_mb);
                s.allocated_ram_mb = s.allocated_ram_mb.saturating_add(n.allocated_ram_mb);
                s.reserved_ram_mb = s.reserved_ram_mb.saturating_add(n.reserved_ram_mb);
            }
            for state in LifecycleState::ALL {
                for health in [
                    HealthStatus::Unknown,
                    HealthStatus::Healthy,
                    HealthStatus::Unhealthy,
                ] {
                    let nodes = counts[state as usize][health as usize];
                    if nodes > 0 {
                        s.by_state_and_health.push(StateHealthCount {
                            state,
                            health,
                            nodes,
                        });
                    }
                }
            }
            s
        })
    }

    /// Whether a restore pass is open: the fleet reopened a data directory that held nodes (or
    /// a recovered node was registered) and [`Fleet::finish_restore`] has not been called
    /// since. The conductor's "still restoring" flag lives here.
    pub fn restoring(&self) -> Result<bool> {
        self.read(|g, _| g.restoring)
    }

    /// The safety verdict for one node now.
    pub fn evaluate(&self, id: &str) -> Result<Verdict> {
        self.read(|g, now| Ok(evaluate(g.node(id)?, &g.policy, now)))?
    }

    /// The decision for one node now, without the names that explain it: the path of the C
    /// ABI's flat verdict (a value, computed from the node's packed verdict inputs).
    pub fn decide(&self, id: &str) -> Result<Decision> {
        self.with_decision(id, |d| *d)
    }

    /// Hands the decision for one node to `f` where it was computed and returns what `f`
    /// returns: the path for callers that keep only part of it (the C ABI's flat verdict), so
    /// the decision is not copied out of the read.
    #[inline]
    pub fn with_decision<R>(&self, id: &str, f: impl FnOnce(&Decision) -> R) -> Result<R> {
        self.read(|g, now| {
            let slot = g
                .store
                .slot_of(id)
                .ok_or_else(|| crate::error::Error::NodeNotFound(id.to_owned()))?;
            Ok(f(&decide(g.store.inputs(slot), &g.policy, now)))
        })?
    }

    /// Verdicts for every node, ordered by node id: a dry run of what a policy may delete now.
    pub fn evaluate_all(&self) -> Result<Vec<NodeVerdict>> {
        self.read(|g, now| {
            g.ordered_nodes()
                .map(|n| NodeVerdict {
                    node_id: n.id.to_string(),
                    verdict: evaluate(n, &g.policy, now),
                })
                .collect()
        })
    }

    /// Calls `f` with every node's id and decision, ordered by id, under one read lock and
    /// one `now`, without allocating per node: the batch path behind the C ABI's
    /// `nl_fleet_evaluate_all`. The decisions come from the packed verdict inputs, so the walk
    /// reads one compact array and each node's id, nothing else.
    pub fn with_decisions(&self, mut f: impl FnMut(&str, &Decision)) -> Result<()> {
        self.read(|g, now| {
            for (slot, n) in g.store.ordered(None, None) {
                f(n.id(), &decide(g.store.inputs(slot), &g.policy, now));
            }
        })
    }

    pub fn node(&self, id: &str) -> Result<NodeInfo> {
        self.read(|g, now| Ok(NodeInfo::of(g.node(id)?, &g.policy, now)))?
    }

    /// One node with its verdict, both from one read (they agree).
    pub fn node_row(&self, id: &str) -> Result<NodeRow> {
        self.read(|g, now| {
            let n = g.node(id)?;
            Ok(NodeRow {
                node: NodeInfo::of(n, &g.policy, now),
                verdict: evaluate(n, &g.policy, now),
            })
        })?
    }

    /// Every node, ordered by id. This copies the whole fleet under the read lock: for large
    /// fleets and request paths use [`Fleet::nodes_page`].
    pub fn nodes(&self) -> Result<Vec<NodeInfo>> {
        self.read(|g, now| {
            g.ordered_nodes()
                .map(|n| NodeInfo::of(n, &g.policy, now))
                .collect()
        })
    }

    /// A page of nodes with their verdicts, ordered by id, optionally of one state. Costs
    /// O(log n + limit); the read lock is held only while the page is copied.
    pub fn nodes_page(&self, q: &NodeQuery) -> Result<NodePage> {
        self.read(|g, now| {
            let mut nodes = Vec::with_capacity(q.limit.min(1024));
            let mut next_after = None;
            for (_, n) in g.store.ordered(q.after.as_deref(), q.state) {
                if nodes.len() == q.limit {
                    next_after = nodes.last().map(|r: &NodeRow| r.node.id.clone());
                    break;
                }
                nodes.push(NodeRow {
                    node: NodeInfo::of(n, &g.policy, now),
                    verdict: evaluate(n, &g.policy, now),
                });
            }
            NodePage { nodes, next_after }
        })
    }

    pub fn len(&self) -> usize {
        self.inner.read().store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `f` over the nodes (in id order) under the read lock, with the policy and one
    /// `now`: the entry point for code that must see one consistent fleet.
    pub fn with_nodes<R>(
        &self,
        f: impl FnOnce(&mut dyn Iterator<Item = &Node>, &Policy, Moment) -> R,
    ) -> Result<R> {
        self.read(|g, now| f(&mut g.ordered_nodes(), &g.policy, now))
    }
}
