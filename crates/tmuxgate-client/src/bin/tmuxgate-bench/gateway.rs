//! The gateway under test: one this tool starts ([`OwnGateway`]: the `tmuxgate` binary on
//! 127.0.0.1 with free ports and private tmux sockets, stopped and its tmux servers killed
//! at the end), or one already running that the user names by URL and PID.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::oneshot;

use crate::procfs;

/// How long the gateway may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGTERM'd gateway may take to exit (its SHUTDOWN_TIMEOUT is set below this).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The gateway's grace period for open connections when stopped, in ms.
const GATEWAY_SHUTDOWN_MS: &str = "2000";
/// How long `tmux kill-server` may take.
const KILL_SERVER_TIMEOUT: Duration = Duration::from_secs(5);

/// How to start an own gateway.
#[derive(Clone, Debug)]
pub struct GatewaySpec {
    /// The `tmuxgate` binary.
    pub bin: PathBuf,
    /// tmux executable (`TMUX_BIN`), also used to kill its servers.
    pub tmux_bin: String,
    /// `BACKEND_POOL_SIZE`, when given.
    pub backends: Option<u8>,
    /// `DEFAULT_COMMAND`: what new sessions run; `None` leaves it unset, so sessions run
    /// the gateway's integrated shell (the one `command-execute` needs).
    pub default_command: Option<String>,
    /// `MAX_CONNECTIONS`.
    pub max_connections: u64,
    /// Extra `KEY=VALUE` settings (`--gateway-env`), applied last.
    pub extra_env: Vec<(String, String)>,
    /// Whether the gateway serves TLS (its settings are in `extra_env`): `wss://` URLs.
    pub tls: bool,
}

/// A gateway, own or external.
pub enum Gateway {
    /// Started by this tool.
    Own(Box<OwnGateway>),
    /// Given by `--url` (and `--pid` for memory and CPU figures).
    External {
        /// WebSocket URL.
        url: String,
        /// Its process id, if known.
        pid: Option<u32>,
    },
}

impl Gateway {
    /// The WebSocket URL.
    pub fn url(&self) -> &str {
        match self {
            Gateway::Own(own) => &own.url,
            Gateway::External { url, .. } => url,
        }
    }

    /// The gateway's process id, when known.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Gateway::Own(own) => Some(own.pid),
            Gateway::External { pid, .. } => *pid,
        }
    }

    /// The tmux server sockets of an own gateway (empty for an external one).
    pub fn sockets(&self) -> Vec<PathBuf> {
        match self {
            Gateway::Own(own) => own.sockets(),
            Gateway::External { .. } => Vec::new(),
        }
    }

    /// Process ids of an own gateway's tmux servers (empty for an external one).
    pub fn tmux_pids(&self) -> Vec<u32> {
        match self {
            Gateway::Own(own) => own.server_pids.clone(),
            Gateway::External { .. } => Vec::new(),
        }
    }

    /// Process ids of an own gateway's tmux servers as they are now (a server the gateway
    /// started again has a new one); empty for an external gateway.
    pub async fn current_tmux_pids(&self) -> Vec<u32> {
        match self {
            Gateway::Own(own) => server_pids(&own.tmux_bin, &own.sockets()).await,
            Gateway::External { .. } => Vec::new(),
        }
    }

    /// A CPU meter over the gateway, its tmux servers and this tool.
    pub fn cpu_meter(&self) -> crate::procfs::CpuMeter {
        let tmux = self.tmux_pids();
        crate::procfs::CpuMeter::start(vec![
            ("gateway_cpu_pct", self.pid().into_iter().collect()),
            ("tmux_cpu_pct", tmux),
            ("bench_cpu_pct", vec![std::process::id()]),
        ])
    }

    /// The value of the metric `name` in an own gateway's `/metrics` (`None` for an
    /// external gateway, or when it cannot be read).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let Gateway::Own(own) = self else {
            return None;
        };
        let text = http_get(own.health.as_deref()?, "/metrics").await?;
        let prefix = format!("{name} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Stops an own gateway and kills its tmux servers; leaves an external one alone.
    pub async fn stop(self) {
        if let Gateway::Own(own) = self {
            own.stop().await;
        }
    }
}

/// A `tmuxgate` process this tool started.
pub struct OwnGateway {
    child: Option<Child>,
    pid: u32,
    url: String,
    /// Its health listener (`/health`, `/metrics`).
    health: Option<String>,
    socket_dir: PathBuf,
    tmux_bin: String,
    server_pids: Vec<u32>,
}

impl OwnGateway {
    /// Starts the gateway in `dir` (its log is `dir/gateway.log`) and waits until it listens.
    pub async fn start(spec: &GatewaySpec, dir: &Path) -> anyhow::Result<OwnGateway> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let socket_dir = dir.join("sock");
        let data_dir = dir.join("state");
        let log_path = dir.join("gateway.log");
        crate::auth::prepare(&spec.bin, &data_dir).await?;
        let mut child = command(spec, &socket_dir, &data_dir)
            .spawn()
            .with_context(|| format!("cannot run the gateway {}", spec.bin.display()))?;
        let pid = child.id().context("gateway exited at once")?;
        let stderr = child.stderr.take().context("gateway stderr not piped")?;
        let (listening_tx, listening) = oneshot::channel();
        tokio::spawn(copy_log(stderr, log_path.clone(), listening_tx));
        let mut gateway = OwnGateway {
            child: Some(child),
            pid,
            url: String::new(),
            health: None,
            socket_dir,
            tmux_bin: spec.tmux_bin.clone(),
            server_pids: Vec::new(),
        };
        let addr = tokio::time::timeout(START_TIMEOUT, listening).await;
        let scheme = if spec.tls { "wss" } else { "ws" };
        match addr {
            Ok(Ok((addr, health))) => {
                gateway.url = format!("{scheme}://{addr}/ws");
                gateway.health = health;
            }
            Ok(Err(_)) => bail!(
                "the gateway exited before listening; its log:\n{}",
                log_tail(&log_path)
            ),
            Err(_) => bail!(
                "the gateway did not listen within {START_TIMEOUT:?}; its log:\n{}",
                log_tail(&log_path)
            ),
        }
        // The gateway starts every backend before it listens.
        gateway.server_pids = server_pids(&gateway.tmux_bin, &gateway.sockets()).await;
        Ok(gateway)
    }

    /// The tmux server sockets in the gateway's socket directory.
    pub fn sockets(&self) -> Vec<PathBuf> {
        use std::os::unix::fs::FileTypeExt;
        let Ok(entries) = std::fs::read_dir(&self.socket_dir) else {
            return Vec::new();
        };
        let mut sockets: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
            .map(|e| e.path())
            .collect();
        sockets.sort();
        sockets
    }

    /// SIGTERM, wait for the exit (SIGKILL after [`STOP_TIMEOUT`]), then kill its tmux
    /// servers: the gateway itself leaves them running by design.
    pub async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .status();
            if tokio::time::timeout(STOP_TIMEOUT, child.wait())
                .await
                .is_err()
            {
                eprintln!("warning: the gateway ignored SIGTERM; killing it");
                let _ = child.kill().await;
            }
        }
        for socket in self.sockets() {
            let mut kill = Command::new(&self.tmux_bin);
            kill.arg("-S").arg(&socket).arg("kill-server");
            kill.stdout(Stdio::null()).stderr(Stdio::null());
            kill.kill_on_drop(true);
            let _ = tokio::time::timeout(KILL_SERVER_TIMEOUT, kill.status()).await;
        }
        let (pids, marker) = (self.server_pids.clone(), self.marker());
        let _ = tokio::task::spawn_blocking(move || procfs::terminate(&pids, &marker)).await;
    }

    /// What the command line of each of its tmux processes contains: the socket directory.
    fn marker(&self) -> String {
        self.socket_dir.display().to_string()
    }
}

impl Drop for OwnGateway {
    /// Only when [`stop`](Self::stop) did not run (an error or Ctrl-C unwound the
    /// scenario): kill the gateway and its tmux servers by pid, without `kill-server`
    /// (it can hang once the gateway stopped reading its control clients).
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = child.start_kill();
        procfs::terminate(&self.server_pids, &self.marker());
    }
}

/// The process id of the tmux server on each socket (`display-message -p '#{pid}'`).
async fn server_pids(tmux_bin: &str, sockets: &[PathBuf]) -> Vec<u32> {
    let mut pids = Vec::new();
    for socket in sockets {
        let mut display = Command::new(tmux_bin);
        display
            .arg("-S")
            .arg(socket)
            .args(["display-message", "-p", "#{pid}"]);
        display
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(KILL_SERVER_TIMEOUT, display.output()).await;
        if let Ok(Ok(output)) = output {
            let text = String::from_utf8_lossy(&output.stdout);
            pids.extend(text.trim().parse::<u32>().ok());
        }
    }
    pids
}

/// The gateway's command line: every setting it needs in the environment, loopback only,
/// free ports, authentication on with the run's own `DATA_DIR`, JSON logs with only
/// warnings and the listening line, rate limits and per-user caps out of the way.
fn command(spec: &GatewaySpec, socket_dir: &Path, data_dir: &Path) -> Command {
    let mut cmd = Command::new(&spec.bin);
    cmd.arg("start")
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .env("PROXY_HOST", "127.0.0.1")
        .env("PROXY_PORT", "0")
        .env("HEALTH_PORT", "0")
        .env("TMUX_SOCKET_PATH", socket_dir)
        .env("DATA_DIR", data_dir)
        .env("TMUX_BIN", &spec.tmux_bin)
        .env("MAX_CONNECTIONS", spec.max_connections.to_string())
        .env("SHUTDOWN_TIMEOUT", GATEWAY_SHUTDOWN_MS)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn,tmuxgate::cli=info")
        // One address opens thousands of connections and sends requests and input as fast
        // as it can: the limits are still checked (their cost is in the figures) but set
        // high enough never to refuse.
        .env("ABUSE_ALLOWLIST", "127.0.0.1")
        .env("RATE_LIMIT_REQUESTS", "1000000000")
        .env("RATE_LIMIT_BURST", "1000000")
        .env("INPUT_BYTES_PER_SECOND", "1073741824")
        .env("INPUT_BURST_BYTES", "1073741824")
        .env("MAX_CONNECTIONS_PER_USER", "0")
        .env("MAX_SESSIONS_PER_USER", "0");
    match &spec.default_command {
        Some(command) => cmd.env("DEFAULT_COMMAND", command),
        None => cmd.env_remove("DEFAULT_COMMAND"),
    };
    if let Some(backends) = spec.backends {
        cmd.env("BACKEND_POOL_SIZE", backends.to_string());
    }
    for (key, value) in &spec.extra_env {
        cmd.env(key, value);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Copies the gateway's stderr to `path` until it closes, and reports the address of the
/// `tmuxgate listening` line.
async fn copy_log(
    stderr: ChildStderr,
    path: PathBuf,
    listening: oneshot::Sender<(String, Option<String>)>,
) {
    let mut listening = Some(listening);
    let mut file = match tokio::fs::File::create(&path).await {
        Ok(file) => Some(file),
        Err(e) => {
            eprintln!("warning: cannot write {}: {e}", path.display());
            None
        }
    };
    let mut lines = BufReader::new(stderr);
    let mut line = Vec::new();
    while matches!(lines.read_until(b'\n', &mut line).await, Ok(n) if n > 0) {
        if let Some(file) = file.as_mut() {
            let _ = file.write_all(&line).await;
            let _ = file.flush().await;
        }
        if let Some(addr) = listening_addr(&line)
            && let Some(tx) = listening.take()
        {
            let _ = tx.send(addr);
        }
        line.clear();
    }
}

/// The proxy address and the health listener's (if any) in a JSON `tmuxgate listening`
/// log line.
fn listening_addr(line: &[u8]) -> Option<(String, Option<String>)> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    let fields = value.get("fields")?;
    if fields.get("message")?.as_str()? != "tmuxgate listening" {
        return None;
    }
    let health = fields
        .get("health")
        .and_then(|h| h.as_str())
        .map(str::to_owned);
    Some((fields.get("proxy")?.as_str()?.to_string(), health))
}

/// The body of `GET path` at `addr` (plain HTTP/1.1 on loopback), within 2 s.
async fn http_get(addr: &str, path: &str) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8(response).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .ok()?
}

/// The last lines of a log file, for error messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The `tmuxgate` binary next to this executable (both are built into the same target
/// directory).
pub fn default_gateway_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("tmuxgate")))
        .unwrap_or_else(|| PathBuf::from("tmuxgate"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_listening_line() {
        let line = br#"{"timestamp":"t","level":"INFO","fields":{"message":"tmuxgate listening","proxy":"127.0.0.1:4321","health":"127.0.0.1:4322"},"target":"tmuxgate::cli"}"#;
        let (proxy, health) = listening_addr(line).expect("a listening line");
        assert_eq!(proxy, "127.0.0.1:4321");
        assert_eq!(health.as_deref(), Some("127.0.0.1:4322"));
        assert_eq!(listening_addr(b"not json"), None);
        assert_eq!(listening_addr(br#"{"fields":{"message":"other"}}"#), None);
    }
}
