//! Terminal input on its way to tmux: a bounded per-hub queue, and the sender that turns it
//! into `send-keys` commands.
//!
//! Commands are pipelined up to a window; keystrokes that arrive while the window is full
//! accumulate in the queue and ride in the next command, so a fast typist or a paste costs a
//! few commands, not one per byte.

use futures_util::future::{BoxFuture, FutureExt};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tmux_control::{ControlClient, Error, PaneId, Reply};
use tokio_util::sync::CancellationToken;

/// Largest input backlog per hub; beyond it input is refused until tmux catches up.
pub const MAX_PENDING_INPUT_BYTES: usize = 1 << 20;

/// Input waiting to be sent, in arrival order, and what is known of each pane's line.
#[derive(Default)]
pub struct InputQueue {
    chunks: Vec<(PaneId, Vec<u8>)>,
    bytes: usize,
    lines: Vec<Line>,
}

/// What the gateway knows about the line being edited in one pane, for the command
/// executor: viewers' input (and mode changes) bump `typed`; `clean` is the `typed` count
/// at which the line was last known empty. The executor types only into a clean line, and
/// decides that under this queue's lock, so no keystroke can slip in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line {
    pane: PaneId,
    /// Viewer inputs and mode changes so far.
    pub typed: u64,
    /// `typed` when the line was last known empty.
    pub clean: Option<u64>,
    /// When a viewer last typed (or a mode changed).
    pub last_typed: Option<std::time::Instant>,
}

impl Line {
    fn bump(&mut self) {
        self.typed += 1;
        self.last_typed = Some(std::time::Instant::now());
    }

    /// Whether the line is known empty: nothing typed since it last was.
    pub fn is_clean(&self) -> bool {
        self.clean == Some(self.typed)
    }
}

/// Panes whose line state is kept per hub (as many as a session's panes are remembered).
const MAX_LINES: usize = 64;

impl InputQueue {
    /// Appends a viewer's input for `pane`; false when the backlog is full.
    pub fn push(&mut self, pane: PaneId, data: &[u8]) -> bool {
        if !self.push_raw(pane, data) {
            return false;
        }
        self.line_mut(pane).bump();
        true
    }

    /// Something other than input may have changed what keys do in `pane` (a mode).
    pub fn disturb(&mut self, pane: PaneId) {
        self.line_mut(pane).bump();
    }

    /// The line state of `pane`.
    pub fn line(&mut self, pane: PaneId) -> Line {
        *self.line_mut(pane)
    }

    /// Appends the executor's input if `check` accepts the pane's line state; `clean`
    /// (when given) records the line as empty once this input is in.
    pub fn push_checked(
        &mut self,
        pane: PaneId,
        data: &[u8],
        check: impl FnOnce(Line) -> bool,
        clean_after: bool,
    ) -> bool {
        if self.bytes + data.len() > MAX_PENDING_INPUT_BYTES {
            return false;
        }
        let line = self.line_mut(pane);
        if !check(*line) {
            return false;
        }
        if clean_after {
            line.clean = Some(line.typed);
        }
        self.push_raw(pane, data)
    }

    /// Records the line of `pane` as empty, if nothing was typed since `typed`.
    pub fn mark_clean(&mut self, pane: PaneId, typed: u64) -> bool {
        let line = self.line_mut(pane);
        if line.typed != typed {
            return false;
        }
        line.clean = Some(typed);
        true
    }

    fn line_mut(&mut self, pane: PaneId) -> &mut Line {
        let i = match self.lines.iter().position(|l| l.pane == pane) {
            Some(i) => i,
            None => {
                if self.lines.len() >= MAX_LINES {
                    self.lines.remove(0);
                }
                self.lines.push(Line {
                    pane,
                    typed: 0,
                    clean: None,
                    last_typed: None,
                });
                self.lines.len() - 1
            }
        };
        &mut self.lines[i]
    }

    fn push_raw(&mut self, pane: PaneId, data: &[u8]) -> bool {
        if self.bytes + data.len() > MAX_PENDING_INPUT_BYTES {
            return false;
        }
        self.bytes += data.len();
        match self.chunks.last_mut() {
            Some((p, buf)) if *p == pane => buf.extend_from_slice(data),
            _ => self.chunks.push((pane, data.to_vec())),
        }
        true
    }

    /// Takes everything queued.
    pub fn take(&mut self) -> Vec<(PaneId, Vec<u8>)> {
        self.bytes = 0;
        std::mem::take(&mut self.chunks)
    }
}

/// `send-keys` commands a hub keeps in flight. Input is pipelined: a keystroke does not wait
/// for the reply to the previous one (a round trip through a busy tmux and the gateway's
/// reader), only for room in this window; while the window is full, input coalesces in the
/// queue and rides in the next command.
pub const INPUT_WINDOW: usize = 16;

/// Replies to `send-keys` commands in flight.
pub type InFlight = FuturesUnordered<BoxFuture<'static, Result<Reply, Error>>>;

/// Submits queued input as `send-keys` commands, in order, keeping at most `INPUT_WINDOW` in
/// flight. A connection that ended or stopped answering (a reply timed out), or a hub
/// cancelled meanwhile, abandons the batch: a hung tmux costs one timeout, not one per
/// window of a long paste.
pub async fn send(
    client: &ControlClient,
    chunks: Vec<(PaneId, Vec<u8>)>,
    inflight: &mut InFlight,
    cancel: &CancellationToken,
) {
    let mut commands = Vec::new();
    for (pane, data) in chunks {
        commands.clear();
        tmux_control::encode_input(pane, &data, &mut commands);
        for cmd in commands.drain(..) {
            while inflight.len() >= INPUT_WINDOW {
                let reply = tokio::select! {
                    reply = inflight.next() => reply,
                    _ = cancel.cancelled() => return,
                };
                match reply {
                    Some(reply) => {
                        if !settled(reply) {
                            return;
                        }
                    }
                    None => break,
                }
            }
            if cancel.is_cancelled() {
                return;
            }
            match client.submit(cmd) {
                Ok(reply) => inflight.push(reply.boxed()),
                Err(e) => {
                    tracing::debug!(%pane, error = %e, "input abandoned");
                    return;
                }
            }
        }
    }
}

/// Notes the outcome of one `send-keys`; false when the connection ended or stopped
/// answering. A pane that refuses input (gone, in a mode) loses that input, nothing else.
pub fn settled(reply: Result<Reply, Error>) -> bool {
    match reply {
        Ok(_) => true,
        Err(Error::Command { .. }) => {
            tracing::debug!("tmux refused input");
            true
        }
        Err(e) => {
            tracing::debug!(error = %e, "input lost");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesces_per_pane_and_bounds_the_backlog() {
        let mut q = InputQueue::default();
        assert!(q.push(PaneId(1), b"ab"));
        assert!(q.push(PaneId(1), b"c"));
        assert!(q.push(PaneId(2), b"x"));
        assert!(!q.push(PaneId(2), &vec![0; MAX_PENDING_INPUT_BYTES]));
        assert_eq!(
            q.take(),
            vec![(PaneId(1), b"abc".to_vec()), (PaneId(2), b"x".to_vec())]
        );
        assert!(q.push(PaneId(2), &vec![0; MAX_PENDING_INPUT_BYTES]));
    }

    #[test]
    fn a_line_is_clean_only_until_someone_types() {
        let mut q = InputQueue::default();
        let pane = PaneId(3);
        assert!(!q.line(pane).is_clean(), "unknown at first");
        assert!(q.mark_clean(pane, 0));
        assert!(q.line(pane).is_clean());
        assert!(q.push(pane, b"x"));
        assert!(!q.line(pane).is_clean());
        assert!(!q.mark_clean(pane, 0), "typed since the probe");
        assert!(!q.push_checked(pane, b"ls\r", |l| l.is_clean(), true));
        assert!(q.mark_clean(pane, 1));
        assert!(q.push_checked(pane, b"ls\r", |l| l.is_clean(), true));
        q.disturb(pane);
        assert!(!q.line(pane).is_clean());
        let sent: usize = q.take().iter().map(|(_, d)| d.len()).sum();
        assert_eq!(sent, b"xls\r".len());
    }
}
