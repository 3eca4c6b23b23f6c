//! `nl_options`: what a fleet is created with (policy, audit capacity, clock).

use super::boundary::*;
use crate::clock::Timestamp;
use crate::ffi_boundary;
use crate::policy::FleetOptions;
use crate::storage::{StorageOptions, SyncPolicy};
use std::path::PathBuf;

/// Options for `nl_fleet_new` and `nl_fleet_set_policy`. Starts at the defaults of SPEC.md.
///
/// Thread-safety: not synchronised. Configure it from one thread; the library only reads it
/// during `nl_fleet_new`/`nl_fleet_set_policy` and keeps no reference to it afterwards.
pub struct nl_options {
    pub(crate) options: FleetOptions,
    pub(crate) manual_clock_start: Option<Timestamp>,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) storage: StorageOptions,
}

impl nl_options {
    fn defaults(options: FleetOptions) -> Self {
        nl_options {
            options,
            manual_clock_start: None,
            data_dir: None,
            storage: StorageOptions::default(),
        }
    }
}

/// The settings `nl_options_set` can change. Durations are milliseconds.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum nl_option {
    ReadyGraceMs = 0,
    IdleGraceMs = 1,
    PostSyncGraceMs = 2,
    SyncTimeoutMs = 3,
    ProvisioningTimeoutMs = 4,
    UnhealthyThreshold = 5,
    AuditCapacity = 6,
    /// Persistent fleets: fsync after this many mutations (0 or 1: after every mutation).
    SyncEveryWrites = 7,
    /// Persistent fleets with batched sync: also fsync when this long has passed since the last.
    SyncMaxDelayMs = 8,
    /// Persistent fleets: compact after this many journal records.
    CompactAfterRecords = 9,
}

/// Creates options holding the defaults. Free with `nl_options_free`.
#[no_mangle]
pub unsafe extern "C" fn nl_options_new(
    options_out: *mut *mut nl_options,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(options_out, "options_out")?;
        let boxed = Box::into_raw(Box::new(nl_options::defaults(FleetOptions::default())));
        // SAFETY: checked non-NULL.
        unsafe { options_out.write(boxed) };
        Ok(())
    })
}

/// Creates options from JSON, e.g. `{"policy":{"idle_grace_ms":600000},"audit_capacity":5000}`.
/// Missing fields take the defaults; unknown fields and invalid values are refused.
#[no_mangle]
pub unsafe extern "C" fn nl_options_from_json(
    json: *const u8,
    json_len: usize,
    options_out: *mut *mut nl_options,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(options_out, "options_out")?;
        // SAFETY: pointer + length per the contract.
        let text = unsafe { str_arg(json, json_len, "json") }?;
        let options = FleetOptions::from_json(text)?;
        let boxed = Box::into_raw(Box::new(nl_options::defaults(options)));
        // SAFETY: checked non-NULL.
        unsafe { options_out.write(boxed) };
        Ok(())
    })
}

/// Sets one option. Values are range-checked when the options are used (`nl_fleet_new`,
/// `nl_fleet_set_policy`), so a combination is judged as a whole.
#[no_mangle]
pub unsafe extern "C" fn nl_options_set(
    options: *mut nl_options,
    key: u32,
    value: u64,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        // SAFETY: NULL or a live nl_options per the contract.
        let o = unsafe { options.as_mut() }.ok_or_else(|| FfiError::null("options"))?;
        let too_big = |what: &str| {
            FfiError::new(
                nl_result::InvalidArgument,
                format!("{what} = {value} is out of range"),
            )
        };
        let p = &mut o.options.policy;
        match key {
            k if k == nl_option::ReadyGraceMs as u32 => p.ready_grace_ms = value,
            k if k == nl_option::IdleGraceMs as u32 => p.idle_grace_ms = value,
            k if k == nl_option::PostSyncGraceMs as u32 => p.post_sync_grace_ms = value,
            k if k == nl_option::SyncTimeoutMs as u32 => p.sync_timeout_ms = value,
            k if k == nl_option::ProvisioningTimeoutMs as u32 => p.provisioning_timeout_ms = value,
            k if k == nl_option::UnhealthyThreshold as u32 => {
                p.unhealthy_threshold =
                    u32::try_from(value).map_err(|_| too_big("unhealthy_threshold"))?
            }
            k if k == nl_option::AuditCapacity as u32 => {
                o.options.audit_capacity =
                    usize::try_from(value).map_err(|_| too_big("audit_capacity"))?
            }
            k if k == nl_option::SyncEveryWrites as u32
                || k == nl_option::SyncMaxDelayMs as u32 =>
            {
                let (mut writes, mut delay) = match o.storage.sync {
                    SyncPolicy::EveryWrite => (1, 1000),
                    SyncPolicy::Batched {
                        max_writes,
                        max_delay_ms,
                    } => (max_writes, max_delay_ms),
                };
                if k == nl_option::SyncEveryWrites as u32 {
                    writes = u32::try_from(value).map_err(|_| too_big("sync_every_writes"))?;
                } else {
                    delay = value;
                }
                o.storage.sync = if writes <= 1 {
                    SyncPolicy::EveryWrite
                } else {
                    SyncPolicy::Batched {
                        max_writes: writes,
                        max_delay_ms: delay,
                    }
                };
            }
            k if k == nl_option::CompactAfterRecords as u32 => {
                if value == 0 {
                    return Err(too_big("compact_after_records"));
                }
                o.storage.compact_after_records = value;
            }
            other => return Err(FfiError::unknown_enum("nl_option", other)),
        }
        Ok(())
    })
}

/// Makes fleets created from these options run on a manual clock starting at `start_ms`
/// (Unix milliseconds), moved only by `nl_fleet_advance_clock_ms`/`nl_fleet_set_clock_ms`.
#[no_mangle]
pub unsafe extern "C" fn nl_options_use_manual_clock(
    options: *mut nl_options,
    start_ms: i64,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        // SAFETY: NULL or a live nl_options per the contract.
        let o = unsafe { options.as_mut() }.ok_or_else(|| FfiError::null("options"))?;
        o.manual_clock_start = Some(Timestamp(start_ms));
        Ok(())
    })
}

/// Makes fleets created from these options persist to the directory `path` (UTF-8): they
/// restore what it holds and journal every mutation before the call returns. Length 0 removes
/// the directory again (an in-memory fleet).
#[no_mangle]
pub unsafe extern "C" fn nl_options_set_data_dir(
    options: *mut nl_options,
    path: *const u8,
    path_len: usize,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        // SAFETY: NULL or a live nl_options per the contract.
        let o = unsafe { options.as_mut() }.ok_or_else(|| FfiError::null("options"))?;
        // SAFETY: pointer + length per the contract.
        let p = unsafe { str_arg(path, path_len, "path") }?;
        o.data_dir = (!p.is_empty()).then(|| PathBuf::from(p));
        Ok(())
    })
}

/// Frees options. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn nl_options_free(options: *mut nl_options) {
    ffi_boundary!(value(), {
        if !options.is_null() {
            // SAFETY: a pointer this library returned and the caller has not freed.
            drop(unsafe { Box::from_raw(options) });
        }
    })
}
