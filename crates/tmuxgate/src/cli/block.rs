//! `tmuxgate block list|add|remove`: the admin API of a running gateway
//! ([`crate::admin`]) from the command line. It talks to the health port (`--url`, by
//! default `http://PROXY_HOST:HEALTH_PORT` from the same configuration) with an admin
//! token from `TMUXGATE_TOKEN` or `--token-file` (never an argument, where `ps` shows it).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use super::duration::parse_duration;
use crate::admin::{BlockList, BlockRequest};
use crate::config::{Layers, Overrides};
use crate::health_probe::{self, HealthUrl, Request};

/// Longest wait for the gateway's answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// `tmuxgate block …`
#[derive(Debug, Subcommand)]
pub enum BlockCommand {
    /// List the blocked addresses
    List(ListArgs),
    /// Block an address now
    Add(AddArgs),
    /// Lift an address's block
    Remove(RemoveArgs),
}

/// Where the gateway is and who asks.
#[derive(Debug, Args)]
pub struct Target {
    /// The health port's URL [default: http://PROXY_HOST:HEALTH_PORT, 127.0.0.1 for 0.0.0.0]
    #[arg(long, value_name = "URL")]
    url: Option<HealthUrl>,
    /// A file holding an admin's token (default: the TMUXGATE_TOKEN variable)
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    #[command(flatten, next_help_heading = "Configuration")]
    pub(super) settings: Overrides,
}

impl Target {
    /// The admin token and the health port's base URL.
    pub(super) fn resolve(&self, layers: &Layers) -> anyhow::Result<(String, HealthUrl)> {
        let token = token(self.token_file.as_deref())?;
        let base = match &self.url {
            Some(url) => url.clone(),
            None => {
                let config = layers.resolve().config;
                if config.health_port == 0 {
                    bail!("HEALTH_PORT is 0 (ephemeral): pass --url");
                }
                HealthUrl::for_listener(config.health_addr())
            }
        };
        Ok((token, base))
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print the API's JSON: {"blocks": [{"address", "until", "strikes", "reason"}]}
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The address to block (an IPv6 address blocks its /64)
    address: IpAddr,
    /// How long: 90s, 15m, 12h, 1d... (default: BLOCK_DURATION, doubled for repeat offenders)
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The address to unblock
    address: IpAddr,
    #[command(flatten)]
    target: Target,
}

impl BlockCommand {
    /// The configuration flags it was given.
    pub fn settings(&self) -> &Overrides {
        &self.target().settings
    }

    fn target(&self) -> &Target {
        match self {
            BlockCommand::List(args) => &args.target,
            BlockCommand::Add(args) => &args.target,
            BlockCommand::Remove(args) => &args.target,
        }
    }

    /// Runs it against the gateway `layers` (or `--url`) point at.
    pub async fn run(self, layers: &Layers) -> anyhow::Result<ExitCode> {
        let (token, base) = self.target().resolve(layers)?;
        let bearer = Some(token.as_str());
        match &self {
            BlockCommand::List(args) => {
                let url = base.with_path("/admin/blocks");
                let body = call(
                    &url,
                    Request {
                        bearer,
                        ..Request::default()
                    },
                    200,
                )
                .await?;
                print_list(&body, args.json)?;
            }
            BlockCommand::Add(args) => {
                let url = base.with_path("/admin/blocks");
                let duration_ms = args.duration.map(|d| d.as_millis() as u64);
                let json = serde_json::to_string(&BlockRequest {
                    address: args.address,
                    duration_ms,
                })?;
                let request = Request {
                    method: Some("POST"),
                    bearer,
                    json: Some(&json),
                };
                call(&url, request, 201).await?;
                println!("blocked {}", args.address);
            }
            BlockCommand::Remove(args) => {
                let url = base.with_path(&format!("/admin/blocks/{}", args.address));
                let request = Request {
                    method: Some("DELETE"),
                    bearer,
                    json: None,
                };
                call(&url, request, 204).await?;
                println!("unblocked {}", args.address);
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The admin token: the first line of `file`, or `TMUXGATE_TOKEN`.
fn token(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    let token = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the token file {}", path.display()))?,
        None => std::env::var("TMUXGATE_TOKEN")
            .context("set TMUXGATE_TOKEN or pass --token-file (an admin's token)")?,
    };
    let token = token.lines().next().unwrap_or_default().trim().to_owned();
    if token.is_empty() {
        bail!("the token is empty");
    }
    Ok(token)
}

/// Sends `request`; its body when the status is `expected`, the API's message otherwise.
pub(super) async fn call(
    url: &HealthUrl,
    request: Request<'_>,
    expected: u16,
) -> anyhow::Result<Vec<u8>> {
    let response = health_probe::send(url, &request, TIMEOUT)
        .await
        .with_context(|| format!("{url}"))?;
    if response.status != expected {
        let message = serde_json::from_slice::<serde_json::Value>(&response.body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_default();
        bail!("{url} answered HTTP {}: {message}", response.status);
    }
    Ok(response.body)
}

fn print_list(body: &[u8], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", String::from_utf8_lossy(body).trim_end());
        return Ok(());
    }
    let list: BlockList = serde_json::from_slice(body).context("the API's answer")?;
    for block in list.blocks {
        println!(
            "{}\tuntil {} (unix ms)\tstrikes {}\t{}",
            block.address, block.until, block.strikes, block.reason
        );
    }
    Ok(())
}
