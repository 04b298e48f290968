//! A backend's circuit breaker: a pure state machine fed with probe results and the time.
//!
//! `closed` (normal) opens after `failures` consecutive failed or timed-out probes; `open`
//! admits nothing and turns `half-open` once `cooldown` has passed since it opened; the
//! next probe then decides: success closes it, failure opens it again for another cool-down.
//! No clock is read here: callers pass `now`, so tests drive it without sleeping.

use std::time::{Duration, Instant};

/// Where a breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls pass; failures are being counted.
    Closed,
    /// Calls fail fast until the cool-down has passed.
    Open,
    /// The cool-down passed: the next probe decides.
    HalfOpen,
}

impl BreakerState {
    /// Spelling in `/health`, `/metrics` and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }

    /// Gauge value in `/metrics`: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> u8 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        }
    }
}

/// `BREAKER_FAILURES` and `BREAKER_COOLDOWN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failures that open the breaker (at least 1).
    pub failures: u32,
    /// How long it stays open before a trial.
    pub cooldown: Duration,
}

impl Default for BreakerSettings {
    fn default() -> BreakerSettings {
        BreakerSettings {
            failures: 3,
            cooldown: Duration::from_secs(5),
        }
    }
}

/// A state change: `(from, to)`.
pub type Transition = (BreakerState, BreakerState);

/// One backend's breaker.
#[derive(Clone, Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    state: BreakerState,
    /// Consecutive failures while closed.
    failures: u32,
    opened_at: Option<Instant>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(settings: BreakerSettings) -> Breaker {
        Breaker {
            settings,
            state: BreakerState::Closed,
            failures: 0,
            opened_at: None,
        }
    }

    /// The state now.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Consecutive failures counted (0 after any success).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether new work may go to the backend: only when closed.
    pub fn admits(&self) -> bool {
        self.state == BreakerState::Closed
    }

    /// A probe succeeded.
    pub fn on_success(&mut self) -> Option<Transition> {
        self.failures = 0;
        match self.state {
            BreakerState::Closed | BreakerState::Open => None,
            BreakerState::HalfOpen => self.go(BreakerState::Closed, None),
        }
    }

    /// A probe failed or timed out at `now`.
    pub fn on_failure(&mut self, now: Instant) -> Option<Transition> {
        match self.state {
            BreakerState::Closed => {
                self.failures = self.failures.saturating_add(1);
                (self.failures >= self.settings.failures.max(1))
                    .then(|| self.go(BreakerState::Open, Some(now)))
                    .flatten()
            }
            BreakerState::HalfOpen => self.go(BreakerState::Open, Some(now)),
            BreakerState::Open => None,
        }
    }

    /// Lets the time pass: an open breaker whose cool-down is over turns half-open.
    pub fn tick(&mut self, now: Instant) -> Option<Transition> {
        let cooled = self
            .opened_at
            .is_some_and(|at| now.saturating_duration_since(at) >= self.settings.cooldown);
        match self.state {
            BreakerState::Open if cooled => self.go(BreakerState::HalfOpen, self.opened_at),
            _ => None,
        }
    }

    /// Back to closed with no failures counted (a freshly restarted server).
    pub fn reset(&mut self) -> Option<Transition> {
        self.failures = 0;
        match self.state {
            BreakerState::Closed => None,
            _ => self.go(BreakerState::Closed, None),
        }
    }

    fn go(&mut self, to: BreakerState, opened_at: Option<Instant>) -> Option<Transition> {
        let from = std::mem::replace(&mut self.state, to);
        self.opened_at = opened_at;
        if to == BreakerState::Closed {
            self.failures = 0;
        }
        Some((from, to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BreakerState::*;

    fn breaker() -> (Breaker, Instant) {
        let settings = BreakerSettings {
            failures: 3,
            cooldown: Duration::from_secs(5),
        };
        (Breaker::new(settings), Instant::now())
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let (mut b, t) = breaker();
        assert_eq!(b.on_failure(t), None);
        assert_eq!(b.on_failure(t), None);
        assert_eq!(b.on_success(), None, "a success resets the count");
        assert_eq!(b.on_failure(t), None);
        assert_eq!(b.on_failure(t), None);
        assert!(b.admits());
        assert_eq!(b.on_failure(t), Some((Closed, Open)));
        assert!(!b.admits());
        assert_eq!(b.on_failure(t), None, "already open");
    }

    #[test]
    fn half_opens_after_the_cooldown_and_the_trial_decides() {
        let (mut b, t) = breaker();
        for _ in 0..3 {
            b.on_failure(t);
        }
        assert_eq!(b.tick(t + Duration::from_millis(4999)), None);
        assert_eq!(b.on_success(), None, "no success counts while open");
        assert_eq!(b.tick(t + Duration::from_secs(5)), Some((Open, HalfOpen)));
        assert!(
            !b.admits(),
            "half-open admits no new work; the probe is the trial"
        );
        let later = t + Duration::from_secs(6);
        assert_eq!(b.on_failure(later), Some((HalfOpen, Open)));
        assert_eq!(b.tick(later + Duration::from_millis(4999)), None);
        assert_eq!(
            b.tick(later + Duration::from_secs(5)),
            Some((Open, HalfOpen))
        );
        assert_eq!(b.on_success(), Some((HalfOpen, Closed)));
        assert!(b.admits());
        assert_eq!(b.failures(), 0);
    }

    #[test]
    fn reset_closes_from_any_state() {
        let (mut b, t) = breaker();
        assert_eq!(b.reset(), None);
        for _ in 0..3 {
            b.on_failure(t);
        }
        assert_eq!(b.reset(), Some((Open, Closed)));
        assert_eq!(b.tick(t + Duration::from_secs(60)), None);
    }

    #[test]
    fn a_threshold_of_zero_behaves_as_one() {
        let mut b = Breaker::new(BreakerSettings {
            failures: 0,
            cooldown: Duration::ZERO,
        });
        let t = Instant::now();
        assert_eq!(b.on_failure(t), Some((Closed, Open)));
        assert_eq!(b.tick(t), Some((Open, HalfOpen)));
    }
}
