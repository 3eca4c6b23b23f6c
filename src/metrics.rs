//! Lifecycle metrics of one node: timestamps, counters and time spent in each state.
//!
//! Callers never write these fields: container events, transitions and recovery maintain them,
//! which is what the hand-written code got wrong (`TotalContainersEver` was never incremented).
//! Every instant a rule measures from is a [`Moment`] (wall time to show, monotonic time to
//! measure); instants only shown are wall [`Timestamp`]s.

use crate::clock::{Moment, Timestamp};
use crate::state::LifecycleState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeMetrics {
    /// When the node was registered (for a recovered node, its creation time if known).
    pub provisioned_at: Moment,
    /// When cloud-init *completed*: the first entry into `ready` from `initializing` (or the
    /// registration of a node booted from a prepared image). Set once.
    pub initialized_at: Option<Moment>,
    /// The first container ever added.
    pub first_container_at: Option<Timestamp>,
    /// When the container count last dropped to zero.
    pub last_container_at: Option<Moment>,
    /// +1 for every distinct container added (an id present twice at once counts once).
    pub total_containers_ever: u64,
    /// When the node entered its current state.
    pub state_entered_at: Moment,
    /// Cumulative milliseconds in each state, for stays that have ended. The current stay is
    /// added by [`NodeMetrics::time_in_state_ms`].
    pub(crate) closed_time_in_state_ms: [u64; 8],
    /// When the node was recovered after a restart.
    pub recovered_at: Option<Timestamp>,
    /// Since when the node's container view waits to be re-synchronised (`None`: not waiting).
    pub container_sync_pending_since: Option<Moment>,
    /// When the last container re-synchronisation completed.
    pub container_sync_completed_at: Option<Moment>,
}

impl NodeMetrics {
    pub(crate) fn new(provisioned_at: Moment, now: Moment) -> Self {
        NodeMetrics {
            provisioned_at,
            initialized_at: None,
            first_container_at: None,
            last_container_at: None,
            total_containers_ever: 0,
            state_entered_at: now,
            closed_time_in_state_ms: [0; 8],
            recovered_at: None,
            container_sync_pending_since: None,
            container_sync_completed_at: None,
        }
    }

    /// Closes the stay in `from` at `now` and opens the next one.
    pub(crate) fn record_state_change(&mut self, from: LifecycleState, now: Moment) {
        let slot = &mut self.closed_time_in_state_ms[from as usize];
        *slot = slot.saturating_add(now.elapsed_since(self.state_entered_at));
        self.state_entered_at = now;
    }

    /// Cumulative time in `state`, including the current stay if `state` is `current`.
    pub fn time_in_state_ms(
        &self,
        state: LifecycleState,
        current: LifecycleState,
        now: Moment,
    ) -> u64 {
        let closed = self.closed_time_in_state_ms[state as usize];
        if state == current {
            closed.saturating_add(now.elapsed_since(self.state_entered_at))
        } else {
            closed
        }
    }

    /// Cumulative time in every state, keyed by the state's name (a stable JSON shape).
    pub fn time_in_states_ms(&self, current: LifecycleState, now: Moment) -> BTreeMap<String, u64> {
        LifecycleState::ALL
            .iter()
            .map(|s| {
                (
                    s.as_str().to_owned(),
                    self.time_in_state_ms(*s, current, now),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LifecycleState::*;

    fn at(ms: i64) -> Moment {
        Moment::at(Timestamp(ms))
    }

    #[test]
    fn time_in_state_accumulates_over_several_stays() {
        let mut m = NodeMetrics::new(at(0), at(0));
        m.record_state_change(Ready, at(100)); // ready 0..100
        m.record_state_change(Active, at(150)); // active 100..150
        m.record_state_change(Idle, at(400)); // idle 150..400, now active again
        assert_eq!(m.time_in_state_ms(Ready, Active, at(500)), 100);
        assert_eq!(m.time_in_state_ms(Idle, Active, at(500)), 250);
        assert_eq!(m.time_in_state_ms(Active, Active, at(500)), 50 + 100);
        assert_eq!(m.time_in_states_ms(Active, at(500))["active"], 150);
    }

    #[test]
    fn extreme_times_saturate() {
        let mut m = NodeMetrics::new(at(i64::MIN), at(i64::MIN));
        m.record_state_change(Ready, at(i64::MAX));
        m.record_state_change(Ready, at(i64::MIN));
        m.record_state_change(Ready, at(i64::MAX));
        assert_eq!(m.time_in_state_ms(Ready, Active, at(0)), u64::MAX - 1);
        m.record_state_change(Ready, at(i64::MIN));
        m.record_state_change(Ready, at(i64::MAX));
        assert_eq!(m.time_in_state_ms(Ready, Active, at(0)), u64::MAX);
    }
}
