//! The injection corpus run for real: every payload of `tests/data/injection.jsonl` is sent
//! as `command-execute` to a session of a real gateway (integrated bash in real tmux).
//! Each must be refused, or run exactly the validated words and nothing else.
//!
//! The sandbox: `tests/data/test-policy.toml` with every program pointed at a recorder
//! script that prints each argument it received as `[arg]` on its own line, and nothing
//! else. So an allowed payload's output must be exactly its validated words (as
//! `command-validate` reports them), and the canary every payload tries to create
//! (`/tmp/tg-canary`) must not exist afterwards. The pane's working directory is a fresh
//! directory holding a symlink `escape -> /` that path payloads try to walk through.

mod common;

use std::path::{Path, PathBuf};

use common::TestServer;
use tmuxgate_client::ClientError;
use tmuxgate_client::protocol::ErrorCode;
use tmuxgate_client::protocol::request::{SessionCreate, SessionOptions};

const CANARY: &str = "/tmp/tg-canary";

#[derive(serde::Deserialize)]
struct Payload {
    payload: String,
    why: String,
}

fn corpus() -> Vec<Payload> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/injection.jsonl");
    let text = std::fs::read_to_string(path).expect("corpus");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a corpus line"))
        .collect()
}

/// The test policy for `admin` (the role with authentication off), every program
/// replaced by the recorder.
fn sandbox_policy(recorder: &Path) -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/test-policy.toml"),
    )
    .expect("test policy");
    let mut out = String::new();
    for line in text.lines() {
        let line = line.replace("[roles.tester.", "[roles.admin.");
        out.push_str(&line);
        out.push('\n');
        if line.starts_with("[roles.admin.programs.") {
            out.push_str(&format!("path = {:?}\n", recorder.to_str().unwrap()));
        }
    }
    out
}

fn write_recorder(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("record");
    std::fs::write(&path, "#!/bin/sh\nprintf '[%s]\\n' \"$@\"\n").expect("recorder");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_payload_is_refused_or_runs_exactly_its_words() {
    let _ = std::fs::remove_file(CANARY);
    let tools = tempfile::tempdir().expect("tempdir");
    let cwd = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink("/", cwd.path().join("escape")).expect("symlink");
    let recorder = write_recorder(tools.path());
    let policy = tools.path().join("policy.toml");
    std::fs::write(&policy, sandbox_policy(&recorder)).expect("policy");
    let server = TestServer::start_with(|c| {
        c.default_command = None;
        c.policy_file = Some(policy);
    })
    .await;
    let client = server.client().await;
    let create = SessionCreate {
        name: "sandbox".into(),
        options: SessionOptions {
            cols: Some(200),
            rows: Some(50),
            cwd: Some(cwd.path().to_str().unwrap().to_owned()),
            ..SessionOptions::default()
        },
    };
    let session = client.create_session_with(create).await.expect("create");
    let id = &session.session_id;
    let (mut refused, mut ran) = (0, 0);
    for Payload { payload, why } in corpus() {
        let verdict = client.validate(&payload).await.expect("validate");
        match client.execute(id, &payload).await {
            Err(ClientError::Server { code, message }) => {
                assert_eq!(code, ErrorCode::Forbidden, "{why}: {payload:?}: {message}");
                assert!(
                    !verdict.allowed,
                    "{why}: validate allowed what execute refused"
                );
                refused += 1;
            }
            Err(e) => panic!("{why}: {payload:?}: {e}"),
            Ok(result) => {
                assert!(verdict.allowed, "{why}: validate refused what execute ran");
                let argv = verdict.argv.expect("allowed verdicts carry argv");
                let redirected = payload.contains('>') || payload.contains('<');
                if !redirected {
                    let mut expected: String =
                        argv[1..].iter().map(|a| format!("[{a}]\n")).collect();
                    if argv.len() == 1 {
                        expected = "[]\n".into();
                    }
                    assert_eq!(result.output, expected, "{why}: {payload:?}");
                }
                assert!(
                    !Path::new(CANARY).exists(),
                    "{why}: {payload:?} made the canary"
                );
                ran += 1;
            }
        }
    }
    assert!(
        refused + ran >= 150,
        "the corpus holds at least 150 payloads"
    );
    assert!(ran > 0 && refused > ran, "{refused} refused, {ran} ran");
    assert!(!Path::new(CANARY).exists());
    eprintln!("{refused} payloads refused, {ran} ran harmlessly");
}
