//! `nl_fleet_call`: every fleet operation as one JSON request and one JSON response.
//!
//! This is the entry point language bindings use for everything that is not on a hot path (the
//! Go package calls the typed functions for verdicts, container events and audit lists, and
//! this for the rest): one narrow seam is easier to carry over another runtime (WebAssembly)
//! than a hundred typed signatures. Each request names an operation and its arguments; the
//! response is the operation's result in the library's JSON form. Errors are ordinary
//! `nl_error`s.

use super::boundary::*;
use super::handles::{self, nl_fleet};
use crate::audit::{AuditAction, AuditQuery, AuditRecord, AuditResult};
use crate::clock::Timestamp;
use crate::ffi_boundary;
use crate::fleet::{ConsolidationRequest, Fleet, NodeQuery};
use crate::ids::{ClaimId, DecommissionTicket};
use crate::node::{NodeSpec, NodeUpdate};
use crate::planning::{ConsolidationPlan, ConsolidationPolicy};
use crate::policy::Policy;
use crate::state::{HealthStatus, LifecycleState};
use crate::text::Text;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// One request: `{"op":"<name>", ...arguments}`.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Request {
    Register {
        spec: NodeSpec,
    },
    Update {
        node: String,
        update: NodeUpdate,
    },
    Rename {
        old: String,
        new: String,
    },
    AbandonProvisioning {
        node: String,
        error: String,
    },
    Forget {
        node: String,
    },
    Transition {
        node: String,
        to: LifecycleState,
        reason: String,
    },
    /// `healthy` (true/false) or `status` ("healthy", "unhealthy", "unknown"): exactly one.
    ReportHealth {
        node: String,
        #[serde(default)]
        healthy: Option<bool>,
        #[serde(default)]
        status: Option<HealthStatus>,
    },
    ConfirmGone {
        node: String,
        evidence: String,
    },
    Tick,
    FinishRestore,
    SyncContainers {
        node: String,
        containers: Vec<(String, u64)>,
        /// Also complete the node's pending container sync (as `complete_container_sync`).
        #[serde(default)]
        complete: bool,
    },
    CompleteContainerSync {
        node: String,
    },
    Reserve {
        node: String,
        container: String,
        ram_mb: u64,
    },
    ConfirmReservation {
        node: String,
        container: String,
    },
    ReleaseReservation {
        node: String,
        container: String,
    },
    Claim {
        node: String,
        ram_mb: u64,
        #[serde(default)]
        ttl_ms: u64,
    },
    ConfirmClaim {
        claim: ClaimId,
        container: String,
    },
    ReleaseClaim {
        claim: ClaimId,
    },
    PlaceHold {
        node: String,
        name: String,
        #[serde(default)]
        detail: String,
    },
    ReleaseHold {
        node: String,
        name: String,
    },
    Cordon {
        node: String,
        name: String,
        reason: String,
        #[serde(default)]
        evacuate: bool,
    },
    Uncordon {
        node: String,
        name: String,
    },
    RecordMigration {
        container: String,
        from: String,
        to: String,
        decision_by: String,
    },
    Explain {
        node: String,
    },
    ExplainAll,
    BeginDecommission {
        node: String,
        decision_by: String,
    },
    CompleteDecommission {
        ticket: DecommissionTicket,
    },
    FailDecommission {
        ticket: DecommissionTicket,
        error: String,
    },
    CancelDecommission {
        ticket: DecommissionTicket,
        reason: String,
    },
    TicketFor {
        node: String,
    },
    Node {
        node: String,
    },
    NodeRow {
        node: String,
    },
    Nodes,
    Summary,
    Restoring,
    NodesPage {
        query: NodeQuery,
    },
    Projection,
    AdditionalNodesNeeded {
        demand_mb: u64,
        node_ram_mb: u64,
    },
    ConsolidationPlan {
        #[serde(default)]
        request: ConsolidationRequest,
    },
    ExecutePlan {
        plan: Box<ConsolidationPlan>,
        #[serde(default)]
        policy: ConsolidationPolicy,
    },
    AbandonPlan {
        id: String,
    },
    LastConsolidation,
    AuditPage {
        query: AuditQuery,
    },
    AuditSince {
        cursor: u64,
        limit: usize,
    },
    AuditStats,
    RecordAudit {
        action: AuditAction,
        result: AuditResult,
        node: String,
        #[serde(default)]
        container: Option<String>,
        #[serde(default)]
        reason: String,
        #[serde(default)]
        decision_by: String,
        #[serde(default)]
        error: Option<String>,
    },
    Policy,
    SetPolicy {
        policy: Policy,
    },
    InstanceId,
    Storage,
    Sync,
    Compact,
    Now,
    AdvanceClock {
        ms: u64,
    },
    SetClock {
        ms: i64,
    },
}

/// Serialises a result straight to bytes (no intermediate `Value` tree: a page of nodes is
/// written in one pass).
fn to_value<T: serde::Serialize>(v: T) -> FfiResult<Vec<u8>> {
    serde_json::to_vec(&v).map_err(|e| FfiError::invalid(format!("serialising: {e}")))
}

/// Runs one request against a fleet and returns its result as JSON.
fn dispatch(f: &Fleet, r: Request) -> FfiResult<Vec<u8>> {
    use Request::*;
    Ok(match r {
        Register { spec } => to_value(f.register(spec)?)?,
        Update { node, update } => to_value(f.update(&node, &update)?)?,
        Rename { old, new } => to_value(f.rename(&old, &new)?)?,
        AbandonProvisioning { node, error } => {
            to_value(f.abandon_provisioning(&node, error.as_bytes())?)?
        }
        Forget { node } => to_value(f.forget(&node)?)?,
        Transition { node, to, reason } => {
            to_value(json!({ "changed": f.transition(&node, to, &reason)?.is_some() }))?
        }
        ReportHealth {
            node,
            healthy,
            status,
        } => {
            let status = match (healthy, status) {
                (Some(true), None) => HealthStatus::Healthy,
                (Some(false), None) => HealthStatus::Unhealthy,
                (None, Some(s)) => s,
                _ => {
                    return Err(FfiError::invalid(
                        "report_health takes exactly one of `healthy` and `status`",
                    ))
                }
            };
            to_value(f.report_health_status(&node, status)?)?
        }
        ConfirmGone { node, evidence } => to_value(f.confirm_gone(&node, evidence.as_bytes())?)?,
        Tick => to_value(f.tick()?)?,
        FinishRestore => to_value(json!({ "completed": f.finish_restore()? }))?,
        SyncContainers {
            node,
            containers,
            complete,
        } => {
            let out = f.sync_containers(&node, &containers)?;
            if complete {
                f.complete_container_sync(&node)?;
            }
            to_value(out)?
        }
        CompleteContainerSync { node } => {
            to_value(json!({ "completed": f.complete_container_sync(&node)? }))?
        }
        Reserve {
            node,
            container,
            ram_mb,
        } => to_value(json!({ "created": f.reserve(&node, &container, ram_mb)? }))?,
        ConfirmReservation { node, container } => {
            to_value(f.confirm_reservation(&node, &container)?)?
        }
        ReleaseReservation { node, container } => {
            to_value(json!({ "released": f.release_reservation(&node, &container)? }))?
        }
        Claim {
            node,
            ram_mb,
            ttl_ms,
        } => to_value(json!({ "claim": f.claim(&node, ram_mb, ttl_ms)? }))?,
        ConfirmClaim { claim, container } => to_value(f.confirm_claim(claim, &container)?)?,
        ReleaseClaim { claim } => to_value(json!({ "released": f.release_claim(claim)? }))?,
        PlaceHold { node, name, detail } => {
            to_value(json!({ "created": f.place_hold(&node, &name, &detail)? }))?
        }
        ReleaseHold { node, name } => {
            to_value(json!({ "released": f.release_hold(&node, &name)? }))?
        }
        Cordon {
            node,
            name,
            reason,
            evacuate,
        } => to_value(json!({ "created": f.cordon(&node, &name, &reason, evacuate)? }))?,
        Uncordon { node, name } => to_value(json!({ "removed": f.uncordon(&node, &name)? }))?,
        RecordMigration {
            container,
            from,
            to,
            decision_by,
        } => to_value(f.record_migration(&container, &from, &to, &decision_by)?)?,
        Explain { node } => to_value(f.evaluate(&node)?)?,
        ExplainAll => to_value(f.evaluate_all()?)?,
        BeginDecommission { node, decision_by } => {
            to_value(f.begin_decommission(&node, &decision_by)?)?
        }
        CompleteDecommission { ticket } => to_value(f.complete_decommission(&ticket)?)?,
        FailDecommission { ticket, error } => {
            to_value(f.fail_decommission(&ticket, error.as_bytes())?)?
        }
        CancelDecommission { ticket, reason } => {
            to_value(json!({ "state": f.cancel_decommission(&ticket, &reason)? }))?
        }
        TicketFor { node } => to_value(f.ticket_for(&node)?)?,
        Node { node } => to_value(f.node(&node)?)?,
        NodeRow { node } => to_value(f.node_row(&node)?)?,
        Nodes => to_value(f.nodes()?)?,
        Summary => to_value(f.summary()?)?,
        Restoring => to_value(json!({ "restoring": f.restoring()? }))?,
        NodesPage { query } => to_value(f.nodes_page(&query)?)?,
        Projection => to_value(f.projection()?)?,
        AdditionalNodesNeeded {
            demand_mb,
            node_ram_mb,
        } => to_value(
            json!({ "nodes": f.projection()?.additional_nodes_needed(demand_mb, node_ram_mb)? }),
        )?,
        ConsolidationPlan { request } => to_value(f.consolidation_plan(&request)?)?,
        ExecutePlan { plan, policy } => to_value(f.execute_plan(&plan, &policy)?)?,
        AbandonPlan { id } => to_value(f.abandon_plan(&id)?)?,
        LastConsolidation => to_value(f.last_consolidation())?,
        AuditPage { query } => to_value(f.audit_page(&query)?)?,
        AuditSince { cursor, limit } => to_value(f.audit_since(cursor, limit)?)?,
        AuditStats => to_value(f.audit_stats()?)?,
        RecordAudit {
            action,
            result,
            node,
            container,
            reason,
            decision_by,
            error,
        } => {
            let mut rec = AuditRecord::new(action, node, result)
                .reason(0, reason)
                .decision_by(decision_by);
            rec.container_id = container.filter(|c| !c.is_empty()).map(Text::from);
            rec.error = error.filter(|e| !e.is_empty()).map(Text::from);
            to_value(json!({ "seq": f.record_audit(rec)? }))?
        }
        Policy => to_value(f.policy())?,
        SetPolicy { policy } => to_value(f.set_policy(policy)?)?,
        InstanceId => to_value(f.instance_id())?,
        Storage => {
            to_value(json!({ "open_report": f.open_report(), "status": f.storage_status() }))?
        }
        Sync => to_value(f.sync()?)?,
        Compact => to_value(f.compact()?)?,
        Now => to_value(json!({ "now_ms": f.now() }))?,
        AdvanceClock { ms } => {
            to_value(json!({ "now_ms": f.advance_clock(Duration::from_millis(ms))? }))?
        }
        SetClock { ms } => to_value(f.set_clock(Timestamp(ms))?)?,
    })
}

/// Runs one operation given as JSON (`{"op":"cordon","node":"w-1","name":"disk-full",
/// "reason":"97%"}`) and returns its result as JSON in `bytes_out`. The operations and their
/// arguments are listed in docs/C-API.md; an unknown operation or argument is
/// `NL_RESULT_INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_call(
    fleet: *const nl_fleet,
    request_json: *const u8,
    request_json_len: usize,
    bytes_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(bytes_out, "bytes_out")?;
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length per the contract.
        let text = unsafe { str_arg(request_json, request_json_len, "request_json") }?;
        let request: Request = serde_json::from_str(text)
            .map_err(|e| FfiError::invalid(format!("request_json: {e}")))?;
        let data = dispatch(&f, request)?;
        // SAFETY: out-parameter per the contract.
        unsafe { raw_bytes_out(bytes_out, data) }
    })
}
