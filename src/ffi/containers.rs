//! What runs where: container events, reservations and claims, holds, cordons, migrations.

use super::boundary::*;
use super::handles::{self, nl_fleet};
use crate::ffi_boundary;
use crate::fleet::ContainerOutcome;
use crate::ids::ClaimId;

/// What a container event did.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct nl_container_outcome {
    /// False for a no-op (known id added again, unknown id removed).
    pub changed: bool,
    /// The node's `nl_state` afterwards.
    pub state: u32,
    pub current_containers: u64,
}

impl From<ContainerOutcome> for nl_container_outcome {
    fn from(o: ContainerOutcome) -> Self {
        nl_container_outcome {
            changed: o.changed,
            state: o.state as u32,
            current_containers: o.current_containers,
        }
    }
}

/// A claim of capacity: 8 random bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct nl_claim_id {
    pub bytes: [u8; 8],
}

/// A container started on the node (idempotent by id; consumes a reservation of the same id).
/// Refused on a node that takes no containers (`NL_RESULT_NOT_SCHEDULABLE`, naming its cordons)
/// and for an id that runs on another node (`NL_RESULT_CONTAINER_ELSEWHERE`).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_add_container(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    container: *const u8,
    container_len: usize,
    ram_mb: u64,
    outcome_out: *mut nl_container_outcome,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        let cid = unsafe { str_arg(container, container_len, "container") }?;
        let o = f.add_container(id, cid, ram_mb)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(outcome_out, o.into()) };
        Ok(())
    })
}

/// A container event's outcome returned by value, with the call's result and, on failure,
/// its error (see `nl_verdict_result`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct nl_container_result {
    pub outcome: nl_container_outcome,
    pub result: nl_result,
    pub error: *mut nl_error,
}

/// `nl_fleet_add_container` (`add`) or `nl_fleet_remove_container` (`ram_mb` ignored)
/// returning its outcome by value (see `nl_container_result`).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_container_event_r(
    fleet: *const nl_fleet,
    add: bool,
    node: *const u8,
    node_len: usize,
    container: *const u8,
    container_len: usize,
    ram_mb: u64,
) -> nl_container_result {
    let mut error: *mut nl_error = std::ptr::null_mut();
    let mut outcome = nl_container_outcome::default();
    let err_out: *mut *mut nl_error = &mut error;
    let result = ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        let cid = unsafe { str_arg(container, container_len, "container") }?;
        let o = if add {
            f.add_container(id, cid, ram_mb)?
        } else {
            f.remove_container(id, cid)?
        };
        outcome = o.into();
        Ok(())
    });
    nl_container_result {
        outcome,
        result,
        error,
    }
}

/// A container stopped; an id the node does not run is a no-op reported as
/// `changed == false`.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_remove_container(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    container: *const u8,
    container_len: usize,
    outcome_out: *mut nl_container_outcome,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        let cid = unsafe { str_arg(container, container_len, "container") }?;
        let o = f.remove_container(id, cid)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(outcome_out, o.into()) };
        Ok(())
    })
}

/// Replaces the node's container view with the JSON list `[["c1",2048],...]` (id, RAM MB). A
/// pending container sync stays pending: complete it with `nl_fleet_complete_container_sync`
/// (or `nl_fleet_finish_restore`) once the view is complete.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_sync_containers(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    containers_json: *const u8,
    containers_json_len: usize,
    outcome_out: *mut nl_container_outcome,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        let list: Vec<(String, u64)> =
            unsafe { json_arg(containers_json, containers_json_len, "containers_json") }?;
        let o = f.sync_containers(id, &list)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(outcome_out, o.into()) };
        Ok(())
    })
}

/// Declares the node's container view (refreshed with `nl_fleet_sync_containers`) complete:
/// its pending container sync ends (audited) and the post-sync grace starts. `completed_out`
/// (optional) is false when no sync was pending.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_complete_container_sync(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    completed_out: *mut bool,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        let done = f.complete_container_sync(id)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(completed_out, done) };
        Ok(())
    })
}

/// Reserves `ram_mb` for container `container` about to be placed (a claim keyed by the id;
/// it expires after the policy's claim TTL). `created_out` (optional) is false when the
/// reservation existed and was updated.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_reserve(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    container: *const u8,
    container_len: usize,
    ram_mb: u64,
    created_out: *mut bool,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        let cid = unsafe { str_arg(container, container_len, "container") }?;
        let created = f.reserve(id, cid, ram_mb)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(created_out, created) };
        Ok(())
    })
}

/// Turns a reservation into a running container.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_confirm_reservation(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    container: *const u8,
    container_len: usize,
    outcome_out: *mut nl_container_outcome,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        let cid = unsafe { str_arg(container, container_len, "container") }?;
        let o = f.confirm_reservation(id, cid)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(outcome_out, o.into()) };
        Ok(())
    })
}

/// Drops a reservation. `released_out` (optional) is false when there was none.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_release_reservation(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    container: *const u8,
    container_len: usize,
    released_out: *mut bool,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        let cid = unsafe { str_arg(container, container_len, "container") }?;
        let released = f.release_reservation(id, cid)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(released_out, released) };
        Ok(())
    })
}

/// Claims `ram_mb` on the node for a placement whose container id is not known yet. It counts
/// as occupancy until confirmed, released, or expired after `ttl_ms` (0: the policy's claim TTL;
/// `NL_OFF`: never).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_claim(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    ram_mb: u64,
    ttl_ms: u64,
    claim_out: *mut nl_claim_id,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(claim_out, "claim_out")?;
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        let c = f.claim(id, ram_mb, ttl_ms)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(claim_out, nl_claim_id { bytes: c.0 }, "claim_out") }
    })
}

/// Turns a claim into running container `container` with the claim's RAM.
/// `NL_RESULT_CLAIM_NOT_FOUND` when the claim expired, was used, or is another fleet's.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_confirm_claim(
    fleet: *const nl_fleet,
    claim: *const nl_claim_id,
    container: *const u8,
    container_len: usize,
    outcome_out: *mut nl_container_outcome,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: per the contract.
        let c = unsafe { ref_arg(claim, "claim") }?;
        let cid = unsafe { str_arg(container, container_len, "container") }?;
        let o = f.confirm_claim(ClaimId(c.bytes), cid)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(outcome_out, o.into()) };
        Ok(())
    })
}

/// Releases a claim. `released_out` (optional) is false when it was not outstanding.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_release_claim(
    fleet: *const nl_fleet,
    claim: *const nl_claim_id,
    released_out: *mut bool,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: per the contract.
        let c = unsafe { ref_arg(claim, "claim") }?;
        let released = f.release_claim(ClaimId(c.bytes))?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(released_out, released) };
        Ok(())
    })
}

/// Places a named hold (a node with holds is never drained). `created_out` (optional) is false
/// when the hold existed.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_place_hold(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    name: *const u8,
    name_len: usize,
    detail: *const u8,
    detail_len: usize,
    created_out: *mut bool,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        let name = unsafe { str_arg(name, name_len, "name") }?;
        let detail = unsafe { str_arg(detail, detail_len, "detail") }?;
        let created = f.place_hold(id, name, detail)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(created_out, created) };
        Ok(())
    })
}

/// Releases a hold. `released_out` (optional) is false when there was none by that name.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_release_hold(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    name: *const u8,
    name_len: usize,
    released_out: *mut bool,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        let name = unsafe { str_arg(name, name_len, "name") }?;
        let released = f.release_hold(id, name)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(released_out, released) };
        Ok(())
    })
}

/// Places a named cordon: the node takes no new containers or claims, its state and running
/// containers are unchanged. With `evacuate`, the node is being emptied on purpose (its last
/// container leaving under the cordon waives the idle grace). `reason` may be any bytes (it is
/// sanitised). Audited as `node_cordon`. `created_out` (optional) is false when a cordon of
/// that name was in place already: it is left unchanged and nothing is recorded.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_cordon(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    name: *const u8,
    name_len: usize,
    reason: *const u8,
    reason_len: usize,
    evacuate: bool,
    created_out: *mut bool,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        let name = unsafe { str_arg(name, name_len, "name") }?;
        let reason = unsafe { bytes_arg(reason, reason_len, "reason") }?;
        let created = f.cordon(id, name, &String::from_utf8_lossy(reason), evacuate)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(created_out, created) };
        Ok(())
    })
}

/// Removes a cordon (audited as `node_uncordon`). `removed_out` (optional) is false when there
/// was none by that name.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_uncordon(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    name: *const u8,
    name_len: usize,
    removed_out: *mut bool,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        let name = unsafe { str_arg(name, name_len, "name") }?;
        let removed = f.uncordon(id, name)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(removed_out, removed) };
        Ok(())
    })
}

/// Records that a container moved from `from_node` to `to_node` (atomically, audited as
/// `container_migrate`). Refused when the container does not run on `from_node`, or when
/// `to_node` takes no containers or would overfill. `decision_by` must not be empty.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_record_migration(
    fleet: *const nl_fleet,
    container: *const u8,
    container_len: usize,
    from_node: *const u8,
    from_node_len: usize,
    to_node: *const u8,
    to_node_len: usize,
    decision_by: *const u8,
    decision_by_len: usize,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let cid = unsafe { str_arg(container, container_len, "container") }?;
        let from = unsafe { str_arg(from_node, from_node_len, "from_node") }?;
        let to = unsafe { str_arg(to_node, to_node_len, "to_node") }?;
        let by = unsafe { str_arg(decision_by, decision_by_len, "decision_by") }?;
        f.record_migration(cid, from, to, by)?;
        Ok(())
    })
}
