//! Password hashing with argon2id: PHC strings for the users file, verification that
//! costs the same whether or not the user exists, and random passwords for first start.
//! Every hash runs on tokio's blocking pool ([`tokio::task::spawn_blocking`]): one costs
//! tens of milliseconds and must not stall the connection tasks. At most one hash per
//! CPU runs at a time (anyone can ask for one by trying a login); a request that cannot
//! start within [`HASH_QUEUE_WAIT`] is refused with [`HashError::Busy`], never let
//! through.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::TryRngCore;
use rand::rngs::OsRng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Secret;

/// Length of generated passwords: 20 characters of 62 (about 119 bits).
pub const GENERATED_PASSWORD_CHARS: usize = 20;
/// Shortest password accepted when one is set (NIST SP 800-63B).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted, in bytes: bounds the work a login can ask for.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Longest a hash or verification waits for a free CPU before it is refused as busy.
pub const HASH_QUEUE_WAIT: Duration = Duration::from_secs(2);

const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Hashing failed, or could not start.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The RNG, the parameters, or a blocking task that did not finish.
    #[error("password hashing failed: {0}")]
    Failed(String),
    /// Every hashing slot stayed taken for [`HASH_QUEUE_WAIT`].
    #[error("busy: too many password checks at once")]
    Busy,
}

impl HashError {
    /// A blocking task that panicked or was cancelled.
    pub(crate) fn from_join(error: &tokio::task::JoinError) -> HashError {
        HashError::Failed(error.to_string())
    }
}

/// argon2id with fixed parameters, shared by hashing and verification.
#[derive(Clone, Debug)]
pub struct Hasher(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    params: Params,
    /// A hash of a random password with `params`, made on first use: what an unknown
    /// user's login is verified against.
    dummy: OnceLock<String>,
    /// Verifications run so far (tests check the unknown-user path does one).
    verifications: AtomicU64,
    /// One permit per hash allowed to run at once.
    slots: Arc<Semaphore>,
    /// How long a hash waits for a slot.
    queue_wait: Duration,
}

impl Default for Hasher {
    /// OWASP's recommended argon2id: 19 MiB, 2 passes, 1 lane (also argon2's default).
    fn default() -> Hasher {
        Hasher::with_params(Params::DEFAULT)
    }
}

impl Hasher {
    /// A hasher with explicit parameters (tests use cheap ones), running at most one
    /// hash per available CPU at once.
    pub fn with_params(params: Params) -> Hasher {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Hasher::with_limits(params, cpus, HASH_QUEUE_WAIT)
    }

    /// A hasher running at most `slots` hashes at once, each waiting at most
    /// `queue_wait` for a slot.
    pub fn with_limits(params: Params, slots: usize, queue_wait: Duration) -> Hasher {
        Hasher(Arc::new(Inner {
            params,
            dummy: OnceLock::new(),
            verifications: AtomicU64::new(0),
            slots: Arc::new(Semaphore::new(slots.max(1))),
            queue_wait,
        }))
    }

    /// Cheap parameters for tests: 64 KiB, 1 pass.
    #[cfg(test)]
    pub fn fast_for_tests() -> Hasher {
        Hasher::with_params(Params::new(64, 1, 1, None).unwrap_or(Params::DEFAULT))
    }

    /// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) of `password`.
    pub async fn hash(&self, password: &Secret) -> Result<String, HashError> {
        let slot = self.slot().await?;
        let (hasher, password) = (self.clone(), password.clone());
        blocking(slot, move || hasher.hash_now(password.expose())).await?
    }

    /// Whether `password` matches `phc`; `None` verifies against the dummy hash, so that
    /// an unknown user costs the same time as a wrong password, and answers false.
    /// Only [`HashError::Busy`] is an error: a failed verification is a mismatch.
    pub async fn verify(&self, password: &Secret, phc: Option<String>) -> Result<bool, HashError> {
        let slot = self.slot().await?;
        let (hasher, password) = (self.clone(), password.clone());
        let outcome = blocking(slot, move || hasher.verify_now(password.expose(), phc)).await;
        Ok(outcome.unwrap_or(false))
    }

    /// A hashing slot, waited for at most `queue_wait`.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, HashError> {
        let slots = Arc::clone(&self.0.slots);
        match tokio::time::timeout(self.0.queue_wait, slots.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(HashError::Busy),
        }
    }

    /// Whether `phc` was made with other parameters (or another variant or version)
    /// than this hasher's: a successful login then stores a fresh hash, so that every
    /// user's verification costs the same and old hashes do not stand out by timing.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return true;
        };
        let Ok(stored) = Params::try_from(&parsed) else {
            return true;
        };
        let current = &self.0.params;
        parsed.algorithm.as_str() != "argon2id"
            || parsed.version != Some(Version::V0x13 as u32)
            || (stored.m_cost(), stored.t_cost(), stored.p_cost())
                != (current.m_cost(), current.t_cost(), current.p_cost())
    }

    /// How many verifications ran so far.
    pub fn verifications(&self) -> u64 {
        self.0.verifications.load(Ordering::Relaxed)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.0.params.clone())
    }

    fn hash_now(&self, password: &str) -> Result<String, HashError> {
        let hash = self.argon2().hash_password(password.as_bytes());
        hash.map(|h| h.to_string())
            .map_err(|e| HashError::Failed(e.to_string()))
    }

    fn verify_now(&self, password: &str, phc: Option<String>) -> bool {
        let dummy = self.dummy();
        let (phc, known) = match &phc {
            Some(phc) => (phc.as_str(), true),
            None => (dummy, false),
        };
        self.0.verifications.fetch_add(1, Ordering::Relaxed);
        // The stored hash's own parameters are used: hashes made before a change of
        // parameters still verify.
        let matched = self
            .argon2()
            .verify_password(password.as_bytes(), phc)
            .is_ok();
        matched && known
    }

    fn dummy(&self) -> &str {
        self.0.dummy.get_or_init(|| {
            let random = generate_password().unwrap_or_else(|_| Secret::new("x".repeat(20)));
            self.hash_now(random.expose()).unwrap_or_default()
        })
    }
}

/// Runs `work` on the blocking pool, holding `slot` until it finishes (even when the
/// caller gave up waiting: the CPU is busy until then).
async fn blocking<T: Send + 'static>(
    slot: OwnedSemaphorePermit,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HashError> {
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        work()
    })
    .await
    .map_err(|e| HashError::from_join(&e))
}

/// A random password of [`GENERATED_PASSWORD_CHARS`] letters and digits from the
/// operating system's RNG (rejection sampling: no bias toward any character).
pub fn generate_password() -> Result<Secret, HashError> {
    let mut password = String::with_capacity(GENERATED_PASSWORD_CHARS);
    let mut byte = [0u8; 1];
    // 248 = 4 × 62: bytes at or above it would favour the first characters.
    while password.len() < GENERATED_PASSWORD_CHARS {
        OsRng
            .try_fill_bytes(&mut byte)
            .map_err(|e| HashError::Failed(e.to_string()))?;
        if byte[0] < 248 {
            password.push(char::from(ALPHABET[usize::from(byte[0] % 62)]));
        }
    }
    Ok(Secret::new(password))
}

/// Why a new password is refused (never the password itself).
pub fn check_new_password(password: &Secret) -> Result<(), &'static str> {
    let text = password.expose();
    if text.chars().count() < MIN_PASSWORD_CHARS {
        return Err("a password needs at least 8 characters");
    }
    if text.len() > MAX_PASSWORD_BYTES {
        return Err("a password has at most 1024 bytes");
    }
    if text.chars().any(char::is_control) {
        return Err("a password must not contain control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() -> Result<(), HashError> {
        let hasher = Hasher::fast_for_tests();
        let password = Secret::new("correct horse");
        let phc = hasher.hash(&password).await?;
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(hasher.verify(&password, Some(phc.clone())).await?);
        assert!(
            !hasher
                .verify(&Secret::new("wrong horse"), Some(phc))
                .await?
        );
        Ok(())
    }

    #[tokio::test]
    async fn hashes_with_other_parameters_need_a_rehash() -> Result<(), HashError> {
        let hasher = Hasher::fast_for_tests();
        let phc = hasher.hash(&Secret::new("correct horse")).await?;
        assert!(!hasher.needs_rehash(&phc));
        let stronger = Params::new(128, 1, 1, None).unwrap_or(Params::DEFAULT);
        assert!(Hasher::with_params(stronger).needs_rehash(&phc));
        let argon2i = phc.replacen("$argon2id$", "$argon2i$", 1);
        assert!(hasher.needs_rehash(&argon2i));
        assert!(hasher.needs_rehash("not a phc"));
        Ok(())
    }

    #[test]
    fn default_parameters_are_owasp() {
        let params = &Hasher::default().0.params;
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (19_456, 2, 1)
        );
    }

    #[tokio::test]
    async fn no_hash_still_verifies_once_and_fails() -> Result<(), HashError> {
        let hasher = Hasher::fast_for_tests();
        let dummy_password = Secret::new("anything");
        assert!(!hasher.verify(&dummy_password, None).await?);
        assert_eq!(hasher.verifications(), 1);
        assert!(
            !hasher
                .verify(&dummy_password, Some("not a phc".into()))
                .await?
        );
        assert_eq!(hasher.verifications(), 2);
        Ok(())
    }

    #[tokio::test]
    async fn when_every_slot_is_taken_hashing_is_refused_as_busy() -> Result<(), HashError> {
        let params = Params::new(64, 1, 1, None).unwrap_or(Params::DEFAULT);
        let hasher = Hasher::with_limits(params, 1, Duration::from_millis(50));
        let password = Secret::new("correct horse");
        let taken = hasher.slot().await?;
        let verified = hasher.verify(&password, None).await;
        assert!(matches!(verified, Err(HashError::Busy)), "{verified:?}");
        assert!(matches!(hasher.hash(&password).await, Err(HashError::Busy)));
        assert_eq!(hasher.verifications(), 0, "nothing ran");
        drop(taken);
        assert!(
            !hasher.verify(&password, None).await?,
            "a freed slot serves"
        );
        Ok(())
    }

    #[test]
    fn the_default_allows_one_hash_per_cpu() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(Hasher::default().0.slots.available_permits(), cpus);
    }

    #[test]
    fn generated_passwords_are_long_alphanumeric_and_differ() -> Result<(), HashError> {
        let (a, b) = (generate_password()?, generate_password()?);
        assert_eq!(a.expose().len(), GENERATED_PASSWORD_CHARS);
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        Ok(())
    }

    #[test]
    fn new_passwords_are_checked() {
        assert!(check_new_password(&Secret::new("short")).is_err());
        assert!(check_new_password(&Secret::new("x".repeat(1025))).is_err());
        assert!(check_new_password(&Secret::new("tab\there!")).is_err());
        assert!(check_new_password(&Secret::new("long enough")).is_ok());
    }
}
