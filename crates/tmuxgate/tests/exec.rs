//! Command execution end to end: a real gateway running the integrated bash in real tmux,
//! commands sent over WebSocket, results and exit statuses checked, and what viewers see.

mod common;

use std::path::Path;
use std::time::Duration;

use common::identity::AuthServer;
use common::{STEP, TestServer};
use tmuxgate::config::Config;
use tmuxgate_client::protocol::ErrorCode;
use tmuxgate_client::protocol::RequestId;
use tmuxgate_client::protocol::request::{AttachMode, ExecOptions};
use tmuxgate_client::{ClientError, attach_request};

/// Rules for `admin` (the role with authentication off) and `operator`.
const POLICY: &str = r#"
[roles.admin.programs.echo]
flags = ["-n"]
args = [".*"]

[roles.admin.programs.printf]
args = [".*"]

[roles.admin.programs.true]
[roles.admin.programs.false]

[roles.admin.programs.sleep]
args = ["[0-9]{1,3}"]

[roles.admin.programs.sh]
value_flags = { "-c" = "exit [0-9]{1,3}" }

[roles.operator.programs.echo]
args = [".*"]
"#;

/// Sessions run the gateway's integrated shell (no DEFAULT_COMMAND) under `POLICY`.
fn exec_config(dir: &Path) -> impl FnOnce(&mut Config) {
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, POLICY).expect("write policy");
    move |c: &mut Config| {
        c.default_command = None;
        c.policy_file = Some(policy);
    }
}

async fn start() -> (TestServer, tempfile::TempDir) {
    start_with(|_| {}).await
}

/// Like [`start`], with more settings.
async fn start_with(more: impl FnOnce(&mut Config)) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let tweak = exec_config(dir.path());
    let server = TestServer::start_with(|c| {
        tweak(c);
        more(c);
    })
    .await;
    (server, dir)
}

fn code(e: ClientError) -> ErrorCode {
    match e {
        ClientError::Server { code, .. } => code,
        other => panic!("expected a server error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_and_exit_status_come_back() {
    let (server, _dir) = start().await;
    let client = server.client().await;
    let session = client.create_session("exec", 80, 24).await.expect("create");
    let id = &session.session_id;
    let hi = client.execute(id, "echo hi").await.expect("echo");
    assert_eq!((hi.output.as_str(), hi.exit_code), ("hi\n", Some(0)));
    assert!(!hi.truncated && !hi.timed_out);
    let no = client.execute(id, "false").await.expect("false");
    assert_eq!((no.output.as_str(), no.exit_code), ("", Some(1)));
    let three = client.execute(id, "sh -c 'exit 3'").await.expect("sh");
    assert_eq!(three.exit_code, Some(3));
    // Quoted words stay words: nothing expands, whatever the text says.
    let literal = client
        .execute(id, "echo '$(id)' \"a b\" ';'")
        .await
        .expect("literal");
    assert_eq!(literal.output, "$(id) a b ;\n");
    // Refused by the policy, with the construct named, and nothing typed.
    let refused = client.execute(id, "echo $(id)").await.unwrap_err();
    assert_eq!(code(refused), ErrorCode::Forbidden);
    let verdict = client.validate("echo hi; id").await.expect("validate");
    assert!(!verdict.allowed);
    assert!(verdict.code.is_some() && verdict.reason.is_some());
    let verdict = client.validate("echo hi").await.expect("validate");
    assert!(verdict.allowed);
    assert!(verdict.line.unwrap().ends_with("echo' 'hi'"));
    let after = client.execute(id, "echo still-fine").await.expect("after");
    assert_eq!(after.output, "still-fine\n");
    // Counted by outcome, with the latency of those that ran.
    let (status, metrics) = common::http_get(server.health_addr, "/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "tmuxgate_commands_total{outcome=\"ok\"} 3",
        "tmuxgate_commands_total{outcome=\"failed\"} 2",
        "tmuxgate_commands_total{outcome=\"blocked\"} 1",
        "tmuxgate_command_duration_seconds_count{kind=\"command\"} 5",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utf8_and_long_lines_are_intact() {
    let (server, _dir) = start().await;
    let client = server.client().await;
    let session = client.create_session("utf8", 80, 24).await.expect("create");
    let id = &session.session_id;
    let text = "héllo wörld 漢字 🎉 ñ";
    let r = client
        .execute(id, &format!("echo '{text}'"))
        .await
        .expect("utf8");
    assert_eq!(r.output, format!("{text}\n"));
    // Far wider than the 80-column pane: wrapped on screen, one line in the output.
    let long: String = (0..3000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let r = client
        .execute(id, &format!("echo {long}"))
        .await
        .expect("long");
    assert_eq!(r.output, format!("{long}\n"));
    let many = "x ".repeat(60);
    let r = client
        .execute(id, &format!("printf '%s\\n' {many}"))
        .await
        .expect("lines");
    assert_eq!(r.output, "x\n".repeat(60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_over_its_time_is_interrupted() {
    let (server, _dir) = start().await;
    let client = server.client().await;
    let session = client.create_session("slow", 80, 24).await.expect("create");
    let id = &session.session_id;
    let options = ExecOptions {
        timeout_ms: Some(500),
        ..ExecOptions::default()
    };
    let started = std::time::Instant::now();
    let body = client
        .execute_raw(id, "sleep 30", options)
        .await
        .expect("response");
    assert!(!body.success);
    assert_eq!(body.error_code, Some(ErrorCode::Timeout));
    let data = body.data.expect("a timeout carries the partial result");
    assert_eq!(data["timedOut"], true);
    assert_eq!(data["exitCode"], 130, "Ctrl-C ended it: {data}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // The shell is back at its prompt: the next command runs.
    let r = client.execute(id, "echo next").await.expect("next");
    assert_eq!(r.output, "next\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_pane_answers_conflict() {
    let (server, _dir) = start_with(|c| c.backend_pool_size = 1).await;
    let client = server.client().await;
    let session = client.create_session("busy", 80, 24).await.expect("create");
    let id = &session.session_id;
    let mut att = client
        .attach(attach_request(id, 80, 24))
        .await
        .expect("attach");
    // A person runs a program that reads the terminal: the command must not type into it.
    client
        .send_input(att.channel, b"cat\r")
        .await
        .expect("type");
    let socket = server.socket(0);
    common::eventually("cat to run", || {
        let now = common::tmux_at(
            &socket,
            &["display", "-p", "-t", "busy", "#{pane_current_command}"],
        );
        (now.trim() == "cat").then_some(())
    })
    .await;
    let busy = client.execute(id, "echo no").await.unwrap_err();
    assert_eq!(code(busy), ErrorCode::Conflict);
    client
        .send_input(att.channel, b"\x04")
        .await
        .expect("ctrl-d");
    // Back at the prompt, the person starts typing a line: still not ours to type into.
    client
        .send_input(att.channel, b"echo half")
        .await
        .expect("type");
    att.wait_for(b"echo half", STEP).await.expect("echoed");
    let typing = client.execute(id, "echo no").await.unwrap_err();
    assert_eq!(code(typing), ErrorCode::Conflict);
    // The line cleared (Ctrl-U): the shell says so when asked, and the command runs.
    client
        .send_input(att.channel, b"\x15")
        .await
        .expect("ctrl-u");
    let r = client.execute(id, "echo yes").await.expect("runs");
    assert_eq!(r.output, "yes\n");
    assert!(att.wait_for(b"yes", STEP).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_stops_at_the_first_failure_unless_told() {
    let (server, _dir) = start().await;
    let client = server.client().await;
    let session = client
        .create_session("batch", 80, 24)
        .await
        .expect("create");
    let id = &session.session_id;
    let commands = ["echo a", "false", "echo c"];
    let options = ExecOptions::default();
    let stopped = client
        .batch(id, &commands, None, options.clone())
        .await
        .expect("batch");
    assert!(stopped.stopped);
    assert_eq!(stopped.results.len(), 2);
    assert_eq!(stopped.results[0].result.as_ref().unwrap().output, "a\n");
    assert_eq!(
        stopped.results[1].result.as_ref().unwrap().exit_code,
        Some(1)
    );
    let all = client
        .batch(id, &commands, Some(false), options.clone())
        .await
        .expect("batch");
    assert!(!all.stopped);
    let outputs: Vec<_> = all
        .results
        .iter()
        .map(|r| r.result.as_ref().unwrap().output.clone())
        .collect();
    assert_eq!(outputs, ["a\n", "", "c\n"]);
    // One refused command: nothing of the batch runs.
    let refused = client
        .batch(id, &["echo ran", "echo `id`"], None, options)
        .await
        .unwrap_err();
    assert_eq!(code(refused), ErrorCode::Forbidden);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_for_one_session_queue_in_order() {
    let (server, _dir) = start_with(|c| c.exec_queue_depth = 1).await;
    let client = server.client().await;
    let session = client
        .create_session("queue", 80, 24)
        .await
        .expect("create");
    let id = &session.session_id;
    // Sent in this order on one connection: tickets are taken as requests arrive, so one
    // runs, one waits, and the third is refused at once.
    for (rid, command) in [
        ("slow", "sleep 1"),
        ("second", "echo second"),
        ("third", "echo third"),
    ] {
        let request = serde_json::json!({
            "type": "command-execute", "id": rid,
            "data": {"sessionId": id, "command": command},
        });
        client.send_text(request.to_string()).await.expect("send");
    }
    let mut order = Vec::new();
    for _ in 0..3 {
        let body = client.next_raw_response(STEP).await.expect("response");
        let rid = match body.id {
            Some(RequestId::String(rid)) => rid,
            other => panic!("unexpected id {other:?}"),
        };
        order.push((rid, body.success, body.error_code, body.data));
    }
    let names: Vec<&str> = order.iter().map(|(rid, ..)| rid.as_str()).collect();
    assert_eq!(
        names,
        ["third", "slow", "second"],
        "refused at once, then in order"
    );
    assert_eq!(order[0].2, Some(ErrorCode::Conflict));
    assert!(order[1].1 && order[2].1);
    assert_eq!(order[2].3.as_ref().unwrap()["output"], "second\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_see_the_command_run() {
    let (server, _dir) = start().await;
    let owner = server.client().await;
    let session = owner
        .create_session("watched", 80, 24)
        .await
        .expect("create");
    let id = &session.session_id;
    let watcher = server.client().await;
    let mut request = attach_request(id, 80, 24);
    request.mode = AttachMode::Read;
    let mut att = watcher.attach(request).await.expect("attach");
    let r = owner
        .execute(id, "echo 'seen-$USER-x'")
        .await
        .expect("execute");
    assert_eq!(r.output, "seen-$USER-x\n");
    // The viewer sees the typed line (the canonical, quoted form) and its output.
    att.wait_for(b"echo' 'seen-$USER-x'", STEP)
        .await
        .expect("typed line");
    att.wait_for(b"seen-$USER-x\r\n", STEP)
        .await
        .expect("output");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_without_the_permission_cannot_execute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tweak = exec_config(dir.path());
    let users = [("olga", "operator"), ("vera", "viewer")];
    let server = AuthServer::start(&users, tweak).await;
    let olga = server.client_as("olga").await;
    let session = olga.create_session("ops", 80, 24).await.expect("create");
    let id = &session.session_id;
    assert_eq!(
        olga.execute(id, "echo ok").await.expect("operator").output,
        "ok\n"
    );
    // `false` is the admin's, not the operator's.
    assert_eq!(
        code(olga.execute(id, "false").await.unwrap_err()),
        ErrorCode::Forbidden
    );
    olga.share(id, "vera", AttachMode::Write)
        .await
        .expect("share");
    let vera = server.client_as("vera").await;
    assert_eq!(
        code(vera.execute(id, "echo no").await.unwrap_err()),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code(vera.validate("echo no").await.unwrap_err()),
        ErrorCode::Forbidden
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_and_functions_in_the_shell_do_not_change_what_runs() {
    let (server, _dir) = start().await;
    let client = server.client().await;
    let session = client
        .create_session("aliased", 80, 24)
        .await
        .expect("create");
    let id = &session.session_id;
    let mut att = client
        .attach(attach_request(id, 80, 24))
        .await
        .expect("attach");
    // Someone with write access shadows the program by name, both ways.
    let setup = b"alias echo='printf ALIASED'; echo() { printf FUNCTION; }; echo check-$((6*7))\r";
    client.send_input(att.channel, setup).await.expect("type");
    att.wait_for(b"FUNCTION", STEP)
        .await
        .expect("the shadows are in place");
    let r = client.execute(id, "echo hi").await.expect("execute");
    assert_eq!((r.output.as_str(), r.exit_code), ("hi\n", Some(0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marks_printed_by_output_do_not_end_a_command() {
    let (server, _dir) = start_with(|c| c.backend_pool_size = 1).await;
    let client = server.client().await;
    let other = client
        .create_session("other", 80, 24)
        .await
        .expect("create");
    let victim = client
        .create_session("victim", 80, 24)
        .await
        .expect("create");
    let _ = other;
    // Another session's nonce (as its own output would reveal it), and a made-up one.
    let theirs = server.tmux(0, &["show", "-t", "other", "-v", "@tmuxgate_mark"]);
    let theirs = theirs.trim();
    assert_eq!(theirs.len(), 32, "the other session has a nonce");
    for nonce in [theirs, "0123456789abcdef0123456789abcdef"] {
        let fake = format!(
            "printf 'before\\033]133;D;0;tg={nonce}\\007\\033]133;B;tg={nonce}\\007after\\n'"
        );
        let r = client
            .execute(&victim.session_id, &fake)
            .await
            .expect("execute");
        assert!(
            r.output.starts_with("before") && r.output.ends_with("after\n"),
            "{r:?}"
        );
        assert_eq!(r.exit_code, Some(0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_policy_file_is_in_force_without_a_restart() {
    let (server, dir) = start().await;
    let client = server.client().await;
    let session = client
        .create_session("reload", 80, 24)
        .await
        .expect("create");
    let id = &session.session_id;
    assert_eq!(
        code(client.execute(id, "pwd").await.unwrap_err()),
        ErrorCode::Forbidden
    );
    let policy = dir.path().join("policy.toml");
    let widened = format!("{POLICY}\n[roles.admin.programs.pwd]\n");
    std::fs::write(&policy, widened).expect("rewrite policy");
    let verdict = async {
        loop {
            if client.validate("pwd").await.expect("validate").allowed {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(STEP, verdict)
        .await
        .expect("the new policy is loaded");
    assert_eq!(
        client.execute(id, "pwd").await.expect("pwd").exit_code,
        Some(0)
    );
}
