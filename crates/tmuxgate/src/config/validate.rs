//! [`Config::validate`] and [`ConfigError`]: every rule a configuration must
//! satisfy before the gateway starts. Each error names the variable to fix.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use super::settings::Networks;
use super::{Config, KIB, MIB};
use crate::cidr::Cidr;
use crate::origin::Origin;

/// Unix socket paths must stay shorter than this (`sun_path` is 104–108 bytes).
pub const SOCKET_PATH_LIMIT_BYTES: usize = 100;
/// Longest socket file name the gateway creates inside `tmux_socket_path`.
pub const MAX_SOCKET_NAME_BYTES: usize = 16;
/// Upper bound of every duration: keeps `Instant` arithmetic far from overflow.
pub(super) const MAX_DURATION_MS: u64 = 24 * 60 * 60 * 1000;
/// Largest `JWT_LEEWAY`: more tolerance than this is a broken clock, not skew.
const MAX_LEEWAY_MS: u64 = 5 * 60 * 1000;
/// Shortest `TOKEN_TTL`: a login must outlive its own round trip.
const MIN_TOKEN_TTL_MS: u64 = 60 * 1000;

/// Why a configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A value outside its allowed range, or inconsistent with another value.
    #[error("invalid {variable}={value}: {reason}")]
    Invalid {
        /// The environment variable to fix.
        variable: &'static str,
        /// The offending value as given (durations in ms).
        value: String,
        /// The rule it breaks.
        reason: String,
    },
    /// A feature that is configurable but not implemented yet.
    #[error("{setting} is not yet supported: {reason}")]
    Unsupported {
        /// The setting as the user wrote it, e.g. `ENABLE_AUTH=true`.
        setting: &'static str,
        /// When it arrives.
        reason: &'static str,
    },
    /// A production preset listening beyond loopback without TLS.
    #[error(
        "PROXY_PRESET={preset} with PROXY_HOST={host} would send terminals and credentials \
         in clear text: set ENABLE_SSL=true with TLS_CERT and TLS_KEY, or bind a loopback \
         address behind a TLS-terminating reverse proxy"
    )]
    PlaintextExposure {
        /// The production-grade preset in force.
        preset: super::Preset,
        /// The configured `proxy_host`.
        host: IpAddr,
    },
    /// Listening beyond loopback without authentication, not explicitly allowed.
    #[error(
        "PROXY_HOST={host} accepts remote clients but authentication is off: \
         enable authentication (ENABLE_AUTH, arriving in a later release) or pass \
         --allow-insecure-no-auth (ALLOW_INSECURE_NO_AUTH=true) to accept that \
         anyone who reaches this address controls the terminals"
    )]
    InsecureBind {
        /// The configured `proxy_host`.
        host: IpAddr,
    },
}

/// One numeric rule: variable, value, allowed range and unit for the message.
struct Bound(&'static str, u64, RangeInclusive<u64>, &'static str);

impl Config {
    /// Checks every rule of `docs/configuration.md`; the first broken one is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_unsupported()?;
        for Bound(variable, value, range, unit) in self.bounds() {
            check_range(variable, value, &range, unit)?;
        }
        self.check_relations()?;
        self.check_paths()?;
        self.check_origins()?;
        self.check_fleet_urls()?;
        self.check_tls()?;
        self.check_identity()?;
        self.check_audit()?;
        self.check_exposure()
    }

    fn check_unsupported(&self) -> Result<(), ConfigError> {
        self.check_redis()
    }

    /// The shared store's settings: URLs that parse (never echoed: they may hold a
    /// password), not both `REDIS_URL` and `REDIS_HOST`, a plain key prefix.
    fn check_redis(&self) -> Result<(), ConfigError> {
        let invalid = |variable, value: &str, reason: &str| {
            Err(ConfigError::Invalid {
                variable,
                value: value.to_owned(),
                reason: reason.to_owned(),
            })
        };
        if self.redis_url.is_some() && self.redis_host.is_some() {
            return invalid(
                "REDIS_HOST",
                self.redis_host.as_deref().unwrap_or(""),
                "give REDIS_URL or REDIS_HOST, not both",
            );
        }
        if let Some(url) = &self.redis_url {
            for part in url.expose().split(',').map(str::trim) {
                let scheme_ok = part.starts_with("redis://") || part.starts_with("rediss://");
                let parses = redis::IntoConnectionInfo::into_connection_info(part).is_ok();
                if !scheme_ok || !parses {
                    return invalid(
                        "REDIS_URL",
                        "***",
                        "each comma-separated item must be a redis:// or rediss:// URL",
                    );
                }
            }
        }
        if self.redis_tls_cert.is_some() != self.redis_tls_key.is_some() {
            let given = if self.redis_tls_cert.is_some() {
                "REDIS_TLS_CERT"
            } else {
                "REDIS_TLS_KEY"
            };
            return invalid(
                given,
                "(set)",
                "REDIS_TLS_CERT and REDIS_TLS_KEY go together",
            );
        }
        let prefix_ok = (1..=32).contains(&self.redis_prefix.len())
            && self
                .redis_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !prefix_ok {
            return invalid(
                "REDIS_PREFIX",
                &self.redis_prefix,
                "must match [a-zA-Z0-9_.-]{1,32}",
            );
        }
        Ok(())
    }

    fn bounds(&self) -> [Bound; 35] {
        let at_most_a_day = 0..=MAX_DURATION_MS;
        [
            Bound(
                "MAX_CONNECTIONS",
                count(self.max_connections),
                1..=1_000_000,
                "",
            ),
            Bound(
                "BACKEND_POOL_SIZE",
                count(self.backend_pool_size),
                1..=64,
                "",
            ),
            Bound(
                "TARGET_LATENCY",
                ms(self.target_latency),
                1..=MAX_DURATION_MS,
                " ms",
            ),
            Bound(
                "HEALTH_CHECK_INTERVAL",
                ms(self.health_check_interval),
                10..=60_000,
                " ms",
            ),
            Bound(
                "HEALTH_PROBE_TIMEOUT",
                ms(self.health_probe_timeout),
                10..=2_000,
                " ms",
            ),
            Bound(
                "BREAKER_FAILURES",
                self.breaker_failures.into(),
                1..=100,
                "",
            ),
            Bound(
                "BREAKER_COOLDOWN",
                ms(self.breaker_cooldown),
                10..=3_600_000,
                " ms",
            ),
            Bound(
                "RESTART_BACKOFF",
                ms(self.restart_backoff),
                10..=10_000,
                " ms",
            ),
            Bound(
                "RATE_LIMIT_REQUESTS",
                self.rate_limit_requests.into(),
                1..=u64::MAX,
                "",
            ),
            Bound(
                "RATE_LIMIT_WINDOW",
                ms(self.rate_limit_window),
                1..=MAX_DURATION_MS,
                " ms",
            ),
            Bound("REDIS_PORT", self.redis_port.into(), 1..=u64::MAX, ""),
            Bound(
                "MAX_MESSAGE_BYTES",
                count(self.max_message_bytes),
                bytes(KIB..=64 * MIB),
                " bytes",
            ),
            Bound(
                "RING_BUFFER_BYTES",
                count(self.ring_buffer_bytes),
                bytes(64 * KIB..=256 * MIB),
                " bytes",
            ),
            Bound(
                "HISTORY_LIMIT",
                self.history_limit.into(),
                0..=i32::MAX as u64,
                " lines",
            ),
            Bound(
                "PING_INTERVAL",
                ms(self.ping_interval),
                1000..=MAX_DURATION_MS,
                " ms",
            ),
            Bound(
                "IDLE_TIMEOUT",
                ms(self.idle_timeout),
                at_most_a_day.clone(),
                " ms",
            ),
            Bound(
                "SHUTDOWN_TIMEOUT",
                ms(self.shutdown_timeout),
                at_most_a_day.clone(),
                " ms",
            ),
            Bound(
                "HUB_LINGER",
                ms(self.hub_linger),
                at_most_a_day.clone(),
                " ms",
            ),
            Bound(
                "EXEC_TIMEOUT_MS",
                ms(self.exec_timeout),
                1..=ms(self.exec_max_timeout).max(1),
                " ms (at most EXEC_MAX_TIMEOUT_MS)",
            ),
            Bound(
                "EXEC_MAX_TIMEOUT_MS",
                ms(self.exec_max_timeout),
                at_most_a_day,
                " ms",
            ),
            Bound(
                "EXEC_MAX_OUTPUT_BYTES",
                count(self.exec_max_output_bytes),
                bytes(KIB..=64 * MIB),
                " bytes",
            ),
            Bound(
                "EXEC_QUEUE_DEPTH",
                self.exec_queue_depth.into(),
                0..=1024,
                "",
            ),
            Bound("DEFAULT_COLS", self.default_cols.into(), 2..=1000, ""),
            Bound("DEFAULT_ROWS", self.default_rows.into(), 2..=1000, ""),
            Bound("JWT_LEEWAY", ms(self.jwt_leeway), 0..=MAX_LEEWAY_MS, " ms"),
            Bound(
                "TOKEN_TTL",
                ms(self.token_ttl),
                MIN_TOKEN_TTL_MS..=MAX_DURATION_MS,
                " ms",
            ),
            Bound(
                "AUTH_TIMEOUT",
                ms(self.auth_timeout),
                1_000..=300_000,
                " ms",
            ),
            Bound(
                "RATE_LIMIT_BURST",
                self.rate_limit_burst.into(),
                1..=u64::MAX,
                "",
            ),
            Bound(
                "RATE_LIMIT_CLOSE_AFTER",
                self.rate_limit_close_after.into(),
                1..=u64::MAX,
                "",
            ),
            Bound(
                "INPUT_BYTES_PER_SECOND",
                count(self.input_bytes_per_second),
                bytes(KIB..=1024 * MIB),
                " bytes",
            ),
            Bound(
                "INPUT_BURST_BYTES",
                count(self.input_burst_bytes),
                bytes(KIB..=1024 * MIB),
                " bytes",
            ),
            Bound(
                "HTTP_HEADER_TIMEOUT",
                ms(self.http_header_timeout),
                1_000..=300_000,
                " ms",
            ),
            Bound(
                "MAX_HEADER_BYTES",
                count(self.max_header_bytes),
                bytes(8 * KIB..=MIB),
                " bytes",
            ),
            Bound(
                "BLOCK_WINDOW",
                ms(self.block_window),
                1_000..=MAX_DURATION_MS,
                " ms",
            ),
            Bound(
                "BLOCK_DURATION",
                ms(self.block_duration),
                1_000..=MAX_DURATION_MS,
                " ms",
            ),
        ]
    }

    fn check_relations(&self) -> Result<(), ConfigError> {
        for entry in &self.rate_limit_roles {
            if let Err(reason) = role_rate_limit(entry) {
                return invalid("RATE_LIMIT_ROLES", entry, reason);
            }
        }
        if self.snapshot_history_lines > self.history_limit {
            let reason = format!("must not exceed HISTORY_LIMIT ({})", self.history_limit);
            return invalid(
                "SNAPSHOT_HISTORY_LINES",
                self.snapshot_history_lines,
                reason,
            );
        }
        if self.idle_timeout <= self.ping_interval {
            let reason = format!(
                "must be longer than PING_INTERVAL ({} ms)",
                ms(self.ping_interval)
            );
            return invalid("IDLE_TIMEOUT", ms(self.idle_timeout), reason);
        }
        if self.health_port != 0 && self.health_port == self.proxy_port {
            return invalid(
                "HEALTH_PORT",
                self.health_port,
                "must differ from PROXY_PORT".to_owned(),
            );
        }
        Ok(())
    }

    fn check_paths(&self) -> Result<(), ConfigError> {
        let dir = &self.tmux_socket_path;
        let shown = dir.display();
        if !dir.is_absolute() {
            return invalid(
                "TMUX_SOCKET_PATH",
                shown,
                "must be an absolute path".to_owned(),
            );
        }
        let longest = SOCKET_PATH_LIMIT_BYTES - 2 - MAX_SOCKET_NAME_BYTES;
        let length = dir.as_os_str().as_bytes().len();
        if length > longest {
            let reason = format!(
                "is {length} bytes; at most {longest} keeps the sockets inside under \
                 {SOCKET_PATH_LIMIT_BYTES} bytes"
            );
            return invalid("TMUX_SOCKET_PATH", shown, reason);
        }
        if self.tmux_bin.as_os_str().is_empty() {
            return invalid("TMUX_BIN", "", "must name the tmux executable".to_owned());
        }
        if let Some(command) = &self.default_command
            && command.chars().any(char::is_control)
        {
            return invalid(
                "DEFAULT_COMMAND",
                "…",
                "must not contain control characters".to_owned(),
            );
        }
        Ok(())
    }

    fn check_origins(&self) -> Result<(), ConfigError> {
        for entry in &self.allowed_origins {
            if let Err(malformed) = entry.parse::<Origin>() {
                return invalid("ALLOWED_ORIGINS", entry, malformed.to_string());
            }
        }
        Ok(())
    }

    fn check_fleet_urls(&self) -> Result<(), ConfigError> {
        for entry in &self.fleet_urls {
            if let Err(reason) = fleet_url(entry) {
                return invalid("FLEET_URLS", entry, reason);
            }
        }
        Ok(())
    }

    fn check_exposure(&self) -> Result<(), ConfigError> {
        let exposed = !self.proxy_host.to_canonical().is_loopback();
        if exposed && !self.enable_auth && !self.allow_insecure_no_auth {
            return Err(ConfigError::InsecureBind {
                host: self.proxy_host,
            });
        }
        Ok(())
    }
}

/// Parses `TRUSTED_PROXIES`: comma-separated IP addresses or `address/prefix` networks,
/// empty items dropped. The first bad entry is named in the error.
pub(super) fn parse_trusted_proxies(text: &str) -> Result<Networks, ConfigError> {
    let mut networks = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        match entry.parse::<Cidr>() {
            Ok(network) => networks.push(network),
            Err(malformed) => {
                return Err(ConfigError::Invalid {
                    variable: "TRUSTED_PROXIES",
                    value: entry.to_owned(),
                    reason: malformed.to_string(),
                });
            }
        }
    }
    Ok(Networks(networks))
}

/// One `FLEET_URLS` entry: an absolute `ws://` or `wss://` URL whose path ends in `/ws`,
/// without user name, query or fragment; a browser opens it as it is.
fn fleet_url(entry: &str) -> Result<(), String> {
    const SHAPE: &str = "must be an absolute ws:// or wss:// URL ending in /ws";
    let (scheme, rest) = entry.split_once("://").ok_or(SHAPE)?;
    let websocket = ["ws", "wss"].iter().any(|s| scheme.eq_ignore_ascii_case(s));
    let (authority, path) = rest.split_once('/').filter(|_| websocket).ok_or(SHAPE)?;
    if authority.contains('@') {
        return Err("a fleet URL has no user name or password".to_owned());
    }
    // Unreserved characters and percent-escapes only: the URL also goes into the page's CSP.
    let plain =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '/' | '%');
    if !path.chars().all(plain) {
        let reason = "no query or fragment; the path takes letters, digits, -._~/ and %XX";
        return Err(reason.to_owned());
    }
    if path.rsplit('/').next() != Some("ws") {
        return Err(SHAPE.to_owned());
    }
    crate::origin::parse_authority(authority).map_err(|malformed| malformed.to_string())?;
    Ok(())
}

fn check_range(
    variable: &'static str,
    value: u64,
    range: &RangeInclusive<u64>,
    unit: &str,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        return Ok(());
    }
    let (low, high) = (range.start(), range.end());
    let reason = match *high {
        u64::MAX => format!("must be at least {low}{unit}"),
        _ => format!("must be between {low} and {high}{unit}"),
    };
    invalid(variable, value, reason)
}

/// One `RATE_LIMIT_ROLES` entry, `role=N` with N ≥ 1.
pub(super) fn role_rate_limit(entry: &str) -> Result<(&str, u32), String> {
    let (role, count) = entry
        .split_once('=')
        .ok_or_else(|| "expected role=requests".to_owned())?;
    let role = role.trim();
    role.parse::<crate::security::RoleName>()
        .map_err(|e| format!("{role}: {e}"))?;
    match count.trim().parse::<u32>() {
        Ok(count) if count >= 1 => Ok((role, count)),
        _ => Err(format!("{role}: requests must be a whole number ≥ 1")),
    }
}

pub(super) fn invalid(
    variable: &'static str,
    value: impl ToString,
    reason: String,
) -> Result<(), ConfigError> {
    let value = value.to_string();
    Err(ConfigError::Invalid {
        variable,
        value,
        reason,
    })
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

pub(super) fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn bytes(range: RangeInclusive<usize>) -> RangeInclusive<u64> {
    count(*range.start())..=count(*range.end())
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::path::PathBuf;

    use super::*;

    fn base() -> Config {
        Config::for_tests(PathBuf::from("/tmp/tmuxgate-test"))
    }

    /// Validates `base()` changed by `change`; returns the error message.
    fn error(change: impl FnOnce(&mut Config)) -> String {
        let mut config = base();
        change(&mut config);
        crate::config::refusal(&config)
    }

    #[test]
    fn base_is_valid() {
        assert_eq!(base().validate(), Ok(()));
    }

    #[test]
    fn redis_settings_are_checked_without_echoing_the_url() {
        assert_eq!(
            error(|c| c.redis_url = Some(crate::config::Secret::new("http://u:hunter2@h"))),
            "invalid REDIS_URL=***: each comma-separated item must be a redis:// or rediss:// URL"
        );
        assert!(
            error(|c| {
                c.redis_url = Some(crate::config::Secret::new("redis://h"));
                c.redis_host = Some("h".into());
            })
            .contains("not both")
        );
        assert!(error(|c| c.redis_prefix = "a b".into()).contains("REDIS_PREFIX"));
        let mut ok = base();
        ok.redis_url = Some(crate::config::Secret::new(
            "redis://:pw@10.0.0.1:6379, rediss://10.0.0.2",
        ));
        assert_eq!(ok.validate(), Ok(()));
    }

    #[test]
    fn pool_size_message_names_the_variable() {
        assert_eq!(
            error(|c| c.backend_pool_size = 0),
            "invalid BACKEND_POOL_SIZE=0: must be between 1 and 64"
        );
        assert!(error(|c| c.backend_pool_size = 65).starts_with("invalid BACKEND_POOL_SIZE=65"));
        assert_eq!(error(|c| c.backend_pool_size = 64), "");
    }

    /// Expected `VARIABLE=value` prefix and the change that should produce it.
    type Case = (&'static str, fn(&mut Config));

    #[test]
    fn role_rate_limits_are_role_equals_a_positive_count() {
        let roles = |entries: &[&str]| {
            error(|c| c.rate_limit_roles = entries.iter().map(|e| e.to_string()).collect())
        };
        assert_eq!(roles(&["admin=1000", "viewer=5"]), "");
        assert!(roles(&["admin"]).contains("expected role=requests"));
        assert!(roles(&["admin=0"]).contains("≥ 1"));
        assert!(roles(&["Bad Role=5"]).starts_with("invalid RATE_LIMIT_ROLES=Bad Role=5"));
    }

    #[test]
    fn every_numeric_bound_is_enforced() {
        let cases: [Case; 25] = [
            ("JWT_LEEWAY=300001", |c| {
                c.jwt_leeway = Duration::from_millis(MAX_LEEWAY_MS + 1)
            }),
            ("TOKEN_TTL=59999", |c| {
                c.token_ttl = Duration::from_millis(59_999)
            }),
            ("TOKEN_TTL=86400001", |c| {
                c.token_ttl = Duration::from_millis(MAX_DURATION_MS + 1)
            }),
            ("MAX_CONNECTIONS=0", |c| c.max_connections = 0),
            ("TARGET_LATENCY=0", |c| c.target_latency = Duration::ZERO),
            ("HEALTH_CHECK_INTERVAL=9", |c| {
                c.health_check_interval = Duration::from_millis(9)
            }),
            ("HEALTH_PROBE_TIMEOUT=2001", |c| {
                c.health_probe_timeout = Duration::from_millis(2_001)
            }),
            ("BREAKER_FAILURES=0", |c| c.breaker_failures = 0),
            ("RESTART_BACKOFF=10001", |c| {
                c.restart_backoff = Duration::from_millis(10_001)
            }),
            ("BREAKER_COOLDOWN=0", |c| {
                c.breaker_cooldown = Duration::ZERO
            }),
            ("RATE_LIMIT_REQUESTS=0", |c| c.rate_limit_requests = 0),
            ("RATE_LIMIT_WINDOW=0", |c| {
                c.rate_limit_window = Duration::ZERO
            }),
            ("REDIS_PORT=0", |c| c.redis_port = 0),
            ("MAX_MESSAGE_BYTES=1023", |c| c.max_message_bytes = 1023),
            ("MAX_MESSAGE_BYTES=67108865", |c| {
                c.max_message_bytes = 64 * MIB + 1
            }),
            ("RING_BUFFER_BYTES=65535", |c| {
                c.ring_buffer_bytes = 64 * KIB - 1
            }),
            ("RING_BUFFER_BYTES=268435457", |c| {
                c.ring_buffer_bytes = 256 * MIB + 1
            }),
            ("HISTORY_LIMIT=2147483648", |c| c.history_limit = 1 << 31),
            ("PING_INTERVAL=999", |c| {
                c.ping_interval = Duration::from_millis(999)
            }),
            ("IDLE_TIMEOUT=86400001", |c| {
                c.idle_timeout = Duration::from_millis(MAX_DURATION_MS + 1)
            }),
            ("SHUTDOWN_TIMEOUT=86400001", |c| {
                c.shutdown_timeout = Duration::from_millis(MAX_DURATION_MS + 1)
            }),
            ("DEFAULT_COLS=1", |c| c.default_cols = 1),
            ("DEFAULT_COLS=1001", |c| c.default_cols = 1001),
            ("DEFAULT_ROWS=1", |c| c.default_rows = 1),
            ("DEFAULT_ROWS=1001", |c| c.default_rows = 1001),
        ];
        for (expected, change) in cases {
            let message = error(change);
            assert!(
                message.starts_with(&format!("invalid {expected}: must be")),
                "{expected}: {message}"
            );
        }
    }

    #[test]
    fn bounds_are_inclusive() {
        let mut config = base();
        config.max_message_bytes = KIB;
        config.ring_buffer_bytes = 256 * MIB;
        config.ping_interval = Duration::from_millis(1000);
        config.default_cols = 1000;
        config.default_rows = 2;
        config.shutdown_timeout = Duration::ZERO;
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn snapshot_lines_cannot_exceed_history() {
        let message = error(|c| c.snapshot_history_lines = c.history_limit + 1);
        assert_eq!(
            message,
            "invalid SNAPSHOT_HISTORY_LINES=10001: must not exceed HISTORY_LIMIT (10000)"
        );
        assert_eq!(error(|c| c.snapshot_history_lines = c.history_limit), "");
    }

    #[test]
    fn idle_timeout_must_exceed_ping_interval() {
        let message = error(|c| c.idle_timeout = c.ping_interval);
        assert_eq!(
            message,
            "invalid IDLE_TIMEOUT=30000: must be longer than PING_INTERVAL (30000 ms)"
        );
    }

    #[test]
    fn health_port_must_differ_from_proxy_port_unless_ephemeral() {
        let message = error(|c| (c.proxy_port, c.health_port) = (8080, 8080));
        assert!(message.starts_with("invalid HEALTH_PORT=8080"), "{message}");
        assert_eq!(error(|c| (c.proxy_port, c.health_port) = (0, 0)), "");
    }

    #[test]
    fn socket_dir_must_be_absolute_and_short() {
        assert!(error(|c| c.tmux_socket_path = "run/tmuxgate".into()).contains("absolute"));
        let longest = format!(
            "/{}",
            "d".repeat(SOCKET_PATH_LIMIT_BYTES - 3 - MAX_SOCKET_NAME_BYTES)
        );
        assert_eq!(error(|c| c.tmux_socket_path = longest.clone().into()), "");
        let message = error(|c| c.tmux_socket_path = format!("{longest}x").into());
        assert!(
            message.starts_with("invalid TMUX_SOCKET_PATH=/ddd"),
            "{message}"
        );
        assert!(message.contains("at most 82"), "{message}");
    }

    #[test]
    fn tmux_bin_must_not_be_empty() {
        assert!(error(|c| c.tmux_bin = PathBuf::new()).starts_with("invalid TMUX_BIN="));
    }

    #[test]
    fn allowed_origins_must_be_scheme_host_and_port() {
        let origins = |list: &[&str]| {
            let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
            error(move |c| c.allowed_origins = list)
        };
        assert_eq!(
            origins(&["https://term.example.com", "http://[::1]:3000"]),
            ""
        );
        assert_eq!(
            origins(&["https://ok.example", "https://term.example.com/app"]),
            "invalid ALLOWED_ORIGINS=https://term.example.com/app: an origin has no path, \
             query or fragment: scheme://host[:port]"
        );
        for bad in [
            "*",
            "null",
            "term.example.com",
            "ftp://x.example",
            "https://x:99999",
        ] {
            assert!(
                origins(&[bad]).starts_with(&format!("invalid ALLOWED_ORIGINS={bad}: ")),
                "{bad}"
            );
        }
    }

    #[test]
    fn fleet_urls_must_be_websocket_urls_ending_in_ws() {
        let fleet = |list: &[&str]| {
            let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
            error(move |c| c.fleet_urls = list)
        };
        let good = [
            "ws://127.0.0.1:8080/ws",
            "wss://term.example.com/ws",
            "WSS://[::1]:8443/tmux/ws",
        ];
        assert_eq!(fleet(&good), "");
        assert_eq!(
            fleet(&["ws://a.example/ws", "http://b.example/ws"]),
            "invalid FLEET_URLS=http://b.example/ws: must be an absolute ws:// or wss:// URL \
             ending in /ws"
        );
        for bad in [
            "b.example/ws",
            "ws://b.example",
            "ws://b.example/",
            "ws://b.example/wss",
            "wss://b.example/api/ws/",
            "/ws",
        ] {
            assert!(
                fleet(&[bad]).starts_with(&format!("invalid FLEET_URLS={bad}: must be")),
                "{bad}: {}",
                fleet(&[bad])
            );
        }
        assert!(fleet(&["ws://u:pw@b.example/ws"]).contains("no user name or password"));
        for bad in [
            "ws://b.example/ws?x=1",
            "ws://b.example/ws#x",
            "ws://b.example/a b/ws",
            "ws://b.example/a;script-src/ws",
        ] {
            assert!(
                fleet(&[bad]).contains("no query"),
                "{bad}: {}",
                fleet(&[bad])
            );
        }
        assert!(fleet(&["ws://b.example:0/ws"]).contains("port"));
        assert!(fleet(&["ws://b ad/ws"]).contains("host"));
    }

    #[test]
    fn trusted_proxies_are_networks_and_a_bad_one_is_named() {
        let parsed = parse_trusted_proxies(" 10.0.0.0/8,, 127.0.0.1 ,fd00::/8,");
        let shown: Vec<String> = parsed
            .map(|n| n.0.iter().map(Cidr::to_string).collect())
            .unwrap_or_default();
        assert_eq!(shown, ["10.0.0.0/8", "127.0.0.1/32", "fd00::/8"]);
        assert_eq!(parse_trusted_proxies(""), Ok(Networks(Vec::new())));
        let refusal = |text| parse_trusted_proxies(text).err().map(|e| e.to_string());
        assert_eq!(
            refusal("10.0.0.0/8, 10.0.0.0/33"),
            Some(
                "invalid TRUSTED_PROXIES=10.0.0.0/33: the prefix length must be 0 to 32 for \
                 IPv4"
                    .to_owned()
            )
        );
        let name = refusal("proxy.internal").unwrap_or_default();
        assert!(name.starts_with("invalid TRUSTED_PROXIES=proxy.internal: must be an IP"));
        let host_bits = refusal("192.168.1.1/24").unwrap_or_default();
        assert!(
            host_bits.contains("bits set past the prefix"),
            "{host_bits}"
        );
    }

    #[test]
    fn non_loopback_host_needs_auth_or_explicit_consent() {
        let message = error(|c| c.proxy_host = IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert!(
            message.starts_with("PROXY_HOST=0.0.0.0 accepts remote clients"),
            "{message}"
        );
        assert!(message.contains("--allow-insecure-no-auth"));
        assert!(message.contains("enable authentication"));
        let allowed = error(|c| {
            c.proxy_host = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
            c.allow_insecure_no_auth = true;
        });
        assert_eq!(allowed, "");
    }

    #[test]
    fn loopback_in_any_form_is_not_exposed() {
        for host in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            let parsed: IpAddr = host.parse().expect("test address");
            assert_eq!(error(|c| c.proxy_host = parsed), "", "{host}");
        }
    }
}
