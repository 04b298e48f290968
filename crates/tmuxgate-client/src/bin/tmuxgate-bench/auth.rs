//! Authentication for the run: a gateway this tool starts runs with authentication on
//! (the default, as in production) and a `bench` admin made for the run in its own
//! `DATA_DIR`; every connection presents that user's token at the upgrade. An external
//! gateway gets the token from `TMUXGATE_TOKEN`, if set.

use std::path::Path;
use std::process::Stdio;
use std::sync::RwLock;

use anyhow::{Context, bail};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// The token connections present: the current gateway's (each started gateway has its
/// own `DATA_DIR`, so its own keys).
static TOKEN: RwLock<Option<String>> = RwLock::new(None);

/// The current gateway's token, if any.
pub fn token() -> Option<String> {
    TOKEN.read().unwrap_or_else(|e| e.into_inner()).clone()
}

fn set(token: String) {
    *TOKEN.write().unwrap_or_else(|e| e.into_inner()) = Some(token);
}

/// Takes the token of an external gateway from `TMUXGATE_TOKEN`.
pub fn from_env() {
    if let Ok(token) = std::env::var("TMUXGATE_TOKEN")
        && !token.is_empty()
    {
        set(token);
    }
}

/// Creates the `bench` admin in `data_dir` with the `tmuxgate` binary `bin` and keeps a
/// token for it until the next gateway starts.
pub async fn prepare(bin: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let password = random_password()?;
    let mut add = command(bin, data_dir);
    add.args([
        "user",
        "add",
        "bench",
        "--role",
        "admin",
        "--password-stdin",
    ]);
    let mut child = add
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running tmuxgate user add")?;
    let mut stdin = child.stdin.take().context("piped stdin")?;
    stdin.write_all(format!("{password}\n").as_bytes()).await?;
    drop(stdin);
    let added = child.wait_with_output().await?;
    if !added.status.success() {
        bail!(
            "tmuxgate user add: {}",
            String::from_utf8_lossy(&added.stderr)
        );
    }
    let mut issue = command(bin, data_dir);
    issue.args(["user", "token", "bench", "--ttl", "1d"]);
    let issued = issue
        .output()
        .await
        .context("running tmuxgate user token")?;
    if !issued.status.success() {
        bail!(
            "tmuxgate user token: {}",
            String::from_utf8_lossy(&issued.stderr)
        );
    }
    let token = String::from_utf8(issued.stdout).context("the token is not UTF-8")?;
    set(token.trim().to_owned());
    Ok(())
}

fn command(bin: &Path, data_dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("DATA_DIR", data_dir).env("LOG_FORMAT", "json");
    cmd
}

/// 24 random characters: the password is never used again (the token is).
fn random_password() -> anyhow::Result<String> {
    let mut bytes = [0u8; 18];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
