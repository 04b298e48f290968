//! Backend resilience against real tmux, three local backends: a server killed with
//! `kill -9` is announced, bypassed and restarted; a server stopped with `kill -STOP` costs
//! no request more than its deadline, opens its circuit breaker, and closes it again once it
//! answers.

mod common;

use std::time::{Duration, Instant};

use common::audit::lines_when;
use common::{STEP, TestServer, http_get};
use serde_json::Value;
use tmuxgate::backends::BalanceStrategy;
use tmuxgate::backends::health::BACKEND_CALL_TIMEOUT;
use tmuxgate_client::protocol::{ErrorCode, Event};
use tmuxgate_client::{Client, ClientError};

/// Slack for scheduling on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(500);

/// The index in `tmux-N`.
fn index_of(backend: &str) -> usize {
    backend
        .strip_prefix("tmux-")
        .and_then(|i| i.parse().ok())
        .expect("backend id")
}

/// The pid of backend `index`'s tmux server.
fn server_pid(server: &TestServer, index: usize) -> String {
    let pid = server.tmux(index, &["display-message", "-p", "#{pid}"]);
    let pid = pid.trim().to_owned();
    assert!(
        pid.parse::<u32>().is_ok(),
        "pid of backend {index}: {pid:?}"
    );
    pid
}

fn signal(signal: &str, pid: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, pid])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid}");
}

/// Sends `SIGCONT` on drop, so a failing test never leaves a stopped tmux behind.
struct ContinueOnDrop(String);

impl Drop for ContinueOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &self.0])
            .status();
    }
}

/// Backend `id` in `/health`.
async fn health_of(server: &TestServer, id: &str) -> Value {
    let (_, body) = http_get(server.health_addr, "/health").await;
    let status: Value = serde_json::from_str(&body).expect("health JSON");
    status["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .find(|b| b["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} not in {body}"))
}

/// Polls `/health` until backend `id` satisfies `done`, for at most `STEP`.
async fn wait_health(server: &TestServer, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + STEP;
    loop {
        let backend = health_of(server, id).await;
        if done(&backend) {
            return backend;
        }
        assert!(Instant::now() < deadline, "{id} never got there: {backend}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn code_of<T>(result: &Result<T, ClientError>) -> Option<ErrorCode> {
    match result {
        Err(ClientError::Server { code, .. }) => Some(*code),
        _ => None,
    }
}

/// Creates sessions until one lands on `backend` (at most one full round-robin turn and
/// one more); returns its id.
async fn create_on(client: &Client, backend: &str, prefix: &str) -> String {
    for n in 0..6 {
        let info = client
            .create_session(&format!("{prefix}-{n}"), 80, 24)
            .await
            .expect("create");
        if info.backend == backend {
            return info.session_id;
        }
    }
    panic!("no new session landed on {backend}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_backend_is_announced_bypassed_and_restarted() {
    let server = TestServer::start_with(|c| {
        c.backend_pool_size = 3;
        // Round-robin, so that a restarted backend's turn comes predictably.
        c.balance_strategy = BalanceStrategy::RoundRobin;
        c.health_check_interval = Duration::from_millis(100);
        // Long enough to look at the dead backend before it is back.
        c.restart_backoff = Duration::from_millis(1500);
    })
    .await;
    let client = server.client().await;
    let victim = client
        .create_session("victim", 80, 24)
        .await
        .expect("create");
    let index = index_of(&victim.backend);
    let mut att = client
        .attach_session(&victim.session_id, 80, 24)
        .await
        .expect("attach");
    client
        .send_input(att.channel, b"echo ready-$((1+1))\r")
        .await
        .expect("input");
    att.wait_for(b"ready-2", STEP).await.expect("live");

    let killed_at = Instant::now();
    signal("-9", &server_pid(&server, index));
    let lost = |e: &Event| matches!(e, Event::BackendLost { session_id, .. } if *session_id == victim.session_id);
    let event = client
        .wait_event(lost, Duration::from_secs(1))
        .await
        .expect("backend-lost within 1 s");
    let detected = killed_at.elapsed();
    eprintln!("backend-lost {detected:?} after kill -9");
    assert_eq!(
        event,
        Event::BackendLost {
            session_id: victim.session_id.clone(),
            channel: att.channel,
            backend: victim.backend.clone(),
        }
    );

    let dead = wait_health(&server, &victim.backend, |b| b["state"] == "down").await;
    assert_eq!(dead["health"], "unhealthy", "{dead}");
    let (_, body) = http_get(server.health_addr, "/health").await;
    let status: Value = serde_json::from_str(&body).expect("health JSON");
    assert_eq!(status["status"], "degraded", "{body}");
    for other in status["backends"].as_array().expect("backends") {
        if other["id"] != victim.backend.as_str() {
            assert_eq!(
                (&other["state"], &other["breaker"]),
                (&"up".into(), &"closed".into())
            );
            assert!(other["latencyEwmaMs"].is_f64(), "probed: {other}");
        }
    }
    for n in 0..4 {
        let info = client
            .create_session(&format!("during-{n}"), 80, 24)
            .await
            .expect("create while a backend is down");
        assert_ne!(info.backend, victim.backend, "placed on the dead backend");
    }
    let listed = client.list_sessions().await.expect("list");
    assert!(listed.iter().all(|s| s.session_id != victim.session_id));

    let back = wait_health(&server, &victim.backend, |b| b["state"] == "up").await;
    assert_eq!(back["restarts"], 1, "{back}");
    let restarted_at = killed_at.elapsed();
    eprintln!("backend up again {restarted_at:?} after kill -9");
    let id = create_on(&client, &victim.backend, "after").await;
    let mut att = client.attach_session(&id, 80, 24).await.expect("attach");
    client
        .send_input(att.channel, b"echo alive-$((6*7))\r")
        .await
        .expect("input");
    att.wait_for(b"alive-42", STEP)
        .await
        .expect("the restarted backend works");
    lines_when(&server, |lines| {
        lines.iter().any(|l| {
            l["eventType"] == "BACKEND_STATE_CHANGED"
                && l["metadata"]["reason"] == "restarted"
                && l["metadata"]["backend"] == victim.backend.as_str()
        })
    })
    .await;
    let (_, metrics) = http_get(server.health_addr, "/metrics").await;
    let restarts = format!(
        "tmuxgate_backend_restarts_total{{backend=\"{}\"}} 1\n",
        victim.backend
    );
    assert!(metrics.contains(&restarts), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_backend_fails_fast_and_its_breaker_recovers() {
    let server = TestServer::start_with(|c| {
        c.backend_pool_size = 3;
        // Round-robin, so that a restarted backend's turn comes predictably.
        c.balance_strategy = BalanceStrategy::RoundRobin;
        c.health_check_interval = Duration::from_millis(100);
        c.health_probe_timeout = Duration::from_millis(200);
        c.breaker_failures = 3;
        c.breaker_cooldown = Duration::from_millis(500);
    })
    .await;
    let client = server.client().await;
    let frozen = client
        .create_session("frozen", 80, 24)
        .await
        .expect("create");
    for name in ["second", "third"] {
        client.create_session(name, 80, 24).await.expect("create");
    }
    let index = index_of(&frozen.backend);
    let pid = server_pid(&server, index);
    let _cont = ContinueOnDrop(pid.clone());
    let deadline = BACKEND_CALL_TIMEOUT + SLACK;

    signal("-STOP", &pid);
    // Before the breaker opens, all at once (the attach and the create also queue behind
    // each other on the stopped server): each ends within its deadline, whatever it answers. The create is the
    // stopped backend's round-robin turn.
    // One client each: a connection answers its requests in order.
    let (lister, attacher, creator) = (
        server.client().await,
        server.client().await,
        server.client().await,
    );
    let started = Instant::now();
    let (list, attach, create) = tokio::join!(
        async { (lister.list_sessions().await, started.elapsed()) },
        async {
            let attach = attacher.attach_session(&frozen.session_id, 80, 24).await;
            (attach, started.elapsed())
        },
        async {
            (
                creator.create_session("early", 80, 24).await,
                started.elapsed(),
            )
        },
    );
    eprintln!(
        "against a stopped backend: list {:?}, attach {:?} ({:?}), create {:?} ({:?})",
        list.1,
        attach.1,
        code_of(&attach.0),
        create.1,
        code_of(&create.0),
    );
    assert!(
        list.0.is_ok() && list.1 < Duration::from_millis(250),
        "{:?}",
        list.1
    );
    assert!(attach.0.is_err(), "attached to a stopped server");
    assert!(attach.1 < deadline, "attach took {:?}", attach.1);
    assert!(create.1 < deadline, "create took {:?}", create.1);
    if let Ok(info) = &create.0 {
        assert_ne!(info.backend, frozen.backend, "created on a stopped server");
    }

    let open = wait_health(&server, &frozen.backend, |b| b["breaker"] == "open").await;
    assert_eq!(open["health"], "unhealthy", "{open}");
    let (_, body) = http_get(server.health_addr, "/health").await;
    assert!(body.contains("\"status\":\"degraded\""), "{body}");
    // Open: requests touching it fail at once, new sessions go elsewhere.
    let started = Instant::now();
    let attach = client.attach_session(&frozen.session_id, 80, 24).await;
    let took = started.elapsed();
    eprintln!("attach with the breaker open: {took:?}");
    assert_eq!(code_of(&attach), Some(ErrorCode::Unavailable));
    assert!(took < Duration::from_millis(250), "took {took:?}");
    let destroy = client.destroy_session(&frozen.session_id).await;
    assert_eq!(code_of(&destroy), Some(ErrorCode::Unavailable));
    for n in 0..3 {
        let started = Instant::now();
        let info = client
            .create_session(&format!("open-{n}"), 80, 24)
            .await
            .expect("create with one breaker open");
        assert_ne!(info.backend, frozen.backend);
        assert!(started.elapsed() < deadline, "{:?}", started.elapsed());
    }

    signal("-CONT", &pid);
    let closed = wait_health(&server, &frozen.backend, |b| {
        b["breaker"] == "closed" && b["state"] == "up"
    })
    .await;
    // Seen once in many loaded runs: tmux 3.3a died right after SIGCONT (the attach client
    // killed while it was stopped, half-identified: see `Backend::churn`). The gateway then
    // announces the loss and restarts it; check that instead of the frozen session.
    let session = if closed["restarts"] == 0 {
        frozen.session_id.clone()
    } else {
        eprintln!("tmux died after SIGCONT and was restarted: {closed}");
        create_on(&client, &frozen.backend, "thawed").await
    };
    let mut att = client
        .attach_session(&session, 80, 24)
        .await
        .expect("attach once the breaker closed");
    client
        .send_input(att.channel, b"echo thawed-$((6*7))\r")
        .await
        .expect("input");
    att.wait_for(b"thawed-42", STEP).await.expect("works again");
    let changes = |lines: &[Value]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l["eventType"] == "BACKEND_STATE_CHANGED")
            .filter(|l| l["metadata"]["backend"] == frozen.backend.as_str())
            .filter(|l| l["metadata"]["reason"] != "restarted")
            .filter_map(|l| l["metadata"]["detail"].as_str().map(str::to_owned))
            .collect()
    };
    let lines = lines_when(&server, |lines| {
        changes(lines).last().map(String::as_str) == Some("half-open -> closed")
    })
    .await;
    let changes = changes(&lines);
    assert_eq!(changes[0], "closed -> open", "{changes:?}");
    assert!(
        changes.contains(&"open -> half-open".to_owned()),
        "{changes:?}"
    );
    let (_, metrics) = http_get(server.health_addr, "/metrics").await;
    let gauge = format!(
        "tmuxgate_backend_breaker_state{{backend=\"{}\"}} 0\n",
        frozen.backend
    );
    assert!(metrics.contains(&gauge), "{metrics}");
}
