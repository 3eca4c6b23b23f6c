//! The bounded audit ring: every destructive decision and every lifecycle change, with a state
//! snapshot, kept in a fixed-size ring with monotonic sequence numbers.
//!
//! Appends are O(1) and the ring's memory stops growing once it is full. Nothing is lost
//! silently: evictions are counted, and a reader that fell behind sees the size of its gap.

use crate::clock::Timestamp;
use crate::node::Node;
use crate::policy::Policy;
use crate::safety::effective_sync_completion;
use crate::state::{HealthStatus, LifecycleState, NodeOrigin};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
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
}

impl AuditAction {
    pub const ALL: [AuditAction; 7] = [
        Self::NodeDecommission,
        Self::NodeProvision,
        Self::ContainerMigrate,
        Self::ScaleUp,
        Self::ScaleDown,
        Self::LifecycleTransition,
        Self::Recovery,
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

/// A node's state at the moment of a decision. Keys are stable; durations are milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSnapshot {
    pub state: LifecycleState,
    pub health: HealthStatus,
    pub origin: NodeOrigin,
    pub current_containers: u64,
    pub pending_reservations: u64,
    pub holds: u64,
    pub allocated_ram_mb: u64,
    pub reserved_ram_mb: u64,
    pub total_ram_mb: u64,
    pub total_containers_ever: u64,
    pub age_ms: u64,
    pub time_in_state_ms: u64,
    /// Since cloud-init completed; `None` if it never did.
    pub since_initialized_ms: Option<u64>,
    /// Since the last container left; `None` if the node has containers or never had one.
    pub idle_for_ms: Option<u64>,
    pub container_sync_pending: bool,
    pub consecutive_health_failures: u32,
}

impl StateSnapshot {
    pub fn of(node: &Node, policy: &Policy, now: Timestamp) -> StateSnapshot {
        let m = node.metrics();
        let idle_for_ms = if node.container_count() == 0 {
            m.last_container_at_ms.map(|t| now.millis_since(t))
        } else {
            None
        };
        let pending = m.container_sync_pending_since_ms.is_some()
            && effective_sync_completion(node, policy, now).is_none();
        StateSnapshot {
            state: node.state(),
            health: node.health(),
            origin: node.origin(),
            current_containers: node.container_count() as u64,
            pending_reservations: node.reservation_count() as u64,
            holds: node.hold_count() as u64,
            allocated_ram_mb: node.allocated_ram_mb(),
            reserved_ram_mb: node.reserved_ram_mb(),
            total_ram_mb: node.total_ram_mb(),
            total_containers_ever: m.total_containers_ever,
            age_ms: now.millis_since(m.provisioned_at_ms),
            time_in_state_ms: now.millis_since(m.state_entered_at_ms),
            since_initialized_ms: m.initialized_at_ms.map(|t| now.millis_since(t)),
            idle_for_ms,
            container_sync_pending: pending,
            consecutive_health_failures: node.consecutive_health_failures,
        }
    }
}

/// One audit entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Monotonic, starts at 1, never reused.
    pub seq: u64,
    pub at_ms: Timestamp,
    pub action: AuditAction,
    pub node_id: String,
    pub container_id: Option<String>,
    /// The [`crate::ReasonCode`] number for rejections and failures it explains; 0 otherwise.
    pub reason_code: u32,
    /// Why: a machine-friendly reason for transitions ("cloud_init_completed"), the verdict's
    /// message for rejections.
    pub reason: String,
    pub decision_by: String,
    pub result: AuditResult,
    pub error: Option<String>,
    /// For lifecycle transitions: the state left and the state entered.
    pub from_state: Option<LifecycleState>,
    pub to_state: Option<LifecycleState>,
    pub snapshot: Option<StateSnapshot>,
}

/// An entry before the ring gives it a sequence number and time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub action: AuditAction,
    pub node_id: String,
    pub container_id: Option<String>,
    pub reason_code: u32,
    pub reason: String,
    pub decision_by: String,
    pub result: AuditResult,
    pub error: Option<String>,
    pub from_state: Option<LifecycleState>,
    pub to_state: Option<LifecycleState>,
    pub snapshot: Option<StateSnapshot>,
}

impl AuditRecord {
    pub fn new(action: AuditAction, node_id: &str, result: AuditResult) -> Self {
        AuditRecord {
            action,
            node_id: node_id.to_owned(),
            container_id: None,
            reason_code: 0,
            reason: String::new(),
            decision_by: String::new(),
            result,
            error: None,
            from_state: None,
            to_state: None,
            snapshot: None,
        }
    }

    pub fn states(mut self, from: LifecycleState, to: LifecycleState) -> Self {
        self.from_state = Some(from);
        self.to_state = Some(to);
        self
    }

    pub fn reason(mut self, code: u32, reason: impl Into<String>) -> Self {
        self.reason_code = code;
        self.reason = reason.into();
        self
    }

    pub fn decision_by(mut self, by: impl Into<String>) -> Self {
        self.decision_by = by.into();
        self
    }

    pub fn container(mut self, id: impl Into<String>) -> Self {
        self.container_id = Some(id.into());
        self
    }

    pub fn error(mut self, e: impl Into<String>) -> Self {
        self.error = Some(e.into());
        self
    }

    pub fn snapshot(mut self, s: StateSnapshot) -> Self {
        self.snapshot = Some(s);
        self
    }
}

/// What `since` returns: the entries after a cursor, and how many the reader missed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Entries after the cursor that were evicted before this read: the reader's gap.
    pub missed: u64,
    /// Pass this as the next cursor (the last sequence number seen).
    pub next_cursor: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// The ring itself. Not synchronised: the fleet holds it under its lock.
#[derive(Debug)]
pub struct AuditRing {
    entries: VecDeque<AuditEntry>,
    /// node id -> sequence numbers of its retained entries, oldest first. Kept in step with
    /// `entries` (an evicted entry is always the oldest of its node), so per-node queries cost
    /// O(matches) instead of a scan of the ring; a node with no retained entry has no key, so
    /// the index is bounded by the ring.
    by_node_index: HashMap<String, VecDeque<u64>>,
    capacity: usize,
    next_seq: u64,
    evicted: u64,
    by_action: [u64; 7],
    by_result: [u64; 3],
}

impl AuditRing {
    /// `capacity` must be at least 1 (the fleet validates it before).
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "audit capacity must be at least 1");
        AuditRing {
            // Reserve up front so that appends never reallocate.
            entries: VecDeque::with_capacity(capacity),
            by_node_index: HashMap::new(),
            capacity,
            next_seq: 1,
            evicted: 0,
            by_action: [0; 7],
            by_result: [0; 3],
        }
    }

    /// Appends, evicting the oldest entry when full. Returns the new entry's sequence number.
    pub fn append(&mut self, record: AuditRecord, at: Timestamp) -> u64 {
        let entry = self.entry(record, at, self.next_seq);
        self.push(entry)
    }

    /// The sequence number the next entry gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Builds the entry a record becomes at sequence number `seq`, without adding it: the fleet
    /// writes entries to its journal before they enter the ring.
    pub fn entry(&self, record: AuditRecord, at: Timestamp, seq: u64) -> AuditEntry {
        AuditEntry {
            seq,
            at_ms: at,
            action: record.action,
            node_id: record.node_id,
            container_id: record.container_id,
            reason_code: record.reason_code,
            reason: record.reason,
            decision_by: record.decision_by,
            result: record.result,
            error: record.error,
            from_state: record.from_state,
            to_state: record.to_state,
            snapshot: record.snapshot,
        }
    }

    /// Adds an entry built by [`AuditRing::entry`] with the next sequence number.
    pub fn push(&mut self, entry: AuditEntry) -> u64 {
        debug_assert_eq!(entry.seq, self.next_seq, "entries are pushed in sequence");
        if self.entries.len() == self.capacity {
            if let Some(old) = self.entries.pop_front() {
                self.unindex(&old);
            }
            self.evicted += 1;
        }
        let seq = entry.seq;
        self.next_seq = seq + 1;
        self.by_action[entry.action as usize] += 1;
        self.by_result[entry.result as usize] += 1;
        match self.by_node_index.get_mut(entry.node_id.as_str()) {
            Some(seqs) => seqs.push_back(seq),
            None => {
                self.by_node_index
                    .insert(entry.node_id.clone(), VecDeque::from([seq]));
            }
        }
        self.entries.push_back(entry);
        seq
    }

    fn unindex(&mut self, old: &AuditEntry) {
        if let Some(seqs) = self.by_node_index.get_mut(old.node_id.as_str()) {
            debug_assert_eq!(seqs.front(), Some(&old.seq));
            seqs.pop_front();
            if seqs.is_empty() {
                self.by_node_index.remove(old.node_id.as_str());
            }
        }
    }

    /// Entries ever recorded per action (evicted or not), in action order.
    fn action_counts(&self) -> impl Iterator<Item = (AuditAction, u64)> + '_ {
        AuditAction::ALL
            .iter()
            .map(|a| (*a, self.by_action[*a as usize]))
    }

    /// Entries ever recorded per result (evicted or not), in result order.
    fn result_counts(&self) -> impl Iterator<Item = (AuditResult, u64)> + '_ {
        AuditResult::ALL
            .iter()
            .map(|r| (*r, self.by_result[*r as usize]))
    }

    /// The ring as persisted.
    pub fn state(&self) -> crate::storage::AuditState {
        crate::storage::AuditState {
            entries: self.entries.iter().cloned().collect(),
            next_seq: self.next_seq,
            evicted: self.evicted,
            by_action: self.action_counts().collect(),
            by_result: self.result_counts().collect(),
        }
    }

    /// A ring of `capacity` holding a persisted state; if the state holds more entries than fit,
    /// the oldest are evicted (and counted).
    pub fn restore(capacity: usize, state: crate::storage::AuditState) -> AuditRing {
        let mut ring = AuditRing::new(capacity);
        let keep = state.entries.len().min(capacity);
        let dropped = (state.entries.len() - keep) as u64;
        for e in state.entries.into_iter().skip(dropped as usize) {
            ring.by_node_index
                .entry(e.node_id.clone())
                .or_default()
                .push_back(e.seq);
            ring.entries.push_back(e);
        }
        ring.next_seq = state
            .next_seq
            .max(ring.entries.back().map_or(1, |e| e.seq + 1));
        ring.evicted = state.evicted + dropped;
        for (a, n) in state.by_action {
            ring.by_action[a as usize] = n;
        }
        for (r, n) in state.by_result {
            ring.by_result[r as usize] = n;
        }
        ring
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &AuditEntry> {
        self.entries.iter()
    }

    /// The newest `n` entries, oldest first.
    pub fn recent(&self, n: usize) -> Vec<AuditEntry> {
        let skip = self.entries.len().saturating_sub(n);
        self.entries.iter().skip(skip).cloned().collect()
    }

    /// The newest `limit` entries matching `keep`, oldest first.
    pub fn newest_matching(
        &self,
        limit: usize,
        keep: impl Fn(&AuditEntry) -> bool,
    ) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = self
            .entries
            .iter()
            .rev()
            .filter(|e| keep(e))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    pub fn by_node(&self, node_id: &str, limit: usize) -> Vec<AuditEntry> {
        let Some(seqs) = self.by_node_index.get(node_id) else {
            return Vec::new();
        };
        // Retained sequence numbers are contiguous, so a sequence number is an index.
        let oldest = self.entries.front().map_or(0, |e| e.seq);
        let skip = seqs.len().saturating_sub(limit);
        seqs.iter()
            .skip(skip)
            .map(|seq| self.entries[(seq - oldest) as usize].clone())
            .collect()
    }

    pub fn by_action(&self, action: AuditAction, limit: usize) -> Vec<AuditEntry> {
        self.newest_matching(limit, |e| e.action == action)
    }

    pub fn by_result(&self, result: AuditResult, limit: usize) -> Vec<AuditEntry> {
        self.newest_matching(limit, |e| e.result == result)
    }

    /// Up to `limit` entries with `seq > cursor`, oldest first, and the gap if the ring evicted
    /// entries the reader never saw.
    pub fn since(&self, cursor: u64, limit: usize) -> AuditPage {
        let oldest = self.entries.front().map_or(self.next_seq, |e| e.seq);
        let missed = oldest.saturating_sub(cursor.saturating_add(1));
        // Sequence numbers in the ring are contiguous, so the start is an index computation.
        let start = cursor.saturating_add(1).max(oldest) - oldest;
        let entries: Vec<AuditEntry> = self
            .entries
            .iter()
            .skip(usize::try_from(start).unwrap_or(usize::MAX))
            .take(limit)
            .cloned()
            .collect();
        let next_cursor = entries
            .last()
            .map_or(cursor.max(oldest.saturating_sub(1)), |e| e.seq);
        AuditPage {
            entries,
            missed,
            next_cursor,
        }
    }

    pub fn stats(&self) -> AuditStats {
        AuditStats {
            capacity: self.capacity as u64,
            total_recorded: self.next_seq - 1,
            retained: self.entries.len() as u64,
            evicted: self.evicted,
            next_seq: self.next_seq,
            by_action: self.action_counts().collect(),
            by_result: self.result_counts().collect(),
            last_entry: self.entries.back().cloned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(node: &str, action: AuditAction, result: AuditResult) -> AuditRecord {
        AuditRecord::new(action, node, result)
    }

    fn ring_with(n: u64, cap: usize) -> AuditRing {
        let mut r = AuditRing::new(cap);
        for i in 0..n {
            let node = format!("n{}", i % 3);
            let action = if i % 2 == 0 {
                AuditAction::NodeDecommission
            } else {
                AuditAction::LifecycleTransition
            };
            r.append(
                rec(&node, action, AuditResult::Success),
                Timestamp(i as i64),
            );
        }
        r
    }

    #[test]
    fn bounded_with_monotonic_sequence_and_counted_evictions() {
        let r = ring_with(10, 4);
        assert_eq!(r.len(), 4);
        let seqs: Vec<u64> = r.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![7, 8, 9, 10]);
        let s = r.stats();
        assert_eq!((s.total_recorded, s.retained, s.evicted), (10, 4, 6));
        assert_eq!(s.retained + s.evicted, s.total_recorded);
        assert_eq!(s.by_action[&AuditAction::NodeDecommission], 5);
        assert_eq!(s.last_entry.unwrap().seq, 10);
    }

    #[test]
    fn queries_return_newest_in_chronological_order() {
        let r = ring_with(10, 100);
        let seqs = |v: Vec<AuditEntry>| v.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(r.recent(3)), vec![8, 9, 10]);
        assert_eq!(seqs(r.by_node("n0", 2)), vec![7, 10]);
        assert_eq!(
            seqs(r.by_action(AuditAction::LifecycleTransition, 100)),
            vec![2, 4, 6, 8, 10]
        );
        assert!(r.by_result(AuditResult::Failed, 100).is_empty());
        assert!(r.by_node("nobody", 10).is_empty());
        assert!(AuditRing::new(3).recent(5).is_empty());
    }

    #[test]
    fn the_node_index_follows_evictions_and_stays_bounded() {
        let mut r = AuditRing::new(5);
        for i in 0..23u64 {
            let node = format!("n{}", i % 4);
            r.append(
                rec(&node, AuditAction::ScaleUp, AuditResult::Success),
                Timestamp(i as i64),
            );
            // The index answers exactly what a scan of the ring answers.
            for n in 0..5 {
                let id = format!("n{n}");
                let scan = r.newest_matching(usize::MAX, |e| e.node_id == id);
                assert_eq!(r.by_node(&id, usize::MAX), scan, "after {i}: {id}");
                assert_eq!(
                    r.by_node(&id, 1),
                    scan.into_iter().rev().take(1).collect::<Vec<_>>()
                );
            }
            assert!(r.by_node_index.len() <= 5);
            assert_eq!(
                r.by_node_index.values().map(VecDeque::len).sum::<usize>(),
                r.len()
            );
        }
        let restored = AuditRing::restore(3, r.state());
        assert_eq!(
            restored.by_node("n2", 10),
            restored.newest_matching(10, |e| e.node_id == "n2")
        );
        assert_eq!(
            restored
                .by_node_index
                .values()
                .map(VecDeque::len)
                .sum::<usize>(),
            3
        );
    }

    #[test]
    fn since_is_a_cursor_that_reports_gaps() {
        let r = ring_with(10, 4); // holds 7..=10
        let p = r.since(0, 100);
        assert_eq!(p.missed, 6);
        assert_eq!(p.entries.first().unwrap().seq, 7);
        assert_eq!(p.next_cursor, 10);
        let p = r.since(8, 1);
        assert_eq!((p.missed, p.entries.len(), p.next_cursor), (0, 1, 9));
        let p = r.since(10, 100);
        assert!(p.entries.is_empty());
        assert_eq!((p.missed, p.next_cursor), (0, 10));
        // A cursor from the future (another fleet's) returns nothing and is kept.
        assert_eq!(r.since(50, 10).next_cursor, 50);
        let empty = AuditRing::new(2).since(0, 10);
        assert_eq!(
            (empty.entries.len(), empty.missed, empty.next_cursor),
            (0, 0, 0)
        );
    }

    #[test]
    fn memory_is_reserved_once() {
        let mut r = AuditRing::new(8);
        let cap_before = r.entries.capacity();
        for i in 0..1000 {
            r.append(
                rec("n", AuditAction::ScaleUp, AuditResult::Success),
                Timestamp(i),
            );
        }
        assert_eq!(r.entries.capacity(), cap_before);
    }

    #[test]
    fn entries_serialise_with_stable_names() {
        let mut r = AuditRing::new(2);
        r.append(
            rec("n1", AuditAction::NodeDecommission, AuditResult::Rejected)
                .reason(103, "node has 2 containers")
                .decision_by("manual"),
            Timestamp(42),
        );
        let j = serde_json::to_value(r.recent(1)).unwrap();
        assert_eq!(j[0]["action"], "node_decommission");
        assert_eq!(j[0]["result"], "rejected");
        assert_eq!(j[0]["reason_code"], 103);
        assert_eq!(j[0]["at_ms"], 42);
        let stats = serde_json::to_value(r.stats()).unwrap();
        assert_eq!(stats["by_result"]["rejected"], 1);
    }
}
