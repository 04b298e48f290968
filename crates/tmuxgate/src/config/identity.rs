//! The validation rules of the identity settings (`DATA_DIR`, `JWT_*`): part of
//! [`Config::validate`], kept apart from the transport rules in `validate.rs`.

use super::validate::{ConfigError, invalid};
use super::{Config, Secret, secret::MASK};

/// Shortest HS256 secret: 256 bits, the size of the hash (RFC 7518 §3.2).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

impl Config {
    /// `DATA_DIR` absolute, issuer and audience usable, keys consistent with
    /// `JWT_ALGORITHM`.
    pub(super) fn check_identity(&self) -> Result<(), ConfigError> {
        if !self.data_dir.is_absolute() {
            let shown = self.data_dir.display();
            return invalid("DATA_DIR", shown, "must be an absolute path".to_owned());
        }
        for (variable, value) in [
            ("JWT_ISSUER", &self.jwt_issuer),
            ("JWT_AUDIENCE", &self.jwt_audience),
        ] {
            if value.is_empty() || value.chars().any(char::is_control) {
                let reason = "must be non-empty, without control characters".to_owned();
                return invalid(variable, value, reason);
            }
        }
        match self.jwt_algorithm.is_asymmetric() {
            true => self.check_key_files(),
            false => self.check_secrets(),
        }
    }

    /// HS256: secrets long enough, and no key files that would go unused.
    fn check_secrets(&self) -> Result<(), ConfigError> {
        let short = |s: &Secret| s.expose().len() < MIN_JWT_SECRET_BYTES;
        let reason = || format!("must be at least {MIN_JWT_SECRET_BYTES} bytes");
        if self.jwt_secret.as_ref().is_some_and(short) {
            return invalid("JWT_SECRET", MASK, reason());
        }
        if self.jwt_previous_secrets.iter().any(short) {
            return invalid("JWT_PREVIOUS_SECRETS", MASK, reason() + " each");
        }
        let files = [
            ("JWT_PRIVATE_KEY_FILE", self.jwt_private_key_file.is_some()),
            ("JWT_PUBLIC_KEY_FILE", self.jwt_public_key_file.is_some()),
            (
                "JWT_PREVIOUS_PUBLIC_KEY_FILES",
                !self.jwt_previous_public_key_files.is_empty(),
            ),
        ];
        match files.into_iter().find(|(_, given)| *given) {
            Some((variable, _)) => invalid(
                variable,
                "…",
                "needs JWT_ALGORITHM=RS256, ES256 or EdDSA (HS256 uses JWT_SECRET)".to_owned(),
            ),
            None => Ok(()),
        }
    }

    /// RS256/ES256/EdDSA: both key files, and no shared secret an attacker could
    /// confuse with them.
    fn check_key_files(&self) -> Result<(), ConfigError> {
        let algorithm = self.jwt_algorithm;
        if self.jwt_private_key_file.is_none() || self.jwt_public_key_file.is_none() {
            let reason = "needs JWT_PRIVATE_KEY_FILE and JWT_PUBLIC_KEY_FILE".to_owned();
            return invalid("JWT_ALGORITHM", algorithm, reason);
        }
        if self.jwt_secret.is_some() || !self.jwt_previous_secrets.is_empty() {
            let reason = format!("is for HS256; JWT_ALGORITHM={algorithm} signs with key files");
            return invalid("JWT_SECRET", MASK, reason);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::JwtAlgorithm;

    /// Validates test defaults changed by `change`; returns the error message.
    fn error(change: impl FnOnce(&mut Config)) -> String {
        let mut config = Config::for_tests(PathBuf::from("/tmp/tmuxgate-test"));
        change(&mut config);
        crate::config::refusal(&config)
    }

    #[test]
    fn jwt_secrets_must_be_long_and_are_never_shown() {
        let short = "31-bytes-of-secret-not-enough!!";
        let message = error(|c| c.jwt_secret = Some(Secret::new(short)));
        assert_eq!(message, "invalid JWT_SECRET=***: must be at least 32 bytes");
        let message = error(|c| c.jwt_previous_secrets = vec![Secret::new(short)]);
        assert!(
            message.starts_with("invalid JWT_PREVIOUS_SECRETS=***"),
            "{message}"
        );
        assert!(!message.contains(short));
        let long = "32-bytes-of-secret-just-enough!!";
        assert_eq!(error(|c| c.jwt_secret = Some(Secret::new(long))), "");
    }

    #[test]
    fn key_files_and_algorithm_must_agree() {
        let pem = || Some(PathBuf::from("/k/key.pem"));
        let message = error(|c| c.jwt_public_key_file = pem());
        assert!(
            message.starts_with("invalid JWT_PUBLIC_KEY_FILE=…: needs JWT_ALGORITHM"),
            "{message}"
        );
        let message = error(|c| c.jwt_algorithm = JwtAlgorithm::Rs256);
        assert!(
            message.contains("needs JWT_PRIVATE_KEY_FILE and JWT_PUBLIC_KEY_FILE"),
            "{message}"
        );
        let pair = |c: &mut Config| {
            c.jwt_algorithm = JwtAlgorithm::Es256;
            (c.jwt_private_key_file, c.jwt_public_key_file) = (pem(), pem());
        };
        assert_eq!(error(pair), "");
        let message = error(|c| {
            pair(c);
            c.jwt_secret = Some(Secret::new("x".repeat(40)));
        });
        assert!(
            message.starts_with("invalid JWT_SECRET=***: is for HS256"),
            "{message}"
        );
    }

    #[test]
    fn data_dir_issuer_and_audience_are_checked() {
        assert!(error(|c| c.data_dir = "state".into()).starts_with("invalid DATA_DIR=state"));
        assert!(error(|c| c.jwt_issuer.clear()).starts_with("invalid JWT_ISSUER="));
        assert!(error(|c| c.jwt_audience = "a\nb".into()).starts_with("invalid JWT_AUDIENCE="));
    }
}
