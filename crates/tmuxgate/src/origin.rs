//! Which web pages may open a WebSocket: protection against cross-site WebSocket hijacking
//! and DNS rebinding, decided from the upgrade's `Origin` and `Host` headers.
//!
//! Browsers send `Origin` on every WebSocket upgrade, and a page cannot forge it; programs
//! usually send none. So an upgrade without `Origin` is a program and is let through, one whose
//! `Origin` is in `ALLOWED_ORIGINS` is let through, and any other browser page only when it was
//! served by this gateway itself at a loopback or bind address. Same-origin alone is not
//! enough: a DNS-rebinding page at `http://evil.example:8080` whose name now resolves to
//! 127.0.0.1 sends `Origin` and `Host` both `evil.example:8080`; only an IP literal or
//! `localhost` proves the browser is talking to this machine by address rather than by a name
//! an attacker controls. Behind a reverse proxy listed in `TRUSTED_PROXIES`, the proxy's
//! `X-Forwarded-Host` and `X-Forwarded-Proto` stand in for `Host` ([`crate::forwarded`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderName};

use crate::forwarded::ForwardedSite;

/// Longest header value repeated in a log line; the rest is cut.
const LOGGED_HEADER_CHARS: usize = 200;

/// The one complaint about any bad port.
const BAD_PORT: MalformedOrigin = MalformedOrigin("the port must be a number from 1 to 65535");

/// Why an upgrade was refused (it is answered with HTTP 403 either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `Origin: null`: a sandboxed frame, a `file:` page or a redirect chain; never trusted.
    #[error("Origin is null")]
    NullOrigin,
    /// A header that is repeated, not ASCII, or not `scheme://host[:port]` / `host[:port]`.
    #[error("malformed {0} header")]
    Malformed(&'static str),
    /// Not allowlisted, and not this gateway's own page at a loopback or bind address.
    #[error("origin not allowed")]
    NotAllowed,
}

/// Why a string is not an origin; reads as the end of "invalid ALLOWED_ORIGINS=x: …".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedOrigin(&'static str);

/// `http` or `https`: the only schemes a page that opens a WebSocket to us can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// `http` or `https` in any case; `None` for anything else.
    pub(crate) fn parse(text: &str) -> Option<Scheme> {
        match text.to_ascii_lowercase().as_str() {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            _ => None,
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A host as written in an origin or `Host` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Host {
    Ip(IpAddr),
    /// Lower-cased.
    Name(String),
}

/// A parsed origin, normalised: lower-case scheme and host, explicit port. Two spellings of
/// one origin (`HTTPS://Term.Example.com:443`, `https://term.example.com`) compare equal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    scheme: Scheme,
    host: Host,
    port: u16,
}

impl FromStr for Origin {
    type Err = MalformedOrigin;

    fn from_str(text: &str) -> Result<Origin, MalformedOrigin> {
        let Some((scheme, authority)) = text.split_once("://") else {
            return Err(MalformedOrigin("must look like scheme://host[:port]"));
        };
        let scheme =
            Scheme::parse(scheme).ok_or(MalformedOrigin("the scheme must be http or https"))?;
        if authority.contains(['/', '?', '#']) {
            return Err(MalformedOrigin(
                "an origin has no path, query or fragment: scheme://host[:port]",
            ));
        }
        if authority.contains('@') {
            return Err(MalformedOrigin("an origin has no user name or password"));
        }
        let (host, port) = parse_authority(authority)?;
        let port = port.unwrap_or(scheme.default_port());
        Ok(Origin { scheme, host, port })
    }
}

impl fmt::Display for Origin {
    /// The browser's serialisation: default port left out, IPv6 in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "{scheme}://[{ip}]")?,
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{scheme}://{ip}")?,
            Host::Name(name) => write!(f, "{scheme}://{name}")?,
        }
        if self.port != self.scheme.default_port() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

/// Parses `host[:port]`: a DNS name, an IPv4 address or a bracketed IPv6 address.
pub(crate) fn parse_authority(text: &str) -> Result<(Host, Option<u16>), MalformedOrigin> {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (ip, after) = rest
                .split_once(']')
                .ok_or(MalformedOrigin("an IPv6 host needs a closing ]"))?;
            let ip: Ipv6Addr = ip
                .parse()
                .map_err(|_| MalformedOrigin("the host is not a valid IPv6 address"))?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or(BAD_PORT)?),
            };
            (Host::Ip(IpAddr::V6(ip)), port)
        }
        None => match text.split_once(':') {
            Some((host, port)) => (parse_host(host)?, Some(port)),
            None => (parse_host(text)?, None),
        },
    };
    let port = port.map(parse_port).transpose()?;
    Ok((host, port))
}

fn parse_host(text: &str) -> Result<Host, MalformedOrigin> {
    if let Ok(ip) = text.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~');
    if text.is_empty() || !text.chars().all(allowed) {
        return Err(MalformedOrigin(
            "the host must be a DNS name or an IP address",
        ));
    }
    Ok(Host::Name(text.to_ascii_lowercase()))
}

fn parse_port(text: &str) -> Result<u16, MalformedOrigin> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD_PORT);
    }
    text.parse().ok().filter(|&port| port != 0).ok_or(BAD_PORT)
}

/// The decision: built once from `ALLOWED_ORIGINS` and `PROXY_HOST`, asked on every upgrade.
#[derive(Clone, Debug)]
pub struct OriginPolicy {
    allowed: Vec<Origin>,
    bind: IpAddr,
}

impl OriginPolicy {
    /// Parses the allowlist; `bind` is the listener's address (`PROXY_HOST`).
    pub fn new(allowed: &[String], bind: IpAddr) -> Result<OriginPolicy, MalformedOrigin> {
        let allowed = allowed
            .iter()
            .map(|entry| entry.parse())
            .collect::<Result<_, _>>()?;
        Ok(OriginPolicy { allowed, bind })
    }

    /// Decides an upgrade from its headers; see [`OriginPolicy::check`]. `site` is where a
    /// trusted proxy says the request went ([`crate::forwarded`]): it replaces `Host`, see
    /// [`OriginPolicy::check_forwarded`].
    pub fn check_headers(
        &self,
        headers: &HeaderMap,
        site: Option<&ForwardedSite>,
    ) -> Result<(), Refusal> {
        let origin = single(headers, ORIGIN, "Origin")?;
        match site {
            Some(site) => self.check_forwarded(origin, site),
            None => self.check(origin, single(headers, HOST, "Host")?),
        }
    }

    /// Decides an upgrade from its `Origin` and `Host` header values (`None`: absent).
    ///
    /// No `Origin` (not a browser) or an allowlisted one: allowed, `Host` unread. Otherwise
    /// allowed only if `Origin` and `Host` name the same host and port (default ports filled
    /// in from the origin's scheme) and that host is `localhost`, a loopback address or the
    /// bind address.
    pub fn check(&self, origin: Option<&str>, host: Option<&str>) -> Result<(), Refusal> {
        let Some(origin) = self.unlisted_page(origin)? else {
            return Ok(());
        };
        let host = host.ok_or(Refusal::Malformed("Host"))?;
        let (host, port) = parse_authority(host).map_err(|_| Refusal::Malformed("Host"))?;
        let port = port.unwrap_or(origin.scheme.default_port());
        let same_origin = origin.host == host && origin.port == port;
        if same_origin && self.is_this_machine(&host) {
            return Ok(());
        }
        Err(Refusal::NotAllowed)
    }

    /// Decides an upgrade a trusted proxy forwarded for the site `site`.
    ///
    /// As [`OriginPolicy::check`], except that a page of the very site the proxy serves
    /// (same scheme when the proxy sent one, host and port) is allowed even under a DNS
    /// name: the proxy, not a name lookup, says where the request went.
    pub fn check_forwarded(
        &self,
        origin: Option<&str>,
        site: &ForwardedSite,
    ) -> Result<(), Refusal> {
        let Some(origin) = self.unlisted_page(origin)? else {
            return Ok(());
        };
        let scheme = site.scheme.unwrap_or(origin.scheme);
        let port = site.port.unwrap_or(scheme.default_port());
        if origin.scheme == scheme && origin.host == site.host && origin.port == port {
            return Ok(());
        }
        Err(Refusal::NotAllowed)
    }

    /// The page's parsed `Origin`; `None` when that alone admits it (a program sends no
    /// `Origin`; an allowlisted page).
    fn unlisted_page(&self, origin: Option<&str>) -> Result<Option<Origin>, Refusal> {
        let Some(origin) = origin else {
            return Ok(None);
        };
        if origin == "null" {
            return Err(Refusal::NullOrigin);
        }
        let origin: Origin = origin.parse().map_err(|_| Refusal::Malformed("Origin"))?;
        if self.allowed.contains(&origin) {
            return Ok(None);
        }
        Ok(Some(origin))
    }

    /// `localhost` or an address no DNS answer can stand in for: loopback or the bind address.
    fn is_this_machine(&self, host: &Host) -> bool {
        match host {
            Host::Name(name) => name == "localhost",
            Host::Ip(ip) => {
                let ip = ip.to_canonical();
                ip.is_loopback() || ip == self.bind.to_canonical()
            }
        }
    }
}

/// The value of a header that may appear at most once, as ASCII text.
pub(crate) fn single<'h>(
    headers: &'h HeaderMap,
    name: HeaderName,
    shown: &'static str,
) -> Result<Option<&'h str>, Refusal> {
    let mut values = headers.get_all(name).iter();
    let (first, second) = (values.next(), values.next());
    match (first, second) {
        (None, _) => Ok(None),
        (Some(value), None) => value
            .to_str()
            .map(Some)
            .map_err(|_| Refusal::Malformed(shown)),
        (Some(_), Some(_)) => Err(Refusal::Malformed(shown)),
    }
}

/// A header's value for a log line: lossy UTF-8, cut to `LOGGED_HEADER_CHARS`, `-` if absent.
pub fn loggable(headers: &HeaderMap, name: HeaderName) -> String {
    let Some(value) = headers.get(name) else {
        return "-".to_owned();
    };
    String::from_utf8_lossy(value.as_bytes())
        .chars()
        .take(LOGGED_HEADER_CHARS)
        .collect()
}

#[cfg(test)]
#[path = "origin_tests.rs"]
mod tests;
