//! The small collections a node carries, shaped for a million nodes and for sharing with the
//! audit: containers (a short inline list, a hash map when a node runs many), and named marks
//! (holds, cordons) kept sorted in one shared, copy-on-write list, so an audit snapshot shares
//! them instead of copying and a node without any pays one pointer.

use crate::clock::Timestamp;
use crate::fxhash::FxHashMap;
use crate::text::{Key, Text};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A named hold: something on the node that must not be lost (a stopped server's world data,
/// a manual do-not-disrupt, a migration in flight).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub name: Text,
    pub detail: Text,
}

/// A named cordon: the node takes no new containers while it has one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cordon {
    pub name: Text,
    pub reason: Text,
    /// The node is being emptied on purpose: when its last container leaves while this cordon
    /// is in place, the idle grace does not apply.
    pub evacuate: bool,
    /// When it was placed (wall clock: it is only shown). Snapshots written by 0.2 do not
    /// have it (read as 0).
    #[serde(default)]
    pub placed_at_ms: Timestamp,
}

/// A node's free-form labels: key -> value. Shared with audit snapshots, so recording an entry
/// does not copy them; a node without labels holds no allocation and no reference count (the
/// common case, recorded on every entry, touches no shared memory).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Labels(Option<Arc<BTreeMap<String, String>>>);

/// What a node without labels reads.
static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

impl Labels {
    pub fn new(labels: BTreeMap<String, String>) -> Labels {
        Labels((!labels.is_empty()).then(|| Arc::new(labels)))
    }
}

impl std::ops::Deref for Labels {
    type Target = BTreeMap<String, String>;
    fn deref(&self) -> &BTreeMap<String, String> {
        self.0.as_deref().unwrap_or(&NO_LABELS)
    }
}

impl std::fmt::Debug for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BTreeMap::deserialize(d).map(Labels::new)
    }
}

/// Something with a name, the key of a [`Marks`] list.
pub trait Named {
    fn name(&self) -> &str;
}

impl Named for Hold {
    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for Cordon {
    fn name(&self) -> &str {
        &self.name
    }
}

/// Named marks, sorted by name, shared copy-on-write (an audit snapshot holds the same list).
/// Empty is no allocation.
#[derive(Clone, Debug)]
pub struct Marks<T>(Option<Arc<Vec<T>>>);

impl<T> Default for Marks<T> {
    fn default() -> Self {
        Marks(None)
    }
}

impl<T: PartialEq> PartialEq for Marks<T> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: Eq> Eq for Marks<T> {}

impl<T> std::ops::Deref for Marks<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T> Marks<T> {
    pub fn as_slice(&self) -> &[T] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl<T: Named + Clone> Marks<T> {
    fn find(&self, name: &str) -> Result<usize, usize> {
        self.as_slice().binary_search_by(|m| m.name().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&T> {
        self.find(name).ok().map(|i| &self.as_slice()[i])
    }

    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Adds or replaces the mark of that name; returns the one it replaced.
    pub fn insert(&mut self, mark: T) -> Option<T> {
        let at = self.find(mark.name());
        let list = Arc::make_mut(self.0.get_or_insert_with(Default::default));
        match at {
            Ok(i) => Some(std::mem::replace(&mut list[i], mark)),
            Err(i) => {
                list.insert(i, mark);
                None
            }
        }
    }

    /// Removes the mark of that name.
    pub fn remove(&mut self, name: &str) -> Option<T> {
        let i = self.find(name).ok()?;
        let list = Arc::make_mut(self.0.as_mut().expect("found above"));
        let removed = list.remove(i);
        if list.is_empty() {
            self.0 = None;
        }
        Some(removed)
    }

    /// Builds a list from marks in any order (the last of a name wins).
    pub fn from_iter_unsorted(items: impl IntoIterator<Item = T>) -> Self {
        let mut m = Marks::default();
        for item in items {
            m.insert(item);
        }
        m
    }
}

/// Serialised as a list, in name order.
impl<T: Serialize> Serialize for Marks<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(s)
    }
}

impl<'de, T: Deserialize<'de> + Named + Clone> Deserialize<'de> for Marks<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Marks::from_iter_unsorted(Vec::<T>::deserialize(d)?))
    }
}

/// Containers at or below this many live in a plain list; above, in a hash map (a node with
/// thousands of containers must not make every event O(n)).
const FEW: usize = 16;

/// The containers a node runs: id -> RAM in MB. Ids are [`Text`]: the fleet's container index
/// reads them here, so each id is stored once.
#[derive(Clone, Debug)]
pub enum Containers {
    Few(Vec<(Text, u64)>),
    /// Boxed: most nodes never need it, and it would make every node's list twice as big.
    Many(Box<FxHashMap<Text, u64>>),
}

impl Default for Containers {
    fn default() -> Self {
        Containers::Few(Vec::new())
    }
}

impl PartialEq for Containers {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(id, ram)| other.get(id) == Some(ram))
    }
}

impl Eq for Containers {}

impl Containers {
    pub fn len(&self) -> usize {
        match self {
            Containers::Few(v) => v.len(),
            Containers::Many(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, id: &str) -> Option<u64> {
        self.get_key_value(id).map(|(_, r)| r)
    }

    /// The stored id (shared with the fleet's index) and RAM of a container.
    pub fn get_key_value(&self, id: &str) -> Option<(&Text, u64)> {
        self.find(&Key::new(id))
    }

    /// [`Containers::get_key_value`] with a key made once for several lookups.
    pub(crate) fn find(&self, key: &Key<'_>) -> Option<(&Text, u64)> {
        match self {
            Containers::Few(v) => v.iter().find(|(c, _)| key.matches(c)).map(|(c, r)| (c, *r)),
            Containers::Many(m) => m.get_key_value(key.as_str()).map(|(c, r)| (c, *r)),
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    /// Adds a container or updates its RAM; returns the RAM it had, if it was there.
    pub fn insert(&mut self, id: &Text, ram_mb: u64) -> Option<u64> {
        match self {
            Containers::Few(v) => {
                if let Some((_, r)) = v.iter_mut().find(|(c, _)| *c == *id) {
                    return Some(std::mem::replace(r, ram_mb));
                }
                if v.len() < FEW {
                    // Grow one at a time at first: most nodes run one or two containers, and a
                    // million nodes would otherwise each reserve room for four.
                    if v.len() == v.capacity() {
                        v.reserve_exact(v.len().max(1));
                    }
                    v.push((id.clone(), ram_mb));
                    return None;
                }
                let mut m: FxHashMap<Text, u64> = v.drain(..).collect();
                m.insert(id.clone(), ram_mb);
                *self = Containers::Many(Box::new(m));
                None
            }
            Containers::Many(m) => match m.get_mut(id.as_str()) {
                Some(r) => Some(std::mem::replace(r, ram_mb)),
                None => {
                    m.insert(id.clone(), ram_mb);
                    None
                }
            },
        }
    }

    /// Removes a container; returns its RAM.
    pub fn remove(&mut self, id: &str) -> Option<u64> {
        match self {
            Containers::Few(v) => {
                let i = v.iter().position(|(c, _)| **c == *id)?;
                // Order does not matter in the list; keep the allocation for the next one.
                Some(v.swap_remove(i).1)
            }
            Containers::Many(m) => {
                let r = m.remove(id)?;
                if m.len() <= FEW / 2 {
                    *self = Containers::Few(m.drain().collect());
                }
                Some(r)
            }
        }
    }

    /// The containers, in no particular order.
    pub fn iter(&self) -> ContainersIter<'_> {
        match self {
            Containers::Few(v) => ContainersIter::Few(v.iter()),
            Containers::Many(m) => ContainersIter::Many(m.iter()),
        }
    }

    /// The containers ordered by id (for views and records).
    pub fn sorted(&self) -> Vec<(&Text, u64)> {
        let mut v: Vec<(&Text, u64)> = self.iter().collect();
        v.sort_unstable_by(|a, b| a.0.cmp(b.0));
        v
    }
}

/// The iterator of [`Containers::iter`].
pub enum ContainersIter<'a> {
    Few(std::slice::Iter<'a, (Text, u64)>),
    Many(std::collections::hash_map::Iter<'a, Text, u64>),
}

impl<'a> Iterator for ContainersIter<'a> {
    type Item = (&'a Text, u64);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            ContainersIter::Few(it) => it.next().map(|(c, r)| (c, *r)),
            ContainersIter::Many(it) => it.next().map(|(c, r)| (c, *r)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_stay_sorted_and_are_shared_until_written() {
        let mut m: Marks<Hold> = Marks::default();
        assert!(m.is_empty());
        for name in ["b", "a", "c"] {
            assert_eq!(
                m.insert(Hold {
                    name: name.into(),
                    detail: Text::EMPTY
                }),
                None
            );
        }
        let names: Vec<&str> = m.iter().map(|h| &*h.name).collect();
        assert_eq!(names, vec!["a", "b", "c"]);
        let shared = m.clone();
        let old = m.insert(Hold {
            name: "b".into(),
            detail: "new".into(),
        });
        assert_eq!(old.unwrap().detail, "");
        assert_eq!(shared.get("b").unwrap().detail, "", "the copy kept its own");
        assert_eq!(m.get("b").unwrap().detail, "new");
        assert!(m.remove("a").is_some() && m.remove("a").is_none());
        m.remove("b");
        m.remove("c");
        assert!(m.0.is_none(), "empty again costs nothing");
        let mut c: Marks<Cordon> = Marks::default();
        c.insert(Cordon {
            name: "disk".into(),
            reason: "97%".into(),
            evacuate: false,
            placed_at_ms: Timestamp(1),
        });
        assert!(c.contains("disk") && !c.contains("dis"));
    }

    #[test]
    fn containers_switch_to_a_map_and_back() {
        let mut c = Containers::default();
        for i in 0..40u64 {
            assert_eq!(c.insert(&Text::from(format!("c{i}")), i), None);
        }
        assert!(matches!(c, Containers::Many(_)));
        assert_eq!(c.insert(&Text::from("c3"), 99), Some(3));
        assert_eq!(c.get("c3"), Some(99));
        for i in 0..35u64 {
            assert!(c.remove(&format!("c{i}")).is_some());
        }
        assert!(matches!(c, Containers::Few(_)));
        assert_eq!(c.len(), 5);
        let ids: Vec<&str> = c.sorted().into_iter().map(|(id, _)| &**id).collect();
        assert_eq!(ids, vec!["c35", "c36", "c37", "c38", "c39"]);
        assert_eq!(c.remove("nope"), None);
        let same: Containers = {
            let mut d = Containers::default();
            for id in ["c39", "c38", "c37", "c36", "c35"] {
                d.insert(&Text::from_static(id), c.get(id).unwrap());
            }
            d
        };
        assert_eq!(c, same, "equality ignores the order");
    }
}
