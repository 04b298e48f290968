//! JWTs: issuing them and checking everything about them before anything else trusts a
//! claim. A token is accepted only when its header names the configured algorithm and a
//! `kid` the key ring holds, its signature verifies with that key, and `sub`, `role`,
//! `iat`, `nbf`, `exp`, `jti`, `iss`, `aud` and `gen` are all present, well-typed and in range
//! (`iss`/`aud` exact, times within `JWT_LEEWAY`). The checks run in that order, so a
//! claim is only judged once the signature is known to be genuine.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Header, Validation};
use rand::TryRngCore;
use rand::rngs::OsRng;

use super::keys::{KeyError, KeyInfo, KeySource, Keyring};
use super::names::{RoleName, UserName};
use super::{AuthError, clock, keyring_file};
use crate::config::{Config, Secret};

/// Longest lifetime of any token (`TOKEN_TTL`, `tmuxgate user token --ttl`). A retired
/// generated key verifies this long (plus leeway) after its retirement.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Longest token accepted, in bytes: parsing stays cheap whatever arrives.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Bytes of a `jti`: 128 random bits.
const JTI_BYTES: usize = 16;

/// The claims of every token the gateway issues; all are required.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: UserName,
    /// The user's role when issued.
    pub role: RoleName,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Not before, Unix seconds.
    pub nbf: u64,
    /// Expires, Unix seconds.
    pub exp: u64,
    /// Token id, base64url of 128 random bits.
    pub jti: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user's token generation when issued; the user's current one must match
    /// (password, role change and `tmuxgate user revoke` bump it).
    #[serde(rename = "gen")]
    pub generation: u64,
}

/// Issues and verifies tokens with the configured key ring.
pub struct Tokens {
    source: KeySource,
    ring: RwLock<Arc<Keyring>>,
    validation: Validation,
    issuer: String,
    audience: String,
    leeway_secs: u64,
}

/// The part of a header read before any key is chosen.
#[derive(serde::Deserialize)]
struct RawHeader {
    alg: Option<serde_json::Value>,
    kid: Option<serde_json::Value>,
}

impl Tokens {
    /// Loads the keys `config` names (creating the generated ring on first start).
    pub fn open(config: &Config) -> Result<Tokens, KeyError> {
        let source = KeySource::from_config(config);
        let ring = Keyring::load(&source)?;
        let leeway_secs = config.jwt_leeway.as_secs();
        let mut validation = Validation::new(ring.algorithm());
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = leeway_secs;
        validation.set_issuer(&[&config.jwt_issuer]);
        validation.set_audience(&[&config.jwt_audience]);
        Ok(Tokens {
            source,
            ring: RwLock::new(Arc::new(ring)),
            validation,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            leeway_secs,
        })
    }

    /// A signed token for `user` with `role` and token `generation`, valid for `ttl`
    /// (whole seconds, at most [`MAX_TOKEN_TTL`]) from now.
    pub fn issue(
        &self,
        user: &UserName,
        role: &RoleName,
        generation: u64,
        ttl: Duration,
    ) -> Result<(Secret, Claims), AuthError> {
        let ring = self.fresh_ring()?;
        let now = clock::now_unix();
        let ttl = ttl.clamp(Duration::from_secs(1), MAX_TOKEN_TTL).as_secs();
        let claims = Claims {
            sub: user.clone(),
            role: role.clone(),
            iat: now,
            nbf: now,
            exp: now + ttl,
            jti: new_jti()?,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            generation,
        };
        let (kid, key) = ring.signer();
        let mut header = Header::new(ring.algorithm());
        header.kid = Some(kid.to_owned());
        let token = jsonwebtoken::encode(&header, &claims, key)
            .map_err(|e| AuthError::Unavailable(format!("cannot sign a token: {e}")))?;
        Ok((Secret::new(token), claims))
    }

    /// The claims of `token` once every check passed (revocation and the user's current
    /// state are the caller's).
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let kid = self.check_header(token)?;
        let ring = self.fresh_ring()?;
        let key = ring
            .verifier(&kid, SystemTime::now())
            .ok_or(AuthError::UnknownKey)?;
        let data =
            jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(classify)?;
        self.check_claims(data.claims)
    }

    /// Rotates the generated ring (see [`keyring_file::rotate`]) and reloads it.
    pub fn rotate(&self, discard_previous: bool) -> Result<Vec<KeyInfo>, KeyError> {
        let KeySource::Ring {
            path,
            retention_secs,
        } = &self.source
        else {
            let origin = match self.source {
                KeySource::Pem { .. } => "JWT_PRIVATE_KEY_FILE and JWT_PUBLIC_KEY_FILE",
                _ => "JWT_SECRET (move it to JWT_PREVIOUS_SECRETS, set a new one)",
            };
            return Err(KeyError::Configured(origin));
        };
        keyring_file::rotate(path, *retention_secs, discard_previous)?;
        let ring = Arc::new(Keyring::load(&self.source)?);
        *self.ring.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&ring);
        Ok(ring.infos())
    }

    /// Every key, signing key first.
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.current_ring().infos()
    }

    /// The algorithm's JOSE name.
    pub fn algorithm(&self) -> &'static str {
        let alg = self.current_ring().algorithm();
        match alg {
            jsonwebtoken::Algorithm::RS256 => "RS256",
            jsonwebtoken::Algorithm::ES256 => "ES256",
            jsonwebtoken::Algorithm::EdDSA => "EdDSA",
            _ => "HS256",
        }
    }

    /// `alg` must be exactly the configured one (this is where `none` and HS256-with-a-
    /// public-key end); returns the `kid`.
    fn check_header(&self, token: &str) -> Result<String, AuthError> {
        if token.len() > MAX_TOKEN_BYTES || token.split('.').count() != 3 {
            return Err(AuthError::Malformed);
        }
        let encoded = token.split('.').next().unwrap_or_default();
        let json = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| AuthError::Malformed)?;
        let header: RawHeader = serde_json::from_slice(&json).map_err(|_| AuthError::Malformed)?;
        let expected = self.algorithm();
        match header.alg.as_ref().and_then(|alg| alg.as_str()) {
            Some(alg) if alg == expected => {}
            _ => return Err(AuthError::WrongAlgorithm),
        }
        match header.kid {
            Some(serde_json::Value::String(kid)) => Ok(kid),
            _ => Err(AuthError::UnknownKey),
        }
    }

    /// What `decode` leaves to us: `iat` not in the future, a sane lifetime (positive,
    /// at most [`MAX_TOKEN_TTL`]: a key that signed a longer one was not ours to trust),
    /// a `jti` of the right shape.
    fn check_claims(&self, claims: Claims) -> Result<Claims, AuthError> {
        if claims.iat > clock::now_unix().saturating_add(self.leeway_secs) {
            return Err(AuthError::NotYetValid);
        }
        let jti_ok = claims.jti.len() == 22
            && URL_SAFE_NO_PAD
                .decode(&claims.jti)
                .is_ok_and(|b| b.len() == JTI_BYTES);
        let too_long = claims.exp.saturating_sub(claims.iat) > MAX_TOKEN_TTL.as_secs();
        if !jti_ok || claims.exp <= claims.iat || claims.nbf < claims.iat || too_long {
            return Err(AuthError::Malformed);
        }
        Ok(claims)
    }

    fn current_ring(&self) -> Arc<Keyring> {
        Arc::clone(&self.ring.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The ring, reloaded first when its file changed (`tmuxgate key rotate` ran). One
    /// stat per call, at every issue and every verification: a key discarded from the
    /// command line stops verifying in a running gateway at once.
    fn fresh_ring(&self) -> Result<Arc<Keyring>, AuthError> {
        let ring = self.current_ring();
        if !ring.is_stale() {
            return Ok(ring);
        }
        let reloaded = Arc::new(
            Keyring::load(&self.source).map_err(|e| AuthError::Unavailable(e.to_string()))?,
        );
        *self.ring.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&reloaded);
        Ok(reloaded)
    }
}

/// Maps jsonwebtoken's verdict to ours.
fn classify(error: jsonwebtoken::errors::Error) -> AuthError {
    match error.kind() {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => AuthError::WrongAlgorithm,
        _ => AuthError::Malformed,
    }
}

fn new_jti() -> Result<String, AuthError> {
    let mut bytes = [0u8; JTI_BYTES];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| AuthError::Unavailable(format!("no randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
#[path = "tokens_tests.rs"]
mod tests;
