//! Planning: the fleet projection (capacity now, coming, leaving) and consolidation plans.
//!
//! Both are pure functions of their inputs; [`crate::Fleet`] builds the inputs under its lock
//! from one consistent view and one `now`. Output is deterministic: the same input gives
//! byte-identical JSON.

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::node::Node;
use crate::policy::{Policy, MAX_DURATION_MS};
use crate::reason::ReasonCode;
use crate::safety::evaluate;
use crate::state::{LifecycleState, NodeOrigin};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

// ----- projection ----------------------------------------------------------------------------

/// RAM of a group of nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    pub nodes: u64,
    pub total_ram_mb: u64,
    pub allocated_ram_mb: u64,
    pub reserved_ram_mb: u64,
    pub free_ram_mb: u64,
}

impl Capacity {
    fn add(&mut self, n: &Node) {
        self.nodes += 1;
        self.total_ram_mb += n.total_ram_mb();
        self.allocated_ram_mb += n.allocated_ram_mb();
        self.reserved_ram_mb += n.reserved_ram_mb();
        self.free_ram_mb += n.free_ram_mb().unwrap_or(0);
    }

    fn used_ram_mb(&self) -> u64 {
        self.allocated_ram_mb + self.reserved_ram_mb
    }
}

/// A node that is still starting and will add capacity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComingNode {
    pub node_id: String,
    pub state: LifecycleState,
    pub total_ram_mb: u64,
    /// The latest time it is expected ready: registration plus the provisioning timeout (after
    /// which it becomes unhealthy instead).
    pub ready_deadline_ms: Timestamp,
}

/// Capacity now, coming and leaving: what a scaling policy needs so that it does not provision
/// twice for the same demand.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FleetProjection {
    pub at_ms: Timestamp,
    /// Schedulable nodes (ready, active, idle).
    pub now: Capacity,
    /// Provisioning and initializing nodes.
    pub coming: Capacity,
    pub coming_nodes: Vec<ComingNode>,
    /// Draining nodes.
    pub leaving: Capacity,
    /// Unhealthy nodes.
    pub unusable: Capacity,
    /// (allocated + reserved) / total over schedulable nodes; 0 when there is no capacity.
    pub utilisation_now: f64,
    /// The same demand over schedulable plus coming capacity.
    pub utilisation_projected: f64,
}

fn ratio(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        used as f64 / total as f64
    }
}

/// Projects the fleet's capacity at `now`.
pub fn project<'a>(
    nodes: impl IntoIterator<Item = &'a Node>,
    policy: &Policy,
    now: Timestamp,
) -> FleetProjection {
    let mut p = FleetProjection {
        at_ms: now,
        now: Capacity::default(),
        coming: Capacity::default(),
        coming_nodes: Vec::new(),
        leaving: Capacity::default(),
        unusable: Capacity::default(),
        utilisation_now: 0.0,
        utilisation_projected: 0.0,
    };
    let timeout = std::time::Duration::from_millis(policy.provisioning_timeout_ms);
    for n in nodes {
        match n.state() {
            s if s.is_schedulable() => p.now.add(n),
            s if s.is_starting() => {
                p.coming.add(n);
                p.coming_nodes.push(ComingNode {
                    node_id: n.id().to_owned(),
                    state: s,
                    total_ram_mb: n.total_ram_mb(),
                    ready_deadline_ms: n.metrics().provisioned_at_ms.plus(timeout),
                });
            }
            LifecycleState::Draining => p.leaving.add(n),
            LifecycleState::Unhealthy => p.unusable.add(n),
            _ => {}
        }
    }
    p.utilisation_now = ratio(p.now.used_ram_mb(), p.now.total_ram_mb);
    p.utilisation_projected = ratio(
        p.now.used_ram_mb() + p.coming.used_ram_mb(),
        p.now.total_ram_mb + p.coming.total_ram_mb,
    );
    p
}

impl FleetProjection {
    /// How many more nodes of `node_ram_mb` a further demand of `demand_mb` needs, counting the
    /// free capacity now and the capacity already coming.
    pub fn additional_nodes_needed(&self, demand_mb: u64, node_ram_mb: u64) -> Result<u64> {
        if node_ram_mb == 0 {
            return Err(Error::InvalidArgument(
                "node_ram_mb must be greater than 0".into(),
            ));
        }
        let available = self.now.free_ram_mb + self.coming.free_ram_mb;
        let shortfall = demand_mb.saturating_sub(available);
        Ok(shortfall.div_ceil(node_ram_mb))
    }
}

// ----- consolidation ---------------------------------------------------------------------------

/// When consolidation is worth doing. Every value is configurable; defaults are the
/// specification's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsolidationPolicy {
    /// A node younger than this is never removed.
    pub min_uptime_ms: u64,
    /// An empty node must have been idle (or ready) at least this long.
    pub min_idle_ms: u64,
    /// A plan saving less than this per hour is not worth the churn.
    pub min_savings_eur_per_hour: f64,
    /// The fleet's utilisation after the plan may not exceed this (0..=1).
    pub max_utilisation_after: f64,
    /// No plan within this long of the last consolidation.
    pub cooldown_ms: u64,
    /// Worker nodes always kept, even empty, for fast scale-up.
    pub min_worker_nodes: u64,
}

impl Default for ConsolidationPolicy {
    fn default() -> Self {
        ConsolidationPolicy {
            min_uptime_ms: 30 * 60_000,
            min_idle_ms: 15 * 60_000,
            min_savings_eur_per_hour: 0.10,
            max_utilisation_after: 0.70,
            cooldown_ms: 2 * 60 * 60_000,
            min_worker_nodes: 1,
        }
    }
}

impl ConsolidationPolicy {
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("min_uptime_ms", self.min_uptime_ms),
            ("min_idle_ms", self.min_idle_ms),
            ("cooldown_ms", self.cooldown_ms),
        ] {
            if v > MAX_DURATION_MS {
                return Err(Error::InvalidArgument(format!(
                    "{name} = {v} exceeds one year"
                )));
            }
        }
        if !(self.min_savings_eur_per_hour.is_finite() && self.min_savings_eur_per_hour >= 0.0) {
            return Err(Error::InvalidArgument(
                "min_savings_eur_per_hour must be a finite, non-negative number".into(),
            ));
        }
        if !(self.max_utilisation_after > 0.0 && self.max_utilisation_after <= 1.0) {
            return Err(Error::InvalidArgument(
                "max_utilisation_after must be in (0, 1]".into(),
            ));
        }
        Ok(())
    }
}

/// A container as the planner sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanContainer {
    pub id: String,
    pub ram_mb: u64,
    pub migratable: bool,
}

/// A node as the planner sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanNode {
    pub id: String,
    pub origin: NodeOrigin,
    pub state: LifecycleState,
    pub instance_type: String,
    pub total_ram_mb: u64,
    /// RAM reserved by pending placements (counts as used, never moves).
    pub reserved_ram_mb: u64,
    pub hourly_cost_eur: f64,
    pub age_ms: u64,
    /// How long the node has been empty (idle, or ready without ever hosting); 0 when it has
    /// containers.
    pub idle_for_ms: u64,
    pub containers: Vec<PlanContainer>,
    /// The safety rule that would still refuse deletion once the containers have moved away;
    /// `None` when the node would pass.
    pub blocked_after_moves: Option<ReasonCode>,
}

impl PlanNode {
    fn used_ram_mb(&self) -> u64 {
        self.reserved_ram_mb + self.containers.iter().map(|c| c.ram_mb).sum::<u64>()
    }

    /// A node that hosts game servers (system nodes do not take part in consolidation).
    fn is_worker(&self) -> bool {
        self.origin != NodeOrigin::System && self.state.is_schedulable()
    }
}

/// Everything a plan is computed from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanInput {
    pub nodes: Vec<PlanNode>,
    /// Placements reserved but not yet running, fleet-wide.
    pub pending_placements: u64,
    pub last_consolidation_at_ms: Option<Timestamp>,
}

/// Why a node stays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepReason {
    /// System or dedicated node, or one that is not schedulable.
    NotACandidate,
    /// A safety rule would refuse its deletion even after its containers moved.
    FailsSafety,
    TooYoung,
    NotIdleLongEnough,
    /// It runs a container that may not be migrated.
    NonMigratableContainer,
    /// Removing it would leave fewer worker nodes than the policy keeps.
    MinWorkerNodes,
    /// Removing it would push the fleet's utilisation over the maximum.
    UtilisationLimit,
    /// Its containers do not fit on the remaining nodes.
    DoesNotFit,
    /// It receives containers from a removed node.
    MigrationTarget,
    /// The plan as a whole was refused (see `refusal`).
    PlanRefused,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeptNode {
    pub node_id: String,
    pub reason: KeepReason,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemovedNode {
    pub node_id: String,
    pub instance_type: String,
    pub hourly_cost_eur: f64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerMove {
    pub container_id: String,
    pub ram_mb: u64,
    pub from_node: String,
    pub to_node: String,
}

/// Why no plan was produced at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanRefusal {
    PendingPlacements,
    Cooldown,
    NothingToRemove,
    SavingsBelowThreshold,
}

/// The answer of [`plan_consolidation`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConsolidationPlan {
    /// Whether the plan should be carried out.
    pub worthwhile: bool,
    pub refusal: Option<PlanRefusal>,
    pub refusal_detail: String,
    pub remove: Vec<RemovedNode>,
    pub moves: Vec<ContainerMove>,
    pub savings_eur_per_hour: f64,
    pub utilisation_before: f64,
    pub utilisation_after: f64,
    /// Every node not removed, with why.
    pub kept: Vec<KeptNode>,
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Computes a consolidation plan. Greedy and deterministic: candidates are tried from the most
/// expensive and longest idle down (node id breaks ties); each one's containers go to the
/// best-fitting remaining node (least free RAM that fits, then id).
pub fn plan_consolidation(
    input: &PlanInput,
    policy: &ConsolidationPolicy,
    now: Timestamp,
) -> Result<ConsolidationPlan> {
    policy.validate()?;
    let workers: Vec<&PlanNode> = input.nodes.iter().filter(|n| n.is_worker()).collect();
    let capacity: u64 = workers.iter().map(|n| n.total_ram_mb).sum();
    let used: u64 = workers.iter().map(|n| n.used_ram_mb()).sum();
    let mut plan = ConsolidationPlan {
        worthwhile: false,
        refusal: None,
        refusal_detail: String::new(),
        remove: Vec::new(),
        moves: Vec::new(),
        savings_eur_per_hour: 0.0,
        utilisation_before: ratio(used, capacity),
        utilisation_after: ratio(used, capacity),
        kept: Vec::new(),
    };
    // A refused plan removes nothing: every node is kept, with its own reason where it had one.
    let refuse = |mut plan: ConsolidationPlan, why: PlanRefusal, detail: String| {
        // Nothing moves in a refused plan, so nobody is a migration target.
        plan.kept
            .retain(|k| k.reason != KeepReason::MigrationTarget);
        for n in &input.nodes {
            if !plan.kept.iter().any(|k| k.node_id == n.id) {
                plan.kept.push(KeptNode {
                    node_id: n.id.clone(),
                    reason: KeepReason::PlanRefused,
                    detail: detail.clone(),
                });
            }
        }
        plan.kept.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        plan.refusal = Some(why);
        plan.refusal_detail = detail;
        plan.remove.clear();
        plan.moves.clear();
        plan.savings_eur_per_hour = 0.0;
        plan.utilisation_after = plan.utilisation_before;
        plan
    };
    if input.pending_placements > 0 {
        let d = format!("{} placements are pending", input.pending_placements);
        return Ok(refuse(plan, PlanRefusal::PendingPlacements, d));
    }
    if let Some(last) = input.last_consolidation_at_ms {
        let since = now.millis_since(last);
        if since < policy.cooldown_ms {
            let d = format!(
                "last consolidation {} ago, cooldown {}",
                crate::safety::human_duration(since),
                crate::safety::human_duration(policy.cooldown_ms)
            );
            return Ok(refuse(plan, PlanRefusal::Cooldown, d));
        }
    }

    // Classify: candidates, and nodes kept for a reason of their own.
    let mut kept: BTreeMap<String, KeptNode> = BTreeMap::new();
    let mut keep = |n: &PlanNode, reason: KeepReason, detail: String| {
        kept.insert(
            n.id.clone(),
            KeptNode {
                node_id: n.id.clone(),
                reason,
                detail,
            },
        );
    };
    let mut candidates: Vec<&PlanNode> = Vec::new();
    for n in &input.nodes {
        if !n.is_worker() || n.origin == NodeOrigin::Dedicated {
            keep(
                n,
                KeepReason::NotACandidate,
                format!("{} node, {}", n.origin, n.state),
            );
        } else if let Some(r) = n.blocked_after_moves {
            keep(
                n,
                KeepReason::FailsSafety,
                format!("safety rule {r} would refuse it"),
            );
        } else if n.age_ms < policy.min_uptime_ms {
            keep(
                n,
                KeepReason::TooYoung,
                format!("up {}", crate::safety::human_duration(n.age_ms)),
            );
        } else if n.containers.is_empty() && n.idle_for_ms < policy.min_idle_ms {
            keep(
                n,
                KeepReason::NotIdleLongEnough,
                format!("idle {}", crate::safety::human_duration(n.idle_for_ms)),
            );
        } else if let Some(c) = n.containers.iter().find(|c| !c.migratable) {
            keep(
                n,
                KeepReason::NonMigratableContainer,
                format!("container {} may not move", c.id),
            );
        } else {
            candidates.push(n);
        }
    }
    candidates.sort_by(|a, b| {
        b.hourly_cost_eur
            .total_cmp(&a.hourly_cost_eur)
            .then(b.idle_for_ms.cmp(&a.idle_for_ms))
            .then(a.id.cmp(&b.id))
    });

    // Free RAM of every worker as containers are planned onto it.
    let mut free: BTreeMap<&str, u64> = workers
        .iter()
        .map(|n| {
            (
                n.id.as_str(),
                n.total_ram_mb.saturating_sub(n.used_ram_mb()),
            )
        })
        .collect();
    // The same free RAM ordered by (free, id), for best-fit lookups in O(log n).
    let mut by_free: BTreeSet<(u64, &str)> = free.iter().map(|(id, f)| (*f, *id)).collect();
    let mut removed: BTreeSet<&str> = BTreeSet::new();
    let mut targets: BTreeSet<&str> = BTreeSet::new();
    let mut remaining_capacity = capacity;
    for cand in candidates {
        if targets.contains(cand.id.as_str()) {
            keep(
                cand,
                KeepReason::MigrationTarget,
                "receives migrated containers".into(),
            );
            continue;
        }
        let workers_left = (workers.len() - removed.len()) as u64;
        if workers_left <= policy.min_worker_nodes {
            keep(
                cand,
                KeepReason::MinWorkerNodes,
                format!("keeps {} worker node(s)", policy.min_worker_nodes),
            );
            continue;
        }
        let capacity_after = remaining_capacity - cand.total_ram_mb;
        let util_after = if capacity_after == 0 {
            f64::INFINITY
        } else {
            used as f64 / capacity_after as f64
        };
        if util_after > policy.max_utilisation_after {
            keep(
                cand,
                KeepReason::UtilisationLimit,
                format!(
                    "utilisation would reach {} (max {})",
                    pct(util_after),
                    pct(policy.max_utilisation_after)
                ),
            );
            continue;
        }
        // Place the containers, largest first, on the best-fitting node that stays. Placements
        // go straight into `free` and are undone if a container does not fit, so a candidate
        // costs O(containers x nodes) and no copy of the map.
        let mut trial_moves = Vec::new();
        let mut containers: Vec<&PlanContainer> = cand.containers.iter().collect();
        containers.sort_by(|a, b| b.ram_mb.cmp(&a.ram_mb).then(a.id.cmp(&b.id)));
        let mut fits = true;
        for c in containers {
            // Best fit: the least free RAM that fits, then the smallest id; the candidate
            // itself is skipped (removed nodes are no longer in the set).
            let target = by_free
                .range((c.ram_mb, "")..)
                .map(|(_, id)| *id)
                .find(|id| *id != cand.id);
            match target {
                Some(t) => {
                    let f = free.get_mut(t).unwrap();
                    by_free.remove(&(*f, t));
                    *f -= c.ram_mb;
                    by_free.insert((*f, t));
                    trial_moves.push((
                        t,
                        ContainerMove {
                            container_id: c.id.clone(),
                            ram_mb: c.ram_mb,
                            from_node: cand.id.clone(),
                            to_node: t.to_owned(),
                        },
                    ));
                }
                None => {
                    fits = false;
                    break;
                }
            }
        }
        if !fits {
            for (t, m) in &trial_moves {
                let f = free.get_mut(t).unwrap();
                by_free.remove(&(*f, *t));
                *f += m.ram_mb;
                by_free.insert((*f, *t));
            }
            keep(
                cand,
                KeepReason::DoesNotFit,
                "its containers do not fit on the remaining nodes".into(),
            );
            continue;
        }
        let trial_moves: Vec<ContainerMove> = trial_moves
            .into_iter()
            .map(|(t, m)| {
                targets.insert(t);
                m
            })
            .collect();
        plan.moves.extend(trial_moves);
        removed.insert(cand.id.as_str());
        by_free.remove(&(free[cand.id.as_str()], cand.id.as_str()));
        remaining_capacity = capacity_after;
        plan.remove.push(RemovedNode {
            node_id: cand.id.clone(),
            instance_type: cand.instance_type.clone(),
            hourly_cost_eur: cand.hourly_cost_eur,
        });
    }
    // Targets chosen after a node was classified keep their first reason; report the rest.
    for n in &input.nodes {
        if !removed.contains(n.id.as_str()) && !kept.contains_key(&n.id) {
            kept.insert(
                n.id.clone(),
                KeptNode {
                    node_id: n.id.clone(),
                    reason: KeepReason::MigrationTarget,
                    detail: "receives migrated containers".into(),
                },
            );
        }
    }
    plan.kept = kept.into_values().collect();
    plan.savings_eur_per_hour = plan.remove.iter().map(|r| r.hourly_cost_eur).sum();
    plan.utilisation_after = ratio(used, remaining_capacity);
    if plan.remove.is_empty() {
        return Ok(refuse(
            plan,
            PlanRefusal::NothingToRemove,
            "no node can be removed".into(),
        ));
    }
    if plan.savings_eur_per_hour < policy.min_savings_eur_per_hour {
        let d = format!(
            "saves {:.4} EUR/h, below the minimum of {:.4} EUR/h",
            plan.savings_eur_per_hour, policy.min_savings_eur_per_hour
        );
        return Ok(refuse(plan, PlanRefusal::SavingsBelowThreshold, d));
    }
    plan.worthwhile = true;
    Ok(plan)
}

/// Builds the planner's view of one node. `non_migratable` names containers that must not move.
pub fn plan_node(
    node: &Node,
    policy: &Policy,
    now: Timestamp,
    non_migratable: &BTreeSet<String>,
) -> PlanNode {
    let m = node.metrics();
    let verdict = evaluate(node, policy, now);
    // Once the containers have moved, the container rule no longer applies, and the idle timer
    // starts at the migration itself; every other rule must still pass.
    let has_containers = node.container_count() > 0;
    let blocked_after_moves = verdict.blockers.iter().map(|b| b.code).find(|c| {
        !(*c == ReasonCode::HasContainers || (has_containers && *c == ReasonCode::IdleTooRecent))
    });
    let idle_for_ms = if has_containers {
        0
    } else {
        let since = m
            .last_container_at_ms
            .or(m.initialized_at_ms)
            .unwrap_or(m.provisioned_at_ms);
        now.millis_since(since)
    };
    PlanNode {
        id: node.id().to_owned(),
        origin: node.origin(),
        state: node.state(),
        instance_type: node.instance_type().to_owned(),
        total_ram_mb: node.total_ram_mb(),
        reserved_ram_mb: node.reserved_ram_mb(),
        hourly_cost_eur: node.hourly_cost_eur(),
        age_ms: now.millis_since(m.provisioned_at_ms),
        idle_for_ms,
        containers: node
            .containers()
            .map(|(id, ram)| PlanContainer {
                id: id.to_owned(),
                ram_mb: ram,
                migratable: !non_migratable.contains(id),
            })
            .collect(),
        blocked_after_moves,
    }
}
