//! The C ABI. Every exported function goes through [`ffi_boundary!`], which catches panics and
//! turns errors into an `nl_result` plus an optional per-call `nl_error` (never a thread-local
//! "last error": Go moves goroutines between OS threads).
//!
//! One file per concept, as in the core: [`lifecycle`] (the fleet, registration, events,
//! nodes), [`containers`] (placement, holds, cordons, migrations), [`decommission`] (verdicts
//! and the protocol), [`audit`], [`planning`], [`storage`], and [`call`] (every operation as
//! JSON, for bindings). [`boundary`] holds the conventions, [`handles`] the fleet handles.
//!
//! Conventions, stated once here and on every function in the header:
//! - strings in are pointer + length, UTF-8 validated; a NULL pointer is accepted only with
//!   length 0 (the empty string); free texts that describe failures are bytes, sanitised;
//! - enum values in are `uint32_t` and checked (an unknown value is `NL_RESULT_UNKNOWN_ENUM`,
//!   never undefined behaviour);
//! - outputs go to trailing `*_out` parameters, written only on success;
//! - lists, snapshots and queries come back as JSON in a library-owned `nl_bytes`, freed with
//!   `nl_bytes_free`; bulk reads also come as flat lists with their own free function;
//! - `err_out` may be NULL; otherwise it is set to NULL on success and to a new `nl_error` (free
//!   it with `nl_error_free`) on failure;
//! - every object handed out is tracked: freeing it twice, or using it after its free, is
//!   reported (`NL_RESULT_USE_AFTER_FREE`) instead of being undefined.

#![allow(non_camel_case_types)]
// Every export checks its pointers before dereferencing them; the safety contract is the one in
// the header, so clippy's per-function "missing Safety section" adds nothing here.
#![allow(clippy::missing_safety_doc)]
#![allow(clippy::too_many_arguments)]

mod audit;
mod boundary;
mod call;
mod containers;
mod decommission;
mod handles;
mod lifecycle;
mod options;
mod planning;
mod storage;
#[cfg(target_family = "wasm")]
mod wasm;

pub use audit::*;
pub use boundary::*;
pub use call::*;
pub use containers::*;
pub use decommission::*;
pub use handles::nl_fleet;
pub use lifecycle::*;
pub use options::*;
pub use planning::*;
pub use storage::*;
#[cfg(target_family = "wasm")]
pub use wasm::*;
