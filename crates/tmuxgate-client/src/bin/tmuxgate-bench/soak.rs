//! `soak` (issue 10): a realistic mix held for an hour: typists keying into `cat` at a
//! human pace (echo latency of every key), idle read-only viewers spread over their
//! sessions, a `command-execute` every few seconds in a session of its own, and
//! connections opened, asked one request and closed. Every `--sample-every` a row gives
//! the gateway's RSS, descriptors, threads and CPU and the interval's latencies, churn and
//! failures; at the end the last sample is compared with the first after the warm-up.
//! Failures are counted and the worker tries again: they never end the run.

mod plot;
mod sample;
mod summary;
mod tally;
mod typist;
mod workers;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::ensure;
use clap::Args;
use tokio::task::JoinSet;

use crate::bench::{Bench, Outcome};
use crate::conn;
use crate::gateway::Gateway;
use sample::{Live, Sample, Sampler};
use tally::Tally;
use typist::Pace;
use workers::{CHURN_IN_FLIGHT, Slots};

/// Options of `soak`.
#[derive(Debug, Args)]
#[command(
    after_help = "The gateway runs its integrated shell (no DEFAULT_COMMAND), as \
    command-execute needs; typists type `exec cat` into theirs first. With --url, the \
    gateway must do the same, and --pid gives its memory, descriptors and CPU.\n\
    The one-hour run of issue 10: tmuxgate-bench soak --plot docs/bench/soak.svg"
)]
pub struct SoakArgs {
    /// Seconds measured after the warm-up
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    duration: u64,
    /// Seconds the mix runs before the measured window (sampled, not compared)
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    warmup: u64,
    /// Seconds between two samples
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    sample_every: u64,
    /// Sessions, each with a writer typing into `cat`
    #[arg(long, default_value_t = 10, value_name = "N")]
    typists: usize,
    /// Keys per second each typist types (a CR every 64 keys)
    #[arg(long, default_value_t = 8.0, value_name = "KEYS")]
    key_rate: f64,
    /// Read-only viewers, spread over the typists' sessions
    #[arg(long, default_value_t = 100, value_name = "N")]
    viewers: usize,
    /// Milliseconds between two command-execute, in a session of their own (0: none)
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    exec_every: u64,
    /// The command run (the policy must allow it for the `bench` admin)
    #[arg(long, default_value = "true")]
    command: String,
    /// Connections a second opened, sent one request (heartbeat, session-list) and
    /// closed (0: none)
    #[arg(long, default_value_t = 5.0, value_name = "N")]
    churn_per_s: f64,
    /// KiB each typist's session prints before typing starts, to fill its pane log
    /// (`RING_BUFFER_BYTES`, 1 MiB by default) during the warm-up, as in a session used for
    /// a while: what grows by design is then full before the measured window (0: none)
    #[arg(long, default_value_t = 1088, value_name = "KIB")]
    prefill_kib: u64,
    /// Write an SVG of gateway RSS and echo p99 per sample (rewritten at every sample)
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

impl SoakArgs {
    fn check(&self) -> anyhow::Result<()> {
        ensure!(self.typists > 0, "--typists must be at least 1");
        ensure!(self.sample_every > 0, "--sample-every must be at least 1 s");
        ensure!(self.duration > 0, "--duration must be at least 1 s");
        ensure!(
            self.key_rate > 0.0 && self.key_rate <= 1000.0,
            "--key-rate must be in (0, 1000]"
        );
        ensure!(
            self.churn_per_s >= 0.0 && self.churn_per_s <= 1000.0,
            "--churn-per-s must be in [0, 1000]"
        );
        Ok(())
    }

    /// Connections open at once at most: typists, viewers, exec, churn, the admin.
    fn connections(&self) -> u64 {
        (self.typists + self.viewers + 2 + CHURN_IN_FLIGHT) as u64
    }

    /// The mix in words, for the plot.
    fn mix(&self) -> String {
        let exec = match self.exec_every {
            0 => String::new(),
            ms => format!(", `{}` every {ms} ms", self.command),
        };
        let prefill = match self.prefill_kib {
            0 => String::new(),
            kib => format!(" (each first printing {kib} KiB)"),
        };
        format!(
            "{} typists{prefill} at {} keys/s, {} viewers{exec}, {} connects/s; a sample every {} s",
            self.typists, self.key_rate, self.viewers, self.churn_per_s, self.sample_every
        )
    }
}

/// Runs the scenario on its own gateway (or the `--url` one).
pub async fn run(bench: &Bench, args: &SoakArgs) -> anyhow::Result<Outcome> {
    args.check()?;
    bench.files.check("soak", args.connections())?;
    let gateway = bench.integrated_gateway(args.connections()).await?;
    let outcome = measure(bench, &gateway, args).await;
    gateway.stop().await;
    outcome
}

async fn measure(bench: &Bench, gateway: &Gateway, args: &SoakArgs) -> anyhow::Result<Outcome> {
    let admin = conn::connect(gateway.url()).await?;
    let tally = Tally::default();
    // One slot per typist, the last one for the exec worker.
    let slots = Slots::new(args.typists + 1);
    let mut tasks = JoinSet::new();
    spawn_workers(&mut tasks, gateway.url(), args, &slots, &tally);
    let samples = sample_all(bench, gateway, args, &tally).await;
    tasks.shutdown().await;
    // A `--url` gateway outlives the run: leave no session behind.
    for id in slots.all() {
        let _ = admin.destroy_session(&id).await;
    }
    let mut outcome = summary::outcome(&samples, &tally);
    if let Some(path) = &args.plot {
        outcome.notes.push(format!("plot: {}", path.display()));
    }
    Ok(outcome)
}

fn spawn_workers(
    tasks: &mut JoinSet<()>,
    url: &str,
    args: &SoakArgs,
    slots: &Slots,
    tally: &Tally,
) {
    let period = Duration::from_secs_f64(1.0 / args.key_rate);
    let start = tokio::time::Instant::now();
    for k in 0..args.typists {
        // Typists key at phases spread over the period: people, not a metronome.
        let first = start + period.mul_f64(k as f64 / args.typists as f64);
        let pace = Pace { first, period };
        let prefill = args.prefill_kib * 1024;
        let typist = typist::typist(url.into(), slots.clone(), k, (pace, prefill), tally.clone());
        tasks.spawn(typist);
    }
    for v in 0..args.viewers {
        let slot = v % args.typists;
        tasks.spawn(workers::viewer(
            url.into(),
            slots.clone(),
            slot,
            tally.clone(),
        ));
    }
    if args.exec_every > 0 {
        let every = Duration::from_millis(args.exec_every);
        let (slot, command) = (args.typists, args.command.clone());
        let prefill = args.prefill_kib * 1024;
        let exec = workers::exec(
            url.into(),
            (slots.clone(), slot),
            (command, prefill),
            every,
            tally.clone(),
        );
        tasks.spawn(exec);
    }
    if args.churn_per_s > 0.0 {
        tasks.spawn(workers::churn(url.into(), args.churn_per_s, tally.clone()));
    }
}

/// Takes every sample of the schedule, printing each and rewriting the plot.
async fn sample_all(
    bench: &Bench,
    gateway: &Gateway,
    args: &SoakArgs,
    tally: &Tally,
) -> Vec<Sample> {
    let schedule = sample::schedule(
        Duration::from_secs(args.warmup),
        Duration::from_secs(args.duration),
        Duration::from_secs(args.sample_every),
    );
    let started = tokio::time::Instant::now();
    let mut sampler = Sampler::start(gateway, tally.clone()).await;
    let mut live = Live::new(bench.report().json_only());
    let mut samples = Vec::with_capacity(schedule.len());
    // Rounded as the samples' minutes are, so the last warm-up sample sits on its edge.
    let warmup_minutes = crate::report::round(args.warmup as f64 / 60.0, 2);
    for (at, phase) in schedule {
        tokio::time::sleep_until(started + at).await;
        let sample = sampler.take(started.elapsed(), phase).await;
        live.print(&sample);
        samples.push(sample);
        if let Some(path) = &args.plot
            && let Err(e) = plot::write(path, &samples, &args.mix(), warmup_minutes)
        {
            eprintln!("warning: cannot write {}: {e}", path.display());
        }
    }
    samples
}
