//! Built-in TLS for the main listener (`ENABLE_SSL`): rustls with the aws-lc-rs provider,
//! TLS 1.2 and 1.3 with rustls' default cipher suites, ALPN `http/1.1` only (WebSocket
//! upgrades are HTTP/1.1), and a certificate that can be replaced while the server runs.
//!
//! [`Tls`] owns the acceptor configuration and the [`CertResolver`] every handshake asks for
//! its certificate. [`Tls::reload`] reads the files again; when they hold a valid pair it
//! becomes the certificate of new handshakes, otherwise the old one stays and the error is
//! logged and counted. Triggers: SIGHUP (`cli.rs`), [`crate::ServerHandle::reload_tls`],
//! and `reload::watch`, which polls the files. [`TlsListener`] does the handshakes.

mod keypair;
mod listener;
pub(crate) mod reload;
mod resolver;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

pub use keypair::{KeyPair, MAX_PEM_BYTES, fingerprint};
pub use listener::{HANDSHAKE_TIMEOUT, TlsListener};
pub use resolver::CertResolver;

use crate::config::Config;
use reload::Stamps;

/// The only application protocol offered: HTTP/1.1, which carries the WebSocket upgrade.
pub const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// Why a certificate and key could not be loaded. The gateway refuses to start with one;
/// a reload that hits one keeps the previous certificate.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read {variable}={}: {source}", path.display())]
    Read {
        /// `TLS_CERT` or `TLS_KEY`.
        variable: &'static str,
        /// The configured path.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Larger than [`MAX_PEM_BYTES`].
    #[error("{variable}={} is larger than {MAX_PEM_BYTES} bytes: not a PEM file", path.display())]
    TooLarge {
        /// `TLS_CERT` or `TLS_KEY`.
        variable: &'static str,
        /// The configured path.
        path: PathBuf,
    },
    /// No `CERTIFICATE` section.
    #[error("TLS_CERT={} holds no PEM certificate", path.display())]
    NoCertificate {
        /// The configured path.
        path: PathBuf,
    },
    /// Malformed PEM, or a server certificate rustls cannot parse.
    #[error("TLS_CERT={}: {reason}", path.display())]
    BadCertificate {
        /// The configured path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// No `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` section.
    #[error("TLS_KEY={} holds no private key (PEM: PKCS#8, PKCS#1 or SEC1)", path.display())]
    NoKey {
        /// The configured path.
        path: PathBuf,
    },
    /// Malformed, or of a type the provider cannot sign with.
    #[error(
        "TLS_KEY={} is not a usable private key (PEM: PKCS#8, PKCS#1 or SEC1; RSA, ECDSA \
         P-256/P-384 or Ed25519)",
        path.display()
    )]
    UnsupportedKey {
        /// The configured path.
        path: PathBuf,
    },
    /// The key's public half is not the certificate's.
    #[error(
        "TLS_KEY={} does not belong to the certificate in TLS_CERT={}",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// `TLS_CERT`.
        cert: PathBuf,
        /// `TLS_KEY`.
        key: PathBuf,
    },
    /// The provider refused the protocol versions (cannot happen with aws-lc-rs).
    #[error("TLS configuration refused: {0}")]
    Config(rustls::Error),
    /// The reload task died (a panic or the runtime shutting down).
    #[error("the certificate reload was interrupted")]
    Interrupted,
    /// A reload was asked of a gateway that serves no TLS.
    #[error("TLS is off (ENABLE_SSL=false)")]
    Disabled,
}

/// What a running gateway's TLS looks like now; see [`Tls::status`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsStatus {
    /// [`fingerprint`] of the server certificate new handshakes get.
    pub fingerprint: String,
    /// Reloads that installed a certificate (the one loaded at start not counted).
    pub reloads: u64,
    /// Reloads that failed and kept the previous certificate.
    pub failures: u64,
    /// Why the latest reload failed; `None` after a success.
    pub last_error: Option<String>,
}

/// Counters shared with [`crate::metrics::Stats`].
#[derive(Clone, Debug, Default)]
pub struct TlsCounters {
    /// Reloads that installed a certificate.
    pub reloads: Arc<AtomicU64>,
    /// Reloads that failed.
    pub reload_failures: Arc<AtomicU64>,
    /// Handshakes that failed or timed out.
    pub handshake_failures: Arc<AtomicU64>,
}

/// The main listener's TLS: configuration, current certificate, reload state.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    resolver: Arc<CertResolver>,
    acceptor: TlsAcceptor,
    status: watch::Sender<TlsStatus>,
    counters: TlsCounters,
    /// The files' stamps when last read, so the watcher reloads only what changed since.
    loaded: Mutex<Stamps>,
    /// One reload at a time: a SIGHUP during a poll-triggered reload must not race it.
    reloading: tokio::sync::Mutex<()>,
}

impl Tls {
    /// Loads `cert` and `key` (refusing a mismatched pair) and builds the acceptor.
    pub fn load(cert: &Path, key: &Path, counters: TlsCounters) -> Result<Tls, TlsError> {
        let provider = Arc::new(crypto_provider());
        let stamps = reload::stamps(cert, key);
        let pair = keypair::load(cert, key, &provider)?;
        let resolver = Arc::new(CertResolver::new(pair.certified));
        let config = server_config(provider.clone(), resolver.clone())?;
        let status = TlsStatus {
            fingerprint: pair.fingerprint,
            ..TlsStatus::default()
        };
        Ok(Tls {
            cert: cert.into(),
            key: key.into(),
            provider,
            resolver,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            status: watch::Sender::new(status),
            counters,
            loaded: Mutex::new(stamps),
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    /// [`load`](Self::load)s `TLS_CERT` and `TLS_KEY` when `ENABLE_SSL` is on. A path left
    /// unset (which [`Config::validate`] refuses) fails as unreadable: never clear text
    /// instead.
    pub fn from_config(config: &Config, counters: TlsCounters) -> Result<Option<Tls>, TlsError> {
        if !config.enable_ssl {
            return Ok(None);
        }
        let path = |given: &Option<PathBuf>| given.clone().unwrap_or_default();
        Tls::load(&path(&config.tls_cert), &path(&config.tls_key), counters).map(Some)
    }

    /// The acceptor for the main listener.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// Counters the listener adds handshake failures to.
    pub fn counters(&self) -> &TlsCounters {
        &self.counters
    }

    /// The status now, and a way to wait for the next reload (`changed()`).
    pub fn status(&self) -> watch::Receiver<TlsStatus> {
        self.status.subscribe()
    }

    /// Reads the files again. On success new handshakes get the new certificate (open
    /// connections keep theirs); on failure the previous one stays. Either way the outcome
    /// is logged, counted and published in [`status`](Self::status). Returns the new
    /// certificate's fingerprint.
    pub async fn reload(&self) -> Result<String, TlsError> {
        let _one_at_a_time = self.reloading.lock().await;
        let (cert, key, provider) = (self.cert.clone(), self.key.clone(), self.provider.clone());
        let read = tokio::task::spawn_blocking(move || {
            let stamps = reload::stamps(&cert, &key);
            (stamps, keypair::load(&cert, &key, &provider))
        });
        let (stamps, loaded) = read.await.map_err(|_| TlsError::Interrupted)?;
        *self.loaded.lock().unwrap_or_else(PoisonError::into_inner) = stamps;
        match loaded {
            Ok(pair) => Ok(self.install(pair)),
            Err(error) => {
                self.counters
                    .reload_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(%error, "TLS certificate reload failed; still serving the previous certificate");
                self.status.send_modify(|s| {
                    s.failures += 1;
                    s.last_error = Some(error.to_string());
                });
                Err(error)
            }
        }
    }

    fn install(&self, pair: KeyPair) -> String {
        self.resolver.replace(pair.certified);
        self.counters.reloads.fetch_add(1, Ordering::Relaxed);
        let previous = self.status.borrow().fingerprint.clone();
        tracing::info!(
            fingerprint = %pair.fingerprint,
            %previous,
            "TLS certificate reloaded; new connections get it"
        );
        self.status.send_modify(|s| {
            s.reloads += 1;
            s.fingerprint = pair.fingerprint.clone();
            s.last_error = None;
        });
        pair.fingerprint
    }

    /// The files' stamps when they were last read.
    fn loaded_stamps(&self) -> Stamps {
        *self.loaded.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The certificate and key paths.
    fn paths(&self) -> (PathBuf, PathBuf) {
        (self.cert.clone(), self.key.clone())
    }
}

/// aws-lc-rs, the one crypto library of the gateway (tokens use it too); unlike *ring*
/// it offers the post-quantum hybrid key exchange X25519MLKEM768 by default.
fn crypto_provider() -> CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

/// TLS 1.3 and 1.2 with the provider's (safe, default) cipher suites, no client
/// certificates, the certificate from `resolver`, ALPN `http/1.1` only.
fn server_config(
    provider: Arc<CryptoProvider>,
    resolver: Arc<CertResolver>,
) -> Result<ServerConfig, TlsError> {
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(TlsError::Config)?;
    let mut config = builder.with_no_client_auth().with_cert_resolver(resolver);
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use rustls::NamedGroup;

    use super::*;

    #[test]
    fn the_provider_is_aws_lc_rs_with_post_quantum_key_exchange() {
        let groups: Vec<NamedGroup> = crypto_provider()
            .kx_groups
            .iter()
            .map(|group| group.name())
            .collect();
        assert!(groups.contains(&NamedGroup::X25519MLKEM768), "{groups:?}");
    }

    #[test]
    fn fingerprints_are_sha256_in_hex() {
        assert_eq!(
            fingerprint(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
