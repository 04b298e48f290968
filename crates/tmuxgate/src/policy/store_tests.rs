//! [`PolicyStore`] tests: a bad file keeps the old policy, `watch` picks up a change.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Context, PolicyStore};

const ECHO: &str = "[roles.ops.programs.echo]\nargs = [\".*\"]\n";
const TRUE: &str = "[roles.ops.programs.true]\n";

fn allows(store: &PolicyStore, command: &str) -> bool {
    let ctx = Context {
        role: "ops",
        cwd: None,
    };
    store.current().check(&ctx, command).allowed().is_some()
}

#[test]
fn reload_keeps_the_old_policy_on_a_bad_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, ECHO).expect("write");
    let store = PolicyStore::new(Some(path.clone())).expect("loads");
    assert!(allows(&store, "echo hi"));
    assert!(
        !store.reload().expect("unchanged"),
        "same text is no change"
    );
    std::fs::write(&path, "[roles.ops.programs.echo]\nargz = 1\n").expect("write");
    assert!(store.reload().is_err());
    assert!(allows(&store, "echo hi"), "old policy stays");
    std::fs::write(&path, TRUE).expect("write");
    assert!(store.reload().expect("reloads"));
    assert!(!allows(&store, "echo hi"));
    assert!(allows(&store, "true"));
    assert!(PolicyStore::new(Some(dir.path().join("missing.toml"))).is_err());
    let builtin = PolicyStore::new(None).expect("builtin");
    assert!(!builtin.reload().expect("no file"));
}

#[tokio::test]
async fn watch_picks_up_a_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, ECHO).expect("write");
    let store = Arc::new(PolicyStore::new(Some(path.clone())).expect("loads"));
    let cancel = CancellationToken::new();
    let watcher =
        tokio::spawn(Arc::clone(&store).watch_every(Duration::from_millis(20), cancel.clone()));
    std::fs::write(&path, TRUE).expect("write");
    let mut polls = 0;
    while !allows(&store, "true") {
        polls += 1;
        assert!(polls < 250, "the watcher never reloaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!allows(&store, "echo hi"));
    cancel.cancel();
    watcher.await.expect("watcher ends on cancel");
}
