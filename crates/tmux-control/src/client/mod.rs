//! The control-mode connection: one `tmux -C` child process per
//! [`ControlClient`], commands matched to reply blocks first-in-first-out,
//! notifications passed to a [`Handler`] on a reader task.

pub(crate) mod demux;
mod options;
mod reply;
mod state;
mod tasks;

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::process::{Child, Command as Process};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::CommandLine;
use state::{AtBegin, Pending, Shared};

pub use demux::BLOCK_MAX_BYTES;
pub use options::{
    ADMIN_SESSION_NAME, DEFAULT_COMMAND_TIMEOUT, Handler, Launch, Socket, SpawnOptions, Target,
};
pub use reply::{Block, Error, Reply};
pub use state::PENDING_MAX_COMMANDS;

/// How long [`ControlClient::shutdown`] waits for a polite exit, then for
/// the process, before killing it.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A handle to one control connection; clones share it. Commands may be sent
/// from many tasks at once. Dropping the last handle kills the tmux client.
#[derive(Clone)]
pub struct ControlClient {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    writer: mpsc::UnboundedSender<Vec<u8>>,
    child: Mutex<Option<Child>>,
    pid: Option<u32>,
    timeout_ms: AtomicU64,
}

impl std::fmt::Debug for ControlClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlClient")
            .field("pid", &self.inner.pid)
            .finish_non_exhaustive()
    }
}

impl ControlClient {
    /// Starts `tmux -S SOCK [-f CONF] -u -C attach-session -t $N` (or the
    /// admin session, see [`Target::StartServer`]) and waits, with a deadline,
    /// for `%session-changed`: tmux before 3.4 runs commands written before
    /// the attach completes first, in no session.
    pub async fn spawn(opts: SpawnOptions, handler: impl Handler) -> Result<ControlClient, Error> {
        let mut child = process(&opts).spawn().map_err(Error::Spawn)?;
        let missing = || Error::Spawn(std::io::Error::other("tmux child has no piped stdio"));
        let stdin = child.stdin.take().ok_or_else(missing)?;
        let stdout = child.stdout.take().ok_or_else(missing)?;
        let stderr = child.stderr.take().ok_or_else(missing)?;

        let shared = Arc::new(Shared::new());
        let (writer, lines) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let stderr = tokio::spawn(tasks::capture_stderr(stderr));
        tokio::spawn(tasks::write_loop(stdin, lines, shared.clone()));
        let reader = tasks::Reader::new(shared.clone(), Box::new(handler), ready_tx);
        tokio::spawn(reader.run(stdout, stderr));

        let pid = child.id();
        let timeout_ms = AtomicU64::new(millis(DEFAULT_COMMAND_TIMEOUT));
        let inner = Inner {
            shared,
            writer,
            child: Mutex::new(Some(child)),
            pid,
            timeout_ms,
        };
        let client = ControlClient {
            inner: Arc::new(inner),
        };
        match tokio::time::timeout(DEFAULT_COMMAND_TIMEOUT, ready_rx).await {
            Ok(Ok(Ok(()))) => Ok(client),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(Error::Exited { reason: None }),
            Err(_) => Err(Error::Timeout),
        }
    }

    /// Sends one command line and waits for its reply. A command tmux
    /// rejects gives `Error::Command`; no answer within the deadline gives
    /// `Error::Timeout` (the reply is still matched and discarded later).
    pub async fn command(&self, line: impl Into<CommandLine>) -> Result<Reply, Error> {
        self.send(line.into(), None).await
    }

    /// Like [`ControlClient::command`], and runs `at_begin` on the reader
    /// task when the first `%begin` of this reply is read, i.e. after every
    /// notification that precedes the reply was passed to the handler.
    pub async fn command_with<T: Send + 'static>(
        &self,
        line: impl Into<CommandLine>,
        at_begin: impl FnOnce() -> T + Send + 'static,
    ) -> Result<(Reply, T), Error> {
        let (tx, mut rx) = oneshot::channel();
        let hook: AtBegin = Box::new(move || {
            let _ = tx.send(at_begin());
        });
        let reply = self.send(line.into(), Some(hook)).await?;
        // The hook ran on the reader task before the reply was completed.
        let value = rx
            .try_recv()
            .map_err(|_| Error::Protocol("reply completed before its %begin".into()))?;
        Ok((reply, value))
    }

    async fn send(&self, line: CommandLine, at_begin: Option<AtBegin>) -> Result<Reply, Error> {
        self.enqueue(line, at_begin)?.await
    }

    /// Queues one command line now and returns its reply to await later. Lines submitted one
    /// after another reach tmux in that order whether or not earlier replies were awaited, so
    /// a caller can pipeline commands (keystrokes) instead of waiting a round trip for each.
    /// The deadline runs from submission; dropping the future discards the reply.
    pub fn submit(
        &self,
        line: impl Into<CommandLine>,
    ) -> Result<impl Future<Output = Result<Reply, Error>> + Send + 'static, Error> {
        self.enqueue(line.into(), None)
    }

    fn enqueue(
        &self,
        line: CommandLine,
        at_begin: Option<AtBegin>,
    ) -> Result<impl Future<Output = Result<Reply, Error>> + Send + 'static, Error> {
        line.check()?;
        let (tx, rx) = oneshot::channel();
        let pending = Pending::new(&line, at_begin, tx);
        let mut bytes = line.to_line().into_bytes();
        bytes.push(b'\n');
        self.inner
            .shared
            .enqueue(pending, bytes, &self.inner.writer)?;
        // Only the shared state, not the client: a reply in flight must not keep the tmux
        // process (killed when the last client handle drops) alive.
        let (shared, deadline) = (
            self.inner.shared.clone(),
            Instant::now() + self.command_timeout(),
        );
        Ok(async move {
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(closed_error(&shared)),
                Err(_) => Err(Error::Timeout),
            }
        })
    }

    /// The deadline applied to each command.
    pub fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.inner.timeout_ms.load(Ordering::Relaxed))
    }

    /// Changes the deadline of later commands on this connection.
    pub fn set_command_timeout(&self, timeout: Duration) {
        self.inner
            .timeout_ms
            .store(millis(timeout), Ordering::Relaxed);
    }

    /// Whether the connection has ended (EOF, `%exit` or protocol violation).
    pub fn is_closed(&self) -> bool {
        self.inner.shared.closed().is_some()
    }

    /// Resolves when the connection has ended.
    pub async fn closed(&self) {
        let mut closed = self.inner.shared.subscribe_closed();
        let _ = closed.wait_for(|c| *c).await;
    }

    /// Detaches politely by closing tmux's stdin (pending commands fail with
    /// `Error::Exited`), waits for the process and kills it if it lingers.
    pub async fn shutdown(self) {
        self.inner
            .shared
            .close(state::Closed::Exited(Some("shut down".into())));
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.closed()).await;
        let child = self
            .inner
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut child) = child
            && tokio::time::timeout(SHUTDOWN_GRACE, child.wait())
                .await
                .is_err()
        {
            let _ = child.kill().await;
        }
    }

    /// The tmux client's process id, if it is still known.
    pub fn pid(&self) -> Option<u32> {
        self.inner.pid
    }
}

/// Why commands on a connection fail once it has ended.
fn closed_error(shared: &Shared) -> Error {
    shared
        .closed()
        .map_or(Error::Exited { reason: None }, |c| c.to_error())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The tmux client command line; `-u` so tmux does not replace non-ASCII
/// in command output, and without `$TMUX` so attaching works from inside
/// tmux too. With [`Launch::Shell`], the same command line single-quoted for
/// the far side's shell.
fn process(opts: &SpawnOptions) -> Process {
    let mut cmd = match &opts.launch {
        Launch::Direct => {
            let mut cmd = Process::new(&opts.tmux_bin);
            cmd.args(opts.tmux_args());
            cmd
        }
        Launch::Shell {
            program,
            args,
            prelude,
        } => {
            let mut line = format!("{prelude}exec {}", sh_quote(opts.tmux_bin.as_os_str()));
            for arg in opts.tmux_args() {
                line.push(' ');
                line.push_str(&sh_quote(&arg));
            }
            let mut cmd = Process::new(program);
            cmd.args(args).arg(line);
            cmd
        }
    };
    cmd.env_remove("TMUX")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Single-quotes `arg` for a POSIX shell (non-UTF-8 bytes become U+FFFD).
pub fn sh_quote(arg: &std::ffi::OsStr) -> String {
    format!("'{}'", arg.to_string_lossy().replace('\'', r"'\''"))
}
