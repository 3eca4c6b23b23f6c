//! One mutation in progress.
//!
//! A transaction stages audit records and remembers every node it touches (with the node's
//! state at first touch, to keep the state index right). When the fleet persists, it also keeps
//! an undo log: the pre-image of every node (a shared pointer: nodes are copy-on-write, so this
//! costs nothing until the node is written) and every index entry it changes. `commit` writes
//! the post-images and entries to the journal first and only then makes them visible; if the
//! write fails, `rollback` restores the pre-images, so a change that was not acknowledged is
//! never visible. Without storage nothing can fail after validation, so no undo log is kept (an
//! in-memory fleet pays nothing for this): every operation validates fully before it changes
//! anything.

use super::{Inner, NodeId};
use crate::audit::{AuditEntry, AuditRecord, StateSnapshot};
use crate::clock::Moment;
use crate::error::{Error, Result};
use crate::ids::ClaimId;
use crate::node::{Node, StateChange};
use crate::policy::Policy;
use crate::state::LifecycleState;
use crate::storage::{CompactionJob, FleetMeta, RecordOut};
use std::sync::Arc;

enum Undo {
    Node(NodeId, Option<Arc<Node>>),
    Container(String, Option<NodeId>),
    Claim(ClaimId, Option<NodeId>),
    Meta(FleetMeta),
    Restoring(bool),
}

pub(crate) struct Tx<'a> {
    pub(crate) inner: &'a mut Inner,
    pub(crate) now: Moment,
    /// Every node touched, with its state before this transaction (`None`: it did not exist).
    touched: Vec<(NodeId, Option<LifecycleState>)>,
    undo: Vec<Undo>,
    meta_changed: bool,
    staged: Vec<AuditRecord>,
    /// Commit the staged records even though the operation fails: an audited refusal.
    pub(crate) keep_on_error: bool,
}

/// Mutable access to one node together with the staged audit records and the policy: the
/// borrow every node mutation needs.
pub(crate) struct NodeCtx<'a> {
    pub(crate) node: &'a mut Node,
    staged: &'a mut Vec<AuditRecord>,
    pub(crate) policy: &'a Policy,
    pub(crate) now: Moment,
}

impl NodeCtx<'_> {
    pub(crate) fn snapshot(&self) -> StateSnapshot {
        StateSnapshot::of(self.node, self.policy, self.now)
    }

    /// Stages an audit record with the node's current snapshot.
    pub(crate) fn record(&mut self, rec: AuditRecord) {
        let rec = rec.snapshot(self.snapshot());
        self.staged.push(rec);
    }

    /// Applies a table transition and records it. Callers have checked that protocol-only
    /// states are entered only through the protocol.
    pub(crate) fn transition(
        &mut self,
        to: LifecycleState,
        reason: &str,
        decision_by: &str,
    ) -> Result<Option<StateChange>> {
        let change = self.node.transition(to, self.now)?;
        if let Some(c) = change {
            self.record_change(c, reason, decision_by);
        }
        Ok(change)
    }

    pub(crate) fn record_change(&mut self, c: StateChange, reason: &str, decision_by: &str) {
        use crate::audit::{AuditAction, AuditResult};
        let rec = AuditRecord::new(
            AuditAction::LifecycleTransition,
            &self.node.id,
            AuditResult::Success,
        )
        .reason(0, reason)
        .decision_by(decision_by)
        .states(c.from, c.to);
        self.record(rec);
    }

    /// Moves between ready/active/idle as the container count demands.
    pub(crate) fn settle_occupancy(&mut self) {
        if let Some((to, reason)) = self.node.occupancy_transition() {
            // The occupancy transitions are all in the table, so this cannot fail.
            let _ = self.transition(to, reason, "");
        }
    }
}

impl<'a> Tx<'a> {
    pub(crate) fn new(inner: &'a mut Inner, now: Moment) -> Self {
        Tx {
            inner,
            now,
            touched: Vec::new(),
            undo: Vec::new(),
            meta_changed: false,
            staged: Vec::new(),
            keep_on_error: false,
        }
    }

    fn journaled(&self) -> bool {
        self.inner.storage.is_some()
    }

    /// Remembers `id`'s state (and, when journaled, its pre-image) the first time the
    /// transaction touches it.
    fn touch(&mut self, id: &NodeId) {
        if self.touched.iter().any(|(t, _)| t == id) {
            return;
        }
        let before = self.inner.nodes.get(id);
        self.touched.push((id.clone(), before.map(|n| n.state)));
        if self.journaled() {
            self.undo.push(Undo::Node(id.clone(), before.cloned()));
        }
    }

    pub(crate) fn node_ref(&self, id: &str) -> Result<&Node> {
        self.inner.node(id)
    }

    /// Write access to a node (copy-on-write if a snapshot still shares it).
    pub(crate) fn node(&mut self, id: &str) -> Result<NodeCtx<'_>> {
        let key = self
            .inner
            .node_id(id)
            .ok_or_else(|| Error::NodeNotFound(id.to_owned()))?;
        self.touch(&key);
        let node = Arc::make_mut(self.inner.nodes.get_mut(&key).expect("checked above"));
        Ok(NodeCtx {
            node,
            staged: &mut self.staged,
            policy: &self.inner.policy,
            now: self.now,
        })
    }

    pub(crate) fn insert(&mut self, node: Node) -> NodeId {
        let id: NodeId = node.id.as_str().into();
        self.touch(&id);
        self.inner.nodes.insert(id.clone(), Arc::new(node));
        id
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<Arc<Node>> {
        let key = self.inner.node_id(id)?;
        self.touch(&key);
        self.inner.nodes.remove(&key)
    }

    /// Points container `id` at `node` (or removes it from the fleet-wide index).
    pub(crate) fn index_container(&mut self, id: &str, node: Option<NodeId>) {
        let before = match node {
            Some(n) => self.inner.containers.insert(id.to_owned(), n),
            None => self.inner.containers.remove(id),
        };
        if self.journaled() {
            self.undo.push(Undo::Container(id.to_owned(), before));
        }
    }

    /// Points claim `id` at `node` (or removes it from the fleet-wide index).
    pub(crate) fn index_claim(&mut self, id: ClaimId, node: Option<NodeId>) {
        let before = match node {
            Some(n) => self.inner.claims.insert(id, n),
            None => self.inner.claims.remove(&id),
        };
        if self.journaled() {
            self.undo.push(Undo::Claim(id, before));
        }
    }

    /// Changes fleet-level state (persisted with the mutation).
    pub(crate) fn meta_mut(&mut self) -> &mut FleetMeta {
        if !self.meta_changed {
            self.meta_changed = true;
            if self.journaled() {
                self.undo.push(Undo::Meta(self.inner.meta.clone()));
            }
        }
        &mut self.inner.meta
    }

    /// Opens or closes the restore pass.
    pub(crate) fn set_restoring(&mut self, restoring: bool) {
        if self.inner.restoring != restoring && self.journaled() {
            self.undo.push(Undo::Restoring(self.inner.restoring));
        }
        self.inner.restoring = restoring;
    }

    /// The node that runs container `id`, if any.
    pub(crate) fn container_node(&self, id: &str) -> Option<&NodeId> {
        self.inner.containers.get(id)
    }

    /// Stages a record as is (e.g. about an unknown node, without a snapshot).
    pub(crate) fn stage(&mut self, rec: AuditRecord) {
        self.staged.push(rec);
    }

    /// Stages a record with the snapshot of node `id` as it is now (if it exists).
    pub(crate) fn stage_with_snapshot(&mut self, rec: AuditRecord, id: &str) {
        let rec = match self.inner.nodes.get(id) {
            Some(n) => rec.snapshot(StateSnapshot::of(n, &self.inner.policy, self.now)),
            None => rec,
        };
        self.staged.push(rec);
    }

    pub(crate) fn rollback(self) {
        let Tx { inner, undo, .. } = self;
        for u in undo.into_iter().rev() {
            match u {
                Undo::Node(id, Some(n)) => {
                    inner.nodes.insert(id, n);
                }
                Undo::Node(id, None) => {
                    inner.nodes.remove(&id);
                }
                Undo::Container(id, Some(n)) => {
                    inner.containers.insert(id, n);
                }
                Undo::Container(id, None) => {
                    inner.containers.remove(&id);
                }
                Undo::Claim(id, Some(n)) => {
                    inner.claims.insert(id, n);
                }
                Undo::Claim(id, None) => {
                    inner.claims.remove(&id);
                }
                Undo::Meta(m) => inner.meta = m,
                Undo::Restoring(r) => inner.restoring = r,
            }
        }
    }

    /// Makes the transaction durable (journal first) and visible (state index, audit ring).
    /// Returns a compaction to run once the lock is released, when one is due.
    pub(crate) fn commit(mut self) -> Result<Option<CompactionJob>> {
        let now = self.now;
        let first = self.inner.audit.next_seq();
        let entries: Vec<AuditEntry> = std::mem::take(&mut self.staged)
            .into_iter()
            .enumerate()
            .map(|(i, r)| self.inner.audit.entry(r, now.wall, first + i as u64))
            .collect();
        let nothing_to_write = self.touched.is_empty() && !self.meta_changed && entries.is_empty();
        if self.inner.storage.is_some() && !nothing_to_write {
            let Inner {
                nodes,
                meta,
                storage,
                ..
            } = &mut *self.inner;
            let mut records: Vec<RecordOut<'_>> = self
                .touched
                .iter()
                .map(|(id, _)| match nodes.get(id) {
                    Some(node) => RecordOut::Node { node },
                    None => RecordOut::Forget { id },
                })
                .collect();
            if self.meta_changed {
                records.push(RecordOut::Meta { meta });
            }
            records.extend(entries.iter().map(|entry| RecordOut::Audit { entry }));
            let written = storage.as_mut().expect("checked above").append(&records);
            drop(records);
            if let Err(e) = written {
                self.rollback();
                return Err(e);
            }
        }
        let Tx { inner, touched, .. } = self;
        for (id, before) in touched {
            let after = inner.nodes.get(&id).map(|n| n.state);
            if before != after {
                match (before, after) {
                    (None, Some(_)) => {
                        inner.all.insert(id.clone());
                    }
                    (Some(_), None) => {
                        inner.all.remove(&id);
                    }
                    _ => {}
                }
                if let Some(s) = before {
                    inner.by_state[s as usize].remove(&id);
                }
                if let Some(s) = after {
                    inner.by_state[s as usize].insert(id);
                }
            }
        }
        for e in entries {
            inner.audit.push(e);
        }
        match inner.storage.as_ref() {
            Some(s) if s.wants_compaction() => {
                let state = inner.capture();
                let storage = inner.storage.as_mut().expect("checked above");
                // A compaction that cannot start is retried later; what was just written is
                // already durable, so its failure is only recorded in the storage status.
                Ok(storage.begin_compaction(state).ok())
            }
            _ => Ok(None),
        }
    }
}
