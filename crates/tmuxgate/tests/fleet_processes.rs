//! Two gateway processes sharing one Redis and the same tmux servers (issue 9): a session
//! made on one is listed and attachable on the other, a destroy on one reaches the other's
//! viewers, and a client whose gateway is killed with SIGKILL continues on the other with
//! the screen intact.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::fleet::{alternating_requests_passed, until_listed};
use common::identity::{closed_with, http};
use common::process::{GatewayProcess, add_user, token};
use common::redis::RedisServer;
use common::{STEP, kill_servers};
use tmuxgate_client::attach_request;
use tmuxgate_client::protocol::Event;
use tmuxgate_client::{Client, ClientOptions};
use tmuxgate_protocol::request::SessionAttach;

/// A directory for a fleet's tmux sockets (`DIR/sock`) and data, under /tmp (socket paths
/// must stay short); the tmux servers under it are killed when the test ends, however it
/// ends.
struct FleetDir(tempfile::TempDir);

impl FleetDir {
    fn new() -> FleetDir {
        let dir = tempfile::Builder::new()
            .prefix("tgf")
            .tempdir_in("/tmp")
            .expect("tempdir");
        FleetDir(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn sockets(&self) -> PathBuf {
        self.path().join("sock")
    }
}

impl Drop for FleetDir {
    fn drop(&mut self) {
        kill_servers(self.0.path());
    }
}

/// The Redis URL, and a key prefix no other test uses: what every gateway of the fleet shares.
fn fleet_env(redis: &RedisServer) -> (String, String) {
    (redis.url(), format!("t{:08x}", rand::random::<u32>()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateway_processes_serve_one_fleet_and_a_client_survives_a_kill_9() {
    let redis = RedisServer::start();
    let dir = FleetDir::new();
    let sockets = dir.sockets();
    let (url, prefix) = fleet_env(&redis);
    let env = [
        ("REDIS_URL", url.as_str()),
        ("REDIS_PREFIX", prefix.as_str()),
        ("ENABLE_AUTH", "false"),
        ("BACKEND_POOL_SIZE", "2"),
    ];
    let mut a = GatewayProcess::start(&sockets, &dir.path().join("a"), &env);
    let b = GatewayProcess::start(&sockets, &dir.path().join("b"), &env);

    // Made on A, typed into on A.
    let on_a = Client::connect(&a.url()).await.expect("connect to A");
    let info = on_a.create_session("fleet", 80, 24).await.expect("create");
    let id = info.session_id.clone();
    let mut typing = on_a.attach_session(&id, 80, 24).await.expect("attach");
    on_a.send_input(typing.channel, b"echo from-a-$((6*7))\r")
        .await
        .expect("input");
    typing
        .wait_for(b"from-a-42", STEP)
        .await
        .expect("echo on A");

    // Listed and attachable on B: its snapshot shows what was typed on A, and what B's
    // viewer types reaches A's.
    let on_b = Client::connect(&b.url()).await.expect("connect to B");
    until_listed(&on_b, &id).await;
    let mut watching = on_b.attach_session(&id, 80, 24).await.expect("attach on B");
    assert!(watching.snapshot, "a first attach starts with a snapshot");
    watching
        .wait_for(b"from-a-42", STEP)
        .await
        .expect("B's snapshot shows A's output");
    on_b.send_input(watching.channel, b"echo from-b-$((7*7))\r")
        .await
        .expect("input on B");
    typing
        .wait_for(b"from-b-49", STEP)
        .await
        .expect("A's viewer sees what B's typed");

    // Destroyed on B: A's viewer hears it.
    let doomed = on_a.create_session("doomed", 80, 24).await.expect("create");
    let _viewer = on_a
        .attach_session(&doomed.session_id, 80, 24)
        .await
        .expect("attach");
    let mut events = on_a.events();
    until_listed(&on_b, &doomed.session_id).await;
    on_b.destroy_session(&doomed.session_id)
        .await
        .expect("destroy on B");
    let reason = tokio::time::timeout(STEP, async {
        loop {
            match events.recv().await.expect("events") {
                Event::SessionClosed {
                    session_id, reason, ..
                } if session_id == doomed.session_id => return reason,
                _ => {}
            }
        }
    })
    .await
    .expect("A's viewer hears of the destroy");
    // Both logs: B's says whether its announcement missed the destroy's deadline.
    let logs = || format!("A:\n{}\nB:\n{}", a.log(), b.log());
    assert_eq!(reason, "destroyed", "{}", logs());
    let listed = on_a.list_sessions().await.expect("list on A");
    assert!(listed.iter().all(|s| s.session_id != doomed.session_id));

    // A dies mid-typing: what was typed before is on the screen B shows; typing goes on.
    on_a.send_input(typing.channel, b"echo before-crash-$((2*3))\r")
        .await
        .expect("input");
    typing
        .wait_for(b"before-crash-6", STEP)
        .await
        .expect("echo");
    // Half a command line typed (and echoed by the shell) when A dies; keystrokes A had not
    // passed on to tmux yet would be lost with it, as with any gateway that dies.
    on_a.send_input(typing.channel, b"echo half-typed")
        .await
        .expect("input");
    typing.wait_for(b"half-typed", STEP).await.expect("echo");
    let offset = typing.end_offset();
    let killed = Instant::now();
    a.kill_9();
    on_a.wait_closed(STEP).await.expect("A's socket drops");

    let moved = Client::connect(&b.url()).await.expect("reconnect to B");
    let mut again = moved
        .attach(SessionAttach {
            resume_from: Some(offset),
            resume_log_id: Some(typing.log_id.clone()),
            target: Some(typing.pane.clone()),
            ..attach_request(&id, 80, 24)
        })
        .await
        .expect("re-attach on B");
    // B's log of the pane started after A's, so A's offset is below it either way; that a
    // log's id is what decides is tested in tests/streaming.rs.
    assert!(
        again.snapshot,
        "an offset of A's log is never resumed on B: a snapshot instead"
    );
    // For the record (docs/store.md), not asserted: from SIGKILL to the snapshot on B.
    println!(
        "failover: re-attached on B {:?} after the kill",
        killed.elapsed()
    );
    again
        .wait_for(b"half-typed", STEP)
        .await
        .expect("the line being typed is on B's screen");
    let screen = again.screen(80, 24);
    for line in ["from-a-42", "from-b-49", "before-crash-6"] {
        assert!(screen.contains(line), "{line} missing from:\n{screen}");
    }
    moved
        .send_input(again.channel, b" && echo after-$((5+5))\r")
        .await
        .expect("input on B");
    again
        .wait_for(b"after-10", STEP)
        .await
        .expect("typing continues on B, on the same command line");
    assert!(
        again.screen(80, 24).contains("half-typed"),
        "{}",
        again.screen(80, 24)
    );
    drop(b);
}

/// The identity-side acceptance points on two gateway processes with authentication on and
/// the same users and keys: a token revoked on A is refused on B, an address blocked on A is
/// dropped by B, and a user's request quota is the fleet's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_blocks_and_limits_hold_across_gateway_processes() {
    let redis = RedisServer::start();
    let dir = FleetDir::new();
    let (sockets, data_a, data_b) = (dir.sockets(), dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&data_a).expect("data dir");
    for (user, role) in [("root", "admin"), ("ann", "operator"), ("bob", "operator")] {
        add_user(&data_a, user, role);
    }
    let (url, prefix) = fleet_env(&redis);
    let env = [
        ("REDIS_URL", url.as_str()),
        ("REDIS_PREFIX", prefix.as_str()),
        ("ENABLE_AUTH", "true"),
        ("RATE_LIMIT_REQUESTS", "10"),
        ("RATE_LIMIT_BURST", "10"),
        ("RATE_LIMIT_WINDOW", "600000"),
        ("RATE_LIMIT_CLOSE_AFTER", "1000"),
    ];
    let a = GatewayProcess::start(&sockets, &data_a, &env);
    // The fleet's users and signing keys, as an operator provisions them.
    std::fs::create_dir_all(&data_b).expect("data dir");
    for file in ["users.toml", "jwt-keys.toml"] {
        std::fs::copy(data_a.join(file), data_b.join(file)).expect("copy identity file");
    }
    let b = GatewayProcess::start(&sockets, &data_b, &env);

    // Revoked on A (logout), refused on B: the open connection closes, a new one is refused.
    let ann = token(&a.url(), "ann").await;
    let on_b = Client::connect_with(&b.url(), ClientOptions::default().token(&ann))
        .await
        .expect("connect to B");
    on_b.list_sessions().await.expect("A's token works on B");
    let bearer = format!("Bearer {ann}");
    let logout = http(
        a.addr,
        "POST",
        "/api/logout",
        &[("Authorization", bearer.as_str())],
        "",
    )
    .await;
    assert_eq!(logout.status, 204, "{logout:?}");
    let (code, reason) = on_b.wait_closed(STEP).await.expect("B closes it");
    assert_eq!(code, 4401, "{reason}");
    let (code, reason) = closed_with(&b.url(), &ann).await;
    assert_eq!(code, 4401, "B refuses the token A revoked: {reason}");

    // Blocked through A's admin API, dropped by B.
    let root = token(&a.url(), "root").await;
    let token_file = dir.path().join("root.token");
    std::fs::write(&token_file, &root).expect("token file");
    let blocked = tokio::process::Command::new(env!("CARGO_BIN_EXE_tmuxgate"))
        .args(["block", "add", "127.0.0.7", "--duration", "10m"])
        .args([
            "--url",
            &format!("http://{}", a.health_addr),
            "--token-file",
        ])
        .arg(&token_file)
        .env_remove("TMUXGATE_TOKEN")
        .output()
        .await
        .expect("tmuxgate block add");
    assert!(blocked.status.success(), "{blocked:?}");
    let deadline = Instant::now() + STEP;
    let from = |ip: &str| ClientOptions::default().bind(ip.parse().expect("address"));
    while Client::connect_with(&b.url(), from("127.0.0.7"))
        .await
        .is_ok()
    {
        assert!(Instant::now() < deadline, "B never dropped 127.0.0.7");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        Client::connect_with(&b.url(), from("127.0.0.8"))
            .await
            .is_ok(),
        "a neighbour is not affected"
    );

    // One quota for bob across both: 30 requests alternating between A and B, 10 pass.
    let bob = token(&a.url(), "bob").await;
    let connect = |url: String| {
        let bob = bob.clone();
        async move {
            Client::connect_with(&url, ClientOptions::default().token(&bob))
                .await
                .expect("connect")
        }
    };
    let (bob_a, bob_b) = (connect(a.url()).await, connect(b.url()).await);
    assert_eq!(
        alternating_requests_passed(&bob_a, &bob_b, 30).await,
        10,
        "the sum across both gateways stays within the quota"
    );
}
