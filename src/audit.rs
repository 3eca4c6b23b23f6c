//! The bounded audit ring: every destructive decision and every lifecycle change, with a state
//! snapshot, kept in a fixed-size ring with monotonic sequence numbers.
//!
//! Appends are O(1) and the ring's memory stops growing once it is full. Nothing is lost
//! silently: evictions are counted, and a reader that fell behind sees the size of its gap.
//! Every query is answered from indexes (by node, by action, by result) in O(limit) after an
//! O(log n) seek, never by scanning the ring.

use crate::clock::{Moment, Timestamp};
use crate::fxhash::FxHashMap;
use crate::node::{Labels, Node};
use crate::policy::Policy;
use crate::safety::effective_sync_completion;
use crate::state::{HealthStatus, LifecycleState, NodeOrigin};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;

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

/// A named hold in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotHold {
    pub name: String,
    pub detail: String,
}

/// A named cordon in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotCordon {
    pub name: String,
    pub reason: String,
    pub evacuate: bool,
}

/// A node's state at the moment of a decision. Keys are stable; durations are milliseconds,
/// money is EUR per hour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateSnapshot {
    pub state: LifecycleState,
    pub health: HealthStatus,
    pub origin: NodeOrigin,
    pub current_containers: u64,
    pub pending_reservations: u64,
    pub holds: Vec<SnapshotHold>,
    pub cordons: Vec<SnapshotCordon>,
    pub allocated_ram_mb: u64,
    pub reserved_ram_mb: u64,
    pub total_ram_mb: u64,
    pub hourly_cost_eur: f64,
    pub instance_type: String,
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
    pub evacuated_by: Option<String>,
    pub consecutive_health_failures: u32,
}

impl StateSnapshot {
    pub fn of(node: &Node, policy: &Policy, now: Moment) -> StateSnapshot {
        let m = node.metrics();
        let idle_for_ms = if node.container_count() == 0 {
            m.last_container_at.map(|t| now.elapsed_since(t))
        } else {
            None
        };
        let pending = m.container_sync_pending_since.is_some()
            && effective_sync_completion(node, policy, now).is_none();
        StateSnapshot {
            state: node.state(),
            health: node.health(),
            origin: node.origin(),
            current_containers: node.container_count() as u64,
            pending_reservations: node.reservation_count() as u64,
            holds: node
                .holds()
                .map(|(name, detail)| SnapshotHold {
                    name: name.to_owned(),
                    detail: detail.to_owned(),
                })
                .collect(),
            cordons: node
                .cordons()
                .map(|(name, c)| SnapshotCordon {
                    name: name.to_owned(),
                    reason: c.reason.clone(),
                    evacuate: c.evacuate,
                })
                .collect(),
            allocated_ram_mb: node.allocated_ram_mb(),
            reserved_ram_mb: node.reserved_ram_mb(),
            total_ram_mb: node.total_ram_mb(),
            hourly_cost_eur: node.hourly_cost_eur(),
            instance_type: node.instance_type().to_owned(),
            labels: node.labels().clone(),
            total_containers_ever: m.total_containers_ever,
            age_ms: now.elapsed_since(m.provisioned_at),
            time_in_state_ms: now.elapsed_since(m.state_entered_at),
            since_initialized_ms: m.initialized_at.map(|t| now.elapsed_since(t)),
            idle_for_ms,
            container_sync_pending: pending,
            evacuated_by: node.evacuation().map(str::to_owned),
            consecutive_health_failures: node.consecutive_health_failures,
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
    /// For lifecycle transitions: the state left and the state entered. A registration has
    /// only `to_state`.
    pub from_state: Option<LifecycleState>,
    pub to_state: Option<LifecycleState>,
    /// The other node an entry links: the old id of a renamed node, the target of a migration.
    pub related_node_id: Option<String>,
    /// RAM the entry is about (an expired reservation, a migrated container).
    pub ram_mb: Option<u64>,
    /// Age the entry is about (an expired reservation).
    pub age_ms: Option<u64>,
    pub snapshot: Option<StateSnapshot>,
}

/// An entry before the ring gives it a sequence number and time.
#[derive(Clone, Debug, PartialEq)]
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
    pub related_node_id: Option<String>,
    pub ram_mb: Option<u64>,
    pub age_ms: Option<u64>,
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

    pub fn related(mut self, node: impl Into<String>) -> Self {
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

    pub fn snapshot(mut self, s: StateSnapshot) -> Self {
        self.snapshot = Some(s);
        self
    }
}

/// The audit ring as persisted. Entries are shared with the ring.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditState {
    pub entries: VecDeque<Arc<AuditEntry>>,
    pub next_seq: u64,
    pub evicted: u64,
    pub by_action: Vec<(AuditAction, u64)>,
    pub by_result: Vec<(AuditResult, u64)>,
    /// Renamed nodes: (old id, new id, last sequence number under the old id).
    pub aliases: Vec<(String, String, u64)>,
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

/// Sequence numbers of the retained entries in one index, oldest first.
type SeqList = VecDeque<u64>;

/// The ring itself. Not synchronised: the fleet holds it under its lock.
#[derive(Debug)]
pub struct AuditRing {
    /// Shared, so that a snapshot can capture the ring without copying entries.
    entries: VecDeque<Arc<AuditEntry>>,
    /// node id -> sequence numbers of its retained entries. Kept in step with `entries` (an
    /// evicted entry is always the oldest of its node and of its action and result), so each
    /// index is bounded by the ring; a node with no retained entry has no key.
    by_node: FxHashMap<String, SeqList>,
    /// Renamed nodes: old id -> (new id, the last sequence number recorded under the old id).
    /// The old id's entries are indexed under the new id; the alias goes when they are evicted.
    aliases: FxHashMap<String, (String, u64)>,
    by_action: Vec<SeqList>,
    by_result: Vec<SeqList>,
    capacity: usize,
    next_seq: u64,
    evicted: u64,
    action_counts: [u64; AuditAction::ALL.len()],
    result_counts: [u64; AuditResult::ALL.len()],
}

impl AuditRing {
    /// `capacity` must be at least 1 (the fleet resolves it before).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        AuditRing {
            // Reserve up front so that appends never reallocate.
            entries: VecDeque::with_capacity(capacity),
            by_node: FxHashMap::default(),
            aliases: FxHashMap::default(),
            by_action: vec![SeqList::new(); AuditAction::ALL.len()],
            by_result: vec![SeqList::new(); AuditResult::ALL.len()],
            capacity,
            next_seq: 1,
            evicted: 0,
            action_counts: [0; AuditAction::ALL.len()],
            result_counts: [0; AuditResult::ALL.len()],
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
    pub fn entry(&self, r: AuditRecord, at: Timestamp, seq: u64) -> AuditEntry {
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
            snapshot: r.snapshot,
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
        self.next_seq = seq.saturating_add(1);
        self.action_counts[entry.action as usize] += 1;
        self.result_counts[entry.result as usize] += 1;
        self.index(&entry);
        self.entries.push_back(Arc::new(entry));
        seq
    }

    /// The by-node key an entry is indexed under: its node id, or the id the node was renamed
    /// to. Aliases are kept flat (a chain of renames points at the last name), so one hop does.
    fn key_for<'a>(&'a self, node_id: &'a str, seq: u64) -> &'a str {
        match self.aliases.get(node_id) {
            Some((target, last)) if seq <= *last => target,
            _ => node_id,
        }
    }

    fn index(&mut self, e: &AuditEntry) {
        // New entries are never aliased (only a restore indexes old ones), so this allocates
        // nothing on the append path.
        let aliased = match self.aliases.get(&e.node_id) {
            Some((target, last)) if e.seq <= *last => Some(target.clone()),
            _ => None,
        };
        let key = aliased.as_deref().unwrap_or(&e.node_id);
        match self.by_node.get_mut(key) {
            Some(seqs) => seqs.push_back(e.seq),
            None => {
                let key = key.to_owned();
                self.by_node.insert(key, VecDeque::from([e.seq]));
            }
        }
        self.by_action[e.action as usize].push_back(e.seq);
        self.by_result[e.result as usize].push_back(e.seq);
    }

    fn unindex(&mut self, old: &AuditEntry) {
        let key = self.key_for(&old.node_id, old.seq).to_owned();
        let drop_alias = self
            .aliases
            .get(old.node_id.as_str())
            .is_some_and(|(_, last)| old.seq >= *last);
        if let Some(seqs) = self.by_node.get_mut(key.as_str()) {
            // Usually the front; after a rename merged two lists, possibly further in.
            if seqs.front() == Some(&old.seq) {
                seqs.pop_front();
            } else if let Ok(i) = seqs.binary_search(&old.seq) {
                seqs.remove(i);
            }
            if seqs.is_empty() {
                self.by_node.remove(key.as_str());
            }
        }
        if drop_alias {
            self.aliases.remove(old.node_id.as_str());
        }
        self.by_action[old.action as usize].pop_front();
        self.by_result[old.result as usize].pop_front();
    }

    /// Makes the entries recorded under `old` answer queries for `new` too (a renamed node
    /// keeps its history). The entries themselves keep the id they were recorded under.
    pub fn alias(&mut self, old: &str, new: &str) {
        let Some(old_seqs) = self.by_node.remove(old) else {
            return;
        };
        // Earlier names of `old` now lead to `new`.
        for (target, _) in self.aliases.values_mut() {
            if target == old {
                *target = new.to_owned();
            }
        }
        let last = old_seqs.back().copied().unwrap_or(0);
        self.aliases.insert(old.to_owned(), (new.to_owned(), last));
        let merged = match self.by_node.remove(new) {
            None => old_seqs,
            Some(new_seqs) => {
                let mut all: Vec<u64> = old_seqs.into_iter().chain(new_seqs).collect();
                all.sort_unstable();
                all.into()
            }
        };
        self.by_node.insert(new.to_owned(), merged);
    }

    /// The ring as persisted: the retained entries are shared, not copied.
    pub fn state(&self) -> AuditState {
        AuditState {
            entries: self.entries.iter().cloned().collect(),
            next_seq: self.next_seq,
            evicted: self.evicted,
            by_action: self.action_counts().collect(),
            by_result: self.result_counts().collect(),
            aliases: self
                .aliases
                .iter()
                .map(|(old, (new, last))| (old.clone(), new.clone(), *last))
                .collect(),
        }
    }

    /// A ring of `capacity` holding a persisted state; if the state holds more entries than fit,
    /// the oldest are evicted (and counted).
    pub fn restore(capacity: usize, state: AuditState) -> AuditRing {
        let mut ring = AuditRing::new(capacity);
        ring.aliases = state
            .aliases
            .into_iter()
            .map(|(old, new, last)| (old, (new, last)))
            .collect();
        let keep = state.entries.len().min(ring.capacity);
        let dropped = (state.entries.len() - keep) as u64;
        for e in state.entries.into_iter().skip(dropped as usize) {
            ring.index(&e);
            ring.entries.push_back(e);
        }
        ring.next_seq = state
            .next_seq
            .max(ring.entries.back().map_or(1, |e| e.seq.saturating_add(1)));
        // Aliases whose old entries are all gone are not needed any more.
        let oldest = ring.entries.front().map_or(ring.next_seq, |e| e.seq);
        ring.aliases.retain(|_, (_, last)| *last >= oldest);
        ring.evicted = state.evicted + dropped;
        for (a, n) in state.by_action {
            ring.action_counts[a as usize] = n;
        }
        for (r, n) in state.by_result {
            ring.result_counts[r as usize] = n;
        }
        ring
    }

    /// Entries ever recorded per action (evicted or not), in action order.
    fn action_counts(&self) -> impl Iterator<Item = (AuditAction, u64)> + '_ {
        AuditAction::ALL
            .iter()
            .map(|a| (*a, self.action_counts[*a as usize]))
    }

    /// Entries ever recorded per result (evicted or not), in result order.
    fn result_counts(&self) -> impl Iterator<Item = (AuditResult, u64)> + '_ {
        AuditResult::ALL
            .iter()
            .map(|r| (*r, self.result_counts[*r as usize]))
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
        self.entries.iter().map(|e| &**e)
    }

    /// The retained entry with sequence number `seq`. Retained sequence numbers are
    /// contiguous, so this is an index computation.
    fn get(&self, seq: u64) -> Option<&Arc<AuditEntry>> {
        let oldest = self.entries.front()?.seq;
        let i = usize::try_from(seq.checked_sub(oldest)?).ok()?;
        self.entries.get(i)
    }

    /// The sequence numbers an index (or the whole ring) holds, oldest first, as a view that
    /// supports the binary search and the backward walk of [`AuditRing::page`].
    fn seqs(&self, filter: &AuditFilter) -> SeqView<'_> {
        match filter {
            AuditFilter::All => SeqView::Range {
                first: self.entries.front().map_or(self.next_seq, |e| e.seq),
                end: self.next_seq,
            },
            // A renamed node's old id answers with the node's whole history, as its new id does
            // (unless a node took the old id since).
            AuditFilter::Node(id) => self
                .by_node
                .get(id.as_str())
                .or_else(|| {
                    let (target, _) = self.aliases.get(id.as_str())?;
                    self.by_node.get(target.as_str())
                })
                .map_or(SeqView::Empty, SeqView::List),
            AuditFilter::Action(a) => SeqView::List(&self.by_action[*a as usize]),
            AuditFilter::Result(r) => SeqView::List(&self.by_result[*r as usize]),
        }
    }

    /// The sequence number of the first entry recorded at or after `t`, assuming entries are in
    /// time order (they are unless the wall clock was stepped back).
    fn first_seq_at_or_after(&self, t: Timestamp) -> u64 {
        let i = self.entries.partition_point(|e| e.at_ms < t);
        self.entries.get(i).map_or(self.next_seq, |e| e.seq)
    }

    /// A page of matching entries, newest first: O(log n) to seek, O(limit) to copy.
    pub fn page(&self, q: &AuditQuery) -> AuditNewestPage {
        let mut end = q.before_seq.unwrap_or(u64::MAX).min(self.next_seq);
        let mut start = q.after_seq.map_or(0, |s| s.saturating_add(1));
        if let Some(from) = q.from_ms {
            start = start.max(self.first_seq_at_or_after(from));
        }
        if let Some(to) = q.to_ms {
            end = end.min(self.first_seq_at_or_after(to));
        }
        let view = self.seqs(&q.filter);
        let mut entries = Vec::with_capacity(q.limit.min(view.len()));
        let mut next_before_seq = None;
        for seq in view.rev_between(start, end) {
            if entries.len() == q.limit {
                next_before_seq = entries.last().map(|e: &AuditEntry| e.seq);
                break;
            }
            if let Some(e) = self.get(seq) {
                // Entries out of time order (a stepped clock) are filtered exactly here.
                let in_time =
                    q.from_ms.is_none_or(|f| e.at_ms >= f) && q.to_ms.is_none_or(|t| e.at_ms < t);
                if in_time {
                    entries.push((**e).clone());
                }
            }
        }
        AuditNewestPage {
            entries,
            next_before_seq,
        }
    }

    /// The newest `limit` entries matching `filter`, oldest first.
    pub fn newest(&self, filter: AuditFilter, limit: usize) -> Vec<AuditEntry> {
        let mut v = self
            .page(&AuditQuery {
                filter,
                limit,
                ..Default::default()
            })
            .entries;
        v.reverse();
        v
    }

    /// The newest `n` entries, oldest first.
    pub fn recent(&self, n: usize) -> Vec<AuditEntry> {
        self.newest(AuditFilter::All, n)
    }

    pub fn by_node(&self, node_id: &str, limit: usize) -> Vec<AuditEntry> {
        self.newest(AuditFilter::Node(node_id.to_owned()), limit)
    }

    pub fn by_action(&self, action: AuditAction, limit: usize) -> Vec<AuditEntry> {
        self.newest(AuditFilter::Action(action), limit)
    }

    pub fn by_result(&self, result: AuditResult, limit: usize) -> Vec<AuditEntry> {
        self.newest(AuditFilter::Result(result), limit)
    }

    /// Calls `f` with the matching entries, oldest first, without copying them: the batch path
    /// behind the C ABI's flat lists.
    pub fn with_newest(&self, filter: &AuditFilter, limit: usize, mut f: impl FnMut(&AuditEntry)) {
        let view = self.seqs(filter);
        let seqs: Vec<u64> = view.rev_between(0, u64::MAX).take(limit).collect();
        for seq in seqs.into_iter().rev() {
            if let Some(e) = self.get(seq) {
                f(e);
            }
        }
    }

    /// Up to `limit` entries with `seq > cursor`, oldest first, and the gap if the ring evicted
    /// entries the reader never saw.
    pub fn since(&self, cursor: u64, limit: usize) -> AuditPage {
        let mut entries = Vec::new();
        let (missed, next_cursor) = self.with_since(cursor, limit, |e| entries.push(e.clone()));
        AuditPage {
            entries,
            missed,
            next_cursor,
        }
    }

    /// [`AuditRing::since`] without copying: calls `f` per entry; returns (missed, next cursor).
    pub fn with_since(
        &self,
        cursor: u64,
        limit: usize,
        mut f: impl FnMut(&AuditEntry),
    ) -> (u64, u64) {
        let oldest = self.entries.front().map_or(self.next_seq, |e| e.seq);
        let missed = oldest.saturating_sub(cursor.saturating_add(1));
        let mut next = cursor.max(oldest.saturating_sub(1));
        let start = cursor.saturating_add(1).max(oldest);
        for seq in (start..self.next_seq).take(limit) {
            if let Some(e) = self.get(seq) {
                f(e);
                next = seq;
            }
        }
        (missed, next)
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
            last_entry: self.entries.back().map(|e| (**e).clone()),
        }
    }
}

/// The sequence numbers of one index, or a contiguous range of the whole ring.
enum SeqView<'a> {
    Empty,
    Range { first: u64, end: u64 },
    List(&'a SeqList),
}

impl SeqView<'_> {
    fn len(&self) -> usize {
        match self {
            SeqView::Empty => 0,
            SeqView::Range { first, end } => usize::try_from(end - first).unwrap_or(usize::MAX),
            SeqView::List(l) => l.len(),
        }
    }

    /// The sequence numbers in `[start, end)`, newest first. Seeking is a binary search.
    fn rev_between(&self, start: u64, end: u64) -> Box<dyn Iterator<Item = u64> + '_> {
        match self {
            SeqView::Empty => Box::new(std::iter::empty()),
            SeqView::Range { first, end: e } => {
                let lo = start.max(*first);
                let hi = end.min(*e);
                Box::new((lo..hi.max(lo)).rev())
            }
            SeqView::List(l) => {
                let lo = l.partition_point(|s| *s < start);
                let hi = l.partition_point(|s| *s < end).max(lo);
                Box::new(l.range(lo..hi).rev().copied())
            }
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

    fn seqs(v: &[AuditEntry]) -> Vec<u64> {
        v.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn bounded_with_monotonic_sequence_and_counted_evictions() {
        let r = ring_with(10, 4);
        assert_eq!(r.len(), 4);
        assert_eq!(
            r.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![7, 8, 9, 10]
        );
        let s = r.stats();
        assert_eq!((s.total_recorded, s.retained, s.evicted), (10, 4, 6));
        assert_eq!(s.retained + s.evicted, s.total_recorded);
        assert_eq!(s.by_action[&AuditAction::NodeDecommission], 5);
        assert_eq!(s.last_entry.unwrap().seq, 10);
    }

    #[test]
    fn queries_return_newest_in_chronological_order() {
        let r = ring_with(10, 100);
        assert_eq!(seqs(&r.recent(3)), vec![8, 9, 10]);
        assert_eq!(seqs(&r.by_node("n0", 2)), vec![7, 10]);
        assert_eq!(
            seqs(&r.by_action(AuditAction::LifecycleTransition, 100)),
            vec![2, 4, 6, 8, 10]
        );
        assert!(r.by_result(AuditResult::Failed, 100).is_empty());
        assert!(r.by_node("nobody", 10).is_empty());
        assert!(r.recent(0).is_empty(), "a limit of 0 returns nothing");
        assert!(AuditRing::new(3).recent(5).is_empty());
    }

    #[test]
    fn every_index_answers_what_a_scan_answers_through_evictions() {
        let mut r = AuditRing::new(5);
        for i in 0..40u64 {
            let node = format!("n{}", i % 4);
            let action = AuditAction::ALL[(i % 5) as usize];
            let result = AuditResult::ALL[(i % 3) as usize];
            r.append(rec(&node, action, result), Timestamp(i as i64));
            let scan = |keep: &dyn Fn(&AuditEntry) -> bool| -> Vec<u64> {
                r.iter().filter(|e| keep(e)).map(|e| e.seq).collect()
            };
            for n in 0..5 {
                let id = format!("n{n}");
                assert_eq!(
                    seqs(&r.by_node(&id, usize::MAX)),
                    scan(&|e| e.node_id == id)
                );
            }
            for a in AuditAction::ALL {
                assert_eq!(seqs(&r.by_action(a, usize::MAX)), scan(&|e| e.action == a));
            }
            for res in AuditResult::ALL {
                assert_eq!(
                    seqs(&r.by_result(res, usize::MAX)),
                    scan(&|e| e.result == res)
                );
            }
            assert!(r.by_node.len() <= 5);
            assert_eq!(
                r.by_node.values().map(VecDeque::len).sum::<usize>(),
                r.len()
            );
            assert_eq!(
                r.by_action.iter().map(VecDeque::len).sum::<usize>(),
                r.len()
            );
        }
        let restored = AuditRing::restore(3, r.state());
        assert_eq!(
            seqs(&restored.by_node("n2", 10)),
            restored
                .iter()
                .filter(|e| e.node_id == "n2")
                .map(|e| e.seq)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            restored.by_node.values().map(VecDeque::len).sum::<usize>(),
            3
        );
    }

    #[test]
    fn renames_survive_a_restore() {
        let mut r = AuditRing::new(10);
        r.append(
            rec("old", AuditAction::NodeProvision, AuditResult::Success),
            Timestamp(0),
        );
        r.alias("old", "new");
        r.append(
            rec("new", AuditAction::NodeRenamed, AuditResult::Success),
            Timestamp(0),
        );
        let restored = AuditRing::restore(10, r.state());
        assert_eq!(seqs(&restored.by_node("new", 10)), vec![1, 2]);
    }

    #[test]
    fn pages_walk_backwards_with_a_cursor_and_filters() {
        let r = ring_with(10, 100);
        let q = |filter, before: Option<u64>, limit| {
            r.page(&AuditQuery {
                filter,
                before_seq: before,
                limit,
                ..Default::default()
            })
        };
        let p = q(AuditFilter::All, None, 4);
        assert_eq!(seqs(&p.entries), vec![10, 9, 8, 7]);
        assert_eq!(p.next_before_seq, Some(7));
        let p = q(AuditFilter::All, Some(7), 4);
        assert_eq!(seqs(&p.entries), vec![6, 5, 4, 3]);
        let p = q(AuditFilter::All, Some(3), 4);
        assert_eq!((seqs(&p.entries), p.next_before_seq), (vec![2, 1], None));
        let p = q(AuditFilter::Node("n1".into()), Some(8), 2);
        assert_eq!(seqs(&p.entries), vec![5, 2]);
        let p = q(AuditFilter::Action(AuditAction::NodeDecommission), None, 0);
        assert!(p.entries.is_empty());
        let p = r.page(&AuditQuery {
            after_seq: Some(8),
            limit: 10,
            ..Default::default()
        });
        assert_eq!(seqs(&p.entries), vec![10, 9]);
        // Time bounds: [from, to).
        let p = r.page(&AuditQuery {
            from_ms: Some(Timestamp(3)),
            to_ms: Some(Timestamp(6)),
            limit: 10,
            ..Default::default()
        });
        assert_eq!(seqs(&p.entries), vec![6, 5, 4]);
    }

    #[test]
    fn a_renamed_node_keeps_its_history_in_queries() {
        let mut r = AuditRing::new(4);
        r.append(
            rec("old", AuditAction::NodeProvision, AuditResult::Success),
            Timestamp(0),
        );
        r.append(
            rec("x", AuditAction::ScaleUp, AuditResult::Success),
            Timestamp(0),
        );
        r.append(
            rec("new", AuditAction::ScaleUp, AuditResult::Success),
            Timestamp(0),
        );
        r.alias("old", "new");
        r.append(
            rec("new", AuditAction::NodeRenamed, AuditResult::Success),
            Timestamp(0),
        );
        assert_eq!(seqs(&r.by_node("new", 10)), vec![1, 3, 4]);
        assert_eq!(
            seqs(&r.by_node("old", 10)),
            vec![1, 3, 4],
            "the old id finds the same history"
        );
        // Eviction of the old-named entry keeps the merged index consistent.
        r.append(
            rec("x", AuditAction::ScaleUp, AuditResult::Success),
            Timestamp(0),
        );
        assert_eq!(seqs(&r.by_node("new", 10)), vec![3, 4]);
        assert!(
            r.aliases.is_empty(),
            "the alias goes with the last old-named entry"
        );
        // A chain of renames: a -> b -> c.
        let mut r = AuditRing::new(10);
        r.append(
            rec("a", AuditAction::ScaleUp, AuditResult::Success),
            Timestamp(0),
        );
        r.alias("a", "b");
        r.append(
            rec("b", AuditAction::ScaleUp, AuditResult::Success),
            Timestamp(0),
        );
        r.alias("b", "c");
        assert_eq!(seqs(&r.by_node("c", 10)), vec![1, 2]);
        for _ in 0..10 {
            r.append(
                rec("z", AuditAction::ScaleUp, AuditResult::Success),
                Timestamp(0),
            );
        }
        assert!(r.by_node("c", 10).is_empty());
        assert_eq!(r.by_node.len(), 1, "only z is left");
        assert!(r.aliases.is_empty());
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
        assert_eq!(r.since(u64::MAX, 10).next_cursor, u64::MAX);
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
        assert_eq!(stats["by_action"]["reservation_expired"], 0);
    }
}
