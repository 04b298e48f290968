//! Backend health: a periodic probe over each backend's admin connection, its latency as an
//! EWMA, the circuit breaker it feeds, and restarting servers that died.
//!
//! One monitor task per backend. While the server is up it sends `display -p ok` every
//! `HEALTH_CHECK_INTERVAL`, bounded by `HEALTH_PROBE_TIMEOUT`; a failed or late answer counts
//! against the breaker ([`super::breaker`]). While the breaker is open no probe is sent; once
//! the cool-down passed it turns half-open and the next probe decides. When the admin
//! connection ends (the server died) the monitor is woken and restarts the server with a
//! backoff from `RESTART_BACKOFF` doubling to [`RESTART_BACKOFF_MAX`]. Placement skips a
//! backend that is down or whose breaker is not closed, so nothing waits for it meanwhile.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::breaker::{Breaker, BreakerSettings, BreakerState, Transition};
use super::{Backend, BackendState};
use crate::audit::{Audit, EventKind, Record};

/// Deadline of every command on a backend's admin and session connections, and of attaching
/// a session connection: a hung server (`kill -STOP`) costs a request at most this long.
pub const BACKEND_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest wait between restart attempts.
pub const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Weight of the newest probe in the latency EWMA.
const EWMA_WEIGHT: f64 = 0.3;

/// `HEALTH_CHECK_INTERVAL`, `HEALTH_PROBE_TIMEOUT`, `TARGET_LATENCY`, `RESTART_BACKOFF` and
/// the breaker's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HealthSettings {
    /// Time between probes.
    pub interval: Duration,
    /// A probe not answered within this counts as a failure.
    pub probe_timeout: Duration,
    /// Latency EWMA above which a backend is `degraded`.
    pub target_latency: Duration,
    /// First wait before restarting a dead server.
    pub restart_backoff: Duration,
    /// The circuit breaker's thresholds.
    pub breaker: BreakerSettings,
}

impl Default for HealthSettings {
    fn default() -> HealthSettings {
        HealthSettings {
            interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            target_latency: Duration::from_millis(50),
            restart_backoff: Duration::from_millis(100),
            breaker: BreakerSettings::default(),
        }
    }
}

/// A backend's health as reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthState {
    /// Up, breaker closed, recent probes fast and successful.
    Healthy,
    /// Up and admitting sessions, but slow (EWMA above `TARGET_LATENCY`) or a probe failed.
    Degraded,
    /// Down, or its breaker is not closed: it takes no new work.
    Unhealthy,
}

impl HealthState {
    /// Spelling in `/health`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Healthy => "healthy",
            HealthState::Degraded => "degraded",
            HealthState::Unhealthy => "unhealthy",
        }
    }

    /// Gauge value in `/metrics`: 0 healthy, 1 degraded, 2 unhealthy.
    pub fn gauge(self) -> u8 {
        self as u8
    }
}

/// A point-in-time view of one backend's health.
#[derive(Clone, Debug)]
pub struct HealthReport {
    /// Overall state.
    pub state: HealthState,
    /// The breaker.
    pub breaker: BreakerState,
    /// Probe latency EWMA in ms (none before the first probe).
    pub latency_ewma_ms: Option<f64>,
    /// Probes failed or timed out since start.
    pub probe_failures: u64,
    /// Breaker state changes since start.
    pub breaker_transitions: u64,
    /// Times the server was started again after dying.
    pub restarts: u64,
    /// Why the last attempt to connect failed, while the backend is down.
    pub last_error: Option<String>,
}

struct Probed {
    breaker: Breaker,
    latency_ewma_ms: Option<f64>,
}

/// The health state a [`Backend`] carries.
pub struct BackendHealth {
    settings: HealthSettings,
    probed: Mutex<Probed>,
    /// Woken when the admin connection ends, so a restart does not wait for the next probe.
    pub(super) wake: Arc<Notify>,
    /// Woken when the breaker opens.
    opened: Notify,
    probe_failures: AtomicU64,
    transitions: AtomicU64,
    /// Successful `connect`s: the first start, then restarts.
    pub(super) connects: AtomicU64,
    /// Why the last connect failed, until one succeeds (for `/health`).
    last_error: Mutex<Option<String>>,
}

impl BackendHealth {
    pub(super) fn new(settings: HealthSettings) -> BackendHealth {
        BackendHealth {
            settings,
            probed: Mutex::new(Probed {
                breaker: Breaker::new(settings.breaker),
                latency_ewma_ms: None,
            }),
            wake: Arc::new(Notify::new()),
            opened: Notify::new(),
            probe_failures: AtomicU64::new(0),
            transitions: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Probed> {
        self.probed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The breaker's state.
    pub fn breaker(&self) -> BreakerState {
        self.lock().breaker.state()
    }

    /// Whether the breaker lets new work through.
    pub fn admits(&self) -> bool {
        self.lock().breaker.admits()
    }

    /// Records one probe: its latency on success, the time it took on failure.
    fn record(&self, elapsed: Duration, ok: bool, now: Instant) -> Option<Transition> {
        let mut probed = self.lock();
        let sample = elapsed.as_secs_f64() * 1000.0;
        probed.latency_ewma_ms = Some(match probed.latency_ewma_ms {
            Some(old) => EWMA_WEIGHT * sample + (1.0 - EWMA_WEIGHT) * old,
            None => sample,
        });
        let transition = if ok {
            probed.breaker.on_success()
        } else {
            self.probe_failures.fetch_add(1, Ordering::Relaxed);
            probed.breaker.on_failure(now)
        };
        self.counted(transition)
    }

    fn tick(&self, now: Instant) -> Option<Transition> {
        let transition = self.lock().breaker.tick(now);
        self.counted(transition)
    }

    fn counted(&self, transition: Option<Transition>) -> Option<Transition> {
        if let Some((_, to)) = transition {
            self.transitions.fetch_add(1, Ordering::Relaxed);
            if to == BreakerState::Open {
                self.opened.notify_waiters();
            }
        }
        transition
    }

    /// Resolves once the breaker is open (at once if it is): calls in flight give up then.
    pub(super) async fn opened(&self) {
        let notified = self.opened.notified();
        tokio::pin!(notified);
        // Registered before looking, so an opening in between is not missed.
        notified.as_mut().enable();
        if self.breaker() == BreakerState::Open {
            return;
        }
        notified.await;
    }

    /// The report for a backend that is `up` or not.
    pub fn report(&self, up: bool) -> HealthReport {
        let probed = self.lock();
        let breaker = probed.breaker.state();
        let target_ms = self.settings.target_latency.as_secs_f64() * 1000.0;
        let slow = probed.latency_ewma_ms.is_some_and(|ms| ms > target_ms);
        let state = if !up || breaker != BreakerState::Closed {
            HealthState::Unhealthy
        } else if slow || probed.breaker.failures() > 0 {
            HealthState::Degraded
        } else {
            HealthState::Healthy
        };
        HealthReport {
            state,
            breaker,
            latency_ewma_ms: probed.latency_ewma_ms,
            probe_failures: self.probe_failures.load(Ordering::Relaxed),
            breaker_transitions: self.transitions.load(Ordering::Relaxed),
            restarts: self.connects.load(Ordering::Relaxed).saturating_sub(1),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// Records why connecting failed (`None` once it worked).
    pub(super) fn set_last_error(&self, error: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }
}

/// Watches one backend until `cancel`: probes it while up, restarts it while down.
pub(super) async fn monitor(backend: Weak<Backend>, audit: Audit, cancel: CancellationToken) {
    let Some((wake, first)) = backend
        .upgrade()
        .map(|b| (b.health.wake.clone(), b.health.settings.restart_backoff))
    else {
        return;
    };
    let mut backoff = first;
    // The first probe at once, so `/health` has a latency from the start.
    let mut probed = false;
    loop {
        let Some(b) = backend.upgrade() else { return };
        let down = b.state() == BackendState::Down;
        let never_up = b.health.connects.load(Ordering::Relaxed) == 0;
        let wait = if down && never_up && !std::mem::replace(&mut probed, true) {
            // A remote or operator's backend connects in the background: at once.
            Duration::ZERO
        } else if down {
            let wait = backoff;
            backoff = next_backoff(backoff);
            wait
        } else if !std::mem::replace(&mut probed, true) {
            Duration::ZERO
        } else {
            backoff = first;
            b.health.settings.interval
        };
        drop(b);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            // The server died: start over, so the restart waits the backoff, not the interval.
            _ = wake.notified() => continue,
            _ = cancel.cancelled() => return,
        }
        let Some(b) = backend.upgrade() else { return };
        if cancel.is_cancelled() {
            return;
        }
        if b.state() == BackendState::Down {
            restart(&b, &audit).await;
        } else {
            check(&b, &audit).await;
        }
    }
}

/// The wait after `backoff` for a server that is still down: doubled, at most
/// [`RESTART_BACKOFF_MAX`].
fn next_backoff(backoff: Duration) -> Duration {
    backoff.saturating_mul(2).min(RESTART_BACKOFF_MAX)
}

async fn restart(b: &Backend, audit: &Audit) {
    let first = b.health.connects.load(Ordering::Relaxed) == 0;
    match b.connect().await {
        Ok(()) => {
            b.health.set_last_error(None);
            let reason = if first { "connected" } else { "restarted" };
            tracing::info!(backend = %b.id, "backend {reason}");
            audit.record(
                Record::new(EventKind::BackendStateChanged, None)
                    .backend(&b.id)
                    .reason(reason)
                    .detail("down -> up"),
            );
        }
        Err(e) => {
            tracing::warn!(backend = %b.id, address = %b.address(), error = %e,
                "backend connect failed");
            b.health.set_last_error(Some(e.to_string()));
        }
    }
}

/// One health check: lets the cool-down pass, then probes unless the breaker is open.
async fn check(b: &Backend, audit: &Audit) {
    if let Some(t) = b.health.tick(Instant::now()) {
        transitioned(b, audit, t);
    }
    if b.health.breaker() == BreakerState::Open {
        return;
    }
    let started = Instant::now();
    let ok = b.probe().await;
    if let Some(t) = b.health.record(started.elapsed(), ok, Instant::now()) {
        transitioned(b, audit, t);
    }
}

fn transitioned(b: &Backend, audit: &Audit, (from, to): Transition) {
    let reason = match to {
        BreakerState::Open => "breaker-open",
        BreakerState::HalfOpen => "breaker-half-open",
        BreakerState::Closed => "breaker-closed",
    };
    tracing::warn!(backend = %b.id, from = from.as_str(), to = to.as_str(), "circuit breaker");
    audit.record(
        Record::new(EventKind::BackendStateChanged, None)
            .backend(&b.id)
            .reason(reason)
            .detail(format!("{} -> {}", from.as_str(), to.as_str())),
    );
}

/// Per-backend gauges and counters for `/metrics`, labelled `backend="tmux-N"`.
pub fn render_prometheus(backends: &[Arc<Backend>], out: &mut String) {
    let reports: Vec<_> = backends
        .iter()
        .map(|b| (b.id.as_str(), b.health_report()))
        .collect();
    type Value = fn(&HealthReport) -> String;
    let families: [(&str, &str, &str, Value); 6] = [
        (
            "tmuxgate_backend_health",
            "Backend health: 0 healthy, 1 degraded, 2 unhealthy.",
            "gauge",
            |r| r.state.gauge().to_string(),
        ),
        (
            "tmuxgate_backend_breaker_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open.",
            "gauge",
            |r| r.breaker.gauge().to_string(),
        ),
        (
            "tmuxgate_backend_latency_ewma_seconds",
            "Health probe latency, exponentially weighted moving average.",
            "gauge",
            |r| format!("{}", r.latency_ewma_ms.unwrap_or(0.0) / 1000.0),
        ),
        (
            "tmuxgate_backend_probe_failures_total",
            "Health probes failed or timed out.",
            "counter",
            |r| r.probe_failures.to_string(),
        ),
        (
            "tmuxgate_backend_breaker_transitions_total",
            "Circuit breaker state changes.",
            "counter",
            |r| r.breaker_transitions.to_string(),
        ),
        (
            "tmuxgate_backend_restarts_total",
            "Times a dead backend server was started again.",
            "counter",
            |r| r.restarts.to_string(),
        ),
    ];
    for (name, help, kind, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (id, report) in &reports {
            let _ = writeln!(out, "{name}{{backend=\"{id}\"}} {}", value(report));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health() -> BackendHealth {
        BackendHealth::new(HealthSettings {
            target_latency: Duration::from_millis(10),
            ..HealthSettings::default()
        })
    }

    #[test]
    fn restart_backoff_doubles_up_to_the_maximum() {
        let mut wait = Duration::from_millis(100);
        let mut waits = Vec::new();
        for _ in 0..10 {
            waits.push(wait.as_millis());
            wait = next_backoff(wait);
        }
        assert_eq!(
            waits,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]
        );
    }

    #[test]
    fn states_follow_latency_failures_and_the_breaker() {
        let h = health();
        let now = Instant::now();
        assert_eq!(h.report(true).state, HealthState::Healthy);
        assert_eq!(h.report(false).state, HealthState::Unhealthy);
        h.record(Duration::from_millis(1), true, now);
        assert_eq!(h.report(true).state, HealthState::Healthy);
        h.record(Duration::from_millis(100), true, now);
        let report = h.report(true);
        assert_eq!(report.state, HealthState::Degraded, "{report:?}");
        for _ in 0..20 {
            h.record(Duration::from_millis(1), true, now);
        }
        assert_eq!(
            h.report(true).state,
            HealthState::Healthy,
            "the EWMA decays"
        );
        h.record(Duration::from_millis(1), false, now);
        assert_eq!(h.report(true).state, HealthState::Degraded);
        h.record(Duration::from_millis(1), false, now);
        let opened = h.record(Duration::from_millis(1), false, now);
        assert_eq!(opened, Some((BreakerState::Closed, BreakerState::Open)));
        let report = h.report(true);
        assert_eq!(report.state, HealthState::Unhealthy);
        assert_eq!((report.probe_failures, report.breaker_transitions), (3, 1));
    }
}
