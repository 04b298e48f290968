//! `idle`: C connections attached read-only to S sessions. Gateway memory before and after
//! (per connection, at each requested step), its CPU while everything is idle (keepalive
//! included when the window spans a ping interval), the tmux control clients per session,
//! and then a line printed in every session that every connection must receive: the
//! connections are live, not just open.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use tmuxgate_client::protocol::request::AttachMode;
use tmuxgate_client::{Attachment, Client};
use tokio::task::JoinSet;

use crate::bench::{Bench, Outcome};
use crate::conn::{self, Viewer, open_viewers};
use crate::echo::ECHO_COMMAND;
use crate::gateway::Gateway;
use crate::procfs;
use crate::report::{Row, round};
use crate::stats::{Latency, per_second};

/// Options of `idle`.
#[derive(Debug, Args)]
pub struct IdleArgs {
    /// Connections; a comma-separated increasing list measures memory at each step
    /// (e.g. 1000,2000,5000,10000)
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    connections: Vec<usize>,
    /// Sessions the connections are spread over
    #[arg(long, default_value_t = 10)]
    sessions: usize,
    /// Connections being opened at once
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds of idle CPU measurement after the last step; keepalive pings are sent every
    /// PING_INTERVAL (30 s by default), so use at least that to include them
    #[arg(long, default_value_t = 5)]
    idle_secs: u64,
    /// Seconds every connection has to receive the broadcast line
    #[arg(long, default_value_t = 60)]
    verify_timeout: u64,
    /// Milliseconds to let the gateway settle before each memory reading
    #[arg(long, default_value_t = 1000)]
    settle_ms: u64,
}

/// One writer per session: it types the broadcast line.
struct Writer {
    client: Client,
    attachment: Attachment,
}

/// Runs the scenario on its own gateway (or the `--url` one).
pub async fn run(bench: &Bench, args: &IdleArgs) -> anyhow::Result<Outcome> {
    if args.connections.is_empty() || !args.connections.is_sorted() || args.sessions == 0 {
        bail!("--connections must be an increasing list and --sessions at least 1");
    }
    let total = args.connections.last().copied().unwrap_or_default();
    bench.files.check("idle", (total + args.sessions) as u64)?;
    let gateway = bench
        .gateway(ECHO_COMMAND, (total + args.sessions) as u64)
        .await?;
    let outcome = measure(bench, &gateway, args).await;
    gateway.stop().await;
    outcome
}

async fn measure(bench: &Bench, gateway: &Gateway, args: &IdleArgs) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::default();
    let (url, pid) = (gateway.url(), gateway.pid());
    let total = args.connections.last().copied().unwrap_or_default() + args.sessions;
    if let Some(limit) = pid.and_then(procfs::max_open_files)
        && limit < (total as u64) + crate::limits::RESERVED_FDS
    {
        outcome.notes.push(format!(
            "the gateway's RLIMIT_NOFILE is {limit}, below the {total} connections asked \
                 plus its own files: expect refused connections"
        ));
    }
    let mut writers = Vec::new();
    for s in 0..args.sessions {
        let client = conn::connect(url).await?;
        let session = client
            .create_session(&conn::session_name("idle", s), 80, 24)
            .await?;
        let attachment = conn::attach_live(&client, &session.session_id, AttachMode::Write).await?;
        writers.push(Writer { client, attachment });
    }
    let ids: Vec<String> = writers
        .iter()
        .map(|w| w.attachment.session_id.clone())
        .collect();
    let settle = Duration::from_millis(args.settle_ms);
    tokio::time::sleep(settle).await;
    let before = pid.and_then(procfs::rss_kib);
    outcome
        .rows
        .push(memory_row("baseline", 0, pid, before, None));
    let mut viewers: Vec<Viewer> = Vec::new();
    for &step in &args.connections {
        let range = viewers.len()..step;
        let opened = open_viewers(
            url,
            &ids,
            range,
            args.concurrency,
            AttachMode::Read,
            &bench.files,
        )
        .await;
        let rate = per_second(opened.viewers.len() as u64, opened.elapsed);
        viewers.extend(opened.viewers);
        tokio::time::sleep(settle).await;
        let row = memory_row("connections", viewers.len(), pid, before, Some(rate));
        outcome.rows.push(row);
        if let Some(why) = opened.stopped {
            outcome.stop(format!("idle: {why}"));
            break;
        }
    }
    memory_budget(&mut outcome, viewers.len(), pid, before);
    let row = idle_cpu(gateway, viewers.len(), args.idle_secs).await;
    if let Some(pct) = row.get("gateway_cpu_pct").and_then(|v| v.as_f64()) {
        outcome.budget_max("idle gateway CPU", pct, 2.0, "% of a core");
    }
    outcome.rows.push(row);
    if let Some(row) = control_clients(bench, gateway, &mut outcome).await {
        outcome.rows.push(row);
    }
    let timeout = Duration::from_secs(args.verify_timeout);
    let row = broadcast(&writers, viewers, &ids, timeout, &mut outcome).await?;
    outcome.rows.push(row);
    // A gateway given by `--url` outlives the run: leave nothing behind in it.
    for (writer, id) in writers.iter().zip(&ids) {
        let _ = writer.client.destroy_session(id).await;
    }
    Ok(outcome)
}

/// Gateway memory with `connections` viewers open, against `before`.
fn memory_row(
    case: &str,
    connections: usize,
    pid: Option<u32>,
    before: Option<u64>,
    rate: Option<f64>,
) -> Row {
    let rss = pid.and_then(procfs::rss_kib);
    let growth = rss.zip(before).map(|(now, then)| now.saturating_sub(then));
    let per_connection = growth
        .filter(|_| connections > 0)
        .map(|kib| round(kib as f64 / connections as f64, 2));
    let own = procfs::rss_kib(std::process::id());
    Row::new("idle", case)
        .with("connections", connections)
        .with("gateway_rss_mib", rss.map(procfs::mib))
        .with("growth_mib", growth.map(procfs::mib))
        .with("per_conn_kib", per_connection)
        .with("gateway_fds", pid.and_then(procfs::open_files))
        .with("bench_rss_mib", own.map(procfs::mib))
        .with("open_per_s", rate)
}

/// The memory budget of issue 3, in decimal units as it states them: ≤ 10 kB per
/// connection (≤ 100 MB at 10,000).
fn memory_budget(outcome: &mut Outcome, connections: usize, pid: Option<u32>, before: Option<u64>) {
    let growth = pid.and_then(procfs::rss_kib).zip(before);
    if let (Some((now, then)), true) = (growth, connections > 0) {
        let bytes = now.saturating_sub(then) as f64 * 1024.0;
        let per = bytes / 1e3 / connections as f64;
        outcome.budget_max("gateway RSS growth per connection", per, 10.0, " kB");
        outcome.budget_max(
            &format!("gateway RSS growth for {connections} connections"),
            bytes / 1e6,
            100.0,
            " MB",
        );
    }
}

/// Gateway, tmux and tool CPU over an idle window, as % of one core.
async fn idle_cpu(gateway: &Gateway, connections: usize, secs: u64) -> Row {
    let cpu = gateway.cpu_meter();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    Row::new("idle", "idle-cpu")
        .with("connections", connections)
        .with("window_s", round(started.elapsed().as_secs_f64(), 1))
        .extend(cpu.fields())
}

/// tmux clients per session on the own gateway's servers (`tmux list-clients`).
async fn control_clients(bench: &Bench, gateway: &Gateway, outcome: &mut Outcome) -> Option<Row> {
    let sockets = gateway.sockets();
    if sockets.is_empty() {
        return None;
    }
    let mut per_session: HashMap<String, u64> = HashMap::new();
    for socket in &sockets {
        let output = tokio::process::Command::new(bench.tmux_bin())
            .arg("-S")
            .arg(socket)
            .args(["list-clients", "-F", "#{session_name}"])
            .output()
            .await
            .ok()?;
        for name in String::from_utf8_lossy(&output.stdout).lines() {
            *per_session.entry(name.to_string()).or_default() += 1;
        }
    }
    let admin = per_session
        .remove(tmux_control::client::ADMIN_SESSION_NAME)
        .unwrap_or(0);
    let most = per_session.values().copied().max().unwrap_or(0);
    outcome.budget_max("tmux control clients per session", most as f64, 1.0, "");
    Some(
        Row::new("idle", "tmux-clients")
            .with("sessions", per_session.len())
            .with("clients", per_session.values().sum::<u64>())
            .with("max_per_session", most)
            .with("admin_clients", admin),
    )
}

/// Every writer types a line; every viewer must receive its session's line.
async fn broadcast(
    writers: &[Writer],
    viewers: Vec<Viewer>,
    ids: &[String],
    timeout: Duration,
    outcome: &mut Outcome,
) -> anyhow::Result<Row> {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let line = |s: usize| format!("bcast{nonce}s{s}x");
    let index: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(s, id)| (id.as_str(), s))
        .collect();
    let mut tasks = JoinSet::new();
    let mut clients = Vec::with_capacity(viewers.len());
    let count = viewers.len();
    for Viewer {
        client,
        mut attachment,
    } in viewers
    {
        let s = index
            .get(attachment.session_id.as_str())
            .copied()
            .unwrap_or(0);
        let needle = line(s).into_bytes();
        clients.push(client);
        tasks.spawn(async move {
            (
                s,
                conn::wait_for_needle(&mut attachment, &needle, timeout).await,
            )
        });
    }
    let mut sent_at = Vec::with_capacity(writers.len());
    for (s, writer) in writers.iter().enumerate() {
        sent_at.push(Instant::now());
        let input = format!("{}\r", line(s));
        writer
            .client
            .send_input(writer.attachment.channel, input.as_bytes())
            .await?;
    }
    let (mut latency, mut missing, mut error) = (Latency::new(), 0u64, None);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((s, Ok(at))) => latency.record(at.saturating_duration_since(sent_at[s])),
            Ok((_, Err(e))) => {
                missing += 1;
                error.get_or_insert(e.to_string());
            }
            Err(e) => {
                missing += 1;
                error.get_or_insert(e.to_string());
            }
        }
    }
    drop(clients);
    if let Some(error) = error {
        outcome.notes.push(format!(
            "broadcast: {missing} of {count} connections missed the line ({error})"
        ));
    }
    outcome.budget_max(
        "connections that missed the broadcast line",
        missing as f64,
        0.0,
        "",
    );
    let ms = |q: f64| round(latency.quantile_us(q) / 1000.0, 2);
    Ok(Row::new("idle", "broadcast")
        .with("connections", count)
        .with("received", latency.count())
        .with("missing", missing)
        .with("p50_ms", ms(0.5))
        .with("p99_ms", ms(0.99))
        .with("max_ms", round(latency.max_us() / 1000.0, 2)))
}
