//! Lifecycle events: plain transitions, health results, the timers (`tick`) and the end of the
//! restore pass after a restart.

use super::store::Slot;
use super::views::NodeInfo;
use super::Fleet;
use crate::audit::{AuditAction, AuditResult};
use crate::clock::Moment;
use crate::error::{Error, Result};
use crate::ids::ClaimId;
use crate::node::GoneAtProvider;
use crate::node::StateChange;
use crate::policy::Policy;
use crate::reason::ReasonCode;
use crate::safety::{effective_sync_completion, Verdict};
use crate::state::{HealthStatus, LifecycleState};
use crate::text::{sanitize_text, validate_name, Text};
use serde::{Deserialize, Serialize};

/// What a health report did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthOutcome {
    pub health: HealthStatus,
    pub state: LifecycleState,
    pub consecutive_failures: u32,
}

/// A claim that [`Fleet::tick`] expired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiredClaim {
    pub node_id: String,
    pub claim_id: ClaimId,
    pub container_id: Option<String>,
    pub ram_mb: u64,
    pub age_ms: u64,
}

/// What [`Fleet::tick`] did: nodes whose timers fired.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickReport {
    /// Stuck in provisioning/initializing past the timeout; now unhealthy.
    pub provisioning_timeouts: Vec<String>,
    /// Container sync completed by the sync timeout.
    pub sync_timeouts: Vec<String>,
    /// Claims and reservations past their TTL; released (audited as `reservation_expired`).
    pub expired_claims: Vec<ExpiredClaim>,
}

impl Fleet {
    /// Moves a node along the transition table, recording `reason`.
    ///
    /// A transition to the current state is a no-op (`Ok(None)`). `draining` and
    /// `decommissioned` are refused with [`Error::ProtocolOnly`]: they are entered only through
    /// [`Fleet::begin_decommission`], [`Fleet::complete_decommission`] or
    /// [`Fleet::abandon_provisioning`], so that every deletion is attributed. A node with an
    /// outstanding decommission ticket only moves through complete/cancel.
    pub fn transition(
        &self,
        id: &str,
        to: LifecycleState,
        reason: &str,
    ) -> Result<Option<StateChange>> {
        validate_name("reason", reason)?;
        self.mutate(|tx| {
            let node = tx.node_ref(id)?;
            let current = node.state;
            if current == to {
                return Ok(None);
            }
            let call = match to {
                LifecycleState::Draining => Some("begin_decommission"),
                LifecycleState::Decommissioned => {
                    Some("complete_decommission (or abandon_provisioning for a VM never created)")
                }
                _ => None,
            };
            if let Some(call) = call {
                return Err(Error::ProtocolOnly {
                    node: id.to_owned(),
                    to,
                    call,
                });
            }
            if crate::state::is_allowed_transition(current, to) && node.drain().is_some() {
                let verdict = Verdict::refused(current, ReasonCode::DecommissionInProgress);
                let mut ctx = tx.node(id)?;
                let rec = ctx
                    .entry(AuditAction::LifecycleTransition, AuditResult::Rejected)
                    .reason(ReasonCode::DecommissionInProgress.code(), verdict.message())
                    .states(current, to);
                ctx.record(rec);
                tx.keep_on_error = true;
                return Err(Error::Rejected {
                    node: id.to_owned(),
                    verdict: Box::new(verdict),
                });
            }
            tx.node(id)?.transition(to, Text::new(reason), Text::EMPTY)
        })
    }

    /// Takes one health-check result and applies the health policy: after the threshold of
    /// consecutive failures a productive node becomes unhealthy; a success brings an unhealthy
    /// node back to ready (with its container view to re-sync). A node being decommissioned
    /// keeps its state: the deletion decision stands until it is completed or cancelled.
    pub fn report_health(&self, id: &str, healthy: bool) -> Result<HealthOutcome> {
        let status = if healthy {
            HealthStatus::Healthy
        } else {
            HealthStatus::Unhealthy
        };
        self.report_health_status(id, status)
    }

    /// [`Fleet::report_health`] with the checker's three answers: `Unknown` (it could not
    /// tell: no address yet, a probe that timed out) is neither a success nor a failure. It is
    /// recorded as the node's health and changes nothing else: the failure count and the state
    /// stay as they are, so an unknown never makes a worker unhealthy.
    pub fn report_health_status(&self, id: &str, status: HealthStatus) -> Result<HealthOutcome> {
        self.mutate(|tx| {
            let threshold = tx.inner.policy.unhealthy_threshold;
            let mut ctx = tx.node(id)?;
            if !ctx.node.state.is_terminal() {
                let in_flight = ctx.node.drain().is_some();
                ctx.node.metrics.health_reported_at.set(Some(ctx.now.wall));
                if status == HealthStatus::Unknown {
                    ctx.node.health = HealthStatus::Unknown;
                } else if status == HealthStatus::Healthy {
                    ctx.node.consecutive_health_failures = 0;
                    ctx.node.health = HealthStatus::Healthy;
                    if ctx.node.state == LifecycleState::Unhealthy && !in_flight {
                        ctx.transition(
                            LifecycleState::Ready,
                            "health_check_recovered",
                            Text::EMPTY,
                        )?;
                    }
                } else {
                    ctx.node.consecutive_health_failures =
                        ctx.node.consecutive_health_failures.saturating_add(1);
                    if ctx.node.consecutive_health_failures >= threshold {
                        ctx.node.health = HealthStatus::Unhealthy;
                        if ctx.node.state.is_productive() && !in_flight {
                            ctx.transition(
                                LifecycleState::Unhealthy,
                                "health_check_failed",
                                Text::EMPTY,
                            )?;
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

    /// The provider confirmed that the node's VM no longer exists (a 404 for its server, say):
    /// nothing can run on it. A node that is not unhealthy yet becomes unhealthy
    /// (`gone_at_provider`), and the unhealthy grace no longer protects it, so its cleanup can go
    /// through the decommission protocol at once. `evidence` is what the provider said (any
    /// bytes: sanitised). Audited as `node_update`. A node with a decommission ticket keeps its
    /// state (its deletion is already in flight). Containers and claims still block a deletion:
    /// sync or remove them.
    pub fn confirm_gone(&self, id: &str, evidence: &[u8]) -> Result<NodeInfo> {
        let mut evidence = sanitize_text(evidence);
        if evidence.is_empty() {
            evidence = "the caller gave no text".into();
        }
        self.mutate(|tx| {
            let mut ctx = tx.node(id)?;
            if ctx.node.state.is_terminal() {
                return Err(Error::InvalidArgument(format!(
                    "node {id:?} is already decommissioned"
                )));
            }
            let leave = ctx.node.state != LifecycleState::Unhealthy && ctx.node.drain().is_none();
            if leave {
                ctx.transition(LifecycleState::Unhealthy, "gone_at_provider", Text::EMPTY)?;
            }
            ctx.node.health = HealthStatus::Unhealthy;
            ctx.node.set_gone(Some(GoneAtProvider {
                confirmed_at_ms: ctx.now.wall,
                evidence: evidence.clone(),
            }));
            let rec = ctx
                .entry(AuditAction::NodeUpdate, AuditResult::Success)
                .reason(0, format!("confirmed_gone_at_provider: {evidence}"));
            ctx.record(rec);
            Ok(NodeInfo::of(ctx.node, ctx.policy, ctx.now))
        })
    }

    /// Applies the timers: nodes stuck starting past the provisioning timeout become unhealthy,
    /// pending container syncs past the sync timeout complete, and claims past their TTL are
    /// released (each audited). Call it periodically, e.g. on every health round.
    pub fn tick(&self) -> Result<TickReport> {
        self.mutate(|tx| {
            let now = tx.now;
            let policy = tx.inner.policy;
            let timeout = Policy::timeout(policy.provisioning_timeout_ms);
            // Find what fired first, so only those nodes are touched.
            let store = &tx.inner.store;
            let mut due: Vec<(Text, Slot, bool, Option<Moment>)> = Vec::new();
            for (slot, n) in store.slots() {
                let m = n.metrics();
                let stuck = n.state.is_starting()
                    && timeout.is_some_and(|t| now.elapsed_since(m.provisioned_at()) >= t);
                let synced = if m.container_sync_pending_since().is_some() {
                    effective_sync_completion(n, &policy, now)
                } else {
                    None
                };
                if stuck || synced.is_some() {
                    due.push((n.id_text().clone(), slot, stuck, synced));
                }
            }
            let mut expiring: Vec<(Text, Slot, ClaimId)> = Vec::new();
            for (claim, slot) in store.claims() {
                let Some(n) = store.at(slot) else { continue };
                if n.claim(&claim).is_some_and(|c| c.is_expired(now)) {
                    expiring.push((n.id_text().clone(), slot, claim));
                }
            }
            due.sort_by(|a, b| a.0.cmp(&b.0));
            expiring.sort_by(|a, b| (&a.0, a.2).cmp(&(&b.0, b.2)));
            let mut report = TickReport::default();
            for (id, slot, stuck, synced) in due {
                let mut ctx = tx.node_mut(slot);
                if stuck {
                    ctx.transition(
                        LifecycleState::Unhealthy,
                        "provisioning_timeout",
                        Text::EMPTY,
                    )?;
                    report.provisioning_timeouts.push(id.to_string());
                }
                if let Some(deadline) = synced {
                    ctx.node.complete_sync(deadline);
                    let rec = ctx
                        .entry(AuditAction::Recovery, AuditResult::Success)
                        .reason(0, "container_sync_timeout");
                    ctx.record(rec);
                    report.sync_timeouts.push(id.to_string());
                }
            }
            for (node_id, slot, claim_id) in expiring {
                let mut ctx = tx.node_mut(slot);
                let Some(claim) = ctx.node.take_claim(&claim_id) else {
                    continue;
                };
                let age_ms = claim.age_ms(now);
                let mut rec = ctx
                    .entry(AuditAction::ReservationExpired, AuditResult::Success)
                    .reason(
                        0,
                        format!(
                            "claim {claim_id} of {} MB expired after {}",
                            claim.ram_mb,
                            crate::safety::human_duration(age_ms)
                        ),
                    )
                    .ram(claim.ram_mb)
                    .age(age_ms);
                if let Some(c) = &claim.container_id {
                    rec = rec.container(c.clone());
                }
                ctx.record(rec);
                tx.index_claim(claim_id, None);
                report.expired_claims.push(ExpiredClaim {
                    node_id: node_id.to_string(),
                    claim_id,
                    container_id: claim.container_id.map(|c| c.to_string()),
                    ram_mb: claim.ram_mb,
                    age_ms,
                });
            }
            Ok(report)
        })
    }

    /// Ends the restore pass after a restart: every node whose container sync is still pending
    /// counts as synchronised now (audited). Returns how many nodes it completed.
    pub fn finish_restore(&self) -> Result<usize> {
        self.mutate(|tx| {
            tx.set_restoring(false);
            let mut pending: Vec<(Text, Slot)> = tx
                .inner
                .store
                .slots()
                .filter(|(_, n)| n.metrics().container_sync_pending_since().is_some())
                .map(|(slot, n)| (n.id_text().clone(), slot))
                .collect();
            pending.sort();
            for (_, slot) in &pending {
                let mut ctx = tx.node_mut(*slot);
                ctx.node.complete_sync(ctx.now);
                let rec = ctx
                    .entry(AuditAction::Recovery, AuditResult::Success)
                    .reason(0, "restore_finished");
                ctx.record(rec);
            }
            Ok(pending.len())
        })
    }
}
