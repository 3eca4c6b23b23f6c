//! The boundary: result codes, the error object, byte buffers, argument checks, the registry
//! of live objects, and the one macro every export goes through.

use crate::error::Error;
use std::collections::HashMap;
use std::ffi::{c_char, CString};

/// The result of every fallible call. 0 is success, 1..99 are errors, and 100 and above are
/// the reason code of a rejected decommission (the same numbers as `nl_reason`). 99 is never
/// returned by the library: bindings use it for "the library is not the version they were
/// written for" (the Go package's `CodeLibraryMismatch`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum nl_result {
    Ok = 0,
    NullArgument = 1,
    InvalidUtf8 = 2,
    InvalidArgument = 3,
    NodeNotFound = 4,
    NodeExists = 5,
    InvalidTransition = 6,
    NotSchedulable = 7,
    InsufficientCapacity = 8,
    TicketInvalid = 9,
    NotManualClock = 10,
    Panic = 11,
    UnknownEnum = 12,
    /// The handle was already freed (or never came from this library).
    UseAfterFree = 13,
    /// The data directory could not be read or written (unwritable, full, I/O error).
    Storage = 14,
    /// The data directory is open in another process.
    Locked = 15,
    /// The data directory was written by a newer version of the library.
    UnsupportedFormat = 16,
    /// A snapshot or journal is damaged beyond a torn tail (see `nl_salvage`).
    Corrupt = 17,
    /// A setting is out of range (the message names it).
    InvalidSetting = 18,
    /// Draining and decommissioned are entered only through the decommission protocol.
    ProtocolOnly = 19,
    /// The container runs on another node (container ids are unique across the fleet).
    ContainerElsewhere = 20,
    /// The claim is unknown, expired, confirmed or released.
    ClaimNotFound = 21,
    /// A consolidation plan no longer matches the fleet.
    StalePlan = 22,
    /// The fleet refuses work until reopened (a failed fsync, or an internal error).
    Poisoned = 23,
    /// A node's RAM cannot go below what its containers and claims use (nor to "unknown" while
    /// anything is placed on it).
    CapacityInUse = 24,
    // 25 and 26 are taken by the Go package's replica layer (ErrNotLeader, ErrFenced): the next
    // result code of the library is 27.
    SystemNode = 100,
    DedicatedNode = 101,
    StillStarting = 102,
    HasContainers = 103,
    HasReservations = 104,
    HasHolds = 105,
    ReadyTooYoung = 106,
    IdleTooRecent = 107,
    NoContainerHistory = 108,
    ContainerSyncPending = 109,
    RecoveryGrace = 110,
    AlreadyDecommissioned = 111,
    DecommissionInProgress = 112,
    NodeNotFoundReason = 113,
    UnhealthyTooRecent = 114,
}

impl nl_result {
    /// Every value, for the tests that tie these numbers to the core's.
    pub const ALL: [nl_result; 40] = [
        Self::Ok,
        Self::NullArgument,
        Self::InvalidUtf8,
        Self::InvalidArgument,
        Self::NodeNotFound,
        Self::NodeExists,
        Self::InvalidTransition,
        Self::NotSchedulable,
        Self::InsufficientCapacity,
        Self::TicketInvalid,
        Self::NotManualClock,
        Self::Panic,
        Self::UnknownEnum,
        Self::UseAfterFree,
        Self::Storage,
        Self::Locked,
        Self::UnsupportedFormat,
        Self::Corrupt,
        Self::InvalidSetting,
        Self::ProtocolOnly,
        Self::ContainerElsewhere,
        Self::ClaimNotFound,
        Self::StalePlan,
        Self::Poisoned,
        Self::CapacityInUse,
        Self::SystemNode,
        Self::DedicatedNode,
        Self::StillStarting,
        Self::HasContainers,
        Self::HasReservations,
        Self::HasHolds,
        Self::ReadyTooYoung,
        Self::IdleTooRecent,
        Self::NoContainerHistory,
        Self::ContainerSyncPending,
        Self::RecoveryGrace,
        Self::AlreadyDecommissioned,
        Self::DecommissionInProgress,
        Self::NodeNotFoundReason,
        Self::UnhealthyTooRecent,
    ];

    /// The value with number `n`; `InvalidArgument` for a number the core never produces.
    pub fn from_code(n: u32) -> nl_result {
        Self::ALL
            .iter()
            .copied()
            .find(|r| *r as u32 == n)
            .unwrap_or(nl_result::InvalidArgument)
    }

    /// A static, NUL-terminated name such as "NL_RESULT_HAS_CONTAINERS".
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "NL_RESULT_OK\0",
            Self::NullArgument => "NL_RESULT_NULL_ARGUMENT\0",
            Self::InvalidUtf8 => "NL_RESULT_INVALID_UTF8\0",
            Self::InvalidArgument => "NL_RESULT_INVALID_ARGUMENT\0",
            Self::NodeNotFound => "NL_RESULT_NODE_NOT_FOUND\0",
            Self::NodeExists => "NL_RESULT_NODE_EXISTS\0",
            Self::InvalidTransition => "NL_RESULT_INVALID_TRANSITION\0",
            Self::NotSchedulable => "NL_RESULT_NOT_SCHEDULABLE\0",
            Self::InsufficientCapacity => "NL_RESULT_INSUFFICIENT_CAPACITY\0",
            Self::TicketInvalid => "NL_RESULT_TICKET_INVALID\0",
            Self::NotManualClock => "NL_RESULT_NOT_MANUAL_CLOCK\0",
            Self::Panic => "NL_RESULT_PANIC\0",
            Self::UnknownEnum => "NL_RESULT_UNKNOWN_ENUM\0",
            Self::UseAfterFree => "NL_RESULT_USE_AFTER_FREE\0",
            Self::Storage => "NL_RESULT_STORAGE\0",
            Self::Locked => "NL_RESULT_LOCKED\0",
            Self::UnsupportedFormat => "NL_RESULT_UNSUPPORTED_FORMAT\0",
            Self::Corrupt => "NL_RESULT_CORRUPT\0",
            Self::InvalidSetting => "NL_RESULT_INVALID_SETTING\0",
            Self::ProtocolOnly => "NL_RESULT_PROTOCOL_ONLY\0",
            Self::ContainerElsewhere => "NL_RESULT_CONTAINER_ELSEWHERE\0",
            Self::ClaimNotFound => "NL_RESULT_CLAIM_NOT_FOUND\0",
            Self::StalePlan => "NL_RESULT_STALE_PLAN\0",
            Self::Poisoned => "NL_RESULT_POISONED\0",
            Self::CapacityInUse => "NL_RESULT_CAPACITY_IN_USE\0",
            Self::SystemNode => "NL_RESULT_SYSTEM_NODE\0",
            Self::DedicatedNode => "NL_RESULT_DEDICATED_NODE\0",
            Self::StillStarting => "NL_RESULT_STILL_STARTING\0",
            Self::HasContainers => "NL_RESULT_HAS_CONTAINERS\0",
            Self::HasReservations => "NL_RESULT_HAS_RESERVATIONS\0",
            Self::HasHolds => "NL_RESULT_HAS_HOLDS\0",
            Self::ReadyTooYoung => "NL_RESULT_READY_TOO_YOUNG\0",
            Self::IdleTooRecent => "NL_RESULT_IDLE_TOO_RECENT\0",
            Self::NoContainerHistory => "NL_RESULT_NO_CONTAINER_HISTORY\0",
            Self::ContainerSyncPending => "NL_RESULT_CONTAINER_SYNC_PENDING\0",
            Self::RecoveryGrace => "NL_RESULT_RECOVERY_GRACE\0",
            Self::AlreadyDecommissioned => "NL_RESULT_ALREADY_DECOMMISSIONED\0",
            Self::DecommissionInProgress => "NL_RESULT_DECOMMISSION_IN_PROGRESS\0",
            Self::NodeNotFoundReason => "NL_RESULT_NODE_NOT_FOUND_REASON\0",
            Self::UnhealthyTooRecent => "NL_RESULT_UNHEALTHY_TOO_RECENT\0",
        }
    }
}

/// Error detail for one failed call: its code, a message, and for a rejection the verdict.
///
/// Thread-safety: an `nl_error` is owned by the caller that received it; it may be read or
/// freed from any thread, but not concurrently with `nl_error_free`.
pub struct nl_error {
    code: nl_result,
    message: CString,
    /// The core's error, when it came from one: the detail JSON is built from it.
    source: Option<Error>,
}

/// A library-owned byte buffer (JSON). Read it with `nl_bytes_data`/`nl_bytes_len`, free it
/// with `nl_bytes_free`.
///
/// Thread-safety: owned by the caller that received it; not shared by the library.
pub struct nl_bytes {
    data: Vec<u8>,
}

// ----- the registry of live objects ------------------------------------------------------------

/// The kinds of object the ABI hands out by pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Error,
    Bytes,
    Options,
    VerdictList,
    AuditList,
}

/// Every object handed out and not yet freed, with its kind: a double free, or a use after
/// free, of anything the ABI hands out is reported (`NL_RESULT_USE_AFTER_FREE`) instead of
/// touching freed memory. Fleets are tracked by their own handle table.
static LIVE: once_cell::sync::Lazy<parking_lot::Mutex<HashMap<usize, Kind>>> =
    once_cell::sync::Lazy::new(Default::default);

/// Hands out `value` as a tracked pointer.
pub fn hand_out<T>(value: T, kind: Kind) -> *mut T {
    let p = Box::into_raw(Box::new(value));
    LIVE.lock().insert(p as usize, kind);
    p
}

/// Whether `p` is a live object of `kind`.
pub fn is_live<T>(p: *const T, kind: Kind) -> bool {
    !p.is_null() && LIVE.lock().get(&(p as usize)) == Some(&kind)
}

/// Checks that `p` is a live object of `kind` and borrows it.
///
/// # Safety
/// The object must not be freed while the borrow is used (the caller's contract).
pub unsafe fn live<'a, T>(p: *const T, kind: Kind, what: &str) -> FfiResult<&'a T> {
    if p.is_null() {
        return Err(FfiError::null(what));
    }
    if !is_live(p, kind) {
        return Err(FfiError::new(
            nl_result::UseAfterFree,
            format!("{what} was already freed or did not come from this library"),
        ));
    }
    // SAFETY: registered as live and of this kind, so it is a valid Box allocation.
    Ok(unsafe { &*p })
}

/// [`live`] for an object the caller owns exclusively and lets the library change.
///
/// # Safety
/// As [`live`], and nobody else uses the object during the call.
pub unsafe fn live_mut<'a, T>(p: *mut T, kind: Kind, what: &str) -> FfiResult<&'a mut T> {
    // SAFETY: the same contract; exclusive per the caller's contract.
    unsafe { live(p, kind, what) }?;
    Ok(unsafe { &mut *p })
}

/// Takes back an object handed out by [`hand_out`]: `Ok(None)` for NULL, an error for a pointer
/// that is not (or no longer) a live object of `kind`.
///
/// # Safety
/// `p` must be NULL or a pointer this library handed out as `kind`.
pub unsafe fn take_back<T>(p: *mut T, kind: Kind, what: &str) -> FfiResult<Option<Box<T>>> {
    if p.is_null() {
        return Ok(None);
    }
    let removed = {
        let mut live = LIVE.lock();
        let found = live.get(&(p as usize)) == Some(&kind);
        if found {
            live.remove(&(p as usize));
            if live.is_empty() {
                // A program that frees everything ends with nothing allocated.
                live.shrink_to_fit();
            }
        }
        found
    };
    if !removed {
        return Err(FfiError::new(
            nl_result::UseAfterFree,
            format!("{what} was already freed or did not come from this library"),
        ));
    }
    // SAFETY: it was live and of this kind: a Box this library allocated, freed only here.
    Ok(Some(unsafe { Box::from_raw(p) }))
}

// ----- errors ----------------------------------------------------------------------------------

/// What an export's body fails with: a code and a message (and the core error behind it).
#[derive(Debug)]
pub struct FfiError {
    pub code: nl_result,
    pub message: String,
    /// Boxed: results on the success path stay small.
    pub source: Option<Box<Error>>,
}

impl FfiError {
    pub fn new(code: nl_result, message: impl Into<String>) -> Self {
        FfiError {
            code,
            message: message.into(),
            source: None,
        }
    }

    pub fn null(what: &str) -> Self {
        Self::new(nl_result::NullArgument, format!("{what} must not be NULL"))
    }

    pub fn unknown_enum(what: &str, value: u32) -> Self {
        Self::new(
            nl_result::UnknownEnum,
            format!("{value} is not a valid {what}"),
        )
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(nl_result::InvalidArgument, message)
    }
}

impl From<Error> for FfiError {
    fn from(e: Error) -> Self {
        FfiError {
            code: nl_result::from_code(e.code()),
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }
}

pub type FfiResult<T> = Result<T, FfiError>;

/// The message of a caught panic.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Turns a body's outcome into the call's result, writing `err_out` (if non-NULL).
///
/// # Safety
/// `err_out` must be NULL or point to writable storage for a pointer.
#[doc(hidden)]
pub unsafe fn finish(
    outcome: std::thread::Result<FfiResult<()>>,
    err_out: *mut *mut nl_error,
) -> nl_result {
    let err = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(panic) => Some(FfiError::new(
            nl_result::Panic,
            format!(
                "internal error (panic caught at the C boundary): {}",
                panic_message(&*panic)
            ),
        )),
    };
    let code = err.as_ref().map_or(nl_result::Ok, |e| e.code);
    if !err_out.is_null() {
        let out = err.map_or(std::ptr::null_mut(), |e| {
            // Messages are sanitised texts and never hold NUL; never let one cause a failure.
            let message = CString::new(e.message.replace('\0', "\\0")).unwrap_or_default();
            hand_out(
                nl_error {
                    code: e.code,
                    message,
                    source: e.source.map(|b| *b),
                },
                Kind::Error,
            )
        });
        // SAFETY: err_out is non-NULL and, per the contract, points to writable storage.
        unsafe { *err_out = out };
    }
    code
}

/// The one boundary every export goes through.
///
/// `ffi_boundary!(err_out, { ...; Ok(()) })` for calls returning `nl_result`: a panic becomes
/// `NL_RESULT_PANIC`, an error its code, and `err_out` carries the detail.
///
/// `ffi_boundary!(value DEFAULT, { ... })` for calls returning a value (getters): a panic
/// returns `DEFAULT`.
#[macro_export]
#[doc(hidden)]
macro_rules! ffi_boundary {
    (value $default:expr, $body:block) => {{
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| $body)) {
            Ok(v) => v,
            Err(_) => $default,
        }
    }};
    ($err_out:ident, $body:block) => {{
        let outcome = ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(
            || -> $crate::ffi::FfiResult<()> { $body },
        ));
        // SAFETY: every export documents err_out as NULL or writable.
        #[allow(unused_unsafe)]
        unsafe {
            $crate::ffi::finish(outcome, $err_out)
        }
    }};
}

// ----- arguments ------------------------------------------------------------------------------

/// Reads a pointer + length byte argument. NULL is accepted only with length 0.
///
/// # Safety
/// `ptr` must point to `len` readable bytes (or be NULL with `len == 0`) for the call.
pub unsafe fn bytes_arg<'a>(ptr: *const u8, len: usize, what: &str) -> FfiResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(FfiError::null(what));
    }
    if len > isize::MAX as usize {
        return Err(FfiError::invalid(format!("{what}: length {len} overflows")));
    }
    // SAFETY: non-NULL, within isize::MAX, readable per the contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Reads a pointer + length string argument, validated as UTF-8. NULL is accepted only with
/// length 0 (the empty string).
///
/// # Safety
/// `ptr` must point to `len` readable bytes (or be NULL with `len == 0`) for the call.
pub unsafe fn str_arg<'a>(ptr: *const u8, len: usize, what: &str) -> FfiResult<&'a str> {
    // SAFETY: the same contract.
    let bytes = unsafe { bytes_arg(ptr, len, what) }?;
    // Printable ASCII is valid UTF-8: ids and names, the arguments of every hot call, take
    // this short loop instead of the general validation (measured: 20 ns of a 90 ns verdict).
    if bytes.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        // SAFETY: every byte is ASCII, so the bytes are valid UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).map_err(|e| {
        FfiError::new(
            nl_result::InvalidUtf8,
            format!("{what} is not valid UTF-8: {e}"),
        )
    })
}

/// Reads a required pointer to a value.
///
/// # Safety
/// `ptr` must be NULL or point to a readable `T`.
pub unsafe fn ref_arg<'a, T>(ptr: *const T, what: &str) -> FfiResult<&'a T> {
    // SAFETY: NULL or readable per the contract.
    unsafe { ptr.as_ref() }.ok_or_else(|| FfiError::null(what))
}

/// Decodes a JSON argument; length 0 means the type's default.
///
/// # Safety
/// `ptr` must point to `len` readable bytes (or be NULL with `len == 0`) for the call.
pub unsafe fn json_arg<T: serde::de::DeserializeOwned + Default>(
    ptr: *const u8,
    len: usize,
    what: &str,
) -> FfiResult<T> {
    // SAFETY: the same contract.
    let text = unsafe { str_arg(ptr, len, what) }?;
    if text.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(text).map_err(|e| FfiError::invalid(format!("{what}: {e}")))
}

/// Writes `value` to a required out-parameter.
///
/// # Safety
/// `out` must be NULL or point to writable storage for a `T`.
pub unsafe fn write_out<T>(out: *mut T, value: T, what: &str) -> FfiResult<()> {
    if out.is_null() {
        return Err(FfiError::null(what));
    }
    // SAFETY: non-NULL and writable per the contract.
    unsafe { out.write(value) };
    Ok(())
}

/// Writes `value` to an optional out-parameter (NULL means the caller does not want it).
///
/// # Safety
/// `out` must be NULL or point to writable storage for a `T`.
pub unsafe fn write_opt<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-NULL and writable per the contract.
        unsafe { out.write(value) };
    }
}

/// Checks that a required out-parameter is present before any work is done, so that a call
/// never changes state and then fails to report it.
pub fn require_out<T>(out: *mut T, what: &str) -> FfiResult<()> {
    if out.is_null() {
        Err(FfiError::null(what))
    } else {
        Ok(())
    }
}

/// Serialises `value` into a new `nl_bytes` and stores it in `out`.
///
/// # Safety
/// `out` must be NULL or point to writable storage for a pointer.
pub unsafe fn json_out<T: serde::Serialize + ?Sized>(
    out: *mut *mut nl_bytes,
    value: &T,
) -> FfiResult<()> {
    let data =
        serde_json::to_vec(value).map_err(|e| FfiError::invalid(format!("serialising: {e}")))?;
    // SAFETY: forwarded contract.
    unsafe { raw_bytes_out(out, data) }
}

/// Hands `data` (already JSON) to an `nl_bytes` out-parameter.
///
/// # Safety
/// `out` must be NULL or valid for a write.
pub unsafe fn raw_bytes_out(out: *mut *mut nl_bytes, data: Vec<u8>) -> FfiResult<()> {
    require_out(out, "bytes_out")?;
    // SAFETY: checked non-NULL above.
    unsafe { out.write(hand_out(nl_bytes { data }, Kind::Bytes)) };
    Ok(())
}

// ----- exports: version, results, errors, bytes ---------------------------------------------

/// The library version, e.g. "0.3.0": a static string, never freed. Matches `NL_VERSION`.
#[no_mangle]
pub extern "C" fn nl_version() -> *const c_char {
    ffi_boundary!(value std::ptr::null(), {
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
    })
}

/// The fingerprint of the source this library was built from (hex SHA-256 of the crate's
/// sources, see `scripts/source-fingerprint`): a static string, never freed. Prebuilt
/// libraries are checked against the tree with it.
#[no_mangle]
pub extern "C" fn nl_source_fingerprint() -> *const c_char {
    ffi_boundary!(value std::ptr::null(), {
        concat!(env!("NL_SOURCE_FINGERPRINT"), "\0").as_ptr().cast()
    })
}

/// Does nothing and returns 0: the cost of a bare call through a binding, for benchmarks.
#[no_mangle]
pub extern "C" fn nl_noop() -> u32 {
    ffi_boundary!(value 0, { 0 })
}

/// A static name for a result code ("NL_RESULT_HAS_CONTAINERS"), or NULL for an unknown
/// number. Never freed.
#[no_mangle]
pub extern "C" fn nl_result_name(result: u32) -> *const c_char {
    ffi_boundary!(value std::ptr::null(), {
        nl_result::ALL
            .iter()
            .find(|r| **r as u32 == result)
            .map_or(std::ptr::null(), |r| r.name().as_ptr().cast())
    })
}

/// The code of an error; `NL_RESULT_NULL_ARGUMENT` for NULL, `NL_RESULT_USE_AFTER_FREE` for an
/// error already freed.
#[no_mangle]
pub unsafe extern "C" fn nl_error_code(err: *const nl_error) -> nl_result {
    ffi_boundary!(value nl_result::Panic, {
        // SAFETY: checked against the registry.
        match unsafe { live(err, Kind::Error, "err") } {
            Ok(e) => e.code,
            Err(e) => e.code,
        }
    })
}

/// The error's NUL-terminated message, owned by the error: valid until `nl_error_free`.
/// Returns "" for NULL or an error already freed.
#[no_mangle]
pub unsafe extern "C" fn nl_error_message(err: *const nl_error) -> *const c_char {
    ffi_boundary!(value c"".as_ptr(), {
        // SAFETY: checked against the registry.
        unsafe { live(err, Kind::Error, "err") }.map_or(c"".as_ptr(), |e| e.message.as_ptr())
    })
}

/// For an error that is a rejected decommission or transition, writes the verdict to
/// `verdict_out` and returns `NL_RESULT_OK`; otherwise returns `NL_RESULT_INVALID_ARGUMENT` and
/// writes nothing. The messages are in `nl_error_detail_json`.
#[no_mangle]
pub unsafe extern "C" fn nl_error_verdict(
    err: *const nl_error,
    verdict_out: *mut crate::ffi::nl_verdict,
) -> nl_result {
    let err_out: *mut *mut nl_error = std::ptr::null_mut();
    ffi_boundary!(err_out, {
        // SAFETY: checked against the registry.
        let e = unsafe { live(err, Kind::Error, "err") }?;
        let v = e
            .source
            .as_ref()
            .and_then(Error::verdict)
            .ok_or_else(|| FfiError::invalid("the error is not a rejection"))?;
        // SAFETY: NULL or writable per the contract.
        unsafe { write_out(verdict_out, crate::ffi::nl_verdict::from(v), "verdict_out") }
    })
}

/// The error as JSON: `{"code":N,"name":"NL_RESULT_...","message":"...","verdict":{..}|null,
/// "field":".."|null,"node":".."|null}` (`verdict` with every reason's message for a
/// rejection; `field` for an invalid setting; `node` for a container running elsewhere).
#[no_mangle]
pub unsafe extern "C" fn nl_error_detail_json(
    err: *const nl_error,
    bytes_out: *mut *mut nl_bytes,
) -> nl_result {
    let err_out: *mut *mut nl_error = std::ptr::null_mut();
    ffi_boundary!(err_out, {
        // SAFETY: checked against the registry.
        let e = unsafe { live(err, Kind::Error, "err") }?;
        let src = e.source.as_ref();
        let detail = serde_json::json!({
            "code": e.code as u32,
            "name": e.code.name().trim_end_matches('\0'),
            "message": e.message.to_string_lossy(),
            "verdict": src.and_then(Error::verdict),
            "field": match src {
                Some(Error::InvalidSetting { field, .. }) => Some(field.as_str()),
                _ => None,
            },
            "node": match src {
                Some(Error::ContainerElsewhere { node, .. }) => Some(node.as_str()),
                _ => None,
            },
        });
        // SAFETY: out-parameter per the contract.
        unsafe { json_out(bytes_out, &detail) }
    })
}

/// Frees an error. NULL is a no-op; an error already freed is reported
/// (`NL_RESULT_USE_AFTER_FREE`) and nothing is touched.
#[no_mangle]
pub unsafe extern "C" fn nl_error_free(err: *mut nl_error) -> nl_result {
    ffi_boundary!(value nl_result::Panic, {
        // SAFETY: checked against the registry.
        match unsafe { take_back(err, Kind::Error, "err") } {
            Ok(_) => nl_result::Ok,
            Err(e) => e.code,
        }
    })
}

/// The buffer's bytes (not NUL-terminated), owned by the buffer; NULL for NULL or a buffer
/// already freed.
#[no_mangle]
pub unsafe extern "C" fn nl_bytes_data(bytes: *const nl_bytes) -> *const u8 {
    ffi_boundary!(value std::ptr::null(), {
        // SAFETY: checked against the registry.
        unsafe { live(bytes, Kind::Bytes, "bytes") }.map_or(std::ptr::null(), |b| b.data.as_ptr())
    })
}

/// The buffer's length in bytes; 0 for NULL or a buffer already freed.
#[no_mangle]
pub unsafe extern "C" fn nl_bytes_len(bytes: *const nl_bytes) -> usize {
    ffi_boundary!(value 0, {
        // SAFETY: checked against the registry.
        unsafe { live(bytes, Kind::Bytes, "bytes") }.map_or(0, |b| b.data.len())
    })
}

/// Frees a buffer. NULL is a no-op; a buffer already freed is reported
/// (`NL_RESULT_USE_AFTER_FREE`) and nothing is touched.
#[no_mangle]
pub unsafe extern "C" fn nl_bytes_free(bytes: *mut nl_bytes) -> nl_result {
    ffi_boundary!(value nl_result::Panic, {
        // SAFETY: checked against the registry.
        match unsafe { take_back(bytes, Kind::Bytes, "bytes") } {
            Ok(_) => nl_result::Ok,
            Err(e) => e.code,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::code;
    use crate::reason::ReasonCode;

    #[test]
    fn result_numbers_match_the_core_codes_and_reasons() {
        for r in ReasonCode::ALL {
            let ffi = nl_result::from_code(r.code());
            assert_eq!(ffi as u32, r.code(), "{r}");
        }
        for c in [
            code::OK,
            code::NULL_ARGUMENT,
            code::INVALID_UTF8,
            code::INVALID_ARGUMENT,
            code::NODE_NOT_FOUND,
            code::NODE_EXISTS,
            code::INVALID_TRANSITION,
            code::NOT_SCHEDULABLE,
            code::INSUFFICIENT_CAPACITY,
            code::TICKET_INVALID,
            code::NOT_MANUAL_CLOCK,
            code::PANIC,
            code::UNKNOWN_ENUM,
            code::USE_AFTER_FREE,
            code::STORAGE,
            code::LOCKED,
            code::UNSUPPORTED_FORMAT,
            code::CORRUPT,
            code::INVALID_SETTING,
            code::PROTOCOL_ONLY,
            code::CONTAINER_ELSEWHERE,
            code::CLAIM_NOT_FOUND,
            code::STALE_PLAN,
            code::POISONED,
        ] {
            assert_eq!(nl_result::from_code(c) as u32, c);
        }
        // Names are unique and spell the variant.
        let names: std::collections::HashSet<_> = nl_result::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), nl_result::ALL.len());
        assert_eq!(
            nl_result::HasContainers.name(),
            "NL_RESULT_HAS_CONTAINERS\0"
        );
    }

    #[test]
    fn a_panicking_body_becomes_a_result_code() {
        let mut err: *mut nl_error = std::ptr::null_mut();
        let err_out = &mut err as *mut *mut nl_error;
        let r = ffi_boundary!(err_out, {
            if true {
                panic!("boom");
            }
            Ok(())
        });
        assert_eq!(r, nl_result::Panic);
        unsafe {
            assert_eq!(nl_error_code(err), nl_result::Panic);
            let msg = std::ffi::CStr::from_ptr(nl_error_message(err))
                .to_str()
                .unwrap();
            assert!(msg.contains("boom"), "{msg}");
            nl_error_free(err);
        }
    }

    #[test]
    fn a_double_free_is_reported_not_undefined() {
        let b = hand_out(nl_bytes { data: vec![1] }, Kind::Bytes);
        unsafe {
            assert_eq!(nl_bytes_len(b), 1);
            assert_eq!(nl_bytes_free(b), nl_result::Ok);
            assert_eq!(nl_bytes_free(b), nl_result::UseAfterFree);
            assert_eq!(nl_bytes_len(b), 0);
            assert!(nl_bytes_data(b).is_null());
            // The wrong kind is refused too.
            assert_eq!(nl_error_free(b.cast()), nl_result::UseAfterFree);
            assert_eq!(nl_bytes_free(std::ptr::null_mut()), nl_result::Ok);
        }
    }

    #[test]
    fn string_arguments_are_checked() {
        unsafe {
            assert_eq!(str_arg(std::ptr::null(), 0, "s").unwrap(), "");
            assert_eq!(
                str_arg(std::ptr::null(), 3, "s").unwrap_err().code,
                nl_result::NullArgument
            );
            let bad = [0xffu8, 0xfe];
            assert_eq!(
                str_arg(bad.as_ptr(), 2, "s").unwrap_err().code,
                nl_result::InvalidUtf8
            );
            assert_eq!(
                str_arg(bad.as_ptr(), usize::MAX, "s").unwrap_err().code,
                nl_result::InvalidArgument
            );
        }
    }
}
