//! The real binary at debug log level through a full identity scenario (CLI user
//! management, HTTP login, `/api/me` and logout, every token transport (bearer, cookie,
//! query, subprotocol), `auth` by password and by token, wrong passwords, forged and
//! revoked tokens), then every line it and the CLI wrote, and every line of its audit log,
//! is searched for the passwords and tokens used: none may appear.

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use tmuxgate_client::protocol::CloseCode;
use tmuxgate_client::{Client, ClientOptions};

use common::STEP;
use common::identity::http;

const PASSWORD: &str = "alice-Secret-pw-4711";
const WRONG: &str = "mallory-Guess-pw-0815";

/// Environment shared by the CLI and the gateway.
fn env(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("DATA_DIR", dir.join("state")),
        ("TMUX_SOCKET_PATH", dir.join("sock")),
    ]
}

fn cli(dir: &Path, args: &[&str], stdin: &str) -> (String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tmuxgate"))
        .args(args)
        .envs(env(dir))
        .env("RUST_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tmuxgate");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success(), "{args:?}: {output:?}");
    let text = |b: Vec<u8>| String::from_utf8(b).expect("UTF-8");
    (text(output.stdout), text(output.stderr))
}

/// The gateway, its output collected line by line.
struct Gateway {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Gateway {
    fn start(dir: &Path) -> (Gateway, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tmuxgate"))
            .args([
                "start",
                "--port",
                "0",
                "--health-port",
                "0",
                "--backend-pool-size",
                "1",
            ])
            .envs(env(dir))
            .env("DEFAULT_COMMAND", "exec bash --norc --noprofile")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tmuxgate");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let collect = |stream: Box<dyn std::io::Read + Send>,
                       tx: Option<std::sync::mpsc::Sender<String>>| {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(tx) = &tx
                        && let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line)
                        && entry["fields"]["message"] == "tmuxgate listening"
                    {
                        let _ = tx.send(
                            entry["fields"]["proxy"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                        );
                    }
                    lines.lock().expect("lines").push(line);
                }
            })
        };
        let readers = vec![
            collect(Box::new(stdout), None),
            collect(Box::new(stderr), Some(addr_tx)),
        ];
        let addr = addr_rx.recv_timeout(STEP * 3).expect("the gateway listens");
        (
            Gateway {
                child,
                lines,
                readers,
            },
            addr,
        )
    }

    /// SIGTERM, wait, and every line written.
    fn stop(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        self.child.wait().expect("wait");
        for reader in self.readers.drain(..) {
            reader.join().expect("reader");
        }
        std::mem::take(&mut *self.lines.lock().expect("lines"))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_or_token_reaches_any_log_line() {
    let tmp = tempfile::Builder::new()
        .prefix("tgs")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let dir = tmp.path();
    let mut written = Vec::new();
    let (out, err) = cli(
        dir,
        &[
            "user",
            "add",
            "alice",
            "--role",
            "operator",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    written.extend([out, err]);
    let (cli_token, err) = cli(dir, &["user", "token", "alice", "--ttl", "1h"], "");
    written.push(err);
    let cli_token = cli_token.trim().to_owned();
    let (gateway, addr) = Gateway::start(dir);
    let addr: std::net::SocketAddr = addr.parse().expect("address");
    let url = format!("ws://{addr}/ws");
    let mut tokens = vec![cli_token.clone()];

    // HTTP: a wrong password, then the right one; the cookie opens a socket; logout.
    let body = |pw: &str| format!(r#"{{"username":"alice","password":"{pw}"}}"#);
    let json = [("Content-Type", "application/json")];
    let wrong = http(addr, "POST", "/api/login", &json, &body(WRONG)).await;
    assert_eq!(wrong.status, 401);
    let login = http(addr, "POST", "/api/login", &json, &body(PASSWORD)).await;
    assert_eq!(login.status, 200);
    let cookie = login
        .header("set-cookie")
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    tokens.push(cookie.trim_start_matches("tmuxgate_token=").to_owned());
    let by_cookie = Client::connect_with(
        &url,
        ClientOptions::default().header("Cookie", cookie.clone()),
    )
    .await
    .expect("connect");
    by_cookie
        .create_session("scan", 80, 24)
        .await
        .expect("create");

    // WebSocket: auth by password (a new token), by token, the query and subprotocol forms.
    let socket = Client::connect(&url).await.expect("connect");
    assert!(socket.login("alice", WRONG).await.is_err());
    let reply = socket.login("alice", PASSWORD).await.expect("auth");
    tokens.push(reply.token.expect("token"));
    let socket = Client::connect(&url).await.expect("connect");
    socket
        .authenticate(&cli_token)
        .await
        .expect("auth by token");
    let query = Client::connect(&format!("{url}?token={cli_token}"))
        .await
        .expect("connect");
    query.heartbeat().await.expect("query token works");
    let protocols = format!("tmuxgate.v1, tmuxgate.token.{cli_token}");
    let sub = ClientOptions::default().header("Sec-WebSocket-Protocol", protocols);
    Client::connect_with(&url, sub)
        .await
        .expect("connect")
        .heartbeat()
        .await
        .expect("subprotocol");

    // The bearer header, /api/me with it, and a token login (the UI's ?token= swap).
    let bearer = ClientOptions::default().token(&cli_token);
    Client::connect_with(&url, bearer)
        .await
        .expect("connect")
        .heartbeat()
        .await
        .expect("bearer");
    let auth_header = format!("Bearer {cli_token}");
    let me = http(
        addr,
        "GET",
        "/api/me",
        &[("Authorization", &auth_header)],
        "",
    )
    .await;
    assert_eq!(me.status, 200);
    let swap = http(
        addr,
        "POST",
        "/api/login",
        &json,
        &format!(r#"{{"token":"{cli_token}"}}"#),
    )
    .await;
    assert_eq!(swap.status, 200);

    // Forged and malformed tokens at the upgrade and in auth.
    let mut forged = cli_token.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    tokens.push(forged.clone());
    let refused = Client::connect(&format!("{url}?token={forged}"))
        .await
        .expect("upgrade");
    assert_eq!(
        refused.wait_closed(STEP).await.expect("closed").0,
        CloseCode::Unauthorized.code()
    );
    let socket = Client::connect(&url).await.expect("connect");
    assert!(socket.authenticate(&forged).await.is_err());

    // Logout revokes the cookie's token; using it again is refused (and logged as such).
    let out = http(addr, "POST", "/api/logout", &[("Cookie", &cookie)], "").await;
    assert_eq!(out.status, 204);
    assert_eq!(
        by_cookie.wait_closed(STEP).await.expect("closed").0,
        CloseCode::Unauthorized.code()
    );
    let again = Client::connect_with(&url, ClientOptions::default().header("Cookie", cookie))
        .await
        .expect("upgrade");
    assert_eq!(
        again.wait_closed(STEP).await.expect("closed").0,
        CloseCode::Unauthorized.code()
    );

    written.extend(gateway.stop());
    common::kill_servers(dir);
    // The audit log (DATA_DIR/audit.jsonl by default) is searched as well.
    let audit = std::fs::read_to_string(dir.join("state/audit.jsonl")).expect("the audit log");
    assert!(
        audit.contains("\"TOKEN_REJECTED\""),
        "the audit log has the scenario's events"
    );
    written.push(audit);
    let all = written.join("\n");
    for event in [
        "AUTH_SUCCESS",
        "AUTH_FAILURE",
        "TOKEN_REJECTED",
        "TOKEN_REVOKED",
    ] {
        assert!(
            all.contains(event),
            "no {event} line: the scan would prove nothing"
        );
    }
    for (what, secret) in [("password", PASSWORD), ("wrong password", WRONG)] {
        assert!(!all.contains(secret), "the {what} appears in the output");
    }
    for token in &tokens {
        let signature = token.rsplit('.').next().expect("signature");
        assert!(!all.contains(signature), "a token appears in the output");
    }
}
