//! How a token travels with a WebSocket upgrade (docs/protocol.md, "Authentication"): an
//! `Authorization: Bearer` header, a `Sec-WebSocket-Protocol` entry, the UI's cookie, or
//! `?token=`. Checked in that order; the first transport present decides. Anything present
//! but malformed is a rejection, never "no token": a client that meant to authenticate and
//! got it wrong must not be treated as one that did not try.

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE, SEC_WEBSOCKET_PROTOCOL};

/// Longest token accepted from any transport, in bytes (the verifier's own limit).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The UI's cookie over plain HTTP (loopback).
pub const COOKIE_NAME: &str = "tmuxgate_token";
/// The UI's cookie over HTTPS: the `__Host-` prefix makes browsers accept it only with
/// `Secure`, `Path=/` and no `Domain`, so a sibling subdomain cannot plant one.
pub const SECURE_COOKIE_NAME: &str = "__Host-tmuxgate_token";
/// The subprotocol a client offers (and the gateway selects) to carry a token that way.
pub const SUBPROTOCOL: &str = "tmuxgate.v1";
/// Prefix of the subprotocol entry carrying the token.
pub const TOKEN_SUBPROTOCOL_PREFIX: &str = "tmuxgate.token.";

/// Which transport carried a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `Authorization: Bearer TOKEN`.
    Bearer,
    /// `Sec-WebSocket-Protocol: tmuxgate.v1, tmuxgate.token.TOKEN`.
    Subprotocol,
    /// `Cookie: tmuxgate_token=TOKEN`.
    Cookie,
    /// `?token=TOKEN`.
    Query,
}

/// What an upgrade request presents.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// No transport carries a token: the connection starts unauthenticated.
    Nothing,
    /// A token, well-formed as far as transport goes (not yet verified).
    Token(&'a str, Transport),
    /// A transport is present but unusable (repeated, empty, oversized, not a token).
    Malformed(Transport),
}

impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Presented::Nothing => f.write_str("Nothing"),
            Presented::Token(_, via) => write!(f, "Token(***, {via:?})"),
            Presented::Malformed(via) => write!(f, "Malformed({via:?})"),
        }
    }
}

/// The token an upgrade request presents, from its headers and its URI's query.
pub fn presented<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Presented<'a> {
    let found = [
        (Transport::Bearer, bearer(headers)),
        (Transport::Subprotocol, subprotocol(headers)),
        (Transport::Cookie, cookie(headers)),
        (Transport::Query, query_token(query)),
    ];
    for (via, found) in found {
        match found {
            Found::Absent => continue,
            Found::Value(token) if is_token(token) => return Presented::Token(token, via),
            Found::Value(_) | Found::Malformed => return Presented::Malformed(via),
        }
    }
    Presented::Nothing
}

/// The query with any `token` parameter's value replaced by `***`, for logs.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("token", _)) => "token=***".to_owned(),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

enum Found<'a> {
    Absent,
    Value(&'a str),
    Malformed,
}

/// A JWT's alphabet (base64url and dots), within the size limit.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_TOKEN_BYTES
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The one header value of `name`, `Malformed` when repeated or not text.
fn single<'a>(headers: &'a HeaderMap, name: &axum::http::HeaderName) -> Found<'a> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Found::Absent,
        (Some(value), None) => value.to_str().map_or(Found::Malformed, Found::Value),
        (Some(_), Some(_)) => Found::Malformed,
    }
}

fn bearer(headers: &HeaderMap) -> Found<'_> {
    match single(headers, &AUTHORIZATION) {
        Found::Value(value) => match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                Found::Value(token.trim())
            }
            _ => Found::Malformed,
        },
        other => other,
    }
}

fn subprotocol(headers: &HeaderMap) -> Found<'_> {
    let entries = headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim);
    let mut tokens = entries.filter_map(|e| e.strip_prefix(TOKEN_SUBPROTOCOL_PREFIX));
    match (tokens.next(), tokens.next()) {
        (None, _) => Found::Absent,
        (Some(token), None) => Found::Value(token),
        (Some(_), Some(_)) => Found::Malformed,
    }
}

/// The `__Host-` cookie when present (only this host over HTTPS can have set it), else the
/// plain one.
fn cookie(headers: &HeaderMap) -> Found<'_> {
    match named_cookie(headers, SECURE_COOKIE_NAME) {
        Found::Absent => named_cookie(headers, COOKIE_NAME),
        found => found,
    }
}

fn named_cookie<'a>(headers: &'a HeaderMap, wanted: &str) -> Found<'a> {
    let pairs = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='));
    let mut tokens = pairs.filter(|(name, _)| *name == wanted).map(|(_, v)| v);
    match (tokens.next(), tokens.next()) {
        (None, _) => Found::Absent,
        (Some(token), None) => Found::Value(token),
        (Some(_), Some(_)) => Found::Malformed,
    }
}

fn query_token(query: Option<&str>) -> Found<'_> {
    let Some(query) = query else {
        return Found::Absent;
    };
    let mut tokens = query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .filter(|(key, _)| *key == "token")
        .map(|(_, value)| value);
    match (tokens.next(), tokens.next()) {
        (None, _) => Found::Absent,
        (Some(token), None) => Found::Value(token),
        (Some(_), Some(_)) => Found::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm4ifQ.c2ln-_";

    #[test]
    fn the_host_prefixed_cookie_wins_over_a_planted_plain_one() {
        let both = format!("tmuxgate_token=planted.by.sibling; __Host-tmuxgate_token={JWT}");
        let headers = headers(&[("cookie", both.as_str())]);
        assert_eq!(
            presented(&headers, None),
            Presented::Token(JWT, Transport::Cookie)
        );
        let plain = format!("tmuxgate_token={JWT}");
        let headers_plain = super::tests::headers(&[("cookie", plain.as_str())]);
        assert_eq!(
            presented(&headers_plain, None),
            Presented::Token(JWT, Transport::Cookie)
        );
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn each_transport_is_read() {
        let bearer = format!("Bearer {JWT}");
        let cases = [
            (
                headers(&[("authorization", &bearer)]),
                None,
                Transport::Bearer,
            ),
            (
                headers(&[(
                    "sec-websocket-protocol",
                    &format!("tmuxgate.v1, tmuxgate.token.{JWT}"),
                )]),
                None,
                Transport::Subprotocol,
            ),
            (
                headers(&[("cookie", &format!("theme=dark; tmuxgate_token={JWT}"))]),
                None,
                Transport::Cookie,
            ),
        ];
        for (h, q, via) in cases {
            assert_eq!(presented(&h, q), Presented::Token(JWT, via));
        }
        let query = format!("a=1&token={JWT}");
        assert_eq!(
            presented(&HeaderMap::new(), Some(&query)),
            Presented::Token(JWT, Transport::Query)
        );
        assert_eq!(
            presented(&HeaderMap::new(), Some("a=1")),
            Presented::Nothing
        );
        assert_eq!(presented(&HeaderMap::new(), None), Presented::Nothing);
    }

    #[test]
    fn the_first_transport_present_decides() {
        let h = headers(&[
            ("authorization", "Basic dXNlcjpwYXNz"),
            ("cookie", &format!("tmuxgate_token={JWT}")),
        ]);
        assert_eq!(presented(&h, None), Presented::Malformed(Transport::Bearer));
        let h = headers(&[("authorization", &format!("bearer {JWT}"))]);
        let query = "token=other.token.x".to_owned();
        assert_eq!(
            presented(&h, Some(&query)),
            Presented::Token(JWT, Transport::Bearer)
        );
    }

    #[test]
    fn present_but_unusable_is_malformed_never_nothing() {
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        let cases: Vec<(HeaderMap, Option<&str>, Transport)> = vec![
            (
                headers(&[("authorization", "Bearer ")]),
                None,
                Transport::Bearer,
            ),
            (
                headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]),
                None,
                Transport::Bearer,
            ),
            (
                headers(&[("authorization", "Token abc")]),
                None,
                Transport::Bearer,
            ),
            (
                headers(&[("authorization", &format!("Bearer {long}"))]),
                None,
                Transport::Bearer,
            ),
            (
                headers(&[("authorization", "Bearer a b")]),
                None,
                Transport::Bearer,
            ),
            (
                headers(&[(
                    "sec-websocket-protocol",
                    "tmuxgate.token.a, tmuxgate.token.b",
                )]),
                None,
                Transport::Subprotocol,
            ),
            (
                headers(&[("cookie", "tmuxgate_token=a; tmuxgate_token=b")]),
                None,
                Transport::Cookie,
            ),
            (
                headers(&[("cookie", "tmuxgate_token=")]),
                None,
                Transport::Cookie,
            ),
            (HeaderMap::new(), Some("token="), Transport::Query),
            (HeaderMap::new(), Some("token"), Transport::Query),
            (HeaderMap::new(), Some("token=a&token=b"), Transport::Query),
            (HeaderMap::new(), Some("token=%41bc"), Transport::Query),
        ];
        for (h, q, via) in cases {
            assert_eq!(presented(&h, q), Presented::Malformed(via), "{h:?} {q:?}");
        }
    }

    #[test]
    fn tokens_never_show_in_debug_or_redacted_queries() {
        let h = headers(&[("authorization", &format!("Bearer {JWT}"))]);
        assert!(!format!("{:?}", presented(&h, None)).contains(JWT));
        let query = format!("a=1&token={JWT}&b=2");
        assert_eq!(redact_query(&query), "a=1&token=***&b=2");
    }
}
