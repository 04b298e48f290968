//! One conformance suite for both stores: the embedded one, a real Redis server started
//! here, and a real three-master Redis Cluster started here. Then what only a shared store
//! can show: two instances sharing limits, counts and events, and an outage survived.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::redis::{RedisCluster, RedisServer};
use tmuxgate::abuse::gcra::Quota;
use tmuxgate::store::memory::MemoryStore;
use tmuxgate::store::redis::{RedisSettings, RedisStore};
use tmuxgate::store::{BlockRecord, SessionRecord, Store, StoreEvent, now_ms};

const STEP: Duration = Duration::from_secs(10);

fn prefix() -> String {
    format!("t{:08x}", rand::random::<u32>())
}

async fn redis(urls: Vec<String>, cluster: bool, prefix: &str) -> RedisStore {
    RedisStore::connect(RedisSettings {
        urls,
        username: None,
        password: None,
        cluster,
        prefix: prefix.to_owned(),
        tls: Default::default(),
    })
    .await
    .expect("connect to Redis")
}

/// What every store must do.
async fn conformance(store: &dyn Store) {
    // GCRA: a burst of 5, then one every 200 ms.
    let quota = Quota::new(5, Duration::from_secs(1), 5);
    for n in 0..5 {
        let taken = store.take("ip:1", quota, 1).await.expect("take");
        assert_eq!(taken, Ok(()), "burst request {n}");
    }
    let wait = store
        .take("ip:1", quota, 1)
        .await
        .expect("take")
        .expect_err("the sixth is refused");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_millis(200),
        "{wait:?}"
    );
    assert_eq!(
        store.take("ip:2", quota, 1).await.expect("take"),
        Ok(()),
        "keys are separate"
    );
    // A cost of 3 on a fresh bucket leaves room for 2 more of the burst, not 3.
    assert_eq!(store.take("ip:3", quota, 3).await.expect("take"), Ok(()));
    assert_eq!(store.take("ip:3", quota, 2).await.expect("take"), Ok(()));
    assert!(store.take("ip:3", quota, 1).await.expect("take").is_err());

    // Revocations, with expiry.
    let now = now_ms();
    store.revoke("jti-a", now + 60_000).await.expect("revoke");
    store.revoke("jti-old", now - 1).await.expect("revoke");
    assert!(store.is_revoked("jti-a", now).await.expect("check"));
    assert!(!store.is_revoked("jti-b", now).await.expect("check"));
    assert!(!store.is_revoked("jti-old", now).await.expect("check"));
    assert!(
        !store
            .is_revoked("jti-a", now + 60_001)
            .await
            .expect("check")
    );

    // Blocks, with expiry.
    let block = |address: &str, until_ms| BlockRecord {
        address: address.into(),
        until_ms,
        reason: "admin".into(),
    };
    store
        .block(&block("192.0.2.1", now + 60_000))
        .await
        .expect("block");
    store
        .block(&block("192.0.2.2", now - 1))
        .await
        .expect("block");
    assert_eq!(
        store.blocks(now).await.expect("blocks"),
        [block("192.0.2.1", now + 60_000)]
    );
    assert!(store.unblock("192.0.2.1", now).await.expect("unblock"));
    assert!(!store.unblock("192.0.2.1", now).await.expect("unblock"));
    assert!(store.blocks(now).await.expect("blocks").is_empty());

    // Counts under a cap.
    assert!(store.count_add("conn", "192.0.2.9", 2).await.expect("add"));
    assert!(store.count_add("conn", "192.0.2.9", 2).await.expect("add"));
    assert!(
        !store.count_add("conn", "192.0.2.9", 2).await.expect("add"),
        "at the cap"
    );
    assert!(
        store.count_add("conn", "192.0.2.10", 2).await.expect("add"),
        "per key"
    );
    assert_eq!(store.count("conn", "192.0.2.9").await.expect("count"), 2);
    store
        .count_remove("conn", "192.0.2.9")
        .await
        .expect("remove");
    assert_eq!(store.count("conn", "192.0.2.9").await.expect("count"), 1);
    assert!(store.count_add("conn", "192.0.2.9", 2).await.expect("add"));
    // Rewritten from what the instance knows is open: the rest goes.
    let open = [
        ("conn", "192.0.2.9".to_owned(), 1),
        ("user", "ann".to_owned(), 3),
    ];
    store.count_reset(&open).await.expect("reset");
    assert_eq!(store.count("conn", "192.0.2.9").await.expect("count"), 1);
    assert_eq!(store.count("conn", "192.0.2.10").await.expect("count"), 0);
    assert_eq!(store.count("user", "ann").await.expect("count"), 3);
    assert!(store.count_add("conn", "192.0.2.9", 2).await.expect("add"));

    // The session registry.
    let session = |id: &str, name: &str| SessionRecord {
        id: id.into(),
        name: name.into(),
        backend: "tmux-0".into(),
        owner: Some("ann".into()),
        shares: "bob:read".into(),
        created_at: now,
        tmux_id: "$3".into(),
        mark: Some("0a1b".into()),
    };
    store
        .put_session(&session("s_b", "two"))
        .await
        .expect("put");
    store
        .put_session(&session("s_a", "one"))
        .await
        .expect("put");
    store
        .put_session(&session("s_a", "renamed"))
        .await
        .expect("put");
    assert_eq!(
        store.sessions().await.expect("list"),
        [session("s_a", "renamed"), session("s_b", "two")]
    );
    assert_eq!(
        store.session("s_a").await.expect("get"),
        Some(session("s_a", "renamed"))
    );
    assert_eq!(store.session("s_z").await.expect("get"), None);
    assert!(store.remove_session("s_a").await.expect("remove"));
    assert!(!store.remove_session("s_a").await.expect("remove"));
    assert_eq!(
        store.sessions().await.expect("list"),
        [session("s_b", "two")]
    );

    // One user's share changes on its own: what others changed meanwhile stays.
    assert!(
        store
            .edit_share("s_b", "carl", Some("write"))
            .await
            .expect("share")
    );
    assert!(store.edit_share("s_b", "bob", None).await.expect("unshare"));
    assert!(
        store
            .edit_share("s_b", "dora", Some("read"))
            .await
            .expect("share")
    );
    assert!(
        store
            .edit_share("s_b", "dora", Some("write"))
            .await
            .expect("widen")
    );
    let shares = |store_session: Option<SessionRecord>| store_session.expect("record").shares;
    assert_eq!(
        shares(store.session("s_b").await.expect("get")),
        "carl:write,dora:write"
    );
    assert_eq!(
        store.sessions().await.expect("list")[0].shares,
        "carl:write,dora:write"
    );
    assert!(
        !store
            .edit_share("s_none", "carl", Some("read"))
            .await
            .expect("share"),
        "no record, no share"
    );
    // A removed session takes its shares along: put again, it has only its own.
    assert!(store.remove_session("s_b").await.expect("remove"));
    assert!(
        !store
            .edit_share("s_b", "carl", None)
            .await
            .expect("unshare")
    );
    store
        .put_session(&session("s_b", "two"))
        .await
        .expect("put");
    assert_eq!(shares(store.session("s_b").await.expect("get")), "bob:read");

    // Events reach subscribers (this instance's own included), in order.
    let mut events = store.subscribe().await.expect("subscribe");
    let sent = [
        StoreEvent::SessionDestroyed {
            session_id: "s_b".into(),
        },
        StoreEvent::UserRevoked { user: "ann".into() },
    ];
    for event in &sent {
        store.publish(event).await.expect("publish");
    }
    for event in &sent {
        let got = tokio::time::timeout(STEP, events.recv())
            .await
            .expect("an event in time")
            .expect("the stream is open");
        assert_eq!((&got.from[..], &got.event), (store.instance(), event));
    }

    let info = store.check().await.expect("check");
    assert_eq!(info.kind, store.kind());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms() {
    conformance(&MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_conforms() {
    let server = RedisServer::start();
    let store = redis(vec![server.url()], false, &prefix()).await;
    conformance(&store).await;
    let info = store.check().await.expect("check");
    assert_eq!(info.kind, "redis");
    assert!(
        info.version.is_some_and(|v| v.starts_with('7')),
        "a version"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_store_conforms() {
    let cluster = RedisCluster::start();
    let store = redis(cluster.urls(), true, &prefix()).await;
    assert_eq!(store.kind(), "redis-cluster");
    conformance(&store).await;
    let info = store.check().await.expect("check");
    assert!(
        info.version.is_some_and(|v| v.starts_with('7')),
        "a version"
    );
}

/// Two instances on one Redis: limits, counts and events are the fleet's, and the counts
/// of an instance that stops its heartbeat stop counting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_limits_counts_and_events() {
    let server = RedisServer::start();
    let prefix = prefix();
    let a = Arc::new(redis(vec![server.url()], false, &prefix).await);
    let b = Arc::new(redis(vec![server.url()], false, &prefix).await);
    assert_ne!(a.instance(), b.instance());

    // A burst of 10 per minute is shared: taken alternately, exactly 10 pass in all.
    let quota = Quota::new(10, Duration::from_secs(60), 10);
    let mut passed = 0;
    for n in 0..30 {
        let store = if n % 2 == 0 { &a } else { &b };
        if store
            .take("user:ann", quota, 1)
            .await
            .expect("take")
            .is_ok()
        {
            passed += 1;
        }
    }
    assert_eq!(
        passed, 10,
        "the sum across instances stays within the limit"
    );

    // A cap of 3 connections per address across both.
    a.heartbeat(Duration::from_secs(30))
        .await
        .expect("heartbeat");
    b.heartbeat(Duration::from_secs(2))
        .await
        .expect("heartbeat");
    assert!(a.count_add("conn", "198.51.100.1", 3).await.expect("add"));
    assert!(b.count_add("conn", "198.51.100.1", 3).await.expect("add"));
    assert!(b.count_add("conn", "198.51.100.1", 3).await.expect("add"));
    assert!(!a.count_add("conn", "198.51.100.1", 3).await.expect("add"));
    assert_eq!(a.count("conn", "198.51.100.1").await.expect("count"), 3);
    // B stops heartbeating (it crashed): once its heartbeat lapses its two stop counting.
    let deadline = Instant::now() + STEP;
    while a.count("conn", "198.51.100.1").await.expect("count") != 1 {
        assert!(Instant::now() < deadline, "B's counts never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(a.count_add("conn", "198.51.100.1", 3).await.expect("add"));

    // Events published on A reach B.
    let mut on_b = b.subscribe().await.expect("subscribe");
    let event = StoreEvent::Blocked {
        address: "198.51.100.7".into(),
        until_ms: 4_102_444_800_000,
        reason: "admin".into(),
    };
    a.publish(&event).await.expect("publish");
    let got = tokio::time::timeout(STEP, on_b.recv())
        .await
        .expect("in time")
        .expect("open");
    assert_eq!((got.from.as_str(), got.event), (a.instance(), event));
}

/// Redis killed and started again on the same port: calls fail (they do not hang or
/// panic) while it is down, work again after, and events published while a subscriber was
/// cut off are delivered once it is back (the stream holds them; the server keeps nothing
/// on disk here, so only events published after the restart exist).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_fails_calls_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = RedisServer::start_in(dir.path(), &[]);
    let port = server.port;
    let prefix = prefix();
    let a = redis(vec![server.url()], false, &prefix).await;
    let b = redis(vec![server.url()], false, &prefix).await;
    let mut on_b = b.subscribe().await.expect("subscribe");
    let before = StoreEvent::TokensRevoked {};
    a.publish(&before).await.expect("publish");
    let got = tokio::time::timeout(STEP, on_b.recv()).await;
    assert_eq!(got.expect("delivered").expect("open").event, before);

    server.kill();
    let started = Instant::now();
    let failed = a.is_revoked("jti", now_ms()).await;
    assert!(failed.is_err(), "a call while Redis is down fails");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "and does not hang"
    );

    let _back = RedisServer::try_start(dir.path(), port, &[]).expect("restart on the same port");
    let deadline = Instant::now() + STEP;
    loop {
        if a.revoke("jti-after", now_ms() + 60_000).await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the store never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(a.is_revoked("jti-after", now_ms()).await.expect("check"));
    let event = StoreEvent::BackendLost {
        backend: "tmux-1".into(),
    };
    a.publish(&event).await.expect("publish");
    // Redis came back empty: the event B passed last is gone, so B may have missed others.
    // It is told to read the state afresh, then gets what was published since.
    for want in [StoreEvent::Resync {}, event] {
        let got = tokio::time::timeout(STEP, on_b.recv())
            .await
            .expect("delivered after the outage")
            .expect("open");
        assert_eq!(got.event, want);
    }
}

/// Redis over TLS, its certificate from a private authority (`REDIS_TLS_CA`) and a client
/// certificate required (`REDIS_TLS_CERT`, `REDIS_TLS_KEY`), with an ACL user
/// (`REDIS_USERNAME`, `REDIS_PASSWORD`) and the default user off: the shared suite passes.
/// A wrong password, or no client certificate, is refused, and no error shows the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_mutual_tls_with_an_acl_user_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = common::pki::Ca::new();
    let (server, client) = (ca.issue(1), ca.issue(2));
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let ca_file = file("ca.pem", &ca.cert_pem());
    let (server_cert, server_key) = (
        file("server.pem", &server.cert_pem),
        file("server.key", &server.key_pem),
    );
    let (client_cert, client_key) = (
        file("client.pem", &client.cert_pem),
        file("client.key", &client.key_pem),
    );
    let path = |p: &std::path::Path| p.to_str().expect("UTF-8 path").to_owned();
    let tls_args = |port: u16| {
        vec![
            "--port".to_owned(),
            "0".to_owned(),
            "--tls-port".to_owned(),
            port.to_string(),
            "--tls-cert-file".to_owned(),
            path(&server_cert),
            "--tls-key-file".to_owned(),
            path(&server_key),
            "--tls-ca-cert-file".to_owned(),
            path(&ca_file),
            "--tls-auth-clients".to_owned(),
            "yes".to_owned(),
            "--user".to_owned(),
            "tg".to_owned(),
            "on".to_owned(),
            ">s3cret-pw".to_owned(),
            "~*".to_owned(),
            "&*".to_owned(),
            "+@all".to_owned(),
            "--user".to_owned(),
            "default".to_owned(),
            "off".to_owned(),
        ]
    };
    let mut running = None;
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let args = tls_args(port);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if let Some(server) = RedisServer::try_start(dir.path(), port, &args) {
            running = Some(server);
            break;
        }
    }
    let redis_server = running.expect("redis-server with TLS started");
    let settings = |password: &str, client: bool| RedisSettings {
        urls: vec![format!("rediss://127.0.0.1:{}", redis_server.port)],
        username: Some("tg".into()),
        password: Some(tmuxgate::config::Secret::new(password)),
        cluster: false,
        prefix: prefix(),
        tls: tmuxgate::store::redis::RedisTls {
            ca: Some(ca_file.clone()),
            client: client.then(|| (client_cert.clone(), client_key.clone())),
        },
    };
    let store = RedisStore::connect(settings("s3cret-pw", true))
        .await
        .expect("TLS, client certificate and ACL user accepted");
    conformance(&store).await;

    for (password, with_client, what) in [
        ("wr0ng-pw", true, "a wrong password"),
        ("s3cret-pw", false, "no client certificate"),
    ] {
        match RedisStore::connect(settings(password, with_client)).await {
            Ok(_) => panic!("{what} was accepted"),
            Err(e) => assert!(
                !e.to_string().contains("s3cret") && !e.to_string().contains("wr0ng"),
                "{what}: the error shows the password: {e}"
            ),
        }
    }
}
