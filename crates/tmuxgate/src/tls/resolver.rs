//! [`CertResolver`]: the certificate every handshake gets, swappable while the server runs.
//! A reload replaces it; handshakes already past certificate selection, and the connections
//! they made, keep the key they got.

use std::sync::{Arc, PoisonError, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// One certificate for every server name (the gateway has one identity), replaceable.
#[derive(Debug)]
pub struct CertResolver {
    /// Read once per handshake (an `Arc` clone under a read lock), written once per reload.
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertResolver {
    /// A resolver that serves `key` until [`replace`](Self::replace)d.
    pub fn new(key: Arc<CertifiedKey>) -> CertResolver {
        CertResolver {
            current: RwLock::new(key),
        }
    }

    /// New handshakes get `key` from now on.
    pub fn replace(&self, key: Arc<CertifiedKey>) {
        // A panic elsewhere while holding the lock cannot leave the `Arc` half-written.
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = key;
    }

    /// The certificate served now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}
