//! The background reader: one task per connection that reads every server message and routes
//! it: responses by `id` to the waiting request, events to the [`EventQueue`], binary frames
//! by channel to their attachment. Nothing the server sends can make it panic.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use tmuxgate_protocol::frame::{ServerFrame, decode_server_frame};
use tmuxgate_protocol::request::RequestId;
use tmuxgate_protocol::response::ResponseBody;
use tmuxgate_protocol::{Event, ServerMessage};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::ClientError;
use crate::client::Ws;
use crate::events::{EventQueue, lock};

/// Close code recorded when the socket ended without a close frame (RFC 6455 "abnormal").
pub(crate) const ABNORMAL_CLOSURE: u16 = 1006;
/// Close code recorded when the close frame carried no code (RFC 6455 "no status").
pub(crate) const NO_STATUS: u16 = 1005;
/// How long the reader keeps reading after a close frame, so tungstenite can answer it.
const CLOSE_DRAIN: Duration = Duration::from_secs(1);

/// Receives one channel's frames.
pub(crate) type FrameReceiver = mpsc::UnboundedReceiver<ServerFrame>;

/// What a request waits for: its response, plus the frame receiver of a new attachment
/// (registered by the reader before the next message is read, so no frame is missed).
pub(crate) struct Reply {
    pub(crate) body: ResponseBody,
    pub(crate) frames: Option<FrameReceiver>,
}

/// A request in flight.
pub(crate) struct Pending {
    pub(crate) reply: oneshot::Sender<Reply>,
    pub(crate) attach: bool,
}

/// State shared by the client handle, its attachments and the reader task.
pub(crate) struct Shared {
    pub(crate) pending: Mutex<HashMap<u64, Pending>>,
    channels: Mutex<HashMap<u32, mpsc::UnboundedSender<ServerFrame>>>,
    raw: Mutex<Option<mpsc::UnboundedSender<ResponseBody>>>,
    pub(crate) events: EventQueue,
    pub(crate) closed: watch::Sender<Option<(u16, String)>>,
    malformed: AtomicU64,
}

impl Shared {
    /// Shared state plus the receiver of responses no request claimed.
    pub(crate) fn new() -> (Shared, mpsc::UnboundedReceiver<ResponseBody>) {
        let (raw_tx, raw_rx) = mpsc::unbounded_channel();
        let shared = Shared {
            pending: Mutex::new(HashMap::new()),
            channels: Mutex::new(HashMap::new()),
            raw: Mutex::new(Some(raw_tx)),
            events: EventQueue::new(),
            closed: watch::channel(None).0,
            malformed: AtomicU64::new(0),
        };
        (shared, raw_rx)
    }

    /// The close code and reason, once the connection has ended.
    pub(crate) fn close_info(&self) -> Option<(u16, String)> {
        self.closed.borrow().clone()
    }

    /// [`ClientError::Closed`] if the connection has ended.
    pub(crate) fn closed_error(&self) -> Option<ClientError> {
        self.close_info()
            .map(|(code, reason)| ClientError::Closed { code, reason })
    }

    /// Server messages that could not be decoded.
    pub(crate) fn malformed(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }

    /// Stops routing frames to `channel`; its receiver ends after the frames already queued.
    pub(crate) fn forget_channel(&self, channel: u32) {
        lock(&self.channels).remove(&channel);
    }

    /// Handles one message; returns the close code and reason when it is a close frame.
    fn handle(&self, message: Message) -> Option<(u16, String)> {
        match message {
            Message::Text(text) => self.handle_text(&text),
            Message::Binary(data) => match decode_server_frame(data) {
                Ok(frame) => self.route_frame(frame),
                Err(e) => self.count_malformed(format_args!("binary frame: {e}")),
            },
            Message::Close(Some(frame)) => {
                return Some((frame.code.into(), frame.reason.to_string()));
            }
            Message::Close(None) => return Some((NO_STATUS, String::new())),
            // tungstenite answers pings itself.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
        None
    }

    fn handle_text(&self, text: &str) {
        match serde_json::from_str::<ServerMessage>(text) {
            Ok(ServerMessage::Response(body)) => self.route_response(*body),
            Ok(ServerMessage::Event(body)) => self.route_event(body.event),
            Err(e) => self.count_malformed(format_args!("text frame: {e}")),
        }
    }

    fn count_malformed(&self, what: std::fmt::Arguments<'_>) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("undecodable server message: {what}");
    }

    fn route_response(&self, body: ResponseBody) {
        let id = match &body.id {
            Some(RequestId::Number(n)) => n.as_u64(),
            _ => None,
        };
        let pending = id.and_then(|id| lock(&self.pending).remove(&id));
        let Some(pending) = pending else {
            tracing::debug!(id = ?body.id, "response matches no request in flight");
            if let Some(raw) = lock(&self.raw).as_ref() {
                let _ = raw.send(body);
            }
            return;
        };
        let channel = if pending.attach {
            attached_channel(&body)
        } else {
            None
        };
        let frames = channel.map(|channel| self.register_channel(channel));
        if pending.reply.send(Reply { body, frames }).is_err() {
            // The request gave up (timeout) between our lookup and now.
            if let Some(channel) = channel {
                self.forget_channel(channel);
            }
        }
    }

    fn register_channel(&self, channel: u32) -> FrameReceiver {
        let (tx, rx) = mpsc::unbounded_channel();
        if lock(&self.channels).insert(channel, tx).is_some() {
            tracing::warn!(
                channel,
                "server reused a channel number that is still attached"
            );
        }
        rx
    }

    fn route_event(&self, event: Event) {
        if let Event::SessionClosed { channel, .. } | Event::BackendLost { channel, .. } = &event {
            self.forget_channel(*channel);
        }
        self.events.push(event);
    }

    fn route_frame(&self, frame: ServerFrame) {
        let channel = frame.channel;
        let mut channels = lock(&self.channels);
        let Some(tx) = channels.get(&channel) else {
            tracing::debug!(channel, "frame for a channel not attached: dropped");
            return;
        };
        if tx.send(frame).is_err() {
            // The attachment was dropped: stop queueing for it.
            channels.remove(&channel);
        }
    }

    /// Records the end of the connection and releases everyone waiting on it.
    fn finish(&self, code: u16, reason: String) {
        tracing::debug!(code, %reason, "connection closed");
        self.closed.send_replace(Some((code, reason)));
        lock(&self.pending).clear();
        lock(&self.channels).clear();
        lock(&self.raw).take();
        self.events.wake();
    }
}

/// The channel number in a successful `session-attach` response.
fn attached_channel(body: &ResponseBody) -> Option<u32> {
    if !body.success {
        return None;
    }
    let channel = body.data.as_ref()?.get("channel")?.as_u64()?;
    u32::try_from(channel).ok()
}

/// Reads until the connection ends, or until the client handle is dropped (`paused` closes).
/// While `paused` holds `true` the socket is not read at all.
pub(crate) async fn run(
    mut stream: SplitStream<Ws>,
    shared: std::sync::Arc<Shared>,
    mut paused: watch::Receiver<bool>,
) {
    let (code, reason) = loop {
        if *paused.borrow_and_update() {
            if paused.changed().await.is_err() {
                return;
            }
            continue;
        }
        let message = tokio::select! {
            message = stream.next() => message,
            changed = paused.changed() => match changed {
                Ok(()) => continue,
                Err(_) => return,
            },
        };
        match message {
            Some(Ok(message)) => {
                if let Some(close) = shared.handle(message) {
                    break close;
                }
            }
            Some(Err(e)) => break (ABNORMAL_CLOSURE, e.to_string()),
            None => {
                break (
                    ABNORMAL_CLOSURE,
                    "socket ended without a close frame".into(),
                );
            }
        }
    };
    shared.finish(code, reason);
    // Keep reading briefly so tungstenite sends its close reply and sees the socket end.
    let drain = async { while let Some(Ok(_)) = stream.next().await {} };
    let _ = tokio::time::timeout(CLOSE_DRAIN, drain).await;
}
