//! The gateway's listeners: WebSocket upgrade on `/` and `/ws` ([`crate::upgrade`]: browser
//! pages checked by [`crate::origin`], through proxies by [`crate::forwarded`], tokens by
//! [`crate::security`]), the login API ([`crate::api`]), the embedded web UI on every other
//! `GET` ([`crate::web`]), the
//! health/metrics port, the connection cap and graceful shutdown. With `ENABLE_SSL` the main
//! listener speaks HTTPS and WSS only ([`crate::tls`]) and every response carries HSTS; the
//! health port stays plain HTTP (it binds `PROXY_HOST` like the main port: keep it off
//! untrusted networks, it serves no terminals).
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use tokio::net::TcpListener;
//! use tokio_util::sync::CancellationToken;
//!
//! let config = tmuxgate::config::Config::default();
//! let server = tmuxgate::Server::start(config).await?;     // starts or finds the tmux backends
//! let handle = server.handle();                            // status() and shutdown() from anywhere
//! let listener = TcpListener::bind("127.0.0.1:8080").await?;
//! let health = TcpListener::bind("127.0.0.1:9090").await?;
//! let shutdown = CancellationToken::new();
//! tokio::spawn({ let s = shutdown.clone(); async move { tokio::signal::ctrl_c().await.ok(); s.cancel() } });
//! server.serve(listener, Some(health), shutdown).await?;   // returns after a graceful shutdown
//! println!("{:?}", handle.status());
//! # Ok(()) }
//! ```

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};
use axum::routing::get;
use axum::serve::{Listener, ListenerExt as _};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::abuse::{Abuse, Offense};
use crate::audit::{Audit, AuditSettings, EventKind, Record};
use crate::backends::{BackendSettings, BackendState};
use crate::config::Config;
use crate::exec::{ExecSettings, Executor};
use crate::forwarded::{TrustedProxies, WithPeers};
use crate::metrics::Stats;
use crate::origin::{OriginPolicy, loggable};
use crate::policy::PolicyStore;
use crate::security::{Authenticator, FirstStart};
use crate::sessions::{HubSettings, Sessions};
use crate::supervise::{spawn_supervised, spawn_supervised_with};
use crate::tls::{Tls, TlsError, TlsListener, TlsStatus};
use crate::upgrade;

/// How often the shared store is pinged (its `/health` state) and this instance's
/// heartbeat renewed.
const STORE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// How often the users and revocations files are checked for changes made by another
/// process (`tmuxgate user`, a second gateway): affected connections close within this.
const IDENTITY_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How often idle rate-limit keys and expired blocks are forgotten.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// Limits a connection enforces.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest message accepted.
    pub max_message_bytes: usize,
    /// Keepalive ping interval.
    pub ping_interval: Duration,
    /// Silence after which a connection is closed.
    pub idle_timeout: Duration,
    /// Time a connection without a token has to authenticate.
    pub auth_timeout: Duration,
}

/// State shared by every connection.
pub struct Gateway {
    /// Sessions and backends.
    pub sessions: Arc<Sessions>,
    /// Counters.
    pub stats: Stats,
    /// Connection limits.
    pub limits: Limits,
    /// Cancelled when the gateway shuts down.
    pub shutdown: CancellationToken,
    /// Users, roles and tokens; `None` with `ENABLE_AUTH=false`.
    pub auth: Option<Authenticator>,
    /// Rate limits and blocked addresses.
    pub abuse: Abuse,
    /// The audit log (`AUDIT_LOG`).
    pub audit: Audit,
    /// Command execution: the policy, limits and the shell sessions run.
    pub exec: Executor,
    /// The shared store (embedded, or Redis) and its health.
    pub store: Arc<dyn crate::store::Store>,
    pub(crate) store_health: Arc<crate::store::StoreHealth>,
    config: Config,
    pub(crate) origins: OriginPolicy,
    pub(crate) proxies: TrustedProxies,
    pub(crate) tls: Option<Arc<Tls>>,
    started: Instant,
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) tasks: TaskTracker,
}

/// What [`Gateway::admit_client`] admits.
#[derive(Clone, Copy, Debug)]
pub(crate) enum AdmitAs {
    /// A WebSocket upgrade (`CONNECT_RATE_LIMIT`).
    Connect,
    /// `POST /api/login` (`AUTH_RATE_LIMIT`).
    Login,
}

/// Why [`Gateway::admit_client`] refused: 403, or 429 with `Retry-After` in seconds.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Refused {
    /// The address is blocked.
    Blocked,
    /// Over the rate; retry after this long.
    RateLimited(Duration),
}

impl axum::response::IntoResponse for Refused {
    fn into_response(self) -> axum::response::Response {
        use axum::http::{StatusCode, header::RETRY_AFTER};
        match self {
            Refused::Blocked => (StatusCode::FORBIDDEN, "address blocked").into_response(),
            Refused::RateLimited(wait) => {
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let headers = [(RETRY_AFTER, seconds.to_string())];
                (StatusCode::TOO_MANY_REQUESTS, headers, "rate limited").into_response()
            }
        }
    }
}

/// A started gateway.
pub struct Server {
    gw: Arc<Gateway>,
    first_start: Option<FirstStart>,
    /// The fleet's events, subscribed at start: whatever another gateway announces once
    /// this one accepts connections reaches it.
    fleet_events: Option<crate::store::fleet::Feeds>,
}

/// A handle to ask a running gateway's status or stop it.
#[derive(Clone)]
pub struct ServerHandle {
    gw: Arc<Gateway>,
}

/// A point-in-time status.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Status {
    /// `healthy`, `degraded` (some backends down or with an open breaker) or `unhealthy`
    /// (none usable, or shutting down).
    pub status: &'static str,
    /// Crate version.
    pub version: &'static str,
    /// Seconds since start.
    pub uptime: u64,
    /// Open WebSocket connections.
    pub connections: u64,
    /// Live sessions.
    pub sessions: usize,
    /// Each backend.
    pub backends: Vec<BackendStatus>,
    /// The shared store.
    pub store: crate::store::StoreStatus,
    /// The audit log.
    pub audit: crate::audit::AuditStatus,
}

/// One backend in [`Status`] (and in `GET /admin/backends`).
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendStatus {
    /// Backend id.
    pub id: String,
    /// `local` (the gateway's own server), `socket` (an operator's) or `ssh`.
    pub kind: &'static str,
    /// Its socket path, or `ssh://user@host:port/socket-name`.
    pub address: String,
    /// `up` or `down`: whether its admin connection is live.
    pub state: &'static str,
    /// `healthy`, `degraded` (slow, or a probe failed) or `unhealthy` (down, or its
    /// breaker is not closed).
    pub health: &'static str,
    /// Circuit breaker: `closed`, `open` or `half-open`.
    pub breaker: &'static str,
    /// Health probe latency EWMA in ms (`null` before the first probe).
    pub latency_ewma_ms: Option<f64>,
    /// Health probes failed or timed out since start.
    pub probe_failures: u64,
    /// Times its server was started again after dying.
    pub restarts: u64,
    /// Live sessions on it.
    pub sessions: usize,
    /// Placement weight (`BACKENDS_FILE`, 1 by default).
    pub weight: u32,
    /// Placement labels (`BACKENDS_FILE`).
    pub labels: Vec<String>,
    /// Drained by an administrator: takes no new sessions.
    pub draining: bool,
    /// Why the last attempt to connect failed, while it is down (e.g. ssh's
    /// `Host key verification failed.`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl Server {
    /// Validates `config`, loads the TLS certificate and key when `ENABLE_SSL` is on, then
    /// starts (or reconnects to) the tmux backends and rediscovers their sessions. Fails with
    /// a clear message if the certificate or key is missing, unreadable or mismatched, or if
    /// tmux is missing or older than 3.2.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        config.validate()?;
        let origins = OriginPolicy::new(&config.allowed_origins, config.proxy_host)
            .context("ALLOWED_ORIGINS")?;
        let stats = Stats::default();
        let tls = Tls::from_config(&config, stats.tls.clone())?.map(Arc::new);
        let audit = open_audit(&config, &stats)?;
        let backend_settings = BackendSettings {
            tmux_bin: config.tmux_bin.clone(),
            dir: config.tmux_socket_path.clone(),
            history_limit: config.history_limit,
            default_command: config.default_command.clone(),
            health: crate::backends::HealthSettings {
                interval: config.health_check_interval,
                probe_timeout: config.health_probe_timeout,
                target_latency: config.target_latency,
                restart_backoff: config.restart_backoff,
                breaker: crate::backends::BreakerSettings {
                    failures: config.breaker_failures,
                    cooldown: config.breaker_cooldown,
                },
            },
        };
        let hub_settings = HubSettings {
            ring_bytes: config.ring_buffer_bytes,
            snapshot_history_lines: config.snapshot_history_lines,
            linger: config.hub_linger,
            captures: stats.snapshot_captures.clone(),
            audit: audit.clone(),
            fleet: Default::default(),
        };
        let size = (config.default_cols, config.default_rows);
        let layout = crate::backends::PoolLayout {
            backends: match &config.backends_file {
                Some(path) => crate::backends::spec::load(path)?,
                None => crate::backends::spec::uniform(config.backend_pool_size),
            },
            strategy: config.balance_strategy,
        };
        let sessions = Sessions::start(backend_settings, layout, hub_settings, size)
            .await
            .context("starting tmux backends")?;
        let limits = Limits {
            max_message_bytes: config.max_message_bytes,
            ping_interval: config.ping_interval,
            idle_timeout: config.idle_timeout,
            auth_timeout: config.auth_timeout,
        };
        let proxies = TrustedProxies::new(config.trusted_proxies.clone());
        let store = crate::store::open(&config)
            .await
            .context("connecting to the shared store (REDIS_URL / REDIS_HOST)")?;
        let fleet_events = match store.is_shared() {
            false => None,
            true => Some(
                store
                    .subscribe()
                    .await
                    .context("subscribing to the shared store's events")?,
            ),
        };
        let (auth, first_start) = match config.enable_auth {
            true => {
                let (auth, first) = Authenticator::open_in(&config, Some(store.clone()))
                    .await
                    .context("opening the users, keys and revocations (DATA_DIR)")?;
                (Some(auth), first)
            }
            false => (None, None),
        };
        let store_health = Arc::<crate::store::StoreHealth>::default();
        let mut abuse = Abuse::new(&config, stats.abuse.clone(), audit.clone());
        abuse.share(store.clone(), store_health.clone());
        let policy = PolicyStore::new(config.policy_file.clone())
            .context("loading the command policy (POLICY_FILE)")?;
        let exec = Executor {
            policy: Arc::new(policy),
            settings: ExecSettings {
                queue_depth: config.exec_queue_depth,
                default_timeout: config.exec_timeout,
                max_timeout: config.exec_max_timeout,
                max_output_bytes: config.exec_max_output_bytes,
            },
            stats: stats.exec.clone(),
            shell: sessions.shell().cloned(),
        };
        audit.record(config_loaded(&config));
        // Everything this gateway blocks from now on is shared, and the fleet's events reach
        // it, before it accepts a connection.
        if store.is_shared() {
            sessions.join_fleet(store.clone()).await;
        }
        let fleet_events = fleet_events.map(|events| {
            let blocks = abuse.blocks.share_changes();
            crate::store::fleet::Feeds::new(events, blocks, auth.as_ref())
        });
        let gw = Gateway {
            sessions,
            stats,
            limits,
            shutdown: CancellationToken::new(),
            auth,
            abuse,
            audit,
            exec,
            store,
            store_health,
            slots: Arc::new(Semaphore::new(config.max_connections)),
            config,
            origins,
            proxies,
            tls,
            started: Instant::now(),
            tasks: TaskTracker::new(),
        };
        Ok(Server {
            gw: Arc::new(gw),
            first_start,
            fleet_events,
        })
    }

    /// On the first start with authentication on (no users file yet), the `admin` account
    /// created and its one-time password: show it to the operator once, never log it.
    pub fn take_first_start(&mut self) -> Option<FirstStart> {
        self.first_start.take()
    }

    /// A handle for status and shutdown.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            gw: self.gw.clone(),
        }
    }

    /// Serves WebSocket clients and the UI on `listener` (over TLS with `ENABLE_SSL`, the
    /// certificate reloaded as `TLS_RELOAD_INTERVAL` says) and `/health` + `/metrics` on
    /// `health` until `shutdown` is cancelled (or [`ServerHandle::shutdown`] is called). Then
    /// it stops accepting, closes every WebSocket with 1001, waits up to `SHUTDOWN_TIMEOUT`
    /// for the connections to end, and detaches from tmux: sessions keep running.
    pub async fn serve(
        self,
        listener: TcpListener,
        health: Option<TcpListener>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let gw = self.gw;
        let internal = gw.shutdown.clone();
        let sessions = gw.sessions.clone();
        tokio::spawn(async move {
            // Ends either way: the caller's token, or `ServerHandle::shutdown`.
            tokio::select! {
                _ = shutdown.cancelled() => internal.cancel(),
                _ = internal.cancelled() => {}
            }
            // From now on a backend that dies stays dead: no restart races the shutdown (or
            // whoever stops the servers after it).
            sessions.stop_health_checks();
        });
        // Background tasks that can start over do so after a panic (`supervise`).
        let cancel = gw.shutdown.clone();
        let restart = crate::supervise::RESTART_BACKOFF;
        if let Some(feeds) = self.fleet_events {
            let g = gw.clone();
            let cancel = Some(cancel.clone());
            spawn_supervised_with("fleet-events", cancel, restart, feeds, move |run| {
                fleet_events(g.clone(), run)
            });
        }
        let g = gw.clone();
        spawn_supervised("store-watch", cancel.clone(), restart, move || {
            let (store, health, cancel) =
                (g.store.clone(), g.store_health.clone(), g.shutdown.clone());
            crate::store::watch(store, health, STORE_CHECK_INTERVAL, cancel)
        });
        if let Some(auth) = gw.auth.clone() {
            let cancel_files = cancel.clone();
            spawn_supervised("identity-files", cancel.clone(), restart, move || {
                auth.clone()
                    .watch_files(IDENTITY_POLL_INTERVAL, cancel_files.clone())
            });
        }
        let g = gw.clone();
        spawn_supervised("prune-limiters", cancel.clone(), restart, move || {
            prune_limiters(g.clone())
        });
        let g = gw.clone();
        spawn_supervised("shared-counts", cancel.clone(), restart, move || {
            refresh_shared_counts(g.clone())
        });
        if gw.exec.policy.path().is_some() {
            let (policy, cancel_policy) = (gw.exec.policy.clone(), cancel.clone());
            spawn_supervised("policy-file", cancel.clone(), restart, move || {
                policy.clone().watch(cancel_policy.clone())
            });
        }
        let main = serve_main(gw.clone(), listener);
        // The same header deadline and size as the main listener: the health port also
        // serves the admin API, and its descriptors are the process's.
        let health_task = health.map(|l| {
            let app = crate::health::router(gw.clone());
            let limits = crate::http::HeaderLimits::of(&gw.config);
            tokio::spawn(crate::http::serve(l, app, limits, gw.shutdown.clone()))
        });
        main.await.context("serving the WebSocket listener")?;
        gw.tasks.close();
        if tokio::time::timeout(gw.config.shutdown_timeout, gw.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the shutdown timeout");
        }
        gw.sessions.close_all().await;
        if let Some(task) = health_task {
            let _ = task.await;
        }
        gw.audit.close().await;
        tracing::info!("gateway stopped; tmux sessions left running");
        Ok(())
    }
}

impl ServerHandle {
    /// The gateway's status, as `/health` reports it.
    pub fn status(&self) -> Status {
        self.gw.status()
    }

    /// Waits until every audit event recorded so far is in the audit log.
    pub async fn flush_audit(&self) {
        self.gw.audit.flush().await;
    }

    /// Starts a graceful shutdown.
    pub fn shutdown(&self) {
        self.gw.shutdown.cancel();
    }

    /// Reads the TLS certificate and key files again, as SIGHUP does: on success new
    /// connections get the new certificate (open ones keep theirs), on failure the previous
    /// one stays. Returns the served certificate's fingerprint; [`TlsError::Disabled`] when
    /// TLS is off.
    pub async fn reload_tls(&self) -> Result<String, TlsError> {
        match &self.gw.tls {
            Some(tls) => tls.reload().await,
            None => Err(TlsError::Disabled),
        }
    }

    /// This gateway's id among the store's instances (unique per process).
    pub fn instance(&self) -> &str {
        self.gw.store.instance()
    }

    /// The TLS certificate served now and the reload counts, as a watch that changes on
    /// every reload, whatever triggered it; `None` when TLS is off.
    pub fn tls_status(&self) -> Option<watch::Receiver<TlsStatus>> {
        self.gw.tls.as_ref().map(|tls| tls.status())
    }
}

impl Gateway {
    /// The gateway's status.
    pub fn status(&self) -> Status {
        let backends: Vec<BackendStatus> = self
            .sessions
            .backends()
            .iter()
            .map(|b| {
                let report = b.health_report();
                BackendStatus {
                    id: b.id.clone(),
                    kind: b.location().kind(),
                    address: b.address(),
                    state: if b.state() == BackendState::Up {
                        "up"
                    } else {
                        "down"
                    },
                    health: report.state.as_str(),
                    breaker: report.breaker.as_str(),
                    latency_ewma_ms: report
                        .latency_ewma_ms
                        .map(|ms| (ms * 1000.0).round() / 1000.0),
                    probe_failures: report.probe_failures,
                    restarts: report.restarts,
                    sessions: self.sessions.count_on(b.index),
                    weight: b.weight(),
                    labels: b.labels().to_vec(),
                    draining: b.is_draining(),
                    last_error: report.last_error.clone(),
                }
            })
            .collect();
        let audit = self.stats.audit.status(self.audit.is_on());
        // Usable: up with a closed breaker (it takes new sessions).
        let usable = backends
            .iter()
            .filter(|b| b.state == "up" && b.breaker == "closed")
            .count();
        let status = match usable {
            _ if self.shutdown.is_cancelled() => "unhealthy",
            0 => "unhealthy",
            n if n < backends.len() => "degraded",
            _ if self.store_health.is_down() => "degraded",
            _ if audit.state == "failing" => "degraded",
            _ => "healthy",
        };
        Status {
            status,
            version: env!("CARGO_PKG_VERSION"),
            uptime: self.started.elapsed().as_secs(),
            connections: self
                .stats
                .connections
                .load(std::sync::atomic::Ordering::Relaxed),
            sessions: self.sessions.count(),
            backends,
            store: self.store_health.status(self.store.kind()),
            audit,
        }
    }

    /// The client behind `peer` (through trusted proxies) if the request's origin is
    /// allowed; otherwise the 403 to answer, counted and logged.
    pub(crate) fn screen(
        &self,
        peer: SocketAddr,
        headers: &HeaderMap,
    ) -> Result<crate::forwarded::Forwarded, upgrade::ForbiddenOrigin> {
        let checked = match self.proxies.resolve(peer.ip(), headers) {
            Ok(forwarded) => match self.origins.check_headers(headers, forwarded.site.as_ref()) {
                Ok(()) => Ok(forwarded),
                Err(refusal) => Err((forwarded.client, refusal, true)),
            },
            // Only a trusted proxy's headers are read, so it is the one to blame in the log;
            // but not to block: a client can make a proxy forward junk, and blocking the
            // proxy would cut everyone off.
            Err(refusal) => Err((peer.ip().to_canonical(), refusal, false)),
        };
        checked.map_err(|(client, refusal, counts)| {
            if counts {
                self.abuse.blocks.record(client, Offense::Origin);
            }
            self.stats
                .connections_forbidden
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(%client, %refusal, "request from a forbidden origin");
            let record = Record::new(EventKind::OriginRejected, Some(client))
                .reason(refusal_reason(refusal))
                .headers(loggable(headers, ORIGIN), loggable(headers, HOST));
            self.audit.record(record);
            upgrade::ForbiddenOrigin
        })
    }

    /// Refuses a client whose address is blocked (behind a trusted proxy the TCP peer is
    /// the proxy, so blocks by client address take effect here, not at accept) or over its
    /// rate of upgrades or logins.
    pub(crate) fn admit_client(&self, client: IpAddr, what: AdmitAs) -> Result<(), Refused> {
        if self.abuse.blocks.is_blocked(client) {
            // Sampled: behind a proxy a blocked client is refused here on every request.
            if self.abuse.blocks.refusal_worth_auditing(client) {
                let record =
                    Record::new(EventKind::ConnectionRefused, Some(client)).reason("blocked");
                self.audit.record(record);
            }
            return Err(Refused::Blocked);
        }
        let verdict = match what {
            AdmitAs::Connect => self.abuse.check_connect(client),
            AdmitAs::Login => self.abuse.check_login(client),
        };
        verdict.map_err(Refused::RateLimited)
    }

    /// Whether the main listener serves TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether `/metrics` is served.
    pub fn metrics_enabled(&self) -> bool {
        self.config.enable_metrics
    }

    /// `FLEET_URLS`: the WebSocket URLs of every gateway of the fleet (`GET /api/fleet`).
    pub fn fleet_urls(&self) -> &[String] {
        &self.config.fleet_urls
    }
}

/// Forgets idle rate-limit keys and expired blocks every [`PRUNE_INTERVAL`], so memory
/// taken by a burst of clients is given back when they go quiet.
async fn prune_limiters(gw: Arc<Gateway>) {
    let mut tick = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        tokio::select! {
            _ = gw.shutdown.cancelled() => return,
            _ = tick.tick() => gw.abuse.prune(),
        }
    }
}

/// Rewrites this gateway's connection counts in the fleet's store every
/// [`crate::abuse::shared::COUNTS_REFRESH`] (nothing without a fleet).
async fn refresh_shared_counts(gw: Arc<Gateway>) {
    let mut tick = tokio::time::interval(crate::abuse::shared::COUNTS_REFRESH);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = gw.shutdown.cancelled() => return,
            _ = tick.tick() => gw.abuse.refresh_shared_counts().await,
        }
    }
}

/// The audit log `config` asks for, its directory created when it is `DATA_DIR`.
fn open_audit(config: &Config, stats: &Stats) -> anyhow::Result<Audit> {
    let Some(path) = config.audit_log_path() else {
        tracing::warn!("AUDIT_LOG is empty: security events are not recorded");
        return Ok(Audit::off(stats.audit.clone()));
    };
    if path.parent() == Some(config.data_dir.as_path()) {
        crate::security::private_files::ensure_private_dir(&config.data_dir).context("DATA_DIR")?;
    }
    let settings = AuditSettings {
        path,
        max_bytes: config.audit_max_bytes,
        keep: config.audit_keep,
    };
    Audit::start(settings, stats.audit.clone()).context("AUDIT_LOG")
}

/// The audit `reason` of an origin refusal.
fn refusal_reason(refusal: crate::origin::Refusal) -> &'static str {
    use crate::origin::Refusal;
    match refusal {
        Refusal::NullOrigin => "null-origin",
        Refusal::Malformed(_) => "malformed-header",
        Refusal::NotAllowed => "origin-not-allowed",
    }
}

/// `CONFIG_LOADED`: what the gateway started with, without any secret.
fn config_loaded(config: &Config) -> Record {
    let mut record = Record::new(EventKind::ConfigLoaded, None);
    record.meta.preset = Some(config.preset.name());
    record.meta.auth = Some(config.enable_auth);
    record.meta.tls = Some(config.enable_ssl);
    record
}

/// The main listener: UI and WebSocket upgrades, over TLS when it is on; ends on shutdown.
async fn serve_main(gw: Arc<Gateway>, listener: TcpListener) -> std::io::Result<()> {
    let app = Router::new()
        .route("/", get(upgrade::root))
        .route("/ws", get(upgrade::ws_only))
        .merge(crate::api::router())
        .route("/{*path}", get(crate::web::serve))
        .with_state(gw.clone());
    let app = crate::web::allow_fleet(app, gw.fleet_urls());
    let shutdown = gw.shutdown.clone();
    let Some(tls) = gw.tls.clone() else {
        // Nagle would hold a frame written right after another (an attach response, then
        // its SNAPSHOT) until the client's delayed ACK: up to 40 ms per attach. Terminal
        // traffic is many small writes that must leave at once.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY");
            }
        });
        let blocks = gw.abuse.blocks.clone();
        return serve_on(WithPeers(listener, Some(blocks)), app, &gw).await;
    };
    let failures = tls.counters().handshake_failures.clone();
    let blocks = gw.abuse.blocks.clone();
    let listener =
        TlsListener::spawn(listener, tls.acceptor(), shutdown.clone(), failures, blocks)?;
    let interval = gw.config.tls_reload_interval;
    let (cancel, restart) = (shutdown.clone(), crate::supervise::RESTART_BACKOFF);
    spawn_supervised("tls-reload", cancel.clone(), restart, move || {
        crate::tls::reload::watch(tls.clone(), interval, cancel.clone())
    });
    let app = app.layer(axum::middleware::map_response(crate::web::with_hsts));
    serve_on(WithPeers(listener, None), app, &gw).await
}

/// One run of the fleet's event task (`store::fleet::run`) on the gateway's parts.
async fn fleet_events(g: Arc<Gateway>, run: crate::supervise::Resumed<crate::store::fleet::Feeds>) {
    let mut feeds = run.state;
    let parts = crate::store::fleet::Parts {
        store: g.store.clone(),
        blocks: g.abuse.blocks.clone(),
        auth: g.auth.clone(),
        sessions: g.sessions.clone(),
        cancel: g.shutdown.clone(),
    };
    crate::store::fleet::run(&parts, &mut feeds, run.restarted).await;
}

async fn serve_on<L>(listener: WithPeers<L>, app: Router, gw: &Gateway) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    let limits = crate::http::HeaderLimits::of(&gw.config);
    crate::http::serve(listener, app, limits, gw.shutdown.clone()).await;
    Ok(())
}
