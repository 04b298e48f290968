//! Typed helpers for command execution: `command-execute`, `batch-execute` and
//! `command-validate`. A command may run longer than the client's request timeout, so
//! these wait for the command's own time limit plus a margin.

use std::time::Duration;

use tmuxgate_protocol::request::{
    BatchExecute, CommandExecute, CommandValidate, ExecOptions, Request,
};
use tmuxgate_protocol::response::{BatchResult, CommandResult, ResponseBody, Verdict};

use crate::error::into_typed;
use crate::{Client, ClientError};

/// What the client waits beyond a command's time limit (the gateway's Ctrl-C grace, queueing).
const EXEC_MARGIN: Duration = Duration::from_secs(10);

/// The gateway's default command time limit (`EXEC_TIMEOUT_MS`), for requests naming none.
const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(30);

impl Client {
    /// `command-execute` with default options: the output and exit status, or the error.
    pub async fn execute(
        &self,
        session_id: &str,
        command: &str,
    ) -> Result<CommandResult, ClientError> {
        self.execute_with(session_id, command, ExecOptions::default())
            .await
    }

    /// `command-execute` with options. A timeout is [`ClientError::Server`] with
    /// `ErrorCode::Timeout`; [`Client::execute_raw`] also gives its partial output.
    pub async fn execute_with(
        &self,
        session_id: &str,
        command: &str,
        options: ExecOptions,
    ) -> Result<CommandResult, ClientError> {
        into_typed(self.execute_raw(session_id, command, options).await?)
    }

    /// `command-execute`, the response as it came (a `timeout` error carries the partial
    /// result in `data`).
    pub async fn execute_raw(
        &self,
        session_id: &str,
        command: &str,
        options: ExecOptions,
    ) -> Result<ResponseBody, ClientError> {
        let wait = wait_for(&options, 1);
        let request = Request::CommandExecute(CommandExecute {
            session_id: session_id.into(),
            command: command.into(),
            options,
        });
        self.request_within(request, wait).await
    }

    /// `batch-execute`: runs `commands` in order; `stop_on_error` (default true) stops at
    /// the first failure.
    pub async fn batch(
        &self,
        session_id: &str,
        commands: &[&str],
        stop_on_error: Option<bool>,
        options: ExecOptions,
    ) -> Result<BatchResult, ClientError> {
        let wait = wait_for(&options, commands.len());
        let request = Request::BatchExecute(BatchExecute {
            session_id: session_id.into(),
            commands: commands.iter().map(|c| c.to_string()).collect(),
            stop_on_error,
            options,
        });
        into_typed(self.request_within(request, wait).await?)
    }

    /// `command-validate`: the policy's verdict for this client, nothing run.
    pub async fn validate(&self, command: &str) -> Result<Verdict, ClientError> {
        let request = Request::CommandValidate(CommandValidate {
            command: command.into(),
        });
        into_typed(self.request(request).await?)
    }
}

fn wait_for(options: &ExecOptions, commands: usize) -> Duration {
    let each = options
        .timeout_ms
        .map_or(DEFAULT_EXEC_TIMEOUT, Duration::from_millis);
    each.saturating_mul(commands as u32) + EXEC_MARGIN
}
