//! Limits and caps across a fleet: the same quotas and caps as this gateway's own, held in
//! the shared store, so that the sum over all gateways stays within one.
//!
//! Each is consulted after the local check passed, so a client over its limit here costs no
//! round trip. The store is never waited for while `/health` says it is down, and at most
//! [`SHARED_LIMIT_DEADLINE`] otherwise; a store that fails or is slow leaves the decision to
//! the local check (limits and caps fail open to the local quota, docs/store.md).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::gcra::Quota;
use super::keyed::KeyedLimiter;
use super::{Abuse, ClientKey, Limited};
use crate::store::{Store, StoreHealth};

/// How often a gateway rewrites its connection counts in the store.
pub const COUNTS_REFRESH: Duration = Duration::from_secs(30);

/// Longest a check waits for the shared store before the local decision stands.
const SHARED_LIMIT_DEADLINE: Duration = Duration::from_millis(100);

/// The store a fleet shares, and whether it is up.
pub struct Shared {
    store: Arc<dyn Store>,
    health: Arc<StoreHealth>,
}

/// What a connection was counted under (and so must be uncounted from when it ends).
#[derive(Clone, Copy, Debug, Default)]
pub struct Counted {
    /// Under the fleet's `MAX_CONNECTIONS_PER_IP`.
    pub client: bool,
    /// Under the fleet's `MAX_CONNECTIONS_PER_USER`.
    pub user: bool,
    /// Under this gateway's `MAX_CONNECTIONS_PER_USER`.
    pub user_here: bool,
}

/// A shared cap's verdict.
pub enum Cap {
    /// Counted in the store.
    Counted,
    /// At the fleet's cap.
    Full,
    /// Not counted: no fleet, no cap, or the store did not answer (fail open).
    Skipped,
}

impl Abuse {
    /// Shares this gateway's limits and caps through `store` (a fleet's; the embedded store
    /// shares nothing and is not given here).
    pub fn share(&mut self, store: Arc<dyn Store>, health: Arc<StoreHealth>) {
        if store.is_shared() {
            self.shared = Some(Shared { store, health });
        }
    }

    fn shared_store(&self) -> Option<&dyn Store> {
        self.shared
            .as_ref()
            .filter(|s| !s.health.is_down())
            .map(|s| &*s.store)
    }

    /// The request limit across the fleet, after [`Abuse::check_request`] passed.
    pub async fn check_request_shared(
        &self,
        user: Option<(&str, &str)>,
        client: IpAddr,
    ) -> Result<(), Duration> {
        let (key, quota) = match user {
            Some((user, role)) => {
                let limiter = self.requests_by_role.get(role);
                let quota = limiter.map_or(self.requests_by_user.quota(), KeyedLimiter::quota);
                (format!("req:u:{user}"), quota)
            }
            None if self.is_allowlisted(client) => return Ok(()),
            None => (
                format!("req:ip:{}", ClientKey::of(client).ip()),
                self.requests_by_client.quota(),
            ),
        };
        self.take_shared(&key, quota, client, Limited::Request)
            .await
    }

    /// The upgrade (`Connect`) or login (`Login`) limit across the fleet, after the local
    /// one passed.
    pub async fn check_client_shared(&self, client: IpAddr, what: Limited) -> Result<(), Duration> {
        let (limiter, scope) = match what {
            Limited::Connect => (self.connects.as_ref(), "conn"),
            Limited::Login => (self.logins.as_ref(), "login"),
            Limited::Request | Limited::Input => return Ok(()),
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        if self.is_allowlisted(client) {
            return Ok(());
        }
        let key = format!("{scope}:ip:{}", ClientKey::of(client).ip());
        self.take_shared(&key, limiter.quota(), client, what).await
    }

    async fn take_shared(
        &self,
        key: &str,
        quota: Quota,
        client: IpAddr,
        what: Limited,
    ) -> Result<(), Duration> {
        let Some(store) = self.shared_store() else {
            return Ok(());
        };
        match tokio::time::timeout(SHARED_LIMIT_DEADLINE, store.take(key, quota, 1)).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(wait))) => {
                self.refused(client, what, wait);
                Err(wait)
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "shared rate limit unavailable; local limit only");
                Ok(())
            }
            Err(_) => {
                tracing::debug!("shared rate limit too slow; local limit only");
                Ok(())
            }
        }
    }

    /// Counts a connection of `client` under the fleet's `MAX_CONNECTIONS_PER_IP`, after
    /// [`Abuse::connection_opened`] admitted it here.
    pub async fn client_cap_shared(&self, client: IpAddr) -> Cap {
        if self.is_allowlisted(client) {
            return Cap::Skipped;
        }
        let key = ClientKey::of(client).ip().to_string();
        self.count_shared("ip", &key, self.per_client.max()).await
    }

    /// Counts a connection of `user` under the fleet's `MAX_CONNECTIONS_PER_USER`, after
    /// [`Abuse::user_joined`] admitted it here.
    pub async fn user_cap_shared(&self, user: &str) -> Cap {
        self.count_shared("user", user, self.per_user.max()).await
    }

    async fn count_shared(&self, scope: &str, key: &str, max: u32) -> Cap {
        let Some(store) = self.shared_store().filter(|_| max > 0) else {
            return Cap::Skipped;
        };
        let added = tokio::time::timeout(SHARED_LIMIT_DEADLINE, store.count_add(scope, key, max));
        match added.await {
            Ok(Ok(true)) => Cap::Counted,
            Ok(Ok(false)) => Cap::Full,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "shared cap unavailable; local cap only");
                Cap::Skipped
            }
            Err(_) => {
                // It may still land: the instance's count then stays one high until this
                // gateway stops (its counts expire with its heartbeat).
                tracing::debug!("shared cap too slow; local cap only");
                Cap::Skipped
            }
        }
    }

    /// Rewrites this gateway's counts in the store from the connections it knows are open:
    /// a removal that failed, an addition that timed out but landed, or counts a Redis
    /// restart lost are corrected. Run every [`COUNTS_REFRESH`].
    pub async fn refresh_shared_counts(&self) {
        let Some(store) = self.shared_store() else {
            return;
        };
        let mut counts: Vec<(&'static str, String, u32)> = Vec::new();
        if self.per_client.max() > 0 {
            let open = self.per_client.snapshot().into_iter();
            counts.extend(open.map(|(key, n)| ("ip", key.ip().to_string(), n)));
        }
        if self.per_user.max() > 0 {
            counts.extend(
                self.per_user
                    .snapshot()
                    .into_iter()
                    .map(|(key, n)| ("user", key, n)),
            );
        }
        if let Err(e) = store.count_reset(&counts).await {
            tracing::warn!(error = %e, "could not refresh the fleet's connection counts");
        }
    }

    /// Uncounts what [`Abuse::client_cap_shared`] and [`Abuse::user_cap_shared`] counted,
    /// off the caller's path.
    pub fn uncount_shared(&self, counted: Counted, client: IpAddr, user: Option<&str>) {
        let Some(shared) = &self.shared else {
            return;
        };
        let mut keys = Vec::new();
        if counted.client {
            keys.push(("ip", ClientKey::of(client).ip().to_string()));
        }
        if let (true, Some(user)) = (counted.user, user) {
            keys.push(("user", user.to_owned()));
        }
        if keys.is_empty() {
            return;
        }
        let store = shared.store.clone();
        tokio::spawn(async move {
            for (scope, key) in keys {
                if let Err(e) = store.count_remove(scope, &key).await {
                    tracing::warn!(error = %e, scope, "could not uncount a shared cap");
                }
            }
        });
    }
}
