//! `echo-load`: the `echo` measurement on one connection while V other connections are
//! attached as read-only viewers and K other sessions are typing at R keys/s each. The
//! same run measures the echo first without load, for comparison. The load runs on a
//! thread of its own (`load.rs`).

use std::time::Instant;

use clap::{Args, ValueEnum};

use crate::bench::{Bench, Outcome};
use crate::echo::{ECHO_COMMAND, open_gateway_echo};
use crate::gateway::Gateway;
use crate::load::{Load, LoadSpec};
use crate::report::{Row, round};
use crate::stats::Latency;
use crate::typing;

/// Which sessions the viewers watch.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum ViewersOn {
    /// Spread over the echo session and the typing sessions
    Spread,
    /// All on the echo session (every echo fans out to all of them)
    Echo,
}

/// Options of `echo-load`.
#[derive(Debug, Args)]
pub struct EchoLoadArgs {
    /// Read-only viewers attached during the measurement
    #[arg(long, default_value_t = 1000)]
    viewers: usize,
    /// Other sessions, each with a writer typing into it
    #[arg(long, default_value_t = 50)]
    typing: usize,
    /// Keys per second each typing session types
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Timed echo samples per case
    #[arg(long, default_value_t = 2000)]
    samples: usize,
    /// Untimed echo samples before each case
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Where the viewers are attached
    #[arg(long, value_enum, default_value_t = ViewersOn::Spread)]
    viewers_on: ViewersOn,
    /// Connections being opened at once
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seed of the random phase each typist types at
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Runs the scenario on its own gateway (or the `--url` one).
pub async fn run(bench: &Bench, args: &EchoLoadArgs) -> anyhow::Result<Outcome> {
    let connections = (args.viewers + args.typing + 1) as u64;
    bench.files.check("echo-load", connections)?;
    let gateway = bench.gateway(ECHO_COMMAND, connections).await?;
    let outcome = measure(bench, &gateway, args).await;
    gateway.stop().await;
    outcome
}

async fn measure(bench: &Bench, gateway: &Gateway, args: &EchoLoadArgs) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::default();
    let url = gateway.url();
    let mut echo = open_gateway_echo(url, &crate::conn::session_name("echo", 0)).await?;
    let mut quiet = Latency::new();
    typing::measure(&mut echo, args.warmup, args.samples, &mut quiet).await?;
    outcome
        .rows
        .push(Row::new("echo-load", "no load").extend(quiet.summary()));

    let load = Load::start(LoadSpec {
        url: url.to_string(),
        extra_sessions: vec![echo.session_id().to_string()],
        viewers_on_extra_only: matches!(args.viewers_on, ViewersOn::Echo),
        viewers: args.viewers,
        typing: args.typing,
        rate: args.rate,
        concurrency: args.concurrency,
        seed: args.seed,
        files: bench.files,
    })
    .await?;
    if let Some(why) = &load.stopped {
        outcome.stop(format!("echo-load: {why}"));
    }
    let cpu = gateway.cpu_meter();
    let (keys_before, started) = (load.keys(), Instant::now());
    let mut loaded = Latency::new();
    let measured = typing::measure(&mut echo, args.warmup, args.samples, &mut loaded).await;
    let cpu = cpu.fields();
    let keys_typed = load.keys() - keys_before;
    let typed_rate = round(keys_typed as f64 / started.elapsed().as_secs_f64(), 1);
    let viewers = load.viewers;
    load.stop().await?;
    measured?;
    outcome.rows.push(
        Row::new("echo-load", "load")
            .extend(loaded.summary())
            .with("viewers", viewers)
            .with("typing_sessions", args.typing)
            .with("keys_per_s_total", typed_rate)
            .extend(cpu),
    );
    outcome.budget_max(
        "echo p99 under load",
        loaded.quantile_us(0.99) / 1000.0,
        3.0,
        " ms",
    );
    let _ = echo.client().destroy_session(echo.session_id()).await;
    Ok(outcome)
}
