//! Built-in TLS end to end: WSS and HTTPS with a certificate made in the test (rcgen), HSTS,
//! clear text refused on the TLS port, a silent client that holds up nobody, graceful
//! shutdown, refusals at start, and certificate reloads (on demand, as SIGHUP does, and on
//! file change) that new connections see while open ones carry on.

mod common;

use std::time::Duration;

use common::https::{Answer, https_get, https_get_with, https_send, request_head};
use common::identity::{AuthServer, password};
use common::pki::{Ca, CertFiles, Leaf};
use common::{STEP, TestServer};
use tmuxgate::config::Config;
use tmuxgate::tls::{TlsError, TlsStatus, fingerprint};
use tmuxgate_client::{Attachment, Client, ClientError, ClientOptions, attach_request};
use tokio::net::TcpStream;

/// A gateway serving TLS with a certificate (serial 1) from a fresh authority.
struct Fixture {
    server: TestServer,
    ca: Ca,
    files: CertFiles,
    first: Leaf,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// `reload_interval`: `TLS_RELOAD_INTERVAL` (`ZERO`: on demand only).
    async fn start(reload_interval: Duration) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::new();
        let first = ca.issue(1);
        let files = CertFiles::create(dir.path(), &first);
        let (cert, key) = (files.cert.clone(), files.key.clone());
        let server = TestServer::start_with(move |c| {
            c.enable_ssl = true;
            c.tls_cert = Some(cert);
            c.tls_key = Some(key);
            c.tls_reload_interval = reload_interval;
        })
        .await;
        Fixture {
            server,
            ca,
            files,
            first,
            _dir: dir,
        }
    }

    fn wss_url(&self) -> String {
        format!("wss://127.0.0.1:{}/ws", self.server.addr.port())
    }

    async fn client(&self) -> Client {
        self.client_with(ClientOptions::default()).await
    }

    async fn client_with(&self, options: ClientOptions) -> Client {
        let options = options.tls(self.ca.client_config());
        Client::connect_with(&self.wss_url(), options)
            .await
            .expect("WSS client connects")
    }

    /// `GET path` over a new TLS connection.
    async fn get(&self, path: &str) -> Answer {
        https_get(self.server.addr, &self.ca, path).await
    }

    /// The TLS status watch of the gateway.
    fn status(&self) -> tokio::sync::watch::Receiver<TlsStatus> {
        self.server.handle.tls_status().expect("TLS is on")
    }
}

/// Creates a session and attaches to it.
async fn attached(client: &Client, name: &str) -> Attachment {
    let session = client.create_session(name, 80, 24).await.expect("create");
    client
        .attach(attach_request(&session.session_id, 80, 24))
        .await
        .expect("attach")
}

/// Types `echo WORD-$((6*7))` and waits for `WORD-42`: the shell's answer, not the echo.
async fn round_trip(client: &Client, attachment: &mut Attachment, word: &str) {
    let line = format!("echo {word}-$((6*7))\r");
    client
        .send_input(attachment.channel, line.as_bytes())
        .await
        .expect("input");
    let answer = format!("{word}-42");
    attachment
        .wait_for(answer.as_bytes(), STEP)
        .await
        .expect("echo over WSS");
}

/// Waits until the status satisfies `done`.
async fn status_until(
    status: &mut tokio::sync::watch::Receiver<TlsStatus>,
    done: impl FnMut(&TlsStatus) -> bool,
) -> TlsStatus {
    let reached = tokio::time::timeout(STEP, status.wait_for(done)).await;
    reached
        .expect("TLS status in time")
        .expect("gateway running")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_carries_the_protocol_and_https_the_page_with_hsts() {
    let fixture = Fixture::start(Duration::ZERO).await;
    let client = fixture.client().await;
    let mut attachment = attached(&client, "tls").await;
    assert!(attachment.snapshot);
    round_trip(&client, &mut attachment, "secure").await;

    let page = fixture.get("/").await;
    assert!(page.head.starts_with("http/1.1 200 "), "{}", page.head);
    assert!(
        page.head
            .contains("\r\nstrict-transport-security: max-age=31536000\r\n"),
        "{}",
        page.head
    );
    assert_eq!(page.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(page.peer, fixture.first.der);
    assert_eq!(
        fixture.status().borrow().fingerprint,
        fingerprint(&fixture.first.der)
    );
    // The UI served over HTTPS opens its socket from an https:// origin.
    let own_page = format!("https://{}", fixture.server.addr);
    let browser = fixture
        .client_with(ClientOptions::default().header("Origin", own_page))
        .await;
    browser.heartbeat().await.expect("heartbeat from the page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_3_is_preferred_and_1_2_still_served() {
    let fixture = Fixture::start(Duration::ZERO).await;
    let addr = fixture.server.addr;
    assert_eq!(
        fixture.get("/").await.version,
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let only_1_2 = fixture.ca.client_config_for(&[&rustls::version::TLS12]);
    let old = https_get_with(addr, only_1_2, "/").await;
    assert_eq!(old.version, Some(rustls::ProtocolVersion::TLSv1_2));
    assert!(old.head.starts_with("http/1.1 200 "), "{}", old.head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_text_on_the_tls_port_gets_no_answer() {
    let fixture = Fixture::start(Duration::ZERO).await;
    let plain_ws = format!("ws://{}/ws", fixture.server.addr);
    assert!(matches!(
        Client::connect(&plain_ws).await,
        Err(ClientError::Connect { .. })
    ));
    let mut tcp = TcpStream::connect(fixture.server.addr)
        .await
        .expect("connect");
    let head = request_head(&mut tcp, fixture.server.addr, "/").await;
    assert!(
        !head.contains("http/1.1"),
        "an HTTP answer on the TLS port: {head}"
    );
    let deadline = tokio::time::Instant::now() + STEP;
    let counted = "tmuxgate_tls_handshake_failures_total 2\n";
    loop {
        let (_, metrics) = common::http_get(fixture.server.health_addr, "/metrics").await;
        if metrics.contains(counted) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tls_there_is_no_hsts_and_nothing_to_reload() {
    let server = TestServer::start().await;
    let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
    let head = request_head(&mut tcp, server.addr, "/").await;
    assert!(head.starts_with("http/1.1 200 "), "{head}");
    assert!(!head.contains("strict-transport-security"), "{head}");
    assert!(server.handle.tls_status().is_none());
    assert!(matches!(
        server.handle.reload_tls().await,
        Err(TlsError::Disabled)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_holds_up_no_one() {
    let fixture = Fixture::start(Duration::ZERO).await;
    // Connected, never says hello: its handshake waits in its own task.
    let _silent = TcpStream::connect(fixture.server.addr)
        .await
        .expect("connect");
    let started = tokio::time::Instant::now();
    let client = fixture.client().await;
    client.heartbeat().await.expect("heartbeat");
    assert!(started.elapsed() < tmuxgate::tls::HANDSHAKE_TIMEOUT / 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_wss_connections_with_1001() {
    let fixture = Fixture::start(Duration::ZERO).await;
    let client = fixture.client().await;
    client.heartbeat().await.expect("heartbeat");
    fixture.server.handle.shutdown();
    let (code, _) = client.wait_closed(STEP).await.expect("closed");
    assert_eq!(code, 1001);
    let dir = fixture.server.stop().await;
    common::kill_servers(&dir);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_refuses_missing_and_mismatched_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new();
    let (one, two) = (ca.issue(1), ca.issue(2));
    let files = CertFiles::create(dir.path(), &one);
    let start = |cert: std::path::PathBuf, key: std::path::PathBuf| {
        let config = Config {
            enable_ssl: true,
            tls_cert: Some(cert),
            tls_key: Some(key),
            ..Config::for_tests(dir.path().join("sock"))
        };
        async move {
            tmuxgate::Server::start(config)
                .await
                .err()
                .map(|e| format!("{e:#}"))
        }
    };
    let missing = start(dir.path().join("nope.pem"), files.key.clone()).await;
    assert!(
        missing
            .as_deref()
            .is_some_and(|m| m.starts_with("cannot read TLS_CERT=")),
        "{missing:?}"
    );
    files.write(&one.cert_pem, &two.key_pem);
    let mismatched = start(files.cert.clone(), files.key.clone()).await;
    let expected = "does not belong to the certificate in TLS_CERT=";
    assert!(
        mismatched.as_deref().is_some_and(|m| m.contains(expected)),
        "{mismatched:?}"
    );
    assert!(
        !dir.path().join("sock").exists(),
        "no tmux server was started"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_serves_new_connections_the_new_certificate_and_keeps_open_ones() {
    let fixture = Fixture::start(Duration::ZERO).await;
    let client = fixture.client().await;
    let mut attachment = attached(&client, "before").await;
    round_trip(&client, &mut attachment, "first").await;

    let second = fixture.ca.issue(2);
    fixture.files.write(&second.cert_pem, &second.key_pem);
    let served = fixture.server.handle.reload_tls().await.expect("reload");
    assert_eq!(served, fingerprint(&second.der));
    assert_eq!(fixture.get("/").await.peer, second.der, "a new connection");
    round_trip(&client, &mut attachment, "kept").await;
    let newcomer = fixture.client().await;
    let mut other = attached(&newcomer, "after").await;
    round_trip(&newcomer, &mut other, "new").await;

    // A certificate with the wrong key, then not a certificate at all: both refused.
    let third = fixture.ca.issue(3);
    fixture.files.write(&third.cert_pem, &second.key_pem);
    let refused = fixture.server.handle.reload_tls().await;
    assert!(
        matches!(refused, Err(TlsError::KeyMismatch { .. })),
        "{refused:?}"
    );
    fixture.files.write("not a certificate", &third.key_pem);
    let refused = fixture.server.handle.reload_tls().await;
    assert!(
        matches!(refused, Err(TlsError::NoCertificate { .. })),
        "{refused:?}"
    );
    let status = fixture.status().borrow().clone();
    assert_eq!((status.reloads, status.failures), (1, 2));
    assert!(
        status
            .last_error
            .is_some_and(|e| e.contains("holds no PEM certificate"))
    );
    assert_eq!(
        fixture.get("/").await.peer,
        second.der,
        "still the last good one"
    );
    round_trip(&client, &mut attachment, "still").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_files_are_reloaded_by_polling() {
    let fixture = Fixture::start(Duration::from_millis(100)).await;
    let client = fixture.client().await;
    let mut attachment = attached(&client, "polled").await;
    let mut status = fixture.status();

    let second = fixture.ca.issue(2);
    fixture.files.write(&second.cert_pem, &second.key_pem);
    let reloaded = status_until(&mut status, |s| s.reloads >= 1).await;
    assert_eq!(reloaded.failures, 0, "a half-replaced pair was not loaded");
    assert_eq!(reloaded.fingerprint, fingerprint(&second.der));
    assert_eq!(fixture.get("/").await.peer, second.der);
    round_trip(&client, &mut attachment, "open").await;

    let stranger = Ca::new().issue(9);
    fixture.files.write(&stranger.cert_pem, &second.key_pem);
    let failed = status_until(&mut status, |s| s.failures >= 1).await;
    assert_eq!(failed.reloads, 1);
    assert_eq!(
        fixture.get("/").await.peer,
        second.der,
        "the bad pair is not served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wss_url_without_trusted_certificates_is_refused_by_the_client() {
    let refused = Client::connect("wss://127.0.0.1:9/ws").await;
    let Err(ClientError::Connect { message, .. }) = refused else {
        panic!("connected without TLS settings");
    };
    assert!(message.contains("ClientOptions::tls"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_login_cookie_is_secure_and_tokens_open_wss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new();
    let files = CertFiles::create(dir.path(), &ca.issue(1));
    let (cert, key) = (files.cert.clone(), files.key.clone());
    let server = AuthServer::start(&[("alice", "operator")], move |c| {
        c.enable_ssl = true;
        c.tls_cert = Some(cert);
        c.tls_key = Some(key);
    })
    .await;
    let addr = server.server.addr;
    let body = format!(
        r#"{{"username":"alice","password":"{}"}}"#,
        password("alice")
    );
    let request = format!(
        "POST /api/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let head = https_send(addr, &ca, &request).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let cookie = head
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .expect("a cookie");
    assert!(cookie.contains("__host-tmuxgate_token="), "{cookie}");
    for attribute in ["httponly", "samesite=strict", "; secure", "path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    let token = server.token_for("alice", Duration::from_secs(600)).await;
    let options = ClientOptions::default()
        .tls(ca.client_config())
        .token(&token);
    let url = format!("wss://127.0.0.1:{}/ws", addr.port());
    let client = Client::connect_with(&url, options)
        .await
        .expect("WSS with a token");
    let info = client
        .create_session("over-tls", 80, 24)
        .await
        .expect("create");
    assert_eq!(info.owner.as_deref(), Some("alice"));
}
