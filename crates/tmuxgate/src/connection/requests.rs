//! Request dispatch: decode a text frame, run the request, answer with one response.

use std::time::Instant;

use axum::extract::ws::WebSocket;
use serde_json::{Value, json};
use tmuxgate_protocol::request::{
    AttachMode, SessionAttach, SessionCreate, SessionResize, TerminalInput,
};
use tmuxgate_protocol::response::{Attached, BackendInfo, HeartbeatReply, SessionList};
use tmuxgate_protocol::{ErrorCode, Request, Response, decode_request};

use super::{Close, Conn, MAX_CHANNELS_PER_CONNECTION};
use crate::backends::Backend;
use crate::error::WireError;
use crate::sessions::{SessionError, Start};

/// A channel to start once the attach response is sent: the channel, the attachment, where
/// its stream starts, and the status the response reported.
type Starting = (
    u32,
    crate::sessions::Attachment,
    Start,
    crate::sessions::PaneStatus,
);

/// A handled request: its data, and the backend it touched.
type Outcome = Result<(Value, Option<(std::sync::Arc<Backend>, Instant)>), WireError>;

impl Conn {
    pub(super) async fn on_text(&mut self, ws: &mut WebSocket, text: &str) -> Result<(), Close> {
        let started = Instant::now();
        let incoming = match decode_request(text) {
            Ok(incoming) => incoming,
            Err(e) => {
                self.gw.stats.request(None, started.elapsed());
                return self
                    .respond(ws, Response::err(e.id, e.code, e.message))
                    .await;
            }
        };
        let kind = incoming.request.type_name();
        let mut start = None;
        let outcome = self.handle(incoming.request, &mut start).await;
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
            Err(e) => Response::err(incoming.id, e.code, e.message),
        };
        let elapsed = started.elapsed();
        response.latency = Some(elapsed.as_secs_f64() * 1000.0);
        self.gw.stats.request(Some(kind), elapsed);
        self.respond(ws, response).await?;
        if let Some((channel, att, start, status)) = start {
            self.start_channel(ws, channel, att, start, status).await?;
        }
        Ok(())
    }

    async fn handle(&mut self, request: Request, start: &mut Option<Starting>) -> Outcome {
        match request {
            Request::SessionCreate(req) => self.create(req).await,
            Request::SessionList => {
                let list = SessionList {
                    sessions: self.gw.sessions.list(),
                };
                Ok((to_value(list), None))
            }
            Request::SessionAttach(req) => self.attach(req, start).await,
            Request::SessionDetach(req) => match self.remove_channel(req.channel) {
                Some(_) => Ok((json!({ "channel": req.channel }), None)),
                None => Err(unknown_channel()),
            },
            Request::SessionDestroy(req) => {
                let t0 = Instant::now();
                let backend = self.gw.sessions.destroy(&req.session_id).await?;
                Ok((json!({ "sessionId": req.session_id }), Some((backend, t0))))
            }
            Request::SessionResize(req) => self.resize(req).await,
            Request::TerminalInput(req) => self.input(req),
            Request::Heartbeat(req) => {
                let reply = HeartbeatReply {
                    timestamp: req.timestamp,
                    server_time: tmuxgate_protocol::now_millis(),
                };
                Ok((to_value(reply), None))
            }
            Request::Metrics => Ok((self.gw.stats.summary(self.gw.sessions.count()), None)),
            // Authentication is refused at start-up until it is wired in (issue 5): with it
            // off there are no users to log in as and no owners to share from.
            Request::Auth(_) => Err(WireError::new(
                ErrorCode::InvalidRequest,
                "authentication is off on this gateway",
            )),
            Request::SessionShare(_) | Request::SessionUnshare(_) => Err(WireError::new(
                ErrorCode::InvalidRequest,
                "sessions have no owners while authentication is off",
            )),
        }
    }

    async fn create(&mut self, req: SessionCreate) -> Outcome {
        let t0 = Instant::now();
        let (info, backend) = self
            .gw
            .sessions
            .create(&req.name, &req.options, None)
            .await?;
        Ok((to_value(info), Some((backend, t0))))
    }

    async fn attach(&mut self, req: SessionAttach, start: &mut Option<Starting>) -> Outcome {
        if self.channels.len() >= MAX_CHANNELS_PER_CONNECTION {
            let msg = format!("at most {MAX_CHANNELS_PER_CONNECTION} attachments per connection");
            return Err(WireError::new(ErrorCode::Conflict, msg));
        }
        let t0 = Instant::now();
        let (att, how) = self.gw.sessions.attach(&req).await?;
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
            snapshot,
            cols: status.cols,
            rows: status.rows,
        };
        let backend = att.hub.entry.backend.clone();
        *start = Some((channel, att, how, status));
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
        if !c.att.hub.input(c.att.view.pane, req.data.as_bytes()) {
            return Err(SessionError::InputBacklog.into());
        }
        Ok((
            json!({ "channel": req.channel, "bytes": req.data.len() }),
            None,
        ))
    }
}

fn unknown_channel() -> WireError {
    WireError::new(ErrorCode::NotFound, "no such channel on this connection")
}

fn to_value<T: serde::Serialize>(value: T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
