//! `flood`: a well-behaved client's keystroke echo, quiet and while another address floods
//! the gateway (issue 6). The typist connects from 127.0.0.3, the flood from 127.0.0.2 (both
//! loopback on Linux): 32 requests in flight per connection, reconnecting at once when a
//! connection is closed and every 10 ms while the address is refused. The gateway runs with
//! its default limits for both addresses (the tool's usual allowlist of 127.0.0.1 stays).
//! Reported: echo p50/p99 quiet and under flood, their ratio, and what the flood met (its
//! requests answered, refused `rate_limited`, closes 4429, refused connections).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use tmuxgate_client::ClientError;
use tmuxgate_client::protocol::request::AttachMode;
use tmuxgate_client::protocol::{CloseCode, ErrorCode};

use crate::bench::{Bench, Outcome};
use crate::conn;
use crate::echo::ECHO_COMMAND;
use crate::report::{Row, round};
use crate::stats::Latency;
use crate::typing::{self, GatewayEcho};

const TYPIST: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
const FLOODER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Requests in flight per flooding connection.
const IN_FLIGHT: usize = 32;

/// Options of `flood`.
#[derive(Debug, Args)]
pub struct FloodArgs {
    /// Timed echo samples per phase (quiet, then under flood)
    #[arg(long, default_value_t = 2000)]
    samples: usize,
    /// Untimed samples before the quiet phase
    #[arg(long, default_value_t = 200)]
    warmup: usize,
}

/// What the flood met.
#[derive(Default)]
struct Met {
    answered: AtomicU64,
    limited: AtomicU64,
    closed_4429: AtomicU64,
    other_closes: AtomicU64,
    refused_connects: AtomicU64,
    first_limited_ms: AtomicU64,
    first_refused_ms: AtomicU64,
}

/// Runs the scenario on its own gateway (the flood needs a gateway's default limits).
pub async fn run(bench: &Bench, args: &FloodArgs) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        !bench.external(),
        "flood starts its own gateway; drop --url"
    );
    let defaults = [
        ("RATE_LIMIT_REQUESTS", "100"),
        ("RATE_LIMIT_BURST", "50"),
        ("INPUT_BYTES_PER_SECOND", "262144"),
    ];
    let env = defaults.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec();
    let gateway = bench.gateway_with(ECHO_COMMAND, 100, env).await?;
    let outcome = measure(gateway.url(), args).await;
    gateway.stop().await;
    outcome
}

async fn measure(url: &str, args: &FloodArgs) -> anyhow::Result<Outcome> {
    let client = conn::connect_from(url, Some(TYPIST)).await?;
    let session = client
        .create_session(&conn::session_name("flood", 0), 80, 24)
        .await?;
    let attachment = conn::attach_live(&client, &session.session_id, AttachMode::Write).await?;
    let mut typist = GatewayEcho::new(client, attachment);
    let mut quiet = Latency::new();
    typing::measure(&mut typist, args.warmup, args.samples, &mut quiet).await?;

    let met = Arc::new(Met::default());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let underway = Arc::new(tokio::sync::Notify::new());
    let flood = tokio::spawn(flood(
        url.to_owned(),
        met.clone(),
        stop.clone(),
        started,
        underway.clone(),
    ));
    // Measured from the flood's first answer on, so it is under way, not still connecting.
    let _ = tokio::time::timeout(conn::STEP, underway.notified()).await;
    let mut loud = Latency::new();
    typing::measure(&mut typist, 0, args.samples, &mut loud).await?;
    stop.store(true, Ordering::Relaxed);
    let _ = flood.await;

    let mut outcome = Outcome::default();
    outcome
        .rows
        .push(Row::new("flood", "echo quiet (127.0.0.3)").extend(quiet.summary()));
    outcome
        .rows
        .push(Row::new("flood", "echo under flood (127.0.0.3)").extend(loud.summary()));
    let mut ratio = Row::new("flood", "ratio (flood / quiet)");
    for (key, q) in [("p50_us", 0.5), ("p99_us", 0.99)] {
        ratio.set(
            key,
            round(loud.quantile_us(q) / quiet.quantile_us(q).max(1.0), 2),
        );
    }
    outcome.rows.push(ratio);
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut flooder = Row::new("flood", "flooder (127.0.0.2)");
    flooder.set("answered", load(&met.answered));
    flooder.set("rate_limited", load(&met.limited));
    flooder.set("closed_4429", load(&met.closed_4429));
    flooder.set("other_closes", load(&met.other_closes));
    flooder.set("refused_connects", load(&met.refused_connects));
    flooder.set("first_limited_ms", load(&met.first_limited_ms));
    flooder.set("first_refused_ms", load(&met.first_refused_ms));
    outcome.rows.push(flooder);
    for (what, q) in [("p50", 0.5), ("p99", 0.99)] {
        let r = loud.quantile_us(q) / quiet.quantile_us(q).max(1.0);
        outcome.budget_max(&format!("echo {what} under flood / quiet"), r, 2.0, "×");
    }
    Ok(outcome)
}

/// Floods from [`FLOODER`] until `stop`.
async fn flood(
    url: String,
    met: Arc<Met>,
    stop: Arc<AtomicBool>,
    started: Instant,
    underway: Arc<tokio::sync::Notify>,
) {
    while !stop.load(Ordering::Relaxed) {
        let client = match conn::connect_from(&url, Some(FLOODER)).await {
            Ok(client) => Arc::new(client),
            Err(_) => {
                met.refused_connects.fetch_add(1, Ordering::Relaxed);
                mark(&met.first_refused_ms, started);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let workers = (0..IN_FLIGHT).map(|_| {
            let (client, met, stop) = (client.clone(), met.clone(), stop.clone());
            let underway = underway.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match client.heartbeat().await {
                        Ok(_) => {
                            underway.notify_one();
                            met.answered.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(ClientError::Server {
                            code: ErrorCode::RateLimited,
                            ..
                        }) => {
                            mark(&met.first_limited_ms, started);
                            met.limited.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(_) => return,
                    };
                }
            })
        });
        for worker in workers.collect::<Vec<_>>() {
            let _ = worker.await;
        }
        match client.closed() {
            Some((code, _)) if code == CloseCode::RateLimited.code() => {
                met.closed_4429.fetch_add(1, Ordering::Relaxed)
            }
            Some(_) => met.other_closes.fetch_add(1, Ordering::Relaxed),
            None => 0,
        };
    }
}

/// Records the first time something happened, in ms since `started`.
fn mark(at: &AtomicU64, started: Instant) {
    let ms = started.elapsed().as_millis().max(1) as u64;
    let _ = at.compare_exchange(0, ms, Ordering::Relaxed, Ordering::Relaxed);
}
