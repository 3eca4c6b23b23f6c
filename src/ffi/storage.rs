//! The data directory: syncing, compacting, what opening found, and salvage.

use super::boundary::*;
use super::handles::{self, nl_fleet};
use crate::ffi_boundary;
use std::path::Path;

/// Forces a persistent fleet's journal to disk (a no-op for an in-memory fleet). A failure
/// poisons the fleet's storage (`NL_RESULT_POISONED` from then on).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_sync(
    fleet: *const nl_fleet,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        handles::enter(fleet)?.sync()?;
        Ok(())
    })
}

/// Writes a snapshot and starts a new journal generation now (a no-op for an in-memory fleet).
/// The fleet's lock is held only to capture the state.
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_compact(
    fleet: *const nl_fleet,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        handles::enter(fleet)?.compact()?;
        Ok(())
    })
}

/// The storage state as JSON: `{"open_report":{..},"status":{..}}`, both null for an in-memory
/// fleet. The open report says what opening found (torn tail bytes cut, records replayed).
#[no_mangle]
pub unsafe extern "C" fn nl_fleet_storage_json(
    fleet: *const nl_fleet,
    bytes_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(bytes_out, "bytes_out")?;
        let f = handles::enter(fleet)?;
        let info = serde_json::json!({
            "open_report": f.open_report(),
            "status": f.storage_status(),
        });
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &info) }
    })
}

/// Recovers every verifiable record of the damaged data directory `from` into the new (empty
/// or missing) directory `to`, never writing `from`. The report (what was recovered, the damaged
/// byte ranges, the mutations lost) is JSON in `bytes_out`.
#[no_mangle]
pub unsafe extern "C" fn nl_salvage(
    from: *const u8,
    from_len: usize,
    to: *const u8,
    to_len: usize,
    bytes_out: *mut *mut nl_bytes,
    err_out: *mut *mut nl_error,
) -> nl_result {
    ffi_boundary!(err_out, {
        require_out(bytes_out, "bytes_out")?;
        // SAFETY: pointer + length pairs per the contract.
        let from = unsafe { str_arg(from, from_len, "from") }?;
        let to = unsafe { str_arg(to, to_len, "to") }?;
        let report = crate::storage::salvage(Path::new(from), Path::new(to))?;
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &report) }
    })
}
