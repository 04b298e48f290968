//! State shared by the client handles and the reader task: the FIFO of
//! commands waiting for replies and whether the connection is closed.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::{mpsc, oneshot, watch};

use super::{Block, Error, Reply};
use crate::CommandLine;
use crate::command::CommandError;

/// Most commands written but not yet answered; beyond this tmux is not
/// keeping up and new commands fail at once with `Error::Timeout`.
pub const PENDING_MAX_COMMANDS: usize = 4096;

/// Runs on the reader task when the first `%begin` of a reply is read.
pub(crate) type AtBegin = Box<dyn FnOnce() + Send>;

/// Why the connection closed; cloneable so every waiter gets an error.
#[derive(Debug, Clone)]
pub(crate) enum Closed {
    Exited(Option<String>),
    Protocol(String),
}

impl Closed {
    pub(crate) fn to_error(&self) -> Error {
        match self {
            Closed::Exited(reason) => Error::Exited {
                reason: reason.clone(),
            },
            Closed::Protocol(message) => Error::Protocol(message.clone()),
        }
    }
}

/// A command line written to tmux, waiting for its blocks.
pub(crate) struct Pending {
    /// Per command: whether its block may carry `%pause`/`%continue`.
    flow_control: Vec<bool>,
    blocks: Vec<Block>,
    at_begin: Option<AtBegin>,
    reply: oneshot::Sender<Result<Reply, Error>>,
}

impl Pending {
    pub(crate) fn new(
        line: &CommandLine,
        at_begin: Option<AtBegin>,
        reply: oneshot::Sender<Result<Reply, Error>>,
    ) -> Pending {
        let flow_control = line
            .commands()
            .iter()
            .map(|c| matches!(c.name(), "refresh-client" | "refresh"))
            .collect();
        Pending {
            flow_control,
            blocks: Vec::new(),
            at_begin,
            reply,
        }
    }

    fn complete(self) {
        let reply = Reply {
            blocks: self.blocks,
        };
        let result = reply.check().map(|()| reply);
        // The caller may have timed out and gone; nothing to do then.
        let _ = self.reply.send(result);
    }
}

/// What the reader needs when one of our blocks opens.
pub(crate) struct BlockStart {
    pub(crate) flow_control: bool,
    pub(crate) at_begin: Option<AtBegin>,
}

#[derive(Default)]
struct State {
    pending: VecDeque<Pending>,
    closed: Option<Closed>,
}

/// The shared half of a connection.
pub(crate) struct Shared {
    state: Mutex<State>,
    closed_tx: watch::Sender<bool>,
}

impl Shared {
    pub(crate) fn new() -> Shared {
        Shared {
            state: Mutex::default(),
            closed_tx: watch::Sender::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `pending` and hands `line` to the writer under one lock, so the
    /// order of pending entries is the order of lines written (FIFO matching).
    pub(crate) fn enqueue(
        &self,
        pending: Pending,
        line: Vec<u8>,
        writer: &mpsc::UnboundedSender<Vec<u8>>,
    ) -> Result<(), Error> {
        let mut state = self.lock();
        if let Some(closed) = &state.closed {
            return Err(closed.to_error());
        }
        if state.pending.len() >= PENDING_MAX_COMMANDS {
            return Err(Error::Timeout);
        }
        if line.last() != Some(&b'\n') || line[..line.len() - 1].contains(&b'\n') {
            return Err(Error::Build(CommandError::ForbiddenByte { byte: b'\n' }));
        }
        writer
            .send(line)
            .map_err(|_| Error::Exited { reason: None })?;
        state.pending.push_back(pending);
        Ok(())
    }

    /// One of our blocks opened: the front entry is the one it answers.
    pub(crate) fn begin_block(&self) -> Result<BlockStart, String> {
        let mut state = self.lock();
        let entry = state
            .pending
            .front_mut()
            .ok_or("reply block with no command waiting")?;
        let index = entry.blocks.len();
        let at_begin = if index == 0 {
            entry.at_begin.take()
        } else {
            None
        };
        let flow_control = entry.flow_control.get(index).copied().unwrap_or(false);
        Ok(BlockStart {
            flow_control,
            at_begin,
        })
    }

    /// One of our blocks closed: the entry completes after all its blocks or
    /// after the first error (an error stops the rest of a command line).
    pub(crate) fn finish_block(&self, block: Block) -> Result<(), String> {
        let mut state = self.lock();
        let entry = state
            .pending
            .front_mut()
            .ok_or("reply block with no command waiting")?;
        let done = block.error || entry.blocks.len() + 1 >= entry.flow_control.len();
        entry.blocks.push(block);
        if done && let Some(entry) = state.pending.pop_front() {
            entry.complete();
        }
        Ok(())
    }

    /// Closes the connection: every waiting command fails, later ones fail at
    /// once. Returns false if it was already closed.
    pub(crate) fn close(&self, reason: Closed) -> bool {
        let drained: Vec<Pending> = {
            let mut state = self.lock();
            if state.closed.is_some() {
                return false;
            }
            state.closed = Some(reason.clone());
            state.pending.drain(..).collect()
        };
        for entry in drained {
            let _ = entry.reply.send(Err(reason.to_error()));
        }
        self.closed_tx.send_replace(true);
        true
    }

    /// The close reason, once closed.
    pub(crate) fn closed(&self) -> Option<Closed> {
        self.lock().closed.clone()
    }

    /// A receiver that turns true when the connection closes.
    pub(crate) fn subscribe_closed(&self) -> watch::Receiver<bool> {
        self.closed_tx.subscribe()
    }
}
