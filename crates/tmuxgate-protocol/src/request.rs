//! Client → server requests: `{"type", "id", "timestamp", "data"}` in a text frame.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::response::ErrorCode;

/// Longest string `id` a client may use, in bytes.
pub const MAX_ID_BYTES: usize = 128;

/// A request id, echoed back in the response: a JSON string or number, chosen by the client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// A numeric id.
    Number(serde_json::Number),
    /// A string id (at most [`MAX_ID_BYTES`]).
    String(String),
}

/// A decoded request with its id.
#[derive(Clone, Debug, PartialEq)]
pub struct Incoming {
    /// The client's id for this request.
    pub id: Option<RequestId>,
    /// What the client asks.
    pub request: Request,
}

/// Every request a client can send, with its `type` string.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// `session-create`: start a new tmux session.
    SessionCreate(SessionCreate),
    /// `session-list`: the sessions this client may see.
    SessionList,
    /// `session-attach`: stream a pane of a session on a new channel.
    SessionAttach(SessionAttach),
    /// `session-detach`: stop streaming a channel.
    SessionDetach(ChannelRef),
    /// `session-destroy`: kill a session (its viewers get `session-closed`).
    SessionDestroy(SessionRef),
    /// `session-resize`: this channel's terminal size changed.
    SessionResize(SessionResize),
    /// `terminal-input`: UTF-8 input for clients that cannot send binary frames.
    TerminalInput(TerminalInput),
    /// `heartbeat`: liveness and round-trip time.
    Heartbeat(Heartbeat),
    /// `metrics`: a JSON summary of the gateway's counters.
    Metrics,
    /// `auth`: log in with a username and password, or present a token.
    Auth(Auth),
    /// `session-share`: let another user attach to a session this client owns.
    SessionShare(SessionShare),
    /// `session-unshare`: take a share back (attached channels lose the access at once).
    SessionUnshare(SessionUnshare),
    /// `command-execute`: run one policy-checked command in a session's shell.
    CommandExecute(CommandExecute),
    /// `batch-execute`: run several in order (stopping at the first failure by default).
    BatchExecute(BatchExecute),
    /// `command-validate`: the policy's verdict on a command, without running it.
    CommandValidate(CommandValidate),
}

impl Request {
    /// Every request `type` string, for documentation checks.
    pub const TYPES: [&'static str; 15] = [
        "session-create",
        "session-list",
        "session-attach",
        "session-detach",
        "session-destroy",
        "session-resize",
        "terminal-input",
        "heartbeat",
        "metrics",
        "auth",
        "session-share",
        "session-unshare",
        "command-execute",
        "batch-execute",
        "command-validate",
    ];

    /// The `type` string of this request.
    pub fn type_name(&self) -> &'static str {
        match self {
            Request::SessionCreate(_) => "session-create",
            Request::SessionList => "session-list",
            Request::SessionAttach(_) => "session-attach",
            Request::SessionDetach(_) => "session-detach",
            Request::SessionDestroy(_) => "session-destroy",
            Request::SessionResize(_) => "session-resize",
            Request::TerminalInput(_) => "terminal-input",
            Request::Heartbeat(_) => "heartbeat",
            Request::Metrics => "metrics",
            Request::Auth(_) => "auth",
            Request::SessionShare(_) => "session-share",
            Request::SessionUnshare(_) => "session-unshare",
            Request::CommandExecute(_) => "command-execute",
            Request::BatchExecute(_) => "batch-execute",
            Request::CommandValidate(_) => "command-validate",
        }
    }
}

/// `session-create` data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionCreate {
    /// Display name, `[A-Za-z0-9_-]{1,64}`.
    pub name: String,
    /// Optional size and working directory.
    #[serde(default)]
    pub options: SessionOptions,
}

/// `session-create` options.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionOptions {
    /// Initial width in columns.
    pub cols: Option<u16>,
    /// Initial height in rows.
    pub rows: Option<u16>,
    /// Absolute working directory of the first shell.
    pub cwd: Option<String>,
    /// Place the session on this backend (`tmux-1`); needs `session.create.placement`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Place the session on a backend carrying every one of these labels; needs
    /// `session.create.placement`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

/// Attach mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachMode {
    /// Input allowed.
    #[default]
    Write,
    /// Output only; input is refused.
    Read,
}

/// `session-attach` data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAttach {
    /// Opaque session id from `session-create` or `session-list`.
    pub session_id: String,
    /// `write` (default) or `read`.
    #[serde(default)]
    pub mode: AttachMode,
    /// Offset already received on an earlier attachment: resume from there.
    pub resume_from: Option<u64>,
    /// The `logId` of that earlier attachment: `resumeFrom` is honoured only on the same log
    /// (a gateway restarted, or another gateway of a fleet, answers with a snapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_log_id: Option<String>,
    /// This viewer's terminal width.
    pub cols: Option<u16>,
    /// This viewer's terminal height.
    pub rows: Option<u16>,
    /// A pane id (`%N`) of the session; default: its active pane.
    pub target: Option<String>,
}

/// How commands run: shared by `command-execute` and `batch-execute`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecOptions {
    /// A pane id (`%N`) of the session; default: its active pane.
    pub target: Option<String>,
    /// Per command, in milliseconds; default and maximum are the gateway's
    /// (`EXEC_TIMEOUT_MS`, `EXEC_MAX_TIMEOUT_MS`).
    pub timeout_ms: Option<u64>,
    /// Remove escape sequences and control characters from the output.
    #[serde(default)]
    pub strip_ansi: bool,
}

/// `command-execute` data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandExecute {
    /// The session to run it in.
    pub session_id: String,
    /// The command line, as words for the policy (no shell syntax).
    pub command: String,
    /// Pane, timeout, output form.
    #[serde(flatten)]
    pub options: ExecOptions,
}

/// `batch-execute` data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchExecute {
    /// The session to run them in.
    pub session_id: String,
    /// The command lines, run in order.
    pub commands: Vec<String>,
    /// Go on after a command fails (a non-zero exit or an error); default: stop.
    #[serde(default)]
    pub stop_on_error: Option<bool>,
    /// Pane, timeout (per command), output form.
    #[serde(flatten)]
    pub options: ExecOptions,
}

/// `command-validate` data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandValidate {
    /// The command line to judge.
    pub command: String,
}

/// Data naming a channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelRef {
    /// Channel from `session-attach`.
    pub channel: u32,
}

/// Data naming a session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRef {
    /// Opaque session id.
    pub session_id: String,
}

/// `session-resize` data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionResize {
    /// Channel from `session-attach`.
    pub channel: u32,
    /// Width in columns.
    pub cols: u16,
    /// Height in rows.
    pub rows: u16,
}

/// `terminal-input` data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TerminalInput {
    /// Channel from `session-attach`.
    pub channel: u32,
    /// Text to type (UTF-8).
    pub data: String,
}

/// `heartbeat` data.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The client's clock, echoed back.
    pub timestamp: Option<Value>,
}

/// A password or token as it travels in a request. `Debug` prints `***`, so a request can be
/// logged without leaking it; only [`Credential::expose`] gives the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Credential(String);

impl Credential {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Credential {
        Credential(value.into())
    }

    /// The value itself, for the one place that checks it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// `auth` data: `username` and `password`, or `token`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Auth {
    /// The user logging in with a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// That user's password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Credential>,
    /// A token from an earlier login or from `tmuxgate user token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Credential>,
}

/// `session-share` data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionShare {
    /// The session (owned by this client, unless it may share any session).
    pub session_id: String,
    /// The user it is shared with.
    pub user: String,
    /// `read` (watch only) or `write`.
    pub mode: AttachMode,
}

/// `session-unshare` data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionUnshare {
    /// The session.
    pub session_id: String,
    /// The user whose share is taken back.
    pub user: String,
}

/// Why a text frame is not a valid request. `id` is set when the envelope was readable.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// The request's id, if it could be read.
    pub id: Option<RequestId>,
    /// `invalid_request` or `unknown_type`.
    pub code: ErrorCode,
    /// Human-readable reason.
    pub message: String,
}

/// Decodes one text frame into a request.
pub fn decode_request(text: &str) -> Result<Incoming, DecodeError> {
    // A map, not a derived struct: serde would also take a JSON array as the envelope (and
    // as `data`), while only objects are requests.
    let mut envelope: serde_json::Map<String, Value> =
        serde_json::from_str(text).map_err(|e| invalid(None, format!("malformed request: {e}")))?;
    let id = decode_id(envelope.remove("id"))?;
    let kind = match envelope.remove("type") {
        Some(Value::String(kind)) => kind,
        Some(_) => return Err(invalid(id, "field `type` must be a string".into())),
        None => return Err(invalid(id, "missing field `type`".into())),
    };
    let data = match envelope.remove("data") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(data @ Value::Object(_)) => data,
        Some(_) => return Err(invalid(id, "field `data` must be an object".into())),
    };
    let request = decode_data(&kind, data).map_err(|e| match e {
        DataError::Unknown => DecodeError {
            id: id.clone(),
            code: ErrorCode::UnknownType,
            message: format!("unknown request type `{}`", truncate(&kind, 64)),
        },
        // serde's message can quote the offending value: never for a credential.
        DataError::Invalid(_) if kind == "auth" => invalid(
            id.clone(),
            "invalid `auth` data: expected {username, password} or {token}, as strings".into(),
        ),
        DataError::Invalid(e) => invalid(id.clone(), format!("invalid `{kind}` data: {e}")),
    })?;
    Ok(Incoming { id, request })
}

enum DataError {
    Unknown,
    Invalid(serde_json::Error),
}

fn decode_data(kind: &str, data: Value) -> Result<Request, DataError> {
    fn parse<T: serde::de::DeserializeOwned>(data: Value) -> Result<T, DataError> {
        serde_json::from_value(data).map_err(DataError::Invalid)
    }
    Ok(match kind {
        "session-create" => Request::SessionCreate(parse(data)?),
        "session-list" => Request::SessionList,
        "session-attach" => Request::SessionAttach(parse(data)?),
        "session-detach" => Request::SessionDetach(parse(data)?),
        "session-destroy" => Request::SessionDestroy(parse(data)?),
        "session-resize" => Request::SessionResize(parse(data)?),
        "terminal-input" => Request::TerminalInput(parse(data)?),
        "heartbeat" => Request::Heartbeat(parse(data)?),
        "metrics" => Request::Metrics,
        "auth" => Request::Auth(parse(data)?),
        "session-share" => Request::SessionShare(parse(data)?),
        "session-unshare" => Request::SessionUnshare(parse(data)?),
        "command-execute" => Request::CommandExecute(parse(data)?),
        "batch-execute" => Request::BatchExecute(parse(data)?),
        "command-validate" => Request::CommandValidate(parse(data)?),
        _ => return Err(DataError::Unknown),
    })
}

fn decode_id(id: Option<Value>) -> Result<Option<RequestId>, DecodeError> {
    match id {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(Some(RequestId::Number(n))),
        Some(Value::String(s)) if s.len() <= MAX_ID_BYTES => Ok(Some(RequestId::String(s))),
        Some(Value::String(_)) => Err(invalid(
            None,
            format!("`id` longer than {MAX_ID_BYTES} bytes"),
        )),
        Some(_) => Err(invalid(None, "`id` must be a string or a number".into())),
    }
}

fn invalid(id: Option<RequestId>, message: String) -> DecodeError {
    DecodeError {
        id,
        code: ErrorCode::InvalidRequest,
        message: bounded(message),
    }
}

/// Longest error message, in bytes (before the ellipsis): serde's messages quote the
/// offending value, which could otherwise send a whole frame of the client's back.
const MAX_MESSAGE_BYTES: usize = 400;

/// `message`, cut at a character boundary to at most [`MAX_MESSAGE_BYTES`] (and `…`).
fn bounded(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// Encodes a request as the client sends it.
pub fn encode_request(id: &RequestId, request: &Request) -> String {
    let data = match request {
        Request::SessionCreate(d) => serde_json::to_value(d),
        Request::SessionAttach(d) => serde_json::to_value(d),
        Request::SessionDetach(d) => serde_json::to_value(d),
        Request::SessionDestroy(d) => serde_json::to_value(d),
        Request::SessionResize(d) => serde_json::to_value(d),
        Request::TerminalInput(d) => serde_json::to_value(d),
        Request::Heartbeat(d) => serde_json::to_value(d),
        Request::Auth(d) => serde_json::to_value(d),
        Request::SessionShare(d) => serde_json::to_value(d),
        Request::SessionUnshare(d) => serde_json::to_value(d),
        Request::CommandExecute(d) => serde_json::to_value(d),
        Request::BatchExecute(d) => serde_json::to_value(d),
        Request::CommandValidate(d) => serde_json::to_value(d),
        Request::SessionList | Request::Metrics => Ok(Value::Object(Default::default())),
    }
    .unwrap_or(Value::Null);
    serde_json::json!({
        "type": request.type_name(),
        "id": id,
        "timestamp": crate::now_millis(),
        "data": data,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code_of(text: &str) -> ErrorCode {
        decode_request(text).unwrap_err().code
    }

    /// Found by fuzzing: a numeric id parsed a unit in the last place off came back as
    /// another number, so the client could not match the response.
    #[test]
    fn numeric_ids_come_back_as_the_same_number() {
        for id in [
            "5555555555555555555555555555555555555555555555555555551",
            "0.1",
            "1e300",
            "-7.25e-12",
        ] {
            let text = format!(r#"{{"type":"session-list","id":{id}}}"#);
            let incoming = decode_request(&text).expect("decodes");
            let sent = incoming.id.clone().expect("an id");
            let again = decode_request(&encode_request(&sent, &incoming.request)).expect("decodes");
            assert_eq!(again.id, Some(sent), "{id}");
            let RequestId::Number(n) = incoming.id.expect("an id") else {
                panic!("a number")
            };
            assert_eq!(n.as_f64(), id.parse::<f64>().ok(), "{id} read exactly");
        }
    }

    /// Found by fuzzing: serde quoted a whole top-level JSON string (any length) back.
    #[test]
    fn error_messages_never_quote_more_than_a_little_of_the_frame() {
        let long = format!("\"{}\"", "é".repeat(100_000));
        let nested = format!(
            r#"{{"type":"session-attach","id":1,"data":{{"sessionId":"s","resumeFrom":"{}"}}}}"#,
            "w".repeat(100_000)
        );
        for text in [long.as_str(), nested.as_str()] {
            let message = decode_request(text).unwrap_err().message;
            assert!(
                message.len() <= MAX_MESSAGE_BYTES + '…'.len_utf8(),
                "{}",
                message.len()
            );
            assert!(message.ends_with('…'), "{message}");
        }
    }

    #[test]
    fn decodes_attach_with_defaults() {
        let req = decode_request(r#"{"type":"session-attach","id":"a1","data":{"sessionId":"s"}}"#)
            .unwrap();
        assert_eq!(req.id, Some(RequestId::String("a1".into())));
        let Request::SessionAttach(a) = req.request else {
            panic!("wrong variant")
        };
        assert_eq!(
            (a.session_id.as_str(), a.mode, a.resume_from),
            ("s", AttachMode::Write, None)
        );
    }

    #[test]
    fn classifies_bad_requests() {
        assert_eq!(code_of("{"), ErrorCode::InvalidRequest);
        assert_eq!(code_of("[]"), ErrorCode::InvalidRequest);
        assert_eq!(code_of(r#"{"id":1}"#), ErrorCode::InvalidRequest);
        assert_eq!(code_of(r#"{"type":"nope","id":1}"#), ErrorCode::UnknownType);
        assert_eq!(code_of(r#"{"type":5}"#), ErrorCode::InvalidRequest);
        assert_eq!(
            code_of(r#"["heartbeat", null, null]"#),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code_of(r#"{"type":"session-destroy","data":["s_0"]}"#),
            ErrorCode::InvalidRequest
        );
        let wrong = decode_request(r#"{"type":"session-resize","id":7,"data":{"channel":"x"}}"#);
        let wrong = wrong.unwrap_err();
        assert_eq!(wrong.code, ErrorCode::InvalidRequest);
        assert_eq!(wrong.id, Some(RequestId::Number(7.into())));
        let huge = r#"{"type":"session-resize","data":{"channel":1,"cols":99999999999,"rows":1}}"#;
        assert_eq!(code_of(huge), ErrorCode::InvalidRequest);
    }

    #[test]
    fn encoded_requests_decode_to_themselves() {
        let req = Request::SessionResize(SessionResize {
            channel: 3,
            cols: 100,
            rows: 30,
        });
        let text = encode_request(&RequestId::Number(9.into()), &req);
        assert_eq!(decode_request(&text).unwrap().request, req);
    }

    #[test]
    fn credentials_never_show_in_debug_or_errors() {
        let req =
            decode_request(r#"{"type":"auth","data":{"username":"ann","password":"hunter2"}}"#)
                .unwrap();
        assert!(!format!("{req:?}").contains("hunter2"));
        let Request::Auth(auth) = req.request else {
            panic!("wrong variant")
        };
        assert_eq!(
            auth.password.as_ref().map(Credential::expose),
            Some("hunter2")
        );
        for bad in [
            r#"{"type":"auth","data":{"username":"ann","password":"hunter2","token":7}}"#,
            r#"{"type":"auth","data":{"username":["hunter2"]}}"#,
            r#"{"type":"auth","data":{"token":{"hunter2":1}}}"#,
        ] {
            let e = decode_request(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidRequest);
            assert!(!e.message.contains("hunter2"), "{}", e.message);
        }
    }

    #[test]
    fn share_requests_round_trip() {
        let req = Request::SessionShare(SessionShare {
            session_id: "s".into(),
            user: "bob".into(),
            mode: AttachMode::Read,
        });
        let text = encode_request(&RequestId::Number(1.into()), &req);
        assert!(text.contains(r#""mode":"read""#));
        assert_eq!(decode_request(&text).unwrap().request, req);
        let missing_mode = r#"{"type":"session-share","data":{"sessionId":"s","user":"bob"}}"#;
        assert_eq!(code_of(missing_mode), ErrorCode::InvalidRequest);
    }

    proptest! {
        #[test]
        fn never_panics(text in ".{0,200}") {
            let _ = decode_request(&text);
        }
    }
}
