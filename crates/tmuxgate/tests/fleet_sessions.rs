//! Sessions across a fleet (issue 9): gateways sharing Redis and the tmux servers agree on
//! who may use a session, and trust the store's records, not what a pane can rewrite.

mod common;

use std::time::Duration;

use common::fleet::{passed, prefix, second_with, until_listed, until_visible};
use common::identity::AuthServer;
use common::redis::RedisServer;
use common::{STEP, TestServer};
use tmuxgate::config::{Config, Secret};
use tmuxgate::store::{SessionRecord, StoreEvent};
use tmuxgate::supervise::faults;
use tmuxgate_client::protocol::Event;
use tmuxgate_client::protocol::request::AttachMode;
use tmuxgate_client::{Client, ClientOptions};

/// Which gateway of a [`Pair`].
#[derive(Clone, Copy)]
enum Side {
    A,
    B,
}
use Side::{A, B};

/// Two gateways with authentication on, one Redis, one set of tmux servers, and the same
/// users (all operators) and signing keys.
struct Pair {
    a: AuthServer,
    b: Option<(TestServer, tempfile::TempDir)>,
    redis: RedisServer,
    prefix: String,
}

impl Pair {
    /// A and B.
    async fn start(users: &[&str]) -> Pair {
        let mut pair = Pair::start_a(users).await;
        pair.start_b().await;
        pair
    }

    /// A only; [`Pair::start_b`] adds B.
    async fn start_a(users: &[&str]) -> Pair {
        let redis = RedisServer::start();
        let prefix = prefix();
        let (url, key_prefix) = (redis.url(), prefix.clone());
        let users: Vec<(&str, &str)> = users.iter().map(|u| (*u, "operator")).collect();
        let a = AuthServer::start(&users, move |c| {
            c.redis_url = Some(Secret::new(url));
            c.redis_prefix = key_prefix;
        })
        .await;
        Pair {
            a,
            b: None,
            redis,
            prefix,
        }
    }

    async fn start_b(&mut self) {
        let sockets = self.a.server.dir.join("sock");
        let b = second_with(&self.a, &self.redis.url(), &self.prefix, move |c| {
            c.tmux_socket_path = sockets;
        })
        .await;
        self.b = Some(b);
    }

    fn url(&self, side: Side) -> String {
        match side {
            A => self.a.server.url(),
            B => self.b.as_ref().expect("B started").0.url(),
        }
    }

    /// `user`'s connection to `side`.
    async fn client(&self, side: Side, user: &str) -> Client {
        let token = self.a.token_for(user, Duration::from_secs(600)).await;
        Client::connect_with(&self.url(side), ClientOptions::default().token(&token))
            .await
            .expect("connect")
    }

    /// The outbox of `side`'s writes to the store, as a fault target.
    fn outbox(&self, side: Side) -> String {
        let server = match side {
            A => &self.a.server,
            B => &self.b.as_ref().expect("B started").0,
        };
        format!("fleet-outbox:{}", server.handle.instance())
    }

    /// The shares the store's record of `id` holds.
    async fn stored_shares(&self, id: &str) -> String {
        let record = self.store().await.session(id).await.expect("read");
        record.expect("the record").shares
    }

    /// The store as a gateway of this fleet sees it.
    async fn store(&self) -> std::sync::Arc<dyn tmuxgate::store::Store> {
        let mut config = Config::for_tests(self.a.server.dir.join("unused"));
        config.redis_url = Some(Secret::new(self.redis.url()));
        config.redis_prefix = self.prefix.clone();
        tmuxgate::store::open(&config).await.expect("the store")
    }
}

/// A share given, narrowed and taken back on one gateway takes effect on another's viewers
/// at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_changed_on_one_gateway_take_effect_on_another() {
    let fleet = Pair::start(&["ann", "bob"]).await;
    let ann = fleet.client(A, "ann").await;
    let bob = fleet.client(B, "bob").await;
    let id = ann
        .create_session("ann-s", 80, 24)
        .await
        .expect("create")
        .session_id;
    ann.share(&id, "bob", AttachMode::Write)
        .await
        .expect("share on A");
    until_listed(&bob, &id).await;
    let att = bob
        .attach_session(&id, 80, 24)
        .await
        .expect("bob attaches on B");
    assert_eq!(att.mode, AttachMode::Write);
    let channel = att.channel;

    ann.share(&id, "bob", AttachMode::Read)
        .await
        .expect("narrowed on A");
    bob.wait_event(
        |e| matches!(e, Event::AccessChanged { channel: c, mode: AttachMode::Read, .. } if *c == channel),
        STEP,
    )
    .await
    .expect("B's channel becomes read-only");

    ann.unshare(&id, "bob").await.expect("taken back on A");
    let closed = bob
        .wait_event(
            |e| matches!(e, Event::SessionClosed { channel: c, .. } if *c == channel),
            STEP,
        )
        .await
        .expect("B's channel ends");
    assert!(
        matches!(&closed, Event::SessionClosed { reason, .. } if reason == "revoked"),
        "{closed:?}"
    );
    assert!(bob.list_sessions().await.expect("list").is_empty());
}

/// A fleet of ann, bob and carl, and a session ann made on A and shared with bob (read),
/// with ann's connections to A and B.
async fn shared_with_bob() -> (Pair, Client, Client, String) {
    let fleet = Pair::start(&["ann", "bob", "carl"]).await;
    let (ann_a, ann_b) = (fleet.client(A, "ann").await, fleet.client(B, "ann").await);
    let created = ann_a.create_session("shared", 80, 24).await;
    let id = created.expect("create").session_id;
    ann_a
        .share(&id, "bob", AttachMode::Read)
        .await
        .expect("share");
    (fleet, ann_a, ann_b, id)
}

/// Two gateways change two users' shares of one session at the same moment: both changes
/// hold everywhere (each is one user's entry in the store, not a whole list written back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_changes_made_at_once_on_two_gateways_both_hold() {
    let (fleet, ann_a, ann_b, id) = shared_with_bob().await;
    let (bob_a, bob_b) = (fleet.client(A, "bob").await, fleet.client(B, "bob").await);
    let (carl_a, carl_b) = (fleet.client(A, "carl").await, fleet.client(B, "carl").await);
    until_visible(&bob_b, &id, true, "bob on B").await;
    let (taken, given) = tokio::join!(
        ann_a.unshare(&id, "bob"),
        ann_b.share(&id, "carl", AttachMode::Read)
    );
    taken.expect("unshare on A");
    given.expect("share on B");
    for (who, client, want) in [
        ("bob on A", &bob_a, false),
        ("bob on B", &bob_b, false),
        ("carl on A", &carl_a, true),
        ("carl on B", &carl_b, true),
    ] {
        until_visible(client, &id, want, who).await;
    }
}

/// Whether `client` lists `session_id` now (once the user's request quota lets it ask).
async fn lists(client: &Client, session_id: &str) -> bool {
    loop {
        match client.list_sessions().await {
            Ok(listed) => return listed.iter().any(|s| s.session_id == session_id),
            result => {
                passed(result, "list");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// A share given on B is in effect on B before B has written it to the store. A record
/// changed meanwhile by A (bob's share taken back), which B takes, does not undo it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_the_store_does_not_hold_yet_outlives_another_gateways_change() {
    let (fleet, ann_a, ann_b, id) = shared_with_bob().await;
    let (bob_b, carl_a, carl_b) = (
        fleet.client(B, "bob").await,
        fleet.client(A, "carl").await,
        fleet.client(B, "carl").await,
    );
    until_visible(&bob_b, &id, true, "bob on B").await;

    let held = faults::hold(fleet.outbox(B));
    ann_b
        .share(&id, "carl", AttachMode::Read)
        .await
        .expect("share on B");
    assert!(lists(&carl_b, &id).await, "in effect on B at once");
    ann_a.unshare(&id, "bob").await.expect("unshare on A");
    // B has taken A's record (bob is gone there), which does not name carl yet.
    until_visible(&bob_b, &id, false, "bob on B").await;
    let stored = fleet.stored_shares(&id).await;
    assert!(!stored.contains("carl"), "held: {stored}");
    assert!(lists(&carl_b, &id).await, "carl on B, after A's change");

    drop(held);
    until_visible(&carl_a, &id, true, "carl on A").await;
    assert!(lists(&carl_b, &id).await, "carl on B, once stored");
}

/// A share taken back on A is gone on A before A has written that to the store. A record
/// changed meanwhile by B (carl's share given), which still names bob, does not give bob
/// his share back on A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_taken_back_stays_gone_while_the_store_still_holds_it() {
    let (fleet, ann_a, ann_b, id) = shared_with_bob().await;
    let (bob_a, bob_b, carl_a) = (
        fleet.client(A, "bob").await,
        fleet.client(B, "bob").await,
        fleet.client(A, "carl").await,
    );
    until_visible(&bob_b, &id, true, "bob on B").await;
    assert!(lists(&bob_a, &id).await, "bob on A");

    let held = faults::hold(fleet.outbox(A));
    ann_a.unshare(&id, "bob").await.expect("unshare on A");
    assert!(!lists(&bob_a, &id).await, "taken back on A at once");
    ann_b
        .share(&id, "carl", AttachMode::Read)
        .await
        .expect("share on B");
    // A has taken B's record (carl is there), which still names bob.
    until_visible(&carl_a, &id, true, "carl on A").await;
    let stored = fleet.stored_shares(&id).await;
    assert!(stored.contains("bob"), "held: {stored}");
    assert!(!lists(&bob_a, &id).await, "bob on A, after B's change");

    drop(held);
    until_visible(&bob_b, &id, false, "bob on B").await;
    assert!(!lists(&bob_a, &id).await, "bob on A, once stored");
}

/// A pane rewrote the session's owner and shares in tmux; a gateway that starts afterwards
/// takes them from the store, where only the gateways write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_joining_takes_owners_and_shares_from_the_store_not_from_tmux() {
    let mut fleet = Pair::start_a(&["ann", "mallory"]).await;
    let ann_a = fleet.client(A, "ann").await;
    let id = ann_a
        .create_session("owned", 80, 24)
        .await
        .expect("create")
        .session_id;
    // What any shell in one of the server's panes could do.
    for (option, value) in [
        ("@tmuxgate_owner", "mallory"),
        ("@tmuxgate_shares", "mallory:write"),
    ] {
        fleet
            .a
            .server
            .tmux(0, &["set-option", "-t", "owned", option, value]);
    }
    fleet.start_b().await;
    let ann_b = fleet.client(B, "ann").await;
    until_visible(&ann_b, &id, true, "ann on B").await;
    let mallory_b = fleet.client(B, "mallory").await;
    assert!(
        mallory_b.list_sessions().await.expect("list").is_empty(),
        "the forged owner and share give nothing"
    );
    let attach = mallory_b.attach_session(&id, 80, 24).await;
    assert!(attach.is_err(), "mallory cannot attach");
}

/// A record in the store that names another session's tmux id (stale, or forged by whoever
/// can write to Redis) is not adopted: the tmux session must carry the record's id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_its_tmux_session_does_not_confirm_is_not_adopted() {
    let fleet = Pair::start(&["ann", "mallory"]).await;
    let ann_a = fleet.client(A, "ann").await;
    let real = ann_a
        .create_session("real", 80, 24)
        .await
        .expect("create")
        .session_id;
    let tmux_id = fleet
        .a
        .server
        .tmux(0, &["display-message", "-p", "-t", "real", "#{session_id}"]);
    let store = fleet.store().await;
    let forged = SessionRecord {
        id: "s_0123456789abcdef01234567".into(),
        name: "forged".into(),
        backend: "tmux-0".into(),
        owner: Some("mallory".into()),
        shares: String::new(),
        created_at: 1,
        tmux_id: tmux_id.trim().to_owned(),
        mark: None,
    };
    store.put_session(&forged).await.expect("put");
    let event = StoreEvent::SessionCreated {
        session_id: forged.id.clone(),
    };
    store.publish(&event).await.expect("publish");
    // Events are applied in order: once a later session is listed on B, the forged one has
    // been considered.
    let later = ann_a
        .create_session("later", 80, 24)
        .await
        .expect("create")
        .session_id;
    let ann_b = fleet.client(B, "ann").await;
    until_listed(&ann_b, &later).await;
    until_listed(&ann_b, &real).await;
    let mallory_b = fleet.client(B, "mallory").await;
    assert!(
        mallory_b.list_sessions().await.expect("list").is_empty(),
        "the forged record bound nothing to mallory"
    );
}

/// A program in a pane makes a tmux session of its own and gives it another session's id
/// (and itself as owner): a gateway that starts afterwards serves the store's session under
/// that id, never the impostor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tmux_session_claiming_another_sessions_id_is_not_served_under_it() {
    let mut fleet = Pair::start_a(&["ann", "mallory"]).await;
    let ann_a = fleet.client(A, "ann").await;
    let real = ann_a.create_session("real", 80, 24).await.expect("create");
    let mut att = ann_a
        .attach_session(&real.session_id, 80, 24)
        .await
        .expect("attach");
    ann_a
        .send_input(att.channel, b"echo genuine-$((3+4))\r")
        .await
        .expect("input");
    att.wait_for(b"genuine-7", STEP).await.expect("echo");
    // What any shell in one of the server's panes could do.
    fleet
        .a
        .server
        .tmux(0, &["new-session", "-d", "-s", "impostor"]);
    for (option, value) in [
        ("@tmuxgate_id", real.session_id.as_str()),
        ("@tmuxgate_name", "real"),
        ("@tmuxgate_created", "1"),
        ("@tmuxgate_owner", "mallory"),
    ] {
        fleet
            .a
            .server
            .tmux(0, &["set-option", "-t", "impostor", option, value]);
    }
    fleet.start_b().await;
    let ann_b = fleet.client(B, "ann").await;
    until_visible(&ann_b, &real.session_id, true, "ann on B").await;
    let mut seen = ann_b
        .attach_session(&real.session_id, 80, 24)
        .await
        .expect("attach on B");
    seen.wait_for(b"genuine-7", STEP)
        .await
        .expect("B serves the genuine session under its id");
    let mallory_b = fleet.client(B, "mallory").await;
    assert!(
        mallory_b.list_sessions().await.expect("list").is_empty(),
        "the impostor's owner claim gives nothing"
    );
}
