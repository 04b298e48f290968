//! `requests`: JSON request round trips per second on one connection, for `heartbeat`
//! (never touches tmux) and `session-list`, one at a time and pipelined (a window of
//! requests in flight, matched back by id).

use std::time::{Duration, Instant};

use clap::Args;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tmuxgate_client::Client;
use tmuxgate_client::protocol::request::{Heartbeat, Request};

use crate::bench::{Bench, Outcome};
use crate::conn;
use crate::echo::ECHO_COMMAND;
use crate::report::Row;
use crate::stats::{Latency, per_second};

/// Options of `requests`.
#[derive(Debug, Args)]
pub struct RequestsArgs {
    /// Requests per case
    #[arg(long, default_value_t = 5000)]
    count: usize,
    /// Requests in flight in the pipelined cases
    #[arg(long, default_value_t = 64)]
    window: usize,
    /// Sessions that exist (what session-list returns)
    #[arg(long, default_value_t = 10)]
    sessions: usize,
}

/// Runs the scenario on its own gateway (or the `--url` one).
pub async fn run(bench: &Bench, args: &RequestsArgs) -> anyhow::Result<Outcome> {
    let gateway = bench.gateway(ECHO_COMMAND, 10).await?;
    let outcome = measure(gateway.url(), args).await;
    gateway.stop().await;
    outcome
}

async fn measure(url: &str, args: &RequestsArgs) -> anyhow::Result<Outcome> {
    let client = conn::connect(url).await?;
    let mut created = Vec::new();
    for i in 0..args.sessions {
        created.push(
            client
                .create_session(&conn::session_name("req", i), 80, 24)
                .await?,
        );
    }
    let mut outcome = Outcome::default();
    let kinds: [(&str, MakeRequest); 2] = [
        ("heartbeat", || {
            Request::Heartbeat(Heartbeat { timestamp: None })
        }),
        ("session-list", || Request::SessionList),
    ];
    for (name, make) in kinds {
        for window in [1, args.window.max(1)] {
            let run = pipelined(&client, make, args.count, window).await;
            let case = match window {
                1 => format!("{name} sequential"),
                w => format!("{name} pipelined-{w}"),
            };
            if name == "heartbeat" && window > 1 {
                outcome.budget_min(
                    "pipelined heartbeat round trips",
                    run.rate(),
                    20_000.0,
                    "/s",
                );
            }
            if run.failed > 0 {
                outcome
                    .notes
                    .push(format!("{case}: {} requests failed", run.failed));
            }
            outcome.rows.push(run.row(case));
        }
    }
    for session in created {
        let _ = client.destroy_session(&session.session_id).await;
    }
    Ok(outcome)
}

/// Builds the request a case sends.
type MakeRequest = fn() -> Request;

/// One case's figures.
struct Run {
    latency: Latency,
    elapsed: Duration,
    failed: u64,
}

impl Run {
    fn rate(&self) -> f64 {
        per_second(self.latency.count(), self.elapsed)
    }

    fn row(&self, case: String) -> Row {
        Row::new("requests", case)
            .with("per_s", self.rate())
            .extend(self.latency.summary())
    }
}

/// Sends `count` requests keeping `window` in flight; a failed one (error response or
/// timeout) is counted, not retried.
async fn pipelined(client: &Client, make: MakeRequest, count: usize, window: usize) -> Run {
    let mut run = Run {
        latency: Latency::new(),
        elapsed: Duration::ZERO,
        failed: 0,
    };
    let started = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    let mut sent = 0;
    while sent < count || !in_flight.is_empty() {
        while sent < count && in_flight.len() < window {
            in_flight.push(async move {
                let t0 = Instant::now();
                let response = client.request(make()).await;
                (response, t0.elapsed())
            });
            sent += 1;
        }
        if let Some((response, took)) = in_flight.next().await {
            match response {
                Ok(body) if body.success => run.latency.record(took),
                _ => run.failed += 1,
            }
        }
    }
    run.elapsed = started.elapsed();
    run
}
