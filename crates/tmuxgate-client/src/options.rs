//! [`ClientOptions`]: how a [`Client`](crate::Client) connects and how long it waits.

use std::net::IpAddr;
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Default deadline for one request/response round trip.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// WebSocket read and write buffer size: small, like the gateway's own (tungstenite's
/// default is 128 KiB per direction, far too much for thousands of benchmark clients).
pub const SOCKET_BUFFER_BYTES: usize = 8 * 1024;
/// Largest message the client accepts from the server (snapshots can be large).
pub const MAX_INCOMING_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// Events kept for [`Client::wait_event`](crate::Client::wait_event) before the oldest are dropped.
pub const EVENT_BACKLOG: usize = 4096;

/// Connection settings. `ClientOptions::default()` is what [`Client::connect`](crate::Client::connect) uses.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Deadline for each request made through [`Client::request`](crate::Client::request).
    pub request_timeout: Duration,
    /// Start with reading paused (see [`Client::pause_reading`](crate::Client::pause_reading)).
    pub paused: bool,
    /// Extra HTTP headers on the upgrade request (e.g. `Origin`, `Authorization`).
    pub headers: Vec<(String, String)>,
    /// tungstenite settings: buffer sizes and incoming size limits.
    pub websocket: WebSocketConfig,
    /// Whether attachments keep every byte they receive (default `true`). With `false` their
    /// [`Terminal`](crate::Terminal) only checks and tracks offsets: memory stays constant
    /// however long the stream, as benchmarks with thousands of viewers or fast panes need;
    /// read the bytes from [`Attachment::next_frame`](crate::Attachment::next_frame).
    pub keep_output: bool,
    /// For `wss://` URLs: the certificates to trust and the TLS settings (feature `tls`).
    /// A `wss://` URL without it is refused rather than trusting nothing or everything.
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The local address to connect from (port chosen by the system); `None`: any. Tests
    /// use `127.0.0.2`, `127.0.0.3`, ... to be distinct clients to the gateway.
    pub local_addr: Option<IpAddr>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            paused: false,
            headers: Vec::new(),
            websocket: WebSocketConfig::default()
                .read_buffer_size(SOCKET_BUFFER_BYTES)
                .write_buffer_size(SOCKET_BUFFER_BYTES)
                .max_message_size(Some(MAX_INCOMING_MESSAGE_BYTES))
                .max_frame_size(Some(MAX_INCOMING_MESSAGE_BYTES)),
            keep_output: true,
            #[cfg(feature = "tls")]
            tls: None,
            local_addr: None,
        }
    }
}

impl ClientOptions {
    /// Sets the request deadline.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Starts the client with reading paused: it never reads the socket until resumed.
    pub fn paused(mut self, paused: bool) -> Self {
        self.paused = paused;
        self
    }

    /// Sets whether attachments keep the bytes they receive (see [`ClientOptions::keep_output`]).
    pub fn keep_output(mut self, keep: bool) -> Self {
        self.keep_output = keep;
        self
    }

    /// Connects `wss://` URLs with `config` (feature `tls`).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Connects from `ip` (see [`ClientOptions::local_addr`]).
    pub fn bind(mut self, ip: IpAddr) -> Self {
        self.local_addr = Some(ip);
        self
    }

    /// Presents `token` at the upgrade (`Authorization: Bearer`), so the connection starts
    /// authenticated.
    pub fn token(self, token: &str) -> Self {
        self.header("Authorization", format!("Bearer {token}"))
    }

    /// Adds an HTTP header to the upgrade request; one the handshake sets itself (`Host`)
    /// replaces the generated value.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}
