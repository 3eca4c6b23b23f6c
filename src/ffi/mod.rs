//! The C ABI. Every exported function goes through [`ffi_boundary!`], which catches panics and
//! turns errors into an `nl_result` plus an optional per-call `nl_error` (never a thread-local
//! "last error": Go moves goroutines between OS threads).
//!
//! Conventions, stated once here and on every function in the header:
//! - strings in are pointer + length, UTF-8 validated; a NULL pointer is accepted only with
//!   length 0 (the empty string);
//! - enum values in are `uint32_t` and checked (an unknown value is `NL_RESULT_UNKNOWN_ENUM`,
//!   never undefined behaviour);
//! - outputs go to trailing `*_out` parameters, written only on success;
//! - lists, snapshots and audit queries come back as JSON in a library-owned `nl_bytes`, freed
//!   with `nl_bytes_free`;
//! - `err_out` may be NULL; otherwise it is set to NULL on success and to a new `nl_error` (free
//!   it with `nl_error_free`) on failure.

#![allow(non_camel_case_types)]
// Every export checks its pointers before dereferencing them; the safety contract is the one in
// the header, so clippy's per-function "missing Safety section" adds nothing here.
#![allow(clippy::missing_safety_doc)]

mod boundary;
mod fleet;
mod options;

pub use boundary::*;
pub use fleet::*;
pub use options::*;
