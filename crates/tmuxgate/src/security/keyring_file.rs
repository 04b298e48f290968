//! The generated HS256 key ring, `DATA_DIR/jwt-keys.toml`, used when neither
//! `JWT_SECRET` nor key files are configured. The first key signs; the others were
//! retired by `tmuxgate key rotate` and only verify, until every token they signed has
//! expired (`retired_at` + [`super::MAX_TOKEN_TTL`] + leeway), after which a rotation
//! drops them.
//!
//! ```toml
//! [[keys]]
//! secret = "…43 base64url characters: 256 random bits…"
//! created_at = 1764353651
//!
//! [[keys]]
//! secret = "…"
//! created_at = 1761761651
//! retired_at = 1764353651
//! ```

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore;
use rand::rngs::OsRng;

use super::clock;
use super::private_files::{self, FileError};

/// Size of a generated secret: 256 bits, the size of HMAC-SHA256's hash.
pub const SECRET_BYTES: usize = 32;

const HEADER: &str = "# tmuxgate JWT signing keys (HS256): the first signs, the others only \
                      verify.\n# Managed by `tmuxgate key rotate`. Mode 0600: anyone who \
                      reads this can forge tokens.\n\n";

/// One key as stored.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredKey {
    /// The secret, base64url without padding.
    pub secret: String,
    /// When it was made, Unix seconds.
    pub created_at: u64,
    /// When it stopped signing, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<u64>,
}

/// Never shows the secret.
impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

impl StoredKey {
    /// The secret's bytes.
    pub fn secret_bytes(&self, path: &Path) -> Result<Vec<u8>, FileError> {
        let bytes = URL_SAFE_NO_PAD.decode(&self.secret);
        match bytes {
            Ok(bytes) if bytes.len() >= SECRET_BYTES => Ok(bytes),
            _ => Err(FileError::format(
                path,
                "a key's secret is not 32+ bytes of base64url",
            )),
        }
    }

    /// Whether a token it signed may still be valid at `now`.
    pub fn still_verifies(&self, now: u64, retention_secs: u64) -> bool {
        self.retired_at
            .is_none_or(|retired| retired.saturating_add(retention_secs) > now)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RingFile {
    keys: Vec<StoredKey>,
}

/// The keys in `path`, creating the file with one new key when it does not exist.
pub fn load_or_create(path: &Path) -> Result<Vec<StoredKey>, FileError> {
    if let Some(keys) = read(path)? {
        return Ok(keys);
    }
    let _lock = private_files::lock(path)?;
    if let Some(keys) = read(path)? {
        return Ok(keys);
    }
    let keys = vec![new_key(clock::now_unix())?];
    write(path, &keys)?;
    Ok(keys)
}

/// Puts a new signing key first and retires the current one; drops keys whose tokens
/// have all expired, or every older key with `discard_previous` (their tokens stop
/// working at once: for a leaked key).
pub fn rotate(
    path: &Path,
    retention_secs: u64,
    discard_previous: bool,
) -> Result<Vec<StoredKey>, FileError> {
    let _lock = private_files::lock(path)?;
    let now = clock::now_unix();
    let mut keys = match discard_previous {
        true => Vec::new(),
        false => read(path)?.unwrap_or_default(),
    };
    for key in &mut keys {
        key.retired_at.get_or_insert(now);
    }
    keys.retain(|key| key.still_verifies(now, retention_secs));
    keys.insert(0, new_key(now)?);
    write(path, &keys)?;
    Ok(keys)
}

fn read(path: &Path) -> Result<Option<Vec<StoredKey>>, FileError> {
    let Some(text) = private_files::read_private(path)? else {
        return Ok(None);
    };
    let file: RingFile = toml::from_str(&text).map_err(|e| FileError::format(path, e.message()))?;
    match file.keys.first() {
        Some(first) if first.retired_at.is_none() => Ok(Some(file.keys)),
        _ => Err(FileError::format(
            path,
            "the first key must be a current (not retired) one",
        )),
    }
}

fn write(path: &Path, keys: &[StoredKey]) -> Result<(), FileError> {
    let file = RingFile {
        keys: keys.to_vec(),
    };
    let body = toml::to_string(&file).map_err(|e| FileError::format(path, e))?;
    private_files::write_private(path, format!("{HEADER}{body}").as_bytes())
}

fn new_key(now: u64) -> Result<StoredKey, FileError> {
    let mut secret = [0u8; SECRET_BYTES];
    OsRng
        .try_fill_bytes(&mut secret)
        .map_err(|e| FileError::io(Path::new("/dev/urandom"), std::io::Error::other(e)))?;
    Ok(StoredKey {
        secret: URL_SAFE_NO_PAD.encode(secret),
        created_at: now,
        retired_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn created_once_then_reused() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let path = tmp.path().join("jwt-keys.toml");
        let first = load_or_create(&path)?;
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].secret_bytes(&path)?.len(), SECRET_BYTES);
        assert_eq!(load_or_create(&path)?, first);
        let text = std::fs::read_to_string(&path)?;
        assert!(text.starts_with("# tmuxgate JWT signing keys"));
        assert!(!format!("{first:?}").contains(&first[0].secret));
        Ok(())
    }

    #[test]
    fn rotation_retires_prunes_and_discards() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let path = tmp.path().join("jwt-keys.toml");
        let first = load_or_create(&path)?;
        let rotated = rotate(&path, 3600, false)?;
        assert_eq!(rotated.len(), 2);
        assert_eq!(rotated[1].secret, first[0].secret);
        assert!(rotated[0].retired_at.is_none() && rotated[1].retired_at.is_some());
        let pruned = rotate(&path, 0, false)?;
        assert_eq!(pruned.len(), 1, "retention 0: retired keys go at once");
        rotate(&path, 3600, false)?;
        let discarded = rotate(&path, 3600, true)?;
        assert_eq!(discarded.len(), 1);
        Ok(())
    }

    #[test]
    fn a_ring_whose_first_key_is_retired_is_refused() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let path = tmp.path().join("jwt-keys.toml");
        let text = "[[keys]]\nsecret = \"x\"\ncreated_at = 1\nretired_at = 2\n";
        private_files::write_private(&path, text.as_bytes())?;
        assert!(load_or_create(&path).is_err());
        Ok(())
    }
}
