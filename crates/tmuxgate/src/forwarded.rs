//! Upgrades through a reverse proxy: which TCP peers may speak for the client
//! (`TRUSTED_PROXIES`), and what their `X-Forwarded-*` headers then mean.
//!
//! A header is only as honest as whoever wrote it: any client can send `X-Forwarded-Host`.
//! So from a peer outside `TRUSTED_PROXIES` the forwarded headers are ignored entirely, and
//! from a listed one they are believed, but only when unambiguous: a repeated header, a list
//! where one value belongs, or a value that does not parse refuses the upgrade (HTTP 403, as
//! an origin refusal) rather than letting the gateway guess.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::connect_info::Connected;
use axum::http::{HeaderMap, HeaderName};
use axum::serve::{IncomingStream, Listener};

use crate::abuse::Blocks;
use crate::cidr::Cidr;
use crate::origin::{Host, Refusal, Scheme, parse_authority, single};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The TCP peer of a connection: `ConnectInfo` on a [`WithPeers`] listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// Any listener addressed by `SocketAddr` (plain TCP with `TCP_NODELAY`, or
/// [`crate::tls::TlsListener`]), giving its connections [`PeerAddr`] as `ConnectInfo`.
/// A wrapper of ours because axum's `Connected` for `SocketAddr` covers only its own
/// listeners, and the orphan rule forbids adding one for another crate's type to it.
/// With [`Blocks`], connections from blocked addresses are closed as they are accepted,
/// before any byte is read (plain TCP; the TLS listener checks before its handshake).
pub struct WithPeers<L>(pub L, pub Option<Arc<Blocks>>);

impl<L: Listener<Addr = SocketAddr>> Listener for WithPeers<L> {
    type Io = L::Io;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (L::Io, L::Addr) {
        loop {
            let (io, peer) = self.0.accept().await;
            match &self.1 {
                Some(blocks) if blocks.is_blocked(peer.ip()) => drop(io),
                _ => return (io, peer),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<L::Addr> {
        self.0.local_addr()
    }
}

impl<L: Listener<Addr = SocketAddr>> Connected<IncomingStream<'_, WithPeers<L>>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, WithPeers<L>>) -> PeerAddr {
        PeerAddr(*stream.remote_addr())
    }
}

/// Where a trusted proxy says the request was sent: `X-Forwarded-Host` and, when given,
/// `X-Forwarded-Proto`. Stands in for `Host` in [`crate::origin::OriginPolicy`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardedSite {
    pub(crate) scheme: Option<Scheme>,
    pub(crate) host: Host,
    pub(crate) port: Option<u16>,
}

impl ForwardedSite {
    /// Parses `X-Forwarded-Host` (`host[:port]`) and `X-Forwarded-Proto` (`http`/`https`).
    pub fn parse(host: &str, proto: Option<&str>) -> Result<ForwardedSite, Refusal> {
        let (host, port) =
            parse_authority(host).map_err(|_| Refusal::Malformed("X-Forwarded-Host"))?;
        let scheme = proto
            .map(|proto| Scheme::parse(proto).ok_or(Refusal::Malformed("X-Forwarded-Proto")))
            .transpose()?;
        Ok(ForwardedSite { scheme, host, port })
    }
}

/// What one upgrade's peer and headers say about its client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forwarded {
    /// The client's address, for logs: the peer itself unless a trusted proxy named one.
    pub client: IpAddr,
    /// Where a trusted proxy says the request went; `None`: judge by `Host`.
    pub site: Option<ForwardedSite>,
}

/// `TRUSTED_PROXIES`: the peers whose forwarded headers are believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    networks: Vec<Cidr>,
}

impl TrustedProxies {
    /// Trusts peers in `networks` (none: forwarded headers are never read).
    pub fn new(networks: Vec<Cidr>) -> TrustedProxies {
        TrustedProxies { networks }
    }

    /// Whether `ip` is a listed proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|network| network.contains(ip))
    }

    /// Resolves the client and the site of an upgrade from TCP peer `peer`.
    ///
    /// An untrusted peer is the client and its forwarded headers are not read. From a
    /// trusted one: the client is the right-most `X-Forwarded-For` entry that is not itself
    /// a trusted proxy (the left-most when all are; the peer when there is no header), and
    /// the site is `X-Forwarded-Host` with `X-Forwarded-Proto` (without
    /// `X-Forwarded-Host`, `Host` decides as for a direct request).
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> Result<Forwarded, Refusal> {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return Ok(Forwarded {
                client: peer,
                site: None,
            });
        }
        let client = match single(headers, X_FORWARDED_FOR, "X-Forwarded-For")? {
            Some(chain) => self.client_in(chain)?,
            None => peer,
        };
        let proto = single(headers, X_FORWARDED_PROTO, "X-Forwarded-Proto")?;
        let site = match single(headers, X_FORWARDED_HOST, "X-Forwarded-Host")? {
            Some(host) => Some(ForwardedSite::parse(host, proto)?),
            None => {
                // Unused, but a proxy sending nonsense is misconfigured: say so.
                ForwardedSite::parse("localhost", proto)?;
                None
            }
        };
        Ok(Forwarded { client, site })
    }

    /// The client in an `X-Forwarded-For` chain (`client, proxy1, proxy2`): each proxy
    /// appends the address it received from, so walking from the right, the first address
    /// that is no proxy of ours is the first one no proxy of ours could vouch for.
    fn client_in(&self, chain: &str) -> Result<IpAddr, Refusal> {
        let addresses = chain
            .split(',')
            .map(|entry| entry.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Refusal::Malformed("X-Forwarded-For"))?;
        let untrusted = addresses.iter().rev().find(|&&ip| !self.trusts(ip));
        untrusted
            .or(addresses.first())
            .copied()
            .ok_or(Refusal::Malformed("X-Forwarded-For"))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn proxies(networks: &[&str]) -> TrustedProxies {
        let parse = |n: &&str| n.parse().expect("test network");
        TrustedProxies::new(networks.iter().map(parse).collect())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    fn site(host: &str, proto: Option<&str>) -> Option<ForwardedSite> {
        Some(ForwardedSite::parse(host, proto).expect("test site"))
    }

    const PROXIED: &[(&str, &str)] = &[
        ("x-forwarded-for", "203.0.113.7"),
        ("x-forwarded-host", "term.example.com"),
        ("x-forwarded-proto", "https"),
    ];

    #[test]
    fn untrusted_peers_forwarded_headers_are_ignored() {
        let peer = ip("198.51.100.1");
        for trusted in [&[][..], &["10.0.0.0/8"][..]] {
            let resolved = proxies(trusted).resolve(peer, &headers(PROXIED));
            let expected = Forwarded {
                client: peer,
                site: None,
            };
            assert_eq!(resolved, Ok(expected), "{trusted:?}");
        }
        let garbage = headers(&[("x-forwarded-for", "nonsense"), ("x-forwarded-host", "")]);
        let resolved = proxies(&[]).resolve(peer, &garbage);
        assert!(resolved.is_ok(), "never even parsed");
    }

    #[test]
    fn trusted_peers_speak_for_the_client() {
        let resolved = proxies(&["127.0.0.1"]).resolve(ip("127.0.0.1"), &headers(PROXIED));
        let expected = Forwarded {
            client: ip("203.0.113.7"),
            site: site("term.example.com", Some("https")),
        };
        assert_eq!(resolved, Ok(expected));
        let mapped = proxies(&["127.0.0.1"]).resolve(ip("::ffff:127.0.0.1"), &headers(PROXIED));
        assert_eq!(mapped.map(|f| f.client), Ok(ip("203.0.113.7")));
        let bare = proxies(&["::1"]).resolve(ip("::1"), &HeaderMap::new());
        let expected = Forwarded {
            client: ip("::1"),
            site: None,
        };
        assert_eq!(bare, Ok(expected), "no headers: the proxy is the client");
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let trusted = proxies(&["10.0.0.0/8", "fd00::/8"]);
        let client = |chain: &'static str| {
            let forwarded = headers(&[("x-forwarded-for", chain)]);
            trusted
                .resolve(ip("10.0.0.1"), &forwarded)
                .map(|f| f.client)
        };
        assert_eq!(client("203.0.113.7"), Ok(ip("203.0.113.7")));
        assert_eq!(
            client("203.0.113.7, 10.1.1.1, fd00::2"),
            Ok(ip("203.0.113.7"))
        );
        // The left entries came from the client itself: whatever it claimed stays unread.
        let spoofed = client("1.1.1.1, 203.0.113.7,10.2.2.2");
        assert_eq!(spoofed, Ok(ip("203.0.113.7")));
        assert_eq!(client("2001:db8::9, 10.1.1.1"), Ok(ip("2001:db8::9")));
        assert_eq!(
            client("10.9.9.9, 10.1.1.1"),
            Ok(ip("10.9.9.9")),
            "all trusted"
        );
    }

    #[test]
    fn malformed_or_repeated_forwarded_headers_are_refused() {
        let trusted = proxies(&["127.0.0.0/8"]);
        let refusal = |pairs: &[(&'static str, &'static str)]| {
            trusted.resolve(ip("127.0.0.1"), &headers(pairs)).err()
        };
        let malformed = |header| Some(Refusal::Malformed(header));
        for chain in [
            "",
            "unknown",
            "203.0.113.7:5555",
            "203.0.113.7,",
            "[::1]",
            "a, 10.0.0.1",
        ] {
            let refused = refusal(&[("x-forwarded-for", chain)]);
            assert_eq!(refused, malformed("X-Forwarded-For"), "{chain:?}");
        }
        for host in ["", "a.example, b.example", "a.example/x", "a.example:0"] {
            let refused = refusal(&[("x-forwarded-host", host)]);
            assert_eq!(refused, malformed("X-Forwarded-Host"), "{host:?}");
        }
        for proto in ["", "wss", "https, http"] {
            let with_host = [
                ("x-forwarded-host", "a.example"),
                ("x-forwarded-proto", proto),
            ];
            assert_eq!(
                refusal(&with_host),
                malformed("X-Forwarded-Proto"),
                "{proto:?}"
            );
            let alone = refusal(&[("x-forwarded-proto", proto)]);
            assert_eq!(alone, malformed("X-Forwarded-Proto"), "{proto:?}");
        }
        for name in ["x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"] {
            let value = if name == "x-forwarded-proto" {
                "https"
            } else {
                "127.0.0.1"
            };
            let refused = refusal(&[(name, value), (name, value)]);
            assert!(refused.is_some(), "repeated {name}");
        }
    }
}
