//! The connection's background tasks: the writer (stdin), the reader
//! (stdout: framing, reply matching, notifications) and stderr capture.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::demux::{Demux, Event};
use super::state::{Closed, Shared};
use super::{Block, Error, Handler};
use crate::Notification;
use crate::parse::LineFramer;

/// Size of one read from tmux's stdout.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Most bytes of queued command lines gathered into one write.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// Most bytes of the tmux client's stderr kept for error messages.
const STDERR_MAX_BYTES: usize = 4096;

/// How long to wait for stderr after stdout ended, to explain an exit.
const STDERR_GRACE: Duration = Duration::from_millis(500);

/// Completion of the start-up handshake.
pub(crate) type Ready = oneshot::Sender<Result<(), Error>>;

/// Writes queued command lines to tmux's stdin until the channel closes or
/// the connection closes; dropping stdin then makes the tmux client exit.
pub(crate) async fn write_loop(
    mut stdin: impl AsyncWrite + Unpin,
    mut lines: mpsc::UnboundedReceiver<Vec<u8>>,
    shared: Arc<Shared>,
) {
    let mut closed = shared.subscribe_closed();
    let mut batch = Vec::new();
    loop {
        let first = tokio::select! {
            line = lines.recv() => line,
            _ = closed.wait_for(|c| *c) => None,
        };
        let Some(first) = first else { return };
        batch.clear();
        batch.extend_from_slice(&first);
        while batch.len() < WRITE_BATCH_BYTES {
            match lines.try_recv() {
                Ok(line) => batch.extend_from_slice(&line),
                Err(_) => break,
            }
        }
        if let Err(e) = stdin.write_all(&batch).await {
            shared.close(Closed::Exited(Some(format!("writing to tmux failed: {e}"))));
            return;
        }
    }
}

/// Keeps the first [`STDERR_MAX_BYTES`] of stderr, draining the rest.
pub(crate) async fn capture_stderr(mut stderr: impl AsyncRead + Unpin) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = stderr.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = STDERR_MAX_BYTES.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    String::from_utf8_lossy(&kept).trim().to_owned()
}

/// The reader task's state.
pub(crate) struct Reader {
    shared: Arc<Shared>,
    handler: Box<dyn Handler>,
    demux: Demux,
    ready: Option<Ready>,
    exit_seen: bool,
    /// Set after a protocol violation: later lines are drained unread.
    broken: bool,
    /// Whether the attach command's own block (the first F=0 one) was seen.
    attach_block_seen: bool,
}

impl Reader {
    pub(crate) fn new(shared: Arc<Shared>, handler: Box<dyn Handler>, ready: Ready) -> Reader {
        Reader {
            shared,
            handler,
            demux: Demux::default(),
            ready: Some(ready),
            exit_seen: false,
            broken: false,
            attach_block_seen: false,
        }
    }

    /// Reads stdout until EOF. Keeps draining after `%exit` or a protocol
    /// violation: a tmux client that is not read can stall the server.
    pub(crate) async fn run(
        mut self,
        mut stdout: impl AsyncRead + Unpin,
        stderr: JoinHandle<String>,
    ) {
        let mut framer = LineFramer::new();
        let mut buf = vec![0u8; READ_CHUNK_BYTES];
        let mut io_error = None;
        loop {
            let n = match stdout.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    io_error = Some(format!("reading from tmux failed: {e}"));
                    break;
                }
            };
            if let Err(e) = framer.push(&buf[..n]) {
                self.violation(e.to_string());
            }
            while let Some(line) = framer.next_line() {
                self.line(line);
            }
            self.handler.flush();
        }
        self.finish(io_error, stderr).await;
    }

    fn line(&mut self, line: Vec<u8>) {
        if self.broken {
            return;
        }
        let result = match self.demux.feed(line) {
            Ok(event) => self.event(event),
            Err(message) => Err(message),
        };
        if let Err(message) = result {
            self.violation(message);
        }
    }

    fn event(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Nothing | Event::Opened { ours: false } => {}
            Event::Notification(n) => self.notify(n),
            Event::Opened { ours: true } => {
                let start = self.shared.begin_block()?;
                if start.flow_control {
                    self.demux.forward_flow_control();
                }
                if let Some(at_begin) = start.at_begin {
                    at_begin();
                }
            }
            Event::Closed { ours: true, block } => self.shared.finish_block(block)?,
            Event::Closed { ours: false, block } => self.foreign_block(block),
        }
        Ok(())
    }

    /// A block we did not ask for (F=0): an error in the attach command's
    /// own block (the first one) fails the handshake; hook output is ignored.
    fn foreign_block(&mut self, block: Block) {
        let is_attach_block = !std::mem::replace(&mut self.attach_block_seen, true);
        if is_attach_block && block.error {
            let reason = format!("tmux refused the connection: {}", block.text_lossy());
            self.settle(Err(Error::Exited {
                reason: Some(reason),
            }));
        }
    }

    fn notify(&mut self, n: Notification) {
        match &n {
            Notification::SessionChanged { .. } => self.settle(Ok(())),
            Notification::Exit { reason } => {
                self.exit_seen = true;
                let reason = reason
                    .as_ref()
                    .map(|r| String::from_utf8_lossy(r).into_owned());
                self.close(Closed::Exited(reason));
            }
            _ => {}
        }
        self.handler.notification(n);
    }

    fn settle(&mut self, result: Result<(), Error>) {
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(result);
        }
    }

    fn close(&mut self, reason: Closed) {
        self.settle(Err(reason.to_error()));
        self.shared.close(reason);
    }

    fn violation(&mut self, message: String) {
        tracing::warn!(%message, "tmux control protocol violation; closing the connection");
        self.broken = true;
        self.close(Closed::Protocol(message));
    }

    async fn finish(mut self, io_error: Option<String>, stderr: JoinHandle<String>) {
        let stderr = tokio::time::timeout(STDERR_GRACE, stderr).await;
        let stderr = stderr.ok().and_then(Result::ok).filter(|s| !s.is_empty());
        self.close(Closed::Exited(io_error.or(stderr)));
        if !self.exit_seen {
            self.handler
                .notification(Notification::Exit { reason: None });
        }
    }
}

/// If the reader stops for any reason (including a panicking handler), the
/// connection is closed so no command waits forever and the writer closes
/// tmux's stdin, which ends the tmux client.
impl Drop for Reader {
    fn drop(&mut self) {
        self.shared
            .close(Closed::Exited(Some("reader task ended".into())));
    }
}

#[cfg(test)]
#[path = "tasks_tests.rs"]
mod tests;
