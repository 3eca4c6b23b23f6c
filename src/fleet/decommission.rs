//! The two-phase decommission protocol: begin (evaluate and drain under one lock), then
//! complete, fail or cancel with the ticket; and finding the ticket of a node again.

use super::tx::{NodeCtx, Tx};
use super::Fleet;
use crate::audit::{AuditAction, AuditRecord, AuditResult};
use crate::error::{Error, Result};
use crate::ids::{DecommissionTicket, TicketId};
use crate::node::Drain;
use crate::reason::ReasonCode;
use crate::safety::{evaluate, Verdict};
use crate::state::LifecycleState;
use crate::text::{sanitize_text, validate_name, Text};

/// The node a ticket names, if the ticket is that node's outstanding one. Anything else (an
/// unknown node, another node's ticket, a used ticket, another fleet's ticket) is
/// [`Error::TicketInvalid`].
fn ticket_node<'t>(tx: &'t mut Tx<'_>, ticket: &DecommissionTicket) -> Result<NodeCtx<'t>> {
    let invalid = |why: &str| {
        Error::TicketInvalid(format!(
            "ticket {} for node {:?} {why}",
            ticket.id, ticket.node_id
        ))
    };
    let node = tx
        .node_ref(&ticket.node_id)
        .map_err(|_| invalid("names a node this fleet does not know"))?;
    match node.drain() {
        Some(d) if d.ticket == ticket.id => tx.node(&ticket.node_id),
        Some(_) => Err(invalid("is not the node's outstanding ticket")),
        None => Err(invalid(
            "is not outstanding (used, cancelled, or from another fleet)",
        )),
    }
}

impl Fleet {
    /// Phase 1: under one lock, evaluates the node and, if allowed, moves it to `draining`
    /// (an unhealthy node keeps its state) and returns a ticket. A refusal records a `rejected`
    /// entry and returns [`Error::Rejected`]; an unknown node records a `failed` entry
    /// (`node_not_found`). A node that already has a ticket is rejected with
    /// `decommission_in_progress`: find its ticket with [`Fleet::ticket_for`].
    pub fn begin_decommission(&self, id: &str, decision_by: &str) -> Result<DecommissionTicket> {
        validate_name("decision_by", decision_by)?;
        validate_name("node id", id)?;
        let ticket = TicketId::random()?;
        self.mutate(|tx| {
            if tx.node_ref(id).is_err() {
                tx.stage(
                    AuditRecord::new(
                        AuditAction::NodeDecommission,
                        Text::new(id),
                        AuditResult::Failed,
                    )
                    .reason(ReasonCode::NodeNotFound.code(), "node not found")
                    .decision_by(Text::new(decision_by))
                    .error(format!("node {id:?} not found")),
                );
                tx.keep_on_error = true;
                return Err(Error::NodeNotFound(id.to_owned()));
            }
            let by = Text::new(decision_by);
            let mut ctx = tx.node(id)?;
            let verdict = match ctx.node.drain() {
                Some(_) => Verdict::refused(ctx.node.state, ReasonCode::DecommissionInProgress),
                None => evaluate(ctx.node, ctx.policy, ctx.now),
            };
            if !verdict.allowed {
                let rec = ctx
                    .entry(AuditAction::NodeDecommission, AuditResult::Rejected)
                    .reason(
                        verdict.primary.map_or(0, ReasonCode::code),
                        verdict.message(),
                    )
                    .decision_by(&by);
                ctx.record(rec);
                tx.keep_on_error = true;
                return Err(Error::Rejected {
                    node: id.to_owned(),
                    verdict: Box::new(verdict),
                });
            }
            // The decision and the state it was made in.
            let rec = ctx
                .entry(AuditAction::NodeDecommission, AuditResult::Success)
                .reason(0, format!("decommission_started: {}", verdict.message()))
                .decision_by(&by);
            ctx.record(rec);
            let pre_drain_state = ctx.node.state;
            // An unhealthy node is not schedulable already and the table has no unhealthy ->
            // draining edge, so it keeps its state; every other allowed node starts draining.
            if pre_drain_state != LifecycleState::Unhealthy {
                ctx.transition(LifecycleState::Draining, "decommission_started", &by)?;
            }
            ctx.node.set_drain(Some(Drain {
                ticket,
                decision_by: by,
                issued_at: ctx.now.wall,
                pre_drain_state,
            }));
            Ok(DecommissionTicket {
                id: ticket,
                node_id: id.to_owned(),
            })
        })
    }

    /// Phase 3 (success): the VM is deleted. The node becomes `decommissioned`; a `success`
    /// entry is recorded. The ticket is used up.
    pub fn complete_decommission(&self, ticket: &DecommissionTicket) -> Result<()> {
        self.mutate(|tx| {
            let mut ctx = ticket_node(tx, ticket)?;
            let drain = ctx.node.take_drain().expect("checked by ticket_node");
            let rec = ctx
                .entry(AuditAction::NodeDecommission, AuditResult::Success)
                .reason(0, "decommission_completed")
                .decision_by(&drain.decision_by);
            ctx.record(rec);
            ctx.transition(
                LifecycleState::Decommissioned,
                "decommission_completed",
                drain.decision_by,
            )?;
            Ok(())
        })
    }

    /// Phase 3 (failure): deleting the VM failed. Records a `failed` entry with `error`; the
    /// node stays draining and the ticket stays valid, to be completed, failed again or
    /// cancelled. `error` may be any bytes (a provider's message): invalid UTF-8 is replaced,
    /// control characters are escaped and the text is bounded, so a failure is always audited.
    pub fn fail_decommission(&self, ticket: &DecommissionTicket, error: &[u8]) -> Result<()> {
        let mut error = sanitize_text(error);
        if error.is_empty() {
            error = "unknown error (the caller gave no text)".into();
        }
        self.mutate(|tx| {
            let mut ctx = ticket_node(tx, ticket)?;
            let by = ctx
                .node
                .drain()
                .map(|d| d.decision_by.clone())
                .unwrap_or_default();
            let rec = ctx
                .entry(AuditAction::NodeDecommission, AuditResult::Failed)
                .reason(0, "provider deletion failed")
                .decision_by(by)
                .error(error.clone());
            ctx.record(rec);
            Ok(())
        })
    }

    /// Abandons the decommission: the node returns to its state before draining (ready or
    /// idle), audited. The ticket is used up. Returns the state the node is in afterwards.
    pub fn cancel_decommission(
        &self,
        ticket: &DecommissionTicket,
        reason: &str,
    ) -> Result<LifecycleState> {
        validate_name("reason", reason)?;
        self.mutate(|tx| {
            let mut ctx = ticket_node(tx, ticket)?;
            let drain = ctx.node.take_drain().expect("checked by ticket_node");
            let reason = format!("decommission_cancelled: {reason}");
            match ctx.node.restore_from_drain(drain.pre_drain_state, ctx.now) {
                Some(change) => ctx.record_change(change, reason, drain.decision_by),
                None => {
                    // An unhealthy node never left its state; record the cancellation itself.
                    let rec = ctx
                        .entry(AuditAction::NodeDecommission, AuditResult::Success)
                        .reason(0, reason)
                        .decision_by(drain.decision_by);
                    ctx.record(rec);
                }
            }
            Ok(ctx.node.state)
        })
    }

    /// The outstanding decommission ticket of a node, if any: a caller that lost its ticket (a
    /// crash, a client that disconnected) finds it here to complete, fail or cancel it.
    pub fn ticket_for(&self, id: &str) -> Result<Option<DecommissionTicket>> {
        self.read(|inner, _| {
            let node = inner.node(id)?;
            Ok(node.drain().map(|d| DecommissionTicket {
                id: d.ticket,
                node_id: id.to_owned(),
            }))
        })?
    }
}
