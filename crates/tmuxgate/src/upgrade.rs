//! The WebSocket upgrade on `/` and `/ws`: the origin check ([`Gateway::screen`]), the
//! connection cap, the token the request presents (verified before the upgrade completes;
//! a bad one gets the upgrade and then close 4401, since browsers see close codes, not HTTP
//! statuses), and the hand-over to [`crate::connection::serve`].

use std::sync::Arc;

use axum::extract::State;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::abuse::{Limited, Offense};
use crate::access::Principal;
use crate::audit::{EventKind, Record};
use crate::connection::Admitted;
use crate::forwarded::PeerAddr;
use crate::security::AuthError;
use crate::security::transport::{self, Presented};
use crate::server::{AdmitAs, Gateway};

/// WebSocket read buffer per connection (tungstenite's default is 128 KiB).
pub const WS_READ_BUFFER_BYTES: usize = 4 * 1024;
/// WebSocket write buffer per connection.
pub const WS_WRITE_BUFFER_BYTES: usize = 4 * 1024;

/// A request from a page whose origin is not allowed: 403.
pub(crate) struct ForbiddenOrigin;

impl IntoResponse for ForbiddenOrigin {
    fn into_response(self) -> Response {
        (StatusCode::FORBIDDEN, "origin not allowed").into_response()
    }
}

pub(crate) async fn root(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match upgrade {
        Ok(upgrade) => accept(gw, peer, &uri, &headers, upgrade).await,
        Err(_) => crate::web::respond("/", &headers),
    }
}

pub(crate) async fn ws_only(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<PeerAddr>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    accept(gw, peer, &uri, &headers, upgrade).await
}

/// Admits a connection whose origin is allowed, under `MAX_CONNECTIONS`, checks the token
/// it presents, and hands it to its task. The origin is checked first, so refused pages
/// never hold a slot. A refused token still gets its upgrade, then close 4401 at once:
/// browsers cannot see an HTTP status, only a close code.
async fn accept(
    gw: Arc<Gateway>,
    PeerAddr(peer): PeerAddr,
    uri: &Uri,
    headers: &HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let client = match gw.screen(peer, headers) {
        Ok(forwarded) => forwarded.client,
        Err(refused) => return refused.into_response(),
    };
    let refused = |reason| {
        let record = Record::new(EventKind::ConnectionRefused, Some(client)).reason(reason);
        gw.audit.record(record);
    };
    if let Err(refused) = gw.admit_client(client, AdmitAs::Connect) {
        return refused.into_response();
    }
    if let Err(wait) = gw.abuse.check_client_shared(client, Limited::Connect).await {
        return crate::server::Refused::RateLimited(wait).into_response();
    }
    if gw.shutdown.is_cancelled() {
        refused("shutting-down");
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let Ok(permit) = gw.slots.clone().try_acquire_owned() else {
        gw.stats
            .connections_refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        refused("max-connections");
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
    };
    // Before the token is checked: a revocation from now on reaches the connection.
    let changes = gw.auth.as_ref().map(|auth| auth.changes());
    let principal = match authenticate(&gw, uri, headers).await {
        Ok(principal) => principal,
        Err((error, via)) => {
            let mut record =
                Record::new(EventKind::TokenRejected, Some(client)).reason(error.reason());
            if let Some(via) = via {
                record = record.transport(transport_name(via));
            }
            gw.audit.record(record);
            if error.is_guess() {
                gw.abuse.blocks.record(client, Offense::FailedLogin);
            }
            let reason = crate::connection::close_reason(&error);
            return upgrade
                .protocols([transport::SUBPROTOCOL])
                .on_upgrade(move |ws| crate::connection::refuse(ws, reason));
        }
    };
    let max = gw.limits.max_message_bytes;
    let token = gw.tasks.token();
    let admitted = Admitted {
        permit,
        principal,
        changes,
        peer: client,
    };
    upgrade
        .protocols([transport::SUBPROTOCOL])
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .write_buffer_size(WS_WRITE_BUFFER_BYTES)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |ws| async move {
            crate::connection::serve(ws, gw, admitted).await;
            drop(token);
        })
}

/// Whom an upgrade acts for: everyone with authentication off; the verified token's user;
/// `None` (authenticate with `auth`) when no token came.
async fn authenticate(
    gw: &Gateway,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Option<Principal>, (AuthError, Option<transport::Transport>)> {
    let Some(auth) = &gw.auth else {
        return Ok(Some(Principal::Anyone));
    };
    match transport::presented(headers, uri.query()) {
        Presented::Nothing => Ok(None),
        Presented::Malformed(via) => Err((AuthError::Malformed, Some(via))),
        Presented::Token(token, via) => match auth.verify(token).await {
            Ok(identity) => {
                tracing::debug!(user = %identity.user, ?via, "token accepted at the upgrade");
                Ok(Some(Principal::User(Box::new(identity), auth.clone())))
            }
            Err(error) => Err((error, Some(via))),
        },
    }
}

/// The audit `transport` of a token.
fn transport_name(via: transport::Transport) -> &'static str {
    match via {
        transport::Transport::Bearer => "header",
        transport::Transport::Subprotocol => "protocol",
        transport::Transport::Cookie => "cookie",
        transport::Transport::Query => "query",
    }
}
