//! Cross-site WebSocket hijacking and DNS rebinding: which `Origin`/`Host` pairs the real
//! gateway upgrades, which it answers with HTTP 403, and the counter of the latter; and how
//! `TRUSTED_PROXIES` lets a reverse proxy's `X-Forwarded-Host` stand in for `Host`.

mod common;

use common::{TestServer, http_get};
use tmuxgate_client::{Client, ClientError, ClientOptions};

/// Client options sending `headers` on the upgrade (a `Host` replaces the URL's).
fn with_headers(headers: &[(&str, &str)]) -> ClientOptions {
    let add = |options: ClientOptions, (name, value): &(&str, &str)| options.header(*name, *value);
    headers.iter().fold(ClientOptions::default(), add)
}

/// Connects with the given headers and proves the connection works with a heartbeat.
async fn connects(server: &TestServer, headers: &[(&str, &str)]) {
    let client = Client::connect_with(&server.url(), with_headers(headers))
        .await
        .unwrap_or_else(|e| panic!("{headers:?}: expected a connection, got {e}"));
    client.heartbeat().await.expect("an admitted client works");
}

/// Connects with the given headers and expects the upgrade to be refused with HTTP 403.
async fn forbidden(server: &TestServer, headers: &[(&str, &str)]) {
    match Client::connect_with(&server.url(), with_headers(headers)).await {
        Err(ClientError::Connect {
            status: Some(403), ..
        }) => {}
        Err(other) => panic!("{headers:?}: expected HTTP 403, got {other}"),
        Ok(_) => panic!("{headers:?}: expected HTTP 403, got a connection"),
    }
}

/// The value of `tmuxgate_connections_forbidden_total` on the health port.
async fn forbidden_total(server: &TestServer) -> u64 {
    let (status, metrics) = http_get(server.health_addr, "/metrics").await;
    assert_eq!(status, 200);
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("tmuxgate_connections_forbidden_total "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no forbidden counter in {metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_and_the_gateways_own_loopback_page_connect() {
    let server = TestServer::start().await;
    let port = server.addr.port();
    connects(&server, &[]).await;
    let own = format!("http://127.0.0.1:{port}");
    connects(&server, &[("Origin", &own)]).await;
    // Host is overridden here: the URL says 127.0.0.1, the page and Host say localhost.
    let localhost = format!("localhost:{port}");
    let page = format!("http://{localhost}");
    connects(&server, &[("Origin", &page), ("Host", &localhost)]).await;
    assert_eq!(forbidden_total(&server).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_and_rebinding_pages_get_403_and_are_counted() {
    let server = TestServer::start().await;
    let port = server.addr.port();
    forbidden(&server, &[("Origin", "https://evil.example")]).await;
    let evil_host = format!("evil.example:{port}");
    let evil_page = format!("http://{evil_host}");
    forbidden(&server, &[("Origin", &evil_page), ("Host", &evil_host)]).await;
    forbidden(&server, &[("Origin", "null")]).await;
    assert_eq!(forbidden_total(&server).await, 3);
    assert_eq!(server.handle.status().connections, 0, "no slot was taken");
    connects(&server, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlisted_origins_connect_through_a_proxy() {
    let server = TestServer::start_with(|c| {
        c.allowed_origins = vec!["https://term.example.com".to_owned()];
    })
    .await;
    let proxied = [
        ("Origin", "https://term.example.com"),
        ("Host", "term.example.com"),
    ];
    connects(&server, &proxied).await;
    forbidden(&server, &[("Origin", "https://other.example.com")]).await;
    assert_eq!(forbidden_total(&server).await, 1);
}

/// What a reverse proxy at 127.0.0.1 serving `https://term.example.com` sends.
fn proxied(port: u16) -> [(&'static str, String); 4] {
    [
        ("Origin", "https://term.example.com".to_owned()),
        ("Host", format!("127.0.0.1:{port}")),
        ("X-Forwarded-Host", "term.example.com".to_owned()),
        ("X-Forwarded-Proto", "https".to_owned()),
    ]
}

fn borrowed<'h>(headers: &'h [(&'static str, String)]) -> Vec<(&'static str, &'h str)> {
    headers.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxys_forwarded_host_stands_in_for_host() {
    let server = TestServer::start_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("network")];
    })
    .await;
    let port = server.addr.port();
    connects(&server, &borrowed(&proxied(port))).await;
    // Rebinding through the proxy: no X-Forwarded-Host, so Host decides, as without one.
    let evil_host = format!("evil.example:{port}");
    let evil_page = format!("http://{evil_host}");
    forbidden(&server, &[("Origin", &evil_page), ("Host", &evil_host)]).await;
    // Another site than the one the proxy says it serves.
    let mut other = proxied(port);
    other[0].1 = "https://evil.example".to_owned();
    forbidden(&server, &borrowed(&other)).await;
    let headers = proxied(port);
    let mut twice = borrowed(&headers);
    twice.push(("X-Forwarded-Host", "term.example.com"));
    forbidden(&server, &twice).await;
    assert_eq!(forbidden_total(&server).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_from_untrusted_peers_are_ignored() {
    let server = TestServer::start().await;
    let port = server.addr.port();
    forbidden(&server, &borrowed(&proxied(port))).await;
    let evil_host = format!("evil.example:{port}");
    let evil_page = format!("http://{evil_host}");
    let rebinding = [
        ("Origin", evil_page.as_str()),
        ("Host", evil_host.as_str()),
        ("X-Forwarded-Host", evil_host.as_str()),
    ];
    forbidden(&server, &rebinding).await;
    assert_eq!(forbidden_total(&server).await, 2);
}
