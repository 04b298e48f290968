//! What the audit log records: the kinds of security event ([`EventKind`], each with its
//! base risk score, outcome and description) and one event as a call site builds it
//! ([`Record`]). Metadata fields are typed: reasons, transports and modes are static
//! strings chosen by the gateway, and free text comes only from names the gateway has
//! validated (users, session ids) or from headers cut to a bounded length. There is no
//! field meant for a token or a password, and as a second line of defence every text
//! value that contains something shaped like a JWT is written as `***`.

use std::net::IpAddr;
use std::time::SystemTime;

use serde::Serialize;

/// Every kind of audit event (docs/audit.md has the table of base scores).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A login (password or token) succeeded, over `auth` or `POST /api/login`.
    AuthSuccess,
    /// A login failed, or a connection did not authenticate within `AUTH_TIMEOUT`.
    AuthFailure,
    /// A token was refused at the upgrade, or stopped being valid while connected.
    TokenRejected,
    /// A token was revoked (logout).
    TokenRevoked,
    /// A WebSocket connection was admitted.
    ConnectionOpened,
    /// A WebSocket connection ended.
    ConnectionClosed,
    /// An upgrade was refused (connection cap, shutting down; the abuse limits too).
    ConnectionRefused,
    /// A request came from a page whose `Origin` is not allowed (HTTP 403).
    OriginRejected,
    /// A client went over a rate limit (emitted by the rate limiter, issue 6).
    RateLimited,
    /// An address was blocked (emitted by the IP blocker, issue 6).
    IpBlocked,
    /// An address was unblocked (emitted by the IP blocker, issue 6).
    IpUnblocked,
    /// A session was created.
    SessionCreated,
    /// A channel attached to a session.
    SessionAttached,
    /// A channel detached from a session (`session-detach`).
    SessionDetached,
    /// A session was shared with a user.
    SessionShared,
    /// A share was taken back.
    SessionUnshared,
    /// A session was destroyed on request.
    SessionDestroyed,
    /// A request was refused by the principal's role or the session's owner.
    PermissionDenied,
    /// A validated command was run (emitted by command execution, a later issue).
    CommandExecuted,
    /// A command was refused by the command policy (emitted by command execution).
    CommandBlocked,
    /// A tmux backend stopped answering; its sessions are unavailable.
    BackendLost,
    /// A tmux backend's circuit breaker changed state, or a dead backend was restarted
    /// (`reason` says which, `detail` is `from -> to`).
    BackendStateChanged,
    /// An administrator started draining a backend: it takes no new sessions.
    BackendDrained,
    /// An administrator ended a backend's draining.
    BackendUndrained,
    /// The gateway started with a validated configuration.
    ConfigLoaded,
}

/// What came of the action an event describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It happened as asked.
    Success,
    /// It was attempted and failed.
    Failure,
    /// The gateway refused it.
    Denied,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 25] = [
        EventKind::AuthSuccess,
        EventKind::AuthFailure,
        EventKind::TokenRejected,
        EventKind::TokenRevoked,
        EventKind::ConnectionOpened,
        EventKind::ConnectionClosed,
        EventKind::ConnectionRefused,
        EventKind::OriginRejected,
        EventKind::RateLimited,
        EventKind::IpBlocked,
        EventKind::IpUnblocked,
        EventKind::SessionCreated,
        EventKind::SessionAttached,
        EventKind::SessionDetached,
        EventKind::SessionShared,
        EventKind::SessionUnshared,
        EventKind::SessionDestroyed,
        EventKind::PermissionDenied,
        EventKind::CommandExecuted,
        EventKind::CommandBlocked,
        EventKind::BackendLost,
        EventKind::BackendStateChanged,
        EventKind::BackendDrained,
        EventKind::BackendUndrained,
        EventKind::ConfigLoaded,
    ];

    /// The `eventType` written.
    pub fn name(self) -> &'static str {
        self.facts().0
    }

    /// The risk score before modifiers (0-100).
    pub fn base_score(self) -> u8 {
        self.facts().1
    }

    /// The `outcome` written.
    pub fn outcome(self) -> Outcome {
        self.facts().2
    }

    /// The `description` written.
    pub fn description(self) -> &'static str {
        self.facts().3
    }

    /// Whether the event counts as a failure of its source for the repeat modifier.
    pub fn is_failure(self) -> bool {
        matches!(self.outcome(), Outcome::Failure | Outcome::Denied) && self != Self::BackendLost
    }

    fn facts(self) -> (&'static str, u8, Outcome, &'static str) {
        use EventKind::*;
        use Outcome::*;
        match self {
            AuthSuccess => ("AUTH_SUCCESS", 10, Success, "authenticated"),
            AuthFailure => ("AUTH_FAILURE", 40, Failure, "authentication failed"),
            TokenRejected => ("TOKEN_REJECTED", 40, Denied, "token refused"),
            TokenRevoked => ("TOKEN_REVOKED", 10, Success, "token revoked"),
            ConnectionOpened => ("CONNECTION_OPENED", 0, Success, "connection opened"),
            ConnectionClosed => ("CONNECTION_CLOSED", 0, Success, "connection closed"),
            ConnectionRefused => ("CONNECTION_REFUSED", 30, Denied, "connection refused"),
            OriginRejected => (
                "ORIGIN_REJECTED",
                50,
                Denied,
                "request from a forbidden origin",
            ),
            RateLimited => ("RATE_LIMITED", 40, Denied, "rate limit exceeded"),
            IpBlocked => ("IP_BLOCKED", 70, Success, "address blocked"),
            IpUnblocked => ("IP_UNBLOCKED", 20, Success, "address unblocked"),
            SessionCreated => ("SESSION_CREATED", 10, Success, "session created"),
            SessionAttached => ("SESSION_ATTACHED", 10, Success, "attached to a session"),
            SessionDetached => ("SESSION_DETACHED", 0, Success, "detached from a session"),
            SessionShared => ("SESSION_SHARED", 30, Success, "session shared"),
            SessionUnshared => ("SESSION_UNSHARED", 10, Success, "share taken back"),
            SessionDestroyed => ("SESSION_DESTROYED", 20, Success, "session destroyed"),
            PermissionDenied => ("PERMISSION_DENIED", 50, Denied, "request refused"),
            CommandExecuted => ("COMMAND_EXECUTED", 20, Success, "command executed"),
            CommandBlocked => ("COMMAND_BLOCKED", 60, Denied, "command blocked by policy"),
            BackendLost => ("BACKEND_LOST", 60, Failure, "tmux backend lost"),
            BackendStateChanged => (
                "BACKEND_STATE_CHANGED",
                30,
                Success,
                "tmux backend state changed",
            ),
            BackendDrained => ("BACKEND_DRAINED", 30, Success, "tmux backend draining"),
            BackendUndrained => ("BACKEND_UNDRAINED", 20, Success, "tmux backend drain ended"),
            ConfigLoaded => ("CONFIG_LOADED", 10, Success, "configuration loaded"),
        }
    }
}

/// The `metadata` object. Only what is set is written.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// The user acting (or whose token it was).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Their role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The session concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The user a share names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_user: Option<String>,
    /// `read` or `write`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
    /// The connection's channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<u32>,
    /// Why, as a fixed word (`expired`, `invalid-credentials`, `max-connections`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// How the credentials came: `auth`, `http`, `header`, `cookie`, `query`, `protocol`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<&'static str>,
    /// The permission or request refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission: Option<String>,
    /// The `Origin` header (cut to a bounded length).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The `Host` header (cut to a bounded length).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The tmux backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// The WebSocket close code sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_code: Option<u16>,
    /// Which failed attempt on this connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u8>,
    /// `CONFIG_LOADED`: the preset, and whether authentication and TLS are on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<&'static str>,
    /// `CONFIG_LOADED`: authentication on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<bool>,
    /// `CONFIG_LOADED`: TLS on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<bool>,
    /// `COMMAND_*`: the command's words as validated (or as sent, when refused unparsed:
    /// then the one word is the text, cut to a bounded length).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// `COMMAND_EXECUTED`: the exit status (absent when it did not end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// `COMMAND_EXECUTED`: from typing to its end, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// `COMMAND_*`: the refusal or failure, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One event, as a call site hands it to [`super::Audit::record`].
#[derive(Clone, Debug)]
pub struct Record {
    /// What happened.
    pub kind: EventKind,
    /// The client (after trusted proxies); `None`: the gateway itself.
    pub source: Option<IpAddr>,
    /// When.
    pub at: SystemTime,
    /// The details (boxed: records queue by value in a bounded channel).
    pub meta: Box<Metadata>,
}

impl Record {
    /// An event from `source` (`None`: the gateway), now.
    pub fn new(kind: EventKind, source: Option<IpAddr>) -> Record {
        Record {
            kind,
            source,
            at: SystemTime::now(),
            meta: Box::default(),
        }
    }

    /// The user acting.
    pub fn user(mut self, user: impl Into<String>) -> Record {
        let user = scrub(user.into());
        self.meta.user = (!user.is_empty()).then_some(user);
        self
    }

    /// Their role.
    pub fn role(mut self, role: impl Into<String>) -> Record {
        self.meta.role = Some(scrub(role.into()));
        self
    }

    /// The session concerned.
    pub fn session(mut self, id: impl Into<String>) -> Record {
        self.meta.session_id = Some(scrub(id.into()));
        self
    }

    /// The user a share names.
    pub fn target_user(mut self, user: impl Into<String>) -> Record {
        self.meta.target_user = Some(scrub(user.into()));
        self
    }

    /// `read` or `write`.
    pub fn mode(mut self, mode: &'static str) -> Record {
        self.meta.mode = Some(mode);
        self
    }

    /// The connection's channel.
    pub fn channel(mut self, channel: u32) -> Record {
        self.meta.channel = Some(channel);
        self
    }

    /// Why, as a fixed word.
    pub fn reason(mut self, reason: &'static str) -> Record {
        self.meta.reason = Some(reason);
        self
    }

    /// How the credentials came.
    pub fn transport(mut self, transport: &'static str) -> Record {
        self.meta.transport = Some(transport);
        self
    }

    /// The permission or request refused.
    pub fn permission(mut self, what: impl Into<String>) -> Record {
        self.meta.permission = Some(scrub(what.into()));
        self
    }

    /// The `Origin` and `Host` headers, already cut to a bounded length.
    pub fn headers(mut self, origin: String, host: String) -> Record {
        (self.meta.origin, self.meta.host) = (Some(scrub(origin)), Some(scrub(host)));
        self
    }

    /// The tmux backend.
    pub fn backend(mut self, id: impl Into<String>) -> Record {
        self.meta.backend = Some(scrub(id.into()));
        self
    }

    /// How a connection ended: the close code the gateway sent (none: the client closed).
    pub fn closed(mut self, code: Option<u16>) -> Record {
        self.meta.close_code = code;
        self
    }

    /// Which failed attempt on the connection.
    pub fn attempt(mut self, attempt: u8) -> Record {
        self.meta.attempt = Some(attempt);
        self
    }

    /// A command's words (token-shaped words masked).
    pub fn argv(mut self, argv: &[String]) -> Record {
        self.meta.argv = Some(argv.iter().cloned().map(scrub).collect());
        self
    }

    /// A command's exit status and duration.
    pub fn exit(mut self, exit_code: Option<i32>, duration_ms: u64) -> Record {
        self.meta.exit_code = exit_code;
        self.meta.duration_ms = Some(duration_ms);
        self
    }

    /// A sentence about the refusal or failure.
    pub fn detail(mut self, detail: impl Into<String>) -> Record {
        self.meta.detail = Some(scrub(detail.into()));
        self
    }
}

/// What a token-shaped value is written as.
pub const MASK: &str = "***";

/// `text`, or [`MASK`] when it contains a JWT (`eyJ…` header, two dots): a value that
/// should never reach a record, masked in case a call site ever passes one.
fn scrub(text: String) -> String {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let has_token = text
        .split(|c: char| !is_token_char(c))
        .any(|word| word.contains("eyJ") && word.matches('.').count() >= 2);
    match has_token {
        true => MASK.to_owned(),
        false => text,
    }
}
