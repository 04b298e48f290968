//! One tmux control connection per attached session, shared by its viewers, and closed when
//! the last viewer leaves (after `HUB_LINGER`); start-up failures are clear.

mod common;

use std::time::Duration;

use common::{TestServer, eventually};
use tmuxgate_client::attach_request;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_share_one_control_connection_that_closes_after_the_last_leaves() {
    let server = TestServer::start_with(|c| c.hub_linger = Duration::from_millis(200)).await;
    let (a, b) = (server.client().await, server.client().await);
    let session = a.create_session("shared", 80, 24).await.expect("create");
    assert_eq!(
        server.control_clients("shared"),
        0,
        "no viewer, no control connection"
    );

    let att_a = a
        .attach(attach_request(&session.session_id, 80, 24))
        .await
        .expect("attach a");
    let att_b = b
        .attach(attach_request(&session.session_id, 80, 24))
        .await
        .expect("attach b");
    let att_b2 = b
        .attach(attach_request(&session.session_id, 80, 24))
        .await
        .expect("attach b again");
    assert_eq!(
        server.control_clients("shared"),
        1,
        "three viewers, one control connection"
    );

    a.detach(att_a.channel).await.expect("detach a");
    b.detach(att_b.channel).await.expect("detach b");
    assert_eq!(
        server.control_clients("shared"),
        1,
        "a viewer is still attached"
    );
    b.detach(att_b2.channel).await.expect("detach b2");
    eventually("the control connection to close", || {
        (server.control_clients("shared") == 0).then_some(())
    })
    .await;

    // The session itself keeps running, and a new viewer reopens a connection.
    let again = a
        .attach(attach_request(&session.session_id, 80, 24))
        .await
        .expect("attach again");
    assert!(again.snapshot);
    assert_eq!(server.control_clients("shared"), 1);
}

#[tokio::test]
async fn missing_tmux_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = tmuxgate::config::Config::for_tests(dir.path().join("sock"));
    config.tmux_bin = "/nonexistent/tmux".into();
    let err = tmuxgate::Server::start(config)
        .await
        .err()
        .expect("start must fail");
    let message = format!("{err:#}");
    assert!(message.contains("/nonexistent/tmux"), "{message}");
    assert!(message.contains("install"), "{message}");
}

/// tmux 3.3a crashes when a control notification (a new session, say) reaches a control
/// client that is still identifying itself; the gateway serialises its own such events per
/// backend. Concurrent creates and first attaches must never take the backend down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_and_attaches_keep_the_backend_alive() {
    let server = TestServer::start_with(|c| c.hub_linger = Duration::ZERO).await;
    let client = server.client().await;
    for round in 0..25 {
        let first = client
            .create_session(&format!("a{round}"), 80, 24)
            .await
            .expect("create");
        let attach = client.attach(attach_request(&first.session_id, 80, 24));
        let second = format!("b{round}");
        let create = client.create_session(&second, 80, 24);
        let (attached, created) = tokio::join!(attach, create);
        let attached = attached.expect("attach while another session is created");
        created.expect("create while another session is attached");
        client.detach(attached.channel).await.expect("detach");
    }
    let pid = server.tmux(0, &["display", "-p", "#{pid}"]);
    assert!(
        !pid.trim().is_empty(),
        "backend tmux server is still running"
    );
    assert_eq!(client.list_sessions().await.expect("list").len(), 50);
}

/// `tmux detach` typed inside a session ends the gateway's connection to it, not the session:
/// viewers hear `detached`, the session stays listed and can be attached again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_inside_the_session_keeps_it() {
    use tmuxgate_client::protocol::Event;
    let server = TestServer::start().await;
    let client = server.client().await;
    let session = client.create_session("keep", 80, 24).await.expect("create");
    let att = client
        .attach(attach_request(&session.session_id, 80, 24))
        .await
        .expect("attach");
    client
        .send_input(att.channel, b"tmux detach-client\r")
        .await
        .expect("input");
    let closed = client
        .wait_event(|e| matches!(e, Event::SessionClosed { .. }), common::STEP)
        .await
        .expect("session-closed");
    assert!(
        matches!(closed, Event::SessionClosed { ref reason, .. } if reason == "detached"),
        "{closed:?}"
    );
    let listed = client.list_sessions().await.expect("list");
    assert!(listed.iter().any(|s| s.session_id == session.session_id));
    let mut again = client
        .attach(attach_request(&session.session_id, 80, 24))
        .await
        .expect("attach again");
    client
        .send_input(again.channel, b"echo back-$((40+2))\r")
        .await
        .expect("input");
    again
        .wait_for(b"back-42", common::STEP)
        .await
        .expect("output after re-attach");
}

/// An attach that fails after the hub was opened (a pane that is not in the session) must
/// not leave a control connection behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attach_leaves_no_control_connection() {
    let server = TestServer::start_with(|c| c.hub_linger = Duration::from_millis(100)).await;
    let client = server.client().await;
    let session = client
        .create_session("lonely", 80, 24)
        .await
        .expect("create");
    let mut req = attach_request(&session.session_id, 80, 24);
    req.target = Some("%99999".into());
    let err = client.attach(req).await.err().expect("attach must fail");
    assert!(format!("{err:?}").contains("NotFound"), "{err:?}");
    eventually("the control connection to close", || {
        (server.control_clients("lonely") == 0).then_some(())
    })
    .await;
}

/// Snapshots taken at the same time on different backends never mix up their captures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_snapshots_on_two_backends_stay_apart() {
    let server = TestServer::start_with(|c| {
        c.backend_pool_size = 2;
        c.balance_strategy = tmuxgate::backends::BalanceStrategy::RoundRobin;
    })
    .await;
    let writer = server.client().await;
    let mut sessions = Vec::new();
    for name in ["left", "right"] {
        let s = writer.create_session(name, 80, 24).await.expect("create");
        let mut att = writer
            .attach(attach_request(&s.session_id, 80, 24))
            .await
            .expect("attach");
        writer
            .send_input(
                att.channel,
                format!("echo marker-{name}-$((1+1))\r").as_bytes(),
            )
            .await
            .expect("input");
        att.wait_for(format!("marker-{name}-2").as_bytes(), common::STEP)
            .await
            .expect("marker");
        sessions.push((name, s));
    }
    assert_ne!(
        sessions[0].1.backend, sessions[1].1.backend,
        "round-robin uses both backends"
    );
    for _ in 0..10 {
        let viewer = server.client().await;
        let attaches = sessions
            .iter()
            .map(|(_, s)| viewer.attach(attach_request(&s.session_id, 80, 24)));
        let attached = futures_util::future::join_all(attaches).await;
        for ((name, _), att) in sessions.iter().zip(attached) {
            let mut att = att.expect("attach");
            att.wait_until(|t| t.snapshots() > 0, common::STEP)
                .await
                .expect("snapshot");
            let screen = att.screen(80, 24);
            assert!(
                screen.contains(&format!("marker-{name}-2")),
                "{name}: {screen}"
            );
            let other = if *name == "left" { "right" } else { "left" };
            assert!(
                !screen.contains(&format!("marker-{other}-2")),
                "{name} shows {other}: {screen}"
            );
        }
    }
}
