//! A bounded cache keyed by bytes a client sent (a sealed session cookie, a bearer token), for
//! work that is costly to repeat: opening a cookie, verifying a signature. A hit needs the very
//! same bytes (the map compares them whole after std's randomly keyed SipHash, so a client can
//! neither aim at another's entry nor flood one bucket); the entry's own expiry is the caller's
//! to check. When full, the CLOCK rule evicts an entry not used since the hand last passed it,
//! so memory stays bounded whatever the number of users.

use std::collections::HashMap;
use std::rc::Rc;

struct Slot<V> {
    key: Rc<[u8]>,
    value: V,
    used: bool,
}

pub struct BoundedCache<V> {
    index: HashMap<Rc<[u8]>, usize>,
    slots: Vec<Slot<V>>,
    hand: usize,
    capacity: usize,
    /// Longer keys are not cached (they would make the bound on memory meaningless).
    max_key: usize,
}

impl<V> std::fmt::Debug for BoundedCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedCache")
            .field("len", &self.slots.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl<V> BoundedCache<V> {
    /// A cache of at most `capacity` entries with keys of at most `max_key` bytes; capacity 0
    /// caches nothing.
    pub fn new(capacity: usize, max_key: usize) -> Self {
        Self {
            index: HashMap::new(),
            slots: Vec::new(),
            hand: 0,
            capacity,
            max_key,
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn get(&mut self, key: &[u8]) -> Option<&V> {
        let i = *self.index.get(key)?;
        let slot = self.slots.get_mut(i)?;
        slot.used = true;
        Some(&slot.value)
    }

    pub fn remove(&mut self, key: &[u8]) {
        let Some(i) = self.index.remove(key) else {
            return;
        };
        if i >= self.slots.len() {
            return;
        }
        self.slots.swap_remove(i);
        // The last slot moved into `i`.
        if let Some(moved) = self.slots.get(i) {
            self.index.insert(moved.key.clone(), i);
        }
        if self.hand >= self.slots.len() {
            self.hand = 0;
        }
    }

    pub fn insert(&mut self, key: &[u8], value: V) {
        if self.capacity == 0 || key.len() > self.max_key {
            return;
        }
        if let Some(slot) = self.index.get(key).and_then(|&i| self.slots.get_mut(i)) {
            slot.value = value;
            slot.used = true;
            return;
        }
        let key: Rc<[u8]> = Rc::from(key);
        let slot = Slot {
            key: key.clone(),
            value,
            used: false,
        };
        if self.slots.len() < self.capacity {
            self.index.insert(key, self.slots.len());
            self.slots.push(slot);
            return;
        }
        let victim = self.victim();
        if let Some(old) = self.slots.get_mut(victim) {
            self.index.remove(&old.key);
            *old = slot;
            self.index.insert(key, victim);
        }
    }

    /// The CLOCK hand's next unused slot; every used slot it passes gets a second chance. Two
    /// turns at most: after one, every bit it passed is clear.
    fn victim(&mut self) -> usize {
        let n = self.slots.len();
        for _ in 0..n.saturating_mul(2) {
            let at = self.hand;
            self.hand = at.saturating_add(1).checked_rem(n).unwrap_or(0);
            match self.slots.get_mut(at) {
                Some(slot) if slot.used => slot.used = false,
                _ => return at,
            }
        }
        self.hand
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_needs_the_same_bytes() {
        let mut c = BoundedCache::new(4, 64);
        c.insert(b"cookie-a", 1);
        assert_eq!(c.get(b"cookie-a"), Some(&1));
        assert_eq!(c.get(b"cookie-b"), None);
        assert_eq!(c.get(b"cookie-"), None);
        assert_eq!(c.get(b"cookie-a "), None);
    }

    #[test]
    fn memory_stays_bounded_whatever_the_number_of_keys() {
        let mut c = BoundedCache::new(8, 64);
        for i in 0..10_000u32 {
            c.insert(&i.to_le_bytes(), i);
            assert!(c.len() <= 8);
        }
        assert_eq!(c.index.len(), c.len());
    }

    #[test]
    fn keys_over_the_size_limit_and_a_zero_capacity_cache_nothing() {
        let mut c = BoundedCache::new(8, 4);
        c.insert(b"12345", 1);
        assert!(c.is_empty());
        let mut off = BoundedCache::new(0, 64);
        off.insert(b"1", 1);
        assert!(off.is_empty());
    }

    #[test]
    fn an_entry_in_use_survives_a_sweep_that_evicts_unused_ones() {
        let mut c = BoundedCache::new(3, 64);
        for k in [b"a", b"b", b"c"] {
            c.insert(k, k[0]);
        }
        for _ in 0..5 {
            // "a" is used between every insert; the newcomers push each other out.
            assert!(c.get(b"a").is_some());
            c.insert(b"x", 0);
            c.insert(b"y", 0);
        }
        assert_eq!(c.get(b"a"), Some(&b'a'));
    }

    #[test]
    fn removing_keeps_the_index_true() {
        let mut c = BoundedCache::new(4, 64);
        for k in [b"a", b"b", b"c", b"d"] {
            c.insert(k, k[0]);
        }
        c.remove(b"a");
        c.remove(b"zz");
        assert_eq!(c.get(b"a"), None);
        for k in [b"b", b"c", b"d"] {
            assert_eq!(c.get(k), Some(&k[0]));
        }
        c.insert(b"e", b'e');
        assert_eq!(c.len(), 4);
        assert_eq!(c.get(b"e"), Some(&b'e'));
    }
}
