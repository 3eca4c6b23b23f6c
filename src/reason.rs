//! Why a node may not be deleted: reason codes with fixed numbers.
//!
//! The numbers are shared by Rust, C (`nl_result`) and Go. They start at 100 so they never collide
//! with the plain error codes of the C ABI (0..99): a rejected `begin_decommission` returns its
//! primary reason's number as its result code. A number is never reused; retired reasons keep
//! their slot.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u32)]
pub enum ReasonCode {
    /// Rule 1: a system node (local, proxy, control plane).
    SystemNode = 100,
    /// Rule 1: a dedicated node.
    DedicatedNode = 101,
    /// Rule 2: provisioning or initializing.
    StillStarting = 102,
    /// Rule 3: containers are running (allocated RAM is derived from them).
    HasContainers = 103,
    /// Rule 3: placements have reserved capacity.
    HasReservations = 104,
    /// Rule 3: named holds (world data, do-not-disrupt, migration in flight).
    HasHolds = 105,
    /// Rule 4: ready, inside the ready grace.
    ReadyTooYoung = 106,
    /// Rule 5: active/idle and empty, inside the idle grace.
    IdleTooRecent = 107,
    /// Rule 5: active/idle with no container history: an invalid state, never deleted.
    NoContainerHistory = 108,
    /// Rule 7: the node's container view has not been re-synchronised yet.
    ContainerSyncPending = 109,
    /// Rule 7: inside the post-sync grace.
    RecoveryGrace = 110,
    /// Rule 8: the node is already decommissioned.
    AlreadyDecommissioned = 111,
    /// A decommission ticket is already outstanding for this draining node.
    DecommissionInProgress = 112,
    /// The node id is not registered (audit entries only; `evaluate` returns an error instead).
    NodeNotFound = 113,
    /// Rule 6: unhealthy, inside the unhealthy grace, and the provider has not confirmed the VM
    /// is gone: an outage may be a blip of a live worker.
    UnhealthyTooRecent = 114,
}

impl ReasonCode {
    pub const ALL: [ReasonCode; 15] = [
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
        Self::NodeNotFound,
        Self::UnhealthyTooRecent,
    ];

    pub fn code(self) -> u32 {
        self as u32
    }

    pub fn from_u32(n: u32) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| *r as u32 == n)
    }

    /// The stable snake_case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SystemNode => "system_node",
            Self::DedicatedNode => "dedicated_node",
            Self::StillStarting => "still_starting",
            Self::HasContainers => "has_containers",
            Self::HasReservations => "has_reservations",
            Self::HasHolds => "has_holds",
            Self::ReadyTooYoung => "ready_too_young",
            Self::IdleTooRecent => "idle_too_recent",
            Self::NoContainerHistory => "no_container_history",
            Self::ContainerSyncPending => "container_sync_pending",
            Self::RecoveryGrace => "recovery_grace",
            Self::AlreadyDecommissioned => "already_decommissioned",
            Self::DecommissionInProgress => "decommission_in_progress",
            Self::NodeNotFound => "node_not_found",
            Self::UnhealthyTooRecent => "unhealthy_too_recent",
        }
    }

    /// Whether only time stands in the way (the verdict can then say when to retry).
    pub fn is_timer(self) -> bool {
        matches!(
            self,
            Self::ReadyTooYoung
                | Self::IdleTooRecent
                | Self::RecoveryGrace
                | Self::UnhealthyTooRecent
        )
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for r in ReasonCode::ALL {
            assert!(seen.insert(r.code()), "{r} reuses {}", r.code());
            assert!(r.code() >= 100);
            assert_eq!(ReasonCode::from_u32(r.code()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        assert_eq!(ReasonCode::from_u32(99), None);
    }
}
