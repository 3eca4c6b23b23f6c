//! Planning: the fleet projection (capacity now, coming, leaving) and consolidation plans.
//!
//! Both are pure functions of their inputs; [`crate::Fleet`] builds the inputs under its lock
//! from one consistent view and one `now`. Output is deterministic: the same input gives
//! byte-identical JSON.

use crate::clock::{Moment, Timestamp};
use crate::error::{Error, Result};
use crate::node::Node;
use crate::policy::{duration_setting, Policy, OFF};
use crate::reason::ReasonCode;
use crate::safety::evaluate;
use crate::state::{LifecycleState, NodeOrigin};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

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
        self.total_ram_mb = self.total_ram_mb.saturating_add(n.total_ram_mb());
        self.allocated_ram_mb = self.allocated_ram_mb.saturating_add(n.allocated_ram_mb());
        self.reserved_ram_mb = self.reserved_ram_mb.saturating_add(n.reserved_ram_mb());
        self.free_ram_mb = self
            .free_ram_mb
            .saturating_add(n.free_ram_mb().unwrap_or(0));
    }

    fn used_ram_mb(&self) -> u64 {
        self.allocated_ram_mb.saturating_add(self.reserved_ram_mb)
    }
}

/// A node that is still starting and will add capacity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComingNode {
    pub node_id: String,
    pub state: LifecycleState,
    pub total_ram_mb: u64,
    /// The latest time it is expected ready: registration plus the provisioning timeout (after
    /// which it becomes unhealthy instead); `None` when the timeout is off.
    pub ready_deadline_ms: Option<Timestamp>,
}

/// Capacity now, coming and leaving: what a scaling policy needs so that it does not provision
/// twice for the same demand.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FleetProjection {
    pub at_ms: Timestamp,
    /// Schedulable nodes (ready, active, idle, without cordons).
    pub now: Capacity,
    /// Ready, active or idle nodes with cordons: running, but taking no new containers.
    pub cordoned: Capacity,
    /// Provisioning and initializing nodes.
    pub coming: Capacity,
    pub coming_nodes: Vec<ComingNode>,
    /// Draining nodes.
    pub leaving: Capacity,
    /// Unhealthy nodes.
    pub unusable: Capacity,
    /// System nodes (local, proxy, control plane): shown, never counted as capacity for
    /// placements in `now`, `coming` or the utilisation.
    pub system: Capacity,
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
    now: Moment,
) -> FleetProjection {
    let mut p = FleetProjection {
        at_ms: now.wall,
        now: Capacity::default(),
        cordoned: Capacity::default(),
        coming: Capacity::default(),
        coming_nodes: Vec::new(),
        leaving: Capacity::default(),
        unusable: Capacity::default(),
        system: Capacity::default(),
        utilisation_now: 0.0,
        utilisation_projected: 0.0,
    };
    let timeout = Policy::timeout(policy.provisioning_timeout_ms);
    for n in nodes {
        match n.state() {
            // (A system node is never decommissioned.)
            _ if n.origin() == NodeOrigin::System => p.system.add(n),
            s if s.is_schedulable() && n.is_cordoned() => p.cordoned.add(n),
            s if s.is_schedulable() => p.now.add(n),
            s if s.is_starting() => {
                p.coming.add(n);
                let started = n.metrics().provisioned_at;
                p.coming_nodes.push(ComingNode {
                    node_id: n.id().to_owned(),
                    state: s,
                    total_ram_mb: n.total_ram_mb(),
                    ready_deadline_ms: timeout
                        .map(|t| now.wall_in(t.saturating_sub(now.elapsed_since(started)))),
                });
            }
            LifecycleState::Draining => p.leaving.add(n),
            LifecycleState::Unhealthy => p.unusable.add(n),
            _ => {}
        }
    }
    p.utilisation_now = ratio(p.now.used_ram_mb(), p.now.total_ram_mb);
    p.utilisation_projected = ratio(
        p.now.used_ram_mb().saturating_add(p.coming.used_ram_mb()),
        p.now.total_ram_mb.saturating_add(p.coming.total_ram_mb),
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
        let available = self.now.free_ram_mb.saturating_add(self.coming.free_ram_mb);
        let shortfall = demand_mb.saturating_sub(available);
        Ok(shortfall.div_ceil(node_ram_mb))
    }
}

// ----- consolidation ---------------------------------------------------------------------------

/// When consolidation is worth doing. Every value is configurable; 0 means the
/// specification's default, and the durations take `"off"` ([`OFF`]) to switch a check off.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsolidationPolicy {
    /// A node younger than this is never removed (30 min).
    #[serde(with = "crate::policy::setting_ms")]
    pub min_uptime_ms: u64,
    /// An empty node must have been idle (or ready) at least this long (15 min).
    #[serde(with = "crate::policy::setting_ms")]
    pub min_idle_ms: u64,
    /// A plan saving less than this per hour is not worth the churn (0.10 EUR/h).
    pub min_savings_eur_per_hour: f64,
    /// The fleet's utilisation after the plan may not exceed this, in (0, 1] (0.70).
    pub max_utilisation_after: f64,
    /// No plan within this long of the last executed one (2 h).
    #[serde(with = "crate::policy::setting_ms")]
    pub cooldown_ms: u64,
    /// Schedulable worker nodes always kept, even empty, for fast scale-up (1, the minimum).
    pub min_worker_nodes: u64,
}

impl ConsolidationPolicy {
    /// The specification's defaults.
    pub const DEFAULT: ConsolidationPolicy = ConsolidationPolicy {
        min_uptime_ms: 30 * 60_000,
        min_idle_ms: 15 * 60_000,
        min_savings_eur_per_hour: 0.10,
        max_utilisation_after: 0.70,
        cooldown_ms: 2 * 60 * 60_000,
        min_worker_nodes: 1,
    };

    /// The policy with zeros replaced by the defaults, or the first invalid setting.
    pub fn resolve(&self) -> Result<ConsolidationPolicy> {
        let d = Self::DEFAULT;
        let fraction = |field: &str, v: f64, default: f64, max: f64| -> Result<f64> {
            if !v.is_finite() || v < 0.0 || v > max {
                return Err(Error::invalid_setting(
                    field,
                    format!("{v} must be a finite number from 0 to {max}"),
                ));
            }
            Ok(if v == 0.0 { default } else { v })
        };
        Ok(ConsolidationPolicy {
            min_uptime_ms: duration_setting("min_uptime_ms", self.min_uptime_ms, d.min_uptime_ms)?,
            min_idle_ms: duration_setting("min_idle_ms", self.min_idle_ms, d.min_idle_ms)?,
            min_savings_eur_per_hour: fraction(
                "min_savings_eur_per_hour",
                self.min_savings_eur_per_hour,
                d.min_savings_eur_per_hour,
                crate::node::MAX_HOURLY_COST_EUR,
            )?,
            max_utilisation_after: fraction(
                "max_utilisation_after",
                self.max_utilisation_after,
                d.max_utilisation_after,
                1.0,
            )?,
            cooldown_ms: duration_setting("cooldown_ms", self.cooldown_ms, d.cooldown_ms)?,
            min_worker_nodes: match self.min_worker_nodes {
                0 => d.min_worker_nodes,
                n if n > 1_000_000 => {
                    return Err(Error::invalid_setting(
                        "min_worker_nodes",
                        format!("{n} is out of range (1 to 1000000)"),
                    ))
                }
                n => n,
            },
        })
    }

    /// A duration check's threshold; a check that is off never holds a node back.
    fn threshold(ms: u64) -> u64 {
        if ms == OFF {
            0
        } else {
            ms
        }
    }
}

impl Default for ConsolidationPolicy {
    fn default() -> Self {
        Self::DEFAULT
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
    /// Cordoned nodes take no containers (they are never migration targets), but may be
    /// removed.
    pub cordoned: bool,
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
        self.containers
            .iter()
            .fold(self.reserved_ram_mb, |a, c| a.saturating_add(c.ram_mb))
    }

    /// A node that hosts game servers (system nodes do not take part in consolidation).
    fn is_worker(&self) -> bool {
        self.origin != NodeOrigin::System && self.state.is_schedulable()
    }

    /// A worker that can take containers now.
    fn is_target(&self) -> bool {
        self.is_worker() && !self.cordoned
    }
}

/// Everything a plan is computed from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanInput {
    pub nodes: Vec<PlanNode>,
    /// Placements claimed but not yet running, fleet-wide.
    pub pending_placements: u64,
    /// When the last plan was executed (or the caller's own record of it).
    pub last_consolidation_at: Option<Moment>,
}

/// Why a node stays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepReason {
    /// System or dedicated node, or one that is not ready, active or idle.
    NotACandidate,
    /// A safety rule would refuse its deletion even after its containers moved.
    FailsSafety,
    TooYoung,
    NotIdleLongEnough,
    /// It runs a container that may not be migrated.
    NonMigratableContainer,
    /// Removing it would leave fewer schedulable worker nodes than the policy keeps.
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
    /// Every node not removed, with why, ordered by id.
    pub kept: Vec<KeptNode>,
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Computes a consolidation plan. Greedy and deterministic: candidates are tried from the most
/// expensive and longest idle down (node id breaks ties); each one's containers go to the
/// best-fitting remaining schedulable node (least free RAM that fits, then id). O(n log n) in
/// the number of nodes (and containers) on every path, refusals included.
pub fn plan_consolidation(
    input: &PlanInput,
    policy: &ConsolidationPolicy,
    now: Moment,
) -> Result<ConsolidationPlan> {
    let policy = policy.resolve()?;
    let targets_total: Vec<&PlanNode> = input.nodes.iter().filter(|n| n.is_target()).collect();
    let capacity: u64 = targets_total
        .iter()
        .fold(0u64, |a, n| a.saturating_add(n.total_ram_mb));
    let mut used: u64 = targets_total
        .iter()
        .fold(0u64, |a, n| a.saturating_add(n.used_ram_mb()));
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
    // A refused plan removes nothing: every node is kept, with its own reason where it had
    // one. O(n log n): the nodes already kept are looked up in a set.
    let refuse = |mut plan: ConsolidationPlan, why: PlanRefusal, detail: String| {
        // Nothing moves in a refused plan, so nobody is a migration target.
        plan.kept
            .retain(|k| k.reason != KeepReason::MigrationTarget);
        let already: HashSet<String> = plan.kept.iter().map(|k| k.node_id.clone()).collect();
        for n in &input.nodes {
            if !already.contains(&n.id) {
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
    if let Some(last) = input.last_consolidation_at {
        let since = now.elapsed_since(last);
        let cooldown = ConsolidationPolicy::threshold(policy.cooldown_ms);
        if since < cooldown {
            let d = format!(
                "last consolidation {} ago, cooldown {}",
                crate::safety::human_duration(since),
                crate::safety::human_duration(cooldown)
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
    let min_uptime = ConsolidationPolicy::threshold(policy.min_uptime_ms);
    let min_idle = ConsolidationPolicy::threshold(policy.min_idle_ms);
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
        } else if n.age_ms < min_uptime {
            keep(
                n,
                KeepReason::TooYoung,
                format!("up {}", crate::safety::human_duration(n.age_ms)),
            );
        } else if n.containers.is_empty() && n.idle_for_ms < min_idle {
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

    // Where containers can go (see `Targets`).
    let mut places = Targets::new(&targets_total, &candidates);
    let mut removed: BTreeSet<&str> = BTreeSet::new();
    let mut targets: BTreeSet<&str> = BTreeSet::new();
    let mut remaining_capacity = capacity;
    let mut schedulable_left = targets_total.len() as u64;
    for cand in candidates {
        places.start(&cand.id);
        if targets.contains(cand.id.as_str()) {
            keep(
                cand,
                KeepReason::MigrationTarget,
                "receives migrated containers".into(),
            );
            places.settle(&cand.id);
            continue;
        }
        let takes_capacity = cand.is_target();
        if takes_capacity && schedulable_left <= policy.min_worker_nodes {
            keep(
                cand,
                KeepReason::MinWorkerNodes,
                format!(
                    "keeps {} schedulable worker node(s)",
                    policy.min_worker_nodes
                ),
            );
            places.settle(&cand.id);
            continue;
        }
        // A cordoned candidate's containers join the schedulable pool; a schedulable one's
        // capacity leaves it.
        let (capacity_after, used_after) = if takes_capacity {
            (remaining_capacity.saturating_sub(cand.total_ram_mb), used)
        } else {
            (remaining_capacity, used.saturating_add(cand.used_ram_mb()))
        };
        let util_after = if capacity_after == 0 {
            f64::INFINITY
        } else {
            used_after as f64 / capacity_after as f64
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
            places.settle(&cand.id);
            continue;
        }
        // Place the containers, largest first. Placements are undone if one does not fit.
        let mut trial_moves: Vec<(&str, ContainerMove)> = Vec::new();
        let mut containers: Vec<&PlanContainer> = cand.containers.iter().collect();
        containers.sort_by(|a, b| b.ram_mb.cmp(&a.ram_mb).then(a.id.cmp(&b.id)));
        let mut fits = true;
        for c in containers {
            match places.take(c.ram_mb) {
                Some(t) => trial_moves.push((
                    t,
                    ContainerMove {
                        container_id: c.id.clone(),
                        ram_mb: c.ram_mb,
                        from_node: cand.id.clone(),
                        to_node: t.to_owned(),
                    },
                )),
                None => {
                    fits = false;
                    break;
                }
            }
        }
        if !fits {
            for (t, m) in &trial_moves {
                places.give_back(t, m.ram_mb);
            }
            keep(
                cand,
                KeepReason::DoesNotFit,
                "its containers do not fit on the remaining nodes".into(),
            );
            places.settle(&cand.id);
            continue;
        }
        for (t, m) in trial_moves {
            targets.insert(t);
            plan.moves.push(m);
        }
        removed.insert(cand.id.as_str());
        if takes_capacity {
            schedulable_left -= 1;
        }
        remaining_capacity = capacity_after;
        used = used_after;
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

/// Where a removed node's containers can go, and in which order they are tried.
///
/// Nodes that stay for sure (not candidates, or candidates already decided to stay) come first,
/// best fit (least free RAM that fits, then id). Only then the candidates not yet decided, the
/// cheapest first (the last in removal order), so a container never lands on a node the plan
/// would rather remove while a node it would rather keep has room. Each choice costs O(log n).
struct Targets<'a> {
    free: HashMap<&'a str, u64>,
    keepers: BTreeSet<(u64, &'a str)>,
    /// Candidates in removal order, and a max-tree of the free RAM of those not decided yet.
    position: HashMap<&'a str, usize>,
    order: Vec<&'a str>,
    undecided: MaxTree,
}

impl<'a> Targets<'a> {
    fn new(targets: &[&'a PlanNode], candidates: &[&'a PlanNode]) -> Self {
        let free: HashMap<&str, u64> = targets
            .iter()
            .map(|n| {
                (
                    n.id.as_str(),
                    n.total_ram_mb.saturating_sub(n.used_ram_mb()),
                )
            })
            .collect();
        let position: HashMap<&str, usize> = candidates
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.as_str(), i))
            .collect();
        let order: Vec<&str> = candidates.iter().map(|n| n.id.as_str()).collect();
        let mut undecided = MaxTree::new(order.len());
        for (i, id) in order.iter().enumerate() {
            if let Some(f) = free.get(id) {
                undecided.set(i, *f as i64);
            }
        }
        let keepers = free
            .iter()
            .filter(|(id, _)| !position.contains_key(*id))
            .map(|(id, f)| (*f, *id))
            .collect();
        Targets {
            free,
            keepers,
            position,
            order,
            undecided,
        }
    }

    /// The candidate `id` is being decided: it is no target while its own containers move.
    fn start(&mut self, id: &str) {
        if let Some(p) = self.position.get(id) {
            self.undecided.set(*p, -1);
        }
    }

    /// The candidate `id` stays: it becomes a node that stays for sure.
    fn settle(&mut self, id: &'a str) {
        if let Some(f) = self.free.get(id) {
            self.keepers.insert((*f, id));
        }
    }

    fn set_free(&mut self, id: &'a str, f: u64) {
        let old = self.free.insert(id, f).expect("every target has an entry");
        match self.position.get(id) {
            Some(p) if self.undecided.get(*p) >= 0 => self.undecided.set(*p, f as i64),
            _ => {
                self.keepers.remove(&(old, id));
                self.keepers.insert((f, id));
            }
        }
    }

    /// Chooses a node for `ram` MB and books it.
    fn take(&mut self, ram: u64) -> Option<&'a str> {
        let id = match self.keepers.range((ram, "")..).next() {
            Some((_, id)) => *id,
            None => self.order[self.undecided.rightmost_at_least(ram as i64)?],
        };
        self.set_free(id, self.free[id] - ram);
        Some(id)
    }

    fn give_back(&mut self, id: &'a str, ram: u64) {
        self.set_free(id, self.free[id] + ram);
    }
}

/// A segment tree of maxima: the rightmost position holding at least a value, in O(log n).
struct MaxTree {
    size: usize,
    tree: Vec<i64>,
}

impl MaxTree {
    fn new(n: usize) -> Self {
        let size = n.max(1).next_power_of_two();
        MaxTree {
            size,
            tree: vec![-1; 2 * size],
        }
    }

    fn get(&self, i: usize) -> i64 {
        self.tree[self.size + i]
    }

    fn set(&mut self, i: usize, v: i64) {
        let mut k = self.size + i;
        self.tree[k] = v;
        while k > 1 {
            k /= 2;
            self.tree[k] = self.tree[2 * k].max(self.tree[2 * k + 1]);
        }
    }

    fn rightmost_at_least(&self, v: i64) -> Option<usize> {
        if self.tree[1] < v {
            return None;
        }
        let mut k = 1;
        while k < self.size {
            k = if self.tree[2 * k + 1] >= v {
                2 * k + 1
            } else {
                2 * k
            };
        }
        Some(k - self.size)
    }
}

/// Builds the planner's view of one node. `non_migratable` names containers that must not move.
pub fn plan_node(
    node: &Node,
    policy: &Policy,
    now: Moment,
    non_migratable: &BTreeSet<String>,
) -> PlanNode {
    let m = node.metrics();
    let verdict = evaluate(node, policy, now);
    // Once the containers have moved, the container rule no longer applies, and the idle timer
    // is waived for a node emptied by the evacuation; every other rule must still pass.
    let has_containers = node.container_count() > 0;
    let blocked_after_moves = verdict.blockers.iter().map(|b| b.code).find(|c| {
        !(*c == ReasonCode::HasContainers || (has_containers && *c == ReasonCode::IdleTooRecent))
    });
    let idle_for_ms = if has_containers {
        0
    } else {
        let since = m
            .last_container_at()
            .or(m.initialized_at())
            .unwrap_or(m.provisioned_at());
        now.elapsed_since(since)
    };
    PlanNode {
        id: node.id().to_owned(),
        origin: node.origin(),
        state: node.state(),
        cordoned: node.is_cordoned(),
        instance_type: node.instance_type().to_owned(),
        total_ram_mb: node.total_ram_mb(),
        reserved_ram_mb: node.reserved_ram_mb(),
        hourly_cost_eur: node.hourly_cost_eur(),
        age_ms: now.elapsed_since(m.provisioned_at),
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
