//! Command execution for programs: `command-execute`, `batch-execute`, `command-validate`.
//!
//! A command is checked by the policy ([`crate::policy`]) for the caller's role; the
//! canonical line the policy returns — never the client's text — is typed into the
//! session's pane, where viewers see it run ([`run`]). Commands for one session run one at
//! a time, in arrival order, behind a bounded queue (`EXEC_QUEUE_DEPTH`; beyond it
//! `conflict`); sessions run in parallel. Every attempt is audited (`COMMAND_EXECUTED`,
//! `COMMAND_BLOCKED`) and counted by outcome.

pub mod output;
mod queue;
pub mod run;
mod stats;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tmuxgate_protocol::ErrorCode;
use tmuxgate_protocol::request::ExecOptions;
use tmuxgate_protocol::response::CommandResult;

use crate::backends::shell::ShellIntegration;
use crate::error::WireError;
use crate::policy::{Approved, Context, PolicyStore, Refusal, Verdict};
use crate::sessions::{Hub, PaneView};

pub use queue::{SessionQueue, Ticket};
pub use stats::{ExecStats, Outcome};

/// Limits of command execution (from the configuration).
#[derive(Clone, Copy, Debug)]
pub struct ExecSettings {
    /// `EXEC_QUEUE_DEPTH`: commands waiting per session beyond the running one.
    pub queue_depth: u32,
    /// `EXEC_TIMEOUT_MS`: a command's time when the request names none.
    pub default_timeout: Duration,
    /// `EXEC_MAX_TIMEOUT_MS`: the most a request may ask for.
    pub max_timeout: Duration,
    /// `EXEC_MAX_OUTPUT_BYTES`: output kept per command.
    pub max_output_bytes: usize,
}

/// Commands in batch-execute, at most.
pub const MAX_BATCH_COMMANDS: usize = 100;

/// The gateway's executor.
pub struct Executor {
    /// The command policy (`POLICY_FILE`, reloadable).
    pub policy: Arc<PolicyStore>,
    /// Limits.
    pub settings: ExecSettings,
    /// Counts and latencies (shared with [`crate::metrics::Stats`]).
    pub stats: Arc<ExecStats>,
    /// The shell sessions run; `None`: commands cannot run (no integration).
    pub shell: Option<ShellIntegration>,
}

/// A command that ran or failed, as the connection reports it.
pub type Finished = Result<CommandResult, (WireError, Option<CommandResult>)>;

impl Executor {
    /// The policy's verdict on `command` for `role` (relative paths against `cwd`).
    pub fn check(&self, role: &str, cwd: Option<&std::path::Path>, command: &str) -> Verdict {
        self.policy.current().check(&Context { role, cwd }, command)
    }

    /// The effective timeout of a request.
    pub fn timeout(&self, options: &ExecOptions) -> Result<Duration, WireError> {
        let Some(ms) = options.timeout_ms else {
            return Ok(self.settings.default_timeout);
        };
        let asked = Duration::from_millis(ms);
        if ms == 0 || asked > self.settings.max_timeout {
            let max = self.settings.max_timeout.as_millis();
            let msg = format!("`timeoutMs` must be between 1 and {max}");
            return Err(WireError::new(ErrorCode::InvalidRequest, msg));
        }
        Ok(asked)
    }

    /// A place in the session's queue, taken when the request arrives; `conflict` when
    /// `EXEC_QUEUE_DEPTH` commands already wait behind a running one.
    pub fn ticket(&self, queue: &Arc<SessionQueue>) -> Result<Ticket, WireError> {
        SessionQueue::take(queue, self.settings.queue_depth).ok_or_else(|| {
            let msg = "session busy: too many commands queued for this session";
            WireError::new(ErrorCode::Conflict, msg)
        })
    }

    /// Runs one approved command in `view`'s pane; the caller holds the session's turn.
    pub async fn run(
        &self,
        hub: &Arc<Hub>,
        view: &PaneView,
        approved: &Approved,
        options: &ExecOptions,
        timeout: Duration,
    ) -> Finished {
        let (Some(shell), Some(mark)) = (&self.shell, &hub.entry.mark) else {
            return Err((no_integration(), None));
        };
        let started = Instant::now();
        let ready_title = crate::backends::shell::ready_title(mark);
        let pane = run::Pane {
            hub,
            view,
            shell,
            ready_title,
        };
        let max = self.settings.max_output_bytes;
        let ran = pane.run(&approved.line, timeout, max).await;
        let elapsed = started.elapsed();
        let ran = match ran {
            Ok(ran) => ran,
            Err(e) => {
                let outcome = match e {
                    run::RunError::Busy(_) => Outcome::Busy,
                    _ => Outcome::Error,
                };
                self.stats.record(outcome, elapsed);
                return Err((run_error(e), None));
            }
        };
        let out = output::render(&ran.raw, options.strip_ansi, max, ran.lost);
        let result = CommandResult {
            output: out.text,
            exit_code: ran.exit_code,
            duration_ms: elapsed.as_millis() as u64,
            truncated: out.truncated,
            timed_out: ran.timed_out,
        };
        let outcome = match (ran.timed_out, ran.exit_code) {
            (true, _) => Outcome::Timeout,
            (false, Some(0)) => Outcome::Ok,
            _ => Outcome::Failed,
        };
        self.stats.record(outcome, elapsed);
        if ran.timed_out {
            let msg = format!(
                "command timed out after {} ms and was interrupted",
                timeout.as_millis()
            );
            return Err((WireError::new(ErrorCode::Timeout, msg), Some(result)));
        }
        Ok(result)
    }

    /// Counts a refused command.
    pub fn blocked(&self) {
        self.stats.record(Outcome::Blocked, Duration::ZERO);
    }
}

/// The error a policy refusal answers with.
pub fn refusal_error(refusal: &Refusal) -> WireError {
    let msg = format!(
        "command refused by policy ({}): {}",
        refusal.code, refusal.message
    );
    WireError::new(ErrorCode::Forbidden, msg)
}

fn no_integration() -> WireError {
    WireError::new(
        ErrorCode::Conflict,
        "this session's shell does not report command status (DEFAULT_COMMAND is set, or bash is missing)",
    )
}

fn run_error(e: run::RunError) -> WireError {
    match e {
        run::RunError::Busy(why) => {
            WireError::new(ErrorCode::Conflict, format!("session busy: {why}"))
        }
        run::RunError::NoIntegration => no_integration(),
        run::RunError::Closed => WireError::new(ErrorCode::NotFound, "the session or pane ended"),
        run::RunError::Session(e) => WireError::from(e),
    }
}
