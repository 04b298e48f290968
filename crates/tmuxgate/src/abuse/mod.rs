//! Abuse resistance: rate limits ([`gcra`], [`keyed`]) per client address before
//! authentication and per user after, a byte budget for terminal input per connection,
//! and automatic blocking of addresses that keep misbehaving ([`blocks`]).
//!
//! What is limited, and what happens over a limit (docs/security.md "Abuse resistance"):
//! - WebSocket upgrades per address (`CONNECT_RATE_LIMIT`): HTTP 429 with `Retry-After`.
//! - logins per address (`auth`, `POST /api/login`; `AUTH_RATE_LIMIT`): `rate_limited`
//!   with `retryAfter`, or HTTP 429.
//! - requests per user, or per address before authentication (`RATE_LIMIT_*`):
//!   `rate_limited` with `retryAfter`; `RATE_LIMIT_CLOSE_AFTER` refusals in a row close 4429.
//! - terminal input per connection (`INPUT_BYTES_PER_SECOND`, `INPUT_BURST_BYTES`): INPUT
//!   frames over it are dropped with one `input-refused` (`rate_limited`) per run of
//!   refusals; `terminal-input` answers `rate_limited`.
//!
//! Every refusal counts as a violation towards blocking the address.

pub mod blocks;
pub mod caps;
pub mod gcra;
pub mod keyed;
pub mod shared;

use crate::audit::{Audit, EventKind, Record as AuditRecord};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use blocks::{BlockInfo, Blocks, Offense};
use gcra::Quota;
use keyed::{DEFAULT_CAPACITY, KeyedLimiter};

use crate::cidr::Cidr;
use crate::config::Config;

/// A client address as limits and blocks see it: IPv4 as is, IPv6 by its /64 (one
/// subscriber's network), so that a host cannot dodge a limit by changing its interface id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// The key of `ip`.
    pub fn of(ip: IpAddr) -> ClientKey {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                ClientKey(IpAddr::V6(bits.into()))
            }
            v4 => ClientKey(v4),
        }
    }

    /// The address (an IPv6 /64 as its first address).
    pub fn ip(self) -> IpAddr {
        self.0
    }
}

/// Counters for `/metrics` and the `metrics` message.
#[derive(Debug, Default)]
pub struct AbuseCounters {
    /// Requests, upgrades, logins and input refused over a rate limit.
    pub rate_limited: AtomicU64,
    /// TCP connections dropped at accept, and upgrades refused, because the address is
    /// blocked.
    pub blocked_connections: AtomicU64,
    /// Blocks imposed, automatically or by an administrator.
    pub blocks_total: AtomicU64,
}

/// What a refusal was about, for the log.
#[derive(Clone, Copy, Debug)]
pub enum Limited {
    /// A WebSocket upgrade.
    Connect,
    /// An `auth` message or `POST /api/login`.
    Login,
    /// A request.
    Request,
    /// Terminal input.
    Input,
}

impl Limited {
    /// The audit `reason` of a refusal under this limit.
    pub fn name(self) -> &'static str {
        match self {
            Limited::Connect => "connect-rate",
            Limited::Login => "login-rate",
            Limited::Request => "request-rate",
            Limited::Input => "input-rate",
        }
    }
}

/// The gateway's limits and blocks.
pub struct Abuse {
    connects: Option<KeyedLimiter<ClientKey>>,
    logins: Option<KeyedLimiter<ClientKey>>,
    requests_by_client: KeyedLimiter<ClientKey>,
    requests_by_user: KeyedLimiter<String>,
    /// `RATE_LIMIT_ROLES`: the users of these roles have their own quota.
    requests_by_role: HashMap<String, KeyedLimiter<String>>,
    input: Quota,
    /// Refused requests in a row that close a connection with 4429.
    pub close_after: u32,
    allowlist: Arc<[Cidr]>,
    /// Blocked addresses.
    pub blocks: Arc<Blocks>,
    /// Open connections per client address (`MAX_CONNECTIONS_PER_IP`).
    per_client: caps::Counts<ClientKey>,
    /// Open authenticated connections per user (`MAX_CONNECTIONS_PER_USER`).
    per_user: caps::Counts<String>,
    /// `MAX_SESSIONS_PER_USER`; 0: no cap.
    pub max_sessions_per_user: u32,
    /// Counters.
    pub counters: Arc<AbuseCounters>,
    audit: Audit,
    epoch: Instant,
    /// The fleet's store, when limits and caps are shared ([`shared`]).
    shared: Option<shared::Shared>,
}

impl Abuse {
    /// Limits and blocks as `config` sets them.
    pub fn new(config: &Config, counters: Arc<AbuseCounters>, audit: Audit) -> Abuse {
        let per_minute = |n: u32| {
            (n > 0).then(|| {
                let quota = Quota::new(n.into(), Duration::from_secs(60), n.into());
                KeyedLimiter::new(quota, DEFAULT_CAPACITY)
            })
        };
        let requests = Quota::new(
            config.rate_limit_requests.into(),
            config.rate_limit_window,
            config.rate_limit_burst.into(),
        );
        let allowlist: Arc<[Cidr]> = config.abuse_allowlist.clone().into();
        let burst = u64::from(config.rate_limit_burst);
        let requests_by_role = config
            .role_rate_limits()
            .map(|(role, count)| {
                // The burst scales with the role's quota.
                let default = u64::from(config.rate_limit_requests.max(1));
                let burst = (burst * u64::from(count) / default).max(1);
                let quota = Quota::new(count.into(), config.rate_limit_window, burst);
                (role.to_owned(), KeyedLimiter::new(quota, DEFAULT_CAPACITY))
            })
            .collect();
        Abuse {
            connects: per_minute(config.connect_rate_limit),
            logins: per_minute(config.auth_rate_limit),
            requests_by_client: KeyedLimiter::new(requests, DEFAULT_CAPACITY),
            requests_by_user: KeyedLimiter::new(requests, DEFAULT_CAPACITY),
            requests_by_role,
            input: Quota::bytes(
                config.input_bytes_per_second as u64,
                config.input_burst_bytes as u64,
            ),
            close_after: config.rate_limit_close_after,
            // Trusted proxies are never blocked: every client behind them would be.
            blocks: Arc::new(Blocks::new(
                config,
                allowlist
                    .iter()
                    .chain(&config.trusted_proxies)
                    .cloned()
                    .collect(),
                counters.clone(),
                audit.clone(),
            )),
            per_client: caps::Counts::new(config.max_connections_per_ip),
            per_user: caps::Counts::new(config.max_connections_per_user),
            max_sessions_per_user: config.max_sessions_per_user,
            allowlist,
            counters,
            audit,
            epoch: Instant::now(),
            shared: None,
        }
    }

    /// Whether `ip` is exempt from limits by address and from blocking.
    pub fn is_allowlisted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allowlist.iter().any(|net| net.contains(ip))
    }

    /// A WebSocket upgrade from `client`.
    pub fn check_connect(&self, client: IpAddr) -> Result<(), Duration> {
        self.by_client(self.connects.as_ref(), client, Limited::Connect)
    }

    /// A login attempt (`auth`, `POST /api/login`) from `client`.
    pub fn check_login(&self, client: IpAddr) -> Result<(), Duration> {
        self.by_client(self.logins.as_ref(), client, Limited::Login)
    }

    /// A request from `user` (name, role), or from `client` when there is no user yet.
    pub fn check_request(
        &self,
        user: Option<(&str, &str)>,
        client: IpAddr,
    ) -> Result<(), Duration> {
        let verdict = match user {
            Some((user, role)) => match self.requests_by_role.get(role) {
                Some(limiter) => limiter.check(user),
                None => self.requests_by_user.check(user),
            },
            None if self.is_allowlisted(client) => Ok(()),
            None => self.requests_by_client.check(&ClientKey::of(client)),
        };
        verdict.inspect_err(|wait| self.refused(client, Limited::Request, *wait))
    }

    /// `bytes` of terminal input on a connection whose budget state is `tat`.
    pub fn take_input(&self, tat: &mut u64, bytes: usize) -> Result<(), Duration> {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        // Offset so that 0, a new connection's state, is always in the past.
        self.input
            .take(tat, now.saturating_add(1_000_000_000), bytes as u64)
    }

    /// Counts an input refusal against `client` (once per run of refusals).
    pub fn input_refused(&self, client: IpAddr, wait: Duration) {
        self.refused(client, Limited::Input, wait);
    }

    fn by_client(
        &self,
        limiter: Option<&KeyedLimiter<ClientKey>>,
        client: IpAddr,
        what: Limited,
    ) -> Result<(), Duration> {
        let Some(limiter) = limiter else {
            return Ok(());
        };
        if self.is_allowlisted(client) {
            return Ok(());
        }
        limiter
            .check(&ClientKey::of(client))
            .inspect_err(|wait| self.refused(client, what, *wait))
    }

    fn refused(&self, client: IpAddr, what: Limited, wait: Duration) {
        self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        let seen = self.blocks.record(client, Offense::RateLimited);
        // A flood would otherwise be a log line per refusal: the 1st, 2nd, 4th, 8th... of a
        // window are logged.
        if seen.is_power_of_two() {
            tracing::info!(%client, limit = ?what, retry_after_ms = wait.as_millis() as u64,
                violations = seen, "over a rate limit");
            let event = AuditRecord::new(EventKind::RateLimited, Some(client)).reason(what.name());
            self.audit.record(event);
        }
    }

    /// Counts a connection of `client` under `MAX_CONNECTIONS_PER_IP` (allowlisted
    /// addresses are not counted); `false`: at the cap. End it with
    /// [`Abuse::connection_closed`].
    pub fn connection_opened(&self, client: IpAddr) -> bool {
        self.is_allowlisted(client) || self.per_client.try_add(&ClientKey::of(client))
    }

    /// Uncounts a connection that [`Abuse::connection_opened`] admitted.
    pub fn connection_closed(&self, client: IpAddr) {
        if !self.is_allowlisted(client) {
            self.per_client.remove(&ClientKey::of(client));
        }
    }

    /// Counts an authenticated connection of `user` under `MAX_CONNECTIONS_PER_USER`;
    /// `false`: at the cap. End it with [`Abuse::user_left`].
    pub fn user_joined(&self, user: &str) -> bool {
        self.per_user.try_add(&user.to_owned())
    }

    /// Uncounts a connection that [`Abuse::user_joined`] admitted.
    pub fn user_left(&self, user: &str) {
        self.per_user.remove(&user.to_owned());
    }

    /// Forgets idle limiter keys; run now and then so quiet limiters give memory back.
    pub fn prune(&self) {
        for limiter in [&self.connects, &self.logins].into_iter().flatten() {
            limiter.prune();
        }
        self.requests_by_client.prune();
        self.requests_by_user.prune();
        self.requests_by_role.values().for_each(KeyedLimiter::prune);
        self.blocks.prune();
    }
}

/// Milliseconds to wait, rounded up, at least 1.
pub fn retry_after_ms(wait: Duration) -> u64 {
    (wait.as_micros().div_ceil(1000) as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::7".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientKey::of(a), ClientKey::of(b));
        assert_ne!(ClientKey::of(a), ClientKey::of(c));
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert_eq!(
            ClientKey::of(mapped).ip(),
            "127.0.0.2".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_ms(Duration::from_micros(1)), 1);
        assert_eq!(retry_after_ms(Duration::from_micros(1500)), 2);
    }
}
