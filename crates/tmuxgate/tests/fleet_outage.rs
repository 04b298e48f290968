//! A Redis outage under a fleet (issue 9): gateways never crash, `/health` and `/metrics`
//! say so, terminals keep working, what docs/store.md says about each kind of state holds,
//! and the fleet converges when Redis is back.

mod common;

use std::time::{Duration, Instant};

use common::fleet::{
    accepted_from, prefix, second_with, until_accepted, until_listed, until_store,
};
use common::identity::{AuthServer, closed_with};
use common::redis::RedisServer;
use common::{STEP, TestServer, http_get};
use serde_json::Value;
use tmuxgate::config::Secret;
use tmuxgate_client::{Client, ClientOptions};

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
