//! The users file (`USERS_FILE`, default `DATA_DIR/users.toml`): its TOML form, and
//! reading and replacing it through [`super::private_files`].
//!
//! ```toml
//! [users.alice]
//! role = "operator"
//! password = "$argon2id$v=19$m=19456,t=2,p=1$…"
//! created_at = 1764353651    # Unix seconds
//! tokens_after = 1764353651  # when tokens were last invalidated
//! generation = 3             # tokens carry it; only the current one is accepted
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use super::names::{RoleName, UserName};
use super::private_files::{self, FileError};

/// What the gateway writes at the top of the file.
const HEADER: &str = "# tmuxgate users: edit with `tmuxgate user ...`. Mode 0600: it holds \
                      password hashes.\n# created_at and tokens_after are Unix seconds.\n\n";

/// One user as stored.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredUser {
    /// Role name (checked against the known roles when used, not here).
    pub role: RoleName,
    /// argon2id PHC string.
    pub password: String,
    /// When the user was added, Unix seconds.
    pub created_at: u64,
    /// When the user's tokens were last invalidated (password or role changed,
    /// `tmuxgate user revoke`), Unix seconds; informational.
    #[serde(default)]
    pub tokens_after: u64,
    /// Token generation: every token carries the generation it was issued under and is
    /// refused once this moves on. Bumped with `tokens_after`; unlike a time it cannot
    /// leave a token issued in the same second as the change alive.
    #[serde(default)]
    pub generation: u64,
}

/// Never shows the hash.
impl std::fmt::Debug for StoredUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredUser")
            .field("role", &self.role)
            .field("created_at", &self.created_at)
            .field("tokens_after", &self.tokens_after)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// Every user, by name.
pub type UserMap = BTreeMap<UserName, StoredUser>;

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    users: UserMap,
}

/// The users in `path`; `None` when the file does not exist.
pub fn read(path: &Path) -> Result<Option<UserMap>, FileError> {
    let Some(text) = private_files::read_private(path)? else {
        return Ok(None);
    };
    // toml's messages quote the offending line, which may hold a hash: keep only the
    // message itself.
    let file: UsersFile =
        toml::from_str(&text).map_err(|e| FileError::format(path, e.message()))?;
    Ok(Some(file.users))
}

/// Replaces `path` with `users`, atomically and mode 0600.
pub fn write(path: &Path, users: &UserMap) -> Result<(), FileError> {
    let file = UsersFile {
        users: users.clone(),
    };
    let body = toml::to_string(&file).map_err(|e| FileError::format(path, e))?;
    private_files::write_private(path, format!("{HEADER}{body}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: &str) -> StoredUser {
        StoredUser {
            role: role.parse().unwrap_or_else(|_| unreachable!()),
            password: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
            created_at: 1_700_000_000,
            tokens_after: 0,
            generation: 0,
        }
    }

    #[test]
    fn round_trip_keeps_every_field() -> Result<(), FileError> {
        let tmp = tempfile::tempdir().map_err(|e| FileError::io(Path::new("tmp"), e))?;
        let path = tmp.path().join("users.toml");
        let mut users = UserMap::new();
        let name = |n: &str| {
            n.parse::<UserName>()
                .map_err(|e| FileError::format(&path, e))
        };
        users.insert(name("alice")?, user("operator"));
        users.insert(
            name("ci.bot")?,
            StoredUser {
                tokens_after: 7,
                generation: 3,
                ..user("viewer")
            },
        );
        write(&path, &users)?;
        assert_eq!(read(&path)?, Some(users));
        let text = std::fs::read_to_string(&path).map_err(|e| FileError::io(&path, e))?;
        assert!(text.starts_with("# tmuxgate users"), "{text}");
        assert!(text.contains("[users.\"ci.bot\"]"), "{text}");
        Ok(())
    }

    #[test]
    fn bad_content_is_refused_without_quoting_it() -> Result<(), FileError> {
        let tmp = tempfile::tempdir().map_err(|e| FileError::io(Path::new("tmp"), e))?;
        let path = tmp.path().join("users.toml");
        let cases = [
            "[users.Bad]\nrole = \"viewer\"\npassword = \"$argon2id$SECRET\"\ncreated_at = 1\n",
            "[users.ok]\nrole = \"viewer\"\npassword = \"$argon2id$SECRET\"\ncreated_at = 1\nextra = 2\n",
            "[users.ok]\nrole = \"viewer\"\npassword = \"$argon2id$SECRET\"\n",
        ];
        for text in cases {
            private_files::write_private(&path, text.as_bytes())?;
            let message = read(&path).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                !message.is_empty() && !message.contains("SECRET"),
                "{message}"
            );
        }
        Ok(())
    }
}
