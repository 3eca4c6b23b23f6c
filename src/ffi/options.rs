//! `nl_options`: what a fleet is created with (policy, audit capacity, clock, data directory).

use super::boundary::*;
use crate::clock::Timestamp;
use crate::ffi_boundary;
use crate::policy::{FleetOptions, Policy};
use crate::storage::{StorageOptions, SyncPolicy};
use serde::Deserialize;
use std::path::PathBuf;

/// The value that switches a timer off (`nl_options_set`): a grace that is off never makes
/// anyone wait, a timeout that is off never fires. 0 means the default.
pub const NL_OFF: u64 = u64::MAX;

/// Options for `nl_fleet_new` and `nl_fleet_set_policy`. Starts at the defaults of the
/// specification; values are checked when the options are used.
///
/// Thread-safety: not synchronised. Configure it from one thread; the library only reads it
/// during `nl_fleet_new`/`nl_fleet_set_policy` and keeps no reference to it afterwards.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct nl_options {
    #[serde(flatten)]
    pub(crate) options: OptionsFields,
    pub(crate) manual_clock_start_ms: Option<Timestamp>,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) storage: StorageOptions,
}

/// The fleet options as the JSON form spells them (`policy`, `audit_capacity`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct OptionsFields {
    pub policy: Policy,
    pub audit_capacity: usize,
}

impl nl_options {
    pub(crate) fn fleet_options(&self) -> FleetOptions {
        FleetOptions {
            policy: self.options.policy,
            audit_capacity: self.options.audit_capacity,
        }
    }
}

/// The settings `nl_options_set` can change. Durations are milliseconds; 0 is the default and
/// `NL_OFF` switches a timer off.
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
    /// Persistent fleets: compact after this many journal records (`NL_OFF`: only when asked).
    CompactAfterRecords = 9,
    /// Claims and reservations expire after this long unless confirmed or released.
    ClaimTtlMs = 10,
    /// An unhealthy node that may have hosted work is deletable only this long after it became
    /// unhealthy or its last container left (unless its VM is confirmed gone).
    UnhealthyGraceMs = 11,
}

/// Creates options holding the defaults. Free with `nl_options_free`.
#[no_mangle]
pub unsafe extern "C" fn nl_options_new(
    options_out: *mut *mut nl_options,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(options_out, "options_out")?;
        let mut o = nl_options::default();
        o.options.policy = Policy::DEFAULT;
        // SAFETY: checked non-NULL.
        unsafe { options_out.write(hand_out(o, Kind::Options)) };
        Ok(())
    })
}

/// Creates options from JSON: `{"policy":{"idle_grace_ms":600000,"ready_grace_ms":"off"},
/// "audit_capacity":5000,"data_dir":"/var/lib/nl","storage":{"sync":{"mode":"every_write"},
/// "compact_after_records":100000},"manual_clock_start_ms":1767225600000}`. Every field is
/// optional (0 or missing: the default); unknown fields and invalid values are refused.
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
        let o: nl_options = unsafe { json_arg(json, json_len, "json") }?;
        o.fleet_options().resolve()?;
        // SAFETY: checked non-NULL.
        unsafe { options_out.write(hand_out(o, Kind::Options)) };
        Ok(())
    })
}

/// Sets one option (`NL_OFF` switches a timer off, 0 means the default). Values are checked
/// when the options are used (`nl_fleet_new`, `nl_fleet_set_policy`), so a combination is
/// judged as a whole.
#[no_mangle]
pub unsafe extern "C" fn nl_options_set(
    options: *mut nl_options,
    key: u32,
    value: u64,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        // SAFETY: checked against the registry; the caller owns it exclusively.
        let o = unsafe { live_mut(options, Kind::Options, "options") }?;
        let too_big = |what: &str| {
            FfiError::new(
                nl_result::InvalidSetting,
                format!("invalid setting {what}: {value} is out of range"),
            )
        };
        let p = &mut o.options.policy;
        match key {
            k if k == nl_option::ReadyGraceMs as u32 => p.ready_grace_ms = value,
            k if k == nl_option::IdleGraceMs as u32 => p.idle_grace_ms = value,
            k if k == nl_option::PostSyncGraceMs as u32 => p.post_sync_grace_ms = value,
            k if k == nl_option::SyncTimeoutMs as u32 => p.sync_timeout_ms = value,
            k if k == nl_option::ProvisioningTimeoutMs as u32 => p.provisioning_timeout_ms = value,
            k if k == nl_option::ClaimTtlMs as u32 => p.claim_ttl_ms = value,
            k if k == nl_option::UnhealthyGraceMs as u32 => p.unhealthy_grace_ms = value,
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
                o.storage.compact_after_records = if value == 0 {
                    crate::storage::DEFAULT_COMPACT_AFTER_RECORDS
                } else {
                    value
                };
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
        // SAFETY: checked against the registry; the caller owns it exclusively.
        let o = unsafe { live_mut(options, Kind::Options, "options") }?;
        o.manual_clock_start_ms = Some(Timestamp(start_ms));
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
        // SAFETY: checked against the registry; the caller owns it exclusively.
        let o = unsafe { live_mut(options, Kind::Options, "options") }?;
        // SAFETY: pointer + length per the contract.
        let p = unsafe { str_arg(path, path_len, "path") }?;
        o.data_dir = (!p.is_empty()).then(|| PathBuf::from(p));
        Ok(())
    })
}

/// Frees options. NULL is a no-op; options already freed are reported
/// (`NL_RESULT_USE_AFTER_FREE`).
#[no_mangle]
pub unsafe extern "C" fn nl_options_free(options: *mut nl_options) -> nl_result {
    ffi_boundary!(value nl_result::Panic, {
        // SAFETY: checked against the registry.
        match unsafe { take_back(options, Kind::Options, "options") } {
            Ok(_) => nl_result::Ok,
            Err(e) => e.code,
        }
    })
}
