//! Planning: the capacity projection, consolidation plans and carrying them out.

use super::boundary::*;
use super::handles::{self, nl_fleet};
use crate::ffi_boundary;
use crate::fleet::ConsolidationRequest;
use crate::planning::{ConsolidationPlan, ConsolidationPolicy};

/// The fleet projection as JSON: capacity now (schedulable), cordoned, coming (starting, with
/// their ready deadlines), leaving (draining), unusable (unhealthy), utilisation now and
/// projected.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_projection_json(
    fleet: *const nl_fleet,
    bytes_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(bytes_out, "bytes_out")?;
        let p = handles::enter(fleet)?.projection()?;
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &p) }
    })
}

/// How many more nodes of `node_ram_mb` a further demand of `demand_mb` needs, counting the
/// free capacity now and the capacity already coming.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_additional_nodes_needed(
    fleet: *const nl_fleet,
    demand_mb: u64,
    node_ram_mb: u64,
    nodes_out: *mut u64,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(nodes_out, "nodes_out")?;
        let n = handles::enter(fleet)?
            .projection()?
            .additional_nodes_needed(demand_mb, node_ram_mb)?;
        // SAFETY: checked non-NULL above.
        unsafe { write_out(nodes_out, n, "nodes_out") }
    })
}

/// A consolidation plan as JSON. `request_json` is `{"policy":{..},
/// "non_migratable_containers":[..],"last_consolidation_at_ms":N}`, every field optional
/// (length 0 means all defaults). Read-only: nothing is changed.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_consolidation_plan_json(
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
        let request: ConsolidationRequest =
            unsafe { json_arg(request_json, request_json_len, "request_json") }?;
        let plan = f.consolidation_plan(&request)?;
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &plan) }
    })
}

/// Starts carrying out a plan (the JSON `nl_fleet_consolidation_plan_json` returned, and the
/// policy it was made with): re-validates it (`NL_RESULT_STALE_PLAN` says why not), places
/// evacuate cordons on the nodes to remove, and returns the execution as JSON
/// `{"id":"..","cordon":"consolidation:..","remove":[..],"moves":[..],"savings_eur_per_hour":F}`.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_execute_plan_json(
    fleet: *const nl_fleet,
    plan_json: *const u8,
    plan_json_len: usize,
    policy_json: *const u8,
    policy_json_len: usize,
    bytes_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(bytes_out, "bytes_out")?;
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let text = unsafe { str_arg(plan_json, plan_json_len, "plan_json") }?;
        let plan: ConsolidationPlan =
            serde_json::from_str(text).map_err(|e| FfiError::invalid(format!("plan_json: {e}")))?;
        let policy: ConsolidationPolicy =
            unsafe { json_arg(policy_json, policy_json_len, "policy_json") }?;
        let exec = f.execute_plan(&plan, &policy)?;
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &exec) }
    })
}

/// Abandons a plan execution: lifts its cordons (audited). The nodes uncordoned are a JSON
/// array in `bytes_out`.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_abandon_plan(
    fleet: *const nl_fleet,
    execution_id: *const u8,
    execution_id_len: usize,
    bytes_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(bytes_out, "bytes_out")?;
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length per the contract.
        let id = unsafe { str_arg(execution_id, execution_id_len, "execution_id") }?;
        let nodes = f.abandon_plan(id)?;
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &nodes) }
    })
}
