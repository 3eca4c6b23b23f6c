//! `nl_options`: what a fleet is created with (policy, audit capacity, clock).

use super::boundary::*;
use crate::clock::Timestamp;
use crate::ffi_boundary;
use crate::policy::FleetOptions;

/// Options for `nl_fleet_new` and `nl_fleet_set_policy`. Starts at the defaults of SPEC.md.
///
/// Thread-safety: not synchronised. Configure it from one thread; the library only reads it
/// during `nl_fleet_new`/`nl_fleet_set_policy` and keeps no reference to it afterwards.
pub struct nl_options {
    pub(crate) options: FleetOptions,
    pub(crate) manual_clock_start: Option<Timestamp>,
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
}

/// Creates options holding the defaults. Free with `nl_options_free`.
#[no_mangle]
pub unsafe extern "C" fn nl_options_new(
    options_out: *mut *mut nl_options,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(options_out, "options_out")?;
        let boxed = Box::into_raw(Box::new(nl_options {
            options: FleetOptions::default(),
            manual_clock_start: None,
        }));
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
        let boxed = Box::into_raw(Box::new(nl_options {
            options,
            manual_clock_start: None,
        }));
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
