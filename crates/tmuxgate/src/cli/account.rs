//! `tmuxgate user …` and `tmuxgate key …`: managing the users file and the generated
//! signing keys from the command line, with the same configuration as `start` (so the
//! same `DATA_DIR`). Passwords come from a prompt without echo, or from standard input
//! (`--password-stdin`, or whenever it is not a terminal), never from an argument, where
//! `ps` would show them. Tokens and the first-start password go to stdout only.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use super::duration::parse_duration;
use crate::config::{Config, Layers, Overrides, Secret};
use crate::security::{self, Authenticator, FirstStart, KeyInfo, RoleName, UserName, unix};

/// `tmuxgate user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (password from a prompt or standard input)
    Add(AddArgs),
    /// Remove a user; their tokens stop working
    Remove(NameArgs),
    /// List users and roles (never password hashes)
    List(ListArgs),
    /// Set a user's password; their earlier tokens stop working
    Passwd(PasswdArgs),
    /// Set a user's role; their earlier tokens stop working
    SetRole(SetRoleArgs),
    /// Refuse every token issued to a user so far
    Revoke(NameArgs),
    /// Print a token for a program to authenticate as a user
    Token(TokenArgs),
}

/// `tmuxgate key …`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make a new signing key; older ones verify until their tokens expire
    Rotate(RotateArgs),
    /// List the signing and verification keys (ids only)
    List(SettingsArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// User name: 1-32 of a-z 0-9 _ . -, starting with a-z or _
    name: UserName,
    /// Role: admin, operator, viewer or one from ROLES_FILE
    #[arg(long, default_value = "viewer")]
    role: RoleName,
    /// Read the password from standard input (one line) instead of a prompt
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten, next_help_heading = "Configuration")]
    settings: Overrides,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    /// User name
    name: UserName,
    #[command(flatten, next_help_heading = "Configuration")]
    settings: Overrides,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON: [{"name": ..., "role": ..., "createdAt": ...}, ...]
    #[arg(long)]
    json: bool,
    #[command(flatten, next_help_heading = "Configuration")]
    settings: Overrides,
}

#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// User name
    name: UserName,
    /// Read the password from standard input (one line) instead of a prompt
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten, next_help_heading = "Configuration")]
    settings: Overrides,
}

#[derive(Debug, Args)]
pub struct SetRoleArgs {
    /// User name
    name: UserName,
    /// New role
    role: RoleName,
    #[command(flatten, next_help_heading = "Configuration")]
    settings: Overrides,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// User name
    name: UserName,
    /// Lifetime, e.g. 90s, 15m, 12h, 30d (at most 30d) [default: TOKEN_TTL]
    #[arg(long, value_parser = parse_duration)]
    ttl: Option<Duration>,
    #[command(flatten, next_help_heading = "Configuration")]
    settings: Overrides,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Drop every older key now: all tokens issued so far stop working (a leaked key)
    #[arg(long)]
    discard_previous: bool,
    #[command(flatten, next_help_heading = "Configuration")]
    settings: Overrides,
}

#[derive(Debug, Args)]
pub struct SettingsArgs {
    #[command(flatten, next_help_heading = "Configuration")]
    settings: Overrides,
}

impl UserCommand {
    /// The configuration flags given to this subcommand.
    pub fn settings(&self) -> &Overrides {
        match self {
            UserCommand::Add(args) => &args.settings,
            UserCommand::Remove(args) | UserCommand::Revoke(args) => &args.settings,
            UserCommand::List(args) => &args.settings,
            UserCommand::Passwd(args) => &args.settings,
            UserCommand::SetRole(args) => &args.settings,
            UserCommand::Token(args) => &args.settings,
        }
    }

    /// Runs it against the users file `layers` configure.
    pub async fn run(self, layers: &Layers) -> anyhow::Result<ExitCode> {
        let (auth, config) = open(layers).await?;
        let users = auth.users();
        match self {
            UserCommand::Add(args) => {
                let password = read_password(args.password_stdin, true)?;
                users.add(&args.name, &password, &args.role).await?;
                eprintln!("added {} ({})", args.name, args.role);
            }
            UserCommand::Remove(args) => users.remove(&args.name).await?,
            UserCommand::List(args) => print_users(&auth, args.json)?,
            UserCommand::Passwd(args) => {
                let password = read_password(args.password_stdin, true)?;
                users.set_password(&args.name, &password).await?;
            }
            UserCommand::SetRole(args) => users.set_role(&args.name, &args.role).await?,
            UserCommand::Revoke(args) => users.revoke_tokens(&args.name).await?,
            UserCommand::Token(args) => print_token(&auth, &args, config.token_ttl).await?,
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl KeyCommand {
    /// The configuration flags given to this subcommand.
    pub fn settings(&self) -> &Overrides {
        match self {
            KeyCommand::Rotate(args) => &args.settings,
            KeyCommand::List(args) => &args.settings,
        }
    }

    /// Runs it against the keys `layers` configure.
    pub async fn run(self, layers: &Layers) -> anyhow::Result<ExitCode> {
        let (auth, _) = open(layers).await?;
        let keys = match self {
            KeyCommand::Rotate(args) => auth.rotate_keys(args.discard_previous)?,
            KeyCommand::List(_) => auth.keys(),
        };
        print_keys(&keys)?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Validates the configuration and opens the identity files; on first start prints the
/// new admin password (stdout, once).
async fn open(layers: &Layers) -> anyhow::Result<(Authenticator, Config)> {
    let config = layers.resolve().config;
    config.validate()?;
    let (auth, first) = Authenticator::open(&config).await?;
    if let Some(first) = first {
        print_first_start(&first)?;
    }
    Ok((auth, config))
}

/// Tells the operator the first user's password, on stdout and nowhere else.
pub fn print_first_start(first: &FirstStart) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "First start: created user {} (role admin) with the password",
        first.user
    )?;
    writeln!(out, "    {}", first.password.expose())?;
    writeln!(
        out,
        "It is shown only now. Change it with `tmuxgate user passwd {}`.",
        first.user
    )?;
    out.flush()
}

/// A password from standard input (first line) or, on a terminal, a prompt without
/// echo (twice when `confirm`).
fn read_password(from_stdin: bool, confirm: bool) -> anyhow::Result<Secret> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        let password = line.strip_suffix('\n').unwrap_or(&line);
        let password = password.strip_suffix('\r').unwrap_or(password);
        return Ok(Secret::new(password));
    }
    let password = rpassword::prompt_password("Password: ").context("cannot read the password")?;
    if confirm && rpassword::prompt_password("Password again: ")? != password {
        bail!("the passwords differ");
    }
    Ok(Secret::new(password))
}

fn print_users(auth: &Authenticator, json: bool) -> anyhow::Result<()> {
    let users = auth.users().list()?;
    let created = |user: &security::UserRecord| security::rfc3339(unix(user.created_at));
    let mut out = std::io::stdout().lock();
    if json {
        let list: Vec<_> = users
            .iter()
            .map(|u| serde_json::json!({"name": u.name, "role": u.role, "createdAt": created(u)}))
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(());
    }
    writeln!(out, "{:<32}  {:<16}  CREATED", "NAME", "ROLE")?;
    for user in &users {
        let known = if auth.roles().contains(&user.role) {
            ""
        } else {
            "  (unknown role: no access)"
        };
        writeln!(
            out,
            "{:<32}  {:<16}  {}{known}",
            user.name,
            user.role,
            created(user)
        )?;
    }
    Ok(())
}

async fn print_token(
    auth: &Authenticator,
    args: &TokenArgs,
    default_ttl: Duration,
) -> anyhow::Result<()> {
    let ttl = args.ttl.unwrap_or(default_ttl);
    if ttl > security::MAX_TOKEN_TTL {
        bail!("--ttl is at most 30d");
    }
    let issued = auth.issue(&args.name, ttl).await?;
    let expires = security::rfc3339(unix(issued.expires_at));
    writeln!(std::io::stdout().lock(), "{}", issued.token.expose())?;
    eprintln!(
        "token for {} ({}), expires {expires}, id {}",
        issued.user, issued.role, issued.jti
    );
    Ok(())
}

fn print_keys(keys: &[KeyInfo]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<16}  {:<7}  {:<20}  {:<20}  ORIGIN",
        "KID", "USE", "CREATED", "VERIFIES UNTIL"
    )?;
    let time = |t: Option<std::time::SystemTime>| {
        t.map_or_else(|| "-".to_owned(), |t| security::rfc3339(unix(t)))
    };
    for key in keys {
        let usage = if key.signing { "sign" } else { "verify" };
        let (created, until) = (time(key.created_at), time(key.verifies_until));
        writeln!(
            out,
            "{:<16}  {usage:<7}  {created:<20}  {until:<20}  {}",
            key.kid, key.origin
        )?;
    }
    Ok(())
}
