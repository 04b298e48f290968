//! Several gateways sharing one Redis (issue 9): what one revokes or blocks, the others
//! refuse; rate limits and connection caps are the fleet's; `store check`.

mod common;

use std::time::{Duration, Instant};

use common::fleet::{
    accepted_from, alternating_requests_passed, passed, prefix, second, second_with, until_accepted,
};
use common::identity::{AuthServer, closed_with, http};
use common::redis::RedisServer;
use common::{STEP, TestServer, http_get};
use serde_json::Value;
use tmuxgate::config::Secret;
use tmuxgate_client::{Client, ClientOptions};

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
    assert_eq!(
        alternating_requests_passed(&on_a, &on_b, 30).await,
        10,
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
    let mut logins = 0;
    for n in 0..10 {
        let url = if n % 2 == 0 { a.server.url() } else { b.url() };
        let options = ClientOptions::default().bind("127.0.0.14".parse().expect("address"));
        let client = Client::connect_with(&url, options).await.expect("connect");
        logins += usize::from(passed(client.login("ann", &password).await, "login"));
    }
    assert_eq!(
        logins, 4,
        "the sum across both gateways stays within the limit"
    );
}

/// A gateway's counts in the store are rewritten from the connections it knows are open, so
/// a removal that never reached Redis does not keep a place taken for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateways_counts_are_rewritten_from_its_open_connections() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = tmuxgate::config::Config::for_tests(dir.path().join("sock"));
    config.redis_url = Some(Secret::new(redis.url()));
    config.redis_prefix = prefix();
    config.max_connections_per_ip = 5;
    let store = tmuxgate::store::open(&config).await.expect("store");
    let audit = tmuxgate::audit::Audit::off(Default::default());
    let mut abuse = tmuxgate::abuse::Abuse::new(&config, Default::default(), audit);
    abuse.share(store.clone(), Default::default());
    let client: std::net::IpAddr = "127.0.0.20".parse().expect("address");
    assert!(abuse.connection_opened(client) && abuse.connection_opened(client));
    // The store says three: one more than is open (a removal that failed).
    for _ in 0..3 {
        assert!(store.count_add("ip", "127.0.0.20", 5).await.expect("add"));
    }
    abuse.refresh_shared_counts().await;
    assert_eq!(store.count("ip", "127.0.0.20").await.expect("count"), 2);
    abuse.connection_closed(client);
    abuse.connection_closed(client);
    abuse.refresh_shared_counts().await;
    assert_eq!(store.count("ip", "127.0.0.20").await.expect("count"), 0);
}
