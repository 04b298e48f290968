//! Loading a certificate chain and its private key from PEM files into the
//! [`CertifiedKey`] rustls signs handshakes with, refusing a key that does not belong to the
//! certificate. Errors name the variable and path to fix and never quote the key file.

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::TlsError;

/// Largest PEM file read: a chain of a few certificates is a few KiB; this stops a
/// `TLS_CERT=/dev/zero` from eating memory.
pub const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// A certificate chain with its key, ready to serve.
#[derive(Clone, Debug)]
pub struct KeyPair {
    /// What the resolver hands to rustls.
    pub certified: Arc<CertifiedKey>,
    /// SHA-256 of the server certificate (DER), lower-case hex: what logs show to tell
    /// certificates apart (`openssl x509 -noout -fingerprint -sha256` prints the same bytes).
    pub fingerprint: String,
}

/// Reads `cert` (chain, server certificate first) and `key` and checks they belong together.
pub fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<KeyPair, TlsError> {
    let chain = parse_chain(cert, &read("TLS_CERT", cert)?)?;
    let key_der = parse_key(key, &read("TLS_KEY", key)?)?;
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|_| TlsError::UnsupportedKey { path: key.into() })?;
    let fingerprint = fingerprint(&chain[0]);
    let certified = CertifiedKey::new(chain, signing_key);
    // With ring every key type reports its public key, so "unknown" cannot pass silently.
    certified.keys_match().map_err(|error| match error {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
            cert: cert.into(),
            key: key.into(),
        },
        other => TlsError::BadCertificate {
            path: cert.into(),
            reason: other.to_string(),
        },
    })?;
    Ok(KeyPair {
        certified: Arc::new(certified),
        fingerprint,
    })
}

/// SHA-256 of `der` in lower-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn read(variable: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let failed = |source| TlsError::Read {
        variable,
        path: path.into(),
        source,
    };
    let file = std::fs::File::open(path).map_err(failed)?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(failed)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsError::TooLarge {
            variable,
            path: path.into(),
        });
    }
    Ok(bytes)
}

fn parse_chain(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::BadCertificate {
            path: path.into(),
            reason: format!("not valid PEM: {error}"),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: path.into() });
    }
    Ok(chain)
}

/// The first `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` section. A PEM error is
/// not quoted: its text can contain a line of the key.
fn parse_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsError::NoKey { path: path.into() },
        _ => TlsError::UnsupportedKey { path: path.into() },
    })
}

#[cfg(test)]
mod tests {
    use rcgen::{CertifiedKey as Generated, generate_simple_self_signed};

    use super::*;

    fn provider() -> CryptoProvider {
        rustls::crypto::aws_lc_rs::default_provider()
    }

    fn generated() -> Generated<rcgen::KeyPair> {
        generate_simple_self_signed(["localhost".to_owned()]).expect("rcgen")
    }

    /// Writes `cert` and `key` into a fresh directory and loads them.
    fn load_texts(cert: &str, key: &str) -> Result<KeyPair, TlsError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, cert).expect("write cert");
        std::fs::write(&key_path, key).expect("write key");
        load(&cert_path, &key_path, &provider())
    }

    #[test]
    fn a_matching_pair_loads_with_its_fingerprint() {
        let pair = generated();
        let loaded = load_texts(&pair.cert.pem(), &pair.signing_key.serialize_pem())
            .expect("a matching pair loads");
        assert_eq!(loaded.certified.cert.len(), 1);
        assert_eq!(loaded.certified.cert[0].as_ref(), pair.cert.der().as_ref());
        assert_eq!(loaded.fingerprint, fingerprint(pair.cert.der()));
        assert_eq!(loaded.fingerprint.len(), 64);
    }

    #[test]
    fn the_whole_chain_is_kept_in_order() {
        let (leaf, other) = (generated(), generated());
        let chain = format!("{}{}", leaf.cert.pem(), other.cert.pem());
        let loaded = load_texts(&chain, &leaf.signing_key.serialize_pem()).expect("loads");
        assert_eq!(loaded.certified.cert.len(), 2);
        assert_eq!(loaded.certified.cert[0].as_ref(), leaf.cert.der().as_ref());
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let (a, b) = (generated(), generated());
        let error = load_texts(&a.cert.pem(), &b.signing_key.serialize_pem())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.starts_with("TLS_KEY="), "{error}");
        assert!(
            error.contains("does not belong to the certificate in TLS_CERT="),
            "{error}"
        );
    }

    #[test]
    fn missing_empty_and_swapped_files_are_named() {
        let pair = generated();
        let (cert, key) = (pair.cert.pem(), pair.signing_key.serialize_pem());
        let message =
            |r: Result<KeyPair, TlsError>| r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message(load_texts("", &key)).contains("holds no PEM certificate"));
        assert!(message(load_texts(&cert, "")).contains("holds no private key"));
        assert!(message(load_texts(&key, &cert)).contains("holds no PEM certificate"));
        let missing = load(
            Path::new("/nonexistent/c.pem"),
            Path::new("/k.pem"),
            &provider(),
        );
        assert!(message(missing).starts_with("cannot read TLS_CERT=/nonexistent/c.pem: "));
    }

    #[test]
    fn a_broken_key_is_refused_without_quoting_it() {
        let pair = generated();
        let key = pair.signing_key.serialize_pem();
        let broken = key.replace("-----END PRIVATE KEY-----", "");
        let error = load_texts(&pair.cert.pem(), &broken)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("not a usable private key"), "{error}");
        let body_line = key.lines().nth(1).unwrap_or("-");
        assert!(!error.contains(body_line), "{error}");
    }

    #[test]
    fn oversized_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = dir.path().join("big.pem");
        std::fs::write(&big, vec![b'a'; MAX_PEM_BYTES as usize + 1]).expect("write");
        let error = load(&big, &big, &provider()).err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("larger than")));
    }
}
