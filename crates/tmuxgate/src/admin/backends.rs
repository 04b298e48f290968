//! `GET /admin/backends` (each backend's state, weight, labels, drain flag and sessions)
//! and `POST /admin/backends/{id}/drain` / `…/undrain`: a draining backend takes no new
//! sessions while those on it continue. The flag lives in memory: a restarted gateway
//! drains nothing. Same admin token as [`super`]; `tmuxgate backend` is the client.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::{Admin, error};
use crate::audit::{EventKind, Record};
use crate::server::{BackendStatus, Gateway};

/// `GET /admin/backends` answer.
#[derive(Debug, serde::Serialize)]
pub struct BackendList {
    /// Every backend, in index order.
    pub backends: Vec<BackendStatus>,
}

/// The backend routes, merged into the admin router.
pub fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/admin/backends", get(list))
        .route("/admin/backends/{id}/drain", post(drain))
        .route("/admin/backends/{id}/undrain", post(undrain))
        .with_state(gw)
}

async fn list(State(gw): State<Arc<Gateway>>, _: Admin) -> Response {
    let backends = gw.status().backends;
    axum::Json(BackendList { backends }).into_response()
}

async fn drain(gw: State<Arc<Gateway>>, by: Admin, id: Path<String>) -> Response {
    switch(gw, by, id, true).await
}

async fn undrain(gw: State<Arc<Gateway>>, by: Admin, id: Path<String>) -> Response {
    switch(gw, by, id, false).await
}

/// Sets backend `id`'s drain flag; answers its new status. Audited when it changed.
async fn switch(
    State(gw): State<Arc<Gateway>>,
    Admin(by): Admin,
    Path(id): Path<String>,
    draining: bool,
) -> Response {
    let Some(backend) = gw.sessions.backends().iter().find(|b| b.id == id) else {
        return error(StatusCode::NOT_FOUND, "no such backend");
    };
    if backend.set_draining(draining) {
        let kind = match draining {
            true => EventKind::BackendDrained,
            false => EventKind::BackendUndrained,
        };
        gw.audit.record(
            Record::new(kind, None)
                .user(by.as_str())
                .backend(&backend.id),
        );
        tracing::info!(backend = %backend.id, %by, draining, "backend drain switched through the admin API");
    }
    let status = gw.status().backends.into_iter().find(|b| b.id == id);
    match status {
        Some(status) => axum::Json(status).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such backend"),
    }
}
