//! GCRA (the generic cell rate algorithm): a rate limit whose whole state per key is one
//! number, the theoretical arrival time (TAT) of the next request. A quota of `count` per
//! `window` with a burst of `burst` lets `burst` requests through at once, then one every
//! `window / count`.

use std::time::Duration;

/// One quota: an emission interval and a burst tolerance, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Time one request costs.
    interval_nanos: u64,
    /// How far ahead of now the TAT may run: `interval * (burst - 1)`.
    tolerance_nanos: u64,
}

impl Quota {
    /// `count` per `window`, at most `burst` at once (both at least 1).
    pub fn new(count: u64, window: Duration, burst: u64) -> Quota {
        let window_nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        let interval_nanos = (window_nanos / count.max(1)).max(1);
        Quota {
            interval_nanos,
            tolerance_nanos: interval_nanos.saturating_mul(burst.max(1) - 1),
        }
    }

    /// Time one unit costs, in nanoseconds.
    pub fn interval_nanos(&self) -> u64 {
        self.interval_nanos
    }

    /// How far ahead of now the TAT may run, in nanoseconds.
    pub fn tolerance_nanos(&self) -> u64 {
        self.tolerance_nanos
    }

    /// `bytes_per_second` with a bucket of `burst_bytes`, where one unit is one byte.
    pub fn bytes(bytes_per_second: u64, burst_bytes: u64) -> Quota {
        Quota::new(bytes_per_second, Duration::from_secs(1), burst_bytes)
    }

    /// Takes `cost` units at `now` (nanoseconds on a monotonic clock) from the state `tat`
    /// (0 for a key never seen). `Err(wait)`: refused, and nothing taken; retry after `wait`.
    pub fn take(&self, tat: &mut u64, now: u64, cost: u64) -> Result<(), Duration> {
        let increment = self.interval_nanos.saturating_mul(cost);
        let new_tat = (*tat).max(now).saturating_add(increment);
        let allow_at = new_tat.saturating_sub(increment.saturating_add(self.tolerance_nanos));
        if allow_at > now {
            return Err(Duration::from_nanos(allow_at - now));
        }
        *tat = new_tat;
        Ok(())
    }

    /// Whether a state is as good as new at `now` (a fresh key would be treated alike), so
    /// it can be forgotten without letting anything through that would have been refused.
    pub fn is_idle(&self, tat: u64, now: u64) -> bool {
        tat <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn a_burst_passes_then_one_per_interval() {
        let quota = Quota::new(10, Duration::from_secs(10), 3);
        let mut tat = 0;
        let now = 100 * SECOND;
        for _ in 0..3 {
            assert_eq!(quota.take(&mut tat, now, 1), Ok(()));
        }
        let wait = quota.take(&mut tat, now, 1).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        assert!(quota.take(&mut tat, now + SECOND - 1, 1).is_err());
        assert_eq!(quota.take(&mut tat, now + SECOND, 1), Ok(()));
        assert!(quota.take(&mut tat, now + SECOND, 1).is_err());
    }

    #[test]
    fn a_steady_rate_at_the_quota_always_passes() {
        let quota = Quota::new(100, Duration::from_secs(60), 1);
        let mut tat = 0;
        for i in 0..1000 {
            assert_eq!(
                quota.take(&mut tat, i * 600_000_000, 1),
                Ok(()),
                "request {i}"
            );
        }
    }

    #[test]
    fn byte_budgets_pass_a_paste_and_refuse_a_flood() {
        let quota = Quota::bytes(256 * 1024, 2 * 1024 * 1024);
        let mut tat = 0;
        let now = SECOND;
        assert_eq!(
            quota.take(&mut tat, now, 1024 * 1024),
            Ok(()),
            "a 1 MiB paste"
        );
        assert_eq!(quota.take(&mut tat, now, 1024 * 1024), Ok(()), "another");
        assert!(
            quota.take(&mut tat, now, 1024).is_err(),
            "the budget is spent"
        );
        // A refusal takes nothing: a second later 256 KiB more are allowed.
        assert_eq!(quota.take(&mut tat, now + SECOND, 256 * 1024), Ok(()));
    }

    #[test]
    fn idle_states_are_as_good_as_new() {
        let quota = Quota::new(1, Duration::from_secs(1), 1);
        let mut tat = 0;
        assert_eq!(quota.take(&mut tat, SECOND, 1), Ok(()));
        assert!(!quota.is_idle(tat, SECOND));
        assert!(quota.is_idle(tat, 2 * SECOND));
    }
}
