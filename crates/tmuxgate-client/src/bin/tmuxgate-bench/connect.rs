//! `connect`: how fast clients can join (connect + attach + first frame, to sessions whose
//! tmux control connection is already open), and how fast sessions are created and
//! destroyed.

use std::time::{Duration, Instant};

use clap::Args;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tmuxgate_client::protocol::request::AttachMode;
use tmuxgate_client::{Attachment, Client, ClientError};

use crate::bench::{Bench, Outcome};
use crate::conn::{self, open_viewers};
use crate::echo::ECHO_COMMAND;
use crate::gateway::Gateway;
use crate::report::{Row, round};
use crate::stats::{Latency, per_second};

/// Options of `connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Connections to open (each attaches read-only to one session)
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Connections being opened at once
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Sessions the connections are spread over
    #[arg(long, default_value_t = 10)]
    sessions: usize,
    /// Sessions to create, then destroy
    #[arg(long, default_value_t = 100)]
    creates: usize,
    /// Creates (and destroys) in flight at once
    #[arg(long, default_value_t = 4)]
    create_concurrency: usize,
}

/// Runs the scenario on its own gateway (or the `--url` one).
pub async fn run(bench: &Bench, args: &ConnectArgs) -> anyhow::Result<Outcome> {
    bench
        .files
        .check("connect", (args.connections + args.sessions) as u64)?;
    let gateway = bench
        .gateway(ECHO_COMMAND, (args.connections + args.sessions) as u64)
        .await?;
    let outcome = measure(bench, &gateway, args).await;
    gateway.stop().await;
    outcome
}

async fn measure(bench: &Bench, gateway: &Gateway, args: &ConnectArgs) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::default();
    let url = gateway.url();
    let admin = conn::connect(url).await?;
    // Attached sessions have their tmux control connection open: joins measure the
    // gateway, not tmux's attach.
    let mut warm: Vec<Attachment> = Vec::new();
    let mut ids = Vec::new();
    for i in 0..args.sessions.max(1) {
        let session = admin
            .create_session(&conn::session_name("conn", i), 80, 24)
            .await?;
        warm.push(conn::attach_live(&admin, &session.session_id, AttachMode::Write).await?);
        ids.push(session.session_id);
    }
    let range = 0..args.connections;
    let cpu = gateway.cpu_meter();
    let opened = open_viewers(
        url,
        &ids,
        range,
        args.concurrency,
        AttachMode::Read,
        &bench.files,
    )
    .await;
    let joined = opened.viewers.len() as u64;
    let rate = per_second(joined, opened.elapsed);
    outcome.rows.push(
        Row::new("connect", "connect+attach")
            .with("connections", joined)
            .with("concurrency", args.concurrency)
            .with("per_s", rate)
            .with("elapsed_s", round(opened.elapsed.as_secs_f64(), 2))
            .extend(opened.latency.summary())
            .extend(cpu.fields()),
    );
    outcome.budget_min("connect+attach rate", rate, 2000.0, "/s");
    if let Some(why) = opened.stopped {
        outcome.stop(format!("connect+attach {why}"));
    }
    drop(opened.viewers);
    drop(warm);
    for id in &ids {
        let _ = admin.destroy_session(id).await;
    }
    churn(&admin, args, &mut outcome).await?;
    Ok(outcome)
}

/// Creates `creates` sessions, then destroys them, `create_concurrency` at a time.
async fn churn(admin: &Client, args: &ConnectArgs, outcome: &mut Outcome) -> anyhow::Result<()> {
    let names: Vec<String> = (0..args.creates)
        .map(|i| conn::session_name("churn", i))
        .collect();
    let (created, create) = timed_all(
        admin,
        names,
        args.create_concurrency,
        |c, name| async move { c.create_session(&name, 80, 24).await.map(|s| s.session_id) },
    )
    .await;
    let (_, destroy) = timed_all(
        admin,
        created,
        args.create_concurrency,
        |c, id| async move { c.destroy_session(&id).await },
    )
    .await;
    for (case, run) in [("session-create", create), ("session-destroy", destroy)] {
        if run.failed > 0 {
            outcome.notes.push(format!(
                "{case}: {} requests failed: {}",
                run.failed, run.error
            ));
        }
        outcome.rows.push(
            Row::new("connect", case)
                .with("concurrency", args.create_concurrency)
                .with("per_s", per_second(run.latency.count(), run.elapsed))
                .with("elapsed_s", round(run.elapsed.as_secs_f64(), 2))
                .extend(run.latency.summary()),
        );
    }
    Ok(())
}

/// Latencies of one batch of requests.
struct Batch {
    latency: Latency,
    elapsed: Duration,
    failed: u64,
    error: String,
}

/// Runs `op(client, item)` for every item, `concurrency` at a time, on one connection;
/// returns the successful results and the batch's figures.
async fn timed_all<'a, T, R, Fut>(
    client: &'a Client,
    items: Vec<T>,
    concurrency: usize,
    op: impl Fn(&'a Client, T) -> Fut,
) -> (Vec<R>, Batch)
where
    Fut: Future<Output = Result<R, ClientError>> + 'a,
{
    let mut batch = Batch {
        latency: Latency::new(),
        elapsed: Duration::ZERO,
        failed: 0,
        error: String::new(),
    };
    let mut results = Vec::with_capacity(items.len());
    let started = Instant::now();
    let mut items = items.into_iter();
    let mut in_flight = FuturesUnordered::new();
    loop {
        while in_flight.len() < concurrency.max(1) {
            let Some(item) = items.next() else { break };
            let request = op(client, item);
            in_flight.push(async move {
                let t0 = Instant::now();
                (request.await, t0.elapsed())
            });
        }
        let Some((result, took)) = in_flight.next().await else {
            break;
        };
        match result {
            Ok(value) => {
                batch.latency.record(took);
                results.push(value);
            }
            Err(e) => {
                batch.failed += 1;
                batch.error = e.to_string();
            }
        }
    }
    batch.elapsed = started.elapsed();
    (results, batch)
}
