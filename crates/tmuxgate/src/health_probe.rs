//! `tmuxgate health`: one HTTP/1.1 GET over a plain [`TcpStream`], enough to
//! ask a running gateway for `/health` without an HTTP client dependency.
//! The response is bounded by [`MAX_RESPONSE_BYTES`] and the whole exchange by
//! the caller's timeout.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response (headers and body) accepted.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// An `http://host[:port][/path]` URL: the only form the probe speaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthUrl {
    host: String,
    port: u16,
    path: String,
}

/// Why a URL was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid URL: {0}")]
pub struct UrlError(&'static str);

/// A complete HTTP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code, e.g. 200.
    pub status: u16,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

/// Why no response was obtained.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Nothing accepted the connection.
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    /// Sending or receiving failed mid-way.
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// No complete response within the timeout.
    #[error("no response within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The peer did not speak HTTP/1.x as expected.
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    /// The response exceeded [`MAX_RESPONSE_BYTES`].
    #[error("response larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
}

impl HealthUrl {
    /// `http://ADDR/health`; an unspecified host (`0.0.0.0`, `::`) becomes
    /// the loopback address of the same family, where the listener also answers.
    pub fn for_listener(addr: SocketAddr) -> HealthUrl {
        let host = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        HealthUrl {
            host: host.to_string(),
            port: addr.port(),
            path: "/health".to_owned(),
        }
    }

    /// The same host and port with another path (starting with `/`).
    pub fn with_path(&self, path: &str) -> HealthUrl {
        HealthUrl {
            path: path.to_owned(),
            ..self.clone()
        }
    }

    /// `host:port`, with brackets around an IPv6 literal.
    fn authority(&self) -> String {
        match self.host.contains(':') {
            true => format!("[{}]:{}", self.host, self.port),
            false => format!("{}:{}", self.host, self.port),
        }
    }
}

impl FromStr for HealthUrl {
    type Err = UrlError;

    fn from_str(url: &str) -> Result<HealthUrl, UrlError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or(UrlError("only http://host[:port]/path is supported"))?;
        let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
        if path
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(UrlError("the path contains spaces or control characters"));
        }
        let (host, port) = split_authority(authority)?;
        Ok(HealthUrl {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }
}

/// Splits `host`, `host:port` or `[v6]:port`; the port defaults to 80.
fn split_authority(authority: &str) -> Result<(&str, u16), UrlError> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']').ok_or(UrlError("unclosed '['"))?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let valid_host = |c: char| c.is_ascii_alphanumeric() || ".-_:".contains(c);
    if host.is_empty() || !host.chars().all(valid_host) {
        return Err(UrlError("missing or invalid host"));
    }
    let port = match port {
        None => 80,
        Some(port) => port
            .parse()
            .ok()
            .filter(|&p| p != 0)
            .ok_or(UrlError("invalid port"))?,
    };
    Ok((host, port))
}

impl fmt::Display for HealthUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.path)
    }
}

/// GETs `url` and returns whatever status it answers, within `timeout`.
pub async fn probe(url: &HealthUrl, timeout: Duration) -> Result<Response, ProbeError> {
    send(url, &Request::default(), timeout).await
}

/// One request beyond a plain GET: the admin API's (`tmuxgate block`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Request<'a> {
    /// `GET` when `None`.
    pub method: Option<&'a str>,
    /// Sent as `Authorization: Bearer`.
    pub bearer: Option<&'a str>,
    /// A JSON body.
    pub json: Option<&'a str>,
}

/// Sends `request` to `url` and returns whatever status it answers, within `timeout`.
pub async fn send(
    url: &HealthUrl,
    request: &Request<'_>,
    timeout: Duration,
) -> Result<Response, ProbeError> {
    tokio::time::timeout(timeout, fetch(url, request))
        .await
        .unwrap_or(Err(ProbeError::Timeout(timeout)))
}

async fn fetch(url: &HealthUrl, req: &Request<'_>) -> Result<Response, ProbeError> {
    let mut stream = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(ProbeError::Connect)?;
    let mut request = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: tmuxgate-health\r\n\
         Accept: application/json\r\nConnection: close\r\n",
        req.method.unwrap_or("GET"),
        url.path,
        url.authority()
    );
    if let Some(token) = req.bearer {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = req.json.unwrap_or_default();
    if req.json.is_some() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).await?;
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = stream.read(&mut chunk).await?;
        received.extend_from_slice(&chunk[..read]);
        if received.len() > MAX_RESPONSE_BYTES {
            return Err(ProbeError::TooLarge);
        }
        if let Some(response) = parse_response(&received, read == 0)? {
            return Ok(response);
        }
        if read == 0 {
            return Err(ProbeError::Malformed("connection closed mid-response"));
        }
    }
}

/// Parses `data` as a response; `Ok(None)` while more bytes are needed.
/// `eof` says the peer closed, which ends a body without a length.
fn parse_response(data: &[u8], eof: bool) -> Result<Option<Response>, ProbeError> {
    let Some(head_end) = find(data, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&data[..head_end])
        .map_err(|_| ProbeError::Malformed("headers are not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = parse_status_line(lines.next().unwrap_or_default())?;
    let framing = parse_framing(lines)?;
    let body = &data[head_end + 4..];
    let body = match framing {
        Framing::Chunked => dechunk(body)?,
        Framing::Length(length) => body.get(..length).map(<[u8]>::to_vec),
        Framing::UntilClose => eof.then(|| body.to_vec()),
    };
    Ok(body.map(|body| Response { status, body }))
}

fn parse_status_line(line: &str) -> Result<u16, ProbeError> {
    let mut parts = line.split(' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(ProbeError::Malformed("not an HTTP/1.x status line"));
    }
    code.parse()
        .map_err(|_| ProbeError::Malformed("invalid status code"))
}

/// How the body's end is found.
enum Framing {
    Chunked,
    Length(usize),
    UntilClose,
}

fn parse_framing<'a>(headers: impl Iterator<Item = &'a str>) -> Result<Framing, ProbeError> {
    let mut framing = Framing::UntilClose;
    for header in headers {
        let (name, value) = header
            .split_once(':')
            .ok_or(ProbeError::Malformed("header without ':'"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            return Ok(Framing::Chunked);
        }
        if name.eq_ignore_ascii_case("content-length") {
            let length = value
                .parse()
                .map_err(|_| ProbeError::Malformed("invalid Content-Length"))?;
            framing = Framing::Length(length);
        }
    }
    Ok(framing)
}

/// Decodes a chunked body; `Ok(None)` until the last (zero-size) chunk arrived.
fn dechunk(mut data: &[u8]) -> Result<Option<Vec<u8>>, ProbeError> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(data, b"\r\n") else {
            return Ok(None);
        };
        let size_line = std::str::from_utf8(&data[..line_end]).unwrap_or_default();
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| ProbeError::Malformed("invalid chunk size"))?;
        if size == 0 {
            return Ok(Some(body));
        }
        let chunk_start = line_end + 2;
        let Some(chunk) = data.get(chunk_start..chunk_start.saturating_add(size).saturating_add(2))
        else {
            return Ok(None);
        };
        if &chunk[size..] != b"\r\n" {
            return Err(ProbeError::Malformed("chunk not followed by CRLF"));
        }
        body.extend_from_slice(&chunk[..size]);
        data = &data[chunk_start + size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Result<HealthUrl, UrlError> {
        text.parse()
    }

    #[test]
    fn urls_parse_and_print_back() {
        for text in [
            "http://127.0.0.1:9090/health",
            "http://[::1]:9090/health",
            "http://localhost:80/x?y=1",
        ] {
            assert_eq!(url(text).map(|u| u.to_string()).as_deref(), Ok(text));
        }
        assert_eq!(
            url("http://example").map(|u| u.to_string()).as_deref(),
            Ok("http://example:80/")
        );
    }

    #[test]
    fn bad_urls_are_refused() {
        for text in [
            "https://h/",
            "h:1/",
            "http://:1/",
            "http://h:0/",
            "http://h:x/",
            "http://h/a b",
            "http://u@h/",
        ] {
            assert!(url(text).is_err(), "{text}");
        }
    }

    #[test]
    fn unspecified_listener_is_probed_on_loopback() {
        let v4 = HealthUrl::for_listener("0.0.0.0:9090".parse().expect("addr"));
        assert_eq!(v4.to_string(), "http://127.0.0.1:9090/health");
        let v6 = HealthUrl::for_listener("[::]:1".parse().expect("addr"));
        assert_eq!(v6.to_string(), "http://[::1]:1/health");
    }

    fn parsed(data: &str, eof: bool) -> Option<Response> {
        parse_response(data.as_bytes(), eof).expect("well-formed")
    }

    #[test]
    fn content_length_bounds_the_body() {
        let full = "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(
            parsed(full, false),
            Some(Response {
                status: 503,
                body: b"{}".to_vec()
            })
        );
        assert_eq!(parsed(&full[..full.len() - 1], false), None);
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let complete = format!("{head}3\r\n{{\"a\r\n4;x=y\r\n\":1}}\r\n0\r\n\r\n");
        assert_eq!(
            parsed(&complete, false).map(|r| r.body),
            Some(b"{\"a\":1}".to_vec())
        );
        assert_eq!(parsed(&format!("{head}3\r\n{{\"a\r\n"), false), None);
    }

    #[test]
    fn body_without_length_ends_at_close() {
        let data = "HTTP/1.0 200 OK\r\n\r\nok";
        assert_eq!(parsed(data, false), None);
        assert_eq!(parsed(data, true).map(|r| r.body), Some(b"ok".to_vec()));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for data in [
            "SSH-2.0-OpenSSH\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nbad\r\n\r\n",
        ] {
            assert!(parse_response(data.as_bytes(), true).is_err(), "{data}");
        }
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(parse_response(chunked.as_bytes(), false).is_err());
        let huge = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n";
        assert!(matches!(parse_response(huge.as_bytes(), false), Ok(None)));
    }

    #[tokio::test]
    async fn unreachable_and_silent_peers() -> Result<(), std::io::Error> {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await?
            .local_addr()?;
        let result = probe(&HealthUrl::for_listener(closed), Duration::from_secs(5)).await;
        assert!(matches!(result, Err(ProbeError::Connect(_))), "{result:?}");
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let result = probe(
            &HealthUrl::for_listener(silent.local_addr()?),
            Duration::from_millis(100),
        )
        .await;
        assert!(matches!(result, Err(ProbeError::Timeout(_))), "{result:?}");
        Ok(())
    }
}
