//! The shared store on Redis (a single server, or Redis Cluster).
//!
//! Keys start with the prefix (`REDIS_PREFIX`, default `tmuxgate`). Everything that one
//! command or script touches together carries the hash tag `{PREFIX}`, so it lives in one
//! cluster slot; only rate-limit buckets (one key per script call) are spread over slots:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `PREFIX:rl:{KEY}` | string | a GCRA bucket's TAT (µs, Redis clock), expiring when idle |
//! | `{PREFIX}:revoked` | sorted set | token id → expiry (ms) |
//! | `{PREFIX}:blocks`, `{PREFIX}:block-info` | sorted set, hash | address → end (ms), → JSON |
//! | `{PREFIX}:instances` | sorted set | instance → heartbeat expiry (ms, Redis clock) |
//! | `{PREFIX}:counts:INSTANCE` | hash | `scope␀key` → that instance's count, expiring with it |
//! | `{PREFIX}:sessions` | hash | session id → JSON |
//! | `{PREFIX}:shares:ID` | hash | that session's shares, user → mode (`redis/sessions.rs`) |
//! | `{PREFIX}:events` | stream | events, capped at about [`EVENT_STREAM_LEN`] |
//!
//! Rate limits and counts are Lua scripts: atomic, on the server's clock (`TIME`), and
//! cluster-safe (their keys share a slot). Events travel on a stream rather than pub/sub,
//! so an instance that loses Redis for a while reads what it missed when it is back.

use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use redis::AsyncCommands;
use redis::aio::ConnectionLike;
use tokio::sync::mpsc;

use super::{
    BlockRecord, Received, SessionRecord, Store, StoreError, StoreEvent, StoreInfo, StoreMetrics,
    StoreResult, new_instance_id,
};
use crate::abuse::gcra::Quota;

/// Deadline of every store call.
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Events the stream keeps (approximately: `MAXLEN ~`).
pub const EVENT_STREAM_LEN: u64 = 10_000;
/// How long one blocking read of the event stream waits.
pub(super) const EVENT_BLOCK_MS: usize = 1_000;
/// Heartbeat lifetime assumed when an instance counts before its first heartbeat.
const DEFAULT_INSTANCE_TTL_MS: u64 = 30_000;

/// GCRA on the server's clock, in microseconds. KEYS[1] bucket; ARGV interval, tolerance,
/// cost. Returns -1 when taken, else the wait in µs. Mirrors `abuse::gcra::Quota::take`.
const GCRA: &str = include_str!("lua/gcra.lua");

/// Adds one to this instance's count if the live instances' total is below the cap.
/// KEYS[1] instances, KEYS[2] this instance's counts; ARGV field, max, instance, counts
/// key prefix (`{PREFIX}:counts:`), default ttl ms. Returns 1 if added.
const COUNT_ADD: &str = include_str!("lua/count_add.lua");

/// The live instances' total of one count. KEYS[1] instances; ARGV field, counts prefix.
const COUNT: &str = include_str!("lua/count.lua");

/// Takes one from this instance's count, deleting it at zero. KEYS[1] counts; ARGV field.
const COUNT_REMOVE: &str = include_str!("lua/count_remove.lua");

/// Refreshes this instance's heartbeat and its counts' expiry. KEYS[1] instances, KEYS[2]
/// counts; ARGV instance, ttl ms.
const HEARTBEAT: &str = include_str!("lua/heartbeat.lua");

/// Expired members of a sorted set (and their hash fields) removed on the server's clock.
const PRUNE: &str = include_str!("lua/prune.lua");

/// One user's share of a session; KEYS sessions hash, the session's shares hash.
const EDIT_SHARE: &str = include_str!("lua/edit_share.lua");

mod sessions;

/// A connection to one server or to a cluster; both reconnect by themselves.
#[derive(Clone)]
pub(super) enum Conn {
    Single(redis::aio::ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Where the store is. Its `Debug` shows no URL (they may hold passwords).
#[derive(Clone)]
pub struct RedisSettings {
    /// `redis://` or `rediss://` URLs (with user and password if needed); several, or one
    /// with `cluster`, for Redis Cluster (seed nodes).
    pub urls: Vec<String>,
    /// ACL user, overriding the URLs'.
    pub username: Option<String>,
    /// Password, overriding the URLs'.
    pub password: Option<crate::config::Secret>,
    /// Redis Cluster.
    pub cluster: bool,
    /// Key prefix.
    pub prefix: String,
    /// Certificate files for `rediss://` (the system's authorities when none is given).
    pub tls: RedisTls,
}

/// `REDIS_TLS_CA`, `REDIS_TLS_CERT` and `REDIS_TLS_KEY`: read when connecting.
#[derive(Clone, Debug, Default)]
pub struct RedisTls {
    /// Authorities to check the server's certificate against, instead of the system's.
    pub ca: Option<std::path::PathBuf>,
    /// Client certificate and key (mutual TLS).
    pub client: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl RedisTls {
    /// The certificates for the client, or `None` to use the system's authorities and no
    /// client certificate. A file that cannot be read is an error naming the file (never
    /// its contents).
    fn certificates(&self) -> StoreResult<Option<redis::TlsCertificates>> {
        if self.ca.is_none() && self.client.is_none() {
            return Ok(None);
        }
        let read = |path: &std::path::Path, what: &str| {
            std::fs::read(path)
                .map_err(|e| StoreError(format!("cannot read {what} {}: {e}", path.display())))
        };
        let root_cert = match &self.ca {
            Some(path) => Some(read(path, "REDIS_TLS_CA")?),
            None => None,
        };
        let client_tls = match &self.client {
            Some((cert, key)) => Some(redis::ClientTlsConfig {
                client_cert: read(cert, "REDIS_TLS_CERT")?,
                client_key: read(key, "REDIS_TLS_KEY")?,
            }),
            None => None,
        };
        Ok(Some(redis::TlsCertificates {
            client_tls,
            root_cert,
        }))
    }
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("urls", &format_args!("[{} redacted]", self.urls.len()))
            .field("username", &self.username)
            .field("cluster", &self.cluster)
            .field("prefix", &self.prefix)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// See the module documentation.
pub struct RedisStore {
    instance: String,
    settings: RedisSettings,
    conn: Conn,
    keys: Keys,
    gcra: redis::Script,
    count_add: redis::Script,
    count: redis::Script,
    count_remove: redis::Script,
    heartbeat: redis::Script,
    prune: redis::Script,
    edit_share: redis::Script,
    metrics: StoreMetrics,
}

/// Key names.
struct Keys {
    prefix: String,
    revoked: String,
    blocks: String,
    block_info: String,
    instances: String,
    counts: String,
    sessions: String,
    shares: String,
    events: String,
}

impl Keys {
    fn new(prefix: &str) -> Keys {
        let tag = format!("{{{prefix}}}");
        Keys {
            prefix: prefix.to_owned(),
            revoked: format!("{tag}:revoked"),
            blocks: format!("{tag}:blocks"),
            block_info: format!("{tag}:block-info"),
            instances: format!("{tag}:instances"),
            counts: format!("{tag}:counts:"),
            sessions: format!("{tag}:sessions"),
            shares: format!("{tag}:shares:"),
            events: format!("{tag}:events"),
        }
    }

    fn bucket(&self, key: &str) -> String {
        format!("{}:rl:{{{key}}}", self.prefix)
    }
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// The URLs with the username and password overrides applied.
fn connection_infos(settings: &RedisSettings) -> StoreResult<Vec<redis::ConnectionInfo>> {
    settings
        .urls
        .iter()
        .map(|url| {
            // The URL is not echoed: it may hold a password.
            let info = redis::IntoConnectionInfo::into_connection_info(url.as_str())
                .map_err(|_| StoreError("REDIS_URL is not a valid Redis URL".into()))?;
            let mut redis = info.redis_settings().clone();
            if let Some(user) = &settings.username {
                redis = redis.set_username(user);
            }
            if let Some(password) = &settings.password {
                redis = redis.set_password(password.expose());
            }
            Ok(info.set_redis_settings(redis))
        })
        .collect()
}

pub(super) async fn connect(settings: &RedisSettings) -> StoreResult<Conn> {
    let infos = connection_infos(settings)?;
    let certificates = settings.tls.certificates()?;
    if settings.cluster || infos.len() > 1 {
        let mut builder = redis::cluster::ClusterClient::builder(infos)
            .connection_timeout(CALL_TIMEOUT)
            .response_timeout(CALL_TIMEOUT);
        if let Some(certificates) = certificates {
            builder = builder.certs(certificates);
        }
        let client = builder.build().map_err(err)?;
        let conn = client.get_async_connection().await.map_err(err)?;
        Ok(Conn::Cluster(conn))
    } else {
        let info = infos
            .into_iter()
            .next()
            .ok_or_else(|| StoreError("no Redis URL".into()))?;
        let client = match certificates {
            Some(certificates) => redis::Client::build_with_tls(info, certificates),
            None => redis::Client::open(info),
        }
        .map_err(err)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT));
        let conn = redis::aio::ConnectionManager::new_with_config(client, config)
            .await
            .map_err(err)?;
        Ok(Conn::Single(conn))
    }
}

impl RedisStore {
    /// Connects (failing if Redis does not answer within the call deadline).
    pub async fn connect(settings: RedisSettings) -> StoreResult<RedisStore> {
        let conn = tokio::time::timeout(CALL_TIMEOUT * 2, connect(&settings))
            .await
            .map_err(|_| StoreError("connecting to Redis timed out".into()))??;
        let keys = Keys::new(&settings.prefix);
        Ok(RedisStore {
            instance: new_instance_id(),
            settings,
            conn,
            keys,
            gcra: redis::Script::new(GCRA),
            count_add: redis::Script::new(COUNT_ADD),
            count: redis::Script::new(COUNT),
            count_remove: redis::Script::new(COUNT_REMOVE),
            heartbeat: redis::Script::new(HEARTBEAT),
            prune: redis::Script::new(PRUNE),
            edit_share: redis::Script::new(EDIT_SHARE),
            metrics: StoreMetrics::default(),
        })
    }

    fn conn(&self) -> Conn {
        self.conn.clone()
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> StoreResult<T> {
        let mut conn = self.conn();
        self.bounded(cmd.query_async(&mut conn)).await
    }

    async fn script<T: redis::FromRedisValue>(
        &self,
        invocation: redis::ScriptInvocation<'_>,
    ) -> StoreResult<T> {
        let mut conn = self.conn();
        self.bounded(invocation.invoke_async(&mut conn)).await
    }

    /// Runs one Redis call within [`CALL_TIMEOUT`], and counts its time or failure.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> StoreResult<T> {
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(result) => result.map_err(err),
            Err(_) => Err(StoreError("Redis did not answer in time".into())),
        };
        self.metrics.record(started.elapsed(), result.is_ok());
        result
    }

    fn own_counts(&self) -> String {
        format!("{}{}", self.keys.counts, self.instance)
    }
}

fn count_field(scope: &str, key: &str) -> String {
    format!("{scope}\u{0}{key}")
}

impl Store for RedisStore {
    fn metrics(&self) -> Option<&StoreMetrics> {
        Some(&self.metrics)
    }

    fn kind(&self) -> &'static str {
        if matches!(self.conn, Conn::Cluster(_)) {
            "redis-cluster"
        } else {
            "redis"
        }
    }

    fn instance(&self) -> &str {
        &self.instance
    }

    fn take<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
        cost: u64,
    ) -> BoxFuture<'a, StoreResult<Result<(), Duration>>> {
        async move {
            // Rounded up, so the shared bucket is never looser than the local one.
            let interval = quota.interval_nanos().div_ceil(1000).max(1);
            let tolerance = quota.tolerance_nanos() / 1000;
            let mut invocation = self.gcra.prepare_invoke();
            invocation
                .key(self.keys.bucket(key))
                .arg(interval)
                .arg(tolerance)
                .arg(cost);
            let wait: i64 = self.script(invocation).await?;
            Ok(match u64::try_from(wait) {
                Ok(micros) => Err(Duration::from_micros(micros.max(1))),
                Err(_) => Ok(()),
            })
        }
        .boxed()
    }

    fn revoke<'a>(&'a self, jti: &'a str, expires_ms: u64) -> BoxFuture<'a, StoreResult<()>> {
        async move {
            let mut conn = self.conn();
            self.bounded(conn.zadd::<_, _, _, ()>(&self.keys.revoked, jti, expires_ms))
                .await?;
            // Expired ones go on Redis's clock, never on a gateway's (which may run ahead).
            let mut prune = self.prune.prepare_invoke();
            prune.key(&self.keys.revoked);
            self.script::<i64>(prune).await.map(drop)
        }
        .boxed()
    }

    fn is_revoked<'a>(&'a self, jti: &'a str, now_ms: u64) -> BoxFuture<'a, StoreResult<bool>> {
        async move {
            let mut conn = self.conn();
            let score: Option<f64> = self.bounded(conn.zscore(&self.keys.revoked, jti)).await?;
            Ok(score.is_some_and(|exp| exp > now_ms as f64))
        }
        .boxed()
    }

    fn block<'a>(&'a self, block: &'a BlockRecord) -> BoxFuture<'a, StoreResult<()>> {
        async move {
            let info = serde_json::to_string(block).map_err(err)?;
            let mut pipe = redis::pipe();
            pipe.atomic()
                .zadd(&self.keys.blocks, &block.address, block.until_ms)
                .ignore()
                .hset(&self.keys.block_info, &block.address, info)
                .ignore();
            let mut conn = self.conn();
            self.bounded(pipe.query_async::<()>(&mut conn)).await
        }
        .boxed()
    }

    fn unblock<'a>(&'a self, address: &'a str, now_ms: u64) -> BoxFuture<'a, StoreResult<bool>> {
        async move {
            let mut pipe = redis::pipe();
            pipe.atomic()
                .zscore(&self.keys.blocks, address)
                .zrem(&self.keys.blocks, address)
                .ignore()
                .hdel(&self.keys.block_info, address)
                .ignore();
            let mut conn = self.conn();
            let (until,): (Option<f64>,) = self.bounded(pipe.query_async(&mut conn)).await?;
            Ok(until.is_some_and(|until| until > now_ms as f64))
        }
        .boxed()
    }

    fn blocks(&self, now_ms: u64) -> BoxFuture<'_, StoreResult<Vec<BlockRecord>>> {
        async move {
            let mut prune = self.prune.prepare_invoke();
            prune.key(&self.keys.blocks).key(&self.keys.block_info);
            self.script::<i64>(prune).await?;
            let mut conn = self.conn();
            let live: Vec<String> = self
                .bounded(conn.zrangebyscore(&self.keys.blocks, format!("({now_ms}"), "+inf"))
                .await?;
            if live.is_empty() {
                return Ok(Vec::new());
            }
            let infos: Vec<Option<String>> = self
                .bounded(
                    redis::cmd("HMGET")
                        .arg(&self.keys.block_info)
                        .arg(&live)
                        .query_async(&mut conn),
                )
                .await?;
            let mut blocks: Vec<BlockRecord> = infos
                .into_iter()
                .flatten()
                .filter_map(|json| serde_json::from_str(&json).ok())
                .collect();
            blocks.sort_by(|a, b| a.address.cmp(&b.address));
            Ok(blocks)
        }
        .boxed()
    }

    fn count_add<'a>(
        &'a self,
        scope: &'a str,
        key: &'a str,
        max: u32,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        async move {
            let mut invocation = self.count_add.prepare_invoke();
            invocation
                .key(&self.keys.instances)
                .key(self.own_counts())
                .arg(count_field(scope, key))
                .arg(max)
                .arg(&self.instance)
                .arg(&self.keys.counts)
                .arg(DEFAULT_INSTANCE_TTL_MS);
            let added: i64 = self.script(invocation).await?;
            Ok(added == 1)
        }
        .boxed()
    }

    fn count_reset<'a>(
        &'a self,
        counts: &'a [(&'static str, String, u32)],
    ) -> BoxFuture<'a, StoreResult<()>> {
        async move {
            let own = self.own_counts();
            let fields: Vec<(String, u32)> = counts
                .iter()
                .filter(|(_, _, n)| *n > 0)
                .map(|(scope, key, n)| (count_field(scope, key), *n))
                .collect();
            let mut pipe = redis::pipe();
            pipe.atomic().del(&own).ignore();
            if !fields.is_empty() {
                // Expiring as a new instance's would; the next heartbeat sets the right time.
                pipe.hset_multiple(&own, &fields)
                    .ignore()
                    .pexpire(&own, DEFAULT_INSTANCE_TTL_MS as i64)
                    .ignore();
            }
            let mut conn = self.conn();
            self.bounded(pipe.query_async::<()>(&mut conn)).await
        }
        .boxed()
    }

    fn count_remove<'a>(&'a self, scope: &'a str, key: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        async move {
            let mut invocation = self.count_remove.prepare_invoke();
            invocation
                .key(self.own_counts())
                .arg(count_field(scope, key));
            self.script::<i64>(invocation).await.map(drop)
        }
        .boxed()
    }

    fn count<'a>(&'a self, scope: &'a str, key: &'a str) -> BoxFuture<'a, StoreResult<u64>> {
        async move {
            let mut invocation = self.count.prepare_invoke();
            invocation
                .key(&self.keys.instances)
                .arg(count_field(scope, key))
                .arg(&self.keys.counts);
            let total: i64 = self.script(invocation).await?;
            Ok(u64::try_from(total).unwrap_or(0))
        }
        .boxed()
    }

    fn heartbeat(&self, ttl: Duration) -> BoxFuture<'_, StoreResult<()>> {
        async move {
            let mut invocation = self.heartbeat.prepare_invoke();
            invocation
                .key(&self.keys.instances)
                .key(self.own_counts())
                .arg(&self.instance)
                .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
            self.script::<i64>(invocation).await.map(drop)
        }
        .boxed()
    }

    fn put_session<'a>(&'a self, session: &'a SessionRecord) -> BoxFuture<'a, StoreResult<()>> {
        self.put_session_record(session).boxed()
    }

    fn remove_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        self.remove_session_record(id).boxed()
    }

    fn session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, StoreResult<Option<SessionRecord>>> {
        self.session_record(id).boxed()
    }

    fn sessions(&self) -> BoxFuture<'_, StoreResult<Vec<SessionRecord>>> {
        self.session_records().boxed()
    }

    fn edit_share<'a>(
        &'a self,
        id: &'a str,
        user: &'a str,
        mode: Option<&'a str>,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        self.edit_session_share(id, user, mode).boxed()
    }

    fn publish<'a>(&'a self, event: &'a StoreEvent) -> BoxFuture<'a, StoreResult<()>> {
        async move {
            let json = serde_json::to_string(event).map_err(err)?;
            let cmd = redis::cmd("XADD")
                .arg(&self.keys.events)
                .arg("MAXLEN")
                .arg("~")
                .arg(EVENT_STREAM_LEN)
                .arg("*")
                .arg("from")
                .arg(&self.instance)
                .arg("event")
                .arg(json)
                .to_owned();
            self.run::<String>(cmd).await.map(drop)
        }
        .boxed()
    }

    fn subscribe(&self) -> BoxFuture<'_, StoreResult<mpsc::Receiver<Received>>> {
        async move {
            // Start after the newest event that exists now ("0-0" on an empty stream).
            let newest: redis::streams::StreamRangeReply = self
                .run(
                    redis::cmd("XREVRANGE")
                        .arg(&self.keys.events)
                        .arg("+")
                        .arg("-")
                        .arg("COUNT")
                        .arg(1)
                        .to_owned(),
                )
                .await?;
            let last = newest
                .ids
                .first()
                .map_or_else(|| "0-0".to_owned(), |e| e.id.clone());
            let (tx, rx) = mpsc::channel(1024);
            let settings = self.settings.clone();
            let stream = self.keys.events.clone();
            let cursor = super::redis_events::Cursor { last, tx };
            // Ends when the subscriber is gone; no other cancellation.
            let restart = crate::supervise::RESTART_BACKOFF;
            crate::supervise::spawn_supervised_with("store-events", None, restart, cursor, {
                move |run| super::redis_events::read_events(settings.clone(), stream.clone(), run)
            });
            Ok(rx)
        }
        .boxed()
    }

    fn ping(&self) -> BoxFuture<'_, StoreResult<()>> {
        async move {
            self.run::<String>(redis::cmd("PING").to_owned())
                .await
                .map(drop)
        }
        .boxed()
    }

    fn check(&self) -> BoxFuture<'_, StoreResult<StoreInfo>> {
        async move {
            let started = std::time::Instant::now();
            self.run::<String>(redis::cmd("PING").to_owned()).await?;
            let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            // A cluster answers with every node's section: the first version found.
            let info: redis::Value = self
                .run(redis::cmd("INFO").arg("server").to_owned())
                .await?;
            let version = version_in(&info);
            let mut conn = self.conn();
            let revoked: u64 = self.bounded(conn.zcard(&self.keys.revoked)).await?;
            let blocks: u64 = self.bounded(conn.zcard(&self.keys.blocks)).await?;
            let instances: u64 = self.bounded(conn.zcard(&self.keys.instances)).await?;
            let sessions: u64 = self.bounded(conn.hlen(&self.keys.sessions)).await?;
            let events: u64 = self.bounded(conn.xlen(&self.keys.events)).await?;
            Ok(StoreInfo {
                kind: self.kind(),
                version,
                latency_us,
                keys: vec![
                    ("revocations".into(), revoked),
                    ("blocks".into(), blocks),
                    ("instances".into(), instances),
                    ("sessions".into(), sessions),
                    ("events".into(), events),
                ],
            })
        }
        .boxed()
    }
}

/// `redis_version` from an `INFO server` reply (one server's text, or a cluster's map of
/// them).
fn version_in(info: &redis::Value) -> Option<String> {
    match info {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes)
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .map(|v| v.trim().to_owned()),
        redis::Value::VerbatimString { text, .. } => {
            version_in(&redis::Value::BulkString(text.as_bytes().to_vec()))
        }
        redis::Value::Map(pairs) => pairs.iter().find_map(|(_, v)| version_in(v)),
        redis::Value::Array(items) => items.iter().find_map(version_in),
        _ => None,
    }
}
