//! Session ownership and shares live in tmux with the session: a restarted gateway finds them
//! again, and values rewritten from inside a pane can only lose access.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tmuxgate::backends::BackendSettings;
use tmuxgate::sessions::{HubSettings, SessionError, Sessions};
use tmuxgate_client::protocol::request::{AttachMode, SessionOptions};
use tmuxgate_client::protocol::response::Share;

async fn sessions(dir: &Path) -> Arc<Sessions> {
    let settings = BackendSettings {
        tmux_bin: "tmux".into(),
        dir: dir.to_path_buf(),
        history_limit: 1000,
        default_command: Some("exec bash --norc --noprofile".into()),
        health: Default::default(),
    };
    let hub = HubSettings {
        ring_bytes: 64 * 1024,
        snapshot_history_lines: 100,
        linger: Duration::ZERO,
        captures: Default::default(),
        audit: tmuxgate::audit::Audit::off(Default::default()),
        fleet: Default::default(),
    };
    Sessions::start(
        settings,
        tmuxgate::backends::PoolLayout::uniform(1),
        hub,
        (80, 24),
    )
    .await
    .expect("backends start")
}

fn share(user: &str, mode: AttachMode) -> Share {
    Share {
        user: user.into(),
        mode,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_and_shares_survive_a_restart_and_tampering_only_removes() {
    let tmp = tempfile::Builder::new()
        .prefix("tg")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let dir = tmp.path().join("sock");
    let first = sessions(&dir).await;
    let options = SessionOptions::default();
    let (info, _) = first
        .create("owned", &options, Some("ann"))
        .await
        .expect("create");
    assert_eq!(info.owner.as_deref(), Some("ann"));
    let id = info.session_id;
    assert_eq!(
        first
            .share(&id, "bob", AttachMode::Write)
            .await
            .expect("share"),
        None
    );
    assert_eq!(
        first
            .share(&id, "bob", AttachMode::Read)
            .await
            .expect("downgrade"),
        Some(AttachMode::Write)
    );
    first
        .share(&id, "carl", AttachMode::Write)
        .await
        .expect("share");
    assert_eq!(
        first.unshare(&id, "carl").await.expect("unshare"),
        AttachMode::Write
    );
    assert!(matches!(
        first.unshare(&id, "carl").await,
        Err(SessionError::NotFound)
    ));
    assert!(matches!(
        first.share(&id, "Not A User", AttachMode::Read).await,
        Err(SessionError::Invalid(_))
    ));
    drop(first);

    let second = sessions(&dir).await;
    let entry = second.get(&id).expect("rediscovered");
    assert_eq!(entry.owner.as_deref(), Some("ann"));
    assert_eq!(entry.shares(), vec![share("bob", AttachMode::Read)]);
    assert_eq!(entry.grant("ann"), Some(AttachMode::Write));
    assert_eq!(entry.grant("bob"), Some(AttachMode::Read));
    assert_eq!(entry.grant("carl"), None);

    // What a shell inside a pane could write: an invalid owner, a bogus share, a valid one.
    let socket = second.backends()[0]
        .socket()
        .expect("a local backend")
        .to_path_buf();
    let target = entry.tmux_id.to_string();
    common::tmux_at(
        &socket,
        &["set-option", "-t", &target, "@tmuxgate_owner", "Root;x"],
    );
    common::tmux_at(
        &socket,
        &[
            "set-option",
            "-t",
            &target,
            "@tmuxgate_shares",
            "eve:admin,dan:write",
        ],
    );
    drop((entry, second));
    let third = sessions(&dir).await;
    let entry = third.get(&id).expect("still there");
    assert_eq!(entry.owner, None, "a malformed owner is no owner");
    assert_eq!(entry.shares(), vec![share("dan", AttachMode::Write)]);
    drop((entry, third));
    // `kill_servers` looks in DIR/sock: the temporary directory, not the socket directory.
    common::kill_servers(tmp.path());
}
