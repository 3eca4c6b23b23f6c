//! node-lifecycle decides when a cloud VM may be deleted, and proves afterwards why it was or
//! wasn't.
//!
//! Read top-down: [`state`] (the state machine), [`clock`], [`policy`], [`text`], [`ids`],
//! [`metrics`], [`node`] (one node's record), [`safety`] (the pure verdict rules) and [`verdict`] (their answer), [`audit`]
//! (the bounded ring), [`fleet`] (the thread-safe registry that ties them together and runs the
//! decommission protocol), [`planning`] (projection and consolidation plans) and [`storage`]
//! (the data directory). [`ffi`] is the C ABI.
//!
//! ```
//! use node_lifecycle::{Fleet, FleetOptions, NodeSpec, LifecycleState, Timestamp};
//! use std::time::Duration;
//!
//! let fleet = Fleet::with_manual_clock(FleetOptions::default(), Timestamp(0)).unwrap();
//! fleet.register(NodeSpec::cloud("worker-1", 8192)).unwrap();
//! fleet.transition("worker-1", LifecycleState::Initializing, "cloud_init_started").unwrap();
//! fleet.transition("worker-1", LifecycleState::Ready, "cloud_init_completed").unwrap();
//! // Too young: rejected, and the rejection is in the audit ring.
//! assert!(fleet.begin_decommission("worker-1", "reactive_policy").is_err());
//! fleet.advance_clock(Duration::from_secs(30 * 60)).unwrap();
//! let ticket = fleet.begin_decommission("worker-1", "reactive_policy").unwrap();
//! // ... delete the VM at the provider ...
//! fleet.complete_decommission(&ticket).unwrap();
//! assert_eq!(fleet.node("worker-1").unwrap().state, LifecycleState::Decommissioned);
//! ```

pub mod audit;
pub mod clock;
pub mod error;
pub mod ffi;
pub mod fleet;
mod fxhash;
pub mod ids;
pub mod metrics;
pub mod node;
pub mod planning;
pub mod policy;
pub mod reason;
pub mod safety;
pub mod state;
pub mod storage;
pub mod text;
pub mod verdict;

pub use audit::{
    AuditAction, AuditEntry, AuditFilter, AuditNewestPage, AuditPage, AuditQuery, AuditRecord,
    AuditResult, AuditStats, StateSnapshot,
};
pub use clock::{Clock, ManualClock, Moment, SystemClock, Timestamp};
pub use error::{Error, Result};
pub use fleet::{
    ConsolidationRequest, ContainerOutcome, Fleet, FleetBuilder, HealthOutcome, NodeInfo, NodePage,
    NodeQuery, NodeRow, NodeVerdict, PlanExecution, TickReport,
};
pub use ids::{ClaimId, DecommissionTicket, InstanceId, TicketId};
pub use node::{Node, NodeSpec, NodeUpdate};
pub use planning::{ConsolidationPlan, ConsolidationPolicy, FleetProjection};
pub use policy::{FleetOptions, Policy, OFF};
pub use reason::ReasonCode;
pub use state::{HealthStatus, LifecycleState, NodeOrigin};
pub use storage::{OpenReport, StorageOptions, StorageStatus, SyncPolicy};
pub use verdict::{Blocker, Verdict};
