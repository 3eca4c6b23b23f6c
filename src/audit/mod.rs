//! The bounded audit ring: every destructive decision and every lifecycle change, with a state
//! snapshot, kept in a fixed-size ring with monotonic sequence numbers.
//!
//! Appends are O(1) and the ring's memory stops growing once it is full. Nothing is lost
//! silently: evictions are counted, and a reader that fell behind sees the size of its gap.
//! Every query is answered from indexes (by node, by action, by result) in O(limit) after an
//! O(log n) seek, never by scanning the ring.
//!
//! An entry is a value of fixed size whose texts are shared ([`Text`]): recording one copies
//! no string and allocates nothing (the snapshot shares the node's holds, cordons and labels).
//! This module holds what an entry is; [`ring`] keeps and indexes them, in the chunks of
//! [`entries`].

mod entries;
mod ring;

pub use entries::Entries;
pub use ring::AuditRing;

use crate::clock::{Moment, Timestamp};
use crate::node::{Cordon, Hold, Labels, Marks, Node};
use crate::policy::Policy;
use crate::safety::effective_sync_completion;
use crate::state::{HealthStatus, LifecycleState, NodeOrigin};
use crate::text::Text;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u32)]
pub enum AuditAction {
    NodeDecommission = 0,
    NodeProvision = 1,
    ContainerMigrate = 2,
    ScaleUp = 3,
    ScaleDown = 4,
    LifecycleTransition = 5,
    Recovery = 6,
    NodeCordon = 7,
    NodeUncordon = 8,
    NodeRenamed = 9,
    NodeUpdate = 10,
    ReservationExpired = 11,
}

impl AuditAction {
    pub const ALL: [AuditAction; 12] = [
        Self::NodeDecommission,
        Self::NodeProvision,
        Self::ContainerMigrate,
        Self::ScaleUp,
        Self::ScaleDown,
        Self::LifecycleTransition,
        Self::Recovery,
        Self::NodeCordon,
        Self::NodeUncordon,
        Self::NodeRenamed,
        Self::NodeUpdate,
        Self::ReservationExpired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NodeDecommission => "node_decommission",
            Self::NodeProvision => "node_provision",
            Self::ContainerMigrate => "container_migrate",
            Self::ScaleUp => "scale_up",
            Self::ScaleDown => "scale_down",
            Self::LifecycleTransition => "lifecycle_transition",
            Self::Recovery => "recovery",
            Self::NodeCordon => "node_cordon",
            Self::NodeUncordon => "node_uncordon",
            Self::NodeRenamed => "node_renamed",
            Self::NodeUpdate => "node_update",
            Self::ReservationExpired => "reservation_expired",
        }
    }

    pub fn from_u32(n: u32) -> Option<Self> {
        Self::ALL.get(n as usize).copied()
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u32)]
pub enum AuditResult {
    Success = 0,
    Rejected = 1,
    Failed = 2,
}

impl AuditResult {
    pub const ALL: [AuditResult; 3] = [Self::Success, Self::Rejected, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
        }
    }

    pub fn from_u32(n: u32) -> Option<Self> {
        Self::ALL.get(n as usize).copied()
    }
}

impl fmt::Display for AuditResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A node's state at the moment of a decision. Keys are stable; durations are milliseconds,
/// money is EUR per hour. Holds, cordons and labels are the node's own lists, shared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateSnapshot {
    pub state: LifecycleState,
    pub health: HealthStatus,
    pub origin: NodeOrigin,
    pub current_containers: u64,
    pub pending_reservations: u64,
    pub holds: Marks<Hold>,
    pub cordons: Marks<Cordon>,
    pub allocated_ram_mb: u64,
    pub reserved_ram_mb: u64,
    pub total_ram_mb: u64,
    pub hourly_cost_eur: f64,
    pub instance_type: Text,
    pub labels: Labels,
    pub total_containers_ever: u64,
    pub age_ms: u64,
    pub time_in_state_ms: u64,
    /// Since cloud-init completed; `None` if it never did.
    pub since_initialized_ms: Option<u64>,
    /// Since the last container left; `None` if the node has containers or never had one.
    pub idle_for_ms: Option<u64>,
    pub container_sync_pending: bool,
    /// The evacuate cordon under which the node was emptied, while it is in place.
    pub evacuated_by: Option<Text>,
    pub consecutive_health_failures: u32,
}

impl StateSnapshot {
    pub fn of(node: &Node, policy: &Policy, now: Moment) -> StateSnapshot {
        let m = node.metrics();
        let idle_for_ms = if node.container_count() == 0 {
            m.last_container_at().map(|t| now.elapsed_since(t))
        } else {
            None
        };
        let pending = m.container_sync_pending_since().is_some()
            && effective_sync_completion(node, policy, now).is_none();
        StateSnapshot {
            state: node.state(),
            health: node.health(),
            origin: node.origin(),
            current_containers: node.container_count() as u64,
            pending_reservations: node.reservation_count() as u64,
            holds: node.hold_marks().clone(),
            cordons: node.cordon_marks().clone(),
            allocated_ram_mb: node.allocated_ram_mb(),
            reserved_ram_mb: node.reserved_ram_mb(),
            total_ram_mb: node.total_ram_mb(),
            hourly_cost_eur: node.hourly_cost_eur(),
            instance_type: node.instance_type.clone(),
            labels: node.labels().clone(),
            total_containers_ever: m.total_containers_ever(),
            age_ms: now.elapsed_since(m.provisioned_at()),
            time_in_state_ms: now.elapsed_since(m.state_entered_at()),
            since_initialized_ms: m.initialized_at().map(|t| now.elapsed_since(t)),
            idle_for_ms,
            container_sync_pending: pending,
            evacuated_by: node.evacuation_text().cloned(),
            consecutive_health_failures: node.consecutive_health_failures(),
        }
    }
}

/// One audit entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Monotonic, starts at 1, never reused.
    pub seq: u64,
    /// Wall clock.
    pub at_ms: Timestamp,
    pub action: AuditAction,
    pub node_id: Text,
    pub container_id: Option<Text>,
    /// The [`crate::ReasonCode`] number for rejections and failures it explains; 0 otherwise.
    pub reason_code: u32,
    /// Why: a machine-friendly reason for transitions ("cloud_init_completed"), the verdict's
    /// message for rejections.
    pub reason: Text,
    pub decision_by: Text,
    pub result: AuditResult,
    pub error: Option<Text>,
    /// For lifecycle transitions: the state left and the state entered. A registration has
    /// only `to_state`.
    pub from_state: Option<LifecycleState>,
    pub to_state: Option<LifecycleState>,
    /// The other node an entry links: the old id of a renamed node, the target of a migration.
    pub related_node_id: Option<Text>,
    /// RAM the entry is about (an expired reservation, a migrated container).
    pub ram_mb: Option<u64>,
    /// Age the entry is about (an expired reservation).
    pub age_ms: Option<u64>,
    pub snapshot: Option<StateSnapshot>,
}

impl AuditEntry {
    /// The entry a record becomes at sequence number `seq`, recorded at `at`.
    pub fn from_record(r: AuditRecord, at: Timestamp, seq: u64) -> AuditEntry {
        AuditEntry::build(r, None, at, seq)
    }

    /// [`AuditEntry::from_record`] with the snapshot given apart (the record's is used if
    /// none is): one literal, so that the entry can be built where it is stored.
    #[inline]
    pub(crate) fn build(
        r: AuditRecord,
        snapshot: Option<StateSnapshot>,
        at: Timestamp,
        seq: u64,
    ) -> AuditEntry {
        AuditEntry {
            seq,
            at_ms: at,
            action: r.action,
            node_id: r.node_id,
            container_id: r.container_id,
            reason_code: r.reason_code,
            reason: r.reason,
            decision_by: r.decision_by,
            result: r.result,
            error: r.error,
            from_state: r.from_state,
            to_state: r.to_state,
            related_node_id: r.related_node_id,
            ram_mb: r.ram_mb,
            age_ms: r.age_ms,
            snapshot: match snapshot {
                Some(s) => Some(s),
                None => r.snapshot,
            },
        }
    }
}

/// An entry before the ring gives it a sequence number and time.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRecord {
    pub action: AuditAction,
    pub node_id: Text,
    pub container_id: Option<Text>,
    pub reason_code: u32,
    pub reason: Text,
    pub decision_by: Text,
    pub result: AuditResult,
    pub error: Option<Text>,
    pub from_state: Option<LifecycleState>,
    pub to_state: Option<LifecycleState>,
    pub related_node_id: Option<Text>,
    pub ram_mb: Option<u64>,
    pub age_ms: Option<u64>,
    pub snapshot: Option<StateSnapshot>,
}

impl AuditRecord {
    /// A record about `node_id` ("-" for the fleet itself). Texts given as `&'static str` or
    /// as a shared [`Text`] are not copied.
    pub fn new(action: AuditAction, node_id: impl Into<Text>, result: AuditResult) -> Self {
        AuditRecord {
            action,
            node_id: node_id.into(),
            container_id: None,
            reason_code: 0,
            reason: Text::EMPTY,
            decision_by: Text::EMPTY,
            result,
            error: None,
            from_state: None,
            to_state: None,
            related_node_id: None,
            ram_mb: None,
            age_ms: None,
            snapshot: None,
        }
    }

    pub fn states(mut self, from: LifecycleState, to: LifecycleState) -> Self {
        self.from_state = Some(from);
        self.to_state = Some(to);
        self
    }

    pub fn to_state(mut self, to: LifecycleState) -> Self {
        self.to_state = Some(to);
        self
    }

    pub fn reason(mut self, code: u32, reason: impl Into<Text>) -> Self {
        self.reason_code = code;
        self.reason = reason.into();
        self
    }

    pub fn decision_by(mut self, by: impl Into<Text>) -> Self {
        self.decision_by = by.into();
        self
    }

    pub fn container(mut self, id: impl Into<Text>) -> Self {
        self.container_id = Some(id.into());
        self
    }

    pub fn error(mut self, e: impl Into<Text>) -> Self {
        self.error = Some(e.into());
        self
    }

    pub fn related(mut self, node: impl Into<Text>) -> Self {
        self.related_node_id = Some(node.into());
        self
    }

    pub fn ram(mut self, ram_mb: u64) -> Self {
        self.ram_mb = Some(ram_mb);
        self
    }

    pub fn age(mut self, age_ms: u64) -> Self {
        self.age_ms = Some(age_ms);
        self
    }

    #[inline]
    pub fn snapshot(mut self, s: StateSnapshot) -> Self {
        self.snapshot = Some(s);
        self
    }
}

/// The audit ring as persisted. Entries are shared with the ring.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditState {
    pub entries: Entries,
    pub next_seq: u64,
    pub evicted: u64,
    pub by_action: Vec<(AuditAction, u64)>,
    pub by_result: Vec<(AuditResult, u64)>,
    /// Renamed nodes: (old id, new id, last sequence number under the old id).
    pub aliases: Vec<(Text, Text, u64)>,
}

/// What `since` returns: the entries after a cursor, and how many the reader missed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Entries after the cursor that were evicted before this read: the reader's gap.
    pub missed: u64,
    /// Pass this as the next cursor (the last sequence number seen).
    pub next_cursor: u64,
}

/// Which entries a query selects: at most one dimension, so that every query is answered
/// from one index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by", content = "value")]
pub enum AuditFilter {
    #[default]
    All,
    Node(String),
    Action(AuditAction),
    Result(AuditResult),
}

/// A page of the newest entries, walking backwards.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditQuery {
    pub filter: AuditFilter,
    /// Only entries with a smaller sequence number (the previous page's `next_before_seq`).
    pub before_seq: Option<u64>,
    /// Only entries with a larger sequence number.
    pub after_seq: Option<u64>,
    /// Only entries recorded at or after this wall time.
    pub from_ms: Option<Timestamp>,
    /// Only entries recorded before this wall time.
    pub to_ms: Option<Timestamp>,
    /// At most this many entries (0 returns none).
    pub limit: usize,
}

/// The answer to an [`AuditQuery`]: newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditNewestPage {
    pub entries: Vec<AuditEntry>,
    /// Set when there may be more: pass it as `before_seq` for the next page.
    pub next_before_seq: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditStats {
    pub capacity: u64,
    pub total_recorded: u64,
    pub retained: u64,
    pub evicted: u64,
    /// The sequence number the next entry will get.
    pub next_seq: u64,
    /// Counted over everything recorded, evicted or not.
    pub by_action: BTreeMap<AuditAction, u64>,
    pub by_result: BTreeMap<AuditResult, u64>,
    pub last_entry: Option<AuditEntry>,
}

#[cfg(test)]
mod tests;
