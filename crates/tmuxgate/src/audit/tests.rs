//! The writer, rotation and `verify` against real files; no secret reaches a line.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::verify::{VerifyError, verify_files};
use super::*;

fn settings(dir: &Path, max_bytes: u64, keep: usize) -> AuditSettings {
    AuditSettings {
        path: dir.join("audit.jsonl"),
        max_bytes,
        keep,
    }
}

fn client() -> Option<IpAddr> {
    "192.0.2.1".parse().ok()
}

async fn write_events(settings: AuditSettings, n: usize) -> Arc<AuditCounters> {
    let counters = Arc::new(AuditCounters::default());
    let audit = Audit::start(settings, counters.clone()).expect("audit starts");
    for i in 0..n {
        let kind = EventKind::ALL[i % EventKind::ALL.len()];
        audit.record(Record::new(kind, client()).user("alice").session("s1"));
    }
    audit.close().await;
    counters
}

fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("read");
    text.lines().map(str::to_owned).collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").expect("write");
}

fn broken_line(result: Result<verify::Verified, VerifyError>) -> (u64, String) {
    match result {
        Err(VerifyError::Broken { line, reason, .. }) => (line, reason),
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

#[tokio::test]
async fn lines_chain_and_a_restart_continues_the_chain() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let s = settings(dir.path(), 0, 3);
    let counters = write_events(s.clone(), 30).await;
    assert_eq!(counters.written.load(Ordering::Relaxed), 30);
    let mode = std::fs::metadata(&s.path)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    write_events(s.clone(), 5).await;
    let verified = verify_files(std::slice::from_ref(&s.path)).expect("intact");
    assert_eq!(
        (verified.lines, verified.first_seq, verified.last_seq),
        (35, Some(0), Some(34))
    );
    let first: serde_json::Value = serde_json::from_str(&lines(&s.path)[0]).expect("json");
    assert_eq!(first["prevHash"], hash_hex(GENESIS));
    assert_eq!(first["source"], "192.0.2.1");
    assert_eq!(first["eventType"], "AUTH_SUCCESS");
}

#[tokio::test]
async fn rotation_keeps_the_chain_across_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = settings(dir.path(), 2048, 2);
    let counters = write_events(s.clone(), 60).await;
    assert!(counters.rotations.load(Ordering::Relaxed) >= 2);
    let set: Vec<PathBuf> = [2, 1]
        .map(|n| writer::rotated(&s.path, n))
        .into_iter()
        .chain([s.path.clone()])
        .collect();
    for file in &set {
        assert!(std::fs::metadata(file).expect("exists").len() <= 2048);
    }
    assert!(!writer::rotated(&s.path, 3).exists(), "AUDIT_KEEP=2");
    let verified = verify_files(&set).expect("intact across files");
    assert_eq!(verified.last_seq, Some(59));
    assert!(
        verified.first_seq.is_some_and(|s| s > 0),
        "older files dropped"
    );
    // Out of order, the files do not chain.
    let swapped = [set[1].clone(), set[0].clone(), set[2].clone()];
    assert!(verify_files(&swapped).is_err());
}

#[tokio::test]
async fn verify_names_edited_deleted_reordered_and_bad_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = settings(dir.path(), 0, 1);
    write_events(s.clone(), 10).await;
    let original = lines(&s.path);
    let copy = dir.path().join("copy.jsonl");
    let check = |mutated: Vec<String>| {
        write_lines(&copy, &mutated);
        broken_line(verify_files(std::slice::from_ref(&copy)))
    };

    let mut edited = original.clone();
    edited[4] = edited[4].replace("alice", "mallory");
    let (line, reason) = check(edited);
    assert_eq!(line, 5, "{reason}");
    assert!(reason.contains("edited"), "{reason}");

    let mut deleted = original.clone();
    deleted.remove(3);
    let (line, reason) = check(deleted);
    assert_eq!(line, 4, "{reason}");
    assert!(reason.contains("deleted"), "{reason}");

    let mut reordered = original.clone();
    reordered.swap(6, 7);
    let (line, reason) = check(reordered);
    assert_eq!(line, 7, "{reason}");

    let mut garbage = original.clone();
    garbage[2] = "{not json".into();
    let (line, reason) = check(garbage);
    assert_eq!(line, 3);
    assert!(reason.contains("JSON"), "{reason}");

    let mut reseq = original.clone();
    reseq[5] = reseq[5].replace("\"seq\":5", "\"seq\":50");
    let (line, reason) = check(reseq);
    assert_eq!(line, 6, "{reason}");

    let mut first = original;
    first[0] = first[0].replace("alice", "eve");
    let (line, _) = check(first);
    assert_eq!(line, 1);
}

#[tokio::test]
async fn a_torn_last_line_is_cut_before_writing_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = settings(dir.path(), 0, 1);
    write_events(s.clone(), 3).await;
    let mut text = std::fs::read(&s.path).expect("read");
    text.extend_from_slice(b"{\"timestamp\":\"20");
    std::fs::write(&s.path, text).expect("write");
    write_events(s.clone(), 2).await;
    let verified = verify_files(std::slice::from_ref(&s.path)).expect("intact");
    assert_eq!(verified.last_seq, Some(4));
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_without_blocking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let counters = Arc::new(AuditCounters::default());
    let audit = Audit::start(settings(dir.path(), 0, 1), counters.clone()).expect("start");
    let n = QUEUE_CAPACITY * 4;
    for _ in 0..n {
        audit.record(Record::new(EventKind::ConnectionOpened, client()));
    }
    audit.flush().await;
    let written = counters.written.load(Ordering::Relaxed);
    let dropped = counters.dropped.load(Ordering::Relaxed);
    assert_eq!(written + dropped, n as u64);
    let path = dir.path().join("audit.jsonl");
    assert_eq!(verify_files(&[path]).expect("intact").lines, written);
}

/// Every kind of event, with every text setter fed a token (alone, and inside other
/// text): no line carries it. Passwords have no way in: no setter takes one, and a
/// failed login records only the error's fixed reason, never the name or password tried.
#[test]
fn no_line_carries_a_secret() {
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
    let inside = format!("Bearer {token}; more");
    let error = crate::security::AuthError::InvalidCredentials;
    for kind in EventKind::ALL {
        let record = Record::new(kind, client())
            .user(token)
            .role(inside.as_str())
            .session(token)
            .target_user(inside.as_str())
            .mode("write")
            .channel(3)
            .reason(error.reason())
            .transport("header")
            .permission(token)
            .headers(inside.clone(), format!("tmuxgate.token.{token}"))
            .backend(token)
            .closed(Some(4401))
            .attempt(2);
        let line = line::render(&record, 40, &Chain::genesis());
        let text = String::from_utf8(line).expect("utf-8");
        assert!(!text.contains("eyJ"), "{text}");
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(value["eventType"], kind.name());
        assert_eq!(value["metadata"]["user"], "***");
        assert_eq!(value["metadata"]["host"], "***");
        assert_eq!(value["metadata"]["reason"], "invalid-credentials");
    }
    // Ordinary names pass unchanged.
    let plain = Record::new(EventKind::SessionShared, client())
        .user("alice.b")
        .session("s_1f");
    assert_eq!(plain.meta.user.as_deref(), Some("alice.b"));
}
