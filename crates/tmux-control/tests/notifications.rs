//! Notifications from a real tmux: attach, windows, `%output` fidelity,
//! flow control inside reply blocks, and the end of the connection.

mod common;

use common::{TestServer, new_window};
use tmux_control::{Command, Error, Notification};

#[tokio::test]
async fn attach_reports_the_session() {
    let server = TestServer::start();
    let id = server.session_id("main");
    let (_client, mut notes) = server.attach("main").await;
    let n = notes
        .wait_for(|n| matches!(n, Notification::SessionChanged { .. }))
        .await;
    assert_eq!(
        n,
        Notification::SessionChanged {
            session: id,
            name: b"main".to_vec()
        }
    );
}

#[tokio::test]
async fn new_windows_are_reported() {
    let server = TestServer::start();
    let (client, mut notes) = server.attach("main").await;
    let format = Command::new("new-window")
        .flag("-d")
        .flag("-P")
        .flag_value("-F", "#{window_id}");
    let block = client
        .command(format)
        .await
        .and_then(|r| r.single())
        .expect("new-window");
    let window = block.text_lossy().parse().expect("window id");
    notes
        .wait_for(|n| *n == Notification::WindowAdd { window })
        .await;
}

#[tokio::test]
async fn output_arrives_byte_exact() {
    let server = TestServer::start();
    let (client, mut notes) = server.attach("main").await;
    let all_bytes: String = (0..=255u8).map(|b| format!("\\{b:03o}")).collect();
    let script = format!("stty raw -echo; printf 'BEGIN{all_bytes}END'; exec cat >/dev/null");
    let pane = new_window(&client, &script).await;
    let output = notes.output_until(pane, b"END").await;
    let start = output
        .windows(5)
        .position(|w| w == b"BEGIN")
        .expect("BEGIN marker")
        + 5;
    let expected: Vec<u8> = (0..=255u8).collect();
    assert_eq!(&output[start..output.len() - 3], &expected[..]);
}

#[tokio::test]
async fn flow_control_notifications_inside_blocks_reach_the_handler() {
    let server = TestServer::start();
    let (client, mut notes) = server.attach("main").await;
    let pane = new_window(&client, "exec cat >/dev/null").await;
    let pause = Command::new("refresh-client").flag_value("-A", format!("{pane}:pause"));
    let reply = client.command(pause).await.expect("pause");
    assert_eq!(
        reply.blocks[0].lines,
        Vec::<Vec<u8>>::new(),
        "%pause is not block content"
    );
    notes.wait_for(|n| *n == Notification::Pause { pane }).await;
    let resume = Command::new("refresh-client").flag_value("-A", format!("{pane}:continue"));
    client.command(resume).await.expect("continue");
    notes
        .wait_for(|n| *n == Notification::Continue { pane })
        .await;
}

#[tokio::test]
async fn killing_the_session_ends_the_connection() {
    let server = TestServer::start();
    server.tmux_ok(&["new-session", "-d", "-s", "victim"]);
    let (client, mut notes) = server.attach("victim").await;
    // wait-for blocks this client's command queue, so the next one stays pending.
    client
        .command(Command::new("wait-for").arg_raw_static("never"))
        .await
        .expect("wait-for");
    let pending = {
        let client = client.clone();
        tokio::spawn(async move { client.command(Command::new("list-sessions")).await })
    };
    server.tmux_ok(&["kill-session", "-t", "victim"]);
    notes
        .wait_for(|n| matches!(n, Notification::Exit { .. }))
        .await;
    client.closed().await;
    assert!(client.is_closed());
    assert!(matches!(
        pending.await.expect("task"),
        Err(Error::Exited { .. })
    ));
    assert!(matches!(
        client.command(Command::new("list-sessions")).await,
        Err(Error::Exited { .. })
    ));
}

#[tokio::test]
async fn kill_server_ends_the_connection() {
    let server = TestServer::start();
    let (client, mut notes) = server.attach("main").await;
    server.tmux_ok(&["kill-server"]);
    notes
        .wait_for(|n| matches!(n, Notification::Exit { .. }))
        .await;
    client.closed().await;
}

#[tokio::test]
async fn a_crashed_server_gives_its_reason() {
    let server = TestServer::start();
    let (client, mut notes) = server.attach("main").await;
    let pid = server.tmux_ok(&["display", "-p", "#{pid}"]);
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let n = notes
        .wait_for(|n| matches!(n, Notification::Exit { .. }))
        .await;
    assert_eq!(
        n,
        Notification::Exit {
            reason: Some(b"server exited unexpectedly".to_vec())
        }
    );
    client.closed().await;
    let err = client
        .command(Command::new("list-sessions"))
        .await
        .expect_err("closed");
    assert!(
        matches!(&err, Error::Exited { reason: Some(r) } if r == "server exited unexpectedly"),
        "{err}"
    );
}

#[tokio::test]
async fn shutdown_detaches() {
    let server = TestServer::start();
    let (client, mut notes) = server.attach("main").await;
    let observer = client.clone();
    client.shutdown().await;
    assert!(observer.is_closed());
    notes
        .wait_for(|n| matches!(n, Notification::Exit { .. }))
        .await;
    assert_eq!(
        server.tmux_ok(&["list-clients", "-F", "#{client_name}"]),
        ""
    );
}
