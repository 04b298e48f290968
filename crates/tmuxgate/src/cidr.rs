//! [`Cidr`]: an IP network written `address/prefix` (or a bare address, one host), the
//! entries of `TRUSTED_PROXIES`. Small enough not to need a crate: parse, print, match.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 network. Always in canonical form: no address bits past the prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a string is not a network; reads as the end of "invalid TRUSTED_PROXIES=x: …".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedCidr(&'static str);

impl Cidr {
    /// Whether `ip` is in this network. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, as
    /// a dual-stack socket reports IPv4 peers) counts as the IPv4 address it maps.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.network.is_ipv4() && masked(ip, self.prefix) == self.network
    }
}

impl FromStr for Cidr {
    type Err = MalformedCidr;

    fn from_str(text: &str) -> Result<Cidr, MalformedCidr> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().map_err(|_| {
            MalformedCidr("must be an IP address or address/prefix, like 10.0.0.0/8 or fd00::/8")
        })?;
        let prefix = match (prefix, network) {
            (None, IpAddr::V4(_)) => 32,
            (None, IpAddr::V6(_)) => 128,
            (Some(p), IpAddr::V4(_)) => parse_prefix(p, 32)
                .ok_or(MalformedCidr("the prefix length must be 0 to 32 for IPv4"))?,
            (Some(p), IpAddr::V6(_)) => parse_prefix(p, 128)
                .ok_or(MalformedCidr("the prefix length must be 0 to 128 for IPv6"))?,
        };
        if masked(network, prefix) != network {
            // 10.0.0.1/8 is either a typo for a host or for 10.0.0.0/8: not ours to guess.
            return Err(MalformedCidr(
                "the address has bits set past the prefix: write the network's first address",
            ));
        }
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A decimal prefix length of at most `max`: digits only, no sign, no spaces.
fn parse_prefix(text: &str, max: u8) -> Option<u8> {
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|&prefix| prefix <= max)
}

/// `ip` with every bit past the first `prefix` cleared.
fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(ip) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(ip) & mask).into())
        }
        IpAddr::V6(ip) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(ip) & mask).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        text.parse()
            .unwrap_or_else(|e| panic!("{text}: expected a network, got {e}"))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn ipv4_networks_match_their_addresses() {
        let private = cidr("10.0.0.0/8");
        assert!(private.contains(ip("10.0.0.0")));
        assert!(private.contains(ip("10.255.255.255")));
        assert!(!private.contains(ip("11.0.0.0")));
        assert!(
            !private.contains(ip("::a00:1")),
            "an IPv6 address is not in it"
        );
        assert!(
            private.contains(ip("::ffff:10.1.2.3")),
            "IPv4-mapped counts"
        );
        let host = cidr("192.168.1.5/32");
        assert!(host.contains(ip("192.168.1.5")));
        assert!(!host.contains(ip("192.168.1.4")));
        assert_eq!(cidr("192.168.1.5"), host, "a bare address is one host");
    }

    #[test]
    fn ipv6_networks_match_their_addresses() {
        let unique_local = cidr("fd00::/8");
        assert!(unique_local.contains(ip("fd12:3456::1")));
        assert!(!unique_local.contains(ip("fe80::1")));
        assert!(!unique_local.contains(ip("10.0.0.1")));
        let host = cidr("2001:db8::7/128");
        assert!(host.contains(ip("2001:db8::7")));
        assert!(!host.contains(ip("2001:db8::8")));
        assert_eq!(cidr("2001:db8::7"), host);
        assert_eq!(cidr("::1").to_string(), "::1/128");
    }

    #[test]
    fn slash_zero_is_every_address_of_its_family() {
        let all_v4 = cidr("0.0.0.0/0");
        assert!(all_v4.contains(ip("1.2.3.4")) && all_v4.contains(ip("255.255.255.255")));
        assert!(!all_v4.contains(ip("2001:db8::1")));
        let all_v6 = cidr("::/0");
        assert!(all_v6.contains(ip("2001:db8::1")) && all_v6.contains(ip("::1")));
        assert!(!all_v6.contains(ip("1.2.3.4")));
    }

    #[test]
    fn networks_print_as_address_slash_prefix() {
        assert_eq!(cidr("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(cidr("FD00:0::/8").to_string(), "fd00::/8");
        assert_eq!(cidr("127.0.0.1").to_string(), "127.0.0.1/32");
    }

    #[test]
    fn malformed_networks_are_refused_with_a_reason() {
        let reason = |text: &str| match text.parse::<Cidr>() {
            Ok(network) => panic!("{text:?}: expected an error, got {network}"),
            Err(e) => e.to_string(),
        };
        for bad in ["", "proxy.example", "10.0.0", "/8", " 10.0.0.0"] {
            assert!(reason(bad).contains("must be an IP address"), "{bad:?}");
        }
        let bad_prefixes = [
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0.0/8/8",
        ];
        for bad in bad_prefixes {
            assert!(reason(bad).contains("0 to 32 for IPv4"), "{bad:?}");
        }
        assert!(reason("fd00::/129").contains("0 to 128 for IPv6"));
        assert!(reason("10.0.0.0/0008").contains("0 to 32"));
        assert!(reason("10.0.0.1/8").contains("bits set past the prefix"));
        assert!(reason("fd00::1/8").contains("bits set past the prefix"));
        assert!(reason("[::1]/128").contains("must be an IP address"));
    }
}
