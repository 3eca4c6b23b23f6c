//! One mutation in progress.
//!
//! A transaction stages audit records and remembers every node it touches (by slot, with the
//! node's id and state at first touch). When the fleet persists, it also keeps an undo log:
//! the pre-image of every node (a shared pointer: nodes are copy-on-write, so this costs
//! nothing until the node is written) and every index entry it changes. `commit` writes the
//! post-images and entries to the journal first and only then makes them visible; if the
//! write fails, `rollback` restores the pre-images, so a change that was not acknowledged is
//! never visible. Without storage nothing can fail after validation, so no undo log is kept (an
//! in-memory fleet pays nothing for this): every operation validates fully before it changes
//! anything.
//!
//! The transaction's lists are borrowed from the fleet ([`Scratch`]) and given back empty, so
//! a transaction allocates nothing of its own once the fleet has warmed up.

use super::store::Slot;
use super::Inner;
use crate::audit::{AuditRecord, AuditRing, StateSnapshot};
use crate::clock::Moment;
use crate::error::{Error, Result};
use crate::ids::ClaimId;
use crate::node::{Node, StateChange};
use crate::policy::Policy;
use crate::state::LifecycleState;
use crate::storage::{CompactionJob, FleetMeta, RecordOut};
use crate::text::Text;
use std::sync::Arc;

enum Undo {
    /// The slot's node before the transaction (`None`: the slot was empty).
    Node(Slot, Option<Arc<Node>>),
    /// A container index entry that was added (`true`) or removed.
    Container(Text, Slot, bool),
    Claim(ClaimId, Option<Slot>),
    Meta(FleetMeta),
    Restoring(bool),
}

/// The lists a transaction works in, kept by the fleet between transactions (in
/// [`Inner`]), so that a transaction allocates nothing of its own.
#[derive(Default)]
pub(crate) struct Scratch {
    /// The slots of the nodes touched, in first-touch order.
    touched: Vec<Slot>,
    undo: Vec<Undo>,
    /// Slots emptied by the transaction, reusable once it ends.
    freed: Vec<Slot>,
}

impl Scratch {
    fn clear(&mut self) {
        self.touched.clear();
        self.undo.clear();
        self.freed.clear();
    }
}

/// Where a transaction stages an entry: in place at the end of the audit ring, numbered after
/// the entries before it, timed at the transaction's `now`, visible once the transaction
/// commits (see [`AuditRing::stage`]).
struct Stage<'a> {
    ring: &'a mut AuditRing,
    at: crate::clock::Timestamp,
}

impl Stage<'_> {
    #[inline]
    fn push(&mut self, rec: AuditRecord, snapshot: Option<StateSnapshot>) {
        self.ring.stage(rec, snapshot, self.at);
    }
}

pub(crate) struct Tx<'a> {
    pub(crate) inner: &'a mut Inner,
    pub(crate) now: Moment,
    meta_changed: bool,
    /// Commit the staged records even though the operation fails: an audited refusal.
    pub(crate) keep_on_error: bool,
}

/// Mutable access to one node together with the staged audit records and the policy: the
/// borrow every node mutation needs.
pub(crate) struct NodeCtx<'a> {
    pub(crate) node: &'a mut Node,
    stage: Stage<'a>,
    pub(crate) policy: &'a Policy,
    pub(crate) now: Moment,
}

impl NodeCtx<'_> {
    pub(crate) fn snapshot(&self) -> StateSnapshot {
        StateSnapshot::of(self.node, self.policy, self.now)
    }

    /// A record about this node (its id shared, not copied).
    pub(crate) fn entry(
        &self,
        action: crate::audit::AuditAction,
        result: crate::audit::AuditResult,
    ) -> AuditRecord {
        AuditRecord::new(action, &self.node.id, result)
    }

    /// Stages an audit record with the node's current snapshot.
    pub(crate) fn record(&mut self, rec: AuditRecord) {
        let snapshot = self.snapshot();
        self.stage.push(rec, Some(snapshot));
    }

    /// Applies a table transition and records it. Callers have checked that protocol-only
    /// states are entered only through the protocol.
    pub(crate) fn transition(
        &mut self,
        to: LifecycleState,
        reason: impl Into<Text>,
        decision_by: impl Into<Text>,
    ) -> Result<Option<StateChange>> {
        let change = self.node.transition(to, self.now)?;
        if let Some(c) = change {
            self.record_change(c, reason, decision_by);
        }
        Ok(change)
    }

    pub(crate) fn record_change(
        &mut self,
        c: StateChange,
        reason: impl Into<Text>,
        decision_by: impl Into<Text>,
    ) {
        use crate::audit::{AuditAction, AuditResult};
        let rec = AuditRecord {
            reason: reason.into(),
            decision_by: decision_by.into(),
            from_state: Some(c.from),
            to_state: Some(c.to),
            ..AuditRecord::new(
                AuditAction::LifecycleTransition,
                &self.node.id,
                AuditResult::Success,
            )
        };
        self.record(rec);
    }

    /// Moves between ready/active/idle as the container count demands.
    pub(crate) fn settle_occupancy(&mut self) {
        if let Some((to, reason)) = self.node.occupancy_transition() {
            // The occupancy transitions are all in the table, so this cannot fail.
            let _ = self.transition(to, reason, Text::EMPTY);
        }
    }
}

impl<'a> Tx<'a> {
    pub(crate) fn new(inner: &'a mut Inner, now: Moment) -> Self {
        debug_assert!(inner.scratch.touched.is_empty() && !inner.audit.has_staged());
        Tx {
            inner,
            now,
            meta_changed: false,
            keep_on_error: false,
        }
    }

    fn journaled(&self) -> bool {
        self.inner.storage.is_some()
    }

    /// Remembers the node in `slot` (and, when journaled, its pre-image) the first time the
    /// transaction touches it.
    fn touch(&mut self, slot: Slot) {
        let Inner {
            store,
            storage,
            scratch,
            ..
        } = &mut *self.inner;
        if scratch.touched.contains(&slot) {
            return;
        }
        let Some(before) = store.at(slot) else {
            return;
        };
        scratch.touched.push(slot);
        if storage.is_some() {
            scratch.undo.push(Undo::Node(slot, Some(before.clone())));
        }
    }

    /// The slot of node `id`.
    pub(crate) fn slot(&self, id: &str) -> Result<Slot> {
        self.inner
            .store
            .slot_of(id)
            .ok_or_else(|| Error::NodeNotFound(id.to_owned()))
    }

    pub(crate) fn node_ref(&self, id: &str) -> Result<&Node> {
        self.inner.node(id)
    }

    /// The node in `slot` (which the caller found).
    pub(crate) fn node_at(&self, slot: Slot) -> &Node {
        self.inner.store.at(slot).expect("a live slot")
    }

    /// Write access to a node (copy-on-write if a snapshot still shares it).
    pub(crate) fn node(&mut self, id: &str) -> Result<NodeCtx<'_>> {
        let slot = self.slot(id)?;
        Ok(self.node_mut(slot))
    }

    /// Write access to the node in `slot` (which the caller found).
    pub(crate) fn node_mut(&mut self, slot: Slot) -> NodeCtx<'_> {
        self.touch(slot);
        let Inner {
            store,
            policy,
            audit,
            ..
        } = &mut *self.inner;
        NodeCtx {
            node: store.at_mut(slot).expect("a live slot"),
            stage: Stage {
                ring: audit,
                at: self.now.wall,
            },
            policy,
            now: self.now,
        }
    }

    /// Adds a node whose id is not in the fleet; returns its slot.
    pub(crate) fn insert(&mut self, node: Node) -> Slot {
        let slot = self.inner.store.insert(Arc::new(node));
        self.inner.scratch.touched.push(slot);
        if self.journaled() {
            self.inner.scratch.undo.push(Undo::Node(slot, None));
        }
        slot
    }

    /// Removes a node, with its entries in the container and claim indexes.
    pub(crate) fn remove(&mut self, slot: Slot) -> Option<Arc<Node>> {
        let node = self.inner.store.at(slot)?;
        let containers: Vec<Text> = node
            .container_set()
            .iter()
            .map(|(c, _)| c.clone())
            .collect();
        let claims: Vec<ClaimId> = node.claims().map(|(c, _)| *c).collect();
        for c in containers {
            self.unindex_container(&c, slot);
        }
        for c in claims {
            self.index_claim(c, None);
        }
        self.touch(slot);
        self.inner.scratch.freed.push(slot);
        self.inner.store.take(slot)
    }

    /// Notes that the node in `slot` runs container `id` (which no node ran).
    pub(crate) fn index_container(&mut self, id: &Text, slot: Slot) {
        self.inner.store.index_container(id, slot);
        if self.journaled() {
            self.inner
                .scratch
                .undo
                .push(Undo::Container(id.clone(), slot, true));
        }
    }

    /// Notes that the node in `slot` no longer runs container `id`.
    pub(crate) fn unindex_container(&mut self, id: &Text, slot: Slot) {
        self.inner.store.unindex_container(id, slot);
        if self.journaled() {
            self.inner
                .scratch
                .undo
                .push(Undo::Container(id.clone(), slot, false));
        }
    }

    /// Points claim `id` at the node in `slot` (or removes it from the fleet-wide index).
    pub(crate) fn index_claim(&mut self, id: ClaimId, slot: Option<Slot>) {
        let before = self.inner.store.set_claim(id, slot);
        if self.journaled() {
            self.inner.scratch.undo.push(Undo::Claim(id, before));
        }
    }

    /// Changes fleet-level state (persisted with the mutation).
    pub(crate) fn meta_mut(&mut self) -> &mut FleetMeta {
        if !self.meta_changed {
            self.meta_changed = true;
            if self.journaled() {
                let meta = self.inner.meta.clone();
                self.inner.scratch.undo.push(Undo::Meta(meta));
            }
        }
        &mut self.inner.meta
    }

    /// Opens or closes the restore pass.
    pub(crate) fn set_restoring(&mut self, restoring: bool) {
        if self.inner.restoring != restoring && self.journaled() {
            let was = self.inner.restoring;
            self.inner.scratch.undo.push(Undo::Restoring(was));
        }
        self.inner.restoring = restoring;
    }

    /// The slot of the node that runs container `id`, if any.
    pub(crate) fn container_node(&self, id: &str) -> Option<Slot> {
        self.inner.store.container_slot(id)
    }

    fn stage_entry(&mut self) -> Stage<'_> {
        Stage {
            ring: &mut self.inner.audit,
            at: self.now.wall,
        }
    }

    /// Stages a record as is (e.g. about an unknown node, without a snapshot).
    pub(crate) fn stage(&mut self, rec: AuditRecord) {
        self.stage_entry().push(rec, None);
    }

    /// Stages a record with the snapshot of its node as it is now (if the node exists); the
    /// record then shares the node's id rather than keeping its own copy.
    pub(crate) fn stage_with_snapshot(&mut self, mut rec: AuditRecord) {
        let mut snapshot = None;
        if let Some(n) = self.inner.store.get(&rec.node_id) {
            rec.node_id = n.id_text().clone();
            snapshot = Some(StateSnapshot::of(n, &self.inner.policy, self.now));
        }
        self.stage_entry().push(rec, snapshot);
    }

    /// Undoes every change, newest first.
    pub(crate) fn rollback(mut self) {
        self.undo_all();
    }

    fn undo_all(&mut self) {
        let Inner {
            store,
            meta,
            restoring,
            scratch,
            audit,
            ..
        } = &mut *self.inner;
        for u in scratch.undo.drain(..).rev() {
            match u {
                Undo::Node(slot, Some(n)) => {
                    if store.at(slot).is_some() {
                        store.restore(slot, n);
                    } else {
                        store.put(slot, n);
                    }
                }
                Undo::Node(slot, None) => {
                    store.take(slot);
                    store.release(slot);
                }
                Undo::Container(id, slot, true) => store.unindex_container(&id, slot),
                Undo::Container(id, slot, false) => store.index_container(&id, slot),
                Undo::Claim(id, before) => {
                    store.set_claim(id, before);
                }
                Undo::Meta(m) => *meta = m,
                Undo::Restoring(r) => *restoring = r,
            }
        }
        // Slots that were emptied are full again; without an undo log they stay empty.
        for slot in scratch.freed.drain(..) {
            store.release(slot);
        }
        audit.unstage();
    }

    /// Makes the transaction durable (journal first) and visible (verdict inputs, audit
    /// ring). Returns a compaction to run once the lock is released, when one is due (boxed:
    /// it is rare and large, and every mutation returns through here).
    pub(crate) fn commit(mut self) -> Result<Option<Box<CompactionJob>>> {
        let Inner {
            store,
            meta,
            storage,
            scratch: work,
            audit,
            ..
        } = &mut *self.inner;
        let nothing_to_write = work.touched.is_empty() && !self.meta_changed && !audit.has_staged();
        if let (Some(storage), false) = (storage.as_mut(), nothing_to_write) {
            let mut records: Vec<RecordOut<'_>> = Vec::with_capacity(work.touched.len() + 4);
            for &slot in &work.touched {
                match store.at(slot) {
                    Some(node) => records.push(RecordOut::Node { node }),
                    // Gone: its id is in its pre-image (a journaled transaction keeps one).
                    None => {
                        let id = work.undo.iter().find_map(|u| match u {
                            Undo::Node(s, Some(n)) if *s == slot => Some(n.id()),
                            _ => None,
                        });
                        if let Some(id) = id {
                            records.push(RecordOut::Forget { id });
                        }
                    }
                }
            }
            if self.meta_changed {
                records.push(RecordOut::Meta { meta });
            }
            records.extend(audit.staged().map(|entry| RecordOut::Audit { entry }));
            let written = storage.append(&records);
            drop(records);
            if let Err(e) = written {
                self.undo_all();
                return Err(e);
            }
        }
        let inner = &mut *self.inner;
        let Inner {
            store,
            scratch,
            audit,
            ..
        } = inner;
        for &slot in &scratch.touched {
            store.refresh(slot);
        }
        for &slot in &scratch.freed {
            store.release(slot);
        }
        audit.publish();
        scratch.clear();
        match inner.storage.as_ref() {
            Some(s) if s.wants_compaction() => {
                let state = inner.capture();
                let storage = inner.storage.as_mut().expect("checked above");
                // A compaction that cannot start is retried later; what was just written is
                // already durable, so its failure is only recorded in the storage status.
                Ok(storage.begin_compaction(state).ok().map(Box::new))
            }
            _ => Ok(None),
        }
    }
}

impl Drop for Tx<'_> {
    /// Leaves the fleet's lists empty and nothing staged for the next transaction (also after a
    /// panic: the fleet is poisoned then, but its ring stays consistent).
    fn drop(&mut self) {
        self.inner.scratch.clear();
        self.inner.audit.unstage();
    }
}
