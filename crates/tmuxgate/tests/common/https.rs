//! A raw HTTPS client for TLS tests: one `GET` on a new connection, returning what the
//! handshake negotiated (certificate, ALPN, version) and the response head.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::STEP;
use super::pki::Ca;

/// What an HTTPS `GET` saw.
pub struct Answer {
    /// Status line and headers, lower-cased.
    pub head: String,
    /// The server certificate presented.
    pub peer: Vec<u8>,
    /// The negotiated application protocol.
    pub alpn: Option<Vec<u8>>,
    /// The negotiated TLS version.
    pub version: Option<rustls::ProtocolVersion>,
}

/// `GET path` over a new TLS connection to `addr`, trusting `ca`.
pub async fn https_get(addr: SocketAddr, ca: &Ca, path: &str) -> Answer {
    https_get_with(addr, ca.client_config(), path).await
}

/// [`https_get`] with a given client configuration.
pub async fn https_get_with(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    path: &str,
) -> Answer {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let connector = TlsConnector::from(config);
    let name = ServerName::IpAddress(addr.ip().into());
    let mut tls = tokio::time::timeout(STEP, connector.connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("handshake");
    let (_, connection) = tls.get_ref();
    let peer = connection
        .peer_certificates()
        .expect("a server certificate")[0]
        .to_vec();
    let alpn = connection.alpn_protocol().map(<[u8]>::to_vec);
    let version = connection.protocol_version();
    let head = request_head(&mut tls, addr, path).await;
    Answer {
        head,
        peer,
        alpn,
        version,
    }
}

/// Sends `GET path` and returns the response's status line and headers, lower-cased.
pub async fn request_head(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    addr: SocketAddr,
    path: &str,
) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    send_head(stream, &request).await
}

/// Sends `request` (a whole HTTP/1.1 request) over a new TLS connection to `addr`,
/// trusting `ca`; returns the response's status line and headers, lower-cased.
pub async fn https_send(addr: SocketAddr, ca: &Ca, request: &str) -> String {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let connector = TlsConnector::from(ca.client_config());
    let name = ServerName::IpAddress(addr.ip().into());
    let mut tls = tokio::time::timeout(STEP, connector.connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("handshake");
    send_head(&mut tls, request).await
}

/// Sends `request` and returns the response's status line and headers, lower-cased.
async fn send_head(stream: &mut (impl AsyncRead + AsyncWrite + Unpin), request: &str) -> String {
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let read = async {
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.expect("read") == 1 {
            head.push(byte[0]);
        }
    };
    tokio::time::timeout(STEP, read)
        .await
        .expect("response in time");
    String::from_utf8_lossy(&head).to_lowercase()
}
