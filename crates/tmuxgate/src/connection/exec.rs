//! `command-execute`, `batch-execute` and `command-validate` on a connection.
//!
//! What can be decided at once (permission, the session's access, the policy when the
//! command needs no working directory) is decided in the connection task; the run happens
//! in a task of its own whose response comes back through the connection's exec channel,
//! so a long command never holds up the connection's output, heartbeats or other requests.
//! Every attempt is audited: `COMMAND_EXECUTED` when it ran, `COMMAND_BLOCKED` otherwise.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tmuxgate_protocol::request::{
    BatchExecute, CommandExecute, CommandValidate, ExecOptions, RequestId,
};
use tmuxgate_protocol::response::{BatchItem, BatchResult, Verdict as WireVerdict};
use tmuxgate_protocol::{ErrorCode, Response};
use tokio::sync::mpsc;

use super::Conn;
use crate::audit::{EventKind, Record};
use crate::error::WireError;
use crate::exec::{self, Finished, MAX_BATCH_COMMANDS};
use crate::policy::{Approved, Verdict};
use crate::security::Permission;
use crate::server::Gateway;
use crate::sessions::{Hub, PaneView, SessionEntry};

/// Commands one connection may have running or queued at once.
pub const MAX_EXEC_IN_FLIGHT: usize = 32;

/// The channel exec tasks answer through (made on a connection's first command).
pub(super) struct ExecLink {
    tx: mpsc::Sender<String>,
    pub(super) rx: mpsc::Receiver<String>,
}

/// Who runs a job, for the policy and the audit log.
#[derive(Clone)]
struct Caller {
    gw: Arc<Gateway>,
    user: Option<String>,
    role: String,
    peer: IpAddr,
}

impl Caller {
    fn event(&self, kind: EventKind, session: &str) -> Record {
        let record = Record::new(kind, Some(self.peer)).session(session);
        match &self.user {
            Some(user) => record.user(user.clone()).role(self.role.clone()),
            None => record,
        }
    }

    fn blocked(&self, session: &str, argv: &[String], reason: &'static str, detail: &str) {
        let record = self.event(EventKind::CommandBlocked, session);
        self.gw
            .audit
            .record(record.argv(argv).reason(reason).detail(detail));
    }
}

impl Conn {
    /// The role the policy applies: the user's, or `admin` with authentication off.
    fn policy_role(&self) -> Result<String, WireError> {
        Ok(match self.principal()? {
            crate::access::Principal::User(identity, _) => identity.role.to_string(),
            crate::access::Principal::Anyone => "admin".to_owned(),
        })
    }

    fn caller(&self) -> Result<Caller, WireError> {
        Ok(Caller {
            gw: self.gw.clone(),
            user: self.user_name().map(str::to_owned),
            role: self.policy_role()?,
            peer: self.peer,
        })
    }

    /// `command-validate`: the verdict for this caller, running nothing.
    pub(super) fn validate_command(&self, req: CommandValidate) -> Result<Value, WireError> {
        self.require(Permission::CommandExecute)?;
        let verdict = self.gw.exec.check(&self.policy_role()?, None, &req.command);
        let wire = match verdict {
            Verdict::Allowed(a) => WireVerdict {
                allowed: true,
                argv: Some(a.argv),
                line: Some(a.line),
                rule: Some(a.rule),
                code: None,
                reason: None,
            },
            Verdict::Refused(r) => WireVerdict {
                allowed: false,
                argv: None,
                line: None,
                rule: None,
                code: Some(r.code.to_owned()),
                reason: Some(r.message),
            },
        };
        Ok(serde_json::to_value(wire).unwrap_or(Value::Null))
    }

    /// Starts `command-execute`; the response comes later through the exec channel.
    pub(super) fn start_execute(
        &mut self,
        id: Option<RequestId>,
        req: CommandExecute,
        started: Instant,
    ) -> Result<(), WireError> {
        let commands = vec![req.command];
        self.start_job(id, &req.session_id, commands, None, req.options, started)
    }

    /// Starts `batch-execute`.
    pub(super) fn start_batch(
        &mut self,
        id: Option<RequestId>,
        req: BatchExecute,
        started: Instant,
    ) -> Result<(), WireError> {
        if req.commands.is_empty() || req.commands.len() > MAX_BATCH_COMMANDS {
            let msg = format!("`commands` must hold 1 to {MAX_BATCH_COMMANDS} commands");
            return Err(WireError::new(ErrorCode::InvalidRequest, msg));
        }
        let stop = req.stop_on_error.unwrap_or(true);
        self.start_job(
            id,
            &req.session_id,
            req.commands,
            Some(stop),
            req.options,
            started,
        )
    }

    fn start_job(
        &mut self,
        id: Option<RequestId>,
        session_id: &str,
        commands: Vec<String>,
        batch: Option<bool>,
        options: ExecOptions,
        started: Instant,
    ) -> Result<(), WireError> {
        self.require(Permission::CommandExecute)?;
        let (entry, _) = self.session(session_id, |may| may.write)?;
        let timeout = self.gw.exec.timeout(&options)?;
        crate::sessions::parse_target(options.target.as_deref())?;
        let link = self.exec.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel(MAX_EXEC_IN_FLIGHT);
            Box::new(ExecLink { tx, rx })
        });
        let Ok(permit) = link.tx.clone().try_reserve_owned() else {
            let msg = format!("at most {MAX_EXEC_IN_FLIGHT} commands in flight per connection");
            return Err(WireError::new(ErrorCode::Conflict, msg));
        };
        let caller = self.caller()?;
        let checked = precheck(&caller, &entry.id, &commands, batch.is_some())?;
        let ticket = self.gw.exec.ticket(&entry.exec)?;
        let job = Job {
            caller,
            ticket,
            entry,
            commands,
            checked,
            batch,
            options,
            timeout,
        };
        let kind = if batch.is_some() {
            "batch-execute"
        } else {
            "command-execute"
        };
        let gw = self.gw.clone();
        self.gw.tasks.spawn(async move {
            // On shutdown the command goes on in its pane; only the wait for it ends.
            let shutdown = gw.shutdown.clone();
            let outcome = tokio::select! {
                outcome = job.run() => outcome,
                () = shutdown.cancelled() => Err(plain(WireError::new(
                    ErrorCode::Unavailable,
                    "the gateway is shutting down",
                ))),
            };
            let mut response = match outcome {
                Ok(data) => Response::ok(id, data),
                Err((e, data)) => {
                    let mut r = Response::err(id, e.code, e.message);
                    r.data = data;
                    r
                }
            };
            let elapsed = started.elapsed();
            response.latency = Some(elapsed.as_secs_f64() * 1000.0);
            gw.stats.request(Some(kind), elapsed);
            permit.send(response.to_json());
        });
        Ok(())
    }
}

/// One `command-execute` or `batch-execute`, run in its own task.
struct Job {
    caller: Caller,
    /// Its place in the session's queue, taken on arrival.
    ticket: crate::exec::Ticket,
    entry: Arc<SessionEntry>,
    commands: Vec<String>,
    /// Each command's verdict without a working directory: `None` where a path rule needs
    /// the pane's (decided in the job, after asking tmux).
    checked: Vec<Option<Approved>>,
    /// `Some(stop_on_error)` for a batch.
    batch: Option<bool>,
    options: ExecOptions,
    timeout: Duration,
}

type JobResult = Result<Value, (WireError, Option<Value>)>;

impl Job {
    async fn run(self) -> JobResult {
        let gw = &self.caller.gw;
        let (hub, _hold) = gw.sessions.hold(&self.entry).await.map_err(plain)?;
        let target =
            crate::sessions::parse_target(self.options.target.as_deref()).map_err(plain)?;
        let pane = hub.resolve_pane(target).await.map_err(plain)?;
        let view = hub.view(pane).await.map_err(plain)?;
        let approved = self.validate_all(&hub, &view).await?;
        self.ticket.wait().await;
        match self.batch {
            None => {
                let finished = self.run_one(&hub, &view, &approved[0]).await;
                match finished {
                    Ok(result) => Ok(to_value(result)),
                    Err((e, result)) => Err((e, result.map(to_value))),
                }
            }
            Some(stop_on_error) => Ok(self.run_batch(&hub, &view, &approved, stop_on_error).await),
        }
    }

    /// The commands a path rule left undecided, decided against the pane's working
    /// directory (asked of tmux once).
    async fn validate_all(
        &self,
        hub: &Hub,
        view: &PaneView,
    ) -> Result<Vec<Approved>, (WireError, Option<Value>)> {
        let gw = &self.caller.gw;
        let mut cwd: Option<Option<std::path::PathBuf>> = None;
        let mut approved = Vec::with_capacity(self.commands.len());
        for (i, (command, checked)) in self.commands.iter().zip(&self.checked).enumerate() {
            if let Some(a) = checked {
                approved.push(a.clone());
                continue;
            }
            if cwd.is_none() {
                let dir = hub.pane_formats(view.pane, "#{pane_current_path}").await;
                cwd = Some(dir.ok().filter(|d| d.starts_with('/')).map(Into::into));
            }
            let dir = cwd.as_ref().and_then(|d| d.as_deref());
            match gw.exec.check(&self.caller.role, dir, command) {
                Verdict::Allowed(a) => approved.push(a),
                Verdict::Refused(r) => {
                    let batch = self.batch.is_some();
                    return Err((
                        refused(&self.caller, &self.entry.id, i, command, &r, batch),
                        None,
                    ));
                }
            }
        }
        Ok(approved)
    }

    async fn run_one(&self, hub: &Arc<Hub>, view: &PaneView, approved: &Approved) -> Finished {
        let gw = &self.caller.gw;
        let finished = gw
            .exec
            .run(hub, view, approved, &self.options, self.timeout)
            .await;
        let id = &self.entry.id;
        match &finished {
            Ok(r) | Err((_, Some(r))) => {
                let record = self.caller.event(EventKind::CommandExecuted, id);
                let mut record = record.argv(&approved.argv).exit(r.exit_code, r.duration_ms);
                if r.timed_out {
                    record = record.reason("timeout");
                }
                gw.audit.record(record.detail(approved.rule.clone()));
            }
            Err((e, None)) => {
                let reason = match e.code {
                    ErrorCode::Conflict => "busy",
                    _ => "failed",
                };
                self.caller.blocked(id, &approved.argv, reason, &e.message);
            }
        }
        finished
    }

    async fn run_batch(
        &self,
        hub: &Arc<Hub>,
        view: &PaneView,
        approved: &[Approved],
        stop_on_error: bool,
    ) -> Value {
        let mut results = Vec::with_capacity(approved.len());
        let mut stopped = false;
        for (i, a) in approved.iter().enumerate() {
            let finished = self.run_one(hub, view, a).await;
            let failed = !matches!(&finished, Ok(r) if r.exit_code == Some(0));
            results.push(item(i, finished));
            if failed && stop_on_error && i + 1 < approved.len() {
                stopped = true;
                break;
            }
        }
        to_value(BatchResult { results, stopped })
    }
}

/// Decides what can be decided without the pane: refusals answer at once (audited, and
/// without opening the session); commands a path rule needs the working directory for
/// come back `None`.
fn precheck(
    caller: &Caller,
    session: &str,
    commands: &[String],
    batch: bool,
) -> Result<Vec<Option<Approved>>, WireError> {
    let mut checked = Vec::with_capacity(commands.len());
    for (i, command) in commands.iter().enumerate() {
        match caller.gw.exec.check(&caller.role, None, command) {
            Verdict::Allowed(a) => checked.push(Some(a)),
            Verdict::Refused(r) if r.code.starts_with("path-") => checked.push(None),
            Verdict::Refused(r) => return Err(refused(caller, session, i, command, &r, batch)),
        }
    }
    Ok(checked)
}

/// A refusal: counted, audited (`COMMAND_BLOCKED`), answered `forbidden`.
fn refused(
    caller: &Caller,
    session: &str,
    index: usize,
    command: &str,
    refusal: &crate::policy::Refusal,
    batch: bool,
) -> WireError {
    caller.gw.exec.blocked();
    caller.blocked(session, &[cut(command)], refusal.code, &refusal.message);
    let mut e = exec::refusal_error(refusal);
    if batch {
        e.message = format!("command {index}: {}; nothing ran", e.message);
    }
    e
}

fn item(index: usize, finished: Finished) -> BatchItem {
    let (result, error) = match finished {
        Ok(r) => (Some(r), None),
        Err((e, r)) => (r, Some(e)),
    };
    BatchItem {
        index: index as u32,
        result,
        error_code: error.as_ref().map(|e| e.code),
        error: error.map(|e| e.message),
    }
}

/// A refused command's text for the audit log: bounded.
fn cut(command: &str) -> String {
    const MAX_CHARS: usize = 512;
    command.chars().take(MAX_CHARS).collect()
}

fn plain(e: impl Into<WireError>) -> (WireError, Option<Value>) {
    (e.into(), None)
}

fn to_value<T: serde::Serialize>(value: T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
