//! Test harness: a real gateway on 127.0.0.1:0 with its own tmux servers in a temporary
//! directory, shut down (and its tmux servers killed) on drop.
#![allow(dead_code)]

pub mod audit;
pub mod fleet;
pub mod https;
pub mod identity;
pub mod pki;
pub mod process;
pub mod redis;
pub mod sshd;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tmuxgate::config::Config;
use tmuxgate::{Server, ServerHandle};
use tmuxgate_client::Client;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Generous per-step deadline for CI machines under load.
pub const STEP: Duration = Duration::from_secs(10);

/// A running gateway.
pub struct TestServer {
    pub addr: SocketAddr,
    pub health_addr: SocketAddr,
    pub handle: ServerHandle,
    pub dir: PathBuf,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _tmp: Option<tempfile::TempDir>,
    /// The directory came from an earlier server's `stop` and is this one's to clean up.
    adopted: bool,
}

impl TestServer {
    /// A gateway with test defaults in a fresh directory.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// A gateway whose config `tweak` adjusts.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let tmp = tempfile::Builder::new()
            .prefix("tg")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let mut server = Self::start_in(tmp.path().to_path_buf(), tweak).await;
        server._tmp = Some(tmp);
        server
    }

    /// A gateway on an existing socket directory (to test restarts).
    pub async fn start_in(dir: PathBuf, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let filter = tracing_subscriber::EnvFilter::from_default_env();
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(filter)
            .try_init();
        let mut config = Config::for_tests(dir.join("sock"));
        tweak(&mut config);
        let server = Server::start(config).await.expect("gateway starts");
        let handle = server.handle();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let health = TcpListener::bind("127.0.0.1:0").await.expect("bind health");
        let (addr, health_addr) = (listener.local_addr().unwrap(), health.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server.serve(listener, Some(health), shutdown.clone()));
        TestServer {
            addr,
            health_addr,
            handle,
            dir,
            shutdown,
            task: Some(task),
            _tmp: None,
            adopted: false,
        }
    }

    /// WebSocket URL.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// A connected client.
    pub async fn client(&self) -> Client {
        Client::connect(&self.url()).await.expect("client connects")
    }

    /// The socket of backend `index`.
    pub fn socket(&self, index: usize) -> PathBuf {
        self.dir.join("sock").join(format!("backend-{index}.sock"))
    }

    /// Runs a tmux command against backend `index` (test-side inspection only).
    pub fn tmux(&self, index: usize, args: &[&str]) -> String {
        tmux_at(&self.socket(index), args)
    }

    /// Control clients attached to the session named `name` on backend 0: one per hub.
    pub fn control_clients(&self, name: &str) -> usize {
        control_clients_at(&self.socket(0), name)
    }

    /// Takes over its directory (one [`TestServer::stop`] left): on drop its tmux servers
    /// are killed and it is removed, as for a server started in a fresh directory.
    pub fn owning_dir(mut self) -> TestServer {
        self.adopted = true;
        self
    }

    /// Graceful shutdown; waits for `serve` to return. Leaves tmux running.
    pub async fn stop(mut self) -> PathBuf {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("serve task").expect("serve ok");
        }
        self._tmp
            .take()
            .map(|t| t.keep())
            .unwrap_or_else(|| self.dir.clone())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if self._tmp.is_some() || self.adopted {
            kill_servers(&self.dir);
        }
        if self.adopted {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Kills the tmux servers under `dir/sock`: `kill-server` for each socket, then SIGKILL
/// for any process still naming the directory. tmux 3.3a can miss its own exit: a
/// `kill-server` that arrives just as a control client's stdin reaches EOF (its gateway
/// was just killed) leaves the server and that client running with the socket closed, so
/// no later `kill-server` reaches them (docs/architecture.md).
pub fn kill_servers(dir: &Path) {
    let sockets = dir.join("sock");
    for entry in std::fs::read_dir(&sockets).into_iter().flatten().flatten() {
        if entry.path().extension().is_some_and(|e| e == "sock") {
            let _ = std::process::Command::new("tmux")
                .arg("-S")
                .arg(entry.path())
                .arg("kill-server")
                .output();
        }
    }
    let mut named = sockets.into_os_string().into_encoded_bytes();
    named.push(b'/');
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = entry.file_name().to_str().and_then(|n| n.parse().ok());
        let Some(pid) = pid.and_then(rustix::process::Pid::from_raw) else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if cmdline.windows(named.len()).any(|w| w == named) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// Control clients attached to the session named `name` on the tmux server at `socket`:
/// one per hub.
pub fn control_clients_at(socket: &Path, name: &str) -> usize {
    let format = "#{client_control_mode} #{session_name}";
    let clients = tmux_at(socket, &["list-clients", "-F", format]);
    clients
        .lines()
        .filter(|l| *l == format!("1 {name}"))
        .count()
}

/// Runs `tmux -S socket args...` and returns stdout.
pub fn tmux_at(socket: &Path, args: &[&str]) -> String {
    String::from_utf8_lossy(&run_tmux(socket, args).stdout).into_owned()
}

fn run_tmux(socket: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("tmux")
        .arg("-S")
        .arg(socket)
        .args(args)
        .output()
        .expect("run tmux")
}

/// Polls `f` until it returns Some, or panics after `STEP`.
pub async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kills the tmux servers under a directory and removes it when dropped: for tests that
/// [`stop`](TestServer::stop) a gateway and start another on the same directory, whose
/// servers no `TestServer` would otherwise kill.
pub struct KillServersOnDrop(pub PathBuf);

impl Drop for KillServersOnDrop {
    fn drop(&mut self) {
        kill_servers(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether `tmux -S socket args...` exits successfully (e.g. `has-session`).
pub fn tmux_succeeds(socket: &Path, args: &[&str]) -> bool {
    run_tmux(socket, args).status.success()
}

/// `GET path` on the health port: the status code and the body as text.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tmuxgate::health_probe::{HealthUrl, probe};
    let url: HealthUrl = format!("http://{addr}{path}").parse().expect("health URL");
    let response = probe(&url, STEP).await.expect("HTTP response");
    (
        response.status,
        String::from_utf8(response.body).expect("UTF-8 body"),
    )
}
