//! `tmuxgate store check`: connectivity, version, latency and key counts of the shared
//! store the configuration names (Redis through `REDIS_URL`/`REDIS_HOST`, or the embedded
//! one, which has nothing to check).

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::config::{Layers, Overrides};

/// `tmuxgate store …`
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Connect to the shared store and print its kind, version, latency and key counts
    ///
    /// Exit status: 0 when it answered, 1 when it did not.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print JSON: {"kind", "version", "latencyUs", "keys": [[name, count], ...]}
    #[arg(long)]
    json: bool,
    #[command(flatten, next_help_heading = "Configuration")]
    settings: Overrides,
}

impl StoreCommand {
    /// The configuration flags given to the subcommand.
    pub fn settings(&self) -> &Overrides {
        match self {
            StoreCommand::Check(args) => &args.settings,
        }
    }

    /// Runs it.
    pub async fn run(self, layers: &Layers) -> anyhow::Result<ExitCode> {
        let StoreCommand::Check(args) = self;
        let config = layers.resolve().config;
        config.validate()?;
        let store = match crate::store::open(&config).await {
            Ok(store) => store,
            Err(e) => {
                eprintln!("tmuxgate store check: {e}");
                return Ok(ExitCode::FAILURE);
            }
        };
        match store.check().await {
            Ok(info) if args.json => {
                println!("{}", serde_json::to_string(&info)?);
                Ok(ExitCode::SUCCESS)
            }
            Ok(info) => {
                println!("kind: {}", info.kind);
                if let Some(version) = &info.version {
                    println!("version: {version}");
                }
                println!("latency: {} µs", info.latency_us);
                for (name, count) in &info.keys {
                    println!("{name}: {count}");
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("tmuxgate store check: {e}");
                Ok(ExitCode::FAILURE)
            }
        }
    }
}
