//! [`Authenticator`]: the one object the gateway and the CLI hold for identity. Logins
//! become tokens, tokens become [`Identity`]s; a token is accepted only when it verifies
//! ([`super::tokens`]), is not revoked, and its user still exists with the same role and
//! has not invalidated older tokens (password change, `tmuxgate user revoke`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::keys::{KeyError, KeyInfo};
use super::names::{RoleName, UserName};
use super::password::Hasher;
use super::private_files::{self, FileError};
use super::revocation::{FileRevocations, Revocations};
use super::roles::{Permission, Roles, RolesError};
use super::tokens::Tokens;
use super::users::{UserError, UserRecord, Users};
use super::{AuthError, FirstStart, Identity, Issued, clock};
use crate::config::{Config, Secret};

/// The embedded revocation store's file in `DATA_DIR`.
const REVOCATIONS_FILE: &str = "revoked.jsonl";

/// Why the identity files could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// `DATA_DIR` or the revocations file.
    #[error(transparent)]
    File(#[from] FileError),
    /// The users file.
    #[error(transparent)]
    Users(#[from] UserError),
    /// `ROLES_FILE`.
    #[error(transparent)]
    Roles(#[from] RolesError),
    /// The signing keys.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The shared store (Redis) could not be reached.
    #[error("{0}")]
    Store(String),
}

/// Users, roles, tokens and revocations together. Cheap to clone.
#[derive(Clone)]
pub struct Authenticator(Arc<Inner>);

struct Inner {
    users: Users,
    roles: Roles,
    tokens: Tokens,
    revocations: Arc<dyn Revocations>,
    token_ttl: Duration,
    leeway: Duration,
    data_dir: PathBuf,
    /// Bumped whenever an accepted identity may have stopped being valid.
    changes: watch::Sender<u64>,
    /// Bumped by revocations made here (not by ones learnt from elsewhere), for the fleet.
    revoked_here: watch::Sender<u64>,
}

/// Names what is configured, never a key, hash or token.
impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("data_dir", &self.0.data_dir)
            .field("users", &self.0.users)
            .field("algorithm", &self.0.tokens.algorithm())
            .field("keys", &self.0.tokens.keys().len())
            .field("token_ttl", &self.0.token_ttl)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Opens everything `config` names with the embedded revocation store. On first
    /// start (no users file) also returns the `admin` account's one-time password.
    pub async fn open(config: &Config) -> Result<(Authenticator, Option<FirstStart>), OpenError> {
        Authenticator::open_in(config, None).await
    }

    /// [`Authenticator::open`] with the gateway's shared store: with Redis, revocations live
    /// there (shared by every gateway); with the embedded store, in `DATA_DIR`. Without a
    /// store given, Redis is connected when configured.
    pub async fn open_in(
        config: &Config,
        store: Option<Arc<dyn crate::store::Store>>,
    ) -> Result<(Authenticator, Option<FirstStart>), OpenError> {
        private_files::ensure_private_dir(&config.data_dir)?;
        let store = match store {
            Some(store) => Some(store),
            None if crate::store::redis_settings(config).is_some() => Some(
                crate::store::open(config)
                    .await
                    .map_err(|e| OpenError::Store(e.to_string()))?,
            ),
            None => None,
        };
        let revocations: Arc<dyn Revocations> = match store {
            Some(store) if store.is_shared() => Arc::new(
                crate::store::revocations::StoreRevocations::new(store, config.jwt_leeway),
            ),
            _ => {
                let path = config.data_dir.join(REVOCATIONS_FILE);
                Arc::new(FileRevocations::open(&path, config.jwt_leeway)?)
            }
        };
        Authenticator::open_with(config, revocations, Hasher::default()).await
    }

    /// [`Authenticator::open`] with another revocation store and hasher.
    pub async fn open_with(
        config: &Config,
        revocations: Arc<dyn Revocations>,
        hasher: Hasher,
    ) -> Result<(Authenticator, Option<FirstStart>), OpenError> {
        private_files::ensure_private_dir(&config.data_dir)?;
        let roles = Roles::load(config.roles_file.as_deref())?;
        let tokens = Tokens::open(config)?;
        let (users, first) = Users::open(&config.users_file_path(), roles.clone(), hasher).await?;
        let inner = Inner {
            users,
            roles,
            tokens,
            revocations,
            token_ttl: config.token_ttl,
            leeway: config.jwt_leeway,
            data_dir: config.data_dir.clone(),
            changes: watch::Sender::new(0),
            revoked_here: watch::Sender::new(0),
        };
        Ok((Authenticator(Arc::new(inner)), first))
    }

    /// Checks the password and issues a token for `TOKEN_TTL`. Every failure is
    /// [`AuthError::InvalidCredentials`] (or `Unavailable`).
    pub async fn login(&self, user: &str, password: &Secret) -> Result<Issued, AuthError> {
        let record = self.0.users.login(user, password).await?;
        self.issue_for(&record, self.0.token_ttl)
    }

    /// Issues a token for `user` without a password (`tmuxgate user token`), valid for
    /// `ttl` (at most [`super::MAX_TOKEN_TTL`]).
    pub async fn issue(&self, user: &UserName, ttl: Duration) -> Result<Issued, AuthError> {
        let record = self.0.users.get(user)?;
        let record = record.ok_or_else(|| AuthError::NoSuchUser(user.clone()))?;
        self.issue_for(&record, ttl)
    }

    /// Who `token` speaks for, after every check (see the module doc).
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let claims = self.0.tokens.verify(token)?;
        if self.0.revocations.is_revoked(&claims.jti).await? {
            return Err(AuthError::Revoked);
        }
        self.check_user(&claims.sub, &claims.role, claims.generation)?;
        Ok(Identity {
            user: claims.sub,
            role: claims.role,
            jti: claims.jti,
            expires_at: clock::from_unix(claims.exp),
            generation: claims.generation,
        })
    }

    /// Whether `identity`'s token has expired by the wall clock (with the leeway). An open
    /// connection's own timer is monotonic: it does not see the wall clock jump forward.
    pub fn expired(&self, identity: &Identity) -> bool {
        std::time::SystemTime::now() > identity.expires_at + self.0.leeway
    }

    /// Checks an identity accepted earlier again (an open connection, after a logout or a
    /// change to the users file): refused once its token is revoked, or its user removed
    /// or changed. Expiry is the caller's timer.
    pub async fn recheck(&self, identity: &Identity) -> Result<(), AuthError> {
        // The caller's timer is monotonic and stops while the machine sleeps.
        if self.expired(identity) {
            return Err(AuthError::Expired);
        }
        if self.0.revocations.is_revoked(&identity.jti).await? {
            return Err(AuthError::Revoked);
        }
        self.check_user(&identity.user, &identity.role, identity.generation)
    }

    /// Revokes the token `identity` came from (logout); it is refused from now on, and
    /// connections holding it learn it through [`Authenticator::changes`].
    pub async fn revoke(&self, identity: &Identity) -> Result<(), AuthError> {
        let revocations = &self.0.revocations;
        revocations
            .revoke(&identity.jti, identity.expires_at)
            .await?;
        self.0.changes.send_modify(|n| *n = n.wrapping_add(1));
        self.0.revoked_here.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }

    /// Revokes `token` if it is one of this gateway's and has not expired (logout): only
    /// its signature and claims are checked, not its user, so a token whose user was
    /// removed or changed meanwhile is revoked all the same. `Ok(None)`: nothing to revoke.
    pub async fn revoke_token(&self, token: &str) -> Result<Option<UserName>, AuthError> {
        let claims = match self.0.tokens.verify(token) {
            Ok(claims) => claims,
            Err(AuthError::Unavailable(reason)) => return Err(AuthError::Unavailable(reason)),
            Err(_) => return Ok(None),
        };
        let revocations = &self.0.revocations;
        revocations
            .revoke(&claims.jti, clock::from_unix(claims.exp))
            .await?;
        self.0.changes.send_modify(|n| *n = n.wrapping_add(1));
        self.0.revoked_here.send_modify(|n| *n = n.wrapping_add(1));
        Ok(Some(claims.sub))
    }

    /// Changes whenever an identity accepted earlier may have become invalid: a token
    /// revoked here, or the users file changed (by this process or by `tmuxgate user` in
    /// another, which [`Authenticator::watch_files`] notices). Holders of an [`Identity`]
    /// call [`Authenticator::recheck`] then.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.0.changes.subscribe()
    }

    /// Changes whenever a token is revoked through this gateway (logout, `revoke`): the
    /// fleet tells the other gateways, which [`Authenticator::poke`] their connections.
    pub fn revoked_here(&self) -> watch::Receiver<u64> {
        self.0.revoked_here.subscribe()
    }

    /// Something may have been revoked elsewhere (another gateway): holders of an
    /// [`Identity`] recheck it, as after a local change.
    pub fn poke(&self) {
        self.0.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Polls the users and revocations files every `every` until `stop`, announcing each
    /// change through [`Authenticator::changes`]: a user removed, demoted or whose tokens
    /// were revoked from the command line, or a token revoked by another gateway on the same
    /// `DATA_DIR`, loses its open connections within one interval.
    pub async fn watch_files(self, every: Duration, stop: CancellationToken) {
        let paths = [
            self.0.users.path().to_path_buf(),
            self.0.data_dir.join(REVOCATIONS_FILE),
        ];
        let stamps = || paths.each_ref().map(|p| private_files::stamp(p));
        let mut seen = stamps();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let now = stamps();
            if now != seen {
                seen = now;
                self.0.changes.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }

    /// Whether `identity`'s role allows `permission`.
    pub fn allows(&self, identity: &Identity, permission: Permission) -> bool {
        self.0.roles.allows(identity.role.as_str(), permission)
    }

    /// The known roles.
    pub fn roles(&self) -> &Roles {
        &self.0.roles
    }

    /// The users (management for the CLI and, later, the admin API).
    pub fn users(&self) -> &Users {
        &self.0.users
    }

    /// The signing and verification keys, signing key first.
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.0.tokens.keys()
    }

    /// New signing key for the generated ring (`tmuxgate key rotate`); see
    /// `security/keys.rs`. Refused when keys come from the configuration.
    pub fn rotate_keys(&self, discard_previous: bool) -> Result<Vec<KeyInfo>, KeyError> {
        self.0.tokens.rotate(discard_previous)
    }

    fn issue_for(&self, user: &UserRecord, ttl: Duration) -> Result<Issued, AuthError> {
        let (token, claims) = self
            .0
            .tokens
            .issue(&user.name, &user.role, user.generation, ttl)?;
        Ok(Issued {
            token,
            expires_at: clock::from_unix(claims.exp),
            user: claims.sub,
            role: claims.role,
            jti: claims.jti,
        })
    }

    /// The user must exist, with the token's role and token generation (a token without
    /// `gen` never got this far: the claim is required).
    fn check_user(
        &self,
        name: &UserName,
        role: &RoleName,
        generation: u64,
    ) -> Result<(), AuthError> {
        let Some(user) = self.0.users.get(name)? else {
            return Err(AuthError::Superseded);
        };
        if user.role != *role || generation != user.generation {
            return Err(AuthError::Superseded);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "authenticator_tests.rs"]
mod tests;
