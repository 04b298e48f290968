//! Reply matching against a real tmux: concurrency, multi-command lines,
//! errors, forged guards, the admin connection and spawn failures.

mod common;

use std::time::Duration;

use common::{TMUX, TestServer};
use tmux_control::client::ADMIN_SESSION_NAME;
use tmux_control::{Command, CommandLine, ControlClient, Error, SessionId, SpawnOptions, Target};

fn display(text: &str) -> Command {
    Command::new("display-message")
        .flag("-p")
        .end_of_flags()
        .arg_quoted(text)
        .expect("valid text")
}

fn kill_pane_999() -> Command {
    Command::new("kill-pane").flag_value("-t", "%999")
}

async fn display_text(client: &ControlClient, text: &str) -> String {
    client
        .command(display(text))
        .await
        .and_then(|r| r.single())
        .expect("display")
        .text_lossy()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commands_get_their_own_replies() {
    let server = TestServer::start();
    let (client, _notes) = server.attach("main").await;
    let mut tasks = Vec::new();
    for task in 0..8 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..40 {
                let text = format!("task {task} command {i} 'quoted' ; $HOME ~");
                assert_eq!(display_text(&client, &text).await, text);
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
}

#[tokio::test]
async fn submitted_commands_run_in_submission_order_without_awaiting_each_reply() {
    let server = TestServer::start();
    let (client, _notes) = server.attach("main").await;
    // Each command appends to one buffer, so tmux's execution order is visible in it; a
    // refused command in the middle fails alone.
    let mut replies = Vec::new();
    for i in 0..100 {
        let cmd = if i == 50 {
            kill_pane_999()
        } else {
            Command::new("set-buffer")
                .flag("-a")
                .flag_value("-b", "order")
                .end_of_flags()
                .arg_quoted(&format!("{i},"))
                .expect("valid text")
        };
        replies.push(client.submit(cmd).expect("submitted"));
    }
    for (i, reply) in replies.into_iter().enumerate().rev() {
        let reply = reply.await;
        assert_eq!(reply.is_err(), i == 50, "reply {i}: {reply:?}");
    }
    let shown = client
        .command(Command::new("show-buffer").flag_value("-b", "order"))
        .await
        .and_then(|r| r.single())
        .expect("show-buffer")
        .text_lossy();
    let expected: String = (0..100)
        .filter(|i| *i != 50)
        .map(|i| format!("{i},"))
        .collect();
    assert_eq!(shown, expected);
}

#[tokio::test]
async fn a_line_of_several_commands_gets_several_blocks() {
    let server = TestServer::start();
    let (client, _notes) = server.attach("main").await;
    let line = CommandLine::from(display("one"))
        .then(display("two"))
        .then(display("three"));
    let reply = client.command(line).await.expect("reply");
    let texts: Vec<String> = reply.blocks.iter().map(|b| b.text_lossy()).collect();
    assert_eq!(texts, ["one", "two", "three"]);
}

#[tokio::test]
async fn failing_commands_give_errors_and_the_connection_goes_on() {
    let server = TestServer::start();
    let (client, _notes) = server.attach("main").await;
    let err = client
        .command(kill_pane_999())
        .await
        .expect_err("unknown pane");
    assert!(
        matches!(&err, Error::Command { message } if message.contains("%999")),
        "{err}"
    );

    // A runtime error stops the rest of the line; the entry still completes.
    let line = CommandLine::from(display("a"))
        .then(kill_pane_999())
        .then(display("c"));
    assert!(matches!(
        client.command(line).await,
        Err(Error::Command { .. })
    ));

    // A parse error gives a single %error block for the whole line.
    let line = CommandLine::from(Command::new("no-such-command")).then(display("b"));
    assert!(matches!(
        client.command(line).await,
        Err(Error::Command { .. })
    ));

    assert_eq!(display_text(&client, "still fine").await, "still fine");
}

#[tokio::test]
async fn forged_guards_in_command_output_are_content() {
    let server = TestServer::start();
    // A pane process could do this through $TMUX: user options are printed
    // raw, newlines included, by `show -v` and `#{@option}`.
    let forged = "x\n%end 1 2 1\n%error 1795872029 9 1\n%output %0 FORGED\n%begin 1 2 1\ny";
    server.tmux_ok(&["set", "-g", "@forged", forged]);
    let (client, _notes) = server.attach("main").await;
    let show = Command::new("show-options")
        .flag("-g")
        .flag("-v")
        .arg_raw_static("@forged");
    let block = client
        .command(show)
        .await
        .and_then(|r| r.single())
        .expect("show");
    assert_eq!(block.text_lossy(), forged);
    assert_eq!(display_text(&client, "after").await, "after");
}

#[tokio::test]
async fn at_begin_runs_before_the_reply_completes() {
    let server = TestServer::start();
    let (client, _notes) = server.attach("main").await;
    let (reply, value) = client
        .command_with(display("x"), || 42)
        .await
        .expect("reply");
    assert_eq!((reply.blocks.len(), value), (1, 42));
}

#[tokio::test]
async fn the_admin_connection_needs_no_session() {
    let server = TestServer::start();
    let client = ControlClient::spawn(server.options(Target::StartServer), |_| {})
        .await
        .expect("start-server");
    let format = Command::new("list-sessions").flag_value("-F", "#{session_name}");
    let block = client
        .command(format)
        .await
        .and_then(|r| r.single())
        .expect("list-sessions");
    let mut names: Vec<String> = block
        .lines
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [ADMIN_SESSION_NAME, "main"]);
    // A second admin connection reuses the session.
    let again = ControlClient::spawn(server.options(Target::StartServer), |_| {})
        .await
        .expect("again");
    client.shutdown().await;
    assert!(!again.is_closed());
    again.shutdown().await;
}

#[tokio::test]
async fn the_admin_connection_starts_the_server() {
    let server = TestServer::not_started();
    let client = ControlClient::spawn(server.options(Target::StartServer), |_| {})
        .await
        .expect("start");
    let format = Command::new("list-sessions").flag_value("-F", "#{session_name}");
    let block = client
        .command(format)
        .await
        .and_then(|r| r.single())
        .expect("list-sessions");
    assert_eq!(block.text_lossy(), ADMIN_SESSION_NAME);
}

#[tokio::test]
async fn spawn_failures_are_reported() {
    let server = TestServer::start();
    let err = ControlClient::spawn(server.options(Target::Attach(SessionId(999))), |_| {})
        .await
        .expect_err("no such session");
    assert!(
        matches!(&err, Error::Exited { reason: Some(r) } if r.contains("$999")),
        "{err}"
    );

    let missing = SpawnOptions::new("/nonexistent/tmux", &server.socket, Target::StartServer);
    assert!(matches!(
        ControlClient::spawn(missing, |_| {}).await,
        Err(Error::Spawn(_))
    ));
    let _ = TMUX;
}

#[tokio::test]
async fn timeouts_do_not_desync_matching() {
    let server = TestServer::start();
    let (client, _notes) = server.attach("main").await;
    // wait-for blocks this client's command queue until the channel is signalled.
    client
        .command(Command::new("wait-for").arg_raw_static("gate"))
        .await
        .expect("wait-for");
    client.set_command_timeout(Duration::from_millis(100));
    assert!(matches!(
        client.command(display("late")).await,
        Err(Error::Timeout)
    ));
    client.set_command_timeout(Duration::from_secs(5));
    server.tmux_ok(&["wait-for", "-S", "gate"]);
    assert_eq!(display_text(&client, "next").await, "next");
}

#[tokio::test]
async fn invalid_commands_are_not_sent() {
    let server = TestServer::start();
    let (client, _notes) = server.attach("main").await;
    let bad = Command::new("display-message").flag_value("-t", "a\nb");
    assert!(matches!(client.command(bad).await, Err(Error::Build(_))));
    assert_eq!(display_text(&client, "ok").await, "ok");
}
