//! The web UI's login endpoints (docs/protocol.md, "HTTP API"): `POST /api/login` turns a
//! password (or a token, for the old `?token=` links) into an `HttpOnly`, `SameSite=Strict`
//! cookie, `POST /api/logout` revokes it, `GET /api/me` says who the cookie speaks for.
//! `GET /api/fleet` lists the fleet's gateways (`FLEET_URLS`) for the UI to fail over to.
//!
//! Every request passes the same origin check as a WebSocket upgrade, so another site's
//! page can neither log a visitor in nor out; `login` accepts only `application/json`,
//! which a cross-site form cannot send. The token never appears in a response body.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::connect_info::ConnectInfo;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tmuxgate_protocol::request::Auth;

use crate::audit::{EventKind, Record};
use crate::forwarded::PeerAddr;
use crate::origin::Scheme;
use crate::security::transport::{self, COOKIE_NAME, Presented, SECURE_COOKIE_NAME};
use crate::security::{AuthError, Authenticator, Identity, unix};
use crate::server::Gateway;
use crate::upgrade::ForbiddenOrigin;

/// Largest login body accepted.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// The `/api` routes.
pub fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
        .route("/api/fleet", get(fleet))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
}

async fn login(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (secure, client, auth) = match gate(&gw, peer, &headers) {
        Ok(gated) => gated,
        Err(refused) => return refused.into_response(),
    };
    if let Err(refused) = gw.admit_client(client, crate::server::AdmitAs::Login) {
        return refused.into_response();
    }
    let login = crate::abuse::Limited::Login;
    if let Err(wait) = gw.abuse.check_client_shared(client, login).await {
        return crate::server::Refused::RateLimited(wait).into_response();
    }
    if !is_json(&headers) {
        let message = "send the credentials as application/json";
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            message,
        );
    }
    let Ok(req) = serde_json::from_slice::<Auth>(&body) else {
        let message = "expected {\"username\", \"password\"} or {\"token\"}";
        return error(StatusCode::BAD_REQUEST, "invalid_request", message);
    };
    // A token login keeps the token it came with: it becomes the cookie.
    let presented = req
        .token
        .as_ref()
        .map(|t| crate::config::Secret::new(t.expose()));
    let outcome = crate::connection::login(auth, req)
        .await
        .map(|(identity, issued)| (identity, issued.map(|i| i.token).or(presented)));
    match outcome {
        Ok((identity, token)) => {
            let record = Record::new(EventKind::AuthSuccess, Some(client))
                .user(identity.user.as_str())
                .role(identity.role.as_str())
                .transport("http");
            gw.audit.record(record);
            let mut response = no_store(axum::Json(who(auth, &identity)).into_response());
            // Always some: a login that succeeded came with a token or was issued one.
            if let Some(token) = token {
                let cookie = cookie(token.expose(), &identity, secure);
                response.headers_mut().insert(SET_COOKIE, cookie);
            }
            response
        }
        Err(e) => {
            let record = Record::new(EventKind::AuthFailure, Some(client))
                .reason(e.reason())
                .transport("http");
            gw.audit.record(record);
            if e.is_guess() {
                gw.abuse
                    .blocks
                    .record(client, crate::abuse::Offense::FailedLogin);
            }
            let message = crate::connection::client_message(&e);
            error(StatusCode::UNAUTHORIZED, "unauthorized", &message)
        }
    }
}

async fn logout(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
) -> Response {
    let (secure, client, auth) = match gate(&gw, peer, &headers) {
        Ok(gated) => gated,
        Err(refused) => return refused.into_response(),
    };
    let revoked = match transport::presented(&headers, None) {
        Presented::Token(token, _) => auth.revoke_token(token).await,
        Presented::Nothing | Presented::Malformed(_) => Ok(None),
    };
    match revoked {
        Ok(Some(user)) => {
            let record = Record::new(EventKind::TokenRevoked, Some(client))
                .user(user.to_string())
                .reason("logout")
                .transport("http");
            gw.audit.record(record);
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "could not revoke a token at logout");
            let message = "the token could not be revoked; try again";
            return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
        }
    }
    let mut response = no_store(StatusCode::NO_CONTENT.into_response());
    response
        .headers_mut()
        .insert(SET_COOKIE, clear_cookie(secure));
    response
}

async fn me(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = screen(&gw, peer, &headers) {
        return refused.into_response();
    }
    let Some(auth) = &gw.auth else {
        return no_store(axum::Json(json!({ "auth": false })).into_response());
    };
    match identify(auth, &headers).await {
        Ok(identity) => {
            let mut body = who(auth, &identity);
            body["auth"] = true.into();
            no_store(axum::Json(body).into_response())
        }
        Err(e) => error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            &crate::connection::client_message(&e),
        ),
    }
}

/// `{"urls": [...]}`: the WebSocket URLs of every gateway of the fleet (`FLEET_URLS`, empty
/// when unset). No credentials needed: the UI asks before anyone signs in.
async fn fleet(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = screen(&gw, peer, &headers) {
        return refused.into_response();
    }
    no_store(axum::Json(json!({ "urls": gw.fleet_urls() })).into_response())
}

/// Why a login or logout gets no further than [`gate`].
enum Gated {
    /// Another site's page: 403.
    Origin(ForbiddenOrigin),
    /// Authentication is off: 404.
    AuthOff,
}

impl IntoResponse for Gated {
    fn into_response(self) -> Response {
        match self {
            Gated::Origin(refused) => refused.into_response(),
            Gated::AuthOff => error(StatusCode::NOT_FOUND, "not_found", "authentication is off"),
        }
    }
}

/// [`screen`], and the authenticator.
fn gate<'g>(
    gw: &'g Gateway,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<(bool, IpAddr, &'g Authenticator), Gated> {
    let (secure, client) = screen(gw, peer, headers).map_err(Gated::Origin)?;
    let auth = gw.auth.as_ref().ok_or(Gated::AuthOff)?;
    Ok((secure, client, auth))
}

/// The origin check of [`Gateway::screen`]; `Ok((secure, client))`: whether the page was served
/// over HTTPS (by the gateway, a trusted proxy in front of it, or as its `Origin` says), so
/// the cookie is `Secure`.
fn screen(
    gw: &Gateway,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<(bool, IpAddr), ForbiddenOrigin> {
    let forwarded = gw.screen(peer, headers)?;
    let proxied_https = forwarded
        .site
        .as_ref()
        .is_some_and(|site| site.scheme == Some(Scheme::Https));
    // An allowed page served over HTTPS (by a proxy this gateway does not know of): the
    // browser reaches the gateway over HTTPS too, so the cookie can and must be Secure.
    let https_page = headers
        .get(axum::http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|origin| origin.starts_with("https://"));
    Ok((gw.is_tls() || proxied_https || https_page, forwarded.client))
}

/// The identity of the token the request carries (bearer header or cookie).
async fn identify(auth: &Authenticator, headers: &HeaderMap) -> Result<Identity, AuthError> {
    match transport::presented(headers, None) {
        Presented::Token(token, _) => auth.verify(token).await,
        Presented::Nothing | Presented::Malformed(_) => Err(AuthError::Malformed),
    }
}

/// Who the token speaks for, and what their role allows (so the UI offers only that; the
/// gateway checks every request regardless).
fn who(auth: &Authenticator, identity: &Identity) -> serde_json::Value {
    let permissions: Vec<&str> = auth
        .roles()
        .permissions(identity.role.as_str())
        .iter()
        .map(|p| p.name())
        .collect();
    json!({
        "user": identity.user.as_str(),
        "role": identity.role.as_str(),
        "expiresAt": unix(identity.expires_at) * 1000,
        "permissions": permissions,
    })
}

/// Over HTTPS the `__Host-` cookie (`Secure`, `Path=/`, no `Domain`), else the plain one.
fn cookie(token: &str, identity: &Identity, secure: bool) -> HeaderValue {
    let max_age = identity
        .expires_at
        .duration_since(std::time::SystemTime::now())
        .map_or(0, |left| left.as_secs());
    let value = match secure {
        true => format!(
            "{SECURE_COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}; Secure"
        ),
        false => {
            format!("{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}")
        }
    };
    // A verified token is base64url and dots: always a valid header value.
    HeaderValue::from_str(&value).unwrap_or_else(|_| clear_cookie(secure))
}

fn clear_cookie(secure: bool) -> HeaderValue {
    let value = match secure {
        true => {
            format!("{SECURE_COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure")
        }
        false => format!("{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    };
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(""))
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = axum::Json(json!({ "error": code, "message": message }));
    no_store((status, body).into_response())
}
