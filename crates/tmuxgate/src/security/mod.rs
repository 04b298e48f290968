//! Identity: who a client is and what its role allows (issue 5, the library half).
//!
//! [`Authenticator`] ties the parts together: [`Users`] (the users file, argon2id
//! logins), [`Roles`] (permissions of built-in and custom roles), tokens (JWT issued and
//! verified with one configured algorithm and a key ring with `kid` for rotation) and
//! [`Revocations`] (revoked token ids that survive a restart). The WebSocket layer calls
//! [`Authenticator::verify`] and [`Roles::allows`]; the `tmuxgate user` and `tmuxgate key`
//! commands manage the files. Nothing here ever logs or displays a password or token.
//!
//! Files in `DATA_DIR` (created 0700; each file 0600, written atomically, refused when
//! group or others may read it): `users.toml`, `jwt-keys.toml` (generated HS256 keys,
//! unless `JWT_SECRET` or key files are configured), `revoked.jsonl`.

mod authenticator;
mod clock;
mod keyring_file;
mod keys;
pub mod names;
pub mod password;
pub mod private_files;
mod revocation;
pub mod roles;
mod tokens;
pub mod transport;
mod users;
mod users_file;

use std::time::SystemTime;

pub use authenticator::{Authenticator, OpenError};
pub use clock::{rfc3339, unix};
pub use keys::{KeyError, KeyInfo};
pub use names::{RoleName, UserName};
pub use revocation::{FileRevocations, RevocationError, Revocations};
pub use roles::{Permission, Permissions, Roles, RolesError};
pub use tokens::MAX_TOKEN_TTL;
pub use users::{UserError, UserRecord, Users};

use crate::config::Secret;
use private_files::FileError;

/// Why a login or a token was refused. No variant carries, and no message shows, the
/// token or password: these are safe to log and to audit. Callers close the connection
/// with 4401 for any of them; [`AuthError::reason`] names the case for the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong password, unknown user or malformed name: deliberately one case.
    #[error("invalid user name or password")]
    InvalidCredentials,
    /// `exp` is past (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The signature does not match the header and claims.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// `aud` is not `JWT_AUDIENCE`.
    #[error("the token is meant for another audience")]
    WrongAudience,
    /// `iss` is not `JWT_ISSUER`.
    #[error("the token comes from another issuer")]
    WrongIssuer,
    /// `alg` is not the configured algorithm (`none`, HS256 against an RSA key, ...).
    #[error("the token's algorithm is not the configured one")]
    WrongAlgorithm,
    /// No `kid`, or one the key ring does not hold (any more).
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    /// Not a JWT, or a claim missing or of the wrong type.
    #[error("the token is malformed")]
    Malformed,
    /// Its `jti` was revoked (logout).
    #[error("the token has been revoked")]
    Revoked,
    /// Its user was removed, or changed password or role, after it was issued.
    #[error("the token's user was removed or changed since it was issued")]
    Superseded,
    /// [`Authenticator::issue`] for a user that does not exist (never from a login).
    #[error("no user {0}")]
    NoSuchUser(UserName),
    /// A file or store could not be read or written: refused, never let through.
    #[error("authentication is unavailable: {0}")]
    Unavailable(String),
}

impl AuthError {
    /// Whether the failure looks like guessing (a wrong password, a forged or foreign
    /// token), which counts toward blocking the address. A token that was valid once and
    /// went stale (expired, not yet valid by clock skew, revoked, its user changed) is a
    /// browser with an old cookie far more often than an attack: refused and audited,
    /// not counted.
    pub fn is_guess(&self) -> bool {
        match self {
            AuthError::InvalidCredentials
            | AuthError::BadSignature
            | AuthError::WrongAudience
            | AuthError::WrongIssuer
            | AuthError::WrongAlgorithm
            | AuthError::UnknownKey
            | AuthError::Malformed => true,
            AuthError::Expired
            | AuthError::NotYetValid
            | AuthError::Revoked
            | AuthError::Superseded
            | AuthError::NoSuchUser(_)
            | AuthError::Unavailable(_) => false,
        }
    }

    /// A short fixed name for the audit log and metrics (`"expired"`, `"revoked"`, ...).
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::InvalidCredentials => "invalid-credentials",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not-yet-valid",
            AuthError::BadSignature => "bad-signature",
            AuthError::WrongAudience => "wrong-audience",
            AuthError::WrongIssuer => "wrong-issuer",
            AuthError::WrongAlgorithm => "wrong-algorithm",
            AuthError::UnknownKey => "unknown-key",
            AuthError::Malformed => "malformed",
            AuthError::Revoked => "revoked",
            AuthError::Superseded => "superseded",
            AuthError::NoSuchUser(_) => "no-such-user",
            AuthError::Unavailable(_) => "unavailable",
        }
    }
}

impl From<FileError> for AuthError {
    fn from(error: FileError) -> AuthError {
        AuthError::Unavailable(error.to_string())
    }
}

impl From<password::HashError> for AuthError {
    /// Only a busy hasher fails a login this way ([`password::Hasher::verify`]); the
    /// client is refused, never let in.
    fn from(error: password::HashError) -> AuthError {
        AuthError::Unavailable(error.to_string())
    }
}

impl From<RevocationError> for AuthError {
    fn from(error: RevocationError) -> AuthError {
        AuthError::Unavailable(error.to_string())
    }
}

/// Who a verified token speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user (`sub`).
    pub user: UserName,
    /// Their role (`role`), equal to the users file's when the token was checked.
    pub role: RoleName,
    /// The token's id (`jti`), what [`Authenticator::revoke`] records.
    pub jti: String,
    /// When the token expires (`exp`).
    pub expires_at: SystemTime,
    /// The user's token generation it was issued under (`gen`).
    pub generation: u64,
}

/// A freshly issued token and what the client is told about it.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The JWT: `Debug` and `Display` print `***`.
    pub token: Secret,
    /// When it expires.
    pub expires_at: SystemTime,
    /// Its user.
    pub user: UserName,
    /// Its role.
    pub role: RoleName,
    /// Its id.
    pub jti: String,
}

/// The account created on first start. Show `password` once to the operator (stdout),
/// never in a log.
#[derive(Clone, Debug)]
pub struct FirstStart {
    /// The user name (`admin`).
    pub user: UserName,
    /// Its random password (`Debug` prints `***`).
    pub password: Secret,
}
