//! `tmuxgate backend list|drain|undrain`: the backends' admin API of a running gateway
//! ([`crate::admin::backends`]), with the same URL and token options as `tmuxgate block`.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::Value;

use super::block::{Target, call};
use crate::config::{Layers, Overrides};
use crate::health_probe::Request;

/// `tmuxgate backend …`
#[derive(Debug, Subcommand)]
pub enum BackendCommand {
    /// List the backends: state, weight, labels, draining, sessions
    List(ListArgs),
    /// Stop placing new sessions on a backend (its sessions continue)
    Drain(SwitchArgs),
    /// Place new sessions on a drained backend again
    Undrain(SwitchArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print the API's JSON: {"backends": [{"id", "state", "sessions", "weight", "labels", "draining", "latencyEwmaMs"}]}
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, Args)]
pub struct SwitchArgs {
    /// The backend's id, e.g. tmux-1
    id: String,
    #[command(flatten)]
    target: Target,
}

impl BackendCommand {
    /// The configuration flags it was given.
    pub fn settings(&self) -> &Overrides {
        &self.target().settings
    }

    fn target(&self) -> &Target {
        match self {
            BackendCommand::List(args) => &args.target,
            BackendCommand::Drain(args) | BackendCommand::Undrain(args) => &args.target,
        }
    }

    /// Runs it against the gateway `layers` (or `--url`) point at.
    pub async fn run(self, layers: &Layers) -> anyhow::Result<ExitCode> {
        let (token, base) = self.target().resolve(layers)?;
        let bearer = Some(token.as_str());
        match &self {
            BackendCommand::List(args) => {
                let url = base.with_path("/admin/backends");
                let request = Request {
                    bearer,
                    ..Request::default()
                };
                let body = call(&url, request, 200).await?;
                print_list(&body, args.json)?;
            }
            BackendCommand::Drain(args) | BackendCommand::Undrain(args) => {
                let verb = match self {
                    BackendCommand::Drain(_) => "drain",
                    _ => "undrain",
                };
                // Ids are tmux-N; anything else would only get a 404, but keep the URL clean.
                if !args
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    anyhow::bail!("not a backend id: {}", args.id);
                }
                let url = base.with_path(&format!("/admin/backends/{}/{verb}", args.id));
                let request = Request {
                    method: Some("POST"),
                    bearer,
                    json: None,
                };
                call(&url, request, 200).await?;
                println!("{verb}ed {}", args.id);
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn print_list(body: &[u8], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", String::from_utf8_lossy(body).trim_end());
        return Ok(());
    }
    let list: Value = serde_json::from_slice(body).context("the API's answer")?;
    for b in list["backends"].as_array().into_iter().flatten() {
        let labels: Vec<&str> = b["labels"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let draining = if b["draining"].as_bool() == Some(true) {
            "draining"
        } else {
            "-"
        };
        println!(
            "{}\t{}\t{}\tweight {}\tsessions {}\tlabels [{}]",
            b["id"].as_str().unwrap_or("?"),
            b["state"].as_str().unwrap_or("?"),
            draining,
            b["weight"],
            b["sessions"],
            labels.join(",")
        );
    }
    Ok(())
}
