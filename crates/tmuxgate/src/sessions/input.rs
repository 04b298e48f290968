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

/// Input waiting to be sent, in arrival order.
#[derive(Default)]
pub struct InputQueue {
    chunks: Vec<(PaneId, Vec<u8>)>,
    bytes: usize,
}

impl InputQueue {
    /// Appends input for `pane`; false when the backlog is full.
    pub fn push(&mut self, pane: PaneId, data: &[u8]) -> bool {
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
}
