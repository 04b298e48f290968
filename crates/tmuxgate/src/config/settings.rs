//! The settings table: one entry per variable binds a [`Config`] field to its
//! environment variable, its command-line flag and its help text. The macro
//! turns the table into the clap arguments ([`Overrides`]), the code applying
//! them, and the list `tmuxgate config` prints, so the three cannot drift.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use serde_json::Value;

use super::resolve::{Source, Sources};
use super::secret::MASK;
use super::{AuditLog, Config, JwtAlgorithm, LogFormat, Preset, Secret};
use crate::backends::BalanceStrategy;
use crate::cidr::Cidr;
use crate::origin::Origin;

macro_rules! settings {
    ($( $(#[$attr:meta])* $field:ident: $cli:ty = $env:literal, $flag:literal; )*) => {
        /// Values given in the environment or on the command line; `None` means
        /// "not given here". Flattened into every subcommand that reads the config.
        #[derive(clap::Args, Clone, Debug, Default, PartialEq)]
        pub struct Overrides {
            $(
                $(#[$attr])*
                #[arg(long = $flag, env = $env, value_name = $env)]
                pub $field: Option<$cli>,
            )*
        }

        impl Overrides {
            /// Clears every value whose clap argument id (the field name) fails `keep`.
            pub(super) fn retain(&mut self, keep: impl Fn(&str) -> bool) {
                $( if !keep(stringify!($field)) { self.$field = None; } )*
            }

            /// Writes the values present here into `config`, marking them `source`.
            pub(super) fn apply_to(&self, config: &mut Config, sources: &mut Sources, source: Source) {
                $(
                    if let Some(value) = &self.$field {
                        config.$field = FromSetting::from_setting(value.clone());
                        sources.set($env, source);
                    }
                )*
            }
        }

        /// Every variable's name, in the order `tmuxgate config` prints them.
        pub const VARIABLES: &[&str] = &[$($env),*];

        /// Every variable's name and value (secrets masked), in table order.
        pub(super) fn entries(config: &Config) -> Vec<(&'static str, Value)> {
            let mut entries = vec![$( ($env, ToSetting::to_setting(&config.$field)), )*];
            // The file the log goes to, not "unset": unset means DATA_DIR/audit.jsonl.
            for (name, value) in &mut entries {
                if *name == "AUDIT_LOG" {
                    *value = config.audit_log_path().as_ref().map_or(Value::Null, PathBuf::to_setting);
                }
            }
            entries
        }
    };
}

settings! {
    /// WebSocket listener port; 0 picks a free one
    proxy_port: u16 = "PROXY_PORT", "port";
    /// Address of both listeners; non-loopback needs --allow-insecure-no-auth
    proxy_host: IpAddr = "PROXY_HOST", "host";
    /// Concurrent WebSocket connections accepted
    max_connections: usize = "MAX_CONNECTIONS", "max-connections";
    /// Authentication (false is allowed only on loopback or with --allow-insecure-no-auth)
    #[arg(num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    enable_auth: bool = "ENABLE_AUTH", "enable-auth";
    /// Serve HTTPS and WSS on the proxy port (needs TLS_CERT and TLS_KEY)
    #[arg(num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    enable_ssl: bool = "ENABLE_SSL", "enable-ssl";
    /// PEM file with the certificate chain, server certificate first; empty = unset
    #[arg(value_parser = any_path())]
    tls_cert: PathBuf = "TLS_CERT", "tls-cert";
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1); empty = unset
    #[arg(value_parser = any_path())]
    tls_key: PathBuf = "TLS_KEY", "tls-key";
    /// Check TLS_CERT and TLS_KEY for changes this often, in ms (0: only on SIGHUP)
    tls_reload_interval: u64 = "TLS_RELOAD_INTERVAL", "tls-reload-interval";
    /// Directory (created 0700) for the tmux server sockets
    tmux_socket_path: PathBuf = "TMUX_SOCKET_PATH", "tmux-socket-path";
    /// Number of gateway-owned tmux servers (1-64)
    backend_pool_size: usize = "BACKEND_POOL_SIZE", "backend-pool-size";
    /// Backends with weights and labels (TOML); empty = BACKEND_POOL_SIZE uniform ones
    backends_file: String = "BACKENDS_FILE", "backends-file";
    /// How new sessions are spread over the backends
    balance_strategy: BalanceStrategy = "BALANCE_STRATEGY", "balance-strategy";
    /// Backend probe latency (EWMA) above which a backend counts as degraded, in ms
    target_latency: u64 = "TARGET_LATENCY", "target-latency";
    /// Time between health probes of each backend, in ms (10 ms-1 min)
    health_check_interval: u64 = "HEALTH_CHECK_INTERVAL", "health-check-interval";
    /// A health probe not answered within this fails, in ms (10-2000: every backend call's deadline is 2 s)
    health_probe_timeout: u64 = "HEALTH_PROBE_TIMEOUT", "health-probe-timeout";
    /// Failed probes in a row that open a backend's circuit breaker (1-100)
    breaker_failures: u32 = "BREAKER_FAILURES", "breaker-failures";
    /// How long an open circuit breaker waits before a trial probe, in ms (10 ms-1 h)
    breaker_cooldown: u64 = "BREAKER_COOLDOWN", "breaker-cooldown";
    /// First wait before restarting a dead backend, in ms; doubles per failed try, up to 10 s
    restart_backoff: u64 = "RESTART_BACKOFF", "restart-backoff";
    /// Requests per rate-limit window, per user (per address before authentication)
    rate_limit_requests: u32 = "RATE_LIMIT_REQUESTS", "rate-limit-requests";
    /// Rate-limit window, in ms
    rate_limit_window: u64 = "RATE_LIMIT_WINDOW", "rate-limit-window";
    /// Requests allowed at once before the rate applies
    rate_limit_burst: u32 = "RATE_LIMIT_BURST", "rate-limit-burst";
    /// Requests per window for roles: admin=1000,viewer=50 (others: RATE_LIMIT_REQUESTS)
    rate_limit_roles: String = "RATE_LIMIT_ROLES", "rate-limit-roles";
    /// Refused requests in a row that close the connection with 4429
    rate_limit_close_after: u32 = "RATE_LIMIT_CLOSE_AFTER", "rate-limit-close-after";
    /// WebSocket upgrades per client address per minute (0: no limit)
    connect_rate_limit: u32 = "CONNECT_RATE_LIMIT", "connect-rate-limit";
    /// Logins (auth, POST /api/login) per client address per minute (0: no limit)
    auth_rate_limit: u32 = "AUTH_RATE_LIMIT", "auth-rate-limit";
    /// Terminal input per connection, sustained, in bytes per second
    input_bytes_per_second: usize = "INPUT_BYTES_PER_SECOND", "input-bytes-per-second";
    /// Terminal input per connection at once (a paste), in bytes
    input_burst_bytes: usize = "INPUT_BURST_BYTES", "input-burst-bytes";
    /// Client networks never limited by address nor blocked (comma-separated CIDRs)
    #[arg(value_parser = super::validate::parse_trusted_proxies)]
    abuse_allowlist: Networks = "ABUSE_ALLOWLIST", "abuse-allowlist";
    /// Open WebSocket connections per client address (0: no cap)
    max_connections_per_ip: u32 = "MAX_CONNECTIONS_PER_IP", "max-connections-per-ip";
    /// Open authenticated connections per user (0: no cap)
    max_connections_per_user: u32 = "MAX_CONNECTIONS_PER_USER", "max-connections-per-user";
    /// Sessions one user may own (0: no cap)
    max_sessions_per_user: u32 = "MAX_SESSIONS_PER_USER", "max-sessions-per-user";
    /// Time a client has to send a request's headers, in ms (1 s-5 min)
    http_header_timeout: u64 = "HTTP_HEADER_TIMEOUT", "http-header-timeout";
    /// A request's line and headers, at most, in bytes (8 KiB-1 MiB)
    max_header_bytes: usize = "MAX_HEADER_BYTES", "max-header-bytes";
    /// Failed logins from one address within BLOCK_WINDOW that block it (0: never)
    block_failed_logins: u32 = "BLOCK_FAILED_LOGINS", "block-failed-logins";
    /// Rate-limit, protocol and Origin violations within BLOCK_WINDOW that block (0: never)
    block_violations: u32 = "BLOCK_VIOLATIONS", "block-violations";
    /// Window the block thresholds count in, in ms
    block_window: u64 = "BLOCK_WINDOW", "block-window";
    /// First block's length in ms; each repeat doubles it (at most 24 h)
    block_duration: u64 = "BLOCK_DURATION", "block-duration";
    /// Shared store: redis:// or rediss:// URL(s), comma-separated for cluster seeds (never
    /// printed: it may hold a password); empty = unset (the embedded store)
    #[arg(hide_env_values = true)]
    redis_url: Secret = "REDIS_URL", "redis-url";
    /// Redis host, when REDIS_URL is not given; empty = unset
    redis_host: String = "REDIS_HOST", "redis-host";
    /// Redis port
    redis_port: u16 = "REDIS_PORT", "redis-port";
    /// Redis password (never printed); empty = unset
    #[arg(hide_env_values = true)]
    redis_password: Secret = "REDIS_PASSWORD", "redis-password";
    /// Redis ACL user (with REDIS_PASSWORD); empty = unset (the default user)
    redis_username: String = "REDIS_USERNAME", "redis-username";
    /// TLS to Redis (rediss://) for REDIS_HOST
    #[arg(num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    redis_tls: bool = "REDIS_TLS", "redis-tls";
    /// PEM file of the certificate authorities Redis's TLS certificate is checked against
    /// (instead of the system's); empty = unset
    redis_tls_ca: PathBuf = "REDIS_TLS_CA", "redis-tls-ca";
    /// PEM file of this gateway's client certificate for Redis (mutual TLS; with
    /// REDIS_TLS_KEY); empty = unset
    redis_tls_cert: PathBuf = "REDIS_TLS_CERT", "redis-tls-cert";
    /// PEM file of the client certificate's private key; empty = unset
    redis_tls_key: PathBuf = "REDIS_TLS_KEY", "redis-tls-key";
    /// Redis Cluster: the URLs (or REDIS_HOST) are seed nodes
    #[arg(num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    redis_cluster: bool = "REDIS_CLUSTER", "redis-cluster";
    /// Prefix of every Redis key ([a-zA-Z0-9_.-]{1,32})
    redis_prefix: String = "REDIS_PREFIX", "redis-prefix";
    /// Serve /metrics (false: 404)
    #[arg(num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    enable_metrics: bool = "ENABLE_METRICS", "enable-metrics";
    /// Port of /health and /metrics on the proxy host; 0 picks a free one
    health_port: u16 = "HEALTH_PORT", "health-port";
    /// Accept a non-loopback host without authentication
    #[arg(num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    allow_insecure_no_auth: bool = "ALLOW_INSECURE_NO_AUTH", "allow-insecure-no-auth";
    /// Browser origins allowed to open WebSockets, comma-separated scheme://host[:port]
    allowed_origins: String = "ALLOWED_ORIGINS", "allowed-origins";
    /// WebSocket URLs (ws:// or wss://, ending in /ws) of every gateway of the fleet, this one
    /// included, comma-separated: the web UI fails over between them
    fleet_urls: String = "FLEET_URLS", "fleet-urls";
    /// Reverse proxies whose X-Forwarded-* headers are believed, comma-separated IPs or CIDRs
    #[arg(value_parser = super::validate::parse_trusted_proxies)]
    trusted_proxies: Networks = "TRUSTED_PROXIES", "trusted-proxies";
    /// Starting point for every other value
    preset: Preset = "PROXY_PRESET", "preset";
    /// tmux executable
    tmux_bin: PathBuf = "TMUX_BIN", "tmux-bin";
    /// Command new sessions run instead of the login shell (tmux default-command); empty = login shell
    default_command: String = "DEFAULT_COMMAND", "default-command";
    /// Largest WebSocket message accepted, in bytes (1 KiB-64 MiB)
    max_message_bytes: usize = "MAX_MESSAGE_BYTES", "max-message-bytes";
    /// Per-pane output log, in bytes (64 KiB-256 MiB)
    ring_buffer_bytes: usize = "RING_BUFFER_BYTES", "ring-buffer-bytes";
    /// tmux history-limit of gateway-owned servers
    history_limit: u32 = "HISTORY_LIMIT", "history-limit";
    /// Scrollback lines in a pane snapshot (at most HISTORY_LIMIT)
    snapshot_history_lines: u32 = "SNAPSHOT_HISTORY_LINES", "snapshot-history-lines";
    /// WebSocket ping period, in ms (at least 1000)
    ping_interval: u64 = "PING_INTERVAL", "ping-interval";
    /// Close a socket silent this long, in ms (more than PING_INTERVAL)
    idle_timeout: u64 = "IDLE_TIMEOUT", "idle-timeout";
    /// Grace period for connections on shutdown, in ms
    shutdown_timeout: u64 = "SHUTDOWN_TIMEOUT", "shutdown-timeout";
    /// Keep a session's tmux connection this long after its last viewer left, in ms
    hub_linger: u64 = "HUB_LINGER", "hub-linger";
    /// Terminal width before a client reports its size (2-1000)
    default_cols: u16 = "DEFAULT_COLS", "default-cols";
    /// Terminal height before a client reports its size (2-1000)
    default_rows: u16 = "DEFAULT_ROWS", "default-rows";
    /// Diagnostic log format
    log_format: LogFormat = "LOG_FORMAT", "log-format";
    /// Directory (created 0700) for users, generated signing keys and revoked tokens
    data_dir: PathBuf = "DATA_DIR", "data-dir";
    /// Users file (argon2id hashes, roles); empty = DATA_DIR/users.toml
    users_file: String = "USERS_FILE", "users-file";
    /// Custom roles file (TOML); empty = built-in roles only
    roles_file: String = "ROLES_FILE", "roles-file";
    /// Command policy (TOML, reloaded when it changes); empty = the built-in policy
    policy_file: String = "POLICY_FILE", "policy-file";
    /// A command's time limit when the request names none, in ms
    exec_timeout: u64 = "EXEC_TIMEOUT_MS", "exec-timeout-ms";
    /// The longest time limit a request may ask for, in ms
    exec_max_timeout: u64 = "EXEC_MAX_TIMEOUT_MS", "exec-max-timeout-ms";
    /// Output kept per command, in bytes (1 KiB-64 MiB)
    exec_max_output_bytes: usize = "EXEC_MAX_OUTPUT_BYTES", "exec-max-output-bytes";
    /// Commands that may wait per session behind the running one (0-1024)
    exec_queue_depth: u32 = "EXEC_QUEUE_DEPTH", "exec-queue-depth";
    /// HS256 signing secret, at least 32 bytes (never printed); empty = key ring in DATA_DIR
    #[arg(hide_env_values = true)]
    jwt_secret: Secret = "JWT_SECRET", "jwt-secret";
    /// Earlier JWT_SECRET values still accepted, comma-separated (never printed)
    #[arg(hide_env_values = true)]
    jwt_previous_secrets: Secret = "JWT_PREVIOUS_SECRETS", "jwt-previous-secrets";
    /// Token signing algorithm; RS256, ES256 and EdDSA take PEM key files
    jwt_algorithm: JwtAlgorithm = "JWT_ALGORITHM", "jwt-algorithm";
    /// PEM private key (RS256, ES256, EdDSA)
    jwt_private_key_file: String = "JWT_PRIVATE_KEY_FILE", "jwt-private-key-file";
    /// PEM public key matching JWT_PRIVATE_KEY_FILE
    jwt_public_key_file: String = "JWT_PUBLIC_KEY_FILE", "jwt-public-key-file";
    /// PEM public keys of earlier key pairs, still accepted, comma-separated
    jwt_previous_public_key_files: String = "JWT_PREVIOUS_PUBLIC_KEY_FILES", "jwt-previous-public-key-files";
    /// Token issuer (iss), issued and required
    jwt_issuer: String = "JWT_ISSUER", "jwt-issuer";
    /// Token audience (aud), issued and required
    jwt_audience: String = "JWT_AUDIENCE", "jwt-audience";
    /// Clock skew tolerated on token times, in ms (at most 300000)
    jwt_leeway: u64 = "JWT_LEEWAY", "jwt-leeway";
    /// Lifetime of tokens issued at login, in ms (1 min-24 h)
    token_ttl: u64 = "TOKEN_TTL", "token-ttl";
    /// Time a connection without a token has to send a successful auth, in ms (1 s-5 min)
    auth_timeout: u64 = "AUTH_TIMEOUT", "auth-timeout";
    /// Audit log file (JSON lines, hash-chained); unset = DATA_DIR/audit.jsonl, empty = off
    audit_log: String = "AUDIT_LOG", "audit-log";
    /// Rotate the audit log before it grows past this many bytes (0: never)
    audit_max_bytes: u64 = "AUDIT_MAX_BYTES", "audit-max-bytes";
    /// Rotated audit files kept (1-1000)
    audit_keep: usize = "AUDIT_KEEP", "audit-keep";
}

/// `TRUSTED_PROXIES` as read: parsed (and refused with the bad entry named) by clap, so
/// a typo stops start-up instead of silently trusting nobody.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Networks(pub Vec<Cidr>);

impl FromSetting<Networks> for Vec<Cidr> {
    fn from_setting(value: Networks) -> Vec<Cidr> {
        value.0
    }
}

/// A path that may be empty (clap's own path parser refuses empty values; here empty means
/// unset, see `FromSetting<PathBuf> for Option<PathBuf>`).
fn any_path() -> impl clap::builder::TypedValueParser<Value = PathBuf> {
    use clap::builder::TypedValueParser as _;
    clap::builder::OsStringValueParser::new().map(PathBuf::from)
}

/// Converts a parsed command-line value into its `Config` field type.
trait FromSetting<T> {
    fn from_setting(value: T) -> Self;
}

impl<T> FromSetting<T> for T {
    fn from_setting(value: T) -> T {
        value
    }
}

/// Durations are given in milliseconds.
impl FromSetting<u64> for Duration {
    fn from_setting(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }
}

/// An empty value (`REDIS_HOST=`) means unset, as container templates often write.
impl FromSetting<String> for Option<String> {
    fn from_setting(value: String) -> Option<String> {
        Some(value).filter(|v| !v.is_empty())
    }
}

/// A comma-separated list; empty items are dropped and valid origins normalised
/// (`HTTPS://Example.com:443` → `https://example.com`). Invalid ones are kept as given
/// for [`Config::validate`] to name.
impl FromSetting<String> for Vec<String> {
    fn from_setting(value: String) -> Vec<String> {
        let normalise = |item: &str| match item.parse::<Origin>() {
            Ok(origin) => origin.to_string(),
            Err(_) => item.to_owned(),
        };
        value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(normalise)
            .collect()
    }
}

/// An empty path (`TLS_CERT=`) means unset.
impl FromSetting<PathBuf> for Option<PathBuf> {
    fn from_setting(value: PathBuf) -> Option<PathBuf> {
        Some(value).filter(|v| !v.as_os_str().is_empty())
    }
}

/// An empty path means unset.
impl FromSetting<String> for Option<PathBuf> {
    fn from_setting(value: String) -> Option<PathBuf> {
        Some(PathBuf::from(value)).filter(|v| !v.as_os_str().is_empty())
    }
}

/// A comma-separated list of paths; empty items are dropped.
impl FromSetting<String> for Vec<PathBuf> {
    fn from_setting(value: String) -> Vec<PathBuf> {
        value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(PathBuf::from)
            .collect()
    }
}

/// A comma-separated list of secrets; empty items are dropped. Not trimmed: a secret's
/// spaces are part of it.
impl FromSetting<Secret> for Vec<Secret> {
    fn from_setting(value: Secret) -> Vec<Secret> {
        value
            .expose()
            .split(',')
            .filter(|item| !item.is_empty())
            .map(Secret::new)
            .collect()
    }
}

impl FromSetting<Secret> for Option<Secret> {
    fn from_setting(value: Secret) -> Option<Secret> {
        Some(value).filter(|v| !v.expose().is_empty())
    }
}

/// `AUDIT_LOG`: empty turns the log off; anything else names the file.
impl FromSetting<String> for AuditLog {
    fn from_setting(value: String) -> AuditLog {
        match value.is_empty() {
            true => AuditLog::Off,
            false => AuditLog::File(PathBuf::from(value)),
        }
    }
}

/// Renders a `Config` field as the JSON value `tmuxgate config` shows.
trait ToSetting {
    fn to_setting(&self) -> Value;
}

macro_rules! to_setting_as_json {
    ($($ty:ty),*) => {
        $(impl ToSetting for $ty {
            fn to_setting(&self) -> Value {
                Value::from(*self)
            }
        })*
    };
}

to_setting_as_json!(u16, u32, u64, usize, bool);

macro_rules! to_setting_as_string {
    ($($ty:ty),*) => {
        $(impl ToSetting for $ty {
            fn to_setting(&self) -> Value {
                Value::String(self.to_string())
            }
        })*
    };
}

to_setting_as_string!(
    IpAddr,
    Preset,
    LogFormat,
    JwtAlgorithm,
    BalanceStrategy,
    String
);

impl ToSetting for PathBuf {
    fn to_setting(&self) -> Value {
        Value::String(self.display().to_string())
    }
}

/// In milliseconds, like the variable.
impl ToSetting for Duration {
    fn to_setting(&self) -> Value {
        Value::from(u64::try_from(self.as_millis()).unwrap_or(u64::MAX))
    }
}

/// `null` for the default (`DATA_DIR/audit.jsonl`), `""` when off.
impl ToSetting for AuditLog {
    fn to_setting(&self) -> Value {
        match self {
            AuditLog::InDataDir => Value::Null,
            AuditLog::Off => Value::from(""),
            AuditLog::File(path) => path.to_setting(),
        }
    }
}

impl ToSetting for Option<PathBuf> {
    fn to_setting(&self) -> Value {
        self.as_ref().map_or(Value::Null, PathBuf::to_setting)
    }
}

/// A JSON array of paths; printed comma-separated.
impl ToSetting for Vec<PathBuf> {
    fn to_setting(&self) -> Value {
        Value::Array(self.iter().map(PathBuf::to_setting).collect())
    }
}

/// A JSON array of `address/prefix` strings.
impl ToSetting for Vec<Cidr> {
    fn to_setting(&self) -> Value {
        Value::Array(self.iter().map(|n| Value::String(n.to_string())).collect())
    }
}

/// Masked as a whole: not even the number of secrets is shown.
impl ToSetting for Vec<Secret> {
    fn to_setting(&self) -> Value {
        match self.is_empty() {
            true => Value::Null,
            false => Value::from(MASK),
        }
    }
}

impl ToSetting for Option<String> {
    fn to_setting(&self) -> Value {
        self.as_deref().map_or(Value::Null, Value::from)
    }
}

/// A JSON array; `tmuxgate config` prints it comma-separated like the variable.
impl ToSetting for Vec<String> {
    fn to_setting(&self) -> Value {
        Value::from(self.clone())
    }
}

impl ToSetting for Option<Secret> {
    fn to_setting(&self) -> Value {
        self.as_ref().map_or(Value::Null, |_| Value::from(MASK))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// A command with just the settings and environment lookups switched off,
    /// so tests never depend on the process environment.
    #[derive(Parser)]
    struct Only {
        #[command(flatten)]
        settings: Overrides,
    }

    fn parse(args: &[&str]) -> Result<Overrides, clap::Error> {
        let command = Only::command().mut_args(|arg| arg.env(None));
        let matches = command
            .try_get_matches_from(std::iter::once("tmuxgate").chain(args.iter().copied()))?;
        <Overrides as clap::FromArgMatches>::from_arg_matches(&matches)
    }

    #[test]
    fn every_variable_has_a_flag_and_is_listed_once() {
        let command = Only::command();
        assert_eq!(command.get_arguments().count(), VARIABLES.len());
        for arg in command.get_arguments() {
            let env = arg.get_env().and_then(|e| e.to_str()).unwrap_or_default();
            assert!(VARIABLES.contains(&env), "{env}");
            let value_name = arg.get_value_names().map(|names| names[0].to_string());
            assert_eq!(
                value_name.as_deref(),
                Some(env),
                "value_name names the variable"
            );
        }
        let mut unique = VARIABLES.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), VARIABLES.len());
    }

    #[test]
    fn switches_take_an_optional_boolean() -> Result<(), clap::Error> {
        let parsed = parse(&[
            "--enable-auth",
            "--enable-metrics=no",
            "--allow-insecure-no-auth=1",
        ])?;
        assert_eq!(parsed.enable_auth, Some(true));
        assert_eq!(parsed.enable_metrics, Some(false));
        assert_eq!(parsed.allow_insecure_no_auth, Some(true));
        assert_eq!(parsed.enable_ssl, None);
        Ok(())
    }

    #[test]
    fn bad_numbers_are_reported_with_the_variable_name() {
        let err = parse(&["--backend-pool-size", "many"])
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("BACKEND_POOL_SIZE")));
    }

    #[test]
    fn conversions_apply_units_and_empty_means_unset() -> Result<(), clap::Error> {
        let parsed = parse(&[
            "--ping-interval",
            "1500",
            "--redis-host=",
            "--redis-password",
            "",
            "--tls-cert=",
            "--tls-key",
            "/etc/tmuxgate/key.pem",
        ])?;
        let mut config = Config::default();
        parsed.apply_to(&mut config, &mut Sources::default(), Source::Flag);
        assert_eq!(config.ping_interval, Duration::from_millis(1500));
        assert_eq!(config.redis_host, None);
        assert_eq!(config.redis_password, None);
        assert_eq!(config.tls_cert, None);
        assert_eq!(config.tls_key, Some(PathBuf::from("/etc/tmuxgate/key.pem")));
        Ok(())
    }

    #[test]
    fn origins_are_split_trimmed_and_normalised() -> Result<(), clap::Error> {
        let given = "HTTPS://Term.Example.com:443, http://127.0.0.1:3000,,not an origin";
        let parsed = parse(&["--allowed-origins", given])?;
        let mut config = Config::default();
        parsed.apply_to(&mut config, &mut Sources::default(), Source::Flag);
        let expected = [
            "https://term.example.com",
            "http://127.0.0.1:3000",
            "not an origin",
        ];
        assert_eq!(config.allowed_origins, expected);
        let cleared = parse(&["--allowed-origins="])?;
        cleared.apply_to(&mut config, &mut Sources::default(), Source::Flag);
        assert!(config.allowed_origins.is_empty());
        Ok(())
    }

    #[test]
    fn fleet_urls_are_split_and_trimmed_but_kept_as_given() -> Result<(), clap::Error> {
        let given = " ws://10.0.0.1:8080/ws,,WSS://Term.Example.com/tmux/ws ";
        let parsed = parse(&["--fleet-urls", given])?;
        let mut config = Config::default();
        parsed.apply_to(&mut config, &mut Sources::default(), Source::Flag);
        let expected = ["ws://10.0.0.1:8080/ws", "WSS://Term.Example.com/tmux/ws"];
        assert_eq!(config.fleet_urls, expected);
        let value = entries(&config)
            .into_iter()
            .find(|(n, _)| *n == "FLEET_URLS");
        assert_eq!(value.map(|(_, v)| v), Some(serde_json::json!(expected)));
        Ok(())
    }

    #[test]
    fn trusted_proxies_are_parsed_when_read() -> Result<(), clap::Error> {
        let parsed = parse(&["--trusted-proxies", "127.0.0.1, ::1/128"])?;
        let mut config = Config::default();
        parsed.apply_to(&mut config, &mut Sources::default(), Source::Flag);
        let shown: Vec<String> = config.trusted_proxies.iter().map(Cidr::to_string).collect();
        assert_eq!(shown, ["127.0.0.1/32", "::1/128"]);
        let value = entries(&config)
            .into_iter()
            .find(|(n, _)| *n == "TRUSTED_PROXIES");
        let expected = serde_json::json!(["127.0.0.1/32", "::1/128"]);
        assert_eq!(value.map(|(_, v)| v), Some(expected));
        let refused = parse(&["--trusted-proxies", "10.0.0.1/8"]).err();
        let message = refused.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("invalid TRUSTED_PROXIES=10.0.0.1/8"),
            "{message}"
        );
        Ok(())
    }

    #[test]
    fn entries_mask_the_secrets() {
        let config = Config {
            redis_password: Some(Secret::new("hunter2")),
            jwt_secret: Some(Secret::new("a-jwt-secret-of-at-least-32-bytes!")),
            jwt_previous_secrets: vec![Secret::new("an-older-secret-of-32-bytes-or-more")],
            ..Config::default()
        };
        let entries = entries(&config);
        let value = |variable: &str| {
            let found = entries.iter().find(|(name, _)| *name == variable);
            found.map(|(_, value)| value.clone())
        };
        for variable in ["REDIS_PASSWORD", "JWT_SECRET", "JWT_PREVIOUS_SECRETS"] {
            assert_eq!(value(variable), Some(Value::from("***")), "{variable}");
        }
        let all = serde_json::to_string(&entries).unwrap_or_default();
        assert!(
            !all.contains("hunter2") && !all.contains("secret-of"),
            "{all}"
        );
    }

    #[test]
    fn secret_and_path_lists_split_on_commas() -> Result<(), clap::Error> {
        let parsed = parse(&[
            "--jwt-previous-secrets",
            "first secret,,second",
            "--jwt-previous-public-key-files",
            "/k/a.pem, /k/b.pem,",
            "--users-file=",
            "--jwt-algorithm",
            "EdDSA",
        ])?;
        let mut config = Config::default();
        parsed.apply_to(&mut config, &mut Sources::default(), Source::Flag);
        let secrets: Vec<&str> = config
            .jwt_previous_secrets
            .iter()
            .map(Secret::expose)
            .collect();
        assert_eq!(secrets, ["first secret", "second"]);
        let files = [PathBuf::from("/k/a.pem"), PathBuf::from("/k/b.pem")];
        assert_eq!(config.jwt_previous_public_key_files, files);
        assert_eq!(config.users_file, None);
        assert_eq!(config.jwt_algorithm, JwtAlgorithm::EdDsa);
        assert!(parse(&["--jwt-algorithm", "none"]).is_err());
        Ok(())
    }
}
