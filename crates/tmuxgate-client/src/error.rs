//! [`ClientError`]: everything a client call can fail with, and the one place a response's
//! `success` flag becomes a `Result`.

use serde::de::DeserializeOwned;
use serde_json::Value;
use tmuxgate_protocol::ErrorCode;
use tmuxgate_protocol::frame::FrameError;
use tmuxgate_protocol::response::ResponseBody;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The WebSocket could not be opened (TCP, HTTP upgrade, or a refused handshake).
    #[error("connect failed{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Connect {
        /// HTTP status of a refused upgrade, if the server answered one.
        status: Option<u16>,
        /// What went wrong.
        message: String,
    },
    /// The connection is closed; `code` and `reason` come from the server's close frame
    /// (1005 when it carried none, 1006 when the socket ended without one).
    #[error("connection closed: {code} {reason}")]
    Closed {
        /// WebSocket close code.
        code: u16,
        /// Close reason text.
        reason: String,
    },
    /// No answer (or no matching frame or event) before the deadline.
    #[error("timed out")]
    Timeout,
    /// The server answered `success: false`.
    #[error("server error {}: {message}", code.as_str())]
    Server {
        /// The response's `errorCode`.
        code: ErrorCode,
        /// The response's `error` text.
        message: String,
    },
    /// The server broke the protocol (bad JSON shape, missing fields, unexpected frame).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A binary frame from the server could not be decoded.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// An OUTPUT frame did not start where the previous one ended: bytes were lost or repeated.
    #[error("channel {channel}: OUTPUT frame at offset {got}, expected {expected}")]
    Gap {
        /// Channel of the frame.
        channel: u32,
        /// Offset the stream had reached.
        expected: u64,
        /// Offset the frame carried.
        got: u64,
    },
    /// The channel ended (detached, or its session closed) while the connection stays open.
    #[error("channel {channel} ended")]
    ChannelEnded {
        /// The channel.
        channel: u32,
    },
}

/// Turns a response into its `data` (`None` when absent), or [`ClientError::Server`] when it
/// reports a failure. A failure without `errorCode` is a [`ClientError::Protocol`] error.
pub fn into_data(body: ResponseBody) -> Result<Option<Value>, ClientError> {
    if body.success {
        return Ok(body.data);
    }
    let message = body.error.unwrap_or_default();
    match body.error_code {
        Some(code) => Err(ClientError::Server { code, message }),
        None => Err(ClientError::Protocol(format!(
            "failure response without errorCode: {message}"
        ))),
    }
}

/// Like [`into_data`], then decodes the data as `T`; missing or mistyped data is a
/// [`ClientError::Protocol`] error.
pub fn into_typed<T: DeserializeOwned>(body: ResponseBody) -> Result<T, ClientError> {
    let data = into_data(body)?
        .ok_or_else(|| ClientError::Protocol("success response without data".into()))?;
    serde_json::from_value(data)
        .map_err(|e| ClientError::Protocol(format!("unexpected response data: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> ResponseBody {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn failure_becomes_server_error() {
        let err = into_data(body(
            r#"{"success":false,"error":"gone","errorCode":"not_found"}"#,
        ));
        assert!(
            matches!(err, Err(ClientError::Server { code: ErrorCode::NotFound, message }) if message == "gone")
        );
        let err = into_data(body(r#"{"success":false,"error":"?"}"#));
        assert!(matches!(err, Err(ClientError::Protocol(_))));
    }

    #[test]
    fn typed_data_is_checked() {
        let ok: u32 = into_typed(body(r#"{"success":true,"data":7}"#)).unwrap();
        assert_eq!(ok, 7);
        assert!(matches!(
            into_typed::<u32>(body(r#"{"success":true}"#)),
            Err(ClientError::Protocol(_))
        ));
        assert!(matches!(
            into_typed::<u32>(body(r#"{"success":true,"data":"x"}"#)),
            Err(ClientError::Protocol(_))
        ));
    }
}
