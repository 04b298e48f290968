//! The tmuxgate wire protocol, version 1: every JSON shape and the binary frame codec.
//!
//! One WebSocket carries two kinds of frames:
//! - **text** frames hold JSON: client [`request`]s, and server [`response`]s and events;
//! - **binary** frames hold terminal bytes, framed by [`frame`] (OUTPUT, SNAPSHOT, INPUT).
//!
//! The gateway and the Rust client both use this crate, so the two can never disagree about
//! a field name. `docs/protocol.md` is the prose specification; a test checks that it names
//! every request type, event, error code and close code defined here.
#![forbid(unsafe_code)]

pub mod close;
pub mod frame;
#[doc(hidden)]
pub mod fuzz;
pub mod request;
pub mod response;

pub use close::CloseCode;
pub use frame::{ClientFrame, FrameError, FrameKind, ServerFrame};
pub use request::{DecodeError, Incoming, Request, RequestId, decode_request, encode_request};
pub use response::{ErrorCode, Event, Response, ServerMessage};

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Milliseconds since the Unix epoch, the unit of every `timestamp` field.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
