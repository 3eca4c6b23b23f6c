//! Where the ring keeps its entries: fixed-size chunks, shared copy-on-write.
//!
//! Full chunks are sealed behind an `Arc`, so a snapshot captures them by cloning one pointer
//! per chunk, never an entry. Entries are appended to an unshared tail chunk, written in place
//! with no reference count to check; a capture copies only that tail (at most one chunk). A
//! sealed chunk whose entries have all been evicted is cleared and reused, so once the ring is
//! full it allocates nothing at all.

use super::AuditEntry;
use std::collections::VecDeque;
use std::sync::Arc;

/// Entries per chunk: large enough that the chunk pointers are few, small enough that the copy
/// of the tail is cheap.
pub(crate) const CHUNK: usize = 256;

/// A sequence of entries, oldest first, stored in chunks (see the module comment).
#[derive(Default)]
pub struct Entries {
    /// Full chunks, oldest first.
    sealed: VecDeque<Arc<Vec<AuditEntry>>>,
    /// The chunk being appended to (fewer than `CHUNK` entries).
    tail: Vec<AuditEntry>,
    /// Entries at the front of the first chunk (sealed, or the tail if none is) that were
    /// popped: still stored until their chunk goes, never visible.
    head: usize,
    /// Visible entries.
    len: usize,
    /// Entries written after the visible ones but not visible yet (a transaction's, until it
    /// commits): staging them in place saves copying each entry from a list into the ring.
    staged: usize,
    /// A cleared chunk kept for the next tail.
    spare: Option<Vec<AuditEntry>>,
}

impl Clone for Entries {
    /// Shares the sealed chunks and copies the tail (at most `CHUNK` entries).
    fn clone(&self) -> Self {
        debug_assert_eq!(self.staged, 0, "captured only between transactions");
        let mut tail = Vec::with_capacity(CHUNK);
        tail.extend(self.tail.iter().cloned());
        Entries {
            sealed: self.sealed.clone(),
            tail,
            head: self.head,
            len: self.len,
            staged: 0,
            spare: None,
        }
    }
}

impl std::fmt::Debug for Entries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Entries {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Entries {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entry at position `i` (0 is the oldest).
    pub fn get(&self, i: usize) -> Option<&AuditEntry> {
        if i >= self.len {
            return None;
        }
        self.physical(self.head + i)
    }

    fn physical(&self, at: usize) -> Option<&AuditEntry> {
        let in_sealed = self.sealed.len() * CHUNK;
        if at < in_sealed {
            self.sealed[at / CHUNK].get(at % CHUNK)
        } else {
            self.tail.get(at - in_sealed)
        }
    }

    pub fn front(&self) -> Option<&AuditEntry> {
        self.get(0)
    }

    pub fn back(&self) -> Option<&AuditEntry> {
        self.len.checked_sub(1).and_then(|i| self.get(i))
    }

    #[inline]
    pub fn push_back(&mut self, e: AuditEntry) {
        debug_assert_eq!(self.staged, 0);
        self.stage(e);
        self.publish_one();
    }

    /// Entries staged and not yet visible.
    pub(crate) fn staged(&self) -> usize {
        self.staged
    }

    /// The `k`th staged entry.
    pub(crate) fn get_staged(&self, k: usize) -> Option<&AuditEntry> {
        if k >= self.staged {
            return None;
        }
        self.physical(self.head + self.len + k)
    }

    /// Writes an entry after the others, not visible until [`Entries::publish_one`].
    #[inline]
    pub(crate) fn stage(&mut self, e: AuditEntry) {
        if self.tail.capacity() == 0 {
            self.tail = self
                .spare
                .take()
                .unwrap_or_else(|| Vec::with_capacity(CHUNK));
        }
        self.tail.push(e);
        self.staged += 1;
        if self.tail.len() == CHUNK {
            let next = self.spare.take().unwrap_or_default();
            let full = std::mem::replace(&mut self.tail, next);
            self.sealed.push_back(Arc::new(full));
        }
    }

    /// Makes the oldest staged entry visible (the newest visible one).
    pub(crate) fn publish_one(&mut self) {
        debug_assert!(self.staged > 0);
        self.staged -= 1;
        self.len += 1;
    }

    /// Removes every staged entry (a transaction that did not commit).
    pub(crate) fn unstage(&mut self) {
        while self.staged > 0 {
            if self.tail.is_empty() {
                // The entry is in the chunk sealed last: nothing else holds it during a
                // transaction, so it becomes the tail again without a copy.
                let Some(last) = self.sealed.pop_back() else {
                    break;
                };
                self.tail = Arc::try_unwrap(last).unwrap_or_else(|shared| (*shared).clone());
            }
            self.tail.pop();
            self.staged -= 1;
        }
    }

    /// Forgets the oldest entry. Its storage is released with its chunk.
    pub fn pop_front(&mut self) {
        if self.len == 0 {
            return;
        }
        self.head += 1;
        self.len -= 1;
        if self.head == CHUNK && !self.sealed.is_empty() {
            let chunk = self.sealed.pop_front().expect("checked above");
            self.head = 0;
            // Unless a snapshot still holds it, the chunk becomes the next tail.
            if let Ok(mut v) = Arc::try_unwrap(chunk) {
                v.clear();
                self.spare = Some(v);
            }
        } else if self.len == 0 && self.staged == 0 && self.sealed.is_empty() {
            // Empty again: start the tail over rather than keep dead entries in it.
            self.tail.clear();
            self.head = 0;
        }
    }

    /// Forgets the oldest `n` entries.
    pub fn drop_oldest(&mut self, n: usize) {
        for _ in 0..n.min(self.len) {
            self.pop_front();
        }
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &AuditEntry> + ExactSizeIterator + '_ {
        (0..self.len).map(move |i| self.get(i).expect("in range"))
    }

    /// The first position whose entry does not satisfy `pred` (entries satisfying it come first).
    pub fn partition_point(&self, mut pred: impl FnMut(&AuditEntry) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(self.get(mid).expect("in range")) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Bytes the chunks reserve (for the memory report).
    pub fn reserved_bytes(&self) -> usize {
        let chunks = self.sealed.len()
            + usize::from(self.tail.capacity() > 0)
            + usize::from(self.spare.is_some());
        chunks * CHUNK * std::mem::size_of::<AuditEntry>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditAction, AuditResult};
    use crate::clock::Timestamp;

    fn entry(seq: u64) -> AuditEntry {
        AuditEntry::from_record(
            crate::audit::AuditRecord::new(AuditAction::ScaleUp, "n", AuditResult::Success),
            Timestamp(seq as i64),
            seq,
        )
    }

    #[test]
    fn a_bounded_sequence_keeps_its_order_across_chunks_and_shares_them() {
        let mut e = Entries::default();
        let mut model = VecDeque::new();
        // Fewer rounds under Miri (a thousand times slower), still across several chunks.
        let (rounds, every) = if cfg!(miri) { (2, 197) } else { (5, 97) };
        for seq in 1..=(CHUNK as u64 * rounds + 17) {
            e.push_back(entry(seq));
            model.push_back(seq);
            if e.len() > CHUNK + 40 {
                e.pop_front();
                model.pop_front();
            }
            if seq % every == 0 {
                let copy = e.clone(); // a snapshot
                assert!(copy.iter().map(|x| x.seq).eq(model.iter().copied()));
            }
        }
        assert!(e.iter().map(|x| x.seq).eq(model.iter().copied()));
        assert!(e
            .iter()
            .rev()
            .map(|x| x.seq)
            .eq(model.iter().rev().copied()));
        assert_eq!(e.front().unwrap().seq, *model.front().unwrap());
        assert_eq!(e.back().unwrap().seq, *model.back().unwrap());
        assert_eq!(e.partition_point(|x| x.seq < model[10]), 10);
        assert!(e.sealed.len() <= 2, "chunks are released as they empty");
        // A snapshot taken now keeps its view while the ring moves on.
        let snapshot = e.clone();
        let before: Vec<u64> = snapshot.iter().map(|x| x.seq).collect();
        for seq in 10_000..10_300 {
            e.push_back(entry(seq));
            e.pop_front();
        }
        assert_eq!(snapshot.iter().map(|x| x.seq).collect::<Vec<_>>(), before);
        e.drop_oldest(usize::MAX);
        assert!(e.is_empty() && e.front().is_none() && e.back().is_none());
        e.push_back(entry(1));
        assert_eq!(e.iter().map(|x| x.seq).collect::<Vec<_>>(), vec![1]);
    }
}
