//! Abuse resistance against a real gateway: a flood from one loopback address is limited,
//! closed with 4429 and then blocked at accept, while a client from another address keeps
//! being answered; brute-forced logins block their address until an administrator lifts
//! the block with `tmuxgate block remove`.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::identity::{AuthServer, password};
use common::{STEP, TestServer, http_get};
use tmuxgate_client::protocol::{CloseCode, ErrorCode, Event};
use tmuxgate_client::{Client, ClientError, ClientOptions};

const FLOODER: &str = "127.0.0.2";
const NEIGHBOUR: &str = "127.0.0.3";

/// Most requests the flooder sends; the test must end well before.
const FLOOD_BOUND: usize = 2_000;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("address")
}

async fn connect_from(server: &TestServer, from: &str) -> Result<Client, ClientError> {
    let options = ClientOptions::default().bind(ip(from));
    Client::connect_with(&server.url(), options).await
}

/// What one flooding connection saw before it was closed.
#[derive(Debug, Default)]
struct Flood {
    answered: usize,
    limited: usize,
    retry_after_ms: Option<u64>,
    close: Option<u16>,
}

/// Sends heartbeats as fast as answers come until the connection closes.
async fn flood(client: &Client, sent: &mut usize) -> Flood {
    let mut seen = Flood::default();
    while *sent < FLOOD_BOUND {
        *sent += 1;
        let text = format!(r#"{{"type":"heartbeat","id":{sent},"data":{{}}}}"#);
        if client.send_text(text).await.is_err() {
            break;
        }
        match client.next_raw_response(STEP).await {
            Ok(body) if body.success => seen.answered += 1,
            Ok(body) => {
                assert_eq!(body.error_code, Some(ErrorCode::RateLimited), "{body:?}");
                seen.limited += 1;
                seen.retry_after_ms = body.retry_after;
            }
            Err(_) => break,
        }
    }
    seen.close = client.wait_closed(STEP).await.ok().map(|(code, _)| code);
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_limited_then_blocked_while_a_neighbour_keeps_working() {
    let server = TestServer::start_with(|c| {
        c.rate_limit_requests = 10;
        c.rate_limit_window = Duration::from_secs(1);
        c.rate_limit_burst = 10;
        c.rate_limit_close_after = 5;
        c.block_violations = 12;
        c.block_duration = Duration::from_secs(60);
    })
    .await;
    let neighbour = connect_from(&server, NEIGHBOUR).await.expect("neighbour");
    let mut quiet = Vec::new();
    for _ in 0..5 {
        quiet.push(neighbour.heartbeat().await.expect("quiet heartbeat").1);
    }

    // The neighbour keeps asking, at its quota's pace, while the flood runs.
    let pacer = tokio::spawn(async move {
        let mut latencies = Vec::new();
        for _ in 0..8 {
            latencies.push(
                neighbour
                    .heartbeat()
                    .await
                    .expect("answered during the flood")
                    .1,
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        (neighbour, latencies)
    });

    let started = Instant::now();
    let mut sent = 0;
    let first = connect_from(&server, FLOODER)
        .await
        .expect("flooder connects");
    let seen = flood(&first, &mut sent).await;
    assert!(seen.answered >= 10, "the burst passes: {seen:?}");
    // Refusals until the 5th in a row closes (more if a slow machine let one through).
    assert!(seen.limited >= 4, "{seen:?}");
    assert!(
        seen.retry_after_ms
            .is_some_and(|ms| (1..=1000).contains(&ms)),
        "{seen:?}"
    );
    assert_eq!(seen.close, Some(4429), "{seen:?}");

    // Coming back at once: still over the limit, so more violations, then the block.
    let mut refused_at_accept = false;
    for _ in 0..20 {
        match connect_from(&server, FLOODER).await {
            Ok(client) => {
                let again = flood(&client, &mut sent).await;
                assert_eq!(again.close, Some(4429), "{again:?}");
            }
            Err(ClientError::Connect { status: None, .. }) => {
                refused_at_accept = true;
                break;
            }
            Err(other) => panic!("unexpected refusal: {other}"),
        }
    }
    assert!(refused_at_accept, "the flooder is dropped at accept");
    eprintln!(
        "flood: {sent} requests, blocked after {:?}",
        started.elapsed()
    );

    let (neighbour, during) = pacer.await.expect("pacer");
    neighbour
        .heartbeat()
        .await
        .expect("the neighbour is still answered");
    let again = connect_from(&server, NEIGHBOUR)
        .await
        .expect("neighbour reconnects");
    again.heartbeat().await.expect("answered");
    let max = |v: &[Duration]| v.iter().max().copied().unwrap_or_default();
    eprintln!(
        "neighbour heartbeat: quiet max {:?}, during the flood max {:?}",
        max(&quiet),
        max(&during)
    );

    let (_, metrics) = http_get(server.health_addr, "/metrics").await;
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    assert_eq!(value("tmuxgate_blocks_total"), 1);
    assert!(value("tmuxgate_blocked_connections_total") >= 1);
    assert!(value("tmuxgate_rate_limited_total") >= 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_input_over_its_byte_budget_is_refused_and_typing_is_not() {
    let server = TestServer::start_with(|c| {
        c.input_bytes_per_second = 4 * 1024;
        c.input_burst_bytes = 64 * 1024;
        c.rate_limit_requests = 5;
        c.rate_limit_burst = 5;
    })
    .await;
    let client = server.client().await;
    let session = client
        .create_session("budget", 80, 24)
        .await
        .expect("create");
    let request = tmuxgate_client::attach_request(&session.session_id, 80, 24);
    let channel = client.attach(request).await.expect("attach").channel;
    // Typing: many small frames, more than the request quota, none refused.
    for _ in 0..50 {
        client.send_input(channel, b"x").await.expect("typing");
    }
    // A paste within the burst passes whole; a flood past it is dropped with one notice.
    client
        .send_input(channel, &[b'p'; 32 * 1024])
        .await
        .expect("paste");
    for _ in 0..8 {
        client
            .send_input(channel, &[b'f'; 16 * 1024])
            .await
            .expect("flood");
    }
    let refused = |e: &Event| matches!(e, Event::InputRefused { .. });
    let event = client
        .wait_event(refused, STEP)
        .await
        .expect("input-refused");
    assert!(
        matches!(
            event,
            Event::InputRefused {
                error_code: ErrorCode::RateLimited,
                ..
            }
        ),
        "{event:?}"
    );
    client.heartbeat().await.expect("the connection stays open");
}

/// Runs `tmuxgate block ARGS` against `server`'s health port as the admin `root`.
async fn block_cli(server: &AuthServer, args: &[&str]) -> (bool, String) {
    common::identity::admin_cli(server, "block", args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_forced_logins_are_blocked_until_an_admin_lifts_the_block() {
    let server = AuthServer::start(&[("alice", "operator"), ("root", "admin")], |c| {
        c.block_failed_logins = 5;
    })
    .await;
    let mut failures = 0;
    let mut blocked = false;
    'attack: for _ in 0..10 {
        let client = match connect_from(&server.server, FLOODER).await {
            Ok(client) => client,
            Err(ClientError::Connect { status: None, .. }) => {
                blocked = true;
                break;
            }
            Err(other) => panic!("unexpected refusal: {other}"),
        };
        for _ in 0..3 {
            match client.login("alice", "guess-guess-guess").await {
                Err(ClientError::Server {
                    code: ErrorCode::Unauthorized,
                    ..
                }) => failures += 1,
                // Blocked meanwhile: open connections get no more guesses either.
                Err(ClientError::Server {
                    code: ErrorCode::Forbidden,
                    ..
                }) => continue 'attack,
                Err(ClientError::Closed { .. }) => continue 'attack,
                other => panic!("a wrong password: {other:?}"),
            }
        }
        let _ = client.wait_closed(STEP).await;
    }
    assert!(blocked, "the guesser is dropped at accept");
    assert_eq!(failures, 5, "blocked at the 5th failure");

    // A neighbour is not affected; the administrator sees and lifts the block.
    let neighbour = connect_from(&server.server, NEIGHBOUR)
        .await
        .expect("neighbour");
    neighbour
        .login("alice", &password("alice"))
        .await
        .expect("neighbour logs in");
    let (ok, listed) = block_cli(&server, &["list", "--json"]).await;
    assert!(
        ok && listed.contains("\"address\":\"127.0.0.2\""),
        "{listed}"
    );
    assert!(listed.contains("failed-logins"), "{listed}");
    let (ok, removed) = block_cli(&server, &["remove", FLOODER]).await;
    assert!(ok, "{removed}");
    let (ok, listed) = block_cli(&server, &["list", "--json"]).await;
    assert!(ok && !listed.contains("127.0.0.2"), "{listed}");

    let back = connect_from(&server.server, FLOODER)
        .await
        .expect("unblocked");
    back.login("alice", &password("alice"))
        .await
        .expect("the right password works");

    // Blocking by hand, and only with an admin's token.
    let (ok, added) = block_cli(&server, &["add", "127.0.0.4", "--duration", "1m"]).await;
    assert!(ok, "{added}");
    assert!(
        connect_from(&server.server, "127.0.0.4").await.is_err(),
        "blocked by hand"
    );
    let alice = server.token_for("alice", Duration::from_secs(600)).await;
    let (status, _) = admin_get(&server, Some(&alice)).await;
    assert_eq!(status, 403, "an operator is not an administrator");
    let (status, _) = admin_get(&server, None).await;
    assert_eq!(status, 401);
}

/// `GET /admin/blocks` with `token`, answered status and body.
async fn admin_get(server: &AuthServer, token: Option<&str>) -> (u16, String) {
    admin_get_from(server, token, "127.0.0.1").await
}

/// [`admin_get`] from the loopback address `from`.
async fn admin_get_from(server: &AuthServer, token: Option<&str>, from: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind((ip(from), 0).into()).expect("bind");
    let mut tcp = socket
        .connect(server.server.health_addr)
        .await
        .expect("health port");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET /admin/blocks HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("send");
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.expect("read");
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer)
}

/// Refusals of the admin API are audited, and a guessed token counts as a failed login of
/// its address, as on the main port. A blocked address is answered only with an
/// administrator's token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_refusals_are_audited_and_guessed_tokens_block_the_address() {
    const GUESSER: &str = "127.0.0.5";
    let server = AuthServer::start(&[("alice", "operator"), ("root", "admin")], |c| {
        c.block_failed_logins = 2;
    })
    .await;
    for _ in 0..2 {
        let (status, _) = admin_get_from(&server, None, GUESSER).await;
        assert_eq!(status, 401, "no token");
    }
    connect_from(&server.server, GUESSER)
        .await
        .expect("not guesses: the address is not blocked");
    for guess in ["not-a-token", "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"] {
        let (status, answer) = admin_get_from(&server, Some(guess), GUESSER).await;
        assert_eq!(status, 401, "{answer}");
        assert!(!answer.contains(guess), "the token is not echoed: {answer}");
    }
    assert!(
        connect_from(&server.server, GUESSER).await.is_err(),
        "two guessed tokens block the address on the main port"
    );
    let (status, answer) = admin_get_from(&server, Some("guess-3"), GUESSER).await;
    assert_eq!(status, 403, "blocked: {answer}");
    let root = server.token_for("root", Duration::from_secs(600)).await;
    let (status, answer) = admin_get_from(&server, Some(&root), GUESSER).await;
    assert_eq!(
        status, 200,
        "an administrator's token still works: {answer}"
    );
    assert!(answer.contains("127.0.0.5"), "{answer}");
    let alice = server.token_for("alice", Duration::from_secs(600)).await;
    let (status, _) = admin_get_from(&server, Some(&alice), NEIGHBOUR).await;
    assert_eq!(status, 403);

    let refused = |l: &serde_json::Value, kind: &str, from: &str| {
        l["eventType"] == kind && l["source"] == from && l["metadata"]["transport"] == "admin"
    };
    let lines = common::audit::lines_when(&server.server, |lines| {
        lines
            .iter()
            .any(|l| refused(l, "PERMISSION_DENIED", NEIGHBOUR))
    })
    .await;
    let reasons: Vec<&str> = lines
        .iter()
        .filter(|l| refused(l, "AUTH_FAILURE", GUESSER))
        .filter_map(|l| l["metadata"]["reason"].as_str())
        .collect();
    // Two without a token, two guesses; the third guess came once the address was blocked.
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert_eq!(reasons[..2], ["missing-token"; 2]);
    let denied = lines
        .iter()
        .find(|l| refused(l, "PERMISSION_DENIED", NEIGHBOUR));
    assert_eq!(denied.expect("denied")["metadata"]["user"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_address_and_per_user_and_sessions_per_user_are_capped() {
    let server = AuthServer::start(&[("alice", "operator"), ("bob", "operator")], |c| {
        c.max_connections_per_ip = 3;
        c.max_connections_per_user = 2;
        c.max_sessions_per_user = 1;
    })
    .await;
    // Per user: the third of alice's connections closes with 1013, bob's still work.
    let token = server.token_for("alice", Duration::from_secs(600)).await;
    let with_token = || ClientOptions::default().token(&token).bind(ip(NEIGHBOUR));
    let url = server.server.url();
    let first = Client::connect_with(&url, with_token())
        .await
        .expect("first");
    let second = Client::connect_with(&url, with_token())
        .await
        .expect("second");
    // Answered: both are counted (a connection is counted when its task starts).
    first.heartbeat().await.expect("first counted");
    second.heartbeat().await.expect("second counted");
    let third = Client::connect_with(&url, with_token())
        .await
        .expect("upgraded");
    let (code, reason) = third.wait_closed(STEP).await.expect("closed");
    assert_eq!(
        (code, reason.as_str()),
        (1013, "too many connections for this user")
    );
    // The refused one is not counted: the address has two open, so one more fits.
    let bob = connect_from(&server.server, NEIGHBOUR).await.expect("bob");
    bob.login("bob", &password("bob"))
        .await
        .expect("bob logs in");
    // Per address: a fourth from the address closes with 1013.
    let fourth = connect_from(&server.server, NEIGHBOUR)
        .await
        .expect("upgraded");
    let (code, _) = fourth.wait_closed(STEP).await.expect("closed");
    assert_eq!(code, 1013);
    // A connection that ends gives its place back (counted down before the status is).
    second.close().await.expect("close");
    let handle = server.server.handle.clone();
    let open = move || handle.status().connections;
    common::eventually("two connections open", || (open() == 2).then_some(())).await;
    let again = Client::connect_with(&url, with_token())
        .await
        .expect("upgraded");
    again
        .heartbeat()
        .await
        .expect("the closed connection's place is free again");

    // Sessions per user.
    first
        .create_session("one", 80, 24)
        .await
        .expect("first session");
    let second_session = first.create_session("two", 80, 24).await;
    assert!(
        matches!(
            second_session,
            Err(ClientError::Server {
                code: ErrorCode::Conflict,
                ..
            })
        ),
        "{second_session:?}"
    );
    bob.create_session("three", 80, 24)
        .await
        .expect("bob's own cap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_is_closed_at_the_header_deadline_and_huge_headers_are_refused() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let deadline = Duration::from_secs(1);
    let server = TestServer::start_with(|c| c.http_header_timeout = deadline).await;
    // The main port and the health port (which also serves the admin API), at once.
    let (main, health) = tokio::join!(slowloris(server.addr), slowloris(server.health_addr));
    for (port, after) in [("main", main), ("health", health)] {
        eprintln!("slowloris on the {port} port closed after {after:?} (deadline {deadline:?})");
        // Not before the deadline, and long before the 14 s the request would take to
        // finish (the upper bound leaves room for a loaded CI machine; it is not a latency
        // figure).
        assert!(
            after >= deadline && after < deadline * 8,
            "{port}: closed after {after:?}"
        );
    }

    // Headers beyond MAX_HEADER_BYTES (16 KiB) are refused; a normal request is served.
    for addr in [server.addr, server.health_addr] {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let big = format!(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
            "a".repeat(64 * 1024)
        );
        let _ = tcp.write_all(big.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tcp.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
            "{answer}"
        );
    }
    let (status, _) = http_get(server.addr, "/").await;
    assert_eq!(status, 200);
    let (status, _) = http_get(server.health_addr, "/health").await;
    assert_eq!(status, 200);
}

/// Sends a request's headers to `addr` a byte every 100 ms (14 s for all of them); how
/// long until the server closed the connection.
async fn slowloris(addr: std::net::SocketAddr) -> Duration {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = tcp.into_split();
    let started = Instant::now();
    // The gateway's end of the connection is the event awaited: EOF (or a reset).
    let closed = tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = reader.read_to_end(&mut sink).await;
        started.elapsed()
    });
    // A header byte every 100 ms: the request never completes (no blank line).
    let request = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: {}",
        "a".repeat(100)
    );
    for byte in request.bytes() {
        if closed.is_finished() || writer.write_all(&[byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A server that never closes: past any deadline the test accepts.
    match tokio::time::timeout(Duration::from_secs(30), closed).await {
        Ok(after) => after.expect("reader"),
        Err(_) => Duration::from_secs(30),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_can_have_its_own_request_quota() {
    let server = AuthServer::start(&[("alice", "operator"), ("root", "admin")], |c| {
        c.rate_limit_requests = 5;
        c.rate_limit_burst = 5;
        c.rate_limit_window = Duration::from_secs(60);
        c.rate_limit_roles = vec!["admin=100".into()];
    })
    .await;
    let count_answered = |client: Client| async move {
        let mut answered = 0;
        for _ in 0..30 {
            match client.heartbeat().await {
                Ok(_) => answered += 1,
                Err(ClientError::Server {
                    code: ErrorCode::RateLimited,
                    ..
                }) => break,
                Err(other) => panic!("{other}"),
            }
        }
        answered
    };
    let alice = server.client_as("alice").await;
    assert_eq!(
        count_answered(alice).await,
        5,
        "RATE_LIMIT_BURST for operators"
    );
    let root = server.client_as("root").await;
    assert_eq!(
        count_answered(root).await,
        30,
        "admins' burst scales to 100"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_tokens_are_refused_but_only_forged_ones_count_toward_a_block() {
    let server = AuthServer::start(&[("alice", "operator")], |c| {
        c.block_failed_logins = 3;
    })
    .await;
    // A browser with an old cookie: revoked (as after a logout in another tab).
    let stale = server.token_for("alice", Duration::from_secs(600)).await;
    let identity = server.auth.verify(&stale).await.expect("valid at first");
    server.auth.revoke(&identity).await.expect("revoke");
    let url = server.server.url();
    let with_token = |token: &str| {
        let options = ClientOptions::default().bind(ip("127.0.0.5")).token(token);
        Client::connect_with(&url, options)
    };
    for _ in 0..6 {
        let client = with_token(&stale).await.expect("not blocked");
        let (code, _) = client.wait_closed(STEP).await.expect("closed");
        assert_eq!(code, CloseCode::Unauthorized.code());
    }
    let fresh = server.token_for("alice", Duration::from_secs(600)).await;
    let client = with_token(&fresh).await.expect("still not blocked");
    client.heartbeat().await.expect("a fresh token works");
    // Forged tokens are guesses: the third blocks the address.
    let mut forged = fresh.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    let mut refused_at = None;
    for attempt in 1..=6 {
        match with_token(&forged).await {
            Ok(client) => {
                client.wait_closed(STEP).await.expect("closed");
            }
            Err(_) => {
                refused_at = Some(attempt);
                break;
            }
        }
    }
    assert_eq!(refused_at, Some(4), "blocked after 3 forged tokens");
}
