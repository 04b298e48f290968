//! `echo`: keystroke echo latency of one connection, and in the same run the same
//! measurement over a bare tmux control-mode client (the baseline), with the gateway's
//! overhead as difference and ratio. The two paths alternate in rounds so drift on the
//! machine (other load, CPU frequency) affects both alike.

use clap::Args;
use serde_json::Value;
use tmuxgate_client::protocol::request::AttachMode;

use crate::bare::BareServer;
use crate::bench::{Bench, Outcome};
use crate::conn;
use crate::gateway::Gateway;
use crate::report::{Row, round};
use crate::stats::Latency;
use crate::typing::{self, BareEcho, GatewayEcho};

/// What echo panes run: `cat` on a cooked tty.
pub const ECHO_COMMAND: &str = "exec cat";

/// Options of `echo`.
#[derive(Debug, Args)]
pub struct EchoArgs {
    /// Timed samples per path
    #[arg(long, default_value_t = 2000)]
    samples: usize,
    /// Untimed samples per path before the first round
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Rounds alternating gateway and baseline (samples are split between them)
    #[arg(long, default_value_t = 4)]
    rounds: usize,
    /// Skip the bare control-mode baseline
    #[arg(long)]
    no_baseline: bool,
}

/// Runs the scenario on its own gateway (or the `--url` one).
pub async fn run(bench: &Bench, args: &EchoArgs) -> anyhow::Result<Outcome> {
    let gateway = bench.gateway(ECHO_COMMAND, 10).await?;
    let outcome = measure(bench, &gateway, args).await;
    gateway.stop().await;
    outcome
}

async fn measure(bench: &Bench, gateway: &Gateway, args: &EchoArgs) -> anyhow::Result<Outcome> {
    let mut via_gateway = open_gateway_echo(gateway.url(), &conn::session_name("echo", 0)).await?;
    let bare_server = match args.no_baseline {
        true => None,
        false => Some(BareServer::start(bench.tmux_bin(), &bench.dir("bare"), ECHO_COMMAND).await?),
    };
    let mut bare = match &bare_server {
        Some(server) => Some(BareEcho::new(server.attach().await?)),
        None => None,
    };
    let (mut gw_latency, mut bare_latency) = (Latency::new(), Latency::new());
    let rounds = args.rounds.max(1);
    for round in 0..rounds {
        let warmup = if round == 0 { args.warmup } else { 0 };
        let samples = share(args.samples, rounds, round);
        typing::measure(&mut via_gateway, warmup, samples, &mut gw_latency).await?;
        if let Some(bare) = bare.as_mut() {
            typing::measure(bare, warmup, samples, &mut bare_latency).await?;
        }
    }
    let _ = via_gateway
        .client()
        .destroy_session(via_gateway.session_id())
        .await;
    if let Some(bare) = bare {
        bare.into_inner().shutdown().await;
    }
    let mut outcome = Outcome::default();
    outcome
        .rows
        .push(Row::new("echo", "gateway").extend(gw_latency.summary()));
    if bare_server.is_some() {
        outcome
            .rows
            .push(Row::new("echo", "bare-control-mode").extend(bare_latency.summary()));
        compare(&mut outcome, &gw_latency, &bare_latency);
    }
    Ok(outcome)
}

/// A write attachment to a new session, ready to type into.
pub async fn open_gateway_echo(url: &str, name: &str) -> anyhow::Result<GatewayEcho> {
    let client = conn::connect(url).await?;
    let session = client.create_session(name, 80, 24).await?;
    let attachment = conn::attach_live(&client, &session.session_id, AttachMode::Write).await?;
    Ok(GatewayEcho::new(client, attachment))
}

/// The `round`-th of `rounds` near-equal shares of `total`.
fn share(total: usize, rounds: usize, round: usize) -> usize {
    total / rounds + usize::from(round < total % rounds)
}

/// Overhead rows (difference and ratio per percentile) and the budget notes.
fn compare(outcome: &mut Outcome, gateway: &Latency, bare: &Latency) {
    let quantiles = [("p50_us", 0.5), ("p95_us", 0.95), ("p99_us", 0.99)];
    let mut difference = Row::new("echo", "overhead (gateway - bare)");
    let mut ratio = Row::new("echo", "ratio (gateway / bare)");
    for (key, q) in quantiles {
        let (g, b) = (gateway.quantile_us(q), bare.quantile_us(q));
        difference.set(key, round(g - b, 1));
        ratio.set(
            key,
            if b > 0.0 {
                Value::from(round(g / b, 2))
            } else {
                Value::Null
            },
        );
    }
    let p50 = gateway.quantile_us(0.5) - bare.quantile_us(0.5);
    let p99 = gateway.quantile_us(0.99) - bare.quantile_us(0.99);
    outcome.rows.push(difference);
    outcome.rows.push(ratio);
    outcome.budget_max("echo overhead p50", p50, 100.0, " µs");
    outcome.budget_max("echo overhead p99", p99, 500.0, " µs");
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn shares_add_up() {
        let shares: Vec<usize> = (0..4).map(|r| share(10, 4, r)).collect();
        assert_eq!(shares, [3, 3, 2, 2]);
    }
}
