//! The baseline without the gateway: a private tmux server with one session, and a bare
//! tmux-control [`ControlClient`] attached to it, typing with the same `send-keys`
//! commands the gateway sends and reading `%output` directly.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use tmux_control::{ControlClient, Notification, PaneId, SessionId, SpawnOptions, Target};
use tokio::sync::mpsc;

/// The gateway's tmux.conf options that matter for a pane's behaviour (see
/// `crates/tmuxgate/src/backends/conf.rs`), so the baseline pane is the same kind of pane.
const CONF: &str = "set -g exit-empty off\n\
    set -g remain-on-exit off\n\
    set -g allow-rename off\n\
    set -g status off\n\
    set -g history-limit 10000\n\
    set -g window-size latest\n\
    set -g default-terminal screen-256color\n\
    set -g focus-events off\n\
    set -s escape-time 0\n";

/// A private tmux server with one session running `command`.
pub struct BareServer {
    tmux_bin: String,
    socket: PathBuf,
    config: PathBuf,
    session: SessionId,
    pane: PaneId,
    pid: u32,
}

impl BareServer {
    /// Starts the server in `dir` with one 80×24 session running `command`.
    pub async fn start(tmux_bin: &str, dir: &Path, command: &str) -> anyhow::Result<BareServer> {
        std::fs::create_dir_all(dir)?;
        let (socket, config) = (dir.join("bare.sock"), dir.join("tmux.conf"));
        std::fs::write(&config, CONF)?;
        let output = tokio::process::Command::new(tmux_bin)
            .arg("-S")
            .arg(&socket)
            .arg("-f")
            .arg(&config)
            .args(["new-session", "-d", "-s", "bare", "-x", "80", "-y", "24"])
            .args(["-P", "-F", "#{session_id} #{pane_id} #{pid}", command])
            .env_remove("TMUX")
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("cannot run {tmux_bin}"))?;
        if !output.status.success() {
            bail!(
                "tmux new-session failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let ids = String::from_utf8_lossy(&output.stdout);
        let mut ids = ids.split_whitespace();
        let mut next = || ids.next().context("new-session printed too few ids");
        let (session, pane, pid) = (next()?, next()?, next()?);
        Ok(BareServer {
            tmux_bin: tmux_bin.into(),
            socket,
            config,
            session: SessionId::from_bytes(session.as_bytes())?,
            pane: PaneId::from_bytes(pane.as_bytes())?,
            pid: pid.parse().context("tmux server pid")?,
        })
    }

    /// A control client attached to the session, passing its pane's output bytes on.
    pub async fn attach(&self) -> anyhow::Result<BareClient> {
        let mut options =
            SpawnOptions::new(&self.tmux_bin, &self.socket, Target::Attach(self.session));
        options.config_file = Some(self.config.clone());
        let (tx, output) = mpsc::unbounded_channel();
        let pane = self.pane;
        let handler = move |n: Notification| {
            if let Notification::Output { pane: p, data } = n
                && p == pane
            {
                let _ = tx.send(data);
            }
        };
        let control = ControlClient::spawn(options, handler).await?;
        Ok(BareClient {
            typer: Typer { control, pane },
            output,
            received: 0,
        })
    }
}

impl Drop for BareServer {
    /// Ends the server by pid (`kill-server` may hang while a control client is not read).
    fn drop(&mut self) {
        crate::procfs::terminate(&[self.pid], &self.socket.display().to_string());
    }
}

/// Types into the pane of a [`BareClient`]; a cheap clone of its control connection.
#[derive(Clone)]
pub struct Typer {
    control: ControlClient,
    pane: PaneId,
}

impl Typer {
    /// Types `bytes` with the gateway's own encoding (`send-keys -l` / `-H`), waiting for
    /// each command's reply.
    pub async fn type_bytes(&self, bytes: &[u8]) -> anyhow::Result<()> {
        let mut commands = Vec::new();
        tmux_control::encode_input(self.pane, bytes, &mut commands);
        for command in commands {
            self.control.command(command).await?.check()?;
        }
        Ok(())
    }
}

/// A bare control-mode client of a [`BareServer`].
pub struct BareClient {
    typer: Typer,
    output: mpsc::UnboundedReceiver<Bytes>,
    received: u64,
}

impl BareClient {
    /// The handle that types into the pane.
    pub fn typer(&self) -> Typer {
        self.typer.clone()
    }

    /// Waits until the pane has output `end` bytes since attaching; returns the moment the
    /// byte at `end - 1` arrived and its value.
    pub async fn wait_received(
        &mut self,
        end: u64,
        timeout: Duration,
    ) -> anyhow::Result<(Instant, u8)> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = 0;
        while self.received < end {
            let chunk = tokio::time::timeout_at(deadline, self.output.recv())
                .await
                .context("timed out waiting for %output")?
                .context("the control client ended")?;
            let before = self.received;
            self.received += chunk.len() as u64;
            if self.received >= end {
                last = chunk[(end - 1 - before) as usize];
            }
        }
        Ok((Instant::now(), last))
    }

    /// Output bytes received since attaching.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Detaches and waits for the tmux client to exit.
    pub async fn shutdown(self) {
        self.typer.control.shutdown().await;
    }
}
