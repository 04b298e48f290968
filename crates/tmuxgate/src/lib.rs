//! tmuxgate: a WebSocket gateway between browsers (and programs) and tmux.
#![forbid(unsafe_code)]

pub mod config;
pub mod server;

pub use server::Server;
