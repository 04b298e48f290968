//! Two or more gateways on one Redis: the helpers the fleet tests share.

use std::time::{Duration, Instant};

use serde_json::Value;
use tmuxgate::config::Secret;
use tmuxgate_client::{Client, ClientOptions};

use super::identity::AuthServer;
use super::{STEP, TestServer, http_get};

/// A key prefix no other test uses.
pub fn prefix() -> String {
    format!("t{:08x}", rand::random::<u32>())
}

/// A second gateway beside `first` on the same Redis, with its own sockets, data directory
/// and audit log but the same users and signing keys (copied, as an operator provisions a
/// fleet): tokens of one are tokens of the other.
pub async fn second(
    first: &AuthServer,
    url: &str,
    prefix: &str,
) -> (TestServer, tempfile::TempDir) {
    second_with(first, url, prefix, |_| {}).await
}

/// [`second`], with `tweak` applied to its configuration as well.
pub async fn second_with(
    first: &AuthServer,
    url: &str,
    prefix: &str,
    tweak: impl FnOnce(&mut tmuxgate::config::Config) + Send + 'static,
) -> (TestServer, tempfile::TempDir) {
    let data = tempfile::tempdir().expect("tempdir");
    // `Config::for_tests(DIR/sock)` keeps its data in `DIR/sock-state`.
    let first_data = first.server.dir.join("sock-state");
    for file in ["users.toml", "jwt-keys.toml"] {
        let from = first_data.join(file);
        if from.exists() {
            std::fs::copy(&from, data.path().join(file)).expect("copy identity file");
        }
    }
    let (url, prefix, dir) = (url.to_owned(), prefix.to_owned(), data.path().to_path_buf());
    let server = TestServer::start_with(move |c| {
        c.enable_auth = true;
        c.data_dir = dir;
        c.redis_url = Some(Secret::new(url));
        c.redis_prefix = prefix;
        tweak(c);
    })
    .await;
    (server, data)
}

/// Whether a WebSocket from `from` to `url` is accepted.
pub async fn accepted_from(url: &str, from: &str) -> bool {
    let options = ClientOptions::default().bind(from.parse().expect("address"));
    Client::connect_with(url, options).await.is_ok()
}

/// Polls until a connection from `from` to `url` is accepted (or not), within `STEP`.
pub async fn until_accepted(url: &str, from: &str, want: bool) {
    let deadline = Instant::now() + STEP;
    while accepted_from(url, from).await != want {
        assert!(
            Instant::now() < deadline,
            "{from} never {}",
            if want { "accepted" } else { "refused" }
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `/health` at `addr` until the store's state is `want`.
pub async fn until_store(addr: std::net::SocketAddr, want: &str) {
    let deadline = Instant::now() + STEP;
    loop {
        let (_, body) = http_get(addr, "/health").await;
        let health: Value = serde_json::from_str(&body).expect("health JSON");
        if health["store"]["state"] == want {
            return;
        }
        assert!(Instant::now() < deadline, "store never {want}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `session-list` on `client` until it holds `session_id`.
pub async fn until_listed(client: &Client, session_id: &str) {
    until_visible(client, session_id, true, session_id).await;
}

/// Waits until `client` lists `session_id` (`want`) or stops listing it. A list refused by
/// the user's request quota (this polls fast) counts as not yet.
pub async fn until_visible(client: &Client, session_id: &str, want: bool, who: &str) {
    let deadline = Instant::now() + STEP;
    loop {
        let pause = match client.list_sessions().await {
            Ok(listed) if listed.iter().any(|s| s.session_id == session_id) == want => return,
            result => {
                if passed(result, who) {
                    Duration::from_millis(20)
                } else {
                    Duration::from_millis(200)
                }
            }
        };
        assert!(
            Instant::now() < deadline,
            "{who}: {session_id} never {}",
            if want { "listed" } else { "hidden" }
        );
        tokio::time::sleep(pause).await;
    }
}

/// Whether a call under a shared limit passed; anything but a pass must be `rate_limited`.
pub fn passed<T>(result: Result<T, tmuxgate_client::ClientError>, what: &str) -> bool {
    match result {
        Ok(_) => true,
        Err(tmuxgate_client::ClientError::Server { code, .. }) => {
            assert_eq!(
                code,
                tmuxgate_client::protocol::ErrorCode::RateLimited,
                "{what}"
            );
            false
        }
        Err(other) => panic!("{what}: {other}"),
    }
}

/// Sends `n` `session-list` requests alternating between `a` and `b`; how many passed.
pub async fn alternating_requests_passed(a: &Client, b: &Client, n: usize) -> usize {
    let mut count = 0;
    for i in 0..n {
        let client = if i % 2 == 0 { a } else { b };
        count += usize::from(passed(
            client.list_sessions().await,
            &format!("request {i}"),
        ));
    }
    count
}
