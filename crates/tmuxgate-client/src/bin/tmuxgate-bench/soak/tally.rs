//! What the soak's workers measured since the last sample: echo and command latencies,
//! connections churned and failures by worker, in one [`Tally`] they all record into and
//! the sampler empties every interval (so the tool's memory stays bounded however long the
//! run). Failures are also kept per worker for the whole run: their count and last message.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::stats::Latency;

/// Longest error message kept per worker kind.
const MESSAGE_CHARS: usize = 240;

/// Which kind of worker failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Worker {
    /// A typist: connect, attach, `exec cat`, or an echo.
    Typist,
    /// A read-only viewer: connect, attach, or its stream ended.
    Viewer,
    /// The `command-execute` worker.
    Exec,
    /// A churned connection: connect, its one request, or its close.
    Churn,
}

impl Worker {
    /// The name used in notes and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Worker::Typist => "typist",
            Worker::Viewer => "viewer",
            Worker::Exec => "exec",
            Worker::Churn => "churn",
        }
    }
}

/// One interval's figures.
pub struct Interval {
    /// Keystroke echo latency.
    pub echo: Latency,
    /// `command-execute` round trips that succeeded.
    pub exec: Latency,
    /// Connections opened, asked one request and closed.
    pub churned: u64,
    /// Failures by worker kind.
    pub errors: BTreeMap<Worker, u64>,
}

impl Interval {
    fn new() -> Interval {
        Interval {
            echo: Latency::new(),
            exec: Latency::new(),
            churned: 0,
            errors: BTreeMap::new(),
        }
    }

    /// Every failure of the interval.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The run's failures of one worker kind.
#[derive(Default)]
struct Failures {
    count: u64,
    last: String,
}

#[derive(Default)]
struct State {
    interval: Option<Interval>,
    failures: BTreeMap<Worker, Failures>,
}

/// Shared by every worker and the sampler; cheap to clone.
#[derive(Clone, Default)]
pub struct Tally {
    state: Arc<Mutex<State>>,
    viewers: Arc<AtomicU64>,
}

impl Tally {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        // A panicking worker cannot leave the figures half-written: recording is one step.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut state)
    }

    fn interval<R>(&self, f: impl FnOnce(&mut Interval) -> R) -> R {
        self.with(|state| f(state.interval.get_or_insert_with(Interval::new)))
    }

    /// One keystroke's echo.
    pub fn echo(&self, took: Duration) {
        self.interval(|i| i.echo.record(took));
    }

    /// One successful command.
    pub fn exec(&self, took: Duration) {
        self.interval(|i| i.exec.record(took));
    }

    /// One churned connection done.
    pub fn churned(&self) {
        self.interval(|i| i.churned += 1);
    }

    /// One failure of `worker`; the message is kept (shortened) for the final notes.
    pub fn error(&self, worker: Worker, error: impl std::fmt::Display) {
        let message: String = error.to_string().chars().take(MESSAGE_CHARS).collect();
        self.with(|state| {
            let interval = state.interval.get_or_insert_with(Interval::new);
            *interval.errors.entry(worker).or_default() += 1;
            let failures = state.failures.entry(worker).or_default();
            failures.count += 1;
            failures.last = message;
        });
    }

    /// The figures since the previous call; starts a fresh interval.
    pub fn take(&self) -> Interval {
        self.with(|state| state.interval.take())
            .unwrap_or_else(Interval::new)
    }

    /// `typist 3 (last: …)` per worker kind that failed during the run.
    pub fn failure_notes(&self) -> Vec<String> {
        self.with(|state| {
            state
                .failures
                .iter()
                .map(|(worker, f)| format!("{} {} (last: {})", worker.as_str(), f.count, f.last))
                .collect()
        })
    }

    /// Marks a viewer live until the guard is dropped.
    pub fn live_viewer(&self) -> LiveGuard {
        self.viewers.fetch_add(1, Ordering::Relaxed);
        LiveGuard(self.viewers.clone())
    }

    /// Viewers attached right now.
    pub fn viewers(&self) -> u64 {
        self.viewers.load(Ordering::Relaxed)
    }
}

/// Counts one live viewer while it exists.
pub struct LiveGuard(Arc<AtomicU64>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_reset_and_failures_stay() {
        let tally = Tally::default();
        tally.echo(Duration::from_micros(100));
        tally.churned();
        tally.error(Worker::Exec, "first");
        tally.error(Worker::Exec, "second");
        let first = tally.take();
        assert_eq!((first.echo.count(), first.churned), (1, 1));
        assert_eq!(first.error_count(), 2);
        let second = tally.take();
        assert_eq!((second.echo.count(), second.error_count()), (0, 0));
        assert_eq!(tally.failure_notes(), ["exec 2 (last: second)"]);
        let guard = tally.live_viewer();
        assert_eq!(tally.viewers(), 1);
        drop(guard);
        assert_eq!(tally.viewers(), 0);
    }
}
