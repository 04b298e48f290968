//! Several gateways sharing one Redis (issue 9): what one instance revokes, the others
//! refuse; `/health` reports the store, and a Redis outage degrades it without a crash.

mod common;

use std::time::{Duration, Instant};

use common::identity::{AuthServer, closed_with, http};
use common::redis::RedisServer;
use common::{STEP, TestServer, http_get};
use serde_json::Value;
use tmuxgate::config::Secret;
use tmuxgate_client::protocol::Event;
use tmuxgate_client::protocol::request::AttachMode;
use tmuxgate_client::{Client, ClientOptions};

/// A key prefix no other test uses.
fn prefix() -> String {
    format!("t{:08x}", rand::random::<u32>())
}

/// A second gateway beside `first` on the same Redis, with its own sockets, data directory
/// and audit log but the same users and signing keys (copied, as an operator provisions a
/// fleet): tokens of one are tokens of the other.
async fn second(first: &AuthServer, url: &str, prefix: &str) -> (TestServer, tempfile::TempDir) {
    second_with(first, url, prefix, |_| {}).await
}

/// [`second`], with `tweak` applied to its configuration as well.
async fn second_with(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_one_gateway_is_refused_by_another() {
    let redis = RedisServer::start();
    let prefix = prefix();
    let (url, key_prefix) = (redis.url(), prefix.clone());
    let a = AuthServer::start(&[("ann", "operator")], move |c| {
        c.redis_url = Some(Secret::new(url));
        c.redis_prefix = key_prefix;
    })
    .await;
    let (b, b_data) = second(&a, &redis.url(), &prefix).await;

    let token = a.token_for("ann", Duration::from_secs(600)).await;
    let on_b = Client::connect_with(&b.url(), ClientOptions::default().token(&token))
        .await
        .expect("connect to B");
    on_b.list_sessions().await.expect("A's token works on B");

    // Log out through A's HTTP API.
    let bearer = format!("Bearer {token}");
    let logout = http(
        a.server.addr,
        "POST",
        "/api/logout",
        &[("Authorization", bearer.as_str())],
        "",
    )
    .await;
    assert_eq!(logout.status, 204, "{logout:?}");

    // The connection already open on B closes at once, and a new one is refused.
    let (code, reason) = on_b
        .wait_closed(STEP)
        .await
        .expect("B closes the open connection");
    assert_eq!(code, 4401, "{reason}");
    let (code, reason) = closed_with(&b.url(), &token).await;
    assert_eq!(code, 4401, "B refuses the token A revoked: {reason}");
    // And not because the two share a revocations file: neither has one.
    for data in [a.server.dir.join("sock-state"), b_data.path().to_path_buf()] {
        assert!(!data.join("revoked.jsonl").exists(), "{}", data.display());
    }
    let (_, body) = http_get(b.health_addr, "/health").await;
    let health: Value = serde_json::from_str(&body).expect("health JSON");
    assert_eq!(health["store"]["kind"], "redis", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_degrades_health_without_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut redis = RedisServer::start_in(dir.path(), &[]);
    let port = redis.port;
    let (url, prefix) = (redis.url(), prefix());
    let server = TestServer::start_with(move |c| {
        c.redis_url = Some(Secret::new(url));
        c.redis_prefix = prefix;
    })
    .await;
    let status = |body: &str| -> Value { serde_json::from_str(body).expect("health JSON") };
    let wait_for = |want: &'static str| {
        let addr = server.health_addr;
        async move {
            let deadline = Instant::now() + STEP;
            loop {
                let (_, body) = http_get(addr, "/health").await;
                let health = status(&body);
                if health["store"]["state"] == want {
                    return health;
                }
                assert!(Instant::now() < deadline, "store never {want}: {body}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let up = wait_for("up").await;
    assert_eq!(up["status"], "healthy", "{up}");

    redis.kill();
    let down = wait_for("down").await;
    assert_eq!(down["status"], "degraded", "{down}");
    // Terminals keep working: Redis is never on the session path.
    let client = server.client().await;
    let info = client
        .create_session("during", 80, 24)
        .await
        .expect("create");
    let mut att = client
        .attach_session(&info.session_id, 80, 24)
        .await
        .expect("attach");
    client
        .send_input(att.channel, b"echo still-$((2+3))\r")
        .await
        .expect("input");
    att.wait_for(b"still-5", STEP).await.expect("typing works");

    let _back = RedisServer::try_start(dir.path(), port, &[]).expect("restart Redis");
    let up = wait_for("up").await;
    assert_eq!(up["status"], "healthy", "{up}");
    assert!(up["store"]["failures"].as_u64() > Some(0), "{up}");
    // `/metrics` says the same, with every call's time and the calls that failed.
    let (status, metrics) = http_get(server.health_addr, "/metrics").await;
    assert_eq!(status, 200);
    let value = |name: &str| -> f64 {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{metrics}"));
        line.rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .expect("a number")
    };
    assert_eq!(value("tmuxgate_store_up{store=\"redis\"}"), 1.0);
    assert!(value("tmuxgate_store_errors_total{store=\"redis\"}") > 0.0);
    assert!(value("tmuxgate_store_ping_failures_total{store=\"redis\"}") > 0.0);
    assert!(value("tmuxgate_store_call_duration_seconds_count{store=\"redis\"}") > 0.0);
}

/// `tmuxgate store check` against a real Redis, and against one that is not there: exit
/// status, the figures, and never the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_check_reports_redis_and_never_its_password() {
    let redis = RedisServer::start();
    let check = |url: String| async move {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tmuxgate"))
            .args(["store", "check", "--json"])
            .env("REDIS_URL", url)
            .env("REDIS_PREFIX", prefix())
            .output()
            .await
            .expect("the tmuxgate CLI runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, text) = check(redis.url()).await;
    assert!(ok, "{text}");
    let info: Value = serde_json::from_str(text.trim()).expect("JSON");
    assert_eq!(info["kind"], "redis", "{text}");
    assert!(
        info["version"].as_str().is_some_and(|v| v.starts_with('7')),
        "{text}"
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let (ok, text) = check(format!("redis://:sw0rdfish-secret@127.0.0.1:{port}")).await;
    assert!(!ok, "nothing listens there: {text}");
    assert!(!text.contains("sw0rdfish"), "the password leaked: {text}");
}

/// Whether a WebSocket from `from` to `url` is accepted.
async fn accepted_from(url: &str, from: &str) -> bool {
    let options = ClientOptions::default().bind(from.parse().expect("address"));
    Client::connect_with(url, options).await.is_ok()
}

/// Polls until a connection from `from` to `url` is accepted (or not), within `STEP`.
async fn until_accepted(url: &str, from: &str, want: bool) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_blocked_on_one_gateway_is_dropped_by_another() {
    let redis = RedisServer::start();
    let prefix = prefix();
    let (url, key_prefix) = (redis.url(), prefix.clone());
    let a = AuthServer::start(&[("root", "admin")], move |c| {
        c.redis_url = Some(Secret::new(url));
        c.redis_prefix = key_prefix;
    })
    .await;
    let (b, _b_data) = second(&a, &redis.url(), &prefix).await;
    assert!(
        accepted_from(&b.url(), "127.0.0.7").await,
        "not blocked yet"
    );

    let (ok, out) =
        common::identity::admin_cli(&a, "block", &["add", "127.0.0.7", "--duration", "10m"]).await;
    assert!(ok, "{out}");
    until_accepted(&b.url(), "127.0.0.7", false).await;
    assert!(
        accepted_from(&b.url(), "127.0.0.8").await,
        "a neighbour is not affected"
    );

    let (ok, out) = common::identity::admin_cli(&a, "block", &["remove", "127.0.0.7"]).await;
    assert!(ok, "{out}");
    until_accepted(&b.url(), "127.0.0.7", true).await;
}

/// A user's request quota is the fleet's: requests alternating between two gateways pass
/// exactly one quota in all, not one per gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_rate_limit_is_shared_by_the_fleet() {
    let redis = RedisServer::start();
    let prefix = prefix();
    let limits = |c: &mut tmuxgate::config::Config| {
        c.rate_limit_requests = 10;
        c.rate_limit_burst = 10;
        c.rate_limit_window = Duration::from_secs(600);
        c.rate_limit_close_after = 1000;
    };
    let (url, key_prefix) = (redis.url(), prefix.clone());
    let a = AuthServer::start(&[("ann", "operator")], move |c| {
        c.redis_url = Some(Secret::new(url));
        c.redis_prefix = key_prefix;
        limits(c);
    })
    .await;
    let (b, _b_data) = second_with(&a, &redis.url(), &prefix, limits).await;
    let token = a.token_for("ann", Duration::from_secs(600)).await;
    let on_a = Client::connect_with(&a.server.url(), ClientOptions::default().token(&token))
        .await
        .expect("connect to A");
    let on_b = Client::connect_with(&b.url(), ClientOptions::default().token(&token))
        .await
        .expect("connect to B");
    let mut passed = 0;
    for n in 0..30 {
        let client = if n % 2 == 0 { &on_a } else { &on_b };
        match client.list_sessions().await {
            Ok(_) => passed += 1,
            Err(tmuxgate_client::ClientError::Server { code, .. }) => {
                assert_eq!(code, tmuxgate_client::protocol::ErrorCode::RateLimited);
            }
            Err(other) => panic!("request {n}: {other}"),
        }
    }
    assert_eq!(
        passed, 10,
        "the sum across both gateways stays within the limit"
    );
}

/// Two gateways without authentication on one Redis, `tweak` applied to both.
async fn pair(
    redis: &RedisServer,
    tweak: impl Fn(&mut tmuxgate::config::Config) + Clone + Send + 'static,
) -> (TestServer, TestServer) {
    let prefix = prefix();
    let mut servers = Vec::new();
    for _ in 0..2 {
        let (url, prefix, tweak) = (redis.url(), prefix.clone(), tweak.clone());
        servers.push(
            TestServer::start_with(move |c| {
                c.redis_url = Some(Secret::new(url));
                c.redis_prefix = prefix;
                tweak(c);
            })
            .await,
        );
    }
    let b = servers.pop().expect("B");
    (servers.pop().expect("A"), b)
}

/// A connection from `from` to `url` that the gateway keeps open (`None`: refused or
/// closed at once).
async fn kept_open(url: &str, from: &str) -> Option<Client> {
    let options = ClientOptions::default().bind(from.parse().expect("address"));
    let client = Client::connect_with(url, options).await.ok()?;
    // A connection over a cap is closed right after the upgrade; one that answers is open.
    client.list_sessions().await.ok()?;
    Some(client)
}

/// `MAX_CONNECTIONS_PER_IP` counts an address's connections on every gateway together,
/// and a connection's end frees its place for the whole fleet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_per_address_is_shared_by_the_fleet() {
    let redis = RedisServer::start();
    let (a, b) = pair(&redis, |c| c.max_connections_per_ip = 2).await;
    let from = "127.0.0.9";
    let first = kept_open(&a.url(), from).await.expect("1st, on A");
    let _second = kept_open(&b.url(), from).await.expect("2nd, on B");
    for (name, url) in [("A", a.url()), ("B", b.url())] {
        let options = ClientOptions::default().bind(from.parse().expect("address"));
        let third = Client::connect_with(&url, options).await.expect("upgrade");
        let (code, reason) = third.wait_closed(STEP).await.expect("closed");
        assert_eq!(
            code, 1013,
            "a 3rd on {name} is over the fleet's cap: {reason}"
        );
    }
    assert!(
        kept_open(&b.url(), "127.0.0.10").await.is_some(),
        "other addresses are not affected"
    );
    first.close().await.expect("close");
    let deadline = Instant::now() + STEP;
    while kept_open(&b.url(), from).await.is_none() {
        assert!(
            Instant::now() < deadline,
            "the closed connection's place never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `CONNECT_RATE_LIMIT` is one quota for the fleet: upgrades alternating between two
/// gateways pass exactly one quota in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upgrade_rate_limit_is_shared_by_the_fleet() {
    let redis = RedisServer::start();
    let (a, b) = pair(&redis, |c| c.connect_rate_limit = 4).await;
    let mut upgraded = 0;
    for n in 0..10 {
        let url = if n % 2 == 0 { a.url() } else { b.url() };
        if accepted_from(&url, "127.0.0.11").await {
            upgraded += 1;
        }
    }
    assert_eq!(
        upgraded, 4,
        "the sum across both gateways stays within the limit"
    );
}

/// Redis killed while two gateways sharing tmux servers keep working, then restarted empty
/// (no persistence): what docs/store.md says happens meanwhile happens, and what changed
/// meanwhile reaches the other gateway afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_redis_outage_the_fleet_converges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut redis = RedisServer::start_in(dir.path(), &[]);
    let prefix = prefix();
    let (url, key_prefix) = (redis.url(), prefix.clone());
    let a = AuthServer::start(&[("ann", "operator")], move |c| {
        c.redis_url = Some(Secret::new(url));
        c.redis_prefix = key_prefix;
        c.block_failed_logins = 3;
        // The polling below is not what is tested.
        c.rate_limit_requests = 100_000;
    })
    .await;
    let sockets = a.server.dir.join("sock");
    let (b, _b_data) = second_with(&a, &redis.url(), &prefix, move |c| {
        c.tmux_socket_path = sockets;
        c.rate_limit_requests = 100_000;
    })
    .await;
    let token = a.token_for("ann", Duration::from_secs(600)).await;
    let connect = |url: String| {
        let token = token.clone();
        async move {
            Client::connect_with(&url, ClientOptions::default().token(&token))
                .await
                .expect("connect")
        }
    };
    let (on_a, on_b) = (connect(a.server.url()).await, connect(b.url()).await);
    let before = on_a.create_session("before", 80, 24).await.expect("create");
    until_listed(&on_b, &before.session_id).await;

    redis.kill();
    for health in [a.server.health_addr, b.health_addr] {
        until_store(health, "down").await;
    }
    // Meanwhile: new authentications fail closed; open connections keep working, and what
    // they change holds here.
    let (code, reason) = closed_with(&b.url(), &token).await;
    assert_eq!(code, 4401, "no revocation check, no entry: {reason}");
    let during = on_a.create_session("during", 80, 24).await.expect("create");
    let mut att = on_b
        .attach_session(&before.session_id, 80, 24)
        .await
        .expect("attach on B");
    on_b.send_input(att.channel, b"echo outage-$((4+4))\r")
        .await
        .expect("input");
    att.wait_for(b"outage-8", STEP).await.expect("typing works");
    // A guesser blocked on A: held on A, not yet shared.
    let guesser = "127.0.0.13";
    for _ in 0..3 {
        let options = ClientOptions::default().bind(guesser.parse().expect("address"));
        let client = Client::connect_with(&a.server.url(), options)
            .await
            .expect("connect");
        let _ = client.login("ann", "a-wrong-guess").await;
    }
    assert!(
        !accepted_from(&a.server.url(), guesser).await,
        "blocked on A"
    );
    assert!(accepted_from(&b.url(), guesser).await, "B cannot know yet");

    // Redis back, empty: the session made meanwhile and the block reach B.
    let _back = RedisServer::try_start(dir.path(), redis.port, &[]).expect("restart Redis");
    let restarted = Instant::now();
    until_listed(&on_b, &during.session_id).await;
    until_accepted(&b.url(), guesser, false).await;
    println!("converged {:?} after the restart", restarted.elapsed());
    let again = connect(b.url()).await;
    again
        .list_sessions()
        .await
        .expect("new authentications work again");
    for health in [a.server.health_addr, b.health_addr] {
        until_store(health, "up").await;
    }
}

/// Polls `/health` at `addr` until the store's state is `want`.
async fn until_store(addr: std::net::SocketAddr, want: &str) {
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
async fn until_listed(client: &Client, session_id: &str) {
    let deadline = Instant::now() + STEP;
    loop {
        let listed = client.list_sessions().await.expect("list");
        if listed.iter().any(|s| s.session_id == session_id) {
            return;
        }
        assert!(Instant::now() < deadline, "{session_id} never listed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A share given, narrowed and taken back on one gateway takes effect on another's viewers
/// at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_changed_on_one_gateway_take_effect_on_another() {
    let redis = RedisServer::start();
    let prefix = prefix();
    let (url, key_prefix) = (redis.url(), prefix.clone());
    let a = AuthServer::start(&[("ann", "operator"), ("bob", "operator")], move |c| {
        c.redis_url = Some(Secret::new(url));
        c.redis_prefix = key_prefix;
    })
    .await;
    let sockets = a.server.dir.join("sock");
    let (b, _b_data) = second_with(&a, &redis.url(), &prefix, move |c| {
        c.tmux_socket_path = sockets;
    })
    .await;
    let connect = |url: String, token: String| async move {
        Client::connect_with(&url, ClientOptions::default().token(&token))
            .await
            .expect("connect")
    };
    let ann = connect(
        a.server.url(),
        a.token_for("ann", Duration::from_secs(600)).await,
    )
    .await;
    let bob = connect(b.url(), a.token_for("bob", Duration::from_secs(600)).await).await;
    let id = ann
        .create_session("ann-s", 80, 24)
        .await
        .expect("create")
        .session_id;
    ann.share(&id, "bob", AttachMode::Write)
        .await
        .expect("share on A");
    until_listed(&bob, &id).await;
    let att = bob
        .attach_session(&id, 80, 24)
        .await
        .expect("bob attaches on B");
    assert_eq!(att.mode, AttachMode::Write);
    let channel = att.channel;

    ann.share(&id, "bob", AttachMode::Read)
        .await
        .expect("narrowed on A");
    bob.wait_event(
        |e| matches!(e, Event::AccessChanged { channel: c, mode: AttachMode::Read, .. } if *c == channel),
        STEP,
    )
    .await
    .expect("B's channel becomes read-only");

    ann.unshare(&id, "bob").await.expect("taken back on A");
    let closed = bob
        .wait_event(
            |e| matches!(e, Event::SessionClosed { channel: c, .. } if *c == channel),
            STEP,
        )
        .await
        .expect("B's channel ends");
    assert!(
        matches!(&closed, Event::SessionClosed { reason, .. } if reason == "revoked"),
        "{closed:?}"
    );
    assert!(bob.list_sessions().await.expect("list").is_empty());
}

/// `AUTH_RATE_LIMIT` is one quota for the fleet: logins from one address alternating
/// between two gateways pass exactly one quota in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_rate_limit_is_shared_by_the_fleet() {
    let redis = RedisServer::start();
    let prefix = prefix();
    let (url, key_prefix) = (redis.url(), prefix.clone());
    let a = AuthServer::start(&[("ann", "operator")], move |c| {
        c.redis_url = Some(Secret::new(url));
        c.redis_prefix = key_prefix;
        c.auth_rate_limit = 4;
    })
    .await;
    let (b, _b_data) = second_with(&a, &redis.url(), &prefix, |c| c.auth_rate_limit = 4).await;
    let password = common::identity::password("ann");
    let mut passed = 0;
    for n in 0..10 {
        let url = if n % 2 == 0 { a.server.url() } else { b.url() };
        let options = ClientOptions::default().bind("127.0.0.14".parse().expect("address"));
        let client = Client::connect_with(&url, options).await.expect("connect");
        match client.login("ann", &password).await {
            Ok(_) => passed += 1,
            Err(tmuxgate_client::ClientError::Server { code, .. }) => {
                assert_eq!(code, tmuxgate_client::protocol::ErrorCode::RateLimited);
            }
            Err(other) => panic!("login {n}: {other}"),
        }
    }
    assert_eq!(
        passed, 4,
        "the sum across both gateways stays within the limit"
    );
}
