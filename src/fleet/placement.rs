//! What runs where: container events, claims and reservations (placement in two steps),
//! holds, cordons, and migrations. Container ids are unique across the fleet; claims are found
//! by id fleet-wide.

use super::store::Slot;
use super::tx::Tx;
use super::Fleet;
use crate::audit::{AuditAction, AuditRecord, AuditResult};
use crate::error::{Error, Result};
use crate::ids::ClaimId;
use crate::node::{Claim, Node, MAX_CONTAINERS_PER_NODE};
use crate::state::LifecycleState;
use crate::text::{sanitize_text, validate_name, Text};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a container event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerOutcome {
    /// False when the event was a no-op (a known id added again, an unknown id removed).
    pub changed: bool,
    /// The node's state after the event (container events drive active/idle).
    pub state: LifecycleState,
    pub current_containers: u64,
}

impl ContainerOutcome {
    fn of(node: &Node, changed: bool) -> Self {
        ContainerOutcome {
            changed,
            state: node.state,
            current_containers: node.container_count() as u64,
        }
    }
}

/// Refuses a container id that runs on another node than the one in `slot`.
fn require_not_elsewhere(tx: &Tx<'_>, container_id: &str, slot: Slot) -> Result<()> {
    match tx.container_node(container_id) {
        Some(other) if other != slot => Err(Error::ContainerElsewhere {
            container: container_id.to_owned(),
            node: tx.node_at(other).id().to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Starts a container on `node`, consuming the claim `claim` if one reserved it. The node must
/// be schedulable now, claim or not: a claim made before a cordon does not override it (the
/// start is refused, and the claim stays until it is released or expires).
fn start_container(
    tx: &mut Tx<'_>,
    slot: Slot,
    container_id: &str,
    ram_mb: u64,
    claim: Option<ClaimId>,
) -> Result<ContainerOutcome> {
    require_not_elsewhere(tx, container_id, slot)?;
    let node = tx.node_at(slot);
    let already_here = node.has_container(container_id);
    if !already_here {
        node.require_schedulable()?;
        node.require_container_slot(container_id)?;
    }
    if let Some(c) = claim {
        tx.index_claim(c, None);
    }
    let mut ctx = tx.node_mut(slot);
    if let Some(c) = claim {
        ctx.node.take_claim(&c);
    }
    // The id is stored once, in the node; the fleet's index reads it there.
    let id = match ctx.node.container_set().get_key_value(container_id) {
        Some((id, _)) => id.clone(),
        None => Text::new(container_id),
    };
    let added = ctx.node.insert_container(&id, ram_mb, ctx.now);
    ctx.settle_occupancy();
    let outcome = ContainerOutcome::of(ctx.node, added);
    if added {
        tx.index_container(&id, slot);
    }
    Ok(outcome)
}

impl Fleet {
    /// A container started on the node (idempotent by id). Consumes a reservation of the same
    /// id. Refused on a node that takes no containers (not ready/active/idle, or cordoned) and
    /// for an id that runs on another node ([`Error::ContainerElsewhere`]).
    pub fn add_container(
        &self,
        id: &str,
        container_id: &str,
        ram_mb: u64,
    ) -> Result<ContainerOutcome> {
        Node::validate_container(container_id, ram_mb)?;
        self.mutate(|tx| {
            let slot = tx.slot(id)?;
            let claim = tx.node_at(slot).claim_for_container(container_id);
            start_container(tx, slot, container_id, ram_mb, claim)
        })
    }

    /// A container stopped; removing an id the node does not run is a reported no-op
    /// (`changed: false`).
    pub fn remove_container(&self, id: &str, container_id: &str) -> Result<ContainerOutcome> {
        self.mutate(|tx| {
            let slot = tx.slot(id)?;
            let node = tx.node_at(slot);
            let Some((cid, _)) = node.container_set().get_key_value(container_id) else {
                return Ok(ContainerOutcome::of(node, false));
            };
            let cid = cid.clone();
            tx.unindex_container(&cid, slot);
            let mut ctx = tx.node_mut(slot);
            ctx.node.remove_container(container_id, ctx.now);
            ctx.settle_occupancy();
            Ok(ContainerOutcome::of(ctx.node, true))
        })
    }

    /// Replaces the node's container view with what it really runs. It does not complete a
    /// pending container sync (after a restart or a health recovery): that is
    /// [`Fleet::complete_container_sync`] (or `finish_restore`, or the sync timeout), so the
    /// view can be refreshed as often as needed during a restore without ending its
    /// protection. A non-empty list for a node that is being deleted is refused: cancel the
    /// decommission first. An id that runs on another node is refused
    /// ([`Error::ContainerElsewhere`]): remove it there or record its migration first.
    pub fn sync_containers(
        &self,
        id: &str,
        containers: &[(String, u64)],
    ) -> Result<ContainerOutcome> {
        if containers.len() > MAX_CONTAINERS_PER_NODE {
            return Err(Error::InvalidArgument(format!(
                "{} containers; a node runs at most {MAX_CONTAINERS_PER_NODE}",
                containers.len()
            )));
        }
        let mut actual = BTreeMap::new();
        for (c, ram) in containers {
            Node::validate_container(c, *ram)?;
            if actual.insert(c.clone(), *ram).is_some() {
                return Err(Error::InvalidArgument(format!(
                    "container {c:?} is listed twice"
                )));
            }
        }
        self.mutate(|tx| {
            let slot = tx.slot(id)?;
            let node = tx.node_at(slot);
            // Containers found on a node that is being deleted mean the deletion must be
            // cancelled first; accepting them would let a deletion complete over live ones.
            let deleting = node.state == LifecycleState::Draining || node.drain().is_some();
            if node.state.is_terminal() || (deleting && !actual.is_empty()) {
                return Err(node.not_schedulable());
            }
            for c in actual.keys() {
                require_not_elsewhere(tx, c, slot)?;
            }
            let mut ctx = tx.node_mut(slot);
            let out = ctx.node.sync_containers(&actual, ctx.now);
            ctx.settle_occupancy();
            let outcome = ContainerOutcome::of(ctx.node, true);
            for c in &out.dropped {
                tx.unindex_container(c, slot);
            }
            for c in &out.added {
                tx.index_container(c, slot);
            }
            for c in out.consumed_claims {
                tx.index_claim(c, None);
            }
            Ok(outcome)
        })
    }

    /// Completes the node's pending container sync: its container view (refreshed with
    /// [`Fleet::sync_containers`]) is what it really runs, so it may count as empty from now
    /// on, after the post-sync grace. Audited (`recovery`, `container_sync_completed`). Returns
    /// whether a sync was pending.
    pub fn complete_container_sync(&self, id: &str) -> Result<bool> {
        self.mutate(|tx| {
            let mut ctx = tx.node(id)?;
            let now = ctx.now;
            if !ctx.node.complete_sync(now) {
                return Ok(false);
            }
            ctx.record(
                ctx.entry(AuditAction::Recovery, AuditResult::Success)
                    .reason(0, "container_sync_completed"),
            );
            Ok(true)
        })
    }

    /// Reserves `ram_mb` for container `container_id` about to be placed on the node: a claim
    /// keyed by the container id. Re-reserving the same id updates it (and restarts its TTL).
    /// It counts as occupancy for every safety check, and it is atomic with
    /// `begin_decommission`: of a concurrent reservation and decommission of the same empty
    /// node exactly one wins. Returns whether the reservation is new.
    pub fn reserve(&self, id: &str, container_id: &str, ram_mb: u64) -> Result<bool> {
        Node::validate_container(container_id, ram_mb)?;
        self.mutate(|tx| {
            let ttl = tx.inner.policy.claim_ttl_ms;
            let slot = tx.slot(id)?;
            let node = tx.node_at(slot);
            node.require_schedulable()?;
            if node.has_container(container_id) {
                return Err(Error::InvalidArgument(format!(
                    "container {container_id:?} is already running on node {id:?}"
                )));
            }
            require_not_elsewhere(tx, container_id, slot)?;
            let existing = node.claim_for_container(container_id);
            let claim_id = match existing {
                Some(c) => c,
                None => new_claim_id(tx)?,
            };
            let ctx = tx.node_mut(slot);
            let claim = Claim {
                ram_mb,
                container_id: Some(Text::new(container_id)),
                created_at: ctx.now,
                ttl_ms: ttl,
            };
            ctx.node.add_claim(claim_id, claim, existing)?;
            if existing.is_none() {
                tx.index_claim(claim_id, Some(slot));
            }
            Ok(existing.is_none())
        })
    }

    /// Turns a reservation into a running container.
    pub fn confirm_reservation(&self, id: &str, container_id: &str) -> Result<ContainerOutcome> {
        self.mutate(|tx| {
            let slot = tx.slot(id)?;
            let node = tx.node_at(slot);
            let claim = node.claim_for_container(container_id).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "no reservation for container {container_id:?} on node {id:?}"
                ))
            })?;
            let ram = node.claim(&claim).map_or(0, |c| c.ram_mb);
            start_container(tx, slot, container_id, ram, Some(claim))
        })
    }

    /// Drops a reservation (the placement was abandoned); `false` if there was none.
    pub fn release_reservation(&self, id: &str, container_id: &str) -> Result<bool> {
        self.mutate(|tx| {
            let slot = tx.slot(id)?;
            let Some(claim) = tx.node_at(slot).claim_for_container(container_id) else {
                return Ok(false);
            };
            tx.index_claim(claim, None);
            tx.node_mut(slot).node.take_claim(&claim);
            Ok(true)
        })
    }

    /// Claims `ram_mb` on the node for a placement whose container id is not known yet. The
    /// claim counts as occupancy (the node cannot be drained) until it is confirmed, released,
    /// or expires after `ttl_ms` (0: the policy's `claim_ttl_ms`, 30 min by default; `OFF`:
    /// never). Atomic with `begin_decommission`.
    pub fn claim(&self, id: &str, ram_mb: u64, ttl_ms: u64) -> Result<ClaimId> {
        crate::node::validate_ram("ram_mb", ram_mb)?;
        self.mutate(|tx| {
            let ttl_ms = Node::claim_ttl(ttl_ms, &tx.inner.policy)?;
            let slot = tx.slot(id)?;
            tx.node_at(slot).require_schedulable()?;
            let claim_id = new_claim_id(tx)?;
            let ctx = tx.node_mut(slot);
            let claim = Claim {
                ram_mb,
                container_id: None,
                created_at: ctx.now,
                ttl_ms,
            };
            ctx.node.add_claim(claim_id, claim, None)?;
            tx.index_claim(claim_id, Some(slot));
            Ok(claim_id)
        })
    }

    /// Turns a claim into a running container with the claim's RAM. [`Error::ClaimNotFound`]
    /// when the claim expired, was released or confirmed, or belongs to another fleet.
    pub fn confirm_claim(&self, claim: ClaimId, container_id: &str) -> Result<ContainerOutcome> {
        validate_name("container id", container_id)?;
        self.mutate(|tx| {
            let slot = tx
                .inner
                .store
                .claim_slot(&claim)
                .ok_or_else(|| Error::ClaimNotFound(claim.to_string()))?;
            let ram = tx.node_at(slot).claim(&claim).map_or(0, |c| c.ram_mb);
            start_container(tx, slot, container_id, ram, Some(claim))
        })
    }

    /// Releases a claim (the placement was abandoned); `false` if it was not outstanding.
    pub fn release_claim(&self, claim: ClaimId) -> Result<bool> {
        self.mutate(|tx| {
            let Some(slot) = tx.inner.store.claim_slot(&claim) else {
                return Ok(false);
            };
            tx.index_claim(claim, None);
            tx.node_mut(slot).node.take_claim(&claim);
            Ok(true)
        })
    }

    /// Places a named hold (world data of a stopped server, do-not-disrupt, migration in
    /// flight). A node with holds is never drained. `false` if the hold already existed (its
    /// detail is updated).
    pub fn place_hold(&self, id: &str, name: &str, detail: &str) -> Result<bool> {
        self.mutate(|tx| tx.node(id)?.node.place_hold(name, detail))
    }

    /// Releases a hold; `false` if there was none by that name.
    pub fn release_hold(&self, id: &str, name: &str) -> Result<bool> {
        self.mutate(|tx| Ok(tx.node(id)?.node.release_hold(name)))
    }

    /// Places a named cordon: the node takes no new containers or claims (its state does not
    /// change and its containers keep running). With `evacuate`, the node is being emptied on
    /// purpose: when its last container leaves while the cordon is in place, the idle grace
    /// does not apply. `reason` may be any text (it is sanitised). Audited as `node_cordon`.
    /// Returns whether the cordon is new: a cordon of that name already in place is left as it
    /// is (reason and evacuate included) and nothing is recorded, so a caller may re-assert it
    /// every round.
    pub fn cordon(&self, id: &str, name: &str, reason: &str, evacuate: bool) -> Result<bool> {
        validate_name("cordon name", name)?;
        let reason = Text::from(sanitize_text(reason.as_bytes()));
        self.mutate(|tx| {
            let mut ctx = tx.node(id)?;
            let created = ctx.node.cordon(name, reason.clone(), evacuate, ctx.now)?;
            if !created {
                return Ok(false);
            }
            let what = if evacuate {
                "evacuate cordon"
            } else {
                "cordon"
            };
            let rec = ctx
                .entry(AuditAction::NodeCordon, AuditResult::Success)
                .reason(0, format!("{what} {name}: {reason}"))
                .decision_by(Text::new(name));
            ctx.record(rec);
            Ok(created)
        })
    }

    /// Removes a cordon; `false` (and no audit entry) if there was none by that name.
    pub fn uncordon(&self, id: &str, name: &str) -> Result<bool> {
        self.mutate(|tx| {
            let mut ctx = tx.node(id)?;
            if !ctx.node.uncordon(name) {
                return Ok(false);
            }
            let rec = ctx
                .entry(AuditAction::NodeUncordon, AuditResult::Success)
                .reason(0, format!("cordon {name} removed"))
                .decision_by(Text::new(name));
            ctx.record(rec);
            Ok(true)
        })
    }

    /// Records that a container moved from one node to another, atomically: it leaves
    /// `from_node` (which may become idle) and runs on `to_node`, and a `container_migrate`
    /// entry is recorded. Refused if the container does not run on `from_node`, or if
    /// `to_node` takes no containers or would overfill.
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
            let from_slot = tx.slot(from_node)?;
            let (cid, ram) = tx
                .node_at(from_slot)
                .container_set()
                .get_key_value(container_id)
                .map(|(c, r)| (c.clone(), r))
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "container {container_id:?} does not run on node {from_node:?}"
                    ))
                })?;
            let to_slot = tx.slot(to_node)?;
            let to = tx.node_at(to_slot);
            to.require_schedulable()?;
            to.require_room(ram, 0)?;
            to.require_container_slot(container_id)?;
            let to_id = to.id_text().clone();
            // Validated: apply.
            tx.unindex_container(&cid, from_slot);
            tx.index_container(&cid, to_slot);
            let mut to = tx.node_mut(to_slot);
            to.node.insert_container(&cid, ram, to.now);
            to.settle_occupancy();
            let mut from = tx.node_mut(from_slot);
            from.node.remove_container(container_id, from.now);
            from.settle_occupancy();
            let rec = AuditRecord::new(
                AuditAction::ContainerMigrate,
                &from.node.id,
                AuditResult::Success,
            )
            .container(cid)
            .reason(0, format!("moved to {to_node}"))
            .decision_by(Text::new(decision_by))
            .related(to_id)
            .ram(ram);
            from.record(rec);
            Ok(())
        })
    }
}

/// A fresh claim id (random; a collision with an outstanding one is drawn again).
fn new_claim_id(tx: &Tx<'_>) -> Result<ClaimId> {
    loop {
        let id = ClaimId::random()?;
        if tx.inner.store.claim_slot(&id).is_none() {
            return Ok(id);
        }
    }
}
