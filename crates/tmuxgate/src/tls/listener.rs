//! [`TlsListener`]: the main listener under TLS, as an [`axum::serve::Listener`].
//!
//! axum's serve loop takes one connection from `accept` at a time, so the handshake must not
//! happen there: one client that opens a TCP connection and sends nothing would stall every
//! other client. Instead an accept task takes TCP connections, sets `TCP_NODELAY`, and
//! spawns one task per connection for its handshake (bounded by [`HANDSHAKE_TIMEOUT`]
//! against slowloris clients); finished handshakes queue for axum. Everything stops on the
//! gateway's shutdown token: the accept task, and handshakes still in progress.
//!
//! At most [`MAX_PENDING_HANDSHAKES`] connections are between accept and axum at once
//! (each holds a semaphore permit from before it is accepted until axum has it). At the
//! limit the accept task stops accepting until one finishes: further clients wait in the
//! kernel's listen backlog (and are refused by the kernel once that is full) instead of
//! costing a task and a TLS state each. Backpressure, not rejection: a flood of silent
//! clients delays new ones by at most [`HANDSHAKE_TIMEOUT`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::abuse::Blocks;

/// Longest a client may take from TCP connect to a finished TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections accepted and not yet handed to axum, at most (see the module doc).
pub const MAX_PENDING_HANDSHAKES: usize = 256;
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
    /// One permit per pending handshake.
    pending: Arc<Semaphore>,
    /// Addresses dropped at accept, before their handshake.
    blocks: Option<Arc<Blocks>>,
}

impl TlsListener {
    /// Starts accepting on `tcp`; handshakes use `acceptor` and failures count in `failures`;
    /// connections from addresses in `blocks` are closed at once, before any handshake.
    /// Stops when `shutdown` is cancelled or the listener is dropped.
    pub fn spawn(
        tcp: TcpListener,
        acceptor: TlsAcceptor,
        shutdown: CancellationToken,
        failures: Arc<AtomicU64>,
        blocks: Arc<Blocks>,
    ) -> std::io::Result<TlsListener> {
        let limited = (acceptor, MAX_PENDING_HANDSHAKES);
        TlsListener::spawn_limited(tcp, limited, shutdown, failures, Some(blocks))
    }

    /// [`TlsListener::spawn`] with at most `max_pending` handshakes at once.
    fn spawn_limited(
        tcp: TcpListener,
        (acceptor, max_pending): (TlsAcceptor, usize),
        shutdown: CancellationToken,
        failures: Arc<AtomicU64>,
        blocks: Option<Arc<Blocks>>,
    ) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (sender, ready) = mpsc::channel(READY_BACKLOG);
        let handshakes = Handshakes {
            acceptor,
            ready: sender,
            shutdown,
            failures,
            pending: Arc::new(Semaphore::new(max_pending)),
            blocks,
        };
        // The listener outlives a panic of the loop, which starts again.
        let tcp = Arc::new(tcp);
        let cancel = handshakes.shutdown.clone();
        let restart = crate::supervise::RESTART_BACKOFF;
        crate::supervise::spawn_supervised("tls-accept", cancel, restart, move || {
            accept_loop(tcp.clone(), handshakes.clone())
        });
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

async fn accept_loop(tcp: Arc<TcpListener>, handshakes: Handshakes) {
    loop {
        // Backpressure: no accept until a handshake slot is free.
        let slot = tokio::select! {
            _ = handshakes.shutdown.cancelled() => return,
            _ = handshakes.ready.closed() => return,
            slot = Arc::clone(&handshakes.pending).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = handshakes.shutdown.cancelled() => return,
            _ = handshakes.ready.closed() => return,
            accepted = tcp.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) if handshakes.is_blocked(peer) => drop((stream, slot)),
            Ok((stream, peer)) => {
                tokio::spawn(handshakes.clone().run(stream, peer, slot));
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
    fn is_blocked(&self, peer: SocketAddr) -> bool {
        self.blocks
            .as_ref()
            .is_some_and(|b| b.is_blocked(peer.ip()))
    }

    /// One connection's handshake, in its own task; `_slot` is held until axum has the
    /// connection or it failed.
    async fn run(self, stream: TcpStream, peer: SocketAddr, _slot: OwnedSemaphorePermit) {
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

#[cfg(test)]
mod tests {
    use axum::serve::Listener;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use tokio_rustls::TlsConnector;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A self-signed `localhost` acceptor, and a connector trusting it.
    fn pair() -> Result<(TlsAcceptor, TlsConnector), Box<dyn std::error::Error>> {
        let generated = rcgen::generate_simple_self_signed(["localhost".to_owned()])?;
        let cert: CertificateDer<'static> = generated.cert.der().clone();
        let key = PrivatePkcs8KeyDer::from(generated.signing_key.serialize_der());
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], PrivateKeyDer::Pkcs8(key))?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert)?;
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok((
            TlsAcceptor::from(Arc::new(server)),
            TlsConnector::from(Arc::new(client)),
        ))
    }

    async fn handshake(connector: &TlsConnector, addr: SocketAddr) -> std::io::Result<()> {
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
        connector.connect(name, tcp).await.map(drop)
    }

    #[tokio::test]
    async fn at_the_limit_accepting_waits_for_a_free_handshake_slot() -> TestResult {
        let (acceptor, connector) = pair()?;
        let tcp = TcpListener::bind("127.0.0.1:0").await?;
        let shutdown = CancellationToken::new();
        let failures = Arc::new(AtomicU64::new(0));
        let mut listener =
            TlsListener::spawn_limited(tcp, (acceptor, 1), shutdown.clone(), failures, None)?;
        let addr = listener.local_addr()?;
        let _drop_guard = shutdown.drop_guard();
        let silent = TcpStream::connect(addr).await?;
        let waiting = tokio::spawn(async move { handshake(&connector, addr).await });
        let served = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
        assert!(
            served.is_err(),
            "a second handshake ran beside the silent one"
        );
        drop(silent);
        let (_tls, _peer) = tokio::time::timeout(HANDSHAKE_TIMEOUT, listener.accept()).await?;
        waiting.await??;
        Ok(())
    }
}
