//! Gateways with authentication on: users created before start, tokens issued with the
//! same key ring the gateway verifies with, and a raw HTTP/1.1 client for `/api`.

use std::net::SocketAddr;
use std::time::Duration;

use tmuxgate::config::Config;
use tmuxgate::security::{Authenticator, RoleName, UserName};
use tmuxgate_client::{Client, ClientOptions};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::{STEP, TestServer};

/// A gateway with authentication on, and an [`Authenticator`] over the same files.
pub struct AuthServer {
    pub server: TestServer,
    pub auth: Authenticator,
}

/// The password the harness gives `user`.
/// Runs `tmuxgate COMMAND ARGS` (an admin CLI: `block`, `backend`) against `server`'s
/// health port with a token of the admin `root`: whether it succeeded, and its output.
pub async fn admin_cli(server: &AuthServer, command: &str, args: &[&str]) -> (bool, String) {
    let token = server.token_for("root", Duration::from_secs(600)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, token).expect("token file");
    let url = format!("http://{}", server.server.health_addr);
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_tmuxgate"))
        .arg(command)
        .args(args)
        .args(["--url", &url, "--token-file"])
        .arg(&token_file)
        .env_remove("TMUXGATE_TOKEN")
        .output()
        .await
        .expect("the tmuxgate CLI runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

pub fn password(user: &str) -> String {
    format!("pw-{user}-correct-horse")
}

impl AuthServer {
    /// A gateway with `users` (name, role) and authentication on; `tweak` adjusts the rest.
    pub async fn start(users: &[(&str, &str)], tweak: impl FnOnce(&mut Config)) -> AuthServer {
        let tmp = tempfile::Builder::new()
            .prefix("tga")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let mut config = Config::for_tests(tmp.path().join("sock"));
        config.enable_auth = true;
        tweak(&mut config);
        let (auth, _first) = Authenticator::open(&config).await.expect("identity files");
        for (user, role) in users {
            let name: UserName = user.parse().expect("user name");
            let role: RoleName = role.parse().expect("role");
            let secret = tmuxgate::config::Secret::new(password(user));
            auth.users()
                .add(&name, &secret, &role)
                .await
                .expect("add user");
        }
        let final_config = config.clone();
        let mut server =
            TestServer::start_in(tmp.path().to_path_buf(), move |c| *c = final_config).await;
        server._tmp = Some(tmp);
        AuthServer { server, auth }
    }

    /// A token for `user`, valid for `ttl`.
    pub async fn token_for(&self, user: &str, ttl: Duration) -> String {
        let name: UserName = user.parse().expect("user name");
        let issued = self.auth.issue(&name, ttl).await.expect("issue");
        issued.token.expose().to_owned()
    }

    /// A client that presented a fresh token for `user` at the upgrade.
    pub async fn client_as(&self, user: &str) -> Client {
        let token = self.token_for(user, Duration::from_secs(600)).await;
        self.client_with_token(&token).await
    }

    /// A client that presented `token` at the upgrade (`Authorization: Bearer`).
    pub async fn client_with_token(&self, token: &str) -> Client {
        let options = ClientOptions::default().token(token);
        Client::connect_with(&self.server.url(), options)
            .await
            .expect("client connects")
    }
}

/// One HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header lines as sent (`name: value`), names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|(n, _)| n == name);
        found.map(|(_, v)| v.as_str())
    }
}

/// One request on a new connection (`Connection: close`).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    let exchange = async {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(request.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).await.expect("read");
        raw
    };
    let raw = tokio::time::timeout(STEP, exchange)
        .await
        .expect("HTTP in time");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    HttpResponse {
        status: status.parse().expect("status code"),
        headers,
        body: body.to_owned(),
    }
}

/// Connects to the gateway at `url` presenting `token`, and waits for the close: its code
/// and reason (`0` and why, if it stayed open).
pub async fn closed_with(url: &str, token: &str) -> (u16, String) {
    let options = ClientOptions::default().token(token);
    let client = Client::connect_with(url, options)
        .await
        .expect("the upgrade itself succeeds");
    match client.wait_closed(STEP).await {
        Ok(closed) => closed,
        Err(e) => (0, format!("not closed: {e}")),
    }
}
