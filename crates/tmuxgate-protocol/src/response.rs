//! Server → client JSON: responses to requests, and events the server sends on its own.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::request::RequestId;

/// A stable, machine-readable error code (`errorCode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed: bad JSON, missing or mistyped fields, invalid values.
    InvalidRequest,
    /// The request `type` is not one the gateway knows.
    UnknownType,
    /// The session or channel does not exist (or is not visible to this client).
    NotFound,
    /// The client may not do this (for example input on a read-only attachment).
    Forbidden,
    /// The request conflicts with the current state (for example a duplicate session name).
    Conflict,
    /// Too many requests; retry later.
    RateLimited,
    /// The backend holding the session is unavailable or was lost.
    Unavailable,
    /// The backend did not answer in time.
    Timeout,
    /// An unexpected failure inside the gateway.
    Internal,
    /// Not authenticated: wrong credentials, or a request before `auth` succeeded.
    Unauthorized,
}

impl ErrorCode {
    /// Every code, for documentation checks.
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::InvalidRequest,
        ErrorCode::UnknownType,
        ErrorCode::NotFound,
        ErrorCode::Forbidden,
        ErrorCode::Conflict,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::Timeout,
        ErrorCode::Internal,
        ErrorCode::Unauthorized,
    ];

    /// The wire spelling, e.g. `invalid_request`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Internal => "internal",
            ErrorCode::Unauthorized => "unauthorized",
        }
    }
}

/// Which backend served a request (`backendInfo`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackendInfo {
    /// Always `tmux`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Backend id, e.g. `tmux-0`.
    pub id: String,
    /// Milliseconds the backend took for this request.
    pub latency: f64,
    /// Sessions on that backend.
    pub load: u64,
}

/// `{"type":"response", ...}`: the answer to one request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    /// Always `response`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The request's id (null when the request had none or could not be read).
    pub id: Option<RequestId>,
    /// Whether the request succeeded.
    pub success: bool,
    /// Result data on success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Human-readable error on failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Machine-readable error on failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
    /// With `rate_limited`: milliseconds after which the same request would be allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Server clock, milliseconds since the epoch.
    pub timestamp: u64,
    /// Server-side handling time in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<f64>,
    /// The backend that served the request, when one was involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_info: Option<BackendInfo>,
}

impl Response {
    /// A success carrying `data`.
    pub fn ok(id: Option<RequestId>, data: Value) -> Response {
        Response::new(id, true, Some(data), None)
    }

    /// A failure with a code and a message.
    pub fn err(id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> Response {
        Response::new(id, false, None, Some((code, message.into())))
    }

    fn new(
        id: Option<RequestId>,
        success: bool,
        data: Option<Value>,
        err: Option<(ErrorCode, String)>,
    ) -> Response {
        let (error_code, error) = err.unzip();
        Response {
            kind: "response".into(),
            id,
            success,
            data,
            error,
            error_code,
            retry_after: None,
            timestamp: crate::now_millis(),
            latency: None,
            backend_info: None,
        }
    }

    /// Serialises to the JSON text frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"type":"response","success":false}"#.into())
    }
}

/// Data of `session-create` (and entries of `session-list`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    /// Opaque id for later requests.
    pub session_id: String,
    /// Display name.
    pub name: String,
    /// Backend id holding the session.
    pub backend: String,
    /// Creation time, milliseconds since the epoch.
    pub created_at: u64,
    /// Attached viewers (in `session-list`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub viewers: Option<u32>,
    /// Current width.
    pub cols: u16,
    /// Current height.
    pub rows: u16,
    /// The user who created it (absent when authentication is off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Users it is shared with (shown to its owner and to administrators).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shares: Vec<Share>,
}

/// One user a session is shared with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// User name.
    pub user: String,
    /// `read` or `write`.
    pub mode: crate::request::AttachMode,
}

/// Data of a successful `auth`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthReply {
    /// A token for later connections (after a password login; absent after a token login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// When the token expires, milliseconds since the epoch.
    pub expires_at: u64,
    /// The authenticated user.
    pub user: String,
    /// Their role.
    pub role: String,
}

impl std::fmt::Debug for AuthReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthReply")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("expires_at", &self.expires_at)
            .field("user", &self.user)
            .field("role", &self.role)
            .finish()
    }
}

/// Data of `session-list`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionList {
    /// Every session.
    pub sessions: Vec<SessionInfo>,
}

/// Data of `session-attach`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attached {
    /// The session attached.
    pub session_id: String,
    /// Channel number for binary frames and channel requests.
    pub channel: u32,
    /// Pane id streamed on this channel (`%N`).
    pub pane: String,
    /// `write` or `read`.
    pub mode: crate::request::AttachMode,
    /// Log offset where this channel's stream starts (snapshot point or `resumeFrom`).
    pub offset: u64,
    /// The pane log's id: offsets belong to it. Send it back as `resumeLogId` with
    /// `resumeFrom`.
    #[serde(default)]
    pub log_id: String,
    /// Whether the stream starts with a SNAPSHOT frame (false: exact resume).
    pub snapshot: bool,
    /// Current pane width.
    pub cols: u16,
    /// Current pane height.
    pub rows: u16,
}

/// Data of `command-execute` (also the data of its `timeout` error), and one entry of
/// `batch-execute`'s results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandResult {
    /// What the command printed (the pane's bytes between its start and end marks).
    pub output: String,
    /// Its exit status; null when it did not end (timed out and ignored Ctrl-C).
    pub exit_code: Option<i32>,
    /// From typing the line to its end, in milliseconds.
    pub duration_ms: u64,
    /// Whether output was left out (over `EXEC_MAX_OUTPUT_BYTES`, or out of the pane log).
    pub truncated: bool,
    /// Whether it ran out of time and was interrupted with Ctrl-C.
    pub timed_out: bool,
}

/// One entry of `batch-execute`'s results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItem {
    /// Position in `commands`.
    pub index: u32,
    /// What it gave, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<CommandResult>,
    /// Why it did not run or did not finish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
    /// The error, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Data of `batch-execute`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResult {
    /// One entry per command run or attempted, in order.
    pub results: Vec<BatchItem>,
    /// Whether it stopped before the end (a failure with `stopOnError`).
    pub stopped: bool,
}

/// Data of `command-validate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// Whether the policy allows this caller to run it.
    pub allowed: bool,
    /// With `allowed`: the words as validated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// With `allowed`: the exact line the gateway would type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    /// With `allowed`: the rule that allows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Without: a stable code for the reason (e.g. `command-substitution`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Without: the reason, naming the construct.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Data of `heartbeat`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatReply {
    /// The client's timestamp, echoed.
    pub timestamp: Option<Value>,
    /// Server clock, milliseconds since the epoch.
    pub server_time: u64,
}

/// `{"type":"event", "event", "data", "timestamp"}`: something the server tells on its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "kebab-case")]
pub enum Event {
    /// The session ended (destroyed, or its shell exited); the channel is gone.
    SessionClosed {
        /// Session id.
        #[serde(rename = "sessionId")]
        session_id: String,
        /// The channel that was attached to it.
        channel: u32,
        /// `destroyed`, `exited`, `detached` or `revoked` (the access to it was taken back).
        reason: String,
    },
    /// The pane streamed on `channel` changed size.
    SessionResized {
        /// Session id.
        #[serde(rename = "sessionId")]
        session_id: String,
        /// Channel concerned.
        channel: u32,
        /// New width.
        cols: u16,
        /// New height.
        rows: u16,
    },
    /// Someone attached to the session.
    ViewerJoined {
        /// Session id.
        #[serde(rename = "sessionId")]
        session_id: String,
        /// Viewers now attached.
        viewers: u32,
    },
    /// Someone detached from the session.
    ViewerLeft {
        /// Session id.
        #[serde(rename = "sessionId")]
        session_id: String,
        /// Viewers now attached.
        viewers: u32,
    },
    /// The backend holding the session died; the channel is gone.
    BackendLost {
        /// Session id.
        #[serde(rename = "sessionId")]
        session_id: String,
        /// Channel that was attached.
        channel: u32,
        /// Backend id.
        backend: String,
    },
    /// This connection's access to the session changed while `channel` was attached: `read`
    /// (a write share became read-only; input is refused from now on).
    AccessChanged {
        /// Session id.
        #[serde(rename = "sessionId")]
        session_id: String,
        /// Channel concerned.
        channel: u32,
        /// The channel's mode from now on.
        mode: crate::request::AttachMode,
    },
    /// Binary input was dropped: the channel is read-only (sent once per channel), or the
    /// connection is over its input byte budget (sent once per refusal run).
    InputRefused {
        /// Channel concerned.
        channel: u32,
        /// `forbidden` (a read-only channel) or `rate_limited` (over the input byte budget).
        #[serde(rename = "errorCode")]
        error_code: ErrorCode,
    },
}

impl Event {
    /// Every event name, for documentation checks.
    pub const NAMES: [&'static str; 7] = [
        "session-closed",
        "session-resized",
        "viewer-joined",
        "viewer-left",
        "backend-lost",
        "access-changed",
        "input-refused",
    ];

    /// Serialises to the JSON text frame.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Framed<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            #[serde(flatten)]
            event: &'a Event,
            timestamp: u64,
        }
        let framed = Framed {
            kind: "event",
            event: self,
            timestamp: crate::now_millis(),
        };
        serde_json::to_string(&framed).unwrap_or_default()
    }
}

/// Any text frame the server sends, as a client decodes it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerMessage {
    /// A response to a request.
    Response(Box<ResponseBody>),
    /// An event.
    Event(EventBody),
}

/// A response as decoded by a client (the `type` tag already consumed).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseBody {
    /// The request's id.
    pub id: Option<RequestId>,
    /// Whether it succeeded.
    pub success: bool,
    /// Result data.
    pub data: Option<Value>,
    /// Error message.
    pub error: Option<String>,
    /// Error code.
    pub error_code: Option<ErrorCode>,
    /// With `rate_limited`: milliseconds until a retry would be allowed.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Server-side latency in ms.
    pub latency: Option<f64>,
    /// Backend that served it.
    pub backend_info: Option<BackendInfo>,
}

/// An event as decoded by a client.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct EventBody {
    /// The event itself.
    #[serde(flatten)]
    pub event: Event,
    /// Server clock.
    pub timestamp: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_shape_matches_the_spec() {
        let ev = Event::ViewerJoined {
            session_id: "s1".into(),
            viewers: 2,
        };
        let v: Value = serde_json::from_str(&ev.to_json()).unwrap();
        assert_eq!(v["type"], "event");
        assert_eq!(v["event"], "viewer-joined");
        assert_eq!(v["data"]["sessionId"], "s1");
        assert!(v["timestamp"].is_u64());
        let back: ServerMessage = serde_json::from_value(v).unwrap();
        assert!(matches!(back, ServerMessage::Event(EventBody { event, .. }) if event == ev));
    }

    #[test]
    fn error_response_shape() {
        let r = Response::err(
            Some(RequestId::Number(3.into())),
            ErrorCode::NotFound,
            "no such session",
        );
        let v: Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["errorCode"], "not_found");
        assert_eq!(v["success"], false);
        assert!(v.get("data").is_none());
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
}
