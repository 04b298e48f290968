//! Typing one validated line into a pane's shell and reading back its output and status.
//!
//! The line is typed only when the shell is at its prompt with an empty line, decided
//! atomically with viewers' input (see `sessions/input.rs`): after a command the gateway
//! typed, the line is known empty until a viewer types; otherwise the shell is asked (the
//! `P` probe, which only a shell at its prompt answers) after checking that the pane is
//! not in a mode and, when no mark was seen yet, that its title is the prompt's. Completion
//! and the exit status come from the `C` and `D` marks; on timeout Ctrl-C is sent.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tmux_control::PaneId;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::backends::shell::{PROBE_KEYS, ShellIntegration};
use crate::sessions::log::Read;
use crate::sessions::marks::{Claim, Marks, ShellState};
use crate::sessions::{Hub, PaneView, SessionError};

/// How long a shell finishing its previous command may take to show its prompt again.
const READY_WAIT: Duration = Duration::from_millis(500);

/// How long a shell no mark was seen from yet (a session just created, or just attached)
/// may take to show its prompt: starting bash on a loaded machine takes a while.
const START_WAIT: Duration = Duration::from_secs(3);

/// Keys a viewer typed this recently may not have reached the shell yet (a command line
/// whose `C` is still to come): the probe waits until the pane has been this quiet.
const QUIET: Duration = Duration::from_millis(250);

/// How long a shell at its prompt may take to answer the probe.
const PROBE_WAIT: Duration = Duration::from_secs(1);

/// After Ctrl-C, how long the command may take to end before the answer goes without it.
const INTERRUPT_GRACE: Duration = Duration::from_secs(2);

/// Why a line was not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The pane is not ready for a command; the reason is for the client.
    #[error("session busy: {0}")]
    Busy(&'static str),
    /// The session does not run the integrated shell.
    #[error(
        "this session's shell does not report command status (it was not started by the gateway's shell)"
    )]
    NoIntegration,
    /// The pane or session went away.
    #[error("the session ended")]
    Closed,
    /// tmux failed.
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// What running a line gave.
#[derive(Debug)]
pub struct Ran {
    /// Output bytes between the marks (at most `max_bytes` + 1 of them).
    pub raw: Vec<u8>,
    /// Whether the start of the output had already left the pane log.
    pub lost: bool,
    /// The exit status, when the command ended.
    pub exit_code: Option<i32>,
    /// Whether it ran out of time and was interrupted.
    pub timed_out: bool,
}

/// One pane of one session, ready to run lines in.
pub struct Pane<'a> {
    /// The session's hub (held for the run).
    pub hub: &'a Arc<Hub>,
    /// The pane.
    pub view: &'a PaneView,
    /// The integrated shell.
    pub shell: &'a ShellIntegration,
    /// The pane title while the shell waits at its prompt (it carries the session's nonce).
    pub ready_title: String,
}

impl Pane<'_> {
    fn id(&self) -> PaneId {
        self.view.pane
    }

    /// Types `line` and waits for its end, at most `timeout`.
    pub async fn run(
        &self,
        line: &str,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<Ran, RunError> {
        let mut marks_rx = self.view.subscribe_marks().ok_or(RunError::NoIntegration)?;
        let mut keys = Vec::with_capacity(line.len() + 1);
        keys.extend_from_slice(line.as_bytes());
        keys.push(b'\r');
        self.wait_for_prompt(&mut marks_rx, true).await?;
        if !self.type_if_clean(&keys) {
            self.ask_shell(&mut marks_rx).await?;
            if !self.type_if_clean(&keys) {
                return Err(RunError::Busy("someone is typing at the prompt"));
            }
        }
        let result = self.wait_done(&mut marks_rx, timeout, max_bytes).await;
        self.view.update_marks(|m| m.claim = None);
        result
    }

    /// Waits (briefly) until the shell is at its prompt or its state is unknown.
    async fn wait_for_prompt(
        &self,
        rx: &mut watch::Receiver<u64>,
        unknown_ok: bool,
    ) -> Result<(), RunError> {
        let deadline = Instant::now() + READY_WAIT;
        loop {
            let busy = match self.view.marks().state {
                ShellState::Prompt => return Ok(()),
                ShellState::Unknown if unknown_ok => return Ok(()),
                ShellState::Unknown => "the shell did not show its prompt",
                ShellState::Running => "a command is running",
                ShellState::PromptStart | ShellState::Finished => "the shell is not at its prompt",
            };
            self.changed(rx, deadline)
                .await?
                .then_some(())
                .ok_or(RunError::Busy(busy))?;
        }
    }

    /// Queues the keys if the line is known empty and the shell at its prompt, claiming
    /// the next command number in the same breath.
    fn type_if_clean(&self, keys: &[u8]) -> bool {
        let view = self.view;
        self.hub.input_checked(
            self.id(),
            keys,
            |line| line.is_clean() && view.update_marks(claim_next).unwrap_or(false),
            true,
        )
    }

    /// Asks the shell whether its line is empty; on success the line is known clean.
    async fn ask_shell(&self, rx: &mut watch::Receiver<u64>) -> Result<(), RunError> {
        self.wait_quiet().await?;
        // A shell just started may not have printed its first prompt yet: wait for it.
        let wait = match self.view.marks().state {
            ShellState::Unknown => START_WAIT,
            _ => READY_WAIT,
        };
        let deadline = Instant::now() + wait;
        let marks = loop {
            let formats = "#{pane_in_mode} #{pane_current_command} #{pane_title}";
            let formats = self.hub.pane_formats(self.id(), formats).await;
            let formats = formats.map_err(closed)?;
            let mut fields = formats.splitn(3, ' ');
            let (mode, command) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
            let title = fields.next().unwrap_or("");
            if mode != "0" {
                return Err(RunError::Busy("the pane is in a mode (copy mode?)"));
            }
            // The foreground process of the pane's terminal must be the shell itself (a
            // shell just started may still be the `sh` that execs it: that passes).
            let marks = self.view.marks();
            let (at_prompt, busy) = match marks.state {
                _ if command != &*self.shell.name => (false, "a command is running"),
                ShellState::Prompt => (true, ""),
                ShellState::Unknown => {
                    (title == self.ready_title, "the shell is not at its prompt")
                }
                _ => (false, "the shell is not at its prompt"),
            };
            if at_prompt {
                break marks;
            }
            if !self.changed(rx, deadline).await? {
                return Err(RunError::Busy(busy));
            }
        };
        let typed = self.hub.line(self.id()).typed;
        let asked =
            self.hub
                .input_checked(self.id(), PROBE_KEYS, |line| line.typed == typed, false);
        if !asked {
            return Err(RunError::Busy("someone is typing at the prompt"));
        }
        let deadline = Instant::now() + PROBE_WAIT;
        while self.view.marks().probes == marks.probes {
            if !self.changed(rx, deadline).await? {
                return Err(RunError::Busy("the shell did not answer at its prompt"));
            }
        }
        if self.view.marks().probe_len != 0 {
            return Err(RunError::Busy("someone is typing at the prompt"));
        }
        if !self.hub.mark_clean(self.id(), typed) {
            return Err(RunError::Busy("someone typed while the shell was asked"));
        }
        // The probe redraws the prompt (`A`, `B`) after answering: wait for the `B`.
        self.wait_for_prompt(rx, false).await
    }

    /// Waits until no viewer typed for `QUIET`, so that keys already sent have reached the
    /// shell (and a command line they started has printed its `C`). A command starting
    /// meanwhile ends the wait: the pane is busy.
    async fn wait_quiet(&self) -> Result<(), RunError> {
        let deadline = Instant::now() + READY_WAIT + QUIET;
        loop {
            let Some(last) = self.hub.line(self.id()).last_typed else {
                return Ok(());
            };
            let quiet_at = Instant::from_std(last) + QUIET;
            if quiet_at <= Instant::now() {
                return Ok(());
            }
            if quiet_at > deadline {
                return Err(RunError::Busy("someone is typing at the prompt"));
            }
            tokio::time::sleep_until(quiet_at).await;
            if self.view.marks().state == ShellState::Running {
                return Err(RunError::Busy("a command is running"));
            }
        }
    }

    /// Waits for the claimed command's `D`; on timeout sends Ctrl-C and waits a little more.
    async fn wait_done(
        &self,
        rx: &mut watch::Receiver<u64>,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<Ran, RunError> {
        let mut deadline = Instant::now() + timeout;
        let mut timed_out = false;
        let claim = loop {
            let claim = self.view.marks().claim.unwrap_or_default();
            if claim.done.is_some() {
                break claim;
            }
            if !self.changed(rx, deadline).await? {
                if timed_out {
                    break claim;
                }
                timed_out = true;
                self.hub.input_checked(self.id(), b"\x03", |_| true, false);
                deadline = Instant::now() + INTERRUPT_GRACE;
            }
        };
        Ok(self.collect(claim, timed_out, max_bytes))
    }

    fn collect(&self, claim: Claim, timed_out: bool, max_bytes: usize) -> Ran {
        let log = &self.view.log;
        let (end, exit_code) = match claim.done {
            Some((end, status)) => (end, Some(status)),
            None => (log.end(), None),
        };
        let start = claim.start.unwrap_or(end);
        let from = start.max(log.start());
        let mut raw = BytesMut::new();
        let mut at = from;
        let want = ((end - from) as usize).min(max_bytes + 1);
        while raw.len() < want {
            match log.read(at, want - raw.len(), &mut raw) {
                Read::Data { next } => at = next,
                Read::UpToDate | Read::Lost => break,
            }
        }
        Ran {
            raw: raw.to_vec(),
            lost: from > start,
            exit_code,
            timed_out,
        }
    }

    /// Waits for the next mark until `deadline`: false when the deadline passed first.
    async fn changed(
        &self,
        rx: &mut watch::Receiver<u64>,
        deadline: Instant,
    ) -> Result<bool, RunError> {
        if self.view.status().closed.is_some() {
            return Err(RunError::Closed);
        }
        tokio::select! {
            r = rx.changed() => r.map(|()| true).map_err(|_| RunError::Closed),
            _ = tokio::time::sleep_until(deadline) => Ok(false),
        }
    }
}

/// Claims the next command line if the shell is at its prompt.
fn claim_next(m: &mut Marks) -> bool {
    if m.state != ShellState::Prompt {
        return false;
    }
    m.claim = Some(Claim {
        command: m.commands + 1,
        ..Claim::default()
    });
    true
}

fn closed(e: SessionError) -> RunError {
    match e {
        SessionError::PaneNotFound => RunError::Closed,
        other => RunError::Session(other),
    }
}
