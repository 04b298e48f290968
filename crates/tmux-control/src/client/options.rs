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

/// Which tmux server to talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Socket {
    /// `-S PATH`; keep it in a 0700 directory.
    Path(PathBuf),
    /// `-L NAME`: the socket `NAME` in tmux's own per-user directory
    /// (`$TMUX_TMPDIR/tmux-UID`, which tmux creates 0700 and checks).
    Name(String),
}

impl From<PathBuf> for Socket {
    fn from(path: PathBuf) -> Socket {
        Socket::Path(path)
    }
}

impl From<&std::path::Path> for Socket {
    fn from(path: &std::path::Path) -> Socket {
        Socket::Path(path.to_path_buf())
    }
}

impl From<&PathBuf> for Socket {
    fn from(path: &PathBuf) -> Socket {
        Socket::Path(path.clone())
    }
}

/// How the tmux client process is started.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Launch {
    /// Run the tmux binary directly.
    #[default]
    Direct,
    /// Run `program args… 'PRELUDE exec tmux …'`: a program that runs its last argument as
    /// a shell command line somewhere else, like `ssh HOST`. Every tmux argument is
    /// single-quoted for `sh`; `prelude` (shell commands ending in `&&` or `;`, or empty)
    /// runs first.
    Shell {
        /// The launcher, e.g. `/usr/bin/ssh`.
        program: PathBuf,
        /// Its arguments, ending with the destination.
        args: Vec<std::ffi::OsString>,
        /// Shell commands run before tmux, on the far side.
        prelude: String,
    },
}

/// Options for [`crate::ControlClient::spawn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnOptions {
    /// The tmux binary, e.g. `/usr/bin/tmux` (on the far side with [`Launch::Shell`]).
    pub tmux_bin: PathBuf,
    /// The server socket.
    pub socket: Socket,
    /// The configuration file (`-f`), used if this connection starts the
    /// server, so a user's `~/.tmux.conf` cannot change behaviour.
    pub config_file: Option<PathBuf>,
    /// What to attach to.
    pub target: Target,
    /// Extra global tmux flags, placed before `-C` (e.g. `-2`, or `-N` to never start a
    /// server).
    pub extra_flags: Vec<String>,
    /// How the tmux client is started.
    pub launch: Launch,
}

impl SpawnOptions {
    /// Options with no config file and no extra flags.
    pub fn new(tmux_bin: impl Into<PathBuf>, socket: impl Into<Socket>, target: Target) -> Self {
        SpawnOptions {
            tmux_bin: tmux_bin.into(),
            socket: socket.into(),
            config_file: None,
            target,
            extra_flags: Vec::new(),
            launch: Launch::Direct,
        }
    }

    /// The tmux client's arguments (after the binary).
    pub fn tmux_args(&self) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = Vec::with_capacity(12);
        match &self.socket {
            Socket::Path(path) => args.extend(["-S".into(), path.into()]),
            Socket::Name(name) => args.extend(["-L".into(), name.into()]),
        }
        if let Some(config) = &self.config_file {
            args.extend(["-f".into(), config.into()]);
        }
        args.extend(self.extra_flags.iter().map(Into::into));
        args.extend(["-u".into(), "-C".into()]);
        match self.target {
            Target::Attach(session) => {
                args.extend([
                    "attach-session".into(),
                    "-t".into(),
                    session.to_string().into(),
                ]);
            }
            Target::StartServer => args.extend(
                [
                    "new-session",
                    "-A",
                    "-s",
                    ADMIN_SESSION_NAME,
                    ADMIN_PANE_COMMAND,
                ]
                .map(Into::into),
            ),
        }
        args
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
