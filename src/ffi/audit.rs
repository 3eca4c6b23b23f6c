//! The audit ring: queries as JSON or as flat lists (for bindings that read many entries),
//! cursor reads for sinks, pages for dashboards, statistics, and caller-recorded entries.

use super::boundary::*;
use super::decommission::{nl_str_ref, push_str};
use super::handles::{self, nl_fleet};
use crate::audit::{AuditAction, AuditEntry, AuditFilter, AuditQuery, AuditRecord, AuditResult};
use crate::ffi_boundary;
use crate::text::{sanitize_text, Text};

/// Which entries an audit query selects.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum nl_audit_filter {
    All = 0,
    Node = 1,
    Action = 2,
    Result = 3,
}

unsafe fn filter_arg(
    filter: u32,
    text: *const u8,
    text_len: usize,
    value: u32,
) -> FfiResult<AuditFilter> {
    Ok(match filter {
        f if f == nl_audit_filter::All as u32 => AuditFilter::All,
        f if f == nl_audit_filter::Node as u32 => {
            // SAFETY: pointer + length per the contract.
            AuditFilter::Node(unsafe { str_arg(text, text_len, "text") }?.to_owned())
        }
        f if f == nl_audit_filter::Action as u32 => AuditFilter::Action(
            AuditAction::from_u32(value)
                .ok_or_else(|| FfiError::unknown_enum("nl_audit_action", value))?,
        ),
        f if f == nl_audit_filter::Result as u32 => AuditFilter::Result(
            AuditResult::from_u32(value)
                .ok_or_else(|| FfiError::unknown_enum("nl_audit_result", value))?,
        ),
        other => return Err(FfiError::unknown_enum("nl_audit_filter", other)),
    })
}

/// The newest `limit` entries matching the filter, oldest first, as a JSON array. `text` is
/// used by `NL_AUDIT_FILTER_NODE`, `value` by the action and result filters. A limit of 0
/// returns nothing; `SIZE_MAX` returns every retained entry.
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
        let f = handles::enter(fleet)?;
        // SAFETY: per the contract.
        let filter = unsafe { filter_arg(filter, text, text_len, value) }?;
        let mut entries: Vec<AuditEntry> = Vec::new();
        f.with_audit(&filter, limit, |e| entries.push(e.clone()))?;
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &entries) }
    })
}

/// A page of entries, newest first, as JSON `{"entries":[..],"next_before_seq":N|null}`.
/// `query_json` is `{"filter":{"by":"node","value":"worker-1"},"before_seq":N,"after_seq":N,
/// "from_ms":T,"to_ms":T,"limit":100}` (one filter: `all`, `node`, `action` or `result`); the
/// cost is O(log n + limit).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_audit_page_json(
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
        let q: AuditQuery = unsafe { json_arg(query_json, query_json_len, "query_json") }?;
        let page = f.audit_page(&q)?;
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &page) }
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
        let page = handles::enter(fleet)?.audit_since(cursor, limit)?;
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
        let stats = handles::enter(fleet)?.audit_stats()?;
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &stats) }
    })
}

/// Records an entry for an action the caller performed (scale up/down, a migration).
/// `container_id`, `reason`, `decision_by` and `error` may be empty (an empty `error` means
/// none); `reason` and `error` may be any bytes (they are sanitised). `seq_out` (optional)
/// receives the entry's sequence number.
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
        let f = handles::enter(fleet)?;
        let action = AuditAction::from_u32(action)
            .ok_or_else(|| FfiError::unknown_enum("nl_audit_action", action))?;
        let result = AuditResult::from_u32(result)
            .ok_or_else(|| FfiError::unknown_enum("nl_audit_result", result))?;
        // SAFETY: pointer + length pairs per the contract.
        let id = unsafe { str_arg(node_id, node_id_len, "node_id") }?;
        let cid = unsafe { str_arg(container_id, container_id_len, "container_id") }?;
        let reason = unsafe { bytes_arg(reason, reason_len, "reason") }?;
        let by = unsafe { str_arg(decision_by, decision_by_len, "decision_by") }?;
        let error = unsafe { bytes_arg(error, error_len, "error") }?;
        let mut rec = AuditRecord::new(action, Text::new(id), result)
            .reason(0, Text::from(sanitize_text(reason)))
            .decision_by(Text::new(by));
        if !cid.is_empty() {
            rec = rec.container(Text::new(cid));
        }
        if !error.is_empty() {
            rec = rec.error(Text::from(sanitize_text(error)));
        }
        let seq = f.record_audit(rec)?;
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(seq_out, seq) };
        Ok(())
    })
}

// ----- flat lists --------------------------------------------------------------------------------

/// Bits of `nl_state_snapshot.flags`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum nl_snapshot_flag {
    HasSinceInitialized = 1,
    HasIdleFor = 2,
    ContainerSyncPending = 4,
}

/// A state snapshot in flat form (durations in milliseconds; `flags` say which optional ones
/// are set). Holds, cordons and labels by name are in `names_json` (`{"holds":[..],
/// "cordons":[..],"labels":{..}}`, length 0 when the node had none of them).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct nl_state_snapshot {
    pub state: u32,
    pub health: u32,
    pub origin: u32,
    pub consecutive_health_failures: u32,
    pub current_containers: u64,
    pub pending_reservations: u64,
    pub holds: u64,
    pub cordons: u64,
    pub allocated_ram_mb: u64,
    pub reserved_ram_mb: u64,
    pub total_ram_mb: u64,
    pub total_containers_ever: u64,
    pub age_ms: u64,
    pub time_in_state_ms: u64,
    pub since_initialized_ms: u64,
    pub idle_for_ms: u64,
    pub hourly_cost_eur: f64,
    pub flags: u32,
    pub _reserved: u32,
    pub instance_type: nl_str_ref,
    /// The evacuate cordon under which the node was emptied; length 0 for none.
    pub evacuated_by: nl_str_ref,
    pub names_json: nl_str_ref,
}

/// Bits of `nl_audit_item.flags`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum nl_audit_flag {
    HasSnapshot = 1,
    HasRam = 2,
    HasAge = 4,
}

/// One audit entry in flat form; strings are in the list's string buffer
/// (`nl_audit_list_strings`) and have length 0 when absent. `from_state`/`to_state` are
/// `UINT32_MAX` when absent. Every field has a fixed width, so the layout is the same on every
/// target.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
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
    pub flags: u32,
    pub ram_mb: u64,
    pub age_ms: u64,
    pub node_id: nl_str_ref,
    pub container_id: nl_str_ref,
    pub reason: nl_str_ref,
    pub decision_by: nl_str_ref,
    pub error: nl_str_ref,
    pub related_node_id: nl_str_ref,
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

impl nl_audit_list {
    fn with_capacity(n: usize) -> Self {
        nl_audit_list {
            items: Vec::with_capacity(n),
            strings: Vec::with_capacity(n * 64),
        }
    }

    fn push(&mut self, e: &AuditEntry) {
        let b = &mut self.strings;
        let mut flags = 0;
        let snapshot = match &e.snapshot {
            None => nl_state_snapshot::default(),
            Some(s) => {
                flags |= nl_audit_flag::HasSnapshot as u32;
                let mut sf = 0;
                if s.since_initialized_ms.is_some() {
                    sf |= nl_snapshot_flag::HasSinceInitialized as u32;
                }
                if s.idle_for_ms.is_some() {
                    sf |= nl_snapshot_flag::HasIdleFor as u32;
                }
                if s.container_sync_pending {
                    sf |= nl_snapshot_flag::ContainerSyncPending as u32;
                }
                let names = if s.holds.is_empty() && s.cordons.is_empty() && s.labels.is_empty() {
                    String::new()
                } else {
                    serde_json::json!({
                        "holds": s.holds,
                        "cordons": s.cordons,
                        "labels": s.labels,
                    })
                    .to_string()
                };
                nl_state_snapshot {
                    state: s.state as u32,
                    health: s.health as u32,
                    origin: s.origin as u32,
                    consecutive_health_failures: s.consecutive_health_failures,
                    current_containers: s.current_containers,
                    pending_reservations: s.pending_reservations,
                    holds: s.holds.len() as u64,
                    cordons: s.cordons.len() as u64,
                    allocated_ram_mb: s.allocated_ram_mb,
                    reserved_ram_mb: s.reserved_ram_mb,
                    total_ram_mb: s.total_ram_mb,
                    total_containers_ever: s.total_containers_ever,
                    age_ms: s.age_ms,
                    time_in_state_ms: s.time_in_state_ms,
                    since_initialized_ms: s.since_initialized_ms.unwrap_or(0),
                    idle_for_ms: s.idle_for_ms.unwrap_or(0),
                    hourly_cost_eur: s.hourly_cost_eur,
                    flags: sf,
                    _reserved: 0,
                    instance_type: push_str(b, &s.instance_type),
                    evacuated_by: push_str(b, s.evacuated_by.as_deref().unwrap_or("")),
                    names_json: push_str(b, &names),
                }
            }
        };
        if e.ram_mb.is_some() {
            flags |= nl_audit_flag::HasRam as u32;
        }
        if e.age_ms.is_some() {
            flags |= nl_audit_flag::HasAge as u32;
        }
        let item = nl_audit_item {
            seq: e.seq,
            at_ms: e.at_ms.as_millis(),
            action: e.action as u32,
            result: e.result as u32,
            reason_code: e.reason_code,
            from_state: e.from_state.map_or(u32::MAX, |s| s as u32),
            to_state: e.to_state.map_or(u32::MAX, |s| s as u32),
            flags,
            ram_mb: e.ram_mb.unwrap_or(0),
            age_ms: e.age_ms.unwrap_or(0),
            node_id: push_str(b, &e.node_id),
            container_id: push_str(b, e.container_id.as_deref().unwrap_or("")),
            reason: push_str(b, &e.reason),
            decision_by: push_str(b, &e.decision_by),
            error: push_str(b, e.error.as_deref().unwrap_or("")),
            related_node_id: push_str(b, e.related_node_id.as_deref().unwrap_or("")),
            snapshot,
        };
        self.items.push(item);
    }
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
        let f = handles::enter(fleet)?;
        // SAFETY: per the contract.
        let filter = unsafe { filter_arg(filter, text, text_len, value) }?;
        let mut list = nl_audit_list::with_capacity(limit.min(1024));
        f.with_audit(&filter, limit, |e| list.push(e))?;
        // SAFETY: checked non-NULL above.
        unsafe { list_out.write(hand_out(list, Kind::AuditList)) };
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
        let f = handles::enter(fleet)?;
        let mut list = nl_audit_list::with_capacity(limit.min(1024));
        let (missed, next) = f.with_audit_since(cursor, limit, |e| list.push(e))?;
        // SAFETY: out-parameters per the contract.
        unsafe {
            write_opt(missed_out, missed);
            write_opt(next_cursor_out, next);
            list_out.write(hand_out(list, Kind::AuditList));
        }
        Ok(())
    })
}

/// The list's entries, a contiguous array of `*count_out` items owned by the list. NULL (and 0)
/// for NULL or a list already freed.
#[no_mangle]
pub unsafe extern "C" fn nl_audit_list_items(
    list: *const nl_audit_list,
    count_out: *mut usize,
) -> *const nl_audit_item {
    ffi_boundary!(value std::ptr::null(), {
        // SAFETY: checked against the registry.
        let l = unsafe { live(list, Kind::AuditList, "list") }.ok();
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
        // SAFETY: checked against the registry.
        let l = unsafe { live(list, Kind::AuditList, "list") }.ok();
        // SAFETY: optional out-parameter per the contract.
        unsafe { write_opt(len_out, l.map_or(0, |l| l.strings.len())) };
        l.map_or(std::ptr::null(), |l| l.strings.as_ptr())
    })
}

/// Frees an audit list. NULL is a no-op; a list already freed is reported.
#[no_mangle]
pub unsafe extern "C" fn nl_audit_list_free(list: *mut nl_audit_list) -> nl_result {
    ffi_boundary!(value nl_result::Panic, {
        // SAFETY: checked against the registry.
        match unsafe { take_back(list, Kind::AuditList, "list") } {
            Ok(_) => nl_result::Ok,
            Err(e) => e.code,
        }
    })
}
