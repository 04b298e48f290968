//! `tmuxgate user` and `tmuxgate key` end to end: the real binary on a fresh `DATA_DIR`,
//! passwords on stdin, and the tokens it prints checked by the library, as the gateway
//! will check them. Secrets must appear only where they are meant to: the first-start
//! password and tokens on stdout, nothing secret on stderr or in `config`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use tmuxgate::config::Config;
use tmuxgate::security::Authenticator;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Runs the binary with `args`, `DATA_DIR=data_dir` only, and `stdin` as standard input.
fn tmuxgate(data_dir: &Path, args: &[&str], stdin: &str) -> Result<Output, std::io::Error> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tmuxgate"))
        .args(args)
        .env_clear()
        .env("DATA_DIR", data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes())?;
    }
    child.wait_with_output()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Stdout, after checking the exit code.
fn succeeded(output: &Output) -> String {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    text(&output.stdout)
}

fn config_for(data_dir: &Path) -> Config {
    let mut config = Config::for_tests(data_dir.join("sock"));
    config.data_dir = data_dir.to_path_buf();
    config
}

#[tokio::test]
async fn add_list_token_and_verify() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("state");
    let password = "alice's long password";
    let add = [
        "user",
        "add",
        "alice",
        "--role",
        "operator",
        "--password-stdin",
    ];
    let output = tmuxgate(&data, &add, &format!("{password}\n"))?;
    let stdout = succeeded(&output);
    assert!(
        stdout.starts_with("First start: created user admin"),
        "{stdout}"
    );
    let admin_password = stdout
        .lines()
        .nth(1)
        .map(str::trim)
        .ok_or("no password line")?;
    assert_eq!(admin_password.len(), 20);
    let stderr = text(&output.stderr);
    assert!(
        !stderr.contains(admin_password) && !stderr.contains(password),
        "{stderr}"
    );

    let listed = succeeded(&tmuxgate(&data, &["user", "list"], "")?);
    assert!(
        listed.contains("alice") && listed.contains("operator"),
        "{listed}"
    );
    assert!(
        !listed.contains("argon2") && !listed.contains('$'),
        "{listed}"
    );
    assert!(
        !listed.contains("First start"),
        "the first-start password is shown once"
    );
    let json = succeeded(&tmuxgate(&data, &["user", "list", "--json"], "")?);
    let users: serde_json::Value = serde_json::from_str(&json)?;
    assert_eq!(users[1]["name"], "alice");
    assert!(!json.contains("argon2"));

    let output = tmuxgate(&data, &["user", "token", "alice", "--ttl", "1h"], "")?;
    let token = succeeded(&output).trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "{token}");
    assert!(!text(&output.stderr).contains(&token));

    let (auth, first) = Authenticator::open(&config_for(&data)).await?;
    assert!(first.is_none());
    let identity = auth.verify(&token).await?;
    assert_eq!(
        (identity.user.as_str(), identity.role.as_str()),
        ("alice", "operator")
    );
    let remaining = identity
        .expires_at
        .duration_since(std::time::SystemTime::now())?;
    assert!(remaining.as_secs() > 3500 && remaining.as_secs() <= 3600);
    let login = auth
        .login("alice", &tmuxgate::config::Secret::new(password))
        .await?;
    assert_eq!(login.role.as_str(), "operator");
    Ok(())
}

#[tokio::test]
async fn set_role_remove_and_key_rotation() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("state");
    let add = ["user", "add", "ci", "--password-stdin"];
    succeeded(&tmuxgate(&data, &add, "ci password\n")?);
    let before = succeeded(&tmuxgate(&data, &["user", "token", "ci"], "")?);
    let (auth, _) = Authenticator::open(&config_for(&data)).await?;
    assert_eq!(
        auth.verify(before.trim()).await?.role.as_str(),
        "viewer",
        "the default role"
    );

    let keys = succeeded(&tmuxgate(&data, &["key", "rotate"], "")?);
    assert_eq!(
        keys.lines().filter(|l| l.contains(" sign ")).count(),
        1,
        "{keys}"
    );
    assert_eq!(
        keys.lines().filter(|l| l.contains(" verify ")).count(),
        1,
        "{keys}"
    );
    assert!(
        auth.verify(before.trim()).await.is_ok(),
        "old key still verifies"
    );
    let after = succeeded(&tmuxgate(&data, &["user", "token", "ci"], "")?);
    assert!(
        auth.verify(after.trim()).await.is_ok(),
        "new key is picked up"
    );

    succeeded(&tmuxgate(
        &data,
        &["user", "set-role", "ci", "operator"],
        "",
    )?);
    assert!(
        auth.verify(after.trim()).await.is_err(),
        "a role change supersedes tokens"
    );
    let unknown = tmuxgate(&data, &["user", "set-role", "ci", "root"], "")?;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown.stderr).contains("unknown role root"));

    succeeded(&tmuxgate(&data, &["user", "remove", "ci"], "")?);
    let gone = tmuxgate(&data, &["user", "token", "ci"], "")?;
    assert_eq!(gone.status.code(), Some(1));
    assert!(text(&gone.stderr).contains("no user ci"));
    Ok(())
}

#[test]
fn refusals_exit_1_without_echoing_secrets() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("state");
    let short = tmuxgate(
        &data,
        &["user", "add", "bob", "--password-stdin"],
        "short\n",
    )?;
    assert_eq!(short.status.code(), Some(1));
    let stderr = text(&short.stderr);
    assert!(
        stderr.contains("at least 8 characters") && !stderr.contains("short\n"),
        "{stderr}"
    );
    let twice = ["user", "add", "admin", "--password-stdin"];
    let exists = tmuxgate(&data, &twice, "long enough\n")?;
    assert!(text(&exists.stderr).contains("user admin already exists"));
    let mut config = Command::new(env!("CARGO_BIN_EXE_tmuxgate"));
    let output = config
        .args(["config", "--json"])
        .env_clear()
        .env("JWT_SECRET", "a-jwt-secret-that-is-32-bytes-long")
        .env("JWT_PREVIOUS_SECRETS", "an-older-secret-that-is-32-bytes!!")
        .output()?;
    let shown = succeeded(&output);
    assert!(!shown.contains("32-bytes"), "{shown}");
    let json: serde_json::Value = serde_json::from_str(&shown)?;
    assert_eq!(json["JWT_SECRET"]["value"], "***");
    assert_eq!(json["JWT_PREVIOUS_SECRETS"]["value"], "***");
    let rotate = tmuxgate(
        &data,
        &[
            "key",
            "rotate",
            "--jwt-secret",
            "a-jwt-secret-that-is-32-bytes-long",
        ],
        "",
    )?;
    assert_eq!(rotate.status.code(), Some(1));
    assert!(text(&rotate.stderr).contains("keys come from JWT_SECRET"));
    Ok(())
}
