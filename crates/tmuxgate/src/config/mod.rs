//! Gateway configuration: the [`Config`] struct the gateway reads, its defaults,
//! and how environment variables, command-line flags and presets combine into it.
//!
//! Precedence, lowest first: built-in default < [`Preset`] < environment < flag.
//! [`Layers::resolve`] applies them and records each value's [`Source`];
//! [`Config::validate`] enforces the rules documented in `docs/configuration.md`.

mod audit;
mod identity;
mod preset;
mod resolve;
mod secret;
mod settings;
mod tls;
mod validate;

use std::ffi::OsStr;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::backends::BalanceStrategy;
use crate::cidr::Cidr;

pub use audit::{AuditLog, MAX_AUDIT_KEEP, MIN_AUDIT_MAX_BYTES};
pub use identity::MIN_JWT_SECRET_BYTES;
pub use preset::Preset;
pub use resolve::{Layers, Resolved, Source, Sources};
pub use secret::Secret;
pub use settings::{Overrides, VARIABLES};
pub use validate::{ConfigError, MAX_SOCKET_NAME_BYTES, SOCKET_PATH_LIMIT_BYTES};

/// Everything the gateway needs to know at start-up. Plain data: each field
/// mirrors the environment variable in its doc comment (durations in ms there).
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `PROXY_PORT`: WebSocket listener port (0 = ephemeral).
    pub proxy_port: u16,
    /// `PROXY_HOST`: address of both listeners.
    pub proxy_host: IpAddr,
    /// `MAX_CONNECTIONS`: concurrent WebSocket connections accepted.
    pub max_connections: usize,
    /// `ENABLE_AUTH`: every connection authenticates and every request is checked against
    /// its user's role and sessions ([`crate::security`]). On by default; off is allowed
    /// only on loopback or with `allow_insecure_no_auth`.
    pub enable_auth: bool,
    /// `ENABLE_SSL`: serve HTTPS and WSS on the main listener with `tls_cert` and `tls_key`.
    pub enable_ssl: bool,
    /// `TLS_CERT`: PEM file with the certificate chain, server certificate first.
    pub tls_cert: Option<PathBuf>,
    /// `TLS_KEY`: PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
    /// `TLS_RELOAD_INTERVAL`: how often the certificate and key files are checked for a
    /// change (`ZERO`: only on SIGHUP).
    pub tls_reload_interval: Duration,
    /// `TMUX_SOCKET_PATH`: directory (created 0700) holding the tmux server sockets.
    pub tmux_socket_path: PathBuf,
    /// `BACKEND_POOL_SIZE`: number of gateway-owned tmux servers (without `BACKENDS_FILE`).
    pub backend_pool_size: usize,
    /// `BACKENDS_FILE`: the backends with their weights and labels (TOML); `None`:
    /// `BACKEND_POOL_SIZE` backends of weight 1 without labels.
    pub backends_file: Option<PathBuf>,
    /// `BALANCE_STRATEGY`: how new sessions are spread over the backends.
    pub balance_strategy: BalanceStrategy,
    /// `TARGET_LATENCY`: backend probe latency (EWMA) above which a backend is degraded.
    pub target_latency: Duration,
    /// `HEALTH_CHECK_INTERVAL`: time between health probes of each backend.
    pub health_check_interval: Duration,
    /// `HEALTH_PROBE_TIMEOUT`: a health probe not answered within this fails.
    pub health_probe_timeout: Duration,
    /// `BREAKER_FAILURES`: failed probes in a row that open a backend's circuit breaker.
    pub breaker_failures: u32,
    /// `BREAKER_COOLDOWN`: how long an open breaker waits before a trial probe.
    pub breaker_cooldown: Duration,
    /// `RESTART_BACKOFF`: first wait before restarting a dead backend (doubling per failed
    /// attempt, at most [`crate::backends::health::RESTART_BACKOFF_MAX`]).
    pub restart_backoff: Duration,
    /// `RATE_LIMIT_REQUESTS`: requests per window, per user (per client address before
    /// authentication and with authentication off).
    pub rate_limit_requests: u32,
    /// `RATE_LIMIT_WINDOW`: rate-limit window.
    pub rate_limit_window: Duration,
    /// `RATE_LIMIT_BURST`: requests allowed at once before the rate applies.
    pub rate_limit_burst: u32,
    /// `RATE_LIMIT_ROLES`: `role=N` entries: users of that role get N requests per
    /// `RATE_LIMIT_WINDOW` instead of `RATE_LIMIT_REQUESTS`.
    pub rate_limit_roles: Vec<String>,
    /// `RATE_LIMIT_CLOSE_AFTER`: refused requests in a row that close the connection (4429).
    pub rate_limit_close_after: u32,
    /// `CONNECT_RATE_LIMIT`: WebSocket upgrades per client address per minute; 0: no limit.
    pub connect_rate_limit: u32,
    /// `AUTH_RATE_LIMIT`: `auth` messages and `POST /api/login` per client address per
    /// minute; 0: no limit.
    pub auth_rate_limit: u32,
    /// `INPUT_BYTES_PER_SECOND`: terminal input per connection, sustained.
    pub input_bytes_per_second: usize,
    /// `INPUT_BURST_BYTES`: terminal input per connection at once (a paste).
    pub input_burst_bytes: usize,
    /// `ABUSE_ALLOWLIST`: client networks never rate-limited by address nor blocked.
    pub abuse_allowlist: Vec<Cidr>,
    /// `MAX_CONNECTIONS_PER_IP`: open WebSocket connections per client address; 0: no cap.
    pub max_connections_per_ip: u32,
    /// `MAX_CONNECTIONS_PER_USER`: open authenticated connections per user; 0: no cap.
    pub max_connections_per_user: u32,
    /// `MAX_SESSIONS_PER_USER`: sessions a user may own; 0: no cap.
    pub max_sessions_per_user: u32,
    /// `HTTP_HEADER_TIMEOUT`: time a client has to send a request's headers.
    pub http_header_timeout: Duration,
    /// `MAX_HEADER_BYTES`: a request's line and headers, at most.
    pub max_header_bytes: usize,
    /// `BLOCK_FAILED_LOGINS`: failed logins from one address within `BLOCK_WINDOW` that
    /// block it; 0: never.
    pub block_failed_logins: u32,
    /// `BLOCK_VIOLATIONS`: rate-limit, protocol and Origin violations from one address
    /// within `BLOCK_WINDOW` that block it; 0: never.
    pub block_violations: u32,
    /// `BLOCK_WINDOW`: the window the block thresholds count in.
    pub block_window: Duration,
    /// `BLOCK_DURATION`: the first block's length; each repeat doubles it (at most 24 h).
    pub block_duration: Duration,
    /// `REDIS_URL`: the shared store's URL(s); never printed (it may hold a password).
    pub redis_url: Option<Secret>,
    /// `REDIS_HOST`: the shared store's host, when `REDIS_URL` is not given.
    pub redis_host: Option<String>,
    /// `REDIS_PORT`.
    pub redis_port: u16,
    /// `REDIS_PASSWORD`: never printed.
    pub redis_password: Option<Secret>,
    /// `REDIS_USERNAME`: ACL user.
    pub redis_username: Option<String>,
    /// `REDIS_TLS`: `rediss://` for `REDIS_HOST`.
    pub redis_tls: bool,
    /// `REDIS_TLS_CA`: the authorities Redis's certificate is checked against (PEM).
    pub redis_tls_ca: Option<PathBuf>,
    /// `REDIS_TLS_CERT`: the client certificate for mutual TLS with Redis (PEM).
    pub redis_tls_cert: Option<PathBuf>,
    /// `REDIS_TLS_KEY`: its private key (PEM).
    pub redis_tls_key: Option<PathBuf>,
    /// `REDIS_CLUSTER`: Redis Cluster.
    pub redis_cluster: bool,
    /// `REDIS_PREFIX`: prefix of every key.
    pub redis_prefix: String,
    /// `ENABLE_METRICS`: when false `/metrics` answers 404.
    pub enable_metrics: bool,
    /// `HEALTH_PORT`: `/health` and `/metrics` listener port on `proxy_host` (0 = ephemeral).
    pub health_port: u16,
    /// `ALLOW_INSECURE_NO_AUTH`: permits a non-loopback `proxy_host` without authentication.
    pub allow_insecure_no_auth: bool,
    /// `ALLOWED_ORIGINS`: browser origins (`https://host[:port]`) allowed to open a WebSocket
    /// besides the gateway's own loopback page; see [`crate::origin`].
    pub allowed_origins: Vec<String>,
    /// `FLEET_URLS`: the WebSocket URLs of every gateway of the fleet, this one included,
    /// served to the web UI by `GET /api/fleet` so it can fail over between them.
    pub fleet_urls: Vec<String>,
    /// `TRUSTED_PROXIES`: reverse proxies whose `X-Forwarded-*` headers are believed (from
    /// any other peer they are ignored); see [`crate::forwarded`].
    pub trusted_proxies: Vec<Cidr>,
    /// `PROXY_PRESET`: the preset these values started from.
    pub preset: Preset,
    /// `TMUX_BIN`: tmux executable (looked up in `PATH` when bare).
    pub tmux_bin: PathBuf,
    /// `DEFAULT_COMMAND`: what new sessions run (tmux `default-command`); `None` runs the
    /// user's login shell, as tmux does.
    pub default_command: Option<String>,
    /// `MAX_MESSAGE_BYTES`: largest WebSocket message accepted.
    pub max_message_bytes: usize,
    /// `RING_BUFFER_BYTES`: per-pane output log.
    pub ring_buffer_bytes: usize,
    /// `HISTORY_LIMIT`: tmux `history-limit` of gateway-owned servers.
    pub history_limit: u32,
    /// `SNAPSHOT_HISTORY_LINES`: scrollback lines included in a pane snapshot.
    pub snapshot_history_lines: u32,
    /// `PING_INTERVAL`: WebSocket ping period.
    pub ping_interval: Duration,
    /// `IDLE_TIMEOUT`: a socket silent (not even a pong) this long is closed.
    pub idle_timeout: Duration,
    /// `SHUTDOWN_TIMEOUT`: grace period for connections on shutdown.
    pub shutdown_timeout: Duration,
    /// `HUB_LINGER`: how long a session's tmux control connection (and its output log)
    /// stays after the last viewer left, so a client that reconnects resumes exactly.
    pub hub_linger: Duration,
    /// `DEFAULT_COLS`: terminal width before a client reports its size.
    pub default_cols: u16,
    /// `DEFAULT_ROWS`: terminal height before a client reports its size.
    pub default_rows: u16,
    /// `LOG_FORMAT`: diagnostic log format.
    pub log_format: LogFormat,
    /// `DATA_DIR`: directory (created 0700) for the users file, generated signing keys and
    /// revoked tokens.
    pub data_dir: PathBuf,
    /// `USERS_FILE`: users and password hashes; `None` means `DATA_DIR/users.toml`
    /// ([`Config::users_file_path`]).
    pub users_file: Option<PathBuf>,
    /// `ROLES_FILE`: custom roles (TOML); `None`: the built-in roles only.
    pub roles_file: Option<PathBuf>,
    /// `POLICY_FILE`: the command policy (TOML, see docs/policy.md); `None`: built-in.
    pub policy_file: Option<PathBuf>,
    /// `EXEC_TIMEOUT_MS`: a command's time limit when the request names none.
    pub exec_timeout: Duration,
    /// `EXEC_MAX_TIMEOUT_MS`: the longest time limit a request may ask for.
    pub exec_max_timeout: Duration,
    /// `EXEC_MAX_OUTPUT_BYTES`: output kept per command.
    pub exec_max_output_bytes: usize,
    /// `EXEC_QUEUE_DEPTH`: commands that may wait per session behind the running one.
    pub exec_queue_depth: u32,
    /// `JWT_SECRET`: HS256 signing secret (at least 32 bytes); `None`: a generated key
    /// ring in `DATA_DIR/jwt-keys.toml`.
    pub jwt_secret: Option<Secret>,
    /// `JWT_PREVIOUS_SECRETS`: earlier `JWT_SECRET` values, still accepted for verification.
    pub jwt_previous_secrets: Vec<Secret>,
    /// `JWT_ALGORITHM`: the one algorithm tokens are signed and verified with.
    pub jwt_algorithm: JwtAlgorithm,
    /// `JWT_PRIVATE_KEY_FILE`: PEM private key for RS256, ES256 or EdDSA.
    pub jwt_private_key_file: Option<PathBuf>,
    /// `JWT_PUBLIC_KEY_FILE`: the PEM public key matching `jwt_private_key_file`.
    pub jwt_public_key_file: Option<PathBuf>,
    /// `JWT_PREVIOUS_PUBLIC_KEY_FILES`: public keys of earlier key pairs, verify only.
    pub jwt_previous_public_key_files: Vec<PathBuf>,
    /// `JWT_ISSUER`: the `iss` claim issued and required.
    pub jwt_issuer: String,
    /// `JWT_AUDIENCE`: the `aud` claim issued and required.
    pub jwt_audience: String,
    /// `JWT_LEEWAY`: clock skew tolerated on `exp`, `nbf` and `iat`.
    pub jwt_leeway: Duration,
    /// `TOKEN_TTL`: lifetime of tokens issued at login.
    pub token_ttl: Duration,
    /// `AUTH_TIMEOUT`: how long a connection that came without a token may take to
    /// authenticate with `auth` before it is closed with 4401.
    pub auth_timeout: Duration,
    /// `AUDIT_LOG`: the audit log ([`crate::audit`]); by default `DATA_DIR/audit.jsonl`,
    /// off only when given empty ([`Config::audit_log_path`]).
    pub audit_log: AuditLog,
    /// `AUDIT_MAX_BYTES`: the audit log is rotated before it would grow past this (0: never).
    pub audit_max_bytes: u64,
    /// `AUDIT_KEEP`: rotated audit files kept (`audit.jsonl.1` … `.N`).
    pub audit_keep: usize,
}

/// How tokens are signed (`JWT_ALGORITHM`). Exactly one is accepted at a time, so a token
/// can never choose its own (`alg: none`, HS256 signed with a public key).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with `JWT_SECRET` or the generated key ring.
    #[default]
    #[value(name = "HS256")]
    Hs256,
    /// RSA PKCS#1 v1.5 with SHA-256, keys from PEM files.
    #[value(name = "RS256")]
    Rs256,
    /// ECDSA P-256 with SHA-256, keys from PEM files.
    #[value(name = "ES256")]
    Es256,
    /// Ed25519, keys from PEM files.
    #[value(name = "EdDSA")]
    EdDsa,
}

impl JwtAlgorithm {
    /// The JOSE name, as in a token's `alg` header.
    pub fn name(self) -> &'static str {
        match self {
            JwtAlgorithm::Hs256 => "HS256",
            JwtAlgorithm::Rs256 => "RS256",
            JwtAlgorithm::Es256 => "ES256",
            JwtAlgorithm::EdDsa => "EdDSA",
        }
    }

    /// Whether keys come from PEM files rather than a shared secret.
    pub fn is_asymmetric(self) -> bool {
        self != JwtAlgorithm::Hs256
    }
}

impl std::fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Format of the diagnostic log on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

impl Default for Config {
    /// The `development` preset: the built-in defaults.
    fn default() -> Self {
        Config {
            proxy_port: 8080,
            proxy_host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            max_connections: 1000,
            enable_auth: true,
            enable_ssl: false,
            tls_cert: None,
            tls_key: None,
            tls_reload_interval: Duration::from_secs(5),
            tmux_socket_path: default_socket_dir(
                std::env::var_os("XDG_RUNTIME_DIR").as_deref(),
                &user_tag(),
            ),
            backend_pool_size: 5,
            backends_file: None,
            balance_strategy: BalanceStrategy::default(),
            target_latency: Duration::from_millis(50),
            health_check_interval: Duration::from_secs(1),
            health_probe_timeout: Duration::from_millis(500),
            breaker_failures: 3,
            breaker_cooldown: Duration::from_secs(5),
            restart_backoff: Duration::from_millis(100),
            rate_limit_requests: 100,
            rate_limit_window: Duration::from_secs(60),
            rate_limit_burst: 50,
            rate_limit_roles: Vec::new(),
            rate_limit_close_after: 20,
            connect_rate_limit: 600,
            auth_rate_limit: 20,
            input_bytes_per_second: 256 * 1024,
            input_burst_bytes: 4 * 1024 * 1024,
            abuse_allowlist: Vec::new(),
            max_connections_per_ip: 256,
            max_connections_per_user: 64,
            max_sessions_per_user: 64,
            http_header_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            block_failed_logins: 10,
            block_violations: 50,
            block_window: Duration::from_secs(600),
            block_duration: Duration::from_secs(900),
            redis_url: None,
            redis_host: None,
            redis_port: 6379,
            redis_password: None,
            redis_username: None,
            redis_tls: false,
            redis_tls_ca: None,
            redis_tls_cert: None,
            redis_tls_key: None,
            redis_cluster: false,
            redis_prefix: "tmuxgate".to_owned(),
            enable_metrics: true,
            health_port: 9090,
            allow_insecure_no_auth: false,
            allowed_origins: Vec::new(),
            fleet_urls: Vec::new(),
            trusted_proxies: Vec::new(),
            preset: Preset::Development,
            tmux_bin: PathBuf::from("tmux"),
            default_command: None,
            max_message_bytes: MIB,
            ring_buffer_bytes: MIB,
            history_limit: 10_000,
            snapshot_history_lines: 1000,
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            shutdown_timeout: Duration::from_secs(10),
            hub_linger: Duration::from_secs(10),
            default_cols: 80,
            default_rows: 24,
            log_format: LogFormat::Text,
            data_dir: default_data_dir(
                std::env::var_os("XDG_STATE_HOME").as_deref(),
                std::env::var_os("HOME").as_deref(),
                &user_tag(),
            ),
            users_file: None,
            roles_file: None,
            policy_file: None,
            exec_timeout: Duration::from_secs(30),
            exec_max_timeout: Duration::from_secs(600),
            exec_max_output_bytes: MIB,
            exec_queue_depth: 16,
            jwt_secret: None,
            jwt_previous_secrets: Vec::new(),
            jwt_algorithm: JwtAlgorithm::Hs256,
            jwt_private_key_file: None,
            jwt_public_key_file: None,
            jwt_previous_public_key_files: Vec::new(),
            jwt_issuer: "tmuxgate".to_owned(),
            jwt_audience: "tmuxgate".to_owned(),
            jwt_leeway: Duration::from_secs(30),
            token_ttl: Duration::from_secs(12 * 60 * 60),
            auth_timeout: Duration::from_secs(10),
            audit_log: AuditLog::InDataDir,
            audit_max_bytes: 64 * MIB as u64,
            audit_keep: 10,
        }
    }
}

impl Config {
    /// Defaults for integration tests: one backend, ephemeral ports on
    /// 127.0.0.1, sockets under `socket_dir` (use a fresh temporary directory) and
    /// `DATA_DIR` beside it (`<socket_dir>-state`), never the user's own.
    pub fn for_tests(socket_dir: PathBuf) -> Config {
        let mut data_dir = socket_dir.clone().into_os_string();
        data_dir.push("-state");
        Config {
            data_dir: PathBuf::from(data_dir),
            proxy_port: 0,
            health_port: 0,
            proxy_host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            backend_pool_size: 1,
            tmux_socket_path: socket_dir,
            // Shells without rc files: tests must not depend on (or be slowed by) the
            // machine's interactive shell set-up.
            default_command: Some("exec bash --norc --noprofile".to_owned()),
            // Most tests exercise sessions, not identity; those that do turn it on.
            enable_auth: false,
            // Most tests run many clients from 127.0.0.1 quickly, and some fail logins on
            // purpose: only the abuse tests, from 127.0.0.2 and up, meet the limits by
            // address and blocking.
            abuse_allowlist: "127.0.0.1/32".parse().into_iter().collect(),
            ..Config::default()
        }
    }

    /// `RATE_LIMIT_ROLES` as (role, requests per window); a malformed entry is refused by
    /// [`Config::validate`], and skipped here.
    pub fn role_rate_limits(&self) -> impl Iterator<Item = (&str, u32)> {
        self.rate_limit_roles
            .iter()
            .filter_map(|entry| validate::role_rate_limit(entry).ok())
    }

    /// Address of the WebSocket listener.
    pub fn proxy_addr(&self) -> SocketAddr {
        SocketAddr::new(self.proxy_host, self.proxy_port)
    }

    /// `USERS_FILE`, or `DATA_DIR/users.toml` when unset.
    pub fn users_file_path(&self) -> PathBuf {
        self.users_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("users.toml"))
    }

    /// Address of the health/metrics listener (same host as the proxy).
    pub fn health_addr(&self) -> SocketAddr {
        SocketAddr::new(self.proxy_host, self.health_port)
    }
}

/// `$XDG_RUNTIME_DIR/tmuxgate` when that variable is set (and absolute), else
/// `/tmp/tmuxgate-<user>` like tmux's own `/tmp/tmux-<uid>`.
fn default_socket_dir(xdg_runtime_dir: Option<&OsStr>, user: &str) -> PathBuf {
    match xdg_runtime_dir.map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir.join("tmuxgate"),
        _ => PathBuf::from(format!("/tmp/tmuxgate-{user}")),
    }
}

/// `$XDG_STATE_HOME/tmuxgate`, else `$HOME/.local/state/tmuxgate` (each only when
/// absolute), else `/tmp/tmuxgate-state-<user>`.
fn default_data_dir(xdg_state_home: Option<&OsStr>, home: Option<&OsStr>, user: &str) -> PathBuf {
    let absolute = |dir: Option<&OsStr>| dir.map(PathBuf::from).filter(|d| d.is_absolute());
    if let Some(state) = absolute(xdg_state_home) {
        return state.join("tmuxgate");
    }
    match absolute(home) {
        Some(home) => home.join(".local/state/tmuxgate"),
        None => PathBuf::from(format!("/tmp/tmuxgate-state-{user}")),
    }
}

/// The current user's uid, read without `unsafe` from the owner of
/// `/proc/self`; falls back to `$USER` where `/proc` does not exist.
fn user_tag() -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata("/proc/self") {
        Ok(meta) => meta.uid().to_string(),
        Err(_) => std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned()),
    }
}

/// The message [`Config::validate`] refuses `config` with, or "" when it is valid: the
/// config modules' tests compare messages.
#[cfg(test)]
pub(crate) fn refusal(config: &Config) -> String {
    config
        .validate()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_dir_prefers_xdg_runtime_dir() {
        let dir = default_socket_dir(Some(OsStr::new("/run/user/1000")), "1000");
        assert_eq!(dir, PathBuf::from("/run/user/1000/tmuxgate"));
    }

    #[test]
    fn socket_dir_falls_back_to_tmp_with_user() {
        assert_eq!(
            default_socket_dir(None, "42"),
            PathBuf::from("/tmp/tmuxgate-42")
        );
        let relative = default_socket_dir(Some(OsStr::new("run")), "42");
        assert_eq!(relative, PathBuf::from("/tmp/tmuxgate-42"));
    }

    #[test]
    fn data_dir_prefers_xdg_state_then_home_then_tmp() {
        let dir = |xdg: Option<&str>, home: Option<&str>| {
            default_data_dir(xdg.map(OsStr::new), home.map(OsStr::new), "42")
        };
        let xdg = dir(Some("/var/state"), Some("/home/a"));
        assert_eq!(xdg, PathBuf::from("/var/state/tmuxgate"));
        let home = dir(Some("relative"), Some("/home/a"));
        assert_eq!(home, PathBuf::from("/home/a/.local/state/tmuxgate"));
        assert_eq!(dir(None, None), PathBuf::from("/tmp/tmuxgate-state-42"));
        assert_eq!(dir(None, Some("")), PathBuf::from("/tmp/tmuxgate-state-42"));
    }

    #[test]
    fn users_file_defaults_into_the_data_dir() {
        let mut config = Config::for_tests(PathBuf::from("/tmp/x/sock"));
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x/sock-state"));
        assert_eq!(
            config.users_file_path(),
            PathBuf::from("/tmp/x/sock-state/users.toml")
        );
        config.users_file = Some(PathBuf::from("/etc/tmuxgate/users.toml"));
        assert_eq!(
            config.users_file_path(),
            PathBuf::from("/etc/tmuxgate/users.toml")
        );
    }

    #[test]
    fn user_tag_is_the_uid_of_this_process() {
        use std::os::unix::fs::MetadataExt;
        let here = std::env::temp_dir().join(format!("tmuxgate-uid-{}", std::process::id()));
        std::fs::write(&here, b"").expect("temp file");
        let uid = std::fs::metadata(&here).expect("metadata").uid();
        std::fs::remove_file(&here).expect("cleanup");
        assert_eq!(user_tag(), uid.to_string());
    }

    #[test]
    fn for_tests_uses_ephemeral_ports_and_one_backend() {
        let config = Config::for_tests(PathBuf::from("/tmp/x"));
        assert_eq!((config.proxy_port, config.health_port), (0, 0));
        assert_eq!(config.backend_pool_size, 1);
        assert!(config.proxy_host.is_loopback());
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn default_is_development_and_valid() {
        let config = Config::default();
        assert_eq!(config.preset, Preset::Development);
        assert_eq!(config.proxy_addr().to_string(), "127.0.0.1:8080");
        assert_eq!(config.health_addr().to_string(), "127.0.0.1:9090");
        assert_eq!(config.validate(), Ok(()));
    }
}
