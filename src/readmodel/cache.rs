//! The read model's bounded cache: least recently used entries go first, one at a time, never the whole
//! cache; and answers "no such client", which anybody can make up by the thousand, are kept in a cache of
//! their own, so that a flood of made-up client ids cannot evict a single real client.
//!
//! Each half is two generations (an approximate LRU with O(1) operations): new entries and entries used again
//! go into the young generation; when it is full, the old generation is dropped (its entries were not used
//! since the previous turn: they are the least recently used) and the young one becomes the old one. Memory
//! is bounded by the capacity; a lookup that hits the young generation needs only a read lock.

use std::collections::HashMap;
use std::hash::Hash;

/// Two generations of at most `half` entries each.
pub struct Generations<K, V> {
    half: usize,
    young: HashMap<K, V>,
    old: HashMap<K, V>,
}

/// What a lookup found.
pub enum Found<'a, V> {
    Young(&'a V),
    /// Found among the least recently used: [`Generations::promote`] it under a write lock.
    Old,
    Missing,
}

impl<K: Hash + Eq + Clone, V: Clone> Generations<K, V> {
    pub fn new(capacity: usize) -> Self {
        Generations { half: (capacity / 2).max(1), young: HashMap::new(), old: HashMap::new() }
    }

    pub fn find<Q>(&self, key: &Q) -> Found<'_, V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.young.get(key) {
            Some(value) => Found::Young(value),
            None if self.old.contains_key(key) => Found::Old,
            None => Found::Missing,
        }
    }

    /// Moves an old entry into the young generation (it was just used); returns it, and how many entries a
    /// turn of the generations evicted.
    pub fn promote<Q>(&mut self, key: &Q) -> (Option<V>, usize)
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(value) = self.young.get(key) {
            return (Some(value.clone()), 0);
        }
        match self.old.remove_entry(key) {
            Some((key, value)) => (Some(value.clone()), self.insert(key, value)),
            None => (None, 0),
        }
    }

    /// Inserts an entry; returns how many entries were evicted to make room.
    pub fn insert(&mut self, key: K, value: V) -> usize {
        let mut evicted = 0;
        if self.young.len() >= self.half && !self.young.contains_key(&key) {
            evicted = self.old.len();
            self.old = std::mem::take(&mut self.young);
            self.old.remove(&key);
        }
        self.young.insert(key, value);
        evicted
    }

    pub fn remove<Q>(&mut self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.young.remove(key);
        self.old.remove(key);
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.young.retain(|k, v| keep(k, v));
        self.old.retain(|k, v| keep(k, v));
    }

    pub fn clear(&mut self) {
        self.young.clear();
        self.old.clear();
    }

    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(cache: &mut Generations<u32, u32>, key: u32) -> Option<u32> {
        match cache.find(&key) {
            Found::Young(value) => Some(*value),
            Found::Old => cache.promote(&key).0,
            Found::Missing => None,
        }
    }

    #[test]
    fn entries_used_since_the_last_turn_survive_the_next_and_memory_stays_bounded() {
        let mut cache = Generations::new(100);
        cache.insert(0, 0);
        let mut evicted = 0;
        for key in 1..10_000 {
            evicted += cache.insert(key, key);
            // Key 0 is used all the time; every other key once.
            assert_eq!(value(&mut cache, 0), Some(0), "after {key} insertions");
            assert!(cache.len() <= 100);
        }
        assert!(evicted > 9_000, "{evicted}");
        assert_eq!(value(&mut cache, 1), None, "used once, long ago");
        assert_eq!(value(&mut cache, 9_999), Some(9_999));
    }

    #[test]
    fn removed_entries_are_gone_from_both_generations() {
        let mut cache = Generations::new(4);
        for key in 0..3 {
            cache.insert(key, key);
        }
        cache.remove(&0);
        cache.remove(&2);
        assert_eq!((value(&mut cache, 0), value(&mut cache, 1), value(&mut cache, 2)), (None, Some(1), None));
        cache.retain(|key, _| *key != 1);
        assert!(cache.is_empty());
    }
}
