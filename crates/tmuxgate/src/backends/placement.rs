//! What placement keeps per backend, beside its tmux connection: the configured weight and
//! labels, the operator's drain flag and a smoothed latency figure. Kept apart from the
//! backend's health state so the two evolve independently.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::Backend;
use super::spec::BackendSpec;

/// A backend's placement state.
#[derive(Debug, Default)]
pub struct Placement {
    spec: OnceLock<BackendSpec>,
    draining: AtomicBool,
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

    /// The health probe's latency EWMA ([`super::health`]); zero when not measured yet.
    pub fn latency_ewma(&self) -> Duration {
        let ms = self.health_report().latency_ewma_ms.unwrap_or(0.0);
        Duration::from_secs_f64(ms.max(0.0) / 1000.0)
    }
}
