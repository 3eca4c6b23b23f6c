//! `nl_fleet`: registration, lifecycle events, verdicts, the decommission protocol and audit
//! queries.

use super::boundary::*;
use super::options::nl_options;
use crate::audit::{AuditAction, AuditRecord, AuditResult};
use crate::clock::Timestamp;
use crate::ffi_boundary;
use crate::fleet::{ContainerOutcome, Fleet, HealthOutcome};
use crate::node::NodeSpec;
use crate::policy::FleetOptions;
use crate::safety::Verdict;
use crate::state::{LifecycleState, NodeOrigin};
use once_cell::sync::Lazy;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A fleet of nodes: the registry, its audit ring, policy and clock.
///
/// Thread-safety: fully thread-safe. One `nl_fleet` may be used from any number of threads at
/// once; every call is atomic. The pointer is an opaque token that is never dereferenced:
/// a call on a freed fleet returns `NL_RESULT_USE_AFTER_FREE` instead of touching memory, and
/// `nl_fleet_free` while other threads are inside calls is safe (they finish first).
pub struct nl_fleet {
    _opaque: [u8; 0],
}

/// Tokens are small distinct integers chosen by us, so a multiplicative hash spreads them as
/// well as SipHash does, at a fraction of the cost on every call.
#[derive(Default)]
struct TokenHasher(u64);

impl std::hash::Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ *b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type TokenMap = HashMap<usize, Arc<Fleet>, std::hash::BuildHasherDefault<TokenHasher>>;

/// Live fleets by token. Tokens are never reused, so a stale token is always detected.
static FLEETS: Lazy<RwLock<TokenMap>> = Lazy::new(Default::default);
static NEXT_TOKEN: AtomicUsize = AtomicUsize::new(1);

fn fleet_arg(fleet: *const nl_fleet) -> FfiResult<Arc<Fleet>> {
    if fleet.is_null() {
        return Err(FfiError::null("fleet"));
    }
    FLEETS
        .read()
        .get(&(fleet as usize))
        .cloned()
        .ok_or_else(|| {
            FfiError::new(
                nl_result::UseAfterFree,
                "fleet handle was already freed or did not come from nl_fleet_new",
            )
        })
}

fn state_arg(n: u32) -> FfiResult<LifecycleState> {
    LifecycleState::from_u32(n).ok_or_else(|| FfiError::unknown_enum("nl_state", n))
}

/// A safety verdict in flat form. `reasons_mask` has bit `(code - 100)` set for every blocking
/// reason; `primary_reason` is the first of them in rule order (0 when allowed). Messages are in
/// `nl_fleet_evaluate_json`.
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
    /// When the node could next pass (Unix ms).
    pub retry_after_ms: i64,
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

/// What a health report did.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct nl_health_outcome {
    /// The node's `nl_health` afterwards.
    pub health: u32,
    /// The node's `nl_state` afterwards.
    pub state: u32,
    pub consecutive_failures: u32,
}

impl From<HealthOutcome> for nl_health_outcome {
    fn from(o: HealthOutcome) -> Self {
        nl_health_outcome {
            health: o.health as u32,
            state: o.state as u32,
            consecutive_failures: o.consecutive_failures,
        }
    }
}

/// What is known about a node when registering it. Strings are pointer + length; the library
/// copies what it keeps.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct nl_node_spec {
    pub id: *const u8,
    pub id_len: usize,
    /// An `nl_origin`.
    pub origin: u32,
    /// Usable RAM; 0 = unknown (reservations are then not capacity-checked).
    pub total_ram_mb: u64,
    pub instance_type: *const u8,
    pub instance_type_len: usize,
    pub hourly_cost_eur: f64,
    /// Dedicated nodes only: `NL_STATE_ACTIVE` or `NL_STATE_READY`; -1 for the origin's default.
    pub initial_state: i32,
    /// Recovered nodes only: whether `provisioned_at_ms` (the VM's creation time) is set.
    pub has_provisioned_at: bool,
    pub provisioned_at_ms: i64,
}

unsafe fn spec_arg(spec: *const nl_node_spec) -> FfiResult<NodeSpec> {
    // SAFETY: NULL or a readable nl_node_spec per the contract.
    let s = unsafe { spec.as_ref() }.ok_or_else(|| FfiError::null("spec"))?;
    // SAFETY: pointer + length pairs per the contract.
    let id = unsafe { str_arg(s.id, s.id_len, "spec.id") }?;
    let instance_type =
        unsafe { str_arg(s.instance_type, s.instance_type_len, "spec.instance_type") }?;
    let origin = NodeOrigin::from_u32(s.origin)
        .ok_or_else(|| FfiError::unknown_enum("nl_origin", s.origin))?;
    let initial_state = match s.initial_state {
        -1 => None,
        n => Some(
            u32::try_from(n)
                .ok()
                .and_then(LifecycleState::from_u32)
                .ok_or_else(|| {
                    FfiError::new(
                        nl_result::UnknownEnum,
                        format!("{n} is not a valid nl_state"),
                    )
                })?,
        ),
    };
    Ok(NodeSpec {
        id: id.to_owned(),
        origin,
        total_ram_mb: s.total_ram_mb,
        instance_type: instance_type.to_owned(),
        hourly_cost_eur: s.hourly_cost_eur,
        initial_state,
        provisioned_at_ms: s
            .has_provisioned_at
            .then_some(Timestamp(s.provisioned_at_ms)),
    })
}

// ----- lifetime ------------------------------------------------------------------------------

/// Creates a fleet from `options` (NULL = defaults, wall clock). Free with `nl_fleet_free`.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_new(
    options: *const nl_options,
    fleet_out: *mut *mut nl_fleet,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(fleet_out, "fleet_out")?;
        // SAFETY: NULL or a live nl_options per the contract.
        let fleet = match unsafe { options.as_ref() } {
            Some(o) => {
                let mut b = Fleet::builder(o.options);
                if let Some(start) = o.manual_clock_start {
                    b = b.manual_clock(start);
                }
                if let Some(dir) = &o.data_dir {
                    b = b.data_dir(dir, o.storage.clone());
                }
                b.build()?
            }
            None => Fleet::new(FleetOptions::default())?,
        };
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed) << 4;
        FLEETS.write().insert(token, Arc::new(fleet));
        // SAFETY: checked non-NULL.
        unsafe { fleet_out.write(token as *mut nl_fleet) };
        Ok(())
    })
}

/// Frees a fleet. NULL and an already-freed fleet are no-ops. Calls still running on other
/// threads finish normally; later calls return `NL_RESULT_USE_AFTER_FREE`.
#[no_mangle]
pub extern "C" fn nl_fleet_free(fleet: *mut nl_fleet) {
    ffi_boundary!(value(), {
        if !fleet.is_null() {
            let removed = {
                let mut fleets = FLEETS.write();
                let removed = fleets.remove(&(fleet as usize));
                if fleets.is_empty() {
                    // Give the table back, so a program that frees every fleet ends with
                    // nothing allocated (and leak checkers stay quiet).
                    fleets.shrink_to_fit();
                }
                removed
            };
            // Dropped outside the lock: freeing a large fleet must not stall other fleets.
            drop(removed);
        }
    })
}

/// Forces a persistent fleet's journal to disk (a no-op for an in-memory fleet).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_sync(
    fleet: *const nl_fleet,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        fleet_arg(fleet)?.sync()?;
        Ok(())
    })
}

/// Writes a snapshot and starts a new journal now (a no-op for an in-memory fleet).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_compact(
    fleet: *const nl_fleet,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        fleet_arg(fleet)?.compact()?;
        Ok(())
    })
}

/// The storage state as JSON: `{"open_report":{..},"status":{..}}`, both null for an in-memory
/// fleet. The open report says what reopening found (torn tail bytes skipped, records replayed).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_storage_json(
    fleet: *const nl_fleet,
    bytes_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(bytes_out, "bytes_out")?;
        let f = fleet_arg(fleet)?;
        let info = serde_json::json!({
            "open_report": f.open_report(),
            "status": f.storage_status(),
        });
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &info) }
    })
}

/// Replaces the fleet's policy with the one in `options` (the audit capacity and clock of the
/// options are ignored: they are fixed when the fleet is created).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_set_policy(
    fleet: *const nl_fleet,
    options: *const nl_options,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = fleet_arg(fleet)?;
        // SAFETY: NULL or a live nl_options per the contract.
        let o = unsafe { options.as_ref() }.ok_or_else(|| FfiError::null("options"))?;
        f.set_policy(o.options.policy)?;
        Ok(())
    })
}

/// The fleet's policy as JSON (`nl_bytes`, free with `nl_bytes_free`).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_policy_json(
    fleet: *const nl_fleet,
    bytes_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = fleet_arg(fleet)?;
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &f.policy()) }
    })
}

// ----- clock ---------------------------------------------------------------------------------

/// The library clock's time (Unix ms).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_now_ms(
    fleet: *const nl_fleet,
    now_out: *mut i64,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = fleet_arg(fleet)?;
        // SAFETY: out-parameter per the contract.
        unsafe { write_out(now_out, f.now().as_millis(), "now_out") }
    })
}

/// Moves a manual clock forward by `ms`; `NL_RESULT_NOT_MANUAL_CLOCK` on the wall clock.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_advance_clock_ms(
    fleet: *const nl_fleet,
    ms: u64,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        fleet_arg(fleet)?.advance_clock(Duration::from_millis(ms))?;
        Ok(())
    })
}

/// Sets a manual clock to `now_ms` (Unix ms); `NL_RESULT_NOT_MANUAL_CLOCK` on the wall clock.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_set_clock_ms(
    fleet: *const nl_fleet,
    now_ms: i64,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        fleet_arg(fleet)?.set_clock(Timestamp(now_ms))?;
        Ok(())
    })
}

// ----- registration and lifecycle ------------------------------------------------------------

/// Registers a node. The origin decides the starting state: cloud -> provisioning, system and
/// dedicated -> active, recovered -> ready with its container sync pending.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_register(
    fleet: *const nl_fleet,
    spec: *const nl_node_spec,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = fleet_arg(fleet)?;
        // SAFETY: NULL or a readable spec per the contract.
        let spec = unsafe { spec_arg(spec) }?;
        f.register(spec)?;
        Ok(())
    })
}

/// Forgets a decommissioned node (its audit entries stay).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_forget(
    fleet: *const nl_fleet,
    node_id: *const u8,
    node_id_len: usize,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = fleet_arg(fleet)?;
        // SAFETY: pointer + length per the contract.
        let id = unsafe { str_arg(node_id, node_id_len, "node_id") }?;
        f.forget(id)?;
        Ok(())
    })
}

/// Moves a node to `to` (an `nl_state`) along the transition table, recording `reason`.
/// `changed_out` (optional) is false when the node already was in `to`.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_transition(
    fleet: *const nl_fleet,
    node_id: *const u8,
    node_id_len: usize,
    to: u32,
    reason: *const u8,
    reason_len: usize,
    changed_out: *mut bool,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = fleet_arg(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node_id, node_id_len, "node_id") }?;
        let reason = unsafe { str_arg(reason, reason_len, "reason") }?;
        let change = f.transition(id, state_arg(to)?, reason)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(changed_out, change.is_some()) };
        Ok(())
    })
}

/// Takes one health-check result (`healthy` true or false) and applies the health policy.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_report_health(
    fleet: *const nl_fleet,
    node_id: *const u8,
    node_id_len: usize,
    healthy: bool,
    outcome_out: *mut nl_health_outcome,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = fleet_arg(fleet)?;
        // SAFETY: pointer + length per the contract.
        let id = unsafe { str_arg(node_id, node_id_len, "node_id") }?;
        let o = f.report_health(id, healthy)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(outcome_out, o.into()) };
        Ok(())
    })
}

/// Applies the provisioning and sync timeouts; the report (which nodes fired) is JSON in
/// `report_out` (optional: NULL discards it).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_tick(
    fleet: *const nl_fleet,
    report_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = fleet_arg(fleet)?;
        let report = f.tick()?;
        if !report_out.is_null() {
            // SAFETY: non-NULL out-parameter per the contract.
            unsafe { json_out(report_out, &report) }?;
        }
        Ok(())
    })
}

/// Ends the restore pass: every pending container sync completes now. `completed_out`
/// (optional) receives how many nodes it completed.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_finish_restore(
    fleet: *const nl_fleet,
    completed_out: *mut usize,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let n = fleet_arg(fleet)?.finish_restore()?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(completed_out, n) };
        Ok(())
    })
}

// ----- containers, reservations, holds -------------------------------------------------------

/// A container started (idempotent by id; consumes a reservation of the same id).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_add_container(
    fleet: *const nl_fleet,
    node_id: *const u8,
    node_id_len: usize,
    container_id: *const u8,
    container_id_len: usize,
    ram_mb: u64,
    outcome_out: *mut nl_container_outcome,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = fleet_arg(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node_id, node_id_len, "node_id") }?;
        let cid = unsafe { str_arg(container_id, container_id_len, "container_id") }?;
        let o = f.add_container(id, cid, ram_mb)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(outcome_out, o.into()) };
        Ok(())
    })
}

/// A container stopped; an unknown id is a no-op reported as `changed == false`.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_remove_container(
    fleet: *const nl_fleet,
    node_id: *const u8,
    node_id_len: usize,
    container_id: *const u8,
    container_id_len: usize,
    outcome_out: *mut nl_container_outcome,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = fleet_arg(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node_id, node_id_len, "node_id") }?;
        let cid = unsafe { str_arg(container_id, container_id_len, "container_id") }?;
        let o = f.remove_container(id, cid)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(outcome_out, o.into()) };
        Ok(())
    })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncedContainer {
    id: String,
    ram_mb: u64,
}

/// Replaces the node's container view with the JSON list `[{"id":"c1","ram_mb":2048}, ...]`
/// and completes its pending container sync.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_sync_containers(
    fleet: *const nl_fleet,
    node_id: *const u8,
    node_id_len: usize,
    containers_json: *const u8,
    containers_json_len: usize,
    outcome_out: *mut nl_container_outcome,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = fleet_arg(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node_id, node_id_len, "node_id") }?;
        let json = unsafe { str_arg(containers_json, containers_json_len, "containers_json") }?;
        let list: Vec<SyncedContainer> = serde_json::from_str(json).map_err(|e| {
            FfiError::new(nl_result::InvalidArgument, format!("containers_json: {e}"))
        })?;
        let list: Vec<(String, u64)> = list.into_iter().map(|c| (c.id, c.ram_mb)).collect();
        let o = f.sync_containers(id, &list)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(outcome_out, o.into()) };
        Ok(())
    })
}

/// Reserves `ram_mb` for a container about to be placed. `created_out` (optional) is false when
/// the reservation existed and was updated.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_reserve(
    fleet: *const nl_fleet,
    node_id: *const u8,
    node_id_len: usize,
    container_id: *const u8,
    container_id_len: usize,
    ram_mb: u64,
    created_out: *mut bool,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = fleet_arg(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node_id, node_id_len, "node_id") }?;
        let cid = unsafe { str_arg(container_id, container_id_len, "container_id") }?;
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
    node_id: *const u8,
    node_id_len: usize,
    container_id: *const u8,
    container_id_len: usize,
    outcome_out: *mut nl_container_outcome,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = fleet_arg(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node_id, node_id_len, "node_id") }?;
        let cid = unsafe { str_arg(container_id, container_id_len, "container_id") }?;
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
    node_id: *const u8,
    node_id_len: usize,
    container_id: *const u8,
    container_id_len: usize,
    released_out: *mut bool,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = fleet_arg(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node_id, node_id_len, "node_id") }?;
        let cid = unsafe { str_arg(container_id, container_id_len, "container_id") }?;
        let released = f.release_reservation(id, cid)?;
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
    node_id: *const u8,
    node_id_len: usize,
    name: *const u8,
    name_len: usize,
    detail: *const u8,
    detail_len: usize,
    created_out: *mut bool,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = fleet_arg(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node_id, node_id_len, "node_id") }?;
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
    node_id: *const u8,
    node_id_len: usize,
    name: *const u8,
    name_len: usize,
    released_out: *mut bool,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = fleet_arg(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node_id, node_id_len, "node_id") }?;
        let name = unsafe { str_arg(name, name_len, "name") }?;
        let released = f.release_hold(id, name)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(released_out, released) };
        Ok(())
    })
}

// ----- verdicts ------------------------------------------------------------------------------

/// The safety verdict for one node, in flat form.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_evaluate(
    fleet: *const nl_fleet,
    node_id: *const u8,
    node_id_len: usize,
    verdict_out: *mut nl_verdict,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(verdict_out, "verdict_out")?;
        let f = fleet_arg(fleet)?;
        // SAFETY: pointer + length per the contract.
        let id = unsafe { str_arg(node_id, node_id_len, "node_id") }?;
        let v = f.evaluate(id)?;
        // SAFETY: checked non-NULL above.
        unsafe { write_out(verdict_out, nl_verdict::from(&v), "verdict_out") }
    })
}

/// The safety verdict for one node as JSON, with every reason's message.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_evaluate_json(
    fleet: *const nl_fleet,
    node_id: *const u8,
    node_id_len: usize,
    bytes_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(bytes_out, "bytes_out")?;
        let f = fleet_arg(fleet)?;
        // SAFETY: pointer + length per the contract.
        let id = unsafe { str_arg(node_id, node_id_len, "node_id") }?;
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
        let all = fleet_arg(fleet)?.evaluate_all();
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &all) }
    })
}

// ----- decommission protocol -----------------------------------------------------------------

/// Phase 1: evaluates the node and, if allowed, moves it to draining and writes a ticket to
/// `ticket_out`. A refusal returns the primary reason's code (100+), records a `rejected` audit
/// entry, and its verdict is available through `nl_error_verdict`. `decision_by` must not be
/// empty.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_begin_decommission(
    fleet: *const nl_fleet,
    node_id: *const u8,
    node_id_len: usize,
    decision_by: *const u8,
    decision_by_len: usize,
    ticket_out: *mut u64,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(ticket_out, "ticket_out")?;
        let f = fleet_arg(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node_id, node_id_len, "node_id") }?;
        let by = unsafe { str_arg(decision_by, decision_by_len, "decision_by") }?;
        let ticket = f.begin_decommission(id, by)?;
        // SAFETY: checked non-NULL above.
        unsafe { write_out(ticket_out, ticket.id, "ticket_out") }
    })
}

/// Phase 3: the VM was deleted; the node becomes decommissioned. The ticket is used up.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_complete_decommission(
    fleet: *const nl_fleet,
    ticket: u64,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        fleet_arg(fleet)?.complete_decommission(ticket)?;
        Ok(())
    })
}

/// Phase 3: deleting the VM failed with `error` (not empty). The node stays draining and the
/// ticket stays valid.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_fail_decommission(
    fleet: *const nl_fleet,
    ticket: u64,
    error: *const u8,
    error_len: usize,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = fleet_arg(fleet)?;
        // SAFETY: pointer + length per the contract.
        let error = unsafe { str_arg(error, error_len, "error") }?;
        f.fail_decommission(ticket, error)?;
        Ok(())
    })
}

/// Abandons a decommission: the node returns to ready or idle. `state_out` (optional) receives
/// the node's `nl_state` afterwards. The ticket is used up.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_cancel_decommission(
    fleet: *const nl_fleet,
    ticket: u64,
    reason: *const u8,
    reason_len: usize,
    state_out: *mut u32,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = fleet_arg(fleet)?;
        // SAFETY: pointer + length per the contract.
        let reason = unsafe { str_arg(reason, reason_len, "reason") }?;
        let state = f.cancel_decommission(ticket, reason)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(state_out, state as u32) };
        Ok(())
    })
}

// ----- views ---------------------------------------------------------------------------------

/// One node as JSON (state, health, containers, metrics, decommission ticket).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_node_json(
    fleet: *const nl_fleet,
    node_id: *const u8,
    node_id_len: usize,
    bytes_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(bytes_out, "bytes_out")?;
        let f = fleet_arg(fleet)?;
        // SAFETY: pointer + length per the contract.
        let id = unsafe { str_arg(node_id, node_id_len, "node_id") }?;
        let node = f.node(id)?;
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &node) }
    })
}

/// Every node as a JSON array, ordered by id.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_nodes_json(
    fleet: *const nl_fleet,
    bytes_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(bytes_out, "bytes_out")?;
        let nodes = fleet_arg(fleet)?.nodes();
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &nodes) }
    })
}

// ----- audit ---------------------------------------------------------------------------------

/// Which entries an audit query selects.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum nl_audit_filter {
    /// Every entry.
    All = 0,
    /// Entries whose node id equals `text`.
    Node = 1,
    /// Entries whose action equals `value` (an `nl_audit_action`).
    Action = 2,
    /// Entries whose result equals `value` (an `nl_audit_result`).
    Result = 3,
}

/// The entries an audit query selects (shared by the JSON and flat forms).
unsafe fn query_entries(
    f: &Fleet,
    filter: u32,
    text: *const u8,
    text_len: usize,
    value: u32,
    limit: usize,
) -> FfiResult<Vec<crate::audit::AuditEntry>> {
    Ok(match filter {
        f_ if f_ == nl_audit_filter::All as u32 => f.audit_recent(limit),
        f_ if f_ == nl_audit_filter::Node as u32 => {
            // SAFETY: pointer + length per the contract.
            let id = unsafe { str_arg(text, text_len, "text") }?;
            f.audit_by_node(id, limit)
        }
        f_ if f_ == nl_audit_filter::Action as u32 => {
            let a = AuditAction::from_u32(value)
                .ok_or_else(|| FfiError::unknown_enum("nl_audit_action", value))?;
            f.audit_by_action(a, limit)
        }
        f_ if f_ == nl_audit_filter::Result as u32 => {
            let r = AuditResult::from_u32(value)
                .ok_or_else(|| FfiError::unknown_enum("nl_audit_result", value))?;
            f.audit_by_result(r, limit)
        }
        other => return Err(FfiError::unknown_enum("nl_audit_filter", other)),
    })
}

/// The newest `limit` entries matching the filter, oldest first, as a JSON array.
/// `text` is used by `NL_AUDIT_FILTER_NODE`, `value` by the action and result filters.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_audit_query(
    fleet: *const nl_fleet,
    filter: u32,
    text: *const u8,
    text_len: usize,
    value: u32,
    limit: usize,
    bytes_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(bytes_out, "bytes_out")?;
        let f = fleet_arg(fleet)?;
        // SAFETY: pointer + length per the contract.
        let entries = unsafe { query_entries(&f, filter, text, text_len, value, limit) }?;
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &entries) }
    })
}

/// Up to `limit` entries with a sequence number above `cursor`, as JSON
/// `{"entries":[..],"missed":N,"next_cursor":S}`; `missed` counts entries evicted before this
/// reader saw them.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_audit_since(
    fleet: *const nl_fleet,
    cursor: u64,
    limit: usize,
    bytes_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(bytes_out, "bytes_out")?;
        let page = fleet_arg(fleet)?.audit_since(cursor, limit);
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &page) }
    })
}

/// Audit statistics as JSON (recorded, retained, evicted, by action, by result, last entry).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_audit_stats(
    fleet: *const nl_fleet,
    bytes_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(bytes_out, "bytes_out")?;
        let stats = fleet_arg(fleet)?.audit_stats();
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &stats) }
    })
}

/// Records an entry for an action the caller performed (scale up/down, a migration).
/// `container_id`, `reason`, `decision_by` and `error` may be empty; an empty `error` means none.
/// `seq_out` (optional) receives the entry's sequence number.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_audit_record(
    fleet: *const nl_fleet,
    action: u32,
    result: u32,
    node_id: *const u8,
    node_id_len: usize,
    container_id: *const u8,
    container_id_len: usize,
    reason: *const u8,
    reason_len: usize,
    decision_by: *const u8,
    decision_by_len: usize,
    error: *const u8,
    error_len: usize,
    seq_out: *mut u64,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = fleet_arg(fleet)?;
        let action = AuditAction::from_u32(action)
            .ok_or_else(|| FfiError::unknown_enum("nl_audit_action", action))?;
        let result = AuditResult::from_u32(result)
            .ok_or_else(|| FfiError::unknown_enum("nl_audit_result", result))?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node_id, node_id_len, "node_id") }?;
        let cid = unsafe { str_arg(container_id, container_id_len, "container_id") }?;
        let reason = unsafe { str_arg(reason, reason_len, "reason") }?;
        let by = unsafe { str_arg(decision_by, decision_by_len, "decision_by") }?;
        let error = unsafe { str_arg(error, error_len, "error") }?;
        let mut rec = AuditRecord::new(action, id, result)
            .reason(0, reason)
            .decision_by(by);
        if !cid.is_empty() {
            rec = rec.container(cid);
        }
        if !error.is_empty() {
            rec = rec.error(error);
        }
        let seq = f.record_audit(rec)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(seq_out, seq) };
        Ok(())
    })
}

// ----- planning ------------------------------------------------------------------------------

/// The fleet projection as JSON: capacity now (schedulable), coming (starting, with their ready
/// deadlines), leaving (draining), unusable (unhealthy), utilisation now and projected.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_projection_json(
    fleet: *const nl_fleet,
    bytes_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(bytes_out, "bytes_out")?;
        let p = fleet_arg(fleet)?.projection();
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
        let n = fleet_arg(fleet)?
            .projection()
            .additional_nodes_needed(demand_mb, node_ram_mb)?;
        // SAFETY: checked non-NULL above.
        unsafe { write_out(nodes_out, n, "nodes_out") }
    })
}

/// A consolidation plan as JSON. `request_json` is
/// `{"policy":{..},"non_migratable_containers":[..],"last_consolidation_at_ms":N}`, every
/// field optional (length 0 means all defaults). Read-only: nothing is changed.
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
        let f = fleet_arg(fleet)?;
        // SAFETY: pointer + length per the contract.
        let text = unsafe { str_arg(request_json, request_json_len, "request_json") }?;
        let request: crate::fleet::ConsolidationRequest = if text.is_empty() {
            Default::default()
        } else {
            serde_json::from_str(text).map_err(|e| {
                FfiError::new(nl_result::InvalidArgument, format!("request_json: {e}"))
            })?
        };
        let plan = f.consolidation_plan(&request)?;
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &plan) }
    })
}

/// Records that a container moved from `from_node` to `to_node` (atomically, audited as
/// `container_migrate`). `decision_by` must not be empty.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_record_migration(
    fleet: *const nl_fleet,
    container_id: *const u8,
    container_id_len: usize,
    from_node: *const u8,
    from_node_len: usize,
    to_node: *const u8,
    to_node_len: usize,
    decision_by: *const u8,
    decision_by_len: usize,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = fleet_arg(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let cid = unsafe { str_arg(container_id, container_id_len, "container_id") }?;
        let from = unsafe { str_arg(from_node, from_node_len, "from_node") }?;
        let to = unsafe { str_arg(to_node, to_node_len, "to_node") }?;
        let by = unsafe { str_arg(decision_by, decision_by_len, "decision_by") }?;
        f.record_migration(cid, from, to, by)?;
        Ok(())
    })
}

// ----- batch verdicts ------------------------------------------------------------------------

/// A string inside a list's string buffer: `len` bytes of UTF-8 at `offset`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct nl_str_ref {
    pub offset: usize,
    pub len: usize,
}

/// Appends `s` to `blob` and returns where it is.
fn push_str(blob: &mut Vec<u8>, s: &str) -> nl_str_ref {
    let r = nl_str_ref {
        offset: blob.len(),
        len: s.len(),
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
        let f = fleet_arg(fleet)?;
        let n = f.len();
        // Sized once: growing a large Vec copies it and faults in fresh pages every time.
        let mut list = nl_verdict_list {
            items: Vec::with_capacity(n),
            ids: Vec::with_capacity(n * 24),
        };
        f.with_verdicts(|id, v| {
            let id = push_str(&mut list.ids, id);
            list.items.push(nl_node_verdict {
                id,
                verdict: nl_verdict::from(v),
            });
        });
        // SAFETY: checked non-NULL above.
        unsafe { list_out.write(Box::into_raw(Box::new(list))) };
        Ok(())
    })
}

/// The list's verdicts, a contiguous array of `*count_out` items owned by the list (valid until
/// `nl_verdict_list_free`). NULL (and a count of 0) for a NULL list.
#[no_mangle]
pub unsafe extern "C" fn nl_verdict_list_items(
    list: *const nl_verdict_list,
    count_out: *mut usize,
) -> *const nl_node_verdict {
    ffi_boundary!(value std::ptr::null(), {
        // SAFETY: NULL or a live list per the contract.
        let l = unsafe { list.as_ref() };
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(count_out, l.map_or(0, |l| l.items.len())) };
        l.map_or(std::ptr::null(), |l| l.items.as_ptr())
    })
}

/// The buffer the items' ids point into (UTF-8, not NUL-terminated), owned by the list;
/// `*len_out` receives its length. NULL for a NULL list.
#[no_mangle]
pub unsafe extern "C" fn nl_verdict_list_ids(
    list: *const nl_verdict_list,
    len_out: *mut usize,
) -> *const u8 {
    ffi_boundary!(value std::ptr::null(), {
        // SAFETY: NULL or a live list per the contract.
        let l = unsafe { list.as_ref() };
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(len_out, l.map_or(0, |l| l.ids.len())) };
        l.map_or(std::ptr::null(), |l| l.ids.as_ptr())
    })
}

/// Frees a verdict list. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn nl_verdict_list_free(list: *mut nl_verdict_list) {
    ffi_boundary!(value(), {
        if !list.is_null() {
            // SAFETY: a pointer this library returned and the caller has not freed.
            drop(unsafe { Box::from_raw(list) });
        }
    })
}

// ----- flat audit queries ----------------------------------------------------------------------

/// A state snapshot in flat form (durations in milliseconds; `has_*` say whether the optional
/// ones are set).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct nl_state_snapshot {
    pub state: u32,
    pub health: u32,
    pub origin: u32,
    pub consecutive_health_failures: u32,
    pub current_containers: u64,
    pub pending_reservations: u64,
    pub holds: u64,
    pub allocated_ram_mb: u64,
    pub reserved_ram_mb: u64,
    pub total_ram_mb: u64,
    pub total_containers_ever: u64,
    pub age_ms: u64,
    pub time_in_state_ms: u64,
    pub has_since_initialized: bool,
    pub since_initialized_ms: u64,
    pub has_idle_for: bool,
    pub idle_for_ms: u64,
    pub container_sync_pending: bool,
}

/// One audit entry in flat form; strings are in the list's string buffer
/// (`nl_audit_list_strings`). `container_id` and `error` have length 0 when absent;
/// `from_state`/`to_state` are `UINT32_MAX` when absent.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct nl_audit_item {
    pub seq: u64,
    pub at_ms: i64,
    /// An `nl_audit_action`.
    pub action: u32,
    /// An `nl_audit_result`.
    pub result: u32,
    pub reason_code: u32,
    pub from_state: u32,
    pub to_state: u32,
    pub node_id: nl_str_ref,
    pub container_id: nl_str_ref,
    pub reason: nl_str_ref,
    pub decision_by: nl_str_ref,
    pub error: nl_str_ref,
    pub has_snapshot: bool,
    pub snapshot: nl_state_snapshot,
}

/// Audit entries in flat form, with the page information of a cursor query. Free with
/// `nl_audit_list_free`.
///
/// Thread-safety: owned by the caller that received it; immutable, so it may be read from
/// several threads at once, but not concurrently with `nl_audit_list_free`.
pub struct nl_audit_list {
    items: Vec<nl_audit_item>,
    strings: Vec<u8>,
}

fn audit_list(entries: &[crate::audit::AuditEntry]) -> nl_audit_list {
    let mut list = nl_audit_list {
        items: Vec::with_capacity(entries.len()),
        strings: Vec::with_capacity(entries.len() * 64),
    };
    for e in entries {
        let b = &mut list.strings;
        let snapshot = e.snapshot.as_ref();
        list.items.push(nl_audit_item {
            seq: e.seq,
            at_ms: e.at_ms.as_millis(),
            action: e.action as u32,
            result: e.result as u32,
            reason_code: e.reason_code,
            from_state: e.from_state.map_or(u32::MAX, |s| s as u32),
            to_state: e.to_state.map_or(u32::MAX, |s| s as u32),
            node_id: push_str(b, &e.node_id),
            container_id: push_str(b, e.container_id.as_deref().unwrap_or("")),
            reason: push_str(b, &e.reason),
            decision_by: push_str(b, &e.decision_by),
            error: push_str(b, e.error.as_deref().unwrap_or("")),
            has_snapshot: snapshot.is_some(),
            snapshot: snapshot.map_or_else(Default::default, |s| nl_state_snapshot {
                state: s.state as u32,
                health: s.health as u32,
                origin: s.origin as u32,
                consecutive_health_failures: s.consecutive_health_failures,
                current_containers: s.current_containers,
                pending_reservations: s.pending_reservations,
                holds: s.holds,
                allocated_ram_mb: s.allocated_ram_mb,
                reserved_ram_mb: s.reserved_ram_mb,
                total_ram_mb: s.total_ram_mb,
                total_containers_ever: s.total_containers_ever,
                age_ms: s.age_ms,
                time_in_state_ms: s.time_in_state_ms,
                has_since_initialized: s.since_initialized_ms.is_some(),
                since_initialized_ms: s.since_initialized_ms.unwrap_or(0),
                has_idle_for: s.idle_for_ms.is_some(),
                idle_for_ms: s.idle_for_ms.unwrap_or(0),
                container_sync_pending: s.container_sync_pending,
            }),
        });
    }
    list
}

/// `nl_fleet_audit_query` in flat form: the newest `limit` matching entries, oldest first.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_audit_query_list(
    fleet: *const nl_fleet,
    filter: u32,
    text: *const u8,
    text_len: usize,
    value: u32,
    limit: usize,
    list_out: *mut *mut nl_audit_list,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(list_out, "list_out")?;
        let f = fleet_arg(fleet)?;
        // SAFETY: pointer + length per the contract.
        let entries = unsafe { query_entries(&f, filter, text, text_len, value, limit) }?;
        // SAFETY: checked non-NULL above.
        unsafe { list_out.write(Box::into_raw(Box::new(audit_list(&entries)))) };
        Ok(())
    })
}

/// `nl_fleet_audit_since` in flat form. `missed_out` and `next_cursor_out` (optional) receive
/// the page's gap and next cursor.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_audit_since_list(
    fleet: *const nl_fleet,
    cursor: u64,
    limit: usize,
    list_out: *mut *mut nl_audit_list,
    missed_out: *mut u64,
    next_cursor_out: *mut u64,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(list_out, "list_out")?;
        let page = fleet_arg(fleet)?.audit_since(cursor, limit);
        // SAFETY: out-parameters per the contract.
        unsafe {
            write_opt(missed_out, page.missed);
            write_opt(next_cursor_out, page.next_cursor);
            list_out.write(Box::into_raw(Box::new(audit_list(&page.entries))));
        }
        Ok(())
    })
}

/// The list's entries, a contiguous array of `*count_out` items owned by the list. NULL (and 0)
/// for a NULL list.
#[no_mangle]
pub unsafe extern "C" fn nl_audit_list_items(
    list: *const nl_audit_list,
    count_out: *mut usize,
) -> *const nl_audit_item {
    ffi_boundary!(value std::ptr::null(), {
        // SAFETY: NULL or a live list per the contract.
        let l = unsafe { list.as_ref() };
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(count_out, l.map_or(0, |l| l.items.len())) };
        l.map_or(std::ptr::null(), |l| l.items.as_ptr())
    })
}

/// The buffer the items' strings point into, owned by the list; `*len_out` receives its length.
#[no_mangle]
pub unsafe extern "C" fn nl_audit_list_strings(
    list: *const nl_audit_list,
    len_out: *mut usize,
) -> *const u8 {
    ffi_boundary!(value std::ptr::null(), {
        // SAFETY: NULL or a live list per the contract.
        let l = unsafe { list.as_ref() };
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(len_out, l.map_or(0, |l| l.strings.len())) };
        l.map_or(std::ptr::null(), |l| l.strings.as_ptr())
    })
}

/// Frees an audit list. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn nl_audit_list_free(list: *mut nl_audit_list) {
    ffi_boundary!(value(), {
        if !list.is_null() {
            // SAFETY: a pointer this library returned and the caller has not freed.
            drop(unsafe { Box::from_raw(list) });
        }
    })
}
