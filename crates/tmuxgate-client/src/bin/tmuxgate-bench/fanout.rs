//! `fanout`: one pane writes a large file as fast as tmux lets it (`cat`), V viewers
//! receive it. Bytes per second per viewer and in total, against one viewer alone and
//! against a bare tmux control-mode client reading the same pane output.
//!
//! The pane runs `read _; cat FILE; exec cat`: it waits for a line, so every viewer is
//! attached before the flood starts; the first viewer (write mode) types the CR that
//! starts it. The expected output is the CR's echo (`\r\n`) plus the file with each `\n`
//! turned into `\r\n` by the tty, so a viewer is done when its stream reaches that many
//! bytes past the snapshot offset. Viewers that fall out of the pane's ring get a SNAPSHOT
//! and skip ahead: they are counted (`snapshots`), as the skipped bytes never reached them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use tmuxgate_client::protocol::frame::FrameKind;
use tmuxgate_client::protocol::request::AttachMode;
use tmuxgate_client::{Attachment, Client, ClientError};
use tokio::task::JoinSet;

use crate::bare::BareServer;
use crate::bench::{Bench, Outcome};
use crate::conn::{self, Viewer, open_viewers};
use crate::gateway::Gateway;
use crate::report::{Row, round};

/// Bytes per line of the generated file, newline included.
const LINE_BYTES: usize = 80;
/// Slowest throughput waited for before a viewer gives up, in bytes per second.
const MIN_RATE: u64 = 50_000;

/// Options of `fanout`.
#[derive(Debug, Args)]
pub struct FanoutArgs {
    /// Viewers of the flooding pane
    #[arg(long, default_value_t = 100)]
    viewers: usize,
    /// Size of the file the pane prints, in bytes
    #[arg(long, default_value_t = 8_000_000)]
    bytes: u64,
    /// Viewers being attached at once
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Skip the single-viewer case
    #[arg(long)]
    no_single: bool,
    /// Skip the bare control-mode baseline
    #[arg(long)]
    no_baseline: bool,
    /// Rounds of (bare, one viewer, many viewers), back to back; each round's ratios are
    /// reported and the budgets are judged on their medians, so a burst of noise on a
    /// shared machine moves one round, not the verdict
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// The generated file and what a viewer receives when the pane prints it.
struct Flood {
    path: PathBuf,
    /// Output bytes after the CR: its echo plus the file with `\n` → `\r\n`.
    expected: u64,
}

impl Flood {
    fn write(dir: &Path, bytes: u64) -> anyhow::Result<Flood> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("flood.txt");
        let lines = (bytes as usize).div_ceil(LINE_BYTES).max(1);
        let mut text = String::with_capacity(lines * LINE_BYTES);
        for i in 0..lines {
            let fill = (b'A' + (i % 26) as u8) as char;
            text.push_str(&format!("{i:09} "));
            text.extend(std::iter::repeat_n(fill, LINE_BYTES - 11));
            text.push('\n');
        }
        std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
        let expected = 2 + text.len() as u64 + lines as u64;
        Ok(Flood { path, expected })
    }

    /// What the pane runs.
    fn command(&self) -> String {
        format!("read _; cat {}; exec cat", self.path.display())
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(30 + self.expected / MIN_RATE)
    }
}

/// Runs the scenario on its own gateway (it must choose what the pane runs, so `--url`
/// is refused).
pub async fn run(bench: &Bench, args: &FanoutArgs) -> anyhow::Result<Outcome> {
    if bench.external() {
        anyhow::bail!("fanout starts its own gateway (it sets DEFAULT_COMMAND): drop --url");
    }
    let flood = Flood::write(&bench.dir("flood"), args.bytes)?;
    bench.files.check("fanout", args.viewers as u64 + 8)?;
    let gateway = bench.gateway(&flood.command(), args.viewers as u64).await?;
    let outcome = measure(bench, &gateway, &flood, args).await;
    gateway.stop().await;
    outcome
}

async fn measure(
    bench: &Bench,
    gateway: &Gateway,
    flood: &Flood,
    args: &FanoutArgs,
) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::default();
    let many = args.viewers.max(1);
    let mut cases = vec![many];
    if !args.no_single && many > 1 {
        cases.insert(0, 1);
    }
    let (mut vs_single, mut vs_bare) = (Vec::new(), Vec::new());
    for round_no in 1..=args.rounds.max(1) {
        let bare = match args.no_baseline {
            true => None,
            false => Some(bare_rate(bench, flood).await?),
        };
        if let Some(rate) = bare {
            outcome.rows.push(
                Row::new("fanout", "bare-control-mode")
                    .with("round", round_no)
                    .with("viewers", 1)
                    .with("p50_mb_s", rate)
                    .with("total_mb_s", rate),
            );
        }
        let mut single = None;
        for &viewers in &cases {
            let result =
                gateway_case(bench, gateway, flood, viewers, args.concurrency, round_no).await?;
            let mut row = result.row().with("round", round_no);
            if viewers == 1 {
                single = Some(result.median());
            }
            if let (Some(single), true) = (single, viewers > 1) {
                let ratio = result.min() / single;
                row.set("min_vs_single", round(ratio, 2));
                vs_single.push(ratio);
            }
            if let (Some(bare), 1) = (bare, viewers) {
                let ratio = result.median() / bare;
                row.set("vs_bare", round(ratio, 2));
                vs_bare.push(ratio);
            }
            if let Some(why) = &result.stopped {
                outcome.stop(format!("fanout with {viewers} viewers: {why}"));
            }
            outcome.rows.push(row);
        }
    }
    if let Some(ratio) = median(&mut vs_single) {
        outcome.budget_min(
            &format!("slowest of {many} viewers vs one viewer (median of rounds)"),
            100.0 * ratio,
            90.0,
            "%",
        );
    }
    if let Some(ratio) = median(&mut vs_bare) {
        outcome.budget_min(
            "one viewer vs bare control mode (median of rounds)",
            100.0 * ratio,
            90.0,
            "%",
        );
    }
    Ok(outcome)
}

/// The median of `values` (the upper one of an even count), if any.
fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// MB/s of the flood through a bare control-mode client.
async fn bare_rate(bench: &Bench, flood: &Flood) -> anyhow::Result<f64> {
    let server = BareServer::start(bench.tmux_bin(), &bench.dir("bare"), &flood.command()).await?;
    let mut client = server.attach().await?;
    let started = Instant::now();
    client.typer().type_bytes(b"\r").await?;
    client
        .wait_received(flood.expected, flood.timeout())
        .await?;
    let rate = mb_per_s(flood.expected, started.elapsed());
    client.shutdown().await;
    Ok(rate)
}

/// One viewer's figures.
struct Received {
    bytes: u64,
    snapshots: u32,
    done: Instant,
}

/// One gateway case.
struct CaseResult {
    rates: Vec<f64>,
    total: f64,
    snapshots: u32,
    stopped: Option<String>,
    cpu: Vec<(&'static str, serde_json::Value)>,
}

impl CaseResult {
    fn median(&self) -> f64 {
        self.rates.get(self.rates.len() / 2).copied().unwrap_or(0.0)
    }

    fn min(&self) -> f64 {
        self.rates.first().copied().unwrap_or(0.0)
    }

    fn row(&self) -> Row {
        Row::new("fanout", "gateway")
            .with("viewers", self.rates.len())
            .with("min_mb_s", round(self.min(), 2))
            .with("p50_mb_s", round(self.median(), 2))
            .with(
                "max_mb_s",
                round(self.rates.last().copied().unwrap_or(0.0), 2),
            )
            .with("total_mb_s", round(self.total, 2))
            .with("snapshots", self.snapshots)
            .extend(self.cpu.clone())
    }
}

/// A fresh session, `viewers` viewers (the first one writes), the flood, every viewer's rate.
async fn gateway_case(
    bench: &Bench,
    gateway: &Gateway,
    flood: &Flood,
    viewers: usize,
    concurrency: usize,
    round: usize,
) -> anyhow::Result<CaseResult> {
    let url = gateway.url();
    let writer = conn::connect(url).await?;
    let session = writer
        .create_session(
            &conn::session_name("fanout", viewers * 1000 + round),
            80,
            24,
        )
        .await?;
    let first = conn::attach_live(&writer, &session.session_id, AttachMode::Write).await?;
    let ids = [session.session_id.clone()];
    let opened = open_viewers(
        url,
        &ids,
        1..viewers,
        concurrency,
        AttachMode::Read,
        &bench.files,
    )
    .await;
    let channel = first.channel;
    let mut tasks = JoinSet::new();
    let timeout = flood.timeout();
    let expected = flood.expected;
    let mut clients: Vec<Client> = Vec::new();
    tasks.spawn(async move { receive(first, expected, timeout).await });
    for Viewer { client, attachment } in opened.viewers {
        clients.push(client);
        tasks.spawn(async move { receive(attachment, expected, timeout).await });
    }
    let cpu = gateway.cpu_meter();
    let started = Instant::now();
    writer.send_input(channel, b"\r").await?;
    let mut result = CaseResult {
        rates: Vec::new(),
        total: 0.0,
        snapshots: 0,
        stopped: opened.stopped,
        cpu: Vec::new(),
    };
    let mut total_bytes = 0;
    while let Some(joined) = tasks.join_next().await {
        let received = joined.context("viewer task")?.context("viewer stream")?;
        result
            .rates
            .push(mb_per_s(expected, received.done - started));
        result.snapshots += received.snapshots;
        total_bytes += received.bytes;
    }
    result.total = mb_per_s(total_bytes, started.elapsed());
    result.cpu = cpu.fields();
    result.rates.sort_by(f64::total_cmp);
    drop(clients);
    let _ = writer.destroy_session(&session.session_id).await;
    Ok(result)
}

/// Reads until the stream is `expected` bytes past its start; counts payload bytes.
async fn receive(
    mut attachment: Attachment,
    expected: u64,
    timeout: Duration,
) -> Result<Received, ClientError> {
    let end = attachment.end_offset() + expected;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut received = Received {
        bytes: 0,
        snapshots: 0,
        done: Instant::now(),
    };
    while attachment.end_offset() < end {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = attachment.next_frame(left).await?;
        match frame.kind {
            FrameKind::Snapshot => received.snapshots += 1,
            _ => received.bytes += frame.data.len() as u64,
        }
    }
    received.done = Instant::now();
    Ok(received)
}

/// Megabytes (10^6 bytes) per second.
fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    round(bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9), 3)
}
