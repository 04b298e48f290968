//! WebSocket close codes the gateway uses. Application codes are in the 4000–4999 range.

/// Why the gateway closed a WebSocket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum CloseCode {
    /// Normal closure (the client asked).
    Normal = 1000,
    /// The gateway is shutting down.
    GoingAway = 1001,
    /// The gateway hit an unexpected internal error.
    InternalError = 1011,
    /// Too many connections; try again later.
    TryAgainLater = 1013,
    /// A binary frame could not be decoded (too short, unknown kind, client sent a server kind).
    BadFrame = 4000,
    /// A binary frame named a channel this connection has not attached.
    UnknownChannel = 4001,
    /// A text frame was not valid UTF-8.
    InvalidUtf8 = 4002,
    /// The connection sent nothing, not even a pong, for longer than the idle timeout.
    IdleTimeout = 4008,
    /// A message was larger than the gateway's limit (`MAX_MESSAGE_BYTES`).
    MessageTooLarge = 4009,
    /// The connection could not keep up with its output and was dropped.
    TooSlow = 4010,
    /// Authentication failed, was not completed within the deadline, or its token was
    /// revoked or expired while the connection was open.
    Unauthorized = 4401,
    /// The connection kept sending after being told it was over its rate limit.
    RateLimited = 4429,
}

impl CloseCode {
    /// Every code, for documentation checks.
    pub const ALL: [CloseCode; 12] = [
        CloseCode::Normal,
        CloseCode::GoingAway,
        CloseCode::TryAgainLater,
        CloseCode::BadFrame,
        CloseCode::UnknownChannel,
        CloseCode::InvalidUtf8,
        CloseCode::IdleTimeout,
        CloseCode::MessageTooLarge,
        CloseCode::TooSlow,
        CloseCode::Unauthorized,
        CloseCode::RateLimited,
        CloseCode::InternalError,
    ];

    /// The numeric code.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// Whether the client broke the protocol (a bad frame, an unknown channel, invalid
    /// UTF-8, an oversized message, persistent flooding): such closes count towards
    /// blocking its address.
    pub fn is_violation(self) -> bool {
        matches!(
            self,
            CloseCode::BadFrame
                | CloseCode::UnknownChannel
                | CloseCode::InvalidUtf8
                | CloseCode::MessageTooLarge
                | CloseCode::RateLimited
        )
    }

    /// The code for a number, if it is one of ours.
    pub fn from_code(code: u16) -> Option<CloseCode> {
        CloseCode::ALL.into_iter().find(|c| c.code() == code)
    }
}
