//! Shared helpers for the integration tests: a private tmux server per test
//! (killed on drop, also when the test panics) and notification collection.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use tmux_control::{Command, ControlClient, Notification, PaneId, SessionId, SpawnOptions, Target};
use tokio::sync::mpsc;

/// The tmux binary under test.
pub const TMUX: &str = "/usr/bin/tmux";

/// Generous deadline for anything awaited in a test.
pub const DEADLINE: Duration = Duration::from_secs(10);

const CONFIG: &str = "\
set -g exit-empty off
set -g remain-on-exit off
set -g allow-rename off
set -g history-limit 1000
set -g status off
set -g default-shell /bin/sh
";

/// A tmux server on a socket in its own temporary directory.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub config: PathBuf,
}

impl TestServer {
    /// Starts a server with one detached session called `main`.
    pub fn start() -> TestServer {
        let server = TestServer::not_started();
        server.tmux_ok(&["new-session", "-d", "-s", "main", "-x", "80", "-y", "24"]);
        server
    }

    /// A socket directory and config, no server yet (still killed on drop).
    pub fn not_started() -> TestServer {
        let dir = tempfile::Builder::new()
            .prefix("tc")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let socket = dir.path().join("s");
        let config = dir.path().join("tmux.conf");
        std::fs::write(&config, CONFIG).expect("write config");
        TestServer {
            dir,
            socket,
            config,
        }
    }

    /// Runs a one-off tmux command against this server.
    pub fn tmux(&self, args: &[&str]) -> Output {
        std::process::Command::new(TMUX)
            .arg("-S")
            .arg(&self.socket)
            .arg("-f")
            .arg(&self.config)
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux")
    }

    /// Runs a one-off tmux command that must succeed; returns its stdout.
    pub fn tmux_ok(&self, args: &[&str]) -> String {
        let out = self.tmux(args);
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The id of a session by name.
    pub fn session_id(&self, name: &str) -> SessionId {
        self.tmux_ok(&["display", "-p", "-t", name, "#{session_id}"])
            .parse()
            .expect("session id")
    }

    /// Options for a control connection to this server.
    pub fn options(&self, target: Target) -> SpawnOptions {
        let mut opts = SpawnOptions::new(TMUX, &self.socket, target);
        opts.config_file = Some(self.config.clone());
        opts
    }

    /// Attaches a control client to `session`, collecting notifications.
    pub async fn attach(&self, session: &str) -> (ControlClient, Notes) {
        let (tx, rx) = mpsc::unbounded_channel();
        let target = Target::Attach(self.session_id(session));
        let handler = move |n| {
            let _ = tx.send(n);
        };
        let client = ControlClient::spawn(self.options(target), handler)
            .await
            .expect("attach");
        (client, Notes(rx))
    }

    /// A path inside the test's temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// Notifications received by a test's handler.
pub struct Notes(pub mpsc::UnboundedReceiver<Notification>);

impl Notes {
    /// Waits for the first notification matching `pred`, skipping others.
    pub async fn wait_for(&mut self, mut pred: impl FnMut(&Notification) -> bool) -> Notification {
        let search = async {
            while let Some(n) = self.0.recv().await {
                if pred(&n) {
                    return n;
                }
            }
            panic!("handler dropped before the expected notification");
        };
        tokio::time::timeout(DEADLINE, search)
            .await
            .expect("notification in time")
    }

    /// Collects `%output` bytes of `pane` until they end with `marker`.
    pub async fn output_until(&mut self, pane: PaneId, marker: &[u8]) -> Vec<u8> {
        let mut data = Vec::new();
        while !data.ends_with(marker) {
            if let Notification::Output { data: chunk, .. } = self
                .wait_for(|n| matches!(n, Notification::Output { pane: p, .. } if *p == pane))
                .await
            {
                data.extend_from_slice(&chunk);
            }
        }
        data
    }
}

/// Creates a detached window running `shell` and returns its pane.
pub async fn new_window(client: &ControlClient, shell: &str) -> PaneId {
    let cmd = Command::new("new-window")
        .flag("-d")
        .flag("-P")
        .flag_value("-F", "#{pane_id}")
        .end_of_flags()
        .arg_quoted(shell)
        .expect("valid shell command");
    let block = client
        .command(cmd)
        .await
        .and_then(|r| r.single())
        .expect("new-window");
    block.text_lossy().parse().expect("pane id")
}

/// Polls until `path` exists and holds at least `len` bytes.
pub async fn wait_for_file(path: &Path, len: u64) {
    let start = Instant::now();
    loop {
        let size = std::fs::metadata(path).map(|m| m.len()).ok();
        if size.is_some_and(|s| s >= len) {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{} stayed at {size:?} bytes, want {len}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
