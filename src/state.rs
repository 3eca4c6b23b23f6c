//! The lifecycle state machine: the eight states, health, node origins and the transition table.
//!
//! Everything here is a pure function of its arguments. The numbers given to each enum variant
//! are part of the C ABI and never change or get reused.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a node is in its life, from VM creation to deletion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u32)]
pub enum LifecycleState {
    /// The VM is being created at the cloud provider.
    Provisioning = 0,
    /// cloud-init is running.
    Initializing = 1,
    /// Healthy and has never hosted a container.
    Ready = 2,
    /// Hosts containers.
    Active = 3,
    /// Was productive before, hosts no container now.
    Idle = 4,
    /// Accepts no new containers; waiting to be deleted.
    Draining = 5,
    /// Deleted at the provider. Terminal.
    Decommissioned = 6,
    /// Broken; can be cleaned up or recover to ready.
    Unhealthy = 7,
}

impl LifecycleState {
    /// All states, in numeric order (the index is the state's number).
    pub const ALL: [LifecycleState; 8] = [
        Self::Provisioning,
        Self::Initializing,
        Self::Ready,
        Self::Active,
        Self::Idle,
        Self::Draining,
        Self::Decommissioned,
        Self::Unhealthy,
    ];

    /// The stable lower-case name used in JSON, logs and the Go binding.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Initializing => "initializing",
            Self::Ready => "ready",
            Self::Active => "active",
            Self::Idle => "idle",
            Self::Draining => "draining",
            Self::Decommissioned => "decommissioned",
            Self::Unhealthy => "unhealthy",
        }
    }

    /// Converts the ABI number back; `None` for a number no state has.
    pub fn from_u32(n: u32) -> Option<Self> {
        Self::ALL.get(n as usize).copied()
    }

    /// Whether placement may put a new container or reservation here.
    pub fn is_schedulable(self) -> bool {
        matches!(self, Self::Ready | Self::Active | Self::Idle)
    }

    /// Whether the node is still coming up (capacity that will exist soon).
    pub fn is_starting(self) -> bool {
        matches!(self, Self::Provisioning | Self::Initializing)
    }

    /// The states that failing health checks move to `unhealthy`. A node that is still starting
    /// is reclaimed by the provisioning timeout instead, and a draining node is expected to go away.
    pub fn is_productive(self) -> bool {
        matches!(self, Self::Ready | Self::Active | Self::Idle)
    }

    pub fn is_terminal(self) -> bool {
        self == Self::Decommissioned
    }
}

impl fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the table allows `from -> to`. A transition to the current state is not in the table;
/// callers treat it as an idempotent no-op before asking.
pub fn is_allowed_transition(from: LifecycleState, to: LifecycleState) -> bool {
    use LifecycleState::*;
    matches!(
        (from, to),
        (Provisioning, Initializing | Unhealthy | Decommissioned)
            | (Initializing, Ready | Unhealthy | Decommissioned)
            | (Ready, Active | Idle | Draining | Unhealthy | Decommissioned)
            | (Active, Idle | Unhealthy | Draining)
            | (Idle, Active | Draining | Unhealthy | Decommissioned)
            | (Draining, Decommissioned | Unhealthy)
            | (Unhealthy, Decommissioned | Ready)
    )
}

/// Health as the health checker sees it; separate from the lifecycle state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u32)]
pub enum HealthStatus {
    Unknown = 0,
    Healthy = 1,
    Unhealthy = 2,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the node came to be known; decides its initial state and whether it may ever be deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u32)]
pub enum NodeOrigin {
    /// Provisioned by the conductor at a cloud provider; starts in `provisioning`.
    Cloud = 0,
    /// A node the control plane itself runs on (local, proxy, control plane). Never deleted.
    System = 1,
    /// A dedicated machine; never deleted by policy.
    Dedicated = 2,
    /// A cloud node found again after a restart; starts in `ready` with recovery tracking.
    Recovered = 3,
}

impl NodeOrigin {
    pub const ALL: [NodeOrigin; 4] = [Self::Cloud, Self::System, Self::Dedicated, Self::Recovered];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cloud => "cloud",
            Self::System => "system",
            Self::Dedicated => "dedicated",
            Self::Recovered => "recovered",
        }
    }

    pub fn from_u32(n: u32) -> Option<Self> {
        Self::ALL.get(n as usize).copied()
    }
}

impl fmt::Display for NodeOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::LifecycleState::*;
    use super::*;

    /// The user's table, written out as the full 8x8 matrix so that every cell is checked,
    /// including every cell that must be refused.
    #[test]
    fn every_cell_of_the_transition_table() {
        let allowed: &[(LifecycleState, &[LifecycleState])] = &[
            (Provisioning, &[Initializing, Unhealthy, Decommissioned]),
            (Initializing, &[Ready, Unhealthy, Decommissioned]),
            (Ready, &[Active, Idle, Draining, Unhealthy, Decommissioned]),
            (Active, &[Idle, Unhealthy, Draining]),
            (Idle, &[Active, Draining, Unhealthy, Decommissioned]),
            (Draining, &[Decommissioned, Unhealthy]),
            (Unhealthy, &[Decommissioned, Ready]),
            (Decommissioned, &[]),
        ];
        let mut checked = 0;
        for (from, tos) in allowed {
            for to in LifecycleState::ALL {
                assert_eq!(
                    is_allowed_transition(*from, to),
                    tos.contains(&to),
                    "{from} -> {to}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 64);
    }

    #[test]
    fn numbers_round_trip_and_unknown_numbers_are_none() {
        for (i, s) in LifecycleState::ALL.iter().enumerate() {
            assert_eq!(*s as u32, i as u32);
            assert_eq!(LifecycleState::from_u32(i as u32), Some(*s));
        }
        assert_eq!(LifecycleState::from_u32(8), None);
        assert_eq!(NodeOrigin::from_u32(4), None);
        assert_eq!(
            serde_json::to_string(&LifecycleState::Decommissioned).unwrap(),
            "\"decommissioned\""
        );
    }
}
