//! `nl_fleet` lifetime, clock and policy; registration, attributes, placeholders; lifecycle
//! events; and reading nodes.

use super::boundary::*;
use super::handles::{self, nl_fleet};
use super::options::nl_options;
use crate::clock::Timestamp;
use crate::ffi_boundary;
use crate::fleet::{Fleet, HealthOutcome, NodeQuery};
use crate::node::{NodeSpec, NodeUpdate};
use crate::policy::FleetOptions;
use crate::state::{LifecycleState, NodeOrigin};
use std::collections::BTreeMap;
use std::time::Duration;

pub(crate) fn state_arg(n: u32) -> FfiResult<LifecycleState> {
    LifecycleState::from_u32(n).ok_or_else(|| FfiError::unknown_enum("nl_state", n))
}

/// A fleet's identity: 16 random bytes, kept in its data directory.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct nl_instance_id {
    pub bytes: [u8; 16],
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
    /// Usable RAM; 0 = unknown (claims are then not capacity-checked).
    pub total_ram_mb: u64,
    pub instance_type: *const u8,
    pub instance_type_len: usize,
    pub hourly_cost_eur: f64,
    /// Dedicated nodes: `NL_STATE_ACTIVE` or `NL_STATE_READY`. Cloud nodes: `NL_STATE_READY`
    /// for a VM booted from a prepared image. -1 for the origin's default.
    pub initial_state: i32,
    /// Recovered nodes only: whether `provisioned_at_ms` (the VM's creation time) is set.
    pub has_provisioned_at: bool,
    pub provisioned_at_ms: i64,
    /// Labels as a JSON object of strings (`{"zone":"fsn1"}`); length 0 for none.
    pub labels_json: *const u8,
    pub labels_json_len: usize,
}

unsafe fn spec_arg(spec: *const nl_node_spec) -> FfiResult<NodeSpec> {
    // SAFETY: NULL or a readable nl_node_spec per the contract.
    let s = unsafe { ref_arg(spec, "spec") }?;
    // SAFETY: pointer + length pairs per the contract.
    let id = unsafe { str_arg(s.id, s.id_len, "spec.id") }?;
    let instance_type =
        unsafe { str_arg(s.instance_type, s.instance_type_len, "spec.instance_type") }?;
    let labels: BTreeMap<String, String> =
        unsafe { json_arg(s.labels_json, s.labels_json_len, "spec.labels_json") }?;
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
        labels,
        initial_state,
        provisioned_at_ms: s
            .has_provisioned_at
            .then_some(Timestamp(s.provisioned_at_ms)),
        // The flat struct has no field for it (its layout is fixed): placeholders are
        // registered with the JSON operation `register` (`"placeholder": true`).
        placeholder: false,
    })
}

// ----- lifetime, clock, policy ----------------------------------------------------------------

/// Builds the fleet that options describe (NULL = defaults, system clock).
pub(crate) fn build(options: Option<&nl_options>) -> FfiResult<Fleet> {
    Ok(match options {
        Some(o) => {
            let mut b = Fleet::builder(o.fleet_options());
            if let Some(start) = o.manual_clock_start_ms {
                b = b.manual_clock(start);
            }
            if let Some(dir) = &o.data_dir {
                b = b.data_dir(dir, o.storage.clone());
            }
            b.build()?
        }
        None => Fleet::new(FleetOptions::default())?,
    })
}

/// Creates a fleet from `options` (NULL = defaults, system clock). Free with `nl_fleet_free`.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_new(
    options: *const nl_options,
    fleet_out: *mut *mut nl_fleet,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(fleet_out, "fleet_out")?;
        let o = if options.is_null() {
            None
        } else {
            // SAFETY: checked against the registry.
            Some(unsafe { live(options, Kind::Options, "options") }?)
        };
        let handle = handles::insert(build(o)?)?;
        // SAFETY: checked non-NULL.
        unsafe { fleet_out.write(handle) };
        Ok(())
    })
}

/// Frees a fleet (a persistent one syncs its journal and releases its directory). NULL is a
/// no-op. Calls still running on other threads finish first; later calls, and a second free,
/// return `NL_RESULT_USE_AFTER_FREE`.
#[no_mangle]
pub extern "C" fn nl_fleet_free(fleet: *mut nl_fleet) -> nl_result {
    ffi_boundary!(value nl_result::Panic, {
        if fleet.is_null() {
            return nl_result::Ok;
        }
        match handles::remove(fleet) {
            Ok(()) => nl_result::Ok,
            Err(e) => e.code,
        }
    })
}

/// The library clock's time (Unix ms).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_now_ms(
    fleet: *const nl_fleet,
    now_out: *mut i64,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(now_out, "now_out")?;
        let now = handles::enter(fleet)?.now();
        // SAFETY: checked non-NULL.
        unsafe { write_out(now_out, now.as_millis(), "now_out") }
    })
}

/// Lets `ms` pass on a manual clock (wall and monotonic); `NL_RESULT_NOT_MANUAL_CLOCK` on the
/// system clock.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_advance_clock_ms(
    fleet: *const nl_fleet,
    ms: u64,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        handles::enter(fleet)?.advance_clock(Duration::from_millis(ms))?;
        Ok(())
    })
}

/// Steps a manual clock's wall time to `now_ms` (Unix ms), as an NTP correction would; graces
/// run on the monotonic clock and do not move. `NL_RESULT_NOT_MANUAL_CLOCK` on the system clock.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_set_clock_ms(
    fleet: *const nl_fleet,
    now_ms: i64,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        handles::enter(fleet)?.set_clock(Timestamp(now_ms))?;
        Ok(())
    })
}

/// Replaces the fleet's policy with the one in `options` (the audit capacity, clock and data
/// directory of the options are ignored: they are fixed when the fleet is created).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_set_policy(
    fleet: *const nl_fleet,
    options: *const nl_options,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: checked against the registry.
        let o = unsafe { live(options, Kind::Options, "options") }?;
        f.set_policy(o.options.policy)?;
        Ok(())
    })
}

/// The fleet's policy in force as JSON (`nl_bytes`, free with `nl_bytes_free`); a timer that
/// is off is `"off"`.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_policy_json(
    fleet: *const nl_fleet,
    bytes_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(bytes_out, "bytes_out")?;
        let p = handles::enter(fleet)?.policy();
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &p) }
    })
}

/// The fleet's identity (random, kept in its data directory as long as the data lives).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_instance_id(
    fleet: *const nl_fleet,
    id_out: *mut nl_instance_id,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(id_out, "id_out")?;
        let id = handles::enter(fleet)?.instance_id();
        // SAFETY: checked non-NULL.
        unsafe { write_out(id_out, nl_instance_id { bytes: id.0 }, "id_out") }
    })
}

// ----- registration ------------------------------------------------------------------------------

/// Registers a node. The origin decides the starting state: cloud -> provisioning (ready if
/// booted from an image), system and dedicated -> active, recovered -> ready with its container
/// sync pending. Registering a known id with the same origin updates its attributes (an
/// upsert); another origin is `NL_RESULT_NODE_EXISTS`.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_register(
    fleet: *const nl_fleet,
    spec: *const nl_node_spec,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: per the contract.
        let spec = unsafe { spec_arg(spec) }?;
        f.register(spec)?;
        Ok(())
    })
}

/// Changes a node's attributes: `update_json` is `{"total_ram_mb":N,"hourly_cost_eur":F,
/// "instance_type":"..","labels":{..}}`, every field optional. RAM below what is allocated and
/// reserved is refused; RAM and cost changes are audited.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_update(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    update_json: *const u8,
    update_json_len: usize,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        let u: NodeUpdate = unsafe { json_arg(update_json, update_json_len, "update_json") }?;
        f.update(id, &u)?;
        Ok(())
    })
}

/// Binds a node to a new id (a placeholder gets the provider's id), keeping its state, metrics
/// and history (`node_renamed` links both ids). Refused while a decommission is in progress.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_rename(
    fleet: *const nl_fleet,
    old_id: *const u8,
    old_id_len: usize,
    new_id: *const u8,
    new_id_len: usize,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let old = unsafe { str_arg(old_id, old_id_len, "old_id") }?;
        let new = unsafe { str_arg(new_id, new_id_len, "new_id") }?;
        f.rename(old, new)?;
        Ok(())
    })
}

/// The VM of a provisioning or initializing node was never created: the node becomes
/// decommissioned with a `failed` `node_provision` entry carrying `error` (any bytes: invalid
/// UTF-8 is replaced, control characters escaped, the text bounded).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_abandon_provisioning(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    error: *const u8,
    error_len: usize,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        let error = unsafe { bytes_arg(error, error_len, "error") }?;
        f.abandon_provisioning(id, error)?;
        Ok(())
    })
}

/// Forgets a decommissioned node (its audit entries stay).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_forget(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        f.forget(id)?;
        Ok(())
    })
}

// ----- lifecycle events --------------------------------------------------------------------------

/// Moves a node to `to` (an `nl_state`) along the transition table, recording `reason`.
/// `changed_out` (optional) is false when the node already was in `to`. Draining and
/// decommissioned are refused with `NL_RESULT_PROTOCOL_ONLY`: use the decommission protocol.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_transition(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    to: u32,
    reason: *const u8,
    reason_len: usize,
    changed_out: *mut bool,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        let reason = unsafe { str_arg(reason, reason_len, "reason") }?;
        let changed = f.transition(id, state_arg(to)?, reason)?.is_some();
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(changed_out, changed) };
        Ok(())
    })
}

/// Takes one health-check result (`healthy` true or false) and applies the health policy.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_report_health(
    fleet: *const nl_fleet,
    node: *const u8,
    node_len: usize,
    healthy: bool,
    outcome_out: *mut nl_health_outcome,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length per the contract.
        let id = unsafe { str_arg(node, node_len, "node") }?;
        let o = f.report_health(id, healthy)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(outcome_out, o.into()) };
        Ok(())
    })
}

/// Applies the timers (provisioning timeout, container sync timeout, claim expiry); the report
/// (which nodes and claims fired) is JSON in `report_out` (optional: NULL discards it).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_tick(
    fleet: *const nl_fleet,
    report_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        let report = handles::enter(fleet)?.tick()?;
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
        let n = handles::enter(fleet)?.finish_restore()?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(completed_out, n) };
        Ok(())
    })
}

// ----- nodes -------------------------------------------------------------------------------------

/// One node as JSON (state, health, containers, claims, holds, cordons, labels, metrics,
/// decommission ticket).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_node_json(
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
        let n = f.node(id)?;
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &n) }
    })
}

/// Every node as a JSON array, ordered by id. This copies the whole fleet: for large fleets use
/// `nl_fleet_nodes_page_json`.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_nodes_json(
    fleet: *const nl_fleet,
    bytes_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(bytes_out, "bytes_out")?;
        let nodes = handles::enter(fleet)?.nodes()?;
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &nodes) }
    })
}

/// A page of nodes with their verdicts (each row read under one lock hold), ordered by id, as
/// JSON `{"nodes":[{"node":{..},"verdict":{..}}],"next_after":"id"|null}`. `query_json` is
/// `{"after":"id","state":"idle","limit":100}`; the cost is O(log n + limit).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_nodes_page_json(
    fleet: *const nl_fleet,
    query_json: *const u8,
    query_json_len: usize,
    bytes_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(bytes_out, "bytes_out")?;
        let f = handles::enter(fleet)?;
        // SAFETY: pointer + length per the contract.
        let q: NodeQuery = unsafe { json_arg(query_json, query_json_len, "query_json") }?;
        let page = f.nodes_page(&q)?;
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &page) }
    })
}
