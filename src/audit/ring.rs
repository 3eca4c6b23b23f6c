//! The ring and its indexes: appends, evictions, renames, and the queries.

use super::{
    AuditAction, AuditEntry, AuditFilter, AuditNewestPage, AuditPage, AuditQuery, AuditRecord,
    AuditResult, AuditState, AuditStats, Entries, StateSnapshot,
};
use crate::clock::Timestamp;
use crate::fxhash::FxHashMap;
use crate::text::Text;
use std::collections::VecDeque;

/// Emptied per-node lists kept for reuse: a ring that cycles through more nodes than it holds
/// entries would otherwise allocate a list for almost every entry.
const SPARE_LISTS: usize = 64;

/// Sequence numbers of the retained entries in one index, oldest first.
type SeqList = VecDeque<u64>;

/// The ring itself. Not synchronised: the fleet holds it under its lock.
#[derive(Debug)]
pub struct AuditRing {
    /// Shared, so that a snapshot can capture the ring without copying entries.
    pub(super) entries: Entries,
    /// node id -> sequence numbers of its retained entries. Kept in step with `entries` (an
    /// evicted entry is always the oldest of its node and of its action and result), so each
    /// index is bounded by the ring; a node with no retained entry has no key.
    pub(super) by_node: FxHashMap<Text, SeqList>,
    /// Emptied per-node lists, for the next node that needs one.
    pub(super) spare_lists: Vec<SeqList>,
    /// Renamed nodes: old id -> (new id, the last sequence number recorded under the old id).
    /// The old id's entries are indexed under the new id; the alias goes when they are evicted.
    pub(super) aliases: FxHashMap<Text, (Text, u64)>,
    pub(super) by_action: Vec<SeqList>,
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
            entries: Entries::default(),
            by_node: FxHashMap::default(),
            spare_lists: Vec::new(),
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
        AuditEntry::from_record(r, at, seq)
    }

    /// Adds an entry built by [`AuditRing::entry`] with the next sequence number.
    pub fn push(&mut self, entry: AuditEntry) -> u64 {
        debug_assert_eq!(entry.seq, self.next_seq, "entries are pushed in sequence");
        let seq = entry.seq;
        self.entries.stage(entry);
        self.publish();
        seq
    }

    /// Writes an entry in place at the end of the ring without making it visible: it is not
    /// in any query, index or count until [`AuditRing::publish`], and
    /// [`AuditRing::unstage`] takes it back. The fleet stages a transaction's entries, writes
    /// them to its journal, then publishes them: each entry is written once, where it stays.
    /// Returns its sequence number.
    #[inline]
    pub(crate) fn stage(
        &mut self,
        r: AuditRecord,
        snapshot: Option<StateSnapshot>,
        at: Timestamp,
    ) -> u64 {
        let seq = self.next_seq + self.entries.staged() as u64;
        self.entries.stage(AuditEntry::build(r, snapshot, at, seq));
        seq
    }

    /// The staged entries, oldest first.
    pub(crate) fn staged(&self) -> impl Iterator<Item = &AuditEntry> + '_ {
        (0..self.entries.staged()).filter_map(|k| self.entries.get_staged(k))
    }

    /// Whether entries are staged.
    pub(crate) fn has_staged(&self) -> bool {
        self.entries.staged() > 0
    }

    /// Takes back every staged entry.
    pub(crate) fn unstage(&mut self) {
        self.entries.unstage();
    }

    /// Makes the staged entries visible, oldest first, evicting the oldest entries when full.
    pub(crate) fn publish(&mut self) {
        while self.entries.staged() > 0 {
            let mut ix = Indexes {
                by_node: &mut self.by_node,
                spare_lists: &mut self.spare_lists,
                aliases: &mut self.aliases,
                by_action: &mut self.by_action,
                by_result: &mut self.by_result,
            };
            if self.entries.len() == self.capacity {
                if let Some(old) = self.entries.front() {
                    Self::unindex(&mut ix, old);
                }
                self.entries.pop_front();
                self.evicted += 1;
            }
            self.entries.publish_one();
            let e = self.entries.back().expect("published above");
            self.next_seq = e.seq.saturating_add(1);
            self.action_counts[e.action as usize] += 1;
            self.result_counts[e.result as usize] += 1;
            Self::index(&mut ix, &e.node_id, e.seq, e.action, e.result);
        }
    }

    fn index(
        ix: &mut Indexes<'_>,
        node_id: &Text,
        seq: u64,
        action: AuditAction,
        result: AuditResult,
    ) {
        let key = match ix.aliases.get(node_id.as_str()) {
            Some((target, last)) if seq <= *last => target,
            _ => node_id,
        };
        match ix.by_node.get_mut(key.as_str()) {
            Some(seqs) => seqs.push_back(seq),
            None => {
                let mut list = ix.spare_lists.pop().unwrap_or_default();
                list.push_back(seq);
                ix.by_node.insert(key.clone(), list);
            }
        }
        ix.by_action[action as usize].push_back(seq);
        ix.by_result[result as usize].push_back(seq);
    }

    /// Removes the oldest entry from the indexes (it is the oldest of its node, action and
    /// result). Takes the indexes apart from the entries, so the entry is read in place.
    fn unindex(ix: &mut Indexes<'_>, old: &AuditEntry) {
        let alias = ix.aliases.get(old.node_id.as_str());
        let key = match alias {
            Some((target, last)) if old.seq <= *last => target.as_str(),
            _ => old.node_id.as_str(),
        };
        let drop_alias = alias.is_some_and(|(_, last)| old.seq >= *last);
        if let Some(seqs) = ix.by_node.get_mut(key) {
            // Usually the front; after a rename merged two lists, possibly further in.
            if seqs.front() == Some(&old.seq) {
                seqs.pop_front();
            } else if let Ok(i) = seqs.binary_search(&old.seq) {
                seqs.remove(i);
            }
            if seqs.is_empty() {
                if let Some(list) = ix.by_node.remove(key) {
                    if ix.spare_lists.len() < SPARE_LISTS {
                        ix.spare_lists.push(list);
                    }
                }
            }
        }
        if drop_alias {
            ix.aliases.remove(old.node_id.as_str());
        }
        ix.by_action[old.action as usize].pop_front();
        ix.by_result[old.result as usize].pop_front();
    }

    /// Makes the entries recorded under `old` answer queries for `new` too (a renamed node
    /// keeps its history). The entries themselves keep the id they were recorded under.
    pub fn alias(&mut self, old: &Text, new: &Text) {
        let Some(old_seqs) = self.by_node.remove(old.as_str()) else {
            return;
        };
        // Earlier names of `old` now lead to `new`.
        for (target, _) in self.aliases.values_mut() {
            if target == old {
                *target = new.clone();
            }
        }
        let last = old_seqs.back().copied().unwrap_or(0);
        self.aliases.insert(old.clone(), (new.clone(), last));
        let merged = match self.by_node.remove(new.as_str()) {
            None => old_seqs,
            Some(new_seqs) => {
                let mut all: Vec<u64> = old_seqs.into_iter().chain(new_seqs).collect();
                all.sort_unstable();
                all.into()
            }
        };
        self.by_node.insert(new.clone(), merged);
    }

    /// The ring as persisted: the retained entries are shared, not copied.
    pub fn state(&self) -> AuditState {
        AuditState {
            entries: self.entries.clone(),
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
        ring.entries = state.entries;
        ring.entries.drop_oldest(dropped as usize);
        let mut ix = Indexes {
            by_node: &mut ring.by_node,
            spare_lists: &mut ring.spare_lists,
            aliases: &mut ring.aliases,
            by_action: &mut ring.by_action,
            by_result: &mut ring.by_result,
        };
        for e in ring.entries.iter() {
            Self::index(&mut ix, &e.node_id, e.seq, e.action, e.result);
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
        self.entries.iter()
    }

    /// The retained entry with sequence number `seq`. Retained sequence numbers are
    /// contiguous, so this is an index computation.
    fn get(&self, seq: u64) -> Option<&AuditEntry> {
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
                    entries.push(e.clone());
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
            last_entry: self.entries.back().cloned(),
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

/// The ring's indexes, borrowed apart from its entries.
struct Indexes<'a> {
    by_node: &'a mut FxHashMap<Text, SeqList>,
    spare_lists: &'a mut Vec<SeqList>,
    aliases: &'a mut FxHashMap<Text, (Text, u64)>,
    by_action: &'a mut [SeqList],
    by_result: &'a mut [SeqList],
}
