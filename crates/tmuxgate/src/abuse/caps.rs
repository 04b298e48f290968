//! Connection caps per client address and per user: a count per key of the connections
//! open now, kept only while non-zero, so its memory follows the open connections. A
//! connection is counted when admitted and uncounted when it ends, by the same key; no
//! guard object is kept, so a connection's state does not grow.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// Open connections per key, each under a maximum.
pub struct Counts<K> {
    max: u32,
    open: Mutex<HashMap<K, u32>>,
}

impl<K: Hash + Eq + Clone> Counts<K> {
    /// At most `max` per key; 0: no cap (nothing is counted).
    pub fn new(max: u32) -> Counts<K> {
        Counts {
            max,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one more for `key`; `false` (and nothing counted) when it has `max` already.
    pub fn try_add(&self, key: &K) -> bool {
        if self.max == 0 {
            return true;
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key.clone()).or_insert(0);
        if *count >= self.max {
            return false;
        }
        *count += 1;
        true
    }

    /// Uncounts one connection of `key` (one that [`Counts::try_add`] admitted).
    pub fn remove(&self, key: &K) {
        if self.max == 0 {
            return;
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(key);
            }
        }
    }

    /// The cap (0: none).
    pub fn max(&self) -> u32 {
        self.max
    }

    /// Every key with its count.
    pub fn snapshot(&self) -> Vec<(K, u32)> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.iter().map(|(k, n)| (k.clone(), *n)).collect()
    }

    /// Keys with a connection open now.
    pub fn keys(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_at_most_max_and_a_removal_frees_one() {
        let counts = Counts::new(2);
        assert!(counts.try_add(&"a"));
        assert!(counts.try_add(&"a"));
        assert!(!counts.try_add(&"a"), "third refused");
        assert!(counts.try_add(&"b"), "other keys unaffected");
        counts.remove(&"a");
        assert!(counts.try_add(&"a"), "a place was freed");
    }

    #[test]
    fn keys_are_forgotten_when_their_last_connection_ends() {
        let counts = Counts::new(5);
        for k in 0..100 {
            assert!(counts.try_add(&k));
        }
        assert_eq!(counts.keys(), 100);
        for k in 0..100 {
            counts.remove(&k);
        }
        assert_eq!(counts.keys(), 0);
    }

    #[test]
    fn zero_means_no_cap() {
        let counts = Counts::<u8>::new(0);
        assert!((0..1000).all(|_| counts.try_add(&1)));
        assert_eq!(counts.keys(), 0);
    }
}
