//! Where the fleet keeps its nodes: dense slots, and the indexes that find them.
//!
//! A node lives in a slot (a number that stays the same while the node exists); every index
//! names slots, not ids, so an id is stored once, in its node. [`NodeStore`] keeps the slots and
//! three indexes in step: id -> slot and container id -> slot ([`IdTable`]s that read their keys
//! from the nodes), and the slots in id order ([`OrderIndex`]). Claims are found through a plain
//! map (their ids are random numbers, not strings).
//!
//! Each node also has its [`VerdictInputs`]: the handful of numbers the safety rules read,
//! packed in one array in slot order, so that evaluating the whole fleet walks one compact
//! array instead of following a pointer per node.

use super::index::{hash_key, IdTable, OrderIndex, Slots};
use crate::fxhash::FxHashMap;
use crate::ids::ClaimId;
use crate::node::Node;
use crate::safety::VerdictInputs;
use crate::state::LifecycleState;
use crate::text::Key;
use std::sync::Arc;

/// A node's place in the store.
pub(crate) type Slot = u32;

#[derive(Default)]
pub(crate) struct NodeStore {
    nodes: Vec<Option<Arc<Node>>>,
    /// What the rules read of each node, by slot (see the module comment). Kept up to date by
    /// [`NodeStore::refresh`] when a transaction commits.
    inputs: Vec<VerdictInputs>,
    free: Vec<Slot>,
    /// Whether a slot is in `free` (so that it is never there twice).
    is_free: Vec<bool>,
    len: usize,
    ids: IdTable,
    order: OrderIndex,
    /// Every running container, fleet-wide: container ids are unique across the fleet.
    containers: IdTable,
    container_count: usize,
    /// Every claim (and keyed reservation), fleet-wide.
    claims: FxHashMap<ClaimId, Slot>,
}

/// The store's nodes as the order index sees them.
#[derive(Clone, Copy)]
struct View<'a>(&'a [Option<Arc<Node>>]);

impl Slots for View<'_> {
    fn id(&self, slot: u32) -> &str {
        self.0[slot as usize].as_ref().map_or("", |n| n.id())
    }
    fn state(&self, slot: u32) -> u8 {
        self.0[slot as usize]
            .as_ref()
            .map_or(0, |n| n.state() as u8)
    }
}

impl NodeStore {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn slot_of(&self, id: &str) -> Option<Slot> {
        let nodes = &self.nodes;
        let key = Key::new(id);
        self.ids.find(hash_key(id), |s| {
            nodes[s as usize]
                .as_ref()
                .is_some_and(|n| key.matches(n.id_text()))
        })
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Arc<Node>> {
        self.at(self.slot_of(id)?)
    }

    /// The node in a slot, if the slot holds one.
    pub(crate) fn at(&self, slot: Slot) -> Option<&Arc<Node>> {
        self.nodes.get(slot as usize)?.as_ref()
    }

    /// The node in a slot, for writing: copied first if a snapshot still shares it.
    pub(crate) fn at_mut(&mut self, slot: Slot) -> Option<&mut Node> {
        self.nodes
            .get_mut(slot as usize)?
            .as_mut()
            .map(Arc::make_mut)
    }

    pub(crate) fn inputs(&self, slot: Slot) -> &VerdictInputs {
        &self.inputs[slot as usize]
    }

    /// Adds a node under an id that is not in the store; returns its slot.
    pub(crate) fn insert(&mut self, node: Arc<Node>) -> Slot {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.nodes.push(None);
                self.inputs.push(VerdictInputs::default());
                self.is_free.push(false);
                (self.nodes.len() - 1) as Slot
            }
        };
        self.is_free[slot as usize] = false;
        self.put(slot, node);
        slot
    }

    /// Fills an empty slot (an insert, or undoing a removal in that slot).
    pub(crate) fn put(&mut self, slot: Slot, node: Arc<Node>) {
        debug_assert!(self.nodes[slot as usize].is_none());
        if std::mem::take(&mut self.is_free[slot as usize]) {
            if let Some(i) = self.free.iter().rposition(|&s| s == slot) {
                self.free.swap_remove(i);
            }
        }
        let hash = hash_key(node.id());
        self.inputs[slot as usize] = VerdictInputs::of(&node);
        self.nodes[slot as usize] = Some(node);
        self.ids.insert(hash, slot);
        self.order.insert(&View(&self.nodes), slot);
        self.order
            .note_state(slot, self.inputs[slot as usize].state() as u8);
        self.len += 1;
    }

    /// Empties a slot. The slot is not reused until [`NodeStore::release`] (a transaction
    /// releases the slots it emptied when it ends, so that within it a slot names one node).
    pub(crate) fn take(&mut self, slot: Slot) -> Option<Arc<Node>> {
        let node = self.nodes.get(slot as usize)?.as_ref()?;
        let hash = hash_key(node.id());
        self.ids.remove(hash, |s| s == slot);
        self.order.remove(&View(&self.nodes), slot);
        self.len -= 1;
        self.nodes[slot as usize].take()
    }

    /// Makes an emptied slot available again.
    pub(crate) fn release(&mut self, slot: Slot) {
        let i = slot as usize;
        if self.nodes.get(i).is_some_and(Option::is_none) && !self.is_free[i] {
            self.is_free[i] = true;
            self.free.push(slot);
        }
    }

    /// Puts back a node's earlier version (undoing a write).
    pub(crate) fn restore(&mut self, slot: Slot, node: Arc<Node>) {
        self.nodes[slot as usize] = Some(node);
        self.refresh(slot);
    }

    /// Recomputes a slot's verdict inputs and notes its state for the order index's walks.
    pub(crate) fn refresh(&mut self, slot: Slot) {
        if let Some(node) = self.nodes[slot as usize].as_ref() {
            let inputs = VerdictInputs::of(node);
            let old = &mut self.inputs[slot as usize];
            if old.state() != inputs.state() {
                self.order.note_state(slot, inputs.state() as u8);
            }
            *old = inputs;
        }
    }

    /// The nodes in id order after `after` (or from the first), optionally of one state.
    pub(crate) fn ordered<'a>(
        &'a self,
        after: Option<&str>,
        state: Option<LifecycleState>,
    ) -> impl Iterator<Item = (Slot, &'a Node)> + 'a {
        let nodes = &self.nodes;
        self.order
            .iter_after(View(nodes), after, state.map(|s| s as u8))
            .filter_map(move |slot| Some((slot, nodes[slot as usize].as_deref()?)))
    }

    /// Every node, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Arc<Node>> + '_ {
        self.nodes.iter().flatten()
    }

    /// Every node with its slot, in no particular order.
    pub(crate) fn slots(&self) -> impl Iterator<Item = (Slot, &Arc<Node>)> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (i as Slot, n)))
    }

    // ----- containers and claims -------------------------------------------------------------

    /// The slot of the node running container `id`.
    pub(crate) fn container_slot(&self, id: &str) -> Option<Slot> {
        let nodes = &self.nodes;
        let key = Key::new(id);
        self.containers.find(hash_key(id), |s| {
            nodes[s as usize]
                .as_ref()
                .is_some_and(|n| n.container_set().find(&key).is_some())
        })
    }

    pub(crate) fn container_count(&self) -> usize {
        self.container_count
    }

    /// Notes that the node in `slot` runs container `id` (which no node ran).
    pub(crate) fn index_container(&mut self, id: &str, slot: Slot) {
        self.containers.insert(hash_key(id), slot);
        self.container_count += 1;
    }

    /// Notes that the node in `slot` no longer runs container `id`.
    pub(crate) fn unindex_container(&mut self, id: &str, slot: Slot) {
        // Entries of one node under one hash are interchangeable: removing any of them is
        // right (each lookup checks the node itself).
        if self
            .containers
            .remove(hash_key(id), |s| s == slot)
            .is_some()
        {
            self.container_count -= 1;
        }
    }

    pub(crate) fn claim_slot(&self, id: &ClaimId) -> Option<Slot> {
        self.claims.get(id).copied()
    }

    /// Every claim with the slot of its node, in no particular order.
    pub(crate) fn claims(&self) -> impl Iterator<Item = (ClaimId, Slot)> + '_ {
        self.claims.iter().map(|(c, s)| (*c, *s))
    }

    pub(crate) fn claim_count(&self) -> usize {
        self.claims.len()
    }

    pub(crate) fn set_claim(&mut self, id: ClaimId, slot: Option<Slot>) -> Option<Slot> {
        match slot {
            Some(s) => self.claims.insert(id, s),
            None => self.claims.remove(&id),
        }
    }
}
