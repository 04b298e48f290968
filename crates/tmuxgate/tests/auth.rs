//! Authentication over the wire: tokens at the upgrade and in `auth`, every way a token
//! is refused (close 4401), the unauthenticated state and its deadline, and a token that
//! stops being valid while its connection is open.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tmuxgate::config::{JwtAlgorithm, Secret};
use tmuxgate_client::protocol::{CloseCode, ErrorCode, Request, request::Heartbeat};
use tmuxgate_client::{Client, ClientError, ClientOptions, into_data};

use common::STEP;
use common::identity::{AuthServer, closed_with, http, password};

const SECRET: &str = "an-hs256-secret-of-at-least-32-bytes!!";
const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/security/testdata");

fn unauthorized() -> u16 {
    CloseCode::Unauthorized.code()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Claims as the gateway issues them for `alice` at token generation `generation`, valid
/// now.
fn claims_at(generation: u64) -> Value {
    let now = now();
    json!({"sub": "alice", "role": "operator", "iat": now, "nbf": now, "exp": now + 600,
           "jti": "AAAAAAAAAAAAAAAAAAAAAA", "iss": "tmuxgate", "aud": "tmuxgate", "gen": generation})
}

/// Alice's current token generation (random from her creation on).
fn generation(server: &AuthServer) -> u64 {
    let alice = "alice".parse().expect("name");
    let record = server.auth.users().get(&alice).expect("users file");
    record.expect("alice exists").generation
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// `header.claims` signed with HMAC-SHA256 under `key`.
fn hs256(key: &[u8], header: &Value, claims: &Value) -> String {
    let message = format!("{}.{}", b64(header), b64(claims));
    let key = jsonwebtoken::EncodingKey::from_secret(key).expect("HMAC key");
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
            .expect("sign");
    format!("{message}.{signature}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_token_is_refused_with_4401_at_the_upgrade_and_in_auth() {
    let server = AuthServer::start(&[("alice", "operator")], |c| {
        c.jwt_secret = Some(Secret::new(SECRET));
    })
    .await;
    let kid = server.auth.keys()[0].kid.clone();
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": kid});
    let current = generation(&server);
    let claims = || claims_at(current);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = claims();
        change(&mut c);
        hs256(SECRET.as_bytes(), &header, &c)
    };
    let good = with(&|_| {});
    let mut tampered = good.clone();
    let at = tampered.len() - 3;
    tampered.replace_range(at..at + 1, if &good[at..at + 1] == "A" { "B" } else { "A" });
    let revoked = server.token_for("alice", Duration::from_secs(600)).await;
    let identity = server
        .auth
        .verify(&revoked)
        .await
        .expect("valid before revocation");
    server.auth.revoke(&identity).await.expect("revoke");
    let cases: Vec<(&str, String)> = vec![
        ("expired", with(&|c| c["exp"] = json!(now() - 120))),
        ("not yet valid", with(&|c| c["nbf"] = json!(now() + 600))),
        ("tampered signature", tampered),
        ("tampered claims", {
            let parts: Vec<&str> = good.split('.').collect();
            let mut c = claims();
            c["role"] = json!("admin");
            format!("{}.{}.{}", parts[0], b64(&c), parts[2])
        }),
        (
            "wrong audience",
            with(&|c| c["aud"] = json!("someone-else")),
        ),
        ("wrong issuer", with(&|c| c["iss"] = json!("evil"))),
        ("alg none", {
            let none = json!({"alg": "none", "typ": "JWT", "kid": kid});
            format!("{}.{}.", b64(&none), b64(&claims()))
        }),
        (
            "unknown kid",
            hs256(
                SECRET.as_bytes(),
                &json!({"alg": "HS256", "kid": "nope"}),
                &claims(),
            ),
        ),
        (
            "other secret",
            hs256(b"another-secret-another-secret-another", &header, &claims()),
        ),
        (
            "missing jti",
            with(&|c| {
                c.as_object_mut().expect("object").remove("jti");
            }),
        ),
        ("unknown user", with(&|c| c["sub"] = json!("mallory"))),
        ("role not the user's", with(&|c| c["role"] = json!("admin"))),
        (
            "old generation",
            with(&|c| c["gen"] = json!(current.wrapping_sub(1))),
        ),
        ("not a JWT", "definitely.not.a-jwt".to_owned()),
        ("revoked", revoked),
    ];
    // The forged good token itself is accepted: the cases fail for their one flaw.
    let ok = server.client_with_token(&good).await;
    ok.heartbeat()
        .await
        .expect("a valid forged-by-the-key token works");
    for (case, token) in &cases {
        let (code, reason) = closed_with(&server.server.url(), token).await;
        assert_eq!(code, unauthorized(), "{case}: closed with {code} {reason}");
        assert!(
            !reason.contains(token.as_str()),
            "{case}: the reason quotes the token"
        );
        let client = Client::connect(&server.server.url())
            .await
            .expect("connect");
        match client.authenticate(token).await {
            Err(ClientError::Server { code, message }) => {
                assert_eq!(code, ErrorCode::Unauthorized, "{case}: {message}");
                assert!(
                    !message.contains(token.as_str()),
                    "{case}: the error quotes the token"
                );
            }
            other => panic!("{case}: auth answered {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hs256_token_signed_with_the_rsa_public_key_is_refused() {
    let public = format!("{TESTDATA}/rsa-public.pem");
    let server = AuthServer::start(&[("alice", "operator")], |c| {
        c.jwt_algorithm = JwtAlgorithm::Rs256;
        c.jwt_private_key_file = Some(format!("{TESTDATA}/rsa-private.pem").into());
        c.jwt_public_key_file = Some(public.clone().into());
    })
    .await;
    let real = server.token_for("alice", Duration::from_secs(600)).await;
    server
        .client_with_token(&real)
        .await
        .heartbeat()
        .await
        .expect("RS256 token works");
    let kid = server.auth.keys()[0].kid.clone();
    let pem = std::fs::read(&public).expect("public key");
    let confused = hs256(
        &pem,
        &json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
        &claims_at(generation(&server)),
    );
    let (code, _) = closed_with(&server.server.url(), &confused).await;
    assert_eq!(code, unauthorized());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_only_auth_and_heartbeat_work_until_auth_succeeds() {
    let server = AuthServer::start(&[("alice", "operator")], |_| {}).await;
    let client = Client::connect(&server.server.url())
        .await
        .expect("connect");
    client.heartbeat().await.expect("heartbeat before auth");
    for request in [Request::SessionList, Request::Metrics] {
        match into_data(client.request(request).await.expect("an answer")) {
            Err(ClientError::Server { code, .. }) => assert_eq!(code, ErrorCode::Unauthorized),
            other => panic!("before auth: {other:?}"),
        }
    }
    match client.create_session("early", 80, 24).await {
        Err(ClientError::Server { code, .. }) => assert_eq!(code, ErrorCode::Unauthorized),
        other => panic!("create before auth: {other:?}"),
    }
    let reply = client
        .login("alice", &password("alice"))
        .await
        .expect("login");
    assert_eq!(
        (reply.user.as_str(), reply.role.as_str()),
        ("alice", "operator")
    );
    let token = reply.token.expect("a password login returns a token");
    let info = client
        .create_session("mine", 80, 24)
        .await
        .expect("create after auth");
    assert_eq!(info.owner.as_deref(), Some("alice"));
    match client.login("alice", &password("alice")).await {
        Err(ClientError::Server { code, .. }) => assert_eq!(code, ErrorCode::Conflict),
        other => panic!("second auth: {other:?}"),
    }
    // The token it was given opens other connections.
    let other = server.client_with_token(&token).await;
    assert_eq!(other.list_sessions().await.expect("list").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_failed_logins_close_the_connection() {
    let server = AuthServer::start(&[("alice", "operator")], |_| {}).await;
    let client = Client::connect(&server.server.url())
        .await
        .expect("connect");
    for attempt in 1..=3 {
        match client.login("alice", "wrong-password").await {
            Err(ClientError::Server { code, message }) => {
                assert_eq!(code, ErrorCode::Unauthorized);
                assert_eq!(
                    message, "invalid user name or password",
                    "attempt {attempt}"
                );
            }
            Err(ClientError::Closed { code, .. }) if attempt == 3 => {
                assert_eq!(code, unauthorized());
            }
            other => panic!("attempt {attempt}: {other:?}"),
        }
    }
    let (code, _) = client.wait_closed(STEP).await.expect("closed");
    assert_eq!(code, unauthorized());
    // An unknown user fails the same way as a wrong password.
    let client = Client::connect(&server.server.url())
        .await
        .expect("connect");
    match client.login("nobody", "wrong-password").await {
        Err(ClientError::Server { code, message }) => {
            assert_eq!(code, ErrorCode::Unauthorized);
            assert_eq!(message, "invalid user name or password");
        }
        other => panic!("unknown user: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_never_authenticates_is_closed_at_the_deadline() {
    let server = AuthServer::start(&[], |c| c.auth_timeout = Duration::from_secs(1)).await;
    let client = Client::connect(&server.server.url())
        .await
        .expect("connect");
    let (code, reason) = client
        .wait_closed(STEP)
        .await
        .expect("closed at the deadline");
    assert_eq!(
        (code, reason.as_str()),
        (unauthorized(), "authentication timed out")
    );
    // Heartbeats do not extend it.
    let client = Client::connect(&server.server.url())
        .await
        .expect("connect");
    let beat = async {
        loop {
            let request = Request::Heartbeat(Heartbeat { timestamp: None });
            if client.request(request).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(STEP, beat)
        .await
        .expect("closed while heartbeating");
    assert_eq!(client.closed().map(|c| c.0), Some(unauthorized()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_frame_before_auth_closes_with_4401() {
    let server = AuthServer::start(&[], |_| {}).await;
    let client = Client::connect(&server.server.url())
        .await
        .expect("connect");
    client.send_input(1, b"ls\r").await.expect("send");
    let (code, _) = client.wait_closed(STEP).await.expect("closed");
    assert_eq!(code, unauthorized());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_connection_ends_when_its_token_expires_is_revoked_or_its_user_goes() {
    let server = AuthServer::start(&[("alice", "operator"), ("bob", "operator")], |_| {}).await;
    // Expiry: a two-second token.
    let short = server.token_for("alice", Duration::from_secs(2)).await;
    let client = server.client_with_token(&short).await;
    client.heartbeat().await.expect("valid now");
    let (code, reason) = client.wait_closed(STEP).await.expect("closed at expiry");
    assert_eq!((code, reason.as_str()), (unauthorized(), "token expired"));

    // Logout through the HTTP API revokes the token: its open connection closes.
    let token = server.token_for("alice", Duration::from_secs(600)).await;
    let client = server.client_with_token(&token).await;
    client.heartbeat().await.expect("valid now");
    let bearer = format!("Bearer {token}");
    let logout = http(
        server.server.addr,
        "POST",
        "/api/logout",
        &[("Authorization", &bearer)],
        "",
    )
    .await;
    assert_eq!(logout.status, 204);
    let (code, reason) = client.wait_closed(STEP).await.expect("closed at logout");
    assert_eq!((code, reason.as_str()), (unauthorized(), "token revoked"));
    let (code, _) = closed_with(&server.server.url(), &token).await;
    assert_eq!(code, unauthorized(), "a revoked token cannot reconnect");

    // A role change, a password change and `tmuxgate user revoke` each end them too.
    let bob = "bob".parse().expect("name");
    let client = server.client_as("bob").await;
    client.heartbeat().await.expect("valid now");
    let viewer = "viewer".parse().expect("role");
    server
        .auth
        .users()
        .set_role(&bob, &viewer)
        .await
        .expect("demote");
    let (code, reason) = client
        .wait_closed(STEP)
        .await
        .expect("closed after demotion");
    assert_eq!(
        (code, reason.as_str()),
        (unauthorized(), "user removed or changed")
    );
    let client = server.client_as("bob").await;
    client.heartbeat().await.expect("valid now");
    let secret = Secret::new("a-brand-new-password");
    server
        .auth
        .users()
        .set_password(&bob, &secret)
        .await
        .expect("passwd");
    let (code, _) = client.wait_closed(STEP).await.expect("closed after passwd");
    assert_eq!(code, unauthorized());
    let client = server.client_as("bob").await;
    client.heartbeat().await.expect("valid now");
    server
        .auth
        .users()
        .revoke_tokens(&bob)
        .await
        .expect("user revoke");
    let (code, _) = client
        .wait_closed(STEP)
        .await
        .expect("closed after user revoke");
    assert_eq!(code, unauthorized());

    // Removing the user (as `tmuxgate user remove` does, through the file) ends theirs.
    let client = server.client_as("bob").await;
    client.heartbeat().await.expect("valid now");
    server
        .auth
        .users()
        .remove(&"bob".parse().expect("name"))
        .await
        .expect("remove");
    let (code, reason) = client
        .wait_closed(STEP)
        .await
        .expect("closed after removal");
    assert_eq!(
        (code, reason.as_str()),
        (unauthorized(), "user removed or changed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_travel_by_subprotocol_cookie_and_query_too() {
    let server = AuthServer::start(&[("alice", "operator")], |_| {}).await;
    let token = server.token_for("alice", Duration::from_secs(600)).await;
    let protocols = format!("tmuxgate.v1, tmuxgate.token.{token}");
    let cookie = format!("tmuxgate_token={token}");
    let ways = [
        (
            "subprotocol",
            server.server.url(),
            ("Sec-WebSocket-Protocol", protocols.as_str()),
        ),
        ("cookie", server.server.url(), ("Cookie", cookie.as_str())),
        (
            "query",
            format!("{}?token={token}", server.server.url()),
            ("X-Unused", "1"),
        ),
    ];
    for (way, url, (name, value)) in ways {
        let options = ClientOptions::default().header(name, value);
        let client = Client::connect_with(&url, options).await.expect("connect");
        let info = client
            .create_session(&format!("via-{way}"), 80, 24)
            .await
            .unwrap_or_else(|e| panic!("{way}: {e}"));
        assert_eq!(info.owner.as_deref(), Some("alice"), "{way}");
    }
    // A malformed transport is a refusal, not "no token".
    let options = ClientOptions::default().header("Authorization", "Bearer");
    let client = Client::connect_with(&server.server.url(), options)
        .await
        .expect("connect");
    assert_eq!(
        client.wait_closed(STEP).await.expect("closed").0,
        unauthorized()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_removed_and_added_again_does_not_get_the_old_tokens_back() {
    let server = AuthServer::start(&[("dave", "operator")], |_| {}).await;
    let old = server.token_for("dave", Duration::from_secs(600)).await;
    let dave = "dave".parse().expect("name");
    server.auth.users().remove(&dave).await.expect("remove");
    let operator = "operator".parse().expect("role");
    let secret = Secret::new("someone-else-entirely");
    server
        .auth
        .users()
        .add(&dave, &secret, &operator)
        .await
        .expect("add again");
    let (code, reason) = closed_with(&server.server.url(), &old).await;
    assert_eq!(
        (code, reason.as_str()),
        (unauthorized(), "user removed or changed")
    );
    let fresh = server.token_for("dave", Duration::from_secs(600)).await;
    server
        .client_with_token(&fresh)
        .await
        .heartbeat()
        .await
        .expect("a new token works");
}
