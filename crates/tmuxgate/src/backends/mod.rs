//! The tmux servers the gateway owns: start-up, version check, the admin control connection,
//! session creation and discovery, and placement of new sessions by the balancing
//! [`balance::Strategy`] chosen at start-up. Health checks, circuit breakers and restarts
//! of dead servers live in [`health`] and [`breaker`].
//!
//! Each backend is one tmux server on a socket in a 0700 directory, started with the
//! gateway's own configuration file (`-f`), so a user's `~/.tmux.conf` cannot change its
//! behaviour. Sessions outlive the gateway: on start-up the pool reconnects to servers that
//! are still running and reports the sessions they hold.

pub mod balance;
pub mod breaker;
pub mod captures;
mod churn;
mod conf;
pub mod health;
mod placement;
pub mod remote;
pub mod shell;
pub mod spec;
mod tmux;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use balance::{BalanceStrategy, Candidate, Pin};
pub use breaker::{BreakerSettings, BreakerState};
pub use health::{HealthReport, HealthSettings, HealthState};
pub use spec::{BackendSpec, Kind};
pub use tmux::{Backend, BackendState, Discovered, Location, NewSession};

/// Oldest tmux version with the control-mode flow control the gateway relies on.
pub const MIN_TMUX_VERSION: (u32, u32) = (3, 2);

/// Something a backend's admin connection noticed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendEvent {
    /// Sessions were created or destroyed on backend `index` (`%sessions-changed`).
    SessionsChanged(usize),
    /// The admin connection of backend `index` ended: the server died or was killed.
    Lost(usize),
}

/// Why a backend could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The tmux binary could not be run.
    #[error(
        "cannot run `{bin}`: {source} (install the Debian/Ubuntu package `tmux`, version 3.2 or newer)"
    )]
    Missing {
        /// The binary tried.
        bin: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// tmux is older than [`MIN_TMUX_VERSION`].
    #[error("tmux {found} is too old: tmuxgate needs tmux 3.2 or newer")]
    TooOld {
        /// The version string tmux reported.
        found: String,
    },
    /// The socket directory could not be prepared.
    #[error("socket directory {path}: {source}")]
    SocketDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A backend's configuration cannot work (see the message).
    #[error("{0}")]
    Config(String),
    /// The backend is down.
    #[error("backend {0} is unavailable")]
    Unavailable(String),
    /// No backend may take a new session: none up and undrained, or none matching the
    /// session's pin. The message says which.
    #[error("{0}")]
    NoCandidate(String),
    /// tmux answered with an error or not at all.
    #[error("tmux: {0}")]
    Tmux(#[from] tmux_control::Error),
    /// A command could not be built (data that no tmux argument can carry).
    #[error("building a tmux command: {0}")]
    Build(#[from] tmux_control::command::CommandError),
    /// tmux's answer could not be understood.
    #[error("unexpected reply from tmux: {0}")]
    Reply(String),
}

/// Settings every backend shares.
#[derive(Clone, Debug)]
pub struct BackendSettings {
    /// The tmux binary.
    pub tmux_bin: PathBuf,
    /// The 0700 directory holding sockets, the config file and snapshot captures.
    pub dir: PathBuf,
    /// tmux `history-limit`.
    pub history_limit: u32,
    /// tmux `default-command` (`None`: the login shell).
    pub default_command: Option<String>,
    /// Health checks and the circuit breaker.
    pub health: HealthSettings,
}

impl BackendSettings {
    /// Private directory for capture files.
    pub fn capture_dir(&self) -> PathBuf {
        self.dir.join("captures")
    }
}

/// The backends to run and how new sessions are spread over them.
#[derive(Clone, Debug)]
pub struct PoolLayout {
    /// One entry per backend, in index order (`BACKENDS_FILE`, or `BACKEND_POOL_SIZE`
    /// uniform ones).
    pub backends: Vec<BackendSpec>,
    /// `BALANCE_STRATEGY`.
    pub strategy: BalanceStrategy,
}

impl PoolLayout {
    /// `size` uniform backends placed round-robin (the behaviour before strategies).
    pub fn uniform(size: usize) -> PoolLayout {
        PoolLayout {
            backends: spec::uniform(size),
            strategy: BalanceStrategy::RoundRobin,
        }
    }
}

/// The set of backends and the placement policy for new sessions.
pub struct Pool {
    /// The integrated shell sessions run, when they run it.
    shell: Option<shell::ShellIntegration>,
    backends: Vec<Arc<Backend>>,
    strategy: Box<dyn balance::Strategy>,
    /// Cancelled on shutdown: stops the health monitors.
    monitors: CancellationToken,
}

impl Pool {
    /// Prepares the directory, writes the tmux config and starts (or reconnects to) the
    /// servers `layout` lists. Fails if tmux is missing or too old.
    pub async fn start(
        settings: BackendSettings,
        layout: PoolLayout,
        events: mpsc::UnboundedSender<BackendEvent>,
    ) -> Result<Pool, BackendError> {
        prepare_dir(&settings.dir)?;
        prepare_dir(&settings.capture_dir())?;
        sweep(&settings.capture_dir());
        sweep_control_sockets(&settings.dir);
        // Without DEFAULT_COMMAND, sessions run the gateway's integrated bash.
        let shell = match settings.default_command {
            Some(_) => None,
            None => shell::prepare(&settings.dir)?,
        };
        let mut conf_settings = settings.clone();
        if let Some(shell) = &shell {
            conf_settings.default_command = Some(shell.command.clone());
        }
        let conf = conf::write(&conf_settings)?;
        let mut backends = Vec::with_capacity(layout.backends.len());
        for (index, spec) in layout.backends.into_iter().enumerate() {
            let location = match &spec.kind {
                Kind::Local => Location::Owned {
                    socket: settings.dir.join(format!("backend-{index}.sock")),
                    conf: conf.clone(),
                },
                Kind::Socket { path } => Location::External {
                    socket: path.clone(),
                    command: conf_settings.default_command.clone(),
                },
                Kind::Ssh(ssh) => {
                    let (prelude, command) = match (&shell, &settings.default_command) {
                        (Some(_), _) => {
                            let (prelude, command) = shell::remote();
                            (prelude, Some(command))
                        }
                        (None, command) => (String::new(), command.clone()),
                    };
                    let ssh = remote::Ssh::new(ssh.clone(), &settings.dir, index, prelude)
                        .map_err(|e| BackendError::Config(format!("backend {index}: {e}")))?;
                    Location::Ssh {
                        ssh: Arc::new(ssh),
                        options: conf::commands(settings.history_limit, command.as_deref())?,
                    }
                }
            };
            let owned = matches!(location, Location::Owned { .. });
            let backend =
                Arc::new(Backend::new(index, location, &settings, events.clone()).with_spec(spec));
            if owned {
                // A server of the gateway's own that cannot start is a broken install.
                backend.connect().await?;
            } else {
                // Another host, or the operator's server, may be slow or come later: its
                // health monitor connects it at once and keeps trying, so neither start-up
                // nor the other backends wait for it.
                tracing::info!(backend = %backend.id, address = %backend.address(),
                    "connecting in the background");
            }
            backends.push(backend);
        }
        Ok(Pool {
            shell,
            backends,
            strategy: layout.strategy.build(),
            monitors: CancellationToken::new(),
        })
    }

    /// Starts one health monitor per backend (see [`health`]); breaker changes and restarts
    /// are recorded in `audit`.
    pub fn watch(&self, audit: &crate::audit::Audit) {
        for backend in &self.backends {
            let (weak, audit, cancel) = (
                Arc::downgrade(backend),
                audit.clone(),
                self.monitors.clone(),
            );
            let restart = crate::supervise::RESTART_BACKOFF;
            crate::supervise::spawn_supervised(
                "backend-health",
                cancel.clone(),
                restart,
                move || health::monitor(weak.clone(), audit.clone(), cancel.clone()),
            );
        }
    }

    /// Every backend, in index order.
    /// The integrated shell, when sessions run it (no `DEFAULT_COMMAND`, bash installed).
    pub fn shell(&self) -> Option<&shell::ShellIntegration> {
        self.shell.as_ref()
    }

    pub fn all(&self) -> &[Arc<Backend>] {
        &self.backends
    }

    /// Backend by index.
    pub fn get(&self, index: usize) -> Option<&Arc<Backend>> {
        self.backends.get(index)
    }

    /// Stops the health monitors: no more probes, and dead servers stay dead.
    pub fn stop_health_checks(&self) {
        self.monitors.cancel();
    }

    /// Closes every admin connection and waits for their tmux clients to exit.
    pub async fn shutdown(&self) {
        self.stop_health_checks();
        futures_util::future::join_all(self.backends.iter().map(|b| b.shutdown())).await;
    }

    /// Picks the backend for a new session with the pool's strategy among the backends
    /// that admit work (up, breaker closed), are not draining and match `pin`; `snapshot`
    /// holds every backend's figures. Dead backends are restarted by their health monitor,
    /// not here, so a request never waits for a restart.
    pub async fn place(
        &self,
        pin: Pin<'_>,
        snapshot: &[Candidate],
    ) -> Result<Arc<Backend>, BackendError> {
        let id_of = |index: usize| {
            self.backends
                .get(index)
                .map_or_else(String::new, |b| b.id.clone())
        };
        let eligible = balance::eligible(snapshot, pin, id_of);
        match self.strategy.pick(&eligible) {
            Some(index) => Ok(self.backends[index].clone()),
            None => Err(BackendError::NoCandidate(no_candidate(pin))),
        }
    }
}

/// Why nothing could be placed, in the words a client sees.
fn no_candidate(pin: Pin<'_>) -> String {
    match (pin.backend, pin.labels) {
        (Some(id), _) => format!(
            "backend {id} does not exist, is down or draining, or lacks the labels asked for"
        ),
        (None, []) => "no tmux backend is available (all down or draining)".into(),
        (None, labels) => format!(
            "no backend that is up and not draining has the labels {}",
            labels.join(", ")
        ),
    }
}

fn prepare_dir(dir: &Path) -> Result<(), BackendError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let err = |source| BackendError::SocketDir {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)?;
    // The directory must be ours and not a symlink: whoever can write it can replace the
    // sockets. Permissions an earlier run or the operator left loose are tightened.
    let meta = std::fs::symlink_metadata(dir).map_err(err)?;
    if !meta.is_dir() || meta.uid() != current_uid() {
        let msg = "not a directory owned by the gateway's user";
        return Err(err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            msg,
        )));
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)
}

fn current_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Capture files older than this were left by a crashed run: a live capture is read back
/// within its call's deadline. Younger ones may belong to another gateway sharing the
/// directory.
const STALE_CAPTURE: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes capture files a crashed run left behind.
fn sweep(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let age = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok());
        if age.is_none_or(|age| age > STALE_CAPTURE) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Removes SSH master sockets an earlier run left: nothing answers on them any more. A
/// socket something answers on belongs to a live master (another gateway sharing the
/// directory, or one about to exit by itself once idle, see `remote.rs`).
fn sweep_control_sockets(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let stale = entry.file_name().to_string_lossy().starts_with("ssh-")
            && std::os::unix::net::UnixStream::connect(entry.path()).is_err();
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Parses tmux's `#{version}` ("3.3a", "next-3.5", "3.4") into (major, minor).
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let digits = text
        .trim()
        .trim_start_matches(|c: char| !c.is_ascii_digit());
    let mut parts = digits.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(parse_version("3.3a"), Some((3, 3)));
        assert_eq!(parse_version("next-3.5"), Some((3, 5)));
        assert_eq!(parse_version("3.10"), Some((3, 10)));
        assert_eq!(parse_version("master"), None);
        assert!(parse_version("3.1c").unwrap() < MIN_TMUX_VERSION);
    }
}
