//! Lifecycle metrics of one node: timestamps, counters and time spent in each state.
//!
//! Callers never write these fields: container events, transitions and recovery maintain them,
//! which is what the hand-written code got wrong (`TotalContainersEver` was never incremented).
//! Every instant a rule measures from is a [`Moment`] (wall time to show, monotonic time to
//! measure); instants only shown are wall [`Timestamp`]s.
//!
//! A fleet keeps a million of these, so optional instants take no extra word for their "none"
//! ([`OptMoment`], [`OptTimestamp`]). On disk the metrics keep the format they always had.

use crate::clock::{Moment, Timestamp};
use crate::state::LifecycleState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A sentinel no recorded time takes: optional times are stored with it for "none", and a real
/// time of exactly `i64::MIN` (the beginning of time, reachable only by an absurd clock) is
/// stored a millisecond later.
const NONE: i64 = i64::MIN;

fn not_sentinel(v: i64) -> i64 {
    v.max(NONE + 1)
}

/// An optional [`Moment`] in 16 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OptMoment(Moment);

impl OptMoment {
    pub const NONE: OptMoment = OptMoment(Moment {
        wall: Timestamp(0),
        mono: NONE,
    });

    pub fn new(m: Option<Moment>) -> OptMoment {
        match m {
            None => OptMoment::NONE,
            Some(m) => OptMoment(Moment {
                wall: m.wall,
                mono: not_sentinel(m.mono),
            }),
        }
    }

    pub fn get(self) -> Option<Moment> {
        (self.0.mono != NONE).then_some(self.0)
    }

    pub fn set(&mut self, m: Option<Moment>) {
        *self = OptMoment::new(m);
    }

    pub fn is_some(self) -> bool {
        self.0.mono != NONE
    }

    /// Takes the moment out, leaving none.
    pub fn take(&mut self) -> Option<Moment> {
        let m = self.get();
        *self = OptMoment::NONE;
        m
    }
}

impl std::fmt::Debug for OptMoment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// An optional [`Timestamp`] in 8 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OptTimestamp(i64);

impl OptTimestamp {
    pub const NONE: OptTimestamp = OptTimestamp(NONE);

    pub fn new(t: Option<Timestamp>) -> OptTimestamp {
        OptTimestamp(t.map_or(NONE, |t| not_sentinel(t.0)))
    }

    pub fn get(self) -> Option<Timestamp> {
        (self.0 != NONE).then_some(Timestamp(self.0))
    }

    pub fn set(&mut self, t: Option<Timestamp>) {
        *self = OptTimestamp::new(t);
    }
}

impl std::fmt::Debug for OptTimestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// Cumulative milliseconds per state in 48 bits each (8900 years, saturating): a million nodes
/// keep eight of these, and 64 bits would be 16 bytes per node spent on zeros.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct StateTimes([[u8; 6]; 8]);

impl StateTimes {
    /// The largest value kept.
    pub(crate) const MAX: u64 = (1 << 48) - 1;

    pub(crate) fn get(&self, state: usize) -> u64 {
        let b = self.0[state];
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], 0, 0])
    }

    pub(crate) fn set(&mut self, state: usize, ms: u64) {
        let b = ms.min(Self::MAX).to_le_bytes();
        self.0[state].copy_from_slice(&b[..6]);
    }

    fn to_array(self) -> [u64; 8] {
        std::array::from_fn(|i| self.get(i))
    }

    fn from_array(a: [u64; 8]) -> StateTimes {
        let mut t = StateTimes::default();
        for (i, ms) in a.into_iter().enumerate() {
            t.set(i, ms);
        }
        t
    }
}

impl std::fmt::Debug for StateTimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_array().fmt(f)
    }
}

/// A node's timestamps and counters. Read with the accessors; the fleet maintains them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeMetrics {
    pub(crate) provisioned_at: Moment,
    pub(crate) initialized_at: OptMoment,
    pub(crate) first_container_at: OptTimestamp,
    pub(crate) last_container_at: OptMoment,
    pub(crate) total_containers_ever: u64,
    pub(crate) state_entered_at: Moment,
    /// Cumulative milliseconds in each state, for stays that have ended. The current stay is
    /// added by [`NodeMetrics::time_in_state_ms`].
    pub(crate) closed_time_in_state_ms: StateTimes,
    pub(crate) recovered_at: OptTimestamp,
    pub(crate) container_sync_pending_since: OptMoment,
    pub(crate) container_sync_completed_at: OptMoment,
    pub(crate) health_reported_at: OptTimestamp,
}

impl NodeMetrics {
    pub(crate) fn new(provisioned_at: Moment, now: Moment) -> Self {
        NodeMetrics {
            provisioned_at,
            initialized_at: OptMoment::NONE,
            first_container_at: OptTimestamp::NONE,
            last_container_at: OptMoment::NONE,
            total_containers_ever: 0,
            state_entered_at: now,
            closed_time_in_state_ms: StateTimes::default(),
            recovered_at: OptTimestamp::NONE,
            container_sync_pending_since: OptMoment::NONE,
            container_sync_completed_at: OptMoment::NONE,
            health_reported_at: OptTimestamp::NONE,
        }
    }

    /// When the node was registered (for a recovered node, its creation time if known).
    pub fn provisioned_at(&self) -> Moment {
        self.provisioned_at
    }

    /// When cloud-init *completed*: the first entry into `ready` from `initializing` (or the
    /// registration of a node booted from a prepared image). Set once.
    pub fn initialized_at(&self) -> Option<Moment> {
        self.initialized_at.get()
    }

    /// The first container ever added.
    pub fn first_container_at(&self) -> Option<Timestamp> {
        self.first_container_at.get()
    }

    /// When the container count last dropped to zero.
    pub fn last_container_at(&self) -> Option<Moment> {
        self.last_container_at.get()
    }

    /// +1 for every distinct container added (an id present twice at once counts once).
    pub fn total_containers_ever(&self) -> u64 {
        self.total_containers_ever
    }

    /// When the node entered its current state.
    pub fn state_entered_at(&self) -> Moment {
        self.state_entered_at
    }

    /// When the node was recovered after a restart.
    pub fn recovered_at(&self) -> Option<Timestamp> {
        self.recovered_at.get()
    }

    /// Since when the node's container view waits to be re-synchronised (`None`: not waiting).
    pub fn container_sync_pending_since(&self) -> Option<Moment> {
        self.container_sync_pending_since.get()
    }

    /// When the last container re-synchronisation completed.
    pub fn container_sync_completed_at(&self) -> Option<Moment> {
        self.container_sync_completed_at.get()
    }

    /// When the last health result was reported.
    pub fn health_reported_at(&self) -> Option<Timestamp> {
        self.health_reported_at.get()
    }

    /// Closes the stay in `from` at `now` and opens the next one.
    pub(crate) fn record_state_change(&mut self, from: LifecycleState, now: Moment) {
        let t = &mut self.closed_time_in_state_ms;
        let closed = t.get(from as usize);
        t.set(
            from as usize,
            closed.saturating_add(now.elapsed_since(self.state_entered_at)),
        );
        self.state_entered_at = now;
    }

    /// Cumulative time in `state`, including the current stay if `state` is `current`.
    pub fn time_in_state_ms(
        &self,
        state: LifecycleState,
        current: LifecycleState,
        now: Moment,
    ) -> u64 {
        let closed = self.closed_time_in_state_ms.get(state as usize);
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

/// The metrics as the journal and snapshots have always written them (format 2 field names;
/// `health_reported_at` is new in format 3 and omitted when unset).
#[derive(Serialize, Deserialize)]
struct MetricsRecord {
    provisioned_at: Moment,
    initialized_at: Option<Moment>,
    first_container_at: Option<Timestamp>,
    last_container_at: Option<Moment>,
    total_containers_ever: u64,
    state_entered_at: Moment,
    closed_time_in_state_ms: [u64; 8],
    recovered_at: Option<Timestamp>,
    container_sync_pending_since: Option<Moment>,
    container_sync_completed_at: Option<Moment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    health_reported_at: Option<Timestamp>,
}

impl Serialize for NodeMetrics {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        MetricsRecord {
            provisioned_at: self.provisioned_at,
            initialized_at: self.initialized_at.get(),
            first_container_at: self.first_container_at.get(),
            last_container_at: self.last_container_at.get(),
            total_containers_ever: self.total_containers_ever,
            state_entered_at: self.state_entered_at,
            closed_time_in_state_ms: self.closed_time_in_state_ms.to_array(),
            recovered_at: self.recovered_at.get(),
            container_sync_pending_since: self.container_sync_pending_since.get(),
            container_sync_completed_at: self.container_sync_completed_at.get(),
            health_reported_at: self.health_reported_at.get(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for NodeMetrics {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = MetricsRecord::deserialize(d)?;
        Ok(NodeMetrics {
            provisioned_at: r.provisioned_at,
            initialized_at: OptMoment::new(r.initialized_at),
            first_container_at: OptTimestamp::new(r.first_container_at),
            last_container_at: OptMoment::new(r.last_container_at),
            total_containers_ever: r.total_containers_ever,
            state_entered_at: r.state_entered_at,
            closed_time_in_state_ms: StateTimes::from_array(r.closed_time_in_state_ms),
            recovered_at: OptTimestamp::new(r.recovered_at),
            container_sync_pending_since: OptMoment::new(r.container_sync_pending_since),
            container_sync_completed_at: OptMoment::new(r.container_sync_completed_at),
            health_reported_at: OptTimestamp::new(r.health_reported_at),
        })
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
        // Closed stays are kept in 48 bits: 8900 years, then they saturate.
        assert_eq!(m.time_in_state_ms(Ready, Active, at(0)), StateTimes::MAX);
        m.record_state_change(Ready, at(i64::MIN));
        m.record_state_change(Ready, at(i64::MAX));
        assert_eq!(m.time_in_state_ms(Ready, Active, at(0)), StateTimes::MAX);
        let mut t = StateTimes::default();
        t.set(3, 123_456_789_012);
        t.set(7, u64::MAX);
        assert_eq!(
            (t.get(3), t.get(7), t.get(0)),
            (123_456_789_012, StateTimes::MAX, 0)
        );
    }

    #[test]
    fn optional_times_are_compact_and_keep_every_value_but_one() {
        assert_eq!(std::mem::size_of::<OptMoment>(), 16);
        assert_eq!(std::mem::size_of::<OptTimestamp>(), 8);
        for v in [i64::MIN + 1, -1, 0, i64::MAX] {
            assert_eq!(OptMoment::new(Some(at(v))).get(), Some(at(v)));
            assert_eq!(
                OptTimestamp::new(Some(Timestamp(v))).get(),
                Some(Timestamp(v))
            );
        }
        // The one value a real time cannot keep: the very first millisecond of time.
        let first = Moment {
            wall: Timestamp(5),
            mono: i64::MIN,
        };
        assert_eq!(
            OptMoment::new(Some(first)).get(),
            Some(Moment {
                wall: Timestamp(5),
                mono: i64::MIN + 1
            })
        );
        assert_eq!(OptMoment::NONE.get(), None);
        assert_eq!(OptTimestamp::new(None).get(), None);
    }

    #[test]
    fn the_record_keeps_the_format_2_shape() {
        let mut m = NodeMetrics::new(at(1), at(2));
        m.initialized_at.set(Some(at(3)));
        let j = serde_json::to_value(&m).unwrap();
        assert_eq!(j["provisioned_at"], serde_json::json!([1, 1]));
        assert_eq!(j["initialized_at"], serde_json::json!([3, 3]));
        assert_eq!(j["last_container_at"], serde_json::Value::Null);
        assert!(
            j.get("health_reported_at").is_none(),
            "new, omitted when unset"
        );
        let back: NodeMetrics = serde_json::from_value(j).unwrap();
        assert_eq!(back, m);
    }
}
