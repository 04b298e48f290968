//! Tests of [`super`]: the origin policy.

use std::net::Ipv4Addr;

use axum::http::HeaderValue;

use super::*;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn policy(allowed: &[&str], bind: IpAddr) -> OriginPolicy {
    let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
    OriginPolicy::new(&allowed, bind).expect("valid test allowlist")
}

fn check(origin: Option<&str>, host: Option<&str>) -> Result<(), Refusal> {
    policy(&["https://term.example.com"], LOOPBACK).check(origin, host)
}

#[test]
fn programs_without_origin_are_allowed_whatever_the_host() {
    assert_eq!(check(None, Some("127.0.0.1:8080")), Ok(()));
    assert_eq!(check(None, Some("evil.example")), Ok(()));
    assert_eq!(check(None, None), Ok(()));
}

#[test]
fn allowlisted_origins_are_allowed_in_any_spelling() {
    assert_eq!(check(Some("https://term.example.com"), None), Ok(()));
    let proxied = Some("internal:8080");
    assert_eq!(check(Some("HTTPS://Term.Example.COM:443"), proxied), Ok(()));
    assert_eq!(
        check(Some("http://term.example.com"), proxied),
        Err(Refusal::NotAllowed),
        "the scheme is part of the origin"
    );
    assert_eq!(
        check(Some("https://term.example.com:8443"), proxied),
        Err(Refusal::NotAllowed)
    );
}

#[test]
fn same_origin_loopback_pages_are_allowed() {
    let cases = [
        ("http://127.0.0.1:8080", "127.0.0.1:8080"),
        ("http://127.9.8.7:8080", "127.9.8.7:8080"),
        ("http://localhost:8080", "localhost:8080"),
        ("http://LocalHost:8080", "localhost:8080"),
        ("http://[::1]:8080", "[::1]:8080"),
        ("http://[::ffff:127.0.0.1]:8080", "[::ffff:7f00:1]:8080"),
        ("http://localhost", "localhost"),
        ("http://localhost", "localhost:80"),
        ("http://localhost:80", "localhost"),
        ("https://localhost", "localhost:443"),
        ("https://127.0.0.1", "127.0.0.1"),
        // The request's own scheme is unknown behind a TLS proxy; host and port decide.
        ("https://127.0.0.1:8080", "127.0.0.1:8080"),
    ];
    for (origin, host) in cases {
        assert_eq!(check(Some(origin), Some(host)), Ok(()), "{origin} {host}");
    }
}

#[test]
fn the_bind_address_counts_as_this_machine() {
    let lan = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 5));
    let exposed = policy(&[], lan);
    let origin = Some("http://192.168.1.5:8080");
    assert_eq!(exposed.check(origin, Some("192.168.1.5:8080")), Ok(()));
    let other = policy(&[], LOOPBACK).check(origin, Some("192.168.1.5:8080"));
    assert_eq!(other, Err(Refusal::NotAllowed), "another LAN address");
}

#[test]
fn dns_rebinding_is_refused() {
    let origin = Some("http://evil.example:8080");
    assert_eq!(
        check(origin, Some("evil.example:8080")),
        Err(Refusal::NotAllowed)
    );
    let sub = Some("http://localhost.evil.example:8080");
    let host = Some("localhost.evil.example:8080");
    assert_eq!(check(sub, host), Err(Refusal::NotAllowed));
}

#[test]
fn cross_site_pages_are_refused() {
    let host = Some("127.0.0.1:8080");
    let cases = [
        "https://evil.example",
        "http://127.0.0.1:3000",
        "http://localhost:8080",
        "http://[::1]:8080",
    ];
    for origin in cases {
        assert_eq!(
            check(Some(origin), host),
            Err(Refusal::NotAllowed),
            "{origin}"
        );
    }
}

#[test]
fn null_and_malformed_headers_are_refused() {
    let host = Some("127.0.0.1:8080");
    assert_eq!(check(Some("null"), host), Err(Refusal::NullOrigin));
    let origin = Some("http://127.0.0.1:8080");
    for bad in [
        "",
        "127.0.0.1:8080",
        "file://",
        "ws://127.0.0.1:8080",
        "http://127.0.0.1:8080/",
        "http://user@127.0.0.1:8080",
        "http://127.0.0.1:",
        "http://127.0.0.1:0",
        "http://127.0.0.1:65536",
        "http://::1:8080",
        "http://[::1",
        "http://[::1]x",
        "http://exa mple",
    ] {
        let refused = check(Some(bad), host);
        assert_eq!(refused, Err(Refusal::Malformed("Origin")), "{bad:?}");
    }
    for bad in ["", "127.0.0.1:x", "[::1", "127.0.0.1:8080/x"] {
        let refused = check(origin, Some(bad));
        assert_eq!(refused, Err(Refusal::Malformed("Host")), "{bad:?}");
    }
    assert_eq!(check(origin, None), Err(Refusal::Malformed("Host")));
}

#[test]
fn repeated_or_binary_headers_are_malformed() {
    let policy = policy(&[], LOOPBACK);
    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_static("127.0.0.1:8080"));
    headers.insert(ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
    assert_eq!(policy.check_headers(&headers, None), Ok(()));
    headers.append(HOST, HeaderValue::from_static("evil.example:8080"));
    let refused = policy.check_headers(&headers, None);
    assert_eq!(refused, Err(Refusal::Malformed("Host")));
    let binary = HeaderValue::from_bytes(b"http://\xff").expect("obs-text is a valid value");
    headers.insert(ORIGIN, binary);
    let refused = policy.check_headers(&headers, None);
    assert_eq!(refused, Err(Refusal::Malformed("Origin")));
    assert_eq!(loggable(&headers, ORIGIN), "http://\u{fffd}");
    assert_eq!(loggable(&HeaderMap::new(), ORIGIN), "-");
}

#[test]
fn origins_print_normalised() {
    let cases = [
        ("HTTPS://Term.Example.COM:443", "https://term.example.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[0:0::1]:80", "http://[::1]"),
    ];
    for (given, shown) in cases {
        let origin: Origin = given.parse().expect("valid origin");
        assert_eq!(origin.to_string(), shown);
    }
    let path = "https://a.example/x".parse::<Origin>();
    assert!(path.is_err_and(|e| e.to_string().contains("no path")));
}
