//! Faults injected into a gateway process (issue 10): SIGTERM under load, SIGKILL and a
//! restart, and thousands of connections opening and closing. tmux servers killed or
//! stopped are in tests/backends.rs, Redis killed in tests/fleet_outage.rs.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::process::GatewayProcess;
use common::{STEP, kill_servers};
use tmuxgate_client::Client;

/// A directory for the gateway's tmux sockets (`DIR/sock`, short: under /tmp) and data; its
/// tmux servers are killed when the test ends, however it ends.
struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::Builder::new()
            .prefix("tgx")
            .tempdir_in("/tmp")
            .expect("tempdir"))
    }

    fn start(&self) -> GatewayProcess {
        self.start_with(&[])
    }

    /// [`Dir::start`] with `env` besides.
    fn start_with(&self, env: &[(&str, &str)]) -> GatewayProcess {
        let path = self.0.path();
        let mut all = vec![("ENABLE_AUTH", "false"), ("BACKEND_POOL_SIZE", "2")];
        all.extend_from_slice(env);
        GatewayProcess::start(&path.join("sock"), &path.join("data"), &all)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        kill_servers(self.0.path());
    }
}

/// SIGTERM while 40 clients watch 4 sessions and one types: every client gets close 1001,
/// the gateway exits 0 without a panic, and a restarted gateway serves the same sessions
/// with their screens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_closes_every_client_with_1001_and_a_restart_serves_them() {
    let dir = Dir::new();
    let mut gateway = dir.start();
    let url = gateway.url();
    let owner = Client::connect(&url).await.expect("connect");
    let mut ids = Vec::new();
    for n in 0..4 {
        let id = owner
            .create_session(&format!("load-{n}"), 80, 24)
            .await
            .expect("create")
            .session_id;
        let mut att = owner.attach_session(&id, 80, 24).await.expect("attach");
        owner
            .send_input(att.channel, format!("echo before-{}\r", n * 11).as_bytes())
            .await
            .expect("input");
        att.wait_for(format!("before-{}", n * 11).as_bytes(), STEP)
            .await
            .expect("echo");
        ids.push(id);
    }
    let mut viewers = Vec::new();
    for n in 0..40 {
        let client = Client::connect(&url).await.expect("connect");
        let att = client
            .attach_session(&ids[n % ids.len()], 80, 24)
            .await
            .expect("attach");
        viewers.push((client, att));
    }
    // Output flowing while the signal arrives.
    let typist = Client::connect(&url).await.expect("connect");
    let att = typist
        .attach_session(&ids[0], 80, 24)
        .await
        .expect("attach");
    typist
        .send_input(att.channel, b"while :; do echo tick; sleep 0.01; done\r")
        .await
        .expect("input");

    let code = tokio::task::block_in_place(|| gateway.terminate(STEP * 2));
    assert_eq!(code, Some(0), "{}", gateway.log());
    for client in viewers.iter().map(|(c, _)| c).chain([&typist, &owner]) {
        let (code, reason) = client.wait_closed(STEP).await.expect("closed");
        assert_eq!(code, 1001, "{reason}");
    }
    assert!(!gateway.log().contains("panicked"), "{}", gateway.log());

    let restarted = dir.start();
    let client = Client::connect(&restarted.url()).await.expect("connect");
    let listed = client.list_sessions().await.expect("list");
    for id in &ids {
        assert!(
            listed.iter().any(|s| &s.session_id == id),
            "{id} rediscovered"
        );
    }
    let mut att = client
        .attach_session(&ids[3], 80, 24)
        .await
        .expect("attach");
    att.wait_for(b"before-33", STEP)
        .await
        .expect("the screen is intact");
}

/// SIGKILL, then a new gateway on the same sockets: every session is found again with its
/// id and name, and typing works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kill_9_a_restarted_gateway_rediscovers_every_session() {
    let dir = Dir::new();
    let mut gateway = dir.start();
    let client = Client::connect(&gateway.url()).await.expect("connect");
    let mut made = Vec::new();
    for n in 0..3 {
        let info = client
            .create_session(&format!("kept-{n}"), 80, 24)
            .await
            .expect("create");
        made.push((info.session_id, info.name));
    }
    gateway.kill_9();
    let _ = client.wait_closed(STEP).await;

    let restarted = dir.start();
    let client = Client::connect(&restarted.url()).await.expect("connect");
    let listed = client.list_sessions().await.expect("list");
    for (id, name) in &made {
        assert!(
            listed
                .iter()
                .any(|s| &s.session_id == id && &s.name == name),
            "{name} ({id}) not found again: {listed:?}"
        );
    }
    let mut att = client
        .attach_session(&made[1].0, 80, 24)
        .await
        .expect("attach");
    client
        .send_input(att.channel, b"echo alive-$((3*3))\r")
        .await
        .expect("input");
    att.wait_for(b"alive-9", STEP).await.expect("typing works");
}

/// 3,000 connections opened and closed (16 at a time), each attaching a session and
/// sending a request: afterwards the gateway holds as many file descriptors as before
/// (within 8) and no more tasks, no connection is counted open, and its memory
/// grew by less than 24 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_connections_opening_and_closing_leak_nothing() {
    let dir = Dir::new();
    // Limits by address are not what is tested: every connection comes from 127.0.0.1.
    // A short linger: the session's hub goes soon after its last viewer, so the counts
    // below are taken with no hub (and no linger timer) alive.
    let gateway = dir.start_with(&[("ABUSE_ALLOWLIST", "127.0.0.1/32"), ("HUB_LINGER", "200")]);
    let url = gateway.url();
    let setup = Client::connect(&url).await.expect("connect");
    let id = setup
        .create_session("churn", 80, 24)
        .await
        .expect("create")
        .session_id;
    let cycle = |n: usize| {
        let (url, id) = (url.clone(), id.clone());
        async move {
            let client = Client::connect(&url).await.expect("connect");
            if n.is_multiple_of(2) {
                client.attach_session(&id, 80, 24).await.expect("attach");
            }
            client.heartbeat().await.expect("heartbeat");
            client.close().await.expect("close");
        }
    };
    let run = |count: usize| async move {
        use futures_util::StreamExt;
        futures_util::stream::iter(0..count)
            .for_each_concurrent(16, cycle)
            .await;
    };
    // Warm-up: pools, caches and the allocator reach their working size.
    run(300).await;
    // Only the setup client connected, and the session's hub gone.
    let at = &dir;
    let settled = |gateway: &GatewayProcess| {
        let addr = gateway.health_addr;
        async move {
            let deadline = Instant::now() + STEP;
            loop {
                let open = metric(addr, "tmuxgate_connections").await;
                if open == 1 && !hub_attached(at, "churn") {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "still open: {open} connections, hub {}",
                    hub_attached(at, "churn")
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    settled(&gateway).await;
    let (fds, rss) = (gateway.open_fds(), gateway.rss_kib());
    // The last connections' tasks end within a second or two of their close: the floor is
    // a count read five times in a row, 100 ms apart.
    let mut tasks = (u64::MAX, 0);
    while tasks.1 < 5 {
        let now = metric(gateway.health_addr, "tmuxgate_tasks").await;
        tasks = if now == tasks.0 {
            (now, tasks.1 + 1)
        } else {
            (now, 1)
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tasks = tasks.0;

    run(3_000).await;
    settled(&gateway).await;
    let (fds_after, rss_after) = (gateway.open_fds(), gateway.rss_kib());
    // Back to the floor, once the last connections' tasks have ended.
    let deadline = Instant::now() + STEP;
    let tasks_after = loop {
        let now = metric(gateway.health_addr, "tmuxgate_tasks").await;
        if now <= tasks || Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!(
        "fds {fds} -> {fds_after}, RSS {rss} -> {rss_after} KiB, tasks {tasks} -> {tasks_after}"
    );
    assert!(tasks_after <= tasks, "tasks: {tasks} -> {tasks_after}");
    assert!(
        fds_after <= fds + 8,
        "file descriptors: {fds} -> {fds_after}"
    );
    assert!(
        rss_after < rss + 24 * 1024,
        "memory: {rss} -> {rss_after} KiB"
    );
    assert!(dir.path().exists());
}

/// Whether a control client (a hub) is attached to the session named `name` on one of the
/// gateway's two backends.
fn hub_attached(dir: &Dir, name: &str) -> bool {
    (0..2).any(|i| {
        let socket = dir.path().join(format!("sock/backend-{i}.sock"));
        common::control_clients_at(&socket, name) > 0
    })
}

/// The value of the metric `name` in the gateway's `/metrics`.
async fn metric(health: std::net::SocketAddr, name: &str) -> u64 {
    let (_, metrics) = common::http_get(health, "/metrics").await;
    let prefix = format!("{name} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// A small tmpfs mounted for one test (the test runs as root, as `scripts/test` does),
/// unmounted when it ends.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &Path, kib: u32) -> SmallDisk {
        std::fs::create_dir_all(at).expect("mount point");
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k,mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed: this test needs root (scripts/test runs as root)"
        );
        SmallDisk(at.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// The audit log's disk fills up: the gateway keeps serving (sessions, typing), says so in
/// its log and in `/health` (`audit.state` `failing`, status `degraded`), and writes again
/// once there is room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_the_audit_log_does_not_stop_the_gateway() {
    let dir = Dir::new();
    let disk = SmallDisk::mount(&dir.path().join("audit"), 64);
    let log = disk.0.join("audit.jsonl");
    let gateway = dir.start_with(&[
        ("AUDIT_LOG", log.to_str().expect("UTF-8 path")),
        ("AUDIT_MAX_BYTES", "0"),
        ("ABUSE_ALLOWLIST", "127.0.0.1/32"),
    ]);
    let health = || async {
        let (_, body) = common::http_get(gateway.health_addr, "/health").await;
        serde_json::from_str::<serde_json::Value>(&body).expect("health JSON")
    };
    assert_eq!(health().await["audit"]["state"], "ok");
    // Fill the disk but for a few bytes.
    let filler = disk.0.join("filler");
    let _ = std::fs::write(&filler, vec![b'x'; 64 * 1024]);

    // Audited events keep coming (connections opening and closing); the gateway serves.
    let deadline = Instant::now() + STEP;
    let failing = loop {
        let client = Client::connect(&gateway.url()).await.expect("connect");
        client.heartbeat().await.expect("heartbeat");
        client.close().await.expect("close");
        let now = health().await;
        if now["audit"]["state"] == "failing" {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "the audit log never failed: {now}"
        );
    };
    assert_eq!(failing["status"], "degraded", "{failing}");
    assert!(
        failing["audit"]["writeFailures"].as_u64() > Some(0),
        "{failing}"
    );
    let client = Client::connect(&gateway.url()).await.expect("connect");
    let id = client
        .create_session("on-full-disk", 80, 24)
        .await
        .expect("create")
        .session_id;
    let mut att = client.attach_session(&id, 80, 24).await.expect("attach");
    client
        .send_input(att.channel, b"echo still-$((6+6))\r")
        .await
        .expect("input");
    att.wait_for(b"still-12", STEP).await.expect("typing works");
    assert!(
        gateway.log().contains("cannot write the audit log"),
        "{}",
        gateway.log()
    );

    // Room again: the next events are written.
    std::fs::remove_file(&filler).expect("free the disk");
    let deadline = Instant::now() + STEP;
    loop {
        let other = Client::connect(&gateway.url()).await.expect("connect");
        other.close().await.expect("close");
        let now = health().await;
        if now["audit"]["state"] == "ok" {
            assert_eq!(now["status"], "healthy", "{now}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the audit log never recovered: {now}"
        );
    }
    drop(client);
}

/// Where Debian's faketime package (scripts/test installs it) keeps the library.
const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// The gateway's wall clock jumps (libfaketime, its offset read from a file at every call;
/// its monotonic clock is left alone, as a real jump leaves it): two hours forward, an open
/// connection whose token has expired by the wall clock is closed with 4401 within a ping
/// interval, and the token is refused; back again, new authentications follow the wall
/// clock (as any JWT verifier's), so the token, still within its real lifetime, works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_clock_jumping_forward_expires_open_connections() {
    assert!(
        Path::new(FAKETIME).exists(),
        "{FAKETIME} is missing: apt-get install faketime (scripts/test does)"
    );
    let dir = Dir::new();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    common::process::add_user(&data, "ann", "operator");
    let offset = dir.path().join("clock-offset");
    std::fs::write(&offset, "+0").expect("offset file");
    let offset_path = offset.to_str().expect("UTF-8 path").to_owned();
    let gateway = dir.start_with(&[
        ("ENABLE_AUTH", "true"),
        ("TOKEN_TTL", "600000"),
        ("PING_INTERVAL", "1000"),
        ("LD_PRELOAD", FAKETIME),
        ("FAKETIME_TIMESTAMP_FILE", &offset_path),
        ("FAKETIME_NO_CACHE", "1"),
        ("DONT_FAKE_MONOTONIC", "1"),
    ]);
    let token = common::process::token(&gateway.url(), "ann").await;
    let open = tmuxgate_client::Client::connect_with(
        &gateway.url(),
        tmuxgate_client::ClientOptions::default().token(&token),
    )
    .await
    .expect("connect");
    open.list_sessions().await.expect("the token works");

    std::fs::write(&offset, "+2h").expect("jump forward");
    let (code, reason) = open.wait_closed(STEP).await.expect("closed");
    assert_eq!(code, 4401, "{reason}");
    assert!(reason.contains("expired"), "{reason}");
    let (code, _) = common::identity::closed_with(&gateway.url(), &token).await;
    assert_eq!(code, 4401, "an expired token is refused");

    std::fs::write(&offset, "+0").expect("jump back");
    let again = tmuxgate_client::Client::connect_with(
        &gateway.url(),
        tmuxgate_client::ClientOptions::default().token(&token),
    )
    .await
    .expect("connect");
    again
        .list_sessions()
        .await
        .expect("back on time, the token is within its lifetime again");
}
