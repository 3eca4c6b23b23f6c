//! The crate's one error type, and the single place where each error gets its stable code.

use crate::state::LifecycleState;
use crate::verdict::Verdict;

/// Every way an operation can fail. Whenever an operation returns an error, it changed nothing
/// (apart from the `rejected`/`failed` audit entry the decommission protocol records on purpose).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A setting (policy value, option) is out of range; `field` names it.
    #[error("invalid setting {field}: {reason}")]
    InvalidSetting { field: String, reason: String },
    #[error("node {0:?} not found")]
    NodeNotFound(String),
    #[error("node {node:?} is already registered: {detail}")]
    NodeExists { node: String, detail: String },
    #[error("node {node:?}: invalid lifecycle transition from {from} to {to}")]
    InvalidTransition {
        node: String,
        from: LifecycleState,
        to: LifecycleState,
    },
    /// `draining` and `decommissioned` are entered only through the decommission protocol (or
    /// `abandon_provisioning`), so that no deletion is ever unattributed.
    #[error("node {node:?}: {to} is entered only through {call}, not by a plain transition")]
    ProtocolOnly {
        node: String,
        to: LifecycleState,
        call: &'static str,
    },
    #[error("node {node:?} is {state}{} and accepts no new containers, claims or holds",
        if cordons.is_empty() { String::new() } else { format!(", cordoned ({})", cordons.join("; ")) })]
    NotSchedulable {
        node: String,
        state: LifecycleState,
        /// The cordons that make it unschedulable, as "name: reason".
        cordons: Vec<String>,
    },
    /// A node's RAM cannot be set below what runs and is claimed on it, nor to 0 ("unknown",
    /// which switches capacity checks off) while anything is placed there.
    #[error("node {node:?}: total_ram_mb = {requested_mb} is below the {in_use_mb} MB its containers and claims use{}",
        if *requested_mb == 0 { " (0 means unknown capacity, which is not accepted while anything is placed on it)" } else { "" })]
    CapacityInUse {
        node: String,
        requested_mb: u64,
        in_use_mb: u64,
    },
    #[error("node {node:?} has {free_mb} MB free, {requested_mb} MB requested")]
    InsufficientCapacity {
        node: String,
        requested_mb: u64,
        free_mb: u64,
    },
    /// Container ids are unique across the fleet.
    #[error(
        "container {container:?} already runs on node {node:?} (use record_migration to move it)"
    )]
    ContainerElsewhere { container: String, node: String },
    #[error("decommission ticket invalid: {0}")]
    TicketInvalid(String),
    #[error("claim {0} is unknown, expired, confirmed or released")]
    ClaimNotFound(String),
    #[error("the fleet does not use a manual clock")]
    NotManualClock,
    #[error("node {node:?} may not be decommissioned: {}", verdict.message())]
    Rejected { node: String, verdict: Box<Verdict> },
    /// A consolidation plan no longer matches the fleet.
    #[error("stale consolidation plan: {0}")]
    StalePlan(String),
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
    /// Damaged data: a checksum, header or cross-check failed somewhere other than an incomplete
    /// last frame. Nothing was changed on disk; see `salvage`.
    #[error("corrupt data in {path} at offset {offset}: {detail}")]
    Corrupt {
        path: String,
        offset: u64,
        detail: String,
    },
    /// The fleet refuses work until it is reopened: its storage failed to sync (mutations are
    /// refused; what was acknowledged is safe on disk) or an internal error interrupted a
    /// mutation (everything is refused).
    #[error("fleet poisoned: {0}")]
    Poisoned(String),
}

impl Error {
    pub(crate) fn invalid_setting(field: &str, reason: impl Into<String>) -> Error {
        Error::InvalidSetting {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn corrupt(path: &std::path::Path, offset: u64, detail: impl Into<String>) -> Error {
        Error::Corrupt {
            path: path.display().to_string(),
            offset,
            detail: detail.into(),
        }
    }
}

/// Stable numeric codes (the C ABI's `nl_result`). 0 is success; 1..99 are errors;
/// 100 and above are the [`crate::ReasonCode`] of a rejection. Numbers are never reused.
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
    pub const INVALID_SETTING: u32 = 18;
    pub const PROTOCOL_ONLY: u32 = 19;
    pub const CONTAINER_ELSEWHERE: u32 = 20;
    pub const CLAIM_NOT_FOUND: u32 = 21;
    pub const STALE_PLAN: u32 = 22;
    pub const POISONED: u32 = 23;
    pub const CAPACITY_IN_USE: u32 = 24;
}

impl Error {
    /// The stable code of this error; for a rejection, the primary reason's number.
    pub fn code(&self) -> u32 {
        match self {
            Error::InvalidArgument(_) => code::INVALID_ARGUMENT,
            Error::InvalidSetting { .. } => code::INVALID_SETTING,
            Error::NodeNotFound(_) => code::NODE_NOT_FOUND,
            Error::NodeExists { .. } => code::NODE_EXISTS,
            Error::InvalidTransition { .. } => code::INVALID_TRANSITION,
            Error::ProtocolOnly { .. } => code::PROTOCOL_ONLY,
            Error::NotSchedulable { .. } => code::NOT_SCHEDULABLE,
            Error::InsufficientCapacity { .. } => code::INSUFFICIENT_CAPACITY,
            Error::CapacityInUse { .. } => code::CAPACITY_IN_USE,
            Error::ContainerElsewhere { .. } => code::CONTAINER_ELSEWHERE,
            Error::TicketInvalid(_) => code::TICKET_INVALID,
            Error::ClaimNotFound(_) => code::CLAIM_NOT_FOUND,
            Error::NotManualClock => code::NOT_MANUAL_CLOCK,
            Error::StalePlan(_) => code::STALE_PLAN,
            Error::Storage(_) => code::STORAGE,
            Error::Locked(_) => code::LOCKED,
            Error::UnsupportedFormat { .. } => code::UNSUPPORTED_FORMAT,
            Error::Corrupt { .. } => code::CORRUPT,
            Error::Poisoned(_) => code::POISONED,
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
