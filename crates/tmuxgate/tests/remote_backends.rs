//! Backends the gateway does not start locally: a tmux server on another host reached over
//! a real `sshd` on a loopback port (throwaway host and user keys), and an operator's
//! existing tmux server named by its socket.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::sshd::{KillRemoteOnDrop, Sshd, processes_mentioning, remote_socket};
use common::{STEP, TestServer, http_get, tmux_at, tmux_succeeds};
use serde_json::Value;
use tmuxgate_client::Client;
use tmuxgate_client::protocol::Event;
use tmuxgate_client::protocol::request::{SessionCreate, SessionOptions};

/// A remote socket name no other test run uses.
fn unique_socket(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// Backend `id` in `/health`, once `done` holds (polled for at most `STEP`).
async fn health_when(server: &TestServer, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + STEP;
    loop {
        let (_, body) = http_get(server.health_addr, "/health").await;
        let status: Value = serde_json::from_str(&body).expect("health JSON");
        let backend = status["backends"]
            .as_array()
            .expect("backends")
            .iter()
            .find(|b| b["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not in {body}"));
        if done(&backend) {
            return backend;
        }
        assert!(Instant::now() < deadline, "{id} never got there: {backend}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn create_pinned(client: &Client, name: &str, backend: &str) -> String {
    let info = client
        .create_session_with(SessionCreate {
            name: name.into(),
            options: SessionOptions {
                backend: Some(backend.into()),
                cols: Some(80),
                rows: Some(24),
                ..SessionOptions::default()
            },
        })
        .await
        .expect("create");
    assert_eq!(info.backend, backend);
    info.session_id
}

/// Whether the far side's server `socket` has a session named `name`.
fn remote_has(socket: &str, name: &str) -> bool {
    tmux_succeeds(
        &remote_socket(socket),
        &["has-session", "-t", &format!("={name}")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_backend_creates_attaches_types_runs_destroys_and_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sshd = Sshd::start(dir.path());
    let socket = unique_socket("tgssh");
    let _remote = KillRemoteOnDrop(socket.clone());
    let file = dir.path().join("backends.toml");
    let entries = format!(
        "[[backend]]\n\n{}labels = [\"remote\"]\n",
        sshd.backend_entry(&socket, &sshd.known_hosts)
    );
    std::fs::write(&file, entries).expect("backends file");
    let server = TestServer::start_with(|c| {
        c.backends_file = Some(file.clone());
        // The integrated shell, installed on the far side by the gateway.
        c.default_command = None;
    })
    .await;

    let remote = health_when(&server, "tmux-1", |b| b["state"] == "up").await;
    assert_eq!(remote["kind"], "ssh", "{remote}");
    assert_eq!(
        remote["address"],
        format!("ssh://{}@127.0.0.1:{}/{socket}", sshd.user, sshd.port)
    );
    assert_eq!(remote["labels"], serde_json::json!(["remote"]));

    let client = server.client().await;
    let id = create_pinned(&client, "far", "tmux-1").await;
    assert!(
        remote_has(&socket, "far"),
        "the session is on the far server"
    );
    assert!(
        !tmux_succeeds(&server.socket(0), &["has-session", "-t", "=far"]),
        "and not on the local one"
    );
    let listed = client.list_sessions().await.expect("list");
    let far = listed.iter().find(|s| s.session_id == id).expect("listed");
    assert_eq!(far.backend, "tmux-1");

    let mut att = client.attach_session(&id, 80, 24).await.expect("attach");
    client
        .send_input(att.channel, b"echo remote-$((6*7))\r")
        .await
        .expect("input");
    att.wait_for(b"remote-42", STEP).await.expect("typed echo");

    // A second viewer starts from a snapshot captured on the far side and read back over
    // SSH.
    let second = server.client().await;
    let mut view = second.attach_session(&id, 80, 24).await.expect("attach 2");
    assert!(view.snapshot, "a snapshot was sent");
    view.wait_for(b"remote-42", STEP)
        .await
        .expect("the snapshot shows the screen");

    // Command execution through the integrated shell installed on the far side.
    let result = client.execute(&id, "echo exec-ok").await.expect("execute");
    assert_eq!(
        (result.output.trim(), result.exit_code),
        ("exec-ok", Some(0))
    );

    client.destroy_session(&id).await.expect("destroy");
    common::eventually("the far session to end", || {
        (!remote_has(&socket, "far")).then_some(())
    })
    .await;
    assert!(
        client
            .list_sessions()
            .await
            .expect("list")
            .iter()
            .all(|s| s.session_id != id)
    );
    // The far server killed with `kill -9`: its viewers hear of it, the gateway starts a
    // new one over SSH, and that one takes sessions.
    let id = create_pinned(&client, "doomed", "tmux-1").await;
    let doomed = client.attach_session(&id, 80, 24).await.expect("attach");
    let pid = tmux_at(&remote_socket(&socket), &["display", "-p", "#{pid}"]);
    let status = std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -9 {pid}");
    let lost =
        |e: &Event| matches!(e, Event::BackendLost { channel, .. } if *channel == doomed.channel);
    client
        .wait_event(lost, STEP)
        .await
        .expect("backend-lost for the far session");
    let back = health_when(&server, "tmux-1", |b| {
        b["state"] == "up" && b["restarts"] == 1
    })
    .await;
    assert_eq!(back["kind"], "ssh");
    let id = create_pinned(&client, "again", "tmux-1").await;
    let mut again = client.attach_session(&id, 80, 24).await.expect("attach");
    client
        .send_input(again.channel, b"echo again-$((2*3))\r")
        .await
        .expect("input");
    again
        .wait_for(b"again-6", STEP)
        .await
        .expect("the new far server works");

    // Shutting the gateway down ends its SSH connection at once (not after the master's
    // 10 s ControlPersist): no master lingers.
    drop((att, view, doomed, again, client, second));
    let control_path = std::fs::read_dir(server.dir.join("sock"))
        .expect("gateway dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("ssh-1-"))
        })
        .expect("the SSH master's socket");
    let master = format!("{} [mux]", control_path.display());
    assert_eq!(
        processes_mentioning(&master).len(),
        1,
        "one SSH master runs while the gateway does"
    );
    let _gateway_dir = common::KillServersOnDrop(server.stop().await);
    let deadline = Instant::now() + Duration::from_secs(3);
    while control_path.exists() || !processes_mentioning(&master).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the SSH master outlived the gateway"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Nothing of the snapshot was left on the far side.
    let leftovers: Vec<_> = std::fs::read_dir(remote_socket(&socket).parent().expect("dir"))
        .expect("remote socket dir")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("tmuxgate-snap-")
        })
        .collect();
    assert!(leftovers.is_empty(), "capture files left: {leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_backend_with_an_unknown_host_key_stays_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sshd = Sshd::start(dir.path());
    let socket = unique_socket("tgbadkey");
    let _remote = KillRemoteOnDrop(socket.clone());
    // known_hosts names the right address with another key: a man in the middle.
    let wrong = dir.path().join("wrong_known_hosts");
    std::fs::write(
        &wrong,
        format!("[127.0.0.1]:{} {}", sshd.port, sshd.other_host_key),
    )
    .expect("known_hosts");
    let file = dir.path().join("backends.toml");
    std::fs::write(
        &file,
        format!("[[backend]]\n\n{}", sshd.backend_entry(&socket, &wrong)),
    )
    .expect("backends file");
    let server = TestServer::start_with(|c| c.backends_file = Some(file.clone())).await;

    let remote = health_when(&server, "tmux-1", |b| {
        b["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("Host key verification failed"))
    })
    .await;
    assert_eq!(
        (&remote["state"], &remote["health"]),
        (&"down".into(), &"unhealthy".into()),
        "{remote}"
    );
    let client = server.client().await;
    for n in 0..4 {
        let info = client
            .create_session(&format!("s{n}"), 80, 24)
            .await
            .expect("create on the local backend");
        assert_eq!(info.backend, "tmux-0");
    }
    let pinned = client
        .create_session_with(SessionCreate {
            name: "pinned".into(),
            options: SessionOptions {
                backend: Some("tmux-1".into()),
                ..SessionOptions::default()
            },
        })
        .await;
    assert!(
        pinned.is_err(),
        "placed on a host that failed its key check"
    );
    assert!(
        !remote_socket(&socket).exists(),
        "no tmux was started behind an unverified host key"
    );
}

/// Kills the tmux server on a socket on drop.
struct KillOnDrop(std::path::PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .arg("-S")
            .arg(&self.0)
            .arg("kill-server")
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Starts an operator's tmux server on `socket` with their own settings and session.
fn start_operator_server(socket: &Path) {
    tmux_at(
        socket,
        &[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "ops",
            ";",
            "set",
            "-g",
            "status-left",
            "operator's",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_backend_uses_the_operators_server_and_never_starts_it() {
    let dir = tempfile::Builder::new()
        .prefix("tgop")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let socket = dir.path().join("ops.sock");
    let _kill = KillOnDrop(socket.clone());
    let file = dir.path().join("backends.toml");
    std::fs::write(
        &file,
        format!(
            "[[backend]]\n\n[[backend]]\nkind = \"socket\"\npath = \"{}\"\n",
            socket.display()
        ),
    )
    .expect("backends file");
    let server = TestServer::start_with(|c| {
        c.backends_file = Some(file.clone());
        c.health_check_interval = Duration::from_millis(100);
        c.restart_backoff = Duration::from_millis(100);
    })
    .await;

    // Not running yet: the gateway starts anyway and does not start it.
    let down = health_when(&server, "tmux-1", |b| {
        b["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("no server running"))
    })
    .await;
    assert_eq!(
        (&down["kind"], &down["state"]),
        (&"socket".into(), &"down".into())
    );
    assert!(
        !socket.exists(),
        "the gateway started the operator's server"
    );

    start_operator_server(&socket);
    health_when(&server, "tmux-1", |b| b["state"] == "up").await;

    let client = server.client().await;
    let id = create_pinned(&client, "gw", "tmux-1").await;
    assert!(tmux_succeeds(&socket, &["has-session", "-t", "=gw"]));
    let listed = client.list_sessions().await.expect("list");
    assert!(
        listed.iter().all(|s| s.name != "ops"),
        "the operator's own session is not the gateway's: {listed:?}"
    );
    let mut att = client.attach_session(&id, 80, 24).await.expect("attach");
    client
        .send_input(att.channel, b"echo ops-$((40+2))\r")
        .await
        .expect("input");
    att.wait_for(b"ops-42", STEP).await.expect("typed echo");

    // The operator's global options are untouched; the gateway session has its own.
    let global = tmux_at(&socket, &["show", "-gv", "status-left"]);
    assert_eq!(global.trim(), "operator's");
    assert_eq!(tmux_at(&socket, &["show", "-gv", "status"]).trim(), "on");
    for (scope, option, value) in [
        ("-v", "status", "off"),
        ("-v", "destroy-unattached", "off"),
        ("-wv", "remain-on-exit", "off"),
        ("-wv", "window-size", "latest"),
    ] {
        let shown = tmux_at(&socket, &["show", scope, "-t", "=gw:", option]);
        assert_eq!(shown.trim(), value, "{option} of the gateway's session");
    }

    client.destroy_session(&id).await.expect("destroy");
    assert!(!tmux_succeeds(&socket, &["has-session", "-t", "=gw"]));
    drop(client);
    let _gateway_dir = common::KillServersOnDrop(server.stop().await);
    assert!(
        tmux_succeeds(&socket, &["has-session", "-t", "=ops"]),
        "the operator's server and session outlive the gateway"
    );
}
