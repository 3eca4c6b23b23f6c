//! The crate's one error type, and the single place where each error gets its stable code.

use crate::safety::Verdict;
use crate::state::LifecycleState;

/// Every way an operation can fail. Whenever an operation returns an error, it changed nothing
/// (apart from the `rejected`/`failed` audit entry the decommission protocol records on purpose).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("node {0:?} not found")]
    NodeNotFound(String),
    #[error("node {0:?} is already registered")]
    NodeExists(String),
    #[error("node {node:?}: invalid lifecycle transition from {from} to {to}")]
    InvalidTransition {
        node: String,
        from: LifecycleState,
        to: LifecycleState,
    },
    #[error("node {node:?} is {state} and accepts no new containers, reservations or holds")]
    NotSchedulable { node: String, state: LifecycleState },
    #[error("node {node:?} has {free_mb} MB free, {requested_mb} MB requested")]
    InsufficientCapacity {
        node: String,
        requested_mb: u64,
        free_mb: u64,
    },
    #[error("decommission ticket {0} is unknown, stale or already used")]
    TicketInvalid(u64),
    #[error("the fleet does not use a manual clock")]
    NotManualClock,
    #[error("node {node:?} may not be decommissioned: {}", verdict.message())]
    Rejected { node: String, verdict: Box<Verdict> },
    /// The data directory could not be read or written (unwritable, full, I/O error). The
    /// operation that returns it changed nothing.
    #[error("storage: {0}")]
    Storage(String),
    #[error("data directory {0} is in use by another process")]
    Locked(String),
    #[error("{path}: on-disk format version {found} is newer than this library's ({supported})")]
    UnsupportedFormat {
        path: String,
        found: u32,
        supported: u32,
    },
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

/// Stable numeric codes (the C ABI's `nl_result`). 0 is success; 1..99 are errors;
/// 100 and above are the [`crate::ReasonCode`] of a rejection.
pub mod code {
    pub const OK: u32 = 0;
    pub const NULL_ARGUMENT: u32 = 1;
    pub const INVALID_UTF8: u32 = 2;
    pub const INVALID_ARGUMENT: u32 = 3;
    pub const NODE_NOT_FOUND: u32 = 4;
    pub const NODE_EXISTS: u32 = 5;
    pub const INVALID_TRANSITION: u32 = 6;
    pub const NOT_SCHEDULABLE: u32 = 7;
    pub const INSUFFICIENT_CAPACITY: u32 = 8;
    pub const TICKET_INVALID: u32 = 9;
    pub const NOT_MANUAL_CLOCK: u32 = 10;
    pub const PANIC: u32 = 11;
    pub const UNKNOWN_ENUM: u32 = 12;
    pub const USE_AFTER_FREE: u32 = 13;
    pub const STORAGE: u32 = 14;
    pub const LOCKED: u32 = 15;
    pub const UNSUPPORTED_FORMAT: u32 = 16;
    pub const CORRUPT: u32 = 17;
}

impl Error {
    /// The stable code of this error; for a rejection, the primary reason's number.
    pub fn code(&self) -> u32 {
        match self {
            Error::InvalidArgument(_) => code::INVALID_ARGUMENT,
            Error::NodeNotFound(_) => code::NODE_NOT_FOUND,
            Error::NodeExists(_) => code::NODE_EXISTS,
            Error::InvalidTransition { .. } => code::INVALID_TRANSITION,
            Error::NotSchedulable { .. } => code::NOT_SCHEDULABLE,
            Error::InsufficientCapacity { .. } => code::INSUFFICIENT_CAPACITY,
            Error::TicketInvalid(_) => code::TICKET_INVALID,
            Error::NotManualClock => code::NOT_MANUAL_CLOCK,
            Error::Storage(_) => code::STORAGE,
            Error::Locked(_) => code::LOCKED,
            Error::UnsupportedFormat { .. } => code::UNSUPPORTED_FORMAT,
            Error::Corrupt(_) => code::CORRUPT,
            Error::Rejected { verdict, .. } => verdict
                .primary
                .map(|r| r.code())
                .unwrap_or(code::INVALID_ARGUMENT),
        }
    }

    /// The verdict behind a rejection, if this is one.
    pub fn verdict(&self) -> Option<&Verdict> {
        match self {
            Error::Rejected { verdict, .. } => Some(verdict),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
