//! Output streaming for a connection's channels: copy from pane logs into OUTPUT frames,
//! fall back to SNAPSHOT frames, and turn status changes into events.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket};
use bytes::BytesMut;
use tmuxgate_protocol::Event;
use tmuxgate_protocol::frame::{FrameKind, OUTPUT_HEADER_BYTES, put_output_header};
use tokio_stream::wrappers::WatchStream;

use super::{Channel, Close, Conn, send};
use crate::audit::EventKind;
use crate::sessions::log::Read;
use crate::sessions::{Attachment, CloseReason, PaneStatus, Snapshot, Start};

/// Largest payload of one OUTPUT frame.
pub const FRAME_PAYLOAD_MAX_BYTES: usize = 32 * 1024;

/// Output sent for one channel per wakeup before other work gets a turn.
const PUMP_BUDGET_BYTES: usize = 256 * 1024;

/// A wake-up that finds at least this much output is bulk output (`cat` of a file, a
/// build log), not typing.
const BULK_BYTES: usize = 16 * 1024;

/// After bulk output a channel's next send waits this long, so the output gathered
/// meanwhile leaves in one large frame instead of one small frame per read from tmux: a
/// fraction of the sends and wake-ups, for both ends, and a delay no one can see in a
/// stream a terminal renders at 60 frames per second. Typing echo never waits (it is never
/// bulk), and neither does the first frame after a pause.
const BULK_HOLD: Duration = Duration::from_millis(4);

impl Conn {
    /// Registers a new channel and sends its first frames.
    pub(super) async fn start_channel(
        &mut self,
        ws: &mut WebSocket,
        channel: u32,
        att: Attachment,
        start: Start,
        last: PaneStatus,
        access: u32,
    ) -> Result<(), Close> {
        let updates = WatchStream::from_changes(att.view.subscribe());
        let offset = match &start {
            Start::Resume(offset) => *offset,
            Start::Snapshot(snap) => snap.offset,
        };
        self.channels.insert(
            channel,
            Channel {
                att,
                offset,
                last,
                refused_notice_sent: false,
                hold_until: None,
                access,
            },
        );
        self.updates.insert(channel, updates);
        // A share changed between the attach's decision and the subscription above.
        self.recheck_access(ws, channel).await?;
        if !self.channels.contains_key(&channel) {
            return Ok(());
        }
        if let Start::Snapshot(snap) = start {
            self.send_snapshot(ws, channel, &snap).await?;
        }
        self.pump(ws, channel).await
    }

    /// Removes a channel (detach, or its session ended).
    pub(super) fn remove_channel(&mut self, channel: u32) -> Option<Channel> {
        self.updates.remove(&channel);
        self.pending.retain(|c| *c != channel);
        self.held.retain(|c| *c != channel);
        self.channels.remove(&channel)
    }

    pub(super) async fn on_update(
        &mut self,
        ws: &mut WebSocket,
        channel: u32,
    ) -> Result<(), Close> {
        // A share changed: the channel may have lost access, before any more output.
        self.recheck_access(ws, channel).await?;
        // Output printed before a resize, a count change or the end goes out before their
        // events, held or not: an event never overtakes output, and a closing channel
        // loses nothing.
        if let Some(c) = self.channels.get_mut(&channel) {
            let (now, before) = (c.att.view.status(), c.last);
            if (now.cols, now.rows, now.viewers) != (before.cols, before.rows, before.viewers)
                || now.closed.is_some()
            {
                c.hold_until = None;
            }
        }
        self.pump(ws, channel).await?;
        let Some(c) = self.channels.get_mut(&channel) else {
            return Ok(());
        };
        let (now, before) = (c.att.view.status(), c.last);
        c.last = now;
        let resized = (now.cols, now.rows) != (before.cols, before.rows);
        if !resized && now.viewers == before.viewers && now.closed.is_none() {
            return Ok(()); // only output, already sent
        }
        let Some(c) = self.channels.get(&channel) else {
            return Ok(());
        };
        let session_id = c.att.hub.entry.id.clone();
        if (now.cols, now.rows) != (before.cols, before.rows) {
            let event = Event::SessionResized {
                session_id: session_id.clone(),
                channel,
                cols: now.cols,
                rows: now.rows,
            };
            self.send_text(ws, event.to_json()).await?;
        }
        if now.viewers != before.viewers {
            let event = if now.viewers > before.viewers {
                Event::ViewerJoined {
                    session_id: session_id.clone(),
                    viewers: now.viewers,
                }
            } else {
                Event::ViewerLeft {
                    session_id: session_id.clone(),
                    viewers: now.viewers,
                }
            };
            self.send_text(ws, event.to_json()).await?;
        }
        if let Some(reason) = now.closed {
            let backend = self
                .remove_channel(channel)
                .map(|c| c.att.hub.entry.backend.id.clone());
            self.audit_channel_end(&session_id, channel, reason.as_str());
            let event = match reason {
                CloseReason::BackendLost => Event::BackendLost {
                    session_id,
                    channel,
                    backend: backend.unwrap_or_default(),
                },
                other => Event::SessionClosed {
                    session_id,
                    channel,
                    reason: other.as_str().into(),
                },
            };
            self.send_text(ws, event.to_json()).await?;
        }
        Ok(())
    }

    /// `SESSION_DETACHED` for a channel the gateway ended. Not inline in the async
    /// callers: a local record would stay in every connection's future.
    pub(super) fn audit_channel_end(&self, session_id: &str, channel: u32, reason: &'static str) {
        let record = self.event(EventKind::SessionDetached).session(session_id);
        self.gw.audit.record(record.channel(channel).reason(reason));
    }

    /// When the earliest held channel may send again.
    pub(super) fn held_until(&self) -> Instant {
        let until = self
            .held
            .iter()
            .filter_map(|c| self.channels.get(c)?.hold_until);
        until.min().unwrap_or_else(Instant::now)
    }

    /// Sends the output of held channels whose hold is over.
    pub(super) async fn release_held(&mut self, ws: &mut WebSocket) -> Result<(), Close> {
        let now = Instant::now();
        for channel in std::mem::take(&mut self.held) {
            match self.channels.get(&channel).and_then(|c| c.hold_until) {
                Some(until) if until > now => self.held.push(channel),
                _ => self.pump(ws, channel).await?,
            }
        }
        Ok(())
    }

    /// Sends what the channel's pane log holds beyond its offset, up to a budget; after bulk
    /// output, not before the channel's hold is over.
    pub(super) async fn pump(&mut self, ws: &mut WebSocket, channel: u32) -> Result<(), Close> {
        let mut budget = PUMP_BUDGET_BYTES;
        if let Some(c) = self.channels.get_mut(&channel) {
            match c.hold_until {
                Some(until) if until > Instant::now() => {
                    if !self.held.contains(&channel) {
                        self.held.push(channel);
                    }
                    return Ok(());
                }
                _ => c.hold_until = None,
            }
        }
        loop {
            let Some(c) = self.channels.get_mut(&channel) else {
                return Ok(());
            };
            let mut frame = BytesMut::new();
            let read = c
                .att
                .view
                .log
                .read_with(c.offset, FRAME_PAYLOAD_MAX_BYTES, |n| {
                    frame.reserve(OUTPUT_HEADER_BYTES + n);
                    put_output_header(&mut frame, FrameKind::Output, channel, c.offset);
                    &mut frame
                });
            match read {
                Read::UpToDate => {
                    if PUMP_BUDGET_BYTES - budget >= BULK_BYTES {
                        c.hold_until = Some(Instant::now() + BULK_HOLD);
                    }
                    return Ok(());
                }
                Read::Data { next } => {
                    let sent = (next - c.offset) as usize;
                    c.offset = next;
                    self.gw
                        .stats
                        .bytes_out
                        .fetch_add(sent as u64, Ordering::Relaxed);
                    send(ws, Message::Binary(frame.freeze())).await?;
                    budget = budget.saturating_sub(sent);
                    if budget == 0 {
                        self.pending.push(channel);
                        return Ok(());
                    }
                }
                Read::Lost => {
                    let (hub, view) = (c.att.hub.clone(), c.att.view.clone());
                    // Boxed, as a rare path: it would otherwise grow every connection's future.
                    let snap = match Box::pin(hub.snapshot(&view)).await {
                        Ok(snap) => snap,
                        Err(e) => {
                            tracing::warn!(channel, error = %e, "snapshot failed");
                            return Ok(());
                        }
                    };
                    if let Some(c) = self.channels.get_mut(&channel) {
                        c.offset = snap.offset;
                    }
                    self.send_snapshot(ws, channel, &snap).await?;
                }
            }
        }
    }

    async fn send_snapshot(
        &self,
        ws: &mut WebSocket,
        channel: u32,
        snap: &Snapshot,
    ) -> Result<(), Close> {
        let mut frame = BytesMut::with_capacity(OUTPUT_HEADER_BYTES + snap.bytes.len());
        put_output_header(&mut frame, FrameKind::Snapshot, channel, snap.offset);
        frame.extend_from_slice(&snap.bytes);
        self.gw.stats.snapshots.fetch_add(1, Ordering::Relaxed);
        self.gw
            .stats
            .bytes_out
            .fetch_add(snap.bytes.len() as u64, Ordering::Relaxed);
        send(ws, Message::Binary(frame.freeze())).await
    }
}
