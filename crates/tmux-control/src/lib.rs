//! A tmux control-mode (`tmux -C`) client for tmuxgate.
//!
//! - [`ids`]: tmux's own object ids (`%7`, `@5`, `$3`) and validated names;
//! - [`command`]: command lines built so user data is always single-quoted;
//! - [`input`]: arbitrary bytes to `send-keys` commands that deliver them exactly;
//! - [`parse`]: line framing, `%output` unescaping, guards and notifications;
//! - [`client`]: the connection, with FIFO reply matching and a notification handler.
//!
//! Measured facts about tmux 3.3a that shape this crate are recorded next to
//! the code that relies on them (`input.rs`, `client/demux.rs`).
#![forbid(unsafe_code)]

pub mod client;
pub mod command;
#[doc(hidden)]
pub mod fuzz;
pub mod ids;
pub mod input;
pub mod parse;

#[cfg(test)]
mod test_lex;

pub use client::{
    Block, ControlClient, Error, Handler, Launch, Reply, Socket, SpawnOptions, Target, sh_quote,
};
pub use command::{Command, CommandError, CommandLine, quote};
pub use ids::{IdError, Name, PaneId, SessionId, WindowId};
pub use input::encode_input;
pub use parse::{Notification, decode_octal};
