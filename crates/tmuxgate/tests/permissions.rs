//! The permission matrix over the wire: each built-in role × each request × a session of
//! its own, one shared with it read-only, one shared with write access, and someone
//! else's; then what sharing does to a viewer already attached.

mod common;

use tmuxgate_client::protocol::request::{AttachMode, SessionAttach};
use tmuxgate_client::protocol::{ErrorCode, Event, Request};
use tmuxgate_client::{ClientError, into_data};

use common::STEP;
use common::identity::AuthServer;

/// What a request should get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Forbidden,
    NotFound,
}

use Outcome::{Forbidden, NotFound, Ok};

fn outcome<T: std::fmt::Debug>(result: Result<T, ClientError>) -> Outcome {
    outcome_of("", result)
}

fn outcome_of<T: std::fmt::Debug>(case: &str, result: Result<T, ClientError>) -> Outcome {
    match result {
        Result::Ok(_) => Ok,
        Err(ClientError::Server {
            code: ErrorCode::Forbidden,
            ..
        }) => Forbidden,
        Err(ClientError::Server {
            code: ErrorCode::NotFound,
            ..
        }) => NotFound,
        Err(other) => panic!("{case}: unexpected answer: {other}"),
    }
}

fn attach(session_id: &str, mode: AttachMode) -> SessionAttach {
    SessionAttach {
        mode,
        ..tmuxgate_client::attach_request(session_id, 80, 24)
    }
}

/// The relation of a session to the user asking.
#[derive(Clone, Copy, Debug)]
enum Relation {
    Own,
    SharedRead,
    SharedWrite,
    Other,
}

/// Expected outcomes for one role and relation: listed, attach read, attach write,
/// share, destroy.
fn expected(role: &str, relation: Relation) -> (bool, Outcome, Outcome, Outcome, Outcome) {
    use Relation::*;
    match (role, relation) {
        ("admin", _) => (true, Ok, Ok, Ok, Ok),
        ("operator", Own) => (true, Ok, Ok, Ok, Ok),
        ("operator", SharedWrite) => (true, Ok, Ok, Forbidden, Forbidden),
        ("operator", SharedRead) => (true, Ok, Forbidden, Forbidden, Forbidden),
        ("viewer", Own | SharedWrite | SharedRead) => (true, Ok, Forbidden, Forbidden, Forbidden),
        (_, Other) => (false, NotFound, NotFound, NotFound, NotFound),
        other => panic!("no expectation for {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_against_every_kind_of_session() {
    let users = [
        ("root", "admin"),
        ("alice", "operator"),
        ("vic", "operator"), // demoted to viewer once their own session exists
        ("olga", "operator"),
        ("zed", "viewer"),
    ];
    let server = AuthServer::start(&users, |_| {}).await;
    let olga = server.client_as("olga").await;
    let mut sessions = Vec::new();
    for (user, role) in [("root", "admin"), ("alice", "operator"), ("vic", "viewer")] {
        let own = server.client_as(user).await;
        let mine = own
            .create_session(&format!("{user}-own"), 80, 24)
            .await
            .expect("create own");
        sessions.push((user, role, Relation::Own, mine.session_id));
        for (relation, mode) in [
            (Relation::SharedRead, Some(AttachMode::Read)),
            (Relation::SharedWrite, Some(AttachMode::Write)),
            (Relation::Other, None),
        ] {
            let name = format!("{user}-{relation:?}").to_lowercase();
            let info = olga.create_session(&name, 80, 24).await.expect("create");
            if let Some(mode) = mode {
                olga.share(&info.session_id, user, mode)
                    .await
                    .expect("share");
            }
            sessions.push((user, role, relation, info.session_id));
        }
    }
    let vic = "vic".parse().expect("name");
    let viewer = "viewer".parse().expect("role");
    server
        .auth
        .users()
        .set_role(&vic, &viewer)
        .await
        .expect("demote vic");

    for (user, role, relation, session_id) in &sessions {
        let case = format!("{role} {user} on {relation:?}");
        let client = server.client_as(user).await;
        let (listed, read, write, share, destroy) = expected(role, *relation);
        let list = client.list_sessions().await.expect("list");
        let seen = list.iter().find(|s| &s.session_id == session_id);
        assert_eq!(seen.is_some(), listed, "{case}: listed");
        if let Some(info) = seen {
            let owner_or_admin = matches!(relation, Relation::Own) || *role == "admin";
            let shares_shown = !info.shares.is_empty();
            let shared = matches!(relation, Relation::SharedRead | Relation::SharedWrite);
            assert_eq!(
                shares_shown,
                shared && owner_or_admin,
                "{case}: shares shown {info:?}"
            );
        }

        let read_attach = client.attach(attach(session_id, AttachMode::Read)).await;
        let got = outcome_of(&case, read_attach.as_ref().map(|_| ()).map_err(clone_error));
        assert_eq!(got, read, "{case}: attach read");
        if let Result::Ok(att) = &read_attach {
            let channel = att.terminal().channel();
            assert_eq!(
                outcome(client.terminal_input(channel, "nope").await),
                Forbidden,
                "{case}: terminal-input on a read channel"
            );
            client.send_input(channel, b"nope").await.expect("send");
            client
                .wait_event(
                    |e| matches!(e, Event::InputRefused { channel: c, .. } if *c == channel),
                    STEP,
                )
                .await
                .unwrap_or_else(|e| panic!("{case}: INPUT on a read channel: {e}"));
            let resized = client
                .resize(channel, 100, 30)
                .await
                .expect("resize a read channel");
            assert_eq!(
                resized["applied"], false,
                "{case}: a read channel sizes nothing"
            );
        }

        let write_attach = client.attach(attach(session_id, AttachMode::Write)).await;
        let got = outcome_of(
            &case,
            write_attach.as_ref().map(|_| ()).map_err(clone_error),
        );
        assert_eq!(got, write, "{case}: attach write");
        if let Result::Ok(att) = &write_attach {
            let channel = att.terminal().channel();
            client
                .terminal_input(channel, "")
                .await
                .expect("terminal-input on a write channel");
            let resized = client.resize(channel, 100, 30).await.expect("resize");
            assert_eq!(resized["applied"], true, "{case}");
        }

        let got = outcome_of(
            &format!("{case} share"),
            client.share(session_id, "zed", AttachMode::Read).await,
        );
        assert_eq!(got, share, "{case}: share");
        let got = outcome_of(
            &format!("{case} unshare"),
            client.unshare(session_id, "zed").await,
        );
        assert_eq!(got, share, "{case}: unshare");
        let got = outcome_of(
            &format!("{case} destroy"),
            client.destroy_session(session_id).await,
        );
        assert_eq!(got, destroy, "{case}: destroy");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_metrics_and_list_follow_the_role() {
    let users = [("root", "admin"), ("alice", "operator"), ("vera", "viewer")];
    let server = AuthServer::start(&users, |_| {}).await;
    for (user, role) in users {
        let client = server.client_as(user).await;
        let may = role != "viewer";
        let created = outcome(client.create_session(&format!("{user}-s"), 80, 24).await);
        assert_eq!(created, if may { Ok } else { Forbidden }, "{role}: create");
        let metrics = outcome(into_data(
            client.request(Request::Metrics).await.expect("answer"),
        ));
        assert_eq!(metrics, if may { Ok } else { Forbidden }, "{role}: metrics");
    }
    // root sees every session, alice her own; vera none (she owns none, none is shared).
    let count = |user: &'static str| {
        let server = &server;
        async move {
            server
                .client_as(user)
                .await
                .list_sessions()
                .await
                .expect("list")
                .len()
        }
    };
    assert_eq!(
        (
            count("root").await,
            count("alice").await,
            count("vera").await
        ),
        (2, 1, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewers_keystrokes_never_reach_the_pane() {
    let users = [("alice", "operator"), ("vera", "viewer")];
    let server = AuthServer::start(&users, |_| {}).await;
    let alice = server.client_as("alice").await;
    let info = alice
        .create_session("watched", 80, 24)
        .await
        .expect("create");
    alice
        .share(&info.session_id, "vera", AttachMode::Write)
        .await
        .expect("share");
    let mut owner = alice
        .attach(attach(&info.session_id, AttachMode::Write))
        .await
        .expect("attach");
    let vera = server.client_as("vera").await;
    // Even a write share gives a viewer only a read channel.
    let refused = vera
        .attach(attach(&info.session_id, AttachMode::Write))
        .await;
    assert_eq!(outcome(refused.map(|_| ())), Forbidden);
    let watcher = vera
        .attach(attach(&info.session_id, AttachMode::Read))
        .await
        .expect("read");
    let channel = watcher.terminal().channel();
    for _ in 0..20 {
        vera.send_input(channel, b"echo VIEWER-$((6*7))\r")
            .await
            .expect("send");
    }
    let _ = vera.terminal_input(channel, "echo VIEWER-$((6*7))\r").await;
    // The owner's marker comes after every viewer frame the gateway read.
    alice
        .send_input(owner.terminal().channel(), b"echo OWNER-$((6*7))\r")
        .await
        .expect("send");
    owner
        .wait_for(b"OWNER-42", STEP)
        .await
        .expect("owner's input runs");
    let pane = server
        .server
        .tmux(0, &["capture-pane", "-p", "-t", "watched"]);
    assert!(pane.contains("OWNER-42"), "{pane}");
    assert!(
        !pane.contains("VIEWER"),
        "a viewer's keystrokes reached the pane:\n{pane}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_read_then_write_then_unsharing_changes_an_attached_viewer_at_once() {
    let users = [("alice", "operator"), ("bob", "operator")];
    let server = AuthServer::start(&users, |_| {}).await;
    let alice = server.client_as("alice").await;
    let info = alice.create_session("pair", 80, 24).await.expect("create");
    let id = info.session_id.as_str();
    let bob = server.client_as("bob").await;
    // Not shared: bob cannot even see it.
    assert_eq!(
        outcome(bob.attach(attach(id, AttachMode::Read)).await.map(|_| ())),
        NotFound
    );
    assert!(bob.list_sessions().await.expect("list").is_empty());

    alice
        .share(id, "bob", AttachMode::Read)
        .await
        .expect("share read");
    assert_eq!(
        outcome(bob.attach(attach(id, AttachMode::Write)).await.map(|_| ())),
        Forbidden
    );
    let reader = bob
        .attach(attach(id, AttachMode::Read))
        .await
        .expect("attach read");
    drop(reader);

    alice
        .share(id, "bob", AttachMode::Write)
        .await
        .expect("share write");
    let mut writer = bob
        .attach(attach(id, AttachMode::Write))
        .await
        .expect("attach write");
    let channel = writer.terminal().channel();
    bob.send_input(channel, b"echo BOB-$((40+2))\r")
        .await
        .expect("type");
    writer
        .wait_for(b"BOB-42", STEP)
        .await
        .expect("bob's input runs");

    // Write share made read: the channel becomes read-only at once.
    alice
        .share(id, "bob", AttachMode::Read)
        .await
        .expect("downgrade");
    bob.wait_event(
        |e| matches!(e, Event::AccessChanged { channel: c, mode: AttachMode::Read, .. } if *c == channel),
        STEP,
    )
    .await
    .expect("access-changed");
    assert_eq!(
        outcome(bob.terminal_input(channel, "echo LATE\r").await),
        Forbidden
    );
    bob.send_input(channel, b"echo LATE\r").await.expect("send");
    bob.wait_event(
        |e| matches!(e, Event::InputRefused { channel: c, .. } if *c == channel),
        STEP,
    )
    .await
    .expect("INPUT on the downgraded channel is refused");
    let resized = bob.resize(channel, 100, 30).await.expect("resize");
    assert_eq!(
        resized["applied"], false,
        "a downgraded channel sizes nothing"
    );

    // Unshared: the channel ends with reason revoked and the session disappears for bob.
    alice.unshare(id, "bob").await.expect("unshare");
    let event = bob
        .wait_event(
            |e| matches!(e, Event::SessionClosed { channel: c, .. } if *c == channel),
            STEP,
        )
        .await
        .expect("session-closed");
    let Event::SessionClosed { reason, .. } = event else {
        unreachable!()
    };
    assert_eq!(reason, "revoked");
    assert!(bob.list_sessions().await.expect("list").is_empty());
    // Sharing with someone who does not exist, or with oneself, is refused.
    assert!(matches!(
        alice.share(id, "ghost", AttachMode::Read).await,
        Err(ClientError::Server {
            code: ErrorCode::NotFound,
            ..
        })
    ));
    assert!(matches!(
        alice.share(id, "alice", AttachMode::Read).await,
        Err(ClientError::Server {
            code: ErrorCode::InvalidRequest,
            ..
        })
    ));
}

fn clone_error(e: &ClientError) -> ClientError {
    match e {
        ClientError::Server { code, message } => ClientError::Server {
            code: *code,
            message: message.clone(),
        },
        other => ClientError::Protocol(other.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_taken_back_while_an_attach_is_in_flight_leaves_no_write_access() {
    let users = [("alice", "operator"), ("bob", "operator")];
    let server = AuthServer::start(&users, |_| {}).await;
    let alice = server.client_as("alice").await;
    let bob = server.client_as("bob").await;
    // The delays move the unshare across the attach's steps (lookup, hub, snapshot, reply).
    for delay_ms in [0u64, 1, 2, 3, 5, 8, 13] {
        let name = format!("race{delay_ms}");
        let info = alice.create_session(&name, 80, 24).await.expect("create");
        let id = info.session_id.as_str();
        alice
            .share(id, "bob", AttachMode::Write)
            .await
            .expect("share");
        let (attached, unshared) = tokio::join!(bob.attach(attach(id, AttachMode::Write)), async {
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
            alice.unshare(id, "bob").await
        });
        unshared.expect("unshare");
        let Result::Ok(attachment) = attached else {
            continue; // refused outright: fine
        };
        let channel = attachment.terminal().channel();
        // The unshare has answered, so it is in force for bob's next message.
        bob.send_input(channel, b"echo LEAK-$((6*7))\r")
            .await
            .expect("send");
        assert!(
            bob.terminal_input(channel, "echo LEAK-$((6*7))\r")
                .await
                .is_err(),
            "delay {delay_ms}: terminal-input accepted after the unshare"
        );
        bob.wait_event(
            |e| matches!(e, Event::SessionClosed { channel: c, reason, .. } if *c == channel && reason == "revoked"),
            STEP,
        )
        .await
        .unwrap_or_else(|e| panic!("delay {delay_ms}: no session-closed revoked: {e}"));
        let mut owner = alice
            .attach(attach(id, AttachMode::Write))
            .await
            .expect("owner attaches");
        alice
            .send_input(owner.terminal().channel(), b"echo OWNER-$((6*7))\r")
            .await
            .expect("owner types");
        owner
            .wait_for(b"OWNER-42", STEP)
            .await
            .expect("owner's input runs");
        let pane = server.server.tmux(0, &["capture-pane", "-p", "-t", &name]);
        assert!(
            !pane.contains("LEAK-42"),
            "delay {delay_ms}: bob's input reached the pane:\n{pane}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_role_gets_exactly_its_permissions() {
    let roles = tempfile::NamedTempFile::new().expect("roles file");
    let text =
        "[roles.auditor]\npermissions = [\"session.list.all\", \"session.attach.read.any\"]\n";
    std::fs::write(roles.path(), text).expect("write roles");
    let path = roles.path().to_path_buf();
    let users = [("alice", "operator"), ("audrey", "auditor")];
    let server = AuthServer::start(&users, move |c| c.roles_file = Some(path)).await;
    let alice = server.client_as("alice").await;
    let info = alice
        .create_session("audited", 80, 24)
        .await
        .expect("create");
    let id = info.session_id.as_str();
    let audrey = server.client_as("audrey").await;
    let listed = audrey.list_sessions().await.expect("list");
    assert_eq!(listed.len(), 1, "session.list.all: every session");
    assert!(listed[0].shares.is_empty());
    let reader = audrey.attach(attach(id, AttachMode::Read)).await;
    assert_eq!(outcome(reader.map(|_| ())), Ok, "session.attach.read.any");
    let writer = audrey.attach(attach(id, AttachMode::Write)).await;
    assert_eq!(outcome(writer.map(|_| ())), Forbidden);
    assert_eq!(outcome(audrey.destroy_session(id).await), Forbidden);
    assert_eq!(
        outcome(audrey.share(id, "alice", AttachMode::Read).await),
        Forbidden
    );
    let created = audrey.create_session("mine", 80, 24).await;
    assert_eq!(outcome(created), Forbidden);
}
