//! [`Client`]: one WebSocket connection to the gateway: connect, requests with ids and
//! deadlines, raw sends for hostile-input tests, events, pausing, and closing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tmuxgate_protocol::frame::encode_input;
use tmuxgate_protocol::request::{Request, RequestId, encode_request};
use tmuxgate_protocol::response::ResponseBody;
use tmuxgate_protocol::{CloseCode, Event};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, broadcast, mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::reader::{self, ABNORMAL_CLOSURE, Pending, Reply, Shared};
use crate::{ClientError, ClientOptions};

/// The WebSocket type the client speaks over.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A connection to the gateway. Methods take `&self`, so one client can serve several tasks
/// (wrap it in an `Arc`); dropping it stops the reader and closes the socket.
pub struct Client {
    shared: Arc<Shared>,
    sink: Mutex<SplitSink<Ws, Message>>,
    raw: Mutex<mpsc::UnboundedReceiver<ResponseBody>>,
    paused: watch::Sender<bool>,
    next_id: AtomicU64,
    request_timeout: Duration,
    keep_output: bool,
}

impl Client {
    /// Connects to `url` (`ws://host:port/` or `ws://host:port/ws`) with default options.
    pub async fn connect(url: &str) -> Result<Client, ClientError> {
        Client::connect_with(url, ClientOptions::default()).await
    }

    /// Connects without ever reading the socket until [`resume_reading`](Self::resume_reading):
    /// a viewer that stops reading, as slow-client tests need.
    pub async fn connect_paused(url: &str) -> Result<Client, ClientError> {
        Client::connect_with(url, ClientOptions::default().paused(true)).await
    }

    /// Connects with explicit options.
    pub async fn connect_with(url: &str, options: ClientOptions) -> Result<Client, ClientError> {
        let request = upgrade_request(url, &options.headers)?;
        let ws = open(request, &options).await?;
        let (sink, stream) = ws.split();
        let (shared, raw) = Shared::new();
        let shared = Arc::new(shared);
        let (paused, paused_rx) = watch::channel(options.paused);
        tokio::spawn(reader::run(stream, shared.clone(), paused_rx));
        Ok(Client {
            shared,
            sink: Mutex::new(sink),
            raw: Mutex::new(raw),
            paused,
            next_id: AtomicU64::new(1),
            request_timeout: options.request_timeout,
            keep_output: options.keep_output,
        })
    }

    /// Sends a request with the next numeric id and waits for its response (whatever its
    /// `success`), up to the request timeout.
    pub async fn request(&self, request: Request) -> Result<ResponseBody, ClientError> {
        Ok(self.exchange(request).await?.body)
    }

    /// Like [`Client::request`], waiting up to `timeout` instead of the request timeout.
    pub async fn request_within(
        &self,
        request: Request,
        timeout: Duration,
    ) -> Result<ResponseBody, ClientError> {
        Ok(self.exchange_within(request, timeout).await?.body)
    }

    /// Sends a request and waits for the reader to hand over its [`Reply`].
    pub(crate) async fn exchange(&self, request: Request) -> Result<Reply, ClientError> {
        self.exchange_within(request, self.request_timeout).await
    }

    async fn exchange_within(
        &self,
        request: Request,
        timeout: Duration,
    ) -> Result<Reply, ClientError> {
        if let Some(err) = self.shared.closed_error() {
            return Err(err);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, reply_rx) = oneshot::channel();
        let attach = matches!(request, Request::SessionAttach(_));
        crate::events::lock(&self.shared.pending).insert(id, Pending { reply, attach });
        // Forgets the request however this future ends: answered, failed, timed out or dropped.
        let _forget = ForgetOnDrop {
            shared: &self.shared,
            id,
        };
        let text = encode_request(&RequestId::Number(id.into()), &request);
        let round_trip = async {
            self.send(Message::text(text)).await?;
            reply_rx.await.map_err(|_| self.closed_error())
        };
        let outcome = tokio::time::timeout(timeout, round_trip).await;
        outcome.unwrap_or(Err(ClientError::Timeout))
    }

    /// Sends a text frame as is (for malformed-JSON and unknown-type tests).
    pub async fn send_text(&self, text: impl Into<String>) -> Result<(), ClientError> {
        self.send(Message::text(text.into())).await
    }

    /// Sends a text frame whose payload is not checked for UTF-8 (for invalid-UTF-8 tests).
    pub async fn send_text_bytes(&self, payload: Vec<u8>) -> Result<(), ClientError> {
        self.send(Message::Frame(Frame::message(
            payload,
            OpCode::Data(Data::Text),
            true,
        )))
        .await
    }

    /// Sends a binary frame as is (for undecodable-frame tests).
    pub async fn send_binary(&self, data: Vec<u8>) -> Result<(), ClientError> {
        self.send(Message::binary(data)).await
    }

    /// Sends terminal input for `channel` as a binary INPUT frame.
    pub async fn send_input(&self, channel: u32, data: &[u8]) -> Result<(), ClientError> {
        self.send(Message::Binary(encode_input(channel, data)))
            .await
    }

    /// Sends any WebSocket message (pings, fragments, custom close frames).
    pub async fn send(&self, message: Message) -> Result<(), ClientError> {
        let result = self.sink.lock().await.send(message).await;
        result.map_err(|e| {
            self.shared
                .closed_error()
                .unwrap_or_else(|| closed_abnormally(e))
        })
    }

    /// The next response that matched no request in flight: a response with a null or string
    /// id (e.g. to malformed JSON or to [`send_text`](Self::send_text)), or one that arrived
    /// after its request timed out.
    pub async fn next_raw_response(&self, timeout: Duration) -> Result<ResponseBody, ClientError> {
        let mut raw = self.raw.lock().await;
        match tokio::time::timeout(timeout, raw.recv()).await {
            Ok(Some(body)) => Ok(body),
            Ok(None) => Err(self.closed_error()),
            Err(_) => Err(ClientError::Timeout),
        }
    }

    /// A live stream of the events that arrive from now on. Slow subscribers see
    /// `RecvError::Lagged`; [`wait_event`](Self::wait_event) never misses one.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// The first buffered or future event `matches` accepts; the others stay buffered.
    pub async fn wait_event(
        &self,
        matches: impl FnMut(&Event) -> bool,
        timeout: Duration,
    ) -> Result<Event, ClientError> {
        self.shared
            .events
            .wait(matches, timeout, || self.shared.closed_error())
            .await
    }

    /// The oldest buffered event, or the next one to arrive.
    pub async fn next_event(&self, timeout: Duration) -> Result<Event, ClientError> {
        self.wait_event(|_| true, timeout).await
    }

    /// Stops reading the socket: no responses, events or frames are read, and pings go
    /// unanswered, until [`resume_reading`](Self::resume_reading). Sending still works.
    pub fn pause_reading(&self) {
        self.paused.send_replace(true);
    }

    /// Resumes reading after [`pause_reading`](Self::pause_reading) or [`connect_paused`](Self::connect_paused).
    pub fn resume_reading(&self) {
        self.paused.send_replace(false);
    }

    /// The server's close code and reason once the connection has ended
    /// (1006 when it ended without a close frame).
    pub fn closed(&self) -> Option<(u16, String)> {
        self.shared.close_info()
    }

    /// Waits until the connection ends and returns its close code and reason.
    pub async fn wait_closed(&self, timeout: Duration) -> Result<(u16, String), ClientError> {
        let mut closed = self.shared.closed.subscribe();
        match tokio::time::timeout(timeout, closed.wait_for(Option::is_some)).await {
            Ok(Ok(info)) => Ok(info.clone().unwrap_or_default()),
            Ok(Err(_)) | Err(_) => Err(ClientError::Timeout),
        }
    }

    /// Sends a normal close (1000) and waits (up to the request timeout) for the server's
    /// answer; a connection that is already closed is fine.
    pub async fn close(&self) -> Result<(), ClientError> {
        if self.closed().is_some() {
            return Ok(());
        }
        let frame = CloseFrame {
            code: CloseCode::Normal.code().into(),
            reason: "".into(),
        };
        match self.send(Message::Close(Some(frame))).await {
            Ok(()) | Err(ClientError::Closed { .. }) => {}
            Err(e) => return Err(e),
        }
        self.wait_closed(self.request_timeout).await.map(drop)
    }

    /// Server messages the reader could not decode (a correct gateway keeps this at 0).
    pub fn malformed_messages(&self) -> u64 {
        self.shared.malformed()
    }

    /// The state shared with the reader task.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Whether new attachments keep the bytes they receive ([`ClientOptions::keep_output`]).
    pub(crate) fn keeps_output(&self) -> bool {
        self.keep_output
    }

    fn closed_error(&self) -> ClientError {
        self.shared.closed_error().unwrap_or(ClientError::Closed {
            code: ABNORMAL_CLOSURE,
            reason: "connection ended".into(),
        })
    }
}

/// Removes a request from the in-flight table when its caller stops waiting; a response
/// arriving later goes to [`Client::next_raw_response`].
struct ForgetOnDrop<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        crate::events::lock(&self.shared.pending).remove(&self.id);
    }
}

/// The upgrade request for `url` with extra headers. A header the handshake itself sets
/// (`Host`, …) is replaced: appended, it would be ignored, as tungstenite writes only the
/// first value of those.
fn upgrade_request(
    url: &str,
    headers: &[(String, String)],
) -> Result<tungstenite::handshake::client::Request, ClientError> {
    let bad = |message: String| ClientError::Connect {
        status: None,
        message,
    };
    let mut request = url
        .into_client_request()
        .map_err(|e| bad(format!("{url}: {e}")))?;
    let generated: Vec<HeaderName> = request.headers().keys().cloned().collect();
    for (name, value) in headers {
        let name =
            HeaderName::try_from(name.as_str()).map_err(|e| bad(format!("header {name}: {e}")))?;
        let value = HeaderValue::try_from(value.as_str())
            .map_err(|e| bad(format!("header {name}: {e}")))?;
        if generated.contains(&name) {
            request.headers_mut().insert(name, value);
        } else {
            request.headers_mut().append(name, value);
        }
    }
    Ok(request)
}

/// Opens the WebSocket: TCP with `TCP_NODELAY`, TLS for `wss://`, then the upgrade.
#[cfg(feature = "tls")]
async fn open(
    request: tungstenite::handshake::client::Request,
    options: &ClientOptions,
) -> Result<Ws, ClientError> {
    if request.uri().scheme_str() == Some("wss") && options.tls.is_none() {
        return Err(ClientError::Connect {
            status: None,
            message: "a wss:// URL needs ClientOptions::tls (the certificates to trust)".into(),
        });
    }
    let connector = options
        .tls
        .clone()
        .map(tokio_tungstenite::Connector::Rustls);
    let config = Some(options.websocket);
    if let Some(ip) = options.local_addr {
        let tcp = connect_from(ip, &request).await?;
        return tokio_tungstenite::client_async_tls_with_config(request, tcp, config, connector)
            .await
            .map(|(ws, _response)| ws)
            .map_err(connect_error);
    }
    tokio_tungstenite::connect_async_tls_with_config(request, config, true, connector)
        .await
        .map(|(ws, _response)| ws)
        .map_err(connect_error)
}

/// A TCP connection from `ip` to the request's host and port, with `TCP_NODELAY`.
async fn connect_from(
    ip: std::net::IpAddr,
    request: &tungstenite::handshake::client::Request,
) -> Result<tokio::net::TcpStream, ClientError> {
    let failed = |message: String| ClientError::Connect {
        status: None,
        message,
    };
    let uri = request.uri();
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let default_port = if uri.scheme_str() == Some("wss") {
        443
    } else {
        80
    };
    let port = uri.port_u16().unwrap_or(default_port);
    let target = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| failed(format!("resolve {host}: {e}")))?
        .find(|addr| addr.is_ipv4() == ip.is_ipv4())
        .ok_or_else(|| failed(format!("{host} has no address of {ip}'s family")))?;
    let socket = match ip {
        std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .map_err(|e| failed(e.to_string()))?;
    socket
        .bind((ip, 0).into())
        .map_err(|e| failed(format!("bind {ip}: {e}")))?;
    let tcp = socket
        .connect(target)
        .await
        .map_err(|e| failed(format!("connect {target}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// Opens the WebSocket: TCP with `TCP_NODELAY`, then the upgrade (`ws://` only).
#[cfg(not(feature = "tls"))]
async fn open(
    request: tungstenite::handshake::client::Request,
    options: &ClientOptions,
) -> Result<Ws, ClientError> {
    if let Some(ip) = options.local_addr {
        let tcp = tokio_tungstenite::MaybeTlsStream::Plain(connect_from(ip, &request).await?);
        return tokio_tungstenite::client_async_with_config(request, tcp, Some(options.websocket))
            .await
            .map(|(ws, _response)| ws)
            .map_err(connect_error);
    }
    tokio_tungstenite::connect_async_with_config(request, Some(options.websocket), true)
        .await
        .map(|(ws, _response)| ws)
        .map_err(connect_error)
}

fn connect_error(error: tungstenite::Error) -> ClientError {
    let status = match &error {
        tungstenite::Error::Http(response) => Some(response.status().as_u16()),
        _ => None,
    };
    ClientError::Connect {
        status,
        message: error.to_string(),
    }
}

fn closed_abnormally(error: tungstenite::Error) -> ClientError {
    ClientError::Closed {
        code: ABNORMAL_CLOSURE,
        reason: error.to_string(),
    }
}
