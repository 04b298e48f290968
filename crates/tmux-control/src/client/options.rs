//! How to start a control connection, and the notification callback.

use std::path::PathBuf;
use std::time::Duration;

use crate::{Notification, SessionId};

/// Default deadline of every command and of the attach handshake.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// The session [`Target::StartServer`] attaches to, created if missing.
pub const ADMIN_SESSION_NAME: &str = "_tmuxgate";

/// What the admin session's only pane runs: idle forever, no output.
pub(crate) const ADMIN_PANE_COMMAND: &str = "exec cat >/dev/null";

/// What the control connection attaches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `attach-session -t $N`: receives `%output` for that session's panes.
    Attach(SessionId),
    /// An admin connection, starting the server if needed.
    ///
    /// Measured on tmux 3.3a: a control client that is not attached to a
    /// session exits as soon as its first command completes, so a plain
    /// `tmux -C start-server` answers nothing. This target therefore runs
    /// `new-session -A -s _tmuxgate` ([`ADMIN_SESSION_NAME`]): it
    /// attaches to that session, creating it (one idle pane) if missing.
    /// The gateway must hide that session from users.
    StartServer,
}

/// Options for [`crate::ControlClient::spawn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnOptions {
    /// The tmux binary, e.g. `/usr/bin/tmux`.
    pub tmux_bin: PathBuf,
    /// The server socket (`-S`); keep it in a 0700 directory.
    pub socket: PathBuf,
    /// The configuration file (`-f`), used if this connection starts the
    /// server, so a user's `~/.tmux.conf` cannot change behaviour.
    pub config_file: Option<PathBuf>,
    /// What to attach to.
    pub target: Target,
    /// Extra global tmux flags, placed before `-C` (e.g. `-2`).
    pub extra_flags: Vec<String>,
}

impl SpawnOptions {
    /// Options with no config file and no extra flags.
    pub fn new(tmux_bin: impl Into<PathBuf>, socket: impl Into<PathBuf>, target: Target) -> Self {
        SpawnOptions {
            tmux_bin: tmux_bin.into(),
            socket: socket.into(),
            config_file: None,
            target,
            extra_flags: Vec::new(),
        }
    }
}

/// Receives notifications, synchronously on the connection's reader task.
///
/// Must be cheap and must not block (append to a buffer, wake waiters):
/// while it runs, tmux's output is not read.
pub trait Handler: Send + 'static {
    /// Called once per notification, in the order tmux sent them.
    fn notification(&mut self, n: Notification);

    /// Called after each read from tmux, once every notification in it was passed: the
    /// place to wake waiters once per batch rather than once per notification.
    fn flush(&mut self) {}
}

impl<F> Handler for F
where
    F: FnMut(Notification) + Send + 'static,
{
    fn notification(&mut self, n: Notification) {
        self(n)
    }
}
