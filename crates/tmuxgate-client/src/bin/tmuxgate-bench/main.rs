//! `tmuxgate-bench`: latency, scale and throughput of a tmuxgate gateway, measured through
//! protocol v1 exactly as a real client speaks it (`tmuxgate_client`).
//!
//! Each scenario starts its own gateway (the `tmuxgate` binary next to this one, on
//! 127.0.0.1 with free ports and private tmux sockets; stopped and its tmux servers killed
//! at the end) or measures a running one (`--url`, `--pid`). Results are a table per
//! scenario plus one JSON object per line (`--json`: the lines only). Exit status: 0,
//! 1 on an error, 3 when a machine limit stopped a scenario early (it says which).
#![forbid(unsafe_code)]

mod auth;
mod bare;
mod bench;
mod conn;
mod connect;
mod echo;
mod echo_load;
mod exec;
mod fanout;
mod flood;
mod gateway;
mod idle;
mod limits;
mod load;
mod procfs;
mod report;
mod requests;
mod soak;
mod stats;
mod tls;
mod typing;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::bench::{Bench, Global, Outcome};

/// Exit status when a machine limit (open files, ports, MAX_CONNECTIONS) stopped a scenario.
const EXIT_LIMITED: u8 = 3;

/// Load and latency tool for tmuxgate.
#[derive(Debug, Parser)]
#[command(name = "tmuxgate-bench", version)]
#[command(
    after_help = "Budgets, measured figures and the commands that produced them: \
    BENCHMARKS.md at the repository root."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Keystroke echo latency through the gateway and through a bare tmux control client
    Echo(echo::EchoArgs),
    /// Echo latency while viewers are attached and other sessions are typing
    EchoLoad(echo_load::EchoLoadArgs),
    /// Many idle read-only connections: gateway memory and CPU, then a broadcast check
    Idle(idle::IdleArgs),
    /// One pane writing as fast as it can to many viewers
    Fanout(fanout::FanoutArgs),
    /// Connect+attach rate, session-create and session-destroy rates
    Connect(connect::ConnectArgs),
    /// JSON request round trips per second (heartbeat, session-list), pipelined and not
    Requests(requests::RequestsArgs),
    /// Echo latency of a client from 127.0.0.3, quiet and while 127.0.0.2 floods
    Flood(flood::FloodArgs),
    /// command-execute of `true` in a closed loop per session: commands/s and latency
    Exec(exec::ExecArgs),
    /// An hour of typing, idle viewers, commands and connect churn: growth and latency per minute
    Soak(soak::SoakArgs),
}

impl Scenario {
    fn title(&self) -> &'static str {
        match self {
            Scenario::Echo(_) => "echo",
            Scenario::EchoLoad(_) => "echo-load",
            Scenario::Idle(_) => "idle",
            Scenario::Fanout(_) => "fanout",
            Scenario::Connect(_) => "connect",
            Scenario::Requests(_) => "requests",
            Scenario::Flood(_) => "flood",
            Scenario::Exec(_) => "exec",
            Scenario::Soak(_) => "soak",
        }
    }

    async fn run(&self, bench: &Bench) -> anyhow::Result<Outcome> {
        match self {
            Scenario::Echo(args) => echo::run(bench, args).await,
            Scenario::EchoLoad(args) => echo_load::run(bench, args).await,
            Scenario::Idle(args) => idle::run(bench, args).await,
            Scenario::Fanout(args) => fanout::run(bench, args).await,
            Scenario::Connect(args) => connect::run(bench, args).await,
            Scenario::Requests(args) => requests::run(bench, args).await,
            Scenario::Flood(args) => flood::run(bench, args).await,
            Scenario::Exec(args) => exec::run(bench, args).await,
            Scenario::Soak(args) => soak::run(bench, args).await,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    install_tracing();
    let runtime = match cli.global.runtime() {
        Ok(runtime) => runtime,
        Err(e) => return fail(e.into()),
    };
    match runtime.block_on(run(cli)) {
        Ok(outcome) if outcome.stopped => ExitCode::from(EXIT_LIMITED),
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let bench = Bench::new(cli.global)?;
    let title = cli.scenario.title();
    let outcome = tokio::select! {
        outcome = cli.scenario.run(&bench) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    // Whatever happened, the scenario's gateway and tmux servers are gone by now (stopped,
    // or killed when the interrupted scenario was dropped).
    let outcome = outcome?;
    bench.report().print(title, &outcome.rows, &outcome.notes);
    Ok(outcome)
}

fn fail(error: anyhow::Error) -> ExitCode {
    eprintln!("tmuxgate-bench: error: {error:#}");
    ExitCode::FAILURE
}

/// Warnings of the client crate (e.g. undecodable server messages) on stderr; `RUST_LOG`
/// overrides.
fn install_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .try_init();
}
