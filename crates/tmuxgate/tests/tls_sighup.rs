//! The `tmuxgate` binary with TLS: SIGHUP reloads the certificate (the log says which one),
//! new connections get it, and SIGTERM still stops the gateway cleanly.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::STEP;
use common::https::https_get;
use common::pki::{Ca, CertFiles};
use tmuxgate::tls::fingerprint;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reloads_its_certificate_on_sighup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _tmux = common::KillServersOnDrop(dir.path().to_path_buf());
    let ca = Ca::new();
    let (first, second) = (ca.issue(1), ca.issue(2));
    let files = CertFiles::create(dir.path(), &first);
    let mut gateway = Binary::start(dir.path(), &files);
    let listening = gateway.log("tmuxgate listening").await;
    assert_eq!(listening["fields"]["tls"], true);
    let addr: SocketAddr = listening["fields"]["proxy"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("proxy address");
    assert_eq!(https_get(addr, &ca, "/").await.peer, first.der);

    files.write(&second.cert_pem, &second.key_pem);
    gateway.signal("-HUP");
    let reloaded = gateway
        .log("TLS certificate reloaded; new connections get it")
        .await;
    assert_eq!(reloaded["fields"]["fingerprint"], fingerprint(&second.der));
    assert_eq!(https_get(addr, &ca, "/").await.peer, second.der);
    gateway.signal("-TERM");
    assert_eq!(gateway.exit_code().await, Some(0));
}

/// `tmuxgate start` with TLS, its JSON log read line by line; killed on drop.
struct Binary {
    child: std::process::Child,
    log: tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
}

impl Binary {
    fn start(dir: &std::path::Path, files: &CertFiles) -> Binary {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tmuxgate"))
            .args(["start", "--port", "0", "--health-port", "0"])
            .args(["--backend-pool-size", "1", "--log-format", "json"])
            .arg("--tmux-socket-path")
            .arg(dir.join("sock"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("ENABLE_SSL", "true")
            .env("TLS_CERT", &files.cert)
            .env("TLS_KEY", &files.key)
            .env("TLS_RELOAD_INTERVAL", "0")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start tmuxgate");
        let stderr = child.stderr.take().expect("piped stderr");
        let (lines, log) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(entry) = serde_json::from_str(&line) {
                    let _ = lines.send(entry);
                }
            }
        });
        Binary { child, log }
    }

    /// The next log entry whose message is `message`.
    async fn log(&mut self, message: &str) -> serde_json::Value {
        let find = async {
            while let Some(entry) = self.log.recv().await {
                if entry["fields"]["message"] == message {
                    return entry;
                }
            }
            panic!("tmuxgate exited before logging {message:?}");
        };
        tokio::time::timeout(STEP, find)
            .await
            .expect("log line in time")
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args([signal, &pid])
            .status();
        assert!(sent.is_ok_and(|s| s.success()), "kill {signal}");
    }

    async fn exit_code(&mut self) -> Option<i32> {
        let deadline = tokio::time::Instant::now() + 2 * STEP;
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("poll tmuxgate") {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("tmuxgate still running");
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
