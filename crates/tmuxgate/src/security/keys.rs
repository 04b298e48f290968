//! The key ring tokens are signed and verified with: one signing key and any number of
//! verify-only keys, each named by a `kid`, all of the one configured algorithm.
//!
//! Where keys come from ([`KeySource`]), in this order:
//! - `JWT_ALGORITHM=RS256|ES256|EdDSA`: `JWT_PRIVATE_KEY_FILE` signs, `JWT_PUBLIC_KEY_FILE`
//!   and `JWT_PREVIOUS_PUBLIC_KEY_FILES` verify; `kid` is the RFC 7638 thumbprint.
//! - `JWT_SECRET`: signs; `JWT_PREVIOUS_SECRETS` verify.
//! - otherwise the generated ring `DATA_DIR/jwt-keys.toml` ([`super::keyring_file`]),
//!   rotated with `tmuxgate key rotate`.
//!
//! An HS256 `kid` is an HMAC of a fixed label under the key: it names the key without
//! revealing anything about it.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use super::keyring_file::{self, StoredKey};
use super::private_files::{self, FileError, Stamp};
use super::{clock, tokens};
use crate::config::{Config, JwtAlgorithm, Secret};

/// Characters of a `kid`: 96 bits.
const KID_CHARS: usize = 16;
/// Largest PEM key file read, as for TLS: a key is a few KiB, so anything bigger is
/// not one (and must not fill memory).
const MAX_KEY_FILE_BYTES: u64 = 1024 * 1024;
/// What an HS256 `kid` is the HMAC of.
const KID_LABEL: &[u8] = b"tmuxgate key id v1";

/// A key ring that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A configured key is unusable (never shows the key).
    #[error("{variable}: {reason}")]
    Invalid {
        /// The variable naming the key.
        variable: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The key ring file.
    #[error(transparent)]
    File(#[from] FileError),
    /// `tmuxgate key rotate` while keys come from the configuration.
    #[error("keys come from {0}; rotate them there (see docs/configuration.md)")]
    Configured(&'static str),
}

/// What `tmuxgate key list` shows about a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's id, as in the tokens' `kid` header.
    pub kid: String,
    /// Whether new tokens are signed with it.
    pub signing: bool,
    /// Where it comes from (a variable, or the key ring file).
    pub origin: &'static str,
    /// When it was made (generated keys only).
    pub created_at: Option<SystemTime>,
    /// Until when tokens it signed are accepted (retired generated keys only).
    pub verifies_until: Option<SystemTime>,
}

/// Where the keys are configured.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// PEM key files for an asymmetric algorithm.
    Pem {
        algorithm: JwtAlgorithm,
        private: PathBuf,
        public: PathBuf,
        previous: Vec<PathBuf>,
    },
    /// `JWT_SECRET` and `JWT_PREVIOUS_SECRETS`.
    Secrets {
        current: Secret,
        previous: Vec<Secret>,
    },
    /// The generated ring; retired keys verify for `retention_secs`.
    Ring { path: PathBuf, retention_secs: u64 },
}

impl KeySource {
    /// The source `config` names (already validated).
    pub fn from_config(config: &Config) -> KeySource {
        if let (Some(private), Some(public)) =
            (&config.jwt_private_key_file, &config.jwt_public_key_file)
        {
            return KeySource::Pem {
                algorithm: config.jwt_algorithm,
                private: private.clone(),
                public: public.clone(),
                previous: config.jwt_previous_public_key_files.clone(),
            };
        }
        if let Some(current) = &config.jwt_secret {
            let previous = config.jwt_previous_secrets.clone();
            return KeySource::Secrets {
                current: current.clone(),
                previous,
            };
        }
        let retention = tokens::MAX_TOKEN_TTL + config.jwt_leeway;
        KeySource::Ring {
            path: config.data_dir.join("jwt-keys.toml"),
            retention_secs: retention.as_secs(),
        }
    }
}

/// Loaded keys.
pub struct Keyring {
    algorithm: Algorithm,
    signing: (String, EncodingKey),
    verifying: Vec<(KeyInfo, DecodingKey)>,
    /// The ring file's stamp when loaded from one: a change means reload.
    stamp: Option<(PathBuf, Option<Stamp>)>,
}

impl Keyring {
    /// Adds an earlier key: it verifies tokens, never signs.
    fn accept_previous(&mut self, info: KeyInfo, key: DecodingKey) {
        let info = KeyInfo {
            signing: false,
            ..info
        };
        self.verifying.push((info, key));
    }

    /// Loads (or, for the ring file, creates) the keys of `source`.
    pub fn load(source: &KeySource) -> Result<Keyring, KeyError> {
        match source {
            KeySource::Pem {
                algorithm,
                private,
                public,
                previous,
            } => load_pem(*algorithm, private, public, previous),
            KeySource::Secrets { current, previous } => load_secrets(current, previous),
            KeySource::Ring {
                path,
                retention_secs,
            } => {
                private_files::ensure_private_dir(private_files::parent(path))?;
                let stamp = private_files::stamp(path);
                let keys = keyring_file::load_or_create(path)?;
                let mut ring = load_ring(path, &keys, *retention_secs)?;
                ring.stamp = Some((path.clone(), stamp.or_else(|| private_files::stamp(path))));
                Ok(ring)
            }
        }
    }

    /// Whether the ring file changed since this was loaded.
    pub fn is_stale(&self) -> bool {
        self.stamp
            .as_ref()
            .is_some_and(|(path, stamp)| private_files::stamp(path) != *stamp)
    }

    /// The algorithm every key here is for.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The signing key and its `kid`.
    pub fn signer(&self) -> (&str, &EncodingKey) {
        (&self.signing.0, &self.signing.1)
    }

    /// The verification key named `kid`, unless its `verifies_until` has passed at
    /// `now`: a ring loaded before a retired key ran out must not keep accepting it.
    pub fn verifier(&self, kid: &str, now: SystemTime) -> Option<&DecodingKey> {
        let found = self.verifying.iter().find(|(info, _)| info.kid == kid);
        let live = found.filter(|(info, _)| info.verifies_until.is_none_or(|until| now < until));
        live.map(|(_, key)| key)
    }

    /// Every key, signing key first.
    pub fn infos(&self) -> Vec<KeyInfo> {
        self.verifying
            .iter()
            .map(|(info, _)| info.clone())
            .collect()
    }
}

fn load_secrets(current: &Secret, previous: &[Secret]) -> Result<Keyring, KeyError> {
    let invalid = |variable| move |reason: String| KeyError::Invalid { variable, reason };
    let signing =
        hmac_pair(current.expose().as_bytes(), "JWT_SECRET").map_err(invalid("JWT_SECRET"))?;
    let mut ring = hmac_ring(signing);
    for secret in previous {
        let (info, _, key) = hmac_pair(secret.expose().as_bytes(), "JWT_PREVIOUS_SECRETS")
            .map_err(invalid("JWT_PREVIOUS_SECRETS"))?;
        ring.accept_previous(info, key);
    }
    Ok(ring)
}

fn load_ring(path: &Path, keys: &[StoredKey], retention_secs: u64) -> Result<Keyring, KeyError> {
    let now = clock::now_unix();
    let origin = "DATA_DIR/jwt-keys.toml";
    let mut verifying = Vec::new();
    let mut signing = None;
    for stored in keys
        .iter()
        .filter(|k| k.still_verifies(now, retention_secs))
    {
        let bytes = stored.secret_bytes(path)?;
        let (info, encoding, decoding) =
            hmac_pair(&bytes, origin).map_err(|e| FileError::format(path, e))?;
        let info = KeyInfo {
            signing: signing.is_none(),
            created_at: Some(clock::from_unix(stored.created_at)),
            verifies_until: stored
                .retired_at
                .map(|r| clock::from_unix(r.saturating_add(retention_secs))),
            ..info
        };
        signing.get_or_insert_with(|| (info.kid.clone(), encoding));
        verifying.push((info, decoding));
    }
    let signing = signing.ok_or_else(|| FileError::format(path, "no current key"))?;
    Ok(Keyring {
        algorithm: Algorithm::HS256,
        signing,
        verifying,
        stamp: None,
    })
}

fn hmac_ring((info, encoding, decoding): (KeyInfo, EncodingKey, DecodingKey)) -> Keyring {
    Keyring {
        algorithm: Algorithm::HS256,
        signing: (info.kid.clone(), encoding),
        verifying: vec![(info, decoding)],
        stamp: None,
    }
}

/// Both halves of an HS256 key and its info (as the signing key).
fn hmac_pair(
    secret: &[u8],
    origin: &'static str,
) -> Result<(KeyInfo, EncodingKey, DecodingKey), String> {
    let encoding = EncodingKey::from_secret(secret).map_err(|e| e.to_string())?;
    let decoding = DecodingKey::from_secret(secret).map_err(|e| e.to_string())?;
    let tag = jsonwebtoken::crypto::sign(KID_LABEL, &encoding, Algorithm::HS256)
        .map_err(|e| e.to_string())?;
    let info = KeyInfo {
        kid: tag.chars().take(KID_CHARS).collect(),
        signing: true,
        origin,
        created_at: None,
        verifies_until: None,
    };
    Ok((info, encoding, decoding))
}

fn load_pem(
    algorithm: JwtAlgorithm,
    private: &Path,
    public: &Path,
    previous: &[PathBuf],
) -> Result<Keyring, KeyError> {
    let alg = jwt_algorithm(algorithm);
    let private_pem = read_key_file(private, "JWT_PRIVATE_KEY_FILE")?;
    let invalid = |variable| move |reason: String| KeyError::Invalid { variable, reason };
    let encoding = encoding_key(alg, &private_pem).map_err(invalid("JWT_PRIVATE_KEY_FILE"))?;
    let (info, decoding) = pem_verifier(alg, public, "JWT_PUBLIC_KEY_FILE")?;
    check_pair(alg, &encoding, &decoding)?;
    let mut ring = Keyring {
        algorithm: alg,
        signing: (info.kid.clone(), encoding),
        verifying: vec![(info, decoding)],
        stamp: None,
    };
    for path in previous {
        let (info, key) = pem_verifier(alg, path, "JWT_PREVIOUS_PUBLIC_KEY_FILES")?;
        ring.accept_previous(info, key);
    }
    Ok(ring)
}

/// Reads a PEM file of at most [`MAX_KEY_FILE_BYTES`]. Private keys readable by others
/// get a warning, not a refusal: mounted secrets (Kubernetes, Docker) are often 0644
/// inside a private mount.
fn read_key_file(path: &Path, variable: &'static str) -> Result<Vec<u8>, KeyError> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let invalid = |reason: String| KeyError::Invalid {
        variable,
        reason: format!("{}: {reason}", path.display()),
    };
    let file = std::fs::File::open(path).map_err(|e| invalid(e.to_string()))?;
    let mut bytes = Vec::new();
    (&file)
        .take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| invalid(e.to_string()))?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        let reason = format!("larger than {MAX_KEY_FILE_BYTES} bytes: not a PEM key");
        return Err(invalid(reason));
    }
    let loose = file.metadata().is_ok_and(|m| m.mode() & 0o077 != 0);
    if loose && variable == "JWT_PRIVATE_KEY_FILE" {
        tracing::warn!(path = %path.display(), "the JWT private key is readable by group or others");
    }
    Ok(bytes)
}

fn pem_verifier(
    alg: Algorithm,
    path: &Path,
    variable: &'static str,
) -> Result<(KeyInfo, DecodingKey), KeyError> {
    let pem = read_key_file(path, variable)?;
    let invalid = |reason: String| KeyError::Invalid {
        variable,
        reason: format!("{}: {reason}", path.display()),
    };
    let key = decoding_key(alg, &pem).map_err(invalid)?;
    let jwk = Jwk::from_decoding_key(&key, Some(alg)).map_err(|e| invalid(e.to_string()))?;
    let thumbprint = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| invalid(e.to_string()))?;
    let info = KeyInfo {
        kid: thumbprint.chars().take(KID_CHARS).collect(),
        signing: true,
        origin: variable,
        created_at: None,
        verifies_until: None,
    };
    Ok((info, key))
}

/// Refuses a public key that does not verify what the private key signs.
fn check_pair(
    alg: Algorithm,
    encoding: &EncodingKey,
    decoding: &DecodingKey,
) -> Result<(), KeyError> {
    let probe = b"tmuxgate key pair check";
    let signature = jsonwebtoken::crypto::sign(probe, encoding, alg);
    let verified = signature.and_then(|s| jsonwebtoken::crypto::verify(&s, probe, decoding, alg));
    match verified {
        Ok(true) => Ok(()),
        _ => Err(KeyError::Invalid {
            variable: "JWT_PUBLIC_KEY_FILE",
            reason: "does not match JWT_PRIVATE_KEY_FILE".to_owned(),
        }),
    }
}

fn encoding_key(alg: Algorithm, pem: &[u8]) -> Result<EncodingKey, String> {
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
        _ => EncodingKey::from_ed_pem(pem),
    };
    key.map_err(|e| e.to_string())
}

fn decoding_key(alg: Algorithm, pem: &[u8]) -> Result<DecodingKey, String> {
    let key = match alg {
        Algorithm::RS256 => DecodingKey::from_rsa_pem(pem),
        Algorithm::ES256 => DecodingKey::from_ec_pem(pem),
        _ => DecodingKey::from_ed_pem(pem),
    };
    key.map_err(|e| e.to_string())
}

/// The jsonwebtoken algorithm of a configured one.
pub fn jwt_algorithm(algorithm: JwtAlgorithm) -> Algorithm {
    match algorithm {
        JwtAlgorithm::Hs256 => Algorithm::HS256,
        JwtAlgorithm::Rs256 => Algorithm::RS256,
        JwtAlgorithm::Es256 => Algorithm::ES256,
        JwtAlgorithm::EdDsa => Algorithm::EdDSA,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_key_files_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let path = tmp.path().join("key.pem");
        std::fs::write(&path, vec![b'a'; MAX_KEY_FILE_BYTES as usize])?;
        assert!(read_key_file(&path, "JWT_PUBLIC_KEY_FILE").is_ok());
        std::fs::write(&path, vec![b'a'; MAX_KEY_FILE_BYTES as usize + 1])?;
        let refused = read_key_file(&path, "JWT_PUBLIC_KEY_FILE").err();
        let message = refused.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("larger than"), "{message}");
        Ok(())
    }
}
