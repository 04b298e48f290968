//! The reply-block state machine: which lines open and close blocks, which
//! are block content and which are notifications. Pure, no I/O.
//!
//! Rules (measured on tmux 3.3a; background in ../shared/notes/tmux-control-mode.md):
//! - Outside a block: `%begin` opens one; known notifications are reported;
//!   unknown `%` lines and other text are ignored; `%end`/`%error` are a
//!   protocol violation.
//! - Inside a block, only `%end`/`%error` with the same T, N and F as the
//!   `%begin` close it. Any other line is content, including lines that look
//!   like guards or notifications: command output is not escaped, and a pane
//!   process can put newlines into things a command may print (user options,
//!   `show-environment`, `#{pane_current_path}`, `#{pane_current_command}`),
//!   so such lines may be forged. A mismatched `%end` is therefore content,
//!   not an error: a forgery must not close the connection nor the block.
//! - `%pause`/`%continue` produced by `refresh-client -A` arrive inside that
//!   command's own block on 3.3a; they are reported as notifications only in
//!   blocks the caller marked with [`Demux::forward_flow_control`].
//! - N is a server-wide counter assigned when a command fires, so the N of
//!   every `%begin` this client sees increases (measured, also across hook
//!   blocks with F=0). A `%begin` whose N does not increase is a replay and a
//!   protocol violation (serial arithmetic allows wrap-around).

use crate::parse::{Guard, GuardKind, Notification, parse_guard};

use super::Block;

/// Largest reply block accepted, in bytes of content.
pub const BLOCK_MAX_BYTES: usize = 64 * 1024 * 1024;

/// What one line meant.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// Nothing to report (block content, ignored line).
    Nothing,
    /// A notification for the handler.
    Notification(Notification),
    /// A block opened; `ours` when F=1.
    Opened { ours: bool },
    /// A block closed.
    Closed { ours: bool, block: Block },
}

#[derive(Debug)]
struct OpenBlock {
    guard: Guard,
    block: Block,
    bytes: usize,
    forward_flow: bool,
}

/// Tracks whether a block is open and validates guards.
#[derive(Debug, Default)]
pub(crate) struct Demux {
    open: Option<OpenBlock>,
    last_number: Option<u32>,
}

impl Demux {
    /// Interprets one line; `Err` is a protocol violation.
    pub(crate) fn feed(&mut self, line: Vec<u8>) -> Result<Event, String> {
        match self.open.take() {
            None => self.outside(line),
            Some(open) => self.inside(open, line),
        }
    }

    /// Reports `%pause`/`%continue` lines in the current block as
    /// notifications (for `refresh-client` blocks).
    pub(crate) fn forward_flow_control(&mut self) {
        if let Some(open) = &mut self.open {
            open.forward_flow = true;
        }
    }

    fn outside(&mut self, line: Vec<u8>) -> Result<Event, String> {
        match parse_guard(&line) {
            Some((GuardKind::Begin, guard)) => self.open_block(guard),
            Some(_) => Err(format!("{} outside a reply block", String::from_utf8_lossy(&line))),
            None => Ok(Notification::parse(&line).map_or_else(
                || {
                    tracing::debug!(line = %String::from_utf8_lossy(&line), "ignoring line outside a reply block");
                    Event::Nothing
                },
                Event::Notification,
            )),
        }
    }

    fn open_block(&mut self, guard: Guard) -> Result<Event, String> {
        if let Some(last) = self.last_number {
            let ahead = guard.number.wrapping_sub(last);
            if ahead == 0 || ahead >= 1 << 31 {
                return Err(format!("reply number {} after {last}", guard.number));
            }
        }
        self.last_number = Some(guard.number);
        let block = Block::default();
        self.open = Some(OpenBlock {
            guard,
            block,
            bytes: 0,
            forward_flow: false,
        });
        Ok(Event::Opened {
            ours: guard.is_ours(),
        })
    }

    fn inside(&mut self, mut open: OpenBlock, line: Vec<u8>) -> Result<Event, String> {
        if let Some((kind, guard)) = parse_guard(&line) {
            if kind != GuardKind::Begin && guard == open.guard {
                open.block.error = kind == GuardKind::Error;
                return Ok(Event::Closed {
                    ours: guard.is_ours(),
                    block: open.block,
                });
            }
            tracing::debug!(?guard, open = ?open.guard, "guard-like line inside a block kept as content");
        } else if open.forward_flow
            && let Some(n @ (Notification::Pause { .. } | Notification::Continue { .. })) =
                Notification::parse(&line)
        {
            self.open = Some(open);
            return Ok(Event::Notification(n));
        }
        open.bytes += line.len() + 1;
        if open.bytes > BLOCK_MAX_BYTES {
            return Err(format!("reply block larger than {BLOCK_MAX_BYTES} bytes"));
        }
        open.block.lines.push(line);
        self.open = Some(open);
        Ok(Event::Nothing)
    }
}

#[cfg(test)]
#[path = "demux_tests.rs"]
mod tests;
