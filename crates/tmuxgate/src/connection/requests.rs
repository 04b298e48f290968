//! Request dispatch: decode a text frame, run the request, answer with one response.

use std::time::Instant;

use axum::extract::ws::WebSocket;
use serde_json::{Value, json};
use tmuxgate_protocol::request::{
    AttachMode, SessionAttach, SessionCreate, SessionResize, SessionShare, SessionUnshare,
    TerminalInput,
};
use tmuxgate_protocol::response::{Attached, BackendInfo, HeartbeatReply, SessionList};
use tmuxgate_protocol::{ErrorCode, Request, Response, decode_request};

use super::{Close, Conn, MAX_CHANNELS_PER_CONNECTION, Who};
use crate::access::Listing;
use crate::access::Principal;
use crate::audit::EventKind;
use crate::backends::Backend;
use crate::error::WireError;
use crate::security::Permission;
use crate::sessions::access;
use crate::sessions::{SessionError, Start};
use tmuxgate_protocol::CloseCode;

/// A channel to start once the attach response is sent: the channel, the attachment, where
/// its stream starts, and the status the response reported.
type Starting = (
    u32,
    crate::sessions::Attachment,
    Start,
    crate::sessions::PaneStatus,
    u32,
);

/// A handled request: its data, and the backend it touched.
type Outcome = Result<(Value, Option<(std::sync::Arc<Backend>, Instant)>), WireError>;

impl Conn {
    pub(super) async fn on_text(&mut self, ws: &mut WebSocket, text: &str) -> Result<(), Close> {
        let started = Instant::now();
        let decoded = decode_request(text);
        let mut verdict = self.gw.abuse.check_request(self.user_and_role(), self.peer);
        // Heartbeats keep the connection alive and cost nothing: the local limit alone
        // bounds them, and no shared-store round trip is spent on them.
        let heartbeat = matches!(&decoded, Ok(i) if matches!(i.request, Request::Heartbeat(_)));
        if verdict.is_ok() && !heartbeat {
            verdict = (self.gw.abuse)
                .check_request_shared(self.user_and_role(), self.peer)
                .await;
        }
        if let Err(wait) = verdict {
            let id = match &decoded {
                Ok(incoming) => incoming.id.clone(),
                Err(e) => e.id.clone(),
            };
            return self.rate_limited(ws, id, wait).await;
        }
        self.limited_in_row = 0;
        let incoming = match decoded {
            Ok(incoming) => incoming,
            Err(e) => {
                self.gw.stats.request(None, started.elapsed());
                return self
                    .respond(ws, Response::err(e.id, e.code, e.message))
                    .await;
            }
        };
        let kind = incoming.request.type_name();
        // A share changed under a channel this request may use: decide that first.
        self.recheck_changed(ws).await?;
        let incoming = match (&self.who, incoming.request) {
            (Who::Known(_), Request::CommandExecute(req)) => {
                let id = incoming.id.clone();
                return match self.start_execute(incoming.id, req, started) {
                    Ok(()) => Ok(()),
                    Err(e) => self.respond_now(ws, id, kind, started, e).await,
                };
            }
            (Who::Known(_), Request::BatchExecute(req)) => {
                let id = incoming.id.clone();
                return match self.start_batch(incoming.id, req, started) {
                    Ok(()) => Ok(()),
                    Err(e) => self.respond_now(ws, id, kind, started, e).await,
                };
            }
            (_, request) => tmuxgate_protocol::Incoming {
                id: incoming.id,
                request,
            },
        };
        let mut start = None;
        let outcome = match (&self.who, &incoming.request) {
            (Who::Pending { .. }, Request::Auth(_) | Request::Heartbeat(_))
            | (Who::Known(_), _) => self.handle(incoming.request, &mut start).await,
            (Who::Pending { .. }, _) => Err(WireError::new(
                ErrorCode::Unauthorized,
                "authenticate first (send auth)",
            )),
        };
        let mut response = match outcome {
            Ok((data, backend)) => {
                let mut r = Response::ok(incoming.id, data);
                if let Some((backend, t0)) = backend {
                    let latency = t0.elapsed();
                    self.gw.stats.backend_command(latency);
                    r.backend_info = Some(BackendInfo {
                        kind: "tmux".into(),
                        id: backend.id.clone(),
                        latency: latency.as_secs_f64() * 1000.0,
                        load: self.gw.sessions.count_on(backend.index) as u64,
                    });
                }
                r
            }
            Err(e) => {
                let mut r = Response::err(incoming.id, e.code, e.message);
                r.retry_after = e.retry_after.map(crate::abuse::retry_after_ms);
                r
            }
        };
        let elapsed = started.elapsed();
        response.latency = Some(elapsed.as_secs_f64() * 1000.0);
        self.gw.stats.request(Some(kind), elapsed);
        self.respond(ws, response).await?;
        self.check_auth_failures()?;
        if let Some((channel, att, start, status, access)) = start {
            self.start_channel(ws, channel, att, start, status, access)
                .await?;
        }
        Ok(())
    }

    /// Answers a command request refused before it started.
    async fn respond_now(
        &mut self,
        ws: &mut WebSocket,
        id: Option<tmuxgate_protocol::request::RequestId>,
        kind: &'static str,
        started: Instant,
        e: WireError,
    ) -> Result<(), Close> {
        let mut response = Response::err(id, e.code, e.message);
        let elapsed = started.elapsed();
        response.latency = Some(elapsed.as_secs_f64() * 1000.0);
        self.gw.stats.request(Some(kind), elapsed);
        self.respond(ws, response).await
    }

    /// Answers a request over the rate limit; `RATE_LIMIT_CLOSE_AFTER` in a row close the
    /// connection with 4429.
    async fn rate_limited(
        &mut self,
        ws: &mut WebSocket,
        id: Option<tmuxgate_protocol::request::RequestId>,
        wait: std::time::Duration,
    ) -> Result<(), Close> {
        self.limited_in_row = self.limited_in_row.saturating_add(1);
        if self.limited_in_row >= self.gw.abuse.close_after {
            return Err(Close(CloseCode::RateLimited, "too many requests"));
        }
        let mut response = Response::err(id, ErrorCode::RateLimited, "too many requests");
        response.retry_after = Some(crate::abuse::retry_after_ms(wait));
        self.respond(ws, response).await
    }

    /// The user this connection acts for, if any.
    pub(super) fn user_name(&self) -> Option<&str> {
        self.user_and_role().map(|(user, _)| user)
    }

    /// The user (and role) whose request quota this connection spends; `None`: its
    /// address's.
    fn user_and_role(&self) -> Option<(&str, &str)> {
        match &self.who {
            Who::Known(Principal::User(identity, _)) => {
                Some((identity.user.as_str(), identity.role.as_str()))
            }
            _ => None,
        }
    }

    async fn handle(&mut self, request: Request, start: &mut Option<Starting>) -> Outcome {
        match request {
            Request::Auth(req) => Ok((to_value(self.on_auth(req).await?), None)),
            Request::Heartbeat(req) => {
                let reply = HeartbeatReply {
                    timestamp: req.timestamp,
                    server_time: tmuxgate_protocol::now_millis(),
                };
                Ok((to_value(reply), None))
            }
            Request::SessionCreate(req) => self.create(req).await,
            Request::SessionList => self.list(),
            Request::SessionAttach(req) => self.attach(req, start).await,
            Request::SessionDetach(req) => match self.remove_channel(req.channel) {
                Some(c) => {
                    let record = self.event(EventKind::SessionDetached);
                    let record = record.session(&c.att.hub.entry.id).channel(req.channel);
                    self.gw.audit.record(record.reason("request"));
                    Ok((json!({ "channel": req.channel }), None))
                }
                None => Err(unknown_channel()),
            },
            Request::SessionDestroy(req) => {
                self.session(&req.session_id, |may| may.destroy)?;
                let t0 = Instant::now();
                let backend = self.gw.sessions.destroy(&req.session_id).await?;
                let record = self.event(EventKind::SessionDestroyed);
                let record = record.session(&req.session_id).backend(&backend.id);
                self.gw.audit.record(record);
                Ok((json!({ "sessionId": req.session_id }), Some((backend, t0))))
            }
            Request::SessionResize(req) => self.resize(req).await,
            Request::TerminalInput(req) => self.input(req),
            Request::Metrics => {
                self.require(Permission::Metrics)?;
                Ok((self.gw.stats.summary(self.gw.sessions.count()), None))
            }
            Request::SessionShare(req) => self.share(req).await,
            Request::SessionUnshare(req) => self.unshare(req).await,
            Request::CommandValidate(req) => Ok((self.validate_command(req)?, None)),
            // Started by `on_text` before dispatch (they answer later, from their own
            // task); never handled here.
            Request::CommandExecute(_) | Request::BatchExecute(_) => Err(WireError::new(
                ErrorCode::Internal,
                "command requests are started before dispatch",
            )),
        }
    }

    pub(super) fn require(&self, permission: Permission) -> Result<(), WireError> {
        match self.principal()?.may(permission) {
            true => Ok(()),
            false => Err(self.denied(permission.name(), None)),
        }
    }

    async fn create(&mut self, req: SessionCreate) -> Outcome {
        self.require(Permission::SessionCreate)?;
        if req.options.backend.is_some() || !req.options.labels.is_empty() {
            self.require(Permission::SessionCreatePlacement)?;
        }
        let owner = self.principal()?.user().map(str::to_owned);
        let max = self.gw.abuse.max_sessions_per_user;
        if let Some(owner) = &owner
            && max > 0
        {
            let owned = self.gw.sessions.list().into_iter();
            let owned = owned.filter(|s| s.owner.as_deref() == Some(owner)).count();
            if owned >= max as usize {
                let message = format!("at most {max} sessions per user (MAX_SESSIONS_PER_USER)");
                return Err(WireError::new(ErrorCode::Conflict, message));
            }
        }
        let t0 = Instant::now();
        let (info, backend) = self
            .gw
            .sessions
            .create(&req.name, &req.options, owner.as_deref())
            .await?;
        let record = self.event(EventKind::SessionCreated);
        self.gw
            .audit
            .record(record.session(&info.session_id).backend(&backend.id));
        Ok((to_value(info), Some((backend, t0))))
    }

    /// The sessions the principal may see; shares only where it may see them.
    fn list(&self) -> Outcome {
        let principal = self.principal()?;
        let listing = principal
            .listing()
            .ok_or_else(|| self.denied("session.list", None))?;
        let mut sessions = self.gw.sessions.list();
        sessions.retain_mut(|info| {
            let grant = principal
                .user()
                .and_then(|user| access::grant(info.owner.as_deref(), &info.shares, user));
            let reach = principal.reach(info.owner.as_deref(), grant);
            if !reach.see_shares {
                info.shares.clear();
            }
            listing == Listing::All || reach.see
        });
        Ok((to_value(SessionList { sessions }), None))
    }

    async fn share(&mut self, req: SessionShare) -> Outcome {
        no_owners_without_auth(self)?;
        let (entry, _) = self.session(&req.session_id, |may| may.share)?;
        self.check_share_target(&req.user, entry.owner.as_deref())?;
        let before = self
            .gw
            .sessions
            .share(&req.session_id, &req.user, req.mode)
            .await?;
        let record = self
            .event(EventKind::SessionShared)
            .session(&req.session_id);
        let record = record.target_user(&req.user).mode(mode_name(req.mode));
        self.gw.audit.record(record);
        Ok((
            json!({ "sessionId": req.session_id, "user": req.user, "mode": req.mode, "previous": before }),
            None,
        ))
    }

    async fn unshare(&mut self, req: SessionUnshare) -> Outcome {
        no_owners_without_auth(self)?;
        self.session(&req.session_id, |may| may.share)?;
        let before = self
            .gw
            .sessions
            .unshare(&req.session_id, &req.user)
            .await
            .map_err(|e| match e {
                SessionError::NotFound => WireError::new(
                    ErrorCode::NotFound,
                    "the session is not shared with this user",
                ),
                other => other.into(),
            })?;
        let record = self
            .event(EventKind::SessionUnshared)
            .session(&req.session_id);
        self.gw.audit.record(record.target_user(&req.user));
        Ok((
            json!({ "sessionId": req.session_id, "user": req.user, "previous": before }),
            None,
        ))
    }

    /// A session is shared with an existing user other than its owner.
    fn check_share_target(&self, user: &str, owner: Option<&str>) -> Result<(), WireError> {
        let invalid = |m: &str| WireError::new(ErrorCode::InvalidRequest, m);
        let auth = no_owners_without_auth(self)?;
        let name = user
            .parse::<crate::security::UserName>()
            .map_err(|_| invalid("`user` is not a valid user name"))?;
        match auth.users().get(&name) {
            Ok(Some(_)) => {}
            Ok(None) => return Err(WireError::new(ErrorCode::NotFound, "no such user")),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the users file");
                return Err(WireError::new(
                    ErrorCode::Internal,
                    "the users file cannot be read",
                ));
            }
        }
        if owner == Some(user) {
            return Err(invalid("a session cannot be shared with its owner"));
        }
        Ok(())
    }

    async fn attach(&mut self, mut req: SessionAttach, start: &mut Option<Starting>) -> Outcome {
        if self.channels.len() >= MAX_CHANNELS_PER_CONNECTION {
            let msg = format!("at most {MAX_CHANNELS_PER_CONNECTION} attachments per connection");
            return Err(WireError::new(ErrorCode::Conflict, msg));
        }
        let mode = req.mode;
        let allows = move |may: crate::access::Reach| match mode {
            AttachMode::Write => may.write,
            AttachMode::Read => may.read,
        };
        let (entry, _) = self.session(&req.session_id, allows)?;
        if mode == AttachMode::Write && !self.principal()?.may(Permission::SessionResize) {
            // The attach's size would resize the session: only for roles that may.
            (req.cols, req.rows) = (None, None);
        }
        let t0 = Instant::now();
        let (att, how) = self.gw.sessions.attach(&req).await?;
        // Shares may have changed while the attach awaited tmux: decide again, with the
        // epoch read first, so any later change is seen when the channel is next used.
        let access = entry.access_epoch();
        if !allows(self.reach_of(&entry)?) {
            drop(att);
            return Err(self.denied("session", Some(&req.session_id)));
        }
        let channel = self.next_channel;
        self.next_channel = self.next_channel.wrapping_add(1).max(1);
        let status = att.view.status();
        let (offset, snapshot) = match &how {
            Start::Resume(offset) => (*offset, false),
            Start::Snapshot(snap) => (snap.offset, true),
        };
        let data = Attached {
            session_id: req.session_id,
            channel,
            pane: att.view.pane.to_string(),
            mode: req.mode,
            offset,
            log_id: att.view.log.id(),
            snapshot,
            cols: status.cols,
            rows: status.rows,
        };
        let backend = att.hub.entry.backend.clone();
        let record = self
            .event(EventKind::SessionAttached)
            .session(&data.session_id);
        let record = record.channel(channel).mode(mode_name(data.mode));
        self.gw.audit.record(record.backend(&backend.id));
        *start = Some((channel, att, how, status, access));
        Ok((to_value(data), Some((backend, t0))))
    }

    async fn resize(&mut self, req: SessionResize) -> Outcome {
        let c = self
            .channels
            .get(&req.channel)
            .ok_or_else(unknown_channel)?;
        crate::sessions::valid_dimension("cols", req.cols)?;
        crate::sessions::valid_dimension("rows", req.rows)?;
        // Only writers size a shared session; a read-only viewer's size is noted, not applied.
        let applied = c.att.mode == AttachMode::Write;
        if applied {
            self.require(Permission::SessionResize)?;
        }
        if applied {
            c.att.hub.resize(req.cols, req.rows).await?;
        }
        Ok((
            json!({ "channel": req.channel, "cols": req.cols, "rows": req.rows, "applied": applied }),
            None,
        ))
    }

    fn input(&mut self, req: TerminalInput) -> Outcome {
        let c = self
            .channels
            .get(&req.channel)
            .ok_or_else(unknown_channel)?;
        if c.att.mode == AttachMode::Read {
            return Err(WireError::new(
                ErrorCode::Forbidden,
                "this attachment is read-only",
            ));
        }
        let (hub, pane) = (c.att.hub.clone(), c.att.view.pane);
        if let Err(wait) = self
            .gw
            .abuse
            .take_input(&mut self.input_tat, req.data.len())
        {
            self.gw.abuse.input_refused(self.peer, wait);
            return Err(WireError::rate_limited("over the input byte budget", wait));
        }
        if !hub.input(pane, req.data.as_bytes()) {
            return Err(SessionError::InputBacklog.into());
        }
        Ok((
            json!({ "channel": req.channel, "bytes": req.data.len() }),
            None,
        ))
    }
}

/// Sharing needs owners, and sessions have none while authentication is off.
fn no_owners_without_auth(conn: &Conn) -> Result<&crate::security::Authenticator, WireError> {
    conn.gw.auth.as_ref().ok_or_else(|| {
        WireError::new(
            ErrorCode::InvalidRequest,
            "sessions have no owners while authentication is off",
        )
    })
}

/// The audit `mode` of an attachment or share.
fn mode_name(mode: AttachMode) -> &'static str {
    match mode {
        AttachMode::Read => "read",
        AttachMode::Write => "write",
    }
}

fn unknown_channel() -> WireError {
    WireError::new(ErrorCode::NotFound, "no such channel on this connection")
}

fn to_value<T: serde::Serialize>(value: T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
