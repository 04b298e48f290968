//! What every scenario shares: the global options, the work directory, the open-file
//! limit, starting the gateway under test, and a scenario's [`Outcome`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, bail};
use clap::Args;

use crate::gateway::{self, Gateway, GatewaySpec, OwnGateway};
use crate::limits::{self, FileLimit};
use crate::report::{Report, Row};

/// Options for every scenario.
#[derive(Debug, Args)]
pub struct Global {
    /// The tmuxgate binary to start [default: `tmuxgate` next to this executable]
    #[arg(long, global = true, value_name = "PATH")]
    gateway_bin: Option<PathBuf>,
    /// Measure a running gateway instead of starting one (ws://127.0.0.1:PORT/ws); its
    /// sessions must run `cat` for echo scenarios (DEFAULT_COMMAND='exec cat')
    #[arg(long, global = true, value_name = "URL")]
    url: Option<String>,
    /// Process id of the --url gateway, for its memory and CPU figures
    #[arg(long, global = true, value_name = "PID", requires = "url")]
    pid: Option<u32>,
    /// tmux executable, for the started gateway and the bare control-mode baselines
    #[arg(long, global = true, value_name = "PATH", default_value = "tmux")]
    pub tmux_bin: String,
    /// BACKEND_POOL_SIZE of the started gateway [default: the gateway's]
    #[arg(long, global = true, value_name = "N")]
    backends: Option<u8>,
    /// Extra setting for the started gateway, KEY=VALUE (repeatable), e.g. PING_INTERVAL=60000
    #[arg(long = "gateway-env", global = true, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    gateway_env: Vec<(String, String)>,
    /// Serve the started gateway over TLS (wss://, with a certificate made for the run)
    #[arg(long, global = true, conflicts_with = "url")]
    tls: bool,
    /// Print only the JSON lines (notes go to stderr)
    #[arg(long, global = true)]
    json: bool,
    /// Worker threads of this tool's runtime (1: single-threaded, least noise in latencies)
    #[arg(long, global = true, value_name = "N", default_value_t = 1)]
    threads: usize,
    /// Keep the work directory (gateway logs, tmux configs) and print its path
    #[arg(long, global = true)]
    keep_dir: bool,
}

impl Global {
    /// The tokio runtime for `--threads`.
    pub fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        match self.threads {
            0 | 1 => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
            n => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(n)
                .enable_all()
                .build(),
        }
    }
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.into(), value.into())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// What a scenario measured.
#[derive(Default)]
pub struct Outcome {
    /// One row per case.
    pub rows: Vec<Row>,
    /// Budgets met or missed, limits hit, caveats.
    pub notes: Vec<String>,
    /// A machine limit stopped the scenario before it measured everything asked.
    pub stopped: bool,
}

impl Outcome {
    /// Notes a limit that stopped the scenario.
    pub fn stop(&mut self, why: String) {
        self.notes.push(why);
        self.stopped = true;
    }

    /// Notes a budget: `what` measured `value` against `limit` (lower is better); `unit`
    /// is written right after the numbers (" µs", "%", "" for counts).
    pub fn budget_max(&mut self, what: &str, value: f64, limit: f64, unit: &str) {
        let verdict = if value <= limit { "met" } else { "MISSED" };
        self.notes.push(format!(
            "budget {what} ≤ {limit}{unit}: {value:.1}{unit} — {verdict}"
        ));
    }

    /// Notes a budget: `what` measured `value` against `limit` (higher is better).
    pub fn budget_min(&mut self, what: &str, value: f64, limit: f64, unit: &str) {
        let verdict = if value >= limit { "met" } else { "MISSED" };
        self.notes.push(format!(
            "budget {what} ≥ {limit}{unit}: {value:.1}{unit} — {verdict}"
        ));
    }
}

/// The shared state of one run.
pub struct Bench {
    global: Global,
    work: tempfile::TempDir,
    /// This process's open-file limit after raising it.
    pub files: FileLimit,
    gateways: AtomicUsize,
}

impl Bench {
    /// Raises the open-file limit and makes the work directory.
    pub fn new(global: Global) -> anyhow::Result<Bench> {
        if let Some(url) = &global.url {
            check_loopback(url)?;
        }
        let files = limits::raise_nofile();
        // Short: tmux socket paths must stay under about 100 bytes.
        let mut work = tempfile::Builder::new()
            .prefix("tgbench")
            .tempdir_in("/tmp")
            .context("creating the work directory")?;
        if global.keep_dir {
            work.disable_cleanup(true);
            eprintln!("work directory: {}", work.path().display());
        }
        Ok(Bench {
            global,
            work,
            files,
            gateways: AtomicUsize::new(0),
        })
    }

    /// How results are printed.
    pub fn report(&self) -> Report {
        Report::new(self.global.json)
    }

    /// The tmux executable.
    pub fn tmux_bin(&self) -> &str {
        &self.global.tmux_bin
    }

    /// A fresh directory in the work directory.
    pub fn dir(&self, name: &str) -> PathBuf {
        let n = self.gateways.fetch_add(1, Ordering::Relaxed);
        self.work.path().join(format!("{name}-{n}"))
    }

    /// Whether scenarios measure a gateway they did not start.
    pub fn external(&self) -> bool {
        self.global.url.is_some()
    }

    /// The gateway to measure: a new own gateway whose sessions run `default_command` and
    /// that accepts `connections` connections, or the `--url` one (whose token, if it needs
    /// one, comes from `TMUXGATE_TOKEN`).
    pub async fn gateway(
        &self,
        default_command: &str,
        connections: u64,
    ) -> anyhow::Result<Gateway> {
        self.gateway_with(default_command, connections, Vec::new())
            .await
    }

    /// [`Bench::gateway`] with settings of the scenario's own, applied after the tool's
    /// defaults and before `--gateway-env`.
    pub async fn gateway_with(
        &self,
        default_command: &str,
        connections: u64,
        scenario_env: Vec<(String, String)>,
    ) -> anyhow::Result<Gateway> {
        self.start(Some(default_command), connections, scenario_env)
            .await
    }

    /// The gateway to measure whose sessions run the gateway's integrated shell (no
    /// `DEFAULT_COMMAND`), as `command-execute` needs, or the `--url` one.
    pub async fn integrated_gateway(&self, connections: u64) -> anyhow::Result<Gateway> {
        self.start(None, connections, Vec::new()).await
    }

    async fn start(
        &self,
        default_command: Option<&str>,
        connections: u64,
        scenario_env: Vec<(String, String)>,
    ) -> anyhow::Result<Gateway> {
        if let Some(url) = &self.global.url {
            crate::auth::from_env();
            return Ok(Gateway::External {
                url: url.clone(),
                pid: self.global.pid,
            });
        }
        let dir = self.dir("gw");
        let mut extra_env = match self.global.tls {
            true => crate::tls::prepare(&dir)?,
            false => Vec::new(),
        };
        extra_env.extend(scenario_env);
        extra_env.extend(self.global.gateway_env.iter().cloned());
        let spec = GatewaySpec {
            bin: self
                .global
                .gateway_bin
                .clone()
                .unwrap_or_else(gateway::default_gateway_bin),
            tmux_bin: self.global.tmux_bin.clone(),
            backends: self.global.backends,
            default_command: default_command.map(str::to_owned),
            max_connections: connections.max(1000) + 100,
            extra_env,
            tls: self.global.tls,
        };
        if !spec.bin.exists() {
            bail!(
                "no gateway binary at {}: build it (`cargo build --release -p tmuxgate`) or \
                 pass --gateway-bin",
                spec.bin.display()
            );
        }
        let own = OwnGateway::start(&spec, &dir).await?;
        Ok(Gateway::Own(Box::new(own)))
    }
}

/// Refuses a `--url` whose host is not a loopback address: this tool generates load.
fn check_loopback(url: &str) -> anyhow::Result<()> {
    let rest = url
        .strip_prefix("ws://")
        .context("--url must start with ws://")?;
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let loopback = host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!("--url {url}: only loopback gateways (127.0.0.0/8, localhost, [::1]) are measured");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_accepted() {
        assert!(check_loopback("ws://127.0.0.1:8080/ws").is_ok());
        assert!(check_loopback("ws://localhost:1/").is_ok());
        assert!(check_loopback("ws://[::1]:9/ws").is_ok());
        assert!(check_loopback("ws://10.0.0.1:8080/ws").is_err());
        assert!(check_loopback("ws://example.com/ws").is_err());
        assert!(check_loopback("http://127.0.0.1/").is_err());
    }

    #[test]
    fn key_values_need_a_key() {
        assert_eq!(parse_key_value("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(parse_key_value("=x").is_err() && parse_key_value("x").is_err());
    }
}
