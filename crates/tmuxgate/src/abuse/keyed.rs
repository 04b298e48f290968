//! A rate limiter per key (client address, user) whose memory is bounded however many
//! distinct keys arrive: at most `capacity` keys are tracked. When the map is full, keys
//! whose state is idle (as good as new) are forgotten, which loses nothing; if it is still
//! full, a new key shares one overflow state with every other untracked key, so inventing
//! addresses buys an attacker one quota between all of them, not one each.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::gcra::Quota;

/// Keys tracked by default: about 40 bytes each, so a few MiB at most.
pub const DEFAULT_CAPACITY: usize = 65_536;

/// A full map is swept for idle keys at most this often; between sweeps, new keys share
/// the overflow state (a sweep is linear in the map's size).
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// A GCRA limiter per key.
pub struct KeyedLimiter<K> {
    quota: Quota,
    capacity: usize,
    epoch: Instant,
    state: Mutex<State<K>>,
}

struct State<K> {
    tats: HashMap<K, u64>,
    overflow: u64,
    last_sweep: u64,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// The quota each key gets.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// A limiter applying `quota` to each of at most `capacity` keys.
    pub fn new(quota: Quota, capacity: usize) -> KeyedLimiter<K> {
        KeyedLimiter {
            quota,
            capacity: capacity.max(1),
            epoch: Instant::now(),
            state: Mutex::new(State {
                tats: HashMap::new(),
                overflow: 0,
                last_sweep: 0,
            }),
        }
    }

    /// Takes one unit for `key`; `Err(wait)` when over the limit.
    pub fn check<Q>(&self, key: &Q) -> Result<(), Duration>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.check_at(key, self.now())
    }

    fn now(&self) -> u64 {
        // Offset by a second so that 0 (a fresh state) is always in the past.
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX) + 1_000_000_000
    }

    fn check_at<Q>(&self, key: &Q, now: u64) -> Result<(), Duration>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *state;
        if let Some(tat) = state.tats.get_mut(key) {
            return self.quota.take(tat, now, 1);
        }
        if state.tats.len() >= self.capacity
            && now.saturating_sub(state.last_sweep) >= SWEEP_INTERVAL.as_nanos() as u64
        {
            state.last_sweep = now;
            let quota = self.quota;
            state.tats.retain(|_, tat| !quota.is_idle(*tat, now));
        }
        if state.tats.len() >= self.capacity {
            return self.quota.take(&mut state.overflow, now, 1);
        }
        let mut tat = 0;
        let verdict = self.quota.take(&mut tat, now, 1);
        state.tats.insert(key.to_owned(), tat);
        verdict
    }

    /// Keys tracked now.
    pub fn tracked(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tats
            .len()
    }

    /// Forgets every key whose state is idle; for a periodic sweep.
    pub fn prune(&self) {
        let now = self.now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let quota = self.quota;
        state.tats.retain(|_, tat| !quota.is_idle(*tat, now));
        state.last_sweep = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_stays_bounded_after_100_000_distinct_keys() {
        let capacity = 10_000;
        let limiter = KeyedLimiter::new(Quota::new(10, Duration::from_secs(60), 5), capacity);
        let now = limiter.now();
        for key in 0..100_000u32 {
            let _ = limiter.check_at(&key, now);
        }
        assert_eq!(limiter.tracked(), capacity);
        let state = limiter.state.lock().unwrap();
        // The map's allocation, not just its length, stays within twice the capacity.
        assert!(
            state.tats.capacity() <= 2 * capacity,
            "{}",
            state.tats.capacity()
        );
    }

    #[test]
    fn untracked_keys_share_one_quota() {
        let limiter = KeyedLimiter::new(Quota::new(1, Duration::from_secs(60), 3), 2);
        let now = limiter.now();
        assert!(limiter.check_at(&1, now).is_ok());
        assert!(limiter.check_at(&2, now).is_ok());
        let overflow: Vec<bool> = (3..10).map(|k| limiter.check_at(&k, now).is_ok()).collect();
        assert_eq!(overflow, [true, true, true, false, false, false, false]);
    }

    #[test]
    fn idle_keys_make_room_for_new_ones() {
        let limiter = KeyedLimiter::new(Quota::new(1, Duration::from_secs(1), 1), 2);
        let now = limiter.now();
        assert!(limiter.check_at(&1, now).is_ok());
        assert!(limiter.check_at(&2, now).is_ok());
        let later = now + 2_000_000_000;
        assert!(limiter.check_at(&3, later).is_ok());
        assert!(
            limiter.check_at(&3, later).is_err(),
            "3 is tracked on its own"
        );
        assert_eq!(limiter.tracked(), 1);
    }

    #[test]
    fn each_key_has_its_own_quota() {
        let limiter = KeyedLimiter::new(Quota::new(1, Duration::from_secs(60), 2), 100);
        let now = limiter.now();
        assert!(limiter.check_at(&"a", now).is_ok());
        assert!(limiter.check_at(&"a", now).is_ok());
        assert!(limiter.check_at(&"a", now).is_err());
        assert!(limiter.check_at(&"b", now).is_ok());
    }
}
