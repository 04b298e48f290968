//! [`Users`]: the accounts in the users file, and password logins against them.
//!
//! The file is the source of truth, shared by the gateway and the `tmuxgate user`
//! commands: every change is a locked read-modify-write of the whole file (atomic
//! replace, 0600), and readers re-read it when its [`Stamp`] changes, so a user added,
//! removed or demoted from the command line takes effect in a running gateway at its
//! next login or token check.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::clock;
use super::names::{InvalidName, RoleName, UserName};
use super::password::{self, HashError, Hasher};
use super::private_files::{self, FileError, Stamp};
use super::roles::Roles;
use super::users_file::{self, StoredUser, UserMap};
use super::{AuthError, FirstStart};
use crate::config::Secret;

/// The user created on first start.
pub const FIRST_USER: &str = "admin";
/// The role of [`FIRST_USER`].
pub const FIRST_ROLE: &str = "admin";

/// A user, without the password hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    /// Login name.
    pub name: UserName,
    /// Role name; an unknown role is allowed nothing.
    pub role: RoleName,
    /// When the user was added.
    pub created_at: SystemTime,
    /// When its tokens were last invalidated (informational).
    pub tokens_after: SystemTime,
    /// Token generation: only tokens carrying this one are accepted.
    pub generation: u64,
}

impl UserRecord {
    fn new(name: &UserName, stored: &StoredUser) -> UserRecord {
        UserRecord {
            name: name.clone(),
            role: stored.role.clone(),
            created_at: clock::from_unix(stored.created_at),
            tokens_after: clock::from_unix(stored.tokens_after),
            generation: stored.generation,
        }
    }
}

/// Why a change to the users was refused.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The name breaks the user-name rules.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// `add` of a name already taken.
    #[error("user {0} already exists")]
    Exists(UserName),
    /// No such user.
    #[error("no user {0}")]
    NotFound(UserName),
    /// A role neither built in nor in `ROLES_FILE`.
    #[error("unknown role {0}")]
    UnknownRole(RoleName),
    /// The new password breaks a rule (the message never includes it).
    #[error("{0}")]
    WeakPassword(&'static str),
    /// The users file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] HashError),
}

/// The users file, cached until it changes. Cheap to clone.
#[derive(Clone)]
pub struct Users(Arc<Inner>);

struct Inner {
    path: PathBuf,
    roles: Roles,
    hasher: Hasher,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    stamp: Option<Stamp>,
    users: Arc<UserMap>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users")
            .field("path", &self.0.path)
            .finish_non_exhaustive()
    }
}

impl Users {
    /// Opens the users file at `path`. When it does not exist, creates it with
    /// `admin` (role `admin`) and a random password, returned once.
    pub async fn open(
        path: &Path,
        roles: Roles,
        hasher: Hasher,
    ) -> Result<(Users, Option<FirstStart>), UserError> {
        let users = Users(Arc::new(Inner {
            path: path.to_path_buf(),
            roles,
            hasher,
            cache: Mutex::default(),
        }));
        let first = match private_files::stamp(path) {
            Some(_) => None,
            None => users.create_first_user().await?,
        };
        users.current()?;
        Ok((users, first))
    }

    /// The file these users live in.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// Checks `password` for `name`. Unknown users are verified against a dummy hash,
    /// so every failure costs one argon2 verification and reads [`AuthError::InvalidCredentials`].
    pub async fn login(&self, name: &str, password: &Secret) -> Result<UserRecord, AuthError> {
        if password.expose().len() > password::MAX_PASSWORD_BYTES {
            return Err(AuthError::InvalidCredentials);
        }
        let found = match name.parse::<UserName>() {
            Ok(name) => self
                .current()?
                .get_key_value(&name)
                .map(|(n, s)| (n.clone(), s.clone())),
            Err(_) => None,
        };
        let phc = found.as_ref().map(|(_, stored)| stored.password.clone());
        let matched = self.0.hasher.verify(password, phc).await?;
        match found {
            Some((name, stored)) if matched => {
                if self.0.hasher.needs_rehash(&stored.password) {
                    self.rehash(&name, stored.password.clone(), password).await;
                }
                Ok(UserRecord::new(&name, &stored))
            }
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    /// Replaces `name`'s hash `old` (made with other parameters) by one of `password`
    /// with the current parameters, unless the password changed meanwhile. The same
    /// password: tokens stay valid. A failure only leaves the old hash (logged).
    async fn rehash(&self, name: &UserName, old: String, password: &Secret) {
        let outcome = match self.0.hasher.hash(password).await {
            Ok(new) => {
                let name = name.clone();
                self.modify(move |users| {
                    if let Some(user) = users.get_mut(&name).filter(|u| u.password == old) {
                        user.password = new;
                    }
                    Ok(())
                })
                .await
            }
            Err(error) => Err(error.into()),
        };
        if let Err(error) = outcome {
            tracing::warn!(user = %name, %error, "could not upgrade a password hash");
        }
    }

    /// The user called `name`, as the file says now.
    pub fn get(&self, name: &UserName) -> Result<Option<UserRecord>, FileError> {
        let users = self.current()?;
        Ok(users.get(name).map(|stored| UserRecord::new(name, stored)))
    }

    /// Every user, by name.
    pub fn list(&self) -> Result<Vec<UserRecord>, FileError> {
        let users = self.current()?;
        Ok(users
            .iter()
            .map(|(name, stored)| UserRecord::new(name, stored))
            .collect())
    }

    /// Adds `name` with `password` and `role`.
    pub async fn add(
        &self,
        name: &UserName,
        password: &Secret,
        role: &RoleName,
    ) -> Result<UserRecord, UserError> {
        self.check_role(role)?;
        password::check_new_password(password).map_err(UserError::WeakPassword)?;
        let stored = StoredUser {
            role: role.clone(),
            password: self.0.hasher.hash(password).await?,
            created_at: clock::now_unix(),
            tokens_after: 0,
            generation: first_generation()?,
        };
        let record = UserRecord::new(name, &stored);
        let name = name.clone();
        self.modify(move |users| match users.contains_key(&name) {
            true => Err(UserError::Exists(name)),
            false => {
                users.insert(name, stored);
                Ok(())
            }
        })
        .await?;
        Ok(record)
    }

    /// Removes `name`; its tokens stop working at their next check.
    pub async fn remove(&self, name: &UserName) -> Result<(), UserError> {
        let name = name.clone();
        self.modify(move |users| match users.remove(&name) {
            Some(_) => Ok(()),
            None => Err(UserError::NotFound(name)),
        })
        .await
    }

    /// Sets a new password and refuses every token issued before.
    pub async fn set_password(&self, name: &UserName, password: &Secret) -> Result<(), UserError> {
        password::check_new_password(password).map_err(UserError::WeakPassword)?;
        let phc = self.0.hasher.hash(password).await?;
        self.update(name, move |user| user.password = phc).await
    }

    /// Sets a new role and refuses every token issued before (they carry the old role).
    pub async fn set_role(&self, name: &UserName, role: &RoleName) -> Result<(), UserError> {
        self.check_role(role)?;
        let role = role.clone();
        self.update(name, move |user| user.role = role).await
    }

    /// Refuses every token `name` was issued so far.
    pub async fn revoke_tokens(&self, name: &UserName) -> Result<(), UserError> {
        self.update(name, |_| {}).await
    }

    fn check_role(&self, role: &RoleName) -> Result<(), UserError> {
        match self.0.roles.contains(role) {
            true => Ok(()),
            false => Err(UserError::UnknownRole(role.clone())),
        }
    }

    /// Changes one user with `change` and bumps its token generation (recording the
    /// time in `tokens_after`), so every token issued before is refused.
    async fn update(
        &self,
        name: &UserName,
        change: impl FnOnce(&mut StoredUser) + Send + 'static,
    ) -> Result<(), UserError> {
        let name = name.clone();
        self.modify(move |users| {
            let Some(user) = users.get_mut(&name) else {
                return Err(UserError::NotFound(name));
            };
            change(user);
            user.tokens_after = clock::now_unix();
            user.generation = user.generation.wrapping_add(1);
            Ok(())
        })
        .await
    }

    /// A locked read-modify-write of the file, on the blocking pool.
    async fn modify(
        &self,
        change: impl FnOnce(&mut UserMap) -> Result<(), UserError> + Send + 'static,
    ) -> Result<(), UserError> {
        let users = self.clone();
        let work = move || {
            let path = &users.0.path;
            let _lock = private_files::lock(path)?;
            let mut map = users_file::read(path)?.unwrap_or_default();
            change(&mut map)?;
            users_file::write(path, &map)?;
            users.current().map(drop).map_err(UserError::from)
        };
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| UserError::Hash(HashError::from_join(&e)))?
    }

    /// Writes the file with the first user unless someone else created it meanwhile.
    async fn create_first_user(&self) -> Result<Option<FirstStart>, UserError> {
        let password = password::generate_password()?;
        let (name, role) = (first_name()?, FIRST_ROLE.parse::<RoleName>()?);
        let stored = StoredUser {
            role,
            password: self.0.hasher.hash(&password).await?,
            created_at: clock::now_unix(),
            tokens_after: 0,
            generation: first_generation()?,
        };
        let path = self.0.path.clone();
        let user = name.clone();
        let work = move || -> Result<bool, UserError> {
            ensure_parent(&path)?;
            let _lock = private_files::lock(&path)?;
            if users_file::read(&path)?.is_some() {
                return Ok(false);
            }
            users_file::write(&path, &UserMap::from([(user, stored)]))?;
            Ok(true)
        };
        let created = tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| UserError::Hash(HashError::from_join(&e)))??;
        Ok(created.then_some(FirstStart {
            user: name,
            password,
        }))
    }

    /// The users as the file holds them now, re-read when it changed.
    /// The file is small; it is read under the cache's lock, so the checks of many
    /// connections after one change read it once, not once each.
    fn current(&self) -> Result<Arc<UserMap>, FileError> {
        let stamp = private_files::stamp(&self.0.path);
        let mut cache = self.0.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.stamp == stamp && stamp.is_some() {
            return Ok(Arc::clone(&cache.users));
        }
        let users = Arc::new(users_file::read(&self.0.path)?.unwrap_or_default());
        *cache = Cache {
            stamp,
            users: Arc::clone(&users),
        };
        Ok(users)
    }

    /// The hasher (tests count its verifications).
    pub fn hasher(&self) -> &Hasher {
        &self.0.hasher
    }
}

/// A new user's first token generation: random (53 bits, exact in any JSON reader), so a
/// user removed and later added again under the same name does not bring back the tokens
/// of the one before, nor does a users file deleted and recreated.
fn first_generation() -> Result<u64, FileError> {
    use rand::TryRngCore;
    let random = rand::rngs::OsRng
        .try_next_u64()
        .map_err(|e| FileError::io(Path::new("/dev/urandom"), std::io::Error::other(e)))?;
    Ok(random >> 11)
}

fn first_name() -> Result<UserName, UserError> {
    Ok(FIRST_USER.parse::<UserName>()?)
}

/// Creates the users file's directory (0700) when it does not exist yet.
fn ensure_parent(path: &Path) -> Result<(), FileError> {
    let dir = private_files::parent(path);
    match dir.exists() {
        true => Ok(()),
        false => private_files::ensure_private_dir(dir),
    }
}

#[cfg(test)]
#[path = "users_tests.rs"]
mod tests;
