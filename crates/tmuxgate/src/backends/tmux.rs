//! One backend: a tmux server (the gateway's own, an operator's, or one over SSH) and its
//! admin control connection.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

use tmux_control::{Command, ControlClient, Notification, SessionId, Socket, SpawnOptions, Target};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::captures::Captures;
use super::churn::{ChurnGuard, ChurnLock};
use super::health::{BACKEND_CALL_TIMEOUT, BackendHealth, HealthReport};
use super::remote::Ssh;
use super::{BackendError, BackendEvent, BackendSettings, MIN_TMUX_VERSION, parse_version};

/// Where a backend's server is and how the gateway reaches it.
#[derive(Debug)]
pub enum Location {
    /// A server the gateway starts on `socket` with its configuration file `conf`.
    Owned {
        /// The socket, in the gateway's private directory.
        socket: PathBuf,
        /// The gateway's tmux configuration.
        conf: PathBuf,
    },
    /// An operator's server on `socket`: never started (`tmux -N`), global options left
    /// alone; gateway sessions get their own options and `command` explicitly.
    External {
        /// The operator's socket.
        socket: PathBuf,
        /// What gateway sessions run (the integrated shell or `DEFAULT_COMMAND`).
        command: Option<String>,
    },
    /// A server on another host, started by the gateway with `-f /dev/null` and then
    /// configured with `options` (the gateway's configuration, as commands).
    Ssh {
        /// How to reach it.
        ssh: Arc<Ssh>,
        /// `set-option` commands applied on every connect.
        options: Vec<Command>,
    },
}

impl Location {
    /// `local`, `socket` or `ssh`.
    pub fn kind(&self) -> &'static str {
        match self {
            Location::Owned { .. } => "local",
            Location::External { .. } => "socket",
            Location::Ssh { .. } => "ssh",
        }
    }
}

/// Whether a backend's admin connection is up; finer health (latency, breaker) is in
/// [`Backend::health_report`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendState {
    /// The admin connection is live.
    Up,
    /// The server died or could not be started.
    Down,
}

/// A session found on a backend at start-up (or on a `%sessions-changed`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovered {
    /// tmux's id.
    pub tmux_id: SessionId,
    /// The gateway's public id (`@tmuxgate_id`).
    pub public_id: String,
    /// Display name (`@tmuxgate_name`).
    pub name: String,
    /// Creation time in ms (`@tmuxgate_created`).
    pub created_at: u64,
    /// The user who created it (`@tmuxgate_owner`), when authentication was on.
    pub owner: Option<String>,
    /// Who it is shared with (`@tmuxgate_shares`).
    pub shares: Vec<tmuxgate_protocol::response::Share>,
    /// Its shell-integration nonce (`@tmuxgate_mark`), when it runs the integrated shell.
    pub mark: Option<String>,
}

/// What a new session needs.
pub struct NewSession<'a> {
    /// Public opaque id.
    pub public_id: &'a str,
    /// Validated display name.
    pub name: &'a tmux_control::Name,
    /// Initial width.
    pub cols: u16,
    /// Initial height.
    pub rows: u16,
    /// Validated absolute working directory.
    pub cwd: Option<&'a str>,
    /// Creation time in ms.
    pub created_at: u64,
    /// The creating user, when authentication is on (a validated user name).
    pub owner: Option<&'a str>,
    /// The session's shell-integration nonce (hex), when it runs the integrated shell.
    pub mark: Option<&'a str>,
}

/// One tmux server.
pub struct Backend {
    /// Position in the pool.
    pub index: usize,
    /// Stable id shown to clients and operators, e.g. `tmux-0`.
    pub id: String,
    location: Location,
    tmux_bin: PathBuf,
    /// Where snapshots are captured (local directory, or the far side's socket directory
    /// once connected).
    captures: RwLock<Option<Captures>>,
    admin: RwLock<Option<ControlClient>>,
    state: AtomicU8,
    events: mpsc::UnboundedSender<BackendEvent>,
    connecting: tokio::sync::Mutex<()>,
    churn: ChurnLock,
    /// Probe results, the circuit breaker and restart counts ([`super::health`]).
    pub(super) health: BackendHealth,
    probe_timeout: std::time::Duration,
    pub(super) placement: super::placement::Placement,
}

const UP: u8 = 0;
const DOWN: u8 = 1;

impl Backend {
    pub(super) fn new(
        index: usize,
        location: Location,
        settings: &BackendSettings,
        events: mpsc::UnboundedSender<BackendEvent>,
    ) -> Backend {
        let captures = match location {
            Location::Ssh { .. } => None,
            _ => Some(Captures::Local(settings.capture_dir())),
        };
        let churn = ChurnLock::new(match &location {
            Location::Owned { socket, .. } | Location::External { socket, .. } => {
                Some(socket.clone())
            }
            Location::Ssh { .. } => None,
        });
        Backend {
            index,
            id: format!("tmux-{index}"),
            location,
            tmux_bin: settings.tmux_bin.clone(),
            captures: RwLock::new(captures),
            admin: RwLock::new(None),
            state: AtomicU8::new(DOWN),
            events,
            connecting: tokio::sync::Mutex::new(()),
            churn,
            health: BackendHealth::new(settings.health),
            probe_timeout: settings.health.probe_timeout,
            placement: Default::default(),
        }
    }

    /// Whether new work may go here: up (its admin connection live), and its circuit
    /// breaker closed.
    pub fn admits(&self) -> bool {
        self.state() == BackendState::Up && self.admin().is_ok()
    }

    /// Health state, breaker, probe latency and counters.
    pub fn health_report(&self) -> HealthReport {
        self.health.report(self.state() == BackendState::Up)
    }

    /// Current state.
    pub fn state(&self) -> BackendState {
        match self.state.load(Ordering::Acquire) {
            UP => BackendState::Up,
            _ => BackendState::Down,
        }
    }

    /// Where the server is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The server's local socket (not for SSH backends).
    pub fn socket(&self) -> Option<&Path> {
        match &self.location {
            Location::Owned { socket, .. } | Location::External { socket, .. } => Some(socket),
            Location::Ssh { .. } => None,
        }
    }

    /// The socket path or SSH destination, for logs and operators.
    pub fn address(&self) -> String {
        match &self.location {
            Location::Owned { socket, .. } | Location::External { socket, .. } => {
                socket.display().to_string()
            }
            Location::Ssh { ssh, .. } => {
                format!("ssh://{}/{}", ssh.destination(), ssh.socket_name())
            }
        }
    }

    /// Where this backend's snapshots are captured (`None` until an SSH backend first
    /// connects).
    pub fn captures(&self) -> Option<Captures> {
        self.captures
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Options for a control connection to this server.
    pub fn spawn_options(&self, target: Target) -> SpawnOptions {
        match &self.location {
            Location::Owned { socket, conf } => {
                let mut opts = SpawnOptions::new(&self.tmux_bin, socket, target);
                opts.config_file = Some(conf.clone());
                opts
            }
            Location::External { socket, .. } => {
                let mut opts = SpawnOptions::new(&self.tmux_bin, socket, target);
                // Never start the operator's server: connect to it or fail.
                opts.extra_flags.push("-N".into());
                opts
            }
            Location::Ssh { ssh, .. } => {
                let socket = Socket::Name(ssh.socket_name().to_owned());
                let mut opts = SpawnOptions::new(ssh.tmux(), socket, target);
                // The far user's ~/.tmux.conf is not read; the gateway's options are set
                // after connecting.
                opts.config_file = Some("/dev/null".into());
                opts.launch = ssh.launch(target == Target::StartServer);
                opts
            }
        }
    }

    /// Serialises control clients joining or leaving this server with session creation and
    /// destruction, within this process and across processes sharing the socket (see
    /// [`super::churn`]).
    pub async fn churn(&self) -> ChurnGuard<'_> {
        self.churn.lock().await
    }

    /// [`Backend::churn`], waiting at most until `deadline`: behind a call hung on a stopped
    /// server, a request gives up with the same deadline as its own call would.
    pub async fn churn_by(&self, deadline: Instant) -> Result<ChurnGuard<'_>, BackendError> {
        self.bounded(deadline, async {
            Ok::<_, BackendError>(self.churn().await)
        })
        .await
    }

    /// Runs `call` until `deadline` (then `Timeout`), or until this backend's circuit breaker
    /// opens (then `Unavailable`): a request stuck on a hung server gives up as soon as the
    /// health checks have seen it hang.
    pub async fn bounded<T, E: Into<BackendError>>(
        &self,
        deadline: Instant,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, BackendError> {
        tokio::select! {
            done = tokio::time::timeout_at(deadline, call) => match done {
                Ok(result) => result.map_err(Into::into),
                Err(_) => Err(tmux_control::Error::Timeout.into()),
            },
            () = self.health.opened() => Err(BackendError::Unavailable(self.id.clone())),
        }
    }

    /// Starts the server if needed and opens the admin connection; checks the tmux version.
    pub async fn connect(&self) -> Result<(), BackendError> {
        let _one_at_a_time = self.connecting.lock().await;
        let _churn = self.churn().await;
        if self.state() == BackendState::Up {
            return Ok(());
        }
        if let Location::External { socket, .. } = &self.location {
            check_external(socket)?;
        }
        let (index, events) = (self.index, self.events.clone());
        let handler = move |n: Notification| match n {
            Notification::SessionsChanged => {
                let _ = events.send(BackendEvent::SessionsChanged(index));
            }
            Notification::Exit { .. } => {
                let _ = events.send(BackendEvent::Lost(index));
            }
            _ => {}
        };
        // `StartServer` attaches to (creating if needed) the server's admin session: a control
        // client needs a session to stay connected. Discovery ignores it (no `@tmuxgate_id`).
        let client = ControlClient::spawn(self.spawn_options(Target::StartServer), handler)
            .await
            .map_err(|e| self.spawn_error(e))?;
        client.set_command_timeout(BACKEND_CALL_TIMEOUT);
        let version = first_line(
            &client
                .command(
                    Command::new("display-message")
                        .flag("-p")
                        .arg_quoted("#{version}")?,
                )
                .await?,
        )?;
        match parse_version(&version) {
            Some(v) if v >= MIN_TMUX_VERSION => {}
            _ => return Err(BackendError::TooOld { found: version }),
        }
        if let Location::Ssh { ssh, options } = &self.location {
            configure_remote(&client, ssh, options, &self.captures).await?;
        }
        *self.admin.write().unwrap_or_else(|e| e.into_inner()) = Some(client);
        self.state.store(UP, Ordering::Release);
        self.health.connects.fetch_add(1, Ordering::Relaxed);
        // Sessions marked lost with a dead admin connection may still be there.
        let _ = self.events.send(BackendEvent::SessionsChanged(self.index));
        tracing::info!(backend = %self.id, tmux = %version, kind = self.location.kind(),
            address = %self.address(), "backend up");
        Ok(())
    }

    fn spawn_error(&self, e: tmux_control::Error) -> BackendError {
        match e {
            tmux_control::Error::Spawn(source) => BackendError::Missing {
                bin: match &self.location {
                    Location::Ssh { .. } => "ssh".into(),
                    _ => self.tmux_bin.display().to_string(),
                },
                source,
            },
            other => BackendError::Tmux(other),
        }
    }

    /// Marks the backend down after its admin connection ended.
    pub fn mark_lost(&self) {
        let was = self.state.swap(DOWN, Ordering::AcqRel);
        self.admin.write().unwrap_or_else(|e| e.into_inner()).take();
        if was == UP {
            tracing::warn!(backend = %self.id, "backend lost");
        }
        // The monitor restarts it (after a backoff) instead of waiting for its next probe.
        self.health.wake.notify_one();
    }

    /// Closes the admin connection politely and waits for its tmux client to exit (gateway
    /// shutdown). The server and its sessions keep running.
    pub async fn shutdown(&self) {
        self.state.store(DOWN, Ordering::Release);
        let admin = self.admin.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(admin) = admin {
            let _churn = self.churn().await;
            admin.shutdown().await;
        }
        if let Location::Ssh { ssh, .. } = &self.location {
            ssh.close_master().await;
        }
    }

    /// The admin connection, if the backend is up and its breaker closed: with the breaker
    /// open, requests fail at once instead of waiting for a server that does not answer.
    pub fn admin(&self) -> Result<ControlClient, BackendError> {
        if !self.health.admits() {
            return Err(BackendError::Unavailable(self.id.clone()));
        }
        self.admin_connection()
    }

    /// The admin connection whatever the breaker says (for the probe).
    fn admin_connection(&self) -> Result<ControlClient, BackendError> {
        let admin = self.admin.read().unwrap_or_else(|e| e.into_inner());
        match admin.as_ref() {
            Some(client) if !client.is_closed() => Ok(client.clone()),
            _ => Err(BackendError::Unavailable(self.id.clone())),
        }
    }

    /// Whether the server still answers a cheap round trip on the admin connection within
    /// `HEALTH_PROBE_TIMEOUT`.
    pub async fn probe(&self) -> bool {
        let Ok(admin) = self.admin_connection() else {
            return false;
        };
        let ask = admin.command(
            Command::new("display-message")
                .flag("-p")
                .arg_raw_static("ok"),
        );
        matches!(
            tokio::time::timeout(self.probe_timeout, ask).await,
            Ok(Ok(_))
        )
    }

    /// Creates a detached session carrying the gateway's metadata as user options.
    pub async fn create_session(&self, new: &NewSession<'_>) -> Result<SessionId, BackendError> {
        let admin = self.admin()?;
        let deadline = Instant::now() + BACKEND_CALL_TIMEOUT;
        let _churn = self.churn_by(deadline).await?;
        let mut cmd = Command::new("new-session")
            .flag("-d")
            .flag("-P")
            .flag("-F")
            .arg_quoted("#{session_id}")?
            .flag_value("-s", new.name)
            .flag_value("-x", new.cols)
            .flag_value("-y", new.rows);
        if let Some(cwd) = new.cwd {
            cmd = cmd.flag("-c").arg_quoted(cwd)?;
        }
        if let Some(mark) = new.mark {
            // The integrated shell reads its nonce from here (and unsets it).
            cmd = cmd
                .flag("-e")
                .arg_quoted(&format!("TMUXGATE_MARK={mark}"))?;
        }
        if let Location::External {
            command: Some(command),
            ..
        } = &self.location
        {
            // The operator's `default-command` is theirs: gateway sessions name their own.
            cmd = cmd.arg_quoted(command)?;
        }
        // One line, so the session never exists without its metadata: discovery running
        // concurrently sees it whole or not at all. `=NAME:` targets the name exactly.
        let target = format!("={}:", new.name);
        let set = |opt: &'static str, value: &str| -> Result<Command, BackendError> {
            Ok(Command::new("set-option")
                .flag_value("-t", &target)
                .arg_raw_static(opt)
                .arg_quoted(value)?)
        };
        let mut line = tmux_control::CommandLine::from(cmd)
            .then(set("@tmuxgate_id", new.public_id)?)
            .then(set("@tmuxgate_name", new.name.as_str())?)
            .then(set("@tmuxgate_created", &new.created_at.to_string())?);
        if let Some(owner) = new.owner {
            line = line.then(set("@tmuxgate_owner", owner)?);
        }
        if let Some(mark) = new.mark {
            line = line.then(set("@tmuxgate_mark", mark)?);
        }
        if let Location::External { .. } = self.location {
            // What the gateway's own servers set globally, set on this session (and its
            // window) only: it ends with its shell, survives having no client, shows no
            // status line, and takes its size from the latest viewer. `history-limit` and
            // `default-terminal` (TERM) stay the operator's: they apply when a pane is
            // created, before any session option could, and tmux sets TERM after `-e`.
            let session = |name: &'static str, value: &'static str| {
                Command::new("set-option")
                    .flag_value("-t", &target)
                    .arg_raw_static(name)
                    .arg_raw_static(value)
            };
            let window = |name: &'static str, value: &'static str| {
                Command::new("set-option")
                    .flag("-w")
                    .flag_value("-t", &target)
                    .arg_raw_static(name)
                    .arg_raw_static(value)
            };
            line = line
                .then(session("destroy-unattached", "off"))
                .then(session("status", "off"))
                .then(window("remain-on-exit", "off"))
                .then(window("allow-rename", "off"))
                .then(window("window-size", "latest"));
        }
        let reply = self.bounded(deadline, admin.command(line)).await?;
        let id: SessionId = first_line(&reply)?
            .parse()
            .map_err(|_| BackendError::Reply("new-session id".into()))?;
        Ok(id)
    }

    /// Whether the server still has session `id`.
    pub async fn has_session(&self, id: SessionId) -> bool {
        match self.admin() {
            Ok(admin) => admin
                .command(Command::new("has-session").flag_value("-t", id))
                .await
                .is_ok(),
            Err(_) => false,
        }
    }

    /// The gateway's public id a session carries (`@tmuxgate_id`), if it is there.
    pub async fn public_id_of(&self, id: SessionId) -> Option<String> {
        let admin = self.admin().ok()?;
        let ask = Command::new("display-message")
            .flag("-p")
            .flag_value("-t", id)
            .arg_quoted("#{@tmuxgate_id}")
            .ok()?;
        let reply = admin.command(ask).await.ok()?;
        first_line(&reply).ok().filter(|line| !line.is_empty())
    }

    /// Kills a session.
    pub async fn kill_session(&self, id: SessionId) -> Result<(), BackendError> {
        let admin = self.admin()?;
        let deadline = Instant::now() + BACKEND_CALL_TIMEOUT;
        let _churn = self.churn_by(deadline).await?;
        let kill = admin.command(Command::new("kill-session").flag_value("-t", id));
        self.bounded(deadline, kill).await?.check()?;
        Ok(())
    }

    /// Records who a session is shared with (`@tmuxgate_shares`, see
    /// [`crate::sessions::access`]).
    pub async fn set_shares(&self, id: SessionId, encoded: &str) -> Result<(), BackendError> {
        let admin = self.admin()?;
        let cmd = Command::new("set-option")
            .flag_value("-t", id)
            .arg_raw_static("@tmuxgate_shares")
            .arg_quoted(encoded)?;
        admin.command(cmd).await?.check()?;
        Ok(())
    }

    /// The gateway's sessions on this server (those carrying `@tmuxgate_id`).
    pub async fn discover(&self) -> Result<Vec<Discovered>, BackendError> {
        let admin = self.admin()?;
        // The name last: the only field that may be read up to the end of the line. The
        // owner and shares fields are empty when unset.
        let format = "#{session_id} #{@tmuxgate_id} #{@tmuxgate_created} #{@tmuxgate_owner} \
                      #{@tmuxgate_shares} #{@tmuxgate_mark} #{@tmuxgate_name}";
        let reply = admin
            .command(
                Command::new("list-sessions")
                    .flag("-F")
                    .arg_quoted(format)?,
            )
            .await?;
        let block = reply.single()?;
        Ok(block
            .lines
            .iter()
            .filter_map(|l| parse_discovered(l))
            .collect())
    }
}

/// An operator's server must be a socket owned by the gateway's user: tmux lets only its
/// own user (and root) in, and a socket of someone else's is not the operator's to give.
fn check_external(socket: &Path) -> Result<(), BackendError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let refuse = |why: &str| BackendError::Unavailable(format!("{}: {why}", socket.display()));
    match std::fs::symlink_metadata(socket) {
        Ok(meta) if !meta.file_type().is_socket() => Err(refuse("not a socket")),
        Ok(meta) if meta.uid() != rustix::process::geteuid().as_raw() => {
            Err(refuse("owned by another user"))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(refuse("no server running")),
        Err(e) => Err(refuse(&e.to_string())),
    }
}

/// After connecting to an SSH backend: applies the gateway's options (its server was
/// started with `-f /dev/null`, or by an earlier gateway) and learns where captures go:
/// the far side's tmux socket directory, private to its user.
async fn configure_remote(
    client: &ControlClient,
    ssh: &Arc<Ssh>,
    options: &[Command],
    captures: &RwLock<Option<Captures>>,
) -> Result<(), BackendError> {
    let mut commands = options.iter().cloned();
    if let Some(first) = commands.next() {
        let line = commands.fold(tmux_control::CommandLine::from(first), |line, c| {
            line.then(c)
        });
        client.command(line).await?.check()?;
    }
    let socket = first_line(
        &client
            .command(
                Command::new("display-message")
                    .flag("-p")
                    .arg_quoted("#{socket_path}")?,
            )
            .await?,
    )?;
    let dir = match socket.rsplit_once('/') {
        Some((dir, _)) if dir.starts_with('/') => dir.to_owned(),
        _ => return Err(BackendError::Reply("socket_path".into())),
    };
    ssh.sweep(&dir).await;
    *captures.write().unwrap_or_else(|e| e.into_inner()) = Some(Captures::Remote {
        ssh: ssh.clone(),
        dir,
    });
    Ok(())
}

/// Parses one `list-sessions` line; anything unexpected (not ours, or tampered with from
/// inside a pane) is skipped.
fn parse_discovered(line: &[u8]) -> Option<Discovered> {
    use crate::sessions::access;
    let text = std::str::from_utf8(line).ok()?;
    let mut fields = text.splitn(7, ' ');
    let tmux_id = fields.next()?.parse().ok()?;
    let public_id = fields.next()?.to_string();
    let created_at = fields.next()?.parse().ok()?;
    let owner = fields.next()?;
    let shares = fields.next()?;
    let mark = fields.next()?;
    let name = fields.next()?;
    let valid_id = crate::sessions::is_public_id(&public_id);
    let valid_name = tmux_control::Name::new(name).is_ok();
    // A tampered owner becomes no owner: only users whose role reaches every session keep
    // access to it.
    let owner = access::is_user_name(owner).then(|| owner.to_owned());
    (valid_id && valid_name).then(|| Discovered {
        tmux_id,
        public_id,
        name: name.to_string(),
        created_at,
        owner,
        shares: access::decode_shares(shares),
        mark: crate::backends::shell::is_nonce(mark).then(|| mark.to_owned()),
    })
}

fn first_line(reply: &tmux_control::Reply) -> Result<String, BackendError> {
    let block = reply
        .blocks
        .first()
        .ok_or_else(|| BackendError::Reply("empty reply".into()))?;
    if block.error {
        return Err(BackendError::Reply("command failed".into()));
    }
    let line = block
        .lines
        .first()
        .ok_or_else(|| BackendError::Reply("no output".into()))?;
    Ok(String::from_utf8_lossy(line).into_owned())
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("id", &self.id)
            .field("state", &self.state())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_skips_foreign_and_tampered_sessions() {
        let ok =
            parse_discovered(b"$3 s_0123456789abcdef01234567 1700000000000    build-1").unwrap();
        assert_eq!(ok.tmux_id, SessionId(3));
        assert_eq!(ok.name, "build-1");
        assert_eq!((ok.owner, ok.shares, ok.mark), (None, Vec::new(), None));
        assert!(parse_discovered(b"$4  ").is_none());
        assert!(parse_discovered(b"$5 s_0123456789abcdef01234567 1    #(reboot)").is_none());
        assert!(parse_discovered(b"$6 ../../x 1    name").is_none());
    }

    #[test]
    fn discovery_reads_owner_and_shares_and_drops_tampered_ones() {
        let line = b"$3 s_0123456789abcdef01234567 1 ann bob:read,Eve:write,carl:write \
                     0123456789abcdef0123456789abcdef build";
        let found = parse_discovered(line).unwrap();
        assert_eq!(found.owner.as_deref(), Some("ann"));
        assert_eq!(
            found.mark.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        let users: Vec<_> = found.shares.iter().map(|s| s.user.as_str()).collect();
        assert_eq!(users, ["bob", "carl"]);
        let tampered = b"$3 s_0123456789abcdef01234567 1 Root:x  $(id) build";
        let found = parse_discovered(tampered).unwrap();
        assert_eq!((found.owner, found.name.as_str()), (None, "build"));
        assert_eq!(
            found.mark, None,
            "a tampered mark is no mark: no commands run there"
        );
    }
}
