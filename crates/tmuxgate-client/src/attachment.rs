//! [`Attachment`]: one attached channel: its `session-attach` data, its frames, and a
//! [`Terminal`] that every received frame is checked against.

use std::sync::Arc;
use std::time::Duration;

use tmuxgate_protocol::frame::ServerFrame;
use tmuxgate_protocol::request::AttachMode;
use tmuxgate_protocol::response::Attached;
use tokio::time::Instant;

use crate::reader::{FrameReceiver, Shared};
use crate::{ClientError, Terminal};

/// A channel returned by [`Client::attach`](crate::Client::attach).
///
/// Frames are queued (unbounded) until read; dropping the attachment stops the queueing.
/// Every frame read through it is applied to its [`Terminal`], so reading a frame that is
/// not contiguous with the previous ones fails with [`ClientError::Gap`]. A client made with
/// [`ClientOptions::keep_output`](crate::ClientOptions::keep_output) `false` gives
/// attachments whose terminal keeps offsets only: `wait_for` and `screen` then see no bytes.
pub struct Attachment {
    /// Channel number for binary frames and channel requests.
    pub channel: u32,
    /// The session attached.
    pub session_id: String,
    /// Pane id streamed (`%N`).
    pub pane: String,
    /// `write` or `read`.
    pub mode: AttachMode,
    /// Log offset where the stream starts (snapshot point or `resumeFrom`).
    pub offset: u64,
    /// Whether the stream starts with a SNAPSHOT (false: exact resume from `offset`).
    pub snapshot: bool,
    /// The pane log's id, to send as `resumeLogId` with `resumeFrom`.
    pub log_id: String,
    /// Pane width when attached.
    pub cols: u16,
    /// Pane height when attached.
    pub rows: u16,
    frames: FrameReceiver,
    terminal: Terminal,
    shared: Arc<Shared>,
}

impl Attachment {
    pub(crate) fn new(
        attached: Attached,
        frames: FrameReceiver,
        shared: Arc<Shared>,
        keep_output: bool,
    ) -> Attachment {
        let (channel, offset, snapshot) = (attached.channel, attached.offset, attached.snapshot);
        let terminal = match keep_output {
            true => Terminal::new(channel, offset, snapshot),
            false => Terminal::offsets_only(channel, offset, snapshot),
        };
        Attachment {
            channel: attached.channel,
            session_id: attached.session_id,
            pane: attached.pane,
            mode: attached.mode,
            log_id: attached.log_id,
            offset: attached.offset,
            snapshot: attached.snapshot,
            cols: attached.cols,
            rows: attached.rows,
            frames,
            terminal,
            shared,
        }
    }

    /// The next frame of this channel, after checking it against the [`Terminal`].
    /// Ends with [`ClientError::ChannelEnded`] (detached, session closed) or
    /// [`ClientError::Closed`] once every queued frame has been read.
    pub async fn next_frame(&mut self, timeout: Duration) -> Result<ServerFrame, ClientError> {
        let frame = match tokio::time::timeout(timeout, self.frames.recv()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return Err(self.ended()),
            Err(_) => return Err(ClientError::Timeout),
        };
        self.terminal.apply(&frame)?;
        Ok(frame)
    }

    /// Reads frames until `needle` appears after the previous match (see
    /// [`Terminal::find_next`]); bytes already received count.
    pub async fn wait_for(&mut self, needle: &[u8], timeout: Duration) -> Result<(), ClientError> {
        self.wait_until(|terminal| terminal.find_next(needle), timeout)
            .await
    }

    /// Reads frames until the stream has reached at least absolute offset `end`.
    pub async fn wait_for_offset(
        &mut self,
        end: u64,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        self.wait_until(
            |terminal| !terminal.awaiting_snapshot() && terminal.end_offset() >= end,
            timeout,
        )
        .await
    }

    /// Reads frames until `done` holds for the terminal (checked before each read).
    pub async fn wait_until(
        &mut self,
        mut done: impl FnMut(&mut Terminal) -> bool,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let deadline = Instant::now() + timeout;
        while !done(&mut self.terminal) {
            let left = deadline.saturating_duration_since(Instant::now());
            self.next_frame(left).await?;
        }
        Ok(())
    }

    /// Reads every frame already queued, without waiting; returns how many.
    pub fn drain(&mut self) -> Result<usize, ClientError> {
        let mut read = 0;
        while let Ok(frame) = self.frames.try_recv() {
            self.terminal.apply(&frame)?;
            read += 1;
        }
        Ok(read)
    }

    /// The stream received so far.
    pub fn terminal(&self) -> &Terminal {
        &self.terminal
    }

    /// The stream received so far, mutably (e.g. to search with [`Terminal::find_next`]).
    pub fn terminal_mut(&mut self) -> &mut Terminal {
        &mut self.terminal
    }

    /// Gives up the channel, keeping what it received (to continue it on a resumed attach).
    pub fn into_terminal(self) -> Terminal {
        self.terminal
    }

    /// Everything received since the last SNAPSHOT or the resume offset.
    pub fn bytes_since_start(&self) -> &[u8] {
        self.terminal.bytes_since_start()
    }

    /// Absolute offset just past the last byte received.
    pub fn end_offset(&self) -> u64 {
        self.terminal.end_offset()
    }

    /// The visible screen text at `cols`×`rows`.
    pub fn screen(&self, cols: u16, rows: u16) -> String {
        self.terminal.screen(cols, rows)
    }

    /// Continues `previous` (from an earlier attachment) on this one. On an exact resume
    /// (`snapshot == false`) this attachment must start where `previous` ended, else
    /// [`ClientError::Gap`]; when a SNAPSHOT is coming, `previous` is superseded by it.
    pub fn continue_from(&mut self, mut previous: Terminal) -> Result<(), ClientError> {
        if self.snapshot {
            return Ok(());
        }
        if self.terminal.end_offset() != self.offset {
            return Err(ClientError::Protocol(
                "continue_from must come before reading frames".into(),
            ));
        }
        if previous.end_offset() != self.offset {
            return Err(ClientError::Gap {
                channel: self.channel,
                expected: previous.end_offset(),
                got: self.offset,
            });
        }
        previous.set_channel(self.channel);
        self.terminal = previous;
        Ok(())
    }

    fn ended(&self) -> ClientError {
        self.shared
            .closed_error()
            .unwrap_or(ClientError::ChannelEnded {
                channel: self.channel,
            })
    }
}
