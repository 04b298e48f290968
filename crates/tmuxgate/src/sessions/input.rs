//! Terminal input on its way to tmux: a bounded per-hub queue, and the sender that turns it
//! into `send-keys` commands.
//!
//! Keystrokes that arrive while a `send-keys` is in flight accumulate in the queue and ride
//! in the next command, so a fast typist or a paste costs a few commands, not one per byte.

use tmux_control::{ControlClient, PaneId};
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

/// Sends queued input. A pane that refuses input (gone, in a mode) loses only its own
/// chunk; a connection that timed out or ended abandons the batch, so a hung tmux cannot
/// hold the hub for one timeout per command.
pub async fn send(
    client: &ControlClient,
    chunks: Vec<(PaneId, Vec<u8>)>,
    cancel: &CancellationToken,
) {
    let mut commands = Vec::new();
    for (pane, data) in chunks {
        commands.clear();
        tmux_control::encode_input(pane, &data, &mut commands);
        for cmd in commands.drain(..) {
            if cancel.is_cancelled() {
                return;
            }
            match client.command(cmd).await {
                Ok(_) => {}
                Err(tmux_control::Error::Command { .. }) => {
                    tracing::debug!(%pane, "tmux refused input");
                    break;
                }
                Err(e) => {
                    tracing::debug!(%pane, error = %e, "input abandoned");
                    return;
                }
            }
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
