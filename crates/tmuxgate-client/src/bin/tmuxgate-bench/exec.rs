//! `exec`: `command-execute` throughput and latency (issue 7). The gateway runs without
//! `DEFAULT_COMMAND`, so every session runs its integrated bash; S sessions each get C
//! connections of their own, and every connection runs the command (`true`) in a closed
//! loop: the next one when the previous answer arrived. The gateway runs one command per
//! session at a time, so with C > 1 the others wait in its queue. After a warm-up (the
//! shells start, the first prompt appears) commands are counted for `--duration`.
//! Reported: commands/s, client-side latency, the gateway's own `durationMs`, errors by
//! code, and CPU of the gateway, its tmux servers, the sessions' shells and this tool.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use tmuxgate_client::protocol::request::ExecOptions;
use tmuxgate_client::{Client, ClientError};

use crate::bench::{Bench, Outcome};
use crate::conn;
use crate::gateway::Gateway;
use crate::procfs;
use crate::report::{Row, round};
use crate::stats::{Latency, per_second};

/// The budget: commands per second across 50 sessions.
const BUDGET_PER_SECOND: f64 = 1000.0;
/// Sessions the budget is stated for.
const BUDGET_SESSIONS: usize = 50;
/// What a failed command waits before the next, so a broken session does not spin.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Options of `exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Sessions, each running commands in parallel with the others
    #[arg(long, default_value_t = 50)]
    sessions: usize,
    /// Connections per session, each with one command in flight
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Seconds commands are counted
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of commands before counting (shells starting, first prompts)
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// The command each connection runs (the policy must allow it for the `bench` admin)
    #[arg(long, default_value = "true")]
    command: String,
}

/// Phases of a run, shared with the workers.
const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// What one connection's loop measured.
#[derive(Default)]
struct Tally {
    /// Client-side round trips of successful commands answered while measuring.
    latency: Option<Latency>,
    /// The gateway's `durationMs` of the same commands.
    gateway_ms: Option<Latency>,
    /// Failures while measuring, by error code (or client-side cause).
    errors: BTreeMap<String, u64>,
    /// Failures during the warm-up, by error code and message.
    warmup_errors: BTreeMap<String, u64>,
}

/// Runs the scenario on its own gateway (or the `--url` one).
pub async fn run(bench: &Bench, args: &ExecArgs) -> anyhow::Result<Outcome> {
    let connections = (args.sessions * args.connections.max(1)) as u64 + 1;
    let gateway = bench.integrated_gateway(connections).await?;
    let outcome = measure(&gateway, args).await;
    gateway.stop().await;
    outcome
}

async fn measure(gateway: &Gateway, args: &ExecArgs) -> anyhow::Result<Outcome> {
    anyhow::ensure!(args.sessions > 0, "--sessions must be at least 1");
    let control = conn::connect(gateway.url()).await?;
    let mut sessions = Vec::with_capacity(args.sessions);
    for i in 0..args.sessions {
        let name = conn::session_name("exec", i);
        sessions.push(control.create_session(&name, 80, 24).await?.session_id);
    }
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let mut workers = Vec::new();
    for session in &sessions {
        for _ in 0..args.connections.max(1) {
            let client = conn::connect(gateway.url()).await?;
            let (session, command) = (session.clone(), args.command.clone());
            workers.push(tokio::spawn(work(client, session, command, phase.clone())));
        }
    }
    tokio::time::sleep(Duration::from_secs_f64(args.warmup.max(0.0))).await;
    // The shells exist now: their CPU (and their commands', once reaped) is measured too.
    let shells = procfs::children(&gateway.tmux_pids());
    let cpu = gateway.cpu_meter().with_children("shells_cpu_pct", shells);
    let started = Instant::now();
    phase.store(MEASURE, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(args.duration.max(0.1))).await;
    phase.store(STOP, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let cpu = cpu.fields();
    let mut total = Tally::default();
    for worker in workers {
        total.merge(worker.await?);
    }
    for session in &sessions {
        let _ = control.destroy_session(session).await;
    }
    Ok(report(args, total, elapsed, cpu))
}

/// One connection's closed loop until [`STOP`].
async fn work(client: Client, session: String, command: String, phase: Arc<AtomicU8>) -> Tally {
    let mut tally = Tally::default();
    let (mut latency, mut gateway_ms) = (Latency::new(), Latency::new());
    while phase.load(Ordering::Relaxed) != STOP {
        let t0 = Instant::now();
        let answer = client
            .execute_with(&session, &command, ExecOptions::default())
            .await;
        // Commands answered while measuring count (the rate is answers per second).
        let counted = phase.load(Ordering::Relaxed) == MEASURE;
        let failure = match answer {
            Ok(result) if result.exit_code == Some(0) => {
                if counted {
                    latency.record(t0.elapsed());
                    gateway_ms.record(Duration::from_millis(result.duration_ms));
                }
                continue;
            }
            Ok(_) => "exit_status_not_0".to_owned(),
            // Warm-up failures are rare and telling: keep their message.
            Err(ClientError::Server { code, message }) => match counted {
                true => code.as_str().to_owned(),
                false => format!("{} ({message})", code.as_str()),
            },
            Err(ClientError::Timeout) => "client_timeout".to_owned(),
            Err(e) => {
                // The connection is gone: this worker is done.
                *tally.errors.entry(format!("connection: {e}")).or_default() += 1;
                break;
            }
        };
        let errors = match counted {
            true => &mut tally.errors,
            false => &mut tally.warmup_errors,
        };
        *errors.entry(failure).or_default() += 1;
        tokio::time::sleep(ERROR_PAUSE).await;
    }
    tally.latency = Some(latency);
    tally.gateway_ms = Some(gateway_ms);
    tally
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        let add = |mine: &mut Option<Latency>, theirs: Option<Latency>| {
            if let Some(theirs) = theirs {
                mine.get_or_insert_with(Latency::new).add(&theirs);
            }
        };
        add(&mut self.latency, other.latency);
        add(&mut self.gateway_ms, other.gateway_ms);
        for (mine, theirs) in [
            (&mut self.errors, other.errors),
            (&mut self.warmup_errors, other.warmup_errors),
        ] {
            for (code, n) in theirs {
                *mine.entry(code).or_default() += n;
            }
        }
    }
}

/// `n`, `p50_us`, `p90_us`, `p99_us`, `max_us`: the figures the issue asks for.
fn quantiles(latency: &Latency) -> Vec<(&'static str, serde_json::Value)> {
    let us = |v: f64| serde_json::Value::from(round(v, 1));
    vec![
        ("n", latency.count().into()),
        ("p50_us", us(latency.quantile_us(0.50))),
        ("p90_us", us(latency.quantile_us(0.90))),
        ("p99_us", us(latency.quantile_us(0.99))),
        ("max_us", us(latency.max_us())),
    ]
}

/// The row, the error notes and the budget.
fn report(
    args: &ExecArgs,
    total: Tally,
    elapsed: Duration,
    cpu: Vec<(&'static str, serde_json::Value)>,
) -> Outcome {
    let latency = total.latency.unwrap_or_else(Latency::new);
    let gateway_ms = total.gateway_ms.unwrap_or_else(Latency::new);
    let rate = per_second(latency.count(), elapsed);
    let errors: u64 = total.errors.values().sum();
    let case = format!(
        "{} sessions × {} conn, `{}`",
        args.sessions,
        args.connections.max(1),
        args.command
    );
    let row = Row::new("exec", case)
        .with("sessions", args.sessions)
        .with("per_s", rate)
        .with("per_session_per_s", round(rate / args.sessions as f64, 1))
        .extend(quantiles(&latency))
        .with(
            "gateway_p50_ms",
            round(gateway_ms.quantile_us(0.5) / 1000.0, 1),
        )
        .with(
            "gateway_p99_ms",
            round(gateway_ms.quantile_us(0.99) / 1000.0, 1),
        )
        .with("errors", errors)
        .extend(cpu);
    let mut outcome = Outcome::default();
    outcome.rows.push(row);
    for (code, n) in &total.errors {
        outcome.notes.push(format!("{n} commands failed: {code}"));
    }
    for (code, n) in &total.warmup_errors {
        let note = format!("{n} commands failed during the warm-up (not counted): {code}");
        outcome.notes.push(note);
    }
    if args.sessions >= BUDGET_SESSIONS {
        let what = format!("command-execute across {} sessions", args.sessions);
        outcome.budget_min(&what, rate, BUDGET_PER_SECOND, "/s");
    }
    outcome
}
