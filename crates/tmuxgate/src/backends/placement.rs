//! What placement keeps per backend, beside its tmux connection: the configured weight and
//! labels, the operator's drain flag and a smoothed latency figure. Kept apart from the
//! backend's health state so the two evolve independently.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::Backend;
use super::spec::BackendSpec;

/// Weight of a new sample in the latency EWMA: about the last ten samples count.
const LATENCY_EWMA_ALPHA: f64 = 0.2;

/// A backend's placement state.
#[derive(Debug, Default)]
pub struct Placement {
    spec: OnceLock<BackendSpec>,
    draining: AtomicBool,
    latency_ewma_us: AtomicU64,
}

impl Backend {
    /// Sets the configured weight and labels; once, before the backend is used.
    pub(super) fn with_spec(self, spec: BackendSpec) -> Backend {
        let _ = self.placement.spec.set(spec);
        self
    }

    /// Relative share of new sessions (1 unless `BACKENDS_FILE` says otherwise).
    pub fn weight(&self) -> u32 {
        self.placement.spec.get().map_or(1, |s| s.weight)
    }

    /// Labels from `BACKENDS_FILE`.
    pub fn labels(&self) -> &[String] {
        self.placement.spec.get().map_or(&[], |s| &s.labels)
    }

    /// Whether an operator drains it: it takes no new sessions, existing ones continue.
    pub fn is_draining(&self) -> bool {
        self.placement.draining.load(Ordering::Acquire)
    }

    /// Starts or ends draining; returns whether that changed anything.
    pub fn set_draining(&self, draining: bool) -> bool {
        self.placement.draining.swap(draining, Ordering::AcqRel) != draining
    }

    /// Smoothed round trip of requests to this backend; zero when not measured yet.
    pub fn latency_ewma(&self) -> Duration {
        Duration::from_micros(self.placement.latency_ewma_us.load(Ordering::Relaxed))
    }

    /// Folds one measured round trip (a request, a probe) into [`Backend::latency_ewma`].
    pub fn record_latency(&self, sample: Duration) {
        let sample_us = (sample.as_micros() as u64).max(1);
        let cell = &self.placement.latency_ewma_us;
        let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
            Some(match old {
                0 => sample_us,
                old => {
                    let mixed = LATENCY_EWMA_ALPHA * sample_us as f64
                        + (1.0 - LATENCY_EWMA_ALPHA) * old as f64;
                    (mixed as u64).max(1)
                }
            })
        });
    }
}
