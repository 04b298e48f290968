//! The shared state of a fleet of gateways: one [`Store`] trait, two implementations.
//!
//! - [`memory::MemoryStore`]: in-process, the default; nothing to install, nothing shared.
//! - [`redis::RedisStore`]: a Redis server or Redis Cluster (`REDIS_URL`), shared by every
//!   gateway that names it.
//!
//! What lives here (issue 9): rate-limit state (GCRA), token revocations, IP blocks,
//! connection and session counts for caps, the session registry, and events that every
//! instance must hear (a session destroyed, a user revoked…). Keystrokes and terminal
//! output never touch the store.
//!
//! Every method is async and object-safe (boxed futures), so the gateway holds an
//! `Arc<dyn Store>` and network stores fit. Both implementations pass one conformance suite
//! (`tests/store.rs`), the Redis one against a real server and a real three-master cluster.

pub mod fleet;
pub mod memory;
pub mod redis;
mod redis_events;
pub mod revocations;

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::abuse::gcra::Quota;

/// The store failed (unreachable, timed out, or answered nonsense). What the caller does
/// then is decided per kind of state (docs/store.md): revocation and block checks fail
/// closed, for example.
#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(pub String);

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// A blocked address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRecord {
    /// The address (an IPv6 /64 as its first address), as text.
    pub address: String,
    /// When the block ends, milliseconds since the epoch.
    pub until_ms: u64,
    /// Why: `failed logins`, `violations` or `admin`.
    pub reason: String,
}

/// A session as the fleet knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    /// Public id (`s_…`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Backend id (`tmux-N`).
    pub backend: String,
    /// Creating user, when authentication was on.
    pub owner: Option<String>,
    /// Shares, encoded as in `@tmuxgate_shares`.
    pub shares: String,
    /// Creation time, ms since the epoch.
    pub created_at: u64,
    /// tmux's id for it on its backend (`$N`).
    #[serde(default)]
    pub tmux_id: String,
    /// Its integrated shell's nonce, when it runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<String>,
}

/// Something every gateway instance must hear.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum StoreEvent {
    /// A session was created (every instance lists it, from the store's record).
    SessionCreated {
        /// The session.
        session_id: String,
    },
    /// A session was destroyed (its viewers everywhere get `session-closed`).
    SessionDestroyed {
        /// The session.
        session_id: String,
    },
    /// A session's shares changed (every instance re-checks its viewers' access).
    SharesChanged {
        /// The session.
        session_id: String,
    },
    /// A user's tokens were revoked, or the user removed or changed.
    UserRevoked {
        /// The user.
        user: String,
    },
    /// A token was revoked (its id is in the store): every gateway rechecks its
    /// connections' tokens.
    TokensRevoked {},
    /// An address was blocked (its connections everywhere are dropped). The event carries
    /// the block as written to the store, so applying it costs no read.
    Blocked {
        /// The address.
        address: String,
        /// When the block ends, milliseconds since the epoch.
        until_ms: u64,
        /// Why.
        reason: String,
    },
    /// An administrator lifted a block.
    Unblocked {
        /// The address.
        address: String,
    },
    /// Never published: the event reader's notice that it may have missed events (the
    /// stream was trimmed past it, or Redis restarted without it); state is read afresh.
    Resync {},
    /// A backend's server died.
    BackendLost {
        /// The backend id.
        backend: String,
    },
}

/// An event as received, with the instance that published it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The publishing instance's id.
    pub from: String,
    /// The event.
    pub event: StoreEvent,
}

/// What `tmuxgate store check` reports.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreInfo {
    /// `memory`, `redis` or `redis-cluster`.
    pub kind: &'static str,
    /// The server's version (Redis), if any.
    pub version: Option<String>,
    /// One round trip (`PING`), in microseconds.
    pub latency_us: u64,
    /// Keys under the gateway's prefix, by kind.
    pub keys: Vec<(String, u64)>,
}

/// The fleet's shared state. See the module documentation.
pub trait Store: Send + Sync + 'static {
    /// `memory`, `redis` or `redis-cluster`.
    fn kind(&self) -> &'static str;

    /// Call latencies and failures (`/metrics`), for a store with calls worth timing.
    fn metrics(&self) -> Option<&StoreMetrics> {
        None
    }

    /// Whether other gateways share this store (Redis): only then is there a fleet to tell.
    fn is_shared(&self) -> bool {
        true
    }

    /// This instance's id (unique per process).
    fn instance(&self) -> &str;

    /// Takes `cost` from the GCRA bucket `key` with `quota`, atomically across the fleet,
    /// on the store's clock. `Ok(Err(wait))`: refused, nothing taken, retry after `wait`.
    fn take<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
        cost: u64,
    ) -> BoxFuture<'a, StoreResult<Result<(), Duration>>>;

    /// Records that token `jti` is revoked until `expires_ms` (ms since the epoch).
    fn revoke<'a>(&'a self, jti: &'a str, expires_ms: u64) -> BoxFuture<'a, StoreResult<()>>;

    /// Whether `jti` is revoked (and its token not yet expired) at `now_ms`.
    fn is_revoked<'a>(&'a self, jti: &'a str, now_ms: u64) -> BoxFuture<'a, StoreResult<bool>>;

    /// Blocks `block.address` until `block.until_ms`, replacing an earlier block.
    fn block<'a>(&'a self, block: &'a BlockRecord) -> BoxFuture<'a, StoreResult<()>>;

    /// Lifts a block; whether there was one (in force at `now_ms`).
    fn unblock<'a>(&'a self, address: &'a str, now_ms: u64) -> BoxFuture<'a, StoreResult<bool>>;

    /// Blocks in force at `now_ms`.
    fn blocks(&self, now_ms: u64) -> BoxFuture<'_, StoreResult<Vec<BlockRecord>>>;

    /// Adds one to the count `key` of `scope` (e.g. connections of an address) if the
    /// fleet-wide total is below `max`; whether it was added. Counts of an instance that
    /// stopped refreshing itself ([`Store::heartbeat`]) no longer count.
    fn count_add<'a>(
        &'a self,
        scope: &'a str,
        key: &'a str,
        max: u32,
    ) -> BoxFuture<'a, StoreResult<bool>>;

    /// Replaces all of this instance's counts with `counts` (scope, key, count): what it
    /// counted is corrected from what it knows is open (a removal that failed, an addition
    /// that timed out but landed, counts a Redis restart lost).
    fn count_reset<'a>(
        &'a self,
        counts: &'a [(&'static str, String, u32)],
    ) -> BoxFuture<'a, StoreResult<()>>;

    /// Takes one away from this instance's count `key` of `scope`.
    fn count_remove<'a>(&'a self, scope: &'a str, key: &'a str) -> BoxFuture<'a, StoreResult<()>>;

    /// The fleet-wide count `key` of `scope`.
    fn count<'a>(&'a self, scope: &'a str, key: &'a str) -> BoxFuture<'a, StoreResult<u64>>;

    /// Tells the fleet this instance is alive for `ttl` more; its counts expire after.
    fn heartbeat(&self, ttl: Duration) -> BoxFuture<'_, StoreResult<()>>;

    /// Adds or replaces a session.
    fn put_session<'a>(&'a self, session: &'a SessionRecord) -> BoxFuture<'a, StoreResult<()>>;

    /// Removes a session; whether it was there.
    fn remove_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, StoreResult<bool>>;

    /// Sets (`Some(mode)`) or removes (`None`) one user's share of a session, atomically:
    /// changes of other users' shares made meanwhile by other gateways are kept. `false`
    /// (nothing changed): the session has no record.
    fn edit_share<'a>(
        &'a self,
        id: &'a str,
        user: &'a str,
        mode: Option<&'a str>,
    ) -> BoxFuture<'a, StoreResult<bool>>;

    /// One session.
    fn session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, StoreResult<Option<SessionRecord>>>;

    /// Every session.
    fn sessions(&self) -> BoxFuture<'_, StoreResult<Vec<SessionRecord>>>;

    /// Tells every instance (this one included) about `event`.
    fn publish<'a>(&'a self, event: &'a StoreEvent) -> BoxFuture<'a, StoreResult<()>>;

    /// Events published once this has returned, by any instance, in order. The stream
    /// survives store outages: events published while this instance could not read are
    /// delivered when it can again (Redis: as long as the stream still holds them).
    fn subscribe(&self) -> BoxFuture<'_, StoreResult<tokio::sync::mpsc::Receiver<Received>>>;

    /// Connectivity, version, latency and key counts.
    fn check(&self) -> BoxFuture<'_, StoreResult<StoreInfo>>;

    /// One round trip.
    fn ping(&self) -> BoxFuture<'_, StoreResult<()>>;
}

/// Every call to the store: its time, and whether it failed.
pub struct StoreMetrics {
    calls: crate::metrics::Latency,
    errors: std::sync::atomic::AtomicU64,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        StoreMetrics {
            calls: crate::metrics::Latency::new(),
            errors: Default::default(),
        }
    }
}

impl StoreMetrics {
    /// Counts one call.
    pub fn record(&self, elapsed: Duration, ok: bool) {
        self.calls.record(elapsed);
        if !ok {
            self.errors
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The store's lines of `/metrics`: whether it is up, the last ping, failed pings, and (for
/// Redis) every call's time and the calls that failed.
pub fn render_prometheus(store: &dyn Store, health: &StoreHealth, out: &mut String) {
    use std::fmt::Write as _;
    use std::sync::atomic::Ordering::Relaxed;
    let kind = store.kind();
    let mut line = |name: &str, help: &str, kind_of: &str, value: String| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind_of}\n{name}{{store=\"{kind}\"}} {value}"
        );
    };
    line(
        "tmuxgate_store_up",
        "Whether the shared store answered its last ping.",
        "gauge",
        u8::from(!health.is_down()).to_string(),
    );
    line(
        "tmuxgate_store_ping_seconds",
        "The last ping's round trip.",
        "gauge",
        (health.latency_us.load(Relaxed) as f64 / 1e6).to_string(),
    );
    line(
        "tmuxgate_store_ping_failures_total",
        "Pings of the shared store that failed.",
        "counter",
        health.failures.load(Relaxed).to_string(),
    );
    let Some(metrics) = store.metrics() else {
        return;
    };
    line(
        "tmuxgate_store_errors_total",
        "Calls to the shared store that failed or timed out.",
        "counter",
        metrics.errors.load(Relaxed).to_string(),
    );
    let name = "tmuxgate_store_call_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time of calls to the shared store.\n# TYPE {name} histogram"
    );
    metrics
        .calls
        .render(out, name, &format!("store=\"{kind}\""));
}

/// The store as `/health` shows it, kept current by [`watch`].
#[derive(Debug, Default)]
pub struct StoreHealth {
    down: std::sync::atomic::AtomicBool,
    latency_us: std::sync::atomic::AtomicU64,
    failures: std::sync::atomic::AtomicU64,
}

/// `/health`'s view of the store.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreStatus {
    /// `memory`, `redis` or `redis-cluster`.
    pub kind: &'static str,
    /// `up` or `down` (the last ping failed).
    pub state: &'static str,
    /// The last ping's round trip, in µs.
    pub latency_us: u64,
    /// Pings that failed since start.
    pub failures: u64,
}

impl StoreHealth {
    /// Whether the last ping failed.
    pub fn is_down(&self) -> bool {
        self.down.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// For `/health`.
    pub fn status(&self, kind: &'static str) -> StoreStatus {
        use std::sync::atomic::Ordering::Relaxed;
        StoreStatus {
            kind,
            state: if self.is_down() { "down" } else { "up" },
            latency_us: self.latency_us.load(Relaxed),
            failures: self.failures.load(Relaxed),
        }
    }
}

/// Pings the store and renews this instance's heartbeat every `interval` until `cancel`;
/// logs when it goes down and comes back.
pub async fn watch(
    store: std::sync::Arc<dyn Store>,
    health: std::sync::Arc<StoreHealth>,
    interval: Duration,
    cancel: tokio_util::sync::CancellationToken,
) {
    use std::sync::atomic::Ordering::Relaxed;
    loop {
        let started = std::time::Instant::now();
        let result = match store.ping().await {
            Ok(()) => store.heartbeat(interval * 3).await,
            Err(e) => Err(e),
        };
        let was_down = health.is_down();
        match result {
            Ok(()) => {
                let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                health.latency_us.store(us, Relaxed);
                health.down.store(false, Relaxed);
                if was_down {
                    tracing::warn!(store = store.kind(), "the shared store is back");
                }
            }
            Err(e) => {
                health.failures.fetch_add(1, Relaxed);
                health.down.store(true, Relaxed);
                if !was_down {
                    tracing::error!(store = store.kind(), error = %e, "the shared store is down");
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = cancel.cancelled() => return,
        }
    }
}

/// The Redis store's settings from `REDIS_URL` (or `REDIS_HOST`/`REDIS_PORT`/`REDIS_TLS`),
/// `REDIS_USERNAME`, `REDIS_PASSWORD`, `REDIS_CLUSTER` and `REDIS_PREFIX`; `None` for the
/// embedded store.
pub fn redis_settings(config: &crate::config::Config) -> Option<redis::RedisSettings> {
    let urls: Vec<String> = match (&config.redis_url, &config.redis_host) {
        (Some(url), _) => url
            .expose()
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect(),
        (None, Some(host)) => {
            let scheme = if config.redis_tls { "rediss" } else { "redis" };
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            };
            vec![format!("{scheme}://{host}:{}", config.redis_port)]
        }
        (None, None) => return None,
    };
    Some(redis::RedisSettings {
        urls,
        username: config.redis_username.clone(),
        password: config.redis_password.clone(),
        cluster: config.redis_cluster,
        prefix: config.redis_prefix.clone(),
        tls: redis::RedisTls {
            ca: config.redis_tls_ca.clone(),
            client: config
                .redis_tls_cert
                .clone()
                .zip(config.redis_tls_key.clone()),
        },
    })
}

/// Opens the store the configuration names: Redis when `REDIS_URL` or `REDIS_HOST` is set
/// (failing if it does not answer), the embedded store otherwise.
pub async fn open(config: &crate::config::Config) -> StoreResult<std::sync::Arc<dyn Store>> {
    Ok(match redis_settings(config) {
        Some(settings) => std::sync::Arc::new(redis::RedisStore::connect(settings).await?),
        None => std::sync::Arc::new(memory::MemoryStore::new()),
    })
}

/// A fresh instance id: 64 random bits, hex.
pub fn new_instance_id() -> String {
    let bytes: [u8; 8] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Milliseconds since the epoch on this machine's clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
