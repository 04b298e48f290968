//! The operator port: `GET /health` (JSON status; 200 when serving, 503 otherwise),
//! `GET /metrics` (Prometheus text) and the admin API ([`crate::admin`]).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::server::Gateway;

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
    let up = gw
        .sessions
        .backends()
        .iter()
        .filter(|b| b.state() == crate::backends::BackendState::Up)
        .count();
    let mut body = gw.stats.render_prometheus(gw.sessions.count(), up);
    crate::backends::health::render_prometheus(gw.sessions.backends(), &mut body);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
