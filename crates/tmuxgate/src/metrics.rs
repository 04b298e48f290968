//! Gateway statistics: counters and latency histograms, rendered as Prometheus text for
//! `/metrics` and as JSON for the `metrics` request.
//!
//! Each [`Server`](crate::Server) owns its own `Stats` rather than installing a process-wide
//! recorder, so several gateways in one process (tests, embedding) never mix their figures.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tmuxgate_protocol::Request;

use crate::abuse::AbuseCounters;
use crate::audit::AuditCounters;
use crate::tls::TlsCounters;

/// Upper bounds (seconds) of the Prometheus latency buckets.
const BUCKETS_SECONDS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// Label for requests that could not be decoded.
const INVALID_TYPE: &str = "invalid";

/// One latency distribution: Prometheus buckets plus an HDR histogram for percentiles.
pub(crate) struct Latency {
    buckets: [AtomicU64; BUCKETS_SECONDS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
    hdr: Mutex<Histogram<u64>>,
}

impl Latency {
    pub(crate) fn new() -> Latency {
        Latency {
            buckets: Default::default(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
            // Microseconds, 1 µs .. 60 s, 2 significant digits.
            hdr: Mutex::new(
                Histogram::new_with_bounds(1, 60_000_000, 2).expect("static bounds are valid"),
            ),
        }
    }

    pub(crate) fn record(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (bound, bucket) in BUCKETS_SECONDS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
        let micros = (elapsed.as_micros() as u64).clamp(1, 60_000_000);
        let _ = self
            .hdr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(micros);
    }

    pub(crate) fn summary(&self) -> Value {
        let hdr = self.hdr.lock().unwrap_or_else(|e| e.into_inner());
        let ms = |micros: u64| micros as f64 / 1000.0;
        json!({
            "count": hdr.len(),
            "avgMs": hdr.mean() / 1000.0,
            "p95Ms": ms(hdr.value_at_quantile(0.95)),
            "p99Ms": ms(hdr.value_at_quantile(0.99)),
        })
    }

    pub(crate) fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (bound, bucket) in BUCKETS_SECONDS.iter().zip(&self.buckets) {
            let n = bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {n}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Levels the metrics read from the gateway's parts at the time of asking.
#[derive(Debug, Default, Clone, Copy)]
pub struct Levels {
    /// Live tmux sessions.
    pub sessions: usize,
    /// Backends whose tmux server is up.
    pub backends_up: usize,
    /// Output held in the attached panes' logs.
    pub pane_log_bytes: u64,
}

/// Everything the gateway counts.
pub struct Stats {
    /// Connections open now.
    pub connections: AtomicU64,
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Connections refused at `MAX_CONNECTIONS`, `MAX_CONNECTIONS_PER_IP` or
    /// `MAX_CONNECTIONS_PER_USER`.
    pub connections_refused: AtomicU64,
    /// Upgrades refused with 403 because of their `Origin` (see [`crate::origin`]).
    pub connections_forbidden: AtomicU64,
    /// Text frames received.
    pub messages_in: AtomicU64,
    /// Text frames sent.
    pub messages_out: AtomicU64,
    /// Payload bytes received (text and binary).
    pub bytes_in: AtomicU64,
    /// Payload bytes sent (text and binary).
    pub bytes_out: AtomicU64,
    /// Snapshots sent.
    pub snapshots: AtomicU64,
    /// Snapshots captured from tmux (joiners at once share one; see `Hub::snapshot`).
    pub snapshot_captures: Arc<AtomicU64>,
    /// Certificate reloads and TLS handshake failures (zero without TLS).
    pub tls: TlsCounters,
    /// Rate-limit refusals and blocks.
    pub abuse: Arc<AbuseCounters>,
    /// Audit lines written, dropped and lost ([`crate::audit`]).
    pub audit: Arc<AuditCounters>,
    /// Command execution outcomes and latency.
    pub exec: Arc<crate::exec::ExecStats>,
    requests: Vec<(&'static str, Latency)>,
    backend_commands: Latency,
}

impl Default for Stats {
    fn default() -> Self {
        let types = Request::TYPES.iter().copied().chain([INVALID_TYPE]);
        Stats {
            connections: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            connections_forbidden: AtomicU64::new(0),
            messages_in: AtomicU64::new(0),
            messages_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
            snapshot_captures: Arc::default(),
            tls: TlsCounters::default(),
            abuse: Arc::default(),
            audit: Arc::default(),
            exec: Default::default(),
            requests: types.map(|t| (t, Latency::new())).collect(),
            backend_commands: Latency::new(),
        }
    }
}

impl Stats {
    /// Records one handled request; `kind` is a request type or `None` for undecodable ones.
    pub fn request(&self, kind: Option<&str>, elapsed: Duration) {
        let kind = kind.unwrap_or(INVALID_TYPE);
        if let Some((_, latency)) = self.requests.iter().find(|(t, _)| *t == kind) {
            latency.record(elapsed);
        }
    }

    /// Records the latency of a request that went to a backend.
    pub fn backend_command(&self, elapsed: Duration) {
        self.backend_commands.record(elapsed);
    }

    /// The JSON summary returned by the `metrics` request.
    pub fn summary(&self, sessions: usize) -> Value {
        let requests: serde_json::Map<String, Value> = self
            .requests
            .iter()
            .filter(|(_, l)| l.count.load(Ordering::Relaxed) > 0)
            .map(|(t, l)| (t.to_string(), l.summary()))
            .collect();
        json!({
            "connections": self.connections.load(Ordering::Relaxed),
            "connectionsTotal": self.connections_total.load(Ordering::Relaxed),
            "sessions": sessions,
            "messages": {
                "received": self.messages_in.load(Ordering::Relaxed),
                "sent": self.messages_out.load(Ordering::Relaxed),
            },
            "bytes": {
                "received": self.bytes_in.load(Ordering::Relaxed),
                "sent": self.bytes_out.load(Ordering::Relaxed),
            },
            "requests": requests,
            "backendCommands": self.backend_commands.summary(),
            "commands": self.exec.summary(),
            "abuse": {
                "rateLimited": self.abuse.rate_limited.load(Ordering::Relaxed),
                "blockedConnections": self.abuse.blocked_connections.load(Ordering::Relaxed),
                "blocks": self.abuse.blocks_total.load(Ordering::Relaxed),
            },
            "audit": {
                "written": self.audit.written.load(Ordering::Relaxed),
                "dropped": self.audit.dropped.load(Ordering::Relaxed),
                "writeFailures": self.audit.write_failures.load(Ordering::Relaxed),
            },
        })
    }

    fn render_tls(&self, out: &mut String, counter: impl Fn(&mut String, &str, &str, &str, u64)) {
        let tls = &self.tls;
        let counters = [
            (
                "tmuxgate_tls_reloads_total",
                "TLS certificate reloads that installed a certificate.",
                &tls.reloads,
            ),
            (
                "tmuxgate_tls_reload_failures_total",
                "TLS certificate reloads that failed and kept the previous certificate.",
                &tls.reload_failures,
            ),
            (
                "tmuxgate_tls_handshake_failures_total",
                "TLS handshakes that failed or timed out.",
                &tls.handshake_failures,
            ),
        ];
        for (name, help, value) in counters {
            counter(out, name, help, "counter", value.load(Ordering::Relaxed));
        }
    }

    fn render_audit(&self, out: &mut String, counter: impl Fn(&mut String, &str, &str, &str, u64)) {
        let audit = &self.audit;
        let counters = [
            (
                "tmuxgate_audit_lines_total",
                "Audit log lines written.",
                "counter",
                &audit.written,
            ),
            (
                "tmuxgate_audit_dropped_total",
                "Audit events dropped because the writer's queue was full.",
                "counter",
                &audit.dropped,
            ),
            (
                "tmuxgate_audit_write_failures_total",
                "Audit lines lost to write errors (disk full, I/O errors).",
                "counter",
                &audit.write_failures,
            ),
            (
                "tmuxgate_audit_rotations_total",
                "Audit log rotations.",
                "counter",
                &audit.rotations,
            ),
            (
                "tmuxgate_audit_last_seq",
                "seq of the last audit line written (compare with the file's last line).",
                "gauge",
                &audit.last_seq,
            ),
        ];
        for (name, help, kind, value) in counters {
            counter(out, name, help, kind, value.load(Ordering::Relaxed));
        }
    }

    /// Prometheus text exposition format (version 0.0.4), with the levels read elsewhere.
    pub fn render_prometheus(&self, levels: Levels) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let gauge = |out: &mut String, name: &str, help: &str, kind: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        gauge(
            &mut out,
            "tmuxgate_connections",
            "WebSocket connections open now.",
            "gauge",
            load(&self.connections),
        );
        gauge(
            &mut out,
            "tmuxgate_connections_total",
            "WebSocket connections accepted.",
            "counter",
            load(&self.connections_total),
        );
        gauge(
            &mut out,
            "tmuxgate_connections_refused_total",
            "Connections refused at MAX_CONNECTIONS (HTTP 503) or a per-address or per-user cap (close 1013).",
            "counter",
            load(&self.connections_refused),
        );
        gauge(
            &mut out,
            "tmuxgate_connections_forbidden_total",
            "Upgrades refused with 403: Origin not allowed.",
            "counter",
            load(&self.connections_forbidden),
        );
        gauge(
            &mut out,
            "tmuxgate_rate_limited_total",
            "Requests, upgrades, logins and input runs refused over a rate limit.",
            "counter",
            load(&self.abuse.rate_limited),
        );
        gauge(
            &mut out,
            "tmuxgate_blocked_connections_total",
            "Connections dropped at accept or refused at the upgrade: address blocked.",
            "counter",
            load(&self.abuse.blocked_connections),
        );
        gauge(
            &mut out,
            "tmuxgate_blocks_total",
            "Addresses blocked, automatically or by an administrator.",
            "counter",
            load(&self.abuse.blocks_total),
        );
        gauge(
            &mut out,
            "tmuxgate_messages_received_total",
            "Text frames received.",
            "counter",
            load(&self.messages_in),
        );
        gauge(
            &mut out,
            "tmuxgate_messages_sent_total",
            "Text frames sent.",
            "counter",
            load(&self.messages_out),
        );
        gauge(
            &mut out,
            "tmuxgate_bytes_received_total",
            "Payload bytes received.",
            "counter",
            load(&self.bytes_in),
        );
        gauge(
            &mut out,
            "tmuxgate_bytes_sent_total",
            "Payload bytes sent.",
            "counter",
            load(&self.bytes_out),
        );
        gauge(
            &mut out,
            "tmuxgate_snapshots_total",
            "Snapshots sent.",
            "counter",
            load(&self.snapshots),
        );
        gauge(
            &mut out,
            "tmuxgate_snapshot_captures_total",
            "Snapshots captured from tmux (viewers joining together share one).",
            "counter",
            load(&self.snapshot_captures),
        );
        self.render_tls(&mut out, gauge);
        self.render_audit(&mut out, gauge);
        gauge(
            &mut out,
            "tmuxgate_sessions",
            "Live tmux sessions.",
            "gauge",
            levels.sessions as u64,
        );
        gauge(
            &mut out,
            "tmuxgate_pane_log_bytes",
            "Output held in the attached panes' logs (at most RING_BUFFER_BYTES each).",
            "gauge",
            levels.pane_log_bytes,
        );
        gauge(
            &mut out,
            "tmuxgate_panics_total",
            "Panics since start (each stopped one task; see the log).",
            "counter",
            crate::supervise::PANICS.load(Ordering::Relaxed),
        );
        // The runtime's tasks alive now: connections, hubs, background work. A number that
        // creeps up under steady load is a leak (tests/faults.rs watches it).
        let tasks =
            tokio::runtime::Handle::try_current().map_or(0, |h| h.metrics().num_alive_tasks());
        gauge(
            &mut out,
            "tmuxgate_tasks",
            "Tasks alive in the async runtime.",
            "gauge",
            tasks as u64,
        );
        gauge(
            &mut out,
            "tmuxgate_backends_up",
            "Backends whose tmux server is up.",
            "gauge",
            levels.backends_up as u64,
        );
        let name = "tmuxgate_requests_total";
        let _ = writeln!(
            out,
            "# HELP {name} Requests handled, by type.\n# TYPE {name} counter"
        );
        for (kind, l) in &self.requests {
            let _ = writeln!(out, "{name}{{type=\"{kind}\"}} {}", load(&l.count));
        }
        let name = "tmuxgate_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Request handling time, by type.\n# TYPE {name} histogram"
        );
        for (kind, l) in &self.requests {
            l.render(&mut out, name, &format!("type=\"{kind}\""));
        }
        let name = "tmuxgate_backend_command_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time of requests that went to a tmux backend.\n# TYPE {name} histogram"
        );
        self.backend_commands
            .render(&mut out, name, "backend=\"all\"");
        self.exec.render(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_summarised() {
        let stats = Stats::default();
        stats.request(Some("heartbeat"), Duration::from_micros(300));
        stats.request(Some("heartbeat"), Duration::from_millis(3));
        stats.request(None, Duration::from_micros(50));
        let levels = Levels {
            sessions: 1,
            backends_up: 1,
            pane_log_bytes: 4096,
        };
        let text = stats.render_prometheus(levels);
        assert!(text.contains("\ntmuxgate_pane_log_bytes 4096\n"));
        assert!(text.contains("\ntmuxgate_backends_up 1\n"));
        assert!(text.contains(
            "tmuxgate_request_duration_seconds_bucket{type=\"heartbeat\",le=\"0.0005\"} 1"
        ));
        assert!(text.contains(
            "tmuxgate_request_duration_seconds_bucket{type=\"heartbeat\",le=\"+Inf\"} 2"
        ));
        assert!(text.contains("tmuxgate_requests_total{type=\"invalid\"} 1"));
        let summary = stats.summary(1);
        assert_eq!(summary["requests"]["heartbeat"]["count"], 2);
        assert!(summary["requests"]["heartbeat"]["p99Ms"].as_f64().unwrap() >= 2.9);
    }
}
