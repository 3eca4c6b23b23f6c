//! Lifecycle metrics of one node: timestamps, counters and time spent in each state.
//!
//! Callers never write these fields: container events, transitions and recovery maintain them,
//! which is what the hand-written code got wrong (`TotalContainersEver` was never incremented).

use crate::clock::Timestamp;
use crate::state::LifecycleState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeMetrics {
    /// When the node was registered (or, for a recovered node, its creation time if known).
    pub provisioned_at_ms: Timestamp,
    /// When cloud-init *completed*: the first entry into `ready` from `initializing`. Set once.
    pub initialized_at_ms: Option<Timestamp>,
    /// The first container ever added.
    pub first_container_at_ms: Option<Timestamp>,
    /// When the container count last dropped to zero.
    pub last_container_at_ms: Option<Timestamp>,
    /// +1 for every distinct container added (an id present twice at once counts once).
    pub total_containers_ever: u64,
    /// When the node entered its current state.
    pub state_entered_at_ms: Timestamp,
    /// Cumulative milliseconds in each state, for stays that have ended. The current stay is
    /// added by [`NodeMetrics::time_in_state_ms`].
    pub(crate) closed_time_in_state_ms: [u64; 8],
    /// When the node was recovered after a restart.
    pub recovered_at_ms: Option<Timestamp>,
    /// Since when the node's container view waits to be re-synchronised (`None`: not waiting).
    pub container_sync_pending_since_ms: Option<Timestamp>,
    /// When the last container re-synchronisation completed.
    pub container_sync_completed_at_ms: Option<Timestamp>,
}

impl NodeMetrics {
    pub(crate) fn new(provisioned_at: Timestamp, now: Timestamp) -> Self {
        NodeMetrics {
            provisioned_at_ms: provisioned_at,
            initialized_at_ms: None,
            first_container_at_ms: None,
            last_container_at_ms: None,
            total_containers_ever: 0,
            state_entered_at_ms: now,
            closed_time_in_state_ms: [0; 8],
            recovered_at_ms: None,
            container_sync_pending_since_ms: None,
            container_sync_completed_at_ms: None,
        }
    }

    /// Closes the stay in `from` at `now` and opens the next one.
    pub(crate) fn record_state_change(&mut self, from: LifecycleState, now: Timestamp) {
        self.closed_time_in_state_ms[from as usize] += now.millis_since(self.state_entered_at_ms);
        self.state_entered_at_ms = now;
    }

    /// Cumulative time in `state`, including the current stay if `state` is `current`.
    pub fn time_in_state_ms(
        &self,
        state: LifecycleState,
        current: LifecycleState,
        now: Timestamp,
    ) -> u64 {
        let closed = self.closed_time_in_state_ms[state as usize];
        if state == current {
            closed + now.millis_since(self.state_entered_at_ms)
        } else {
            closed
        }
    }

    /// Cumulative time in every state, keyed by the state's name (a stable JSON shape).
    pub fn time_in_states_ms(
        &self,
        current: LifecycleState,
        now: Timestamp,
    ) -> BTreeMap<&'static str, u64> {
        LifecycleState::ALL
            .iter()
            .map(|s| (s.as_str(), self.time_in_state_ms(*s, current, now)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LifecycleState::*;

    #[test]
    fn time_in_state_accumulates_over_several_stays() {
        let mut m = NodeMetrics::new(Timestamp(0), Timestamp(0));
        m.record_state_change(Ready, Timestamp(100)); // ready 0..100
        m.record_state_change(Active, Timestamp(150)); // active 100..150
        m.record_state_change(Idle, Timestamp(400)); // idle 150..400, now active again
        assert_eq!(m.time_in_state_ms(Ready, Active, Timestamp(500)), 100);
        assert_eq!(m.time_in_state_ms(Idle, Active, Timestamp(500)), 250);
        assert_eq!(m.time_in_state_ms(Active, Active, Timestamp(500)), 50 + 100);
        assert_eq!(m.time_in_states_ms(Active, Timestamp(500))["active"], 150);
    }
}
