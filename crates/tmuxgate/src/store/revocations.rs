//! Token revocations kept in the shared store, so that a token revoked through one gateway
//! is refused by every other (`security::Revocations` over [`Store`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::{Store, now_ms};
use crate::security::{RevocationError, Revocations};

/// See the module documentation. A store failure refuses the token (never fails open).
pub struct StoreRevocations {
    store: Arc<dyn Store>,
    /// Kept this long past the token's expiry, as tokens are accepted that long after it.
    leeway: Duration,
}

impl StoreRevocations {
    /// Revocations in `store`, kept `leeway` past each token's expiry.
    pub fn new(store: Arc<dyn Store>, leeway: Duration) -> StoreRevocations {
        StoreRevocations { store, leeway }
    }
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Revocations for StoreRevocations {
    fn revoke<'a>(
        &'a self,
        jti: &'a str,
        expires_at: SystemTime,
    ) -> BoxFuture<'a, Result<(), RevocationError>> {
        async move {
            let keep_until = millis(expires_at + self.leeway);
            self.store
                .revoke(jti, keep_until)
                .await
                .map_err(|e| RevocationError(e.to_string()))
        }
        .boxed()
    }

    fn is_revoked<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<bool, RevocationError>> {
        async move {
            self.store
                .is_revoked(jti, now_ms())
                .await
                .map_err(|e| RevocationError(e.to_string()))
        }
        .boxed()
    }
}
