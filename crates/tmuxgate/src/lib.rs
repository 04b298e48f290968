//! tmuxgate: a WebSocket gateway between browsers (and programs) and tmux.
//!
//! A browser or program opens a WebSocket, creates or attaches tmux sessions and streams
//! them live (protocol v1, `docs/protocol.md`). Each attached session has one long-lived tmux
//! control connection ([`tmux_control`]); its output goes into per-pane logs with absolute
//! offsets that every viewer reads at its own pace. See [`server`] for the library API.
#![forbid(unsafe_code)]

pub mod abuse;
pub mod access;
pub mod admin;
pub mod api;
pub mod audit;
pub mod backends;
pub mod cidr;
pub mod cli;
pub mod config;
pub mod connection;
pub mod error;
pub mod exec;
pub mod forwarded;
pub mod health;
pub mod health_probe;
pub mod http;
pub mod metrics;
pub mod origin;
pub mod policy;
pub mod security;
pub mod server;
pub mod sessions;
pub mod store;
pub mod supervise;
pub mod tls;
pub mod upgrade;
pub mod web;

pub use server::{Server, ServerHandle, Status};
