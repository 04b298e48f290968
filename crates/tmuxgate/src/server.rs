//! Accept loop, routers and graceful shutdown (being written).

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A started gateway (stub signature; implementation in progress).
pub struct Server {
    _config: crate::config::Config,
}

impl Server {
    /// Starts (or rediscovers) the tmux backends named by `config`.
    pub async fn start(config: crate::config::Config) -> anyhow::Result<Server> {
        Ok(Server { _config: config })
    }

    /// Serves WebSocket clients on `listener` and `/health` + `/metrics` on `health`
    /// until `shutdown` is cancelled.
    pub async fn serve(
        self,
        _listener: TcpListener,
        _health: Option<TcpListener>,
        _shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        anyhow::bail!("not yet implemented")
    }
}
