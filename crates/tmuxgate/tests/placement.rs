//! Placement of new sessions over three real tmux backends: round-robin order, pinning by
//! backend id and by labels (`BACKENDS_FILE`), the `session.create.placement` permission,
//! and draining through the admin API.

mod common;

use std::time::Duration;

use common::identity::{AuthServer, http};
use tmuxgate::backends::BalanceStrategy;
use tmuxgate_client::Client;
use tmuxgate_client::protocol::ErrorCode;
use tmuxgate_client::protocol::request::{Request, SessionCreate, SessionOptions};

/// Three backends: tmux-0 plain, tmux-1 `gpu`+`fast`, tmux-2 `gpu`.
const BACKENDS: &str = "[[backend]]\n\n[[backend]]\nlabels = [\"gpu\", \"fast\"]\n\n[[backend]]\nweight = 2\nlabels = [\"gpu\"]\n";

async fn start(strategy: BalanceStrategy) -> (AuthServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("backends.toml");
    std::fs::write(&file, BACKENDS).expect("backends file");
    let users = [("root", "admin"), ("alice", "operator"), ("bob", "limited")];
    let roles = dir.path().join("roles.toml");
    std::fs::write(
        &roles,
        "[roles.limited]\npermissions = [\"session.create\", \"session.list.own\"]\n",
    )
    .expect("roles file");
    let server = AuthServer::start(&users, |c| {
        c.backends_file = Some(file.clone());
        c.roles_file = Some(roles.clone());
        c.balance_strategy = strategy;
        c.max_sessions_per_user = 0;
    })
    .await;
    (server, dir)
}

/// `session-create` with `options`; the backend id from `backendInfo`, or the error code.
async fn create(client: &Client, name: &str, options: SessionOptions) -> Result<String, ErrorCode> {
    let request = Request::SessionCreate(SessionCreate {
        name: name.into(),
        options,
    });
    let response = client.request(request).await.expect("a response");
    match response.success {
        true => Ok(response.backend_info.expect("backendInfo").id),
        false => Err(response.error_code.expect("an error code")),
    }
}

fn pinned(backend: Option<&str>, labels: &[&str]) -> SessionOptions {
    SessionOptions {
        backend: backend.map(str::to_owned),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        ..SessionOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_places_thirty_sessions_in_exact_turn() {
    let (server, _dir) = start(BalanceStrategy::RoundRobin).await;
    let alice = server.client_as("alice").await;
    for i in 0..30 {
        let id = create(&alice, &format!("rr-{i}"), SessionOptions::default()).await;
        assert_eq!(
            id.as_deref(),
            Ok(format!("tmux-{}", i % 3).as_str()),
            "creation {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinning_by_id_and_labels_and_its_permission() {
    let (server, _dir) = start(BalanceStrategy::Performance).await;
    let alice = server.client_as("alice").await;
    for i in 0..3 {
        let by_id = create(&alice, &format!("id-{i}"), pinned(Some("tmux-2"), &[])).await;
        assert_eq!(by_id.as_deref(), Ok("tmux-2"));
        let fast = create(&alice, &format!("fast-{i}"), pinned(None, &["gpu", "fast"])).await;
        assert_eq!(fast.as_deref(), Ok("tmux-1"), "only tmux-1 has both labels");
        let gpu = create(&alice, &format!("gpu-{i}"), pinned(None, &["gpu"])).await;
        assert!(matches!(gpu.as_deref(), Ok("tmux-1" | "tmux-2")), "{gpu:?}");
    }
    let none = create(&alice, "tpu", pinned(None, &["tpu"])).await;
    assert_eq!(
        none,
        Err(ErrorCode::Unavailable),
        "no backend has the label"
    );
    let missing = create(&alice, "nine", pinned(Some("tmux-9"), &[])).await;
    assert_eq!(missing, Err(ErrorCode::Unavailable));
    let malformed = create(&alice, "bad", pinned(Some("../x"), &[])).await;
    assert_eq!(malformed, Err(ErrorCode::InvalidRequest));

    // A role with session.create but not session.create.placement may create, not pin.
    let bob = server.client_as("bob").await;
    let refused = create(&bob, "bob-pinned", pinned(Some("tmux-0"), &[])).await;
    assert_eq!(refused, Err(ErrorCode::Forbidden));
    let refused = create(&bob, "bob-labels", pinned(None, &["gpu"])).await;
    assert_eq!(refused, Err(ErrorCode::Forbidden));
    assert!(
        create(&bob, "bob-free", SessionOptions::default())
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_backend_takes_no_new_session_and_keeps_its_own() {
    let (server, _dir) = start(BalanceStrategy::RoundRobin).await;
    let alice = server.client_as("alice").await;
    let kept = alice.create_session("kept", 80, 24).await.expect("create");
    assert_eq!(kept.backend, "tmux-0");
    let root = server.token_for("root", Duration::from_secs(600)).await;
    let bearer = format!("Bearer {root}");
    let admin = [("Authorization", bearer.as_str())];
    let addr = server.server.health_addr;

    let drained = http(addr, "POST", "/admin/backends/tmux-0/drain", &admin, "").await;
    assert_eq!(drained.status, 200, "{}", drained.body);
    assert!(
        drained.body.contains("\"draining\":true"),
        "{}",
        drained.body
    );
    let operator = server.token_for("alice", Duration::from_secs(600)).await;
    let bearer_alice = format!("Bearer {operator}");
    let refused = http(
        addr,
        "POST",
        "/admin/backends/tmux-1/drain",
        &[("Authorization", bearer_alice.as_str())],
        "",
    )
    .await;
    assert_eq!(refused.status, 403, "an operator cannot drain");
    let unknown = http(addr, "POST", "/admin/backends/tmux-7/drain", &admin, "").await;
    assert_eq!(unknown.status, 404);

    for i in 0..12 {
        let id = create(&alice, &format!("d-{i}"), SessionOptions::default()).await;
        assert!(
            matches!(id.as_deref(), Ok("tmux-1" | "tmux-2")),
            "{i}: {id:?}"
        );
    }
    let pinned_there = create(&alice, "pinned", pinned(Some("tmux-0"), &[])).await;
    assert_eq!(
        pinned_there,
        Err(ErrorCode::Unavailable),
        "pinning cannot bypass a drain"
    );

    // The session already there still works.
    let mut att = alice
        .attach_session(&kept.session_id, 80, 24)
        .await
        .expect("attach to the drained backend's session");
    alice
        .send_input(att.channel, b"echo still-$((20+22))\r")
        .await
        .expect("input");
    att.wait_for(b"still-42", common::STEP)
        .await
        .expect("output");

    let list = http(addr, "GET", "/admin/backends", &admin, "").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("\"id\":\"tmux-0\""), "{}", list.body);
    assert!(
        list.body.contains("\"labels\":[\"gpu\",\"fast\"]"),
        "{}",
        list.body
    );
    let health = http(addr, "GET", "/health", &[], "").await;
    assert!(
        health.body.contains("\"draining\":true") && health.body.contains("\"weight\":2"),
        "{}",
        health.body
    );
    let metrics = http(
        addr,
        "GET",
        "/metrics",
        &[("Authorization", bearer.as_str())],
        "",
    )
    .await;
    assert!(
        metrics
            .body
            .contains("tmuxgate_backend_draining{backend=\"tmux-0\"} 1"),
        "{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains("tmuxgate_backend_info{backend=\"tmux-1\",labels=\"gpu,fast\"} 1"),
        "{}",
        metrics.body
    );

    let back = http(addr, "POST", "/admin/backends/tmux-0/undrain", &admin, "").await;
    assert_eq!(back.status, 200, "{}", back.body);
    let mut landed = Vec::new();
    for i in 0..3 {
        landed.push(create(&alice, &format!("u-{i}"), SessionOptions::default()).await);
    }
    assert!(landed.contains(&Ok("tmux-0".to_owned())), "{landed:?}");

    let kinds = ["BACKEND_DRAINED", "BACKEND_UNDRAINED"];
    let audited = common::audit::lines_when(&server.server, |lines| {
        kinds
            .iter()
            .all(|k| lines.iter().any(|l| l["eventType"] == *k))
    })
    .await;
    for kind in kinds {
        let line = audited.iter().find(|l| l["eventType"] == kind).expect(kind);
        assert_eq!(line["metadata"]["backend"], "tmux-0", "{line}");
        assert_eq!(line["metadata"]["user"], "root", "{line}");
    }
}

/// Runs `tmuxgate backend ARGS` against `server`'s health port as the admin `root`.
async fn backend_cli(server: &AuthServer, args: &[&str]) -> (bool, String) {
    common::identity::admin_cli(server, "backend", args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_cli_lists_drains_and_undrains() {
    let (server, _dir) = start(BalanceStrategy::RoundRobin).await;
    let (ok, out) = backend_cli(&server, &["drain", "tmux-2"]).await;
    assert!(ok && out.contains("drained tmux-2"), "{out}");
    let (ok, out) = backend_cli(&server, &["list"]).await;
    assert!(ok, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("tmux-2"))
        .expect("tmux-2 listed");
    assert!(
        line.contains("draining") && line.contains("weight 2") && line.contains("[gpu]"),
        "{line}"
    );
    let (ok, out) = backend_cli(&server, &["undrain", "tmux-2"]).await;
    assert!(ok && out.contains("undrained tmux-2"), "{out}");
    let (ok, out) = backend_cli(&server, &["list", "--json"]).await;
    assert!(ok && !out.contains("\"draining\":true"), "{out}");
    let (ok, out) = backend_cli(&server, &["drain", "tmux-5"]).await;
    assert!(!ok && out.contains("404"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incomplete_ssh_backend_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("backends.toml");
    std::fs::write(&file, "[[backend]]\n\n[[backend]]\nkind = \"ssh\"\n").expect("file");
    let mut config = tmuxgate::config::Config::for_tests(dir.path().join("sock"));
    config.backends_file = Some(file);
    let err = tmuxgate::Server::start(config)
        .await
        .err()
        .expect("start must fail");
    let message = format!("{err:#}");
    assert!(message.contains("BACKENDS_FILE"), "{message}");
    assert!(
        message.contains("backend 1: kind \"ssh\" needs host"),
        "{message}"
    );
}
