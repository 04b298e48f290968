//! The audit trail of a full scenario through a real gateway: every line validates
//! against `docs/audit.schema.json`, names no secret, and `tmuxgate audit verify`
//! accepts the file and detects a deleted and an edited line.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tmuxgate_client::protocol::ErrorCode;
use tmuxgate_client::protocol::request::AttachMode;
use tmuxgate_client::{Client, ClientError, ClientOptions};

use common::identity::{AuthServer, http, password};
use common::{STEP, TestServer};

/// Every line of `text` valid against the schema; the event types seen.
fn validate_all(text: &str) -> BTreeSet<String> {
    common::audit::validated(text)
        .iter()
        .map(|line| line["eventType"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `tmuxgate audit verify FILES`: exit code and output.
fn verify(files: &[&Path]) -> (i32, String) {
    verify_with(files, &[])
}

/// Logs in over HTTP, fails once, and runs a session's life as alice with bob watching.
async fn scenario(server: &AuthServer) -> Vec<String> {
    let addr = server.server.addr;
    let json = [("Content-Type", "application/json")];
    let body = format!(
        r#"{{"username":"alice","password":"{}"}}"#,
        password("alice")
    );
    let login = http(addr, "POST", "/api/login", &json, &body).await;
    assert_eq!(login.status, 200);
    let bad = r#"{"username":"alice","password":"not-her-password"}"#;
    assert_eq!(
        http(addr, "POST", "/api/login", &json, bad).await.status,
        401
    );
    let evil = [("Origin", "https://evil.example")];
    assert_eq!(http(addr, "GET", "/api/me", &evil, "").await.status, 403);

    // A forged token is refused at the upgrade.
    let forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.Zm9yZ2Vk";
    let options = ClientOptions::default().token(forged);
    let refused = Client::connect_with(&server.server.url(), options)
        .await
        .expect("upgrade");
    assert!(refused.wait_closed(STEP).await.is_ok());

    let alice = Client::connect(&server.server.url())
        .await
        .expect("connect");
    assert!(alice.login("alice", "wrong-password").await.is_err());
    let token = alice
        .login("alice", &password("alice"))
        .await
        .expect("login")
        .token;
    let token = token.expect("a password login returns a token");
    let info = alice
        .create_session("audited", 80, 24)
        .await
        .expect("create");
    let id = info.session_id.clone();
    let att = alice.attach_session(&id, 80, 24).await.expect("attach");
    alice
        .share(&id, "bob", AttachMode::Read)
        .await
        .expect("share");
    let bob = server.client_as("bob").await;
    match bob.create_session("not-allowed", 80, 24).await {
        Err(ClientError::Server { code, .. }) => assert_eq!(code, ErrorCode::Forbidden),
        other => panic!("a viewer creates a session: {other:?}"),
    }
    alice.unshare(&id, "bob").await.expect("unshare");
    alice.detach(att.channel).await.expect("detach");
    alice.destroy_session(&id).await.expect("destroy");
    let bearer = format!("Bearer {token}");
    let logout = http(
        addr,
        "POST",
        "/api/logout",
        &[("Authorization", &bearer)],
        "",
    )
    .await;
    assert_eq!(logout.status, 204);
    alice.wait_closed(STEP).await.expect("closed at logout");
    bob.close().await.expect("close");
    vec![
        token,
        forged.to_owned(),
        password("alice"),
        password("bob"),
        "wrong-password".into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_scenario_is_audited_in_schema_and_the_chain_catches_tampering() {
    let server = AuthServer::start(&[("alice", "operator"), ("bob", "viewer")], |_| {}).await;
    let secrets = scenario(&server).await;
    let dir = server.server.dir.clone();
    let path = dir.join("sock-state").join("audit.jsonl");
    // Alice's close is recorded before her close frame leaves; bob's after the gateway
    // reads his: each flush waits for the writer, until both are in.
    let read_both_closes = async {
        loop {
            server.server.handle.flush_audit().await;
            let text = std::fs::read_to_string(&path).expect("audit log");
            if text.matches("CONNECTION_CLOSED").count() >= 2 {
                return text;
            }
            tokio::task::yield_now().await;
        }
    };
    let text = tokio::time::timeout(STEP, read_both_closes)
        .await
        .expect("both closes audited");

    let kinds = validate_all(&text);
    let schema: Value = serde_json::from_str(common::audit::SCHEMA).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    // The schema has teeth: a wrong severity, an unknown field, a secret-shaped extra.
    let mut wrong: Value = serde_json::from_str(text.lines().next().unwrap_or("{}")).expect("json");
    wrong["severity"] = "bogus".into();
    assert!(!validator.is_valid(&wrong));
    let mut extra: Value = serde_json::from_str(text.lines().next().unwrap_or("{}")).expect("json");
    extra["metadata"]["token"] = "x".into();
    assert!(!validator.is_valid(&extra));
    for expected in [
        "CONFIG_LOADED",
        "AUTH_SUCCESS",
        "AUTH_FAILURE",
        "ORIGIN_REJECTED",
        "TOKEN_REJECTED",
        "CONNECTION_OPENED",
        "SESSION_CREATED",
        "SESSION_ATTACHED",
        "SESSION_SHARED",
        "PERMISSION_DENIED",
        "SESSION_UNSHARED",
        "SESSION_DETACHED",
        "SESSION_DESTROYED",
        "TOKEN_REVOKED",
        "CONNECTION_CLOSED",
    ] {
        assert!(kinds.contains(expected), "no {expected} in\n{text}");
    }
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "the audit log holds a secret"
        );
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let (code, out) = verify(&[&path]);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = text.lines().collect();
    let copy = dir.join("tampered.jsonl");
    let mut deleted = lines.clone();
    deleted.remove(5);
    std::fs::write(&copy, deleted.join("\n") + "\n").expect("write");
    let (code, out) = verify(&[&copy]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("tampered.jsonl:6:") && out.contains("deleted"),
        "{out}"
    );

    let mut edited: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    edited[3] = edited[3].replacen("\"riskScore\":", "\"riskScore\":1", 1);
    std::fs::write(&copy, edited.join("\n") + "\n").expect("write");
    let (code, out) = verify(&[&copy]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("tampered.jsonl:4:") && out.contains("edited"),
        "{out}"
    );
    // The ends, which the chain alone cannot vouch for: with what the operator kept
    // (seq 0 at the start, the last seq and hash an earlier verify printed), they are.
    let last: serde_json::Value = serde_json::from_str(lines[lines.len() - 1]).expect("JSON");
    let last_seq = last["seq"].as_u64().expect("seq").to_string();
    let intact = verify_with(&[&path], &["--from-start", "--last-seq", &last_seq]);
    assert_eq!(intact.0, 0, "{}", intact.1);
    let hash = intact
        .1
        .rsplit("hash ")
        .next()
        .expect("hash printed")
        .trim()
        .to_owned();
    let cases: [(&str, Vec<String>); 3] = [
        (
            "first line cut",
            lines[1..].iter().map(|l| l.to_string()).collect(),
        ),
        (
            "last line cut",
            lines[..lines.len() - 1]
                .iter()
                .map(|l| l.to_string())
                .collect(),
        ),
        ("last line edited", {
            let mut v: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            let end = v.len() - 1;
            v[end] = v[end].replacen("\"riskScore\":", "\"riskScore\":1", 1);
            v
        }),
    ];
    for (what, tampered) in cases {
        std::fs::write(&copy, tampered.join("\n") + "\n").expect("write");
        let (plain, _) = verify(&[&copy]);
        assert_eq!(plain, 0, "{what}: the chain alone cannot see it");
        let args = [
            "--from-start",
            "--last-seq",
            &last_seq,
            "--last-hash",
            &hash,
        ];
        let (code, out) = verify_with(&[&copy], &args);
        assert_eq!(code, 1, "{what}: {out}");
    }
}

/// `tmuxgate audit verify ARGS FILES`.
fn verify_with(files: &[&Path], args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tmuxgate"))
        .args(["audit", "verify"])
        .args(args)
        .args(files)
        .output()
        .expect("run tmuxgate");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_backend_is_audited_and_rotated_files_verify_as_one_chain() {
    let server = TestServer::start_with(|c| {
        c.audit_max_bytes = 4096;
        c.audit_keep = 3;
    })
    .await;
    for _ in 0..20 {
        let client = server.client().await;
        client.heartbeat().await.expect("heartbeat");
        client.close().await.expect("close");
    }
    let client = server.client().await;
    let info = client
        .create_session("doomed", 80, 24)
        .await
        .expect("create");
    client
        .attach_session(&info.session_id, 80, 24)
        .await
        .expect("attach");
    let pid = server.tmux(0, &["display-message", "-p", "#{pid}"]);
    let killed = Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .expect("kill");
    assert!(killed.success());

    let path = server.dir.join("sock-state").join("audit.jsonl");
    let lost_is_audited = async {
        loop {
            server.handle.flush_audit().await;
            let text = std::fs::read_to_string(&path).expect("audit log");
            if text.contains("BACKEND_LOST") && text.contains("\"reason\":\"backend-lost\"") {
                return text;
            }
            tokio::task::yield_now().await;
        }
    };
    let text = tokio::time::timeout(STEP, lost_is_audited)
        .await
        .expect("BACKEND_LOST audited");
    let line = text
        .lines()
        .find(|l| l.contains("BACKEND_LOST"))
        .unwrap_or_default();
    let lost: Value = serde_json::from_str(line).expect("json");
    assert_eq!(
        (
            lost["source"].as_str(),
            lost["metadata"]["backend"].as_str()
        ),
        (Some("gateway"), Some("tmux-0"))
    );

    let mut set: Vec<std::path::PathBuf> = (1..=3)
        .rev()
        .map(|n| {
            server
                .dir
                .join("sock-state")
                .join(format!("audit.jsonl.{n}"))
        })
        .filter(|p| p.exists())
        .collect();
    assert!(set.len() >= 2, "rotated at 4096 bytes: {set:?}");
    set.push(path.clone());
    let mut all = String::new();
    for file in &set {
        let content = std::fs::read_to_string(file).expect("read");
        assert!(
            content.len() <= 4096,
            "{} is {} bytes",
            file.display(),
            content.len()
        );
        all.push_str(&content);
    }
    validate_all(&all);
    let files: Vec<&Path> = set.iter().map(|p| p.as_path()).collect();
    let (code, out) = verify(&files);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact"), "{out}");
    // The newest file alone is a valid chain too, starting after the rotated lines.
    let (code, out) = verify(&[&path]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("older files not given"), "{out}");
}
