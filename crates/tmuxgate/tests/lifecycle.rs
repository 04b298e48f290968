//! Session lifecycle against real tmux: destroy, shell exit, a killed tmux server, gateway
//! restart, session-name and `cwd` validation, the connection cap and idle keepalive.

mod common;

use std::time::{Duration, Instant};

use common::{KillServersOnDrop, STEP, TestServer, http_get, tmux_succeeds};
use tmuxgate_client::protocol::request::{SessionCreate, SessionOptions};
use tmuxgate_client::protocol::{ErrorCode, Event};
use tmuxgate_client::{Client, ClientError};

/// The error code of a failed request, or a panic naming what succeeded instead.
fn code_of<T>(result: Result<T, ClientError>) -> ErrorCode {
    match result {
        Err(ClientError::Server { code, .. }) => code,
        Err(other) => panic!("expected an error response, got {other:?}"),
        Ok(_) => panic!("expected an error response, got success"),
    }
}

/// Waits for the `session-closed` of `session_id` and returns its channel and reason.
async fn session_closed(client: &Client, session_id: &str) -> (u32, String) {
    let matches =
        |e: &Event| matches!(e, Event::SessionClosed { session_id: s, .. } if s == session_id);
    match client
        .wait_event(matches, STEP)
        .await
        .expect("session-closed")
    {
        Event::SessionClosed {
            channel, reason, ..
        } => (channel, reason),
        other => unreachable!("{other:?}"),
    }
}

/// Polls `session-list` until it no longer holds `session_id`.
async fn wait_until_unlisted(client: &Client, session_id: &str) {
    let deadline = Instant::now() + STEP;
    loop {
        let list = client.list_sessions().await.expect("session-list");
        if list.iter().all(|s| s.session_id != session_id) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{session_id} still listed: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_notifies_every_viewer() {
    let server = TestServer::start().await;
    let (a, b) = (server.client().await, server.client().await);
    let id = a
        .create_session("doomed", 80, 24)
        .await
        .expect("create")
        .session_id;
    let att_a = a.attach_session(&id, 80, 24).await.expect("attach a");
    let att_b = b.attach_session(&id, 80, 24).await.expect("attach b");

    a.destroy_session(&id).await.expect("destroy");
    let listed = a.list_sessions().await.expect("list");
    assert!(
        listed.iter().all(|s| s.session_id != id),
        "listed right after destroy: {listed:?}"
    );
    assert_eq!(
        session_closed(&a, &id).await,
        (att_a.channel, "destroyed".to_string())
    );
    assert_eq!(
        session_closed(&b, &id).await,
        (att_b.channel, "destroyed".to_string())
    );

    assert_eq!(
        code_of(a.resize(att_a.channel, 100, 30).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code_of(b.attach_session(&id, 80, 24).await),
        ErrorCode::NotFound
    );
    assert!(
        !tmux_succeeds(&server.socket(0), &["has-session", "-t", "=doomed"]),
        "tmux session survived"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_exit_closes_the_session() {
    let server = TestServer::start().await;
    let (a, b) = (server.client().await, server.client().await);
    let id = a
        .create_session("leaving", 80, 24)
        .await
        .expect("create")
        .session_id;
    let mut att_a = a.attach_session(&id, 80, 24).await.expect("attach a");
    let att_b = b.attach_session(&id, 80, 24).await.expect("attach b");
    a.send_input(att_a.channel, b"echo bye-$((6*7))\r")
        .await
        .expect("input");
    att_a.wait_for(b"bye-42", STEP).await.expect("shell runs");

    a.send_input(att_a.channel, b"exit\r").await.expect("exit");
    assert_eq!(
        session_closed(&a, &id).await,
        (att_a.channel, "exited".to_string())
    );
    assert_eq!(
        session_closed(&b, &id).await,
        (att_b.channel, "exited".to_string())
    );
    wait_until_unlisted(&b, &id).await;
    assert_eq!(
        code_of(b.attach_session(&id, 80, 24).await),
        ErrorCode::NotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_tmux_server_is_reported_and_survived() {
    let server = TestServer::start_with(|c| c.backend_pool_size = 2).await;
    let (a, b) = (server.client().await, server.client().await);
    let victim = a.create_session("victim", 80, 24).await.expect("create");
    let index: usize = victim
        .backend
        .strip_prefix("tmux-")
        .and_then(|i| i.parse().ok())
        .expect("backend id");
    let att_a = a
        .attach_session(&victim.session_id, 80, 24)
        .await
        .expect("attach a");
    let att_b = b
        .attach_session(&victim.session_id, 80, 24)
        .await
        .expect("attach b");

    let pid = server.tmux(index, &["display-message", "-p", "#{pid}"]);
    let killed = std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -9 {pid}");

    for (client, channel) in [(&a, att_a.channel), (&b, att_b.channel)] {
        let lost = |e: &Event| matches!(e, Event::BackendLost { session_id, .. } if *session_id == victim.session_id);
        let event = client.wait_event(lost, STEP).await.expect("backend-lost");
        let expected = Event::BackendLost {
            session_id: victim.session_id.clone(),
            channel,
            backend: victim.backend.clone(),
        };
        assert_eq!(event, expected);
    }
    wait_until_unlisted(&a, &victim.session_id).await;
    // `unavailable` while the server is down; once its health monitor restarted it (after
    // RESTART_BACKOFF) and its listing confirmed the session gone, `not_found`.
    let gone = [ErrorCode::Unavailable, ErrorCode::NotFound];
    let attach = code_of(b.attach_session(&victim.session_id, 80, 24).await);
    assert!(gone.contains(&attach), "{attach:?}");
    let destroy = code_of(b.destroy_session(&victim.session_id).await);
    assert!(gone.contains(&destroy), "{destroy:?}");

    a.heartbeat().await.expect("heartbeat after the loss");
    let (status, body) = http_get(server.health_addr, "/health").await;
    assert_eq!(status, 200, "{body}");
    // One create per backend: each lands on the survivor or, once restarted, the dead
    // server's successor. Both must work end to end.
    for name in ["after-1", "after-2"] {
        let info = a
            .create_session(name, 80, 24)
            .await
            .expect("create after the loss");
        let mut att = a
            .attach_session(&info.session_id, 80, 24)
            .await
            .expect("attach after the loss");
        a.send_input(att.channel, b"echo alive-$((6*7))\r")
            .await
            .expect("input");
        att.wait_for(b"alive-42", STEP)
            .await
            .expect("new session works");
    }
    assert_eq!(server.handle.status().sessions, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_gateway_keeps_sessions() {
    let server = TestServer::start().await;
    let _cleanup = KillServersOnDrop(server.dir.clone());
    let client = server.client().await;
    let before = client
        .create_session("keeper", 80, 24)
        .await
        .expect("create");
    let mut att = client
        .attach_session(&before.session_id, 80, 24)
        .await
        .expect("attach");
    client
        .send_input(att.channel, b"echo kept-$((6*7))\r")
        .await
        .expect("input");
    att.wait_for(b"kept-42", STEP).await.expect("output");

    let dir = server.stop().await;
    let (code, _) = client
        .wait_closed(STEP)
        .await
        .expect("closed by the shutdown");
    assert_eq!(code, 1001);

    let server = TestServer::start_in(dir, |_| {}).await.owning_dir();
    let client = server.client().await;
    let list = client.list_sessions().await.expect("list");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        (list[0].session_id.as_str(), list[0].name.as_str()),
        (before.session_id.as_str(), "keeper")
    );
    let mut att = client
        .attach_session(&before.session_id, 80, 24)
        .await
        .expect("attach after restart");
    assert!(att.snapshot);
    att.wait_until(|t| !t.awaiting_snapshot(), STEP)
        .await
        .expect("snapshot");
    assert!(
        att.screen(80, 24).contains("kept-42"),
        "snapshot lost the output:\n{}",
        att.screen(80, 24)
    );
    client
        .send_input(att.channel, b"echo again-$((6*7))\r")
        .await
        .expect("input");
    att.wait_for(b"again-42", STEP)
        .await
        .expect("output after restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_names_and_cwd_are_validated() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let canary = std::path::Path::new("/tmp/pwned");
    let _ = std::fs::remove_file(canary);
    let create = |name: &str, cwd: Option<&str>| {
        let options = SessionOptions {
            cols: None,
            rows: None,
            cwd: cwd.map(str::to_string),
            ..SessionOptions::default()
        };
        client.create_session_with(SessionCreate {
            name: name.into(),
            options,
        })
    };
    let too_long = "a".repeat(65);
    for name in [
        "../x",
        "a b",
        "#(touch /tmp/pwned)",
        "",
        too_long.as_str(),
        "a.b",
        "a:b",
        "é",
    ] {
        assert_eq!(
            code_of(create(name, None).await),
            ErrorCode::InvalidRequest,
            "name {name:?}"
        );
    }
    for cwd in [
        "/tmp/#(touch /tmp/pwned)",
        "/tmp/#{pane_id}",
        "relative/dir",
        "/tmp/a\nb",
    ] {
        assert_eq!(
            code_of(create("cwd-test", Some(cwd)).await),
            ErrorCode::InvalidRequest,
            "cwd {cwd:?}"
        );
    }
    // `[A-Za-z0-9_-]{1,64}` admits a leading dash: it must be taken as a name, never a flag.
    let dash = create("-R", None).await.expect("`-R` is a valid name");
    assert_eq!(dash.name, "-R");
    assert!(tmux_succeeds(
        &server.socket(0),
        &["has-session", "-t", "=-R"]
    ));
    create(&"a".repeat(64), None)
        .await
        .expect("64 characters are allowed");
    create("twin", None).await.expect("create");
    assert_eq!(code_of(create("twin", None).await), ErrorCode::Conflict);
    assert!(!canary.exists(), "a name or cwd was expanded by tmux");

    let dir = tempfile::Builder::new()
        .prefix("tgcwd")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let path = std::fs::canonicalize(dir.path()).expect("canonical path");
    let path = path.to_str().expect("UTF-8 path");
    let info = create("in-dir", Some(path)).await.expect("create with cwd");
    let mut att = client
        .attach_session(&info.session_id, 80, 24)
        .await
        .expect("attach");
    client
        .send_input(att.channel, b"printf 'cwd=%s\\n' \"$(pwd)\"\r")
        .await
        .expect("input");
    att.wait_for(format!("cwd={path}\r\n").as_bytes(), STEP)
        .await
        .expect("shell started in cwd");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_refused() {
    let server = TestServer::start_with(|c| c.max_connections = 2).await;
    let first = server.client().await;
    let second = server.client().await;
    match Client::connect(&server.url()).await {
        Err(ClientError::Connect {
            status: Some(503), ..
        }) => {}
        other => panic!(
            "third connection: expected HTTP 503, got {:?}",
            other.map(|_| "a connection")
        ),
    }
    second
        .heartbeat()
        .await
        .expect("admitted connections keep working");
    let (_, metrics) = http_get(server.health_addr, "/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "tmuxgate_connections_refused_total 1"),
        "{metrics}"
    );

    first.close().await.expect("close");
    common::eventually("the slot to be released", || {
        (server.handle.status().connections == 1).then_some(())
    })
    .await;
    server
        .client()
        .await
        .heartbeat()
        .await
        .expect("a freed slot is reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_keep_clients_alive_and_silent_ones_are_closed() {
    let server = TestServer::start_with(|c| {
        c.ping_interval = Duration::from_secs(1);
        c.idle_timeout = Duration::from_millis(2500);
    })
    .await;
    let started = Instant::now();
    let live = server.client().await;
    let silent = Client::connect_paused(&server.url())
        .await
        .expect("connect");
    common::eventually("two connections", || {
        (server.handle.status().connections == 2).then_some(())
    })
    .await;

    let deadline = Instant::now() + STEP;
    while server.handle.status().connections != 1 {
        assert!(
            Instant::now() < deadline,
            "the silent client was never closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_millis(2500),
        "closed before the idle timeout"
    );
    // Stay past twice the idle timeout on pongs alone, then prove the live client still works.
    tokio::time::sleep(Duration::from_millis(5500).saturating_sub(started.elapsed())).await;
    assert_eq!(live.closed(), None);
    live.heartbeat()
        .await
        .expect("a client answering pings stays connected");

    silent.resume_reading();
    let (code, reason) = silent
        .wait_closed(STEP)
        .await
        .expect("silent client closed");
    assert!(
        code == 4008 || code == 1006,
        "unexpected close {code} {reason}"
    );
}
