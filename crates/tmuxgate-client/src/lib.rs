//! A Rust client for the tmuxgate WebSocket protocol v1 (`docs/protocol.md`).
//!
//! It drives the gateway exactly as a real client does: JSON requests in text frames with
//! numeric ids, responses routed back by id, events buffered, and terminal bytes in binary
//! frames routed by channel to an [`Attachment`], whose [`Terminal`] checks that OUTPUT
//! frames are contiguous (no gap, no duplicate) and renders the screen with `vt100`.
//! Every wire shape comes from `tmuxgate-protocol`; this crate defines none.
//!
//! It also lets tests misbehave on purpose: raw text and binary frames, invalid UTF-8,
//! responses without an id ([`Client::next_raw_response`]), and a client that stops reading
//! ([`Client::connect_paused`], [`Client::pause_reading`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use tmuxgate_client::{Client, ClientError, attach_request};
//! use tmuxgate_client::protocol::Event;
//!
//! # async fn demo() -> Result<(), ClientError> {
//! let client = Client::connect("ws://127.0.0.1:8080/ws").await?;
//! let session = client.create_session("build", 100, 30).await?;
//! let mut term = client.attach(attach_request(&session.session_id, 100, 30)).await?;
//! client.send_input(term.channel, b"echo hello\r").await?;
//! term.wait_for(b"hello\r\n", Duration::from_secs(5)).await?;
//! println!("{}", term.screen(100, 30));
//!
//! // Later, on a new connection: exactly the bytes missed, or a snapshot.
//! let reached = term.end_offset();
//! let mut request = attach_request(&session.session_id, 100, 30);
//! request.resume_from = Some(reached);
//! let other = Client::connect("ws://127.0.0.1:8080/ws").await?;
//! let resumed = other.attach(request).await?;
//! assert!(!resumed.snapshot, "the ring still held offset {reached}");
//!
//! client.destroy_session(&session.session_id).await?;
//! let closed = other
//!     .wait_event(|e| matches!(e, Event::SessionClosed { .. }), Duration::from_secs(5))
//!     .await?;
//! println!("{closed:?}");
//! client.close().await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod attachment;
mod client;
mod error;
mod events;
mod exec;
mod options;
mod reader;
mod session;
mod terminal;

pub use attachment::Attachment;
pub use client::Client;
pub use error::{ClientError, into_data, into_typed};
pub use options::{
    ClientOptions, DEFAULT_REQUEST_TIMEOUT, EVENT_BACKLOG, MAX_INCOMING_MESSAGE_BYTES,
    SOCKET_BUFFER_BYTES,
};
pub use session::attach_request;
pub use terminal::Terminal;

/// The TLS library of [`ClientOptions::tls`] (feature `tls`), re-exported so callers build
/// its `ClientConfig` with the same version.
#[cfg(feature = "tls")]
pub use rustls;
/// The wire types this client speaks, re-exported for convenience.
pub use tmuxgate_protocol as protocol;
/// The WebSocket message type accepted by [`Client::send`].
pub use tokio_tungstenite::tungstenite::Message;
/// The terminal emulator behind [`Terminal::parser`].
pub use vt100;
