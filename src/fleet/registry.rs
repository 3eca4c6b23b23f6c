//! Which nodes the fleet knows: registration (an upsert), attribute updates, placeholders
//! bound to the provider's id by `rename`, abandoned provisioning, and forgetting.

use super::views::NodeInfo;
use super::Fleet;
use crate::audit::{AuditAction, AuditResult};
use crate::error::{Error, Result};
use crate::node::{AttributeChange, Node, NodeSpec, NodeUpdate};
use crate::reason::ReasonCode;
use crate::safety::Verdict;
use crate::state::{LifecycleState, NodeOrigin};
use crate::text::{sanitize_text, validate_name, Text};

fn describe(changes: &[AttributeChange]) -> String {
    changes
        .iter()
        .map(|c| format!("{} {} -> {}", c.field, c.from, c.to))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Fleet {
    /// Registers a node. Its origin decides the starting state (see [`NodeSpec`]).
    ///
    /// Registering an id that exists with the same origin is an upsert: it merges the
    /// attributes the spec gives (a non-zero RAM or cost, an instance type, labels) into the
    /// node and keeps the others (see [`NodeSpec::upsert`]); RAM or cost changes are audited,
    /// and no state changes. `cloud` and `recovered` count as the same origin (a recovered node
    /// is a cloud node found again). Another origin is [`Error::NodeExists`].
    pub fn register(&self, spec: NodeSpec) -> Result<NodeInfo> {
        self.mutate(|tx| {
            let node = Node::from_spec(&spec, tx.now)?;
            if let Ok(existing) = tx.node_ref(&spec.id) {
                // A cloud node found again after a restart (recovered) is the same node.
                let cloud = |o| matches!(o, NodeOrigin::Cloud | NodeOrigin::Recovered);
                if existing.origin != spec.origin && !(cloud(existing.origin) && cloud(spec.origin))
                {
                    return Err(Error::NodeExists {
                        node: spec.id.clone(),
                        detail: format!(
                            "it is registered as a {} node, not a {} node",
                            existing.origin, spec.origin
                        ),
                    });
                }
                return update_in(tx, &spec.id, &spec.upsert());
            }
            let state = node.state;
            if spec.origin == NodeOrigin::Recovered {
                tx.set_restoring(true);
            }
            tx.insert(node);
            let mut ctx = tx.node(&spec.id)?;
            let (action, reason) = match (spec.origin, state) {
                (NodeOrigin::Cloud, LifecycleState::Ready) => (
                    AuditAction::NodeProvision,
                    "registered_cloud_node_booted_from_image",
                ),
                (NodeOrigin::Cloud, _) => (AuditAction::NodeProvision, "registered_cloud_node"),
                (NodeOrigin::Recovered, _) => (AuditAction::Recovery, "registered_recovered_node"),
                (NodeOrigin::System, _) => (AuditAction::NodeProvision, "registered_system_node"),
                (NodeOrigin::Dedicated, _) => {
                    (AuditAction::NodeProvision, "registered_dedicated_node")
                }
            };
            let rec = ctx
                .entry(action, AuditResult::Success)
                .reason(0, reason)
                .to_state(state);
            ctx.record(rec);
            Ok(NodeInfo::of(ctx.node, ctx.policy, ctx.now))
        })
    }

    /// Changes a node's attributes. RAM below what is allocated plus reserved is refused; RAM
    /// and cost changes are audited (`node_update`).
    pub fn update(&self, id: &str, update: &NodeUpdate) -> Result<NodeInfo> {
        self.mutate(|tx| update_in(tx, id, update))
    }

    /// Binds a node to a new id (a placeholder registered before its VM existed gets the
    /// provider's id). State, metrics, containers and history are kept; a `node_renamed` entry
    /// links both ids, and a placeholder is bound to its VM from then on. A placeholder whose VM
    /// got the id it already has is bound with `rename(id, id)`. Refused while a decommission is
    /// in progress (its ticket names the old id) and for a decommissioned node.
    pub fn rename(&self, old: &str, new: &str) -> Result<NodeInfo> {
        validate_name("new node id", new)?;
        self.mutate(|tx| {
            let node = tx.node_ref(old)?;
            let in_place = old == new && node.is_placeholder();
            if !in_place && tx.node_ref(new).is_ok() {
                return Err(Error::NodeExists {
                    node: new.to_owned(),
                    detail: format!("cannot rename {old:?} to it"),
                });
            }
            if node.drain().is_some() {
                return Err(Error::Rejected {
                    node: old.to_owned(),
                    verdict: Box::new(Verdict::refused(
                        node.state,
                        ReasonCode::DecommissionInProgress,
                    )),
                });
            }
            if node.state.is_terminal() {
                return Err(Error::InvalidArgument(format!(
                    "node {old:?} is decommissioned and cannot be renamed"
                )));
            }
            if in_place {
                let mut ctx = tx.node(old)?;
                ctx.node.bind_placeholder();
                let id = ctx.node.id_text().clone();
                let rec = ctx
                    .entry(AuditAction::NodeRenamed, AuditResult::Success)
                    .reason(
                        0,
                        format!("placeholder {old} bound to its VM under the same id"),
                    )
                    .related(id);
                ctx.record(rec);
                return Ok(NodeInfo::of(ctx.node, ctx.policy, ctx.now));
            }
            let slot = tx.slot(old)?;
            let old_id = tx.node_at(slot).id_text().clone();
            // Removing a node unindexes its containers and claims; the renamed copy indexes
            // them again under its new slot.
            let mut node = (*tx.remove(slot).expect("checked above")).clone();
            node.id = Text::new(new);
            node.bind_placeholder();
            let new_id = node.id_text().clone();
            let containers: Vec<Text> = node
                .container_set()
                .iter()
                .map(|(c, _)| c.clone())
                .collect();
            let claims: Vec<_> = node.claims().map(|(c, _)| *c).collect();
            let slot = tx.insert(node);
            for c in containers {
                tx.index_container(&c, slot);
            }
            for c in claims {
                tx.index_claim(c, Some(slot));
            }
            tx.inner.audit.alias(&old_id, &new_id);
            let mut ctx = tx.node_mut(slot);
            let rec = ctx
                .entry(AuditAction::NodeRenamed, AuditResult::Success)
                .reason(0, format!("renamed from {old} to {new}"))
                .related(old_id);
            ctx.record(rec);
            Ok(NodeInfo::of(ctx.node, ctx.policy, ctx.now))
        })
    }

    /// The VM of a placeholder was never created: the node becomes `decommissioned`, with a
    /// `failed` `node_provision` entry carrying `error` (any bytes: they are sanitised, never
    /// refused). Only for a placeholder (still provisioning or initializing, never bound to a
    /// VM, without holds): a node with a VM must be deleted at the provider through the
    /// decommission protocol, so that a failed delete keeps its ticket and is retried instead
    /// of leaking the VM.
    pub fn abandon_provisioning(&self, id: &str, error: &[u8]) -> Result<NodeInfo> {
        let error = sanitize_text(error);
        self.mutate(|tx| {
            let node = tx.node_ref(id)?;
            if !node.is_placeholder() {
                return Err(Error::InvalidArgument(format!(
                    "node {id:?} is not a placeholder: its VM exists at the provider. Delete it \
                     through the decommission protocol (a VM that never came up may be marked \
                     unhealthy and decommissioned at once), so that a failed delete is retried \
                     instead of leaking the VM"
                )));
            }
            if !node.state.is_starting() {
                return Err(Error::InvalidTransition {
                    node: id.to_owned(),
                    from: node.state,
                    to: LifecycleState::Decommissioned,
                });
            }
            if node.hold_count() > 0 {
                let mut v = Verdict::refused(node.state, ReasonCode::HasHolds);
                v.holds = node
                    .holds()
                    .map(|(n, d)| (n.to_owned(), d.to_owned()))
                    .collect();
                return Err(Error::Rejected {
                    node: id.to_owned(),
                    verdict: Box::new(v),
                });
            }
            let mut ctx = tx.node(id)?;
            let rec = ctx
                .entry(AuditAction::NodeProvision, AuditResult::Failed)
                .reason(0, "provisioning_abandoned")
                .error(error.clone());
            ctx.record(rec);
            ctx.transition(
                LifecycleState::Decommissioned,
                "provisioning_abandoned",
                Text::EMPTY,
            )?;
            Ok(NodeInfo::of(ctx.node, ctx.policy, ctx.now))
        })
    }

    /// Forgets a decommissioned node (its audit entries stay). Long-running fleets call this so
    /// that deleted VMs do not accumulate.
    pub fn forget(&self, id: &str) -> Result<()> {
        self.mutate(|tx| {
            let slot = tx.slot(id)?;
            let state = tx.node_at(slot).state;
            if state != LifecycleState::Decommissioned {
                return Err(Error::InvalidArgument(format!(
                    "node {id:?} is {state}; only decommissioned nodes can be forgotten"
                )));
            }
            tx.remove(slot);
            Ok(())
        })
    }
}

/// Applies an attribute update inside a transaction, auditing RAM and cost changes.
fn update_in(tx: &mut super::tx::Tx<'_>, id: &str, update: &NodeUpdate) -> Result<NodeInfo> {
    let mut ctx = tx.node(id)?;
    let changes = ctx.node.update(update)?;
    let audited: Vec<AttributeChange> = changes.into_iter().filter(|c| c.audited).collect();
    if !audited.is_empty() {
        let rec = ctx
            .entry(AuditAction::NodeUpdate, AuditResult::Success)
            .reason(0, describe(&audited));
        ctx.record(rec);
    }
    Ok(NodeInfo::of(ctx.node, ctx.policy, ctx.now))
}
