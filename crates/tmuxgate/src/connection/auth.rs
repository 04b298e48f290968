//! A connection's identity: the unauthenticated state and `auth`, the checks every request
//! makes against [`crate::access`], and what happens when access changes while attached
//! (a share taken back or made read-only, a token revoked or expired, a user changed).

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::ws::WebSocket;
use tmuxgate_protocol::request::{AttachMode, Auth};
use tmuxgate_protocol::response::AuthReply;
use tmuxgate_protocol::{CloseCode, ErrorCode, Event};

use super::{Close, Conn};
use crate::abuse::Limited;
use crate::abuse::shared::Cap;
use crate::access::{Principal, Reach};
use crate::audit::{EventKind, Record};
use crate::config::Secret;
use crate::error::WireError;
use crate::security::{AuthError, Authenticator, Identity, Issued, unix};
use crate::sessions::SessionEntry;

/// Failed `auth` attempts after which the connection is closed with 4401.
pub const MAX_AUTH_FAILURES: u8 = 3;

/// Whom a connection acts for, once known.
pub(super) enum Who {
    /// No token came with the upgrade and `auth` has not succeeded yet: only `auth` and
    /// `heartbeat` are accepted, until `AUTH_TIMEOUT`.
    Pending {
        /// Failed `auth` attempts so far.
        failures: u8,
    },
    /// Authenticated (or authentication is off).
    Known(Principal),
}

/// The tokio instant at which `identity`'s token expires.
pub(super) fn expiry(identity: &Identity) -> tokio::time::Instant {
    let left = identity
        .expires_at
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    tokio::time::Instant::now() + left
}

/// What a client may be told about a refused login or token: the reason, except the
/// internals of an unavailable store.
pub fn client_message(error: &AuthError) -> String {
    match error {
        AuthError::Unavailable(_) => "authentication is unavailable; try again later".into(),
        other => other.to_string(),
    }
}

impl Conn {
    /// Counts an authenticated connection of `user` under `MAX_CONNECTIONS_PER_USER`,
    /// here and then across the fleet; `false` (nothing counted): at a cap.
    pub(super) async fn join_user(&mut self, user: &str) -> bool {
        let abuse = &self.gw.abuse;
        if !abuse.user_joined(user) {
            return false;
        }
        match abuse.user_cap_shared(user).await {
            Cap::Counted => {
                self.counted.user = true;
                self.counted.user_here = true;
                true
            }
            Cap::Full => {
                abuse.user_left(user);
                false
            }
            Cap::Skipped => {
                self.counted.user_here = true;
                true
            }
        }
    }

    /// The principal, or `unauthorized` while the connection has not authenticated.
    pub(super) fn principal(&self) -> Result<&Principal, WireError> {
        match &self.who {
            Who::Known(principal) => Ok(principal),
            Who::Pending { .. } => Err(WireError::new(
                ErrorCode::Unauthorized,
                "authenticate first (send auth)",
            )),
        }
    }

    /// The session `id` as this connection's principal reaches it. A session it cannot see
    /// is `not_found`, like one that does not exist, whatever its state; one it sees but
    /// may not use as `may` asks is `forbidden`.
    pub(super) fn session(
        &self,
        id: &str,
        may: impl FnOnce(Reach) -> bool,
    ) -> Result<(Arc<SessionEntry>, Reach), WireError> {
        let not_found = || WireError::from(crate::sessions::SessionError::NotFound);
        let entry = self.gw.sessions.lookup(id).ok_or_else(not_found)?;
        let reach = self.reach_of(&entry)?;
        if !reach.see {
            return Err(not_found());
        }
        self.gw.sessions.get(id)?; // lost, or being destroyed
        if !may(reach) {
            return Err(self.denied("session", Some(id)));
        }
        Ok((entry, reach))
    }

    /// What the principal may do with `entry` now.
    pub(super) fn reach_of(&self, entry: &SessionEntry) -> Result<Reach, WireError> {
        let principal = self.principal()?;
        let grant = principal.user().and_then(|user| entry.grant(user));
        Ok(principal.reach(entry.owner.as_deref(), grant))
    }

    /// An audit event from this connection's client, naming its user when it has one.
    pub(super) fn event(&self, kind: EventKind) -> Record {
        let record = Record::new(kind, Some(self.peer));
        match &self.who {
            Who::Known(principal) => record.user(principal.user().unwrap_or_default()),
            Who::Pending { .. } => record,
        }
    }

    /// `forbidden`, audited: the principal may not do `what` (to session `session`).
    pub(super) fn denied(&self, what: &str, session: Option<&str>) -> WireError {
        let mut record = self.event(EventKind::PermissionDenied).permission(what);
        if let Some(session) = session {
            record = record.session(session);
        }
        self.gw.audit.record(record);
        WireError::new(ErrorCode::Forbidden, "your role does not allow this")
    }

    /// `auth`: a password login or a token, on a connection that has not authenticated.
    pub(super) async fn on_auth(&mut self, req: Auth) -> Result<AuthReply, WireError> {
        let Some(auth) = self.gw.auth.clone() else {
            return Err(WireError::new(
                ErrorCode::InvalidRequest,
                "authentication is off on this gateway",
            ));
        };
        let Who::Pending { failures } = self.who else {
            return Err(WireError::new(
                ErrorCode::Conflict,
                "this connection is already authenticated",
            ));
        };
        // Blocked while this connection was open (its own failures, maybe): no more guesses.
        if self.gw.abuse.blocks.is_blocked(self.peer) {
            return Err(WireError::new(ErrorCode::Forbidden, "address blocked"));
        }
        let abuse = &self.gw.abuse;
        let verdict = match abuse.check_login(self.peer) {
            Ok(()) => abuse.check_client_shared(self.peer, Limited::Login).await,
            refused => refused,
        };
        if let Err(wait) = verdict {
            return Err(WireError::rate_limited("too many login attempts", wait));
        }
        match login(&auth, req).await {
            Ok((identity, token)) => {
                if !self.join_user(identity.user.as_str()).await {
                    let record = Record::new(EventKind::ConnectionRefused, Some(self.peer))
                        .user(identity.user.as_str())
                        .reason("max-connections-per-user");
                    self.gw.audit.record(record);
                    let message = "too many connections for this user (MAX_CONNECTIONS_PER_USER)";
                    return Err(WireError::new(ErrorCode::Unavailable, message));
                }
                let record = Record::new(EventKind::AuthSuccess, Some(self.peer))
                    .user(identity.user.as_str())
                    .role(identity.role.as_str())
                    .transport("auth");
                self.gw.audit.record(record);
                let reply = AuthReply {
                    token: token.map(|t| t.token.expose().to_owned()),
                    expires_at: unix(identity.expires_at) * 1000,
                    user: identity.user.to_string(),
                    role: identity.role.to_string(),
                };
                self.auth_deadline = Some(expiry(&identity));
                self.who = Who::Known(Principal::User(Box::new(identity), auth));
                Ok(reply)
            }
            Err(error) => {
                // A busy hasher is the gateway's failure, not the client's.
                let failed = !matches!(error, AuthError::Unavailable(_));
                self.who = Who::Pending {
                    failures: failures.saturating_add(u8::from(failed)),
                };
                let record = Record::new(EventKind::AuthFailure, Some(self.peer))
                    .reason(error.reason())
                    .transport("auth")
                    .attempt(failures.saturating_add(1));
                self.gw.audit.record(record);
                if error.is_guess() {
                    self.gw
                        .abuse
                        .blocks
                        .record(self.peer, crate::abuse::Offense::FailedLogin);
                }
                Err(WireError::new(
                    ErrorCode::Unauthorized,
                    client_message(&error),
                ))
            }
        }
    }

    /// After a response: too many failed `auth` attempts close the connection.
    pub(super) fn check_auth_failures(&self) -> Result<(), Close> {
        match self.who {
            Who::Pending { failures } if failures >= MAX_AUTH_FAILURES => Err(Close(
                CloseCode::Unauthorized,
                "too many failed authentication attempts",
            )),
            _ => Ok(()),
        }
    }

    /// `AUTH_TIMEOUT` passed unauthenticated, or the token expired.
    /// Whether this connection's token has expired by the wall clock.
    pub(super) fn expired_by_the_wall_clock(&self) -> bool {
        match (&self.who, &self.gw.auth) {
            (Who::Known(Principal::User(identity, _)), Some(auth)) => auth.expired(identity),
            _ => false,
        }
    }

    pub(super) fn auth_deadline_passed(&self) -> Close {
        match &self.who {
            Who::Pending { .. } => {
                let record = self.event(EventKind::AuthFailure).reason("timeout");
                self.gw.audit.record(record);
                Close(CloseCode::Unauthorized, "authentication timed out")
            }
            Who::Known(_) => {
                let record = self.event(EventKind::TokenRejected).reason("expired");
                self.gw.audit.record(record);
                Close(CloseCode::Unauthorized, "token expired")
            }
        }
    }

    /// An identity accepted earlier may have become invalid (a logout, the users file
    /// changed): checks it again, and closes the connection with 4401 if it is.
    pub(super) async fn recheck_identity(&self) -> Result<(), Close> {
        let Who::Known(Principal::User(identity, auth)) = &self.who else {
            return Ok(());
        };
        match auth.recheck(identity).await {
            Ok(()) => Ok(()),
            // The revocation store cannot answer (Redis down): an open connection keeps
            // streaming; the next change checks it again. New authentications fail closed.
            Err(crate::security::AuthError::Unavailable(reason)) => {
                tracing::warn!(%reason, "identity recheck deferred: the revocation store is unavailable");
                Ok(())
            }
            Err(error) => {
                let record = self.event(EventKind::TokenRejected).reason(error.reason());
                self.gw.audit.record(record);
                Err(Close(CloseCode::Unauthorized, close_reason(&error)))
            }
        }
    }

    /// Re-checks every channel whose session's shares changed since it was last checked.
    pub(super) async fn recheck_changed(&mut self, ws: &mut WebSocket) -> Result<(), Close> {
        let stale = |c: &super::Channel| c.access != c.att.hub.entry.access_epoch();
        if !self.channels.values().any(stale) {
            return Ok(());
        }
        let changed: Vec<u32> = self
            .channels
            .iter()
            .filter(|(_, c)| stale(c))
            .map(|(channel, _)| *channel)
            .collect();
        for channel in changed {
            self.recheck_access(ws, channel).await?;
        }
        Ok(())
    }

    /// If the shares of `channel`'s session changed since it was checked: a channel that
    /// lost its access ends (`session-closed`, reason `revoked`); a write channel that may
    /// now only read becomes read-only (`access-changed`). A channel never gains write
    /// access this way: the client attaches again for that.
    pub(super) async fn recheck_access(
        &mut self,
        ws: &mut WebSocket,
        channel: u32,
    ) -> Result<(), Close> {
        let Some(c) = self.channels.get(&channel) else {
            return Ok(());
        };
        let entry = c.att.hub.entry.clone();
        let epoch = entry.access_epoch();
        if c.access == epoch {
            return Ok(());
        }
        let allowed = self.reach_of(&entry).ok().and_then(Reach::mode);
        let Some(c) = self.channels.get_mut(&channel) else {
            return Ok(());
        };
        c.access = epoch;
        let session_id = entry.id.clone();
        let event = match (c.att.mode, allowed) {
            (_, None) => self.revoke(channel, session_id),
            (AttachMode::Write, Some(AttachMode::Read)) => {
                c.att.mode = AttachMode::Read;
                Event::AccessChanged {
                    session_id,
                    channel,
                    mode: AttachMode::Read,
                }
            }
            _ => return Ok(()),
        };
        self.send_text(ws, event.to_json()).await
    }
}

impl Conn {
    /// Ends a channel whose session the principal may no longer reach. Not inline in
    /// `recheck_access`: the audit record would stay in every connection's future.
    fn revoke(&mut self, channel: u32, session_id: String) -> Event {
        self.remove_channel(channel);
        self.audit_channel_end(&session_id, channel, "revoked");
        Event::SessionClosed {
            session_id,
            channel,
            reason: "revoked".into(),
        }
    }
}

/// Checks an `auth` request (or a `POST /api/login` body): exactly a user name and
/// password, or exactly a token. With a password, also the token issued for it.
pub(crate) async fn login(
    auth: &Authenticator,
    req: Auth,
) -> Result<(Identity, Option<Issued>), AuthError> {
    match (req.username, req.password, req.token) {
        (Some(user), Some(password), None) => {
            let issued = auth.login(&user, &Secret::new(password.expose())).await?;
            let identity = auth.verify(issued.token.expose()).await?;
            Ok((identity, Some(issued)))
        }
        (None, None, Some(token)) => Ok((auth.verify(token.expose()).await?, None)),
        _ => Err(AuthError::Malformed),
    }
}

/// The close reason (at most 123 bytes, no secrets) for a refused token.
pub fn close_reason(error: &AuthError) -> &'static str {
    match error {
        AuthError::Expired => "token expired",
        AuthError::NotYetValid => "token not valid yet",
        AuthError::Revoked => "token revoked",
        AuthError::Superseded => "user removed or changed",
        AuthError::Unavailable(_) => "authentication unavailable",
        _ => "invalid token",
    }
}
