//! A scripted WebSocket server on 127.0.0.1:0: each test writes what the server reads and
//! answers, using the protocol crate's own types, so the client is tested without a gateway.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tmuxgate_client::protocol::frame::{FrameKind, put_output_header};
use tmuxgate_client::protocol::request::{Incoming, RequestId, decode_request};
use tmuxgate_client::protocol::{Event, Response};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// How long a script waits for the client before failing the test.
pub const STEP: Duration = Duration::from_secs(5);

/// A server that accepts one connection and runs a script on it.
pub struct ScriptedServer {
    /// `ws://127.0.0.1:PORT/ws`.
    pub url: String,
    task: JoinHandle<()>,
}

impl ScriptedServer {
    /// Binds 127.0.0.1:0 and runs `script` on the first connection.
    pub async fn start<F, Fut>(script: F) -> ScriptedServer
    where
        F: FnOnce(Peer) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}/ws", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let ws = tokio_tungstenite::accept_async(tcp).await.expect("upgrade");
            script(Peer { ws }).await;
        });
        ScriptedServer { url, task }
    }

    /// Waits for the script to end, failing the test if it panicked.
    pub async fn finish(self) {
        match tokio::time::timeout(STEP * 2, self.task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => std::panic::resume_unwind(e.into_panic()),
            Err(_) => panic!("server script did not finish"),
        }
    }
}

/// The server side of one connection.
pub struct Peer {
    ws: WebSocketStream<TcpStream>,
}

impl Peer {
    /// The next message other than ping/pong (None once the socket ended).
    pub async fn recv(&mut self) -> Option<Message> {
        loop {
            let next = tokio::time::timeout(STEP, self.ws.next())
                .await
                .expect("client silent");
            match next {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(message)) => return Some(message),
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The next request, decoded by the protocol crate.
    pub async fn request(&mut self) -> Incoming {
        match self.recv().await {
            Some(Message::Text(text)) => decode_request(&text).expect("valid request"),
            other => panic!("expected a request, got {other:?}"),
        }
    }

    /// Sends a JSON text frame.
    pub async fn send_text(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// Answers `id` with success data.
    pub async fn ok(&mut self, id: Option<RequestId>, data: Value) {
        self.send_text(Response::ok(id, data).to_json()).await;
    }

    /// Answers `id` with an error response.
    pub async fn err(
        &mut self,
        id: Option<RequestId>,
        code: tmuxgate_client::protocol::ErrorCode,
        msg: &str,
    ) {
        self.send_text(Response::err(id, code, msg).to_json()).await;
    }

    /// Sends an event.
    pub async fn event(&mut self, event: Event) {
        self.send_text(event.to_json()).await;
    }

    /// Sends an OUTPUT or SNAPSHOT frame.
    pub async fn frame(&mut self, kind: FrameKind, channel: u32, offset: u64, data: &[u8]) {
        let mut buf = BytesMut::new();
        put_output_header(&mut buf, kind, channel, offset);
        buf.extend_from_slice(data);
        self.ws
            .send(Message::Binary(buf.freeze()))
            .await
            .expect("send frame");
    }

    /// Sends a raw message.
    pub async fn send(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    /// Keeps the connection open until the client closes it.
    pub async fn until_closed(&mut self) {
        while self.recv().await.is_some() {}
    }

    /// Closes with an application code, then reads until the client answers.
    pub async fn close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code: code.into(),
            reason: reason.into(),
        };
        self.ws
            .send(Message::Close(Some(frame)))
            .await
            .expect("send close");
        while self.recv().await.is_some() {}
    }
}

/// `session-attach` success data for `channel`.
pub fn attached(channel: u32, offset: u64, snapshot: bool) -> Value {
    serde_json::json!({
        "sessionId": "s-1", "channel": channel, "pane": "%0", "mode": "write",
        "offset": offset, "snapshot": snapshot, "cols": 80, "rows": 24,
    })
}
