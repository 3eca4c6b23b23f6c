//! Planning against the live fleet: the capacity projection, consolidation plans, and carrying a
//! plan out safely (re-validation, evacuate cordons, abandonment, a cooldown that survives
//! restarts).
//!
//! Executing a plan never moves a container or deletes a node by itself. It re-checks the plan
//! against the fleet under one lock, places an `evacuate` cordon on every node to remove (no new
//! containers land there) and hands the moves back. The caller migrates each container and
//! records it with [`Fleet::record_migration`]; a node emptied that way passes the safety rules
//! without the idle grace and is deleted through the ordinary protocol with
//! `consolidation_policy`. [`Fleet::abandon_plan`] lifts the cordons.

use super::tx::Tx;
use super::Fleet;
use crate::audit::{AuditAction, AuditRecord, AuditResult};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::ClaimId;
use crate::planning::{
    self, ConsolidationPlan, ConsolidationPolicy, ContainerMove, FleetProjection, PlanInput,
};
use crate::state::NodeOrigin;
use crate::text::Text;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The prefix of the cordons a plan execution places.
pub const PLAN_CORDON_PREFIX: &str = "consolidation:";

/// What [`Fleet::consolidation_plan`] is asked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsolidationRequest {
    pub policy: ConsolidationPolicy,
    /// Containers that must not be moved (they pin their node).
    pub non_migratable_containers: Vec<String>,
    /// When the caller last consolidated by other means; the fleet also remembers its own last
    /// execution (the later of both starts the cooldown).
    pub last_consolidation_at_ms: Option<Timestamp>,
}

/// A plan being carried out: its id (the cordon on its nodes is `consolidation:<id>`), the
/// nodes to remove and the moves to make.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanExecution {
    pub id: String,
    pub cordon: String,
    pub remove: Vec<String>,
    pub moves: Vec<ContainerMove>,
    pub savings_eur_per_hour: f64,
}

impl Fleet {
    /// Capacity now, coming (still starting), cordoned, leaving (draining) and unusable, with
    /// utilisation.
    pub fn projection(&self) -> Result<FleetProjection> {
        self.read(|g, now| planning::project(g.ordered_nodes(), &g.policy, now))
    }

    /// The planner's input, built under the read lock; the plan itself is computed outside it.
    fn plan_input(
        &self,
        request: &ConsolidationRequest,
    ) -> Result<(PlanInput, crate::clock::Moment)> {
        let non_migratable: BTreeSet<String> =
            request.non_migratable_containers.iter().cloned().collect();
        self.read(|g, now| {
            let caller_last = request
                .last_consolidation_at_ms
                .map(|t| crate::clock::Moment {
                    wall: t,
                    mono: now.mono.saturating_sub(now.wall.millis_since(t) as i64),
                });
            let last = match (g.meta.last_consolidation_at, caller_last) {
                (Some(a), Some(b)) => Some(if a.before(b) { b } else { a }),
                (a, b) => a.or(b),
            };
            (
                PlanInput {
                    nodes: g
                        .ordered_nodes()
                        .map(|n| planning::plan_node(n, &g.policy, now, &non_migratable))
                        .collect(),
                    pending_placements: g.store.claim_count() as u64,
                    last_consolidation_at: last,
                },
                now,
            )
        })
    }

    /// A consolidation plan over the whole fleet: which nodes to remove, where their containers
    /// go, the savings, and why every other node stays. Read-only: nothing is changed. The read
    /// lock is held only to copy the planner's view of the nodes.
    pub fn consolidation_plan(&self, request: &ConsolidationRequest) -> Result<ConsolidationPlan> {
        request.policy.resolve()?;
        let (input, now) = self.plan_input(request)?;
        planning::plan_consolidation(&input, &request.policy, now)
    }

    /// Starts carrying out `plan`: re-validates it against the fleet as it is now (a stale plan
    /// is refused with [`Error::StalePlan`] saying why), places an `evacuate` cordon
    /// `consolidation:<id>` on every node to remove, records the execution time (the cooldown
    /// runs from it, across restarts) and returns the moves to make. `policy` must be the
    /// policy the plan was made with.
    pub fn execute_plan(
        &self,
        plan: &ConsolidationPlan,
        policy: &ConsolidationPolicy,
    ) -> Result<PlanExecution> {
        let policy = policy.resolve()?;
        if !plan.worthwhile {
            return Err(Error::InvalidArgument(format!(
                "the plan was refused ({}) and cannot be executed",
                plan.refusal_detail
            )));
        }
        let id = ClaimId::random()?.to_string();
        let cordon = format!("{PLAN_CORDON_PREFIX}{id}");
        self.mutate(|tx| {
            validate_plan(tx, plan, &policy)?;
            let count = |n: usize, one: &str, many: &str| {
                format!("{n} {}", if n == 1 { one } else { many })
            };
            let reason = format!(
                "consolidation plan {id}: move {} off {}, saving {:.4} EUR/h",
                count(plan.moves.len(), "container", "containers"),
                count(plan.remove.len(), "node", "nodes"),
                plan.savings_eur_per_hour
            );
            let reason_text = Text::new(&reason);
            for r in &plan.remove {
                let mut ctx = tx.node(&r.node_id)?;
                ctx.node
                    .cordon(&cordon, reason_text.clone(), true, ctx.now)?;
                let rec = ctx
                    .entry(AuditAction::NodeCordon, AuditResult::Success)
                    .reason(0, format!("evacuate cordon {cordon}: {reason}"))
                    .decision_by("consolidation_policy");
                ctx.record(rec);
            }
            let now = tx.now;
            tx.meta_mut().last_consolidation_at = Some(now);
            tx.stage(
                AuditRecord::new(AuditAction::ScaleDown, "-", AuditResult::Success)
                    .reason(0, reason_text)
                    .decision_by("consolidation_policy"),
            );
            Ok(PlanExecution {
                id: id.clone(),
                cordon: cordon.clone(),
                remove: plan.remove.iter().map(|r| r.node_id.clone()).collect(),
                moves: plan.moves.clone(),
                savings_eur_per_hour: plan.savings_eur_per_hour,
            })
        })
    }

    /// Abandons a plan execution: lifts its cordons (audited) from every node that still has
    /// one. Nodes already deleted stay deleted. Returns the nodes uncordoned.
    pub fn abandon_plan(&self, execution_id: &str) -> Result<Vec<String>> {
        let cordon = format!("{PLAN_CORDON_PREFIX}{execution_id}");
        self.mutate(|tx| {
            let mut ids: Vec<String> = tx
                .inner
                .store
                .values()
                .filter(|n| n.cordon_named(&cordon).is_some())
                .map(|n| n.id().to_owned())
                .collect();
            ids.sort();
            for id in &ids {
                let mut ctx = tx.node(id)?;
                ctx.node.uncordon(&cordon);
                let rec = ctx
                    .entry(AuditAction::NodeUncordon, AuditResult::Success)
                    .reason(0, format!("consolidation plan {execution_id} abandoned"))
                    .decision_by("consolidation_policy");
                ctx.record(rec);
            }
            Ok(ids)
        })
    }

    /// When the last consolidation plan was executed (persisted), if ever.
    pub fn last_consolidation(&self) -> Option<Timestamp> {
        self.inner.read().meta.last_consolidation_at.map(|m| m.wall)
    }
}

/// What differs between the containers a node runs and those the plan moves off it, as one
/// exact sentence, or `None` when they are the same.
fn container_difference(
    node: &str,
    runs: &BTreeMap<&str, u64>,
    planned: &BTreeMap<&str, u64>,
) -> Option<String> {
    let mb = |m: u64| format!("{m} MB");
    for (c, ram) in runs {
        match planned.get(c) {
            None => {
                return Some(format!(
                    "node {node} runs container {c} ({}), which the plan does not move",
                    mb(*ram)
                ))
            }
            Some(p) if p != ram => {
                return Some(format!(
                    "container {c} on node {node} now uses {}, the plan moves it as {}",
                    mb(*ram),
                    mb(*p)
                ))
            }
            Some(_) => {}
        }
    }
    planned
        .keys()
        .find(|c| !runs.contains_key(*c))
        .map(|c| format!("the plan moves container {c} off node {node}, which no longer runs it"))
}

/// Checks a plan against the fleet as it is now. Every check that `plan_consolidation` made must
/// still hold, for exactly the containers the plan moves and the costs it counted, so that an
/// executed plan reports the savings it really makes.
fn validate_plan(
    tx: &Tx<'_>,
    plan: &ConsolidationPlan,
    policy: &ConsolidationPolicy,
) -> Result<()> {
    let stale = |why: String| Err(Error::StalePlan(why));
    let g = &*tx.inner;
    let now = tx.now;
    match g.store.claim_count() {
        0 => {}
        1 => return stale("1 placement is pending".into()),
        n => return stale(format!("{n} placements are pending")),
    }
    if let Some(last) = g.meta.last_consolidation_at {
        let since = now.elapsed_since(last);
        if policy.cooldown_ms != crate::policy::OFF && since < policy.cooldown_ms {
            return stale(format!(
                "a plan was executed {} ago (cooldown {})",
                crate::safety::human_duration(since),
                crate::safety::human_duration(policy.cooldown_ms)
            ));
        }
    }
    let removing: BTreeSet<&str> = plan.remove.iter().map(|r| r.node_id.as_str()).collect();
    if removing.len() != plan.remove.len() {
        return stale("the plan removes a node twice".into());
    }
    // The moves out of each removed node must be exactly what it runs now.
    let mut moving_out: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    let mut moving_in: BTreeMap<&str, u64> = BTreeMap::new();
    for m in &plan.moves {
        if !removing.contains(m.from_node.as_str()) {
            return stale(format!(
                "move of {} is from a node the plan keeps",
                m.container_id
            ));
        }
        moving_out
            .entry(m.from_node.as_str())
            .or_default()
            .insert(m.container_id.as_str(), m.ram_mb);
        let into = moving_in.entry(m.to_node.as_str()).or_default();
        *into = into.saturating_add(m.ram_mb);
    }
    let mut savings = 0.0;
    for r in &plan.remove {
        let Ok(node) = g.node(&r.node_id) else {
            return stale(format!("node {} is gone", r.node_id));
        };
        if !matches!(node.origin, NodeOrigin::Cloud | NodeOrigin::Recovered) {
            return stale(format!("node {} is a {} node", r.node_id, node.origin));
        }
        if !node.state.is_schedulable() || node.drain().is_some() {
            return stale(format!("node {} is {}", r.node_id, node.state));
        }
        if let Some((c, _)) = node
            .cordons()
            .find(|(c, _)| c.starts_with(PLAN_CORDON_PREFIX))
        {
            return stale(format!(
                "node {} is already being evacuated ({c})",
                r.node_id
            ));
        }
        let runs: BTreeMap<&str, u64> = node.containers().collect();
        let planned = moving_out.remove(r.node_id.as_str()).unwrap_or_default();
        if let Some(why) = container_difference(&r.node_id, &runs, &planned) {
            return stale(why);
        }
        if node.hourly_cost_eur != r.hourly_cost_eur {
            return stale(format!(
                "node {} now costs {} EUR/h, the plan counted {} EUR/h (its savings would be \
                 misreported)",
                r.node_id, node.hourly_cost_eur, r.hourly_cost_eur
            ));
        }
        let verdict = crate::safety::evaluate(node, &g.policy, now);
        let has_containers = node.container_count() > 0;
        if let Some(b) = verdict.blockers.iter().find(|b| {
            !(b.code == crate::reason::ReasonCode::HasContainers
                || (has_containers && b.code == crate::reason::ReasonCode::IdleTooRecent))
        }) {
            return stale(format!(
                "node {} would still be refused: {}",
                r.node_id,
                verdict.reason_message(b)
            ));
        }
        savings += node.hourly_cost_eur;
    }
    if savings < policy.min_savings_eur_per_hour {
        return stale(format!(
            "it now saves {savings:.4} EUR/h, below the minimum of {:.4} EUR/h",
            policy.min_savings_eur_per_hour
        ));
    }
    for (to, ram) in &moving_in {
        if removing.contains(to) {
            return stale(format!("node {to} receives containers but is removed"));
        }
        let Ok(node) = g.node(to) else {
            return stale(format!("target node {to} is gone"));
        };
        if !node.state.is_schedulable() {
            return stale(format!(
                "target node {to} takes no containers: it is {}",
                node.state
            ));
        }
        if node.is_cordoned() {
            let cordons: Vec<String> = node
                .cordons()
                .map(|(name, c)| format!("{name}: {}", c.reason))
                .collect();
            return stale(format!(
                "target node {to} takes no containers: it is cordoned ({})",
                cordons.join("; ")
            ));
        }
        if let Some(free) = node.free_ram_mb() {
            if *ram > free {
                return stale(format!(
                    "target node {to} has {free} MB free, the plan moves {ram} MB there"
                ));
            }
        }
    }
    // Enough schedulable workers stay, and the fleet is not too full afterwards.
    let mut capacity = 0u64;
    let mut used = 0u64;
    let mut workers_left = 0u64;
    for n in g.store.values() {
        let worker = n.origin != NodeOrigin::System && n.is_schedulable();
        if worker {
            capacity = capacity.saturating_add(n.total_ram_mb);
            used = used
                .saturating_add(n.allocated_ram_mb)
                .saturating_add(n.reserved_ram_mb);
            if !removing.contains(n.id.as_str()) {
                workers_left += 1;
            }
        }
    }
    if workers_left < policy.min_worker_nodes {
        return stale(format!(
            "only {workers_left} schedulable worker nodes would stay (minimum {})",
            policy.min_worker_nodes
        ));
    }
    for r in &plan.remove {
        let n = g.node(&r.node_id).expect("checked above");
        if n.is_schedulable() {
            capacity = capacity.saturating_sub(n.total_ram_mb);
        } else {
            used = used.saturating_add(n.allocated_ram_mb);
        }
    }
    let util = if capacity == 0 {
        f64::INFINITY
    } else {
        used as f64 / capacity as f64
    };
    if util > policy.max_utilisation_after {
        return stale(format!(
            "utilisation would reach {:.1}% (max {:.1}%)",
            util * 100.0,
            policy.max_utilisation_after * 100.0
        ));
    }
    Ok(())
}
