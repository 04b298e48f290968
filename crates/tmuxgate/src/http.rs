//! The HTTP/1.1 loop of the main listener and the health port, in place of
//! `axum::serve`, which sets no header deadline: a client must send a request's complete headers within `HTTP_HEADER_TIMEOUT`
//! of starting it (slowloris) and in at most `MAX_HEADER_BYTES`, or its connection is
//! closed. Each connection's requests carry its TCP peer as `ConnectInfo<PeerAddr>`. On
//! shutdown it stops accepting, lets every connection finish its request in flight, and
//! returns when they have (upgraded WebSockets are the gateway's own tasks by then).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::forwarded::PeerAddr;

/// The header limits of one listener.
#[derive(Clone, Copy, Debug)]
pub struct HeaderLimits {
    /// `HTTP_HEADER_TIMEOUT`: time to send a request's headers.
    pub timeout: Duration,
    /// `MAX_HEADER_BYTES`: the request line and headers, at most (hyper's buffer; at
    /// least 8 KiB).
    pub max_bytes: usize,
}

impl HeaderLimits {
    /// `HTTP_HEADER_TIMEOUT` and `MAX_HEADER_BYTES` as configured.
    pub fn of(config: &crate::config::Config) -> HeaderLimits {
        HeaderLimits {
            timeout: config.http_header_timeout,
            max_bytes: config.max_header_bytes,
        }
    }
}

/// Serves `app` on `listener` until `shutdown`, then waits for open requests to end.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    limits: HeaderLimits,
    shutdown: CancellationToken,
) where
    L: Listener<Addr = SocketAddr>,
{
    let connections = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.timeout)
        .max_buf_size(limits.max_bytes.max(8 * 1024));
    loop {
        let (io, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let service = WithPeer {
            app: app.clone(),
            peer,
        };
        let conn = http
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => return log_end(result),
                _ = shutdown.cancelled() => conn.as_mut().graceful_shutdown(),
            }
            log_end(conn.await);
        });
    }
    connections.close();
    connections.wait().await;
}

fn log_end(result: Result<(), hyper::Error>) {
    if let Err(error) = result {
        // A header deadline or size refusal, a client gone mid-request: theirs, not ours.
        tracing::debug!(%error, "HTTP connection ended");
    }
}

/// The router with the connection's peer in each request's extensions.
#[derive(Clone)]
struct WithPeer {
    app: Router,
    peer: SocketAddr,
}

impl hyper::service::Service<hyper::Request<Incoming>> for WithPeer {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = axum::routing::future::RouteFuture<Infallible>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let mut request = request.map(Body::new);
        request
            .extensions_mut()
            .insert(ConnectInfo(PeerAddr(self.peer)));
        tower_service::Service::call(&mut self.app.clone(), request)
    }
}
