//! The `tmuxgate` command line: `start` (also the default with no subcommand),
//! `health`, `config`, `user`/`key` (`cli/account.rs`) and `audit verify` (`cli/audit.rs`),
//! plus the start-up glue around
//! [`Server`]: logging, listeners and signal handling (SIGINT/SIGTERM stop, SIGHUP reloads
//! the TLS certificate). `main.rs` only maps the outcome to an exit code.

mod account;
mod audit;
mod backend;
mod block;
mod duration;
mod store;

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, Layers, LogFormat, Overrides};
use crate::health_probe::{self, HealthUrl};
use crate::tls::TlsError;
use crate::{Server, ServerHandle};
use account::{KeyCommand, UserCommand};
use audit::AuditCommand;
use backend::BackendCommand;
use block::BlockCommand;
use store::StoreCommand;

/// Exit code of `health` when the gateway answered but not with HTTP 200.
const EXIT_UNHEALTHY: u8 = 1;
/// Exit code of `health` when no HTTP answer came (also clap's usage-error code).
const EXIT_UNREACHABLE: u8 = 2;

/// WebSocket gateway to tmux.
#[derive(Debug, Parser)]
#[command(name = "tmuxgate", version, args_conflicts_with_subcommands = true)]
#[command(
    after_help = "Every option also reads the environment variable in its \
    placeholder. Precedence: default < --preset < environment < flag. \
    `tmuxgate config` shows the effective values; docs/configuration.md explains them."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Settings for the implicit `start`.
    #[command(flatten, next_help_heading = "Configuration")]
    settings: Overrides,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway until SIGINT/SIGTERM (the default without a subcommand)
    Start(StartArgs),
    /// Ask a running gateway's /health endpoint and print the answer
    ///
    /// Exit status: 0 on HTTP 200, 1 on any other status, 2 when unreachable
    /// or no answer in time.
    Health(HealthArgs),
    /// Print the effective configuration and where each value came from
    Config(ConfigArgs),
    /// Manage users: the users file (USERS_FILE, default DATA_DIR/users.toml)
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the generated JWT signing keys (DATA_DIR/jwt-keys.toml)
    #[command(subcommand)]
    Key(KeyCommand),
    /// List, add and lift blocks of client addresses on a running gateway (admin token)
    #[command(subcommand)]
    Block(BlockCommand),
    /// List backends and drain or undrain one on a running gateway (admin token)
    #[command(subcommand)]
    Backend(BackendCommand),
    /// Check audit logs (AUDIT_LOG, default DATA_DIR/audit.jsonl)
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Check the shared store (REDIS_URL): connectivity, version, latency, key counts
    #[command(subcommand)]
    Store(StoreCommand),
}

#[derive(Debug, Args)]
struct StartArgs {
    #[command(flatten, next_help_heading = "Configuration")]
    settings: Overrides,
}

#[derive(Debug, Args)]
struct HealthArgs {
    /// URL to query [default: http://PROXY_HOST:HEALTH_PORT/health, 127.0.0.1 for 0.0.0.0]
    #[arg(long, value_name = "URL")]
    url: Option<HealthUrl>,
    /// Give up after this many milliseconds
    #[arg(long, value_name = "MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    #[command(flatten, next_help_heading = "Configuration")]
    settings: Overrides,
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// Print JSON: {"NAME": {"value": ..., "source": ...}, ...}
    #[arg(long)]
    json: bool,
    #[command(flatten, next_help_heading = "Configuration")]
    settings: Overrides,
}

/// A parsed command line with its settings split into environment and flags.
#[derive(Debug)]
pub struct Invocation {
    command: Command,
    layers: Layers,
}

impl Invocation {
    /// Parses the process's arguments and environment. On a usage error, or
    /// for `--help`/`--version`, clap prints and exits (code 2 for errors).
    pub fn from_env() -> Invocation {
        let matches = Cli::command().get_matches();
        let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
        Invocation::new(cli, &matches)
    }

    fn new(cli: Cli, matches: &ArgMatches) -> Invocation {
        let (command, matches) = match cli.command {
            Some(command) => (
                command,
                matches.subcommand().map_or(matches, |(_, sub)| sub),
            ),
            None => (
                Command::Start(StartArgs {
                    settings: cli.settings,
                }),
                matches,
            ),
        };
        // `user` and `key` take their settings one level further down.
        let leaf = matches.subcommand().map_or(matches, |(_, sub)| sub);
        let (settings, matches) = match &command {
            Command::Audit(_) => {
                return Invocation {
                    command,
                    layers: Layers::default(),
                };
            }
            Command::Start(args) => (&args.settings, matches),
            Command::Health(args) => (&args.settings, matches),
            Command::Config(args) => (&args.settings, matches),
            Command::User(user) => (user.settings(), leaf),
            Command::Key(key) => (key.settings(), leaf),
            Command::Block(block) => (block.settings(), leaf),
            Command::Backend(backend) => (backend.settings(), leaf),
            Command::Store(store) => (store.settings(), leaf),
        };
        let layers = Layers::from_matches(settings, matches);
        Invocation { command, layers }
    }

    /// Runs the subcommand. `Err` means exit code 1 with the message on stderr.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Start(_) => start(&self.layers).await.map(|()| ExitCode::SUCCESS),
            Command::Health(args) => health(&self.layers, &args).await,
            Command::Config(args) => show_config(&self.layers, args.json),
            Command::User(user) => user.run(&self.layers).await,
            Command::Key(key) => key.run(&self.layers).await,
            Command::Block(block) => block.run(&self.layers).await,
            Command::Backend(backend) => backend.run(&self.layers).await,
            Command::Audit(audit) => Ok(audit.run()),
            Command::Store(store) => store.run(&self.layers).await,
        }
    }
}

/// `tmuxgate start`: validate, log, bind, serve until a signal.
async fn start(layers: &Layers) -> anyhow::Result<()> {
    let config = layers.resolve().config;
    config.validate()?;
    install_tracing(config.log_format)?;
    crate::supervise::install_panic_hook();
    let listener = bind("PROXY_PORT", config.proxy_addr()).await?;
    let health = bind("HEALTH_PORT", config.health_addr()).await?;
    let shutdown = CancellationToken::new();
    watch_signals(shutdown.clone())?;
    let (preset, strategy, tls) = (config.preset, config.balance_strategy, config.enable_ssl);
    let mut server = Server::start(config).await?;
    let backends = server.handle().status().backends.len();
    if let Some(first) = server.take_first_start() {
        account::print_first_start(&first)?;
    }
    watch_hangup(server.handle())?;
    tracing::info!(
        proxy = %listener.local_addr()?,
        health = %health.local_addr()?,
        %preset,
        backends,
        %strategy,
        tls,
        "tmuxgate listening"
    );
    server.serve(listener, Some(health), shutdown).await?;
    tracing::info!("tmuxgate stopped");
    Ok(())
}

async fn bind(variable: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({variable})"))
}

/// Cancels `shutdown` on the first SIGINT/SIGTERM; a second one exits at once.
fn watch_signals(shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        tracing::info!(signal = name, "shutting down; signal again to exit at once");
        shutdown.cancel();
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::warn!("second signal: exiting without waiting for connections");
        std::process::exit(130);
    });
    Ok(())
}

/// Reloads the TLS certificate on every SIGHUP. Installed with TLS off too, where it only
/// logs: a daemon's SIGHUP means "reload", never "exit".
fn watch_hangup(handle: ServerHandle) -> anyhow::Result<()> {
    let mut hangup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            // `reload_tls` logs its own outcome.
            if let Err(TlsError::Disabled) = handle.reload_tls().await {
                tracing::info!("SIGHUP: nothing to reload, TLS is off");
            }
        }
    });
    Ok(())
}

/// Diagnostic log on stderr: `RUST_LOG` wins; else `DEBUG` naming us turns on
/// debug for the gateway's crates; else info.
fn install_tracing(format: LogFormat) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(&directives)
            .with_context(|| format!("invalid RUST_LOG={directives}"))?,
        _ => EnvFilter::new(default_directives(std::env::var("DEBUG").ok().as_deref())),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // Its fallback is `eprintln!`, which panics the logging task once stderr
        // is gone (a closed pipe): a lost log line must not stop the gateway.
        .log_internal_errors(false);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|error| anyhow::anyhow!("cannot install the logger: {error}"))
}

/// Filter directives when `RUST_LOG` is unset, given the `DEBUG` variable
/// (the Node `debug` convention: `DEBUG=websocket-proxy:*`).
fn default_directives(debug: Option<&str>) -> &'static str {
    let wants_debug = debug.is_some_and(|value| {
        value.contains("websocket-proxy:")
            || value.contains("tmuxgate")
            || value.split([',', ' ']).any(|name| name == "*")
    });
    match wants_debug {
        true => "info,tmuxgate=debug,tmux_control=debug,tmuxgate_protocol=debug",
        false => "info",
    }
}

/// `tmuxgate health`: print the body; exit 0 on 200, 1 otherwise, 2 unreachable.
async fn health(layers: &Layers, args: &HealthArgs) -> anyhow::Result<ExitCode> {
    let url = match &args.url {
        Some(url) => url.clone(),
        None => match default_health_url(&layers.resolve().config) {
            Some(url) => url,
            None => {
                eprintln!("error: HEALTH_PORT is 0 (ephemeral): pass --url");
                return Ok(ExitCode::from(EXIT_UNREACHABLE));
            }
        },
    };
    let response = match health_probe::probe(&url, Duration::from_millis(args.timeout)).await {
        Ok(response) => response,
        Err(error) => {
            eprintln!("error: {url}: {error}");
            return Ok(ExitCode::from(EXIT_UNREACHABLE));
        }
    };
    print_body(&response.body)?;
    if response.status == 200 {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("error: {url} answered HTTP {}", response.status);
    Ok(ExitCode::from(EXIT_UNHEALTHY))
}

/// The health listener of `config`, or `None` when its port is ephemeral.
fn default_health_url(config: &Config) -> Option<HealthUrl> {
    (config.health_port != 0).then(|| HealthUrl::for_listener(config.health_addr()))
}

fn print_body(body: &[u8]) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(body)?;
    if !body.ends_with(b"\n") {
        stdout.write_all(b"\n")?;
    }
    stdout.flush()
}

/// `tmuxgate config`: the validated configuration, secrets masked.
fn show_config(layers: &Layers, json: bool) -> anyhow::Result<ExitCode> {
    let resolved = layers.resolve();
    resolved.config.validate()?;
    let text = match json {
        true => serde_json::to_string_pretty(&resolved.to_json())? + "\n",
        false => resolved.render(),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `args` with every environment lookup switched off.
    fn parse(args: &[&str]) -> Result<Invocation, clap::Error> {
        fn without_env(command: clap::Command) -> clap::Command {
            command
                .mut_args(|arg| arg.env(None))
                .mut_subcommands(without_env)
        }
        let argv = std::iter::once("tmuxgate").chain(args.iter().copied());
        let matches = without_env(Cli::command()).try_get_matches_from(argv)?;
        Ok(Invocation::new(Cli::from_arg_matches(&matches)?, &matches))
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_means_start_with_its_flags() -> Result<(), clap::Error> {
        let invocation = parse(&["--port", "9000"])?;
        assert!(matches!(invocation.command, Command::Start(_)));
        assert_eq!(invocation.layers.flags.proxy_port, Some(9000));
        Ok(())
    }

    #[test]
    fn subcommand_flags_land_in_the_flag_layer() -> Result<(), clap::Error> {
        let invocation = parse(&["config", "--json", "--preset", "production"])?;
        assert!(matches!(
            invocation.command,
            Command::Config(ConfigArgs { json: true, .. })
        ));
        let resolved = invocation.layers.resolve();
        assert_eq!(resolved.config.log_format, LogFormat::Json);
        Ok(())
    }

    #[test]
    fn user_subcommands_take_their_settings_at_the_leaf() -> Result<(), clap::Error> {
        let invocation = parse(&[
            "user",
            "add",
            "alice",
            "--role",
            "operator",
            "--data-dir",
            "/srv/tg",
        ])?;
        assert!(matches!(
            invocation.command,
            Command::User(UserCommand::Add(_))
        ));
        let config = invocation.layers.resolve().config;
        assert_eq!(config.data_dir, std::path::PathBuf::from("/srv/tg"));
        let token = parse(&["user", "token", "ci", "--ttl", "2h"])?;
        assert!(matches!(
            token.command,
            Command::User(UserCommand::Token(_))
        ));
        Ok(())
    }

    #[test]
    fn passwords_and_bad_names_are_not_arguments() {
        assert!(parse(&["user", "add", "alice", "--password", "hunter2"]).is_err());
        assert!(parse(&["user", "add", "Alice"]).is_err());
        assert!(parse(&["user", "token", "ci", "--ttl", "3600"]).is_err());
        assert!(parse(&["key", "rotate", "--discard-previous"]).is_ok());
    }

    #[test]
    fn audit_verify_takes_files() {
        assert!(parse(&["audit", "verify"]).is_err());
        let invocation = parse(&["audit", "verify", "a.jsonl.1", "a.jsonl"]);
        assert!(matches!(
            invocation.map(|i| i.command),
            Ok(Command::Audit(AuditCommand::Verify { files, .. })) if files.len() == 2
        ));
    }

    #[test]
    fn top_level_flags_conflict_with_a_subcommand() {
        assert!(parse(&["--port", "9000", "config"]).is_err());
    }

    #[test]
    fn health_url_and_timeout_are_checked_by_clap() {
        assert!(parse(&["health", "--url", "ftp://x/"]).is_err());
        assert!(parse(&["health", "--timeout", "0"]).is_err());
        assert!(parse(&["health", "--url", "http://127.0.0.1:1/health"]).is_ok());
    }

    #[test]
    fn default_health_url_follows_the_config() {
        let mut config = Config::for_tests("/tmp/x".into());
        assert_eq!(default_health_url(&config), None);
        config.health_port = 9191;
        let url = default_health_url(&config).map(|url| url.to_string());
        assert_eq!(url.as_deref(), Some("http://127.0.0.1:9191/health"));
    }

    #[test]
    fn debug_variable_turns_on_our_debug_logs() {
        assert_eq!(default_directives(None), "info");
        assert_eq!(default_directives(Some("express:*")), "info");
        for value in [
            "websocket-proxy:*",
            "other,websocket-proxy:ws",
            "tmuxgate",
            "*",
        ] {
            assert!(
                default_directives(Some(value)).contains("tmuxgate=debug"),
                "{value}"
            );
        }
    }
}
