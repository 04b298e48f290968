//! The administration API on the health port: `GET/POST /admin/blocks`, `DELETE
//! /admin/blocks/{address}` (blocked addresses, [`crate::abuse::Blocks`]). Every request
//! needs `Authorization: Bearer TOKEN`, a token of this gateway whose role has the `admin`
//! permission; with authentication off there are no identities, so the API answers 404.
//! Every refusal is audited (`AUTH_FAILURE` with transport `admin`, or
//! `PERMISSION_DENIED`), and a guessed token counts as a failed login of its address.
//! `tmuxgate block` is its command-line client. The backends' drain switch is in
//! [`backends`].

pub mod backends;

use crate::audit::{EventKind, Record};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde_json::json;

use crate::abuse::BlockInfo;
use crate::forwarded::PeerAddr;
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

async fn list(State(gw): State<Arc<Gateway>>, _: Admin) -> Response {
    let blocks = gw.abuse.blocks.list();
    axum::Json(BlockList { blocks }).into_response()
}

async fn add(
    State(gw): State<Arc<Gateway>>,
    Admin(by): Admin,
    body: axum::body::Bytes,
) -> Response {
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
    Admin(by): Admin,
    Path(address): Path<String>,
) -> Response {
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

/// A caller of the admin API: the user of a token of this gateway whose role has the
/// `admin` permission. Anything else is refused, and audited.
pub(crate) struct Admin(pub String);

impl FromRequestParts<Arc<Gateway>> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, gw: &Arc<Gateway>) -> Result<Admin, Response> {
        let peer = parts.extensions.get::<ConnectInfo<PeerAddr>>();
        let peer = peer.map(|ConnectInfo(PeerAddr(peer))| peer.ip());
        admin(gw, peer, &parts.headers).await.map(Admin)
    }
}

async fn admin(
    gw: &Gateway,
    peer: Option<IpAddr>,
    headers: &axum::http::HeaderMap,
) -> Result<String, Response> {
    let Some(auth) = &gw.auth else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "authentication is off: no admin API",
        ));
    };
    let failed = |reason: &'static str| {
        let record = Record::new(EventKind::AuthFailure, peer).reason(reason);
        gw.audit.record(record.transport("admin"));
    };
    let Presented::Token(token, _) = transport::presented(headers, None) else {
        failed("missing-token");
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "send Authorization: Bearer TOKEN",
        ));
    };
    let identity = auth.verify(token).await.map_err(|e| {
        failed(e.reason());
        if let Some(peer) = peer.filter(|_| e.is_guess()) {
            let offense = crate::abuse::Offense::FailedLogin;
            gw.abuse.blocks.record(peer, offense);
        }
        let message = crate::connection::client_message(&e);
        error(StatusCode::UNAUTHORIZED, &message)
    })?;
    if !auth.allows(&identity, Permission::Admin) {
        let record = Record::new(EventKind::PermissionDenied, peer)
            .user(identity.user.as_str())
            .permission("admin")
            .transport("admin");
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
