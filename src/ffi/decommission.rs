//! Verdicts (one node, or every node in one flat list) and the two-phase decommission protocol.

use super::boundary::*;
use super::handles::{self, nl_fleet};
use crate::clock::Timestamp;
use crate::ffi_boundary;
use crate::ids::{DecommissionTicket, TicketId};
use crate::safety::{Decision, Verdict};

/// A safety verdict in flat form. `reasons_mask` has bit `(code - 100)` set for every blocking
/// reason; `primary_reason` is the first of them in rule order (0 when allowed). Messages (and
/// the names of holds and cordons) are in `nl_fleet_evaluate_json`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct nl_verdict {
    pub allowed: bool,
    /// The node's `nl_state`.
    pub state: u32,
    pub primary_reason: u32,
    pub reason_count: u32,
    pub reasons_mask: u64,
    /// Whether `retry_after_ms` is set: timers are the only blockers.
    pub has_retry_after: bool,
    /// When the node could next pass (Unix ms, wall clock).
    pub retry_after_ms: i64,
}

impl From<&Decision> for nl_verdict {
    fn from(d: &Decision) -> Self {
        nl_verdict {
            allowed: d.allowed(),
            state: d.state as u32,
            primary_reason: d.primary().map_or(0, |r| r.code()),
            reason_count: d.blockers.len() as u32,
            reasons_mask: d.reason_mask(),
            has_retry_after: d.retry_after.is_some(),
            retry_after_ms: d.retry_after.map_or(0, Timestamp::as_millis),
        }
    }
}

impl From<&Verdict> for nl_verdict {
    fn from(v: &Verdict) -> Self {
        nl_verdict {
            allowed: v.allowed,
            state: v.state as u32,
            primary_reason: v.primary.map_or(0, |r| r.code()),
            reason_count: v.blockers.len() as u32,
            reasons_mask: v.reason_mask(),
            has_retry_after: v.retry_after.is_some(),
            retry_after_ms: v.retry_after.map_or(0, Timestamp::as_millis),
        }
    }
}

/// A decommission ticket's id: 16 random bytes. A ticket is valid only for the fleet that
/// issued it and the node it was issued for.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct nl_ticket_id {
    pub bytes: [u8; 16],
}

/// The safety verdict for one node, in flat form.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_evaluate(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    verdict_out: *mut nl_verdict,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(verdict_out, "verdict_out")?;
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        let v = f.with_decision(id, |d| nl_verdict::from(d))?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(verdict_out, v, "verdict_out") }
    })
}

/// A verdict returned by value, with the call's result and, on failure, its error: the fast
/// path for bindings (nothing is written through a pointer, so a garbage-collected caller
/// allocates nothing for the call). `verdict` is zeroed on failure; `error` is NULL on success
/// and otherwise an `nl_error` to free with `nl_error_free`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct nl_verdict_result {
    pub verdict: nl_verdict,
    pub result: nl_result,
    pub error: *mut nl_error,
}

/// `nl_fleet_evaluate` returning its outcome by value (see `nl_verdict_result`).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_evaluate_r(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
) -> nl_verdict_result {
    let mut error: *mut nl_error = std::ptr::null_mut();
    let mut verdict = nl_verdict::default();
    let err_out: *mut *mut nl_error = &mut error;
    let result = ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        verdict = f.with_decision(id, |d| nl_verdict::from(d))?;
        Ok(())
    });
    nl_verdict_result {
        verdict,
        result,
        error,
    }
}

/// The safety verdict for one node as JSON, with every reason's message and the names of holds
/// and cordons.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_evaluate_json(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    bytes_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(bytes_out, "bytes_out")?;
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        let v = f.evaluate(id)?;
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &v) }
    })
}

/// Verdicts for every node as a JSON array `[{"node_id":..,"verdict":{..}}]`, ordered by id.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_evaluate_all_json(
    fleet: *const nl_fleet,
    bytes_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(bytes_out, "bytes_out")?;
        let all = handles::enter(fleet)?.evaluate_all()?;
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &all) }
    })
}

// ----- every node's verdict in one flat list -------------------------------------------------------

/// A string inside a list's string buffer: `len` bytes of UTF-8 at `offset`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct nl_str_ref {
    pub offset: u64,
    pub len: u64,
}

/// Appends `s` to `blob` and returns where it is.
pub(crate) fn push_str(blob: &mut Vec<u8>, s: &str) -> nl_str_ref {
    let r = nl_str_ref {
        offset: blob.len() as u64,
        len: s.len() as u64,
    };
    blob.extend_from_slice(s.as_bytes());
    r
}

/// One node's verdict in an `nl_verdict_list`; its id is in the list's string buffer
/// (`nl_verdict_list_ids`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct nl_node_verdict {
    pub id: nl_str_ref,
    pub verdict: nl_verdict,
}

/// Every node's verdict, in flat form, from one call: the batch path for fleet-wide work (one
/// boundary crossing instead of one per node). Free with `nl_verdict_list_free`.
///
/// Thread-safety: owned by the caller that received it; immutable, so it may be read from
/// several threads at once, but not concurrently with `nl_verdict_list_free`.
pub struct nl_verdict_list {
    items: Vec<nl_node_verdict>,
    ids: Vec<u8>,
}

/// Evaluates every node (ordered by id) into a new `nl_verdict_list`.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_evaluate_all(
    fleet: *const nl_fleet,
    list_out: *mut *mut nl_verdict_list,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(list_out, "list_out")?;
        let f = handles::enter(fleet)?;
        let n = f.len();
        // Sized once: growing a large Vec copies it and faults in fresh pages every time.
        let mut list = nl_verdict_list {
            items: Vec::with_capacity(n),
            ids: Vec::with_capacity(n * 24),
        };
        f.with_decisions(|id, v| {
            let id = push_str(&mut list.ids, id);
            list.items.push(nl_node_verdict {
                id,
                verdict: nl_verdict::from(v),
            });
        })?;
        // SAFETY: checked non-NULL above.
        unsafe { list_out.write(hand_out(list, Kind::VerdictList)) };
        Ok(())
    })
}

/// The list's verdicts, a contiguous array of `*count_out` items owned by the list (valid until
/// `nl_verdict_list_free`). NULL (and a count of 0) for NULL or a list already freed.
#[no_mangle]
pub unsafe extern "C" fn nl_verdict_list_items(
    list: *const nl_verdict_list,
    count_out: *mut usize,
) -> *const nl_node_verdict {
    ffi_boundary!(value std::ptr::null(), {
        // SAFETY: checked against the registry.
        let l = unsafe { live(list, Kind::VerdictList, "list") }.ok();
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(count_out, l.map_or(0, |l| l.items.len())) };
        l.map_or(std::ptr::null(), |l| l.items.as_ptr())
    })
}

/// The buffer the items' ids point into (UTF-8, not NUL-terminated), owned by the list;
/// `*len_out` receives its length. NULL for NULL or a list already freed.
#[no_mangle]
pub unsafe extern "C" fn nl_verdict_list_ids(
    list: *const nl_verdict_list,
    len_out: *mut usize,
) -> *const u8 {
    ffi_boundary!(value std::ptr::null(), {
        // SAFETY: checked against the registry.
        let l = unsafe { live(list, Kind::VerdictList, "list") }.ok();
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(len_out, l.map_or(0, |l| l.ids.len())) };
        l.map_or(std::ptr::null(), |l| l.ids.as_ptr())
    })
}

/// Frees a verdict list. NULL is a no-op; a list already freed is reported.
#[no_mangle]
pub unsafe extern "C" fn nl_verdict_list_free(list: *mut nl_verdict_list) -> nl_result {
    ffi_boundary!(value nl_result::Panic, {
        // SAFETY: checked against the registry.
        match unsafe { take_back(list, Kind::VerdictList, "list") } {
            Ok(_) => nl_result::Ok,
            Err(e) => e.code,
        }
    })
}

// ----- the protocol -------------------------------------------------------------------------------

unsafe fn ticket_arg(
    node: *const u8,
    node_len: usize,
    ticket: *const nl_ticket_id,
) -> FfiResult<DecommissionTicket> {
    // SAFETY: per the contract.
    let node = unsafe { str_arg(node, node_len, "node") }?;
    let t = unsafe { ref_arg(ticket, "ticket") }?;
    Ok(DecommissionTicket {
        id: TicketId(t.bytes),
        node_id: node.to_owned(),
    })
}

/// Phase 1: evaluates the node and, if allowed, moves it to draining and writes its ticket to
/// `ticket_out`. A refusal returns the primary reason's code (100+), records a `rejected` audit
/// entry, and its verdict is available through `nl_error_verdict`/`nl_error_detail_json`.
/// A node with a ticket already is `NL_REASON_DECOMMISSION_IN_PROGRESS`: find it with
/// `nl_fleet_ticket_for`. `decision_by` must not be empty.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_begin_decommission(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    decision_by: *const u8,
    decision_by_len: usize,
    ticket_out: *mut nl_ticket_id,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(ticket_out, "ticket_out")?;
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        let by = unsafe { str_arg(decision_by, decision_by_len, "decision_by") }?;
        let t = f.begin_decommission(id, by)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(ticket_out, nl_ticket_id { bytes: t.id.0 }, "ticket_out") }
    })
}

/// Phase 3: the VM of `node` was deleted; the node becomes decommissioned. The ticket is used
/// up. `NL_RESULT_TICKET_INVALID` for a ticket that is not the node's outstanding one.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_complete_decommission(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    ticket: *const nl_ticket_id,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: per the contract.
        let t = unsafe { ticket_arg(node, node_len, ticket) }?;
        f.complete_decommission(&t)?;
        Ok(())
    })
}

/// Phase 3: deleting the VM failed with `error` (any bytes: invalid UTF-8 is replaced, control
/// characters escaped, the text bounded; the failure is always audited). The node stays
/// draining and the ticket stays valid.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_fail_decommission(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    ticket: *const nl_ticket_id,
    error: *const u8,
    error_len: usize,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: per the contract.
        let t = unsafe { ticket_arg(node, node_len, ticket) }?;
        let error = unsafe { bytes_arg(error, error_len, "error") }?;
        f.fail_decommission(&t, error)?;
        Ok(())
    })
}

/// Abandons a decommission: the node returns to ready or idle. `state_out` (optional) receives
/// the node's `nl_state` afterwards. The ticket is used up.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_cancel_decommission(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    ticket: *const nl_ticket_id,
    reason: *const u8,
    reason_len: usize,
    state_out: *mut u32,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: per the contract.
        let t = unsafe { ticket_arg(node, node_len, ticket) }?;
        let reason = unsafe { str_arg(reason, reason_len, "reason") }?;
        let state = f.cancel_decommission(&t, reason)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(state_out, state as u32) };
        Ok(())
    })
}

/// The outstanding ticket of a node, for a caller that lost it: `*found_out` is false (and
/// `ticket_out` untouched) when there is none.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_ticket_for(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    ticket_out: *mut nl_ticket_id,
    found_out: *mut bool,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(ticket_out, "ticket_out")?;
        require_out(found_out, "found_out")?;
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        let t = f.ticket_for(id)?;
        // SAFETY: checked non-NULL.
        unsafe {
            if let Some(t) = &t {
                ticket_out.write(nl_ticket_id { bytes: t.id.0 });
            }
            found_out.write(t.is_some());
        }
        Ok(())
    })
}
