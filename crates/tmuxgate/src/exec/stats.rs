//! Command execution counts by outcome and the execution latency distribution, for
//! `/metrics` and the `metrics` request.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::metrics::Latency;

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Ran and exited 0.
    Ok,
    /// Ran and exited non-zero.
    Failed,
    /// Ran out of time and was interrupted.
    Timeout,
    /// Refused by the policy.
    Blocked,
    /// The session was busy (`conflict`).
    Busy,
    /// Anything else (the session ended, tmux failed).
    Error,
}

impl Outcome {
    const ALL: [Outcome; 6] = [
        Outcome::Ok,
        Outcome::Failed,
        Outcome::Timeout,
        Outcome::Blocked,
        Outcome::Busy,
        Outcome::Error,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Timeout => "timeout",
            Outcome::Blocked => "blocked",
            Outcome::Busy => "busy",
            Outcome::Error => "error",
        }
    }
}

/// Counts per outcome, and the latency of commands that ran (typed to finished).
pub struct ExecStats {
    counts: [AtomicU64; Outcome::ALL.len()],
    latency: Latency,
}

impl Default for ExecStats {
    fn default() -> Self {
        ExecStats {
            counts: Default::default(),
            latency: Latency::new(),
        }
    }
}

impl ExecStats {
    /// Records one attempt; the latency only when the command ran.
    pub fn record(&self, outcome: Outcome, elapsed: Duration) {
        self.counts[outcome as usize].fetch_add(1, Ordering::Relaxed);
        if matches!(outcome, Outcome::Ok | Outcome::Failed | Outcome::Timeout) {
            self.latency.record(elapsed);
        }
    }

    /// Attempts that ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.counts[outcome as usize].load(Ordering::Relaxed)
    }

    /// JSON for the `metrics` request.
    pub fn summary(&self) -> Value {
        let counts: serde_json::Map<String, Value> = Outcome::ALL
            .iter()
            .map(|o| (o.as_str().to_owned(), self.count(*o).into()))
            .collect();
        json!({ "outcomes": counts, "latency": self.latency.summary() })
    }

    /// Prometheus text.
    pub fn render(&self, out: &mut String) {
        let name = "tmuxgate_commands_total";
        let _ = writeln!(
            out,
            "# HELP {name} command-execute attempts (batch entries too), by outcome.\n# TYPE {name} counter"
        );
        for o in Outcome::ALL {
            let _ = writeln!(
                out,
                "{name}{{outcome=\"{}\"}} {}",
                o.as_str(),
                self.count(o)
            );
        }
        let name = "tmuxgate_command_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from typing a command to its end mark.\n# TYPE {name} histogram"
        );
        self.latency.render(out, name, "kind=\"command\"");
    }
}
