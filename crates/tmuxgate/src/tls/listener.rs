//! [`TlsListener`]: the main listener under TLS, as an [`axum::serve::Listener`].
//!
//! axum's serve loop takes one connection from `accept` at a time, so the handshake must not
//! happen there: one client that opens a TCP connection and sends nothing would stall every
//! other client. Instead an accept task takes TCP connections, sets `TCP_NODELAY`, and
//! spawns one task per connection for its handshake (bounded by [`HANDSHAKE_TIMEOUT`]
//! against slowloris clients); finished handshakes queue for axum. Everything stops on the
//! gateway's shutdown token: the accept task, and handshakes still in progress.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// Longest a client may take from TCP connect to a finished TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for axum to take them.
const READY_BACKLOG: usize = 64;
/// Pause after an accept error that is not about one connection (out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// A connection whose handshake is done, and its peer.
type Ready = (TlsStream<TcpStream>, SocketAddr);

/// TLS connections for `axum::serve`; see the module documentation.
pub struct TlsListener {
    ready: mpsc::Receiver<Ready>,
    local: SocketAddr,
}

/// What the accept task and each handshake task need.
#[derive(Clone)]
struct Handshakes {
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<Ready>,
    shutdown: CancellationToken,
    failures: Arc<AtomicU64>,
}

impl TlsListener {
    /// Starts accepting on `tcp`; handshakes use `acceptor` and failures count in `failures`.
    /// Stops when `shutdown` is cancelled or the listener is dropped.
    pub fn spawn(
        tcp: TcpListener,
        acceptor: TlsAcceptor,
        shutdown: CancellationToken,
        failures: Arc<AtomicU64>,
    ) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (sender, ready) = mpsc::channel(READY_BACKLOG);
        let handshakes = Handshakes {
            acceptor,
            ready: sender,
            shutdown,
            failures,
        };
        tokio::spawn(accept_loop(tcp, handshakes));
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> Ready {
        match self.ready.recv().await {
            Some(ready) => ready,
            // The accept task has stopped, which it does only on shutdown: axum stops
            // calling us then, so there is nothing more to hand out.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

async fn accept_loop(tcp: TcpListener, handshakes: Handshakes) {
    loop {
        let accepted = tokio::select! {
            _ = handshakes.shutdown.cancelled() => return,
            _ = handshakes.ready.closed() => return,
            accepted = tcp.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                tokio::spawn(handshakes.clone().run(stream, peer));
            }
            Err(error) if is_per_connection(&error) => {}
            Err(error) => {
                tracing::error!(%error, "accept failed; pausing");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

impl Handshakes {
    /// One connection's handshake, in its own task.
    async fn run(self, stream: TcpStream, peer: SocketAddr) {
        // Nagle would hold a frame written right after another until the client's
        // delayed ACK (see `server.rs`); TLS records are no different.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY");
        }
        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream));
        let outcome = tokio::select! {
            _ = self.shutdown.cancelled() => return,
            outcome = handshake => outcome,
        };
        match outcome {
            Ok(Ok(tls)) => {
                // Fails only when the listener is gone (shutdown): the connection just closes.
                let _ = self.ready.send((tls, peer)).await;
            }
            Ok(Err(error)) => self.failed(peer, &error.to_string()),
            Err(_) => self.failed(peer, "timed out"),
        }
    }

    fn failed(&self, peer: SocketAddr, reason: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%peer, reason, "TLS handshake failed");
    }
}

/// Errors about one connection that is already gone: nothing to wait for.
fn is_per_connection(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}
