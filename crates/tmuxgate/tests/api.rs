//! The web UI's HTTP login: `POST /api/login` sets an HttpOnly, SameSite=Strict cookie
//! (never showing the token), the cookie opens WebSockets, `POST /api/logout` revokes it,
//! and other sites' pages can do none of it.

mod common;

use tmuxgate_client::protocol::CloseCode;
use tmuxgate_client::{Client, ClientOptions};

use common::identity::{AuthServer, HttpResponse, http, password};
use common::{STEP, TestServer};

async fn login(server: &AuthServer, body: &str, extra: &[(&str, &str)]) -> HttpResponse {
    let mut headers = vec![("Content-Type", "application/json")];
    headers.extend_from_slice(extra);
    http(server.server.addr, "POST", "/api/login", &headers, body).await
}

/// `tmuxgate_token=VALUE` from a `Set-Cookie` header.
fn cookie_pair(response: &HttpResponse) -> String {
    let set = response.header("set-cookie").expect("Set-Cookie");
    set.split(';').next().expect("a pair").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sets_a_strict_httponly_cookie_that_opens_websockets_until_logout() {
    let server = AuthServer::start(&[("alice", "operator")], |_| {}).await;
    let body = format!(
        r#"{{"username":"alice","password":"{}"}}"#,
        password("alice")
    );
    let response = login(&server, &body, &[]).await;
    assert_eq!(response.status, 200, "{response:?}");
    let set = response
        .header("set-cookie")
        .expect("Set-Cookie")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set.contains(attribute), "{attribute} missing: {set}");
    }
    assert!(
        !set.contains("Secure"),
        "plain HTTP cannot keep a Secure cookie: {set}"
    );
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let pair = cookie_pair(&response);
    let token = pair.trim_start_matches("tmuxgate_token=");
    assert!(token.len() > 20, "{pair}");
    assert!(!response.body.contains(token), "the body shows the token");
    let who: serde_json::Value = serde_json::from_str(&response.body).expect("JSON");
    assert_eq!(
        (who["user"].as_str(), who["role"].as_str()),
        (Some("alice"), Some("operator"))
    );

    let me = http(
        server.server.addr,
        "GET",
        "/api/me",
        &[("Cookie", &pair)],
        "",
    )
    .await;
    assert_eq!(me.status, 200);
    let me: serde_json::Value = serde_json::from_str(&me.body).expect("JSON");
    assert_eq!(
        (me["auth"].as_bool(), me["user"].as_str()),
        (Some(true), Some("alice"))
    );
    let permissions = me["permissions"].as_array().expect("permissions");
    assert!(permissions.iter().any(|p| p == "session.create"), "{me}");
    assert!(
        !permissions.iter().any(|p| p == "session.list.all"),
        "an operator lists own: {me}"
    );

    let options = ClientOptions::default().header("Cookie", pair.clone());
    let client = Client::connect_with(&server.server.url(), options.clone())
        .await
        .expect("connect");
    let info = client
        .create_session("by-cookie", 80, 24)
        .await
        .expect("create");
    assert_eq!(info.owner.as_deref(), Some("alice"));

    let out = http(
        server.server.addr,
        "POST",
        "/api/logout",
        &[("Cookie", &pair)],
        "",
    )
    .await;
    assert_eq!(out.status, 204);
    let cleared = out.header("set-cookie").expect("cookie cleared");
    assert!(
        cleared.starts_with("tmuxgate_token=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let (code, _) = client
        .wait_closed(STEP)
        .await
        .expect("the open socket closes");
    assert_eq!(code, CloseCode::Unauthorized.code());
    let again = Client::connect_with(&server.server.url(), options)
        .await
        .expect("upgrade");
    assert_eq!(
        again.wait_closed(STEP).await.expect("closed").0,
        CloseCode::Unauthorized.code()
    );
    let me = http(
        server.server.addr,
        "GET",
        "/api/me",
        &[("Cookie", &pair)],
        "",
    )
    .await;
    assert_eq!(me.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_login_swaps_the_query_token_for_the_cookie() {
    let server = AuthServer::start(&[("alice", "operator")], |_| {}).await;
    let token = server
        .token_for("alice", std::time::Duration::from_secs(600))
        .await;
    let response = login(&server, &format!(r#"{{"token":"{token}"}}"#), &[]).await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(cookie_pair(&response), format!("tmuxgate_token={token}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_logins_and_foreign_pages_are_refused() {
    let server = AuthServer::start(&[("alice", "operator")], |_| {}).await;
    let wrong = login(
        &server,
        r#"{"username":"alice","password":"not-hers-at-all"}"#,
        &[],
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    assert!(
        wrong.body.contains("invalid user name or password"),
        "{}",
        wrong.body
    );
    let unknown = login(
        &server,
        r#"{"username":"nobody","password":"not-hers-at-all"}"#,
        &[],
    )
    .await;
    assert_eq!(
        (unknown.status, unknown.body.as_str()),
        (401, wrong.body.as_str())
    );

    let body = format!(
        r#"{{"username":"alice","password":"{}"}}"#,
        password("alice")
    );
    let foreign = login(&server, &body, &[("Origin", "https://evil.example")]).await;
    assert_eq!(foreign.status, 403);
    assert!(foreign.header("set-cookie").is_none());
    let own_page = format!("http://{}", server.server.addr);
    let same = login(&server, &body, &[("Origin", &own_page)]).await;
    assert_eq!(same.status, 200, "the gateway's own page may log in");

    let form = http(
        server.server.addr,
        "POST",
        "/api/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "username=alice",
    )
    .await;
    assert_eq!(form.status, 415);
    for garbage in [
        "{",
        "[]",
        r#"{"username":"alice"}"#,
        r#"{"token":"a","password":"b"}"#,
    ] {
        let response = login(&server, garbage, &[]).await;
        assert!(
            matches!(response.status, 400 | 401),
            "{garbage}: {response:?}"
        );
        assert!(response.header("set-cookie").is_none());
    }
    let me = http(server.server.addr, "GET", "/api/me", &[], "").await;
    assert_eq!(me.status, 401);
    let logout = http(
        server.server.addr,
        "POST",
        "/api/logout",
        &[("Origin", "https://evil.example")],
        "",
    )
    .await;
    assert_eq!(logout.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_authentication_off_me_says_so_and_login_is_absent() {
    let server = TestServer::start().await;
    let me = http(server.addr, "GET", "/api/me", &[], "").await;
    assert_eq!((me.status, me.body.as_str()), (200, r#"{"auth":false}"#));
    let login = http(
        server.addr,
        "POST",
        "/api/login",
        &[("Content-Type", "application/json")],
        "{}",
    )
    .await;
    assert_eq!(login.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_lists_the_gateways_to_anyone_uncached_and_the_page_may_connect_to_them() {
    let urls = ["ws://127.0.0.1:8080/ws", "wss://b.example/tmux/ws"];
    let server = TestServer::start_with(|c| c.fleet_urls = urls.map(String::from).to_vec()).await;
    let fleet = http(server.addr, "GET", "/api/fleet", &[], "").await;
    assert_eq!(fleet.status, 200, "{fleet:?}");
    assert_eq!(fleet.header("cache-control"), Some("no-store"));
    let body: serde_json::Value = serde_json::from_str(&fleet.body).expect("JSON");
    assert_eq!(body, serde_json::json!({ "urls": urls }));
    let own_page = format!("http://{}", server.addr);
    let same = http(
        server.addr,
        "GET",
        "/api/fleet",
        &[("Origin", &own_page)],
        "",
    )
    .await;
    assert_eq!(
        (same.status, same.body.as_str()),
        (200, fleet.body.as_str())
    );
    let foreign = http(
        server.addr,
        "GET",
        "/api/fleet",
        &[("Origin", "https://evil.example")],
        "",
    )
    .await;
    assert_eq!(foreign.status, 403);
    // The page may open WebSockets to the other gateways (by origin), and only those.
    let page = http(server.addr, "GET", "/", &[], "").await;
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("; connect-src 'self' ws://127.0.0.1:8080 wss://b.example;"),
        "{csp}"
    );

    let alone = TestServer::start().await;
    let fleet = http(alone.addr, "GET", "/api/fleet", &[], "").await;
    assert_eq!((fleet.status, fleet.body.as_str()), (200, r#"{"urls":[]}"#));
    assert_eq!(fleet.header("cache-control"), Some("no-store"));
    let page = http(alone.addr, "GET", "/", &[], "").await;
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("; connect-src 'self';"), "{csp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_needs_no_sign_in_when_authentication_is_on() {
    let server = AuthServer::start(&[("alice", "operator")], |c| {
        c.fleet_urls = vec!["ws://127.0.0.1:1/ws".to_owned()];
    })
    .await;
    let fleet = http(server.server.addr, "GET", "/api/fleet", &[], "").await;
    assert_eq!(
        (fleet.status, fleet.body.as_str()),
        (200, r#"{"urls":["ws://127.0.0.1:1/ws"]}"#)
    );
}
