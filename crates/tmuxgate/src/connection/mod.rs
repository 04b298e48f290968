//! One WebSocket connection: its loop, message intake, output streaming and closing.
//!
//! A single task per connection. It selects over the socket, the status watches of the
//! panes it has attached (new output, size, viewers, end) and a keepalive tick. Output is
//! copied from each pane log at this connection's own offsets straight into frames, so a
//! slow client only delays itself: when it falls out of the ring it gets a snapshot.
//! Responses are written by this task directly, never queued behind output.

mod auth;
mod exec;
mod requests;
mod stream;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::future::OptionFuture;
use tmuxgate_protocol::frame::decode_client_frame;
use tmuxgate_protocol::{ClientFrame, CloseCode, ErrorCode, Event, Response};
use tokio_stream::StreamExt;
use tokio_stream::StreamMap;
use tokio_stream::wrappers::WatchStream;

use auth::Who;
pub(crate) use auth::login;
pub use auth::{MAX_AUTH_FAILURES, client_message, close_reason};

use crate::abuse::Offense;
use crate::abuse::shared::{Cap, Counted};
use crate::access::Principal;
use crate::audit::{EventKind, Record};
use crate::server::Gateway;
use crate::sessions::{Attachment, PaneStatus};

/// A send that makes no progress for this long drops the connection (client stopped reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Attachments one connection may hold.
pub const MAX_CHANNELS_PER_CONNECTION: usize = 64;

/// Why the loop ended: the close frame to send, if any.
struct Close(CloseCode, &'static str);

/// One attached channel.
struct Channel {
    att: Attachment,
    offset: u64,
    last: PaneStatus,
    refused_notice_sent: bool,
    /// Bulk output: the next pump waits until then (see `stream::BULK_HOLD`).
    hold_until: Option<Instant>,
    /// The session's access epoch when this channel's access was last decided.
    access: u32,
}

/// The state of one connection.
pub struct Conn {
    gw: Arc<Gateway>,
    channels: HashMap<u32, Channel>,
    updates: StreamMap<u32, WatchStream<PaneStatus>>,
    /// Channels with output left over after their per-wakeup budget.
    pending: Vec<u32>,
    /// Channels whose output waits for their `hold_until`.
    held: Vec<u32>,
    next_channel: u32,
    last_seen: Instant,
    who: Who,
    /// `AUTH_TIMEOUT` while unauthenticated, then the token's expiry.
    auth_deadline: Option<tokio::time::Instant>,
    /// The client's address (after trusted proxies), for the audit log.
    peer: IpAddr,
    /// Terminal input budget: the GCRA state of `INPUT_BYTES_PER_SECOND`.
    input_tat: u64,
    /// Requests refused over the rate limit in a row (`RATE_LIMIT_CLOSE_AFTER` closes).
    limited_in_row: u32,
    /// INPUT frames are being dropped over the budget: the notice has been sent.
    input_refusing: bool,
    /// Responses of running commands come back here (made by the first command).
    exec: Option<Box<exec::ExecLink>>,
    /// What the fleet's caps counted for this connection, to uncount at its end.
    counted: Counted,
}

/// How a connection starts.
pub struct Admitted {
    /// Holds its slot under `MAX_CONNECTIONS`.
    pub permit: tokio::sync::OwnedSemaphorePermit,
    /// Whom it acts for; `None`: it came without a token and must send `auth`.
    pub principal: Option<Principal>,
    /// Identity changes ([`crate::security::Authenticator::changes`]), subscribed before
    /// the token was verified so that no revocation falls between the two; `None` with
    /// authentication off.
    pub changes: Option<tokio::sync::watch::Receiver<u64>>,
    /// The client's address.
    pub peer: IpAddr,
}

/// Runs a connection until it closes.
pub async fn serve(mut ws: WebSocket, gw: Arc<Gateway>, admitted: Admitted) {
    // Counted here, where the connection's end is certain, and uncounted below: here, and
    // then across the fleet.
    let mut counted = Counted::default();
    let admitted_here = gw.abuse.connection_opened(admitted.peer);
    let over = match admitted_here {
        false => true,
        true => match gw.abuse.client_cap_shared(admitted.peer).await {
            Cap::Counted => {
                counted.client = true;
                false
            }
            Cap::Full => {
                gw.abuse.connection_closed(admitted.peer);
                true
            }
            Cap::Skipped => false,
        },
    };
    if over {
        gw.stats.connections_refused.fetch_add(1, Ordering::Relaxed);
        let record = Record::new(EventKind::ConnectionRefused, Some(admitted.peer))
            .reason("max-connections-per-ip");
        gw.audit.record(record);
        let reason = "too many connections from this address";
        return close(&mut ws, CloseCode::TryAgainLater, reason).await;
    }
    gw.stats.connections.fetch_add(1, Ordering::Relaxed);
    gw.stats.connections_total.fetch_add(1, Ordering::Relaxed);
    let (who, auth_deadline) = match admitted.principal {
        Some(principal) => {
            let deadline = match &principal {
                Principal::User(identity, _) => Some(auth::expiry(identity)),
                Principal::Anyone => None,
            };
            (Who::Known(principal), deadline)
        }
        None => {
            let deadline = tokio::time::Instant::now() + gw.limits.auth_timeout;
            (Who::Pending { failures: 0 }, Some(deadline))
        }
    };
    let mut conn = Conn {
        gw: gw.clone(),
        channels: HashMap::new(),
        updates: StreamMap::new(),
        pending: Vec::new(),
        held: Vec::new(),
        next_channel: 1,
        last_seen: Instant::now(),
        who,
        auth_deadline,
        peer: admitted.peer,
        input_tat: 0,
        limited_in_row: 0,
        input_refusing: false,
        exec: None,
        counted,
    };
    gw.audit.record(conn.event(EventKind::ConnectionOpened));
    let joined = match conn.user_name().map(str::to_owned) {
        None => true,
        Some(user) => conn.join_user(&user).await,
    };
    // In a block: the result must not stay in the future across the close's send.
    let closing = {
        let ended = match joined {
            true => conn.run(&mut ws, admitted.changes).await,
            false => {
                gw.stats.connections_refused.fetch_add(1, Ordering::Relaxed);
                let record = conn
                    .event(EventKind::ConnectionRefused)
                    .reason("max-connections-per-user");
                gw.audit.record(record);
                let reason = "too many connections for this user";
                Err(Close(CloseCode::TryAgainLater, reason))
            }
        };
        conn.audit_closed(ended.as_ref().err());
        ended.err().map(|Close(code, reason)| {
            tracing::debug!(code = code.code(), reason, "closing connection");
            if code.is_violation() {
                gw.abuse.blocks.record(conn.peer, Offense::Protocol);
            }
            (code, reason)
        })
    };
    if let Some((code, reason)) = closing {
        close(&mut ws, code, reason).await;
    }
    // Uncounted by `Conn`'s drop, also when a panic unwinds through here.
    drop(conn);
    drop(admitted.permit);
}

impl Drop for Conn {
    /// Gives back what the connection was counted under: the open-connections gauge, its
    /// place under the per-address and per-user caps, here and across the fleet.
    fn drop(&mut self) {
        let abuse = &self.gw.abuse;
        let user = self.user_name();
        if let (true, Some(user)) = (self.counted.user_here, user) {
            abuse.user_left(user);
        }
        abuse.connection_closed(self.peer);
        abuse.uncount_shared(self.counted, self.peer, user);
        self.gw.stats.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Closes a connection whose token was refused at the upgrade with 4401 and `reason`.
pub async fn refuse(mut ws: WebSocket, reason: &'static str) {
    close(&mut ws, CloseCode::Unauthorized, reason).await;
}

/// Sends a close frame, waiting at most a second for a client that does not read.
async fn close(ws: &mut WebSocket, code: CloseCode, reason: &'static str) {
    let frame = CloseFrame {
        code: code.code(),
        reason: reason.into(),
    };
    let _ =
        tokio::time::timeout(Duration::from_secs(1), ws.send(Message::Close(Some(frame)))).await;
}

impl Conn {
    async fn run(
        &mut self,
        ws: &mut WebSocket,
        mut identity_changes: Option<tokio::sync::watch::Receiver<u64>>,
    ) -> Result<(), Close> {
        let interval = self.gw.limits.ping_interval;
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Announces revocations and user changes; only authenticated connections listen.
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
        let auth_timer = tokio::time::sleep_until(self.auth_deadline.unwrap_or(far));
        tokio::pin!(auth_timer);
        loop {
            let hold = (!self.held.is_empty()).then(|| self.held_until().into());
            if let Some(deadline) = self.auth_deadline
                && deadline != auth_timer.deadline()
            {
                auth_timer.as_mut().reset(deadline);
            }
            let is_user = matches!(self.who, Who::Known(Principal::User(..)));
            tokio::select! {
                biased;
                _ = self.gw.shutdown.cancelled() => return Err(Close(CloseCode::GoingAway, "server shutting down")),
                () = &mut auth_timer, if self.auth_deadline.is_some() => return Err(self.auth_deadline_passed()),
                Some(Ok(())) = OptionFuture::from(identity_changes.as_mut().map(|c| c.changed())), if is_user => {
                    self.recheck_identity().await?;
                }
                msg = ws.recv() => match msg {
                    None => return Ok(()),
                    Some(Err(e)) => return Err(read_error(e)),
                    Some(Ok(Message::Close(_))) => return Ok(()),
                    Some(Ok(msg)) => {
                        self.last_seen = Instant::now();
                        self.on_message(ws, msg).await?;
                    }
                },
                Some(Some(text)) = OptionFuture::from(self.exec.as_mut().map(|l| l.rx.recv())), if self.exec.is_some() => {
                    self.send_text(ws, text).await?;
                }
                Some((channel, _)) = self.updates.next(), if !self.updates.is_empty() => {
                    self.on_update(ws, channel).await?;
                }
                _ = std::future::ready(()), if !self.pending.is_empty() => {
                    for channel in std::mem::take(&mut self.pending) {
                        self.pump(ws, channel).await?;
                    }
                }
                Some(()) = OptionFuture::from(hold.map(tokio::time::sleep_until)), if hold.is_some() => {
                    self.release_held(ws).await?;
                }
                _ = ping.tick() => {
                    if self.last_seen.elapsed() > self.gw.limits.idle_timeout {
                        return Err(Close(CloseCode::IdleTimeout, "idle timeout"));
                    }
                    // The expiry timer is monotonic: a wall clock that jumped forward past
                    // the token's expiry is caught here, within a ping interval.
                    if self.expired_by_the_wall_clock() {
                        return Err(self.auth_deadline_passed());
                    }
                    send(ws, Message::Ping(Default::default())).await?;
                }
            }
        }
    }

    async fn on_message(&mut self, ws: &mut WebSocket, msg: Message) -> Result<(), Close> {
        let stats = &self.gw.stats;
        match msg {
            Message::Text(text) => {
                stats.messages_in.fetch_add(1, Ordering::Relaxed);
                stats
                    .bytes_in
                    .fetch_add(text.len() as u64, Ordering::Relaxed);
                // Boxed: request handling awaits sessions and tmux, a state machine far larger than
                // the streaming path; inline it would make every idle connection carry it.
                Box::pin(self.on_text(ws, text.as_str())).await
            }
            Message::Binary(data) => {
                stats
                    .bytes_in
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                if let Who::Pending { .. } = self.who {
                    return Err(Close(
                        CloseCode::Unauthorized,
                        "authenticate before sending input",
                    ));
                }
                self.on_binary(ws, &data).await
            }
            _ => Ok(()),
        }
    }

    async fn on_binary(&mut self, ws: &mut WebSocket, data: &[u8]) -> Result<(), Close> {
        let ClientFrame::Input { channel, data } = decode_client_frame(data)
            .map_err(|_| Close(CloseCode::BadFrame, "undecodable binary frame"))?;
        // One atomic load per frame: a share taken back or made read-only is in force
        // before the next keystroke, however busy the socket keeps this loop.
        if let Some(c) = self.channels.get(&channel)
            && c.access != c.att.hub.entry.access_epoch()
        {
            self.recheck_access(ws, channel).await?;
        }
        let Some(c) = self.channels.get_mut(&channel) else {
            // Channels are never reused: one below `next_channel` was attached and has ended
            // (detached, or its session closed while this input was on the wire). Typing into
            // a session someone else just destroyed must not cost every other tab its socket.
            if channel != 0 && channel < self.next_channel {
                tracing::debug!(channel, "input for an ended channel: dropped");
                return Ok(());
            }
            return Err(Close(
                CloseCode::UnknownChannel,
                "binary frame for an unknown channel",
            ));
        };
        let writable = c.att.mode == tmuxgate_protocol::request::AttachMode::Write;
        if writable && let Err(wait) = self.gw.abuse.take_input(&mut self.input_tat, data.len()) {
            return self.refuse_input(ws, channel, wait).await;
        }
        self.input_refusing = false;
        let Some(c) = self.channels.get_mut(&channel) else {
            return Ok(());
        };
        if c.att.mode == tmuxgate_protocol::request::AttachMode::Read {
            if !c.refused_notice_sent {
                c.refused_notice_sent = true;
                let event = Event::InputRefused {
                    channel,
                    error_code: ErrorCode::Forbidden,
                };
                return self.send_text(ws, event.to_json()).await;
            }
            return Ok(());
        }
        if !c.att.hub.input(c.att.view.pane, data) {
            // Once per frame while tmux is behind: debug, or a flood becomes log spam.
            tracing::debug!(channel, "input backlog full: dropping input");
        }
        Ok(())
    }

    /// Drops INPUT over the byte budget: one `input-refused` (`rate_limited`) per run of
    /// refused frames, counted once against the client.
    async fn refuse_input(
        &mut self,
        ws: &mut WebSocket,
        channel: u32,
        wait: Duration,
    ) -> Result<(), Close> {
        if std::mem::replace(&mut self.input_refusing, true) {
            return Ok(());
        }
        self.gw.abuse.input_refused(self.peer, wait);
        let event = Event::InputRefused {
            channel,
            error_code: ErrorCode::RateLimited,
        };
        self.send_text(ws, event.to_json()).await
    }

    /// `CONNECTION_CLOSED`, with the close code sent (none when the client closed).
    fn audit_closed(&self, close: Option<&Close>) {
        let code = close.map(|Close(code, _)| code.code());
        let record = self.event(EventKind::ConnectionClosed).closed(code);
        self.gw.audit.record(record);
    }

    async fn send_text(&self, ws: &mut WebSocket, text: String) -> Result<(), Close> {
        self.gw.stats.messages_out.fetch_add(1, Ordering::Relaxed);
        self.gw
            .stats
            .bytes_out
            .fetch_add(text.len() as u64, Ordering::Relaxed);
        send(ws, Message::Text(text.into())).await
    }

    async fn respond(&self, ws: &mut WebSocket, response: Response) -> Result<(), Close> {
        self.send_text(ws, response.to_json()).await
    }
}

/// Sends one message, giving up on a client that stopped reading.
async fn send(ws: &mut WebSocket, msg: Message) -> Result<(), Close> {
    match tokio::time::timeout(WRITE_TIMEOUT, ws.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Close(CloseCode::Normal, "")),
        Err(_) => Err(Close(CloseCode::TooSlow, "client too slow")),
    }
}

/// Maps a read error to the documented close code.
fn read_error(e: axum::Error) -> Close {
    use tokio_tungstenite::tungstenite::Error as WsError;
    match e.into_inner().downcast::<WsError>().map(|b| *b) {
        Ok(WsError::Capacity(_)) => Close(CloseCode::MessageTooLarge, "message too large"),
        Ok(WsError::Utf8(_)) => Close(CloseCode::InvalidUtf8, "text frame is not valid UTF-8"),
        Ok(WsError::Protocol(_)) => Close(CloseCode::BadFrame, "WebSocket protocol violation"),
        _ => Close(CloseCode::Normal, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `f` returns, without calling it.
    fn future_size<F, Fut>(_: F) -> usize
    where
        F: FnOnce(WebSocket, Arc<Gateway>, Admitted) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// Every connection holds one `serve` future (in its task), one `Conn` and a `Channel`
    /// per attachment, and 10,000 idle connections must fit in 100 MB. These bounds are the
    /// sizes measured when they were set (1,712 / 128 / 72 bytes on x86_64) plus a little:
    /// a change that grows them should be a decision, not an accident. Authentication
    /// (issue 5) grew `Conn` to 208 bytes (whom it acts for, the token's deadline, the
    /// client address) and the future to 2,040 (that state, the token timer and the watch
    /// of revocations): 4 MB per 10,000 connections, kept inline because boxing it would
    /// cost as much heap as it saves. Abuse resistance (issue 6) added 16 bytes to `Conn`
    /// (the input budget's GCRA state, refusals in a row) and brought the future to 2,176.
    /// Command execution (issue 7) added one boxed, lazily made channel for command
    /// responses: 8 bytes on `Conn` and the future. The fleet's shared caps (issue 9) added
    /// what a connection counted in the store (two flags; 8 bytes with alignment) to `Conn`,
    /// and so to the future: 2,192. Large, rare paths (request handling, snapshot fetches)
    /// are boxed to keep the future small.
    #[test]
    fn per_connection_state_stays_small() {
        let (future, conn, channel) = (
            future_size(serve),
            std::mem::size_of::<Conn>(),
            std::mem::size_of::<Channel>(),
        );
        eprintln!("serve future {future} B, Conn {conn} B, Channel {channel} B");
        assert!(future <= 2192, "connection future is {future} bytes");
        assert!(conn <= 232, "Conn is {conn} bytes");
        assert!(channel <= 96, "Channel is {channel} bytes");
    }
}
