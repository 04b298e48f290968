//! The one place where internal errors become wire errors.
//!
//! Messages sent to clients are fixed strings chosen here, never tmux's own error text; the
//! detail goes to the log.

use tmuxgate_protocol::ErrorCode;

use crate::backends::BackendError;
use crate::sessions::SessionError;

/// A failure to report to the client.
#[derive(Debug)]
pub struct WireError {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable message (safe to show).
    pub message: String,
    /// With `rate_limited`: when to retry (`retryAfter` on the wire).
    pub retry_after: Option<std::time::Duration>,
}

impl WireError {
    /// An error with a fixed code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> WireError {
        WireError {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// `rate_limited`, to be retried after `wait`.
    pub fn rate_limited(message: impl Into<String>, wait: std::time::Duration) -> WireError {
        WireError {
            retry_after: Some(wait),
            ..WireError::new(ErrorCode::RateLimited, message)
        }
    }
}

impl From<SessionError> for WireError {
    fn from(e: SessionError) -> WireError {
        use SessionError as E;
        let (code, message) = match &e {
            E::NotFound => (ErrorCode::NotFound, e.to_string()),
            E::PaneNotFound => (ErrorCode::NotFound, e.to_string()),
            E::Invalid(msg) => (ErrorCode::InvalidRequest, msg.clone()),
            E::NameTaken => (ErrorCode::Conflict, e.to_string()),
            E::Lost => (ErrorCode::Unavailable, e.to_string()),
            E::InputBacklog => (ErrorCode::RateLimited, e.to_string()),
            E::Backend(b) => backend(b),
            E::Tmux(t) => tmux(t),
            E::Build(_) => (
                ErrorCode::InvalidRequest,
                "the request carries bytes tmux cannot accept".to_string(),
            ),
            E::Snapshot(_) => (
                ErrorCode::Internal,
                "could not take a snapshot of the pane".to_string(),
            ),
        };
        if matches!(
            code,
            ErrorCode::Internal | ErrorCode::Unavailable | ErrorCode::Timeout
        ) {
            tracing::warn!(error = %e, code = code.as_str(), "request failed");
        }
        WireError::new(code, message)
    }
}

fn backend(e: &BackendError) -> (ErrorCode, String) {
    match e {
        BackendError::Unavailable(_) => (
            ErrorCode::Unavailable,
            "no tmux backend is available".into(),
        ),
        BackendError::NoCandidate(message) => (ErrorCode::Unavailable, message.clone()),
        BackendError::Tmux(t) => tmux(t),
        _ => (ErrorCode::Internal, "tmux backend error".into()),
    }
}

fn tmux(e: &tmux_control::Error) -> (ErrorCode, String) {
    match e {
        tmux_control::Error::Timeout => (
            ErrorCode::Timeout,
            "the tmux backend did not answer in time".into(),
        ),
        tmux_control::Error::Exited { .. }
        | tmux_control::Error::Io(_)
        | tmux_control::Error::Spawn(_) => (
            ErrorCode::Unavailable,
            "the tmux backend is unavailable".into(),
        ),
        _ => (
            ErrorCode::Internal,
            "the tmux backend refused the operation".into(),
        ),
    }
}
