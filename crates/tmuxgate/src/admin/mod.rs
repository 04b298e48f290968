//! The administration API on the health port: `GET/POST /admin/blocks`, `DELETE
//! /admin/blocks/{address}` (blocked addresses, [`crate::abuse::Blocks`]). Every request
//! needs `Authorization: Bearer TOKEN`, a token of this gateway whose role has the `admin`
//! permission; with authentication off there are no identities, so the API answers 404.
//! Every refusal is audited (`AUTH_FAILURE` or `PERMISSION_DENIED`, with transport
//! `admin`), and a guessed token counts as a failed login of its address. A blocked address
//! is answered only with an administrator's token.
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
        let Some(ConnectInfo(PeerAddr(peer))) = parts.extensions.get().copied() else {
            let message = "the admin API is served on the health port only";
            return Err(error(StatusCode::INTERNAL_SERVER_ERROR, message));
        };
        // The client a trusted proxy names. A trusted proxy itself (naming no one, or
        // garbling the headers) is never charged with a guess: blocking it would cut off
        // everyone behind it.
        let client = match gw.proxies.resolve(peer.ip(), &parts.headers) {
            Ok(forwarded) => forwarded.client,
            Err(_) => peer.ip().to_canonical(),
        };
        let chargeable = !gw.proxies.trusts(client);
        admin(gw, client, chargeable, &parts.headers)
            .await
            .map(Admin)
    }
}

/// The administrator `headers`' bearer token names, or the refusal to answer. A blocked
/// `client` is answered only with an administrator's token (an operator lifts blocks
/// from where they are), and its refusals are audited sampled; a guessed token from an
/// unblocked one counts toward its block when `chargeable`.
async fn admin(
    gw: &Gateway,
    client: IpAddr,
    chargeable: bool,
    headers: &axum::http::HeaderMap,
) -> Result<String, Response> {
    let Some(auth) = &gw.auth else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "authentication is off: no admin API",
        ));
    };
    let blocked = gw.abuse.blocks.is_blocked(client);
    let refuse = |status: StatusCode, message: &str, record: Record| {
        if !blocked {
            gw.audit.record(record.transport("admin"));
            return error(status, message);
        }
        if gw.abuse.blocks.refusal_worth_auditing(client) {
            let record = Record::new(EventKind::ConnectionRefused, Some(client));
            gw.audit.record(record.reason("blocked").transport("admin"));
        }
        error(StatusCode::FORBIDDEN, "address blocked")
    };
    let failure = || Record::new(EventKind::AuthFailure, Some(client));
    let Presented::Token(token, _) = transport::presented(headers, None) else {
        let message = "send Authorization: Bearer TOKEN";
        let record = failure().reason("missing-token");
        return Err(refuse(StatusCode::UNAUTHORIZED, message, record));
    };
    let identity = match auth.verify(token).await {
        Ok(identity) => identity,
        Err(e) => {
            if e.is_guess() && chargeable && !blocked {
                let offense = crate::abuse::Offense::FailedLogin;
                gw.abuse.blocks.record(client, offense);
            }
            let message = crate::connection::client_message(&e);
            let record = failure().reason(e.reason());
            return Err(refuse(StatusCode::UNAUTHORIZED, &message, record));
        }
    };
    if !auth.allows(&identity, Permission::Admin) {
        let record = Record::new(EventKind::PermissionDenied, Some(client))
            .user(identity.user.as_str())
            .permission("admin");
        let message = "the admin permission is needed";
        return Err(refuse(StatusCode::FORBIDDEN, message, record));
    }
    Ok(identity.user.to_string())
}

pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}
