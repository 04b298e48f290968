//! The administration API on the health port: `GET/POST /admin/blocks`, `DELETE
//! /admin/blocks/{address}` (blocked addresses, [`crate::abuse::Blocks`]). Every request
//! needs `Authorization: Bearer TOKEN`, a token of this gateway whose role has the `admin`
//! permission; with authentication off there are no identities, so the API answers 404.
//! `tmuxgate block` is its command-line client. The backends' drain switch is in
//! [`backends`].

pub mod backends;

use crate::audit::{EventKind, Record};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde_json::json;

use crate::abuse::BlockInfo;
use crate::security::Permission;
use crate::security::transport::{self, Presented};
use crate::server::Gateway;

/// `POST /admin/blocks` body.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockRequest {
    /// The address to block.
    pub address: IpAddr,
    /// How long; the address's next automatic length when absent.
    #[serde(default)]
    pub duration_ms: Option<u64>,
}

/// `GET /admin/blocks` answer.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
pub struct BlockList {
    /// The blocks in force.
    pub blocks: Vec<BlockInfo>,
}

/// The admin routes, merged into the health port's router.
pub fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/admin/blocks", get(list).post(add))
        .route("/admin/blocks/{address}", delete(remove))
        .with_state(gw.clone())
        .merge(backends::router(gw))
}

async fn list(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if let Err(refused) = admin(&gw, &headers).await {
        return refused;
    }
    let blocks = gw.abuse.blocks.list();
    axum::Json(BlockList { blocks }).into_response()
}

async fn add(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let by = match admin(&gw, &headers).await {
        Ok(by) => by,
        Err(refused) => return refused,
    };
    let Ok(req) = serde_json::from_slice::<BlockRequest>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected {\"address\", \"durationMs\"?}",
        );
    };
    let duration = req.duration_ms.map(Duration::from_millis);
    match gw.abuse.blocks.block(req.address, duration) {
        Some(info) => {
            // The block itself is in the audit log (`IP_BLOCKED`, reason `admin`).
            tracing::info!(client = %req.address, %by, "block added through the admin API");
            (StatusCode::CREATED, axum::Json(info)).into_response()
        }
        None => error(StatusCode::CONFLICT, "the address is in ABUSE_ALLOWLIST"),
    }
}

async fn remove(
    State(gw): State<Arc<Gateway>>,
    Path(address): Path<String>,
    headers: HeaderMap,
) -> Response {
    let by = match admin(&gw, &headers).await {
        Ok(by) => by,
        Err(refused) => return refused,
    };
    let Ok(address) = address.parse::<IpAddr>() else {
        return error(StatusCode::BAD_REQUEST, "not an IP address");
    };
    match gw.abuse.blocks.unblock(address) {
        true => {
            tracing::info!(client = %address, %by, "block lifted through the admin API");
            StatusCode::NO_CONTENT.into_response()
        }
        false => error(StatusCode::NOT_FOUND, "the address is not blocked"),
    }
}

/// The administrator the request's bearer token names, or the refusal to answer.
pub(crate) async fn admin(gw: &Gateway, headers: &HeaderMap) -> Result<String, Response> {
    let Some(auth) = &gw.auth else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "authentication is off: no admin API",
        ));
    };
    let Presented::Token(token, _) = transport::presented(headers, None) else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "send Authorization: Bearer TOKEN",
        ));
    };
    let identity = auth.verify(token).await.map_err(|e| {
        let message = crate::connection::client_message(&e);
        error(StatusCode::UNAUTHORIZED, &message)
    })?;
    if !auth.allows(&identity, Permission::Admin) {
        let record = Record::new(EventKind::PermissionDenied, None)
            .user(identity.user.as_str())
            .permission("admin");
        gw.audit.record(record);
        return Err(error(
            StatusCode::FORBIDDEN,
            "the admin permission is needed",
        ));
    }
    Ok(identity.user.to_string())
}

pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}
