//! The operator port: `GET /health` (JSON status; 200 when serving, 503 otherwise),
//! `GET /metrics` (Prometheus text) and the admin API ([`crate::admin`]).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::server::{BackendStatus, Gateway};

/// The router of the health port.
pub fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(gw.clone())
        .merge(crate::admin::router(gw))
}

async fn health(State(gw): State<Arc<Gateway>>) -> Response {
    let status = gw.status();
    let code = if status.status == "unhealthy" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, axum::Json(status)).into_response()
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    if !gw.metrics_enabled() {
        return (
            StatusCode::NOT_FOUND,
            "metrics disabled (ENABLE_METRICS=false)",
        )
            .into_response();
    }
    let backends = gw.status().backends;
    let up = backends.iter().filter(|b| b.state == "up").count();
    let mut body = gw.stats.render_prometheus(crate::metrics::Levels {
        sessions: gw.sessions.count(),
        backends_up: up,
        pane_log_bytes: gw.sessions.log_bytes(),
    });
    crate::backends::health::render_prometheus(gw.sessions.backends(), &mut body);
    crate::store::render_prometheus(&*gw.store, &gw.store_health, &mut body);
    render_backends(&mut body, &backends);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Per-backend gauges: sessions, weight, draining, up, latency, and the labels as an info
/// metric. Ids (`tmux-N`) and labels (`[a-z0-9_-]`) need no escaping.
fn render_backends(out: &mut String, backends: &[BackendStatus]) {
    use std::fmt::Write as _;
    type Field = fn(&BackendStatus) -> f64;
    let gauges: [(&str, &str, Field); 4] = [
        (
            "tmuxgate_backend_sessions",
            "Live sessions on each backend.",
            |b| b.sessions as f64,
        ),
        (
            "tmuxgate_backend_weight",
            "Placement weight of each backend.",
            |b| f64::from(b.weight),
        ),
        (
            "tmuxgate_backend_draining",
            "1 while an administrator drains the backend.",
            |b| f64::from(u8::from(b.draining)),
        ),
        (
            "tmuxgate_backend_up",
            "1 while the backend's tmux server is up.",
            |b| f64::from(u8::from(b.state == "up")),
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for b in backends {
            let _ = writeln!(out, "{name}{{backend=\"{}\"}} {}", b.id, value(b));
        }
    }
    let name = "tmuxgate_backend_info";
    let _ = writeln!(
        out,
        "# HELP {name} Each backend's placement labels.\n# TYPE {name} gauge"
    );
    for b in backends {
        let labels = b.labels.join(",");
        let _ = writeln!(out, "{name}{{backend=\"{}\",labels=\"{labels}\"}} 1", b.id);
    }
}
