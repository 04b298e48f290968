//! Two gateway processes sharing one Redis and the same tmux servers (issue 9): a session
//! made on one is listed and attachable on the other, a destroy on one reaches the other's
//! viewers, and a client whose gateway is killed with SIGKILL continues on the other with
//! the screen intact.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::process::GatewayProcess;
use common::redis::RedisServer;
use common::{STEP, kill_servers};
use tmuxgate_client::Client;
use tmuxgate_client::attach_request;
use tmuxgate_client::protocol::Event;
use tmuxgate_protocol::request::SessionAttach;

/// Kills the tmux servers under `DIR/sock` when the test ends, however it ends.
struct KillTmuxOnDrop<'a>(&'a Path);

impl Drop for KillTmuxOnDrop<'_> {
    fn drop(&mut self) {
        kill_servers(self.0);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateway_processes_serve_one_fleet_and_a_client_survives_a_kill_9() {
    let redis = RedisServer::start();
    let dir = tempfile::Builder::new()
        .prefix("tgf")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let _tmux = KillTmuxOnDrop(dir.path());
    let sockets = dir.path().join("sock");
    let (url, prefix) = (redis.url(), format!("t{:08x}", rand::random::<u32>()));
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
    assert_eq!(reason, "destroyed", "{}", a.log());
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
    assert!(
        again.snapshot,
        "an offset of A's log is never resumed on B: a snapshot instead"
    );
    // For the record (docs/store.md), not asserted: from SIGKILL to the snapshot on B.
    println!("failover: re-attached on B {:?} after the kill", killed.elapsed());
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
