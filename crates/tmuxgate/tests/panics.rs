//! Crash containment (issue 10): a panic injected into a running gateway's task
//! (`tmuxgate::supervise::faults`) ends that task only. A session's hub is cleaned up after
//! and attaching again works; the fleet's event task starts again with its channels and
//! misses nothing.

mod common;

use common::fleet::{prefix, until_listed};
use common::redis::RedisServer;
use common::{STEP, TestServer, eventually};
use tmuxgate::config::Secret;
use tmuxgate::supervise::faults;
use tmuxgate_client::attach_request;
use tmuxgate_client::protocol::Event;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_sessions_hub_ends_that_hub_only_and_attaching_again_works() {
    let server = TestServer::start().await;
    let (client, neighbour) = (server.client().await, server.client().await);
    let hit = client.create_session("hit", 80, 24).await.expect("create");
    let spared = neighbour
        .create_session("spared", 80, 24)
        .await
        .expect("create");
    let att = client
        .attach(attach_request(&hit.session_id, 80, 24))
        .await
        .expect("attach");
    let mut other = neighbour
        .attach(attach_request(&spared.session_id, 80, 24))
        .await
        .expect("attach");

    // The hub panics when the next input wakes it.
    let target = format!("hub:{}", hit.session_id);
    faults::arm(target.clone());
    client.send_input(att.channel, b"x").await.expect("input");
    let closed = client
        .wait_event(|e| matches!(e, Event::SessionClosed { .. }), STEP)
        .await
        .expect("the viewer is told");
    assert!(
        matches!(closed, Event::SessionClosed { ref reason, channel, .. }
            if reason == "detached" && channel == att.channel),
        "{closed:?}"
    );
    assert!(!faults::is_armed(&target), "the fault fired");
    // The panicked hub's tmux client was stopped, as at a normal end.
    eventually("the control client to go", || {
        (server.control_clients("hit") == 0).then_some(())
    })
    .await;

    // The neighbour never noticed.
    neighbour
        .send_input(other.channel, b"echo spared-$((40+2))\r")
        .await
        .expect("input");
    other.wait_for(b"spared-42", STEP).await.expect("echo");

    // The session lives on, and a new hub serves it.
    let listed = client.list_sessions().await.expect("list");
    assert!(listed.iter().any(|s| s.session_id == hit.session_id));
    let mut again = client
        .attach(attach_request(&hit.session_id, 80, 24))
        .await
        .expect("attach again");
    client
        .send_input(again.channel, b"echo again-$((40+2))\r")
        .await
        .expect("input");
    again.wait_for(b"again-42", STEP).await.expect("echo");
    assert_eq!(server.control_clients("hit"), 1, "one hub again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_fleet_task_loses_no_event() {
    let redis = RedisServer::start();
    let prefix = prefix();
    let (url, key_prefix) = (redis.url(), prefix.clone());
    let a = TestServer::start_with(move |c| {
        c.redis_url = Some(Secret::new(url));
        c.redis_prefix = key_prefix;
    })
    .await;
    // B shares A's tmux servers, so it can serve what A creates.
    let (url, sockets) = (redis.url(), a.dir.join("sock"));
    let b = TestServer::start_with(move |c| {
        c.redis_url = Some(Secret::new(url));
        c.redis_prefix = prefix;
        c.tmux_socket_path = sockets;
    })
    .await;
    let (on_a, on_b) = (a.client().await, b.client().await);

    // B's fleet task panics on the next event it reads: A's announcement of this session.
    let target = format!("fleet:{}", b.handle.instance());
    faults::arm(target.clone());
    let first = on_a.create_session("first", 80, 24).await.expect("create");
    // Started again (after 1 s), it reads the sessions afresh, as after a gap.
    until_listed(&on_b, &first.session_id).await;
    assert!(!faults::is_armed(&target), "the fault fired");
    // Its subscription survived: the next announcement arrives as any other.
    let second = on_a.create_session("second", 80, 24).await.expect("create");
    until_listed(&on_b, &second.session_id).await;
    let mut att = on_b
        .attach(attach_request(&second.session_id, 80, 24))
        .await
        .expect("B serves A's session");
    on_b.send_input(att.channel, b"echo fleet-$((40+2))\r")
        .await
        .expect("input");
    att.wait_for(b"fleet-42", STEP).await.expect("echo");
}
