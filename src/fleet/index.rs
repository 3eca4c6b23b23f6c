//! The fleet's indexes over its dense node slots, built for a million nodes: small (a few bytes
//! per entry, keys are never stored twice) and cheap on the paths every event takes.
//!
//! - [`IdTable`]: a hash table from a string key (a node id, a container id) to a slot number.
//!   A slot of the table holds 8 bytes, a 32-bit hash of the key and the value; the key itself
//!   is read where it already lives (the node), through a callback. Open addressing with
//!   linear probing and backward-shift deletion (no tombstones). The position is taken from the
//!   stored hash, so growing and deleting never need the key.
//! - [`OrderIndex`]: slot numbers in the order of their ids, for walks and pages in id order. A
//!   sorted array plus a small sorted tail of recent inserts, each tail entry carrying its
//!   position in the array, so that walking in order compares no strings at all; an insert
//!   costs a binary search, and the tail is merged in when it grows.
//!
//! Neither type knows what a node is: the fleet passes the comparisons.

use crate::fxhash::FxHasher;
use std::hash::Hasher;

/// The 32-bit hash the tables use for a key.
pub(crate) fn hash_key(key: &str) -> u32 {
    let mut h = FxHasher::default();
    h.write(key.as_bytes());
    // Fx leaves the low bits weak; mix so that every bit depends on the whole key.
    let x = h.finish();
    let x = (x ^ (x >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (x ^ (x >> 32)) as u32
}

const EMPTY: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Slot {
    hash: u32,
    value: u32,
}

const VACANT: Slot = Slot {
    hash: 0,
    value: EMPTY,
};

/// A string-keyed hash table of slot numbers that stores no key (see the module comment).
#[derive(Clone, Debug, Default)]
pub(crate) struct IdTable {
    slots: Vec<Slot>,
    len: usize,
}

impl IdTable {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// Where the value stored for a key with this hash for which `is_key(value)` holds is.
    #[inline]
    fn position(&self, hash: u32, mut is_key: impl FnMut(u32) -> bool) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut i = hash as usize & mask;
        loop {
            let s = self.slots[i];
            if s.value == EMPTY {
                return None;
            }
            if s.hash == hash && is_key(s.value) {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The value stored for a key with this hash for which `is_key(value)` holds.
    #[inline]
    pub(crate) fn find(&self, hash: u32, is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        self.position(hash, is_key).map(|i| self.slots[i].value)
    }

    /// Adds `value` under `hash`; the caller has checked the key is not in the table.
    pub(crate) fn insert(&mut self, hash: u32, value: u32) {
        debug_assert_ne!(value, EMPTY);
        // At most 7/8 full: probes stay short, and the table is 8 bytes per slot.
        if (self.len + 1) * 8 > self.slots.len() * 7 {
            self.grow();
        }
        self.place(Slot { hash, value });
        self.len += 1;
    }

    fn place(&mut self, s: Slot) {
        let mask = self.mask();
        let mut i = s.hash as usize & mask;
        while self.slots[i].value != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = s;
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![VACANT; size]);
        for s in old.into_iter().filter(|s| s.value != EMPTY) {
            self.place(s);
        }
    }

    /// Removes the value stored for the key (`is_key` as for `find`); returns it.
    pub(crate) fn remove(&mut self, hash: u32, is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let i = self.position(hash, is_key)?;
        let mask = self.mask();
        let removed = self.slots[i].value;
        // Backward-shift deletion: move later entries of the probe run into the hole, so a
        // lookup never stops early at it.
        let mut hole = i;
        let mut j = (i + 1) & mask;
        loop {
            let s = self.slots[j];
            if s.value == EMPTY {
                break;
            }
            let home = s.hash as usize & mask;
            // The entry at j may fill the hole if its home is not in (hole, j] (cyclically).
            let stays = if hole <= j {
                home > hole && home <= j
            } else {
                home > hole || home <= j
            };
            if !stays {
                self.slots[hole] = s;
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.slots[hole] = VACANT;
        self.len -= 1;
        Some(removed)
    }
}

/// Slot numbers in id order (see the module comment), with an 8-state mask per block of 64
/// entries so that walks restricted to one state skip the blocks that have none.
#[derive(Debug, Default)]
pub(crate) struct OrderIndex {
    /// Slots, sorted by id.
    main: Vec<u32>,
    /// Recent inserts, sorted by (position in `main`, id): `pos` is where it goes in `main`.
    tail: Vec<(u32, u32)>,
    /// Slot -> its position in `main` (`NOT_IN_MAIN` while it is in the tail or absent).
    pos_of_slot: Vec<u32>,
    /// Per block of 64 entries of `main`: a bit per state that may occur in it. Bits are set
    /// when a slot enters a state and cleared when a walk finds the block has none (a reader
    /// may clear them under the fleet's read lock, hence atomic; any value is safe, a stale bit
    /// only costs a look).
    masks: Vec<std::sync::atomic::AtomicU8>,
}

const NOT_IN_MAIN: u32 = u32::MAX;
const BLOCK: usize = 64;

/// How the caller's slots look to the index.
pub(crate) trait Slots {
    /// The id of a slot in the index.
    fn id(&self, slot: u32) -> &str;
    /// The slot's state (0..8).
    fn state(&self, slot: u32) -> u8;
}

impl<T: Slots> Slots for &T {
    fn id(&self, slot: u32) -> &str {
        (**self).id(slot)
    }
    fn state(&self, slot: u32) -> u8 {
        (**self).state(slot)
    }
}

impl OrderIndex {
    pub(crate) fn len(&self) -> usize {
        self.main.len() + self.tail.len()
    }

    /// The first position in `main` whose id is not below `id` (`strict`: above `id`).
    fn position(&self, slots: &impl Slots, id: &str, strict: bool) -> usize {
        self.main.partition_point(|&s| {
            let other = slots.id(s);
            if strict {
                other <= id
            } else {
                other < id
            }
        })
    }

    /// Adds a slot whose id is not in the index yet.
    pub(crate) fn insert(&mut self, slots: &impl Slots, slot: u32) {
        let id = slots.id(slot);
        let pos = self.position(slots, id, false) as u32;
        let at = self
            .tail
            .partition_point(|&(p, s)| p < pos || (p == pos && slots.id(s) < id));
        self.tail.insert(at, (pos, slot));
        self.set_pos(slot, NOT_IN_MAIN);
        // Merging costs O(n); a tail of about the square root of n keeps inserts O(sqrt n).
        if self.tail.len() > 64 && self.tail.len() * self.tail.len() > self.main.len() * 4 {
            self.merge(slots);
        }
    }

    /// Removes a slot (its id must still be readable through `slots`).
    pub(crate) fn remove(&mut self, slots: &impl Slots, slot: u32) {
        if let Some(i) = self.tail.iter().position(|&(_, s)| s == slot) {
            self.tail.remove(i);
            return;
        }
        let Some(&pos) = self.pos_of_slot.get(slot as usize) else {
            return;
        };
        if pos == NOT_IN_MAIN {
            return;
        }
        self.main.remove(pos as usize);
        for t in &mut self.tail {
            if t.0 > pos {
                t.0 -= 1;
            }
        }
        self.set_pos(slot, NOT_IN_MAIN);
        // Positions after it moved: renumber them and rebuild the masks (a removal is rare).
        self.reindex(slots, pos as usize);
    }

    /// Merges the tail into `main`.
    fn merge(&mut self, slots: &impl Slots) {
        let mut out = Vec::with_capacity(self.len());
        let mut tail = self.tail.iter().peekable();
        for (i, &s) in self.main.iter().enumerate() {
            while let Some(&(_, t)) = tail.next_if(|t| t.0 as usize == i) {
                out.push(t);
            }
            out.push(s);
        }
        out.extend(tail.map(|&(_, t)| t));
        self.main = out;
        self.tail.clear();
        self.reindex(slots, 0);
    }

    /// Renumbers positions from `from` on and rebuilds the masks from there.
    fn reindex(&mut self, slots: &impl Slots, from: usize) {
        use std::sync::atomic::AtomicU8;
        for i in from..self.main.len() {
            let s = self.main[i];
            self.set_pos(s, i as u32);
        }
        let blocks = self.main.len().div_ceil(BLOCK);
        self.masks.truncate(from / BLOCK);
        for b in self.masks.len()..blocks {
            let mut m = 0u8;
            for &s in &self.main[b * BLOCK..((b + 1) * BLOCK).min(self.main.len())] {
                m |= 1 << slots.state(s);
            }
            self.masks.push(AtomicU8::new(m));
        }
    }

    fn set_pos(&mut self, slot: u32, pos: u32) {
        let i = slot as usize;
        if i >= self.pos_of_slot.len() {
            self.pos_of_slot.resize(i + 1, NOT_IN_MAIN);
        }
        self.pos_of_slot[i] = pos;
    }

    /// Notes that `slot` entered `state`: walks of that state look at its block again.
    pub(crate) fn note_state(&self, slot: u32, state: u8) {
        if let Some(&pos) = self.pos_of_slot.get(slot as usize) {
            if pos != NOT_IN_MAIN {
                if let Some(m) = self.masks.get(pos as usize / BLOCK) {
                    m.fetch_or(1 << state, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    }

    /// The slots in id order after `after` (or from the beginning), optionally only those in
    /// `state`. Seeking costs a binary search; each further slot costs no string comparison,
    /// and a walk of one state skips the blocks that have none.
    pub(crate) fn iter_after<S: Slots>(
        &self,
        slots: S,
        after: Option<&str>,
        state: Option<u8>,
    ) -> OrderIter<'_, S> {
        let start = after.map_or(0, |a| self.position(&slots, a, true));
        let tail_start = match after {
            None => 0,
            Some(a) => self.tail.partition_point(|&(p, s)| {
                (p as usize) < start || (p as usize == start && slots.id(s) <= a)
            }),
        };
        OrderIter {
            index: self,
            slots,
            state,
            i: start,
            t: tail_start,
        }
    }
}

/// The iterator of [`OrderIndex::iter_after`].
pub(crate) struct OrderIter<'a, S> {
    index: &'a OrderIndex,
    slots: S,
    state: Option<u8>,
    i: usize,
    t: usize,
}

impl<S: Slots> Iterator for OrderIter<'_, S> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        use std::sync::atomic::Ordering::Relaxed;
        let idx = self.index;
        loop {
            if let Some(&(pos, s)) = idx.tail.get(self.t) {
                if pos as usize <= self.i {
                    self.t += 1;
                    if self.state.is_none_or(|st| self.slots.state(s) == st) {
                        return Some(s);
                    }
                    continue;
                }
            }
            if self.i >= idx.main.len() {
                return None;
            }
            if let Some(st) = self.state {
                // At a block's start, skip it if it has none of this state.
                if self.i.is_multiple_of(BLOCK) {
                    let b = self.i / BLOCK;
                    let bit = 1u8 << st;
                    if idx.masks[b].load(Relaxed) & bit == 0 {
                        self.skip_block();
                        continue;
                    }
                    let end = ((b + 1) * BLOCK).min(idx.main.len());
                    if !idx.main[self.i..end]
                        .iter()
                        .any(|&s| self.slots.state(s) == st)
                    {
                        idx.masks[b].fetch_and(!bit, Relaxed);
                        self.skip_block();
                        continue;
                    }
                }
                let s = idx.main[self.i];
                self.i += 1;
                if self.slots.state(s) == st {
                    return Some(s);
                }
                continue;
            }
            let s = idx.main[self.i];
            self.i += 1;
            return Some(s);
        }
    }
}

impl<S> OrderIter<'_, S> {
    /// Moves to the next block. Tail entries that go inside the skipped block are still
    /// yielded, in order, before the next block's first entry (the tail is checked first).
    fn skip_block(&mut self) {
        self.i = ((self.i / BLOCK + 1) * BLOCK).min(self.index.main.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    /// A small deterministic generator (tests must not depend on a random seed).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    #[test]
    fn the_id_table_agrees_with_a_hash_map_through_inserts_and_removals() {
        let mut keys: Vec<String> = Vec::new();
        let mut table = IdTable::default();
        let mut model: HashMap<String, u32> = HashMap::new();
        let mut rng = Lcg(7);
        for step in 0..20_000u32 {
            let k = format!("k{}", rng.next() % 3000);
            match model.get(&k) {
                Some(&v) if rng.next().is_multiple_of(2) => {
                    let got = table.remove(hash_key(&k), |x| keys[x as usize] == k);
                    assert_eq!(got, Some(v), "step {step}");
                    model.remove(&k);
                }
                Some(_) => {}
                None => {
                    let v = keys.len() as u32;
                    keys.push(k.clone());
                    table.insert(hash_key(&k), v);
                    model.insert(k, v);
                }
            }
            if step % 500 == 0 {
                for (k, v) in &model {
                    assert_eq!(
                        table.find(hash_key(k), |x| keys[x as usize] == *k),
                        Some(*v)
                    );
                }
                assert_eq!(table.len(), model.len());
            }
        }
        assert_eq!(table.find(hash_key("absent"), |_| true), None);
        // A full probe run that wraps around the end of the table still finds everything.
        let mut t = IdTable::default();
        let ks: Vec<String> = (0..14).map(|i| format!("w{i}")).collect();
        for (i, k) in ks.iter().enumerate() {
            t.insert(hash_key(k), i as u32);
        }
        for (i, k) in ks.iter().enumerate().rev() {
            assert_eq!(t.remove(hash_key(k), |v| v == i as u32), Some(i as u32));
            for (j, k2) in ks.iter().enumerate().take(i) {
                assert_eq!(t.find(hash_key(k2), |v| v == j as u32), Some(j as u32));
            }
        }
    }

    #[test]
    fn keys_with_one_hash_are_told_apart_by_the_callback() {
        // Two container ids of one node may share a 32-bit hash: the table keeps both entries
        // and a lookup checks the key itself.
        let mut t = IdTable::default();
        for v in 1..=3 {
            t.insert(0xdead_beef, v);
        }
        assert_eq!(t.remove(0xdead_beef, |v| v == 2), Some(2));
        assert_eq!(t.find(0xdead_beef, |v| v == 1), Some(1));
        assert_eq!(t.find(0xdead_beef, |v| v == 3), Some(3));
        assert_eq!(t.find(0xdead_beef, |v| v == 2), None);
        assert_eq!(t.len(), 2);
    }

    /// Slots as a test keeps them: id and state per slot number.
    #[derive(Default)]
    struct TestSlots {
        ids: Vec<Option<(String, u8)>>,
    }

    impl Slots for TestSlots {
        fn id(&self, slot: u32) -> &str {
            &self.ids[slot as usize].as_ref().unwrap().0
        }
        fn state(&self, slot: u32) -> u8 {
            self.ids[slot as usize].as_ref().unwrap().1
        }
    }

    #[test]
    fn the_order_index_walks_in_id_order_like_a_btree_through_churn() {
        let mut slots = TestSlots::default();
        let mut index = OrderIndex::default();
        let mut model: BTreeMap<String, u32> = BTreeMap::new();
        let mut rng = Lcg(11);
        for step in 0..40_000u32 {
            let id = format!("node-{:05}", rng.next() % 3000);
            match model.get(&id).copied() {
                Some(slot) if rng.next().is_multiple_of(4) => {
                    index.remove(&slots, slot);
                    slots.ids[slot as usize] = None;
                    model.remove(&id);
                }
                Some(slot) => {
                    // A state change.
                    let st = (rng.next() % 8) as u8;
                    slots.ids[slot as usize].as_mut().unwrap().1 = st;
                    index.note_state(slot, st);
                }
                None => {
                    let slot = slots.ids.len() as u32;
                    let st = (rng.next() % 8) as u8;
                    slots.ids.push(Some((id.clone(), st)));
                    index.insert(&slots, slot);
                    index.note_state(slot, st);
                    model.insert(id, slot);
                }
            }
            if step % 613 == 0 {
                let got: Vec<&str> = index
                    .iter_after(&slots, None, None)
                    .map(|s| slots.id(s))
                    .collect();
                let want: Vec<&str> = model.keys().map(String::as_str).collect();
                assert_eq!(got, want, "step {step}");
                assert_eq!(index.len(), model.len());
                for st in [0u8, 3, 7] {
                    let got: Vec<&str> = index
                        .iter_after(&slots, None, Some(st))
                        .map(|s| slots.id(s))
                        .collect();
                    let want: Vec<&str> = model
                        .iter()
                        .filter(|(_, s)| slots.state(**s) == st)
                        .map(|(k, _)| k.as_str())
                        .collect();
                    assert_eq!(got, want, "state {st} at step {step}");
                }
                // Seeks: after present keys and absent ones, with and without a state.
                for probe in
                    model
                        .keys()
                        .step_by(97)
                        .map(String::as_str)
                        .chain(["", "node-01234x", "z"])
                {
                    for st in [None, Some(2u8)] {
                        let got: Vec<&str> = index
                            .iter_after(&slots, Some(probe), st)
                            .take(5)
                            .map(|s| slots.id(s))
                            .collect();
                        let want: Vec<&str> = model
                            .range::<str, _>((
                                std::ops::Bound::Excluded(probe),
                                std::ops::Bound::Unbounded,
                            ))
                            .filter(|(_, s)| st.is_none_or(|st| slots.state(**s) == st))
                            .take(5)
                            .map(|(k, _)| k.as_str())
                            .collect();
                        assert_eq!(got, want, "after {probe:?} in {st:?} at step {step}");
                    }
                }
            }
        }
    }
}
